//! Byte-level grammar shared by the head parser and the chunked decoder: byte classes,
//! finding a CRLF-terminated line, tokens and comma lists.
//!
//! Owns: the rules "what may appear inside a line" and "what ends a line", so that the
//! request head, chunk-size lines and trailer lines obey exactly the same ones. Does not
//! own: what a line means (head.rs, chunked.rs, framing.rs decide that).
//!
//! Every check here looks at bytes strictly in order and never past the end of what it
//! was given, so a verdict reached on a prefix of the input is the verdict the whole
//! input gets. That is what makes "fed whole" and "fed in pieces" parse identically.

/// Byte class: allowed inside a line (HTAB, SP, VCHAR, obs-text; RFC 9110 §5.5).
const TEXT: u8 = 0;
/// Byte class: carriage return, the first half of a line terminator.
const CR: u8 = 1;
/// Byte class: line feed, valid only right after a CR.
const LF: u8 = 2;
/// Byte class: any other control byte, and DEL.
const CTL: u8 = 3;

/// The class of every byte value, built at compile time.
static LINE_CLASS: [u8; 256] = line_classes();

const fn line_classes() -> [u8; 256] {
    let mut table = [CTL; 256];
    let mut b = 0;
    while b < 256 {
        // RFC 9110 §5.5: field-content is VCHAR / obs-text with SP and HTAB inside.
        // NUL, the other C0 controls and DEL are never allowed anywhere in a head.
        if b == 0x09 || (b >= 0x20 && b <= 0x7e) || b >= 0x80 {
            table[b] = TEXT;
        }
        b += 1;
    }
    table[b'\r' as usize] = CR;
    table[b'\n' as usize] = LF;
    table
}

/// Why a line could not be delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineError {
    /// More content bytes than the caller's cap, and no CRLF yet.
    TooLong,
    /// A LF without a CR before it.
    BareLf,
    /// A CR followed by something other than LF.
    LoneCr,
    /// A control byte (other than HTAB) or DEL inside the line.
    Control,
}

impl LineError {
    /// The fixed 400 message for the three syntax cases; `TooLong` is mapped by the
    /// caller, since it means 414 on the request line and 431 on a field line.
    pub(crate) fn message(self) -> &'static str {
        match self {
            LineError::TooLong => "line too long",
            // RFC 9112 §2.2 allows a recipient to accept a bare LF as a line terminator;
            // we do not, because a proxy in front that disagrees is how smuggling starts.
            LineError::BareLf => "bare LF; lines must end with CRLF",
            // RFC 9112 §2.2: a bare CR "MUST be considered an invalid element" or replaced
            // with SP; replacing would change the message, so it is rejected.
            LineError::LoneCr => "bare CR not followed by LF",
            LineError::Control => "control character in line",
        }
    }
}

/// Finds the CRLF ending the line that starts at `from`, allowing at most `max` content
/// bytes before it.
///
/// `Ok(Some(cr))` is the index of the CR (the line is `from..cr`, the next one starts at
/// `cr + 2`); `Ok(None)` means more bytes are needed. An error is reported on the first
/// byte that makes the line invalid, so a partial line too long for `max` fails as soon
/// as `max + 1` content bytes are buffered.
pub(crate) fn line_end(buf: &[u8], from: usize, max: usize) -> Result<Option<usize>, LineError> {
    let rest = buf.get(from..).unwrap_or_default();
    // Content bytes at indices 0..max are fine; one more that is not a CR breaks the cap.
    let window = rest.get(..max.saturating_add(1)).unwrap_or(rest);
    let Some((i, class)) = first_not_text(window) else {
        return match window.len() > max {
            true => Err(LineError::TooLong),
            false => Ok(None),
        };
    };
    match class {
        CR => match rest.get(i + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some(from + i)),
            Some(_) => Err(LineError::LoneCr),
        },
        LF => Err(LineError::BareLf),
        _ => Err(LineError::Control),
    }
}

/// The index and class of the first byte of `bytes` that is not [`TEXT`] (a CR, a LF,
/// another control byte or DEL), if there is one: the byte a scan in order would stop at.
fn first_not_text(bytes: &[u8]) -> Option<(usize, u8)> {
    let mut from = 0;
    loop {
        let i = from + plain_text_len(bytes.get(from..)?);
        let class = LINE_CLASS[usize::from(*bytes.get(i)?)];
        if class != TEXT {
            return Some((i, class));
        }
        // An HTAB: text, but not plain.
        from = i + 1;
    }
}

