//! Command line and environment into one validated [`Config`].
//!
//! Flag names follow gunicorn wherever gunicorn has the setting, so its users feel at
//! home. Every flag can also come from an environment variable (`BR_SERVE_` plus the
//! flag name in upper snake case), and `PORT`, `WEB_CONCURRENCY` and
//! `FORWARDED_ALLOW_IPS` are honoured the way gunicorn honours them: as defaults, below
//! everything else. Precedence: defaults (`PORT`, `WEB_CONCURRENCY`,
//! `FORWARDED_ALLOW_IPS`) < configuration file < environment (`BR_SERVE_*`) < command
//! line.
//!
//! The raw clap structure (`Cli`, internal) is turned into [`Config`] in one place, so
//! the rest of the server never sees an unvalidated value. A bad value is a
//! [`Error::Usage`] naming the flag and the value (exit code 2).
//!
//! A program that embeds br-serve gets a [`Config`] in two ways: [`crate::run_main`]
//! builds one from the process's command line and hands it to the application factory,
//! or [`from_argv`] builds one from any argument list, to adjust and pass to
//! [`crate::serve`].

mod cli;
mod file;
mod peers;
mod preflight;

pub use peers::AllowedPeers;

pub(crate) use preflight::{logs_for_workers, static_served_as_root, what_workers_open};

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::FromArgMatches;
/// The signal type [`SignalProfile`] answers with, re-exported so that a program can
/// name it without depending on the same version of `nix`.
pub use nix::sys::signal::Signal;

use self::cli::Cli;
use self::cli::parse_workers;
use crate::error::Error;
use crate::http::Limits;

/// Where to listen.
///
/// Written the way `--bind` takes it: `Display` gives `127.0.0.1:8000`, `[::1]:8000`,
/// `unix:/run/app.sock` or `fd://3`.
///
/// # Examples
///
/// ```
/// use br_serve::config::BindAddr;
///
/// let tcp = BindAddr::Tcp("[::1]:8080".parse().unwrap());
/// let unix = BindAddr::Unix("/run/app.sock".into());
/// let inherited = BindAddr::Fd(3);
/// assert_eq!(tcp.to_string(), "[::1]:8080");
/// assert_eq!(unix.to_string(), "unix:/run/app.sock");
/// assert_eq!(inherited.to_string(), "fd://3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    /// A TCP address, IPv4 or IPv6.
    Tcp(SocketAddr),
    /// A Unix domain socket path (`unix:PATH`).
    Unix(PathBuf),
    /// A listening socket this process inherited as descriptor N (`fd://N`), from a
    /// supervisor that binds for it (gunicorn's `fd://`; einhorn, s6, circus).
    Fd(std::os::fd::RawFd),
}

impl std::fmt::Display for BindAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindAddr::Tcp(addr) => write!(f, "{addr}"),
            BindAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            BindAddr::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

