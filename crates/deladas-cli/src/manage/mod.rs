//! `deladas manage GOAL`: the autonomic manager (the paper's MADME). An HTTP
//! API (figure 8's five methods plus plan, events, health, metrics), a
//! reconcile loop, durable state in one redb file. See docs/manager.md.
//!
//! The cycle: agents heartbeat (`/agent/heartbeat`) and get their host's
//! assignment back; a host silent for the grace period is failed; the goal is
//! re-solved with the library's `resolve` (surviving bindings kept, proven)
//! and the migration plan is enacted in two steps (start and wire new parts;
//! then unwire and stop old ones), each step an epoch agents apply in order.

mod election;
mod engine;
mod etcd;
mod page;
mod store;
mod upgrade;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use deladas::ddd::Deployment;
use deladas::diagnostics::Code;
use deladas::enact::protocol::{Assignment, Epoch, Heartbeat, InstanceState, HEARTBEAT_PATH};
use deladas::enact::Endpoints;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use engine::{ApiError, Goal, Plan, Resolution};

/// The arguments of `deladas manage`.
pub struct ManageArgs {
    pub goal: PathBuf,
    pub listen: String,
    pub store: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    /// A host silent this long is failed.
    pub grace: Duration,
    /// Freeze when more than this share of the live hosts fail within one grace period (and at least two).
    pub freeze_share: f64,
    /// Re-solves at most this often.
    pub min_resolve_interval: Duration,
    /// Deploy the goal by itself once every declared host's agent reports.
    pub auto_deploy: bool,
    /// Hold each plan step at least this long (tests of a manager killed mid-plan).
    pub step_delay: Duration,
    /// With an etcd store: the TTL of the leader's lease.
    pub lease_ttl: Duration,
}

/// Set on SIGTERM/SIGINT: the etcd driver lets go of its lease.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// What survives a restart (one JSON value in the store).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Durable {
    goal_sha256: String,
    generation: u64,
    /// The desired deployment (DDD XML), the target of the plan in progress.
    deployment: Option<String>,
    /// The deployment before it, while a plan is in progress.
    previous: Option<String>,
    endpoints: Endpoints,
    step: u32,
    plan: Option<Plan>,
    /// Why the plan in progress was made.
    plan_reason: Option<String>,
    failed_hosts: BTreeSet<String>,
    addresses: BTreeMap<String, String>,
    frozen: Option<String>,
    /// The last re-solve found no configuration for these failed hosts.
    impossible_for: Option<BTreeSet<String>>,
    next_event: u64,
    /// The guarded upgrade, in progress or ended (upgrade.rs): a restarted
    /// manager resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upgrade: Option<upgrade::Record>,
}

#[derive(Default)]
struct Metrics {
    heartbeats: u64,
    resolves: u64,
    last_detect_ms: f64,
    last_resolve_ms: f64,
    last_plan_ms: f64,
    last_enact_ms: f64,
}

struct Mgr {
    goal: Arc<Goal>,
    d: Durable,
    new_d: Option<Deployment>,
    old_d: Option<Deployment>,
    assignments: BTreeMap<String, Assignment>,
    last_seen: HashMap<String, Instant>,
    observed: HashMap<String, Heartbeat>,
    reported_failed: BTreeSet<String>,
    step_started: Instant,
    last_resolve: Option<Instant>,
    /// When the failure being repaired was detected (for the timings).
    repair_started: Option<(Instant, f64)>,
    pending: Vec<(u64, Value)>,
    store: Box<dyn store::StateStore>,
    /// With an etcd store: leadership, liveness by leases.
    ha: Option<election::Ha>,
    tx: broadcast::Sender<Value>,
    token: Option<String>,
    cfg: Cfg,
    metrics: Metrics,
    started: Instant,
    /// The live page's memory of plans (page.rs).
    page: page::PageState,
    /// Where the API listens (a guarded upgrade's coordinator listens on its address).
    listen: SocketAddr,
    /// A guarded upgrade (upgrade.rs), in progress or ended.
    upgrade: Option<upgrade::Upgrade>,
}

#[derive(Clone)]
struct Cfg {
    grace: Duration,
    freeze_share: f64,
    min_resolve_interval: Duration,
    auto_deploy: bool,
    step_delay: Duration,
}

type Shared = Arc<Mutex<Mgr>>;

fn lock(s: &Shared) -> MutexGuard<'_, Mgr> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

fn parse_ddd(xml: &Option<String>) -> Option<Deployment> {
    xml.as_deref().and_then(|x| deladas::ddd::from_xml(x).ok())
}

