//! Content types, from a table of file extensions (nginx's, and newer web formats, with
//! IANA's names where nginx kept older ones). Anything else is
//! `application/octet-stream`, and every response carries `X-Content-Type-Options:
//! nosniff`, so a browser never second-guesses the choice.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Content type for extensions the table does not know.
const DEFAULT_MIME: &str = "application/octet-stream";

/// Extension (compared case-insensitively) to content type. Text formats say UTF-8.
/// JSON and XML carry no charset: JSON defines none (RFC 8259 §11) and an XML document
/// declares its own encoding (RFC 7303), which a wrong parameter would override.
const MIME_TYPES: &[(&str, &str)] = &[
    ("3gp", "video/3gpp"),
    ("3gpp", "video/3gpp"),
    ("7z", "application/x-7z-compressed"),
    ("aac", "audio/aac"),
    ("ai", "application/postscript"),
    ("apng", "image/apng"),
    ("atom", "application/atom+xml"),
    ("avi", "video/x-msvideo"),
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("bz2", "application/x-bzip2"),
    ("crt", "application/x-x509-ca-cert"),
    ("css", "text/css; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("der", "application/x-x509-ca-cert"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("ear", "application/java-archive"),
    ("eot", "application/vnd.ms-fontobject"),
    ("eps", "application/postscript"),
    ("epub", "application/epub+zip"),
    ("flac", "audio/flac"),
    ("flv", "video/x-flv"),
    ("gif", "image/gif"),
    ("glb", "model/gltf-binary"),
    ("gltf", "model/gltf+json"),
    ("gz", "application/gzip"),
    ("heic", "image/heic"),
    ("htm", "text/html; charset=utf-8"),
    ("html", "text/html; charset=utf-8"),
    ("ico", "image/x-icon"),
    ("ics", "text/calendar; charset=utf-8"),
    ("jar", "application/java-archive"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript; charset=utf-8"), // RFC 9239
    ("json", "application/json"),
    ("jsonld", "application/ld+json"),
    ("jxl", "image/jxl"),
    ("kml", "application/vnd.google-earth.kml+xml"),
    ("kmz", "application/vnd.google-earth.kmz"),
    ("m3u8", "application/vnd.apple.mpegurl"),
    ("m4a", "audio/mp4"),
    ("m4v", "video/x-m4v"),
    ("map", "application/json"),            // source maps
    ("md", "text/markdown; charset=utf-8"), // RFC 7763
    ("mid", "audio/midi"),
    ("midi", "audio/midi"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("mpeg", "video/mpeg"),
    ("mpg", "video/mpeg"),
    ("odg", "application/vnd.oasis.opendocument.graphics"),
    ("odp", "application/vnd.oasis.opendocument.presentation"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("ogv", "video/ogg"),
    ("opus", "audio/ogg"),
    ("otf", "font/otf"),
    ("pdf", "application/pdf"),
    ("pem", "application/x-x509-ca-cert"),
    ("png", "image/png"),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("ps", "application/postscript"),
    ("rar", "application/vnd.rar"),
    ("rss", "application/rss+xml"),
    ("rtf", "application/rtf"),
    ("svg", "image/svg+xml"),
    ("tar", "application/x-tar"),
    ("tgz", "application/gzip"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("ts", "video/mp2t"), // MPEG transport stream, as nginx (not TypeScript)
    ("ttf", "font/ttf"),
    ("txt", "text/plain; charset=utf-8"),
    ("vtt", "text/vtt; charset=utf-8"),
    ("war", "application/java-archive"),
    ("wasm", "application/wasm"),
    ("wav", "audio/wav"),
    ("weba", "audio/webm"),
    ("webm", "video/webm"),
    ("webmanifest", "application/manifest+json"),
    ("webp", "image/webp"),
    ("wmv", "video/x-ms-wmv"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("xhtml", "application/xhtml+xml"),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("xml", "application/xml"),
    ("xspf", "application/xspf+xml"),
    ("xz", "application/x-xz"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("zip", "application/zip"),
    ("zst", "application/zstd"),
    // The older types nginx's mime.types still lists, for sites moved from it; last, as
    // the rarest, since a lookup scans the table in order.
    ("asf", "video/x-ms-asf"),
    ("asx", "video/x-ms-asf"),
    ("cco", "application/x-cocoa"),
    ("hqx", "application/mac-binhex40"),
    ("htc", "text/x-component"),
    ("jad", "text/vnd.sun.j2me.app-descriptor"),
    ("jardiff", "application/x-java-archive-diff"),
    ("jng", "image/x-jng"),
    ("jnlp", "application/x-java-jnlp-file"),
    ("kar", "audio/midi"),
    ("mml", "text/mathml"),
    ("mng", "video/x-mng"),
    ("pdb", "application/x-pilot"),
    ("pl", "application/x-perl"),
    ("pm", "application/x-perl"),
    ("prc", "application/x-pilot"),
    ("ra", "audio/x-realaudio"),
    ("rpm", "application/x-redhat-package-manager"),
    ("run", "application/x-makeself"),
    ("sea", "application/x-sea"),
    ("shtml", "text/html; charset=utf-8"), // served as it is: no server-side includes
    ("sit", "application/x-stuffit"),
    ("swf", "application/x-shockwave-flash"),
    ("tcl", "application/x-tcl"),
    ("tk", "application/x-tcl"),
    ("wbmp", "image/vnd.wap.wbmp"),
    ("wml", "text/vnd.wap.wml"),
    ("wmlc", "application/vnd.wap.wmlc"),
    ("xpi", "application/x-xpinstall"),
];

/// The content type `--static` gives a file, from its name's extension (case-insensitive;
/// a table after nginx's `mime.types`, text types with `charset=utf-8`), and
/// `application/octet-stream` for any other. A `.gz` file is served as gzip data, not as
/// its contents with a `Content-Encoding`, because that is what the file is.
///
/// # Examples
///
/// ```
/// use std::path::Path;
///
/// use br_serve::app::static_files::mime_type;
///
/// assert_eq!(mime_type(Path::new("site/INDEX.HTML")), "text/html; charset=utf-8");
/// assert_eq!(mime_type(Path::new("photo.jpg")), "image/jpeg");
/// assert_eq!(mime_type(Path::new("dump.sql.gz")), "application/gzip");
/// assert_eq!(mime_type(Path::new(".bashrc")), "application/octet-stream"); // no extension
/// // Anything that is a path will do: a `String` or `&str` a handler built, say.
/// assert_eq!(mime_type(format!("report-{}.pdf", 7)), "application/pdf");
/// ```
pub fn mime_type(path: impl AsRef<Path>) -> &'static str {
    // Path::extension's rule, on the bytes (its component parsing cost more than the
    // lookup): what follows the last dot of the file name, unless that dot starts it.
    let bytes = path.as_ref().as_os_str().as_bytes();
    let name = bytes.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let Some(dot) = name.iter().rposition(|&b| b == b'.').filter(|&i| i > 0) else {
        return DEFAULT_MIME;
    };
    let Some(key) = ext_key(&name[dot + 1..]) else {
        return DEFAULT_MIME;
    };
    MIME_KEYS
        .binary_search_by(|&(known, _)| known.cmp(&key))
        .map_or(DEFAULT_MIME, |at| MIME_KEYS[at].1)
}

/// An extension lowercased and packed into one integer (little-endian bytes, zero-padded),
/// so a lookup is a binary search of integer compares; `None` when it is longer than 16
/// bytes, as no known one is.
const fn ext_key(ext: &[u8]) -> Option<u128> {
    if ext.len() > 16 {
        return None;
    }
    let mut key = 0u128;
    let mut i = 0;
    while i < ext.len() {
        key |= (ext[i].to_ascii_lowercase() as u128) << (8 * i);
        i += 1;
    }
    Some(key)
}

/// [`MIME_TYPES`] keyed by [`ext_key`] and sorted by key, built at compile time: a
/// scan of the table in its order took some 400 instructions for `.txt`, a binary
/// search takes a few dozen.
static MIME_KEYS: [(u128, &str); MIME_TYPES.len()] = mime_keys();

const fn mime_keys() -> [(u128, &'static str); MIME_TYPES.len()] {
    let mut keys = [(0, ""); MIME_TYPES.len()];
    let mut i = 0;
    while i < MIME_TYPES.len() {
        let (ext, mime) = MIME_TYPES[i];
        let Some(key) = ext_key(ext.as_bytes()) else {
            panic!("a MIME_TYPES extension is longer than 16 bytes");
        };
        // Insertion sort: the table is small, and this runs in the compiler.
        let mut at = i;
        while at > 0 && keys[at - 1].0 > key {
            keys[at] = keys[at - 1];
            at -= 1;
        }
        if at > 0 && keys[at - 1].0 == key {
            panic!("a MIME_TYPES extension is listed twice");
        }
        keys[at] = (key, mime);
        i += 1;
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every extension of the table is found, in any case, through the sorted keys.
    #[test]
    fn every_listed_extension_is_found() {
        for (ext, mime) in MIME_TYPES {
            for name in [format!("f.{ext}"), format!("F.{}", ext.to_uppercase())] {
                assert_eq!(mime_type(Path::new(&name)), *mime, "{name}");
            }
        }
        assert!(MIME_KEYS.windows(2).all(|pair| pair[0].0 < pair[1].0));
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
            ("site.webmanifest", "application/manifest+json"),
            ("clip.MOV", "video/quicktime"),
            ("a.abcdefghijklmnopq", DEFAULT_MIME),
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
            ("f.eot", "application/vnd.ms-fontobject"),
            ("scan.TIFF", "image/tiff"),
            ("live.m3u8", "application/vnd.apple.mpegurl"),
            ("seg7.ts", "video/mp2t"),
            ("compose.yml", "application/yaml"),
            ("t.csv", "text/csv; charset=utf-8"),
            ("README.md", "text/markdown; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("Makefile", DEFAULT_MIME),
            ("legacy.shtml", "text/html; charset=utf-8"),
            ("app.JNLP", "application/x-java-jnlp-file"),
            ("movie.swf", "application/x-shockwave-flash"),
            ("archive.tar", "application/x-tar"),
            ("archive.7z", "application/x-7z-compressed"),
            (
                "report.DOCX",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
            (
                "sheet.xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            ("old.mpg", "video/mpeg"),
            ("film.avi", "video/x-msvideo"),
            ("captions.vtt", "text/vtt; charset=utf-8"),
            ("a.exe", DEFAULT_MIME),
            ("dir.d/file", DEFAULT_MIME),
            ("trailing.", DEFAULT_MIME),
            ("a.html5", DEFAULT_MIME),
        ];
        for (name, mime) in cases {
            assert_eq!(mime_type(Path::new(name)), mime, "{name}");
            assert_eq!(mime_type(Path::new("/srv/www").join(name)), mime, "{name}");
        }
    }

    /// A lookup takes the first entry: a second one for an extension would never be used.
    #[test]
    fn each_extension_once() {
        let mut extensions: Vec<&str> = MIME_TYPES.iter().map(|&(ext, _)| ext).collect();
        extensions.sort_unstable();
        let twice: Vec<_> = extensions.windows(2).filter(|w| w[0] == w[1]).collect();
        assert!(twice.is_empty(), "{twice:?}");
    }
}
