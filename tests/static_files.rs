//! `br-serve --static DIR` through the binary: files with validators, ranges, HEAD,
//! directories, a large file on the sendfile path, small files from the cache (never
//! stale), and no escape from the root.
//!
//! Targets are sent as raw bytes, so the traversal cases reach the server exactly as an
//! attacker would write them (a normal client would normalise `..` away first).

use std::os::unix::fs::symlink;

use crate::client::{Conn, Response, raw_connect, read_to_close, read_until, request};
use crate::util::{Launch, Server, TempDir, poll_until, secs};

/// A root with a small file, a large one, a directory with an index, a dotfile, and a
/// symlink that leaves the root; a secret sits next to the root.
fn site() -> (TempDir, Server) {
    site_with(&[])
}

/// [`site`], served with `extra` flags.
fn site_with(extra: &[&str]) -> (TempDir, Server) {
    let dir = TempDir::new("static");
    let root = dir.join("www");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("hello.txt"), "Hello, World!\n").unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>\n").unwrap();
    std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "top secret\n").unwrap();
    symlink(dir.join("secret.txt"), root.join("leak.txt")).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
    let server = Launch::new()
        .args(&["--workers", "1", "--static", root.to_str().unwrap()])
        .args(extra)
        .start();
    (dir, server)
}

fn send(server: &Server, method: &str, target: &str, headers: &[&str]) -> Response {
    let mut conn = Conn::open(server.addr());
    let mut lines = vec!["Connection: close"];
    lines.extend_from_slice(headers);
    conn.send(&request(method, target, &lines, b""));
    conn.read_response(secs(10))
}

#[test]
fn static_max_age_marks_what_may_be_kept() {
    let (_dir, server) = site_with(&["--static-max-age", "3600"]);
    let kept = |resp: &Response| resp.header("cache-control") == Some("max-age=3600");
    let ok = send(&server, "GET", "/hello.txt", &[]);
    assert!(ok.status == 200 && kept(&ok), "{:?}", ok.headers);
    let etag = format!("If-None-Match: {}", ok.header("etag").unwrap_or_default());
    for (target, header, status) in [
        ("/hello.txt", etag.as_str(), 304),
        ("/hello.txt", "Range: bytes=0-4", 206),
        ("/docs", "Accept: */*", 301),
    ] {
        let resp = send(&server, "GET", target, &[header]);
        assert!(
            resp.status == status && kept(&resp),
            "{target} {header}: {resp:?}"
        );
    }
    // Errors are not for keeping.
    for (target, header, status) in [
        ("/missing.txt", "Accept: */*", 404),
        ("/hello.txt", "Range: bytes=100-", 416),
    ] {
        let resp = send(&server, "GET", target, &[header]);
        assert_eq!(resp.status, status, "{target}");
        assert_eq!(resp.header("cache-control"), None, "{target}");
    }
}

