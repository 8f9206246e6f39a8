//! The access log: one line per answered request, in gunicorn's `%(atom)s` format
//! (Apache's combined format by default) or as JSON lines.
//!
//! The format is parsed once at start-up into a list of pieces, so formatting a line is
//! a walk over that list. A line is written once its answer has gone out, as nginx and
//! gunicorn write theirs: the body bytes it counts are those sent, and its time runs to
//! the last of them (a worker holds it, as a [`Pending`], meanwhile). Each line is
//! written with one `write` to a file opened with `O_APPEND`, so lines from different
//! workers never interleave (to a pipe, which takes a write whole only up to 4096 bytes,
//! a longer line is cut to fit), and USR1 reopens the file after logrotate moved it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::Config;
use crate::http::origin_part;
use crate::sys::privileges::give_log_file;
use nix::fcntl::OFlag;
use nix::unistd::Uid;

/// gunicorn's default, which is Apache's combined log format.
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// One atom of the format (gunicorn's names).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Literal(String),
    RemoteAddr,     // h
    Ident,          // l: identd, always "-"
    User,           // u: authenticated user, always "-"
    Time,           // t: [28/Nov/2026:03:04:05 +0000]
    RequestLine,    // r
    Status,         // s
    Method,         // m
    Path,           // U
    Query,          // q
    Protocol,       // H
    BodyBytesDash,  // b: "-" for 0
    BodyBytes,      // B
    Referer,        // f
    UserAgent,      // a
    Seconds,        // T
    Micros,         // D
    Millis,         // M
    DecimalSeconds, // L
    Pid,            // p
    RequestHeader(String),
    ResponseHeader(String),
}

/// A parsed access-log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    atoms: Vec<Atom>,
    json: bool,
}

/// What one log line is made of.
pub struct Entry<'a> {
    /// The client's address (None for Unix sockets).
    pub peer: Option<SocketAddr>,
    /// The request's method, target and version, as sent: bytes, since a refused
    /// request's need not be UTF-8 (they are logged as `\xHH`).
    pub method: &'a [u8],
    /// The request-target.
    pub target: &'a [u8],
    /// "HTTP/1.1" or "HTTP/1.0", or what a refused request had there.
    pub version: &'a [u8],
    /// Looks up a request header (case-insensitive), as the client sent it: bytes that
    /// are not UTF-8 are logged as `\xHH`, not hidden. A field sent on several lines is
    /// their values joined by `", "` ([`joined_field`]).
    pub header: &'a dyn Fn(&str) -> Option<Cow<'a, [u8]>>,
    /// Looks up a header of the response (case-insensitive): the ones the application
    /// set, not those the server writes itself (Date, Content-Length, Connection).
    pub response_header: &'a dyn Fn(&str) -> Option<&'a str>,
    /// The response status.
    pub status: u16,
    /// Bytes of response body.
    pub body_bytes: u64,
    /// When the request started.
    pub started: SystemTime,
    /// How long it took.
    pub elapsed: Duration,
}

/// A request's line, held while its answer goes out: what the format needs of the
/// request and the response, copied (the request's buffers serve the next one), and
/// the body bytes the answer carries. [`AccessLog::finish`] writes it with the bytes
/// that went out and the time until then.
#[derive(Debug)]
pub struct Pending {
    peer: Option<SocketAddr>,
    method: Vec<u8>,
    target: Vec<u8>,
    version: Vec<u8>,
    /// The request headers the format names, lowercase, with their values.
    headers: Vec<(String, Vec<u8>)>,
    /// The response headers the format names, lowercase, with their values.
    response_headers: Vec<(String, String)>,
    status: u16,
    body_bytes: u64,
    started: SystemTime,
    clock: Instant,
}

