//! HTTP/1.1 conformance and request smuggling, byte for byte through the real binary.
//!
//! Each table row is the bytes a client sends and what the server must do with them: serve
//! them (and keep the connection), serve them and close, reject them (an error with
//! `Connection: close`, a Date and a short text body, and then nothing more), or close
//! without answering (a request cut short by the client's EOF is never answered and never
//! read to EOF). The rows are grouped by class, one test per class, and every row names the
//! rule and the section it checks: of RFC 9112 unless it names RFC 9110 ("9110 §...") or
//! another document. Where RFC 9112/9110 leave a choice, the rows follow
//! the choice documented in `src/http` (bare LF rejected, 501 for an unknown transfer
//! coding, Content-Length lists accepted when every value is equal, and so on).
//!
//! Every row is sent three ways, each on a fresh connection that the client half-closes
//! once it has sent everything:
//! - whole: one write;
//! - trickled: in about twenty pieces with pauses, so the server parses every line and
//!   every chunk across reads and must reach the same verdict;
//! - probed: the row followed by a valid request (`GET /status/299`). The probe must be
//!   answered after a row that keeps the connection, which shows the server found exactly
//!   where each request ended, and must never be answered after an error or a close, which
//!   shows nothing after a rejected message is ever parsed. Smuggled requests hidden in
//!   bodies ask for `/status/222`, so a 222 in the answers is a smuggling hit.
//!
//! The exact list of statuses is compared, so a request answered twice, a body parsed as a
//! request, or a response to a message that never completed all fail a row. A few
//! behaviours need a conversation rather than a table (100 Continue, HEAD and bodiless
//! statuses); they have their own tests at the end.

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::client::{raw_connect, read_to_close, read_until};
use crate::util::{Launch, Server, secs};

/// The request appended to every row in the probed variant, and its status.
const PROBE: &str = "GET /status/299 HTTP/1.1\r\nHost: probe\r\n\r\n";
const PROBE_STATUS: u16 = 299;
/// A complete request hidden where only body bytes belong; its 222 must never be seen
/// unless the row says it is a request of its own.
const HIDDEN: &str = "GET /status/222 HTTP/1.1\r\nHost: t\r\n\r\n";
/// The start of a POST to the echo route, which answers with the body it received.
const ECHO: &str = "POST /echo HTTP/1.1\r\nHost: t\r\n";
/// A chunked body holding `hello`.
const CHUNKED_HELLO: &str = "5\r\nhello\r\n0\r\n\r\n";
/// How long one exchange may take, from connect to the server's close, on a loaded
/// 2-core machine.
const EXCHANGE_WITHIN: Duration = Duration::from_secs(15);
/// Client threads per class: rows run in parallel against one server.
const THREADS: usize = 4;
/// An error response's body is a status line and one short sentence.
const MAX_ERROR_BODY: usize = 512;

/// What the server must do with a row's bytes.
#[derive(Clone, Debug)]
enum Want {
    /// Answer these statuses in order and keep the connection.
    Serve(Vec<u16>),
    /// Answer one 200 whose body is exactly this (the request body as the server framed
    /// it) and keep the connection.
    Echo(&'static [u8]),
    /// Answer these statuses in order, the last with `Connection: close`, then nothing.
    Close(Vec<u16>),
    /// Answer the first statuses, then reject with the last one: `Connection: close`, a
    /// Date, a short text body; then nothing.
    Reject(Vec<u16>, u16),
    /// Close without sending a byte: the request never completed before the client's EOF.
    Silent,
}

fn serve(statuses: &[u16]) -> Want {
    Want::Serve(statuses.to_vec())
}

fn close(statuses: &[u16]) -> Want {
    Want::Close(statuses.to_vec())
}

fn reject(status: u16) -> Want {
    Want::Reject(Vec::new(), status)
}

fn reject_after(served: &[u16], status: u16) -> Want {
    Want::Reject(served.to_vec(), status)
}

/// One table row.
struct Case {
    /// The rule checked and where it is written.
    rule: &'static str,
    wire: Vec<u8>,
    want: Want,
}

fn case(rule: &'static str, wire: impl AsRef<[u8]>, want: Want) -> Case {
    Case {
        rule,
        wire: wire.as_ref().to_vec(),
        want,
    }
}

/// `GET target HTTP/1.1` with a Host and the given extra field lines.
fn get(target: &str, fields: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n{fields}\r\n")
}

/// A POST to the echo route with the given field lines and raw body.
fn echo(fields: &str, body: &str) -> String {
    format!("{ECHO}{fields}\r\n{body}")
}

/// A chunked POST to the echo route with the given raw chunked body.
fn chunked(body: impl AsRef<[u8]>) -> Vec<u8> {
    let mut wire = echo("Transfer-Encoding: chunked\r\n", "").into_bytes();
    wire.extend_from_slice(body.as_ref());
    wire
}

/// A POST to the echo route whose Content-Length counts `body` exactly.
fn echo_exact(body: &str) -> String {
    echo(&format!("Content-Length: {}\r\n", body.len()), body)
}

// ---------------------------------------------------------------------------------------
// The exchange: send, half-close, read to the server's close, split into responses.
// ---------------------------------------------------------------------------------------

/// One response as it came off the wire.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let named = self
            .headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name));
        named.map(|(_, v)| v.as_str())
    }

    fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).next()
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        let mut tokens = self.values(name).flat_map(|v| v.split(','));
        tokens.any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Everything the server sent on one connection.
#[derive(Debug, Default)]
struct Outcome {
    /// Final responses, in order.
    responses: Vec<Resp>,
    /// Interim (1xx) statuses, in order.
    interim: Vec<u16>,
    /// Bytes after the last complete response, or why they could not be parsed.
    trailing: String,
    /// The server closed (FIN or RST) before the deadline.
    closed: bool,
}

/// How a row's bytes go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Whole,
    Trickled,
    Probed,
}

impl Variant {
    fn pieces(self, wire: &[u8]) -> Vec<Vec<u8>> {
        match self {
            Variant::Whole => vec![wire.to_vec()],
            Variant::Trickled => wire
                .chunks(wire.len().div_ceil(20).max(1))
                .map(<[u8]>::to_vec)
                .collect(),
            Variant::Probed => vec![[wire, PROBE.as_bytes()].concat()],
        }
    }
}

/// Sends `pieces` (pausing between them), half-closes, and reads until the server closes.
/// A send that fails (the server already closed) just ends the sending.
fn exchange(addr: SocketAddr, pieces: &[Vec<u8>], heads: &[bool]) -> Result<Outcome, String> {
    let mut stream = raw_connect(addr);
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            thread::sleep(Duration::from_millis(2));
        }
        if stream.write_all(piece).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    let (bytes, closed) = read_to_close(&mut stream, EXCHANGE_WITHIN);
    let mut outcome = parse_all(&bytes, heads);
    outcome.closed = closed;
    Ok(outcome)
}

/// Splits `bytes` into responses. `heads[i]` says the i-th final response answers a HEAD
/// request, so it has no body whatever its Content-Length says (RFC 9112 §6.3 ¶1).
fn parse_all(bytes: &[u8], heads: &[bool]) -> Outcome {
    let mut outcome = Outcome::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let head = heads.get(outcome.responses.len()).copied().unwrap_or(false);
        match parse_one(rest, head) {
            Ok((resp, used)) if (100..200).contains(&resp.status) => {
                outcome.interim.push(resp.status);
                rest = &rest[used..];
            }
            Ok((resp, used)) => {
                outcome.responses.push(resp);
                rest = &rest[used..];
            }
            Err(why) => {
                outcome.trailing = format!("{why}: {}", show(rest));
                break;
            }
        }
    }
    outcome
}

/// One response at the front of `bytes` and the number of bytes it took.
fn parse_one(bytes: &[u8], head_request: bool) -> Result<(Resp, usize), String> {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut slots);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete response head".into()),
        Err(e) => return Err(format!("malformed response head ({e})")),
    };
    let status = parsed.code.ok_or("no status code")?;
    let headers = parsed.headers.iter();
    let headers = headers.map(|h| {
        (
            h.name.to_string(),
            String::from_utf8_lossy(h.value).into_owned(),
        )
    });
    let mut resp = Resp {
        status,
        headers: headers.collect(),
        body: Vec::new(),
    };
    let bodiless = head_request || matches!(status, 100..=199 | 204 | 304);
    let len = match resp.header("Content-Length") {
        _ if bodiless => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("Content-Length {v:?}"))?,
        None => return Err("a response with a body but no Content-Length".into()),
    };
    let body = bytes
        .get(head_len..head_len + len)
        .ok_or("response body cut short")?;
    resp.body = body.to_vec();
    Ok((resp, head_len + len))
}

