# Image for docker-compose.yml where a registry is reachable (`docker-compose build`).
# Without one, `scripts/compose-up.sh` makes the same image from the host-built binary.
# The daemon needs the host's BTF, cgroups and Docker socket (see docker-compose.yml).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang llvm libelf-dev zlib1g-dev pkg-config
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libelf1 zlib1g && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ctrace /usr/local/bin/ctrace
# The default store and Tracefile directory; docker-compose.yml mounts the host's here.
RUN mkdir -p /var/lib/ctrace
ENTRYPOINT ["/usr/local/bin/ctrace"]
CMD ["trace"]
