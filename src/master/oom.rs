//! Telling the kernel's OOM killer from any other SIGKILL.
//!
//! gunicorn logs "Perhaps out of memory?" for every SIGKILL it did not send itself, an
//! operator's `kill -9` included, which sends people hunting leaks that are not there
//! (and hides the real OOM kills among the guesses). The kernel counts its OOM kills, so
//! we read the count when the master starts and again whenever a worker dies of a
//! SIGKILL nobody here sent, and the log says which it was.
//!
//! The counter is the most specific one readable, by the `oom_kill` line of: our cgroup's
//! `memory.events` (cgroup v2: kills in this cgroup and those below it, where the workers
//! are), our memory cgroup's `memory.oom_control` (cgroup v1), or `/proc/vmstat`
//! (the whole machine, Linux 4.13 and later, so other containers' kills count too).

use std::path::{Path, PathBuf};

use crate::sys::cgroup::{self, Version};

/// The kernel's count of OOM kills, and the value last read from it. The default
/// watches nothing yet (see [`OomKills::watch`]).
#[derive(Default)]
pub struct OomKills {
    counter: Option<PathBuf>,
    seen: u64,
}

impl OomKills {
    /// Finds the counter and reads it now; later kills are counted from here.
    pub fn watch() -> OomKills {
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let counter = candidates(&cgroups)
            .into_iter()
            .find(|file| read_count(file).is_some());
        let seen = counter.as_deref().and_then(read_count).unwrap_or(0);
        OomKills { counter, seen }
    }

    /// Why a worker died of a SIGKILL that the master did not send, as a log line's end.
    pub fn sigkill_cause(&mut self) -> String {
        let counted = self.counter.as_deref().and_then(|file| {
            let now = read_count(file)?;
            let gained = now.saturating_sub(self.seen);
            self.seen = now;
            Some((gained, file))
        });
        cause(counted)
    }
}

/// The log text for a SIGKILL, given the OOM kills counted since the last look and
/// where (`None`: no counter could be read).
fn cause(counted: Option<(u64, &Path)>) -> String {
    match counted {
        Some((0, file)) => format!(
            "was sent SIGKILL by another process (no OOM kill in {})",
            file.display()
        ),
        Some((n, file)) => format!(
            "was killed by the kernel's OOM killer (oom_kill +{n} in {}): it needs more \
             memory than it may have",
            file.display()
        ),
        None => "was sent SIGKILL, by the OOM killer or another process (no OOM counter is \
                 readable here)"
            .to_string(),
    }
}

/// The counter files to try, most specific first, for the text of `/proc/self/cgroup`.
fn candidates(proc_self_cgroup: &str) -> Vec<PathBuf> {
    let dirs = cgroup::memory_dirs(proc_self_cgroup).into_iter();
    let files = dirs.map(|(version, dir)| match version {
        Version::V2 => dir.join("memory.events"),
        Version::V1 => dir.join("memory.oom_control"),
    });
    files.chain([PathBuf::from("/proc/vmstat")]).collect()
}

fn read_count(file: &Path) -> Option<u64> {
    oom_kill_count(&std::fs::read_to_string(file).ok()?)
}

/// The `oom_kill N` line of a counter file.
fn oom_kill_count(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_files_most_specific_first() {
        let cases: &[(&str, &[&str])] = &[
            (
                "0::/system.slice/app.service\n",
                &[
                    "/sys/fs/cgroup/system.slice/app.service/memory.events",
                    "/proc/vmstat",
                ],
            ),
            // A container with its own cgroup namespace sees itself at the root.
            ("0::/\n", &["/sys/fs/cgroup/memory.events", "/proc/vmstat"]),
            (
                "9:name=systemd:/\n4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/\n",
                &[
                    "/sys/fs/cgroup/memory/docker/abc/memory.oom_control",
                    "/sys/fs/cgroup/memory.events",
                    "/proc/vmstat",
                ],
            ),
            (
                "5:cpuset,memory:/x\n",
                &["/sys/fs/cgroup/memory/x/memory.oom_control", "/proc/vmstat"],
            ),
            ("", &["/proc/vmstat"]),
            ("garbage\n", &["/proc/vmstat"]),
        ];
        for (text, want) in cases {
            let want: Vec<PathBuf> = want.iter().map(PathBuf::from).collect();
            assert_eq!(candidates(text), want, "{text:?}");
        }
    }

    #[test]
    fn oom_kill_line_of_each_counter_file() {
        let cases: &[(&str, Option<u64>)] = &[
            // cgroup v2 memory.events
            (
                "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n",
                Some(2),
            ),
            // cgroup v1 memory.oom_control
            ("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", Some(7)),
            // /proc/vmstat
            (
                "pgfault 100\noom_kill 0\nunevictable_pgs_culled 0\n",
                Some(0),
            ),
            ("oom_kill_disable 0\nunder_oom 0\n", None),
            ("oom_kill x\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(oom_kill_count(text), *want, "{text:?}");
        }
    }

    #[test]
    fn cause_says_which_kill_it_was() {
        let file = Path::new("/sys/fs/cgroup/memory.events");
        let oom = cause(Some((1, file)));
        assert!(oom.contains("OOM killer") && oom.contains("+1"), "{oom}");
        let other = cause(Some((0, file)));
        assert!(
            other.contains("another process") && other.contains("no OOM kill"),
            "{other}"
        );
        assert!(!other.contains("OOM killer"), "{other}");
        let unknown = cause(None);
        assert!(unknown.contains("no OOM counter"), "{unknown}");
    }
}
