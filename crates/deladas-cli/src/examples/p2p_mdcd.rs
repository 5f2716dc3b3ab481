//! The example router and client during a guarded upgrade (docs/mdcd.md,
//! "A guarded upgrade of the running example"): started with
//! `DELADAS_MDCD` (docs/runspec.md), a program runs its MDCD role with the
//! runtime (`deladas::mdcd::runtime`): every message travels in a protocol
//! envelope over the runtime's TCP transport (the ports of the wiring are
//! not used), the client's output to the world — each message of another
//! client it receives, on its external port `show` — passes the acceptance
//! test (the payload is the one its origin wrote), a shadow's output is
//! suppressed while the new version is validated, a failed AT starts a
//! recovery that the manager coordinates (the shadows take over), and the
//! end of the guarded period promotes the new version and retires the
//! shadows.
//!
//! The applications are deterministic, as the protocol requires: a router
//! forwards each new message to its other routers at once and hands
//! messages to its clients in rounds (round s: every client's message s, in
//! client order), so the old version and its shadow send their clients the
//! same sequence whatever the interleaving of their inputs.
//!
//! The design fault (`DELADAS_P2P_FAULT_FROM=N`, honoured by the new version
//! only): from the N-th message the new router hands its clients on, its
//! state is corrupted and every payload it sends is wrong (a contaminated
//! state stays contaminated: the paper's premise).
//!
//! Files in `DELADAS_STATE_DIR`: `world.log` (the client's output to the
//! world: `ORIGIN SEQ PAYLOAD` per line) and `status.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use deladas::enact::env;
use deladas::enact::mdcd::MdcdSpec;
use deladas::mdcd::runtime::{
    ActiveProcess, Application, CounterClient, Link, LowProcess, Node, NodeConfig, Output, PeerLink, Proc, Role,
    ShadowProcess, Transport,
};
use serde::{Deserialize, Serialize};

/// The environment variable of the injected design fault.
pub const FAULT_FROM: &str = "DELADAS_P2P_FAULT_FROM";
/// Messages a client sends at most (unset: no limit).
pub const COUNT: &str = "DELADAS_P2P_COUNT";

/// A message: its origin client, its number there, and its payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PMsg {
    pub origin: String,
    pub seq: u64,
    pub payload: String,
}

/// The payload the origin writes for its message `seq` (what the AT checks).
pub fn payload_of(origin: &str, seq: u64) -> String {
    // FNV-1a over origin and number: any change to the payload shows.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in origin.bytes().chain(seq.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{origin}/{seq}/{h:016x}")
}

fn accept(m: &PMsg) -> bool {
    m.payload == payload_of(&m.origin, m.seq)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A router's link to a client's `out` (messages from the client).
    FromClient,
    /// A router's link to a client's `in` (messages to the client).
    ToClient,
    /// A router's link to another router.
    Router,
    /// A client's `out`.
    Out,
    /// A client's `in`.
    In,
}

fn kind(port: &str) -> Option<Kind> {
    match port {
        "cin" => Some(Kind::FromClient),
        "cout" => Some(Kind::ToClient),
        "rin" | "rout" => Some(Kind::Router),
        "out" => Some(Kind::Out),
        "in" => Some(Kind::In),
        _ => None,
    }
}

/// The application's state (all of it is the snapshot).
#[derive(Clone, Debug, Default)]
pub struct State {
    seen: BTreeSet<(String, u64)>,
    /// Router: messages waiting for their round, by (seq, origin).
    pending: BTreeMap<(u64, String), PMsg>,
    next_round: u64,
    /// Router: messages handed to clients; client: messages sent.
    count: u64,
    /// The injected fault has struck.
    corrupt: bool,
}

/// The router or client application.
pub struct App {
    router: bool,
    me: String,
    links: Vec<Option<Kind>>,
    /// Router: the clients it serves (its rounds), in order.
    clients: Vec<String>,
    fault_from: Option<u64>,
    limit: Option<u64>,
    st: State,
}

impl App {
    fn spoil(&self, mut m: PMsg) -> PMsg {
        if self.st.corrupt {
            m.payload = format!("{}#corrupted", m.payload);
        }
        m
    }
}

impl Application for App {
    type Msg = PMsg;
    type Snapshot = State;

    fn snapshot(&self) -> State {
        self.st.clone()
    }

    fn restore(&mut self, s: &State) {
        self.st = s.clone();
    }

    fn on_tick(&mut self) -> Vec<Output<PMsg>> {
        if self.router || self.limit.is_some_and(|l| self.st.count >= l) {
            return vec![];
        }
        let seq = self.st.count;
        self.st.count += 1;
        let m = PMsg { origin: self.me.clone(), seq, payload: payload_of(&self.me, seq) };
        let outs = self.links.iter().enumerate().filter(|(_, k)| **k == Some(Kind::Out));
        outs.map(|(link, _)| Output::Internal { link, msg: m.clone() }).collect()
    }

