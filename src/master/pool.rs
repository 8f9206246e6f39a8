//! The worker table and the decisions made over it: how many workers to start, which to
//! retire, and how long to wait after workers keep dying during boot.
//!
//! The decisions are pure functions over a snapshot of the pool ([`plan`], [`backoff`]),
//! so the rolling rules that are easy to get wrong (HUP generations, TTOU, recycling after
//! `--max-requests`) are table-tested without forking anything.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::unistd::Pid;

/// What the master knows about one of its workers.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// The worker's pid.
    pub pid: Pid,
    /// Its scoreboard slot; its number in logs is `slot + 1`.
    pub slot: usize,
    /// The generation it was started in (HUP starts a new one).
    pub generation: u32,
    /// When it was forked (CLOCK_MONOTONIC ms).
    pub spawned_ms: u64,
    /// When it was told to stop, if it was.
    pub retiring_ms: Option<u64>,
    /// When it was sent SIGABRT for being silent, if it was.
    pub aborted_ms: Option<u64>,
    /// Whether it was sent SIGKILL.
    pub killed: bool,
    /// The `--timeout` it was started under, in ms (`None`: never).
    pub timeout_ms: Option<u64>,
}

impl WorkerInfo {
    /// The worker's number in logs.
    pub fn number(&self) -> usize {
        self.slot + 1
    }

    /// How long it may be silent before it is killed, with `current` the `--timeout` in
    /// force now: its own, or a longer one that a HUP has set since, never a shorter
    /// one. The request it is in began under its own: a HUP that lowered the timeout to
    /// 2 s killed the retiring workers' 3 s requests, which the roll lets finish.
    pub fn timeout_ms(&self, current: Option<u64>) -> Option<u64> {
        match (self.timeout_ms, current) {
            (Some(own), Some(now)) => Some(own.max(now)),
            _ => None,
        }
    }
}

/// Every living worker, by pid.
#[derive(Debug, Default)]
pub struct Pool {
    workers: BTreeMap<i32, WorkerInfo>,
}

impl Pool {
    /// Records a newly forked worker.
    pub fn insert(&mut self, info: WorkerInfo) {
        self.workers.insert(info.pid.as_raw(), info);
    }

    /// Forgets a reaped worker, returning what we knew about it.
    pub fn remove(&mut self, pid: Pid) -> Option<WorkerInfo> {
        self.workers.remove(&pid.as_raw())
    }

    /// Looks a worker up.
    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut WorkerInfo> {
        self.workers.get_mut(&pid.as_raw())
    }

    /// Every worker.
    pub fn iter(&self) -> impl Iterator<Item = &WorkerInfo> {
        self.workers.values()
    }

    /// Every worker, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut WorkerInfo> {
        self.workers.values_mut()
    }

    /// How many workers are alive.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// No worker is alive.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The lowest slot no living worker holds, below `capacity`.
    pub fn free_slot(&self, capacity: usize) -> Option<usize> {
        let mut used: Vec<usize> = self.workers.values().map(|w| w.slot).collect();
        used.sort_unstable();
        (0..capacity).find(|slot| used.binary_search(slot).is_err())
    }
}

/// A worker as [`plan`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The worker's pid.
    pub pid: i32,
    /// Its generation.
    pub generation: u32,
    /// It finished booting (its loop runs).
    pub ready: bool,
    /// It is idle right now (retiring it interrupts no request).
    pub idle: bool,
    /// Answers it is still sending (downloads retiring it would cut).
    pub sending: u32,
    /// It reached its `--max-requests` quota and wants a replacement.
    pub quota_reached: bool,
    /// It was already told to stop.
    pub retiring: bool,
    /// When it was forked.
    pub spawned_ms: u64,
}

/// What the master should do to reach its target.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// How many workers to fork.
    pub spawn: usize,
    /// Which workers to stop gracefully.
    pub retire: Vec<i32>,
}

