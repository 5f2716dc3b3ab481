//! The simulator's applications: deterministic state machines behind the
//! runtime's [`Application`] trait.
//!
//! - `counter` (the default, for any deployment): on each tick, while it has
//!   ticks left, sends a numbered message on every link; it folds what it
//!   receives in rounds (one message from each link, links in order, as a
//!   Kahn process does, so what it computes does not depend on timing) into
//!   a running value, and after each round reports that value on its
//!   external ports.
//! - `client` and `router` (the P2P example's request–reply service): a
//!   client sends one request per tick to another client (chosen from the
//!   seed), answers the requests it receives, and reports the replies to
//!   its own requests on its external ports in request order; a router
//!   forwards requests and replies to the addressed client, directly or
//!   through the next router on a shortest path of routers.
//!
//! A new version (G_low) is the same application with a changed message
//! format on its changed ports (it encodes what it sends there and decodes
//! what it receives there), plus the injected design fault: from the fault
//! step on, every message it sends is corrupted (its body changes and it is
//! marked as corrupted, which is what the simulated AT detects). Any
//! process, old or new, whose state received an erroneous message is
//! contaminated from then on (until a rollback restores an earlier state),
//! and everything it sends is erroneous too: the paper's premise that a
//! state "influenced directly or indirectly" by an erroneous message is
//! contaminated, which is what lets an AT downstream validate upstream
//! states (docs/mdcd.md, "Faults and the AT").

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use serde::Serialize;

use super::rng::mix;
use crate::mdcd::runtime::{Application, Output};

/// Which application a component runs in the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// The generic application: ticks, folds in rounds, reports.
    Counter,
    /// The P2P client: requests, replies, reports replies in order.
    Client,
    /// The P2P router: forwards requests and replies to their client.
    Router,
}

impl AppKind {
    /// Parses `counter`, `client` or `router`.
    pub fn parse(s: &str) -> Option<AppKind> {
        match s {
            "counter" => Some(AppKind::Counter),
            "client" => Some(AppKind::Client),
            "router" => Some(AppKind::Router),
            _ => None,
        }
    }
}

/// What a simulated message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MsgKind {
    /// A counter application's numbered message.
    Data,
    /// A P2P request.
    Request,
    /// A P2P reply.
    Reply,
    /// A report to the world (external).
    Report,
}

/// A message of the simulated applications. `src` and `dst` are instance
/// indices (a shadow uses its twin's), `id` a per-sender number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMsg {
    /// What it is.
    pub kind: MsgKind,
    /// Sending instance.
    pub src: usize,
    /// Addressed instance (P2P), or the sender again.
    pub dst: usize,
    /// Request number, tick number or round number.
    pub id: u64,
    /// The content.
    pub body: u64,
    /// Encoded in the new version's format (on a changed port).
    pub v2: bool,
    /// Ground truth for the simulated AT: the message is erroneous (made or
    /// influenced by the injected design fault).
    pub corrupted: bool,
}

const V2_KEY: u64 = 0x9E37_79B9_7F4A_7C15;
const FAULT_MASK: u64 = 0x5BD1_E995_0000_0001;
const CONTAMINATED: u64 = 0xC0_4A11;

fn encode_v2(body: u64) -> u64 {
    body.rotate_left(13) ^ V2_KEY
}

fn decode_v2(body: u64) -> u64 {
    (body ^ V2_KEY).rotate_right(13)
}

/// What the application knows about one of its links.
#[derive(Debug, Clone)]
pub struct LinkCfg {
    /// This end's port is in the upgrade's `changes` (new version only).
    pub changed: bool,
}

/// The static part of an application: who it is and where its links go.
#[derive(Debug, Clone)]
pub struct AppCfg {
    /// Its instance index (a shadow's twin's).
    pub me: usize,
    /// Which application.
    pub kind: AppKind,
    /// The scenario's seed.
    pub seed: u64,
    /// Ticks it acts on.
    pub ticks: u64,
    /// Its links, in the process's link order.
    pub links: Vec<LinkCfg>,
    /// Its external ports.
    pub external: Vec<String>,
    /// P2P clients (instance indices), for choosing whom to ask.
    pub clients: Vec<usize>,
    /// For a router: the link towards each client.
    pub routes: HashMap<usize, usize>,
    /// For a client: the link it sends on.
    pub out_link: Option<usize>,
}

/// The mutable state of an application (what a checkpoint saves).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppState {
    ticks: u64,
    queues: Vec<VecDeque<(u64, bool)>>,
    acc: u64,
    rounds: u64,
    corrupted: bool,
    pending: BTreeMap<u64, (usize, u64, bool)>,
    next_report: u64,
}

/// A simulated application process: old or new version of a component.
pub struct SimApp {
    cfg: Rc<AppCfg>,
    new_version: bool,
    fault_at: Option<u64>,
    clock: Rc<Cell<u64>>,
    st: AppState,
}

impl SimApp {
    /// An application; `new_version` with the changed format and the fault
    /// from step `fault_at`; `clock` is the simulator's current step.
    pub fn new(cfg: Rc<AppCfg>, new_version: bool, fault_at: Option<u64>, clock: Rc<Cell<u64>>) -> SimApp {
        let st = AppState { queues: vec![VecDeque::new(); cfg.links.len()], ..AppState::default() };
        SimApp { cfg, new_version, fault_at, clock, st }
    }

    /// Whether it has ticks left to act on.
    pub fn wants_tick(&self) -> bool {
        match self.cfg.kind {
            AppKind::Counter => self.st.ticks < self.cfg.ticks && !self.cfg.links.is_empty(),
            AppKind::Client => {
                self.st.ticks < self.cfg.ticks && self.cfg.clients.len() > 1 && self.cfg.out_link.is_some()
            }
            AppKind::Router => false,
        }
    }

