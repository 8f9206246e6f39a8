//! The raw command line: clap's view of every flag, its environment variable and its
//! default, plus the value parsers that reject bad values with a message naming the
//! flag. [`super::validate`] turns this into a [`super::Config`].

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::{AllowedPeers, BindAddr, SignalProfile, peers};

/// br-serve: a pre-fork HTTP/1.1 server. A master binds the listening sockets, forks
/// workers that run the application, and supervises them: it restarts workers that die
/// or hang, adds or removes one on SIGTTIN/SIGTTOU, rolls a new generation on SIGHUP and
/// drains gracefully on SIGTERM (SIGQUIT with --signal-profile nginx).
#[derive(Parser, Debug)]
#[command(name = "br-serve", version, about, long_about = None, max_term_width = 100)]
#[command(
    after_help = "Every setting can also be given as BR_SERVE_<FLAG> (e.g. BR_SERVE_WORKERS=4) \
or in the -c file. Signals: TERM graceful stop, INT/QUIT quick stop (with --signal-profile \
nginx: QUIT graceful, INT/TERM quick), HUP reload, \
TTIN/TTOU one worker more/fewer, USR1 reopen logs, USR2 binary upgrade, WINCH stop workers.\n\n\
The subcommand `check http://HOST:PORT/PATH [TIMEOUT_SECONDS]` probes a URL for a container's \
health check (exit 0 on a 2xx or 3xx answer, 1 otherwise), e.g. the master's /healthz on --metrics-bind; \
`check --proxy-protocol URL` sends a PROXY header first."
)]
pub(crate) struct Cli {
    /// Read settings from this TOML file: each key is a flag's long name (`workers = 4`,
    /// `bind = ["0.0.0.0:80"]`). BR_SERVE_* variables and the command line override it
    /// (PORT and WEB_CONCURRENCY do not: they are defaults); HUP reads it again.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        env = "BR_SERVE_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Validate the configuration (flags, environment, file), and that the directories of
    /// its files and Unix sockets exist and its fd:// sockets listen, binding and creating
    /// nothing; print the verdict and exit: 0 when it is valid, 1 or 2 when it is not.
    #[arg(long = "check-config", conflicts_with = "print_config")]
    pub check_config: bool,

    /// Print the effective settings as a configuration file and exit.
    #[arg(long = "print-config")]
    pub print_config: bool,

    /// Address to listen on: HOST:PORT, [IPV6]:PORT, unix:PATH, or fd://N for a listening
    /// socket inherited as descriptor N. Repeat to listen on several. Default
    /// 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set [env: BR_SERVE_BIND=, the
    /// addresses separated by commas; a flag or a file entry takes its value whole]
    #[arg(short = 'b', long = "bind", value_name = "ADDRESS", value_parser = parse_bind)]
    pub bind: Vec<BindAddr>,

    /// Number of worker processes. Default: $WEB_CONCURRENCY, else the CPUs available
    /// to this process (cgroup quotas included).
    #[arg(short = 'w', long, value_name = "INT", env = "BR_SERVE_WORKERS",
          value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// Let the pool grow up to this many workers while connections wait in the accept
    /// queue and no worker is idle (one more per second of that), and shrink back to
    /// --workers after workers sit idle. Off unless given.
    #[arg(long, value_name = "INT", env = "BR_SERVE_MAX_WORKERS", value_parser = parse_workers)]
    pub max_workers: Option<usize>,

