FROM registry.access.redhat.com/ubi9/ubi:9.4
RUN yum install -y python3.11-3.11.7 && yum clean all && rm -rf /var/cache/yum
