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
//!   `ETag` from its mtime in nanoseconds and its size (not its inode, which differs
//!   between replicas serving the same files).
//! * **Conditional requests** (RFC 9110 §13): `If-Match`, `If-Unmodified-Since`,
//!   `If-None-Match`, `If-Modified-Since` and `If-Range`, evaluated in the order of §13.2.2.
//! * **Ranges** (RFC 9110 §14): one byte range gives 206; an unsatisfiable one gives 416;
//!   several ranges give the whole file (200), which §14.2 allows and which spares us
//!   multipart bodies and the "many small ranges" amplification attacks.
//! * **Content types** from a small extension table; everything else is
//!   `application/octet-stream`. Every response carries `X-Content-Type-Options: nosniff`
//!   so a browser never second-guesses that choice.
//! * **Optional extras**: `Cache-Control: max-age` ([`StaticFiles::with_max_age`]),
//!   precompressed `FILE.br`/`FILE.gz` ([`StaticFiles::with_precompressed`]) and a
//!   single-page app's fallback file ([`StaticFiles::with_fallback`]).
//!
//! The parts live in submodules: `path` (decoding and confinement, the security
//! boundary), `conditional` (validators, conditions and ranges), `mime`, `encoding`
//! (`Accept-Encoding`), `listing` and `cache`; this file ties them into the [`Handler`].
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
//! root and has no component starting with `.` below the root, except `.well-known` right
//! under it (RFC 8615: ACME challenges, `security.txt`). Concretely:
//!
//! 1. The path (never the query) is percent-decoded here, once, strictly: a `%` not
//!    followed by two hex digits is 400 (a `%00` never gets here: the HTTP layer answers
//!    it 404, as naming nothing).
//! 2. Each `/`-separated segment is checked *after* decoding. A segment is refused (404)
//!    when it is empty (`//etc/passwd`, `/a//b`), when it starts with `.` (`.`, `..`,
//!    `%2e%2e`, `.%2e`, and dotfiles such as `.git` or `.env`; `.well-known` is allowed
//!    as the first segment, and only there), or when it contains `/`
//!    (`%2F`) or `\` (raw or `%5C`). An absolute-form target (`http://host/a.txt`) names
//!    the file its path does.
//! 3. The checked segments, joined by `/`, are appended to the root (no segment is empty
//!    or holds a `/`, so the result cannot name anything but a path below the root
//!    before symlinks), and the result is canonicalized:
//!    every symlink is resolved. The canonical path must still be under the root, compared
//!    component by component (so a sibling `/srv/www2` is not inside `/srv/www`), and no
//!    component below the root may start with `.` (a symlink to `.git` is refused too),
//!    but for the same `.well-known` exception.
//!    Anything else is 404, so a probe learns nothing about the rest of the disk.
//! 4. Only regular files and directories are served. The file is opened by its canonical
//!    path with `O_NOFOLLOW` (a symlink swapped in after the check fails to open) and
//!    `O_NONBLOCK` (a FIFO swapped in cannot hang the worker), then checked again on the
//!    descriptor: the kernel's name for what was opened (`/proc/self/fd/N`) must be that
//!    canonical path (a directory on the way swapped for a symlink since the check led
//!    elsewhere), and fstat must say a regular file; its metadata also supplies the
//!    validators, so they describe the bytes sent. A listing reads the directory through
//!    its descriptor, checked the same way, and `--static-fallback` goes through the same
//!    open, so it cannot leave the root either.
//!
//! 5. The small-file cache serves only bytes read through a descriptor that the fast path
//!    (`open_beneath`) opened, and only while the path still names that same inode,
//!    unchanged (the `cache` module says why that is enough).
//!
//! Hidden files are refused on purpose: nginx serves them, and `.git/`, `.env` and
//! `.htpasswd` leak from web roots that way every day. Permission errors inside the root
//! are 403; everything else that cannot be served is 404.

mod cache;
mod conditional;
mod encoding;
mod listing;
mod mime;
mod path;

