//! The paper's P2P client as a program (docs/runspec.md): every 100 ms it
//! sends a numbered message on `out` (to its router); it counts the messages
//! of other clients that reach it on `in`. Counters: `sent`, `received`;
//! `origins` lists the clients heard from.

#[path = "p2p.rs"]
mod p2p;
#[path = "p2p_mdcd.rs"]
mod p2p_mdcd;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use p2p::{lock, Msg, Node};

static SEQ: AtomicU64 = AtomicU64::new(0);

fn on_message(n: &Arc<Node>, port: &str, _conn: u64, m: Msg) {
    if port == "in" && m.origin != n.instance {
        n.count("received", 1);
        lock(&n.origins).insert(m.origin);
    }
}

fn main() {
    // A process of a guarded upgrade runs its MDCD role (docs/mdcd.md).
    if p2p_mdcd::wanted() {
        p2p_mdcd::run(false);
    }
    let node = Node::start(on_message);
    node.run(Duration::from_millis(100), on_message, |n| {
        let m = Msg { origin: n.instance.clone(), seq: SEQ.fetch_add(1, Ordering::SeqCst), hops: 0 };
        n.count("sent", n.send("out", &m, None));
    });
}
