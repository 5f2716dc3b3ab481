//! The manager ↔ agent protocol (`deladas manage`, `deladas agent`): pure
//! serde types, no IO. `docs/manager.md` describes the exchange.
//!
//! One request carries everything: the agent `POST`s a [`Heartbeat`] to
//! `/agent/heartbeat` (what it runs, how it went) and the manager answers with
//! the host's [`Assignment`] (what it should run, with each instance's wiring).
//! An agent never applies an assignment older (by [`Assignment::epoch`]) than
//! one it has seen, and fences itself (stops its instances) when it has not
//! reached the manager for [`Assignment::fence_after_ms`].

use serde::{Deserialize, Serialize};

use super::Wiring;

/// Path of the agents' endpoint on the manager.
pub const HEARTBEAT_PATH: &str = "/agent/heartbeat";

/// Orders assignments: the deployment's generation, then the step of the
/// migration plan that enacts it. Compared lexicographically.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch {
    /// The deployment's generation (grows with every enacted deployment).
    pub generation: u64,
    /// The plan step within the generation (0: start and wire, 1: stop).
    pub step: u32,
}

/// What one host should run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The host.
    pub host: String,
    /// Which deployment and plan step this is.
    pub epoch: Epoch,
    /// Whether the manager counts the host as failed (it then runs nothing).
    #[serde(default)]
    pub failed: bool,
    /// After this long without reaching the manager, the agent stops every
    /// instance (fencing), in milliseconds.
    pub fence_after_ms: u64,
    /// The term of the manager that sent it (etcd's leader election; 0 with
    /// one manager). An agent refuses assignments of a lower term than one
    /// it has seen: a deposed leader's writes.
    #[serde(default)]
    pub leader_term: u64,
    /// Every instance the host should run.
    pub instances: Vec<AssignedInstance>,
}

/// One instance an agent should run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedInstance {
    /// Instance id (`Router@h3`).
    pub id: String,
    /// Component type.
    pub component: String,
    /// Program and arguments ([`super::RunSpec::command`]).
    pub command: Vec<String>,
    /// The wiring document to give it.
    pub wiring: Wiring,
    /// During a guarded upgrade: the process's MDCD document (role, version,
    /// links, peers); absent otherwise. A change restarts the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdcd: Option<super::mdcd::MdcdSpec>,
}

/// How an instance process is doing, as its agent sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// The process runs.
    Running,
    /// It exited and will be restarted after a back-off.
    BackingOff,
    /// It crashed too often (a crash loop) or cannot be started: the agent
    /// gave up; the manager treats it as an instance failure.
    Failed,
}

/// One instance an agent runs (or tried to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedInstance {
    /// Instance id.
    pub id: String,
    /// Its state.
    pub state: InstanceState,
    /// Process id, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Times the process was restarted in place.
    pub restarts: u32,
    /// The generation of the wiring it last got.
    pub generation: u64,
    /// Why it failed or last exited, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

/// An agent's periodic report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The host the agent runs on.
    pub host: String,
    /// The host's address, as peers reach it (used in the wiring).
    pub address: String,
    /// The newest assignment epoch the agent has applied.
    pub epoch: Epoch,
    /// Whether the agent has fenced itself since its last heartbeat.
    #[serde(default)]
    pub fenced: bool,
    /// Every instance it runs or supervises.
    pub instances: Vec<ObservedInstance>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_order_by_generation_then_step() {
        let a = Epoch { generation: 2, step: 1 };
        let b = Epoch { generation: 3, step: 0 };
        assert!(a < b);
        assert!(Epoch { generation: 3, step: 1 } > b);
        let json = serde_json::to_string(&Heartbeat {
            host: "h1".into(),
            address: "10.210.0.11".into(),
            epoch: a,
            fenced: false,
            instances: vec![ObservedInstance {
                id: "Router@h1".into(),
                state: InstanceState::BackingOff,
                pid: None,
                restarts: 2,
                generation: 2,
                last_exit: Some("killed by SIGKILL".into()),
            }],
        })
        .expect("serialises");
        assert!(json.contains("\"backing_off\""), "{json}");
        let back: Heartbeat = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back.instances[0].restarts, 2);
    }
}
