//! Zero-downtime binary upgrade (USR2, WINCH, TERM) and its rollback (HUP to the old
//! master), with a load client running throughout: not one request may fail. The
//! master's metrics port (`--metrics-bind`) is handed over with the listeners, a Unix
//! socket's file stays for whichever master serves on it, and a changed `--bind` takes
//! effect.
//!
//! The new master is a child of the old one, in the same process group (so `Server`'s
//! Drop kills it too); once the old master exits it is re-parented, and a [`KillOnDrop`]
//! taken from the pidfile makes sure it does not outlive a failed test.

use std::path::PathBuf;

use nix::sys::signal::Signal;

use crate::client::{metric_sample, unix_status};
use crate::load::{CHOREOGRAPHY, Load};
use crate::util::{
    KillOnDrop, Launch, Server, TempDir, children_of, parse_ready_line, poll_until, read_pidfile,
    secs, send_signal,
};

const WORKERS: usize = 2;

/// An old master with a pidfile, its workers up and a load client running.
struct Upgrade {
    // Field order is drop order: stop the load before the servers go.
    load: Load,
    server: Server,
    pidfile: PathBuf,
    oldbin: PathBuf,
    /// A Unix socket the masters serve on beside the TCP one.
    socket: PathBuf,
    _dir: TempDir,
}

fn start() -> Upgrade {
    let dir = TempDir::new("upgrade");
    let pidfile = dir.join("app.pid");
    let oldbin = dir.join("app.pid.oldbin");
    let socket = dir.join("app.sock");
    let shown = pidfile.to_str().expect("a UTF-8 temporary path");
    let unix = format!("unix:{}", socket.display());
    let server = Launch::new()
        .args(&[
            "--workers",
            &WORKERS.to_string(),
            "-p",
            shown,
            "--bind",
            &unix,
        ])
        .args(&["--metrics-bind", "127.0.0.1:0"])
        .start();
    server.wait_children(WORKERS, secs(10));
    let written = poll_until(secs(10), || {
        (read_pidfile(&pidfile) == Some(server.pid())).then_some(())
    });
    assert!(written.is_some(), "no pidfile naming {}", server.pid());
    Upgrade {
        load: Load::start(server.addr(), CHOREOGRAPHY),
        server,
        pidfile,
        oldbin,
        socket,
        _dir: dir,
    }
}

impl Upgrade {
    /// USR2; returns the new master once both pidfiles say so and its workers are up.
    fn usr2(&self) -> KillOnDrop {
        let old = self.server.pid();
        self.server.signal(Signal::SIGUSR2);
        let new = poll_until(secs(20), || {
            let new = read_pidfile(&self.pidfile).filter(|&p| p != old)?;
            (read_pidfile(&self.oldbin) == Some(old)).then_some(new)
        });
        let new = new.unwrap_or_else(|| {
            panic!(
                "after USR2: {} holds {:?}, .oldbin {:?}",
                self.pidfile.display(),
                read_pidfile(&self.pidfile),
                read_pidfile(&self.oldbin)
            )
        });
        let guard = KillOnDrop(new);
        wait_workers(new, &[], WORKERS);
        self.load.wait_progress(10, secs(10));
        guard
    }

    /// The old master's workers: its children other than the new master.
    fn old_workers(&self, new: u32) -> Vec<u32> {
        let children = children_of(self.server.pid());
        children.into_iter().filter(|&p| p != new).collect()
    }

    /// After a rollback: the load keeps going and ran clean, and the old master has all
    /// its workers.
    fn finish_on_the_old_master(self) {
        self.load.wait_progress(20, secs(10));
        let Upgrade { load, server, .. } = self;
        load.finish();
        assert_eq!(server.children().len(), WORKERS);
    }

    /// WINCH to the old master: its workers leave, the new master's keep serving.
    fn winch(&self, new: u32) {
        self.server.signal(Signal::SIGWINCH);
        let gone = poll_until(secs(10), || self.old_workers(new).is_empty().then_some(()));
        assert!(
            gone.is_some(),
            "old workers left: {:?}",
            self.old_workers(new)
        );
        self.load.wait_progress(20, secs(10));
    }
}

