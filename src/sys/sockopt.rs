//! Socket options that neither socket2 nor nix exposes, and a listener's accept queue.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::libc;
use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage, getsockname};

/// `TCP_DEFER_ACCEPT` (tcp(7)): the kernel puts a connection on the accept queue only
/// once its first data has arrived, waiting up to `seconds` for it.
///
/// This is what keeps the accept gate honest. A client such as ApacheBench opens its
/// connections first and writes the requests a moment later; without this option an
/// idle worker would accept dozens of still-silent connections in a row and then have
/// to serve them one after another while its siblings starve. With it, an accepted
/// connection has its request ready, so "accept one, serve it" holds, and connections
/// that send nothing reach a worker only when `seconds` run out (about 15 s: the kernel
/// counts in SYN-ACK retransmissions). nginx calls it `deferred`.
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
    super::check(rc)
}

/// Bytes written to a connected socket that the peer has not taken yet: for TCP, not
/// yet acknowledged (`SIOCOUTQ`, tcp(7)); for a Unix socket, not yet read (unix(7)). A
/// response can sit there for seconds after the last `write`, while the client reads it.
pub fn unsent_bytes(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut value: libc::c_int = 0;
    // SAFETY: `fd` is a live socket for the duration of the call, and SIOCOUTQ writes
    // one c_int through the pointer, which points at an initialised one of ours. (The
    // libc crate names SIOCOUTQ only by its tty twin, TIOCOUTQ, the same request.)
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut value) };
    super::check(rc)?;
    Ok(u32::try_from(value).unwrap_or(0))
}

/// A listening socket's accept queue: connections waiting for a worker, and the most it
/// holds (the backlog as the kernel applied it). TCP reports both in `TCP_INFO` (tcp(7)),
/// as `tcpi_unacked` and `tcpi_sacked` for a listener; a Unix socket through sock_diag
/// ([`super::sockdiag`]).
pub fn accept_queue(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let local: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    match local.family() {
        Some(AddressFamily::Unix) => super::sockdiag::unix_accept_queue(fd),
        _ => tcp_info(fd).map(|info| (info.tcpi_unacked, info.tcpi_sacked)),
    }
}

/// How long ago a connected TCP socket last received data, from `TCP_INFO`'s
/// `tcpi_last_data_recv` (kept in jiffies, so a few milliseconds coarse). For a request
/// that arrived whole, this is how long it has waited for a worker: in the listener's
/// accept queue, then in the worker's buffers.
pub fn since_data_received(fd: BorrowedFd<'_>) -> io::Result<Duration> {
    tcp_info(fd).map(|info| Duration::from_millis(info.tcpi_last_data_recv.into()))
}

fn tcp_info(fd: BorrowedFd<'_>) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `fd` is a live socket for the duration of the call; the kernel writes at
    // most `len` bytes into `info`, which is that long, and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::from_mut(&mut info).cast(),
            &mut len,
        )
    };
    super::check(rc).map(|()| info)
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn accept_queue_counts_connections_nobody_accepted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (queued, backlog) = accept_queue(listener.as_fd()).unwrap();
        assert_eq!(queued, 0);
        assert!(backlog > 0);
        let _clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // The handshake completes in the kernel; give it a moment, with a deadline.
        let deadline = Instant::now() + Duration::from_secs(5);
        while accept_queue(listener.as_fd()).unwrap().0 < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(accept_queue(listener.as_fd()).unwrap().0, 3);
    }

    #[test]
    fn accept_queue_counts_a_unix_listeners_connections_too() {
        let dir = std::env::temp_dir().join(format!("br-serve-sockopt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(accept_queue(listener.as_fd()).unwrap().0, 0);
        // A Unix connect is queued by the time it returns: no waiting needed.
        let _clients: Vec<UnixStream> = (0..3)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        let (queued, backlog) = accept_queue(listener.as_fd()).unwrap();
        assert_eq!(queued, 3);
        assert!(backlog >= 3, "{backlog}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn since_data_received_counts_from_the_last_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut client, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let sent = Instant::now();
        // Wait until the bytes are there, then a little longer: the age must grow.
        let mut peek = [0u8; 1];
        server.peek(&mut peek).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let age = since_data_received(server.as_fd()).unwrap();
        assert!(age >= Duration::from_millis(250), "{age:?}");
        assert!(age <= sent.elapsed() + Duration::from_millis(20), "{age:?}");
    }
}
