//! One client connection: its input buffer, where it is in the request cycle, its output
//! queue, and the deadline that applies to it now.
//!
//! The cycle (RFC 9112): read a head, read its body (Content-Length or chunked), call
//! the handler, queue the response, and, if the connection persists, start over with
//! whatever is already buffered, so pipelined requests are answered in order. Bodies are
//! read whole before the handler runs, so a handler can never leave part of a body
//! behind to be parsed as the next request. After a framing error the connection answers
//! with `Connection: close` and never tries to resynchronise; it then closes lingering
//! (RFC 9112 §9.6): shut down writing, drain input briefly, close, so the client reads
//! the error instead of a reset.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::out::{self, OutQueue};
use super::spool::{Spool, Spooling};
use super::stream::{Accepted, Stream};
use crate::Handler;
use crate::access_log::{AccessLog, Entry, Pending, joined_field};
use crate::config::AllowedPeers;
use crate::http::HttpError;
use crate::http::error::content_too_large;
use crate::http::{
    Body, BodyFraming, CONTINUE_100, ChunkedDecoder, DateCache, HeadBuffers, Limits, ProxyHeader,
    Request, RequestHead, Response, ResponseMeta, StreamEnd, Version, after_blank_lines,
    body_allowed, ended_by_close, parse_head_into, parse_proxy_header, stream_end, write_head,
};
use crate::metrics::Metrics;
use crate::sys::abort_answer;
use crate::sys::clock::MsAnchor;
use crate::sys::scoreboard::{Scoreboard, Slot};

/// Stop parsing new requests while this much output waits for a slow reader.
const OUTPUT_HIGH_WATER: u64 = 256 * 1024;
/// An answer that took the application this long or more is a slow one, after which a
/// pipelined request's answer goes out before the next request runs
/// (`Conn::send_earlier_answers`).
const SLOW_ANSWER: Duration = Duration::from_millis(1);
/// A Content-Length over `--limit-request-body` (RFC 9110 §15.5.14).
const CONTENT_TOO_LARGE: HttpError = content_too_large("Content-Length over the body limit");
/// An answer this large may outlast its last `write` in the kernel (`still_reading`).
const LARGE_ANSWER: u64 = 64 * 1024;
/// How long a lingering close waits for more of what the client is sending.
const LINGER: Duration = Duration::from_secs(2);
/// The longest a lingering close lasts, as nginx's `lingering_time`.
pub const LINGER_MAX: Duration = Duration::from_secs(30);
/// How much input a lingering close discards before giving up.
const LINGER_BYTES: usize = 64 * 1024;
/// The most of a refused body's announced length a lingering close takes in: a client
/// that sends its whole body before it reads (Python's http.client; most clients without
/// `Expect: 100-continue`) then reads the 413 or 405, where closing at [`LINGER_BYTES`]
/// reset it mid-send and it never saw the answer. nginx reads such a body for up to
/// `lingering_time`, whatever its size.
const LINGER_BODY: u64 = 64 << 20;
/// A kept request that waited this long behind other connections' requests, while
/// another worker is idle or a newcomer from the accept queue was served, is answered
/// with `Connection: close`: its client connects again, through the accept queue, to
/// whichever worker is free or in its turn, rather than waiting behind this one on every
/// request it sends (see `Conn::waited_behind_others`).
const MOVE_AFTER: Duration = Duration::from_millis(20);
/// The status the access log gives a request skipped because its client had gone:
/// nginx's 499, "client closed request" (never sent: there is no one to send it to).
const CLIENT_CLOSED: u16 = 499;
/// The end, in the output, of an answer whose stream is still being read.
const STREAM_OPEN: u64 = u64::MAX;

/// The connection timeouts, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A whole request head must arrive within this, from its first byte. (A connection
    /// that sends nothing at all is held by the kernel, TCP_DEFER_ACCEPT, for about fifteen
    /// seconds before a worker ever sees it; from accept this limit applies to it too.)
    pub head: Duration,
    /// How long a new connection may take to send its first byte: `head`, but while
    /// draining no longer than an idle kept-alive connection is kept then, so one opened
    /// ahead of need (a proxy's spare) cannot hold a stop up for the whole head timeout.
    pub first_byte: Duration,
    /// How long an idle keep-alive connection is kept.
    pub keep_alive: Duration,
    /// The longest pause while a body is being received.
    pub body_stall: Duration,
    /// The longest pause while the client is not reading our response.
    pub write_stall: Duration,
    /// The longest a lingering close lasts: [`LINGER_MAX`], but while draining no longer
    /// than an idle kept-alive connection is kept then, so a refused upload still coming
    /// cannot hold a stop up for half a minute.
    pub linger: Duration,
}

/// What the worker lends a connection while it works: the application and the
/// worker-wide state a request touches.
pub struct Ctx {
    /// The application.
    pub handler: Box<dyn Handler>,
    /// HTTP size limits.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// The cached Date header value.
    pub date: DateCache,
    /// This worker's scoreboard slot.
    pub slot: &'static Slot,
    /// The time now, near enough: read when poll returns and after every request. Set
    /// it with [`Ctx::set_now`], which keeps `now_ms` in step.
    pub now: Instant,
    /// `now` in the scoreboard's milliseconds, converted once per clock read.
    pub now_ms: u64,
    /// Converts an `Instant` to the scoreboard's milliseconds.
    pub anchor: MsAnchor,
    /// Answer with `Connection: close` and keep no connection idle.
    pub closing: bool,
    /// The graceful stop signal came, and the event loop has not seen it yet (it may be
    /// running a handler): raised by the signal handler itself.
    pub stop_asked: Arc<AtomicBool>,
    /// When the graceful stop signal first came, in the scoreboard's milliseconds (0
    /// before): recorded by the signal handler itself.
    pub stop_sent_ms: Arc<AtomicU64>,
    /// USR1 came and the logs have not been reopened since: raised by the signal
    /// handler itself ([`Ctx::reopen_logs_if_asked`]).
    pub reopen_asked: Arc<AtomicBool>,
    /// How long after the graceful stop signal a drain's time is up.
    pub drain_time: Duration,
    /// Every worker's slot: whether another is idle, for a client waiting behind this
    /// one ([`MOVE_AFTER`]).
    pub board: Scoreboard,
    /// When the last poll returned. Everything the kernel had for us by then has been
    /// seen, so deadlines are judged against this moment: after a handler that ran for
    /// seconds, a request that arrived meanwhile is waiting in the kernel, unread, and
    /// must not be timed out before the next poll reports it.
    pub polled_at: Instant,
    /// When the connection being driven began its turn: its requests waited this long
    /// since `polled_at` behind other connections' ([`MOVE_AFTER`]). Not until its own
    /// pipelined requests were answered: those are answered in order wherever they go.
    pub turn_began: Instant,
    /// When the last connection taken from the accept queue had its request answered: a
    /// kept request that arrived before then waited behind a newcomer ([`MOVE_AFTER`]).
    pub newcomer_served_at: Instant,
    /// `--check-client-connection`: skip a request whose client has gone.
    pub check_client: bool,
    /// `--proxy-protocol`: each connection begins with a PROXY header naming its client,
    /// sent by one of these peers (`--proxy-allow-from`).
    pub proxy_protocol: Option<AllowedPeers>,
    /// `--forwarded-allow-ips`: the peers whose forwarded scheme is believed.
    pub forwarded_allow_ips: AllowedPeers,
    /// `--queue-timeout`: answer 503 to a request that waited longer for this worker.
    pub queue_timeout: Option<Duration>,
    /// Requests answered by this worker so far.
    pub served: u64,
    /// The access log, when one is configured.
    pub access: Option<AccessLog>,
    /// `--metrics-path`, answered here before the application.
    pub metrics: Option<Metrics>,
    /// Memory for the requests being received.
    pub budget: InputBudget,
    /// Where bodies too large for memory go.
    pub spooling: Spooling,
    /// The last answer took [`SLOW_ANSWER`] or more since the clock's read before it.
    pub slow_answer: bool,
    /// Draining: when to close what is still open, just before the master's SIGKILL at
    /// `--graceful-timeout` would ([`Ctx::out_of_time`]).
    pub drain_ends: Option<Instant>,
}

/// Memory for requests being received, shared by a worker's connections. A body is read
/// whole before its handler runs, in memory up to `--body-spool-size` (on disk beyond
/// it, as nginx keeps its own), so without a bound a thousand stalled uploads would hold
/// a thousand of those (a gigabyte at the default 1 MiB); a head may be 800 KiB within
/// the `--limit-request-*` limits, and a thousand of those would hold as much (nginx
/// caps a head at 32 KiB). Body bytes are taken as they arrive (an announced length
/// costs nothing until it is sent), and the bytes of a head beyond [`HEAD_ALLOWANCE`]; a
/// request that does not fit is answered 503 with `Retry-After` and the connection
/// closes.
pub struct InputBudget {
    left: u64,
    /// A request was refused for want of room since [`InputBudget::was_wanted`] last
    /// asked: the worker then sheds what arrives too slowly to deserve its share.
    wanted: bool,
}

/// Bytes of a head in progress that a connection holds without taking them from the
/// [`InputBudget`]: heads are rarely over a few KiB, cookies included.
const HEAD_ALLOWANCE: u64 = 16 * 1024;

/// The window over which a connection's arrival rate is measured ([`Conn::measure_rate`]).
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Below this many bytes a second over a [`RATE_WINDOW`], a request in progress that
/// holds part of the [`InputBudget`] gives way when the budget is wanted: Apache's
/// `mod_reqtimeout` default `MinRate=500`.
pub const MIN_RATE: u64 = 500;

/// The input buffer's capacity a connection keeps between requests: what one read (the
/// worker's 64 KiB scratch) or a large head grew it to beyond this is given back.
const INPUT_KEEP: usize = 64 * 1024;

impl InputBudget {
    /// At least 64 MiB, and room for four bodies of the largest size `kept` in memory
    /// (the body limit, or the spool size when that is smaller).
    pub fn for_limit(kept: u64) -> InputBudget {
        InputBudget {
            left: kept.saturating_mul(4).max(64 << 20),
            wanted: false,
        }
    }

    fn take(&mut self, bytes: u64) -> bool {
        let fits = bytes <= self.left;
        match fits {
            true => self.left -= bytes,
            false => self.wanted = true,
        }
        fits
    }

    /// Whether a request was refused for want of room since the last time this asked.
    pub fn was_wanted(&mut self) -> bool {
        std::mem::take(&mut self.wanted)
    }

    /// Gives back what a connection had taken (its body handed over, or the
    /// connection closed).
    pub fn give_back(&mut self, bytes: u64) {
        self.left = self.left.saturating_add(bytes);
    }
}

/// Moves what has arrived of a body from `input` into `body`: (input bytes used, body
/// finished), or the refusal of a malformed chunked body.
fn decode_body(
    framing: &mut BodyDecoder,
    input: &[u8],
    body: &mut Vec<u8>,
    limits: &Limits,
) -> Result<(usize, bool), Response> {
    match framing {
        BodyDecoder::Length(remaining) => {
            let take = (*remaining).min(input.len() as u64) as usize;
            body.extend_from_slice(&input[..take]);
            *remaining -= take as u64;
            Ok((take, *remaining == 0))
        }
        BodyDecoder::Chunked(decoder) => decoder
            .decode(input, body, limits)
            .map_err(|err| Response::error(&err)),
    }
}

