//! The MDCD runtime between real processes (crates/mdcd-runtime, issue 17
//! part 2): the wire envelope, shared counters under concurrent increments,
//! persisted checkpoints, the epoch rule, and guarded runs of a chain
//! Sensor → Hub → Display whose processes are separate OS processes (this
//! test binary re-executed as a node) talking over TCP on loopback: with a
//! fault, recovery coordinated by messages gives the world exactly the
//! fault-free output; without one, the end of the guarded period promotes
//! the new version and retires the shadow.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mdcd_runtime::wire::{decode, encode};
use mdcd_runtime::{
    ActiveProcess, Application, Body, Coordinator, CounterClient, CounterGroup, CounterServer, Effect, Envelope, Link,
    LowProcess, Node, NodeConfig, Output, PeerLink, Persisted, Proc, Role, ShadowProcess, SharedCounter, Stamp,
    Transport, Wire,
};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// The application: a sensor sends 0, 1, 2, …; the hub sums what it gets,
// reports the sum and forwards it to the display, which reports it. The new
// sensor sends wrong values (+1000) from tick `fault` on; a state that
// received a wrong value is wrong from then on, and so is what it sends
// (the paper's premise); the AT rejects wrong messages.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct M {
    val: u64,
    bad: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Kind {
    Sensor,
    Hub,
    Display,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct St {
    ticks: u64,
    sum: u64,
    bad: bool,
}

struct App {
    kind: Kind,
    n: u64,
    fault: Option<u64>,
    st: St,
}

impl Application for App {
    type Msg = M;
    type Snapshot = St;
    fn snapshot(&self) -> St {
        self.st.clone()
    }
    fn restore(&mut self, s: &St) {
        self.st = s.clone();
    }
    fn on_tick(&mut self) -> Vec<Output<M>> {
        if self.kind != Kind::Sensor || self.st.ticks >= self.n {
            return vec![];
        }
        let k = self.st.ticks;
        self.st.ticks += 1;
        let bad = self.fault.is_some_and(|f| k >= f);
        vec![Output::Internal { link: 0, msg: M { val: if bad { k + 1000 } else { k }, bad } }]
    }
    fn on_message(&mut self, _link: usize, m: M) -> Vec<Output<M>> {
        self.st.bad |= m.bad;
        match self.kind {
            Kind::Sensor => vec![],
            Kind::Hub => {
                self.st.sum += m.val;
                let out = M { val: self.st.sum, bad: self.st.bad };
                vec![Output::Internal { link: 1, msg: out.clone() }, Output::External { port: "hub".into(), msg: out }]
            }
            Kind::Display => vec![Output::External { port: "display".into(), msg: M { val: m.val, bad: self.st.bad } }],
        }
    }
}

fn at() -> Box<dyn mdcd_runtime::AcceptanceTest<M>> {
    Box::new(|m: &M| !m.bad)
}

// ---------------------------------------------------------------------------
// Pieces in isolation

#[test]
fn wire_messages_round_trip_as_json_lines() {
    let msgs: Vec<Wire<M>> = vec![
        Wire {
            epoch: 3,
            from: "Hub@h1".into(),
            body: Body::App {
                from_link: 1,
                to_link: 0,
                env: Envelope { msg: M { val: 7, bad: false }, dirty: true, counter: 12.into(), seq: 4 },
            },
        },
        Wire { epoch: 0, from: "S".into(), body: Body::Counter { group: CounterGroup::LowExt, value: 9 } },
        Wire { epoch: 1, from: "c".into(), body: Body::Resume { cuts: BTreeMap::from([("Hub".into(), vec![3, 4])]) } },
        Wire { epoch: 1, from: "c".into(), body: Body::Freeze },
    ];
    for w in msgs {
        let bytes = encode(&w).unwrap();
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"epoch\""), "every envelope carries its epoch: {text}");
        assert_eq!(decode::<M>(text.trim_end()).unwrap(), w);
    }
    assert!(decode::<M>("{\"epoch\": 1}").is_err());
}

