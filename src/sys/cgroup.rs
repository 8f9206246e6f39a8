//! Where this process's memory cgroup lives, read from `/proc/self/cgroup`: for the OOM
//! kill counter (`master::oom`) and the memory limit the autoscaler keeps under
//! (`master::memory_limit`).
//!
//! Each line of `/proc/self/cgroup` is `hierarchy-id:controllers:path`. Under cgroup v2
//! the one line has no controllers and the directory is `/sys/fs/cgroup/PATH`; under v1
//! the memory controller's line names it and the directory is
//! `/sys/fs/cgroup/memory/PATH`. A hybrid system has both; they are returned in the order
//! the file lists them, most specific first.

use std::path::{Path, PathBuf};

/// Which cgroup interface a directory speaks (the file names differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `memory.limit_in_bytes`, `memory.usage_in_bytes`, `memory.oom_control`.
    V1,
    /// `memory.max`, `memory.current`, `memory.events`.
    V2,
}

/// This process's memory cgroup directories.
pub fn own_memory_dirs() -> Vec<(Version, PathBuf)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    memory_dirs(&text)
}

/// The memory cgroup directories named by the text of `/proc/self/cgroup`.
pub fn memory_dirs(proc_self_cgroup: &str) -> Vec<(Version, PathBuf)> {
    let mut dirs = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let below = path.trim_start_matches('/');
        if controllers.is_empty() {
            dirs.push((Version::V2, Path::new("/sys/fs/cgroup").join(below)));
        } else if controllers.split(',').any(|c| c == "memory") {
            dirs.push((Version::V1, Path::new("/sys/fs/cgroup/memory").join(below)));
        }
    }
    dirs
}
