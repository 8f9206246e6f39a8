//! Responses: what a handler returns, and how its head is written on the wire.
//!
//! Owns: [`Response`], [`Body`], [`write_head`] and the rules for which header fields the
//! server writes itself (Server, Date, Content-Length or, for a stream, Transfer-Encoding,
//! Connection), when a response may carry a body ([`body_allowed`]) and the reason
//! phrases. Does not own: sending the bytes (the worker writes the head and the body with
//! writev, the head then sendfile for [`Body::File`], or the chunks of a
//! [`Body::Stream`] as it reads them), nor deciding keep-alive (the request and the
//! worker do; see [`ResponseMeta`]).

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::Read;

use smallvec::SmallVec;

use super::error::HttpError;
use super::request::Version;
use super::syntax::{is_field_text, is_token, trim_ows_text};

/// The interim response the worker sends before reading the body of a request whose
/// [`expects_continue`](super::RequestHead::expects_continue) is true (RFC 9110 §10.1.1).
///
/// A complete message on its own (status line and empty line, no fields), written ahead
/// of the final response; the client then sends the body it was holding back.
///
/// # Examples
///
/// ```
/// use br_serve::http::{CONTINUE_100, Limits, parse_head};
///
/// let raw = b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
/// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
/// let mut out = Vec::new();
/// if head.expects_continue() {
///     out.extend_from_slice(CONTINUE_100); // then read the 5 body bytes
/// }
/// assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The content of a response. A body of bytes or a file has its length known up front
/// and goes out with Content-Length; a [`Stream`](Body::Stream) is sent as it is read,
/// chunked.
///
/// Pick the variant that costs least for what the handler has: [`Static`](Body::Static)
/// for fixed content, [`Bytes`](Body::Bytes) for content built per request,
/// [`File`](Body::File) for anything on disk, which never passes through memory, and
/// [`Stream`](Body::Stream) for content too large to build first (an export, a report
/// made row by row).
///
/// # Examples
///
/// ```
/// use br_serve::{Body, Response};
///
/// // Built for this request: owned bytes.
/// let greeting = Response::new(200).with_body(Body::Bytes(format!("hello {}\n", 42).into_bytes()));
/// assert_eq!(greeting.body_len(), 9);
///
/// // The same for every request: no allocation at all.
/// const MAINTENANCE: &[u8] = b"<h1>Back soon</h1>\n";
/// let page = Response::new(503)
///     .with_static_header("Content-Type", "text/html; charset=utf-8")
///     .with_static_header("Retry-After", "120")
///     .with_body(Body::Static(MAINTENANCE));
/// assert_eq!(page.body_len(), 19);
///
/// // Nothing at all.
/// assert!(Response::new(204).body().is_empty());
/// ```
pub enum Body {
    /// No content.
    Empty,
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// Bytes that live for the whole program (a fixed page, say): no copy, no allocation.
    Static(&'static [u8]),
    /// `len` bytes of `file` from `offset`, for the worker to send with sendfile.
    ///
    /// A large file never passes through memory: the worker hands it to the kernel with
    /// sendfile(2) (a small one it may copy right after the head, so that both leave in
    /// one write). `offset` counts from the start of the file; the file's own read
    /// position is not used. The head promises `len` bytes in
    /// Content-Length before the first is sent: a file already shorter than that range
    /// when the handler returns it is answered 500 instead (nothing is written yet), and
    /// one truncated while it is being sent makes the worker close the connection rather
    /// than send a response that lies about its length.
    ///
    /// # Examples
    ///
    /// A whole file, and one byte range of it (what
    /// [`StaticFiles`](crate::app::static_files::StaticFiles) does for `Range`):
    ///
    /// ```
    /// use std::fs::File;
    ///
    /// use br_serve::{Body, Response};
    ///
    /// # let path = std::env::temp_dir().join(format!("br-serve-doc-body-{}", std::process::id()));
    /// # std::fs::write(&path, "0123456789")?;
    /// let file = File::open(&path)?;
    /// let len = file.metadata()?.len();
    /// let whole = Response::new(200)
    ///     .with_static_header("Content-Type", "text/plain")
    ///     .with_body(Body::File { file, offset: 0, len });
    /// assert_eq!(whole.body_len(), 10);
    ///
    /// // `Range: bytes=2-5`: four bytes from offset 2.
    /// let part = Response::new(206)
    ///     .with_header("Content-Range", &format!("bytes 2-5/{len}"))
    ///     .with_body(Body::File { file: File::open(&path)?, offset: 2, len: 4 });
    /// assert_eq!(part.body_len(), 4);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    File {
        /// The open file.
        file: File,
        /// Where the content starts in the file.
        offset: u64,
        /// How many bytes to send.
        len: u64,
    },
    /// Content read from `reader` while it is sent, as a WSGI application's iterable is
    /// in gunicorn: a large export or report goes out as it is made, never whole in
    /// memory.
    ///
    /// The worker reads up to 16 KiB at a time, when the client has taken what went
    /// before, so a slow client slows the reading rather than filling memory, and sends
    /// each read at once. The length is not known up front, so an HTTP/1.1 response is
    /// sent with `Transfer-Encoding: chunked` (RFC 9112 §7.1), each read a chunk, and an
    /// HTTP/1.0 one is ended by closing the connection (§6.3). A handler that knows the
    /// length may say it with a `Content-Length` field: the response is then framed by
    /// it, and nothing past it is sent. A reader that has more is cut there, and the log
    /// says so in a warning naming the request and the length, since one of the two is
    /// wrong (the read that reaches the length asks for one byte more to see it; no read
    /// is made past the length's last byte).
    ///
    /// Each read is one chunk, sent at once, so fill the buffer given: a reader that
    /// returns a row per read sends a chunk per row. The reads run in the worker, between
    /// its other connections' requests, as the handler does: a read that waits (on a
    /// database cursor, another service) holds the worker meanwhile, which counts as busy
    /// in that request, and `--timeout` counts each read. A reader must block: one that
    /// says `WouldBlock` has failed. The first read is made before the head is sent, as
    /// part of the request: one that fails or panics, or finds the stream short of its
    /// `Content-Length` already, gets the request a 500. A later read that fails or
    /// panics, or a stream that ends short of its `Content-Length`, is logged and the
    /// connection is closed without the end of the message (reset, for an HTTP/1.0
    /// answer the close would end), so the client knows the content is cut short (the
    /// head is out: a 500 is no longer possible). HEAD, 204 and 304 answers drop the
    /// reader unread; a `Drop` that panics is caught, as a handler's panic is.
    ///
    /// # Examples
    ///
    /// A CSV export made row by row as the client takes it:
    ///
    /// ```
    /// use std::io::{self, Read};
    ///
    /// use br_serve::{Body, Response};
    ///
    /// /// Rows 1..=n, each made when the worker asks for more.
    /// struct Rows { next: u64, last: u64, line: Vec<u8>, at: usize }
    ///
    /// impl Read for Rows {
    ///     fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
    ///         if self.at == self.line.len() {
    ///             if self.next > self.last {
    ///                 return Ok(0); // the end of the content
    ///             }
    ///             self.line = format!("{},{}\n", self.next, self.next * self.next).into_bytes();
    ///             (self.next, self.at) = (self.next + 1, 0);
    ///         }
    ///         let n = buf.len().min(self.line.len() - self.at);
    ///         buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
    ///         self.at += n;
    ///         Ok(n)
    ///     }
    /// }
    ///
    /// let rows = Rows { next: 1, last: 1_000_000, line: Vec::new(), at: 0 };
    /// let export = Response::new(200)
    ///     .with_static_header("Content-Type", "text/csv")
    ///     .with_body(Body::Stream(Box::new(rows)));
    /// assert!(matches!(export.body(), Body::Stream(_)));
    ///
    /// // Anything that reads will do: a child process's output, say, or bytes already made.
    /// let known = Response::new(200)
    ///     .with_header("Content-Length", "6")
    ///     .with_body(Body::Stream(Box::new(io::Cursor::new(b"a,b,c\n".to_vec()))));
    /// # let mut out = Vec::new();
    /// # if let Body::Stream(mut reader) = known.into_body() { reader.read_to_end(&mut out)?; }
    /// # assert_eq!(out, b"a,b,c\n");
    /// # Ok::<(), io::Error>(())
    /// ```
    Stream(Box<dyn Read>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(bytes) => f.debug_tuple("Bytes").field(bytes).finish(),
            Body::Static(bytes) => f.debug_tuple("Static").field(bytes).finish(),
            Body::File { file, offset, len } => f
                .debug_struct("File")
                .field("file", file)
                .field("offset", offset)
                .field("len", len)
                .finish(),
            Body::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

impl Body {
    /// The number of content bytes: 0 for a [`Stream`](Body::Stream), whose length is
    /// not known before it is read.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Body;
    ///
    /// assert_eq!(Body::Static(b"<h1>Back soon</h1>\n").len(), 19);
    /// assert_eq!(Body::Bytes(format!("{}\n", 12345).into_bytes()).len(), 6);
    /// assert_eq!(Body::Empty.len(), 0);
    /// ```
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty | Body::Stream(_) => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Static(bytes) => bytes.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// Whether there are no content bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Body;
    ///
    /// assert!(Body::Empty.is_empty());
    /// assert!(Body::Bytes(Vec::new()).is_empty()); // no bytes, whatever the variant
    /// assert!(!Body::Static(b"\n").is_empty());
    /// assert!(!Body::Stream(Box::new(std::io::empty())).is_empty()); // not known yet
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && !matches!(self, Body::Stream(_))
    }
}

/// A response: status, the handler's header fields, and a body.
///
/// Field names and values are `Cow<'static, str>`, so fixed ones (`Content-Type:
/// text/plain`) cost no allocation.
///
/// A handler sets only what is about its content. The server writes the status line,
/// `Server`, `Date`, `Content-Length` (from the [`Body`]; a [`Body::Stream`]'s is the
/// handler's, if it gives one, else it is sent chunked) and `Connection` itself, and
/// drops a handler's copies of those (see [`write_head`]), so a handler cannot frame a
/// message wrongly.
///
/// # Examples
///
/// ```
/// use br_serve::{Body, Response};
///
/// let resp = Response::bytes(201, "application/json", br#"{"id":7}"#.to_vec())
///     .with_header("Location", &format!("/items/{}", 7))
///     .with_static_header("Cache-Control", "no-store");
///
/// assert_eq!(resp.status(), 201);
/// let fields: Vec<(&str, &str)> = resp.headers().collect();
/// assert_eq!(
///     fields,
///     [
///         ("Content-Type", "application/json"),
///         ("Location", "/items/7"),
///         ("Cache-Control", "no-store"),
///     ]
/// );
/// assert!(matches!(resp.body(), Body::Bytes(b) if b == br#"{"id":7}"#));
/// ```
#[derive(Debug)]
pub struct Response {
    status: u16,
    /// One field inline: the server writes Date, Server, Content-Length and Connection
    /// itself, so a typical handler sets only a Content-Type and allocates nothing for it.
    /// One field rather than two keeps `Response` within 128 bytes, which the compiler
    /// moves with inline stores instead of a `memcpy` call (measured: -80 instructions
    /// per request); more fields spill to the heap, as they would past any inline size.
    headers: SmallVec<[Field; 1]>,
    body: Body,
}

/// A response header field: name and value, borrowed when they are fixed strings.
type Field = (Cow<'static, str>, Cow<'static, str>);

impl Response {
    /// A response with `status` and no body.
    ///
    /// The start for anything the other constructors do not cover: add fields with
    /// [`with_header`](Self::with_header) and content with [`with_body`](Self::with_body).
    /// A status outside 100-599 is sent as 500, and so is a handler's 1xx: those are
    /// interim responses, never the answer.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// let moved = Response::new(308).with_header("Location", "/new-home");
    /// assert_eq!((moved.status(), moved.body_len()), (308, 0));
    /// ```
    #[inline]
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: SmallVec::new(),
            body: Body::Empty,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// let resp = Response::text(404, format!("no user named {:?}\n", "eve"));
    /// assert_eq!(resp.status(), 404);
    /// assert_eq!(
    ///     resp.headers().next(),
    ///     Some(("Content-Type", "text/plain; charset=utf-8"))
    /// );
    /// assert_eq!(resp.body_len(), 20);
    /// ```
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_static_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(Body::Bytes(body.into().into_bytes()))
    }

