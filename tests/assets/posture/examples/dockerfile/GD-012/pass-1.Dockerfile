FROM ubuntu:24.04
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3=3.12.3-0ubuntu1 \
        python3-venv=3.12.3-0ubuntu1 \
    && rm -rf /var/lib/apt/lists/*
