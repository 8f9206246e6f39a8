//! Path resolution, the security boundary of the static file app: from a request path to
//! a file or directory under the root, or a [`Reject`]. The rules it enforces are the
//! "Security rules" of the parent module's documentation.

use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::plain;
use crate::http::Response;

/// Why a request path cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reject {
    /// Malformed: bad percent-encoding, a target that is not a path.
    BadRequest,
    /// Inside the root but not readable by the worker.
    Forbidden,
    /// Everything else, including every attempt to leave the root.
    NotFound,
    /// The worker ran out of something (descriptors, memory) or the disk failed: the
    /// file may well be there, so not a 404, which a cache would keep.
    Unavailable,
}

impl Reject {
    /// Maps a filesystem error: a permission error is a 403; running out of descriptors
    /// or memory, or an I/O error, is a 503 and an error-log line (nginx answers 500 and
    /// logs it); anything else (no such file, a symlink loop, a name too long) is a 404.
    pub(super) fn from_io(err: &io::Error) -> Reject {
        use nix::libc::{EIO, EMFILE, ENFILE, ENOMEM};
        if err.kind() == io::ErrorKind::PermissionDenied {
            return Reject::Forbidden;
        }
        match err.raw_os_error() {
            Some(EMFILE | ENFILE | ENOMEM | EIO) => {
                log_unavailable(err);
                Reject::Unavailable
            }
            _ => Reject::NotFound,
        }
    }

    pub(super) fn response(self) -> Response {
        match self {
            Reject::BadRequest => plain(400, "bad request\n"),
            Reject::Forbidden => plain(403, "forbidden\n"),
            Reject::NotFound => plain(404, "not found\n"),
            Reject::Unavailable => plain(503, "cannot open the file now\n"),
        }
    }
}

/// Says why files cannot be served, at most once a second: a worker out of descriptors
/// meets the error on every request.
fn log_unavailable(err: &io::Error) {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if crate::logging::once_a_second(&LAST) {
        log::error!("static files: cannot open a file under the root: {err}");
    }
}

/// A request path, decoded and checked segment by segment.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RequestPath {
    /// The decoded file-name segments joined by `/` (empty for the root): no segment is
    /// empty, starts with `.`, or contains `/`, `\` or NUL.
    pub(super) relative: PathBuf,
    /// Whether the path ended in `/` (a directory URL).
    pub(super) trailing_slash: bool,
}

/// Splits the (still percent-encoded) request path into safe file-name segments.
/// Splitting happens *before* decoding, so `%2F` can never create a new segment.
pub(super) fn decode_path(path: &str) -> Result<RequestPath, Reject> {
    // A request's path has its `/` (an absolute-form target's too: the HTTP layer took
    // off its scheme and host); a `--static-fallback` may lack one, and names nothing.
    let Some(rest) = path.strip_prefix('/') else {
        return Err(Reject::BadRequest);
    };
    // `/` itself is the root directory; otherwise a final `/` marks a directory URL and
    // every segment before it, empty ones included, is checked.
    let (body, trailing_slash) = match rest.strip_suffix('/') {
        Some(body) => (body, true),
        None => (rest, rest.is_empty()),
    };
    let mut relative = Vec::with_capacity(body.len());
    if !rest.is_empty() {
        for (index, raw) in body.split('/').enumerate() {
            if !relative.is_empty() {
                relative.push(b'/');
            }
            let start = relative.len();
            percent_decode_into(raw, &mut relative)?;
            check_segment(index, &relative[start..])?;
        }
    }
    Ok(RequestPath {
        relative: PathBuf::from(OsString::from_vec(relative)),
        trailing_slash,
    })
}

/// Applies rule 2 of the parent module's security rules to the decoded segment at
/// `index` (0 for the first below the root).
pub(super) fn check_segment(index: usize, bytes: &[u8]) -> Result<(), Reject> {
    // A leading dot covers `.`, `..` and hidden files in one rule; `/` and `\` inside a
    // segment only ever appear in traversal attempts, and no file name holds a NUL.
    let refused = bytes.is_empty()
        || hidden(index, bytes)
        || bytes.iter().any(|&b| b == b'/' || b == b'\\' || b == 0);
    if refused {
        return Err(Reject::NotFound);
    }
    Ok(())
}