/// A plain file and its precompressed variant are two representations: their entity-tags
/// differ even when the files share an mtime and a size (a build stamps both alike), so
/// the tag of one never validates the other. With one tag, a gzip request was answered
/// 304 for the plain file's tag, and a download resumed with `If-Range` across codings
/// was spliced from both.
#[test]
fn a_precompressed_variant_has_its_own_entity_tag() {
    let (dir, server) = site_with(&["--static-precompressed"]);
    let (plain, gz) = (dir.join("www/same.txt"), dir.join("www/same.txt.gz"));
    std::fs::write(&plain, b"plain bytes 0123").unwrap();
    std::fs::write(&gz, b"\x1f\x8bgzip bytes 012").unwrap(); // 16 bytes each
    let stamp = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for path in [&plain, &gz] {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(stamp).unwrap();
    }
    let plain_answer = send(&server, "GET", "/same.txt", &[]);
    let tag = plain_answer.header("etag").unwrap_or_default().to_string();
    let encoded = send(&server, "GET", "/same.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(encoded.header("content-encoding"), Some("gzip"));
    assert_ne!(encoded.header("etag"), Some(tag.as_str()));
    let if_none_match = format!("If-None-Match: {tag}");
    let revalidated = ["Accept-Encoding: gzip", &if_none_match];
    assert_eq!(send(&server, "GET", "/same.txt", &revalidated).status, 200);
    let if_range = format!("If-Range: {tag}");
    let resumed = ["Accept-Encoding: gzip", "Range: bytes=4-", &if_range];
    let resumed = send(&server, "GET", "/same.txt", &resumed);
    assert_eq!((resumed.status, resumed.body.len()), (200, 16));
}

#[test]
fn precompressed_files_go_to_clients_that_accept_them() {
    let (dir, server) = site_with(&["--static-precompressed"]);
    let gz = b"\x1f\x8b pretend gzip of hello.txt";
    std::fs::write(dir.join("www/hello.txt.gz"), gz).unwrap();
    std::fs::write(dir.join("www/docs/index.html.br"), b"pretend brotli").unwrap();

    let encoded = send(&server, "GET", "/hello.txt", &["Accept-Encoding: gzip, br"]);
    assert_eq!((encoded.status, encoded.body.as_slice()), (200, &gz[..]));
    assert_eq!(encoded.header("content-encoding"), Some("gzip"));
    assert_eq!(
        encoded.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(encoded.header("vary"), Some("Accept-Encoding"));
    // Its own validators: a cache revalidates the gzip copy against the gzip copy.
    let etag = encoded.header("etag").unwrap_or_default().to_string();
    let plain = send(&server, "GET", "/hello.txt", &[]);
    assert_eq!(plain.text(), "Hello, World!\n");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_ne!(plain.header("etag"), Some(etag.as_str()));
    let revalidated = send(
        &server,
        "GET",
        "/hello.txt",
        &["Accept-Encoding: gzip", &format!("If-None-Match: {etag}")],
    );
    assert_eq!(revalidated.status, 304);
    // The coding's lines may come apart (RFC 9110 §5.3); a refusal varies with it too.
    let split = ["Accept-Encoding: br", "Accept-Encoding: gzip"];
    assert_eq!(send(&server, "GET", "/hello.txt", &split).body, gz);
    let beyond = ["Accept-Encoding: gzip", "Range: bytes=500-"];
    let unsatisfiable = send(&server, "GET", "/hello.txt", &beyond);
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(unsatisfiable.header("vary"), Some("Accept-Encoding"));
    // A file that exists only compressed: found with gzip, 404 without, and the 404
    // varies too, or a shared cache would give it to gzip clients.
    std::fs::write(dir.join("www/only.js.gz"), gz).unwrap();
    let only = send(&server, "GET", "/only.js", &["Accept-Encoding: gzip"]);
    assert_eq!(only.status, 200);
    let missing = send(&server, "GET", "/only.js", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("vary"), Some("Accept-Encoding"));

    // `.well-known` is served, but a `.well-known.gz` beside it is a dotfile like any other.
    std::fs::create_dir(dir.join("www/.well-known")).unwrap();
    std::fs::write(dir.join("www/.well-known.gz"), "hidden").unwrap();
    let hidden = send(&server, "GET", "/.well-known", &["Accept-Encoding: gzip"]);
    assert_eq!(hidden.status, 301, "{:?}", hidden.text());
    // A directory beside a compressed file of its name: gzip gets the file, the others
    // the directory's 301, which therefore varies too.
    std::fs::write(dir.join("www/docs.gz"), gz).unwrap();
    let redirect = send(&server, "GET", "/docs", &[]);
    assert_eq!(
        (redirect.status, redirect.header("vary")),
        (301, Some("Accept-Encoding"))
    );

    // q=0 refuses a coding; a directory's index has variants too.
    let refused = send(&server, "GET", "/hello.txt", &["Accept-Encoding: gzip;q=0"]);
    assert_eq!(refused.text(), "Hello, World!\n");
    let index = send(&server, "GET", "/docs/", &["Accept-Encoding: br"]);
    assert_eq!(index.header("content-encoding"), Some("br"));
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

/// A release directory: `a.txt`, an index, and a file of its own; `tag` in each.
fn release(dir: &TempDir, name: &str, tag: &str) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.txt"), tag).unwrap();
    std::fs::write(root.join("sub/index.html"), tag).unwrap();
    std::fs::write(root.join(format!("only-{tag}.txt")), tag).unwrap();
    root
}

/// Whether every way into the site serves release `tag`, and nothing of another: the
/// fast path (a file, a directory's index) and the thorough one (a directory URL's 301
/// and a file only that release has) agree.
fn serves_release(server: &Server, tag: &str, other: &str) -> bool {
    let text = |target: &str| {
        let resp = send(server, "GET", target, &[]);
        (resp.status, resp.text())
    };
    text("/a.txt") == (200, tag.to_string())
        && text("/sub/") == (200, tag.to_string())
        && text(&format!("/only-{tag}.txt")).0 == 200
        && text(&format!("/only-{other}.txt")).0 == 404
        && send(server, "GET", "/sub", &[]).status == 301
}

/// A directory `tag` for deploys, holding release `v1` ([`release`]) and `current`, a
/// link to it, served by one worker with `extra` flags once `prepare` has had `v1`.
fn deployed(
    tag: &str,
    extra: &[&str],
    prepare: impl FnOnce(&std::path::Path),
) -> (TempDir, std::path::PathBuf, Server) {
    let dir = TempDir::new(tag);
    prepare(&release(&dir, "v1", "v1"));
    let current = dir.join("current");
    symlink("v1", &current).unwrap();
    let server = Launch::new()
        .args(&["--workers", "1", "--static", current.to_str().unwrap()])
        .args(extra)
        .start();
    (dir, current, server)
}

/// Waits up to 10 s for the server to serve release `tags.0` and nothing of `tags.1`
/// ([`serves_release`]), `after` what.
fn await_release(server: &Server, tags: (&str, &str), after: &str) {
    let followed = poll_until(secs(10), || {
        serves_release(server, tags.0, tags.1).then_some(())
    });
    assert!(
        followed.is_some(),
        "still not {} 10 s after {after}",
        tags.0
    );
}

/// A deploy that makes the root name another tree is served whole within a second or
/// two, without a HUP, as nginx resolves its root per request: a symlink switched
/// (`ln -sfn`, as Capistrano does), and a new directory renamed into place. The workers
/// kept the old tree open, so files came from it while directory URLs, resolved by
/// name, came from the new one.
#[test]
fn a_root_replaced_by_a_deploy_is_followed() {
    let (dir, current, server) = deployed("deploy", &[], |_| {});
    assert!(serves_release(&server, "v1", "v2"));

    release(&dir, "v2", "v2");
    symlink("v2", dir.join("next")).unwrap();
    std::fs::rename(dir.join("next"), &current).unwrap();
    await_release(&server, ("v2", "v1"), "the switch");
    server.wait_for_log("now names", secs(5));

    // The real directory renamed away and a new one renamed into its place.
    let v2 = dir.join("v2");
    std::fs::rename(&v2, dir.join("v2.old")).unwrap();
    std::fs::rename(release(&dir, "v3", "v3"), &v2).unwrap();
    await_release(&server, ("v3", "v2"), "the rename");

    // A link to what is no directory is not followed, and the log says so; a FIFO is not
    // even opened (that would wait for a writer).
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    symlink("fifo", dir.join("next")).unwrap();
    std::fs::rename(dir.join("next"), &current).unwrap();
    let said = poll_until(secs(10), || {
        assert!(serves_release(&server, "v3", "v2"));
        let log = server.log();
        log.into_iter()
            .find(|l| l.contains("names what cannot be served"))
    });
    assert!(said.is_some(), "no warning 10 s after the link to a file");
}

/// A worker that starts while a deploy has DIR naming nothing (the link removed before
/// the new one is made) serves the tree the master opened, then follows DIR: each
/// worker opened DIR itself as it booted, failed, and was started again and again, so
/// a worker that died then was never replaced.
#[test]
fn a_worker_booting_mid_deploy_serves_the_tree_that_opened() {
    let (dir, current, server) = deployed("mid-deploy", &[], |_| {});
    std::fs::remove_file(&current).unwrap();
    // The worker dies (or is recycled): its replacement must serve.
    let worker = nix::unistd::Pid::from_raw(server.children()[0] as i32);
    nix::sys::signal::kill(worker, nix::sys::signal::Signal::SIGKILL).unwrap();
    for _ in 0..4 {
        let resp = send(&server, "GET", "/a.txt", &[]);
        assert_eq!((resp.status, resp.text().as_str()), (200, "v1"));
    }
    let failed = server
        .log()
        .into_iter()
        .find(|l| l.contains("setup failed"));
    assert_eq!(failed, None);
    release(&dir, "v2", "v2");
    symlink("v2", &current).unwrap();
    await_release(&server, ("v2", "v1"), "the link came back");
}

/// A tree a deploy put in place before its fallback file is answered 404 where the
/// fallback would be, and the fallback once the file is copied in: it was looked for
/// once, at the switch, and never again until a HUP.
#[test]
fn a_fallback_copied_in_after_the_switch_is_served() {
    let app_v1 = |v1: &std::path::Path| std::fs::write(v1.join("app.html"), "app v1").unwrap();
    let fallback = ["--static-fallback", "/app.html"];
    let (dir, current, server) = deployed("late-fallback", &fallback, app_v1);
    let deep_link = || {
        let resp = send(&server, "GET", "/orders/42", &[]);
        (resp.status, resp.text())
    };
    assert_eq!(deep_link(), (200, "app v1".to_string()));
    let v2 = release(&dir, "v2", "v2");
    symlink("v2", dir.join("next")).unwrap();
    std::fs::rename(dir.join("next"), &current).unwrap();
    await_release(&server, ("v2", "v1"), "the switch");
    assert_eq!(deep_link().0, 404);
    server.wait_for_log("--static-fallback /app.html: no such file", secs(5));
    std::fs::write(v2.join("app.html"), "app v2").unwrap();
    let found = poll_until(secs(10), || (deep_link().1 == "app v2").then_some(()));
    assert!(
        found.is_some(),
        "the fallback copied in is still not served: {:?}",
        deep_link()
    );
}

#[test]
fn fallback_answers_what_finds_nothing() {
    let (dir, server) = site_with(&["--static-fallback", "/docs/index.html"]);
    let app = "<h1>docs</h1>\n";
    for target in ["/orders/42", "/missing.txt", "/.env", "/%2e%2e/secret.txt"] {
        let resp = send(&server, "GET", target, &[]);
        assert_eq!((resp.status, resp.text().as_str()), (200, app), "{target}");
        assert_eq!(
            resp.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    // What exists is served as before, and a malformed path is still a 400.
    assert_eq!(
        send(&server, "GET", "/hello.txt", &[]).text(),
        "Hello, World!\n"
    );
    assert_eq!(send(&server, "GET", "/bad%zz", &[]).status, 400);

    // A fallback that is not a file under the root stops the start, naming it.
    let root = dir.join("www");
    let (status, log) = Launch::new()
        .args(&["--static", root.to_str().unwrap()])
        .args(&["--static-fallback", "/nowhere.html"])
        .run_to_exit(secs(10));
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("--static-fallback /nowhere.html"), "{log}");
}

/// The fallback was checked to be under the root when the server started; a directory on
/// its path replaced later by a symlink to elsewhere does not take it out of the root.
#[test]
fn fallback_never_leaves_the_root() {
    let (dir, server) = site_with(&["--static-fallback", "/docs/index.html"]);
    assert_eq!(send(&server, "GET", "/missing", &[]).status, 200);
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("index.html"), "outside\n").unwrap();
    let docs = dir.join("www/docs");
    std::fs::rename(&docs, dir.join("www/docs-old")).unwrap();
    symlink(&outside, &docs).unwrap();
    let resp = send(&server, "GET", "/missing", &[]);
    assert_eq!(resp.status, 404, "{:?}", resp.text());
}

#[test]
fn files_are_served_with_validators_and_ranges() {
    let (_dir, server) = site();
    let ok = send(&server, "GET", "/hello.txt", &[]);
    assert_eq!((ok.status, ok.text().as_str()), (200, "Hello, World!\n"));
    assert_eq!(ok.header("content-type"), Some("text/plain; charset=utf-8"));
    let etag = ok.header("etag").expect("ETag").to_string();
    assert!(ok.header("last-modified").is_some());
    // RFC 9110 §13.1.2: a matching If-None-Match is a 304 without a body.
    let cached = send(
        &server,
        "GET",
        "/hello.txt",
        &[&format!("If-None-Match: {etag}")],
    );
    assert_eq!((cached.status, cached.body.len()), (304, 0));
    // RFC 9110 §5.3: a list sent over several lines is one list.
    let other = "If-None-Match: \"other\"";
    let split = [other, &format!("If-None-Match: {etag}")];
    assert_eq!(send(&server, "GET", "/hello.txt", &split).status, 304);
    let split = ["If-Match: \"other\"", &format!("If-Match: {etag}")];
    assert_eq!(send(&server, "GET", "/hello.txt", &split).status, 200);
    // A malformed list matches nothing, wherever the bad element is (RFC 9110 §8.8.3).
    let bad = [
        format!("If-Match: {etag}junk"),
        format!("If-None-Match: {etag}junk"),
    ];
    let status = |field: &String| send(&server, "GET", "/hello.txt", &[field]).status;
    assert_eq!((status(&bad[0]), status(&bad[1])), (412, 200));
    // RFC 9110 §14.2: one range is a 206 with Content-Range; past the end is a 416.
    let part = send(&server, "GET", "/hello.txt", &["Range: bytes=7-11"]);
    assert_eq!((part.status, part.text().as_str()), (206, "World"));
    assert_eq!(part.header("content-range"), Some("bytes 7-11/14"));
    let beyond = send(&server, "GET", "/hello.txt", &["Range: bytes=100-"]);
    assert_eq!(beyond.status, 416);
    // HEAD: the headers GET would send, and nothing after them (RFC 9110 §9.3.2).
    let raw = head_raw(&server, "/hello.txt");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{raw}");
    assert!(head.contains("\r\nContent-Length: 14\r\n"), "{raw}");
    assert_eq!(rest, "", "HEAD carried a body");
}

/// An empty file: HEAD says `Content-Length: 0` as GET does (it said no length, so a
/// client checking a size by HEAD saw "unknown"), and a Range is ignored (there is no
/// byte a 206 could name), an empty 200 as nginx answers, not a 416 a player fails on.
#[test]
fn an_empty_file_has_a_length_and_ignores_ranges() {
    let (dir, server) = site();
    std::fs::write(dir.join("www/empty.txt"), b"").unwrap();
    let raw = head_raw(&server, "/empty.txt");
    assert!(raw.starts_with("HTTP/1.1 200 "), "{raw}");
    assert!(raw.contains("\r\nContent-Length: 0\r\n"), "{raw}");
    for range in ["Range: bytes=0-", "Range: bytes=-5", "Range: bytes=0-0"] {
        let resp = send(&server, "GET", "/empty.txt", &[range]);
        assert_eq!((resp.status, resp.body.len()), (200, 0), "{range}");
        assert_eq!(resp.header("content-length"), Some("0"), "{range}");
    }
}

/// Two copies of a file with the same modification time and size, as the same deploy
/// gives each replica behind a load balancer, carry the same ETag although their inodes
/// differ: a client's If-None-Match or If-Range then holds whichever replica it reaches.
#[test]
fn copies_of_a_file_carry_the_same_etag() {
    let (dir, server) = site();
    let original = dir.join("www/hello.txt");
    let copy = dir.join("www/copy.txt");
    std::fs::copy(&original, &copy).unwrap();
    let mtime = std::fs::metadata(&original).unwrap().modified().unwrap();
    let file = std::fs::File::options().write(true).open(&copy).unwrap();
    file.set_modified(mtime).unwrap();
    let tag = |target| {
        send(&server, "GET", target, &[])
            .header("etag")
            .map(str::to_string)
    };
    assert_eq!(tag("/copy.txt"), tag("/hello.txt"));
    assert!(tag("/hello.txt").is_some());
}

/// A HEAD exchange read to the server's close: the parsing client would wait for the
/// body that Content-Length announces.
fn head_raw(server: &Server, target: &str) -> String {
    use std::io::Write;
    let mut stream = raw_connect(server.addr());
    let bytes = request("HEAD", target, &["Connection: close"], b"");
    stream.write_all(&bytes).unwrap();
    let (raw, closed) = read_to_close(&mut stream, secs(10));
    assert!(
        closed,
        "the server did not close after HEAD with Connection: close"
    );
    String::from_utf8_lossy(&raw).into_owned()
}

#[test]
fn directories_redirect_and_serve_their_index() {
    let (_dir, server) = site();
    let redirect = send(&server, "GET", "/docs", &[]);
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (301, Some("/docs/"))
    );
    let index = send(&server, "GET", "/docs/", &[]);
    assert_eq!(
        (index.status, index.text().as_str()),
        (200, "<h1>docs</h1>\n")
    );
}

/// Requests pipelined behind answers larger than what a connection queues before it
/// stops parsing (256 KiB): each is answered once the one before it has gone out, the
/// last with a close, however fast the client reads.
#[test]
fn pipelined_requests_behind_large_files_are_all_answered() {
    let (dir, server) = site();
    let want = std::fs::read(dir.join("www/big.bin")).unwrap();
    let mut conn = Conn::open(server.addr());
    let mut wire = Vec::new();
    for _ in 0..3 {
        wire.extend(request("GET", "/big.bin", &[], b""));
    }
    wire.extend(request("GET", "/hello.txt", &["Connection: close"], b""));
    conn.send(&wire);
    for n in 0..3 {
        let big = conn.read_response(secs(10));
        assert_eq!(big.status, 200, "answer {n}");
        assert!(big.body == want, "answer {n}: {} bytes", big.body.len());
    }
    assert_eq!(conn.read_response(secs(10)).text(), "Hello, World!\n");
    conn.expect_closed(secs(5));
}

/// A file truncated while it is being sent cannot be finished honestly: the connection
/// closes short of the promised length, and the log says why and which file (nginx:
/// "\"FILE\" was truncated").
#[test]
fn a_file_truncated_while_sent_is_cut_off_and_logged() {
    let (dir, server) = site();
    let path = dir.join("www/huge.bin");
    std::fs::write(&path, vec![b'x'; 32 << 20]).unwrap();
    let mut stream = crate::client::raw_connect(server.addr());
    let get = request("GET", "/huge.bin", &["Connection: close"], b"");
    std::io::Write::write_all(&mut stream, &get).expect("send");
    // Once the answer has begun, the rest waits in the worker for this client to read.
    let mut first = [0u8; 4096];
    std::io::Read::read_exact(&mut stream, &mut first).expect("the answer begins");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(0))
        .unwrap();
    let (body, _) = crate::client::read_to_close(&mut stream, secs(20));
    assert!(body.len() < 32 << 20, "{} bytes", body.len());
    // Named, as nginx names it, so the file's writer knows which.
    let line = server.wait_for_log("was truncated", secs(10));
    assert!(line.contains("huge.bin\" was truncated"), "{line}");
}

