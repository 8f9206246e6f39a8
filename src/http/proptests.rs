//! Property tests over the whole request path: head parsing, body framing and chunked
//! decoding driven the way the worker drives them.
//!
//! Owns: the checks that no input panics, that input split at any points parses exactly
//! as the same input in one piece, and that a body's bytes are never read as the start of
//! the next request. Does not own: the per-rule tables (each file has its own).

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::{BodyFraming, ChunkedDecoder, Limits, RequestHead, parse_head};

/// What a connection saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A complete request, and the input offset just past it.
    Request {
        head: RequestHead,
        body: Vec<u8>,
        end: usize,
    },
    /// A refusal, and the offset where the refused request started.
    Error { status: u16, at: usize },
}

/// Where the simulated worker is in the stream.
enum Conn {
    Head,
    Length {
        head: RequestHead,
        left: u64,
        body: Vec<u8>,
    },
    Chunked {
        head: RequestHead,
        dec: ChunkedDecoder,
        body: Vec<u8>,
        start: usize,
    },
    Closed,
}

/// Simulates a worker: the input arrives cut at `cuts`; after each arrival the worker
/// parses as far as it can. Requests that are not keep-alive, and errors, close.
/// Returns the events and the bytes taken.
fn connection(input: &[u8], cuts: &[usize], limits: &Limits) -> (Vec<Event>, usize) {
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    ends.push(input.len());
    ends.sort_unstable();
    let mut worker = Worker {
        pos: 0,
        events: Vec::new(),
        limits,
    };
    let mut conn = Conn::Head;
    for end in ends {
        conn = worker.progress(conn, input.get(..end).unwrap_or_default());
    }
    // After an error the bytes taken so far depend on how they arrived, and no longer
    // matter: the connection closes. Report where the refused request began instead.
    if let Some(Event::Error { at, .. }) = worker.events.last() {
        worker.pos = *at;
    }
    (worker.events, worker.pos)
}

/// The simulated worker's side of one connection.
struct Worker<'a> {
    /// Bytes of the input taken so far.
    pos: usize,
    events: Vec<Event>,
    limits: &'a Limits,
}

/// The next state and whether it may progress further with the bytes at hand.
type Next = (Conn, bool);

impl Worker<'_> {
    fn progress(&mut self, mut conn: Conn, buf: &[u8]) -> Conn {
        loop {
            let rest = buf.get(self.pos..).unwrap_or_default();
            let (next, more) = match conn {
                Conn::Head => self.on_head(rest),
                Conn::Length { head, left, body } => self.on_length(head, left, body, rest),
                Conn::Chunked {
                    head,
                    dec,
                    body,
                    start,
                } => self.on_chunked(head, dec, body, start, rest),
                Conn::Closed => (Conn::Closed, false),
            };
            conn = next;
            if !more {
                return conn;
            }
        }
    }

    fn on_head(&mut self, rest: &[u8]) -> Next {
        match parse_head(rest, self.limits) {
            Ok(None) => (Conn::Head, false),
            Err(e) => self.fail(e.status(), self.pos),
            Ok(Some(head)) => {
                let start = self.pos;
                self.pos += head.len();
                match head.framing() {
                    BodyFraming::Empty => self.finish(head, Vec::new()),
                    BodyFraming::Length(n) => (
                        Conn::Length {
                            head,
                            left: n,
                            body: Vec::new(),
                        },
                        true,
                    ),
                    BodyFraming::Chunked => {
                        let dec = ChunkedDecoder::new();
                        (
                            Conn::Chunked {
                                head,
                                dec,
                                body: Vec::new(),
                                start,
                            },
                            true,
                        )
                    }
                }
            }
        }
    }

    fn on_length(&mut self, head: RequestHead, left: u64, mut body: Vec<u8>, rest: &[u8]) -> Next {
        let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        body.extend_from_slice(rest.get(..take).unwrap_or_default());
        self.pos += take;
        let left = left - take as u64;
        if left > 0 {
            return (Conn::Length { head, left, body }, false);
        }
        self.finish(head, body)
    }

    fn on_chunked(
        &mut self,
        head: RequestHead,
        mut dec: ChunkedDecoder,
        mut body: Vec<u8>,
        start: usize,
        rest: &[u8],
    ) -> Next {
        match dec.decode(rest, &mut body, self.limits) {
            Err(e) => self.fail(e.status(), start),
            Ok((n, done)) => {
                assert!(done || rest.len() - n <= ChunkedDecoder::MAX_PENDING);
                self.pos += n;
                if !done {
                    return (
                        Conn::Chunked {
                            head,
                            dec,
                            body,
                            start,
                        },
                        false,
                    );
                }
                self.finish(head, body)
            }
        }
    }

    fn fail(&mut self, status: u16, at: usize) -> Next {
        self.events.push(Event::Error { status, at });
        (Conn::Closed, false)
    }

    fn finish(&mut self, head: RequestHead, body: Vec<u8>) -> Next {
        let keep_alive = head.keep_alive();
        self.events.push(Event::Request {
            head,
            body,
            end: self.pos,
        });
        (
            if keep_alive { Conn::Head } else { Conn::Closed },
            keep_alive,
        )
    }
}

