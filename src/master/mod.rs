//! The master ("arbiter"): binds, forks and supervises; never runs the application (it
//! answers only its own `--metrics-bind` port).
//!
//! Its loop reads as the list of steps gunicorn's `arbiter.py` and unicorn's
//! `http_server.rb` made familiar:
//!
//! 1. sleep in `poll` until a signal arrives or the next deadline (answering metrics
//!    scrapes meanwhile, with `--metrics-bind`: [`scrapes`]);
//! 2. act on each signal (the pure map in [`action`]);
//! 3. reap every exited child (`waitpid(-1, WNOHANG)` until none is left; unknown pids
//!    are orphans re-parented to us as PID 1, reaped quietly);
//! 4. murder workers that stopped heart-beating, and those past their graceful deadline;
//! 5. manage workers: fork the missing ones, retire the surplus (the pure plan in
//!    [`pool`]).
//!
//! The master is single-threaded for its whole life (DESIGN invariant 1) because it forks
//! on every respawn, TTIN and HUP.

mod action;
mod autoscale;
mod cpu_use;
mod listeners;
mod memory_limit;
mod oom;
mod pidfile;
mod pool;
mod reexec;
mod rollback;
mod scrapes;
mod systemd;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use self::action::{Action, Phase, action_for};
use self::autoscale::{Autoscaler, Observation, Step};
use self::cpu_use::{CpuUse, Cpus};
use self::listeners::Listener;
use self::memory_limit::{MemoryLimit, Room};
use self::oom::OomKills;
use self::pidfile::Pidfile;
use self::pool::{Pool, View, WorkerInfo, backoff, plan};
use self::rollback::{Rollback, Verdict, verdict};
use self::scrapes::Scrapes;
use self::systemd::Notifier;
use crate::access_log::AccessLog;
use crate::app::static_files::StaticFiles;
use crate::config::{self, BindAddr, Config};
use crate::error::Error;
use crate::sys::clock::monotonic_ms;
use crate::sys::fds::{holds_socket, socket_inode};
use crate::sys::fork;
use crate::sys::lifeline::Lifeline;
use crate::sys::pages::mib;
use crate::sys::scoreboard::{self, Scoreboard, State};
use crate::sys::signals::MasterSignals;
use crate::worker::WorkerApp;
use crate::worker::{self, WorkerSpec};
use crate::{App, AppFactory, Handler};

const SIGNALS: Token = Token(0);
/// A worker's byte on the wake-up pipe (`sys::lifeline`). The metrics port's tokens start
/// at 1 and count up, so this one is far from them.
const WAKE: Token = Token(usize::MAX);
/// How long a worker sent SIGABRT for silence gets before SIGKILL.
const ABORT_GRACE_MS: u64 = 1000;
/// Loop period while something is in motion (booting, retiring, stopping).
const BUSY_TICK: Duration = Duration::from_millis(100);
/// Loop period in the steady state; hung workers are found within this.
const IDLE_TICK: Duration = Duration::from_secs(1);

pub(crate) use listeners::check_named as check_named_sockets;
pub(crate) use pidfile::replaceable as pidfile_replaceable;

/// Binds, forks the workers and supervises them until told to stop. `loaded` is the
/// configuration as the arguments, environment and file gave it, before a program changed
/// it in code ([`Master::loaded`]).
pub fn run(config: Config, loaded: Config, app: App) -> Result<(), Error> {
    let mut master = Master::start(config, loaded, app)?;
    master.supervise()?;
    master.finish();
    Ok(())
}

struct Master<'a> {
    config: Config,
    /// The configuration as the arguments, environment and file gave it at start or at
    /// the last HUP, before a program embedding br-serve changed it in code
    /// ([`crate::serve`]): what the next HUP compares with to tell what the operator
    /// changed, so that listeners set in code draw no "changed" warning every time.
    loaded: Config,
    /// The application, or how each worker builds it.
    app: AppSource<'a>,
    pid: Pid,
    /// Closed when the workers are told to stop (`stop_workers`).
    listeners: Vec<Listener>,
    /// The Unix sockets' files, removed when the master stops for good.
    socket_files: SocketFiles,
    /// The listeners are systemd's (socket activation), standing in for `--bind`; a new
    /// master started by USR2 is told so.
    activated: bool,
    scoreboard: Scoreboard,
    /// Master-only objects a worker must drop right after fork, hence the Options.
    lifeline: Option<Lifeline>,
    poll: Option<Poll>,
    signals: Option<MasterSignals>,
    /// `--metrics-bind`: the master's own metrics port.
    scrapes: Option<Scrapes>,
    pool: Pool,
    /// Current generation; HUP starts the next one.
    generation: u32,
    /// The newest generation started: a HUP's is one more, never the number of one that
    /// was abandoned ([`Master::abandon_reload`]), whose workers may still be reaped.
    newest_generation: u32,
    /// What the last HUP replaced, while its generation has no worker ready yet.
    rollback: Option<Rollback>,
    /// How many workers to run (the configuration, then TTIN/TTOU and the autoscaler).
    target: usize,
    /// `--max-workers`: moves `target` with the accept queue.
    autoscaler: Option<Autoscaler>,
    /// The cgroup's memory limit, which the autoscaler stays under (found only for it).
    memory_limit: Option<MemoryLimit>,
    /// Whether the workers keep the CPUs busy, when the autoscaler would add one.
    cpu_use: CpuUse,
    /// WINCH: no workers until HUP brings them back.
    workers_stopped: bool,
    phase: Phase,
    /// When a stop gives up waiting and kills what is left.
    stop_deadline_ms: u64,
    /// During `--drain-delay`: when workers are finally told to drain.
    drain_at_ms: Option<u64>,
    systemd: Notifier,
    /// READY=1 was sent for the current generation (after start, or after HUP).
    announced: bool,
    /// Workers in a row that died before finishing boot, and when the next may start.
    boot_failures: u32,
    next_spawn_ms: u64,
    /// Every scoreboard slot is taken (and the log said so).
    slots_full: bool,
    /// Why the last HUP failed, kept in systemd's `STATUS=` until a reload succeeds; with
    /// the generation it is retried as, when there was nothing to go back to, whose
    /// workers serving at last are that reload's success.
    reload_error: Option<(String, Option<u32>)>,
    /// Forks that failed in a row.
    fork_failures: u32,
    pidfile: Option<Pidfile>,
    /// The access log, opened here so a bad path stops the start; workers inherit it.
    access_log: Option<AccessLog>,
    /// `--static DIR`, opened at start and at each HUP; each worker starts from a copy.
    static_files: Option<StaticFiles>,
    /// The new master started by USR2, while it runs.
    new_master: Option<Pid>,
    /// In a master started by USR2: the old master, and its pidfile (`PIDFILE.oldbin`)
    /// if it has one, until it is seen to be gone.
    old_master: Option<(Pid, Option<std::path::PathBuf>)>,
    /// Where USR2 starts it: the directory this master was started in, by the name
    /// the shell gave it ([`reexec::start_dir`]).
    start_dir: Option<std::path::PathBuf>,
    /// The kernel's OOM kill count, to say whether a SIGKILL came from the OOM killer.
    oom_kills: OomKills,
}

impl<'a> Master<'a> {
    fn start(config: Config, loaded: Config, app: App<'a>) -> Result<Master<'a>, Error> {
        log::info!("Starting {}", crate::program_and_server());
        log::info!("Signals: {}", config.signal_profile.describe());
        single_threaded()?;
        config::what_workers_open(&config)?;
        config::logs_for_workers(&config);
        config::static_served_as_root(&config);
        fit_open_files(&config);
        // Listeners first, before this process opens descriptors of its own, so that an
        // `fd://N` naming a descriptor that was never inherited finds nothing there.
        let pid = nix::unistd::getpid();
        if let Some(path) = &config.pidfile {
            Pidfile::check_free(path, pid.as_raw() as u32)?;
        }
        let (listeners, activated) = acquire_listeners(&config)?;
        let files = SocketFiles::of(&listeners, &config.binds, activated);
        let started = Self::with_listeners(
            config,
            loaded,
            app,
            pid,
            listeners,
            activated,
            files.clone(),
        );
        if started.is_err() {
            // A start that failed leaves no socket file behind, for clients to be refused
            // at as if a server were down there.
            files.remove(reexec::pending_parent());
        }
        started
    }

    /// The rest of the start, once the listeners are there: everything a master has, and
    /// the pidfile.
    fn with_listeners(
        config: Config,
        loaded: Config,
        app: App<'a>,
        pid: Pid,
        listeners: Vec<Listener>,
        activated: bool,
        socket_files: SocketFiles,
    ) -> Result<Master<'a>, Error> {
        let scoreboard =
            scoreboard::create().map_err(|e| Error::io("mapping the scoreboard", e))?;
        // Adopted, like the listeners, before the poll takes a descriptor of its own.
        let scrapes = Scrapes::acquire(config.metrics_bind, scoreboard, &listeners)?;
        let poll = Poll::new().map_err(|e| Error::io("creating the master's poll", e))?;
        let scrapes = scrapes.map(|s| watched(s, &poll)).transpose()?;
        let mut signals =
            MasterSignals::new().map_err(|e| Error::io("installing signal handlers", e))?;
        poll.registry()
            .register(&mut signals.source, SIGNALS, Interest::READABLE)
            .map_err(|e| Error::io("watching signals", e))?;
        let lifeline = Lifeline::new().map_err(|e| Error::io("creating the lifeline pipe", e))?;
        poll.registry()
            .register(
                &mut mio::unix::SourceFd(&lifeline.wake_end().as_raw_fd()),
                WAKE,
                Interest::READABLE,
            )
            .map_err(|e| Error::io("watching the wake-up pipe", e))?;
        let access_log = open_access_log(&config)?;
        let static_files = open_static_files(&config)?;
        socket_files.give_to_workers(&config);
        let memory_limit = memory_limit_for(&config);
        let pidfile = match &config.pidfile {
            Some(path) => Some(Pidfile::create(
                path,
                pid.as_raw() as u32,
                config.file_mode(),
            )?),
            None => None,
        };
        announce(&listeners, scrapes.as_ref(), pid);
        let app = match app {
            App::PerWorker(factory) => AppSource::Factory(factory),
            App::Preloaded(handler) => AppSource::Preloaded(Some(handler), config.env.clone()),
        };
        Ok(Master {
            target: config.workers,
            autoscaler: autoscaler_for(&config),
            memory_limit,
            cpu_use: CpuUse::default(),
            scoreboard,
            lifeline: Some(lifeline),
            loaded,
            config,
            app,
            pid,
            socket_files,
            listeners,
            activated,
            poll: Some(poll),
            signals: Some(signals),
            scrapes,
            pool: Pool::default(),
            generation: 1,
            newest_generation: 1,
            rollback: None,
            workers_stopped: false,
            phase: Phase::Running,
            stop_deadline_ms: 0,
            drain_at_ms: None,
            systemd: Notifier::from_env(reexec::pending_parent().is_some()),
            announced: false,
            boot_failures: 0,
            next_spawn_ms: 0,
            slots_full: false,
            reload_error: None,
            fork_failures: 0,
            pidfile,
            access_log,
            static_files,
            new_master: None,
            old_master: reexec::parent_and_pidfile().map(|(pid, f)| (Pid::from_raw(pid), f)),
            start_dir: reexec::start_dir(),
            oom_kills: OomKills::default(),
        })
    }

