//! The server's own numbers, in Prometheus' text format: answered at `--metrics-path` by
//! whichever worker the request reaches, before the application sees it, and on
//! `--metrics-bind`'s port by the master itself (`master::scrapes`).
//!
//! A pre-fork server is awkward to monitor from inside the application: each worker
//! counts only itself, and its counters vanish when it is replaced (gunicorn users
//! resort to a shared directory of files or a statsd sidecar). Here every worker, and the
//! master, reads the whole shared scoreboard, so one scrape sees all of them, and the
//! request count is
//! kept per slot for the master's whole life, so it only grows, across crashes,
//! recycling and HUP. Each worker also gets its own series, labelled with its number in
//! the logs: requests, age, time in the current request and memory (read from its
//! `/proc/PID/statm`), which is how a slow leak or a stuck request shows before
//! `--max-worker-memory` or `--timeout` acts. The accept queue of each listener, TCP or
//! Unix, comes from the kernel (`sys::sockopt::accept_queue`): the number to scale on,
//! since it says how many connections wait for a free worker.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::http::{Request, Response};
use crate::sys::clock::monotonic_ms;
use crate::sys::pages::anon_resident_bytes;
use crate::sys::scoreboard::{Scoreboard, Summary, WorkerView, summarize, workers};
use crate::sys::sockopt::accept_queue;

/// The exposition format's content type (Prometheus text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What it takes to answer the metrics path: the scoreboard and the listeners.
pub struct Metrics {
    path: String,
    board: Scoreboard,
    /// Each listener's URL, with a copy of its descriptor to ask the kernel about.
    listeners: Vec<(String, OwnedFd)>,
}

impl Metrics {
    /// Answers `path` from `board`, with the accept queues of the listeners, given by URL
    /// and socket.
    pub fn new<'a>(
        path: String,
        board: Scoreboard,
        listeners: impl IntoIterator<Item = (String, BorrowedFd<'a>)>,
    ) -> io::Result<Metrics> {
        let listeners = listeners
            .into_iter()
            .map(|(url, fd)| Ok((url, fd.try_clone_to_owned()?)))
            .collect::<io::Result<_>>()?;
        Ok(Metrics {
            path,
            board,
            listeners,
        })
    }

    /// Closes the copies of the listeners' descriptors, so that they do not hold the
    /// sockets open once their process has stopped accepting; the accept queues are not
    /// reported after that.
    pub fn forget_listeners(&mut self) {
        self.listeners.clear();
    }

    /// Whether a request for `path` (its query left out) is for the metrics.
    pub fn serves(&self, path: &str) -> bool {
        path == self.path
    }

    /// The scrape, for GET and HEAD; other methods are refused as the built-in apps
    /// refuse them (405 for HTTP's own, 501 for the rest).
    pub fn respond(&self, req: &Request) -> Response {
        if !matches!(req.method(), "GET" | "HEAD") {
            return crate::app::refuse_method(req.method(), Some("GET, HEAD"));
        }
        let queues: Vec<(&str, (u32, u32))> = self
            .listeners
            .iter()
            .filter_map(|(url, fd)| Some((url.as_str(), accept_queue(fd.as_fd()).ok()?)))
            .collect();
        let workers: Vec<_> = workers(self.board, monotonic_ms())
            .into_iter()
            .map(|w| (w, anon_resident_bytes(&w.pid.to_string())))
            .collect();
        let text = render(&summarize(self.board), &workers, &queues);
        Response::bytes(200, CONTENT_TYPE, text.into_bytes())
    }
}

/// The exposition text for a scoreboard summary, each worker (with its anonymous resident
/// memory, when /proc had it) and each listener's (queued, backlog).
fn render(
    sum: &Summary,
    workers: &[(WorkerView, Option<u64>)],
    queues: &[(&str, (u32, u32))],
) -> String {
    let mut out = String::with_capacity(1024);
    pool(&mut out, sum);
    per_worker(&mut out, workers);
    listeners(&mut out, queues);
    out
}

