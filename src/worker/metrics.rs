//! `--metrics-path`: the server's own numbers, in Prometheus' text format, answered by
//! whichever worker the request reaches, before the application sees it.
//!
//! A pre-fork server is awkward to monitor from inside the application: each worker
//! counts only itself, and its counters vanish when it is replaced (gunicorn users
//! resort to a shared directory of files or a statsd sidecar). Here every worker reads
//! the whole shared scoreboard, so one scrape sees all of them, and the request count is
//! kept per slot for the master's whole life, so it only grows, across crashes,
//! recycling and HUP. The accept queue of each TCP listener comes from the kernel
//! (`TCP_INFO`): the number to scale on, since it says how many connections wait for a
//! free worker.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use super::Listener;
use crate::http::{Request, Response};
use crate::sys::scoreboard::{Scoreboard, Summary, summarize};
use crate::sys::sockopt::accept_queue;

/// The exposition format's content type (Prometheus text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a worker needs to answer the metrics path.
pub struct Metrics {
    path: String,
    board: Scoreboard,
    /// Each TCP listener's URL, with a copy of its descriptor to ask the kernel about.
    listeners: Vec<(String, OwnedFd)>,
}

impl Metrics {
    /// Answers `path` from `board`, with the accept queues of the TCP `listeners` (a Unix
    /// socket has no `TCP_INFO`; it is left out).
    pub fn new(path: String, board: Scoreboard, listeners: &[Listener]) -> io::Result<Metrics> {
        let mut tcp = Vec::new();
        for listener in listeners {
            if let Listener::Tcp(l) = listener {
                let url = format!("http://{}", l.local_addr()?);
                tcp.push((url, l.as_fd().try_clone_to_owned()?));
            }
        }
        Ok(Metrics {
            path,
            board,
            listeners: tcp,
        })
    }

    /// Whether `req` is for the metrics path (the query is ignored).
    pub fn serves(&self, req: &Request) -> bool {
        req.path() == self.path
    }

    /// The scrape: 405 for anything but GET and HEAD.
    pub fn respond(&self, req: &Request) -> Response {
        if !matches!(req.method(), "GET" | "HEAD") {
            return Response::text(405, "method not allowed\n").with_header("Allow", "GET, HEAD");
        }
        let queues: Vec<(&str, (u32, u32))> = self
            .listeners
            .iter()
            .filter_map(|(url, fd)| Some((url.as_str(), accept_queue(fd.as_fd()).ok()?)))
            .collect();
        let text = render(&summarize(self.board), &queues);
        Response::bytes(200, CONTENT_TYPE, text.into_bytes())
    }
}

/// The exposition text for a scoreboard summary and each listener's (queued, backlog).
fn render(sum: &Summary, queues: &[(&str, (u32, u32))]) -> String {
    let mut out = String::with_capacity(1024);
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
    family(
        &mut out,
        "br_serve_workers",
        "gauge",
        "Worker processes by state.",
        &by_state,
    );
    let help = "Requests answered since the master started, by workers alive or gone.";
    let total = [(String::new(), sum.requests)];
    family(&mut out, "br_serve_requests_total", "counter", help, &total);
    let help = "Requests skipped unanswered, their client gone before a worker reached them \
                (--check-client-connection).";
    let abandoned = [(String::new(), sum.abandoned)];
    family(
        &mut out,
        "br_serve_requests_abandoned_total",
        "counter",
        help,
        &abandoned,
    );
    let label = |url: &str| format!("{{listener=\"{}\"}}", escape_label(url));
    let (queued, backlog): (Vec<_>, Vec<_>) = queues
        .iter()
        .map(|&(url, (q, b))| ((label(url), u64::from(q)), (label(url), u64::from(b))))
        .unzip();
    let help = "Connections waiting in the listener's accept queue for a free worker.";
    family(&mut out, "br_serve_listen_queue", "gauge", help, &queued);
    let help = "Most connections the listener's accept queue holds (--backlog, as applied).";
    family(&mut out, "br_serve_listen_backlog", "gauge", help, &backlog);
    out
}

/// One metric family: its HELP and TYPE lines, then a line per (labels, value) sample.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
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
        };
        let text = render(&sum, &[("http://127.0.0.1:8000", (2, 2048))]);
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
# HELP br_serve_requests_abandoned_total Requests skipped unanswered, their client gone before a worker reached them (--check-client-connection).
# TYPE br_serve_requests_abandoned_total counter
br_serve_requests_abandoned_total 7
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
