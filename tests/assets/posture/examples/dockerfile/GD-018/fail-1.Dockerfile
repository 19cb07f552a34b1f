FROM alpine:3.20
# expect: GD-018
RUN apk add --no-cache bash git=2.45.2-r0 openssh-client