/// Past `--body-spool-size`, and then with whatever arrives, moves what `body` holds to
/// its spool file, made on the first move, and lets the buffer go: returns the bytes
/// moved, which no longer take memory, or the refusal a failed write earns. Nothing is
/// kept once spooling, so an upload stalled part-way holds no memory that the input
/// budget does not count (a buffer kept for the next write held up to 512 KiB, charged
/// nothing: 600 stalled uploads grew a worker by 196 MiB against a 64 MiB budget).
fn spill(
    body: &mut Vec<u8>,
    spool: &mut Option<Spool>,
    spooling: &Spooling,
) -> Result<u64, Response> {
    let due = spool.is_some() || body.len() as u64 > spooling.size;
    if !due || body.is_empty() {
        return Ok(0);
    }
    let written = match spool {
        Some(spool) => spool.append(body),
        None => Spool::create(&spooling.dir).and_then(|new| spool.insert(new).append(body)),
    };
    written.map_err(|err| spool_failed(spooling, &err))?;
    Ok(std::mem::take(body).len() as u64)
}

/// The answer to a body that could not be spooled (a full disk, a directory gone): 500,
/// as nginx answers when it cannot write a `client_body_temp` file, and the reason in
/// the error log, at most once a second (the access log has each request).
fn spool_failed(spooling: &Spooling, err: &std::io::Error) -> Response {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if crate::logging::once_a_second(&LAST) {
        log::error!(
            "cannot spool a request body to --body-spool-dir {}: {err}; answering 500",
            spooling.dir.display()
        );
    }
    Response::text(
        500,
        "500 Internal Server Error: the request body could not be stored\n",
    )
}

/// Whether the server answers this request itself (`OPTIONS *`, `--metrics-path`), so
/// the application's [`Handler::before_body`] is not asked.
fn server_answers(head: &RequestHead, ctx: &Ctx) -> bool {
    let metrics = ctx.metrics.as_ref().is_some_and(|m| m.serves(head.path()));
    (head.method(), head.target()) == ("OPTIONS", "*") || metrics
}

/// The answer to a request that does not fit in the [`InputBudget`]; said in the error
/// log at most once a second (the access log has each request).
fn no_room() -> Response {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if crate::logging::once_a_second(&LAST) {
        log::warn!("requests being received fill this worker's input budget; answering 503");
    }
    Response::text(
        503,
        "503 Service Unavailable: too many requests arriving at once\n",
    )
    .with_header("Retry-After", "1")
}

impl Ctx {
    /// This worker, or the whole server, is on its way out (a stop that came while the
    /// application ran counts too), or --drain-delay moves clients off so they
    /// reconnect through a load balancer that no longer routes to us (unready).
    fn stopping(&self) -> bool {
        self.closing || self.slot.unready() || self.stop_asked.load(Ordering::Relaxed)
    }

    /// An answer is ready: the one clock read of a request (the scoreboard, the Date, the
    /// connection's deadlines and the worker's next steps all take the time from here),
    /// and the counts (the metrics, `--max-requests`).
    fn answered(&mut self) {
        let now = Instant::now();
        self.slow_answer = now.saturating_duration_since(self.now) >= SLOW_ANSWER;
        self.set_now(now);
        self.slot.end_request(self.now_ms);
        self.served += 1;
    }

    /// A drain's time is up: no request is begun from then on. Also before the event loop
    /// has seen the stop signal, with the end counted from the signal: a batch of
    /// pipelined requests running when it came ran into the master's SIGKILL.
    pub fn out_of_time(&self) -> bool {
        let end = match self.drain_ends {
            None if self.stop_asked.load(Ordering::Relaxed) => {
                self.stop_began().map(|began| began + self.drain_time)
            }
            end => end,
        };
        end.is_some_and(|end| self.now >= end)
    }

    /// When the graceful stop signal came, as the master counts `--graceful-timeout`
    /// (which may be a long handler before the event loop sees it); `None` before.
    pub fn stop_began(&self) -> Option<Instant> {
        let sent_ms = self.stop_sent_ms.load(Ordering::Relaxed);
        let ago = Duration::from_millis(self.now_ms.saturating_sub(sent_ms));
        (sent_ms > 0).then(|| self.now.checked_sub(ago)).flatten()
    }

    /// USR1: reopens the error log and the access log, once per signal, whichever comes
    /// first: the event loop's look at its signals, or an access-log line about to be
    /// written. A request running in a handler when logrotate moved the file and sent
    /// USR1 wrote its line after the handler returned, before the loop saw the signal:
    /// to the moved file, which logrotate's `compress` had already read, so it was lost.
    pub fn reopen_logs_if_asked(&mut self) {
        if !self.reopen_asked.load(Ordering::Relaxed)
            || !self.reopen_asked.swap(false, Ordering::Relaxed)
        {
            return;
        }
        crate::logging::reopen();
        if let Some(log) = self.access.as_mut() {
            log.reopen();
        }
    }

    /// Moves the clock on to `now`.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
        self.now_ms = self.anchor.ms(now);
    }
}

// `Body` holds a head inline (160 bytes, with its peer's address): one `Phase` a
// connection, so the other states' unused room is little, where boxing the head would
// allocate for every request with a body.
#[allow(clippy::large_enum_variant)]
enum Phase {
    /// Waiting for a request head; `first_byte` is when its first byte arrived.
    Head { first_byte: Option<Instant> },
    /// Receiving the body of a parsed head.
    Body {
        head: RequestHead,
        body: Vec<u8>,
        /// Where the body goes once it is over `--body-spool-size`; `body` then holds
        /// only what arrived since the last write.
        spool: Option<Spool>,
        framing: BodyDecoder,
        /// When the head's first byte arrived.
        began: Instant,
    },
    /// The last response is queued; close once it is written.
    Closing,
    /// Written and half-closed; discarding input until EOF or the linger deadline.
    Lingering {
        since: Instant,
        drained: usize,
        cap: usize,
    },
}

enum BodyDecoder {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// What the worker should do with the connection after driving it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it; it waits for its next event.
    Keep,
    /// Close it now.
    Close,
}

/// A connection from a peer that `--proxy-allow-from` does not list: its PROXY header
/// could name any client.
const PROXY_SENDER_NOT_ALLOWED: HttpError =
    HttpError::new(403, "connection from a peer not in --proxy-allow-from");

/// One accepted connection.
pub struct Conn {
    stream: Stream,
    peer: Option<SocketAddr>,
    /// The address the client connected to: the listener's, the PROXY header's, or asked
    /// of the socket for the first request ([`Conn::local_addr`]).
    local: Option<SocketAddr>,
    /// The peer is one `--forwarded-allow-ips` trusts: its requests' forwarded scheme
    /// counts. Judged once, on the socket's own peer: behind `--proxy-protocol` that is
    /// the balancer, which sends the request, not the client its header names (as
    /// gunicorn judges it).
    trusted: bool,
    /// `--proxy-allow-from` admits the peer: its PROXY header is taken. Another peer's
    /// is refused with 403, whatever its first bytes are.
    proxy_sender: bool,
    input: Vec<u8>,
    /// The last request's head buffers, for the next head to be parsed into.
    head_buffers: HeadBuffers,
    out: OutQueue,
    phase: Phase,
    /// An edge reported readable and we have not yet seen WouldBlock.
    readable: bool,
    /// The peer shut down its side.
    eof: bool,
    /// The connection answered at least one request (idle timeout is keep-alive's).
    reused: bool,
    /// The last time the client sent or took bytes, or a request completed.
    last_progress: Instant,
    /// When the worker accepted it: until a request begins, the place is held from here,
    /// whatever blank lines come meanwhile.
    accepted: Instant,
    /// [`Ctx::newcomer_served_at`] when this connection's last request was answered.
    newcomer_seen_at: Option<Instant>,
    /// The last time the client took bytes of an answer, or an answer was queued with
    /// none before it: `--write-timeout` runs from here, so bytes the client sends cannot
    /// hold open a connection whose answers it does not read.
    last_written: Instant,
    /// We answered an error and must not trust what follows.
    failed: bool,
    /// Bytes still to come of a body refused before it was read, as announced (or as
    /// many as a lingering close takes in, for a chunked one).
    refused_body: u64,
    /// What the stream of the answer being queued gave at its first read, made before
    /// its head ([`first_read`]), from `respond` to `queue_body`.
    read_ahead: Option<Vec<u8>>,
    /// The client shut down its side (EPOLLRDHUP was reported).
    peer_closed: bool,
    /// Bytes of the worker's [`InputBudget`] its request in progress holds.
    reserved: u64,
    /// Bytes read from the client, all told.
    received: u64,
    /// When the current [`RATE_WINDOW`] began, and `received` then.
    rate_mark: (Instant, u64),
    /// The last whole window brought fewer than [`MIN_RATE`] bytes a second, and the
    /// request held part of the [`InputBudget`] at its end.
    slow_sender: bool,
    /// The request being received was so for the whole of the last window, which
    /// brought fewer than [`MIN_RATE`] bytes a second; cleared when its head or body is
    /// handed over.
    slow_request: bool,
    /// At the window's start, the request waited for its `100 Continue` to reach the
    /// client ([`Conn::awaits_continue`]).
    awaited_continue: bool,
    /// `received` when the last head with a body ended: more, and the client has begun
    /// that body (a chunk-size line is not body, but it is a beginning).
    head_end: u64,
    /// The kernel's unsent bytes at the last idle deadline (`still_reading`).
    unsent_seen: u32,
    /// Access-log lines of answers not yet wholly written, in the order of the requests.
    lines: VecDeque<HeldLine>,
    /// `--proxy-protocol`, and the balancer's PROXY header has not been read yet.
    awaiting_proxy_header: bool,
}

/// An access-log line waiting for its answer to go out: where the answer's body begins
/// and where the answer ends in the connection's output stream ([`OutQueue::written`]).
struct HeldLine {
    pending: Pending,
    body_start: u64,
    end: u64,
}

impl HeldLine {
    /// Bytes of the body among the first `written` bytes of the stream.
    fn body_sent(&self, written: u64) -> u64 {
        written.min(self.end).saturating_sub(self.body_start)
    }
}

impl Conn {
    /// Wraps a freshly accepted stream.
    pub fn new(accepted: Accepted, ctx: &Ctx) -> Conn {
        let now = ctx.now;
        let Accepted {
            stream,
            peer,
            local,
        } = accepted;
        let proxy_sender = ctx
            .proxy_protocol
            .as_ref()
            .map(|allowed| allowed.admits(peer));
        Conn {
            stream,
            peer,
            local,
            trusted: ctx.forwarded_allow_ips.admits(peer),
            proxy_sender: proxy_sender.unwrap_or(true),
            input: Vec::new(),
            head_buffers: HeadBuffers::default(),
            out: OutQueue::default(),
            phase: Phase::Head { first_byte: None },
            readable: true,
            eof: false,
            reused: false,
            last_progress: now,
            accepted: now,
            last_written: now,
            newcomer_seen_at: None,
            failed: false,
            refused_body: 0,
            read_ahead: None,
            peer_closed: false,
            reserved: 0,
            received: 0,
            rate_mark: (now, 0),
            slow_sender: false,
            slow_request: false,
            awaited_continue: false,
            head_end: 0,
            unsent_seen: 0,
            lines: VecDeque::new(),
            awaiting_proxy_header: proxy_sender.is_some(),
        }
    }

