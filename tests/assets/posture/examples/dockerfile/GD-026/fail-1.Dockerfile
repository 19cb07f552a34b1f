FROM golang:1.22-bookworm
COPY . /go/src/app
# expect: GD-026
RUN cd /go/src/app && go build -o /usr/local/bin/app ./cmd/app
