//! The error log: one line per record, `TIME [PID] [ROLE] LEVEL message`, to stderr or
//! to `--error-logfile`, which USR1 reopens.
//!
//! Several processes share the log, so each record is formatted into a buffer and written
//! with one `write` (env_logger does this), to a file opened with `O_APPEND`: lines from
//! different processes never interleave. The pid and role are process-wide values that
//! a worker changes right after fork.

use std::borrow::Cow;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::access_log::LogPath;
use crate::config::Config;
use crate::error::Error;

/// Worker number of this process; 0 means the master.
static ROLE: AtomicUsize = AtomicUsize::new(0);
/// Cached pid, so formatting a record does not cost a syscall.
static PID: AtomicU32 = AtomicU32::new(0);
/// The error log file, when there is one. A mutex because the logger must be `Sync`;
/// every process that uses it is single-threaded, so it is never contended, and no
/// thread can hold it across a fork.
static FILE: Mutex<Option<(LogPath, File)>> = Mutex::new(None);

/// Installs the logger at the configured level. Only the first call does anything, so
/// [`crate::run_main`] and [`crate::serve`] can both make sure it is done.
pub(crate) fn init(config: &Config) -> Result<(), Error> {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    set_role(0);
    if !install() {
        say_what_theirs_decides(config);
        return Ok(());
    }
    OURS.store(true, Ordering::Relaxed);
    if let Some(path) = &config.error_log {
        let log = LogPath::new(path.clone(), config);
        let file = log
            .open()
            .map_err(|e| Error::io(format!("opening --error-logfile {}", path.display()), e))?;
        *lock() = Some((log, file));
    }
    set_level(config.log_level);
    Ok(())
}

/// Installs br-serve's logger, unless the program embedding it installed one of its own
/// first (`false`). It writes to stderr until [`init`] gives it the error log file; no
/// record comes in between, as nothing else runs yet.
fn install() -> bool {
    // The logger passes everything; `log`'s global maximum filters, so that HUP can
    // change the level (`set_level`).
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Trace)
        .target(env_logger::Target::Pipe(Box::new(Writer)))
        .format(|buf, record| {
            let ts = buf.timestamp_seconds();
            let pid = PID.load(Ordering::Relaxed);
            match ROLE.load(Ordering::Relaxed) {
                0 => write!(buf, "{ts} [{pid}] [master] ")?,
                n => write!(buf, "{ts} [{pid}] [worker.{n}] ")?,
            }
            writeln!(
                buf,
                "{} {}",
                record.level(),
                one_line(record.args().to_string())
            )
        })
        .try_init()
        .is_ok()
}

/// With the program's own logger, where lines go and which are kept is its business, so
/// `--error-logfile` and `--log-level` do nothing: said once, through that logger, rather
/// than leaving a log file that stays empty.
fn say_what_theirs_decides(config: &Config) {
    let mut unused = Vec::new();
    if let Some(path) = &config.error_log {
        unused.push(format!("--error-logfile {}", path.display()));
    }
    if config.log_level != log::LevelFilter::Info {
        let level = config.log_level.as_str().to_ascii_lowercase();
        unused.push(format!("--log-level {level}"));
    }
    if !unused.is_empty() {
        log::warn!(
            "{} not used: this program installed its own logger, which decides where its \
             lines go and which are kept",
            unused.join(" and ")
        );
    }
}

/// A record's message on one line: a message may hold line breaks (a TOML parser's
/// report with its caret, a path with a newline in it), and each record must stay one
/// line, for grep and for log shippers that split on newlines. So must a systemd
/// `STATUS=`, whose protocol is a line per assignment.
pub(crate) fn one_line(text: String) -> String {
    match text.contains(['\n', '\r']) {
        true => {
            let text = text.trim_end_matches(['\n', '\r']);
            text.replace('\r', "\\r").replace('\n', "\\n")
        }
        false => text,
    }
}

/// Whether records go to `--error-logfile` (rather than stderr).
pub(crate) fn writes_to_file() -> bool {
    lock().is_some()
}

/// Whether the installed logger is ours; a program embedding br-serve may have its own,
/// whose level is its business.
static OURS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets the level below which records are dropped, in this process and in the workers it
/// forks from now on (HUP: the new generation logs at the new level). Only with our own
/// logger installed.
pub(crate) fn set_level(level: log::LevelFilter) {
    if OURS.load(Ordering::Relaxed) {
        log::set_max_level(level);
    }
}

