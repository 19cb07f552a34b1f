# Rebuild from an updated base image instead of upgrading inside the build.
FROM debian:12.5-slim
RUN apt-get update && apt-get install -y --no-install-recommends tzdata=2024a-0+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
