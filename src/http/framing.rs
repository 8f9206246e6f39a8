//! What the header fields of a request mean for the server: where the body ends
//! (RFC 9112 §6), whether the connection persists (RFC 9112 §9.3), whether the client
//! waits for 100 Continue (RFC 9110 §10.1.1), and whether Host is acceptable (RFC 9112
//! §3.2).
//!
//! Owns: those decisions, as pure functions over already-split field lines. Does not
//! own: splitting the head into fields (head.rs), the request-target (target.rs), reading
//! the body (the worker, with chunked.rs).
//!
//! The fields are read in one pass that only gathers facts; the verdict is then taken
//! in a fixed order (Host, then body framing, then Expect), so the error a client gets
//! never depends on the order in which it sent its fields.

use super::error::{
    HttpError, bad_request, content_too_large, expectation_failed, not_implemented,
};
use super::head::BodyFraming;
use super::limits::Limits;
use super::request::Version;
use super::syntax::{is_token, list_elements};
use super::target::valid_authority;

/// What the server does with a request, decided from its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Semantics {
    /// How the body is delimited.
    pub(crate) framing: BodyFraming,
    /// Whether the connection stays open after the response.
    pub(crate) keep_alive: bool,
    /// Whether to send 100 Continue before reading the body.
    pub(crate) expects_continue: bool,
}

/// The fields the framing rules look at, matched case-insensitively (RFC 9110 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
}

fn known(name: &[u8]) -> Option<Known> {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    // Matching on the length first keeps the common unknown field to one comparison.
    match name.len() {
        4 if is("host") => Some(Known::Host),
        6 if is("expect") => Some(Known::Expect),
        10 if is("connection") => Some(Known::Connection),
        14 if is("content-length") => Some(Known::ContentLength),
        17 if is("transfer-encoding") => Some(Known::TransferEncoding),
        _ => None,
    }
}

/// Content-Length as gathered over every field line and list element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Length {
    #[default]
    Absent,
    Value(u64),
    Invalid(&'static str),
}

/// Transfer-Encoding as gathered over every field line and list element, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Codings {
    present: bool,
    chunked: u32,
    last_is_chunked: bool,
    unknown: bool,
    malformed: Option<&'static str>,
}

/// Everything one pass over the fields learns.
#[derive(Debug, Default)]
struct Facts {
    hosts: u32,
    host_invalid: bool,
    length: Length,
    codings: Codings,
    close: bool,
    keep_alive: bool,
    continue_100: bool,
    other_expectation: bool,
}

/// Decides framing, persistence and Expect for a request of `version` with `fields`
/// (name, value) in the order received. Values arrive without surrounding OWS.
pub(crate) fn interpret<'a>(
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    version: Version,
    limits: &Limits,
) -> Result<Semantics, HttpError> {
    let mut facts = Facts::default();
    for (name, value) in fields {
        match known(name) {
            Some(Known::Host) => note_host(&mut facts, value),
            Some(Known::ContentLength) => facts.length = content_length(facts.length, value),
            Some(Known::TransferEncoding) => transfer_coding(&mut facts.codings, value),
            Some(Known::Connection) => note_connection(&mut facts, value),
            Some(Known::Expect) => note_expect(&mut facts, value),
            None => {}
        }
    }
    check_host(&facts, version)?;
    let framing = body_framing(&facts, version, limits)?;
    let expects_continue = expectation(&facts, version, framing)?;
    Ok(Semantics {
        framing,
        keep_alive: keep_alive(&facts, version),
        expects_continue,
    })
}

fn note_host(facts: &mut Facts, value: &[u8]) {
    facts.hosts += 1;
    // RFC 9112 §3.2: a client with no authority to name sends an *empty* Host, which is
    // valid; anything else must be uri-host [ ":" port ] (RFC 9110 §7.2).
    if !value.is_empty() && !valid_authority(value) {
        facts.host_invalid = true;
    }
}

/// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
/// HTTP/1.1 request message that lacks a Host header field and to any request message
/// that contains more than one Host header field line or a Host header field with an
/// invalid field value." The last two apply to HTTP/1.0 too.
fn check_host(facts: &Facts, version: Version) -> Result<(), HttpError> {
    if facts.hosts > 1 {
        return Err(bad_request("more than one Host field"));
    }
    if facts.host_invalid {
        return Err(bad_request("invalid Host field value"));
    }
    if facts.hosts == 0 && version == Version::Http11 {
        return Err(bad_request("HTTP/1.1 request without Host"));
    }
    Ok(())
}