    /// A response with `body` of type `content_type`.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// let png: Vec<u8> = vec![0x89, b'P', b'N', b'G'];
    /// let resp = Response::bytes(200, "image/png", png);
    /// assert_eq!(resp.headers().next(), Some(("Content-Type", "image/png")));
    /// assert_eq!(resp.body_len(), 4);
    /// ```
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        let mut response = Response::new(status).with_body(Body::Bytes(body));
        // The name is fixed: only the value is the caller's to copy.
        let value = Cow::Owned(content_type.to_owned());
        response.add_field(Cow::Borrowed("Content-Type"), value);
        response
    }

    /// Adds a header field, after those already there. A field that a message may carry
    /// only once (Content-Type, Location, ETag, Last-Modified, Expires, Retry-After,
    /// Content-Range, Content-Location, Content-Disposition, Age,
    /// Access-Control-Allow-Origin, Strict-Transport-Security, X-Frame-Options) replaces
    /// the one there,
    /// so `Response::text(..)` followed by a Content-Type sends that one alone; any other
    /// field (Set-Cookie, a list such as Cache-Control) is added beside it.
    /// Fields the server owns, and fields with a CR, LF, NUL or other control byte, are
    /// dropped when the head is written: see [`write_head`].
    ///
    /// Dropping, rather than escaping, is what keeps a value taken from the request (a
    /// name, a redirect target) from splitting the response in two.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// let resp = Response::new(204)
    ///     .with_header("Set-Cookie", "a=1; HttpOnly")
    ///     .with_header("Set-Cookie", "b=2; HttpOnly"); // both are kept, in order
    /// assert_eq!(resp.headers().count(), 2);
    ///
    /// let page = Response::text(200, "<p>hi</p>\n").with_header("Content-Type", "text/html");
    /// assert_eq!(page.headers().collect::<Vec<_>>(), [("Content-Type", "text/html")]);
    ///
    /// // A wrapper narrowing what the handler inside allowed: one origin goes out.
    /// let api = Response::new(204).with_header("Access-Control-Allow-Origin", "*");
    /// let narrowed = api.with_header("access-control-allow-origin", "https://app.example");
    /// assert_eq!(narrowed.headers().count(), 1);
    /// ```
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.add_field(Cow::Owned(name.to_owned()), Cow::Owned(value.to_owned()));
        self
    }

    /// Appends a field, replacing a single-valued one of the same name.
    #[inline]
    fn add_field(&mut self, name: Cow<'static, str>, value: Cow<'static, str>) {
        // Asked only when there is a field to replace: the first one a handler sets (a
        // Content-Type, usually) then costs no comparison with the list.
        if !self.headers.is_empty() && is_single_valued(&name) {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        }
        self.headers.push((name, value));
    }

    /// Without any field named `name` (case-insensitive), as a wrapper around another
    /// handler removes or replaces what that one set.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// let inner = Response::text(200, "ok\n").with_header("Cache-Control", "max-age=60");
    /// let resp = inner.without_header("cache-control").with_header("Cache-Control", "no-store");
    /// assert_eq!(
    ///     resp.headers().filter(|(name, _)| name.eq_ignore_ascii_case("cache-control")).collect::<Vec<_>>(),
    ///     [("Cache-Control", "no-store")]
    /// );
    /// ```
    pub fn without_header(mut self, name: &str) -> Response {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Like [`with_header`](Self::with_header) for a fixed name and a value computed for
    /// this response, which is moved in rather than copied.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// let version = 7;
    /// let resp = Response::new(204).with_owned_header("ETag", format!("\"v{version}\""));
    /// assert_eq!(resp.headers().last(), Some(("ETag", "\"v7\"")));
    /// ```
    pub fn with_owned_header(mut self, name: &'static str, value: String) -> Response {
        self.add_field(Cow::Borrowed(name), Cow::Owned(value));
        self
    }

    /// Room for `n` more fields in one allocation, for a response that is known to carry
    /// more than fit inline.
    pub(crate) fn reserve_headers(mut self, n: usize) -> Response {
        self.headers.reserve(n);
        self
    }

    /// Like [`with_header`](Self::with_header) for fixed strings, without allocating.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// let resp = Response::text(200, "ok\n").with_static_header("Cache-Control", "no-cache");
    /// assert_eq!(resp.headers().last(), Some(("Cache-Control", "no-cache")));
    /// ```
    #[inline]
    pub fn with_static_header(mut self, name: &'static str, value: &'static str) -> Response {
        self.add_field(Cow::Borrowed(name), Cow::Borrowed(value));
        self
    }

    /// Replaces the body. It does not touch the fields: set a Content-Type to match.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::{Body, Response};
    ///
    /// let resp = Response::new(200)
    ///     .with_static_header("Content-Type", "text/css")
    ///     .with_body(Body::Static(b"body { margin: 0 }\n"));
    /// assert_eq!(resp.body_len(), 19);
    /// ```
    #[inline]
    pub fn with_body(mut self, body: Body) -> Response {
        self.body = body;
        self
    }

    /// Takes the body out, leaving none, for the worker to put back changed.
    pub(crate) fn take_body(&mut self) -> Body {
        std::mem::replace(&mut self.body, Body::Empty)
    }

    /// The status code.
    ///
    /// # Examples
    ///
    /// A status outside 100-599 is kept as the handler gave it; only the head written for
    /// it says 500:
    ///
    /// ```
    /// use br_serve::http::{ResponseMeta, format_imf_fixdate, write_head};
    /// use br_serve::{Response, Version};
    ///
    /// let resp = Response::new(42);
    /// assert_eq!(resp.status(), 42);
    /// let meta = ResponseMeta { version: Version::Http11, keep_alive: true, head_request: false };
    /// let mut out = Vec::new();
    /// write_head(&mut out, &resp, &meta, &format_imf_fixdate(0));
    /// assert!(out.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The handler's header fields, in order, as given (before any are dropped).
    ///
    /// # Examples
    ///
    /// Fields the server owns are still listed: they are dropped only when the head is
    /// written (see [`write_head`]).
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// let resp = Response::text(200, "hi\n")
    ///     .with_header("content-length", "999")
    ///     .with_static_header("Vary", "Accept");
    /// let fields: Vec<(&str, &str)> = resp.headers().collect();
    /// assert_eq!(
    ///     fields,
    ///     [
    ///         ("Content-Type", "text/plain; charset=utf-8"),
    ///         ("content-length", "999"),
    ///         ("Vary", "Accept"),
    ///     ]
    /// );
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The value of the first field named `name` (case-insensitive) that [`write_head`]
    /// sends, for the access log's `%({name}o)s`: none of the fields the server owns,
    /// nor one it drops as invalid.
    pub(crate) fn sent_header(&self, name: &str) -> Option<&str> {
        if server_owned(name) {
            return None;
        }
        self.headers()
            .find(|&(n, v)| n.eq_ignore_ascii_case(name) && valid_field(n, v))
            .map(|(_, v)| trim_ows_text(v))
    }

    /// The names of the fields [`write_head`] drops as invalid (RFC 9110 §5.1: a name
    /// is a token; §5.5: a value holds no control byte but HTAB, so no CR or LF that
    /// would start a field of the handler's choosing), for the worker to warn of with
    /// the request they answer.
    pub(crate) fn invalid_fields(&self) -> impl Iterator<Item = &str> {
        self.headers()
            .filter(|&(n, v)| !server_owned(n) && !valid_field(n, v))
            .map(|(n, _)| n)
    }

    /// A stream's Content-Length that is not a length (`" 10"`, `10x`): the stream then
    /// goes out chunked (or ended by the close), for the worker to warn of.
    pub(crate) fn unusable_stream_length(&self) -> Option<&str> {
        let mut fields = self.headers();
        let (_, declared) = fields.find(|(n, _)| n.eq_ignore_ascii_case("content-length"))?;
        let unusable = matches!(self.body, Body::Stream(_)) && declared_length(self).is_none();
        unusable.then_some(declared)
    }

    /// The handler's own Content-Length and the length [`write_head`] sends in its place,
    /// when the two differ: a handler that counted wrong (or wrote no number), for the
    /// worker to warn of. A response sent with no Content-Length (204, a HEAD that
    /// declared nothing usable) is not a difference.
    pub(crate) fn overridden_length(&self, head_request: bool) -> Option<(&str, u64)> {
        let mut fields = self.headers();
        let (_, declared) = fields.find(|(n, _)| n.eq_ignore_ascii_case("content-length"))?;
        let sent = content_length(self.status, self, head_request)?;
        (declared_length(self) != Some(sent)).then_some((declared, sent))
    }

    /// The body.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::{Body, Response};
    ///
    /// let resp = Response::text(200, "ok\n");
    /// assert!(matches!(resp.body(), Body::Bytes(b) if b == b"ok\n"));
    /// assert!(matches!(Response::new(204).body(), Body::Empty));
    /// ```
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Takes the body out of the response.
    ///
    /// # Examples
    ///
    /// The same content under other fields, moved rather than copied:
    ///
    /// ```
    /// use br_serve::{Body, Response};
    ///
    /// let inner = Response::text(200, "# Title\n");
    /// let resp = Response::new(200)
    ///     .with_static_header("Content-Type", "text/markdown")
    ///     .with_body(inner.into_body());
    /// assert!(matches!(resp.body(), Body::Bytes(b) if b == b"# Title\n"));
    /// ```
    pub fn into_body(self) -> Body {
        self.body
    }

    /// The length of the body as it would be sent for GET: the Content-Length, also for a
    /// HEAD request, which gets no body (a 1xx or 204 response gets no Content-Length at
    /// all; a HEAD answered with no body, or any 304, gets the handler's own, if any: see
    /// [`write_head`]). A 205 is the exception: whatever this says, it is sent with no body and
    /// `Content-Length: 0` (see [`write_head`] and [`body_allowed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{ResponseMeta, body_allowed, format_imf_fixdate, write_head};
    /// use br_serve::{Response, Version};
    ///
    /// let resp = Response::text(200, "hello\n");
    /// assert_eq!(resp.body_len(), 6);
    ///
    /// // HEAD: the same Content-Length is written, and the body is not sent.
    /// let meta = ResponseMeta { version: Version::Http11, keep_alive: true, head_request: true };
    /// let mut out = Vec::new();
    /// write_head(&mut out, &resp, &meta, &format_imf_fixdate(0));
    /// assert!(out.ends_with(b"Content-Length: 6\r\n\r\n"));
    /// assert!(!body_allowed(resp.status(), meta.head_request));
    /// ```
    pub fn body_len(&self) -> u64 {
        self.body.len()
    }

    /// Whether the handler asked to close the connection after this response, with a
    /// `Connection` field that lists `close` (RFC 9112 §9.6; case-insensitive, in any of
    /// its fields). The worker then writes `Connection: close` and closes once the
    /// response is sent, as gunicorn does for a WSGI app that sets it: a way to move a
    /// client off a worker (say, one being drained) or to end a session.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    ///
    /// assert!(Response::new(204).with_header("Connection", "close").closes_connection());
    /// assert!(Response::new(204).with_header("connection", "foo, Close").closes_connection());
    /// assert!(!Response::new(204).with_header("Connection", "keep-alive").closes_connection());
    /// assert!(!Response::text(200, "hi\n").closes_connection());
    /// ```
    pub fn closes_connection(&self) -> bool {
        self.headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, value)| value.split(','))
            .any(|option| option.trim().eq_ignore_ascii_case("close"))
    }

    /// The response for a refused request: `text/plain`, body `"<status> <reason>\n<message>\n"`.
    /// The worker writes it with `keep_alive: false`: after a parse error the connection
    /// is closed. A status outside 100-599 becomes 500 here already, so the body says what
    /// the status line will.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{HttpError, Limits, parse_head};
    /// use br_serve::{Body, Response};
    ///
    /// let err = parse_head(b"GET / HTTP/2.0\r\n\r\n", &Limits::default()).unwrap_err();
    /// let resp = Response::error(&err);
    /// assert_eq!(resp.status(), 505);
    /// assert!(matches!(resp.body(), Body::Bytes(b) if b.starts_with(b"505 HTTP Version Not Supported\n")));
    ///
    /// // Handlers may use it too, for a uniform plain-text error page.
    /// let resp = Response::error(&HttpError::new(429, "slow down"));
    /// assert!(matches!(resp.body(), Body::Bytes(b) if b == b"429 Too Many Requests\nslow down\n"));
    ///
    /// let resp = Response::error(&HttpError::new(999, "no such status"));
    /// assert_eq!(resp.status(), 500);
    /// assert!(matches!(resp.body(), Body::Bytes(b) if b.starts_with(b"500 Internal Server Error\n")));
    /// ```
    pub fn error(err: &HttpError) -> Response {
        let status = wire_status(err.status());
        Response::text(
            status,
            format!("{status} {}\n{}\n", reason_phrase(status), err.message()),
        )
    }
}

