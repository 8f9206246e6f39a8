//! Binding the listening sockets, once, in the master.
//!
//! Every worker inherits these sockets across fork and accepts from them directly, so
//! the kernel's accept queue is shared: a connection is not tied to any worker until an
//! idle one accepts it. The sockets are made non-blocking here, once: O_NONBLOCK lives on
//! the open file description that every process shares, so no worker may change it.

use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::config::BindAddr;
use crate::error::Error;
use crate::sys::privileges::with_umask;
use crate::worker;

/// How long the kernel holds a connection that has sent nothing before handing it to a
/// worker anyway (see `sys::sockopt::set_defer_accept`); the head timeout's default. The
/// kernel counts it in SYN-ACK retransmissions and rounds up: 10 s holds about 15 s
/// (1 + 2 + 4 + 8).
const DEFER_ACCEPT_SECS: u32 = 10;

/// A bound, listening socket owned by the master.
pub enum Listener {
    /// TCP, with the address it actually got (port 0 resolved).
    Tcp(std::net::TcpListener, SocketAddr),
    /// A Unix socket, with its path (removed when the master exits).
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// The URL printed in the ready line, the way gunicorn prints it.
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(_, addr) => format!("http://{addr}"),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// In a freshly forked worker: the same socket as a mio listener (no new fd; the
    /// path of a Unix socket stays the master's business), made non-blocking once more.
    /// The flag belongs to the socket that every worker shares: an application that
    /// cleared it (a library setting its inherited descriptors blocking) left every idle
    /// worker that lost an accept race asleep in accept(2), killed at `--timeout`, and
    /// each replacement after it. The next worker to boot now puts it right.
    pub fn into_worker(self) -> worker::Listener {
        // Should this fail, the flag stays as it is: set at bind, unless cleared since.
        let _ = match &self {
            Listener::Tcp(l, _) => l.set_nonblocking(true),
            Listener::Unix(l, _) => l.set_nonblocking(true),
        };
        match self {
            Listener::Tcp(l, addr) => {
                // `[::ffff:0.0.0.0]` is as wild as `0.0.0.0`.
                let wild = addr.ip().to_canonical().is_unspecified();
                let local = Some(addr).filter(|_| !wild);
                worker::Listener::Tcp(mio::net::TcpListener::from_std(l), local)
            }
            Listener::Unix(l, _) => worker::Listener::Unix(mio::net::UnixListener::from_std(l)),
        }
    }

    /// Whether the socket still listens: a process holding it (an application's stray
    /// `shutdown`) can end that for every process at once. Assumed so when the kernel
    /// cannot be asked.
    pub fn listens(&self) -> bool {
        nix::sys::socket::getsockopt(&self.fd(), nix::sys::socket::sockopt::AcceptConn)
            .unwrap_or(true)
    }

    /// The socket, for handing it to a new master.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l, _) => l.as_fd(),
            Listener::Unix(l, _) => l.as_fd(),
        }
    }

    /// Whether this socket is the one `bind` asks for (see [`reconcile`]).
    fn serves(&self, bind: &BindAddr) -> bool {
        match (self, bind) {
            (Listener::Tcp(_, actual), BindAddr::Tcp(wanted)) => same_address(*wanted, *actual),
            (Listener::Unix(_, path), BindAddr::Unix(wanted)) => path == wanted,
            (_, BindAddr::Fd(fd)) => self.fd().as_raw_fd() == *fd,
            _ => false,
        }
    }

    /// A Unix socket's path.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Listener::Unix(_, path) => Some(path),
            Listener::Tcp(..) => None,
        }
    }
}

/// The environment variable in which a master re-executing itself (USR2) lists the
/// listening descriptors it hands down, e.g. `3,4`.
pub const FDS_ENV: &str = "BR_SERVE_FDS";

/// Set (to `1`) beside `BR_SERVE_FDS` when the sockets handed down came from systemd
/// socket activation: they replace `--bind` in the new master too.
pub const ACTIVATED_ENV: &str = "BR_SERVE_FDS_ACTIVATED";

