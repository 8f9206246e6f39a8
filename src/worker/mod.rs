//! A worker process: one single-threaded mio event loop over the shared listening
//! sockets, its connections, its signals and the lifeline to the master.
//!
//! The accept gate (DESIGN invariant 3) is the heart of it. A worker accepts one
//! connection at a time, when it is free to serve it at once: after each connection it
//! drives, and once more after each turn's events. So it never takes a
//! connection it cannot start serving now, and a CPU-heavy request waits in the kernel's
//! accept queue, where any idle worker can take it, instead of queueing behind a busy
//! worker; yet connections it holds and connections waiting take turns, so busy
//! keep-alive clients cannot starve newcomers. mio is edge-triggered, so the worker
//! remembers "the listener may have more" until `accept` says WouldBlock, and tries again
//! whenever it is free.
//!
//! One turn of the loop: heartbeat, poll (the timeout is the next deadline), act on
//! signals and the lifeline, drive every connection that had an event (each followed by
//! an accept), accept one new connection, expire connections whose deadline passed, and
//! see whether it is time to ask for a successor (`recycle`). Draining, it accepts its
//! share of the accept queue at once, closes its listeners, and exits when its last
//! connection is done.

mod conn;
mod out;
mod recycle;
pub(crate) mod spool;
mod stream;

pub use stream::{Accepted, Listener};

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::unistd::Pid;

use self::conn::{Conn, Ctx, InputBudget, Timeouts, Verdict};
use self::recycle::Recycle;
use crate::app::static_files::StaticFiles;
use crate::config::Config;
use crate::http::DateCache;
use crate::metrics::Metrics;
use crate::sys::abort_answer;
use crate::sys::clock::{MsAnchor, monotonic_ms};
use crate::sys::lifeline;
use crate::sys::pages::ZeroedPages;
use crate::sys::scoreboard::{self, Scoreboard, Slot, State};
use crate::sys::signals::{self, WorkerSignals};
use crate::{AppFactory, Handler};

const SIGNALS: Token = Token(0);
const LIFELINE: Token = Token(1);
const LISTENER_BASE: usize = 2;
const CONN_BASE: usize = 1 << 20;

/// Exit code of a worker that could not set itself up (gunicorn's WORKER_BOOT_ERROR).
pub const EXIT_BOOT_ERROR: i32 = 3;
/// Exit code of a worker that stopped because its event loop or a listener failed.
const EXIT_BROKEN: i32 = 1;
/// How often connection deadlines are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// A poll that took this long waited for its events: one that finds them there returns
/// within a few microseconds.
const SLEPT: Duration = Duration::from_micros(20);
/// The most idle connections a full worker closes at once for newcomers (nginx's
/// `ngx_drain_connections` frees up to 32).
const ROOM_AT_ONCE: usize = 32;
/// How long accepts must go through before a worker that ran out of descriptors says
/// it accepts again.
const STARVED_QUIET: Duration = Duration::from_secs(1);
/// How long a request head may have been arriving before a full worker closes its
/// connection for a newcomer (see `Worker::reclaimable`).
const SLOW_HEAD: Duration = Duration::from_secs(1);
/// The most time kept connections have between two newcomers from the accept queue
/// (see `Worker::on_events`).
const NEWCOMER_TURN: Duration = Duration::from_millis(20);
/// The most often a worker goes to the back of the line of workers waiting for new
/// connections (see `Worker::rotate`).
const ROTATE_EVERY: Duration = Duration::from_millis(1);
/// The longest a draining worker keeps an idle kept-alive connection open for its
/// client's next request, so that a retiring worker is not held up for long by
/// connections nobody uses.
const DRAIN_KEEP_ALIVE: Duration = Duration::from_secs(2);
/// How long accepting pauses when the process is out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Most bytes one `read` takes from a socket.
const SCRATCH_BYTES: usize = 64 * 1024;

/// Set once this worker drains; read by [`is_draining`].
static DRAINING: AtomicBool = AtomicBool::new(false);
/// How long after the graceful stop signal a draining worker closes what is still open:
/// a tenth of `--graceful-timeout` (at most a second) before the master's SIGKILL, so
/// that the worker closes it itself (its poll wakes then, and it begins no request
/// after) and exits with its access-log lines written.
fn before_the_kill(graceful: Duration) -> Duration {
    graceful.saturating_sub((graceful / 10).min(Duration::from_secs(1)))
}

/// True once the server is stopping: during `--drain-delay` (still accepting, so a load
/// balancer has time to notice) and while the worker drains. The demo's `/readyz`
/// answers 503 then.
///
/// A cheap read of shared state, fine to call on every request. Always false outside a
/// worker (in tests, or in the master).
///
/// # Examples
///
/// A readiness route, so Kubernetes (or any load balancer) stops sending traffic before
/// the worker stops accepting it:
///
/// ```
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::{Handler, Request, Response};
///
/// let mut app = |req: &Request| match req.path() {
///     "/readyz" if br_serve::is_draining() => Response::text(503, "draining\n"),
///     "/readyz" => Response::text(200, "ready\n"),
///     _ => Response::text(200, "hello\n"),
/// };
///
/// let head = parse_head(b"GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
///     .expect("a complete head");
/// assert_eq!(app.handle(&Request::new(head, Vec::new(), None)).status(), 200);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
pub fn is_draining() -> bool {
    DRAINING.load(Ordering::Relaxed) || scoreboard::own().is_some_and(|slot| slot.unready())
}

/// The number of the worker this code runs in, as the log shows it (`[worker.3]`) and
/// the metrics label it (`worker="3"`): the lowest one free when the worker started, so
/// a worker replacing one that died takes its number, while one started beside the
/// worker it replaces (a HUP's new generation, `--max-requests`) takes another, and the
/// numbers may reach about twice the pool's size. No two live workers share one. `None`
/// outside a worker: in the master (a preload's build), or in a test.
///
/// For what each worker of the pool must keep apart from its siblings: a file or a
/// port of its own, or a shard of work, named by a small number that comes back, where
/// the pid does not (gunicorn offers `worker.age`, a count of spawns that grows with
/// every restart).
///
/// # Examples
///
/// A factory that opens a scratch file of each worker's own, reused by the worker that
/// takes its place:
///
/// ```
/// use br_serve::{Handler, Request, Response};
///
/// fn factory(_config: &br_serve::Config) -> Box<dyn Handler> {
///     let scratch = match br_serve::worker_number() {
///         Some(n) => format!("/var/tmp/my-app/worker-{n}.db"),
///         None => "/var/tmp/my-app/test.db".to_string(),
///     };
///     Box::new(move |_: &Request| Response::text(200, format!("using {scratch}\n")))
/// }
///
/// assert_eq!(br_serve::worker_number(), None); // not in a worker here
/// # let config = br_serve::config::from_argv(vec!["my-app".into()])?;
/// # let _ = factory(&config);
/// # Ok::<(), br_serve::Error>(())
/// ```
pub fn worker_number() -> Option<usize> {
    crate::logging::worker_number()
}

