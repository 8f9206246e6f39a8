//! The demo application, served by default. Its routes exercise the server the way the
//! project's origin did: `/work?ms=400` burns 400 ms of CPU, the cost of one request of
//! the service br-serve was built for.
//!
//! | route | answer |
//! |---|---|
//! | `/` | `Hello, World!` |
//! | `/healthz` | 200 `ok` while the worker's loop runs (liveness) |
//! | `/readyz` | 200 `ready`, or 503 `draining` once the server is stopping (readiness) |
//! | `/work?ms=N` | burns N ms of this thread's CPU time (at most 60 000), then 200 |
//! | `/sleep?ms=N` | sleeps N ms (at most 60 000), then 200 |
//! | `POST /echo` (or `PUT`) | the request body, with the request's Content-Type |
//! | `/pid` | the pid of the worker that answered |
//! | `/close` | `bye`, with `Connection: close`: the server closes the connection after it |
//! | `/status/N` | an empty response with status N (200 to 599) |
//! | `/panic` | the handler panics: the worker answers 500 and keeps serving |
//! | `/leak?mb=N` | keeps N MiB (at most 64) for the rest of the worker's life, like a leaking app |
//! | `/stream?kib=N` | N KiB (at most 4 GiB) made as they are sent ([`Body::Stream`]), each KiB a line holding its number; `length=L` declares a Content-Length, `ms_per_kib=M` makes each KiB take M ms (a slow query), `fail_after=K` or `panic_after=K` makes the read fail or panic after K KiB, and `panic_on_drop` the reader panic when dropped |
//!
//! Other methods of HTTP get 405 on these routes and 404 elsewhere, and a method HTTP
//! does not define (`BREW`, `get`) gets 501; an upload anywhere but `/echo` is refused on
//! its head, before its body is sent ([`Handler::before_body`]), but for a GET's or
//! HEAD's body anywhere but `/echo`, which is read and ignored.

use std::io::{self, Read};
use std::time::Duration;

use crate::Handler;
use crate::app::refuse_method;
use crate::http::{Body, Request, RequestHead, Response};
use crate::sys::clock::thread_cpu_time;

/// The longest `/work` or `/sleep` the demo accepts, so one request cannot pin a worker
/// for ever.
const MAX_MS: u64 = 60_000;
/// The most one `/leak` keeps.
const MAX_LEAK_MB: usize = 64;
/// The most one `/stream` sends: 4 GiB.
const MAX_STREAM_KIB: u64 = 1 << 22;

/// Fault injection for the boot path: while the file this variable names exists, every
/// worker fails while building the app, the way a broken deploy would. Operators use it
/// to see the crash-loop backoff; tests use it to check it.
///
/// A file rather than the variable alone, so the fault can be switched off without
/// restarting the master (whose environment the workers inherit): remove the file and
/// the next worker boots. With [`BOOT_MS_ENV`] too, a worker fails after that long, as
/// an app that loads for a while, then finds its model file missing, does.
///
/// # Examples
///
/// What an operator (or a test) runs to see the crash-loop backoff, then to end it:
///
/// ```text
/// $ touch /tmp/broken-deploy
/// $ BR_SERVE_DEMO_BOOT_FAULT=/tmp/broken-deploy br-serve
/// ... every worker logs "failing boot on purpose"; the master backs off between spawns
/// $ rm /tmp/broken-deploy      # the next worker boots and serves
/// ```
///
/// In code, [`Demo::boot`] is where the fault is checked:
///
/// ```
/// use br_serve::app::demo::{BOOT_FAULT_ENV, Demo};
///
/// // Unset, or naming a file that does not exist: the demo boots.
/// assert!(std::env::var_os(BOOT_FAULT_ENV).is_none());
/// let _demo = Demo::boot();
/// ```
pub const BOOT_FAULT_ENV: &str = "BR_SERVE_DEMO_BOOT_FAULT";

/// A slow boot on purpose: every worker spends this many milliseconds (at most a minute)
/// building the app, as one that loads a model or warms a cache does. Shows how
/// `--timeout` covers the boot, how HUP and `--max-requests` roll slow workers in, and
/// how the autoscaler keeps judging the queue meanwhile.
///
/// # Examples
///
/// ```text
/// $ BR_SERVE_DEMO_BOOT_MS=2000 br-serve --max-requests 100 --max-workers 4
/// ```
pub const BOOT_MS_ENV: &str = "BR_SERVE_DEMO_BOOT_MS";

/// The demo application. It holds no state; one instance serves every request.
///
/// The routes are in the [module documentation](self). Besides being what `br-serve`
/// serves by default, it is a ready-made source of liveness and readiness answers for an
/// embedding application.
///
/// # Examples
///
/// ```
/// use br_serve::app::demo::Demo;
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::{Handler, Request, Response};
///
/// // Health checks from the demo, everything else from the application.
/// let mut demo = Demo::boot();
/// let mut app = move |req: &Request| match req.path() {
///     "/healthz" | "/readyz" => demo.handle(req),
///     _ => Response::text(200, "my application\n"),
/// };
///
/// let head = parse_head(b"GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
///     .expect("a complete head");
/// // 200 "ready" here; 503 "draining" in a worker once the server is stopping.
/// assert_eq!(app.handle(&Request::new(head, Vec::new(), None)).status(), 200);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Demo;