#[test]
fn a_large_file_arrives_whole() {
    // Above the size copied next to the head, so it goes out with sendfile (corked).
    let (dir, server) = site();
    let want = std::fs::read(dir.join("www/big.bin")).unwrap();
    let got = send(&server, "GET", "/big.bin", &[]);
    assert_eq!(got.status, 200);
    assert!(got.body == want, "body differs ({} bytes)", got.body.len());
}

/// A file far larger than the socket buffers, asked for on a connection kept alive
/// after a small answer (so the connection was not watched for writes when the file
/// began): the worker resumes it each time the client has read enough, to the end.
#[test]
fn a_huge_file_on_a_kept_connection_arrives_whole() {
    let (dir, server) = site();
    let want: Vec<u8> = (0..32u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("www/huge.bin"), &want).unwrap();
    let mut conn = Conn::open(server.addr());
    conn.send(&request("GET", "/hello.txt", &[], b""));
    assert_eq!(conn.read_response(secs(10)).text(), "Hello, World!\n");
    conn.send(&request("GET", "/huge.bin", &[], b""));
    // Not the answer itself in a failure's message: 32 MiB of it.
    let huge = conn.try_read_response(secs(30));
    let huge = huge.map_err(|why| why.chars().take(200).collect::<String>());
    let whole = huge.map(|r| (r.status, r.body.len(), r.body == want));
    assert_eq!(whole, Ok((200, want.len(), true)));
}

