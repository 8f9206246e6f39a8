//! Validators, conditional requests and ranges for one file (RFC 9110 §8.8, §13, §14):
//! the [`FileInfo`] taken from one fstat, the request's [`Conditions`], and the
//! [`Outcome`] that [`evaluate`] derives from the two, in the order of §13.2.2. Pure
//! functions of their inputs (the clock is passed in), so they are table-tested.

use std::borrow::Cow;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use crate::http::date::parse_http_date;
use crate::http::{Request, trim_ows_text};

/// The validators and size of the file being served, taken from one fstat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileInfo {
    pub(super) size: u64,
    /// A strong entity-tag, quoted: `"<mtime ns>-<size>"` in hex.
    pub(super) etag: String,
    /// Seconds since the epoch, never later than now.
    pub(super) last_modified: i64,
}

impl FileInfo {
    pub(super) fn new(meta: &Metadata, now: i64) -> FileInfo {
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        FileInfo {
            size: meta.size(),
            // Strong (RFC 9110 §8.8.3): any write changes the nanosecond mtime or the size.
            // Not the inode, as Apache's old default had it (CVE-2003-1418 for telling
            // it): replicas serving the same deployed files (the same image on several
            // nodes) have other inodes, and a client's If-None-Match or If-Range sent to
            // another replica than the one that tagged the file would never match.
            etag: etag(mtime_ns, meta.size()),
            // RFC 9110 §8.8.2.1: never announce a modification time in the future.
            last_modified: meta.mtime().min(now),
        }
    }

    /// The file's information as that of a representation in `coding` (a precompressed
    /// `FILE.gz` served for `FILE`): its entity-tag names the coding, `"<tag>-gzip"`, as
    /// Apache's mod_deflate tags do. A strong tag must differ between representations
    /// whose bytes differ (RFC 9110 §8.8.3), and the plain file and its variant share an
    /// mtime (a build stamps both alike) and may share a size: with one tag, a download
    /// resumed with `If-Range` across codings was spliced from both, and a gzip request
    /// was answered 304 for the plain file's tag.
    pub(super) fn in_coding(mut self, coding: Option<&str>) -> FileInfo {
        if let Some(coding) = coding {
            self.etag.pop();
            self.etag.push('-');
            self.etag.push_str(coding);
            self.etag.push('"');
        }
        self
    }
}

/// `"<mtime ns>-<size>"`, each in hex, as nginx's `"<mtime s>-<size>"` but to the
/// nanosecond. Written by hand: `format!` with an i128 cost more than the rest of a small
/// file's response.
fn etag(mtime_ns: i128, size: u64) -> String {
    let mut tag = String::with_capacity(2 + 32 + 1 + 16 + 1);
    tag.push('"');
    if mtime_ns < 0 {
        tag.push('-');
    }
    push_hex(&mut tag, mtime_ns.unsigned_abs());
    tag.push('-');
    push_hex(&mut tag, u128::from(size));
    tag.push('"');
    tag
}

/// Appends `n` in lowercase hex, without leading zeros (`0` for zero), as `{:x}` does.
fn push_hex(out: &mut String, n: u128) {
    let digits = (128 - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        let nibble = ((n >> (i * 4)) & 0xf) as u32;
        out.push(char::from_digit(nibble, 16).unwrap_or('0'));
    }
}

/// The request's conditional and range fields. A field that is present but not UTF-8
/// reads as `""`: an invalid value, which each rule then treats as RFC 9110 says (an
/// If-Match that matches nothing, a date to ignore, a Range to ignore). The entity-tag
/// lists are read whole, every line joined (RFC 9110 §5.3: `If-None-Match: "a"` and
/// `If-None-Match: "b"` mean `"a", "b"`); the other fields are single values, and sent
/// twice they are a list of two, which is invalid too (§13.1.3: an If-Modified-Since of
/// more than one member MUST be ignored).
#[derive(Debug, Default, Clone)]
pub(super) struct Conditions<'a> {
    if_match: Option<Cow<'a, str>>,
    if_unmodified_since: Option<&'a str>,
    if_none_match: Option<Cow<'a, str>>,
    if_modified_since: Option<&'a str>,
    range: Option<&'a str>,
    if_range: Option<&'a str>,
}

