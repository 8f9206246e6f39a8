//! Chunked transfer coding (RFC 9112 §7.1): decoding a request body, and framing the
//! chunks of a streamed response.
//!
//! Owns: [`ChunkedDecoder`], a resumable state machine over the bytes after the head,
//! with strict line endings, capped size lines, validated extensions and trailers, and a
//! running total against the body limit; and [`frame_chunk`] and [`LAST_CHUNK`], all a
//! sender needs (no extensions, no trailers). Does not own: buffering or reading (the
//! worker presents whatever it has; the decoder says how much it took), nor the trailer
//! fields themselves, which are checked and then dropped: RFC 9110 §6.5.1 forbids
//! merging them into the header section unless known safe, and no handler here needs
//! them.
//!
//! `httparse::parse_chunk_size` is not used: it lets any byte, bare LF included, through
//! in an extension, with no length cap (design notes §6.4). The size line is small
//! enough to parse here, with the same line rules as the head (syntax.rs).

use super::error::{HttpError, bad_request, content_too_large, fields_too_large};
use super::limits::{CHUNK_LINE_MAX, Limits, TRAILERS_MAX};
use super::syntax::{self, LineError, is_ows, is_tchar};

/// Room left before a chunk's data for its size line: up to 16 hex digits and CRLF.
pub(crate) const CHUNK_HEAD_ROOM: usize = 18;

/// The end of a chunked message: the last chunk and an empty trailer section.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Frames data as one chunk (`chunk-size CRLF chunk-data CRLF`). `buf` holds
/// [`CHUNK_HEAD_ROOM`] bytes of room and then the data, which was read in place behind
/// it; the chunk is returned in the same allocation. Empty data would read as the last
/// chunk, so the caller sends [`LAST_CHUNK`] for the end instead.
pub(crate) fn frame_chunk(mut buf: Vec<u8>) -> Vec<u8> {
    let len = buf.len().saturating_sub(CHUNK_HEAD_ROOM);
    let size = format!("{len:x}\r\n");
    let start = CHUNK_HEAD_ROOM.saturating_sub(size.len());
    if let Some(room) = buf.get_mut(start..CHUNK_HEAD_ROOM) {
        room.copy_from_slice(size.as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    buf.drain(..start);
    buf
}

/// Where the decoder is in the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting `chunk-size [ chunk-ext ] CRLF`.
    SizeLine,
    /// Inside chunk data, this many bytes still to come.
    Data { remaining: u64 },
    /// Expecting the CRLF that ends chunk data.
    DataEnd,
    /// After the last chunk: trailer field lines until an empty line. `used` counts the
    /// trailer bytes taken so far, `count` the fields.
    Trailers { used: usize, count: usize },
    /// The whole body has been read.
    Done,
    /// An error was reported; it is reported again on every later call.
    Failed(HttpError),
}

/// A chunked-body decoder (RFC 9112 §7.1): feed it the bytes after the head, in as many
/// pieces as they arrive.
///
/// Use one per request whose [`framing`](super::RequestHead::framing) is
/// [`BodyFraming::Chunked`](super::BodyFraming::Chunked). It keeps only its place in the
/// body and a running total, never the input: the caller owns the buffer and the decoder
/// says how much of it was used.
///
/// # Examples
///
/// A body that arrives in two reads, the second carrying the start of the next
/// (pipelined) request too:
///
/// ```
/// use br_serve::http::{ChunkedDecoder, Limits};
///
/// let limits = Limits::default();
/// let mut decoder = ChunkedDecoder::new();
/// let mut body = Vec::new();
///
/// // Data is taken as soon as it is seen, even in the middle of a chunk.
/// let first = b"5\r\nhello\r\n6\r\n wo";
/// assert_eq!(decoder.decode(first, &mut body, &limits)?, (first.len(), false));
/// assert_eq!(body, b"hello wo");
///
/// let second = b"rld\r\n0\r\n\r\nGET /next HTTP/1.1\r\n";
/// let (used, finished) = decoder.decode(second, &mut body, &limits)?;
/// assert!(finished && decoder.is_finished());
/// assert_eq!(body, b"hello world");
/// assert_eq!(&second[used..], b"GET /next HTTP/1.1\r\n"); // the next request's bytes
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    /// Chunk data bytes announced so far, checked against `Limits::max_body`.
    total: u64,
    /// Framing bytes not yet paid for by data (see `note_framing`).
    excess: u64,
}

