FROM ubuntu:24.04
RUN apt-get update \
    && apt-get -o APT::Install-Recommends=false install -y python3=3.12.3-0ubuntu1 \
    && rm -rf /var/lib/apt/lists/*
