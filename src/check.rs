//! `br-serve check URL`: a tiny HTTP/1.1 probe for container health checks.
//!
//! A minimal runtime image has no curl or wget, so the image's HEALTHCHECK asks the
//! binary itself. It sends one `GET`, and succeeds (exit 0) when the answer's status is
//! 2xx or 3xx within the timeout; otherwise it prints why and exits 1.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Usage of the subcommand, after the program's name.
const USAGE: &str = "check http://HOST:PORT/PATH [TIMEOUT_SECONDS]";
/// What `check --help` says below the usage.
const HELP: &str = "Sends one GET and exits 0 when the answer is a 2xx or 3xx within the \
timeout (5 s unless given), 1 otherwise, saying why: a container's HEALTHCHECK without curl.";

/// Runs the probe; `args` are the words after `check`.
pub fn run(args: &[String]) -> ExitCode {
    if args.first().is_some_and(|a| a == "--help" || a == "-h") {
        // Not println!, which panics when the reader has gone (`check --help | head`).
        let text = format!("usage: {} {USAGE}\n\n{HELP}\n", crate::program().0);
        let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
        return ExitCode::SUCCESS;
    }
    let (url, timeout) = match args {
        [url] => (url, Duration::from_secs(5)),
        [url, secs] => match secs.parse().ok().and_then(timeout_of) {
            Some(timeout) => (url, timeout),
            None => return usage(),
        },
        _ => return usage(),
    };
    match probe(url, timeout) {
        Ok(status) if (200..400).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => fail(&format!("{url}: status {status}")),
        Err(err) => fail(&format!("{url}: {err}")),
    }
}

/// A positive number of seconds that a `Duration` holds (`1e20` does not).
fn timeout_of(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|timeout| !timeout.is_zero())
}

fn usage() -> ExitCode {
    fail(&format!("usage: {} {USAGE}", crate::program().0))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("{} check: {message}", crate::program().0);
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

fn probe(url: &str, timeout: Duration) -> Result<u16, String> {
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
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: br-serve-check\r\n\r\n"
    );
    let failed = |e: std::io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("no answer within {timeout:?}"),
        _ => e.to_string(),
    };
    stream.write_all(request.as_bytes()).map_err(failed)?;
    // The status line may come in pieces: read until it is whole or the server closes.
    let mut head = Vec::with_capacity(STATUS_LINE_START);
    let mut chunk = [0u8; 64];
    while head.len() < STATUS_LINE_START {
        match stream.read(&mut chunk).map_err(failed)? {
            0 => break,
            n => head.extend_from_slice(&chunk[..n]),
        }
    }
    parse_status(&head).ok_or_else(|| "not an HTTP response".to_string())
}

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
        for bad in [0.0, -1.0, 1e20, f64::NAN, f64::INFINITY] {
            assert_eq!(timeout_of(bad), None, "{bad}");
        }
    }
}