impl Mgr {
    fn emit(&mut self, kind: &str, data: Value) {
        let seq = self.d.next_event;
        self.d.next_event += 1;
        let ev = json!({"seq": seq, "time_ms": now_ms() as u64, "kind": kind, "generation": self.d.generation, "data": data});
        eprintln!("manager: event {kind}: {}", ev["data"]);
        self.pending.push((seq, ev));
    }

    /// Writes the state and the pending events in one transaction, then
    /// publishes the events. On a shared store (etcd) a write that fails —
    /// fenced by another leader, or no quorum — deposes this manager at once:
    /// it stops enacting and reloads the state if it is elected again.
    fn commit(&mut self) {
        if let Some(u) = &self.upgrade {
            self.d.upgrade = Some(u.record());
        }
        let state = serde_json::to_value(&self.d).unwrap_or(Value::Null);
        let events = std::mem::take(&mut self.pending);
        if let Err(e) = self.store.commit(&state, &events) {
            if let Some(ha) = &self.ha {
                if ha.term.swap(0, Ordering::SeqCst) != 0 {
                    eprintln!("manager: stepping down: cannot write the state to etcd: {e}");
                }
                ha.lease_ok.set(None);
                return;
            }
            eprintln!("manager: cannot write the store: {e}");
            std::process::exit(1);
        }
        for (_, ev) in events {
            let _ = self.tx.send(ev);
        }
    }

    fn fence_after_ms(&self) -> u64 {
        // Agents fence before the manager declares their host failed.
        (self.cfg.grace.as_millis() as u64 / 2).max(200)
    }

    fn recompute(&mut self) {
        self.assignments = match &self.new_d {
            None => BTreeMap::new(),
            Some(n) => engine::assignments(
                self.old_d.as_ref(),
                n,
                Epoch { generation: self.d.generation, step: self.d.step },
                &self.d.endpoints,
                &self.d.addresses,
                self.fence_after_ms(),
            ),
        };
        if let Some(u) = &self.upgrade {
            upgrade::overlay(&mut self.assignments, u);
        }
    }

    fn assignment(&self, host: &str) -> Assignment {
        let failed = self.d.failed_hosts.contains(host);
        let mut a = match self.assignments.get(host) {
            Some(a) if !failed => a.clone(),
            _ => Assignment {
                host: host.to_string(),
                epoch: Epoch { generation: self.d.generation, step: self.d.step },
                failed,
                fence_after_ms: self.fence_after_ms(),
                leader_term: 0,
                instances: vec![],
            },
        };
        a.leader_term = self.term();
        a
    }

    /// Whether this manager may change the deployment and answer agents:
    /// always with the file store; with etcd, while it leads.
    fn leads(&self) -> bool {
        self.ha.as_ref().is_none_or(election::Ha::leads)
    }

    /// The leader's term (etcd), 0 with the file store.
    fn term(&self) -> u64 {
        self.ha.as_ref().map(|h| h.term.load(Ordering::SeqCst)).unwrap_or(0)
    }

    /// Takes `d` as the state (at start, or when elected): the plan in
    /// progress continues at its step and every host gets a fresh grace
    /// period. The generation and step resumed, if there was a deployment.
    fn install(&mut self, d: Durable) -> Option<(u64, u32)> {
        let resumed = d.deployment.as_ref().map(|_| (d.generation, d.step));
        let mut d = d;
        d.goal_sha256 = self.goal.sha256.clone();
        self.new_d = parse_ddd(&d.deployment);
        self.old_d = parse_ddd(&d.previous);
        self.d = d;
        self.observed.clear();
        self.reported_failed.clear();
        self.pending.clear();
        self.repair_started = None;
        let now = Instant::now();
        self.step_started = now;
        self.last_seen.clear();
        for h in self.deployed_hosts() {
            self.last_seen.insert(h, now);
        }
        self.recompute();
        resumed
    }

    /// Makes `new` the desired deployment: a new generation and its plan.
    fn enact(&mut self, new: Deployment, reason: &str) -> Plan {
        let t = Instant::now();
        let old = self.new_d.take();
        page::on_enact(self, old.as_ref(), &new, reason);
        let plan = Plan::diff(old.as_ref(), &new, self.d.generation);
        self.d.generation += 1;
        self.d.endpoints = engine::transition_endpoints(old.as_ref(), &new, &self.d.endpoints);
        self.d.previous = self.d.deployment.take();
        self.d.deployment = Some(deladas::ddd::to_xml(&new));
        self.d.step = 0;
        self.d.plan = Some(plan.clone());
        self.d.plan_reason = Some(reason.to_string());
        self.old_d = old;
        self.new_d = Some(new);
        self.recompute();
        self.metrics.last_plan_ms = t.elapsed().as_secs_f64() * 1000.0;
        self.step_started = Instant::now();
        self.emit("plan-started", json!({"reason": reason, "plan": plan}));
        self.commit();
        plan
    }

