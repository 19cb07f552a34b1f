FROM rockylinux:9.3
# expect: GD-038
RUN dnf install -y --nogpgcheck https://repo.example.com/agent-3.1.0.x86_64.rpm && dnf clean all