use std::borrow::Cow;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use self::cache::FileCache;
use self::conditional::{Conditions, FileInfo, Outcome, evaluate};
use self::encoding::Coding;
use self::listing::listing;
pub use self::mime::mime_type;
use self::path::{
    Reject, Target, confine, decode_path, hidden, open_beneath, open_regular, resolve,
};
use crate::Handler;
use crate::app::refuse_method;
use crate::http::date::imf_fixdate;
use crate::http::{Body, Request, RequestHead, Response};

/// The file served for a directory URL ending in `/`.
const INDEX_FILE: &str = "index.html";

const NOSNIFF: (&str, &str) = ("X-Content-Type-Options", "nosniff");

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
    /// The root as configured (made absolute), looked at again once a second: a deploy
    /// may have made it name another directory ([`StaticFiles::follow_root`]).
    given: PathBuf,
    /// When `given` was last looked at, in Unix seconds.
    root_checked: i64,
    /// The directory `given` named that could not be opened (device, inode), said once.
    root_refused: Option<(u64, u64)>,
    /// What `given` named when last looked at, canonical.
    root: PathBuf,
    listing: bool,
    /// The root, open, for the one-syscall fast path (`open_beneath`).
    root_dir: Arc<File>,
    /// Small files served before, checked against the disk on every hit.
    cache: FileCache,
    /// The `Cache-Control` value for cacheable answers (`max-age=N`), when one is set.
    cache_control: Option<String>,
    /// Serve `FILE.br` or `FILE.gz` for `FILE` to clients that accept the coding.
    precompressed: bool,
    /// For a request that finds nothing (a single-page app's `index.html`): the path
    /// configured, and the file it names under the root, canonical.
    fallback: Option<(String, Option<PathBuf>)>,
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
    /// Serves the directory `root`. It is canonicalized here, so every request is
    /// confined against the real directory even if `root` is given through a symlink,
    /// and again at most once a second as requests come, so that a deploy that makes
    /// `root` name another directory (a symlink switched, a directory renamed into
    /// place) is served from then on, whole, as nginx resolves its `root` per request.
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
        let given = std::path::absolute(root).map_err(context)?;
        let (canonical, root_dir) = open_root(&given).map_err(context)?;
        Ok(StaticFiles {
            given,
            root_checked: unix_now(),
            root_refused: None,
            root: canonical,
            listing,
            root_dir: Arc::new(root_dir),
            cache: FileCache::new(DEFAULT_CACHE_BYTES),
            cache_control: None,
            precompressed: false,
            fallback: None,
        })
    }

    /// The directory `root` served as `br-serve --static` serves it: listing, the
    /// small-file cache, `Cache-Control`, precompressed files and the fallback as `config`
    /// says (`--static-listing`, `--static-cache`, `--static-max-age`,
    /// `--static-precompressed`, `--static-fallback`).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new) and [`with_fallback`](Self::with_fallback).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    ///
    /// use br_serve::app::static_files::StaticFiles;
    /// use br_serve::config::from_argv;
    ///
    /// // The `--static-*` flags need `--static` (each is refused without it).
    /// let args = ["my-app", "--static", ".", "--static-listing", "--static-max-age", "600"];
    /// let config = from_argv(args.map(Into::into).to_vec())?;
    /// let _files = StaticFiles::from_config(Path::new("."), &config)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_config(root: &Path, config: &crate::Config) -> io::Result<StaticFiles> {
        let mut files =
            StaticFiles::new(root, config.static_listing)?.with_cache(config.static_cache);
        if let Some(max_age) = config.static_max_age {
            files = files.with_max_age(max_age);
        }
        if config.static_precompressed {
            files = files.with_precompressed();
        }
        match &config.static_fallback {
            Some(path) => files.with_fallback(path),
            None => Ok(files),
        }
    }

    /// Answers a request that finds nothing (what would be a 404) with the file at
    /// `path` under the root instead, with status 200: nginx's
    /// `try_files $uri $uri/ /index.html`, which a single-page app needs so that a deep
    /// link like `/orders/42` loads the app that routes it. `path` is checked now by the
    /// same rules as a request (no hidden components, inside the root after symlinks).
    ///
    /// # Errors
    ///
    /// When `path` is malformed, names a directory, or is not a file under the root.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::app::static_files::StaticFiles;
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Handler, Request};
    ///
    /// # let root = std::env::temp_dir().join(format!("br-serve-doc-spa-{}", std::process::id()));
    /// # std::fs::create_dir_all(&root)?;
    /// std::fs::write(root.join("index.html"), "<div id=app></div>")?;
    /// let mut files = StaticFiles::new(&root, false)?.with_fallback("/index.html")?;
    ///
    /// let raw = b"GET /orders/42 HTTP/1.1\r\nHost: h\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let resp = files.handle(&Request::new(head, Vec::new(), None));
    /// assert_eq!((resp.status(), resp.body_len()), (200, 18));
    ///
    /// assert!(StaticFiles::new(&root, false)?.with_fallback("/missing.html").is_err());
    /// # std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_fallback(mut self, path: &str) -> io::Result<StaticFiles> {
        let file = fallback_file(&self.root, path)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        self.fallback = Some((path.to_string(), Some(file)));
        Ok(self)
    }

    /// Serves `FILE.br` or `FILE.gz`, when it sits beside `FILE`, in place of `FILE` to
    /// a client whose `Accept-Encoding` allows that coding (brotli first at equal
    /// preference): with `FILE`'s content type, `Content-Encoding`, and validators of
    /// its own, since it is another representation. Every file answer then carries
    /// `Vary: Accept-Encoding`, so a shared cache keeps the codings apart. This is
    /// nginx's `gzip_static`: compression done once, at build time, not per request.
    /// A compressed variant is served only as a plain file reached through no symlink.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::app::static_files::StaticFiles;
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Body, Handler, Request};
    ///
    /// # let root = std::env::temp_dir().join(format!("br-serve-doc-gz-{}", std::process::id()));
    /// # std::fs::create_dir_all(&root)?;
    /// std::fs::write(root.join("app.js"), "console.log('plain');\n")?;
    /// std::fs::write(root.join("app.js.gz"), [0x1f, 0x8b, 8, 0])?; // gzip it at build time
    /// let mut files = StaticFiles::new(&root, false)?.with_precompressed();
    ///
    /// let raw = b"GET /app.js HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, br\r\n\r\n";
    /// let head = parse_head(raw, &Limits::default())?.expect("a complete head");
    /// let resp = files.handle(&Request::new(head, Vec::new(), None));
    /// let header = |name: &str| resp.headers().find(|(n, _)| *n == name).map(|(_, v)| v);
    /// assert_eq!(header("Content-Encoding"), Some("gzip")); // no app.js.br here
    /// assert_eq!(header("Content-Type"), Some("text/javascript; charset=utf-8"));
    /// assert_eq!(resp.body_len(), 4);
    /// # std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_precompressed(mut self) -> StaticFiles {
        self.precompressed = true;
        self
    }

    /// Adds `Cache-Control: max-age=N` (whole seconds, a fraction rounded up: `0.25`
    /// must not become `max-age=0`, "do not keep") to the answers worth keeping: a file or
    /// a listing (200), part of a file (206), a 304 that revalidates one, and a directory
    /// redirect (301), as nginx's `expires` does. Errors get none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use br_serve::app::static_files::StaticFiles;
    /// use br_serve::http::{Limits, parse_head};
    /// use br_serve::{Handler, Request};
    ///
    /// # let root = std::env::temp_dir().join(format!("br-serve-doc-age-{}", std::process::id()));
    /// # std::fs::create_dir_all(&root)?;
    /// std::fs::write(root.join("logo.svg"), "<svg/>")?;
    /// let mut files = StaticFiles::new(&root, false)?.with_max_age(Duration::from_secs(86_400));
    ///
    /// let get = |target: &str| -> Request {
    ///     let raw = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
    ///     Request::new(parse_head(raw.as_bytes(), &Limits::default()).unwrap().unwrap(), Vec::new(), None)
    /// };
    /// let mut cache_control = |target: &str| {
    ///     let resp = files.handle(&get(target));
    ///     resp.headers().find(|(name, _)| *name == "Cache-Control").map(|(_, v)| v.to_string())
    /// };
    /// assert_eq!(cache_control("/logo.svg").as_deref(), Some("max-age=86400"));
    /// assert_eq!(cache_control("/missing.svg"), None); // a 404 is not kept
    ///
    /// let mut brief = StaticFiles::new(&root, false)?.with_max_age(Duration::from_millis(250));
    /// let resp = brief.handle(&get("/logo.svg"));
    /// assert!(resp.headers().any(|header| header == ("Cache-Control", "max-age=1")));
    /// # std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> StaticFiles {
        let seconds = max_age.as_secs() + u64::from(max_age.subsec_nanos() > 0);
        self.cache_control = Some(format!("max-age={seconds}"));
        self
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
    /// Symbolic links and `..` in the path given to [`new`](Self::new) are resolved at
    /// start-up (and again once a second after, should the path come to name another
    /// directory):
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
    /// `Some` answer is final, as `open_beneath`'s is. `coding` is the one a precompressed
    /// variant is stored in, which its entity-tag names.
    fn fast_path(
        &mut self,
        req: &Request,
        relative: &Path,
        mime: &'static str,
        coding: Option<Coding>,
    ) -> Option<Result<Response, Reject>> {
        let now = unix_now();
        let tagged = |info: FileInfo| info.in_coding(coding.map(Coding::name));
        if let Some(hit) = self.cache.get(&self.root_dir, relative, now) {
            let memory = Content::Memory(hit.content);
            return Some(Ok(answer(req, memory, tagged(hit.info), mime.into(), now)));
        }
        let (file, meta) = match open_beneath(&self.root_dir, relative)? {
            Ok(opened) => opened,
            Err(reject) => return Some(Err(reject)),
        };
        let (content, info) = match self.cache.admit(relative, &file, &meta, now) {
            Some(hit) => (Content::Memory(hit.content), hit.info),
            None => (Content::File(file), FileInfo::new(&meta, now)),
        };
        Some(Ok(answer(req, content, tagged(info), mime.into(), now)))
    }

    /// `file` in a coding the client accepts, from `file.br` or `file.gz`, if one is there.
    /// The variant's name is held to the hidden-name rule too: `.well-known` is served,
    /// but `.well-known.br` is a dotfile like any other.
    fn precompressed_variant(&mut self, req: &Request, file: &Path) -> Option<Response> {
        let mime = mime_type(file);
        let last = file.components().count().saturating_sub(1);
        for coding in encoding::accepted(req.header_list("Accept-Encoding").as_deref()) {
            let mut name = file.as_os_str().to_owned();
            name.push(coding.suffix());
            let variant = Path::new(&name);
            let variant_name = variant.file_name().map(OsStrExt::as_bytes);
            if variant_name.is_none_or(|variant_name| hidden(last, variant_name)) {
                continue;
            }
            if let Some(Ok(response)) = self.fast_path(req, variant, mime, Some(coding)) {
                // A 304, 412 or 416 has no content to be encoded.
                return Some(match response.status() {
                    200 | 206 => response.with_static_header("Content-Encoding", coding.name()),
                    _ => response,
                });
            }
        }
        None
    }

    /// Answers a request for a directory whose URL ends in `/`.
    fn directory(&self, req: &Request, dir: &Path) -> Response {
        match confine(&self.root, &dir.join(INDEX_FILE)) {
            Ok(Target::File(index)) => serve_file(req, &index, mime_type(Path::new(INDEX_FILE))),
            Ok(Target::Dir(_)) | Err(Reject::NotFound) if self.listing => {
                listing(req, dir, &self.root)
            }
            Ok(Target::Dir(_)) => Reject::NotFound.response(),
            Err(reject) => reject.response(),
        }
    }
}

