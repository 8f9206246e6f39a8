//! USR2: start a new master from the binary on disk, handing it the listening sockets.
//!
//! The choreography is nginx's and unicorn's (design-notes §4.2): the old master renames
//! its pidfile to `PIDFILE.oldbin` and starts the new binary with the listener
//! descriptors listed in `BR_SERVE_FDS` (and the metrics port's in
//! `BR_SERVE_METRICS_FD`); the new master adopts those its configuration still names
//! instead of binding them again (`listeners::reconcile`; systemd's sockets, flagged by
//! `BR_SERVE_FDS_ACTIVATED`, it adopts as they are), so connections queued in the
//! kernel carry over, writes its own pidfile and forks its workers. Both generations serve side by side until the operator sends WINCH to the
//! old master (its workers drain), then TERM (it exits). HUP to the old master instead
//! brings its workers back: the rollback.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::listeners::{ACTIVATED_ENV, FDS_ENV, Listener};
use super::scrapes;
use crate::sys::fds::set_inheritable;

/// The environment variable naming the master that started this one.
pub const PARENT_ENV: &str = "BR_SERVE_PARENT";

/// The environment variable naming that master's pidfile, moved to `PIDFILE.oldbin`, as
/// an absolute path: the new master removes it should the old one die without doing so
/// (SIGKILL), whatever pidfile the new master's own configuration names.
pub const PARENT_PIDFILE_ENV: &str = "BR_SERVE_PARENT_PIDFILE";

/// What a master hands to its successor.
pub struct Handed<'a> {
    pub listeners: &'a [Listener],
    /// The listeners are systemd's and stand in for `--bind` (socket activation).
    pub activated: bool,
    /// The `--metrics-bind` socket.
    pub metrics: Option<BorrowedFd<'a>>,
    /// The directory to start the new master in: [`start_dir`], when the master was
    /// started there under another name.
    pub dir: Option<&'a Path>,
    /// This master's pidfile, as `PIDFILE.oldbin` now, absolute.
    pub oldbin: Option<&'a Path>,
}

/// The directory this master was started in as the shell named it, when that is not
/// the name the kernel gives: `$PWD` when it is the working directory through a symlink
/// (a deploy's `current`, pointing at a release), as gunicorn's `START_CTX['cwd']` and
/// unicorn's (from `ENV['PWD']`) keep it. Read once, at start: USR2 starts the new
/// master from there, so a deploy that has pointed the link at the next release starts
/// that release's binary (`./br-serve`) and reads its configuration (`-c app.toml`),
/// where the real directory would give the old ones again.
pub fn start_dir() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    let pwd = PathBuf::from(std::env::var_os("PWD")?);
    let same = |a: &Path, b: &Path| {
        let (a, b) = (std::fs::metadata(a).ok()?, std::fs::metadata(b).ok()?);
        Some((a.dev(), a.ino()) == (b.dev(), b.ino()))
    };
    let another_name = pwd.is_absolute() && pwd != cwd && same(&pwd, &cwd) == Some(true);
    another_name.then_some(pwd)
}

