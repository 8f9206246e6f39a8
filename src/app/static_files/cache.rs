//! The static app's small-file cache: the bytes and validators of small files served
//! recently, so that serving one again costs one `fstatat` (and one per directory on the
//! way to it) instead of `openat2`, `fstat`, `pread` and `close`.
//!
//! **Never stale.** nginx's `open_file_cache` trusts an entry for `open_file_cache_valid`
//! (60 s) without looking; here every hit is checked against the disk first. The request
//! path must name, right now, the same inode (device and number) with the same size,
//! mtime and ctime as when the bytes were read. A write, truncation, chmod, chown or
//! rename over the file changes one of those; a write moves ctime even when it keeps
//! mtime, and ctime cannot be set back from user space. One gap remains, the one Git
//! calls "racily clean": file timestamps come from a coarse clock, so a second write in
//! the same clock tick as the first leaves them unchanged. A file is therefore only
//! admitted once its ctime is [`SETTLE_SECS`] old: any later write gets a later ctime.
//!
//! **Inside the root.** Entries are made only from files that `open_beneath` opened
//! (inside the root, through no symlink, regular), read through that descriptor. A hit
//! serves those bytes only while the path still leads to that very inode, unchanged, and
//! still through no symlink (each directory on the way is checked too), so no byte of
//! another file, nor of one since moved out of the root, can come out of the cache. A miss, a changed file or an error falls through to the uncached
//! path, which decides as it always did.
//!
//! **Bounded.** Files up to [`MAX_FILE`] bytes (larger ones go out with sendfile, which
//! copies nothing), and at most `budget` bytes of contents and paths per worker (the
//! `--static-cache` setting). An insert that would pass the budget empties the cache
//! first: simpler than an eviction order, and the hot set refills it in a few requests.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use nix::fcntl::AtFlags;
use nix::sys::stat::{FileStat, SFlag, fstatat};

use super::conditional::FileInfo;

/// The largest file kept. The worker copies bodies up to this size next to their head
/// anyway (`out::COPY_LIMIT`); above it, sendfile is cheaper than a copy.
pub const MAX_FILE: u64 = 16 * 1024;
/// How old a file's ctime must be before its bytes are trusted to stay as read.
pub const SETTLE_SECS: i64 = 1;
/// What an entry costs beyond its content and path (the map slot, the validators).
const ENTRY_OVERHEAD: usize = 128;

/// Small files, by the bytes of their path below the root: `Path`'s own hash walks its
/// components, which cost a hit more than the rest of its lookup. The hasher stays the
/// keyed default: where clients can create files under the root (an upload directory),
/// names made to collide under an unkeyed one slowed every lookup of them.
#[derive(Clone)]
pub struct FileCache {
    entries: HashMap<Box<[u8]>, Entry>,
    /// Bytes held: contents, paths and [`ENTRY_OVERHEAD`] per entry.
    used: usize,
    /// The most bytes to hold; 0 turns the cache off.
    budget: usize,
}

#[derive(Clone)]
struct Entry {
    identity: Identity,
    /// The strong validator; the rest of a hit's `FileInfo` comes from `identity`.
    etag: String,
    content: Box<[u8]>,
}

/// What must be unchanged for cached bytes to still be the file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of_meta(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    // The casts only widen or reinterpret: on 64-bit Linux dev_t and ino_t are u64,
    // off_t and time_t are i64, and a regular file's size is never negative.
    #[allow(clippy::unnecessary_cast)]
    fn of_stat(stat: &FileStat) -> Identity {
        Identity {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            size: stat.st_size as u64,
            mtime: (stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime: (stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        }
    }
}

/// A file's bytes and validators, from the cache or just read into it.
pub struct Hit<'a> {
    /// The whole file.
    pub content: &'a [u8],
    /// Its validators, `last_modified` clamped to the time of this request.
    pub info: FileInfo,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCache")
            .field("entries", &self.entries.len())
            .field("used", &self.used)
            .field("budget", &self.budget)
            .finish()
    }
}

impl FileCache {
    /// A cache holding at most `budget` bytes; 0 keeps nothing.
    pub fn new(budget: usize) -> FileCache {
        FileCache {
            entries: HashMap::new(),
            used: 0,
            budget,
        }
    }

    /// The cached bytes of `relative` (below the open `root`), if the path still names the
    /// file they were read from, unchanged. A stale entry is dropped.
    pub fn get(&mut self, root: &File, relative: &Path, now: i64) -> Option<Hit<'_>> {
        let key = relative.as_os_str().as_bytes();
        let cached = self.entries.get(key)?.identity;
        let current = fstatat(root, relative, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let same = current.is_some_and(|stat| Identity::of_stat(&stat) == cached);
        if same && directories_on_the_way(root, key) {
            return self.entries.get(key).map(|entry| entry.hit(now));
        }
        self.remove(relative);
        None
    }

