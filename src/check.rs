//! `br-serve check URL`: a tiny HTTP/1.1 probe for container health checks.
//!
//! A minimal runtime image has no curl or wget, so the image's HEALTHCHECK asks the
//! binary itself. It sends one `GET`, and succeeds (exit 0) when the answer's status is
//! 2xx or 3xx within the timeout; otherwise it prints why and exits 1.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Usage of the subcommand, after the program's name.
const USAGE: &str = "check [--proxy-protocol] http://HOST:PORT/PATH [TIMEOUT_SECONDS]";
/// What `check --help` says below the usage.
const HELP: &str = "Sends one GET and exits 0 when the answer is a 2xx or 3xx within the \
timeout (5 s unless given), 1 otherwise, saying why: a container's HEALTHCHECK without curl. \
--proxy-protocol sends a PROXY protocol header first (`PROXY UNKNOWN`), for a server \
started with --proxy-protocol, which refuses requests without one.";

/// What `--proxy-protocol` sends ahead of the request: a version 1 header that names no
/// client, so the server keeps the connection's own address (HAProxy's proxy-protocol.txt
/// §2.1), as a balancer's health check would.
const PROXY_UNKNOWN: &str = "PROXY UNKNOWN\r\n";

/// Runs the probe; `args` are the words after `check`.
pub fn run(args: &[String]) -> ExitCode {
    if args.first().is_some_and(|a| a == "--help" || a == "-h") {
        let text = format!("usage: {} {USAGE}\n\n{HELP}\n", crate::program().0);
        crate::say(std::io::stdout(), &text);
        return ExitCode::SUCCESS;
    }
    let (url, timeout, proxied) = match parse_args(args) {
        Ok(parsed) => parsed,
        Err(None) => return usage(),
        Err(Some(why)) => return fail(&why),
    };
    match probe(url, timeout, proxied) {
        Ok((status, _)) if passes(status) => ExitCode::SUCCESS,
        Ok((status, None)) => fail(&format!("{url}: status {status}")),
        Ok((status, Some(why))) => fail(&format!("{url}: status {status}: {why}")),
        Err(err) => fail(&format!("{url}: {err}")),
    }
}

/// A 2xx or a 3xx.
fn passes(status: u16) -> bool {
    (200..400).contains(&status)
}

/// The URL, the timeout and whether to send a PROXY header, from the words after
/// `check`: `--proxy-protocol` may stand anywhere among them. Refused with the usage
/// (`None`), or with what is wrong with the timeout, which the usage alone did not say.
fn parse_args(args: &[String]) -> Result<(&str, Duration, bool), Option<String>> {
    let proxied = args.iter().any(|arg| arg == "--proxy-protocol");
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|&arg| arg != "--proxy-protocol")
        .collect();
    match words[..] {
        [url] => Ok((url, Duration::from_secs(5), proxied)),
        [url, secs] => match secs.parse().ok().and_then(timeout_of) {
            Some(timeout) => Ok((url, timeout, proxied)),
            None => Err(Some(format!(
                "invalid TIMEOUT_SECONDS '{secs}': expected a number of seconds above 0, \
                 86400 at most"
            ))),
        },
        _ => Err(None),
    }
}

/// A positive number of seconds, a day at most (`1e19` overflowed the deadline).
fn timeout_of(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|timeout| !timeout.is_zero() && *timeout <= Duration::from_secs(86_400))
}

fn usage() -> ExitCode {
    fail(&format!("usage: {} {USAGE}", crate::program().0))
}

fn fail(message: &str) -> ExitCode {
    crate::say(
        std::io::stderr(),
        &format!("{} check: {message}\n", crate::program().0),
    );
    ExitCode::FAILURE
}

/// Splits `http://host:port/path` into (authority, path).
fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.is_empty() {
        true => Err("missing host".into()),
        false => Ok((authority, if path.is_empty() { "/" } else { path })),
    }
}

