FROM golang:1.22-bookworm
WORKDIR /go/src/app
COPY . .
RUN go build -o /usr/local/bin/app ./cmd/app
