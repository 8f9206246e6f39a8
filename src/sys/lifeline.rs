//! Noticing that the master died, three ways (design-notes §3.4).
//!
//! 1. `PR_SET_PDEATHSIG`: the kernel sends the worker SIGKILL when the master exits. It
//!    is cleared by changes of euid/egid, so it is set after any privilege drop.
//! 2. `getppid()`: if the master died before step 1 took effect, the worker has already
//!    been re-parented, and the worker checks this on each deadline sweep (4 times a second).
//! 3. The lifeline pipe: the master holds the only write end; when it dies, every
//!    worker's read end reports EOF in its event loop.

use std::io;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid, pipe2};

/// The pipe created by the master before the first fork.
pub struct Lifeline {
    read: OwnedFd,
    // Held only so that the pipe stays open while the master lives; never written.
    _write: OwnedFd,
}

impl Lifeline {
    /// Creates the pipe. Both ends are close-on-exec so a re-executed master (USR2) does
    /// not keep its parent's workers alive.
    pub fn new() -> io::Result<Lifeline> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Lifeline {
            read,
            _write: write,
        })
    }

    /// In a freshly forked worker: keep the read end, close our copy of the write end,
    /// so the last write end dies with the master.
    pub fn into_worker_end(self) -> OwnedFd {
        self.read
    }
}

/// Arms `PR_SET_PDEATHSIG` and confirms the master is still our parent.
pub fn watch_parent(master: Pid) -> io::Result<bool> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    Ok(parent_is(master))
}

/// True while `master` is still this process's parent.
pub fn parent_is(master: Pid) -> bool {
    getppid() == master
}
