//! Applications: the [`Handler`] trait that br-serve calls for every request, and the
//! built-in applications the binary can serve.
//!
//! A handler is blocking and single-threaded by design: each worker process builds its
//! own (after fork, through the factory given to [`crate::run_main`]) and calls it for one
//! request at a time. That is what makes a pre-fork server the right home for CPU-heavy
//! handlers, for libraries that are not thread-safe, and for code that leaks or crashes:
//! the damage stays in one process, which the master replaces.

pub mod demo;
pub mod static_files;

use crate::http::{Request, RequestHead, Response};

/// An application: one blocking call per request, request in, response out.
///
/// `&mut self` lets a handler keep per-worker state (a cache, a connection, a
/// non-thread-safe C library handle) without locks: each worker owns its own instance.
/// A panic inside `handle` is caught by the worker, answered with 500, and logged; the
/// worker keeps serving. That needs panics to unwind, Rust's default: built with
/// `panic = "abort"`, a panic ends the worker (the master starts another, and the
/// client's connection closes unanswered).
///
/// The handler is dropped when its worker leaves gracefully (TERM, a HUP's new
/// generation, TTOU, `--max-requests`), after its last answer: `Drop` is where a worker
/// flushes or closes what it holds (gunicorn's `worker_exit`). A worker killed (after
/// `--timeout` or `--graceful-timeout`) runs nothing.
///
/// A handler that calls fork(2) itself must have the child exec or `_exit`, as
/// `std::process::Command` does: a child that returned into the worker would go on as a
/// copy of it, answering the parent's connections and unwatching the parent's
/// listeners in the epoll instance they share.
///
/// # Examples
///
/// Closures implement it too, which is all a stateless application needs:
///
/// ```
/// use br_serve::{Handler, Request, Response};
///
/// let mut hello = |_req: &Request| Response::text(200, "hello\n");
/// # let _: &mut dyn Handler = &mut hello;
/// ```
///
/// A closure may also own state, moved in when the factory builds it in the worker:
///
/// ```
/// use br_serve::{Handler, Request, Response};
///
/// fn build() -> Box<dyn Handler> {
///     let mut served = 0u64; // per worker: each process has its own count
///     Box::new(move |_req: &Request| {
///         served += 1;
///         Response::text(200, format!("request {served} of this worker\n"))
///     })
/// }
/// # let _ = build();
/// ```
///
/// A struct is the better home for state with a name and methods. This one keeps a small
/// cache of expensive answers; `&mut self` means no `Mutex`, and a test can call it
/// directly, with a request built the way the worker builds one:
///
/// ```
/// use std::collections::HashMap;
///
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::{Body, Handler, Request, Response};
///
/// struct Squares {
///     cache: HashMap<u64, String>,
///     misses: u64,
/// }
///
/// impl Handler for Squares {
///     fn handle(&mut self, req: &Request) -> Response {
///         let Some(n) = req.query_param("n").and_then(|n| n.parse::<u64>().ok()) else {
///             return Response::text(400, "n must be a whole number\n");
///         };
///         let misses = &mut self.misses;
///         let answer = self.cache.entry(n).or_insert_with(|| {
///             *misses += 1;
///             format!("{}\n", n.saturating_mul(n)) // stands for something costly
///         });
///         Response::text(200, answer.clone())
///     }
/// }
///
/// let mut app = Squares { cache: HashMap::new(), misses: 0 };
/// let head = parse_head(b"GET /square?n=12 HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
///     .expect("a complete head");
/// let req = Request::new(head, Vec::new(), None);
/// for _ in 0..3 {
///     let resp = app.handle(&req);
///     assert_eq!(resp.status(), 200);
///     assert!(matches!(resp.body(), Body::Bytes(b) if b == b"144\n"));
/// }
/// assert_eq!(app.misses, 1);
///
/// // What `run_main` takes: a factory that builds one per worker.
/// let factory = |_config: &br_serve::Config| -> Box<dyn Handler> {
///     Box::new(Squares { cache: HashMap::new(), misses: 0 })
/// };
/// # let _ = factory;
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
pub trait Handler {
    /// Answers one request. Long-running handlers should call [`crate::heartbeat`] now
    /// and then, or the master will think the worker hung after `--timeout` seconds.
    ///
    /// The request is complete when this is called: the whole body has been read (and
    /// de-chunked) within `--limit-request-body`. The server adds Date, Server and
    /// Content-Length to the response (and Connection when needed), and leaves the body
    /// out where HTTP forbids one (HEAD, 204, 205, 304). A 1xx is not a final answer, and
    /// one returned here is replaced by a 500 and logged (see [`Response::new`]).
    ///
    /// The server answers some requests itself, without calling the handler: `OPTIONS
    /// *` (200), `CONNECT` (501), `--metrics-path`, and a malformed request (its 4xx).
    ///
    /// # Examples
    ///
    /// A handler answers HEAD as it answers GET; the worker sends the length without the
    /// bytes. What the handler returns is all a test needs to look at:
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Handler, Request, Response};
    ///
    /// let mut app = |req: &Request| match req.path() {
    ///     "/" => Response::text(200, "home\n"),
    ///     _ => Response::text(404, "not found\n"),
    /// };
    /// let call = |app: &mut dyn Handler, raw: &[u8]| {
    ///     let head = parse_head(raw, &Limits::default()).unwrap().expect("a complete head");
    ///     app.handle(&Request::new(head, Vec::new(), None))
    /// };
    /// let head = call(&mut app, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    /// assert_eq!((head.status(), head.body_len()), (200, 5));
    /// assert_eq!(call(&mut app, b"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n").status(), 404);
    /// ```
    fn handle(&mut self, req: &Request) -> Response;

    /// Looks at a request that has a body before that body is read, to answer it without
    /// taking the upload: a method the resource does not allow, a missing credential, a
    /// size this route does not accept. `None`, the default, reads the body and then
    /// calls [`handle`](Self::handle).
    ///
    /// Called once the head is complete, and before `100 Continue` goes to a client that
    /// waits for it (`Expect: 100-continue`), so such a client never sends the body. A
    /// response returned here is sent at once, logged like any other, and the connection
    /// then closes (lingering, so that a client still sending gets the answer), since the
    /// unread body stands between it and the next request. A panic here is a 500, as in
    /// `handle`. Requests without a body never come here.
    ///
    /// The head carries the client's address ([`RequestHead::peer_addr`], the one
    /// [`Request::peer_addr`] gives `handle`; after a PROXY header, the client it names),
    /// for an allow-list or a per-client limit applied before the upload is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Handler, Request, RequestHead, Response};
    ///
    /// struct ReadOnly;
    ///
    /// impl Handler for ReadOnly {
    ///     fn handle(&mut self, _req: &Request) -> Response {
    ///         Response::text(200, "a page\n")
    ///     }
    ///
    ///     fn before_body(&mut self, head: &RequestHead) -> Option<Response> {
    ///         let refused = Response::text(405, "read-only\n").with_header("Allow", "GET, HEAD");
    ///         (!matches!(head.method(), "GET" | "HEAD")).then_some(refused)
    ///     }
    /// }
    ///
    /// let raw = b"PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 900000000\r\n\r\n";
    /// let head = parse_head(raw, &Limits { max_body: u64::MAX, ..Limits::default() })?
    ///     .expect("a complete head");
    /// let refused = ReadOnly.before_body(&head).expect("refused before the upload");
    /// assert_eq!(refused.status(), 405);
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    fn before_body(&mut self, head: &RequestHead) -> Option<Response> {
        let _ = head;
        None
    }
}