    fn on_message(&mut self, link: usize, m: PMsg) -> Vec<Output<PMsg>> {
        if !self.router {
            // A client shows every other client's message once.
            if m.origin == self.me || !self.st.seen.insert((m.origin.clone(), m.seq)) {
                return vec![];
            }
            return vec![Output::External { port: "show".into(), msg: m }];
        }
        if !self.st.seen.insert((m.origin.clone(), m.seq)) {
            return vec![];
        }
        let mut out = Vec::new();
        for (l, k) in self.links.iter().enumerate() {
            if *k == Some(Kind::Router) && l != link {
                out.push(Output::Internal { link: l, msg: self.spoil(m.clone()) });
            }
        }
        let to_clients: Vec<usize> =
            self.links.iter().enumerate().filter(|(_, k)| **k == Some(Kind::ToClient)).map(|(l, _)| l).collect();
        if to_clients.is_empty() {
            return out;
        }
        let mut ready = Vec::new();
        if self.clients.contains(&m.origin) {
            self.st.pending.insert((m.seq, m.origin.clone()), m);
            while self.clients.iter().all(|c| self.st.pending.contains_key(&(self.st.next_round, c.clone()))) {
                for c in &self.clients {
                    if let Some(x) = self.st.pending.remove(&(self.st.next_round, c.clone())) {
                        ready.push(x);
                    }
                }
                self.st.next_round += 1;
            }
        } else {
            // From a client of another router: no round to wait for.
            ready.push(m);
        }
        for m in ready {
            self.st.count += 1;
            if self.fault_from.is_some_and(|f| self.st.count >= f) {
                self.st.corrupt = true;
            }
            for &l in &to_clients {
                out.push(Output::Internal { link: l, msg: self.spoil(m.clone()) });
            }
        }
        out
    }
}

fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Whether this process runs a role of a guarded upgrade.
pub fn wanted() -> bool {
    std::env::var_os(env::MDCD).is_some()
}

#[derive(Default)]
struct World {
    shown: u64,
    origins: BTreeSet<String>,
    corrupt: u64,
}

