//! When a worker asks the master for a successor: after `--max-requests` requests (plus
//! a random part of `--max-requests-jitter`), once it is `--max-worker-age` old (plus up
//! to a tenth more, at random), or once its memory passes `--max-worker-memory`. The
//! master starts the successor first and retires this worker when it is ready, so
//! recycling never leaves one worker fewer accepting.
//!
//! Memory here is *anonymous resident* memory (`RssAnon`: the heap and stacks, what a
//! leak grows), not RSS, which also counts the binary's and files' pages. An app built
//! before fork counts in full from the start (its pages are shared with the master until
//! written, but resident in every worker), so the limit must sit above a fresh worker's
//! size; the boot check below says so when it does not. It is read from
//! `/proc/self/statm`, a cheap file, at each sweep of the worker's loop.

use std::time::Instant;

use crate::config::Config;
use crate::sys::pages::{anon_resident_bytes, mib};

/// A worker's recycling limits; each fires once, and the first to fire ends them all.
#[derive(Debug)]
pub struct Recycle {
    booted: Instant,
    requests: Option<u64>,
    deadline: Option<Instant>,
    memory: Option<u64>,
}

impl Recycle {
    /// The limits for a worker booted at `booted`. A memory limit that a fresh worker
    /// already exceeds is dropped with a warning: recycling could never bring it under,
    /// only replace workers in a loop.
    pub fn new(config: &Config, booted: Instant) -> Recycle {
        let (r1, r2) = (random(1), random(2));
        let requests = config
            .max_requests
            .map(|max| request_quota(max, config.max_requests_jitter, r1));
        // Up to a tenth more, so workers started together do not all go together.
        let deadline = config
            .max_worker_age
            .map(|age| booted + age + age.mul_f64((r2 % 1001) as f64 / 10_000.0));
        let memory = config.max_worker_memory.filter(|&limit| {
            let fresh = anon_resident_bytes("self").unwrap_or(0);
            if fresh > limit {
                log::warn!(
                    "this worker uses {} at boot, more than --max-worker-memory {}: \
                     not recycling it for memory",
                    mib(fresh),
                    mib(limit)
                );
            }
            fresh <= limit
        });
        Recycle {
            booted,
            requests,
            deadline,
            memory,
        }
    }

    /// After each turn of the loop: whether the request quota is reached, and why.
    pub fn after_turn(&mut self, served: u64) -> Option<String> {
        let reached = self.requests.filter(|&quota| served >= quota)?;
        self.stop();
        Some(format!("served {reached} requests (--max-requests)"))
    }

    /// At each sweep: whether the worker is too old or too big, and why.
    pub fn at_sweep(&mut self, now: Instant) -> Option<String> {
        let why = self.age_or_memory(now, || anon_resident_bytes("self"))?;
        self.stop();
        Some(why)
    }

    /// The age and memory rules, with the memory reading passed in (read only when a
    /// limit is set).
    fn age_or_memory(&self, now: Instant, memory: impl FnOnce() -> Option<u64>) -> Option<String> {
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            let age = now.saturating_duration_since(self.booted).as_secs();
            return Some(format!("ran {age} s (--max-worker-age)"));
        }
        let limit = self.memory?;
        let used = memory().filter(|&used| used > limit)?;
        Some(format!(
            "uses {} of memory, more than {} (--max-worker-memory)",
            mib(used),
            mib(limit)
        ))
    }

    /// Asked once: the master now replaces this worker.
    fn stop(&mut self) {
        self.requests = None;
        self.deadline = None;
        self.memory = None;
    }
}

/// `max` plus a part of `jitter` chosen by `random`, 0..=jitter. Saturating: the flags
/// take any u64, and a sum past u64::MAX means "effectively never", not an overflow (a
/// jitter of u64::MAX would make the modulus wrap to 0 and panic every worker).
fn request_quota(max: u64, jitter: u64, random: u64) -> u64 {
    max.saturating_add(random % jitter.saturating_add(1))
}

/// A random number for spreading limits, different in each worker: RandomState's keys
/// are copied across fork, so the pid, the clock and `salt` tell draws apart.
fn random(salt: u64) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one((
        std::process::id(),
        Instant::now(),
        salt,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(requests: Option<u64>, age: Option<u64>, memory: Option<u64>) -> Recycle {
        let booted = Instant::now();
        Recycle {
            booted,
            requests,
            deadline: age.map(|s| booted + Duration::from_secs(s)),
            memory,
        }
    }

    #[test]
    fn each_limit_fires_once_with_its_flag_named() {
        let booted = Instant::now();
        let later = |s| booted + Duration::from_secs(s);
        let mut by_requests = limits(Some(10), None, None);
        assert_eq!(by_requests.after_turn(9), None);
        let why = by_requests.after_turn(10).expect("quota reached");
        assert!(why.contains("--max-requests"), "{why}");
        assert_eq!(by_requests.after_turn(11), None, "asked once");

        let by_age = limits(None, Some(60), None);
        assert_eq!(by_age.age_or_memory(later(59), || None), None);
        let why = by_age.age_or_memory(later(61), || None);
        assert!(why.is_some_and(|w| w.contains("--max-worker-age")));

        let by_memory = limits(None, None, Some(100 << 20));
        let under = by_memory.age_or_memory(later(1), || Some(100 << 20));
        assert_eq!(under, None);
        let over = by_memory.age_or_memory(later(1), || Some(150 << 20));
        assert!(
            over.as_deref()
                .is_some_and(|w| w.contains("150.0 MiB") && w.contains("100.0 MiB")),
            "{over:?}"
        );
        // An unreadable statm never recycles.
        assert_eq!(by_memory.age_or_memory(later(1), || None), None);
    }

    #[test]
    fn request_quota_saturates() {
        const MAX: u64 = u64::MAX;
        // (max, jitter, random) -> quota
        let cases = [
            ((100, 0, 12345), 100),
            ((100, 10, 25), 103),
            ((100, 10, 10), 110),
            ((MAX, 0, 7), MAX),
            ((MAX, 5, 3), MAX),
            ((1, MAX, MAX - 1), MAX),
            ((MAX, MAX, MAX), MAX),
            ((5, MAX, 2), 7),
        ];
        for ((max, jitter, random), want) in cases {
            assert_eq!(
                request_quota(max, jitter, random),
                want,
                "{max} {jitter} {random}"
            );
        }
    }

    #[test]
    fn memory_is_read_only_when_limited() {
        let none = limits(Some(5), Some(60), None);
        let read = std::cell::Cell::new(false);
        let _ = none.age_or_memory(Instant::now(), || {
            read.set(true);
            Some(u64::MAX)
        });
        assert!(!read.get());
    }
}