/// Asks for `/NAME` (a file of `size` bytes) on a kept-alive connection, reads the
/// answer `chunk` bytes at a time with `pause` between reads, waits `after`, then asks
/// for `/hello.txt` on the same connection: whether that is answered.
fn slow_reader_then_next(server: &Server, name: &str, size: usize, pace: (usize, u64), after: u64) {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let mut stream = raw_connect(server.addr());
    stream.set_read_timeout(Some(secs(10))).unwrap();
    let get = |path: &str| request("GET", path, &[], b"");
    stream.write_all(&get(&format!("/{name}"))).unwrap();
    let deadline = Instant::now() + secs(30);
    let (mut got, mut chunk) = (Vec::new(), vec![0u8; pace.0]);
    let whole = loop {
        let n = stream.read(&mut chunk).expect("read the answer");
        assert!(n > 0, "closed after {} bytes", got.len());
        assert!(Instant::now() < deadline, "{} bytes in 30 s", got.len());
        got.extend_from_slice(&chunk[..n]);
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end.filter(|&end| got.len() >= end + 4 + size) {
            break end + 4 + size;
        }
        std::thread::sleep(Duration::from_millis(pace.1));
    };
    assert_eq!(got.len(), whole, "nothing past the answer");
    std::thread::sleep(Duration::from_millis(after));
    stream.write_all(&get("/hello.txt")).unwrap();
    let (next, _) = read_until(&mut stream, secs(10), |b| b.ends_with(b"Hello, World!\n"));
    let next = String::from_utf8_lossy(&next);
    assert!(next.starts_with("HTTP/1.1 200"), "{next:?}");
}

