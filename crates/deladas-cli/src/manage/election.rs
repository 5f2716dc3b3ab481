//! Several managers over one etcd (docs/manager.md, "Several managers"):
//! the etcd store, leader election by lease + transaction, liveness by the
//! agents' leases, and the grace period after an etcd leader change.
//!
//! **Election.** A follower reads `leader`; when it is absent it grants a
//! lease and puts its URL there in a transaction that requires the key not to
//! exist. The winner's term is that put's revision (the key's creation
//! revision), a fencing token: every state write is a transaction comparing
//! both the state's revision and the leader key's creation revision with the
//! ones this leader knows, so a deposed leader's write fails and it steps
//! down; agents refuse assignments of a lower term than one they have seen.
//! The leader keeps its lease alive every tick and stops leading — answers
//! nothing, enacts nothing — half a lease TTL after its last successful
//! keep-alive was sent, before etcd can expire the lease and let another win.
//!
//! **Liveness.** Agents hold `hosts/NAME` on their own lease. The leader reads
//! that prefix every 100 ms (a bounded poll rather than the gateway's
//! streaming watch: one short request, naturally failing over between
//! endpoints, with no long-lived chunked stream to re-establish after a member
//! dies; at 200 hosts it is one range of 200 small keys). A host whose key is
//! present is heard from; one whose key is gone for the grace period is
//! failed, by the manager's usual policy (rate limit, freeze on mass loss).
//!
//! **The control plane moving.** Every 300 ms the leader asks each endpoint
//! for its raft leader and term (`/v3/maintenance/status`); when the leader or
//! term changes, or the hosts' prefix cannot be read, every host of the
//! deployment counts as heard from for a grace period: a host is failed only
//! for a silence etcd itself was stable through.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::etcd::{self, Gateway};
use super::store::StateStore;
use super::{lock, Durable, Shared};

/// The state in etcd.
pub struct EtcdStore {
    gw: Arc<Gateway>,
    prefix: String,
    /// The state key's revision this manager last wrote or read.
    state_rev: u64,
    /// The leader key's creation revision while this manager leads, else 0.
    term: Arc<AtomicU64>,
}

impl EtcdStore {
    pub fn new(gw: Arc<Gateway>, prefix: &str, term: Arc<AtomicU64>) -> EtcdStore {
        EtcdStore { gw, prefix: prefix.to_string(), state_rev: 0, term }
    }
    fn key(&self, k: &str) -> String {
        format!("/{}/{k}", self.prefix)
    }
}

fn event_key(prefix: &str, seq: u64) -> String {
    format!("/{prefix}/events/{seq:020}")
}

impl StateStore for EtcdStore {
    fn load(&mut self) -> Result<Option<Value>, String> {
        match self.gw.range(&self.key("state"))? {
            None => {
                self.state_rev = 0;
                Ok(None)
            }
            Some(kv) => {
                self.state_rev = kv.mod_revision;
                serde_json::from_slice(&kv.value).map(Some).map_err(|e| e.to_string())
            }
        }
    }

    fn events(&self, since: u64, limit: usize) -> Result<Vec<Value>, String> {
        let from = event_key(&self.prefix, since);
        let kvs = self.gw.range_prefix(&self.key("events/"), Some(&from), limit as u64)?;
        Ok(kvs.iter().filter_map(|kv| serde_json::from_slice(&kv.value).ok()).collect())
    }

    fn commit(&mut self, state: &Value, events: &[(u64, Value)]) -> Result<(), String> {
        let term = self.term.load(Ordering::SeqCst);
        if term == 0 {
            return Err("this manager does not lead".into());
        }
        let mut ops = vec![etcd::put(&self.key("state"), state.to_string().as_bytes(), 0)];
        for (seq, ev) in events {
            ops.push(etcd::put(&event_key(&self.prefix, *seq), ev.to_string().as_bytes(), 0));
            if *seq >= super::store::MAX_EVENTS {
                ops.push(etcd::delete(&event_key(&self.prefix, *seq - super::store::MAX_EVENTS)));
            }
        }
        let compare = vec![
            etcd::compare_mod(&self.key("state"), self.state_rev),
            etcd::compare_create(&self.key("leader"), term),
        ];
        let (ok, rev) = self.gw.txn(compare, ops)?;
        if !ok {
            return Err("fenced: another manager leads or wrote the state since (the transaction's comparison of the state revision and the leader's term failed)".into());
        }
        self.state_rev = rev;
        Ok(())
    }
}

