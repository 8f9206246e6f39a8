//! The request handed to application handlers.
//!
//! Owns: [`Request`] (a parsed head, the whole body, the peer and local addresses) and
//! [`Version`].
//! Does not own: parsing (head.rs), reading the body (the worker) or spooling it to disk
//! (`worker::spool`), percent-decoding or routing (the application).

use std::net::SocketAddr;
use std::sync::Arc;

use super::head::RequestHead;
use crate::sys::pages::MappedFile;

/// The HTTP version of a request. `HTTP/1.x` with x > 1 is served as 1.1 (RFC 9110 §2.5).
///
/// Handlers rarely need it: the server already decides keep-alive and writes its own
/// version on the status line. It matters for things that 1.0 clients cannot take, such as
/// a redirect with 307 or 308.
///
/// # Examples
///
/// ```
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::Version;
///
/// let limits = Limits::default();
/// let old = parse_head(b"GET / HTTP/1.0\r\n\r\n", &limits)?.expect("complete");
/// assert_eq!(old.version(), Version::Http10);
/// // A higher minor version is understood as the highest one the server speaks.
/// let newer = parse_head(b"GET / HTTP/1.7\r\nHost: h\r\n\r\n", &limits)?.expect("complete");
/// assert_eq!(newer.version(), Version::Http11);
/// assert_eq!(newer.version().as_str(), "HTTP/1.1");
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: no Host required, not persistent unless `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1 (and 1.2 to 1.9, answered as 1.1).
    Http11,
}

impl Version {
    /// The version as written on the wire: `"HTTP/1.0"` or `"HTTP/1.1"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Version;
    ///
    /// assert_eq!(Version::Http10.as_str(), "HTTP/1.0");
    /// // A 1.x request with x > 1 is answered as 1.1, so that is what the status line says.
    /// let head = parse_head(b"GET / HTTP/1.4\r\nHost: h\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// assert_eq!(format!("{} 200 OK", head.version().as_str()), "HTTP/1.1 200 OK");
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The fields a trusted proxy says the client's scheme with, and the value that means
/// https: gunicorn's default `secure_scheme_headers`.
const SECURE_SCHEME_FIELDS: [(&str, &str); 3] = [
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Protocol", "ssl"),
    ("X-Forwarded-Ssl", "on"),
];

/// A complete request: head, body and where it came from.
///
/// The worker builds one when the whole body has arrived and hands it to the
/// [`Handler`](crate::Handler) by reference. Everything is as received: no
/// percent-decoding, no header merging, methods and names in the case they were sent; the
/// head has already passed the strict checks of [`parse_head`](super::parse_head), so
/// there is no second framing to second-guess.
///
/// # Examples
///
/// Handlers can be tested without a server by building the request the way the worker
/// does, from raw bytes:
///
/// ```
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::{Request, Version};
///
/// let raw = b"POST /api/items?limit=10&sort HTTP/1.1\r\n\
///             Host: example.com\r\n\
///             Content-Type: application/json\r\n\
///             Content-Length: 2\r\n\r\n";
/// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
/// let req = Request::new(head, b"{}".to_vec(), "192.0.2.7:51234".parse().ok());
///
/// assert_eq!(req.method(), "POST");
/// assert_eq!(req.target(), "/api/items?limit=10&sort");
/// assert_eq!(req.path(), "/api/items");
/// assert_eq!(req.query(), Some("limit=10&sort"));
/// assert_eq!(req.query_param("limit"), Some("10"));
/// assert_eq!(req.version(), Version::Http11);
/// assert_eq!(req.header_str("content-type"), Some("application/json"));
/// assert_eq!(req.body(), b"{}");
/// assert_eq!(req.peer_addr().map(|a| a.port()), Some(51234));
/// assert!(req.keep_alive());
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The head, which carries the peer's address ([`RequestHead::peer_addr`]): one
    /// place for it, so that `before_body` and `handle` cannot be told two addresses.
    head: RequestHead,
    body: BodyBytes,
    local: Option<SocketAddr>,
    /// The peer is one `--forwarded-allow-ips` trusts ([`Request::scheme`]).
    trusted_proxy: bool,
}

