//! `--metrics-bind`: the master answers metrics scrapes on a port of its own.
//!
//! A scrape of `--metrics-path` is a request like any other, so when every worker is
//! busy, which is exactly when the numbers matter (the accept queue to scale on is
//! growing), it waits in that queue behind the application's requests and the scraper
//! times out. The master never runs the application, so it is always free: here it
//! accepts on a separate TCP port, reads the scoreboard the workers write and answers
//! from it, as uWSGI's stats server does from its master (anchors §3, item 11). The port
//! can stay private while the application's is public.
//!
//! The master must never block nor be held up by a client, so this lives in its poll,
//! non-blocking throughout: at most [`MAX_SCRAPES`] connections at a time (a newcomer
//! closes the oldest), at most [`ACCEPTS_PER_TURN`] accepted per turn of the loop, each
//! connection closed [`SCRAPE_DEADLINE_MS`] after it was accepted whatever it has sent,
//! one request per connection (`Connection: close`, then a lingering close so that
//! unread input does not turn the close into a reset), its head parsed by the same code
//! as the workers'. The socket is handed to a new master on USR2, like the listeners;
//! the old master stops answering on it meanwhile, so a scraper never sees the two
//! masters' counters alternate, and takes it back if the new master exits.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, Socket, Type};

use super::listeners::{self, Listener};
use crate::error::Error;
use crate::http::{
    Body, HttpError, Limits, Request, Response, ResponseMeta, body_allowed, format_imf_fixdate,
    parse_head, write_head,
};
use crate::metrics::Metrics;
use crate::sys::clock::monotonic_ms;
use crate::sys::scoreboard::Scoreboard;

/// The environment variable in which a master re-executing itself (USR2) names the
/// metrics socket it hands down.
pub const FD_ENV: &str = "BR_SERVE_METRICS_FD";
/// The path the metrics are served at on this port.
pub const PATH: &str = "/metrics";
/// The master's own liveness: answered here, by the master, it does not wait behind the
/// requests queued for the workers, as the application's `/healthz` does (a saturated
/// pod whose liveness waited a minute in that queue would be restarted, its queue lost).
const HEALTH: &str = "/healthz";
/// The master's poll token for the metrics listener; connections follow it.
pub const LISTENER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// Connections served at once; a scraper needs one.
const MAX_SCRAPES: usize = 16;
/// Connections accepted in one turn of the master's loop, so that a flood of them cannot
/// keep it from its workers; the rest wait for the next turn, [`RETRY`] later at most.
const ACCEPTS_PER_TURN: usize = 64;
/// How soon the master looks again at a queue it left non-empty (or that failed).
const RETRY: Duration = Duration::from_millis(100);
/// How long a connection may stay, from accept to close.
const SCRAPE_DEADLINE_MS: u64 = 5_000;
/// The longest request head read; a scrape's is a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;
/// The accept queue of the metrics port.
const BACKLOG: i32 = 64;

/// The metrics port and the scrapes in progress on it.
pub struct Scrapes {
    listener: TcpListener,
    addr: SocketAddr,
    metrics: Metrics,
    /// Indexed by token minus [`FIRST_CONN`]; `None` is a free place.
    conns: Vec<Option<Scrape>>,
    /// Connections accepted so far, which orders them by age.
    accepted: u64,
    /// The port was found full, and said so, since it last had room to spare (half its
    /// places free): a flood that fills it again after each scrape is one spell, said
    /// once, where it was said once per scrape answered.
    full: bool,
    /// The accept queue may hold more than the last turn took.
    backlog: bool,
    /// Accepting fails (out of descriptors, say), and the log said so once.
    failing: bool,
    /// Watched by this master's poll (not while a new master from USR2 answers).
    watched: bool,
    /// Why `/healthz` fails, while it does (see [`Scrapes::set_unhealthy`]).
    unhealthy: Option<String>,
}

/// One connection, through its three phases.
struct Scrape {
    stream: TcpStream,
    peer: SocketAddr,
    phase: Phase,
    input: Vec<u8>,
    /// The client has closed its side (possibly right after its request).
    eof: bool,
    /// The whole answer once the head is in.
    output: Vec<u8>,
    written: usize,
    /// Its place in the accept order.
    number: u64,
    deadline_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the request head.
    Reading,
    /// Writing the answer.
    Writing,
    /// Answered and shut down for writing; reading what the client still sends until it
    /// closes, so that the close is a FIN, not a reset that could destroy the answer.
    Lingering,
}