    /// The arbiter loop; returns once stopping is complete.
    fn supervise(&mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(16);
        self.manage_workers();
        // After the first fork, so that reading the counter does not delay the first
        // response; no worker can have been killed yet.
        self.oom_kills = OomKills::watch();
        loop {
            let signals = self.sleep(&mut events)?;
            self.serve_scrapes(&events);
            // Signals before reaping: when a process manager sends TERM to the whole
            // group (systemd's default KillMode, `kill -TERM -PGID`), the workers that
            // already drained are then part of the stop, not workers that quit on
            // their own.
            for signal in signals {
                self.handle(signal);
            }
            self.reap_workers();
            self.take_back_metrics_port();
            self.notice_old_master_gone();
            self.scale();
            self.autoscale();
            self.end_drain_delay();
            if !self.accepting() && self.pool.is_empty() {
                return Ok(());
            }
            self.murder_workers();
            self.manage_workers();
            self.report();
        }
    }

    /// Waits for a signal or the next tick; returns the signals that arrived.
    fn sleep(&mut self, events: &mut Events) -> Result<Vec<i32>, Error> {
        let timeout = self.tick();
        let (Some(poll), Some(signals)) = (self.poll.as_mut(), self.signals.as_mut()) else {
            return Ok(Vec::new());
        };
        match poll.poll(events, Some(timeout)) {
            // A signal during epoll_wait interrupts it; the signal is in the pipe.
            Err(err) if err.kind() != std::io::ErrorKind::Interrupted => {
                return Err(Error::io("waiting for events", err));
            }
            _ => {}
        }
        if events.iter().any(|e| e.token() == WAKE) {
            self.lifeline.iter().for_each(Lifeline::drain_wakes);
        }
        Ok(signals.source.pending().collect())
    }

    /// Step 1, beside the signals: answer the metrics port's clients, and close those
    /// past their deadline.
    fn serve_scrapes(&mut self, events: &Events) {
        let unhealthy = self.scrapes.as_ref().and_then(|_| self.unhealthy());
        let (Some(scrapes), Some(poll)) = (self.scrapes.as_mut(), self.poll.as_ref()) else {
            return;
        };
        scrapes.set_unhealthy(unhealthy);
        for event in events
            .iter()
            .filter(|e| ![SIGNALS, WAKE].contains(&e.token()))
        {
            scrapes.on_event(poll.registry(), event);
        }
        scrapes.tend(poll.registry());
    }

    /// Answers on the metrics port, or leaves it to the new master of an upgrade.
    fn watch_metrics_port(&mut self, on: bool) {
        let (Some(scrapes), Some(poll)) = (self.scrapes.as_mut(), self.poll.as_ref()) else {
            return;
        };
        if let Err(err) = scrapes.watch(poll.registry(), on) {
            log::error!("cannot change watching the metrics port: {err}");
        }
    }

    /// Short ticks while anything is in motion, long ones in the steady state.
    fn tick(&self) -> Duration {
        let tick = if self.settled() { IDLE_TICK } else { BUSY_TICK };
        let limits = [
            self.systemd.max_sleep(),
            self.scrapes.as_ref().and_then(Scrapes::max_sleep),
            self.until_a_timeout(),
        ];
        limits.into_iter().flatten().fold(tick, Duration::min)
    }

    /// How long until the first worker not yet aborted has been silent past `--timeout`,
    /// so that step 4 catches it then, not up to a tick later: a `--timeout 2` fired
    /// after 2-3 s, as gunicorn's does.
    fn until_a_timeout(&self) -> Option<Duration> {
        let current = self.config.timeout.map(|t| t.as_millis() as u64);
        let watched = self
            .pool
            .iter()
            .filter(|w| !w.killed && w.aborted_ms.is_none());
        let silences = watched.filter_map(|w| {
            let timeout_ms = w.timeout_ms(current)?;
            Some((self.scoreboard[w.slot].heartbeat_ms(), timeout_ms))
        });
        first_silence_past(silences, monotonic_ms())
    }

    /// Nothing in motion: running, the pool complete, every worker of the current
    /// generation, serving, and not on its way out.
    fn settled(&self) -> bool {
        self.phase == Phase::Running
            && self.pool.len() == self.wanted()
            && self.pool.iter().all(|w| {
                w.generation == self.generation
                    && w.retiring_ms.is_none()
                    && w.aborted_ms.is_none()
                    && !self.scoreboard[w.slot].replacement_wanted()
                    && matches!(self.scoreboard[w.slot].state(), State::Idle | State::Busy)
            })
    }

    fn wanted(&self) -> usize {
        if self.workers_stopped { 0 } else { self.target }
    }

