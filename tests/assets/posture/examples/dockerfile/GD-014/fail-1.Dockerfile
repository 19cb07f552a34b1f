FROM rockylinux:9.3
# expect: GD-014
RUN dnf install httpd-2.4.57 && dnf clean all
