FROM debian:12-slim
# expect: GD-013
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates \
        libpq5=15.7-0+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
