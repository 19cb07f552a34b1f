FROM debian:12-slim
# expect: GD-040
RUN wget -O - https://packages.example.com/key.asc | gpg --dearmor > /usr/share/keyrings/example.gpg