/// What reading the socket gave.
enum Head {
    /// Not the whole head yet.
    Partial,
    /// A complete request head.
    Complete(Request),
    /// A head refused, with the status to answer.
    Refused(HttpError),
    /// The client left, or the socket failed, before a whole head.
    Gone,
}

impl Scrapes {
    /// The metrics port: the socket a previous master handed down (USR2), or else
    /// `bind`, freshly bound; `None` without `--metrics-bind`.
    pub fn acquire(
        bind: Option<SocketAddr>,
        board: Scoreboard,
        listeners: &[Listener],
    ) -> Result<Option<Scrapes>, Error> {
        let Some(bind) = bind else {
            if inherited()?.is_some() {
                log::warn!("--metrics-bind is no longer set; closing the metrics port handed down");
            }
            return Ok(None);
        };
        let listener = match inherited()? {
            Some(socket)
                if socket
                    .local_addr()
                    .is_ok_and(|a| listeners::same_address(bind, a)) =>
            {
                socket
            }
            handed => {
                if let Some(old) = handed.and_then(|s| s.local_addr().ok()) {
                    log::info!("--metrics-bind moved from {old} to {bind}");
                }
                bound(bind)
                    .map_err(|e| Error::io(format!("cannot listen on --metrics-bind {bind}"), e))?
            }
        };
        let labelled = listeners.iter().map(|l| (l.url(), l.fd()));
        let metrics = Metrics::new(PATH.to_string(), board, labelled)
            .map_err(|e| Error::io("preparing the metrics", e))?;
        Scrapes::new(listener, metrics).map(Some)
    }

    fn new(listener: std::net::TcpListener, metrics: Metrics) -> Result<Scrapes, Error> {
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the metrics port's address", e))?;
        Ok(Scrapes {
            listener: TcpListener::from_std(listener),
            addr,
            metrics,
            conns: Vec::new(),
            accepted: 0,
            full: false,
            backlog: false,
            failing: false,
            watched: false,
            unhealthy: None,
        })
    }

    /// Where to scrape, for the log.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// The listening socket, for handing it to a new master.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// The server is stopping: see [`Metrics::forget_listeners`].
    pub fn forget_listeners(&mut self) {
        self.metrics.forget_listeners();
    }

    /// Whether this master answers on the port now (see [`Scrapes::watch`]).
    pub fn watched(&self) -> bool {
        self.watched
    }

    /// Starts or stops answering on the port: stopped while a new master (USR2) serves
    /// on it, so that scrapes reach that one alone. Connections already accepted are
    /// finished either way; new ones wait in the queue for whichever master watches.
    pub fn watch(&mut self, registry: &Registry, on: bool) -> io::Result<()> {
        match (on, self.watched) {
            (true, false) => registry.register(&mut self.listener, LISTENER, Interest::READABLE)?,
            (false, true) => registry.deregister(&mut self.listener)?,
            _ => return Ok(()),
        }
        self.watched = on;
        // Registering reports a queue that is not empty; nothing is left to catch up on.
        self.backlog = false;
        Ok(())
    }

    /// What `/healthz` says from now on: `200 ok`, or with a reason, `503` and the
    /// reason: the master lives, but nothing serves (its workers die during boot).
    pub fn set_unhealthy(&mut self, why: Option<String>) {
        self.unhealthy = why;
    }

    /// Acts on one event of the master's poll that is not a signal.
    pub fn on_event(&mut self, registry: &Registry, event: &Event) {
        if event.token() == LISTENER {
            return self.accept_some(registry);
        }
        let Some(index) = event.token().0.checked_sub(FIRST_CONN) else {
            return;
        };
        let (metrics, unhealthy) = (&self.metrics, self.unhealthy.as_deref());
        let finished = match self.conns.get_mut(index).and_then(Option::as_mut) {
            Some(scrape) => scrape.advance(metrics, unhealthy),
            None => return,
        };
        if finished {
            self.close(registry, index);
        }
    }

    /// Once per turn of the loop: accepts what an earlier turn left in the queue, and
    /// closes the connections past their deadline.
    pub fn tend(&mut self, registry: &Registry) {
        if self.backlog && self.watched {
            self.accept_some(registry);
        }
        let now = monotonic_ms();
        for index in 0..self.conns.len() {
            if self.conns[index]
                .as_ref()
                .is_some_and(|s| now >= s.deadline_ms)
            {
                self.close(registry, index);
            }
        }
    }

