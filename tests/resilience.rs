//! Hard to hurt: what idle, slow, greedy and vanishing clients cost the server.
//!
//! Each test starts its own server and plays one kind of bad client against it, then checks
//! that the server still serves a normal client promptly and with the same worker (no
//! crash, no restart), and that the bad client's resources were let go:
//! - a thousand idle connections (silent, or kept alive) do not delay a new client;
//! - heads trickled one byte a second are cut at `--header-timeout` (slowloris);
//! - a worker out of file descriptors backs off instead of spinning, then serves again;
//! - a client that disconnects mid-request or mid-response costs only its connection;
//! - an idle kept-alive connection is closed after `--keep-alive`, and stalled heads and
//!   bodies get 408 and a close; a client that sends but never reads is cut at
//!   `--write-timeout`;
//! - a client's EOF is noticed when it comes, even together with its last bytes;
//! - with `--check-client-connection`, requests whose clients left while queued are
//!   skipped, never run; with `--queue-timeout`, requests that waited too long get 503;
//! - the master's metrics port (`--metrics-bind`) outlasts idle and malformed clients.
//!
//! Timings are printed (`--nocapture` shows them) and asserted with wide margins: the
//! claims are "within a second", the assertions allow for a loaded 2-core machine.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::client::{metric_sample, raw_connect, read_to_close, read_until, request};
use crate::util::{Launch, Server, TempDir, poll_until, proc_status, secs};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Raises this process's soft RLIMIT_NOFILE towards `want` (at most the hard limit);
/// servers spawned afterwards inherit it. Returns the soft limit now in force.
fn raise_nofile(want: u64) -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let target = want.min(hard);
    if soft >= target {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => target,
        Err(_) => soft,
    }
}

/// The only worker of a `--workers 1` server.
fn the_worker(server: &Server) -> u32 {
    server.wait_children(1, secs(10))[0]
}

/// How many sockets `pid` holds open.
fn sockets(pid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let links = dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok());
    links
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

/// CPU time `pid` has used (user + system), from /proc/PID/stat fields 14 and 15, which
/// count USER_HZ ticks (100 a second on Linux).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // After the name, which may hold anything, come fields 3 (state), 4, ... in order.
    let after_name = &stat[stat.rfind(')').expect("stat has a name") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |field: usize| fields[field - 3].parse::<u64>().expect("a tick count");
    ms((ticks(14) + ticks(15)) * 10)
}

/// `GET /` on a new connection: asserts a 200 and returns how long it took.
fn timed_get(server: &Server) -> Duration {
    let start = Instant::now();
    let response = server.get("/");
    assert_eq!(response.status, 200, "{response:?}");
    start.elapsed()
}

/// An IPv4 socket address as /proc/net/tcp shows it (address as a native-endian u32).
fn proc_net_addr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => String::new(),
    }
}

/// Whether the server has read everything sent on `stream`: our send queue and the
/// server socket's receive queue are both empty in /proc/net/tcp.
fn consumed(stream: &TcpStream) -> bool {
    let (Ok(ours), Ok(theirs)) = (stream.local_addr(), stream.peer_addr()) else {
        return false;
    };
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let queue = |from: SocketAddr, to: SocketAddr, field: usize| {
        let (from, to) = (proc_net_addr(from), proc_net_addr(to));
        let row = table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>());
        let row = row
            .into_iter()
            .find(|f| f.len() > 4 && f[1] == from && f[2] == to)?;
        let queues: Vec<&str> = row[4].split(':').collect();
        u64::from_str_radix(queues.get(field)?, 16).ok()
    };
    queue(ours, theirs, 0) == Some(0) && queue(theirs, ours, 1) == Some(0)
}

/// Waits (up to 10 s) until the server has read what was sent on `stream`.
fn wait_consumed(stream: &TcpStream) {
    let done = poll_until(secs(10), || consumed(stream).then_some(()));
    assert!(
        done.is_some(),
        "the server did not read what was sent within 10 s"
    );
}

/// The server's log must hold no error and no panic: a bad client is not a server error.
fn assert_no_errors(server: &Server) {
    let bad: Vec<String> = server
        .log()
        .into_iter()
        .filter(|l| l.contains(" ERROR ") || l.to_lowercase().contains("panic"))
        .collect();
    assert!(
        bad.is_empty(),
        "error lines in the log:\n{}",
        bad.join("\n")
    );
}

/// (a) A thousand idle connections do not delay a new client: neither a thousand silent
/// ones (the listener's TCP_DEFER_ACCEPT keeps them in the kernel until they send a
/// byte, `sys/sockopt.rs`) nor a thousand kept-alive ones that the worker's event loop
/// holds. The claim is "within a second"; the assertion allows 3 s for a loaded machine.
#[test]
fn a_thousand_idle_connections_do_not_delay_a_new_client() {
    const IDLE: usize = 1000;
    let limit = raise_nofile(4096);
    if limit < 2 * IDLE as u64 + 300 {
        eprintln!("skipped: RLIMIT_NOFILE is {limit}, too low for {IDLE} connections");
        return;
    }
    let server = Launch::new()
        .args(&["--workers", "1", "--worker-connections", "1100"])
        .args(&["--keep-alive", "60"])
        .start();
    let worker = the_worker(&server);
    let before = sockets(worker);
    let silent: Vec<TcpStream> = (0..IDLE).map(|_| raw_connect(server.addr())).collect();
    assert_prompt(timed_get(&server), "1000 silent connections");
    let kept: Vec<TcpStream> = (0..IDLE).map(|_| kept_alive(server.addr())).collect();
    let held = sockets(worker) - before;
    assert!(
        held >= IDLE,
        "the worker holds {held} of {IDLE} kept-alive connections"
    );
    assert_prompt(timed_get(&server), "1000 kept-alive connections");
    // None of the kept-alive ones was dropped to make room.
    let held = sockets(worker) - before;
    assert!(
        held >= IDLE,
        "the worker dropped kept-alive connections: {held} left"
    );
    drop((silent, kept));
}

/// A normal request took `took` beside `what`: promptly means within a second, asserted
/// as 3 s for a loaded machine.
fn assert_prompt(took: Duration, what: &str) {
    eprintln!("a new client was served in {took:?} beside {what}");
    assert!(took < secs(3), "a new client took {took:?} beside {what}");
}

/// A connection that has made one request and is now idle, kept alive by the server.
fn kept_alive(addr: SocketAddr) -> TcpStream {
    let mut stream = raw_connect(addr);
    stream
        .write_all(&request("GET", "/", &[], b""))
        .expect("send");
    let response = read_hello(&mut stream);
    assert!(
        response.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
    stream
}

/// A client sending its head one byte a second.
struct Trickler {
    stream: TcpStream,
    opened: Instant,
    sent: usize,
    got: Vec<u8>,
    /// When the server closed it, counted from its first byte.
    cut: Option<Duration>,
}

/// A head that never ends: the request line, then an endless field value.
const SLOW_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ";

impl Trickler {
    fn open(addr: SocketAddr) -> Trickler {
        let stream = raw_connect(addr);
        stream.set_nonblocking(true).expect("nonblocking");
        let mut t = Trickler {
            stream,
            opened: Instant::now(),
            sent: 0,
            got: Vec::new(),
            cut: None,
        };
        t.send_next();
        t
    }

    fn send_next(&mut self) {
        if self.cut.is_some() {
            return;
        }
        let byte = SLOW_HEAD.get(self.sent).copied().unwrap_or(b'a');
        match self.stream.write(&[byte]) {
            Ok(_) => self.sent += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => self.cut = Some(self.opened.elapsed()),
        }
    }

    /// Takes what the server sent, noting when it closed.
    fn poll(&mut self) {
        let mut chunk = [0u8; 1024];
        while self.cut.is_none() {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.cut = Some(self.opened.elapsed()),
                Ok(n) => self.got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => self.cut = Some(self.opened.elapsed()),
            }
        }
    }
}

/// (b) Slowloris: 500 heads trickled a byte a second are cut at `--header-timeout 2`,
/// counted from the first byte however steadily bytes arrive (408 or a plain close),
/// while a normal client keeps being served promptly.
#[test]
fn trickled_heads_are_cut_while_a_normal_client_is_served() {
    const SLOW: usize = 500;
    if raise_nofile(4096) < SLOW as u64 + 200 {
        eprintln!("skipped: RLIMIT_NOFILE too low for {SLOW} connections");
        return;
    }
    let server = Launch::new()
        .args(&["--workers", "2", "--header-timeout", "2"])
        .start();
    let mut slow: Vec<Trickler> = (0..SLOW).map(|_| Trickler::open(server.addr())).collect();
    let latencies = trickle_until_cut(&server, &mut slow, secs(15));
    let worst = latencies.iter().max().copied().unwrap_or_default();
    let count = latencies.len();
    eprintln!("{count} normal requests while heads trickled, the slowest in {worst:?}");
    assert_all_cut(&slow);
    assert!(count >= 10, "only {count} normal requests completed");
    assert!(
        worst < secs(2),
        "a normal request took {worst:?} while heads trickled"
    );
}

