//! Downloads behind a token: the handler decides who may have which file, and
//! `send_file` answers with it as `--static` would (ETag and Last-Modified, 304, one
//! byte range for a resumed download, sendfile for the bytes).
//!
//!     mkdir -p /tmp/files && echo hello > /tmp/files/a.txt
//!     cargo run --release --example downloads -- \
//!         -e DOWNLOADS_DIR=/tmp/files -e DOWNLOADS_TOKEN=secret
//!     curl -H 'Authorization: Bearer secret' localhost:8000/files/a.txt
//!     curl -H 'Authorization: Bearer secret' -r 2- localhost:8000/files/a.txt   # "llo"
//!     curl localhost:8000/files/a.txt                                           # 401
//!
//! A request names a file, never a path: `/files/NAME` is looked up among the regular
//! files directly in the directory, listed when the worker boots (and again at each HUP),
//! so nothing else on the disk can be named, however the name is spelled. Only names of
//! letters, digits, `-`, `_` and `.` (not first) are listed: they need no
//! percent-decoding in the URL and no quoting in `Content-Disposition`.
//!
//! Copied into a program of your own, `open_listed` needs `nix` (or `libc`, for the same
//! `O_NOFOLLOW` and `O_NONBLOCK`) in its `Cargo.toml`, as br-serve has it.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use br_serve::app::static_files::{mime_type, send_file};
use br_serve::{Handler, Request, Response};

struct Downloads {
    /// File name to its path, for the regular files in `DOWNLOADS_DIR`.
    files: HashMap<String, PathBuf>,
    /// `Authorization: Bearer <token>` a request must carry; none asked when unset.
    token: Option<String>,
}

impl Downloads {
    /// Lists the directory in `DOWNLOADS_DIR` (the working directory when unset).
    fn from_env() -> Downloads {
        let dir = std::env::var_os("DOWNLOADS_DIR").unwrap_or_else(|| ".".into());
        let entries = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        let files = entries
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
            .filter(|(name, _)| plain(name))
            .collect();
        let token = std::env::var("DOWNLOADS_TOKEN").ok();
        Downloads { files, token }
    }

    fn allowed(&self, req: &Request) -> bool {
        // `Bearer TOKEN`, the scheme in any case (RFC 9110 §11.1).
        let given = req
            .header_str("authorization")
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        self.token
            .as_deref()
            .is_none_or(|token| given == Some(token))
    }
}

impl Handler for Downloads {
    fn handle(&mut self, req: &Request) -> Response {
        if !matches!(req.method(), "GET" | "HEAD") {
            return Response::text(405, "GET or HEAD\n").with_header("Allow", "GET, HEAD");
        }
        if !self.allowed(req) {
            return Response::text(401, "a token is needed\n")
                .with_header("WWW-Authenticate", "Bearer");
        }
        let name = req.path().strip_prefix("/files/").unwrap_or_default();
        let Some(path) = self.files.get(name) else {
            return Response::text(404, "no such file\n");
        };
        // The file may have gone since the worker listed it, or become something else:
        // that is a 404 too.
        let sent = open_listed(path).and_then(|file| send_file(req, file, mime_type(path)));
        match sent {
            // A 304 or 416 is not the file, and carries no name for it.
            Ok(response) if matches!(response.status(), 200 | 206) => {
                let disposition = format!("attachment; filename=\"{name}\"");
                response.with_header("Content-Disposition", &disposition)
            }
            Ok(response) => response,
            Err(_) => Response::text(404, "no such file\n"),
        }
    }
}

/// Opens a listed file only if it is still what was listed: never through a symlink put
/// in its place since (`O_NOFOLLOW`), which would lead anywhere on the disk, and never
/// waiting for a writer, as an open of a FIFO put there would, for good, holding up the
/// worker's other clients (`O_NONBLOCK`; `send_file` then refuses it as no regular file).
fn open_listed(path: &Path) -> io::Result<File> {
    let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK;
    File::options().read(true).custom_flags(flags).open(path)
}

/// A name a URL and a quoted header value carry as they are, and not a dotfile.
fn plain(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !name.is_empty() && !name.starts_with('.') && name.chars().all(allowed)
}

fn main() -> ExitCode {
    br_serve::identify_as("downloads", "1.0.0");
    br_serve::run_main(|_config| Box::new(Downloads::from_env()))
}