    /// The longest the master may sleep and still accept a waiting queue and close
    /// connections on time.
    pub fn max_sleep(&self) -> Option<Duration> {
        let now = monotonic_ms();
        let next_deadline = self.conns.iter().flatten().map(|s| s.deadline_ms).min();
        let until_deadline = next_deadline.map(|ms| Duration::from_millis(ms.saturating_sub(now)));
        match self.backlog && self.watched {
            true => Some(until_deadline.map_or(RETRY, |d| d.min(RETRY))),
            false => until_deadline,
        }
    }

    /// Accepts up to [`ACCEPTS_PER_TURN`] connections. The listener is edge-triggered,
    /// so a queue not emptied here (the limit, or an error such as EMFILE) is marked for
    /// [`tend`](Self::tend) to come back to.
    fn accept_some(&mut self, registry: &Registry) {
        self.backlog = true;
        for _ in 0..ACCEPTS_PER_TURN {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.backlog = false;
                    self.accepting_again();
                    return;
                }
                Err(err) if err.kind() == io::ErrorKind::ConnectionAborted => continue,
                // Retried every turn (the queue is still there), said once per spell.
                Err(err) => {
                    if !std::mem::replace(&mut self.failing, true) {
                        log::warn!("metrics port: accept failed: {err}; retrying every {RETRY:?}");
                    }
                    return;
                }
            };
            self.accepting_again();
            let index = self.free_place(registry);
            let token = Token(FIRST_CONN + index);
            // Writable too: an answer larger than the socket's buffer is finished when
            // the client has read enough (edge-triggered, so no wake-ups meanwhile).
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(err) = registry.register(&mut stream, token, interest) {
                log::warn!("metrics port: cannot watch a connection: {err}");
                continue;
            }
            self.accepted += 1;
            let mut scrape = Scrape::new(stream, peer, self.accepted);
            // Its request is usually there already: answered now, the connection is at
            // most lingering by the time the next newcomer needs a place.
            match scrape.advance(&self.metrics, self.unhealthy.as_deref()) {
                true => {
                    let _ = registry.deregister(&mut scrape.stream);
                }
                false => self.conns[index] = Some(scrape),
            }
        }
    }

    /// An accept went through (or found the queue empty): a spell of failures, if one
    /// was said, is over.
    fn accepting_again(&mut self) {
        if std::mem::take(&mut self.failing) {
            log::warn!("metrics port: accepting again");
        }
    }

    /// A free place for a new connection. When all [`MAX_SCRAPES`] are taken, one is
    /// closed to make room: the oldest of those already answered (lingering for the
    /// client's FIN, closing them costs it nothing), else the oldest: a newcomer is
    /// likelier to be a scraper than what has sat there longest, so idle connections
    /// cannot lock scrapers out, and up to [`MAX_SCRAPES`] scrapers at once, each
    /// waiting for its answer before it connects again, never lose one.
    fn free_place(&mut self, registry: &Registry) -> usize {
        let open = self.conns.iter().flatten().count();
        if open < MAX_SCRAPES / 2 {
            self.full = false;
        }
        if let Some(index) = self.conns.iter().position(Option::is_none) {
            return index;
        }
        if self.conns.len() < MAX_SCRAPES {
            self.conns.push(None);
            return self.conns.len() - 1;
        }
        let answered =
            |scrape: Option<&Scrape>| scrape.is_some_and(|s| s.phase == Phase::Lingering);
        let victim = (0..self.conns.len())
            .min_by_key(|&i| {
                let scrape = self.conns[i].as_ref();
                (!answered(scrape), scrape.map_or(0, |s| s.number))
            })
            .unwrap_or(0);
        if !answered(self.conns[victim].as_ref()) && !std::mem::replace(&mut self.full, true) {
            log::warn!("metrics port: {MAX_SCRAPES} connections open; closing the oldest");
        }
        self.close(registry, victim);
        victim
    }

    fn close(&mut self, registry: &Registry, index: usize) {
        if let Some(mut scrape) = self.conns[index].take() {
            let _ = registry.deregister(&mut scrape.stream);
        }
    }
}

