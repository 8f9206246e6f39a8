//! Dropping privileges in a worker (`-u/--user`, `-g/--group`, `--initgroups`).
//!
//! The master keeps its privileges so it can bind port 80 and re-execute itself; each
//! worker gives them up right after fork, before it touches a client. The order matters:
//! supplementary groups and the gid while still root, the uid last. `PR_SET_PDEATHSIG`
//! is cleared by a credential change, so the worker arms it after this (see
//! [`super::lifeline`]).

use std::ffi::CString;
use std::io;

use nix::unistd::{Gid, Group, Uid, User, geteuid, initgroups, setgid, setgroups, setuid};

/// Who the workers run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (for initgroups) or the number as text.
    pub name: String,
    /// The user id.
    pub uid: Uid,
    /// The group id.
    pub gid: Gid,
    /// Take the user's supplementary groups (`--initgroups`) instead of none.
    pub initgroups: bool,
}

impl Credentials {
    /// Resolves `--user` (a name or number) and `--group` (a name or number; default:
    /// the user's primary group), and checks that we may switch to them. A uid with no
    /// passwd entry has no primary group, so it needs `--group`: falling back to the
    /// master's own gid would run the workers in root's group.
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
        initgroups: bool,
    ) -> Result<Option<Credentials>, String> {
        if user.is_none() && group.is_none() {
            return Ok(None);
        }
        let (name, uid, primary) = match user {
            Some(user) => lookup_user(user)?,
            None => (String::new(), geteuid(), None),
        };
        let gid = match (group, primary) {
            (Some(group), _) => lookup_group(group)?,
            (None, Some(gid)) => gid,
            // Without --user there is a --group (or nothing to resolve, above).
            (None, None) => {
                return Err(format!(
                    "--user {name} has no passwd entry, so no primary group: give --group too"
                ));
            }
        };
        let changes = uid != geteuid() || gid != nix::unistd::getegid();
        if changes && !geteuid().is_root() {
            return Err(format!(
                "switching workers to uid {uid} gid {gid} needs {} to start as root",
                crate::program().0
            ));
        }
        Ok(Some(Credentials {
            name,
            uid,
            gid,
            initgroups,
        }))
    }

    /// In a worker: become this user, for good. An error names the call and the ids
    /// (a user namespace without them mapped, as in some rootless containers, refuses
    /// what the start could not foresee).
    pub fn drop_privileges(&self) -> io::Result<()> {
        let (uid, gid) = (self.uid, self.gid);
        let failed =
            |call: String| move |err: nix::errno::Errno| io::Error::other(format!("{call}: {err}"));
        if geteuid().is_root() {
            match (self.initgroups, CString::new(self.name.clone())) {
                (true, Ok(name)) if !self.name.is_empty() => initgroups(&name, gid)
                    .map_err(failed(format!("initgroups({}, gid {gid})", self.name)))?,
                _ => setgroups(&[gid]).map_err(failed(format!("setgroups([gid {gid}])")))?,
            }
        }
        setgid(gid).map_err(failed(format!("setgid({gid})")))?;
        setuid(uid).map_err(failed(format!("setuid({uid})")))?;
        Ok(())
    }

    /// Whether a worker, once it is this user, will be able to do `probe` (open the
    /// `--static` root, say): asked of the kernel in a child that drops privileges as a
    /// worker does, since mode bits alone would miss supplementary groups, ACLs and
    /// security modules. The child writes its error to a pipe. `Ok` without asking when
    /// this process is that user already, or is not alone (fork is only sound
    /// single-threaded: see [`super::fork`]).
    pub fn try_as_worker(&self, probe: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        use std::io::Read;
        if geteuid() == self.uid || super::fork::threads() > 1 {
            return Ok(());
        }
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let writer = &write_end;
        let child = super::fork::spawn(|_mask| {
            match self.drop_privileges().and_then(|()| probe()) {
                Ok(()) => 0,
                Err(err) => {
                    // One write: a message this short fits the pipe whole.
                    let _ = nix::unistd::write(writer, err.to_string().as_bytes());
                    1
                }
            }
        })?;
        drop(write_end);
        let mut why = Vec::new();
        // Until the child exits (and so closes its end); a failed read leaves `why` short.
        let _ = std::fs::File::from(read_end).read_to_end(&mut why);
        match super::fork::wait_for(child)? {
            0 => Ok(()),
            code if why.is_empty() => Err(io::Error::other(format!("exit code {code}"))),
            _ => Err(io::Error::other(String::from_utf8_lossy(&why).into_owned())),
        }
    }
}