    /// The connection is being dropped: gives back its share of the [`InputBudget`] and
    /// writes the lines of answers that did not wholly go out, with the bytes that did.
    /// One whose answer is ended by the close, cut short (a failed stream, a write
    /// timeout, a drain's end), is reset ([`Conn::queue_body`] armed it), so that its
    /// client cannot take the cut for the end.
    pub fn close(mut self, ctx: &mut Ctx) {
        ctx.budget.give_back(self.reserved);
        self.log_written(ctx, u64::MAX);
    }

    /// Adds the connection to the worker's epoll under `token`.
    pub fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
        self.stream.register(registry, token)
    }

    /// Records a readiness event (edge-triggered: remembered until WouldBlock).
    /// `peer_closed` is the event's read-closed flag (EPOLLRDHUP): the client's FIN
    /// arrived, possibly in the same edge as its last bytes, so this time the socket is
    /// read until EOF rather than trusting a short read.
    pub fn mark_readable(&mut self, peer_closed: bool) {
        self.readable = true;
        self.peer_closed |= peer_closed;
    }

    /// Whether the client has sent bytes we have not read: an edge not yet read to
    /// WouldBlock, or bytes that came since (asked of the kernel: after a handler that
    /// ran for a while, what came meanwhile has raised no event yet).
    pub fn input_waiting(&self) -> bool {
        self.readable || self.stream.has_unread_input()
    }

    /// Since when a kept-alive connection has been idle between requests, if it is.
    pub fn idle_since(&self) -> Option<Instant> {
        (self.reused && self.is_idle()).then_some(self.last_progress)
    }

    /// Since when a connection that has begun no request has held its place, if it has
    /// begun none: its client sent only the blank lines RFC 9112 §2.2 allows before a
    /// request, or nothing (TCP_DEFER_ACCEPT hands such a connection over after about
    /// 15 s anyway), or, with `--proxy-protocol`, part of a PROXY header, which a
    /// balancer sends whole: a full worker let such connections hold every place.
    pub fn unbegun_since(&self) -> Option<Instant> {
        let unbegun = self.is_idle() || self.awaiting_proxy_header;
        (!self.reused && unbegun).then_some(self.accepted)
    }

    /// At the end of each [`RATE_WINDOW`], whether the client sent fewer than
    /// [`MIN_RATE`] bytes a second over it (called by the worker's sweep): while its
    /// request held part of the budget, and while a request was arriving for the whole
    /// window (one begun within it is not judged on the time before it, idle or another
    /// request's, nor one waiting for its `100 Continue` at either end, on the time it
    /// had no leave to send). Bytes waiting unread say it did send: the worker was in a
    /// handler, not the client slow.
    pub fn measure_rate(&mut self, now: Instant) {
        let (began, at) = self.rate_mark;
        if now >= began + RATE_WINDOW {
            let seconds = now.saturating_duration_since(began).as_secs();
            let few = self.received - at < MIN_RATE * seconds;
            let holding = self.reserved > 0;
            let awaits = self.awaits_continue();
            let waited = std::mem::replace(&mut self.awaited_continue, awaits);
            let whole = self.request_began().is_some_and(|t| t <= began) && !waited && !awaits;
            let slow = few && (holding || whole) && !self.input_waiting();
            (self.slow_sender, self.slow_request) = (slow && holding, slow && whole);
            self.rate_mark = (now, self.received);
        }
    }

    /// Gives back the request's share of the [`InputBudget`] (its head or body handed
    /// over, or dropped). What the last window said of its speed goes with it: the next
    /// request is judged on its own window.
    fn release(&mut self, ctx: &mut Ctx) {
        ctx.budget.give_back(std::mem::take(&mut self.reserved));
        (self.slow_sender, self.slow_request) = (false, false);
        self.awaited_continue = false;
    }

    /// Holds part of the [`InputBudget`] for a request arriving slower than
    /// [`MIN_RATE`]: an upload stalled part-way, or dribbled a few bytes at a time, which
    /// at 7 bytes a second each held the whole budget through `--body-timeout`. (The
    /// verdict goes with the request's share.)
    pub fn holds_budget_slowly(&self) -> bool {
        self.slow_sender
    }

    /// When the request being received began, while it arrives slower than [`MIN_RATE`]
    /// ([`Conn::measure_rate`]), still does since the verdict (a client that has picked
    /// up speed since is not closed for it), and the worker is not writing it an answer
    /// (which a 408 would cut; what the kernel holds is the client's to read, and sending
    /// a body never waits on that, but for a `100 Continue`, which the verdict heeds): an
    /// upload dribbled a byte at a time to hold the connection, which a body timeout
    /// never ends.
    pub fn slow_request_since(&self, now: Instant) -> Option<Instant> {
        let (verdict, at) = self.rate_mark;
        let seconds = now.saturating_duration_since(verdict).as_secs() + 1;
        let still_slow = self.received - at < MIN_RATE * seconds;
        match self.slow_request && still_slow && self.out.is_empty() {
            true => self.request_began(),
            false => None,
        }
    }

    /// Whether the request being received expects a `100 Continue` that has not yet
    /// reached the client (queued, or in the kernel behind an answer the client has not
    /// read), and has had no byte after its head: its client sends none meanwhile,
    /// rightly.
    fn awaits_continue(&self) -> bool {
        // The system call only for such a request.
        self.owes_continue() && (!self.out.is_empty() || self.stream.unsent() > 0)
    }

    /// Whether the request being received expects a `100 Continue` and has had no byte
    /// after its head.
    fn owes_continue(&self) -> bool {
        matches!(&self.phase, Phase::Body { head, .. }
            if head.expects_continue() && self.received == self.head_end)
    }

    /// Since when a request head has been arriving, while one is and nothing is being
    /// written: the connection a slowloris client holds.
    pub fn head_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::Head { first_byte } if self.out.is_empty() => first_byte,
            _ => None,
        }
    }

    /// Idle between requests: nothing to write, and nothing buffered but the empty lines
    /// RFC 9112 §2.2 lets a client send before a request (old clients send one after a
    /// body).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head { first_byte: None })
            && after_blank_lines(&self.input).is_empty()
            && self.out.is_empty()
    }

    /// Whether an answer is still going out: its client takes it slower than the worker
    /// makes it (a file, a stream, or any answer to a client that stopped reading).
    pub fn is_sending(&self) -> bool {
        !self.out.is_empty()
    }

    /// The socket, while the connection is at rest ([`Conn::is_idle`]): for the SIGABRT
    /// action to answer a request that comes on it while the worker hangs
    /// ([`abort_answer`]).
    pub fn rest_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.is_idle().then(|| self.stream.fd())
    }

    /// This connection was the newcomer served at `at`: its own requests pipelined
    /// behind its answers (a stream's, which outlasts its first drive) did not wait
    /// behind another's.
    pub fn served_as_newcomer(&mut self, at: Instant) {
        self.newcomer_seen_at = Some(at);
    }

    /// A stream's turn ended with the socket still writable: the worker drives this
    /// connection again after its other work, as no event will ask it to.
    pub fn owed_a_turn(&self) -> bool {
        self.out.yielded()
    }

    /// Reads, serves and writes as far as the socket allows without blocking.
    pub fn drive(&mut self, scratch: &mut [u8], ctx: &mut Ctx) -> Verdict {
        // A stream's next turn: time since the poll went to its own reads, not waiting
        // behind others (`waited_behind_others`).
        ctx.turn_began = match self.out.yielded() {
            true => ctx.polled_at,
            false => ctx.now,
        };
        // Output left over from an earlier drive goes first (this is a writable event).
        if self.flush(ctx).is_err() {
            return self.broken(ctx);
        }
        // A stream whose turn ended there waits for its next: one turn per drive.
        while !self.out.yielded() {
            self.process(ctx);
            // `process` stops parsing at the high-water mark. If the flush then makes
            // room without blocking, no writable event will come to resume it: parse on
            // now, or pipelined requests would wait for an event that never comes.
            let throttled = self.output_full();
            if self.flush(ctx).is_err() {
                return self.broken(ctx);
            }
            let stalled = self.output_full();
            if throttled && !stalled {
                continue;
            }
            // A lingering close reads no further than its cap: a client sending at full
            // speed kept every full read `readable` and was read well past it.
            let lingered =
                matches!(self.phase, Phase::Lingering { drained, cap, .. } if drained > cap);
            if !self.readable || stalled || lingered || matches!(self.phase, Phase::Closing) {
                break;
            }
            if self.read_once(scratch, ctx.now).is_err() {
                return self.broken(ctx);
            }
        }
        self.log_written(ctx, self.out.written());
        let verdict = self.settle(ctx);
        if verdict == Verdict::Close && self.eof {
            self.left_midway(ctx);
        }
        verdict
    }

    /// The connection broke (a read or a write failed): closed, with the request in
    /// progress, if any, logged as one its client left.
    fn broken(&mut self, ctx: &mut Ctx) -> Verdict {
        self.left_midway(ctx);
        Verdict::Close
    }

    /// A client that left (or reset the connection) in the middle of a request, its head
    /// or body part-sent, is counted and logged as one that left before a worker reached
    /// its request (`abandon`): 499, nginx's "client closed request", nothing sent, its
    /// duration running from the head's first byte. An upload that a client or a proxy
    /// gave up on left no trace. One that leaves between requests is not a request.
    fn left_midway(&mut self, ctx: &mut Ctx) {
        if !self.mid_request() {
            return;
        }
        ctx.slot.abandon_request();
        let line = (ctx.access.as_ref())
            .map(|log| self.refusal_line(log, &Response::new(CLIENT_CLOSED), ctx.now));
        // Written at the close, after the lines of answers queued before it.
        self.hold(line, self.out.queued_end());
        self.phase = Phase::Closing;
    }

    /// Whether a request is in progress: its head begun (more than empty lines) or its
    /// body being read.
    fn mid_request(&self) -> bool {
        match self.phase {
            Phase::Head { first_byte } => first_byte.is_some(),
            Phase::Body { .. } => true,
            Phase::Closing | Phase::Lingering { .. } => false,
        }
    }

    /// Writes the held access-log lines of answers that end within the first `upto`
    /// bytes of output ([`Conn::close`] passes them all).
    fn log_written(&mut self, ctx: &mut Ctx, upto: u64) {
        if ctx.access.is_none() {
            return;
        }
        ctx.reopen_logs_if_asked();
        let Some(log) = ctx.access.as_mut() else {
            return;
        };
        let written = self.out.written();
        while self.lines.front().is_some_and(|line| line.end <= upto) {
            if let Some(line) = self.lines.pop_front() {
                log.finish(&line.pending, line.body_sent(written), ctx.now);
            }
        }
    }

    /// One `read`. A short read means the socket is drained (TCP fills the buffer when it
    /// can), which saves the extra `read` that would only return WouldBlock. Not once the
    /// peer closed: its FIN may have come in the same edge-triggered event as the data,
    /// and no further event would report it.
    fn read_once(&mut self, scratch: &mut [u8], now: Instant) -> io::Result<()> {
        match self.stream.read(scratch) {
            Ok(0) => {
                self.eof = true;
                self.readable = false;
            }
            Ok(n) => {
                self.readable = n == scratch.len() || self.peer_closed;
                self.last_progress = now;
                self.received += n as u64;
                match &mut self.phase {
                    Phase::Lingering { drained, .. } => *drained += n,
                    _ => self.input.extend_from_slice(&scratch[..n]),
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.readable = false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// No request is parsed while this holds: the output waiting for the client is large
    /// (a client that pipelines without reading cannot make us buffer forever), or a
    /// stream, whose answer's end is not known yet, is being sent.
    fn output_full(&self) -> bool {
        self.out.pending() > OUTPUT_HIGH_WATER || self.out.streaming()
    }

    #[inline]
    fn flush(&mut self, ctx: &mut Ctx) -> io::Result<()> {
        if self.out.is_settled() {
            return Ok(());
        }
        let mut progressed = false;
        let result = self.out.flush(&mut self.stream, &mut progressed);
        if self.out.read_stream() {
            // The application's reads took their time: deadlines count from now.
            ctx.set_now(Instant::now());
        }
        if self.out.close_delimited_sent() {
            self.stream.close_normally();
        }
        let now = ctx.now;
        if let Some(end) = self.out.take_stream_end() {
            // The stream's answer ends where its last byte was queued.
            let open = self.lines.iter_mut().find(|line| line.end == STREAM_OPEN);
            if let Some(line) = open {
                line.end = end;
            }
        }
        if progressed {
            self.last_progress = now;
            self.last_written = now;
        }
        result.map(drop)
    }

    /// Parses and answers every complete request in the input buffer, in order.
    fn process(&mut self, ctx: &mut Ctx) {
        if self.awaiting_proxy_header && !self.take_proxy_header(ctx) {
            return;
        }
        let mut consumed = 0;
        // Pipelined requests too wait for no drain that has run out of time.
        while !self.output_full() && !ctx.out_of_time() {
            let used = match self.phase {
                Phase::Head { .. } => self.next_head(consumed, ctx),
                Phase::Body { .. } => self.feed_body(consumed, ctx),
                Phase::Closing | Phase::Lingering { .. } => None,
            };
            match used {
                Some(n) => consumed += n,
                None => break,
            }
        }
        self.input.drain(..consumed.min(self.input.len()));
        // A large head (800 KiB within the limits) grew the buffer: its memory goes back
        // once the head is consumed, or a kept-alive connection would hold it, outside
        // the input budget, for as long as it lives.
        if self.input.capacity() > INPUT_KEEP && self.input.len() <= INPUT_KEEP {
            self.input.shrink_to(INPUT_KEEP);
        }
    }

    /// `--proxy-protocol`: takes the PROXY header the balancer sent ahead of the first
    /// request ([`Conn::strip_proxy_header`]). False while the header is incomplete, and
    /// when it is refused: a connection that does not begin with one is answered 400 and
    /// closed, since a request read from it would be the client's word for its own
    /// address, or a header cut short; one from a peer `--proxy-allow-from` does not list
    /// is answered 403 (gunicorn's ForbiddenProxyRequest).
    fn take_proxy_header(&mut self, ctx: &mut Ctx) -> bool {
        match self.strip_proxy_header() {
            Ok(taken) => taken,
            Err(err) => {
                self.awaiting_proxy_header = false;
                // Said at most once a second: a balancer left without `send-proxy` has
                // every connection refused, and the access log counts them. Peers
                // refused with 403 have their own second, so that a stream of 400s
                // (probes without a header) cannot hide them.
                static LAST: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
                let last = &LAST[usize::from(err.status() == 403)];
                if crate::logging::once_a_second(last) {
                    let peer = peer_name(self.peer);
                    log::warn!(
                        "{peer}: {} (--proxy-protocol); answering {}",
                        err.message(),
                        err.status()
                    );
                }
                self.refuse_head(0, Response::error(&err), ctx);
                false
            }
        }
    }

    /// Removes a whole PROXY header from the input, and takes the client's address and
    /// the one it connected to from it: true once done, false while it is incomplete.
    fn strip_proxy_header(&mut self) -> Result<bool, HttpError> {
        if !self.proxy_sender {
            return match self.input.is_empty() {
                true => Ok(false),
                false => Err(PROXY_SENDER_NOT_ALLOWED),
            };
        }
        match parse_proxy_header(&self.input)? {
            ProxyHeader::Partial => Ok(false),
            ProxyHeader::Complete { len, ends } => {
                self.input.drain(..len);
                if let Some(ends) = ends {
                    (self.peer, self.local) = (Some(ends.source), Some(ends.destination));
                }
                self.awaiting_proxy_header = false;
                Ok(true)
            }
        }
    }

    /// A request with what the connection knows of where it came from and through whom.
    fn arrived(&mut self, request: Request) -> Request {
        let local = self.local_addr();
        request
            .with_local_addr(local)
            .with_trusted_proxy(self.trusted)
    }

    /// The address the client connected to, asked of the socket once when neither the
    /// listener's bind nor a PROXY header gave it (a wildcard bind): one getsockname a
    /// connection, and none on a listener bound to one address.
    fn local_addr(&mut self) -> Option<SocketAddr> {
        if self.local.is_none() {
            self.local = self.stream.local_addr();
        }
        self.local
    }

    /// Parses a head from `start`; returns its length, or `None` when there is none yet.
    fn next_head(&mut self, start: usize, ctx: &mut Ctx) -> Option<usize> {
        if start >= self.input.len() {
            return None;
        }
        // Empty lines do not begin a request: a connection holding only those is idle,
        // closed quietly at its keep-alive time, not answered 408 for a request never sent.
        if let Phase::Head { first_byte } = &mut self.phase {
            if !after_blank_lines(&self.input[start..]).is_empty() {
                first_byte.get_or_insert(ctx.now);
            }
        }
        // A Content-Length over the body limit is judged in `begin_body`, after the
        // application's `before_body`: a refused method's 405 comes first.
        let limits = Limits {
            max_body: u64::MAX,
            ..ctx.limits
        };
        let parsed = parse_head_into(&self.input[start..], &limits, &mut self.head_buffers);
        if !matches!(parsed, Ok(None)) {
            self.release(ctx);
        }
        match parsed {
            Ok(None) if self.hold_head(self.input.len() - start, ctx) => None,
            Ok(None) => {
                self.refuse_head(start, no_room(), ctx);
                None
            }
            // Most requests have no body: answered at once, without parking the head in
            // `Phase::Body` only to take it out again.
            Ok(Some(head)) if matches!(head.framing(), BodyFraming::Empty) => {
                let len = head.len();
                self.phase = Phase::Head { first_byte: None };
                let last = start + len == self.input.len();
                let request = self.arrived(Request::new(head, Vec::new(), self.peer));
                self.respond(request, last, ctx);
                Some(len)
            }
            Ok(Some(head)) => Some(self.begin_body(head, start, ctx)),
            Err(err) => {
                self.refuse_head(start, Response::error(&err), ctx);
                log::debug!(
                    "closing {}: {} {}",
                    peer_name(self.peer),
                    err.status(),
                    err.message()
                );
                None
            }
        }
    }

    /// Takes what a head in progress holds beyond [`HEAD_ALLOWANCE`] (`held` bytes in
    /// all) from the [`InputBudget`]; false when it does not fit.
    fn hold_head(&mut self, held: usize, ctx: &mut Ctx) -> bool {
        let want = (held as u64).saturating_sub(HEAD_ALLOWANCE);
        let more = want.saturating_sub(self.reserved);
        let fits = ctx.budget.take(more);
        if fits {
            self.reserved += more;
        }
        fits
    }

    /// Answers the head from `start`, which will not be read whole, and closes.
    fn refuse_head(&mut self, start: usize, response: Response, ctx: &mut Ctx) {
        let head_request = starts_as_head(&self.input[start..]);
        // What came before is answered; the refused head is what the log shows.
        self.input.drain(..start);
        self.fail(response, head_request, ctx);
    }

    /// A head is complete: lets the application answer before the body is read
    /// ([`Handler::before_body`]), or decides how to read the body, answers `100 Continue`
    /// when the client waits for it (RFC 9110 §10.1.1); returns the head's length.
    fn begin_body(&mut self, head: RequestHead, start: usize, ctx: &mut Ctx) -> usize {
        let len = head.len();
        // The address the request will carry (`Request::new` is given the same), so that
        // `before_body` can judge the client: after a PROXY header, the one it names.
        let head = head.with_peer_addr(self.peer);
        let early = match server_answers(&head, ctx) {
            true => None,
            false => call_before_body(ctx.handler.as_mut(), &head, ctx.now),
        };
        if early.is_some() {
            // The application's answer, counted as one from `handle` is (the metrics,
            // `--max-requests`), though the worker was not marked busy while it ran.
            ctx.slot.begin_request(&request_line(&head), ctx.now_ms);
            ctx.answered();
        }
        let too_large = matches!(head.framing(), BodyFraming::Length(n) if n > ctx.limits.max_body);
        if too_large && early.is_none() {
            ctx.slot.count_refusal();
        }
        let early = early.or_else(|| too_large.then(|| Response::error(&CONTENT_TOO_LARGE)));
        if let Some(response) = early {
            let buffered = (self.input.len() - start - len) as u64;
            self.refused_body = match head.framing() {
                BodyFraming::Length(n) => n.saturating_sub(buffered),
                // Its length unknown, a chunked body is taken in as far as an announced
                // one would be: closing at LINGER_BYTES reset a client still sending it.
                BodyFraming::Chunked => LINGER_BODY,
                BodyFraming::Empty => 0,
            };
            self.answer_unread(head, response, ctx);
            return len;
        }
        let framing = match head.framing() {
            BodyFraming::Empty => BodyDecoder::Length(0),
            BodyFraming::Length(n) => BodyDecoder::Length(n),
            BodyFraming::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
        };
        let buffered = (self.input.len() - start - len) as u64;
        let waiting = match &framing {
            BodyDecoder::Length(n) => buffered < *n,
            BodyDecoder::Chunked(_) => true,
        };
        if head.expects_continue() && waiting {
            self.out.tail_buf().extend_from_slice(CONTINUE_100);
            self.out.appended(CONTINUE_100.len());
        }
        let began = self.request_began().unwrap_or(ctx.now);
        self.phase = Phase::Body {
            head,
            body: Vec::new(),
            spool: None,
            framing,
            began,
        };
        self.head_end = self.received.saturating_sub(buffered);
        len
    }

    /// Moves body bytes from the input buffer (from `start`) into the body. Returns how
    /// many input bytes it used, or `None` when it needs more input.
    fn feed_body(&mut self, start: usize, ctx: &mut Ctx) -> Option<usize> {
        let head_request = matches!(&self.phase, Phase::Body { head, .. } if head.is_head());
        let Phase::Body {
            body,
            spool,
            framing,
            ..
        } = &mut self.phase
        else {
            return None;
        };
        let before = body.len();
        let step = decode_body(framing, &self.input[start..], body, &ctx.limits);
        // What arrived is taken from the worker's budget as it arrives, so a client
        // pays for what it holds with bytes it sent, not with a length it announced.
        let grown = (body.len() - before) as u64;
        let step = match ctx.budget.take(grown) {
            true => {
                self.reserved += grown;
                step
            }
            false => step.and(Err(no_room())),
        };
        // Past the spool size, what is written to disk is memory given back.
        let step = step.and_then(|progress| {
            let spilled = spill(body, spool, &ctx.spooling)?;
            ctx.budget.give_back(spilled);
            self.reserved -= spilled;
            Ok(progress)
        });
        let (used, done) = match step {
            Ok(progress) => progress,
            Err(refusal) => {
                // A body refused on its way (a chunked one over the limit, no room in the
                // input budget or on the spool's disk): the lingering close takes in as
                // much as it would of an announced one, for a client that sends all of it
                // before it reads. A malformed one (400) has no end to find.
                if refusal.status() != 400 {
                    self.refused_body = LINGER_BODY;
                }
                self.fail(refusal, head_request, ctx);
                return None;
            }
        };
        if done {
            self.dispatch(start + used == self.input.len(), ctx);
            return Some(used);
        }
        // Bytes a decoder left unconsumed are a partial line it will see again.
        (used > 0).then_some(used)
    }

    /// The body is complete: the request is answered. `last`: nothing is buffered
    /// after it.
    fn dispatch(&mut self, last: bool, ctx: &mut Ctx) {
        self.release(ctx);
        // A spooled body is mapped first, so that a failure is refused as this request.
        let mapped = match &mut self.phase {
            Phase::Body { spool, .. } => spool.take().map(Spool::finish).transpose(),
            _ => Ok(None),
        };
        let mapped = match mapped {
            Ok(mapped) => mapped,
            Err(err) => {
                let head_request =
                    matches!(&self.phase, Phase::Body { head, .. } if head.is_head());
                return self.fail(spool_failed(&ctx.spooling, &err), head_request, ctx);
            }
        };
        let phase = std::mem::replace(&mut self.phase, Phase::Head { first_byte: None });
        if let Phase::Body { head, body, .. } = phase {
            let request = match mapped {
                Some(mapped) => Request::spooled(head, mapped, self.peer),
                None => Request::new(head, body, self.peer),
            };
            let request = self.arrived(request);
            self.respond(request, last, ctx);
        }
    }

    /// Runs the handler on a complete request and queues its response. `last`: no
    /// pipelined request is buffered after it.
    fn respond(&mut self, request: Request, last: bool, ctx: &mut Ctx) {
        if !self.send_earlier_answers(ctx) {
            return;
        }
        if ctx.check_client && self.client_gone() {
            self.abandon(request, ctx);
            return;
        }
        let overdue = self.overdue(ctx);
        let moved = last && self.waited_behind_others(ctx);
        self.newcomer_seen_at = Some(ctx.newcomer_served_at);
        let head = request.head();
        let (version, head_request, wants) = (head.version(), head.is_head(), head.keep_alive());
        ctx.slot.begin_request(&request_line(head), ctx.now_ms);
        let started = ctx.access.is_some().then(|| (SystemTime::now(), ctx.now));
        let mut ahead = None;
        let response = match overdue {
            true => shed(ctx),
            false => self.run(&request, head_request, ctx, &mut ahead),
        };
        if ahead.is_some() {
            self.read_ahead = ahead;
        }
        ctx.answered();
        let (line, answering) = records(&request, &response, started, ctx);
        self.head_buffers = request.into_head().into_buffers();
        // A request that waited past --queue-timeout is moved off too, perhaps to a less
        // busy server.
        let keep_alive = wants
            && self.worker_keeps(last, ctx)
            && !overdue
            && !moved
            && !response.closes_connection()
            && !ended_by_close(
                response.status(),
                &response,
                &closing_meta(version, head_request),
            );
        let meta = ResponseMeta {
            version,
            keep_alive,
            head_request,
        };
        self.send(response, &meta, line, answering, ctx);
    }

    /// Queues an application's answer with its access-log line, naming the request a
    /// stream answers for the log; the connection closes after it unless kept alive.
    fn send(
        &mut self,
        response: Response,
        meta: &ResponseMeta,
        line: Option<Pending>,
        answering: Option<String>,
        ctx: &mut Ctx,
    ) {
        if self.out.is_empty() {
            self.last_written = ctx.now;
        }
        self.queue(response, meta, ctx.date.get_at_instant(ctx.now), line);
        if let Some(answering) = answering {
            self.out.label_stream(answering);
        }
        self.reused = true;
        self.last_progress = ctx.now;
        if !meta.keep_alive {
            self.phase = Phase::Closing;
        }
    }

    /// Answers a request, armed for a SIGABRT meanwhile (a `--timeout` kill) to answer
    /// it 500 instead ([`abort_answer`]), unless earlier answers still wait unsent
    /// ahead of it; a stream's first read is made then too ([`first_read`]).
    fn run(
        &self,
        request: &Request,
        head_request: bool,
        ctx: &mut Ctx,
        ahead: &mut Option<Vec<u8>>,
    ) -> Response {
        let _armed = self
            .out
            .is_empty()
            .then(|| abort_answer::arm(self.stream.fd(), head_request));
        let response = dispatch(ctx, request);
        // Tested here, so that the usual answer is not moved through another call.
        match response.body() {
            Body::Stream(_) => first_read(response, request, ahead),
            _ => response,
        }
    }

    /// Writes the answers to earlier pipelined requests before the next one runs when
    /// the last of them was slow ([`SLOW_ANSWER`]): three pipelined 300 ms requests were
    /// all answered at 0.9 s, and a worker killed in a later one (`--timeout`) lost
    /// answers already made and counted, unsent and unlogged. Answers made in
    /// microseconds still go out together, in one `write`: one each, as nginx writes
    /// them, made 16-deep pipelining (wrk) nine times as costly per request. An answer
    /// still waits for a slow request right behind it, the one case this leaves. False
    /// when the connection broke: the request is dropped.
    fn send_earlier_answers(&mut self, ctx: &mut Ctx) -> bool {
        if self.out.is_empty() || !ctx.slow_answer {
            return true;
        }
        if self.flush(ctx).is_err() {
            self.phase = Phase::Closing;
            return false;
        }
        self.log_written(ctx, self.out.written());
        true
    }

    /// Whether the worker lets an answer keep its connection. Judged after the application
    /// ran, which may have taken seconds. `--keep-alive 0` is keep-alive off, as
    /// gunicorn's `keepalive = 0` and nginx's `keepalive_timeout 0`. A stop closes
    /// connections, but only after the requests the client has already sent (`last`: none
    /// is buffered after this one; the kernel is asked too): a close before them would
    /// lose them, and "keep-alive clients lose nothing" is the promise of a drain.
    fn worker_keeps(&self, last: bool, ctx: &Ctx) -> bool {
        if ctx.timeouts.keep_alive.is_zero() {
            return false;
        }
        !ctx.stopping() || !last || self.input_waiting()
    }

    /// Whether this request waited [`MOVE_AFTER`] behind other connections' requests
    /// while another worker is idle, or behind newcomers from the accept queue, and its
    /// client sent nothing more that a close would cut off: it is answered with
    /// `Connection: close`, and its next request comes through the accept queue, to a
    /// free worker or in its turn. (Kept-alive connections stay with the worker that
    /// accepted them, so clients of a busy worker would otherwise wait behind it, request
    /// after request, beside an idle one; and, as new and kept connections take turns, a
    /// fast kept request waited behind one slow newcomer per kept connection ahead of it:
    /// 20 s where arrival order gave 4 in a probe's mixed load.)
    fn waited_behind_others(&self, ctx: &Ctx) -> bool {
        let turn_waited = ctx.turn_began.saturating_duration_since(ctx.polled_at) >= MOVE_AFTER;
        let moved_on = || !self.input_waiting();
        if turn_waited && Slot::another_is_idle(ctx.board, ctx.slot) {
            return moved_on();
        }
        // Newcomers were served since this kept connection's last answer: the kernel says
        // when this request arrived (a Unix socket does not: by the poll that reported
        // it), and whether one was answered while it had waited 20 ms. Asked only then, so a
        // kept-alive load with no newcomers pays no system call. (A newcomer's own first
        // request came through the queue in its turn already.)
        if self
            .newcomer_seen_at
            .is_none_or(|seen| seen == ctx.newcomer_served_at)
        {
            return false;
        }
        let arrived = match self.stream.since_data_received() {
            Some(waited) if waited >= MOVE_AFTER => ctx.now.checked_sub(waited),
            Some(_) => None,
            None => turn_waited.then_some(ctx.polled_at),
        };
        // A newcomer answered at least MOVE_AFTER after this request arrived: the kernel
        // keeps that time in jiffies, so a request that came just after a newcomer's
        // answer could otherwise seem to have come just before it.
        arrived.is_some_and(|at| ctx.newcomer_served_at > at + MOVE_AFTER) && moved_on()
    }

    /// Whether the client has shut down its side: known already from a read or an
    /// event, or else asked of the kernel, since it may have left while this request
    /// waited behind a slow one.
    fn client_gone(&self) -> bool {
        self.eof || self.peer_closed || self.stream.peer_closed()
    }

    /// `--queue-timeout`: whether this request has waited longer than that since its last
    /// bytes arrived (the kernel's count: in the listener's queue, then behind other
    /// requests here), too long to be worth running.
    fn overdue(&self, ctx: &Ctx) -> bool {
        let waited = |limit| self.stream.since_data_received().is_some_and(|w| w > limit);
        ctx.queue_timeout.is_some_and(waited)
    }

    /// `--check-client-connection` found the client gone, as one that timed out while
    /// queued is: the application is not called and nothing is sent for this request or
    /// any after it. The access log says 499, nginx's "client closed request"; answers
    /// queued before it still go out, then the connection closes.
    fn abandon(&mut self, request: Request, ctx: &mut Ctx) {
        ctx.slot.abandon_request();
        log::debug!(
            "skipped {} {}: {} closed the connection first",
            request.method(),
            request.target(),
            peer_name(self.peer)
        );
        if let Some(log) = ctx.access.as_ref() {
            let started = (SystemTime::now(), ctx.now);
            let line = line_for(log, &request, &Response::new(CLIENT_CLOSED), started);
            // Logged after the answers queued before it, in the order of the requests.
            self.hold(Some(line), self.out.queued_end());
        }
        self.input.clear();
        self.eof = true;
        self.phase = Phase::Closing;
    }

    /// Answers a request the application refused before its body was read: logged as
    /// any answer is, then the connection closes, lingering, as after an error, since the
    /// unread body is still to come.
    fn answer_unread(&mut self, head: RequestHead, response: Response, ctx: &mut Ctx) {
        // The request's own version: a stream's framing depends on it.
        let meta = closing_meta(head.version(), head.is_head());
        let line = ctx.access.as_ref().map(|log| {
            let request = Request::new(head, Vec::new(), self.peer);
            line_for(log, &request, &response, (SystemTime::now(), ctx.now))
        });
        self.answer_and_close(response, &meta, ctx, line);
    }

    /// Answers with an error and stops reading requests from this connection; it will
    /// close lingering, since whatever the client sends next is unread input.
    /// `head_request`: the failed request is a HEAD, whose answer never has a body, not
    /// even an error text (RFC 9110 §9.3.2).
    fn fail(&mut self, response: Response, head_request: bool, ctx: &mut Ctx) {
        ctx.slot.count_refusal();
        let line = ctx
            .access
            .as_ref()
            .map(|log| self.refusal_line(log, &response, ctx.now));
        let meta = closing_meta(Version::Http11, head_request);
        self.answer_and_close(response, &meta, ctx, line);
    }

    /// Queues a last answer, with `Connection: close`, and reads no request after it. The
    /// body or head in progress is dropped here, so its share of the [`InputBudget`] goes
    /// back now: held through the lingering close (up to 30 s), a few refused uploads
    /// left no room for any other.
    fn answer_and_close(
        &mut self,
        response: Response,
        meta: &ResponseMeta,
        ctx: &mut Ctx,
        line: Option<Pending>,
    ) {
        self.queue(response, meta, ctx.date.get_at_instant(ctx.now), line);
        self.input.clear();
        self.phase = Phase::Closing;
        self.release(ctx);
        self.failed = true;
    }

    /// The access log's line for a request refused before it reached the application
    /// (400, 408, 413, 414, 431, 501, 505), as nginx logs them: its request line as far
    /// as it was read, `-` for what was not. Its duration runs from the head's first
    /// byte, as a request's runs from its arrival: a 408 took its client the whole
    /// `--header-timeout`, or the body's wait of `--body-timeout`.
    fn refusal_line(&self, log: &AccessLog, response: &Response, now: Instant) -> Pending {
        let head = match &self.phase {
            Phase::Body { head, .. } => Some(head),
            _ => None,
        };
        let (method, target, version) = match head {
            Some(head) => {
                let version = head.version().as_str().as_bytes();
                (head.method().as_bytes(), head.target().as_bytes(), version)
            }
            None => line_parts(first_line(&self.input)),
        };
        let header = |name: &str| match head {
            Some(head) => joined_field(lines_named(head.headers(), name)),
            None => joined_field(raw_fields(&self.input, name)),
        };
        let began = self.request_began().unwrap_or(now);
        let ago = now.saturating_duration_since(began);
        let entry = Entry {
            peer: self.peer,
            method,
            target,
            version,
            header: &header,
            response_header: &|name| response.sent_header(name),
            status: response.status(),
            body_bytes: response.body_len(),
            started: SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH),
            elapsed: Duration::ZERO,
        };
        log.hold(&entry, began)
    }

    /// When the request being received began: its head's first byte.
    fn request_began(&self) -> Option<Instant> {
        match self.phase {
            Phase::Head { first_byte } => first_byte,
            Phase::Body { began, .. } => Some(began),
            Phase::Closing | Phase::Lingering { .. } => None,
        }
    }

    /// Queues an answer, and holds its access-log line (if any) until it is written.
    fn queue(
        &mut self,
        response: Response,
        meta: &ResponseMeta,
        date: &[u8],
        line: Option<Pending>,
    ) {
        // A large answer may still sit in the kernel when its last byte is written, so
        // the first idle deadline after it cannot tell a client that has just taken the
        // last byte from one idle since: "unknown" grants it one more period.
        // (The body that is sent: a HEAD's answer has none, whatever its length.)
        let sent = body_allowed(response.status(), meta.head_request);
        let large = response.body_len() >= LARGE_ANSWER || is_stream(response.body());
        self.unsent_seen = match sent && large {
            true => u32::MAX,
            false => 0,
        };
        let buf = self.out.tail_buf();
        let before = buf.len();
        write_head(buf, &response, meta, date);
        let n = buf.len() - before;
        self.out.appended(n);
        let body_start = self.out.queued_end();
        match sent {
            true => self.queue_body(response, meta),
            // A HEAD's, 204's or 304's stream is dropped unread, its Drop guarded.
            false if is_stream(response.body()) => drop_guarded(response),
            false => {}
        }
        self.hold(line, body_start);
    }

    fn queue_body(&mut self, response: Response, meta: &ResponseMeta) {
        let end = stream_end(response.status(), &response, meta);
        match response.into_body() {
            Body::Empty => {}
            Body::Bytes(bytes) => self.out.push_bytes(bytes),
            Body::Static(bytes) => self.out.push_static(bytes),
            Body::File { file, offset, len } => {
                if let Err(err) = self.out.push_file(file, offset, len) {
                    // The head is queued; without its body the only honest end is a close.
                    // Said at most once a second: a deploy rewriting files in place under
                    // load would otherwise log one a request.
                    static LAST: AtomicU64 = AtomicU64::new(0);
                    if crate::logging::once_a_second(&LAST) {
                        log::warn!("cannot read the file for a response: {err}; closing");
                    }
                    self.phase = Phase::Closing;
                }
            }
            Body::Stream(reader) => {
                let end = end.unwrap_or(StreamEnd::Close);
                if end == StreamEnd::Close {
                    // Until it is all written, any close is a reset, the process's end
                    // (a --timeout kill, a drain's SIGABRT) included.
                    self.stream.reset_on_close();
                }
                self.out.push_stream(reader, end, self.read_ahead.take())
            }
        }
    }

    /// Holds an answer's line until the output stream has gone out as far as all that
    /// is queued now; its body begins at `body_start`. A stream's end is not known until
    /// it is read to the end ([`Conn::flush`] learns it then).
    fn hold(&mut self, line: Option<Pending>, body_start: u64) {
        if let Some(pending) = line {
            let end = match self.out.streaming() {
                true => STREAM_OPEN,
                false => self.out.queued_end(),
            };
            self.lines.push_back(HeldLine {
                pending,
                body_start,
                end,
            });
        }
    }

    /// After a drive: decides whether the connection lives on.
    fn settle(&mut self, ctx: &Ctx) -> Verdict {
        match self.phase {
            Phase::Lingering { drained, cap, .. } if self.eof || drained > cap => Verdict::Close,
            Phase::Lingering { .. } => Verdict::Keep,
            _ if !self.out.is_empty() => Verdict::Keep,
            Phase::Closing => self.start_linger(ctx.now),
            _ if self.eof => Verdict::Close,
            _ => Verdict::Keep,
        }
    }

    /// RFC 9112 §9.6: closing with unread input makes the kernel send RST, which can
    /// destroy the response before the client reads it. So after an error, or when more
    /// input is buffered or arriving, half-close and drain first. A plain
    /// `Connection: close` exchange with nothing more sent closes at once. "Arriving"
    /// is asked of the kernel: bytes that came while the handler ran have raised no
    /// event yet, and a client may pipeline behind a request we chose to close after.
    fn start_linger(&mut self, now: Instant) -> Verdict {
        let quiet = || self.input.is_empty() && !self.input_waiting();
        if self.eof || (!self.failed && quiet()) {
            return Verdict::Close;
        }
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return Verdict::Close;
        }
        self.input = Vec::new();
        self.last_progress = now;
        let body = self.refused_body.min(LINGER_BODY) as usize;
        self.phase = Phase::Lingering {
            since: now,
            drained: 0,
            cap: LINGER_BYTES.max(body),
        };
        self.readable = true;
        Verdict::Keep
    }

    /// When this connection's current wait runs out. While answers wait for the client
    /// to take them, `--write-timeout` runs from the last write that made progress
    /// (reads do not move it), and a head begun meanwhile is still due whole within
    /// `--header-timeout`: a client that sent a byte a second and read nothing held its
    /// connection forever.
    pub fn deadline(&self, t: &Timeouts) -> Instant {
        let writing = self.last_written + t.write_stall;
        match &self.phase {
            Phase::Lingering { since, .. } => (self.last_progress + LINGER).min(*since + t.linger),
            Phase::Head {
                first_byte: Some(first),
            } if !self.out.is_empty() => writing.min(*first + t.head),
            _ if !self.out.is_empty() => writing,
            Phase::Head {
                first_byte: Some(first),
            } => *first + t.head,
            Phase::Head { first_byte: None } if self.reused => self.last_progress + t.keep_alive,
            // Blank lines do not begin a request, nor put off its deadline: a blank line
            // every 9 s held a place for as long as the client liked.
            Phase::Head { first_byte: None } => self.accepted + t.first_byte,
            Phase::Body { .. } => self.last_progress + t.body_stall,
            Phase::Closing => writing,
        }
    }

    /// Whether an idle connection's client is still reading its last response, which the
    /// kernel holds after the last `write` (megabytes of a file, over a slow link): if the
    /// kernel's unsent bytes changed since the last deadline, the keep-alive time starts
    /// over from now, or the client's next request would meet a closed connection. A
    /// client that takes nothing for a whole period is closed as any idle one.
    fn still_reading(&mut self, now: Instant) -> bool {
        let unsent = self.stream.unsent();
        let reading = unsent != self.unsent_seen;
        self.unsent_seen = unsent;
        if reading {
            self.last_progress = now;
        }
        reading
    }

    /// A drain's time is up and this connection's request will not run: a client that
    /// has sent one (whole or in part) and has no answer yet gets 503 with
    /// `Retry-After` and `Connection: close`, and its access-log line. A reset told it
    /// nothing, and a client cannot know whether a POST it sent ran; a 503 says it did
    /// not, so it may be sent again, to another server. True when answered so; an idle
    /// connection, or one whose answer is still going out, is left as it is.
    pub fn refuse_unserved(&mut self, scratch: &mut [u8], ctx: &mut Ctx) -> bool {
        // The request may still be in the kernel: taken from the queue, never read.
        let unread = self.input_waiting();
        if !self.out.is_empty() || (unread && self.read_once(scratch, ctx.now).is_err()) {
            return false;
        }
        // Its request comes after the balancer's header, and is the named client's: one
        // whose header is not whole (or not one) has begun no request.
        if self.awaiting_proxy_header && !matches!(self.strip_proxy_header(), Ok(true)) {
            return false;
        }
        let head_request = match &self.phase {
            Phase::Head { .. } if after_blank_lines(&self.input).is_empty() => return false,
            Phase::Head { .. } => starts_as_head(&self.input),
            Phase::Body { head, .. } => head.is_head(),
            Phase::Closing | Phase::Lingering { .. } => return false,
        };
        let stopping = Response::text(503, "503 Service Unavailable: the server is stopping\n");
        self.fail(stopping.with_header("Retry-After", "1"), head_request, ctx);
        let _ = self.flush(ctx);
        true
    }

    /// The deadline passed: a client in the middle of a request gets 408 (RFC 9110
    /// §15.5.9); an idle or stalled one is simply closed.
    pub fn expire(&mut self, ctx: &mut Ctx) -> Verdict {
        let mid_request = self.mid_request();
        let idle = matches!(self.phase, Phase::Head { first_byte: None }) && self.out.is_empty();
        // A request sent as the idle time ran out, while a handler ran, is served at the
        // next poll: closed with it unread, the client got a reset (a proxy, a 502 for a
        // POST it cannot retry), and the sweep comes up to a handler's time late.
        if idle && (self.still_reading(ctx.now) || self.input_waiting()) {
            return Verdict::Keep;
        }
        // A body cannot come before its client has read the `100 Continue` it waits for
        // (RFC 9110 §10.1.1), behind an answer it is still taking from the kernel: its
        // time starts over while the client reads, as an idle connection's does (the
        // last look counting the kernel's last bytes taken). Its 408 went out right
        // behind the 100, before the client could send a byte.
        if self.out.is_empty() && self.owes_continue() && self.still_reading(ctx.now) {
            return Verdict::Keep;
        }
        if !mid_request || !self.out.is_empty() {
            return Verdict::Close;
        }
        let head_request = match &self.phase {
            Phase::Body { head, .. } => head.is_head(),
            _ => starts_as_head(&self.input),
        };
        self.fail(
            Response::text(408, "408 Request Timeout\n"),
            head_request,
            ctx,
        );
        if self.flush(ctx).is_err() {
            return Verdict::Close;
        }
        self.log_written(ctx, self.out.written());
        self.settle(ctx)
    }
}

/// A request's line, for the scoreboard, as the parts it is joined from.
fn request_line(head: &RequestHead) -> [&[u8]; 5] {
    [
        head.method().as_bytes(),
        b" ",
        head.target().as_bytes(),
        b" ",
        head.version().as_str().as_bytes(),
    ]
}

/// The access-log line of an answer (when there is a log and its clock was read), and
/// for a stream the request it answers, which the log names should the stream fail after
/// its head went out.
fn records(
    request: &Request,
    response: &Response,
    started: Option<(SystemTime, Instant)>,
    ctx: &Ctx,
) -> (Option<Pending>, Option<String>) {
    let line = match (ctx.access.as_ref(), started) {
        (Some(log), Some(started)) => Some(line_for(log, request, response, started)),
        _ => None,
    };
    let answering = is_stream(response.body()).then(|| stream_label(request));
    (line, answering)
}

/// How the log and the scoreboard name the request a stream answers, at every read.
fn stream_label(request: &Request) -> String {
    let (method, target) = (request.method(), request.target());
    format!("{method} {target} {}", request.version().as_str())
}

/// The access-log line of a request, held until its answer is written: the answer's
/// body bytes are counted as they go out (none to HEAD, nor with 1xx, 204 or 304).
fn line_for(
    log: &AccessLog,
    req: &Request,
    resp: &Response,
    started: (SystemTime, Instant),
) -> Pending {
    let header = |name: &str| joined_field(lines_named(req.headers(), name));
    let entry = Entry {
        peer: req.peer_addr(),
        method: req.method().as_bytes(),
        target: req.target().as_bytes(),
        version: req.version().as_str().as_bytes(),
        header: &header,
        response_header: &|name| resp.sent_header(name),
        status: resp.status(),
        // A stream's length is known once it is sent: every byte sent counts.
        body_bytes: match is_stream(resp.body()) {
            true => u64::MAX,
            false => resp.body_len(),
        },
        started: started.0,
        elapsed: Duration::ZERO,
    };
    log.hold(&entry, started.1)
}

fn is_stream(body: &Body) -> bool {
    matches!(body, Body::Stream(_))
}

/// The head of a last answer, after which the connection closes.
fn closing_meta(version: Version, head_request: bool) -> ResponseMeta {
    ResponseMeta {
        version,
        keep_alive: false,
        head_request,
    }
}

/// The first line of unparsed input (after the empty lines RFC 9112 §2.2 allows), at most
/// 8 KiB of it, for the log, as sent: the access log escapes what needs it.
fn first_line(input: &[u8]) -> &[u8] {
    let rest = after_blank_lines(input);
    let end = rest.iter().position(|&b| b == b'\r' || b == b'\n');
    &rest[..end.unwrap_or(rest.len()).min(LOGGED_BYTES)]
}

/// The most the access log keeps of a refused request's line or of one of its fields:
/// one refused for its length (414, 431) would otherwise put all that came, up to the
/// read buffer, into one line of the log.
const LOGGED_BYTES: usize = 8192;

/// A refused request line's method, target and version, for the log: split at runs of
/// spaces, so that `GET  / HTTP/1.1` (refused for its two spaces) is not logged with an
/// empty target and a version of `/ HTTP/1.1`; `-` for what did not arrive.
fn line_parts(line: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut rest = line;
    let mut next = |whole: bool| {
        let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
        rest = &rest[start..];
        let end = match whole {
            true => rest.len(),
            false => rest.iter().position(|&b| b == b' ').unwrap_or(rest.len()),
        };
        let (part, tail) = rest.split_at(end);
        rest = tail;
        if part.is_empty() {
            b"-".as_slice()
        } else {
            part
        }
    };
    (next(false), next(false), next(true))
}

/// A field of a head refused before it was parsed whole, for the log's `%({name}i)s`
/// atoms (a proxy's `X-Forwarded-For`, the user agent), as nginx logs the fields it
/// read: the values of the field lines of that name, case-insensitively, up to the
/// empty line or as far as the head came.
fn raw_fields<'a>(input: &'a [u8], name: &str) -> impl Iterator<Item = &'a [u8]> {
    let lines = after_blank_lines(input).split(|&b| b == b'\n').skip(1);
    let lines = lines.map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    lines
        .take_while(|line| !line.is_empty())
        .filter_map(move |line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (field, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default().trim_ascii();
            let kept = value.get(..LOGGED_BYTES).unwrap_or(value);
            field.eq_ignore_ascii_case(name.as_bytes()).then_some(kept)
        })
}

