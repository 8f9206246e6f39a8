//! The scoreboard: one shared-memory slot per worker, written by the worker and read by
//! the master (DESIGN invariant 4).
//!
//! The master maps it (`MAP_SHARED | MAP_ANONYMOUS`) before the first fork, so every
//! worker inherits the same pages. A slot is a few cache lines of atomics: the worker
//! stores its heartbeat (CLOCK_MONOTONIC ms), its state, how many requests it served, and
//! what it is serving now; the master reads them to find hung workers and to know when a
//! new generation is ready. Only the owning worker writes its slot while it lives; the
//! master resets a slot before the fork that hands it out. Nothing here takes a lock, so
//! a worker dying mid-write cannot wedge the master. The request line is diagnostic text
//! and may be torn if read while being written; everything else is a single atomic.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use nix::sys::mman::MapFlags;

use super::pages::map_zeroed;

/// How many slots exist. A shared mapping cannot grow under living children, so this is
/// also the most workers the master will run.
pub const CAPACITY: usize = 512;

/// Bytes of the current request line kept for the "what was it doing" log line.
const LINE_WORDS: usize = 12;

/// What a worker is doing, as the master sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No worker owns the slot.
    Free = 0,
    /// Forked, still setting up (the app factory is running).
    Booting = 1,
    /// Waiting in its event loop.
    Idle = 2,
    /// Inside a request.
    Busy = 3,
    /// Draining after TERM: final, whether or not it is inside one of its last requests.
    Stopping = 4,
}

/// One worker's slot. `align(64)` keeps two workers off the same cache line.
#[repr(C, align(64))]
pub struct Slot {
    pid: AtomicU32,
    state: AtomicU32,
    generation: AtomicU32,
    line_len: AtomicU32,
    /// Set by a worker that reached its `--max-requests` quota and wants a successor.
    replacement_wanted: AtomicU32,
    /// Set by the master during `--drain-delay`: still serving, but not ready.
    unready: AtomicU32,
    /// Set by the master when it retires this worker alone (HUP, TTOU, recycling).
    retiring: AtomicU32,
    /// Set by the master as it ends this worker past its graceful time with SIGABRT:
    /// the request its handler is in is answered, and no core is left, as nothing hung.
    overdue: AtomicU32,
    /// Set by a worker that takes no new connection for now (`--worker-connections`
    /// reached, or out of descriptors): idle, it still counts as busy.
    full: AtomicU32,
    /// Requests that arrived on the worker's kept-alive connections and wait behind the
    /// one it is running: demand the accept queue does not show.
    waiting: AtomicU32,
    /// The most `waiting` has been since the master last took it ([`take_waiting_seen`]).
    /// `waiting` counts the events of the worker's current batch, so it reads 0 while the
    /// batch's last request runs, though others have usually arrived by then, unseen
    /// until the next poll: clients keeping one busy worker (each with one request out)
    /// showed as waiting at about half the master's looks, or fewer on a loaded machine.
    waiting_seen: AtomicU32,
    /// Connections whose answer was still going out at the worker's last sweep (a file
    /// or a stream to a client slower than the worker): retiring the worker would cut
    /// them at `--graceful-timeout`, so the master retires others first.
    sending: AtomicU32,
    heartbeat_ms: AtomicU64,
    /// Requests answered in this slot since the master started, by every worker that
    /// held it: never reset, so their sum over the table only grows (a counter for
    /// the metrics, with no race between a worker's exit and its reaping).
    requests: AtomicU64,
    /// `requests` when the current worker got the slot.
    requests_base: AtomicU64,
    /// Requests left unanswered because their client had gone: in the middle of sending
    /// them, or before a worker reached them (`--check-client-connection`); never reset
    /// either.
    abandoned: AtomicU64,
    /// Requests answered 503 for waiting past `--queue-timeout`; never reset either.
    shed: AtomicU64,
    /// Requests answered as SIGABRT ended their worker, 500 in the application, 503 not
    /// idempotent and waiting on its other connections ([`crate::sys::abort_answer`]);
    /// never reset either.
    aborted: AtomicU64,
    request_start_ms: AtomicU64,
    /// When the master handed the slot to the current worker, just before its fork.
    born_ms: AtomicU64,
    /// In a stop of the whole server, per listener: connections of its accept queue this
    /// worker has yet to take, which siblings that plan later leave to it.
    claims: [AtomicU32; CLAIMED_LISTENERS],
    line: [AtomicU64; LINE_WORDS],
}

