//! Going back from a HUP whose new workers can never boot.
//!
//! A configuration that loads can still give workers that die during boot: an `--env`
//! the application refuses, an application that panics on the new settings or cannot
//! reach what they point it at. (What the master can check before any worker sees it, a
//! `--static` directory the workers' `--user` cannot open among them, fails the reload
//! instead, and nothing changes.) The roll then never moves (an old worker
//! is retired only once a new one is ready), so the old generation serves on; but each
//! old worker that dies (a crash, `--max-requests`, the OOM killer) used to be replaced
//! by one of the new generation, which died too, until none served and no log line said
//! why the service was gone. gunicorn halts the whole master when a worker cannot boot
//! (exit code 3, `HaltServer`); nginx checks a new configuration before any worker sees
//! it and keeps the old one when it fails to apply (anchors §1.2, HUP). Here the master
//! keeps what a HUP replaced ([`Rollback`]) until the new generation has a worker ready,
//! and goes back to it, old workers and all, once its boots keep failing ([`verdict`]).

use crate::app::static_files::StaticFiles;
use crate::config::Config;

use super::autoscale::Autoscaler;
use super::memory_limit::MemoryLimit;

/// Boots in a row of the new generation that must fail, none of its workers ever ready,
/// before its reload is abandoned. Not 1: one boot can die of something the
/// configuration has no part in (the OOM killer at a boot's peak, a dependency
/// restarting at that instant). Three is a configuration that does not boot: with one
/// or two workers, at least one of the three was a retry after a backoff pause
/// ([`super::pool::backoff`]: 100 ms, then 200 ms); with more, three workers started
/// with it failed together. Not more: the backoff doubles with every failure (the 10th
/// comes some 50 s after the first), and until the abandon each old worker that dies is
/// replaced by one more that fails. A count in a row, with no time window, holds under
/// the backoff's growing waits: only a ready worker of the generation, a HUP or the
/// abandon resets it.
pub const ABANDON_AFTER: u32 = 3;

/// What a HUP replaced, kept until the generation it started has a worker ready: the
/// configuration the older generation serves with, as `Master::reload` found it.
pub struct Rollback {
    pub config: Config,
    /// The configuration as loaded, which the next HUP compares with.
    pub loaded: Config,
    pub static_files: Option<StaticFiles>,
    pub autoscaler: Option<Autoscaler>,
    pub memory_limit: Option<MemoryLimit>,
    /// The worker count, as TTIN/TTOU or the autoscaler had left it.
    pub target: usize,
    /// The count the last HUP left (its configuration's, or `target` kept): the one an
    /// abandon undoes. Another one by then was set after the HUP, and stays.
    pub hup_target: usize,
    /// The generation that serves with it, current again after the abandon.
    pub generation: u32,
    /// Whether that generation had said it was ready (the log's `Ready:`, READY=1).
    pub announced: bool,
    /// WINCH had stopped its workers (the HUP of an upgrade's rollback): none are left,
    /// but they served with it, and going back starts them again as they were.
    pub stopped: bool,
}

/// What one more boot failure of a HUP's generation, none of whose workers was ever
/// ready, leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Too few failures yet, or it has a worker ready after all: retry with backoff.
    Retry,
    /// Back to the configuration an older generation still serves with.
    GoBack,
    /// No older worker is left serving: nothing to go back to, so retry the new
    /// configuration with backoff, as a crash loop at start is retried.
    NothingToGoBackTo,
}

/// The verdict after `failures` boots in a row of the HUP's generation died, with
/// `new_ready` of its workers serving and `old_kept` of older ones kept (serving or still
/// booting), or none because WINCH had `stopped` them, which can start again.
pub fn verdict(failures: u32, new_ready: usize, old_kept: usize, stopped: bool) -> Verdict {
    match (
        failures >= ABANDON_AFTER && new_ready == 0,
        old_kept > 0 || stopped,
    ) {
        (false, _) => Verdict::Retry,
        (true, false) => Verdict::NothingToGoBackTo,
        (true, true) => Verdict::GoBack,
    }
}

#[cfg(test)]
mod tests {
    use super::{ABANDON_AFTER, Verdict, verdict};

    #[test]
    fn a_reload_is_abandoned_only_while_an_older_generation_serves() {
        // (failures, new ready, old kept, stopped by WINCH) -> verdict
        let cases = [
            ((1, 0, 2, false), Verdict::Retry),
            ((ABANDON_AFTER - 1, 0, 2, false), Verdict::Retry),
            ((ABANDON_AFTER, 0, 2, false), Verdict::GoBack),
            ((ABANDON_AFTER, 0, 1, false), Verdict::GoBack),
            ((ABANDON_AFTER + 5, 0, 1, false), Verdict::GoBack),
            // One of the new workers serves: the configuration can boot.
            ((ABANDON_AFTER, 1, 1, false), Verdict::Retry),
            // Every old worker is gone: nothing serves with the old configuration.
            ((ABANDON_AFTER, 0, 0, false), Verdict::NothingToGoBackTo),
            ((ABANDON_AFTER - 1, 0, 0, false), Verdict::Retry),
            // WINCH stopped them (an upgrade's rollback): they start again as they were.
            ((ABANDON_AFTER, 0, 0, true), Verdict::GoBack),
            ((ABANDON_AFTER - 1, 0, 0, true), Verdict::Retry),
        ];
        for ((failures, new_ready, old_kept, stopped), want) in cases {
            let got = verdict(failures, new_ready, old_kept, stopped);
            assert_eq!(
                got, want,
                "{failures} failures, {new_ready} new ready, {old_kept} old, stopped {stopped}"
            );
        }
    }
}