    /// Step 2: reap every child that exited.
    fn reap_workers(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => match status.pid() {
                    Some(pid) => self.on_exit(pid, status),
                    None => return,
                },
            }
        }
    }

    fn on_exit(&mut self, pid: Pid, status: WaitStatus) {
        let Some(info) = self.pool.remove(pid) else {
            return self.on_other_exit(pid, status);
        };
        let slot = &self.scoreboard[info.slot];
        let died_booting = slot.state() == State::Booting;
        let served = match slot.requests() {
            1 => "1 request".to_string(),
            n => format!("{n} requests"),
        };
        let overdue = slot.overdue();
        slot.free();
        let expected = info.retiring_ms.is_some() || self.phase != Phase::Running;
        let n = info.number();
        let mut by_another = false;
        match status {
            WaitStatus::Exited(_, 0) if expected => {
                log::info!("Worker {n} (pid: {pid}) exited after {served}")
            }
            // A clean exit nobody here asked for: it was signalled directly (a process
            // manager that TERMs the whole group, as dumb-init does) or lost its master.
            // Not an error; it is replaced like any other.
            WaitStatus::Exited(_, 0) => {
                log::warn!("Worker {n} (pid: {pid}) exited on its own after {served}")
            }
            WaitStatus::Exited(_, code) => {
                log::error!("Worker {n} (pid: {pid}) exited with code {code}")
            }
            WaitStatus::Signaled(_, Signal::SIGKILL, _) if !info.killed => {
                let cause = self.oom_kills.sigkill_cause();
                by_another = cause.by_another;
                log::error!("Worker {n} (pid: {pid}) {}", cause.said)
            }
            // Ended for being past its graceful time: the line before said so.
            WaitStatus::Signaled(_, Signal::SIGABRT, _) if overdue => {
                log::info!("Worker {n} (pid: {pid}) ended {}", ended(status))
            }
            WaitStatus::Signaled(_, sig, _) if !expected || sig != Signal::SIGKILL => {
                log::error!(
                    "Worker {n} (pid: {pid}) was killed by signal {}",
                    sig.as_str()
                )
            }
            _ => log::info!("Worker {n} (pid: {pid}) ended {}", ended(status)),
        }
        // Not one we killed ourselves (retired or stopped while booting), nor one of a
        // generation abandoned (`abandon_reload`) that died before it was stopped, nor
        // one another process SIGKILLed (not the OOM killer: an operator's `kill -9`,
        // which abandoned a good reload): it says nothing of the configuration in use,
        // whose spawns it would hold back.
        let abandoned = info.generation > self.generation;
        if died_booting && self.accepting() && !info.killed && !abandoned && !by_another {
            self.on_boot_failure(n, info.generation);
        }
    }

    /// A child that is not a worker: the new master of an upgrade, stopped for a rollback
    /// or failed, or, as PID 1, an orphan re-parented to us (reaped quietly: not ours to
    /// report). Without its new master this one serves again: workers stopped by WINCH
    /// come back, as nginx brings them back, or nothing would answer.
    fn on_other_exit(&mut self, pid: Pid, status: WaitStatus) {
        if self.new_master != Some(pid) {
            log::debug!("reaped child {pid}, not a worker");
            return;
        }
        let workers = match std::mem::take(&mut self.workers_stopped) {
            true => "; starting its workers again",
            false => "",
        };
        self.announced = false;
        match status {
            WaitStatus::Exited(_, 0) => {
                log::info!("The new master (pid: {pid}) exited; this master serves again{workers}")
            }
            _ => log::error!(
                "The new master (pid: {pid}) ended {}; the upgrade failed, this master keeps serving{workers}",
                ended(status)
            ),
        }
        self.new_master = None;
        if let Some(pidfile) = self.pidfile.as_mut() {
            pidfile.move_back_from_oldbin();
        }
        self.watch_metrics_port(true);
    }

    /// During an upgrade, answers the metrics port again if the new master let it go (its
    /// `--metrics-bind` names another address): nobody else will, and a scraper or
    /// health check still pointed at it waited in a queue no master served until this
    /// one exited.
    fn take_back_metrics_port(&mut self) {
        let (Some(new), Some(scrapes)) = (self.new_master, self.scrapes.as_ref()) else {
            return;
        };
        if scrapes.watched() {
            return;
        }
        let Ok(stat) = nix::sys::stat::fstat(scrapes.fd()) else {
            return;
        };
        if reexec::holds_socket(new.as_raw(), stat.st_ino) {
            return;
        }
        log::info!(
            "The new master (pid: {new}) does not use this master's metrics port ({}); this \
             master answers it until it exits",
            scrapes.url()
        );
        self.watch_metrics_port(true);
    }

    /// In a master started by USR2, once the old master has exited (we are re-parented):
    /// removes the `PIDFILE.oldbin` it left naming itself, which only a SIGKILL leaves
    /// (an exit of any other kind removes it), wherever it is: the old master said where
    /// ([`reexec::PARENT_PIDFILE_ENV`]), so this holds when the new configuration names
    /// another pidfile. Left there, it said an upgrade was still pending, to a deploy
    /// script or monitor that looks for it, until the next USR2 wrote over it. nginx
    /// leaves it behind in that case.
    fn notice_old_master_gone(&mut self) {
        let Some((old, _)) = &self.old_master else {
            return;
        };
        if nix::unistd::getppid() == *old {
            return;
        }
        let Some((old, Some(oldbin))) = self.old_master.take() else {
            return;
        };
        if pidfile::remove_if_names(&oldbin, old) {
            log::warn!(
                "The old master (pid: {old}) exited without removing {}; removed it",
                oldbin.display()
            );
        }
    }

    /// Workers that die before their loop runs are restarted with exponential backoff,
    /// so a broken deploy cannot turn into a fork storm; those of a HUP's generation
    /// that keep dying while an older one serves end the reload instead ([`rollback`]).
    fn on_boot_failure(&mut self, number: usize, generation: u32) {
        self.boot_failures += 1;
        let failures = self.boot_failures;
        // Not once a stop has begun: the workers are on their way out, old and new.
        let rolling = self.phase == Phase::Running && generation == self.generation;
        let verdict = match self.rollback.as_ref().filter(|_| rolling) {
            Some(rollback) => verdict(failures, self.serving(), self.old_kept(), rollback.stopped),
            None => Verdict::Retry,
        };
        if verdict == Verdict::GoBack {
            log::error!("Worker {number} died during boot ({failures} in a row)");
            return self.abandon_reload();
        }
        let delay = self.hold_spawns(failures);
        log::error!(
            "Worker {number} died during boot ({failures} in a row); next start in {} ms",
            delay.as_millis()
        );
        if verdict == Verdict::NothingToGoBackTo {
            self.cannot_go_back(failures);
        }
    }

    /// A HUP's generation cannot boot, and no worker of an older one is left to go back
    /// to: it is retried with backoff, as a crash loop at start is. Said once (no older
    /// worker comes back, so the verdict cannot change), and reported to systemd as a
    /// failed reload, whose `RELOADING=1` would otherwise hold `systemctl reload` until
    /// its timeout.
    fn cannot_go_back(&mut self, failures: u32) {
        self.rollback = None;
        let why = format!(
            "generation {}'s workers died during boot {failures} times in a row",
            self.generation
        );
        log::error!(
            "Reload cannot be abandoned: {why}, and no worker of an older generation is left \
             to go back to; retrying generation {} with backoff (fix the configuration and \
             HUP to try again at once)",
            self.generation
        );
        let why = format!("{why}, with nothing older to go back to");
        self.report_reload_failed(why, Some(self.generation));
    }

    /// A HUP's generation cannot boot while an older one serves: back to the
    /// configuration that one serves with, so that the old workers are current again
    /// and each one that dies is replaced by one like it, rather than by a worker that
    /// dies too until none is left. Its workers still booting are stopped at once; the
    /// reload is reported failed as [`reload_failed`](Self::reload_failed) reports one,
    /// which ends systemd's `RELOADING=1`. The next HUP tries again.
    fn abandon_reload(&mut self) {
        let Some(rollback) = self.rollback.take() else {
            return;
        };
        let why = format!(
            "generation {}'s workers died during boot {} times in a row",
            self.generation, self.boot_failures
        );
        let back = match rollback.stopped {
            false => "keeps serving with its configuration, which replaces its workers that die",
            true => "starts again with its configuration (its workers were stopped by WINCH)",
        };
        log::error!(
            "Reload abandoned: {why}; generation {} {back} (HUP to try again)",
            rollback.generation
        );
        self.restore(rollback);
        let abandoned = self.pool.iter();
        let abandoned =
            abandoned.filter(|w| w.generation > self.generation && w.retiring_ms.is_none());
        let pids: Vec<Pid> = abandoned.map(|w| w.pid).collect();
        pids.into_iter().for_each(|pid| self.retire(pid));
        self.retry_now();
        self.report_reload_failed(format!("{why}, so it was abandoned"), None);
    }

    /// Puts back what a HUP replaced (see [`Master::keep_for_rollback`]).
    fn restore(&mut self, rollback: Rollback) {
        let (from, to) = (self.config.log_level, rollback.config.log_level);
        if from != to {
            crate::logging::change_level(from, to, "--log-level back to");
        }
        let before = std::mem::replace(&mut self.config, rollback.config);
        self.refit(&before);
        self.loaded = rollback.loaded;
        self.static_files = rollback.static_files;
        self.autoscaler = rollback.autoscaler;
        // What it saw before the HUP is stale.
        self.autoscaler.iter_mut().for_each(Autoscaler::interrupt);
        self.memory_limit = rollback.memory_limit;
        // A count set since the HUP (TTIN, TTOU, the autoscaler) is the operator's last
        // word, as it would have survived the HUP: only the HUP's own count is undone.
        if self.target == rollback.hup_target {
            if self.target != rollback.target {
                log::info!("Worker count back to {}", rollback.target);
            }
            self.target = rollback.target;
        } else {
            log::info!(
                "Keeping the count of {} workers set since the HUP",
                self.target
            );
        }
        self.generation = rollback.generation;
        self.announced = rollback.announced;
    }

    /// Step 3: act on one signal.
    fn handle(&mut self, signal: i32) {
        let name = Signal::try_from(signal).map_or("?", crate::sys::signals::name);
        match action_for(signal, self.phase, self.config.signal_profile) {
            Action::GracefulStop => self.stop(true, name),
            Action::QuickStop => self.stop(false, name),
            Action::Reload => self.reload(),
            Action::StopWorkers if crate::sys::signals::resizes_send_winch() => log::warn!(
                "Handling signal: WINCH: ignored, since the master runs in the foreground \
                 of a terminal, whose every resize sends it (as gunicorn and nginx ignore it \
                 unless daemonized); start it without a terminal (setsid, a service \
                 manager) to stop the workers with WINCH"
            ),
            Action::StopWorkers => {
                log::info!("Handling signal: WINCH: stopping all workers gracefully");
                self.workers_stopped = true;
            }
            Action::ReopenLogs => self.reopen_logs(),
            Action::Reexec => self.reexec(),
            // A stop has begun: say that the signal changes nothing, as gunicorn logs
            // every signal it handles.
            Action::Ignore if self.phase != Phase::Running => {
                log::info!("Handling signal: {name}: ignored, the server is stopping")
            }
            // TTIN/TTOU are counted by `scale`; CHLD is handled by the reaping
            // every turn does anyway.
            Action::ScaleUp | Action::ScaleDown | Action::Reap | Action::Ignore => {}
        }
    }

    /// USR1: reopen our log files, and have every worker reopen its own.
    fn reopen_logs(&mut self) {
        log::info!("Handling signal: USR1: reopening log files");
        crate::logging::reopen();
        if let Some(log) = self.access_log.as_mut() {
            log.reopen();
        }
        for info in self.pool.iter() {
            signal_worker(info.pid, Signal::SIGUSR1);
        }
    }

    /// TTIN and TTOU, applied by count: the self-pipe's one wake-up for several signals
    /// loses none of those the kernel delivered (it merges those sent while one is
    /// pending; see `MasterSignals`).
    fn scale(&mut self) {
        let Some((ttin, ttou)) = self.signals.as_ref().map(MasterSignals::take_scaling) else {
            return;
        };
        if self.phase != Phase::Running || ttin + ttou == 0 {
            return;
        }
        let before = self.target;
        self.target = scaled(self.target, ttin, ttou);
        let bound = match self.target {
            1 if before + ttin < ttou + 1 => " (never fewer than 1)",
            scoreboard::CAPACITY if before + ttin > ttou + scoreboard::CAPACITY => {
                " (the most workers there are slots for)"
            }
            _ => "",
        };
        log::info!(
            "Handling signal: TTIN x{ttin}, TTOU x{ttou}: workers {before} -> {}{bound}{}",
            self.target,
            self.when_scaling_applies()
        );
        // The operator's count is where the autoscaler starts from: the quiet it saw
        // before a TTIN would otherwise undo it on the next turn.
        self.autoscaler.iter_mut().for_each(Autoscaler::interrupt);
    }

    /// While WINCH keeps the workers stopped, a new count starts nothing: it applies when
    /// they start again, with the HUP that brings them back (unless its configuration
    /// changes the count), or as the new master of an upgrade exits. The log said
    /// "workers 2 -> 3" and nothing started.
    fn when_scaling_applies(&self) -> &'static str {
        match (self.workers_stopped, self.new_master.is_some()) {
            (false, _) => "",
            (true, false) => {
                " when HUP starts them again, unless its configuration sets another count \
                 (WINCH stopped them)"
            }
            (true, true) => {
                " when HUP, or the new master's exit, starts them again, unless a HUP's \
                 configuration sets another count (WINCH stopped them)"
            }
        }
    }

    /// `--max-workers`: one more worker while connections wait and none is idle (if the
    /// workers leave the CPUs room for it, and it fits in the cgroup's memory), one fewer
    /// after workers sit idle.
    fn autoscale(&mut self) {
        if self.autoscaler.is_none() {
            return;
        }
        let now_ms = monotonic_ms();
        let idle = match self.autoscaling_view() {
            PoolView::Judge { idle } => idle,
            PoolView::Wait => {
                self.cpu_use.forget();
                return self.autoscaler.iter_mut().for_each(|a| a.pause(now_ms));
            }
            PoolView::StartOver => {
                self.cpu_use.forget();
                return self.autoscaler.iter_mut().for_each(|a| a.interrupt());
            }
        };
        match idle {
            0 => self
                .cpu_use
                .look(self.pool.iter().map(|w| w.pid.as_raw()), now_ms),
            _ => self.cpu_use.forget(),
        }
        let seen = Observation {
            target: self.target,
            idle,
            queued: self.demand(idle),
            now_ms,
        };
        let (mut room, mut cpus) = (None, Cpus::NotYet);
        let fits = || {
            cpus = self.cpu_use.judged();
            match cpus {
                Cpus::NotYet => return None,
                Cpus::Full { .. } => return Some(false),
                Cpus::Room => {}
            }
            let pids = self.pool.iter().map(|w| w.pid);
            room = self.memory_limit.as_ref().and_then(|m| m.room(pids));
            Some(room.as_ref().is_none_or(Room::fits))
        };
        let step = self.autoscaler.as_mut().and_then(|a| a.step(seen, fits));
        if let Some(step) = step {
            self.take_step(step, seen.queued, room, cpus);
        }
    }

    /// Connections in the accept queues and requests waiting behind busy workers, for
    /// the autoscaler. While no worker is idle, the most seen waiting since the last look
    /// (a worker's count drops to 0 for the last request of each batch); with one idle,
    /// only what waits now: two requests in one batch a moment ago are no reason to keep
    /// a quiet pool large. Requests waiting behind busy workers count even where the
    /// accept queues cannot be read.
    fn demand(&self, idle: usize) -> Option<u64> {
        let seen = scoreboard::take_waiting_seen(self.scoreboard);
        let now = scoreboard::summarize(self.scoreboard).waiting;
        demand(idle, (seen, now), queued_connections(&self.listeners))
    }

    /// Whether the pool can be judged now, and its idle workers. A generation roll
    /// (HUP), WINCH or a stop starts the autoscaler's clocks over; a worker booting (a
    /// step just taken, a recycled worker's successor) or missing stops them, so that a
    /// boot neither hastens the next step nor, under recycling, resets what was seen.
    /// Workers on their way out do not count.
    fn autoscaling_view(&self) -> PoolView {
        let rolling = self.pool.iter().any(|w| w.generation != self.generation);
        if self.phase != Phase::Running || self.workers_stopped || rolling {
            return PoolView::StartOver;
        }
        let states: Vec<State> = self
            .pool
            .iter()
            .filter(|w| w.retiring_ms.is_none() && w.aborted_ms.is_none())
            .map(|w| self.scoreboard[w.slot].state())
            .collect();
        if states.len() < self.target || states.contains(&State::Booting) {
            return PoolView::Wait;
        }
        let idle = states.iter().filter(|&&s| s == State::Idle).count();
        PoolView::Judge { idle }
    }

    /// Applies and logs an autoscaling step; `room` and `cpus` say why one is held.
    fn take_step(&mut self, step: Step, queued: Option<u64>, room: Option<Room>, cpus: Cpus) {
        let waiting = queued.map_or("connections".into(), |n| n.to_string());
        let before = self.target;
        let why = match (step, room, cpus) {
            (Step::Up { waited_ms }, ..) => {
                self.target += 1;
                format!("{waiting} waiting, no worker idle for {waited_ms} ms")
            }
            (Step::Down { quiet_ms }, ..) => {
                self.target -= 1;
                format!("two workers idle and nothing waiting for {quiet_ms} ms")
            }
            (Step::Held { waited_ms }, _, Cpus::Full { runnable, cpus }) => {
                return log::warn!(
                    "Autoscale: {waiting} waiting, no worker idle for {waited_ms} ms, but the \
                     workers fill the {cpus} CPU(s) (runnable for {runnable:.2} CPUs' worth of \
                     the last second): one more would share them, not add to them; the pool \
                     stays at {before}"
                );
            }
            (Step::Held { waited_ms }, room, _) => {
                let room = room.map_or(String::new(), |r| r.describe());
                return log::warn!(
                    "Autoscale: {waiting} waiting, no worker idle for {waited_ms} ms, but one \
                     more worker would not fit in memory{room}: the pool stays at {before}"
                );
            }
        };
        log::info!("Autoscale: {why}: workers {before} -> {}", self.target);
    }

    /// A graceful or a quick stop (TERM or INT/QUIT, as `--signal-profile` has them; the
    /// signal's `name` is for the log): tell every worker, then wait for them. A graceful
    /// stop with `--drain-delay` first marks every worker not ready and keeps serving for
    /// the delay.
    fn stop(&mut self, graceful: bool, name: &str) {
        // A new master stopped while the old one serves again: a rollback, after which
        // the old master serves (and said so with MAINPID=), so this stop is not the
        // service's, nor is the accept queue this master's to empty.
        let rollback = reexec::parent_serves();
        if rollback {
            self.systemd.hand_over();
        }
        self.systemd.stopping();
        let now = monotonic_ms();
        let delay = match graceful {
            true => self.config.drain_delay.as_millis() as u64,
            false => 0,
        };
        self.stop_deadline_ms = now + delay + self.config.graceful_timeout.as_millis() as u64;
        let profile = self.config.signal_profile;
        if !graceful {
            log::info!("Handling signal: {name}: quick stop{}", self.cut_requests());
            self.phase = Phase::StoppingQuickly;
            self.drain_at_ms = None;
            return self.stop_workers(profile.quick());
        }
        self.phase = Phase::StoppingGracefully;
        if self.new_master.is_none() && !rollback {
            self.mark_unready();
        }
        if delay == 0 {
            log::info!("Handling signal: {name}: graceful stop");
            return self.stop_workers(profile.graceful());
        }
        log::info!(
            "Handling signal: {name}: not ready; still accepting for {delay} ms (--drain-delay), then draining"
        );
        self.drain_at_ms = Some(now + delay);
    }

    /// What a quick stop cuts, for its line: the requests the workers are running, which
    /// end with no answer (the client sees the connection close) and no access-log line,
    /// as the workers exit at once. Nothing else would record them.
    fn cut_requests(&self) -> String {
        let running = |w: &&WorkerInfo| self.scoreboard[w.slot].state() == State::Busy;
        match self.pool.iter().filter(running).count() {
            0 => String::new(),
            1 => "; 1 worker is running a request, cut with no answer".to_string(),
            n => format!("; {n} workers are running requests, cut with no answer"),
        }
    }

    /// Unready tells each worker the whole server is going away, not just that worker:
    /// readiness probes fail, and when it drains it also takes what waits in the accept
    /// queue (a worker retired alone leaves that to the others). Not when the other
    /// master of an upgrade serves on the same sockets: the queue is its to serve, as
    /// after WINCH, and a share taken here could still be in hand when
    /// `--graceful-timeout` kills these workers.
    fn mark_unready(&self) {
        for info in self.pool.iter() {
            self.scoreboard[info.slot].set_unready();
        }
    }

    /// The drain delay is over: now the workers stop accepting and drain.
    fn end_drain_delay(&mut self) {
        if self.drain_at_ms.is_some_and(|at| monotonic_ms() >= at) {
            log::info!("Drain delay over: draining");
            self.drain_at_ms = None;
            self.stop_workers(self.config.signal_profile.graceful());
        }
    }

    /// Sends every worker `signal`, then closes the master's copies of the listening
    /// sockets: no worker will be forked to use them again. Each worker closes its own
    /// once it has taken what waited in the accept queue, and when the last copy is gone
    /// the kernel refuses newcomers at once (as nginx's stop does) rather than queueing
    /// them for nobody until the last process exits and resets them. A new master (USR2)
    /// or systemd (socket activation) holding the same sockets keeps them listening.
    ///
    /// A worker still booting gets SIGKILL instead: it has no connection to finish, and
    /// would notice the stop only once its application is built (a model loading may
    /// take minutes, past `docker stop`'s patience); gunicorn's booting workers exit at
    /// once too.
    fn stop_workers(&mut self, signal: Signal) {
        let pids: Vec<Pid> = self.pool.iter().map(|info| info.pid).collect();
        for pid in pids {
            self.stop_worker(pid, signal);
        }
        self.listeners.clear();
        if let Some(scrapes) = self.scrapes.as_mut() {
            scrapes.forget_listeners();
        }
    }

    /// HUP: re-read the configuration; on success start a new generation, which
    /// `manage_workers` rolls in as the old one is retired, keeping what it replaced
    /// until one of its workers is ready ([`rollback`]). On failure keep everything.
    fn reload(&mut self) {
        log::info!("Handling signal: HUP: reloading");
        self.systemd.reloading();
        let parsed = config::from_argv(self.config.argv.clone());
        let checked = parsed.and_then(|new| config::what_workers_open(&new).map(|()| new));
        let opened = checked.and_then(|new| Ok((open_static_files(&new)?, new)));
        let (static_files, new) = match opened {
            Ok(opened) => opened,
            Err(err) => return self.reload_failed(&err),
        };
        self.keep_for_rollback(static_files);
        // The count set by TTIN/TTOU or the autoscaler survives unless the configuration
        // changed the count or its bounds.
        let bounds = |c: &Config| (c.workers, c.max_workers);
        let bounds_changed = bounds(&new) != bounds(&self.config);
        if bounds_changed {
            self.target = match new.max_workers {
                Some(max) => self.target.clamp(new.workers, max),
                None => new.workers,
            };
        }
        // The count this HUP leaves: an abandon undoes it, not one set after it.
        if let Some(rollback) = self.rollback.as_mut() {
            rollback.hup_target = self.target;
        }
        self.reload_error = None;
        let loaded = std::mem::replace(&mut self.loaded, new.clone());
        let config = keep_what_hup_cannot_change(&self.config, &loaded, new);
        let before = std::mem::replace(&mut self.config, config);
        self.refit(&before);
        self.autoscaler = autoscaler_for(&self.config);
        // --max-workers may have just been turned on, or a limit set on a cgroup that had
        // none: the pool grows only into memory the cgroup has, as when it is given at
        // start.
        self.memory_limit = memory_limit_for(&self.config);
        self.start_generation();
    }

    /// What a start fits to its configuration, fitted again to the one a HUP (or its
    /// abandon) put in place of `before`: the log files go to a new `--user`, who must
    /// open them again at USR1 (they stayed the old user's, and every worker's reopen
    /// failed, its lines going on to the rotated file), the warnings about that user are
    /// given again, and the open-file limit is raised for a larger
    /// `--worker-connections` (the workers ran out of descriptors under load instead). A
    /// preloaded application, which a HUP reuses, keeps what its build read of an `--env`
    /// that changed from the one it was built with, and the log says so, where nothing
    /// did (not when an abandon goes back to that one).
    fn refit(&mut self, before: &Config) {
        let user = |c: &Config| c.credentials.as_ref().map(|c| c.uid);
        let new_user = user(&self.config) != user(before);
        if new_user {
            crate::logging::hand_to(user(&self.config));
            if let Some(log) = self.access_log.as_mut() {
                log.hand_to(user(&self.config));
            }
            config::logs_for_workers(&self.config);
        }
        if new_user || self.config.static_root != before.static_root {
            config::static_served_as_root(&self.config);
        }
        fit_open_files(&self.config);
        let built_with = match &self.app {
            AppSource::Preloaded(_, env) => Some(env),
            AppSource::Factory(_) => None,
        };
        let env = &self.config.env;
        if built_with.is_some_and(|built| built != env) && *env != before.env {
            log::warn!(
                "--env changed: the preloaded application was built once, at start, and a \
                 HUP reuses it; its workers get the new variables, but what its build read \
                 stays (restart, or USR2, to build it again)"
            );
        }
    }

    /// Puts in the `static_files` a HUP opened, and keeps what the HUP is about to
    /// replace for [`abandon_reload`](Self::abandon_reload). Unless a HUP before it still
    /// has its own kept, its generation never ready: the configuration to go back to is
    /// the last one seen serving, not one that never booted.
    fn keep_for_rollback(&mut self, static_files: Option<StaticFiles>) {
        let replaced = std::mem::replace(&mut self.static_files, static_files);
        if self.rollback.is_some() {
            return;
        }
        self.rollback = Some(Rollback {
            config: self.config.clone(),
            loaded: self.loaded.clone(),
            static_files: replaced,
            autoscaler: self.autoscaler.take(),
            memory_limit: self.memory_limit.take(),
            target: self.target,
            hup_target: self.target,
            generation: self.generation,
            announced: self.announced,
            stopped: self.workers_stopped,
        });
    }

    /// A new generation of workers, started now: a reload is the operator's "try
    /// again", so what crash-loop or fork backoff still held back is not waited out.
    fn start_generation(&mut self) {
        self.newest_generation += 1;
        self.generation = self.newest_generation;
        self.workers_stopped = false;
        self.announced = false;
        self.retry_now();
        log::info!(
            "Starting generation {} with {} workers",
            self.generation,
            self.target
        );
    }

    /// Whatever crash-loop or fork backoff held spawns back is not waited out.
    fn retry_now(&mut self) {
        self.next_spawn_ms = 0;
        self.boot_failures = 0;
        self.fork_failures = 0;
    }

    /// The configuration did not load: the workers there keep serving, and missing ones
    /// (a crash loop the operator has just fixed) are started now, as they were. Workers
    /// that WINCH stopped (the HUP of a rollback, after USR2) start again with the
    /// configuration they ran, as nginx's rollback HUP does, rather than leaving none.
    fn reload_failed(&mut self, err: &Error) {
        if self.workers_stopped {
            log::error!("Reload failed: {err}; starting the stopped workers as they were");
            self.start_generation();
        } else {
            log::error!("Reload failed, keeping the current workers: {err}");
            self.retry_now();
        }
        self.report_reload_failed(err.to_string(), None);
    }

    /// A reload failed, for `why`: kept in the status line until one succeeds (`retried`:
    /// the generation retried with backoff, until it serves), and told to systemd, whose
    /// `RELOADING=1` (and `systemctl reload`) waits for the `READY=1`.
    fn report_reload_failed(&mut self, why: String, retried: Option<u32>) {
        self.reload_error = Some((why, retried));
        let status = self.status(self.serving());
        self.systemd.reload_failed(&status);
    }

    /// USR2: start a new master on the same listeners. Refused while an upgrade is
    /// already pending, from either side, and in a master that is PID 1 (a container's
    /// init): the new master would be its child, and the kernel kills every process of
    /// the namespace when PID 1 exits, so the upgrade's last step (TERM the old master)
    /// would take the service down and exit 0. nginx and unicorn share that limit, and
    /// say nothing. An init in front (tini, `docker run --init`) is no way round it: it
    /// exits when its child, the old master, does.
    fn reexec(&mut self) {
        if self.pid.as_raw() == 1 {
            return log::warn!(
                "Handling signal: USR2: refused, this master is PID 1: the new master would \
                 end with it; replace the container instead (an init in front, such as tini, \
                 exits with the old master just the same)"
            );
        }
        if let Some(pid) = self.new_master {
            return log::warn!(
                "Handling signal: USR2: refused, the new master (pid: {pid}) is still running"
            );
        }
        if reexec::parent_pending() {
            return log::warn!(
                "Handling signal: USR2: refused, the old master is still running; TERM it first"
            );
        }
        if let Some(pidfile) = self.pidfile.as_mut() {
            pidfile.move_to_oldbin();
        }
        let oldbin = self.pidfile.as_ref().and_then(Pidfile::absolute_path);
        let handed = reexec::Handed {
            listeners: &self.listeners,
            activated: self.activated,
            metrics: self.scrapes.as_ref().map(Scrapes::fd),
            dir: self.start_dir.as_deref(),
            oldbin: oldbin.as_deref(),
        };
        match reexec::spawn_new_master(&handed, &self.config.argv) {
            Ok(pid) => {
                log::info!("Handling signal: USR2: started a new master (pid: {pid})");
                self.new_master = Some(Pid::from_raw(pid as i32));
                self.systemd.hand_over();
                self.watch_metrics_port(false);
            }
            Err(err) => {
                log::error!("Handling signal: USR2: cannot start a new master: {err}");
                if let Some(pidfile) = self.pidfile.as_mut() {
                    pidfile.move_back_from_oldbin();
                }
            }
        }
    }

    /// Step 4: SIGABRT then SIGKILL for workers silent longer than `--timeout`, and for
    /// retired workers past `--graceful-timeout` and everyone past a stop's end. SIGABRT
    /// first, so that the request a handler is stuck in gets its 500
    /// ([`crate::sys::abort_answer`]); SIGKILL for a worker still there after
    /// [`ABORT_GRACE_MS`].
    fn murder_workers(&mut self) {
        let now = monotonic_ms();
        let graceful_ms = self.config.graceful_timeout.as_millis() as u64;
        let timeout_ms = self.config.timeout.map(|t| t.as_millis() as u64);
        let stop_over = self.phase != Phase::Running && now >= self.stop_deadline_ms;
        for info in self.pool.iter_mut().filter(|w| !w.killed) {
            let slot = &self.scoreboard[info.slot];
            let silent_ms = now.saturating_sub(slot.heartbeat_ms());
            let overdue = info
                .retiring_ms
                .is_some_and(|t| now.saturating_sub(t) > graceful_ms);
            if info.aborted_ms.is_some_and(|t| now - t >= ABORT_GRACE_MS) {
                log::warn!(
                    "Worker {} (pid: {}) still there {ABORT_GRACE_MS} ms after SIGABRT ({}); sending SIGKILL",
                    info.number(),
                    info.pid,
                    slot.activity(now)
                );
                signal_worker(info.pid, Signal::SIGKILL);
                info.killed = true;
            } else if info.aborted_ms.is_none() && (stop_over || overdue) {
                // What it was doing, as the timeout's line says: the request cut short.
                log::warn!(
                    "Worker {} (pid: {}) did not stop in time ({}); sending SIGABRT",
                    info.number(),
                    info.pid,
                    slot.activity(now)
                );
                slot.set_overdue();
                signal_worker(info.pid, Signal::SIGABRT);
                info.aborted_ms = Some(now);
            } else if info.aborted_ms.is_none()
                && info.timeout_ms(timeout_ms).is_some_and(|t| silent_ms > t)
            {
                log::error!(
                    "WORKER TIMEOUT (pid: {}): worker {} silent for {:.1} s while {}{}; sending SIGABRT",
                    info.pid,
                    info.number(),
                    silent_ms as f64 / 1000.0,
                    slot.activity(now),
                    waiting_in(info.pid)
                );
                signal_worker(info.pid, Signal::SIGABRT);
                info.aborted_ms = Some(now);
            }
        }
    }

    /// Step 5: fork missing workers, retire surplus and outgoing ones.
    fn manage_workers(&mut self) {
        if !self.accepting() {
            return;
        }
        let views: Vec<View> = self.pool.iter().map(|w| self.view(w)).collect();
        if views
            .iter()
            .any(|v| v.ready && v.generation == self.generation)
        {
            self.boot_failures = 0;
            // The reload worked: nothing to go back to any more.
            self.rollback = None;
        }
        let plan = plan(self.wanted(), self.generation, &views);
        let retired = !plan.retire.is_empty();
        for pid in plan.retire {
            self.retire(Pid::from_raw(pid));
        }
        for _ in 0..plan.spawn {
            if monotonic_ms() < self.next_spawn_ms {
                break;
            }
            if !self.spawn_worker() {
                if !retired {
                    self.make_room(&views);
                }
                break;
            }
        }
    }

    /// A worker could not be started for want of room (every scoreboard slot taken, or
    /// fork refused: a process limit) while outgoing workers (an older generation, or a
    /// quota reached) wait for their successors: a roll at the limit waited forever, HUP
    /// never applying and no worker ever recycled. So one outgoing worker is retired
    /// first, when none is retiring (`views` are from before this turn's retirements,
    /// which the caller rules out) and no successor is booting: the roll goes on one
    /// worker at a time, one worker short.
    fn make_room(&mut self, views: &[View]) {
        let rolling = |v: &View| v.retiring || (v.generation == self.generation && !v.ready);
        if views.iter().any(rolling) {
            return;
        }
        let outgoing = views
            .iter()
            .filter(|v| v.generation != self.generation || v.quota_reached);
        // The one that interrupts least: sending fewest answers, idle, then the oldest.
        if let Some(v) = outgoing.min_by_key(|v| (v.sending, !v.idle, v.spawned_ms)) {
            log::info!("no room for another worker; retiring an outgoing one first");
            self.retire(Pid::from_raw(v.pid));
        }
    }

    /// Whether workers are meant to accept: while running, and during a stop's
    /// `--drain-delay`, when a load balancer may still send traffic and a worker that
    /// dies must be replaced (and the last one dying must not end the stop early).
    fn accepting(&self) -> bool {
        self.phase == Phase::Running || self.drain_at_ms.is_some()
    }

    fn view(&self, w: &WorkerInfo) -> View {
        let state = self.scoreboard[w.slot].state();
        View {
            pid: w.pid.as_raw(),
            generation: w.generation,
            ready: matches!(state, State::Idle | State::Busy | State::Stopping),
            idle: state == State::Idle,
            sending: self.scoreboard[w.slot].sending(),
            quota_reached: self.scoreboard[w.slot].replacement_wanted(),
            retiring: w.retiring_ms.is_some(),
            spawned_ms: w.spawned_ms,
        }
    }

    /// Stops one worker, and only it (HUP, TTOU, recycling), gracefully: a booting one
    /// at once, as at a stop (a second HUP during a slow boot left three generations
    /// alive, the abandoned one finishing a boot it would never serve from).
    fn retire(&mut self, pid: Pid) {
        if let Some(info) = self.pool.get_mut(pid) {
            log::info!("Retiring worker {} (pid: {pid})", info.number());
            info.retiring_ms = Some(monotonic_ms());
            self.scoreboard[info.slot].set_retiring();
        }
        self.stop_worker(pid, self.config.signal_profile.graceful());
    }

    /// Sends a worker `signal`, or SIGKILL while it boots: it has no connection to
    /// finish, and would notice the signal only once its application is built.
    fn stop_worker(&mut self, pid: Pid, signal: Signal) {
        let Some(info) = self.pool.get_mut(pid) else {
            return;
        };
        let booting = self.scoreboard[info.slot].state() == State::Booting;
        if booting {
            log::info!(
                "Worker {} (pid: {pid}) is still booting: stopping it at once",
                info.number()
            );
            info.killed = true;
        }
        signal_worker(pid, if booting { Signal::SIGKILL } else { signal });
    }

    /// Forks one worker into the lowest free scoreboard slot; false when none is free
    /// (said once until the table has room again after a fork: a roll at the limit takes
    /// the slot each retirement frees, one at a time).
    fn spawn_worker(&mut self) -> bool {
        let Some(slot) = self.pool.free_slot(scoreboard::CAPACITY) else {
            if !std::mem::replace(&mut self.slots_full, true) {
                log::warn!(
                    "all {} scoreboard slots are in use; not starting more workers until one is free",
                    scoreboard::CAPACITY
                );
            }
            return false;
        };
        let now = monotonic_ms();
        self.scoreboard[slot].reset(self.generation, now);
        if self.phase != Phase::Running {
            // A replacement during --drain-delay is as unready as the rest.
            self.scoreboard[slot].set_unready();
        }
        match fork::spawn(|mask| self.become_worker(slot, mask)) {
            Ok(pid) => self.pool.insert(WorkerInfo {
                pid,
                slot,
                generation: self.generation,
                spawned_ms: now,
                retiring_ms: None,
                aborted_ms: None,
                killed: false,
                timeout_ms: self.config.timeout.map(|t| t.as_millis() as u64),
            }),
            Err(err) => {
                self.scoreboard[slot].free();
                self.on_fork_failure(&err);
                return false;
            }
        }
        if std::mem::take(&mut self.fork_failures) > 0 {
            log::info!("fork works again");
        }
        self.slots_full &= self.pool.len() >= scoreboard::CAPACITY;
        true
    }

    /// fork failed (a process limit, no memory): the workers there serve on, and the
    /// next try waits as after a boot failure (100 ms doubling to 30 s), rather than
    /// retrying, and logging, every turn of the loop.
    fn on_fork_failure(&mut self, err: &std::io::Error) {
        self.fork_failures += 1;
        let delay = self.hold_spawns(self.fork_failures);
        log::error!(
            "fork failed: {err} ({} in a row); next try in {} ms",
            self.fork_failures,
            delay.as_millis()
        );
    }

    /// No fork for [`backoff`]`(failures)`, which it returns.
    fn hold_spawns(&mut self, failures: u32) -> Duration {
        let delay = backoff(failures);
        self.next_spawn_ms = monotonic_ms() + delay.as_millis() as u64;
        delay
    }

    /// The child side of a fork: shed what belongs to the master and run a worker.
    /// Master-only objects are dropped, never deregistered: the epoll instance is shared
    /// with the master, and deregistering here would remove the master's registrations.
    fn become_worker(&mut self, slot: usize, mask: nix::sys::signal::SigSet) -> i32 {
        drop(self.signals.take());
        drop(self.poll.take());
        drop(self.scrapes.take());
        let Some(lifeline) = self.lifeline.take() else {
            return worker::EXIT_BOOT_ERROR;
        };
        let ends = lifeline.into_worker_end();
        let listener_urls = self.listeners.iter().map(Listener::url).collect();
        let listeners = std::mem::take(&mut self.listeners)
            .into_iter()
            .map(Listener::into_worker)
            .collect();
        let app = match (&mut self.app, self.static_files.take()) {
            (_, Some(files)) => WorkerApp::Static(Box::new(files)),
            (AppSource::Factory(factory), None) => WorkerApp::Build(*factory),
            // The child's own copy of the master's memory: take it.
            (AppSource::Preloaded(handler, _), None) => match handler.take() {
                Some(handler) => WorkerApp::Ready(handler),
                None => return worker::EXIT_BOOT_ERROR,
            },
        };
        let spec = WorkerSpec {
            number: slot + 1,
            board: self.scoreboard,
            master: self.pid,
            listeners,
            listener_urls,
            lifeline: ends.lifeline,
            wake: ends.wake,
            config: self.config.clone(),
            access_log: self.access_log.take(),
            mask,
        };
        worker::run(spec, app)
    }

    /// Tells systemd how things stand: READY=1 once the current generation is complete
    /// (at start and after each HUP), STATUS= always, and the watchdog.
    fn report(&mut self) {
        self.systemd.watchdog();
        crate::logging::report_dropped();
        if self.phase != Phase::Running {
            return;
        }
        let ready = self.serving();
        let old = self
            .pool
            .iter()
            .filter(|w| w.generation != self.generation)
            .count();
        // A pool that fork cannot complete (a process limit) serves with what it has:
        // READY=1 once every worker it could fork is up, or systemd would wait out its
        // start timeout and stop it.
        let forked = self.pool.len() - old;
        let partial = self.fork_failures > 0 && ready > 0 && ready == forked;
        let complete = ready >= self.wanted() || partial;
        if complete && old == 0 {
            self.retried_reload_serves();
        }
        let status = self.status(ready);
        // Not while WINCH keeps the workers stopped: nothing is serving then, and a HUP
        // during which WINCH came would otherwise end in "Ready: 0 of 0 workers".
        if !self.announced && !self.workers_stopped && complete && old == 0 {
            self.announced = true;
            log::info!("Ready: {status}");
            self.systemd.ready(&status);
        } else {
            self.systemd.status(&status);
        }
    }

    /// The generation of a reload that had nothing to go back to serves at last (what
    /// its boots died of has passed: a database back up): that reload succeeded, and
    /// its failure no longer stands in the status ("Ready: 4 of 4 workers serving,
    /// generation 3; the last reload failed: generation 3's workers died ...").
    fn retried_reload_serves(&mut self) {
        let current = Some(self.generation);
        if self
            .reload_error
            .as_ref()
            .is_some_and(|(_, g)| *g == current)
        {
            log::info!(
                "Generation {} serves: the reload succeeded after all",
                self.generation
            );
            self.reload_error = None;
        }
    }

    /// Workers of the current generation serving.
    fn serving(&self) -> usize {
        self.ready_where(|w| w.generation == self.generation)
    }

    /// Workers of an older generation still serving (a roll under way).
    fn old_serving(&self) -> usize {
        self.ready_where(|w| self.kept_older(w))
    }

    /// Workers of an older generation kept, booting ones too: a HUP that came while the
    /// generation before it was still booting (a slow application, just started) has
    /// that generation to go back to, which serves a moment later.
    fn old_kept(&self) -> usize {
        self.pool.iter().filter(|w| self.kept_older(w)).count()
    }

    /// Of an older generation than the current one, and not retiring.
    fn kept_older(&self, w: &WorkerInfo) -> bool {
        w.generation != self.generation && w.retiring_ms.is_none()
    }

    /// Why the master's `/healthz` fails, if it does: workers die during boot and none,
    /// of any generation, serves (a roll whose new generation fails, the old one serving,
    /// is healthy). gunicorn exits then ("Worker failed to boot"); this master retries
    /// with backoff, and without this would say ok while nothing answers, so a liveness
    /// probe (Docker's HEALTHCHECK, Kubernetes) never saw it. Also while serving, a
    /// listening socket that no longer listens, which only a restart mends: the workers
    /// said so in the log alone.
    fn unhealthy(&self) -> Option<String> {
        let shut = self.listeners.iter().find(|l| !l.listens());
        if let Some(listener) = shut.filter(|_| self.phase == Phase::Running) {
            return Some(format!(
                "{} no longer listens (a process holding it shut it down): restart the server",
                listener.url()
            ));
        }
        // During an upgrade, the old master may be serving while this one's workers fail.
        let none_serving = self.ready_where(|_| true) == 0 && !reexec::parent_serves();
        (self.boot_failures > 0 && none_serving).then(|| {
            format!(
                "no worker is serving: workers die during boot ({} in a row)",
                self.boot_failures
            )
        })
    }

    /// Workers past their boot among those `which` picks.
    fn ready_where(&self, which: impl Fn(&WorkerInfo) -> bool) -> usize {
        let ready = |w: &&WorkerInfo| which(w) && self.view(w).ready;
        self.pool.iter().filter(ready).count()
    }

    /// The pool in a few words, for systemd's `STATUS=` and the ready line; during a
    /// roll, what still serves of the older generation too (the new one's count alone
    /// said "0 of N serving" while N were).
    fn status(&self, ready: usize) -> String {
        let forks = match self.fork_failures {
            0 => String::new(),
            n => format!("; fork fails ({n} in a row), retrying with backoff"),
        };
        let rolling = match self.old_serving() {
            0 => String::new(),
            n => format!("; {n} of an older generation still serving"),
        };
        let reload = match &self.reload_error {
            None => String::new(),
            Some((why, _)) => format!("; the last reload failed: {why}"),
        };
        match (self.workers_stopped, self.boot_failures) {
            (true, _) => "workers stopped (WINCH); HUP starts them again".to_string(),
            (false, 0) => format!(
                "{ready} of {} workers serving, generation {}{rolling}{forks}{reload}",
                self.wanted(),
                self.generation
            ),
            (false, n) => {
                format!(
                    "workers die during boot ({n} in a row); retrying with backoff{rolling}{reload}"
                )
            }
        }
    }

    /// After the last worker is gone: removes the Unix sockets' files (see
    /// [`SocketFiles::remove`]), the other master of an upgrade being the new one, or,
    /// after a rollback when this is the new master, the old one.
    fn finish(&mut self) {
        let other = self
            .new_master
            .map(Pid::as_raw)
            .or_else(reexec::pending_parent);
        self.socket_files.remove(other);
        self.pidfile = None;
        log::info!("Shutting down: Master");
    }
}

