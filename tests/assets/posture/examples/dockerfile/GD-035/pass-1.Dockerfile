FROM ubuntu:24.04
RUN groupadd -g 1234567 ci && useradd --no-log-init -m -u 1234567 -g ci ci
USER ci
