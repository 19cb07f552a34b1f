FROM ubuntu:24.04
RUN apt-get update && apt-get install -y --no-install-recommends curl=8.5.0-2ubuntu10 ca-certificates=20240203 \
    && rm -rf /var/lib/apt/lists/*
# expect: GD-005
RUN curl -fsSL https://deb.nodesource.com/setup_20.x | bash -
