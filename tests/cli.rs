//! Configuration from flags and the environment: bad values are refused with status 2,
//! `PORT`, `WEB_CONCURRENCY` and `BR_SERVE_*` are honoured, `--bind` repeats.

use std::net::TcpListener;

use nix::unistd::geteuid;

use crate::client;
use crate::util::{Launch, TempDir, non_default_workers, parse_ready_line, poll_until, secs};

#[test]
fn bad_flag_values_exit_2_naming_the_flag_and_value() {
    for (flag, value) in [
        ("--workers", "abc"),
        ("--workers", "0"),
        ("--bind", "nonsense"),
        ("--metrics-bind", "unix:/tmp/m.sock"),
        ("--metrics-bind", "localhost"),
        ("--signal-profile", "apache"),
        ("--scale-down-after", "0.5"),
        // Rounded to nothing, it killed every worker each second.
        ("--timeout", "0.0001"),
        ("--max-worker-age", "0.01"),
        // 0 is not "never" for the client timeouts: it was a 408 at the first pause.
        ("--body-timeout", "0"),
        ("--header-timeout", "0.01"),
        ("--write-timeout", "0"),
        // Said in Rust's words ("invalid digit found in string") until they had a parser.
        ("--max-requests", "-5"),
        ("--backlog", "many"),
        // Every worker failed its boot for ever, while the master listened.
        ("--worker-connections", "18446744073709551615"),
        ("--access-logformat", "%(zz)s"),
        // A port without a host bound 0.0.31.64 (inet_aton) and failed at the start.
        ("--bind", "8000"),
        ("--umask", "0o0o22"),
        // Only a Unix socket's peer would be admitted: every TCP connection refused.
        ("--proxy-allow-from", " , "),
    ] {
        let (status, log) = Launch::new().args(&[flag, value]).run_to_exit(secs(10));
        assert_eq!(
            status.code(),
            Some(2),
            "{flag} {value}: {status}; log:\n{log}"
        );
        let name = flag.trim_start_matches('-');
        assert!(
            log.contains(name) && log.contains(value),
            "{flag} {value}: log:\n{log}"
        );
        assert!(
            !log.contains("Listening at:"),
            "{flag} {value} started serving:\n{log}"
        );
    }
}

/// A bad value in a `BR_SERVE_*` variable is named by the variable: it was blamed on
/// `'--workers <INT>'`, a flag nobody typed. The same value given as the flag (which
/// overrides the variable) is still the flag's.
#[test]
fn a_bad_environment_value_names_its_variable() {
    for (variable, value) in [
        ("BR_SERVE_WORKERS", "abc"),
        ("BR_SERVE_TIMEOUT", "-3"),
        ("BR_SERVE_REUSE_PORT", "maybe"),
    ] {
        let (status, log) = Launch::new().env(variable, value).run_to_exit(secs(10));
        assert_eq!(status.code(), Some(2), "{variable}: {status}; log:\n{log}");
        let said = format!("invalid value '{value}' for {variable}:");
        assert!(log.contains(&said), "{variable}={value}: log:\n{log}");
    }
    // Set but naming no address, it passed over a file's `bind` and then listened on
    // PORT's 0.0.0.0; set empty, it was taken as unset and did the same.
    for value in [" ", ",", ""] {
        let launch = Launch::new().no_bind().env("BR_SERVE_BIND", value);
        let (status, log) = launch.env("PORT", "0").run_to_exit(secs(10));
        assert_eq!(status.code(), Some(2), "{value:?}: {status}; log:\n{log}");
        assert!(log.contains("BR_SERVE_BIND: it names no address"), "{log}");
    }
    // An unset template variable (`${LB_CIDR}`) passed --check-config, then every
    // connection was answered 403.
    let (status, log) = Launch::new()
        .args(&["--proxy-protocol"])
        .env("BR_SERVE_PROXY_ALLOW_FROM", "")
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(2), "{status}; log:\n{log}");
    assert!(
        log.contains("BR_SERVE_PROXY_ALLOW_FROM: no peer is listed"),
        "{log}"
    );
    // An empty user or group was looked up ("--user : no such user", status 1), blamed
    // on the flag when the variable set it.
    for variable in ["BR_SERVE_USER", "BR_SERVE_GROUP"] {
        let (status, log) = Launch::new().env(variable, "").run_to_exit(secs(10));
        assert_eq!(status.code(), Some(2), "{variable}: {status}; log:\n{log}");
        let said = format!("a value is required for {variable}");
        assert!(log.contains(&said), "{variable}=: log:\n{log}");
    }
    let (status, log) = Launch::new()
        .env("BR_SERVE_WORKERS", "2")
        .args(&["-w", "abc"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(2), "{status}; log:\n{log}");
    assert!(
        log.contains("invalid value 'abc' for '--workers <INT>'"),
        "{log}"
    );
}

