//! Log files through the binary: the access log's Apache combined lines and JSON lines,
//! refused requests in it (and in the request count), USR1 reopening both the access log and the error log after a rotation (rename),
//! in the master and in the workers, and the error log having why a start failed, each
//! record on one line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::client::{RESPONSE_WITHIN, raw_connect, read_until, request, unix_answer};
use crate::util::{Launch, Server, TempDir, poll_until, secs, unix_socket};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A one-worker server's launcher whose access log is `access.log` in a new directory
/// named after `tag`: the directory, the log's path, and the launcher, for more flags.
fn access_logged(tag: &str) -> (TempDir, PathBuf, Launch) {
    let dir = TempDir::new(tag);
    let path = dir.join("access.log");
    let log = path.to_str().expect("a UTF-8 path");
    let launch = Launch::new().args(&["--workers", "1", "--access-logfile", log]);
    (dir, path, launch)
}

/// `GET target` with a referer and user agent, on a new connection.
fn get_with_agent(server: &Server, target: &str, agent: &str) -> u16 {
    let mut conn = server.connect();
    let referer = "Referer: http://referer.test/";
    let agent = format!("User-Agent: {agent}");
    conn.send(&request(
        "GET",
        target,
        &[referer, &agent, "Connection: close"],
        b"",
    ));
    conn.read_response(RESPONSE_WITHIN).status
}

/// The status of the answer to `wire`, sent on a new connection.
fn status_of(server: &Server, wire: &[u8]) -> u16 {
    let mut conn = server.connect();
    conn.send(wire);
    conn.read_response(RESPONSE_WITHIN).status
}

/// Waits until the file holds a line containing `needle`, and returns that line.
#[track_caller]
fn wait_line(path: &Path, needle: &str) -> String {
    let found = poll_until(secs(10), || {
        read(path)
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_string)
    });
    found.unwrap_or_else(|| {
        panic!(
            "no line with {needle:?} in {}:\n{}",
            path.display(),
            read(path)
        )
    })
}

/// `127.0.0.1 - - [28/Nov/2026:03:01:02 +0000] "GET / HTTP/1.1" 200 14 "ref" "agent"`.
fn assert_combined(line: &str, request_line: &str, rest: &str) {
    let (time, after) = line
        .strip_prefix("127.0.0.1 - - [")
        .and_then(|l| l.split_once("] "))
        .unwrap_or_else(|| panic!("not a combined line: {line:?}"));
    // dd/Mon/yyyy:hh:mm:ss +zzzz
    let shape =
        time.len() == 26 && &time[2..3] == "/" && &time[6..7] == "/" && &time[11..12] == ":";
    assert!(shape, "time {time:?} in {line:?}");
    assert_eq!(after, format!("\"{request_line}\" {rest}"), "{line:?}");
}

#[test]
fn access_log_is_combined_and_reopened_on_usr1() {
    let (dir, path, launch) = access_logged("access");
    let server = launch.start();
    assert_eq!(get_with_agent(&server, "/?before", "agent/1"), 200);
    let line = wait_line(&path, "/?before");
    let rest = "200 14 \"http://referer.test/\" \"agent/1\"";
    assert_combined(&line, "GET /?before HTTP/1.1", rest);

    let rotated = dir.join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("reopening log files", secs(10));
    // Until the worker has handled its USR1, lines still land in the renamed file.
    let reopened = poll_until(secs(10), || {
        assert_eq!(get_with_agent(&server, "/?after", "agent/2"), 200);
        read(&path).contains("/?after").then_some(())
    });
    assert!(
        reopened.is_some(),
        "no new access.log after USR1; old one:\n{}",
        read(&rotated)
    );
    assert!(read(&rotated).contains("/?before"));
}

/// `%(u)s`, in the default format, is the user of `Basic` credentials, as gunicorn logs
/// it (the password never is).
#[test]
fn the_basic_auth_user_is_logged() {
    let (_dir, path, launch) = access_logged("access-user-name");
    let server = launch.start();
    let credentials = "Authorization: Basic YWxpY2U6c2VjcmV0"; // alice:secret
    let wire = request("GET", "/?who", &[credentials, "Connection: close"], b"");
    assert_eq!(status_of(&server, &wire), 200);
    let line = wait_line(&path, "/?who");
    assert!(line.starts_with("127.0.0.1 - alice ["), "{line}");
    assert!(!line.contains("secret") && !line.contains("YWxp"), "{line}");
}

/// A request running in its handler when the file is rotated: its line goes to the new
/// file. The worker saw USR1 only after the handler returned, and wrote the line first,
/// to the moved file, which logrotate's `compress` had already read: the line was lost.
#[test]
fn a_request_running_at_usr1_is_logged_to_the_new_file() {
    let (dir, path, launch) = access_logged("access-running");
    let server = launch.start();
    let mut sleeper = server.sleeper(2000);
    std::fs::rename(&path, dir.join("access.log.1")).unwrap();
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("reopening log files", secs(10));
    assert_eq!(sleeper.read_response(secs(10)).status, 200);
    wait_line(&path, "/sleep?ms=2000");
    assert!(!read(&dir.join("access.log.1")).contains("/sleep"));
}

/// The answer to a slow pipelined request (1 ms or more) goes out, and its line is
/// written, before the next request's handler runs: every answer waited for the whole
/// batch (three pipelined 300 ms requests were answered together at 0.9 s), and a worker
/// killed in a later request (`--timeout`) lost answers it had made and counted, never
/// sent nor logged.
#[test]
fn a_pipelined_answer_is_sent_and_logged_before_the_next_request_runs() {
    let dir = TempDir::new("pipelined");
    let path = dir.join("access.log");
    let server = Launch::new()
        .args(&["--workers", "1", "--access-logfile", path.to_str().unwrap()])
        .start();
    let mut conn = server.connect();
    let first = request("GET", "/sleep?ms=5", &[], b"");
    let second = request("GET", "/sleep?ms=60000", &[], b"");
    conn.send(&[first, second].concat());
    // Within 10 s: the second request runs for a minute.
    let answer = conn.read_response(RESPONSE_WITHIN);
    assert_eq!(answer.status, 200, "{answer:?}");
    wait_line(&path, "/sleep?ms=5 ");
}

