//! `deladas agent --host NAME --manager URL`: the per-host agent (the paper's
//! AMP). Every heartbeat it reports what it runs and gets the host's
//! assignment back (`deladas::enact::protocol`); it starts each assigned
//! instance as a process of its own (own process group), writes its wiring
//! document atomically and sends `SIGHUP` when it changes, restarts a crashed
//! process in place with back-off, reports a crash loop as a failed instance,
//! stops what is no longer assigned (SIGTERM, then SIGKILL), and fences itself
//! (stops everything) when it cannot reach the manager for the fence period.
//! It never applies an assignment older than one it has applied.
//!
//! State directory: `instances/ID/{wiring.json,pid,out.log,status.json}`. At
//! start, processes left by an earlier agent (pid files) are ended, so an
//! instance never runs twice on a host.

mod lease;

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deladas::enact::protocol::{
    AssignedInstance, Assignment, Epoch, Heartbeat, InstanceState, ObservedInstance, HEARTBEAT_PATH,
};
use deladas::enact::{env, Wiring};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Crashes within [`CRASH_WINDOW`] that make a crash loop.
pub const CRASH_LOOP: usize = 5;
/// The window in which [`CRASH_LOOP`] crashes are a crash loop.
pub const CRASH_WINDOW: Duration = Duration::from_secs(30);
/// Back-off before the first restart; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a stopped process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// The arguments of `deladas agent`.
pub struct AgentArgs {
    pub host: String,
    pub manager: String,
    pub token_file: Option<PathBuf>,
    /// The address peers reach this host at (default: the manager's view is asked to use 127.0.0.1).
    pub address: String,
    pub state_dir: PathBuf,
    /// Relative program paths are resolved against it.
    pub bundle_dir: PathBuf,
    pub heartbeat: Duration,
    /// The managers' etcd store: keep a lease on the host's key there.
    pub etcd: Option<String>,
    pub lease_ttl: Duration,
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Sets [`STOP`] on SIGTERM or SIGINT (a thread of its own; no unsafe code).
fn watch_signals() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        });
        STOP.store(true, Ordering::SeqCst);
    });
}

struct Inst {
    spec: AssignedInstance,
    child: Option<Child>,
    state: InstanceState,
    restarts: u32,
    crashes: VecDeque<Instant>,
    next_start: Option<Instant>,
    last_exit: Option<String>,
}

struct Agent {
    args: AgentArgs,
    token: Option<String>,
    http: ureq::Agent,
    seen: Epoch,
    instances: BTreeMap<String, Inst>,
    last_ok: Instant,
    fence_after: Duration,
    fenced: bool,
    fenced_unreported: bool,
    /// The managers' URLs (several with an etcd store) and the one tried first.
    managers: Vec<String>,
    current: usize,
    /// The highest leader term seen; assignments of a lower one are refused.
    term: u64,
    lease: Option<lease::Lease>,
}