/// Starts the new master; returns its pid. `argv` is the command line this master was
/// started with; its first element is looked up again, so a replaced binary is the one
/// that runs.
pub fn spawn_new_master(handed: &Handed, argv: &[OsString]) -> std::io::Result<u32> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::Error::other("empty command line"));
    };
    let Handed {
        listeners,
        activated,
        metrics,
        dir,
        oldbin,
    } = *handed;
    let fds: Vec<BorrowedFd> = listeners.iter().map(Listener::fd).collect();
    let list: Vec<String> = fds.iter().map(|fd| fd.as_raw_fd().to_string()).collect();
    let handed = fds.iter().chain(metrics.as_ref());
    // Clearing close-on-exec is safe here: the master is single-threaded, so no other
    // exec can leak these descriptors while they are inheritable.
    for fd in handed.clone() {
        set_inheritable(fd, true)?;
    }
    // A relative program (`./br-serve`) is looked up from `dir` too, as a shell started
    // in it would.
    let runs = dir.map_or_else(|| PathBuf::from(program), |dir| in_dir(dir, program));
    let mut command = Command::new(&runs);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    match metrics {
        Some(fd) => command.env(scrapes::FD_ENV, fd.as_raw_fd().to_string()),
        None => command.env_remove(scrapes::FD_ENV),
    };
    match activated {
        true => command.env(ACTIVATED_ENV, "1"),
        false => command.env_remove(ACTIVATED_ENV),
    };
    match oldbin {
        Some(path) => command.env(PARENT_PIDFILE_ENV, path),
        None => command.env_remove(PARENT_PIDFILE_ENV),
    };
    // The new master becomes systemd's main process and pets the watchdog in our place:
    // a `WATCHDOG_PID` naming us would tell it the watchdog is not its own.
    if std::env::var("WATCHDOG_PID").is_ok_and(|pid| pid == std::process::id().to_string()) {
        command.env_remove("WATCHDOG_PID");
    }
    let child = command
        .args(args)
        .env(FDS_ENV, list.join(","))
        .env(PARENT_ENV, std::process::id().to_string())
        // Socket activation was for us, not for the new master (its pid differs).
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .spawn();
    for fd in handed {
        set_inheritable(fd, false)?;
    }
    // Named, as nginx names it: which file was tried is the question (a `current`
    // symlink is followed again, a relative name is looked up from `dir`), so a
    // relative one is shown from where it was looked up.
    let named = |err: std::io::Error| {
        let cwd = std::env::current_dir().unwrap_or_default();
        let shown: PathBuf = in_dir(dir.unwrap_or(&cwd), runs.as_os_str())
            .components()
            .collect();
        std::io::Error::new(err.kind(), format!("running {}: {err}", shown.display()))
    };
    Ok(child.map_err(named)?.id())
}

/// `program` as found from `dir`: a path with a `/` that is relative is joined to it;
/// an absolute one, or a bare name (looked up in `PATH`), is as it was.
fn in_dir(dir: &Path, program: &std::ffi::OsStr) -> PathBuf {
    let path = Path::new(program);
    let has_slash = program.as_bytes().contains(&b'/');
    match has_slash && path.is_relative() {
        true => dir.join(path),
        false => path.to_path_buf(),
    }
}

/// True while the master that started this one (by USR2) still runs and is still our
/// parent: the upgrade is pending, and a second USR2 must wait.
pub fn parent_pending() -> bool {
    pending_parent().is_some()
}

/// Whether the master that started this one runs and has workers of its own again (a
/// rollback: HUP brought them back), so that it, not this master, serves. Not after
/// WINCH, when it has none, nor without /proc to tell.
pub fn parent_serves() -> bool {
    let Some(parent) = pending_parent() else {
        return false;
    };
    let us = std::process::id().to_string();
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"));
    children.is_ok_and(|list| list.split_whitespace().any(|pid| pid != us))
}

/// Whether process `pid` holds a descriptor of the socket whose inode is `inode` (a
/// `socket:[INODE]` link in `/proc/PID/fd`): whether a new master kept the metrics port
/// it was handed. A process that cannot be looked at is taken to hold it, as before this
/// was asked.
pub fn holds_socket(pid: i32, inode: u64) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return true;
    };
    let wanted = format!("socket:[{inode}]");
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|link| link.as_os_str() == wanted.as_str())
}

/// The master that started this one, while it runs and is still our parent, and where
/// its pidfile is while the upgrade is pending (`PIDFILE.oldbin`), if it has one.
pub fn parent_and_pidfile() -> Option<(i32, Option<PathBuf>)> {
    let pidfile = std::env::var_os(PARENT_PIDFILE_ENV).map(PathBuf::from);
    pending_parent().map(|pid| (pid, pidfile))
}

/// The master that started this one, while it runs and is still our parent.
pub fn pending_parent() -> Option<i32> {
    std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
        .filter(|&pid| nix::unistd::getppid().as_raw() == pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program named with a relative path is found from the start directory; an
    /// absolute one, or a bare name for `PATH`, is left as it was.
    #[test]
    fn a_relative_program_is_found_from_the_start_directory() {
        let dir = Path::new("/srv/app/current");
        for (program, want) in [
            ("./br-serve", "/srv/app/current/./br-serve"),
            ("bin/my-app", "/srv/app/current/bin/my-app"),
            ("/usr/bin/br-serve", "/usr/bin/br-serve"),
            ("br-serve", "br-serve"),
        ] {
            assert_eq!(in_dir(dir, program.as_ref()), Path::new(want), "{program}");
        }
    }
}
