//! Parsing a request head: request line and header fields, up to the empty line.
//!
//! Owns: [`parse_head`], [`RequestHead`] and [`BodyFraming`]. Does not own: reading from
//! the socket or buffering (the worker), the body (the worker, with
//! [`ChunkedDecoder`](super::ChunkedDecoder) for chunked bodies), or what the fields mean
//! for framing (framing.rs) and the request-target (target.rs).
//!
//! # The order of checks, and why
//!
//! `parse_head` is called on everything buffered so far, again after every read, so it
//! must say "need more" cheaply and reject as early as a limit is broken, while giving
//! exactly the same answer whether the head arrived in one read or in many.
//!
//! 1. **Scan the lines** (`scan`), byte by byte, before anything is parsed: skip a few
//!    empty lines (RFC 9112 §2.2), then find each CRLF. A bare LF, a lone CR or a control
//!    byte is a 400; a request line longer than the limit is a 414 and a field line
//!    longer than its limit, or one field too many, is a 431, all decided on the first
//!    byte that breaks the rule, even if the line is not complete yet. A line starting
//!    with whitespace is obs-fold (RFC 9112 §5.2): 400. The method's bytes are checked
//!    as they arrive too, so a TLS handshake or binary junk is refused on its first
//!    non-token byte rather than after a full request line. Nothing else is looked at until
//!    the empty line that ends the head has arrived. Because this pass only ever decides
//!    on bytes it has seen, in order, a verdict on a prefix is the verdict on the whole.
//! 2. **The request line** (RFC 9112 §3), parsed here rather than by httparse, which
//!    cannot tell `HTTP/1.2` (serve as 1.1) from `HTTP/2.0` (505) from `HTTP/1.1.1` (400),
//!    and accepts non-ASCII targets: exactly `method SP target SP version`, the version
//!    first (so the HTTP/2 preface `PRI * HTTP/2.0` gets 505), then the method token,
//!    then the target and its form (target.rs; CONNECT is refused there with 501).
//! 3. **The field lines**, split by httparse (strict default config: no whitespace before
//!    the colon, names must be tokens), into spans of one owned copy of the head, in
//!    buffers a connection reuses from request to request: nothing allocated per field,
//!    and in the steady state nothing per request.
//! 4. **What the fields mean** (framing.rs): Host, then body framing (Content-Length,
//!    Transfer-Encoding, 413), then Expect (417).
//!
//! Every error means "answer and close"; nothing here tries to find where the next
//! request starts after a bad one.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

use super::error::{HttpError, bad_request, fields_too_large, not_implemented, uri_too_long};
use super::framing::{self, Semantics};
use super::limits::{Limits, MAX_LEADING_EMPTY_LINES};
use super::request::Version;
use super::syntax::{self, LineError};
use super::target::{self, TargetParts};

/// How the body of a request is delimited (RFC 9112 §6.3).
///
/// Decided from the head alone, and only when it is unambiguous: a request that could be
/// read two ways (Content-Length with Transfer-Encoding, two different lengths, chunked
/// not last) never gets this far.
///
/// # Examples
///
/// ```
/// use br_serve::http::{BodyFraming, Limits, parse_head};
///
/// let framing = |raw: &[u8]| parse_head(raw, &Limits::default()).unwrap().unwrap().framing();
/// assert_eq!(framing(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), BodyFraming::Empty);
/// assert_eq!(
///     framing(b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n"),
///     BodyFraming::Length(42)
/// );
/// assert_eq!(
///     framing(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
///     BodyFraming::Chunked
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: neither Content-Length nor Transfer-Encoding, or `Content-Length: 0`.
    Empty,
    /// Exactly this many body bytes follow the head; never 0, never above the
    /// [`Limits::max_body`] given to [`parse_head`].
    Length(u64),
    /// A chunked body follows the head; decode it with a
    /// [`ChunkedDecoder`](super::ChunkedDecoder).
    Chunked,
}

/// A byte range of the owned head. u32 halves the size of the span list; a head never
/// gets near 4 GiB because the limits stop it long before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Result<Span, HttpError> {
        match (u32::try_from(start), u32::try_from(end)) {
            (Ok(start), Ok(end)) if start <= end => Ok(Span { start, end }),
            _ => Err(fields_too_large("request head too large")),
        }
    }

    fn get(self, bytes: &[u8]) -> &[u8] {
        bytes
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// A span of the head's text; slicing a `str` checks two char boundaries, where
    /// converting bytes would validate every byte again. The fallback is never taken
    /// (spans are made on ASCII) but keeps this free of `unwrap`.
    fn str(self, text: &str) -> &str {
        text.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// One header field line: where its name is (in the head's text) and where its value,
/// without OWS, is (in the head's bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    name: Span,
    value: Span,
}

/// The buffers a head is copied into. A connection hands them back after each request
/// ([`RequestHead::into_buffers`]) and the next head reuses them, so a keep-alive
/// connection allocates nothing to parse its heads.
#[derive(Debug, Default)]
pub(crate) struct HeadBuffers {
    text: String,
    bytes: Vec<u8>,
    fields: Vec<Field>,
    /// How far the scan of a head still incomplete got (see [`Progress`]).
    progress: Option<Progress>,
}

/// How far `scan` got through a head that is still incomplete: its field lines before
/// `pos` are valid and number `fields`, behind a request line ending at `line_end`.
/// Kept between reads, so a head that arrives in many small pieces is scanned once
/// rather than once per piece, which would cost time quadratic in its size (an 800 kB
/// head within the default limits, sent 200 bytes a millisecond, took 0.57 s of CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    line_end: usize,
    line: Line,
    pos: usize,
    fields: usize,
}

impl HeadBuffers {
    /// Buffers grown past this by an unusually large head are dropped rather than kept
    /// for the life of an idle connection.
    const KEEP: usize = 4096;

    fn clear(&mut self) {
        self.text.clear();
        self.bytes.clear();
        self.fields.clear();
        self.progress = None;
    }
}

