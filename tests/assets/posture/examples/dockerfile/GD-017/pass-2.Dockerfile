FROM alpine:3.20
RUN apk update && apk add postgresql16-client=16.3-r0 && rm -rf /var/cache/apk/*