/// Rotation with `--user`: the master (root) recreates the file on USR1, and the workers
/// (another user) must still be able to open it. A production umask (022) makes a file
/// created by root unwritable for anyone else, so the file must be handed to the workers'
/// user, as the README promises for the files opened at start.
#[test]
fn usr1_reopen_works_for_workers_running_as_another_user() {
    if !nix::unistd::geteuid().is_root() {
        return eprintln!("skipped: --user needs root");
    }
    let (dir, path, launch) = access_logged("access-user");
    let server = launch.args(&["--user", "nobody", "--umask", "022"]).start();
    assert_eq!(get_with_agent(&server, "/?before", "agent/1"), 200);
    wait_line(&path, "/?before");
    std::fs::rename(&path, dir.join("access.log.1")).unwrap();
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("reopening log files", secs(10));
    let reopened = poll_until(secs(10), || {
        assert_eq!(get_with_agent(&server, "/?after", "agent/2"), 200);
        read(&path).contains("/?after").then_some(())
    });
    let log = server.log().join("\n");
    assert!(
        reopened.is_some(),
        "no line in the new access.log; log:\n{log}"
    );
}

/// With `--user`, each worker opens its logs again at USR1 as that user: in a directory
/// it cannot search, that fails (said only in the rotated error log) and the workers go
/// on writing to the rotated file. The start says so, before any rotation.
#[test]
fn a_log_directory_the_user_cannot_search_is_warned_of_at_start() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        return eprintln!("skipped: --user needs root");
    }
    let dir = TempDir::new("log-dir-user");
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let server = Launch::new()
        .args(&["--workers", "1", "--user", "nobody", "--access-logfile"])
        .args(&[logs.join("access.log").to_str().unwrap()])
        .start();
    server.wait_for_log("the workers' user (nobody) cannot search", secs(5));
    // A bare name is in the current directory, which was not looked at.
    let server = Launch::new()
        .wrapped(&["sh", "-c", r#"cd "$LOGS" && exec "$0" "$@""#])
        .env("LOGS", logs.to_str().unwrap())
        .args(&[
            "--workers",
            "1",
            "--user",
            "nobody",
            "--access-logfile",
            "access.log",
        ])
        .start();
    server.wait_for_log("the workers' user (nobody) cannot search .", secs(5));
}

/// With `--user`, a log file is given to the workers' user and keeps its group, as nginx
/// does it: logrotate's `create 0640 app adm` lets log shippers in group adm read it, and
/// handing the file to the user's own group shut them out at every rotation.
#[test]
fn a_log_file_given_to_the_user_keeps_its_group() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return eprintln!("skipped: --user needs root");
    }
    let dir = TempDir::new("log-group");
    let path = dir.join("access.log");
    let owners = || {
        let meta = std::fs::metadata(&path).expect("the access log");
        (meta.uid(), meta.gid())
    };
    std::fs::write(&path, "").expect("create the log");
    let shippers = nix::unistd::Gid::from_raw(4);
    nix::unistd::chown(&path, None, Some(shippers)).expect("chgrp");
    let server = Launch::new()
        .args(&["--workers", "1", "--user", "nobody"])
        .args(&["--access-logfile", path.to_str().unwrap()])
        .start();
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("nobody");
    assert_eq!(owners(), (nobody.uid.as_raw(), 4), "at start");
    // Rotated as logrotate's `create` does it: a new file, root's, group adm.
    std::fs::rename(&path, dir.join("access.log.1")).unwrap();
    std::fs::write(&path, "").expect("create the log");
    nix::unistd::chown(&path, None, Some(shippers)).expect("chgrp");
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("reopening log files", secs(10));
    let handed = poll_until(secs(10), || {
        (owners().0 == nobody.uid.as_raw()).then_some(())
    });
    assert!(handed.is_some(), "not given to nobody: {:?}", owners());
    assert_eq!(owners().1, 4, "after USR1");
    // The master hands the file over before it signals the worker: until the worker has
    // handled its USR1, lines still land in the renamed file.
    let written = poll_until(secs(10), || {
        assert_eq!(get_with_agent(&server, "/?after", "agent/2"), 200);
        read(&path).contains("/?after").then_some(())
    });
    assert!(written.is_some(), "no line in the new access.log");
}

/// A HUP that sets `user` hands the log files to that user, as a start does: they stayed
/// root's, so at the next USR1 after a rotation every worker, running as nobody by then,
/// failed to open the new files ("cannot reopen ...: Permission denied") and went on
/// writing to the rotated ones, which logrotate's `compress` had already read.
#[test]
fn a_hup_that_sets_a_user_hands_the_logs_to_it() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return eprintln!("skipped: --user needs root");
    }
    let dir = TempDir::new("log-hup-user");
    let (access, errors) = (dir.join("access.log"), dir.join("error.log"));
    let config = dir.join("br-serve.toml");
    std::fs::write(&config, "workers = 1\n").unwrap();
    let server = Launch::new()
        .args(&["-c", config.to_str().unwrap()])
        .args(&["--access-logfile", access.to_str().unwrap()])
        .error_logfile(&errors)
        .start();
    std::fs::write(&config, "workers = 1\nuser = \"nobody\"\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("serving, generation 2", secs(10));
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("nobody")
        .uid
        .as_raw();
    let owner = |path: &Path| std::fs::metadata(path).map(|m| m.uid()).ok();
    assert_eq!(
        (owner(&access), owner(&errors)),
        (Some(nobody), Some(nobody))
    );
    // Rotated as logrotate's `create` does it: new files, root's.
    for path in [&access, &errors] {
        std::fs::rename(path, path.with_extension("log.1")).unwrap();
        std::fs::write(path, "").unwrap();
    }
    server.signal(Signal::SIGUSR1);
    let written = poll_until(secs(10), || {
        assert_eq!(get_with_agent(&server, "/?after", "agent/2"), 200);
        read(&access).contains("/?after").then_some(())
    });
    let logs = format!("{}{}", read(&errors.with_extension("log.1")), read(&errors));
    assert!(written.is_some(), "no line in the new access.log:\n{logs}");
    assert!(!logs.contains("cannot reopen"), "{logs}");
    assert_eq!(
        (owner(&access), owner(&errors)),
        (Some(nobody), Some(nobody))
    );
}

