FROM rust:1.79-slim AS build
WORKDIR /src
COPY . .
RUN cargo build --release

FROM debian:12-slim AS runtime
COPY --from=build /src/target/release/server /usr/local/bin/server
CMD ["server"]