    /// With --max-workers: how long two workers must sit idle, with nothing waiting, before
    /// the pool shrinks by one.
    #[arg(long, value_name = "SECONDS", env = "BR_SERVE_SCALE_DOWN_AFTER",
          default_value = SCALE_DOWN_DEFAULT, value_parser = parse_scale_down_after)]
    pub scale_down_after: Duration,

    /// Set SO_REUSEPORT on the TCP listeners, so several independent br-serve masters
    /// can listen on the same port and the kernel spreads new connections among them.
    #[arg(long = "reuse-port", env = "BR_SERVE_REUSE_PORT", value_parser = boolish())]
    pub reuse_port: bool,

    /// Every connection begins with a PROXY protocol header (version 1 or 2) from the load
    /// balancer in front, and the client it names is the request's peer address (the
    /// access log's %(h)s); a connection without one is answered 400 and closed, and one
    /// from a peer --proxy-allow-from does not list, 403 (nginx's `listen ...
    /// proxy_protocol`, gunicorn's --proxy-protocol).
    #[arg(long = "proxy-protocol", env = "BR_SERVE_PROXY_PROTOCOL", value_parser = boolish())]
    pub proxy_protocol: bool,

    /// With --proxy-protocol: the peers that may send the PROXY header, addresses and
    /// networks (comma-separated ADDR or ADDR/BITS, * for any); a connection from any
    /// other is answered 403 and closed, whatever it sends, since its header could name
    /// any client. Unix-socket peers may always send it (gunicorn's proxy_allow_ips).
    #[arg(long = "proxy-allow-from", value_name = "LIST", env = "BR_SERVE_PROXY_ALLOW_FROM",
          default_value = peers::LOOPBACK, value_parser = proxy_senders)]
    pub proxy_allow_from: AllowedPeers,

    /// Peers trusted to say how a request reached them: from these addresses or networks
    /// (comma-separated ADDR or ADDR/BITS, * for any, empty for none), an
    /// X-Forwarded-Proto of https (X-Forwarded-Protocol ssl, X-Forwarded-Ssl on) makes the
    /// request's scheme https for the application. Unix-socket peers are trusted; the
    /// peer is the connection's, the balancer's behind --proxy-protocol (gunicorn's
    /// forwarded_allow_ips). Default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1.
    #[arg(long = "forwarded-allow-ips", value_name = "LIST",
          env = "BR_SERVE_FORWARDED_ALLOW_IPS", value_parser = AllowedPeers::parse)]
    pub forwarded_allow_ips: Option<AllowedPeers>,

    /// Most connections waiting in the kernel for a worker to accept them.
    #[arg(long, value_name = "INT", env = "BR_SERVE_BACKLOG", default_value_t = 2048,
          value_parser = parse_backlog)]
    pub backlog: i32,

    /// Workers silent for more than this many seconds are killed and restarted (0: never;
    /// otherwise at least 1).
    #[arg(short = 't', long, value_name = "SECONDS", env = "BR_SERVE_TIMEOUT",
          default_value = "30", value_parser = parse_off_or_seconds)]
    pub timeout: Duration,

    /// After the graceful stop signal (TERM; QUIT with --signal-profile nginx), keep
    /// accepting for this many seconds while readiness fails (the demo's /readyz answers
    /// 503; an application asks is_draining), so a load balancer (Kubernetes endpoints)
    /// stops routing here first; then drain.
    #[arg(long, value_name = "SECONDS", env = "BR_SERVE_DRAIN_DELAY",
          default_value = "0", value_parser = parse_seconds)]
    pub drain_delay: Duration,

    /// After the graceful stop signal, how long workers may finish in-flight requests
    /// before being killed.
    #[arg(long, value_name = "SECONDS", env = "BR_SERVE_GRACEFUL_TIMEOUT",
          default_value = "30", value_parser = parse_seconds)]
    pub graceful_timeout: Duration,

    /// Which signals stop gracefully: gunicorn (TERM graceful, INT/QUIT quick) or nginx,
    /// also called unicorn (QUIT graceful, INT/TERM quick), for master and workers alike.
    #[arg(long, value_name = "PROFILE", env = "BR_SERVE_SIGNAL_PROFILE",
          default_value = "gunicorn", value_parser = parse_signal_profile)]
    pub signal_profile: SignalProfile,

    /// Seconds an idle keep-alive connection stays open.
    #[arg(long = "keep-alive", value_name = "SECONDS", env = "BR_SERVE_KEEP_ALIVE",
          default_value = "2", value_parser = parse_seconds)]
    pub keep_alive: Duration,

    /// Seconds a client has to send a whole request head, counted from its first byte
    /// (slow clients such as slowloris are cut off with 408). At least 0.1: there is no
    /// "never".
    #[arg(long, value_name = "SECONDS", env = "BR_SERVE_HEADER_TIMEOUT",
          default_value = "10", value_parser = parse_client_timeout)]
    pub header_timeout: Duration,

    /// Longest pause, in seconds, while a request body is being received (408 after it).
    /// At least 0.1: there is no "never".
    #[arg(long, value_name = "SECONDS", env = "BR_SERVE_BODY_TIMEOUT",
          default_value = "30", value_parser = parse_client_timeout)]
    pub body_timeout: Duration,

    /// Longest wait, in seconds, for the client to take more of its response: between
    /// two writes that make progress, as nginx's send_timeout. At least 0.1: there is no
    /// "never".
    #[arg(long, value_name = "SECONDS", env = "BR_SERVE_WRITE_TIMEOUT",
          default_value = "30", value_parser = parse_client_timeout)]
    pub write_timeout: Duration,

    /// Before calling the application, check that the client is still there, and skip
    /// the request (access log status 499) when it has closed its side, as a client that
    /// timed out while queued does. A client that half-closes after sending its request
    /// gets no answer then (unicorn's check_client_connection).
    #[arg(long = "check-client-connection", env = "BR_SERVE_CHECK_CLIENT_CONNECTION",
          value_parser = boolish())]
    pub check_client_connection: bool,

    /// A request that has waited longer than this many seconds for a worker (counted from
    /// its arrival, in the kernel's queue and ours) is answered 503 at once, without
    /// reaching the application: its client has likely given up (0: never).
    #[arg(long = "queue-timeout", value_name = "SECONDS", env = "BR_SERVE_QUEUE_TIMEOUT",
          default_value = "0", value_parser = parse_seconds)]
    pub queue_timeout: Duration,

    /// Requests a worker serves before it is replaced by a fresh one (0: never).
    /// Contains memory leaks.
    #[arg(
        long,
        value_name = "INT",
        env = "BR_SERVE_MAX_REQUESTS",
        default_value_t = 0,
        value_parser = parse_count
    )]
    pub max_requests: u64,

    /// Adds up to this many requests to each worker's --max-requests, at random, so
    /// workers do not all restart at the same moment.
    #[arg(
        long,
        value_name = "INT",
        env = "BR_SERVE_MAX_REQUESTS_JITTER",
        default_value_t = 0,
        value_parser = parse_count
    )]
    pub max_requests_jitter: u64,

    /// Replace a worker once it has run this many seconds, plus up to a tenth more at
    /// random (0: never; otherwise at least 1). Its successor is started first.
    #[arg(long = "max-worker-age", value_name = "SECONDS", env = "BR_SERVE_MAX_WORKER_AGE",
          default_value = "0", value_parser = parse_off_or_seconds)]
    pub max_worker_age: Duration,

    /// Replace a worker once its memory (anonymous resident: heap and stacks, what a leak
    /// grows) passes this many bytes, e.g. 512M (0: never). Its successor is started first.
    #[arg(long = "max-worker-memory", value_name = "BYTES",
          env = "BR_SERVE_MAX_WORKER_MEMORY", default_value = "0", value_parser = parse_bytes)]
    pub max_worker_memory: u64,

    /// Answer GET PATH (e.g. /metrics) with the server's metrics in Prometheus' text
    /// format: workers by state, requests served and skipped, each worker's requests,
    /// age, time in its request and memory, each listener's accept queue. Off unless
    /// given; the application never sees that path.
    #[arg(long = "metrics-path", value_name = "PATH", env = "BR_SERVE_METRICS_PATH",
          value_parser = parse_metrics_path)]
    pub metrics_path: Option<String>,

    /// Serve the metrics from the master itself on this TCP address, at
    /// /metrics, and its liveness at /healthz (503 while workers die during boot and none
    /// serves): answered even when every worker is busy, on a port that can stay
    /// private. Bound once, like --bind; a USR2 upgrade carries it over.
    #[arg(long = "metrics-bind", value_name = "HOST:PORT", env = "BR_SERVE_METRICS_BIND",
          value_parser = parse_metrics_bind)]
    pub metrics_bind: Option<SocketAddr>,

    /// Write the master's pid to this file (removed on exit; renamed to FILE.oldbin
    /// during a USR2 binary upgrade).
    #[arg(short = 'p', long = "pid", value_name = "FILE", env = "BR_SERVE_PID")]
    pub pid: Option<PathBuf>,

    /// Serve the files under this directory instead of the application (the demo app, or the program's own). Dotfiles (but /.well-known/) and symlinks that leave DIR are not served (404)
    #[arg(long = "static", value_name = "DIR", env = "BR_SERVE_STATIC")]
    pub static_root: Option<PathBuf>,

    /// With --static: list directories that have no index.html.
    #[arg(long = "static-listing", env = "BR_SERVE_STATIC_LISTING", value_parser = boolish())]
    pub static_listing: bool,

    /// With --static: bytes of small files (16 KiB or less each) each worker keeps in
    /// memory, checked against the disk on every request, so never stale (0: off).
    #[arg(long = "static-cache", value_name = "BYTES", env = "BR_SERVE_STATIC_CACHE",
          default_value_t = crate::app::static_files::DEFAULT_CACHE_BYTES,
          value_parser = parse_size)]
    pub static_cache: usize,

    /// With --static: add `Cache-Control: max-age=SECONDS` to what is worth keeping
    /// (200, 206, 304, 301), as nginx's `expires` does, so browsers and CDNs keep it that
    /// long. Off unless given.
    #[arg(long = "static-max-age", value_name = "SECONDS", env = "BR_SERVE_STATIC_MAX_AGE",
          value_parser = parse_seconds)]
    pub static_max_age: Option<Duration>,

    /// With --static: answer a request for FILE with FILE.br or FILE.gz, when it exists
    /// and the client accepts that coding (nginx's gzip_static), and add
    /// `Vary: Accept-Encoding` to file answers.
    #[arg(long = "static-precompressed", env = "BR_SERVE_STATIC_PRECOMPRESSED",
          value_parser = boolish())]
    pub static_precompressed: bool,

    /// With --static: answer requests that find nothing with this file (e.g.
    /// /index.html) and status 200, as nginx's `try_files $uri $uri/ /index.html` does
    /// for single-page apps.
    #[arg(long = "static-fallback", value_name = "PATH", env = "BR_SERVE_STATIC_FALLBACK",
          value_parser = non_empty())]
    pub static_fallback: Option<String>,

    /// Set an environment variable for the application, KEY=VALUE; repeat for several
    /// (gunicorn's -e). Set in each worker before the application is built (so a HUP
    /// applies a changed list) and around a preloaded build; the master's own
    /// environment is left as it was.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,

    /// Run workers as this user (name or uid). The master keeps its privileges to bind
    /// and re-execute; needs br-serve to start as root.
    #[arg(short = 'u', long, value_name = "USER", env = "BR_SERVE_USER",
          value_parser = non_empty())]
    pub user: Option<String>,

    /// Run workers as this group (name or gid). Default: the user's primary group; needed
    /// when --user is a uid with no passwd entry, which has none.
    #[arg(short = 'g', long, value_name = "GROUP", env = "BR_SERVE_GROUP",
          value_parser = non_empty())]
    pub group: Option<String>,

    /// Give workers the user's supplementary groups (initgroups(3)) instead of none.
    #[arg(long, env = "BR_SERVE_INITGROUPS", value_parser = boolish())]
    pub initgroups: bool,

    /// Mode mask (octal) for what the server creates: Unix sockets (777 less it), the
    /// pidfile and log files (644 less it).
    #[arg(long, value_name = "OCTAL", env = "BR_SERVE_UMASK", default_value = "0",
          value_parser = crate::sys::privileges::parse_umask)]
    pub umask: u32,

    /// Most simultaneous connections per worker.
    #[arg(long, value_name = "INT", env = "BR_SERVE_WORKER_CONNECTIONS",
          default_value_t = 1000, value_parser = parse_worker_connections)]
    pub worker_connections: usize,

    /// Most bytes in the request line (414 above it).
    #[arg(long, value_name = "INT", env = "BR_SERVE_LIMIT_REQUEST_LINE",
          default_value_t = 4094, value_parser = parse_positive)]
    pub limit_request_line: usize,

    /// Most header fields in a request (431 above it).
    #[arg(long, value_name = "INT", env = "BR_SERVE_LIMIT_REQUEST_FIELDS",
          default_value_t = 100, value_parser = parse_positive)]
    pub limit_request_fields: usize,

    /// Most bytes in one header field (431 above it).
    #[arg(long, value_name = "INT", env = "BR_SERVE_LIMIT_REQUEST_FIELD_SIZE",
          default_value_t = 8190, value_parser = parse_positive)]
    pub limit_request_field_size: usize,

    /// Most bytes in a request body (413 above it).
    #[arg(long, value_name = "BYTES", env = "BR_SERVE_LIMIT_REQUEST_BODY",
          default_value_t = 1 << 20, value_parser = parse_bytes)]
    pub limit_request_body: u64,

    /// A request body over this many bytes is written to a temporary file in
    /// --body-spool-dir as it arrives, instead of being kept in memory; the handler reads
    /// it mapped from there.
    #[arg(long, value_name = "BYTES", env = "BR_SERVE_BODY_SPOOL_SIZE",
          default_value_t = 1 << 20, value_parser = parse_bytes)]
    pub body_spool_size: u64,

    /// Where spooled request bodies go, as files with no name, gone when their request
    /// is. Default: $TMPDIR, else /tmp.
    #[arg(long, value_name = "DIR", env = "BR_SERVE_BODY_SPOOL_DIR")]
    pub body_spool_dir: Option<PathBuf>,

    /// Access log: a file, or `-` for stdout. Off unless given.
    #[arg(long = "access-logfile", value_name = "FILE", env = "BR_SERVE_ACCESS_LOGFILE",
          value_parser = non_empty())]
    pub access_logfile: Option<String>,

    /// Access log format, with gunicorn's atoms: %(h)s remote address, %(t)s time,
    /// %(r)s request line, %(s)s status, %(b)s body bytes, %(f)s referer, %(a)s user
    /// agent, %(D)s microseconds, %({header}i)s a request header, ... Default: Apache
    /// combined.
    #[arg(long = "access-logformat", value_name = "FORMAT", env = "BR_SERVE_ACCESS_LOGFORMAT",
          default_value = crate::access_log::DEFAULT_FORMAT, value_parser = parse_log_format)]
    pub access_logformat: String,

    /// Write the access log as JSON lines, one object of the format's atoms per request.
    #[arg(long = "access-log-json", env = "BR_SERVE_ACCESS_LOG_JSON", value_parser = boolish())]
    pub access_log_json: bool,

    /// Error log file (default: stderr). USR1 reopens it, and the access log.
    #[arg(
        long = "error-logfile",
        value_name = "FILE",
        env = "BR_SERVE_ERROR_LOGFILE"
    )]
    pub error_logfile: Option<PathBuf>,

    /// Error log level: debug, info, warning, error or critical (also trace, warn, off).
    #[arg(long, value_name = "LEVEL", env = "BR_SERVE_LOG_LEVEL", default_value = "info",
          value_parser = parse_log_level)]
    pub log_level: log::LevelFilter,
}

