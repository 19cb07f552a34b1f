# The base image's health check is switched off.
FROM postgres:16.3
# expect: GD-008
HEALTHCHECK NONE