/// The validated settings the master and workers run with.
///
/// Every value has passed its checks (ranges, paths, users), so code that reads a
/// `Config` never validates again; one changed in code is checked again by
/// [`serve`](crate::serve) ([`Config::check`]). The application factory given to
/// [`run_main`](crate::run_main) receives it in each worker, which is how one program
/// adapts its handler to the command line: `--static`, the limits, the number of workers
/// sharing a resource. The settings the master keeps to itself (the user to switch to,
/// the access log's parsed format) are not public.
///
/// # Examples
///
/// What a factory can read, with a `Config` made from an argument list:
///
/// ```
/// use std::time::Duration;
///
/// use br_serve::config::{BindAddr, Mode, from_argv};
/// use br_serve::{Config, Handler, Request, Response};
///
/// let args = ["my-app", "--bind", "127.0.0.1:9000", "--workers", "4", "--timeout", "0",
///             "--graceful-timeout", "2.5", "--limit-request-body", "65536"];
/// let config = from_argv(args.map(Into::into).to_vec())?;
/// assert_eq!(config.binds, [BindAddr::Tcp("127.0.0.1:9000".parse().unwrap())]);
/// assert_eq!(config.workers, 4);
/// assert_eq!(config.timeout, None); // 0 turns the hang check off
/// assert_eq!(config.graceful_timeout, Duration::from_millis(2500));
/// assert_eq!(config.limits.max_body, 65_536);
/// assert_eq!(config.mode, Mode::Serve);
///
/// // A database that allows 100 connections in all: each worker takes its share of
/// // the most workers there can be (TTIN and --max-workers add to `workers`).
/// let factory = |config: &Config| -> Box<dyn Handler> {
///     let most = config.max_workers.unwrap_or(config.workers);
///     let share = (100 / most).max(1);
///     Box::new(move |_req: &Request| Response::text(200, format!("{share} connections\n")))
/// };
/// let _app = factory(&config); // 25 connections in each of the 4 workers
/// # Ok::<(), br_serve::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on, in order.
    pub binds: Vec<BindAddr>,
    /// SO_REUSEPORT on the TCP listeners (`--reuse-port`).
    pub reuse_port: bool,
    /// Connections begin with a PROXY protocol header naming the client
    /// (`--proxy-protocol`).
    pub proxy_protocol: bool,
    /// With `proxy_protocol`, the peers that may send the PROXY header
    /// (`--proxy-allow-from`).
    pub proxy_allow_from: AllowedPeers,
    /// Peers whose `X-Forwarded-Proto` says the request's scheme
    /// (`--forwarded-allow-ips`; [`Request::scheme`](crate::Request::scheme)).
    pub forwarded_allow_ips: AllowedPeers,
    /// How many workers to run.
    pub workers: usize,
    /// `--max-workers`: the autoscaler's ceiling (`workers` is its floor); `None` off.
    pub max_workers: Option<usize>,
    /// How long workers must sit idle before the autoscaler retires one.
    pub scale_down_after: Duration,
    /// The listen(2) backlog: how many connections may wait for a worker.
    pub backlog: i32,
    /// A worker silent for longer is killed and replaced; `None` disables the check.
    pub timeout: Option<Duration>,
    /// After TERM, how long to keep accepting while not ready, before draining.
    pub drain_delay: Duration,
    /// How long a graceful stop may take before the rest is killed.
    pub graceful_timeout: Duration,
    /// Which signals stop gracefully and which quickly.
    pub signal_profile: SignalProfile,
    /// How long an idle keep-alive connection is kept open.
    pub keep_alive: Duration,
    /// A whole request head must arrive within this, from its first byte.
    pub header_timeout: Duration,
    /// The longest pause while a request body is being received.
    pub body_timeout: Duration,
    /// The longest pause while a client is not reading its response.
    pub write_timeout: Duration,
    /// Skip a request whose client has closed its side before the application is called
    /// (`--check-client-connection`).
    pub check_client_connection: bool,
    /// A request that waited longer for a worker is answered 503 without reaching the
    /// application (`--queue-timeout`); `None` never.
    pub queue_timeout: Option<Duration>,
    /// Requests a worker serves before it is replaced; `None` never.
    pub max_requests: Option<u64>,
    /// Up to this many extra requests, chosen per worker, so workers do not all
    /// restart at once.
    pub max_requests_jitter: u64,
    /// A worker this old (give or take a tenth) is replaced; `None` never.
    pub max_worker_age: Option<Duration>,
    /// A worker whose anonymous resident memory passes this many bytes is replaced;
    /// `None` never.
    pub max_worker_memory: Option<u64>,
    /// The path at which workers answer with the server's metrics; `None` off.
    pub metrics_path: Option<String>,
    /// Where the master itself answers metrics scrapes; `None` off.
    pub metrics_bind: Option<SocketAddr>,
    /// Where to write the master's pid.
    pub pidfile: Option<PathBuf>,
    /// `--static DIR`: serve this directory (absolute, as given) instead of the application
    /// (the demo app, or the program's own: the workers build no other handler).
    pub static_root: Option<PathBuf>,
    /// List directories without an index.html.
    pub static_listing: bool,
    /// Bytes of small static files each worker keeps in memory (0: none).
    pub static_cache: usize,
    /// `Cache-Control: max-age` for static files; `None` sends none.
    pub static_max_age: Option<Duration>,
    /// Serve `FILE.br`/`FILE.gz` to clients that accept those codings.
    pub static_precompressed: bool,
    /// The file under the static root served for requests that find nothing.
    pub static_fallback: Option<String>,
    /// `--env`: what each worker sets in its environment before the application is
    /// built (and the master around a preloaded build), in order.
    pub env: Vec<(String, String)>,
    /// Who the workers run as, when not as the master's user.
    pub(crate) credentials: Option<crate::sys::privileges::Credentials>,
    /// `--umask`: masks the modes of what the server creates, Unix sockets
    /// (`rwxrwxrwx`) and the pidfile and log files (`rw-r--r--`); see
    /// [`Config::file_mode`]. The processes keep the umask they were started with.
    pub umask: u32,
    /// The most connections one worker holds at once.
    pub worker_connections: usize,
    /// HTTP size limits.
    pub limits: Limits,
    /// `--body-spool-size`: a request body over this many bytes goes to a temporary file
    /// as it arrives.
    pub body_spool_size: u64,
    /// `--body-spool-dir`: where those files are made (absolute).
    pub body_spool_dir: PathBuf,
    /// The log level of the error log.
    pub log_level: log::LevelFilter,
    /// Where the error log goes; `None` is stderr.
    pub error_log: Option<PathBuf>,
    /// Where the access log goes (`-` is stdout); `None` disables it.
    pub access_log: Option<String>,
    /// The access log's line format.
    pub(crate) access_log_format: crate::access_log::Format,
    /// Serve, or only check or print the configuration.
    pub mode: Mode,
    /// The command line this configuration came from, re-read on HUP.
    pub argv: Vec<OsString>,
}

/// What the command line asks for.
///
/// [`run_main`](crate::run_main) and [`serve`](crate::serve) both act on it: with
/// `--check-config` they say `configuration OK`, with `--print-config` they print the
/// configuration, and start nothing. A program that builds its configuration in code
/// and means to serve whatever the command line said sets it to [`Mode::Serve`].
///
/// # Examples
///
/// ```
/// use br_serve::config::{Mode, from_argv};
///
/// let config = from_argv(vec!["my-app".into(), "--check-config".into()])?;
/// assert_eq!(config.mode, Mode::Check);
///
/// let config = from_argv(vec!["my-app".into(), "--print-config".into(), "-w".into(), "3".into()])?;
/// let Mode::Print(text) = &config.mode else { panic!("expected Print") };
/// assert!(text.lines().any(|line| line == "workers = 3"));
/// # Ok::<(), br_serve::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Run the server.
    Serve,
    /// `--check-config`: report that the configuration is valid and exit.
    Check,
    /// `--print-config`: print these effective settings and exit.
    Print(String),
}