/// Whether the name at `index` below the root (0: in the root itself) is hidden: it
/// starts with `.`, which covers `.` and `..` too. The one exception is `.well-known` in
/// the root, which RFC 8615 reserves for what a site must publish there (ACME HTTP-01
/// challenges, `security.txt`), so a certificate client's webroot mode works.
pub(super) fn hidden(index: usize, name: &[u8]) -> bool {
    name.starts_with(b".") && !(index == 0 && name == b".well-known")
}

/// Strict percent-decoding (RFC 3986 §2.1): every `%` must start a `%XX` triplet.
/// `+` is left alone: it means a space only in form-encoded queries, never in paths.
pub(super) fn percent_decode(raw: &str) -> Result<Vec<u8>, Reject> {
    let mut out = Vec::with_capacity(raw.len());
    percent_decode_into(raw, &mut out)?;
    Ok(out)
}

/// [`percent_decode`], appending to `out`.
fn percent_decode_into(raw: &str, out: &mut Vec<u8>) -> Result<(), Reject> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).and_then(|&c| hex_value(c));
        let lo = bytes.get(i + 2).and_then(|&c| hex_value(c));
        match (hi, lo) {
            (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
            _ => return Err(Reject::BadRequest),
        }
        i += 3;
    }
    Ok(())
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// What a confined path turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target {
    File(PathBuf),
    Dir(PathBuf),
}

/// The fast path for the common case, a plain file reached through no symlink: one
/// `openat2` relative to the open root with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so
/// the kernel itself refuses any path that would leave the root, instead of a
/// `realpath` (an lstat per component of the absolute path) and then an open.
///
/// `None` means "take the thorough path" (`resolve`): a symlink on the way (followed
/// there, then confined and re-checked for hidden components), a directory (redirects
/// and index files), anything that is not a regular file, or a kernel without
/// `openat2`. A `Some` answer is final.
pub(super) fn open_beneath(
    root: &File,
    relative: &Path,
) -> Option<Result<(File, Metadata), Reject>> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    if relative.as_os_str().is_empty() {
        return None;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let file = match openat2(root, relative, how) {
        Ok(fd) => File::from(fd),
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => {
            return Some(Err(Reject::NotFound));
        }
        Err(nix::errno::Errno::EACCES) => return Some(Err(Reject::Forbidden)),
        Err(_) => return None,
    };
    let meta = file.metadata().ok()?;
    meta.is_file().then_some(Ok((file, meta)))
}

/// Appends the checked relative path to the canonical root and confines the result.
pub(super) fn resolve(root: &Path, relative: &Path) -> Result<Target, Reject> {
    // `relative` never starts with `/` (no segment is empty), so it cannot replace the
    // root the way `root.join("/etc/passwd")` would; the root itself stays as it is.
    match relative.as_os_str().is_empty() {
        true => confine(root, root),
        false => confine(root, &root.join(relative)),
    }
}

/// Why `candidate` could not be resolved, as a request sees it: a directory the worker
/// may not enter is 403 inside the root, but 404 outside it (through a symlink), so that
/// the status does not tell a stranger which directories exist out there. Whether it is
/// inside is judged by where resolving stops ([`where_it_stops`]).
fn unresolved(root: &Path, candidate: &Path, err: &io::Error) -> Reject {
    let denied = Reject::from_io(err);
    if denied != Reject::Forbidden {
        return denied;
    }
    match where_it_stops(candidate, MAX_HOPS).is_some_and(|known| visible_below(root, &known)) {
        true => Reject::Forbidden,
        false => Reject::NotFound,
    }
}

/// Symlinks [`where_it_stops`] follows, as the kernel's own limit (MAXSYMLINKS).
const MAX_HOPS: usize = 40;

/// The canonical form of the deepest ancestor of `path` that resolves: the directory
/// that could not be entered is there or just below. A symlink just below it is
/// followed, with the rest of the path, since where a symlink sits says nothing of
/// where it leads: a link in the root to a locked directory elsewhere stopped at the
/// root, and was judged inside. `None` past `hops` symlinks.
fn where_it_stops(path: &Path, hops: usize) -> Option<PathBuf> {
    let (ancestor, known) = path
        .ancestors()
        .skip(1)
        .find_map(|a| Some((a, fs::canonicalize(a).ok()?)))?;
    let rest = path.strip_prefix(ancestor).ok()?;
    let mut below = rest.components();
    let step = known.join(below.next()?);
    match fs::read_link(&step) {
        Ok(target) if hops > 0 => where_it_stops(&known.join(target).join(below), hops - 1),
        Ok(_) => None,
        Err(_) => Some(known),
    }
}

