//! A connection's output queue: response heads and bodies waiting to be written, in the
//! order the requests arrived (pipelining, RFC 9112 §9.3.2).
//!
//! Small pieces are copied into one buffer so a whole response usually leaves in one
//! `write`; large bodies are queued as their own segment and sent with one `writev`
//! alongside the head, without a copy; files go out with `sendfile`. A partial write
//! leaves the rest queued, and the connection resumes on its next writable event.
//! The buffer for heads and small bodies is kept and reused (up to 64 KiB), so a
//! keep-alive connection allocates nothing per request in the steady state; a large
//! body's own buffer is freed once written. A handler's stream is read a piece at a time,
//! when everything queued before it has been written, so a slow client slows the reading
//! instead of growing the queue; nothing is queued behind a stream.

use std::collections::VecDeque;
use std::fmt::Display;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::conn::drop_guarded;
use super::stream::Stream;
use crate::http::{CHUNK_HEAD_ROOM, LAST_CHUNK, StreamEnd, frame_chunk};
use crate::sys::{clock::monotonic_ms, scoreboard};

/// Bodies up to this size are copied next to their head; larger ones are queued whole.
const COPY_LIMIT: usize = 16 * 1024;
/// The most read from a stream at a time: one chunk.
const STREAM_READ: usize = 16 * 1024;
/// The most reads of a stream in one flush (256 KiB), and the most time they may take,
/// after which the worker turns to its other connections (and ticks its heartbeat) and
/// comes back: a stream its client takes as fast as it is read never fills the socket,
/// and would otherwise keep the worker to itself to its end, silent to the master.
const STREAM_READS_PER_TURN: usize = 16;
const STREAM_TURN: Duration = Duration::from_millis(20);
/// The most slices handed to one `writev`.
const MAX_SLICES: usize = 16;
/// The largest emptied buffer kept for the next response: one that pipelined answers grew
/// larger is let go, or an idle kept-alive connection would hold it for its whole life.
const SPARE_KEEP: usize = 64 * 1024;

/// What one flush has given the stream at the front of the queue so far.
#[derive(Default)]
struct StreamTurn {
    reads: usize,
    began: Option<Instant>,
}

enum Segment {
    /// Heads and small bodies, copied in; reused once written ([`SPARE_KEEP`]).
    Bytes(Vec<u8>),
    /// A large body queued whole: never appended to (a head after it would reallocate
    /// and copy the body), and freed once written.
    Body(Vec<u8>),
    Static(&'static [u8]),
    File {
        file: File,
        offset: u64,
        remaining: u64,
    },
    /// A handler's stream, read when all before it is written. Always the last segment:
    /// the connection queues nothing behind it (see [`OutQueue::streaming`]).
    Stream {
        reader: AppReader,
        /// How its end is marked; a length counts down as it is read.
        end: StreamEnd,
        /// The handler's Content-Length as it declared it, for the log (0 without one).
        declared: u64,
        /// The request it answers, for the log and the scoreboard (`GET /export
        /// HTTP/1.1`); none for an answer made before the body was read.
        answering: Option<Box<str>>,
        /// What its first read gave, made before the head was sent
        /// (`conn::first_read`), still to be framed and queued.
        ahead: Option<Vec<u8>>,
    },
}

/// Bytes and files waiting to be written.
#[derive(Default)]
pub struct OutQueue {
    segments: VecDeque<Segment>,
    /// Bytes of the front segment already written.
    front_written: usize,
    /// An emptied buffer kept for the next response.
    spare: Vec<u8>,
    /// Bytes queued and not yet written (files included).
    pending: u64,
    /// Bytes written since the connection opened: with `pending`, where each answer
    /// begins and ends in the stream, so its access-log line knows when it is sent.
    written: u64,
    /// How many file segments are queued; the socket is corked while there are any.
    files: usize,
    /// TCP_CORK is set on the socket because a file is queued.
    corked: bool,
    /// Where a stream that has just been read to its end ends in the output, until
    /// [`OutQueue::take_stream_end`].
    stream_ended: Option<u64>,
    /// The last flush ended a stream's turn ([`STREAM_READS_PER_TURN`] reads, or
    /// [`STREAM_TURN`]) with the socket still taking more: no writable event will say
    /// so, and the connection is owed another turn.
    yielded: bool,
    /// The last flush read from a stream: time passed in the application.
    read_stream: bool,
    /// A stream ended by the close (HTTP/1.0) is queued: until all of it is written, a
    /// close would look like its end to the client.
    close_delimited: bool,
}

/// The application's reader, dropped as the handler's panics are: its `Drop` is the
/// application's code, and may panic too.
struct AppReader(Box<dyn Read>);

impl Drop for AppReader {
    fn drop(&mut self) {
        drop_guarded(std::mem::replace(&mut self.0, Box::new(io::empty())));
    }
}

impl OutQueue {
    /// Nothing left to write.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Nothing to write and no cork to lift: a flush would do nothing.
    pub fn is_settled(&self) -> bool {
        self.segments.is_empty() && !self.corked
    }

