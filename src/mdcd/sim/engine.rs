//! The event loop: processes, links, the event queue, effects, recovery.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use serde::Serialize;
use serde_json::json;

use super::apps::{AppCfg, AppKind, LinkCfg, SimApp, SimMsg};
use super::rng::{mix, Rng};
use crate::ddd::Deployment;
use crate::mdcd::model::{Role, RoleDocument};
use crate::mdcd::runtime::{
    AcceptanceTest, ActiveProcess, CounterGroup, Effect, Envelope, Link, LowProcess, ProtocolStats, ShadowProcess,
};

/// One scenario: everything that, with the DDD and the role document,
/// determines a run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Seed of every random draw (delays, AT coverage, whom clients ask).
    pub seed: u64,
    /// Ticks each application acts on (its workload).
    pub ticks: u64,
    /// The step from which the new versions corrupt what they send.
    pub fault_at: Option<u64>,
    /// Probability that the AT detects an erroneous message (1 = always).
    pub at_coverage: f64,
    /// Application per component (default `counter`).
    pub apps: BTreeMap<String, AppKind>,
    /// Steps between two ticks of an application.
    pub period: u64,
    /// Largest message delay in steps (delays are 1..=max_delay).
    pub max_delay: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 0,
            ticks: 20,
            fault_at: None,
            at_coverage: 1.0,
            apps: BTreeMap::new(),
            period: 4,
            max_delay: 6,
        }
    }
}

/// A trace line (`--trace`): a JSON object with at least `kind` and `step`.
pub type TraceEvent = serde_json::Value;

/// A message the world received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct External {
    /// The step it was sent in.
    pub step: u64,
    /// The instance whose external port sent it (a shadow that took over
    /// sends for its twin).
    pub process: String,
    /// The external port.
    pub port: String,
    /// What it says.
    pub payload: Payload,
}

/// The content of an external message, as the world sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    /// `report` for every simulated application.
    pub kind: super::apps::MsgKind,
    /// For P2P, the client that answered; otherwise the reporter.
    pub src: String,
    /// The reporting instance.
    pub dst: String,
    /// Request or round number.
    pub id: u64,
    /// The reported value.
    pub body: u64,
}

/// One process's figures at the end of a run.
#[derive(Debug, Clone)]
pub struct ProcessOutcome {
    /// Instance id or `<instance>~shadow`.
    pub name: String,
    /// Its role (`active` for everyone in a reference run).
    pub role: Role,
    /// What the runtime counted.
    pub stats: ProtocolStats,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Whether this is the old system alone.
    pub reference: bool,
    /// The trace, in order.
    pub trace: Vec<TraceEvent>,
    /// The messages the world received, in order (not those a streamed run
    /// already handed on).
    pub externals: Vec<External>,
    /// How many messages the world received.
    pub external_count: u64,
    /// Per process, in document order.
    pub processes: Vec<ProcessOutcome>,
    /// Recoveries carried out (0 or 1: after one, G_low is gone).
    pub recoveries: u64,
    /// Rollbacks that were not to the smallest-index checkpoint of the
    /// process's own array, or a second rollback in one recovery.
    pub cascade_violations: u64,
    /// Times a checkpoint or log entry at or below a validated counter
    /// survived a "passed AT".
    pub reclaim_violations: u64,
    /// Every event was handled (the run did not hit the step limit).
    pub completed: bool,
    /// The last step.
    pub end_step: u64,
}

enum Rt {
    Low(LowProcess<SimApp>),
    Act(ActiveProcess<SimApp>),
    Sdw(ShadowProcess<SimApp>),
}

impl Rt {
    fn app(&self) -> &SimApp {
        match self {
            Rt::Low(x) => x.app(),
            Rt::Act(x) => x.app(),
            Rt::Sdw(x) => x.app(),
        }
    }
    fn stats(&self) -> &ProtocolStats {
        match self {
            Rt::Low(x) => x.stats(),
            Rt::Act(x) => x.stats(),
            Rt::Sdw(x) => x.stats(),
        }
    }
}