/// What the request side contributes to a response head.
///
/// Kept apart from [`Response`] because none of it is the handler's to decide: the
/// worker fills it in from the [`RequestHead`](super::RequestHead) and from whether it
/// means to keep the connection (it also closes after errors, and when draining).
/// [`write_head`] takes it.
///
/// # Examples
///
/// Filled in from the request: an HTTP/1.0 client that asked to keep the connection is
/// told that it is kept.
///
/// ```
/// use br_serve::Response;
/// use br_serve::http::{Limits, ResponseMeta, format_imf_fixdate, parse_head, write_head};
///
/// let raw = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
/// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
/// let meta = ResponseMeta {
///     version: head.version(),
///     keep_alive: head.keep_alive(),
///     head_request: head.is_head(),
/// };
/// let mut out = Vec::new();
/// write_head(&mut out, &Response::new(204), &meta, &format_imf_fixdate(0));
/// assert!(out.ends_with(b"Connection: keep-alive\r\n\r\n"));
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The request's version: decides whether keep-alive must be announced.
    pub version: Version,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
    /// Whether the request was HEAD (no body is sent, Content-Length still is).
    pub head_request: bool,
}

/// The fields a handler sets that a response may carry only once (RFC 9110 §5.3: a
/// sender MUST NOT generate a field line twice unless its value is a list or it is
/// Set-Cookie): [`Response::with_header`] replaces these rather than adding a second,
/// which a client would pick from at random (browsers differ on Content-Type).
///
/// With them, the singletons a wrapper around another handler most often sets again: a
/// doubled `Access-Control-Allow-Origin` fails the browser's CORS check (Fetch §3.2.5),
/// and `Strict-Transport-Security` (RFC 6797 §8.1) and `X-Frame-Options` (RFC 7034 §2)
/// take one value.
const SINGLE_VALUED: [&str; 13] = [
    "content-type",
    "location",
    "etag",
    "last-modified",
    "expires",
    "retry-after",
    "content-range",
    "content-location",
    "content-disposition",
    "age",
    "access-control-allow-origin",
    "strict-transport-security",
    "x-frame-options",
];