/// A FIFO that no process reads, at a log's path, blocked the master in open(2) until a
/// reader came: before the start (signals and all), and at a USR1 after a rotation,
/// supervising nothing meanwhile. Now the open fails, and says why.
#[test]
fn a_fifo_no_one_reads_is_refused_without_waiting() {
    let dir = TempDir::new("log-fifo");
    let fifo = dir.join("fifo.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let (status, log) = Launch::new()
        .args(&["--access-logfile", fifo.to_str().unwrap()])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("a FIFO that no process reads"), "{log}");

    let path = dir.join("access.log");
    let server = Launch::new()
        .args(&["--workers", "1", "--access-logfile", path.to_str().unwrap()])
        .start();
    std::fs::rename(&fifo, &path).unwrap();
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("a FIFO that no process reads", secs(10));
    // Still supervising: TTIN adds a worker.
    server.signal(Signal::SIGTTIN);
    server.wait_children(2, secs(10));
}

/// With `--user`, the master gives the log file it opened to the workers' user, who may
/// write to the log's directory: a symlink planted there (to `/etc/shadow`) was
/// followed at the next USR1, and its target given away. A link at the path is refused.
#[test]
fn a_symlink_at_a_log_path_is_not_given_to_the_user() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return eprintln!("skipped: --user needs root");
    }
    let dir = TempDir::new("log-symlink");
    let (path, victim) = (dir.join("access.log"), dir.join("victim"));
    std::fs::write(&victim, "secret\n").expect("the victim");
    std::os::unix::fs::symlink(&victim, &path).expect("symlink");
    let launch = || {
        let args = ["--workers", "1", "--user", "nobody", "--access-logfile"];
        Launch::new().args(&args).args(&[path.to_str().unwrap()])
    };
    let (status, log) = launch().run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("a symbolic link"), "{log}");

    std::fs::remove_file(&path).unwrap();
    let server = launch().start();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&victim, &path).expect("symlink");
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("a symbolic link", secs(10));
    assert_eq!(std::fs::metadata(&victim).unwrap().uid(), 0, "given away");

    // A link to what is not a file, nothing to give, is followed: `/dev/stdout` (a link
    // to /proc/self/fd/1, here a pipe) was refused with --user.
    let args = ["--workers", "1", "--user", "nobody", "--access-logfile"];
    let server = Launch::new().args(&args).args(&["/dev/stdout"]).start();
    assert_eq!(get_with_agent(&server, "/?to-stdout", "agent/1"), 200);
    server.wait_for_log("GET /?to-stdout", secs(10));
    // Nothing to rotate there: USR1 keeps it, where each worker, as nobody, failed to
    // open root's pipe again and said so. (Two requests: the worker has handled the
    // signal by the second.)
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("reopening log files", secs(10));
    for _ in 0..2 {
        assert_eq!(get_with_agent(&server, "/?after-usr1", "agent/2"), 200);
    }
    server.wait_for_log("GET /?after-usr1", secs(10));
    let log = server.log().join("\n");
    assert!(!log.contains("cannot reopen"), "{log}");
}

/// A one-worker server writing its error log to `error.log` in a directory of its own.
fn with_error_log(tag: &str) -> (TempDir, std::path::PathBuf, Server) {
    let dir = TempDir::new(tag);
    let path = dir.join("error.log");
    let server = Launch::new()
        .args(&["--workers", "1"])
        .error_logfile(&path)
        .start();
    (dir, path, server)
}

