//! The configuration file (`-c FILE`) and the pidfile (`-p FILE`), through the binary:
//! errors stop the start with exit 1, even in a value a flag overrides; precedence is
//! file < environment < command line, with `PORT` and `WEB_CONCURRENCY` below the file;
//! `--print-config` reads back to itself; `--check-config` refuses what a start would,
//! binding and creating nothing; and HUP re-reads the file (a broken one keeps
//! the running workers, a changed `workers` changes the count, an unchanged one keeps a
//! TTIN count). Pidfiles: stale ones are replaced, a live one stops the start, and the
//! file goes away on exit.

use std::path::Path;

use nix::sys::signal::Signal;

use crate::load::{CHOREOGRAPHY, Load};
use crate::util::{Launch, Server, TempDir, poll_until, read_pidfile, secs};

/// A directory holding `br-serve.toml` with `text` in it.
fn config_file(text: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("config");
    let path = dir.join("br-serve.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// The pool is complete ("Ready: N of N workers serving") and has exactly `n` workers.
/// Waiting for `n` children alone could catch a larger pool while it is being forked.
#[track_caller]
fn assert_worker_count(server: &Server, n: usize) {
    let ready = server.wait_for_log("Ready:", secs(10));
    assert!(ready.contains(&format!(" of {n} workers")), "{ready}");
    server.wait_children(n, secs(10));
}

#[test]
fn unknown_key_and_bad_toml_exit_1() {
    let (_dir, path) = config_file("workers = 1\nno-such-setting = 3\n");
    let (status, log) = Launch::new()
        .args(&["-c", path_arg(&path)])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("no-such-setting"), "log:\n{log}");

    std::fs::write(&path, "workers = [\n").unwrap();
    let (status, log) = Launch::new()
        .args(&["-c", path_arg(&path)])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(
        !log.contains("Listening at:"),
        "started with bad TOML:\n{log}"
    );
}

/// An access log format with an unknown atom is a bad value like any other: in the file
/// it names the file (exit 1), also where a flag overrides it; it was found only after
/// the parse, blamed on `--access-logformat` (exit 2), and not at all when overridden.
#[test]
fn a_bad_access_log_format_in_the_file_names_the_file() {
    let (_dir, path) = config_file("access-logformat = \"%(zz)s\"\n");
    for overridden in [&[][..], &["--access-logformat", "%(h)s"]] {
        let (status, log) = Launch::new()
            .args(&["-c", path_arg(&path)])
            .args(overridden)
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
        let file = format!("{}: ", path.display());
        assert!(
            log.contains(&file) && log.contains("unknown access log atom"),
            "{log}"
        );
    }
}

/// What no configuration is stops the start, named: a FIFO (which blocked the start, and
/// a HUP, waiting for a writer), a socket (which cannot be opened: "No such device or
/// address") and a file of megabytes (`/dev/zero` was read until
/// memory ran out). `/dev/null` is an empty one, as in gunicorn.
#[test]
fn a_file_that_is_no_configuration_stops_the_start() {
    let (_dir, path) = config_file(&"# padding\n".repeat(200_000));
    let fifo = path.with_extension("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
    let socket = path.with_extension("sock");
    let _listening = std::os::unix::net::UnixListener::bind(&socket).expect("a socket");
    for (file, why) in [
        (path.as_path(), "larger than 1048576 bytes"),
        (fifo.as_path(), "not a regular file"),
        (socket.as_path(), "not a regular file"),
        (Path::new("/dev/zero"), "larger than 1048576 bytes"),
    ] {
        let (status, log) = Launch::new()
            .args(&["-c", path_arg(file)])
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
        assert!(log.contains(why), "{}: log:\n{log}", file.display());
    }
    let (status, log) = Launch::new()
        .args(&["-c", "/dev/null", "--check-config"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{status}; log:\n{log}");
}

#[test]
fn check_config_says_valid_or_not() {
    let (_dir, path) = config_file("workers = 2\ntimeout = 60\n");
    let check = || {
        Launch::new()
            .args(&["-c", path_arg(&path), "--check-config"])
            .run_to_exit(secs(10))
    };
    let (status, log) = check();
    assert_eq!(status.code(), Some(0), "{status}; log:\n{log}");
    assert!(
        !log.contains("Listening at:"),
        "--check-config served:\n{log}"
    );
    std::fs::write(&path, "workers = 2\ntimeout = \"soon\"\n").unwrap();
    let (status, log) = check();
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("timeout"), "log:\n{log}");
}

/// A value of the wrong type is refused, naming the key and what it takes, whether a flag
/// overrides it or not: `false` for a setting that takes a value was dropped, and the
/// default used (`workers = false` gave the CPU count). `false` turns a switch off.
#[test]
fn a_boolean_is_only_for_a_switch() {
    // (the file, a flag that overrides it, what the error says)
    let refused: [(&str, &[&str], &str); 6] = [
        (
            "workers = false",
            &["-w", "2"],
            "'workers': expected a number, not false",
        ),
        (
            "timeout = false",
            &["-t", "5"],
            "'timeout': expected a number of seconds",
        ),
        (
            "bind = false",
            &["-b", "127.0.0.1:0"],
            "'bind': expected a string or an array",
        ),
        (
            "workers = true",
            &["-w", "2"],
            "'workers': expected a number, not true",
        ),
        (
            "workers = [1, 2]",
            &["-w", "2"],
            "'workers': expected a number, not [1, 2]",
        ),
        (
            "reuse-port = \"yes\"",
            &["--reuse-port"],
            "'reuse-port': expected true or false",
        ),
    ];
    for (text, flag, why) in refused {
        let (_dir, path) = config_file(&format!("{text}\n"));
        for overriding in [&[][..], flag] {
            let (status, log) = Launch::new()
                .no_bind()
                .args(overriding)
                .args(&["-c", path_arg(&path), "--check-config"])
                .run_to_exit(secs(10));
            let case = format!("{text} {overriding:?}");
            assert_eq!(status.code(), Some(1), "{case}: {status}; log:\n{log}");
            assert!(log.contains(why), "{case}: log:\n{log}");
        }
    }
    let (_dir, path) = config_file("reuse-port = false\nworkers = 1\n");
    let out = print_config(&["-c", path_arg(&path)]);
    assert!(out.contains("\nreuse-port = false\n"), "{out}");
}

/// A setting given under both spellings is refused, naming both keys: two booleans were
/// resolved in silence, two values refused with clap's usage text, naming neither.
#[test]
fn two_spellings_of_one_setting_are_refused() {
    let cases = [
        ("static-listing = false\nstatic_listing = true\n", "static"),
        ("max_requests = 2\nmax-requests = 3\n", "max"),
    ];
    for (text, stem) in cases {
        let (_dir, path) = config_file(text);
        let (status, log) = Launch::new()
            .args(&["-c", path_arg(&path), "--check-config"])
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{text:?}: {status}; log:\n{log}");
        let named = |sep: &str| log.contains(&format!("'{stem}{sep}"));
        assert!(
            named("-") && named("_") && log.contains("are the same setting"),
            "{text:?}: log:\n{log}"
        );
    }
}

/// A bad value in the file is refused though a flag or the environment overrides it:
/// it would break the start the day the override goes. Either way it is named by its
/// key (`setting 'workers'`), where the value used was named only by its flag.
#[test]
fn a_bad_file_value_is_refused_even_when_overridden() {
    let (_dir, path) = config_file("workers = \"abc\"\n");
    let check = |launch: Launch| {
        let launch = launch.args(&["-c", path_arg(&path), "--check-config"]);
        launch.run_to_exit(secs(10))
    };
    let used = check(Launch::new());
    let by_flag = check(Launch::new().args(&["-w", "2"]));
    let by_env = check(Launch::new().env("BR_SERVE_WORKERS", "2"));
    for (status, log) in [used, by_flag, by_env] {
        assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
        let named = log.contains("setting 'workers'") && log.contains("abc");
        assert!(log.contains(path_arg(&path)) && named, "log:\n{log}");
    }
}

/// The check of a file value that the command line or the environment overrides looks
/// at that value alone: a bad environment variable for another setting, which its flag
/// overrides, is not the file's, and was blamed on it. It is refused as its own (as an
/// overridden file value is, the day the flag goes it is used).
#[test]
fn an_overridden_file_value_is_checked_alone() {
    let (_dir, path) = config_file("workers = 2\n");
    let launch = |timeout: &str| {
        Launch::new()
            .env("BR_SERVE_TIMEOUT", timeout)
            .env("BR_SERVE_WORKERS", "3")
            .args(&["-c", path_arg(&path), "--timeout", "5", "--check-config"])
            .run_to_exit(secs(10))
    };
    let (status, log) = launch("abc");
    assert_eq!(status.code(), Some(2), "{status}; log:\n{log}");
    let named = log.contains("invalid value 'abc' for BR_SERVE_TIMEOUT");
    assert!(named && !log.contains(path_arg(&path)), "log:\n{log}");
    let (status, log) = launch("7");
    assert_eq!(status.code(), Some(0), "{status}; log:\n{log}");
    assert!(log.contains("configuration OK"), "log:\n{log}");
}

/// `--check-config` refuses what would stop a start: a file in a directory that does not
/// exist, or that is a directory, a Unix socket with nowhere to go or a path too long,
/// an `fd://N` open but not a listening socket, a uid with no group, a timeout that
/// rounds to nothing. (An `fd://N` not open in the checking process is passed: only a
/// start can tell.)
#[test]
fn check_config_refuses_what_a_start_would_refuse() {
    let dir = TempDir::new("check");
    let dir_path = dir.join("");
    let dir_path = path_arg(&dir_path);
    // bind(2) takes a Unix socket's path of up to 107 bytes.
    let too_long = format!("unix:/{}", "s".repeat(107));
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--bind", &too_long],
            2,
            "at most 107 bytes, and this one has 108",
        ),
        (
            &["--pid", "/nonexistent/p.pid"],
            1,
            "--pid /nonexistent/p.pid",
        ),
        (&["--pid", dir_path], 1, "is a directory"),
        (
            &["--pid", "/dev/null"],
            1,
            "/dev/null: exists and is not a regular file",
        ),
        (
            &["--access-logfile", "/nonexistent/a.log"],
            1,
            "--access-logfile",
        ),
        (
            &["--error-logfile", "/nonexistent/e.log"],
            1,
            "--error-logfile",
        ),
        (
            &["--bind", "unix:/nonexistent/dir/s.sock"],
            1,
            "/nonexistent/dir",
        ),
        (
            &["--bind", "fd://7"],
            1,
            "--bind fd://7: the descriptor is not a listening",
        ),
        (&["--user", "3999999999"], 1, "--group"),
        (&["--timeout", "0.0001"], 2, "--timeout"),
    ];
    // Descriptor 7 is open (on /dev/null) in the checking process, so it can be judged.
    let with_fd_7 = ["sh", "-c", "exec \"$0\" \"$@\" 7</dev/null"];
    for (args, code, why) in cases {
        let (status, log) = Launch::new()
            .wrapped(&with_fd_7)
            .args(args)
            .args(&["--check-config"])
            .run_to_exit(secs(10));
        assert_eq!(
            status.code(),
            Some(*code),
            "{args:?}: {status}; log:\n{log}"
        );
        assert!(log.contains(why), "{args:?}: log:\n{log}");
    }
}

/// The file's own addresses are checked as `--bind`'s are, and a refusal names the file:
/// `bind = []` listened on the default address, and an address listed twice exited 2
/// blaming `--bind`, which the command line did not give.
#[test]
fn a_file_s_addresses_are_refused_naming_the_file() {
    let cases = [
        ("bind = []\n", "an empty array"),
        (
            "bind = [\"127.0.0.1:18752\", \"127.0.0.1:18752\"]\n",
            "127.0.0.1:18752 is given twice",
        ),
        (
            "bind = [\"0.0.0.0:18752\", \"127.0.0.1:18752\"]\n",
            "0.0.0.0:18752 already listens on 127.0.0.1:18752",
        ),
    ];
    // Also where `--bind` or BR_SERVE_BIND overrides them, as a bad value is: the day the
    // override goes, the file's addresses are listened on.
    for (text, why) in cases {
        let (_dir, file) = config_file(text);
        for override_by in [None, Some("--bind"), Some("BR_SERVE_BIND")] {
            let launch = Launch::new()
                .no_bind()
                .args(&["-c", path_arg(&file), "--check-config"]);
            let launch = match override_by {
                None => launch,
                Some("--bind") => launch.args(&["--bind", "127.0.0.1:18753"]),
                Some(variable) => launch.env(variable, "127.0.0.1:18753"),
            };
            let (status, log) = launch.run_to_exit(secs(10));
            let case = format!("{text} overridden by {override_by:?}");
            assert_eq!(status.code(), Some(1), "{case}: {status}; log:\n{log}");
            let named = format!("{}: setting 'bind': {why}", file.display());
            assert!(log.contains(&named), "{case}: log:\n{log}");
        }
    }
    // With --reuse-port, a wildcard beside an address it covers is no clash, overridden
    // or not; the --reuse-port judged is the one that would apply: the command line's or
    // the environment's over the file's, `BR_SERVE_REUSE_PORT=false` too.
    let wide = "bind = [\"0.0.0.0:18752\", \"127.0.0.1:18752\"]\n";
    let shared = format!("{wide}reuse-port = true\n");
    let cases: [(&str, &[&str], Option<&str>, i32); 4] = [
        (wide, &["--reuse-port"], None, 0),
        (wide, &[], Some("1"), 0),
        (&shared, &[], Some("false"), 1),
        (&shared, &[], None, 0),
    ];
    for (text, flags, variable, code) in cases {
        let (_dir, file) = config_file(text);
        let args = [
            "-c",
            path_arg(&file),
            "--check-config",
            "--bind",
            "127.0.0.1:18753",
        ];
        let launch = Launch::new().no_bind().args(&args).args(flags);
        let launch = match variable {
            Some(value) => launch.env("BR_SERVE_REUSE_PORT", value),
            None => launch,
        };
        let (status, log) = launch.run_to_exit(secs(10));
        let case = format!("{text:?} {flags:?} BR_SERVE_REUSE_PORT={variable:?}");
        assert_eq!(status.code(), Some(code), "{case}: {status}; log:\n{log}");
    }
}

/// An empty path is refused, from a flag, the environment or the file: an empty
/// `--access-logfile` passed `--check-config` (as the current directory), then failed
/// at start.
#[test]
fn an_empty_path_is_refused() {
    let (_dir, file) = config_file("access-logfile = \"\"\n");
    let root = path_arg(file.parent().expect("the file's directory"));
    let launches = [
        (
            Launch::new().args(&["--access-logfile", ""]),
            "'--access-logfile <FILE>'",
        ),
        (
            Launch::new().env("BR_SERVE_ACCESS_LOGFILE", ""),
            "BR_SERVE_ACCESS_LOGFILE",
        ),
        (
            Launch::new().args(&["-c", path_arg(&file)]),
            "'--access-logfile <FILE>'",
        ),
        (
            Launch::new().args(&["--static", root, "--static-fallback", ""]),
            "'--static-fallback <PATH>'",
        ),
    ];
    for (launch, flag) in launches {
        let (status, log) = launch.args(&["--check-config"]).run_to_exit(secs(10));
        assert!(!status.success(), "{flag}: {status}; log:\n{log}");
        let why = format!("a value is required for {flag} ");
        assert!(log.contains(&why), "{flag}: log:\n{log}");
    }
}

/// `--check-config` runs beside the live server, before a HUP: it binds no TCP port (the
/// server's is taken) and creates none of the files it checks.
#[test]
fn check_config_binds_and_creates_nothing() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    let dir = TempDir::new("check-quiet");
    let (pid, log, socket) = (dir.join("a.pid"), dir.join("a.log"), dir.join("a.sock"));
    let unix = format!("unix:{}", socket.display());
    let (status, out) = Launch::new()
        .no_bind()
        .args(&["--bind", &server.addr().to_string(), "--bind", &unix])
        .args(&["--pid", path_arg(&pid), "--access-logfile", path_arg(&log)])
        .args(&["--check-config"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{status}; output:\n{out}");
    for path in [pid, log, socket] {
        assert!(!path.exists(), "--check-config created {}", path.display());
    }
}

#[test]
fn precedence_is_file_then_environment_then_command_line() {
    let (_dir, path) = config_file("workers = 3\n");
    let file = Launch::new().args(&["-c", path_arg(&path)]);
    let env = |launch: Launch| launch.env("BR_SERVE_WORKERS", "2");
    assert_worker_count(&env(file).args(&["--workers", "1"]).start(), 1);
    let file = Launch::new().args(&["-c", path_arg(&path)]);
    assert_worker_count(&env(file).start(), 2);
    let file = Launch::new().args(&["-c", path_arg(&path)]);
    assert_worker_count(&file.start(), 3);
}

/// `--print-config` with `args`: what it printed, after checking that it succeeded.
#[track_caller]
fn print_config(args: &[&str]) -> String {
    let (status, out) = Launch::new()
        .no_bind()
        .args(args)
        .args(&["--print-config"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{status}; output:\n{out}");
    out
}

/// `PORT` and `WEB_CONCURRENCY` are defaults, as in gunicorn: below the file, which
/// overrides them, and below `BR_SERVE_*`.
#[test]
fn port_and_web_concurrency_are_defaults_below_the_file() {
    let print = |file: &str, env: &[(&str, &str)]| {
        let (_dir, path) = config_file(file);
        let launch = Launch::new().no_bind().args(&["-c", path_arg(&path)]);
        let launch = env.iter().fold(launch, |l, (k, v)| l.env(k, v));
        let (status, out) = launch.args(&["--print-config"]).run_to_exit(secs(10));
        assert_eq!(status.code(), Some(0), "{status}; output:\n{out}");
        out
    };
    let defaults = [("PORT", "5000"), ("WEB_CONCURRENCY", "2")];
    let file = "workers = 3\nbind = [\"127.0.0.1:6000\"]\n";
    let out = print(file, &defaults);
    assert!(out.contains("\nworkers = 3\n"), "{out}");
    assert!(out.contains("\nbind = [\"127.0.0.1:6000\"]\n"), "{out}");
    let out = print("backlog = 64\n", &defaults);
    assert!(out.contains("\nworkers = 2\n"), "{out}");
    assert!(out.contains("\nbind = [\"0.0.0.0:5000\"]\n"), "{out}");
    let out = print(file, &[("BR_SERVE_WORKERS", "4")]);
    assert!(out.contains("\nworkers = 4\n"), "{out}");
}

#[test]
fn print_config_reads_back_to_itself() {
    let first = print_config(&[
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "3",
        "--timeout",
        "7",
        "--max-requests",
        "9",
        "--access-log-json",
    ]);
    assert!(first.contains("workers = 3"), "{first}");
    let (_dir, path) = config_file(&first);
    let second = print_config(&["-c", path_arg(&path)]);
    assert_eq!(first, second);
}

/// Every kind of value prints with its flag's TOML type, so the file reads back the same:
/// a path or format that looks like a number or a boolean stays a string, and seconds
/// and counts written in other ways print as the numbers they are.
#[test]
fn print_config_round_trips_every_kind_of_value() {
    let dir = TempDir::new("print-config");
    let root = dir.join("www");
    std::fs::create_dir(&root).unwrap();
    let flags = [
        ["--access-logfile", "true"],
        ["--access-logformat", "007"],
        ["--pid", "0123"],
        ["--error-logfile", "1"],
        ["--static", path_arg(&root)],
        ["--static-max-age", "0.25"],
        ["--metrics-path", "/metrics"],
        ["--metrics-bind", "127.0.0.1:0"],
        ["--umask", "027"],
        ["--log-level", "warning"],
        ["--signal-profile", "nginx"],
        ["--timeout", "1.5"],
        ["--graceful-timeout", "2.50"],
        ["--keep-alive", "1e1"],
        ["--queue-timeout", "0.25"],
        ["--max-workers", "512"],
        ["--scale-down-after", "2"],
        ["--max-requests", "18446744073709551615"],
        ["--max-requests-jitter", "007"],
        ["--max-worker-memory", "512M"],
        ["--limit-request-body", "64K"],
        ["--backlog", "64"],
        ["--worker-connections", "10"],
        ["--bind", "unix:/tmp/br-serve,1.sock"],
    ];
    let mut args: Vec<&str> = flags.concat();
    args.extend(["--access-log-json", "--reuse-port"]);
    let first = print_config(&args);
    for line in [
        "access-logfile = \"true\"",
        "access-logformat = \"007\"",
        "pid = \"0123\"",
        "error-logfile = \"1\"",
        "max-requests-jitter = 7",
        "keep-alive = 10",
        "graceful-timeout = 2.5",
        "bind = [\"unix:/tmp/br-serve,1.sock\"]",
    ] {
        assert!(first.lines().any(|l| l == line), "no {line:?} in:\n{first}");
    }
    let (_dir, path) = config_file(&first);
    assert_eq!(first, print_config(&["-c", path_arg(&path)]));
}

/// The pidfile and the logs are `rw-r--r--` less `--umask`, whatever umask br-serve was
/// started under: under 077 they were `rw-------`, unreadable to a log shipper or a
/// monitor running as another user.
#[test]
fn files_get_their_mode_whatever_the_starting_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("modes");
    let files = ["app.pid", "error.log", "access.log"].map(|name| dir.join(name));
    let [pidfile, error_log, access_log] = files.each_ref().map(|path| path_arg(path));
    let server = Launch::new()
        .wrapped(&["sh", "-c", "umask 077; exec \"$0\" \"$@\""])
        .args(&[
            "--workers",
            "1",
            "--pid",
            pidfile,
            "--error-logfile",
            error_log,
        ])
        .args(&["--access-logfile", access_log])
        .start_unready();
    poll_until(secs(10), || files.iter().all(|f| f.exists()).then_some(()))
        .expect("the pidfile and both logs created");
    for file in &files {
        let mode = std::fs::metadata(file).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o644), "{}", file.display());
    }
    drop(server);
}

/// In TOML an integer is a number: `umask = 0o027` is the mask 027 (not 023, its decimal
/// digits read as octal), and `--print-config` writes a mask so that it reads back.
#[test]
fn a_toml_umask_is_an_octal_number() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, path) = config_file("workers = 1\numask = 0o027\n");
    let pidfile = dir.join("app.pid");
    let server = Launch::new()
        .args(&["-c", path_arg(&path), "--pid", path_arg(&pidfile)])
        .start();
    let mode = std::fs::metadata(&pidfile).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o640), "{}", server.ready_line());

    let (status, out) = Launch::new()
        .no_bind()
        .args(&["--umask", "027", "--print-config"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("umask = \"027\"\n"), "{out}");
}