/// Whether the canonical path `canonical` is under the canonical `root` through no hidden
/// name. `strip_prefix` compares whole components: `/srv/www2` is not under `/srv/www`.
fn visible_below(root: &Path, canonical: &Path) -> bool {
    let inside = canonical.strip_prefix(root);
    inside.is_ok_and(|inside| {
        let mut names = inside.iter().enumerate();
        !names.any(|(i, name)| hidden(i, name.as_bytes()))
    })
}

/// Canonicalizes `candidate` (resolving every symlink) and accepts it only if it is a
/// regular file or a directory under the canonical `root`, reached through no hidden
/// component.
pub(super) fn confine(root: &Path, candidate: &Path) -> Result<Target, Reject> {
    let canonical = fs::canonicalize(candidate).map_err(|err| unresolved(root, candidate, &err))?;
    if !visible_below(root, &canonical) {
        return Err(Reject::NotFound);
    }
    let meta = fs::metadata(&canonical).map_err(|err| Reject::from_io(&err))?;
    if meta.is_dir() {
        Ok(Target::Dir(canonical))
    } else if meta.is_file() {
        Ok(Target::File(canonical))
    } else {
        // FIFOs, sockets and devices: opening one could block or read forever.
        Err(Reject::NotFound)
    }
}

/// Opens the canonical `path` read-only without following a final symlink and without
/// blocking, and checks, on the open descriptor, that it is that path and a regular file.
pub(super) fn open_regular(path: &Path) -> Result<(File, Metadata), Reject> {
    let file = open_canonical(path, nix::libc::O_NONBLOCK)?;
    let meta = file.metadata().map_err(|err| Reject::from_io(&err))?;
    if !meta.is_file() {
        return Err(Reject::NotFound);
    }
    Ok((file, meta))
}

/// Opens the canonical directory `path`, checked like [`open_regular`]; its entries are
/// then read through [`by_descriptor`], never by name again.
pub(super) fn open_dir(path: &Path) -> Result<File, Reject> {
    open_canonical(path, nix::libc::O_DIRECTORY)
}

