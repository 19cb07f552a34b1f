FROM debian:12-slim
# expect: GD-004
ADD https://github.com/krallin/tini/releases/download/v0.19.0/tini /tini
RUN chmod 0755 /tini
ENTRYPOINT ["/tini", "--"]