/// Waits until `master` has `n` children besides `except`.
#[track_caller]
fn wait_workers(master: u32, except: &[u32], n: usize) -> Vec<u32> {
    let workers = || -> Vec<u32> {
        let children = children_of(master).into_iter();
        children.filter(|p| !except.contains(p)).collect()
    };
    let found = poll_until(secs(15), || Some(workers()).filter(|w| w.len() == n));
    found.unwrap_or_else(|| panic!("master {master}: workers {:?}, want {n}", workers()))
}

#[test]
fn usr2_winch_term_upgrade_drops_no_request() {
    let mut up = start();
    let old = up.server.pid();
    let metrics = up.server.metrics_addr();
    let new = up.usr2();
    up.server.wait_for_log(
        &format!("Listening at: http://{} ({})", up.server.addr(), new.0),
        secs(5),
    );
    // The same port, adopted rather than bound (the old master still holds it).
    up.server.wait_for_log(
        &format!("Metrics at: http://{metrics}/metrics ({})", new.0),
        secs(5),
    );

    // A second upgrade while this one is pending is refused, on either side.
    up.server.signal(Signal::SIGUSR2);
    up.server.wait_for_log("USR2: refused", secs(10));
    send_signal(new.0, Signal::SIGUSR2);
    up.server
        .wait_for_log("refused, the old master is still running", secs(10));

    up.winch(new.0);
    // Only the new master answers on the metrics port: the old one, without workers
    // now, would report none.
    for _ in 0..20 {
        let scrape = crate::client::get(metrics, "/metrics").text();
        let idle = metric_sample::<u64>(&scrape, r#"br_serve_workers{state="idle"}"#);
        let busy = metric_sample::<u64>(&scrape, r#"br_serve_workers{state="busy"}"#);
        assert_eq!(idle + busy, WORKERS as u64, "{scrape}");
    }
    up.server.signal(Signal::SIGTERM);
    let status = up.server.wait_exit(secs(15));
    assert_eq!(status.code(), Some(0), "old master: {status}");
    up.load.wait_progress(20, secs(10));
    up.load.finish();
    assert_eq!(read_pidfile(&up.pidfile), Some(new.0));
    assert!(!up.oldbin.exists(), ".oldbin left behind by {old}");
    assert_eq!(wait_workers(new.0, &[], WORKERS).len(), WORKERS);
    // The old master is gone; its successor answers on the metrics port, and on the
    // Unix socket, whose file the old master left in place.
    let scrape = crate::client::get(metrics, "/metrics");
    assert_eq!(scrape.status, 200, "{}", scrape.text());
    assert_eq!(unix_status(&up.socket, "/pid"), "HTTP/1.1 200 OK");
}

/// An old master killed with SIGKILL cannot remove its `.oldbin`, which then said an
/// upgrade was still pending; the new master removes it once it sees the old one gone.
/// (WINCH first: the old master's workers end with it, and would take requests along.)
#[test]
fn usr2_then_kill_of_the_old_master_leaves_no_oldbin() {
    let mut up = start();
    let old = up.server.pid();
    let new = up.usr2();
    up.winch(new.0);
    up.server.signal(Signal::SIGKILL);
    up.server.wait_exit(secs(15));
    up.server.wait_for_log(
        &format!("The old master (pid: {old}) exited without removing"),
        secs(10),
    );
    assert!(!up.oldbin.exists(), ".oldbin left naming {old}");
    assert_eq!(read_pidfile(&up.pidfile), Some(new.0));
    up.load.wait_progress(20, secs(10));
    up.load.finish();
}

/// The same when the new master's configuration names another pidfile: the old master
/// told it where its `.oldbin` is.
#[test]
fn a_killed_old_masters_oldbin_is_removed_where_the_pidfile_moved() {
    let dir = TempDir::new("upgrade-pid-moved");
    let file = dir.join("app.toml");
    let (first, second) = (dir.join("a.pid"), dir.join("b.pid"));
    let config = |pid: &std::path::Path| format!("workers = 1\npid = {:?}\n", pid.display());
    std::fs::write(&file, config(&first)).unwrap();
    let mut server = Launch::new().args(&["-c", file.to_str().unwrap()]).start();
    server.wait_children(1, secs(10));
    std::fs::write(&file, config(&second)).unwrap();
    let new = server.usr2();
    let written = poll_until(secs(10), || {
        (read_pidfile(&second) == Some(new.0)).then_some(())
    });
    assert!(
        written.is_some(),
        "{} holds {:?}",
        second.display(),
        read_pidfile(&second)
    );
    let oldbin = dir.join("a.pid.oldbin");
    assert_eq!(read_pidfile(&oldbin), Some(server.pid()));
    server.signal(Signal::SIGKILL);
    server.wait_exit(secs(15));
    let line = server.wait_for_log("exited without removing", secs(10));
    assert!(line.contains("a.pid.oldbin"), "{line}");
    assert!(!oldbin.exists());
    assert_eq!(read_pidfile(&second), Some(new.0));
}

/// A new master whose workers cannot boot, the old master's serving: its `/healthz` on
/// the metrics port, which it took over, stays 200, as in the middle of any upgrade a
/// restart would break, rather than telling a liveness probe to restart a service that
/// answers. The new master inherits the fault's variable; the file appears only after
/// the old master's workers have booted.
#[test]
fn healthz_stays_ok_while_the_old_master_serves_an_upgrade_that_fails() {
    let dir = TempDir::new("upgrade-healthz");
    let pidfile = dir.join("app.pid");
    let fault = dir.join("fault");
    let shown = pidfile.to_str().expect("a UTF-8 temporary path");
    let server = Launch::new()
        .args(&[
            "--workers",
            "1",
            "-p",
            shown,
            "--metrics-bind",
            "127.0.0.1:0",
        ])
        .env("BR_SERVE_DEMO_BOOT_FAULT", fault.to_str().unwrap())
        .start();
    server.wait_children(1, secs(10));
    let metrics = server.metrics_addr();
    std::fs::write(&fault, "").unwrap();
    server.signal(Signal::SIGUSR2);
    let old = server.pid();
    let new = poll_until(secs(20), || read_pidfile(&pidfile).filter(|&p| p != old));
    let new = KillOnDrop(new.expect("no new master in the pidfile"));
    let adopted = format!("Metrics at: http://{metrics}/metrics ({})", new.0);
    server.wait_for_log(&adopted, secs(10));
    server.wait_for_log("died during boot (2 in a row)", secs(15));
    let health = crate::client::get(metrics, "/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(server.get("/").status, 200);
}

/// TERM to the old master without WINCH first: its workers drain and close their
/// listeners while the new master's workers, on the same sockets, go on accepting.
#[test]
fn usr2_then_term_to_the_old_master_drops_no_request() {
    let mut up = start();
    let new = up.usr2();
    up.server.signal(Signal::SIGTERM);
    let status = up.server.wait_exit(secs(15));
    assert_eq!(status.code(), Some(0), "old master: {status}");
    up.load.wait_progress(20, secs(10));
    up.load.finish();
    assert_eq!(wait_workers(new.0, &[], WORKERS).len(), WORKERS);
    assert_eq!(unix_status(&up.socket, "/pid"), "HTTP/1.1 200 OK");
}

#[test]
fn usr2_rollback_with_hup_to_the_old_master() {
    let up = start();
    let old = up.server.pid();
    let new = up.usr2();
    up.winch(new.0);
    // Rollback: the old master's workers come back, the new master goes.
    up.server.signal(Signal::SIGHUP);
    wait_workers(old, &[new.0], WORKERS);
    up.load.wait_progress(10, secs(10));
    send_signal(new.0, Signal::SIGTERM);
    let exited = format!("new master (pid: {}) exited", new.0);
    up.server.wait_for_log(&exited, secs(15));
    let restored = poll_until(secs(10), || {
        (read_pidfile(&up.pidfile) == Some(old)).then_some(())
    });
    assert!(
        restored.is_some(),
        "pidfile holds {:?} after the rollback, want {old}",
        read_pidfile(&up.pidfile)
    );
    assert!(!up.oldbin.exists());
    // The new master left the Unix socket's file to the old one, still serving on it.
    assert_eq!(unix_status(&up.socket, "/pid"), "HTTP/1.1 200 OK");
    up.finish_on_the_old_master();
}

/// Rollback without HUP: when the new master exits after WINCH stopped the old master's
/// workers, the old master starts them again, as nginx's does, instead of serving
/// nothing.
#[test]
fn usr2_rollback_by_term_alone_brings_the_old_workers_back() {
    let up = start();
    let old = up.server.pid();
    let new = up.usr2();
    up.winch(new.0);
    send_signal(new.0, Signal::SIGTERM);
    up.server.wait_for_log(
        "this master serves again; starting its workers again",
        secs(15),
    );
    wait_workers(old, &[], WORKERS);
    up.finish_on_the_old_master();
}

/// A USR2 upgrade applies a changed `--bind`, as nginx's does: an address still named
/// keeps its socket, a new one is bound, and one no longer named is closed (it goes with
/// the old master).
#[test]
fn usr2_applies_a_changed_bind() {
    let dir = TempDir::new("upgrade-bind");
    let config = dir.join("br-serve.toml");
    let write_binds = |binds: &[&str]| {
        let quoted: Vec<String> = binds.iter().map(|b| format!("\"{b}\"")).collect();
        let text = format!("workers = 1\nbind = [{}]\n", quoted.join(", "));
        std::fs::write(&config, text).expect("write the configuration");
    };
    write_binds(&["127.0.0.1:0", "127.0.0.1:0"]);
    let shown = config.to_str().expect("a UTF-8 temporary path");
    let mut server = Launch::new().no_bind().args(&["-c", shown]).start();
    let old = listening(&server, server.pid(), 2);
    let (kept, dropped) = (old[0], old[1]);
    // Port 0 would match any socket on that address, the dropped one included; a new
    // address is another loopback one.
    write_binds(&[&kept.to_string(), "127.0.0.2:0"]);

    let new = server.usr2();
    let now = listening(&server, new.0, 2);
    assert_eq!(now[0], kept, "the kept address moved");
    let added = now[1];
    assert_eq!(
        added.ip().to_string(),
        "127.0.0.2",
        "{now:?} against {old:?}"
    );
    server.wait_for_log(&format!("http://{dropped} is no longer in --bind"), secs(5));
    wait_workers(new.0, &[], 1);
    assert_eq!(crate::client::get(added, "/").status, 200);

    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(secs(15));
    assert_eq!(status.code(), Some(0), "old master: {status}");
    assert_eq!(crate::client::get(kept, "/").status, 200);
    let gone = std::net::TcpStream::connect_timeout(&dropped, secs(5));
    assert!(
        gone.is_err(),
        "{dropped} still accepts after the old master left"
    );
}

/// USR2 starts the new master in the directory the old one was started in, by the name
/// the shell gave it: a deploy that points `current` at the next release and sends USR2
/// gets that release's binary and configuration (gunicorn and unicorn keep `$PWD` for
/// this), where the real directory gave the old release's again.
#[test]
fn usr2_starts_from_the_directory_a_symlink_now_names() {
    let dir = TempDir::new("upgrade-release");
    for (release, workers) in [("1", 1), ("2", 2)] {
        let release = dir.join(release);
        std::fs::create_dir(&release).expect("mkdir a release");
        std::os::unix::fs::symlink(crate::util::BINARY, release.join("br-serve"))
            .expect("link the binary");
        std::fs::write(release.join("app.toml"), format!("workers = {workers}\n"))
            .expect("write the configuration");
    }
    let current = dir.join("current");
    std::os::unix::fs::symlink("1", &current).expect("link current");
    let server = Launch::new()
        .in_dir(&current, "./br-serve")
        .args(&["-c", "app.toml"])
        .start();
    wait_workers(server.pid(), &[], 1);

    // The deploy: `current` now names release 2.
    std::fs::remove_file(&current).expect("unlink current");
    std::os::unix::fs::symlink("2", &current).expect("relink current");
    let new = server.usr2();
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", new.0)).expect("the new master's cwd");
    let release2 = std::fs::canonicalize(dir.join("2")).expect("release 2");
    assert_eq!(cwd, release2, "the new master runs in the old release");
    wait_workers(new.0, &[], 2);
}

/// The `n` addresses master `pid` logged as listening, in order.
#[track_caller]
fn listening(server: &Server, pid: u32, n: usize) -> Vec<std::net::SocketAddr> {
    let addrs = || -> Vec<std::net::SocketAddr> {
        let lines = server.log().into_iter();
        let ready = lines.filter_map(|l| parse_ready_line(&l));
        ready.filter(|&(_, p)| p == pid).map(|(a, _)| a).collect()
    };
    let found = poll_until(secs(20), || Some(addrs()).filter(|a| a.len() == n));
    found.unwrap_or_else(|| panic!("master {pid} listens on {:?}, want {n}", addrs()))
}

/// TERM to one master while the other serves on the same sockets leaves the accept queue
/// to the other, as WINCH does: a share of it taken by the stopping master's workers would
/// still be in hand when `--graceful-timeout` kills them (here 4 requests of 2 s each).
#[test]
fn a_master_stopped_beside_another_leaves_the_queue_to_it() {
    let server = Launch::new()
        .args(&["--workers", &WORKERS.to_string(), "--graceful-timeout", "3"])
        .start();
    server.wait_children(WORKERS, secs(10));
    let new = server.usr2();
    wait_workers(new.0, &[], WORKERS);
    let mut sleepers: Vec<_> = (0..12).map(|_| server.sent_sleeper(2000)).collect();
    server.signal(Signal::SIGTERM);
    for (i, conn) in sleepers.iter_mut().enumerate() {
        let answer = conn.try_read_response(secs(40));
        assert_eq!(answer.map(|r| r.status), Ok(200), "request {i}");
    }
}

/// A server on a TCP port and the Unix sockets `names` (files in `dir`), configured by a
/// file that [`write_sockets`] rewrites before a USR2.
fn on_sockets(dir: &TempDir, names: &[&str]) -> Server {
    write_sockets(dir, names);
    let config = dir.join("br-serve.toml");
    let shown = config.to_str().expect("a UTF-8 temporary path");
    let server = Launch::new().no_bind().args(&["-c", shown]).start();
    server.wait_children(1, secs(10));
    server
}

fn write_sockets(dir: &TempDir, names: &[&str]) {
    let unix = names
        .iter()
        .map(|n| format!("\"unix:{}\"", dir.join(n).display()));
    let binds: Vec<String> = std::iter::once("\"127.0.0.1:0\"".to_string())
        .chain(unix)
        .collect();
    let text = format!("workers = 1\nbind = [{}]\n", binds.join(", "));
    std::fs::write(dir.join("br-serve.toml"), text).expect("write the configuration");
}

/// A Unix socket's file goes with the last master serving on it. After an upgrade the
/// new master serves on those its `--bind` still names, and the one it dropped is
/// removed when the old master leaves (it used to stay, with nobody listening).
#[test]
fn an_upgrade_removes_the_file_of_a_socket_it_dropped() {
    let dir = TempDir::new("upgrade-unix-drop");
    let mut server = on_sockets(&dir, &["kept.sock", "dropped.sock"]);
    write_sockets(&dir, &["kept.sock"]);
    let new = server.usr2();
    wait_workers(new.0, &[], 1);
    server.wait_for_log("dropped.sock is no longer in --bind", secs(10));
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
    assert!(
        !dir.join("dropped.sock").exists(),
        "a dead socket file stayed"
    );
    assert_eq!(unix_status(&dir.join("kept.sock"), "/"), "HTTP/1.1 200 OK");
}

/// In a rollback the new master leaves the old one's socket files, and removes the file
/// of a socket only it served on.
#[test]
fn a_rollback_removes_the_file_of_a_socket_only_the_new_master_bound() {
    let dir = TempDir::new("upgrade-unix-rollback");
    let server = on_sockets(&dir, &["kept.sock"]);
    write_sockets(&dir, &["kept.sock", "added.sock"]);
    let new = server.usr2();
    wait_workers(new.0, &[], 1);
    assert_eq!(unix_status(&dir.join("added.sock"), "/"), "HTTP/1.1 200 OK");
    server.signal(Signal::SIGHUP);
    send_signal(new.0, Signal::SIGTERM);
    server.wait_for_log(&format!("The new master (pid: {}) exited", new.0), secs(15));
    assert!(
        !dir.join("added.sock").exists(),
        "a dead socket file stayed"
    );
    assert_eq!(unix_status(&dir.join("kept.sock"), "/"), "HTTP/1.1 200 OK");
}

/// A new master that cannot start (its configuration file broke since) is reported with
/// how it ended, in words, and the old master keeps serving.
#[test]
fn a_failed_upgrade_says_how_the_new_master_ended() {
    let dir = TempDir::new("upgrade-fails");
    let file = dir.join("br-serve.toml");
    std::fs::write(&file, "workers = 1\n").unwrap();
    let server = Launch::new().args(&["-c", file.to_str().unwrap()]).start();
    std::fs::write(&file, "workers = \"x").unwrap();
    server.signal(Signal::SIGUSR2);
    let line = server.wait_for_log("the upgrade failed", secs(20));
    assert!(line.contains("ended with code 1"), "{line}");
    assert_eq!(server.get("/").status, 200);
}

/// A USR2 whose binary cannot be run names the file it tried, as nginx does: the name is
/// looked up again from the start directory, through a `current` symlink, so which file
/// that was is the question. The old master keeps serving.
#[test]
fn a_usr2_that_cannot_run_the_binary_names_it() {
    let tmp = TempDir::new("upgrade-noexec");
    let dir = tmp.join("release");
    std::fs::create_dir(&dir).expect("mkdir");
    std::os::unix::fs::symlink(crate::util::BINARY, dir.join("br-serve")).expect("link");
    let server = Launch::new()
        .in_dir(&dir, "./br-serve")
        .args(&["--workers", "1"])
        .start();
    std::fs::remove_file(dir.join("br-serve")).expect("unlink");
    std::fs::write(dir.join("br-serve"), "not a program\n").expect("write");
    server.signal(Signal::SIGUSR2);
    let line = server.wait_for_log("cannot start a new master", secs(10));
    assert!(line.contains("br-serve: Permission denied"), "{line}");
    assert!(
        line.contains(&format!("running {}", dir.join("br-serve").display())),
        "{line}"
    );
    assert_eq!(server.get("/").status, 200);
}

/// A USR2 whose new master listens for metrics elsewhere (`metrics-bind` changed in the
/// file): the new master lets the handed socket go, and the old one answers on it again
/// until it exits. Its scrapers and health checks waited in a queue no master served.
#[test]
fn a_metrics_port_the_new_master_lets_go_is_answered_by_the_old() {
    let dir = TempDir::new("upgrade-metrics");
    let file = dir.join("app.toml");
    std::fs::write(&file, "metrics-bind = \"127.0.0.1:0\"\n").expect("write");
    let shown = file.to_str().expect("a UTF-8 temporary path");
    let server = Launch::new().args(&["--workers", "1", "-c", shown]).start();
    let old_port = server.metrics_addr();
    std::fs::write(&file, "metrics-bind = \"127.0.0.2:0\"\n").expect("write");
    let _new = server.usr2();
    server.wait_for_log("--metrics-bind moved from", secs(10));
    server.wait_for_log("does not use this master's metrics port", secs(10));
    let alive = crate::client::get(old_port, "/healthz");
    assert_eq!((alive.status, alive.text().as_str()), (200, "ok\n"));
}