/// How many framing bytes a chunked body may carry beyond what its data pays for.
const EXCESS_MAX: u64 = 16 * 1024;

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A bound on the bytes [`decode`](Self::decode) may leave unconsumed, which is at
    /// most a partial trailer line just under [`TRAILERS_MAX`], or a partial size line of
    /// [`CHUNK_LINE_MAX`] content bytes plus its CR, whichever is larger. A caller whose
    /// buffer holds this many unconsumed bytes plus one more read always lets the decoder
    /// progress.
    ///
    /// # Examples
    ///
    /// The longest line allowed in a trailer section waits whole for its LF:
    ///
    /// ```
    /// use br_serve::http::{ChunkedDecoder, Limits, TRAILERS_MAX};
    ///
    /// let (limits, mut body) = (Limits::default(), Vec::new());
    /// let mut decoder = ChunkedDecoder::new();
    /// // A field line that is TRAILERS_MAX bytes with its CRLF, all but the LF arrived.
    /// let pad = "p".repeat(TRAILERS_MAX - 2 - "X-Pad: ".len());
    /// let mut buf = format!("0\r\nX-Pad: {pad}\r").into_bytes();
    /// let (used, finished) = decoder.decode(&buf, &mut body, &limits)?;
    /// assert!(!finished && buf.len() - used <= ChunkedDecoder::MAX_PENDING);
    ///
    /// buf.drain(..used);
    /// buf.extend_from_slice(b"\n\r\n");
    /// assert_eq!(decoder.decode(&buf, &mut body, &limits)?, (buf.len(), true));
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub const MAX_PENDING: usize = max(CHUNK_LINE_MAX + 1, TRAILERS_MAX) + 1;

    /// A decoder at the start of a chunked body.
    ///
    /// # Examples
    ///
    /// One per request: a finished decoder takes nothing more.
    ///
    /// ```
    /// use br_serve::http::{ChunkedDecoder, Limits};
    ///
    /// let (limits, mut body) = (Limits::default(), Vec::new());
    /// let mut decoder = ChunkedDecoder::new();
    /// assert_eq!(decoder.decode(b"0\r\n\r\n", &mut body, &limits)?, (5, true));
    /// let next = b"3\r\nabc\r\n0\r\n\r\n";
    /// assert_eq!(decoder.decode(next, &mut body, &limits)?, (0, true));
    /// assert_eq!(ChunkedDecoder::new().decode(next, &mut body, &limits)?, (13, true));
    /// assert_eq!(body, b"abc");
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeLine,
            total: 0,
            excess: 0,
        }
    }

    /// Whether the last chunk, the trailers and the final CRLF have all been read.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{ChunkedDecoder, Limits};
    ///
    /// let (limits, mut body) = (Limits::default(), Vec::new());
    /// let mut decoder = ChunkedDecoder::new();
    /// decoder.decode(b"5\r\nhello\r\n0\r\n", &mut body, &limits)?;
    /// assert_eq!(body, b"hello");
    /// assert!(!decoder.is_finished()); // the last chunk, but trailers may follow
    /// decoder.decode(b"\r\n", &mut body, &limits)?;
    /// assert!(decoder.is_finished());
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes as much of `input` as it can, appending chunk data to `body`.
    ///
    /// Returns (bytes of `input` consumed, finished). Chunk data is consumed as soon as it
    /// is seen; what is left unconsumed is only ever a partial line (at most
    /// [`MAX_PENDING`](Self::MAX_PENDING) bytes), which the caller presents again, with
    /// more appended, on the next call. Once finished, bytes past the consumed count
    /// belong to the next request, and further calls return `(0, true)`.
    ///
    /// Errors: 400 for any syntax error (bad size, bare LF or lone CR anywhere, data not
    /// followed by CRLF, malformed extension or trailer), 413 when the announced data
    /// goes over `limits.max_body`, 431 when trailers go over [`TRAILERS_MAX`] bytes or
    /// `limits.fields` fields. After an error the same error is returned on every call.
    ///
    /// # Examples
    ///
    /// A partial line is left for the next call, to be presented again with what follows:
    ///
    /// ```
    /// use br_serve::http::{ChunkedDecoder, Limits};
    ///
    /// let limits = Limits::default();
    /// let mut decoder = ChunkedDecoder::new();
    /// let mut body = Vec::new();
    /// let mut buf = b"3\r\nabc\r\n1".to_vec(); // "1" may be the start of "10\r\n"
    /// let (used, _) = decoder.decode(&buf, &mut body, &limits)?;
    /// assert_eq!(&buf[used..], b"1");
    ///
    /// buf.drain(..used);
    /// buf.extend_from_slice(b"0\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\n\r\n");
    /// let (used, finished) = decoder.decode(&buf, &mut body, &limits)?;
    /// assert!(finished && used == buf.len());
    /// assert_eq!(body, b"abc0123456789abcdef"); // trailers are checked, then dropped
    /// # Ok::<(), br_serve::http::HttpError>(())
    /// ```
    ///
    /// Errors refuse the body on the first byte that proves it bad:
    ///
    /// ```
    /// use br_serve::http::{ChunkedDecoder, Limits};
    ///
    /// let small = Limits { max_body: 10, ..Limits::default() };
    /// let mut body = Vec::new();
    /// // 0x20 = 32 bytes announced: 413 before any of them is read.
    /// let err = ChunkedDecoder::new().decode(b"20\r\n", &mut body, &small).unwrap_err();
    /// assert_eq!(err.status(), 413);
    ///
    /// // The size said 3 bytes, but 4 came before the CRLF: the framing lied.
    /// let mut decoder = ChunkedDecoder::new();
    /// let err = decoder.decode(b"3\r\nabcd\r\n", &mut body, &small).unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// assert_eq!(decoder.decode(b"", &mut body, &small), Err(err)); // and it stays refused
    /// ```
    pub fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        limits: &Limits,
    ) -> Result<(usize, bool), HttpError> {
        let mut pos = 0;
        loop {
            let step = match self.state {
                State::SizeLine => self.size_line(input, pos, limits),
                State::Data { remaining } => Ok(self.data(input, pos, remaining, body)),
                State::DataEnd => self.data_end(input, pos),
                State::Trailers { used, count } => self.trailer(input, pos, used, count, limits),
                State::Done => return Ok((pos, true)),
                State::Failed(err) => return Err(err),
            };
            match step {
                Ok(Some(next)) => pos = next,
                Ok(None) => return Ok((pos, false)),
                Err(err) => {
                    self.state = State::Failed(err);
                    return Err(err);
                }
            }
        }
    }

    /// RFC 9112 §7.1: `chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF`, and
    /// `last-chunk = 1*("0") [ chunk-ext ] CRLF`.
    fn size_line(&mut self, input: &[u8], pos: usize, limits: &Limits) -> Step {
        let Some(cr) = line(
            input,
            pos,
            CHUNK_LINE_MAX,
            bad_request("chunk-size line too long"),
        )?
        else {
            return Ok(None);
        };
        let size = parse_size_line(input.get(pos..cr).unwrap_or_default())?;
        self.note_framing(cr - pos, size)?;
        self.state = if size == 0 {
            State::Trailers { used: 0, count: 0 }
        } else {
            // Refuse on the size line, before reading data that would go over the limit.
            let total = self
                .total
                .checked_add(size)
                .filter(|&t| t <= limits.max_body);
            self.total = total.ok_or(content_too_large("chunked body over the body limit"))?;
            State::Data { remaining: size }
        };
        Ok(Some(cr + 2))
    }

    /// Refuses a body that is mostly framing. The body limit counts data only, and a
    /// size line may carry 4 KiB of extensions (or leading zeros) around one data byte:
    /// 200 MB on the wire for a 50 KB body. As Go does since CVE-2023-39326, each size
    /// line and the CRLF after its data are spent, each chunk earns 16 bytes plus twice
    /// its size, and more than [`EXCESS_MAX`] bytes unearned is a 400. One data byte per
    /// chunk (5 framing bytes) stays inside; an extension on every 64 KiB chunk does too.
    fn note_framing(&mut self, line_len: usize, size: u64) -> Result<(), HttpError> {
        let spent = self.excess.saturating_add(line_len as u64 + 2);
        self.excess = spent.saturating_sub(size.saturating_mul(2).saturating_add(16));
        if self.excess > EXCESS_MAX {
            return Err(bad_request("chunked body is mostly extensions, not data"));
        }
        Ok(())
    }

    /// Copies as much chunk data as is available.
    fn data(
        &mut self,
        input: &[u8],
        pos: usize,
        remaining: u64,
        body: &mut Vec<u8>,
    ) -> Option<usize> {
        let available = input.get(pos..).unwrap_or_default();
        if available.is_empty() {
            return None;
        }
        let take = usize::try_from(remaining).map_or(available.len(), |r| r.min(available.len()));
        body.extend_from_slice(available.get(..take).unwrap_or_default());
        let left = remaining - take as u64;
        self.state = if left == 0 {
            State::DataEnd
        } else {
            State::Data { remaining: left }
        };
        Some(pos + take)
    }

    /// RFC 9112 §7.1: chunk data is followed by exactly CRLF. Anything else means the
    /// size lied, and what follows cannot be trusted.
    fn data_end(&mut self, input: &[u8], pos: usize) -> Step {
        match (input.get(pos), input.get(pos + 1)) {
            (None, _) | (Some(b'\r'), None) => Ok(None),
            (Some(b'\r'), Some(b'\n')) => {
                self.state = State::SizeLine;
                Ok(Some(pos + 2))
            }
            _ => Err(bad_request("chunk data not followed by CRLF")),
        }
    }

    /// RFC 9112 §7.1.2: `trailer-section = *( field-line CRLF )`, then the final CRLF.
    /// Field lines obey the same rules as in the head (RFC 9112 §5).
    fn trailer(
        &mut self,
        input: &[u8],
        pos: usize,
        used: usize,
        count: usize,
        limits: &Limits,
    ) -> Step {
        let cap = TRAILERS_MAX.saturating_sub(used).saturating_sub(2);
        let Some(cr) = line(
            input,
            pos,
            cap,
            fields_too_large("trailer section too large"),
        )?
        else {
            return Ok(None);
        };
        if cr == pos {
            self.state = State::Done;
            return Ok(Some(cr + 2));
        }
        syntax::check_field_line(input.get(pos..cr).unwrap_or_default()).map_err(bad_request)?;
        if count >= limits.fields {
            return Err(fields_too_large("too many trailer fields"));
        }
        self.state = State::Trailers {
            used: used + (cr - pos) + 2,
            count: count + 1,
        };
        Ok(Some(cr + 2))
    }
}