impl<'a> Conditions<'a> {
    pub(super) fn from_request(req: &'a Request) -> Conditions<'a> {
        let field = |name: &str| {
            let mut lines = req.headers().filter(|(n, _)| n.eq_ignore_ascii_case(name));
            let first = lines.next()?.1;
            let single = lines.next().is_none();
            Some(
                std::str::from_utf8(first)
                    .ok()
                    .filter(|_| single)
                    .unwrap_or(""),
            )
        };
        Conditions {
            if_match: req.header_list("If-Match"),
            if_unmodified_since: field("If-Unmodified-Since"),
            if_none_match: req.header_list("If-None-Match"),
            if_modified_since: field("If-Modified-Since"),
            range: field("Range"),
            if_range: field("If-Range"),
        }
    }
}

/// What to answer for a file, once conditions and range are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// 412: If-Match or If-Unmodified-Since failed, or (for a method other than GET and
    /// HEAD) If-None-Match matched.
    PreconditionFailed,
    /// 304: the client's copy is current.
    NotModified,
    /// 200 with the whole file.
    Full,
    /// 206 with `len` bytes from `start` (`len` is at least 1).
    Partial { start: u64, len: u64 },
    /// 416: the one range asked for starts past the end.
    Unsatisfiable,
}

/// RFC 9110 §13.2.2: preconditions in their fixed order, then the range, for a request
/// with `method` whose answer without them would be the file (2xx). Ranges apply to GET
/// only (§14.2: not to HEAD).
pub(super) fn evaluate(c: &Conditions, file: &FileInfo, method: &str, now: i64) -> Outcome {
    let safe = matches!(method, "GET" | "HEAD");
    if let Some(outcome) = preconditions(c, Some(file), safe, now) {
        return outcome;
    }
    match c.range {
        // §13.1.5: a failed If-Range means "send me the whole thing". An empty file has
        // no range a 206 could name (§14.1.1 calls `-n` satisfiable there, yet
        // Content-Range has no form for zero bytes): its Range is ignored, as §14.2
        // allows and nginx does, so a player asking `bytes=0-` gets an empty 200.
        Some(range)
            if method == "GET" && file.size > 0 && if_range_holds(c.if_range, file, now) =>
        {
            parse_range(range, file.size)
        }
        _ => Outcome::Full,
    }
}

/// Steps 1 to 4 of RFC 9110 §13.2.2 for a representation that has no validator: a
/// directory listing, with neither an entity tag nor a modification date. `If-Match: *`
/// holds (the listing exists) and any list of tags fails it (§13.1.1: 412); `If-None-Match:
/// *` matches (304 for GET and HEAD) and a list does not; the dates are ignored, as
/// §13.1.3 and §13.1.4 say when there is no modification date. nginx's autoindex answers
/// the same 412.
pub(super) fn evaluate_unvalidated(c: &Conditions, method: &str, now: i64) -> Option<Outcome> {
    preconditions(c, None, matches!(method, "GET" | "HEAD"), now)
}

/// Steps 1 to 4 of RFC 9110 §13.2.2, against `file`'s validators, or none. `safe` is a GET
/// or HEAD: for those a matching If-None-Match is 304, for any other method 412
/// (§13.1.2), and If-Modified-Since is ignored for any other method (§13.1.3). (The
/// static app answers only GET and HEAD; a handler's [`send_file`](super::send_file) may
/// be called for any.)
fn preconditions(c: &Conditions, file: Option<&FileInfo>, safe: bool, now: i64) -> Option<Outcome> {
    // Invalid dates are ignored (§13.1.3, §13.1.4), as if the field were absent; so are
    // valid ones when there is no modification date to compare them with.
    let modified = file.map(|f| f.last_modified);
    let date = |value: Option<&str>| value.and_then(|v| parse_http_date(v, now)).zip(modified);
    let etag = file.map(|f| f.etag.as_str());
    if let Some(list) = c.if_match.as_deref() {
        // §13.1.1: strong comparison.
        if !etag_list_matches(list, etag, false) {
            return Some(Outcome::PreconditionFailed);
        }
    } else if let Some((since, modified)) = date(c.if_unmodified_since) {
        if modified > since {
            return Some(Outcome::PreconditionFailed);
        }
    }
    let not_modified = if safe {
        Outcome::NotModified
    } else {
        Outcome::PreconditionFailed
    };
    if let Some(list) = c.if_none_match.as_deref() {
        // §13.1.2: weak comparison. If-Modified-Since is then ignored, even on no match.
        if etag_list_matches(list, etag, true) {
            return Some(not_modified);
        }
    } else if let Some((since, modified)) = date(c.if_modified_since).filter(|_| safe) {
        if modified <= since {
            return Some(Outcome::NotModified);
        }
    }
    None
}

