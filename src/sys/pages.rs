//! Zero-filled anonymous mappings: [`map_zeroed`] (the scoreboard's shared table uses it
//! too) and a private buffer whose pages the kernel supplies on first touch; a read-only
//! mapping of a file ([`MappedFile`]), through which a handler reads a request body that
//! was spooled to disk; and [`anon_resident_bytes`], a process's anonymous resident
//! pages, which is what `--max-worker-memory` limits and the metrics report.
//!
//! Each worker reads its sockets through one 64 KiB scratch buffer. Built as
//! `vec![0; 64 KiB]`, glibc's `calloc` clears it with `memset`, which faults in all 16
//! pages while the worker boots, on the path to its first response (about 120 µs of a
//! ~585 µs boot on a 2-core VM, measured with `perf record -e exceptions:page_fault_user`),
//! and keeps them resident in every idle worker. A private anonymous mapping is zero by
//! definition and costs a page only when a read reaches it: a request of a few hundred
//! bytes touches one.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap};

/// `len` bytes of zeroes in their own private mapping, unmapped on drop.
pub struct ZeroedPages {
    ptr: NonNull<u8>,
    len: usize,
}

impl ZeroedPages {
    /// Maps `len` (more than zero) bytes of zeroes.
    pub fn new(len: usize) -> std::io::Result<ZeroedPages> {
        let ptr = map_zeroed(len, MapFlags::MAP_PRIVATE)?;
        Ok(ZeroedPages {
            ptr: ptr.cast(),
            len,
        })
    }
}

/// Maps `len` (more than zero) read-write bytes of zeroes: `MAP_PRIVATE` for one
/// process's memory, `MAP_SHARED` for memory a process shares with the children it forks.
pub(super) fn map_zeroed(len: usize, sharing: MapFlags) -> std::io::Result<NonNull<c_void>> {
    let size = NonZeroUsize::new(len).ok_or(std::io::ErrorKind::InvalidInput)?;
    let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    // SAFETY: a fresh anonymous mapping aliases no Rust object.
    Ok(unsafe { mmap_anonymous(None, size, prot, sharing) }?)
}

impl Deref for ZeroedPages {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes, initialized (zero-filled by the
        // kernel), and lives until `self` is dropped; `&self` rules out a `&mut` alias.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for ZeroedPages {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and the mapping is writable; `&mut self` makes this the
        // only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for ZeroedPages {
    fn drop(&mut self) {
        // SAFETY: the mapping came from `mmap_anonymous` with this length, and no slice
        // of it outlives `self`.
        if let Err(err) = unsafe { munmap(self.ptr.cast(), self.len) } {
            log::warn!("unmapping a scratch buffer: {err}");
        }
    }
}

/// The first `len` bytes of a file, mapped read-only and shared, unmapped on drop: the
/// pages are the page cache's, which the kernel reclaims under pressure, not the
/// process's anonymous memory.
///
/// The file must keep at least `len` bytes while it is mapped, as a read past its end
/// raises SIGBUS: the caller maps only a file no other process finds by a name (an
/// unlinked spool, [`crate::worker::spool`]) and never shortens it.
pub struct MappedFile {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; shared references to
// it only read, so it may move to and be read from any thread.
unsafe impl Send for MappedFile {}
// SAFETY: as above: nothing writes through the mapping.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps the first `len` (more than zero) bytes of `file`, which must hold that many.
    pub fn new(file: &std::fs::File, len: usize) -> std::io::Result<MappedFile> {
        let size = NonZeroUsize::new(len).ok_or(std::io::ErrorKind::InvalidInput)?;
        let held = file.metadata()?.len();
        if held < len as u64 {
            return Err(std::io::Error::other(format!(
                "the file holds {held} bytes, not {len}"
            )));
        }
        // SAFETY: a fresh read-only mapping aliases no Rust object, and the file holds
        // `len` bytes (checked above) which the caller keeps (see the type's doc).
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                file,
                0,
            )
        }?;
        Ok(MappedFile {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes of a file that holds them, and
        // lives until `self` is dropped; nothing writes through it.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: the mapping came from `mmap` with this length, and no slice of it
        // outlives `self`.
        if let Err(err) = unsafe { munmap(self.ptr.cast(), self.len) } {
            log::warn!("unmapping a spooled request body: {err}");
        }
    }
}

/// Anonymous resident memory of `process` (`self` or a pid): resident minus file-backed
/// and shared pages, from the second and third fields of `/proc/PROCESS/statm` (in pages).
pub fn anon_resident_bytes(process: &str) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{process}/statm")).ok()?;
    let mut fields = statm.split_whitespace().skip(1).map(|f| f.parse::<u64>());
    let (Some(Ok(resident)), Some(Ok(shared))) = (fields.next(), fields.next()) else {
        return None;
    };
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    Some(resident.saturating_sub(shared) * u64::try_from(page).ok()?)
}

/// `40.3 MiB`, or `64.0 KiB` below a mebibyte: memory sizes in log lines.
pub fn mib(bytes: u64) -> String {
    match bytes < 1 << 20 {
        true => format!("{:.1} KiB", bytes as f64 / 1024.0),
        false => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_anonymous_memory() {
        assert!(anon_resident_bytes("self").is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn starts_zeroed_and_keeps_writes() {
        let mut pages = ZeroedPages::new(64 * 1024).expect("mmap");
        assert_eq!(pages.len(), 64 * 1024);
        assert!(pages.iter().all(|&b| b == 0));
        pages[0] = 1;
        pages[64 * 1024 - 1] = 2;
        assert_eq!((pages[0], pages[64 * 1024 - 1]), (1, 2));
    }

    #[test]
    fn maps_what_a_file_holds_and_no_more() {
        use std::io::Write;
        let mut file = tempfile_in_tmp();
        file.write_all(b"spooled body").expect("write");
        let mapped = MappedFile::new(&file, 7).expect("mmap");
        assert_eq!(&*mapped, b"spooled");
        let err = MappedFile::new(&file, 13)
            .err()
            .expect("past the end is refused");
        assert!(err.to_string().contains("holds 12 bytes"), "{err}");
        let err = MappedFile::new(&file, 0)
            .err()
            .expect("zero length is refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }

    /// A file of this test's own, gone once closed.
    fn tempfile_in_tmp() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("br-serve-pages-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create");
        std::fs::remove_file(&path).expect("unlink");
        file
    }

    #[test]
    fn refuses_an_empty_buffer() {
        let err = ZeroedPages::new(0).err().expect("zero length is refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
