//! A raw-socket HTTP/1.1 client for the integration tests.
//!
//! Deliberately not an HTTP client library: the tests must control the exact bytes on the
//! wire (several requests in one write, HTTP/1.0 keep-alive, reusing one connection) and
//! see exactly what came back, including a connection the server closed. A [`Conn`] keeps
//! the bytes it has read but not yet parsed, so pipelined responses that arrive in one read
//! are split correctly. Response heads are parsed with httparse; body framing
//! (Content-Length, chunked, bodiless statuses, read-to-close) is done here.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use httparse::Status;

use crate::util::{poll_until, secs};

/// A connection over the Unix socket at `path` that has sent `GET target`, asking to be
/// closed after the answer.
#[track_caller]
pub fn unix_sent(path: &Path, target: &str) -> UnixStream {
    let mut stream =
        UnixStream::connect(path).unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
    unix_send(&mut stream, target);
    stream
}

/// Sends `GET target` on `stream`, asking to be closed after the answer.
#[track_caller]
pub fn unix_send(stream: &mut UnixStream, target: &str) {
    let get = request("GET", target, &["Connection: close"], b"");
    stream.write_all(&get).expect("send over the Unix socket");
}

/// Everything the server sends on `stream` until it closes it, within 10 s.
pub fn unix_answer(stream: &mut UnixStream) -> String {
    stream
        .set_read_timeout(Some(secs(10)))
        .expect("a read timeout");
    let mut answer = String::new();
    if let Err(e) = stream.read_to_string(&mut answer) {
        answer.push_str(&format!("<read: {e}>"));
    }
    answer
}

/// The status line of `GET target` over the Unix socket at `path`.
#[track_caller]
pub fn unix_status(path: &Path, target: &str) -> String {
    let answer = unix_answer(&mut unix_sent(path, target));
    answer.lines().next().unwrap_or_default().to_string()
}

/// A bare TCP connection to the server with Nagle off, for tests that need the socket
/// itself (half-closing, resets, exact timing) rather than a [`Conn`].
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, secs(10)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads from a bare socket until `done` says the bytes so far are enough, the server
/// closes (EOF or a reset), or `within` passes. Returns the bytes and whether the server
/// closed.
pub fn read_until(
    stream: &mut TcpStream,
    within: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + within;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while !done(&bytes) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        stream
            .set_read_timeout(Some(left))
            .expect("set_read_timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return (bytes, true),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return (bytes, true),
        }
    }
    (bytes, false)
}

/// [`read_until`] the server closes.
pub fn read_to_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    read_until(stream, within, |_| false)
}

/// One sample of a Prometheus scrape (`--metrics-path` or `--metrics-bind`): the value on
/// the line that starts with `series `.
#[track_caller]
pub fn metric_sample<T: std::str::FromStr>(scrape: &str, series: &str) -> T {
    let line = scrape
        .lines()
        .find(|l| l.starts_with(&format!("{series} ")));
    let value = line.and_then(|l| l.rsplit(' ').next()?.parse().ok());
    value.unwrap_or_else(|| panic!("no {series} in:\n{scrape}"))
}

/// How long one response may take on a loaded 2-core machine, unless a test says otherwise.
pub const RESPONSE_WITHIN: Duration = Duration::from_secs(10);

/// One parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        found.next().map(|(_, v)| v.as_str())
    }

    /// Whether the comma-separated header `name` (e.g. Connection) holds `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        let mut values = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        values.any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The bytes of an HTTP/1.1 request; `headers` are whole lines without CRLF.
pub fn request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: br-serve.test\r\n");
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// `GET path` on a new connection that asks to be closed afterwards.
#[track_caller]
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let mut conn = Conn::open(addr);
    conn.send(&request("GET", path, &["Connection: close"], b""));
    conn.read_response(RESPONSE_WITHIN)
}

