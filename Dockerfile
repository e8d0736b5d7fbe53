# syntax=docker/dockerfile:1
# Warden's container image: the `warden` binary on a distroless base, run as a non-root user.
#
#   docker build -t warden .
#   docker run --rm --read-only --tmpfs /tmp -p 8080:8080 -p 9090:9090 \
#     -v "$PWD/etc/warden:/etc/warden:ro" -e WARDEN_POSTGRES_URL -e WARDEN_REDIS_URL \
#     -e WARDEN_APPROVALS_KEY warden
#
# The configuration is read from /etc/warden/warden.toml (policies and key files relative to it);
# see docs/deployment.md. There is no HEALTHCHECK: the runtime image has no shell and no HTTP
# client to run one. Health is GET /healthz on the admin listener ([admin] listen), which
# Kubernetes' probes (deploy/helm/warden) or a load balancer call from outside the container.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches need BuildKit (the default builder of current Docker).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p warden \
    && install -D -m 0755 target/release/warden /out/warden \
    && install -d /out/data

# glibc, libgcc and CA certificates, nothing else: no shell, no package manager. The "nonroot"
# variant runs as uid and gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="warden" \
      org.opencontainers.image.description="Warden: a security gateway for the Model Context Protocol" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/warden-mcp/warden"
COPY --from=build /out/warden /usr/local/bin/warden
# A writable directory for a single gateway's SQLite audit log ([audit] path =
# "/var/lib/warden/audit.db"): a volume mounted here starts owned by the image's user.
COPY --from=build --chown=65532:65532 /out/data /var/lib/warden
USER 65532:65532
# 8080: the MCP endpoint ([gateway] listen); 9090: the admin listener ([admin] listen), with
# /healthz and /metrics. The configuration chooses the addresses: bind 0.0.0.0 in a container.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve", "--config", "/etc/warden/warden.toml"]