    /// Hosts of the desired deployment.
    fn deployed_hosts(&self) -> Vec<String> {
        self.new_d.as_ref().map(|d| d.hosts.iter().map(|h| h.id.clone()).collect()).unwrap_or_default()
    }

    fn alive(&self, host: &str) -> bool {
        self.last_seen.get(host).is_some_and(|t| t.elapsed() <= self.cfg.grace)
    }

    /// Whether every instance of the desired deployment on a live host runs
    /// the current generation's wiring.
    fn step0_done(&self) -> bool {
        let Some(n) = &self.new_d else { return true };
        n.instances.iter().filter(|i| !self.d.failed_hosts.contains(&i.host)).all(|i| {
            self.observed.get(&i.host).is_some_and(|hb| {
                hb.instances
                    .iter()
                    .any(|o| o.id == i.id && o.state == InstanceState::Running && o.generation == self.d.generation)
            })
        })
    }

    fn step1_done(&self) -> bool {
        let Some(n) = &self.new_d else { return true };
        let ids: BTreeSet<&str> = n.instances.iter().map(|i| i.id.as_str()).collect();
        self.observed.iter().filter(|(h, _)| !self.d.failed_hosts.contains(*h) && self.alive(h)).all(|(_, hb)| {
            hb.epoch >= (Epoch { generation: self.d.generation, step: 1 })
                && hb.instances.iter().all(|o| ids.contains(o.id.as_str()))
        })
    }
}

/// Runs the manager until SIGTERM or SIGINT.
pub fn run_manage(args: ManageArgs) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(args))
}

async fn run(args: ManageArgs) -> i32 {
    let goal = match engine::load_goal(&args.goal, None) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: the goal `{}` does not check:\n{:#}", args.goal.display(), e.body);
            return 2;
        }
    };
    let addr: SocketAddr = match args.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("error: `--listen {}` is not an address:port", args.listen);
            return 2;
        }
    };
    let token = match &args.token_file {
        None => None,
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => {
                eprintln!("error: the token file `{}` is empty", p.display());
                return 2;
            }
            Err(e) => {
                eprintln!("error: cannot read the token file `{}`: {e}", p.display());
                return 2;
            }
        },
    };
    if !addr.ip().is_loopback() && token.is_none() {
        eprintln!(
            "error: listening on {addr}, which is not loopback, needs a token: `--token-file FILE` (agents and clients then send it)"
        );
        return 2;
    }
    let store_path = args.store.clone().unwrap_or_else(|| args.goal.with_extension("manager.redb"));
    let etcd_url = match store_path.to_str().and_then(etcd::parse_url) {
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            eprintln!("error: `--store`: {e}");
            return 2;
        }
        None => None,
    };
    let mut ha = None;
    let mut store: Box<dyn store::StateStore> = match &etcd_url {
        Some(u) => {
            let gw = Arc::new(etcd::Gateway::new(u.endpoints.clone(), Duration::from_millis(500)));
            let term = Arc::new(std::sync::atomic::AtomicU64::new(0));
            ha = Some(election::Ha {
                gw: gw.clone(),
                prefix: u.prefix.clone(),
                url: format!("http://{addr}"),
                lease_ttl: args.lease_ttl.max(Duration::from_secs(1)),
                term: term.clone(),
                lease_ok: election::LeaseClock::default(),
                leader: None,
                hold_until: None,
                polled: election::LeaseClock::default(),
                unrecorded_leader_change: None,
            });
            Box::new(election::EtcdStore::new(gw, &u.prefix, term))
        }
        None => match store::Store::open(&store_path) {
            Ok(s) => Box::new(s),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
    };
    // With etcd the state is read when this manager is elected; a store
    // that cannot be read now (no quorum yet) is not an error.
    let loaded = if ha.is_some() { store.load().or(Ok(None)) } else { store.load() };
    let mut d: Durable = match loaded {
        Ok(Some(v)) => match serde_json::from_value(v) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: the store `{}` is not a manager's store: {e}", store_path.display());
                return 2;
            }
        },
        Ok(None) => Durable::default(),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let resumed = d.deployment.is_some();
    if resumed && d.goal_sha256 != goal.sha256 {
        eprintln!(
            "error: the store `{}` belongs to another goal (or the goal changed since); use another `--store`",
            store_path.display()
        );
        return 2;
    }
    d.goal_sha256 = goal.sha256.clone();
    if ha.is_some() {
        // A follower until elected: it holds no state of its own.
        d = Durable { goal_sha256: goal.sha256.clone(), ..Durable::default() };
    }
    let (tx, _) = broadcast::channel(1024);
    let now = Instant::now();
    let mut m = Mgr {
        new_d: parse_ddd(&d.deployment),
        old_d: parse_ddd(&d.previous),
        goal: Arc::new(goal),
        d,
        assignments: BTreeMap::new(),
        // A restarted manager gives every host a fresh grace period.
        last_seen: HashMap::new(),
        observed: HashMap::new(),
        reported_failed: BTreeSet::new(),
        step_started: now,
        last_resolve: None,
        repair_started: None,
        pending: vec![],
        store,
        ha,
        tx,
        token,
        cfg: Cfg {
            grace: args.grace,
            freeze_share: args.freeze_share,
            min_resolve_interval: args.min_resolve_interval,
            auto_deploy: args.auto_deploy,
            step_delay: args.step_delay,
        },
        metrics: Metrics::default(),
        started: now,
        page: page::PageState::default(),
        listen: addr,
        upgrade: None,
    };
    for h in m.deployed_hosts() {
        m.last_seen.insert(h, now);
    }
    m.recompute();
    let on_etcd = m.ha.is_some();
    if !on_etcd {
        let what = if resumed {
            format!("resumed generation {} (step {})", m.d.generation, m.d.step)
        } else {
            "started".to_string()
        };
        m.emit(
            "manager-started",
            json!({"listen": addr.to_string(), "store": store_path.display().to_string(), "state": what}),
        );
        m.commit();
    }
    let shared: Shared = Arc::new(Mutex::new(m));
    if !on_etcd {
        upgrade::resume(&shared);
    }
    let app = router(shared.clone());
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return 2;
        }
    };
    eprintln!("manager: listening on http://{addr}");
    tokio::spawn(reconcile_loop(shared.clone()));
    if on_etcd {
        let s2 = shared.clone();
        std::thread::spawn(move || election::run_driver(s2));
    }
    let shutdown = async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        STOPPING.store(true, Ordering::SeqCst);
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        eprintln!("error: {e}");
        return 1;
    }
    0
}

