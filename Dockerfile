# Image for docker-compose.yml. The daemon needs the host's BTF, cgroups and Docker socket.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang llvm libelf-dev zlib1g-dev pkg-config
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libelf1 zlib1g && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ctrace /usr/local/bin/ctrace
ENTRYPOINT ["/usr/local/bin/ctrace"]
