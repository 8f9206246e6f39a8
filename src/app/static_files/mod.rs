//! The static file application (`br-serve --static DIR`): serves the files under one
//! directory, the *root*, with the HTTP semantics a cache or a download manager expects.
//!
//! What it owns, from request path to response:
//!
//! * **Path resolution**, the security boundary. Nothing outside the root is ever opened;
//!   the rules are below.
//! * **Directories**: `/dir` redirects (301) to `/dir/`, which serves `dir/index.html`.
//!   Without an index file the answer is 404, or an HTML listing when listing is on
//!   (`--static-listing`). We answer 404 rather than nginx's 403 because, with listing
//!   off, there is no resource at that URL to forbid.
//! * **Validators** (RFC 9110 §8.8): `Last-Modified` from the file's mtime, and a strong
//!   `ETag` from its mtime in nanoseconds, size and inode.
//! * **Conditional requests** (RFC 9110 §13): `If-Match`, `If-Unmodified-Since`,
//!   `If-None-Match`, `If-Modified-Since` and `If-Range`, evaluated in the order of §13.2.2.
//! * **Ranges** (RFC 9110 §14): one byte range gives 206; an unsatisfiable one gives 416;
//!   several ranges give the whole file (200), which §14.2 allows and which spares us
//!   multipart bodies and the "many small ranges" amplification attacks.
//! * **Content types** from a small extension table; everything else is
//!   `application/octet-stream`. Every response carries `X-Content-Type-Options: nosniff`
//!   so a browser never second-guesses that choice.
//!
//! Files are opened per request and handed to the server as [`Body::File`], which it sends
//! with sendfile(2): nothing is read into memory, whatever the size. Small files (up to
//! 16 KiB) are the exception: they are kept in a per-worker cache (`cache`) that checks
//! each one against the disk on every request, so they are never served stale. HEAD gets
//! the same response as GET (the server drops the body), except that ranges apply to GET
//! only (RFC 9110 §14.2).
//!
//! # Security rules
//!
//! A request may only read a regular file whose canonical path is inside the canonical
//! root and has no component starting with `.` below the root. Concretely:
//!
//! 1. The path (never the query) is percent-decoded here, once, strictly: a `%` not
//!    followed by two hex digits is 400, a decoded NUL is 400.
//! 2. Each `/`-separated segment is checked *after* decoding. A segment is refused (404)
//!    when it is empty (`//etc/passwd`, `/a//b`), when it starts with `.` (`.`, `..`,
//!    `%2e%2e`, `.%2e`, and dotfiles such as `.git` or `.env`), or when it contains `/`
//!    (`%2F`) or `\` (raw or `%5C`). A target that does not start with `/` (`*`,
//!    absolute-form) is 400.
//! 3. The checked segments, joined by `/`, are appended to the root (no segment is empty
//!    or holds a `/`, so the result cannot name anything but a path below the root
//!    before symlinks), and the result is canonicalized:
//!    every symlink is resolved. The canonical path must still be under the root, compared
//!    component by component (so a sibling `/srv/www2` is not inside `/srv/www`), and no
//!    component below the root may start with `.` (a symlink to `.git` is refused too).
//!    Anything else is 404, so a probe learns nothing about the rest of the disk.
//! 4. Only regular files and directories are served. The file is opened by its canonical
//!    path with `O_NOFOLLOW` (a symlink swapped in after the check fails to open) and
//!    `O_NONBLOCK` (a FIFO swapped in cannot hang the worker), then checked again with
//!    fstat, whose metadata also supplies the validators, so they describe the bytes sent.
//!
//! 5. The small-file cache serves only bytes read through a descriptor that the fast path
//!    (`open_beneath`) opened, and only while the path still names that same inode,
//!    unchanged (the `cache` module says why that is enough).
//!
//! Hidden files are refused on purpose: nginx serves them, and `.git/`, `.env` and
//! `.htpasswd` leak from web roots that way every day. Permission errors inside the root
//! are 403; everything else that cannot be served is 404.

mod cache;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Handler;
use crate::http::date::{imf_fixdate, parse_http_date};
use crate::http::{Body, Request, Response};

use self::cache::FileCache;

/// The file served for a directory URL ending in `/`.
const INDEX_FILE: &str = "index.html";
/// A listing stops after this many entries, so a huge directory cannot make one
/// response, or one worker's memory, unbounded.
const LISTING_LIMIT: usize = 10_000;
const NOSNIFF: (&str, &str) = ("X-Content-Type-Options", "nosniff");
/// Content type for extensions the table does not know.
const DEFAULT_MIME: &str = "application/octet-stream";

/// Serves the files under one directory (`br-serve --static DIR`).
///
/// Build it once per worker (or before fork); it holds the canonical root, the listing
/// switch and a cache of small files ([`StaticFiles::with_cache`]), and opens other files
/// per request.
///
/// # Examples
///
/// An application that answers `/api/` itself and serves its assets from disk:
///
/// ```
/// use br_serve::app::static_files::StaticFiles;
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::{Body, Handler, Request, Response};
///
/// # let root = std::env::temp_dir().join(format!("br-serve-doc-static-{}", std::process::id()));
/// # std::fs::create_dir_all(&root)?;
/// std::fs::write(root.join("app.js"), "console.log(1);\n")?;
/// std::fs::write(root.join(".env"), "SECRET=1\n")?;
///
/// let mut files = StaticFiles::new(&root, false)?;
/// let mut app = move |req: &Request| match req.path().strip_prefix("/api/") {
///     Some(_) => Response::text(200, "{}"),
///     None => files.handle(req),
/// };
///
/// let get = |target: &str| -> Request {
///     let raw = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
///     let head = parse_head(raw.as_bytes(), &Limits::default()).unwrap().unwrap();
///     Request::new(head, Vec::new(), None)
/// };
/// let js = app.handle(&get("/app.js"));
/// assert_eq!(js.status(), 200);
/// // Just written, so read from disk (small files are cached once a second old).
/// assert!(matches!(js.body(), Body::File { len: 16, .. }));
/// assert!(js.headers().any(|(name, _)| name == "ETag"));
///
/// // Nothing outside the root, and no hidden files: 404, like a file that is not there.
/// assert_eq!(app.handle(&get("/../../etc/passwd")).status(), 404);
/// assert_eq!(app.handle(&get("/%2e%2e/etc/passwd")).status(), 404);
/// assert_eq!(app.handle(&get("/.env")).status(), 404);
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
    listing: bool,
    /// The root, open, for the one-syscall fast path (`open_beneath`).
    root_dir: Arc<File>,
    /// Small files served before, checked against the disk on every hit.
    cache: FileCache,
}

/// The small-file cache's default size per worker, in bytes (`--static-cache`).
///
/// # Examples
///
/// [`StaticFiles::new`] starts with a cache this size; the binary's flag has the same
/// default, so an embedding application that builds its own [`Config`](crate::Config)
/// from arguments gets it too:
///
/// ```
/// use br_serve::app::static_files::DEFAULT_CACHE_BYTES;
/// use br_serve::config::from_argv;
///
/// let config = from_argv(vec!["my-app".into()])?;
/// assert_eq!(config.static_cache, DEFAULT_CACHE_BYTES);
/// assert_eq!(DEFAULT_CACHE_BYTES, 4 << 20); // 4 MiB per worker
/// # Ok::<(), br_serve::Error>(())
/// ```
pub const DEFAULT_CACHE_BYTES: usize = 4 * 1024 * 1024;

