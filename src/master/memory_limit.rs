//! The cgroup's memory limit and what counts against it, so that `--max-workers` never
//! adds a worker the kernel's OOM killer would have to take back.
//!
//! A container's limit is on the whole cgroup (master, workers, page cache). What counts
//! is the working set, as the kubelet reckons it for eviction: usage less the inactive
//! file pages the kernel can drop at no cost. One more worker fits when the working set
//! plus the largest worker's anonymous memory stays under [`FILL_PERCENT`] of the limit:
//! a fresh worker starts smaller, but it grows toward what its siblings use.

use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use crate::sys::cgroup::{self, Version};
use crate::sys::pages::{anon_resident_bytes, mib};

/// The share of the limit the pool may grow into; the rest is the margin for growth
/// between two looks and for the page cache the kernel would rather keep.
pub const FILL_PERCENT: u64 = 90;

/// A limit at or above this is "no limit" (cgroup v1 writes one near 2^63).
const UNLIMITED: u64 = 1 << 60;

/// The memory limit this process's cgroup is held to.
#[derive(Debug)]
pub struct MemoryLimit {
    version: Version,
    dir: PathBuf,
    /// Bytes, when it was found.
    pub limit: u64,
}

impl MemoryLimit {
    /// The smallest limit among this process's memory cgroup and its parents (the one
    /// the kernel holds it to: a slice's `MemoryMax=` over a unit without one was
    /// missed), with the cgroup it is on; `None` when there is none or none can be read.
    pub fn find() -> Option<MemoryLimit> {
        smallest(cgroup::own_memory_dirs())
    }

    /// What one more worker would come to now, given the pids of the workers running;
    /// `None` when the cgroup or no worker could be read. The limit is read again: one
    /// changed at run time (`docker update --memory`, `systemctl set-property`) counts
    /// from the next step, and one lifted lets the pool grow.
    pub fn room(&self, workers: impl Iterator<Item = Pid>) -> Option<Room> {
        let sizes = workers.filter_map(|pid| anon_resident_bytes(&pid.as_raw().to_string()));
        Some(Room {
            limit: read_limit(self.version, &self.dir).unwrap_or(u64::MAX),
            used: self.working_set()?,
            worker: sizes.max()?,
        })
    }

    /// Bytes in use that the kernel cannot simply drop: usage less inactive file pages.
    fn working_set(&self) -> Option<u64> {
        let (usage, stat_key) = match self.version {
            Version::V2 => ("memory.current", "inactive_file"),
            Version::V1 => ("memory.usage_in_bytes", "total_inactive_file"),
        };
        let used = read_number(&self.dir.join(usage))?;
        let stat = std::fs::read_to_string(self.dir.join("memory.stat")).ok()?;
        let inactive = stat_value(&stat, stat_key).unwrap_or(0);
        Some(used.saturating_sub(inactive))
    }
}

/// What one more worker would come to against the cgroup's memory limit.
#[derive(Debug)]
pub struct Room {
    limit: u64,
    /// The cgroup's working set now.
    used: u64,
    /// The largest worker's anonymous memory: what a new one grows toward.
    worker: u64,
}

impl Room {
    /// Whether one more worker fits.
    pub fn fits(&self) -> bool {
        fits(self.limit, self.used, self.worker)
    }

    /// For the log: ` (~40.3 MiB each; 41.0 MiB of the cgroup's 80.0 MiB limit in use,
    /// 90 % the most)`.
    pub fn describe(&self) -> String {
        format!(
            " (~{} each; {} of the cgroup's {} limit in use, {FILL_PERCENT} % the most)",
            mib(self.worker),
            mib(self.used),
            mib(self.limit),
        )
    }
}

/// The smallest limit set on `dirs` (most specific first), with its cgroup; of equal
/// limits the most specific, whose usage is the process's own.
fn smallest(dirs: Vec<(Version, PathBuf)>) -> Option<MemoryLimit> {
    let found = dirs.into_iter().filter_map(|(version, dir)| {
        let limit = read_limit(version, &dir)?;
        Some(MemoryLimit {
            version,
            dir,
            limit,
        })
    });
    found.reduce(|best, next| if next.limit < best.limit { next } else { best })
}