struct SLink {
    channel: usize,
    dir: u64,
    peer: usize,
    peer_link: usize,
    shadow: Option<usize>,
}

struct Proc {
    name: String,
    instance: String,
    role: Role,
    links: Vec<SLink>,
    rt: Rt,
    alive: bool,
    tick_pending: bool,
    phase: u64,
    notify: Vec<usize>,
}

enum Ev {
    Tick(usize),
    Deliver { to: usize, link: usize, from: usize, from_link: usize, env: Envelope<SimMsg> },
    Notify { to: usize, v: u64, ext: u64 },
}

struct SimAt {
    rng: Rng,
    coverage: f64,
}

impl AcceptanceTest<SimMsg> for SimAt {
    fn accept(&mut self, msg: &SimMsg) -> bool {
        !msg.corrupted || self.rng.next_f64() >= self.coverage
    }
}

struct Engine {
    procs: Vec<Proc>,
    instance_names: Vec<String>,
    heap: BinaryHeap<Reverse<(u64, u64, u64)>>,
    events: HashMap<u64, Ev>,
    serial: u64,
    now: u64,
    clock: Rc<Cell<u64>>,
    at: SimAt,
    last: HashMap<(usize, u64, usize), u64>,
    seed: u64,
    period: u64,
    max_delay: u64,
    validated: u64,
    validated_ext: u64,
    /// External messages the world received from G_low (`ext_mSN_Glow`),
    /// compensated ones included.
    low_ext_sent: u64,
    recovered: bool,
    recoveries: u64,
    trace: Vec<TraceEvent>,
    externals: Vec<External>,
    cascade_violations: u64,
    reclaim_violations: u64,
    low_procs: Vec<usize>,
    shadow_procs: Vec<usize>,
}

/// One end of a channel at an instance.
struct InstLink {
    channel: usize,
    dir: u64,
    peer: usize,
    own_port: String,
    peer_port: String,
    peer_link: usize,
}

/// Runs one scenario: the upgraded system under the MDCD protocol, or with
/// `reference` the old system alone (every instance the old version, no
/// shadows, no protocol activity). `Err` when the role document does not
/// describe the deployment. The outcome holds the whole trace: for long
/// runs, [`simulate_streamed`] keeps memory independent of their length.
pub fn simulate(
    ddd: &Deployment,
    roles: &RoleDocument,
    sc: &Scenario,
    reference: bool,
) -> Result<RunOutcome, Vec<String>> {
    let mut run = Run::new(ddd, roles, sc, reference)?;
    run.advance(u64::MAX);
    Ok(run.outcome())
}

/// Steps of simulated time a streamed run advances between two drains of
/// its trace and external messages.
const CHUNK: u64 = 256;

/// Why [`simulate_streamed`] stopped.
#[derive(Debug)]
pub enum StreamError {
    /// The role document does not describe the deployment.
    Mismatch(Vec<String>),
    /// The trace could not be written.
    Io(std::io::Error),
}

/// Runs a scenario and its reference run side by side and reports on them
/// ([`super::compare`]'s report), in memory independent of the number of
/// steps: both runs advance in chunks of simulated time, each chunk's trace
/// goes to `trace` (the upgraded run's, or with `reference_only` the old
/// system's) and its external messages are compared port by port as they
/// come, keeping only what one run has sent and the other not yet.
pub fn simulate_streamed(
    ddd: &Deployment,
    roles: &RoleDocument,
    sc: &Scenario,
    reference_only: bool,
    trace: &mut dyn FnMut(&TraceEvent) -> std::io::Result<()>,
) -> Result<super::Report, StreamError> {
    let mut reference = Run::new(ddd, roles, sc, true).map_err(StreamError::Mismatch)?;
    let mut run =
        if reference_only { None } else { Some(Run::new(ddd, roles, sc, false).map_err(StreamError::Mismatch)?) };
    let mut cmp = super::report::Comparison::default();
    let mut until = 0u64;
    loop {
        until = until.saturating_add(CHUNK);
        let ref_done = reference.advance(until);
        let run_done = run.as_mut().is_none_or(|r| r.advance(until));
        for ev in reference.e.externals.drain(..) {
            if reference_only {
                cmp.push(true, ev.clone());
            }
            cmp.push(false, ev);
        }
        let traced = match run.as_mut() {
            Some(r) => {
                for ev in r.e.externals.drain(..) {
                    cmp.push(true, ev);
                }
                reference.e.trace.clear();
                &mut r.e.trace
            }
            None => &mut reference.e.trace,
        };
        for ev in traced.drain(..) {
            trace(&ev).map_err(StreamError::Io)?;
        }
        if ref_done && run_done {
            break;
        }
    }
    let reference = reference.outcome();
    let run = match run {
        Some(r) => r.outcome(),
        None => reference.clone(),
    };
    Ok(super::report::report(&run, &reference, &cmp, sc))
}