/// The values of the parsed fields called `name` (case-insensitive), in order.
fn lines_named<'a>(
    fields: impl Iterator<Item = (&'a str, &'a [u8])>,
    name: &str,
) -> impl Iterator<Item = &'a [u8]> {
    fields.filter_map(move |(field, value)| field.eq_ignore_ascii_case(name).then_some(value))
}

/// Whether unparsed (or refused) input is a HEAD request, after the empty lines RFC 9112
/// §2.2 lets a client send first: its error answer must not carry a body either.
fn starts_as_head(input: &[u8]) -> bool {
    after_blank_lines(input).starts_with(b"HEAD ")
}

/// Who answers a request: the server itself for `OPTIONS *` and the metrics path, the
/// application for everything else.
fn dispatch(ctx: &mut Ctx, request: &Request) -> Response {
    match (request.method(), request.target()) {
        // RFC 9110 §9.3.7: `OPTIONS *` asks about the server itself, not a resource, so
        // the server answers it whatever the application is: a 200 without Allow, which
        // is a resource's (§10.2.1). The server cannot know which methods the
        // application takes, and a list naming TRACE is what scanners flag.
        ("OPTIONS", "*") => Response::new(200),
        _ => match ctx.metrics.as_ref().filter(|m| m.serves(request.path())) {
            Some(metrics) => metrics.respond(request),
            None => call_handler(ctx.handler.as_mut(), request, ctx.now),
        },
    }
}

