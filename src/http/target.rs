//! The request-target (RFC 9112 §3.2) and the Host authority (RFC 9110 §7.2).
//!
//! Owns: which bytes a request-target may contain, which of its four forms is allowed
//! with which method, where the path and the query are, and what a valid `host[:port]`
//! looks like (used for both the Host field and an absolute-form target). Does not own:
//! percent-decoding or path normalisation (the application does that, e.g. the static
//! file app), nor the Host field count (framing.rs).

use super::error::{HttpError, bad_request, not_implemented};
use std::net::Ipv6Addr;

use super::syntax::alnum_and;

/// `%00` in the path: well-formed, but naming nothing (see [`check_percent`]).
const NUL_IN_PATH: HttpError = HttpError::new(404, "NUL (%00) in path: nothing has that name");

/// Where the path and the query sit inside a request-target, as byte offsets into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetParts {
    /// The path: `start..end`. Empty only for an absolute-form target without a path,
    /// which means "/" (RFC 9112 §3.2.1 and RFC 9110 §4.2.3).
    pub(crate) path: (usize, usize),
    /// The query after '?', without it.
    pub(crate) query: Option<(usize, usize)>,
}

/// Checks `target` against `method` and finds its path and query.
///
/// Order: bytes first (anything outside VCHAR, or '#', is a 400), then CONNECT (501),
/// then the form, then percent-encoding in the path.
pub(crate) fn analyse(method: &[u8], target: &[u8]) -> Result<TargetParts, HttpError> {
    check_bytes(target)?;
    // RFC 9110 §9.3.6: CONNECT asks us to become a tunnel. We are an origin server and do
    // not tunnel, so the request is for functionality we do not support: 501 (RFC 9110
    // §15.6.2). 405 would promise the method exists for some other resource (and would
    // need an Allow field). The connection is closed afterwards, because a client may
    // already be pushing tunnel bytes behind the request.
    if method == b"CONNECT" {
        return Err(not_implemented("CONNECT not supported"));
    }
    let parts = if target.first() == Some(&b'/') {
        // RFC 9112 §3.2.1 origin-form: absolute-path [ "?" query ].
        split_path_query(target, 0)
    } else if target == b"*" {
        // RFC 9112 §3.2.4: asterisk-form is "only used for a server-wide OPTIONS request".
        if method != b"OPTIONS" {
            return Err(bad_request("asterisk-form request-target outside OPTIONS"));
        }
        TargetParts {
            path: (0, 1),
            query: None,
        }
    } else if let Some(after) = scheme_end(target) {
        // RFC 9112 §3.2.2: absolute-form; a server MUST accept it.
        absolute_form(target, after)?
    } else {
        // RFC 9112 §3.2.3: authority-form is only for CONNECT; anything else is no form.
        return Err(bad_request(
            "request-target is not origin-form or absolute-form",
        ));
    };
    let path = target.get(parts.path.0..parts.path.1).unwrap_or_default();
    check_percent(path)?;
    Ok(parts)
}

/// RFC 9112 §3.2: the request-target is a URI-reference without whitespace. We refuse
/// any byte outside VCHAR (controls, SP, DEL, and all non-ASCII: RFC 3986 has no raw
/// non-ASCII), and '#': a fragment is never sent (RFC 9110 §7.1), and servers that
/// strip it disagree with proxies that do not. Other characters RFC 3986 does not list
/// (`"<>\^`{|}`) are tolerated, as nginx does: sloppy clients send them in query strings
/// and they do not change where a message ends.
fn check_bytes(target: &[u8]) -> Result<(), HttpError> {
    for &b in target {
        if !b.is_ascii_graphic() {
            return Err(bad_request("invalid byte in request-target"));
        }
        if b == b'#' {
            return Err(bad_request("fragment in request-target"));
        }
    }
    Ok(())
}