/// Every trickler was cut after the 2 s header timeout (not before), with a 408 or a
/// plain close and nothing else.
fn assert_all_cut(slow: &[Trickler]) {
    let cut: Vec<Duration> = slow.iter().filter_map(|t| t.cut).collect();
    let with_408 = slow
        .iter()
        .filter(|t| t.got.starts_with(b"HTTP/1.1 408 "))
        .count();
    let (first, last) = (cut.iter().min(), cut.iter().max());
    eprintln!(
        "{} of {} trickling clients cut after {first:?}..{last:?}, {with_408} with a 408",
        cut.len(),
        slow.len()
    );
    assert_eq!(
        cut.len(),
        slow.len(),
        "trickling clients still connected after 15 s"
    );
    let other = slow
        .iter()
        .find(|t| !t.got.is_empty() && !t.got.starts_with(b"HTTP/1.1 408 "));
    let other = other.map(|t| String::from_utf8_lossy(&t.got));
    assert!(other.is_none(), "a trickling client got {other:?}");
    assert!(
        cut.iter().all(|&d| d >= ms(1500)),
        "cut before the 2 s header timeout: {first:?}"
    );
}

/// Sends every open trickler its next byte each second and a normal request every
/// 100 ms, until every trickler is cut or `within` passes; returns the normal latencies.
fn trickle_until_cut(server: &Server, slow: &mut [Trickler], within: Duration) -> Vec<Duration> {
    let start = Instant::now();
    let mut next_byte = start + secs(1);
    let mut latencies = Vec::new();
    while start.elapsed() < within && slow.iter().any(|t| t.cut.is_none()) {
        if Instant::now() >= next_byte {
            slow.iter_mut().for_each(Trickler::send_next);
            next_byte += secs(1);
        }
        latencies.push(timed_get(server));
        slow.iter_mut().for_each(Trickler::poll);
        thread::sleep(ms(100));
    }
    latencies
}

/// Whether the `prlimit` program (util-linux) can be run.
fn have_prlimit() -> bool {
    let status = std::process::Command::new("prlimit")
        .arg("--version")
        .output();
    status.is_ok_and(|out| out.status.success())
}

/// (c) A worker out of file descriptors backs off (its CPU time barely moves while the
/// listener stays readable) and serves again as soon as descriptors free up.
#[test]
fn out_of_descriptors_a_worker_backs_off_then_serves_again() {
    if !have_prlimit() {
        eprintln!("skipped: no prlimit program");
        return;
    }
    let launch = Launch::new().wrapped(&["prlimit", "--nofile=40"]);
    let server = launch
        .args(&["--workers", "1", "--header-timeout", "60"])
        .start();
    let worker = the_worker(&server);
    // More partial requests than the worker has descriptors; the rest wait in the backlog,
    // so the listener stays readable the whole time.
    let fillers: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut s = raw_connect(server.addr());
            s.write_all(b"GET / HTTP/1.1\r\n").expect("send");
            s
        })
        .collect();
    server.wait_for_log("Too many open files", secs(10));
    let before = cpu_time(worker);
    thread::sleep(secs(2));
    let used = cpu_time(worker).saturating_sub(before);
    eprintln!("out of descriptors, the worker used {used:?} of CPU in 2 s");
    assert!(
        used < ms(300),
        "the worker used {used:?} of CPU in 2 s: spinning on accept"
    );
    drop(fillers);
    let took = timed_get(&server);
    server.wait_for_log("accepting again", secs(10));
    eprintln!("descriptors freed: served again in {took:?}");
    assert_eq!(the_worker(&server), worker, "the worker was replaced");
    assert_no_errors(&server);
}

/// The open-file limit is made to fit `--worker-connections` at start: raised within
/// the hard limit, and said when the hard limit is too low, rather than found under
/// load as accept failing with "Too many open files".
#[test]
fn the_open_file_limit_is_fitted_to_worker_connections() {
    if !have_prlimit() {
        eprintln!("skipped: no prlimit program");
        return;
    }
    let raised = Launch::new()
        .wrapped(&["prlimit", "--nofile=256:4096"])
        .args(&["--workers", "1", "--worker-connections", "1000"])
        .start();
    let soft = open_file_limit(&raised);
    assert!(soft >= 1000, "the worker's open-file limit is {soft}");
    assert!(
        !raised.log().iter().any(|l| l.contains(" WARN ")),
        "{:?}",
        raised.log()
    );

    let short = Launch::new()
        .wrapped(&["prlimit", "--nofile=256:256"])
        .args(&["--workers", "1", "--worker-connections", "1000"])
        .start();
    short.wait_for_log("--worker-connections 1000 needs about", secs(10));

    // Where bodies can be spooled, each connection may hold its spool file too.
    let spooling = Launch::new()
        .wrapped(&["prlimit", "--nofile=256:4096"])
        .args(&["--workers", "1", "--worker-connections", "1000"])
        .args(&["--limit-request-body", "2M"])
        .start();
    let soft = open_file_limit(&spooling);
    assert!(
        soft >= 2000,
        "the spooling worker's open-file limit is {soft}"
    );
}

/// A HUP that raises `--worker-connections` fits the open-file limit to it as a start
/// does: the new workers kept the old limit and ran out of descriptors under load.
#[test]
fn a_hup_that_raises_worker_connections_fits_the_open_file_limit() {
    if !have_prlimit() {
        eprintln!("skipped: no prlimit program");
        return;
    }
    let dir = TempDir::new("hup-nofile");
    let config = dir.join("br-serve.toml");
    std::fs::write(&config, "workers = 1\nworker-connections = 100\n").unwrap();
    let server = Launch::new()
        .wrapped(&["prlimit", "--nofile=256:4096"])
        .args(&["-c", config.to_str().unwrap()])
        .start();
    assert!(open_file_limit(&server) < 1000);
    std::fs::write(&config, "workers = 1\nworker-connections = 1000\n").unwrap();
    server.signal(nix::sys::signal::Signal::SIGHUP);
    server.wait_for_log("serving, generation 2", secs(10));
    let soft = poll_until(secs(10), || {
        Some(open_file_limit(&server)).filter(|&soft| soft >= 1000)
    });
    assert!(
        soft.is_some(),
        "the new worker's limit: {}",
        open_file_limit(&server)
    );
}

/// The soft open-file limit of a one-worker server's worker.
fn open_file_limit(server: &Server) -> u64 {
    let worker = the_worker(server);
    let limits = std::fs::read_to_string(format!("/proc/{worker}/limits")).expect("limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files"));
    line.and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .expect("the worker's open-file limit")
}

/// Requests a client abandons half-way: (what, bytes sent before vanishing).
fn partial_requests() -> Vec<(&'static str, Vec<u8>)> {
    let body = |framing: &str, part: &str| {
        format!("POST /echo HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n{part}").into_bytes()
    };
    vec![
        ("partial request line", b"GET /hea".to_vec()),
        (
            "partial head",
            b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1".to_vec(),
        ),
        (
            "partial Content-Length body",
            body("Content-Length: 1000", "0123456789"),
        ),
        (
            "partial chunked body",
            body("Transfer-Encoding: chunked", "a\r\n01234"),
        ),
        (
            "waiting for 100 Continue",
            body("Expect: 100-continue\r\nContent-Length: 1000", ""),
        ),
    ]
}

/// Closes `stream` with a reset (SO_LINGER 0) instead of a FIN.
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// A connection whose receive buffer is small (4 KiB asked), so that what the server
/// writes beyond it stays in the server's kernel until the client reads.
fn small_window_connect(addr: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .connect_timeout(&addr.into(), secs(10))
        .expect("connect");
    socket.into()
}

/// A client that asks for a large response, reads a little of it and vanishes, while
/// the server still has most of it to write (a small receive buffer keeps it stuck).
fn vanish_mid_response(addr: SocketAddr) {
    let mut stream = small_window_connect(addr);
    let body = vec![b'x'; 1 << 20];
    stream
        .write_all(&request("POST", "/echo", &[], &body))
        .expect("send");
    let mut first = [0u8; 64];
    stream
        .set_read_timeout(Some(secs(10)))
        .expect("set_read_timeout");
    let got = stream.read(&mut first).expect("the response starts");
    assert!(
        first[..got].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&first[..got])
    );
    // Unread data in our buffer: closing sends a reset.
    drop(stream);
}