/// Sends the GET (after a PROXY header when `proxied`) and reads the answer's status,
/// and for a failing one what its body says ([`reason`]), all within `timeout`: each
/// step waits only for what is left of it, so a server dripping its answer cannot
/// stretch the check.
fn probe(url: &str, timeout: Duration, proxied: bool) -> Result<(u16, Option<String>), String> {
    let deadline = Deadline(Instant::now() + timeout, timeout);
    let (authority, path) = split_url(url)?;
    let with_port = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut stream =
        TcpStream::connect_timeout(&addr, deadline.left()?).map_err(|e| deadline.failed(e))?;
    let header = if proxied { PROXY_UNKNOWN } else { "" };
    let request = format!(
        "{header}GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: br-serve-check\r\n\r\n"
    );
    stream
        .set_write_timeout(Some(deadline.left()?))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| deadline.failed(e))?;
    let (status, answer) = read_status(&mut stream, &deadline)?;
    let why = match passes(status) {
        true => None,
        false => reason(&mut stream, answer, &deadline),
    };
    Ok((status, why))
}

/// The first line of a failing answer's body, printable and cut at [`MOST_REASON`]
/// characters: the master's `/healthz` says there why it fails (`no worker is serving:
/// workers die during boot (6 in a row)`), and this line is what `docker inspect`
/// shows of a failed check. `answer` holds what was read from the status line on; the
/// rest is read until the server closes (the request asked it to), [`MOST_ANSWER`]
/// bytes or the deadline, whichever comes first.
fn reason(stream: &mut TcpStream, mut answer: Vec<u8>, deadline: &Deadline) -> Option<String> {
    let mut chunk = [0u8; 512];
    while answer.len() < MOST_ANSWER {
        let Ok(left) = deadline.left() else { break };
        if stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let line = answer.get(end + 4..)?.split(|&b| b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    let text: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MOST_REASON)
        .collect();
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// The most of a failing answer read for its reason.
const MOST_ANSWER: usize = 4096;

/// The most characters of a reason shown.
const MOST_REASON: usize = 200;

/// When the check must be over, and the timeout it was given (to say it).
struct Deadline(Instant, Duration);

impl Deadline {
    /// What is left of the timeout, or why the check fails when nothing is.
    fn left(&self) -> Result<Duration, String> {
        let left = self.0.saturating_duration_since(Instant::now());
        match left.is_zero() {
            true => Err(self.late()),
            false => Ok(left),
        }
    }

    /// Why a step failed: its time ran out, or something else.
    fn failed(&self, err: std::io::Error) -> String {
        match err.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => self.late(),
            _ => err.to_string(),
        }
    }

    fn late(&self) -> String {
        format!("no answer within {:?}", self.1)
    }
}

/// The final answer's status code, with what was read of that answer. The status line
/// may come in pieces: read until it is whole or the server closes. An interim answer
/// (RFC 9110 §15.2: `103 Early Hints`) is followed by the final one, so its head is
/// skipped.
fn read_status(stream: &mut TcpStream, deadline: &Deadline) -> Result<(u16, Vec<u8>), String> {
    let mut head = Vec::with_capacity(STATUS_LINE_START);
    loop {
        match parse_status(&head) {
            Some(status) if (100..200).contains(&status) && status != 101 => {
                if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    head.drain(..end + 4);
                    continue;
                }
            }
            Some(status) => return Ok((status, head)),
            None if head.len() >= STATUS_LINE_START => break,
            None => {}
        }
        // Interim heads without end: no answer.
        if head.len() > MOST_HEAD {
            break;
        }
        stream
            .set_read_timeout(Some(deadline.left()?))
            .map_err(|e| deadline.failed(e))?;
        let mut chunk = [0u8; 512];
        match stream.read(&mut chunk).map_err(|e| deadline.failed(e))? {
            0 => break,
            n => head.extend_from_slice(&chunk[..n]),
        }
    }
    Err("not an HTTP response".to_string())
}

/// The most of an interim answer's head read while looking for its end.
const MOST_HEAD: usize = 64 * 1024;

/// `HTTP/1.x NNN `: the part of a status line that holds the code.
const STATUS_LINE_START: usize = 13;