/// Who handed listeners down to this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The master that started this one with USR2 (`BR_SERVE_FDS`), with the sockets it
    /// bound for `--bind`.
    PreviousMaster,
    /// systemd socket activation (`LISTEN_FDS`), directly or through the masters of
    /// earlier upgrades: the sockets replace `--bind`.
    Systemd {
        /// Passed on by a previous master (USR2), not by systemd itself.
        via_upgrade: bool,
    },
}

impl Source {
    /// For the log: "Inherited 2 listener(s) from ...".
    pub fn describe(self) -> &'static str {
        match self {
            Source::PreviousMaster => "the previous master (USR2)",
            Source::Systemd { via_upgrade: true } => {
                "the previous master (USR2), systemd's sockets replacing --bind"
            }
            Source::Systemd { via_upgrade: false } => {
                "systemd socket activation (LISTEN_FDS), in place of --bind"
            }
        }
    }

    /// Whether the sockets stand in for `--bind` rather than serve it.
    pub fn replaces_bind(self) -> bool {
        matches!(self, Source::Systemd { .. })
    }

    fn variable(self) -> &'static str {
        match self {
            Source::Systemd { via_upgrade: false } => "LISTEN_FDS",
            _ => FDS_ENV,
        }
    }
}

/// The listeners handed down to us: by a master that started this one with USR2
/// (`BR_SERVE_FDS`; see [`reconcile`]), or by systemd socket activation (`LISTEN_FDS`,
/// sd_listen_fds(3): descriptors from 3, valid only when `LISTEN_PID` is our pid; they
/// replace `--bind`, and keep replacing it across upgrades). The sockets, and the
/// connections queued on them, carry over.
pub fn inherited() -> Result<Option<(Source, Vec<Listener>)>, Error> {
    let (source, fds) = match (std::env::var(FDS_ENV), systemd_fds()) {
        (Ok(list), _) => {
            let fds = parse_fd_list(&list)
                .map_err(|why| Error::Config(format!("{FDS_ENV}={list}: {why}")))?;
            match std::env::var(ACTIVATED_ENV).is_ok_and(|v| v == "1") {
                true => (Source::Systemd { via_upgrade: true }, fds),
                false => (Source::PreviousMaster, fds),
            }
        }
        (Err(_), Some(fds)) => (Source::Systemd { via_upgrade: false }, fds),
        (Err(_), None) => return Ok(None),
    };
    let owned = crate::sys::fds::adopt_all(&fds)
        .map_err(|e| Error::io(format!("adopting {}", source.variable()), e))?;
    let listeners = owned
        .into_iter()
        .map(from_fd)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((source, listeners)))
}

/// After USR2, the listeners `--bind` names now, as nginx does on a binary upgrade: each
/// address takes the handed-down socket already bound there (its queued connections
/// carry over, and `--backlog` is applied to it again), a new address is bound, and a
/// handed-down socket no longer named is closed (the old master serves on it until it
/// stops). A Unix socket's path is left: should this master fail, the old one takes over
/// again on that very socket. The file is removed by the next bind of that path.
pub fn reconcile(
    mut handed: Vec<Listener>,
    binds: &[BindAddr],
    options: BindOptions,
) -> Result<Vec<Listener>, Error> {
    let mut taken: Vec<Option<Listener>> = binds.iter().map(|_| None).collect();
    // Exact addresses first, so a port 0 ("any") cannot take a socket that an exact
    // address further down the list names.
    for any_port in [false, true] {
        for (bind, slot) in binds.iter().zip(taken.iter_mut()) {
            if slot.is_none() && is_any_port(bind) == any_port {
                let found = handed.iter().position(|l| l.serves(bind));
                *slot = found.map(|index| handed.remove(index));
            }
        }
    }
    let mut listeners = Vec::with_capacity(binds.len());
    for (bind, slot) in binds.iter().zip(taken) {
        match slot {
            Some(listener) => listeners.push(with_backlog(listener, bind, options.backlog)?),
            None => listeners.extend(bind_some(std::slice::from_ref(bind), binds, options)?),
        }
    }
    for gone in handed {
        log::info!("{} is no longer in --bind: closing it", gone.url());
    }
    Ok(listeners)
}