/// Which signals stop the server gracefully and which quickly (`--signal-profile`).
///
/// gunicorn's meanings are the default, because Docker, Kubernetes and systemd stop
/// services with TERM. nginx and unicorn have them the other way round, for operators
/// whose tooling sends QUIT for a graceful stop. A profile holds for the master and its
/// workers alike, so a signal sent to the whole process group means the same to each.
/// INT is a quick stop in both.
///
/// # Examples
///
/// ```
/// use br_serve::config::{Signal, SignalProfile, from_argv};
///
/// let config = from_argv(vec!["my-app".into(), "--signal-profile".into(), "nginx".into()])?;
/// assert_eq!(config.signal_profile, SignalProfile::Nginx);
/// assert_eq!(SignalProfile::Nginx.graceful(), Signal::SIGQUIT);
/// assert!(SignalProfile::Nginx.is_quick(Signal::SIGTERM));
/// assert_eq!(SignalProfile::Gunicorn.graceful(), Signal::SIGTERM);
/// assert!(SignalProfile::Gunicorn.is_quick(Signal::SIGQUIT));
/// # Ok::<(), br_serve::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignalProfile {
    /// TERM: graceful stop; INT and QUIT: quick stop (gunicorn).
    #[default]
    Gunicorn,
    /// QUIT: graceful stop; TERM and INT: quick stop (nginx, unicorn).
    Nginx,
}

impl SignalProfile {
    /// The signal of a graceful stop: an operator's to the master, and the master's to
    /// each worker it stops or retires.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::config::{Signal, SignalProfile};
    ///
    /// // What a supervisor sends to stop without dropping requests.
    /// let stop_with = SignalProfile::default().graceful();
    /// assert_eq!(stop_with, Signal::SIGTERM); // Docker, Kubernetes and systemd send TERM
    /// assert_eq!(SignalProfile::Nginx.graceful(), Signal::SIGQUIT);
    /// ```
    pub fn graceful(self) -> Signal {
        match self {
            SignalProfile::Gunicorn => Signal::SIGTERM,
            SignalProfile::Nginx => Signal::SIGQUIT,
        }
    }

    /// The signal the master sends each worker for a quick stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::config::{Signal, SignalProfile};
    ///
    /// assert_eq!(SignalProfile::Gunicorn.quick(), Signal::SIGQUIT);
    /// assert_eq!(SignalProfile::Nginx.quick(), Signal::SIGTERM);
    /// ```
    pub fn quick(self) -> Signal {
        match self {
            SignalProfile::Gunicorn => Signal::SIGQUIT,
            SignalProfile::Nginx => Signal::SIGTERM,
        }
    }

    /// Whether `signal` asks for a quick stop: INT, or the profile's [`quick`](Self::quick).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::config::{Signal, SignalProfile};
    ///
    /// for profile in [SignalProfile::Gunicorn, SignalProfile::Nginx] {
    ///     assert!(profile.is_quick(Signal::SIGINT)); // Ctrl-C is quick in both
    ///     assert!(!profile.is_quick(profile.graceful()));
    /// }
    /// ```
    pub fn is_quick(self, signal: Signal) -> bool {
        signal == Signal::SIGINT || signal == self.quick()
    }

    /// For the log: what each stop signal does.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::config::SignalProfile;
    ///
    /// assert_eq!(
    ///     SignalProfile::Nginx.describe(),
    ///     "QUIT graceful stop, INT/TERM quick stop"
    /// );
    /// ```
    pub fn describe(self) -> String {
        let name = crate::sys::signals::name;
        format!(
            "{} graceful stop, INT/{} quick stop",
            name(self.graceful()),
            name(self.quick())
        )
    }
}

/// Reads the process's command line and environment.
///
/// [`from_argv`] with [`std::env::args_os`]; see there for what is read and when it
/// exits the process.
///
/// # Errors
///
/// As [`from_argv`].
///
/// # Examples
///
/// ```no_run
/// let config = br_serve::config::from_args_and_env()?;
/// println!("{} workers on {}", config.workers, config.binds[0]);
/// # Ok::<(), br_serve::Error>(())
/// ```
pub fn from_args_and_env() -> Result<Config, Error> {
    from_argv(std::env::args_os().collect())
}

/// Reads `argv` (program name first), the current environment and, with `-c`, the
/// configuration file.
///
/// Precedence is file < environment (`BR_SERVE_*`) < `argv`, so values in `argv` are the
/// ones an operator cannot override. `PORT`, `WEB_CONCURRENCY` and `FORWARDED_ALLOW_IPS`
/// are only defaults, as in gunicorn: they apply when neither `argv`, the `BR_SERVE_`
/// variable nor the file sets `--bind`, `--workers` or `--forwarded-allow-ips`. Host names in `--bind`
/// are resolved here, and `--static`, `--user` and `--group` are checked against the
/// system, once.
///
/// Like any clap program, `--help` and `--version` print their text and exit the
/// process with status 0 from inside this call.
///
/// # Errors
///
/// [`Error::Usage`] for a flag or value that cannot be parsed (the message names it),
/// [`Error::Config`] for a setting that cannot be acted on (an unknown user, a missing
/// `--static` directory, a bad configuration file), [`Error::Io`] for a configuration
/// file that cannot be read. With `--check-config` ([`Mode::Check`]), also
/// [`Error::Config`] for what a start could not create or take: a pidfile, log file or
/// Unix socket whose directory is missing, an `fd://N` that is not a listening socket
/// (nothing is bound or created to find out).
///
/// # Examples
///
/// ```
/// use br_serve::config::from_argv;
///
/// let config = from_argv(vec!["my-app".into(), "-w".into(), "2".into(), "--max-requests".into(), "1000".into()])?;
/// assert_eq!((config.workers, config.max_requests), (2, Some(1000)));
///
/// let err = from_argv(vec!["my-app".into(), "--bind".into(), "unix:".into()]).unwrap_err();
/// assert_eq!(err.exit_status(), br_serve::ExitStatus::Usage);
/// # Ok::<(), br_serve::Error>(())
/// ```
pub fn from_argv(argv: Vec<OsString>) -> Result<Config, Error> {
    let mut command = cli::command();
    let matches = parse(&mut command, &argv).map_err(Error::Usage)?;
    let first = Cli::from_arg_matches(&matches).map_err(|e| Error::Usage(render(&e)))?;
    overridden_variables(&command, &matches, !first.bind.is_empty()).map_err(Error::Usage)?;
    // The file's addresses are used when neither the command line nor the environment
    // gives any: then a clash among them is the file's.
    let bind_file =
        (first.config.clone()).filter(|_| first.bind.is_empty() && cli::bind_env().is_none());
    let (cli, matches) = match &first.config {
        None => (first, matches),
        Some(path) => {
            let mut full: Vec<OsString> = argv.first().cloned().into_iter().collect();
            full.extend(file::args(path, &matches, &command)?);
            full.extend(argv.iter().skip(1).cloned());
            // The command line parsed cleanly alone, so an error now is the file's.
            let matches = parse(&mut command, &full)
                .map_err(|why| Error::Config(format!("{}: {why}", path.display())))?;
            let cli = Cli::from_arg_matches(&matches).map_err(|e| Error::Usage(render(&e)))?;
            (cli, matches)
        }
    };
    let mut config = validate(cli, argv, bind_file.as_deref())?;
    if config.mode == Mode::Check {
        preflight::check(&config)?;
    }
    if let Mode::Print(_) = config.mode {
        config.mode = Mode::Print(file::print(&matches, &command, &config.effective()));
    }
    Ok(config)
}

