FROM alpine:3.20
# expect: GD-017
RUN apk update && apk add postgresql16-client=16.3-r0
