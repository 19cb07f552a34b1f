FROM ubuntu:24.04
ARG UID=1000
# expect: GD-035
RUN groupadd -g 1234567 ci && useradd -m -u 1234567 -g ci ci
USER ci