/// Whether `list`, an If-Match or If-None-Match value (`*` or a comma-separated list of
/// entity-tags, RFC 9110 §8.8.3), matches `etag` (ours, strong and quoted; `None` for a
/// representation without one, which only `*` matches). With `weak`
/// the `W/` prefix is disregarded (§8.8.3.2 weak comparison); without it a weak tag
/// never matches. A malformed list (`"abc"junk`) matches nothing, wherever the bad element
/// is: its tags before the bad one counted, and `"abc"junk` fulfilled an If-Match that
/// `"x"junk, "abc"` failed, as nginx's reading does not.
fn etag_list_matches(list: &str, etag: Option<&str>, weak: bool) -> bool {
    let list = trim_ows_text(list);
    if list == "*" {
        return true;
    }
    let mut rest = list.as_bytes();
    let mut matched = false;
    loop {
        rest = trim_start_bytes(rest, b" \t,");
        if rest.is_empty() {
            return matched;
        }
        let (is_weak, tagged) = match rest.strip_prefix(b"W/") {
            Some(tail) => (true, tail),
            None => (false, rest),
        };
        // An entity-tag is a quoted string without inner quotes (etagc excludes DQUOTE).
        let Some(inner) = tagged.strip_prefix(b"\"") else {
            return false;
        };
        let Some(end) = inner.iter().position(|&b| b == b'"') else {
            return false;
        };
        matched |=
            etag.is_some_and(|etag| &tagged[..end + 2] == etag.as_bytes()) && (weak || !is_weak);
        rest = trim_start_bytes(&inner[end + 1..], b" \t");
        if !rest.is_empty() && rest[0] != b',' {
            return false;
        }
    }
}

/// RFC 9110 §13.1.5: true when there is no If-Range, or when it names the current
/// representation. An entity-tag must match strongly. A date must equal Last-Modified
/// and be a strong validator (§8.8.2.2): the file must not have changed within the
/// current second, or two versions could share that date.
fn if_range_holds(if_range: Option<&str>, file: &FileInfo, now: i64) -> bool {
    let Some(value) = if_range.map(trim_ows_text) else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        return value == file.etag;
    }
    parse_http_date(value, now)
        .is_some_and(|date| date == file.last_modified && file.last_modified < now)
}

/// Parses a Range value against a file of `size` bytes (RFC 9110 §14.1.2, §14.2). Only
/// one `bytes` range is honoured; a malformed value, another unit, or several ranges are
/// ignored (the whole file is sent), which §14.2 permits.
fn parse_range(value: &str, size: u64) -> Outcome {
    let Some((unit, set)) = value.split_once('=') else {
        return Outcome::Full;
    };
    // Range units are case-insensitive (§14.1); empty list elements are allowed (§5.6.1).
    let mut specs = set
        .split(',')
        .map(trim_ows_text)
        .filter(|spec| !spec.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Outcome::Full;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return Outcome::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Outcome::Full;
    };
    if first.is_empty() {
        return match digits(last) {
            Some(suffix) => suffix_range(suffix, size),
            None => Outcome::Full,
        };
    }
    let Some(first) = digits(first) else {
        return Outcome::Full;
    };
    if last.is_empty() {
        return int_range(first, None, size);
    }
    match digits(last) {
        // last-pos before first-pos makes the range-spec invalid (§14.1.1).
        Some(last) if last >= first => int_range(first, Some(last), size),
        _ => Outcome::Full,
    }
}

