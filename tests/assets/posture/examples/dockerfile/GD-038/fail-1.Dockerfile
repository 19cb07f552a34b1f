FROM debian:12-slim
# expect: GD-038
RUN apt-get update && apt-get install -y --no-install-recommends --allow-unauthenticated internal-agent=3.1.0 \
    && rm -rf /var/lib/apt/lists/*
