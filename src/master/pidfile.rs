//! The pidfile (`-p/--pid`): written atomically once the master listens, removed on exit
//! only if it still names us, renamed to `FILE.oldbin` while a USR2 upgrade is pending.

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::error::Error;

/// A pidfile this master wrote.
pub struct Pidfile {
    path: PathBuf,
    pid: u32,
}

/// Whether a pidfile may take the place of what is at `path`: nothing, or a regular
/// file. The pidfile is written beside it and renamed into place, then removed at exit,
/// so a device there (`--pid /dev/null`, as root) or a socket would be replaced, then
/// gone, and so would a symbolic link, whose target would never be written. Checked by
/// a start and by `--check-config`.
pub(crate) fn replaceable(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err("is a symbolic link: the pidfile \
                                                          would replace the link, not write \
                                                          where it points; name the file itself"
            .into()),
        Ok(meta) if !meta.is_file() => Err("exists and is not a regular file: it would be \
                                            replaced, and removed at exit"
            .into()),
        _ => Ok(()),
    }
}

impl Pidfile {
    /// Writes `pid` to `path`, a file of `mode` whatever the process's umask: only the
    /// master may write it, or anyone could point an operator's `kill $(cat FILE)`
    /// elsewhere. [`check_free`] has refused a pidfile naming another master; one naming
    /// a dead process, or one running another program, is stale and replaced.
    ///
    /// [`check_free`]: Pidfile::check_free
    pub fn create(path: &Path, pid: u32, mode: u32) -> Result<Pidfile, Error> {
        write_atomically(path, pid, mode)
            .map_err(|e| Error::io(format!("writing pidfile {}", path.display()), e))?;
        Ok(Pidfile {
            path: path.to_path_buf(),
            pid,
        })
    }

    /// Whether `path` is free for this master's pid: a pidfile naming a live process of
    /// this program stops the start (another master runs), and so does something there
    /// that is not a regular file. Checked before anything is
    /// bound, as gunicorn writes its pidfile before it creates its sockets: a start
    /// refused here listened on the port for a moment, and with `--reuse-port` the
    /// kernel gave it connections of the running server's that were reset as it exited.
    /// The file is read, not kept open, so no descriptor is taken before the listeners.
    pub fn check_free(path: &Path, pid: u32) -> Result<(), Error> {
        replaceable(path)
            .map_err(|why| Error::Config(format!("pidfile {}: {why}", path.display())))?;
        if let Some(other) = read_pid(path).filter(|&p| p != pid && is_alive(p)) {
            match (program_of(&other.to_string()), program_of("self")) {
                (Some(theirs), Some(ours)) if theirs != ours => log::info!(
                    "pidfile {} names process {other}, which runs {theirs}: stale, replacing it",
                    path.display()
                ),
                _ => {
                    return Err(Error::Config(format!(
                        "pidfile {} names process {other}, which is running; is {} already \
                         running?",
                        path.display(),
                        crate::program().0
                    )));
                }
            }
        }
        Ok(())
    }

    /// USR2: moves the file aside so the new master can write its own.
    pub fn move_to_oldbin(&mut self) {
        self.rename(oldbin_of(&self.path));
    }

    /// The upgrade failed: takes the original name back.
    pub fn move_back_from_oldbin(&mut self) {
        if let Some(original) = self.path.to_str().and_then(|p| p.strip_suffix(".oldbin")) {
            self.rename(PathBuf::from(original));
        }
    }

    /// Where the file is now, made absolute (from the working directory), for a new
    /// master started elsewhere.
    pub fn absolute_path(&self) -> Option<PathBuf> {
        std::path::absolute(&self.path).ok()
    }

    fn rename(&mut self, to: PathBuf) {
        match std::fs::rename(&self.path, &to) {
            Ok(()) => self.path = to,
            Err(err) => log::error!(
                "cannot rename pidfile {} to {}: {err}",
                self.path.display(),
                to.display()
            ),
        }
    }
}

