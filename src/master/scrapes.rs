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
//! closes the oldest), each closed [`SCRAPE_DEADLINE_MS`] after it was accepted whatever it
//! has sent, one request per connection (`Connection: close`), its head parsed by the
//! same code as the workers'. The socket is handed to a new master on USR2, like the
//! listeners.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, Socket, Type};

use super::listeners::Listener;
use crate::error::Error;
use crate::http::{
    Body, HttpError, Limits, Request, Response, ResponseMeta, format_imf_fixdate, parse_head,
    write_head,
};
use crate::metrics::Metrics;
use crate::sys::clock::monotonic_ms;
use crate::sys::scoreboard::Scoreboard;

/// The environment variable in which a master re-executing itself (USR2) names the
/// metrics socket it hands down.
pub const FD_ENV: &str = "BR_SERVE_METRICS_FD";
/// The path the metrics are served at on this port.
pub const PATH: &str = "/metrics";
/// The master's poll token for the metrics listener; connections follow it.
pub const LISTENER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// Connections served at once; a scraper needs one.
const MAX_SCRAPES: usize = 16;
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
    /// The port was found full, and said so, since it last had room.
    full: bool,
}

/// One connection: the request read so far, then the answer being written.
struct Scrape {
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    /// The whole answer once the head is in; empty before.
    output: Vec<u8>,
    written: usize,
    /// Its place in the accept order.
    number: u64,
    deadline_ms: u64,
}

impl Scrapes {
    /// The metrics port: the socket a previous master handed down (USR2), or else
    /// `bind`, freshly bound; `None` without `--metrics-bind`. Like the listeners, an
    /// inherited socket wins over the address configured now.
    pub fn acquire(
        bind: Option<SocketAddr>,
        board: Scoreboard,
        listeners: &[Listener],
    ) -> Result<Option<Scrapes>, Error> {
        let socket = match (inherited()?, bind) {
            (Some(socket), Some(_)) => socket,
            (Some(socket), None) => {
                log::warn!("--metrics-bind is no longer set; closing the metrics port handed down");
                drop(socket);
                return Ok(None);
            }
            (None, Some(addr)) => bound(addr)
                .map_err(|e| Error::io(format!("cannot listen on --metrics-bind {addr}"), e))?,
            (None, None) => return Ok(None),
        };
        let tcp = listeners.iter().filter_map(Listener::tcp);
        let metrics = Metrics::new(PATH.to_string(), board, tcp)
            .map_err(|e| Error::io("preparing the metrics", e))?;
        let std: std::net::TcpListener = socket.into();
        let addr = std
            .local_addr()
            .map_err(|e| Error::io("reading the metrics port's address", e))?;
        Ok(Some(Scrapes {
            listener: TcpListener::from_std(std),
            addr,
            metrics,
            conns: Vec::new(),
            accepted: 0,
            full: false,
        }))
    }

    /// Where to scrape, for the log.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// The listening socket, for handing it to a new master.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Puts the port in the master's poll (connections follow as they come).
    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        registry.register(&mut self.listener, LISTENER, Interest::READABLE)
    }

    /// Acts on one event of the master's poll that is not a signal.
    pub fn on_event(&mut self, registry: &Registry, event: &Event) {
        if event.token() == LISTENER {
            return self.accept_all(registry);
        }
        let Some(index) = event.token().0.checked_sub(FIRST_CONN) else {
            return;
        };
        let metrics = &self.metrics;
        let finished = match self.conns.get_mut(index).and_then(Option::as_mut) {
            Some(scrape) => scrape.advance(metrics),
            None => return,
        };
        if finished {
            self.close(registry, index);
        }
    }

    /// Closes the connections past their deadline.
    pub fn expire(&mut self, registry: &Registry) {
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

    /// Accepts until the queue is empty (the listener is edge-triggered).
    fn accept_all(&mut self, registry: &Registry) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(err) => return log::warn!("metrics port: accept failed: {err}"),
            };
            let index = self.free_place(registry);
            let token = Token(FIRST_CONN + index);
            if let Err(err) = registry.register(&mut stream, token, Interest::READABLE) {
                log::warn!("metrics port: cannot watch a connection: {err}");
                continue;
            }
            self.accepted += 1;
            self.conns[index] = Some(Scrape {
                stream,
                peer,
                input: Vec::new(),
                output: Vec::new(),
                written: 0,
                number: self.accepted,
                deadline_ms: monotonic_ms() + SCRAPE_DEADLINE_MS,
            });
        }
    }

    /// A free place for a new connection. When all [`MAX_SCRAPES`] are taken, the oldest
    /// connection is closed to make room: a newcomer is likelier to be a scraper than
    /// what has sat there longest, so idle connections cannot lock scrapers out.
    fn free_place(&mut self, registry: &Registry) -> usize {
        if let Some(index) = self.conns.iter().position(Option::is_none) {
            self.full = false;
            return index;
        }
        if self.conns.len() < MAX_SCRAPES {
            self.full = false;
            self.conns.push(None);
            return self.conns.len() - 1;
        }
        if !std::mem::replace(&mut self.full, true) {
            log::warn!("metrics port: {MAX_SCRAPES} connections open; closing the oldest");
        }
        let oldest = (0..self.conns.len())
            .min_by_key(|&i| self.conns[i].as_ref().map_or(0, |s| s.number))
            .unwrap_or(0);
        self.close(registry, oldest);
        oldest
    }

    fn close(&mut self, registry: &Registry, index: usize) {
        if let Some(mut scrape) = self.conns[index].take() {
            let _ = registry.deregister(&mut scrape.stream);
        }
    }
}