/// A parsed, validated request head.
///
/// Holds one owned copy of the head's bytes, and its ASCII parts (the request line and
/// the field names, checked once while parsing) as text, with spans into both. In a
/// worker these buffers are reused from request to request.
///
/// Made by [`parse_head`]; a handler sees it inside a [`Request`](super::Request), which
/// repeats most of these accessors. What only the head has is for whoever reads the
/// body: [`framing`](Self::framing), [`expects_continue`](Self::expects_continue) and
/// [`len`](Self::len).
///
/// # Examples
///
/// ```
/// use br_serve::http::{BodyFraming, Limits, parse_head};
///
/// let buf = b"PUT /files/a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\
///             Expect: 100-continue\r\n\r\nhello";
/// let head = parse_head(buf, &Limits::default())?.expect("a complete head");
///
/// assert_eq!((head.method(), head.path(), head.query()), ("PUT", "/files/a.txt", None));
/// assert_eq!(head.framing(), BodyFraming::Length(5));
/// assert!(head.expects_continue()); // send CONTINUE_100 before waiting for the body
/// assert_eq!(&buf[head.len()..], b"hello"); // the body starts where the head ends
/// assert_eq!(head.as_bytes(), &buf[..head.len()]);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The request line, then every field name: what the `&str` accessors return.
    text: String,
    /// The head exactly as received, leading empty lines and the final CRLF included.
    bytes: Vec<u8>,
    /// Method, target, path and query are spans of `text`.
    method: Span,
    target: Span,
    /// The path part of the target; empty means "/" (absolute-form without a path).
    path: Span,
    query: Option<Span>,
    fields: Vec<Field>,
    version: Version,
    // What the framing rules decided, kept flat rather than as one `Semantics`: its
    // padding would take the head past 128 bytes, the most the compiler moves with
    // inline stores rather than a `memcpy` call.
    framing: BodyFraming,
    keep_alive: bool,
    expects_continue: bool,
    /// The client's address, recorded by the worker ([`RequestHead::peer_addr`]); none
    /// from the parser, which knows no connection. It takes the head past the 128 bytes
    /// above (to 160), so that `before_body` sees whom a request is from: the `Request`
    /// holding the head keeps no address of its own, and the cost is the moves of a bare
    /// head (callgrind, `ab -k` hello: one more `memcpy` call, 7,212 -> 7,253
    /// instructions a request).
    peer: Option<SocketAddr>,
}

impl RequestHead {
    /// Bytes of input the head occupied, counting any empty lines skipped before the
    /// request line: the body (or the next request) starts here.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let limits = Limits::default();
    /// // An empty line before the request is skipped, but is part of the head's bytes.
    /// let buf = b"\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    /// let first = parse_head(buf, &limits)?.expect("a complete head");
    /// assert_eq!(first.len(), 30);
    /// // The pipelined request follows at `buf[first.len()..]`.
    /// let second = parse_head(&buf[first.len()..], &limits)?.expect("a complete head");
    /// assert_eq!((first.path(), second.path()), ("/a", "/b"));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a head has at least a request line. Here because `len` is.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// // Even the shortest head (HTTP/1.0, no fields) is 18 bytes.
    /// let head = parse_head(b"GET / HTTP/1.0\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// assert_eq!(head.len(), 18);
    /// assert!(!head.is_empty());
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The method, case as sent (RFC 9110 §9.1: methods are case-sensitive).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let method = |raw: &[u8]| {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     head.method().to_owned()
    /// };
    /// // Any token is a method: unknown ones are the application's to refuse (405 or 501).
    /// assert_eq!(method(b"PURGE /cache HTTP/1.1\r\nHost: h\r\n\r\n"), "PURGE");
    /// assert_eq!(method(b"Get / HTTP/1.1\r\nHost: h\r\n\r\n"), "Get"); // not upper-cased
    /// ```
    pub fn method(&self) -> &str {
        self.method.str(&self.text)
    }

    /// The request-target as sent (RFC 9112 §3.2).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let raw = b"GET HTTP://example.com:8080/a%2Fb?x HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// // Scheme, authority, escapes and query as sent; `path` is only the path.
    /// assert_eq!(head.target(), "HTTP://example.com:8080/a%2Fb?x");
    /// assert_eq!(head.path(), "/a%2Fb");
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn target(&self) -> &str {
        self.target.str(&self.text)
    }

    /// The path part of the target: `/p` for `/p?q` and for `http://h/p?q`, `/` for
    /// `http://h`, `*` for the asterisk-form. Not percent-decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let path = |raw: &[u8]| {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     head.path().to_owned()
    /// };
    /// assert_eq!(path(b"GET /p?q HTTP/1.1\r\nHost: h\r\n\r\n"), "/p");
    /// assert_eq!(path(b"GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n"), "/p");
    /// assert_eq!(path(b"GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n"), "/");
    /// assert_eq!(path(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), "*");
    /// ```
    pub fn path(&self) -> &str {
        match self.path.str(&self.text) {
            "" => "/",
            path => path,
        }
    }

    /// The query after the first '?', without it; `None` when there is no '?'.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let query = |raw: &[u8]| {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     head.query().map(str::to_owned)
    /// };
    /// assert_eq!(query(b"GET /s HTTP/1.1\r\nHost: h\r\n\r\n"), None);
    /// assert_eq!(query(b"GET /s? HTTP/1.1\r\nHost: h\r\n\r\n").as_deref(), Some(""));
    /// // Not decoded, and a lone '%' is allowed in the query (not in the path).
    /// let raw = b"GET /s?off=50% HTTP/1.1\r\nHost: h\r\n\r\n";
    /// assert_eq!(query(raw).as_deref(), Some("off=50%"));
    /// ```
    pub fn query(&self) -> Option<&str> {
        self.query.map(|q| q.str(&self.text))
    }

    /// The protocol version; `HTTP/1.x` with x > 1 is reported as [`Version::Http11`]
    /// (RFC 9110 §2.5).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, Version, parse_head};
    ///
    /// let limits = Limits::default();
    /// let old = parse_head(b"GET / HTTP/1.0\r\n\r\n", &limits)?.expect("a complete head");
    /// assert_eq!(old.version(), Version::Http10); // and it needs no Host
    /// let newer = parse_head(b"GET / HTTP/1.5\r\nHost: h\r\n\r\n", &limits)?.expect("complete");
    /// assert_eq!(newer.version(), Version::Http11);
    /// // Another major version is refused: 505.
    /// let two = parse_head(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", &limits);
    /// assert_eq!(two.map_err(|e| e.status()), Err(505));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn version(&self) -> Version {
        self.version
    }

    /// How the body is delimited.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{BodyFraming, Limits, parse_head};
    ///
    /// let framing = |raw: &[u8]| parse_head(raw, &Limits::default()).unwrap().unwrap().framing();
    /// let post = |field: &str| format!("POST / HTTP/1.1\r\nHost: h\r\n{field}\r\n\r\n");
    /// assert_eq!(framing(post("Content-Length: 3").as_bytes()), BodyFraming::Length(3));
    /// assert_eq!(framing(post("Transfer-Encoding: chunked").as_bytes()), BodyFraming::Chunked);
    /// // No framing field, or a length of 0: no body to read.
    /// assert_eq!(framing(post("X-None: 1").as_bytes()), BodyFraming::Empty);
    /// assert_eq!(framing(post("Content-Length: 0").as_bytes()), BodyFraming::Empty);
    /// ```
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the connection persists after this request (RFC 9112 §9.3): HTTP/1.1
    /// unless a Connection option is `close`, HTTP/1.0 only with `keep-alive`.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let keep = |raw: &[u8]| parse_head(raw, &Limits::default()).unwrap().unwrap().keep_alive();
    /// assert!(keep(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    /// assert!(!keep(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\n\r\n"));
    /// assert!(!keep(b"GET / HTTP/1.0\r\n\r\n"));
    /// assert!(keep(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    /// // `close` wins when a client sends both.
    /// assert!(!keep(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
    /// ```
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether the worker must send [`CONTINUE_100`](super::CONTINUE_100) before reading
    /// the body: `Expect: 100-continue` (any case) on an HTTP/1.1 request that has a
    /// body. False on HTTP/1.0, where the expectation MUST be ignored (RFC 9110 §10.1.1),
    /// and when there is no body to wait for (the server MAY omit 100 then).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let expects = |raw: String| {
    ///     let head = parse_head(raw.as_bytes(), &Limits::default()).unwrap();
    ///     head.expect("a complete head").expects_continue()
    /// };
    /// let put = |version: &str, length: u32| {
    ///     format!("PUT /f {version}\r\nHost: h\r\nExpect: 100-Continue\r\n\
    ///              Content-Length: {length}\r\n\r\n")
    /// };
    /// assert!(expects(put("HTTP/1.1", 5)));
    /// assert!(!expects(put("HTTP/1.1", 0))); // no body to wait for
    /// assert!(!expects(put("HTTP/1.0", 5))); // ignored in HTTP/1.0
    /// ```
    pub fn expects_continue(&self) -> bool {
        self.expects_continue
    }