/// (d) Clients that disconnect mid-request (FIN or reset) or mid-response cost only their
/// connection: the same worker keeps serving, logs no error, and lets every socket go.
#[test]
fn a_client_vanishing_mid_request_or_mid_response_costs_only_its_connection() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    let worker = the_worker(&server);
    assert_eq!(server.get("/pid").text().trim(), worker.to_string());
    let baseline = sockets(worker);
    for (what, bytes) in partial_requests() {
        for abrupt in [false, true] {
            let mut stream = raw_connect(server.addr());
            stream
                .write_all(&bytes)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            // The server has the partial request in hand before the client goes.
            wait_consumed(&stream);
            if abrupt {
                reset(stream)
            } else {
                drop(stream)
            }
            assert_eq!(
                server.get("/pid").text().trim(),
                worker.to_string(),
                "after {what}"
            );
        }
    }
    vanish_mid_response(server.addr());
    assert_eq!(
        server.get("/pid").text().trim(),
        worker.to_string(),
        "after a vanished reader"
    );
    let released = poll_until(secs(10), || (sockets(worker) <= baseline).then_some(()));
    assert!(
        released.is_some(),
        "the worker holds {} sockets, {baseline} before",
        sockets(worker)
    );
    assert_eq!(server.children(), [worker], "the worker was replaced");
    assert_no_errors(&server);
}

/// `--keep-alive 0` is keep-alive off, as in gunicorn and nginx: the answer says
/// `Connection: close` and the connection closes, rather than promising a connection
/// and closing it under the client's next request.
#[test]
fn keep_alive_zero_closes_after_each_answer() {
    let server = Launch::new()
        .args(&["--workers", "1", "--keep-alive", "0"])
        .start();
    let mut conn = server.connect();
    conn.send(&request("GET", "/", &[], b""));
    let answer = conn.read_response(secs(10));
    assert_eq!(answer.status, 200);
    assert!(answer.has_token("connection", "close"), "{answer:?}");
    conn.expect_closed(secs(10));
}

/// A worker full of idle kept-alive connections closes the oldest for a newcomer that
/// waits, and says so, as nginx does when its worker_connections run out: the newcomer
/// waited for `--keep-alive` (60 s here) with nothing in the log.
#[test]
fn a_full_worker_closes_idle_kept_connections_for_newcomers() {
    let server = Launch::new()
        .args(&[
            "--workers",
            "1",
            "--worker-connections",
            "5",
            "--keep-alive",
            "60",
        ])
        .start();
    let mut kept: Vec<_> = (0..5).map(|_| server.connect()).collect();
    for conn in &mut kept {
        conn.send(&request("GET", "/", &[], b""));
        assert_eq!(conn.read_response(secs(10)).status, 200);
    }
    let since = Instant::now();
    let mut newcomer = server.connect();
    newcomer.send(&request("GET", "/", &[], b""));
    assert_eq!(newcomer.read_response(secs(10)).status, 200);
    eprintln!("the newcomer was answered after {:?}", since.elapsed());
    server.wait_for_log("--worker-connections 5 are not enough", secs(5));
    // The oldest idle connection made room.
    kept[0].expect_closed(secs(5));
}

/// A one-worker server with room for 5 connections (and a `--header-timeout` of 60 s,
/// and the `extra` flags), every place held by a connection that has sent `sent`; then
/// a newcomer sending `first` and a request, answered once the worker has made room for
/// it, which it says in its log. Returns the server and the holders.
fn full_worker_answers_a_newcomer(
    extra: &[&str],
    sent: &[u8],
    first: &[u8],
) -> (Server, Vec<TcpStream>) {
    let server = Launch::new()
        .args(&["--workers", "1", "--worker-connections", "5"])
        .args(&["--header-timeout", "60"])
        .args(extra)
        .start();
    let holders: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut stream = raw_connect(server.addr());
            stream.write_all(sent).expect("the holder's bytes");
            stream
        })
        .collect();
    holders.iter().for_each(wait_consumed);
    let since = Instant::now();
    let mut newcomer = server.connect();
    newcomer.send(&[first, &request("GET", "/", &[], b"")].concat());
    assert_eq!(newcomer.read_response(secs(15)).status, 200);
    eprintln!("the newcomer was answered after {:?}", since.elapsed());
    server.wait_for_log("--worker-connections 5 are not enough", secs(5));
    (server, holders)
}

