//! The only corner of the crate with `unsafe` code and raw process plumbing.
//!
//! Everything above this module is safe Rust. What lives here, and why it is unsafe:
//!
//! * [`fork`]: `fork(2)` is only sound while the process has one thread; the master keeps
//!   that invariant for its whole life.
//! * [`signals`]: installing async-signal-safe actions and resetting dispositions in a
//!   freshly forked worker (the signal-hook trap of design-notes §1.5).
//! * [`abort_answer`]: a worker's SIGABRT action, which answers the request its handler
//!   was running with 500 before the process dies.
//! * [`scoreboard`]: a `MAP_SHARED` anonymous mapping that the master and its workers
//!   read and write concurrently through atomics.
//! * [`pages`]: anonymous mappings of zeroes; a private one is the worker's read buffer,
//!   paid for page by page as it is touched; and read-only mappings of spooled request
//!   bodies.
//! * [`fds`]: taking ownership of descriptors a parent process handed down.
//! * [`sockopt`]: `setsockopt` and `getsockopt` for options our socket crates do not wrap.
//! * [`epoll`]: `epoll_ctl` with `EPOLLEXCLUSIVE`, which mio does not offer, so that
//!   one worker, not all of them, wakes for a new connection.
//! * [`nowait`]: one write that does not wait for a stalled reader, for the master's log.
//! * [`environ`]: `--env`, set only where no other thread can read the environment.
//!
//! [`clock`], [`lifeline`], [`cgroup`], [`privileges`] (switching a worker to
//! `--user`/`--group`) and [`sockdiag`] (a Unix listener's accept queue, from the
//! kernel's netlink interface) are safe, but they are process plumbing of the same kind,
//! so they live beside the rest.

pub mod abort_answer;
pub mod cgroup;
pub mod clock;
pub mod environ;
pub mod epoll;
pub mod fds;
pub mod fork;
pub mod lifeline;
pub mod nowait;
pub mod pages;
pub mod privileges;
pub mod scoreboard;
pub mod signals;
pub mod sockdiag;
pub mod sockopt;

/// A libc call's result by the usual convention: 0 is success, anything else failed and
/// left the reason in `errno`.
fn check(rc: nix::libc::c_int) -> std::io::Result<()> {
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}
