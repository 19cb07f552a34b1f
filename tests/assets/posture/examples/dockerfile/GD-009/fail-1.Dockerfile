FROM ubuntu:24.04
RUN apt-get update && apt-get install -y --no-install-recommends openssh-server=1:9.6p1-3ubuntu13 \
    && rm -rf /var/lib/apt/lists/*
# expect: GD-009
EXPOSE 22 8080
CMD ["/usr/sbin/sshd", "-D"]
