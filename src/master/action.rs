//! What a signal means to the master: a pure function, table-tested.
//!
//! The meanings are gunicorn's, because containers and systemd stop services with TERM
//! (nginx and unicorn use TERM for a quick stop and QUIT for a graceful one). Once the
//! master is stopping, most signals no longer apply: a second TERM changes nothing,
//! while INT or QUIT escalate a graceful stop into a quick one.

use signal_hook::consts::signal::*;

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
    /// TERM: stop accepting, let in-flight requests finish, exit 0.
    GracefulStop,
    /// INT, QUIT: workers exit now, then the master.
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

/// Maps a signal to an action, given the master's phase.
pub fn action_for(signal: i32, phase: Phase) -> Action {
    match (phase, signal) {
        (_, SIGCHLD) => Action::Reap,
        (_, SIGUSR1) => Action::ReopenLogs,
        (Phase::StoppingQuickly, _) => Action::Ignore,
        (_, SIGINT | SIGQUIT) => Action::QuickStop,
        (Phase::StoppingGracefully, _) => Action::Ignore,
        (Phase::Running, SIGTERM) => Action::GracefulStop,
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
        for (signal, phase, want) in cases {
            assert_eq!(
                action_for(signal, phase),
                want,
                "signal {signal} in {phase:?}"
            );
        }
    }
}
