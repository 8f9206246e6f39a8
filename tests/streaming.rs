//! Streamed answers (`Body::Stream`), through the demo's `/stream?kib=N`: chunked to
//! HTTP/1.1, ended by the close for HTTP/1.0, framed by a handler's own Content-Length,
//! read as the client takes them (so a slow client costs no memory and holds no worker),
//! and cut short, never finished falsely, when the application's reader fails.

use std::io::Write;
use std::net::TcpStream;

use crate::client::{self, RESPONSE_WITHIN, request};
use crate::util::{Launch, Server, TempDir, poll_until, proc_status, secs, send_signal};

/// A one-worker server whose kept-alive connections outlive every wait below.
fn start() -> Server {
    Launch::new()
        .args(&["--workers", "1", "--keep-alive", "30"])
        .start()
}

/// What `/stream?kib=N` sends: line K is K right-aligned in 1023 bytes and a newline.
fn lines(kib: u64) -> Vec<u8> {
    (0..kib)
        .flat_map(|k| format!("{k:>1023}\n").into_bytes())
        .collect()
}

/// A bare connection that has sent `GET target`.
fn sent(server: &Server, target: &str) -> TcpStream {
    sent_bytes(server, &request("GET", target, &[], b""))
}

/// A bare connection that has sent `wire`.
fn sent_bytes(server: &Server, wire: &[u8]) -> TcpStream {
    let mut raw = client::raw_connect(server.addr());
    raw.write_all(wire).expect("send");
    raw
}

/// Where the head ends in a raw answer.
fn head_end(wire: &[u8]) -> usize {
    let at = wire.windows(4).position(|w| w == b"\r\n\r\n");
    at.map(|at| at + 4).expect("a whole head")
}

/// The access log counts what went out, the chunks' framing included, as nginx's
/// `$body_bytes_sent` does, and logs each answer once it is sent, in order.
#[test]
fn a_stream_goes_out_chunked_and_the_connection_serves_on() {
    let dir = TempDir::new("stream-log");
    let log = dir.join("access.log");
    let server = Launch::new()
        .args(&["--workers", "1", "--keep-alive", "30", "--access-logfile"])
        .args(&[log.to_str().expect("a UTF-8 path")])
        .args(&["--access-logformat", "%(r)s %(b)s"])
        .start();
    let mut conn = server.connect();
    // The second request is pipelined behind the stream: answered once the stream ends.
    let mut wire = request("GET", "/stream?kib=300", &[], b"");
    wire.extend(request("GET", "/pid", &[], b""));
    conn.send(&wire);
    let streamed = conn.read_response(RESPONSE_WITHIN);
    assert_eq!(streamed.status, 200);
    assert!(
        streamed.has_token("Transfer-Encoding", "chunked"),
        "{streamed:?}"
    );
    assert_eq!(streamed.header("Content-Length"), None);
    assert!(streamed.body == lines(300), "{} bytes", streamed.body.len());
    let pid = conn.read_response(RESPONSE_WITHIN);
    assert_eq!(pid.status, 200);
    assert!(!pid.has_token("Connection", "close"), "{pid:?}");

    // 18 chunks of 16 KiB and one of 12 KiB, 8 bytes of framing each, and the last.
    let want = [
        format!("GET /stream?kib=300 HTTP/1.1 {}", 300 * 1024 + 19 * 8 + 5),
        format!("GET /pid HTTP/1.1 {}", pid.body.len()),
    ];
    let logged = poll_until(secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        (lines.len() == 2).then_some(lines)
    });
    assert_eq!(logged.as_deref(), Some(&want[..]));
}