    /// Whether the method is `HEAD` (exact case), whose response carries no body.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let is_head = |raw: &[u8]| parse_head(raw, &Limits::default()).unwrap().unwrap().is_head();
    /// assert!(is_head(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"));
    /// assert!(!is_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    /// assert!(!is_head(b"Head / HTTP/1.1\r\nHost: h\r\n\r\n")); // methods are case-sensitive
    /// ```
    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }

    /// The value of the first field called `name` (case-insensitive), without OWS.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let raw = b"GET / HTTP/1.1\r\nHost: h\r\nCookie:  a=1 \r\ncookie: b=2\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// // Any case matches, the first occurrence wins, spaces around the value are dropped.
    /// assert_eq!(head.header("COOKIE"), Some(&b"a=1"[..]));
    /// assert_eq!(head.header("x-missing"), None);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Like [`header`](Self::header), if the value is valid UTF-8; what
    /// [`Request::header_str`](super::Request::header_str) gives a handler, here for
    /// [`Handler::before_body`](crate::Handler::before_body).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let raw = b"PUT /f HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t0k\r\n\
    ///             Content-Length: 3\r\nX-Latin1: caf\xe9\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// assert_eq!(head.header_str("authorization"), Some("Bearer t0k"));
    /// assert_eq!(head.header_str("x-latin1"), None); // not UTF-8
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// A list-valued field whole, its lines joined by `", "`; see
    /// [`Request::header_list`](super::Request::header_list).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let raw = b"GET / HTTP/1.1\r\nHost: h\r\nAccept: a/b\r\naccept: c/d\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// assert_eq!(head.header_list("Accept").as_deref(), Some("a/b, c/d"));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn header_list(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        let mut lines = self
            .headers()
            .filter(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| std::str::from_utf8(value).unwrap_or(""));
        let first = lines.next()?;
        match lines.next() {
            None => Some(first.into()),
            Some(second) => {
                let rest = std::iter::once(second).chain(lines);
                Some(
                    rest.fold(first.to_owned(), |all, line| all + ", " + line)
                        .into(),
                )
            }
        }
    }

    /// The first value of the query parameter `name`, as sent; see
    /// [`Request::query_param`](super::Request::query_param).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let raw = b"PUT /up?token=abc&n=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// assert_eq!(head.query_param("token"), Some("abc"));
    /// assert_eq!(head.query_param("missing"), None);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The host the request is for, from an absolute-form target or else the Host field;
    /// see [`Request::host`](super::Request::host).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let raw = b"PUT http://a.example/f HTTP/1.1\r\nHost: b.example\r\nContent-Length: 1\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// assert_eq!(head.host(), Some("a.example"));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn host(&self) -> Option<&str> {
        super::target::absolute_authority(self.target())
            .or_else(|| self.header_str("host"))
            .filter(|host| !host.is_empty())
    }

    /// Every field as (name as sent, value without OWS), in the order received.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let raw = b"GET / HTTP/1.1\r\nhost: h\r\nAccept: a/b\r\nACCEPT:\tc/d\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let names: Vec<&str> = head.headers().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["host", "Accept", "ACCEPT"]);
    /// let accepts = head.headers().filter(|(n, _)| n.eq_ignore_ascii_case("accept")).count();
    /// assert_eq!(accepts, 2); // repeated fields are not merged
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields
            .iter()
            .map(|f| (f.name.str(&self.text), f.value.get(&self.bytes)))
    }

    /// Empties the head into its buffers, for the next head to reuse.
    pub(crate) fn into_buffers(self) -> HeadBuffers {
        let mut buffers = HeadBuffers {
            text: self.text,
            bytes: self.bytes,
            fields: self.fields,
            progress: None,
        };
        if buffers.bytes.capacity() > HeadBuffers::KEEP {
            return HeadBuffers::default();
        }
        buffers.clear();
        buffers
    }

    /// The raw bytes of the head, as received.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let buf = b"\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
    /// let head = parse_head(buf, &Limits::default())?.expect("a complete head");
    /// // Everything up to the final CRLF, leading empty line included; no body.
    /// assert_eq!(head.as_bytes(), &buf[..buf.len() - 2]);
    /// assert!(head.as_bytes().starts_with(b"\r\nPOST /"));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The address of the client that sent the request: the one
    /// [`Request::peer_addr`](super::Request::peer_addr) gives
    /// [`Handler::handle`](crate::Handler::handle), here for
    /// [`Handler::before_body`](crate::Handler::before_body), so that an upload can be
    /// refused by who sends it (an allow-list, a per-client quota) before it is read.
    /// With `--proxy-protocol`, the client the balancer's PROXY header names, or the
    /// balancer where the header names none, as for the `Request`.
    ///
    /// `None` for a client on a Unix socket (without `--proxy-protocol`), and for a head
    /// made by [`parse_head`], which knows no connection, until
    /// [`with_peer_addr`](Self::with_peer_addr) gives it one.
    ///
    /// # Examples
    ///
    /// Uploads taken from one network only, refused on their head from anywhere else:
    ///
    /// ```
    /// use std::net::IpAddr;
    ///
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Handler, Request, RequestHead, Response};
    ///
    /// struct OfficeUploads;
    ///
    /// impl Handler for OfficeUploads {
    ///     fn handle(&mut self, req: &Request) -> Response {
    ///         Response::text(200, format!("{} bytes\n", req.body().len()))
    ///     }
    ///
    ///     fn before_body(&mut self, head: &RequestHead) -> Option<Response> {
    ///         let office = |ip| matches!(ip, IpAddr::V4(v4) if v4.octets()[..3] == [192, 0, 2]);
    ///         match head.peer_addr() {
    ///             Some(peer) if office(peer.ip()) => None,
    ///             _ => Some(Response::text(403, "uploads from the office only\n")),
    ///         }
    ///     }
    /// }
    ///
    /// let raw = b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// assert_eq!(head.peer_addr(), None); // parsed from bytes: no connection
    /// let refusal = |from: &str| {
    ///     let head = head.clone().with_peer_addr(from.parse().ok());
    ///     OfficeUploads.before_body(&head).map(|refused| refused.status())
    /// };
    /// assert_eq!(refusal("192.0.2.7:50000"), None); // read, then handled
    /// assert_eq!(refusal("203.0.113.9:50000"), Some(403));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The head as sent by `peer` ([`peer_addr`](Self::peer_addr)). The worker records
    /// the connection's peer so; a test sets one to see how
    /// [`Handler::before_body`](crate::Handler::before_body) answers one client or
    /// another. [`Request::new`](super::Request::new) gives its head the peer it is
    /// given, so that the two never differ.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let head = parse_head(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head")
    ///     .with_peer_addr("[2001:db8::7]:40000".parse().ok());
    /// assert_eq!(head.peer_addr().map(|a| a.to_string()).as_deref(), Some("[2001:db8::7]:40000"));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn with_peer_addr(mut self, peer: Option<SocketAddr>) -> RequestHead {
        self.peer = peer;
        self
    }
}