/// The workers by state, and the request counters of the whole pool.
fn pool(out: &mut String, sum: &Summary) {
    let states = [
        ("booting", sum.booting),
        ("idle", sum.idle),
        ("busy", sum.busy),
        ("stopping", sum.stopping),
    ];
    let by_state: Vec<_> = states
        .iter()
        .map(|&(state, n)| (format!("{{state=\"{state}\"}}"), n as u64))
        .collect();
    let help = "Worker processes by state.";
    family(out, "br_serve_workers", "gauge", help, &by_state);
    let counters = [
        (
            "br_serve_requests_total",
            "Requests answered since the master started, by workers alive or gone.",
            sum.requests,
        ),
        (
            "br_serve_requests_abandoned_total",
            "Requests left unanswered, their client gone before they arrived whole or \
             before a worker reached them (--check-client-connection).",
            sum.abandoned,
        ),
        (
            "br_serve_requests_shed_total",
            "Requests answered 503 at once for waiting longer than --queue-timeout.",
            sum.shed,
        ),
        (
            "br_serve_requests_aborted_total",
            "Requests answered as SIGABRT ended their worker (--timeout, or abort()): \
             500 for the one it was running, 503 for those not idempotent waiting on \
             its other connections; not among br_serve_requests_total.",
            sum.aborted,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help, &[(String::new(), value)]);
    }
    let help = "Requests that arrived on kept-alive connections and wait behind the request \
                their worker is running (demand the listen queue does not show).";
    let waiting = [(String::new(), sum.waiting)];
    family(out, "br_serve_requests_waiting", "gauge", help, &waiting);
}

/// Each listener's accept queue and its bound.
fn listeners(out: &mut String, queues: &[(&str, (u32, u32))]) {
    let label = |url: &str| format!("{{listener=\"{}\"}}", escape_label(url));
    let (queued, backlog): (Vec<_>, Vec<_>) = queues
        .iter()
        .map(|&(url, (q, b))| ((label(url), u64::from(q)), (label(url), u64::from(b))))
        .unzip();
    let help = "Connections waiting in the listener's accept queue for a free worker.";
    family(out, "br_serve_listen_queue", "gauge", help, &queued);
    let help = "Most connections the listener's accept queue holds (--backlog, as applied).";
    family(out, "br_serve_listen_backlog", "gauge", help, &backlog);
}

/// The per-worker families, labelled with the worker's number in the logs (`worker.N`),
/// which a successor inherits: series stay few however often workers are replaced.
fn per_worker(out: &mut String, workers: &[(WorkerView, Option<u64>)]) {
    let label = |w: &WorkerView| format!("{{worker=\"{}\"}}", w.number);
    let each = |f: fn(&WorkerView) -> f64| -> Vec<(String, f64)> {
        workers.iter().map(|(w, _)| (label(w), f(w))).collect()
    };
    // A counter that starts again when a successor takes the number, as a restarted
    // process's would: rate() per worker works across replacements.
    let help = "Requests answered by the worker now holding this number.";
    let requests = each(|w| w.requests as f64);
    family(
        out,
        "br_serve_worker_requests_total",
        "counter",
        help,
        &requests,
    );
    let help = "Seconds since the worker now holding this number was forked.";
    let age = each(|w| w.age_ms as f64 / 1000.0);
    family(out, "br_serve_worker_age_seconds", "gauge", help, &age);
    let help = "Seconds the worker has spent in its current request; 0 when not in one.";
    let busy = each(|w| w.busy_ms as f64 / 1000.0);
    family(out, "br_serve_worker_busy_seconds", "gauge", help, &busy);
    let help = "Answers the worker was still sending at its last look (4 a second): files \
                and streams to clients slower than the worker.";
    let sending = each(|w| f64::from(w.sending));
    family(
        out,
        "br_serve_worker_answers_sending",
        "gauge",
        help,
        &sending,
    );
    let help = "The worker's anonymous resident memory (what --max-worker-memory limits).";
    let memory: Vec<_> = workers
        .iter()
        .filter_map(|(w, bytes)| Some((label(w), (*bytes)?)))
        .collect();
    family(out, "br_serve_worker_memory_bytes", "gauge", help, &memory);
}