/// Listeners whose accept queue stopping workers share by claims; past these, each
/// worker plans without knowing what its siblings claimed.
pub const CLAIMED_LISTENERS: usize = 8;

/// The whole table; lives for the life of the process (it is never unmapped).
pub type Scoreboard = &'static [Slot];

/// The slot of the worker this process is; unset in the master.
static OWN: OnceLock<&'static Slot> = OnceLock::new();

/// Worker, at setup: records its own slot, for what runs outside its event loop (the
/// application's [`crate::heartbeat`], its SIGABRT action).
pub fn set_own(slot: &'static Slot) {
    let _ = OWN.set(slot);
}

/// This worker's own slot ([`set_own`]); `None` outside a worker. Reading it is one
/// atomic load, so a signal handler may.
pub fn own() -> Option<&'static Slot> {
    OWN.get().copied()
}

/// The whole table at a glance, for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Workers forked and building their app.
    pub booting: usize,
    /// Workers waiting in their event loop.
    pub idle: usize,
    /// Workers inside a request.
    pub busy: usize,
    /// Workers draining before they exit.
    pub stopping: usize,
    /// Requests answered since the master started, by workers alive or gone.
    pub requests: u64,
    /// Requests skipped since the master started because their client had gone.
    pub abandoned: u64,
    /// Requests answered 503 since the master started for waiting too long.
    pub shed: u64,
    /// Requests answered since the master started as SIGABRT ended their worker.
    pub aborted: u64,
    /// Requests waiting on kept-alive connections behind their worker's current one.
    pub waiting: u64,
}

/// Master, for autoscaling: requests seen waiting behind busy workers since the last
/// call, each worker's most at once, summed; each worker's count starts again at 0.
pub fn take_waiting_seen(board: Scoreboard) -> u64 {
    let live = board.iter().filter(|slot| slot.state() != State::Free);
    live.map(|slot| u64::from(slot.waiting_seen.swap(0, Relaxed)))
        .sum()
}

/// Reads every slot once (atomics only; a snapshot, not a transaction).
pub fn summarize(board: Scoreboard) -> Summary {
    let mut sum = Summary::default();
    for slot in board {
        sum.requests += slot.requests.load(Relaxed);
        sum.abandoned += slot.abandoned.load(Relaxed);
        sum.shed += slot.shed.load(Relaxed);
        sum.aborted += slot.aborted.load(Relaxed);
        let state = slot.state();
        if state != State::Free {
            sum.waiting += u64::from(slot.waiting.load(Relaxed));
        }
        match state {
            State::Booting => sum.booting += 1,
            State::Idle => sum.idle += 1,
            State::Busy => sum.busy += 1,
            State::Stopping => sum.stopping += 1,
            State::Free => {}
        }
    }
    sum
}

/// One living worker, as a metrics scrape shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerView {
    /// Its number in the logs (`worker.N`): its slot's index plus one.
    pub number: usize,
    /// Its pid; 0 while it is being forked.
    pub pid: u32,
    /// Requests it has answered.
    pub requests: u64,
    /// Milliseconds since it was forked.
    pub age_ms: u64,
    /// Milliseconds it has spent in its current request; 0 unless busy.
    pub busy_ms: u64,
    /// Answers it was still sending at its last sweep ([`Slot::sending`]).
    pub sending: u32,
}

/// Every slot that holds a worker, in slot order, as of `now_ms`.
pub fn workers(board: Scoreboard, now_ms: u64) -> Vec<WorkerView> {
    let since = |ms: &AtomicU64| now_ms.saturating_sub(ms.load(Relaxed));
    let view = |(index, slot): (usize, &Slot)| {
        // One read of the state, so a view never mixes two of them.
        let state = slot.state();
        (state != State::Free).then(|| WorkerView {
            number: index + 1,
            pid: slot.pid.load(Relaxed),
            requests: slot.requests(),
            age_ms: since(&slot.born_ms),
            busy_ms: match slot.request_start_ms.load(Relaxed) {
                0 => 0,
                _ => since(&slot.request_start_ms),
            },
            sending: slot.sending(),
        })
    };
    board.iter().enumerate().filter_map(view).collect()
}

