//! Supervision through the binary: scaling with TTIN/TTOU and by `--max-workers` (the
//! accept queue), rolling a new generation with HUP while a load client runs (zero failed
//! requests), worker recycling by `--max-requests`, `--max-worker-age` and
//! `--max-worker-memory`, hung workers killed by `--timeout` (their request answered 500,
//! those waiting behind it 503), workers dying with a SIGKILLed master, crash-loop
//! backoff, a HUP whose workers cannot boot abandoned for the old configuration, a
//! handler panic that costs one 500, not a worker, no ready line while WINCH keeps the
//! workers stopped (and TTIN meanwhile saying when it applies), `--metrics-path`
//! counting across all of it, and
//! `--metrics-bind`, the master's own metrics port, answering while every worker is busy.

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::geteuid;

use crate::client::{self, Conn, metric_sample, unix_answer, unix_sent};
use crate::load::{CHOREOGRAPHY, Load};
use crate::util::{
    Cgroup, Launch, Server, TempDir, is_zombie, poll_until, secs, send_signal, unix_socket,
};

fn start(workers: &str, extra: &[&str]) -> Server {
    let server = Launch::new()
        .args(&["--workers", workers])
        .args(extra)
        .start();
    server.wait_children(workers.parse().expect("a number"), secs(10));
    server
}

/// Sends `sig` once, then waits for the master's child count to become `n`. One signal
/// per step: POSIX merges a second TTIN sent while the first is still pending.
#[track_caller]
fn scale_step(server: &Server, sig: Signal, n: usize) {
    server.signal(sig);
    server.wait_children(n, secs(10));
}

#[test]
fn ttin_and_ttou_scale_the_pool_under_load() {
    let server = start("2", &[]);
    let load = Load::start(server.addr(), CHOREOGRAPHY);
    for n in [3, 4, 5] {
        scale_step(&server, Signal::SIGTTIN, n);
    }
    load.wait_progress(20, secs(10));
    for n in [4, 3, 2] {
        scale_step(&server, Signal::SIGTTOU, n);
    }
    load.wait_progress(20, secs(10));
    load.finish();
    // TTOU never goes below one worker.
    scale_step(&server, Signal::SIGTTOU, 1);
    server.signal(Signal::SIGTTOU);
    server.wait_for_log("workers 1 -> 1 (never fewer than 1)", secs(10));
    assert_eq!(server.children().len(), 1);
}

#[test]
fn hup_replaces_every_worker_under_load() {
    let server = start("2", &[]);
    let before = server.children();
    let load = Load::start(server.addr(), CHOREOGRAPHY);
    load.wait_progress(10, secs(10));
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 2", secs(10));
    let replaced = poll_until(secs(15), || {
        let now = server.children();
        (now.len() == 2 && now.iter().all(|p| !before.contains(p))).then_some(now)
    });
    let after = replaced.unwrap_or_else(|| {
        panic!(
            "old workers {before:?} not replaced; children now {:?}",
            server.children()
        )
    });
    load.wait_progress(10, secs(10));
    load.finish();
    // The same master, serving with the new generation.
    assert_eq!(server.ready_pid(), server.pid());
    let pid: u32 = server.get("/pid").text().trim().parse().expect("/pid");
    assert!(after.contains(&pid), "/pid {pid} is not among {after:?}");
}

#[test]
fn max_requests_recycles_workers_under_load() {
    let server = start(
        "2",
        &["--max-requests", "50", "--max-requests-jitter", "10"],
    );
    let first = server.children();
    let load = Load::start(server.addr(), CHOREOGRAPHY);
    server.wait_for_log("asking for a replacement", secs(20));
    // Both original workers reach their quota (at most 60 requests each) and are replaced.
    let recycled = poll_until(secs(20), || {
        let now = server.children();
        (now.len() == 2 && now.iter().all(|p| !first.contains(p))).then_some(())
    });
    recycled.unwrap_or_else(|| {
        panic!(
            "workers {first:?} not recycled; children now {:?}",
            server.children()
        )
    });
    load.finish();
}

/// A worker at its `--max-requests` wakes the master, which starts its successor at
/// once, and the successor wakes it again when ready, so the old one is retired then:
/// with one client asking without pause, the old worker serves about its quota, not
/// the hundreds or thousands more it answered while the master slept to its next tick.
/// Also with workers running as another user (when the tests run as root), who may not
/// signal the master: they wake it through a pipe.
#[test]
fn max_requests_replaces_a_worker_close_to_its_quota() {
    served_by_the_first_of_a_quota_of_50(&[]);
    if nix::unistd::geteuid().is_root() {
        served_by_the_first_of_a_quota_of_50(&["--user", "nobody"]);
    }
}

/// Every connection that arrives as a recycled worker hands over is served. The kernel
/// wakes one waiting worker per arrival, and a connection whose wake-up came to the
/// retiring worker as it let the listener go waited in the queue for the next arrival
/// to wake another: one request in ten, a client sending each as soon as it had the
/// last answer.
#[test]
fn connections_arriving_as_a_worker_retires_are_served() {
    let server = start("1", &["--max-requests", "3"]);
    for i in 0..150 {
        let mut conn = server.connect();
        conn.send(&client::request("GET", "/", &["Connection: close"], b""));
        let answer = conn.try_read_response(secs(10));
        assert!(
            matches!(&answer, Ok(r) if r.status == 200),
            "request {i}: {answer:?}"
        );
    }
}

fn served_by_the_first_of_a_quota_of_50(extra: &[&str]) {
    let server = Launch::new()
        .args(&["--workers", "1", "--max-requests", "50"])
        .args(extra)
        .start();
    let first = server.wait_children(1, secs(10))[0];
    let exited = format!("(pid: {first}) exited after ");
    let line = poll_until(secs(20), || {
        assert_eq!(server.get("/").status, 200);
        server.log().into_iter().find(|l| l.contains(&exited))
    });
    let line = line.expect("the first worker exits");
    let served: Option<u64> = line
        .split(&exited)
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok());
    let served = served.unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!((50..75).contains(&served), "{extra:?}: {line}");
}

/// Waits for the master's only worker to be a different one than `old`.
#[track_caller]
fn wait_replaced(server: &Server, old: u32, within: Duration) -> u32 {
    let replaced = poll_until(within, || {
        let now = server.children();
        (now.len() == 1 && now[0] != old).then(|| now[0])
    });
    replaced.unwrap_or_else(|| {
        panic!(
            "worker {old} not replaced within {within:?}; children {:?}",
            server.children()
        )
    })
}

#[test]
fn max_worker_age_recycles_workers_under_load() {
    let server = start("1", &["--max-worker-age", "1"]);
    let first = server.children()[0];
    let load = Load::start(server.addr(), CHOREOGRAPHY);
    let line = server.wait_for_log("asking for a replacement", secs(15));
    assert!(line.contains("(--max-worker-age)"), "{line}");
    wait_replaced(&server, first, secs(15));
    load.finish();
}

#[test]
fn max_worker_memory_replaces_a_leaking_worker() {
    let server = start("1", &["--max-worker-memory", "48M"]);
    let leaky = server.children()[0];
    assert_eq!(server.get("/leak?mb=64").status, 200);
    let line = server.wait_for_log("asking for a replacement", secs(10));
    assert!(line.contains("(--max-worker-memory)"), "{line}");
    let fresh = wait_replaced(&server, leaky, secs(15));
    // The successor starts small, under the limit, and serves.
    assert_eq!(server.get("/pid").text().trim(), fresh.to_string());
}