/// A run in progress: [`Run::advance`] it through simulated time, take its
/// trace and external messages as they come, and [`Run::outcome`] at the end.
pub struct Run {
    e: Engine,
    reference: bool,
    limit: u64,
    finished: Option<bool>,
    external_count: u64,
}

impl Run {
    /// Sets up a run (see [`simulate`]).
    pub fn new(ddd: &Deployment, roles: &RoleDocument, sc: &Scenario, reference: bool) -> Result<Run, Vec<String>> {
        build(ddd, roles, sc, reference)
    }

    /// Handles every event up to step `until`; true when the run is over
    /// (every event handled, or the step limit hit).
    pub fn advance(&mut self, until: u64) -> bool {
        if self.finished.is_some() {
            return true;
        }
        let before = self.e.externals.len();
        let r = self.e.run(self.limit, until);
        self.external_count += (self.e.externals.len() - before) as u64;
        if r.is_some() {
            self.finished = r;
        }
        self.finished.is_some()
    }

    /// The trace events and external messages since the last call.
    pub fn drain(&mut self) -> (Vec<TraceEvent>, Vec<External>) {
        (std::mem::take(&mut self.e.trace), std::mem::take(&mut self.e.externals))
    }

    /// The outcome (with whatever trace and external messages were not
    /// drained).
    pub fn outcome(self) -> RunOutcome {
        let e = self.e;
        let mut out = RunOutcome {
            reference: self.reference,
            trace: e.trace,
            externals: e.externals,
            external_count: self.external_count,
            processes: Vec::new(),
            recoveries: e.recoveries,
            cascade_violations: e.cascade_violations,
            reclaim_violations: e.reclaim_violations,
            completed: self.finished == Some(true),
            end_step: e.now,
        };
        for p in &e.procs {
            out.reclaim_violations += p.rt.stats().reclaim_violations;
            out.processes.push(ProcessOutcome { name: p.name.clone(), role: p.role, stats: p.rt.stats().clone() });
        }
        out
    }
}