/// Maps a zeroed table of [`CAPACITY`] slots shared with every future child.
pub fn create() -> std::io::Result<Scoreboard> {
    let bytes = CAPACITY * std::mem::size_of::<Slot>();
    let ptr = map_zeroed(bytes, MapFlags::MAP_SHARED)?;
    // SAFETY: the mapping is `bytes` long, page-aligned (so aligned for `Slot`), and
    // zero-filled by the kernel; all-zero bytes are a valid `Slot` (atomics of 0, state
    // Free). It is never unmapped, so the `'static` lifetime holds, and it is only ever
    // accessed through atomics, so sharing it with other processes is sound.
    Ok(unsafe { std::slice::from_raw_parts(ptr.as_ptr().cast::<Slot>(), CAPACITY) })
}

impl Slot {
    /// Master, before fork: claims the slot for a worker of `generation` and gives it a
    /// first heartbeat so boot time counts against `--timeout` too.
    pub fn reset(&self, generation: u32, now_ms: u64) {
        self.pid.store(0, Relaxed);
        self.generation.store(generation, Relaxed);
        self.requests_base
            .store(self.requests.load(Relaxed), Relaxed);
        self.request_start_ms.store(0, Relaxed);
        self.line_len.store(0, Relaxed);
        self.replacement_wanted.store(0, Relaxed);
        self.unready.store(0, Relaxed);
        self.retiring.store(0, Relaxed);
        self.overdue.store(0, Relaxed);
        self.full.store(0, Relaxed);
        self.waiting.store(0, Relaxed);
        self.waiting_seen.store(0, Relaxed);
        self.sending.store(0, Relaxed);
        self.heartbeat_ms.store(now_ms, Relaxed);
        self.born_ms.store(now_ms, Relaxed);
        self.claims.iter().for_each(|claim| claim.store(0, Relaxed));
        self.state.store(State::Booting as u32, Relaxed);
    }

    /// Master, after reaping: gives the slot back.
    pub fn free(&self) {
        self.state.store(State::Free as u32, Relaxed);
        self.pid.store(0, Relaxed);
    }

    /// Worker: records its pid once it runs.
    pub fn set_pid(&self, pid: u32) {
        self.pid.store(pid, Relaxed);
    }

    /// Worker: "I am alive" at `now_ms`.
    pub fn tick(&self, now_ms: u64) {
        self.heartbeat_ms.store(now_ms, Relaxed);
    }

    /// Worker: changes state and ticks.
    pub fn set_state(&self, state: State, now_ms: u64) {
        self.state.store(state as u32, Relaxed);
        self.tick(now_ms);
    }

    /// Worker: a request starts; keeps the first bytes of its request line, given as the
    /// parts it is joined from (so the caller need not assemble it first).
    pub fn begin_request(&self, parts: &[&[u8]], now_ms: u64) {
        let mut line = [0u8; LINE_WORDS * 8];
        let mut len = 0;
        for part in parts {
            let n = part.len().min(line.len() - len);
            line[len..len + n].copy_from_slice(&part[..n]);
            len += n;
        }
        // Whole words only, up to the last one used: fixed-size copies, no byte loop.
        for (word, bytes) in self
            .line
            .iter()
            .zip(line.chunks_exact(8))
            .take(len.div_ceil(8))
        {
            let bytes: [u8; 8] = bytes.try_into().unwrap_or_default();
            word.store(u64::from_ne_bytes(bytes), Relaxed);
        }
        self.line_len.store(len as u32, Relaxed);
        self.request_start_ms.store(now_ms, Relaxed);
        self.set_activity(State::Busy, now_ms);
    }

    /// Worker: the request is answered.
    pub fn end_request(&self, now_ms: u64) {
        self.requests.fetch_add(1, Relaxed);
        self.idle_again(now_ms);
    }

    /// Worker: back from the application with nothing to count: a read of a response's
    /// stream, which [`Slot::begin_request`] marked busy with the request it answers.
    pub fn idle_again(&self, now_ms: u64) {
        self.request_start_ms.store(0, Relaxed);
        self.set_activity(State::Idle, now_ms);
    }