/// The answer to a request that waited past `--queue-timeout`: 503 (RFC 9110 §15.6.4),
/// at once, rather than a response its client has probably stopped waiting for, with
/// `Retry-After` as the input budget's 503 has it (a client that still wants the answer
/// comes back once the spike may have passed).
fn shed(ctx: &Ctx) -> Response {
    ctx.slot.shed_request();
    Response::text(
        503,
        "503 Service Unavailable: waited too long for a worker\n",
    )
    .with_header("Retry-After", "1")
}

/// Calls the application, from `began`; a panic becomes a 500 and the worker lives on.
fn call_handler(handler: &mut dyn Handler, request: &Request, began: Instant) -> Response {
    let outcome = catch_unwind(AssertUnwindSafe(|| handler.handle(request)));
    let call = Call {
        when: "on",
        method: request.method(),
        target: request.target(),
        began,
    };
    checked(outcome, &call)
}

/// Makes a stream's first read now, while the request is still the handler's, before
/// its head goes out: a reader that fails at once (a query that errs on its first
/// fetch, a stream short of its Content-Length from the start) is answered 500, as
/// gunicorn answers an iterable that raises before its first item, where the head sent
/// first left the client only a cut answer. What was read is put in `ahead`, to go out
/// first ([`OutQueue::push_stream`]).
fn first_read(mut response: Response, request: &Request, ahead: &mut Option<Vec<u8>>) -> Response {
    let head_request = request.is_head();
    let meta = ResponseMeta {
        version: request.version(),
        keep_alive: true,
        head_request,
    };
    if !body_allowed(response.status(), head_request) {
        return response;
    }
    let Some(end) = stream_end(response.status(), &response, &meta) else {
        return response;
    };
    let Body::Stream(mut reader) = response.take_body() else {
        return response;
    };
    let which = stream_label(request);
    match out::read_first(reader.as_mut(), end, &which) {
        Ok(first) => {
            *ahead = Some(first);
            response.with_body(Body::Stream(reader))
        }
        Err(err) => {
            log::error!(
                "the stream answering {which} failed before its first byte: {err}; answered 500"
            );
            drop_guarded(reader);
            drop_guarded(response);
            internal_error()
        }
    }
}

