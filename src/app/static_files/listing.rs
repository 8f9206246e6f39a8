//! Directory listings, off unless `--static-listing` asks for them: an HTML page of a
//! directory's visible entries, with names escaped so that no file name becomes markup or
//! a link elsewhere.

use std::collections::BinaryHeap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::conditional::{Conditions, Outcome, evaluate_unvalidated};
use super::path::{
    Reject, Target, by_descriptor, check_segment, confine, open_dir, percent_decode,
};
use super::{NOSNIFF, plain, unix_now};
use crate::http::{Request, Response};

/// A listing stops after this many entries, so a huge directory cannot make one
/// response, or one worker's memory, unbounded.
const LISTING_LIMIT: usize = 10_000;

/// The listing page for `dir`, a directory under the canonical `root`, requested by `req`
/// (whose path ends in `/`). Its preconditions are weighed once the directory is open,
/// the answer it would have had a 200 (RFC 9110 §13.2.1): a page without validators
/// fails any `If-Match` list (412) and matches `If-None-Match: *` (304).
pub(super) fn listing(req: &Request, dir: &Path, root: &Path) -> Response {
    let opened = match open_dir(dir) {
        Ok(opened) => opened,
        Err(reject) => return reject.response(),
    };
    let conditions = Conditions::from_request(req);
    match evaluate_unvalidated(&conditions, req.method(), unix_now()) {
        Some(Outcome::NotModified) => return Response::new(304),
        Some(_) => return plain(412, "precondition failed\n"),
        None => {}
    }
    match listing_html(req.path(), &by_descriptor(&opened), root) {
        Ok(html) => Response::bytes(200, "text/html; charset=utf-8", html.into_bytes())
            .with_header(NOSNIFF.0, NOSNIFF.1),
        Err(err) => Reject::from_io(&err).response(),
    }
}

/// Renders the listing. Entries that cannot be fetched are left out (see
/// [`read_listing`]). Names are HTML-escaped for display and percent-encoded in links, so
/// a file called `<script>` or `a:b` is text and a relative link, never markup or a URL
/// scheme.
fn listing_html(url_path: &str, dir: &Path, root: &Path) -> io::Result<String> {
    let (entries, truncated) = read_listing(dir, root)?;
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
        let _ = writeln!(
            html,
            "<li>(only the first {LISTING_LIMIT} entries, by name)</li>"
        );
    }
    html.push_str("</ul>\n</body></html>\n");
    Ok(html)
}

/// The entries of `dir` a request could fetch (name, is a directory), sorted by name: the
/// first [`LISTING_LIMIT`] of them, and whether more were left out. Hidden names, FIFOs,
/// sockets and devices are left out, and so are symlinks that lead out of `root`, to a
/// hidden name or nowhere: listing them would tell a stranger what lies outside.
///
/// The directory yields its entries in no useful order (a hash's, on ext4), so the first
/// by name are kept in a max-heap while all of it is read: stopping at the limit showed an
/// arbitrary selection, a sorted page with names missing from its middle.
fn read_listing(dir: &Path, root: &Path) -> io::Result<(Vec<(OsString, bool)>, bool)> {
    let mut kept = BinaryHeap::with_capacity(LISTING_LIMIT + 1);
    let mut truncated = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        // The rule a request's path segment is held to (below the root: every dotfile
        // hidden), so a name no URL can fetch (`a\b.txt`) is not listed either.
        if check_segment(1, name.as_bytes()).is_err() {
            continue;
        }
        let Some(is_dir) = fetchable(&entry, root) else {
            continue;
        };
        kept.push((name, is_dir));
        if kept.len() > LISTING_LIMIT {
            kept.pop();
            truncated = true;
        }
    }
    Ok((kept.into_sorted_vec(), truncated))
}