    /// Busy or idle, but a stopping worker stays `Stopping` through its last requests:
    /// the master, the metrics and its siblings sharing the accept queue in a stop count
    /// it as on its way out. (Only the worker writes its slot's state, so reading first
    /// is no race.)
    fn set_activity(&self, state: State, now_ms: u64) {
        match self.state() {
            State::Stopping => self.tick(now_ms),
            _ => self.set_state(state, now_ms),
        }
    }

    /// Worker: a request was answered without reaching the application (a 400, 408,
    /// 413...): counted among the requests answered, with no change of state.
    pub fn count_refusal(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// Worker: a request was left unanswered, its client gone before the application was
    /// called.
    pub fn abandon_request(&self) {
        self.abandoned.fetch_add(1, Relaxed);
    }

    /// Worker: a request waited past `--queue-timeout` and is answered 503.
    pub fn shed_request(&self) {
        self.shed.fetch_add(1, Relaxed);
    }

    /// Worker, in its SIGABRT action: a request is answered, 500 (the one it was
    /// running) or 503 (one waiting). One atomic add, so async-signal-safe.
    pub fn count_aborted(&self) {
        self.aborted.fetch_add(1, Relaxed);
    }

    /// Worker, stopping: it will take `n` more connections from listener `listener`'s
    /// accept queue.
    pub fn set_claim(&self, listener: usize, n: u32) {
        if let Some(claim) = self.claims.get(listener) {
            claim.store(n, Relaxed);
        }
    }

    /// What the living workers other than `own` have claimed of listener `listener`'s
    /// accept queue and not yet taken.
    pub fn claimed_by_others(board: Scoreboard, own: &Slot, listener: usize) -> u32 {
        let others = board
            .iter()
            .filter(|slot| !std::ptr::eq(*slot, own) && slot.state() != State::Free);
        others
            .filter_map(|slot| slot.claims.get(listener))
            .map(|claim| claim.load(Relaxed))
            .sum()
    }

    /// Worker: asks the master for a successor; it keeps serving until told to stop.
    pub fn want_replacement(&self) {
        self.replacement_wanted.store(1, Relaxed);
    }

    /// Whether the worker asked for a successor.
    pub fn replacement_wanted(&self) -> bool {
        self.replacement_wanted.load(Relaxed) != 0
    }

    /// Master: the whole server is going away (not this worker alone): readiness probes
    /// should fail from now on, and the worker drains the accept queue when it stops.
    pub fn set_unready(&self) {
        self.unready.store(1, Relaxed);
    }

    /// Master: this worker alone is to stop; it counts as stopping from now on
    /// ([`Slot::state`]).
    pub fn set_retiring(&self) {
        self.retiring.store(1, Relaxed);
    }

    /// Master: this worker is past its graceful time and about to be sent SIGABRT.
    pub fn set_overdue(&self) {
        self.overdue.store(1, Relaxed);
    }

    /// Whether the master ends this worker for being past its graceful time (read in
    /// the worker's SIGABRT action: one atomic load).
    pub fn overdue(&self) -> bool {
        self.overdue.load(Relaxed) != 0
    }

    /// Whether the master marked this worker not ready.
    pub fn unready(&self) -> bool {
        self.unready.load(Relaxed) != 0
    }

    /// The worker's last heartbeat.
    pub fn heartbeat_ms(&self) -> u64 {
        self.heartbeat_ms.load(Relaxed)
    }

    /// Worker: how many requests wait behind the one it is about to run, on its own
    /// connections (the readiness events it has yet to handle this turn).
    pub fn set_waiting(&self, n: usize) {
        let n = n.min(u32::MAX as usize) as u32;
        self.waiting.store(n, Relaxed);
        if n > 0 {
            self.waiting_seen.fetch_max(n, Relaxed);
        }
    }

    /// Worker, at each sweep: how many of its connections have an answer still going
    /// out.
    pub fn set_sending(&self, n: usize) {
        self.sending.store(n.min(u32::MAX as usize) as u32, Relaxed);
    }

    /// How many answers the worker was still sending at its last sweep: downloads that
    /// retiring it would cut.
    pub fn sending(&self) -> u32 {
        self.sending.load(Relaxed)
    }

    /// Whether a living worker other than `own` is idle: one that could serve a client
    /// now waiting behind `own`, were it to connect again.
    pub fn another_is_idle(board: Scoreboard, own: &Slot) -> bool {
        board
            .iter()
            .any(|slot| !std::ptr::eq(slot, own) && slot.state() == State::Idle)
    }

    /// Worker: whether it takes no new connection for now (see [`state`](Self::state)).
    pub fn set_full(&self, full: bool) {
        self.full.store(u32::from(full), Relaxed);
    }

    /// The worker's state.
    pub fn state(&self) -> State {
        match self.state.load(Relaxed) {
            1 => State::Booting,
            // Retired, though still in the request it was in when the signal came (it
            // marks itself stopping only after): not idle, not busy with the pool's work.
            2 | 3 if self.retiring.load(Relaxed) != 0 => State::Stopping,
            // A worker that cannot take a connection is no idle worker: not to the
            // autoscaler, which adds one while connections wait and none is idle, nor
            // to the metrics. Nor is one between two requests of a batch, with more of
            // its own waiting behind the one it just answered: a scrape read it idle,
            // beside 15 requests waiting, and no worker busy.
            2 if self.full.load(Relaxed) != 0 || self.waiting.load(Relaxed) != 0 => State::Busy,
            2 => State::Idle,
            3 => State::Busy,
            4 => State::Stopping,
            _ => State::Free,
        }
    }

    /// Requests the current worker has answered.
    pub fn requests(&self) -> u64 {
        let all = self.requests.load(Relaxed);
        all.saturating_sub(self.requests_base.load(Relaxed))
    }

    /// A description of what the worker is doing, for the timeout log line.
    pub fn activity(&self, now_ms: u64) -> String {
        let start = self.request_start_ms.load(Relaxed);
        let handling = || {
            let line = self.request_line();
            format!(
                "handling \"{line}\" for {} ms",
                now_ms.saturating_sub(start)
            )
        };
        match self.state() {
            // A full worker, or one with requests of its own waiting, reads as busy
            // between requests.
            State::Busy if start != 0 => handling(),
            State::Busy => match self.waiting.load(Relaxed) {
                0 => "idle, full".to_string(),
                n => format!("between requests, {n} waiting"),
            },
            State::Stopping if start != 0 => format!("stopping, {}", handling()),
            State::Booting => "booting".to_string(),
            State::Idle => "idle".to_string(),
            State::Stopping => "stopping".to_string(),
            State::Free => "gone".to_string(),
        }
    }

    fn request_line(&self) -> String {
        let len = (self.line_len.load(Relaxed) as usize).min(LINE_WORDS * 8);
        let bytes: Vec<u8> = self
            .line
            .iter()
            .flat_map(|w| w.load(Relaxed).to_ne_bytes())
            .collect();
        String::from_utf8_lossy(&bytes[..len])
            .escape_debug()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_whole_cache_lines() {
        assert_eq!(std::mem::size_of::<Slot>() % 64, 0);
    }

    #[test]
    fn request_line_round_trips_and_truncates() {
        let board = create().unwrap();
        let slot = &board[3];
        slot.reset(1, 10);
        assert_eq!(slot.state(), State::Booting);
        slot.begin_request(&[b"GET", b" ", b"/work?ms=400", b" ", b"HTTP/1.1"], 20);
        assert_eq!(
            slot.activity(120),
            "handling \"GET /work?ms=400 HTTP/1.1\" for 100 ms"
        );
        slot.begin_request(&[&[b'a'; 90], &[b'b'; 110]], 20);
        assert_eq!(slot.request_line().len(), LINE_WORDS * 8);
        slot.end_request(30);
        assert_eq!(
            (slot.state(), slot.requests(), slot.heartbeat_ms()),
            (State::Idle, 1, 30)
        );
        // Between two requests of a batch, with more waiting behind: not idle.
        slot.set_waiting(2);
        assert_eq!(
            (slot.state(), slot.activity(40)),
            (State::Busy, "between requests, 2 waiting".to_string())
        );
        slot.set_waiting(0);
        assert_eq!(slot.state(), State::Idle);
    }

    /// The master's look takes the most seen waiting since the last one, not what is
    /// waiting at that instant: a batch's last request runs with 0 published.
    #[test]
    fn waiting_seen_holds_the_most_until_taken() {
        let board = create().unwrap();
        board[0].reset(1, 0);
        board[1].reset(1, 0);
        board[0].set_waiting(2);
        board[0].set_waiting(1);
        board[0].set_waiting(0);
        board[1].set_waiting(1);
        assert_eq!(summarize(board).waiting, 1, "what waits now");
        assert_eq!(take_waiting_seen(board), 3, "the most each saw");
        assert_eq!(take_waiting_seen(board), 0, "taken");
        board[1].set_waiting(0);
        assert_eq!(take_waiting_seen(board), 0);
    }

    #[test]
    fn request_counts_survive_the_workers_that_made_them() {
        let board = create().unwrap();
        let serve = |slot: &Slot, n: u64| (0..n).for_each(|_| slot.end_request(1));
        board[0].reset(1, 0);
        serve(&board[0], 3);
        board[1].reset(1, 0);
        serve(&board[1], 2);
        board[0].abandon_request();
        board[1].shed_request();
        board[1].count_aborted();
        board[1].begin_request(&[b"GET / HTTP/1.1"], 1);
        let before = summarize(board);
        assert_eq!((before.idle, before.busy, before.requests), (1, 1, 5));
        assert_eq!((before.abandoned, before.shed, before.aborted), (1, 1, 1));
        // The worker in slot 0 dies and a new one takes the slot: its own count starts
        // over, the table's total does not.
        board[0].free();
        board[0].reset(2, 5);
        serve(&board[0], 1);
        assert_eq!(board[0].requests(), 1);
        board[1].free();
        let after = summarize(board);
        assert_eq!((after.requests, after.abandoned, after.shed), (6, 1, 1));
        assert_eq!(after.aborted, 1);
    }

    #[test]
    fn workers_lists_held_slots_with_their_own_counts() {
        let board = create().unwrap();
        board[0].reset(1, 1_000);
        board[0].set_pid(41);
        board[0].end_request(1_100);
        board[2].reset(1, 2_000);
        board[2].set_pid(43);
        board[2].begin_request(&[b"GET /work HTTP/1.1"], 2_500);
        board[2].set_sending(2);
        let view = |number, pid, requests, age_ms, busy_ms, sending| WorkerView {
            number,
            pid,
            requests,
            age_ms,
            busy_ms,
            sending,
        };
        assert_eq!(
            workers(board, 3_000),
            [view(1, 41, 1, 2_000, 0, 0), view(3, 43, 0, 1_000, 500, 2)]
        );
        // A stopping worker stays stopping through its last request, which still shows.
        board[2].set_state(State::Stopping, 2_600);
        board[2].end_request(2_700);
        board[2].begin_request(&[b"GET /last HTTP/1.1"], 2_800);
        assert_eq!(board[2].state(), State::Stopping);
        assert_eq!(workers(board, 3_000)[1], view(3, 43, 1, 1_000, 200, 2));
        assert_eq!(
            board[2].activity(3_000),
            "stopping, handling \"GET /last HTTP/1.1\" for 200 ms"
        );
        board[2].end_request(2_900);
        assert_eq!(board[2].state(), State::Stopping);
        // Claims on an accept queue: what the others still have to take.
        board[0].set_claim(0, 2);
        board[2].set_claim(0, 3);
        board[2].set_claim(1, 1);
        assert_eq!(Slot::claimed_by_others(board, &board[0], 0), 3);
        assert_eq!(Slot::claimed_by_others(board, &board[2], 0), 2);
        assert_eq!(Slot::claimed_by_others(board, &board[0], 1), 1);
        board[2].free();
        assert_eq!(Slot::claimed_by_others(board, &board[0], 0), 0, "gone");
        // A successor in the slot starts young, with its own counts at zero.
        board[0].set_sending(1);
        board[0].free();
        board[0].reset(2, 2_900);
        assert_eq!(workers(board, 3_000)[0], view(1, 0, 0, 100, 0, 0));
    }
}
