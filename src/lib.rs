//! br-serve: a gunicorn-style pre-fork HTTP/1.1 server.
//!
//! # How the pieces fit
//!
//! A **master** process binds the listening sockets, creates what the workers share
//! (the scoreboard and the lifeline pipe), forks N **workers**, and then only
//! supervises: it reaps children, restarts the ones that die or hang, scales the pool on
//! `SIGTTIN`/`SIGTTOU` (or by itself, with `--max-workers`), rolls a new generation on
//! `SIGHUP` and drains on `SIGTERM` (`SIGQUIT` with `--signal-profile nginx`). The
//! master never runs the application (it answers only its own `--metrics-bind` port) and
//! never starts a thread, because it forks for its whole life (see `sys::fork`).
//!
//! Each **worker** runs a single-threaded [mio](https://docs.rs/mio) event loop over the
//! shared listening sockets and its connections, parses requests with
//! [httparse](https://docs.rs/httparse) plus our own strict
//! framing (the [`http`] module), and calls the application: a blocking [`Handler`].
//! A worker accepts a connection only when it can serve it now, so a CPU-heavy request
//! waits in the kernel's accept queue for an idle worker instead of behind a busy one.
//!
//! # Layout
//!
//! The modules in code font are private: their `//!` comments, in the source, say more.
//!
//! * [`config`]: command line and environment into a validated [`Config`].
//! * `sys`: the only place with `unsafe` (fork, signal dispositions, the shared-memory
//!   scoreboard, socket options, inherited descriptors), and the process plumbing beside
//!   it: the monotonic clock, the lifeline pipe, privileges, cgroups.
//! * `master`: the arbiter loop, the pure signal -> action map, the worker pool and its
//!   autoscaler, listeners, the `--metrics-bind` port, and telling an OOM kill from any
//!   other SIGKILL.
//! * `worker`: the event loop, the accept gate, the connection state machine and
//!   recycling (requests, age, memory).
//! * `metrics`: the Prometheus text, from the scoreboard and the listeners' accept
//!   queues, answered by a worker at `--metrics-path` or by the master.
//! * [`http`]: request heads, body framing (RFC 9112), chunked bodies, responses, dates.
//! * [`app`]: the [`Handler`] trait, the built-in demo application and the static file
//!   app (`--static DIR`).
//!
//! # Embedding
//!
//! A Rust program gets the whole process manager, CLI and signals by handing
//! [`run_main`] a factory that builds its handler in each worker (a closure, or any type
//! that implements [`Handler`]):
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
//!
//! The program then takes every `br-serve` flag (`--bind`, `--workers`, `--timeout`, ...),
//! environment variable and signal. [`run_main_preloaded`] builds the handler once before
//! forking instead, and [`serve`] runs with a [`Config`] adjusted in code.
//!
//! A handler is an ordinary value called with a [`Request`], so it is tested without a
//! server: build the request from raw bytes with [`http::parse_head`] and
//! [`Request::new`], as the examples throughout these docs do.
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
mod metrics;
mod sys;
mod worker;

pub use app::Handler;
pub use config::Config;
pub use error::{Error, ExitStatus};
pub use http::{Body, Request, RequestHead, Response, Version};
pub use worker::{heartbeat, is_draining, worker_number};

use std::process::ExitCode;
use std::sync::OnceLock;

/// The program's name and version, when one that embeds br-serve said them.
static PROGRAM: OnceLock<(&'static str, &'static str)> = OnceLock::new();

/// Names the program that embeds br-serve: `--version` prints `name version`, `--help`,
/// error messages (`name: error: ...`) and the log's start line (`Starting name version
/// (br-serve X)`) use `name`. Without it they say br-serve, whose they would otherwise
/// be. Call it first in `main`, before [`run_main`] or [`config::from_argv`]; only the
/// first call counts. The `Server` header still says br-serve, the software that
/// answers, as gunicorn's does under any application.
///
/// # Examples
///
/// ```no_run
/// use br_serve::{Request, Response};
///
/// fn main() -> std::process::ExitCode {
///     br_serve::identify_as("my-app", env!("CARGO_PKG_VERSION"));
///     br_serve::run_main(|_config| Box::new(|_req: &Request| Response::text(200, "hi\n")))
/// }
/// ```
pub fn identify_as(name: &'static str, version: &'static str) {
    let _ = PROGRAM.set((name, version));
}

/// The program's name and version: the embedding program's, or br-serve's own.
pub(crate) fn program() -> (&'static str, &'static str) {
    let own = ("br-serve", env!("CARGO_PKG_VERSION"));
    PROGRAM.get().copied().unwrap_or(own)
}

