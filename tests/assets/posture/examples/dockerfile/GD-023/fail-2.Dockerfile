# syntax=docker/dockerfile:1.7
FROM alpine:3.20
# expect: GD-023
COPY --chmod=666 config.yaml /etc/app/config.yaml
