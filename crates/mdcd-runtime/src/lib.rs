//! The MDCD guarded-upgrade protocol (mdcd.md §2; Tai, Tso and Sanders, §3.1–3.2
//! and figures 2–4) as a transport-independent library: one state machine per
//! role that wraps an application process.
//!
//! - [`LowProcess`] (`low.rs`, figure 2): a G_low process, running the new,
//!   low-confidence code. Bumps the cluster's shared `int_mSN_Glow` on every
//!   message to G_act and checks its external output with the AT.
//! - [`ActiveProcess`] (`active.rs`, figure 3): a G_act process, in service
//!   and unchanged. Checkpoints by rules S1/S2, logs on the receiver side,
//!   runs the AT on external output while potentially contaminated, reclaims
//!   memory on "passed AT", and rolls back on recovery.
//! - [`ShadowProcess`] (`shadow.rs`, figure 4): a G_sdw process, the old
//!   version in the background. Suppresses and logs its output (sender side,
//!   indexed by `int_mSN_Gsdw`), keeps `iVR_low`, and takes over from its twin
//!   on recovery by re-sending or suppressing.
//!
//! The shared part (`state.rs`) is what G_act and G_sdw have in common: the
//! `dirty_bit`, the local `int_mSN_Glow`, the checkpoint array with each
//! checkpoint's receiver-side log, memory reclamation and rollback.
//!
//! The state machines know nothing about channels, time or hosts: a process
//! is handed events (a message on one of its links, a tick, a "passed AT", a
//! counter broadcast, a recovery) and answers with [`Effect`]s that the
//! embedding transport carries out. The application is anything that
//! implements [`Application`]. Two transports carry them out: the
//! deterministic simulator (`deladas::mdcd::sim`), and, between real OS
//! processes:
//!
//! - [`wire`]: the serialisable envelope ([`Wire`], one JSON line), with the
//!   sender's recovery epoch on every message;
//! - [`Transport`] (`net.rs`): TCP with std::net, a thread per connection,
//!   FIFO per pair of processes;
//! - [`CounterServer`]/[`CounterClient`] (`counter.rs`): shared counters
//!   consistent under concurrent increments;
//! - [`Node`] and [`Coordinator`] (`node.rs`): a process on the network and
//!   recovery coordinated by messages (freeze, marker flush, recovery line,
//!   cuts, resume; a new epoch each time, stale messages discarded), and the
//!   end of the guarded period (promote G_low, retire the shadows);
//! - [`Persisted`]: a G_act process's checkpoints and protocol variables,
//!   serialisable, to survive a restart.
//!
//! The crate depends on std, serde and serde_json only, so an application
//! embeds it without Z3, the language server or an HTTP stack; `deladas`
//! re-exports it as `deladas::mdcd::runtime`.

#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]

mod active;
mod counter;
mod low;
mod net;
mod node;
mod shadow;
mod stamp;
mod state;
pub mod wire;

pub use active::ActiveProcess;
pub use counter::{CounterClient, CounterServer, LocalCounters, SharedCounter};
pub use low::LowProcess;
pub use net::Transport;
pub use node::{Coordinator, Node, NodeConfig, PeerLink, Proc, World};
pub use shadow::ShadowProcess;
pub use stamp::Stamp;
pub use state::{Checkpoint, LogEntry, Persisted, ProtocolStats, Recovery};
pub use wire::{Body, Wire};

/// Values of the MDCD message counters (`int_mSN_Glow`, `int_mSN_Gsdw`,
/// `iVR_low`): sequence numbers of messages from the low-confidence cluster
/// to G_act, 0 before the first one.
pub type Counter = u64;

/// An application process wrapped by the protocol: the component's code.
/// It must be deterministic: the same state and the same input give the
/// same output, so that a rollback followed by a replay recomputes exactly
/// what was undone.
pub trait Application {
    /// An application-purpose message (internal or external).
    type Msg: Clone + std::fmt::Debug;
    /// What [`Application::snapshot`] saves: everything needed to resume.
    type Snapshot: Clone;

    /// A copy of the whole application state (taken by `checkpointing`).
    fn snapshot(&self) -> Self::Snapshot;
    /// Puts a snapshot back (rollback).
    fn restore(&mut self, snapshot: &Self::Snapshot);
    /// `application_msg_reception(m)`: the message `msg` arrives on link
    /// `link`; the answer is the messages it makes ready to send.
    fn on_message(&mut self, link: usize, msg: Self::Msg) -> Vec<Output<Self::Msg>>;
    /// A step of the application's own schedule (not a message).
    fn on_tick(&mut self) -> Vec<Output<Self::Msg>>;
    /// `error_compensation(m)`: a corrected message for one that failed the
    /// AT, or `None` when compensation is not feasible (the default).
    fn compensate(&mut self, _msg: &Self::Msg) -> Option<Self::Msg> {
        None
    }
}