/// The name under which `/proc` reaches the very file `file` is.
pub(super) fn by_descriptor(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Opens `path`, which `confine` (or the start, for `--static-fallback`) found to be
/// canonical and under the root, and makes sure the open reached that file. `O_NOFOLLOW`
/// guards only the last component: a directory on the way swapped for a symlink since
/// the check would lead the open elsewhere, outside the root. So the kernel's own name
/// for what was opened (`/proc/self/fd/N`) must still be `path`; anything else is 404.
fn open_canonical(path: &Path, flags: nix::libc::c_int) -> Result<File, Reject> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | flags)
        .open(path)
        .map_err(|err| Reject::from_io(&err))?;
    match fs::read_link(by_descriptor(&file)) {
        Ok(opened) if opened == path => Ok(file),
        Ok(_) => Err(Reject::NotFound),
        Err(err) => {
            // Without /proc (a chroot, some sandboxes) nothing can be checked: refuse,
            // and say why once, or every such request is a silent 404.
            static TOLD: std::sync::Once = std::sync::Once::new();
            TOLD.call_once(|| {
                log::warn!(
                    "static files: cannot check what was opened ({err}: is /proc mounted?); \
                     files reached through symlinks, listings and the fallback are refused"
                );
            });
            Err(Reject::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::static_files::tests::fixture;

    /// The race `confine` cannot close alone, frozen at its worst moment: a directory on
    /// the way replaced by a symlink to somewhere outside, after the check. Opening the
    /// checked path must not reach the file there, nor listing the directory list it.
    #[test]
    fn a_directory_swapped_for_a_symlink_after_the_check_is_refused() {
        let (_tmp, www) = fixture();
        let root = fs::canonicalize(&www).unwrap();
        let Ok(Target::File(file)) = resolve(&root, Path::new("sub/b.txt")) else {
            panic!("sub/b.txt is not a file");
        };
        let Ok(Target::Dir(dir)) = resolve(&root, Path::new("sub")) else {
            panic!("sub is not a directory");
        };
        assert!(open_regular(&file).is_ok() && open_dir(&dir).is_ok());
        let outside = root.parent().unwrap().join("outside");
        fs::write(outside.join("b.txt"), "outside").unwrap();
        fs::rename(root.join("sub"), root.join("sub_real")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("sub")).unwrap();
        assert_eq!(open_regular(&file).err(), Some(Reject::NotFound));
        assert_eq!(open_dir(&dir).err(), Some(Reject::NotFound));
    }

    /// Resolving stops at the last place that resolves, past the symlinks below it: a
    /// link's own place says nothing of where it leads. A loop of links stops nowhere.
    #[test]
    fn where_it_stops_follows_symlinks_to_their_end() {
        use std::os::unix::fs::symlink;
        let (_tmp, www) = fixture();
        let root = fs::canonicalize(&www).unwrap();
        let outside = root.parent().unwrap().join("outside");
        symlink(outside.join("gone"), root.join("away")).unwrap();
        symlink("away/deeper", root.join("further")).unwrap();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        let stop = |path: &str| where_it_stops(&root.join(path), MAX_HOPS);
        assert_eq!(stop("sub/missing/x"), Some(root.join("sub")));
        assert_eq!(stop("away/x/y"), Some(outside.clone()));
        assert_eq!(stop("further/x"), Some(outside));
        assert_eq!(stop("a/x"), None);
    }

    /// Decodes and resolves like the handler, reporting what the path reached.
    fn lookup(root: &Path, path: &str) -> Result<&'static str, Reject> {
        let decoded = decode_path(path)?;
        match resolve(root, &decoded.relative)? {
            Target::File(_) => Ok("file"),
            Target::Dir(_) => Ok("dir"),
        }
    }

    #[test]
    fn percent_decode_table() {
        let cases: &[(&str, Result<&[u8], Reject>)] = &[
            ("", Ok(b"")),
            ("plain", Ok(b"plain")),
            ("a%20b", Ok(b"a b")),
            ("%2e%2E", Ok(b"..")),
            ("%2f%5C", Ok(b"/\\")),
            ("%00", Ok(b"\0")),
            ("%ff%C3%A9", Ok(b"\xff\xc3\xa9")),
            ("a+b", Ok(b"a+b")),
            ("%252e", Ok(b"%2e")),
            ("%", Err(Reject::BadRequest)),
            ("%2", Err(Reject::BadRequest)),
            ("a%", Err(Reject::BadRequest)),
            ("%zz", Err(Reject::BadRequest)),
            ("%2g", Err(Reject::BadRequest)),
            ("%g2", Err(Reject::BadRequest)),
            ("%+1", Err(Reject::BadRequest)),
            ("%-1", Err(Reject::BadRequest)),
        ];
        for &(raw, expected) in cases {
            assert_eq!(
                percent_decode(raw).as_deref().map_err(|r| *r),
                expected,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn decode_path_accepts_table() {
        let cases: &[(&str, &[&[u8]], bool)] = &[
            ("/", &[], true),
            ("/a.txt", &[b"a.txt"], false),
            ("/dir/", &[b"dir"], true),
            ("/a/b/c.html", &[b"a", b"b", b"c.html"], false),
            ("/a%20b", &[b"a b"], false),
            ("/file.tar.gz", &[b"file.tar.gz"], false),
            ("/a%2etxt", &[b"a.txt"], false),
            ("/a..b", &[b"a..b"], false),
            ("/%c0%ae%c0%ae/x", &[b"\xc0\xae\xc0\xae", b"x"], false),
            ("/%252e%252e/", &[b"%2e%2e"], true),
            ("/caf%C3%A9", &["caf\u{e9}".as_bytes()], false),
            // RFC 8615's well-known URIs, the one hidden directory served.
            (
                "/.well-known/acme-challenge/tok",
                &[b".well-known", b"acme-challenge", b"tok"],
                false,
            ),
            (
                "/%2ewell-known/security.txt",
                &[b".well-known", b"security.txt"],
                false,
            ),
        ];
        for &(path, segments, trailing_slash) in cases {
            let expected = RequestPath {
                relative: PathBuf::from(OsString::from_vec(segments.join(&b'/'))),
                trailing_slash,
            };
            assert_eq!(decode_path(path), Ok(expected), "{path:?}");
        }
    }

    #[test]
    fn decode_path_traversal_table() {
        use Reject::{BadRequest, NotFound};
        let cases: &[(&str, Reject)] = &[
            ("/../etc/passwd", NotFound),
            ("/a/../../etc/passwd", NotFound),
            ("/..", NotFound),
            ("/../", NotFound),
            ("/.", NotFound),
            ("/a/./b", NotFound),
            ("/a/.", NotFound),
            ("/%2e%2e/%2e%2e/etc/passwd", NotFound),
            ("/%2E%2E/etc/passwd", NotFound),
            ("/%2E./etc/passwd", NotFound),
            ("/.%2e/", NotFound),
            ("/%2e/", NotFound),
            ("/..%2fetc/passwd", NotFound),
            ("/..%2Fetc%2Fpasswd", NotFound),
            ("/etc%2fpasswd", NotFound),
            ("/%2e%2e%5c", NotFound),
            ("/%2e%2e%5cetc%5cpasswd", NotFound),
            ("/a%5cb", NotFound),
            ("/a\\b", NotFound),
            ("/..\\..\\etc\\passwd", NotFound),
            ("/\\etc\\passwd", NotFound),
            ("//etc/passwd", NotFound),
            ("///etc/passwd", NotFound),
            ("/a//b", NotFound),
            ("/a//", NotFound),
            ("//", NotFound),
            ("/.git/config", NotFound),
            ("/.env", NotFound),
            ("/sub/.htpasswd", NotFound),
            ("/%2egit/config", NotFound),
            // Only the root's .well-known is served (RFC 8615), and nothing hidden in it.
            ("/docs/.well-known/x", NotFound),
            ("/.well-known/.secret", NotFound),
            ("/.well-knownx/y", NotFound),
            ("/%2ewell-known/../x", NotFound),
            ("/a/%00", NotFound),
            ("/..%00", NotFound),
            ("/a.txt%00.html", NotFound),
            ("/%00/../etc", NotFound),
            ("/%", BadRequest),
            ("/%2", BadRequest),
            ("/%zz", BadRequest),
            ("/%%32%65", BadRequest),
            ("", BadRequest),
            ("*", BadRequest),
            ("etc/passwd", BadRequest),
            ("http://evil.example/etc/passwd", BadRequest),
            ("../etc/passwd", BadRequest),
        ];
        for &(path, expected) in cases {
            assert_eq!(decode_path(path), Err(expected), "{path:?}");
        }
    }

    #[test]
    fn resolution_stays_inside_the_root() {
        use Reject::NotFound;
        let (_tmp, www) = fixture();
        let cases: &[(&str, Result<&str, Reject>)] = &[
            ("/", Ok("dir")),
            ("/a.txt", Ok("file")),
            ("/sub/", Ok("dir")),
            ("/sub/b.txt", Ok("file")),
            ("/link_in", Ok("file")),
            ("/dirlink/b.txt", Ok("file")),
            ("/a%20b.txt", Ok("file")),
            ("/caf%C3%A9.txt", Ok("file")),
            ("/nope", Err(NotFound)),
            ("/a.txt/x", Err(NotFound)),
            ("/dangling", Err(NotFound)),
            ("/fifo", Err(NotFound)),
            ("/.secret", Err(NotFound)),
            ("/.git/config", Err(NotFound)),
            ("/visible", Err(NotFound)),
            ("/escape", Err(NotFound)),
            ("/escape_abs", Err(NotFound)),
            ("/escape_dir", Err(NotFound)),
            ("/escape_dir/secret.txt", Err(NotFound)),
            ("/../outside/secret.txt", Err(NotFound)),
            ("/../www2/secret.txt", Err(NotFound)),
            ("/%2e%2e/www2/secret.txt", Err(NotFound)),
            ("/sub/%2e%2e/a.txt", Err(NotFound)),
            ("/..%2fwww2%2fsecret.txt", Err(NotFound)),
            ("/%2e%2e%5coutside%5csecret.txt", Err(NotFound)),
            ("/%c0%ae%c0%ae/outside/secret.txt", Err(NotFound)),
            ("/%252e%252e/outside/secret.txt", Err(NotFound)),
            ("//outside/secret.txt", Err(NotFound)),
            ("/a/%00", Err(NotFound)),
        ];
        for &(path, expected) in cases {
            assert_eq!(lookup(&www, path), expected, "{path:?}");
        }
        // Even an absolute path, which decode_path never produces, would not escape:
        // confinement checks the canonical result against the root.
        assert!(resolve(&www.join("sub"), &www.join("a.txt")).is_err());
    }
}