/// A TOML umask the flag refuses is named as the file has it: `-1` was reported as the
/// octal digits it was passed on as, `0o1777777777777777777777`.
#[test]
fn a_refused_toml_umask_is_named_as_written() {
    for (text, why) in [
        ("umask = -1", "invalid value -1 for '--umask <OCTAL>'"),
        (
            "umask = 777",
            "invalid value 777 (0o1411) for '--umask <OCTAL>'",
        ),
    ] {
        let (_dir, path) = config_file(&format!("{text}\n"));
        let (status, log) = Launch::new()
            .args(&["-c", path_arg(&path), "--check-config"])
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{text}: {status}; log:\n{log}");
        assert!(log.contains(why), "{text}: log:\n{log}");
    }
}

#[test]
fn on_off_environment_variables_read_as_manifests_write_them() {
    let print = |value: &str| {
        let (status, out) = Launch::new()
            .env("BR_SERVE_REUSE_PORT", value)
            .args(&["--print-config"])
            .run_to_exit(secs(10));
        (status.code(), out)
    };
    for (value, want) in [
        ("1", true),
        ("yes", true),
        ("on", true),
        ("0", false),
        ("no", false),
    ] {
        let (code, out) = print(value);
        assert_eq!(code, Some(0), "{value}: {out}");
        // Printed as a boolean, so the printed file reads back.
        assert!(
            out.contains(&format!("reuse-port = {want}\n")),
            "{value}: {out}"
        );
    }
    let (code, out) = print("maybe");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("invalid value 'maybe' for BR_SERVE_REUSE_PORT"),
        "{out}"
    );
}