impl Handler for StaticFiles {
    fn handle(&mut self, req: &Request) -> Response {
        self.follow_root();
        let mut response = self.route(req);
        let fallback = self.fallback.as_ref();
        let fallback = fallback.and_then(|(path, file)| Some((path, file.as_deref()?)));
        if let Some((path, file)) = fallback.filter(|_| response.status() == 404) {
            response = serve_file(req, file, mime_type(Path::new(path)));
        }
        let status = response.status();
        let keepable = matches!(status, 200 | 206 | 301 | 304);
        if let Some(value) = self.cache_control.as_deref().filter(|_| keepable) {
            response = response.with_header("Cache-Control", value);
        }
        // Every answer whose choice of file depended on Accept-Encoding says so (RFC 9110
        // §12.5.5), a refusal too: a 416's Content-Range gives the variant's length, and
        // a 404 may be for a file that exists only compressed, as may a directory's 301
        // (`/dir` beside `dir.gz`).
        if self.precompressed && matches!(status, 200 | 206 | 301 | 304 | 404 | 412 | 416) {
            response = response.with_static_header("Vary", "Accept-Encoding");
        }
        response
    }

    /// A body is never wanted here (files are only read): a request that brings one is
    /// refused before it is sent, as nginx does, not after the whole upload (a client
    /// that asks `Expect: 100-continue` gets no `100 Continue`). A GET or HEAD with a
    /// body is answered as usual.
    fn before_body(&mut self, head: &RequestHead) -> Option<Response> {
        (!matches!(head.method(), "GET" | "HEAD")).then(|| method_not_allowed(head.method()))
    }
}