/// What a log or a test failure shows of a head: method, target, version, the fields as
/// (name, value) with credentials' values (`Authorization`, `Proxy-Authorization`,
/// `Cookie`) as `<redacted>`, so a head logged with `{:?}` does not leak them, and what
/// the framing rules decided. The raw bytes are not repeated.
///
/// # Examples
///
/// ```
/// use br_serve::http::{Limits, parse_head};
///
/// let raw = b"GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer s3cret\r\n\r\n";
/// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
/// let shown = format!("{head:?}");
/// assert!(shown.contains(r#"("Host", "h")"#));
/// assert!(shown.contains(r#"("Authorization", "<redacted>")"#));
/// assert!(!shown.contains("s3cret"));
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = self
            .headers()
            .map(|(name, value)| (name, shown_value(name, value)));
        f.debug_struct("RequestHead")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &fields.collect::<Vec<_>>())
            .field("framing", &self.framing)
            .field("keep_alive", &self.keep_alive)
            .field("expects_continue", &self.expects_continue)
            .field("peer", &self.peer)
            .finish()
    }
}

/// Fields whose values are credentials, kept out of `Debug` output.
const REDACTED_FIELDS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

fn shown_value<'v>(name: &str, value: &'v [u8]) -> Cow<'v, str> {
    match REDACTED_FIELDS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        true => Cow::Borrowed("<redacted>"),
        false => String::from_utf8_lossy(value),
    }
}

/// Parses the head at the start of `buf`.
///
/// `Ok(None)`: need more bytes. `Ok(Some(head))`: a complete head; the body, or the next
/// request, starts at `head.len()`. `Err`: reject with `err.status()`, then close; never
/// resync. Limits are enforced on partial input too: a request line over
/// `limits.request_line` gets 414 as soon as that many bytes are buffered without a
/// CRLF, a field line over `limits.field_size` or one field too many gets 431 at once.
///
/// Stateless: each call scans `buf` from its start, so it costs O(`buf.len()`), bounded
/// by [`Limits::max_head_bytes`]. A verdict reached on a prefix of the input is the one
/// the whole input gets, so calling it after every read is exact.
///
/// # Examples
///
/// Called again after every read, as the worker does:
///
/// ```
/// use br_serve::http::{Limits, parse_head};
///
/// let limits = Limits::default();
/// let mut buf = b"GET /a?x=1 HTTP/1.1\r\nHo".to_vec();
/// assert_eq!(parse_head(&buf, &limits)?, None); // need more
///
/// buf.extend_from_slice(b"st: h\r\n\r\nGET /b HTTP/1.1\r\n");
/// let head = parse_head(&buf, &limits)?.expect("a complete head");
/// assert_eq!((head.method(), head.path(), head.query()), ("GET", "/a", Some("x=1")));
/// assert_eq!(head.header("host"), Some(&b"h"[..]));
/// // A pipelined request follows; it is parsed from where this head ends.
/// assert_eq!(parse_head(&buf[head.len()..], &limits)?, None);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
///
/// What is not strictly well-formed is refused, with the status to answer:
///
/// ```
/// use br_serve::http::{Limits, parse_head};
///
/// let status = |raw: &[u8]| parse_head(raw, &Limits::default()).map_err(|e| e.status());
/// assert_eq!(status(b"GET / HTTP/1.1\nHost: h\n\n"), Err(400)); // bare LF
/// assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), Err(400)); // HTTP/1.1 without Host
/// assert_eq!(status(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  b\r\n\r\n"), Err(400)); // obs-fold
/// assert_eq!(status(b"PRI * HTTP/2.0\r\n\r\n"), Err(505)); // the HTTP/2 preface
/// assert_eq!(status(b"\x16\x03\x01"), Err(400)); // TLS, refused on its first byte
/// ```
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HttpError> {
    parse_head_into(buf, limits, &mut HeadBuffers::default())
}

/// [`parse_head`], copying a complete head into `spare`'s buffers (taken from it) rather
/// than into new ones. While the head is incomplete, `spare` remembers how far it was
/// scanned: call again with the same buffers and the same head, grown, from its first
/// byte (as a connection does), and only what is new is scanned.
pub(crate) fn parse_head_into(
    buf: &[u8],
    limits: &Limits,
    spare: &mut HeadBuffers,
) -> Result<Option<RequestHead>, HttpError> {
    let Some((layout, line)) = scan(buf, limits, &mut spare.progress)? else {
        return Ok(None);
    };
    let head = buf.get(..layout.len).ok_or(INCONSISTENT)?;
    let mut buffers = std::mem::take(spare);
    buffers.clear();
    // ASCII by now (a token, VCHARs, a version), so this validates once for good.
    let text = head.get(layout.start..layout.line_end).unwrap_or_default();
    buffers
        .text
        .push_str(std::str::from_utf8(text).map_err(|_| INCONSISTENT)?);
    split_fields(head, &layout, &mut buffers)?;
    let pairs = buffers
        .fields
        .iter()
        .map(|f| (f.name.str(&buffers.text).as_bytes(), f.value.get(head)));
    let semantics = framing::interpret(pairs, line.version, limits)?;
    buffers.bytes.extend_from_slice(head);
    assemble(buffers, line, semantics).map(Some)
}

/// Cannot happen: the scan and httparse disagree about the head. Reported as a 400
/// rather than trusted.
const INCONSISTENT: HttpError = bad_request("inconsistent request head");

/// Where the lines of a complete head are, as found by `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// First byte of the request line, after the ignored empty lines.
    start: usize,
    /// The CR ending the request line.
    line_end: usize,
    /// Bytes of the whole head, final CRLF included.
    len: usize,
    /// Number of field lines.
    fields: usize,
}