/// Folds one Content-Length field line into what was gathered so far.
///
/// RFC 9110 §8.6: `Content-Length = 1*DIGIT`. A sign, inner spaces, hex, an empty value
/// or an overflow is invalid (note `"+5".parse::<u64>()` succeeds, hence the hand-rolled
/// loop). A list or repeated field is accepted only when every value is the same, as
/// §8.6 permits; differing values are invalid (RFC 9112 §6.3 ¶5).
fn content_length(so_far: Length, value: &[u8]) -> Length {
    let mut acc = so_far;
    for element in list_elements(value) {
        let Some(n) = parse_digits(element) else {
            return Length::Invalid("invalid Content-Length");
        };
        acc = match acc {
            Length::Absent => Length::Value(n),
            Length::Value(m) if m == n => Length::Value(m),
            Length::Value(_) => Length::Invalid("differing Content-Length values"),
            invalid @ Length::Invalid(_) => invalid,
        };
    }
    acc
}

/// `1*DIGIT` as a u64, or None if empty, not all ASCII digits, or too large.
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        n.checked_mul(10)?.checked_add(d)
    })
}

/// Folds one Transfer-Encoding field line into the codings gathered so far.
///
/// RFC 9112 §6.1: `Transfer-Encoding = #transfer-coding`, and multiple field lines form
/// one list in order. An empty element (which RFC 9110 §5.6.1 would have us skip) or a
/// coding that is not a bare token (parameters included) is treated as malformed:
/// `Transfer-Encoding: , chunked` is a known trick to make two parsers disagree.
fn transfer_coding(codings: &mut Codings, value: &[u8]) {
    codings.present = true;
    for element in list_elements(value) {
        if !is_token(element) {
            codings
                .malformed
                .get_or_insert("malformed Transfer-Encoding");
            continue;
        }
        let chunked = element.eq_ignore_ascii_case(b"chunked");
        if chunked {
            codings.chunked += 1;
        } else {
            codings.unknown = true;
        }
        codings.last_is_chunked = chunked;
    }
}

/// RFC 9112 §6.3: how the body of a request is delimited, in the RFC's order.
fn body_framing(
    facts: &Facts,
    version: Version,
    limits: &Limits,
) -> Result<BodyFraming, HttpError> {
    if let Length::Invalid(why) = facts.length {
        // §6.3 ¶5: an invalid Content-Length is unrecoverable; 400 and close.
        return Err(bad_request(why));
    }
    if facts.codings.present {
        // §6.3 ¶3: TE overrides CL, and "a server MAY reject a request that contains both
        // ... and ought to handle such a message as an error". We do: it is the smuggling
        // pattern (CL.TE / TE.CL) itself.
        if facts.length != Length::Absent {
            return Err(bad_request("Transfer-Encoding with Content-Length"));
        }
        // §6.1: an HTTP/1.0 message with TE "MUST" be treated as faulty framing.
        if version == Version::Http10 {
            return Err(bad_request("Transfer-Encoding in an HTTP/1.0 request"));
        }
        return coding_framing(&facts.codings);
    }
    match facts.length {
        // §6.3 ¶7: no TE and no CL on a request means no body; never read to EOF.
        Length::Absent | Length::Value(0) => Ok(BodyFraming::Empty),
        // Refuse before reading a byte, so a client waiting on 100-continue gets 413.
        Length::Value(n) if n > limits.max_body => {
            Err(content_too_large("Content-Length over the body limit"))
        }
        Length::Value(n) => Ok(BodyFraming::Length(n)),
        Length::Invalid(why) => Err(bad_request(why)),
    }
}

/// The verdict on a request's transfer codings.
fn coding_framing(codings: &Codings) -> Result<BodyFraming, HttpError> {
    if let Some(why) = codings.malformed {
        return Err(bad_request(why));
    }
    // RFC 9112 §6.1: "A sender MUST NOT apply the chunked transfer coding more than once."
    if codings.chunked > 1 {
        return Err(bad_request("chunked applied more than once"));
    }
    // RFC 9112 §6.3 ¶4: chunked present but not final: the length cannot be determined;
    // the server MUST answer 400 and close.
    if codings.chunked == 1 && !codings.last_is_chunked {
        return Err(bad_request("chunked is not the final transfer coding"));
    }
    // RFC 9112 §6.1: a coding we do not understand (we decode none but chunked; gzip and
    // friends included) SHOULD get 501. This also covers a TE without chunked at all,
    // which §6.3 ¶4 would make a 400: either way the connection is closed.
    if codings.unknown {
        return Err(not_implemented("unsupported transfer coding"));
    }
    Ok(BodyFraming::Chunked)
}