/// Where a request's body is: in memory, or in a file it was spooled to, mapped
/// read-only (`--body-spool-size`). Either way the handler reads one slice.
#[derive(Clone)]
enum BodyBytes {
    Memory(Vec<u8>),
    Mapped(Arc<MappedFile>),
}

impl BodyBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            BodyBytes::Memory(bytes) => bytes,
            BodyBytes::Mapped(mapped) => mapped,
        }
    }
}

/// Two bodies are equal when their bytes are, wherever they are kept.
impl PartialEq for BodyBytes {
    fn eq(&self, other: &BodyBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for BodyBytes {}

/// The head as [`RequestHead`] shows it (credentials redacted), the body's length
/// rather than its bytes (a 1 MB upload would be 4 MB of log, and may hold secrets), and
/// the addresses.
///
/// # Examples
///
/// ```
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::Request;
///
/// let raw = b"POST /login HTTP/1.1\r\nHost: h\r\nCookie: sid=abc\r\nContent-Length: 13\r\n\r\n";
/// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
/// let req = Request::new(head, b"password=hunt".to_vec(), None);
/// let shown = format!("{req:?}");
/// assert!(shown.contains("body: 13 bytes") && shown.contains(r#""/login""#));
/// assert!(!shown.contains("hunt") && !shown.contains("sid=abc"));
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("head", &self.head)
            .field("body", &format_args!("{} bytes", self.body().len()))
            .field("peer", &self.peer_addr())
            .field("local", &self.local)
            .field("trusted_proxy", &self.trusted_proxy)
            .finish()
    }
}

impl Request {
    /// Puts a parsed head, its decoded body and the peer address together. The head is
    /// given `peer` too, whatever it had ([`RequestHead::with_peer_addr`]), so that
    /// `req.head().peer_addr()` is `req.peer_addr()`.
    ///
    /// The worker calls this once the body is complete. Outside the server it is how a
    /// test builds the request a handler will see. Nothing checks that `body` matches the
    /// head's framing: the worker guarantees it, a test may not bother.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let head = parse_head(b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// // No body, and no peer address (as for a Unix socket).
    /// let req = Request::new(head, Vec::new(), None);
    /// assert_eq!((req.path(), req.query_param("x")), ("/a", Some("1")));
    /// assert!(req.body().is_empty() && req.peer_addr().is_none());
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn new(head: RequestHead, body: Vec<u8>, peer: Option<SocketAddr>) -> Request {
        Request::with_body(head, BodyBytes::Memory(body), peer)
    }

    /// A request whose body the worker spooled to a file, now mapped.
    pub(crate) fn spooled(
        head: RequestHead,
        body: MappedFile,
        peer: Option<SocketAddr>,
    ) -> Request {
        Request::with_body(head, BodyBytes::Mapped(Arc::new(body)), peer)
    }

    /// A request from no known local address and through no trusted proxy, until the
    /// worker (or a test) says otherwise.
    fn with_body(head: RequestHead, body: BodyBytes, peer: Option<SocketAddr>) -> Request {
        Request {
            head: head.with_peer_addr(peer),
            body,
            local: None,
            trusted_proxy: false,
        }
    }

