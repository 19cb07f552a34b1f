FROM ubuntu:24.04
RUN apt-get update && apt-get install -y --no-install-recommends make=4.3-4.1build2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home dev
USER dev