/// A kept-alive connection is not idle while its client is still reading the last
/// answer, which the kernel holds after the server's last write: 2 MiB read at about
/// 1 MB/s against `--keep-alive 1` (closed as idle a second after that write, the next
/// request met a closed connection). And a client that takes the last byte of a large
/// answer just before the first idle deadline after the last write still has a whole
/// period for its next request: 100 KB, written at once, read in 0.9 s, then 0.5 s.
#[test]
fn keep_alive_waits_for_a_client_still_reading() {
    let (dir, server) = site_with(&["--keep-alive", "1"]);
    std::fs::write(dir.join("www/large.bin"), vec![b'y'; 2 << 20]).unwrap();
    std::fs::write(dir.join("www/medium.bin"), vec![b'z'; 100_000]).unwrap();
    slow_reader_then_next(&server, "large.bin", 2 << 20, (64 << 10, 64), 0);
    slow_reader_then_next(&server, "medium.bin", 100_000, (10_000, 90), 500);
}

#[test]
fn cached_small_files_are_never_stale() {
    use std::os::unix::fs::MetadataExt;
    let (dir, server) = site();
    let path = dir.join("www/hello.txt");
    // The cache takes a file only once its ctime is over a second old; wait for that,
    // so the requests below are served from memory.
    let settled = poll_until(secs(10), || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let age = now.ok()?.as_secs() as i64 - std::fs::metadata(&path).ok()?.ctime();
        (age >= 2).then_some(())
    });
    assert!(settled.is_some(), "the file's ctime never aged");
    let body = |server: &Server| {
        let r = send(server, "GET", "/hello.txt", &[]);
        (r.status, r.text(), r.header("etag").map(str::to_string))
    };
    let (status, text, first_etag) = body(&server);
    assert_eq!((status, text.as_str()), (200, "Hello, World!\n"));
    assert_eq!(
        body(&server).2,
        first_etag,
        "a hit has the file's validators"
    );

    // Rewritten in place, same size: ctime moves, so the next request reads it again.
    std::fs::write(&path, "Hello, Again!\n").unwrap();
    let (_, text, etag) = body(&server);
    assert_eq!(text, "Hello, Again!\n");
    assert_ne!(etag, first_etag);
    // Replaced by a rename (a new inode), as deploy tools do.
    std::fs::write(dir.join("www/new.txt"), "Hello, Third!\n").unwrap();
    std::fs::rename(dir.join("www/new.txt"), &path).unwrap();
    assert_eq!(body(&server).1, "Hello, Third!\n");
    // Removed, or swapped for a symlink out of the root: gone from the cache too.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(body(&server).0, 404);
    symlink(dir.join("secret.txt"), &path).unwrap();
    assert_eq!(body(&server).0, 404);

    // A directory's index file is cached the same way (settled with hello.txt above).
    let index = |server: &Server| send(server, "GET", "/docs/", &[]).text();
    assert_eq!(index(&server), "<h1>docs</h1>\n");
    assert_eq!(index(&server), "<h1>docs</h1>\n");
    std::fs::write(dir.join("www/docs/index.html"), "<h1>DOCS</h1>\n").unwrap();
    assert_eq!(index(&server), "<h1>DOCS</h1>\n");
    // Swapped for a symlink out of the root: the thorough path refuses it.
    std::fs::remove_file(dir.join("www/docs/index.html")).unwrap();
    symlink(dir.join("secret.txt"), dir.join("www/docs/index.html")).unwrap();
    assert_eq!(send(&server, "GET", "/docs/", &[]).status, 404);
}

