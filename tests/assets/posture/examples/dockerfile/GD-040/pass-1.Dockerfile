FROM debian:12-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN wget -O - https://packages.example.com/key.asc | gpg --dearmor > /usr/share/keyrings/example.gpg