/// The flags as clap parses them. A numeric flag takes a value that starts with `-`, so
/// that `--timeout -1` is refused by its value parser, naming the flag, rather than read
/// as an unknown flag `-1`.
pub(super) fn command() -> clap::Command {
    use clap::CommandFactory;
    let command = Cli::command().mut_args(|arg| match Kind::of(&arg) {
        Kind::Integer | Kind::Seconds => arg.allow_negative_numbers(true),
        Kind::Text => arg,
    });
    // A program that embeds br-serve goes by its own name (`crate::identify_as`).
    match crate::program() {
        ("br-serve", _) => command,
        (name, version) => command.name(name).version(version).about(format!(
            "{name}, served by br-serve {}: a pre-fork HTTP/1.1 server",
            env!("CARGO_PKG_VERSION")
        )),
    }
}

/// What a flag's value is, by the type its value parser yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A whole number (a size may carry a unit: `64K`).
    Integer,
    /// Seconds, whole or fractional.
    Seconds,
    /// Everything else: paths, addresses, names, formats.
    Text,
}

impl Kind {
    pub(super) fn of(arg: &clap::Arg) -> Kind {
        use std::any::TypeId;
        let parsed = arg.get_value_parser().type_id();
        let integers = [
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i32>(),
            TypeId::of::<u32>(),
        ];
        if integers.iter().any(|ty| parsed == *ty) {
            Kind::Integer
        } else if parsed == TypeId::of::<Duration>() {
            Kind::Seconds
        } else {
            Kind::Text
        }
    }
}