/// The application's answer before a body is read ([`Handler::before_body`]), if any;
/// called from `began`.
fn call_before_body(
    handler: &mut dyn Handler,
    head: &RequestHead,
    began: Instant,
) -> Option<Response> {
    let outcome = catch_unwind(AssertUnwindSafe(|| handler.before_body(head))).transpose()?;
    let call = Call {
        when: "before the body of",
        method: head.method(),
        target: head.target(),
        began,
    };
    Some(checked(outcome, &call))
}

/// One call into the application, for what its answer is checked against and the log.
struct Call<'a> {
    /// "on" or "before the body of", as the log says it.
    when: &'static str,
    method: &'a str,
    target: &'a str,
    /// When the call began.
    began: Instant,
}

/// What a call into the application returned, made safe to send: a panic, or a
/// response that cannot go out as it is, is logged and answered 500, and the worker
/// serves on; a file that changed while the call ran is a 503 ([`file_changed`]).
fn checked(outcome: std::thread::Result<Response>, call: &Call) -> Response {
    let failed = match outcome {
        Ok(response) => match unsendable(&response, call.began) {
            None => {
                warn_invalid_fields(&response, call.method, call.target);
                return response;
            }
            Some(Unsendable::Changed(why)) => {
                drop_guarded(response);
                return file_changed(&why, call);
            }
            Some(Unsendable::Fault(why)) => {
                drop_guarded(response);
                why
            }
        },
        Err(payload) => {
            drop_guarded(payload);
            "panicked".to_string()
        }
    };
    let Call {
        when,
        method,
        target,
        ..
    } = call;
    log::error!("handler {failed} {when} {method} {target}; answered 500");
    internal_error()
}

