//! `--max-workers`: the pool grows while connections wait and no worker is free, and
//! shrinks back to `--workers` once workers sit idle. A pure function of what the master
//! sees, table-tested like the pool's plan.
//!
//! The signal is the kernel's own: the listeners' accept queues (`TCP_INFO`, or
//! sock_diag for a Unix socket: `sys::sockopt::accept_queue`), which say
//! how many connections wait for a worker, together with the scoreboard, which says
//! whether any worker is idle. Queued connections with an idle worker are about to be
//! taken; queued connections with every worker busy are demand the pool cannot meet.
//! Requests waiting behind a busy worker on its kept-alive connections count as queued
//! too (each worker says in its slot the most it saw between two looks): the accept
//! queue never sees them, and a
//! worker added for them gets their clients, which are answered with
//! `Connection: close` when another worker is idle (`worker::conn`'s `MOVE_AFTER`).
//! This is uWSGI's `cheaper-algo backlog` (anchors §3, item 8); gunicorn only reports
//! the number, and its users script TTIN/TTOU around it.
//!
//! It never grows past the memory the cgroup allows (`memory_limit`), nor past the CPUs
//! (`cpu_use`: workers that keep every CPU busy are the limit, and one more only shares
//! them): the master says whether one more worker fits, and is asked only when a step up
//! is due. A pool held back is reported once per spell of crowding.
//!
//! Hysteresis keeps the pool from flapping: it grows by one worker per second of
//! sustained crowding, and shrinks by one per `--scale-down-after` of sustained quiet:
//! two workers idle and nothing waiting, so that with one fewer a worker would still
//! have been idle at every look. (One idle worker was enough once: three workers under
//! a load of 1.6 workers' worth found one idle at most looks, shrank to two, queued, and
//! grew back, every few seconds.) The clocks stop while a worker boots, so each new
//! worker serves for that second before the next is considered. Where the kernel cannot
//! count every listener's queue (a Unix socket without `unix_diag`), every worker busy
//! counts as crowded.

/// How long connections must wait with no worker idle before one more worker starts.
pub const UP_AFTER_MS: u64 = 1000;

/// The bounds and the memory of recent observations.
#[derive(Debug)]
pub struct Autoscaler {
    min: usize,
    max: usize,
    down_after_ms: u64,
    /// Since when connections have been waiting with no worker idle.
    crowded_since: Option<u64>,
    /// Since when some worker has been idle with nothing waiting.
    quiet_since: Option<u64>,
    /// A step up was refused (memory, CPUs) in this spell of crowding, and reported.
    held: bool,
    /// Since when the clocks have been stopped (see [`pause`](Self::pause)).
    paused_since: Option<u64>,
}

/// One look at the pool.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    /// The worker count aimed for now.
    pub target: usize,
    /// Workers waiting for a connection.
    pub idle: usize,
    /// Connections in the listeners' accept queues and requests waiting behind a busy
    /// worker on its kept-alive connections; `None` when the queues could not be read.
    pub queued: Option<u64>,
    pub now_ms: u64,
}

/// A change of the worker count, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Connections waited this long with every worker busy.
    Up { waited_ms: u64 },
    /// Two workers sat idle, with nothing waiting, this long.
    Down { quiet_ms: u64 },
    /// A step up was due after this long, but one more worker would not fit (in memory,
    /// or on CPUs the workers keep busy).
    Held { waited_ms: u64 },
}

impl Autoscaler {
    /// Between `min` and `max` workers, shrinking after `down_after_ms` of quiet.
    pub fn new(min: usize, max: usize, down_after_ms: u64) -> Autoscaler {
        Autoscaler {
            min,
            max,
            down_after_ms,
            crowded_since: None,
            quiet_since: None,
            held: false,
            paused_since: None,
        }
    }

    /// Forgets what it saw: a new generation is rolling in, the workers were stopped
    /// (WINCH) or the server is stopping, and what came before says nothing about what
    /// comes after.
    pub fn interrupt(&mut self) {
        self.crowded_since = None;
        self.quiet_since = None;
        self.paused_since = None;
    }

    /// Stops the clocks from `now_ms` until the next [`step`](Self::step): a worker is
    /// booting (the last step's, or a recycled worker's successor) or missing, so the
    /// counts say little about demand. Time paused does not count toward a step, so a
    /// new worker's boot does not hasten the next one, and recycling does not reset
    /// what was seen before it.
    pub fn pause(&mut self, now_ms: u64) {
        self.paused_since.get_or_insert(now_ms);
    }

    /// Restarts the clocks, moving them on by the time they stood still.
    fn resume(&mut self, now_ms: u64) {
        let Some(paused) = self.paused_since.take() else {
            return;
        };
        let still = now_ms.saturating_sub(paused);
        for since in [&mut self.crowded_since, &mut self.quiet_since] {
            *since = since.map(|t| t.saturating_add(still).min(now_ms));
        }
    }