/// `first-last` (or `first-`): satisfiable when `first` is inside the file; `last` past
/// the end is clamped (§14.1.1).
fn int_range(first: u64, last: Option<u64>, size: u64) -> Outcome {
    if first >= size {
        return Outcome::Unsatisfiable;
    }
    let end = last.unwrap_or(u64::MAX).min(size - 1);
    Outcome::Partial {
        start: first,
        len: end - first + 1,
    }
}

/// `-n`: the last `n` bytes, or the whole file when it is shorter. `-0` asks for
/// nothing, and an empty file has no bytes to give: both unsatisfiable (though
/// [`evaluate`] ignores an empty file's Range before asking).
fn suffix_range(suffix: u64, size: u64) -> Outcome {
    if suffix == 0 || size == 0 {
        return Outcome::Unsatisfiable;
    }
    let len = suffix.min(size);
    Outcome::Partial {
        start: size - len,
        len,
    }
}

/// `1*DIGIT` as a number, saturating: a position beyond `u64` is simply past the end.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

fn trim_start_bytes<'b>(mut s: &'b [u8], set: &[u8]) -> &'b [u8] {
    while let [first, rest @ ..] = s {
        if !set.contains(first) {
            break;
        }
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::static_files::tests::TempDir;
    use crate::app::static_files::{http_date, unix_now};
    use std::fs;

    #[test]
    fn file_info_validators() {
        let tmp = TempDir::new("info");
        let path = tmp.0.join("f");
        fs::write(&path, "one").expect("write");
        let first = FileInfo::new(&fs::metadata(&path).expect("stat"), unix_now());
        assert_eq!(first.size, 3);
        assert!(
            first.etag.starts_with('"') && first.etag.ends_with('"'),
            "{}",
            first.etag
        );
        // `"<mtime>-<size>"`: no inode, which replicas of the same files do not share.
        assert_eq!(first.etag.matches('-').count(), 1, "{}", first.etag);
        fs::write(&path, "three").expect("write");
        let second = FileInfo::new(&fs::metadata(&path).expect("stat"), unix_now());
        assert_ne!(first.etag, second.etag);
        // A modification time in the future is announced as now (RFC 9110 §8.8.2.1).
        let clamped = FileInfo::new(&fs::metadata(&path).expect("stat"), 1000);
        assert_eq!(clamped.last_modified, 1000);
        // A precompressed variant's tag names its coding; the plain file's is as it was.
        let gzip = second.clone().in_coding(Some("gzip"));
        let plain = second.etag.trim_end_matches('"');
        assert_eq!(gzip.etag, format!("{plain}-gzip\""));
        assert_eq!(second.clone().in_coding(None), second);
    }

    #[test]
    fn etag_is_hex_like_format() {
        let cases = [
            (0_i128, 0_u64),
            (1_700_000_000_123_456_789, 14),
            (-1_500_000_000, u64::MAX),
            (i128::from(i64::MAX) * 1_000_000_000, 1 << 40),
        ];
        for (mtime_ns, size) in cases {
            let sign = if mtime_ns < 0 { "-" } else { "" };
            let want = format!("\"{sign}{:x}-{size:x}\"", mtime_ns.unsigned_abs());
            assert_eq!(etag(mtime_ns, size), want);
        }
    }

    #[test]
    fn parse_range_table() {
        use Outcome::{Full, Partial, Unsatisfiable};
        let p = |start, len| Partial { start, len };
        let cases: &[(&str, u64, Outcome)] = &[
            ("bytes=0-0", 100, p(0, 1)),
            ("bytes=0-99", 100, p(0, 100)),
            ("bytes=0-1000", 100, p(0, 100)),
            ("bytes=99-99", 100, p(99, 1)),
            ("bytes=10-", 100, p(10, 90)),
            ("bytes=-10", 100, p(90, 10)),
            ("bytes=-1000", 100, p(0, 100)),
            ("BYTES=1-2", 100, p(1, 2)),
            ("bytes= 1-2 ", 100, p(1, 2)),
            ("bytes=1-2,", 100, p(1, 2)),
            ("bytes=, 1-2", 100, p(1, 2)),
            ("bytes=0-18446744073709551616", 100, p(0, 100)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=18446744073709551616-", 100, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=5-4", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("bytes=0-1, 200-300", 100, Full),
            ("bytes=500-600,700-800", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes =0-1", 100, Full),
            ("bytes", 100, Full),
            ("bytes=", 100, Full),
            ("bytes=,", 100, Full),
            ("bytes=-", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=1-x", 100, Full),
            ("bytes=5--", 100, Full),
            ("bytes=-1-2", 100, Full),
            ("bytes=+1-2", 100, Full),
            ("bytes=1 -2", 100, Full),
            ("bytes=0x10-", 100, Full),
            ("bytes=1", 100, Full),
            ("", 100, Full),
        ];
        for &(value, size, expected) in cases {
            assert_eq!(parse_range(value, size), expected, "{value:?} of {size}");
        }
    }

    #[test]
    fn etag_list_table() {
        let ours = "\"abc\"";
        // (list, strong comparison result, weak comparison result)
        let cases = [
            ("\"abc\"", true, true),
            ("W/\"abc\"", false, true),
            ("*", true, true),
            (" * ", true, true),
            ("\"x\", \"abc\"", true, true),
            ("\"x\",\"abc\"", true, true),
            ("\"x\" ,\t\"abc\"", true, true),
            (",, \"abc\" ,,", true, true),
            ("\"a,b\", \"abc\"", true, true),
            ("\"ab\"", false, false),
            ("\"abcd\"", false, false),
            ("abc", false, false),
            ("\"abc", false, false),
            ("w/\"abc\"", false, false),
            ("\"x\" \"abc\"", false, false),
            ("\"x\", garbage, \"abc\"", false, false),
            // Malformed after the match, too: the list is bad, whatever its order.
            ("\"abc\"junk", false, false),
            ("\"abc\"\"x\"", false, false),
            ("\"abc\", garbage", false, false),
            ("\"abc\", \"x", false, false),
            ("*, \"abc\"", false, false),
            ("", false, false),
        ];
        for (list, strong, weak) in cases {
            assert_eq!(
                etag_list_matches(list, Some(ours), false),
                strong,
                "strong {list:?}"
            );
            assert_eq!(
                etag_list_matches(list, Some(ours), true),
                weak,
                "weak {list:?}"
            );
            assert_eq!(
                etag_list_matches(list, None, true),
                list.trim() == "*",
                "{list:?}"
            );
        }
    }

    #[test]
    fn evaluate_follows_rfc9110_precedence() {
        use Outcome::{Full, NotModified, Partial, PreconditionFailed, Unsatisfiable};
        const T: i64 = 784_111_777;
        let file = FileInfo {
            size: 100,
            etag: "\"abc\"".into(),
            last_modified: T,
        };
        let (at, before, after) = (http_date(T), http_date(T - 1), http_date(T + 1));
        let c = Conditions::default;
        let cases: Vec<(Conditions, &str, Outcome)> = vec![
            (c(), "GET", Full),
            (
                Conditions {
                    if_match: Some("\"abc\"".into()),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    if_match: Some("*".into()),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    if_match: Some("W/\"abc\"".into()),
                    ..c()
                },
                "GET",
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_match: Some("\"x\"".into()),
                    ..c()
                },
                "GET",
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_match: Some("".into()),
                    ..c()
                },
                "GET",
                PreconditionFailed,
            ),
            // If-Match is step 1: it wins over a matching If-None-Match.
            (
                Conditions {
                    if_match: Some("\"x\"".into()),
                    if_none_match: Some("\"abc\"".into()),
                    ..c()
                },
                "GET",
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_unmodified_since: Some(&at),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    if_unmodified_since: Some(&before),
                    ..c()
                },
                "GET",
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_unmodified_since: Some("soon"),
                    ..c()
                },
                "GET",
                Full,
            ),
            // If-Unmodified-Since is ignored when If-Match is present.
            (
                Conditions {
                    if_match: Some("\"abc\"".into()),
                    if_unmodified_since: Some(&before),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    if_none_match: Some("\"abc\"".into()),
                    ..c()
                },
                "GET",
                NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some("W/\"abc\"".into()),
                    ..c()
                },
                "HEAD",
                NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some("*".into()),
                    ..c()
                },
                "GET",
                NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some("\"x\"".into()),
                    ..c()
                },
                "GET",
                Full,
            ),
            // If-Modified-Since is ignored when If-None-Match is present.
            (
                Conditions {
                    if_none_match: Some("\"x\"".into()),
                    if_modified_since: Some(&at),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    if_modified_since: Some(&at),
                    ..c()
                },
                "GET",
                NotModified,
            ),
            (
                Conditions {
                    if_modified_since: Some(&after),
                    ..c()
                },
                "HEAD",
                NotModified,
            ),
            (
                Conditions {
                    if_modified_since: Some(&before),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    if_modified_since: Some("garbage"),
                    ..c()
                },
                "GET",
                Full,
            ),
            // Preconditions come before the range.
            (
                Conditions {
                    if_none_match: Some("\"abc\"".into()),
                    range: Some("bytes=0-9"),
                    ..c()
                },
                "GET",
                NotModified,
            ),
            (
                Conditions {
                    if_match: Some("\"x\"".into()),
                    range: Some("bytes=0-9"),
                    ..c()
                },
                "GET",
                PreconditionFailed,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    ..c()
                },
                "GET",
                Partial { start: 0, len: 10 },
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    ..c()
                },
                "HEAD",
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=100-"),
                    ..c()
                },
                "GET",
                Unsatisfiable,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some("\"abc\""),
                    ..c()
                },
                "GET",
                Partial { start: 0, len: 10 },
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some("W/\"abc\""),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some("\"x\""),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some(&at),
                    ..c()
                },
                "GET",
                Partial { start: 0, len: 10 },
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some(&before),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some("junk"),
                    ..c()
                },
                "GET",
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=100-"),
                    if_range: Some("\"x\""),
                    ..c()
                },
                "GET",
                Full,
            ),
            // If-Range without Range changes nothing.
            (
                Conditions {
                    if_range: Some("\"x\""),
                    ..c()
                },
                "GET",
                Full,
            ),
            // Another method (a handler's send_file): a matching If-None-Match is 412
            // (§13.1.2), If-Modified-Since and Range do not apply (§13.1.3, §14.2), and
            // If-Match holds as for GET.
            (
                Conditions {
                    if_none_match: Some("W/\"abc\"".into()),
                    ..c()
                },
                "POST",
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_none_match: Some("\"other\"".into()),
                    ..c()
                },
                "POST",
                Full,
            ),
            (
                Conditions {
                    if_modified_since: Some(&after),
                    range: Some("bytes=0-9"),
                    ..c()
                },
                "POST",
                Full,
            ),
            (
                Conditions {
                    if_match: Some("\"other\"".into()),
                    ..c()
                },
                "PUT",
                PreconditionFailed,
            ),
        ];
        for (conditions, method, expected) in cases {
            assert_eq!(
                evaluate(&conditions, &file, method, T + 1000),
                expected,
                "{conditions:?} {method}"
            );
        }
    }

    #[test]
    fn if_range_date_must_be_strong() {
        const T: i64 = 784_111_777;
        let file = FileInfo {
            size: 100,
            etag: "\"abc\"".into(),
            last_modified: T,
        };
        let at = http_date(T);
        assert!(if_range_holds(None, &file, T));
        assert!(if_range_holds(Some(&at), &file, T + 1));
        // Modified within the current second: the date could name two versions.
        assert!(!if_range_holds(Some(&at), &file, T));
        assert!(if_range_holds(Some(" \"abc\" "), &file, T));
    }

    #[test]
    fn number_and_whitespace_helpers() {
        assert_eq!(trim_start_bytes(b" ,\t x", b" ,\t"), b"x");
        assert_eq!(digits("007"), Some(7));
        assert_eq!(digits("99999999999999999999999"), Some(u64::MAX));
        assert_eq!(digits(""), None);
        assert_eq!(digits("-1"), None);
    }
}