#[test]
fn error_log_is_reopened_on_usr1() {
    let (dir, path, server) = with_error_log("errorlog");
    server.wait_for_log("Ready:", secs(10));
    let rotated = dir.join("error.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    server.signal(Signal::SIGUSR1);
    // The worker reopened: its panic report lands in the new file.
    let worker = poll_until(secs(10), || {
        assert_eq!(server.get("/panic").status, 500);
        read(&path)
            .lines()
            .any(|l| l.contains("[worker.") && l.contains("panic"))
            .then_some(())
    });
    assert!(
        worker.is_some(),
        "no worker line in the new error.log:\n{}",
        read(&path)
    );
    // The master reopened: its next record lands there too.
    server.signal(Signal::SIGUSR1);
    let master = wait_line(&path, "reopening log files");
    assert!(master.contains("[master]"), "{master}");
    assert!(read(&rotated).contains("Listening at:"));
}

/// A master that cannot reopen its error log (out of descriptors) says so as a record
/// like any other, with time, pid and level, in the file it still has.
#[test]
fn a_failed_reopen_is_logged_as_a_record() {
    let (_dir, path, server) = with_error_log("errorlog-reopen");
    wait_line(&path, "Ready:");
    let nofile = "--nofile=8:";
    let set = std::process::Command::new("prlimit")
        .args(["--pid", &server.pid().to_string(), nofile])
        .status();
    assert!(set.is_ok_and(|s| s.success()), "prlimit {nofile}");
    server.signal(Signal::SIGUSR1);
    let line = wait_line(&path, "cannot reopen");
    assert!(line.contains("[master] ERROR cannot reopen"), "{line}");
}

/// Requests the server refuses itself, before the application (a head without Host, a
/// body over the limit, a stalled head), are in the access log too, as nginx logs them:
/// the request line as far as it was read.
#[test]
fn refused_requests_are_in_the_access_log() {
    let (_dir, path, launch) = access_logged("access-refused");
    let server = launch
        .args(&["--header-timeout", "1"])
        .args(&["--metrics-path", "/metrics"])
        .start();
    let refused = |wire: &[u8]| status_of(&server, wire);
    assert_eq!(refused(b"GET /no-host HTTP/1.1\r\n\r\n"), 400);
    let big = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9999999\r\n\r\n";
    assert_eq!(refused(big), 413);
    assert_eq!(refused(b"GET /slow HTTP/1.1\r\nHost"), 408);
    // Answered, so counted, as the access log has them (the scrape counts once answered).
    let scrape = server.get("/metrics").text();
    let answered: u64 = crate::client::metric_sample(&scrape, "br_serve_requests_total");
    assert_eq!(answered, 3, "{scrape}");
    assert_combined(
        &wait_line(&path, " 400 "),
        "GET /no-host HTTP/1.1",
        "400 46 \"-\" \"-\"",
    );
    assert!(wait_line(&path, " 413 ").contains("\"POST /echo HTTP/1.1\" 413 "));
    assert!(wait_line(&path, " 408 ").contains("\"GET /slow HTTP/1.1\" 408 "));
}

/// A client that leaves mid-request, by a close or a reset, mid-head or mid-body, is
/// logged with a 499 (nginx's "client closed request"), nothing sent, and counted as
/// abandoned: an abandoned upload left no trace. One that leaves between requests, or
/// before sending any, is neither.
#[test]
fn clients_leaving_mid_request_are_in_the_access_log() {
    let (_dir, path, launch) = access_logged("access-abandoned");
    let server = launch
        .args(&["--access-logformat", "%(s)s %(b)s [%(r)s]"])
        .args(&["--metrics-path", "/metrics"])
        .start();
    let mut kept = server.connect();
    kept.send(&request("GET", "/?kept", &[], b""));
    assert_eq!(kept.read_response(RESPONSE_WITHIN).status, 200);
    drop(kept);
    drop(raw_connect(server.addr()));
    let upload = b"POST /echo?upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc";
    for (wire, reset) in [
        (&b"GET /head-closed HTTP/1.1\r\nHost"[..], false),
        (b"GET /head-reset HTTP/1.1\r\nHo", true),
        (upload, false),
    ] {
        let mut stream = raw_connect(server.addr());
        stream.write_all(wire).expect("send");
        if reset {
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .expect("linger");
        }
    }
    wait_line(&path, "[GET /head-closed HTTP/1.1]");
    wait_line(&path, "[GET /head-reset HTTP/1.1]");
    let line = wait_line(&path, "[POST /echo?upload HTTP/1.1]");
    assert_eq!(line, "499 - [POST /echo?upload HTTP/1.1]");
    // Found gone by a write, not a read: answers to pipelined requests were going out
    // to a client that had left, with a request part-sent behind them.
    let mut pipelined = raw_connect(server.addr());
    let wire = [
        request("GET", "/sleep?ms=300", &[], b""),
        request("GET", "/?second", &[], b""),
        b"GET /behind HTTP/1.1\r\nHo".to_vec(),
    ];
    pipelined.write_all(&wire.concat()).expect("send");
    drop(pipelined);
    wait_line(&path, "499 - [GET /behind HTTP/1.1]");
    // The worker takes events in order: the first two connections were done with by now.
    assert_eq!(status_of(&server, &request("GET", "/?last", &[], b"")), 200);
    wait_line(&path, "[GET /?last HTTP/1.1]");
    let lines = read(&path);
    assert_eq!(lines.lines().count(), 8, "{lines}");
    assert!(
        lines.starts_with("200 14 [GET /?kept HTTP/1.1]\n"),
        "{lines}"
    );
    let scrape = server.get("/metrics").text();
    let left: u64 = crate::client::metric_sample(&scrape, "br_serve_requests_abandoned_total");
    assert_eq!(left, 4, "{scrape}");
}

/// A refused request's line keeps its parts when it was refused for extra spaces (it
/// was logged with an empty target and a version of `/x HTTP/1.1`), and a 408's
/// duration runs from the head's first byte (it was 0 after a second's wait), for a
/// stalled head and a stalled body alike.
#[test]
fn refused_lines_keep_their_request_line_and_duration() {
    let (_dir, path, launch) = access_logged("access-refused-parts");
    let server = launch
        .args(&["--header-timeout", "1", "--body-timeout", "1"])
        .args(&[
            "--access-logformat",
            "%(s)s [%(r)s] %(U)s %(L)s xff=%({x-forwarded-for}i)s",
        ])
        .start();
    let spaced = b"GET  /spaced HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_eq!(status_of(&server, spaced), 400);
    assert_eq!(status_of(&server, b"GET /slow HTTP/1.1\r\nHost"), 408);
    let line = wait_line(&path, "400 ");
    assert!(
        line.starts_with("400 [GET /spaced HTTP/1.1] /spaced "),
        "{line}"
    );
    let stalled = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc";
    assert_eq!(status_of(&server, stalled), 408);
    for timed_out in ["408 [GET /slow", "408 [POST /echo"] {
        let line = wait_line(&path, timed_out);
        let seconds: f64 = line.rsplit(' ').nth(1).unwrap().parse().unwrap();
        assert!(
            seconds >= 0.9,
            "a 408 after a second logged as {seconds} s: {line}"
        );
    }
    // The fields a request sent are logged, whether it was served, its head was whole
    // (a body that stalled) or refused (a coding not implemented): behind a proxy, its
    // X-Forwarded-For is how the client is found. A proxy that appends a line of its
    // own (HAProxy) is logged after the client's line, not hidden behind it.
    let xff = "X-Forwarded-For: 203.0.113.9\r\nx-forwarded-for: 192.0.2.7";
    for (wire, status) in [
        (
            format!("GET /?xff HTTP/1.1\r\nHost: t\r\n{xff}\r\n\r\n"),
            200,
        ),
        (
            format!("POST /echo?xff HTTP/1.1\r\nHost: t\r\n{xff}\r\nContent-Length: 9\r\n\r\nab"),
            408,
        ),
        (
            format!(
                "POST /echo?xff HTTP/1.1\r\nHost: t\r\n{xff}\r\nTransfer-Encoding: gzip\r\n\r\n"
            ),
            501,
        ),
    ] {
        assert_eq!(status_of(&server, wire.as_bytes()), status);
        let line = wait_line(
            &path,
            &format!("{status} [{}", &wire[..wire.find(" HTTP").unwrap()]),
        );
        assert!(line.ends_with(" xff=203.0.113.9, 192.0.2.7"), "{line}");
    }
}

/// `--proxy-protocol`: the PROXY header a TCP balancer sends first names the client, in
/// either version, however it is split, for every request of the connection; a LOCAL
/// one (the balancer's own health check) keeps the connection's address, and a
/// connection without a header, or one sending a second header after a request, is
/// answered 400 and closed, since its client would be naming itself.
#[test]
fn the_proxy_protocol_names_the_client() {
    let (_dir, path, launch) = access_logged("access-proxy-protocol");
    let server = launch
        .args(&["--proxy-protocol"])
        .args(&["--access-logformat", "%(h)s %(q)s %(s)s"])
        .start();
    let v1 = b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n";
    let mut conn = server.connect();
    conn.send(&v1[..10]);
    conn.wait_consumed(secs(10));
    conn.send(&[&v1[10..], &request("GET", "/?v1", &[], b"")[..]].concat());
    assert_eq!(conn.read_response(secs(10)).status, 200);
    assert_eq!(wait_line(&path, " v1 "), "203.0.113.7 v1 200");
    // A second header on the kept connection is no header but a malformed request.
    conn.send(v1);
    assert_eq!(conn.read_response(secs(10)).status, 400);
    conn.expect_closed(secs(10));

    // Version 2 over IPv6, with a TLV after the addresses; both requests are the client's.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x2a".to_vec();
    v2.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    v2.extend_from_slice(&[0; 16]);
    v2.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb, 0x04, 0x00, 0x03, b'v', b'p', b'c']);
    let mut conn = server.connect();
    conn.send(&[&v2[..], &request("GET", "/?v2a", &[], b"")[..]].concat());
    assert_eq!(conn.read_response(secs(10)).status, 200);
    conn.send(&request("GET", "/?v2b", &[], b""));
    assert_eq!(conn.read_response(secs(10)).status, 200);
    assert_eq!(wait_line(&path, " v2b "), "2001:db8::7 v2b 200");
    assert_eq!(wait_line(&path, " v2a "), "2001:db8::7 v2a 200");

    let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    let wire = [
        &local[..],
        &request("GET", "/?local", &["Connection: close"], b"")[..],
    ];
    assert_eq!(status_of(&server, &wire.concat()), 200);
    assert_eq!(wait_line(&path, " local "), "127.0.0.1 local 200");
    let mut bare = server.connect();
    bare.send(&request("GET", "/?bare", &[], b""));
    assert_eq!(bare.read_response(secs(10)).status, 400);
    bare.expect_closed(secs(10));
    assert_eq!(wait_line(&path, " bare "), "127.0.0.1 bare 400");
}