    /// Reads `file`, which `open_beneath` opened for `relative` and `meta` describes, into
    /// the cache and returns its bytes. `None` (serve the open file instead) when the
    /// cache is off, the file is too large or changed too recently to trust, or it
    /// changed while being read.
    pub fn admit(
        &mut self,
        relative: &Path,
        file: &File,
        meta: &Metadata,
        now: i64,
    ) -> Option<Hit<'_>> {
        let identity = Identity::of_meta(meta);
        // Whole seconds: a ctime in second `now - SETTLE_SECS` might be less than that old.
        if self.budget == 0 || identity.size > MAX_FILE || identity.ctime.0 >= now - SETTLE_SECS {
            return None;
        }
        let mut content = vec![0; identity.size as usize].into_boxed_slice();
        file.read_exact_at(&mut content, 0).ok()?;
        // A write between the fstat and the read would leave bytes that match neither.
        if Identity::of_meta(&file.metadata().ok()?) != identity {
            return None;
        }
        self.remove(relative);
        let cost = entry_cost(relative, content.len());
        if cost > self.budget {
            return None;
        }
        if self.used + cost > self.budget {
            self.entries.clear();
            self.used = 0;
        }
        self.used += cost;
        let entry = Entry {
            identity,
            etag: FileInfo::new(meta, now).etag,
            content,
        };
        let key = relative.as_os_str().as_bytes().into();
        let entry = self.entries.entry(key).insert_entry(entry);
        Some(entry.into_mut().hit(now))
    }

    fn remove(&mut self, relative: &Path) {
        if let Some(old) = self.entries.remove(relative.as_os_str().as_bytes()) {
            self.used -= entry_cost(relative, old.content.len());
        }
    }
}

impl Entry {
    /// The entry's bytes and the `FileInfo` that `FileInfo::new` would give at `now`.
    fn hit(&self, now: i64) -> Hit<'_> {
        Hit {
            content: &self.content,
            info: FileInfo {
                size: self.identity.size,
                etag: self.etag.clone(),
                last_modified: self.identity.mtime.0.min(now),
            },
        }
    }
}

/// Whether every directory between the root and `relative` is still a directory, not a
/// symlink: the entry was made through none, and a hit must not be reached through one.
/// Otherwise a directory moved out of the root (or to a hidden name) and linked back in
/// would go on serving what was cached from it, where the uncached path says 404. One
/// `fstatat` per level; a file in the root needs none.
fn directories_on_the_way(root: &File, relative: &[u8]) -> bool {
    // Each `/` ends the path of a directory on the way (the path is relative, and has
    // no empty, `.` or `..` segment: `decode_path` saw to it).
    let ends = relative.iter().enumerate().filter(|&(_, &b)| b == b'/');
    ends.map(|(end, _)| OsStr::from_bytes(&relative[..end]))
        .all(|dir| {
            fstatat(root, dir, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|stat| {
                SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
            })
        })
}

