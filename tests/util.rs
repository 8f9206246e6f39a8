//! Spawning and supervising a `br-serve` process for one test.
//!
//! [`Launch`] builds the command line and environment, [`Server`] is a running master. The
//! server's stderr (its log) and stdout are drained by background threads into a shared
//! list of lines, so the pipe never fills and blocks the server, and so a failing test can
//! print what the server said: `Server`'s `Drop` dumps the log when the test panics (libtest
//! captures it and shows it with the failure), then kills the whole process group.
//!
//! Every wait polls in small steps up to an explicit deadline: the tests must pass on a
//! loaded 2-core machine, and a deadline that is hit produces a message, not a hang.

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::client::{self, Conn, Response};

/// The marker of the master's ready line, one per TCP listener.
const READY_MARKER: &str = "Listening at: http://";
/// The marker of the master's `--metrics-bind` line: `Metrics at: http://ADDR/metrics (PID)`.
const METRICS_MARKER: &str = "Metrics at: http://";
/// How long a server may take from spawn to its ready line (a cold, loaded CI machine).
const READY_WITHIN: Duration = Duration::from_secs(20);
/// How often `poll_until` looks again: short enough to measure promptness, long enough not
/// to steal CPU from the server on a 2-core machine.
const POLL_STEP: Duration = Duration::from_millis(10);

/// Seconds, for readable deadlines at call sites.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Calls `probe` every few milliseconds until it returns `Some`, or `within` has passed.
pub fn poll_until<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL_STEP);
    }
}

/// The lines the server has written so far: its stdout and stderr, shared with the reader
/// threads, then the current contents of its `--error-logfile`, if a test gave one.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>, Vec<PathBuf>);

impl Log {
    fn lines(&self) -> Vec<String> {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for file in &self.1 {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }

    fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Drains `pipe` line by line on a background thread until EOF (every writer gone),
    /// sending `trigger`'s signal to `pid` as soon as a line holds its text.
    fn collect(
        &self,
        pipe: impl Read + Send + 'static,
        pid: u32,
        trigger: Option<(String, Signal)>,
    ) -> JoinHandle<()> {
        let log = self.clone();
        thread::spawn(move || {
            let mut trigger = trigger;
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some((_, sig)) = trigger.take_if(|(text, _)| line.contains(text.as_str())) {
                    send_signal(pid, sig);
                }
                log.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        })
    }
}

/// A server command line under construction: `Launch::new().args(..).start()`.
pub struct Launch {
    /// The program: `br-serve`, or an example built on the library.
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    bind: bool,
    /// A program that runs the binary (`unshare ...`, `systemd-socket-activate ...`).
    wrapper: Vec<String>,
    /// The directory to start in, as a shell started there names it (`$PWD`).
    dir: Option<PathBuf>,
    error_log: Option<PathBuf>,
    /// A signal for the master the instant its log says something ([`Launch::signal_on`]).
    trigger: Option<(String, Signal)>,
}

impl Launch {
    /// The binary with `--bind 127.0.0.1:0` and a clean environment.
    pub fn new() -> Launch {
        Launch {
            program: PathBuf::from(BINARY),
            args: Vec::new(),
            envs: Vec::new(),
            bind: true,
            wrapper: Vec::new(),
            dir: None,
            error_log: None,
            trigger: None,
        }
    }

    /// `examples/NAME.rs` instead of `br-serve`, with the same defaults. `cargo test`
    /// builds the examples beside the binary (`cargo test --test integration` alone does not).
    pub fn example(name: &str) -> Launch {
        let dir = Path::new(BINARY).parent().expect("the binary's directory");
        let program = dir.join("examples").join(name);
        assert!(
            program.exists(),
            "{} is missing: run `cargo test`, which builds the examples",
            program.display()
        );
        Launch {
            program,
            ..Launch::new()
        }
    }

    /// Runs `program` (a path relative to `dir`, say `./br-serve`) in `dir`, with `PWD`
    /// set to `dir` as a shell that changed into it sets it.
    pub fn in_dir(mut self, dir: &Path, program: &str) -> Launch {
        self.program = PathBuf::from(program);
        self.dir = Some(dir.to_path_buf());
        self.env("PWD", dir.to_str().expect("a UTF-8 temporary path"))
    }