#[test]
fn shared_counter_is_consistent_under_concurrent_increments() {
    let server = CounterServer::start("127.0.0.1:0").unwrap();
    let addr = server.addr();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = CounterClient::connect(addr).unwrap();
                (0..150).map(|_| c.next(CounterGroup::Low).unwrap()).collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=900).collect::<Vec<u64>>(), "unique and gap-free");
    assert_eq!(server.value(CounterGroup::Low), 900);
    assert_eq!(server.value(CounterGroup::Shadow), 0, "groups are separate");

    // Two G_low processes on one shared counter, sending concurrently:
    // every message to G_act gets its own number.
    let lows: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let app = App { kind: Kind::Sensor, n: 200, fault: None, st: St { ticks: 0, sum: 0, bad: false } };
                let mut p = LowProcess::new(app, vec![Link { peer_role: Role::Active }]);
                p.set_shared_counter(Box::new(CounterClient::connect(addr).unwrap()));
                let mut at = |m: &M| !m.bad;
                let mut seen = vec![];
                for _ in 0..200 {
                    for e in p.on_tick(&mut at) {
                        if let Effect::Send { env, .. } = e {
                            seen.push(env.counter.scalar());
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let mut counters: Vec<u64> = lows.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let increasing = counters.clone();
    counters.sort_unstable();
    counters.dedup();
    assert_eq!(counters.len(), 400, "no two messages share a counter");
    assert!(increasing.len() == 400);
    // Shadows in several OS processes share int_mSN_Gsdw the same way: the
    // indices of their sender-side logs never collide.
    let shadows: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let app = App { kind: Kind::Sensor, n: 100, fault: None, st: St { ticks: 0, sum: 0, bad: false } };
                let mut p = ShadowProcess::new(app, vec![Link { peer_role: Role::Active }]);
                p.set_shared_counter(Box::new(CounterClient::connect(addr).unwrap()));
                for _ in 0..100 {
                    p.on_tick();
                }
                p.log_indices()
            })
        })
        .collect();
    let mut idx: Vec<u64> = shadows.into_iter().flat_map(|t| t.join().unwrap()).collect();
    idx.sort_unstable();
    assert_eq!(idx, (1..=200).collect::<Vec<u64>>());
    drop(server);
    // An unreachable counter: the process can no longer be guarded.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let mut client = CounterClient::connect(dead_addr).unwrap();
    drop(dead);
    let app = App { kind: Kind::Sensor, n: 5, fault: None, st: St { ticks: 0, sum: 0, bad: false } };
    let mut p = LowProcess::new(app, vec![Link { peer_role: Role::Active }]);
    assert!(client.next(CounterGroup::Low).is_none());
    p.set_shared_counter(Box::new(client));
    let eff = p.on_tick(&mut |m: &M| !m.bad);
    assert_eq!(eff, vec![Effect::StartRecovery]);
    assert!(p.exited());
}

#[test]
fn per_link_validation_matches_each_senders_messages_on_its_own_link() {
    // Two G_low sensors, each with one link to G_act, in slots 0 and 1024
    // (docs/mdcd.md, "Several G_low senders"), and their shadows.
    let sensor = || App { kind: Kind::Sensor, n: 10, fault: None, st: St { ticks: 0, sum: 0, bad: false } };
    let link = || vec![Link { peer_role: Role::Active }];
    let mut accept = |m: &M| !m.bad;
    let mut stamps = vec![];
    for base in [0, 1024] {
        let mut low = LowProcess::new(sensor(), link());
        low.set_link_slots(base);
        for _ in 0..3 {
            for e in low.on_tick(&mut accept) {
                match e {
                    Effect::Send { env, .. } => stamps.push(env.counter),
                    other => panic!("per-link numbering needs no shared counter: {other:?}"),
                }
            }
        }
    }
    let want: Vec<Stamp> =
        [(0, 1), (0, 2), (0, 3), (1024, 1), (1024, 2), (1024, 3)].into_iter().map(|(s, v)| Stamp::of(s, v)).collect();
    assert_eq!(stamps, want, "each link numbers its own messages");
    // A "passed AT" validated sensor A's first 2 messages and B's first.
    let mut v = Stamp::of(0, 2);
    v.join(&Stamp::of(1024, 1));
    // Shadow A is behind its twin (it generated 1 message), shadow B ahead
    // of what was validated (it generated 3).
    let mut sa = ShadowProcess::new(sensor(), link());
    sa.set_link_slots(0);
    let mut sb = ShadowProcess::new(sensor(), link());
    sb.set_link_slots(1024);
    assert!(sa.on_tick().is_empty(), "suppressed in shadow mode");
    for _ in 0..3 {
        assert!(sb.on_tick().is_empty());
    }
    sa.on_passed_at(v.clone(), 0);
    sb.on_passed_at(v.clone(), 0);
    assert!(sa.log_indices().is_empty(), "A's message 1 is validated");
    assert_eq!(sb.log_indices(), vec![2, 3], "B's messages 2 and 3 are not");
    let sent = |effects: Vec<Effect<M>>| -> Vec<u64> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send { env, .. } => Some(env.msg.val),
                _ => None,
            })
            .collect()
    };
    // Recovery: B re-sends exactly its unvalidated messages; A sends nothing
    // again and suppresses its twin's validated message 2 when it gets there.
    assert_eq!(sent(sb.recover(v.clone(), 0).effects), vec![1, 2]);
    assert!(sent(sa.recover(v, 0).effects).is_empty());
    assert!(sent(sa.on_tick()).is_empty(), "A's message 2 was validated: the world has it");
    assert_eq!(sent(sa.on_tick()), vec![2], "A's message 3 was not");
    assert_eq!(sent(sb.on_tick()), vec![3], "B's next message");
}