fn note_connection(facts: &mut Facts, value: &[u8]) {
    // RFC 9110 §7.6.1: Connection is a list of case-insensitive option tokens.
    for token in list_elements(value) {
        if token.eq_ignore_ascii_case(b"close") {
            facts.close = true;
        } else if token.eq_ignore_ascii_case(b"keep-alive") {
            facts.keep_alive = true;
        }
    }
}

/// RFC 9112 §9.3: HTTP/1.1 persists unless "close" is among the Connection options;
/// HTTP/1.0 persists only with "keep-alive" (RFC 9112 Appendix C.2.2), and "close" wins
/// over it when a confused client sends both.
fn keep_alive(facts: &Facts, version: Version) -> bool {
    match version {
        Version::Http11 => !facts.close,
        Version::Http10 => facts.keep_alive && !facts.close,
    }
}

fn note_expect(facts: &mut Facts, value: &[u8]) {
    // RFC 9110 §10.1.1: `Expect = #expectation`; the only one defined is 100-continue,
    // matched case-insensitively. Empty list elements are ignored (RFC 9110 §5.6.1).
    for element in list_elements(value) {
        if element.is_empty() {
            continue;
        }
        if element.eq_ignore_ascii_case(b"100-continue") {
            facts.continue_100 = true;
        } else {
            facts.other_expectation = true;
        }
    }
}

