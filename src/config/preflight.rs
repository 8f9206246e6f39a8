//! What `--check-config` verifies beyond the values themselves: that the files a start
//! creates have a directory to go in, that each `fd://N` is a listening socket, and that
//! the workers (as `--user`, if given) can open the `--static` root and make files in
//! `--body-spool-dir`.
//!
//! It binds nothing and creates nothing that stays: the spool directory is tried with a
//! file that has no name, gone as it closes. The check runs beside the live server,
//! before a HUP or a restart: binding its TCP ports would collide with that server, and
//! creating its files would disturb them. So a taken TCP address, a Unix socket that another server listens
//! on, a pidfile naming a running master and a directory the server may not write to are
//! found only by a start.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::{BindAddr, Config};
use crate::app::static_files::StaticFiles;
use crate::error::Error;
use crate::worker::spool::Spool;

/// Checks what a start would open or create, as far as it can without doing so.
pub(super) fn check(config: &Config) -> Result<(), Error> {
    let access_log = config.access_log.as_deref().filter(|&p| p != "-");
    let files = [
        ("--pid", config.pidfile.as_deref()),
        ("--error-logfile", config.error_log.as_deref()),
        ("--access-logfile", access_log.map(Path::new)),
    ];
    for (flag, path) in files {
        if let Some(path) = path {
            file(path).map_err(|why| Error::Config(format!("{flag} {}: {why}", path.display())))?;
        }
    }
    if let Some(path) = &config.pidfile {
        crate::master::pidfile_replaceable(path)
            .map_err(|why| Error::Config(format!("--pid {}: {why}", path.display())))?;
    }
    for bind in &config.binds {
        listener(bind).map_err(|why| Error::Config(format!("--bind {bind}: {why}")))?;
    }
    what_workers_open(config)
}

/// What the workers will open, asked before they exist: the `--static` root and the
/// `--body-spool-dir`. Run at a start, a HUP and `--check-config`, so each stops with
/// the reason.
pub(crate) fn what_workers_open(config: &Config) -> Result<(), Error> {
    static_root_for_workers(config)?;
    spool_dir_for_workers(config)
}

/// With `--user` and `--static`: that the workers, once they are that user, can open
/// the root (and the `--static-fallback` file). Asked as them, in a child process that
/// becomes the user: the master, as root, opens what they cannot, and a root only it can
/// read made every worker fail its boot, again and again, while the master listened.
/// Run at a start, a HUP and `--check-config`, so either stops with the reason.
fn static_root_for_workers(config: &Config) -> Result<(), Error> {
    let (Some(creds), Some(root)) = (&config.credentials, &config.static_root) else {
        return Ok(());
    };
    let fallback = config.static_fallback.as_deref();
    let open = || {
        let files = StaticFiles::new(root, false)?;
        fallback.map_or(Ok(()), |path| files.with_fallback(path).map(drop))
    };
    creds.try_as_worker(open).map_err(|err| {
        Error::Config(format!(
            "--static: the workers' user ({}) cannot open it: {err}",
            creds.name
        ))
    })
}

/// As root without `--user`: warns, at start, that `--static` serves every file under
/// its root, those only root may read included. nginx drops its workers to `nobody`
/// unless told otherwise; br-serve, like gunicorn, runs them as whoever started it, so a
/// key or a `.htpasswd` left with mode 600 under the root goes to any client that asks.
pub(crate) fn static_served_as_root(config: &Config) {
    let Some(root) = &config.static_root else {
        return;
    };
    if config.credentials.is_none() && nix::unistd::geteuid().is_root() {
        log::warn!(
            "--static {}: the workers run as root, so they serve files only root may read; \
             --user drops them to a user of their own",
            root.display()
        );
    }
}

/// Where a body can be spooled (`--limit-request-body` over `--body-spool-size`): that
/// a file can be made in `--body-spool-dir`, by the master and, with `--user`, by the
/// workers' user, asked as for `--static`. Found only by an upload, a directory they
/// cannot write to would answer every large body 500.
fn spool_dir_for_workers(config: &Config) -> Result<(), Error> {
    if !config.may_spool() {
        return Ok(());
    }
    let dir = &config.body_spool_dir;
    let make = || Spool::create(dir).map(drop);
    let made = make().and_then(|()| match &config.credentials {
        Some(creds) => creds.try_as_worker(make),
        None => Ok(()),
    });
    made.map_err(|err| {
        Error::Config(format!(
            "--body-spool-dir {}: the workers cannot make files there: {err}",
            dir.display()
        ))
    })
}

