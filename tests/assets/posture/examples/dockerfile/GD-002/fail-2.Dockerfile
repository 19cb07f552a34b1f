ARG RUN_AS=0
FROM alpine:3.20
ARG RUN_AS
# expect: GD-002
USER ${RUN_AS}:0
CMD ["crond", "-f"]
