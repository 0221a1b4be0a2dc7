# bantin: a small, non-root runtime image with the sample feeds/.
#
#   docker build -t bantin .
#   podman build --format docker -t bantin .     # podman: keep the HEALTHCHECK (OCI drops it)
#   docker run -p 8080:8080 -v bantin-data:/app/data bantin
#
# Build stage: the Rust toolchain, pinned (a floating tag would change the compiler under an
# unchanged Cargo.lock); SQLite is compiled in (rusqlite "bundled"), TLS is rustls.
FROM rust:1.95-bookworm AS build
WORKDIR /src

# Dependency layer: the ~270 crates are built against a placeholder crate with the real manifest
# and lock file, so this layer is rebuilt only when Cargo.toml or Cargo.lock change, not on every
# source edit. A plain layer rather than cargo-chef (another tool to build and pin) or BuildKit
# cache mounts (not every builder has them, and podman/buildah builds here used the plain form).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && for b in render readership; do echo 'fn main() {}' > "benches/$b.rs"; done \
 && cargo build --release --locked --bin bantin \
 && rm -rf src benches target/release/bantin target/release/deps/bantin-* \
      target/release/deps/libbantin-* target/release/.fingerprint/bantin-*

# The crate itself: only this layer rebuilds when the sources change.
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin bantin && strip target/release/bantin

# Runtime stage: Debian slim with CA certificates (for HTTPS WebSub hubs) and nothing else.
FROM debian:bookworm-slim
# The group first, with the same id as the user: left to useradd --system it would get whatever
# system gid is free (999), and files shared with the host or other containers would not match.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 bantin \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin bantin
WORKDIR /app
COPY --from=build /src/target/release/bantin /usr/local/bin/bantin
COPY feeds ./feeds
RUN mkdir -p /app/data && chown bantin:bantin /app/data
USER bantin
ENV BANTIN_LISTEN=0.0.0.0:8080 \
    BANTIN_DATABASE_URL=sqlite:///app/data/bantin.db \
    RUST_LOG=bantin=info,warn
EXPOSE 8080
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 CMD ["bantin", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["bantin"]
CMD ["serve"]
