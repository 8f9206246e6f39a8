//! A handler with per-worker state that is not thread-safe, served by the br-serve
//! master with the same command line, signals and supervision as the binary.
//!
//! Each worker builds its own `Stats` after fork, so an `Rc<RefCell<_>>` (neither `Send`
//! nor `Sync`) is fine: a worker only ever runs one request at a time. This is the pattern
//! for C libraries that are not thread-safe, caches, or connections owned by one process.
//!
//!     cargo run --release --example per_worker_state -- --bind 127.0.0.1:8000 --workers 2 \
//!         --pid /tmp/per_worker_state.pid
//!     curl localhost:8000/count      # "worker 1 (pid 4242) has served 1 requests"
//!     kill -TTIN $(cat /tmp/per_worker_state.pid)   # one more worker, with its own count
//!
//! (`pgrep -o per_worker_state` finds nothing: a process name is cut to 15 bytes.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::ExitCode;
use std::rc::Rc;

use br_serve::{Handler, Request, Response};

/// Per-worker counters: how often each path was asked for in this worker.
struct Stats {
    hits: Rc<RefCell<HashMap<String, u64>>>,
}

impl Handler for Stats {
    fn handle(&mut self, req: &Request) -> Response {
        let mut hits = self.hits.borrow_mut();
        *hits.entry(req.path().to_string()).or_default() += 1;
        let total: u64 = hits.values().sum();
        // The worker's number, as the log shows it ([worker.1]), and its pid.
        let number = br_serve::worker_number().unwrap_or_default();
        let pid = std::process::id();
        Response::text(
            200,
            format!("worker {number} (pid {pid}) has served {total} requests\n"),
        )
    }
}

fn main() -> ExitCode {
    // `per_worker_state --version`, `--help`, errors and the log name this program.
    br_serve::identify_as("per_worker_state", "1.0.0");
    // The factory runs in each worker after fork.
    br_serve::run_main(|_config| {
        Box::new(Stats {
            hits: Rc::default(),
        })
    })
}
