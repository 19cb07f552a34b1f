FROM debian:12-slim
COPY vendor/custom-agent_2.1.0_amd64.deb /tmp/
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates=20230311 \
        libpq5=15.7-0+deb12u1 \
        /tmp/custom-agent_2.1.0_amd64.deb \
    && rm -rf /var/lib/apt/lists/*
