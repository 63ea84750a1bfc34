# Warden container image.
#
#   docker build -t warden:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9090:9090 warden:0.1.0 serve --dev
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts below. The build
# needs no protoc: build.rs uses the protoc vendored by the protoc-bin-vendored crate.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# Registry, git and target caches survive between builds; the binary is copied out of the
# cached target directory within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/warden /out/warden

# glibc + libgcc + CA certificates, no shell: Debian 12, like the builder.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/warden /usr/local/bin/warden
USER 65532:65532
# Listen on all interfaces inside the container (Warden's own defaults are loopback-only).
ENV WARDEN_LISTEN_ADDR=0.0.0.0:50051 WARDEN_METRICS_ADDR=0.0.0.0:9090
# 50051: gRPC (with grpc.health.v1.Health); 9090: /metrics, /healthz, /readyz.
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve"]
