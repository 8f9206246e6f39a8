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
    /// Kills counted and not yet told of: workers killed together are reaped one by one,
    /// each taking one, where the first took them all and the rest were said to be
    /// "sent SIGKILL by another process".
    untold: u64,
}

impl OomKills {
    /// Finds the counter and reads it now; later kills are counted from here.
    pub fn watch() -> OomKills {
        let counter = candidates(cgroup::own_memory_dirs())
            .into_iter()
            .find(|file| read_count(file).is_some());
        let seen = counter.as_deref().and_then(read_count).unwrap_or(0);
        OomKills {
            counter,
            seen,
            untold: 0,
        }
    }

    /// Why a worker died of a SIGKILL that the master did not send.
    pub fn sigkill_cause(&mut self) -> Sigkill {
        let counted = self.counter.as_deref().and_then(|file| {
            let now = read_count(file)?;
            self.untold += now.saturating_sub(self.seen);
            self.seen = now;
            let told = self.untold.min(1);
            self.untold -= told;
            Some((told, file))
        });
        cause(counted)
    }
}

/// Why a worker died of a SIGKILL that the master did not send.
#[derive(Debug)]
pub struct Sigkill {
    /// As a log line's end.
    pub said: String,
    /// Another process sent it (an operator's `kill -9`, a monitor), not the OOM killer:
    /// it says nothing of the worker or its configuration.
    pub by_another: bool,
}

/// The SIGKILL, given the OOM kills counted since the last look and where (`None`: no
/// counter could be read, and it may have been either).
fn cause(counted: Option<(u64, &Path)>) -> Sigkill {
    let said = match counted {
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
    };
    let by_another = matches!(counted, Some((0, _)));
    Sigkill { said, by_another }
}

/// The counter files to try, most specific first, for the memory cgroup directories.
fn candidates(dirs: Vec<(Version, PathBuf)>) -> Vec<PathBuf> {
    let files = dirs.into_iter().map(|(version, dir)| match version {
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
        let dirs = vec![
            (Version::V1, PathBuf::from("/sys/fs/cgroup/memory/x")),
            (Version::V2, PathBuf::from("/sys/fs/cgroup")),
        ];
        let want = [
            "/sys/fs/cgroup/memory/x/memory.oom_control",
            "/sys/fs/cgroup/memory.events",
            "/proc/vmstat",
        ];
        assert_eq!(candidates(dirs), want.map(PathBuf::from));
        assert_eq!(candidates(Vec::new()), [PathBuf::from("/proc/vmstat")]);
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

    /// Three workers killed together, reaped one by one: each was the OOM killer's.
    #[test]
    fn kills_counted_together_are_told_one_per_worker() {
        let dir = std::env::temp_dir().join(format!("br-serve-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("memory.events");
        std::fs::write(&file, "oom_kill 0\n").unwrap();
        let mut kills = OomKills {
            counter: Some(file.clone()),
            ..OomKills::default()
        };
        std::fs::write(&file, "oom_kill 3\n").unwrap();
        let causes: Vec<String> = (0..4).map(|_| kills.sigkill_cause().said).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            causes[..3].iter().all(|c| c.contains("OOM killer")),
            "{causes:?}"
        );
        assert!(causes[3].contains("another process"), "{causes:?}");
    }

    #[test]
    fn cause_says_which_kill_it_was() {
        let file = Path::new("/sys/fs/cgroup/memory.events");
        let oom = cause(Some((1, file)));
        assert!(!oom.by_another, "{oom:?}");
        let oom = oom.said;
        assert!(oom.contains("OOM killer") && oom.contains("+1"), "{oom}");
        let other = cause(Some((0, file)));
        assert!(other.by_another, "{other:?}");
        let other = other.said;
        assert!(
            other.contains("another process") && other.contains("no OOM kill"),
            "{other}"
        );
        assert!(!other.contains("OOM killer"), "{other}");
        let unknown = cause(None);
        assert!(!unknown.by_another, "{unknown:?}");
        assert!(unknown.said.contains("no OOM counter"), "{unknown:?}");
    }
}