/// `HOST:0`: any port on that address.
fn is_any_port(bind: &BindAddr) -> bool {
    matches!(bind, BindAddr::Tcp(addr) if addr.port() == 0)
}

/// A handed-down socket with `--backlog` applied again: on a listening socket, listen(2)
/// only sets the queue's bound.
fn with_backlog(listener: Listener, bind: &BindAddr, backlog: i32) -> Result<Listener, Error> {
    SockRef::from(&listener.fd())
        .listen(backlog)
        .map_err(|e| Error::io(format!("applying --backlog to {bind}"), e))?;
    Ok(listener)
}

/// Whether a socket bound at `actual` serves an address configured as `wanted`: the
/// same one, where a wanted port 0 (any) matches whatever port the kernel chose.
pub fn same_address(wanted: SocketAddr, actual: SocketAddr) -> bool {
    wanted.ip() == actual.ip() && (wanted.port() == 0 || wanted.port() == actual.port())
}

/// `LISTEN_FDS=n` meant for this process: descriptors 3 .. 3+n.
fn systemd_fds() -> Option<Vec<RawFd>> {
    let pid = std::env::var("LISTEN_PID").ok()?.parse::<u32>().ok()?;
    let count = std::env::var("LISTEN_FDS").ok()?.parse::<RawFd>().ok()?;
    (pid == std::process::id() && count > 0).then(|| (3..3 + count).collect())
}

/// Parses `3,4,5`.
fn parse_fd_list(list: &str) -> Result<Vec<RawFd>, String> {
    list.split(',')
        .map(|fd| {
            fd.trim()
                .parse::<RawFd>()
                .map_err(|_| format!("'{fd}' is not a descriptor number"))
        })
        .collect()
}

/// Checks that an inherited descriptor is a listening stream socket, makes it
/// non-blocking and wraps it.
///
/// From a USR2 parent it is non-blocking already. From systemd it is not, unless the
/// socket unit says `NonBlocking=yes` (systemd-socket-activate never does): left
/// blocking, an idle worker would sleep in `accept` instead of its event loop, deaf to its
/// other connections and to TERM until the next client came. The flag lives on the open
/// file description shared with systemd, which does not accept on it (`Accept=no`), so
/// setting it costs systemd nothing.
pub(super) fn from_fd(fd: OwnedFd) -> Result<Listener, Error> {
    checked(Socket::from(fd)).map_err(|e| Error::io("checking an inherited listener", e))
}

fn checked(socket: Socket) -> std::io::Result<Listener> {
    if socket.r#type()? != Type::STREAM || !socket.is_listener()? {
        return Err(std::io::Error::other("not a listening stream socket"));
    }
    socket.set_cloexec(true)?;
    socket.set_nonblocking(true)?;
    let addr = socket.local_addr()?;
    if let Some(tcp) = addr.as_socket() {
        return Ok(Listener::Tcp(socket.into(), tcp));
    }
    match addr.as_pathname() {
        Some(path) => Ok(Listener::Unix(socket.into(), path.to_path_buf())),
        None => Err(std::io::Error::other("unsupported socket address")),
    }
}

/// How the master binds a `--bind` address.
#[derive(Debug, Clone, Copy)]
pub struct BindOptions {
    /// `--backlog`.
    pub backlog: i32,
    /// `--reuse-port`: SO_REUSEPORT on TCP listeners.
    pub reuse_port: bool,
    /// `--umask`, applied while a Unix socket is bound.
    pub umask: u32,
}

/// Binds every address in order (or takes it, for `fd://N`); the first failure stops
/// the start.
pub fn bind_all(binds: &[BindAddr], options: BindOptions) -> Result<Vec<Listener>, Error> {
    bind_some(binds, binds, options)
}

