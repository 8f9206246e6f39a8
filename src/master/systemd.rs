//! systemd integration, by hand (design-notes §4.3, §4.4): `sd_notify` datagrams and
//! socket activation (`LISTEN_FDS`, in `listeners`).
//!
//! The protocol is one datagram of newline-separated `KEY=VALUE` lines to the Unix socket
//! named by `$NOTIFY_SOCKET`, a path or, with a leading `@`, an abstract name. The
//! sd-notify crate cannot address abstract sockets, hence these few lines. Without
//! `NOTIFY_SOCKET` every call is a no-op, so the master calls them unconditionally.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use crate::logging::one_line;
use crate::sys::clock::{monotonic_ms, monotonic_us};

/// Where notifications go, if systemd asked for them.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `WATCHDOG_USEC`, when the watchdog is on for this process.
    watchdog_every: Option<Duration>,
    last_watchdog_ms: u64,
    last_status: String,
    role: Role,
}

/// What this master is to systemd, which decides what it may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The service's main process: it says everything.
    Main,
    /// Started by USR2, not serving yet: the master that started it is still the main
    /// process, and this one's status ("0 of 2 workers serving") is not the service's.
    Successor,
    /// It started a new master (USR2), or, as a new master stopped while the one that
    /// started it still runs (a rollback), gives the service back to that one. Until it
    /// serves again it says nothing but `WATCHDOG=1` and `RELOADING=1`, which a
    /// rollback's HUP is: an old master's `STOPPING=1` at the end of an upgrade would
    /// stop the unit (with `NotifyAccess=all` systemd takes it from any process of the
    /// unit).
    HandedOver,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment. A
    /// master started by USR2 (`successor`) finds no `WATCHDOG_PID` (the old master takes
    /// it out of its environment: see `reexec`), so it pets the watchdog too, from its
    /// start, but says nothing else until it serves ([`ready`](Self::ready)).
    pub fn from_env(successor: bool) -> Notifier {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .and_then(|name| match connect(&name) {
                Ok(target) => Some(target),
                Err(err) => {
                    log::warn!("NOTIFY_SOCKET={name}: {err}; not notifying systemd");
                    None
                }
            });
        let for_us =
            std::env::var("WATCHDOG_PID").map_or(true, |pid| pid == std::process::id().to_string());
        let watchdog_every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|&usec| usec > 0 && for_us)
            .map(|usec| Duration::from_micros(usec / 2));
        Notifier {
            target,
            watchdog_every,
            last_watchdog_ms: 0,
            last_status: String::new(),
            role: match successor {
                true => Role::Successor,
                false => Role::Main,
            },
        }
    }

    /// The first generation serves: `READY=1`, with our pid so that a master started by
    /// USR2 becomes systemd's main process (needs `NotifyAccess=all`).
    pub fn ready(&mut self, status: &str) {
        self.role = Role::Main;
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS={}",
            std::process::id(),
            one_line(status.to_string())
        ));
        self.last_status = status.to_string();
    }

    /// HUP started: `RELOADING=1` with the monotonic time `Type=notify-reload` requires,
    /// read now, after the signal came: systemd ignores a message stamped before it sent
    /// the signal, and `systemctl reload` then waits for its timeout.
    pub fn reloading(&self) {
        if self.role == Role::Successor {
            return;
        }
        let usec = monotonic_us();
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading"
        ));
    }

    /// A HUP failed: the workers serve on as they were, which ends the `RELOADING=1`
    /// (and hands the service back, in a rollback). Not from a successor, which sent no
    /// `RELOADING=1` and does not serve yet.
    pub fn reload_failed(&mut self, status: &str) {
        if self.role != Role::Successor {
            self.ready(status);
        }
    }

    /// Another master is, or is about to be, the service's main process (see
    /// [`Role::HandedOver`]).
    pub fn hand_over(&mut self) {
        self.role = Role::HandedOver;
    }

    /// TERM, INT or QUIT.
    pub fn stopping(&self) {
        if self.role == Role::Main {
            self.send("STOPPING=1\nSTATUS=stopping");
        }
    }

    /// Free-form status, sent only when it changed.
    pub fn status(&mut self, status: &str) {
        if self.role == Role::Main && status != self.last_status {
            self.send(&format!("STATUS={}", one_line(status.to_string())));
            self.last_status = status.to_string();
        }
    }

    /// Pets the watchdog at half its interval; the master calls this once per loop turn,
    /// so a wedged master stops petting and systemd restarts it. Every master pets it,
    /// whatever its role: during an upgrade the old master (handed over) and the new one
    /// (not serving yet) both do, since the new one may take longer than `WatchdogSec` to
    /// become ready, and a pause in between killed the whole service mid-upgrade.
    pub fn watchdog(&mut self) {
        let Some(every) = self.watchdog_every else {
            return;
        };
        let now = monotonic_ms();
        if now.saturating_sub(self.last_watchdog_ms) >= every.as_millis() as u64 {
            self.send("WATCHDOG=1");
            self.last_watchdog_ms = now;
        }
    }

    /// The longest the master may sleep and still pet the watchdog in time.
    pub fn max_sleep(&self) -> Option<Duration> {
        self.watchdog_every.map(|every| every / 2)
    }

    fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.target {
            if let Err(err) = socket.send_to_addr(message.as_bytes(), addr) {
                log::warn!("cannot notify systemd: {err}");
            }
        }
    }
}

fn connect(name: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match name.strip_prefix('@') {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name.as_bytes())?
        }
        None => SocketAddr::from_pathname(name)?,
    };
    Ok((UnixDatagram::unbound()?, addr))
}