/// RFC 3986 §2.1: '%' starts a percent-encoded octet, two hex digits. Checked in the path
/// only, which applications decode; a query is the application's business (a lone '%' in
/// `?q=100%` is common and harmless). `%00` is refused too, as 404: it is well-formed,
/// but no file or route name holds a NUL, and a decoded one truncates the path for any
/// code that passes it on as a C string, so it only ever comes from an attack (nginx
/// refuses it as unsafe as well). The connection is closed after it, as after any
/// refusal of the parser.
fn check_percent(path: &[u8]) -> Result<(), HttpError> {
    let mut rest = path;
    while let Some(i) = rest.iter().position(|&b| b == b'%') {
        let after = rest.get(i + 1..).unwrap_or_default();
        match after {
            [b'0', b'0', ..] => return Err(NUL_IN_PATH),
            [h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                rest = after.get(2..).unwrap_or_default();
            }
            _ => return Err(bad_request("malformed percent-encoding in path")),
        }
    }
    Ok(())
}

/// Splits `target[from..]` at the first '?' into path and query.
fn split_path_query(target: &[u8], from: usize) -> TargetParts {
    let rest = target.get(from..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'?') {
        Some(q) => TargetParts {
            path: (from, from + q),
            query: Some((from + q + 1, target.len())),
        },
        None => TargetParts {
            path: (from, target.len()),
            query: None,
        },
    }
}

/// For `http://` or `https://` (schemes are case-insensitive, RFC 3986 §3.1), the index
/// just after the `//`. Other schemes are not ours to serve.
fn scheme_end(target: &[u8]) -> Option<usize> {
    for scheme in [&b"http://"[..], b"https://"] {
        if target
            .get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        {
            return Some(scheme.len());
        }
    }
    None
}

/// RFC 9112 §3.2.2 absolute-form: `scheme "://" authority path-abempty [ "?" query ]`.
fn absolute_form(target: &[u8], after_scheme: usize) -> Result<TargetParts, HttpError> {
    let authority = authority_after(target, after_scheme);
    let auth_len = authority.len();
    // RFC 9110 §4.2.4: userinfo in an http(s) URI SHOULD be treated as an error.
    if authority.contains(&b'@') {
        return Err(bad_request("userinfo in request-target"));
    }
    // RFC 9110 §4.2.1: an http URI with an empty host MUST be rejected as invalid.
    if authority.is_empty() || !valid_authority(authority) {
        return Err(bad_request("invalid authority in request-target"));
    }
    Ok(split_path_query(target, after_scheme + auth_len))
}

/// The authority of an absolute-form target (`http://AUTHORITY/path`), which RFC 9112
/// §3.2.2 makes the request's host in place of the Host field; `None` for other forms.
pub(crate) fn absolute_authority(target: &str) -> Option<&str> {
    let after = scheme_end(target.as_bytes())?;
    let len = authority_after(target.as_bytes(), after).len();
    target.get(after..after + len)
}

/// The path and query of a target, without an absolute-form target's scheme and
/// authority: what the access log's `%(U)s` and `%(q)s` are made of, as gunicorn takes
/// them from PATH_INFO and QUERY_STRING.
pub(crate) fn origin_part(target: &str) -> &str {
    let Some(after) = scheme_end(target.as_bytes()) else {
        return target;
    };
    let len = authority_after(target.as_bytes(), after).len();
    target.get(after + len..).unwrap_or_default()
}

/// The authority: from `after_scheme` to the first '/' or '?' (RFC 3986 §3.2).
fn authority_after(target: &[u8], after_scheme: usize) -> &[u8] {
    let rest = target.get(after_scheme..).unwrap_or_default();
    let len = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    rest.get(..len).unwrap_or_default()
}

/// Whether `value` is `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2) with a
/// non-empty host. An empty Host field is handled by the caller: RFC 9112 §3.2 allows it.
pub(crate) fn valid_authority(value: &[u8]) -> bool {
    let (host, port) = match value.strip_prefix(b"[") {
        Some(inner) => match inner.iter().position(|&b| b == b']') {
            Some(close) => {
                let literal = inner.get(..close).unwrap_or_default();
                let after = inner.get(close + 1..).unwrap_or_default();
                if !valid_ip_literal(literal) {
                    return false;
                }
                (None, after)
            }
            None => return false,
        },
        None => {
            // Usually a plain name or address: one table pass runs to the ':' or the end,
            // and a host found that way needs no second look.
            let plain = value
                .iter()
                .position(|&b| !REG_NAME[usize::from(b)])
                .unwrap_or(value.len());
            if matches!(value.get(plain), None | Some(b':')) {
                return plain > 0 && valid_port(value.get(plain..).unwrap_or_default());
            }
            let colon = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            let host = value.get(..colon).unwrap_or_default();
            (Some(host), value.get(colon..).unwrap_or_default())
        }
    };
    let host_ok = host.is_none_or(valid_reg_name);
    host_ok && valid_port(port)
}