/// The high-availability side of a manager on etcd.
pub struct Ha {
    pub gw: Arc<Gateway>,
    pub prefix: String,
    /// The URL other managers and agents reach this one at.
    pub url: String,
    pub lease_ttl: Duration,
    /// The term while leading (shared with the store), else 0.
    pub term: Arc<AtomicU64>,
    /// When the last keep-alive of the leader's lease that succeeded was
    /// sent ([`LeaseClock`]; written by the keep-alive thread, no lock).
    pub lease_ok: LeaseClock,
    /// The leader's URL, as last read.
    pub leader: Option<String>,
    /// Every host counts as heard from until then (etcd's leader moved).
    pub hold_until: Option<Instant>,
    /// When the hosts' keys were last read.
    pub polled: LeaseClock,
    /// An etcd leader change seen while not leading (a loaded manager can
    /// lose its own lease in the same moment): recorded once it leads again,
    /// so the event log never misses why hosts were held.
    pub unrecorded_leader_change: Option<Value>,
}

impl Ha {
    /// Whether this manager leads now: elected, and its lease certainly not
    /// expired (half a TTL since the last keep-alive that succeeded).
    pub fn leads(&self) -> bool {
        self.term.load(Ordering::SeqCst) != 0 && self.lease_ok.since().is_some_and(|t| t < self.lease_ttl / 2)
    }

    pub fn key(&self, k: &str) -> String {
        format!("/{}/{k}", self.prefix)
    }

    pub fn holding(&self) -> bool {
        self.hold_until.is_some_and(|t| Instant::now() < t)
    }
}

/// When something last happened, shared between threads without a lock:
/// milliseconds since a base instant, 0 for never.
#[derive(Clone)]
pub struct LeaseClock {
    base: Instant,
    ms: Arc<AtomicU64>,
}

impl Default for LeaseClock {
    fn default() -> LeaseClock {
        LeaseClock { base: Instant::now(), ms: Arc::new(AtomicU64::new(0)) }
    }
}

impl LeaseClock {
    pub fn set(&self, t: Option<Instant>) {
        let v = t.map(|t| t.saturating_duration_since(self.base).as_millis() as u64 + 1).unwrap_or(0);
        self.ms.store(v, Ordering::SeqCst);
    }
    pub fn since(&self) -> Option<Duration> {
        let v = self.ms.load(Ordering::SeqCst);
        (v != 0).then(|| self.base.elapsed().saturating_sub(Duration::from_millis(v - 1)))
    }
}

fn step_down(s: &Shared, why: &str) {
    let m = lock(s);
    if let Some(ha) = &m.ha {
        if ha.term.swap(0, Ordering::SeqCst) != 0 {
            eprintln!("manager: stepping down: {why}");
        }
        ha.lease_ok.set(None);
    }
}

/// Keeps the leader's lease alive every 100 ms, in a thread of its own (so
/// that neither the manager's lock nor a slow liveness read delays it), as
/// long as this manager holds `term`.
fn keep_alive(gw: Arc<Gateway>, id: u64, term: u64, terms: Arc<AtomicU64>, clock: LeaseClock) {
    std::thread::spawn(move || {
        while terms.load(Ordering::SeqCst) == term && !super::STOPPING.load(Ordering::SeqCst) {
            let sent = Instant::now();
            match gw.keepalive(id) {
                Ok(true) => clock.set(Some(sent)),
                Ok(false) => {
                    if terms.compare_exchange(term, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                        eprintln!("manager: stepping down: the leader's lease expired");
                    }
                    clock.set(None);
                    return;
                }
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(100).saturating_sub(sent.elapsed()));
        }
    });
}

/// The election, liveness and etcd-status loop of a manager on etcd (a thread
/// of its own: blocking HTTP).
pub fn run_driver(s: Shared) {
    let (gw, ttl, url, leader_key, hosts_prefix) = {
        let m = lock(&s);
        let Some(ha) = &m.ha else { return };
        (ha.gw.clone(), ha.lease_ttl, ha.url.clone(), ha.key("leader"), ha.key("hosts/"))
    };
    let ttl_secs = ttl.as_secs().max(1);
    let mut lease: Option<u64> = None;
    {
        let (s, gw) = (s.clone(), gw.clone());
        std::thread::spawn(move || watch_etcd_leader(s, gw));
    }
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if super::STOPPING.load(Ordering::SeqCst) {
            if let Some(id) = lease.take() {
                gw.revoke(id);
            }
            return;
        }
        let leads = lock(&s).ha.as_ref().is_some_and(Ha::leads);
        if let (false, Some(id)) = (leads, lease) {
            // Deposed (or our lease lapsed): let go; campaign again later.
            step_down(&s, "the leader's lease could not be kept alive");
            gw.revoke(id);
            lease = None;
        }
        if lease.is_some() {
            match gw.range_prefix(&hosts_prefix, None, 0) {
                Ok(kvs) => {
                    let alive: BTreeSet<String> =
                        kvs.iter().filter_map(|kv| kv.key.strip_prefix(&hosts_prefix).map(String::from)).collect();
                    let mut m = lock(&s);
                    let now = Instant::now();
                    for h in alive {
                        m.last_seen.insert(h, now);
                    }
                    if let Some(ha) = &m.ha {
                        ha.polled.set(Some(now));
                    }
                    hold_if_needed(&mut m, now);
                }
                Err(e) => {
                    let mut m = lock(&s);
                    let grace = m.cfg.grace;
                    if let Some(ha) = &mut m.ha {
                        if !ha.holding() {
                            eprintln!("manager: cannot read the hosts' leases ({e}); holding every host for {grace:?}");
                        }
                        ha.hold_until = Some(Instant::now() + grace);
                    }
                    hold_if_needed(&mut m, Instant::now());
                }
            }
        } else {
            match gw.range(&leader_key) {
                Ok(Some(kv)) => {
                    if let Some(ha) = &mut lock(&s).ha {
                        ha.leader = String::from_utf8(kv.value).ok();
                    }
                }
                Ok(None) => {
                    if let Some(id) = campaign(&s, &gw, ttl_secs, &url, &leader_key) {
                        lease = Some(id);
                    }
                }
                Err(_) => {}
            }
        }
    }
}

