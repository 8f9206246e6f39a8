//! USR2: start a new master from the binary on disk, handing it the listening sockets.
//!
//! The choreography is nginx's and unicorn's (design-notes §4.2): the old master renames
//! its pidfile to `PIDFILE.oldbin` and starts the new binary with the listener
//! descriptors listed in `BR_SERVE_FDS`; the new master adopts them instead of binding,
//! so connections queued in the kernel carry over, writes its own pidfile and forks its
//! workers. Both generations serve side by side until the operator sends WINCH to the
//! old master (its workers drain), then TERM (it exits). HUP to the old master instead
//! brings its workers back: the rollback.

use std::ffi::OsString;
use std::process::Command;

use super::listeners::{FDS_ENV, Listener};
use crate::sys::fds::set_inheritable;

/// The environment variable naming the master that started this one.
pub const PARENT_ENV: &str = "BR_SERVE_PARENT";

/// Starts the new master; returns its pid. `argv` is the command line this master was
/// started with; its first element is looked up again, so a replaced binary is the one
/// that runs.
pub fn spawn_new_master(listeners: &[Listener], argv: &[OsString]) -> std::io::Result<u32> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::Error::other("empty command line"));
    };
    let fds: Vec<String> = listeners.iter().map(|l| raw(l).to_string()).collect();
    // Clearing close-on-exec is safe here: the master is single-threaded, so no other
    // exec can leak these descriptors while they are inheritable.
    for listener in listeners {
        set_inheritable(listener.fd(), true)?;
    }
    let child = Command::new(program)
        .args(args)
        .env(FDS_ENV, fds.join(","))
        .env(PARENT_ENV, std::process::id().to_string())
        // Socket activation was for us, not for the new master (its pid differs).
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .spawn();
    for listener in listeners {
        set_inheritable(listener.fd(), false)?;
    }
    Ok(child?.id())
}

fn raw(listener: &Listener) -> i32 {
    use std::os::fd::AsRawFd;
    listener.fd().as_raw_fd()
}

/// True while the master that started this one (by USR2) still runs and is still our
/// parent: the upgrade is pending, and a second USR2 must wait.
pub fn parent_pending() -> bool {
    std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
        .is_some_and(|pid| nix::unistd::getppid().as_raw() == pid)
}
