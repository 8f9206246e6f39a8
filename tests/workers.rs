//! The process model: workers are direct children of the master, and a worker that dies
//! is replaced.

use nix::sys::signal::Signal;

use crate::util::{Launch, poll_until, secs, send_signal};

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