fn is_single_valued(name: &str) -> bool {
    SINGLE_VALUED
        .iter()
        .any(|single| single.eq_ignore_ascii_case(name))
}

/// Header fields the server writes itself; a handler's copies are dropped. Content-Length
/// and Transfer-Encoding frame the message (a wrong one desynchronises the client);
/// Connection and Keep-Alive follow the connection's real fate (which a handler's
/// `Connection: close` decides: see [`Response::closes_connection`]); Date and Server are
/// always written once.
const SERVER_OWNED: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "server",
];

/// Appends the status line and header section of `resp` to `out`.
///
/// In order: `HTTP/1.1 <code> <reason>` (RFC 9110 §2.5: we send our own version, also to
/// 1.0 clients), `Server: br-serve`, `Date: <date>`, the handler's fields except those
/// the server owns (Content-Length, Transfer-Encoding, Connection, Keep-Alive, Date,
/// Server; matched case-insensitively) and except any whose name is not a token or whose
/// value holds a CR, LF, NUL or other control byte (response splitting; logged as a
/// warning), then Content-Length (or, for a [`Body::Stream`] without one, chunked
/// Transfer-Encoding to HTTP/1.1), then `Connection: close` when `!meta.keep_alive` or
/// when the close must end the content (a stream of unknown length to HTTP/1.0, RFC 9112
/// §6.3), else `Connection: keep-alive` for a persistent HTTP/1.0 connection, then the
/// empty line.
///
/// Content-Length (RFC 9110 §8.6): never for 1xx and 204; for HEAD and 304, only the
/// length a GET's 200 would have: for HEAD, the body's when the handler gave one to
/// measure (as for GET); else, and always for a 304 (whose body, never sent, is no 200's),
/// the handler's own `Content-Length` if it said one (a proxy passing on its upstream's
/// answer), else none, because `Content-Length: 0` would claim the representation is
/// empty. A status outside 100-599 is written as 500.
///
/// The body is not written: the caller sends it after the head, if
/// [`body_allowed`] says so. `date` is the 29-byte value from [`DateCache`](super::DateCache)
/// or [`format_imf_fixdate`](super::format_imf_fixdate).
///
/// # Examples
///
/// What a client receives for a handler's response, server-owned fields dropped:
///
/// ```
/// use br_serve::http::{ResponseMeta, format_imf_fixdate, write_head};
/// use br_serve::{Response, Version};
///
/// let resp = Response::text(200, "hi\n")
///     .with_header("Content-Length", "999") // the server frames the message itself
///     .with_header("X-Request-Id", "abc")
///     .with_header("X-Echo", "a\r\nSet-Cookie: evil=1"); // response splitting: dropped
/// let meta = ResponseMeta { version: Version::Http11, keep_alive: false, head_request: false };
/// let mut out = Vec::new();
/// write_head(&mut out, &resp, &meta, &format_imf_fixdate(784_111_777));
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "HTTP/1.1 200 OK\r\n\
///      Server: br-serve\r\n\
///      Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
///      Content-Type: text/plain; charset=utf-8\r\n\
///      X-Request-Id: abc\r\n\
///      Content-Length: 3\r\n\
///      Connection: close\r\n\
///      \r\n"
/// );
/// ```
pub fn write_head(out: &mut Vec<u8>, resp: &Response, meta: &ResponseMeta, date: &[u8]) {
    let status = wire_status(resp.status);
    // One reservation up front, so each piece below is a plain copy.
    out.reserve(HEAD_RESERVE);
    out.extend_from_slice(&status_line_start(status));
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: br-serve\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    for (name, value) in resp.headers() {
        if let Some((name, value)) = writable_field(name, value) {
            push_field(out, name.as_bytes(), value.as_bytes());
        }
    }
    match content_length(status, resp, meta.head_request) {
        Some(len) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, len);
            out.extend_from_slice(b"\r\n");
        }
        None if stream_end(status, resp, meta) == Some(StreamEnd::Chunked) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        None => {}
    }
    if !meta.keep_alive || ended_by_close(status, resp, meta) {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if meta.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `HTTP/1.1 NNN ` for a status already checked to be three digits: a fixed-size copy.
fn status_line_start(status: u16) -> [u8; 13] {
    let mut start = *b"HTTP/1.1 000 ";
    for (i, place) in [100, 10, 1].into_iter().enumerate() {
        start[9 + i] = b'0' + (status / place % 10) as u8;
    }
    start
}

/// Room for a typical head: status line, Server, Date, a few fields, Content-Length.
const HEAD_RESERVE: usize = 256;

fn wire_status(status: u16) -> u16 {
    if (100..=599).contains(&status) {
        status
    } else {
        log::warn!("handler returned status {status}; sending 500");
        500
    }
}

/// The handler's field, if it may be written (not one the server owns, nor one of
/// [`Response::invalid_fields`]), its value without the whitespace around it (RFC 9110
/// §5.5: a field value has none; a recipient strips it, and would see another value
/// than the handler set).
fn writable_field<'a>(name: &'a str, value: &'a str) -> Option<(&'a str, &'a str)> {
    (!server_owned(name) && valid_field(name, value)).then(|| (name, trim_ows_text(value)))
}