#[test]
fn hup_with_a_broken_file_keeps_the_old_workers() {
    let (_dir, path) = config_file("workers = 2\n");
    let server = Launch::new().args(&["-c", path_arg(&path)]).start();
    let before = server.wait_children(2, secs(10));
    let load = Load::start(server.addr(), CHOREOGRAPHY);
    let broken = ["workers = 2\nno-such-setting = 1\n", "workers = \"many\"\n"];
    for (n, text) in broken.into_iter().enumerate() {
        std::fs::write(&path, text).unwrap();
        server.signal(Signal::SIGHUP);
        let failed = poll_until(secs(10), || {
            let lines = server.log().into_iter();
            (lines.filter(|l| l.contains("Reload failed")).count() > n).then_some(())
        });
        assert!(failed.is_some(), "no 'Reload failed' for {text:?}");
        // The error log is no command line: clap's "try '--help'" has no place there.
        let log = server.log();
        let hint = log.iter().find(|l| l.contains("--help"));
        assert!(hint.is_none(), "{hint:?} after the broken {text:?}");
        assert_eq!(server.children(), before, "after the broken {text:?}");
        load.wait_progress(10, secs(10));
    }
    // A FIFO in the file's place: the master waited in open(2) for a writer, for ever,
    // supervising nothing.
    std::fs::remove_file(&path).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
    server.signal(Signal::SIGHUP);
    server.wait_for_log("not a regular file", secs(10));
    assert_eq!(server.children(), before, "after the FIFO");
    load.finish();
    let log = server.log();
    assert!(!log.iter().any(|l| l.contains("Starting generation 2")));
}