impl<F> Handler for F
where
    F: FnMut(&Request) -> Response,
{
    fn handle(&mut self, req: &Request) -> Response {
        self(req)
    }
}

/// A boxed handler, as a factory returns it, is a handler too, so code generic over
/// `H: Handler` (a wrapper adding a header, a router of handlers) takes it as it is.
///
/// # Examples
///
/// ```
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::{Handler, Request, Response};
///
/// /// Adds `X-Served-By` to whatever `inner` answers.
/// struct Tagged<H>(H);
///
/// impl<H: Handler> Handler for Tagged<H> {
///     fn handle(&mut self, req: &Request) -> Response {
///         self.0.handle(req).with_header("X-Served-By", "edge-1")
///     }
/// }
///
/// let boxed: Box<dyn Handler> = Box::new(|_req: &Request| Response::text(200, "hi\n"));
/// let mut app = Tagged(boxed);
/// let head = parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
///     .expect("a complete head");
/// let resp = app.handle(&Request::new(head, Vec::new(), None));
/// assert!(resp.headers().any(|(name, value)| (name, value) == ("X-Served-By", "edge-1")));
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
impl Handler for Box<dyn Handler> {
    fn handle(&mut self, req: &Request) -> Response {
        (**self).handle(req)
    }

    fn before_body(&mut self, head: &RequestHead) -> Option<Response> {
        (**self).before_body(head)
    }
}

/// The methods of HTTP itself (RFC 9110 §9, and PATCH from RFC 5789): the ones the
/// built-in applications know, whether or not a resource allows them. Method names are
/// case-sensitive (§9.1): `get` is none of them.
const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// A built-in application's answer to a method it does not serve at a resource that
/// allows `allow` (`None`: there is no such resource). For one of HTTP's own methods,
/// 405 with `Allow`, or 404 where nothing is; for any other, 501, which nothing here
/// implements (RFC 9110 §9.1: an unrecognized method SHOULD get 501, as Apache answers;
/// nginx says 405).
pub(crate) fn refuse_method(method: &str, allow: Option<&str>) -> Response {
    match (HTTP_METHODS.contains(&method), allow) {
        (false, _) => Response::text(501, "method not implemented\n"),
        (true, Some(allow)) => {
            Response::text(405, "method not allowed\n").with_header("Allow", allow)
        }
        (true, None) => Response::text(404, "not found\n"),
    }
}
