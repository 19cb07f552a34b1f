FROM alpine:3.20
LABEL org.opencontainers.image.authors="Jane Doe <jane@example.com>"
RUN apk add --no-cache tzdata=2024a-r1
