//! A process of a guarded upgrade between real OS processes: a [`Node`]
//! runs one role's state machine ([`Proc`]) on a [`Transport`], and a
//! [`Coordinator`] carries out recovery by messages.
//!
//! In the simulator, broadcasts and recovery are global and instant. Here:
//!
//! - counters go to the group's other processes as [`Body::Counter`]
//!   messages, or come from a [`crate::CounterServer`]
//!   ([`crate::LowProcess::set_shared_counter`]) where increments are
//!   concurrent;
//! - a failed AT sends [`Body::Fail`] to the coordinator; the process stops
//!   handling messages;
//! - the coordinator opens a new epoch with [`Body::Freeze`]: every process
//!   stops, sends a [`Body::Marker`] on every outgoing link and buffers what
//!   arrives until it has a marker from every process that sends to it (TCP
//!   is FIFO, so the buffer then holds exactly the messages that were in
//!   flight), and answers [`Body::Frozen`] with the largest counters any
//!   "passed AT" it sent or received validated;
//! - the recovery line is the largest of those (a notification still in
//!   flight is counted by its sender); [`Body::Recover`] makes every G_act
//!   and G_sdw process reclaim up to it and roll back if dirty, and G_low
//!   exit; each answers [`Body::Recovered`] with its per-link send sequence
//!   numbers after the rollback;
//! - [`Body::Resume`] hands everyone those cuts: a buffered message is
//!   dropped when its sender undid it (sequence number at or above the cut)
//!   or when G_low sent it and no AT validated it (counter above the line;
//!   the shadows send it again); the rest is delivered, after the
//!   recovery's own output. From then on, an application message of an
//!   earlier epoch is stale and discarded;
//! - [`Body::EndGuard`] ends the guarded period: G_low is promoted, G_act
//!   reclaims everything, shadows retire.
//!
//! A coordinator handles one recovery per epoch and any number of epochs:
//! a second `Fail` of an epoch that is already recovering is ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::net::Transport;
use super::wire::{Body, Wire};
use super::{
    AcceptanceTest, ActiveProcess, Application, Counter, CounterGroup, Effect, LowProcess, Role, ShadowProcess, Stamp,
};

/// How long a node that sent `Fail` waits for the recovery's `Freeze`
/// before it sends `Fail` again.
const FAIL_AGAIN: Duration = Duration::from_secs(1);

/// Where a node's external output goes: (external port, message).
pub type World<M> = Box<dyn FnMut(&str, &M)>;

/// One role's state machine.
pub enum Proc<A: Application> {
    /// G_low (figure 2).
    Low(LowProcess<A>),
    /// G_act (figure 3).
    Active(ActiveProcess<A>),
    /// G_sdw (figure 4).
    Shadow(ShadowProcess<A>),
}

/// Where one of a node's links leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLink {
    /// The process at the other end.
    pub peer: String,
    /// Its role.
    pub peer_role: Role,
    /// The link's index at the other end.
    pub peer_link: usize,
    /// When the peer is in G_low: its shadow, which receives a copy (on the
    /// same link index).
    pub peer_shadow: Option<String>,
}

/// What a node needs to know (the role document's entry for the process,
/// plus addresses and link ends).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The process's name.
    pub name: String,
    /// The coordinator's name.
    pub coordinator: String,
    /// Its links, in the order of its application's links.
    pub links: Vec<PeerLink>,
    /// Where "passed AT" goes.
    pub notify: Vec<String>,
    /// The other processes of its counter group.
    pub counter_peers: Vec<String>,
    /// Every process that sends application messages to it.
    pub senders: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Failing,
    Frozen,
    Recovered,
}