fn router(s: Shared) -> Router {
    Router::new()
        .merge(page::routes())
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/resources", get(resources))
        .route("/constraints", get(constraints))
        .route("/deployment", get(deployment))
        .route("/satisfy", post(satisfy))
        .route("/plan", post(plan))
        .route("/enact", post(enact))
        .route("/events", get(events))
        .route("/upgrade", get(upgrade::status).post(upgrade::start))
        .route(HEARTBEAT_PATH, post(heartbeat))
        .layer(middleware::from_fn_with_state(s.clone(), auth))
        .with_state(s)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(self.body)).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(400, Code::BadRequest, message)
}

async fn auth(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let token = lock(&s).token.clone();
    if let Some(t) = token {
        if req.uri().path() != "/health" && !page::is_public(req.uri().path()) {
            let given = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            if given.strip_prefix("Bearer ").map(str::trim) != Some(t.as_str()) {
                return ApiError::new(
                    401,
                    Code::BadRequest,
                    "missing or wrong token: send `Authorization: Bearer TOKEN`",
                )
                .into_response();
            }
        }
    }
    if !matches!(req.uri().path(), "/" | "/health" | "/metrics" | "/openapi.json") {
        let m = lock(&s);
        if !m.leads() {
            let leader = m.ha.as_ref().and_then(|h| h.leader.clone()).unwrap_or_else(|| "not known yet".into());
            return ApiError::new(
                503,
                Code::StaleGeneration,
                format!("this manager does not lead (the etcd store elects one); the leader: {leader}"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the request body is not valid JSON for this endpoint: {e}")))
}

async fn health(State(s): State<Shared>) -> Json<Value> {
    let m = lock(&s);
    let role = if m.leads() { "leader" } else { "follower" };
    let leader = m.ha.as_ref().and_then(|h| h.leader.clone());
    Json(json!({"status": "ok", "generation": m.d.generation, "step": m.d.step, "frozen": m.d.frozen,
                "plan_in_progress": m.d.plan.is_some(), "role": role, "term": m.term(), "leader": leader}))
}

async fn metrics(State(s): State<Shared>) -> Response {
    let m = lock(&s);
    let hosts = m.goal.host_names();
    let alive = hosts.iter().filter(|h| m.alive(h)).count();
    let text = format!(
        "# TYPE deladas_generation gauge\ndeladas_generation {}\n\
         # TYPE deladas_hosts_alive gauge\ndeladas_hosts_alive {alive}\n\
         # TYPE deladas_hosts_failed gauge\ndeladas_hosts_failed {}\n\
         # TYPE deladas_heartbeats_total counter\ndeladas_heartbeats_total {}\n\
         # TYPE deladas_resolves_total counter\ndeladas_resolves_total {}\n\
         # TYPE deladas_events_total counter\ndeladas_events_total {}\n\
         # TYPE deladas_frozen gauge\ndeladas_frozen {}\n\
         # TYPE deladas_last_repair_ms gauge\n\
         deladas_last_repair_ms{{phase=\"detection\"}} {:.1}\n\
         deladas_last_repair_ms{{phase=\"resolve\"}} {:.1}\n\
         deladas_last_repair_ms{{phase=\"planning\"}} {:.1}\n\
         deladas_last_repair_ms{{phase=\"enactment\"}} {:.1}\n\
         # TYPE deladas_uptime_seconds gauge\ndeladas_uptime_seconds {:.1}\n",
        m.d.generation,
        m.d.failed_hosts.len(),
        m.metrics.heartbeats,
        m.metrics.resolves,
        m.d.next_event,
        u8::from(m.d.frozen.is_some()),
        m.metrics.last_detect_ms,
        m.metrics.last_resolve_ms,
        m.metrics.last_plan_ms,
        m.metrics.last_enact_ms,
        m.started.elapsed().as_secs_f64(),
    );
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

async fn openapi() -> Response {
    ([("content-type", "application/json")], include_str!("openapi.json")).into_response()
}

async fn resources(State(s): State<Shared>) -> Json<Value> {
    let m = lock(&s);
    let hosts: Vec<Value> = m
        .goal
        .host_names()
        .iter()
        .map(|h| {
            let state = if m.d.failed_hosts.contains(h) {
                "failed"
            } else if m.alive(h) {
                "alive"
            } else {
                "silent"
            };
            json!({
                "host": h,
                "state": state,
                "address": m.d.addresses.get(h),
                "last_seen_ms_ago": m.last_seen.get(h).map(|t| t.elapsed().as_millis() as u64),
                "epoch": m.observed.get(h).map(|hb| hb.epoch),
                "instances": m.observed.get(h).map(|hb| hb.instances.clone()).unwrap_or_default(),
            })
        })
        .collect();
    Json(json!({"hosts": hosts}))
}

async fn constraints(State(s): State<Shared>) -> Json<Value> {
    let m = lock(&s);
    Json(json!({"file": m.goal.path.display().to_string(), "sha256": m.goal.sha256, "text": m.goal.text}))
}

async fn deployment(State(s): State<Shared>) -> Json<Value> {
    let m = lock(&s);
    Json(json!({
        "generation": m.d.generation,
        "step": m.d.step,
        "plan": m.d.plan,
        "plan_reason": m.d.plan_reason,
        "ddd": m.d.deployment,
        "failed_hosts": m.d.failed_hosts,
        "frozen": m.d.frozen,
        "endpoints": m.d.endpoints,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SatisfyReq {
    /// Goal text to solve instead of the manager's goal (not adopted).
    constraints: Option<String>,
    /// Hosts available (default: every declared host, or the running configuration's).
    resources: Option<Vec<String>>,
    /// A running configuration (DDD XML) to keep as much of as possible.
    running: Option<String>,
    count: Option<usize>,
}

async fn satisfy(State(s): State<Shared>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: SatisfyReq = parse_body(&body)?;
    let goal = lock(&s).goal.clone();
    let count = req.count.unwrap_or(1).clamp(1, 20);
    let ddds = tokio::task::spawn_blocking(move || -> Result<Vec<Deployment>, ApiError> {
        let g = match &req.constraints {
            Some(text) => Arc::new(engine::load_goal(&goal.path, Some(text))?),
            None => goal,
        };
        match &req.running {
            Some(xml) => {
                let old = g.accept_shape(xml)?;
                // Hosts of the running configuration missing from `resources`
                // failed; hosts in `resources` it does not use are added.
                let (down, add): (Vec<String>, Vec<String>) = match &req.resources {
                    None => (vec![], vec![]),
                    Some(r) => (
                        old.hosts.iter().map(|h| h.id.clone()).filter(|h| !r.contains(h)).collect(),
                        r.iter().filter(|h| !old.hosts.iter().any(|o| &o.id == *h)).cloned().collect(),
                    ),
                };
                match g.resolve_with(&old, &down, &add, Duration::from_secs(20))? {
                    Resolution::Resolved(d, _) => Ok(vec![d]),
                    Resolution::Impossible(ex) => Err(ApiError { status: 409, body: ex }),
                }
            }
            None => g.satisfy(req.resources.as_deref(), count, Duration::from_secs(20)),
        }
    })
    .await
    .map_err(|e| ApiError::new(500, Code::Internal, e.to_string()))??;
    Ok(Json(json!({"ddds": ddds.iter().map(deladas::ddd::to_xml).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanReq {
    ddd: String,
    generation: Option<u64>,
}

fn check_target(m: &Mgr, xml: &str) -> Result<Deployment, ApiError> {
    let d = m.goal.accept(xml)?;
    for h in &d.hosts {
        if !m.alive(&h.id) {
            return Err(ApiError::new(
                409,
                Code::BadFailure,
                format!("host `{}` has no live agent: start `deladas agent --host {}` first", h.id, h.id),
            ));
        }
    }
    Ok(d)
}

async fn plan(State(s): State<Shared>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: PlanReq = parse_body(&body)?;
    let mut m = lock(&s);
    let d = check_target(&m, &req.ddd)?;
    page::on_dry_run(&mut m, &d);
    let plan = Plan::diff(m.new_d.as_ref(), &d, m.d.generation);
    Ok(Json(json!({"generation": m.d.generation, "plan": plan})))
}

async fn enact(State(s): State<Shared>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: PlanReq = parse_body(&body)?;
    let mut m = lock(&s);
    let Some(g) = req.generation else {
        return Err(bad_request("`generation` is missing: give the generation `POST /plan` returned"));
    };
    if g != m.d.generation {
        return Err(ApiError::new(
            409,
            Code::StaleGeneration,
            format!(
                "the plan was made against generation {g}, the manager is at generation {}: plan again",
                m.d.generation
            ),
        ));
    }
    let d = check_target(&m, &req.ddd)?;
    for h in &d.hosts {
        if m.d.failed_hosts.remove(&h.id) {
            m.reported_failed.retain(|x| !x.starts_with(&format!("{}/", h.id)));
        }
    }
    m.d.impossible_for = None;
    m.d.frozen = None;
    let plan = m.enact(d, "enacted through the API");
    if !m.leads() {
        // The write to etcd failed: this manager was deposed, nothing enacted.
        return Err(ApiError::new(
            503,
            Code::StaleGeneration,
            "this manager lost its leadership while enacting: nothing was enacted; ask the leader",
        ));
    }
    Ok(Json(json!({"generation": m.d.generation, "plan": plan})))
}

#[derive(Deserialize)]
struct EventsQuery {
    since: Option<u64>,
    follow: Option<bool>,
}

async fn events(State(s): State<Shared>, Query(q): Query<EventsQuery>) -> Result<Response, ApiError> {
    let since = q.since.unwrap_or(0);
    let (stored, rx) = {
        let m = lock(&s);
        let rx = m.tx.subscribe();
        (m.store.events(since, 10_000).map_err(|e| ApiError::new(500, Code::Internal, e))?, rx)
    };
    if !q.follow.unwrap_or(false) {
        return Ok(Json(json!(stored)).into_response());
    }
    let last = stored.last().and_then(|e| e["seq"].as_u64());
    use futures_util::StreamExt;
    let head = futures_util::stream::iter(stored.into_iter().map(Ok::<Value, std::convert::Infallible>));
    let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |e| async move {
        match e {
            Ok(ev) if last.is_none_or(|l| ev["seq"].as_u64().is_some_and(|s| s > l)) => Some(Ok(ev)),
            _ => None,
        }
    });
    let stream = head.chain(live).map(|r| r.map(|ev| axum::response::sse::Event::default().data(ev.to_string())));
    Ok(axum::response::sse::Sse::new(stream)
        .keep_alive(axum::response::sse::KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response())
}

async fn heartbeat(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Result<Json<Assignment>, ApiError> {
    let _ = headers;
    let hb: Heartbeat = parse_body(&body)?;
    let mut m = lock(&s);
    if m.goal.program.host(&hb.host).is_none() {
        return Err(ApiError::new(
            404,
            Code::BadRequest,
            format!(
                "the goal declares no host `{}`: an agent runs for one of {}",
                hb.host,
                m.goal.host_names().join(", ")
            ),
        ));
    }
    m.metrics.heartbeats += 1;
    if m.ha.is_none() {
        // With etcd, liveness is the agent's lease (election.rs).
        m.last_seen.insert(hb.host.clone(), Instant::now());
    }
    if m.d.addresses.get(&hb.host) != Some(&hb.address) {
        m.d.addresses.insert(hb.host.clone(), hb.address.clone());
        m.recompute();
        m.commit();
    }
    if hb.fenced {
        let host = hb.host.clone();
        m.emit("agent-fenced", json!({"host": host, "why": "it could not reach the manager for the fence period"}));
        m.commit();
    }
    for o in &hb.instances {
        let key = format!("{}/{}", hb.host, o.id);
        if o.state == InstanceState::Failed && !m.reported_failed.contains(&key) {
            m.reported_failed.insert(key);
            let ev = json!({"host": hb.host, "instance": o.id, "restarts": o.restarts, "last_exit": o.last_exit,
                            "why": "a crash loop: the agent gave up restarting it in place"});
            m.emit("instance-failed", ev);
            m.commit();
        }
    }
    let a = m.assignment(&hb.host);
    m.observed.insert(hb.host.clone(), hb);
    Ok(Json(a))
}

/// The reconcile loop: deploy, detect, re-solve, advance plans.
async fn reconcile_loop(s: Shared) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let work = {
            let mut m = lock(&s);
            tick(&mut m)
        };
        match work {
            Work::None => {}
            Work::Deploy(goal, hosts) => {
                let t = Instant::now();
                let r =
                    tokio::task::spawn_blocking(move || goal.satisfy(Some(&hosts), 1, Duration::from_secs(60))).await;
                let mut m = lock(&s);
                if !m.leads() {
                    continue;
                }
                m.metrics.last_resolve_ms = t.elapsed().as_secs_f64() * 1000.0;
                match r {
                    Ok(Ok(mut ds)) if !ds.is_empty() => {
                        let d = ds.remove(0);
                        m.enact(d, "first deployment: every declared host's agent reported");
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        m.emit("no-configuration", json!({"explanation": e.body}));
                        m.d.impossible_for = Some(BTreeSet::new());
                        m.commit();
                    }
                    Err(e) => eprintln!("manager: the solver task failed: {e}"),
                }
            }
            Work::Resolve(goal, old, down) => {
                let t = Instant::now();
                let down2 = down.clone();
                let r = tokio::task::spawn_blocking(move || goal.resolve(&old, &down2, Duration::from_secs(60))).await;
                let mut m = lock(&s);
                if !m.leads() {
                    continue;
                }
                m.metrics.resolves += 1;
                m.metrics.last_resolve_ms = t.elapsed().as_secs_f64() * 1000.0;
                m.last_resolve = Some(Instant::now());
                let failed: BTreeSet<String> = down.iter().cloned().collect();
                match r {
                    Ok(Ok(Resolution::Resolved(d, migration))) => {
                        m.d.impossible_for = None;
                        let reason = format!("re-solved after the failure of {}", down.join(", "));
                        let ms = m.metrics.last_resolve_ms;
                        m.emit("resolved", json!({"failed_hosts": down, "migration": migration, "resolve_ms": ms}));
                        m.enact(d, &reason);
                    }
                    Ok(Ok(Resolution::Impossible(ex))) => {
                        m.d.impossible_for = Some(failed);
                        m.emit(
                            "no-configuration",
                            json!({"failed_hosts": down, "explanation": ex,
                                   "action": "the survivors keep running as they are; nothing is stopped"}),
                        );
                        m.commit();
                    }
                    Ok(Err(e)) => {
                        m.d.impossible_for = Some(failed);
                        m.emit("resolve-failed", json!({"failed_hosts": down, "error": e.body}));
                        m.commit();
                    }
                    Err(e) => eprintln!("manager: the solver task failed: {e}"),
                }
            }
        }
    }
}

enum Work {
    None,
    Deploy(Arc<Goal>, Vec<String>),
    Resolve(Arc<Goal>, Deployment, Vec<String>),
}

fn tick(m: &mut Mgr) -> Work {
    if !m.leads() {
        return Work::None;
    }
    let hosts = m.goal.host_names();
    // First deployment, once every declared host reports.
    if m.new_d.is_none() {
        if m.cfg.auto_deploy && m.d.impossible_for.is_none() && hosts.iter().all(|h| m.alive(h)) {
            return Work::Deploy(m.goal.clone(), hosts);
        }
        return Work::None;
    }
    // With etcd, no news is not bad news: while the hosts' keys have not
    // been read for half a second (a loaded machine, a slow member), no
    // silence is counted.
    if m.ha.as_ref().is_some_and(|ha| ha.polled.since().is_none_or(|t| t > Duration::from_millis(500))) {
        let now = Instant::now();
        for h in m.deployed_hosts() {
            m.last_seen.insert(h, now);
        }
    }
    // Detection.
    let deployed = m.deployed_hosts();
    let live: Vec<&String> = deployed.iter().filter(|h| !m.d.failed_hosts.contains(*h)).collect();
    let silent: Vec<String> = live.iter().filter(|h| !m.alive(h)).map(|h| (*h).clone()).collect();
    if m.d.frozen.is_some() {
        if silent.is_empty() {
            m.d.frozen = None;
            m.emit("unfrozen", json!({"why": "every host of the deployment reports again"}));
            m.commit();
        }
        return Work::None;
    }
    if !silent.is_empty() {
        // Hosts that fell silent together: every live host not heard from
        // for half the grace period when the first one's grace runs out.
        let half = m.cfg.grace / 2;
        let together: Vec<String> = live
            .iter()
            .filter(|h| m.last_seen.get(h.as_str()).is_none_or(|t| t.elapsed() > half))
            .map(|h| (*h).clone())
            .collect();
        if together.len() >= 2 && together.len() as f64 > m.cfg.freeze_share * live.len() as f64 {
            let why = format!(
                "{} of {} live hosts fell silent at once ({}): more likely a network or manager-side problem than host failures; \
                 nothing is re-solved until they report again or a person enacts a deployment",
                together.len(),
                live.len(),
                together.join(", ")
            );
            m.d.frozen = Some(why.clone());
            m.emit("frozen", json!({"why": why, "silent_hosts": together}));
            m.commit();
            return Work::None;
        }
        let grace_ms = m.cfg.grace.as_secs_f64() * 1000.0;
        for h in &silent {
            let silent_ms = m.last_seen.get(h).map(|t| t.elapsed().as_secs_f64() * 1000.0).unwrap_or(grace_ms);
            m.d.failed_hosts.insert(h.clone());
            m.metrics.last_detect_ms = silent_ms;
            m.repair_started = Some((Instant::now(), silent_ms));
            let h = h.clone();
            m.emit("host-failed", json!({"host": h, "silent_ms": silent_ms as u64, "grace_ms": grace_ms as u64}));
        }
        upgrade::on_hosts_failed(m, &silent);
        m.commit();
    }
    // Re-solve when the desired deployment uses failed hosts.
    let down: Vec<String> = deployed.iter().filter(|h| m.d.failed_hosts.contains(*h)).cloned().collect();
    let down_set: BTreeSet<String> = down.iter().cloned().collect();
    if !down.is_empty() && m.d.impossible_for.as_ref() != Some(&down_set) {
        let limited = m.last_resolve.is_some_and(|t| t.elapsed() < m.cfg.min_resolve_interval);
        if !limited {
            if let Some(old) = m.new_d.clone() {
                return Work::Resolve(m.goal.clone(), old, down);
            }
        }
    }
    // Plan progress.
    if m.d.plan.is_some() {
        let held = m.step_started.elapsed() >= m.cfg.step_delay;
        let stuck = m.step_started.elapsed() > Duration::from_secs(30);
        if m.d.step == 0 && held && (m.step0_done() || stuck) {
            m.d.step = 1;
            m.recompute();
            m.step_started = Instant::now();
            let note =
                if stuck { "some instances did not report running in 30 s" } else { "new parts run and are wired" };
            m.emit("plan-step", json!({"step": 1, "doing": "unwire and stop old parts", "after": note}));
            m.commit();
        } else if m.d.step == 1 && held && (m.step1_done() || stuck) {
            let plan = m.d.plan.take();
            m.d.previous = None;
            m.old_d = None;
            m.recompute();
            if let Some((t, detect)) = m.repair_started.take() {
                m.metrics.last_enact_ms =
                    t.elapsed().as_secs_f64() * 1000.0 - m.metrics.last_resolve_ms - m.metrics.last_plan_ms;
                let timings = json!({"detection_ms": detect, "resolve_ms": m.metrics.last_resolve_ms,
                                     "planning_ms": m.metrics.last_plan_ms, "enactment_ms": m.metrics.last_enact_ms});
                m.emit("enacted", json!({"plan": plan, "timings": timings}));
            } else {
                m.emit("enacted", json!({"plan": plan}));
            }
            m.commit();
        }
    }
    Work::None
}