/// Bytes for a failure message: escaped, and shortened when long.
fn show(bytes: &[u8]) -> String {
    let text = bytes.escape_ascii().to_string();
    match text.char_indices().nth(400) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], bytes.len()),
        None => text,
    }
}

// ---------------------------------------------------------------------------------------
// Checking an outcome against a row.
// ---------------------------------------------------------------------------------------

fn statuses(outcome: &Outcome) -> Vec<u16> {
    outcome.responses.iter().map(|r| r.status).collect()
}

/// What every exchange must satisfy, whatever the row.
fn check_common(wire: &[u8], outcome: &Outcome) -> Result<(), String> {
    if !outcome.closed {
        return Err(format!(
            "not closed within {EXCHANGE_WITHIN:?} after the client's EOF"
        ));
    }
    if !outcome.trailing.is_empty() {
        return Err(format!(
            "bytes after the last response: {}",
            outcome.trailing
        ));
    }
    let asked = show(wire).to_ascii_lowercase().contains("100-continue");
    if outcome.interim.iter().any(|&s| s != 100 || !asked) {
        return Err(format!(
            "unexpected interim responses {:?}",
            outcome.interim
        ));
    }
    outcome.responses.iter().try_for_each(check_response)
}

/// RFC 9110 §6.6.1: an origin server with a clock MUST send Date (IMF-fixdate, §5.6.7);
/// RFC 9110 §8.6: Content-Length on every response that may have content.
fn check_response(resp: &Resp) -> Result<(), String> {
    let dates: Vec<&str> = resp.values("Date").collect();
    if dates.len() != 1 || dates[0].len() != 29 || !dates[0].ends_with(" GMT") {
        return Err(format!("{} has Date fields {dates:?}", resp.status));
    }
    if resp.header("Transfer-Encoding").is_some() {
        return Err(format!("{} has Transfer-Encoding", resp.status));
    }
    let needs_length = !matches!(resp.status, 204 | 304);
    if needs_length && resp.header("Content-Length").is_none() {
        return Err(format!("{} has no Content-Length", resp.status));
    }
    Ok(())
}

/// An error response closes the connection and says why in a few words of text.
fn check_error_response(resp: &Resp) -> Result<(), String> {
    if !resp.has_token("Connection", "close") {
        return Err(format!("{} without Connection: close", resp.status));
    }
    let text_plain = resp
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/plain"));
    let body = String::from_utf8_lossy(&resp.body);
    let short = !body.is_empty() && body.len() <= MAX_ERROR_BODY;
    if !text_plain || !short || !body.starts_with(&resp.status.to_string()) {
        return Err(format!(
            "{} has a bad error body {body:?} ({:?})",
            resp.status,
            resp.header("Content-Type")
        ));
    }
    Ok(())
}

fn check_statuses(outcome: &Outcome, want: &[u16]) -> Result<(), String> {
    let got = statuses(outcome);
    if got != want {
        return Err(format!("statuses {got:?}, want {want:?}"));
    }
    Ok(())
}

/// Checks one exchange of one row.
fn check(case: &Case, variant: Variant, outcome: &Outcome) -> Result<(), String> {
    check_common(&case.wire, outcome)?;
    let probe: &[u16] = match variant {
        Variant::Probed => &[PROBE_STATUS],
        _ => &[],
    };
    match &case.want {
        Want::Serve(s) => {
            check_statuses(outcome, &[s, probe].concat())?;
            check_persistent(outcome)
        }
        Want::Echo(body) => {
            check_statuses(outcome, &[&[200], probe].concat())?;
            check_echo(outcome, body)
        }
        Want::Close(s) => {
            check_statuses(outcome, s)?;
            check_closing(outcome)
        }
        Want::Reject(s, status) => {
            check_statuses(outcome, &[&s[..], &[*status]].concat())?;
            outcome
                .responses
                .last()
                .map_or(Ok(()), check_error_response)
        }
        Want::Silent => check_statuses(outcome, &[]),
    }
}

/// RFC 9112 §9.3: no response on a persistent connection announces a close.
fn check_persistent(outcome: &Outcome) -> Result<(), String> {
    let closing = outcome
        .responses
        .iter()
        .find(|r| r.has_token("Connection", "close"));
    match closing {
        Some(r) => Err(format!("{} closes a persistent connection", r.status)),
        None => Ok(()),
    }
}

/// RFC 9112 §9.6: the response after which the server closes says `Connection: close`.
fn check_closing(outcome: &Outcome) -> Result<(), String> {
    let last = outcome.responses.last();
    match last.is_some_and(|r| r.has_token("Connection", "close")) {
        true => Ok(()),
        false => Err("the last response lacks Connection: close".into()),
    }
}

/// The echo route answered with exactly the body the server framed.
fn check_echo(outcome: &Outcome, body: &[u8]) -> Result<(), String> {
    let got = outcome.responses.first().map(|r| r.body.as_slice());
    match got == Some(body) {
        true => Ok(()),
        false => Err(format!(
            "echoed {}, want {}",
            show(got.unwrap_or_default()),
            show(body)
        )),
    }
}

/// The variants a row runs in: a row that must stay unanswered has no probe, since the
/// probe would complete (or change) the very message that is cut short.
fn variants(want: &Want) -> &'static [Variant] {
    match want {
        Want::Silent => &[Variant::Whole, Variant::Trickled],
        _ => &[Variant::Whole, Variant::Trickled, Variant::Probed],
    }
}

