FROM debian:12-slim
RUN set -o pipefail && wget -O - https://packages.example.com/key.asc | gpg --dearmor > /usr/share/keyrings/example.gpg
