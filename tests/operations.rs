//! Running in production, through the binary: as PID 1 of a PID namespace (a container),
//! under systemd (the notify protocol, socket activation), dropping privileges with
//! `--user`, and Kubernetes' drain delay after TERM.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, Uid, User, geteuid};

use crate::cli::free_port;
use crate::client::{self, RESPONSE_WITHIN, request, unix_status};
use crate::util::{
    KillOnDrop, Launch, Server, TempDir, all_children_of, children_of, is_zombie, poll_until,
    proc_status, proc_uids, secs, send_signal, unix_socket,
};

/// The comm name of a process.
fn comm(pid: u32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim().to_string()
}

#[test]
fn as_pid_1_it_reaps_orphans_refuses_usr2_and_stops_on_term() {
    if !geteuid().is_root() {
        return eprintln!("skipped: a PID namespace (unshare --pid) needs root");
    }
    // `sleep` is started by the shell that then execs br-serve, so it becomes a child of
    // br-serve (PID 1 in the namespace) that is not a worker, like an orphan in a container.
    let shell = r#"sleep 3 & exec "$0" "$@""#;
    let unshare = [
        "unshare",
        "--fork",
        "--pid",
        "--mount-proc",
        "sh",
        "-c",
        shell,
    ];
    let mut server = Launch::new()
        .wrapped(&unshare)
        .args(&["--workers", "1", "--graceful-timeout", "5"])
        .start_unready();
    let master = poll_until(secs(10), || children_of(server.pid()).first().copied());
    let master = master.unwrap_or_else(|| {
        let status = server.wait_exit(secs(5));
        panic!("unshare started nothing ({status}); unshare needs root (EPERM otherwise)")
    });
    server.await_ready();
    assert_eq!(
        server.ready_pid(),
        1,
        "br-serve is not PID 1 in its namespace"
    );
    // The shell forks before it execs `sleep`; until then the child is still called `sh`.
    let orphan = poll_until(secs(10), || {
        all_children_of(master)
            .into_iter()
            .find(|&p| comm(p) == "sleep")
    });
    assert!(
        orphan.is_some(),
        "the test's premise: `sleep` runs as the master's child"
    );
    assert_eq!(server.get("/").status, 200);

    // Once `sleep` exits, nothing but live workers remains a child of the master.
    let reaped = poll_until(secs(10), || {
        let children = all_children_of(master);
        let clean = children
            .iter()
            .all(|&p| !is_zombie(p) && comm(p) != "sleep");
        clean.then_some(children)
    });
    assert!(
        reaped.is_some(),
        "children of the master: {:?}",
        all_children_of(master)
            .into_iter()
            .map(|p| (p, comm(p), is_zombie(p)))
            .collect::<Vec<_>>()
    );
    assert_eq!(server.get("/").status, 200);
    // A new master would be PID 1's child, and die with it at the upgrade's last step.
    send_signal(master, Signal::SIGUSR2);
    server.wait_for_log("USR2: refused, this master is PID 1", secs(10));
    assert_eq!(server.get("/").status, 200);
    send_signal(master, Signal::SIGTERM);
    // unshare --fork exits with the status of its child, our PID 1.
    let status = server.wait_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{status}");
}

/// A fake systemd: the datagram socket named by `NOTIFY_SOCKET`.
struct Notify {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Notify {
    fn bind(addr: &UnixAddr) -> Notify {
        let socket = UnixDatagram::bind_addr(addr).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Notify {
            socket,
            seen: Vec::new(),
        }
    }

    /// Waits for a datagram with the line `line` (or a line starting `line` when it ends
    /// in `=`); returns the whole datagram.
    #[track_caller]
    fn expect(&mut self, line: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let Ok(n) = self.socket.recv(&mut buf) else {
                continue;
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(message.clone());
            if message.lines().any(|l| l == line) {
                return message;
            }
        }
        panic!("no {line:?} within {within:?}; saw {:#?}", self.seen)
    }