/// Runs every row of a class in every variant against one server, in parallel, and fails
/// with every failing exchange listed.
fn run_class(class: &str, cases: Vec<Case>) {
    let server = Launch::new().args(&["--workers", "2"]).start();
    let jobs: Vec<(&Case, Variant)> = cases
        .iter()
        .flat_map(|c| variants(&c.want).iter().map(move |&v| (c, v)))
        .collect();
    let failures = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for t in 0..THREADS {
            let (jobs, failures, server) = (&jobs, &failures, &server);
            scope.spawn(move || {
                for &(case, variant) in jobs.iter().skip(t).step_by(THREADS) {
                    if let Err(why) = run_one(server, case, variant) {
                        failures.lock().unwrap_or_else(|e| e.into_inner()).push(why);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "{class}: {} cases, {} exchanges, {} failed",
        cases.len(),
        jobs.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{class}: {} exchanges failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn run_one(server: &Server, case: &Case, variant: Variant) -> Result<(), String> {
    let outcome = exchange(server.addr(), &variant.pieces(&case.wire), &[]);
    let result = outcome.and_then(|o| {
        check(case, variant, &o).map_err(|why| format!("{why}; got {:?}", statuses(&o)))
    });
    result.map_err(|why| {
        format!(
            "- [{}] {variant:?} {}\n    {why}",
            case.rule,
            show(&case.wire)
        )
    })
}

// ---------------------------------------------------------------------------------------
// The tables, one class each, one row per line (hence `rustfmt::skip`).
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
fn request_line_cases() -> Vec<Case> {
    vec![
        // RFC 9112 §3, §3.2: the minimal HTTP/1.1 request.
        case("§3 minimal request", get("/", ""), serve(&[200])),
        // RFC 9112 §3: exactly one SP between method, target and version (no lenient split).
        case("§3 two SP after method", "GET  / HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("§3 two SP after target", "GET /  HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("§3 SP after version", "GET / HTTP/1.1 \r\nHost: t\r\n\r\n", reject(400)),
        case("§3 SP before method", " GET / HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("§3 HTAB as separator", "GET\t/\tHTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("§3 SP inside target", "GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("§3 no target", "GET HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("§3 no method", "/ HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request
        // line; src/http/limits.rs tolerates four and rejects a fifth.
        case("§2.2 one empty line first", format!("\r\n{}", get("/", "")), serve(&[200])),
        case("§2.2 four empty lines first", format!("{}{}", "\r\n".repeat(4), get("/", "")), serve(&[200])),
        case("§2.2 five empty lines first", format!("{}{}", "\r\n".repeat(5), get("/", "")), reject(400)),
        // RFC 9110 §9.1: methods are case-sensitive tokens; an unknown one is the app's to
        // answer and keeps the connection. The demo: 405 for HTTP's own methods on a known
        // path, 404 elsewhere, and 501 ("unrecognized or not implemented") for the rest.
        case("9110 §9.1 lowercase get is another method", "get / HTTP/1.1\r\nHost: t\r\n\r\n", serve(&[501])),
        case("9110 §9.1 extension method", "PURGE / HTTP/1.1\r\nHost: t\r\n\r\n", serve(&[501])),
        case("9110 §9.1 extension method, unknown path", "FOO /nope HTTP/1.1\r\nHost: t\r\n\r\n", serve(&[501])),
        case("9110 §9.1 HTTP's own method, not allowed", "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n", serve(&[405])),
        case("9110 §9.1 HTTP's own method, unknown path", "PATCH /nope HTTP/1.1\r\nHost: t\r\n\r\n", serve(&[404])),
        case("9110 §9.1 '@' in method", "G@T / HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("9110 §9.1 NUL in method", b"GE\0T / HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("9110 §9.1 UTF-8 in method", b"G\xc3\x89T / HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        // A TLS ClientHello (or any binary) is refused on its first byte, without a CRLF.
        case("9110 §9.1 TLS handshake bytes", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", reject(400)),
        // RFC 9113 §3.4: the HTTP/2 preface is a request line with another major: 505.
        case("9110 §15.6.6 h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", reject(505)),
        // RFC 9110 §9.3.6: CONNECT asks for a tunnel we do not provide: 501 (target.rs).
        case("9110 §9.3.6 CONNECT", "CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n", reject(501)),
        // RFC 9110 §9.3.7, RFC 9112 §3.2.4: OPTIONS * asks about the server itself.
        case("§3.2.4 OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", serve(&[200])),
    ]
}

#[rustfmt::skip]
fn target_cases() -> Vec<Case> {
    vec![
        // RFC 9112 §3.2.4: asterisk-form only with OPTIONS.
        case("§3.2.4 GET *", "GET * HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        // RFC 9112 §3.2.3: authority-form only with CONNECT.
        case("§3.2.3 authority-form on GET", "GET t:80 HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        // RFC 9112 §3.2.2: a server MUST accept absolute-form, and take the host from it
        // (the Host field is then ignored).
        case("§3.2.2 absolute-form", get("http://t/healthz", ""), serve(&[200])),
        case("§3.2.2 absolute-form, other Host", "GET http://a/healthz HTTP/1.1\r\nHost: b\r\n\r\n", serve(&[200])),
        case("§3.2.2 absolute-form, https, no path", get("https://t", ""), serve(&[200])),
        case("RFC 3986 §3.1 scheme is case-insensitive", get("HTTP://T/healthz", ""), serve(&[200])),
        // RFC 9110 §4.2.1: an http URI with an empty host is invalid.
        case("9110 §4.2.1 empty host in target", get("http:///healthz", ""), reject(400)),
        // RFC 9110 §4.2.4: userinfo in an http(s) URI is an error.
        case("9110 §4.2.4 userinfo in target", get("http://u@t/", ""), reject(400)),
        case("§3.2 not origin- or absolute-form", get("ftp://t/", ""), reject(400)),
        // RFC 9110 §7.1: a fragment is never sent in a request-target.
        case("9110 §7.1 fragment", get("/healthz#x", ""), reject(400)),
        // RFC 9112 §3.2 / RFC 3986: no raw non-ASCII, controls or DEL in a target.
        case("§3.2 UTF-8 in target", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("§3.2 NUL in target", b"GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("§3.2 DEL in target", b"GET /\x7f HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        // RFC 3986 §2.1: malformed percent-encoding in the path (not policed in the query).
        case("RFC 3986 §2.1 bad %-encoding in path", get("/a%zz", ""), reject(400)),
        // A NUL in the decoded path only ever comes from an attack: refused as nginx does.
        case("%00 in path", get("/hello.txt%00.html", ""), reject(404)),
        case("%00 in the query is the application's", get("/?q=%00", ""), serve(&[200])),
        case("RFC 3986 §2.1 lone % in query", get("/healthz?q=100%", ""), serve(&[200])),
    ]
}

#[rustfmt::skip]
fn version_cases() -> Vec<Case> {
    let v = |version: &str| format!("GET / {version}\r\nHost: t\r\n\r\n");
    vec![
        // RFC 9112 §9.3: HTTP/1.0 closes unless asked to persist; Host is optional there.
        case("§9.3 HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", close(&[200])),
        case("§9.3 HTTP/1.0 with Host", v("HTTP/1.0"), close(&[200])),
        // RFC 9110 §2.5: a higher minor version is served as the highest we support (1.1).
        case("9110 §2.5 HTTP/1.2 served as 1.1", v("HTTP/1.2"), serve(&[200])),
        case("9110 §2.5 HTTP/1.9 served as 1.1", v("HTTP/1.9"), serve(&[200])),
        case("9110 §2.5 HTTP/1.2 still needs Host", "GET / HTTP/1.2\r\n\r\n", reject(400)),
        // RFC 9110 §15.6.6: another major version: 505.
        case("9110 §15.6.6 HTTP/2.0", v("HTTP/2.0"), reject(505)),
        case("9110 §15.6.6 HTTP/3.0", v("HTTP/3.0"), reject(505)),
        case("9110 §15.6.6 HTTP/0.9", v("HTTP/0.9"), reject(505)),
        // HTTP/0.9's version-less request is not spoken.
        case("§3 HTTP/0.9 simple request", "GET /\r\n\r\n", reject(400)),
        // ... and is refused as soon as its line is whole: an HTTP/0.9 client sends no
        // empty line after it, and must not wait for the header timeout (then a 408).
        case("§3 HTTP/0.9 request, nothing after", "GET /\r\n", reject(400)),
        case("9110 §15.6.6 HTTP/2.0, head unfinished", "GET / HTTP/2.0\r\nHost: t\r\n", reject(505)),
        // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
        case("§2.3 HTTP/1.1.1", v("HTTP/1.1.1"), reject(400)),
        case("§2.3 lowercase http/1.1", v("http/1.1"), reject(400)),
        case("§2.3 Http/1.1", v("Http/1.1"), reject(400)),
        case("§2.3 HTTP/1", v("HTTP/1"), reject(400)),
        case("§2.3 HTTP/1.10", v("HTTP/1.10"), reject(400)),
        case("§2.3 HTTP/01.1", v("HTTP/01.1"), reject(400)),
        case("§2.3 HTTP/2", v("HTTP/2"), reject(400)),
        case("§2.3 HTTPS/1.1", v("HTTPS/1.1"), reject(400)),
        case("§2.3 SP inside version", v("HTTP/ 1.1"), reject(400)),
    ]
}

#[rustfmt::skip]
fn host_cases() -> Vec<Case> {
    let h = |fields: &str| format!("GET / HTTP/1.1\r\n{fields}\r\n");
    vec![
        // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, with more than one
        // Host field line, or with an invalid Host value.
        case("§3.2 HTTP/1.1 without Host", h(""), reject(400)),
        case("§3.2 two equal Hosts", h("Host: t\r\nHost: t\r\n"), reject(400)),
        case("§3.2 two different Hosts", h("Host: a\r\nhOsT: b\r\n"), reject(400)),
        case("§3.2 Host with SP", h("Host: a b\r\n"), reject(400)),
        case("§3.2 Host with a path", h("Host: t/x\r\n"), reject(400)),
        case("§3.2 Host with userinfo", h("Host: u@t\r\n"), reject(400)),
        case("§3.2 Host that looks like a list", h("Host: a,b\r\n"), reject(400)),
        case("§3.2 Host with a named port", h("Host: t:http\r\n"), reject(400)),
        case("§3.2 Host with a six-digit port", h("Host: t:123456\r\n"), reject(400)),
        // RFC 9112 §3.2: an empty Host is what a client without an authority sends.
        case("§3.2 empty Host", h("Host:\r\n"), serve(&[200])),
        case("9110 §7.2 Host with port", h("Host: t:8080\r\n"), serve(&[200])),
        case("9110 §7.2 IPv6 literal Host", h("Host: [::1]:80\r\n"), serve(&[200])),
        // RFC 3986 §3.2.2: inside brackets, an IPv6 address or IPvFuture, nothing else.
        case("§3.2 bracketed Host that is no address", h("Host: [zz]\r\n"), reject(400)),
        case("§3.2 bracketed IPv4 Host", h("Host: [1.2.3.4]:80\r\n"), reject(400)),
        case("§3.2 absolute-form with a bracketed non-address", "GET http://[1:2]/ HTTP/1.1\r\nHost: t\r\n\r\n", reject(400)),
        case("9110 §5.1 field names are case-insensitive", h("hOST: t\r\n"), serve(&[200])),
        // The duplicate and validity rules apply to HTTP/1.0 too.
        case("§3.2 HTTP/1.0 with two Hosts", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", reject(400)),
        // RFC 9112 §3.2.2: absolute-form does not make Host optional in HTTP/1.1.
        case("§3.2 absolute-form without Host", "GET http://t/ HTTP/1.1\r\n\r\n", reject(400)),
    ]
}

#[rustfmt::skip]
fn field_cases() -> Vec<Case> {
    let f = |line: &[u8]| [b"GET / HTTP/1.1\r\nHost: t\r\n", line, b"\r\n\r\n"].concat();
    vec![
        // RFC 9112 §5.1: no whitespace between field name and colon: 400.
        case("§5.1 SP before colon", f(b"X-A : 1"), reject(400)),
        case("§5.1 HTAB before colon", f(b"X-A\t: 1"), reject(400)),
        case("§5.1 SP before colon on Host", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", reject(400)),
        // RFC 9112 §5.2: obs-fold in a request MUST be rejected (or replaced; we reject).
        case("§5.2 obs-fold with SP", f(b"X-A: 1\r\n 2"), reject(400)),
        case("§5.2 obs-fold with HTAB", f(b"X-A: 1\r\n\t2"), reject(400)),
        // RFC 9112 §2.2: whitespace before the first field line.
        case("§2.2 SP before the first field", "GET / HTTP/1.1\r\n Host: t\r\n\r\n", reject(400)),
        // RFC 9110 §5.5: NUL, CR, LF and other controls are never valid in a value.
        case("9110 §5.5 NUL in value", f(b"X-A: a\0b"), reject(400)),
        case("9110 §5.5 SOH in value", f(b"X-A: a\x01b"), reject(400)),
        case("9110 §5.5 VT in value", f(b"X-A: a\x0bb"), reject(400)),
        case("9110 §5.5 DEL in value", f(b"X-A: a\x7fb"), reject(400)),
        case("§2.2 lone CR in value", f(b"X-A: a\rb"), reject(400)),
        case("§2.2 bare LF in value", f(b"X-A: a\nb"), reject(400)),
        // RFC 9110 §5.5: obs-text and HTAB are allowed; OWS around the value is not part of it.
        case("9110 §5.5 obs-text in value", f(b"X-A: \xff\xfe"), serve(&[200])),
        case("9110 §5.5 HTAB inside value", f(b"X-A: a\tb"), serve(&[200])),
        case("9110 §5.5 OWS around value", f(b"X-A: \t v \t"), serve(&[200])),
        case("9110 §5.5 empty value", f(b"X-A:"), serve(&[200])),
        // RFC 9110 §5.1: a field name is a non-empty token followed by a colon.
        case("9110 §5.1 '(' in name", f(b"X(A): 1"), reject(400)),
        case("9110 §5.1 SP in name", f(b"X A: 1"), reject(400)),
        case("9110 §5.1 empty name", f(b": 1"), reject(400)),
        case("9110 §5.1 no colon", f(b"NoColon"), reject(400)),
        case("9110 §5.1 obs-text in name", f(b"X\xff: 1"), reject(400)),
        case("9110 §5.1 NUL in name", f(b"X\0A: 1"), reject(400)),
    ]
}

#[rustfmt::skip]
fn line_ending_cases() -> Vec<Case> {
    vec![
        // RFC 9112 §2.2 lets a recipient accept a bare LF; src/http/syntax.rs does not,
        // because a proxy that disagrees is how smuggling starts.
        case("§2.2 bare LF everywhere", "GET / HTTP/1.1\nHost: t\n\n", reject(400)),
        case("§2.2 bare LF after the request line", "GET / HTTP/1.1\nHost: t\r\n\r\n", reject(400)),
        case("§2.2 bare LF after a field", "GET / HTTP/1.1\r\nHost: t\n\r\n", reject(400)),
        case("§2.2 bare LF ending the head", "GET / HTTP/1.1\r\nHost: t\r\n\n", reject(400)),
        case("§2.2 bare LF before the request line", format!("\n{}", get("/", "")), reject(400)),
        // RFC 9112 §2.2: a lone CR MUST be treated as invalid (or replaced; we reject).
        case("§2.2 lone CR after the request line", "GET / HTTP/1.1\rHost: t\r\n\r\n", reject(400)),
        case("§2.2 CR CR LF", "GET / HTTP/1.1\r\r\nHost: t\r\n\r\n", reject(400)),
        case("§2.2 LF CR", "GET / HTTP/1.1\n\rHost: t\r\n\r\n", reject(400)),
        case("§2.2 lone CR before the request line", format!("\r{}", get("/", "")), reject(400)),
        case("§2.2 lone CR ending the head", "GET / HTTP/1.1\r\nHost: t\r\n\rX", reject(400)),
    ]
}

#[rustfmt::skip]
fn content_length_cases() -> Vec<Case> {
    let cl = |value: &str, body: &str| echo(&format!("Content-Length: {value}\r\n"), body);
    vec![
        // RFC 9112 §6.2, RFC 9110 §8.6: Content-Length = 1*DIGIT, the body is exactly that long.
        case("9110 §8.6 Content-Length", cl("5", "hello"), Want::Echo(b"hello")),
        case("9110 §8.6 Content-Length 0", cl("0", ""), Want::Echo(b"")),
        case("9110 §8.6 leading zeros are digits", cl("005", "hello"), Want::Echo(b"hello")),
        case("9110 §5.5 OWS around the value", cl("  5 \t", "hello"), Want::Echo(b"hello")),
        // Anything but 1*DIGIT is invalid: §6.3 ¶5 makes it 400 and close.
        case("9110 §8.6 plus sign", cl("+5", "hello"), reject(400)),
        case("9110 §8.6 minus sign", cl("-5", "hello"), reject(400)),
        case("9110 §8.6 hex", cl("0x5", "hello"), reject(400)),
        case("9110 §8.6 decimal point", cl("5.0", "hello"), reject(400)),
        case("9110 §8.6 exponent", cl("5e0", "hello"), reject(400)),
        case("9110 §8.6 SP inside", cl("5 5", "hello"), reject(400)),
        case("9110 §8.6 empty value", cl("", "hello"), reject(400)),
        case("9110 §8.6 trailing comma", cl("5,", "hello"), reject(400)),
        case("9110 §8.6 word", cl("five", "hello"), reject(400)),
        case("9110 §8.6 fullwidth digit", cl("\u{ff15}", "hello"), reject(400)),
        case("9110 §8.6 NUL after digits", [ECHO.as_bytes(), b"Content-Length: 5\0\r\n\r\nhello"].concat(), reject(400)),
        case("9110 §8.6 overflow by one", cl("18446744073709551616", "hello"), reject(400)),
        case("9110 §8.6 huge", cl("99999999999999999999999999999", "hello"), reject(400)),
        // RFC 9110 §8.6: a list or repeated field of one same value may be taken as one
        // (framing.rs does, comparing the decimal values); differing values: 400.
        case("9110 §8.6 list of equal values", cl("5, 5", "hello"), Want::Echo(b"hello")),
        case("9110 §8.6 repeated equal fields", echo("Content-Length: 5\r\nContent-Length: 05\r\n", "hello"), Want::Echo(b"hello")),
        case("§6.3 ¶5 list of differing values", cl("5, 6", "hello!"), reject(400)),
        case("§6.3 ¶5 repeated differing fields", echo("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), reject(400)),
        case("§6.3 ¶5 invalid then valid", echo("Content-Length: x\r\nContent-Length: 5\r\n", "hello"), reject(400)),
        // RFC 9110 §15.5.14: over the body limit (1 MiB): 413 before reading the body.
        case("9110 §15.5.14 u64::MAX", cl("18446744073709551615", "hello"), reject(413)),
        case("9110 §15.5.14 one byte over the limit", cl("1048577", "hello"), reject(413)),
        case("9110 §15.5.14 a refused body is never parsed", cl("1048577", HIDDEN), reject(413)),
        // A body is never parsed as a request: a request hidden in it is echoed back.
        case("§6.2 request hidden in a body", echo_exact(HIDDEN), Want::Echo(HIDDEN.as_bytes())),
        case("§6.2 body on GET is consumed", format!("GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{HIDDEN}", HIDDEN.len()), serve(&[200])),
        // What follows the Content-Length bytes is the next request, by definition.
        case("§6.2 bytes after the body start a request", format!("{}{HIDDEN}", cl("5", "hello")), serve(&[200, 222])),
        // RFC 9112 §6.3 ¶7: a request with neither field has no body; it is never read to EOF.
        case("§6.3 ¶7 no framing means no body", format!("{ECHO}\r\n{HIDDEN}"), serve(&[200, 222])),
        // A body cut short by the client's EOF is never answered.
        case("§6.3 ¶5 incomplete body at EOF", cl("10", "hello"), Want::Silent),
    ]
}

#[rustfmt::skip]
fn transfer_encoding_cases() -> Vec<Case> {
    let te = |value: &str| echo(&format!("Transfer-Encoding: {value}\r\n"), CHUNKED_HELLO);
    let te_raw =
        |line: &[u8]| [ECHO.as_bytes(), line, b"\r\n\r\n", CHUNKED_HELLO.as_bytes()].concat();
    let hello = Want::Echo(b"hello");
    vec![
        // RFC 9112 §7: transfer-coding names are case-insensitive.
        case("§6.1 chunked", te("chunked"), hello.clone()),
        case("§7 Chunked", te("Chunked"), hello.clone()),
        case("§7 CHUNKED", te("CHUNKED"), hello.clone()),
        case("9110 §5.1 name case", echo("tRaNsFeR-eNcOdInG: chunked\r\n", CHUNKED_HELLO), hello.clone()),
        // RFC 9110 §5.5, §5.6.3: OWS (SP or HTAB) around a value is not part of it.
        case("9110 §5.6.3 HTAB before chunked", te_raw(b"Transfer-Encoding:\tchunked"), hello.clone()),
        case("9110 §5.6.3 SPs around chunked", te("  chunked  "), hello.clone()),
        // RFC 9112 §6.1: a coding we do not implement SHOULD get 501 (framing.rs: also when
        // chunked is missing, which §6.3 ¶4 would make a 400; either way we close).
        case("§6.1 xchunked", te("xchunked"), reject(501)),
        case("§6.1 chunk", te("chunk"), reject(501)),
        case("§6.1 identity (removed in RFC 7230)", te("identity"), reject(501)),
        case("§6.1 identity, chunked", te("identity, chunked"), reject(501)),
        case("§6.1 gzip", te("gzip"), reject(501)),
        case("§6.1 gzip, chunked", te("gzip, chunked"), reject(501)),
        case("§6.1 identity line, then chunked line", echo("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO), reject(501)),
        // RFC 9112 §6.3 ¶4: chunked present but not final: 400 and close.
        case("§6.3 ¶4 chunked, identity", te("chunked, identity"), reject(400)),
        case("§6.3 ¶4 chunked line, then identity line", echo("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", CHUNKED_HELLO), reject(400)),
        // RFC 9112 §6.1: chunked MUST NOT be applied more than once.
        case("§6.1 chunked, chunked", te("chunked, chunked"), reject(400)),
        case("§6.1 chunked on two lines", echo("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO), reject(400)),
        // Malformed lists and codings (framing.rs treats them as 400, not as empty elements).
        case("§6.1 empty value", te(""), reject(400)),
        case("§6.1 leading comma", te(", chunked"), reject(400)),
        case("§6.1 trailing comma", te("chunked,"), reject(400)),
        case("§6.1 quoted coding", te("\"chunked\""), reject(400)),
        case("§6.1 parameter on chunked", te("chunked;q=1"), reject(400)),
        case("§6.1 SP inside the coding", te("chu nked"), reject(400)),
        case("9110 §5.5 VT before chunked", te_raw(b"Transfer-Encoding: \x0bchunked"), reject(400)),
        case("9110 §5.5 NUL after chunked", te_raw(b"Transfer-Encoding: chunked\0"), reject(400)),
        case("§6.1 obs-text in the coding", te_raw(b"Transfer-Encoding: \xffchunked"), reject(400)),
        case("§5.2 chunked added by obs-fold", te_raw(b"Transfer-Encoding: gzip\r\n ,chunked"), reject(400)),
        case("§5.1 SP before the colon", te_raw(b"Transfer-Encoding : chunked"), reject(400)),
        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request MUST be treated as faulty
        // framing.
        case("§6.1 TE in HTTP/1.0", format!("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED_HELLO}"), reject(400)),
        case("§6.1 TE in HTTP/1.0 keep-alive", format!("POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED_HELLO}"), reject(400)),
        // A rejected coding's body is never parsed, so the request inside is never answered.
        case("§6.1 unknown coding hides a request", echo("Transfer-Encoding: xchunked\r\n", &format!("0\r\n\r\n{HIDDEN}")), reject(501)),
        // `Transfer_Encoding` is another field: no framing, so the body is the next message,
        // here an invalid request line ("0"), which ends the connection.
        case("§6.3 ¶7 Transfer_Encoding is not TE", echo("Transfer_Encoding: chunked\r\n", &format!("0\r\n\r\n{HIDDEN}")), reject_after(&[200], 400)),
        case("§6.1 chunked body on GET", format!("GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED_HELLO}"), serve(&[200])),
    ]
}

#[rustfmt::skip]
fn chunked_cases() -> Vec<Case> {
    let hello = || Want::Echo(b"hello");
    let long_ext = format!("1;{}\r\nx\r\n0\r\n\r\n", "a".repeat(4095));
    let long_trailer = format!("0\r\nX-T: {}\r\n\r\n", "a".repeat(8192));
    let many_trailers = format!("0\r\n{}\r\n", "X-T: 1\r\n".repeat(101));
    let padded_chunk = format!("1;a={}\r\nx\r\n", "p".repeat(4000));
    let mostly_framing = format!("{}0\r\n\r\n", padded_chunk.repeat(50));
    vec![
        // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF.
        case("§7.1 one chunk", chunked(CHUNKED_HELLO), hello()),
        case("§7.1 two chunks", chunked("2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"), hello()),
        case("§7.1 hex sizes, both cases", chunked("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"), Want::Echo(b"0123456789abcdefghij")),
        case("§7.1 empty body", chunked("0\r\n\r\n"), Want::Echo(b"")),
        case("§7.1 a thousand one-byte chunks", chunked(format!("{}0\r\n\r\n", "1\r\nx\r\n".repeat(1000))), Want::Echo(&[b'x'; 1000])),
        // chunk-size = 1*HEXDIG: leading zeros are digits (the line cap bounds them).
        case("§7.1 leading zeros", chunked("0005\r\nhello\r\n000\r\n\r\n"), hello()),
        case("§7.1 more zeros than a u64 has digits", chunked(format!("{}5\r\nhello\r\n0\r\n\r\n", "0".repeat(30))), hello()),
        // RFC 9112 §7.1.1: chunk extensions, with BWS, token and quoted values, are skipped.
        case("§7.1.1 extension", chunked("5;a=b\r\nhello\r\n0\r\n\r\n"), hello()),
        case("§7.1.1 quoted extension", chunked("5;a=\"x;y \\\"z\"\r\nhello\r\n0\r\n\r\n"), hello()),
        case("§7.1.1 BWS in extension", chunked("5 ; a = b\r\nhello\r\n0\r\n\r\n"), hello()),
        case("§7.1.1 extension on the last chunk", chunked("5\r\nhello\r\n0;end\r\n\r\n"), hello()),
        // RFC 9112 §7.1.2: trailer fields are read and dropped; they never frame anything.
        case("§7.1.2 trailer", chunked("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), hello()),
        case("§7.1.2 Content-Length trailer", chunked("5\r\nhello\r\n0\r\nContent-Length: 40\r\n\r\n"), hello()),
        case("§7.1.2 Transfer-Encoding trailer", chunked("5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"), hello()),
        // chunk-size: no sign, no 0x, no whitespace before it or without a ';' after it.
        case("§7.1 0x prefix", chunked("0x5\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 minus sign", chunked("-5\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 plus sign", chunked("+5\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 SP before size", chunked(" 5\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 HTAB before size", chunked("\t5\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1.1 SP after size, no ';'", chunked("5 \r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 empty size line", chunked("\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 non-hex size", chunked("g\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 junk after size", chunked("5g\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 underscore in size", chunked("0_5\r\nhello\r\n0\r\n\r\n"), reject(400)),
        // Sizes that overflow 64 bits are errors, never wrapped (a wrap would read 5).
        case("§7.1 size overflows u64", chunked("10000000000000005\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("9110 §15.5.14 size over the body limit", chunked("100001\r\nhello\r\n0\r\n\r\n"), reject(413)),
        case("9110 §15.5.14 u64::MAX size", chunked("ffffffffffffffff\r\nhello\r\n0\r\n\r\n"), reject(413)),
        // RFC 9112 §7.1.1 / §2.2: extensions never hide a line end (bare LF, lone CR).
        case("§7.1.1 bare LF in extension", chunked("5;a\nb\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1.1 lone CR in extension", chunked("5;a\rb\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1.1 empty extension", chunked("5;\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1.1 extension without a name", chunked("5;=b\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1.1 extension with an empty value", chunked("5;a=\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1.1 unterminated quoted extension", chunked("5;a=\"b\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1.1 NUL in extension", chunked(b"5;a\0\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1.1 extension line over 4 KiB", chunked(long_ext), reject(400)),
        // Framing the data does not pay for (Go's rule, CVE-2023-39326): 4 KiB of
        // extension on every one-byte chunk is 400 after a few, though each line is legal.
        case("§7.1.1 a body that is mostly extensions", chunked(mostly_framing), reject(400)),
        // RFC 9112 §2.2, §7.1: CRLF only, after the size line and after the data.
        case("§7.1 bare LF after size", chunked("5\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 lone CR after size", chunked("5\rhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 bare LF after data", chunked("5\r\nhello\n0\r\n\r\n"), reject(400)),
        case("§7.1 lone CR after data", chunked("5\r\nhello\r0\r\n\r\n"), reject(400)),
        case("§7.1 no CRLF after data", chunked("5\r\nhello0\r\n\r\n"), reject(400)),
        case("§7.1 more data than the size", chunked("3\r\nhello\r\n0\r\n\r\n"), reject(400)),
        case("§7.1 bare LF after the last chunk", chunked("5\r\nhello\r\n0\n\r\n"), reject(400)),
        case("§7.1 bare LF as the final line", chunked("5\r\nhello\r\n0\r\n\n"), reject(400)),
        // RFC 9112 §7.1.2: trailer field lines obey the rules of header field lines.
        case("§7.1.2 bare LF in trailers", chunked("0\r\nX-T: 1\n\r\n"), reject(400)),
        case("§7.1.2 obs-fold in trailers", chunked("0\r\nX-T: 1\r\n 2\r\n\r\n"), reject(400)),
        case("§7.1.2 SP before colon in trailer", chunked("0\r\nX-T : 1\r\n\r\n"), reject(400)),
        case("§7.1.2 NUL in trailer", chunked(b"0\r\nX-T: a\0b\r\n\r\n"), reject(400)),
        case("§7.1.2 trailer without colon", chunked("0\r\nNoColon\r\n\r\n"), reject(400)),
        case("§7.1.2 a request line in the trailers", chunked(format!("0\r\n{HIDDEN}")), reject(400)),
        // Trailer caps (limits.rs): 8 KiB and as many fields as the head may have.
        case("RFC 6585 §5 trailers over 8 KiB", chunked(long_trailer), reject(431)),
        case("RFC 6585 §5 101 trailer fields", chunked(many_trailers), reject(431)),
        // A body is never parsed as a request; what follows the last chunk is a request.
        case("§7.1 request hidden in chunk data", chunked(format!("{:x}\r\n{HIDDEN}\r\n0\r\n\r\n", HIDDEN.len())), Want::Echo(HIDDEN.as_bytes())),
        case("§7.1 request after the last chunk", chunked(format!("{CHUNKED_HELLO}{HIDDEN}")), serve(&[200, 222])),
        // A chunked body cut short by the client's EOF is never answered.
        case("§7.1 EOF before the final CRLF", chunked("5\r\nhello\r\n0\r\n"), Want::Silent),
        case("§7.1 EOF before the last chunk", chunked("5\r\nhello\r\n"), Want::Silent),
        case("§7.1 EOF inside chunk data", chunked("5\r\nhel"), Want::Silent),
        case("§7.1 EOF inside the trailers", chunked("0\r\nX-T: 1\r\n"), Want::Silent),
    ]
}

#[rustfmt::skip]
fn smuggling_cases() -> Vec<Case> {
    let both = |fields: &str, body: &str| echo(fields, body);
    let raw =
        |fields: &[u8], body: &str| [ECHO.as_bytes(), fields, b"\r\n", body.as_bytes()].concat();
    let te_cl = format!("{:x}\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", 20);
    let n = HIDDEN.len();
    vec![
        // RFC 9112 §6.3 ¶3: TE and CL together "ought to be handled as an error"; we
        // reject (400 and close): CL.TE and TE.CL (Kettle, "HTTP Desync Attacks", 2019).
        case("§6.3 ¶3 CL.TE", both("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nG"), reject(400)),
        case("§6.3 ¶3 TE.CL", both("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", &te_cl), reject(400)),
        case("§6.3 ¶3 CL 0 with TE", both("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO), reject(400)),
        case("§6.3 ¶3 CL with TE identity", both("Content-Length: 5\r\nTransfer-Encoding: identity\r\n", "hello"), reject(400)),
        case("§6.3 ¶3 CL.TE hiding a request", both(&format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", 5 + HIDDEN.len()), &format!("0\r\n\r\n{HIDDEN}")), reject(400)),
        // TE.TE: obfuscated Transfer-Encoding next to a Content-Length, each of which some
        // parser somewhere ignores; any of them is still TE with CL, or a bad field: 400.
        case("TE.TE xchunked with CL", both("Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n", &te_cl), reject(400)),
        case("TE.TE chunked then x with CL", both("Content-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", &te_cl), reject(400)),
        case("TE.TE HTAB before chunked with CL", both("Content-Length: 4\r\nTransfer-Encoding:\tchunked\r\n", &te_cl), reject(400)),
        case("TE.TE SP before colon with CL", both("Content-Length: 4\r\nTransfer-Encoding : chunked\r\n", &te_cl), reject(400)),
        case("TE.TE obs-folded TE with CL", both("Content-Length: 4\r\nX: y\r\n Transfer-Encoding: chunked\r\n", &te_cl), reject(400)),
        case("TE.TE TE after a bare LF with CL", raw(b"Content-Length: 4\r\nX: y\nTransfer-Encoding: chunked\r\n", &te_cl), reject(400)),
        case("TE.TE name, CRLF, colon", both("Content-Length: 4\r\nTransfer-Encoding\r\n: chunked\r\n", &te_cl), reject(400)),
        case("TE.TE VT in name with CL", raw(b"Content-Length: 4\r\nTransfer-Encoding\x0b: chunked\r\n", &te_cl), reject(400)),
        case("TE.TE quoted chunked with CL", both("Content-Length: 4\r\nTransfer-Encoding: \"chunked\"\r\n", &te_cl), reject(400)),
        case("TE.TE chunked, identity with CL", both("Content-Length: 4\r\nTransfer-Encoding: chunked, identity\r\n", &te_cl), reject(400)),
        // CL.CL: two lengths a proxy and the server could each pick from.
        case("CL.CL differing, hiding a request", both(&format!("Content-Length: 0\r\nContent-Length: {n}\r\n"), HIDDEN), reject(400)),
        case("CL.CL SP before colon", both(&format!("Content-Length: 0\r\nContent-Length : {n}\r\n"), HIDDEN), reject(400)),
        case("CL.CL obs-folded value", both(&format!("Content-Length: 0\r\n {n}\r\n"), HIDDEN), reject(400)),
        case("CL with trailing junk", both(&format!("Content-Length: {n}x\r\n"), HIDDEN), reject(400)),
        // Chunk-size tricks that desynchronise lenient parsers ("funky chunks", 2025).
        case("chunk-size wrap to 0 plus hidden request", chunked(format!("10000000000000000\r\n\r\n{HIDDEN}0\r\n\r\n")), reject(400)),
        case("chunk extension hiding LF", chunked(format!("2;\nxx\r\n{:x}\r\n{HIDDEN}\r\n0\r\n\r\n", HIDDEN.len())), reject(400)),
        case("chunk data one byte over, then request", chunked(format!("2\r\nxxx\r\n0\r\n\r\n{HIDDEN}")), reject(400)),
        case("chunk data ended by LF, then request", chunked(format!("2\r\nxx\n0\r\n\r\n{HIDDEN}")), reject(400)),
        case("last chunk ended by LF LF, then request", chunked(format!("0\n\n{HIDDEN}")), reject(400)),
        // The connection is never resynchronised after a rejected request: a valid request
        // before it is answered, nothing after it is.
        case("§9.6 valid, CL.TE, hidden", format!("{}{}{HIDDEN}", get("/status/201", ""), both("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nG")), reject_after(&[201], 400)),
        case("§9.6 valid, bad CL, hidden", format!("{}{}{HIDDEN}", get("/status/201", ""), both(&format!("Content-Length: +{n}\r\n"), HIDDEN)), reject_after(&[201], 400)),
    ]
}

#[rustfmt::skip]
fn expect_cases() -> Vec<Case> {
    let ex = |value: &str, body: &str| {
        echo(
            &format!("Expect: {value}\r\nContent-Length: {}\r\n", body.len()),
            body,
        )
    };
    vec![
        // RFC 9110 §10.1.1: 100-continue (case-insensitive); a client may send the body
        // without waiting, and the request is served either way.
        case("9110 §10.1.1 100-continue, body sent at once", ex("100-continue", "hello"), Want::Echo(b"hello")),
        case("9110 §10.1.1 100-Continue", ex("100-Continue", "hello"), Want::Echo(b"hello")),
        case("9110 §10.1.1 100-continue, chunked", echo("Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO), Want::Echo(b"hello")),
        case("9110 §10.1.1 100-continue without a body", get("/healthz", "Expect: 100-continue\r\n"), serve(&[200])),
        case("9110 §5.6.1 empty Expect", ex("", "hello"), Want::Echo(b"hello")),
        // RFC 9110 §10.1.1: an expectation we cannot meet: 417.
        case("9110 §10.1.1 unknown expectation", ex("200-ok", "hello"), reject(417)),
        case("9110 §10.1.1 a refused body is never parsed", ex("200-ok", HIDDEN), reject(417)),
        case("9110 §10.1.1 100-continue plus another", ex("100-continue, x", "hello"), reject(417)),
        case("9110 §10.1.1 100-continue with a parameter", ex("100-continue;a=b", "hello"), reject(417)),
        // A request refused on its head gets its final status, not 100 first.
        case("9110 §10.1.1 100-continue over the body limit", echo("Expect: 100-continue\r\nContent-Length: 2000000\r\n", ""), reject(413)),
        // The demo reads a body only at /echo: other uploads are refused on their head.
        case("9110 §10.1.1 100-continue to a route that takes no body", "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", close(&[405])),
        case("9110 §10.1.1 100-continue to no route", "PUT /nope HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", close(&[404])),
        case("9110 §10.1.1 100-continue, a method the route does not take", "GET /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", close(&[405])),
        // RFC 9110 §10.1.1: 100-continue in an HTTP/1.0 request MUST be ignored.
        case("9110 §10.1.1 HTTP/1.0 100-continue", "POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", close(&[200])),
    ]
}

#[rustfmt::skip]
fn connection_cases() -> Vec<Case> {
    let v10 = |fields: &str| format!("GET / HTTP/1.0\r\n{fields}\r\n");
    vec![
        // RFC 9112 §9.3: HTTP/1.1 persists unless "close" is a Connection option (RFC 9110
        // §7.6.1: a case-insensitive token in a comma list, over every field line).
        case("§9.3 HTTP/1.1 persists", get("/", ""), serve(&[200])),
        case("§9.3 Connection: close", get("/", "Connection: close\r\n"), close(&[200])),
        case("9110 §7.6.1 CLOSE", get("/", "Connection: CLOSE\r\n"), close(&[200])),
        case("9110 §7.6.1 close in a list", get("/", "Connection: keep-alive, close\r\n"), close(&[200])),
        case("9110 §7.6.1 close on a second line", get("/", "Connection: x\r\nconnection: close\r\n"), close(&[200])),
        case("9110 §7.6.1 'closed' is not 'close'", get("/", "Connection: closed\r\n"), serve(&[200])),
        // RFC 9112 Appendix C.2.2: HTTP/1.0 persists only with keep-alive, and close wins.
        case("§9.3 HTTP/1.0 closes", v10(""), close(&[200])),
        case("C.2.2 HTTP/1.0 keep-alive", v10("Connection: keep-alive\r\n"), serve(&[200])),
        case("C.2.2 HTTP/1.0 Keep-Alive", v10("Connection: Keep-Alive\r\n"), serve(&[200])),
        case("C.2.2 HTTP/1.0 keep-alive, close", v10("Connection: keep-alive, close\r\n"), close(&[200])),
        // RFC 9110 §7.8: a server MAY ignore Upgrade; then the request is served as usual.
        case("9110 §7.8 websocket upgrade ignored", get("/", "Connection: upgrade\r\nUpgrade: websocket\r\n"), serve(&[200])),
        case("9110 §7.8 h2c upgrade ignored", get("/", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"), serve(&[200])),
        // An error closes whatever the request asked for.
        case("§9.6 keep-alive does not survive an error", get("/", "Connection: keep-alive\r\nContent-Length: -1\r\n"), reject(400)),
    ]
}

#[rustfmt::skip]
fn pipelining_cases() -> Vec<Case> {
    let s = |n: u16| get(&format!("/status/{n}"), "");
    let twenty: String = (200..220).map(s).collect();
    vec![
        // RFC 9112 §9.3.2: pipelined requests are answered in order.
        case("§9.3.2 three GETs", format!("{}{}{}", s(201), s(202), s(203)), serve(&[201, 202, 203])),
        case("§9.3.2 twenty GETs", twenty, serve(&(200..220).collect::<Vec<_>>())),
        case("§9.3.2 GET, POST with CL, GET", format!("{}{}{}", s(201), echo_exact("x"), s(203)), serve(&[201, 200, 203])),
        case("§9.3.2 chunked POST, GET", format!("{}{}", String::from_utf8_lossy(&chunked(CHUNKED_HELLO)), s(203)), serve(&[200, 203])),
        case("§9.3.2 an app error keeps the connection", format!("{}{}{}", s(201), get("/nope", ""), s(203)), serve(&[201, 404, 203])),
        // RFC 9112 §2.2: an empty line after a body (old clients) is ignored.
        case("§2.2 CRLF after a POST body", format!("{}\r\n{}", echo_exact("x"), s(203)), serve(&[200, 203])),
        // RFC 9112 §9.6: nothing after a response with Connection: close is answered.
        case("§9.6 close, then another", format!("{}{}", get("/status/201", "Connection: close\r\n"), s(202)), close(&[201])),
        case("§9.6 HTTP/1.0, then another", format!("GET / HTTP/1.0\r\n\r\n{}", s(202)), close(&[200])),
        // The application may end the connection too: the demo's /close sets Connection: close.
        case("§9.6 the handler's close, then another", format!("{}{}{}", s(201), get("/close", ""), s(203)), close(&[201, 200])),
        // After an error nothing else is answered: never resync.
        case("§9.6 valid, invalid, valid", format!("{}GET / HTTP/1.1\r\n\r\n{}", s(201), s(203)), reject_after(&[201], 400)),
        case("§9.6 invalid first", format!("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n{}", s(203)), reject(400)),
    ]
}

#[rustfmt::skip]
fn limit_cases() -> Vec<Case> {
    // gunicorn's defaults, which br-serve shares: request line 4094, 100 fields of 8190
    // bytes (limits.rs). A line is counted without its CRLF.
    let target = |line_len: usize| format!("/{}", "a".repeat(line_len - "GET / HTTP/1.1".len()));
    let field = |len: usize| format!("X: {}\r\n", "a".repeat(len - 3));
    let fields = |n: usize| format!("Host: t\r\n{}", "X: 1\r\n".repeat(n - 1));
    vec![
        // RFC 9110 §15.5.15: a request line over the limit: 414, even before its CRLF.
        case("9110 §15.5.15 request line at the limit", get(&target(4094), ""), serve(&[404])),
        case("9110 §15.5.15 request line one over", get(&target(4095), ""), reject(414)),
        case("9110 §15.5.15 endless request line", format!("GET /{}", "a".repeat(6000)), reject(414)),
        // RFC 9112 §3: a method longer than any implemented: 501, not a URI's 414.
        case("9112 §3 method filling the line", format!("{} / HTTP/1.1\r\n", "M".repeat(5000)), reject(501)),
        // RFC 6585 §5: a field line or a field count over the limit: 431.
        case("RFC 6585 §5 field at the limit", get("/", &field(8190)), serve(&[200])),
        case("RFC 6585 §5 field one over", get("/", &field(8191)), reject(431)),
        case("RFC 6585 §5 100 fields", format!("GET / HTTP/1.1\r\n{}\r\n", fields(100)), serve(&[200])),
        case("RFC 6585 §5 101 fields", format!("GET / HTTP/1.1\r\n{}\r\n", fields(101)), reject(431)),
        // RFC 9110 §15.5.14: a body over --limit-request-body (1 MiB): 413 before reading.
        case("9110 §15.5.14 Content-Length over the limit", echo("Content-Length: 1048577\r\n", "x"), reject(413)),
        case("9110 §15.5.14 chunk over the limit", chunked("100001\r\nx"), reject(413)),
    ]
}

// ---------------------------------------------------------------------------------------
// One test per class.
// ---------------------------------------------------------------------------------------

#[test]
fn request_line() {
    run_class("request line", request_line_cases());
}

#[test]
fn request_target() {
    run_class("request target", target_cases());
}

#[test]
fn protocol_version() {
    run_class("version", version_cases());
}

#[test]
fn host_field() {
    run_class("host", host_cases());
}

#[test]
fn field_syntax() {
    run_class("field syntax", field_cases());
}

#[test]
fn line_endings() {
    run_class("line endings", line_ending_cases());
}

#[test]
fn content_length() {
    run_class("content-length", content_length_cases());
}

#[test]
fn transfer_encoding() {
    run_class("transfer-encoding", transfer_encoding_cases());
}

#[test]
fn chunked_body() {
    run_class("chunked", chunked_cases());
}

#[test]
fn smuggling() {
    run_class("smuggling", smuggling_cases());
}

#[test]
fn expectations() {
    run_class("expect", expect_cases());
}

#[test]
fn connection_persistence() {
    run_class("connection", connection_cases());
}

#[test]
fn pipelining() {
    run_class("pipelining", pipelining_cases());
}

#[test]
fn limits() {
    run_class("limits", limit_cases());
}

// ---------------------------------------------------------------------------------------
// Conversations the table cannot express.
// ---------------------------------------------------------------------------------------

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// RFC 9110 §10.1.1: the server answers `100 Continue` before it has the body, so a
/// client that waits for it is not stuck; then the request is served normally.
#[test]
fn continue_is_sent_before_the_body() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    let framings = [
        ("Content-Length: 5\r\n", "hello"),
        ("Transfer-Encoding: chunked\r\n", CHUNKED_HELLO),
    ];
    for (framing, body) in framings {
        let mut stream = raw_connect(server.addr());
        let head = echo(&format!("Expect: 100-continue\r\n{framing}"), "");
        stream.write_all(head.as_bytes()).expect("send head");
        let (interim, _) = read_until(&mut stream, secs(10), |b| b.len() >= CONTINUE.len());
        assert_eq!(interim, CONTINUE, "{framing}: {}", show(&interim));
        stream.write_all(body.as_bytes()).expect("send body");
        stream.shutdown(Shutdown::Write).expect("shutdown");
        let (bytes, closed) = read_to_close(&mut stream, EXCHANGE_WITHIN);
        let outcome = parse_all(&bytes, &[]);
        assert!(
            closed && outcome.trailing.is_empty(),
            "{framing}: {}",
            show(&bytes)
        );
        assert_eq!(statuses(&outcome), [200], "{framing}: {}", show(&bytes));
        assert_eq!(outcome.responses[0].body, b"hello");
    }
}

/// RFC 9110 §10.1.1: a server that will not take the body sends the final status instead
/// of 100 Continue, and (the body being unread) closes.
#[test]
fn a_refused_expectation_gets_no_continue() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    let heads = [
        (
            echo("Expect: 100-continue\r\nContent-Length: 2000000\r\n", ""),
            413,
        ),
        (
            echo(
                "Expect: 100-continue\r\nContent-Length: 5\r\nContent-Length: 6\r\n",
                "",
            ),
            400,
        ),
        (
            "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n".into(),
            400,
        ),
        (
            echo("Expect: 100-continue, x\r\nContent-Length: 5\r\n", ""),
            417,
        ),
    ];
    for (head, status) in heads {
        let mut stream = raw_connect(server.addr());
        stream.write_all(head.as_bytes()).expect("send head");
        // No shutdown: the server must answer without waiting for the body or for EOF.
        let (bytes, closed) = read_to_close(&mut stream, EXCHANGE_WITHIN);
        let outcome = parse_all(&bytes, &[]);
        let what = show(head.as_bytes());
        assert!(closed, "{what}: not closed; got {}", show(&bytes));
        assert!(outcome.interim.is_empty(), "{what}: got {}", show(&bytes));
        assert_eq!(statuses(&outcome), [status], "{what}");
    }
}

/// RFC 9110 §9.3.2 and §6.4.1: no content in a response to HEAD, nor in 204 and 304; RFC
/// 9110 §8.6: HEAD gets the Content-Length GET would, 204 gets none. Pipelined, so a
/// single stray body byte would be read as the start of the next response.
#[test]
fn head_204_and_304_carry_no_body() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    let wire = format!(
        "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n{}{}HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n{}{PROBE}",
        get("/status/204", ""),
        get("/status/304", ""),
        get("/", ""),
    );
    let heads = [true, false, false, true, false, false];
    let outcome = exchange(server.addr(), &[wire.into_bytes()], &heads).expect("exchange");
    assert!(outcome.closed && outcome.trailing.is_empty(), "{outcome:?}");
    assert_eq!(statuses(&outcome), [200, 204, 304, 200, 200, PROBE_STATUS]);
    let lengths: Vec<Option<&str>> = outcome
        .responses
        .iter()
        .map(|r| r.header("Content-Length"))
        .collect();
    assert_eq!(
        lengths[..5],
        [Some("14"), None, None, Some("3"), Some("14")]
    );
    assert_eq!(outcome.responses[4].body, b"Hello, World!\n");
}

/// RFC 9110 §9.3.2: "the server MUST NOT send content in the response" to HEAD, and RFC
/// 9112 §6.3 ¶1: a response to HEAD ends at its empty line whatever its fields say. That
/// holds for an error answering a HEAD request whose request line was understood: the
/// client frames the response by its method, so a body would be read as garbage.
#[test]
fn an_error_answering_head_has_no_body() {
    let server = Launch::new().args(&["--workers", "1"]).start();
    let cases = [
        ("HEAD / HTTP/1.1\r\n\r\n", 400),
        (
            "HEAD / HTTP/1.1\r\nHost: t\r\nContent-Length: +1\r\n\r\n",
            400,
        ),
        ("HEAD / HTTP/1.1\r\nHost: t\r\nExpect: x\r\n\r\n", 417),
        (
            "HEAD / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
    ];
    let mut failures = Vec::new();
    for (wire, status) in cases {
        let outcome =
            exchange(server.addr(), &[wire.as_bytes().to_vec()], &[true]).expect("exchange");
        let ok = statuses(&outcome) == [status] && outcome.trailing.is_empty() && outcome.closed;
        if !ok {
            failures.push(format!(
                "{}: {:?}, after the head: {}",
                show(wire.as_bytes()),
                statuses(&outcome),
                outcome.trailing
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "content sent in answer to HEAD:\n{}",
        failures.join("\n")
    );
}
