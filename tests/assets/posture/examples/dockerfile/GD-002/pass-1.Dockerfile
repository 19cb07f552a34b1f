FROM debian:12-slim
USER root
RUN useradd --system --uid 10001 svc
COPY --chown=svc entrypoint.sh /entrypoint.sh
USER svc
ENTRYPOINT ["/entrypoint.sh"]