/// Tells the master this worker is alive. Handlers that run longer than `--timeout`
/// should call it now and then, or the master kills the worker as hung. Outside a
/// worker it does nothing.
///
/// The worker beats on its own between requests; this is only for one request that takes
/// long. It costs a clock read and a store to shared memory, so calling it once per step
/// of a long loop is fine. A handler that is truly stuck stops calling it, and is still
/// replaced.
///
/// # Examples
///
/// ```
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::{Request, Response};
///
/// /// Checksums an upload of up to `--limit-request-body` bytes, one mebibyte at a time.
/// fn checksum(req: &Request) -> Response {
///     let mut sum = 0u32;
///     for block in req.body().chunks(1 << 20) {
///         sum = block.iter().fold(sum, |s, &b| s.rotate_left(5) ^ u32::from(b));
///         br_serve::heartbeat(); // still working, not hung
///     }
///     Response::text(200, format!("{sum:08x}\n"))
/// }
///
/// let head = parse_head(
///     b"POST /checksum HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
///     &Limits::default(),
/// )?
/// .expect("a complete head");
/// let resp = checksum(&Request::new(head, b"abc".to_vec(), None));
/// assert_eq!(resp.status(), 200);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
pub fn heartbeat() {
    if let Some(slot) = scoreboard::own() {
        slot.tick(monotonic_ms());
    }
}

/// A worker's application: to build after fork, or built by the master already.
pub enum WorkerApp<'a> {
    /// Build it now, in the worker.
    Build(&'a AppFactory),
    /// Preloaded by the master; this is the worker's copy-on-write copy.
    Ready(Box<dyn Handler>),
    /// `--static DIR`, in place of the program's own application (the flag means the
    /// same in every program built on the library, rather than being parsed and then
    /// ignored by a factory that never looks at it). Opened by the master at start and
    /// at each HUP, so a worker starts with a root that opened, whatever a deploy is doing
    /// to DIR at the moment it boots, and follows DIR from its first request.
    Static(Box<StaticFiles>),
}

/// The handler this worker serves, built now, preloaded, or the static files.
fn application(app: WorkerApp, config: &Config) -> Box<dyn Handler> {
    match app {
        WorkerApp::Build(factory) => factory(config),
        WorkerApp::Ready(handler) => handler,
        WorkerApp::Static(files) => files,
    }
}

/// Everything a freshly forked worker needs from the master.
pub struct WorkerSpec {
    /// Stable number for logs (1-based; reused after a worker dies), and the index of
    /// its scoreboard slot plus one.
    pub number: usize,
    /// The whole scoreboard: this worker writes its own slot, and reads them all for
    /// `--metrics-path`.
    pub board: Scoreboard,
    /// The master's pid, to notice being orphaned.
    pub master: Pid,
    /// The shared listening sockets.
    pub listeners: Vec<Listener>,
    /// Their URLs as the ready line printed them, in the same order, to label the
    /// metrics' accept queues.
    pub listener_urls: Vec<String>,
    /// The read end of the lifeline pipe.
    pub lifeline: OwnedFd,
    /// The write end of the wake-up pipe to the master.
    pub wake: OwnedFd,
    /// The configuration this generation runs with.
    pub config: Config,
    /// The access log, inherited open from the master.
    pub access_log: Option<crate::access_log::AccessLog>,
    /// The master's signal mask, restored once our own handlers are in place.
    pub mask: nix::sys::signal::SigSet,
}

impl WorkerSpec {
    /// This worker's scoreboard slot.
    fn slot(&self) -> &'static Slot {
        &self.board[self.number - 1]
    }
}

/// A panic (in the app factory or a handler, or in the master building a preloaded
/// application) as error-log records, not a multi-line dump interleaved with other
/// processes' lines: one for the message, and with `RUST_BACKTRACE=1` (or
/// `RUST_LIB_BACKTRACE`) one for each line of its [`short_backtrace`], as gunicorn logs a
/// traceback, each with the process's prefix.
pub(crate) fn log_panic(info: &std::panic::PanicHookInfo) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    log::error!("panic{at}: {}", message.escape_debug());
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        for line in short_backtrace(&backtrace.to_string()) {
            log::error!("backtrace: {line}");
        }
    }
}

/// The frames from the panic up to the nearest `catch_unwind` (the worker's guard around
/// the handler, or around the whole worker for its factory): what Rust's own short
/// backtrace shows. The full one goes on through the worker's loop and the master to
/// `main`, a hundred lines that are the same for every panic.
fn short_backtrace(full: &str) -> Vec<&str> {
    let is_frame = |line: &&str| {
        let (number, _) = line.trim_start().split_once(": ").unwrap_or_default();
        number.parse::<u32>().is_ok()
    };
    let lines: Vec<&str> = full.lines().collect();
    let after_std = lines
        .iter()
        .position(|l| l.contains("__rust_end_short_backtrace"))
        .map_or(0, |i| i + 1);
    let frames = lines.get(after_std..).unwrap_or_default();
    frames
        .iter()
        .skip_while(|l| !is_frame(l))
        .take_while(|l| !(is_frame(l) && l.contains("catch_unwind")))
        .copied()
        .collect()
}

/// The body of a worker process; returns its exit code.
pub fn run(spec: WorkerSpec, app: WorkerApp) -> i32 {
    crate::logging::set_role(spec.number);
    std::panic::set_hook(Box::new(log_panic));
    let mask = spec.mask;
    let setup = setup(&spec);
    crate::sys::fork::restore(mask);
    let (signals, poll) = match setup {
        Ok(parts) => parts,
        Err(err) => {
            log::error!("worker setup failed: {err}");
            return EXIT_BOOT_ERROR;
        }
    };
    log::info!("Booting worker with pid: {}", std::process::id());
    // `--env`, for this generation's application; the worker is still single-threaded.
    crate::sys::environ::set(&spec.config.env);
    let handler = application(app, &spec.config);
    match Worker::new(spec, signals, poll, handler) {
        Ok(worker) => worker.serve(),
        Err(err) => {
            log::error!("worker setup failed: {err}");
            EXIT_BOOT_ERROR
        }
    }
}

/// Signal dispositions, parent checks and the worker's own poll, all while signals are
/// still blocked.
fn setup(spec: &WorkerSpec) -> io::Result<(WorkerSignals, Poll)> {
    let signals = signals::reset_for_worker(spec.config.signal_profile)?;
    if let Some(credentials) = &spec.config.credentials {
        credentials.drop_privileges()?;
    }
    // After the privilege drop, which clears the parent-death signal.
    if !lifeline::watch_parent(spec.master)? {
        return Err(io::Error::other(
            "the master died before this worker started",
        ));
    }
    spec.slot().set_pid(std::process::id());
    scoreboard::set_own(spec.slot());
    abort_answer::track(spec.config.worker_connections);
    abort_answer::install()?;
    Ok((signals, Poll::new()?))
}