/// Binds `these`, some of the addresses in `all` (which decide whether `[::]` is bound
/// IPv6-only: see [`v6_only`]).
fn bind_some(
    these: &[BindAddr],
    all: &[BindAddr],
    options: BindOptions,
) -> Result<Vec<Listener>, Error> {
    let mut named = adopt_named(these)?.into_iter();
    let mut bound = Vec::with_capacity(these.len());
    for bind in these {
        match bind_one(bind, all, options, &mut named).and_then(|l| not_twice(l, &bound)) {
            Ok(listener) => bound.push(listener),
            Err(err) => {
                // The Unix sockets bound before this one go, files and all.
                let made = these
                    .iter()
                    .zip(&bound)
                    .filter(|(b, _)| matches!(b, BindAddr::Unix(_)));
                for path in made.filter_map(|(_, listener)| listener.path()) {
                    let _ = std::fs::remove_file(path);
                }
                let hint = privileged_hint(bind, &err);
                return Err(Error::io(format!("cannot listen on {bind}{hint}"), err));
            }
        }
    }
    Ok(bound)
}

/// `listener`, unless one already `bound` listens where it does: two descriptors of one
/// socket (`--bind fd://3 --bind fd://4` after a `dup`), or `--bind` beside an inherited
/// `fd://N` of the same address with `--reuse-port`. The configuration's check of
/// addresses given twice cannot see what a descriptor listens on; the ready line and the
/// metrics listed it twice, and Prometheus drops a duplicate series.
fn not_twice(listener: Listener, bound: &[Listener]) -> std::io::Result<Listener> {
    let url = listener.url();
    match bound.iter().any(|earlier| earlier.url() == url) {
        true => Err(std::io::Error::other(format!(
            "{url} is listened on already (each address is listened on once)"
        ))),
        false => Ok(listener),
    }
}

/// What to do about a port below 1024 refused to a user without the privilege to bind
/// it (`net.ipv4.ip_unprivileged_port_start`): "Permission denied" alone sent people
/// looking at file modes.
fn privileged_hint(bind: &BindAddr, err: &std::io::Error) -> &'static str {
    match bind {
        BindAddr::Tcp(addr)
            if err.kind() == std::io::ErrorKind::PermissionDenied
                && (1..1024).contains(&addr.port()) =>
        {
            " (a port below 1024 needs root or CAP_NET_BIND_SERVICE)"
        }
        _ => "",
    }
}

/// Whether `addr` is bound IPv6-only: `[::]:P` when `0.0.0.0:P` is bound too. On
/// Linux `[::]` takes IPv4 connections as well by default (`net.ipv6.bindv6only=0`),
/// so the second of the two failed with "Address already in use"; nginx binds `[::]`
/// IPv6-only always. Alone, `[::]:P` stays dual-stack, as it is under gunicorn, for
/// those who listen on both families with it.
fn v6_only(addr: SocketAddr, all: &[BindAddr]) -> bool {
    let v4_wildcard = |bind: &BindAddr| match bind {
        BindAddr::Tcp(SocketAddr::V4(v4)) => v4.ip().is_unspecified() && v4.port() == addr.port(),
        _ => false,
    };
    addr.is_ipv6() && addr.ip().is_unspecified() && addr.port() != 0 && all.iter().any(v4_wildcard)
}

/// Checks, before this process opens a file of its own, that each `fd://N` is a
/// listening socket it inherited: the error log opened first would take a number that
/// was never handed down (3, say), and the start would then fail on it for the wrong
/// reason ("not a listening socket" rather than "not open"). Nothing to check when the
/// listeners come from a previous master or systemd, which take the place of these.
pub fn check_named(binds: &[BindAddr]) -> Result<(), Error> {
    if std::env::var_os(FDS_ENV).is_some() || systemd_fds().is_some() {
        return Ok(());
    }
    named_fds(binds).try_for_each(check_one_named)
}

