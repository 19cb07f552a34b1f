FROM ubuntu:24.04
RUN useradd -m deploy && passwd -l deploy
USER deploy