impl Scrape {
    fn new(stream: TcpStream, peer: SocketAddr, number: u64) -> Scrape {
        Scrape {
            stream,
            peer,
            phase: Phase::Reading,
            input: Vec::new(),
            eof: false,
            output: Vec::new(),
            written: 0,
            number,
            deadline_ms: monotonic_ms() + SCRAPE_DEADLINE_MS,
        }
    }

    /// Moves the connection on as far as its socket allows; true when it is done with
    /// (answered and closed by the client, or gone).
    fn advance(&mut self, metrics: &Metrics, unhealthy: Option<&str>) -> bool {
        if self.phase == Phase::Reading {
            self.output = match self.read_head() {
                Head::Partial => return false,
                Head::Gone => return true,
                Head::Complete(request) => {
                    encode(&answer(metrics, unhealthy, &request), Some(&request))
                }
                Head::Refused(err) => encode(&Response::error(&err), None),
            };
            self.phase = Phase::Writing;
        }
        if self.phase == Phase::Writing {
            match self.flush() {
                Ok(false) => return false,
                Ok(true) => {}
                Err(_) => return true,
            }
            // Our FIN after the answer; the client's comes when it has read it.
            let _ = self.stream.shutdown(Shutdown::Write);
            self.phase = Phase::Lingering;
        }
        self.eof || self.discard_input()
    }

    /// Reads until the socket is empty or the client has closed its side (which may
    /// come right after a complete request: it is still answered).
    fn read_head(&mut self) -> Head {
        let mut buf = [0u8; 4096];
        while !self.eof && self.input.len() <= MAX_HEAD {
            match self.stream.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Head::Gone,
            }
        }
        match parse_head(&self.input, &Limits::default()) {
            Ok(Some(head)) => Head::Complete(Request::new(head, Vec::new(), Some(self.peer))),
            Ok(None) if self.eof => Head::Gone,
            Ok(None) if self.input.len() <= MAX_HEAD => Head::Partial,
            Ok(None) => Head::Refused(HttpError::new(431, "request head too large")),
            Err(err) => Head::Refused(err),
        }
    }

    /// Writes what the socket takes; `Ok(true)` once all of it is out.
    fn flush(&mut self) -> io::Result<bool> {
        while self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(n) => self.written += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }

    /// Reads and drops what the client still sends; true once it has closed (or failed).
    fn discard_input(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}

/// The metrics at [`PATH`], the master's liveness at [`HEALTH`] (a 503 saying why while
/// it is `unhealthy`), 404 elsewhere.
fn answer(metrics: &Metrics, unhealthy: Option<&str>, request: &Request) -> Response {
    let get = matches!(request.method(), "GET" | "HEAD");
    match request.path() {
        HEALTH if get => match unhealthy {
            None => Response::text(200, "ok\n"),
            Some(why) => Response::text(503, format!("{why}\n")),
        },
        HEALTH => crate::app::refuse_method(request.method(), Some("GET, HEAD")),
        path if metrics.serves(path) => metrics.respond(request),
        _ => Response::text(404, format!("not found; the metrics are at {PATH}\n")),
    }
}

/// The bytes on the wire: head, then the body where one is allowed (the rule the
/// workers follow: not for HEAD, 1xx, 204 or 304). The connection closes after it.
fn encode(response: &Response, request: Option<&Request>) -> Vec<u8> {
    let meta = ResponseMeta {
        version: request.map_or(crate::Version::Http11, Request::version),
        keep_alive: false,
        head_request: request.is_some_and(Request::is_head),
    };
    let now = crate::http::date::now_secs();
    let mut out = Vec::new();
    write_head(&mut out, response, &meta, &format_imf_fixdate(now));
    if body_allowed(response.status(), meta.head_request) {
        match response.body() {
            Body::Bytes(bytes) => out.extend_from_slice(bytes),
            Body::Static(bytes) => out.extend_from_slice(bytes),
            Body::Empty | Body::File { .. } | Body::Stream(_) => {}
        }
    }
    out
}

