//! Writing without waiting, for the master's error log.
//!
//! The master writes its log to stderr or `--error-logfile`, which may be a pipe, a FIFO
//! or a socket read by another process (journald, Docker's log driver, a log shipper).
//! When that reader stops reading, the pipe fills and a plain write(2) blocks until it
//! reads again: a master blocked there reaps nothing, replaces no worker and acts on no
//! signal, TERM included. The workers share the same open file, so marking it
//! `O_NONBLOCK` would change their writes too (and a terminal's, shared with the shell).
//! `pwritev2(2)`'s `RWF_NOWAIT` asks for one write not to wait, leaving the file's flags
//! as they are; Linux honours it for pipes since 5.8, and for sockets as
//! `MSG_DONTWAIT`. Where it is not honoured (a terminal), `poll(2)` says whether the
//! write would wait; a regular file never does, in the sense that matters here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Writes the record `buf` to `fd` whole if its reader takes it: `WouldBlock`, with
/// nothing written, when it takes none of it now. A record it took part of (a socket's
/// reader may take some bytes, and a pipe a record longer than `PIPE_BUF`, whose pieces
/// other processes' writes may come between) is finished, waiting up to `patience` for
/// the reader; past that, `TimedOut`, the record cut short, and the caller's next one
/// must start a line of its own.
pub fn write_record(fd: BorrowedFd<'_>, buf: &[u8], patience: Duration) -> io::Result<()> {
    if is_regular(fd) {
        let mut rest = buf;
        while !rest.is_empty() {
            match nix::unistd::write(fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
        return Ok(());
    }
    let mut written = write_once(fd, buf)?;
    let deadline = Instant::now() + patience;
    while written < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let mut ready = [PollFd::new(fd, PollFlags::POLLOUT)];
        let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut ready, wait) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Err(err.into()),
        }
        match write_once(fd, &buf[written..]) {
            Ok(n) => written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Whether `fd` is a regular file, which a write never waits on for a reader and which
/// takes a record of any length whole.
fn is_regular(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// One write of `buf` that does not wait: the bytes taken (all of `buf` when it is at
/// most `PIPE_BUF`, which a pipe writes whole or not at all), or `WouldBlock`.
fn write_once(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    match write_nowait(fd, buf) {
        Err(err) if unsupported(&err) => {
            let mut ready = [PollFd::new(fd, PollFlags::POLLOUT)];
            match poll(&mut ready, PollTimeout::ZERO)? {
                0 => Err(io::ErrorKind::WouldBlock.into()),
                _ => Ok(nix::unistd::write(fd, buf)?),
            }
        }
        result => result,
    }
}

/// `pwritev2(fd, buf, -1, RWF_NOWAIT)`: at the file's position (appending, for a file
/// opened so), failing with `EAGAIN` where it would wait.
fn write_nowait(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `iov` names `buf`, which outlives the call and is only read (writev does
    // not write through `iov_base`); the descriptor is borrowed, so open.
    let n = unsafe { libc::pwritev2(fd.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Whether `pwritev2` or its flag is unknown for this file (a terminal, an older kernel).
fn unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL)
    )
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsFd;

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(5);

    /// A pipe of one page, so that records longer than it must go in pieces.
    fn small_pipe() -> (std::fs::File, std::fs::File) {
        let (read, write) = nix::unistd::pipe().expect("a pipe");
        nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).expect("resize");
        (read.into(), write.into())
    }

    /// A pipe nobody reads takes what fits, then says it would wait, where a plain write
    /// blocks; and the pipe's own flags are left alone.
    #[test]
    fn a_full_pipe_would_block_and_stays_blocking() {
        let (_read, write_end) = small_pipe();
        let line = [b'x'; 1000];
        let mut taken = 0;
        let refused = loop {
            match write_record(write_end.as_fd(), &line, PATIENCE) {
                Ok(()) => taken += line.len(),
                Err(err) => break err,
            }
            assert!(taken < 1 << 20, "a pipe that never fills");
        };
        assert_eq!(refused.kind(), io::ErrorKind::WouldBlock);
        assert!(taken >= 3000, "{taken}");
        let flags = nix::fcntl::fcntl(&write_end, nix::fcntl::FcntlArg::F_GETFL).expect("flags");
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    }

    /// A record longer than the pipe goes out whole to a reader that takes it slowly,
    /// and one the reader stops taking half-way is given up after the patience.
    #[test]
    fn a_record_begun_is_finished_or_given_up() {
        let (mut read_end, write_end) = small_pipe();
        let record = [b'r'; 10_000];
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0; 1000];
            while got.len() < 10_000 {
                std::thread::sleep(Duration::from_millis(5));
                let n = read_end.read(&mut buf).expect("read");
                got.extend_from_slice(&buf[..n]);
            }
            (got, read_end)
        });
        write_record(write_end.as_fd(), &record, PATIENCE).expect("written whole");
        let (got, _read_end) = reader.join().expect("the reader");
        assert_eq!(got, record);

        let patience = Duration::from_millis(200);
        let cut = write_record(write_end.as_fd(), &record, patience).expect_err("cut short");
        assert_eq!(cut.kind(), io::ErrorKind::TimedOut);
    }
}
