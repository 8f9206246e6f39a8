# br-serve container image.
#
#   docker build -t br-serve-img .
#   docker run -d --name br-container -p 80:80 br-serve-img
#   docker inspect --format '{{.State.Health.Status}}' br-container    # healthy
#   (`starting` until the first check, 10 s after the start: --interval below)
#
# Two stages: a Rust toolchain builds the release binary; the runtime image holds only
# that binary on a slim Debian of the same release (same glibc).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# Dependencies first, in their own layer: build the locked dependency graph against stub
# sources, so that changing src/ rebuilds only this crate. The stubs must cover every
# target Cargo.toml names explicitly (lib, bin, the [[test]]), or cargo rejects the
# manifest; add one here when Cargo.toml gains a target (or a build.rs).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src tests \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs tests/tests.rs \
    && cargo build --release --locked \
    && rm -rf src

COPY src ./src
# COPY keeps the files' original mtimes, which can be older than the stub build; touching
# them makes cargo rebuild this crate instead of shipping the stub binary.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked

FROM debian:bookworm-slim
COPY --from=build /src/target/release/br-serve /usr/local/bin/br-serve

# Non-root. Binding port 80 still works: Docker (20.10 and later) sets
# net.ipv4.ip_unprivileged_port_start=0 inside the container's network namespace, so any
# user may bind low ports there. (Not so with --network=host, or on runtimes that leave
# the sysctl alone: bind a port >= 1024 there, e.g. `-e PORT=8080`.)
USER 10001:10001

# The settings the image needs live in the environment, not in CMD: flags given after
# the image name (`docker run br-serve-img --workers 4`) replace CMD whole, and a bind
# kept there would silently go with them.
# PORT: listen on 0.0.0.0:$PORT (`-e PORT=8080` moves it). It is only a default, as in
# gunicorn: --bind, BR_SERVE_BIND or a configuration file's bind win over it.
# BR_SERVE_GRACEFUL_TIMEOUT: `docker stop` sends SIGKILL 10 s after TERM, so in-flight
# requests must finish within that, with a margin for the exit. Raise both together:
# `docker stop -t 60` (or `docker run --stop-timeout 60`) and
# `-e BR_SERVE_GRACEFUL_TIMEOUT=55`. (As an environment variable it is above a
# configuration file's graceful-timeout, so set it here, with -e, or as a flag.)
# BR_SERVE_METRICS_BIND: the master's own port, inside the container only, for the
# HEALTHCHECK below (and /metrics; `-e BR_SERVE_METRICS_BIND=0.0.0.0:9100 -p 9100:9100`
# publishes it).
ENV PORT=80 \
    BR_SERVE_GRACEFUL_TIMEOUT=8 \
    BR_SERVE_METRICS_BIND=127.0.0.1:9100

EXPOSE 80
# The binary probes itself (a slim image has no curl), asking the master's /healthz on
# the metrics port: answered at once whatever the workers do, where the application's
# /healthz waits behind every queued request (36-91 s under the origin's 400 ms loads,
# long enough for a swarm to replace a container that was only busy). It follows
# `-e BR_SERVE_METRICS_BIND=...`, whatever the application's bind.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/bin/sh", "-c", "exec /usr/local/bin/br-serve check \"http://${BR_SERVE_METRICS_BIND}/healthz\" 3"]
# The master is PID 1 (exec form, no shell): TERM is its graceful drain, and it reaps
# every child, as PID 1 must.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/br-serve"]
# Flags given after the image name come here (the bind is PORT's, above).
CMD []
