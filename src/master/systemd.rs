//! systemd integration, by hand (design-notes §4.3, §4.4): `sd_notify` datagrams and
//! socket activation (`LISTEN_FDS`, in `listeners`).
//!
//! The protocol is one datagram of newline-separated `KEY=VALUE` lines to the Unix socket
//! named by `$NOTIFY_SOCKET`, a path or, with a leading `@`, an abstract name. The
//! sd-notify crate cannot address abstract sockets, hence these few lines. Without
//! `NOTIFY_SOCKET` every call is a no-op, so the master calls them unconditionally.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use crate::sys::clock::monotonic_ms;

/// Where notifications go, if systemd asked for them.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `WATCHDOG_USEC`, when the watchdog is on for this process.
    watchdog_every: Option<Duration>,
    last_watchdog_ms: u64,
    last_status: String,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> Notifier {
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
        }
    }

    /// The first generation serves: `READY=1`, with our pid so that a master started by
    /// USR2 becomes systemd's main process (needs `NotifyAccess=all`).
    pub fn ready(&mut self, status: &str) {
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS={status}",
            std::process::id()
        ));
        self.last_status = status.to_string();
    }

    /// HUP started: `RELOADING=1` with the monotonic time `Type=notify-reload` requires.
    pub fn reloading(&self) {
        let usec = monotonic_ms() * 1000;
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading"
        ));
    }

    /// TERM, INT or QUIT.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    /// Free-form status, sent only when it changed.
    pub fn status(&mut self, status: &str) {
        if status != self.last_status {
            self.send(&format!("STATUS={status}"));
            self.last_status = status.to_string();
        }
    }

    /// Pets the watchdog at half its interval; the master calls this once per loop turn,
    /// so a wedged master stops petting and systemd restarts it.
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