/// A HUP that lowers `--timeout` does not cut short the requests the retiring workers
/// are in, which began under the old one: the retiring worker was killed 1 s into its
/// 3 s request, long before `--graceful-timeout`, and its client got 500.
#[test]
fn hup_lowering_the_timeout_lets_retiring_workers_finish() {
    let (_dir, path) = config_file("workers = 1\ntimeout = 30\n");
    let server = Launch::new().args(&["-c", path_arg(&path)]).start();
    let mut sleeper = server.sleeper(3000);
    std::fs::write(&path, "workers = 1\ntimeout = 1\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 2", secs(10));
    assert_eq!(sleeper.read_response(secs(20)).status, 200);
    let log = server.log().join("\n");
    assert!(!log.contains("WORKER TIMEOUT"), "{log}");
}

#[test]
fn hup_applies_a_changed_worker_count() {
    let (_dir, path) = config_file("workers = 2\n");
    let server = Launch::new().args(&["-c", path_arg(&path)]).start();
    server.wait_children(2, secs(10));
    std::fs::write(&path, "workers = 3\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 2 with 3 workers", secs(10));
    server.wait_children(3, secs(15));
}

/// A HUP that switches autoscaling off brings the pool back to `--workers`, however far
/// the autoscaler had taken it.
#[test]
fn hup_without_max_workers_returns_to_the_configured_count() {
    let (_dir, path) = config_file("workers = 1\nmax-workers = 3\nscale-down-after = 60\n");
    let server = Launch::new().args(&["-c", path_arg(&path)]).start();
    let _sleepers: Vec<_> = (0..3).map(|_| server.sent_sleeper(20_000)).collect();
    server.wait_for_log("workers 1 -> 2", secs(15));
    std::fs::write(&path, "workers = 1\n").unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 2 with 1 workers", secs(10));
}