/// A request that looks like a request, hidden in bodies to catch smuggling.
const HIDDEN: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

fn chunked(data: &[&[u8]], ext: &str, trailers: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for d in data {
        out.extend_from_slice(format!("{:x}{ext}\r\n", d.len()).as_bytes());
        out.extend_from_slice(d);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0{ext}\r\n{trailers}\r\n").as_bytes());
    out
}

/// The (method, target, body) of every request a connection should yield.
type Expected = Vec<(&'static str, &'static str, Vec<u8>)>;

/// Valid connections and the requests in them.
fn corpus() -> Vec<(Vec<u8>, Expected)> {
    let mut cl_body = HIDDEN.to_vec();
    cl_body.extend_from_slice(b"tail");
    let mut cl = format!(
        "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        cl_body.len()
    )
    .into_bytes();
    cl.extend_from_slice(&cl_body);
    cl.extend_from_slice(b"\r\nGET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let mut ch = b"POST /ch HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n".to_vec();
    ch.extend_from_slice(&chunked(
        &[HIDDEN, b"0\r\n\r\n", b"x"],
        ";n=\"v\"",
        "X-T: 1\r\n",
    ));
    ch.extend_from_slice(b"GET /next?a=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut ch_body = HIDDEN.to_vec();
    ch_body.extend_from_slice(b"0\r\n\r\nx");
    vec![
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), vec![("GET", "/", vec![])]),
        (cl, vec![("POST", "/cl", cl_body), ("GET", "/after", vec![])]),
        (ch, vec![("POST", "/ch", ch_body), ("GET", "/next?a=1", vec![])]),
        (
            b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD /2 HTTP/1.0\r\n\r\nGET /3 HTTP/1.0\r\n\r\n".to_vec(),
            vec![("GET", "/1", vec![]), ("HEAD", "/2", vec![])],
        ),
        (
            b"PUT /e HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            vec![("PUT", "/e", b"abc".to_vec()), ("OPTIONS", "*", vec![])],
        ),
    ]
}

fn summary(events: &[Event]) -> Vec<(String, String, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Request { head, body, .. } => {
                Some((head.method().into(), head.target().into(), body.clone()))
            }
            Event::Error { .. } => None,
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"\r\n \t:;,=\"0aF\x00\x7f\xff/?#*".to_vec()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(input: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, n: usize| if n == 0 { 0 } else { i % n };
    match *m {
        Mutation::Flip(i, b) => {
            let n = input.len();
            if let Some(x) = input.get_mut(at(i, n)) {
                *x = b;
            }
        }
        Mutation::Insert(i, b) => {
            let n = input.len() + 1;
            input.insert(at(i, n), b);
        }
        Mutation::Delete(i) => {
            if !input.is_empty() {
                let n = input.len();
                input.remove(at(i, n));
            }
        }
        Mutation::Truncate(i) => {
            let n = input.len() + 1;
            input.truncate(at(i, n));
        }
    }
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        Just(Limits {
            request_line: 24,
            fields: 3,
            field_size: 40,
            max_body: 48
        }),
    ]
}

/// The head as received: its first "\r\n\r\n" after the leading empty lines is its end.
fn head_is_exact(head: &RequestHead) -> bool {
    let mut bytes = head.as_bytes();
    while let Some(rest) = bytes.strip_prefix(b"\r\n") {
        bytes = rest;
    }
    let first_blank = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    first_blank.map(|i| i + 4) == Some(bytes.len())
}

/// 512 cases each by default; `PROPTEST_CASES=N` runs more. Failures are not persisted
/// to files: the minimal input is printed instead.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Valid connections, cut anywhere: exactly the expected requests, bodies included;
    /// the request hidden inside each body never shows up.
    #[test]
    fn valid_connections_parse_exactly(which in 0usize..5, cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let corpus = corpus();
        let (input, want) = &corpus[which % corpus.len()];
        let (events, _) = connection(input, &cuts, &Limits::default());
        let want: Vec<(String, String, Vec<u8>)> =
            want.iter().map(|(m, t, b)| ((*m).into(), (*t).into(), b.clone())).collect();
        prop_assert_eq!(summary(&events), want);
    }

    /// Mutated connections: no panic, the same events whole, cut anywhere, or one byte at
    /// a time, and every head ends at its first empty line.
    #[test]
    fn mutated_connections_are_split_invariant(
        which in 0usize..5,
        mutations in prop::collection::vec(mutation(), 0..5),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        limits in limits(),
    ) {
        let corpus = corpus();
        let mut input = corpus[which % corpus.len()].0.clone();
        for m in &mutations {
            apply(&mut input, m);
        }
        let whole = connection(&input, &[], &limits);
        prop_assert_eq!(&connection(&input, &cuts, &limits), &whole);
        let every: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&connection(&input, &every, &limits), &whole);
        for event in &whole.0 {
            if let Event::Request { head, body, end } = event {
                prop_assert!(head_is_exact(head));
                prop_assert!(*end <= input.len());
                if let BodyFraming::Length(n) = head.framing() {
                    prop_assert_eq!(body.len() as u64, n);
                }
            }
        }
    }

    /// Arbitrary bytes: parse_head never panics, and any prefix of the input either needs
    /// more or reaches the verdict the whole input gets.
    #[test]
    fn parse_head_prefixes_agree(input in prop::collection::vec(interesting_byte(), 0..300), limits in limits()) {
        let whole = parse_head(&input, &limits);
        for cut in 0..=input.len() {
            match parse_head(&input[..cut], &limits) {
                Ok(None) => {}
                verdict => {
                    prop_assert_eq!(verdict, whole);
                    break;
                }
            }
        }
        if let Ok(Some(head)) = parse_head(&input, &limits) {
            prop_assert!(head.len() <= limits.max_head_bytes());
        }
    }

    /// Generated chunked bodies, any data (CRLFs and "0\r\n\r\n" included), any cuts: the
    /// data comes back exactly and decoding stops exactly after the final CRLF.
    #[test]
    fn chunked_round_trip(
        data in prop::collection::vec(prop::collection::vec(interesting_byte(), 1..40), 0..6),
        ext in prop::sample::select(vec!["", ";a", " ; a = b", ";q=\"x\\\"y\""]),
        trailers in prop::sample::select(vec!["", "X: 1\r\n", "A: b\r\nC-D:\r\n"]),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut input = chunked(&refs, ext, trailers);
        let encoded = input.len();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let limits = Limits::default();
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        ends.push(input.len());
        ends.sort_unstable();
        let (mut dec, mut body, mut consumed, mut done) = (ChunkedDecoder::new(), Vec::new(), 0, false);
        for end in ends {
            let (n, fin) = dec.decode(&input[consumed..end], &mut body, &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
            consumed += n;
            done = fin;
            if done {
                break;
            }
        }
        prop_assert!(done);
        prop_assert_eq!(consumed, encoded);
        prop_assert_eq!(body, data.concat());
    }
}
