//! Fuzzes `parse_head`: it must never panic, a complete head must fit its input and the
//! head budget, and any prefix of the input must either need more bytes or reach the
//! verdict the whole input gets (what makes "fed in pieces" equal "fed whole").
#![no_main]

use br_serve::http::{Limits, parse_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the limits (low bit) and a cut point (the other seven).
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let limits = if knob & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            request_line: 64,
            fields: 4,
            field_size: 64,
            max_body: 256,
        }
    };
    let whole = parse_head(input, &limits);
    if let Ok(Some(head)) = &whole {
        assert!(head.len() <= input.len());
        assert!(head.len() <= limits.max_head_bytes());
        assert_eq!(head.as_bytes(), input.get(..head.len()).unwrap_or_default());
        // Every accessor must work on whatever was accepted.
        let _ = (
            head.method(),
            head.target(),
            head.path(),
            head.query(),
            head.version(),
        );
        let _ = (
            head.framing(),
            head.keep_alive(),
            head.expects_continue(),
            head.is_head(),
        );
        assert_eq!(
            head.headers().count(),
            head.headers().filter(|(n, _)| !n.is_empty()).count()
        );
    }
    let cut = usize::from(knob >> 1) * input.len() / 127;
    match parse_head(input.get(..cut).unwrap_or(input), &limits) {
        Ok(None) => {}
        prefix => assert_eq!(prefix, whole, "prefix of {cut} bytes"),
    }
});
