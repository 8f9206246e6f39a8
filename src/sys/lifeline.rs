//! Noticing that the master died, three ways (design-notes §3.4).
//!
//! 1. `PR_SET_PDEATHSIG`: the kernel sends the worker SIGKILL when the master exits. It
//!    is cleared by changes of euid/egid, so it is set after any privilege drop.
//! 2. `getppid()`: if the master died before step 1 took effect, the worker has already
//!    been re-parented, and the worker checks this on each deadline sweep (4 times a second).
//! 3. The lifeline pipe: the master holds the only write end; when it dies, every
//!    worker's read end reports EOF in its event loop.
//!
//! The same object holds the pipe the other way, workers to master: a worker that wants
//! the master to look over its workers now (it asks for a successor, or has just become
//! ready to replace one) writes a byte, which wakes the master's loop. A signal would do,
//! but a worker running as `--user` may not signal a master running as root.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid, pipe2};

/// The pipes created by the master before the first fork.
pub struct Lifeline {
    read: OwnedFd,
    // Held only so that the pipe stays open while the master lives; never written.
    _write: OwnedFd,
    /// Workers to master: the master watches this end ([`Lifeline::wake_end`]).
    wake_read: OwnedFd,
    wake_write: OwnedFd,
}

/// A worker's ends of the pipes.
pub struct WorkerEnds {
    /// Reports EOF once the master is gone.
    pub lifeline: OwnedFd,
    /// A byte written here wakes the master ([`wake`]).
    pub wake: OwnedFd,
}

impl Lifeline {
    /// Creates the pipes. Every end is close-on-exec so a re-executed master (USR2) does
    /// not keep its parent's workers alive, and non-blocking.
    pub fn new() -> io::Result<Lifeline> {
        let flags = OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let (read, write) = pipe2(flags)?;
        let (wake_read, wake_write) = pipe2(flags)?;
        Ok(Lifeline {
            read,
            _write: write,
            wake_read,
            wake_write,
        })
    }

    /// In a freshly forked worker: keep the lifeline's read end and the wake-up's write
    /// end, and close our copies of the others, so the last lifeline write end dies with
    /// the master.
    pub fn into_worker_end(self) -> WorkerEnds {
        WorkerEnds {
            lifeline: self.read,
            wake: self.wake_write,
        }
    }

    /// The end the master watches for wake-ups.
    pub fn wake_end(&self) -> BorrowedFd<'_> {
        self.wake_read.as_fd()
    }

    /// Empties the wake-up pipe once its bytes have woken the master.
    pub fn drain_wakes(&self) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&self.wake_read, &mut buf), Ok(n) if n > 0) {}
    }
}

/// Wakes the master: one byte on the wake-up pipe. A full pipe already holds bytes the
/// master has yet to read, so a failed write loses nothing.
pub fn wake(end: &OwnedFd) {
    let _ = nix::unistd::write(end, &[1]);
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