fn build(ddd: &Deployment, roles: &RoleDocument, sc: &Scenario, reference: bool) -> Result<Run, Vec<String>> {
    check_match(ddd, roles)?;
    let n = ddd.instances.len();
    let inst_idx: HashMap<&str, usize> = ddd.instances.iter().enumerate().map(|(i, x)| (x.id.as_str(), i)).collect();
    // Links per instance, in DDD channel order.
    let mut links: Vec<Vec<InstLink>> = (0..n).map(|_| Vec::new()).collect();
    for (ci, ch) in ddd.channels.iter().enumerate() {
        let (Some(&a), Some(&b)) = (inst_idx.get(ch.from.instance.as_str()), inst_idx.get(ch.to.instance.as_str()))
        else {
            continue;
        };
        let la = links[a].len();
        let lb = links[b].len() + usize::from(a == b);
        links[a].push(InstLink {
            channel: ci,
            dir: 0,
            peer: b,
            own_port: ch.from.port.clone(),
            peer_port: ch.to.port.clone(),
            peer_link: lb,
        });
        links[b].push(InstLink {
            channel: ci,
            dir: 1,
            peer: a,
            own_port: ch.to.port.clone(),
            peer_port: ch.from.port.clone(),
            peer_link: la,
        });
    }
    let kind_of: Vec<AppKind> =
        ddd.instances.iter().map(|i| sc.apps.get(&i.component).copied().unwrap_or(AppKind::Counter)).collect();
    let role_of: HashMap<&str, Role> = roles.processes.iter().map(|p| (p.instance.as_str(), p.role)).collect();
    let inst_role: Vec<Role> =
        ddd.instances.iter().map(|i| role_of.get(i.id.as_str()).copied().unwrap_or(Role::Active)).collect();
    // External ports: the role document's; with none declared anywhere,
    // every instance of a component that is not upgraded reports on a
    // virtual port `world` (docs/mdcd.md).
    let any_external = roles.processes.iter().any(|p| !p.external_ports.is_empty());
    let external: Vec<Vec<String>> = ddd
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            if any_external {
                roles
                    .processes
                    .iter()
                    .find(|p| p.instance == inst.id)
                    .map(|p| p.external_ports.clone())
                    .unwrap_or_default()
            } else if inst_role[i] == Role::Active {
                vec!["world".to_string()]
            } else {
                Vec::new()
            }
        })
        .collect();
    let changes: HashMap<&str, &Vec<String>> =
        roles.upgrades.iter().map(|u| (u.component.as_str(), &u.changes)).collect();
    let clients: Vec<usize> = (0..n).filter(|&i| kind_of[i] == AppKind::Client).collect();
    let routes = routes(&links, &kind_of);
    let clock = Rc::new(Cell::new(0u64));
    let app_cfg = |i: usize, new_version: bool| -> Rc<AppCfg> {
        let comp = ddd.instances[i].component.as_str();
        let changed = changes.get(comp);
        let out_link =
            links[i].iter().position(|l| l.own_port == "out").or(if links[i].is_empty() { None } else { Some(0) });
        Rc::new(AppCfg {
            me: i,
            kind: kind_of[i],
            seed: sc.seed,
            ticks: sc.ticks,
            links: links[i]
                .iter()
                .map(|l| LinkCfg { changed: new_version && changed.is_some_and(|c| c.contains(&l.own_port)) })
                .collect(),
            external: external[i].clone(),
            clients: clients.clone(),
            routes: routes[i].clone(),
            out_link,
        })
    };
    let period = sc.period.max(1);
    let phase = |i: usize| mix(&[sc.seed, i as u64, 0x7469_636b]) % period;
    let mut procs: Vec<Proc> = Vec::new();
    let mut low_procs = Vec::new();
    let mut shadow_procs = Vec::new();
    if reference {
        for (i, inst) in ddd.instances.iter().enumerate() {
            let app = SimApp::new(app_cfg(i, false), false, None, clock.clone());
            let rl = links[i].iter().map(|_| Link { peer_role: Role::Active }).collect();
            procs.push(Proc {
                name: inst.id.clone(),
                instance: inst.id.clone(),
                role: Role::Active,
                links: links[i]
                    .iter()
                    .map(|l| SLink {
                        channel: l.channel,
                        dir: l.dir,
                        peer: l.peer,
                        peer_link: l.peer_link,
                        shadow: None,
                    })
                    .collect(),
                rt: Rt::Act(ActiveProcess::new(app, rl)),
                alive: true,
                tick_pending: false,
                phase: phase(i),
                notify: Vec::new(),
            });
        }
    } else {
        let twin_of: HashMap<&str, &str> =
            roles.groups.shadow.iter().map(|s| (s.instance.as_str(), s.shadows.as_str())).collect();
        let proc_idx: HashMap<&str, usize> =
            roles.processes.iter().enumerate().map(|(k, p)| (p.instance.as_str(), k)).collect();
        let shadow_of: HashMap<usize, usize> = roles
            .groups
            .shadow
            .iter()
            .filter_map(|s| Some((*inst_idx.get(s.shadows.as_str())?, *proc_idx.get(s.instance.as_str())?)))
            .collect();
        let inst_proc: Vec<usize> =
            ddd.instances.iter().map(|x| proc_idx.get(x.id.as_str()).copied().unwrap_or(0)).collect();
        for (k, p) in roles.processes.iter().enumerate() {
            let twin = match p.role {
                Role::Shadow => twin_of.get(p.instance.as_str()).copied().unwrap_or(""),
                _ => p.instance.as_str(),
            };
            let Some(&i) = inst_idx.get(twin) else {
                return Err(vec![format!("process `{}` is not an instance of the deployment", p.instance)]);
            };
            let mut slinks = Vec::new();
            let mut rlinks = Vec::new();
            for l in &links[i] {
                let peer_low = inst_role[l.peer] == Role::Low;
                let (peer, shadow, peer_role) = match p.role {
                    Role::Shadow if peer_low => {
                        (shadow_of.get(&l.peer).copied().unwrap_or(inst_proc[l.peer]), None, Role::Shadow)
                    }
                    Role::Shadow => (inst_proc[l.peer], None, Role::Active),
                    Role::Active if peer_low => (inst_proc[l.peer], shadow_of.get(&l.peer).copied(), Role::Low),
                    _ => (inst_proc[l.peer], None, inst_role[l.peer]),
                };
                slinks.push(SLink { channel: l.channel, dir: l.dir, peer, peer_link: l.peer_link, shadow });
                rlinks.push(Link { peer_role });
            }
            let rt = match p.role {
                Role::Low => {
                    low_procs.push(k);
                    Rt::Low(LowProcess::new(SimApp::new(app_cfg(i, true), true, sc.fault_at, clock.clone()), rlinks))
                }
                Role::Shadow => {
                    shadow_procs.push(k);
                    Rt::Sdw(ShadowProcess::new(SimApp::new(app_cfg(i, false), false, None, clock.clone()), rlinks))
                }
                Role::Active => {
                    Rt::Act(ActiveProcess::new(SimApp::new(app_cfg(i, false), false, None, clock.clone()), rlinks))
                }
            };
            procs.push(Proc {
                name: p.instance.clone(),
                instance: twin.to_string(),
                role: p.role,
                links: slinks,
                rt,
                alive: true,
                tick_pending: false,
                phase: phase(i),
                notify: p.notify.iter().filter_map(|x| proc_idx.get(x.as_str()).copied()).collect(),
            });
        }
    }
    let mut e = Engine {
        procs,
        instance_names: ddd.instances.iter().map(|x| x.id.clone()).collect(),
        heap: BinaryHeap::new(),
        events: HashMap::new(),
        serial: 0,
        now: 0,
        clock,
        at: SimAt { rng: Rng::new(mix(&[sc.seed, 0x6174])), coverage: sc.at_coverage },
        last: HashMap::new(),
        seed: sc.seed,
        period,
        max_delay: sc.max_delay.max(1),
        validated: 0,
        validated_ext: 0,
        low_ext_sent: 0,
        recovered: false,
        recoveries: 0,
        trace: Vec::new(),
        externals: Vec::new(),
        cascade_violations: 0,
        reclaim_violations: 0,
        low_procs,
        shadow_procs,
    };
    for p in 0..e.procs.len() {
        e.schedule_tick(p);
    }
    let limit = sc.ticks.saturating_add(10).saturating_mul(period).saturating_mul(50).saturating_add(100_000);
    Ok(Run { e, reference, limit, finished: None, external_count: 0 })
}

