FROM debian:12-slim
# expect: GD-036
RUN apt-get update && apt-get -y dist-upgrade && rm -rf /var/lib/apt/lists/*
