//! br-serve: a gunicorn-style pre-fork HTTP/1.1 server.
//!
//! # How the pieces fit
//!
//! A **master** process binds the listening sockets, creates what the workers share
//! (the scoreboard and the lifeline pipe), forks N **workers**, and then only
//! supervises: it reaps children, restarts the ones that die or hang, scales the pool on
//! `SIGTTIN`/`SIGTTOU`, rolls a new generation on `SIGHUP` and drains on `SIGTERM`. The
//! master never serves a request and never starts a thread, because it forks for its
//! whole life (see `sys::fork`).
//!
//! Each **worker** runs a single-threaded [`mio`] event loop over the shared listening
//! sockets and its connections, parses requests with [`httparse`] plus our own strict
//! framing (the [`http`] module), and calls the application: a blocking [`Handler`].
//! A worker accepts a connection only when it can serve it now, so a CPU-heavy request
//! waits in the kernel's accept queue for an idle worker instead of behind a busy one.
//!
//! # Layout
//!
//! * [`config`]: command line and environment into a validated [`Config`].
//! * `sys`: the only place with `unsafe`: fork, signal dispositions, the shared-memory
//!   scoreboard, the monotonic clock and the lifeline pipe.
//! * `master`: the arbiter loop, the pure signal -> action map, the worker pool, listeners.
//! * `worker`: the event loop, the accept gate, the connection state machine.
//! * [`http`]: request heads, body framing (RFC 9112), chunked bodies, responses, dates.
//! * [`app`]: the [`Handler`] trait and the built-in demo application.
//!
//! # Embedding
//!
//! A Rust program gets the whole process manager, CLI and signals by handing
//! [`run_main`] a factory that builds its handler in each worker:
//!
//! ```no_run
//! use br_serve::{Request, Response};
//!
//! fn main() -> std::process::ExitCode {
//!     br_serve::run_main(|_config| {
//!         Box::new(|req: &Request| Response::text(200, format!("you asked for {}\n", req.path())))
//!     })
//! }
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod access_log;
pub mod app;
mod check;
pub mod config;
mod error;
pub mod http;
mod logging;
mod master;
mod sys;
mod worker;

pub use app::Handler;
pub use config::Config;
pub use error::{Error, ExitStatus};
pub use http::{Body, Request, Response, Version};
pub use worker::{heartbeat, is_draining};

use std::process::ExitCode;

/// Builds the application in each worker, after fork. It receives the validated
/// configuration, so one binary can choose between applications with a flag.
pub type AppFactory = dyn Fn(&Config) -> Box<dyn Handler>;

/// Where the workers' application comes from.
pub enum App<'a> {
    /// Built by the factory in each worker after fork, and anew for each HUP
    /// generation. Right for handlers holding per-process resources (connections,
    /// non-thread-safe libraries).
    PerWorker(&'a AppFactory),
    /// Built once in the master before the first fork, like gunicorn's `--preload`:
    /// workers share its memory copy-on-write, and a broken app stops the start instead
    /// of crash-looping workers. HUP does not rebuild it (the master's copy is reused).
    Preloaded(Box<dyn Handler>),
}

/// Parses the command line and environment, sets up logging, and runs the master until
/// it stops, with the application built in each worker by `factory`. Errors are mapped
/// to exit codes in one place: 0 after a clean stop, 1 when the server cannot start (a
/// port in use, a bad configuration file), 2 for a bad flag. `br-serve check URL`
/// instead probes a running server (for container health checks) and exits 0 when it
/// answers 2xx or 3xx.
pub fn run_main<F>(factory: F) -> ExitCode
where
    F: Fn(&Config) -> Box<dyn Handler> + 'static,
{
    match prepare() {
        Ok(config) => finish(serve(config, App::PerWorker(&factory))),
        Err(code) => code,
    }
}

/// Like [`run_main`], but builds the application once in the master before forking
/// ([`App::Preloaded`]).
///
/// ```no_run
/// use br_serve::{Request, Response};
///
/// fn main() -> std::process::ExitCode {
///     // Loaded once, shared by every worker copy-on-write.
///     let table: Vec<u64> = (0..1_000_000).collect();
///     br_serve::run_main_preloaded(move |_config| {
///         Box::new(move |req: &Request| {
///             let n: usize = req.query_param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
///             Response::text(200, format!("{}\n", table.get(n).copied().unwrap_or(0)))
///         })
///     })
/// }
/// ```
pub fn run_main_preloaded<F>(build: F) -> ExitCode
where
    F: FnOnce(&Config) -> Box<dyn Handler>,
{
    match prepare() {
        Ok(config) => {
            let app = build(&config);
            finish(serve(config, App::Preloaded(app)))
        }
        Err(code) => code,
    }
}

/// Runs a master with this configuration and application until it is told to stop.
/// Use this instead of [`run_main`] when the configuration is built in code.
pub fn serve(config: Config, app: App) -> Result<(), Error> {
    master::run(config, app)
}

/// Everything before serving: the `check` subcommand, the configuration, `--check-config`
/// and `--print-config`, logging. `Err` carries the exit code when there is nothing to
/// serve.
fn prepare() -> Result<Config, ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == "check") {
        let words: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
        return Err(check::run(&words));
    }
    let config = config::from_args_and_env().map_err(|err| error::report(&err))?;
    match &config.mode {
        config::Mode::Serve => {}
        config::Mode::Check => {
            println!("br-serve: configuration OK");
            return Err(ExitCode::SUCCESS);
        }
        config::Mode::Print(text) => {
            print!("{text}");
            return Err(ExitCode::SUCCESS);
        }
    }
    logging::init(&config).map_err(|err| error::report(&err))?;
    Ok(config)
}

fn finish(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error::report(&err),
    }
}