fn entry_cost(relative: &Path, content: usize) -> usize {
    relative.as_os_str().len() + content + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::static_files::tests::TempDir;
    use crate::app::static_files::{DEFAULT_CACHE_BYTES, open_beneath, unix_now};
    use std::fs;
    use std::path::PathBuf;

    /// A root with one file, `name`, holding `content`; the root open, the file's path
    /// below it, and a time far enough ahead for the file to count as settled.
    fn root_with(name: &str, content: &str) -> (TempDir, File, PathBuf, i64) {
        let tmp = TempDir::new("cache");
        fs::write(tmp.0.join(name), content).expect("write");
        let root = File::open(&tmp.0).expect("open root");
        (tmp, root, PathBuf::from(name), unix_now() + 10)
    }

    /// Opens `relative` the way the handler's fast path does and offers it to `cache`.
    fn admit(cache: &mut FileCache, root: &File, relative: &Path, now: i64) -> Option<Vec<u8>> {
        let (file, meta) = open_beneath(root, relative)?.ok()?;
        let hit = cache.admit(relative, &file, &meta, now)?;
        Some(hit.content.to_vec())
    }

    fn cached(cache: &mut FileCache, root: &File, relative: &Path, now: i64) -> Option<Vec<u8>> {
        cache
            .get(root, relative, now)
            .map(|hit| hit.content.to_vec())
    }

    #[test]
    fn a_settled_small_file_is_served_from_memory_until_it_changes() {
        let (tmp, root, rel, now) = root_with("a.txt", "hello");
        let mut cache = FileCache::new(DEFAULT_CACHE_BYTES);
        assert_eq!(cached(&mut cache, &root, &rel, now), None, "empty cache");
        assert_eq!(
            admit(&mut cache, &root, &rel, now).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(
            cached(&mut cache, &root, &rel, now).as_deref(),
            Some(&b"hello"[..])
        );

        // The validators a hit carries are the ones the file itself gives.
        let meta = fs::metadata(tmp.0.join("a.txt")).expect("stat");
        let hit = cache.get(&root, &rel, now).expect("hit");
        assert_eq!(hit.info, FileInfo::new(&meta, now));

        // A different size: a miss, and the entry is gone.
        fs::write(tmp.0.join("a.txt"), "hello, world").expect("rewrite");
        assert_eq!(cached(&mut cache, &root, &rel, now), None);
        assert!(cache.entries.is_empty());
        assert_eq!(cache.used, 0);
    }

    #[test]
    fn a_replaced_removed_or_symlinked_file_misses() {
        let (tmp, root, rel, now) = root_with("a.txt", "hello");
        let mut cache = FileCache::new(DEFAULT_CACHE_BYTES);
        let path = tmp.0.join("a.txt");
        let replace: [&dyn Fn(); 3] = [
            // Same size, new inode: a deploy that renames a new version into place.
            &|| {
                fs::write(tmp.0.join("new"), "HELLO").expect("write");
                fs::rename(tmp.0.join("new"), &path).expect("rename");
            },
            // The name now a symlink to the same bytes: the thorough path decides.
            &|| {
                fs::rename(&path, tmp.0.join("real")).expect("rename");
                std::os::unix::fs::symlink("real", &path).expect("symlink");
            },
            &|| fs::remove_file(&path).expect("remove"),
        ];
        for change in replace {
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(tmp.0.join("real"));
            fs::write(&path, "hello").expect("write");
            assert!(admit(&mut cache, &root, &rel, now).is_some());
            change();
            assert_eq!(cached(&mut cache, &root, &rel, now), None);
        }
    }

    #[test]
    fn a_directory_on_the_way_swapped_for_a_symlink_misses() {
        let (tmp, root, _, now) = root_with("a.txt", "hello");
        fs::create_dir_all(tmp.0.join("d/e")).expect("mkdir");
        fs::write(tmp.0.join("d/e/c.txt"), "cached").expect("write");
        let rel = Path::new("d/e/c.txt");
        let mut cache = FileCache::new(DEFAULT_CACHE_BYTES);
        assert!(admit(&mut cache, &root, rel, now).is_some());
        assert!(cached(&mut cache, &root, rel, now).is_some());
        // Moved out of the root with its directory, linked back in: the same inode,
        // unchanged, now reached through a symlink, at either level.
        for level in ["d/e", "d"] {
            fs::rename(tmp.0.join(level), tmp.0.join("moved")).expect("move out");
            std::os::unix::fs::symlink(tmp.0.join("moved"), tmp.0.join(level)).expect("link");
            assert_eq!(cached(&mut cache, &root, rel, now), None, "{level}");
            fs::remove_file(tmp.0.join(level)).expect("unlink");
            fs::rename(tmp.0.join("moved"), tmp.0.join(level)).expect("move back");
            assert!(admit(&mut cache, &root, rel, now).is_some());
        }
    }

    #[test]
    fn recent_large_and_unbudgeted_files_are_not_kept() {
        let (tmp, root, rel, now) = root_with("a.txt", "hello");
        // Changed within the last second (the real now): its timestamps may not move on
        // the next write.
        let real_now = unix_now();
        assert_eq!(
            admit(
                &mut FileCache::new(DEFAULT_CACHE_BYTES),
                &root,
                &rel,
                real_now
            ),
            None
        );
        assert_eq!(admit(&mut FileCache::new(0), &root, &rel, now), None);

        let big = "x".repeat(MAX_FILE as usize + 1);
        fs::write(tmp.0.join("big"), &big).expect("write");
        let mut cache = FileCache::new(DEFAULT_CACHE_BYTES);
        assert_eq!(admit(&mut cache, &root, Path::new("big"), now), None);
        fs::write(tmp.0.join("big"), &big[1..]).expect("write");
        assert!(
            admit(&mut cache, &root, Path::new("big"), now).is_some(),
            "16 KiB fits"
        );
    }

    #[test]
    fn passing_the_budget_starts_over() {
        let (tmp, root, _, now) = root_with("a", "1234");
        fs::write(tmp.0.join("b"), "5678").expect("write");
        let one = entry_cost(Path::new("a"), 4);
        let mut cache = FileCache::new(one + one / 2);
        assert!(admit(&mut cache, &root, Path::new("a"), now).is_some());
        assert!(admit(&mut cache, &root, Path::new("b"), now).is_some());
        assert_eq!(cached(&mut cache, &root, Path::new("a"), now), None);
        assert!(cached(&mut cache, &root, Path::new("b"), now).is_some());
        assert_eq!(cache.used, one);

        // A file bigger than the whole budget is refused without emptying the cache.
        fs::write(tmp.0.join("c"), "x".repeat(one)).expect("write");
        assert_eq!(admit(&mut cache, &root, Path::new("c"), now), None);
        assert!(cached(&mut cache, &root, Path::new("b"), now).is_some());
    }

    #[test]
    fn a_hit_clamps_last_modified_to_its_own_now() {
        let (tmp, root, rel, now) = root_with("a.txt", "hello");
        let future = now + 1000;
        let times = fs::FileTimes::new()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(future as u64));
        File::options()
            .write(true)
            .open(tmp.0.join("a.txt"))
            .and_then(|f| f.set_times(times))
            .expect("set mtime");
        let mut cache = FileCache::new(DEFAULT_CACHE_BYTES);
        assert!(admit(&mut cache, &root, &rel, now).is_some());
        let hit = cache.get(&root, &rel, now + 5).expect("hit");
        assert_eq!(hit.info.last_modified, now + 5);
    }
}
