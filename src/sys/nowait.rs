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

use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Writes `buf` to `fd` if that can be done without waiting for a reader: the bytes
/// written (all of `buf` when it is at most `PIPE_BUF`, which a pipe writes whole or
/// not at all), or `WouldBlock`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let regular =
        nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
    if regular {
        return Ok(nix::unistd::write(fd, buf)?);
    }
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
    use std::os::fd::AsFd;

    use super::*;

    /// A pipe nobody reads takes what fits, then says it would wait, where a plain write
    /// blocks; and the pipe's own flags are left alone.
    #[test]
    fn a_full_pipe_would_block_and_stays_blocking() {
        let (_read, write_end) = nix::unistd::pipe().expect("a pipe");
        let line = [b'x'; 1000];
        let mut taken = 0;
        let refused = loop {
            match write(write_end.as_fd(), &line) {
                Ok(n) => taken += n,
                Err(err) => break err,
            }
            assert!(taken < 16 << 20, "a pipe that never fills");
        };
        assert_eq!(refused.kind(), io::ErrorKind::WouldBlock);
        assert!(taken >= 4096, "{taken}");
        let flags = nix::fcntl::fcntl(&write_end, nix::fcntl::FcntlArg::F_GETFL).expect("flags");
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    }
}