impl StaticFiles {
    /// Serves the directory `root`. It is canonicalized here, once, so every request is
    /// confined against the real directory even if `root` is given through a symlink.
    /// With `listing`, a directory without `index.html` gets an HTML listing instead of 404.
    ///
    /// # Errors
    ///
    /// When `root` does not exist, cannot be resolved, or is not a directory; the message
    /// names the path.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    ///
    /// use br_serve::app::static_files::StaticFiles;
    ///
    /// let err = StaticFiles::new(Path::new("no/such/dir"), false).unwrap_err();
    /// assert!(err.to_string().contains("no/such/dir"));
    ///
    /// let files = StaticFiles::new(Path::new("."), true)?;
    /// assert!(files.root().is_absolute()); // canonical: symlinks and `..` resolved
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(root: &Path, listing: bool) -> io::Result<StaticFiles> {
        let context = |err: io::Error| {
            io::Error::new(err.kind(), format!("static root {}: {err}", root.display()))
        };
        let canonical = fs::canonicalize(root).map_err(context)?;
        if !fs::metadata(&canonical).map_err(context)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("static root {} is not a directory", root.display()),
            ));
        }
        let root_dir = Arc::new(File::open(&canonical).map_err(context)?);
        Ok(StaticFiles {
            root: canonical,
            listing,
            root_dir,
            cache: FileCache::new(DEFAULT_CACHE_BYTES),
        })
    }

    /// Keeps up to `bytes` of small files (16 KiB or less each) in memory, per copy of
    /// the app (so per worker); 0 turns the cache off. The default is
    /// [`DEFAULT_CACHE_BYTES`].
    ///
    /// A cached file costs one `fstatat` per request instead of an open, a stat, a read
    /// and a close, and is never stale: each hit is checked first, and a file whose
    /// inode, size, mtime or ctime changed is read again. Files changed less than a
    /// second ago are not cached yet, because file timestamps come from a coarse clock.
    ///
    /// # Examples
    ///
    /// An app whose files change under it all the time, where the cache would mostly miss:
    ///
    /// ```
    /// use br_serve::app::static_files::StaticFiles;
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Body, Handler, Request};
    ///
    /// # let root = std::env::temp_dir().join(format!("br-serve-doc-cache-{}", std::process::id()));
    /// # std::fs::create_dir_all(&root)?;
    /// std::fs::write(root.join("live.json"), "{\"n\":1}")?;
    /// let mut files = StaticFiles::new(&root, false)?.with_cache(0);
    ///
    /// let raw = b"GET /live.json HTTP/1.1\r\nHost: h\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let resp = files.handle(&Request::new(head, Vec::new(), None));
    /// // Opened per request, however long it stays unchanged.
    /// assert!(matches!(resp.body(), Body::File { len: 7, .. }));
    /// # std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_cache(mut self, bytes: usize) -> StaticFiles {
        self.cache = FileCache::new(bytes);
        self
    }

    /// The canonical root directory that every request is confined to.
    ///
    /// # Examples
    ///
    /// Symbolic links and `..` in the path given to [`new`](Self::new) are resolved once,
    /// at start-up:
    ///
    /// ```
    /// use br_serve::app::static_files::StaticFiles;
    ///
    /// # let tmp = std::env::temp_dir().join(format!("br-serve-doc-root-{}", std::process::id()));
    /// # std::fs::create_dir_all(tmp.join("site"))?;
    /// let files = StaticFiles::new(&tmp.join("site/../site/."), false)?;
    /// assert_eq!(files.root(), tmp.join("site").canonicalize()?);
    /// # std::fs::remove_dir_all(&tmp)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The common case, a plain file below the root: from the cache, or opened with
    /// `open_beneath` (and cached when small). `None` means take the thorough path; a
    /// `Some` answer is final, as `open_beneath`'s is.
    fn fast_path(&mut self, req: &Request, relative: &Path) -> Option<Result<Response, Reject>> {
        let now = unix_now();
        let mime = mime_type(relative);
        if let Some(hit) = self.cache.get(&self.root_dir, relative, now) {
            let memory = Content::Memory(hit.content);
            return Some(Ok(answer(req, memory, hit.info, mime, now)));
        }
        let (file, meta) = match open_beneath(&self.root_dir, relative)? {
            Ok(opened) => opened,
            Err(reject) => return Some(Err(reject)),
        };
        let response = match self.cache.admit(relative, &file, &meta, now) {
            Some(hit) => answer(req, Content::Memory(hit.content), hit.info, mime, now),
            None => answer(
                req,
                Content::File(file),
                FileInfo::new(&meta, now),
                mime,
                now,
            ),
        };
        Some(Ok(response))
    }

    /// Answers a request for a directory whose URL ends in `/`.
    fn directory(&self, req: &Request, dir: &Path) -> Response {
        match confine(&self.root, &dir.join(INDEX_FILE)) {
            Ok(Target::File(index)) => serve_file(req, &index),
            Ok(Target::Dir(_)) | Err(Reject::NotFound) if self.listing => listing(req.path(), dir),
            Ok(Target::Dir(_)) => Reject::NotFound.response(),
            Err(reject) => reject.response(),
        }
    }
}