#[test]
fn nothing_outside_the_root_is_reachable() {
    let (_dir, server) = site();
    let cases = [
        // Plain and percent-encoded dot segments (RFC 3986 §5.2.4 is not applied).
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/docs/../../secret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        // Encoded separators inside a segment.
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        // Empty segments and absolute-looking paths.
        "//etc/passwd",
        "/docs//../../secret.txt",
        // A symlink inside the root pointing outside it.
        "/leak.txt",
        // Dotfiles are never served.
        "/.env",
        "/%2eenv",
    ];
    for target in cases {
        let got = send(&server, "GET", target, &[]);
        assert!(
            got.status == 404 || got.status == 403 || got.status == 400,
            "{target}: {} {}",
            got.status,
            got.text()
        );
        assert!(
            !got.text().contains("secret"),
            "{target} leaked: {}",
            got.text()
        );
    }
    // A NUL byte in a segment is refused before any file system call, by the HTTP layer:
    // a 404, as nothing has that name, and the connection closed, as after any refusal.
    let nul = send(&server, "GET", "/hello.txt%00.html", &[]);
    assert_eq!(
        (nul.status, nul.text()),
        (
            404,
            "404 Not Found\nNUL (%00) in path: nothing has that name\n".into()
        )
    );
}

/// RFC 8615: `/.well-known/` is served (a certificate client's webroot challenge), the
/// one hidden directory that is; a dotfile inside it, or a `.well-known` deeper down, is not.
#[test]
fn well_known_uris_are_served() {
    let (dir, server) = site();
    let challenge = dir.join("www/.well-known/acme-challenge");
    std::fs::create_dir_all(&challenge).unwrap();
    std::fs::write(challenge.join("tok3n"), "tok3n.thumbprint\n").unwrap();
    std::fs::write(challenge.join(".hidden"), "no\n").unwrap();
    std::fs::create_dir_all(dir.join("www/docs/.well-known")).unwrap();
    std::fs::write(dir.join("www/docs/.well-known/x"), "no\n").unwrap();
    let got = send(&server, "GET", "/.well-known/acme-challenge/tok3n", &[]);
    assert_eq!(
        (got.status, got.text().as_str()),
        (200, "tok3n.thumbprint\n")
    );
    for target in [
        "/.well-known/acme-challenge/.hidden",
        "/docs/.well-known/x",
        "/.env",
    ] {
        assert_eq!(send(&server, "GET", target, &[]).status, 404, "{target}");
    }
}