    /// A handler's stream is still being read: until it ends, where its answer ends in
    /// the output is not known, so no later answer may be queued behind it.
    pub fn streaming(&self) -> bool {
        matches!(self.segments.back(), Some(Segment::Stream { .. }))
    }

    /// Bytes not yet written; the connection stops parsing new requests while this is
    /// large, so a client that pipelines without reading cannot make us buffer forever.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Bytes written so far, over the connection's life.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Where the next byte queued will be in the connection's output stream.
    pub fn queued_end(&self) -> u64 {
        self.written + self.pending
    }

    /// The buffer to append a response head (or a small body) to.
    pub fn tail_buf(&mut self) -> &mut Vec<u8> {
        if !matches!(self.segments.back(), Some(Segment::Bytes(_))) {
            let buf = std::mem::take(&mut self.spare);
            self.segments.push_back(Segment::Bytes(buf));
        }
        match self.segments.back_mut() {
            Some(Segment::Bytes(buf)) => buf,
            _ => unreachable!("a Bytes segment was pushed just above"),
        }
    }

    /// Records `n` bytes just appended through [`OutQueue::tail_buf`].
    pub fn appended(&mut self, n: usize) {
        self.pending += n as u64;
    }

    /// Queues an owned body, copying it only when small.
    pub fn push_bytes(&mut self, body: Vec<u8>) {
        self.pending += body.len() as u64;
        match body.len() <= COPY_LIMIT {
            true => self.tail_buf().extend_from_slice(&body),
            false => self.segments.push_back(Segment::Body(body)),
        }
    }

    /// Queues a static body without copying it.
    pub fn push_static(&mut self, body: &'static [u8]) {
        self.pending += body.len() as u64;
        match body.len() <= COPY_LIMIT {
            true => self.tail_buf().extend_from_slice(body),
            false => self.segments.push_back(Segment::Static(body)),
        }
    }

    /// Queues `remaining` bytes of `file` from `offset`. A small file is read now and
    /// copied after its head, so the whole response leaves in one `write` (cheaper than
    /// cork + sendfile + uncork for a few bytes); a large one is sent with sendfile. An
    /// error means the response cannot be completed and the connection must close.
    pub fn push_file(&mut self, file: File, offset: u64, remaining: u64) -> io::Result<()> {
        if remaining <= COPY_LIMIT as u64 {
            use std::os::unix::fs::FileExt;
            let buf = self.tail_buf();
            let start = buf.len();
            buf.resize(start + remaining as usize, 0);
            if let Err(err) = file.read_exact_at(&mut buf[start..], offset) {
                // Never send the zeros the buffer was padded with.
                buf.truncate(start);
                return Err(match err.kind() {
                    io::ErrorKind::UnexpectedEof => io::Error::new(
                        err.kind(),
                        "it was truncated after it was measured (rewritten in place?)",
                    ),
                    _ => err,
                });
            }
            self.pending += remaining;
            return Ok(());
        }
        self.pending += remaining;
        if remaining > 0 {
            self.files += 1;
            self.segments.push_back(Segment::File {
                file,
                offset,
                remaining,
            });
        }
        Ok(())
    }

    /// Queues a handler's stream, to be read as the client takes what goes before it,
    /// after `ahead`, what its first read gave if it was made already. An HTTP/1.1
    /// stream of unknown length is chunked, one read a chunk.
    pub fn push_stream(&mut self, reader: Box<dyn Read>, end: StreamEnd, ahead: Option<Vec<u8>>) {
        self.close_delimited = end == StreamEnd::Close;
        self.segments.push_back(Segment::Stream {
            reader: AppReader(reader),
            end,
            // Whole yet: what `ahead` holds is counted off once it is queued.
            declared: declared_length(end),
            answering: None,
            ahead,
        });
    }