impl Demo {
    /// Builds the app in a worker, honouring [`BOOT_FAULT_ENV`] and [`BOOT_MS_ENV`].
    ///
    /// # Panics
    ///
    /// When the file named by [`BOOT_FAULT_ENV`] exists: on purpose, so the master sees a
    /// worker that fails to boot.
    ///
    /// # Examples
    ///
    /// The factory the `br-serve` binary gives [`run_main`](crate::run_main) when there is
    /// no `--static`: one demo per worker, built after fork.
    ///
    /// ```
    /// use br_serve::app::demo::Demo;
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Body, Config, Handler, Request};
    ///
    /// let factory = |_config: &Config| -> Box<dyn Handler> { Box::new(Demo::boot()) };
    /// # let _ = factory;
    ///
    /// let mut demo = Demo::boot();
    /// let head = parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())?
    ///     .expect("a complete head");
    /// let resp = demo.handle(&Request::new(head, Vec::new(), None));
    /// assert!(matches!(resp.body(), Body::Static(b"Hello, World!\n")));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn boot() -> Demo {
        if let Some(ms) = std::env::var(BOOT_MS_ENV).ok().and_then(|v| v.parse().ok()) {
            std::thread::sleep(Duration::from_millis(MAX_MS.min(ms)));
        }
        if let Some(path) =
            std::env::var_os(BOOT_FAULT_ENV).filter(|p| std::path::Path::new(p).exists())
        {
            panic!(
                "{BOOT_FAULT_ENV}: {} exists; failing boot on purpose",
                path.to_string_lossy()
            );
        }
        Demo
    }
}

impl Handler for Demo {
    fn handle(&mut self, req: &Request) -> Response {
        let path = req.path();
        match (req.method(), path) {
            // Static parts only: the hello path allocates nothing for its response.
            ("GET" | "HEAD", "/") => Response::new(200)
                .with_static_header("Content-Type", TEXT)
                .with_body(Body::Static(b"Hello, World!\n")),
            ("GET" | "HEAD", "/healthz") => Response::text(200, "ok\n"),
            ("GET" | "HEAD", "/readyz") => readyz(),
            ("GET" | "HEAD", "/work") => with_ms(req, burn_cpu),
            ("GET" | "HEAD", "/sleep") => with_ms(req, std::thread::sleep),
            ("POST" | "PUT", "/echo") => echo(req),
            ("GET" | "HEAD", "/panic") => panic!("/panic asked for a handler panic"),
            ("GET" | "HEAD", "/pid") => Response::text(200, format!("{}\n", std::process::id())),
            ("GET" | "HEAD", "/close") => {
                Response::text(200, "bye\n").with_static_header("Connection", "close")
            }
            ("GET" | "HEAD", "/leak") => leak(req),
            ("GET" | "HEAD", "/stream") => stream(req),
            ("GET" | "HEAD", _) if path.starts_with("/status/") => status(&path[8..]),
            (method, _) => refused(method, path),
        }
    }

    /// Only `/echo` reads a body: any other upload is refused before it is sent, so a
    /// client waiting on `Expect: 100-continue` gets its 404, 405 or 501 instead of a
    /// `100 Continue` (RFC 9110 §10.1.1). A GET's or HEAD's body is read and ignored on
    /// any route but `/echo`, which takes neither.
    fn before_body(&mut self, head: &RequestHead) -> Option<Response> {
        match (head.method(), head.path()) {
            // A GET's body means nothing (RFC 9110 §9.3.1): read and ignored, where the
            // route takes GET at all.
            ("POST" | "PUT", "/echo") => None,
            ("GET" | "HEAD", path) if path != "/echo" => None,
            (method, path) => Some(refused(method, path)),
        }
    }
}

/// The answer to what the demo does not serve: 405 with the methods it does serve at
/// `path`, or 404 where it serves nothing; 501 for a method HTTP does not define.
fn refused(method: &str, path: &str) -> Response {
    let allow = match path {
        "/echo" => Some("POST, PUT"),
        _ if KNOWN_PATHS.contains(&path) || path.starts_with("/status/") => Some("GET, HEAD"),
        _ => None,
    };
    refuse_method(method, allow)
}

const TEXT: &str = "text/plain; charset=utf-8";
const KNOWN_PATHS: &[&str] = &[
    "/", "/healthz", "/readyz", "/work", "/sleep", "/pid", "/close", "/panic", "/leak", "/stream",
];

fn readyz() -> Response {
    match crate::is_draining() {
        true => Response::text(503, "draining\n"),
        false => Response::text(200, "ready\n"),
    }
}