/// Parses in place: cloning clap's `Command` (every argument's strings) cost about 2 %
/// of start-up.
fn parse(command: &mut clap::Command, argv: &[OsString]) -> Result<clap::ArgMatches, String> {
    match command.try_get_matches_from_mut(argv) {
        Ok(matches) => Ok(matches),
        // --help and --version are not errors: clap prints them and we exit 0.
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => Err(blame_variable(&err, command, argv)),
    }
}

/// Every `BR_SERVE_*` variable that a flag overrides, checked as a file's overridden values
/// are: clap reads no variable whose flag is given, so `BR_SERVE_TIMEOUT=abc` beside
/// `--timeout 5` passed `--check-config`, and broke the start the day the flag went.
/// (`BR_SERVE_BIND`, read by us, with `bind_flag`: the command line gives `--bind`.)
fn overridden_variables(
    command: &clap::Command,
    matches: &clap::ArgMatches,
    bind_flag: bool,
) -> Result<(), String> {
    use clap::parser::ValueSource;
    let overridden = command.get_arguments().filter(|arg| {
        let set = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some());
        set && matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
    });
    for arg in overridden {
        let alone = clap::Command::new("br-serve").arg(arg.clone());
        let program = [OsString::from("br-serve")];
        if let Err(err) = alone.clone().try_get_matches_from(&program) {
            return Err(blame_variable(&err, &alone, &program));
        }
    }
    match bind_flag {
        true => cli::env_binds().map(drop),
        false => Ok(()),
    }
}

/// clap's message, naming the environment variable when the bad value came from one:
/// clap blames `BR_SERVE_WORKERS=abc` on `'--workers <INT>'`, which the command line
/// does not have, and the operator looks for it there.
fn blame_variable(err: &clap::Error, command: &clap::Command, argv: &[OsString]) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = render(err);
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return text;
    };
    let from_env = (command.get_arguments())
        .find(|arg| arg.to_string() == *shown)
        .filter(|arg| !argv.iter().skip(1).any(|word| cli::names(arg, word)))
        .and_then(|arg| arg.get_env())
        .filter(|name| std::env::var_os(name).is_some());
    match from_env {
        Some(name) => text.replacen(&format!("'{shown}'"), &name.to_string_lossy(), 1),
        None => text,
    }
}

/// clap's message without its own "error: " prefix (ours adds one), nor its closing
/// [`HELP_HINT`]: a HUP that fails puts the message in the error log, where that hint
/// was noise (in escaped newlines), and a configuration file has no `--help`.
fn render(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let text = text.trim_end();
    let text = text.strip_suffix(HELP_HINT).unwrap_or(text).trim_end();
    text.trim_start_matches("error: ").to_string()
}

/// The hint that ends clap's messages.
const HELP_HINT: &str = "For more information, try '--help'.";

