//! Clocks: CLOCK_MONOTONIC milliseconds that mean the same thing in every process, and
//! this thread's CPU time (for the demo app's CPU-burning route).
//!
//! `std::time::Instant` cannot be shared through memory between processes, so the
//! scoreboard stores raw CLOCK_MONOTONIC milliseconds instead. On Linux that clock does
//! not advance during suspend, so a laptop waking up does not look like a hung worker.

use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// Milliseconds on CLOCK_MONOTONIC; comparable between the master and its workers.
pub fn monotonic_ms() -> u64 {
    read(ClockId::CLOCK_MONOTONIC).as_millis() as u64
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    read(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

fn read(clock: ClockId) -> Duration {
    // Both clocks exist on every Linux we support; clock_gettime cannot fail for them.
    clock_gettime(clock).map(Duration::from).unwrap_or_default()
}