impl Handler for StaticFiles {
    fn handle(&mut self, req: &Request) -> Response {
        if !matches!(req.method(), "GET" | "HEAD") {
            return Response::text(405, "method not allowed\n")
                .with_header("Allow", "GET, HEAD")
                .with_header(NOSNIFF.0, NOSNIFF.1);
        }
        let path = match decode_path(req.path()) {
            Ok(path) => path,
            Err(reject) => return reject.response(),
        };
        match path.trailing_slash {
            false => match self.fast_path(req, &path.relative) {
                Some(Ok(response)) => return response,
                Some(Err(reject)) => return reject.response(),
                None => {}
            },
            // A directory URL: its index file when the fast path reaches it. Anything
            // else (no index, a listing, a symlink, `/file.txt/`) the thorough path decides.
            true => {
                if let Some(Ok(response)) = self.fast_path(req, &path.relative.join(INDEX_FILE)) {
                    return response;
                }
            }
        }
        let resolved =
            resolve(&self.root, &path.relative).map(|target| (target, path.trailing_slash));
        match resolved {
            Err(reject) => reject.response(),
            Ok((Target::File(file), false)) => serve_file(req, &file),
            // `/file.txt/` names a directory that does not exist.
            Ok((Target::File(_), true)) => Reject::NotFound.response(),
            Ok((Target::Dir(_), false)) => redirect_to_directory(req),
            Ok((Target::Dir(dir), true)) => self.directory(req, &dir),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Path resolution: the security boundary.
// ---------------------------------------------------------------------------------------

/// Why a request path cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reject {
    /// Malformed: bad percent-encoding, a NUL, a target that is not a path.
    BadRequest,
    /// Inside the root but not readable by the worker.
    Forbidden,
    /// Everything else, including every attempt to leave the root.
    NotFound,
}

impl Reject {
    /// Maps a filesystem error: only a permission error is worth telling apart.
    fn from_io(err: &io::Error) -> Reject {
        match err.kind() {
            io::ErrorKind::PermissionDenied => Reject::Forbidden,
            _ => Reject::NotFound,
        }
    }

    fn response(self) -> Response {
        match self {
            Reject::BadRequest => plain(400, "bad request\n"),
            Reject::Forbidden => plain(403, "forbidden\n"),
            Reject::NotFound => plain(404, "not found\n"),
        }
    }
}

/// A request path, decoded and checked segment by segment.
#[derive(Debug, PartialEq, Eq)]
struct RequestPath {
    /// The decoded file-name segments joined by `/` (empty for the root): no segment is
    /// empty, starts with `.`, or contains `/`, `\` or NUL.
    relative: PathBuf,
    /// Whether the path ended in `/` (a directory URL).
    trailing_slash: bool,
}

/// Splits the (still percent-encoded) request path into safe file-name segments.
/// Splitting happens *before* decoding, so `%2F` can never create a new segment.
fn decode_path(path: &str) -> Result<RequestPath, Reject> {
    // `*` (OPTIONS) and absolute-form targets name no file under the root.
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
        for raw in body.split('/') {
            if !relative.is_empty() {
                relative.push(b'/');
            }
            let start = relative.len();
            percent_decode_into(raw, &mut relative)?;
            check_segment(&relative[start..])?;
        }
    }
    Ok(RequestPath {
        relative: PathBuf::from(OsString::from_vec(relative)),
        trailing_slash,
    })
}

/// Applies the segment rules of the module documentation to one decoded segment.
fn check_segment(bytes: &[u8]) -> Result<(), Reject> {
    if bytes.contains(&0) {
        return Err(Reject::BadRequest);
    }
    // A leading dot covers `.`, `..` and hidden files in one rule; `/` and `\` inside a
    // segment only ever appear in traversal attempts.
    let refused =
        bytes.is_empty() || bytes[0] == b'.' || bytes.iter().any(|&b| b == b'/' || b == b'\\');
    if refused {
        return Err(Reject::NotFound);
    }
    Ok(())
}

/// Strict percent-decoding (RFC 3986 §2.1): every `%` must start a `%XX` triplet.
/// `+` is left alone: it means a space only in form-encoded queries, never in paths.
fn percent_decode(raw: &str) -> Result<Vec<u8>, Reject> {
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
enum Target {
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
fn open_beneath(root: &File, relative: &Path) -> Option<Result<(File, Metadata), Reject>> {
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
fn resolve(root: &Path, relative: &Path) -> Result<Target, Reject> {
    // `relative` never starts with `/` (no segment is empty), so it cannot replace the
    // root the way `root.join("/etc/passwd")` would; the root itself stays as it is.
    match relative.as_os_str().is_empty() {
        true => confine(root, root),
        false => confine(root, &root.join(relative)),
    }
}

/// Canonicalizes `candidate` (resolving every symlink) and accepts it only if it is a
/// regular file or a directory under the canonical `root`, reached through no hidden
/// component.
fn confine(root: &Path, candidate: &Path) -> Result<Target, Reject> {
    let canonical = fs::canonicalize(candidate).map_err(|err| Reject::from_io(&err))?;
    // `strip_prefix` compares whole components: `/srv/www2` is not under `/srv/www`.
    let inside = canonical.strip_prefix(root).map_err(|_| Reject::NotFound)?;
    if inside.iter().any(|name| name.as_bytes().starts_with(b".")) {
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

/// `/dir` -> 301 `/dir/`, keeping the query, so relative links in `dir/index.html` work.
/// The path was validated (it starts with one `/` and has no empty segment), so the
/// `Location` is always a local path, never `//host` (no open redirect).
fn redirect_to_directory(req: &Request) -> Response {
    let location = directory_location(req.path(), req.query());
    plain(301, "moved permanently\n").with_header("Location", &location)
}

/// The `Location` for a directory URL: the path with a `/` appended, then the query as
/// it was sent (an empty query included).
fn directory_location(path: &str, query: Option<&str>) -> String {
    match query {
        Some(query) => format!("{path}/?{query}"),
        None => format!("{path}/"),
    }
}

// ---------------------------------------------------------------------------------------
// Files: validators, conditions, ranges.
// ---------------------------------------------------------------------------------------

/// Opens a confined file and answers with it, a 304, a 412 or a 416.
fn serve_file(req: &Request, path: &Path) -> Response {
    match open_regular(path) {
        Ok((file, meta)) => {
            let now = unix_now();
            let info = FileInfo::new(&meta, now);
            answer(req, Content::File(file), info, mime_type(path), now)
        }
        Err(reject) => reject.response(),
    }
}

/// Where the bytes of a file being served are.
enum Content<'a> {
    /// In the file, open: the worker sends them with sendfile (or copies a small one).
    File(File),
    /// The whole file, in the cache.
    Memory(&'a [u8]),
}

impl Content<'_> {
    /// `len` bytes from `offset`. An empty body is no body at all, so the server never
    /// has to special-case a zero-length sendfile.
    fn body(self, offset: u64, len: u64) -> Body {
        match self {
            _ if len == 0 => Body::Empty,
            Content::File(file) => Body::File { file, offset, len },
            // `offset + len <= size`, the cached length: `evaluate` guarantees it.
            Content::Memory(bytes) => {
                Body::Bytes(bytes[offset as usize..(offset + len) as usize].to_vec())
            }
        }
    }
}

/// Evaluates the request's conditions and range against a file, and answers.
fn answer(
    req: &Request,
    content: Content,
    info: FileInfo,
    mime: &'static str,
    now: i64,
) -> Response {
    let conditions = Conditions::from_request(req);
    let outcome = evaluate(&conditions, &info, req.method() == "GET", now);
    file_response(outcome, content, info, mime)
}

/// Opens `path` read-only without following a final symlink and without blocking, and
/// checks, on the open descriptor, that it is a regular file.
fn open_regular(path: &Path) -> Result<(File, Metadata), Reject> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| Reject::from_io(&err))?;
    let meta = file.metadata().map_err(|err| Reject::from_io(&err))?;
    if !meta.is_file() {
        return Err(Reject::NotFound);
    }
    Ok((file, meta))
}

/// The validators and size of the file being served, taken from one fstat.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileInfo {
    size: u64,
    /// A strong entity-tag, quoted: `"<mtime ns>-<size>-<inode>"` in hex.
    etag: String,
    /// Seconds since the epoch, never later than now.
    last_modified: i64,
}

impl FileInfo {
    fn new(meta: &Metadata, now: i64) -> FileInfo {
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        FileInfo {
            size: meta.size(),
            // Strong (RFC 9110 §8.8.3): any write changes the nanosecond mtime or the size,
            // and a replaced file (rename over it) gets a new inode.
            etag: etag(mtime_ns, meta.size(), meta.ino()),
            // RFC 9110 §8.8.2.1: never announce a modification time in the future.
            last_modified: meta.mtime().min(now),
        }
    }
}

/// `"<mtime ns>-<size>-<inode>"`, each in hex. Written by hand: `format!` with an i128
/// cost more than the rest of a small file's response.
fn etag(mtime_ns: i128, size: u64, ino: u64) -> String {
    let mut tag = String::with_capacity(2 + 32 + 1 + 16 + 1 + 16);
    tag.push('"');
    if mtime_ns < 0 {
        tag.push('-');
    }
    push_hex(&mut tag, mtime_ns.unsigned_abs());
    tag.push('-');
    push_hex(&mut tag, u128::from(size));
    tag.push('-');
    push_hex(&mut tag, u128::from(ino));
    tag.push('"');
    tag
}

/// Appends `n` in lowercase hex, without leading zeros (`0` for zero), as `{:x}` does.
fn push_hex(out: &mut String, n: u128) {
    let digits = (128 - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        let nibble = ((n >> (i * 4)) & 0xf) as u32;
        out.push(char::from_digit(nibble, 16).unwrap_or('0'));
    }
}

/// The request's conditional and range fields. A field that is present but not UTF-8
/// reads as `""`: an invalid value, which each rule then treats as RFC 9110 says (an
/// If-Match that matches nothing, a date to ignore, a Range to ignore). Only a field's
/// first line is read, as `Request::header` returns it.
#[derive(Debug, Default, Clone, Copy)]
struct Conditions<'a> {
    if_match: Option<&'a str>,
    if_unmodified_since: Option<&'a str>,
    if_none_match: Option<&'a str>,
    if_modified_since: Option<&'a str>,
    range: Option<&'a str>,
    if_range: Option<&'a str>,
}

impl<'a> Conditions<'a> {
    fn from_request(req: &'a Request) -> Conditions<'a> {
        let field = |name| {
            req.header(name)
                .map(|raw| std::str::from_utf8(raw).unwrap_or(""))
        };
        Conditions {
            if_match: field("If-Match"),
            if_unmodified_since: field("If-Unmodified-Since"),
            if_none_match: field("If-None-Match"),
            if_modified_since: field("If-Modified-Since"),
            range: field("Range"),
            if_range: field("If-Range"),
        }
    }
}

/// What to answer for a file, once conditions and range are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 412: If-Match or If-Unmodified-Since failed.
    PreconditionFailed,
    /// 304: the client's copy is current.
    NotModified,
    /// 200 with the whole file.
    Full,
    /// 206 with `len` bytes from `start` (`len` is at least 1).
    Partial { start: u64, len: u64 },
    /// 416: the one range asked for starts past the end.
    Unsatisfiable,
}

/// RFC 9110 §13.2.2: preconditions in their fixed order, then the range. `get` is false
/// for HEAD, which §14.2 excludes from range handling.
fn evaluate(c: &Conditions, file: &FileInfo, get: bool, now: i64) -> Outcome {
    if let Some(outcome) = preconditions(c, file, now) {
        return outcome;
    }
    match c.range {
        // §13.1.5: a failed If-Range means "send me the whole thing".
        Some(range) if get && if_range_holds(c.if_range, file, now) => {
            parse_range(range, file.size)
        }
        _ => Outcome::Full,
    }
}

/// Steps 1 to 4 of RFC 9110 §13.2.2. Only GET and HEAD get here, so a matching
/// If-None-Match is always 304 (never 412).
fn preconditions(c: &Conditions, file: &FileInfo, now: i64) -> Option<Outcome> {
    // Invalid dates are ignored (§13.1.3, §13.1.4), as if the field were absent.
    let date = |value: Option<&str>| value.and_then(|v| parse_http_date(v, now));
    if let Some(list) = c.if_match {
        // §13.1.1: strong comparison.
        if !etag_list_matches(list, &file.etag, false) {
            return Some(Outcome::PreconditionFailed);
        }
    } else if let Some(since) = date(c.if_unmodified_since) {
        if file.last_modified > since {
            return Some(Outcome::PreconditionFailed);
        }
    }
    if let Some(list) = c.if_none_match {
        // §13.1.2: weak comparison. If-Modified-Since is then ignored, even on no match.
        if etag_list_matches(list, &file.etag, true) {
            return Some(Outcome::NotModified);
        }
    } else if let Some(since) = date(c.if_modified_since) {
        if file.last_modified <= since {
            return Some(Outcome::NotModified);
        }
    }
    None
}

/// Whether `list`, an If-Match or If-None-Match value (`*` or a comma-separated list of
/// entity-tags, RFC 9110 §8.8.3), matches `etag` (ours, strong and quoted). With `weak`
/// the `W/` prefix is disregarded (§8.8.3.2 weak comparison); without it a weak tag
/// never matches. A malformed list matches nothing from the first bad element on.
fn etag_list_matches(list: &str, etag: &str, weak: bool) -> bool {
    let list = trim_ows(list);
    if list == "*" {
        return true;
    }
    let mut rest = list.as_bytes();
    loop {
        rest = trim_start_bytes(rest, b" \t,");
        if rest.is_empty() {
            return false;
        }
        let (is_weak, tagged) = match rest.strip_prefix(b"W/") {
            Some(tail) => (true, tail),
            None => (false, rest),
        };
        // An entity-tag is a quoted string without inner quotes (etagc excludes DQUOTE).
        let Some(inner) = tagged.strip_prefix(b"\"") else {
            return false;
        };
        let Some(end) = inner.iter().position(|&b| b == b'"') else {
            return false;
        };
        if &tagged[..end + 2] == etag.as_bytes() && (weak || !is_weak) {
            return true;
        }
        rest = trim_start_bytes(&inner[end + 1..], b" \t");
        if !rest.is_empty() && rest[0] != b',' {
            return false;
        }
    }
}

/// RFC 9110 §13.1.5: true when there is no If-Range, or when it names the current
/// representation. An entity-tag must match strongly. A date must equal Last-Modified
/// and be a strong validator (§8.8.2.2): the file must not have changed within the
/// current second, or two versions could share that date.
fn if_range_holds(if_range: Option<&str>, file: &FileInfo, now: i64) -> bool {
    let Some(value) = if_range.map(trim_ows) else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        return value == file.etag;
    }
    parse_http_date(value, now)
        .is_some_and(|date| date == file.last_modified && file.last_modified < now)
}