/// HTTP/1.0 has no chunks (RFC 9112 §7): the close marks the end. With the handler's
/// Content-Length the answer is framed by it, and the connection may stay.
#[test]
fn an_http10_stream_ends_with_the_close_unless_its_length_is_said() {
    let server = start();
    let mut raw = sent_bytes(
        &server,
        b"GET /stream?kib=20 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    let (answer, closed) = client::read_to_close(&mut raw, secs(10));
    assert!(closed, "still open after {} bytes", answer.len());
    let head = String::from_utf8_lossy(&answer[..head_end(&answer)]).to_lowercase();
    assert!(head.contains("connection: close"), "{head}");
    assert!(!head.contains("transfer-encoding") && !head.contains("content-length"));
    assert!(answer[head_end(&answer)..] == lines(20));

    let mut conn = server.connect();
    conn.send(b"GET /stream?kib=20&length=20480 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let sized = conn.read_response(RESPONSE_WITHIN);
    assert_eq!(sized.header("Content-Length"), Some("20480"));
    assert!(sized.has_token("Connection", "keep-alive"), "{sized:?}");
    assert!(sized.body == lines(20));
    conn.send(&request("GET", "/pid", &[], b""));
    assert_eq!(conn.read_response(RESPONSE_WITHIN).status, 200);
}

/// HEAD gets the head a GET would (RFC 9110 §9.3.2) and no content: the next answer
/// follows it at once.
#[test]
fn head_of_a_stream_has_no_content() {
    let server = start();
    let head = head_then_204(&server, &request("HEAD", "/stream?kib=100", &[], b""));
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
}

/// Sends `head_request` and a pipelined `GET /status/204`, and returns the HEAD's
/// answer, lower-cased, once the 204 is seen to follow it at once (no content between).
fn head_then_204(server: &Server, head_request: &[u8]) -> String {
    let mut wire = head_request.to_vec();
    wire.extend(request("GET", "/status/204", &[], b""));
    let mut raw = sent_bytes(server, &wire);
    let (answer, _) = client::read_until(&mut raw, secs(10), |got| {
        got.windows(4).filter(|w| w == b"\r\n\r\n").count() == 2
    });
    let first = head_end(&answer);
    let rest = String::from_utf8_lossy(&answer[first..]);
    assert!(rest.starts_with("HTTP/1.1 204 "), "{rest:?}");
    String::from_utf8_lossy(&answer[..first]).to_lowercase()
}

/// A reader that fails or panics midway leaves an answer that cannot be finished: the
/// connection closes without the last chunk, so the client knows its content is cut
/// short, the log names the request, and the worker serves on.
#[test]
fn a_failing_stream_is_cut_short_and_the_worker_serves_on() {
    let server = start();
    let pid = server.get("/pid").text();
    for fault in ["fail_after", "panic_after"] {
        let target = format!("/stream?kib=100&{fault}=40");
        let mut raw = sent(&server, &target);
        let (answer, closed) = client::read_to_close(&mut raw, secs(10));
        assert!(closed, "{fault}: still open");
        let body = &answer[head_end(&answer)..];
        assert!(!body.ends_with(b"0\r\n\r\n"), "{fault}: finished falsely");
        // The 40 KiB made before the fault went out, framed; nothing after it.
        let sent = body.len();
        assert!(
            sent > 40 * 1024 && sent < 41 * 1024,
            "{fault}: {sent} bytes"
        );
        server.wait_for_log(
            &format!("the stream answering GET {target} HTTP/1.1 failed"),
            secs(10),
        );
        assert_eq!(server.get("/pid").text(), pid, "after {fault}");
    }
}

/// A stream short of the Content-Length its handler gave is cut off there: the
/// connection closes rather than leave the client waiting for bytes that never come,
/// or take a request pipelined behind it for the rest of the answer, even where the
/// client asked to keep it (HTTP/1.0 `Connection: keep-alive`).
#[test]
fn a_stream_short_of_its_length_closes_the_connection() {
    let server = start();
    let mut raw = sent(&server, "/stream?kib=10&length=20480");
    let (answer, closed) = client::read_to_close(&mut raw, secs(10));
    assert!(closed);
    assert!(answer[head_end(&answer)..] == lines(10));
    server.wait_for_log("ended 10240 bytes short of its Content-Length", secs(10));

    let mut wire =
        b"GET /stream?kib=20&length=30000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec();
    wire.extend(request("GET", "/pid", &[], b""));
    let mut raw = sent_bytes(&server, &wire);
    let (answer, closed) = client::read_to_close(&mut raw, secs(10));
    assert!(closed, "still open after {} bytes", answer.len());
    assert!(
        answer[head_end(&answer)..] == lines(20),
        "the /pid answer was sent too"
    );
    server.wait_for_log("ended 9520 bytes short of its Content-Length", secs(10));
}

/// A stream longer than the Content-Length its handler gave is cut at that length (what
/// follows would be taken for the next answer), and the connection serves on; the log
/// says so once, naming the request and the length, since the handler is wrong about
/// one or the other. Whether the first read, made before the head, or a later one goes
/// past.
#[test]
fn a_stream_longer_than_its_length_is_cut_there_and_logged() {
    let server = start();
    let mut conn = server.connect();
    for (kib, length) in [(20, 10_000), (40, 20_000)] {
        let target = format!("/stream?kib={kib}&length={length}");
        conn.send(&request("GET", &target, &[], b""));
        let answer = conn.read_response(RESPONSE_WITHIN);
        assert_eq!(answer.header("Content-Length"), Some(&*length.to_string()));
        assert!(
            answer.body == lines(kib)[..length],
            "{} bytes",
            answer.body.len()
        );
        conn.send(&request("GET", "/pid", &[], b""));
        assert_eq!(
            conn.read_response(RESPONSE_WITHIN).status,
            200,
            "after {target}"
        );
        // Named the same whichever read went past: the first, or a later one.
        let past = format!(
            "answering GET {target} HTTP/1.1 went past its Content-Length of {length} bytes"
        );
        let said = |line: &str| line.contains(&past);
        server.wait_for_log_where(&past, secs(10), said);
        let lines = server.log().into_iter().filter(|line| said(line)).count();
        assert_eq!(lines, 1, "said {lines} times");
    }
}

/// The worker reads a stream as its client takes it: a client that reads nothing holds
/// no more than the socket's buffers and a chunk in the worker (a stream read whole
/// first would be 1 GiB here), and the worker serves others meanwhile.
#[test]
fn a_client_that_does_not_read_holds_neither_memory_nor_the_worker() {
    let server = start();
    let worker = server.wait_children(1, secs(10))[0];
    let mut stalled = sent(&server, "/stream?kib=1048576");
    // Served while the stream waits for its client, and asked twice so that the
    // worker has turned back to the stalled stream in between.
    for _ in 0..2 {
        assert_eq!(server.get("/healthz").status, 200);
    }
    let rss_kib: u64 = proc_status(worker, "VmRSS")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    assert!(rss_kib < 64 * 1024, "worker resident {rss_kib} KiB");
    // The client now reads on: the stream resumes where it stopped.
    let (answer, _) = client::read_until(&mut stalled, secs(10), |got| got.len() > 4 << 20);
    let body = &answer[head_end(&answer)..];
    assert!(body.starts_with(b"4000\r\n"), "{:?}", &body[..16]);
}

/// A stream its client takes as fast as it is made never fills the socket, so no write
/// would block to hand the worker back: it turns to its other connections every 256 KiB
/// all the same, and serves them while the stream goes on.
#[test]
fn a_stream_taken_as_fast_as_it_is_made_leaves_the_worker_to_others() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let server = start();
    let mut fast = sent(&server, "/stream?kib=4194304");
    let (got, done) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let reader = {
        let (got, done) = (Arc::clone(&got), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut buf = vec![0; 1 << 20];
            while !done.load(Ordering::Relaxed) {
                match std::io::Read::read(&mut fast, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
        })
    };
    let flowing = poll_until(secs(10), || {
        (got.load(Ordering::Relaxed) > 1 << 20).then_some(())
    });
    assert!(flowing.is_some(), "the stream did not start");
    assert_eq!(server.get("/healthz").status, 200);
    let received = got.load(Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    assert!(received < 4 << 30, "answered only after the whole stream");
    drop(server);
    reader.join().expect("the reader");
}

/// Each read is the application's time, counted by `--timeout` read by read: a stream
/// whose reads take 0.8 s each (16 KiB at 50 ms) runs for 2.4 s under `--timeout 2`,
/// where the reads of one turn added up past it and the worker was killed as silent.
#[test]
fn a_slow_stream_is_timed_read_by_read() {
    let server = Launch::new()
        .args(&["--workers", "1", "--timeout", "2"])
        .start();
    let mut raw = sent(&server, "/stream?kib=48&ms_per_kib=50");
    let (answer, _) = client::read_until(&mut raw, secs(20), |got| got.ends_with(b"0\r\n\r\n"));
    assert!(
        answer.ends_with(b"0\r\n\r\n"),
        "cut after {} bytes",
        answer.len()
    );
    assert!(!server.log().iter().any(|l| l.contains("WORKER TIMEOUT")));
}

/// A read that hangs is the request it answers hanging: the timeout's line names it,
/// where "while idle" sent the operator looking everywhere but the stream.
#[test]
fn a_stream_read_that_hangs_is_named_by_the_timeout() {
    let server = Launch::new()
        .args(&["--workers", "1", "--timeout", "1"])
        .start();
    let _raw = sent(&server, "/stream?kib=1&ms_per_kib=4000");
    let line = server.wait_for_log("WORKER TIMEOUT", secs(20));
    assert!(
        line.contains("handling \"GET /stream?kib=1&ms_per_kib=4000"),
        "{line}"
    );
}

/// A reader whose Drop panics, after its stream or unread (a HEAD's), is dropped as a
/// handler's panic is caught: the worker lives on.
#[test]
fn a_reader_that_panics_as_it_is_dropped_leaves_the_worker_serving() {
    let server = start();
    let pid = server.get("/pid").text();
    let target = "/stream?kib=2&panic_on_drop";
    assert!(server.get(target).body == lines(2));
    let mut raw = sent_bytes(
        &server,
        &request("HEAD", target, &["Connection: close"], b""),
    );
    let (answer, _) = client::read_to_close(&mut raw, secs(10));
    assert!(answer.starts_with(b"HTTP/1.1 200 "), "{answer:?}");
    assert_eq!(server.get("/pid").text(), pid);
}

/// An HTTP/1.0 stream is ended by the close, so one cut short is reset: a plain close
/// would hand the client the first 40 KiB as the whole answer.
#[test]
fn an_http10_stream_cut_short_is_reset() {
    let server = start();
    let mut raw = sent_bytes(
        &server,
        b"GET /stream?kib=100&fail_after=40 HTTP/1.0\r\n\r\n",
    );
    expect_reset(&mut raw);
}

/// ... also when the worker itself ends in the middle (here killed once the head is
/// out, as a `--timeout` kill in a read that hangs would end it): the kernel's close of
/// a dead process's socket was a plain FIN.
#[test]
fn an_http10_stream_its_worker_dies_in_is_reset() {
    let server = start();
    let worker = server.wait_children(1, secs(10))[0];
    let wire = b"GET /stream?kib=1048576 HTTP/1.0\r\n\r\n";
    let mut raw = sent_bytes(&server, wire);
    let (head, _) = client::read_until(&mut raw, secs(10), |b| {
        b.windows(4).any(|w| w == b"\r\n\r\n")
    });
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    send_signal(worker, nix::sys::signal::Signal::SIGKILL);
    expect_reset(&mut raw);
}

/// A stream whose first read fails (or panics, or finds the stream short of its
/// Content-Length) is answered 500: that read is made before the head is sent, while
/// the request is still the handler's, as gunicorn answers an iterable that raises
/// before its first item, not with a 200 cut short.
#[test]
fn a_stream_failing_at_its_first_read_is_answered_500() {
    let server = start();
    for target in [
        "/stream?kib=4&fail_after=0",
        "/stream?kib=4&panic_after=0",
        "/stream?kib=0&length=100",
    ] {
        let mut conn = server.connect();
        conn.send(&request("GET", target, &[], b""));
        let answer = conn.read_response(RESPONSE_WITHIN);
        assert_eq!(answer.status, 500, "{target}: {answer:?}");
        server.wait_for_log(
            &format!("answering GET {target} HTTP/1.1 failed before its first byte"),
            secs(5),
        );
    }
    // A later read failing still cuts the answer, its head gone out already.
    let mut cut = sent(&server, "/stream?kib=64&fail_after=20");
    let (answer, _) = client::read_to_close(&mut cut, secs(10));
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    assert!(!answer.ends_with(b"0\r\n\r\n"), "no last chunk");
}

/// Reads to the end of the connection, which must be a reset.
#[track_caller]
fn expect_reset(raw: &mut TcpStream) {
    raw.set_read_timeout(Some(secs(20))).expect("timeout");
    let mut got = 0;
    let ended = loop {
        match std::io::Read::read(raw, &mut [0; 65536]) {
            Ok(0) => break Ok(()),
            Ok(n) => got += n,
            Err(e) => break Err(e.kind()),
        }
    };
    let reset = Err(std::io::ErrorKind::ConnectionReset);
    assert_eq!(ended, reset, "after {got} bytes");
}

/// A request pipelined behind its own stream waited for that stream, not for this
/// worker: it is not moved off to an idle sibling with `Connection: close`.
#[test]
fn a_request_behind_its_own_slow_stream_keeps_its_connection() {
    let server = Launch::new().args(&["--workers", "2"]).start();
    server.wait_children(2, secs(10));
    let mut conn = server.connect();
    let mut wire = request("GET", "/stream?kib=64&ms_per_kib=2", &[], b"");
    wire.extend(request("GET", "/pid", &[], b""));
    conn.send(&wire);
    assert_eq!(conn.read_response(RESPONSE_WITHIN).body.len(), 64 * 1024);
    let pid = conn.read_response(RESPONSE_WITHIN);
    assert!(!pid.has_token("Connection", "close"), "{pid:?}");
}

/// A stream gets one turn between newcomers: here each of its reads takes 3.2 s, and a
/// newcomer that comes during one is answered when that read ends, before the next
/// (it waited two or three reads behind the stream's turns, drive after drive).
#[test]
fn a_newcomer_waits_for_one_read_of_a_slow_stream() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = start();
    let mut slow = sent(&server, "/stream?kib=160&ms_per_kib=200");
    let got = Arc::new(AtomicUsize::new(0));
    let reader = {
        let got = Arc::clone(&got);
        std::thread::spawn(move || {
            let mut buf = [0; 65536];
            while let Ok(n @ 1..) = std::io::Read::read(&mut slow, &mut buf) {
                got.fetch_add(n, Ordering::Relaxed);
            }
        })
    };
    // The first chunk is out: the worker is in the second read.
    let first = poll_until(secs(20), || {
        (got.load(Ordering::Relaxed) > 16 << 10).then_some(())
    });
    assert!(first.is_some(), "no first chunk");
    assert_eq!(server.get("/healthz").status, 200);
    let chunks = got.load(Ordering::Relaxed) / (16 << 10);
    assert!(chunks <= 2, "answered after {chunks} chunks of the stream");
    drop(server);
    reader.join().expect("the reader");
}

/// A HEAD's stream is never sent, so it needs no close to end it: an HTTP/1.0 client
/// that keeps its connection alive keeps it.
#[test]
fn head_of_a_stream_keeps_an_http10_connection() {
    let server = start();
    let wire = b"HEAD /stream?kib=4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let head = head_then_204(&server, wire);
    assert!(head.contains("connection: keep-alive"), "{head}");
}

/// A stream's client that sends bytes as it reads (a pipelined request arriving piece by
/// piece) has its connection driven on each, but the stream still gets one turn a pass:
/// every such event listed the connection once more for another turn, so each pass
/// grew longer, and ten newcomers, taken one a pass, waited seconds.
#[test]
fn a_stream_whose_client_keeps_sending_still_takes_one_turn_a_pass() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = start();
    let mut stream = sent(&server, "/stream?kib=4194304&ms_per_kib=1");
    let mut poke = stream.try_clone().expect("clone");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut buf = vec![0; 1 << 20];
            while !done.load(Ordering::Relaxed) {
                if let Ok(0) | Err(_) = std::io::Read::read(&mut stream, &mut buf) {
                    break;
                }
            }
        })
    };
    for _ in 0..500 {
        poke.write_all(b"\r\n").expect("send");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Ten newcomers at once: the worker takes one a pass.
    let asked = std::time::Instant::now();
    let addr = server.addr();
    let newcomers: Vec<_> = (0..10)
        .map(|_| std::thread::spawn(move || crate::client::get(addr, "/pid").status))
        .collect();
    for newcomer in newcomers {
        assert_eq!(newcomer.join().expect("a newcomer"), 200);
    }
    let waited = asked.elapsed();
    done.store(true, Ordering::Relaxed);
    // A pass is two reads of the stream at most here, 32 ms; ten are well under 2 s.
    assert!(waited < secs(2), "ten newcomers took {waited:?}");
    drop(server);
    reader.join().expect("the reader");
}