/// A process on the network (see the module's documentation).
pub struct Node<A: Application>
where
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
{
    cfg: NodeConfig,
    proc: Option<Proc<A>>,
    net: Transport<A::Msg>,
    at: Box<dyn AcceptanceTest<A::Msg>>,
    world: World<A::Msg>,
    epoch: u64,
    validated: (Stamp, Counter),
    phase: Phase,
    frozen_sent: bool,
    buffer: Vec<Wire<A::Msg>>,
    markers: BTreeSet<String>,
    held: Vec<Effect<A::Msg>>,
    dead: BTreeSet<String>,
    stale: u64,
    errors: Vec<String>,
    ended: bool,
    /// When `Fail` last went to the coordinator (it is sent again while no
    /// `Freeze` came: the coordinator may have been restarting).
    fail_sent: Option<Instant>,
}

impl<A: Application> Node<A>
where
    A::Msg: Serialize + DeserializeOwned + Send + 'static,
{
    /// A node for `proc` on `net`; `at` is the acceptance test, `world`
    /// receives external output (port, message).
    pub fn new(
        cfg: NodeConfig,
        proc: Proc<A>,
        net: Transport<A::Msg>,
        at: Box<dyn AcceptanceTest<A::Msg>>,
        world: World<A::Msg>,
    ) -> Self {
        Node {
            cfg,
            proc: Some(proc),
            net,
            at,
            world,
            epoch: 0,
            validated: (Stamp::zero(), 0),
            phase: Phase::Running,
            frozen_sent: false,
            buffer: Vec::new(),
            markers: BTreeSet::new(),
            held: Vec::new(),
            dead: BTreeSet::new(),
            stale: 0,
            errors: Vec::new(),
            ended: false,
            fail_sent: None,
        }
    }

    /// The transport (to set peer addresses).
    pub fn net(&mut self) -> &mut Transport<A::Msg> {
        &mut self.net
    }

    /// The state machine; `None` once G_low exited or a shadow retired.
    pub fn proc(&self) -> Option<&Proc<A>> {
        self.proc.as_ref()
    }

    /// Mutable access to the state machine (to persist it, say).
    pub fn proc_mut(&mut self) -> Option<&mut Proc<A>> {
        self.proc.as_mut()
    }

    /// The current recovery epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Application messages of an earlier epoch discarded.
    pub fn stale_discarded(&self) -> u64 {
        self.stale
    }

    /// Whether the guarded period ended ([`Body::EndGuard`]).
    pub fn guard_ended(&self) -> bool {
        self.ended
    }

    /// Sends that failed (a peer that is gone).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Whether it handles messages and ticks (not stopped for a recovery).
    pub fn running(&self) -> bool {
        self.phase == Phase::Running && self.proc.is_some()
    }

    /// A step of the application's own schedule (ignored while a recovery
    /// is under way).
    pub fn tick(&mut self) {
        if self.phase == Phase::Failing && self.fail_sent.is_some_and(|t| t.elapsed() >= FAIL_AGAIN) {
            // No recovery yet: the coordinator may not have got it (it was
            // restarting, or the connection was stale). A repeated `Fail` of
            // the same epoch is ignored once a recovery is under way.
            self.fail_sent = Some(Instant::now());
            let c = self.cfg.coordinator.clone();
            self.send(&c, Body::Fail);
        }
        if self.phase != Phase::Running {
            return;
        }
        let at = &mut *self.at;
        let effects = match &mut self.proc {
            Some(Proc::Low(p)) => p.on_tick(at),
            Some(Proc::Active(p)) => p.on_tick(at),
            Some(Proc::Shadow(p)) => p.on_tick(),
            None => return,
        };
        self.apply(effects);
    }

    /// Handles the next message, waiting at most `timeout`; false when none came.
    pub fn poll(&mut self, timeout: Duration) -> bool {
        match self.net.recv_timeout(timeout) {
            Some(w) => {
                self.handle(w);
                true
            }
            None => false,
        }
    }

    fn send(&mut self, to: &str, body: Body<A::Msg>) {
        let w = Wire { epoch: self.epoch, from: self.cfg.name.clone(), body };
        if let Err(e) = self.net.send(to, &w) {
            self.errors.push(format!("{} → {to}: {e}", self.cfg.name));
        }
    }

    fn apply(&mut self, effects: Vec<Effect<A::Msg>>) {
        for eff in effects {
            match eff {
                Effect::Send { link, env } => {
                    let Some(l) = self.cfg.links.get(link).cloned() else { continue };
                    for dest in [Some(l.peer), l.peer_shadow].into_iter().flatten() {
                        if !self.dead.contains(&dest) {
                            let body = Body::App { from_link: link, to_link: l.peer_link, env: env.clone() };
                            self.send(&dest, body);
                        }
                    }
                }
                Effect::External { port, msg } => (self.world)(&port, &msg),
                Effect::BroadcastCounter { group, value } => {
                    for q in self.cfg.counter_peers.clone() {
                        self.send(&q, Body::Counter { group, value });
                    }
                }
                Effect::PassedAt { value, ext } => {
                    self.validated.0.join(&value);
                    self.validated.1 = self.validated.1.max(ext);
                    for q in self.cfg.notify.clone() {
                        if !self.dead.contains(&q) {
                            self.send(&q, Body::PassedAt { value: value.clone(), ext });
                        }
                    }
                }
                Effect::StartRecovery => {
                    self.phase = Phase::Failing;
                    self.fail_sent = Some(Instant::now());
                    let c = self.cfg.coordinator.clone();
                    self.send(&c, Body::Fail);
                    return;
                }
            }
        }
    }

    fn deliver(&mut self, to_link: usize, env: super::Envelope<A::Msg>) {
        let at = &mut *self.at;
        let effects = match &mut self.proc {
            Some(Proc::Low(p)) => p.on_message(to_link, env, at),
            Some(Proc::Active(p)) => p.on_message(to_link, env, at),
            Some(Proc::Shadow(p)) => p.on_message(to_link, env, at),
            None => return,
        };
        self.apply(effects);
    }

    /// Handles one message.
    pub fn handle(&mut self, w: Wire<A::Msg>) {
        match w.body {
            Body::App { to_link, env, from_link } => {
                if w.epoch < self.epoch {
                    // Stale: from before a recovery this process has completed.
                    self.stale += 1;
                } else if self.phase == Phase::Running {
                    self.deliver(to_link, env);
                } else {
                    self.buffer.push(Wire {
                        epoch: w.epoch,
                        from: w.from,
                        body: Body::App { from_link, to_link, env },
                    });
                }
            }
            Body::Counter { group, value } => match (&mut self.proc, group) {
                (Some(Proc::Low(p)), CounterGroup::Low) => p.on_counter(value),
                (Some(Proc::Low(p)), CounterGroup::LowExt) => p.on_ext_counter(value),
                (Some(Proc::Shadow(p)), CounterGroup::Shadow) => p.on_counter(value),
                (Some(Proc::Shadow(p)), CounterGroup::ShadowExt) => p.on_ext_counter(value),
                _ => {}
            },
            Body::PassedAt { value, ext } => {
                // Validations join: each "passed AT" vouches for the messages
                // its stamp covers, so together they vouch for their join (a
                // checkpoint influenced by the links of two clients' ATs is
                // reclaimed once both passed).
                self.validated.0.join(&value);
                self.validated.1 = self.validated.1.max(ext);
                let v = self.validated.0.clone();
                match &mut self.proc {
                    Some(Proc::Active(p)) => p.on_passed_at(v),
                    Some(Proc::Shadow(p)) => p.on_passed_at(v, ext),
                    _ => {}
                }
            }
            Body::Freeze => {
                if w.epoch <= self.epoch {
                    return;
                }
                self.phase = Phase::Frozen;
                self.frozen_sent = false;
                let mut dests = BTreeSet::new();
                for l in &self.cfg.links {
                    dests.insert(l.peer.clone());
                    if let Some(s) = &l.peer_shadow {
                        dests.insert(s.clone());
                    }
                }
                for d in dests {
                    if !self.dead.contains(&d) {
                        self.send(&d, Body::Marker);
                    }
                }
                self.check_flushed();
            }
            Body::Marker => {
                self.markers.insert(w.from);
                self.check_flushed();
            }
            Body::Recover { validated, validated_ext } => self.recover(w.epoch, validated, validated_ext),
            Body::Resume { cuts } => self.resume(&cuts),
            Body::EndGuard => {
                self.ended = true;
                match &mut self.proc {
                    Some(Proc::Low(p)) => p.promote(),
                    Some(Proc::Active(p)) => p.end_guarded_period(),
                    // A shadow that took over is the service now; the others retire.
                    Some(Proc::Shadow(p)) if !p.promoted() => self.proc = None,
                    Some(Proc::Shadow(_)) => {}
                    None => {}
                }
                // Shadows retire: no more copies for them. A shadow that took
                // over from its stopped twin (a recovery) is the peer now.
                for l in &mut self.cfg.links {
                    match l.peer_shadow.take() {
                        Some(s) if self.dead.contains(&l.peer) => {
                            l.peer = s;
                            l.peer_role = Role::Active;
                        }
                        _ => {}
                    }
                }
            }
            Body::Fail | Body::Frozen { .. } | Body::Recovered { .. } => {}
        }
    }

    fn check_flushed(&mut self) {
        if self.phase != Phase::Frozen || self.frozen_sent {
            return;
        }
        if self.cfg.senders.iter().all(|s| self.dead.contains(s) || self.markers.contains(s)) {
            self.frozen_sent = true;
            let c = self.cfg.coordinator.clone();
            let (validated, validated_ext) = self.validated.clone();
            self.send(&c, Body::Frozen { validated, validated_ext });
        }
    }

    fn recover(&mut self, epoch: u64, v: Stamp, v_ext: Counter) {
        self.epoch = epoch;
        self.markers.clear();
        self.validated.0.join(&v);
        self.validated.1 = self.validated.1.max(v_ext);
        let at = &mut *self.at;
        let (send_seq, rolled_back, effects) = match &mut self.proc {
            Some(Proc::Active(p)) => {
                let r = p.recover(v.clone(), at);
                (r.send_seq, r.rolled_back, r.effects)
            }
            Some(Proc::Shadow(p)) => {
                let r = p.recover(v.clone(), v_ext);
                (r.send_seq, r.rolled_back, r.effects)
            }
            // error_recovery: G_low stops (exit(error)).
            Some(Proc::Low(_)) | None => {
                self.proc = None;
                (Vec::new(), false, Vec::new())
            }
        };
        self.held = effects;
        // G_low is gone: its messages in flight survive only if validated;
        // nothing more goes to it (its shadow has the copies).
        let low_links: Vec<usize> =
            self.cfg.links.iter().enumerate().filter(|(_, l)| l.peer_role == Role::Low).map(|(i, _)| i).collect();
        for &i in &low_links {
            let peer = self.cfg.links[i].peer.clone();
            self.dead.insert(peer);
        }
        let dead = self.dead.clone();
        self.buffer.retain(|b| match &b.body {
            Body::App { env, .. } => !dead.contains(&b.from) || env.counter.le(&v),
            _ => true,
        });
        self.phase = Phase::Recovered;
        let c = self.cfg.coordinator.clone();
        self.send(&c, Body::Recovered { send_seq, rolled_back });
    }

    fn resume(&mut self, cuts: &BTreeMap<String, Vec<u64>>) {
        if self.phase != Phase::Recovered {
            return;
        }
        let epoch = self.epoch;
        let buffered = std::mem::take(&mut self.buffer);
        self.phase = Phase::Running;
        let held = std::mem::take(&mut self.held);
        self.apply(held);
        for b in buffered {
            let Body::App { from_link, to_link, env } = b.body else { continue };
            // In flight at the recovery, but undone by its sender's rollback.
            let undone =
                b.epoch < epoch && cuts.get(&b.from).and_then(|c| c.get(from_link)).is_some_and(|&c| env.seq >= c);
            if undone {
                continue;
            }
            if self.phase == Phase::Running {
                self.deliver(to_link, env);
            } else {
                // A new failure while replaying: keep the rest for the next recovery.
                self.buffer.push(Wire { epoch: b.epoch, from: b.from, body: Body::App { from_link, to_link, env } });
            }
        }
    }
}