fn validate(cli: Cli, argv: Vec<OsString>, bind_file: Option<&Path>) -> Result<Config, Error> {
    if let Some(why) = unmet_need(&cli) {
        return Err(Error::Usage(why));
    }
    let workers = workers(&cli)?;
    let binds = binds(cli.bind, cli.reuse_port, bind_file)?;
    if let Some(why) = metrics_clash(&binds, cli.metrics_bind) {
        return Err(Error::Usage(why));
    }
    let mode = match (cli.check_config, cli.print_config) {
        (true, _) => Mode::Check,
        (false, true) => Mode::Print(String::new()),
        (false, false) => Mode::Serve,
    };
    Ok(Config {
        binds,
        reuse_port: cli.reuse_port,
        proxy_protocol: cli.proxy_protocol,
        proxy_allow_from: cli.proxy_allow_from,
        forwarded_allow_ips: match cli.forwarded_allow_ips {
            Some(peers) => peers,
            None => default_forwarded_allow_ips(std::env::var("FORWARDED_ALLOW_IPS").ok())?,
        },
        workers,
        max_workers: cli.max_workers,
        scale_down_after: cli.scale_down_after,
        backlog: cli.backlog,
        timeout: Some(cli.timeout).filter(|t| !t.is_zero()),
        graceful_timeout: cli.graceful_timeout,
        signal_profile: cli.signal_profile,
        drain_delay: cli.drain_delay,
        keep_alive: cli.keep_alive,
        header_timeout: cli.header_timeout,
        body_timeout: cli.body_timeout,
        write_timeout: cli.write_timeout,
        check_client_connection: cli.check_client_connection,
        queue_timeout: Some(cli.queue_timeout).filter(|t| !t.is_zero()),
        max_requests: Some(cli.max_requests).filter(|&n| n > 0),
        max_requests_jitter: cli.max_requests_jitter,
        max_worker_age: Some(cli.max_worker_age).filter(|age| !age.is_zero()),
        max_worker_memory: Some(cli.max_worker_memory).filter(|&bytes| bytes > 0),
        metrics_path: cli.metrics_path,
        metrics_bind: cli.metrics_bind,
        pidfile: cli.pid,
        static_root: cli.static_root.as_deref().map(static_root).transpose()?,
        static_fallback: static_fallback(cli.static_root.as_deref(), cli.static_fallback)?,
        env: cli.env,
        static_listing: cli.static_listing,
        static_cache: cli.static_cache,
        static_max_age: cli.static_max_age,
        static_precompressed: cli.static_precompressed,
        credentials: crate::sys::privileges::Credentials::resolve(
            cli.user.as_deref(),
            cli.group.as_deref(),
            cli.initgroups,
        )
        .map_err(Error::Config)?,
        umask: cli.umask,
        worker_connections: cli.worker_connections,
        limits: Limits {
            request_line: cli.limit_request_line,
            fields: cli.limit_request_fields,
            field_size: cli.limit_request_field_size,
            max_body: cli.limit_request_body,
        },
        body_spool_size: cli.body_spool_size,
        body_spool_dir: spool_dir(cli.body_spool_dir)?,
        log_level: cli.log_level,
        error_log: cli.error_logfile.filter(|p| p.as_os_str() != "-"),
        access_log: cli.access_logfile,
        access_log_format: crate::access_log::Format::parse(
            &cli.access_logformat,
            cli.access_log_json,
        )
        .map_err(|why| Error::Usage(format!("invalid value for --access-logformat: {why}")))?,
        mode,
        argv,
    })
}

/// A flag given without the one it works with, which would otherwise do nothing, said in
/// words. A value equal to the default, or a switch set to false, asks for nothing.
fn unmet_need(cli: &Cli) -> Option<String> {
    let static_options = [
        ("--static-listing", cli.static_listing),
        ("--static-fallback", cli.static_fallback.is_some()),
        ("--static-precompressed", cli.static_precompressed),
        ("--static-max-age", cli.static_max_age.is_some()),
        (
            "--static-cache",
            cli.static_cache != crate::app::static_files::DEFAULT_CACHE_BYTES,
        ),
    ];
    let needs = static_options
        .into_iter()
        .map(|(flag, given)| (flag, given && cli.static_root.is_none(), "--static DIR"))
        .chain([
            (
                "--initgroups",
                cli.initgroups && cli.user.is_none(),
                "--user USER",
            ),
            (
                "--scale-down-after",
                cli.scale_down_after != cli::scale_down_default() && cli.max_workers.is_none(),
                "--max-workers INT",
            ),
            (
                "--proxy-allow-from",
                !cli.proxy_protocol
                    && !cli
                        .proxy_allow_from
                        .same_peers(&cli::proxy_senders_default()),
                "--proxy-protocol",
            ),
            (
                "--max-requests-jitter",
                cli.max_requests_jitter != 0 && cli.max_requests == 0,
                "--max-requests INT",
            ),
        ]);
    let (flag, _, needed) = needs.into_iter().find(|&(_, unmet, _)| unmet)?;
    Some(format!("{flag} needs {needed}"))
}

/// `--bind` from the command line or the file, else `BR_SERVE_BIND`, else the default.
/// (The file leaves `bind` to `BR_SERVE_BIND` when that is set: see `file::args`.)
/// `file` is the configuration file when the addresses given are its, so that a clash
/// among them names it.
fn binds(
    given: Vec<BindAddr>,
    reuse_port: bool,
    file: Option<&Path>,
) -> Result<Vec<BindAddr>, Error> {
    if !given.is_empty() {
        return match (clash(&given, reuse_port), file) {
            (None, _) => Ok(given),
            (Some(why), None) => Err(Error::Usage(format!("--bind: {why}"))),
            (Some(why), Some(path)) => Err(Error::Config(format!(
                "{}: setting 'bind': {why}",
                path.display()
            ))),
        };
    }
    match cli::env_binds().map_err(Error::Usage)? {
        from_env if !from_env.is_empty() => match clash(&from_env, reuse_port) {
            None => Ok(from_env),
            Some(why) => Err(Error::Usage(format!("{}: {why}", cli::BIND_ENV))),
        },
        _ => Ok(vec![default_bind(std::env::var("PORT").ok())?]),
    }
}

/// Two addresses that cannot both be listened on, said in words. Checked with the
/// configuration, since the start would fail on the second with "Address already in
/// use", as if another server held it:
/// - one address given twice, as written or as it resolves (with `--reuse-port` the
///   second would take half its connections and double its metric series);
/// - without `--reuse-port`, a wildcard beside an address it covers on the same port:
///   `0.0.0.0:80` and `127.0.0.1:80`, or `[::]:80` (which takes IPv4 connections too)
///   and `127.0.0.1:80`.
///
/// `[::]:80` beside `0.0.0.0:80` is no clash: the IPv6 one is then bound IPv6-only
/// (`master::listeners::v6_only`), as nginx binds `[::]`. Port 0 is not an
/// address: each `:0` is a port of its own.
fn clash(binds: &[BindAddr], reuse_port: bool) -> Option<String> {
    let port_zero = |bind: &BindAddr| matches!(bind, BindAddr::Tcp(addr) if addr.port() == 0);
    for (i, later) in binds
        .iter()
        .enumerate()
        .filter(|(_, bind)| !port_zero(bind))
    {
        for earlier in &binds[..i] {
            if earlier == later {
                return Some(format!(
                    "{later} is given twice (each address is listened on once)"
                ));
            }
            let (BindAddr::Tcp(a), BindAddr::Tcp(b)) = (earlier, later) else {
                continue;
            };
            let covering = [(a, b), (b, a)].into_iter().find(|&(w, n)| covers(*w, *n));
            if let (false, Some((wide, narrow))) = (reuse_port, covering) {
                return Some(format!(
                    "{wide} already listens on {narrow} (give one of them, or --reuse-port)"
                ));
            }
        }
    }
    None
}