/// A directory the workers may not enter is 403 inside the root, but 404 through a
/// symlink out of it, so the status tells nothing of what exists out there.
#[test]
fn unreadable_directories_outside_the_root_are_not_found() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: --user needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("static-denied");
    let root = dir.join("www");
    let private = |path: &std::path::Path| {
        std::fs::create_dir_all(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    };
    private(&root.join("locked"));
    private(&dir.join("outside/private"));
    std::fs::set_permissions(dir.join(""), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink(dir.join("outside"), root.join("out")).unwrap();
    // Links into the locked directory itself, to what is there and to what is not: the
    // nearest place that resolves is then the root, though the lock is outside it.
    symlink(dir.join("outside/private/in"), root.join("in")).unwrap();
    symlink("../outside/private/nothing", root.join("nothing")).unwrap();
    // And one inside the root to the locked directory inside it.
    symlink("locked", root.join("to-locked")).unwrap();
    let server = Launch::new()
        .args(&["--workers", "1", "--user", "nobody"])
        .args(&["--static", root.to_str().unwrap()])
        .start();
    for (target, status) in [
        ("/locked/x", 403),
        ("/to-locked/x", 403),
        ("/out/private/x", 404),
        ("/out/nothing/x", 404),
        ("/in/x", 404),
        ("/in/", 404),
        ("/nothing/x", 404),
    ] {
        assert_eq!(send(&server, "GET", target, &[]).status, status, "{target}");
    }
}

/// The same, combinatorially, as a traversal fuzzer would try it: dot segments spelled
/// plainly, percent-encoded, double-encoded, as overlong UTF-8 and as fullwidth dots,
/// joined by every separator spelling, one to four deep (the secret sits one level above
/// the root, two above `/docs/`), under three prefixes. Not one of the 2,160 targets may
/// answer 200 or show a byte of what lies outside the root.
#[test]
fn no_spelling_of_dot_dot_leaves_the_root() {
    let (_dir, server) = site();
    let dots = [
        "..",
        "%2e%2e",
        "%2E%2e",
        ".%2e",
        "%2e.",
        "%252e%252e",
        "%c0%ae%c0%ae",
        "%ef%bc%8e%ef%bc%8e",
        "..%00",
    ];
    let separators = [
        "/", "%2f", "%2F", "%5c", "\\", "%252f", "%c0%af", "//", "/./", ";/",
    ];
    let mut targets = Vec::new();
    for prefix in ["/", "/docs/", "/nowhere/"] {
        for dot in dots {
            for separator in separators {
                for depth in 1..=4 {
                    let climb = format!("{dot}{separator}").repeat(depth);
                    targets.push(format!("{prefix}{climb}secret.txt"));
                    targets.push(format!("{prefix}{climb}etc/passwd"));
                }
            }
        }
    }
    assert_eq!(targets.len(), 2160);
    for target in &targets {
        let got = send(&server, "GET", target, &[]);
        let text = got.text();
        let leaked = text.contains("top secret") || text.contains("root:");
        assert!(
            got.status != 200 && !leaked,
            "{target}: {} {text}",
            got.status
        );
    }
}

#[test]
fn only_get_and_head_are_allowed() {
    let (_dir, server) = site();
    let post = {
        let mut conn = Conn::open(server.addr());
        conn.send(&request("POST", "/hello.txt", &["Connection: close"], b"x"));
        conn.read_response(secs(10))
    };
    assert_eq!(
        (post.status, post.header("allow")),
        (405, Some("GET, HEAD"))
    );
    // An upload is refused before it is sent: no `100 Continue` to a client that waits
    // for one, then the connection closes (the body never came).
    let mut put = Conn::open(server.addr());
    let expect = ["Expect: 100-continue", "Content-Length: 500000"];
    put.send(&request("PUT", "/hello.txt", &expect, b""));
    let refused = put.read_response(secs(10));
    assert_eq!(
        (refused.status, refused.header("allow")),
        (405, Some("GET, HEAD"))
    );
    assert!(refused.has_token("Connection", "close"), "{refused:?}");
    put.expect_closed(secs(10));
    // The method is judged before the size: an upload over --limit-request-body is a
    // 405 too, not a 413 without Allow (`curl -T big.iso`).
    let mut big = Conn::open(server.addr());
    big.send(&request(
        "PUT",
        "/hello.txt",
        &["Content-Length: 100000000"],
        b"",
    ));
    let refused = big.read_response(secs(10));
    assert_eq!(
        (refused.status, refused.header("allow")),
        (405, Some("GET, HEAD"))
    );
    // A method HTTP does not define is not implemented here (RFC 9110 §9.1), with or
    // without a body; a WebDAV client learns that no method of its own will work.
    for body in [&b""[..], b"<propfind/>"] {
        let mut conn = Conn::open(server.addr());
        conn.send(&request("PROPFIND", "/hello.txt", &[], body));
        assert_eq!(conn.read_response(secs(10)).status, 501, "{body:?}");
    }
    // `OPTIONS *` is the server's to answer, body or not: the app's refusal is not asked.
    let mut options = Conn::open(server.addr());
    options.send(&request("OPTIONS", "*", &["Connection: close"], b"abc"));
    assert_eq!(options.read_response(secs(10)).status, 200);
}

/// The application's answers before a body are answers like any: counted in the
/// metrics and toward `--max-requests`, so a worker that only refuses uploads recycles.
#[test]
fn answers_before_the_body_are_counted() {
    let (_dir, server) = site_with(&["--metrics-path", "/metrics", "--max-requests", "3"]);
    let first = server.children();
    for _ in 0..2 {
        let mut put = Conn::open(server.addr());
        put.send(&request("PUT", "/hello.txt", &["Content-Length: 5"], b""));
        assert_eq!(put.read_response(secs(10)).status, 405);
    }
    let scrape = send(&server, "GET", "/metrics", &[]).text();
    let answered: u64 = crate::client::metric_sample(&scrape, "br_serve_requests_total");
    assert!(answered >= 2, "{answered} answered after two 405s");
    let mut put = Conn::open(server.addr());
    put.send(&request("PUT", "/hello.txt", &["Content-Length: 5"], b""));
    assert_eq!(put.read_response(secs(10)).status, 405);
    let recycled = poll_until(secs(15), || {
        let now = server.children();
        (now.len() == 1 && now != first).then_some(())
    });
    assert!(
        recycled.is_some(),
        "no new worker after --max-requests answers"
    );
}

/// A worker out of descriptors cannot open a file that is there: 503 and an error-log
/// line (nginx: 500 and "Too many open files"), not a 404 that a cache would keep.
#[test]
fn a_worker_out_of_descriptors_answers_503_not_404() {
    let dir = TempDir::new("static-emfile");
    std::fs::create_dir(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/big.bin"), vec![b'x'; 100_000]).unwrap();
    let server = Launch::new()
        .wrapped(&["sh", "-c", r#"ulimit -n 32 && exec "$0" "$@""#])
        .args(&["--workers", "1", "--keep-alive", "60"])
        .args(&["--static", dir.join("www").to_str().unwrap()])
        .start();
    let mut first = Conn::open(server.addr());
    first.send(&request("GET", "/big.bin", &[], b""));
    assert_eq!(first.read_response(secs(10)).status, 200);
    // Connections are accepted once they have sent something (TCP_DEFER_ACCEPT).
    let _held: Vec<Conn> = (0..40)
        .map(|_| {
            let mut conn = Conn::open(server.addr());
            conn.send(&request("GET", "/nothing-here", &[], b""));
            conn
        })
        .collect();
    server.wait_for_log("accept: Too many open files", secs(10));
    first.send(&request("GET", "/big.bin", &[], b""));
    assert_eq!(first.read_response(secs(10)).status, 503);
    server.wait_for_log(
        "cannot open a file under the root: Too many open files",
        secs(10),
    );
}

#[test]
fn a_missing_root_stops_the_start() {
    let (status, log) = Launch::new()
        .args(&["--static", "/nonexistent/br-serve-root"])
        .run_to_exit(secs(20));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("--static"), "{log}");
}
