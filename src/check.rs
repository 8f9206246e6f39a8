//! `br-serve check URL`: a tiny HTTP/1.1 probe for container health checks.
//!
//! A minimal runtime image has no curl or wget, so the image's HEALTHCHECK asks the
//! binary itself. It sends one `GET`, and succeeds (exit 0) when the answer's status is
//! 2xx or 3xx within the timeout; otherwise it prints why and exits 1.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Usage of the subcommand.
const USAGE: &str = "usage: br-serve check http://HOST:PORT/PATH [TIMEOUT_SECONDS]";

/// Runs the probe; `args` are the words after `check`.
pub fn run(args: &[String]) -> ExitCode {
    let (url, timeout) = match args {
        [url] => (url, 5.0),
        [url, secs] => match secs.parse::<f64>() {
            Ok(s) if s > 0.0 && s.is_finite() => (url, s),
            _ => return fail(USAGE),
        },
        _ => return fail(USAGE),
    };
    match probe(url, Duration::from_secs_f64(timeout)) {
        Ok(status) if (200..400).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => fail(&format!("{url}: status {status}")),
        Err(err) => fail(&format!("{url}: {err}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("br-serve check: {message}");
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
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    parse_status(&head[..n]).ok_or_else(|| "not an HTTP response".to_string())
}

/// The status code of `HTTP/1.x NNN ...`.
fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
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
    }
}