fn check_one_named(fd: RawFd) -> Result<(), Error> {
    crate::sys::fds::check_listening(fd)
        .map_err(|e| Error::io(format!("cannot listen on fd://{fd}"), e))
}

fn named_fds(binds: &[BindAddr]) -> impl Iterator<Item = RawFd> + '_ {
    binds.iter().filter_map(|bind| match bind {
        BindAddr::Fd(fd) => Some(*fd),
        _ => None,
    })
}

/// The `fd://N` descriptors, in order, each a listening socket taken once.
fn adopt_named(binds: &[BindAddr]) -> Result<Vec<OwnedFd>, Error> {
    let fds: Vec<RawFd> = named_fds(binds).collect();
    fds.iter().try_for_each(|&fd| check_one_named(fd))?;
    crate::sys::fds::adopt_all(&fds).map_err(|e| Error::io("cannot listen on --bind fd://", e))
}

/// Binds one address; an `fd://N` takes the next of the `named` descriptors instead.
fn bind_one(
    bind: &BindAddr,
    all: &[BindAddr],
    options: BindOptions,
    named: &mut impl Iterator<Item = OwnedFd>,
) -> std::io::Result<Listener> {
    let backlog = options.backlog;
    match bind {
        BindAddr::Tcp(addr) => {
            let socket = Socket::new(Domain::for_address(*addr), Type::STREAM, None)?;
            // Restarts must not wait out TIME_WAIT of the previous run's connections.
            socket.set_reuse_address(true)?;
            if options.reuse_port {
                socket.set_reuse_port(true)?;
            }
            // Accepted sockets inherit TCP_NODELAY from the listener on Linux, which
            // saves a setsockopt per connection; responses go out in one write anyway.
            socket.set_tcp_nodelay(true)?;
            if v6_only(*addr, all) {
                socket.set_only_v6(true)?;
            }
            socket.bind(&SockAddr::from(*addr))?;
            crate::sys::sockopt::set_defer_accept(socket.as_fd(), DEFER_ACCEPT_SECS)?;
            let listener = finish(socket, backlog)?;
            let std: std::net::TcpListener = listener.into();
            let actual = std.local_addr()?;
            Ok(Listener::Tcp(std, actual))
        }
        BindAddr::Unix(path) => {
            remove_stale_socket(path)?;
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            // bind(2) creates the file: rwxrwxrwx less `--umask` (0 by default, as in
            // gunicorn), since a proxy running as another user must be able to connect.
            let addr = SockAddr::unix(path)?;
            with_umask(options.umask, || socket.bind(&addr))?;
            let listener = finish(socket, backlog)?;
            Ok(Listener::Unix(listener.into(), path.clone()))
        }
        BindAddr::Fd(_) => match named.next() {
            Some(fd) => checked(Socket::from(fd)),
            None => Err(std::io::Error::other("descriptor not adopted")),
        },
    }
}

fn finish(socket: Socket, backlog: i32) -> std::io::Result<Socket> {
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A socket file left by a previous run that died would make bind fail; remove it, as
/// gunicorn does, but never remove anything that is not a socket, nor a socket that some
/// process still listens on: a second start on the same path would take the traffic of
/// the first, or leave it unreachable (unicorn probes the same way; nginx just fails).
fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match listened_on(path) {
            Ok(false) => std::fs::remove_file(path),
            Ok(true) => Err(Error::new(
                ErrorKind::AddrInUse,
                "another process is listening on this socket",
            )),
            Err(err) => Err(Error::new(
                err.kind(),
                format!("cannot tell whether another process listens on it: {err}"),
            )),
        },
        Ok(_) => Err(Error::new(
            ErrorKind::AlreadyExists,
            "path exists and is not a socket",
        )),
        Err(_) => Ok(()),
    }
}

