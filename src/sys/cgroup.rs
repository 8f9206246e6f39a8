//! Where this process's memory and CPU cgroups live, read from `/proc/self/cgroup` and
//! `/proc/self/mountinfo`: for the OOM kill counter (`master::oom`), the memory limit
//! the autoscaler keeps under (`master::memory_limit`) and the CPU quota it judges the
//! workers' CPU use against (`master::cpu_use`).
//!
//! Each line of `/proc/self/cgroup` is `hierarchy-id:controllers:path`. Under cgroup v2
//! the one line has no controllers; under v1 the controller's line names it. A hybrid
//! system has both; they are returned in the order the file lists them.
//!
//! The path is the cgroup's place in the whole hierarchy, and the directory is that path
//! below where the hierarchy is mounted, less the part of it the mount leaves out: a
//! container on cgroup v1 without a cgroup namespace (Docker's default there) reads
//! `/docker/ID`, while its `/sys/fs/cgroup/memory` is already that cgroup (the mount's
//! root, in mountinfo, is `/docker/ID`). Joining the two named a directory that does not
//! exist, and the limit went unseen. Without mountinfo, the usual mount points are taken.

use std::path::{Component, Path, PathBuf};

/// Which cgroup interface a directory speaks (the file names differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `memory.limit_in_bytes`, `memory.usage_in_bytes`, `memory.oom_control`,
    /// `cpu.cfs_quota_us`.
    V1,
    /// `memory.max`, `memory.current`, `memory.events`, `cpu.max`.
    V2,
}

/// This process's memory cgroup directories, each followed by its parents up to the
/// hierarchy's mount: the kernel holds a cgroup to the smallest limit on the way up (a
/// systemd slice's `MemoryMax=` over the unit's), so each may be the one that binds.
pub fn own_memory_dirs() -> Vec<(Version, PathBuf)> {
    own_dirs("memory")
}

/// This process's CPU cgroup directories, each followed by its parents, as
/// [`own_memory_dirs`]: the smallest quota on the way up binds.
pub fn own_cpu_dirs() -> Vec<(Version, PathBuf)> {
    own_dirs("cpu")
}

fn own_dirs(controller: &str) -> Vec<(Version, PathBuf)> {
    let read = |file| std::fs::read_to_string(file).unwrap_or_default();
    dirs_of(
        controller,
        &read("/proc/self/cgroup"),
        &read("/proc/self/mountinfo"),
    )
}

/// The cgroup directories of `controller` (`memory`, `cpu`) named by the texts of
/// `/proc/self/cgroup` and `/proc/self/mountinfo`, most specific first.
fn dirs_of(controller: &str, proc_self_cgroup: &str, mountinfo: &str) -> Vec<(Version, PathBuf)> {
    let mut dirs = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let version = match controllers {
            "" => Version::V2,
            _ if controllers.split(',').any(|c| c == controller) => Version::V1,
            _ => continue,
        };
        let (mount, root) = mount_of(controller, version, mountinfo)
            .unwrap_or_else(|| usual_mount(controller, version));
        let below = Path::new(path)
            .strip_prefix(&root)
            .unwrap_or(Path::new(path));
        let own = below
            .components()
            .fold(mount.clone(), |dir, part| match part {
                Component::Normal(name) => dir.join(name),
                _ => dir,
            });
        let chain = own.ancestors().take_while(|dir| dir.starts_with(&mount));
        dirs.extend(chain.map(|dir| (version, dir.to_path_buf())));
    }
    dirs
}

/// Where a hierarchy is mounted when mountinfo does not say: the whole of it (v1: where
/// systemd mounts the controller, `cpu` beside `cpuacct` as `cpu,cpuacct`).
fn usual_mount(controller: &str, version: Version) -> (PathBuf, PathBuf) {
    let mount = match (version, controller) {
        (Version::V2, _) => "/sys/fs/cgroup".to_string(),
        (Version::V1, "cpu") => "/sys/fs/cgroup/cpu,cpuacct".to_string(),
        (Version::V1, _) => format!("/sys/fs/cgroup/{controller}"),
    };
    (PathBuf::from(mount), PathBuf::from("/"))
}