/// Whether a request could fetch `entry`, and if so whether it is a directory. A plain
/// file or directory is known from the directory entry itself; a symlink is resolved the
/// way a request for it would be ([`confine`]), so a link to a directory inside the root
/// is listed with its slash.
fn fetchable(entry: &fs::DirEntry, root: &Path) -> Option<bool> {
    let kind = entry.file_type().ok()?;
    if kind.is_symlink() {
        return match confine(root, &entry.path()) {
            Ok(Target::Dir(_)) => Some(true),
            Ok(Target::File(_)) => Some(false),
            Err(_) => None,
        };
    }
    (kind.is_dir() || kind.is_file()).then_some(kind.is_dir())
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
            // A name may hold any byte but '/' and NUL: control bytes would break the
            // page's lines or reach a terminal that views it.
            c if c.is_control() => out.push(char::REPLACEMENT_CHARACTER),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::static_files::tests::TempDir;

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
        assert_eq!(
            html_escape("a\u{1}b\nc\u{7f}"),
            "a\u{fffd}b\u{fffd}c\u{fffd}"
        );
    }

    #[test]
    fn listing_shows_only_what_could_be_fetched() {
        let tmp = TempDir::new("listing-links");
        let root = tmp.0.join("www");
        fs::create_dir_all(root.join("sub")).expect("mkdir");
        fs::create_dir(root.join(".git")).expect("mkdir");
        fs::write(root.join("file.txt"), "").expect("write");
        // A request refuses a `\` in a segment, so the listing does not offer it.
        fs::write(root.join("a\\b.txt"), "").expect("write");
        fs::write(tmp.0.join("secret"), "").expect("write");
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).expect("symlink")
        };
        link(&root.join("sub"), "to-sub");
        link(&root.join("file.txt"), "to-file");
        link(&tmp.0.join("secret"), "to-outside");
        link(Path::new("/etc"), "to-etc");
        link(&root.join(".git"), "to-git");
        link(&root.join("missing"), "dangling");
        nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        let canonical = fs::canonicalize(&root).expect("canonical");
        let (entries, _) = read_listing(&root, &canonical).expect("listing");
        let names: Vec<(&str, bool)> = entries
            .iter()
            .map(|(n, d)| (n.to_str().unwrap_or("?"), *d))
            .collect();
        let want = [
            ("file.txt", false),
            ("sub", true),
            ("to-file", false),
            ("to-sub", true),
        ];
        assert_eq!(names, want);
    }

    /// A directory over the limit lists the first entries by name, whatever order it
    /// yields them in (ext4: a hash's; tmpfs: the newest first).
    #[test]
    fn a_long_listing_is_cut_after_the_first_names() {
        let tmp = TempDir::new("listing-long");
        let name = |i: usize| format!("f{i:05}");
        for i in 0..LISTING_LIMIT + 50 {
            fs::write(tmp.0.join(name(i)), "").expect("write");
        }
        let canonical = fs::canonicalize(&tmp.0).expect("canonical");
        let (entries, truncated) = read_listing(&canonical, &canonical).expect("listing");
        let names: Vec<String> = entries
            .iter()
            .map(|(n, _)| n.to_string_lossy().into_owned())
            .collect();
        let want: Vec<String> = (0..LISTING_LIMIT).map(name).collect();
        assert!(truncated);
        assert!(names == want, "{:?} ... {:?}", names.first(), names.last());
    }

    #[test]
    fn listing_escapes_names_and_hides_dotfiles() {
        let tmp = TempDir::new("listing");
        fs::write(tmp.0.join("<b>&\"x'.txt"), "").expect("write");
        fs::write(tmp.0.join("a:b"), "").expect("write");
        fs::write(tmp.0.join(".hidden"), "").expect("write");
        fs::create_dir(tmp.0.join("sub")).expect("mkdir");
        let root = fs::canonicalize(&tmp.0).expect("canonical");
        let html = listing_html("/files/a%20b/", &tmp.0, &root).expect("listing");
        assert!(
            html.contains("<title>Index of /files/a b/</title>"),
            "{html}"
        );
        assert!(html.contains("href=\"%3Cb%3E%26%22x%27.txt\">&lt;b&gt;&amp;&quot;x&#39;.txt<"));
        assert!(html.contains("href=\"a%3Ab\">a:b<"), "{html}");
        assert!(html.contains("href=\"sub/\">sub/<"), "{html}");
        assert!(html.contains("href=\"../\""), "{html}");
        assert!(!html.contains("hidden"), "{html}");
        let top = listing_html("/", &tmp.0, &root).expect("listing");
        assert!(!top.contains("../"), "{top}");
    }
}