/// The result of one step: `Some(position after what was consumed)` or `None` for "need
/// more bytes".
type Step = Result<Option<usize>, HttpError>;

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// Finds the CRLF ending the line at `pos`, with `too_long` as the error over `cap`.
fn line(
    input: &[u8],
    pos: usize,
    cap: usize,
    too_long: HttpError,
) -> Result<Option<usize>, HttpError> {
    syntax::line_end(input, pos, cap).map_err(|e| match e {
        LineError::TooLong => too_long,
        other => bad_request(other.message()),
    })
}

/// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1): `chunk-size = 1*HEXDIG`, no sign, no
/// `0x`, no leading whitespace, checked for overflow (leading zeros are allowed, the
/// line cap bounds them).
fn parse_size_line(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, rest) = line.split_at_checked(digits).unwrap_or_default();
    // What follows the digits can only begin an extension: `3g` and `0x3` are sizes
    // gone wrong, not extensions.
    let ends = rest.first().is_none_or(|&b| b == b';' || is_ows(b));
    if hex.is_empty() || !ends {
        return Err(bad_request("invalid chunk size"));
    }
    let size = hex.iter().try_fold(0u64, |n, &b| {
        let digit = u64::from(char::from(b).to_digit(16)?);
        n.checked_mul(16)?.checked_add(digit)
    });
    let size = size.ok_or(bad_request("chunk size too large"))?;
    check_extensions(rest)?;
    Ok(size)
}

