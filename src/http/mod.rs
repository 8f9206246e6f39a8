//! HTTP/1.1 messages: parsing request heads, framing and decoding bodies, writing
//! response heads.
//!
//! Owns: everything between bytes and [`Request`]/[`Response`], as pure functions with no
//! I/O: [`parse_head`] turns buffered bytes into a [`RequestHead`] (or "need more", or an
//! [`HttpError`] to answer and close with), the head's [`BodyFraming`] says how to read
//! the body ([`ChunkedDecoder`] for chunked ones), [`write_head`] serialises a response
//! head, [`DateCache`] supplies the Date value. Does not own: sockets, buffers, timeouts,
//! the order of pipelined responses, or lingering close; the worker does all of that.
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
//! - `chunked.rs`: [`ChunkedDecoder`].
//! - `request.rs`, `response.rs`, `date.rs`, `error.rs`: the types handed around.

pub mod chunked;
pub mod date;
pub mod error;
mod framing;
pub mod head;
pub mod limits;
pub mod request;
pub mod response;
mod syntax;
mod target;

#[cfg(test)]
mod proptests;

pub use chunked::ChunkedDecoder;
pub use date::DateCache;
pub use error::HttpError;
pub use head::{BodyFraming, RequestHead, parse_head};
pub use limits::Limits;
pub use request::{Request, Version};
pub use response::{
    Body, CONTINUE_100, Response, ResponseMeta, body_allowed, reason_phrase, write_head,
};