/// Carries out recoveries by messages (see the module's documentation).
pub struct Coordinator<M> {
    net: Transport<M>,
    name: String,
    members: Vec<String>,
    lows: BTreeSet<String>,
    epoch: u64,
    recoveries: u64,
    wait: Duration,
}

impl<M: Serialize + DeserializeOwned + Send + 'static> Coordinator<M> {
    /// A coordinator for `members` (every process), of which `lows` are G_low.
    /// Each phase of a recovery waits at most `wait` for every answer.
    pub fn new(net: Transport<M>, members: Vec<String>, lows: Vec<String>, wait: Duration) -> Self {
        let name = net.name().to_string();
        Coordinator { net, name, members, lows: lows.into_iter().collect(), epoch: 0, recoveries: 0, wait }
    }

    /// The transport (to set peer addresses).
    pub fn net(&mut self) -> &mut Transport<M> {
        &mut self.net
    }

    /// Recoveries carried out.
    pub fn recoveries(&self) -> u64 {
        self.recoveries
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn broadcast(&mut self, to: &[String], body: Body<M>) -> io::Result<()>
    where
        M: Clone,
    {
        for m in to {
            let w = Wire { epoch: self.epoch, from: self.name.clone(), body: body.clone() };
            self.net.send(m, &w)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for a `Fail` of the current epoch and, if one
    /// comes, carries out the recovery; true when it did.
    pub fn serve(&mut self, timeout: Duration) -> io::Result<bool>
    where
        M: Clone,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let Some(w) = self.net.recv_timeout(left) else { return Ok(false) };
            if matches!(w.body, Body::Fail) && w.epoch == self.epoch {
                self.recover()?;
                return Ok(true);
            }
        }
    }

    fn collect(&mut self, from: &[String], mut take: impl FnMut(Wire<M>) -> bool) -> io::Result<()> {
        let deadline = Instant::now() + self.wait;
        let mut waiting: BTreeSet<&String> = from.iter().collect();
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(w) = self.net.recv_timeout(left) else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("recovery {}: no answer from {waiting:?}", self.epoch),
                ));
            };
            let from = w.from.clone();
            if w.epoch >= self.epoch - 1 && take(w) {
                waiting.remove(&from);
            }
        }
        Ok(())
    }

    fn recover(&mut self) -> io::Result<()>
    where
        M: Clone,
    {
        self.epoch += 1;
        let members = self.members.clone();
        self.broadcast(&members, Body::Freeze)?;
        let (mut v, mut v_ext) = (Stamp::zero(), 0);
        self.collect(&members, |w| match w.body {
            Body::Frozen { validated, validated_ext } => {
                v.join(&validated);
                v_ext = v_ext.max(validated_ext);
                true
            }
            _ => false,
        })?;
        self.broadcast(&members, Body::Recover { validated: v, validated_ext: v_ext })?;
        let mut cuts = BTreeMap::new();
        self.collect(&members, |w| match w.body {
            Body::Recovered { send_seq, .. } => {
                cuts.insert(w.from, send_seq);
                true
            }
            _ => false,
        })?;
        self.members.retain(|m| !self.lows.contains(m));
        let members = self.members.clone();
        self.broadcast(&members, Body::Resume { cuts })?;
        self.recoveries += 1;
        Ok(())
    }

    /// Ends the guarded period: G_low is promoted, G_act stops guarding,
    /// the shadows retire.
    pub fn end_guard(&mut self) -> io::Result<()>
    where
        M: Clone,
    {
        let members = self.members.clone();
        self.broadcast(&members, Body::EndGuard)
    }
}
