//! What a signal means to the master: a pure function, table-tested.
//!
//! The meanings are gunicorn's by default, because containers and systemd stop services
//! with TERM; `--signal-profile nginx` swaps TERM and QUIT, as nginx and unicorn have
//! them. Once the master is stopping, most signals no longer apply: a second graceful
//! signal changes nothing, while a quick one escalates a graceful stop.

use nix::sys::signal::Signal;
use signal_hook::consts::signal::*;

use crate::config::SignalProfile;

/// Where the master is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Serving and supervising.
    Running,
    /// Draining: workers finish in-flight requests, then the master exits.
    StoppingGracefully,
    /// Workers were told to exit now.
    StoppingQuickly,
}

/// What the master does in response to a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// TERM (QUIT for nginx): stop accepting, let in-flight requests finish, exit 0.
    GracefulStop,
    /// INT, QUIT (INT, TERM for nginx): workers exit now, then the master.
    QuickStop,
    /// HUP: re-read the configuration and roll a new generation of workers.
    Reload,
    /// TTIN: one worker more.
    ScaleUp,
    /// TTOU: one worker fewer (never below one).
    ScaleDown,
    /// USR1: reopen log files.
    ReopenLogs,
    /// USR2: re-execute the binary, handing the listeners down.
    Reexec,
    /// WINCH: stop every worker gracefully but keep the master (binary upgrade).
    StopWorkers,
    /// CHLD: reap exited children.
    Reap,
    /// Nothing to do in this phase.
    Ignore,
}

/// Maps a signal to an action, given the master's phase and the signal profile.
pub fn action_for(signal: i32, phase: Phase, profile: SignalProfile) -> Action {
    let is = |wanted: Signal| signal == wanted as i32;
    match (phase, signal) {
        (_, SIGCHLD) => Action::Reap,
        (_, SIGUSR1) => Action::ReopenLogs,
        (Phase::StoppingQuickly, _) => Action::Ignore,
        _ if Signal::try_from(signal).is_ok_and(|s| profile.is_quick(s)) => Action::QuickStop,
        (Phase::StoppingGracefully, _) => Action::Ignore,
        (Phase::Running, _) if is(profile.graceful()) => Action::GracefulStop,
        (Phase::Running, SIGHUP) => Action::Reload,
        (Phase::Running, SIGTTIN) => Action::ScaleUp,
        (Phase::Running, SIGTTOU) => Action::ScaleDown,
        (Phase::Running, SIGUSR2) => Action::Reexec,
        (Phase::Running, SIGWINCH) => Action::StopWorkers,
        (Phase::Running, _) => Action::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::Phase::*;
    use super::*;
    use crate::config::SignalProfile::{self, Gunicorn, Nginx};

    #[test]
    fn signal_table() {
        let cases = [
            // The signal table of DESIGN.md, while running.
            (SIGTERM, Running, GracefulStop),
            (SIGINT, Running, QuickStop),
            (SIGQUIT, Running, QuickStop),
            (SIGHUP, Running, Reload),
            (SIGTTIN, Running, ScaleUp),
            (SIGTTOU, Running, ScaleDown),
            (SIGUSR1, Running, ReopenLogs),
            (SIGUSR2, Running, Reexec),
            (SIGWINCH, Running, StopWorkers),
            (SIGCHLD, Running, Reap),
            (SIGPIPE, Running, Ignore),
            // Draining: a second TERM changes nothing; INT/QUIT escalate (gunicorn).
            (SIGTERM, StoppingGracefully, Ignore),
            (SIGINT, StoppingGracefully, QuickStop),
            (SIGQUIT, StoppingGracefully, QuickStop),
            (SIGHUP, StoppingGracefully, Ignore),
            (SIGTTIN, StoppingGracefully, Ignore),
            (SIGUSR2, StoppingGracefully, Ignore),
            // Children must still be reaped and logs reopened while stopping.
            (SIGCHLD, StoppingGracefully, Reap),
            (SIGUSR1, StoppingGracefully, ReopenLogs),
            (SIGCHLD, StoppingQuickly, Reap),
            (SIGINT, StoppingQuickly, Ignore),
            (SIGTERM, StoppingQuickly, Ignore),
        ];
        check(Gunicorn, &cases);
    }

    #[test]
    fn nginx_profile_swaps_term_and_quit() {
        let cases = [
            (SIGQUIT, Running, GracefulStop),
            (SIGTERM, Running, QuickStop),
            (SIGINT, Running, QuickStop),
            (SIGHUP, Running, Reload),
            (SIGWINCH, Running, StopWorkers),
            // Draining: a second QUIT changes nothing; TERM and INT escalate.
            (SIGQUIT, StoppingGracefully, Ignore),
            (SIGTERM, StoppingGracefully, QuickStop),
            (SIGINT, StoppingGracefully, QuickStop),
            (SIGQUIT, StoppingQuickly, Ignore),
            (SIGCHLD, StoppingQuickly, Reap),
        ];
        check(Nginx, &cases);
    }

    /// Asserts each (signal, phase) -> action of `cases` under `profile`.
    fn check(profile: SignalProfile, cases: &[(i32, Phase, Action)]) {
        for &(signal, phase, want) in cases {
            let got = action_for(signal, phase, profile);
            assert_eq!(got, want, "signal {signal} in {phase:?}, {profile:?}");
        }
    }
}