impl Drop for Pidfile {
    /// Removes the file, unless another master has written its own pid there since.
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `pid` to a temporary file beside `path` and renames it over `path`, so a reader
/// never sees half a pid. The temporary file goes whatever fails: a rename onto a
/// directory fails after the write.
fn write_atomically(path: &Path, pid: u32, mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{pid}"));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        // `mode` exactly: the umask br-serve was started under would take more away.
        .and_then(|file| {
            file.set_permissions(Permissions::from_mode(mode))
                .map(|()| file)
        })
        .and_then(|mut file| file.write_all(format!("{pid}\n").as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Where a pidfile is moved while an upgrade is pending: `PIDFILE.oldbin`, as nginx names it.
fn oldbin_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".oldbin");
    PathBuf::from(name)
}

/// Removes the pidfile at `path` if it names `old`, a master that has exited (the one a
/// master started by USR2 replaced, which left its `PIDFILE.oldbin`); whether it did.
/// A file naming another process is another master's, and stays.
pub fn remove_if_names(path: &Path, old: Pid) -> bool {
    let names_old = read_pid(path).and_then(|pid| i32::try_from(pid).ok()) == Some(old.as_raw());
    names_old && std::fs::remove_file(path).is_ok()
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The file name of the program a process runs (`/proc/PROC/exe`, PROC a pid or `self`),
/// when /proc lets us read it; unreadable, the process counts as ours. A pidfile
/// outlives its process (a container restarted with the file on a volume, a host that
/// crashed) and its pid may since belong to anything: gunicorn's "Already running on PID
/// ... (or pid file is stale)" then keeps a restarted container from starting. A binary
/// replaced on disk shows as `NAME (deleted)`, which is still NAME.
fn program_of(process: &str) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{process}/exe")).ok()?;
    let name = exe.file_name()?.to_string_lossy();
    Some(name.trim_end_matches(" (deleted)").to_string())
}

/// Whether a process `pid` runs. A zombie does not: a master SIGKILLed a moment ago
/// whose parent has yet to reap it still answers signal 0.
fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists but is not ours.
    let exists = matches!(
        kill(Pid::from_raw(raw), None),
        Ok(()) | Err(nix::errno::Errno::EPERM)
    );
    exists && !is_zombie(pid)
}

/// Whether `/proc/PID/stat` says Z: the state follows the command's closing
/// parenthesis (the command itself may hold one).
fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let after = stat.rfind(')').and_then(|end| stat.get(end + 1..));
    let state = after.and_then(|rest| rest.trim_start().chars().next());
    state == Some('Z')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_pidfile_is_replaced_and_live_one_refused() {
        let dir = std::env::temp_dir().join(format!("br-serve-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.pid");
        // No process has pid i32::MAX on Linux (pid_max is at most 2^22).
        std::fs::write(&path, format!("{}\n", i32::MAX)).unwrap();
        let start = |path| {
            Pidfile::check_free(path, 4242).and_then(|()| Pidfile::create(path, 4242, 0o644))
        };
        let file = start(&path).unwrap();
        assert_eq!(read_pid(&path), Some(4242));
        drop(file);
        assert!(!path.exists());
        // This test process runs this program.
        std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
        assert!(start(&path).is_err());
        // A pid that now belongs to another program is as stale as a dead one.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(&path, format!("{}\n", other.id())).unwrap();
        let replaced = start(&path).map(|_| read_pid(&path));
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(replaced.ok(), Some(Some(4242)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A pidfile path that is a directory fails, leaving no temporary file behind.
    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("br-serve-pid-dir-{}", std::process::id()));
        let path = dir.join("app.pid");
        std::fs::create_dir_all(&path).unwrap();
        assert!(Pidfile::create(&path, 4242, 0o644).is_err());
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, ["app.pid"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn oldbin_round_trip() {
        let dir = std::env::temp_dir().join(format!("br-serve-oldbin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.pid");
        let mut file = Pidfile::create(&path, std::process::id(), 0o644).unwrap();
        file.move_to_oldbin();
        assert!(dir.join("app.pid.oldbin").exists() && !path.exists());
        file.move_back_from_oldbin();
        assert!(path.exists());
        drop(file);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A new master removes the `.oldbin` of the master it replaced, and no other.
    #[test]
    fn only_the_old_masters_oldbin_is_removed() {
        let dir = std::env::temp_dir().join(format!("br-serve-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let oldbin = dir.join("app.pid.oldbin");
        std::fs::write(&oldbin, "4242\n").unwrap();
        assert!(!remove_if_names(&oldbin, Pid::from_raw(4343)));
        assert!(oldbin.exists());
        assert!(remove_if_names(&oldbin, Pid::from_raw(4242)));
        assert!(!oldbin.exists());
        assert!(
            !remove_if_names(&oldbin, Pid::from_raw(4242)),
            "gone already"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
