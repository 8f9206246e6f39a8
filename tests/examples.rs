//! The programs in `examples/`, run as servers: an application built on the library gets
//! the binary's command line, supervision and signals; a factory runs in each worker, so
//! per-worker state starts afresh in every new worker, and a preloaded application is
//! built once in the master and shared by the workers copy-on-write.

use nix::sys::signal::Signal;

use crate::client::{self, RESPONSE_WITHIN, request};
use crate::util::{Launch, Server, TempDir, poll_until, secs};

/// `worker NUMBER (pid PID) has served N requests` from `per_worker_state`, as (PID, N),
/// once NUMBER (`br_serve::worker_number`) is checked to be the one the log gives that
/// pid (`[PID] [worker.NUMBER]`).
fn served(server: &Server) -> (u32, u64) {
    let resp = server.get("/count");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let text = resp.text();
    let words: Vec<&str> = text.split_whitespace().collect();
    let [
        "worker",
        number,
        "(pid",
        pid,
        "has",
        "served",
        n,
        "requests",
    ] = words.as_slice()
    else {
        panic!("unexpected answer {text:?}");
    };
    let pid = pid.trim_end_matches(')');
    server.wait_for_log(&format!("[{pid}] [worker.{number}]"), secs(5));
    (
        pid.parse().expect("a pid"),
        n.parse().expect("a request count"),
    )
}

/// A program that names itself (`identify_as`) is that program in `--version`, its
/// errors and its log, not br-serve: `json_api --version` said `br-serve 0.1.0`, and
/// its bad flags `br-serve: error: ...`. Every example does, as a program should.
#[test]
fn an_embedding_program_goes_by_its_own_name() {
    for example in [
        "json_api",
        "per_worker_state",
        "preloaded_table",
        "downloads",
    ] {
        let (status, out) = Launch::example(example)
            .no_bind()
            .args(&["--version"])
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(0), "{status}; output:\n{out}");
        assert_eq!(out.trim(), format!("{example} 1.0.0"));
        let (status, out) = Launch::example(example)
            .args(&["--workers", "none"])
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(2), "{status}; output:\n{out}");
        assert!(
            out.contains(&format!("{example}: error: invalid value 'none'")),
            "{out}"
        );
    }
    let server = Launch::example("json_api")
        .args(&["--workers", "1"])
        .start();
    let own = env!("CARGO_PKG_VERSION");
    server.wait_for_log(
        &format!("Starting json_api 1.0.0 (br-serve {own})"),
        secs(5),
    );
}

/// `--static DIR` serves DIR in place of the application in any program built on the
/// library, preloaded or not, as it does in br-serve: it was parsed, checked, listed in
/// `--help`, and then ignored by every factory that did not look for it.
#[test]
fn static_flag_serves_files_in_any_program() {
    let dir = TempDir::new("embedded-static");
    std::fs::write(dir.join("hello.txt"), "from a file\n").unwrap();
    let root = dir.join("").to_string_lossy().into_owned();
    for example in ["json_api", "preloaded_table"] {
        let server = Launch::example(example)
            .args(&["--workers", "1", "--static", &root])
            .start();
        let resp = server.get("/hello.txt");
        assert_eq!(
            (resp.status, resp.text()),
            (200, "from a file\n".to_string()),
            "{example}"
        );
    }
}