#[test]
fn hup_keeps_the_listeners_and_umask_and_says_so() {
    let (_dir, path) = config_file("workers = 1\nbacklog = 64\n");
    let server = Launch::new().args(&["-c", path_arg(&path)]).start();
    std::fs::write(
        &path,
        "workers = 1\nbacklog = 128\nreuse-port = true\numask = \"077\"\n",
    )
    .unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("listeners change only on restart or USR2", secs(10));
    server.wait_for_log("--umask changed", secs(10));
    server.wait_for_log("Starting generation 2", secs(10));
    assert_eq!(server.get("/").status, 200);
}

/// HUP applies a new `--log-level` at once (the new generation's workers log at it), and
/// says that new log files and pidfile wait for a restart or USR2.
#[test]
fn hup_applies_the_log_level_and_says_the_files_wait() {
    let (dir, path) = config_file("workers = 1\n");
    let server = Launch::new().args(&["-c", path_arg(&path)]).start();
    let access = dir.join("access.log");
    let text = format!("workers = 1\nlog-level = \"debug\"\naccess-logfile = {access:?}\n");
    std::fs::write(&path, text).unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("--log-level changed to DEBUG", secs(10));
    server.wait_for_log("--access-logfile", secs(10));
    server.wait_for_log("serving, generation 2", secs(10));
    // A worker of the new generation logs a malformed request at debug level.
    let mut conn = server.connect();
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    assert_eq!(conn.read_response(secs(10)).status, 400);
    server.wait_for_log("DEBUG closing", secs(10));
    assert!(!access.exists(), "the access log was opened by a HUP");
}

