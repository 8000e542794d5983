# syntax=docker/dockerfile:1
# Trent's container image: the `trent` binary built from this workspace, run as the unprivileged
# user `trent` with its data directory (database, root key, credentials) on a volume.
#
#   docker build -t trent .
#   docker run -d --name trent -p 127.0.0.1:4599:4599 -v trent-data:/var/lib/trent trent
#   docker exec trent cat /var/lib/trent/credentials    # the default account's root credentials
#
# Back up the volume's root.key separately from its trent.db (see README.md).

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The caches make rebuilds incremental; the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p trent --bin trent \
    && install -m 0755 target/release/trent /usr/local/bin/trent

FROM debian:bookworm-slim
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/trent --shell /usr/sbin/nologin trent \
    && install -d -m 0700 -o trent -g trent /var/lib/trent
COPY --from=builder /usr/local/bin/trent /usr/local/bin/trent
USER trent
VOLUME /var/lib/trent
EXPOSE 4599
STOPSIGNAL SIGTERM
ENTRYPOINT ["trent"]
CMD ["serve", "--listen", "0.0.0.0:4599", "--data-dir", "/var/lib/trent"]
