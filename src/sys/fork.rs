//! The one place the process forks.
//!
//! `fork(2)` copies only the calling thread. Locks held by any other thread at that
//! moment (the allocator's, stderr's, signal-hook's registry) would stay locked in the
//! child forever, so fork is only sound in a single-threaded process. The master is
//! single-threaded for its whole life (DESIGN invariant 1): it forks on every respawn,
//! TTIN, HUP and USR2, not just at start-up.
//!
//! All signals are blocked around the fork so that a signal arriving in the child before
//! it has reset its handlers cannot run the master's handler, which would write into the
//! master's self-pipe (design-notes §1.5). The child restores the mask itself, after it
//! has installed its own actions.

use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use nix::unistd::{ForkResult, Pid};

/// Exit code of a child whose body panicked.
pub const EXIT_PANIC: i32 = 70;

/// Forks. In the parent, returns the child's pid. In the child, runs `child` with the
/// signal mask the parent had (to restore once handlers are in place), then exits with
/// its return value; a panic exits with [`EXIT_PANIC`]. The child never returns into
/// the caller's frames, so no `Drop` of the master (a pidfile, a socket path) runs there.
pub fn spawn<F: FnOnce(SigSet) -> i32>(child: F) -> io::Result<Pid> {
    debug_assert!(single_threaded(), "fork from a multi-threaded process");
    // Anything buffered now would be written twice, once by each process.
    let _ = io::stdout().flush();
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )?;
    // SAFETY: the master never starts a thread (DESIGN invariant 1), and refuses to
    // start beside one (`threads`, checked at start-up and in debug builds above), so
    // the child is a complete copy of a single-threaded process and may allocate, log
    // and run an event loop (glibc supports malloc after fork in a single-threaded
    // parent). The child arm below never returns.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => {
            restore(old);
            Ok(child)
        }
        Ok(ForkResult::Child) => {
            let code = catch_unwind(AssertUnwindSafe(|| child(old))).unwrap_or(EXIT_PANIC);
            std::process::exit(code)
        }
        Err(err) => {
            restore(old);
            Err(err.into())
        }
    }
}

/// Puts back a signal mask saved by [`spawn`].
pub fn restore(mask: SigSet) {
    // Setting a mask we read a moment ago cannot fail.
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
}

/// Waits for a child started by [`spawn`] to end, and returns its exit code (128 plus
/// the signal's number if a signal ended it, as a shell says).
pub fn wait_for(child: Pid) -> io::Result<i32> {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

fn single_threaded() -> bool {
    threads() == 1
}

/// How many threads this process runs (/proc/self/task; 1 when /proc cannot tell).
/// The master checks it at start-up: a thread left running by the embedding program or
/// its preloaded application would make every fork unsound.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, Iterator::count)
}