/// Runs the agent until SIGTERM or SIGINT; returns the exit code.
pub fn run_agent(args: AgentArgs) -> i32 {
    let token = match &args.token_file {
        None => None,
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some(t.trim().to_string()),
            Err(e) => {
                eprintln!("error: cannot read the token file `{}`: {e}", p.display());
                return 2;
            }
        },
    };
    if let Err(e) = std::fs::create_dir_all(args.state_dir.join("instances")) {
        eprintln!("error: cannot create the state directory `{}`: {e}", args.state_dir.display());
        return 2;
    }
    watch_signals();
    end_leftovers(&args.state_dir.join("instances"));
    let lease = match &args.etcd {
        None => None,
        Some(url) => match lease::start(url, &args.host, &args.address, args.lease_ttl, &STOP) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: `--etcd`: {e}");
                return 2;
            }
        },
    };
    let managers: Vec<String> =
        args.manager.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(1000)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut a = Agent {
        args,
        token,
        http,
        seen: Epoch::default(),
        instances: BTreeMap::new(),
        last_ok: Instant::now(),
        fence_after: Duration::from_secs(5),
        fenced: false,
        fenced_unreported: false,
        managers,
        current: 0,
        term: 0,
        lease,
    };
    eprintln!("agent {}: manager {}", a.args.host, a.args.manager);
    let mut next_beat = Instant::now();
    while !STOP.load(Ordering::SeqCst) {
        a.supervise();
        if Instant::now() >= next_beat {
            next_beat = Instant::now() + a.args.heartbeat;
            a.beat();
        }
        if !a.fenced && a.out_of_touch() {
            let from = if a.lease.is_some() { "its lease in etcd not renewed" } else { "no answer from the manager" };
            eprintln!("agent {}: {from} for {:?}: fencing (stopping every instance)", a.args.host, a.fence_after);
            a.stop_all();
            a.fenced = true;
            a.fenced_unreported = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    a.stop_all();
    0
}

/// Ends processes an earlier agent left (by their pid files).
fn end_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let pidfile = e.path().join("pid");
        let Ok(text) = std::fs::read_to_string(&pidfile) else { continue };
        let id = e.file_name().to_string_lossy().into_owned();
        if let Ok(pid) = text.trim().parse::<i32>() {
            // Only a process that is still that instance (pids are reused).
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let marker = format!("{}={id}", env::INSTANCE);
            if environ.split(|&b| b == 0).any(|v| v == marker.as_bytes()) {
                eprintln!("agent: ending leftover {id} (pid {pid})");
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(pidfile);
    }
}

/// Writes a file atomically: a temporary file, fsync, rename.
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Agent {
    /// Whether to fence: with etcd, when the host's lease has not been
    /// renewed for its TTL plus the fence period (the lease cannot expire
    /// before the TTL, and the managers fail a host only when its key has
    /// been gone for their grace period, twice the fence period); else when
    /// the manager has not answered for the fence period.
    fn out_of_touch(&self) -> bool {
        match &self.lease {
            Some(l) => l.since_ok() > self.fence_after + self.args.lease_ttl && !l.quorum_lost(),
            None => self.last_ok.elapsed() > self.fence_after,
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.args.state_dir.join("instances").join(id)
    }

    fn observed(&self) -> Vec<ObservedInstance> {
        self.instances
            .values()
            .map(|i| ObservedInstance {
                id: i.spec.id.clone(),
                state: i.state,
                pid: i.child.as_ref().map(|c| c.id()),
                restarts: i.restarts,
                generation: i.spec.wiring.generation,
                last_exit: i.last_exit.clone(),
            })
            .collect()
    }

    fn beat(&mut self) {
        let hb = Heartbeat {
            host: self.args.host.clone(),
            address: self.args.address.clone(),
            epoch: self.seen,
            fenced: self.fenced_unreported,
            instances: self.observed(),
        };
        let Ok(body) = serde_json::to_string(&hb) else { return };
        let manager = self.managers.get(self.current).cloned().unwrap_or_else(|| self.args.manager.clone());
        let url = format!("{}{HEARTBEAT_PATH}", manager.trim_end_matches('/'));
        let mut req = self.http.post(&url).header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = match req.send(body.as_str()) {
            Ok(r) => r,
            Err(_) => {
                self.next_manager();
                return;
            }
        };
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if status == 503 {
            // A manager that does not lead: try the next one (quietly: with
            // etcd, the agent's lease is what keeps it running meanwhile).
            self.next_manager();
            return;
        }
        if status != 200 {
            eprintln!("agent {}: the manager refused the heartbeat ({status}): {text}", self.args.host);
            return;
        }
        let Ok(asg) = serde_json::from_str::<Assignment>(&text) else {
            eprintln!("agent {}: the manager's answer is not an assignment", self.args.host);
            return;
        };
        if asg.leader_term < self.term {
            eprintln!(
                "agent {}: refusing an assignment of leader term {} < {} (a deposed manager)",
                self.args.host, asg.leader_term, self.term
            );
            self.next_manager();
            return;
        }
        self.term = asg.leader_term;
        self.last_ok = Instant::now();
        self.fence_after = Duration::from_millis(asg.fence_after_ms.max(200));
        if self.fenced && self.out_of_touch() {
            // Fenced for its lease, which is still not renewed: stay fenced.
            return;
        }
        self.fenced_unreported = false;
        if asg.epoch < self.seen {
            eprintln!(
                "agent {}: ignoring an assignment of an older epoch {:?} < {:?}",
                self.args.host, asg.epoch, self.seen
            );
            return;
        }
        self.fenced = false;
        self.apply(asg);
    }

    fn next_manager(&mut self) {
        if !self.managers.is_empty() {
            self.current = (self.current + 1) % self.managers.len();
        }
    }

    fn apply(&mut self, asg: Assignment) {
        self.seen = asg.epoch;
        let wanted: BTreeMap<String, AssignedInstance> =
            if asg.failed { BTreeMap::new() } else { asg.instances.into_iter().map(|i| (i.id.clone(), i)).collect() };
        let gone: Vec<String> = self.instances.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
        for id in gone {
            if let Some(mut i) = self.instances.remove(&id) {
                eprintln!("agent {}: stopping {id}", self.args.host);
                stop(&mut i);
                let _ = std::fs::remove_file(self.dir(&id).join("pid"));
            }
        }
        for (id, spec) in wanted {
            match self.instances.get_mut(&id) {
                // Another program or MDCD role (a guarded upgrade starts or
                // ends): the process is started again under its new spec.
                Some(i) if i.spec.command != spec.command || i.spec.mdcd != spec.mdcd => {
                    eprintln!("agent {}: restarting {id} (its program or MDCD role changed)", self.args.host);
                    stop(i);
                    let mut fresh = Inst {
                        spec,
                        child: None,
                        state: InstanceState::BackingOff,
                        restarts: 0,
                        crashes: VecDeque::new(),
                        next_start: None,
                        last_exit: None,
                    };
                    self.start(&mut fresh);
                    self.instances.insert(id, fresh);
                }
                Some(i) => {
                    if i.spec.wiring != spec.wiring {
                        let dir = self.args.state_dir.join("instances").join(&id);
                        if let Err(e) = write_wiring(&dir, &spec.wiring) {
                            eprintln!("agent: cannot write the wiring of {id}: {e}");
                        }
                        if let Some(c) = &i.child {
                            let _ = nix::sys::signal::kill(Pid::from_raw(c.id() as i32), Signal::SIGHUP);
                        }
                    }
                    i.spec = spec;
                }
                None => {
                    let mut i = Inst {
                        spec,
                        child: None,
                        state: InstanceState::BackingOff,
                        restarts: 0,
                        crashes: VecDeque::new(),
                        next_start: Some(Instant::now()),
                        last_exit: None,
                    };
                    self.start(&mut i);
                    self.instances.insert(id, i);
                }
            }
        }
    }

    fn start(&self, i: &mut Inst) {
        let id = i.spec.id.clone();
        let dir = self.dir(&id);
        let fail = |i: &mut Inst, why: String| {
            eprintln!("agent {}: cannot start {id}: {why}", self.args.host);
            i.state = InstanceState::Failed;
            i.last_exit = Some(why);
            i.next_start = None;
        };
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| write_wiring(&dir, &i.spec.wiring)) {
            return fail(i, format!("cannot write its wiring: {e}"));
        }
        let Some(program) = i.spec.command.first() else { return fail(i, "empty command".into()) };
        let program = if program.contains('/') && !program.starts_with('/') {
            self.args.bundle_dir.join(program)
        } else {
            PathBuf::from(program)
        };
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("out.log"));
        let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
            Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
            Err(_) => (Stdio::null(), Stdio::null()),
        };
        let mut cmd = Command::new(&program);
        if let Some(m) = &i.spec.mdcd {
            // A process of a guarded upgrade: its MDCD document beside the wiring.
            let written = serde_json::to_vec_pretty(m)
                .map_err(std::io::Error::other)
                .and_then(|text| write_atomic(&dir.join("mdcd.json"), &text));
            if let Err(e) = written {
                return fail(i, format!("cannot write its MDCD document: {e}"));
            }
            cmd.env(env::MDCD, dir.join("mdcd.json"))
                .env(env::MDCD_ROLE, m.role.as_str())
                .env(env::MDCD_VERSION, &m.version);
        }
        let spawned = cmd
            .args(&i.spec.command[1..])
            .env(env::INSTANCE, &id)
            .env(env::COMPONENT, &i.spec.component)
            .env(env::HOST, &self.args.host)
            .env(env::GENERATION, i.spec.wiring.generation.to_string())
            .env(env::WIRING, dir.join("wiring.json"))
            .env(env::STATE_DIR, &dir)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn();
        match spawned {
            Ok(c) => {
                let _ = write_atomic(&dir.join("pid"), c.id().to_string().as_bytes());
                eprintln!("agent {}: started {id} (pid {})", self.args.host, c.id());
                i.child = Some(c);
                i.state = InstanceState::Running;
                i.next_start = None;
            }
            Err(e) => fail(i, format!("`{}`: {e}", program.display())),
        }
    }

    /// Reaps exited processes; restarts them after a back-off, or gives up
    /// on a crash loop.
    fn supervise(&mut self) {
        let now = Instant::now();
        let ids: Vec<String> = self.instances.keys().cloned().collect();
        for id in ids {
            let Some(mut i) = self.instances.remove(&id) else { continue };
            if let Some(c) = &mut i.child {
                if let Ok(Some(status)) = c.try_wait() {
                    i.child = None;
                    let why = describe(status);
                    eprintln!("agent {}: {id} exited: {why}", self.args.host);
                    i.last_exit = Some(why);
                    i.crashes.push_back(now);
                    while i.crashes.front().is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW) {
                        i.crashes.pop_front();
                    }
                    if i.crashes.len() >= CRASH_LOOP {
                        eprintln!("agent {}: {id} is in a crash loop; giving up", self.args.host);
                        i.state = InstanceState::Failed;
                        i.next_start = None;
                    } else {
                        let k = (i.crashes.len() as u32).saturating_sub(1).min(6);
                        let backoff = (FIRST_BACKOFF * 2u32.pow(k)).min(MAX_BACKOFF);
                        i.state = InstanceState::BackingOff;
                        i.next_start = Some(now + backoff);
                    }
                }
            }
            if i.child.is_none() && i.state == InstanceState::BackingOff && i.next_start.is_some_and(|t| now >= t) {
                i.restarts += u32::from(i.last_exit.is_some());
                self.start(&mut i);
            }
            self.instances.insert(id, i);
        }
    }

    fn stop_all(&mut self) {
        let all = std::mem::take(&mut self.instances);
        for (id, mut i) in all {
            eprintln!("agent {}: stopping {id}", self.args.host);
            stop(&mut i);
            let _ = std::fs::remove_file(self.dir(&id).join("pid"));
        }
    }
}

fn write_wiring(dir: &Path, w: &Wiring) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(w).map_err(std::io::Error::other)?;
    write_atomic(&dir.join("wiring.json"), &text)
}

fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(sig) => format!("killed by {sig}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => "ended".into(),
    }
}

/// SIGTERM to the process group, then SIGKILL after [`STOP_GRACE`].
fn stop(i: &mut Inst) {
    let Some(mut c) = i.child.take() else { return };
    let pg = Pid::from_raw(c.id() as i32);
    let _ = killpg(pg, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            let _ = killpg(pg, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(pg, Signal::SIGKILL);
    let _ = c.wait();
}