/// Decides spawns and retirements for `target` workers of `generation`.
///
/// Workers of the current generation that have not reached their quota are *current*;
/// the rest (an older generation, or a quota reached) are *outgoing*. Missing current
/// workers are forked at once. An outgoing worker is retired only once a ready current
/// worker can take its place, so HUP and recycling never leave fewer than `target`
/// workers accepting. Surplus current workers (after TTOU) are retired at once, those
/// sending fewest answers first, then idle ones, then the youngest.
pub fn plan(target: usize, generation: u32, workers: &[View]) -> Plan {
    let live = workers.iter().filter(|w| !w.retiring);
    let (current, outgoing): (Vec<&View>, Vec<&View>) =
        live.partition(|w| w.generation == generation && !w.quota_reached);
    let ready_current = current.iter().filter(|w| w.ready).count();
    let keep_outgoing = target.saturating_sub(ready_current);
    let mut retire = pick(&current, current.len().saturating_sub(target), true);
    retire.extend(pick(
        &outgoing,
        outgoing.len().saturating_sub(keep_outgoing),
        false,
    ));
    Plan {
        spawn: target.saturating_sub(current.len()),
        retire,
    }
}

/// Chooses `n` workers to retire: those still booting first (they serve nothing yet, so
/// a second HUP during a roll drops the generation it abandons, not the workers
/// serving), then those sending fewest answers (a retired worker has until
/// `--graceful-timeout` to finish, which a request usually ends within and a download to
/// a slow client usually does not; a request longer than that is cut all the same),
/// then idle ones, then the youngest (`youngest`) or the oldest.
fn pick(workers: &[&View], n: usize, youngest: bool) -> Vec<i32> {
    let mut order: Vec<&View> = workers.to_vec();
    order.sort_by_key(|w| {
        let age_key = if youngest {
            u64::MAX - w.spawned_ms
        } else {
            w.spawned_ms
        };
        (w.ready, w.sending, !w.idle, age_key)
    });
    order.into_iter().take(n).map(|w| w.pid).collect()
}

