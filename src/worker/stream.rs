//! The two kinds of socket a worker serves, behind one type: TCP and Unix streams, and
//! the listeners they come from.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};

use crate::sys::epoll;
use crate::sys::sockopt::accept_queue;

/// A listening socket, inherited from the master.
pub enum Listener {
    /// TCP, IPv4 or IPv6, with the address every connection it accepts arrives at when
    /// the bind names one (`None` for 0.0.0.0 or `[::]`, where each connection's own
    /// address says which of the machine's it reached).
    Tcp(TcpListener, Option<SocketAddr>),
    /// A Unix domain socket.
    Unix(UnixListener),
}

/// A connection as accepted, with what is known of its two ends.
pub struct Accepted {
    /// The connection itself.
    pub stream: Stream,
    /// The client's address; `None` for a Unix socket.
    pub peer: Option<SocketAddr>,
    /// The address it arrived at, when the listener's bind names it.
    pub local: Option<SocketAddr>,
}

/// An accepted connection.
pub enum Stream {
    /// TCP, IPv4 or IPv6.
    Tcp(TcpStream),
    /// A Unix domain socket.
    Unix(UnixStream),
}

impl Listener {
    /// Accepts one connection: the stream, the peer's address and, when the listener
    /// knows it, the local one ([`Stream::local_addr`] asks otherwise). mio uses
    /// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`, so the new socket needs no further
    /// syscalls; TCP_NODELAY is inherited from the listener.
    pub fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l, local) => l.accept().map(|(s, peer)| Accepted {
                stream: Stream::Tcp(s),
                peer: Some(peer),
                local: *local,
            }),
            Listener::Unix(l) => l.accept().map(|(s, _)| Accepted {
                stream: Stream::Unix(s),
                peer: None,
                local: None,
            }),
        }
    }

    /// Starts watching for incoming connections, exclusively: one waiting worker wakes
    /// per arrival, not all of them ([`crate::sys::epoll`]).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        epoll::add_exclusive(registry.as_fd(), self.fd(), token.0)
    }

    /// Stops watching (this worker's epoll only; other workers are unaffected).
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        epoll::remove(registry.as_fd(), self.fd())
    }

    /// The listening socket.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l, _) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }

    /// How many connections wait in the accept queue (`sys::sockopt::accept_queue`);
    /// `None` when the kernel does not say.
    pub fn queued(&self) -> Option<u32> {
        accept_queue(self.fd()).ok().map(|(queued, _)| queued)
    }
}

impl Stream {
    /// The address the client connected to, from getsockname(2); `None` for a Unix
    /// socket, whose name tells a handler nothing an address would.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok(),
            Stream::Unix(_) => None,
        }
    }

    /// Registers for both directions once; edge-triggered events then need no
    /// re-registration as the connection moves between reading and writing.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match self {
            Stream::Tcp(s) => registry.register(s, token, interest),
            Stream::Unix(s) => registry.register(s, token, interest),
        }
    }

    /// Bytes written that the peer has not taken yet (`sockopt::unsent_bytes`); 0 when
    /// the kernel does not say.
    pub fn unsent(&self) -> u32 {
        crate::sys::sockopt::unsent_bytes(self.fd()).unwrap_or(0)
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    /// Makes the close send a reset (SO_LINGER with a zero timeout), which a client takes
    /// as an error, not as the end of an answer; also when the process ends. A Unix
    /// socket has no such signal.
    pub fn reset_on_close(&self) {
        self.set_linger(Some(std::time::Duration::ZERO));
    }

    /// Undoes [`Stream::reset_on_close`]: the close sends what is left, then a FIN.
    pub fn close_normally(&self) {
        self.set_linger(None);
    }

    fn set_linger(&self, linger: Option<std::time::Duration>) {
        if let Stream::Tcp(s) = self {
            // Failing to reset leaves a plain close: the answer looks whole, as it would
            // have before.
            let _ = socket2::SockRef::from(s).set_linger(linger);
        }
    }

    /// TCP_CORK (tcp(7)): while set, the kernel sends only full packets, so a response
    /// head and the start of a file sent with sendfile leave together instead of the
    /// head going out alone. Meaningless for Unix sockets, where it is a no-op.
    pub fn set_cork(&self, cork: bool) {
        if let Stream::Tcp(s) = self {
            // Failing to cork costs a packet, never correctness.
            let _ = socket2::SockRef::from(s).set_tcp_cork(cork);
        }
    }

    /// Whether the client has shut down its side or the connection has failed, as the
    /// kernel knows it now, not as of the last event. A zero-timeout poll(2) for
    /// POLLRDHUP (peer shut down writing; Linux, TCP and Unix sockets alike): bytes still
    /// unread do not count, so a pipelined request waiting in the buffer is no answer.
    /// POLLHUP and POLLERR are always reported, and mean gone too.
    pub fn peer_closed(&self) -> bool {
        let events = PollFlags::from_bits_retain(nix::libc::POLLRDHUP);
        let mut fds = [PollFd::new(self.fd(), events)];
        // Asked for nothing else, any event at all means the client is gone.
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    /// Whether bytes wait unread, as the kernel knows it now: a one-byte
    /// `recv(MSG_PEEK | MSG_DONTWAIT)`. Edge-triggered events are seen only at the next
    /// poll, so after a handler that ran for a while this is the only way to know what
    /// came meanwhile. The client's FIN alone is no unread byte (it reads as 0), and
    /// closing on it sends no reset.
    pub fn has_unread_input(&self) -> bool {
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        matches!(recv(self.fd().as_raw_fd(), &mut [0u8; 1], flags), Ok(n) if n > 0)
    }

    /// How long ago the client's last bytes arrived (TCP only: a Unix socket keeps no
    /// such time, and is `None`).
    pub fn since_data_received(&self) -> Option<std::time::Duration> {
        match self {
            Stream::Tcp(_) => crate::sys::sockopt::since_data_received(self.fd()).ok(),
            Stream::Unix(_) => None,
        }
    }

    /// The socket's file descriptor, for sendfile.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