#[test]
fn ttin_count_survives_hup_when_the_file_keeps_workers() {
    let (_dir, path) = config_file("workers = 2\n");
    let server = Launch::new().args(&["-c", path_arg(&path)]).start();
    server.wait_children(2, secs(10));
    server.signal(Signal::SIGTTIN);
    let before = server.wait_children(3, secs(10));
    server.signal(Signal::SIGHUP);
    server.wait_for_log("Starting generation 2 with 3 workers", secs(10));
    let rolled = poll_until(secs(15), || {
        let now = server.children();
        (now.len() == 3 && now.iter().all(|p| !before.contains(p))).then_some(())
    });
    assert!(
        rolled.is_some(),
        "generation 2 is not 3 new workers: {before:?} -> {:?}",
        server.children()
    );
}

#[test]
fn stale_pidfile_is_replaced_and_removed_on_exit() {
    let dir = TempDir::new("pidfile");
    let pidfile = dir.join("app.pid");
    // No Linux pid reaches i32::MAX (pid_max is at most 2^22).
    std::fs::write(&pidfile, format!("{}\n", i32::MAX)).unwrap();
    let mut server = Launch::new()
        .args(&["--workers", "1", "-p", path_arg(&pidfile)])
        .start();
    let written = poll_until(secs(10), || {
        (read_pidfile(&pidfile) == Some(server.pid())).then_some(())
    });
    assert!(
        written.is_some(),
        "pidfile holds {:?}",
        read_pidfile(&pidfile)
    );
    server.signal(Signal::SIGTERM);
    assert_eq!(server.wait_exit(secs(15)).code(), Some(0));
    assert!(!pidfile.exists(), "pidfile left behind after exit");
}