#[test]
fn json_api_routes_reads_bodies_and_stops_on_term() {
    let mut server = Launch::example("json_api")
        .args(&["--workers", "2"])
        .start();
    server.wait_children(2, secs(10));

    let health = server.get("/api/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert!(
        health.text().starts_with(r#"{"status":"ok","pid":"#),
        "{}",
        health.text()
    );

    let mut conn = server.connect();
    conn.send(&request("POST", "/api/length", &[], b"hello"));
    let length = conn.read_response(RESPONSE_WITHIN);
    assert_eq!(
        (length.status, length.text().as_str()),
        (200, r#"{"bytes":5}"#)
    );
    // A chunked body arrives decoded, as the handler's `req.body()`.
    conn.send(
        b"POST /api/length HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    );
    assert_eq!(conn.read_response(RESPONSE_WITHIN).text(), r#"{"bytes":7}"#);

    // Only letters and digits of the name reach the JSON.
    let echo = server.get("/api/echo?name=a%22b%3Cc%3E");
    assert_eq!(echo.text(), r#"{"hello":"a22b3Cc3E"}"#);
    conn.send(&request("DELETE", "/api/health", &[], b""));
    let refused = conn.read_response(RESPONSE_WITHIN);
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), Some("GET, HEAD"));
    // HEAD where GET is: the head alone (read to the close, as it has no body to wait for).
    let mut head = client::raw_connect(server.addr());
    let wire = request("HEAD", "/api/health", &["Connection: close"], b"");
    std::io::Write::write_all(&mut head, &wire).expect("send");
    let (answer, _) = client::read_to_close(&mut head, secs(10));
    assert!(answer.starts_with(b"HTTP/1.1 200 "), "{answer:?}");
    assert_eq!(server.get("/api/nope").status, 404);
    assert_eq!(server.get("/elsewhere").status, 404);

    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(secs(20)).success());
}

/// `Request::local_addr` is where a connection landed: the listener's address on a bind
/// to one address, the connection's own on a wildcard bind (where the listener's says
/// nothing), the PROXY header's destination behind a balancer, none on a Unix socket.
#[test]
fn a_handler_sees_the_address_a_request_arrived_at() {
    let listener = |answer: &str| {
        let (_, value) = answer
            .rsplit_once(r#""listener":"#)
            .expect("a listener field");
        value.trim_end_matches('}').to_string()
    };
    let dir = TempDir::new("listener");
    let socket = dir.join("api.sock");
    let unix = format!("unix:{}", socket.display());
    let server = Launch::example("json_api")
        .args(&["--workers", "1", "--bind", &unix])
        .start();
    let text = server.get("/api/health").text();
    assert_eq!(listener(&text), format!("\"{}\"", server.addr()));
    let answer = client::unix_answer(&mut client::unix_sent(&socket, "/api/health"));
    assert_eq!(listener(&answer), "null");

    let any = Launch::example("json_api")
        .no_bind()
        .args(&["--workers", "1", "--bind", "0.0.0.0:0"])
        .start();
    let port = any.addr().port();
    let text = client::get(([127, 0, 0, 1], port).into(), "/api/health").text();
    assert_eq!(listener(&text), format!("\"127.0.0.1:{port}\""));
    // The same wildcard, written as an IPv4-mapped IPv6 address.
    let mapped = Launch::example("json_api")
        .no_bind()
        .args(&["--workers", "1", "--bind", "[::ffff:0.0.0.0]:0"])
        .start();
    let port = mapped.addr().port();
    let text = client::get(([127, 0, 0, 1], port).into(), "/api/health").text();
    assert_eq!(listener(&text), format!("\"[::ffff:127.0.0.1]:{port}\""));

    let proxied = Launch::example("json_api")
        .args(&["--workers", "1", "--proxy-protocol"])
        .start();
    let mut conn = proxied.connect();
    let header = b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n";
    conn.send(&[&header[..], &request("GET", "/api/health", &[], b"")].concat());
    let text = conn.read_response(RESPONSE_WITHIN).text();
    assert_eq!(listener(&text), "\"198.51.100.1:443\"");
}

/// `Handler::before_body` is shown the client's address (`RequestHead::peer_addr`), the
/// one `handle` gets: `json_api` takes uploads only from the clients
/// `JSON_API_UPLOAD_FROM` lists and refuses any other's on its head, before a client
/// waiting on `Expect: 100-continue` is told to send its body; behind
/// `--proxy-protocol`, the client judged is the one the PROXY header names.
#[test]
fn before_body_sees_the_clients_address() {
    // The head alone: a refusal comes without the body, an admission as `100 Continue`.
    let head = b"POST /api/length HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\
                 Expect: 100-continue\r\n\r\n";
    let answer = |server: &Server, proxy_header: &[u8]| {
        let mut conn = server.connect();
        conn.send(&[proxy_header, &head[..]].concat());
        let first = conn.read_response(RESPONSE_WITHIN);
        if first.status != 100 {
            return (first.status, first.text());
        }
        conn.send(b"hello");
        let resp = conn.read_response(RESPONSE_WITHIN);
        (resp.status, resp.text())
    };
    let launch = |flags: &[&str]| {
        Launch::example("json_api")
            .args(&["--workers", "1"])
            .args(flags)
            .start()
    };
    let taken = (200, r#"{"bytes":5}"#.to_string());
    let listed = launch(&["-e", "JSON_API_UPLOAD_FROM=192.0.2.1, 127.0.0.1"]);
    assert_eq!(answer(&listed, b""), taken);
    let elsewhere = launch(&["-e", "JSON_API_UPLOAD_FROM=192.0.2.1"]);
    let refused = r#"{"error":"no uploads from 127.0.0.1"}"#.to_string();
    assert_eq!(answer(&elsewhere, b""), (403, refused));

    // Behind a balancer (127.0.0.1 here), the client its header names.
    let proxied = launch(&["--proxy-protocol", "-e", "JSON_API_UPLOAD_FROM=203.0.113.7"]);
    let from = |client: &str| format!("PROXY TCP4 {client} 198.51.100.1 40000 443\r\n");
    assert_eq!(answer(&proxied, from("203.0.113.7").as_bytes()), taken);
    let refused = r#"{"error":"no uploads from 203.0.113.8"}"#.to_string();
    assert_eq!(
        answer(&proxied, from("203.0.113.8").as_bytes()),
        (403, refused)
    );
}

/// `Request::scheme` believes `X-Forwarded-Proto` from the peers `--forwarded-allow-ips`
/// lists (`FORWARDED_ALLOW_IPS`, else the machine itself, by default; a Unix socket's
/// peer always; the balancer, not the client, behind a PROXY header), and from no one
/// else; fields that disagree say http.
#[test]
fn the_scheme_is_the_trusted_proxys_word() {
    let scheme = |answer: &str| {
        let (_, rest) = answer.split_once(r#""scheme":""#).expect("a scheme field");
        rest.split('"').next().unwrap_or_default().to_string()
    };
    let ask = |server: &Server, fields: &[&str]| {
        let mut conn = server.connect();
        conn.send(&request("GET", "/api/health", fields, b""));
        scheme(&conn.read_response(RESPONSE_WITHIN).text())
    };
    let dir = TempDir::new("scheme");
    let socket = dir.join("api.sock");
    let unix = format!("unix:{}", socket.display());
    let local = Launch::example("json_api")
        .args(&["--workers", "1", "--bind", &unix])
        .start();
    assert_eq!(ask(&local, &[]), "http");
    assert_eq!(ask(&local, &["X-Forwarded-Proto: https"]), "https");
    assert_eq!(ask(&local, &["X-Forwarded-Ssl: on"]), "https");
    assert_eq!(ask(&local, &["X-Forwarded-Proto: http"]), "http");
    let disagree = ["X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"];
    assert_eq!(ask(&local, &disagree), "http");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    let fields = ["X-Forwarded-Proto: https", "Connection: close"];
    let wire = request("GET", "/api/health", &fields, b"");
    std::io::Write::write_all(&mut stream, &wire).expect("send");
    assert_eq!(scheme(&client::unix_answer(&mut stream)), "https");

    // Another proxy's word is not taken.
    let elsewhere = Launch::example("json_api")
        .args(&["--workers", "1", "--forwarded-allow-ips", "10.0.0.0/8"])
        .start();
    assert_eq!(ask(&elsewhere, &["X-Forwarded-Proto: https"]), "http");

    // Behind a TCP balancer speaking the PROXY protocol, the balancer is the peer judged
    // (it sends the request), not the client its header names, as gunicorn judges it.
    let proxied = |allow: &str| {
        let server = Launch::example("json_api")
            .args(&[
                "--workers",
                "1",
                "--proxy-protocol",
                "--forwarded-allow-ips",
                allow,
            ])
            .start();
        let mut conn = server.connect();
        let header = b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n";
        let get = request("GET", "/api/health", &["X-Forwarded-Proto: https"], b"");
        conn.send(&[&header[..], &get].concat());
        scheme(&conn.read_response(RESPONSE_WITHIN).text())
    };
    assert_eq!(proxied("127.0.0.1"), "https");
    assert_eq!(proxied("203.0.113.0/24"), "http");

    // gunicorn's FORWARDED_ALLOW_IPS is the default, below the flag and its variable.
    let from_variable = |flags: &[&str]| {
        let server = Launch::example("json_api")
            .args(&["--workers", "1"])
            .args(flags)
            .env("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
            .start();
        ask(&server, &["X-Forwarded-Proto: https"])
    };
    assert_eq!(from_variable(&[]), "http");
    assert_eq!(
        from_variable(&["--forwarded-allow-ips", "127.0.0.1"]),
        "https"
    );

    let (status, log) = Launch::example("json_api")
        .args(&["--forwarded-allow-ips", "10.0.0.0/40"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(2), "{status}; log:\n{log}");
    assert!(
        log.contains("'10.0.0.0/40' is not an address or a network"),
        "{log}"
    );
}

/// `send_file` answers a handler's own file as `--static` answers its files, through
/// the binary: validators and 304, one range (206, 416), HEAD's length, sendfile for a
/// file larger than any buffer; the example names files only from its own listing.
#[test]
fn downloads_sends_files_with_validators_and_ranges() {
    let dir = TempDir::new("downloads");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    std::fs::write(dir.join("secret.txt"), "outside\n").unwrap();
    std::fs::create_dir(dir.join("files")).unwrap();
    std::fs::write(dir.join("files/big.bin"), &big).unwrap();
    let files = format!("DOWNLOADS_DIR={}", dir.join("files").display());
    let server = Launch::example("downloads")
        .args(&["--workers", "1", "-e", &files, "-e", "DOWNLOADS_TOKEN=t0k"])
        .start();
    // A connection of its own for each request: a HUP below retires the worker.
    let ask = |method: &str, target: &str, fields: &[&str]| {
        let mut all = vec!["Authorization: Bearer t0k"];
        all.extend_from_slice(fields);
        let mut conn = server.connect();
        conn.send(&request(method, target, &all, b""));
        conn.read_response(RESPONSE_WITHIN)
    };

    let whole = ask("GET", "/files/big.bin", &[]);
    assert_eq!(whole.status, 200);
    assert!(whole.body == big, "{} bytes", whole.body.len());
    assert_eq!(
        whole.header("content-type"),
        Some("application/octet-stream")
    );
    let disposition = whole.header("content-disposition");
    assert_eq!(disposition, Some("attachment; filename=\"big.bin\""));
    let etag = whole.header("etag").expect("an ETag").to_string();
    let not_modified = ask(
        "GET",
        "/files/big.bin",
        &[&format!("If-None-Match: {etag}")],
    );
    assert_eq!((not_modified.status, not_modified.body.len()), (304, 0));
    let part = ask("GET", "/files/big.bin", &["Range: bytes=1000000-1000009"]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &big[1_000_000..1_000_010]);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 1000000-1000009/3000000")
    );
    let past = ask("GET", "/files/big.bin", &["Range: bytes=3000000-"]);
    assert_eq!(past.status, 416);
    let changed = ask("GET", "/files/big.bin", &["If-Match: \"other\""]);
    assert_eq!(changed.status, 412);

    // Names, not paths: nothing outside the listing is reachable, nor through a listed
    // name that became a symlink; a FIFO put in a file's place is refused at once, not
    // waited on (a blocking open held the worker until --timeout).
    for target in ["/files/../secret.txt", "/files/..%2fsecret.txt", "/files/"] {
        assert_eq!(ask("GET", target, &[]).status, 404, "{target}");
    }
    for (name, swap) in [("link.txt", true), ("fifo.txt", false)] {
        let path = dir.join("files").join(name);
        std::fs::write(&path, "listed\n").unwrap();
        server.signal(Signal::SIGHUP);
        let target = format!("/files/{name}");
        let listed = poll_until(secs(20), || {
            (ask("GET", &target, &[]).status == 200).then_some(())
        });
        assert!(listed.is_some(), "{name} never listed");
        std::fs::remove_file(&path).unwrap();
        match swap {
            true => std::os::unix::fs::symlink(dir.join("secret.txt"), &path).unwrap(),
            false => nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap(),
        }
        assert_eq!(ask("GET", &target, &[]).status, 404, "{name}");
    }
    let scheme_in_any_case = ["Authorization: bEaReR t0k", "Range: bytes=0-0"];
    let mut lower = server.connect();
    lower.send(&request("GET", "/files/big.bin", &scheme_in_any_case, b""));
    assert_eq!(lower.read_response(RESPONSE_WITHIN).status, 206);
    // Without the token, nothing.
    let anonymous = server.get("/files/big.bin");
    assert_eq!(anonymous.status, 401);
    // HEAD: the length a GET would get, no body.
    let mut head = client::raw_connect(server.addr());
    let wire = request(
        "HEAD",
        "/files/big.bin",
        &["Authorization: Bearer t0k", "Connection: close"],
        b"",
    );
    std::io::Write::write_all(&mut head, &wire).expect("send");
    let (answer, _) = client::read_to_close(&mut head, secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("Content-Length: 3000000\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
}

/// `--env` gives the application its own settings, read by its factory in each worker:
/// from the configuration file, which a HUP reloads (a setting dropped from it is gone
/// from the next workers, since the master's own environment never had it), or from
/// the command line, where the last value for a key wins.
#[test]
fn env_flag_configures_the_application_and_a_hup_changes_it() {
    let dir = TempDir::new("env");
    let file = dir.join("app.toml");
    let path = file.to_str().expect("a UTF-8 path");
    std::fs::write(&file, "env = [\"JSON_API_DEFAULT_NAME=ada\"]\n").unwrap();
    let server = Launch::example("json_api")
        .args(&["--workers", "1", "-c", path])
        .start();
    let greets = |name: &str| server.get("/api/echo").text() == format!(r#"{{"hello":"{name}"}}"#);
    assert!(greets("ada"), "{}", server.get("/api/echo").text());
    for (text, name) in [
        (
            "env = [\"JSON_API_DEFAULT_NAME=bob\", \"OTHER=a=b\"]\n",
            "bob",
        ),
        ("workers = 1\n", "world"),
    ] {
        std::fs::write(&file, text).unwrap();
        server.signal(Signal::SIGHUP);
        let reloaded = poll_until(secs(20), || greets(name).then_some(()));
        assert!(
            reloaded.is_some(),
            "{text}: {}",
            server.get("/api/echo").text()
        );
    }

    let flags = [
        "-e",
        "JSON_API_DEFAULT_NAME=x",
        "--env",
        "JSON_API_DEFAULT_NAME=cy",
    ];
    let server = Launch::example("json_api")
        .args(&["--workers", "1"])
        .args(&flags)
        .start();
    assert_eq!(server.get("/api/echo").text(), r#"{"hello":"cy"}"#);
    let (status, log) = Launch::example("json_api")
        .args(&["-e", "JUST_A_KEY"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(2), "{status}; log:\n{log}");
    assert!(log.contains("expected KEY=VALUE"), "{log}");
}

#[test]
fn per_worker_state_is_built_in_each_worker_and_survives_hup_and_ttin() {
    let server = Launch::example("per_worker_state")
        .args(&["--workers", "1"])
        .start();
    let (first, n) = served(&server);
    assert_eq!(n, 1);
    assert_eq!(
        served(&server),
        (first, 2),
        "the state lives on in its worker"
    );

    // HUP: a new generation, whose worker builds its own state.
    server.signal(Signal::SIGHUP);
    let replaced = poll_until(secs(20), || {
        Some(server.children()).filter(|c| c.len() == 1 && c[0] != first)
    });
    let second = replaced.expect("the worker replaced after HUP")[0];
    assert_eq!(served(&server), (second, 1));

    // TTIN: one more worker, counting from its own start while its sibling goes on.
    server.signal(Signal::SIGTTIN);
    let third = *server
        .wait_children(2, secs(10))
        .iter()
        .find(|&&pid| pid != second)
        .expect("the added worker");
    let mut seen = 1;
    let newcomer_first = poll_until(secs(20), || {
        let (pid, n) = served(&server);
        if pid == second {
            seen += 1;
            assert_eq!(n, seen, "the older worker's count goes on");
        }
        (pid == third).then_some(n)
    });
    assert_eq!(newcomer_first, Some(1), "the added worker's first answer");
}

/// (Private_Dirty, Shared_Dirty) of a process in KiB, from /proc/PID/smaps_rollup.
fn dirty_kib(pid: u32) -> (u64, u64) {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_else(|e| panic!("smaps_rollup of {pid}: {e}"));
    let field = |name: &str| -> u64 {
        rollup
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in smaps_rollup of {pid}"))
    };
    (field("Private_Dirty:"), field("Shared_Dirty:"))
}

/// The example's default table: 4 Mi entries of 8 bytes.
const TABLE_KIB: u64 = 32 * 1024;

#[test]
fn preloaded_table_is_built_once_in_the_master_and_shared_by_the_workers() {
    let server = Launch::example("preloaded_table")
        .args(&["--workers", "2"])
        .start();
    let workers = server.wait_children(2, secs(10));
    assert_eq!(server.get("/square?n=1234").text(), "1522756\n");
    let master = format!("{}\n", server.pid());
    assert_eq!(server.get("/built").text(), master);
    // Each worker sees the master's table in shared pages; a copy of its own would be
    // private memory as large as the table.
    for pid in workers.iter().copied() {
        let (private, shared) = dirty_kib(pid);
        assert!(
            shared >= TABLE_KIB && private < TABLE_KIB / 4,
            "worker {pid}: private {private} KiB, shared {shared} KiB"
        );
    }

    // HUP: new workers, forked from the same copy; the table is not built again.
    server.signal(Signal::SIGHUP);
    let renewed = poll_until(secs(20), || {
        let now = server.children();
        (now.len() == 2 && now.iter().all(|pid| !workers.contains(pid))).then_some(now)
    });
    assert!(
        renewed.is_some(),
        "workers {workers:?} still there after HUP"
    );
    assert_eq!(server.get("/built").text(), master);
    assert_eq!(server.log_count("built a table"), 1);
}

/// A table that cannot be built stops the start, whether its setting came from the
/// environment or from `--env`, which the preload sees as the workers' factories do.
#[test]
fn preloaded_table_that_cannot_be_built_stops_the_start() {
    let by_env = Launch::example("preloaded_table").env("TABLE_ENTRIES", "lots");
    let by_flag = Launch::example("preloaded_table").args(&["-e", "TABLE_ENTRIES=lots"]);
    for launch in [by_env, by_flag] {
        let (status, log) = launch.run_to_exit(secs(20));
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(
            log.contains(r#"TABLE_ENTRIES=\"lots\" is not a number"#),
            "{log}"
        );
        assert!(log.contains("nothing was started"), "{log}");
        assert!(!log.contains("Listening at"), "{log}");
    }
    // The panic is a record of --error-logfile, which said "see above" of nothing, where
    // Rust's own hook wrote it to stderr only.
    let dir = TempDir::new("preload-panic");
    let path = dir.join("error.log");
    let (status, _) = Launch::example("preloaded_table")
        .env("TABLE_ENTRIES", "lots")
        .args(&["--error-logfile", path.to_str().expect("a UTF-8 path")])
        .run_to_exit(secs(20));
    assert_eq!(status.code(), Some(1));
    let file = std::fs::read_to_string(&path).unwrap_or_default();
    let said = file
        .lines()
        .any(|l| l.contains("ERROR panic at") && l.contains("lots"));
    assert!(said, "{file}");
    let small = Launch::example("preloaded_table")
        .args(&["--workers", "1", "--env", "TABLE_ENTRIES=100"])
        .start();
    assert_eq!(small.get("/square?n=99").text(), "9801\n");
    assert_eq!(small.get("/square?n=100").status, 404);
}

/// A HUP reuses the preloaded table, so an `env` it changed does not reach what the build
/// read, and the log says so, where nothing did.
#[test]
fn a_hup_that_changes_a_preloads_env_says_it_keeps_the_build() {
    let dir = TempDir::new("preload-env");
    let config = dir.join("app.toml");
    std::fs::write(&config, "workers = 1\nenv = [\"TABLE_ENTRIES=100\"]\n").unwrap();
    let server = Launch::example("preloaded_table")
        .args(&["-c", config.to_str().expect("a UTF-8 path")])
        .start();
    std::fs::write(&config, "workers = 1\nenv = [\"TABLE_ENTRIES=200\"]\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log(
        "--env changed: the preloaded application was built once",
        secs(10),
    );
    server.wait_for_log("serving, generation 2", secs(10));
    assert_eq!(
        server.get("/square?n=150").status,
        404,
        "the table was rebuilt"
    );
}