impl Layout {
    fn fields_start(&self) -> usize {
        self.line_end + 2
    }
}

/// Step 1: finds the lines of the head, enforcing line endings, byte classes and limits,
/// and judges the request line as soon as it is whole (step 2), before any field line:
/// a bad one is refused then, not when a head that may never end does (HTTP/0.9's
/// `GET /` waits for no empty line), and the verdict on a head does not depend on how
/// it arrived. On an incomplete head, leaves in `progress` where the next call may
/// resume.
fn scan(
    buf: &[u8],
    limits: &Limits,
    progress: &mut Option<Progress>,
) -> Result<Option<(Layout, Line)>, HttpError> {
    let Some(start) = skip_empty_lines(buf)? else {
        return Ok(None);
    };
    let Some(line_end) = request_line_end(buf, start, limits)? else {
        return Ok(None);
    };
    // Lines already checked in an earlier call on this same head are not again.
    let resume = progress
        .take()
        .filter(|p| p.line_end == line_end && p.pos <= buf.len());
    let (line, pos, fields) = match resume {
        Some(p) => (p.line, p.pos, p.fields),
        None => (request_line(buf, start, line_end)?, line_end + 2, 0),
    };
    let (len, fields) = match scan_fields(buf, pos, fields, limits)? {
        Scanned::Complete { len, fields } => (len, fields),
        Scanned::Incomplete { pos, fields } => {
            *progress = Some(Progress {
                line_end,
                line,
                pos,
                fields,
            });
            return Ok(None);
        }
    };
    let layout = Layout {
        start,
        line_end,
        len,
        fields,
    };
    Ok(Some((layout, line)))
}

/// The CR ending the request line at `start`, once it has arrived; a method that is not
/// a token is refused on its first bad byte, a line over the limit is a 414.
fn request_line_end(buf: &[u8], start: usize, limits: &Limits) -> Result<Option<usize>, HttpError> {
    check_method_prefix(buf, start, limits.request_line)?;
    match syntax::line_end(buf, start, limits.request_line) {
        Ok(found) => Ok(found),
        Err(LineError::TooLong) => Err(uri_too_long("request line too long")),
        Err(e) => Err(bad_request(e.message())),
    }
}

/// What [`scan_fields`] found.
enum Scanned {
    /// The empty line ends the head: its length, and the number of field lines.
    Complete { len: usize, fields: usize },
    /// The head goes on past the buffer; the lines before `pos` were complete and valid.
    Incomplete { pos: usize, fields: usize },
}

/// The field lines from `pos` to the empty line, `fields` of them counted before `pos`.
fn scan_fields(
    buf: &[u8],
    mut pos: usize,
    mut fields: usize,
    limits: &Limits,
) -> Result<Scanned, HttpError> {
    loop {
        let Some(&first) = buf.get(pos) else {
            return Ok(Scanned::Incomplete { pos, fields });
        };
        // RFC 9112 §5.2: obs-fold MUST be rejected (or replaced) by a server; RFC 9112
        // §2.2: whitespace before the first field line MUST be rejected (or its line
        // dropped). We reject both: dropping or unfolding changes what a proxy saw.
        if syntax::is_ows(first) {
            return Err(bad_request(
                "obsolete line folding or whitespace before a field",
            ));
        }
        // Counted on the first byte of a field line, so one field too many is a 431
        // before that line is complete.
        let field = first != b'\r' && first != b'\n';
        if field && fields + 1 > limits.fields {
            return Err(fields_too_large("too many header fields"));
        }
        match syntax::line_end(buf, pos, limits.field_size) {
            Ok(Some(cr)) if cr == pos => {
                return Ok(Scanned::Complete {
                    len: cr + 2,
                    fields,
                });
            }
            Ok(Some(cr)) => {
                pos = cr + 2;
                fields += usize::from(field);
            }
            Ok(None) => return Ok(Scanned::Incomplete { pos, fields }),
            Err(LineError::TooLong) => return Err(fields_too_large("header field too large")),
            Err(e) => return Err(bad_request(e.message())),
        }
    }
}

/// RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD
/// ignore at least one empty line (CRLF) received prior to the request-line". We ignore
/// up to [`MAX_LEADING_EMPTY_LINES`]. Returns where the request line starts.
fn skip_empty_lines(buf: &[u8]) -> Result<Option<usize>, HttpError> {
    let mut pos = 0;
    let mut skipped = 0;
    loop {
        match (buf.get(pos), buf.get(pos + 1)) {
            (None, _) | (Some(b'\r'), None) => return Ok(None),
            (Some(b'\r'), Some(b'\n')) => {
                skipped += 1;
                if skipped > MAX_LEADING_EMPTY_LINES {
                    return Err(bad_request("too many empty lines before the request line"));
                }
                pos += 2;
            }
            (Some(b'\r'), Some(_)) => return Err(bad_request(LineError::LoneCr.message())),
            (Some(b'\n'), _) => return Err(bad_request(LineError::BareLf.message())),
            (Some(_), _) => return Ok(Some(pos)),
        }
    }
}

/// Rejects a request line whose method is not a token as soon as the offending byte
/// arrives, so garbage (a TLS ClientHello, a binary blob) is refused at once instead of
/// after `limits.request_line` bytes. Only the first `request_line + 1` bytes are looked
/// at: past them the line is too long (414), and that verdict must not depend on how
/// many bytes were buffered when we looked. A method that alone fills the line is
/// "longer than any that it implements": RFC 9112 §3 says 501, not 414 (no URI was sent).
fn check_method_prefix(buf: &[u8], start: usize, request_line: usize) -> Result<(), HttpError> {
    let line = buf.get(start..).unwrap_or_default();
    let window = line.get(..request_line.saturating_add(1)).unwrap_or(line);
    for (i, &b) in window.iter().enumerate() {
        if b == b' ' && i > 0 {
            return Ok(());
        }
        // RFC 9110 §9.1: method = token.
        if !syntax::is_tchar(b) {
            return Err(bad_request("invalid method"));
        }
    }
    if window.len() > request_line {
        return Err(not_implemented("method longer than the request line limit"));
    }
    Ok(())
}

/// The request line, split and checked; the spans are relative to the line's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    method: Span,
    target: Span,
    version: Version,
    parts: TargetParts,
}