/// The files of the Unix sockets a master made for `--bind unix:PATH` (itself, or the
/// master before it, which handed it on with USR2). A socket passed in, by systemd
/// (socket activation) or as `--bind fd://N` by another supervisor, is that
/// supervisor's: it serves on it again at the next start, so br-serve neither gives its
/// file to `--user` nor removes it.
#[derive(Clone)]
struct SocketFiles(Vec<SocketFile>);

#[derive(Clone)]
struct SocketFile {
    path: PathBuf,
    /// The socket's inode (when `fstat` told), to ask whether another master holds it.
    socket: Option<u64>,
    /// The file's device and inode at start: at exit the path may name another
    /// server's socket, made there once ours no longer listened (a drain's end).
    file: Option<(u64, u64)>,
}

impl SocketFile {
    /// Whether the path still names the file this master's socket was bound to.
    fn still_ours(&self) -> bool {
        self.file.is_none() || file_identity(&self.path) == self.file
    }
}

/// A file's device and inode, not following a symbolic link.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl SocketFiles {
    fn of(listeners: &[Listener], binds: &[BindAddr], activated: bool) -> SocketFiles {
        let bound = |path: &Path| {
            binds
                .iter()
                .any(|b| matches!(b, BindAddr::Unix(p) if p == path))
        };
        let ours = |l: &Listener| l.path().filter(|path| !activated && bound(path)).is_some();
        let file = |l: &Listener| {
            let path = l.path()?.to_path_buf();
            let (socket, file) = (socket_inode(l.fd()).ok(), file_identity(&path));
            Some(SocketFile { path, socket, file })
        };
        SocketFiles(
            listeners
                .iter()
                .filter(|l| ours(l))
                .filter_map(file)
                .collect(),
        )
    }

    /// Removes the files, unless the `other` master of an upgrade still holds that
    /// socket. A socket the new master dropped from `--bind`, or one it bound itself and
    /// is rolled back from, has its file removed; when the other master's descriptors
    /// cannot be read, the file is left. So is a file that is no longer ours: a server
    /// started while we drained, finding our socket no longer listened on, replaced it
    /// as a dead server's, and removing its file left it serving where none could reach.
    fn remove(&self, other: Option<i32>) {
        for file in &self.0 {
            let held = |pid| file.socket.and_then(|inode| holds_socket(pid, inode)) != Some(false);
            if !other.is_some_and(held) && file.still_ours() {
                let _ = std::fs::remove_file(&file.path);
            }
        }
    }

    /// With `--user`: gives the files to the workers' user and group, who own what they
    /// serve on (gunicorn does the same). Once, at start: the files are not made again.
    fn give_to_workers(&self, config: &Config) {
        let Some(creds) = &config.credentials else {
            return;
        };
        for SocketFile { path, .. } in &self.0 {
            let given = nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                path,
                Some(creds.uid),
                Some(creds.gid),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
            if let Err(err) = given {
                log::warn!("cannot hand {} to uid {}: {err}", path.display(), creds.uid);
            }
        }
    }
}