/// Changes the level from `from` to `to` (a HUP, or its abandon), saying so in an info
/// line under whichever of the two shows it: logged before a change to a quieter level,
/// after a change to a louder one. Said always after it, the line was dropped by a
/// `warning` level just set; said always before, by the `warning` level being left.
pub(crate) fn change_level(from: log::LevelFilter, to: log::LevelFilter, what: &str) {
    if to < from {
        log::info!("{what} {to}");
    }
    set_level(to);
    if to > from {
        log::info!("{what} {to}");
    }
}

/// This worker's number, or `None` in the master ([`crate::worker_number`]).
pub(crate) fn worker_number() -> Option<usize> {
    Some(ROLE.load(Ordering::Relaxed)).filter(|&n| n > 0)
}

/// Records which process this is: 0 for the master, N for worker N. Called in the child
/// right after fork so every later line carries the worker's own pid and number.
pub(crate) fn set_role(worker: usize) {
    ROLE.store(worker, Ordering::Relaxed);
    PID.store(std::process::id(), Ordering::Relaxed);
}

/// Whether a record guarded by `last` may be written now: at most one a second, for an
/// error that every request would otherwise repeat (a worker out of descriptors, its
/// upload budget spent). `last` is the guard's own static, zero at first.
pub(crate) fn once_a_second(last: &std::sync::atomic::AtomicU64) -> bool {
    let second = crate::sys::clock::monotonic_ms() / 1000 + 1;
    last.swap(second, Ordering::Relaxed) != second
}

/// USR1: reopens the error log file, if there is one to rotate ([`LogPath::rotates`]). A
/// failure (out of descriptors, say) is logged as any record, to the file still open,
/// once the lock is let go.
pub(crate) fn reopen() {
    let failed = match lock().as_mut().filter(|(log, file)| log.rotates(file)) {
        Some((log, file)) => match log.open() {
            Ok(new) => {
                *file = new;
                None
            }
            Err(err) => Some(format!("cannot reopen {}: {err}", log.path.display())),
        },
        None => None,
    };
    if let Some(why) = failed {
        log::error!("{why}");
    }
}

