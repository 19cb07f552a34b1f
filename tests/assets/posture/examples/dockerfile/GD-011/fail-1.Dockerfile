FROM debian:12-slim
# expect: GD-011
RUN apt-get update
RUN apt-get install -y --no-install-recommends nginx=1.22.1-9 && rm -rf /var/lib/apt/lists/*
