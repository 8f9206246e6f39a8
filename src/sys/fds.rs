//! File descriptors handed to us by a parent process: listening sockets passed down by a
//! master re-executing itself (USR2, `BR_SERVE_FDS`), by systemd (`LISTEN_FDS`), or by
//! any supervisor, named on the command line (`--bind fd://N`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::socket::{getsockopt, sockopt};

/// Takes ownership of an inherited descriptor after checking that it is open.
///
/// The caller must take each number at most once; `adopt_all` enforces that.
fn adopt(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is stdio"),
        ));
    }
    // SAFETY: `fd` is not ours to borrow yet, but F_GETFD only reads its flags and fails
    // with EBADF if it is not open; no ownership is taken or released.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_GETFD)?;
    // SAFETY: the descriptor is open (checked above), was handed to this process by its
    // parent for us to own, and `adopt_all` makes sure no number is adopted twice, so no
    // other owner in this process will close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adopts a list of inherited descriptors, refusing duplicates.
pub fn adopt_all(fds: &[RawFd]) -> io::Result<Vec<OwnedFd>> {
    let mut seen = Vec::with_capacity(fds.len());
    for &fd in fds {
        if seen.contains(&fd) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fd {fd} listed twice"),
            ));
        }
        seen.push(fd);
    }
    fds.iter().map(|&fd| adopt(fd)).collect()
}

/// Whether descriptor `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: as in `adopt`: F_GETFD only reads flags, fails with EBADF on a closed
    // number, and takes no ownership.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_GETFD).is_ok()
}

/// The inode of the socket behind `fd`: what `/proc/PID/fd/N` shows as `socket:[INODE]`
/// for every process holding that same socket.
pub fn socket_inode(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(nix::sys::stat::fstat(fd)?.st_ino)
}

/// Whether process `pid` holds a descriptor of the socket numbered `inode` (see
/// [`socket_inode`]); `None` when its descriptors cannot be read (no /proc, or a process
/// of another user without the right to look).
pub fn holds_socket(pid: i32, inode: u64) -> Option<bool> {
    let wanted = format!("socket:[{inode}]");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut held = false;
    for entry in fds {
        let target = std::fs::read_link(entry.ok()?.path());
        held |= target.is_ok_and(|t| t.as_os_str() == wanted.as_str());
    }
    Some(held)
}

/// Checks that a descriptor named on the command line (`--bind fd://N`) is a listening
/// socket, before `adopt_all` takes it: a wrong number must stop the start, not close a
/// descriptor this process opened for something else (its error log, say) when the
/// refused socket is dropped.
pub fn check_listening(fd: RawFd) -> io::Result<()> {
    let refuse = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_string()));
    if fd < 3 {
        return refuse("the descriptor is stdio");
    }
    if !is_open(fd) {
        return refuse("the descriptor is not open (was it inherited?)");
    }
    // SAFETY: as in `adopt`, a borrow only for a query that takes no ownership (and fails
    // with EBADF should the descriptor have been closed since).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match getsockopt(&borrowed, sockopt::AcceptConn) {
        Ok(true) => Ok(()),
        _ => refuse("the descriptor is not a listening socket"),
    }
}

/// Lets a descriptor survive `exec` (for handing listeners to a new master) or not.
pub fn set_inheritable(fd: impl AsFd, inheritable: bool) -> io::Result<()> {
    let flags = if inheritable {
        FdFlag::empty()
    } else {
        FdFlag::FD_CLOEXEC
    };
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(flags))?;
    Ok(())
}