/// The answer to a file body that shrank after it was measured, while the application
/// ran: a writer rewrote the file in place (`cp`, `>` and `rsync --inplace` truncate it
/// first), so the bytes promised are no longer there. Not the application's fault, so
/// not its 500: a 503 with `Retry-After: 1`, as the next try reads the new file whole,
/// and a warning at most once a second (a deploy rewriting files under load would
/// otherwise log one a request). nginx sends such a head and closes short.
fn file_changed(why: &str, call: &Call) -> Response {
    static LAST: AtomicU64 = AtomicU64::new(0);
    if crate::logging::once_a_second(&LAST) {
        let Call { method, target, .. } = call;
        log::warn!(
            "the file answering {method} {target} changed while being served ({why}): \
             rewritten in place? answered 503; a deploy that renames new files into place \
             never shows a half-written one"
        );
    }
    Response::text(
        503,
        "503 Service Unavailable: the file changed while being read\n",
    )
    .with_header("Retry-After", "1")
}

/// The 500 for an application's answer that cannot be sent.
fn internal_error() -> Response {
    Response::text(500, "Internal Server Error\n")
}

/// Names each header field the response will go out without, or with another value
/// than the handler gave (a Content-Length that is not its body's), and the request it
/// answers, so the handler's author can find the code that set it.
fn warn_invalid_fields(response: &Response, method: &str, target: &str) {
    for name in response.invalid_fields() {
        log::warn!(
            "handler's response to {method} {target} has an invalid header field {name:?}; sent without it"
        );
    }
    if let Some((declared, sent)) = response.overridden_length(method == "HEAD") {
        log::warn!(
            "handler's response to {method} {target} says Content-Length {declared:?}; sent with {sent}, its body's length"
        );
    }
    if let Some(declared) = response.unusable_stream_length() {
        log::warn!(
            "handler's response to {method} {target} says Content-Length {declared:?}, not a length; its stream is sent without it"
        );
    }
}

