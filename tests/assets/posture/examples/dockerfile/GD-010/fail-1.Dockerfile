FROM alpine:3.20
# expect: GD-010
MAINTAINER Jane Doe <jane@example.com>
RUN apk add --no-cache tzdata=2024a-r1
