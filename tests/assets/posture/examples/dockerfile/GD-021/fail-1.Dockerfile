FROM ubuntu:24.04
RUN useradd --create-home dev
USER dev
# expect: GD-021
RUN sudo apt-get update && sudo apt-get install -y --no-install-recommends make=4.3-4.1build2