/// One message an application has ready to send (`outgoing_message_m_ready`).
#[derive(Debug, Clone, PartialEq)]
pub enum Output<M> {
    /// An internal message on one of the process's links.
    Internal {
        /// The link (an index into the process's [`Link`] table).
        link: usize,
        /// The message.
        msg: M,
    },
    /// An external message to the world (`receiver(m) == device`) on the
    /// named external port.
    External {
        /// The external port.
        port: String,
        /// The message.
        msg: M,
    },
}

/// What a process knows about one of its links (one end of a channel):
/// the role of the process at the other end. A message to a G_low process is
/// also delivered to that process's shadow by the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The peer process's role.
    pub peer_role: Role,
}

/// A message on the wire with what the protocol piggybacks on it
/// (figures 2–4: `msg_sending(m, dirty_bit, int_mSN_Glow, receiver(m))`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Envelope<M> {
    /// The application message.
    pub msg: M,
    /// The sender's `dirty_bit`: 1 when its state is potentially contaminated
    /// (always 1 for G_low).
    pub dirty: bool,
    /// The sender's `int_mSN_Glow` (for G_low, the message's own number
    /// when it goes to G_act): a [`Stamp`], one entry per numbering (slot 0
    /// alone for the paper's single counter, one slot per link for per-link
    /// validation).
    pub counter: Stamp,
    /// The sender's per-link send sequence number (0, 1, …): lets the
    /// transport keep links FIFO and drop messages a rollback undid.
    pub seq: u64,
}

/// Which shared counter a broadcast updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterGroup {
    /// `int_mSN_Glow`, shared by G_low (figure 2).
    Low,
    /// `int_mSN_Gsdw`, shared by G_sdw (figure 4).
    Shadow,
    /// `ext_mSN_Glow`: external messages G_low has sent (figure 4 reclaims
    /// the external log by `m.ext_mSN_Glow`).
    LowExt,
    /// The shadows' count of the external messages they generated, the
    /// index of `ext_msg_log`.
    ShadowExt,
}

/// What a process asks its transport to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<M> {
    /// Send an internal message on a link.
    Send {
        /// The link.
        link: usize,
        /// The message with its piggybacked protocol fields.
        env: Envelope<M>,
    },
    /// `msg_sending(m, device)`: the world receives `msg` on `port`.
    External {
        /// The external port.
        port: String,
        /// The message.
        msg: M,
    },
    /// `msg_sending(int_mSN, {G - P_i})`: tell the rest of the group the new
    /// value of its shared counter.
    BroadcastCounter {
        /// Which counter.
        group: CounterGroup,
        /// Its new value.
        value: Counter,
    },
    /// `msg_sending("passed AT", int_mSN_Glow, …)` to the process's `notify`
    /// list of the role document.
    PassedAt {
        /// The validated counter (`m.int_mSN_Glow`), per slot.
        value: Stamp,
        /// `m.ext_mSN_Glow`: G_low's external messages validated with it
        /// (0 from G_act, which validates none of them).
        ext: Counter,
    },
    /// `error_recovery({G_act, G_sdw, G_low})`: the AT failed and compensation
    /// is not feasible. The transport stops the cluster and calls `recover`
    /// on every G_act and G_sdw process.
    StartRecovery,
}

/// The acceptance test: a predicate on external messages.
pub trait AcceptanceTest<M> {
    /// `AT(m) == success`.
    fn accept(&mut self, msg: &M) -> bool;
}

impl<M, F: FnMut(&M) -> bool> AcceptanceTest<M> for F {
    fn accept(&mut self, msg: &M) -> bool {
        self(msg)
    }
}

/// A process's role in the MDCD protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the new, low-confidence code (G_low).
    Low,
    /// Runs the old code in the background, output suppressed (G_sdw).
    Shadow,
    /// Runs unchanged and in service (G_act).
    Active,
}

impl Role {
    /// The spelling in JSON and XML: `low`, `shadow` or `active`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Low => "low",
            Role::Shadow => "shadow",
            Role::Active => "active",
        }
    }

    /// Parses [`Role::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "low" => Some(Role::Low),
            "shadow" => Some(Role::Shadow),
            "active" => Some(Role::Active),
            _ => None,
        }
    }
}