/// The status code of `HTTP/1.x NNN ...` (RFC 9112 §4: three digits, then a space).
fn parse_status(head: &[u8]) -> Option<u16> {
    let start = head.get(..STATUS_LINE_START)?;
    let code = start
        .strip_prefix(b"HTTP/1.")?
        .get(2..)?
        .strip_suffix(b" ")?;
    let code = std::str::from_utf8(code).ok()?;
    code.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| code.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on a port of its own that reads the request, then writes `parts`,
    /// `pause` apart; its URL.
    fn answering(parts: &'static [&'static [u8]], pause: Duration) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("its address"));
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let _ = conn.read(&mut [0u8; 1024]);
            for part in parts {
                std::thread::sleep(pause);
                let _ = conn.write_all(part);
            }
        });
        url
    }

    #[test]
    fn an_interim_answer_is_skipped_for_the_final_one() {
        let parts: &[&[u8]] = &[
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 50",
            b"3 X\r\n",
        ];
        let url = answering(parts, Duration::ZERO);
        assert_eq!(probe(&url, Duration::from_secs(10), false), Ok((503, None)));
    }

    /// A failing answer's reason is the first line of its body, as the master's
    /// `/healthz` gives it; a passing answer's body is not read.
    #[test]
    fn a_failing_answer_says_why() {
        let parts: &[&[u8]] = &[
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 60\r\n\r\n",
            b"no worker is serving: workers die during boot (6 in a row)\n\x1b[2Jmore\n",
        ];
        let url = answering(parts, Duration::from_millis(50));
        let why = "no worker is serving: workers die during boot (6 in a row)";
        let got = probe(&url, Duration::from_secs(10), false);
        assert_eq!(got, Ok((503, Some(why.to_string()))));
        let parts: &[&[u8]] = &[b"HTTP/1.1 200 OK\r\n\r\nok\n"];
        let url = answering(parts, Duration::ZERO);
        assert_eq!(probe(&url, Duration::from_secs(10), false), Ok((200, None)));
        let parts: &[&[u8]] = &[b"HTTP/1.1 500 X\r\n\r\n\x07\x07\n"];
        let url = answering(parts, Duration::ZERO);
        assert_eq!(probe(&url, Duration::from_secs(10), false), Ok((500, None)));
    }

    /// The timeout bounds the whole check: it read each byte of a dripped status line
    /// within it, and passed after ten times as long.
    #[test]
    fn the_timeout_bounds_the_whole_check() {
        let parts: &[&[u8]] = &[b"HTTP", b"/1.1", b" 200", b" OK\r\n", b"\r\n"];
        let url = answering(parts, Duration::from_millis(400));
        let result = probe(&url, Duration::from_millis(900), false);
        assert_eq!(result, Err("no answer within 900ms".to_string()));
    }

    #[test]
    fn arguments() {
        let parsed = |words: &[&str]| {
            let args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            parse_args(&args)
                .map(|(url, timeout, proxied)| (url.to_string(), timeout, proxied))
                .map_err(|why| why.is_some())
        };
        let url = "http://h:1/".to_string();
        let five = Duration::from_secs(5);
        assert_eq!(parsed(&["http://h:1/"]), Ok((url.clone(), five, false)));
        assert_eq!(
            parsed(&["--proxy-protocol", "http://h:1/"]),
            Ok((url.clone(), five, true))
        );
        let after = parsed(&["http://h:1/", "2", "--proxy-protocol"]);
        assert_eq!(after, Ok((url, Duration::from_secs(2), true)));
        // The usage (false), or what is wrong with the timeout (true).
        assert_eq!(parsed(&[]), Err(false));
        assert_eq!(parsed(&["a", "1", "b"]), Err(false));
        for bad in ["0", "abc", "-1", "86401"] {
            assert_eq!(parsed(&["http://h:1/", bad]), Err(true), "{bad}");
        }
    }

    #[test]
    fn urls_and_status_lines() {
        assert_eq!(
            split_url("http://127.0.0.1:80/healthz"),
            Ok(("127.0.0.1:80", "/healthz"))
        );
        assert_eq!(split_url("http://localhost"), Ok(("localhost", "/")));
        assert!(split_url("https://x/").is_err() && split_url("http:///").is_err());
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status(b"HTTP/1.1"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(parse_status(b"HTTP/1.1 +20 OK"), None);
        assert_eq!(timeout_of(0.5), Some(Duration::from_millis(500)));
        for bad in [0.0, -1.0, 1e19, 1e20, f64::NAN, f64::INFINITY] {
            assert_eq!(timeout_of(bad), None, "{bad}");
        }
    }
}