/// One client connection with its unparsed input.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Conn {
    #[track_caller]
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr, secs(10)).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// Like [`Conn::open`], but a failure is the caller's to count (the load client).
    pub fn try_open(addr: SocketAddr, within: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, within)?;
        // Small requests go out at once rather than waiting on Nagle.
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            eof: false,
        })
    }

    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).unwrap_or_else(|e| panic!("send: {e}"));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads whatever arrives next. `Ok(false)` means the deadline passed first.
    fn fill(&mut self, deadline: Instant) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_retry(&e) => continue,
                Err(e) => return Err(e),
            }
            return Ok(true);
        }
    }

    /// Reads the next complete response.
    #[track_caller]
    pub fn read_response(&mut self, within: Duration) -> Response {
        self.try_read_response(within)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// Reads the next complete response, or says why there is none.
    pub fn try_read_response(&mut self, within: Duration) -> Result<Response, String> {
        let deadline = Instant::now() + within;
        loop {
            match parse_response(&self.buf, self.eof) {
                Ok(Some((response, used))) => {
                    self.buf.drain(..used);
                    return Ok(response);
                }
                Ok(None) if self.eof => {
                    return Err(format!(
                        "closed before a full response; got {}",
                        self.seen()
                    ));
                }
                Ok(None) => {}
                Err(why) => return Err(format!("malformed response ({why}): {}", self.seen())),
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "no full response within {within:?}; got {}",
                        self.seen()
                    ));
                }
                Err(e) => return Err(format!("read: {e}; got {}", self.seen())),
            }
        }
    }

    /// The unparsed input, for failure messages.
    fn seen(&self) -> String {
        format!("{:?}", String::from_utf8_lossy(&self.buf))
    }

    /// Asserts that the server closes the connection (FIN or RST) without sending anything
    /// more.
    #[track_caller]
    pub fn expect_closed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.eof && self.buf.is_empty() {
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => panic!("connection still open after {within:?}"),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        assert!(
            self.buf.is_empty(),
            "expected a closed connection, got {}",
            self.seen()
        );
    }

    /// True while the server has sent nothing (no bytes, no close) on this connection.
    pub fn is_quiet(&self) -> bool {
        if !self.buf.is_empty() || self.eof {
            return false;
        }
        self.stream.set_nonblocking(true).expect("set_nonblocking");
        let peeked = self.stream.peek(&mut [0u8; 1]);
        self.stream.set_nonblocking(false).expect("set_nonblocking");
        matches!(peeked, Err(e) if e.kind() == ErrorKind::WouldBlock)
    }

    /// Waits until the server has read everything sent on this connection: the client's
    /// send queue is empty (delivered and acknowledged) and so is the server socket's
    /// receive queue (/proc/net/tcp). After that a request is in the server's hands, not in
    /// a kernel buffer, so a test that then signals the server knows the request is in
    /// flight, without sleeping and hoping.
    #[track_caller]
    pub fn wait_consumed(&self, within: Duration) {
        let done = self.wait_queues(within, |sent, unread| sent == 0 && unread == 0);
        done.unwrap_or_else(|| panic!("the server did not read the request within {within:?}"));
    }

    /// Waits until what was sent has arrived in the server's socket and waits there,
    /// unread (a busy worker's next request): delivered, not yet in the worker's hands.
    #[track_caller]
    pub fn wait_delivered(&self, within: Duration) {
        let done = self.wait_queues(within, |sent, unread| sent == 0 && unread > 0);
        done.unwrap_or_else(|| panic!("the request was not delivered within {within:?}"));
    }

    /// Polls /proc/net/tcp until `wanted(client's unsent bytes, server's unread bytes)`.
    fn wait_queues(&self, within: Duration, wanted: impl Fn(u64, u64) -> bool) -> Option<()> {
        let client = self.stream.local_addr().expect("local_addr");
        let server = self.stream.peer_addr().expect("peer_addr");
        poll_until(within, || {
            let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
            let (sent, _) = tcp_queues(&table, client, server)?;
            let (_, unread) = tcp_queues(&table, server, client)?;
            wanted(sent, unread).then_some(())
        })
    }
}

fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// An IPv4 socket address as /proc/net/tcp prints it: the address as a native-endian u32,
/// then the port, both in hex.
fn proc_net_addr(addr: SocketAddr) -> String {
    let IpAddr::V4(ip) = addr.ip() else {
        panic!("only IPv4 connections are inspected, not {addr}");
    };
    format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(ip.octets()),
        addr.port()
    )
}