#[test]
fn metrics_path_counts_requests_across_worker_deaths() {
    let server = start("1", &["--metrics-path", "/metrics", "--backlog", "77"]);
    for _ in 0..5 {
        assert_eq!(server.get("/").status, 200);
    }
    let first = server.get("/metrics");
    assert_eq!(first.status, 200);
    let kind = first.header("content-type").unwrap_or_default();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let scrape = first.text();
    assert_eq!(
        metric_sample::<u64>(&scrape, r#"br_serve_workers{state="busy"}"#),
        1,
        "{scrape}"
    );
    assert!(
        metric_sample::<u64>(&scrape, "br_serve_requests_total") >= 5,
        "{scrape}"
    );
    let listener = format!(r#"{{listener="http://{}"}}"#, server.addr());
    let backlog: u64 = metric_sample(&scrape, &format!("br_serve_listen_backlog{listener}"));
    assert_eq!(backlog, 77, "{scrape}");
    metric_sample::<u64>(&scrape, &format!("br_serve_listen_queue{listener}"));
    // Each worker has series of its own, labelled with its number in the logs.
    let own = r#"br_serve_worker_requests_total{worker="1"}"#;
    assert!(metric_sample::<u64>(&scrape, own) >= 5, "{scrape}");
    let memory = r#"br_serve_worker_memory_bytes{worker="1"}"#;
    assert!(metric_sample::<u64>(&scrape, memory) > 0, "{scrape}");
    let age = r#"br_serve_worker_age_seconds{worker="1"}"#;
    assert!(metric_sample::<f64>(&scrape, age) > 0.0, "{scrape}");

    // The count outlives the worker that made it: a SIGKILLed worker's requests stay in,
    // while its successor's own count starts again from zero.
    let before = server.get("/metrics").text();
    let victim = server.children()[0];
    send_signal(victim, Signal::SIGKILL);
    wait_replaced(&server, victim, secs(10));
    let after = server.get("/metrics").text();
    let total = |scrape: &str| metric_sample::<u64>(scrape, "br_serve_requests_total");
    assert!(total(&after) > total(&before), "{before}\n->\n{after}");
    let own_count = |scrape: &str| metric_sample::<u64>(scrape, own);
    assert!(
        own_count(&after) < own_count(&before),
        "{before}\n->\n{after}"
    );

    // Scraped with GET and HEAD only; a method HTTP does not define is a 501.
    for (method, status) in [("POST", 405), ("PURGE", 501)] {
        let mut conn = server.connect();
        conn.send(&client::request(method, "/metrics", &[], b""));
        assert_eq!(conn.read_response(secs(10)).status, status, "{method}");
    }

    // Off unless asked for: the path is then the application's (the demo's 404).
    let plain = start("1", &[]);
    assert_eq!(plain.get("/metrics").status, 404);
}

/// A worker stuck in a long request shows it in the metrics, scraped through the other.
#[test]
fn metrics_show_how_long_each_worker_has_been_in_its_request() {
    let server = start("2", &["--metrics-path", "/metrics"]);
    let _sleeper = server.sleeper(20_000);
    let busy = |n: u32| format!(r#"br_serve_worker_busy_seconds{{worker="{n}"}}"#);
    let seen = poll_until(secs(10), || {
        let scrape = server.get("/metrics").text();
        let both = [1, 2].map(|n| metric_sample::<f64>(&scrape, &busy(n)));
        // The sleeper's time grows; the scraper's own request has only just begun.
        (both.iter().any(|&s| s >= 0.1) && both.iter().any(|&s| s < 0.1)).then_some(both)
    });
    assert!(seen.is_some(), "no worker shown busy for 0.1 s within 10 s");
}

/// `--max-workers`: while connections wait and no worker is idle, the pool grows one
/// worker at a time up to the ceiling and no further; idle again, it shrinks back.
#[test]
fn max_workers_grows_the_pool_under_a_queue_and_shrinks_it_when_idle() {
    let server = start("1", &["--max-workers", "3", "--scale-down-after", "1"]);
    // Four 6 s requests: one in the worker, three waiting in the accept queue (the
    // pool reaches 3 after about 2 s, while the first is still running).
    let mut sleepers: Vec<Conn> = (0..4).map(|_| server.sent_sleeper(6000)).collect();
    server.wait_for_log("workers 1 -> 2", secs(15));
    server.wait_for_log("workers 2 -> 3", secs(15));
    for conn in &mut sleepers {
        assert_eq!(conn.read_response(secs(30)).status, 200);
    }
    // The fourth request waited while three workers were busy: the ceiling held.
    let beyond = server.log().into_iter().find(|l| l.contains("-> 4"));
    assert!(beyond.is_none(), "{beyond:?}");
    server.wait_for_log("workers 3 -> 2", secs(20));
    server.wait_for_log("workers 2 -> 1", secs(20));
    server.wait_children(1, secs(10));
    assert_eq!(server.get("/").status, 200);
}

/// `--max-workers` adds no worker the CPUs cannot run: a worker runnable all the time
/// on the one CPU the server may use (taskset) is the pool's limit, and a second would
/// only share that CPU, stretching every request toward `--timeout`. Said once, and the
/// queue is served by the one worker, also across `--max-requests` replacements (a
/// second judged while a successor started, which it counted for nothing, let a step
/// through after each).
#[test]
fn max_workers_adds_no_worker_when_the_cpus_are_full() {
    let server = Launch::new()
        .wrapped(&["taskset", "-c", "0"])
        .args(&[
            "--workers",
            "1",
            "--max-workers",
            "3",
            "--max-requests",
            "2",
        ])
        .start();
    server.wait_children(1, secs(10));
    // Six requests of 1.5 s of CPU each: one running, the rest waiting behind it.
    let mut burners = cpu_burners(&server, 6);
    let held = "but the workers fill the 1 CPU(s)";
    server.wait_for_log(held, secs(15));
    for conn in &mut burners {
        assert_eq!(conn.read_response(secs(60)).status, 200);
    }
    let log = server.log();
    let grown = log.iter().find(|l| l.contains("workers 1 -> 2"));
    assert!(grown.is_none(), "{grown:?}");
    let said = log.iter().filter(|l| l.contains(held)).count();
    assert_eq!(said, 1, "{log:#?}");
}

/// `n` connections, each sent a request for 1.5 s of CPU.
fn cpu_burners(server: &Server, n: usize) -> Vec<Conn> {
    let burner = |_| {
        let mut conn = server.connect();
        conn.send(&client::request("GET", "/work?ms=1500", &[], b""));
        conn
    };
    (0..n).map(burner).collect()
}

/// A fractional CPU quota is counted whole: one CPU-bound worker on 1.5 CPUs (Kubernetes'
/// `cpu: 1500m`) leaves half a CPU for a second, where the quota, rounded down to one
/// CPU as `available_parallelism` counts it, held the pool at one worker as full.
#[test]
fn max_workers_grows_into_a_fractional_cpu_quota() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return eprintln!("skipped: needs 2 CPUs");
    }
    let Some(cgroup) = Cgroup::cpu("quota", 1500) else {
        return eprintln!("skipped: needs a writable CPU cgroup");
    };
    let server = Launch::new()
        .wrapped(&cgroup.wrapper())
        .args(&["--workers", "1", "--max-workers", "2"])
        .start();
    server.wait_children(1, secs(10));
    let mut burners = cpu_burners(&server, 4);
    server.wait_for_log("workers 1 -> 2", secs(20));
    for conn in &mut burners {
        assert_eq!(conn.read_response(secs(60)).status, 200);
    }
    let held = server
        .log()
        .into_iter()
        .find(|l| l.contains("workers fill the"));
    assert!(held.is_none(), "{held:?}");
    drop(server);
}

/// Kept-alive clients of a busy worker: the requests waiting behind it count as demand,
/// though the accept queue never sees them, so the pool grows; and a client whose
/// request waited is answered with `Connection: close` once the new worker is idle, so
/// it comes back through the accept queue and is served there, not behind the busy one.
#[test]
fn kept_alive_clients_behind_a_busy_worker_grow_the_pool_and_move() {
    let server = start("1", &["--max-workers", "2", "--scale-down-after", "60"]);
    let first = server.children()[0];
    // Three clients, each accepted by the one worker before the load begins.
    let clients: Vec<Conn> = (0..3)
        .map(|_| {
            let mut conn = server.connect();
            conn.send(&client::request("GET", "/pid", &[], b""));
            assert_eq!(
                conn.read_response(secs(10)).text().trim(),
                first.to_string()
            );
            conn
        })
        .collect();
    // Each sends 300 ms requests on its connection until one is answered with a close;
    // then it connects again and asks which worker serves it. All stop once one has
    // reached another worker.
    let deadline = Instant::now() + secs(40);
    let done = std::sync::atomic::AtomicBool::new(false);
    let moved_to = |mut conn: Conn| -> Option<String> {
        while Instant::now() < deadline && !done.load(Relaxed) {
            conn.send(&client::request("GET", "/sleep?ms=300", &[], b""));
            let answer = conn.try_read_response(secs(20)).ok()?;
            if answer.has_token("connection", "close") {
                let mut again = server.connect();
                again.send(&client::request("GET", "/pid", &[], b""));
                let pid = again.read_response(secs(10)).text().trim().to_string();
                done.fetch_or(pid != first.to_string(), Relaxed);
                return Some(pid);
            }
        }
        None
    };
    let moved: Vec<Option<String>> = std::thread::scope(|scope| {
        let threads: Vec<_> = clients
            .into_iter()
            .map(|conn| scope.spawn(move || moved_to(conn)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let line = server.wait_for_log("workers 1 -> 2", secs(10));
    assert!(line.contains("waiting"), "{line}");
    let elsewhere = moved.iter().flatten().any(|pid| *pid != first.to_string());
    assert!(elsewhere, "no client moved to the added worker: {moved:?}");
}

/// Pipelined requests wait only behind their own connection's earlier ones, which must
/// be answered first wherever the client goes: that is no reason to move it, even with
/// another worker idle. Its connection was closed after any 20 ms request it had
/// pipelined behind.
#[test]
fn a_client_waiting_only_behind_its_own_requests_keeps_its_connection() {
    let server = start("2", &[]);
    let mut conn = server.connect();
    let slow = client::request("GET", "/sleep?ms=100", &[], b"");
    conn.send(&[slow, client::request("GET", "/", &[], b"")].concat());
    for want in ["slept", "Hello"] {
        let answer = conn.read_response(secs(10));
        assert_eq!(answer.status, 200, "{want}");
        assert!(!answer.has_token("connection", "close"), "{want}: closed");
    }
    conn.send(&client::request("GET", "/", &[], b""));
    assert_eq!(conn.read_response(secs(10)).status, 200);
}

/// A TTIN after a quiet spell sticks for `--scale-down-after` of quiet from then on: the
/// autoscaler's clock starts over, rather than undoing the TTIN on its next turn because
/// the pool had been idle long before it.
#[test]
fn ttin_after_a_quiet_spell_is_not_undone_at_once() {
    let server = start("1", &["--max-workers", "3", "--scale-down-after", "2"]);
    // Quiet for longer than --scale-down-after, at the floor, so nothing to shrink.
    std::thread::sleep(secs(3));
    server.signal(Signal::SIGTTIN);
    server.wait_for_log("TTIN x1, TTOU x0: workers 1 -> 2", secs(10));
    let added = Instant::now();
    server.wait_for_log("workers 2 -> 1", secs(20));
    let kept = added.elapsed();
    assert!(kept >= Duration::from_millis(1500), "undone after {kept:?}");
}

/// Behind nginx, a Unix socket's queue is the one that fills: the pool grows on it as on
/// a TCP listener's, here with an idle TCP listener beside it whose queue alone says
/// nothing waits. Both queued requests are then answered by the worker it added.
#[test]
fn max_workers_grows_the_pool_on_a_unix_listeners_queue() {
    let (_dir, path, unix) = unix_socket("unix-scale");
    let server = start("1", &["--bind", &unix, "--max-workers", "2"]);
    let _busy = server.sleeper(20_000);
    let mut waiting: Vec<_> = (0..2).map(|_| unix_sent(&path, "/pid")).collect();
    let line = server.wait_for_log("workers 1 -> 2", secs(30));
    assert!(line.contains("Autoscale: 2 waiting"), "{line}");
    for stream in &mut waiting {
        let answer = unix_answer(stream);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    }
}

/// The metrics count a Unix listener's queue too (the kernel's sock_diag interface, as
/// `ss -xl` reads it): three requests waiting behind the only worker, which is busy.
#[test]
fn metrics_count_a_unix_listeners_queue() {
    let (_dir, path, unix) = unix_socket("unix-queue");
    let server = Launch::new()
        .args(&["--workers", "1", "--bind", &unix, "--backlog", "77"])
        .args(&["--metrics-bind", "127.0.0.1:0"])
        .start();
    let _busy = server.sleeper(20_000);
    let _waiting: Vec<_> = (0..3).map(|_| unix_sent(&path, "/pid")).collect();
    let queue = format!(r#"br_serve_listen_queue{{listener="{unix}"}}"#);
    let scrape = poll_until(secs(10), || {
        let text = client::get(server.metrics_addr(), "/metrics").text();
        (metric_sample::<u64>(&text, &queue) == 3).then_some(text)
    });
    let scrape = scrape.expect("3 connections counted in the Unix socket's queue");
    let backlog = format!(r#"br_serve_listen_backlog{{listener="{unix}"}}"#);
    assert_eq!(metric_sample::<u64>(&scrape, &backlog), 77, "{scrape}");
}

/// One worker (`extra` flags appended) in a memory cgroup of its own limited to `mib` MiB,
/// or `None` where none can be made. The server is dropped before the cgroup (bindings
/// drop right to left), so the cgroup is empty when it is removed.
fn in_memory_cgroup(tag: &str, mib: u64, extra: &[&str]) -> Option<(Cgroup, Server)> {
    let cgroup = Cgroup::memory(tag, mib)?;
    let server = Launch::new()
        .wrapped(&cgroup.wrapper())
        .args(&["--workers", "1"])
        .args(extra)
        .start();
    Some((cgroup, server))
}

/// `--max-workers` under a cgroup memory limit: one more worker must fit within 90 % of
/// it, judged by the largest worker. A worker holding 40 MiB of an 80 MiB cgroup leaves
/// no room for a second, so the pool stays at one however long connections wait.
#[test]
fn max_workers_stops_where_another_worker_would_not_fit_in_memory() {
    let extra = ["--max-workers", "3"];
    let Some((_cgroup, server)) = in_memory_cgroup("ceiling", 80, &extra) else {
        return eprintln!("skipped: needs a writable memory cgroup");
    };
    server.wait_for_log("of the cgroup's 80.0 MiB memory limit", secs(10));
    assert_eq!(server.get("/leak?mb=40").status, 200);
    let _sleepers: Vec<Conn> = (0..3).map(|_| server.sent_sleeper(20_000)).collect();
    let held = server.wait_for_log("would not fit in memory", secs(15));
    assert!(held.contains("the pool stays at 1"), "{held}");
    let grown = server
        .log()
        .into_iter()
        .find(|l| l.contains("workers 1 -> 2"));
    assert!(grown.is_none(), "{grown:?}");
    assert_eq!(server.children().len(), 1);
}

/// A worker the kernel's OOM killer takes is reported as that, not as any SIGKILL, and
/// replaced; the server goes on answering.
#[test]
fn an_oom_killed_worker_is_named_so_and_replaced() {
    let Some((_cgroup, server)) = in_memory_cgroup("oom", 48, &[]) else {
        return eprintln!("skipped: needs a writable memory cgroup");
    };
    let first = server.wait_children(1, secs(10))[0];
    let mut conn = server.connect();
    conn.send(b"GET /leak?mb=60 HTTP/1.1\r\nHost: t\r\n\r\n");
    conn.expect_closed(secs(15));
    let line = server.wait_for_log("killed by the kernel's OOM killer", secs(15));
    assert!(line.contains(&format!("pid: {first}")), "{line}");
    let replaced = poll_until(secs(10), || (server.children() != [first]).then_some(()));
    assert!(replaced.is_some(), "not replaced: {:?}", server.children());
    assert_eq!(server.get("/").status, 200);
}

/// A new worker's boot does not count toward the next step: with workers that take 3 s
/// to boot, the second step still comes about a second after the first worker it added
/// is serving, not the moment it has booted.
#[test]
fn max_workers_does_not_count_a_boot_as_crowding() {
    let server = Launch::new()
        .args(&["--workers", "1", "--max-workers", "3"])
        .env("BR_SERVE_DEMO_BOOT_MS", "3000")
        .start();
    let _sleepers: Vec<Conn> = (0..8).map(|_| server.sent_sleeper(20_000)).collect();
    let line = server.wait_for_log("workers 2 -> 3", secs(30));
    let waited = line.split("no worker idle for ").nth(1);
    let waited: Option<u64> = waited.and_then(|w| w.split(' ').next()?.parse().ok());
    let waited = waited.unwrap_or_else(|| panic!("no wait in {line:?}"));
    assert!((1000..3000).contains(&waited), "{line}");
}

/// A stop does not wait for a worker still building its application (a model loading,
/// here 60 s): it has no connection to finish, so it goes at once.
#[test]
fn a_stop_does_not_wait_for_a_booting_worker() {
    let mut server = Launch::new()
        .args(&["--workers", "1"])
        .env("BR_SERVE_DEMO_BOOT_MS", "60000")
        .start();
    server.wait_for_log("Booting worker", secs(10));
    server.signal(Signal::SIGTERM);
    server.wait_for_log("is still booting: stopping it at once", secs(10));
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
}

/// A worker that another process SIGKILLs while it boots (an operator's `kill -9`, not
/// the OOM killer) says nothing of its configuration: three such kills during a HUP's
/// roll abandoned a good reload and reported it failed.
#[test]
fn a_booting_worker_killed_by_another_process_is_no_boot_failure() {
    let server = Launch::new()
        .args(&["--workers", "1"])
        .env("BR_SERVE_DEMO_BOOT_MS", "2000")
        .start();
    server.wait_for_log("Ready: 1 of 1", secs(20));
    let old = server.wait_children(1, secs(10))[0];
    server.signal(Signal::SIGHUP);
    let mut killed = Vec::new();
    for _ in 0..3 {
        let booting = poll_until(secs(10), || {
            let new = |p: &u32| *p != old && !killed.contains(p);
            server.children().into_iter().find(new)
        });
        let pid = booting.expect("a worker of the new generation");
        send_signal(pid, Signal::SIGKILL);
        killed.push(pid);
        let said = format!("(pid: {pid}) was sent SIGKILL");
        let line = server.wait_for_log(&said, secs(10));
        if !line.contains("by another process (no OOM kill") {
            return eprintln!("skipped: no OOM counter to tell who killed it: {line}");
        }
    }
    server.wait_for_log("serving, generation 2", secs(20));
    let log = server.log();
    let counted = log
        .iter()
        .find(|l| l.contains("died during boot") || l.contains("abandoned"));
    assert!(counted.is_none(), "{counted:?}");
}

/// A second HUP during a slow boot (60 s here) retires the generation it abandons at
/// once: its worker would serve nothing, and finishing its boot before it saw TERM left
/// three generations alive, for a model loading, three models in memory.
#[test]
fn a_reload_drops_an_abandoned_booting_worker_at_once() {
    let server = Launch::new()
        .args(&["--workers", "1"])
        .env("BR_SERVE_DEMO_BOOT_MS", "60000")
        .start();
    server.wait_for_log("Booting worker", secs(10));
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 2", secs(10));
    server.wait_children(2, secs(10));
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 3", secs(10));
    server.wait_for_log("is still booting: stopping it at once", secs(10));
    server.wait_children(2, secs(10));
}

/// A worker holding `--worker-connections` kept-alive clients, each in the middle of its
/// next request's body (so none idle, nor a head sent slowly, that it could close for a
/// newcomer), takes no newcomer, so it is no idle worker: the autoscaler adds one for the
/// newcomer waiting in the queue (which used to wait for those clients' uploads to time
/// out).
#[test]
fn a_full_worker_is_not_an_idle_one() {
    let server = start(
        "1",
        &[
            "--worker-connections",
            "2",
            "--keep-alive",
            "60",
            "--body-timeout",
            "60",
            "--max-workers",
            "2",
        ],
    );
    let kept: Vec<Conn> = (0..2)
        .map(|_| {
            let mut conn = server.connect();
            conn.send(&client::request("GET", "/", &[], b""));
            assert_eq!(conn.read_response(secs(10)).status, 200);
            conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc");
            conn.wait_consumed(secs(10));
            conn
        })
        .collect();
    let mut newcomer = server.connect();
    newcomer.send(&client::request("GET", "/pid", &[], b""));
    server.wait_for_log("workers 1 -> 2", secs(15));
    assert_eq!(newcomer.read_response(secs(10)).status, 200);
    drop(kept);
}

/// When fork fails (here a process limit of three for a user of its own: the master and
/// two workers), the workers there serve on and the master retries with backoff, not
/// every turn of its loop (about ten failures a second per missing worker, each logged).
#[test]
fn fork_failures_are_retried_with_backoff() {
    if !geteuid().is_root() {
        return eprintln!("skipped: needs root");
    }
    let user = [
        "setpriv",
        "--reuid",
        "54321",
        "--regid",
        "54321",
        "--clear-groups",
    ];
    let server = Launch::new()
        .wrapped(&[&["prlimit", "--nproc=3"][..], &user].concat())
        .args(&["--workers", "4"])
        .start();
    server.wait_for_log("fork failed", secs(10));
    std::thread::sleep(secs(2));
    let failures = server.log_count("fork failed");
    assert!(failures <= 8, "{failures} fork failures logged in 2 s");
    assert_eq!(server.get("/").status, 200);
}

/// The master out of descriptors cannot accept on its metrics port: it says so once,
/// not ten times a second for as long as a scraper waits, and answers that scraper once
/// it has room again.
#[test]
fn metrics_port_out_of_descriptors_says_so_once() {
    let server = start("1", &["--metrics-bind", "127.0.0.1:0"]);
    let metrics = server.metrics_addr();
    assert_eq!(client::get(metrics, "/metrics").status, 200);
    let pid = server.pid().to_string();
    let limit = |soft: usize| {
        let nofile = format!("--nofile={soft}:");
        let set = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &nofile])
            .status();
        assert!(set.is_ok_and(|s| s.success()), "prlimit {nofile}");
    };
    // Below what the master holds: every new descriptor fails.
    limit(8);
    let mut waiting = Conn::open(metrics);
    waiting.send(&client::request("GET", "/metrics", &[], b""));
    let failed = "metrics port: accept failed";
    server.wait_for_log(failed, secs(10));
    // Ten retries' time: each would have said it again.
    std::thread::sleep(secs(1));
    assert_eq!(server.log_count(failed), 1, "{:#?}", server.log());
    limit(1024);
    assert_eq!(waiting.read_response(secs(10)).status, 200);
    server.wait_for_log("metrics port: accepting again", secs(10));
}

/// A worker retired while in a request (TTOU with every worker busy) counts as stopping
/// at once, not as busy until its request ends and it sees the signal: the master marks
/// it when it retires it.
#[test]
fn a_worker_retired_in_a_request_counts_as_stopping() {
    let server = start("2", &["--metrics-bind", "127.0.0.1:0"]);
    let metrics = server.metrics_addr();
    let _sleepers = [server.sleeper(20_000), server.sleeper(20_000)];
    let sample = |state: &str| {
        let scrape = client::get(metrics, "/metrics").text();
        metric_sample::<u64>(&scrape, &format!(r#"br_serve_workers{{state="{state}"}}"#))
    };
    let both_busy = poll_until(secs(10), || (sample("busy") == 2).then_some(()));
    assert!(both_busy.is_some(), "two workers busy within 10 s");
    server.signal(Signal::SIGTTOU);
    server.wait_for_log("Retiring worker", secs(10));
    assert_eq!((sample("stopping"), sample("busy")), (1, 1));
}

/// TTOU retires a busy worker before an idle one that is sending a download: the busy
/// one finishes its request well within `--graceful-timeout`, where the download to a
/// slow client would be cut at it. The worker shows what it is sending in the metrics.
#[test]
fn ttou_spares_the_worker_sending_a_download() {
    let server = start(
        "2",
        &["--metrics-bind", "127.0.0.1:0", "--keep-alive", "60"],
    );
    let metrics = server.metrics_addr();
    let pid_on = |conn: &mut Conn| -> u32 {
        conn.send(&client::request("GET", "/pid", &[], b""));
        let text = conn.read_response(secs(10)).text();
        text.trim().parse().expect("/pid")
    };
    // The downloader's worker is held in a request while the other takes a connection,
    // so the two connections are known to be on different workers.
    let mut downloader = server.connect();
    let sending = pid_on(&mut downloader);
    downloader.send(&client::request("GET", "/sleep?ms=5000", &[], b""));
    downloader.wait_consumed(secs(10));
    let mut busy = server.connect();
    let other = pid_on(&mut busy);
    assert_ne!(
        other, sending,
        "the only idle worker took the second connection"
    );
    busy.send(&client::request("GET", "/sleep?ms=30000", &[], b""));
    busy.wait_consumed(secs(10));
    assert_eq!(downloader.read_response(secs(10)).status, 200);
    // 1 GiB, made only as fast as the client takes it, which it never does.
    downloader.send(&client::request("GET", "/stream?kib=1048576", &[], b""));
    let sent_one = poll_until(secs(10), || {
        let scrape = client::get(metrics, "/metrics").text();
        let one = |w| {
            metric_sample::<u32>(
                &scrape,
                &format!(r#"br_serve_worker_answers_sending{{worker="{w}"}}"#),
            )
        };
        (one(1) + one(2) == 1).then_some(())
    });
    assert!(sent_one.is_some(), "one answer shown sending within 10 s");
    // Idle but for the download, the worker sending it would be the one retired before.
    server.signal(Signal::SIGTTOU);
    let line = server.wait_for_log("Retiring worker", secs(10));
    assert!(line.contains(&format!("(pid: {other})")), "{line}");
}

/// The master answers its own port while the only worker is inside a 20 s request, when
/// a scrape of `--metrics-path` would wait behind it.
#[test]
fn metrics_port_answers_metrics_and_liveness_while_every_worker_is_busy() {
    let server = start("1", &["--metrics-bind", "127.0.0.1:0"]);
    let metrics = server.metrics_addr();
    // The application's port knows nothing of it (the demo's 404).
    assert_eq!(server.get("/metrics").status, 404);
    let _sleeper = server.sleeper(20_000);
    // The worker has read the request; it marks itself busy a moment later.
    let busy = r#"br_serve_workers{state="busy"}"#;
    let scrape = poll_until(secs(10), || {
        let scrape = client::get(metrics, "/metrics");
        (metric_sample::<u64>(&scrape.text(), busy) == 1).then_some(scrape)
    });
    let scrape = scrape.expect("the worker shown busy within 10 s");
    let kind = scrape.header("content-type").unwrap_or_default();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    assert_eq!(scrape.header("connection"), Some("close"));
    let text = scrape.text();
    let queue = format!(
        r#"br_serve_listen_queue{{listener="http://{}"}}"#,
        server.addr()
    );
    metric_sample::<u64>(&text, &queue);
    // The master's liveness, for a probe that must not wait behind the busy worker.
    let alive = client::get(metrics, "/healthz");
    assert_eq!((alive.status, alive.text().as_str()), (200, "ok\n"));

    // Only /metrics and /healthz, and only GET and HEAD: 405 for HTTP's other methods,
    // 501 for one it does not define (RFC 9110 §9.1), on either path.
    assert_eq!(client::get(metrics, "/").status, 404);
    for (method, path, status) in [
        ("POST", "/metrics", 405),
        ("DELETE", "/healthz", 405),
        ("PURGE", "/metrics", 501),
        ("PURGE", "/healthz", 501),
    ] {
        let mut conn = Conn::open(metrics);
        conn.send(&client::request(method, path, &[], b""));
        let refused = conn.read_response(secs(10));
        assert_eq!(refused.status, status, "{method} {path}");
        let allow = (status == 405).then_some("GET, HEAD");
        assert_eq!(refused.header("allow"), allow, "{method} {path}");
    }
}

#[test]
fn stopped_worker_is_killed_and_replaced_after_the_timeout() {
    let timeout = 3;
    let server = start("1", &["--timeout", &timeout.to_string()]);
    let victim = server.children()[0];
    // Served once, so the worker is past its boot: on a loaded machine it may not be yet
    // when it first shows up, and a worker stopped while booting is reported as such.
    assert_eq!(server.get("/").status, 200);
    // A stopped process cannot heartbeat: exactly what a wedged worker looks like.
    send_signal(victim, Signal::SIGSTOP);
    wait_replaced(&server, victim, secs(timeout + 3));
    let line = server.wait_for_log("WORKER TIMEOUT", secs(5));
    assert!(
        line.contains(&victim.to_string()) && line.contains("idle"),
        "{line}"
    );
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn timeout_log_names_the_request_in_the_handler() {
    let server = start("1", &["--timeout", "2"]);
    let _sleeper = server.sleeper(20_000);
    // 2 s of silence, up to 1 s until the master looks: well within 10 s.
    let line = server.wait_for_log("WORKER TIMEOUT", secs(10));
    assert!(line.contains("GET /sleep?ms=20000"), "{line}");
}

/// The request a `--timeout` kill cuts short gets a 500 with `Connection: close`, where
/// gunicorn's client gets an empty reply (a proxy's 502); a HEAD gets the head alone.
/// The metrics count them apart.
#[test]
fn a_request_cut_short_by_the_timeout_is_answered_500() {
    let server = start("1", &["--timeout", "2", "--metrics-path", "/metrics"]);
    let mut conn = server.sleeper(20_000);
    // 2 s of silence, up to 1 s until the master looks: well within 15 s.
    let answer = conn.read_response(secs(15));
    assert_eq!(answer.status, 500, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(answer.text(), "Internal Server Error\n");
    conn.expect_closed(secs(5));
    server.wait_for_log("WORKER TIMEOUT", secs(5));

    let mut head = client::raw_connect(server.addr());
    head.write_all(&client::request("HEAD", "/sleep?ms=20000", &[], b""))
        .expect("send");
    let (bytes, closed) = client::read_to_close(&mut head, secs(20));
    let text = String::from_utf8_lossy(&bytes);
    assert!(closed, "still open: {text:?}");
    assert!(text.starts_with("HTTP/1.1 500 "), "{text:?}");
    assert!(
        text.ends_with("Content-Length: 22\r\nConnection: close\r\n\r\n"),
        "{text:?}"
    );
    let scrape = server.get("/metrics").text();
    assert_eq!(
        metric_sample::<u64>(&scrape, "br_serve_requests_aborted_total"),
        2
    );
    assert_eq!(metric_sample::<u64>(&scrape, "br_serve_requests_total"), 0);
}

/// Requests that come on the worker's other kept-alive connections while its handler
/// hangs never run: when the timeout kills it, one that is not idempotent is answered
/// 503 with `Retry-After`, so its client may send it again, where it was reset (a
/// proxy's 502 for a POST). An idempotent one is still reset, which a proxy or client
/// takes as leave to send it again on its own; and empty lines are no request.
#[test]
fn requests_waiting_behind_a_hung_handler_are_answered_503() {
    let server = start("1", &["--timeout", "2", "--metrics-path", "/metrics"]);
    let kept_alive = || {
        let mut conn = server.connect();
        conn.send(&client::request("GET", "/", &[], b""));
        assert_eq!(conn.read_response(secs(10)).status, 200);
        conn
    };
    let (mut kept, mut get, mut blank) = (kept_alive(), kept_alive(), kept_alive());
    let mut hung = server.sleeper(20_000);
    let post = client::request("POST", "/echo", &["Content-Length: 5"], b"hello");
    kept.send(&post);
    get.send(&client::request("GET", "/", &[], b""));
    blank.send(b"\r\n");
    for conn in [&kept, &get, &blank] {
        conn.wait_delivered(secs(10));
    }
    let answer = kept.read_response(secs(15));
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.header("connection"), Some("close"));
    kept.expect_closed(secs(5));
    get.expect_closed(secs(5));
    blank.expect_closed(secs(5));
    assert_eq!(hung.read_response(secs(5)).status, 500);
    let scrape = server.get("/metrics").text();
    assert_eq!(
        metric_sample::<u64>(&scrape, "br_serve_requests_aborted_total"),
        2
    );
}

#[test]
fn workers_die_with_a_sigkilled_master() {
    let mut server = start("2", &[]);
    let workers = server.children();
    server.signal(Signal::SIGKILL);
    let killed_at = Instant::now();
    server.wait_exit(secs(5));
    let left = Duration::from_secs(2).saturating_sub(killed_at.elapsed());
    // Gone or a zombie (a dead process its new parent has not reaped yet).
    let gone = poll_until(left, || workers.iter().all(|&p| is_zombie(p)).then_some(()));
    let alive: Vec<_> = workers.iter().filter(|&&p| !is_zombie(p)).collect();
    assert!(
        gone.is_some(),
        "workers {alive:?} still alive 2 s after the master died"
    );
}

#[test]
fn handler_panic_answers_500_and_the_worker_keeps_serving() {
    let server = start("1", &[]);
    let before = server.get("/pid").text();
    let r = server.get("/panic");
    assert_eq!(r.status, 500, "{r:?}");
    let after = server.get("/pid").text();
    assert_eq!(before, after, "a different worker answered after the panic");
    assert_eq!(
        server.children(),
        vec![before.trim().parse::<u32>().unwrap()]
    );
    server.wait_for_log("panic", secs(5));
    assert!(!server.log().iter().any(|l| l.contains("backtrace:")));
}

/// With `RUST_BACKTRACE=1` the panic's backtrace is logged too, a record per line, as
/// gunicorn logs a traceback: the worker's hook dropped it.
#[test]
fn handler_panic_logs_its_backtrace_when_asked() {
    let server = Launch::new()
        .args(&["--workers", "1"])
        .env("RUST_BACKTRACE", "1")
        .start();
    assert_eq!(server.get("/panic").status, 500);
    server.wait_for_log("backtrace:", secs(5));
    let frame = |l: &String| l.contains("backtrace:") && l.contains("Demo");
    poll_until(secs(5), || server.log().iter().any(frame).then_some(()))
        .expect("a backtrace line naming the demo app's handler");
    // Only up to the worker's guard, as Rust's short backtrace: not the loop around it.
    assert!(!server.log().iter().any(|l| l.contains("Worker::serve")));
}

/// The backoff delays the master announced so far ("next start in N ms").
fn backoff_delays(server: &Server) -> Vec<u64> {
    let lines = server.log().into_iter();
    let delays = lines.filter(|l| l.contains("died during boot")).map(|l| {
        let after = l.split("next start in ").nth(1)?;
        after.split(" ms").next()?.parse().ok()
    });
    delays.map(|d| d.unwrap_or(0)).collect()
}

/// A server of one worker, on a configuration file in the returned directory
/// (`br-serve.toml`), whose boot fails while the returned file exists (the demo app's
/// `BR_SERVE_DEMO_BOOT_FAULT`).
fn failing_to_boot(tag: &str) -> (TempDir, std::path::PathBuf, Server) {
    let dir = TempDir::new(tag);
    let fault = dir.join("fault");
    std::fs::write(&fault, "").unwrap();
    let file = dir.join("br-serve.toml");
    std::fs::write(&file, "workers = 1\n").unwrap();
    let server = Launch::new()
        .args(&["-c", file.to_str().unwrap()])
        .env("BR_SERVE_DEMO_BOOT_FAULT", fault.to_str().unwrap())
        .start();
    (dir, fault, server)
}

#[test]
fn crash_loop_backs_off_and_recovers() {
    let started = Instant::now();
    let (_dir, fault, server) = failing_to_boot("bootfault");
    server.wait_for_log("next start in 400 ms", secs(10));
    assert_eq!(backoff_delays(&server)[..3], [100, 200, 400]);
    // Let 2 s pass since the start: backoff allows about 5 boots in that time, a fork
    // storm thousands.
    std::thread::sleep(secs(2).saturating_sub(started.elapsed()));
    let boots = backoff_delays(&server).len();
    assert!((3..=8).contains(&boots), "{boots} failed boots in ~2 s");
    let delays = backoff_delays(&server);
    assert!(
        delays.windows(2).all(|w| w[1] == w[0] * 2 || w[1] == w[0]),
        "delays do not grow: {delays:?}"
    );

    std::fs::remove_file(&fault).unwrap();
    // The next attempt comes after at most a few seconds of backoff.
    server.wait_for_log("Ready:", secs(15));
    assert_eq!(server.get("/").status, 200);
}

/// The master's `/healthz` fails while its workers die during boot and none serves, so a
/// liveness probe (the image's HEALTHCHECK) sees a server that answers nothing: it said
/// ok throughout, where gunicorn would have exited. Ok again once a worker serves.
#[test]
fn healthz_fails_while_no_worker_can_boot() {
    let dir = TempDir::new("bootfault-health");
    let fault = dir.join("fault");
    std::fs::write(&fault, "").unwrap();
    let server = Launch::new()
        .args(&["--workers", "1", "--metrics-bind", "127.0.0.1:0"])
        .env("BR_SERVE_DEMO_BOOT_FAULT", fault.to_str().unwrap())
        .start();
    server.wait_for_log("died during boot", secs(10));
    let health = client::get(server.metrics_addr(), "/healthz");
    assert_eq!(health.status, 503, "{health:?}");
    assert!(
        health.text().contains("workers die during boot"),
        "{health:?}"
    );

    std::fs::remove_file(&fault).unwrap();
    server.wait_for_log("Ready:", secs(15));
    let health = client::get(server.metrics_addr(), "/healthz");
    assert_eq!((health.status, health.text()), (200, "ok\n".to_string()));
}

/// A HUP is the operator's "try again now": after the cause of a crash loop is fixed,
/// the new generation starts at once, not when the backoff (here 6.4 s) runs out; with
/// a configuration file that no longer loads, the missing workers start at once as they
/// were.
#[test]
fn hup_after_a_crash_loop_starts_at_once() {
    for broken in [false, true] {
        hup_ends_a_crash_loop(broken);
    }
}

fn hup_ends_a_crash_loop(broken_file: bool) {
    let (dir, fault, server) = failing_to_boot("bootfault-hup");
    server.wait_for_log("next start in 6400 ms", secs(20));
    std::fs::remove_file(&fault).unwrap();
    if broken_file {
        std::fs::write(dir.join("br-serve.toml"), "workers = \"x").unwrap();
    }
    let hup = Instant::now();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Ready:", secs(15));
    let waited = hup.elapsed();
    assert!(
        waited < secs(5),
        "ready {waited:?} after the HUP: the backoff was waited out"
    );
}

/// A server started with `-c` on a file holding `text`, which a test may rewrite before
/// a HUP.
fn on_config_file(tag: &str, text: &str) -> (TempDir, std::path::PathBuf, Server) {
    let dir = TempDir::new(tag);
    let file = dir.join("br-serve.toml");
    std::fs::write(&file, text).unwrap();
    let server = Launch::new().args(&["-c", file.to_str().unwrap()]).start();
    (dir, file, server)
}

/// The HUP of a rollback (after WINCH stopped the workers) when the configuration file
/// no longer loads, edited for the new release: the workers start again as they were,
/// as nginx's rollback HUP does, rather than the master staying with none.
#[test]
fn a_failed_reload_brings_back_workers_winch_stopped() {
    let (_dir, file, server) = on_config_file("rollback-config", "workers = 1\n");
    server.wait_children(1, secs(10));
    server.signal(Signal::SIGWINCH);
    let none_left = poll_until(secs(15), || server.children().is_empty().then_some(()));
    assert!(none_left.is_some(), "workers left: {:?}", server.children());
    std::fs::write(&file, "workers = 1\nnew-feature = true\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("starting the stopped workers as they were", secs(10));
    server.wait_children(1, secs(10));
    assert_eq!(server.get("/").status, 200);
}

/// The configuration file `text` with an `env` that makes every worker fail its boot
/// while `fault` exists (the demo's `BR_SERVE_DEMO_BOOT_FAULT`): a file that loads, and
/// a generation that can never serve.
fn with_boot_fault(text: &str, fault: &std::path::Path) -> String {
    let env = format!("BR_SERVE_DEMO_BOOT_FAULT={}", fault.display());
    format!("{text}env = [{env:?}]\n")
}

/// A HUP to a configuration whose workers die during boot is abandoned after 3 boots in
/// a row, the old generation current again: an old worker that dies is then replaced by
/// one with the old configuration, where it was replaced by a new one that died too,
/// until none served. Requests are answered throughout, and the next HUP rolls as usual.
#[test]
fn a_reload_whose_workers_cannot_boot_goes_back_to_the_old_configuration() {
    let (dir, file, server) = on_config_file("hup-abandon", "workers = 2\n");
    let before = server.wait_children(2, secs(10));
    let fault = dir.join("fault");
    std::fs::write(&fault, "").unwrap();
    std::fs::write(&file, with_boot_fault("workers = 2\n", &fault)).unwrap();
    let load = Load::start(server.addr(), CHOREOGRAPHY);
    server.signal(Signal::SIGHUP);
    server.wait_for_log("died during boot", secs(10));
    load.wait_progress(10, secs(10));
    load.finish();
    // Killed while the new generation fails, or just after it is abandoned.
    send_signal(before[0], Signal::SIGKILL);
    let line = server.wait_for_log("Reload abandoned", secs(15));
    let want = "generation 2's workers died during boot 3 times in a row; generation 1 keeps \
                serving with its configuration";
    assert!(line.contains(want), "{line}");
    // The other old worker too: only workers started since are left, and they serve,
    // so they were started with the old configuration.
    send_signal(before[1], Signal::SIGKILL);
    let fresh = |pids: &Vec<u32>| pids.len() == 2 && pids.iter().all(|p| !before.contains(p));
    let replaced = poll_until(secs(15), || Some(server.children()).filter(fresh));
    assert!(replaced.is_some(), "{before:?} -> {:?}", server.children());
    let load = Load::start(server.addr(), CHOREOGRAPHY);
    load.wait_progress(20, secs(15));
    load.finish();
    let pid: u32 = server.get("/pid").text().trim().parse().expect("a pid");
    assert!(!before.contains(&pid), "{pid} is one of {before:?}");

    std::fs::write(&file, "workers = 2\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 3 with 2 workers", secs(10));
    server.wait_for_log("Ready: 2 of 2 workers serving, generation 3", secs(15));
    let log = server.log();
    let abandoned = log
        .iter()
        .filter(|l| l.contains("Reload abandoned"))
        .count();
    assert_eq!(abandoned, 1, "{log:#?}");
}

/// The HUP of an upgrade's rollback (WINCH stopped the workers), to a configuration
/// whose workers cannot boot: the stopped workers start again with the configuration they
/// ran, as when the file does not load, rather than none serving. Its `--log-level` comes
/// back too, said while the line still shows.
#[test]
fn a_rollback_hup_whose_workers_cannot_boot_starts_the_stopped_workers() {
    let (dir, file, server) = on_config_file("hup-stopped-back", "workers = 1\n");
    server.wait_children(1, secs(10));
    server.signal(Signal::SIGWINCH);
    let none_left = poll_until(secs(15), || server.children().is_empty().then_some(()));
    assert!(none_left.is_some(), "workers left: {:?}", server.children());
    let fault = dir.join("fault");
    std::fs::write(&fault, "").unwrap();
    let quiet = "workers = 1\nlog-level = \"warning\"\n";
    std::fs::write(&file, with_boot_fault(quiet, &fault)).unwrap();
    server.signal(Signal::SIGHUP);
    let line = server.wait_for_log("Reload abandoned", secs(15));
    let want = "generation 1 starts again with its configuration (its workers were stopped by \
                WINCH)";
    assert!(line.contains(want), "{line}");
    server.wait_for_log("--log-level back to INFO", secs(5));
    server.wait_children(1, secs(15));
    // The fault file is still there: only the old configuration boots.
    assert_eq!(server.get("/").status, 200);
}

/// A HUP that comes while the generation before it is still booting (a slow application,
/// just started) has that generation to go back to: the abandon waits for it, and a
/// worker of it that dies is replaced by one like it. It was said to have nothing to go
/// back to, and its workers were replaced by ones that died, until none served.
#[test]
fn a_reload_while_the_old_workers_boot_goes_back_to_them() {
    let slow = "workers = 1\nenv = [\"BR_SERVE_DEMO_BOOT_MS=3000\"]\n";
    let (dir, file, server) = on_config_file("hup-back-to-booting", slow);
    let fault = dir.join("fault");
    std::fs::write(&fault, "").unwrap();
    std::fs::write(&file, with_boot_fault("workers = 1\n", &fault)).unwrap();
    server.signal(Signal::SIGHUP);
    let line = server.wait_for_log("Reload abandoned", secs(15));
    assert!(line.contains("generation 1 keeps serving"), "{line}");
    let first: u32 = server.get("/pid").text().trim().parse().expect("a pid");
    send_signal(first, Signal::SIGKILL);
    let replaced = |pids: &Vec<u32>| pids.len() == 1 && pids[0] != first;
    let after = poll_until(secs(15), || Some(server.children()).filter(replaced));
    assert!(after.is_some(), "{first} -> {:?}", server.children());
    let pid: u32 = server.get("/pid").text().trim().parse().expect("a pid");
    assert_ne!(pid, first);
    assert!(
        !server
            .log()
            .iter()
            .any(|l| l.contains("cannot be abandoned")),
        "{:#?}",
        server.log()
    );
}

/// Workers that boot for five seconds under a one-second `--timeout`: each dies during
/// boot after a second, slow enough for a test to act while a roll to it fails.
pub const SLOW_TO_FAIL: &str = "workers = 2\ntimeout = 1\nenv = [\"BR_SERVE_DEMO_BOOT_MS=5000\"]\n";

/// TTIN during a roll that is then abandoned: the count it set stays, as it would have
/// after a HUP that worked; only the HUP's own count is undone.
#[test]
fn a_count_set_during_a_failing_roll_survives_its_abandon() {
    let (_dir, file, server) = on_config_file("hup-abandon-ttin", "workers = 2\n");
    server.wait_children(2, secs(10));
    std::fs::write(&file, SLOW_TO_FAIL).unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 2", secs(10));
    server.signal(Signal::SIGTTIN);
    server.wait_for_log("TTIN x1, TTOU x0: workers 2 -> 3", secs(10));
    server.wait_for_log("Reload abandoned", secs(30));
    server.wait_for_log("Keeping the count of 3 workers set since the HUP", secs(5));
    server.wait_children(3, secs(15));
}

/// TTIN while WINCH keeps the workers stopped starts nothing, and the log says so: the
/// count applies when HUP brings the workers back.
#[test]
fn ttin_while_winch_stopped_the_workers_applies_at_the_next_hup() {
    let server = start("2", &[]);
    server.signal(Signal::SIGWINCH);
    let none_left = poll_until(secs(15), || server.children().is_empty().then_some(()));
    assert!(none_left.is_some(), "workers left: {:?}", server.children());
    server.signal(Signal::SIGTTIN);
    let line = server.wait_for_log("Handling signal: TTIN x1", secs(10));
    assert!(
        line.contains("workers 2 -> 3 when HUP starts them again, unless its configuration"),
        "{line}"
    );
    assert_eq!(server.children(), Vec::<u32>::new());
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 2 with 3 workers", secs(10));
    server.wait_children(3, secs(15));
    server.wait_for_log("Ready: 3 of 3 workers serving", secs(15));
}

/// `--max-workers` turned on by a HUP looks for the cgroup's memory limit, as at start
/// (and says so): without it the pool would grow into the OOM killer.
#[test]
fn max_workers_turned_on_by_hup_minds_memory() {
    let (_dir, file, server) = on_config_file("hup-max-workers", "workers = 1\n");
    std::fs::write(&file, "workers = 1\nmax-workers = 3\n").unwrap();
    server.signal(Signal::SIGHUP);
    let line = server.wait_for_log("Autoscale: 1 to 3 workers", secs(10));
    assert!(line.contains("memory limit"), "{line}");
}

/// WINCH during a HUP's roll: once the old generation has drained, nothing is serving, so
/// the master does not log (or tell systemd) that it is ready; the next HUP is.
#[test]
fn no_ready_line_while_winch_keeps_the_workers_stopped() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    server.wait_children(1, secs(10));
    let mut old = server.sleeper(2000);
    server.signal(Signal::SIGHUP);
    server.wait_children(2, secs(10));
    server.signal(Signal::SIGWINCH);
    server.wait_for_log("Handling signal: WINCH", secs(10));
    assert_eq!(old.read_response(secs(10)).status, 200);
    let none_left = poll_until(secs(15), || server.children().is_empty().then_some(()));
    assert!(none_left.is_some(), "workers left: {:?}", server.children());
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Ready: 1 of 1 workers serving, generation 3", secs(15));
    let ready: Vec<String> = server
        .log()
        .into_iter()
        .filter(|l| l.contains("Ready:"))
        .collect();
    assert_eq!(ready.len(), 2, "{ready:#?}");
}

/// A copy of the listening socket that process `pid` has bound to `addr`, taken with
/// pidfd_getfd(2) (Linux 5.6; allowed to the process's parent, which the test is, unless
/// a seccomp profile forbids it, as container runtimes may): the test's way to break the
/// socket all of the server's processes share, as an application's stray `shutdown` or
/// double `close` would.
fn listener_of(pid: u32, addr: std::net::SocketAddr) -> Option<std::net::TcpStream> {
    use nix::libc;
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let pidfd = i32::try_from(pidfd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: a descriptor just returned to us, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    (3..256).find_map(|target: libc::c_long| {
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_getfd duplicates the target's descriptor into this process.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
        let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
        // SAFETY: as above, a new descriptor of our own (a socket or not: only its
        // address is asked, which fails for anything but a socket).
        let socket = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
        (socket.local_addr().ok() == Some(addr)).then_some(socket)
    })
}

/// A server of one worker (started with `extra` flags), the worker, and the test's copy
/// of the TCP listener it serves; `None`, the test skipped, where pidfd_getfd(2) is not
/// permitted.
fn one_worker_and_its_listener(extra: &[&str]) -> Option<(Server, u32, std::net::TcpStream)> {
    let server = start("1", extra);
    let worker = server.children()[0];
    let listener = listener_of(server.pid(), server.addr());
    if listener.is_none() {
        eprintln!("skipped: pidfd_getfd(2) is not permitted here");
    }
    Some((server, worker, listener?))
}

/// A listening socket shut down under the workers (by an application's stray
/// `shutdown`) makes every accept on it fail at once while epoll reports it ready. Each
/// worker spun a core on it for good, logging nothing; exiting instead made the master
/// start worker after worker, thousands a second, since the socket is shut in every
/// process. The worker now says so and serves on: its other listeners still work.
/// Only a restart mends the socket, so the master's `/healthz` fails, naming it, for a
/// liveness probe to act on.
#[test]
fn a_listener_shut_down_under_the_workers_is_told_and_left() {
    let (_dir, path, unix) = unix_socket("shut");
    let flags = ["--bind", &unix, "--metrics-bind", "127.0.0.1:0"];
    let Some((server, worker, listener)) = one_worker_and_its_listener(&flags) else {
        return;
    };
    assert_eq!(client::get(server.metrics_addr(), "/healthz").status, 200);
    listener
        .shutdown(std::net::Shutdown::Both)
        .expect("shut the listener down");
    server.wait_for_log("the listening socket no longer listens", secs(10));
    let answer = unix_answer(&mut unix_sent(&path, "/pid"));
    assert!(answer.ends_with(&format!("\n{worker}\n")), "{answer}");
    assert_eq!(server.children(), [worker]);
    // The master looks at its listeners once a second at most, on its own turn: the
    // worker may have told of the broken one first.
    let failed = |r: &client::Response| r.status == 503;
    let health = poll_until(secs(10), || {
        Some(client::get(server.metrics_addr(), "/healthz")).filter(failed)
    });
    let health = health.unwrap_or_else(|| client::get(server.metrics_addr(), "/healthz"));
    assert_eq!(health.status, 503, "{}", health.text());
    assert!(
        health
            .text()
            .contains(&format!("http://{} no longer listens", server.addr())),
        "{}",
        health.text()
    );
}

/// O_NONBLOCK belongs to the listening socket that every worker shares: an application
/// that cleared it left each idle worker that lost an accept race asleep in accept(2),
/// killed at `--timeout`, and every replacement inherited the same socket and fate. A
/// worker now sets the flag again as it boots, so the next one mends it.
#[test]
fn a_new_worker_makes_the_shared_listener_non_blocking_again() {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let Some((server, worker, listener)) = one_worker_and_its_listener(&[]) else {
        return;
    };
    let flags = |listener: &std::net::TcpStream| {
        let bits = fcntl(listener, FcntlArg::F_GETFL).expect("F_GETFL");
        OFlag::from_bits_truncate(bits)
    };
    let blocking = flags(&listener) - OFlag::O_NONBLOCK;
    fcntl(&listener, FcntlArg::F_SETFL(blocking)).expect("F_SETFL");
    send_signal(worker, Signal::SIGKILL);
    wait_replaced(&server, worker, secs(15));
    let mended = poll_until(secs(10), || {
        flags(&listener).contains(OFlag::O_NONBLOCK).then_some(())
    });
    assert!(mended.is_some(), "the listener is still blocking");
    assert_eq!(server.get("/").status, 200);
}