/// The TCP listener a previous master named in [`FD_ENV`].
fn inherited() -> Result<Option<std::net::TcpListener>, Error> {
    let Ok(value) = std::env::var(FD_ENV) else {
        return Ok(None);
    };
    let adopting = || format!("adopting {FD_ENV}={value}");
    let fd = value
        .parse()
        .map_err(|_| Error::Config(format!("{FD_ENV}={value}: not a descriptor number")))?;
    let mut owned = crate::sys::fds::check_listening(fd)
        .and_then(|()| crate::sys::fds::adopt_all(&[fd]))
        .map_err(|e| Error::io(adopting(), e))?;
    match owned.pop().map(listeners::from_fd).transpose()? {
        Some(Listener::Tcp(listener, _)) => Ok(Some(listener)),
        Some(Listener::Unix(..)) => Err(Error::Config(format!("{}: not TCP", adopting()))),
        None => Ok(None),
    }
}

/// A fresh non-blocking TCP listener on `addr`.
fn bound(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use mio::{Events, Poll};

    use super::*;
    use crate::sys::scoreboard;

    /// An answer larger than the socket buffers, to a client that reads it only once the
    /// master's write has blocked, is finished: the writable edge brings the master back.
    #[test]
    fn a_large_answer_is_finished_when_the_client_reads_it() {
        // Every slot in use, with this process's pid: about 100 KiB of metrics.
        let board = scoreboard::create().unwrap();
        for slot in board.iter() {
            slot.reset(1, monotonic_ms());
            slot.set_pid(std::process::id());
        }
        let metrics = Metrics::new(PATH.to_string(), board, []).unwrap();
        let listener = bound("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut scrapes = Scrapes::new(listener, metrics).unwrap();
        let mut poll = Poll::new().unwrap();
        scrapes.watch(poll.registry(), true).unwrap();
        let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        client.set_recv_buffer_size(2048).unwrap();
        client.connect(&SockAddr::from(addr)).unwrap();
        let mut client = std::net::TcpStream::from(client);

        // Accepted before the request comes, so it waits to be read, not answered at once.
        let first = |s: &Scrapes| s.conns.iter().flatten().next().map(|c| c.phase);
        drive(&mut scrapes, &mut poll, |s| first(s).is_some());
        // A small send buffer, as a remote client's window would be: loopback's own
        // grows to megabytes and would take the whole answer at once.
        let accepted = scrapes.conns.iter().flatten().next().unwrap();
        socket2::SockRef::from(&accepted.stream)
            .set_send_buffer_size(4096)
            .unwrap();
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        drive(&mut scrapes, &mut poll, |s| {
            first(s) == Some(Phase::Writing)
        });
        let reader = std::thread::spawn(move || {
            let mut answer = Vec::new();
            client
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            client.read_to_end(&mut answer).map(|_| answer)
        });
        drive(&mut scrapes, &mut poll, |s| {
            s.conns.iter().all(Option::is_none)
        });
        let answer = String::from_utf8(reader.join().unwrap().unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let length = format!("Content-Length: {}\r\n", body.len());
        assert!(body.len() > 64 * 1024 && head.contains(&length), "{head}");
    }

    /// Runs the master's side of the port until `done`, for at most 10 s.
    fn drive(scrapes: &mut Scrapes, poll: &mut Poll, done: impl Fn(&Scrapes) -> bool) {
        let mut events = Events::with_capacity(16);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(scrapes) {
            assert!(Instant::now() < deadline, "not done within 10 s");
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            for event in events.iter() {
                scrapes.on_event(poll.registry(), event);
            }
        }
    }

    fn request(raw: &[u8]) -> Request {
        let head = parse_head(raw, &Limits::default()).unwrap().unwrap();
        Request::new(head, Vec::new(), None)
    }

    #[test]
    fn answers_close_the_connection_and_head_gets_no_body() {
        let gone = Response::text(404, "gone\n");
        let get = String::from_utf8(encode(&gone, Some(&request(b"GET /x HTTP/1.0\r\n\r\n"))));
        let get = get.unwrap();
        assert!(get.starts_with("HTTP/1.1 404 Not Found\r\n"), "{get}");
        assert!(get.contains("Connection: close\r\n"), "{get}");
        assert!(
            get.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\ngone\n"),
            "{get}"
        );
        let raw = b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let head = String::from_utf8(encode(&gone, Some(&request(raw)))).unwrap();
        assert!(
            head.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\n"),
            "{head}"
        );
        // A refused head: no request to take the version from.
        let err = HttpError::new(400, "bad");
        let refused = String::from_utf8(encode(&Response::error(&err), None)).unwrap();
        assert!(
            refused.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{refused}"
        );
    }
}
