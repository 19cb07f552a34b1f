# The build stage has a USER; the final stage, which is what runs, does not.
FROM golang:1.22-alpine AS build
RUN adduser -D builder
USER builder
WORKDIR /home/builder/src
COPY --chown=builder . .
RUN go build -o /home/builder/api ./cmd/api

FROM alpine:3.20
COPY --from=build /home/builder/api /usr/local/bin/api
ENTRYPOINT ["/usr/local/bin/api"]