/// Step 2: RFC 9112 §3, `request-line = method SP request-target SP HTTP-version`, with
/// exactly one SP between the parts (RFC 9112 §3 allows a lenient parser to split on
/// other whitespace; we do not, since tabs and runs of spaces are where parsers disagree).
fn request_line(buf: &[u8], start: usize, line_end: usize) -> Result<Line, HttpError> {
    let line = buf.get(start..line_end).unwrap_or_default();
    let (method, rest) = split_sp(line).ok_or(bad_request("malformed request line"))?;
    // HTTP/0.9's `GET /` has no version; we do not speak it.
    let (target, version) = split_sp(rest).ok_or(bad_request("missing HTTP version"))?;
    // `GET  / HTTP/1.1` would otherwise be named by what it breaks (the version is then
    // `/ HTTP/1.1`), not by what it is.
    if version.contains(&b' ') {
        return Err(bad_request(
            "more than two spaces in the request line (one goes between each part)",
        ));
    }
    let version = parse_version(version)?;
    // RFC 9110 §9.1: method = token. Case is kept: `get` is a method we do not know,
    // which is the application's to answer (405/501), not ours to upper-case.
    if !syntax::is_token(method) {
        return Err(bad_request("invalid method"));
    }
    if target.is_empty() {
        return Err(bad_request("empty request-target"));
    }
    let parts = target::analyse(method, target)?;
    let target_start = method.len() + 1;
    Ok(Line {
        method: Span::new(0, method.len())?,
        target: Span::new(target_start, target_start + target.len())?,
        version,
        parts,
    })
}

fn split_sp(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = bytes.iter().position(|&b| b == b' ')?;
    Some((bytes.get(..sp)?, bytes.get(sp + 1..)?))
}

/// RFC 9112 §2.3: `HTTP-version = "HTTP" "/" DIGIT "." DIGIT`, case-sensitive.
///
/// RFC 9110 §2.5: a server SHOULD answer a higher minor version of a major it supports as
/// the highest minor it supports, so 1.2 to 1.9 are served as 1.1. Another major is
/// well-formed but not ours: 505 (RFC 9110 §15.6.6). Anything else is malformed: 400.
fn parse_version(version: &[u8]) -> Result<Version, HttpError> {
    match version {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major == b'1' {
                Ok(Version::Http11)
            } else {
                Err(super::error::version_not_supported(
                    "HTTP version not supported",
                ))
            }
        }
        _ => Err(bad_request("malformed HTTP version")),
    }
}

/// httparse needs one initialized slot per field, and clearing a slot is a 32-byte store:
/// a fixed 64-slot array meant 2 KiB of stores on every request, more than parsing a short
/// head costs. So the slots come in two sizes, the small one for what API clients and
/// load generators send, and only a head with more fields than the big one uses the heap.
const SMALL_FIELDS: usize = 8;
const STACK_FIELDS: usize = 64;

/// Step 3: splits the field lines with httparse, whose strict default config rejects
/// whitespace before a colon and non-token names (RFC 9112 §5.1, RFC 9110 §5.1). Names
/// are appended to `buffers.text` and values located in `head`.
fn split_fields(head: &[u8], layout: &Layout, buffers: &mut HeadBuffers) -> Result<(), HttpError> {
    let n = layout.fields;
    if n <= SMALL_FIELDS {
        let mut slots = [httparse::EMPTY_HEADER; SMALL_FIELDS];
        let slots = slots.get_mut(..n).unwrap_or_default();
        split_into(head, layout, slots, buffers)
    } else if n <= STACK_FIELDS {
        let mut slots = [httparse::EMPTY_HEADER; STACK_FIELDS];
        let slots = slots.get_mut(..n).unwrap_or_default();
        split_into(head, layout, slots, buffers)
    } else {
        split_into(head, layout, &mut vec![httparse::EMPTY_HEADER; n], buffers)
    }
}

/// [`split_fields`] with the slots chosen: exactly one per field line.
fn split_into<'h>(
    head: &'h [u8],
    layout: &Layout,
    slots: &mut [httparse::Header<'h>],
    buffers: &mut HeadBuffers,
) -> Result<(), HttpError> {
    let section = head.get(layout.fields_start()..).unwrap_or_default();
    match httparse::parse_headers(section, slots) {
        Ok(httparse::Status::Complete((n, parsed)))
            if n == section.len() && parsed.len() == layout.fields =>
        {
            for h in parsed.iter() {
                let field = field_spans(head, h, &mut buffers.text)?;
                buffers.fields.push(field);
            }
            Ok(())
        }
        Ok(_) => Err(INCONSISTENT),
        Err(e) => Err(bad_request(httparse_message(e))),
    }
}

fn httparse_message(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid field name or whitespace before colon",
        httparse::Error::HeaderValue => "invalid field value",
        httparse::Error::NewLine => "invalid line ending",
        _ => "malformed header section",
    }
}

fn field_spans(
    head: &[u8],
    h: &httparse::Header<'_>,
    text: &mut String,
) -> Result<Field, HttpError> {
    let name_start = text.len();
    text.push_str(h.name);
    Ok(Field {
        name: Span::new(name_start, text.len())?,
        value: span_in(head, h.value)?,
    })
}

/// The span of `part`, a sub-slice of `base` handed back by httparse.
fn span_in(base: &[u8], part: &[u8]) -> Result<Span, HttpError> {
    let start = part
        .as_ptr()
        .addr()
        .checked_sub(base.as_ptr().addr())
        .ok_or(INCONSISTENT)?;
    let end = start
        .checked_add(part.len())
        .filter(|&e| e <= base.len())
        .ok_or(INCONSISTENT)?;
    Span::new(start, end)
}