    /// An answer ended by the close has just been written whole: the close may end it
    /// now (until then, a close must be a reset, or its client would take what came for
    /// the whole answer: RFC 9112 §6.3 ¶8). True once.
    pub fn close_delimited_sent(&mut self) -> bool {
        let sent = self.close_delimited && self.segments.is_empty();
        if sent {
            self.close_delimited = false;
        }
        sent
    }

    /// The last flush read from a stream, so the application's time passed meanwhile.
    pub fn read_stream(&self) -> bool {
        self.read_stream
    }

    /// The last flush left off with the socket still writable (see `yielded`).
    pub fn yielded(&self) -> bool {
        self.yielded
    }

    /// Where the stream read to its end since the last call ends in the connection's
    /// output ([`OutQueue::written`]), its last chunk included.
    pub fn take_stream_end(&mut self) -> Option<u64> {
        self.stream_ended.take()
    }

    /// Names the request the queued stream answers, for the log to say which one failed.
    pub fn label_stream(&mut self, request: String) {
        if let Some(Segment::Stream { answering, .. }) = self.segments.back_mut() {
            *answering = Some(request.into());
        }
    }

    /// Reads the next piece of the stream at the front (all before it is written) and
    /// queues it ahead of the stream; at the stream's end, the stream leaves the queue and
    /// the last chunk, if it is chunked, takes its place. An error (a failed or panicking
    /// read, a stream short of its Content-Length) is logged: the answer cannot be
    /// finished; so is a stream longer than its Content-Length, cut there
    /// ([`Piece::within_length`]). The piece read before the head was sent is queued
    /// first, with no read; whether it was is the result.
    fn pull(&mut self) -> io::Result<bool> {
        let Some(Segment::Stream {
            reader,
            end,
            declared,
            answering,
            ahead,
        }) = self.segments.front_mut()
        else {
            return Ok(false);
        };
        let read_before = ahead.is_some();
        let which = answering.as_deref().unwrap_or("a request");
        let piece = match ahead.take() {
            Some(raw) => Ok(frame_piece(raw, end)),
            None => read_as_the_application(reader, end, which, *declared),
        };
        let piece = piece.inspect_err(|err| {
            log::warn!(
                "the stream answering {which} failed: {err}; closing the connection, the answer cut short"
            );
        })?;
        match piece {
            Some(bytes) => {
                self.pending += bytes.len() as u64;
                self.segments.push_front(Segment::Body(bytes));
            }
            None => {
                let chunked = *end == StreamEnd::Chunked;
                self.segments.pop_front();
                if chunked {
                    self.pending += LAST_CHUNK.len() as u64;
                    self.segments.push_front(Segment::Static(LAST_CHUNK));
                }
                self.stream_ended = Some(self.queued_end());
            }
        }
        Ok(read_before)
    }

    /// Writes until the queue is empty (`Ok(true)`) or the socket would block
    /// (`Ok(false)`). Sets `progressed` when any byte was written.
    pub fn flush(&mut self, stream: &mut Stream, progressed: &mut bool) -> io::Result<bool> {
        if self.is_settled() {
            return Ok(true);
        }
        self.cork(stream);
        let done = self.write_all(stream, progressed);
        self.cork(stream);
        done
    }

    /// Corks the socket while a file is queued (so its head and first bytes share
    /// packets) and uncorks once none is, which pushes out whatever is left.
    fn cork(&mut self, stream: &Stream) {
        let want = self.files > 0;
        if want != self.corked {
            stream.set_cork(want);
            self.corked = want;
        }
    }