/// RFC 9110 §5.1 field-name = token; §5.5 field-value has no CTL but HTAB.
fn valid_field(name: &str, value: &str) -> bool {
    is_token(name.as_bytes()) && is_field_text(value.as_bytes())
}

fn server_owned(name: &str) -> bool {
    SERVER_OWNED
        .iter()
        .any(|owned| owned.eq_ignore_ascii_case(name))
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response
/// with a status code of 1xx (Informational) or 204 (No Content)", and in a HEAD
/// response or a 304 only the length a GET's 200 would have had ("MUST NOT ... unless
/// its field value equals"): for HEAD, measured from the body the handler gave for it
/// (one handler answers GET and HEAD), or else as the handler declared it; for a 304, as
/// the handler declared it, never from a body, which is not the 200's but a mistake
/// (`Response::text(304, "not modified")` said a false `Content-Length: 12`).
fn content_length(status: u16, resp: &Response, head_request: bool) -> Option<u64> {
    let body = &resp.body;
    match status {
        100..=199 | 204 => None,
        // §15.3.6: "a server MUST NOT generate content in a 205 response"; saying so
        // keeps the connection's framing (a 205 is not among the bodiless statuses of
        // RFC 9112 §6.3, so a client would otherwise read to the close).
        205 => Some(0),
        304 => declared_length(resp),
        _ if head_request && matches!(body, Body::Empty) => declared_length(resp),
        _ if matches!(body, Body::Stream(_)) => declared_length(resp),
        _ => Some(body.len()),
    }
}

/// How the end of a [`Body::Stream`]'s content is marked on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// After the handler's own `Content-Length`: exactly that many bytes are sent.
    Length(u64),
    /// RFC 9112 §7.1: each read a chunk, then the last chunk.
    Chunked,
    /// RFC 9112 §6.3 ¶8: by closing the connection, for an HTTP/1.0 client, which
    /// cannot read chunks (§7: a server MUST NOT send them to it).
    Close,
}

