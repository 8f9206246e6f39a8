//! HTTP/1.1 messages: parsing request heads, framing and decoding bodies, writing
//! response heads.
//!
//! Owns: everything between bytes and [`Request`]/[`Response`], as pure functions with no
//! I/O: [`parse_head`] turns buffered bytes into a [`RequestHead`] (or "need more", or an
//! [`HttpError`] to answer and close with), the head's [`BodyFraming`] says how to read
//! the body ([`ChunkedDecoder`] for chunked ones), [`write_head`] serialises a response
//! head (and `chunked.rs` frames a streamed body's chunks), [`DateCache`] supplies the
//! Date value. Does not own: sockets, buffers, timeouts, the order of pipelined
//! responses, or lingering close; the worker does all of that.
//!
//! The module is strict on purpose (RFC 9112 §6.3 and the smuggling classes gunicorn
//! fixed from 22.0 on): anything ambiguous about where a message ends is an error, and
//! after an error the connection is closed, never resynchronised.
//!
//! Files:
//! - `limits.rs`: [`Limits`] and the fixed caps.
//! - `syntax.rs`: byte classes, line endings, tokens, lists (shared by head and chunked).
//! - `head.rs`: [`parse_head`]; its top comment explains the order of checks.
//! - `target.rs`: request-target forms and the Host authority.
//! - `framing.rs`: Content-Length, Transfer-Encoding, Host count, Connection, Expect.
//! - `chunked.rs`: [`ChunkedDecoder`], and the chunks of a streamed response.
//! - `proxy_protocol.rs`: the PROXY protocol header a load balancer sends before the
//!   request (`--proxy-protocol`).
//! - `request.rs`, `response.rs`, `date.rs`, `error.rs`: the types handed around.
//!
//! The files are private; everything public is re-exported here.
//!
//! # Examples
//!
//! What a worker does with the bytes of one request, minus the sockets:
//!
//! ```
//! use br_serve::http::{
//!     BodyFraming, ChunkedDecoder, DateCache, Limits, ResponseMeta, body_allowed, parse_head,
//!     write_head,
//! };
//! use br_serve::{Body, Handler, Request, Response};
//!
//! let input = b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
//!               4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
//! let limits = Limits::default();
//!
//! // 1. The head, and how its body is framed.
//! let head = parse_head(input, &limits)?.expect("a complete head");
//! let rest = &input[head.len()..];
//! let mut body = Vec::new();
//! match head.framing() {
//!     BodyFraming::Empty => {}
//!     BodyFraming::Length(n) => body.extend_from_slice(&rest[..n as usize]),
//!     BodyFraming::Chunked => {
//!         let (_, finished) = ChunkedDecoder::new().decode(rest, &mut body, &limits)?;
//!         assert!(finished);
//!     }
//! }
//!
//! // 2. The application.
//! let meta = ResponseMeta { version: head.version(), keep_alive: head.keep_alive(), head_request: head.is_head() };
//! let req = Request::new(head, body, None);
//! let mut app = |req: &Request| Response::bytes(200, "text/plain", req.body().to_vec());
//! let resp = app.handle(&req);
//!
//! // 3. The response head, then the body if the status and method allow one.
//! let mut out = Vec::new();
//! write_head(&mut out, &resp, &meta, DateCache::new().get());
//! if let (true, Body::Bytes(bytes)) = (body_allowed(resp.status(), meta.head_request), resp.body()) {
//!     out.extend_from_slice(bytes);
//! }
//! assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! assert!(out.ends_with(b"Content-Length: 9\r\n\r\nWikipedia"));
//! # Ok::<(), br_serve::http::HttpError>(())
//! ```

pub(crate) mod chunked;
pub(crate) mod date;
pub(crate) mod error;
mod framing;
pub(crate) mod head;
pub(crate) mod limits;
mod proxy_protocol;
pub(crate) mod request;
pub(crate) mod response;
mod syntax;
pub(crate) use syntax::{after_blank_lines, trim_ows_text};
mod target;

#[cfg(test)]
mod proptests;

pub use chunked::ChunkedDecoder;
pub(crate) use chunked::{CHUNK_HEAD_ROOM, LAST_CHUNK, frame_chunk};
pub use date::{DateCache, format_imf_fixdate};
pub use error::HttpError;
pub use head::{BodyFraming, RequestHead, parse_head};
pub(crate) use head::{HeadBuffers, parse_head_into};
pub use limits::{CHUNK_LINE_MAX, Limits, MAX_LEADING_EMPTY_LINES, TRAILERS_MAX};
pub(crate) use proxy_protocol::{ProxyHeader, parse_proxy_header};
pub use request::{Request, Version};
pub use response::{
    Body, CONTINUE_100, Response, ResponseMeta, body_allowed, reason_phrase, write_head,
};
pub(crate) use response::{StreamEnd, ended_by_close, stream_end};
pub(crate) use target::origin_part;
