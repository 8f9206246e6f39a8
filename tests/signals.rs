//! Shutdown by signal: TERM drains gracefully (in-flight requests finish, exit 0, stragglers
//! killed after `--graceful-timeout`); INT and QUIT stop at once.
//!
//! Each test first makes sure its slow request is in a worker's hands
//! (`Conn::wait_consumed`), so "in flight" is a fact, not a hope about timing.

use nix::sys::signal::Signal;

use crate::client::{Conn, request};
use crate::util::{Launch, Server, secs};

/// A one-worker server (extra flags appended) with a `/sleep?ms=..` request in flight.
fn server_with_sleeper(ms: u64, extra: &[&str]) -> (Server, Conn) {
    let server = Launch::new().args(&["--workers", "1"]).args(extra).start();
    server.wait_children(1, secs(10));
    let mut conn = server.connect();
    conn.send(&request("GET", &format!("/sleep?ms={ms}"), &[], b""));
    conn.wait_consumed(secs(10));
    (server, conn)
}

#[test]
fn term_lets_the_in_flight_request_finish_then_exits_zero() {
    let (mut server, mut conn) = server_with_sleeper(1500, &[]);
    server.signal(Signal::SIGTERM);
    let r = conn.read_response(secs(15));
    assert_eq!(r.status, 200, "{r:?}");
    let status = server.wait_exit(secs(15));
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn term_kills_requests_that_outlive_the_graceful_timeout() {
    let (mut server, mut conn) = server_with_sleeper(30_000, &["--graceful-timeout", "1"]);
    server.signal(Signal::SIGTERM);
    // 1 s of grace, then the straggler is killed: well before its 30 s sleep ends.
    let status = server.wait_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{status}");
    conn.expect_closed(secs(5));
}

/// INT and QUIT: the master exits within a few seconds without awaiting the slow request,
/// and its worker is gone too (the connection closes with no response).
fn stops_quickly(sig: Signal) {
    let (mut server, mut conn) = server_with_sleeper(30_000, &[]);
    server.signal(sig);
    server.wait_exit(secs(5));
    conn.expect_closed(secs(5));
}

#[test]
fn int_stops_quickly() {
    stops_quickly(Signal::SIGINT);
}

#[test]
fn quit_stops_quickly() {
    stops_quickly(Signal::SIGQUIT);
}
