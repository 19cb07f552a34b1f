# expect: GD-007
FROM gcr.io/distroless/static-debian12:nonroot
COPY bin/operator /operator
ENTRYPOINT ["/operator"]
