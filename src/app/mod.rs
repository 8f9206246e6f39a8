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

use crate::http::{Request, Response};

/// An application: one blocking call per request, request in, response out.
///
/// `&mut self` lets a handler keep per-worker state (a cache, a connection, a
/// non-thread-safe C library handle) without locks: each worker owns its own instance.
/// A panic inside `handle` is caught by the worker, answered with 500, and logged; the
/// worker keeps serving.
///
/// Closures implement it too:
///
/// ```
/// use br_serve::{Handler, Request, Response};
///
/// let mut hello = |_req: &Request| Response::text(200, "hello\n");
/// # let _: &mut dyn Handler = &mut hello;
/// ```
pub trait Handler {
    /// Answers one request. Long-running handlers should call [`crate::heartbeat`] now
    /// and then, or the master will think the worker hung after `--timeout` seconds.
    fn handle(&mut self, req: &Request) -> Response;
}

impl<F> Handler for F
where
    F: FnMut(&Request) -> Response,
{
    fn handle(&mut self, req: &Request) -> Response {
        self(req)
    }
}
