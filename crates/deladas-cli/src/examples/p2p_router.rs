//! The paper's P2P router as a program (docs/runspec.md). Routers flood the
//! overlay: a message from a client (on `cin`) or from another router (on
//! `rin` or `rout`) goes to every other router connection and to this
//! router's clients (`cout`), once per message (duplicates are dropped) and
//! for at most [`MAX_HOPS`] hops. Counters: `from_clients`, `from_routers`,
//! `forwarded` (copies sent to routers), `delivered` (copies sent to clients),
//! `duplicates`.

#[path = "p2p.rs"]
mod p2p;
#[path = "p2p_mdcd.rs"]
mod p2p_mdcd;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use p2p::{lock, Msg, Node};

/// Hops a message travels at most.
const MAX_HOPS: u32 = 16;
/// Messages remembered for dropping duplicates.
const REMEMBERED: usize = 100_000;

/// A message's identity: its origin and number.
type Key = (String, u64);

/// Messages seen (for lookups) and in arrival order (for forgetting).
static SEEN: Mutex<(Option<HashSet<Key>>, VecDeque<Key>)> = Mutex::new((None, VecDeque::new()));

/// Whether the message is new (and remember it).
fn first_time(m: &Msg) -> bool {
    let mut seen = lock(&SEEN);
    let key = (m.origin.clone(), m.seq);
    if !seen.0.get_or_insert_with(HashSet::new).insert(key.clone()) {
        return false;
    }
    seen.1.push_back(key);
    if seen.1.len() > REMEMBERED {
        if let Some(old) = seen.1.pop_front() {
            if let Some(s) = seen.0.as_mut() {
                s.remove(&old);
            }
        }
    }
    true
}

fn on_message(n: &Arc<Node>, port: &str, conn: u64, m: Msg) {
    let from = match port {
        "cin" => "from_clients",
        "rin" | "rout" => "from_routers",
        _ => return,
    };
    n.count(from, 1);
    if !first_time(&m) {
        n.count("duplicates", 1);
        return;
    }
    if m.hops >= MAX_HOPS {
        return;
    }
    let next = Msg { hops: m.hops + 1, ..m };
    let mut forwarded = 0;
    for p in ["rout", "rin"] {
        forwarded += n.send(p, &next, Some(conn));
    }
    n.count("forwarded", forwarded);
    n.count("delivered", n.send("cout", &next, None));
}

fn main() {
    // A process of a guarded upgrade runs its MDCD role (docs/mdcd.md).
    if p2p_mdcd::wanted() {
        p2p_mdcd::run(true);
    }
    let node = Node::start(on_message);
    node.run(Duration::from_millis(100), on_message, |_| {});
}