/// RFC 3986 §3.2.2 reg-name (IPv4 addresses are a subset): unreserved, pct-encoded and
/// sub-delims, except ',' which we refuse because it makes a Host look like a list, a
/// classic way to get two parsers to pick different hosts.
fn valid_reg_name(host: &[u8]) -> bool {
    if host.is_empty() {
        return false;
    }
    let mut rest = host;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            match tail {
                [h, l, more @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    rest = more;
                    continue;
                }
                _ => return false,
            }
        }
        if !REG_NAME[usize::from(b)] {
            return false;
        }
        rest = tail;
    }
    true
}

/// What RFC 3986 §3.2.2 allows inside `[...]`: an IPv6 address, or IPvFuture (`v`
/// 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )). RFC 9112 §3.2 makes any other
/// Host a 400: the bytes alone let `[zz]` and `[1.2.3.4]` through.
fn valid_ip_literal(literal: &[u8]) -> bool {
    match literal {
        [b'v' | b'V', rest @ ..] => {
            let dot = rest.iter().position(|&b| b == b'.').unwrap_or(rest.len());
            let (version, tail) = rest.split_at(dot);
            let tail = tail.get(1..).unwrap_or_default();
            !version.is_empty()
                && version.iter().all(u8::is_ascii_hexdigit)
                && !tail.is_empty()
                && tail.iter().all(|&b| IP_FUTURE[usize::from(b)])
        }
        _ => std::str::from_utf8(literal).is_ok_and(|text| text.parse::<Ipv6Addr>().is_ok()),
    }
}

/// reg-name bytes besides pct-encoded: unreserved and sub-delims without ','.
static REG_NAME: [bool; 256] = alnum_and(b"-._~!$&'()*+;=");
/// IPvFuture bytes after its version: unreserved, sub-delims and ':'.
static IP_FUTURE: [bool; 256] = alnum_and(b"-._~!$&'()*+,;=:");