/// One metric family: its HELP and TYPE lines, then a line per (labels, value) sample.
fn family<T: std::fmt::Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, T)],
) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A label value: backslash, double quote and newline escaped, as the format requires.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_text() {
        let sum = Summary {
            booting: 0,
            idle: 3,
            busy: 1,
            stopping: 1,
            requests: 12_345,
            abandoned: 7,
            shed: 3,
            aborted: 2,
            waiting: 4,
        };
        let worker = |number, requests, age_ms, busy_ms, sending| WorkerView {
            number,
            pid: 100 + number as u32,
            requests,
            age_ms,
            busy_ms,
            sending,
        };
        let workers = [
            (worker(1, 40, 61_500, 0, 2), Some(2_097_152)),
            (worker(2, 7, 1_000, 250, 0), None),
        ];
        let text = render(&sum, &workers, &[("http://127.0.0.1:8000", (2, 2048))]);
        let want = "\
# HELP br_serve_workers Worker processes by state.
# TYPE br_serve_workers gauge
br_serve_workers{state=\"booting\"} 0
br_serve_workers{state=\"idle\"} 3
br_serve_workers{state=\"busy\"} 1
br_serve_workers{state=\"stopping\"} 1
# HELP br_serve_requests_total Requests answered since the master started, by workers alive or gone.
# TYPE br_serve_requests_total counter
br_serve_requests_total 12345
# HELP br_serve_requests_abandoned_total Requests left unanswered, their client gone before they arrived whole or before a worker reached them (--check-client-connection).
# TYPE br_serve_requests_abandoned_total counter
br_serve_requests_abandoned_total 7
# HELP br_serve_requests_shed_total Requests answered 503 at once for waiting longer than --queue-timeout.
# TYPE br_serve_requests_shed_total counter
br_serve_requests_shed_total 3
# HELP br_serve_requests_aborted_total Requests answered as SIGABRT ended their worker (--timeout, or abort()): 500 for the one it was running, 503 for those not idempotent waiting on its other connections; not among br_serve_requests_total.
# TYPE br_serve_requests_aborted_total counter
br_serve_requests_aborted_total 2
# HELP br_serve_requests_waiting Requests that arrived on kept-alive connections and wait behind the request their worker is running (demand the listen queue does not show).
# TYPE br_serve_requests_waiting gauge
br_serve_requests_waiting 4
# HELP br_serve_worker_requests_total Requests answered by the worker now holding this number.
# TYPE br_serve_worker_requests_total counter
br_serve_worker_requests_total{worker=\"1\"} 40
br_serve_worker_requests_total{worker=\"2\"} 7
# HELP br_serve_worker_age_seconds Seconds since the worker now holding this number was forked.
# TYPE br_serve_worker_age_seconds gauge
br_serve_worker_age_seconds{worker=\"1\"} 61.5
br_serve_worker_age_seconds{worker=\"2\"} 1
# HELP br_serve_worker_busy_seconds Seconds the worker has spent in its current request; 0 when not in one.
# TYPE br_serve_worker_busy_seconds gauge
br_serve_worker_busy_seconds{worker=\"1\"} 0
br_serve_worker_busy_seconds{worker=\"2\"} 0.25
# HELP br_serve_worker_answers_sending Answers the worker was still sending at its last look (4 a second): files and streams to clients slower than the worker.
# TYPE br_serve_worker_answers_sending gauge
br_serve_worker_answers_sending{worker=\"1\"} 2
br_serve_worker_answers_sending{worker=\"2\"} 0
# HELP br_serve_worker_memory_bytes The worker's anonymous resident memory (what --max-worker-memory limits).
# TYPE br_serve_worker_memory_bytes gauge
br_serve_worker_memory_bytes{worker=\"1\"} 2097152
# HELP br_serve_listen_queue Connections waiting in the listener's accept queue for a free worker.
# TYPE br_serve_listen_queue gauge
br_serve_listen_queue{listener=\"http://127.0.0.1:8000\"} 2
# HELP br_serve_listen_backlog Most connections the listener's accept queue holds (--backlog, as applied).
# TYPE br_serve_listen_backlog gauge
br_serve_listen_backlog{listener=\"http://127.0.0.1:8000\"} 2048
";
        assert_eq!(text, want);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), r"x\ny");
        assert_eq!(escape_label("http://[::1]:80"), "http://[::1]:80");
    }
}