/// The role document must describe this deployment: the same instances,
/// each once in G_low or G_act, and every shadow's twin in G_low.
fn check_match(ddd: &Deployment, roles: &RoleDocument) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let inst: HashSet<&str> = ddd.instances.iter().map(|i| i.id.as_str()).collect();
    let mut seen = HashSet::new();
    for m in roles.groups.low.iter().chain(&roles.groups.active) {
        if !inst.contains(m.instance.as_str()) {
            errs.push(format!("the role document's `{}` is not an instance of the deployment", m.instance));
        }
        seen.insert(m.instance.as_str());
    }
    for i in &ddd.instances {
        if !seen.contains(i.id.as_str()) {
            errs.push(format!("instance `{}` of the deployment has no role in the role document", i.id));
        }
        if !roles.processes.iter().any(|p| p.instance == i.id) {
            errs.push(format!("instance `{}` of the deployment is not among the role document's processes", i.id));
        }
    }
    let low: HashSet<&str> = roles.groups.low.iter().map(|m| m.instance.as_str()).collect();
    for s in &roles.groups.shadow {
        if !low.contains(s.shadows.as_str()) {
            errs.push(format!("shadow `{}` shadows `{}`, which is not in G_low", s.instance, s.shadows));
        }
    }
    for p in &roles.processes {
        if p.role != Role::Shadow && !inst.contains(p.instance.as_str()) {
            errs.push(format!("process `{}` is not an instance of the deployment", p.instance));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Routing for `router` applications: for each router, the link towards
/// each client (direct when attached, else the first hop on a shortest
/// path through routers, ties broken by link order).
fn routes(links: &[Vec<InstLink>], kind: &[AppKind]) -> Vec<HashMap<usize, usize>> {
    let n = links.len();
    let mut out = vec![HashMap::new(); n];
    for r in 0..n {
        if kind[r] != AppKind::Router {
            continue;
        }
        // BFS over routers, remembering the first hop (a link of r).
        let mut first: HashMap<usize, usize> = HashMap::new();
        let mut order = vec![r];
        let mut q = VecDeque::from([r]);
        let mut seen = HashSet::from([r]);
        while let Some(x) = q.pop_front() {
            let mut ls: Vec<(usize, &InstLink)> = links[x].iter().enumerate().collect();
            ls.sort_by_key(|(_, l)| l.own_port != "rout");
            for (li, l) in ls {
                if kind[l.peer] == AppKind::Router && seen.insert(l.peer) {
                    let hop = if x == r { li } else { first.get(&x).copied().unwrap_or(li) };
                    first.insert(l.peer, hop);
                    order.push(l.peer);
                    q.push_back(l.peer);
                }
            }
        }
        for x in order {
            let mut ls: Vec<(usize, &InstLink)> = links[x].iter().enumerate().collect();
            ls.sort_by_key(|(_, l)| l.peer_port != "in");
            for (li, l) in ls {
                if kind[l.peer] == AppKind::Client && !out[r].contains_key(&l.peer) {
                    let hop = if x == r { li } else { first.get(&x).copied().unwrap_or(li) };
                    out[r].insert(l.peer, hop);
                }
            }
        }
    }
    out
}

impl Engine {
    fn push(&mut self, t: u64, key: u64, ev: Ev) {
        self.serial += 1;
        self.heap.push(Reverse((t, key, self.serial)));
        self.events.insert(self.serial, ev);
    }

    fn schedule_tick(&mut self, p: usize) {
        let pr = &self.procs[p];
        if !pr.alive || pr.tick_pending || !pr.rt.app().wants_tick() {
            return;
        }
        let from = self.now + 1;
        let t = from + (pr.phase + self.period - from % self.period) % self.period;
        let key = mix(&[self.seed, pr.phase, t, 0x7469]);
        self.procs[p].tick_pending = true;
        self.push(t, key, Ev::Tick(p));
    }

    /// Handles events up to step `until`: `Some(true)` when none is left,
    /// `Some(false)` when the next is past `limit`, `None` when the next is
    /// past `until`.
    fn run(&mut self, limit: u64, until: u64) -> Option<bool> {
        while let Some(Reverse((t, key, s))) = self.heap.pop() {
            let Some(ev) = self.events.remove(&s) else { continue };
            if t > limit {
                return Some(false);
            }
            if t > until {
                self.heap.push(Reverse((t, key, s)));
                self.events.insert(s, ev);
                return None;
            }
            self.now = t;
            self.clock.set(t);
            match ev {
                Ev::Tick(p) => {
                    self.procs[p].tick_pending = false;
                    if self.procs[p].alive {
                        let effects = match &mut self.procs[p].rt {
                            Rt::Low(x) => x.on_tick(&mut self.at),
                            Rt::Act(x) => x.on_tick(&mut self.at),
                            Rt::Sdw(x) => x.on_tick(),
                        };
                        self.apply(p, effects);
                    }
                    self.schedule_tick(p);
                }
                Ev::Deliver { to, link, env, .. } => {
                    if self.procs[to].alive {
                        let effects = match &mut self.procs[to].rt {
                            Rt::Low(x) => x.on_message(link, env, &mut self.at),
                            Rt::Act(x) => x.on_message(link, env, &mut self.at),
                            Rt::Sdw(x) => x.on_message(link, env, &mut self.at),
                        };
                        self.apply(to, effects);
                        self.schedule_tick(to);
                    }
                }
                Ev::Notify { to, v, ext } => {
                    if self.procs[to].alive {
                        self.passed_at(to, v, ext);
                    }
                }
            }
        }
        Some(true)
    }

    /// A "passed AT" with counter `v` reaches `p`; afterwards nothing at or
    /// below `v` may remain in its checkpoint array or logs.
    fn passed_at(&mut self, p: usize, v: u64, ext: u64) {
        let (ck, lg, el) = match &mut self.procs[p].rt {
            Rt::Act(x) => {
                x.on_passed_at(v);
                (x.checkpoint_indices(), x.log_indices(), Vec::new())
            }
            Rt::Sdw(x) => {
                x.on_passed_at(v, ext);
                (x.checkpoint_indices(), x.log_indices(), x.ext_log_indices())
            }
            Rt::Low(_) => return,
        };
        if ck.iter().chain(&lg).any(|&i| i <= v) || el.iter().any(|&i| i <= ext) {
            self.reclaim_violations += 1;
        }
    }

    fn send(&mut self, p: usize, link: usize, env: Envelope<SimMsg>) {
        let (channel, dir, peer, peer_link, shadow) = {
            let l = &self.procs[p].links[link];
            (l.channel, l.dir, l.peer, l.peer_link, l.shadow)
        };
        let key = mix(&[self.seed, channel as u64, dir, env.seq]);
        let delay = 1 + key % self.max_delay;
        for dest in [Some(peer), shadow].into_iter().flatten() {
            if !self.procs[dest].alive {
                continue;
            }
            let last = self.last.entry((channel, dir, dest)).or_insert(0);
            let t = self.now.saturating_add(delay).max(last.saturating_add(1));
            *last = t;
            self.push(t, key, Ev::Deliver { to: dest, link: peer_link, from: p, from_link: link, env: env.clone() });
        }
    }

    fn apply(&mut self, p: usize, effects: Vec<Effect<SimMsg>>) {
        for eff in effects {
            match eff {
                Effect::Send { link, env } => self.send(p, link, env),
                Effect::External { port, msg } => {
                    let payload = Payload {
                        kind: msg.kind,
                        src: self.instance_names.get(msg.src).cloned().unwrap_or_default(),
                        dst: self.instance_names.get(msg.dst).cloned().unwrap_or_default(),
                        id: msg.id,
                        body: msg.body,
                    };
                    let process = self.procs[p].instance.clone();
                    let mut ev = json!({"kind": "external", "step": self.now, "process": process, "port": port, "payload": payload});
                    if self.procs[p].name != process {
                        ev["via"] = json!(self.procs[p].name);
                    }
                    self.trace.push(ev);
                    self.externals.push(External { step: self.now, process, port, payload });
                }
                Effect::BroadcastCounter { group, value } => {
                    if group == CounterGroup::LowExt {
                        self.low_ext_sent = self.low_ext_sent.max(value);
                    }
                    let members = match group {
                        CounterGroup::Low | CounterGroup::LowExt => self.low_procs.clone(),
                        CounterGroup::Shadow | CounterGroup::ShadowExt => self.shadow_procs.clone(),
                    };
                    for q in members {
                        if q == p || !self.procs[q].alive {
                            continue;
                        }
                        match (&mut self.procs[q].rt, group) {
                            (Rt::Low(x), CounterGroup::Low) => x.on_counter(value),
                            (Rt::Low(x), CounterGroup::LowExt) => x.on_ext_counter(value),
                            (Rt::Sdw(x), CounterGroup::Shadow) => x.on_counter(value),
                            (Rt::Sdw(x), CounterGroup::ShadowExt) => x.on_ext_counter(value),
                            _ => {}
                        }
                    }
                }
                Effect::PassedAt { value, ext } => {
                    // One shared slot: the stamp is the paper's scalar.
                    let value = value.scalar();
                    self.validated = self.validated.max(value);
                    self.validated_ext = self.validated_ext.max(ext);
                    self.trace.push(
                        json!({"kind": "passed_at", "step": self.now, "process": self.procs[p].name, "counter": value}),
                    );
                    for q in self.procs[p].notify.clone() {
                        if self.procs[q].alive {
                            let key = mix(&[self.seed, p as u64, q as u64, value, 0x6e]);
                            let t = self.now.saturating_add(1 + key % self.max_delay);
                            self.push(t, key, Ev::Notify { to: q, v: value, ext });
                        }
                    }
                }
                Effect::StartRecovery => {
                    self.trace.push(json!({"kind": "at_failed", "step": self.now, "process": self.procs[p].name}));
                    self.recover();
                    return;
                }
            }
        }
    }

    /// error_recovery({G_act, G_sdw, G_low}).
    fn recover(&mut self) {
        if self.recovered {
            return;
        }
        self.recovered = true;
        self.recoveries += 1;
        // The external line is what the world received from G_low: every
        // validated message, and compensated ones sent without validation.
        let (v, v_ext) = (self.validated, self.validated_ext.max(self.low_ext_sent));
        self.trace.push(json!({"kind": "recovery", "step": self.now, "validated": v, "validated_external": v_ext}));
        for &l in &self.low_procs {
            self.procs[l].alive = false;
        }
        // Messages to G_low die with it, and so do its messages that no AT
        // validated (counter above `v`; the shadows send them again). Its
        // validated messages still in transit are delivered: no shadow
        // re-sends them (they are at or below iVR_low). Notifications in
        // transit are part of the recovery line (`v`).
        let procs = &self.procs;
        self.events.retain(|_, ev| match ev {
            Ev::Deliver { to, from, env, .. } => procs[*to].alive && (procs[*from].alive || env.counter.scalar() <= v),
            Ev::Notify { .. } => false,
            Ev::Tick(p) => procs[*p].alive,
        });
        let mut recs = Vec::new();
        for p in 0..self.procs.len() {
            let before = match &self.procs[p].rt {
                Rt::Act(x) => x.checkpoint_indices(),
                Rt::Sdw(x) => x.checkpoint_indices(),
                Rt::Low(_) => continue,
            };
            let rollbacks_before = self.procs[p].rt.stats().rollbacks;
            let rec = match &mut self.procs[p].rt {
                Rt::Act(x) => x.recover(v, &mut self.at),
                Rt::Sdw(x) => x.recover(v, v_ext),
                Rt::Low(_) => continue,
            };
            if rec.rolled_back {
                let smallest = before.iter().copied().filter(|&i| i > v).min();
                let rollbacks = self.procs[p].rt.stats().rollbacks - rollbacks_before;
                let index = rec.checkpoint_index.as_ref().map(|c| c.scalar());
                if index.is_none() || index != smallest || rollbacks != 1 {
                    self.cascade_violations += 1;
                }
                self.trace.push(json!({"kind": "rollback", "step": self.now, "process": self.procs[p].name,
                    "checkpoint": index, "distance": rec.distance}));
            }
            recs.push((p, rec));
        }
        // Messages a rollback undid (sent after the checkpoint) are dropped:
        // the replay sends them again.
        for (p, rec) in &recs {
            if rec.rolled_back {
                let (p, seqs) = (*p, &rec.send_seq);
                self.events.retain(|_, ev| match ev {
                    Ev::Deliver { from, from_link, env, .. } => !(*from == p && env.seq >= seqs[*from_link]),
                    _ => true,
                });
            }
        }
        for (p, rec) in recs {
            self.apply(p, rec.effects);
        }
        for p in 0..self.procs.len() {
            self.schedule_tick(p);
        }
    }
}