struct Worker {
    poll: Poll,
    signals: WorkerSignals,
    lifeline: OwnedFd,
    /// Writes here wake the master (`wake_master`).
    wake: OwnedFd,
    listeners: Vec<Listener>,
    /// Per listener: an edge said readable and `accept` has not yet said WouldBlock.
    accept_ready: Vec<bool>,
    /// While draining for a stop of the whole server, per listener: how many more
    /// connections to take from its accept queue before letting go of it.
    last_accepts: Vec<u32>,
    /// Per listener: when this worker last went to the back of the line (`rotate`).
    rotated_at: Vec<Instant>,
    /// Whether the listeners are in this worker's epoll (`watch_listeners`).
    watching: bool,
    accept_paused_until: Option<Instant>,
    /// An accept failed in a way no retry mends (`on_accept_error`): the worker exits.
    listener_failed: Option<io::Error>,
    /// The last accept failed for want of descriptors (or memory).
    starved: bool,
    /// When accept last failed so, while the episode lasts: its warning said, its end
    /// ("accepting again") said by a sweep once accepts have gone through for
    /// [`STARVED_QUIET`]. A worker making room for newcomers runs out again and again,
    /// and said both lines each time, eight a second.
    starved_at: Option<Instant>,
    /// In an episode of closing idle connections for newcomers (`make_room`, logged once).
    crowded: bool,
    /// The last sweep found this worker full with connections waiting in the queue.
    queue_seen: bool,
    /// Time kept connections have had since a newcomer was last served, and the share
    /// they have before the next newcomer's turn (see `on_events`).
    kept_work: Duration,
    newcomer_turn: Duration,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Slots closed during this batch of events, free again once it is done: an event of
    /// the batch may still name one, and must not reach a connection accepted into it.
    released: Vec<usize>,
    /// Connections a stream left with more to send and the socket taking it (see
    /// `Conn::owed_a_turn`), each listed once, driven again in the next pass once its
    /// events and a newcomer are served.
    owed_turns: Vec<usize>,
    open: usize,
    /// What connections borrow while they work: the app, limits, clock, slot.
    ctx: Ctx,
    config: Config,
    master: Pid,
    draining: bool,
    /// Woken from a sleep in poll for a connection not yet accepted: the kernel woke
    /// this worker alone for it (`claim`).
    owed: bool,
    /// When to ask for a successor: requests served, age, memory.
    recycle: Recycle,
    /// Every worker's slot, to count those sharing the accept queue in a stop.
    board: Scoreboard,
    next_sweep: Instant,
    /// The buffer every `read` lands in before it is appended to a connection's input.
    scratch: ZeroedPages,
}

impl Worker {
    fn new(
        spec: WorkerSpec,
        signals: WorkerSignals,
        poll: Poll,
        handler: Box<dyn Handler>,
    ) -> io::Result<Worker> {
        let now = Instant::now();
        let anchor = MsAnchor::new();
        let slot = spec.slot();
        let config = spec.config;
        let recycle = Recycle::new(&config, now);
        let metrics = match config.metrics_path.clone() {
            Some(path) => {
                let urls = spec.listener_urls.iter().cloned();
                let labelled = urls.zip(spec.listeners.iter().map(Listener::fd));
                Some(Metrics::new(path, spec.board, labelled)?)
            }
            None => None,
        };
        let stop_asked = std::sync::Arc::clone(&signals.stop_asked);
        let stop_sent_ms = std::sync::Arc::clone(&signals.stop_sent_ms);
        let reopen_asked = std::sync::Arc::clone(&signals.reopen_asked);
        let mut worker = Worker {
            accept_ready: vec![true; spec.listeners.len()],
            last_accepts: vec![0; spec.listeners.len()],
            rotated_at: vec![now; spec.listeners.len()],
            watching: true,
            listeners: spec.listeners,
            poll,
            signals,
            lifeline: spec.lifeline,
            wake: spec.wake,
            accept_paused_until: None,
            listener_failed: None,
            starved: false,
            starved_at: None,
            crowded: false,
            queue_seen: false,
            kept_work: Duration::ZERO,
            newcomer_turn: Duration::ZERO,
            conns: Vec::new(),
            free: Vec::new(),
            released: Vec::new(),
            owed_turns: Vec::new(),
            open: 0,
            ctx: Ctx {
                handler,
                limits: config.limits.clone(),
                timeouts: Timeouts {
                    head: config.header_timeout,
                    first_byte: config.header_timeout,
                    keep_alive: config.keep_alive,
                    body_stall: config.body_timeout,
                    write_stall: config.write_timeout,
                    linger: conn::LINGER_MAX,
                },
                date: DateCache::new(),
                slot,
                now,
                now_ms: anchor.ms(now),
                anchor,
                closing: false,
                stop_asked,
                stop_sent_ms,
                reopen_asked,
                drain_time: before_the_kill(config.graceful_timeout),
                board: spec.board,
                polled_at: now,
                turn_began: now,
                newcomer_served_at: now,
                check_client: config.check_client_connection,
                proxy_protocol: config
                    .proxy_protocol
                    .then(|| config.proxy_allow_from.clone()),
                forwarded_allow_ips: config.forwarded_allow_ips.clone(),
                queue_timeout: config.queue_timeout,
                served: 0,
                access: spec.access_log,
                metrics,
                budget: InputBudget::for_limit(config.limits.max_body.min(config.body_spool_size)),
                spooling: spool::Spooling {
                    size: config.body_spool_size,
                    dir: config.body_spool_dir.clone(),
                },
                slow_answer: false,
                drain_ends: None,
            },
            config,
            master: spec.master,
            recycle,
            board: spec.board,
            draining: false,
            owed: false,
            next_sweep: now + SWEEP_EVERY,
            scratch: ZeroedPages::new(SCRATCH_BYTES)?,
        };
        worker.register()?;
        Ok(worker)
    }

    fn register(&mut self) -> io::Result<()> {
        let registry = self.poll.registry();
        registry.register(&mut self.signals.source, SIGNALS, Interest::READABLE)?;
        let fd = self.lifeline.as_raw_fd();
        registry.register(&mut SourceFd(&fd), LIFELINE, Interest::READABLE)?;
        for (i, listener) in self.listeners.iter_mut().enumerate() {
            listener.register(registry, Token(LISTENER_BASE + i))?;
        }
        Ok(())
    }

    /// The loop; returns the exit code once drained.
    fn serve(mut self) -> i32 {
        self.ctx.slot.set_state(State::Idle, monotonic_ms());
        // Ready: a worker waiting for this one to take over (HUP, recycling) can go now.
        self.wake_master();
        let mut events = Events::with_capacity(256);
        loop {
            self.ctx.slot.tick(self.ctx.now_ms);
            let entered = Instant::now();
            if let Err(err) = self.poll.poll(&mut events, Some(self.poll_timeout())) {
                if err.kind() != io::ErrorKind::Interrupted {
                    log::error!("poll failed: {err}");
                    return EXIT_BROKEN;
                }
            }
            self.ctx.set_now(Instant::now());
            let slept = self.ctx.now.saturating_duration_since(entered) >= SLEPT;
            self.ctx.polled_at = self.ctx.now;
            let owed = std::mem::take(&mut self.owed_turns);
            self.on_events(&events, slept);
            self.heed_a_stop();
            self.accept_one();
            // After a newcomer's turn: a stream's next turn never holds one off.
            self.drive_owed_turns(owed);
            if let Some(err) = self.listener_failed.take() {
                log::error!(
                    "accept: {err}; the listener is unusable in this worker, which exits \
                     for the master to start another"
                );
                return EXIT_BROKEN;
            }
            self.sweep();
            self.check_recycle();
            self.watch_listeners();
            if self.draining && !self.taking_the_queue() {
                self.finish_with_the_queues();
                if self.open == 0 && !self.taking_the_queue() {
                    log::info!("Worker exiting (pid: {})", std::process::id());
                    return 0;
                }
            }
        }
    }