    /// The step to take after this look, if any: one worker at a time. A count moved
    /// outside the bounds by TTIN/TTOU is not pulled back at once, only no further.
    /// `fits` says whether one more worker fits (memory, CPUs), or `None` while it cannot
    /// tell yet (the CPUs are judged over a whole second of a settled pool): the step
    /// then waits for a later look. It is asked only for a step up. A hold is said once
    /// until the pool grows or goes quiet: a replacement's boot, which leaves a worker
    /// idle for a moment, is no new spell of crowding.
    pub fn step(&mut self, seen: Observation, fits: impl FnOnce() -> Option<bool>) -> Option<Step> {
        let now = seen.now_ms;
        self.resume(now);
        let waiting = seen.queued.map_or(seen.idle == 0, |queued| queued > 0);
        let crowded = waiting && seen.idle == 0;
        let quiet = seen.idle >= 2 && !waiting;
        self.crowded_since = crowded.then(|| self.crowded_since.unwrap_or(now));
        self.quiet_since = quiet.then(|| self.quiet_since.unwrap_or(now));
        let crowded_ms = self
            .crowded_since
            .map_or(0, |since| now.saturating_sub(since));
        let quiet_ms = self
            .quiet_since
            .map_or(0, |since| now.saturating_sub(since));
        self.held &= !quiet;
        if crowded && crowded_ms >= UP_AFTER_MS && seen.target < self.max {
            if !fits()? {
                let first = !std::mem::replace(&mut self.held, true);
                return first.then_some(Step::Held {
                    waited_ms: crowded_ms,
                });
            }
            self.crowded_since = Some(now);
            self.held = false;
            return Some(Step::Up {
                waited_ms: crowded_ms,
            });
        }
        if quiet && quiet_ms >= self.down_after_ms && seen.target > self.min {
            self.quiet_since = Some(now);
            return Some(Step::Down { quiet_ms });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One look: (time, target, idle, queued).
    type Look = (u64, usize, usize, Option<u64>);

    /// Runs `looks` through a fresh 2..4 scaler that shrinks after 5 s, with room for
    /// more workers, and returns each step.
    fn run(looks: &[Look]) -> Vec<Option<Step>> {
        let roomy: Vec<_> = looks.iter().map(|&l| (l, true)).collect();
        run_with_room(&roomy)
    }

    /// As [`run`], each look saying whether one more worker fits in memory.
    fn run_with_room(looks: &[(Look, bool)]) -> Vec<Option<Step>> {
        let mut scaler = Autoscaler::new(2, 4, 5000);
        let look = |(now_ms, target, idle, queued)| Observation {
            target,
            idle,
            queued,
            now_ms,
        };
        let steps = looks
            .iter()
            .map(|&(l, room)| scaler.step(look(l), || Some(room)));
        steps.collect()
    }

    const UP: fn(u64) -> Option<Step> = |waited_ms| Some(Step::Up { waited_ms });
    const DOWN: fn(u64) -> Option<Step> = |quiet_ms| Some(Step::Down { quiet_ms });
    const HELD: fn(u64) -> Option<Step> = |waited_ms| Some(Step::Held { waited_ms });

    #[test]
    fn time_spent_booting_counts_toward_no_step() {
        let mut scaler = Autoscaler::new(2, 4, 5000);
        let look = |now_ms, target, idle, queued| Observation {
            target,
            idle,
            queued: Some(queued),
            now_ms,
        };
        assert_eq!(scaler.step(look(0, 2, 0, 5), || Some(true)), None);
        assert_eq!(scaler.step(look(1000, 2, 0, 5), || Some(true)), UP(1000));
        // The new worker boots for 2.5 s: paused, whatever the looks in between.
        scaler.pause(1100);
        scaler.pause(2000);
        assert_eq!(scaler.step(look(3600, 3, 0, 4), || Some(true)), None); // 100 ms counted
        assert_eq!(scaler.step(look(4400, 3, 0, 4), || Some(true)), None); // 900 ms
        assert_eq!(scaler.step(look(4500, 3, 0, 4), || Some(true)), UP(1000));
        // Quiet time too: 5 s of it, with a 3 s pause in the middle, is 2 s.
        assert_eq!(scaler.step(look(5000, 4, 2, 0), || Some(true)), None);
        scaler.pause(6000);
        assert_eq!(scaler.step(look(9000, 4, 2, 0), || Some(true)), None);
        assert_eq!(
            scaler.step(look(13_000, 4, 2, 0), || Some(true)),
            DOWN(5000)
        );
    }

    /// A hold is said once until the pool goes quiet (a replacement booting leaves a
    /// worker idle a moment: no new spell), and a step the CPUs cannot judge yet waits.
    #[test]
    fn a_hold_is_said_once_and_an_unjudged_step_waits() {
        let mut scaler = Autoscaler::new(1, 4, 5000);
        let look = |now_ms, idle, queued| Observation {
            target: 2,
            idle,
            queued: Some(queued),
            now_ms,
        };
        let full = || Some(false);
        assert_eq!(scaler.step(look(0, 0, 5), full), None);
        assert_eq!(scaler.step(look(1000, 0, 5), full), HELD(1000));
        assert_eq!(scaler.step(look(1500, 1, 0), full), None); // a replacement's boot
        assert_eq!(scaler.step(look(1600, 0, 5), full), None);
        assert_eq!(scaler.step(look(2600, 0, 5), full), None); // not said again
        assert_eq!(scaler.step(look(3000, 2, 0), full), None); // quiet
        assert_eq!(scaler.step(look(3100, 0, 5), full), None);
        assert_eq!(scaler.step(look(4100, 0, 5), full), HELD(1000)); // a new spell
        let mut scaler = Autoscaler::new(1, 4, 5000);
        assert_eq!(scaler.step(look(0, 0, 5), || Some(true)), None);
        assert_eq!(scaler.step(look(1000, 0, 5), || None), None); // not judged yet
        assert_eq!(scaler.step(look(1100, 0, 5), || Some(true)), UP(1100));
    }

    #[test]
    fn memory_holds_the_pool_back_and_says_so_once_per_spell() {
        let steps = run_with_room(&[
            ((0, 2, 0, Some(5)), false),
            ((1000, 2, 0, Some(5)), false), // due, but no room: said once
            ((2000, 2, 0, Some(5)), false), // still crowded, still no room: quiet
            ((3000, 2, 0, Some(5)), true),  // room again: the step, at last
            ((3500, 3, 1, Some(0)), false), // the crowding ends
            ((4000, 3, 0, Some(5)), false),
            ((5000, 3, 0, Some(5)), false), // a new spell: said again
        ]);
        assert_eq!(
            steps,
            [None, HELD(1000), None, UP(3000), None, None, HELD(1000)]
        );
    }

    #[test]
    fn grows_after_a_second_of_crowding_one_worker_at_a_time() {
        let steps = run(&[
            (0, 2, 0, Some(5)),    // crowded from now
            (500, 2, 0, Some(5)),  // not yet a second
            (1000, 2, 0, Some(5)), // a second: one more
            (1500, 3, 0, Some(4)), // the new one had half a second
            (2000, 3, 0, Some(3)), // a second since the last step
            (3000, 4, 0, Some(9)), // at the ceiling
            (4000, 4, 0, Some(9)),
        ]);
        assert_eq!(steps, [None, None, UP(1000), None, UP(1000), None, None]);
    }

    #[test]
    fn an_idle_worker_or_an_empty_queue_is_not_crowding() {
        let steps = run(&[
            (0, 2, 0, Some(5)),
            (900, 2, 1, Some(5)), // a worker came free: the clock starts again
            (1000, 2, 0, Some(5)),
            (1900, 2, 0, Some(0)), // busy, but nobody waits
            (2000, 2, 0, Some(5)),
            (2999, 2, 0, Some(5)),
            (3000, 2, 0, Some(5)),
        ]);
        assert_eq!(steps, [None, None, None, None, None, None, UP(1000)]);
    }

    #[test]
    fn shrinks_after_sustained_quiet_never_below_the_floor() {
        let steps = run(&[
            (0, 4, 2, Some(0)),
            (4999, 4, 2, Some(0)),
            (5000, 4, 3, Some(0)), // 5 s with two workers idle: one fewer
            (6000, 3, 2, Some(1)), // someone waits: quiet is over
            (7000, 3, 2, Some(0)),
            (12_000, 3, 2, Some(0)), // 5 s quiet again
            (20_000, 2, 2, Some(0)), // at the floor
        ]);
        assert_eq!(
            steps,
            [None, None, DOWN(5000), None, None, DOWN(5000), None]
        );
    }

    #[test]
    fn one_idle_worker_is_no_spare_one() {
        // Three workers under 1.6 workers' worth of load: one idle at every look, so
        // with one fewer none would have been. No step down, however long.
        let steps = run(&[
            (0, 3, 1, Some(0)),
            (5000, 3, 1, Some(0)),
            (10_000, 3, 2, Some(0)), // two idle: the quiet spell starts here
            (12_000, 3, 1, Some(0)), // and ends
            (20_000, 3, 2, Some(0)),
        ]);
        assert_eq!(steps, [None, None, None, None, None]);
    }

    #[test]
    fn without_a_readable_queue_all_busy_is_crowding() {
        let steps = run(&[
            (0, 2, 0, None),
            (1000, 2, 0, None),
            (2000, 3, 2, None),
            (7000, 3, 2, None),
        ]);
        assert_eq!(steps, [None, UP(1000), None, DOWN(5000)]);
    }

    #[test]
    fn a_count_moved_by_ttin_past_the_bounds_only_moves_back_toward_them() {
        let steps = run(&[
            (0, 6, 0, Some(9)),    // above the ceiling: no growth
            (1000, 6, 0, Some(9)), // ...however crowded
            (2000, 6, 2, Some(0)),
            (7000, 6, 2, Some(0)), // quiet: back down, one step at a time
        ]);
        assert_eq!(steps, [None, None, None, DOWN(5000)]);
    }
}
