//! Guarded upgrades (docs/mdcd.md, "A guarded upgrade of the running
//! example"; docs/manager.md): `POST /upgrade` with goal text that adds
//! `upgrade` declarations to the running goal starts a guarded period on
//! the running deployment, as the role document (`deladas roles`) says:
//! the new versions run as G_low, the old ones as shadows beside them
//! (`samehost`/`otherhost`), the rest active, every process told its role,
//! links and peers in its assignment (`deladas::enact::mdcd`). The manager
//! runs the recovery coordinator and the shared counters of the runtime
//! (`deladas::mdcd::runtime`) on its own address.
//!
//! The guarded period ends in one of two ways, each an event:
//! - `recovered`: an acceptance test failed; the coordinator carried out the
//!   recovery (the shadows took over), then ended the guarded period; the
//!   new version's processes are stopped and the old version serves on;
//! - `promoted`: `guard_seconds` passed without a failure; the new version
//!   is promoted and the shadows are stopped (retired).
//!
//! A host of the upgrade that fails during the guarded period ends it too:
//! `upgrade-aborted` ([`on_hosts_failed`]), old versions serve plainly, and
//! the failure is handled as without an upgrade.
//!
//! `GET /upgrade` shows the state. The upgrade is part of the manager's
//! durable state ([`Record`], in the state store, redb or etcd): a restarted
//! (or newly elected) manager resumes it — the same processes and specs,
//! the coordinator and the shared counters again on their addresses, the
//! guard timer going on from the upgrade's start (wall clock).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use deladas::diagnostics::Code;
use deladas::enact::mdcd::{specs, Placed, Services};
use deladas::enact::protocol::{AssignedInstance, Assignment};
use deladas::enact::RunSpec;
use deladas::mdcd::runtime::{Coordinator, CounterServer, Role, Transport};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::engine::{self, ApiError};
use super::{lock, parse_body, Shared};

/// The name of the coordinator in the protocol.
pub const COORDINATOR: &str = "coordinator";
/// The guarded period when the request gives none.
pub const DEFAULT_GUARD: Duration = Duration::from_secs(30);
/// Before this, the applications of a guarded upgrade send nothing of their
/// own (every process has been restarted in its role by then).
const START_DELAY: Duration = Duration::from_secs(4);

/// Where a guarded upgrade is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The new versions run under guard.
    Guarded,
    /// An AT failed; the shadows took over and serve; the new versions are stopped.
    Recovered,
    /// The guarded period ended without a failure: the new versions serve; the shadows are stopped.
    Promoted,
    /// The coordinator could not complete a recovery or the end of the period.
    Failed,
    /// A host of the upgrade failed during the guarded period: the guard was
    /// given up, every instance runs its old version as the deployment says
    /// (no new version, no shadows), and the manager's failure handling
    /// (re-solve, migration) goes on as without an upgrade.
    Aborted,
}

impl Phase {
    fn parse(s: &str) -> Option<Phase> {
        [Phase::Guarded, Phase::Recovered, Phase::Promoted, Phase::Failed, Phase::Aborted]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    fn as_str(self) -> &'static str {
        match self {
            Phase::Guarded => "guarded",
            Phase::Recovered => "recovered",
            Phase::Promoted => "promoted",
            Phase::Failed => "failed",
            Phase::Aborted => "aborted",
        }
    }
}

/// A guarded upgrade in progress or ended.
pub struct Upgrade {
    pub phase: Phase,
    /// Every process of the upgrade, by name.
    pub procs: BTreeMap<String, Placed>,
    /// The program each process runs.
    pub commands: BTreeMap<String, Vec<String>>,
    pub guard: Duration,
    /// When it started (ms since the Unix epoch; the guard timer survives a
    /// restart of the manager).
    pub started_unix_ms: u64,
    pub recoveries: u64,
    /// The shared counters, alive as long as the manager (a shadow that took
    /// over keeps counting on them); `None` when a resumed manager could
    /// not listen on their address again.
    _counters: Option<CounterServer>,
    stop: Arc<AtomicBool>,
}

/// What survives a restart of the manager (`Durable::upgrade` in the state
/// store): everything but the threads and sockets, which [`resume`] starts
/// again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// [`Phase`]'s spelling (`guarded`, `recovered`, `promoted`, `failed`).
    pub phase: String,
    pub procs: BTreeMap<String, Placed>,
    pub commands: BTreeMap<String, Vec<String>>,
    pub guard_seconds: f64,
    pub started_unix_ms: u64,
    pub recoveries: u64,
}