/// Parses a Range value against a file of `size` bytes (RFC 9110 §14.1.2, §14.2). Only
/// one `bytes` range is honoured; a malformed value, another unit, or several ranges are
/// ignored (the whole file is sent), which §14.2 permits.
fn parse_range(value: &str, size: u64) -> Outcome {
    let Some((unit, set)) = value.split_once('=') else {
        return Outcome::Full;
    };
    // Range units are case-insensitive (§14.1); empty list elements are allowed (§5.6.1).
    let mut specs = set.split(',').map(trim_ows).filter(|spec| !spec.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Outcome::Full;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return Outcome::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Outcome::Full;
    };
    if first.is_empty() {
        return match digits(last) {
            Some(suffix) => suffix_range(suffix, size),
            None => Outcome::Full,
        };
    }
    let Some(first) = digits(first) else {
        return Outcome::Full;
    };
    if last.is_empty() {
        return int_range(first, None, size);
    }
    match digits(last) {
        // last-pos before first-pos makes the range-spec invalid (§14.1.1).
        Some(last) if last >= first => int_range(first, Some(last), size),
        _ => Outcome::Full,
    }
}

/// `first-last` (or `first-`): satisfiable when `first` is inside the file; `last` past
/// the end is clamped (§14.1.1).
fn int_range(first: u64, last: Option<u64>, size: u64) -> Outcome {
    if first >= size {
        return Outcome::Unsatisfiable;
    }
    let end = last.unwrap_or(u64::MAX).min(size - 1);
    Outcome::Partial {
        start: first,
        len: end - first + 1,
    }
}

/// `-n`: the last `n` bytes, or the whole file when it is shorter. `-0` asks for
/// nothing, and an empty file has no bytes to give: both unsatisfiable.
fn suffix_range(suffix: u64, size: u64) -> Outcome {
    if suffix == 0 || size == 0 {
        return Outcome::Unsatisfiable;
    }
    let len = suffix.min(size);
    Outcome::Partial {
        start: size - len,
        len,
    }
}

/// `1*DIGIT` as a number, saturating: a position beyond `u64` is simply past the end.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Builds the response for an evaluated file request.
fn file_response(
    outcome: Outcome,
    content: Content,
    info: FileInfo,
    mime: &'static str,
) -> Response {
    let size = info.size;
    match outcome {
        Outcome::PreconditionFailed => plain(412, "precondition failed\n"),
        // §15.4.5: a 304 carries the validators a 200 would have.
        Outcome::NotModified => with_validators(Response::new(304), info),
        Outcome::Unsatisfiable => plain(416, "range not satisfiable\n")
            .with_owned_header("Content-Range", format!("bytes */{size}")),
        Outcome::Full => representation(200, info, mime).with_body(content.body(0, size)),
        Outcome::Partial { start, len } => {
            let range = format!("bytes {start}-{}/{size}", start + len - 1);
            representation(206, info, mime)
                .with_owned_header("Content-Range", range)
                .with_body(content.body(start, len))
        }
    }
}

/// The headers shared by 200 and 206 (and one more for a 206's Content-Range), reserved
/// at once: more than fit inline.
fn representation(status: u16, info: FileInfo, mime: &'static str) -> Response {
    with_validators(Response::new(status).reserve_headers(6), info)
        .with_static_header("Content-Type", mime)
        .with_static_header("Accept-Ranges", "bytes")
}