/// How a response's stream ends, `None` when it has no stream or its status no content
/// (1xx, 204, 304: RFC 9112 §6.3 ¶1). Said also in a HEAD's answer, as a GET's would say
/// it (RFC 9110 §9.3.2), though no content follows.
pub(crate) fn stream_end(status: u16, resp: &Response, meta: &ResponseMeta) -> Option<StreamEnd> {
    if !matches!(resp.body, Body::Stream(_)) || matches!(status, 100..=199 | 204 | 304) {
        return None;
    }
    Some(match content_length(status, resp, meta.head_request) {
        Some(len) => StreamEnd::Length(len),
        None if meta.version == Version::Http11 => StreamEnd::Chunked,
        None => StreamEnd::Close,
    })
}

/// Whether the content's end is marked by the close: a stream sent to an HTTP/1.0
/// client without a length (RFC 9112 §6.3 ¶8), which the connection cannot outlive. One
/// not sent (a HEAD's) marks nothing.
pub(crate) fn ended_by_close(status: u16, resp: &Response, meta: &ResponseMeta) -> bool {
    let ends = stream_end(status, resp, meta) == Some(StreamEnd::Close);
    ends && body_allowed(status, meta.head_request)
}

/// The handler's own `Content-Length`, when it is one (RFC 9110 §8.6: `1*DIGIT`). It is
/// not written as the handler gave it: the server writes the field itself.
fn declared_length(resp: &Response) -> Option<u64> {
    let mut fields = resp.headers();
    let (_, value) = fields.find(|(name, _)| name.eq_ignore_ascii_case("content-length"))?;
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| value.parse().ok()).flatten()
}

/// Appends `n` in decimal, without allocating.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(d) = digits.get_mut(start) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Whether a response may carry content: not to HEAD, and not with 1xx, 204, 205 or 304
/// (RFC 9110 §6.4.1, §9.3.2, §15.3.6; RFC 9112 §6.3 ¶1).
///
/// The worker asks this after [`write_head`] and drops the body when the answer is no,
/// so a handler may answer HEAD exactly as it answers GET.
///
/// # Examples
///
/// ```
/// use br_serve::http::body_allowed;
///
/// assert!(body_allowed(200, false));
/// assert!(!body_allowed(200, true)); // HEAD: the length is sent, the bytes are not
/// assert!(!body_allowed(304, false));
/// assert!(!body_allowed(204, false));
/// assert!(!body_allowed(205, false)); // Reset Content: sent with Content-Length: 0
/// ```
pub fn body_allowed(status: u16, head_request: bool) -> bool {
    !(head_request || (100..200).contains(&status) || matches!(status, 204 | 205 | 304))
}

/// The reason phrase registered for `status` in IANA's HTTP status code registry (RFC 9110
/// §15, and the RFCs of WebDAV, 6585, 7725, 8297, 8470 ...), or `"Unknown"`.
///
/// # Examples
///
/// ```
/// use br_serve::http::reason_phrase;
///
/// assert_eq!(reason_phrase(404), "Not Found");
/// assert_eq!(reason_phrase(413), "Content Too Large"); // RFC 9110's name, not "Payload Too Large"
/// assert_eq!(reason_phrase(299), "Unknown");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        status => reason_4xx_5xx(status),
    }
}