    fn faulty_now(&self) -> bool {
        self.new_version && self.fault_at.is_some_and(|f| self.clock.get() >= f)
    }

    fn internal(&self, link: usize, mut msg: SimMsg) -> Output<SimMsg> {
        if self.faulty_now() {
            msg.body ^= FAULT_MASK;
            msg.corrupted = true;
        } else if self.st.corrupted && !msg.corrupted {
            // The paper's premise (§3.2): a state influenced, directly or
            // indirectly, by an erroneous message is contaminated, and so is
            // everything it sends; an AT downstream judges it as such.
            msg.body = mix(&[msg.body, CONTAMINATED]);
            msg.corrupted = true;
        }
        if self.new_version && self.cfg.links.get(link).is_some_and(|l| l.changed) {
            msg.body = encode_v2(msg.body);
            msg.v2 = true;
        }
        Output::Internal { link, msg }
    }

    fn external(&self, msg: SimMsg, out: &mut Vec<Output<SimMsg>>) {
        for port in &self.cfg.external {
            let mut m = msg.clone();
            m.corrupted |= self.st.corrupted;
            if self.faulty_now() {
                m.body ^= FAULT_MASK;
                m.corrupted = true;
            }
            out.push(Output::External { port: port.clone(), msg: m });
        }
    }
}

impl Application for SimApp {
    type Msg = SimMsg;
    type Snapshot = AppState;

    fn snapshot(&self) -> AppState {
        self.st.clone()
    }

    fn restore(&mut self, snapshot: &AppState) {
        self.st = snapshot.clone();
    }

    fn on_tick(&mut self) -> Vec<Output<SimMsg>> {
        let mut out = Vec::new();
        if !self.wants_tick() {
            return out;
        }
        let k = self.st.ticks;
        self.st.ticks += 1;
        let me = self.cfg.me;
        match self.cfg.kind {
            AppKind::Counter => {
                for l in 0..self.cfg.links.len() {
                    let body = mix(&[self.cfg.seed, me as u64, k, l as u64]);
                    let m = SimMsg { kind: MsgKind::Data, src: me, dst: me, id: k, body, v2: false, corrupted: false };
                    out.push(self.internal(l, m));
                }
            }
            AppKind::Client => {
                let others: Vec<usize> = self.cfg.clients.iter().copied().filter(|c| *c != me).collect();
                let pick = mix(&[self.cfg.seed, me as u64, k, 7]) as usize % others.len();
                let body = mix(&[self.cfg.seed, me as u64, k, 11]);
                let m = SimMsg {
                    kind: MsgKind::Request,
                    src: me,
                    dst: others[pick],
                    id: k,
                    body,
                    v2: false,
                    corrupted: false,
                };
                if let Some(l) = self.cfg.out_link {
                    out.push(self.internal(l, m));
                }
            }
            AppKind::Router => {}
        }
        out
    }

    fn on_message(&mut self, link: usize, mut msg: SimMsg) -> Vec<Output<SimMsg>> {
        let mut out = Vec::new();
        if msg.v2 && self.new_version && self.cfg.links.get(link).is_some_and(|l| l.changed) {
            msg.body = decode_v2(msg.body);
            msg.v2 = false;
        }
        let me = self.cfg.me;
        // The state is contaminated from the receipt of an erroneous message
        // on, whether or not the application has used it yet.
        self.st.corrupted |= msg.corrupted;
        match self.cfg.kind {
            AppKind::Counter => {
                if let Some(q) = self.st.queues.get_mut(link) {
                    q.push_back((msg.body, msg.corrupted));
                }
                while !self.st.queues.is_empty() && self.st.queues.iter().all(|q| !q.is_empty()) {
                    let mut acc = self.st.acc;
                    for q in &mut self.st.queues {
                        if let Some((b, c)) = q.pop_front() {
                            acc = mix(&[acc, b]);
                            self.st.corrupted |= c;
                        }
                    }
                    self.st.acc = acc;
                    self.st.rounds += 1;
                    let m = SimMsg {
                        kind: MsgKind::Report,
                        src: me,
                        dst: me,
                        id: self.st.rounds,
                        body: acc,
                        v2: false,
                        corrupted: self.st.corrupted,
                    };
                    self.external(m, &mut out);
                }
            }
            AppKind::Client => match msg.kind {
                MsgKind::Request if msg.dst == me => {
                    let body = mix(&[msg.body, me as u64, 3]);
                    let m = SimMsg {
                        kind: MsgKind::Reply,
                        src: me,
                        dst: msg.src,
                        id: msg.id,
                        body,
                        v2: false,
                        corrupted: msg.corrupted,
                    };
                    if let Some(l) = self.cfg.out_link {
                        out.push(self.internal(l, m));
                    }
                }
                MsgKind::Reply if msg.dst == me => {
                    self.st.pending.insert(msg.id, (msg.src, msg.body, msg.corrupted));
                    while let Some((src, body, c)) = self.st.pending.remove(&self.st.next_report) {
                        let m = SimMsg {
                            kind: MsgKind::Report,
                            src,
                            dst: me,
                            id: self.st.next_report,
                            body,
                            v2: false,
                            corrupted: c,
                        };
                        self.external(m, &mut out);
                        self.st.next_report += 1;
                    }
                }
                _ => {}
            },
            AppKind::Router => {
                if matches!(msg.kind, MsgKind::Request | MsgKind::Reply) {
                    if let Some(&l) = self.cfg.routes.get(&msg.dst) {
                        out.push(self.internal(l, msg));
                    }
                }
            }
        }
        out
    }
}
