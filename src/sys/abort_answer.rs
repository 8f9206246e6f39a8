//! The answer a worker leaves behind when SIGABRT ends it inside the application.
//!
//! The master sends SIGABRT to a worker silent past `--timeout`, which is almost always a
//! worker stuck in a handler, and `abort()` in application code (Rust's own, on a failed
//! allocation or a panic while panicking) raises the same signal. Either way the process
//! dies with its request unanswered. Its client got an empty reply, which a proxy in front
//! turns into a 502 and may retry on another worker. gunicorn's users have asked for an
//! HTTP error instead (benoitc/gunicorn#2025, #2236), and were told that the process the
//! master kills cannot answer. This one can: while a handler runs, the worker keeps its
//! connection's descriptor here, and the SIGABRT action writes a complete 500 with
//! `Connection: close` to it before the default action (a core dump where they are on)
//! goes ahead.
//!
//! The master ends a worker still busy past `--graceful-timeout` (a stop, HUP's roll, a
//! recycled worker) the same way, so that client is answered too; it marks the worker's
//! slot first, and then the process leaves no core, since it did not hang.
//!
//! The worker arms it only while nothing of an earlier answer waits unsent on that
//! connection, so the 500 is the answer to the request that was running. Nothing of that
//! request's own answer can have been written yet: an answer goes out once its handler
//! has returned.
//!
//! A worker holds other connections too, kept alive between requests, and a request
//! their clients send while the handler hangs waits unread in the kernel. When the
//! worker died those were reset: a POST behind a hung request became a proxy's 502. So
//! the worker also keeps here, per place in its connection table, the descriptor of
//! each connection at rest (nothing unsent, nothing of a next request read), and the
//! action answers each that has a request of a method that is not idempotent waiting
//! with 503, `Retry-After: 1` and `Connection: close`: the request never ran, so its
//! client may send it again. An idempotent one is left to the reset, which a proxy or
//! client that kept the connection alive takes as leave to send it again on its own
//! (nginx does, on a cached upstream connection, and so do browsers and Go's client),
//! where a 503 would end it. A worker ended past its graceful time is stopping, not
//! hung: it would have answered every request it had no time to run 503 had its handler
//! returned (`Conn::refuse_unserved`), so the action does that for all of them, of any
//! method, as the drain promises.

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::sys::scoreboard;

/// The whole answer; a HEAD request gets the head alone.
const ANSWER: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\n\
    Server: br-serve\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 22\r\n\
    Connection: close\r\n\
    \r\n\
    Internal Server Error\n";
const BODY_LEN: usize = 22;

/// The answer to a request waiting on a connection at rest. No body, so it suits a HEAD
/// as well.
const NOT_RUN: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    Server: br-serve\r\n\
    Retry-After: 1\r\n\
    Content-Length: 0\r\n\
    Connection: close\r\n\
    \r\n";

/// Per place in the worker's connection table, the descriptor of a connection at rest,
/// or -1 ([`track`], [`set_at_rest`]).
static AT_REST: OnceLock<&'static [AtomicI32]> = OnceLock::new();

/// The descriptor of the connection whose handler is running, or -1.
static ARMED_FD: AtomicI32 = AtomicI32::new(-1);
/// Whether that request is a HEAD.
static HEAD_REQUEST: AtomicBool = AtomicBool::new(false);

/// Installs the worker's SIGABRT action, once the worker's own slot is known
/// ([`scoreboard::set_own`]), where the action counts its answers. `SA_RESETHAND` puts
/// the default action back as the action begins, so the signal it raises again at its
/// end kills the process as SIGABRT always has.
pub fn install() -> std::io::Result<()> {
    let handler = SigHandler::Handler(on_abort);
    let action = SigAction::new(handler, SaFlags::SA_RESETHAND, SigSet::empty());
    // SAFETY: `on_abort` is async-signal-safe: atomics and system calls (`send`, `recv`,
    // `shutdown`, `prctl`, `raise`); it allocates nothing and takes no lock.
    unsafe { sigaction(Signal::SIGABRT, &action) }?;
    Ok(())
}

/// Worker, at setup: makes room to note which of the first `places` places of its
/// connection table hold a connection at rest. The table lives as long as the process
/// (the action may read it at any moment), so it is allocated once and never freed.
pub fn track(places: usize) {
    let table: Vec<AtomicI32> = (0..places).map(|_| AtomicI32::new(-1)).collect();
    let _ = AT_REST.set(Box::leak(table.into_boxed_slice()));
}

/// Worker: the connection at `place` of its table is at rest on `fd`, or, with `None`,
/// is not (or is gone). Must be cleared before the descriptor closes, or the action
/// could write to whatever reuses its number. Places past the table are not noted.
pub fn set_at_rest(place: usize, fd: Option<BorrowedFd<'_>>) {
    let fd = fd.map_or(-1, |fd| fd.as_raw_fd());
    if let Some(slot) = AT_REST.get().and_then(|table| table.get(place)) {
        slot.store(fd, Ordering::Release);
    }
}

/// While alive, a SIGABRT answers the request on its connection with 500. The borrow
/// keeps the descriptor open for as long as it is armed.
pub struct Armed<'a>(PhantomData<BorrowedFd<'a>>);