/// Every 300 ms, each endpoint's raft leader and term; when they change,
/// every host is held for a grace period (a thread of its own: a member that
/// does not answer must not delay the liveness reads).
fn watch_etcd_leader(s: Shared, gw: Arc<Gateway>) {
    let mut known_leader: Option<(u64, u64)> = None;
    while !super::STOPPING.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(300));
        {
            let views: Vec<(u64, u64)> = gw.leaders().into_iter().flatten().collect();
            let newest = views.iter().max_by_key(|(_, term)| *term).copied();
            if let Some(now_leader) = newest {
                if known_leader.is_some_and(|k| k != now_leader) {
                    let mut m = lock(&s);
                    let grace = m.cfg.grace;
                    if let Some(ha) = &mut m.ha {
                        ha.hold_until = Some(Instant::now() + grace);
                    }
                    hold_if_needed(&mut m, Instant::now());
                    let (from, to) = (known_leader.map(|k| format!("{:x}", k.0)), format!("{:x}", now_leader.0));
                    let data = json!({"from": from, "to": to, "raft_term": now_leader.1, "hold_ms": grace.as_millis() as u64,
                                      "why": "a new etcd leader resets lease timers: no host is failed for a silence etcd was not stable through"});
                    if m.ha.as_ref().is_some_and(Ha::leads) {
                        m.emit("etcd-leader-changed", data);
                        m.commit();
                    } else if let Some(ha) = &mut m.ha {
                        ha.unrecorded_leader_change = Some(data);
                    }
                }
                known_leader = Some(now_leader);
            }
        }
    }
}

/// While holding, every host of the deployment counts as heard from.
fn hold_if_needed(m: &mut super::Mgr, now: Instant) {
    if m.ha.as_ref().is_some_and(Ha::holding) {
        for h in m.deployed_hosts() {
            m.last_seen.insert(h, now);
        }
    }
}

/// Tries to become the leader; the lease when it did.
fn campaign(s: &Shared, gw: &Gateway, ttl_secs: u64, url: &str, leader_key: &str) -> Option<u64> {
    let id = gw.grant(ttl_secs).ok()?;
    let granted = Instant::now();
    let won = gw.txn(vec![etcd::compare_create(leader_key, 0)], vec![etcd::put(leader_key, url.as_bytes(), id)]);
    let term = match won {
        Ok((true, rev)) => rev,
        _ => {
            gw.revoke(id);
            return None;
        }
    };
    let mut m = lock(s);
    let loaded = m.store.load();
    let d: Durable = match loaded {
        Ok(Some(v)) => match serde_json::from_value(v) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: the etcd state is not a manager's state: {e}");
                std::process::exit(2);
            }
        },
        Ok(None) => Durable::default(),
        Err(e) => {
            drop(m);
            eprintln!("manager: elected, but cannot read the state ({e}); letting go");
            gw.revoke(id);
            return None;
        }
    };
    if d.deployment.is_some() && d.goal_sha256 != m.goal.sha256 {
        eprintln!("error: the etcd state belongs to another goal (or the goal changed since); use another prefix");
        std::process::exit(2);
    }
    if let Some(ha) = &mut m.ha {
        ha.term.store(term, Ordering::SeqCst);
        ha.lease_ok.set(Some(granted));
        ha.leader = Some(url.to_string());
        keep_alive(ha.gw.clone(), id, term, ha.term.clone(), ha.lease_ok.clone());
    }
    let resumed = m.install(d);
    // A guarded upgrade in the state: its coordinator and timer go on here.
    super::upgrade::resume_in(&mut m, s);
    let what = match resumed {
        Some((g, step)) => format!("resumed generation {g} (step {step})"),
        None => "started".to_string(),
    };
    eprintln!("manager: elected leader (term {term}), {what}");
    m.emit("manager-started", json!({"leader": url, "term": term, "store": "etcd", "state": what}));
    if let Some(data) = m.ha.as_mut().and_then(|ha| ha.unrecorded_leader_change.take()) {
        m.emit("etcd-leader-changed", data);
    }
    m.commit();
    Some(id)
}
