//! The role document (mdcd.md §1): the three process groups of a guarded
//! upgrade, the channels that cross the low-confidence cluster's boundary,
//! and, per process, everything its runtime needs. Serialised as JSON with
//! serde in exactly the shape mdcd.md shows; the XML form (namespace
//! `urn:deladas:mdcd:1`) carries the same fields.

use serde::{Deserialize, Serialize};

/// The role document's format version (`"format": 1`).
pub const FORMAT: u32 = 1;

/// XML namespace of the role document.
pub const NAMESPACE: &str = "urn:deladas:mdcd:1";

/// A whole role document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDocument {
    pub format: u32,
    pub groups: Groups,
    /// Channels with one end in G_low and the other in G_act.
    pub boundary: Vec<BoundaryChannel>,
    /// Every process (G_low, G_sdw and G_act members), sorted by instance id.
    pub processes: Vec<Process>,
}

/// G_low, G_sdw and G_act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Groups {
    /// Instances of upgraded components: they run the new version.
    pub low: Vec<Member>,
    /// One shadow (the old version) per G_low instance.
    pub shadow: Vec<ShadowMember>,
    /// Every other instance.
    pub active: Vec<Member>,
}

/// A G_low or G_act member: an instance of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Instance id, as in the DDD.
    pub instance: String,
    pub component: String,
    /// Code of the version it runs: the upgrade's `code` for G_low, the
    /// component's own `code` for G_act.
    pub version: String,
    pub host: String,
}

/// A G_sdw member: the old version of a G_low instance, id `<instance>~shadow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowMember {
    pub instance: String,
    /// The G_low instance it shadows.
    pub shadows: String,
    pub component: String,
    /// The old version's code.
    pub version: String,
    pub host: String,
}

/// A channel crossing the cluster boundary (its ports are unchanged ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundaryChannel {
    /// Channel id, as in the DDD.
    pub channel: String,
    /// The G_low end's instance.
    pub low: String,
    /// The G_act end's instance.
    pub active: String,
    /// The G_low end's port.
    pub low_port: String,
    /// The G_act end's port.
    pub active_port: String,
}

/// A process's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Low,
    Shadow,
    Active,
}

/// What one process's runtime needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub instance: String,
    pub role: Role,
    /// The other G_low processes it tells about each bump of `int_mSN_Glow`
    /// (G_low only; empty otherwise).
    pub counter_peers: Vec<String>,
    /// The processes it sends "passed AT" notifications to (G_low: G_act and
    /// G_sdw; G_act: the other G_act processes and G_sdw).
    pub notify: Vec<String>,
    /// Its shadow (G_low), or the instance it shadows (G_sdw).
    pub shadow_peers: Vec<String>,
    /// Its ports that talk to the world outside the deployment (ports with
    /// no channel), whose output is subject to the acceptance test.
    pub external_ports: Vec<String>,
}