/// A bad `BR_SERVE_*` value is refused where a flag overrides it too, as a file's is: clap
/// reads no variable whose flag is given, so it passed `--check-config` and broke the
/// start the day the flag went.
#[test]
fn a_bad_environment_value_a_flag_overrides_is_refused() {
    for (variable, value, flag) in [
        ("BR_SERVE_TIMEOUT", "abc", ["--timeout", "5"]),
        ("BR_SERVE_LOG_LEVEL", "loud", ["--log-level", "info"]),
        ("BR_SERVE_BIND", "garbage", ["--bind", "127.0.0.1:0"]),
    ] {
        let launch = Launch::new().no_bind().env(variable, value).args(&flag);
        let (status, log) = launch.args(&["--check-config"]).run_to_exit(secs(10));
        assert_eq!(status.code(), Some(2), "{variable}: {status}; log:\n{log}");
        assert!(
            log.contains(variable) && log.contains(value),
            "{variable}: log:\n{log}"
        );
    }
    let good = Launch::new()
        .env("BR_SERVE_TIMEOUT", "7")
        .args(&["--timeout", "5"]);
    let (status, log) = good.args(&["--check-config"]).run_to_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{status}; log:\n{log}");
}

/// A port below 1024 refused to an unprivileged user says what would let it bind, not
/// "Permission denied" alone.
#[test]
fn a_privileged_port_refused_says_why() {
    let lowest = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start");
    if lowest.ok().and_then(|n| n.trim().parse::<u16>().ok()) <= Some(1) {
        return; // every port is open to everyone here
    }
    let unprivileged = match geteuid().is_root() {
        true => vec![
            "setpriv",
            "--reuid",
            "54324",
            "--regid",
            "54324",
            "--clear-groups",
        ],
        false => vec![],
    };
    let (status, log) = Launch::new()
        .no_bind()
        .wrapped(&unprivileged)
        .args(&["--bind", "127.0.0.1:1"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(
        log.contains(
            "cannot listen on 127.0.0.1:1 (a port below 1024 needs root or CAP_NET_BIND_SERVICE)"
        ),
        "{log}"
    );
}

/// `--check-config` and `--print-config` together printed the verdict alone, the
/// configuration dropped without a word: refused as a usage error.
#[test]
fn check_config_and_print_config_are_refused_together() {
    let (status, log) = Launch::new()
        .args(&["--check-config", "--print-config"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(2), "{status}; log:\n{log}");
    assert!(log.contains("cannot be used with"), "{log}");
}

/// What the binary prints and exits on, to a reader already gone (`--print-config |
/// head`): exit as it would have, not panic with 101 on the broken pipe (print! and
/// eprintln! do). A pipe whose read end is closed before the start, so every write fails.
#[test]
fn printing_to_a_reader_gone_is_no_panic() {
    let cases: [(&[&str], bool, i32); 4] = [
        (&["--print-config"], false, 0),
        (&["--check-config"], false, 0),
        (&["--workers", "0"], true, 2),
        (&["check", "http://127.0.0.1:9/"], true, 1),
    ];
    for (args, on_stderr, code) in cases {
        let (read, write) = nix::unistd::pipe().expect("a pipe");
        drop(read);
        let mut command = std::process::Command::new(crate::util::BINARY);
        command.args(args).stdin(std::process::Stdio::null());
        match on_stderr {
            true => command.stdout(std::process::Stdio::null()).stderr(write),
            false => command.stdout(write).stderr(std::process::Stdio::null()),
        };
        let mut child = command.spawn().expect("spawn br-serve");
        let status = poll_until(secs(10), || child.try_wait().expect("try_wait"));
        let _ = child.kill();
        let status = status.unwrap_or_else(|| panic!("{args:?} still running after 10 s"));
        assert_eq!(status.code(), Some(code), "{args:?}: {status}");
    }
}

#[test]
fn max_workers_below_workers_is_refused() {
    let (status, log) = Launch::new()
        .args(&["--workers", "3", "--max-workers", "2"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(2), "{status}; log:\n{log}");
    assert!(
        log.contains("--max-workers 2 is below --workers 3"),
        "{log}"
    );
}

#[test]
fn metrics_bind_on_a_taken_port_stops_the_start() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("local_addr").to_string();
    let (status, log) = Launch::new()
        .args(&["--metrics-bind", &addr])
        .run_to_exit(secs(10));
    assert!(!status.success(), "{status}; log:\n{log}");
    let why = format!("cannot listen on --metrics-bind {addr}");
    assert!(log.contains(&why), "log:\n{log}");
}

/// A `--body-spool-dir` where no file can be made stops a start and `--check-config`
/// when bodies can be spooled (`--limit-request-body` over `--body-spool-size`), rather
/// than answering every large upload 500; where they cannot, it is never used, and a
/// server taking no large body needs no such directory.
#[test]
fn a_body_spool_dir_that_takes_no_file_stops_the_start() {
    let missing = ["--body-spool-dir", "/nonexistent/br-serve-spool"];
    for extra in [&[][..], &["--check-config"]] {
        let (status, log) = Launch::new()
            .args(&["--limit-request-body", "2M"])
            .args(&missing)
            .args(extra)
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
        let why =
            "--body-spool-dir /nonexistent/br-serve-spool: the workers cannot make files there";
        assert!(log.contains(why), "log:\n{log}");
    }
    let server = Launch::new().args(&missing).start();
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn web_concurrency_sets_the_worker_count() {
    let n = non_default_workers();
    let server = Launch::new().env("WEB_CONCURRENCY", &n.to_string()).start();
    server.wait_children(n, secs(10));
}

#[test]
fn br_serve_workers_env_sets_the_worker_count() {
    let n = non_default_workers();
    let server = Launch::new()
        .env("BR_SERVE_WORKERS", &n.to_string())
        .start();
    server.wait_children(n, secs(10));
}

/// A port free right now, below the kernel's ephemeral range (32768-60999 by default), so
/// that no concurrent test's port-0 bind can take it before the server binds it. Each
/// call starts looking elsewhere: tests run in parallel, and two that found the same
/// free port would race to bind it.
pub fn free_port() -> u16 {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = 20_000 + ((std::process::id() + call * 97) % 10_000) as u16;
    let mut candidates = (start..30_000).chain(20_000..start);
    let free = candidates.find(|&port| TcpListener::bind(("0.0.0.0", port)).is_ok());
    free.expect("a free port in 20000-29999")
}

#[test]
fn port_env_binds_all_interfaces() {
    let port = free_port();
    let server = Launch::new()
        .no_bind()
        .env("PORT", &port.to_string())
        .start();
    let expected = format!("http://0.0.0.0:{port} ");
    assert!(
        server.ready_line().contains(&expected),
        "{}",
        server.ready_line()
    );
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn repeated_bind_listens_on_each_address() {
    let server = Launch::new()
        .args(&["--workers", "1", "--bind", "127.0.0.1:0"])
        .start();
    // The second ready line may follow the first by a moment.
    let second = |l: &str| l.contains("Listening at:") && l != server.ready_line();
    server.wait_for_log_where("a second ready line", secs(5), second);
    let lines = server
        .log()
        .into_iter()
        .filter(|l| l.contains("Listening at:"));
    let addrs: Vec<_> = lines
        .filter_map(|l| parse_ready_line(&l))
        .map(|p| p.0)
        .collect();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_ne!(addrs[0], addrs[1]);
    assert!(
        addrs.contains(&server.addr()),
        "{:?} not in {addrs:?}",
        server.addr()
    );
    for addr in addrs {
        assert_eq!(client::get(addr, "/").status, 200, "via {addr}");
    }
}

/// An address given twice is refused, naming it: it passed `--check-config`, then its
/// second listener failed with "Address already in use", as if another server held it
/// (or, with `--reuse-port`, listened twice). Port 0 is a new port each time.
#[test]
fn an_address_given_twice_is_refused() {
    let dir = TempDir::new("twice");
    let unix = format!("unix:{}", dir.join("s.sock").display());
    let tcp = "127.0.0.1:18750";
    let launches = [
        (Launch::new().args(&["-b", tcp, "-b", tcp]), tcp),
        // A bare host is port 8000.
        (
            Launch::new().args(&["-b", "127.0.0.1:8000", "-b", "127.0.0.1"]),
            "127.0.0.1:8000",
        ),
        (Launch::new().args(&["-b", &unix, "-b", &unix]), &unix),
        (
            Launch::new().env("BR_SERVE_BIND", &format!("{unix},{unix}")),
            &unix,
        ),
    ];
    for (launch, bind) in launches {
        let (status, log) = launch
            .no_bind()
            .args(&["--reuse-port", "--check-config"])
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(2), "{bind}: {status}; log:\n{log}");
        let why = format!("{bind} is given twice");
        assert!(log.contains(&why), "{bind}: log:\n{log}");
    }
}

/// A wildcard beside an address it covers on the same port is refused as an address
/// given twice is: `0.0.0.0:P` with `127.0.0.1:P`, or `[::]:P` (which takes IPv4 too)
/// with `127.0.0.1:P`, passed `--check-config` and failed at start with "Address
/// already in use". `--reuse-port` lets both bind, so it lets them pass.
#[test]
fn a_wildcard_beside_an_address_it_covers_is_refused() {
    let cases = [
        (
            ["127.0.0.1:18751", "0.0.0.0:18751"],
            "0.0.0.0:18751 already listens on 127.0.0.1:18751",
        ),
        (
            ["[::]:18751", "127.0.0.1:18751"],
            "[::]:18751 already listens on 127.0.0.1:18751",
        ),
    ];
    for ([a, b], why) in cases {
        let both = ["-b", a, "-b", b, "--check-config"];
        let (status, log) = Launch::new().no_bind().args(&both).run_to_exit(secs(10));
        assert_eq!(status.code(), Some(2), "{a} {b}: {status}; log:\n{log}");
        assert!(log.contains(why), "{a} {b}: log:\n{log}");
        let shared = Launch::new().no_bind().args(&both).args(&["--reuse-port"]);
        let (status, log) = shared.run_to_exit(secs(10));
        assert_eq!(
            status.code(),
            Some(0),
            "{a} {b} --reuse-port: {status}; log:\n{log}"
        );
    }
}

/// `--metrics-bind` on an address a listener takes passed `--check-config`, then the
/// start failed with "Address already in use", as if another server held the port.
#[test]
fn a_metrics_port_a_listener_takes_is_refused() {
    for (bind, metrics) in [
        ("127.0.0.1:18752", "127.0.0.1:18752"),
        ("0.0.0.0:18752", "127.0.0.1:18752"),
    ] {
        let args = ["-b", bind, "--metrics-bind", metrics, "--check-config"];
        let (status, log) = Launch::new().no_bind().args(&args).run_to_exit(secs(10));
        assert_eq!(
            status.code(),
            Some(2),
            "{bind} {metrics}: {status}; log:\n{log}"
        );
        let why = format!("--metrics-bind {metrics}: --bind {bind} listens there too");
        assert!(log.contains(&why), "{bind} {metrics}: log:\n{log}");
    }
}

/// `[::]:P` beside `0.0.0.0:P` serves each family on its own listener: the IPv6 one is
/// bound IPv6-only, as nginx binds `[::]`. Dual-stack, it failed to bind beside the
/// IPv4 one, and the server did not start.
#[test]
fn both_wildcards_on_one_port_serve_both_families() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine: skipped");
        return;
    }
    let port = free_port();
    let (v6, v4) = (format!("[::]:{port}"), format!("0.0.0.0:{port}"));
    let server = Launch::new()
        .no_bind()
        .args(&["--workers", "1", "-b", &v6, "-b", &v4])
        .start();
    server.wait_for_log(&format!("Listening at: http://{v4} "), secs(5));
    for addr in [format!("[::1]:{port}"), format!("127.0.0.1:{port}")] {
        let addr = addr.parse().expect("a socket address");
        assert_eq!(client::get(addr, "/").status, 200, "via {addr}");
    }
}

/// A flag that works with another is refused without it, as `--static-fallback` was:
/// `--static-listing`, `--initgroups`, `--scale-down-after` or `--max-requests-jitter`
/// alone did nothing and said nothing. Set to false (or to its default) it asks for
/// nothing, so an environment that says so passes.
#[test]
fn a_flag_without_the_one_it_works_with_is_refused() {
    let refused = [
        (
            Launch::new().args(&["--static-listing"]),
            "--static-listing needs --static DIR",
        ),
        (
            Launch::new().args(&["--static-max-age", "60"]),
            "--static-max-age needs --static DIR",
        ),
        (
            Launch::new().env("BR_SERVE_STATIC_PRECOMPRESSED", "1"),
            "--static-precompressed needs --static DIR",
        ),
        (
            Launch::new().args(&["--static-cache", "1M"]),
            "--static-cache needs --static DIR",
        ),
        (
            Launch::new().args(&["--static-fallback", "/index.html"]),
            "--static-fallback needs --static DIR",
        ),
        (
            Launch::new().args(&["--initgroups", "--group", "0"]),
            "--initgroups needs --user USER",
        ),
        (
            Launch::new().args(&["--scale-down-after", "5"]),
            "--scale-down-after needs --max-workers INT",
        ),
        (
            Launch::new().args(&["--proxy-allow-from", "10.0.0.0/8"]),
            "--proxy-allow-from needs --proxy-protocol",
        ),
        (
            Launch::new().env("BR_SERVE_MAX_REQUESTS_JITTER", "50"),
            "--max-requests-jitter needs --max-requests INT",
        ),
    ];
    for (launch, why) in refused {
        let (status, log) = launch.args(&["--check-config"]).run_to_exit(secs(10));
        assert_eq!(status.code(), Some(2), "{why}: {status}; log:\n{log}");
        assert!(log.contains(why), "{why}: log:\n{log}");
    }
    let (status, log) = Launch::new()
        .env("BR_SERVE_STATIC_LISTING", "false")
        .env("BR_SERVE_INITGROUPS", "0")
        .env("BR_SERVE_MAX_REQUESTS_JITTER", "0")
        // The default's peers, written another way.
        .env("BR_SERVE_PROXY_ALLOW_FROM", "::1, 127.0.0.1/32")
        .args(&[
            "--static-cache",
            "4M",
            "--scale-down-after",
            "30",
            "--check-config",
        ])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{status}; log:\n{log}");
}

/// A start that fails leaves no Unix socket file behind, where clients would be refused
/// as if a server were down there: not when a later address is taken (the sockets bound
/// before it go), nor when something after the listeners fails (here, the access log).
#[test]
fn a_failed_start_leaves_no_socket_file() {
    let dir = TempDir::new("failed-start");
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let taken = taken.local_addr().expect("its address").to_string();
    let no_dir = dir.join("nowhere/access.log");
    let cases = [
        ("first.sock", vec!["--bind".to_string(), taken]),
        (
            "second.sock",
            vec!["--access-logfile".to_string(), no_dir.display().to_string()],
        ),
    ];
    for (name, more) in cases {
        let socket = dir.join(name);
        let more: Vec<&str> = more.iter().map(String::as_str).collect();
        let (status, log) = Launch::new()
            .no_bind()
            .args(&[
                "--workers",
                "1",
                "--bind",
                &format!("unix:{}", socket.display()),
            ])
            .args(&more)
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{more:?}: {status}; log:\n{log}");
        assert!(
            !socket.exists(),
            "{more:?}: {} left behind",
            socket.display()
        );
    }
}

/// Commas separate addresses in `BR_SERVE_BIND` only: a flag takes its value whole, so a
/// Unix socket's path may hold one.
#[test]
fn a_comma_splits_br_serve_bind_only() {
    let dir = TempDir::new("comma");
    let path = dir.join("a,b.sock");
    let unix = format!("unix:{}", path.display());
    let server = Launch::new()
        .args(&["--workers", "1", "--bind", &unix])
        .start();
    server.wait_for_log(&format!("Listening at: {unix} "), secs(5));
    assert!(client::unix_status(&path, "/").starts_with("HTTP/1.1 200"));

    let other = format!("unix:{}", dir.join("c.sock").display());
    let (status, out) = Launch::new()
        .no_bind()
        .env("BR_SERVE_BIND", &format!("127.0.0.1:0,{other}"))
        .args(&["--print-config"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{status}; output:\n{out}");
    let both = format!("bind = [\"127.0.0.1:0\", \"{other}\"]\n");
    assert!(out.contains(&both), "{out}");
}

#[test]
fn reuse_port_lets_two_masters_share_a_port() {
    let first = Launch::new()
        .args(&["--workers", "1", "--reuse-port"])
        .start();
    let addr = first.addr().to_string();
    let second = Launch::new()
        .no_bind()
        .args(&["--workers", "1", "--bind", &addr, "--reuse-port"])
        .start();
    // Without the flag the port is taken, as it always was.
    let (status, log) = Launch::new()
        .no_bind()
        .args(&["--workers", "1", "--bind", &addr])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains(&format!("cannot listen on {addr}")), "{log}");

    // The kernel spreads new connections over both masters' sockets (by a hash of the
    // client's port, so a few dozen connections reach both).
    let workers = [
        first.wait_children(1, secs(10)),
        second.wait_children(1, secs(10)),
    ];
    let mut served = [false, false];
    let reached_both = poll_until(secs(10), || {
        let body = client::get(first.addr(), "/pid").body;
        let pid: u32 = String::from_utf8_lossy(&body).trim().parse().ok()?;
        for (seen, pids) in served.iter_mut().zip(&workers) {
            *seen |= pids.contains(&pid);
        }
        (served == [true, true]).then_some(())
    });
    assert!(
        reached_both.is_some(),
        "served by {served:?} of {workers:?}"
    );
}

#[test]
fn check_subcommand_probes_a_url() {
    // The container image's HEALTHCHECK runs `br-serve check` (no curl in a slim image).
    let server = Launch::new().args(&["--workers", "1"]).start();
    let check = |path: &str| {
        let url = format!("http://{}{path}", server.addr());
        Launch::new()
            .no_bind()
            .args(&["check", &url, "5"])
            .run_to_exit(secs(10))
    };
    let (status, log) = check("/healthz");
    assert!(status.success(), "check /healthz: {status}; log:\n{log}");
    let (status, log) = check("/status/503");
    assert_eq!(
        status.code(),
        Some(1),
        "check /status/503: {status}; log:\n{log}"
    );
    // A failing answer's body says why (the master's /healthz does), and so does the
    // check's one line, which is what `docker inspect` shows.
    let (status, log) = check("/status/x");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("/status/x: status 400: status must be from 200 to 599"),
        "{log}"
    );
    // A server behind a TCP balancer takes requests only after a PROXY header, which
    // `--proxy-protocol` sends (a Kubernetes exec probe has no balancer in front).
    let proxied = Launch::new()
        .args(&["--workers", "1", "--proxy-protocol"])
        .start();
    let url = format!("http://{}/readyz", proxied.addr());
    for (flags, code) in [(&["--proxy-protocol"][..], Some(0)), (&[], Some(1))] {
        let (status, log) = Launch::new()
            .no_bind()
            .args(&["check"])
            .args(flags)
            .args(&[&url, "5"])
            .run_to_exit(secs(10));
        assert_eq!(
            status.code(),
            code,
            "check {flags:?}: {status}; log:\n{log}"
        );
    }
    // Found from --help, and with a --help of its own (it took "--help" for a URL).
    let (status, out) = Launch::new()
        .no_bind()
        .args(&["--help"])
        .run_to_exit(secs(10));
    assert!(
        status.success() && out.contains("`check http://HOST:PORT/PATH"),
        "{out}"
    );
    let (status, out) = Launch::new()
        .no_bind()
        .args(&["check", "--help"])
        .run_to_exit(secs(10));
    assert!(
        status.success() && out.contains("usage: br-serve check"),
        "{out}"
    );
}

/// `br-serve check` reads a status line that arrives in pieces (a proxy, a slow server):
/// here `HTTP/1.1 2`, then, a moment later, `00 OK`. (The pause is the slow server being
/// played, not a wait for something: the probe passes however long it is, under its
/// 5 s timeout, and used to fail whenever it read the first piece alone.)
#[test]
fn check_subcommand_reads_a_status_line_in_pieces() {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 2");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = stream.write_all(b"00 OK\r\nContent-Length: 0\r\n\r\n");
    });
    let (status, log) = Launch::new()
        .no_bind()
        .args(&["check", &url, "5"])
        .run_to_exit(secs(10));
    let _ = server.join();
    assert!(status.success(), "{status}; log:\n{log}");
}