    fn write_all(&mut self, stream: &mut Stream, progressed: &mut bool) -> io::Result<bool> {
        let mut turn = StreamTurn::default();
        (self.yielded, self.read_stream) = (false, false);
        while let Some(front) = self.segments.front() {
            if matches!(front, Segment::Stream { .. }) {
                // All before it is written, and the socket takes more.
                if !self.stream_read(&mut turn)? {
                    return Ok(false);
                }
                continue;
            }
            match self.write_front(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    *progressed = true;
                    self.pending = self.pending.saturating_sub(n as u64);
                    self.written += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }

    /// One more read of the stream at the front, unless this flush has given it its
    /// turn already ([`STREAM_READS_PER_TURN`] reads, or [`STREAM_TURN`]): false then,
    /// and the flush yields.
    fn stream_read(&mut self, turn: &mut StreamTurn) -> io::Result<bool> {
        let turn_over = turn.began.is_some_and(|t| t.elapsed() >= STREAM_TURN);
        self.yielded = turn.reads == STREAM_READS_PER_TURN || turn_over;
        if self.yielded {
            return Ok(false);
        }
        turn.began.get_or_insert_with(Instant::now);
        (turn.reads, self.read_stream) = (turn.reads + 1, true);
        if self.pull()? {
            // The read behind it was the handler's, just now: that was the turn.
            turn.reads = STREAM_READS_PER_TURN;
        }
        Ok(true)
    }

    /// Writes from the front: a file with sendfile, which advances the segment's own
    /// offset and count, or the leading in-memory segments with one `writev`. Whatever
    /// was written whole leaves the queue.
    fn write_front(&mut self, stream: &mut Stream) -> io::Result<usize> {
        if let Some(Segment::File {
            file,
            offset,
            remaining,
        }) = self.segments.front_mut()
        {
            let n = send_file(stream, file, offset, remaining)?;
            self.advance(0);
            return Ok(n);
        }
        let n = self.write_slices(stream)?;
        self.advance(n);
        Ok(n)
    }

    /// One `writev` over the leading in-memory segments.
    fn write_slices(&self, stream: &mut Stream) -> io::Result<usize> {
        // The usual case, one buffered response: a plain write, no slice list to build.
        if let (1, Some(Segment::Bytes(buf))) = (self.segments.len(), self.segments.front()) {
            return stream.write(&buf[self.front_written..]);
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for segment in self.segments.iter().take(MAX_SLICES) {
            let bytes = match segment {
                Segment::Bytes(buf) | Segment::Body(buf) => buf.as_slice(),
                Segment::Static(body) => body,
                Segment::File { .. } | Segment::Stream { .. } => break,
            };
            let skip = if count == 0 { self.front_written } else { 0 };
            slices[count] = IoSlice::new(&bytes[skip..]);
            count += 1;
        }
        match count {
            1 => stream.write(&slices[0]),
            _ => stream.write_vectored(&slices[..count]),
        }
    }

    /// Drops `n` written bytes from the front, recycling emptied buffers. A file segment
    /// tracks its own progress (sendfile moved its offset) and leaves once it is sent.
    fn advance(&mut self, mut n: usize) {
        while let Some(front) = self.segments.front() {
            let left = match front {
                Segment::Bytes(buf) | Segment::Body(buf) => buf.len() - self.front_written,
                Segment::Static(body) => body.len() - self.front_written,
                Segment::File { remaining, .. } if *remaining > 0 => return,
                Segment::File { .. } => 0,
                Segment::Stream { .. } => return,
            };
            if n < left {
                self.front_written += n;
                return;
            }
            n -= left;
            self.front_written = 0;
            match self.segments.pop_front() {
                Some(Segment::Bytes(mut buf)) if buf.capacity() <= SPARE_KEEP => {
                    buf.clear();
                    self.spare = buf;
                }
                Some(Segment::File { .. }) => self.files -= 1,
                _ => {}
            }
        }
    }
}

/// A stream's first read, made before its head is sent (`conn::first_read`), not yet
/// framed nor counted off a Content-Length ([`frame_piece`] does both once it is
/// queued): empty at the stream's end, or why it failed, a stream that ends short of
/// its Content-Length included. `which` names the request for the log.
pub(super) fn read_first(
    reader: &mut dyn Read,
    end: StreamEnd,
    which: &dyn Display,
) -> io::Result<Vec<u8>> {
    let declared = declared_length(end);
    let piece = read_unframed(reader, end)?;
    Ok(piece.map_or_else(Vec::new, |piece| piece.within_length(which, declared)))
}

/// The Content-Length a stream not yet read from declared; 0 without one.
fn declared_length(end: StreamEnd) -> u64 {
    match end {
        StreamEnd::Length(declared) => declared,
        StreamEnd::Chunked | StreamEnd::Close => 0,
    }
}

/// One read of a stream, as the application's time: the worker is busy in the request
/// meanwhile, for the master's --timeout, the metrics and the autoscaler. `which` (the
/// request it answers) and `declared` (the handler's Content-Length) are for the log.
fn read_as_the_application(
    reader: &mut AppReader,
    end: &mut StreamEnd,
    which: &str,
    declared: u64,
) -> io::Result<Option<Vec<u8>>> {
    let slot = scoreboard::own();
    slot.inspect(|slot| slot.begin_request(&[which.as_bytes()], monotonic_ms()));
    let piece = read_unframed(reader.0.as_mut(), *end);
    slot.inspect(|slot| slot.idle_again(monotonic_ms()));
    Ok(piece?.map(|piece| frame(piece.within_length(&which, declared), end)))
}

/// What one read of a stream gave, unframed: room for a chunk's head first when
/// chunked, then the bytes read.
struct Piece {
    buf: Vec<u8>,
    /// The reader gave more than its Content-Length had left: what was past it is not
    /// in `buf`.
    overran: bool,
}

impl Piece {
    /// The bytes, once a reader that went past its Content-Length is logged. The answer
    /// is cut at the length, which is right on the wire (what follows would be taken
    /// for the next answer), but the handler's length or its reader is wrong, and would
    /// otherwise not be seen to be. Said once an answer: nothing is read past the length.
    fn within_length(self, which: &dyn Display, declared: u64) -> Vec<u8> {
        if self.overran {
            log::warn!(
                "the stream answering {which} went past its Content-Length of {declared} bytes: \
                 the handler's reader gives more than it declared; the answer was cut at that length"
            );
        }
        self.buf
    }
}

/// The piece [`read_first`] read, framed; `None` when it was empty (the stream's end,
/// which `read_first` found complete).
fn frame_piece(buf: Vec<u8>, end: &mut StreamEnd) -> Option<Vec<u8>> {
    (!buf.is_empty()).then(|| frame(buf, end))
}

/// The next piece of a stream, read into a buffer that leaves room for a chunk's head
/// when `end` is chunked; `None` at its end. Reads up to [`STREAM_READ`] bytes, and no
/// more than a Content-Length has left but one: a reader that has more says so by
/// filling that byte, which is dropped ([`Piece::overran`]). That costs no read of its
/// own, which could wait on a reader that only the length ends (a socket's). A panic in
/// the reader is caught as the worker catches one in the handler.
fn read_unframed(reader: &mut dyn Read, end: StreamEnd) -> io::Result<Option<Piece>> {
    let want = match end {
        StreamEnd::Length(0) => return Ok(None),
        StreamEnd::Length(left) => left.saturating_add(1).min(STREAM_READ as u64) as usize,
        StreamEnd::Chunked | StreamEnd::Close => STREAM_READ,
    };
    let room = if end == StreamEnd::Chunked {
        CHUNK_HEAD_ROOM
    } else {
        0
    };
    // Room for the chunk's CRLF too, so that framing it moves nothing to a new buffer.
    let mut buf = Vec::with_capacity(room + want + 2);
    buf.resize(room + want, 0);
    let n = read_guarded(reader, &mut buf[room..])?;
    if n == 0 {
        return match end {
            StreamEnd::Length(left) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("it ended {left} bytes short of its Content-Length"),
            )),
            StreamEnd::Chunked | StreamEnd::Close => Ok(None),
        };
    }
    // Past the length only by the one byte asked for beyond it, so `left` < `n` fits.
    let kept = match end {
        StreamEnd::Length(left) if left < n as u64 => left as usize,
        _ => n,
    };
    buf.truncate(room + kept);
    Ok(Some(Piece {
        buf,
        overran: kept < n,
    }))
}

/// What [`read_unframed`] read, framed as `end` says: a chunk, or the bytes as they are,
/// counted off what a Content-Length has left.
fn frame(buf: Vec<u8>, end: &mut StreamEnd) -> Vec<u8> {
    match end {
        StreamEnd::Chunked => frame_chunk(buf),
        StreamEnd::Length(left) => {
            *left -= buf.len() as u64;
            buf
        }
        StreamEnd::Close => buf,
    }
}

/// One `read` of the application's reader, retried when interrupted; a panic in it is
/// an error, and the worker lives on.
fn read_guarded(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match catch_unwind(AssertUnwindSafe(|| reader.read(buf))) {
            Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
            Ok(result) => return result.and_then(|n| within(n, buf.len())),
            Err(payload) => {
                drop_guarded(payload);
                return Err(io::Error::other("its read panicked"));
            }
        }
    }
}

/// A reader that claims more bytes than its buffer holds breaks `Read`'s contract; its
/// count is not trusted.
fn within(n: usize, len: usize) -> io::Result<usize> {
    match n <= len {
        true => Ok(n),
        false => Err(io::Error::other(format!(
            "its read claimed {n} bytes of {len}"
        ))),
    }
}

/// Sends as much of the file as the socket takes, advancing `offset` and `remaining`.
fn send_file(
    stream: &mut Stream,
    file: &File,
    offset: &mut u64,
    remaining: &mut u64,
) -> io::Result<usize> {
    use std::os::fd::{AsFd, AsRawFd};
    let mut off = *offset as i64;
    let count = (*remaining).min(1 << 30) as usize;
    let sent = nix::sys::sendfile::sendfile(stream.fd(), file.as_fd(), Some(&mut off), count)?;
    if sent == 0 && count > 0 {
        // The file shrank under us: there is no way to finish this response honestly.
        // Said at warning level, as nginx says "file was truncated": the client gets a
        // cut-off answer, and the file's writer should know which file (nginx names it).
        let name = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let name = name.map_or_else(|_| "a file".into(), |path| format!("{:?}", path));
        log::warn!("{name} was truncated while being sent, {remaining} bytes short; closing");
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file truncated while sending",
        ));
    }
    *offset += sent as u64;
    *remaining -= sent as u64;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a stream with `left` bytes of its Content-Length to go reads from `source`:
    /// the bytes kept and whether the reader went past, or the error.
    fn read(source: &[u8], left: u64) -> Result<(Vec<u8>, bool), String> {
        let mut reader = io::Cursor::new(source);
        match read_unframed(&mut reader, StreamEnd::Length(left)) {
            Ok(Some(piece)) => Ok((piece.buf, piece.overran)),
            Ok(None) => Ok((Vec::new(), false)),
            Err(err) => Err(err.to_string()),
        }
    }

    /// A reader with more than its Content-Length is cut there, and says so; one with
    /// exactly that many bytes, or fewer in a read, is not flagged; one that ends short
    /// is an error, which closes the connection.
    #[test]
    fn a_stream_is_held_to_its_content_length() {
        assert_eq!(read(b"hello, world", 5), Ok((b"hello".to_vec(), true)));
        assert_eq!(read(b"hello", 5), Ok((b"hello".to_vec(), false)));
        assert_eq!(read(b"hel", 5), Ok((b"hel".to_vec(), false)));
        assert_eq!(
            read(b"more", 0),
            Ok((Vec::new(), false)),
            "nothing left, nothing read"
        );
        let short = read(b"", 5).expect_err("short");
        assert!(short.contains("ended 5 bytes short"), "{short}");
        // Beyond one read's worth, a read is a full one, and the length is not reached.
        let long = vec![b'x'; STREAM_READ * 2];
        let (first, overran) = read(&long, STREAM_READ as u64 + 1).expect("a read");
        assert_eq!((first.len(), overran), (STREAM_READ, false));
        let (last, overran) = read(&long, STREAM_READ as u64 - 1).expect("a read");
        assert_eq!((last.len(), overran), (STREAM_READ - 1, true));
    }

    /// A small file is copied into the output at once; one cut short since it was
    /// measured queues none of its bytes (never the padding), and says why.
    #[test]
    fn a_small_file_truncated_before_its_copy_queues_nothing() {
        let path = std::env::temp_dir().join(format!("br-serve-out-{}", std::process::id()));
        std::fs::write(&path, "0123").unwrap();
        let mut out = OutQueue::default();
        out.push_file(File::open(&path).unwrap(), 1, 3)
            .expect("whole");
        assert_eq!(out.pending(), 3);
        let err = out
            .push_file(File::open(&path).unwrap(), 0, 10)
            .expect_err("short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string().contains("truncated after it was measured"),
            "{err}"
        );
        assert_eq!(out.pending(), 3);
        assert!(matches!(out.segments.back(), Some(Segment::Bytes(b)) if b == b"123"));
        std::fs::remove_file(&path).unwrap();
    }
}
