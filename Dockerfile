# br-serve container image.
#
#   docker build -t br-serve-img .
#   docker run -d --name br-container -p 80:80 br-serve-img
#   docker inspect --format '{{.State.Health.Status}}' br-container    # healthy
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
# the sysctl alone: bind a port >= 1024 there, e.g. CMD ["--bind", "0.0.0.0:8080"].)
USER 10001:10001

EXPOSE 80
# The binary probes itself (a slim image has no curl). The URL follows CMD's bind: change
# both together.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/br-serve", "check", "http://127.0.0.1:80/healthz", "3"]
# The master is PID 1 (exec form, no shell): TERM is its graceful drain, and it reaps
# every child, as PID 1 must.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/br-serve"]
CMD ["--bind", "0.0.0.0:80"]