/// The (send, receive) queue lengths of the socket `local` -> `remote` in a /proc/net/tcp
/// table.
fn tcp_queues(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<(u64, u64)> {
    let (local, remote) = (proc_net_addr(local), proc_net_addr(remote));
    let row = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    let row = row
        .into_iter()
        .find(|f| f.len() > 4 && f[1] == local && f[2] == remote)?;
    let (tx, rx) = row[4].split_once(':')?;
    Some((
        u64::from_str_radix(tx, 16).ok()?,
        u64::from_str_radix(rx, 16).ok()?,
    ))
}

/// Parses one response off the front of `buf`: `None` while it is incomplete, else the
/// response and the number of bytes it took. `eof` ends a body framed by the close.
fn parse_response(buf: &[u8], eof: bool) -> Result<Option<(Response, usize)>, String> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut slots);
    let head_len = match head.parse(buf).map_err(|e| e.to_string())? {
        Status::Complete(n) => n,
        Status::Partial => return Ok(None),
    };
    let status = head.code.ok_or("no status code")?;
    let headers = head.headers.iter();
    let headers = headers.map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into()));
    let mut response = Response {
        status,
        headers: headers.collect(),
        body: Vec::new(),
    };
    let Some((body, used)) = frame_body(&response, &buf[head_len..], eof)? else {
        return Ok(None);
    };
    response.body = body;
    Ok(Some((response, head_len + used)))
}

/// The body of `response` at the front of `rest` (RFC 9112 section 6.3), and its length on
/// the wire. The tests send no HEAD requests, so only the status decides bodilessness.
fn frame_body(
    response: &Response,
    rest: &[u8],
    eof: bool,
) -> Result<Option<(Vec<u8>, usize)>, String> {
    if matches!(response.status, 100..=199 | 204 | 304) {
        return Ok(Some((Vec::new(), 0)));
    }
    if response.has_token("Transfer-Encoding", "chunked") {
        return decode_chunked(rest);
    }
    if let Some(value) = response.header("Content-Length") {
        let len: usize = value
            .trim()
            .parse()
            .map_err(|_| format!("Content-Length {value:?}"))?;
        return Ok((rest.len() >= len).then(|| (rest[..len].to_vec(), len)));
    }
    Ok(eof.then(|| (rest.to_vec(), rest.len())))
}

/// Decodes a chunked body at the front of `input`: `None` while it is incomplete.
fn decode_chunked(input: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut rest = input;
    let mut body = Vec::new();
    loop {
        let parsed = httparse::parse_chunk_size(rest).map_err(|_| "bad chunk size line")?;
        let Status::Complete((start, size)) = parsed else {
            return Ok(None);
        };
        let size = usize::try_from(size).map_err(|_| "chunk too large")?;
        if size == 0 {
            // The last chunk: skip the (normally empty) trailer section up to its blank line.
            let after = &rest[start..];
            let end = if after.starts_with(b"\r\n") {
                2
            } else {
                let blank = after.windows(4).position(|w| w == b"\r\n\r\n");
                let Some(blank) = blank else { return Ok(None) };
                blank + 4
            };
            return Ok(Some((body, input.len() - rest.len() + start + end)));
        }
        if rest.len() < start + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}

#[test]
fn parses_pipelined_and_chunked_responses() {
    let wire = b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n\
        HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
        HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let (first, used) = parse_response(wire, false).unwrap().expect("complete");
    assert_eq!((first.status, first.body.len()), (204, 0));
    let (second, used2) = parse_response(&wire[used..], false)
        .unwrap()
        .expect("complete");
    assert_eq!((second.status, second.text().as_str()), (200, "abcde"));
    let (third, _) = parse_response(&wire[used + used2..], false)
        .unwrap()
        .expect("complete");
    assert_eq!((third.status, third.text().as_str()), (201, "ok"));
    assert!(
        parse_response(&wire[used..used + 30], false)
            .unwrap()
            .is_none()
    );
}

#[test]
fn reads_proc_net_tcp_rows() {
    let table = "  sl  local_address rem_address   st tx_queue rx_queue\n   \
        0: 0100007F:9C40 0100007F:D431 01 00000000:0000001A 00:00000000 00000000";
    let server: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let client: SocketAddr = "127.0.0.1:54321".parse().unwrap();
    if cfg!(target_endian = "little") {
        assert_eq!(tcp_queues(table, server, client), Some((0, 26)));
    }
    assert_eq!(tcp_queues(table, client, server), None);
}