/// RFC 9112 §7.1.1: `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
/// chunk-ext-val ] )`, name a token, value a token or quoted-string. Whitespace is only
/// allowed where BWS is: `5 \r\n` (trailing space, no ';') is rejected.
fn check_extensions(mut rest: &[u8]) -> Result<(), HttpError> {
    const BAD: HttpError = bad_request("malformed chunk extension");
    while !rest.is_empty() {
        rest = skip_ows(rest).strip_prefix(b";").ok_or(BAD)?;
        rest = skip_token(skip_ows(rest)).ok_or(BAD)?;
        if let Some(value) = skip_ows(rest).strip_prefix(b"=") {
            let value = skip_ows(value);
            rest = if value.first() == Some(&b'"') {
                skip_quoted(value).ok_or(BAD)?
            } else {
                skip_token(value).ok_or(BAD)?
            };
        }
    }
    Ok(())
}

fn skip_ows(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|&&b| is_ows(b)).count();
    bytes.get(n..).unwrap_or_default()
}

/// What follows a non-empty token at the start of `bytes`.
fn skip_token(bytes: &[u8]) -> Option<&[u8]> {
    let n = bytes.iter().take_while(|&&b| is_tchar(b)).count();
    if n == 0 { None } else { bytes.get(n..) }
}

