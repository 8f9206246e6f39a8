//! End-to-end tests of the `br-serve` binary.
//!
//! One test binary (ripgrep's layout), so the helpers are compiled and linked once. Every
//! test spawns its own server with `--bind 127.0.0.1:0` (the kernel picks a free port), so
//! the tests run in parallel with each other. The harness is multithreaded: the server is
//! always started with `std::process::Command` (fork + exec), never by forking this process.
//!
//! - `util`: spawning and supervising a server process, `/proc` inspection, polling.
//! - `client`: a raw-socket HTTP/1.1 client that controls the exact bytes on the wire.
//! - `load`: a background load client that counts failed requests.
//! - `http_conformance`: RFC 9112/9110 conformance and smuggling tables over raw sockets.
//! - `serving`: HTTP behaviour (framing, keep-alive, pipelining, routes, fairness).
//! - `workers`: the process model (workers are children, replacement after a crash).
//! - `signals`: graceful (TERM) and quick (INT, QUIT) shutdown.
//! - `cli`: flags and environment variables.
//! - `supervision`: TTIN/TTOU and HUP under load, `--max-requests`, `--timeout`, a
//!   SIGKILLed master, crash-loop backoff, an abandoned reload, handler panics.
//! - `upgrade`: USR2 + WINCH + TERM under load, and the rollback.
//! - `config_file`: `-c FILE` (errors, precedence, `--print-config`, `--check-config`,
//!   HUP), pidfiles.
//! - `static_files`: `--static DIR`: validators, ranges, directories, sendfile, no escape.
//! - `streaming`: answers read as they are sent (`Body::Stream`): framing, backpressure,
//!   failing readers.
//! - `logs`: access log formats, USR1 reopening the access and error logs.
//! - `resilience`: idle, slow and vanishing clients, EMFILE backoff, keep-alive, 408s.
//! - `operations`: PID 1, systemd notify and socket activation, `--user`, drain delay.
//! - `examples`: the programs in `examples/`, which get the binary's flags and signals.

mod cli;
mod client;
mod config_file;
mod examples;
mod http_conformance;
mod load;
mod logs;
mod operations;
mod resilience;
mod serving;
mod signals;
mod static_files;
mod streaming;
mod supervision;
mod upgrade;
mod util;
mod workers;
