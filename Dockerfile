# bantin: a small, non-root runtime image with the sample feeds/.
#
#   docker build -t bantin .
#   docker run -p 8080:8080 -v bantin-data:/app/data bantin
#
# Build stage: the Rust toolchain; SQLite is compiled in (rusqlite "bundled"), TLS is rustls.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin bantin && strip target/release/bantin

# Runtime stage: Debian slim with CA certificates (for HTTPS WebSub hubs) and nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin bantin
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