impl Upgrade {
    /// What goes into the state store.
    pub fn record(&self) -> Record {
        Record {
            phase: self.phase.as_str().to_string(),
            procs: self.procs.clone(),
            commands: self.commands.clone(),
            guard_seconds: self.guard.as_secs_f64(),
            started_unix_ms: self.started_unix_ms,
            recoveries: self.recoveries,
        }
    }

    /// Time since the upgrade started (wall clock).
    fn elapsed(&self) -> Duration {
        Duration::from_millis(unix_ms().saturating_sub(self.started_unix_ms))
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_millis() as u64).unwrap_or(0)
}

impl Drop for Upgrade {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The assignments of a guarded upgrade: every process of the upgrade gets
/// its MDCD document and its version's program; shadows are added beside
/// their twins (with the twin's wiring) until promotion; after a recovery
/// the new versions' processes are left out.
pub fn overlay(asg: &mut BTreeMap<String, Assignment>, u: &Upgrade) {
    if u.phase == Phase::Aborted {
        // The deployment as it is: every instance its old version, plainly.
        return;
    }
    let Some(proto) = asg.values().next().cloned() else { return };
    let mut twins: BTreeMap<String, AssignedInstance> = BTreeMap::new();
    for a in asg.values_mut() {
        for i in &mut a.instances {
            if let (Some(p), Some(cmd)) = (u.procs.get(&i.id), u.commands.get(&i.id)) {
                i.mdcd = Some(p.spec.clone());
                i.command = cmd.clone();
                twins.insert(i.id.clone(), i.clone());
            }
        }
        if u.phase == Phase::Recovered {
            a.instances.retain(|i| u.procs.get(&i.id).is_none_or(|p| p.spec.role != Role::Low));
        }
    }
    if u.phase == Phase::Promoted {
        return;
    }
    for (name, p) in &u.procs {
        if p.spec.role != Role::Shadow {
            continue;
        }
        let (Some(twin), Some(cmd)) = (twins.get(&p.spec.instance), u.commands.get(name)) else { continue };
        let mut wiring = twin.wiring.clone();
        wiring.instance = name.clone();
        wiring.host = p.host.clone();
        let entry = asg.entry(p.host.clone()).or_insert_with(|| Assignment {
            host: p.host.clone(),
            instances: vec![],
            ..proto.clone()
        });
        entry.instances.push(AssignedInstance {
            id: name.clone(),
            component: p.component.clone(),
            command: cmd.clone(),
            wiring,
            mdcd: Some(p.spec.clone()),
        });
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeReq {
    /// The goal with its `upgrade` declarations (the running goal plus them).
    constraints: String,
    /// How long the new versions run under guard before promotion.
    guard_seconds: Option<f64>,
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(409, Code::BadRequest, message)
}

/// `GET /upgrade`: the guarded upgrade's state (`null` when none was started).
pub async fn status(State(s): State<Shared>) -> Json<Value> {
    let m = lock(&s);
    Json(match &m.upgrade {
        None => Value::Null,
        Some(u) => {
            let procs: BTreeMap<&String, Value> = u
                .procs
                .iter()
                .map(|(n, p)| (n, json!({"role": p.spec.role.as_str(), "host": p.host, "version": p.spec.version})))
                .collect();
            json!({"phase": u.phase.as_str(), "guard_seconds": u.guard.as_secs_f64(),
                   "elapsed_seconds": u.elapsed().as_secs_f64(), "recoveries": u.recoveries,
                   "processes": procs})
        }
    })
}

/// `POST /upgrade {"constraints": GOAL TEXT, "guard_seconds": S}`: starts a
/// guarded upgrade of the running deployment.
pub async fn start(State(s): State<Shared>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: UpgradeReq = parse_body(&body)?;
    let guard = match req.guard_seconds {
        None => DEFAULT_GUARD,
        Some(g) if g.is_finite() && g > 0.0 && g <= 86_400.0 => Duration::from_secs_f64(g),
        Some(g) => {
            return Err(ApiError::new(
                400,
                Code::BadRequest,
                format!("`guard_seconds` is {g}: give a number of seconds above 0 and at most 86400"),
            ))
        }
    };
    let (goal, xml, addresses, listen) = {
        let m = lock(&s);
        if m.upgrade.as_ref().is_some_and(|u| u.phase == Phase::Guarded) {
            return Err(conflict("a guarded upgrade is in progress (GET /upgrade)"));
        }
        if m.d.plan.is_some() {
            return Err(conflict("a plan is in progress: upgrade once it is enacted"));
        }
        let Some(xml) = m.d.deployment.clone() else {
            return Err(conflict("nothing is deployed yet: there is nothing to upgrade"));
        };
        (m.goal.clone(), xml, m.d.addresses.clone(), m.listen)
    };
    let prepared = tokio::task::spawn_blocking(move || prepare(&goal, &req.constraints, &xml, &addresses, listen))
        .await
        .map_err(|e| ApiError::new(500, Code::Internal, e.to_string()))??;
    let Prepared { procs, commands, coordinator, counters, upgrades } = prepared;
    let stop = Arc::new(AtomicBool::new(false));
    let summary = {
        let mut m = lock(&s);
        if m.upgrade.as_ref().is_some_and(|u| u.phase == Phase::Guarded) || m.d.plan.is_some() {
            return Err(conflict("the manager's state changed meanwhile: try again"));
        }
        let by_role =
            |r: Role| -> Vec<&String> { procs.iter().filter(|(_, p)| p.spec.role == r).map(|(n, _)| n).collect() };
        let summary = json!({"upgrades": upgrades, "low": by_role(Role::Low), "shadow": by_role(Role::Shadow),
                             "active": by_role(Role::Active), "guard_seconds": guard.as_secs_f64(),
                             "coordinator": procs.values().next().map(|p| p.spec.addresses.get(COORDINATOR).cloned())});
        m.upgrade = Some(Upgrade {
            phase: Phase::Guarded,
            procs,
            commands,
            guard,
            started_unix_ms: unix_ms(),
            recoveries: 0,
            _counters: Some(counters),
            stop: stop.clone(),
        });
        m.recompute();
        m.emit("upgrade-started", summary.clone());
        m.commit();
        summary
    };
    let s2 = s.clone();
    std::thread::Builder::new()
        .name("mdcd-coordinator".into())
        .spawn(move || guard_loop(s2, coordinator, guard, stop))
        .map_err(|e| ApiError::new(500, Code::Internal, e.to_string()))?;
    Ok(Json(summary))
}

/// Listens on `addr` again (the address a manager before a restart used),
/// retrying a while in case the port is still held.
fn rebind<T>(what: &str, addr: &str, mut bind: impl FnMut(&str) -> std::io::Result<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match bind(addr) {
            Ok(t) => return Some(t),
            Err(e) if Instant::now() >= deadline => {
                eprintln!("manager: cannot listen on {addr} again for the {what}: {e}");
                return None;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Resumes the guarded upgrade of the state store after a restart (or an
/// election) of the manager: the processes keep their specs (so the agents
/// restart nothing), the shared counters and, while the period is guarded,
/// the coordinator listen again on the addresses the processes know, and
/// the guard timer goes on from the upgrade's start: what is left of it,
/// then promotion. Emits `upgrade-resumed`.
pub fn resume(s: &Shared) {
    let mut m = lock(s);
    resume_in(&mut m, s);
}

/// [`resume`] with the manager already locked (an election installs the
/// state and resumes the upgrade under one lock, so no agent sees the
/// deployment without the upgrade in between).
pub fn resume_in(m: &mut super::Mgr, s: &Shared) {
    if m.upgrade.is_some() {
        return;
    }
    let Some(rec) = m.d.upgrade.clone() else { return };
    let Some(phase) = Phase::parse(&rec.phase) else {
        eprintln!("manager: the stored upgrade has an unknown phase `{}`: not resumed", rec.phase);
        return;
    };
    let any = rec.procs.values().next().map(|p| p.spec.clone());
    let counters = any.as_ref().and_then(|sp| rebind("shared counters", &sp.counters, CounterServer::start));
    let guard = Duration::from_secs_f64(rec.guard_seconds.clamp(0.0, 86_400.0));
    let mut u = Upgrade {
        phase,
        procs: rec.procs,
        commands: rec.commands,
        guard,
        started_unix_ms: rec.started_unix_ms,
        recoveries: rec.recoveries,
        _counters: counters,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let left = guard.saturating_sub(u.elapsed());
    let mut coordinator = None;
    if phase == Phase::Guarded {
        let addr = any.as_ref().and_then(|sp| sp.addresses.get(COORDINATOR).cloned()).unwrap_or_default();
        match rebind("recovery coordinator", &addr, |a| Transport::<Value>::bind(COORDINATOR, a)) {
            Some(net) => coordinator = Some(new_coordinator(net, &u.procs)),
            None => u.phase = Phase::Failed,
        }
    }
    let data = json!({"phase": u.phase.as_str(), "guard_left_seconds": left.as_secs_f64(),
                      "processes": u.procs.len()});
    let failed = phase == Phase::Guarded && u.phase == Phase::Failed;
    let stop = u.stop.clone();
    m.upgrade = Some(u);
    m.recompute();
    m.emit("upgrade-resumed", data);
    if failed {
        m.emit("upgrade-failed", json!({"what": "a restarted manager could not listen on the coordinator's address"}));
    }
    m.commit();
    if let Some(c) = coordinator {
        let s2 = s.clone();
        let spawned =
            std::thread::Builder::new().name("mdcd-coordinator".into()).spawn(move || guard_loop(s2, c, left, stop));
        if let Err(e) = spawned {
            eprintln!("manager: cannot resume the guarded upgrade's coordinator: {e}");
        }
    }
}

/// The coordinator of `procs` on `net`.
fn new_coordinator(mut net: Transport<Value>, procs: &BTreeMap<String, Placed>) -> Coordinator<Value> {
    for (name, a) in &procs.values().next().map(|p| p.spec.addresses.clone()).unwrap_or_default() {
        if let Ok(a) = a.parse() {
            net.set_peer(name, a);
        }
    }
    let members: Vec<String> = procs.keys().cloned().collect();
    let lows: Vec<String> = procs.iter().filter(|(_, p)| p.spec.role == Role::Low).map(|(n, _)| n.clone()).collect();
    Coordinator::new(net, members, lows, Duration::from_secs(15))
}

struct Prepared {
    procs: BTreeMap<String, Placed>,
    commands: BTreeMap<String, Vec<String>>,
    coordinator: Coordinator<Value>,
    counters: CounterServer,
    upgrades: Value,
}

/// Checks the goal text, computes the role document on the running
/// deployment, starts the coordinator and the counters, and gives every
/// process its spec and program.
fn prepare(
    goal: &engine::Goal,
    text: &str,
    xml: &str,
    addresses: &BTreeMap<String, String>,
    listen: SocketAddr,
) -> Result<Prepared, ApiError> {
    let g = engine::load_goal(&goal.path, Some(text))?;
    if g.program.upgrades.is_empty() {
        return Err(ApiError::new(
            422,
            Code::BadRequest,
            "the goal declares no `upgrade`: add e.g. `upgrade Router(code = \"…\", changes = {})` to the running goal",
        ));
    }
    let mut sources = g.sources.clone();
    let (d, world) =
        deladas::eval::deployment_from_text(&g.program, &mut sources, "the running deployment".into(), xml.to_string())
            .map_err(|diags| ApiError::diags(422, &diags, &sources))?;
    let roles = deladas::mdcd::assign(&g.program, &world).map_err(|v| {
        let diags = deladas::mdcd::roles::diagnostics(&g.program, &world, &v);
        ApiError::diags(422, &diags, &sources)
    })?;
    let ip = listen.ip();
    let internal = |what: &str, e: std::io::Error| ApiError::new(500, Code::Internal, format!("{what}: {e}"));
    let counters =
        CounterServer::start(&format!("{ip}:0")).map_err(|e| internal("cannot start the shared counters", e))?;
    let net = Transport::<Value>::bind(COORDINATOR, &format!("{ip}:0"))
        .map_err(|e| internal("cannot start the recovery coordinator", e))?;
    let start_unix_ms = (std::time::SystemTime::now() + START_DELAY)
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_millis() as u64)
        .unwrap_or(0);
    let services = Services {
        coordinator: (COORDINATOR.to_string(), net.local_addr().to_string()),
        counters: counters.addr().to_string(),
        start_unix_ms,
    };
    let address = |h: &str| addresses.get(h).cloned().unwrap_or_else(|| "127.0.0.1".into());
    let procs = specs(&d, &roles, &address, &services).map_err(|e| ApiError::new(500, Code::Internal, e))?;
    // Messages from G_low to G_act are validated per link (docs/mdcd.md,
    // "Several G_low senders"), whatever the number of G_low senders; the
    // external messages of G_low are still numbered by one shared counter
    // (`ext_mSN_Glow`), exact only while a single G_low process has
    // external ports. Refuse what the runtime cannot replay exactly.
    let external: Vec<&str> = procs
        .values()
        .filter(|p| p.spec.role == Role::Low && !p.spec.external_ports.is_empty())
        .map(|p| p.spec.process.as_str())
        .collect();
    if external.len() > 1 {
        return Err(ApiError::new(
            422,
            Code::BadRequest,
            format!(
                "this upgrade puts {} processes with external ports in G_low ({}); the guarded-upgrade runtime \
                 numbers G_low's external messages with one shared counter and replays them exactly only when one \
                 G_low process talks to the world (docs/mdcd.md, \"Limits\"): upgrade them one at a time",
                external.len(),
                external.join(", ")
            ),
        ));
    }
    let mut commands = BTreeMap::new();
    for (name, p) in &procs {
        let Some(c) = d.components.iter().find(|c| c.name == p.component) else { continue };
        let old = RunSpec::of(c).map_err(|e| ApiError::new(422, Code::DddMismatch, e.to_string()))?.command;
        // The new version runs its `code` when that is a program (a local
        // path); otherwise the component's program, told its version.
        let cmd = match p.spec.role {
            Role::Low => {
                let mut newer = c.clone();
                newer.code = p.spec.version.clone();
                newer.attrs.retain(|a| a.name != "command");
                RunSpec::of(&newer).map(|r| r.command).unwrap_or(old)
            }
            _ => old,
        };
        commands.insert(name.clone(), cmd);
    }
    let coordinator = new_coordinator(net, &procs);
    let upgrades = serde_json::to_value(&roles.upgrades).unwrap_or(Value::Null);
    Ok(Prepared { procs, commands, coordinator, counters, upgrades })
}

/// Carries out recoveries until the guarded period ends (a recovery, or
/// `guard` without one), then records how it ended.
fn guard_loop(s: Shared, mut coord: Coordinator<Value>, guard: Duration, stop: Arc<AtomicBool>) {
    let started = Instant::now();
    let end = |phase: Phase, kind: &str, data: Value, recoveries: u64| {
        let mut m = lock(&s);
        match &mut m.upgrade {
            Some(u) if u.phase == Phase::Guarded => {
                u.phase = phase;
                u.recoveries = recoveries;
            }
            // Given up meanwhile (a host failed): nothing more to record.
            _ => return,
        }
        m.recompute();
        m.emit(kind, data);
        m.commit();
    };
    while !stop.load(Ordering::SeqCst) {
        match coord.serve(Duration::from_millis(200)) {
            Ok(true) => {
                // The shadows took over: the old version serves on. The guarded
                // period ends (G_act stops guarding); the new version's
                // processes, stopped by the recovery, are retired.
                let ended = coord.end_guard();
                let data = json!({"recoveries": coord.recoveries(), "epoch": coord.epoch(),
                                  "after_seconds": started.elapsed().as_secs_f64(),
                                  "what": "an acceptance test failed: the shadows took over, the new version is stopped",
                                  "end_guard": ended.as_ref().err().map(|e| e.to_string())});
                return end(Phase::Recovered, "recovered", data, coord.recoveries());
            }
            Ok(false) if started.elapsed() >= guard => {
                return match coord.end_guard() {
                    Ok(()) => end(
                        Phase::Promoted,
                        "promoted",
                        json!({"guard_seconds": guard.as_secs_f64(),
                               "what": "no acceptance test failed: the new version is promoted, the shadows retire"}),
                        0,
                    ),
                    Err(e) => end(Phase::Failed, "upgrade-failed", json!({"error": e.to_string()}), 0),
                };
            }
            Ok(false) => {}
            Err(e) => {
                return end(
                    Phase::Failed,
                    "upgrade-failed",
                    json!({"error": e.to_string(), "what": "the recovery did not complete"}),
                    coord.recoveries(),
                )
            }
        }
    }
}

/// Hosts `failed` were declared failed: a guarded period with a process on
/// one of them is given up (docs/mdcd.md, "A host failure during the
/// guarded period"). The coordinator stops, the new version's processes
/// and the shadows are stopped, every instance runs its old version as the
/// deployment says, and `upgrade-aborted` is recorded; the caller's failure
/// handling (re-solve, migration) then runs as without an upgrade.
pub fn on_hosts_failed(m: &mut super::Mgr, failed: &[String]) {
    let Some(u) = &mut m.upgrade else { return };
    if u.phase != Phase::Guarded {
        return;
    }
    let hit: Vec<&String> = u.procs.iter().filter(|(_, p)| failed.contains(&p.host)).map(|(n, _)| n).collect();
    if hit.is_empty() {
        return;
    }
    let data = json!({"hosts": failed, "processes": hit, "after_seconds": u.elapsed().as_secs_f64(),
                      "what": "a host of the guarded upgrade failed: the guard is given up, the new version and the \
                               shadows are stopped, every instance runs its old version; the failure is handled as \
                               without an upgrade"});
    u.phase = Phase::Aborted;
    u.stop.store(true, Ordering::SeqCst);
    m.recompute();
    m.emit("upgrade-aborted", data);
}