/// Answers `req` with a file the handler has opened, as `--static` answers with its own
/// files: `ETag` and `Last-Modified` from one fstat of the open file (so they describe the
/// bytes sent), conditional requests (304, 412), one byte range (206, or 416 past the
/// end), `Accept-Ranges: bytes`, and the body sent with sendfile(2), never read into
/// memory. For a handler that decides itself which file a request may have: a download
/// behind a login check, a file named in a database (werkzeug's `send_file`, or nginx's
/// `X-Accel-Redirect` without the second pass). Which file that is, is the handler's to
/// check: none of `--static`'s path rules apply to a file already open.
///
/// The conditions are those of RFC 9110 §13.2.2, for any method: a matching
/// `If-None-Match` is 304 for GET and HEAD and 412 for the rest, `If-Modified-Since`
/// counts for GET and HEAD only, and a `Range` for GET only (§14.2). [`mime_type`] gives
/// `--static`'s content type for a file name.
///
/// # Errors
///
/// When the file's metadata cannot be read, or it is not a regular file (a directory, a
/// FIFO), which is `ErrorKind::InvalidInput`: there is no length to send or range to cut.
///
/// # Examples
///
/// ```
/// use br_serve::app::static_files::{mime_type, send_file};
/// use br_serve::http::{Limits, parse_head};
/// use br_serve::{Request, Response};
///
/// # let dir = std::env::temp_dir().join(format!("br-serve-doc-send-file-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("report.csv");
/// std::fs::write(&path, "a,b\n1,2\n")?;
///
/// // A handler that lets only a signed-in user download the report.
/// let download = |req: &Request| -> Response {
///     if req.header_str("authorization") != Some("Bearer let-me-in") {
///         return Response::text(401, "sign in first\n");
///     }
///     match std::fs::File::open(&path).and_then(|file| send_file(req, file, mime_type(&path))) {
///         Ok(response) => response,
///         Err(_) => Response::text(404, "no report yet\n"),
///     }
/// };
///
/// let get = |fields: &str| -> Response {
///     let raw = format!("GET /report HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer let-me-in\r\n{fields}\r\n");
///     download(&Request::new(parse_head(raw.as_bytes(), &Limits::default()).unwrap().unwrap(), Vec::new(), None))
/// };
/// let whole = get("");
/// assert_eq!((whole.status(), whole.body_len()), (200, 8));
/// let etag = whole.headers().find(|(name, _)| *name == "ETag").map(|(_, v)| v.to_string()).unwrap();
/// assert_eq!(get(&format!("If-None-Match: {etag}\r\n")).status(), 304);
/// let part = get("Range: bytes=4-\r\n");
/// assert_eq!((part.status(), part.body_len()), (206, 4));
/// assert_eq!(get("Range: bytes=100-\r\n").status(), 416);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn send_file(req: &Request, file: File, content_type: &str) -> io::Result<Response> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        let err = "send_file: not a regular file";
        return Err(io::Error::new(io::ErrorKind::InvalidInput, err));
    }
    let now = unix_now();
    let info = FileInfo::new(&meta, now);
    let mime = Cow::Owned(content_type.to_owned());
    Ok(answer(req, Content::File(file), info, mime, now))
}

