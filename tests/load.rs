//! A background load client: one thread per path issuing `GET path` requests one after
//! another, each on a fresh connection (`Connection: close`), until stopped, counting what
//! succeeded and what failed.
//!
//! A failure is anything a user would notice: a refused or reset connection, no complete
//! response within 5 s, or a status other than 200. Supervision tests run it while they
//! scale, reload, upgrade or recycle workers, and then require zero failures: that is
//! the whole point of a pre-fork server's choreography. A fresh connection per request
//! keeps the test about the server: a client reusing an idle keep-alive connection can
//! always lose a race with the server closing it, which HTTP leaves to the client to retry.
//!
//! [`CHOREOGRAPHY`] pairs `GET /` with a slow request: a quick `GET /` is in a worker's
//! hands for microseconds, so a worker killed instead of drained would rarely be caught
//! with one; a `/sleep` is in flight nearly all the time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::client::{Conn, request};
use crate::util::poll_until;

/// How long one request may take before it counts as failed.
const REQUEST_WITHIN: Duration = Duration::from_secs(5);
/// A pause between requests: a few hundred requests a second are plenty to hit every
/// window of a choreography, and leave the CPU of a 2-core machine to the servers.
const PACE: Duration = Duration::from_millis(2);
/// How many failure descriptions are kept for the report (all are counted).
const KEEP_FAILURES: usize = 20;

/// The load for supervision choreographies: quick requests, and slow ones that are almost
/// always in flight when a worker is retired.
pub const CHOREOGRAPHY: &[&str] = &["/", "/sleep?ms=50"];

/// What the load client saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    /// The first failures, each with when it happened (since the start) and why.
    pub failures: Vec<String>,
}

/// A running load client; dropping it stops the thread.
pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts one thread per path, each issuing `GET path` to `addr` in a loop.
    pub fn start(addr: SocketAddr, paths: &[&str]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let started = Instant::now();
        let threads = paths.iter().map(|path| {
            let (flag, shared, path) = (stop.clone(), tally.clone(), path.to_string());
            thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let outcome = one_request(addr, &path);
                    record(&shared, outcome, started.elapsed());
                    thread::sleep(PACE);
                }
            })
        });
        Load {
            threads: threads.collect(),
            stop,
            tally,
        }
    }

    /// Requests that succeeded so far.
    pub fn ok(&self) -> u64 {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).ok
    }

    /// Waits until `more` further requests have succeeded: the server serves *now*.
    #[track_caller]
    pub fn wait_progress(&self, more: u64, within: Duration) {
        let target = self.ok() + more;
        let reached = poll_until(within, || (self.ok() >= target).then_some(()));
        reached.unwrap_or_else(|| {
            panic!(
                "the load client got fewer than {more} more successes within {within:?}: {:?}",
                self.tally.lock().unwrap_or_else(|e| e.into_inner())
            )
        });
    }

    /// Stops the client and requires that every request succeeded (and that there were
    /// some); returns the tally.
    #[track_caller]
    pub fn finish(mut self) -> Tally {
        self.halt();
        let tally = std::mem::take(&mut *self.tally.lock().unwrap_or_else(|e| e.into_inner()));
        assert!(
            tally.failed == 0 && tally.ok > 0,
            "requests under load: {} ok, {} failed; first failures: {:#?}",
            tally.ok,
            tally.failed,
            tally.failures
        );
        tally
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

fn record(tally: &Mutex<Tally>, outcome: Result<(), String>, at: Duration) {
    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    match outcome {
        Ok(()) => tally.ok += 1,
        Err(why) => {
            tally.failed += 1;
            if tally.failures.len() < KEEP_FAILURES {
                tally.failures.push(format!("after {at:.2?}: {why}"));
            }
        }
    }
}

/// `GET path` on a new connection; `Err` says what went wrong.
fn one_request(addr: SocketAddr, path: &str) -> Result<(), String> {
    let fail = |why: String| format!("GET {path}: {why}");
    let mut conn =
        Conn::try_open(addr, REQUEST_WITHIN).map_err(|e| fail(format!("connect: {e}")))?;
    let wire = request("GET", path, &["Connection: close"], b"");
    conn.try_send(&wire)
        .map_err(|e| fail(format!("send: {e}")))?;
    let response = conn.try_read_response(REQUEST_WITHIN).map_err(fail)?;
    match response.status {
        200 => Ok(()),
        status => Err(fail(format!("status {status}: {:?}", response.text()))),
    }
}