/// `--proxy-allow-from`: only the peers it lists may begin a connection with a PROXY
/// header (the machine itself by default, which the test above relies on); another peer
/// is answered 403 and closed, header or not, since it could name any client. A Unix
/// socket's peer always may.
#[test]
fn only_listed_peers_may_send_a_proxy_header() {
    let (_dir, path, launch) = access_logged("access-proxy-allow");
    let (_sock_dir, socket, unix) = unix_socket("proxy-allow");
    let server = launch
        .args(&["--proxy-protocol", "--proxy-allow-from", "192.0.2.0/24"])
        .args(&["--bind", &unix])
        .args(&["--access-logformat", "%(h)s %(q)s %(s)s"])
        .start();
    // A connection without a header first: its 400 is logged at most once a second,
    // and must not hide the 403 that follows.
    let mut headless = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    let get = request("GET", "/?headless", &["Connection: close"], b"");
    std::io::Write::write_all(&mut headless, &get).expect("send");
    assert!(unix_answer(&mut headless).starts_with("HTTP/1.1 400 "));
    server.wait_for_log("(--proxy-protocol); answering 400", secs(10));
    let header = b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n";
    let mut conn = server.connect();
    conn.send(&[&header[..], &request("GET", "/?forged", &[], b"")].concat());
    let answer = conn.read_response(secs(10));
    assert_eq!(answer.status, 403);
    assert!(
        answer.text().contains("--proxy-allow-from"),
        "{}",
        answer.text()
    );
    conn.expect_closed(secs(10));
    server.wait_for_log(
        "not in --proxy-allow-from (--proxy-protocol); answering 403",
        secs(10),
    );
    let mut bare = server.connect();
    bare.send(&request("GET", "/?bare", &[], b""));
    assert_eq!(bare.read_response(secs(10)).status, 403);
    bare.expect_closed(secs(10));

    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    let get = request("GET", "/?unix", &["Connection: close"], b"");
    std::io::Write::write_all(&mut stream, &[&header[..], &get].concat()).expect("send");
    assert!(unix_answer(&mut stream).starts_with("HTTP/1.1 200 "));
    assert_eq!(wait_line(&path, " unix "), "203.0.113.7 unix 200");
    assert_eq!(wait_line(&path, " bare "), "127.0.0.1 bare 403");
    assert!(!read(&path).contains("forged"), "{}", read(&path));
}

/// Behind the PROXY protocol, the requests a drain has no time to run are answered 503
/// as their clients' requests: their lines in the log named the balancer as the client
/// and the PROXY header as the request (the header was never taken from them), and a
/// HEAD among them would have had a body.
#[test]
fn a_drain_refuses_proxied_requests_as_their_clients() {
    let (_dir, path, launch) = access_logged("access-proxy-drain");
    let mut server = launch
        .args(&["--proxy-protocol", "--graceful-timeout", "5"])
        .args(&["--access-logformat", "%(h)s %(r)s %(s)s"])
        .start();
    let proxied = |client: usize, ms: u64| {
        let mut conn = server.connect();
        let header = format!("PROXY TCP4 192.0.2.{client} 198.51.100.2 5000 443\r\n");
        let path = format!("/sleep?ms={ms}");
        conn.send(&[header.as_bytes(), &request("GET", &path, &[], b"")].concat());
        conn
    };
    let mut sleeper = proxied(200, 1500);
    sleeper.wait_consumed(secs(10));
    // 40 x 150 ms: 6 s of requests behind the sleeper, against 4.5 s of drain.
    let mut queued: Vec<_> = (1..=40).map(|client| proxied(client, 150)).collect();
    server.signal(Signal::SIGTERM);
    assert_eq!(sleeper.read_response(secs(15)).status, 200);
    let statuses: Vec<u16> = queued
        .iter_mut()
        .map(|conn| conn.read_response(secs(15)).status)
        .collect();
    let refused = statuses.iter().filter(|&&status| status == 503).count();
    assert!(refused > 0, "the drain ran every queued request");
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
    let log = read(&path);
    let lines: Vec<&str> = log.lines().filter(|line| line.ends_with(" 503")).collect();
    assert_eq!(lines.len(), refused, "{log}");
    for line in lines {
        let (client, rest) = line.split_once(' ').unwrap_or_default();
        assert!(client.starts_with("192.0.2."), "{line}");
        assert_eq!(rest, "GET /sleep?ms=150 HTTP/1.1 503", "{line}");
    }
}