/// What follows a quoted-string (RFC 9110 §5.6.4) at the start of `bytes`. Control bytes
/// were already refused by the line scan, so qdtext is "anything but '"' and '\'", and a
/// quoted-pair is '\' and any byte.
fn skip_quoted(bytes: &[u8]) -> Option<&[u8]> {
    let mut rest = bytes.strip_prefix(b"\"")?;
    loop {
        match rest.split_first()? {
            (b'"', tail) => return Some(tail),
            (b'\\', tail) => rest = tail.split_first()?.1,
            (_, tail) => rest = tail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Data read behind the room, as the worker reads a stream's.
    fn framed(data: &[u8]) -> Vec<u8> {
        let mut buf = vec![0; CHUNK_HEAD_ROOM];
        buf.extend_from_slice(data);
        frame_chunk(buf)
    }

    #[test]
    fn frame_chunk_table() {
        let big = vec![b'x'; 16 * 1024];
        let cases: [(&[u8], &[u8]); 4] = [
            (b"Wiki", b"4\r\n"),
            (&[b'a'; 255], b"ff\r\n"),
            (&[b'a'; 256], b"100\r\n"),
            (&big, b"4000\r\n"),
        ];
        for (data, size_line) in cases {
            let chunk = framed(data);
            assert!(chunk.starts_with(size_line), "{:?}", &chunk[..8]);
            assert_eq!(&chunk[size_line.len()..chunk.len() - 2], data);
            assert!(chunk.ends_with(b"\r\n"));
        }
    }

    /// What the worker sends, the decoder reads back: the same data, finished.
    #[test]
    fn framed_chunks_decode_to_their_data() {
        let pieces: [&[u8]; 4] = [b"hello", b" ", &[b'z'; 5000], b"\r\n0\r\n"];
        let mut wire: Vec<u8> = pieces.iter().flat_map(|p| framed(p)).collect();
        wire.extend_from_slice(LAST_CHUNK);
        let (mut decoder, mut body) = (ChunkedDecoder::new(), Vec::new());
        let (used, finished) = decoder
            .decode(&wire, &mut body, &Limits::default())
            .unwrap();
        assert_eq!((used, finished), (wire.len(), true));
        assert_eq!(body, pieces.concat());
    }

    fn limits() -> Limits {
        Limits {
            max_body: 100,
            fields: 3,
            ..Limits::default()
        }
    }

    /// Feeds `input` whole. Ok((body, consumed, finished)) or the error status.
    fn whole(input: &[u8]) -> Result<(Vec<u8>, usize, bool), u16> {
        let mut body = Vec::new();
        let (n, done) = ChunkedDecoder::new()
            .decode(input, &mut body, &limits())
            .map_err(|e| e.status())?;
        Ok((body, n, done))
    }

    /// Feeds `input` the way a worker would, `step` bytes arriving at a time, keeping
    /// unconsumed bytes and presenting them again.
    fn pieces(input: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), u16> {
        let mut dec = ChunkedDecoder::new();
        let (mut body, mut consumed, mut arrived) = (Vec::new(), 0, 0);
        loop {
            arrived = (arrived + step).min(input.len());
            let window = input.get(consumed..arrived).unwrap_or_default();
            let (n, done) = dec
                .decode(window, &mut body, &limits())
                .map_err(|e| e.status())?;
            assert!(arrived - consumed - n <= ChunkedDecoder::MAX_PENDING);
            consumed += n;
            if done || arrived == input.len() {
                return Ok((body, consumed, done));
            }
        }
    }

    type Want = Result<(&'static [u8], usize, bool), u16>;

    #[test]
    fn decode_table() {
        let cases: &[(&[u8], Want)] = &[
            // RFC 9112 §7.1: chunks, last-chunk, empty trailer section.
            (b"5\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 15, true))),
            // The next request's bytes are not consumed.
            (
                b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
                Ok((b"hello", 15, true)),
            ),
            // Hex digits, both cases; leading zeros.
            (
                b"A\r\n0123456789\r\na\r\n0123456789\r\n000\r\n\r\n",
                Ok((b"01234567890123456789", 37, true)),
            ),
            // An empty body is just the last chunk.
            (b"0\r\n\r\n", Ok((b"", 5, true))),
            // Partial input: data is taken, a partial line is left.
            (b"5\r\nhel", Ok((b"hel", 6, false))),
            (b"5\r\nhello\r", Ok((b"hello", 8, false))),
            (b"5\r\nhello\r\n0\r\n", Ok((b"hello", 13, false))),
            (b"5", Ok((b"", 0, false))),
            // RFC 9112 §7.1.1: extensions, with BWS, token and quoted values.
            (b"5;a\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 17, true))),
            (
                b"5 ; a = b ;c=\"x;y \\\"z\"\r\nhello\r\n0;last\r\n\r\n",
                Ok((b"hello", 41, true)),
            ),
            // RFC 9112 §7.1.2: trailer fields, checked and dropped.
            (b"0\r\nX-Sum: 1\r\nY: \r\n\r\n", Ok((b"", 20, true))),
            // Size: missing, non-hex, sign, 0x, leading/trailing whitespace.
            (b"\r\nhello\r\n", Err(400)),
            (b"g\r\n", Err(400)),
            (b"-5\r\n", Err(400)),
            (b"+5\r\n", Err(400)),
            (b"0x5\r\nhello\r\n", Err(400)),
            (b" 5\r\nhello\r\n", Err(400)),
            (b"5 \r\nhello\r\n", Err(400)),
            // Overflow is an error, not a wrap (17 hex digits).
            (b"10000000000000000\r\n", Err(400)),
            // A size within u64 but over the body limit: 413 on the size line.
            (b"ffffffffffffffff\r\n", Err(413)),
            (b"65\r\n", Err(413)),
            (b"32\r\n", Ok((b"", 4, false))),
            // The limit applies to the running total, not to one chunk.
            (
                b"32\r\n01234567890123456789012345678901234567890123456789\r\n33\r\n",
                Err(413),
            ),
            // Bare LF or lone CR in a size line, an extension, after data, in trailers.
            (b"5\nhello\r\n", Err(400)),
            (b"5\rhello\r\n", Err(400)),
            (b"5;a=b\nc\r\nhello\r\n", Err(400)),
            (b"5\r\nhello\n0\r\n\r\n", Err(400)),
            (b"5\r\nhello\r\r\n", Err(400)),
            (b"0\r\nX: 1\n\r\n", Err(400)),
            (b"0\r\n\n", Err(400)),
            // Chunk data must be followed by exactly CRLF.
            (b"5\r\nhelloX\r\n", Err(400)),
            (b"3\r\nhello\r\n", Err(400)),
            // Malformed extensions: empty name, empty value, unterminated quote, junk,
            // control bytes.
            (b"5;\r\n", Err(400)),
            (b"5;=b\r\n", Err(400)),
            (b"5;a=\r\n", Err(400)),
            (b"5;a=\"b\r\n", Err(400)),
            (b"5;a b\r\n", Err(400)),
            (b"5;a\0\r\n", Err(400)),
            // Trailers: same field rules as the head (RFC 9112 §5.1, §5.2).
            (b"0\r\nX : 1\r\n\r\n", Err(400)),
            (b"0\r\n folded\r\n\r\n", Err(400)),
            (b"0\r\nNoColon\r\n\r\n", Err(400)),
            (b"0\r\nX: a\0b\r\n\r\n", Err(400)),
            // More trailer fields than limits.fields: 431.
            (b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", Err(431)),
        ];
        for (input, want) in cases {
            let want = want.map(|(b, n, d)| (b.to_vec(), n, d));
            let label = String::from_utf8_lossy(input);
            assert_eq!(whole(input), want, "whole {label:?}");
            // Every case gives the same result fed one byte at a time.
            assert_eq!(pieces(input, 1), want, "pieces {label:?}");
        }
    }

    /// A refusal says what was wrong: a size gone wrong (`3g`, `0x3`) is not called a
    /// malformed extension.
    #[test]
    fn size_line_refusals_name_the_part() {
        let cases: [(&[u8], Result<u64, &str>); 8] = [
            (b"1a", Ok(26)),
            (b"5;name=value", Ok(5)),
            (b"5 ; name", Ok(5)),
            (b"3g", Err("invalid chunk size")),
            (b"0x3", Err("invalid chunk size")),
            (b"-3", Err("invalid chunk size")),
            (b"5;", Err("malformed chunk extension")),
            (b"5 x", Err("malformed chunk extension")),
        ];
        for (line, want) in cases {
            let got = parse_size_line(line).map_err(|e| e.message());
            assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn line_caps() {
        // A size line at the cap is fine; one byte more is a 400, even before its CRLF.
        let mut at_cap = b"1;".to_vec();
        at_cap.extend(std::iter::repeat_n(b'a', CHUNK_LINE_MAX - 2));
        at_cap.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(whole(&at_cap).map(|r| r.0), Ok(b"x".to_vec()));
        let mut over = b"1;".to_vec();
        over.extend(std::iter::repeat_n(b'a', CHUNK_LINE_MAX - 1));
        assert_eq!(whole(&over), Err(400));
        // Trailers over TRAILERS_MAX: 431 before the line is complete.
        let mut trailers = b"0\r\nX: ".to_vec();
        trailers.extend(std::iter::repeat_n(b'a', TRAILERS_MAX));
        assert_eq!(whole(&trailers), Err(431));
        assert_eq!(ChunkedDecoder::MAX_PENDING, 8193);
    }

    /// Extensions are capped by what the data pays for, not only per line: a long one
    /// on every one-byte chunk is refused after a few chunks, while one-byte chunks
    /// without extensions, and a signature-sized extension per chunk, are not.
    #[test]
    fn framing_must_be_paid_for_by_data() {
        let chunk = |ext: &str, data: &[u8]| {
            let mut c = format!("{:x}{ext}\r\n", data.len()).into_bytes();
            c.extend_from_slice(data);
            c.extend_from_slice(b"\r\n");
            c
        };
        let body = |chunks: Vec<Vec<u8>>| {
            let mut b = chunks.concat();
            b.extend_from_slice(b"0\r\n\r\n");
            b
        };
        let big = Limits {
            max_body: 1 << 30,
            ..Limits::default()
        };
        let decode = |input: &[u8]| {
            let mut out = Vec::new();
            let result = ChunkedDecoder::new().decode(input, &mut out, &big);
            result
                .map(|(_, done)| (done, out.len()))
                .map_err(|e| e.status())
        };
        let padding = format!(";a={}", "x".repeat(4000));
        let padded = body((0..5).map(|_| chunk(&padding, b"x")).collect());
        assert_eq!(decode(&padded), Err(400));
        let four = body((0..4).map(|_| chunk(&padding, b"x")).collect());
        assert_eq!(decode(&four), Ok((true, 4)));
        let bytes = body((0..100_000).map(|_| chunk("", b"x")).collect());
        assert_eq!(decode(&bytes), Ok((true, 100_000)));
        let signature = format!(";chunk-signature={}", "f".repeat(64));
        let signed = body((0..20).map(|_| chunk(&signature, &[b'y'; 100])).collect());
        assert_eq!(decode(&signed), Ok((true, 2000)));
    }

    #[test]
    fn after_finish_and_after_error() {
        let mut dec = ChunkedDecoder::new();
        let mut body = Vec::new();
        assert_eq!(
            dec.decode(b"0\r\n\r\nnext", &mut body, &limits()),
            Ok((5, true))
        );
        assert!(dec.is_finished());
        // Finished: nothing more is taken.
        assert_eq!(dec.decode(b"next", &mut body, &limits()), Ok((0, true)));
        let mut bad = ChunkedDecoder::default();
        let err = bad.decode(b"zz\r\n", &mut body, &limits());
        assert_eq!(err.map_err(|e| e.status()), Err(400));
        // Failed: the same error again, whatever comes next.
        assert_eq!(bad.decode(b"0\r\n\r\n", &mut body, &limits()), err);
    }
}
