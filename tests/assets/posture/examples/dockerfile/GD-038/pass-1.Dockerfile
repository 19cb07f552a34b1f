FROM debian:12-slim
COPY internal-archive-keyring.gpg /usr/share/keyrings/internal-archive-keyring.gpg
RUN echo "deb [signed-by=/usr/share/keyrings/internal-archive-keyring.gpg] https://apt.example.com stable main" \
        > /etc/apt/sources.list.d/internal.list \
    && apt-get update && apt-get install -y --no-install-recommends internal-agent=3.1.0 \
    && rm -rf /var/lib/apt/lists/*