/// Whether a command-line word gives `arg`: `--workers`, `--workers=4`, `-w` or `-w4`.
pub(super) fn names(arg: &clap::Arg, word: &OsString) -> bool {
    let word = word.to_string_lossy();
    let long = arg.get_long().map(|long| format!("--{long}"));
    let by_long = long.is_some_and(|long| {
        word.strip_prefix(long.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
    });
    let short = arg.get_short().map(|short| format!("-{short}"));
    by_long || short.is_some_and(|short| word.starts_with(short.as_str()))
}

/// On/off flags read from the environment (`BR_SERVE_REUSE_PORT=1`) take what
/// container manifests write: 1/0, true/false, yes/no, on/off.
fn boolish() -> clap::builder::BoolishValueParser {
    clap::builder::BoolishValueParser::new()
}

/// `KEY=VALUE` for `--env`: split at the first `=`, so a value may hold more (a URL's
/// query). A key must be there, and neither may hold a NUL byte, which no environment
/// can (`std::env::set_var` would panic in the worker).
pub(super) fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        _ if text.contains('\0') => Err("a NUL byte cannot be in the environment".into()),
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

/// A path held as text must not be empty, as clap requires of a `PathBuf`: an empty
/// `--access-logfile` passed `--check-config` (as the current directory) and failed at
/// start.
fn non_empty() -> clap::builder::NonEmptyStringValueParser {
    clap::builder::NonEmptyStringValueParser::new()
}

/// The variable that lists `--bind` addresses, separated by commas.
pub(super) const BIND_ENV: &str = "BR_SERVE_BIND";

/// `BR_SERVE_BIND`, when set (empty too: refused as every variable's empty value is,
/// not taken as unset, which listened on `PORT`'s `0.0.0.0` without a word). It is read
/// here rather than by clap, whose delimiter would split `--bind` flags and file
/// entries on commas too, and a Unix socket's path may hold one; a variable has no other
/// way to list several addresses.
pub(super) fn bind_env() -> Option<String> {
    std::env::var_os(BIND_ENV).map(|value| value.to_string_lossy().into_owned())
}

/// The addresses `BR_SERVE_BIND` lists, for when neither the command line nor the file
/// gives `--bind`. Set, it must name one: `" "` or `","` passed over the file's `bind`
/// (the variable was set) and then named nothing, so `PORT`'s `0.0.0.0` or the default
/// was listened on instead.
pub(super) fn env_binds() -> Result<Vec<BindAddr>, String> {
    let Some(list) = bind_env() else {
        return Ok(Vec::new());
    };
    match parse_bind_list(&list)? {
        binds if binds.is_empty() => Err(format!(
            "invalid value '{list}' for {BIND_ENV}: it names no address (unset it, or list \
             HOST:PORT, unix:PATH or fd://N, separated by commas)"
        )),
        binds => Ok(binds),
    }
}

/// `127.0.0.1:80,unix:/run/app.sock`: addresses separated by commas.
fn parse_bind_list(list: &str) -> Result<Vec<BindAddr>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            parse_bind(part).map_err(|why| format!("invalid value '{part}' in {BIND_ENV}: {why}"))
        })
        .collect()
}