impl Scrape {
    /// Reads what has arrived and, once the head is complete, writes the answer; true
    /// when the connection is done with (answered, or gone).
    fn advance(&mut self, metrics: &Metrics) -> bool {
        if self.output.is_empty() {
            self.output = match self.read_head() {
                Ok(Some(Ok(request))) => encode(&answer(metrics, &request), Some(&request)),
                Ok(Some(Err(err))) => encode(&Response::error(&err), None),
                Ok(None) => return false,
                Err(_) => return true,
            };
        }
        self.flush()
    }

    /// Reads until the socket is empty; the request once its head is complete, or why
    /// it is refused; an error when the client left first.
    fn read_head(&mut self) -> io::Result<Option<Result<Request, HttpError>>> {
        let mut buf = [0u8; 4096];
        while self.input.len() <= MAX_HEAD {
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        match parse_head(&self.input, &Limits::default()) {
            Ok(None) if self.input.len() <= MAX_HEAD => Ok(None),
            Ok(None) => Ok(Some(Err(HttpError::new(
                431,
                "request head too large for the metrics port",
            )))),
            Ok(Some(head)) => Ok(Some(Ok(Request::new(head, Vec::new(), Some(self.peer))))),
            Err(err) => Ok(Some(Err(err))),
        }
    }

    /// Writes what the socket takes; true once all of it is out.
    fn flush(&mut self) -> bool {
        while self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(n) => self.written += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
        true
    }
}

/// The metrics at [`PATH`], 404 elsewhere.
fn answer(metrics: &Metrics, request: &Request) -> Response {
    match metrics.serves(request) {
        true => metrics.respond(request),
        false => Response::text(404, format!("not found; the metrics are at {PATH}\n")),
    }
}

/// The bytes on the wire: head, then the body unless the request was HEAD. The
/// connection closes after it.
fn encode(response: &Response, request: Option<&Request>) -> Vec<u8> {
    let meta = ResponseMeta {
        version: request.map_or(crate::Version::Http11, Request::version),
        keep_alive: false,
        head_request: request.is_some_and(Request::is_head),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = Vec::new();
    write_head(&mut out, response, &meta, &format_imf_fixdate(now));
    if !meta.head_request {
        match response.body() {
            Body::Bytes(bytes) => out.extend_from_slice(bytes),
            Body::Static(bytes) => out.extend_from_slice(bytes),
            Body::Empty | Body::File { .. } => {}
        }
    }
    out
}

/// The socket a previous master named in [`FD_ENV`].
fn inherited() -> Result<Option<Socket>, Error> {
    let Ok(value) = std::env::var(FD_ENV) else {
        return Ok(None);
    };
    let fd = value
        .parse()
        .map_err(|_| Error::Config(format!("{FD_ENV}={value}: not a descriptor number")))?;
    crate::sys::fds::check_listening(fd)
        .and_then(|()| crate::sys::fds::adopt_all(&[fd]))
        .and_then(|mut fds| match fds.pop().map(Socket::from) {
            Some(socket) if socket.local_addr()?.as_socket().is_some() => {
                socket.set_cloexec(true)?;
                Ok(Some(socket))
            }
            _ => Err(io::Error::other("not a TCP socket")),
        })
        .map_err(|e| Error::io(format!("adopting {FD_ENV}={value}"), e))
}

/// A fresh non-blocking TCP listener on `addr`.
fn bound(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

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