/// 405 for every method of HTTP but GET and HEAD, 501 for the methods it does not
/// define.
fn method_not_allowed(method: &str) -> Response {
    refuse_method(method, Some("GET, HEAD")).with_header(NOSNIFF.0, NOSNIFF.1)
}

impl StaticFiles {
    /// Looks again, once a second, at what the configured root names, and serves that
    /// directory from now on if it is another one: a deploy switched a symlink
    /// (`ln -sfn releases/42 current`), renamed a new tree into place, or removed the
    /// root and made it again. Without this the open root kept serving the old tree to
    /// the fast path while the slower path, which goes by name, served the new one. A
    /// root that names nothing just now (removed, not yet made again) is left as it is,
    /// and looked at again in a second; so is a fallback file the new tree lacks, which
    /// a deploy done in steps may copy in later.
    fn follow_root(&mut self) {
        let now = unix_now();
        if now == self.root_checked {
            return;
        }
        self.root_checked = now;
        let moved = self.reopen_moved_root();
        if let Some((path, file)) = &mut self.fallback {
            if moved || file.is_none() {
                let found = fallback_file(&self.root, path);
                if let (true, Err(why)) = (moved, &found) {
                    log::warn!("--static-fallback {path}: {why} in the new root, for now");
                }
                *file = found.ok();
            }
        }
    }

