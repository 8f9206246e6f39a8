//! The crate's error type and the process exit codes it maps to.
//!
//! Errors here are the cold path: failing to bind, a bad flag, a configuration that does
//! not validate. HTTP errors on the hot path are a separate small type
//! ([`crate::http::HttpError`]) that maps to a status code, not to an exit code.

use std::fmt;
use std::io;
use std::process::ExitCode;

/// What made the server fail to start or stop cleanly.
#[derive(Debug)]
pub enum Error {
    /// A flag, environment variable or setting has a value we cannot use. Exit code 2.
    Usage(String),
    /// The configuration is well-formed but cannot be acted on. Exit code 1.
    Config(String),
    /// An operating-system call failed, with what we were doing at the time. Exit code 1.
    Io {
        /// What the server was doing, e.g. "binding 127.0.0.1:80".
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// The documented exit statuses of the `br-serve` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// A clean stop (including a graceful drain on SIGTERM).
    Success = 0,
    /// The server could not start or failed while running.
    Failure = 1,
    /// A bad flag or value on the command line or in the environment.
    Usage = 2,
}

impl Error {
    /// Wraps an I/O error with a description of what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The exit status this error should end the process with.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            Error::Config(_) | Error::Io { .. } => ExitStatus::Failure,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) | Error::Config(msg) => f.write_str(msg),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Prints the error the way the binary reports it and returns its exit code.
pub(crate) fn report(err: &Error) -> ExitCode {
    eprintln!("br-serve: error: {err}");
    ExitCode::from(err.exit_status() as u8)
}
