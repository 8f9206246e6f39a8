//! The process model: workers are direct children of the master, and a worker that dies
//! is replaced.

use nix::sys::signal::Signal;

use crate::client;
use crate::util::{Launch, poll_until, proc_status, secs, send_signal};

#[test]
fn workers_are_children_of_the_master() {
    let server = Launch::new().args(&["--workers", "3"]).start();
    assert_eq!(
        server.ready_pid(),
        server.pid(),
        "the ready line names the master"
    );
    let workers = server.wait_children(3, secs(10));
    for pid in &workers {
        server.wait_for_log(&format!("Booting worker with pid: {pid}"), secs(10));
    }
    let served_by = server.get("/pid").text();
    let served_by: u32 = served_by.trim().parse().expect("/pid answers a number");
    assert!(
        workers.contains(&served_by),
        "/pid {served_by} is not among {workers:?}"
    );
}

#[test]
fn killed_worker_is_replaced() {
    let server = Launch::new().args(&["--workers", "2"]).start();
    let before = server.wait_children(2, secs(10));
    let victim = before[0];
    send_signal(victim, Signal::SIGKILL);

    let replaced = poll_until(secs(10), || {
        Some(server.children()).filter(|c| c.len() == 2 && !c.contains(&victim))
    });
    let after = replaced.unwrap_or_else(|| {
        panic!(
            "worker {victim} not replaced within 10 s; children {:?}",
            server.children()
        )
    });
    assert_eq!(
        after.iter().filter(|p| !before.contains(p)).count(),
        1,
        "{before:?} -> {after:?}"
    );

    // The master says which worker died: a line naming the pid that is not its boot line.
    let victim = victim.to_string();
    let names_victim = |line: &str| {
        !line.contains("Booting worker")
            && line
                .split(|c: char| !c.is_ascii_digit())
                .any(|word| word == victim)
    };
    let line = server.wait_for_log_where("about the killed worker", secs(5), names_victim);
    // Not gunicorn's "Perhaps out of memory?": the kernel's OOM kill count did not move.
    assert!(
        line.contains("was sent SIGKILL by another process (no OOM kill in"),
        "{line}"
    );
    assert_eq!(server.get("/").status, 200);
}

/// Voluntary context switches of a process so far (each sleep that ended in a wake-up).
fn wakeups(pid: u32) -> u64 {
    let switches = proc_status(pid, "voluntary_ctxt_switches");
    switches.and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// A new connection wakes one idle worker, not all of them (the thundering herd), and
/// idle workers take new connections in turn. 200 connections one after another to four
/// idle workers: woken all, the workers would sleep and wake about 800 times; here about
/// 200, plus their quarter-second timers. And each worker answers some of them (about a
/// quarter each on a quiet machine; a worker short of CPU is not waiting, so it gets
/// fewer), where the oldest idle worker would otherwise answer them all.
#[test]
fn a_new_connection_wakes_one_idle_worker_and_workers_take_turns() {
    let server = Launch::new().args(&["--workers", "4"]).start();
    let workers = server.wait_children(4, secs(10));
    for pid in &workers {
        server.wait_for_log(&format!("Booting worker with pid: {pid}"), secs(10));
    }
    let before: u64 = workers.iter().map(|&pid| wakeups(pid)).sum();
    let mut served = std::collections::HashMap::<u32, usize>::new();
    for _ in 0..200 {
        let pid = server.get("/pid").text().trim().parse().expect("a pid");
        *served.entry(pid).or_default() += 1;
    }
    let woken = workers.iter().map(|&pid| wakeups(pid)).sum::<u64>() - before;
    assert!(
        woken < 400,
        "4 idle workers woke {woken} times for 200 connections"
    );
    let shares: Vec<usize> = workers
        .iter()
        .map(|pid| served.get(pid).copied().unwrap_or(0))
        .collect();
    assert!(
        shares.iter().all(|&n| n >= 5),
        "answers per worker: {shares:?}"
    );
}

/// Workers at `--worker-connections` whose kept-alive clients leave while others wait:
/// each makes room, accepts a waiting connection and watches the listener again, with
/// no worker lost (it used to add the listener twice, fail, and ask for a successor).
#[test]
fn a_full_worker_that_makes_room_keeps_serving() {
    let server = Launch::new()
        .args(&["--workers", "2", "--worker-connections", "1"])
        .start();
    let workers = server.wait_children(2, secs(10));
    let get = client::request("GET", "/", &[], b"");
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let addr = server.addr();
            let get = get.clone();
            std::thread::spawn(move || {
                let mut conn = client::Conn::open(addr);
                for _ in 0..50 {
                    conn.send(&get);
                    assert_eq!(conn.read_response(secs(20)).status, 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client thread");
    }
    let lost = server
        .log()
        .into_iter()
        .find(|l| l.contains("asking for a replacement"));
    assert!(lost.is_none(), "{lost:?}");
    assert_eq!(server.children(), workers);
}

/// A worker that cannot take another connection (at `--worker-connections`, or backing
/// off after running out of descriptors) stops watching the listener until it can. One
/// worker is woken per arrival, so a full worker that kept watching would take the
/// wake-up and leave the connection waiting for its keep-alive client to go, beside an
/// idle worker.
#[test]
fn a_full_worker_leaves_new_connections_to_the_others() {
    let server = Launch::new()
        .args(&[
            "--workers",
            "2",
            "--worker-connections",
            "1",
            "--keep-alive",
            "30",
        ])
        .start();
    for pid in server.wait_children(2, secs(10)) {
        server.wait_for_log(&format!("Booting worker with pid: {pid}"), secs(10));
    }
    let get_pid = client::request("GET", "/pid", &[], b"");
    let mut held = server.connect();
    held.send(&get_pid);
    let full = held.read_response(secs(10)).text();
    for _ in 0..10 {
        let mut conn = server.connect();
        conn.send(&get_pid);
        let answer = conn.read_response(secs(5));
        assert_eq!(answer.status, 200);
        assert_ne!(answer.text(), full, "the full worker answered");
    }
}
