FROM alpine:3.20
RUN apk add --no-cache openssh-client=9.7_p1-r3 git=2.45.2-r0
# expect: GD-032
COPY id_ed25519 /root/.ssh/id_ed25519
RUN git clone git@github.com:acme/private-lib.git /opt/lib
