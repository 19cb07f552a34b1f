FROM fedora:40
# expect: GD-020
RUN dnf install -y nodejs npm && dnf clean all