/// A pidfile naming a running master stops the start before anything is bound: it
/// listened first, and with `--reuse-port` the kernel gave the refused start some of the
/// running server's connections, reset as it exited. (Its Unix socket, bound and left
/// behind, shows whether it bound.)
#[test]
fn pidfile_naming_a_running_master_stops_the_start() {
    let dir = TempDir::new("pidfile");
    let pidfile = dir.join("app.pid");
    let socket = dir.join("refused.sock");
    let running = Launch::new().args(&["--workers", "1"]).start();
    std::fs::write(&pidfile, format!("{}\n", running.pid())).unwrap();
    let (status, log) = Launch::new()
        .args(&["--workers", "1", "-p", path_arg(&pidfile)])
        .args(&["--bind", &format!("unix:{}", socket.display())])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains(&running.pid().to_string()), "log:\n{log}");
    assert!(!socket.exists(), "the refused start bound its socket");
    assert_eq!(
        read_pidfile(&pidfile),
        Some(running.pid()),
        "the live pidfile was changed"
    );
}

/// Something at the pidfile's path that is not a regular file stops the start, and is
/// left there: the pidfile replaced it and was removed at exit (`--pid /dev/null`, as
/// root, took /dev/null away). A symbolic link too, even to a regular file: the link
/// was replaced, and the file it points to never written.
#[test]
fn a_pidfile_path_holding_no_regular_file_stops_the_start() {
    let dir = TempDir::new("pidfile");
    let fifo = dir.join("fifo.pid");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let link = dir.join("link.pid");
    std::fs::write(dir.join("real.pid"), "").unwrap();
    std::os::unix::fs::symlink("real.pid", &link).unwrap();
    for (path, why) in [
        (&fifo, "exists and is not a regular file"),
        (&link, "is a symbolic link"),
    ] {
        let (status, log) = Launch::new()
            .args(&["--workers", "1", "-p", path_arg(path)])
            .run_to_exit(secs(10));
        assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
        assert!(log.contains(why), "log:\n{log}");
    }
    let kind = |path| std::fs::symlink_metadata(path).unwrap().file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&kind(&fifo)),
        "the FIFO was replaced"
    );
    assert!(kind(&link).is_symlink(), "the link was replaced");
}