/// A worker full of connections whose heads arrive a byte at a time (slowloris) closes
/// them for a newcomer once they have taken over a second, with a 408: they held every
/// place until `--header-timeout` (60 s here), and the newcomer waited that long.
#[test]
fn a_full_worker_closes_slow_heads_for_newcomers() {
    let (_server, mut slow) = full_worker_answers_a_newcomer(&[], b"GET / HTTP/1.1\r\n", b"");
    let (answer, closed) = read_to_close(&mut slow[0], secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed && answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// A worker full of uploads sent a byte now and then (or stalled part-way) closes them
/// for a newcomer once they have arrived slower than 500 bytes a second over a whole
/// window of 5 s, with a 408: each byte put `--body-timeout` off, so they held every
/// place for as long as their clients liked (a probe's newcomer waited 35 s and gave
/// up), while slow heads were closed in a second.
#[test]
fn a_full_worker_closes_slow_uploads_for_newcomers() {
    let upload = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nx";
    let (_server, mut slow) =
        full_worker_answers_a_newcomer(&["--body-timeout", "60"], upload, b"");
    let (answer, closed) = read_to_close(&mut slow[0], secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed && answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// Sends an upload's head now and, `after` that, its `len` bytes of body in pieces, at
/// `rate` bytes a second, from a thread; returns the stream once the body is sent.
fn paced_upload(
    mut stream: TcpStream,
    after: Duration,
    len: usize,
    rate: usize,
) -> thread::JoinHandle<TcpStream> {
    thread::spawn(move || {
        let fields = format!("Content-Length: {len}");
        let head = request("PUT", "/echo", &[&fields], b"");
        stream.write_all(&head).expect("the head");
        thread::sleep(after);
        let (piece, started) = (rate / 10, Instant::now());
        for sent in (0..len).step_by(piece) {
            let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
            thread::sleep(due.saturating_duration_since(Instant::now()));
            stream
                .write_all(&vec![b'u'; piece.min(len - sent)])
                .expect("the body");
        }
        stream
    })
}

/// An upload is judged slow only over a window it spans whole: one that a kept-alive
/// connection begins after four idle seconds, at four times the minimum rate, is not
/// closed for a newcomer. Its window, begun at the connection's accept, held the idle
/// time and a second of the upload, under 500 bytes a second in all, and it was answered
/// 408 while the newcomer took its place.
#[test]
fn a_full_worker_judges_an_upload_on_its_own_time() {
    let server = Launch::new()
        .args(&["--workers", "1", "--worker-connections", "5"])
        .args(&["--keep-alive", "60"])
        .start();
    let mut kept = raw_connect(server.addr());
    kept.write_all(&request("GET", "/", &[], b""))
        .expect("a request");
    let (answer, _) = read_until(&mut kept, secs(10), |b| b.ends_with(b"Hello, World!\n"));
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    let since = Instant::now();
    // Four uploads at ten times the minimum fill the worker for about 9 s.
    let busy: Vec<_> = (0..4)
        .map(|_| paced_upload(raw_connect(server.addr()), Duration::ZERO, 45_000, 5_000))
        .collect();
    thread::sleep(Duration::from_secs(4).saturating_sub(since.elapsed()));
    let upload = paced_upload(kept, Duration::ZERO, 8_000, 2_000);
    let mut newcomer = raw_connect(server.addr());
    newcomer
        .write_all(&request("GET", "/", &[], b""))
        .expect("the newcomer's request");
    let mut kept = upload.join().expect("the upload");
    let (answer, _) = read_until(&mut kept, secs(20), |b| b.ends_with(&[b'u'; 8]));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for upload in busy {
        let mut stream = upload.join().expect("an upload");
        let (answer, _) = read_until(&mut stream, secs(20), |b| b.ends_with(&[b'u'; 8]));
        assert!(answer.starts_with(b"HTTP/1.1 200"));
    }
    let (answer, _) = read_until(&mut newcomer, secs(20), |b| b.ends_with(b"Hello, World!\n"));
    assert!(answer.starts_with(b"HTTP/1.1 200"));
}

/// A request found slow at the end of a window is not closed for a newcomer once its
/// client has picked up speed: an upload that sent nothing for its first five seconds,
/// then 20 KB a second, was answered 408 a second into its fast part, the verdict
/// standing until the next window's end.
#[test]
fn a_full_worker_spares_an_upload_that_picked_up_speed() {
    let server = Launch::new()
        .args(&["--workers", "1", "--worker-connections", "5"])
        .start();
    let since = Instant::now();
    let late = Duration::from_millis(5_500);
    let upload = paced_upload(raw_connect(server.addr()), late, 60_000, 20_000);
    let busy: Vec<_> = (0..4)
        .map(|_| paced_upload(raw_connect(server.addr()), Duration::ZERO, 50_000, 5_000))
        .collect();
    thread::sleep(Duration::from_secs(6).saturating_sub(since.elapsed()));
    let mut newcomer = raw_connect(server.addr());
    newcomer
        .write_all(&request("GET", "/", &[], b""))
        .expect("the newcomer's request");
    let mut upload = upload.join().expect("the upload, never cut");
    let (answer, _) = read_until(&mut upload, secs(20), |b| b.ends_with(&[b'u'; 8]));
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    for upload in busy {
        let mut stream = upload.join().expect("an upload");
        let (answer, _) = read_until(&mut stream, secs(20), |b| b.ends_with(&[b'u'; 8]));
        assert!(answer.starts_with(b"HTTP/1.1 200"));
    }
    let hello = |b: &[u8]| b.ends_with(b"Hello, World!\n");
    let (answer, _) = read_until(&mut newcomer, secs(20), hello);
    assert!(answer.starts_with(b"HTTP/1.1 200"));
}

/// An upload stalled behind an answer its client does not read (a small receive
/// window keeps the answer in the server's kernel) is closed for a newcomer as any
/// stalled upload is: sending a body never waits on reading, and exempting it let such
/// connections hold every place of a full worker past the newcomer's patience. So is
/// one that expects a `100 Continue` (stuck behind that answer) but has sent part of its
/// body all the same, or the beginning of a chunk-size line, which is no body yet (a
/// line of zeros dribbled a byte at a time held a place for a day).
#[test]
fn a_full_worker_closes_a_stalled_upload_behind_an_unread_answer() {
    let plain = request("PUT", "/echo", &["Content-Length: 1000"], b"");
    let fields = ["Content-Length: 1000", "Expect: 100-continue"];
    let unasked = [&request("PUT", "/echo", &fields, b"")[..], b"y"].concat();
    let chunked = ["Transfer-Encoding: chunked", "Expect: 100-continue"];
    let sized = [&request("PUT", "/echo", &chunked, b"")[..], b"0"].concat();
    for second in [plain, unasked, sized] {
        let server = Launch::new()
            .args(&["--workers", "1", "--worker-connections", "5"])
            .args(&["--body-timeout", "60"])
            .start();
        let first = request("PUT", "/echo", &[], &[b'x'; 12_000]);
        let holders: Vec<TcpStream> = (0..5)
            .map(|_| {
                let mut stream = small_window_connect(server.addr());
                let both = [&first[..], &second].concat();
                stream.write_all(&both).expect("the requests");
                stream
            })
            .collect();
        holders.iter().for_each(wait_consumed);
        let mut newcomer = server.connect();
        newcomer.send(&request("GET", "/", &[], b""));
        assert_eq!(newcomer.read_response(secs(15)).status, 200);
        server.wait_for_log("--worker-connections 5 are not enough", secs(5));
    }
}

/// A request that waits for its `100 Continue` behind an answer its client reads slowly
/// is not judged on that wait: a window it spent waiting, at either end, gives no
/// verdict. The verdict of one such window stood, and the request was answered 408 as
/// soon as the `100 Continue` left the kernel, before its client could send a byte.
#[test]
fn a_full_worker_does_not_judge_a_wait_for_continue() {
    let server = Launch::new()
        .args(&["--workers", "1", "--worker-connections", "5"])
        .start();
    let mut waiter = small_window_connect(server.addr());
    let busy: Vec<_> = (0..4)
        .map(|_| paced_upload(raw_connect(server.addr()), Duration::ZERO, 90_000, 5_000))
        .collect();
    // An answer the server's kernel takes whole, leaving the worker's queue empty.
    let first = request("PUT", "/echo", &[], &[b'x'; 12_000]);
    let fields = ["Content-Length: 20000", "Expect: 100-continue"];
    let second = request("PUT", "/echo", &fields, b"");
    waiter
        .write_all(&[&first[..], &second].concat())
        .expect("the requests");
    let mut newcomer = server.connect();
    newcomer.send(&request("GET", "/", &[], b""));
    // The first answer, read at 1 KB a second: 12 s, two windows and more.
    let continued = |b: &[u8]| b.ends_with(b"HTTP/1.1 100 Continue\r\n\r\n");
    let mut seen = Vec::new();
    let started = Instant::now();
    while !continued(&seen) {
        assert!(started.elapsed() < secs(40), "no 100 Continue");
        let mut piece = [0u8; 100];
        let n = waiter.read(&mut piece).expect("the first answer");
        assert!(
            n > 0,
            "closed: {}",
            String::from_utf8_lossy(&seen[seen.len().saturating_sub(200)..])
        );
        seen.extend_from_slice(&piece[..n]);
        thread::sleep(Duration::from_millis(100));
    }
    // A client that takes a second to begin its body.
    thread::sleep(Duration::from_secs(1));
    waiter.write_all(&[b'y'; 20_000]).expect("the body");
    let (answer, _) = read_until(&mut waiter, secs(20), |b| b.ends_with(&[b'y'; 8]));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    for upload in busy {
        upload.join().expect("an upload");
    }
    assert_eq!(newcomer.read_response(secs(20)).status, 200);
}

/// `--body-timeout` does not run while a request waits for its `100 Continue` behind an
/// answer its client is still taking from the kernel: the body cannot come before the
/// client has read the 100. The 408 went out right behind it, the answer ahead having
/// left the worker for the kernel seconds before, before the client could send a byte.
#[test]
fn a_wait_for_continue_behind_a_slow_reader_is_no_body_stall() {
    let server = Launch::new()
        .args(&["--workers", "1", "--body-timeout", "2"])
        .start();
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(64 << 10).expect("SO_RCVBUF");
    socket
        .connect_timeout(&server.addr().into(), secs(10))
        .expect("connect");
    let mut waiter: TcpStream = socket.into();
    let first = request("GET", "/stream?kib=2000", &[], b"");
    let fields = ["Content-Length: 5", "Expect: 100-continue"];
    let second = request("PUT", "/echo", &fields, b"");
    waiter
        .write_all(&[&first[..], &second].concat())
        .expect("the requests");
    // The stream, read 100 KB at a time, ten times a second at most: seconds longer than
    // the body timeout.
    let continued = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut seen = Vec::new();
    let started = Instant::now();
    while !seen.windows(continued.len()).any(|w| w == continued) {
        assert!(started.elapsed() < secs(60), "no 100 Continue");
        let mut piece = vec![0u8; 100_000];
        let n = waiter.read(&mut piece).expect("the stream");
        assert!(n > 0, "closed after {:?}", started.elapsed());
        seen.extend_from_slice(&piece[..n]);
        thread::sleep(Duration::from_millis(100));
    }
    let tail = String::from_utf8_lossy(&seen[seen.len().saturating_sub(200)..]);
    assert!(!tail.contains("408"), "{tail}");
    waiter.write_all(b"hello").expect("the body");
    let (answer, _) = read_until(&mut waiter, secs(20), |b| b.ends_with(b"hello"));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Connections that begin no request, sending only the blank lines allowed before one,
/// are closed for a newcomer too once they have held their place a second: they were
/// never counted, so 2 bytes every few seconds held each place (a blank line put the
/// deadline off each time), and the newcomer waited with nothing in the log.
#[test]
fn a_full_worker_closes_connections_that_begin_no_request_for_newcomers() {
    full_worker_answers_a_newcomer(&[], b"\r\n", b"");
}

/// With `--proxy-protocol`, connections holding part of a PROXY header (which a
/// balancer sends whole) have begun no request either: they held every place until
/// `--header-timeout`, and the newcomer from the balancer waited that long.
#[test]
fn a_full_worker_closes_partial_proxy_headers_for_newcomers() {
    let header = b"PROXY TCP4 192.0.2.9 192.0.2.1 5000 80\r\n";
    full_worker_answers_a_newcomer(&["--proxy-protocol"], b"PROXY TCP4 1", header);
}

/// Out of descriptors before `--worker-connections`, a worker makes room the same way:
/// clients idling for `--keep-alive` (60 s here) held every descriptor, and the
/// connections behind them in the accept queue waited that long for an answer.
#[test]
fn a_worker_out_of_descriptors_closes_idle_kept_connections_for_newcomers() {
    if !have_prlimit() {
        eprintln!("skipped: no prlimit program");
        return;
    }
    let server = Launch::new()
        .wrapped(&["prlimit", "--nofile=40"])
        .args(&["--workers", "1", "--keep-alive", "60"])
        .start();
    // More clients than the worker has descriptors, each kept alive after its answer.
    let mut clients: Vec<_> = (0..60).map(|_| server.connect()).collect();
    for conn in &mut clients {
        conn.send(&request("GET", "/", &[], b""));
    }
    server.wait_for_log("Too many open files", secs(10));
    for conn in &mut clients {
        assert_eq!(conn.read_response(secs(15)).status, 200);
    }
    server.wait_for_log("out of file descriptors: ", secs(5));
    // Running out again each time room is made is one episode, said once (it was said,
    // and "accepting again", each time).
    let said = server.log_count("accept: Too many open files");
    assert_eq!(said, 1, "{:#?}", server.log());
}

/// (e) A kept-alive connection left idle is closed by the server after `--keep-alive 1`
/// (about a second), without sending anything more.
#[test]
fn an_idle_kept_alive_connection_is_closed_after_keep_alive() {
    let server = Launch::new()
        .args(&["--workers", "1", "--keep-alive", "1"])
        .start();
    let mut stream = kept_alive(server.addr());
    let idle_since = Instant::now();
    let (after, closed) = read_to_close(&mut stream, secs(10));
    let idle = idle_since.elapsed();
    eprintln!("the kept-alive connection was closed after {idle:?} idle");
    assert!(closed, "a kept-alive connection still open after 10 s idle");
    assert!(
        after.is_empty(),
        "sent on an idle connection: {:?}",
        String::from_utf8_lossy(&after)
    );
    assert!(
        idle >= ms(800) && idle < secs(3),
        "closed after {idle:?} idle, want about 1 s"
    );
}

/// A client that sends its whole body before it reads (Python's http.client, most
/// clients without `Expect: 100-continue`) gets the 413 for a body over the limit, or an
/// answer made before its body was read: the server reads the rest of the announced body
/// (of a chunked one, as much), as nginx does, where it closed after 64 KiB and reset the
/// client in mid-send (a broken pipe, the answer never read).
#[test]
fn a_refused_body_is_taken_in_so_its_client_reads_the_answer() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    let mut stream = raw_connect(server.addr());
    stream.set_write_timeout(Some(secs(30))).expect("timeout");
    let body = vec![b'x'; 32 << 20];
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(&body).expect("the upload was cut");
    let (answer, _) = read_to_close(&mut stream, secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer:?}");
    // Chunked, its length unknown until the limit is passed.
    let mut stream = raw_connect(server.addr());
    stream.set_write_timeout(Some(secs(30))).expect("timeout");
    let head = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).expect("send the head");
    let chunk = [b"100000\r\n".as_slice(), &body[..1 << 20], b"\r\n"].concat();
    for _ in 0..32 {
        stream
            .write_all(&chunk)
            .expect("the chunked upload was cut");
    }
    let (answer, _) = read_to_close(&mut stream, secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer:?}");
    // Chunked, and refused before its body is read (the demo's 405 for POST /): taken in
    // as far, where it was closed after 64 KiB.
    let mut stream = raw_connect(server.addr());
    stream.set_write_timeout(Some(secs(30))).expect("timeout");
    let head = "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).expect("send the head");
    for _ in 0..8 {
        stream
            .write_all(&chunk)
            .expect("the refused upload was cut");
    }
    stream
        .write_all(b"0\r\n\r\n")
        .expect("the refused upload was cut");
    let (answer, _) = read_to_close(&mut stream, secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer:?}");
}

/// An empty line after a request (old clients sent one after a POST body; RFC 9112 §2.2
/// lets a server ignore it) does not begin a request: the connection stays idle and is
/// closed quietly at `--keep-alive`. It used to count as a head's first byte, answered
/// with a 408 at `--header-timeout` for a request never sent.
#[test]
fn an_empty_line_after_a_request_leaves_the_connection_idle() {
    let server = Launch::new()
        .args(&[
            "--workers",
            "1",
            "--keep-alive",
            "1",
            "--header-timeout",
            "5",
        ])
        .start();
    let mut stream = kept_alive(server.addr());
    stream.write_all(b"\r\n").expect("send");
    let (after, closed) = read_to_close(&mut stream, secs(20));
    assert!(
        after.is_empty(),
        "sent after an empty line: {:?}",
        String::from_utf8_lossy(&after)
    );
    assert!(closed, "the connection was still open after 20 s");
    // Still a request's allowed prefix: the next request after it is answered.
    let mut stream = kept_alive(server.addr());
    stream
        .write_all(&[b"\r\n".as_slice(), &request("GET", "/", &[], b"")].concat())
        .expect("send");
    assert!(read_hello(&mut stream).starts_with(b"HTTP/1.1 200 "));
}

/// A client that stops reading its answer is cut at `--write-timeout`, even when it keeps
/// sending: each byte it sent used to start the write timeout over, and a byte a second
/// held the connection (its slot and its queued answer) forever. Over a Unix socket,
/// whose buffer does not grow, a 300 kB file leaves part of the answer queued in the
/// worker but less than the 256 KiB at which it stops reading.
#[test]
fn a_client_that_sends_but_never_reads_is_cut_at_write_timeout() {
    let dir = crate::util::TempDir::new("unread");
    std::fs::create_dir(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/file.bin"), vec![b'x'; 300_000]).unwrap();
    let (root, socket) = (dir.join("www"), dir.join("s.sock"));
    let server = Launch::new()
        .args(&[
            "--workers",
            "1",
            "--write-timeout",
            "1",
            "--header-timeout",
            "30",
        ])
        .args(&["--static", root.to_str().unwrap()])
        .args(&["--bind", &format!("unix:{}", socket.display())])
        .start();
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    stream
        .write_all(&request("GET", "/file.bin", &[], b""))
        .unwrap();
    let since = Instant::now();
    // A byte every 200 ms, never reading, until a send finds the connection closed.
    let cut = poll_until(secs(20), || {
        thread::sleep(ms(200));
        stream.write_all(b"G").is_err().then(|| since.elapsed())
    });
    let cut = cut.expect("the connection was still open after 20 s of sending");
    eprintln!("a client sending but not reading was cut after {cut:?}");
    assert_eq!(server.get("/").status, 404, "the server still serves");
}

/// The answer to HEAD sends no body, so the grace a large answer's client gets to take
/// the last of it from the kernel does not apply: an idle connection after `HEAD` of a
/// 100 kB file was kept two `--keep-alive` periods, not one.
#[test]
fn an_idle_connection_after_head_of_a_large_file_is_closed_after_keep_alive() {
    let dir = crate::util::TempDir::new("head-large");
    std::fs::create_dir(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/large.bin"), vec![b'x'; 100_000]).unwrap();
    let server = Launch::new()
        .args(&["--workers", "1", "--keep-alive", "3"])
        .args(&["--static", dir.join("www").to_str().unwrap()])
        .start();
    let mut stream = raw_connect(server.addr());
    stream
        .write_all(&request("HEAD", "/large.bin", &[], b""))
        .unwrap();
    let ended = |bytes: &[u8]| bytes.windows(4).any(|w| w == b"\r\n\r\n");
    let (head, _) = read_until(&mut stream, secs(10), ended);
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let idle_since = Instant::now();
    let (_, closed) = read_to_close(&mut stream, secs(20));
    let idle = idle_since.elapsed();
    eprintln!("closed after {idle:?} idle, after HEAD of a large file");
    assert!(closed, "still open after 20 s idle");
    assert!(
        idle < ms(5500),
        "closed after {idle:?} idle, want about 3 s"
    );
}

/// (f) A head or a body that stalls gets 408 with `Connection: close` and a Date after
/// `--header-timeout 1` / `--body-timeout 1`, then the connection is closed.
#[test]
fn stalled_heads_and_bodies_get_408_and_a_close() {
    let args = [
        "--workers",
        "1",
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
    ];
    let server = Launch::new().args(&args).start();
    let post = |framing: &str, part: &str| {
        format!("POST /echo HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n{part}")
    };
    let cases = [
        ("head", "GET / HTTP/1.1\r\nHost: t\r\n".to_string()),
        ("Content-Length body", post("Content-Length: 10", "abc")),
        (
            "chunked body",
            post("Transfer-Encoding: chunked", "5\r\nhel"),
        ),
    ];
    thread::scope(|scope| {
        for (what, wire) in &cases {
            let addr = server.addr();
            scope.spawn(move || stalled_gets_408(addr, what, wire.as_bytes()));
        }
    });
}

fn stalled_gets_408(addr: SocketAddr, what: &str, wire: &[u8]) {
    let mut stream = raw_connect(addr);
    stream.write_all(wire).expect("send");
    let since = Instant::now();
    let (bytes, closed) = read_to_close(&mut stream, secs(10));
    let took = since.elapsed();
    let text = String::from_utf8_lossy(&bytes);
    eprintln!("stalled {what}: {:?} after {took:?}", text.lines().next());
    assert!(
        text.starts_with("HTTP/1.1 408 "),
        "stalled {what}: {text:?}"
    );
    assert!(
        text.contains("\r\nConnection: close\r\n") && text.contains("\r\nDate: "),
        "{what}: {text:?}"
    );
    assert!(closed, "stalled {what}: not closed after the 408");
    assert!(
        took >= ms(700) && took < secs(5),
        "stalled {what}: 408 after {took:?}, want about 1 s"
    );
}

/// Timeouts count what the client did, not how long the worker was busy: a kept-alive
/// connection and a half-sent head whose bytes arrive, in time, while the only worker is
/// in a 4 s handler are answered 200 once it is free, although their `--keep-alive` and
/// `--header-timeout` (2 s) have passed by then. (They used to be closed and answered
/// 408: the deadline was checked before the bytes waiting in the kernel were read.)
#[test]
fn bytes_arriving_during_a_long_handler_are_in_time() {
    let timeouts = ["--keep-alive", "2", "--header-timeout", "2"];
    let server = Launch::new()
        .args(&["--workers", "1"])
        .args(&timeouts)
        .start();
    let mut kept = raw_connect(server.addr());
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    read_hello(&mut kept);
    let mut half = raw_connect(server.addr());
    half.write_all(b"GET / HTTP/1.1\r\n").expect("send");
    wait_consumed(&half);
    let _busy = server.sleeper(4000);
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    half.write_all(b"Host: t\r\n\r\n").expect("send");
    for (what, stream) in [("kept-alive", &mut kept), ("half-sent", &mut half)] {
        let answer = String::from_utf8_lossy(&read_hello(stream)).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200 "), "{what}: {answer:?}");
    }
}

/// RFC 9112 §9.6: a connection the server closes after its response (here the client
/// asked, with `Connection: close`) ends in a FIN, not a reset, also when the client sent
/// more while the handler ran: a reset can destroy the response before it is read.
#[test]
fn closing_with_input_that_came_during_the_handler_is_a_fin() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    let mut stream = raw_connect(server.addr());
    stream
        .write_all(b"GET /sleep?ms=1000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    wait_consumed(&stream);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    stream.set_read_timeout(Some(secs(10))).expect("timeout");
    let mut answer = Vec::new();
    let end = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(!text.contains("Hello"), "answered after close: {text}");
    assert!(end.is_ok(), "the connection ended in {end:?}, not a FIN");
}

/// A client's EOF is noticed when it arrives, also when it arrives together with the
/// client's last bytes while the worker is busy, so both reach the worker as one
/// edge-triggered event: an unfinished request is then dropped at once and unanswered,
/// and a finished one is answered and its connection closed, instead of either waiting
/// for a timeout (30 s here) and, for the unfinished ones, answering 408 to nobody.
#[test]
fn an_eof_arriving_with_the_last_bytes_is_noticed_at_once() {
    let post = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n";
    let cases = [
        (
            "an unfinished head",
            "GET / HTTP/1.1\r\n",
            "Host: t\r\n",
            false,
        ),
        ("an unfinished body", post, "hello", false),
        (
            "a finished request",
            "GET / HTTP/1.1\r\n",
            "Host: t\r\n\r\n",
            true,
        ),
    ];
    // In parallel, a server each: a failure waits out the whole read deadline.
    let failures: Vec<String> = thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|&(what, first, last, answered)| {
                scope.spawn(move || eof_case(what, (first, last), answered))
            })
            .collect();
        runs.into_iter()
            .filter_map(|run| run.join().expect("case thread").err())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "the client's EOF was not noticed:\n{}",
        failures.join("\n")
    );
}

/// One case of the test above: `Err` says what went wrong.
fn eof_case(what: &str, (first, last): (&str, &str), answered: bool) -> Result<(), String> {
    let timeouts = [
        "--keep-alive",
        "30",
        "--header-timeout",
        "30",
        "--body-timeout",
        "30",
    ];
    let server = Launch::new()
        .args(&["--workers", "1"])
        .args(&timeouts)
        .start();
    let (bytes, closed, took) =
        last_bytes_with_eof(server.addr(), first.as_bytes(), last.as_bytes());
    assert_no_errors(&server);
    let text = String::from_utf8_lossy(&bytes);
    eprintln!(
        "{what}, then EOF while the worker was busy: closed {closed} after {took:?}, {:?}",
        text.lines().next()
    );
    let right_answer = if answered {
        text.starts_with("HTTP/1.1 200 ")
    } else {
        bytes.is_empty()
    };
    match closed && took < secs(3) && right_answer {
        true => Ok(()),
        false => Err(format!(
            "{what}: closed {closed} after {took:?}, got {text:?}"
        )),
    }
}

/// `--check-client-connection`: requests whose clients left while a busy worker kept them
/// waiting are skipped. The application never runs them (the metrics count them as
/// abandoned, not answered), the access log says 499 as nginx's does, nothing is sent, and
/// the worker is free for the next client at once. Without the flag a request followed by
/// its client's FIN is answered (the EOF case above).
#[test]
fn requests_whose_clients_left_are_skipped_with_check_client_connection() {
    let flags = ["--check-client-connection", "--metrics-path", "/metrics"];
    let server = Launch::new()
        .args(&["--workers", "1", "--access-logfile", "-"])
        .args(&flags)
        .start();
    let mut busy = raw_connect(server.addr());
    busy.write_all(b"GET /sleep?ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    wait_consumed(&busy);
    // Two ways to leave while queued: a plain close, and a shutdown after two pipelined
    // requests (a half-closing client is taken for gone too, as unicorn does).
    let mut closed = raw_connect(server.addr());
    closed
        .write_all(b"GET /?closed HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    drop(closed);
    let mut half = raw_connect(server.addr());
    let pair = "GET /?half HTTP/1.1\r\nHost: t\r\n\r\nGET /?half2 HTTP/1.1\r\nHost: t\r\n\r\n";
    half.write_all(pair.as_bytes()).expect("send");
    half.shutdown(std::net::Shutdown::Write).expect("shutdown");

    let (answer, _) = read_until(&mut busy, secs(10), |b| b.len() >= 13);
    assert!(answer.starts_with(b"HTTP/1.1 200 "), "{answer:?}");
    let (bytes, closed_by_server) = read_to_close(&mut half, secs(8));
    assert!(closed_by_server && bytes.is_empty(), "{bytes:?}");
    for target in ["/?closed", "/?half"] {
        server.wait_for_log(&format!("\"GET {target} HTTP/1.1\" 499 "), secs(10));
    }
    let scrape = server.get("/metrics").text();
    assert_eq!(
        metric_sample::<u64>(&scrape, "br_serve_requests_abandoned_total"),
        2,
        "{scrape}"
    );
    // Only the /sleep request reached the application.
    assert_eq!(
        metric_sample::<u64>(&scrape, "br_serve_requests_total"),
        1,
        "{scrape}"
    );
    assert_eq!(server.get("/").status, 200);
    assert_no_errors(&server);
}

/// `--queue-timeout`: a request that waited for a worker longer than that is answered 503
/// at once, with `Connection: close` and `Retry-After`, without reaching the application; one that did not
/// wait is served as usual.
#[test]
fn requests_that_waited_past_queue_timeout_get_503() {
    let server = Launch::new()
        .args(&["--workers", "1", "--queue-timeout", "1"])
        .args(&["--metrics-path", "/metrics"])
        .start();
    // Sent once the only worker is in a 2.5 s request: it waits about that long.
    let _busy = server.sleeper(2500);
    let mut waiting = server.connect();
    waiting.send(&request("GET", "/?waited", &[], b""));
    let r = waiting.read_response(secs(10));
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    let scrape = server.get("/metrics").text();
    let shed = metric_sample::<u64>(&scrape, "br_serve_requests_shed_total");
    assert_eq!(shed, 1, "{scrape}");
    assert_eq!(server.get("/").status, 200);
    assert_no_errors(&server);
}

/// A one-worker server with the master's metrics port, and that port's address.
fn metrics_server() -> (Server, SocketAddr) {
    let server = Launch::new()
        .args(&["--workers", "1", "--metrics-bind", "127.0.0.1:0"])
        .start();
    let metrics = server.metrics_addr();
    (server, metrics)
}

/// A metrics port kept full by silent connections says so once for the spell: it said so
/// again after each scrape, whose close left a place that the next newcomer took, so
/// that the one after it found the port full "again" (46 lines in 6 s under a flood).
/// (Within the 5 s a silent connection is given.)
#[test]
fn a_metrics_port_kept_full_says_so_once() {
    let (server, metrics) = metrics_server();
    let open = || sockets(server.pid());
    let full = open() + 16;
    let until = |what: &str, done: &dyn Fn(usize) -> bool| {
        let reached = poll_until(secs(4), || done(open()).then_some(()));
        assert!(reached.is_some(), "{what}: {} sockets", open());
    };
    let mut silent: Vec<TcpStream> = (0..16).map(|_| raw_connect(metrics)).collect();
    until("the port full", &|n| n == full);
    for _ in 0..3 {
        assert_eq!(crate::client::get(metrics, "/metrics").status, 200);
        // The scrape's place is free again once the master has seen its client go.
        until("the scrape's place free", &|n| n < full);
        silent.extend((0..2).map(|_| raw_connect(metrics)));
        until("the port full again", &|n| n == full);
    }
    let said = "metrics port: 16 connections open; closing the oldest";
    assert_eq!(server.log_count(said), 1, "{:#?}", server.log());
}

/// The master serves its metrics port itself, so a client there must never hold it up:
/// a malformed head gets 400 and a close, a flood of silent connections cannot lock a
/// scraper out (the oldest make room), and a silent connection is closed within seconds.
#[test]
fn metrics_port_outlasts_idle_and_malformed_clients() {
    let (server, metrics) = metrics_server();
    let mut bare_lf = raw_connect(metrics);
    bare_lf
        .write_all(b"GET /metrics HTTP/1.1\nHost: t\n\n")
        .expect("send");
    let (bytes, closed) = read_to_close(&mut bare_lf, secs(10));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(closed, "still open after the 400");

    let mut silent: Vec<TcpStream> = (0..40).map(|_| raw_connect(metrics)).collect();
    let scrape = crate::client::get(metrics, "/metrics");
    assert_eq!(scrape.status, 200);
    assert!(
        scrape.text().contains("br_serve_workers"),
        "{}",
        scrape.text()
    );
    // The oldest made room for newer ones, at once.
    let (bytes, closed) = read_to_close(&mut silent[0], secs(1));
    assert!(closed && bytes.is_empty(), "the oldest is still open");
    // The newest silent connection is closed at its deadline, a few seconds on.
    let since = Instant::now();
    let newest = silent.last_mut().expect("40 connections");
    let (bytes, closed) = read_to_close(newest, secs(20));
    println!(
        "silent metrics connection closed after {:?}",
        since.elapsed()
    );
    assert!(closed && bytes.is_empty(), "{closed} {bytes:?}");
    // Not one made to room: that would be at once, and its deadline is 5 s.
    assert!(
        since.elapsed() >= secs(1),
        "closed after {:?}",
        since.elapsed()
    );
    assert_eq!(server.get("/").status, 200);
    assert_no_errors(&server);
}

/// Up to 16 scrapers at once, each scraping again as soon as it has its answer, lose no
/// scrape: a place is made by closing an answered connection (waiting for its client's
/// FIN) before an unanswered one. (Before, 14 such scrapers saw about 2 % reset.)
#[test]
fn metrics_port_serves_fourteen_busy_scrapers_without_a_reset() {
    let (_server, metrics) = metrics_server();
    let failures: usize = thread::scope(|scope| {
        let scrapers: Vec<_> = (0..14)
            .map(|_| {
                scope.spawn(move || {
                    let scrape = |_: &u32| {
                        let mut stream = raw_connect(metrics);
                        let sent = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
                        let (bytes, _) = read_to_close(&mut stream, secs(10));
                        sent.is_err() || !bytes.starts_with(b"HTTP/1.1 200 ")
                    };
                    (0..60).filter(scrape).count()
                })
            })
            .collect();
        scrapers
            .into_iter()
            .map(|s| s.join().expect("scraper"))
            .sum()
    });
    assert_eq!(failures, 0, "of 840 scrapes");
}

/// On the metrics port, a request followed at once by the client's FIN is still
/// answered, and an answer to a request whose body is never read ends in a FIN, not a
/// reset (which may destroy the answer before the client reads it).
#[test]
fn metrics_port_answers_half_closed_clients_and_closes_gracefully() {
    let (_server, metrics) = metrics_server();
    let mut half = raw_connect(metrics);
    half.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .expect("send");
    half.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let (bytes, closed) = read_to_close(&mut half, secs(10));
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.starts_with("HTTP/1.1 200 ") && text.contains("br_serve_workers"),
        "{text}"
    );
    assert!(closed);

    let mut post = raw_connect(metrics);
    let head = "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 32768\r\n\r\n";
    post.write_all(head.as_bytes()).expect("send");
    post.write_all(&[b'x'; 32768]).expect("send");
    post.set_read_timeout(Some(secs(10))).expect("timeout");
    let mut answer = Vec::new();
    let end = post.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 405 "), "{text}");
    assert!(end.is_ok(), "the connection ended in {end:?}, not a FIN");
}

/// Sends `first`, then, while a `/sleep` request keeps the only worker busy, `last` and
/// a FIN back to back. Returns what came back, whether the server closed, and when.
fn last_bytes_with_eof(addr: SocketAddr, first: &[u8], last: &[u8]) -> (Vec<u8>, bool, Duration) {
    let mut stream = raw_connect(addr);
    stream.write_all(first).expect("send");
    wait_consumed(&stream);
    let mut busy = raw_connect(addr);
    busy.write_all(b"GET /sleep?ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    wait_consumed(&busy);
    stream.write_all(last).expect("send");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let since = Instant::now();
    let (bytes, closed) = read_to_close(&mut stream, secs(8));
    (bytes, closed, since.elapsed())
}

/// Reads one whole `Hello, World!` response (head and its 14-byte body).
fn read_hello(stream: &mut TcpStream) -> Vec<u8> {
    read_until(stream, secs(10), |b| b.ends_with(b"Hello, World!\n")).0
}

/// Uploads stalled part-way cannot pin a worker's memory: the bodies being received
/// share a budget (four of the largest kept in memory, here 16 MiB each, the limit and
/// the spool size), taken as bytes
/// arrive, and a body that does not fit is answered 503 with `Retry-After`. What a
/// closed connection held is given back.
#[test]
fn stalled_uploads_share_a_bounded_budget() {
    let server = Launch::new()
        .args(&["--workers", "1", "--limit-request-body", "16777216"])
        .args(&["--body-spool-size", "16777216"])
        .args(&["--body-timeout", "60"])
        .start();
    let upload = |length: usize, sent: usize| partial_upload(&server, length, sent);
    // An announced length alone holds nothing.
    let _announced: Vec<TcpStream> = (0..8).map(|_| upload(16 << 20, 0)).collect();
    let mut stalled: Vec<TcpStream> = (0..4).map(|_| upload(16 << 20, (16 << 20) - 1)).collect();
    stalled.iter().for_each(wait_consumed);
    let mut refused = upload(5, 5);
    let (answer, _) = read_to_close(&mut refused, secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    drop(stalled.pop());
    let echoed = poll_until(secs(10), || {
        let mut stream = raw_connect(server.addr());
        let post = request("POST", "/echo", &["Connection: close"], b"hello");
        stream.write_all(&post).ok()?;
        let (answer, _) = read_to_close(&mut stream, secs(10));
        String::from_utf8_lossy(&answer)
            .ends_with("hello")
            .then_some(())
    });
    assert!(echoed.is_some(), "no room after a stalled upload left");
}

/// An upload over `--body-spool-size` goes to a nameless file in `--body-spool-dir` as
/// it arrives, not into the worker's memory: 40 MiB of it received, the worker holds a
/// spool file and less than 16 MiB more anonymous memory than before, and the handler
/// reads every byte. The file is gone with its request.
#[test]
fn a_large_upload_is_spooled_to_disk_not_held_in_memory() {
    let dir = TempDir::new("spool");
    let server = spooling_server(&dir, &[]);
    let worker = the_worker(&server);
    let spooled = || {
        let fds = std::fs::read_dir(format!("/proc/{worker}/fd")).expect("the worker's fds");
        let links = fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok());
        let in_dir = |link: &std::path::PathBuf| link.starts_with(dir.join(""));
        links.filter(in_dir).count()
    };
    let before = anon_kib(worker);
    let length = 40 << 20;
    let mut upload = partial_upload(&server, length, length - 1);
    wait_consumed(&upload);
    assert_eq!(spooled(), 1, "a spool file open while the body arrives");
    let grown = anon_kib(worker).saturating_sub(before);
    assert!(
        grown < 16 << 10,
        "the worker grew by {grown} KiB for a 40 MiB body"
    );
    upload.write_all(b"u").expect("the last byte");
    // The whole body after the head: a read that ended `length` bytes in, the head's
    // length short of the end, stopped it there on a loaded machine.
    let head_and_body = |b: &[u8]| {
        let start = b.get(..b.len().min(4096)).unwrap_or(b);
        let head_end = start.windows(4).position(|w| w == b"\r\n\r\n");
        head_end.is_some_and(|at| b.len() - (at + 4) >= length)
    };
    let (answer, _) = read_until(&mut upload, secs(20), head_and_body);
    let body_at = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &answer[..body_at]
    );
    assert_eq!(answer.len() - body_at, length);
    assert!(
        answer[body_at..].iter().all(|&b| b == b'u'),
        "the body read back as sent"
    );
    let gone = poll_until(secs(10), || (spooled() == 0).then_some(()));
    assert!(gone.is_some(), "the spool file outlived its request");
}

/// Uploads stalled part-way once they spool hold no memory: each read is written as it
/// arrives and no buffer is kept for the next (one kept, up to 512 KiB, was charged
/// nothing to the input budget, and 100 such uploads grew the worker by about 50 MiB).
#[test]
fn stalled_spooling_uploads_hold_no_memory() {
    let dir = TempDir::new("spool-stalled");
    let server = spooling_server(&dir, &["--body-timeout", "60"]);
    let worker = the_worker(&server);
    let before = anon_kib(worker);
    // Over the spool size, a little more, then a larger piece: each spooled on arrival.
    let mut uploads: Vec<TcpStream> = (0..100)
        .map(|_| partial_upload(&server, 64 << 20, (64 << 10) + 1000))
        .collect();
    uploads.iter().for_each(wait_consumed);
    for upload in &mut uploads {
        upload.write_all(&[b'u'; 1000]).expect("more");
        upload
            .write_all(&vec![b'u'; (256 << 10) + 3000])
            .expect("more");
    }
    uploads.iter().for_each(wait_consumed);
    let grown = anon_kib(worker).saturating_sub(before);
    assert!(
        grown < 16 << 10,
        "100 stalled uploads grew the worker by {grown} KiB"
    );
}

/// One worker taking bodies up to 64 MiB, spooled to `dir` past 64 KiB.
fn spooling_server(dir: &TempDir, extra: &[&str]) -> Server {
    Launch::new()
        .args(&["--workers", "1", "--limit-request-body", "64M"])
        .args(&["--body-spool-size", "64K", "--body-spool-dir"])
        .args(&[dir.join("").to_str().expect("a UTF-8 path")])
        .args(extra)
        .start()
}

/// A body that cannot be spooled (its directory removed after the start) is answered
/// 500, as nginx answers when it cannot write a temporary file, and the log says why;
/// the worker serves on. The rest of the body is taken in, as a refused one's is, for a
/// client that sends all of it before it reads: closed after 64 KiB, it got a broken
/// pipe, never the 500.
#[test]
fn an_upload_that_cannot_be_spooled_is_answered_500() {
    let dir = TempDir::new("spool-gone");
    let spool_dir = dir.join("spool");
    std::fs::create_dir(&spool_dir).expect("mkdir");
    let server = Launch::new()
        .args(&["--workers", "1", "--limit-request-body", "64M"])
        .args(&["--body-spool-size", "64K", "--body-spool-dir"])
        .args(&[spool_dir.to_str().expect("a UTF-8 path")])
        .start();
    std::fs::remove_dir(&spool_dir).expect("rmdir");
    let mut upload = partial_upload(&server, 8_000_000, 8_000_000);
    let (answer, _) = read_to_close(&mut upload, secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    server.wait_for_log("cannot spool a request body to --body-spool-dir", secs(5));
    let small = partial_upload(&server, 5, 5);
    let (answer, _) = read_until(&mut { small }, secs(10), |b| b.ends_with(b"uuuuu"));
    assert!(answer.starts_with(b"HTTP/1.1 200"));
}

/// A `PUT /echo` announcing `length` bytes of body, of which `sent` are sent. (PUT:
/// `request` adds a Content-Length of its own to a POST.)
fn partial_upload(server: &Server, length: usize, sent: usize) -> TcpStream {
    let mut stream = raw_connect(server.addr());
    let fields = format!("Content-Length: {length}");
    stream
        .write_all(&request("PUT", "/echo", &[&fields], b""))
        .expect("a head");
    stream
        .write_all(&vec![b'u'; sent])
        .expect("a body, all but its end");
    stream
}

/// Uploads stalled part-way on purpose cannot keep the others out until
/// `--body-timeout`: once a request is refused for want of room, those holding part of
/// the budget while sending under 500 bytes a second over the last 5 s are answered 408,
/// and uploads fit again (they were refused for the whole 60 s).
#[test]
fn stalled_uploads_give_way_when_the_budget_is_wanted() {
    let server = Launch::new()
        .args(&["--workers", "1", "--limit-request-body", "16777216"])
        .args(&["--body-spool-size", "16777216"])
        .args(&["--body-timeout", "60"])
        .start();
    let mut stalled: Vec<TcpStream> = (0..4)
        .map(|_| partial_upload(&server, 16 << 20, (16 << 20) - 1))
        .collect();
    stalled.iter().for_each(wait_consumed);
    let small = || {
        let mut stream = partial_upload(&server, 5, 5);
        String::from_utf8_lossy(&read_to_close(&mut stream, secs(10)).0).into_owned()
    };
    let refused = small();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let fits = poll_until(secs(20), || {
        small().starts_with("HTTP/1.1 200").then_some(())
    });
    assert!(fits.is_some(), "uploads still refused 20 s after the stall");
    let (answer, _) = read_to_close(&mut stalled[0], secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    server.wait_for_log("answering 408 to", secs(5));
}

/// A refused upload gives its share of the budget back when it is refused, not when its
/// connection is at last closed: refused bodies, read on and dropped for up to 30 s so
/// the client can read its 413 (the lingering close), held their bytes' share all that
/// time, and every upload meanwhile, five bytes included, was answered 503.
#[test]
fn a_refused_upload_gives_its_budget_back_at_once() {
    let server = Launch::new()
        .args(&["--workers", "1", "--limit-request-body", "16777216"])
        .args(&["--body-spool-size", "16777216"])
        .start();
    // A chunked body found over the limit as it arrives: 16 chunks of 1 MiB taken, then
    // a 17th chunk's size line, one byte too many, refused with 413.
    let mut chunks = format!("{:x}\r\n", 1 << 20).into_bytes();
    chunks.extend_from_slice(&vec![b'u'; 1 << 20]);
    chunks.extend_from_slice(b"\r\n");
    let refused: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = raw_connect(server.addr());
            let head = request("PUT", "/echo", &["Transfer-Encoding: chunked"], b"");
            stream.write_all(&head).expect("a head");
            for _ in 0..16 {
                stream.write_all(&chunks).expect("a chunk");
            }
            stream.write_all(b"1\r\nu\r\n").expect("a chunk too many");
            stream
        })
        .collect();
    refused.iter().for_each(wait_consumed);
    let mut small = raw_connect(server.addr());
    let put = request("PUT", "/echo", &["Connection: close"], b"hello");
    small.write_all(&put).expect("a small upload");
    let (answer, _) = read_to_close(&mut small, secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
        "{answer}"
    );
    drop(refused);
}

/// `GET /` with `fields` padding fields of `pad` bytes each after its Host, all but the
/// empty line that would end it.
fn large_head(fields: usize, pad: usize) -> String {
    let pad = "p".repeat(pad);
    let fields: Vec<String> = (0..fields)
        .map(|i| format!("X-Pad-{i}: {pad}\r\n"))
        .collect();
    format!("GET / HTTP/1.1\r\nHost: t\r\n{}", fields.concat())
}

/// Heads in progress share the same budget beyond their first 16 KiB: within the
/// `--limit-request-*` limits a head may be 800 KiB, and a thousand connections holding
/// one each would hold 800 MB. Here 86 stalled heads of 794 KB hold about 64 MiB, the
/// budget; the next large head is answered 503 with `Retry-After`, and once two stalled
/// ones leave, a large head fits again.
#[test]
fn stalled_large_heads_share_the_budget() {
    let server = Launch::new()
        .args(&["--workers", "1", "--header-timeout", "60"])
        .start();
    let head = large_head(99, 8000);
    let stalled_head = || {
        let mut stream = raw_connect(server.addr());
        stream
            .write_all(head.as_bytes())
            .expect("a head, all but its end");
        stream
    };
    let mut stalled: Vec<TcpStream> = (0..86).map(|_| stalled_head()).collect();
    stalled.iter().for_each(wait_consumed);
    let mut refused = stalled_head();
    let (answer, _) = read_to_close(&mut refused, secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    stalled.truncate(84);
    let served = poll_until(secs(10), || {
        let mut stream = stalled_head();
        stream.write_all(b"\r\n").ok()?;
        let (answer, _) = read_until(&mut stream, secs(10), |b| b.len() >= 12);
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    });
    assert!(served.is_some(), "no room after stalled heads left");
}

/// A process's anonymous resident memory, in KiB (0 if unreadable).
fn anon_kib(pid: u32) -> u64 {
    let value = proc_status(pid, "RssAnon").unwrap_or_default();
    value.trim_end_matches(" kB").parse::<u64>().unwrap_or(0)
}

/// What the one worker's anonymous memory grew by (KiB) while `client` made 100
/// connections, each kept open until it is measured.
fn kept_memory<T>(client: impl Fn(&Server) -> T) -> u64 {
    let server = Launch::new()
        .args(&["--workers", "1", "--keep-alive", "60"])
        .start();
    let worker = server.wait_children(1, secs(10))[0];
    let before = anon_kib(worker);
    let kept: Vec<T> = (0..100).map(|_| client(&server)).collect();
    let grown = anon_kib(worker).saturating_sub(before);
    drop(kept);
    grown
}

/// A large answer's buffer is let go once it is written: kept-alive connections that
/// each got a 1 MiB body back do not each hold 1 MiB for as long as they live (100 of
/// them held 100 MB, outside any budget).
#[test]
fn kept_alive_connections_give_back_what_a_large_answer_took() {
    let body = vec![b'x'; 1 << 20];
    let grown = kept_memory(|server| {
        let mut conn = server.connect();
        conn.send(&request("POST", "/echo", &[], &body));
        let echoed = conn.read_response(secs(20));
        assert_eq!((echoed.status, echoed.body.len()), (200, body.len()));
        conn
    });
    assert!(grown < 35_000, "{grown} KiB more for 100 kept connections");
}

/// The input buffer a large head grew is given back once the head is answered: kept-alive
/// connections that each sent one 700 KB head do not each hold 700 KB for as long as they
/// live (100 of them held 70 MB; 1000 would hold 700 MB, outside the input budget).
#[test]
fn kept_alive_connections_give_back_what_a_large_head_grew() {
    let head = large_head(98, 7000) + "\r\n";
    let grown = kept_memory(|server| {
        let mut stream = raw_connect(server.addr());
        stream.write_all(head.as_bytes()).expect("a large head");
        assert!(read_hello(&mut stream).ends_with(b"Hello, World!\n"));
        stream
    });
    assert!(grown < 35_000, "{grown} KiB more for 100 kept connections");
}