    pub fn args(mut self, args: &[&str]) -> Launch {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Leaves out the default `--bind`, to test what the server binds on its own.
    pub fn no_bind(mut self) -> Launch {
        self.bind = false;
        self
    }

    /// Runs the binary through `wrapper` (a program and its arguments, the binary's path
    /// and arguments following them), the way a container runtime or systemd would.
    pub fn wrapped(mut self, wrapper: &[impl AsRef<str>]) -> Launch {
        self.wrapper = wrapper.iter().map(|a| a.as_ref().to_string()).collect();
        self
    }

    /// Sends `sig` to the master the instant a line of its log holds `text`, from the
    /// thread reading the log: sooner than a test could react.
    pub fn signal_on(mut self, text: &str, sig: Signal) -> Launch {
        self.trigger = Some((text.to_string(), sig));
        self
    }

    /// `--error-logfile PATH`; the server's log (ready line included) is then read from
    /// that file as well as from its stdout and stderr.
    pub fn error_logfile(mut self, path: &Path) -> Launch {
        let shown = path.to_str().expect("a UTF-8 temporary path");
        self = self.args(&["--error-logfile", shown]);
        self.error_log = Some(path.to_path_buf());
        self
    }

    /// Spawns the master in its own process group, with stdout and stderr collected.
    fn spawn(&self) -> (Child, Log, [JoinHandle<()>; 2]) {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&self.program);
                cmd
            }
            None => Command::new(&self.program),
        };
        if self.bind {
            cmd.args(["--bind", "127.0.0.1:0"]);
        }
        cmd.args(&self.args);
        // The developer's or CI's environment must not change what a test runs: drop every
        // variable the server reads, then set only what this test asks for.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("BR_SERVE_")
                || [
                    "PORT",
                    "WEB_CONCURRENCY",
                    "RUST_LOG",
                    "RUST_BACKTRACE",
                    "RUST_LIB_BACKTRACE",
                ]
                .contains(&key.as_str())
            {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        // Own process group: Drop can then kill the master and every worker with one
        // killpg, even a worker the master failed to take down with it.
        cmd.process_group(0);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let log = Log(Arc::default(), self.error_log.iter().cloned().collect());
        let readers = [
            log.collect(child.stdout.take().expect("stdout piped"), child.id(), None),
            log.collect(
                child.stderr.take().expect("stderr piped"),
                child.id(),
                self.trigger.clone(),
            ),
        ];
        (child, log, readers)
    }

    /// Starts the server and waits for its ready line.
    #[track_caller]
    pub fn start(&self) -> Server {
        let mut server = self.start_unready();
        server.await_ready();
        server
    }

    /// Starts the server without waiting for its ready line, for a wrapper that starts
    /// it only once something happens (a connection, for socket activation); the test
    /// then calls [`Server::await_ready`].
    pub fn start_unready(&self) -> Server {
        // The readers run detached: the workers hold the pipes too, so their EOF comes only
        // once the whole group is gone, which nothing here waits for.
        let (child, log, _readers) = self.spawn();
        Server {
            child,
            log,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            ready_line: String::new(),
            exited: None,
        }
    }

    /// Runs the binary to completion (for bad flags): its exit status and everything it said.
    #[track_caller]
    pub fn run_to_exit(&self, within: Duration) -> (ExitStatus, String) {
        let (mut child, log, readers) = self.spawn();
        let status = poll_until(within, || child.try_wait().expect("try_wait"));
        let Some(status) = status else {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "br-serve still running after {within:?}; log:\n{}",
                log.text()
            );
        };
        // The readers may still hold the last lines: wait for both pipes' EOF (bounded, in
        // case something the process started still holds them).
        poll_until(secs(5), || {
            readers.iter().all(|r| r.is_finished()).then_some(())
        });
        (status, log.text())
    }
}

/// A running master, killed (with its whole process group) when dropped.
pub struct Server {
    child: Child,
    log: Log,
    addr: SocketAddr,
    ready_line: String,
    exited: Option<ExitStatus>,
}

