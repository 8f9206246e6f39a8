//! Signal sets and dispositions for the master and for a freshly forked worker.
//!
//! Signals reach both kinds of process through `signal_hook_mio::v1_0::Signals`: the
//! handler writes a byte into a self-pipe that the process's own `mio::Poll` watches, and
//! the event loop acts on it at a safe point. The master never spawns a thread for this.
//!
//! A worker inherits the master's OS-level handlers. The signal-hook trap
//! (design-notes §1.5): unregistering an action does not restore `SIG_DFL`, and
//! registering a signal again after a raw `sigaction` reset never reinstalls the OS
//! handler. So a worker re-registers the signals it handles (the graceful stop signal,
//! TERM or QUIT as `--signal-profile` has it, and USR1) through signal-hook, gives INT and
//! the quick stop signal an immediate `_exit`, and sets the rest to their final
//! disposition with raw `sigaction`, never touching them through signal-hook again. ABRT
//! gets an action of its own once the worker knows its slot ([`crate::sys::abort_answer`]).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use signal_hook::consts::signal::*;
use signal_hook_mio::v1_0::Signals;

use crate::config::SignalProfile;
use crate::sys::clock::monotonic_ms;

/// Every signal the master acts on (DESIGN "Signals").
pub const MASTER: &[i32] = &[
    SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD,
];

/// Signals a worker ignores: they are the master's business.
const WORKER_IGNORED: &[Signal] = [
    Signal::SIGHUP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
]
.as_slice();

/// A signal's name as the logs and the operator write it: `TERM`.
pub fn name(signal: Signal) -> &'static str {
    signal.as_str().trim_start_matches("SIG")
}

/// Exit code of a worker stopped by a quick stop signal.
pub const EXIT_QUICK: i32 = 0;

/// The master's signals: a mio source that wakes its loop, plus exact counts of TTIN
/// and TTOU.
///
/// The self-pipe collapses repeated signals into one wake-up, so three quick TTINs would
/// read as one. Each delivered TTIN or TTOU therefore also bumps a counter (an atomic add
/// is async-signal-safe), and the master acts on the counts. What the count cannot see:
/// the kernel itself merges a signal sent while the same one is still pending, from its
/// sending until the master next runs on a CPU (or unblocks signals, after a fork), so a
/// burst sent back to back (a shell loop of `kill`) may count as one.
pub struct MasterSignals {
    /// Wakes the master's poll; [`Signals::pending`] says which signals arrived.
    pub source: Signals,
    ttin: Arc<AtomicUsize>,
    ttou: Arc<AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl MasterSignals {
    /// Installs the master's handlers, then unblocks every signal: a mask is inherited
    /// across exec, and a parent that had blocked TERM or HUP (a supervisor's own mask)
    /// left a master deaf to them, and its workers too; nginx clears it the same way.
    /// A signal held pending meanwhile is delivered now, to its handler.
    pub fn new() -> io::Result<MasterSignals> {
        use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
        let source = Signals::new(MASTER)?;
        let (ttin, ttou) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut ids = Vec::new();
        for (sig, counter) in [(SIGTTIN, &ttin), (SIGTTOU, &ttou)] {
            let counter = Arc::clone(counter);
            // SAFETY: the action is one atomic add: async-signal-safe, no allocation.
            let id = unsafe {
                signal_hook::low_level::register(sig, move || {
                    counter.fetch_add(1, Ordering::Relaxed);
                })
            }?;
            ids.push(id);
        }
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
        Ok(MasterSignals {
            source,
            ttin,
            ttou,
            ids,
        })
    }

    /// TTINs and TTOUs received since the last call.
    pub fn take_scaling(&self) -> (usize, usize) {
        (
            self.ttin.swap(0, Ordering::Relaxed),
            self.ttou.swap(0, Ordering::Relaxed),
        )
    }
}

impl Drop for MasterSignals {
    /// Unregisters the counters (the source unregisters itself); a worker drops the
    /// master's signals this way right after fork.
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// A worker's signals: the source its event loop watches, and a flag the graceful stop
/// signal raises too.
pub struct WorkerSignals {
    /// Delivers the graceful stop signal and USR1 to the event loop, at its next poll.
    pub source: Signals,
    /// Raised by the graceful stop signal (after its byte is in `source`'s pipe). The next
    /// poll may be seconds away, behind a batch of slow requests, while the master's
    /// `--graceful-timeout` runs; the worker looks at this between requests.
    pub stop_asked: Arc<AtomicBool>,
    /// When the graceful stop signal first came ([`monotonic_ms`]; 0 before): the
    /// master's `--graceful-timeout` runs from about then, not from when the worker,
    /// busy in a handler, got round to it.
    pub stop_sent_ms: Arc<AtomicU64>,
    /// Raised by USR1 (reopen the logs), for the worker to reopen before it writes the
    /// line of a request that was running when the signal came, not after.
    pub reopen_asked: Arc<AtomicBool>,
}

/// Whether this process is in the foreground of its controlling terminal, where every
/// resize of the terminal sends it WINCH: `cargo run` in a shell, `docker run -it`.
/// gunicorn and nginx ignore WINCH unless daemonized for this reason; br-serve never
/// daemonizes, so it asks the terminal.
pub fn resizes_send_winch() -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a serial line without carrier would hold the open.
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open("/dev/tty");
    // No controlling terminal: ENXIO.
    tty.is_ok_and(|tty| nix::unistd::tcgetpgrp(&tty) == Ok(nix::unistd::getpgrp()))
}

/// In a worker, after the master's `Signals` has been dropped and while all signals are
/// still blocked: sets every inherited disposition to what a worker wants and returns
/// the worker's own signal source, which delivers `profile`'s graceful stop signal
/// (drain) and USR1 (reopen logs) to its event loop.
pub fn reset_for_worker(profile: SignalProfile) -> io::Result<WorkerSignals> {
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // CHLD must be SIG_DFL, not SIG_IGN: ignoring it makes the kernel reap children
    // itself, which breaks `Command::wait` in application code.
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for &sig in WORKER_IGNORED {
        // SAFETY: SIG_IGN is not a Rust handler; no code of ours runs in signal context.
        unsafe { sigaction(sig, &ignore) }?;
    }
    // SAFETY: as above, SIG_DFL installs no handler.
    unsafe { sigaction(Signal::SIGCHLD, &default) }?;
    for sig in [SIGINT, profile.quick() as i32] {
        // SAFETY: the action only calls `_exit`, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, || signal_hook::low_level::exit(EXIT_QUICK))
        }?;
    }
    // Registered after `Signals::new`, so its action runs second: once the flag is up,
    // the signal is waiting in the source.
    let source = Signals::new([profile.graceful() as i32, SIGUSR1])?;
    let stop_asked = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(profile.graceful() as i32, Arc::clone(&stop_asked))?;
    let reopen_asked = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGUSR1, Arc::clone(&reopen_asked))?;
    let stop_sent_ms = Arc::new(AtomicU64::new(0));
    let sent = Arc::clone(&stop_sent_ms);
    let first = move || {
        let _ = sent.compare_exchange(0, monotonic_ms(), Ordering::Relaxed, Ordering::Relaxed);
    };
    // SAFETY: the action reads CLOCK_MONOTONIC (clock_gettime is async-signal-safe) and
    // stores to an atomic: it neither allocates nor takes a lock.
    unsafe { signal_hook::low_level::register(profile.graceful() as i32, first) }?;
    Ok(WorkerSignals {
        source,
        stop_asked,
        stop_sent_ms,
        reopen_asked,
    })
}
