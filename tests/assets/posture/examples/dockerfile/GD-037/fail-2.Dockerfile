FROM debian:12-slim
# expect: GD-037
RUN curl -kfsSLo /usr/local/bin/helm.tgz https://mirror.internal.example.com/helm-v3.15.2-linux-amd64.tar.gz
