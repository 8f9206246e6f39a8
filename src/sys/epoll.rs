//! Watching a shared listening socket with `EPOLLEXCLUSIVE` (epoll_ctl(2), Linux 4.5),
//! which mio does not offer.
//!
//! Every worker has its own epoll instance watching the same listening sockets. Added
//! the usual way, a connection arriving wakes every idle worker; one accepts it and the
//! others find nothing and go back to sleep (the thundering herd: gunicorn#792,
//! uwsgi#115). With `EPOLLEXCLUSIVE` the kernel wakes one waiting worker per arrival,
//! and a worker busy inside a request still finds the event on its ready list when it
//! next looks. nginx uses the same flag (`accept_mutex off`, its default since 1.11.3).
//!
//! The event carries `token` in its data word, the way mio fills it, so it comes out of
//! `mio::Poll::poll` like any other event.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

/// Adds `fd` to the epoll instance `epoll` (a `mio::Registry`'s descriptor):
/// edge-triggered readability, one waiter woken per event, reported with `token`. A
/// kernel older than 4.5 refuses the flag; `fd` is then added without it.
///
/// `EPOLLEXCLUSIVE` can only be given when a descriptor is added, never changed later,
/// and mio does not know of this registration, so the descriptor is removed with
/// [`remove`] rather than through mio.
pub fn add_exclusive(epoll: BorrowedFd<'_>, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
    let edge = libc::EPOLLIN | libc::EPOLLET;
    match ctl_add(epoll, fd, edge | libc::EPOLLEXCLUSIVE, token) {
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => ctl_add(epoll, fd, edge, token),
        added => added,
    }
}

fn ctl_add(epoll: BorrowedFd<'_>, fd: BorrowedFd<'_>, flags: i32, token: usize) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: flags as u32,
        u64: token as u64,
    };
    let (epoll, fd) = (epoll.as_raw_fd(), fd.as_raw_fd());
    // SAFETY: both descriptors are live for the duration of the call (borrowed); the
    // kernel only reads `event`.
    super::check(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut event) })
}

/// Removes `fd` from the epoll instance `epoll` (this process's only; the socket stays
/// open and other processes' instances keep watching it).
pub fn remove(epoll: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let (epoll, fd) = (epoll.as_raw_fd(), fd.as_raw_fd());
    // SAFETY: as above; EPOLL_CTL_DEL ignores the event, which may be null since 2.6.9.
    super::check(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) })
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::Duration;

    use mio::{Events, Poll, Token};

    use super::*;

    /// Two instances watch one listener exclusively; a connection is reported (to one of
    /// them, at least), and a removed listener is reported to no one.
    #[test]
    fn an_exclusive_listener_reports_through_mio_and_can_be_removed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let polls = [Poll::new().unwrap(), Poll::new().unwrap()];
        for poll in &polls {
            add_exclusive(poll.registry().as_fd(), listener.as_fd(), 7).unwrap();
        }
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut seen = Vec::new();
        for mut poll in polls {
            let mut events = Events::with_capacity(4);
            poll.poll(&mut events, Some(Duration::from_secs(1)))
                .unwrap();
            seen.extend(events.iter().map(|e| e.token()));
            remove(poll.registry().as_fd(), listener.as_fd()).unwrap();
            let _another = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            assert!(events.is_empty(), "a removed listener still reports");
        }
        assert!(seen.contains(&Token(7)), "{seen:?}");
    }

    /// Where the kernel refuses the flag (before 4.5; here, because the descriptor is
    /// itself an epoll instance, which never takes it), the descriptor is added without.
    #[test]
    fn a_refused_flag_falls_back_to_a_plain_add() {
        let (outer, inner) = (Poll::new().unwrap(), Poll::new().unwrap());
        let inner_fd = inner.registry().as_fd();
        add_exclusive(outer.registry().as_fd(), inner_fd, 3).unwrap();
        // Added: a second add of the same descriptor is refused as a duplicate.
        let again = ctl_add(outer.registry().as_fd(), inner_fd, libc::EPOLLIN, 3);
        assert_eq!(again.unwrap_err().raw_os_error(), Some(libc::EEXIST));
    }
}