/// A HUP changed `--user`: the error log file goes to `owner` ([`LogPath::hand_to`]). A
/// failure is logged once the lock is let go, as [`reopen`]'s is.
pub(crate) fn hand_to(owner: Option<nix::unistd::Uid>) {
    let failed = match lock().as_mut() {
        Some((log, file)) => log.hand_to(owner, file).err().map(|err| {
            let path = log.path.display();
            format!("cannot hand {path} to --user: {err}")
        }),
        None => None,
    };
    if let Some(why) = failed {
        log::warn!("{why}");
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<(LogPath, File)>> {
    FILE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long the master waits for its log to take the rest of a record it took part of
/// ([`crate::sys::nowait::write_record`]).
const RECORD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// A record of the master's went out only in part: the next one starts with a newline.
static TORN: AtomicBool = AtomicBool::new(false);

/// `record` as it may go to `fd`: to a pipe, a FIFO or a socket, cut to fit in one write
/// of `PIPE_BUF` bytes less one (room for a newline after a record cut short), which a
/// pipe takes whole and never interleaved with another process's, ending with
/// ` [truncated]`, by the access log's own rule ([`crate::access_log::is_pipe`]);
/// anywhere else, whole.
fn fit_for<'a>(fd: std::os::fd::BorrowedFd<'_>, record: &'a [u8]) -> Cow<'a, [u8]> {
    let most = crate::access_log::PIPE_BUF - 1;
    if record.len() <= most || !crate::access_log::is_pipe(fd) {
        return Cow::Borrowed(record);
    }
    let mut text = String::from_utf8_lossy(record)
        .trim_end_matches('\n')
        .to_string();
    crate::access_log::cut_to_fit(&mut text, most - 1);
    text.push('\n');
    Cow::Owned(text.into_bytes())
}

/// Records the master's log could not take when written, not yet reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The master, once a turn of its loop: says how many records were dropped since the
/// last report because the log's reader was not reading ([`Writer`]). A report that is
/// dropped in turn is not counted, and is made again, with the same count, at the next
/// turn: the count is cleared only once the log has taken it.
pub(crate) fn report_dropped() {
    let dropped = DROPPED.load(Ordering::Relaxed);
    if dropped == 0 {
        return;
    }
    log::warn!(
        "{dropped} error-log record(s) of the master's dropped: the log's reader was not \
         taking them (a stalled pipe or socket), and the master does not wait"
    );
    // The master is single-threaded: nothing else has counted meanwhile.
    let taken = DROPPED.load(Ordering::Relaxed) == dropped;
    DROPPED.store(if taken { 0 } else { dropped }, Ordering::Relaxed);
}

/// Where env_logger writes each formatted record. A worker writes as it always has,
/// waiting for a slow reader as for a disk (nginx's workers do too). The master does
/// not wait ([`crate::sys::nowait`]): a record its log cannot take now is dropped and
/// counted, since a master stopped in a write supervises nothing and ignores TERM.
struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::os::fd::AsFd;
        let mut file = lock();
        let stderr = std::io::stderr();
        let fd = match file.as_ref() {
            Some((_, file)) => file.as_fd(),
            None => stderr.as_fd(),
        };
        let record = fit_for(fd, buf);
        if ROLE.load(Ordering::Relaxed) != 0 {
            return match file.as_mut() {
                Some((_, file)) => file.write_all(&record),
                None => stderr.lock().write_all(&record),
            }
            .map(|()| buf.len());
        }
        let record = match TORN.swap(false, Ordering::Relaxed) {
            true => Cow::Owned([b"\n", &record[..]].concat()),
            false => record,
        };
        match crate::sys::nowait::write_record(fd, &record, RECORD_PATIENCE) {
            Ok(()) => Ok(buf.len()),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // Cut short after its first bytes went out: the next starts a line.
                TORN.store(err.kind() == ErrorKind::TimedOut, Ordering::Relaxed);
                DROPPED.fetch_add(1, Ordering::Relaxed);
                Ok(buf.len())
            }
            Err(err) => Err(err),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records a program's own logger was given.
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Theirs;

    impl log::Log for Theirs {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            let line = format!("{} {}", record.level(), record.args());
            SEEN.lock().expect("not poisoned").push(line);
        }
        fn flush(&self) {}
    }

    /// A record too long for one write to a pipe is cut to fit, at a character, with its
    /// newline; to a regular file it goes whole, as does a short one anywhere.
    #[test]
    fn a_record_is_cut_to_fit_a_pipe_only() {
        use std::os::fd::AsFd;
        let (_read, pipe) = nix::unistd::pipe().expect("a pipe");
        let file = std::fs::File::open("/proc/self/exe").expect("a regular file");
        let record = format!("{}\n", "é".repeat(3000));
        let cut = fit_for(pipe.as_fd(), record.as_bytes());
        let text = std::str::from_utf8(&cut).expect("cut at a character");
        assert!(
            text.len() < 4096 && text.ends_with("é [truncated]\n"),
            "{}",
            text.len()
        );
        assert_eq!(
            &*fit_for(file.as_fd(), record.as_bytes()),
            record.as_bytes()
        );
        assert_eq!(&*fit_for(pipe.as_fd(), b"short\n"), b"short\n");
    }

    /// A program that embeds br-serve with a logger of its own keeps its level and its
    /// destination: `serve` (and HUP) set the level only of br-serve's own logger, and
    /// `--error-logfile` is not created. Both flags are said to be unused, through that
    /// logger. The only test in this binary that installs a logger, as a process has one.
    #[test]
    fn a_program_with_its_own_logger_keeps_its_level_and_is_told() {
        log::set_boxed_logger(Box::new(Theirs)).expect("no logger yet");
        log::set_max_level(log::LevelFilter::Trace);
        let dir = std::env::temp_dir().join(format!("br-serve-logging-{}", std::process::id()));
        let path = dir.join("error.log");
        let argv = ["br-serve", "--log-level", "error", "--error-logfile"];
        let mut argv: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
        argv.push(path.clone().into());
        let config = crate::config::from_argv(argv).expect("a valid command line");
        init(&config).expect("init");
        set_level(log::LevelFilter::Error);
        assert_eq!(log::max_level(), log::LevelFilter::Trace);
        assert!(!path.exists(), "{} was created", path.display());
        let seen = SEEN.lock().expect("not poisoned").clone();
        let told = format!(
            "WARN --error-logfile {} and --log-level error not used",
            path.display()
        );
        assert!(seen.iter().any(|line| line.starts_with(&told)), "{seen:?}");
    }
}
