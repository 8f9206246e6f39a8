//! Socket options that neither socket2 nor nix exposes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

/// `TCP_DEFER_ACCEPT` (tcp(7)): the kernel puts a connection on the accept queue only
/// once its first data has arrived, waiting up to `seconds` for it.
///
/// This is what keeps the accept gate honest. A client such as ApacheBench opens its
/// connections first and writes the requests a moment later; without this option an
/// idle worker would accept dozens of still-silent connections in a row and then have
/// to serve them one after another while its siblings starve. With it, an accepted
/// connection has its request ready, so "accept one, serve it" holds, and connections
/// that never send anything never occupy a worker at all. nginx calls it `deferred`.
pub fn set_defer_accept(fd: BorrowedFd<'_>, seconds: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is a live socket for the duration of the call; we pass a pointer to
    // an initialised c_int and its exact size, which is what TCP_DEFER_ACCEPT reads.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}