/// A pidfile naming a zombie, a master SIGKILLed a moment ago whose parent has yet to
/// reap it, is stale: a zombie answers signal 0 but runs nothing.
#[test]
fn pidfile_naming_a_zombie_is_stale() {
    let dir = TempDir::new("pidfile");
    let pidfile = dir.join("app.pid");
    let mut dead = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    dead.kill().expect("kill sleep");
    // Unreaped until the end of the test: a zombie, our child.
    let zombie = poll_until(secs(10), || crate::util::is_zombie(dead.id()).then_some(()));
    assert!(zombie.is_some(), "sleep did not become a zombie");
    std::fs::write(&pidfile, format!("{}\n", dead.id())).unwrap();
    let server = Launch::new()
        .args(&["--workers", "1", "-p", path_arg(&pidfile)])
        .start();
    assert_eq!(read_pidfile(&pidfile), Some(server.pid()));
    dead.wait().expect("reap sleep");
}

/// A pidfile left by a master that is gone, whose pid now belongs to another program (a
/// container restarted with the file on a volume), is stale: the start goes on.
#[test]
fn pidfile_naming_another_program_is_stale() {
    let dir = TempDir::new("pidfile");
    let pidfile = dir.join("app.pid");
    // This test process is alive, and it is not br-serve.
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
    let server = Launch::new()
        .args(&["--workers", "1", "-p", path_arg(&pidfile)])
        .start();
    server.wait_for_log("stale, replacing it", secs(10));
    assert_eq!(read_pidfile(&pidfile), Some(server.pid()));
}