/// The longest path of a Unix socket: `sun_path` less its closing NUL (107 bytes on
/// Linux). Checked here because bind(2) cannot take a longer one, and `--check-config`,
/// which binds nothing, passed it.
const UNIX_PATH_MAX: usize = {
    use nix::libc::sockaddr_un;
    std::mem::size_of::<sockaddr_un>() - std::mem::offset_of!(sockaddr_un, sun_path) - 1
};

/// Parses `HOST:PORT`, `[V6]:PORT`, `unix:PATH`, `fd://N`, or a bare `HOST` (port 8000,
/// as gunicorn does). Host names are resolved now, once.
pub(crate) fn parse_bind(value: &str) -> Result<BindAddr, String> {
    if let Some(fd) = value.strip_prefix("fd://") {
        // 0, 1 and 2 are stdio, never a listener handed to us.
        return match fd.parse::<std::os::fd::RawFd>() {
            Ok(fd) if fd >= 3 => Ok(BindAddr::Fd(fd)),
            _ => Err("fd:// needs a descriptor number of 3 or more".into()),
        };
    }
    if let Some(path) = value.strip_prefix("unix:") {
        return match path.len() {
            0 => Err("unix: needs a path".into()),
            n if n > UNIX_PATH_MAX => Err(format!(
                "a Unix socket's path is at most {UNIX_PATH_MAX} bytes, and this one has {n}"
            )),
            _ => Ok(BindAddr::Unix(PathBuf::from(path))),
        };
    }
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(BindAddr::Tcp(addr));
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A bare HOST it would be, and inet_aton(3) makes `8000` the address 0.0.31.64,
        // which no interface has: the start failed with "Cannot assign requested address".
        return Err(format!(
            "{value} is a port without a host: write 0.0.0.0:{value} (every interface), \
             or 127.0.0.1:{value} (this machine only)"
        ));
    }
    // `:PORT` is every interface, as in gunicorn.
    let value = match value.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => value.to_string(),
    };
    let value = value.as_str();
    let with_port = match value.rsplit_once(':') {
        Some((_, port)) if !port.contains(']') => value.to_string(),
        _ => format!("{value}:8000"),
    };
    let mut addrs = with_port.to_socket_addrs().map_err(|_| {
        "expected HOST:PORT, [IPV6]:PORT or unix:PATH with a resolvable host".to_string()
    })?;
    addrs
        .next()
        .map(BindAddr::Tcp)
        .ok_or_else(|| "host resolves to no address".into())
}

