FROM ubuntu:24.04
RUN useradd -m deploy
# expect: GD-039
RUN echo 'deploy:Summer2024!' | chpasswd
USER deploy
