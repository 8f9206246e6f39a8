//! Clocks: CLOCK_MONOTONIC milliseconds that mean the same thing in every process, and
//! this thread's CPU time (for the demo app's CPU-burning route).
//!
//! `std::time::Instant` cannot be shared through memory between processes, so the
//! scoreboard stores raw CLOCK_MONOTONIC milliseconds instead. On Linux that clock does
//! not advance during suspend, so a laptop waking up does not look like a hung worker.

use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

/// Milliseconds on CLOCK_MONOTONIC; comparable between the master and its workers.
pub fn monotonic_ms() -> u64 {
    read(ClockId::CLOCK_MONOTONIC).as_millis() as u64
}

/// Microseconds on CLOCK_MONOTONIC, for systemd's `MONOTONIC_USEC=`: systemd compares
/// it with its own reading taken before it sent the signal, in microseconds, and
/// milliseconds rounded down came out earlier than that about one time in three.
pub fn monotonic_us() -> u64 {
    read(ClockId::CLOCK_MONOTONIC).as_micros() as u64
}

/// Turns an [`Instant`] into [`monotonic_ms`] without reading the clock again.
///
/// std's `Instant` is CLOCK_MONOTONIC on Linux, so one pair of readings taken together
/// relates the two for good. A worker reads the clock once per request and derives the
/// scoreboard's milliseconds from that reading, instead of paying for a second read.
#[derive(Debug, Clone, Copy)]
pub struct MsAnchor {
    instant: Instant,
    ms: u64,
}

impl MsAnchor {
    /// Reads both clocks now.
    pub fn new() -> MsAnchor {
        MsAnchor {
            instant: Instant::now(),
            ms: monotonic_ms(),
        }
    }

    /// `at` in CLOCK_MONOTONIC milliseconds.
    pub fn ms(&self, at: Instant) -> u64 {
        self.ms + at.saturating_duration_since(self.instant).as_millis() as u64
    }
}

impl Default for MsAnchor {
    fn default() -> Self {
        Self::new()
    }
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    read(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

fn read(clock: ClockId) -> Duration {
    // Both clocks exist on every Linux we support; clock_gettime cannot fail for them.
    clock_gettime(clock).map(Duration::from).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_converts_instants_to_monotonic_ms() {
        let anchor = MsAnchor::new();
        let later = anchor.instant + Duration::from_millis(1500);
        assert_eq!(anchor.ms(later), anchor.ms + 1500);
        // An instant before the anchor reads as the anchor, never as a wrap-around.
        assert_eq!(anchor.ms(anchor.instant), anchor.ms);
        // And it agrees with a fresh reading of the clock, to the millisecond or so.
        let (now, ms) = (Instant::now(), monotonic_ms());
        assert!(
            anchor.ms(now).abs_diff(ms) <= 2,
            "{} vs {ms}",
            anchor.ms(now)
        );
    }
}