/// Arms the answer for the request about to run on `fd`.
pub fn arm(fd: BorrowedFd<'_>, head_request: bool) -> Armed<'_> {
    HEAD_REQUEST.store(head_request, Ordering::Relaxed);
    ARMED_FD.store(fd.as_raw_fd(), Ordering::Release);
    Armed(PhantomData)
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        ARMED_FD.store(-1, Ordering::Release);
    }
}

extern "C" fn on_abort(_: libc::c_int) {
    let armed = ARMED_FD.swap(-1, Ordering::Acquire);
    if armed >= 0 {
        let answer = match HEAD_REQUEST.load(Ordering::Relaxed) {
            true => &ANSWER[..ANSWER.len() - BODY_LEN],
            false => ANSWER,
        };
        last_word(armed, answer);
    }
    let stopping = scoreboard::own().is_some_and(|slot| slot.overdue());
    for place in AT_REST.get().copied().unwrap_or_default() {
        let fd = place.load(Ordering::Acquire);
        if fd >= 0 && fd != armed && refuse_waiting(fd, stopping) {
            drain(fd);
            last_word(fd, NOT_RUN);
        }
    }
    if stopping {
        // SAFETY: prctl is a system call with no memory arguments. A worker ended past
        // its graceful time did not hang: a core of it would show nothing amiss.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    // SAFETY: `raise` is async-signal-safe. The signal is blocked while this action runs,
    // so it is delivered, to the default action, where the first one interrupted.
    unsafe { libc::raise(libc::SIGABRT) };
}

/// Sends `answer` on `fd`, ends the connection's output, and counts the answer for
/// `br_serve_requests_aborted_total` (an atomic add).
fn last_word(fd: libc::c_int, answer: &[u8]) {
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    // SAFETY: `answer` is a static buffer of the length given; `fd` is one of the
    // worker's connections, open while it is noted here, with nothing unsent, so the
    // send buffer holds the answer whole. The shutdown ends the reply now: the process
    // may take a while to dump core.
    unsafe {
        libc::send(fd, answer.as_ptr().cast(), answer.len(), flags);
        libc::shutdown(fd, libc::SHUT_WR);
    }
    if let Some(slot) = scoreboard::own() {
        slot.count_aborted();
    }
}

/// Whether what waits unread on `fd` is a request to answer 503: one begun, of a method
/// not known to be idempotent (RFC 9110 §9.2.2), or of any method when the worker is
/// `stopping`. Empty lines alone are no request (RFC 9112 §2.2): an old client's CRLF
/// after a POST, answered, would take the 503 for the answer to its next request.
fn refuse_waiting(fd: libc::c_int, stopping: bool) -> bool {
    let mut peek = [0u8; 16];
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    // SAFETY: `peek` is a stack buffer of the length given.
    let n = unsafe { libc::recv(fd, peek.as_mut_ptr().cast(), peek.len(), flags) };
    let waiting = peek
        .get(..usize::try_from(n).unwrap_or(0))
        .unwrap_or_default();
    refused(waiting, stopping)
}

/// [`refuse_waiting`]'s judgement of the first bytes of what waits.
fn refused(waiting: &[u8], stopping: bool) -> bool {
    // Signal-safe: a pure function of the bytes, with no allocation.
    let request = crate::http::after_blank_lines(waiting);
    if request.is_empty() {
        return false;
    }
    if stopping {
        return true;
    }
    // A method still arriving (no space after it yet) is not known to be idempotent.
    let method = request
        .iter()
        .position(|&b| b == b' ')
        .map(|end| &request[..end]);
    !matches!(
        method,
        Some(b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE")
    )
}

/// Reads and drops what waits unread (up to 64 KiB: a request head, or the start of a
/// body), so that the process's exit closes the connection with a FIN after the answer,
/// not a reset that could destroy it before its client reads it.
fn drain(fd: libc::c_int) {
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        // SAFETY: `sink` is a stack buffer of the length given.
        let n = unsafe { libc::recv(fd, sink.as_mut_ptr().cast(), sink.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hung worker refuses only a request begun and not idempotent; one stopping,
    /// every request begun.
    #[test]
    fn which_waiting_requests_are_refused() {
        let cases: &[(&[u8], bool, bool)] = &[
            (b"", false, false),
            (b"\r\n", false, false),
            (b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n", false, false),
            (b"GET / HTTP/1.1\r\n", false, true),
            (b"\r\nHEAD /x HTTP/1.1", false, true),
            (b"PUT /a HTTP/1.1\r\n", false, true),
            (b"DELETE /a HTTP/1", false, true),
            (b"OPTIONS * HTTP/1.1", false, true),
            (b"POST /a HTTP/1.1\r\n", true, true),
            (b"PATCH /a HTTP/1.1\r\n", true, true),
            (b"\r\nPOST /a", true, true),
            (b"GE", true, true),
            (b"get / HTTP/1.1\r\n", true, true),
            (b"\x16\x03\x01\x02\x00\x01", true, true),
        ];
        for &(waiting, hung, stopping) in cases {
            assert_eq!(refused(waiting, false), hung, "{waiting:?}");
            assert_eq!(refused(waiting, true), stopping, "{waiting:?} stopping");
        }
    }

    #[test]
    fn the_answer_frames_its_body() {
        let text = std::str::from_utf8(ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "Internal Server Error\n");
        assert_eq!(body.len(), BODY_LEN);
        assert!(head.contains(&format!("\r\nContent-Length: {BODY_LEN}\r\n")));
        assert!(head.ends_with("\r\nConnection: close"));
    }
}