/// How many leading bytes of `bytes` are plain text: no byte below 0x20 (which covers
/// CR, LF, HTAB and the other controls) and no DEL. Every such byte is [`TEXT`]. Eight
/// bytes at a time, with the classic SWAR tests, which flag exactly the first byte that
/// matches in a word (a borrow can flag bytes after it, never one before).
fn plain_text_len(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut run = 0;
    for chunk in &mut words {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte below 0x20, and a byte equal to 0x7F (zero after the XOR).
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        let x = w ^ (ONES * 0x7f);
        let del = x.wrapping_sub(ONES) & !x & HIGHS;
        let flags = below_space | del;
        if flags != 0 {
            // Little-endian: the lowest flag is the first byte.
            return run + (flags.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    let tail = words.remainder();
    run + tail
        .iter()
        .position(|&b| b < 0x20 || b == 0x7f)
        .unwrap_or(tail.len())
}

/// Whether every byte of `bytes` may appear in a field value (RFC 9110 §5.5: VCHAR, SP,
/// HTAB and obs-text; no other control and no DEL), the bytes [`line_end`] accepts.
pub(crate) fn is_field_text(bytes: &[u8]) -> bool {
    first_not_text(bytes).is_none()
}

/// A byte class as a 256-entry table: ASCII letters and digits, plus `extra`. One load
/// per byte instead of a scan of the punctuation list; these run on every byte of every
/// method, field name and Host.
pub(crate) const fn alnum_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// `tchar` of RFC 9110 §5.6.2.
static TCHAR: [bool; 256] = alnum_and(b"!#$%&'*+-.^_`|~");

/// `tchar` of RFC 9110 §5.6.2: the bytes a token (method, field name, coding) is made of.
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// Whether `bytes` is a token: one or more tchar (RFC 9110 §5.6.2).
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// Whether `b` is optional whitespace, OWS = *( SP / HTAB ) (RFC 9110 §5.6.3).
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `text` without leading and trailing OWS: [`trim_ows`] for a field value already
/// known to be text.
pub(crate) fn trim_ows_text(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// The request after the empty lines RFC 9112 §2.2 lets a client send before it ("a
/// server ... SHOULD ignore at least one empty line (CRLF) received prior to the
/// request-line"), bare LFs among them.
pub(crate) fn after_blank_lines(input: &[u8]) -> &[u8] {
    let blank = input
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    input.get(blank..).unwrap_or_default()
}

/// `bytes` without leading and trailing OWS.
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// The elements of a comma-separated list field value (RFC 9110 §5.6.1), each trimmed of
/// OWS. Empty elements are yielded (as empty slices), so callers decide whether an empty
/// element is ignorable or suspicious.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// Checks the shape of one field line (RFC 9112 §5): `field-name ":" OWS field-value OWS`.
///
/// The bytes of the line have already been checked by [`line_end`] (no CR, LF, NUL or
/// other controls), so only the name and the colon are left: a non-empty token directly
/// followed by ':'. Whitespace before the colon is an error (RFC 9112 §5.1: "MUST reject"),
/// and so is a leading SP or HTAB, which is obs-fold (RFC 9112 §5.2) or whitespace before
/// the first field (RFC 9112 §2.2).
pub(crate) fn check_field_line(line: &[u8]) -> Result<(), &'static str> {
    if line.first().is_some_and(|&b| is_ows(b)) {
        return Err("obsolete line folding (line starts with whitespace)");
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or("field line without a colon")?;
    let name = line.get(..colon).unwrap_or_default();
    if name.is_empty() {
        return Err("empty field name");
    }
    if name.last().is_some_and(|&b| is_ows(b)) {
        return Err("whitespace between field name and colon");
    }
    if !is_token(name) {
        return Err("invalid character in field name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_len_stops_at_the_first_other_byte() {
        assert_eq!(plain_text_len(b""), 0);
        assert_eq!(plain_text_len(b"abcdefg"), 7, "no whole word");
        assert_eq!(plain_text_len(b"abcdefgh~\xff\x80 !/09\x01"), 16);
        for special in [b'\r', b'\n', b'\t', 0x00, 0x1f, 0x7f] {
            for at in 0..24 {
                for len in at + 1..=24 {
                    let mut bytes = [b'a'; 24];
                    bytes[at] = special;
                    // Bytes after the first special one that a borrow could flag.
                    bytes[at + 1..].fill(special.wrapping_add(1));
                    let bytes = &bytes[..len];
                    assert_eq!(plain_text_len(bytes), at, "{special:#x} at {at} of {len}");
                }
            }
        }
        // Every byte value, alone among text: plain exactly when it is TEXT and not HTAB
        // (which first_not_text steps over).
        for b in 0..=255u8 {
            for at in [3, 11] {
                let mut bytes = [b'a'; 13];
                bytes[at] = b;
                let plain = b >= 0x20 && b != 0x7f;
                assert_eq!(plain_text_len(&bytes) == 13, plain, "{b:#x} at {at}");
                assert!(!plain || LINE_CLASS[usize::from(b)] == TEXT);
                let text = LINE_CLASS[usize::from(b)] == TEXT;
                assert_eq!(
                    first_not_text(&bytes).map(|(i, _)| i),
                    (!text).then_some(at),
                    "{b:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn line_end_table() {
        type Want = Result<Option<usize>, LineError>;
        let cases: &[(&[u8], usize, usize, Want)] = &[
            // A complete line: the index of its CR.
            (b"abc\r\nrest", 0, 10, Ok(Some(3))),
            // Starting mid-buffer.
            (b"xx\r\nab\r\n", 4, 10, Ok(Some(6))),
            // An empty line is complete at once.
            (b"\r\n", 0, 0, Ok(Some(0))),
            // No CR yet: need more.
            (b"abc", 0, 10, Ok(None)),
            // A trailing CR: need the next byte to know if it is CRLF.
            (b"abc\r", 0, 10, Ok(None)),
            // Exactly `max` content bytes then CRLF is allowed.
            (b"abcd\r\n", 0, 4, Ok(Some(4))),
            // Exactly `max` content bytes then a CR not yet followed: still waiting.
            (b"abcd\r", 0, 4, Ok(None)),
            // `max + 1` content bytes, no CRLF: too long, even on a partial line.
            (b"abcde", 0, 4, Err(LineError::TooLong)),
            // Too long wins over whatever comes later in the line (checked in byte order).
            (b"abcde\n", 0, 4, Err(LineError::TooLong)),
            // RFC 9112 §2.2: bare LF rejected (our choice, see LineError::BareLf).
            (b"ab\ncd", 0, 10, Err(LineError::BareLf)),
            // RFC 9112 §2.2: a CR not followed by LF is invalid.
            (b"ab\rcd\r\n", 0, 10, Err(LineError::LoneCr)),
            // CR CR LF: the first CR is lone.
            (b"ab\r\r\n", 0, 10, Err(LineError::LoneCr)),
            // RFC 9110 §5.5: NUL, other controls and DEL are never field content.
            (b"a\0b\r\n", 0, 10, Err(LineError::Control)),
            (b"a\x0bb\r\n", 0, 10, Err(LineError::Control)),
            (b"a\x7fb\r\n", 0, 10, Err(LineError::Control)),
            // HTAB and obs-text are allowed in a line.
            (b"a\tb\xff\r\n", 0, 10, Ok(Some(4))),
            // `from` past the end: nothing to look at yet.
            (b"ab", 5, 10, Ok(None)),
            // A huge cap does not overflow.
            (b"ab\r\n", 0, usize::MAX, Ok(Some(2))),
        ];
        for (buf, from, max, want) in cases {
            assert_eq!(
                line_end(buf, *from, *max),
                *want,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn token_and_list_helpers() {
        // RFC 9110 §5.6.2: tchar set, and a token has at least one.
        assert!(is_token(b"GET"));
        assert!(is_token(b"X-Custom_Header.v1!#$%&'*+^`|~"));
        for bad in [&b""[..], b"a b", b"a:b", b"a\"b", b"a(b", b"\xc3\xa9"] {
            assert!(!is_token(bad), "{bad:?}");
        }
        // RFC 9110 §5.6.3 OWS is SP and HTAB only.
        assert_eq!(trim_ows(b" \t x y \t"), b"x y");
        assert_eq!(trim_ows(b" \t "), b"");
        // RFC 9110 §5.6.1: elements are trimmed; empty ones are reported, not dropped.
        let got: Vec<&[u8]> = list_elements(b"a, b ,,\tc").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"", b"c"]);
    }

    #[test]
    fn field_line_table() {
        let cases: &[(&[u8], Result<(), &str>)] = &[
            // RFC 9112 §5: name, colon, value.
            (b"Host: example.com", Ok(())),
            // The value may be empty.
            (b"X-Empty:", Ok(())),
            // RFC 9112 §5.1: no whitespace between name and colon.
            (b"Host : x", Err("whitespace between field name and colon")),
            (b"Host\t: x", Err("whitespace between field name and colon")),
            // RFC 9112 §5.2: obs-fold is a continuation line starting with SP/HTAB.
            (
                b" folded",
                Err("obsolete line folding (line starts with whitespace)"),
            ),
            (
                b"\tfolded",
                Err("obsolete line folding (line starts with whitespace)"),
            ),
            // RFC 9112 §5: a field line needs a colon ...
            (b"NoColon", Err("field line without a colon")),
            // ... and a non-empty name ...
            (b": value", Err("empty field name")),
            // ... made of tchar (RFC 9110 §5.6.2).
            (b"Bad\"Name: v", Err("invalid character in field name")),
            (b"B\xc3\xa9: v", Err("invalid character in field name")),
        ];
        for (line, want) in cases {
            assert_eq!(
                check_field_line(line),
                *want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn field_line_agrees_with_httparse() {
        // Trailers are checked by check_field_line, heads by httparse; they must agree.
        let lines: &[&[u8]] = &[
            b"A: b",
            b"A : b",
            b" A: b",
            b"A",
            b": b",
            b"A\"B: c",
            b"A:",
            b"a-b_c: d e",
            b"A;B: c",
            b"A/B: c",
            b"A@: b",
            b"~: b",
        ];
        for line in lines {
            let mut section = line.to_vec();
            section.extend_from_slice(b"\r\n\r\n");
            let mut slots = [httparse::EMPTY_HEADER; 2];
            let theirs = httparse::parse_headers(&section, &mut slots).is_ok();
            let ours = check_field_line(line).is_ok();
            assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(line));
        }
    }
}