#[test]
fn checkpoints_persist_across_a_restart() {
    let hub = || {
        let app = App { kind: Kind::Hub, n: 0, fault: None, st: St { ticks: 0, sum: 0, bad: false } };
        ActiveProcess::new(app, vec![Link { peer_role: Role::Low }, Link { peer_role: Role::Active }])
    };
    let mut at = |m: &M| !m.bad;
    let mut p = hub();
    p.on_message(0, Envelope { msg: M { val: 5, bad: false }, dirty: true, counter: 1.into(), seq: 0 }, &mut at);
    p.on_message(0, Envelope { msg: M { val: 1000, bad: true }, dirty: true, counter: 2.into(), seq: 1 }, &mut at);
    assert_eq!(p.checkpoint_indices(), vec![2], "the good report validated 1; checkpoint before 2");
    let path = std::env::temp_dir().join(format!("mdcd-persist-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&p.persist()).unwrap()).unwrap();
    // A new OS process would start from the file.
    let saved: Persisted<App> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let mut q = hub();
    q.restore_persisted(saved);
    assert_eq!(q.checkpoint_indices(), vec![2]);
    assert!(q.dirty());
    let rec = q.recover(1, &mut at);
    assert!(rec.rolled_back);
    assert_eq!(q.app().st, St { ticks: 0, sum: 5, bad: false }, "back before the wrong value");
}

/// An application message of an earlier epoch arriving after the receiver
/// resumed is stale and discarded; one of the current epoch is delivered.
#[test]
fn stale_messages_are_discarded() {
    let net = Transport::<M>::bind("Display", "127.0.0.1:0").unwrap();
    let app = App { kind: Kind::Display, n: 0, fault: None, st: St { ticks: 0, sum: 0, bad: false } };
    let cfg = NodeConfig {
        name: "Display".into(),
        coordinator: "coord".into(),
        links: vec![PeerLink { peer: "Hub".into(), peer_role: Role::Active, peer_link: 1, peer_shadow: None }],
        notify: vec![],
        counter_peers: vec![],
        senders: vec![],
    };
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let s2 = seen.clone();
    let proc = Proc::Active(ActiveProcess::new(app, vec![Link { peer_role: Role::Active }]));
    let mut node = Node::new(cfg, proc, net, at(), Box::new(move |_p: &str, m: &M| s2.borrow_mut().push(m.val)));
    let w = |epoch, body| Wire { epoch, from: "coord".into(), body };
    let app_msg = |epoch, val| Wire {
        epoch,
        from: "Hub".into(),
        body: Body::App {
            from_link: 1,
            to_link: 0,
            env: Envelope { msg: M { val, bad: false }, dirty: false, counter: 0.into(), seq: val },
        },
    };
    node.handle(app_msg(0, 1));
    node.handle(w(1, Body::Freeze));
    assert!(!node.running());
    node.handle(app_msg(0, 2)); // in flight at the recovery: buffered
    node.handle(w(1, Body::Recover { validated: 0.into(), validated_ext: 0 }));
    node.handle(w(1, Body::Resume { cuts: BTreeMap::from([("Hub".into(), vec![0, 9])]) }));
    assert!(node.running());
    assert_eq!(node.epoch(), 1);
    node.handle(app_msg(0, 3)); // stale
    node.handle(app_msg(1, 4));
    assert_eq!(*seen.borrow(), vec![1, 2, 4]);
    assert_eq!(node.stale_discarded(), 1);
}

// ---------------------------------------------------------------------------
// The chain as OS processes

/// The chain's processes: name, role, and their node configuration.
fn chain_config(name: &str) -> (Role, Kind, NodeConfig) {
    let pl = |peer: &str, peer_role, peer_link, peer_shadow: Option<&str>| PeerLink {
        peer: peer.into(),
        peer_role,
        peer_link,
        peer_shadow: peer_shadow.map(Into::into),
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let (role, kind, links, notify, senders) = match name {
        "Sensor" => (
            Role::Low,
            Kind::Sensor,
            vec![pl("Hub", Role::Active, 0, None)],
            s(&["Hub", "Display", "Sensor~shadow"]),
            s(&["Hub"]),
        ),
        "Sensor~shadow" => (Role::Shadow, Kind::Sensor, vec![pl("Hub", Role::Active, 0, None)], s(&[]), s(&["Hub"])),
        "Hub" => (
            Role::Active,
            Kind::Hub,
            vec![pl("Sensor", Role::Low, 0, Some("Sensor~shadow")), pl("Display", Role::Active, 0, None)],
            s(&["Display", "Sensor~shadow"]),
            s(&["Sensor", "Sensor~shadow", "Display"]),
        ),
        _ => (
            Role::Active,
            Kind::Display,
            vec![pl("Hub", Role::Active, 1, None)],
            s(&["Hub", "Sensor~shadow"]),
            s(&["Hub"]),
        ),
    };
    let cfg =
        NodeConfig { name: name.into(), coordinator: "coord".into(), links, notify, counter_peers: vec![], senders };
    (role, kind, cfg)
}

const NAMES: [&str; 4] = ["Sensor", "Sensor~shadow", "Hub", "Display"];
const TICKS: u64 = 30;

/// Runs as one node when the parent test re-executes this binary with
/// `MDCD_NODE` set (otherwise it does nothing): serves until the guarded
/// period ends (and it has been idle a while), G_low exits, or 30 s pass;
/// writes the world's messages and its figures to `MDCD_OUT`. Ignored in a
/// plain run (it is not a test of its own): the parent runs it with
/// `--ignored --exact node_main`.
#[test]
#[ignore = "a node process of the chain tests, started by them"]
fn node_main() {
    let Ok(name) = std::env::var("MDCD_NODE") else { return };
    let ports: BTreeMap<String, SocketAddr> = serde_json::from_str(&std::env::var("MDCD_PORTS").unwrap()).unwrap();
    let fault: Option<u64> = std::env::var("MDCD_FAULT").ok().and_then(|f| f.parse().ok());
    let out = PathBuf::from(std::env::var("MDCD_OUT").unwrap());
    let (role, kind, cfg) = chain_config(&name);
    let mut net = Transport::<M>::bind(&name, &ports[&name].to_string()).unwrap();
    for (n, a) in &ports {
        net.set_peer(n, *a);
    }
    let st = St { ticks: 0, sum: 0, bad: false };
    let links: Vec<Link> = cfg.links.iter().map(|l| Link { peer_role: l.peer_role }).collect();
    let proc = match role {
        Role::Low => Proc::Low(LowProcess::new(App { kind, n: TICKS, fault, st }, links)),
        Role::Shadow => Proc::Shadow(ShadowProcess::new(App { kind, n: TICKS, fault: None, st }, links)),
        Role::Active => Proc::Active(ActiveProcess::new(App { kind, n: TICKS, fault: None, st }, links)),
    };
    let world_file = std::fs::File::create(out.join(format!("{name}.world"))).unwrap();
    let mut world_file = std::io::LineWriter::new(world_file);
    let world = Box::new(move |port: &str, m: &M| {
        writeln!(world_file, "{port} {} {}", m.val, m.bad).unwrap();
    });
    let mut node = Node::new(cfg, proc, net, at(), world);
    let start = Instant::now();
    let mut next_tick = Instant::now() + Duration::from_millis(100);
    let mut idle_since = None;
    while start.elapsed() < Duration::from_secs(30) && node.proc().is_some() {
        if Instant::now() >= next_tick {
            node.tick();
            next_tick += Duration::from_millis(4);
        }
        let got = node.poll(Duration::from_millis(2));
        if node.guard_ended() {
            if got {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_millis(400) {
                break;
            }
        }
    }
    let (ckpts, rollbacks) = match node.proc() {
        Some(Proc::Active(p)) => (p.checkpoint_indices().len(), p.stats().rollbacks),
        Some(Proc::Shadow(p)) => (p.checkpoint_indices().len(), p.stats().rollbacks),
        _ => (0, 0),
    };
    let summary = serde_json::json!({
        "alive": node.proc().is_some(),
        "promoted": matches!(node.proc(), Some(Proc::Low(p)) if p.promoted()),
        "epoch": node.epoch(),
        "checkpoints": ckpts,
        "rollbacks": rollbacks,
        "stale": node.stale_discarded(),
        "guard_ended": node.guard_ended(),
    });
    std::fs::write(out.join(format!("{name}.json")), summary.to_string()).unwrap();
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn spawn_node(name: &str, ports: &str, fault: Option<u64>, out: &Path) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--ignored", "--exact", "node_main", "--nocapture", "--test-threads=1"])
        .env("MDCD_NODE", name)
        .env("MDCD_PORTS", ports)
        .env("MDCD_OUT", out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(f) = fault {
        c.env("MDCD_FAULT", f.to_string());
    }
    c.spawn().unwrap()
}

fn world_lines(out: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(out.join(format!("{name}.world"))).unwrap_or_default().lines().map(String::from).collect()
}

/// What the old system alone sends: the running sums of 0, 1, …, on both ports.
fn expected(port: &str) -> Vec<String> {
    (0..TICKS).map(|k| format!("{port} {} false", k * (k + 1) / 2)).collect()
}

struct Run {
    out: PathBuf,
    recoveries: u64,
    summaries: BTreeMap<String, serde_json::Value>,
}

/// Runs the chain as five OS processes (four nodes and the coordinator,
/// this test); ends the guarded period once the world has everything.
fn run_chain(tag: &str, fault: Option<u64>) -> Run {
    let out = std::env::temp_dir().join(format!("mdcd-chain-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let mut ports: BTreeMap<String, SocketAddr> = NAMES.iter().map(|n| (n.to_string(), free_port())).collect();
    ports.insert("coord".into(), free_port());
    let ports_json = serde_json::to_string(&ports).unwrap();
    let mut coord_net = Transport::<M>::bind("coord", &ports["coord"].to_string()).unwrap();
    for (n, a) in &ports {
        coord_net.set_peer(n, *a);
    }
    let mut coord = Coordinator::new(
        coord_net,
        NAMES.iter().map(|s| s.to_string()).collect(),
        vec!["Sensor".into()],
        Duration::from_secs(10),
    );
    let mut children: Vec<(String, Child)> =
        NAMES.iter().map(|n| (n.to_string(), spawn_node(n, &ports_json, fault, &out))).collect();
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        coord.serve(Duration::from_millis(20)).unwrap();
        let done = world_lines(&out, "Hub").len() as u64 >= TICKS && world_lines(&out, "Display").len() as u64 >= TICKS;
        if done {
            break;
        }
    }
    // Let anything late arrive, then end the guarded period.
    coord.serve(Duration::from_millis(300)).unwrap();
    coord.end_guard().unwrap();
    let mut summaries = BTreeMap::new();
    for (name, child) in children.drain(..) {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        if let Ok(text) = std::fs::read_to_string(out.join(format!("{name}.json"))) {
            summaries.insert(name, serde_json::from_str(&text).unwrap());
        }
    }
    Run { out, recoveries: coord.recoveries(), summaries }
}

#[test]
fn chain_over_tcp_recovers_by_messages() {
    let run = run_chain("fault", Some(12));
    let (hub, display) = (world_lines(&run.out, "Hub"), world_lines(&run.out, "Display"));
    assert_eq!(run.recoveries, 1, "{:?}", run.summaries);
    assert_eq!(hub, expected("hub"), "Hub's port: exactly the old system's output");
    assert_eq!(display, expected("display"));
    let s = &run.summaries;
    assert_eq!(s["Sensor"]["alive"], false, "G_low exited");
    assert_eq!(s["Hub"]["rollbacks"], 1, "{s:?}");
    assert_eq!(s["Hub"]["epoch"], 1);
    assert_eq!(s["Sensor~shadow"]["alive"], true, "the shadow took over and stays in service");
    assert!(world_lines(&run.out, "Sensor~shadow").is_empty() && world_lines(&run.out, "Sensor").is_empty());
    let _ = std::fs::remove_dir_all(&run.out);
}

#[test]
fn chain_over_tcp_ends_its_guarded_period() {
    let run = run_chain("clean", None);
    assert_eq!(run.recoveries, 0);
    assert_eq!(world_lines(&run.out, "Hub"), expected("hub"));
    assert_eq!(world_lines(&run.out, "Display"), expected("display"));
    let s = &run.summaries;
    assert_eq!(s["Sensor"]["promoted"], true, "{s:?}");
    assert_eq!(s["Sensor~shadow"]["alive"], false, "the shadow retired");
    assert_eq!(s["Hub"]["checkpoints"], 0, "nothing left to roll back to");
    assert_eq!(s["Hub"]["guard_ended"], true);
    let _ = std::fs::remove_dir_all(&run.out);
}

/// After a recovery (G_low stopped, its shadow took over), the end of the
/// guarded period makes a G_act process send to the shadow, which is the
/// service now, and no longer to the stopped G_low process.
#[test]
fn after_a_recovery_the_end_of_the_guard_sends_to_the_shadow_that_took_over() {
    let low = Transport::<M>::bind("L", "127.0.0.1:0").unwrap();
    let shadow = Transport::<M>::bind("L~shadow", "127.0.0.1:0").unwrap();
    let coord = Transport::<M>::bind("coord", "127.0.0.1:0").unwrap();
    let mut net = Transport::<M>::bind("A", "127.0.0.1:0").unwrap();
    for t in [&low, &shadow, &coord] {
        net.set_peer(t.name(), t.local_addr());
    }
    let app = App { kind: Kind::Sensor, n: 10, fault: None, st: St { ticks: 0, sum: 0, bad: false } };
    let cfg = NodeConfig {
        name: "A".into(),
        coordinator: "coord".into(),
        links: vec![PeerLink {
            peer: "L".into(),
            peer_role: Role::Low,
            peer_link: 0,
            peer_shadow: Some("L~shadow".into()),
        }],
        notify: vec![],
        counter_peers: vec![],
        senders: vec![],
    };
    let proc = Proc::Active(ActiveProcess::new(app, vec![Link { peer_role: Role::Low }]));
    let mut node = Node::new(cfg, proc, net, at(), Box::new(|_: &str, _: &M| {}));
    let apps_at = |t: &Transport<M>| -> Vec<u64> {
        let mut v = vec![];
        while let Some(w) = t.recv_timeout(Duration::from_millis(300)) {
            if let Body::App { env, .. } = w.body {
                v.push(env.msg.val);
            }
        }
        v
    };
    node.tick();
    assert_eq!(apps_at(&low), vec![0], "under guard: to G_low …");
    assert_eq!(apps_at(&shadow), vec![0], "… and a copy to its shadow");
    let w = |body| Wire { epoch: 1, from: "coord".into(), body };
    node.handle(w(Body::Freeze));
    node.handle(w(Body::Recover { validated: 0.into(), validated_ext: 0 }));
    node.handle(w(Body::Resume { cuts: BTreeMap::new() }));
    node.handle(w(Body::EndGuard));
    assert!(node.running() && node.guard_ended());
    node.tick();
    node.tick();
    assert_eq!(apps_at(&shadow), vec![1, 2], "the shadow that took over gets the messages");
    assert!(apps_at(&low).is_empty(), "the stopped G_low process none");
    assert!(node.errors().is_empty(), "{:?}", node.errors());
}