fn reason_4xx_5xx(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    /// A response is moved several times per request (built by value, returned through
    /// the panic guard, handed to the output queue); past 128 bytes each move is a
    /// `memcpy` call.
    #[test]
    fn response_moves_inline() {
        assert!(std::mem::size_of::<Response>() <= 128);
    }

    fn head(resp: &Response, version: Version, keep_alive: bool, head_request: bool) -> String {
        let mut out = Vec::new();
        write_head(
            &mut out,
            resp,
            &ResponseMeta {
                version,
                keep_alive,
                head_request,
            },
            DATE,
        );
        String::from_utf8(out).unwrap_or_default()
    }

    const PRE: &str = "Server: br-serve\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    const CHUNKED: &str = "Transfer-Encoding: chunked\r\n";

    fn stream(status: u16) -> Response {
        Response::new(status).with_body(Body::Stream(Box::new(std::io::empty())))
    }

    #[test]
    fn a_stream_s_unusable_length_is_told() {
        let cases = [
            (
                stream(200).with_header("Content-Length", "10x"),
                Some("10x"),
            ),
            (
                stream(200).with_header("Content-Length", "+10"),
                Some("+10"),
            ),
            (stream(200).with_header("Content-Length", "10"), None),
            (stream(200), None),
            // Not a stream: overridden_length speaks for these.
            (
                Response::new(200).with_header("Content-Length", "10x"),
                None,
            ),
        ];
        for (resp, want) in cases {
            assert_eq!(resp.unusable_stream_length(), want, "{resp:?}");
        }
    }

    #[test]
    fn write_head_table() {
        let v11 = Version::Http11;
        let v10 = Version::Http10;
        let cases: Vec<(Response, Version, bool, bool, String)> = vec![
            // A plain 200: status line, Server, Date, handler fields, Content-Length.
            (
                Response::text(200, "hi"),
                v11,
                true,
                false,
                format!(
                    "HTTP/1.1 200 OK\r\n{PRE}Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\n"
                ),
            ),
            // Not persistent: Connection: close (RFC 9112 §9.6).
            (
                Response::new(200),
                v11,
                false,
                false,
                format!("HTTP/1.1 200 OK\r\n{PRE}Content-Length: 0\r\nConnection: close\r\n\r\n"),
            ),
            // HTTP/1.0 kept alive must be told so (RFC 9112 Appendix C.2.2).
            (
                Response::new(200),
                v10,
                true,
                false,
                format!(
                    "HTTP/1.1 200 OK\r\n{PRE}Content-Length: 0\r\nConnection: keep-alive\r\n\r\n"
                ),
            ),
            // RFC 9110 §8.6: no Content-Length on 204 ...
            (
                Response::new(204),
                v11,
                true,
                false,
                format!("HTTP/1.1 204 No Content\r\n{PRE}\r\n"),
            ),
            // ... nor on 1xx.
            (
                Response::new(103),
                v11,
                true,
                false,
                format!("HTTP/1.1 103 Early Hints\r\n{PRE}\r\n"),
            ),
            // RFC 9110 §15.3.6: a 205 has no content, whatever the handler gave.
            (
                Response::new(205).with_body(Body::Static(b"abc")),
                v11,
                true,
                false,
                format!("HTTP/1.1 205 Reset Content\r\n{PRE}Content-Length: 0\r\n\r\n"),
            ),
            // HEAD: the length GET would have (RFC 9110 §9.3.2, §8.6).
            (
                Response::text(200, "hello"),
                v11,
                true,
                true,
                format!(
                    "HTTP/1.1 200 OK\r\n{PRE}Content-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\n"
                ),
            ),
            // HEAD answered without the GET's body: the length the handler declares
            // (a proxy passing on its upstream's), else none, never a false 0.
            (
                Response::new(200).with_header("Content-Length", "1234"),
                v11,
                true,
                true,
                format!("HTTP/1.1 200 OK\r\n{PRE}Content-Length: 1234\r\n\r\n"),
            ),
            (
                Response::new(200),
                v11,
                true,
                true,
                format!("HTTP/1.1 200 OK\r\n{PRE}\r\n"),
            ),
            (
                Response::new(200).with_header("Content-Length", "+12"),
                v11,
                true,
                true,
                format!("HTTP/1.1 200 OK\r\n{PRE}\r\n"),
            ),
            // ... but a body given for HEAD is measured, whatever the handler declares.
            (
                Response::text(200, "hello").with_header("Content-Length", "1234"),
                v11,
                true,
                true,
                format!(
                    "HTTP/1.1 200 OK\r\n{PRE}Content-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\n"
                ),
            ),
            (
                Response::new(304).with_header("Content-Length", "77"),
                v11,
                true,
                false,
                format!("HTTP/1.1 304 Not Modified\r\n{PRE}Content-Length: 77\r\n\r\n"),
            ),
            // A 304's body is never measured: not the 200's, but a mistake (see
            // write_head); the handler's own length alone is said.
            (
                Response::new(304).with_body(Body::Static(b"abc")),
                v11,
                true,
                false,
                format!("HTTP/1.1 304 Not Modified\r\n{PRE}\r\n"),
            ),
            (
                Response::new(304),
                v11,
                true,
                false,
                format!("HTTP/1.1 304 Not Modified\r\n{PRE}\r\n"),
            ),
            // Server-owned fields from the handler are dropped, in any case.
            (
                Response::new(200)
                    .with_header("content-length", "99")
                    .with_header("Transfer-Encoding", "chunked")
                    .with_header("CONNECTION", "keep-alive")
                    .with_header("Keep-Alive", "timeout=5")
                    .with_header("Date", "yesterday")
                    .with_header("Server", "other")
                    .with_header("X-Kept", "yes"),
                v11,
                true,
                false,
                format!("HTTP/1.1 200 OK\r\n{PRE}X-Kept: yes\r\nContent-Length: 0\r\n\r\n"),
            ),
            // Response splitting: CR, LF, NUL or other controls in a value, or a bad name.
            (
                Response::new(200)
                    .with_header("X-A", "a\r\nSet-Cookie: evil")
                    .with_header("X-B", "b\nc")
                    .with_header("X-C", "c\0")
                    .with_header("X-D", "d\x7f")
                    // Past the first 8-byte word, which the check skips whole when plain.
                    .with_header("X-E", "a longer value\r\nSet-Cookie: evil")
                    .with_header("X-F", "0123456789abcdef\x7f")
                    .with_header("Bad Name", "v")
                    .with_header("X-Tab", "a\tb")
                    // RFC 9110 §5.5: no whitespace around a value.
                    .with_header("X-Padded", " \tp q\t "),
                v11,
                true,
                false,
                format!(
                    "HTTP/1.1 200 OK\r\n{PRE}X-Tab: a\tb\r\nX-Padded: p q\r\nContent-Length: 0\r\n\r\n"
                ),
            ),
            // A stream of unknown length: chunked to HTTP/1.1 (RFC 9112 §7.1), also in
            // a HEAD's answer, as its GET's would say ...
            (
                stream(200),
                v11,
                true,
                false,
                format!("HTTP/1.1 200 OK\r\n{PRE}{CHUNKED}\r\n"),
            ),
            (
                stream(200),
                v11,
                true,
                true,
                format!("HTTP/1.1 200 OK\r\n{PRE}{CHUNKED}\r\n"),
            ),
            // ... to HTTP/1.0 with no length at all: the close ends it (§6.3), even
            // when the caller asked to keep the connection, which cannot outlive it ...
            (
                stream(200),
                v10,
                false,
                false,
                format!("HTTP/1.1 200 OK\r\n{PRE}Connection: close\r\n\r\n"),
            ),
            (
                stream(200),
                v10,
                true,
                false,
                format!("HTTP/1.1 200 OK\r\n{PRE}Connection: close\r\n\r\n"),
            ),
            // ... but not a HEAD's answer, which sends no content to end.
            (
                stream(200),
                v10,
                true,
                true,
                format!("HTTP/1.1 200 OK\r\n{PRE}Connection: keep-alive\r\n\r\n"),
            ),
            // ... and with the handler's length, framed by it.
            (
                stream(200).with_header("Content-Length", "10"),
                v10,
                true,
                false,
                format!(
                    "HTTP/1.1 200 OK\r\n{PRE}Content-Length: 10\r\nConnection: keep-alive\r\n\r\n"
                ),
            ),
            // A stream with a status that has no content says nothing of its length.
            (
                stream(204),
                v11,
                true,
                false,
                format!("HTTP/1.1 204 No Content\r\n{PRE}\r\n"),
            ),
            (
                stream(304),
                v11,
                true,
                false,
                format!("HTTP/1.1 304 Not Modified\r\n{PRE}\r\n"),
            ),
            (
                stream(205),
                v11,
                true,
                false,
                format!("HTTP/1.1 205 Reset Content\r\n{PRE}Content-Length: 0\r\n\r\n"),
            ),
            // A status outside 100-599 is sent as 500.
            (
                Response::new(42),
                v11,
                true,
                false,
                format!("HTTP/1.1 500 Internal Server Error\r\n{PRE}Content-Length: 0\r\n\r\n"),
            ),
        ];
        for (resp, version, keep_alive, head_request, want) in cases {
            assert_eq!(
                head(&resp, version, keep_alive, head_request),
                want,
                "{resp:?}"
            );
        }
    }

    #[test]
    fn body_allowed_table() {
        let cases: &[(u16, bool, bool)] = &[
            // RFC 9110 §9.3.2: never a body for HEAD.
            (200, true, false),
            // RFC 9110 §15.2: 1xx has no content.
            (100, false, false),
            (199, false, false),
            // RFC 9110 §15.3.5 / §15.3.6 / §15.4.5: 204, 205 and 304 have no content.
            (204, false, false),
            (205, false, false),
            (304, false, false),
            // Everything else may.
            (200, false, true),
            (206, false, true),
            (404, false, true),
            (500, false, true),
        ];
        for (status, head_request, want) in cases {
            assert_eq!(
                body_allowed(*status, *head_request),
                *want,
                "{status} {head_request}"
            );
        }
    }

    #[test]
    fn invalid_fields_are_what_write_head_drops() {
        let resp = Response::new(200)
            .with_header("X-A", "a\r\nSet-Cookie: evil")
            .with_header("Bad Name", "v")
            .with_header("X-Tab", "a\tb")
            // Dropped as the server's own, not named as invalid.
            .with_header("Content-Length", "1\r\n");
        let names: Vec<&str> = resp.invalid_fields().collect();
        assert_eq!(names, ["X-A", "Bad Name"]);
    }

    /// A handler's Content-Length that is not what goes out is reported with what does;
    /// one that agrees, or that a bodiless HEAD or 304 sends as it is, is not.
    #[test]
    fn overridden_lengths_are_what_write_head_replaces() {
        let text =
            |declared: &str| Response::text(200, "hello\n").with_header("Content-Length", declared);
        let bodiless = |status: u16| Response::new(status).with_header("Content-Length", "1000");
        let cases = [
            (text("6"), false, None),
            (text("3"), false, Some(("3", 6))),
            (text("6x"), false, Some(("6x", 6))),
            (text("1000"), true, Some(("1000", 6))),
            (bodiless(200), true, None),
            (bodiless(304), false, None),
            (bodiless(200), false, Some(("1000", 0))),
            // No Content-Length goes out at all: nothing replaced it.
            (bodiless(204), false, None),
            (Response::text(200, "hello\n"), false, None),
        ];
        for (resp, head_request, want) in cases {
            assert_eq!(resp.overridden_length(head_request), want, "{resp:?}");
        }
    }

    #[test]
    fn constructors_and_lengths() {
        let r = Response::bytes(201, "application/json", b"{}".to_vec()).with_header("X", "1");
        assert_eq!(r.status(), 201);
        let fields: Vec<(&str, &str)> = r.headers().collect();
        assert_eq!(fields, [("Content-Type", "application/json"), ("X", "1")]);
        // The fixed name is not copied for every response.
        assert!(matches!(r.headers[0].0, Cow::Borrowed(_)));
        assert_eq!(r.body_len(), 2);
        assert!(matches!(r.into_body(), Body::Bytes(b) if b == b"{}"));
        assert_eq!(Body::Static(b"abc").len(), 3);
        assert!(Body::Empty.is_empty());
        let err = HttpError::new(431, "too many header fields");
        let resp = Response::error(&err);
        assert_eq!(resp.status(), 431);
        match resp.body() {
            Body::Bytes(b) => {
                assert_eq!(
                    b,
                    b"431 Request Header Fields Too Large\ntoo many header fields\n"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(CONTINUE_100, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn decimal_and_reasons() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(418), "Unknown");
        for (status, reason) in [
            (402, "Payment Required"),
            (407, "Proxy Authentication Required"),
            (451, "Unavailable For Legal Reasons"),
            (207, "Multi-Status"),
            (226, "IM Used"),
            (423, "Locked"),
            (425, "Too Early"),
            (507, "Insufficient Storage"),
            (508, "Loop Detected"),
            (511, "Network Authentication Required"),
        ] {
            assert_eq!(reason_phrase(status), reason);
        }
    }
}