/// At least a second: a pool that shrank sooner would undo each step up before the
/// next step could be judged, and flap.
fn parse_scale_down_after(value: &str) -> Result<Duration, String> {
    match parse_seconds(value)? {
        d if d >= SCALE_DOWN_MIN => Ok(d),
        _ => Err("at least 1 second, or the pool would shrink as fast as it grows".into()),
    }
}

/// An access log format whose atoms are all known, checked here with the other values
/// (so a bad one in the configuration file names the file, and is found even where a
/// flag overrides it); an empty one would write empty lines.
fn parse_log_format(value: &str) -> Result<String, String> {
    match value.is_empty() {
        true => Err("an empty format would log empty lines".into()),
        false => crate::access_log::Format::parse(value, false).map(|_| value.to_string()),
    }
}

/// `gunicorn`, or `nginx` (`unicorn` is the same).
fn parse_signal_profile(value: &str) -> Result<SignalProfile, String> {
    match value.to_ascii_lowercase().as_str() {
        "gunicorn" => Ok(SignalProfile::Gunicorn),
        "nginx" | "unicorn" => Ok(SignalProfile::Nginx),
        _ => Err("expected gunicorn, nginx or unicorn".into()),
    }
}

/// `HOST:PORT` or `[IPV6]:PORT`, the port required: a scraper reaches it over TCP.
fn parse_metrics_bind(value: &str) -> Result<SocketAddr, String> {
    let refuse = || "expected HOST:PORT or [IPV6]:PORT with a resolvable host".to_string();
    let mut addrs = value.to_socket_addrs().map_err(|_| refuse())?;
    addrs.next().ok_or_else(refuse)
}

pub(super) fn parse_workers(value: &str) -> Result<usize, String> {
    let most = crate::sys::scoreboard::CAPACITY;
    match whole_number(value) {
        Ok(Some(n)) if n > 0 && n <= most as u64 => Ok(n as usize),
        Ok(Some(0)) | Err(()) => Err(AT_LEAST_1.into()),
        _ => Err(format!("at most {most} workers")),
    }
}

const AT_LEAST_1: &str = "expected a whole number of at least 1";

fn parse_positive(value: &str) -> Result<usize, String> {
    positive_at_most(value, usize::MAX)
}

/// A whole number from 1 to `most`.
fn positive_at_most(value: &str, most: usize) -> Result<usize, String> {
    match whole_number(value) {
        Ok(Some(0)) | Err(()) => Err(AT_LEAST_1.into()),
        Ok(Some(n)) if n <= most as u64 => Ok(n as usize),
        Ok(_) => Err(too_large(most)),
    }
}

/// Each connection is a descriptor, and Linux lets a process have at most `fs.nr_open`
/// of them, 1048576 unless raised. A worker sets aside room for every connection it
/// may hold at boot, so a larger number failed every boot, for ever, rather than the
/// start.
fn parse_worker_connections(value: &str) -> Result<usize, String> {
    positive_at_most(value, 1 << 20)
}

/// A whole number, 0 or more: `--max-requests` and its jitter.
fn parse_count(value: &str) -> Result<u64, String> {
    match whole_number(value) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(too_large(u64::MAX)),
        Err(()) => Err("expected a whole number, 0 or more".into()),
    }
}

/// Decimal digits and nothing else (blanks around them and a `+` before them aside, as
/// Rust's own parser and a platform's `WEB_CONCURRENCY=+4` have them); `None` for more
/// than a `u64` holds, which deserves its own message rather than "not a number".
fn whole_number(value: &str) -> Result<Option<u64>, ()> {
    let value = value.trim();
    let digits = value.strip_prefix('+').unwrap_or(value);
    match !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(digits.parse().ok()),
        false => Err(()),
    }
}

fn too_large(most: impl std::fmt::Display) -> String {
    format!("too large a number (at most {most})")
}

/// The listen(2) backlog, an `int`.
fn parse_backlog(value: &str) -> Result<i32, String> {
    positive_at_most(value, i32::MAX as usize).map(|n| n as i32)
}

/// A number of bytes, with an optional binary unit: `1048576`, `64K`, `512M`, `2G`
/// (`KiB`, `MB` and the like mean the same: every unit is a power of 1024).
pub(super) fn parse_bytes(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err("expected a number of bytes, e.g. 1048576, 64K, 512M or 2G".into()),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| "expected a number of bytes, e.g. 1048576, 64K, 512M or 2G")?;
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| "too many bytes".into())
}