/// Whether one more worker of `worker` bytes fits: `used + worker` within
/// [`FILL_PERCENT`] of `limit`.
fn fits(limit: u64, used: u64, worker: u64) -> bool {
    u128::from(used) + u128::from(worker) <= u128::from(limit) * u128::from(FILL_PERCENT) / 100
}

fn read_limit(version: Version, dir: &Path) -> Option<u64> {
    let file = match version {
        Version::V2 => "memory.max",
        Version::V1 => "memory.limit_in_bytes",
    };
    // cgroup v2 writes "max" for no limit, which does not parse: None either way.
    read_number(&dir.join(file)).filter(|&limit| limit < UNLIMITED)
}

fn read_number(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The value of `key` in a `memory.stat` (`key value` lines).
fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn one_more_worker_fits_within_ninety_percent() {
        // (limit, used, worker) -> fits
        let cases = [
            ((256 * MIB, 100 * MIB, 64 * MIB), true),
            ((256 * MIB, 200 * MIB, 30 * MIB), true), // 230 of 230.4
            ((256 * MIB, 200 * MIB, 31 * MIB), false),
            ((256 * MIB, 260 * MIB, 0), false),   // already over
            ((u64::MAX, u64::MAX - 1, 1), false), // no overflow
        ];
        for ((limit, used, worker), want) in cases {
            assert_eq!(fits(limit, used, worker), want, "{limit} {used} {worker}");
        }
    }

    #[test]
    fn memory_stat_values() {
        let v1 = "cache 100\ninactive_file 7\ntotal_inactive_file 624574464\n";
        assert_eq!(stat_value(v1, "total_inactive_file"), Some(624_574_464));
        assert_eq!(stat_value(v1, "inactive_file"), Some(7));
        let v2 = "anon 1\nfile 2\ninactive_file 3\nactive_file 4\n";
        assert_eq!(stat_value(v2, "inactive_file"), Some(3));
        assert_eq!(stat_value(v2, "total_inactive_file"), None);
        assert_eq!(stat_value("inactive_file x\n", "inactive_file"), None);
    }

    /// A parent's limit binds when it is the smaller (a slice's `MemoryMax=` over a unit
    /// without one); of equal ones, the process's own cgroup is taken.
    #[test]
    fn the_smallest_limit_on_the_way_up_binds() {
        let parent = std::env::temp_dir().join(format!("br-serve-limits-{}", std::process::id()));
        let own = parent.join("app.service");
        std::fs::create_dir_all(&own).unwrap();
        let chain = || vec![(Version::V2, own.clone()), (Version::V2, parent.clone())];
        let set = |dir: &Path, text: &str| std::fs::write(dir.join("memory.max"), text).unwrap();
        set(&own, "max\n");
        set(&parent, "314572800\n");
        let found = smallest(chain()).expect("the parent's limit");
        assert_eq!(
            (found.limit, found.dir.as_path()),
            (300 * MIB, parent.as_path())
        );
        set(&own, "314572800\n");
        assert_eq!(smallest(chain()).map(|f| f.dir), Some(own.clone()));
        set(&own, "max\n");
        set(&parent, "max\n");
        assert!(smallest(chain()).is_none());
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn limits_that_mean_none() {
        let dir = std::env::temp_dir().join(format!("br-serve-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let limit = |version, file: &str, text: &str| {
            std::fs::write(dir.join(file), text).unwrap();
            read_limit(version, &dir)
        };
        assert_eq!(
            limit(Version::V2, "memory.max", "268435456\n"),
            Some(268_435_456)
        );
        assert_eq!(limit(Version::V2, "memory.max", "max\n"), None);
        let v1_none = "9223372036854771712\n";
        assert_eq!(limit(Version::V1, "memory.limit_in_bytes", v1_none), None);
        assert_eq!(
            limit(Version::V1, "memory.limit_in_bytes", "1073741824\n"),
            Some(1 << 30)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
