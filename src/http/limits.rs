//! How much of a request the server is willing to read.
//!
//! Owns: [`Limits`] (three knobs named after gunicorn's `--limit-request-*` flags, plus
//! the body cap) and the fixed caps that are not worth a flag. Does not own: enforcing
//! them (the head parser and the chunked decoder do) nor timeouts (the worker does).

/// How many empty lines may come before a request line. RFC 9112 §2.2 says a server
/// SHOULD ignore "at least one empty line (CRLF)" there (old clients send one after a
/// POST body). A few are tolerated; an endless stream of them is not a request.
///
/// # Examples
///
/// ```
/// use br_serve::http::{Limits, MAX_LEADING_EMPTY_LINES, parse_head};
///
/// let limits = Limits::default();
/// let request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
/// let tolerated = [b"\r\n".repeat(MAX_LEADING_EMPTY_LINES), request.to_vec()].concat();
/// assert!(parse_head(&tolerated, &limits)?.is_some());
/// // One more is a 400 as soon as it arrives, before any request line.
/// let too_many = b"\r\n".repeat(MAX_LEADING_EMPTY_LINES + 1);
/// assert_eq!(parse_head(&too_many, &limits).unwrap_err().status(), 400);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
pub const MAX_LEADING_EMPTY_LINES: usize = 4;

/// Most bytes of one chunk-size line, extensions included, CRLF excluded (RFC 9112 §7.1.1
/// leaves extensions unbounded; hyper caps them too, at 16 KiB in total).
///
/// # Examples
///
/// ```
/// use br_serve::http::{CHUNK_LINE_MAX, ChunkedDecoder, Limits};
///
/// let (limits, mut body) = (Limits::default(), Vec::new());
/// let line = format!("1;{}", "x".repeat(CHUNK_LINE_MAX - 2)); // a size and an extension
/// let at_max = format!("{line}\r\na\r\n0\r\n\r\n");
/// let done = ChunkedDecoder::new().decode(at_max.as_bytes(), &mut body, &limits)?;
/// assert_eq!(done, (at_max.len(), true));
/// // One byte more is a 400, before the line has ended.
/// let over = format!("{line}x");
/// let err = ChunkedDecoder::new().decode(over.as_bytes(), &mut body, &limits).unwrap_err();
/// assert_eq!(err.status(), 400);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
pub const CHUNK_LINE_MAX: usize = 4096;

/// Most bytes of the trailer section of a chunked body: every trailer field line with its
/// CRLF (RFC 9112 §7.1.2). The closing empty line is not counted.
///
/// # Examples
///
/// ```
/// use br_serve::http::{ChunkedDecoder, Limits, TRAILERS_MAX};
///
/// let (limits, mut body) = (Limits::default(), Vec::new());
/// // One field line that, with its CRLF, is TRAILERS_MAX bytes.
/// let field = format!("X-Pad: {}", "p".repeat(TRAILERS_MAX - 2 - "X-Pad: ".len()));
/// let at_max = format!("0\r\n{field}\r\n\r\n");
/// let done = ChunkedDecoder::new().decode(at_max.as_bytes(), &mut body, &limits)?;
/// assert_eq!(done, (at_max.len(), true));
/// // One byte more is a 431, before the line has ended.
/// let over = format!("0\r\n{field}p");
/// let err = ChunkedDecoder::new().decode(over.as_bytes(), &mut body, &limits).unwrap_err();
/// assert_eq!(err.status(), 431);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
pub const TRAILERS_MAX: usize = 8192;

/// The limits a worker applies to every request.
///
/// Defaults follow gunicorn (`--limit-request-line 4094`, `--limit-request-fields 100`,
/// `--limit-request-field_size 8190`) and a 1 MiB body.
///
/// The server takes them from `--limit-request-line`, `--limit-request-fields`,
/// `--limit-request-field-size` and `--limit-request-body` (see
/// [`Config::limits`](crate::Config::limits)); a handler therefore never sees a body
/// larger than `max_body`. Each limit is enforced on the byte that breaks it, before the
/// rest arrives, so a client cannot make a worker buffer more than it allows.
///
/// # Examples
///
/// ```
/// use br_serve::http::{Limits, parse_head};
///
/// // An internal API that only ever takes small requests.
/// let limits = Limits { max_body: 64 * 1024, fields: 32, ..Limits::default() };
///
/// let upload = b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n";
/// assert_eq!(parse_head(upload, &limits).unwrap_err().status(), 413);
/// assert!(parse_head(upload, &Limits::default())?.is_some());
///
/// // A request line over the limit is refused before its end has arrived.
/// let long = format!("GET /{}", "a".repeat(limits.request_line));
/// assert_eq!(parse_head(long.as_bytes(), &limits).unwrap_err().status(), 414);
/// # Ok::<(), br_serve::http::HttpError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of the request line, CRLF excluded. Over it: 414.
    pub request_line: usize,
    /// Most header field lines. Over it: 431. Also caps the number of trailer fields.
    pub fields: usize,
    /// Most bytes of one header field line, CRLF excluded. Over it: 431.
    pub field_size: usize,
    /// Most body bytes. A Content-Length over it: 413 before reading anything; a chunked
    /// body whose running total goes over it: 413 as soon as the chunk-size line says so.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 4094,
            fields: 100,
            field_size: 8190,
            max_body: 1 << 20,
        }
    }
}

impl Limits {
    /// The most bytes a valid head can occupy: the tolerated leading empty lines, the
    /// request line and its CRLF, `fields` field lines of `field_size` bytes and their
    /// CRLFs, and the closing CRLF.
    ///
    /// `parse_head` already answers 414 or 431 on the byte that breaks a limit, so a
    /// buffer this long without a complete head always gets an error; the worker can use
    /// this number as the size of its head buffer and stop reading beyond it.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::Limits;
    ///
    /// let tight = Limits { request_line: 100, fields: 4, field_size: 60, max_body: 0 };
    /// // 4 empty lines of 2 bytes, 100 + 2, 4 * (60 + 2), and the closing 2.
    /// assert_eq!(tight.max_head_bytes(), 8 + 102 + 248 + 2);
    /// // The defaults allow a head of about 800 KiB: too much to allocate up front for
    /// // every connection, but a bound all the same.
    /// assert_eq!(Limits::default().max_head_bytes(), 823_306);
    /// ```
    pub fn max_head_bytes(&self) -> usize {
        let fields = self
            .fields
            .saturating_mul(self.field_size.saturating_add(2));
        (MAX_LEADING_EMPTY_LINES * 2)
            .saturating_add(self.request_line)
            .saturating_add(2)
            .saturating_add(fields)
            .saturating_add(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_head_budget() {
        let d = Limits::default();
        // gunicorn's defaults, so its users find the same behaviour.
        assert_eq!((d.request_line, d.fields, d.field_size), (4094, 100, 8190));
        assert_eq!(d.max_body, 1_048_576);
        let cases: &[(Limits, usize)] = &[
            // 8 (leading CRLFs) + 4094 + 2 + 100 * 8192 + 2
            (d.clone(), 8 + 4094 + 2 + 819_200 + 2),
            // No fields at all: the request line and the two CRLFs.
            (
                Limits {
                    fields: 0,
                    ..d.clone()
                },
                8 + 4094 + 4,
            ),
            // Absurd settings saturate instead of overflowing.
            (
                Limits {
                    fields: usize::MAX,
                    field_size: usize::MAX,
                    ..d.clone()
                },
                usize::MAX,
            ),
        ];
        for (limits, want) in cases {
            assert_eq!(limits.max_head_bytes(), *want);
        }
    }
}