/// Runs `f` for the `ms` query parameter, answering 400 when it is missing or bad.
fn with_ms(req: &Request, f: fn(Duration)) -> Response {
    match req.query_param("ms").map(str::parse::<u64>) {
        Some(Ok(ms)) if ms <= MAX_MS => {
            f(Duration::from_millis(ms));
            Response::text(200, format!("done in {ms} ms\n"))
        }
        _ => Response::text(
            400,
            format!("ms must be a whole number from 0 to {MAX_MS}\n"),
        ),
    }
}

/// Spins until this thread has used `cpu` of CPU time: wall time would undercount on a
/// busy machine, and the point of the route is the CPU cost.
fn burn_cpu(cpu: Duration) {
    let start = thread_cpu_time();
    let mut x = 0u64;
    while thread_cpu_time().saturating_sub(start) < cpu {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
}

/// Keeps `mb` MiB for the rest of the worker's life, written so that they are resident:
/// a leak to watch `--max-worker-memory` replace the worker.
fn leak(req: &Request) -> Response {
    match req.query_param("mb").map(str::parse::<usize>) {
        Some(Ok(mb)) if mb <= MAX_LEAK_MB => {
            let kept: &'static mut [u8] = vec![0x5a; mb << 20].leak();
            std::hint::black_box(kept);
            Response::text(200, format!("leaked {mb} MiB\n"))
        }
        _ => Response::text(
            400,
            format!("mb must be a whole number from 0 to {MAX_LEAK_MB}\n"),
        ),
    }
}

/// `/stream`: `kib` KiB read as they are sent, never whole in memory, with the faults a
/// real source has (a lost database connection, a bug) on request.
fn stream(req: &Request) -> Response {
    let number = |name| req.query_param(name).map(str::parse::<u64>).transpose();
    let (Ok(Some(kib)), Ok(length), Ok(fail_at), Ok(panic_at), Ok(ms_per_kib)) = (
        number("kib"),
        number("length"),
        number("fail_after"),
        number("panic_after"),
        number("ms_per_kib"),
    ) else {
        return Response::text(
            400,
            "kib, length, fail_after, panic_after and ms_per_kib are whole numbers\n",
        );
    };
    if kib > MAX_STREAM_KIB || ms_per_kib.is_some_and(|ms| ms > MAX_MS) {
        let why = format!("kib must be at most {MAX_STREAM_KIB}, and ms_per_kib {MAX_MS}\n");
        return Response::text(400, why);
    }
    let lines = Lines {
        next: 0,
        end: kib,
        fail_at,
        panic_at,
        pause: Duration::from_millis(ms_per_kib.unwrap_or(0)),
        panic_on_drop: req.query_param("panic_on_drop").is_some(),
        line: [0; 1024],
        at: 1024,
    };
    let resp = Response::new(200).with_static_header("Content-Type", TEXT);
    match length {
        Some(length) => resp.with_header("Content-Length", &length.to_string()),
        None => resp,
    }
    .with_body(Body::Stream(Box::new(lines)))
}

/// The content of `/stream`: line N is N right-aligned in 1023 bytes and a newline, so
/// a client can check every KiB it got.
struct Lines {
    next: u64,
    end: u64,
    fail_at: Option<u64>,
    panic_at: Option<u64>,
    /// How long each line takes to make.
    pause: Duration,
    panic_on_drop: bool,
    line: [u8; 1024],
    /// How much of `line` has been read.
    at: usize,
}

impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.at == self.line.len() {
                // A fault comes on a read of its own, after the lines before it.
                let faulty = [self.fail_at, self.panic_at].contains(&Some(self.next));
                if self.next == self.end || (faulty && filled > 0) {
                    break;
                }
                self.make_line()?;
            }
            let n = (buf.len() - filled).min(self.line.len() - self.at);
            buf[filled..filled + n].copy_from_slice(&self.line[self.at..self.at + n]);
            (filled, self.at) = (filled + n, self.at + n);
        }
        Ok(filled)
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if self.panic_on_drop {
            panic!("/stream asked for a panic as its reader is dropped");
        }
    }
}

impl Lines {
    fn make_line(&mut self) -> io::Result<()> {
        if self.fail_at == Some(self.next) {
            return Err(io::Error::other("/stream's source failed on purpose"));
        }
        if self.panic_at == Some(self.next) {
            panic!("/stream asked for a panic in its read");
        }
        std::thread::sleep(self.pause);
        let text = format!("{:>1023}\n", self.next);
        self.line.copy_from_slice(text.as_bytes());
        (self.next, self.at) = (self.next + 1, 0);
        Ok(())
    }
}

fn echo(req: &Request) -> Response {
    let kind = req
        .header_str("content-type")
        .unwrap_or("application/octet-stream");
    Response::bytes(200, kind, req.body().to_vec())
}

fn status(code: &str) -> Response {
    match code.parse::<u16>() {
        Ok(code) if (200..=599).contains(&code) => Response::new(code),
        _ => Response::text(400, "status must be from 200 to 599\n"),
    }
}
