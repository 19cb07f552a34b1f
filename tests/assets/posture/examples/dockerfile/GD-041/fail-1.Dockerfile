FROM rust:1.79-slim AS build
WORKDIR /src
COPY . .
RUN cargo build --release
# expect: GD-041
COPY --from=build /src/target/release/server /usr/local/bin/server