/// How long from `now` until the first of these (heartbeat, timeout) pairs has its
/// heartbeat older than its timeout (step 4 acts on "silent longer than", hence the
/// millisecond after it); zero when one already is.
fn first_silence_past(silences: impl Iterator<Item = (u64, u64)>, now: u64) -> Option<Duration> {
    let due = silences
        .map(|(heartbeat, timeout_ms)| heartbeat.saturating_add(timeout_ms + 1))
        .min()?;
    Some(Duration::from_millis(due.saturating_sub(now)))
}

/// Where in the kernel a silent worker waits, said after its activity: an idle worker
/// wakes every second, so one silent past `--timeout` is stuck in a system call, and its
/// `wchan` names it (`anon_pipe_write`: a log whose reader stopped reading). Empty when
/// it is running, or the kernel does not say.
fn waiting_in(pid: Pid) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/wchan")) {
        Ok(wchan) if !wchan.trim().is_empty() && wchan.trim() != "0" => {
            format!(" (waiting in the kernel's {})", wchan.trim())
        }
        _ => String::new(),
    }
}

/// Sends a worker a signal, saying so when that fails. A worker that has just exited
/// (ESRCH) is reaped on the next turn; anything else means the worker goes on as if
/// nothing was sent, which the log must not hide: EPERM is a master without the right
/// to signal workers running as `--user` (CAP_KILL taken away, say by a unit's
/// `CapabilityBoundingSet`), and every stop, reload and timeout would silently fail.
fn signal_worker(pid: Pid, signal: Signal) {
    match kill(pid, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(Errno::EPERM) => log::error!(
            "cannot send {signal} to worker (pid: {pid}): not permitted; a master running as \
             root needs CAP_KILL to signal workers running as --user"
        ),
        Err(err) => log::error!("cannot send {signal} to worker (pid: {pid}): {err}"),
    }
}

