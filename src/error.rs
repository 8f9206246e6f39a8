//! The crate's error type and the process exit codes it maps to.
//!
//! Errors here are the cold path: failing to bind, a bad flag, a configuration that does
//! not validate. HTTP errors on the hot path are a separate small type
//! ([`crate::http::HttpError`]) that maps to a status code, not to an exit code.

use std::fmt;
use std::io;
use std::process::ExitCode;

/// What made the server fail to start or stop cleanly.
///
/// Returned by [`serve`](crate::serve) and [`config::from_argv`](crate::config::from_argv).
/// The `Display` text is meant for a person (it names the flag, the value or the path);
/// [`exit_status`](Error::exit_status) is what a script sees.
///
/// # Examples
///
/// ```
/// use std::process::ExitCode;
///
/// use br_serve::config::from_argv;
/// use br_serve::{Error, ExitStatus};
///
/// // A value clap cannot take: a usage error, exit code 2.
/// let err = from_argv(vec!["my-app".into(), "--workers".into(), "many".into()]).unwrap_err();
/// assert!(matches!(err, Error::Usage(_)));
/// assert!(err.to_string().contains("--workers"));
/// assert_eq!(err.exit_status(), ExitStatus::Usage);
///
/// // A well-formed setting that cannot be acted on: exit code 1.
/// let err = from_argv(vec!["my-app".into(), "--static".into(), "no/such/dir".into()]).unwrap_err();
/// assert!(matches!(err, Error::Config(_)));
/// assert_eq!(err.exit_status(), ExitStatus::Failure);
///
/// // How the `br-serve` binary ends on an error:
/// eprintln!("my-app: error: {err}");
/// let code = ExitCode::from(err.exit_status());
/// # let _ = code;
/// ```
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
///
/// The discriminants are the codes, so `status as u8` gives the byte for
/// [`ExitCode::from`](std::process::ExitCode::from). (Worker processes end with codes of
/// their own, which only the master reads.)
///
/// # Examples
///
/// ```
/// use br_serve::ExitStatus;
///
/// assert_eq!(ExitStatus::Success as u8, 0);
/// assert_eq!(ExitStatus::Failure as u8, 1);
/// assert_eq!(ExitStatus::Usage as u8, 2);
/// ```
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
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The exit status this error should end the process with: [`ExitStatus::Usage`] for
    /// [`Error::Usage`], [`ExitStatus::Failure`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    ///
    /// use br_serve::{Error, ExitStatus};
    ///
    /// let busy = Error::Io {
    ///     context: "binding 127.0.0.1:80".into(),
    ///     source: io::Error::from(io::ErrorKind::AddrInUse),
    /// };
    /// assert_eq!(busy.exit_status(), ExitStatus::Failure);
    /// assert_eq!(Error::Usage("--workers: not a number".into()).exit_status(), ExitStatus::Usage);
    /// ```
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            Error::Config(_) | Error::Io { .. } => ExitStatus::Failure,
        }
    }

    /// Reports the error as the binary does, and returns its exit code: on stderr, as
    /// `PROGRAM: error: ...` (the name given to [`identify_as`](crate::identify_as)),
    /// and with `--error-logfile` in the log too, where the operator reads why a server
    /// failed to start (a port in use). For a program that calls
    /// [`serve`](crate::serve), whose errors are its own to report.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::process::ExitCode;
    ///
    /// let err = br_serve::config::from_argv(vec!["my-app".into(), "-w".into(), "none".into()])
    ///     .unwrap_err();
    /// // Prints "my-app: error: invalid value 'none' for '--workers <INT>': ..."
    /// assert_eq!(err.report(), ExitCode::from(2));
    /// ```
    pub fn report(&self) -> ExitCode {
        if crate::logging::writes_to_file() {
            log::error!("{self}");
        }
        crate::say(
            std::io::stderr(),
            &format!("{}: error: {self}\n", crate::program().0),
        );
        ExitCode::from(self.exit_status())
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

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status as u8)
    }
}