    /// How long poll may sleep: not past the next sweep, half the master's timeout (so
    /// the heartbeat stays fresh) or a drain's end (a sweep can come after the kill when
    /// `--graceful-timeout` is short), and not at all while accepts are pending.
    fn poll_timeout(&self) -> Duration {
        let accepts = self.can_accept() && self.accept_ready.iter().any(|&r| r);
        if accepts || !self.owed_turns.is_empty() {
            return Duration::ZERO;
        }
        let heartbeat = self
            .config
            .timeout
            .map_or(Duration::from_secs(1), |t| t / 2);
        let until = |t: Instant| t.saturating_duration_since(self.ctx.now);
        [
            Some(heartbeat.min(Duration::from_secs(1))),
            Some(until(self.next_sweep)),
            self.accept_paused_until.map(until),
            self.ctx.drain_ends.map(until),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(heartbeat)
    }

    /// One batch of events: signals, the lifeline and the listeners first, so that a stop
    /// and waiting connections are known before any request is served; then each
    /// connection, and between them connections from the accept queue, if one waits.
    /// New and kept connections take turns, by time: a batch of busy keep-alive
    /// connections (400 ms each, in the origin's workload) cannot hold newcomers off for
    /// the whole batch, turn after turn; nor can slow newcomers hold off fast kept
    /// requests, which waited one 400 ms newcomer per kept connection ahead of them when
    /// the turns were one for one. A newcomer is taken once kept connections have had as
    /// long as the last newcomer took, or [`NEWCOMER_TURN`] if less. The accepted one is
    /// served at once, so the worker still only takes what it can serve now (a worker
    /// that is idle takes it first, as it waits in poll).
    fn on_events(&mut self, events: &Events, slept: bool) {
        let is_conn = |event: &&mio::event::Event| event.token().0 >= CONN_BASE;
        let is_listener =
            |event: &&mio::event::Event| (LISTENER_BASE..CONN_BASE).contains(&event.token().0);
        // The listeners before a stop, which lets them go (`claim`). A worker that was
        // busy was not among the waiters: an arrival then woke another.
        self.owed = false;
        for event in events.iter().filter(is_listener) {
            self.owed = slept;
            self.on_event(event);
        }
        let others = |event: &&mio::event::Event| !is_conn(event) && !is_listener(event);
        for event in events.iter().filter(others) {
            self.on_event(event);
        }
        // Each readable connection still to be driven this turn holds a request waiting
        // behind the one being run: demand the master cannot see in the accept queue.
        let readable = |event: &&mio::event::Event| event.is_readable();
        let mut behind = events.iter().filter(is_conn).filter(readable).count();
        for event in events.iter().filter(is_conn) {
            behind -= usize::from(event.is_readable());
            self.ctx.slot.set_waiting(behind);
            let began = self.ctx.now;
            self.on_event(event);
            self.kept_work += self.ctx.now.saturating_duration_since(began);
            if self.kept_work >= self.newcomer_turn {
                self.accept_one();
            }
        }
        self.ctx.slot.set_waiting(0);
        self.free.append(&mut self.released);
    }

    fn on_event(&mut self, event: &mio::event::Event) {
        match event.token() {
            SIGNALS => self.on_signals(),
            LIFELINE => {
                log::warn!("lifeline closed: the master died; stopping");
                self.begin_drain();
            }
            Token(t) if t >= CONN_BASE => {
                let closed = event.is_read_closed() || event.is_error();
                let input = event.is_readable() || closed;
                if let Some(Some(conn)) = self.conns.get_mut(t - CONN_BASE).filter(|_| input) {
                    conn.mark_readable(closed);
                }
                self.drive(t - CONN_BASE);
            }
            Token(t) => {
                if let Some(ready) = self.accept_ready.get_mut(t - LISTENER_BASE) {
                    *ready = true;
                }
            }
        }
    }

    fn on_signals(&mut self) {
        self.signals.stop_asked.store(false, Ordering::Relaxed);
        let pending: Vec<i32> = self.signals.source.pending().collect();
        let graceful = self.config.signal_profile.graceful();
        for sig in pending {
            match sig {
                _ if sig == graceful as i32 => {
                    log::info!("received {}: draining", signals::name(graceful));
                    self.begin_drain();
                }
                signal_hook::consts::SIGUSR1 => self.ctx.reopen_logs_if_asked(),
                _ => {}
            }
        }
    }

    /// `--max-requests`, after each turn of the loop (age and memory are the sweep's).
    fn check_recycle(&mut self) {
        if let Some(why) = self.recycle.after_turn(self.ctx.served) {
            self.ask_for_replacement(&why);
        }
    }

    /// Asks the master for a successor and keeps serving until it is ready and the
    /// master sends TERM, so there is never a moment with one worker fewer accepting.
    /// The master is woken rather than left to notice on its next tick, while this
    /// worker serves on past its `--max-requests` or grows past `--max-worker-memory`.
    fn ask_for_replacement(&self, why: &str) {
        log::info!("Worker {why}; asking for a replacement");
        self.ctx.slot.want_replacement();
        self.wake_master();
    }

    /// Makes the master look over its workers now rather than at its next tick (up to a
    /// second away when all is quiet).
    fn wake_master(&self) {
        lifeline::wake(&self.wake);
    }

    /// Stops accepting and lets every connection finish with `Connection: close`.
    ///
    /// Idle keep-alive connections are not closed at once: a client in mid-conversation
    /// may be sending its next request right now, and a socket closed under it loses that
    /// request (a proxy does not retry a POST). They stay for the keep-alive time, at most
    /// [`DRAIN_KEEP_ALIVE`]; a request that comes is answered with `Connection: close`, and
    /// the rest are closed when their time is up, as any idle connection would be. Each
    /// idle connection is driven once now, for a request that arrived since its last event
    /// (those taken from the accept queue included: their requests are usually there).
    /// A connection yet to send its first request (just connected, as a Unix socket's
    /// client may be, or taken from the accept queue below) has as long from its accept,
    /// `--header-timeout` at most: its client is sending it, most likely, and one that
    /// opened it ahead of need holds the stop up no longer than an idle kept one.
    fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        let began = self.ctx.stop_began().unwrap_or(self.ctx.now);
        self.ctx.drain_ends = Some(began + self.ctx.drain_time);
        self.ctx.closing = true;
        let timeouts = &mut self.ctx.timeouts;
        timeouts.keep_alive = timeouts.keep_alive.min(DRAIN_KEEP_ALIVE);
        timeouts.first_byte = timeouts.first_byte.min(timeouts.keep_alive);
        timeouts.linger = timeouts.linger.min(DRAIN_KEEP_ALIVE);
        DRAINING.store(true, Ordering::Relaxed);
        self.ctx.slot.set_state(State::Stopping, monotonic_ms());
        // First, so the listeners close before any last request runs.
        self.plan_last_accepts();
        for index in 0..self.conns.len() {
            if let Some(conn) = self.conns[index].as_mut().filter(|c| c.is_idle()) {
                conn.mark_readable(false);
                self.drive(index);
            }
        }
    }