/// With `--user`: warns, at start, of a log file whose directory the workers' user
/// cannot search. A USR1 has each worker open the log again by its path, as that user,
/// which then fails ("Permission denied", said only in the rotated error log), and the
/// workers go on writing to the rotated file while the master and later workers write
/// to the new one. Asked as the user, as for `--static`; a warning, since logging works
/// until the first rotation.
pub(crate) fn logs_for_workers(config: &Config) {
    let Some(creds) = &config.credentials else {
        return;
    };
    let access_log = config.access_log.as_deref().filter(|&p| p != "-");
    let logs = [
        ("--error-logfile", config.error_log.as_deref()),
        ("--access-logfile", access_log.map(Path::new)),
    ];
    for (flag, path) in logs.iter().filter_map(|(f, p)| Some((f, (*p)?))) {
        // `access.log` alone is in the current directory.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let search =
            || nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK).map_err(Into::into);
        if let Err(err) = creds.try_as_worker(search) {
            log::warn!(
                "{flag} {}: the workers' user ({}) cannot search {}: {err}. At USR1 they \
                 could not open the log again, and would go on writing to the rotated file: \
                 make the directory searchable by that user (systemd's LogsDirectory= does)",
                path.display(),
                creds.name,
                dir.display()
            );
        }
    }
}

/// A file the server creates or appends to: in a directory, and not a directory itself.
fn file(path: &Path) -> Result<(), String> {
    directory_of(path)?;
    match path.is_dir() {
        true => Err("is a directory".into()),
        false => Ok(()),
    }
}

/// A Unix socket's path must be somewhere bind(2) can create it; an `fd://N` must be an
/// open listening socket. A TCP address is not bound (see the module's note).
fn listener(bind: &BindAddr) -> Result<(), String> {
    match bind {
        BindAddr::Tcp(_) => Ok(()),
        // Not open here: it is for whoever starts the server to pass, which this check,
        // run by hand before a HUP, cannot see. Open here, it must be a listening socket.
        BindAddr::Fd(fd) if !crate::sys::fds::is_open(*fd) => Ok(()),
        BindAddr::Fd(fd) => crate::sys::fds::check_listening(*fd).map_err(|e| e.to_string()),
        BindAddr::Unix(path) => {
            directory_of(path)?;
            // A socket left there is replaced at start (or found in use); anything else
            // stops it.
            match std::fs::symlink_metadata(path) {
                Ok(meta) if !meta.file_type().is_socket() => {
                    Err("the path exists and is not a socket".into())
                }
                _ => Ok(()),
            }
        }
    }
}

/// The directory `path` would be created in exists (a bare name: the current one).
fn directory_of(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(err) => Err(format!("directory {}: {err}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn files_need_a_directory_and_must_not_be_one() {
        let dir = std::env::temp_dir().join(format!("br-serve-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (plain, socket) = (dir.join("plain"), dir.join("s.sock"));
        std::fs::write(&plain, "").unwrap();
        let _listening = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let unix = |path: &Path| BindAddr::Unix(path.to_path_buf());
        // (what, valid)
        let cases = [
            (file(&dir.join("new.pid")), true),
            (file(&plain), true),
            (file(Path::new("relative.log")), true),
            (file(&dir), false),
            (file(&plain.join("x.log")), false),
            (file(Path::new("/nonexistent/p.pid")), false),
            (listener(&unix(&dir.join("new.sock"))), true),
            (listener(&unix(&socket)), true),
            (listener(&unix(&plain)), false),
            (listener(&unix(Path::new("/nonexistent/dir/s.sock"))), false),
            (listener(&BindAddr::Fd(1000)), true), // not open here: unknowable
            (listener(&BindAddr::Fd(std::io::stdin().as_raw_fd())), false),
            (
                listener(&BindAddr::Tcp("127.0.0.1:1".parse().unwrap())),
                true,
            ),
        ];
        for (n, (got, valid)) in cases.into_iter().enumerate() {
            assert_eq!(got.is_ok(), valid, "case {n}: {got:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