fn with_validators(response: Response, info: FileInfo) -> Response {
    response
        .with_owned_header("ETag", info.etag)
        .with_owned_header("Last-Modified", http_date(info.last_modified))
        .with_static_header(NOSNIFF.0, NOSNIFF.1)
}

/// A short text/plain response, for errors and redirects.
fn plain(status: u16, text: &str) -> Response {
    Response::text(status, text).with_header(NOSNIFF.0, NOSNIFF.1)
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn trim_start_bytes<'b>(mut s: &'b [u8], set: &[u8]) -> &'b [u8] {
    while let [first, rest @ ..] = s {
        if !set.contains(first) {
            break;
        }
        s = rest;
    }
    s
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------
// Content types.
// ---------------------------------------------------------------------------------------

/// Extension (compared case-insensitively) to content type. Text formats say UTF-8.
/// JSON and XML carry no charset: JSON defines none (RFC 8259 §11) and an XML document
/// declares its own encoding (RFC 7303), which a wrong parameter would override.
const MIME_TYPES: &[(&str, &str)] = &[
    ("avif", "image/avif"),
    ("css", "text/css; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("htm", "text/html; charset=utf-8"),
    ("html", "text/html; charset=utf-8"),
    ("ico", "image/x-icon"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript; charset=utf-8"), // RFC 9239
    ("json", "application/json"),
    ("map", "application/json"),            // source maps
    ("md", "text/markdown; charset=utf-8"), // RFC 7763
    ("mjs", "text/javascript; charset=utf-8"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("otf", "font/otf"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("svg", "image/svg+xml"),
    ("ttf", "font/ttf"),
    ("txt", "text/plain; charset=utf-8"),
    ("wasm", "application/wasm"),
    ("webm", "video/webm"),
    ("webp", "image/webp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("xml", "application/xml"),
    ("zip", "application/zip"),
];

/// The content type for a file name. A `.gz` file is served as gzip data, not as its
/// contents with a `Content-Encoding`, because that is what the file is.
fn mime_type(path: &Path) -> &'static str {
    // Path::extension's rule, on the bytes (its component parsing cost more than the
    // lookup): what follows the last dot of the file name, unless that dot starts it.
    let bytes = path.as_os_str().as_bytes();
    let name = bytes.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let Some(dot) = name.iter().rposition(|&b| b == b'.').filter(|&i| i > 0) else {
        return DEFAULT_MIME;
    };
    let Some(key) = ext_key(&name[dot + 1..]) else {
        return DEFAULT_MIME;
    };
    MIME_KEYS
        .iter()
        .find(|&&(known, _)| known == key)
        .map_or(DEFAULT_MIME, |&(_, mime)| mime)
}

/// An extension lowercased and packed into one integer (little-endian bytes, zero-padded),
/// so a lookup is a scan of integer compares; `None` when it is longer than 8 bytes, as
/// no known one is.
const fn ext_key(ext: &[u8]) -> Option<u64> {
    if ext.len() > 8 {
        return None;
    }
    let mut key = 0u64;
    let mut i = 0;
    while i < ext.len() {
        key |= (ext[i].to_ascii_lowercase() as u64) << (8 * i);
        i += 1;
    }
    Some(key)
}

/// [`MIME_TYPES`] keyed by [`ext_key`], built at compile time.
static MIME_KEYS: [(u64, &str); MIME_TYPES.len()] = mime_keys();

const fn mime_keys() -> [(u64, &'static str); MIME_TYPES.len()] {
    let mut keys = [(0, ""); MIME_TYPES.len()];
    let mut i = 0;
    while i < MIME_TYPES.len() {
        let (ext, mime) = MIME_TYPES[i];
        let Some(key) = ext_key(ext.as_bytes()) else {
            panic!("a MIME_TYPES extension is longer than 8 bytes");
        };
        keys[i] = (key, mime);
        i += 1;
    }
    keys
}

// ---------------------------------------------------------------------------------------
// Directory listing (opt-in).
// ---------------------------------------------------------------------------------------

/// The listing page for `dir`, requested as `url_path` (which ends in `/`).
fn listing(url_path: &str, dir: &Path) -> Response {
    match listing_html(url_path, dir) {
        Ok(html) => Response::bytes(200, "text/html; charset=utf-8", html.into_bytes())
            .with_header(NOSNIFF.0, NOSNIFF.1),
        Err(err) => Reject::from_io(&err).response(),
    }
}

/// Renders the listing. Hidden entries are left out, as they cannot be fetched. Names are
/// HTML-escaped for display and percent-encoded in links, so a file called
/// `<script>` or `a:b` is text and a relative link, never markup or a URL scheme.
fn listing_html(url_path: &str, dir: &Path) -> io::Result<String> {
    let (mut entries, truncated) = read_listing(dir)?;
    entries.sort();
    let shown = percent_decode(url_path).map_or_else(
        |_| url_path.to_owned(),
        |b| String::from_utf8_lossy(&b).into_owned(),
    );
    let title = html_escape(&shown);
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         </head>\n<body>\n<h1>Index of {title}</h1>\n<ul>\n"
    );
    if url_path != "/" {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    // Writing to a String cannot fail.
    for (name, is_dir) in &entries {
        let slash = if *is_dir { "/" } else { "" };
        let href = percent_encode(name.as_bytes());
        let text = html_escape(&name.to_string_lossy());
        let _ = writeln!(html, "<li><a href=\"{href}{slash}\">{text}{slash}</a></li>");
    }
    if truncated {
        let _ = writeln!(html, "<li>(only the first {LISTING_LIMIT} entries)</li>");
    }
    html.push_str("</ul>\n</body></html>\n");
    Ok(html)
}

/// The visible entries of `dir` (name, is a directory), at most [`LISTING_LIMIT`] of
/// them, and whether more were left out.
fn read_listing(dir: &Path) -> io::Result<(Vec<(OsString, bool)>, bool)> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(b".") {
            continue;
        }
        if entries.len() == LISTING_LIMIT {
            return Ok((entries, true));
        }
        // Follows symlinks, so a link to a directory is listed with its slash.
        let is_dir = fs::metadata(entry.path()).is_ok_and(|meta| meta.is_dir());
        entries.push((name, is_dir));
    }
    Ok((entries, false))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// HTTP dates (RFC 9110 §5.6.7).
// ---------------------------------------------------------------------------------------

/// An HTTP-date (IMF-fixdate) as text, for Last-Modified.
fn http_date(secs: i64) -> String {
    String::from_utf8_lossy(&imf_fixdate(secs)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Limits, parse_head};
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory under the system temp dir, removed on drop.
    pub(super) struct TempDir(pub(super) PathBuf);

    impl TempDir {
        pub(super) fn new(tag: &str) -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("br-serve-static-{}-{tag}-{n}", std::process::id());
            let dir = std::env::temp_dir().join(name);
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A web root `www` with files, directories, hidden entries and symlinks that point
    /// inside and outside it, next to the directories `outside` and `www2` (a sibling
    /// whose name has `www` as a prefix).
    fn fixture() -> (TempDir, PathBuf) {
        let tmp = TempDir::new("fixture");
        let base = tmp.0.clone();
        let www = base.join("www");
        for dir in [
            "www/sub/deeper",
            "www/withindex",
            "www/idxdir",
            "www/.git",
            "outside",
            "www2",
        ] {
            fs::create_dir_all(base.join(dir)).expect("mkdir");
        }
        let files: &[(&str, &str)] = &[
            ("www/index.html", "<h1>home</h1>\n"),
            ("www/a.txt", "hello world\n"),
            ("www/empty.txt", ""),
            ("www/a b.txt", "space"),
            ("www/caf\u{e9}.txt", "utf8"),
            ("www/sub/b.txt", "bee\n"),
            ("www/withindex/index.html", "idx"),
            ("www/.secret", "hidden"),
            ("www/.git/config", "hidden"),
            ("outside/secret.txt", "outside"),
            ("www2/secret.txt", "sibling"),
        ];
        for (path, text) in files {
            fs::write(base.join(path), text).expect("write");
        }
        let links: &[(&str, PathBuf)] = &[
            ("www/link_in", PathBuf::from("a.txt")),
            ("www/dirlink", PathBuf::from("sub")),
            ("www/visible", PathBuf::from(".secret")),
            ("www/escape", PathBuf::from("../www2/secret.txt")),
            ("www/escape_abs", base.join("outside/secret.txt")),
            ("www/escape_dir", PathBuf::from("../outside")),
            (
                "www/idxdir/index.html",
                PathBuf::from("../../outside/secret.txt"),
            ),
            ("www/dangling", PathBuf::from("nowhere")),
        ];
        for (link, to) in links {
            symlink(to, base.join(link)).expect("symlink");
        }
        nix::unistd::mkfifo(&www.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        (tmp, www)
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        let limits = Limits {
            request_line: 8190,
            fields: 100,
            field_size: 8190,
            max_body: 1024,
        };
        match parse_head(raw.as_bytes(), &limits) {
            Ok(Some(head)) => Request::new(head, Vec::new(), None),
            _ => panic!("test request does not parse: {raw:?}"),
        }
    }

    /// (status, body length) for one request.
    fn get(
        app: &mut StaticFiles,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> (u16, u64) {
        let response = app.handle(&request(method, target, headers));
        (response.status(), response.body_len())
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
            ("/a/%00", BadRequest),
            ("/..%00", BadRequest),
            ("/a.txt%00.html", BadRequest),
            ("/%00/../etc", BadRequest),
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
        use Reject::{BadRequest, NotFound};
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
            ("/a/%00", Err(BadRequest)),
        ];
        for &(path, expected) in cases {
            assert_eq!(lookup(&www, path), expected, "{path:?}");
        }
        // Even an absolute path, which decode_path never produces, would not escape:
        // confinement checks the canonical result against the root.
        assert!(resolve(&www.join("sub"), &www.join("a.txt")).is_err());
    }

    #[test]
    fn handler_status_table() {
        let (_tmp, www) = fixture();
        let mut app = StaticFiles::new(&www, false).expect("root");
        let cases: &[(&str, u16, Option<u64>)] = &[
            ("/", 200, Some(14)),
            ("/index.html", 200, Some(14)),
            ("/a.txt", 200, Some(12)),
            ("/a.txt?download=1", 200, Some(12)),
            ("/a%2etxt", 200, Some(12)),
            ("/a%20b.txt", 200, Some(5)),
            ("/empty.txt", 200, Some(0)),
            ("/link_in", 200, Some(12)),
            ("/sub/b.txt", 200, Some(4)),
            ("/dirlink/b.txt", 200, Some(4)),
            ("/withindex/", 200, Some(3)),
            ("/sub", 301, None),
            ("/sub?x=1", 301, None),
            ("/dirlink", 301, None),
            ("/sub/", 404, None),
            ("/sub/deeper/", 404, None),
            ("/idxdir/", 404, None),
            ("/a.txt/", 404, None),
            ("/nope", 404, None),
            ("/.secret", 404, None),
            ("/.git/config", 404, None),
            ("/%2egit/config", 404, None),
            ("/visible", 404, None),
            ("/escape", 404, None),
            ("/escape_abs", 404, None),
            ("/escape_dir", 404, None),
            ("/escape_dir/secret.txt", 404, None),
            ("/fifo", 404, None),
            ("/%2e%2e/www2/secret.txt", 404, None),
            ("/sub/%2e%2e/a.txt", 404, None),
            ("/..%2fwww2%2fsecret.txt", 404, None),
            ("/%2e%2e%5cwww2", 404, None),
            ("//a.txt", 404, None),
            ("/a/%00", 400, None),
            // A malformed escape (`/%zz`) never gets here: the HTTP layer answers 400
            // first. `percent_decode`'s own table covers it.
        ];
        for &(target, status, len) in cases {
            let (got_status, got_len) = get(&mut app, "GET", target, &[]);
            assert_eq!(got_status, status, "{target}");
            if let Some(len) = len {
                assert_eq!(got_len, len, "{target}");
            }
        }
    }

    #[test]
    fn listing_is_opt_in() {
        let (_tmp, www) = fixture();
        let mut app = StaticFiles::new(&www, true).expect("root");
        for (target, status) in [
            ("/sub/", 200),
            ("/sub/deeper/", 200),
            ("/idxdir/", 200), // its index.html escapes the root, so it is not used
            ("/sub", 301),
            ("/escape_dir/", 404),
            ("/.git/", 404),
        ] {
            assert_eq!(get(&mut app, "GET", target, &[]).0, status, "{target}");
        }
        assert_eq!(get(&mut app, "GET", "/withindex/", &[]), (200, 3));
        assert_eq!(get(&mut app, "GET", "/", &[]), (200, 14));
    }

    #[test]
    fn listing_escapes_names_and_hides_dotfiles() {
        let tmp = TempDir::new("listing");
        fs::write(tmp.0.join("<b>&\"x'.txt"), "").expect("write");
        fs::write(tmp.0.join("a:b"), "").expect("write");
        fs::write(tmp.0.join(".hidden"), "").expect("write");
        fs::create_dir(tmp.0.join("sub")).expect("mkdir");
        let html = listing_html("/files/a%20b/", &tmp.0).expect("listing");
        assert!(
            html.contains("<title>Index of /files/a b/</title>"),
            "{html}"
        );
        assert!(html.contains("href=\"%3Cb%3E%26%22x%27.txt\">&lt;b&gt;&amp;&quot;x&#39;.txt<"));
        assert!(html.contains("href=\"a%3Ab\">a:b<"), "{html}");
        assert!(html.contains("href=\"sub/\">sub/<"), "{html}");
        assert!(html.contains("href=\"../\""), "{html}");
        assert!(!html.contains("hidden"), "{html}");
        let root = listing_html("/", &tmp.0).expect("listing");
        assert!(!root.contains("../"), "{root}");
    }

    #[test]
    fn methods_other_than_get_and_head_are_405() {
        let (_tmp, www) = fixture();
        let mut app = StaticFiles::new(&www, false).expect("root");
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "get"] {
            assert_eq!(get(&mut app, method, "/a.txt", &[]).0, 405, "{method}");
        }
        for target in ["/", "/a.txt", "/sub", "/nope", "/empty.txt"] {
            let head = get(&mut app, "HEAD", target, &[]);
            assert_eq!(head, get(&mut app, "GET", target, &[]), "HEAD {target}");
        }
    }

    #[test]
    fn handler_conditionals_and_ranges() {
        let (_tmp, www) = fixture();
        let mut app = StaticFiles::new(&www, false).expect("root");
        let meta = fs::metadata(www.join("a.txt")).expect("stat");
        let info = FileInfo::new(&meta, unix_now());
        let etag = info.etag.as_str();
        let date = http_date(info.last_modified);
        let future = http_date(unix_now() + 3600);
        // (method, target, request headers, (status, body length))
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], (u16, u64));
        let cases: &[Case] = &[
            ("GET", "/a.txt", &[("If-None-Match", etag)], (304, 0)),
            ("HEAD", "/a.txt", &[("If-None-Match", etag)], (304, 0)),
            ("GET", "/a.txt", &[("If-None-Match", "\"old\"")], (200, 12)),
            ("GET", "/a.txt", &[("If-Modified-Since", &date)], (304, 0)),
            ("GET", "/a.txt", &[("If-Modified-Since", &future)], (304, 0)),
            ("GET", "/a.txt", &[("If-Match", "\"old\"")], (412, 20)),
            ("GET", "/a.txt", &[("If-Match", etag)], (200, 12)),
            ("GET", "/a.txt", &[("Range", "bytes=0-4")], (206, 5)),
            ("GET", "/a.txt", &[("Range", "bytes=-3")], (206, 3)),
            ("GET", "/a.txt", &[("Range", "bytes=6-")], (206, 6)),
            ("GET", "/a.txt", &[("Range", "bytes=12-")], (416, 22)),
            ("GET", "/a.txt", &[("Range", "bytes=0-1,4-5")], (200, 12)),
            ("GET", "/a.txt", &[("Range", "bytes=junk")], (200, 12)),
            ("HEAD", "/a.txt", &[("Range", "bytes=0-4")], (200, 12)),
            (
                "GET",
                "/a.txt",
                &[("Range", "bytes=0-4"), ("If-Range", etag)],
                (206, 5),
            ),
            (
                "GET",
                "/a.txt",
                &[("Range", "bytes=0-4"), ("If-Range", "\"old\"")],
                (200, 12),
            ),
            ("GET", "/empty.txt", &[("Range", "bytes=0-")], (416, 22)),
            ("GET", "/empty.txt", &[("Range", "bytes=-5")], (416, 22)),
        ];
        for (method, target, headers, expected) in cases {
            assert_eq!(
                get(&mut app, method, target, headers),
                *expected,
                "{method} {target} {headers:?}"
            );
        }
    }

    #[test]
    fn cached_bytes_answer_exactly_as_the_file_does() {
        use std::os::unix::fs::FileExt;
        let (_tmp, www) = fixture();
        let path = www.join("a.txt");
        let content = fs::read(&path).expect("read");
        let now = unix_now();
        let info = FileInfo::new(&fs::metadata(&path).expect("stat"), now);
        // The body's bytes, whichever way they are carried.
        let bytes = |body: &Body| match body {
            Body::Empty => Vec::new(),
            Body::Bytes(bytes) => bytes.clone(),
            Body::File { file, offset, len } => {
                let mut buf = vec![0; *len as usize];
                file.read_exact_at(&mut buf, *offset).expect("read");
                buf
            }
            Body::Static(bytes) => bytes.to_vec(),
        };
        for range in [
            "bytes=0-4",
            "bytes=-3",
            "bytes=6-",
            "bytes=11-11",
            "bytes=12-",
            "x",
        ] {
            let req = request("GET", "/a.txt", &[("Range", range)]);
            let file = File::open(&path).expect("open");
            let from_file = answer(&req, Content::File(file), info.clone(), "text/plain", now);
            let memory = Content::Memory(&content);
            let from_memory = answer(&req, memory, info.clone(), "text/plain", now);
            assert_eq!(from_memory.status(), from_file.status(), "{range}");
            let headers = |r: &Response| {
                r.headers()
                    .map(|(n, v)| format!("{n}: {v}"))
                    .collect::<Vec<_>>()
            };
            assert_eq!(headers(&from_memory), headers(&from_file), "{range}");
            assert_eq!(
                bytes(from_memory.body()),
                bytes(from_file.body()),
                "{range}"
            );
        }
    }

    #[test]
    fn new_canonicalizes_and_rejects_bad_roots() {
        let (tmp, www) = fixture();
        let canonical = fs::canonicalize(&www).expect("canonical");
        let via_dotdot = StaticFiles::new(&www.join("sub/.."), false).expect("dotdot root");
        assert_eq!(via_dotdot.root(), canonical);
        symlink(&www, tmp.0.join("wwwlink")).expect("symlink");
        let via_link = StaticFiles::new(&tmp.0.join("wwwlink"), false).expect("linked root");
        assert_eq!(via_link.root(), canonical);

        let missing = StaticFiles::new(&tmp.0.join("missing"), false).expect_err("missing root");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(missing.to_string().contains("missing"), "{missing}");
        let file = StaticFiles::new(&www.join("a.txt"), false).expect_err("file root");
        assert_eq!(file.kind(), io::ErrorKind::NotADirectory);
        assert!(file.to_string().contains("not a directory"), "{file}");
    }

    #[test]
    fn directory_location_keeps_the_query() {
        assert_eq!(directory_location("/sub", None), "/sub/");
        assert_eq!(directory_location("/sub", Some("a=1&b")), "/sub/?a=1&b");
        assert_eq!(directory_location("/a%20b", Some("")), "/a%20b/?");
    }

    #[test]
    fn file_info_validators() {
        let tmp = TempDir::new("info");
        let path = tmp.0.join("f");
        fs::write(&path, "one").expect("write");
        let first = FileInfo::new(&fs::metadata(&path).expect("stat"), unix_now());
        assert_eq!(first.size, 3);
        assert!(
            first.etag.starts_with('"') && first.etag.ends_with('"'),
            "{}",
            first.etag
        );
        assert_eq!(first.etag.matches('-').count(), 2, "{}", first.etag);
        fs::write(&path, "three").expect("write");
        let second = FileInfo::new(&fs::metadata(&path).expect("stat"), unix_now());
        assert_ne!(first.etag, second.etag);
        // A modification time in the future is announced as now (RFC 9110 §8.8.2.1).
        let clamped = FileInfo::new(&fs::metadata(&path).expect("stat"), 1000);
        assert_eq!(clamped.last_modified, 1000);
    }

    #[test]
    fn etag_is_hex_like_format() {
        let cases = [
            (0_i128, 0_u64, 0_u64),
            (1_700_000_000_123_456_789, 14, 123_456),
            (-1_500_000_000, u64::MAX, 1),
            (i128::from(i64::MAX) * 1_000_000_000, 1 << 40, u64::MAX),
        ];
        for (mtime_ns, size, ino) in cases {
            let sign = if mtime_ns < 0 { "-" } else { "" };
            let want = format!("\"{sign}{:x}-{size:x}-{ino:x}\"", mtime_ns.unsigned_abs());
            assert_eq!(etag(mtime_ns, size, ino), want);
        }
    }

    #[test]
    fn mime_table() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("old.HTM", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("mod.mjs", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("data.json", "application/json"),
            ("app.js.map", "application/json"),
            ("feed.xml", "application/xml"),
            ("logo.svg", "image/svg+xml"),
            ("photo.JPG", "image/jpeg"),
            ("photo.jpeg", "image/jpeg"),
            ("anim.gif", "image/gif"),
            ("img.webp", "image/webp"),
            ("img.avif", "image/avif"),
            ("favicon.ico", "image/x-icon"),
            ("a.PNG", "image/png"),
            ("m.wasm", "application/wasm"),
            ("doc.pdf", "application/pdf"),
            ("a.zip", "application/zip"),
            ("a.tar.gz", "application/gzip"),
            ("v.mp4", "video/mp4"),
            ("v.webm", "video/webm"),
            ("s.mp3", "audio/mpeg"),
            ("f.woff", "font/woff"),
            ("f.woff2", "font/woff2"),
            ("f.ttf", "font/ttf"),
            ("f.otf", "font/otf"),
            ("t.csv", "text/csv; charset=utf-8"),
            ("README.md", "text/markdown; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("Makefile", DEFAULT_MIME),
            ("archive.tar", DEFAULT_MIME),
            ("dir.d/file", DEFAULT_MIME),
            ("trailing.", DEFAULT_MIME),
            ("a.html5", DEFAULT_MIME),
        ];
        for (name, mime) in cases {
            assert_eq!(mime_type(Path::new(name)), mime, "{name}");
            assert_eq!(mime_type(&Path::new("/srv/www").join(name)), mime, "{name}");
        }
    }

    #[test]
    fn parse_range_table() {
        use Outcome::{Full, Partial, Unsatisfiable};
        let p = |start, len| Partial { start, len };
        let cases: &[(&str, u64, Outcome)] = &[
            ("bytes=0-0", 100, p(0, 1)),
            ("bytes=0-99", 100, p(0, 100)),
            ("bytes=0-1000", 100, p(0, 100)),
            ("bytes=99-99", 100, p(99, 1)),
            ("bytes=10-", 100, p(10, 90)),
            ("bytes=-10", 100, p(90, 10)),
            ("bytes=-1000", 100, p(0, 100)),
            ("BYTES=1-2", 100, p(1, 2)),
            ("bytes= 1-2 ", 100, p(1, 2)),
            ("bytes=1-2,", 100, p(1, 2)),
            ("bytes=, 1-2", 100, p(1, 2)),
            ("bytes=0-18446744073709551616", 100, p(0, 100)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=18446744073709551616-", 100, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=5-4", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("bytes=0-1, 200-300", 100, Full),
            ("bytes=500-600,700-800", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes =0-1", 100, Full),
            ("bytes", 100, Full),
            ("bytes=", 100, Full),
            ("bytes=,", 100, Full),
            ("bytes=-", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=1-x", 100, Full),
            ("bytes=5--", 100, Full),
            ("bytes=-1-2", 100, Full),
            ("bytes=+1-2", 100, Full),
            ("bytes=1 -2", 100, Full),
            ("bytes=0x10-", 100, Full),
            ("bytes=1", 100, Full),
            ("", 100, Full),
        ];
        for &(value, size, expected) in cases {
            assert_eq!(parse_range(value, size), expected, "{value:?} of {size}");
        }
    }

    #[test]
    fn etag_list_table() {
        let ours = "\"abc\"";
        // (list, strong comparison result, weak comparison result)
        let cases = [
            ("\"abc\"", true, true),
            ("W/\"abc\"", false, true),
            ("*", true, true),
            (" * ", true, true),
            ("\"x\", \"abc\"", true, true),
            ("\"x\",\"abc\"", true, true),
            ("\"x\" ,\t\"abc\"", true, true),
            (",, \"abc\" ,,", true, true),
            ("\"a,b\", \"abc\"", true, true),
            ("\"ab\"", false, false),
            ("\"abcd\"", false, false),
            ("abc", false, false),
            ("\"abc", false, false),
            ("w/\"abc\"", false, false),
            ("\"x\" \"abc\"", false, false),
            ("\"x\", garbage, \"abc\"", false, false),
            ("*, \"abc\"", false, false),
            ("", false, false),
        ];
        for (list, strong, weak) in cases {
            assert_eq!(
                etag_list_matches(list, ours, false),
                strong,
                "strong {list:?}"
            );
            assert_eq!(etag_list_matches(list, ours, true), weak, "weak {list:?}");
        }
    }

    #[test]
    fn evaluate_follows_rfc9110_precedence() {
        use Outcome::{Full, NotModified, Partial, PreconditionFailed, Unsatisfiable};
        const T: i64 = 784_111_777;
        let file = FileInfo {
            size: 100,
            etag: "\"abc\"".into(),
            last_modified: T,
        };
        let (at, before, after) = (http_date(T), http_date(T - 1), http_date(T + 1));
        let c = Conditions::default;
        let cases: Vec<(Conditions, bool, Outcome)> = vec![
            (c(), true, Full),
            (
                Conditions {
                    if_match: Some("\"abc\""),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    if_match: Some("*"),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    if_match: Some("W/\"abc\""),
                    ..c()
                },
                true,
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_match: Some("\"x\""),
                    ..c()
                },
                true,
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_match: Some(""),
                    ..c()
                },
                true,
                PreconditionFailed,
            ),
            // If-Match is step 1: it wins over a matching If-None-Match.
            (
                Conditions {
                    if_match: Some("\"x\""),
                    if_none_match: Some("\"abc\""),
                    ..c()
                },
                true,
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_unmodified_since: Some(&at),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    if_unmodified_since: Some(&before),
                    ..c()
                },
                true,
                PreconditionFailed,
            ),
            (
                Conditions {
                    if_unmodified_since: Some("soon"),
                    ..c()
                },
                true,
                Full,
            ),
            // If-Unmodified-Since is ignored when If-Match is present.
            (
                Conditions {
                    if_match: Some("\"abc\""),
                    if_unmodified_since: Some(&before),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    if_none_match: Some("\"abc\""),
                    ..c()
                },
                true,
                NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some("W/\"abc\""),
                    ..c()
                },
                false,
                NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some("*"),
                    ..c()
                },
                true,
                NotModified,
            ),
            (
                Conditions {
                    if_none_match: Some("\"x\""),
                    ..c()
                },
                true,
                Full,
            ),
            // If-Modified-Since is ignored when If-None-Match is present.
            (
                Conditions {
                    if_none_match: Some("\"x\""),
                    if_modified_since: Some(&at),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    if_modified_since: Some(&at),
                    ..c()
                },
                true,
                NotModified,
            ),
            (
                Conditions {
                    if_modified_since: Some(&after),
                    ..c()
                },
                false,
                NotModified,
            ),
            (
                Conditions {
                    if_modified_since: Some(&before),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    if_modified_since: Some("garbage"),
                    ..c()
                },
                true,
                Full,
            ),
            // Preconditions come before the range.
            (
                Conditions {
                    if_none_match: Some("\"abc\""),
                    range: Some("bytes=0-9"),
                    ..c()
                },
                true,
                NotModified,
            ),
            (
                Conditions {
                    if_match: Some("\"x\""),
                    range: Some("bytes=0-9"),
                    ..c()
                },
                true,
                PreconditionFailed,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    ..c()
                },
                true,
                Partial { start: 0, len: 10 },
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    ..c()
                },
                false,
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=100-"),
                    ..c()
                },
                true,
                Unsatisfiable,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some("\"abc\""),
                    ..c()
                },
                true,
                Partial { start: 0, len: 10 },
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some("W/\"abc\""),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some("\"x\""),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some(&at),
                    ..c()
                },
                true,
                Partial { start: 0, len: 10 },
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some(&before),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=0-9"),
                    if_range: Some("junk"),
                    ..c()
                },
                true,
                Full,
            ),
            (
                Conditions {
                    range: Some("bytes=100-"),
                    if_range: Some("\"x\""),
                    ..c()
                },
                true,
                Full,
            ),
            // If-Range without Range changes nothing.
            (
                Conditions {
                    if_range: Some("\"x\""),
                    ..c()
                },
                true,
                Full,
            ),
        ];
        for (conditions, is_get, expected) in cases {
            assert_eq!(
                evaluate(&conditions, &file, is_get, T + 1000),
                expected,
                "{conditions:?} get={is_get}"
            );
        }
    }

    #[test]
    fn if_range_date_must_be_strong() {
        const T: i64 = 784_111_777;
        let file = FileInfo {
            size: 100,
            etag: "\"abc\"".into(),
            last_modified: T,
        };
        let at = http_date(T);
        assert!(if_range_holds(None, &file, T));
        assert!(if_range_holds(Some(&at), &file, T + 1));
        // Modified within the current second: the date could name two versions.
        assert!(!if_range_holds(Some(&at), &file, T));
        assert!(if_range_holds(Some(" \"abc\" "), &file, T));
    }

    #[test]
    fn escaping_helpers() {
        assert_eq!(percent_encode(b"a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(
            percent_encode(b"a b/c?d#e%f:g"),
            "a%20b%2Fc%3Fd%23e%25f%3Ag"
        );
        assert_eq!(percent_encode("\u{e9}\u{ff}".as_bytes()), "%C3%A9%C3%BF");
        assert_eq!(
            html_escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(trim_start_bytes(b" ,\t x", b" ,\t"), b"x");
        assert_eq!(digits("007"), Some(7));
        assert_eq!(digits("99999999999999999999999"), Some(u64::MAX));
        assert_eq!(digits(""), None);
        assert_eq!(digits("-1"), None);
    }
}
