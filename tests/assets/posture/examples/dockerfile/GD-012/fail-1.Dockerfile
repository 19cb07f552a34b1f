FROM ubuntu:24.04
# expect: GD-012
RUN apt-get update && apt-get install -y \
        python3=3.12.3-0ubuntu1 \
        python3-venv=3.12.3-0ubuntu1 \
    && rm -rf /var/lib/apt/lists/*