/// How long to wait before the next fork after `failures` workers in a row died during
/// boot: nothing at first, then 100 ms doubling up to 30 s, so a broken deploy cannot
/// become a fork storm.
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => Duration::from_millis(100u64.saturating_mul(1 << (n - 1).min(20)))
            .min(Duration::from_secs(30)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(pid: i32, generation: u32, ready: bool, idle: bool) -> View {
        View {
            pid,
            generation,
            ready,
            idle,
            sending: 0,
            quota_reached: false,
            retiring: false,
            spawned_ms: pid as u64,
        }
    }

    #[test]
    fn plans() {
        let quota = View {
            quota_reached: true,
            ..w(3, 1, true, false)
        };
        let retiring = View {
            retiring: true,
            ..w(4, 1, true, true)
        };
        let sending = |pid, n| View {
            sending: n,
            ..w(pid, 1, true, true)
        };
        let cases: Vec<(&str, usize, u32, Vec<View>, Plan)> = vec![
            (
                "start: fork them all",
                2,
                1,
                vec![],
                Plan {
                    spawn: 2,
                    retire: vec![],
                },
            ),
            (
                "steady state",
                2,
                1,
                vec![w(1, 1, true, true), w(2, 1, true, false)],
                Plan::default(),
            ),
            (
                "a worker died",
                2,
                1,
                vec![w(1, 1, true, true)],
                Plan {
                    spawn: 1,
                    retire: vec![],
                },
            ),
            (
                "TTIN",
                3,
                1,
                vec![w(1, 1, true, true), w(2, 1, true, true)],
                Plan {
                    spawn: 1,
                    retire: vec![],
                },
            ),
            (
                "TTOU retires an idle one before a busy one",
                1,
                1,
                vec![w(1, 1, true, true), w(2, 1, true, false)],
                Plan {
                    spawn: 0,
                    retire: vec![1],
                },
            ),
            (
                "TTOU among idle ones retires the youngest",
                1,
                1,
                vec![w(1, 1, true, true), w(2, 1, true, true)],
                Plan {
                    spawn: 0,
                    retire: vec![2],
                },
            ),
            (
                "TTOU spares the worker sending a download, busy or not",
                1,
                1,
                vec![sending(1, 0), sending(2, 1), w(3, 1, true, false)],
                Plan {
                    spawn: 0,
                    retire: vec![1, 3],
                },
            ),
            (
                "TTOU retires the worker sending the fewest downloads",
                1,
                1,
                vec![sending(1, 3), sending(2, 1)],
                Plan {
                    spawn: 0,
                    retire: vec![2],
                },
            ),
            (
                "HUP: new generation forked, old kept while new boots",
                2,
                2,
                vec![w(1, 1, true, true), w(2, 1, true, true)],
                Plan {
                    spawn: 2,
                    retire: vec![],
                },
            ),
            (
                "HUP: one new ready retires one old",
                2,
                2,
                vec![
                    w(1, 1, true, true),
                    w(2, 1, true, false),
                    w(5, 2, true, true),
                    w(6, 2, false, false),
                ],
                Plan {
                    spawn: 0,
                    retire: vec![1],
                },
            ),
            (
                "HUP: all new ready retires all old",
                2,
                2,
                vec![
                    w(1, 1, true, true),
                    w(2, 1, true, false),
                    w(5, 2, true, true),
                    w(6, 2, true, true),
                ],
                Plan {
                    spawn: 0,
                    retire: vec![1, 2],
                },
            ),
            (
                "HUP during a HUP roll: the booting generation goes, the serving one stays",
                2,
                3,
                vec![
                    w(1, 1, true, true),
                    w(2, 1, true, true),
                    w(5, 2, false, false),
                    w(6, 2, false, false),
                ],
                Plan {
                    spawn: 2,
                    retire: vec![5, 6],
                },
            ),
            (
                "TTOU retires a booting worker before a serving one",
                1,
                1,
                vec![w(1, 1, true, true), w(2, 1, false, false)],
                Plan {
                    spawn: 0,
                    retire: vec![2],
                },
            ),
            (
                "quota reached: replacement forked, quota worker kept",
                2,
                1,
                vec![quota, w(2, 1, true, true)],
                Plan {
                    spawn: 1,
                    retire: vec![],
                },
            ),
            (
                "quota reached: replacement ready, quota worker retired",
                2,
                1,
                vec![quota, w(2, 1, true, true), w(7, 1, true, true)],
                Plan {
                    spawn: 0,
                    retire: vec![3],
                },
            ),
            (
                "retiring workers count for nothing",
                1,
                1,
                vec![retiring, w(5, 1, true, true)],
                Plan::default(),
            ),
            (
                "WINCH: target 0 retires everyone",
                0,
                1,
                vec![w(1, 1, true, false), w(2, 1, true, true)],
                Plan {
                    spawn: 0,
                    retire: vec![2, 1],
                },
            ),
        ];
        for (name, target, generation, workers, want) in cases {
            assert_eq!(plan(target, generation, &workers), want, "{name}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let ms = |n| backoff(n).as_millis();
        assert_eq!([ms(0), ms(1), ms(2), ms(3), ms(4)], [0, 100, 200, 400, 800]);
        assert_eq!(backoff(12), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(30));
    }

    /// A worker of generation 1 started with `--timeout 30`.
    fn worker(pid: i32, slot: usize) -> WorkerInfo {
        WorkerInfo {
            pid: Pid::from_raw(pid),
            slot,
            generation: 1,
            spawned_ms: 0,
            retiring_ms: None,
            aborted_ms: None,
            killed: false,
            timeout_ms: Some(30_000),
        }
    }

    /// A HUP lengthens a worker's timeout, never shortens it; "never" stays never.
    #[test]
    fn a_worker_keeps_the_longer_of_its_timeout_and_the_current_one() {
        let own = |timeout_ms| WorkerInfo {
            timeout_ms,
            ..worker(10, 0)
        };
        let cases = [
            (Some(30_000), Some(2_000), Some(30_000)),
            (Some(2_000), Some(30_000), Some(30_000)),
            (None, Some(2_000), None),
            (Some(2_000), None, None),
        ];
        for (started, current, want) in cases {
            assert_eq!(
                own(started).timeout_ms(current),
                want,
                "{started:?} {current:?}"
            );
        }
    }

    #[test]
    fn free_slots_are_reused_lowest_first() {
        let mut pool = Pool::default();
        pool.insert(worker(10, 0));
        pool.insert(worker(11, 2));
        assert_eq!(pool.free_slot(4), Some(1));
        pool.insert(worker(12, 1));
        assert_eq!(pool.free_slot(4), Some(3));
        pool.insert(worker(13, 3));
        assert_eq!(pool.free_slot(4), None);
    }
}