/// The configuration HUP loaded, with what only a restart or USR2 can change taken from
/// the `current` one (and a warning for each such setting the loaded configuration
/// changed since `before`, the last one loaded: [`hup_cannot_change`]).
fn keep_what_hup_cannot_change(current: &Config, before: &Config, new: Config) -> Config {
    for warning in hup_cannot_change(before, &new) {
        log::warn!("{warning}");
    }
    if new.log_level != current.log_level {
        crate::logging::change_level(current.log_level, new.log_level, "--log-level changed to");
    }
    Config {
        binds: current.binds.clone(),
        reuse_port: current.reuse_port,
        backlog: current.backlog,
        metrics_bind: current.metrics_bind,
        signal_profile: current.signal_profile,
        umask: current.umask,
        error_log: current.error_log.clone(),
        access_log: current.access_log.clone(),
        access_log_format: current.access_log_format.clone(),
        pidfile: current.pidfile.clone(),
        ..new
    }
}

/// What a reload changed of the settings only a restart or USR2 can change, between the
/// configuration loaded `before` and the `new` one (not the running one, which a program
/// embedding br-serve may have changed in code): the sockets, the signal profile the
/// running workers were started with, the umask the start created files under, and the
/// files opened at start.
fn hup_cannot_change(before: &Config, new: &Config) -> Vec<&'static str> {
    let listening = |c: &Config| (c.binds.clone(), c.reuse_port, c.backlog, c.metrics_bind);
    let files = |c: &Config| {
        let paths = (c.error_log.clone(), c.access_log.clone(), c.pidfile.clone());
        (paths, c.access_log_format.clone())
    };
    let checks = [
        (
            listening(new) != listening(before),
            "--bind, --reuse-port, --backlog or --metrics-bind changed: listeners change \
             only on restart or USR2; keeping them",
        ),
        (
            new.signal_profile != before.signal_profile,
            "--signal-profile changed: the running workers know only the current one, so it \
             changes only on restart or USR2; keeping it",
        ),
        (
            new.umask != before.umask,
            "--umask changed: it shapes the sockets, pidfile and logs made at start, so it \
             changes only on restart or USR2; keeping it",
        ),
        (
            files(new) != files(before),
            "--error-logfile, --access-logfile, --access-logformat, --access-log-json or \
             --pid changed: files are opened at start, so they change only on restart or \
             USR2; keeping them",
        ),
    ];
    checks
        .iter()
        .filter(|(changed, _)| *changed)
        .map(|(_, why)| *why)
        .collect()
}