    /// A stop of the whole server (the master marks every worker unready before it
    /// signals them) also serves the connections waiting in the accept queue: their
    /// clients have sent their requests (TCP_DEFER_ACCEPT queues a connection only then),
    /// and the listener closing under them would reset them (as gunicorn does,
    /// benoitc/gunicorn#3397). Only this worker's share of what each queue holds now
    /// (`workers_sharing_the_queue`), so a steady stream of newcomers cannot hold the stop
    /// up; a queue the kernel does not count (a Unix socket's without `unix_diag`) is
    /// taken until it is empty, at most `--backlog`. A worker retired alone (HUP, TTOU,
    /// recycling) leaves the queue to the workers that stay, but for a connection it was
    /// woken for with the stop: the kernel wakes one waiting worker per arrival
    /// ([`crate::sys::epoll`]), so the others do not know of it, and it waited for the
    /// next arrival to wake one (or for their sweep, which looks at the queue too).
    fn plan_last_accepts(&mut self) {
        let whole_server = self.ctx.slot.unready();
        let (counted, share) = self.claim(whole_server.then(|| self.workers_sharing_the_queue()));
        if whole_server && counted > 0 {
            // This worker's share, not the whole queue: each worker says its own.
            log::info!(
                "{counted} connection(s) wait in the accept queue: this worker serves {share} \
                 of them first"
            );
        }
        self.take_the_shares();
    }

    /// Claims, of what each accept queue holds beyond siblings' claims, one part in
    /// `sharing` (a queue the kernel does not count: until it is empty, at most
    /// `--backlog`), or, with `None`, the connection this worker was woken for from its
    /// sleep and has yet to accept, if any; returns how many the queues the kernel counts
    /// hold, and how many of those this worker claimed. A listener with nothing claimed
    /// is no longer watched.
    fn claim(&mut self, sharing: Option<u32>) -> (u32, u32) {
        let (mut counted, mut share) = (0, 0);
        for i in 0..self.listeners.len() {
            let queued = self.listeners[i].queued();
            counted += queued.unwrap_or(0);
            let claimed = || Slot::claimed_by_others(self.board, self.ctx.slot, i);
            self.last_accepts[i] = match (sharing, queued) {
                (Some(sharing), Some(queued)) => queued.saturating_sub(claimed()).div_ceil(sharing),
                (Some(_), None) => self.config.backlog.unsigned_abs(),
                (None, _) => u32::from(self.owed && self.accept_ready[i]),
            };
            self.ctx.slot.set_claim(i, self.last_accepts[i]);
            share += queued.map_or(0, |_| self.last_accepts[i]);
            self.accept_ready[i] = true;
            if self.last_accepts[i] == 0 {
                self.let_go(i);
            }
        }
        (counted, share)
    }

    /// Accepts all of this worker's share of each accept queue at once, then closes the
    /// listeners (unless a sibling has yet to notice the stop: `finish_with_the_queues`),
    /// so that newcomers are refused from now on. Taking the share one
    /// connection at a time, as each was served, kept the listeners open for the share's
    /// whole service time, and whoever connected meanwhile waited in the queue behind it
    /// until the last listener closed and reset them, requests sent. The loop serves the
    /// connections taken in the order they came (epoll reports a descriptor added with
    /// its request there). Past `--worker-connections`, the rest is taken as room opens.
    fn take_the_shares(&mut self) {
        self.take_claims();
        self.finish_with_the_queues();
    }

