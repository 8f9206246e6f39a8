//! The one error type of the HTTP layer: the status code to answer with, plus a short
//! human-readable reason.
//!
//! Owns: [`HttpError`] and the small constructors the parsers use. Does not own: turning
//! an error into bytes on the wire (that is [`Response::error`](super::Response::error)),
//! nor closing the connection. Every `HttpError` that comes out of parsing means "answer
//! with this status, then close": the framing of the stream can no longer be trusted, so
//! the worker never tries to resync (RFC 9112 §6.3 ¶4, §9.6).
//!
//! The type is `Copy` and holds a `&'static str`, so making and returning one never
//! allocates: errors are on the hot path of an attack, not only of a mistake.

use std::fmt;

/// A request the server refuses: the status to answer with and why.
///
/// Build one with [`HttpError::new`] (the worker does, for 408 and 500 say); the parsers
/// use the status-specific constructors in this module.
///
/// # Examples
///
/// Every parser error carries the status to answer with; the connection is then closed:
///
/// ```
/// use br_serve::http::{HttpError, Limits, parse_head};
///
/// // Content-Length and Transfer-Encoding together: the classic smuggling request.
/// let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\
///             Transfer-Encoding: chunked\r\n\r\n";
/// let err: HttpError = parse_head(raw, &Limits::default()).unwrap_err();
/// assert_eq!(err.status(), 400);
/// println!("refused: {err}"); // "400 Bad Request: ..." for the log
///
/// // The type is Copy and never allocates, so errors can be constants.
/// const TIMEOUT: HttpError = HttpError::new(408, "request head timeout");
/// assert_eq!(TIMEOUT.to_string(), "408 Request Timeout: request head timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError {
    /// The status code of the answer, e.g. 400.
    status: u16,
    /// A short, fixed explanation, shown in the response body and the log.
    message: &'static str,
}

impl HttpError {
    /// Makes an error that answers with `status` (a 4xx or 5xx code; [`Response::error`]
    /// sends anything outside 100-599 as 500) and explains itself with `message`.
    ///
    /// [`Response::error`]: crate::Response::error
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::Response;
    /// use br_serve::http::HttpError;
    ///
    /// let err = HttpError::new(503, "server is draining");
    /// assert_eq!(err.to_string(), "503 Service Unavailable: server is draining");
    /// assert_eq!(Response::error(&err).status(), 503);
    /// ```
    pub const fn new(status: u16, message: &'static str) -> HttpError {
        HttpError { status, message }
    }

    /// The status code to answer with: 400, 413, 414, 417, 431, 501, 505, ...
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let status = |raw: &[u8]| parse_head(raw, &Limits::default()).unwrap_err().status();
    /// assert_eq!(status(b"GET / HTTP/1.1\nHost: h\n\n"), 400); // bare LF
    /// assert_eq!(status(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505); // the HTTP/2 preface
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A short human text, e.g. `"Transfer-Encoding with Content-Length"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::http::{Limits, parse_head};
    ///
    /// let message = |raw: &[u8]| parse_head(raw, &Limits::default()).unwrap_err().message();
    /// assert_eq!(message(b"GET / HTTP/1.1\nHost: h\n\n"), "bare LF; lines must end with CRLF");
    /// assert_eq!(message(b"PRI * HTTP/2.0\r\n\r\n"), "HTTP version not supported");
    /// ```
    pub fn message(&self) -> &'static str {
        self.message
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = super::response::reason_phrase(self.status);
        write!(f, "{} {}: {}", self.status, reason, self.message)
    }
}

impl std::error::Error for HttpError {}

/// 400: the message is malformed (RFC 9110 §15.5.1).
pub(crate) const fn bad_request(message: &'static str) -> HttpError {
    HttpError::new(400, message)
}

/// 413: the content is larger than the server will take (RFC 9110 §15.5.14).
pub(crate) const fn content_too_large(message: &'static str) -> HttpError {
    HttpError::new(413, message)
}

/// 414: the request-target is longer than the server will read (RFC 9110 §15.5.15).
pub(crate) const fn uri_too_long(message: &'static str) -> HttpError {
    HttpError::new(414, message)
}

/// 417: an expectation the server cannot meet (RFC 9110 §15.5.18).
pub(crate) const fn expectation_failed(message: &'static str) -> HttpError {
    HttpError::new(417, message)
}

/// 431: the header (or trailer) section is too large (RFC 6585 §5).
pub(crate) const fn fields_too_large(message: &'static str) -> HttpError {
    HttpError::new(431, message)
}

/// 501: the request needs something the server does not implement (RFC 9110 §15.6.2).
pub(crate) const fn not_implemented(message: &'static str) -> HttpError {
    HttpError::new(501, message)
}

/// 505: the major HTTP version is not one the server speaks (RFC 9110 §15.6.6).
pub(crate) const fn version_not_supported(message: &'static str) -> HttpError {
    HttpError::new(505, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_and_display() {
        let cases: &[(HttpError, u16, &str)] = &[
            // The generic constructor keeps what it is given.
            (
                HttpError::new(408, "head timeout"),
                408,
                "408 Request Timeout: head timeout",
            ),
            // Each helper maps to the status its RFC section names.
            (bad_request("x"), 400, "400 Bad Request: x"),
            (content_too_large("x"), 413, "413 Content Too Large: x"),
            (uri_too_long("x"), 414, "414 URI Too Long: x"),
            (expectation_failed("x"), 417, "417 Expectation Failed: x"),
            (
                fields_too_large("x"),
                431,
                "431 Request Header Fields Too Large: x",
            ),
            (not_implemented("x"), 501, "501 Not Implemented: x"),
            (
                version_not_supported("x"),
                505,
                "505 HTTP Version Not Supported: x",
            ),
        ];
        for (err, status, shown) in cases {
            assert_eq!(err.status(), *status);
            assert_eq!(err.to_string(), *shown);
        }
    }
}