/// RFC 9110 §10.1.1: any expectation other than 100-continue MAY get 417; we always send
/// it, since we cannot meet one we do not know. 100-continue in an HTTP/1.0 request MUST
/// be ignored. And a server MAY skip 100 Continue when the framing says there is no
/// content, so the flag is only raised when a body is actually coming.
fn expectation(facts: &Facts, version: Version, framing: BodyFraming) -> Result<bool, HttpError> {
    if facts.other_expectation {
        return Err(expectation_failed("unsupported expectation"));
    }
    Ok(facts.continue_100 && version == Version::Http11 && framing != BodyFraming::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use BodyFraming::{Chunked, Empty, Length as Len};

    const V10: Version = Version::Http10;
    const V11: Version = Version::Http11;

    /// A table row's fields: (name, value) in the order sent.
    type Fields<'a> = &'a [(&'a str, &'a str)];

    fn run(version: Version, fields: &[(&str, &str)]) -> Result<Semantics, u16> {
        let limits = Limits {
            max_body: 1000,
            ..Limits::default()
        };
        let iter = fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        interpret(iter, version, &limits).map_err(|e| e.status())
    }

    fn framing(version: Version, fields: &[(&str, &str)]) -> Result<BodyFraming, u16> {
        run(version, fields).map(|s| s.framing)
    }

    #[test]
    fn content_length_table() {
        let h = ("Host", "a");
        let cases: &[(Fields, Result<BodyFraming, u16>)] = &[
            // RFC 9112 §6.3 ¶7: no CL, no TE: no body.
            (&[h], Ok(Empty)),
            // RFC 9110 §8.6: 1*DIGIT.
            (&[h, ("Content-Length", "5")], Ok(Len(5))),
            // CL: 0 is normalised to Empty: nothing to read.
            (&[h, ("Content-Length", "0")], Ok(Empty)),
            // Leading zeros are still 1*DIGIT.
            (&[h, ("Content-Length", "007")], Ok(Len(7))),
            // Names are case-insensitive (RFC 9110 §5.1).
            (&[h, ("cOnTeNt-LeNgTh", "5")], Ok(Len(5))),
            // RFC 9110 §8.6: identical repeated values may be taken as one ...
            (
                &[h, ("Content-Length", "5"), ("Content-Length", "5")],
                Ok(Len(5)),
            ),
            (&[h, ("Content-Length", "5, 5")], Ok(Len(5))),
            // ... differing ones are invalid (RFC 9112 §6.3 ¶5).
            (
                &[h, ("Content-Length", "5"), ("Content-Length", "6")],
                Err(400),
            ),
            (&[h, ("Content-Length", "5, 6")], Err(400)),
            // Not 1*DIGIT: sign, hex, decimal point, exponent, inner space, empty.
            (&[h, ("Content-Length", "+5")], Err(400)),
            (&[h, ("Content-Length", "-5")], Err(400)),
            (&[h, ("Content-Length", "0x5")], Err(400)),
            (&[h, ("Content-Length", "5.0")], Err(400)),
            (&[h, ("Content-Length", "1e3")], Err(400)),
            (&[h, ("Content-Length", "5 5")], Err(400)),
            (&[h, ("Content-Length", "")], Err(400)),
            (&[h, ("Content-Length", "5,")], Err(400)),
            (&[h, ("Content-Length", "５")], Err(400)),
            // Overflow is invalid, not wrapped or saturated.
            (&[h, ("Content-Length", "18446744073709551616")], Err(400)),
            (
                &[h, ("Content-Length", "99999999999999999999999999")],
                Err(400),
            ),
            // u64::MAX parses, then is over the body limit: 413 before reading.
            (&[h, ("Content-Length", "18446744073709551615")], Err(413)),
            (&[h, ("Content-Length", "1001")], Err(413)),
            (&[h, ("Content-Length", "1000")], Ok(Len(1000))),
            // An invalid value wins over a later valid one.
            (
                &[h, ("Content-Length", "x"), ("Content-Length", "5")],
                Err(400),
            ),
        ];
        for (fields, want) in cases {
            assert_eq!(framing(V11, fields), *want, "{fields:?}");
        }
    }

    #[test]
    fn transfer_encoding_table() {
        let h = ("Host", "a");
        let te = |v| ("Transfer-Encoding", v);
        let cases: &[(Version, Fields, Result<BodyFraming, u16>)] = &[
            // RFC 9112 §6.1: chunked, case-insensitive.
            (V11, &[h, te("chunked")], Ok(Chunked)),
            (V11, &[h, te("Chunked")], Ok(Chunked)),
            (V11, &[h, te("CHUNKED")], Ok(Chunked)),
            // RFC 9112 §6.3 ¶3: TE with CL is rejected (our choice of "MAY reject").
            (V11, &[h, te("chunked"), ("Content-Length", "5")], Err(400)),
            (V11, &[h, ("Content-Length", "0"), te("chunked")], Err(400)),
            (V11, &[h, ("Content-Length", "5"), te("gzip")], Err(400)),
            // RFC 9112 §6.1: TE in HTTP/1.0 means faulty framing.
            (V10, &[te("chunked")], Err(400)),
            // RFC 9112 §6.1: chunked at most once ...
            (V11, &[h, te("chunked, chunked")], Err(400)),
            (V11, &[h, te("chunked"), te("chunked")], Err(400)),
            // ... and RFC 9112 §6.3 ¶4: it must be final.
            (V11, &[h, te("chunked, gzip")], Err(400)),
            (V11, &[h, te("chunked"), te("gzip")], Err(400)),
            // RFC 9112 §6.1: a coding we do not implement: 501.
            (V11, &[h, te("gzip, chunked")], Err(501)),
            (V11, &[h, te("gzip")], Err(501)),
            (V11, &[h, te("identity")], Err(501)),
            (V11, &[h, te("xchunked")], Err(501)),
            // Malformed lists: empty value, empty elements, non-tokens, parameters.
            (V11, &[h, te("")], Err(400)),
            (V11, &[h, te(", chunked")], Err(400)),
            (V11, &[h, te("chunked,")], Err(400)),
            (V11, &[h, te("chunked"), te("")], Err(400)),
            (V11, &[h, te("chunked;q=1")], Err(400)),
            (V11, &[h, te("\"chunked\"")], Err(400)),
            (V11, &[h, te("chu nked")], Err(400)),
            // OWS around commas is fine (RFC 9110 §5.6.1), and ordering spans lines.
            (V11, &[h, te("gzip ,\tchunked")], Err(501)),
        ];
        for (version, fields, want) in cases {
            assert_eq!(framing(*version, fields), *want, "{fields:?}");
        }
    }

    #[test]
    fn host_table() {
        let cases: &[(Version, Fields, Result<(), u16>)] = &[
            // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
            (V11, &[("Host", "example.com")], Ok(())),
            (V11, &[], Err(400)),
            (V11, &[("Host", "a"), ("Host", "a")], Err(400)),
            (V11, &[("host", "a"), ("HOST", "b")], Err(400)),
            // An empty Host is valid (no authority to name).
            (V11, &[("Host", "")], Ok(())),
            // An invalid Host value is a 400.
            (V11, &[("Host", "a b")], Err(400)),
            (V11, &[("Host", "a/b")], Err(400)),
            (V11, &[("Host", "u@a")], Err(400)),
            // HTTP/1.0 may omit Host, but not repeat it or send garbage.
            (V10, &[], Ok(())),
            (V10, &[("Host", "a"), ("Host", "a")], Err(400)),
            (V10, &[("Host", "a b")], Err(400)),
        ];
        for (version, fields, want) in cases {
            assert_eq!(run(*version, fields).map(|_| ()), *want, "{fields:?}");
        }
    }

    #[test]
    fn keep_alive_table() {
        let h = ("Host", "a");
        let cases: &[(Version, Fields, bool)] = &[
            // RFC 9112 §9.3: 1.1 persists by default ...
            (V11, &[h], true),
            // ... unless "close" is a Connection option, in any case, any position.
            (V11, &[h, ("Connection", "close")], false),
            (V11, &[h, ("Connection", "CLOSE")], false),
            (V11, &[h, ("Connection", "upgrade, close")], false),
            (
                V11,
                &[h, ("Connection", "x"), ("connection", "Close")],
                false,
            ),
            (V11, &[h, ("Connection", "keep-alive")], true),
            // Not a token match: "closed" is not "close".
            (V11, &[h, ("Connection", "closed")], true),
            // RFC 9112 C.2.2: 1.0 persists only with keep-alive ...
            (V10, &[], false),
            (V10, &[("Connection", "Keep-Alive")], true),
            (V10, &[("Connection", "foo , keep-alive")], true),
            // ... and "close" wins when both are sent.
            (V10, &[("Connection", "keep-alive, close")], false),
        ];
        for (version, fields, want) in cases {
            assert_eq!(
                run(*version, fields).map(|s| s.keep_alive),
                Ok(*want),
                "{fields:?}"
            );
        }
    }

    #[test]
    fn expect_table() {
        let h = ("Host", "a");
        let cl = ("Content-Length", "3");
        let cases: &[(Version, Fields, Result<bool, u16>)] = &[
            // RFC 9110 §10.1.1: 100-continue, case-insensitive.
            (V11, &[h, cl, ("Expect", "100-continue")], Ok(true)),
            (V11, &[h, cl, ("Expect", "100-Continue")], Ok(true)),
            // No body coming: no need to send 100 (RFC 9110 §10.1.1 "MAY omit").
            (V11, &[h, ("Expect", "100-continue")], Ok(false)),
            (
                V11,
                &[
                    h,
                    ("Transfer-Encoding", "chunked"),
                    ("Expect", "100-continue"),
                ],
                Ok(true),
            ),
            // Any other expectation: 417.
            (V11, &[h, cl, ("Expect", "200-ok")], Err(417)),
            (V11, &[h, cl, ("Expect", "100-continue, foo")], Err(417)),
            (V11, &[h, cl, ("Expect", "100-continue;x=1")], Err(417)),
            // An empty Expect asks for nothing.
            (V11, &[h, cl, ("Expect", "")], Ok(false)),
            // HTTP/1.0: 100-continue MUST be ignored; others still get 417.
            (V10, &[cl, ("Expect", "100-continue")], Ok(false)),
            (V10, &[cl, ("Expect", "x")], Err(417)),
            // Framing errors come before expectation errors (413 before 417).
            (
                V11,
                &[h, ("Content-Length", "5000"), ("Expect", "x")],
                Err(413),
            ),
        ];
        for (version, fields, want) in cases {
            assert_eq!(
                run(*version, fields).map(|s| s.expects_continue),
                *want,
                "{fields:?}"
            );
        }
    }

    #[test]
    fn precedence_is_fixed() {
        // Host errors come first whatever the field order: the verdict is taken after the
        // pass, so the same fields in any order give the same status.
        let a = [("Content-Length", "x"), ("Host", "a"), ("Host", "b")];
        let b = [("Host", "a"), ("Host", "b"), ("Content-Length", "x")];
        assert_eq!(run(V11, &a).map(|_| ()), Err(400));
        assert_eq!(run(V11, &a), run(V11, &b));
        let c = [
            ("Host", "a"),
            ("Expect", "x"),
            ("Transfer-Encoding", "gzip"),
        ];
        assert_eq!(run(V11, &c).map(|_| ()), Err(501));
    }
}
