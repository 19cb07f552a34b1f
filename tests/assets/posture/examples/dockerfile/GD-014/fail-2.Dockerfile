FROM debian:12-slim
# expect: GD-014
RUN apt-get update && apt-get install --no-install-recommends git=1:2.39.2-1.1 && rm -rf /var/lib/apt/lists/*
