FROM registry.access.redhat.com/ubi9/ubi:9.4
# expect: GD-019
RUN yum install -y python3.11-3.11.7 && python3.11 -m ensurepip
