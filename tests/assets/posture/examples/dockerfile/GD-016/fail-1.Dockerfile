FROM ubuntu:24.04
# expect: GD-016
RUN apt update && apt install -y --no-install-recommends jq=1.7.1-3build1 && rm -rf /var/lib/apt/lists/*
