FROM fedora:40
RUN dnf install -y nodejs-20.14.0 npm-10.7.0 @development-tools && dnf clean all
