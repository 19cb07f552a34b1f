FROM debian:12-slim
RUN useradd --system --uid 10001 svc
USER svc
COPY --chown=svc entrypoint.sh /entrypoint.sh
# switched back to fix a permissions error, and left that way
# expect: GD-002
USER root
ENTRYPOINT ["/entrypoint.sh"]