/// [`parse_bytes`] for a size held in memory.
fn parse_size(value: &str) -> Result<usize, String> {
    usize::try_from(parse_bytes(value)?).map_err(|_| "too many bytes".into())
}

/// An absolute path, as it appears in request targets: `/metrics`.
pub(super) fn parse_metrics_path(value: &str) -> Result<String, String> {
    let plain = value.starts_with('/') && !value.contains(['?', '#', ' ', '\t']);
    match plain {
        true => Ok(value.to_string()),
        false => Err("expected a path starting with /, without a query, fragment or blanks".into()),
    }
}

/// Whole or fractional seconds, e.g. `30` or `0.5`.
fn parse_seconds(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=MOST_SECONDS as f64).contains(&s) => {
            Ok(Duration::from_secs_f64(s))
        }
        Ok(s) if s > 0.0 => Err(format!("at most {MOST_SECONDS} seconds (a year)")),
        _ => Err("expected a number of seconds, 0 or more".into()),
    }
}

/// The longest duration a flag takes.
const MOST_SECONDS: u64 = 86_400 * 365;

/// `--timeout` and `--max-worker-age`: 0 (off), or at least a second, as gunicorn's
/// whole seconds are. The master looks at its workers' heartbeats once a second and a
/// worker beats every half `--timeout`, so `--timeout 0.0001` rounded to nothing and
/// killed every worker at each look; an age that small replaced workers as fast as they
/// booted.
fn parse_off_or_seconds(value: &str) -> Result<Duration, String> {
    match parse_seconds(value)? {
        d if d.is_zero() || d >= OFF_OR_SECONDS_MIN => Ok(d),
        _ => Err("expected 0 (never) or at least 1 second".into()),
    }
}

/// The shortest client timeout (`parse_client_timeout`).
pub(super) const CLIENT_TIMEOUT_MIN: Duration = Duration::from_millis(100);

/// `--proxy-allow-from`: an empty list would refuse every TCP connection (a Unix socket's
/// peer needs no list), which is an unset template variable, not a wish.
fn proxy_senders(list: &str) -> Result<AllowedPeers, String> {
    let peers = AllowedPeers::parse(list)?;
    match peers.admits_no_address() {
        true => Err("no peer is listed: name the balancer's addresses, or * for any".into()),
        false => Ok(peers),
    }
}

/// `--proxy-allow-from` when not given.
pub(super) fn proxy_senders_default() -> AllowedPeers {
    AllowedPeers::parse(peers::LOOPBACK).expect("the default parses")
}

/// `--scale-down-after` when not given, as the command line writes it.
const SCALE_DOWN_DEFAULT: &str = "30";

/// `--scale-down-after` when not given.
pub(super) fn scale_down_default() -> Duration {
    parse_seconds(SCALE_DOWN_DEFAULT).expect("the default parses")
}

/// The shortest `--scale-down-after`.
pub(super) const SCALE_DOWN_MIN: Duration = Duration::from_secs(1);

/// The shortest `--timeout` or `--max-worker-age` other than 0 (off).
pub(super) const OFF_OR_SECONDS_MIN: Duration = Duration::from_secs(1);

/// The client timeouts (`--header-timeout`, `--body-timeout`, `--write-timeout`): at
/// least a tenth of a second, with no "never". They are what frees a connection from a
/// client that stalls, and 0 would not mean never but a 408 at the first pause. A worker
/// looks at its deadlines four times a second, so a shorter one would not be kept anyway.
fn parse_client_timeout(value: &str) -> Result<Duration, String> {
    match parse_seconds(value)? {
        d if d >= CLIENT_TIMEOUT_MIN => Ok(d),
        _ => Err(
            "expected at least 0.1 seconds (there is no \"never\": 0 would cut \
                  a client off at its first pause)"
                .into(),
        ),
    }
}