/// Runs the router (`router`) or the client in its MDCD role until SIGTERM.
pub fn run(router: bool) -> ! {
    // SIGHUP (a rewiring) changes nothing here: the MDCD document does.
    let ignore = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::SigIgn,
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: ignoring a signal runs no code of ours.
    if unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGHUP, &ignore) }.is_err() {
        die("cannot ignore SIGHUP");
    }
    let path = PathBuf::from(std::env::var_os(env::MDCD).unwrap_or_else(|| die("DELADAS_MDCD is not set")));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| die(&format!("cannot read `{}`: {e}", path.display())));
    let spec: MdcdSpec = serde_json::from_str(&text)
        .unwrap_or_else(|e| die(&format!("`{}` is not an MDCD document: {e}", path.display())));
    let state_dir = std::env::var_os(env::STATE_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| path.parent().map(PathBuf::from).unwrap_or_default());
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    // The fault is a design fault of the new version: the old one never has it.
    let fault_from = if spec.role == Role::Low { env_num(FAULT_FROM) } else { None };
    let kinds: Vec<Option<Kind>> = spec.links.iter().map(|l| kind(&l.port)).collect();
    // A router with clients hands them every client's messages in rounds
    // over all clients of the deployment (the instances of its clients'
    // component), so that its output does not depend on when the other
    // routers' messages arrive: with several routers (several G_low
    // senders), the new version and its shadow still send each client the
    // same sequence.
    let own: BTreeSet<String> =
        spec.links.iter().filter(|l| kind(&l.port) == Some(Kind::FromClient)).map(|l| l.peer.clone()).collect();
    let client_components: BTreeSet<&String> = own.iter().filter_map(|p| spec.components.get(p)).collect();
    let clients: Vec<String> = if own.is_empty() || client_components.is_empty() {
        own.into_iter().collect()
    } else {
        spec.components.iter().filter(|(_, c)| client_components.contains(c)).map(|(i, _)| i.clone()).collect()
    };
    let app = App {
        router,
        me: spec.instance.clone(),
        links: kinds,
        clients,
        fault_from,
        limit: env_num(COUNT),
        st: State::default(),
    };
    // The transport: retry the bind a while (the process it replaces may
    // still hold the port).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut net = loop {
        match Transport::<PMsg>::bind(&spec.process, &spec.listen) {
            Ok(n) => break n,
            Err(e) if Instant::now() > deadline => die(&format!("cannot listen on {}: {e}", spec.listen)),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    for (name, a) in &spec.addresses {
        match a.parse::<SocketAddr>() {
            Ok(a) => net.set_peer(name, a),
            Err(_) => die(&format!("`{a}` (of `{name}`) is not an address:port")),
        }
    }
    let links: Vec<Link> = spec.links.iter().map(|l| Link { peer_role: l.peer_role }).collect();
    let counters = || -> Box<CounterClient> {
        let a: SocketAddr = spec.counters.parse().unwrap_or_else(|_| die("the counters' address is not address:port"));
        Box::new(CounterClient::connect(a).unwrap_or_else(|e| die(&format!("cannot reach the shared counters: {e}"))))
    };
    // Per-link validation (docs/mdcd.md, "Several G_low senders"): the
    // messages of a G_low process and of its shadow to G_act are numbered per
    // link; the shared counters number only external messages.
    let proc = match spec.role {
        Role::Low => {
            let mut p = LowProcess::new(app, links);
            p.set_shared_counter(counters());
            if let Some(base) = spec.link_slots {
                p.set_link_slots(base);
            }
            Proc::Low(p)
        }
        Role::Shadow => {
            let mut p = ShadowProcess::new(app, links);
            p.set_shared_counter(counters());
            if let Some(base) = spec.link_slots {
                p.set_link_slots(base);
            }
            Proc::Shadow(p)
        }
        Role::Active => Proc::Active(ActiveProcess::new(app, links)),
    };
    let cfg = NodeConfig {
        name: spec.process.clone(),
        coordinator: spec.coordinator.clone(),
        links: spec
            .links
            .iter()
            .map(|l| PeerLink {
                peer: l.peer.clone(),
                peer_role: l.peer_role,
                peer_link: l.peer_link,
                peer_shadow: l.peer_shadow.clone(),
            })
            .collect(),
        notify: spec.notify.clone(),
        counter_peers: spec.counter_peers.clone(),
        senders: spec.senders.clone(),
    };
    let world = Arc::new(Mutex::new(World::default()));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join("world.log"))
        .unwrap_or_else(|e| die(&format!("cannot open world.log: {e}")));
    let mut log = std::io::LineWriter::new(log);
    let w2 = world.clone();
    let on_world = Box::new(move |_port: &str, m: &PMsg| {
        // What reaches the world, in the order it does.
        let _ = writeln!(log, "{} {} {}", m.origin, m.seq, m.payload);
        let mut w = w2.lock().unwrap_or_else(|e| e.into_inner());
        w.shown += 1;
        w.corrupt += u64::from(!accept(m));
        w.origins.insert(m.origin.clone());
    });
    let mut node = Node::new(cfg, proc, net, Box::new(accept), on_world);
    // A client sends every 200 ms under guard (every message to a client
    // costs an AT and its "passed AT" notifications).
    let period = Duration::from_millis(200);
    let mut next_tick = Instant::now();
    let mut next_status = Instant::now();
    loop {
        if now_ms() < spec.start_unix_ms {
            next_tick = Instant::now();
        } else if Instant::now() >= next_tick {
            next_tick += period;
            node.tick();
        }
        node.poll(Duration::from_millis(10));
        if Instant::now() >= next_status {
            next_status = Instant::now() + Duration::from_millis(200);
            write_status(&state_dir, &spec, &node, &world);
        }
    }
}

fn write_status(dir: &std::path::Path, spec: &MdcdSpec, node: &Node<App>, world: &Mutex<World>) {
    let w = world.lock().unwrap_or_else(|e| e.into_inner());
    let (sent, promoted, rollbacks) = match node.proc() {
        Some(Proc::Low(p)) => (p.app().st.count, p.promoted(), 0),
        Some(Proc::Active(p)) => (p.app().st.count, false, p.stats().rollbacks),
        Some(Proc::Shadow(p)) => (p.app().st.count, p.promoted(), p.stats().rollbacks),
        None => (0, false, 0),
    };
    let status = serde_json::json!({
        "instance": spec.instance,
        "process": spec.process,
        "role": spec.role.as_str(),
        "version": spec.version,
        "pid": std::process::id(),
        "alive": node.proc().is_some(),
        "promoted": promoted,
        "epoch": node.epoch(),
        "guard_ended": node.guard_ended(),
        "rollbacks": rollbacks,
        "stale": node.stale_discarded(),
        "errors": node.errors().len(),
        "counters": {"sent": sent, "received": w.shown, "corrupt_shown": w.corrupt},
        "origins": w.origins,
    });
    let tmp = dir.join("status.json.tmp");
    if std::fs::write(&tmp, status.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join("status.json"));
    }
}