    /// Accepts what this worker claimed of each accept queue, as far as
    /// `--worker-connections` lets it.
    fn take_claims(&mut self) {
        for i in 0..self.listeners.len() {
            while self.last_accepts[i] > 0 && self.open < self.config.worker_connections {
                let accepted = self.listeners[i].accept();
                let empty = matches!(&accepted, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
                self.took_last_accept(i, !empty);
                match accepted {
                    Ok(accepted) => self.keep(Conn::new(accepted, &self.ctx)),
                    Err(err) => {
                        // A client that left before its accept was one of the share; an
                        // empty queue, or descriptors running short, ends the taking.
                        let left = err.raw_os_error() == Some(nix::libc::ECONNABORTED);
                        self.on_accept_error(i, err);
                        if !left {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Draining and done with its share of the accept queues: closes the listeners,
    /// unless a sibling has yet to notice the stop. One busy in a long request notices
    /// only when it ends, and its share waits in the queue meanwhile: a sibling that
    /// served its own share and exited left those clients waiting (reset, should the
    /// request outlast `--graceful-timeout`). So this worker keeps its copies of the
    /// listeners (the busy one holds the sockets open anyway), and once its own
    /// connections are done takes all that is unclaimed; the busy one, when it notices,
    /// finds it claimed. Then, or with nothing left, the listeners close.
    ///
    /// At a stop of the whole server, the close comes after a last look at the queues:
    /// while this worker kept them open, the sibling it waited for may have noticed,
    /// taken its share and closed its own copies, and newcomers then queued for this
    /// worker alone, which was busy in its share. They have sent their requests, and the
    /// close would reset them; they are taken and served instead, as the queue was.
    fn finish_with_the_queues(&mut self) {
        if self.taking_the_queue() || self.listeners.is_empty() {
            return;
        }
        let whole_server = self.ctx.slot.unready();
        let awaited = whole_server && self.workers_sharing_the_queue() > 1;
        if awaited && self.open > 0 {
            return;
        }
        if whole_server && !self.ctx.out_of_time() {
            self.claim(Some(1));
            self.take_claims();
        }
        if !self.taking_the_queue() && (!awaited || self.open == 0) {
            self.close_listeners();
        }
    }

    /// How many workers take what is in the accept queue now, less what siblings already
    /// claimed, between them, in a stop of the whole server: this one, and those that have
    /// not yet begun to drain (idle or busy: each plans when it notices the stop, after
    /// its current request). A worker draining already has claimed its share (its
    /// `Slot::set_claim`, lowered as it takes them), or is a retired one taking none; the
    /// last to plan takes all that is left. Shares are rounded up, so together the workers
    /// take what was queued when the stop began (the queue is first in, first out), and a
    /// few newcomers at most.
    fn workers_sharing_the_queue(&self) -> u32 {
        let workers = scoreboard::summarize(self.board);
        let others = u32::try_from(workers.idle + workers.busy).unwrap_or(u32::MAX - 1);
        others + 1
    }

    /// Draining: one connection (or failed accept) fewer to take from listener `i`, or
    /// none at all once its queue is seen empty.
    fn took_last_accept(&mut self, i: usize, more: bool) {
        self.last_accepts[i] = if more { self.last_accepts[i] - 1 } else { 0 };
        self.ctx.slot.set_claim(i, self.last_accepts[i]);
        if self.last_accepts[i] == 0 {
            self.let_go(i);
        }
    }

    /// Moves this worker to the back of the line of workers waiting on listener `i`.
    ///
    /// The kernel offers a connection to the first idle worker in the order they began
    /// watching the listener ([`crate::sys::epoll`]), so without this the oldest idle
    /// worker would take every connection at light load, and a worker just started
    /// (TTIN, a replacement) would sit unused. Watching anew after an accept makes the
    /// order round-robin; it costs two `epoll_ctl` calls (about a microsecond), so it is
    /// done at most every [`ROTATE_EVERY`]: after every accept at light load, a bounded
    /// 0.1 % of a core under a flood of new connections. A connection arriving in
    /// between is not missed: adding a listener that is ready already reports it.
    fn rotate(&mut self, i: usize) {
        self.rotated_at[i] = self.ctx.now;
        self.let_go(i);
        self.watch(i);
    }

    /// Watches the listeners only while this worker can take a connection. One waiting
    /// worker is woken per arrival, so a worker that is full (`--worker-connections`)
    /// or backing off (out of descriptors) must not be among the waiters: it would take
    /// the wake-up, accept nothing, and leave the connection waiting beside an idle
    /// worker. nginx disables its accept events the same way. A draining worker's
    /// listeners are `plan_last_accepts`'s business.
    fn watch_listeners(&mut self) {
        let wanted = self.can_accept();
        if self.draining || wanted == self.watching {
            return;
        }
        self.watching = wanted;
        self.ctx.slot.set_full(!wanted);
        for i in 0..self.listeners.len() {
            match wanted {
                true => self.watch(i),
                false => self.let_go(i),
            }
            // Arrivals meanwhile raised no event here: look once.
            self.accept_ready[i] = true;
        }
    }

    /// Adds listener `i` to this worker's epoll (at the back of the line of waiters).
    fn watch(&mut self, i: usize) {
        let token = Token(LISTENER_BASE + i);
        if let Err(err) = self.listeners[i].register(self.poll.registry(), token) {
            self.ask_for_replacement(&format!("cannot watch its listener again ({err})"));
        }
    }

    fn let_go(&mut self, listener: usize) {
        let _ = self.listeners[listener].deregister(self.poll.registry());
    }

    /// Draining, and done with the accept queues: closes this worker's copies of the
    /// listening sockets (see `Master::stop_workers`), so that, at a stop of the whole
    /// server, connections still in progress here (an upload, an idle keep-alive) do not
    /// hold them open and newcomers are refused at once instead of waiting in a queue
    /// nobody takes. Each is first removed from the epoll: a descriptor shared with other
    /// processes would otherwise stay in it, taking wake-ups meant for other workers.
    fn close_listeners(&mut self) {
        if self.listeners.is_empty() {
            return;
        }
        for i in 0..self.listeners.len() {
            self.let_go(i);
        }
        self.listeners.clear();
        self.accept_ready.clear();
        self.last_accepts.clear();
        self.rotated_at.clear();
        if let Some(metrics) = self.ctx.metrics.as_mut() {
            metrics.forget_listeners();
        }
    }

    fn taking_the_queue(&self) -> bool {
        self.last_accepts.iter().any(|&n| n > 0)
    }

    fn can_accept(&self) -> bool {
        (!self.draining || self.taking_the_queue())
            && self.open < self.config.worker_connections
            && self.accept_paused_until.is_none_or(|t| t <= self.ctx.now)
    }

    /// Accepts at most one connection and serves it at once if its request is there.
    fn accept_one(&mut self) {
        if !self.can_accept() {
            return;
        }
        self.accept_paused_until = None;
        for i in 0..self.listeners.len() {
            if !self.accept_ready[i] || (self.draining && self.last_accepts[i] == 0) {
                continue;
            }
            let accepted = self.listeners[i].accept();
            // Taken, or taken by another: nothing is owed any more.
            self.owed = false;
            if self.draining {
                let empty = matches!(&accepted, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
                self.took_last_accept(i, !empty);
            }
            match accepted {
                Ok(accepted) => {
                    self.starved = false;
                    // Not while this worker stopped watching (it was full and has just
                    // made room): `watch_listeners` adds it back at the end of the turn.
                    let due = self.ctx.now >= self.rotated_at[i] + ROTATE_EVERY;
                    if self.watching && !self.draining && due {
                        self.rotate(i);
                    }
                    return self.adopt(accepted);
                }
                Err(err) => self.on_accept_error(i, err),
            }
        }
    }

    fn on_accept_error(&mut self, listener: usize, err: io::Error) {
        match accept_failure(&err) {
            AcceptFailure::Empty => self.accept_ready[listener] = false,
            AcceptFailure::Starved => {
                self.starved = true;
                if self.starved_at.replace(self.ctx.now).is_none() {
                    log::warn!(
                        "accept: {err}; retrying every {ACCEPT_BACKOFF:?} until connections close"
                    );
                }
                self.accept_paused_until = Some(self.ctx.now + ACCEPT_BACKOFF);
            }
            AcceptFailure::NotListening => {
                // Edge-triggered: no event comes for it again unless it is watched anew.
                self.accept_ready[listener] = false;
                static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                if crate::logging::once_a_second(&LAST) {
                    log::error!(
                        "accept: {err}; the listening socket no longer listens (shut down?)"
                    );
                }
            }
            AcceptFailure::Broken => {
                self.accept_ready[listener] = false;
                self.listener_failed = Some(err);
            }
            AcceptFailure::Retry => log::debug!("accept: {err}"),
        }
    }

    /// Serves a new connection before it enters epoll: its request is usually there
    /// already (TCP_DEFER_ACCEPT), and one that is done after that request (HTTP/1.0,
    /// `Connection: close`, as `ab` without `-k` sends) is closed without ever being
    /// registered, two syscalls fewer. Registering later misses nothing: epoll reports
    /// readiness that is already there when a descriptor is added.
    fn adopt(&mut self, accepted: Accepted) {
        let mut conn = Conn::new(accepted, &self.ctx);
        let (served, began) = (self.ctx.served, self.ctx.now);
        let verdict = conn.drive(&mut self.scratch, &mut self.ctx);
        let took = self.ctx.now.saturating_duration_since(began);
        (self.kept_work, self.newcomer_turn) = (Duration::ZERO, took.min(NEWCOMER_TURN));
        if self.ctx.served > served {
            self.ctx.newcomer_served_at = self.ctx.now;
            conn.served_as_newcomer(self.ctx.now);
        }
        // Closed before a stop asked for meanwhile is acted on: a drain serves the idle
        // connections' last requests first, and this client would wait for its end.
        match verdict {
            Verdict::Close => conn.close(&mut self.ctx),
            _ => self.keep(conn),
        }
        self.heed_a_stop();
    }

    /// Registers a connection with epoll and the table of open ones; from then on the
    /// loop drives it on its events.
    fn keep(&mut self, mut conn: Conn) {
        let index = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if let Err(err) = conn.register(self.poll.registry(), Token(CONN_BASE + index)) {
            log::warn!("cannot watch a new connection: {err}");
            conn.close(&mut self.ctx);
            self.free.push(index);
            return;
        }
        self.conns[index] = Some(conn);
        self.note_rest(index);
        self.open += 1;
    }

    /// Notes, for the SIGABRT action, whether the connection at `index` is at rest
    /// ([`abort_answer`]). Whatever reads from a connection or writes to it clears the
    /// note first, and notes it again after ([`Worker::settle`]).
    fn note_rest(&self, index: usize) {
        let conn = self.conns.get(index).and_then(Option::as_ref);
        abort_answer::set_at_rest(index, conn.and_then(Conn::rest_fd));
    }

    /// After a drive or an expiry: closes the connection at `index` if it is done, else
    /// notes whether it is at rest.
    fn settle(&mut self, index: usize, verdict: Verdict) {
        match verdict {
            Verdict::Close => self.close(index),
            _ => self.note_rest(index),
        }
    }

    /// Lets one connection make all the progress it can; closes it if it is done.
    /// Nothing more is served once a drain's time is up, a stop noticed late included.
    fn drive(&mut self, index: usize) {
        if self.ctx.out_of_time() {
            self.close_the_rest();
        }
        let Some(Some(conn)) = self.conns.get_mut(index) else {
            return;
        };
        // Serving may take a while; each request moves `ctx.now` on when it is answered,
        // so later deadlines and accepts see the real time.
        abort_answer::set_at_rest(index, None);
        let verdict = conn.drive(&mut self.scratch, &mut self.ctx);
        if verdict == Verdict::Keep && conn.owed_a_turn() && !self.owed_turns.contains(&index) {
            self.owed_turns.push(index);
        }
        self.settle(index, verdict);
        self.heed_a_stop();
        // Draining with the listeners kept for a sibling: closed as soon as that sibling
        // has noticed, not after the whole share, which slow requests make seconds long
        // while newcomers queue.
        if self.draining {
            self.finish_with_the_queues();
        }
    }

    /// The connections whose streams gave way to the others in the last pass, each
    /// driven again, once: one an event drove in this pass, and which gave way again,
    /// has had its turn (its client sending byte after byte as it read had it driven
    /// once more per byte, and newcomers waited seconds). One closed meanwhile is
    /// skipped; one that took its place is driven for nothing, harmlessly.
    fn drive_owed_turns(&mut self, owed: Vec<usize>) {
        for index in owed {
            if !self.owed_turns.contains(&index) {
                self.drive(index);
            }
        }
    }

    /// A stop asked for while a request ran is acted on before the next connection is
    /// driven, not after the whole batch of events (seconds, behind slow requests). So is
    /// the end of a drain's time: the share of the queue a stop takes comes in one batch,
    /// and serving it whole ran the worker into the master's SIGKILL.
    fn heed_a_stop(&mut self) {
        if self.signals.stop_asked.load(Ordering::Relaxed) {
            self.on_signals();
        }
        if self.ctx.out_of_time() {
            self.close_the_rest();
        }
    }

    /// Drops a connection, which closes its socket and so removes it from our epoll
    /// (deregistering first would be a wasted syscall).
    fn close(&mut self, index: usize) {
        abort_answer::set_at_rest(index, None);
        if let Some(conn) = self.conns.get_mut(index).and_then(Option::take) {
            conn.close(&mut self.ctx);
            self.released.push(index);
            self.open -= 1;
        }
    }

    /// `--graceful-timeout` is about to run out on a drain: closes the connections still
    /// open (a download to a slow reader, say), each as a timeout would, so their
    /// access-log lines are written with the bytes that went out and the worker exits
    /// on its own, rather than all of it being lost to the master's SIGKILL. Requests
    /// that will not run (the rest of the accept queue taken at the stop) are answered
    /// 503 first (`Conn::refuse_unserved`).
    fn close_the_rest(&mut self) {
        self.ctx.drain_ends = None;
        let open = self.open;
        let mut refused = 0;
        for index in 0..self.conns.len() {
            abort_answer::set_at_rest(index, None);
            if let Some(conn) = self.conns[index].as_mut() {
                refused += usize::from(conn.refuse_unserved(&mut self.scratch, &mut self.ctx));
            }
            self.close(index);
        }
        let answered = match refused {
            0 => String::new(),
            n => format!(", answering the {n} request(s) not run 503"),
        };
        if open > 0 {
            log::warn!(
                "--graceful-timeout is running out: closed {open} connection(s) still open{answered}"
            );
        }
    }

    /// Closes or answers connections whose deadline passed (checked a few times a
    /// second, which is as precise as these timeouts need to be), and tells the master
    /// how many answers are still going out.
    fn sweep(&mut self) {
        if self.ctx.now < self.next_sweep {
            return;
        }
        self.next_sweep = self.ctx.now + SWEEP_EVERY;
        // The backstop to the lifeline and PDEATHSIG (sys/lifeline.rs); checked here, a
        // few times a second, rather than on every quiet turn of a busy loop.
        if !lifeline::parent_is(self.master) {
            log::warn!("the master is gone; stopping");
            self.begin_drain();
        }
        // The backstop to the kernel's one wake-up per arrival (`sys::epoll`): one that
        // went to a sibling just letting the listener go (retired by HUP, TTOU or
        // recycling) is lost with it, and the connection waited for the next arrival to
        // wake another worker (one request in ten, with `--max-requests 3` and a client
        // sending the next as soon as it had the last answer). So a worker that watches
        // also looks at the queue itself, a few times a second.
        if self.watching && !self.draining {
            self.accept_ready.fill(true);
        }
        let fed = self
            .starved_at
            .filter(|&t| !self.starved && self.ctx.now >= t + STARVED_QUIET);
        if fed.is_some() {
            self.starved_at = None;
            log::warn!("accepting again: descriptors are available");
        }
        // A draining worker is on its way out already.
        let due = (!self.draining).then(|| self.recycle.at_sweep(self.ctx.now));
        if let Some(why) = due.flatten() {
            self.ask_for_replacement(&why);
        }
        let shed = self.ctx.budget.was_wanted();
        self.expire_due(shed);
        self.make_room();
        self.publish_sending();
    }

    /// Tells the master how many answers are still going out: it retires a worker that
    /// cuts no download when it can.
    fn publish_sending(&self) {
        let sending = self.conns.iter().flatten().filter(|c| c.is_sending());
        self.ctx.slot.set_sending(sending.count());
    }

    /// Closes or answers the connections whose deadline passed; and when a request was
    /// refused for want of input budget (`shed`), those holding part of it for a request
    /// that arrives slower than [`conn::MIN_RATE`] bytes a second, answered 408 as Apache's
    /// `mod_reqtimeout` answers them: uploads stalled on purpose, 7 bytes a second each,
    /// kept every other upload out (503) until `--body-timeout`.
    fn expire_due(&mut self, shed: bool) {
        let mut slow = 0;
        for index in 0..self.conns.len() {
            let Some(conn) = self.conns[index].as_mut() else {
                continue;
            };
            conn.measure_rate(self.ctx.now);
            let too_slow = shed && conn.holds_budget_slowly();
            slow += usize::from(too_slow);
            let due = too_slow || conn.deadline(&self.ctx.timeouts) <= self.ctx.polled_at;
            if !due {
                continue;
            }
            abort_answer::set_at_rest(index, None);
            let verdict = conn.expire(&mut self.ctx);
            self.settle(index, verdict);
        }
        if slow > 0 {
            log::warn!(
                "the input budget is wanted: answering 408 to {slow} request(s) arriving slower than {} bytes/s",
                conn::MIN_RATE
            );
        }
    }

    /// A worker full of connections (`--worker-connections`, or out of descriptors before
    /// that: accept failing with EMFILE) while newcomers wait in the accept queue closes
    /// idle kept-alive connections, oldest first, to let them in, as nginx reuses
    /// connections ("worker_connections are not enough"): otherwise clients idling for
    /// `--keep-alive` lock everyone else out, unlogged (5,000 idle connections at
    /// `--keep-alive 30` did in a probe; 490 under a limit of 256 descriptors, another).
    /// Said once per episode. The kernel's queue is asked only while the worker is full,
    /// and must hold connections at two sweeps in a row: one that a free worker is about
    /// to take is no reason to close anything.
    fn make_room(&mut self) {
        let full = self.open >= self.config.worker_connections;
        if self.draining || !(full || self.starved) {
            (self.crowded, self.queue_seen) = (false, false);
            return;
        }
        let waiting: usize = self
            .listeners
            .iter()
            .filter_map(Listener::queued)
            .map(|q| q as usize)
            .sum();
        if !std::mem::replace(&mut self.queue_seen, waiting > 0) || waiting == 0 {
            return;
        }
        let candidates = self.reclaimable();
        if candidates.is_empty() {
            return;
        }
        if !std::mem::replace(&mut self.crowded, true) {
            let why = match full {
                true => format!(
                    "--worker-connections {} are not enough",
                    self.config.worker_connections
                ),
                false => "out of file descriptors".to_string(),
            };
            log::warn!(
                "{why}: {waiting} connection(s) wait; closing idle keep-alive connections \
                 (then heads, then requests, sent slowly) for them"
            );
        }
        self.reclaim(&candidates, waiting.min(ROOM_AT_ONCE));
    }

    /// The connections a full worker may close for newcomers, in the order it closes
    /// them: idle kept-alive ones and those that have begun no request for [`SLOW_HEAD`]
    /// or more (blank lines, or silence), oldest first, then those whose request head has
    /// been arriving for [`SLOW_HEAD`] or more, the slowest first, then those whose request
    /// arrives slower than [`conn::MIN_RATE`] (an upload sent a byte at a time), oldest
    /// first. A head that slow is not a client on a slow line (a head is a packet or two)
    /// but one dribbling bytes to hold the connection (slowloris), which otherwise held
    /// every place until `--header-timeout` (10 s), wave after wave, while nginx let
    /// newcomers in; an upload dribbled so held its place for good, each byte putting
    /// `--body-timeout` off.
    fn reclaimable(&self) -> Vec<(Reclaim, Instant, usize)> {
        let slow_since = self.ctx.now.checked_sub(SLOW_HEAD);
        let candidate = |(index, conn): (usize, &Option<Conn>)| {
            let conn = conn.as_ref()?;
            let unbegun = conn.unbegun_since().filter(|&t| Some(t) <= slow_since);
            if let Some(since) = conn.idle_since().or(unbegun) {
                return Some((Reclaim::Idle, since, index));
            }
            if let Some(began) = conn.head_since().filter(|&t| Some(t) <= slow_since) {
                return Some((Reclaim::SlowHead, began, index));
            }
            let since = conn.slow_request_since(self.ctx.now)?;
            Some((Reclaim::SlowRequest, since, index))
        };
        let mut candidates: Vec<_> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(candidate)
            .collect();
        candidates.sort_unstable();
        candidates
    }

    /// Closes up to `most` of the `candidates`: an idle one at once, unless its client
    /// has just sent a request (closed unread, it would get a reset); a slow one after a
    /// 408, as its timeout would have answered it.
    fn reclaim(&mut self, candidates: &[(Reclaim, Instant, usize)], most: usize) {
        let mut closed = 0;
        for &(why, _, index) in candidates {
            if closed == most {
                break;
            }
            let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
                continue;
            };
            if why == Reclaim::Idle && conn.input_waiting() {
                continue;
            }
            if why != Reclaim::Idle {
                abort_answer::set_at_rest(index, None);
                conn.expire(&mut self.ctx);
            }
            self.close(index);
            closed += 1;
        }
    }
}

/// Why a full worker may close a connection for a newcomer, in the order it does
/// ([`Worker::reclaimable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reclaim {
    /// Idle between requests, or silent since it was accepted.
    Idle,
    /// Its request head has been arriving for a second or more.
    SlowHead,
    /// Its request arrives slower than [`conn::MIN_RATE`].
    SlowRequest,
}

/// What a failed accept calls for.
#[derive(Debug, PartialEq, Eq)]
enum AcceptFailure {
    /// Nothing waits (WouldBlock): the next event says when something does.
    Empty,
    /// Out of descriptors or memory: back off instead of spinning on a listener that
    /// stays readable, and try again once some connections have closed.
    Starved,
    /// The socket no longer listens (shut down: EINVAL). That is true in every process
    /// sharing it, so a new worker could do no better: this one stops trying, says so,
    /// and serves on, its other listeners and connections included. Retried, it spun a
    /// core for good, and exiting made the master fork a worker after worker.
    NotListening,
    /// This worker's descriptor is no longer the listener: closed under it (EBADF, an
    /// application's double close) or another file in its place (ENOTSOCK). It stays
    /// ready in epoll, so retrying spun a core for good, silently, with a heartbeat that
    /// kept the master from replacing the worker; the worker exits instead, and the
    /// master starts one with a fresh copy of the socket.
    Broken,
    /// The client left before its accept (ECONNABORTED), or one of the network errors
    /// accept(2) passes on from the new connection: the next one may do.
    Retry,
}

/// Which [`AcceptFailure`] an error of accept(2) is.
fn accept_failure(err: &io::Error) -> AcceptFailure {
    use nix::libc::{EBADF, EFAULT, EINVAL, EMFILE, ENFILE, ENOBUFS, ENOMEM, ENOTSOCK};
    match err.raw_os_error() {
        _ if err.kind() == io::ErrorKind::WouldBlock => AcceptFailure::Empty,
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM) => AcceptFailure::Starved,
        Some(EINVAL) => AcceptFailure::NotListening,
        Some(EBADF | ENOTSOCK | EFAULT) => AcceptFailure::Broken,
        _ => AcceptFailure::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::{AcceptFailure, accept_failure, short_backtrace};
    use std::io;

    #[test]
    fn accept_failures() {
        use nix::libc::{EAGAIN, EBADF, ECONNABORTED, EINVAL, EMFILE, ENETDOWN, ENOTSOCK, EPROTO};
        let cases = [
            (EAGAIN, AcceptFailure::Empty),
            (EMFILE, AcceptFailure::Starved),
            (EINVAL, AcceptFailure::NotListening),
            (EBADF, AcceptFailure::Broken),
            (ENOTSOCK, AcceptFailure::Broken),
            (ECONNABORTED, AcceptFailure::Retry),
            (EPROTO, AcceptFailure::Retry),
            (ENETDOWN, AcceptFailure::Retry),
        ];
        for (errno, want) in cases {
            let err = io::Error::from_raw_os_error(errno);
            assert_eq!(accept_failure(&err), want, "{err}");
        }
    }

    #[test]
    fn a_short_backtrace_is_the_application_s_frames() {
        let full = "   0: br_serve::worker::log_panic
             at ./src/worker/mod.rs:238:21
   5: std::sys::backtrace::__rust_end_short_backtrace::<..>
             at /rustc/library/std/src/sys/backtrace.rs:176:18
   6: __rustc::rust_begin_unwind
   7: my_app::Api::handle
             at ./src/main.rs:12:9
  12: std::panicking::catch_unwind::do_call
             at /rustc/library/std/src/panicking.rs:581:40
  24: br_serve::worker::Worker::serve";
        assert_eq!(
            short_backtrace(full),
            [
                "   6: __rustc::rust_begin_unwind",
                "   7: my_app::Api::handle",
                "             at ./src/main.rs:12:9",
            ]
        );
        // Without the markers (no symbols), all of it.
        let bare = "   0: <unknown>\n   1: <unknown>";
        assert_eq!(
            short_backtrace(bare),
            ["   0: <unknown>", "   1: <unknown>"]
        );
    }
}