/// How a child ended, for the log: "with code 1", "killed by SIGKILL".
fn ended(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("with code {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("killed by {}", signal.as_str()),
        other => format!("({other:?})"),
    }
}

/// The pool as the autoscaler sees it this turn.
enum PoolView {
    /// Steady: judge it, with this many workers idle.
    Judge { idle: usize },
    /// A worker is booting or missing: look again later.
    Wait,
    /// A generation roll, WINCH or a stop: what was seen so far no longer counts.
    StartOver,
}

/// With `--max-workers`, the cgroup memory limit the pool stays under, announced with the
/// bounds.
fn memory_limit_for(config: &Config) -> Option<MemoryLimit> {
    let max = config.max_workers?;
    let found = MemoryLimit::find();
    let memory = found.as_ref().map_or("no cgroup memory limit".into(), |m| {
        let fill = memory_limit::FILL_PERCENT;
        format!(
            "within {fill} % of the cgroup's {} memory limit",
            mib(m.limit)
        )
    });
    log::info!("Autoscale: {} to {max} workers, {memory}", config.workers);
    found
}

/// The autoscaler `--max-workers` asks for: from `--workers` up to it.
fn autoscaler_for(config: &Config) -> Option<Autoscaler> {
    let down_after_ms = config.scale_down_after.as_millis() as u64;
    let max = config.max_workers?;
    Some(Autoscaler::new(config.workers, max, down_after_ms))
}

