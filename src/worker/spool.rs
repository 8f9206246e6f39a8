//! Request bodies too large to keep in memory. Past `--body-spool-size`, what has
//! arrived of a body goes to a temporary file in `--body-spool-dir`, and the rest is
//! written there read by read as it arrives, as nginx writes its `client_body_temp`
//! files. Once the
//! body is whole the file is mapped read-only ([`MappedFile`]), so the handler reads it
//! with [`crate::Request::body`] as it reads a body kept in memory, and an upload up to
//! `--limit-request-body` costs disk and page cache (pages the kernel may reclaim, which
//! are neither the worker's anonymous memory nor its `--max-worker-memory`) instead of
//! the worker's heap.
//!
//! The file has no name from the moment it exists (`O_TMPFILE`; where the filesystem
//! lacks it, it is created under a name of its own and unlinked at once), so nothing is
//! left on disk however the worker ends, and no other process finds it by a name to
//! shorten it and make a read of the mapping fault: only root, or the workers' own user
//! through `/proc/PID/fd`, could reach it (a reason for `--user`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::sys::pages::MappedFile;

/// When and where bodies are spooled.
#[derive(Debug)]
pub struct Spooling {
    /// `--body-spool-size`: a body over this many bytes is spooled.
    pub size: u64,
    /// `--body-spool-dir`: where the files are made.
    pub dir: PathBuf,
}

/// A body being written to its temporary file.
#[derive(Debug)]
pub struct Spool {
    file: File,
    len: u64,
}

impl Spool {
    /// A new, empty, nameless file in `dir`, readable and writable by this process alone.
    pub fn create(dir: &Path) -> io::Result<Spool> {
        let nameless = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_TMPFILE)
            .open(dir);
        let file = match nameless {
            Ok(file) => file,
            // A filesystem without O_TMPFILE (overlayfs before Linux 6.6, NFS) says so
            // with EOPNOTSUPP; a kernel older than 3.11 takes the flag for O_DIRECTORY.
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(nix::libc::EOPNOTSUPP | nix::libc::EISDIR)
                ) =>
            {
                named_then_unlinked(dir)?
            }
            Err(err) => return Err(err),
        };
        Ok(Spool { file, len: 0 })
    }

    /// Writes `bytes` at the end of the file.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The whole body, mapped for the handler to read.
    pub fn finish(self) -> io::Result<MappedFile> {
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        MappedFile::new(&self.file, len)
    }
}

/// A file created under a name no other process picks (this pid and a counter, with
/// `O_EXCL`), unlinked before anything is written to it.
fn named_then_unlinked(dir: &Path) -> io::Result<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".br-serve-body-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    );
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spooled_body_reads_back_whole_and_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("br-serve-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut spool = Spool::create(&dir).expect("a temporary file");
        spool.append(b"part one, ").expect("write");
        spool.append(b"part two").expect("write");
        assert_eq!(
            std::fs::read_dir(&dir).expect("list").count(),
            0,
            "nameless"
        );
        let body = spool.finish().expect("mapped");
        assert_eq!(&*body, b"part one, part two");
        let named = named_then_unlinked(&dir).expect("the fallback");
        drop(named);
        assert_eq!(
            std::fs::read_dir(&dir).expect("list").count(),
            0,
            "unlinked"
        );
        std::fs::remove_dir(&dir).expect("rmdir");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let err = Spool::create(Path::new("/nonexistent/br-serve")).expect_err("no directory");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