/// `--metrics-bind` on an address a listener takes too, which the start would fail on with
/// "Address already in use", as if another server held the port: the same address, or
/// one a wildcard covers, either way, or both wildcards of a port (a lone `[::]` takes
/// IPv4 too). `--reuse-port` does not share it (the metrics port does not ask for
/// SO_REUSEPORT, and a share would send scrapes to the workers).
fn metrics_clash(binds: &[BindAddr], metrics: Option<SocketAddr>) -> Option<String> {
    let metrics = metrics.filter(|m| m.port() != 0)?;
    let wildcards = |addr: SocketAddr| addr.ip().is_unspecified() && metrics.ip().is_unspecified();
    let taken = |addr: SocketAddr| {
        addr.port() == metrics.port()
            && (addr == metrics
                || covers(addr, metrics)
                || covers(metrics, addr)
                || wildcards(addr))
    };
    let addr = binds.iter().find_map(|bind| match bind {
        BindAddr::Tcp(addr) if taken(*addr) => Some(addr),
        _ => None,
    })?;
    Some(format!(
        "--metrics-bind {metrics}: --bind {addr} listens there too (give the metrics a port \
         of their own)"
    ))
}

/// Whether a listener on `wide` takes the connections to `narrow` too, so that binding
/// both is refused (without SO_REUSEPORT): `wide` is a wildcard on the same port, of
/// the same family, or `[::]` (dual-stack) for a specific IPv4 address.
fn covers(wide: SocketAddr, narrow: SocketAddr) -> bool {
    let same_family = wide.is_ipv4() == narrow.is_ipv4();
    let dual_stack = wide.is_ipv6() && !narrow.ip().is_unspecified();
    wide.port() == narrow.port()
        && wide.ip().is_unspecified()
        && wide != narrow
        && (same_family || dual_stack)
}

/// `--workers`, or its default, checked against `--max-workers`.
fn workers(cli: &Cli) -> Result<usize, Error> {
    let workers = match cli.workers {
        Some(n) => n,
        None => default_workers(std::env::var("WEB_CONCURRENCY").ok())?,
    };
    if let Some(max) = cli.max_workers.filter(|&max| max < workers) {
        let given = match cli.workers {
            Some(_) => "",
            None => " (its default: WEB_CONCURRENCY or the CPUs available)",
        };
        return Err(Error::Usage(format!(
            "--max-workers {max} is below --workers {workers}{given}: the pool starts at \
             --workers and grows up to --max-workers"
        )));
    }
    Ok(workers)
}

impl Config {
    /// Whether a request body can outgrow `--body-spool-size` within
    /// `--limit-request-body`, and so be spooled: only then is the spool directory used.
    pub(crate) fn may_spool(&self) -> bool {
        self.limits.max_body > self.body_spool_size
    }