/// The start line's words for the program: `br-serve 0.1.0`, or `my-app 1.2.0 (br-serve
/// 0.1.0)` for a program that named itself.
pub(crate) fn program_and_server() -> String {
    match (program(), env!("CARGO_PKG_VERSION")) {
        (("br-serve", version), _) => format!("br-serve {version}"),
        ((name, version), own) => format!("{name} {version} (br-serve {own})"),
    }
}

/// Builds the application in each worker, after fork. It receives the validated
/// configuration, so one binary can choose between applications with a flag.
///
/// Any closure or function of that shape coerces to it; see [`App::PerWorker`].
///
/// # Examples
///
/// A plain function works as well as a closure, and may choose by configuration:
///
/// ```
/// use br_serve::app::demo::Demo;
/// use br_serve::{App, AppFactory, Config, Handler, Request, Response};
///
/// fn build(config: &Config) -> Box<dyn Handler> {
///     match config.workers {
///         1 => Box::new(Demo::boot()),
///         _ => Box::new(|_req: &Request| Response::text(200, "one of many\n")),
///     }
/// }
///
/// let factory: &AppFactory = &build;
/// let app = App::PerWorker(factory);
/// # let _ = app;
/// ```
pub type AppFactory = dyn Fn(&Config) -> Box<dyn Handler>;

/// Where the workers' application comes from, for [`serve`]. ([`run_main`] and
/// [`run_main_preloaded`] choose for you.)
///
/// # Examples
///
/// ```
/// use br_serve::{App, Config, Handler, Request, Response};
///
/// fn hello(_req: &Request) -> Response {
///     Response::text(200, "hello\n")
/// }
///
/// // Built in every worker, after fork:
/// let factory = |_config: &Config| -> Box<dyn Handler> { Box::new(hello) };
/// let per_worker = App::PerWorker(&factory);
///
/// // Built once, now, in the master:
/// let preloaded = App::Preloaded(Box::new(hello));
/// # let _ = (per_worker, preloaded);
/// ```
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
///
/// The factory runs in each worker after fork, and again for every generation a HUP
/// starts, so what it builds (connections, caches, handles of libraries that are not
/// thread-safe) belongs to one process. A factory that panics counts as a worker that
/// failed to boot: the master retries with a growing backoff. A booting worker is held
/// to `--timeout` like a busy one, so a factory that takes longer (loading a model)
/// calls [`heartbeat`] as it goes.
///
/// Each worker installs a panic hook before it calls the factory, which writes a panic
/// as one error-log record; a hook the program set before this call is replaced there.
/// To report panics elsewhere as well (an error tracker), set your hook in the factory,
/// calling the one [`std::panic::take_hook`] returns to keep the log record. The master
/// itself runs no threads and refuses to start beside any: threads belong in the
/// factory, after the fork.
///
/// # Examples
///
/// The `br-serve` binary's own `main`. `--static DIR` needs nothing from the factory: in
/// any program, the workers then serve the files under DIR in its place (and go back to
/// the factory's application when a HUP drops the flag).
///
/// ```no_run
/// use br_serve::app::demo::Demo;
///
/// fn main() -> std::process::ExitCode {
///     br_serve::run_main(|_config| Box::new(Demo::boot()))
/// }
/// ```
///
/// The factory gets the validated [`Config`], so a program's application can follow
/// the command line:
///
/// ```no_run
/// use br_serve::{Request, Response};
///
/// fn main() -> std::process::ExitCode {
///     br_serve::run_main(|config| {
///         let limit = config.limits.max_body;
///         Box::new(move |req: &Request| Response::text(200, format!("{} of {limit} bytes\n", req.body().len())))
///     })
/// }
/// ```
pub fn run_main<F>(factory: F) -> ExitCode
where
    F: Fn(&Config) -> Box<dyn Handler> + 'static,
{
    match prepare() {
        Ok(config) => finish(serve_as_loaded(config, App::PerWorker(&factory))),
        Err(code) => code,
    }
}