/// The `HOST:PORT` and the pid of a ready line:
/// `... Listening at: http://127.0.0.1:40123 (12345)`.
pub fn parse_ready_line(line: &str) -> Option<(SocketAddr, u32)> {
    let rest = &line[line.find(READY_MARKER)? + READY_MARKER.len()..];
    let (host_port, rest) = rest.split_once(' ')?;
    let pid = rest.split_once('(')?.1.split_once(')')?.0;
    Some((host_port.parse().ok()?, pid.trim().parse().ok()?))
}

impl Server {
    /// Waits for the ready line and takes the address to connect to from it.
    #[track_caller]
    pub fn await_ready(&mut self) {
        let log = &self.log;
        let found = poll_until(READY_WITHIN, || {
            if let Some(line) = log.lines().into_iter().find(|l| l.contains(READY_MARKER)) {
                return Some(Ok(line));
            }
            match self.child.try_wait() {
                Ok(Some(status)) => Some(Err(format!("br-serve exited before ready: {status}"))),
                _ => None,
            }
        });
        // Drop prints the log with the failure.
        let line = match found {
            Some(Ok(line)) => line,
            Some(Err(why)) => panic!("{why}"),
            None => panic!("no ready line within {READY_WITHIN:?}"),
        };
        let Some((mut addr, _)) = parse_ready_line(&line) else {
            panic!("cannot parse the ready line {line:?}");
        };
        // A wildcard listener (0.0.0.0, ::) is reached through loopback.
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        self.addr = addr;
        self.ready_line = line;
    }

    /// Where to connect (loopback when the server listens on a wildcard address).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The master's pid, as spawned.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first ready line, verbatim.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// The pid the ready line names.
    pub fn ready_pid(&self) -> u32 {
        parse_ready_line(&self.ready_line)
            .expect("parsed at start")
            .1
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines()
    }

    /// How many lines logged so far contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits for a log line containing `needle` and returns it.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> String {
        self.wait_for_log_where(needle, within, |line| line.contains(needle))
    }

    /// Waits for a log line accepted by `wanted`; `what` names it in the failure message.
    #[track_caller]
    pub fn wait_for_log_where(
        &self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let found = poll_until(within, || self.log().into_iter().find(|l| wanted(l)));
        found.unwrap_or_else(|| panic!("no log line {what:?} within {within:?}"))
    }

    /// Where the master answers metrics (`--metrics-bind`): the address in the latest
    /// `Metrics at:` line (a USR2 successor logs its own).
    #[track_caller]
    pub fn metrics_addr(&self) -> SocketAddr {
        self.wait_for_log(METRICS_MARKER, secs(10));
        let line = self.log().into_iter().rfind(|l| l.contains(METRICS_MARKER));
        let addr = line.as_deref().and_then(|line| {
            let rest = &line[line.find(METRICS_MARKER)? + METRICS_MARKER.len()..];
            rest.split_once('/')?.0.parse().ok()
        });
        addr.unwrap_or_else(|| panic!("cannot parse the metrics line {line:?}"))
    }

    /// The master's live children (zombies excluded: a dead, unreaped worker is not one).
    pub fn children(&self) -> Vec<u32> {
        children_of(self.pid())
    }

    /// Waits until the master has exactly `n` live children, and returns them.
    #[track_caller]
    pub fn wait_children(&self, n: usize, within: Duration) -> Vec<u32> {
        let found = poll_until(within, || Some(self.children()).filter(|c| c.len() == n));
        found.unwrap_or_else(|| {
            panic!(
                "expected {n} children within {within:?}, have {:?}",
                self.children()
            )
        })
    }

    /// Sends `sig` to the master only.
    pub fn signal(&self, sig: Signal) {
        send_signal(self.pid(), sig);
    }

    /// Waits for the master to exit, reaps it and returns its status.
    #[track_caller]
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = &mut self.child;
        let status = poll_until(within, || child.try_wait().expect("try_wait"));
        let status = status.unwrap_or_else(|| panic!("master still running after {within:?}"));
        self.exited = Some(status);
        status
    }

    /// A new connection to the server.
    #[track_caller]
    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// `GET path` on a new connection.
    #[track_caller]
    pub fn get(&self, path: &str) -> Response {
        client::get(self.addr, path)
    }

    /// A connection whose `GET /sleep?ms=MS` a worker has read: that worker is inside the
    /// handler for the next MS milliseconds, less the time this took.
    #[track_caller]
    pub fn sleeper(&self, ms: u64) -> Conn {
        let conn = self.sent_sleeper(ms);
        conn.wait_consumed(secs(10));
        conn
    }

    /// Sends USR2 and returns the new master it started (from the master's log), killed
    /// on drop should the test fail before it is stopped.
    #[track_caller]
    pub fn usr2(&self) -> KillOnDrop {
        self.signal(Signal::SIGUSR2);
        let line = self.wait_for_log("USR2: started a new master (pid: ", secs(10));
        let pid = line.rsplit("(pid: ").next();
        let pid = pid.and_then(|p| p.trim_end_matches(')').parse().ok());
        KillOnDrop(pid.unwrap_or_else(|| panic!("no pid in {line:?}")))
    }

    /// A connection that has sent `GET /sleep?ms=MS`, whether or not a worker took it
    /// (it may wait in the accept queue).
    pub fn sent_sleeper(&self, ms: u64) -> Conn {
        let mut conn = self.connect();
        let path = format!("/sleep?ms={ms}");
        conn.send(&client::request("GET", &path, &[], b""));
        conn
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- br-serve log ----\n{}\n---- end of log ----",
                self.log.text()
            );
        }
        // The whole group: the master and every worker, including one the master failed
        // to take down with it. Killing the group is safe even after the master was
        // reaped: the kernel does not hand out a pid that is still some group's id, and
        // once no member is left the call finds nothing (barring the pid's reuse as a new
        // group's id within these few milliseconds).
        let _ = killpg(Pid::from_raw(self.pid() as i32), Signal::SIGKILL);
        if self.exited.is_none() {
            let _ = self.child.wait();
        }
    }
}

