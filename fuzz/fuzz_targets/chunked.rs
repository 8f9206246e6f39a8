//! Fuzzes `ChunkedDecoder`: it must never panic, must leave at most `MAX_PENDING` bytes
//! unconsumed, and must decode the same bytes to the same result whether they arrive
//! whole or in pieces of any size (unconsumed bytes presented again, as the worker does).
#![no_main]

use br_serve::http::{ChunkedDecoder, HttpError, Limits};
use libfuzzer_sys::fuzz_target;

/// Feeds `input` in pieces of `step` bytes. Returns (consumed, finished) and the body.
fn in_pieces(
    input: &[u8],
    step: usize,
    limits: &Limits,
) -> (Result<(usize, bool), HttpError>, Vec<u8>) {
    let mut dec = ChunkedDecoder::new();
    let (mut body, mut consumed, mut arrived) = (Vec::new(), 0, 0);
    loop {
        arrived = (arrived + step).min(input.len());
        let window = input.get(consumed..arrived).unwrap_or_default();
        match dec.decode(window, &mut body, limits) {
            Err(e) => return (Err(e), body),
            Ok((n, done)) => {
                assert!(window.len() - n <= ChunkedDecoder::MAX_PENDING);
                consumed += n;
                if done || arrived == input.len() {
                    return (Ok((consumed, done)), body);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte is the piece size, the rest is the body as sent.
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_body: 1 << 16,
        fields: 8,
        ..Limits::default()
    };
    let mut whole_body = Vec::new();
    let whole = ChunkedDecoder::new().decode(input, &mut whole_body, &limits);
    if let Ok((n, _)) = whole {
        assert!(n <= input.len());
    }
    let (pieces, body) = in_pieces(input, usize::from(step).max(1), &limits);
    assert_eq!(whole, pieces);
    if whole.is_ok() {
        assert_eq!(whole_body, body);
    }
});