    /// Opens the directory the configured root names now, if it is not the one open:
    /// whether it did.
    fn reopen_moved_root(&mut self) -> bool {
        let inode = |meta: fs::Metadata| (meta.dev(), meta.ino());
        let open = self.root_dir.metadata().map(inode).ok();
        let named = fs::metadata(&self.given).map(inode).ok();
        if named.is_some_and(|named| Some(named) == open) {
            return false;
        }
        let (canonical, root_dir) = match open_root(&self.given) {
            Ok(opened) => opened,
            // Named, but not a directory this worker can open: said once for each.
            Err(err) if named.is_some() && named != self.root_refused => {
                self.root_refused = named;
                log::warn!(
                    "static root {} names what cannot be served ({err}): serving {} still",
                    self.given.display(),
                    self.root.display()
                );
                return false;
            }
            Err(_) => return false,
        };
        log::info!(
            "static root {} now names {}: serving it",
            self.given.display(),
            canonical.display()
        );
        self.root = canonical;
        self.root_dir = Arc::new(root_dir);
        true
    }

    /// The answer to a request, before `Cache-Control` and `Vary`.
    fn route(&mut self, req: &Request) -> Response {
        if !matches!(req.method(), "GET" | "HEAD") {
            return method_not_allowed(req.method());
        }
        let path = match decode_path(req.path()) {
            Ok(path) => path,
            Err(reject) => return reject.response(),
        };
        // The file a plain request names: the path, or a directory URL's index.
        let named = match path.trailing_slash {
            false => Cow::Borrowed(path.relative.as_path()),
            true => Cow::Owned(path.relative.join(INDEX_FILE)),
        };
        if self.precompressed {
            if let Some(response) = self.precompressed_variant(req, &named) {
                return response;
            }
        }
        match (
            self.fast_path(req, &named, mime_type(&named), None),
            path.trailing_slash,
        ) {
            (Some(Ok(response)), _) => return response,
            (Some(Err(reject)), false) => return reject.response(),
            // A directory URL whose index the fast path did not reach (no index, a
            // listing, a symlink, `/file.txt/`), or a path it cannot decide: the thorough
            // path decides.
            _ => {}
        }
        let resolved =
            resolve(&self.root, &path.relative).map(|target| (target, path.trailing_slash));
        match resolved {
            Err(reject) => reject.response(),
            // Typed by the name asked for, not by a symlink's target: a content-hashed
            // `main.css` linked to `main.3f2a1c` is a stylesheet.
            Ok((Target::File(file), false)) => serve_file(req, &file, mime_type(&named)),
            // `/file.txt/` names a directory that does not exist.
            Ok((Target::File(_), true)) => Reject::NotFound.response(),
            Ok((Target::Dir(_), false)) => redirect_to_directory(req),
            Ok((Target::Dir(dir), true)) => self.directory(req, &dir),
        }
    }
}

