//! Whether one more worker could add throughput, for `--max-workers`: not when the
//! workers already keep every CPU the server may use busy. Connections queue then
//! because the CPUs are full, not the pool; another worker only shares them, and each
//! request takes longer in wall time, until requests outlast `--timeout` and workers
//! doing their job are killed as hung (a probe: 2 CPUs, 400 ms of CPU a request, the
//! pool grown from 2 to 42 workers, 136 of 309 answers 500). uWSGI's cheaper algorithms
//! and gunicorn's users' TTIN scripts look at the queue alone, and do the same.
//!
//! The measure is each worker's *runnable* time, on a CPU or waiting for one, from
//! `/proc/PID/schedstat` (the scheduler's own nanoseconds): CPU-bound workers are
//! runnable all the time, whether they get the CPU or wait behind another process for
//! it, and workers waiting on the network or a database are not. When the workers'
//! runnable time over the last second adds up to nine tenths of the CPUs the master may
//! use (its affinity and cgroup quota, as `available_parallelism` counts them) or more,
//! the pool is CPU-bound. Without schedstat (a kernel without `CONFIG_SCHED_INFO`) it is
//! never judged so, and the queue alone decides, as before. Only each worker's main
//! thread is counted, the one that runs the handler: threads an application starts in
//! its factory are not, which can only make the pool look less busy than it is.

use std::collections::HashMap;

/// The share of the CPUs the workers' runnable time must reach for the pool to count as
/// CPU-bound: a little short of all, since a worker also reads and writes its sockets.
const FULL: f64 = 0.9;

/// The window a judgement is made over: as long as the autoscaler waits before a step.
const WINDOW_MS: u64 = super::autoscale::UP_AFTER_MS;

/// The workers' runnable time, sampled while none of them is idle.
#[derive(Debug)]
pub struct CpuUse {
    /// The CPUs this process may use.
    cpus: usize,
    /// The sample the current window started with.
    last: Option<Sample>,
    /// CPUs' worth of runnable time over the last whole window.
    runnable: Option<f64>,
}

/// Each worker's runnable nanoseconds at one moment.
#[derive(Debug)]
struct Sample {
    at_ms: u64,
    runnable_ns: HashMap<i32, u64>,
}

impl CpuUse {
    /// Counting the CPUs this process may use now.
    pub fn new() -> CpuUse {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        CpuUse {
            cpus,
            last: None,
            runnable: None,
        }
    }

    /// A look at the workers `pids` while none is idle: a window is judged once it is a
    /// second long, and the next begins.
    pub fn look(&mut self, pids: impl Iterator<Item = i32>, now_ms: u64) {
        self.look_with(pids, now_ms, runnable_ns);
    }

    fn look_with(
        &mut self,
        pids: impl Iterator<Item = i32>,
        now_ms: u64,
        read: impl Fn(i32) -> Option<u64>,
    ) {
        if self
            .last
            .as_ref()
            .is_some_and(|last| now_ms < last.at_ms + WINDOW_MS)
        {
            return;
        }
        let runnable_ns = pids.filter_map(|pid| Some((pid, read(pid)?))).collect();
        let sample = Sample {
            at_ms: now_ms,
            runnable_ns,
        };
        self.runnable = self.last.as_ref().map(|last| runnable_cpus(last, &sample));
        self.last = Some(sample);
    }

    /// Forgets what it saw: a worker is idle, so the pool is not full, and a later
    /// crowding is judged afresh.
    pub fn forget(&mut self) {
        self.last = None;
        self.runnable = None;
    }

    /// `Some((runnable CPUs, CPUs))` when the workers' runnable time over the last window
    /// filled nine tenths of the CPUs or more.
    pub fn saturated(&self) -> Option<(f64, usize)> {
        let runnable = self.runnable?;
        (runnable >= FULL * self.cpus as f64).then_some((runnable, self.cpus))
    }
}

/// CPUs' worth of runnable time between two samples, over the workers in both (one that
/// started or ended between them says nothing about the window).
fn runnable_cpus(before: &Sample, after: &Sample) -> f64 {
    let elapsed_ns = after.at_ms.saturating_sub(before.at_ms) as f64 * 1e6;
    let grown: u64 = after
        .runnable_ns
        .iter()
        .filter_map(|(pid, &now)| Some(now.saturating_sub(*before.runnable_ns.get(pid)?)))
        .sum();
    match elapsed_ns > 0.0 {
        true => grown as f64 / elapsed_ns,
        false => 0.0,
    }
}

/// A process's runnable nanoseconds so far: its time on a CPU plus its time waiting on a
/// run queue, the first two fields of `/proc/PID/schedstat`.
fn runnable_ns(pid: i32) -> Option<u64> {
    parse_schedstat(&std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?)
}

fn parse_schedstat(text: &str) -> Option<u64> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    fields.next()??.checked_add(fields.next()??)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_is_time_on_a_cpu_plus_time_waiting_for_one() {
        assert_eq!(parse_schedstat("253941 1000 1\n"), Some(254_941));
        assert_eq!(parse_schedstat("253941\n"), None);
        assert_eq!(parse_schedstat("x 1 1"), None);
        assert!(
            runnable_ns(std::process::id() as i32).is_some(),
            "this process's"
        );
    }

    #[test]
    fn judged_over_whole_windows_of_the_workers_seen_at_both_ends() {
        let mut cpu = CpuUse {
            cpus: 2,
            last: None,
            runnable: None,
        };
        // Worker 1 runnable all the time, worker 2 nine tenths, worker 3 new.
        let at = |ms: u64| {
            move |pid: i32| match pid {
                1 => Some(ms * 1_000_000),
                2 => Some(ms * 900_000),
                3 => Some(ms * 1_000_000 - 500_000_000),
                _ => None,
            }
        };
        cpu.look_with([1, 2].into_iter(), 1_000, at(1_000));
        assert_eq!(cpu.saturated(), None, "one sample judges nothing");
        cpu.look_with([1, 2, 3].into_iter(), 1_500, at(1_500));
        assert_eq!(cpu.saturated(), None, "half a window judges nothing");
        cpu.look_with([1, 2, 3].into_iter(), 2_000, at(2_000));
        let (runnable, cpus) = cpu.saturated().expect("1.9 of 2 CPUs");
        assert!((runnable - 1.9).abs() < 1e-9 && cpus == 2, "{runnable}");
        // Workers waiting on the network: runnable a tenth of the time each.
        let io = |pid: i32| at(2_000)(pid).map(|ns| ns + 100_000_000);
        cpu.look_with([1, 2].into_iter(), 3_000, io);
        assert_eq!(cpu.saturated(), None);
        cpu.forget();
        assert_eq!(cpu.saturated(), None);
    }
}
