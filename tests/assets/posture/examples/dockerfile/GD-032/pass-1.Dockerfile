# syntax=docker/dockerfile:1.7
FROM alpine:3.20
RUN apk add --no-cache openssh-client=9.7_p1-r3 git=2.45.2-r0
COPY .env.example /app/.env.example
COPY deploy_key.pub /etc/app/deploy_key.pub
RUN --mount=type=ssh git clone git@github.com:acme/private-lib.git /opt/lib