/// A format of one's own: response headers the application set (`%({name}o)s`; the ones
/// the server writes are `-`, `%(B)s` is the size) and `%%` for a percent sign, as in
/// gunicorn.
#[test]
fn access_log_format_has_response_headers_and_percent_signs() {
    let (_dir, path, launch) = access_logged("access-format");
    let format = "%(U)s type=%({Content-Type}o)s len=%({content-length}o)s 100%% %(B)s";
    let server = launch.args(&["--access-logformat", format]).start();
    assert_eq!(get_with_agent(&server, "/?format", "t"), 200);
    let line = wait_line(&path, "type=");
    assert_eq!(
        line, "/ type=text/plain; charset=utf-8 len=- 100% 14",
        "{line}"
    );
}

/// What the client wrote reaches the log escaped in every atom, so it cannot forge
/// fields: a refused request's method and version as well as its path, and a header
/// that is not UTF-8 is written as `\xHH` rather than hidden behind `-`.
#[test]
fn client_bytes_are_escaped_in_every_atom() {
    let (_dir, path, launch) = access_logged("access-escape");
    let format = r#""%(m)s" "%(U)s" "%(H)s" %(s)s "%(a)s""#;
    let server = launch.args(&["--access-logformat", format]).start();
    let send = |wire: &[u8]| status_of(&server, wire);
    assert_eq!(send(b"G\"T / HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    let forged = b"GET /x HTTP/1.1\" 200 \"\x1b[31m\r\nHost: t\r\n\r\n";
    assert_eq!(send(forged), 400);
    let latin1 = b"GET /?latin HTTP/1.1\r\nHost: t\r\nUser-Agent: caf\xe9\"\r\n\r\n";
    assert_eq!(send(latin1), 200);
    let line = wait_line(&path, "G\\x22T");
    assert_eq!(line, r#""G\x22T" "/" "HTTP/1.1" 400 "-""#);
    let line = wait_line(&path, "/x");
    assert_eq!(
        line,
        r#""GET" "/x" "HTTP/1.1\x22 200 \x22\x1B[31m" 400 "-""#
    );
    let line = wait_line(&path, "caf");
    assert_eq!(line, r#""GET" "/" "HTTP/1.1" 200 "caf\xE9\x22""#);
    // A refused target that is not UTF-8 keeps its bytes too.
    assert_eq!(send(b"GET /\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    let line = wait_line(&path, "\\xFF");
    assert_eq!(line, r#""GET" "/\xFF\xFE" "HTTP/1.1" 400 "-""#);
}

/// An access log that cannot be written (a full disk; here /dev/full) costs no request
/// and floods nothing: the error log says so once, not once per request.
#[test]
fn an_access_log_on_a_full_disk_is_reported_once() {
    let server = Launch::new()
        .args(&["--workers", "1", "--access-logfile", "/dev/full"])
        .start();
    for _ in 0..5 {
        assert_eq!(server.get("/").status, 200);
    }
    // A line the master writes now comes after every warning the worker wrote: once
    // it is read, they all are.
    server.signal(Signal::SIGUSR1);
    server.wait_for_log("Handling signal: USR1", secs(10));
    let said = "cannot write the access log: No space left on device";
    assert_eq!(server.log_count(said), 1, "{:#?}", server.log());
}

/// The error log has the reason a start failed (here a port in use), not only stderr:
/// under a supervisor the file is where the operator looks. And a record with line breaks
/// in it (a bad configuration file's parse report, on HUP) stays one line.
#[test]
fn the_error_log_has_why_a_start_failed_each_record_on_one_line() {
    let dir = TempDir::new("errorlog-fail");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").to_string();
    let path = dir.join("error.log");
    let (status, _) = Launch::new()
        .no_bind()
        .args(&["--bind", &port])
        .error_logfile(&path)
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1));
    let log = read(&path);
    assert!(log.contains("ERROR") && log.contains(&port), "{log}");

    let config = dir.join("br-serve.toml");
    std::fs::write(&config, "workers = 1\n").unwrap();
    let path = dir.join("hup.log");
    let server = Launch::new()
        .args(&["-c", config.to_str().unwrap()])
        .error_logfile(&path)
        .start();
    std::fs::write(&config, "workers = 1\nbind = [\n").unwrap();
    server.signal(Signal::SIGHUP);
    let failed = wait_line(&path, "ERROR");
    assert!(
        failed.contains("TOML") || failed.contains("parse"),
        "{failed}"
    );
    let log = read(&path);
    assert!(
        log.lines().all(|l| l.starts_with("20")),
        "a record split:\n{log}"
    );
}

/// Parses one flat JSON object of string values (what `--access-log-json` writes) into
/// its pairs; `None` if the line is anything else.
fn parse_json_object(line: &str) -> Option<Vec<(String, String)>> {
    let mut chars = line.trim().chars().peekable();
    let mut pairs = Vec::new();
    (chars.next()? == '{').then_some(())?;
    if chars.peek() == Some(&'}') {
        chars.next();
    }
    while chars.peek().is_some() {
        let key = json_string(&mut chars)?;
        (chars.next()? == ':').then_some(())?;
        pairs.push((key, json_string(&mut chars)?));
        match chars.next()? {
            ',' => continue,
            '}' => break,
            _ => return None,
        }
    }
    chars.next().is_none().then_some(pairs)
}

/// A JSON string at the front of `chars`, unescaped.
fn json_string(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<String> {
    (chars.next()? == '"').then_some(())?;
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                'n' => out.push('\n'),
                't' => out.push('\t'),
                c @ ('"' | '\\' | '/') => out.push(c),
                _ => return None,
            },
            c if (c as u32) < 0x20 => return None,
            c => out.push(c),
        }
    }
}

#[test]
fn json_parser_reads_flat_objects() {
    let pairs = parse_json_object(r#"{"a":"x\"y","b":"\\\u0001"}"#).unwrap();
    assert_eq!(pairs[0], ("a".into(), "x\"y".into()));
    assert_eq!(pairs[1].1, "\\\u{1}");
    assert!(parse_json_object(r#"{"a":"x"} tail"#).is_none());
    assert!(parse_json_object(r#"{"a":"x""#).is_none());
}

#[test]
fn access_log_json_lines_are_json_objects() {
    let dir = TempDir::new("json");
    let path = dir.join("access.json");
    let server = Launch::new()
        .args(&["--workers", "1", "--access-log-json"])
        .args(&["--access-logfile", path.to_str().unwrap()])
        .start();
    // Quotes and a backslash in a logged header must be escaped.
    let agent = r#"a "quoted" \ agent"#;
    assert_eq!(get_with_agent(&server, "/?json", agent), 200);
    let line = wait_line(&path, "/?json");
    let pairs = parse_json_object(&line).unwrap_or_else(|| panic!("not JSON: {line}"));
    let value = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("a"), Some(agent), "{line}");
    assert_eq!(value("s"), Some("200"), "{line}");
    assert_eq!(value("r"), Some("GET /?json HTTP/1.1"), "{line}");
    // "Keyed by atom" (README): the combined format's atoms, each its own key, so no
    // consumer has to pick between duplicates.
    let keys: Vec<_> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["h", "l", "u", "t", "r", "s", "b", "f", "a"],
        "{line}"
    );
}

/// The size of `big.bin` in [`big_file_site`].
const SIZE: u64 = 64 << 20;

/// A static root holding `big.bin` (sparse, [`SIZE`] bytes), the access log's path, and
/// a server of it logging `path query status body-bytes microseconds`.
fn big_file_site(tag: &str) -> (TempDir, std::path::PathBuf, Launch) {
    let dir = TempDir::new(tag);
    std::fs::create_dir(dir.join("www")).unwrap();
    let file = std::fs::File::create(dir.join("www/big.bin")).unwrap();
    file.set_len(SIZE).unwrap();
    let path = dir.join("access.log");
    let root = dir.join("www");
    let launch = Launch::new()
        .args(&["--workers", "1", "--static", root.to_str().unwrap()])
        .args(&["--access-logformat", "%(U)s %(q)s %(s)s %(b)s %(D)s"])
        .args(&["--access-logfile", path.to_str().unwrap()]);
    (dir, path, launch)
}

/// A line is written once its answer has gone out, as nginx and gunicorn write theirs:
/// `%(b)s` counts the body bytes sent, not the file's size, when the client leaves in
/// the middle of a download, and the time runs to the last byte written, so a slow
/// download is a slow line. The file is larger than the kernel's socket buffers on both
/// sides (4 + 6 MiB at most), so neither answer can be handed over before it is read.
#[test]
fn access_log_counts_bytes_sent_and_time_to_the_last() {
    let (_dir, path, launch) = big_file_site("access-sent");
    let server = launch.start();
    let get = |query: &str| request("GET", &format!("/big.bin?{query}"), &[], b"");

    let mut left = raw_connect(server.addr());
    left.write_all(&get("left")).unwrap();
    let (first, _) = read_until(&mut left, secs(10), |b| b.len() >= 1 << 20);
    assert!(first.len() >= 1 << 20, "only {} bytes arrived", first.len());
    drop(left);
    let line = wait_line(&path, "/big.bin left 200 ");
    let sent: u64 = line.split(' ').nth(3).unwrap().parse().unwrap();
    assert!(sent < SIZE, "{line}: the whole file counted as sent");

    let mut slow = raw_connect(server.addr());
    slow.write_all(&get("slow")).unwrap();
    let (_, _) = read_until(&mut slow, secs(10), |b| b.len() >= 1 << 20);
    std::thread::sleep(Duration::from_secs(2));
    let (rest, _) = read_until(&mut slow, secs(60), |b| b.len() as u64 >= SIZE - (1 << 20));
    assert!(
        rest.len() as u64 >= SIZE - (2 << 20),
        "the download stopped"
    );
    let line = wait_line(&path, "/big.bin slow 200 ");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[3], SIZE.to_string(), "{line}");
    let micros: u64 = fields[4].parse().unwrap();
    assert!(
        micros >= 2_000_000,
        "{line}: the time stopped before the last byte"
    );
}

/// A pipe takes a write whole only up to 4096 bytes (PIPE_BUF): a longer line could be
/// split and another worker's line land in the middle of it (`--access-logfile -` under
/// Docker is a pipe). A line that does not fit is cut to fit and says so; one that fits
/// goes whole.
#[test]
fn access_lines_to_a_pipe_fit_in_one_atomic_write() {
    let dir = TempDir::new("access-fifo");
    let fifo = dir.join("access.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // The server's open for writing waits for this reader.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let lines = std::io::BufReader::new(std::fs::File::open(fifo).unwrap());
            std::io::BufRead::lines(lines)
                .take(2)
                .collect::<Result<Vec<_>, _>>()
        })
    };
    let server = Launch::new()
        .args(&["--workers", "1", "--access-logfile", fifo.to_str().unwrap()])
        .start();
    assert_eq!(get_with_agent(&server, "/?short", "t"), 200);
    assert_eq!(get_with_agent(&server, "/?long", &"U".repeat(6000)), 200);
    let lines = reader.join().unwrap().unwrap();
    assert!(
        lines[0].contains("/?short") && lines[0].ends_with("\"t\""),
        "{}",
        lines[0]
    );
    assert!(lines[1].len() < 4096, "{} bytes", lines[1].len());
    assert!(lines[1].ends_with(" [truncated]"), "{}", &lines[1][4000..]);
}

/// A download still going when `--graceful-timeout` runs out on a stop: the worker closes
/// it just before the master's SIGKILL would come, so its line is written (with the bytes
/// that went out) and the worker exits on its own.
#[test]
fn a_download_cut_by_the_graceful_timeout_is_logged() {
    let (_dir, path, launch) = big_file_site("access-cut");
    let mut server = launch.args(&["--graceful-timeout", "3"]).start();
    let mut stalled = raw_connect(server.addr());
    stalled
        .write_all(&request("GET", "/big.bin?stalled", &[], b""))
        .unwrap();
    let (first, _) = read_until(&mut stalled, secs(10), |b| b.len() >= 1 << 20);
    assert!(first.len() >= 1 << 20, "only {} bytes arrived", first.len());
    server.signal(Signal::SIGTERM);
    let line = wait_line(&path, "/big.bin stalled 200 ");
    let sent: u64 = line.split(' ').nth(3).unwrap().parse().unwrap();
    assert!(sent < SIZE, "{line}");
    server.wait_for_log("closed 1 connection(s) still open", secs(10));
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
}

/// A FIFO in `dir` for a log, its path, and its two ends opened non-blocking: the test's
/// reader, which reads only when told, and a writer to fill it.
fn log_fifo(dir: &TempDir) -> (String, std::fs::File, std::fs::File) {
    use std::os::unix::fs::OpenOptionsExt;
    let fifo = dir.join("log.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let open = |write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&fifo)
            .expect("the FIFO")
    };
    let (reader, writer) = (open(false), open(true));
    (
        fifo.to_str().expect("a UTF-8 path").to_string(),
        reader,
        writer,
    )
}

/// A worker held by an access log whose reader stopped reading is replaced at
/// `--timeout`, and the master's line says where it waited (when the kernel tells):
/// "while idle" alone sent operators looking at the application.
#[test]
fn a_worker_stuck_on_its_log_is_said_to_wait_there() {
    let dir = TempDir::new("stuck-log");
    let (fifo, _reader, writer) = log_fifo(&dir);
    let server = Launch::new()
        .args(&[
            "--workers",
            "1",
            "--timeout",
            "2",
            "--access-logfile",
            &fifo,
        ])
        .start();
    let worker = server.wait_children(1, secs(10))[0];
    fill_pipe(&writer);
    assert_eq!(server.get("/").status, 200);
    // What the kernel says of the worker while it waits, if anything (a container may
    // hide it): the master's line must say it too.
    let mut seen = std::collections::BTreeSet::new();
    let line = poll_until(secs(15), || {
        let wchan = std::fs::read_to_string(format!("/proc/{worker}/wchan")).unwrap_or_default();
        if !["", "0"].contains(&wchan.trim()) {
            seen.insert(wchan.trim().to_string());
        }
        server
            .log()
            .into_iter()
            .find(|l| l.contains("WORKER TIMEOUT"))
    })
    .expect("no WORKER TIMEOUT within 15 s");
    assert!(line.contains("while idle"), "{line}");
    if !seen.is_empty() {
        let named = seen
            .iter()
            .any(|w| line.contains(&format!("(waiting in the kernel's {w})")));
        assert!(named, "{line}; the kernel said {seen:?}");
    }
}

/// Fills the pipe behind `writer` (opened non-blocking) until it takes nothing more, as a
/// log's reader that stopped reading leaves it.
fn fill_pipe(mut writer: &std::fs::File) {
    let chunk = [b'#'; 4096];
    let full = poll_until(secs(10), || match writer.write(&chunk) {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Some(()),
        Err(err) => panic!("filling the pipe: {err}"),
        Ok(_) => None,
    });
    full.expect("a pipe that never fills");
}

/// Reads what the pipe behind `reader` (non-blocking) holds until `needle` has come.
fn read_pipe_until(mut reader: &std::fs::File, needle: &str) -> String {
    use std::io::Read;
    let mut text = String::new();
    let mut buf = vec![0; 65536];
    let found = poll_until(secs(15), || {
        match reader.read(&mut buf) {
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("reading the pipe: {err}"),
        }
        text.contains(needle).then_some(())
    });
    assert!(
        found.is_some(),
        "no {needle:?} in:\n{}",
        text.replace('#', "")
    );
    text
}

/// An error log whose reader stopped reading (a stalled journald or log shipper, here a
/// FIFO left full) does not stop the master: what the log cannot take is dropped, the
/// master forks for TTIN and says later how much it dropped, and it acts on TERM. It
/// blocked in write(2), deaf to every signal, until the reader read again.
#[test]
fn a_stalled_log_reader_does_not_stop_the_master() {
    let dir = TempDir::new("stalled-log");
    let (fifo, reader, writer) = log_fifo(&dir);
    let mut server = Launch::new()
        .args(&["--workers", "1", "--graceful-timeout", "2"])
        .args(&["--error-logfile", &fifo])
        .start_unready();
    read_pipe_until(&reader, "Ready:");

    fill_pipe(&writer);
    for workers in [2, 3] {
        server.signal(Signal::SIGTTIN);
        server.wait_children(workers, secs(10));
    }
    // Both TTINs' records at least, counted across the turns the report itself was
    // dropped on (each of those made the count 1).
    let said = read_pipe_until(&reader, "error-log record(s) of the master's dropped");
    let line = said.lines().find(|l| l.contains("of the master's dropped"));
    let count = line.and_then(|l| l.split(" WARN ").nth(1)?.split(' ').next()?.parse().ok());
    assert!(count.is_some_and(|n: u32| n >= 2), "{line:?}");

    fill_pipe(&writer);
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(secs(20));
    assert_eq!(status.code(), Some(0), "{status}");
}

/// A record longer than a pipe takes in one write is cut to fit, as an access-log line
/// is, rather than written in pieces that other processes' lines could come between (or
/// cut off where the reader stopped, the next record run into it).
#[test]
fn an_error_log_record_too_long_for_a_pipe_is_cut_to_fit() {
    let dir = TempDir::new("long-record");
    let (fifo, reader, _writer) = log_fifo(&dir);
    let config = dir.join("app.toml");
    std::fs::write(&config, "workers = 1\n").unwrap();
    let config_arg = config.to_str().expect("a UTF-8 path");
    let server = Launch::new()
        .args(&["-c", config_arg, "--error-logfile", &fifo])
        .start_unready();
    read_pipe_until(&reader, "Ready:");
    let long = "x".repeat(6000);
    std::fs::write(&config, format!("graceful-timeout = \"{long}\"\n")).unwrap();
    server.signal(Signal::SIGHUP);
    let text = read_pipe_until(&reader, "[truncated]\n");
    let line = text
        .lines()
        .find(|l| l.contains("Reload failed"))
        .expect("the record");
    assert!(line.len() < 4096, "{} bytes", line.len());
    assert!(line.ends_with("xxx [truncated]"), "{line}");
}