/// Step 4 done: builds the owned head from the filled buffers.
fn assemble(
    buffers: HeadBuffers,
    line: Line,
    semantics: Semantics,
) -> Result<RequestHead, HttpError> {
    let base = line.target.start as usize;
    let (path_start, path_end) = line.parts.path;
    let query = match line.parts.query {
        Some((s, e)) => Some(Span::new(base + s, base + e)?),
        None => None,
    };
    Ok(RequestHead {
        text: buffers.text,
        bytes: buffers.bytes,
        method: line.method,
        target: line.target,
        path: Span::new(base + path_start, base + path_end)?,
        query,
        fields: buffers.fields,
        version: line.version,
        framing: semantics.framing,
        keep_alive: semantics.keep_alive,
        expects_continue: semantics.expects_continue,
        peer: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use BodyFraming::{Chunked, Empty, Length};

    /// See the comment on `RequestHead::framing`: a head moves inline up to 128 bytes,
    /// and would but for its peer's address (`RequestHead::peer`).
    #[test]
    fn head_moves_inline() {
        let peer = std::mem::size_of::<Option<SocketAddr>>();
        assert!(std::mem::size_of::<RequestHead>() <= 128 + peer);
    }

    /// What a table row expects of a complete head.
    #[derive(Debug, PartialEq, Eq)]
    struct Seen {
        len: usize,
        method: String,
        target: String,
        version: Version,
        framing: BodyFraming,
        keep_alive: bool,
        expects_continue: bool,
    }

    fn seen(
        len: usize,
        method: &str,
        target: &str,
        version: Version,
        framing: BodyFraming,
    ) -> Seen {
        let (method, target) = (method.to_owned(), target.to_owned());
        Seen {
            len,
            method,
            target,
            version,
            framing,
            keep_alive: true,
            expects_continue: false,
        }
    }

    fn parse(input: &[u8], limits: &Limits) -> Result<Option<Seen>, u16> {
        let head = parse_head(input, limits).map_err(|e| e.status())?;
        Ok(head.map(|h| Seen {
            len: h.len(),
            method: h.method().to_owned(),
            target: h.target().to_owned(),
            version: h.version(),
            framing: h.framing(),
            keep_alive: h.keep_alive(),
            expects_continue: h.expects_continue(),
        }))
    }

    const V10: Version = Version::Http10;
    const V11: Version = Version::Http11;

    /// A worker parses each head into the previous one's buffers: nothing of the old
    /// head (fields, text, bytes) may show through in the new one.
    #[test]
    fn reused_buffers_hold_only_the_new_head() {
        let limits = Limits::default();
        let mut spare = HeadBuffers::default();
        let first = b"POST /upload?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n";
        let head = parse_head_into(first, &limits, &mut spare)
            .unwrap()
            .unwrap();
        assert_eq!(head.headers().count(), 3);
        spare = head.into_buffers();
        let second = b"GET / HTTP/1.0\r\n\r\n";
        let head = parse_head_into(second, &limits, &mut spare)
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.method(), head.target(), head.query()),
            ("GET", "/", None)
        );
        assert_eq!(head.headers().count(), 0);
        assert_eq!(head.as_bytes(), second);
        assert_eq!(head.framing(), Empty);
        // The same head parsed into fresh buffers is equal in every part.
        assert_eq!(head, parse_head(second, &limits).unwrap().unwrap());
    }

    #[test]
    fn complete_heads() {
        let get = |len, target| seen(len, "GET", target, V11, Empty);
        let cases: Vec<(&[u8], Seen)> = vec![
            // The minimal HTTP/1.1 request (RFC 9112 §3, §3.2: Host required).
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", get(27, "/")),
            // len stops at the empty line: body and pipelined bytes are not the head's.
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n",
                get(27, "/"),
            ),
            // RFC 9112 §2.2: leading empty lines are skipped but counted in len.
            (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", get(31, "/")),
            // HTTP/1.0 needs no Host and is not persistent by default (RFC 9112 §9.3).
            (
                b"GET / HTTP/1.0\r\n\r\n",
                Seen {
                    keep_alive: false,
                    ..seen(18, "GET", "/", V10, Empty)
                },
            ),
            // RFC 9110 §2.5: 1.x with x > 1 is served as 1.1.
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", get(27, "/")),
            (b"GET / HTTP/1.9\r\nHost: a\r\n\r\n", get(27, "/")),
            // RFC 9110 §9.1: methods are case-sensitive and kept as sent.
            (
                b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
                seen(27, "get", "/", V11, Empty),
            ),
            (
                b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",
                seen(30, "PURGE", "/x", V11, Empty),
            ),
            // RFC 9112 §3.2.2 absolute-form and §3.2.4 asterisk-form.
            (
                b"GET http://a/p HTTP/1.1\r\nHost: a\r\n\r\n",
                get(36, "http://a/p"),
            ),
            (
                b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
                seen(31, "OPTIONS", "*", V11, Empty),
            ),
            // Body framing from framing.rs: CL and chunked.
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                seen(47, "POST", "/", V11, Length(5)),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                seen(56, "POST", "/", V11, Chunked),
            ),
            // Expect: 100-continue with a body.
            (
                b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
                Seen {
                    expects_continue: true,
                    ..seen(68, "PUT", "/", V11, Length(1))
                },
            ),
            // Connection: close.
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                Seen {
                    keep_alive: false,
                    ..get(46, "/")
                },
            ),
            // obs-text (0x80-0xFF) is allowed in values (RFC 9110 §5.5); HTAB too.
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: \xff\tb\r\n\r\n",
                get(35, "/"),
            ),
            // An empty value is fine.
            (b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n", get(31, "/")),
        ];
        for (input, want) in cases {
            let got = parse(input, &Limits::default());
            assert_eq!(got, Ok(Some(want)), "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn partial_heads_need_more() {
        let cases: &[&[u8]] = &[
            // Nothing yet, or only (part of) an empty line.
            b"",
            b"\r",
            b"\r\n",
            // Inside the request line, including a CR whose LF has not arrived.
            b"GET / HTT",
            b"GET / HTTP/1.1\r",
            // Inside the fields, and just before the final LF.
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r",
            // An invalid version is not judged before its line is complete.
            b"GET / HTTP/9",
        ];
        for input in cases {
            assert_eq!(
                parse(input, &Limits::default()),
                Ok(None),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// The refusal names what is wrong with the request line, not what it breaks.
    #[test]
    fn request_line_refusals_say_why() {
        let cases: &[(&[u8], &str)] = &[
            (b"GET  / HTTP/1.1\r\n", "more than two spaces"),
            (b"GET /a b HTTP/1.1\r\n", "more than two spaces"),
            (b"GET / HTTP/1.1 \r\n", "more than two spaces"),
            (b"GET  HTTP/1.1\r\n", "empty request-target"),
            (b"GET /\r\n", "missing HTTP version"),
            (b"GET / HTTP/1.x\r\n", "malformed HTTP version"),
        ];
        for (input, want) in cases {
            let got = parse_head(input, &Limits::default()).map(|_| ());
            assert!(
                got.as_ref().is_err_and(|e| e.message().contains(want)),
                "{:?}: {got:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn rejected_heads() {
        let cases: &[(&[u8], u16)] = &[
            // RFC 9112 §2.2: bare LF anywhere (our choice), lone CR anywhere.
            (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
            (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
            (b"\rGET / HTTP/1.1\r\n", 400),
            // RFC 9112 §2.2: a few leading empty lines, not endless ones.
            (b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            // RFC 9112 §3: exactly one SP between the parts.
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
            (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            // HTTP/0.9 (no version) is not spoken.
            (b"GET /\r\n\r\n", 400),
            (b"GET\r\n\r\n", 400),
            // RFC 9112 §2.3: malformed versions: 400.
            (b"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/01.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/2\r\nHost: a\r\n\r\n", 400),
            // RFC 9110 §15.6.6: another major version: 505, the h2 preface included.
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            // RFC 9110 §9.1: the method is a token.
            (b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            // RFC 9112 §3.2: target bytes and forms (details in target.rs).
            (b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET a.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"CONNECT a.com:443 HTTP/1.1\r\nHost: a.com:443\r\n\r\n", 501),
            // RFC 9112 §3.2: Host exactly once in 1.1, and valid.
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            // RFC 9112 §5.1: no whitespace between name and colon.
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
            // RFC 9112 §5.2 obs-fold, and §2.2 whitespace before the first field.
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
            // RFC 9110 §5.5: NUL, other controls and DEL in values.
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x0bchunked\r\n\r\n", 400),
            // RFC 9110 §5.1: field names are tokens, non-empty, and need a colon.
            (b"GET / HTTP/1.1\r\nHost: a\r\nX(Y): 1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX\xff: 1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX\x01: 1\r\n\r\n", 400),
            // Framing errors surface from framing.rs with their status.
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", 413),
            (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
            // A bad request line is refused once it is whole, before the head is
            // (HTTP/0.9 sends no empty line), and before any field line is judged.
            (b"GET /\r\n", 400),
            (b"GET / HTTP/2.0\r\nHost: a\r\n", 505),
            (b"GET /a#b HTTP/1.1\r\n", 400),
            (b"GET / HTTP/9.9\r\nHost: a\r\nX: 1\n\r\n", 505),
            // Absurd inputs: all 0xFF, all NUL, all spaces.
            (&[0xff; 64], 400),
            (&[0; 64], 400),
            (b"                \r\n", 400),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse(input, &Limits::default()),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// A head arriving a byte at a time, scanned with the progress kept between calls
    /// (as a connection does), gets at every length the verdict a fresh scan of the same
    /// bytes gets: resuming skips only work already done.
    #[test]
    fn resumed_scans_agree_with_fresh_ones() {
        let many: Vec<u8> = (0..40)
            .flat_map(|i| format!("X-{i}: {}\r\n", "v".repeat(i)).into_bytes())
            .collect();
        let with_fields = |fields: &[u8], end: &[u8]| {
            [b"GET /p HTTP/1.1\r\nHost: a\r\n".as_slice(), fields, end].concat()
        };
        let inputs = [
            with_fields(&many, b"\r\n"),
            with_fields(&many, b"\r\nGET /next HTTP/1.1\r\n"),
            with_fields(b"A: 1\r\nB: 2\r\n", b"\r\n"),
            with_fields(b"A: 1\r\nB: 2\r\nC: 3\r\n", b"\r\n"),
            with_fields(b"A: 1\r\n 2\r\n", b"\r\n"),
            with_fields(b"A: 1\r\nB: 2\n", b"\r\n"),
            with_fields(b"A: 0123456789abc\r\n", b"\r\n"),
            with_fields(b"A: 1\r\nB\x01: 2\r\n", b"\r\n"),
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
        ];
        let verdict = |r: Result<Option<RequestHead>, HttpError>| match r {
            Ok(head) => Ok(head.map(|h| (h.len(), h.target().to_owned()))),
            Err(e) => Err((e.status(), e.message().to_owned())),
        };
        for limits in [Limits::default(), small()] {
            for input in &inputs {
                let mut kept = HeadBuffers::default();
                for n in 1..=input.len() {
                    let resumed = verdict(parse_head_into(&input[..n], &limits, &mut kept));
                    let fresh = verdict(parse_head_into(
                        &input[..n],
                        &limits,
                        &mut Default::default(),
                    ));
                    assert_eq!(resumed, fresh, "{:?}", String::from_utf8_lossy(&input[..n]));
                    if !matches!(resumed, Ok(None)) {
                        break;
                    }
                }
            }
        }
    }

    fn small() -> Limits {
        Limits {
            request_line: 20,
            fields: 2,
            field_size: 10,
            max_body: 100,
        }
    }

    #[test]
    fn limits_table() {
        type Want = Result<Option<usize>, u16>;
        let cases: &[(&[u8], Want)] = &[
            // Request line of exactly 20 bytes is accepted.
            (b"GET /abcdef HTTP/1.0\r\n\r\n", Ok(Some(24))),
            // 21 bytes: 414, complete or not (RFC 9110 §15.5.15).
            (b"GET /abcdefg HTTP/1.0\r\n\r\n", Err(414)),
            (b"GET /abcdefghijklmnopq", Err(414)),
            // A method of 21 bytes is one we cannot implement: 501 (RFC 9112 §3); 20
            // bytes of it wait for the space.
            (b"GETGETGETGETGETGETGET / HTTP/1.0\r\n\r\n", Err(501)),
            (b"GETGETGETGETGETGETGE", Ok(None)),
            // 20 bytes without CRLF yet: still waiting.
            (b"GET /abcdef HTTP/1.0", Ok(None)),
            // Field line of exactly 10 bytes is accepted; 11 is 431, even partial.
            (b"GET / HTTP/1.0\r\nX: 3456789\r\n\r\n", Ok(Some(30))),
            (b"GET / HTTP/1.0\r\nX: 34567890\r\n\r\n", Err(431)),
            (b"GET / HTTP/1.0\r\nX: 34567890", Err(431)),
            // Two fields accepted; a third is 431 on its first byte.
            (b"GET / HTTP/1.0\r\nA: 1\r\nB: 2\r\n\r\n", Ok(Some(30))),
            (b"GET / HTTP/1.0\r\nA: 1\r\nB: 2\r\nC", Err(431)),
            // A bare LF inside the allowed length is a 400, not a 431.
            (b"GET / HTTP/1.0\r\nX: 3\n", Err(400)),
        ];
        for (input, want) in cases {
            let got = parse_head(input, &small())
                .map(|h| h.map(|h| h.len()))
                .map_err(|e| e.status());
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn max_head_bytes_bounds_every_head() {
        // The biggest valid head under `small()`: every allowance used to the full.
        let limits = small();
        let mut big = b"\r\n".repeat(MAX_LEADING_EMPTY_LINES);
        big.extend_from_slice(b"GET /abcdef HTTP/1.0\r\nA: 3456789\r\nB: 3456789\r\n\r\n");
        let head = parse_head(&big, &limits).ok().flatten().map(|h| h.len());
        assert_eq!(head, Some(limits.max_head_bytes()));
        // One byte more in any line is an error before max_head_bytes + 1 bytes.
        let mut over = big.clone();
        over.insert(big.len() - 4, b'0');
        assert_eq!(parse_head(&over, &limits).map_err(|e| e.status()), Err(431));
    }

    #[test]
    fn every_slot_size_keeps_every_field() {
        // Host plus `extra` fields: each side of the small array's and the stack array's
        // limits, and the heap beyond. httparse gets exactly one slot per field line, and
        // every span stays right.
        let limits = Limits {
            fields: 200,
            ..Limits::default()
        };
        for extra in [
            0,
            SMALL_FIELDS - 1,
            SMALL_FIELDS,
            STACK_FIELDS - 1,
            STACK_FIELDS,
            STACK_FIELDS + 5,
        ] {
            let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
            for i in 0..extra {
                raw.extend_from_slice(format!("X-{i}: v{i}\r\n").as_bytes());
            }
            raw.extend_from_slice(b"\r\n");
            let head = parse_head(&raw, &limits).ok().flatten();
            let head = head.unwrap_or_else(|| panic!("head with {} fields", extra + 1));
            assert_eq!(head.headers().count(), extra + 1);
            if let Some(last) = extra.checked_sub(1) {
                let value = format!("v{last}");
                assert_eq!(head.header(&format!("x-{last}")), Some(value.as_bytes()));
            }
            assert_eq!(head.header("HOST"), Some(&b"a"[..]));
            assert_eq!(head.as_bytes(), &raw[..]);
        }
    }
}