/// `[ ":" port ]` with port = *DIGIT (RFC 3986 §3.2.3), capped at five digits: no TCP
/// port needs more, and a long digit run is only there to confuse someone.
fn valid_port(port: &[u8]) -> bool {
    match port.strip_prefix(b":") {
        None => port.is_empty(),
        Some(digits) => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Want = Result<(&'static str, Option<&'static str>), u16>;

    #[test]
    fn target_forms() {
        let cases: &[(&str, &[u8], Want)] = &[
            // RFC 9112 §3.2.1 origin-form, with and without a query.
            ("GET", b"/", Ok(("/", None))),
            ("GET", b"/a/b?x=1&y", Ok(("/a/b", Some("x=1&y")))),
            ("GET", b"/a?", Ok(("/a", Some("")))),
            // Only the first '?' splits.
            ("GET", b"/a?b?c", Ok(("/a", Some("b?c")))),
            // RFC 9112 §3.2.2 absolute-form: path taken from it, "" means "/".
            ("GET", b"http://example.com/p?q", Ok(("/p", Some("q")))),
            ("GET", b"https://example.com", Ok(("", None))),
            ("GET", b"HTTP://Example.com:8080?q", Ok(("", Some("q")))),
            ("GET", b"http://[::1]:80/x", Ok(("/x", None))),
            // RFC 9110 §4.2.1: empty host in an http URI is invalid.
            ("GET", b"http:///p", Err(400)),
            // RFC 9110 §4.2.4: userinfo is an error.
            ("GET", b"http://user@example.com/", Err(400)),
            // Schemes other than http(s) are not ours.
            ("GET", b"ftp://example.com/", Err(400)),
            // RFC 9112 §3.2.4: asterisk-form only with OPTIONS.
            ("OPTIONS", b"*", Ok(("*", None))),
            ("GET", b"*", Err(400)),
            ("OPTIONS", b"*x", Err(400)),
            // RFC 9112 §3.2.3: authority-form only with CONNECT, and CONNECT is 501.
            ("GET", b"example.com:443", Err(400)),
            ("CONNECT", b"example.com:443", Err(501)),
            // Methods are case-sensitive (RFC 9110 §9.1): "connect" is not CONNECT.
            ("connect", b"/", Ok(("/", None))),
            // RFC 9112 §3.2: no whitespace, controls, DEL or non-ASCII in a target.
            ("GET", b"/a\tb", Err(400)),
            ("GET", b"/a\x7fb", Err(400)),
            ("GET", b"/caf\xc3\xa9", Err(400)),
            // RFC 9110 §7.1: a fragment is never sent in a request-target.
            ("GET", b"/a#frag", Err(400)),
            // RFC 3986 §2.1: malformed percent-encoding in the path.
            ("GET", b"/a%zz", Err(400)),
            ("GET", b"/a%4", Err(400)),
            ("GET", b"/a%41%2f", Ok(("/a%41%2f", None))),
            // A NUL, decoded, would cut the path short in C: nothing has that name, so it
            // is refused in the path as not found ...
            ("GET", b"/a.txt%00.png", Err(404)),
            ("GET", b"/%000", Err(404)),
            ("GET", b"/a%100", Ok(("/a%100", None))),
            ("GET", b"/a?q=%00", Ok(("/a", Some("q=%00")))),
            // ... but not policed in the query.
            ("GET", b"/a?q=100%", Ok(("/a", Some("q=100%")))),
            // Characters outside RFC 3986 but harmless to framing are tolerated.
            (
                "GET",
                b"/a?q={\"x\"|<y>}",
                Ok(("/a", Some("q={\"x\"|<y>}"))),
            ),
        ];
        for (method, target, want) in cases {
            let got = analyse(method.as_bytes(), target).map(|p| {
                let path = target.get(p.path.0..p.path.1).unwrap_or_default();
                let query = p.query.map(|(s, e)| target.get(s..e).unwrap_or_default());
                (path.to_vec(), query.map(<[u8]>::to_vec))
            });
            let want = want.map(|(p, q)| (p.as_bytes().to_vec(), q.map(|q| q.as_bytes().to_vec())));
            assert_eq!(
                got.map_err(|e| e.status()),
                want,
                "{method} {:?}",
                String::from_utf8_lossy(target)
            );
        }
    }

    #[test]
    fn authority_table() {
        let cases: &[(&[u8], bool)] = &[
            // RFC 9110 §7.2: uri-host [ ":" port ].
            (b"example.com", true),
            (b"example.com:8080", true),
            (b"127.0.0.1:80", true),
            (b"[::1]", true),
            (b"[2001:db8::1]:443", true),
            (b"[v1.fe80::a+en1]", true),
            // RFC 3986 §3.2.3: port = *DIGIT, so "host:" is valid.
            (b"example.com:", true),
            (b"ex%41mple.com", true),
            (b"ex%41mple.com:8080", true),
            // Not a host: whitespace, '/', '@', ',', bad pct-encoding, unbalanced brackets.
            (b"exa mple.com", false),
            (b"exa mple.com:80", false),
            (b"example.com/x", false),
            (b"user@example.com", false),
            (b"a.com,b.com", false),
            (b"ex%4mple", false),
            (b"[::1", false),
            (b"[]", false),
            (b"[::1]x", false),
            // RFC 3986 §3.2.2: inside the brackets, an IPv6 address or IPvFuture only.
            (b"[::ffff:192.0.2.1]", true),
            (b"[V1f.x:y]:80", true),
            (b"[zz]", false),
            (b"[1:2]", false),
            (b"[:::]", false),
            (b"[g::1]", false),
            (b"[1.2.3.4]", false),
            (b"[v.x]", false),
            (b"[vz.x]", false),
            (b"[v1.]", false),
            (b"[v1]", false),
            (b"[fe80::1%25en1]", false),
            // A host is required before the port, and the port is digits (at most five).
            (b":80", false),
            (b"example.com:http", false),
            (b"example.com:80:90", false),
            (b"example.com:123456", false),
            (b"", false),
        ];
        for (value, ok) in cases {
            assert_eq!(
                valid_authority(value),
                *ok,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }
}
