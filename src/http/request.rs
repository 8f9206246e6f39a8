//! The request handed to application handlers.
//!
//! Owns: [`Request`] (a parsed head, the whole body, the peer address) and [`Version`].
//! Does not own: parsing (head.rs), reading the body (the worker), percent-decoding or
//! routing (the application).

use std::net::SocketAddr;

use super::head::RequestHead;

/// The HTTP version of a request. `HTTP/1.x` with x > 1 is served as 1.1 (RFC 9110 §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: no Host required, not persistent unless `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1 (and 1.2 to 1.9, answered as 1.1).
    Http11,
}

impl Version {
    /// The version as written on the wire: `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A complete request: head, body and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    head: RequestHead,
    body: Vec<u8>,
    peer: Option<SocketAddr>,
}

impl Request {
    /// Puts a parsed head, its decoded body and the peer address together.
    pub fn new(head: RequestHead, body: Vec<u8>, peer: Option<SocketAddr>) -> Request {
        Request { head, body, peer }
    }

    /// The method, case as sent.
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The request-target as sent.
    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// The path part of the target: `"/p"` for `/p?q` and `http://h/p?q`, `"/"` for
    /// `http://h`, `"*"` for `OPTIONS *`. Not percent-decoded.
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query after the first '?', without it.
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The raw value of the first `name=value` pair in the query whose name is `name`
    /// (exact match, no percent-decoding). A bare `name` without '=' gives `Some("")`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.head.version()
    }

    /// The value of the first field called `name` (case-insensitive), without OWS.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// Like [`header`](Self::header), if the value is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every field as (name as sent, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.head.headers()
    }

    /// The body, decoded (chunked framing removed); empty when there was none.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the request.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The peer's address, when the socket has one (not for Unix sockets).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Whether the connection persists after this request (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive()
    }

    /// Whether the method is `HEAD`.
    pub fn is_head(&self) -> bool {
        self.head.is_head()
    }

    /// The parsed head.
    pub fn head(&self) -> &RequestHead {
        &self.head
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