/// The mount point and root of the hierarchy of `version` (v1: the one with
/// `controller`), from mountinfo lines: `ID PARENT DEV ROOT MOUNTPOINT OPTIONS [TAGS] -
/// FSTYPE SOURCE SUPEROPTIONS` (proc(5)).
fn mount_of(controller: &str, version: Version, mountinfo: &str) -> Option<(PathBuf, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (mine, theirs) = line.split_once(" - ")?;
        let mut mine = mine.split(' ').skip(3);
        let (root, mount) = (mine.next()?, mine.next()?);
        let mut theirs = theirs.split(' ');
        let (fstype, options) = (theirs.next()?, theirs.nth(1).unwrap_or(""));
        let found = match version {
            Version::V2 => fstype == "cgroup2",
            Version::V1 => fstype == "cgroup" && options.split(',').any(|o| o == controller),
        };
        found.then(|| (PathBuf::from(mount), PathBuf::from(root)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2_HOST: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
    /// Docker on cgroup v1, no cgroup namespace: the mount's root is the container's.
    const V1_CONTAINER: &str = "\
        600 590 0:60 / / rw - overlay overlay rw\n\
        610 600 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n\
        611 600 0:31 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n";

    fn dirs(cgroup: &str, mountinfo: &str) -> Vec<String> {
        controller_dirs("memory", cgroup, mountinfo)
    }

    fn controller_dirs(controller: &str, cgroup: &str, mountinfo: &str) -> Vec<String> {
        let found = dirs_of(controller, cgroup, mountinfo).into_iter();
        found.map(|(_, dir)| dir.display().to_string()).collect()
    }

    #[test]
    fn each_cgroup_and_its_parents_up_to_the_mount() {
        assert_eq!(
            dirs("0::/system.slice/app.service\n", V2_HOST),
            [
                "/sys/fs/cgroup/system.slice/app.service",
                "/sys/fs/cgroup/system.slice",
                "/sys/fs/cgroup",
            ]
        );
        // A container with its own cgroup namespace sees itself at the root.
        assert_eq!(dirs("0::/\n", V2_HOST), ["/sys/fs/cgroup"]);
        // The mount's root is left out of the path: the container's own directory.
        let v1 = "9:name=systemd:/docker/abc\n4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n";
        assert_eq!(dirs(v1, V1_CONTAINER), ["/sys/fs/cgroup/memory"]);
        let below = "4:memory:/docker/abc/worker\n";
        assert_eq!(
            dirs(below, V1_CONTAINER),
            ["/sys/fs/cgroup/memory/worker", "/sys/fs/cgroup/memory"]
        );
        // Without mountinfo, the usual mount points; v1 and v2 in the file's order.
        assert_eq!(
            dirs("4:memory:/x\n0::/\n", ""),
            [
                "/sys/fs/cgroup/memory/x",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup"
            ]
        );
        assert!(dirs("1:cpu:/x\ngarbage\n", V2_HOST).is_empty());
    }

    #[test]
    fn the_cpu_controllers_own_hierarchy() {
        let v1 = "4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n";
        assert_eq!(
            controller_dirs("cpu", v1, V1_CONTAINER),
            ["/sys/fs/cgroup/cpu,cpuacct"]
        );
        assert_eq!(
            controller_dirs("cpu", "0::/app.slice\n", V2_HOST),
            ["/sys/fs/cgroup/app.slice", "/sys/fs/cgroup"]
        );
        assert_eq!(
            controller_dirs("cpu", "1:cpu,cpuacct:/x\n", ""),
            ["/sys/fs/cgroup/cpu,cpuacct/x", "/sys/fs/cgroup/cpu,cpuacct"]
        );
    }
}
