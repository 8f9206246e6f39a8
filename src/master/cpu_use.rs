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
//! use (its affinity, less its cgroup's CPU quota where that is lower, a fraction
//! included, asked again each second) or more, the pool is CPU-bound. A second is judged only if the
//! same workers ran through all of it: one that started or ended in it (a step's, a
//! replacement's) would count for part of it or none, and the pool would look to have
//! room it has not (a step went through after each `--max-requests` replacement). Until
//! a second is judged, no step is taken. Without schedstat (a kernel without
//! `CONFIG_SCHED_INFO`) the workers count as never runnable, and the queue alone
//! decides, as before. Only each worker's main thread is counted, the one that runs the
//! handler: threads an application starts in its factory are not, which can only make
//! the pool look less busy than it is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::sys::cgroup::{self, Version};
use crate::sys::clock::monotonic_ms;

/// The share of the CPUs the workers' runnable time must reach for the pool to count as
/// CPU-bound: a little short of all, since a worker also waits on its sockets.
const FULL: f64 = 0.9;

/// The window a judgement is made over: as long as the autoscaler waits before a step.
const WINDOW_MS: u64 = super::autoscale::UP_AFTER_MS;

/// The workers' runnable time, sampled while none of them is idle.
#[derive(Debug, Default)]
pub struct CpuUse {
    /// The sample the current window started with.
    last: Option<Sample>,
    /// What the last whole window said.
    judged: Option<Cpus>,
}

/// What a window of the workers' runnable time says of the CPUs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cpus {
    /// No whole window of the same workers yet.
    NotYet,
    /// Room for another worker.
    Room,
    /// The workers were runnable for `runnable` CPUs' worth of the window, on `cpus`.
    Full { runnable: f64, cpus: f64 },
}

/// Each worker's runnable nanoseconds at one moment.
#[derive(Debug)]
struct Sample {
    /// When the reads began, and when they were done.
    from_ms: u64,
    at_ms: u64,
    /// The workers looked at, sorted: the pool the window is of.
    pool: Vec<i32>,
    runnable_ns: HashMap<i32, u64>,
}

impl CpuUse {
    /// A look at the workers `pids` while none is idle: a window is judged once it is a
    /// second long, and the next begins; a pool that changed begins a window afresh.
    pub fn look(&mut self, pids: impl Iterator<Item = i32>, now_ms: u64) {
        self.look_with(pids, now_ms, runnable_ns, monotonic_ms);
    }

    /// [`CpuUse::look`], the workers' runnable time given by `read` and the sample's time
    /// by `clock`, read right before and right after them: the time of the master's look,
    /// taken earlier, was as early as the master had been kept off a CPU meanwhile (a
    /// loaded machine, the workers' own CPU), which shortened a window's runnable time
    /// and let a step through a pool that filled its CPU ([`runnable_cpus`] takes the
    /// window between the reads).
    fn look_with(
        &mut self,
        pids: impl Iterator<Item = i32>,
        now_ms: u64,
        read: impl Fn(i32) -> Option<u64>,
        clock: impl Fn() -> u64,
    ) {
        let mut pool: Vec<i32> = pids.collect();
        pool.sort_unstable();
        let last = self.last.as_ref().filter(|last| last.pool == pool);
        if last.is_some_and(|last| now_ms < last.at_ms + WINDOW_MS) {
            return;
        }
        let from_ms = clock();
        let runnable_ns = pool.iter().filter_map(|&pid| Some((pid, read(pid)?)));
        let runnable_ns = runnable_ns.collect();
        let sample = Sample {
            from_ms,
            at_ms: clock(),
            runnable_ns,
            pool,
        };
        self.judged = last.map(|last| judge(runnable_cpus(last, &sample), available_cpus()));
        self.last = Some(sample);
    }

    /// Forgets what it saw: a worker is idle or booting, so the pool is not full or not
    /// settled, and a later crowding is judged afresh.
    pub fn forget(&mut self) {
        self.last = None;
        self.judged = None;
    }

    /// What the last whole window of the same workers says.
    pub fn judged(&self) -> Cpus {
        self.judged.unwrap_or(Cpus::NotYet)
    }
}