/// Drops what the application made whose own `Drop` may panic (a panic's payload, a
/// stream's reader): caught, or the panic would unwind out of the worker's loop and end
/// the worker. The payload of that panic is dropped the same way, and one that panics
/// yet again is leaked rather than dropped a second time.
pub(super) fn drop_guarded<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

/// Why a response cannot go out as it is.
#[derive(Debug, PartialEq, Eq)]
enum Unsendable {
    /// The application's mistake.
    Fault(String),
    /// A file body shorter than promised that changed after the call began.
    Changed(String),
}

/// Why a handler's response cannot go out as it is, found before any of it is written
/// (another answer is still possible then, and the access log records what is sent): a
/// status outside 200-599 (a 1xx is interim, never the answer: RFC 9110 §15.2), or a
/// file body that cannot be sent whole: not a regular file open for reading, or holding
/// fewer bytes than promised, either of which would leave the head's Content-Length
/// unmet. Fewer bytes in a file whose status changed (its ctime) after the call began
/// at `began` are a writer's doing, not the application's: [`Unsendable::Changed`].
fn unsendable(response: &Response, began: Instant) -> Option<Unsendable> {
    let status = response.status();
    if !(200..=599).contains(&status) {
        return Some(Unsendable::Fault(format!(
            "answered {status}, not a final status"
        )));
    }
    let Body::File { file, offset, len } = response.body() else {
        return None;
    };
    let Some(meta) = file
        .metadata()
        .ok()
        .filter(|m| m.is_file() && open_for_reading(file))
    else {
        let why = "sent a file body that is not a regular file open for reading";
        return Some(Unsendable::Fault(why.into()));
    };
    let size = meta.len();
    let end = offset.checked_add(*len);
    if end.is_some_and(|end| end <= size) {
        return None;
    }
    let why = format!("a file of {size} bytes sent as {len} bytes from {offset}");
    // File times come from a coarse clock, a tick or more behind: a second's margin.
    let since = SystemTime::now().checked_sub(began.elapsed() + Duration::from_secs(1));
    Some(
        match end.is_some() && since.is_some_and(|t| changed_after(&meta, t)) {
            true => Unsendable::Changed(why),
            false => Unsendable::Fault(format!("sent {why}")),
        },
    )
}

/// Whether a file's status changed (its ctime: a truncation, a write) after `since`.
fn changed_after(meta: &std::fs::Metadata, since: SystemTime) -> bool {
    use std::os::unix::fs::MetadataExt;
    let changed = u64::try_from(meta.ctime())
        .ok()
        .zip(u32::try_from(meta.ctime_nsec()).ok())
        .map(|(secs, nanos)| UNIX_EPOCH + Duration::new(secs, nanos));
    changed.is_some_and(|changed| changed >= since)
}

/// Whether a file was opened for reading (not `O_WRONLY`, not `O_PATH`), as sendfile
/// and read need.
fn open_for_reading(file: &std::fs::File) -> bool {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(file, FcntlArg::F_GETFL).map(OFlag::from_bits_truncate);
    // O_PATH reads as O_RDONLY (access mode 0), but such a descriptor cannot be read.
    flags.is_ok_and(|f| f & OFlag::O_ACCMODE != OFlag::O_WRONLY && !f.contains(OFlag::O_PATH))
}

fn peer_name(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unix peer".to_string(), |p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;

    /// A body moves to its spool file once over the spool size, then with whatever
    /// arrives, and no buffer is kept between writes.
    #[test]
    fn spilling_a_body_to_its_spool() {
        let spooling = Spooling {
            size: 10,
            dir: std::env::temp_dir(),
        };
        let (mut body, mut spool) = (vec![b'x'; 10], None);
        let mut spill = |body: &mut Vec<u8>| spill(body, &mut spool, &spooling).ok();
        assert_eq!(spill(&mut body), Some(0), "not over");
        body.push(b'y');
        assert_eq!(spill(&mut body), Some(11), "over");
        assert_eq!(body.capacity(), 0, "let go");
        body.extend_from_slice(b"end");
        assert_eq!(spill(&mut body), Some(3), "whatever comes next");
        assert_eq!(spill(&mut body), Some(0), "nothing");
        let mapped = spool.take().map(Spool::finish).transpose().expect("mapped");
        assert_eq!(&*mapped.expect("a spool"), b"xxxxxxxxxxyend");
    }

    #[test]
    fn a_panic_whose_payload_panics_when_dropped_is_still_a_500() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("dropping the payload panics too");
            }
        }
        let mut handler = |_: &Request| -> Response { std::panic::panic_any(Bomb) };
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let head = crate::http::parse_head(raw, &crate::http::Limits::default());
        let request = Request::new(head.unwrap().unwrap(), Vec::new(), None);
        assert_eq!(
            call_handler(&mut handler, &request, Instant::now()).status(),
            500
        );
    }

    /// `before_body` answers as `handle` does: its panic, or a response that cannot be
    /// sent, is a 500; no answer means the body is read.
    #[test]
    fn an_answer_before_the_body_is_checked_like_any() {
        struct Screen(u16);
        impl Handler for Screen {
            fn handle(&mut self, _: &Request) -> Response {
                Response::new(200)
            }
            fn before_body(&mut self, _: &RequestHead) -> Option<Response> {
                match self.0 {
                    0 => None,
                    1 => panic!("before_body panics"),
                    status => Some(Response::new(status)),
                }
            }
        }
        let raw = b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
        let head = crate::http::parse_head(raw, &Limits::default())
            .unwrap()
            .unwrap();
        let status =
            |n| call_before_body(&mut Screen(n), &head, Instant::now()).map(|r| r.status());
        assert_eq!(status(0), None);
        assert_eq!(status(1), Some(500));
        assert_eq!(status(103), Some(500));
        assert_eq!(status(413), Some(413));
    }

    #[test]
    fn refused_request_lines_are_split_for_the_log() {
        let cases: &[(&[u8], [&[u8]; 3])] = &[
            (b"GET / HTTP/1.1", [b"GET", b"/", b"HTTP/1.1"]),
            (b"GET  / HTTP/1.1", [b"GET", b"/", b"HTTP/1.1"]),
            (b"GET /a  HTTP/1.1 x", [b"GET", b"/a", b"HTTP/1.1 x"]),
            (b"GET /", [b"GET", b"/", b"-"]),
            (b"GET", [b"GET", b"-", b"-"]),
            (b"", [b"-", b"-", b"-"]),
            (b" GET", [b"GET", b"-", b"-"]),
        ];
        for (line, [method, target, version]) in cases {
            let parts = line_parts(line);
            assert_eq!(parts, (*method, *target, *version), "{line:?}");
        }
    }

    #[test]
    fn refused_heads_give_their_fields_to_the_log() {
        let head = b"\r\nPOST / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For:  10.0.0.1 \r\nUser-Agent: u\r\nx-forwarded-for: 10.0.0.2\r\n\r\nX-Late: no\r\n";
        type Case<'a> = (&'a [u8], &'a str, Option<&'a [u8]>);
        let cases: &[Case] = &[
            (head, "x-forwarded-for", Some(b"10.0.0.1, 10.0.0.2")),
            (head, "USER-AGENT", Some(b"u")),
            (head, "post / http/1.1", None), // the request line is no field
            (head, "x-late", None),          // after the head: a body, or the next request
            (b"GET / HTTP/1.1\nA: 1\nB: 2", "b", Some(b"2")), // bare LF, cut short
            (b"GET / HTTP/1.1\r\nA", "a", None),
            (b"", "a", None),
        ];
        for (input, name, want) in cases {
            let value = joined_field(raw_fields(input, name));
            assert_eq!(value.as_deref(), *want, "{name} in {input:?}");
        }
        // A field refused for its size (431) is logged as far as the limit on what is
        // kept, not whole.
        let long = [&b"GET / HTTP/1.1\r\nUser-Agent: "[..], &[b'a'; 100_000]].concat();
        assert_eq!(
            raw_fields(&long, "user-agent").next().map(<[u8]>::len),
            Some(LOGGED_BYTES)
        );
    }

    #[test]
    fn unsendable_responses_are_caught_before_anything_is_written() {
        let path = std::env::temp_dir().join(format!("br-serve-conn-{}", std::process::id()));
        std::fs::write(&path, "0123456789").unwrap();
        let file = |offset, len| {
            let file = std::fs::File::open(&path).unwrap();
            Response::new(200).with_body(Body::File { file, offset, len })
        };
        // The first 4 bytes of what `options` opens.
        let opened = |options: &std::fs::OpenOptions, path: &std::path::Path| {
            let file = options.open(path).unwrap();
            Response::new(200).with_body(Body::File {
                file,
                offset: 0,
                len: 4,
            })
        };
        let reading = std::fs::OpenOptions::new().read(true).clone();
        let dir = || opened(&reading, &std::env::temp_dir());
        let write_only = || opened(std::fs::OpenOptions::new().append(true), &path);
        let path_only = || {
            use std::os::unix::fs::OpenOptionsExt;
            opened(reading.clone().custom_flags(nix::libc::O_PATH), &path)
        };
        let cases = [
            ("an answer", Response::new(200), false),
            ("a 1xx", Response::new(103), true),
            ("the whole file", file(0, 10), false),
            ("its last bytes", file(6, 4), false),
            ("one byte too many", file(0, 11), true),
            ("past its end", file(8, 3), true),
            ("an overflowing range", file(u64::MAX, 2), true),
            ("a status of 42", Response::new(42), true),
            ("a status of 600", Response::new(600), true),
            ("a directory", dir(), true),
            ("a file open for writing only", write_only(), true),
            ("an O_PATH descriptor", path_only(), true),
        ];
        for (name, response, want) in cases {
            assert_eq!(
                unsendable(&response, Instant::now()).is_some(),
                want,
                "{name}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }

    /// A file shorter than promised is the application's fault, unless it changed while
    /// the application ran: a file rewritten in place under the static app.
    #[test]
    fn a_file_that_shrank_during_the_call_is_not_the_applications_fault() {
        let path = std::env::temp_dir().join(format!("br-serve-shrank-{}", std::process::id()));
        std::fs::write(&path, "0123456789").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let began = Instant::now();
        std::fs::write(&path, "0123").unwrap();
        let response = Response::new(200).with_body(Body::File {
            file,
            offset: 0,
            len: 10,
        });
        let why = "a file of 4 bytes sent as 10 bytes from 0".to_string();
        assert_eq!(unsendable(&response, began), Some(Unsendable::Changed(why)));
        let meta = std::fs::metadata(&path).unwrap();
        let now = SystemTime::now();
        assert!(changed_after(&meta, now - Duration::from_secs(10)));
        assert!(!changed_after(&meta, now + Duration::from_secs(10)));
        let call = Call {
            when: "on",
            method: "GET",
            target: "/f",
            began,
        };
        let answer = checked(Ok(response), &call);
        assert_eq!(answer.status(), 503);
        assert!(answer.headers().any(|h| h == ("Retry-After", "1")));
        std::fs::remove_file(&path).unwrap();
    }
}