impl Format {
    /// Parses a gunicorn-style format: `%(name)s` atoms, `%({header}i)s` request
    /// headers, `%({header}o)s` response headers, `%%` for a percent sign (gunicorn
    /// formats with Python's `%` operator), everything else literal. With `json`, each
    /// line is a JSON object of the atoms instead, keyed by atom name.
    pub fn parse(spec: &str, json: bool) -> Result<Format, String> {
        let mut atoms = Vec::new();
        let mut literal = String::new();
        let mut rest = spec;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let Some(inner) = after.strip_prefix('(') else {
                // `%%` is one `%`; a `%` before anything else is kept as it is.
                literal.push('%');
                rest = after.strip_prefix('%').unwrap_or(after);
                continue;
            };
            let end = inner
                .find(")s")
                .ok_or_else(|| format!("unterminated atom in '{spec}'"))?;
            push_literal(&mut atoms, &std::mem::take(&mut literal));
            atoms.push(atom(&inner[..end])?);
            rest = &inner[end + 2..];
        }
        literal.push_str(rest);
        push_literal(&mut atoms, &literal);
        Ok(Format { atoms, json })
    }

    /// The request headers (lowercase) that lines of this format show.
    fn request_headers(&self) -> impl Iterator<Item = &str> {
        self.atoms.iter().filter_map(|atom| match atom {
            Atom::Referer => Some("referer"),
            Atom::UserAgent => Some("user-agent"),
            Atom::User => Some("authorization"),
            Atom::RequestHeader(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The response headers (lowercase) that lines of this format show.
    fn response_headers(&self) -> impl Iterator<Item = &str> {
        self.atoms.iter().filter_map(|atom| match atom {
            Atom::ResponseHeader(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Formats one line, newline included, however long.
    #[cfg(test)]
    fn line(&self, entry: &Entry) -> String {
        self.line_within(entry, usize::MAX)
    }

    /// Formats one line, newline included, in at most `max` bytes (a pipe's atomic
    /// write): a text line longer than that is cut and ends with ` [truncated]`; a JSON
    /// line has its longest values cut so, and stays an object a log shipper can read.
    pub fn line_within(&self, entry: &Entry, max: usize) -> String {
        let mut out = String::with_capacity(160);
        if self.json {
            let mut fields = self.json_fields(entry);
            json_object(&fields, &mut out);
            // Rare (a pipe, and a line over 4 KiB): only then is it rendered again.
            if out.len() >= max {
                shorten_to_fit(&mut fields, max);
                out.clear();
                json_object(&fields, &mut out);
            }
        } else {
            for atom in &self.atoms {
                let _ = write_atom(&mut out, atom, entry, Escape::Text);
            }
            cut_to_fit(&mut out, max - 1);
        }
        out.push('\n');
        out
    }

    /// A JSON line's keys and values, in the format's order.
    fn json_fields(&self, entry: &Entry) -> Vec<(String, String)> {
        let atoms = self.atoms.iter().filter(|a| !matches!(a, Atom::Literal(_)));
        let field = |atom| {
            let mut value = String::new();
            let _ = write_atom(&mut value, atom, entry, Escape::None);
            (atom_name(atom), value)
        };
        atoms.map(field).collect()
    }
}

/// What a line or a value cut to fit ends with.
const CUT: &str = " [truncated]";

/// Cuts `text` to at most `max` bytes, at a character boundary, ending with [`CUT`].
pub(crate) fn cut_to_fit(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut at = max.saturating_sub(CUT.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    text.push_str(CUT);
}

/// Cuts the longest values until the object, with its newline, fits in `max` bytes (or
/// no value is long enough to cut).
fn shorten_to_fit(fields: &mut [(String, String)], max: usize) {
    loop {
        let len = json_object_len(fields) + 1;
        let longest = fields
            .iter_mut()
            .map(|(_, value)| value)
            .max_by_key(|v| v.len());
        let Some(longest) = longest.filter(|v| v.len() > 2 * CUT.len() && len > max) else {
            return;
        };
        let keep = longest.len().saturating_sub(len - max).max(2 * CUT.len());
        cut_to_fit(longest, keep);
    }
}

fn json_object(fields: &[(String, String)], out: &mut String) {
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, key);
        out.push(':');
        json_string(out, value);
    }
    out.push('}');
}

fn json_object_len(fields: &[(String, String)]) -> usize {
    let mut out = String::new();
    json_object(fields, &mut out);
    out.len()
}

fn push_literal(atoms: &mut Vec<Atom>, text: &str) {
    if !text.is_empty() {
        atoms.push(Atom::Literal(text.to_string()));
    }
}

fn atom(name: &str) -> Result<Atom, String> {
    if let Some(header) = name.strip_prefix('{').and_then(|n| n.strip_suffix("}i")) {
        return Ok(Atom::RequestHeader(header.to_ascii_lowercase()));
    }
    if let Some(header) = name.strip_prefix('{').and_then(|n| n.strip_suffix("}o")) {
        return Ok(Atom::ResponseHeader(header.to_ascii_lowercase()));
    }
    Ok(match name {
        "h" => Atom::RemoteAddr,
        "l" => Atom::Ident,
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "s" => Atom::Status,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        "b" => Atom::BodyBytesDash,
        "B" => Atom::BodyBytes,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Seconds,
        "D" => Atom::Micros,
        "M" => Atom::Millis,
        "L" => Atom::DecimalSeconds,
        "p" => Atom::Pid,
        other => return Err(format!("unknown access log atom '%({other})s'")),
    })
}

fn atom_name(atom: &Atom) -> String {
    let name = match atom {
        Atom::RequestHeader(h) => return format!("{{{h}}}i"),
        Atom::ResponseHeader(h) => return format!("{{{h}}}o"),
        Atom::Literal(_) => "-",
        Atom::Ident => "l",
        Atom::User => "u",
        Atom::RemoteAddr => "h",
        Atom::Time => "t",
        Atom::RequestLine => "r",
        Atom::Status => "s",
        Atom::Method => "m",
        Atom::Path => "U",
        Atom::Query => "q",
        Atom::Protocol => "H",
        Atom::BodyBytesDash => "b",
        Atom::BodyBytes => "B",
        Atom::Referer => "f",
        Atom::UserAgent => "a",
        Atom::Seconds => "T",
        Atom::Micros => "D",
        Atom::Millis => "M",
        Atom::DecimalSeconds => "L",
        Atom::Pid => "p",
    };
    name.to_string()
}

/// How the client's own text (request line, headers) goes into a line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Text lines: `"`, `\` and control bytes as `\xHH`, as nginx writes them, so a
    /// client cannot close a quoted field early and forge the ones after it (a
    /// User-Agent of `x" 200 999 "y`), nor break the line.
    Text,
    /// JSON lines, whose strings are escaped whole by `json_string`.
    None,
}

/// Appends `value`, which came from the client, escaped as `escape` says. Bytes that
/// are not UTF-8 are written as `\xHH` in both kinds of line, as nginx writes them,
/// rather than replaced or dropped: what the client sent stays in the log.
fn push_client(out: &mut String, value: &[u8], escape: Escape) -> std::fmt::Result {
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            let quoted = matches!(c, '"' | '\\') || c.is_control();
            match escape {
                Escape::Text if quoted => write!(out, "\\x{:02X}", c as u32)?,
                Escape::Text if reorders_lines(c) => {
                    for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                        write!(out, "\\x{byte:02X}")?;
                    }
                }
                _ => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            write!(out, "\\x{byte:02X}")?;
        }
    }
    Ok(())
}

/// Characters that are not control bytes, yet break a line or reorder what a terminal
/// or viewer shows of it (U+2028, U+2029, and the bidirectional marks, embeddings and
/// overrides, U+202E among them): a client could make a line read as something else.
/// Written as their UTF-8 bytes in `\xHH`, as nginx writes every byte past ASCII.
fn reorders_lines(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn write_atom(out: &mut String, atom: &Atom, e: &Entry, escape: Escape) -> std::fmt::Result {
    let header = |name: &str| (e.header)(name).unwrap_or(Cow::Borrowed(b"-"));
    let mut client = |value: &[u8]| push_client(out, value, escape);
    match atom {
        Atom::Literal(text) => out.write_str(text),
        Atom::RemoteAddr => match e.peer {
            Some(peer) => write!(out, "{}", peer.ip()),
            None => out.write_str("-"),
        },
        Atom::Ident => out.write_str("-"),
        Atom::User => match (e.header)("authorization").as_deref().and_then(basic_user) {
            Some(user) => client(&user),
            None => out.write_str("-"),
        },
        Atom::Time => write_clf_time(out, e.started),
        Atom::RequestLine => client(&[e.method, b" ", e.target, b" ", e.version].concat()),
        Atom::Status => write!(out, "{}", e.status),
        // A refused request's method and version are whatever the client wrote.
        Atom::Method => client(e.method),
        Atom::Path => client(path_and_query(e.target).0),
        Atom::Query => client(path_and_query(e.target).1),
        Atom::Protocol => client(e.version),
        Atom::BodyBytesDash if e.body_bytes == 0 => out.write_str("-"),
        Atom::BodyBytesDash | Atom::BodyBytes => write!(out, "{}", e.body_bytes),
        Atom::Referer => client(&header("referer")),
        Atom::UserAgent => client(&header("user-agent")),
        Atom::Seconds => write!(out, "{}", e.elapsed.as_secs()),
        Atom::Micros => write!(out, "{}", e.elapsed.as_micros()),
        Atom::Millis => write!(out, "{}", e.elapsed.as_millis()),
        Atom::DecimalSeconds => write!(out, "{:.6}", e.elapsed.as_secs_f64()),
        Atom::Pid => write!(out, "<{}>", std::process::id()),
        Atom::RequestHeader(name) => client(&header(name)),
        Atom::ResponseHeader(name) => client((e.response_header)(name).unwrap_or("-").as_bytes()),
    }
}

/// The user name of `Basic` credentials (RFC 7617: base64 of `user:password`), for
/// `%(u)s` as gunicorn's `_get_user` finds it; none for another scheme, a value that is
/// not base64, or an empty name. The password is never looked at past the colon.
fn basic_user(authorization: &[u8]) -> Option<Vec<u8>> {
    let (scheme, credentials) =
        authorization.split_at(authorization.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64_decode(credentials.trim_ascii())?;
    let user = decoded.split(|&b| b == b':').next()?;
    (!user.is_empty()).then(|| user.to_vec())
}

/// RFC 4648 §4 base64 (the standard alphabet, padding optional); none for any other byte.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let text = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in text {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6 | u32::from(sextet)) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The path and the query (empty when there is none) of a target, as gunicorn's
/// PATH_INFO and QUERY_STRING hold them: an absolute-form target's too.
fn path_and_query(target: &[u8]) -> (&[u8], &[u8]) {
    // Only a refused target can be other than ASCII: it is split as it stands.
    let origin = std::str::from_utf8(target).map_or(target, |t| origin_part(t).as_bytes());
    match origin.iter().position(|&b| b == b'?') {
        Some(at) => (&origin[..at], &origin[at + 1..]),
        None => (origin, b""),
    }
}

/// Common Log Format time, in UTC: `[28/Nov/2026:03:04:05 +0000]`.
fn write_clf_time(out: &mut String, at: SystemTime) -> std::fmt::Result {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (year, month, day) = crate::http::date::civil_from_days((secs / 86_400) as i64);
    let tod = secs % 86_400;
    let month = crate::http::date::MONTHS[(month - 1) as usize];
    write!(
        out,
        "[{day:02}/{month}/{year}:{:02}:{:02}:{:02} +0000]",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

fn json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An open access log: its format and where its lines go.
#[derive(Debug)]
pub struct AccessLog {
    format: Format,
    sink: Sink,
}

impl AccessLog {
    /// Opens the access log the configuration asks for, if any (see [`LogPath::new`]).
    pub fn open(config: &Config) -> std::io::Result<Option<AccessLog>> {
        let Some(target) = config.access_log.as_deref() else {
            return Ok(None);
        };
        Ok(Some(AccessLog {
            format: config.access_log_format.clone(),
            sink: Sink::open(target, config)?,
        }))
    }

    /// Holds the line of a request whose answer is about to be queued: `entry`'s
    /// `body_bytes` is what the answer carries, its `elapsed` is not used, and `clock`
    /// is when the request started, by the monotonic clock.
    pub fn hold(&self, entry: &Entry, clock: Instant) -> Pending {
        let headers = self.format.request_headers();
        let response_headers = self.format.response_headers();
        Pending {
            peer: entry.peer,
            method: entry.method.to_vec(),
            target: entry.target.to_vec(),
            version: entry.version.to_vec(),
            headers: headers
                .filter_map(|name| Some((name.to_string(), (entry.header)(name)?.into_owned())))
                .collect(),
            response_headers: response_headers
                .filter_map(|name| Some((name.to_string(), (entry.response_header)(name)?.into())))
                .collect(),
            status: entry.status,
            body_bytes: entry.body_bytes,
            started: entry.started,
            clock,
        }
    }

    /// Writes a held line once its answer is done, or its connection closed under it:
    /// `body_sent` bytes of body went out, the last of them by `now`.
    pub fn finish(&mut self, held: &Pending, body_sent: u64, now: Instant) {
        let find = |name: &str| named(&held.headers, name).map(|v| Cow::Borrowed(&v[..]));
        let find_sent = |name: &str| named(&held.response_headers, name).map(String::as_str);
        // A pipe takes a write whole only up to PIPE_BUF bytes: a longer line could be
        // split, and another worker's land in it. One byte is left for the newline a
        // line after a torn one starts with.
        let max = match self.sink.pipe {
            true => PIPE_BUF - 1,
            false => usize::MAX,
        };
        let line = self.format.line_within(
            &Entry {
                peer: held.peer,
                method: &held.method,
                target: &held.target,
                version: &held.version,
                header: &find,
                response_header: &find_sent,
                status: held.status,
                body_bytes: body_sent.min(held.body_bytes),
                started: held.started,
                elapsed: now.saturating_duration_since(held.clock),
            },
            max,
        );
        self.sink.write_line(&line);
    }

    /// USR1: reopens the file after a rotation.
    pub fn reopen(&mut self) {
        self.sink.reopen();
    }

    /// A HUP changed `--user`: the file goes to `owner` ([`LogPath::hand_to`]).
    pub fn hand_to(&mut self, owner: Option<Uid>) {
        let sink = &mut self.sink;
        if let (Some(path), Some(file)) = (sink.path.as_mut(), sink.file.as_ref()) {
            if let Err(err) = path.hand_to(owner, file) {
                log::warn!("cannot hand {} to --user: {err}", path.path.display());
            }
        }
    }
}

/// Writes all of `bytes` (one `write` for a line, but for a pipe's partial write or a
/// signal); returns how many went out, and the error that stopped it.
fn write_whole(out: &mut impl Write, bytes: &[u8]) -> (usize, std::io::Result<()>) {
    let mut written = 0;
    while written < bytes.len() {
        match out.write(&bytes[written..]) {
            Ok(0) => return (written, Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return (written, Err(err)),
        }
    }
    (written, Ok(()))
}

/// Where a log goes: a file (reopened on USR1) or a standard stream.
#[derive(Debug)]
struct Sink {
    path: Option<LogPath>,
    file: Option<File>,
    /// Writing fails (a full disk, say), and the error log said so once.
    failing: bool,
    /// A line went out only in part: the next one starts on a line of its own.
    torn: bool,
    /// The sink is a pipe or a socket (`-` under Docker or systemd, a FIFO), which takes
    /// a write whole only up to [`PIPE_BUF`] bytes.
    pipe: bool,
}

/// The most bytes a pipe takes in one `write` without interleaving them with another
/// process's (POSIX's PIPE_BUF, 4096 on Linux).
pub(crate) const PIPE_BUF: usize = 4096;

/// A request field as the log shows it, from the values of the lines that carry it:
/// joined by `", "` when there are several, as RFC 9110 §5.3 makes them equivalent to
/// one line, the empty ones left out (§5.6.1). A proxy may append its own line rather
/// than extend the client's (HAProxy's `option forwardfor` does, for `X-Forwarded-For`):
/// the first line alone could be the client's forgery and the proxy's entry never
/// logged. The joined value stops at [`JOINED_MAX`] bytes.
pub fn joined_field<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Option<Cow<'a, [u8]>> {
    let first = values.next()?;
    let mut rest = values.filter(|value| !value.is_empty()).peekable();
    if rest.peek().is_none() {
        return Some(Cow::Borrowed(first));
    }
    let mut all = first.to_vec();
    for value in rest {
        if all.len() >= JOINED_MAX {
            break;
        }
        if !all.is_empty() {
            all.extend_from_slice(b", ");
        }
        all.extend_from_slice(value);
    }
    all.truncate(JOINED_MAX);
    Some(Cow::Owned(all))
}

/// The most a header joined from several lines gives the log: a value of one line is
/// held to `--limit-request-field-size`, and 100 lines of it made lines of 800 KB.
const JOINED_MAX: usize = 8192;

/// The value of the field called `name` (case-insensitive) among `fields`.
fn named<'a, V>(fields: &'a [(String, V)], name: &str) -> Option<&'a V> {
    let found = fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
    found.map(|(_, value)| value)
}

/// Whether `fd` is a pipe or a socket (or cannot be told, which is taken as a file).
pub(crate) fn is_pipe(fd: std::os::fd::BorrowedFd) -> bool {
    use nix::sys::stat::{SFlag, fstat};
    fstat(fd).is_ok_and(|st| {
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        kind == SFlag::S_IFIFO || kind == SFlag::S_IFSOCK
    })
}

impl Sink {
    /// Opens `target`: `-` means stdout, anything else a file opened for appending.
    pub fn open(target: &str, config: &Config) -> std::io::Result<Sink> {
        match target {
            "-" => Ok(Sink {
                path: None,
                file: None,
                failing: false,
                torn: false,
                pipe: is_pipe(std::io::stdout().as_fd()),
            }),
            path => {
                let path = LogPath::new(path.into(), config);
                let file = path.open()?;
                Ok(Sink {
                    path: Some(path),
                    pipe: is_pipe(file.as_fd()),
                    file: Some(file),
                    failing: false,
                    torn: false,
                })
            }
        }
    }

    /// Writes one line with one `write`. When writing fails (a full disk), the error log
    /// says so once, not for every request, and again when lines go out once more; a
    /// line the disk took only part of is not continued by the next one.
    pub fn write_line(&mut self, line: &str) {
        let torn = std::mem::take(&mut self.torn);
        let joined: Cow<str> = match torn {
            true => ["\n", line].concat().into(),
            false => line.into(),
        };
        let bytes = joined.as_bytes();
        let (written, result) = match self.file.as_mut() {
            Some(file) => write_whole(file, bytes),
            None => write_whole(&mut std::io::stdout().lock(), bytes),
        };
        match result {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    log::warn!("writing the access log again");
                }
            }
            Err(err) => {
                self.torn = written > 0 || torn;
                if !std::mem::replace(&mut self.failing, true) {
                    log::warn!("cannot write the access log: {err}; lines are lost until it can");
                }
            }
        }
    }

    /// USR1: opens the path again, so lines go to the new file after a rotation.
    pub fn reopen(&mut self) {
        let current = self.file.as_ref();
        let rotates = |path: &&LogPath| current.is_some_and(|file| path.rotates(file));
        if let Some(path) = self.path.as_ref().filter(rotates) {
            match path.open() {
                Ok(file) => {
                    self.pipe = is_pipe(file.as_fd());
                    self.file = Some(file);
                    self.torn = false;
                }
                Err(err) => log::error!("cannot reopen {}: {err}", path.path.display()),
            }
        }
    }
}

/// A log file that USR1 opens again: where it is, the mode it is created with, and the
/// workers' user (`--user`), who must be able to open it again too.
#[derive(Debug)]
pub struct LogPath {
    /// Where the file is.
    pub path: PathBuf,
    mode: u32,
    owner: Option<Uid>,
}

impl LogPath {
    /// The log at `path` that `config` names: created with [`crate::Config::file_mode`]
    /// if missing, and given to `--user` once opened.
    pub fn new(path: PathBuf, config: &Config) -> LogPath {
        let owner = config.credentials.as_ref().map(|c| c.uid);
        LogPath {
            path,
            mode: config.file_mode(),
            owner,
        }
    }

    /// A HUP changed `--user`: `file`, open now, and each file USR1 opens from now on go
    /// to `owner`, who must be able to open them again (with none, the workers run as
    /// root, who can: nothing changes hands).
    pub fn hand_to(&mut self, owner: Option<Uid>, file: &File) -> std::io::Result<()> {
        self.owner = owner;
        owner.map_or(Ok(()), |uid| give_log_file(file, uid))
    }

    /// Opens the file for appending: `O_APPEND` makes each `write` land whole at the
    /// end even with several processes writing. A file already there keeps its mode; one
    /// created here gets `mode` exactly, whatever umask br-serve was started under (077
    /// made the logs unreadable to the log shipper that `mode` lets read them).
    pub fn open(&self) -> std::io::Result<File> {
        let file = match self.open_for_append(self.open_flags()) {
            Err(err) if err.raw_os_error() == Some(nix::libc::ELOOP) && self.owner.is_some() => {
                self.open_through_link()?
            }
            opened => opened.map_err(|err| self.explain(err))?,
        };
        // Lines are written whole, waiting for a slow reader of a FIFO as for a disk.
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_APPEND))?;
        if let Some(uid) = self.owner {
            if let Err(err) = give_log_file(&file, uid) {
                log::warn!("cannot hand {} to uid {uid}: {err}", self.path.display());
            }
        }
        Ok(file)
    }

    /// Whether USR1 opens it again, `current` being what is open now: unless both that
    /// and what the path names are no file (a pipe, a terminal, `/dev/null`), which have
    /// nothing to rotate. A worker running as `--user` could not open root's pipe behind
    /// `/dev/stdout` again: each USR1 logged an error in every worker, which went on
    /// writing to what it had. (A path with nothing there, rotated away, is a file to be.)
    pub fn rotates(&self, current: &File) -> bool {
        let is_file = |meta: std::io::Result<std::fs::Metadata>| meta.is_ok_and(|m| m.is_file());
        let named = std::fs::metadata(&self.path);
        is_file(current.metadata()) || named.is_err() || is_file(named)
    }

    fn open_for_append(&self, flags: OFlag) -> std::io::Result<File> {
        let mut append = std::fs::OpenOptions::new();
        append.append(true).custom_flags(flags.bits());
        let created = append
            .clone()
            .create_new(true)
            .mode(self.mode)
            .open(&self.path);
        match created {
            Ok(file) => {
                file.set_permissions(std::fs::Permissions::from_mode(self.mode))?;
                Ok(file)
            }
            // There already (or made in between by another process, which set its mode).
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                append.create(true).open(&self.path)
            }
            Err(err) => Err(err),
        }
    }

    /// `O_NONBLOCK`: a FIFO that no process reads (its log shipper restarting) fails the
    /// open, where it blocked the master in open(2), supervising nothing, until a reader
    /// came. `O_NOFOLLOW` with `--user`: the master, as root, gives the file it opened to
    /// the workers' user, who may write to the log's directory, so a symlink planted
    /// there (to `/etc/shadow`) would be given away at the next USR1.
    fn open_flags(&self) -> OFlag {
        match self.owner {
            Some(_) => OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW,
            None => OFlag::O_NONBLOCK,
        }
    }

    /// With `--user`, a symbolic link at the path: followed, without creating anything
    /// where it points, to what is not the server's to give (`/dev/stdout`'s pipe,
    /// terminal or socket), but never to a regular file, which would be given away.
    fn open_through_link(&self) -> std::io::Result<File> {
        let flags = OFlag::O_NONBLOCK.bits();
        let opened = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(flags)
            .open(&self.path);
        let file = opened.map_err(|err| self.explain(err))?;
        match file.metadata()?.is_file() {
            false => Ok(file),
            true => Err(std::io::Error::other(
                "a symbolic link to a file, which the master will not give to --user: name \
                 the file itself",
            )),
        }
    }

    /// "No such device or address" in words: it sent people looking for the wrong thing.
    fn explain(&self, err: std::io::Error) -> std::io::Error {
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::metadata(&self.path).map(|m| m.file_type());
        let why = match (err.raw_os_error(), kind) {
            (Some(nix::libc::ENXIO), Ok(kind)) if kind.is_fifo() => "a FIFO that no process reads",
            (Some(nix::libc::ENXIO), Ok(kind)) if kind.is_socket() => {
                "a socket, which cannot be opened as a file (to log to the journal, give -)"
            }
            _ => return err,
        };
        std::io::Error::new(err.kind(), why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(header: &'a dyn Fn(&str) -> Option<Cow<'a, [u8]>>) -> Entry<'a> {
        Entry {
            peer: Some("10.0.0.7:5555".parse().unwrap()),
            method: b"GET",
            target: b"/work?ms=400",
            version: b"HTTP/1.1",
            header,
            response_header: &|name| (name == "content-type").then_some("text/plain"),
            status: 200,
            body_bytes: 15,
            // 2026-11-28 03:04:05 UTC
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_835_045),
            elapsed: Duration::from_micros(400_123),
        }
    }

    #[test]
    fn lines_for_a_pipe_fit_in_one_atomic_write() {
        let agent = "é".repeat(3000); // two bytes each
        let header = |name: &str| (name == "user-agent").then_some(Cow::from(agent.as_bytes()));
        let text = Format::parse(DEFAULT_FORMAT, false).unwrap();
        let whole = text.line(&entry(&header));
        assert!(whole.len() > 6000 && !whole.contains("[truncated]"));
        let cut = text.line_within(&entry(&header), PIPE_BUF);
        assert!(cut.len() <= PIPE_BUF, "{}", cut.len());
        assert!(cut.starts_with("10.0.0.7 - - [") && cut.ends_with("éé [truncated]\n"));
        // A JSON line stays an object: the long value is cut inside its string.
        let json = Format::parse("%(s)s %(a)s %(U)s", true).unwrap();
        let cut = json.line_within(&entry(&header), PIPE_BUF);
        assert!(cut.len() <= PIPE_BUF, "{}", cut.len());
        assert!(cut.starts_with(r#"{"s":"200","a":"éé"#), "{cut}");
        assert!(cut.ends_with("é [truncated]\",\"U\":\"/work\"}\n"), "{cut}");
        let short = json.line(&entry(&|_| None));
        assert_eq!(json.line_within(&entry(&|_| None), PIPE_BUF), short);
    }

    #[test]
    fn fields_on_several_lines_are_joined() {
        let joined = |values: &[&'static [u8]]| joined_field(values.iter().copied());
        assert_eq!(joined(&[]), None);
        assert_eq!(joined(&[b""]).as_deref(), Some(&b""[..]));
        assert_eq!(
            joined(&[b"a", b"b", b"c"]).as_deref(),
            Some(&b"a, b, c"[..])
        );
        assert_eq!(
            joined(&[b"a", b"", b"c", b""]).as_deref(),
            Some(&b"a, c"[..])
        );
        assert_eq!(joined(&[b"", b"b"]).as_deref(), Some(&b"b"[..]));
        let long = [b'x'; 8000];
        let many = joined_field(std::iter::repeat_n(&long[..], 100)).unwrap();
        assert_eq!(many.len(), JOINED_MAX);
        assert!(matches!(joined(&[b"one"]), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn combined_format_by_default() {
        let header = |name: &str| match name {
            "user-agent" => Some(Cow::from(&b"curl/8.0"[..])),
            _ => None,
        };
        let line = Format::parse(DEFAULT_FORMAT, false)
            .unwrap()
            .line(&entry(&header));
        assert_eq!(
            line,
            "10.0.0.7 - - [28/Nov/2026:03:04:05 +0000] \"GET /work?ms=400 HTTP/1.1\" 200 15 \"-\" \"curl/8.0\"\n"
        );
    }

    #[test]
    fn atoms_and_json() {
        let header = |name: &str| (name == "x-id").then_some(Cow::from(&b"a\"b"[..]));
        let format = Format::parse("%(m)s %(U)s %(q)s %(D)s %(M)s %({X-Id}i)s", false).unwrap();
        assert_eq!(
            format.line(&entry(&header)),
            "GET /work ms=400 400123 400 a\\x22b\n"
        );
        let mut absolute = entry(&header);
        absolute.target = b"http://example.com:8080/work?ms=400";
        assert_eq!(
            format.line(&absolute),
            "GET /work ms=400 400123 400 a\\x22b\n"
        );
        let json = Format::parse("%(s)s %({x-id}i)s", true).unwrap();
        assert_eq!(
            json.line(&entry(&header)),
            "{\"s\":\"200\",\"{x-id}i\":\"a\\\"b\"}\n"
        );
    }

    /// Nor make the line display as another: line separators and bidirectional
    /// overrides are written as their bytes, other text past ASCII as it is.
    #[test]
    fn client_text_cannot_reorder_the_line() {
        let agent = "a\u{202E}b\u{2028}c\u{2066}é";
        let header = |name: &str| (name == "user-agent").then_some(Cow::from(agent.as_bytes()));
        let line = Format::parse("%(a)s", false).unwrap().line(&entry(&header));
        assert_eq!(line, "a\\xE2\\x80\\xAEb\\xE2\\x80\\xA8c\\xE2\\x81\\xA6é\n");
    }

    /// A client cannot close a quoted field and forge the ones after it, nor break the
    /// line: its `"`, `\` and control bytes are written as `\xHH`, as nginx does.
    #[test]
    fn client_text_cannot_forge_fields() {
        let header = |name: &str| match name {
            "user-agent" => Some(Cow::from(&b"x\" 200 999 \"evil"[..])),
            "referer" => Some(Cow::from(&b"a\\b\tc\x7f"[..])),
            _ => None,
        };
        let mut forged = entry(&header);
        forged.target = b"/?a=\"b";
        let line = Format::parse(DEFAULT_FORMAT, false).unwrap().line(&forged);
        assert!(
            line.ends_with(
                "\"GET /?a=\\x22b HTTP/1.1\" 200 15 \"a\\x5Cb\\x09c\\x7F\" \"x\\x22 200 999 \\x22evil\"\n"
            ),
            "{line}"
        );
        // A refused request's method and version are the client's bytes too.
        forged.method = b"G\"T";
        forged.version = b"HTTP/1.1\" 200 \"x\x1b[31m";
        let line = Format::parse(r#""%(m)s" "%(H)s" %(s)s"#, false).unwrap();
        assert_eq!(
            line.line(&forged),
            "\"G\\x22T\" \"HTTP/1.1\\x22 200 \\x22x\\x1B[31m\" 200\n"
        );
    }

    /// Bytes that are not UTF-8 are written as `\xHH`, in text and JSON lines: a
    /// client cannot hide its User-Agent behind one bad byte.
    #[test]
    fn bytes_that_are_not_utf8_are_written_as_hex() {
        let header =
            |name: &str| (name == "user-agent").then_some(Cow::from(&b"ua\xff\xfe\"x"[..]));
        let text = Format::parse("%(a)s", false).unwrap().line(&entry(&header));
        assert_eq!(text, "ua\\xFF\\xFE\\x22x\n");
        let json = Format::parse("%(a)s", true).unwrap().line(&entry(&header));
        assert_eq!(json, "{\"a\":\"ua\\\\xFF\\\\xFE\\\"x\"}\n");
    }

    /// `%({name}o)s` is a response header, and `%%` a percent sign, as in gunicorn
    /// (whose format is Python's `%` operator); a `%` before anything else stays.
    #[test]
    fn response_headers_and_percent_signs() {
        let header = |_: &str| None;
        let format = Format::parse("%({Content-Type}o)s %({etag}o)s 100%% %(s)s% %x", false);
        assert_eq!(
            format.unwrap().line(&entry(&header)),
            "text/plain - 100% 200% %x\n"
        );
        let json = Format::parse("%({content-type}o)s", true).unwrap();
        assert_eq!(
            json.line(&entry(&header)),
            "{\"{content-type}o\":\"text/plain\"}\n"
        );
    }

    /// `%(u)s` is the user of `Basic` credentials, as gunicorn logs it; `-` for anything
    /// else, and escaped like any client text.
    #[test]
    fn the_user_is_taken_from_basic_credentials() {
        let user = |authorization: &'static [u8]| {
            let header =
                move |name: &str| (name == "authorization").then_some(Cow::from(authorization));
            Format::parse("%(u)s", false).unwrap().line(&entry(&header))
        };
        assert_eq!(user(b"Basic YWxpY2U6c2VjcmV0"), "alice\n"); // alice:secret
        assert_eq!(user(b"basic  YWxpY2U6c2VjcmV0 "), "alice\n");
        assert_eq!(user(b"Basic Ym9i"), "bob\n"); // no colon: all of it
        assert_eq!(user(b"Basic ZXZlIjoxOjI="), "eve\\x22\n"); // eve":1:2
        assert_eq!(user(b"Basic OnB3"), "-\n"); // :pw, no name
        assert_eq!(user(b"Basic !!!!"), "-\n");
        assert_eq!(user(b"Bearer YWxpY2U6c2VjcmV0"), "-\n");
        assert_eq!(user(b"Basic"), "-\n");
        let none = Format::parse("%(u)s", false)
            .unwrap()
            .line(&entry(&|_| None));
        assert_eq!(none, "-\n");
        assert_eq!(
            base64_decode(b"aGVsbG8gd29ybGQ="),
            Some(b"hello world".to_vec())
        );
        assert_eq!(base64_decode(b"aGk"), Some(b"hi".to_vec()));
        assert_eq!(base64_decode(b""), Some(Vec::new()));
    }

    #[test]
    fn bad_formats_are_refused() {
        assert!(Format::parse("%(zz)s", false).is_err());
        assert!(Format::parse("%(h", false).is_err());
    }
}