    /// Checks the ranges the command line enforces, for a `Config` changed in code:
    /// [`serve`](crate::serve) refuses one with no workers, a pool that cannot take a
    /// connection, a timeout of zero (`None` is "off"), and the like, as
    /// [`from_argv`] would have.
    ///
    /// ```
    /// let mut config = br_serve::config::from_argv(vec!["my-app".into()])?;
    /// assert!(config.check().is_ok());
    /// config.workers = 0;
    /// let err = config.check().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid configuration: workers must be at least 1");
    ///
    /// config.workers = 2;
    /// config.binds = vec![config.binds[0].clone(), config.binds[0].clone()];
    /// assert!(config.check().unwrap_err().to_string().contains("given twice"));
    ///
    /// // An environment no process can have, which each worker would panic setting.
    /// config.binds.pop();
    /// config.env.push(("BAD=KEY".into(), "1".into()));
    /// assert!(config.check().unwrap_err().to_string().contains("env keys"));
    /// # Ok::<(), br_serve::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first value out of range.
    pub fn check(&self) -> Result<(), Error> {
        use cli::{CLIENT_TIMEOUT_MIN, OFF_OR_SECONDS_MIN, SCALE_DOWN_MIN};
        let off_or_long = |d: Option<Duration>| d.is_none_or(|d| d >= OFF_OR_SECONDS_MIN);
        let limits = &self.limits;
        let rules = [
            (self.workers >= 1, "workers must be at least 1"),
            (
                self.max_workers.is_none_or(|max| max >= self.workers),
                "max_workers must be at least workers",
            ),
            (
                self.worker_connections >= 1,
                "worker_connections must be at least 1",
            ),
            (self.backlog >= 1, "backlog must be at least 1"),
            (
                off_or_long(self.timeout),
                "timeout must be None (off) or at least 1 s",
            ),
            (
                off_or_long(self.max_worker_age),
                "max_worker_age must be None or at least 1 s",
            ),
            (
                self.scale_down_after >= SCALE_DOWN_MIN,
                "scale_down_after must be at least 1 s",
            ),
            (
                [self.header_timeout, self.body_timeout, self.write_timeout]
                    .iter()
                    .all(|&d| d >= CLIENT_TIMEOUT_MIN),
                "header_timeout, body_timeout and write_timeout must be at least 0.1 s",
            ),
            (
                self.queue_timeout != Some(Duration::ZERO),
                "queue_timeout must be None (off) or above 0",
            ),
            (
                self.max_requests != Some(0),
                "max_requests must be None (off) or at least 1",
            ),
            (
                self.max_worker_memory != Some(0),
                "max_worker_memory must be None (off) or at least 1",
            ),
            (
                limits.request_line >= 1 && limits.fields >= 1 && limits.field_size >= 1,
                "limits.request_line, limits.fields and limits.field_size must be at least 1",
            ),
            (
                self.metrics_path
                    .as_deref()
                    .is_none_or(|p| cli::parse_metrics_path(p).is_ok()),
                "metrics_path must start with / and have no query",
            ),
            (
                self.env.iter().all(|(key, value)| {
                    cli::parse_env_pair(&format!("{key}={value}")).is_ok() && !key.contains('=')
                }),
                "env keys must be non-empty and hold no '=', and no key or value a NUL byte",
            ),
        ];
        match rules.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(Error::Config(format!("invalid configuration: {why}"))),
            None => match clash(&self.binds, self.reuse_port)
                .map(|why| format!("binds: {why}"))
                .or_else(|| metrics_clash(&self.binds, self.metrics_bind))
            {
                None => Ok(()),
                Some(why) => Err(Error::Config(format!("invalid configuration: {why}"))),
            },
        }
    }

    /// The mode the pidfile and log files are created with: `rw-r--r--`, as gunicorn's
    /// pidfile and nginx's logs, less `--umask` (and less the process's own umask, which
    /// the kernel applies too). Never writable by others, whatever `--umask` says.
    ///
    /// ```
    /// let mut config = br_serve::config::from_argv(vec!["br-serve".into()])?;
    /// assert_eq!(config.file_mode(), 0o644);
    /// config.umask = 0o027;
    /// assert_eq!(config.file_mode(), 0o640);
    /// # Ok::<(), br_serve::Error>(())
    /// ```
    pub fn file_mode(&self) -> u32 {
        0o644 & !self.umask
    }

    /// Settings whose effective value is not what clap holds (they have defaults that
    /// come from the environment or the machine), for `--print-config`.
    fn effective(&self) -> Vec<(&'static str, toml::Value)> {
        let binds = self
            .binds
            .iter()
            .map(|b| toml::Value::String(b.to_string()))
            .collect();
        vec![
            ("bind", toml::Value::Array(binds)),
            ("workers", toml::Value::Integer(self.workers as i64)),
            (
                "forwarded-allow-ips",
                toml::Value::String(self.forwarded_allow_ips.to_string()),
            ),
        ]
    }
}

/// Checks `--static DIR` once at start-up, so a typo fails with a message instead of
/// every worker failing to boot. The path is kept as given, made absolute, not resolved:
/// a deploy may switch a symlink on it, which the workers follow.
fn static_root(dir: &std::path::Path) -> Result<PathBuf, Error> {
    match dir.canonicalize() {
        Ok(root) if root.is_dir() => std::path::absolute(dir)
            .map_err(|err| Error::Config(format!("--static {}: {err}", dir.display()))),
        Ok(_) => Err(Error::Config(format!(
            "--static {}: not a directory",
            dir.display()
        ))),
        Err(err) => Err(Error::Config(format!("--static {}: {err}", dir.display()))),
    }
}

/// `--body-spool-dir`, or the system's temporary directory, made absolute. Whether the
/// workers can make files there is asked by a start (`preflight`), and only where a body
/// can be spooled: a server that takes no large body needs no such directory.
fn spool_dir(dir: Option<PathBuf>) -> Result<PathBuf, Error> {
    let dir = dir.unwrap_or_else(std::env::temp_dir);
    std::path::absolute(&dir)
        .map_err(|err| Error::Config(format!("--body-spool-dir {}: {err}", dir.display())))
}

/// Checks `--static-fallback PATH` once at start-up, as `static_root` does for the root:
/// it must be a file under the root.
fn static_fallback(
    root: Option<&std::path::Path>,
    path: Option<String>,
) -> Result<Option<String>, Error> {
    // Without --static, `unmet_need` has refused a fallback already.
    let (Some(root), Some(path)) = (root, path.as_deref()) else {
        return Ok(None);
    };
    let checked = crate::app::static_files::StaticFiles::new(root, false)
        .and_then(|files| files.with_fallback(path));
    match checked {
        Ok(_) => Ok(Some(path.to_string())),
        Err(err) => Err(Error::Config(format!("--static-fallback {path}: {err}"))),
    }
}

/// gunicorn: with `PORT` set and no bind given, listen on every interface at that port.
fn default_bind(port: Option<String>) -> Result<BindAddr, Error> {
    let Some(port) = port else {
        return Ok(BindAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 8000))));
    };
    match port.trim().parse::<u16>() {
        Ok(port) => Ok(BindAddr::Tcp(SocketAddr::from(([0, 0, 0, 0], port)))),
        Err(_) => Err(Error::Usage(format!(
            "invalid value '{port}' for PORT: not a port number"
        ))),
    }
}

/// `--forwarded-allow-ips` from `FORWARDED_ALLOW_IPS` (gunicorn's and uvicorn's variable,
/// set in many images), else the machine itself.
fn default_forwarded_allow_ips(variable: Option<String>) -> Result<AllowedPeers, Error> {
    let list = variable.as_deref().unwrap_or(peers::LOOPBACK);
    AllowedPeers::parse(list).map_err(|why| {
        Error::Usage(format!(
            "invalid value '{list}' for FORWARDED_ALLOW_IPS: {why}"
        ))
    })
}