/// Full when the workers were runnable for nine tenths of `cpus` or more.
fn judge(runnable: f64, cpus: f64) -> Cpus {
    match runnable >= FULL * cpus {
        true => Cpus::Full { runnable, cpus },
        false => Cpus::Room,
    }
}

/// The CPUs this process may use now: its affinity, less its cgroup's CPU quota where
/// that is lower, a fraction included (1.5 for Kubernetes' `cpu: 1500m`).
/// `available_parallelism` rounds a quota down to whole CPUs: one worker on a 1.5-CPU
/// quota was judged to fill it, and the pool held at one with half a CPU unused.
fn available_cpus() -> f64 {
    let affinity = affinity_cpus();
    cpu_quota(cgroup::own_cpu_dirs()).map_or(affinity, |quota| quota.min(affinity))
}

/// The CPUs this process's affinity allows.
fn affinity_cpus() -> f64 {
    use nix::sched::{CpuSet, sched_getaffinity};
    let set = sched_getaffinity(nix::unistd::Pid::from_raw(0));
    let allowed = set.map(|set| {
        let allowed = |&cpu: &usize| set.is_set(cpu).unwrap_or(false);
        (0..CpuSet::count()).filter(allowed).count()
    });
    match allowed {
        Ok(n) if n > 0 => n as f64,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
    }
}

/// The smallest CPU quota in `dirs` (a cgroup and its parents), in CPUs; `None` without
/// one.
fn cpu_quota(dirs: Vec<(Version, PathBuf)>) -> Option<f64> {
    let quotas = dirs
        .iter()
        .filter_map(|(version, dir)| quota_in(*version, dir));
    quotas.reduce(f64::min)
}

