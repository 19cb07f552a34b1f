# syntax=docker/dockerfile:1.7
# BuildKit cache mounts keep the lists out of the image.
FROM debian:12-slim
RUN --mount=type=cache,target=/var/lib/apt,sharing=locked \
    --mount=type=cache,target=/var/cache/apt,sharing=locked \
    apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10+deb12u5