/// Sends `sig` to one process; a process that is already gone is not an error here.
pub fn send_signal(pid: u32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

/// Field 3 of /proc/PID/stat, read after the last ')' since the name may hold anything.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// True for a zombie, and for a process that is gone altogether.
pub fn is_zombie(pid: u32) -> bool {
    matches!(proc_state(pid), Some('Z') | None)
}

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_br-serve");

/// Every child of `pid` as the kernel lists it, zombies included.
pub fn all_children_of(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The live children of any process (the master of a test, or one started by USR2).
pub fn children_of(pid: u32) -> Vec<u32> {
    let pids = all_children_of(pid).into_iter();
    pids.filter(|&p| !is_zombie(p)).collect()
}

/// The value of the `NAME:` line of /proc/PID/status, trimmed.
pub fn proc_status(pid: u32, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?;
    Some(line.trim().to_string())
}

/// The real and effective uid of a process, from the `Uid:` line of /proc/PID/status.
pub fn proc_uids(pid: u32) -> Option<(u32, u32)> {
    let line = proc_status(pid, "Uid")?;
    let mut ids = line.split_whitespace().filter_map(|id| id.parse().ok());
    Some((ids.next()?, ids.next()?))
}

/// The pid a pidfile names, if it exists and holds one.
pub fn read_pidfile(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A fresh directory under the system's temporary directory, removed when dropped. The
/// name is unique per test process and call, so parallel tests never share one.
pub struct TempDir(PathBuf);

/// A place for a Unix socket: the directory holding it (removed on drop), its path, and
/// the `--bind` value naming it.
pub fn unix_socket(tag: &str) -> (TempDir, PathBuf, String) {
    let dir = TempDir::new(tag);
    let path = dir.join("s.sock");
    let bind = format!("unix:{}", path.display());
    (dir, path, bind)
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("br-serve-test-{tag}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {path:?}: {e}"));
        TempDir(path)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A cgroup of one test's own, below the test process's, with a memory limit or a CPU
/// quota: for what br-serve does near a limit (the autoscaler's ceilings, OOM kills).
/// Its constructors give `None` where no such cgroup can be made here: not root, a
/// read-only /sys/fs/cgroup, cgroup v2 without the controller delegated to children.
pub struct Cgroup(PathBuf);

impl Cgroup {
    /// With a memory limit; `None` too on a machine with swap whose use the cgroup
    /// cannot limit.
    pub fn memory(tag: &str, limit_mib: u64) -> Option<Cgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let limit = (limit_mib << 20).to_string();
        // (directory, memory limit file, swap limit file and value): with swap, a
        // process over the memory limit is swapped out instead of OOM-killed.
        let (base, limit_file, swap_file, swap) = own.lines().find_map(|line| {
            let (_, rest) = line.split_once(':')?;
            let (controllers, path) = rest.split_once(':')?;
            let path = path.trim_start_matches('/');
            match controllers {
                "" => Some((
                    Path::new("/sys/fs/cgroup").join(path),
                    "memory.max",
                    "memory.swap.max",
                    "0".to_string(),
                )),
                c if c.split(',').any(|c| c == "memory") => Some((
                    Path::new("/sys/fs/cgroup/memory").join(path),
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    limit.clone(),
                )),
                _ => None,
            }
        })?;
        let cgroup = Cgroup::below(&base, tag)?;
        std::fs::write(cgroup.0.join(limit_file), limit).ok()?;
        let swap_limited = std::fs::write(cgroup.0.join(swap_file), swap).is_ok();
        (swap_limited || !host_has_swap()).then_some(cgroup)
    }

    /// With a CPU quota of `millicpus` thousandths of a CPU (1500: Kubernetes'
    /// `cpu: 1500m`), over a period of 100 ms.
    pub fn cpu(tag: &str, millicpus: u64) -> Option<Cgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let quota = (millicpus * 100).to_string();
        let (base, v2) = own.lines().find_map(|line| {
            let (_, rest) = line.split_once(':')?;
            let (controllers, path) = rest.split_once(':')?;
            let path = path.trim_start_matches('/');
            match controllers {
                "" => Some((Path::new("/sys/fs/cgroup").join(path), true)),
                c if c.split(',').any(|c| c == "cpu") => {
                    Some((Path::new("/sys/fs/cgroup/cpu").join(path), false))
                }
                _ => None,
            }
        })?;
        let cgroup = Cgroup::below(&base, tag)?;
        let written = match v2 {
            true => std::fs::write(cgroup.0.join("cpu.max"), format!("{quota} 100000")),
            false => std::fs::write(cgroup.0.join("cpu.cfs_period_us"), "100000")
                .and_then(|()| std::fs::write(cgroup.0.join("cpu.cfs_quota_us"), quota)),
        };
        written.ok().map(|()| cgroup)
    }

    /// A new cgroup directory of this test's, below `base`.
    fn below(base: &Path, tag: &str) -> Option<Cgroup> {
        let dir = base.join(format!("br-serve-test-{tag}-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(Cgroup(dir))
    }

    /// A `Launch::wrapped` wrapper that moves the server into the cgroup, then runs it.
    pub fn wrapper(&self) -> [String; 3] {
        let procs = self.0.join("cgroup.procs");
        let script = format!(r#"echo $$ > {} && exec "$0" "$@""#, procs.display());
        ["sh".into(), "-c".into(), script]
    }
}

/// Whether the machine has a swap area (a line besides the header in /proc/swaps).
fn host_has_swap() -> bool {
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    swaps.lines().count() > 1
}

impl Drop for Cgroup {
    /// Removes the cgroup once its processes are gone (the server is dropped first).
    fn drop(&mut self) {
        poll_until(secs(10), || std::fs::remove_dir(&self.0).ok());
    }
}

/// SIGKILLs a br-serve process the test did not spawn itself (the new master a USR2
/// starts) when dropped, in case the test failed before stopping it. It is killed only
/// while that pid still runs this binary, so a recycled pid is left alone.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.0));
        if exe.is_ok_and(|exe| exe == Path::new(BINARY)) && !is_zombie(self.0) {
            send_signal(self.0, Signal::SIGKILL);
        }
    }
}

/// A worker count that differs from the default (one per CPU), so a test can tell that a
/// setting took effect.
pub fn non_default_workers() -> usize {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    if cpus == 3 { 2 } else { 3 }
}

#[test]
fn ready_line_is_parsed() {
    let line =
        "2026-11-28T03:01:02Z [12345] [master] INFO Listening at: http://127.0.0.1:40123 (12345)";
    let (addr, pid) = parse_ready_line(line).expect("parses");
    assert_eq!(addr, "127.0.0.1:40123".parse().unwrap());
    assert_eq!(pid, 12345);
    let v6 = "x Listening at: http://[::1]:8000 (7)";
    assert_eq!(parse_ready_line(v6).map(|p| p.0.port()), Some(8000));
}