/// Whether a process accepts connections on the Unix socket at `path`: a connection is
/// refused only when nobody listens. Non-blocking, so a full queue cannot stall the start
/// (it answers WouldBlock: somebody listens).
fn listened_on(path: &Path) -> std::io::Result<bool> {
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Ok(()) => Ok(true),
        Err(err) => match err.kind() {
            std::io::ErrorKind::WouldBlock => Ok(true),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => Ok(false),
            _ => Err(err),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wanted_port_of_zero_matches_any_port_on_the_address() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        // (wanted, actual) -> the socket serves the address
        let cases = [
            (("127.0.0.1:8000", "127.0.0.1:8000"), true),
            (("127.0.0.1:8000", "127.0.0.1:8001"), false),
            (("127.0.0.1:0", "127.0.0.1:41234"), true),
            (("127.0.0.2:0", "127.0.0.1:41234"), false),
            (("0.0.0.0:80", "0.0.0.0:80"), true),
            (("[::1]:0", "[::1]:80"), true),
            (("[::]:80", "0.0.0.0:80"), false),
        ];
        for ((wanted, actual), want) in cases {
            assert_eq!(
                same_address(addr(wanted), addr(actual)),
                want,
                "{wanted} {actual}"
            );
        }
    }

    fn tcp(addr: &str) -> Listener {
        let listener = std::net::TcpListener::bind(addr).unwrap();
        let actual = listener.local_addr().unwrap();
        Listener::Tcp(listener, actual)
    }

    fn addr(listener: &Listener) -> SocketAddr {
        match listener {
            Listener::Tcp(_, addr) => *addr,
            Listener::Unix(..) => panic!("a Unix socket"),
        }
    }

    fn port(listener: &Listener) -> u16 {
        addr(listener).port()
    }

    const OPTIONS: BindOptions = BindOptions {
        backlog: 16,
        reuse_port: false,
        umask: 0,
    };

    /// An exact address gets its socket though a port 0 comes first in `--bind`; a
    /// socket no longer named is closed.
    #[test]
    fn reconcile_matches_exact_addresses_before_any_port() {
        let (kept, dropped) = (tcp("127.0.0.1:0"), tcp("127.0.0.1:0"));
        let (kept_port, dropped_addr) = (port(&kept), addr(&dropped));
        let binds = [
            BindAddr::Tcp("127.0.0.2:0".parse().unwrap()),
            BindAddr::Tcp(format!("127.0.0.1:{kept_port}").parse().unwrap()),
        ];
        let got = reconcile(vec![dropped, kept], &binds, OPTIONS).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(addr(&got[0]).ip().to_string(), "127.0.0.2");
        assert_eq!(port(&got[1]), kept_port);
        assert!(std::net::TcpStream::connect(dropped_addr).is_err());
    }

    /// A Unix socket is kept by its path, and a new path is bound.
    #[test]
    fn reconcile_keeps_a_unix_socket_by_its_path() {
        let dir = std::env::temp_dir().join(format!("br-serve-reconcile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (kept, added) = (dir.join("kept.sock"), dir.join("added.sock"));
        let socket = std::os::unix::net::UnixListener::bind(&kept).unwrap();
        let handed = vec![Listener::Unix(socket, kept.clone())];
        let binds = [BindAddr::Unix(added.clone()), BindAddr::Unix(kept.clone())];
        let got = reconcile(handed, &binds, OPTIONS).unwrap();
        assert_eq!(
            (got[0].path(), got[1].path()),
            (Some(&*added), Some(&*kept))
        );
        std::os::unix::net::UnixStream::connect(&kept).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A port 0 takes what the exact addresses left, whatever the order.
    #[test]
    fn reconcile_gives_any_port_what_is_left() {
        let (first, second) = (tcp("127.0.0.1:0"), tcp("127.0.0.1:0"));
        let (first_port, second_port) = (port(&first), port(&second));
        let any = BindAddr::Tcp("127.0.0.1:0".parse().unwrap());
        let exact = BindAddr::Tcp(format!("127.0.0.1:{second_port}").parse().unwrap());
        let got = reconcile(vec![second, first], &[any, exact], OPTIONS).unwrap();
        assert_eq!([port(&got[0]), port(&got[1])], [first_port, second_port]);
    }
}