/// Like [`run_main`], but builds the application once in the master before forking
/// ([`App::Preloaded`]).
///
/// Right for large read-only data (a model, a lookup table): loaded once, its pages are
/// shared by every worker until one writes to them. A build that panics stops the start
/// before anything is bound, with exit status 1, rather than every worker failing the
/// same way in a loop. The handler is not rebuilt on HUP, so new data needs a restart (or
/// a USR2 upgrade). Each worker drops its copy as it leaves, and the master drops the
/// original as it exits, so a `Drop` with effects runs there too.
/// `examples/preloaded_table.rs` is a whole program.
///
/// # Examples
///
/// ```no_run
/// use br_serve::{Request, Response};
///
/// fn main() -> std::process::ExitCode {
///     br_serve::run_main_preloaded(|_config| {
///         // Built once, in the master, once the command line is read (not for `--help`
///         // or a bad flag) and with `-e` set; shared by every worker copy-on-write.
///         let table: Vec<u64> = (0..1_000_000).collect();
///         Box::new(move |req: &Request| {
///             let n: usize = req.query_param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
///             Response::text(200, format!("{}\n", table.get(n).copied().unwrap_or(0)))
///         })
///     })
/// }
/// ```
///
/// What must belong to one worker beside the shared data (a database connection, a
/// socket: descriptors opened before the fork would be shared by every worker) is opened
/// by the handler itself on its first request, in the worker: each worker's handler is
/// its own copy, and `&mut self` may fill it in (gunicorn's `post_fork` hook, without a
/// hook).
///
/// ```
/// use std::net::TcpStream;
///
/// use br_serve::{Handler, Request, Response};
///
/// struct Lookup {
///     table: Vec<u64>,               // built in the master, shared
///     upstream: Option<TcpStream>,   // this worker's own, opened on first use
/// }
///
/// impl Handler for Lookup {
///     fn handle(&mut self, _req: &Request) -> Response {
///         if self.upstream.is_none() {
///             self.upstream = TcpStream::connect("127.0.0.1:5432").ok();
///         }
///         let state = if self.upstream.is_some() { "connected" } else { "no upstream" };
///         Response::text(200, format!("{} entries, {state}\n", self.table.len()))
///     }
/// }
/// # let _ = Lookup { table: Vec::new(), upstream: None };
/// ```
pub fn run_main_preloaded<F>(build: F) -> ExitCode
where
    F: FnOnce(&Config) -> Box<dyn Handler>,
{
    match prepare() {
        Ok(config) => match preload(build, &config) {
            Ok(app) => finish(serve_as_loaded(config, App::Preloaded(app))),
            Err(err) => err.report(),
        },
        Err(code) => code,
    }
}

/// Builds the application in the master. A panic is logged as error-log records (the
/// worker's hook, put in place for the build), so that it reaches `--error-logfile`, where
/// Rust's own hook wrote it to stderr only; it ends the start with exit status 1, as any
/// other failure to start does, rather than with the 101 of an unwound `main`.
fn preload<F>(build: F, config: &Config) -> Result<Box<dyn Handler>, Error>
where
    F: FnOnce(&Config) -> Box<dyn Handler>,
{
    // With `--env` set for the build, as the workers' factories have it; the master's
    // own environment is put back after (it re-reads its configuration on HUP).
    let saved = sys::environ::set(&config.env);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(worker::log_panic));
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(config)));
    std::panic::set_hook(hook);
    sys::environ::restore(saved);
    built.map_err(|_| {
        Error::Config(
            "the application panicked while being built before forking (see above); \
             nothing was started"
                .into(),
        )
    })
}