/// A cgroup's CPU quota, in CPUs: `cpu.max` under v2 (`QUOTA PERIOD`, `max` for none),
/// `cpu.cfs_quota_us` over `cpu.cfs_period_us` under v1 (-1 for none).
fn quota_in(version: Version, dir: &Path) -> Option<f64> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let number = |text: &str| text.trim().parse::<f64>().ok();
    let (quota, period) = match version {
        Version::V2 => {
            let max = read("cpu.max")?;
            let (quota, period) = max.trim().split_once(' ')?;
            (number(quota)?, number(period)?)
        }
        Version::V1 => (
            number(&read("cpu.cfs_quota_us")?)?,
            number(&read("cpu.cfs_period_us")?)?,
        ),
    };
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// CPUs' worth of runnable time between two samples of the same pool, over the workers
/// read at both.
fn runnable_cpus(before: &Sample, after: &Sample) -> f64 {
    // The shortest the time between the two samples' reads can have been: from the end
    // of the first to the start of the second. The master shares the CPUs with the
    // workers it measures, and one taken off its CPU between its reads and its clock
    // (by a worker pinned to the same one) stretched the window past the reads, so a
    // pool filling its CPU read as 0.8 of it and a step went through.
    let elapsed_ns = after.from_ms.saturating_sub(before.at_ms) as f64 * 1e6;
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
    fn judged_over_whole_windows_of_the_same_workers() {
        let mut cpu = CpuUse::default();
        // Worker 1 runnable all the time, the others nine tenths of it.
        let at = |ms: u64| move |pid: i32| Some(ms * if pid == 1 { 1_000_000 } else { 900_000 });
        cpu.look_with([1, 2].into_iter(), 1_000, at(1_000), || 1_000);
        assert_eq!(cpu.judged(), Cpus::NotYet, "one sample judges nothing");
        cpu.look_with([2, 1].into_iter(), 1_500, at(1_500), || 1_500);
        assert_eq!(cpu.judged(), Cpus::NotYet, "half a window judges nothing");
        cpu.look_with([1, 2].into_iter(), 2_000, at(2_000), || 2_000);
        assert_eq!(
            cpu.judged(),
            judge(1.9, available_cpus()),
            "1.9 CPUs' worth"
        );
        // A worker started: the window begins again, and judges nothing until it ends.
        cpu.look_with([1, 2, 3].into_iter(), 2_100, at(2_100), || 2_100);
        assert_eq!(cpu.judged(), Cpus::NotYet, "a new pool");
        cpu.look_with([1, 2, 3].into_iter(), 3_100, at(3_100), || 3_100);
        assert_ne!(cpu.judged(), Cpus::NotYet);
        // Workers waiting on the network: runnable a tenth of the second each.
        let io = |pid: i32| at(3_100)(pid).map(|ns| ns + 100_000_000);
        cpu.look_with([1, 2, 3].into_iter(), 4_100, io, || 4_100);
        assert_eq!(cpu.judged(), Cpus::Room);
        cpu.forget();
        assert_eq!(cpu.judged(), Cpus::NotYet);
    }

    /// The master kept off a CPU between its look and its reads: the sample is timed
    /// by the clock read after the workers', not by the look's.
    #[test]
    fn a_window_is_timed_when_the_workers_are_read() {
        let mut cpu = CpuUse::default();
        let at = |ms: u64| move |_pid: i32| Some(ms * 1_000_000);
        cpu.look_with([1, 2].into_iter(), 1_000, at(1_200), || 1_200);
        cpu.look_with([1, 2].into_iter(), 2_200, at(2_200), || 2_200);
        assert_eq!(cpu.judged(), judge(2.0, available_cpus()));
    }

    /// The master kept off its CPU for 300 ms between its reads and its clock: the window
    /// is the time between the reads, not the clocks after them (1.0 CPU, not 0.77).
    #[test]
    fn the_window_is_the_time_between_the_reads() {
        let sample = |from_ms, at_ms, ns| Sample {
            from_ms,
            at_ms,
            pool: vec![1],
            runnable_ns: HashMap::from([(1, ns)]),
        };
        let first = sample(1_000, 1_000, 0);
        let second = sample(2_000, 2_300, 1_000_000_000);
        assert_eq!(runnable_cpus(&first, &second), 1.0);
    }

    #[test]
    fn full_is_nine_tenths_of_the_cpus() {
        assert_eq!(judge(1.79, 2.0), Cpus::Room);
        assert_eq!(
            judge(1.8, 2.0),
            Cpus::Full {
                runnable: 1.8,
                cpus: 2.0
            }
        );
        assert_eq!(
            judge(3.0, 2.0),
            Cpus::Full {
                runnable: 3.0,
                cpus: 2.0
            }
        );
        // One worker busy on a 1.5-CPU quota leaves room for another.
        assert_eq!(judge(1.0, 1.5), Cpus::Room);
    }

    #[test]
    fn a_cpu_quota_is_read_as_a_fraction_of_cpus() {
        let base = std::env::temp_dir().join(format!("br-serve-quota-{}", std::process::id()));
        let dir = |name: &str, files: &[(&str, &str)]| {
            let dir = base.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            files
                .iter()
                .for_each(|(f, text)| std::fs::write(dir.join(f), text).unwrap());
            dir
        };
        let v2 = dir("v2", &[("cpu.max", "150000 100000\n")]);
        let v2_none = dir("v2-none", &[("cpu.max", "max 100000\n")]);
        let v1 = dir(
            "v1",
            &[
                ("cpu.cfs_quota_us", "250000\n"),
                ("cpu.cfs_period_us", "100000\n"),
            ],
        );
        let v1_none = dir(
            "v1-none",
            &[
                ("cpu.cfs_quota_us", "-1\n"),
                ("cpu.cfs_period_us", "100000\n"),
            ],
        );
        assert_eq!(quota_in(Version::V2, &v2), Some(1.5));
        assert_eq!(quota_in(Version::V2, &v2_none), None);
        assert_eq!(quota_in(Version::V1, &v1), Some(2.5));
        assert_eq!(quota_in(Version::V1, &v1_none), None);
        assert_eq!(quota_in(Version::V2, &base.join("missing")), None);
        // The smallest on the way up binds.
        let chain = vec![
            (Version::V2, v2_none),
            (Version::V2, v2.clone()),
            (Version::V1, v1),
        ];
        assert_eq!(cpu_quota(chain), Some(1.5));
        assert_eq!(cpu_quota(Vec::new()), None);
        assert!(affinity_cpus() >= 1.0);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