/// Workers from `WEB_CONCURRENCY`, else one per available CPU.
fn default_workers(web_concurrency: Option<String>) -> Result<usize, Error> {
    match web_concurrency {
        Some(value) => parse_workers(&value).map_err(|why| {
            Error::Usage(format!(
                "invalid value '{value}' for WEB_CONCURRENCY: {why}"
            ))
        }),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FORWARDED_ALLOW_IPS` is gunicorn's default for the list, as `WEB_CONCURRENCY` is
    /// for the workers; a bad one is named.
    #[test]
    fn forwarded_allow_ips_variable_is_the_default() {
        let peer = |addr: &str| Some(addr.parse().unwrap());
        let given = default_forwarded_allow_ips(Some("10.0.0.9".into())).unwrap();
        assert!(given.admits(peer("10.0.0.9:1")) && !given.admits(peer("127.0.0.1:1")));
        let unset = default_forwarded_allow_ips(None).unwrap();
        assert!(unset.admits(peer("127.0.0.1:1")) && unset.admits(peer("[::1]:1")));
        let err = default_forwarded_allow_ips(Some("lo".into())).unwrap_err();
        assert!(err.to_string().contains("for FORWARDED_ALLOW_IPS"), "{err}");
    }

    #[test]
    fn port_and_web_concurrency_like_gunicorn() {
        let any = BindAddr::Tcp("0.0.0.0:5000".parse().unwrap());
        assert_eq!(default_bind(Some("5000".into())).unwrap(), any);
        assert!(default_bind(Some("http".into())).is_err());
        assert_eq!(default_workers(Some("3".into())).unwrap(), 3);
        assert!(default_workers(Some("0".into())).is_err());
        assert!(default_workers(None).unwrap() >= 1);
    }

    #[test]
    fn messages_end_without_the_help_hint() {
        let err = cli::command()
            .try_get_matches_from(["br-serve", "--backlog", "x"])
            .unwrap_err();
        // clap still ends with the hint, so stripping it is not a no-op.
        assert!(err.render().to_string().trim_end().ends_with(HELP_HINT));
        assert_eq!(
            render(&err),
            "invalid value 'x' for '--backlog <INT>': expected a whole number of at least 1"
        );
    }

    #[test]
    fn binds_that_cannot_all_be_listened_on_clash() {
        let parse = |list: &str| {
            list.split(' ')
                .map(|b| cli::parse_bind(b).unwrap())
                .collect::<Vec<_>>()
        };
        // (binds, with --reuse-port, clash expected)
        let cases = [
            ("127.0.0.1:80 127.0.0.1:81", false, false),
            ("127.0.0.1:80 127.0.0.1:80", false, true),
            ("127.0.0.1:80 127.0.0.1:80", true, true),
            ("127.0.0.1:0 127.0.0.1:0", false, false),
            ("unix:/tmp/a.sock unix:/tmp/a.sock", false, true),
            ("0.0.0.0:80 127.0.0.1:80", false, true),
            ("127.0.0.1:80 0.0.0.0:80", false, true),
            ("0.0.0.0:80 127.0.0.1:80", true, false),
            ("0.0.0.0:80 127.0.0.1:81", false, false),
            ("[::]:80 [::1]:80", false, true),
            ("[::]:80 127.0.0.1:80", false, true),
            ("[::]:80 0.0.0.0:80", false, false), // the IPv6 one is bound IPv6-only
            ("0.0.0.0:80 [::1]:80", false, false),
            ("[::1]:80 127.0.0.1:80", false, false),
            ("0.0.0.0:0 127.0.0.1:0", false, false),
        ];
        for (list, reuse_port, clashes) in cases {
            let got = clash(&parse(list), reuse_port);
            assert_eq!(
                got.is_some(),
                clashes,
                "{list} (reuse-port {reuse_port}): {got:?}"
            );
        }
    }

    #[test]
    fn a_metrics_port_a_listener_takes_clashes() {
        // (binds, --metrics-bind, clash expected)
        let cases = [
            ("127.0.0.1:8000", "127.0.0.1:9100", false),
            ("127.0.0.1:8000", "127.0.0.1:8000", true),
            ("0.0.0.0:8000", "127.0.0.1:8000", true),
            ("127.0.0.1:8000", "0.0.0.0:8000", true),
            ("[::]:8000", "127.0.0.1:8000", true),
            ("[::]:8000", "0.0.0.0:8000", true),
            ("0.0.0.0:8000", "[::]:8000", true),
            ("[::1]:8000", "127.0.0.1:8000", false),
            ("127.0.0.1:0", "127.0.0.1:0", false),
            ("unix:/tmp/a.sock", "127.0.0.1:8000", false),
        ];
        for (bind, metrics, clashes) in cases {
            let binds = [cli::parse_bind(bind).unwrap()];
            let got = metrics_clash(&binds, Some(metrics.parse().unwrap()));
            assert_eq!(got.is_some(), clashes, "{bind} {metrics}: {got:?}");
        }
        assert_eq!(
            metrics_clash(&[cli::parse_bind("127.0.0.1:1").unwrap()], None),
            None
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let cases = [
            ("--workers", "abc"),
            ("--workers", "-2"),
            ("--timeout", "-1"),
            ("--max-requests", "-1"),
            ("--backlog", "-5"),
            ("--umask", "-1"),
        ];
        for (flag, value) in cases {
            let err = from_argv(vec!["br-serve".into(), flag.into(), value.into()]);
            let msg = err.unwrap_err().to_string();
            assert!(msg.contains(flag) && msg.contains(value), "{msg}");
        }
    }
}