/// Runs a master with this configuration and application until it is told to stop.
/// Use this instead of [`run_main`] when the configuration is built in code.
///
/// It is the part of [`run_main`] after the command line: it answers `--check-config`
/// and `--print-config` as `run_main` does ([`Config::mode`]: `configuration OK`, or the
/// configuration as the arguments, environment and file gave it, on stdout, and `Ok`
/// with nothing started; set `config.mode` to [`config::Mode::Serve`] to serve
/// regardless), sets up the error log from the configuration (unless a [`log`] logger
/// is installed already), and leaves reporting an error to the caller ([`Error::report`]
/// says it as the binary does, in `--error-logfile` too, and gives the exit code). The
/// configuration is read from arguments with
/// [`config::from_argv`], then adjusted; what was adjusted is checked again
/// ([`Config::check`]) before anything starts.
///
/// A HUP reloads the configuration from [`Config::argv`] (with the environment and the
/// `-c` file), so adjustments made in code do not survive a reload, except to what a
/// reload cannot change and keeps from the start: the listeners, the signal profile, the
/// umask, the log files and their format, and the pidfile (a HUP warns only when the
/// arguments, environment or file changed one of those). Put other settings that must
/// survive in the argument list instead.
///
/// # Errors
///
/// When the server cannot start (a port in use, an unreadable `--pid` or
/// `--access-logfile` path) or the master fails while running; a clean stop, graceful or
/// not, is `Ok`.
///
/// # Examples
///
/// ```no_run
/// use std::process::ExitCode;
///
/// use br_serve::config::BindAddr;
/// use br_serve::{App, Config, Handler, Request, Response};
///
/// fn main() -> ExitCode {
///     // Fixed settings as arguments: they also apply after a HUP reload.
///     let args = ["my-app", "--workers", "2", "--timeout", "120"];
///     let mut config = match br_serve::config::from_argv(args.map(Into::into).to_vec()) {
///         Ok(config) => config,
///         Err(err) => return err.report(),
///     };
///     // Listeners are kept across reloads, so they may be set in code.
///     config.binds = vec![BindAddr::Unix("/run/my-app.sock".into())];
///
///     let factory = |_config: &Config| -> Box<dyn Handler> {
///         Box::new(|req: &Request| Response::text(200, format!("{}\n", req.path())))
///     };
///     // `report` says why as the binary does: on stderr, and in --error-logfile.
///     match br_serve::serve(config, App::PerWorker(&factory)) {
///         Ok(()) => ExitCode::SUCCESS,
///         Err(err) => err.report(),
///     }
/// }
/// ```
pub fn serve(config: Config, app: App) -> Result<(), Error> {
    config.check()?;
    if answer_mode(&config) {
        return Ok(());
    }
    // What the arguments, environment and file say, before the changes made in code:
    // what the first HUP compares with. Read now, before the server announces itself,
    // after which the file may be edited for that HUP.
    let loaded = config::from_argv(config.argv.clone()).unwrap_or_else(|_| config.clone());
    start_logging(&config)?;
    master::run(config, loaded, app)
}

/// [`serve`] for a configuration straight from the command line, as loaded (by
/// [`prepare`], which started logging).
fn serve_as_loaded(config: Config, app: App) -> Result<(), Error> {
    master::run(config.clone(), config, app)
}

/// Logging, begun once each `fd://N` is known to be a listener this process inherited:
/// an error log opened first would take a number that was never handed down.
fn start_logging(config: &Config) -> Result<(), Error> {
    master::check_named_sockets(&config.binds)?;
    logging::init(config)
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
    let config = config::from_args_and_env().map_err(|err| err.report())?;
    if answer_mode(&config) {
        return Err(ExitCode::SUCCESS);
    }
    start_logging(&config).map_err(|err| err.report())?;
    Ok(config)
}

/// Answers `--check-config` or `--print-config` on stdout; whether either was asked
/// (and nothing is to be served).
fn answer_mode(config: &Config) -> bool {
    match &config.mode {
        config::Mode::Serve => false,
        config::Mode::Check => {
            let ok = format!("{}: configuration OK\n", program().0);
            say(std::io::stdout(), &ok);
            true
        }
        config::Mode::Print(text) => {
            say(std::io::stdout(), text);
            true
        }
    }
}

/// Writes `text` to `out` (stdout or stderr), whose reader may have gone
/// (`--print-config | head`): not `print!` or `eprint!`, which panic then. What the
/// reader did not take is no error of ours, as for clap's `--help`.
pub(crate) fn say(mut out: impl std::io::Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
}

fn finish(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Config` changed in code is checked before anything starts: no master, no
    /// socket, an error naming the value.
    #[test]
    fn serve_refuses_a_config_changed_out_of_range() {
        let mut config = config::from_argv(vec!["my-app".into()]).unwrap();
        config.worker_connections = 0;
        let factory = |_: &Config| -> Box<dyn Handler> {
            Box::new(|_: &Request| Response::text(200, "never\n"))
        };
        let err = serve(config, App::PerWorker(&factory)).unwrap_err();
        assert!(err.to_string().contains("worker_connections"), "{err}");
    }

    /// `--check-config` and `--print-config` are answered by `serve` too, with nothing
    /// started: it started a server on 127.0.0.1:8000 for either (an embedder's probe),
    /// where here, a test with threads, it fails at once.
    #[test]
    fn serve_answers_check_config_and_print_config() {
        let factory = |_: &Config| -> Box<dyn Handler> {
            Box::new(|_: &Request| Response::text(200, "never\n"))
        };
        for flag in ["--check-config", "--print-config"] {
            let config = config::from_argv(vec!["my-app".into(), flag.into()]).unwrap();
            let served = serve(config, App::PerWorker(&factory));
            assert!(served.is_ok(), "{flag}: {served:?}");
        }
    }
}