/// The directory `given` names, canonical, and open. `O_DIRECTORY` refuses anything
/// else before it is opened: a FIFO put there would block the open until a writer came,
/// in a worker or in the master at a HUP.
fn open_root(given: &Path) -> io::Result<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let canonical = fs::canonicalize(given)?;
    let dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY)
        .open(&canonical)?;
    Ok((canonical, dir))
}

/// The file the fallback `path` names under `root`, by the rules a request is held to.
fn fallback_file(root: &Path, path: &str) -> Result<PathBuf, &'static str> {
    let decoded = decode_path(path).map_err(|_| "not a path under the root")?;
    match resolve(root, &decoded.relative) {
        Ok(Target::File(file)) if !decoded.trailing_slash => Ok(file),
        Ok(_) => Err("a directory, not a file"),
        Err(_) => Err("no such file under the root"),
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

/// Opens a confined file and answers with it, a 304, a 412 or a 416; `mime` is the type
/// of the name the request gave, which a symlink's target need not share.
fn serve_file(req: &Request, path: &Path, mime: &'static str) -> Response {
    match open_regular(path) {
        Ok((file, meta)) => {
            let now = unix_now();
            let info = FileInfo::new(&meta, now);
            answer(req, Content::File(file), info, mime.into(), now)
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
    /// `len` bytes from `offset`. Zero bytes are an empty `Bytes`, so the server never
    /// has to special-case a zero-length sendfile, and a HEAD is told `Content-Length: 0`
    /// as a GET is (`Body::Empty` would leave a HEAD's length to the handler).
    fn body(self, offset: u64, len: u64) -> Body {
        match self {
            _ if len == 0 => Body::Bytes(Vec::new()),
            Content::File(file) => Body::File { file, offset, len },
            // `offset + len <= size`, the cached length: `evaluate` guarantees it.
            Content::Memory(bytes) => {
                Body::Bytes(bytes[offset as usize..(offset + len) as usize].to_vec())
            }
        }
    }
}

/// Evaluates the request's conditions and range against a file, and answers. `mime` is
/// borrowed for the app's own table, owned for a handler's [`send_file`].
fn answer(
    req: &Request,
    content: Content,
    info: FileInfo,
    mime: Cow<'static, str>,
    now: i64,
) -> Response {
    let conditions = Conditions::from_request(req);
    let outcome = evaluate(&conditions, &info, req.method(), now);
    file_response(outcome, content, info, mime)
}

/// Builds the response for an evaluated file request.
fn file_response(
    outcome: Outcome,
    content: Content,
    info: FileInfo,
    mime: Cow<'static, str>,
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
fn representation(status: u16, info: FileInfo, mime: Cow<'static, str>) -> Response {
    let response = with_validators(Response::new(status).reserve_headers(6), info);
    match mime {
        Cow::Borrowed(mime) => response.with_static_header("Content-Type", mime),
        Cow::Owned(mime) => response.with_owned_header("Content-Type", mime),
    }
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

fn unix_now() -> i64 {
    i64::try_from(crate::http::date::now_secs()).unwrap_or(i64::MAX)
}

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
    pub(super) fn fixture() -> (TempDir, PathBuf) {
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
            // A malformed escape (`/%zz`) or a NUL (`/a/%00`) never gets here: the HTTP
            // layer answers 400 or 404 first. `decode_path`'s own table covers them.
        ];
        for &(target, status, len) in cases {
            let (got_status, got_len) = get(&mut app, "GET", target, &[]);
            assert_eq!(got_status, status, "{target}");
            if let Some(len) = len {
                assert_eq!(got_len, len, "{target}");
            }
        }
    }

    /// A symlinked file is typed by the name asked for, as nginx does: a deploy's
    /// `main.css` linked to a content-hashed name is a stylesheet (with `nosniff`, a
    /// browser uses nothing else), and a `.txt` linked to a page is no page. So is a
    /// linked directory index, and the fallback by its configured name.
    #[test]
    fn a_symlink_is_typed_by_the_name_asked_for() {
        let (_tmp, www) = fixture();
        fs::write(www.join("main.3f2a1c"), "body {}\n").expect("write");
        symlink("main.3f2a1c", www.join("main.css")).expect("symlink");
        symlink("index.html", www.join("page.txt")).expect("symlink");
        fs::create_dir(www.join("linked")).expect("mkdir");
        symlink("../a.txt", www.join("linked/index.html")).expect("symlink");
        fs::write(www.join("app.bin"), "app\n").expect("write");
        symlink("app.bin", www.join("app.html")).expect("symlink");
        let mut app = StaticFiles::new(&www, false)
            .and_then(|app| app.with_fallback("/app.html"))
            .expect("root");
        for (target, mime) in [
            ("/main.css", "text/css; charset=utf-8"),
            ("/page.txt", "text/plain; charset=utf-8"),
            ("/linked/", "text/html; charset=utf-8"),
            ("/no/such/route", "text/html; charset=utf-8"),
        ] {
            let response = app.handle(&request("GET", target, &[]));
            let content_type = response.headers().find(|(n, _)| *n == "Content-Type");
            assert_eq!(content_type, Some(("Content-Type", mime)), "{target}");
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
    fn a_listing_has_no_validator_to_match() {
        let (_tmp, www) = fixture();
        let mut app = StaticFiles::new(&www, true).expect("root");
        let date = http_date(unix_now());
        // (request headers, status); the same for HEAD.
        let cases: &[(&[(&str, &str)], u16)] = &[
            (&[("If-Match", "\"x\"")], 412),
            (&[("If-Match", "W/\"x\", \"y\"")], 412),
            (&[("If-Match", "*")], 200),
            (&[("If-None-Match", "*")], 304),
            (&[("If-None-Match", "\"x\"")], 200),
            // No modification date to compare with: the dates are ignored.
            (
                &[("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")],
                200,
            ),
            (&[("If-Modified-Since", &date)], 200),
        ];
        for (headers, status) in cases {
            for method in ["GET", "HEAD"] {
                let got = get(&mut app, method, "/sub/", headers).0;
                assert_eq!(got, *status, "{method} {headers:?}");
            }
        }
        // A directory that cannot be listed is a 404 whatever the conditions (§13.2.1).
        assert_eq!(
            get(&mut app, "GET", "/.git/", &[("If-Match", "\"x\"")]).0,
            404
        );
    }

    #[test]
    fn methods_other_than_get_and_head_are_405() {
        let (_tmp, www) = fixture();
        let mut app = StaticFiles::new(&www, false).expect("root");
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
            assert_eq!(get(&mut app, method, "/a.txt", &[]).0, 405, "{method}");
        }
        // Methods HTTP does not define (names are case-sensitive) are not implemented.
        for method in ["get", "BREW", "PROPFIND"] {
            assert_eq!(get(&mut app, method, "/a.txt", &[]).0, 501, "{method}");
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
            // Sent twice, a single-valued field is a list: ignored (RFC 9110 §13.1.3).
            (
                "GET",
                "/a.txt",
                &[("If-Modified-Since", &date), ("If-Modified-Since", &date)],
                (200, 12),
            ),
            (
                "GET",
                "/a.txt",
                &[("Range", "bytes=0-4"), ("Range", "bytes=0-4")],
                (200, 12),
            ),
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
            ("GET", "/empty.txt", &[("Range", "bytes=0-")], (200, 0)),
            ("GET", "/empty.txt", &[("Range", "bytes=-5")], (200, 0)),
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
            Body::Stream(_) => unreachable!("the static app sends no stream"),
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
            let from_file = answer(
                &req,
                Content::File(file),
                info.clone(),
                "text/plain".into(),
                now,
            );
            let memory = Content::Memory(&content);
            let from_memory = answer(&req, memory, info.clone(), "text/plain".into(), now);
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
        assert!(
            file.to_string().to_lowercase().contains("not a directory"),
            "{file}"
        );
    }

    #[test]
    fn directory_location_keeps_the_query() {
        assert_eq!(directory_location("/sub", None), "/sub/");
        assert_eq!(directory_location("/sub", Some("a=1&b")), "/sub/?a=1&b");
        assert_eq!(directory_location("/a%20b", Some("")), "/a%20b/?");
    }
}