/// Connections waiting in the listeners' accept queues; `None` when the kernel cannot
/// count one of them (see `sys::sockopt::accept_queue`), as a partial count could say
/// nothing waits while a listener's queue fills.
fn queued_connections(listeners: &[Listener]) -> Option<u64> {
    let count = |l: &Listener| crate::sys::sockopt::accept_queue(l.fd()).ok();
    listeners
        .iter()
        .map(|l| count(l).map(|(queued, _)| u64::from(queued)))
        .sum()
}

/// The master's hold on the application.
enum AppSource<'a> {
    /// Each worker builds its own.
    Factory(&'a AppFactory),
    /// Built before forking; each child takes its own copy out of the Option. With the
    /// `--env` it was built with.
    Preloaded(Option<Box<dyn Handler>>, Vec<(String, String)>),
}

/// Descriptors a worker needs beside its connections: listeners, epoll, signals, the
/// lifeline, logs, the scoreboard, and some for the application.
const WORKER_OWN_FILES: u64 = 64;

/// Makes the open-file limit fit `--worker-connections`: the soft limit is raised to
/// what the workers need, as far as the hard limit allows (Go's runtime raises it to
/// the hard limit at start; nginx has `worker_rlimit_nofile`), and a limit still too
/// low is said at start, as nginx says "worker_connections exceed open file resource
/// limit", not found later under load as accept failing with EMFILE. Where bodies can
/// be spooled, each connection may hold its spool file too.
fn fit_open_files(config: &Config) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let worker_connections = config.worker_connections;
    let per_connection = 1 + u64::from(config.may_spool());
    let needed = worker_connections as u64 * per_connection + WORKER_OWN_FILES;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= needed {
        return;
    }
    let raised = needed.min(hard);
    let soft = match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
        Ok(()) => raised,
        Err(_) => soft,
    };
    if soft < needed {
        log::warn!(
            "--worker-connections {worker_connections} needs about {needed} open files per \
             worker, and the limit is {soft} (hard limit {hard}): raise it (ulimit -n, \
             systemd's LimitNOFILE=) or lower --worker-connections"
        );
    }
}

/// DESIGN invariant 1, checked before anything is bound: the master forks its workers,
/// and a fork copies only the calling thread, so a thread left running by the embedding
/// program or its preloaded application (a runtime, a background refresher) could hold a
/// lock (the allocator's, a logger's) that every worker would find locked for ever.
fn single_threaded() -> Result<(), Error> {
    match fork::threads() {
        1 => Ok(()),
        n => Err(Error::Config(format!(
            "{n} threads are running in the master, which forks its workers: that is only \
             sound in a single-threaded process. Start threads in the worker factory (after \
             the fork), and join any the preload starts before it returns"
        ))),
    }
}

/// The listening sockets: those systemd passed down (socket activation), or `--bind`'s,
/// taken over from the previous master after USR2 where it had them bound already, or
/// else freshly bound. Also says whether they are systemd's, standing in for `--bind`.
fn acquire_listeners(config: &Config) -> Result<(Vec<Listener>, bool), Error> {
    let options = listeners::BindOptions {
        backlog: config.backlog,
        reuse_port: config.reuse_port,
        umask: config.umask,
    };
    let (listeners, activated) = match listeners::inherited()? {
        Some((source, handed)) => {
            log::info!(
                "Inherited {} listener(s) from {}",
                handed.len(),
                source.describe()
            );
            match source.replaces_bind() {
                true => (handed, true),
                false => (listeners::reconcile(handed, &config.binds, options)?, false),
            }
        }
        None => (listeners::bind_all(&config.binds, options)?, false),
    };
    Ok((listeners, activated))
}

/// The ready line: each listener's address, then the metrics port's. Printed only once
/// the signal handlers are in place, as scripts and tests signal the master the moment
/// they read it (before that, a HUP or USR1 would have killed it).
fn announce(listeners: &[Listener], scrapes: Option<&Scrapes>, pid: Pid) {
    for listener in listeners {
        log::info!("Listening at: {} ({pid})", listener.url());
    }
    if let Some(scrapes) = scrapes {
        log::info!("Metrics at: {} ({pid})", scrapes.url());
    }
}

/// `--metrics-bind`'s port, watched by the master's poll from now on.
fn watched(mut scrapes: Scrapes, poll: &Poll) -> Result<Scrapes, Error> {
    scrapes
        .watch(poll.registry(), true)
        .map_err(|e| Error::io("watching the metrics port", e))?;
    Ok(scrapes)
}

/// `--static DIR`, opened as the configuration says, for the workers to start from.
fn open_static_files(config: &Config) -> Result<Option<StaticFiles>, Error> {
    let Some(root) = &config.static_root else {
        return Ok(None);
    };
    StaticFiles::from_config(root, config)
        .map(Some)
        .map_err(|err| Error::Config(format!("--static {}: {err}", root.display())))
}

/// Opens the access log in the master, so a bad path stops the start; workers inherit it.
fn open_access_log(config: &Config) -> Result<Option<AccessLog>, Error> {
    let path = config.access_log.as_deref();
    AccessLog::open(config).map_err(|e| {
        let shown = path.unwrap_or("");
        Error::io(format!("opening --access-logfile {shown}"), e)
    })
}

/// The worker count after `ttin` TTINs and `ttou` TTOUs, never below one nor above the
/// scoreboard's capacity.
fn scaled(target: usize, ttin: usize, ttou: usize) -> usize {
    (target + ttin)
        .saturating_sub(ttou)
        .clamp(1, scoreboard::CAPACITY)
}

/// [`Master::demand`]'s sum: `waiting` is (the most seen since the last look, now).
fn demand(idle: usize, waiting: (u64, u64), queued: Option<u64>) -> Option<u64> {
    let behind = match idle {
        0 => waiting.0,
        _ => waiting.1,
    };
    match queued {
        Some(queued) => Some(queued + behind),
        None => (behind > 0).then_some(behind),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Config, demand, first_silence_past, hup_cannot_change, keep_what_hup_cannot_change, scaled,
        single_threaded,
    };
    use crate::config::{BindAddr, from_argv};
    use std::time::Duration;

    /// Requests seen waiting since the last look are demand while every worker is
    /// busy; with a worker idle only what waits now is, or a light load from several
    /// kept-alive clients (two requests in one batch now and then) kept a quiet pool
    /// from shrinking for 20 s and more.
    #[test]
    fn demand_counts_what_was_seen_only_while_no_worker_is_idle() {
        assert_eq!(demand(0, (2, 0), Some(0)), Some(2));
        assert_eq!(demand(0, (2, 0), None), Some(2));
        assert_eq!(demand(1, (2, 0), Some(0)), Some(0));
        assert_eq!(demand(2, (2, 1), Some(3)), Some(4));
        assert_eq!(demand(2, (0, 0), None), None);
    }

    /// The master sleeps until the first worker's silence passes `--timeout`, not a whole
    /// tick past it.
    #[test]
    fn the_master_wakes_when_a_worker_times_out() {
        let ms = Duration::from_millis;
        // ((heartbeat, timeout) of each worker, now) -> sleep at most
        type Case = (&'static [(u64, u64)], u64, Option<Duration>);
        let cases: [Case; 6] = [
            (&[], 10_000, None),
            (&[(9_000, 2000)], 10_000, Some(ms(1001))),
            (&[(9_500, 2000), (8_200, 2000)], 10_000, Some(ms(201))),
            (&[(7_999, 2000)], 10_000, Some(ms(0))),
            (&[(8_000, 2000)], 10_000, Some(ms(1))),
            // Each worker by its own timeout: the older heartbeat is not the first due.
            (&[(9_500, 1000), (8_200, 30_000)], 10_000, Some(ms(501))),
        ];
        for (silences, now, want) in cases {
            let got = first_silence_past(silences.iter().copied(), now);
            assert_eq!(got, want, "{silences:?}, now {now}");
        }
    }

    /// A program that set its listener in code (`serve`) and reloads a configuration
    /// that did not change: nothing to warn about, and the listener set in code stays.
    /// A bind the operator changed is warned about and still not applied.
    #[test]
    fn hup_compares_what_was_loaded_not_what_code_set() {
        let loaded = from_argv(vec!["my-app".into()]).unwrap();
        let in_code = BindAddr::Unix("/run/my-app.sock".into());
        let running = Config {
            binds: vec![in_code.clone()],
            ..loaded.clone()
        };
        assert!(hup_cannot_change(&loaded, &loaded.clone()).is_empty());
        let kept = keep_what_hup_cannot_change(&running, &loaded, loaded.clone());
        assert_eq!(kept.binds, std::slice::from_ref(&in_code));

        let args = ["my-app", "--bind", "127.0.0.1:9999"]
            .map(Into::into)
            .to_vec();
        let rebound = from_argv(args).unwrap();
        let warnings = hup_cannot_change(&loaded, &rebound);
        assert!(
            warnings.len() == 1 && warnings[0].starts_with("--bind"),
            "{warnings:?}"
        );
        assert_eq!(
            keep_what_hup_cannot_change(&running, &loaded, rebound).binds,
            [in_code]
        );
    }

    #[test]
    fn a_second_thread_stops_the_start() {
        // Parked until the test ends: the count cannot fall back to 1 meanwhile.
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || wait.recv());
        let err = single_threaded().expect_err("a thread is running beside this one");
        assert!(err.to_string().contains("threads are running"), "{err}");
        drop(done);
        let _ = thread.join();
    }

    #[test]
    fn scaling_counts() {
        // (target, TTIN, TTOU) -> new target
        let cases = [
            ((2, 1, 0), 3),
            ((2, 3, 3), 2),
            ((2, 0, 1), 1),
            ((1, 0, 1), 1), // floor 1, like gunicorn
            ((1, 0, 5), 1),
            ((3, 2, 4), 1),
            ((511, 5, 0), 512), // the scoreboard's capacity
        ];
        for ((target, ttin, ttou), want) in cases {
            assert_eq!(scaled(target, ttin, ttou), want, "{target} +{ttin} -{ttou}");
        }
    }
}