    /// Takes every datagram that came, until none comes for a moment.
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            self.seen
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

/// The `MONOTONIC_USEC=` value of a datagram.
fn monotonic_usec(message: &str) -> u64 {
    let value = message
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="));
    let value = value.unwrap_or_else(|| panic!("no MONOTONIC_USEC in {message:?}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("MONOTONIC_USEC={value}"))
}

fn now_usec() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    now.tv_sec() as u64 * 1_000_000 + now.tv_nsec() as u64 / 1000
}

#[test]
fn notify_socket_hears_ready_reloading_and_stopping() {
    let dir = TempDir::new("notify");
    let path = dir.join("notify.sock");
    let mut systemd = Notify::bind(&UnixAddr::from_pathname(&path).unwrap());
    // A boot of a second: the roll is seen while the old worker still serves.
    let mut server = Launch::new()
        .args(&["--workers", "1"])
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("BR_SERVE_DEMO_BOOT_MS", "1000")
        .start();
    systemd.expect("READY=1", secs(10));

    server.signal(Signal::SIGHUP);
    let reloading = systemd.expect("RELOADING=1", secs(10));
    let rolling =
        "STATUS=0 of 1 workers serving, generation 2; 1 of an older generation still serving";
    systemd.expect(rolling, secs(10));
    // The same clock as ours (CLOCK_MONOTONIC), taken a moment ago.
    let (sent, now) = (monotonic_usec(&reloading), now_usec());
    assert!(
        sent <= now && now - sent < 10_000_000,
        "{sent} vs now {now}"
    );
    systemd.expect("READY=1", secs(15));

    server.signal(Signal::SIGTERM);
    systemd.expect("STOPPING=1", secs(10));
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
}

/// `Type=notify-reload`: systemd ignores a `RELOADING=1` stamped (`MONOTONIC_USEC=`)
/// before its own reading taken just before it sent HUP, and `systemctl reload` then
/// waits for its timeout. Stamped in whole milliseconds, one in three fell short.
#[test]
fn reloading_is_stamped_after_the_hup() {
    let dir = TempDir::new("notify-stamp");
    let path = dir.join("notify.sock");
    let mut systemd = Notify::bind(&UnixAddr::from_pathname(&path).unwrap());
    let server = Launch::new()
        .args(&["--workers", "1"])
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .start();
    systemd.expect("READY=1", secs(10));
    for round in 0..12 {
        let before = now_usec();
        server.signal(Signal::SIGHUP);
        let stamped = monotonic_usec(&systemd.expect("RELOADING=1", secs(10)));
        assert!(stamped >= before, "{round}: {stamped} < {before}");
        systemd.expect("READY=1", secs(15));
    }
}

/// A one-worker master under a fake systemd, started from a configuration file (its
/// path returned) that a test rewrites before a HUP, once it is ready.
fn reloadable_under_systemd(dir: &TempDir) -> (Notify, Server, std::path::PathBuf) {
    let path = dir.join("notify.sock");
    let config = dir.join("br-serve.toml");
    std::fs::write(&config, "workers = 1\n").unwrap();
    let mut systemd = Notify::bind(&UnixAddr::from_pathname(&path).unwrap());
    let server = Launch::new()
        .args(&["-c", config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .start();
    systemd.expect("READY=1", secs(10));
    (systemd, server, config)
}

/// A reload that fails tells systemd why in one `STATUS=` line: the protocol is a line
/// per assignment, and a TOML parser's report spans several (its caret under the bad
/// value), of which systemd showed the first and took the rest for assignments.
#[test]
fn a_failed_reload_tells_systemd_why_on_one_line() {
    let dir = TempDir::new("notify-status");
    let (mut systemd, server, config) = reloadable_under_systemd(&dir);
    std::fs::write(&config, "workers = 1\nbind = [\n").unwrap();
    server.signal(Signal::SIGHUP);
    systemd.expect("RELOADING=1", secs(10));
    let ready = systemd.expect("READY=1", secs(15));
    let failed = |s: &str| s.contains("the last reload failed") && s.contains("unclosed array");
    let status = ready.lines().find(|l| l.starts_with("STATUS="));
    assert!(status.is_some_and(failed), "{ready:?}");
    assert!(!ready.ends_with("\\n"), "a trailing line break: {ready:?}");
    let assignment = |line: &str| {
        line.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
    };
    assert!(ready.lines().all(assignment), "{ready:?}");
    // It stays, not overwritten by the master's next look at the pool.
    systemd.drain();
    let mut statuses = systemd.seen.iter().flat_map(|m| m.lines());
    let last = statuses.rfind(|l| l.starts_with("STATUS="));
    assert!(last.is_some_and(failed), "{:#?}", systemd.seen);
}

/// A reload abandoned because its workers cannot boot is reported as a failed one is:
/// `READY=1` ends the `RELOADING=1` (which `systemctl reload` waited on until its
/// timeout), and `STATUS=` says why, with the old workers serving.
#[test]
fn an_abandoned_reload_tells_systemd_it_failed() {
    let dir = TempDir::new("notify-abandon");
    let (mut systemd, server, config) = reloadable_under_systemd(&dir);
    let fault = dir.join("fault");
    std::fs::write(&fault, "").unwrap();
    let env = format!("BR_SERVE_DEMO_BOOT_FAULT={}", fault.display());
    std::fs::write(&config, format!("workers = 1\nenv = [{env:?}]\n")).unwrap();
    server.signal(Signal::SIGHUP);
    systemd.expect("RELOADING=1", secs(10));
    let ready = systemd.expect("READY=1", secs(15));
    let status = ready.lines().find(|l| l.starts_with("STATUS="));
    let want = "STATUS=1 of 1 workers serving, generation 1; the last reload failed: generation \
                2's workers died during boot 3 times in a row, so it was abandoned";
    assert_eq!(status, Some(want), "{ready:?}");
}

/// A reload whose workers cannot boot, with no older worker left to go back to (the
/// only one was killed during the roll): it is retried with backoff, said once in the
/// log, and reported as a failed reload, whose `RELOADING=1` would otherwise hold
/// `systemctl reload` until its timeout.
#[test]
fn a_reload_with_nothing_to_go_back_to_tells_systemd_once() {
    let dir = TempDir::new("notify-no-way-back");
    let (mut systemd, server, config) = reloadable_under_systemd(&dir);
    let old = server.wait_children(1, secs(10));
    std::fs::write(&config, crate::supervision::SLOW_TO_FAIL).unwrap();
    server.signal(Signal::SIGHUP);
    systemd.expect("RELOADING=1", secs(10));
    server.wait_for_log("Starting generation 2", secs(10));
    send_signal(old[0], Signal::SIGKILL);
    let ready = systemd.expect("READY=1", secs(30));
    let status = ready.lines().find(|l| l.starts_with("STATUS="));
    let failed = |s: &str| s.contains("the last reload failed") && s.contains("nothing older");
    assert!(status.is_some_and(failed), "{ready:?}");
    server.wait_for_log("died during boot (5 in a row)", secs(30));
    let log = server.log();
    let said = log
        .iter()
        .filter(|l| l.contains("Reload cannot be abandoned"));
    assert_eq!(said.count(), 1, "{log:#?}");
}

/// The generation of a reload with nothing to go back to, retried with backoff, that
/// serves at last (what its boots died of has passed): the reload succeeded, and its
/// failure no longer stands in the status ("Ready: 1 of 1 workers serving, generation 2;
/// the last reload failed: generation 2's workers died ...").
#[test]
fn a_retried_reload_that_serves_at_last_is_no_longer_failed() {
    let dir = TempDir::new("notify-retried");
    let (mut systemd, server, config) = reloadable_under_systemd(&dir);
    let old = server.wait_children(1, secs(10));
    let fault = dir.join("fault");
    std::fs::write(&fault, "").unwrap();
    let env = format!("BR_SERVE_DEMO_BOOT_FAULT={}", fault.display());
    let text = format!("workers = 1\nenv = [{env:?}, \"BR_SERVE_DEMO_BOOT_MS=1000\"]\n");
    std::fs::write(&config, text).unwrap();
    server.signal(Signal::SIGHUP);
    systemd.expect("RELOADING=1", secs(10));
    server.wait_for_log("Starting generation 2", secs(10));
    send_signal(old[0], Signal::SIGKILL);
    server.wait_for_log("Reload cannot be abandoned", secs(30));
    std::fs::remove_file(&fault).unwrap();
    server.wait_for_log(
        "Generation 2 serves: the reload succeeded after all",
        secs(30),
    );
    let ready = server.wait_for_log("Ready: 1 of 1 workers serving, generation 2", secs(10));
    assert!(!ready.contains("the last reload failed"), "{ready}");
}

/// A signal mask is inherited across exec: a parent that blocked TERM, HUP and TTIN (a
/// supervisor's own mask) must not leave the master, or its workers, deaf to them.
#[test]
fn signals_blocked_by_the_parent_still_reach_master_and_workers() {
    let block = "import os, signal, sys\n\
                 signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN])\n\
                 os.execv(sys.argv[1], sys.argv[1:])";
    let mut server = Launch::new()
        .wrapped(&["python3", "-c", block])
        .args(&["--workers", "1"])
        .start();
    server.signal(Signal::SIGTTIN);
    server.wait_children(2, secs(10));
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
}

/// A one-worker master under a fake systemd with a watchdog of 1 s (whose `WATCHDOG_PID`
/// names it, as systemd's does), its workers taking `boot_ms` to boot, once it is ready.
fn under_systemd(dir: &TempDir, boot_ms: &str) -> (Notify, Server) {
    let path = dir.join("notify.sock");
    let mut systemd = Notify::bind(&UnixAddr::from_pathname(&path).unwrap());
    let server = Launch::new()
        .wrapped(&["sh", "-c", r#"WATCHDOG_PID=$$ exec "$0" "$@""#])
        .args(&["--workers", "1"])
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "1000000")
        .env("BR_SERVE_DEMO_BOOT_MS", boot_ms)
        .start();
    systemd.expect("READY=1", secs(10));
    (systemd, server)
}

/// [`under_systemd`], upgraded by USR2: the new master has sent its MAINPID.
fn upgraded_under_systemd(dir: &TempDir) -> (Notify, Server, KillOnDrop) {
    let (mut systemd, server) = under_systemd(dir, "0");
    let new = server.usr2();
    systemd.expect(&format!("MAINPID={}", new.0), secs(20));
    (systemd, server, new)
}

/// A master started by USR2 says nothing to systemd before it serves but `WATCHDOG=1`:
/// its "0 of 1 workers serving" went out while the old master was the service's main
/// process, overwriting the unit's status with a master that served nothing yet. And the
/// watchdog is petted all along: with the old master silent from the USR2 and the new one
/// from its start to its READY=1, a boot longer than `WatchdogSec` killed the unit.
#[test]
fn a_new_master_says_nothing_but_watchdog_before_it_serves() {
    let dir = TempDir::new("notify-quiet");
    // Workers that take 1.5 s to boot, three times the petting interval.
    let (mut systemd, server) = under_systemd(&dir, "1500");
    systemd.drain();
    systemd.seen.clear();
    let new = server.usr2();
    // A HUP to it before it serves is no reload of the service (no RELOADING=1) either.
    server.wait_for_log(&format!("[{}] [master] INFO Listening at", new.0), secs(10));
    send_signal(new.0, Signal::SIGHUP);
    systemd.expect(&format!("MAINPID={}", new.0), secs(20));
    let before = &systemd.seen[..systemd.seen.len() - 1];
    let pets = before.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pets > 0 && pets == before.len(), "{before:#?}");
}

#[track_caller]
fn assert_not_stopped(systemd: &mut Notify) {
    systemd.drain();
    let stopping = systemd.seen.iter().find(|m| m.contains("STOPPING=1"));
    assert!(
        stopping.is_none(),
        "the unit was stopped: {:#?}",
        systemd.seen
    );
}

/// Under systemd, a USR2 upgrade hands the service over: the new master pets the
/// watchdog, and the old master, stopped at the end, sends no STOPPING=1, which would
/// stop the whole unit (systemd takes it from any process with `NotifyAccess=all`).
#[test]
fn an_upgrade_hands_systemd_over_to_the_new_master() {
    let dir = TempDir::new("notify-upgrade");
    let (mut systemd, mut server, new) = upgraded_under_systemd(&dir);
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
    assert_not_stopped(&mut systemd);
    systemd.seen.clear();
    systemd.expect("WATCHDOG=1", secs(5));
    send_signal(new.0, Signal::SIGTERM);
    systemd.expect("STOPPING=1", secs(10));
}

/// A rollback hands it back: HUP to the old master sends its MAINPID again, and the new
/// master, stopped then, does not stop the unit.
#[test]
fn a_rollback_hands_systemd_back_to_the_old_master() {
    let dir = TempDir::new("notify-rollback");
    let (mut systemd, server, new) = upgraded_under_systemd(&dir);
    server.signal(Signal::SIGHUP);
    systemd.expect(&format!("MAINPID={}", server.pid()), secs(20));
    send_signal(new.0, Signal::SIGTERM);
    server.wait_for_log(&format!("The new master (pid: {}) exited", new.0), secs(15));
    assert_not_stopped(&mut systemd);
    assert_eq!(server.get("/").status, 200);
}

/// After WINCH the old master serves nothing: a stop of the new master then (a
/// `systemctl stop` in the middle of an upgrade) is the service's, and says so.
#[test]
fn a_new_master_stopped_beside_an_old_one_without_workers_stops_the_unit() {
    let dir = TempDir::new("notify-winch");
    let (mut systemd, server, new) = upgraded_under_systemd(&dir);
    server.signal(Signal::SIGWINCH);
    let alone = poll_until(secs(10), || {
        (children_of(server.pid()) == [new.0]).then_some(())
    });
    assert!(
        alone.is_some(),
        "old workers left: {:?}",
        children_of(server.pid())
    );
    systemd.seen.clear();
    send_signal(new.0, Signal::SIGTERM);
    systemd.expect("STOPPING=1", secs(10));
}

#[test]
fn notify_socket_may_be_abstract() {
    let name = format!("br-serve-test-notify-{}", std::process::id());
    let mut systemd = Notify::bind(&UnixAddr::from_abstract_name(name.as_bytes()).unwrap());
    let _server = Launch::new()
        .args(&["--workers", "1"])
        .env("NOTIFY_SOCKET", &format!("@{name}"))
        .start();
    systemd.expect("READY=1", secs(10));
}

/// When fork fails for good (a process limit of three for a user of its own: the master
/// and two of the four workers), the two serve, and systemd hears READY=1 with a status
/// saying so, rather than waiting out its start timeout and then stopping a server that
/// serves.
#[test]
fn a_pool_that_cannot_fork_whole_is_ready_with_what_serves() {
    if !geteuid().is_root() {
        return eprintln!("skipped: needs root");
    }
    let name = format!("br-serve-test-partly-{}", std::process::id());
    let mut systemd = Notify::bind(&UnixAddr::from_abstract_name(name.as_bytes()).unwrap());
    let user = ["setpriv", "--reuid", "54322", "--regid", "54322"];
    let _server = Launch::new()
        .wrapped(&[&["prlimit", "--nproc=3"][..], &user, &["--clear-groups"]].concat())
        .args(&["--workers", "4"])
        .env("NOTIFY_SOCKET", &format!("@{name}"))
        .start();
    let ready = systemd.expect("READY=1", secs(15));
    assert!(
        ready.contains("STATUS=2 of 4 workers serving") && ready.contains("fork fails"),
        "{ready}"
    );
}

/// A HUP at a process limit: no new worker can be forked beside the old ones, which
/// waited for their successors, so the reload never applied. One old worker makes room
/// at a time, and the whole pool is replaced.
#[test]
fn a_reload_at_the_process_limit_rolls_one_worker_at_a_time() {
    if !geteuid().is_root() {
        return eprintln!("skipped: needs root");
    }
    let user = [
        "setpriv",
        "--reuid",
        "54323",
        "--regid",
        "54323",
        "--clear-groups",
    ];
    let server = Launch::new()
        .wrapped(&[&["prlimit", "--nproc=3"][..], &user].concat())
        .args(&["--workers", "4"])
        .start();
    let old = server.wait_children(2, secs(10));
    server.signal(Signal::SIGHUP);
    let rolled = poll_until(secs(20), || {
        let now = server.children();
        (now.len() == 2 && now.iter().all(|pid| !old.contains(pid))).then_some(())
    });
    assert!(rolled.is_some(), "{old:?} -> {:?}", server.children());
    server.wait_for_log("no room for another worker", secs(5));
    assert_eq!(server.get("/").status, 200);
}

/// True, after saying so, where systemd-socket-activate is not installed (Debian's
/// `systemd` package, which `.ci/run` installs): the socket-activation tests need it.
fn socket_activate_missing() -> bool {
    let on_path = |dir: std::path::PathBuf| dir.join("systemd-socket-activate").is_file();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing = !std::env::split_paths(&path).any(on_path);
    if missing {
        eprintln!("skipped: needs systemd-socket-activate (Debian's systemd package)");
    }
    missing
}

/// Under systemd-socket-activate, which execs br-serve on the first connection to
/// `listen`: that connection waits in the inherited socket's queue and is served once a
/// worker runs, and the ready line names the socket's address.
fn serve_first_connection(server: &mut Server, listen: &str) {
    let addr = listen.parse().unwrap();
    let connected = poll_until(secs(10), || client::Conn::try_open(addr, secs(1)).ok());
    let mut conn = connected.unwrap_or_else(|| {
        panic!("nothing listens on {listen}: is systemd-socket-activate installed (.ci/run)?")
    });
    conn.send(&request("GET", "/", &["Connection: close"], b""));
    server.await_ready();
    assert_eq!(conn.read_response(RESPONSE_WITHIN).status, 200);
    let ready = server.ready_line();
    assert!(ready.contains(listen), "{ready}");
}

#[test]
fn socket_activation_serves_the_inherited_listener() {
    if socket_activate_missing() {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // A graceful timeout longer than the exit deadline below, so a worker that never sees
    // TERM cannot pass for one that drained.
    let mut server = Launch::new()
        .no_bind()
        .wrapped(&["systemd-socket-activate", "-l", &listen])
        .args(&["--workers", "2", "--graceful-timeout", "60"])
        .start_unready();
    serve_first_connection(&mut server, &listen);
    server.wait_for_log("Inherited 1 listener", secs(5));
    // --bind (its default here) is not served, and the log says why.
    server.wait_for_log("(LISTEN_FDS), in place of --bind", secs(5));
    assert_eq!(server.get("/").status, 200);

    // systemd hands over a blocking socket: the workers must still wait in their event
    // loops, not in accept(), so a kept-alive connection goes on being served and TERM
    // reaches them (the workers' accept would otherwise restart after the signal).
    let mut conn = server.connect();
    for _ in 0..3 {
        conn.send(&request("GET", "/", &[], b""));
        assert_eq!(conn.read_response(RESPONSE_WITHIN).status, 200);
    }
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
}

/// Socket activation outlives a binary upgrade: the new master adopts systemd's socket as
/// it is, though `--bind` (its default here) names another address, and serves on it
/// once the old master is gone.
#[test]
fn usr2_keeps_the_socket_systemd_activated() {
    if socket_activate_missing() {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Launch::new()
        .no_bind()
        .wrapped(&["systemd-socket-activate", "-l", &listen])
        .args(&["--workers", "1"])
        .start_unready();
    serve_first_connection(&mut server, &listen);
    let new = server.usr2();
    server.wait_for_log(
        &format!("Listening at: http://{listen} ({})", new.0),
        secs(10),
    );
    let ready = format!("[{}] [master] INFO Ready", new.0);
    server.wait_for_log(&ready, secs(10));
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
    let addr = listen.parse().expect("an address");
    assert_eq!(client::get(addr, "/").status, 200);
}

/// A second start on a Unix socket path that a running server listens on fails, naming
/// the reason, and leaves the first one's socket alone; a file left by a server that
/// died is replaced.
#[test]
fn a_unix_socket_in_use_stops_a_second_start() {
    let (_dir, path, unix) = unix_socket("in-use");
    let first = Launch::new()
        .args(&["--workers", "1", "--bind", &unix])
        .start();
    let (status, log) = Launch::new()
        .args(&["--workers", "1", "--bind", &unix])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("another process is listening"), "{log}");
    assert_eq!(
        unix_status(&path, "/"),
        "HTTP/1.1 200 OK",
        "the first server"
    );

    // SIGKILL leaves the file behind; the next start replaces it.
    killpg(Pid::from_raw(first.pid() as i32), Signal::SIGKILL).expect("kill the group");
    drop(first);
    let gone = poll_until(secs(10), || {
        UnixStream::connect(&path).is_err().then_some(())
    });
    assert!(gone.is_some(), "the killed server's workers still listen");
    let _second = Launch::new()
        .args(&["--workers", "1", "--bind", &unix])
        .start();
    assert_eq!(unix_status(&path, "/"), "HTTP/1.1 200 OK", "a new start");
}

/// A master removes its socket's file at exit only if the path still names it: a server
/// started on that path while it drained (its listeners closed, so the file looked left
/// by a dead server, and was replaced) had its file removed by the old master's exit,
/// and served on where no client could reach it.
#[test]
fn a_draining_master_leaves_the_socket_file_of_a_server_started_since() {
    use std::io::Write;
    let (_dir, path, unix) = unix_socket("drain-race");
    let mut old = Launch::new()
        .args(&[
            "--workers",
            "1",
            "--bind",
            &unix,
            "--graceful-timeout",
            "30",
        ])
        .start();
    // An upload half sent holds the old master's drain open.
    let mut upload = UnixStream::connect(&path).expect("connect");
    upload
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab")
        .expect("send");
    old.signal(Signal::SIGTERM);
    let closed = poll_until(secs(10), || {
        UnixStream::connect(&path).is_err().then_some(())
    });
    assert!(closed.is_some(), "the draining master still listens");
    let new = Launch::new()
        .args(&["--workers", "1", "--bind", &unix])
        .start();
    upload.write_all(b"cd").expect("send the rest");
    assert_eq!(old.wait_exit(secs(15)).code(), Some(0));
    assert!(
        path.exists(),
        "the old master removed the new one's socket file"
    );
    assert_eq!(unix_status(&path, "/"), "HTTP/1.1 200 OK", "the new server");
    drop(new);
}

/// A Unix socket from socket activation is systemd's: the master serves on it and leaves
/// its file at exit, for systemd to hand to the next start (it removes the file itself
/// when the socket unit stops).
#[test]
fn socket_activation_leaves_systemds_unix_socket_file() {
    if socket_activate_missing() {
        return;
    }
    let dir = TempDir::new("activated");
    let path = dir.join("s.sock");
    let listen = format!("127.0.0.1:{}", free_port());
    let shown = path.to_str().expect("a UTF-8 temporary path");
    let mut server = Launch::new()
        .no_bind()
        .wrapped(&["systemd-socket-activate", "-l", &listen, "-l", shown])
        .args(&["--workers", "1"])
        .start_unready();
    serve_first_connection(&mut server, &listen);
    server.wait_for_log("Inherited 2 listener", secs(5));
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
    assert!(path.exists(), "{} removed", path.display());
}

/// After `systemd-socket-activate`, which opens its sockets as descriptors from 3: without
/// the LISTEN_* variables they are just inherited descriptors, as einhorn or s6 would
/// pass them (`--bind fd://N`).
const WITHOUT_LISTEN_FDS: [&str; 7] = [
    "env",
    "-u",
    "LISTEN_FDS",
    "-u",
    "LISTEN_PID",
    "-u",
    "LISTEN_FDNAMES",
];

#[test]
fn fd_bind_serves_a_listener_the_supervisor_opened() {
    if socket_activate_missing() {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let wrapper = [
        &["systemd-socket-activate", "-l", listen.as_str()][..],
        &WITHOUT_LISTEN_FDS[..],
    ]
    .concat();
    let mut server = Launch::new()
        .no_bind()
        .wrapped(&wrapper)
        .args(&["--workers", "1", "--bind", "fd://3"])
        .start_unready();
    serve_first_connection(&mut server, &listen);
    // Served through `--bind fd://3`, not taken as socket activation.
    assert!(!server.log().iter().any(|l| l.contains("Inherited")));

    // A number that was not handed down stops the start, naming it.
    let (status, log) = Launch::new()
        .no_bind()
        .args(&["--bind", "fd://1000"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("cannot listen on fd://1000"), "{log}");

    // Nor does an error log, opened before the listeners, stand in for a number that was
    // not handed down (the first free one: 3).
    let dir = TempDir::new("fd-not-open");
    let error_log = dir.join("error.log");
    let (status, log) = Launch::new()
        .no_bind()
        .args(&[
            "--bind",
            "fd://3",
            "--error-logfile",
            error_log.to_str().unwrap(),
        ])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("fd://3: the descriptor is not open"), "{log}");
}

/// Two descriptors of one socket (`fd://3` and its `dup`, `fd://4`) are one address,
/// listened on once: the start refuses the second, naming it, where the ready line and
/// the metrics listed the address twice (a duplicate series Prometheus drops).
#[test]
fn fd_bind_refuses_one_socket_given_twice() {
    if socket_activate_missing() {
        return;
    }
    let listen = format!("127.0.0.1:{}", free_port());
    let dup = ["sh", "-c", r#"exec "$0" "$@" 4<&3"#];
    let wrapper = [
        &["systemd-socket-activate", "-l", listen.as_str()][..],
        &WITHOUT_LISTEN_FDS[..],
        &dup[..],
    ]
    .concat();
    let mut server = Launch::new()
        .no_bind()
        .wrapped(&wrapper)
        .args(&["--workers", "1", "--bind", "fd://3", "--bind", "fd://4"])
        .start_unready();
    // systemd-socket-activate starts it at the first connection.
    let addr = listen.parse().unwrap();
    let connected = poll_until(secs(10), || client::Conn::try_open(addr, secs(1)).ok());
    assert!(connected.is_some(), "nothing listens on {listen}");
    assert_eq!(server.wait_exit(secs(10)).code(), Some(1));
    let said = format!("cannot listen on fd://4: http://{listen} is listened on already");
    server.wait_for_log(&said, secs(5));
}

/// A Unix socket passed in as `--bind fd://N` is its supervisor's, as systemd's is: the
/// master neither gives its file to `--user` (a proxy let in by its group would lose
/// access) nor removes it at exit (the supervisor serves on it again at the next start).
#[test]
fn fd_bind_leaves_the_supervisors_unix_socket_file() {
    if socket_activate_missing() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let (_dir, path, _) = unix_socket("fd-unix");
    let listen = format!("127.0.0.1:{}", free_port());
    let shown = path.to_str().expect("a UTF-8 temporary path");
    let activate = ["systemd-socket-activate", "-l", &listen, "-l", shown];
    let user: &[&str] = match geteuid().is_root() {
        true => &["--user", "nobody"],
        false => &[],
    };
    let mut server = Launch::new()
        .no_bind()
        .wrapped(&[&activate[..], &WITHOUT_LISTEN_FDS[..]].concat())
        .args(&["--workers", "1", "--bind", "fd://3", "--bind", "fd://4"])
        .args(user)
        .start_unready();
    serve_first_connection(&mut server, &listen);
    assert_eq!(unix_status(&path, "/"), "HTTP/1.1 200 OK");
    let owner = std::fs::metadata(&path).expect("the socket file").uid();
    assert_eq!(owner, geteuid().as_raw(), "the socket file was given away");
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
    assert!(path.exists(), "{} removed", path.display());
}

/// A `--static` root that only the master can read: the workers, as `--user`, could
/// never open it, so a start and `--check-config` stop with the reason (they failed
/// each boot, forever, while the master listened), and a HUP keeps the serving workers.
#[test]
fn a_static_root_the_user_cannot_open_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    if !geteuid().is_root() {
        return eprintln!("skipped: --user needs root");
    }
    let dir = TempDir::new("static-user");
    let root = dir.join("www");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(root.join("index.html"), "hi\n").expect("write");
    let chmod = |mode| std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode));
    let shown = root.to_str().expect("a UTF-8 temporary path");
    let launch = || Launch::new().args(&["--workers", "1", "--user", "nobody", "--static", shown]);
    chmod(0o700).expect("chmod");
    for extra in [&[][..], &["--check-config"]] {
        let (status, log) = launch().args(extra).run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
        assert!(log.contains("user (nobody) cannot open it"), "{log}");
    }

    chmod(0o755).expect("chmod");
    let server = launch().start();
    assert_eq!(server.get("/").status, 200);
    let workers = server.children();
    chmod(0o700).expect("chmod");
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Reload failed, keeping the current workers", secs(10));
    assert_eq!(server.children(), workers);
}

/// Root without `--user` serves what only root may read, which nginx, dropping its
/// workers to `nobody`, would not: said at start, and not when `--user` is given.
#[test]
fn static_files_served_as_root_are_warned_of() {
    if !geteuid().is_root() {
        return eprintln!("skipped: needs root");
    }
    let dir = TempDir::new("static-root");
    let root = dir.join("www");
    std::fs::create_dir(&root).expect("mkdir");
    let shown = root.to_str().expect("a UTF-8 temporary path");
    let warning = "the workers run as root, so they serve files only root may read";
    for (user, warned) in [(&[][..], true), (&["--user", "nobody"][..], false)] {
        let server = Launch::new()
            .args(&["--workers", "1", "--static", shown])
            .args(user)
            .start();
        let said = server.log().iter().any(|line| line.contains(warning));
        assert_eq!(said, warned, "{user:?}: {:#?}", server.log());
    }
    // And when a HUP turns `--static` on.
    let config = dir.join("br-serve.toml");
    std::fs::write(&config, "workers = 1\n").expect("write");
    let server = Launch::new()
        .args(&["-c", config.to_str().expect("a UTF-8 temporary path")])
        .start();
    std::fs::write(&config, format!("workers = 1\nstatic = {shown:?}\n")).expect("write");
    server.signal(Signal::SIGHUP);
    server.wait_for_log(warning, secs(10));
}

#[test]
fn user_flag_drops_worker_privileges() {
    if !geteuid().is_root() {
        // To root, not to nobody: the test may run as nobody, which needs no switch.
        let launch = Launch::new().args(&["--workers", "2", "--user", "root"]);
        let (status, log) = launch.run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
        assert!(log.contains("root"), "log:\n{log}");
        return;
    }
    let nobody = User::from_name("nobody").unwrap().expect("a nobody user");
    let server = Launch::new()
        .args(&["--workers", "2", "--user", "nobody"])
        .start();
    let workers = server.wait_children(2, secs(10));
    let uid = nobody.uid.as_raw();
    for pid in workers {
        // A worker just forked has not reached its privilege drop yet; a loaded machine
        // can hold it there for a while.
        let dropped = poll_until(secs(10), || (proc_uids(pid)? == (uid, uid)).then_some(()));
        assert!(dropped.is_some(), "worker {pid}: {:?}", proc_uids(pid));
    }
    let root = Uid::from_raw(0).as_raw();
    assert_eq!(proc_uids(server.pid()), Some((root, root)), "the master");
    assert_eq!(server.get("/").status, 200);
}

/// A privilege drop the kernel refuses in the worker (a user namespace that maps root
/// alone, as some rootless containers do) is logged naming the call and the id: it said
/// only "worker setup failed: Operation not permitted".
#[test]
fn a_refused_privilege_drop_names_the_call() {
    if !geteuid().is_root() {
        return eprintln!("skipped: needs root");
    }
    let namespace = ["unshare", "--user", "--map-root-user"];
    let nobody = User::from_name("nobody").unwrap().expect("a nobody user");
    let server = Launch::new()
        .wrapped(&namespace)
        .args(&["--workers", "1", "--user", "nobody"])
        .start_unready();
    let why = format!(
        "worker setup failed: setgroups([gid {}]): EPERM",
        nobody.gid
    );
    server.wait_for_log(&why, secs(10));
}

/// A master that may not signal its workers (CAP_KILL gone, as a systemd unit's
/// `CapabilityBoundingSet` can take it) says so, rather than logging a reload or a stop
/// that never reaches them.
#[test]
fn a_master_that_may_not_signal_its_workers_says_so() {
    if !geteuid().is_root() {
        return eprintln!("skipped: needs root");
    }
    let without_kill = ["setpriv", "--inh-caps=-kill", "--bounding-set=-kill"];
    let server = Launch::new()
        .wrapped(&without_kill)
        .args(&["--workers", "1", "--user", "nobody"])
        .start();
    server.signal(Signal::SIGHUP);
    server.wait_for_log(
        "needs CAP_KILL to signal workers running as --user",
        secs(10),
    );
}

/// The permission bits of a file, in octal.
fn mode_of(path: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:o}", meta.permissions().mode() & 0o777)
}

/// Started under a careless umask (002, as some images set), what the server creates is
/// still writable by its owner alone: the pidfile and the logs are rw-r--r-- and a Unix
/// socket rwxrwxrwx (a proxy running as another user must connect), each less `--umask`.
/// The processes keep the umask they were started with, so an application's own files
/// are as the environment makes them.
#[test]
fn created_files_take_their_mode_from_umask_flag_and_the_app_keeps_its_umask() {
    let careless = r#"umask 002; exec "$0" "$@""#;
    for (flag, file_mode, socket_mode) in [("0", "644", "777"), ("027", "640", "750")] {
        let dir = TempDir::new("modes");
        let paths = ["app.pid", "access.log", "error.log", "app.sock"].map(|n| dir.join(n));
        let shown = paths.each_ref().map(|p| p.to_str().expect("a UTF-8 path"));
        let server = Launch::new()
            .wrapped(&["sh", "-c", careless])
            .args(&["--workers", "1", "--umask", flag, "--pid", shown[0]])
            .args(&[
                "--access-logfile",
                shown[1],
                "--bind",
                &format!("unix:{}", shown[3]),
            ])
            .error_logfile(&paths[2])
            .start();
        assert_eq!(server.get("/").status, 200);
        for path in &paths[..3] {
            assert_eq!(
                mode_of(path),
                file_mode,
                "--umask {flag}: {}",
                path.display()
            );
        }
        assert_eq!(
            mode_of(&paths[3]),
            socket_mode,
            "--umask {flag}: the socket"
        );
        let worker = server.wait_children(1, secs(10))[0];
        assert_eq!(
            proc_status(worker, "Umask"),
            Some("0002".into()),
            "--umask {flag}: the worker"
        );
        assert_eq!(
            proc_status(server.pid(), "Umask"),
            Some("0002".into()),
            "--umask {flag}: the master"
        );
    }
}

/// During `--drain-delay` the server still serves, so a worker that dies is replaced
/// (not ready, like the rest) instead of the stop ending at once with nobody to answer
/// what the load balancer still sends.
#[test]
fn drain_delay_replaces_a_worker_that_dies_meanwhile() {
    let mut server = Launch::new()
        .args(&["--workers", "1", "--drain-delay", "5"])
        .start();
    let first = server.wait_children(1, secs(10))[0];
    server.signal(Signal::SIGTERM);
    server.wait_for_log("still accepting for", secs(10));
    send_signal(first, Signal::SIGKILL);
    let replaced = poll_until(secs(4), || {
        let workers = server.children();
        (workers.len() == 1 && workers[0] != first).then_some(())
    });
    assert!(replaced.is_some(), "workers: {:?}", server.children());
    assert_eq!(server.get("/readyz").status, 503);
    assert_eq!(server.get("/").status, 200);
    assert_eq!(server.wait_exit(secs(20)).code(), Some(0));
}

#[test]
fn drain_delay_serves_new_connections_while_not_ready() {
    let mut server = Launch::new()
        .args(&["--workers", "1", "--drain-delay", "2"])
        .start();
    server.wait_for_log("Ready:", secs(10));
    let termed = Instant::now();
    server.signal(Signal::SIGTERM);
    let unready = poll_until(secs(2), || {
        (server.get("/readyz").status == 503).then_some(())
    });
    assert!(unready.is_some(), "/readyz still ready after TERM");
    let r = server.get("/");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.has_token("Connection", "close"), "{r:?}");
    let status = server.wait_exit(secs(20));
    let took = termed.elapsed();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        took >= Duration::from_millis(1900),
        "exited {took:?} after TERM"
    );
}