    /// The request as having arrived at `local`, the address its client connected to
    /// ([`local_addr`](Self::local_addr)). The worker sets it; a test sets it to see how
    /// a handler answers on one listener or another.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let head = parse_head(b"GET /admin HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None).with_local_addr("127.0.0.1:9000".parse().ok());
    /// assert_eq!(req.local_addr().map(|a| a.port()), Some(9000));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn with_local_addr(mut self, local: Option<SocketAddr>) -> Request {
        self.local = local;
        self
    }

    /// The method, case as sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let head = parse_head(b"get / HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    /// // Methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`, and is not upper-cased.
    /// assert_eq!(req.method(), "get");
    /// assert_ne!(req.method(), "GET");
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The request-target as sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"GET http://example.com/a?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    /// // The absolute form and the query are kept; `path` drops both.
    /// assert_eq!(req.target(), "http://example.com/a?x=1");
    /// assert_eq!(req.path(), "/a");
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// The path part of the target: `"/p"` for `/p?q` and `http://h/p?q`, `"/"` for
    /// `http://h`, `"*"` for `OPTIONS *` (which the server answers itself, so only a
    /// request built with [`Request::new`] shows it to a handler). Not percent-decoded, but every `%` in it starts
    /// two hex digits other than `%00` (the parser refuses the rest, with 400 or 404), so decoding
    /// it cannot fail and yields no NUL.
    ///
    /// Route on this rather than on [`target`](Self::target): a client (or a proxy) may
    /// send the absolute form, and the path is the same either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let req = |raw: &[u8]| -> Request {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     Request::new(head, Vec::new(), None)
    /// };
    /// assert_eq!(req(b"GET /a%20b?q HTTP/1.1\r\nHost: h\r\n\r\n").path(), "/a%20b");
    /// assert_eq!(req(b"GET http://h/a?q HTTP/1.1\r\nHost: h\r\n\r\n").path(), "/a");
    /// assert_eq!(req(b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n").path(), "/");
    /// ```
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query after the first '?', without it; `None` when there is no '?'.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let req = |raw: &[u8]| -> Request {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     Request::new(head, Vec::new(), None)
    /// };
    /// assert_eq!(req(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n").query(), None); // no '?'
    /// assert_eq!(req(b"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n").query(), Some("")); // trailing '?'
    /// assert_eq!(req(b"GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n").query(), Some("b?c"));
    /// assert_eq!(req(b"GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n").query(), Some("q"));
    /// ```
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The raw value of the first `name=value` pair in the query whose name is `name`
    /// (exact match, no percent-decoding). A bare `name` without '=' gives `Some("")`.
    ///
    /// Enough for numbers, flags and identifiers; decode the value yourself (or parse
    /// [`query`](Self::query) with a URL crate) when it may hold escaped characters.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"GET /search?q=caf%C3%A9&page=2&page=3&debug HTTP/1.1\r\nHost: h\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    ///
    /// assert_eq!(req.query_param("q"), Some("caf%C3%A9")); // as sent, still encoded
    /// assert_eq!(req.query_param("page"), Some("2")); // the first one wins
    /// assert_eq!(req.query_param("debug"), Some("")); // present, without a value
    /// assert_eq!(req.query_param("Page"), None); // names are case-sensitive
    /// let page: u32 = req.query_param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    /// assert_eq!(page, 2);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.head.query_param(name)
    }

    /// The host the request is for: the authority of an absolute-form target
    /// (`GET http://example.com/ HTTP/1.1`), which RFC 9112 §3.2.2 says takes the place
    /// of the Host field, or else the Host field; `None` when neither gives one (an
    /// HTTP/1.0 request without Host, or an empty Host). As sent: a port stays on, and
    /// the case is the client's.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let req = |raw: &[u8]| -> Request {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     Request::new(head, Vec::new(), None)
    /// };
    /// assert_eq!(req(b"GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n").host(), Some("a.example:8080"));
    /// // Absolute-form: the target's authority wins over the Host field.
    /// assert_eq!(req(b"GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n").host(), Some("a.example"));
    /// assert_eq!(req(b"GET / HTTP/1.0\r\n\r\n").host(), None);
    /// ```
    pub fn host(&self) -> Option<&str> {
        self.head.host()
    }

    /// The protocol version.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Request, Version};
    ///
    /// // HTTP/1.0 needs no Host field.
    /// let head = parse_head(b"GET / HTTP/1.0\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    /// assert_eq!(req.version(), Version::Http10);
    /// // A 1.0 client does not understand 307/308: redirect it with 302 instead.
    /// let status = if req.version() == Version::Http10 { 302 } else { 307 };
    /// assert_eq!(status, 302);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn version(&self) -> Version {
        self.head.version()
    }

    /// The value of the first field called `name` (case-insensitive), without OWS.
    ///
    /// Bytes, because a field value may legally hold non-UTF-8 octets (obs-text); see
    /// [`header_str`](Self::header_str) for the common case. Repeated fields are not
    /// joined: use [`headers`](Self::headers) to see every occurrence.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"GET / HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\naccept: */*\r\n\
    ///             X-Name: \xe9t\xe9\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    ///
    /// assert_eq!(req.header("ACCEPT"), Some(&b"text/html"[..]));
    /// assert_eq!(req.header_str("x-name"), None); // Latin-1 bytes are not UTF-8 ...
    /// assert_eq!(req.header("x-name"), Some(&b"\xe9t\xe9"[..])); // ... but are there
    /// let accepts: Vec<&[u8]> = req
    ///     .headers()
    ///     .filter(|(name, _)| name.eq_ignore_ascii_case("accept"))
    ///     .map(|(_, value)| value)
    ///     .collect();
    /// assert_eq!(accepts, [&b"text/html"[..], &b"*/*"[..]]);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// Like [`header`](Self::header), if the value is valid UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8.5\r\nX-Latin1: caf\xe9\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    ///
    /// assert_eq!(req.header_str("user-agent"), Some("curl/8.5"));
    /// // None both when the field is absent and when its value is not UTF-8.
    /// assert_eq!(req.header_str("x-missing"), None);
    /// assert_eq!(req.header_str("x-latin1"), None);
    /// assert_eq!(req.header("x-latin1"), Some(&b"caf\xe9"[..]));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }

    /// A list-valued field (RFC 9110 §5.3: `Accept`, `Cache-Control`, `If-None-Match`,
    /// ...) whole: the values of every line called `name` (case-insensitive), in order,
    /// joined by `", "`, which the RFC makes equivalent to the lines sent apart. Borrowed
    /// when there is one line. A line that is not UTF-8 reads as empty; `None` when the
    /// field is absent. (Not for `Set-Cookie`-like fields, whose values may hold commas.)
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\nif-none-match: \"b\", \"c\"\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    ///
    /// assert_eq!(req.header_list("If-None-Match").as_deref(), Some(r#""a", "b", "c""#));
    /// assert_eq!(req.header_list("host").as_deref(), Some("h"));
    /// assert_eq!(req.header_list("accept"), None);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn header_list(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.head.header_list(name)
    }

    /// Every field as (name as sent, value), in the order received.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"GET / HTTP/1.1\r\nHost: h\r\nx-tag: a\r\nX-Tag: b\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    ///
    /// // Names keep their case and repeated fields stay separate, in order.
    /// let fields: Vec<(&str, &[u8])> = req.headers().collect();
    /// assert_eq!(fields, [("Host", &b"h"[..]), ("x-tag", &b"a"[..]), ("X-Tag", &b"b"[..])]);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.head.headers()
    }

    /// The body, decoded (chunked framing removed); empty when there was none.
    ///
    /// A body over `--body-spool-size` was written to a temporary file as it arrived,
    /// and this slice is that file, mapped read-only: reading it reads the page cache,
    /// and a large upload does not sit in the worker's own memory. The file is gone once
    /// the request is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, b"a=1&b=2".to_vec(), None);
    ///
    /// let form = std::str::from_utf8(req.body()).expect("UTF-8");
    /// assert_eq!(form.split('&').collect::<Vec<_>>(), ["a=1", "b=2"]);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn body(&self) -> &[u8] {
        self.body.as_slice()
    }

    /// Takes the body out of a request the caller owns: one built with [`Request::new`],
    /// in a test or by a wrapper that hands a changed request on. A [`crate::Handler`] is
    /// lent the request, and reads [`Request::body`]. (A clone of a request whose body
    /// was spooled to disk gives a copy of it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"PUT /note HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let body = b"hello".to_vec();
    /// let ptr = body.as_ptr();
    /// let req = Request::new(head, body, None);
    ///
    /// // The Vec is moved out, not copied.
    /// let body = req.into_body();
    /// assert_eq!(body.as_ptr(), ptr);
    /// assert_eq!(String::from_utf8(body).expect("UTF-8"), "hello");
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn into_body(self) -> Vec<u8> {
        match self.body {
            BodyBytes::Memory(bytes) => bytes,
            BodyBytes::Mapped(mapped) => mapped.to_vec(),
        }
    }

    /// The peer's address, when the socket has one (not for Unix sockets). With
    /// `--proxy-protocol`, the client the load balancer's PROXY header names (on a Unix
    /// socket too), or the balancer's own address where the header names none. The same
    /// address [`Handler::before_body`](crate::Handler::before_body) was shown in the
    /// head ([`RequestHead::peer_addr`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv6Addr, SocketAddr};
    ///
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let head = parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// let peer: SocketAddr = "[::1]:50000".parse().expect("an address");
    /// let req = Request::new(head, Vec::new(), Some(peer));
    /// assert_eq!(req.peer_addr(), Some(peer));
    /// assert_eq!(req.peer_addr().map(|a| a.ip()), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    /// assert_eq!(req.head().peer_addr(), Some(peer)); // the head carries it too
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.head.peer_addr()
    }

    /// The address the client connected to: which of the server's listeners, on which of
    /// the machine's addresses (WSGI's `SERVER_PORT` for a server behind no proxy). For a
    /// bind on one address it is that address; on `0.0.0.0` or `[::]` the connection's
    /// own, from getsockname(2) (an IPv4 client of `[::]` shows as `[::ffff:a.b.c.d]`).
    /// With `--proxy-protocol`, the address the PROXY header says the client connected
    /// to, on the balancer. `None` for a Unix socket, and for a request built with
    /// [`Request::new`] unless [`with_local_addr`](Self::with_local_addr) set one.
    ///
    /// The [`host`](Self::host) is the name the client asked for, which a proxy passes on;
    /// this is where the connection landed, which a client cannot choose: a handler
    /// serving an admin port beside a public one tells them apart by it.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::{Request, Response};
    ///
    /// // With `--bind 0.0.0.0:8000 --bind 127.0.0.1:9000`: the second answers on the
    /// // machine itself only.
    /// let app = |req: &Request| match (req.path(), req.local_addr().map(|a| a.port())) {
    ///     ("/admin", Some(9000)) => Response::text(200, "admin\n"),
    ///     ("/admin", _) => Response::text(404, "not found\n"),
    ///     _ => Response::text(200, "public\n"),
    /// };
    /// # use br_serve::http::{Limits, parse_head};
    /// # let req = |port: u16| {
    /// #     let head = parse_head(b"GET /admin HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default()).unwrap().unwrap();
    /// #     Request::new(head, Vec::new(), None).with_local_addr(Some(([127, 0, 0, 1], port).into()))
    /// # };
    /// # assert_eq!(app(&req(9000)).status(), 200);
    /// # assert_eq!(app(&req(8000)).status(), 404);
    /// ```
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The scheme the client used to reach the proxy in front: `"https"` when a peer
    /// `--forwarded-allow-ips` trusts (the machine's own proxy, by default; the
    /// connection's peer, so the balancer behind `--proxy-protocol`) says so with
    /// `X-Forwarded-Proto: https`, `X-Forwarded-Protocol: ssl` or `X-Forwarded-Ssl: on`
    /// (gunicorn's `secure_scheme_headers`, which set `wsgi.url_scheme`), else `"http"`:
    /// br-serve itself speaks plain HTTP. For the absolute URLs a handler builds
    /// (redirects, links in mail) and for `Secure` cookies.
    ///
    /// Fields that disagree (`X-Forwarded-Proto: https` with `X-Forwarded-Ssl: off`) make
    /// it `"http"`, the claim that promises less (gunicorn answers 400). Values are
    /// compared without regard to case; a list (`https, http`, from proxies that append)
    /// is no value of these and counts as `"http"`. RFC 7239's `Forwarded` is not read.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"GET /login HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Proto: https\r\n\r\n";
    /// let req = |trusted: bool| {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().unwrap();
    ///     Request::new(head, Vec::new(), None).with_trusted_proxy(trusted)
    /// };
    /// // From the proxy in front (a peer --forwarded-allow-ips lists):
    /// let proxied = req(true);
    /// assert_eq!(proxied.scheme(), "https");
    /// let home = format!("{}://{}/", proxied.scheme(), proxied.host().unwrap_or("localhost"));
    /// assert_eq!(home, "https://shop.example/");
    /// // From anyone else, the same header says nothing.
    /// assert_eq!(req(false).scheme(), "http");
    /// ```
    pub fn scheme(&self) -> &'static str {
        if !self.trusted_proxy {
            return "http";
        }
        let mut secure = None;
        for (name, value) in self.headers() {
            let Some(&(_, on)) = SECURE_SCHEME_FIELDS
                .iter()
                .find(|(field, _)| name.eq_ignore_ascii_case(field))
            else {
                continue;
            };
            let says = value.eq_ignore_ascii_case(on.as_bytes());
            if *secure.get_or_insert(says) != says {
                return "http";
            }
        }
        if secure == Some(true) {
            "https"
        } else {
            "http"
        }
    }

    /// Whether the connection's peer (the balancer behind `--proxy-protocol`, not the
    /// client its header names) is one `--forwarded-allow-ips` trusts: a Unix socket's,
    /// or an address in the list ([`scheme`](Self::scheme) believes its forwarded fields
    /// only then). A handler that reads other forwarded fields itself
    /// (`X-Forwarded-For`, `X-Forwarded-Host`) asks this first.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, Vec::new(), "127.0.0.1:50000".parse().ok()).with_trusted_proxy(true);
    /// let client = match req.from_trusted_proxy() {
    ///     true => req.header_str("x-forwarded-for").and_then(|list| list.rsplit(',').next()),
    ///     false => None,
    /// };
    /// assert_eq!(client.map(str::trim), Some("203.0.113.9"));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn from_trusted_proxy(&self) -> bool {
        self.trusted_proxy
    }

    /// The request as from a peer `--forwarded-allow-ips` trusts, or not
    /// ([`from_trusted_proxy`](Self::from_trusted_proxy)). The worker sets it; a test
    /// sets it to see what a handler makes of forwarded fields. [`Request::new`] makes a
    /// request from an untrusted peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let head = parse_head(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Ssl: on\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// let req = Request::new(head, Vec::new(), None);
    /// assert!(!req.from_trusted_proxy());
    /// assert_eq!(req.with_trusted_proxy(true).scheme(), "https");
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn with_trusted_proxy(mut self, trusted: bool) -> Request {
        self.trusted_proxy = trusted;
        self
    }

    /// Whether the connection persists after this request (RFC 9112 §9.3).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let req = |raw: &[u8]| -> Request {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     Request::new(head, Vec::new(), None)
    /// };
    /// assert!(req(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive());
    /// assert!(!req(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive());
    /// // HTTP/1.0 persists only when the client asks for it.
    /// assert!(!req(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
    /// assert!(req(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    /// ```
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive()
    }

    /// Whether the method is `HEAD`.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let req = |raw: &[u8]| -> Request {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     Request::new(head, Vec::new(), None)
    /// };
    /// assert!(req(b"HEAD /big.iso HTTP/1.1\r\nHost: h\r\n\r\n").is_head());
    /// assert!(!req(b"GET /big.iso HTTP/1.1\r\nHost: h\r\n\r\n").is_head());
    /// // Exact case: `head` is some other method.
    /// assert!(!req(b"head /big.iso HTTP/1.1\r\nHost: h\r\n\r\n").is_head());
    /// ```
    pub fn is_head(&self) -> bool {
        self.head.is_head()
    }

    /// The parsed head, for what the request does not repeat: the body's framing and
    /// [`expects_continue`](RequestHead::expects_continue).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{BodyFraming, Limits, parse_head};
    /// use br_serve::Request;
    ///
    /// let raw = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
    ///             Expect: 100-continue\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let req = Request::new(head, b"decoded".to_vec(), None);
    /// assert_eq!(req.head().framing(), BodyFraming::Chunked);
    /// assert!(req.head().expects_continue());
    /// assert_eq!(req.head().len(), raw.len());
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// Takes the head back out, so the worker can reuse its buffers.
    pub(crate) fn into_head(self) -> RequestHead {
        self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Limits, parse_head};

    fn request(raw: &str, body: &[u8]) -> Request {
        let head = parse_head(raw.as_bytes(), &Limits::default());
        let head = head
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("not a head: {raw:?}"));
        Request::new(head, body.to_vec(), "127.0.0.1:9".parse().ok())
    }

    #[test]
    fn version_strings() {
        assert_eq!(Version::Http10.as_str(), "HTTP/1.0");
        assert_eq!(Version::Http11.as_str(), "HTTP/1.1");
    }

    #[test]
    fn path_and_query_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            // RFC 9112 §3.2.1 origin-form.
            ("/", "/", None),
            ("/a/b?x=1", "/a/b", Some("x=1")),
            // RFC 9112 §3.2.2 absolute-form: path from the target, "/" when empty.
            ("http://h/p?q", "/p", Some("q")),
            ("http://h", "/", None),
            ("http://h?q", "/", Some("q")),
        ];
        for (target, path, query) in cases {
            let r = request(&format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n"), b"");
            assert_eq!((r.target(), r.path(), r.query()), (*target, *path, *query));
        }
        // RFC 9112 §3.2.4 asterisk-form.
        let r = request("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", b"");
        assert_eq!((r.path(), r.query()), ("*", None));
    }

    #[test]
    fn query_param_table() {
        let r = request("GET /?a=1&b=&c&a=2&d=x=y HTTP/1.1\r\nHost: h\r\n\r\n", b"");
        let cases: &[(&str, Option<&str>)] = &[
            // The first occurrence wins.
            ("a", Some("1")),
            // An empty value and a bare name are both "".
            ("b", Some("")),
            ("c", Some("")),
            // Only the first '=' splits.
            ("d", Some("x=y")),
            // Absent, and names are case-sensitive.
            ("e", None),
            ("A", None),
        ];
        for (name, want) in cases {
            assert_eq!(r.query_param(name), *want, "{name}");
        }
        assert_eq!(
            request("GET / HTTP/1.1\r\nHost: h\r\n\r\n", b"").query_param("a"),
            None
        );
    }

    #[test]
    fn accessors() {
        let raw = b"HEAD /x HTTP/1.0\r\nX-A: 1\r\nx-a: 2\r\nX-Bin: \xff\r\nConnection: keep-alive\r\n\r\n";
        let head = parse_head(raw, &Limits::default()).ok().flatten();
        let r = Request::new(
            head.unwrap_or_else(|| panic!("head")),
            b"body".to_vec(),
            None,
        );
        assert_eq!(r.method(), "HEAD");
        assert!(r.is_head());
        assert_eq!(r.version(), Version::Http10);
        assert!(r.keep_alive());
        // Field names are case-insensitive; the first occurrence wins.
        assert_eq!(r.header("x-a"), Some(&b"1"[..]));
        assert_eq!(r.header_str("X-A"), Some("1"));
        // A non-UTF-8 value is there as bytes but not as a str.
        assert_eq!(r.header("x-bin"), Some(&b"\xff"[..]));
        assert_eq!(r.header_str("x-bin"), None);
        assert_eq!(r.headers().count(), 4);
        assert_eq!(r.body(), b"body");
        assert_eq!(r.peer_addr(), None);
        assert_eq!(r.into_body(), b"body");
    }
}