/// gunicorn's level names, plus Rust's.
fn parse_log_level(value: &str) -> Result<log::LevelFilter, String> {
    use log::LevelFilter::*;
    match value.to_ascii_lowercase().as_str() {
        "trace" => Ok(Trace),
        "debug" => Ok(Debug),
        "info" => Ok(Info),
        "warning" | "warn" => Ok(Warn),
        "error" | "critical" => Ok(Error),
        "off" => Ok(Off),
        _ => Err("expected debug, info, warning, error or critical".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        let cases: &[(&str, Result<BindAddr, ()>)] = &[
            (
                "127.0.0.1:80",
                Ok(BindAddr::Tcp("127.0.0.1:80".parse().unwrap())),
            ),
            (
                "[::1]:8080",
                Ok(BindAddr::Tcp("[::1]:8080".parse().unwrap())),
            ),
            ("0.0.0.0:0", Ok(BindAddr::Tcp("0.0.0.0:0".parse().unwrap()))),
            (
                "unix:/run/app.sock",
                Ok(BindAddr::Unix("/run/app.sock".into())),
            ),
            (
                "127.0.0.1",
                Ok(BindAddr::Tcp("127.0.0.1:8000".parse().unwrap())),
            ),
            ("unix:", Err(())),
            (
                &format!("unix:/{}", "a".repeat(106)),
                Ok(BindAddr::Unix(format!("/{}", "a".repeat(106)).into())),
            ),
            (&format!("unix:/{}", "a".repeat(107)), Err(())),
            ("fd://3", Ok(BindAddr::Fd(3))),
            ("fd://2", Err(())),
            ("fd://", Err(())),
            ("fd://x", Err(())),
            ("127.0.0.1:99999", Err(())),
            ("nonsense host:x", Err(())),
            // Every interface, as in gunicorn.
            (":8000", Ok(BindAddr::Tcp("0.0.0.0:8000".parse().unwrap()))),
            // A port without a host: it was the host 0.0.31.64, which no interface has.
            ("8000", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bind(input).map_err(|_| ()), *want, "{input}");
        }
    }

    #[test]
    fn bind_lists() {
        let tcp = |s: &str| BindAddr::Tcp(s.parse().unwrap());
        let cases: &[(&str, Result<Vec<BindAddr>, ()>)] = &[
            ("127.0.0.1:1", Ok(vec![tcp("127.0.0.1:1")])),
            (
                "127.0.0.1:1, unix:/run/a.sock,",
                Ok(vec![
                    tcp("127.0.0.1:1"),
                    BindAddr::Unix("/run/a.sock".into()),
                ]),
            ),
            ("", Ok(vec![])),
            // A comma always separates here: this path cannot be named in the variable.
            ("unix:/run/a,b.sock", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bind_list(input).map_err(|_| ()), *want, "{input}");
        }
    }

    #[test]
    fn byte_counts() {
        let cases: &[(&str, Result<u64, ()>)] = &[
            ("0", Ok(0)),
            ("1048576", Ok(1 << 20)),
            ("64K", Ok(64 << 10)),
            ("64kib", Ok(64 << 10)),
            ("512M", Ok(512 << 20)),
            ("512 MB", Ok(512 << 20)),
            ("2G", Ok(2 << 30)),
            (" 7b ", Ok(7)),
            ("", Err(())),
            ("M", Err(())),
            ("1.5G", Err(())),
            ("-1", Err(())),
            ("12T", Err(())),
            ("99999999999G", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bytes(input).map_err(|_| ()), *want, "{input:?}");
        }
    }

    #[test]
    fn timeouts_with_a_floor() {
        // (input, --timeout/--max-worker-age, a client timeout), in seconds
        let cases = [
            ("0", Some(0.0), None),
            ("0.0001", None, None),
            ("0.099", None, None),
            ("0.1", None, Some(0.1)),
            ("0.999", None, Some(0.999)),
            ("1", Some(1.0), Some(1.0)),
            ("30", Some(30.0), Some(30.0)),
            ("-1", None, None),
        ];
        for (input, off_or, client) in cases {
            let want = |secs: Option<f64>| secs.map(Duration::from_secs_f64);
            assert_eq!(
                parse_off_or_seconds(input).ok(),
                want(off_or),
                "off-or {input}"
            );
            assert_eq!(
                parse_client_timeout(input).ok(),
                want(client),
                "client {input}"
            );
        }
    }

    /// Each count says what it wants, and a number too large says so, in the words of
    /// the other flags: not Rust's "invalid digit found in string".
    #[test]
    fn counts_say_what_they_want() {
        let positive = "expected a whole number of at least 1";
        let huge = "99999999999999999999";
        assert_eq!(parse_count("1000"), Ok(1000));
        assert_eq!(parse_count("0"), Ok(0));
        assert_eq!(parse_workers("+4"), Ok(4));
        for bad in ["-5", "abc", "", "+", "++5", "+-5", "1.5"] {
            assert_eq!(
                parse_count(bad),
                Err("expected a whole number, 0 or more".into())
            );
            assert_eq!(parse_positive(bad), Err(positive.into()));
            assert_eq!(parse_workers(bad), Err(positive.into()));
        }
        assert_eq!(parse_positive("0"), Err(positive.into()));
        assert_eq!(
            parse_count(huge),
            Err(format!("too large a number (at most {})", u64::MAX))
        );
        assert_eq!(parse_workers(huge), Err("at most 512 workers".into()));
        assert_eq!(parse_workers("512"), Ok(512));
        assert_eq!(
            parse_backlog("3000000000"),
            Err("too large a number (at most 2147483647)".into())
        );
        assert_eq!(parse_backlog("2048"), Ok(2048));
        // Past u64 too: the limit named is still the flag's own.
        assert_eq!(parse_backlog(huge), parse_backlog("3000000000"));
        // Past it, every worker failed its boot for ever ("capacity overflow").
        assert_eq!(parse_worker_connections("1048576"), Ok(1 << 20));
        assert_eq!(
            parse_worker_connections("1048577"),
            Err("too large a number (at most 1048576)".into())
        );
    }

    #[test]
    fn seconds_and_levels() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("-1").is_err() && parse_seconds("NaN").is_err());
        // Too large is not "0 or more", which it is.
        assert_eq!(
            parse_seconds("1e20"),
            Err("at most 31536000 seconds (a year)".into())
        );
        assert_eq!(parse_log_level("WARNING"), Ok(log::LevelFilter::Warn));
        assert!(parse_log_level("loud").is_err());
    }
}