/// With `--user`: gives a log file the master opened (and may have just created, as
/// root) to the workers' user, who reopen it on USR1. Only the owner changes, as nginx
/// does it, so a group that log shippers read through (logrotate's `create 0640 app adm`)
/// stays; and only a regular file: `/dev/null` or the terminal behind `/dev/stdout` are
/// not the server's to give away. Through the descriptor, not the path, which may have
/// been replaced since it was opened. Only root gives: a worker reopening the file has
/// nothing to give.
pub fn give_log_file(file: &std::fs::File, uid: Uid) -> io::Result<()> {
    use nix::sys::stat::{SFlag, fstat};
    let stat = fstat(file)?;
    let regular = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    if regular && stat.st_uid != uid.as_raw() && geteuid().is_root() {
        nix::unistd::fchown(file, Some(uid), None)?;
    }
    Ok(())
}

/// `(uid_t)-1` and `(gid_t)-1`: to setresuid(2) and setresgid(2) "leave unchanged", not
/// an id anyone can be.
const NO_ID: u32 = u32::MAX;

fn lookup_user(user: &str) -> Result<(String, Uid, Option<Gid>), String> {
    if user.parse::<u32>() == Ok(NO_ID) {
        return Err(format!("--user {user} is (uid_t)-1, which is no user id"));
    }
    let found = match user.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(user),
    };
    match found {
        Ok(Some(u)) => Ok((u.name, u.uid, Some(u.gid))),
        // A numeric uid without a passwd entry is still a valid uid to run as.
        Ok(None) if user.parse::<u32>().is_ok() => Ok((
            user.to_string(),
            Uid::from_raw(user.parse().unwrap_or(0)),
            None,
        )),
        Ok(None) => Err(format!("--user {user}: no such user")),
        Err(err) => Err(format!("--user {user}: cannot look it up: {err}")),
    }
}

fn lookup_group(group: &str) -> Result<Gid, String> {
    if let Ok(n) = group.parse::<u32>() {
        if n == NO_ID {
            return Err(format!(
                "--group {group} is (gid_t)-1, which is no group id"
            ));
        }
        return Ok(Gid::from_raw(n));
    }
    match Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(format!("--group {group}: no such group")),
        Err(err) => Err(format!("--group {group}: cannot look it up: {err}")),
    }
}

/// Parses `--umask`: octal, with or without a leading `0` or `0o` (gunicorn accepts
/// `0o22`, `022` and `18` as decimal; we take octal, as every shell does).
pub fn parse_umask(value: &str) -> Result<u32, String> {
    let value = value.trim();
    let digits = value.strip_prefix("0o").unwrap_or(value);
    match u32::from_str_radix(digits, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err("expected an octal mask such as 022".into()),
    }
}

/// Runs `create` under the umask `mask`, then puts the process's own umask back, as
/// gunicorn does around binding a Unix socket: `--umask` shapes what the server creates,
/// while the application keeps the umask the server was started with. The umask is
/// process-wide, so this is for the master while it is single-threaded.
pub fn with_umask<T>(mask: u32, create: impl FnOnce() -> T) -> T {
    use nix::sys::stat::{Mode, umask};
    let own = umask(Mode::from_bits_truncate(mask));
    let created = create();
    umask(own);
    created
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_forms() {
        let cases = [
            ("022", Ok(0o22)),
            ("0o027", Ok(0o27)),
            ("0", Ok(0)),
            ("777", Ok(0o777)),
            ("8", Err(())),
            ("1000", Err(())),
            // The prefix is taken once.
            ("0o0o22", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_umask(input).map_err(|_| ()), want, "{input}");
        }
    }

    #[test]
    fn users_resolve() {
        let root = Credentials::resolve(Some("root"), None, false);
        assert!(root.is_ok(), "{root:?}");
        assert!(Credentials::resolve(Some("no-such-user-br-serve"), None, false).is_err());
        assert!(Credentials::resolve(None, Some("no-such-group-br-serve"), false).is_err());
        assert_eq!(Credentials::resolve(None, None, false), Ok(None));
        // (uid_t)-1 and (gid_t)-1 are "no change" to the kernel, not ids.
        let minus_one = Credentials::resolve(Some("4294967295"), Some("1"), false);
        assert!(minus_one.is_err_and(|why| why.contains("(uid_t)-1")));
        let minus_one = Credentials::resolve(None, Some("4294967295"), false);
        assert!(minus_one.is_err_and(|why| why.contains("(gid_t)-1")));
    }

    /// A uid without a passwd entry has no primary group: it takes `--group`, never the
    /// master's gid (root's group, under root).
    #[test]
    fn a_uid_without_an_entry_needs_a_group() {
        let uid = "3999999999";
        assert_eq!(User::from_uid(Uid::from_raw(3_999_999_999)), Ok(None));
        let alone = Credentials::resolve(Some(uid), None, false);
        assert!(
            alone.as_ref().is_err_and(|e| e.contains("--group")),
            "{alone:?}"
        );
        // With --group it resolves; only root may then switch to it.
        match Credentials::resolve(Some(uid), Some("3999999998"), false) {
            Ok(Some(credentials)) => assert_eq!(credentials.gid, Gid::from_raw(3_999_999_998)),
            other => assert!(!geteuid().is_root(), "{other:?}"),
        }
    }
}
