//! The guarded-upgrade part of the enactment contract (docs/runspec.md,
//! "Guarded upgrades"): what a process of a guarded upgrade is told besides
//! its wiring — its MDCD role, the version it runs, where every process of
//! the upgrade listens, its links with the roles of the processes at their
//! other ends, and where the coordinator and the shared counters are.
//!
//! Pure data and one pure function, [`specs`], from a deployment and its
//! role document (`deladas roles`, [`crate::mdcd::assign`]). The manager
//! gives each process its [`MdcdSpec`] in the host's assignment; the agent
//! writes it next to the wiring (`mdcd.json`, named by [`super::env::MDCD`])
//! and starts the process with [`super::env::MDCD_ROLE`] set.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ddd::Deployment;
use crate::mdcd::model::{Role, RoleDocument};

/// Version of the document ([`MdcdSpec::format`]).
pub const MDCD_FORMAT: u32 = 1;

/// The first TCP port of the processes' protocol endpoints on each host
/// (above the instances' port endpoints, which start at 7400).
pub const MDCD_PORT_BASE: u16 = 7700;

/// What one process of a guarded upgrade needs (the role document's entry
/// for it, resolved to addresses and link ends).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdcdSpec {
    /// [`MDCD_FORMAT`].
    pub format: u32,
    /// Its name in the protocol: the instance id, or `<instance>~shadow`.
    pub process: String,
    /// The instance of the deployment it stands for (a shadow's twin).
    pub instance: String,
    /// G_low, G_sdw or G_act.
    pub role: Role,
    /// The code of the version it runs: the upgrade's `code` for G_low, the
    /// component's own `code` otherwise.
    pub version: String,
    /// `address:port` its protocol transport listens on.
    pub listen: String,
    /// The coordinator's process name (it carries out recoveries and ends
    /// the guarded period).
    pub coordinator: String,
    /// `address:port` of the shared counters (`int_mSN_Glow`, `int_mSN_Gsdw`).
    pub counters: String,
    /// Every process of the upgrade and the coordinator: name → `address:port`.
    pub addresses: BTreeMap<String, String>,
    /// Its links, one per channel end of its instance in the DDD's channel
    /// order (the application's link indices).
    pub links: Vec<MdcdLink>,
    /// Where "passed AT" goes (the role document's `notify`).
    pub notify: Vec<String>,
    /// The other processes of its counter group.
    pub counter_peers: Vec<String>,
    /// Every process that sends protocol messages to it (for the marker
    /// flush of a recovery).
    pub senders: Vec<String>,
    /// Its component's `external` ports.
    pub external_ports: Vec<String>,
    /// Wall-clock time (ms since the Unix epoch) before which an application
    /// sends nothing of its own: every process of the upgrade is up by then.
    pub start_unix_ms: u64,
    /// Per-link validation (docs/mdcd.md, "Several G_low senders"): a G_low
    /// process and its shadow number their messages on link `l` to G_act in
    /// slot `link_slots + l` (the same base for both: its instance's place
    /// among the deployment's instances × [`SLOTS_PER_INSTANCE`]). `None`
    /// for G_act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_slots: Option<u32>,
    /// Every instance of the deployment with its component (applications
    /// that need to know their peers, e.g. the example router's rounds over
    /// every client).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, String>,
}

/// Slots of [`MdcdSpec::link_slots`] per instance (links per instance at most).
pub const SLOTS_PER_INSTANCE: u32 = 1024;

/// One link of a process: a channel end of its instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdcdLink {
    /// The channel id in the DDD.
    pub channel: String,
    /// This end's port.
    pub port: String,
    /// The process at the other end (for a shadow, a G_low peer's shadow).
    pub peer: String,
    /// Its role.
    pub peer_role: Role,
    /// The link's index at the other end.
    pub peer_link: usize,
    /// When the peer is in G_low and this process is in G_act: the peer's
    /// shadow, which gets a copy of every message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_shadow: Option<String>,
}

/// One process of a guarded upgrade: where it runs and its spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// The host it runs on.
    pub host: String,
    /// Its component.
    pub component: String,
    /// Its spec.
    pub spec: MdcdSpec,
}

/// Where the upgrade's shared services are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Services {
    /// The coordinator's name and `address:port`.
    pub coordinator: (String, String),
    /// The shared counters' `address:port`.
    pub counters: String,
    /// [`MdcdSpec::start_unix_ms`].
    pub start_unix_ms: u64,
}

/// The spec of every process of `roles` (a role document for `d`), by
/// process name; `address` gives a host's address. Protocol ports are
/// assigned per host from [`MDCD_PORT_BASE`] in the role document's order.
/// `Err` names what in the role document does not match the deployment.
pub fn specs(
    d: &Deployment,
    roles: &RoleDocument,
    address: &dyn Fn(&str) -> String,
    services: &Services,
) -> Result<BTreeMap<String, Placed>, String> {
    // Each instance's channel ends, in the DDD's channel order: (channel, end 0 = from / 1 = to).
    let mut ends: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (c, ch) in d.channels.iter().enumerate() {
        ends.entry(ch.from.instance.as_str()).or_default().push((c, 0));
        ends.entry(ch.to.instance.as_str()).or_default().push((c, 1));
    }
    let end = |c: usize, side: usize| if side == 0 { &d.channels[c].from } else { &d.channels[c].to };
    let mut role_of: BTreeMap<&str, Role> = BTreeMap::new();
    for m in &roles.groups.low {
        role_of.insert(m.instance.as_str(), Role::Low);
    }
    for m in &roles.groups.active {
        role_of.insert(m.instance.as_str(), Role::Active);
    }
    let shadow_of: BTreeMap<&str, &str> =
        roles.groups.shadow.iter().map(|s| (s.shadows.as_str(), s.instance.as_str())).collect();
    let twin_of: BTreeMap<&str, &str> =
        roles.groups.shadow.iter().map(|s| (s.instance.as_str(), s.shadows.as_str())).collect();
    // Host, component and version of every process.
    let mut placed: BTreeMap<&str, (&str, &str, &str)> = BTreeMap::new();
    for m in roles.groups.low.iter().chain(&roles.groups.active) {
        placed.insert(m.instance.as_str(), (m.host.as_str(), m.component.as_str(), m.version.as_str()));
    }
    for s in &roles.groups.shadow {
        placed.insert(s.instance.as_str(), (s.host.as_str(), s.component.as_str(), s.version.as_str()));
    }
    let mut next_port: BTreeMap<&str, u16> = BTreeMap::new();
    let mut addresses = BTreeMap::new();
    for p in &roles.processes {
        let &(host, _, _) =
            placed.get(p.instance.as_str()).ok_or_else(|| format!("`{}` is in no group", p.instance))?;
        let port = next_port.entry(host).or_insert(MDCD_PORT_BASE);
        addresses.insert(p.instance.clone(), format!("{}:{port}", address(host)));
        *port = port.checked_add(1).ok_or_else(|| format!("no protocol port left on `{host}`"))?;
    }
    addresses.insert(services.coordinator.0.clone(), services.coordinator.1.clone());
    let link_index = |inst: &str, c: usize, side: usize| -> usize {
        ends.get(inst).and_then(|v| v.iter().position(|&e| e == (c, side))).unwrap_or(0)
    };
    let instance_ids: BTreeSet<&str> = d.instances.iter().map(|i| i.id.as_str()).collect();
    let components: BTreeMap<String, String> =
        d.instances.iter().map(|i| (i.id.clone(), i.component.clone())).collect();
    let mut out = BTreeMap::new();
    for p in &roles.processes {
        let twin = twin_of.get(p.instance.as_str()).copied().unwrap_or(p.instance.as_str());
        if !d.instances.iter().any(|i| i.id == twin) {
            return Err(format!("`{twin}` is not an instance of the deployment"));
        }
        let mut links = Vec::new();
        let mut senders = BTreeSet::new();
        for &(c, side) in ends.get(twin).map(Vec::as_slice).unwrap_or(&[]) {
            let (me, other) = (end(c, side), end(c, 1 - side));
            let peer = other.instance.as_str();
            let peer_is_low = role_of.get(peer) == Some(&Role::Low);
            let peer_shadow = shadow_of.get(peer).copied();
            let (to, peer_role, copy) = match p.role {
                Role::Shadow if peer_is_low => (peer_shadow.unwrap_or(peer), Role::Shadow, None),
                Role::Shadow => (peer, Role::Active, None),
                Role::Active if peer_is_low => (peer, Role::Low, peer_shadow),
                _ => (peer, role_of.get(peer).copied().unwrap_or(Role::Active), None),
            };
            senders.insert(to.to_string());
            if let Some(s) = copy {
                senders.insert(s.to_string());
            }
            links.push(MdcdLink {
                channel: d.channels[c].id.clone(),
                port: me.port.clone(),
                peer: to.to_string(),
                peer_role,
                peer_link: link_index(peer, c, 1 - side),
                peer_shadow: copy.map(str::to_string),
            });
        }
        let &(host, component, version) = placed.get(p.instance.as_str()).ok_or_else(|| p.instance.clone())?;
        let link_slots = match p.role {
            Role::Active => None,
            Role::Low | Role::Shadow => {
                let place = instance_ids.iter().position(|i| *i == twin).unwrap_or(0) as u32;
                Some(place.saturating_mul(SLOTS_PER_INSTANCE))
            }
        };
        let spec = MdcdSpec {
            format: MDCD_FORMAT,
            process: p.instance.clone(),
            instance: twin.to_string(),
            role: p.role,
            version: version.to_string(),
            listen: addresses.get(&p.instance).cloned().unwrap_or_default(),
            coordinator: services.coordinator.0.clone(),
            counters: services.counters.clone(),
            addresses: addresses.clone(),
            links,
            notify: p.notify.clone(),
            counter_peers: p.counter_peers.clone(),
            senders: senders.into_iter().collect(),
            external_ports: p.external_ports.clone(),
            start_unix_ms: services.start_unix_ms,
            link_slots,
            components: components.clone(),
        };
        out.insert(p.instance.clone(), Placed { host: host.to_string(), component: component.to_string(), spec });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddd::{Channel, End, Instance};
    use crate::mdcd::model::{Groups, Member, Process, ShadowMember};

    #[test]
    fn links_peers_and_addresses_follow_the_role_document() {
        let inst = |id: &str, c: &str, h: &str| Instance { id: id.into(), component: c.into(), host: h.into() };
        let d = Deployment {
            instances: vec![inst("C@h1", "C", "h1"), inst("R@h2", "R", "h2")],
            channels: vec![Channel {
                id: "c1".into(),
                directed: false,
                from: End { instance: "C@h1".into(), port: "out".into(), index: None },
                to: End { instance: "R@h2".into(), port: "cin".into(), index: Some(0) },
            }],
            ..Deployment::default()
        };
        let member = |i: &str, c: &str, v: &str, h: &str| Member {
            instance: i.into(),
            component: c.into(),
            version: v.into(),
            host: h.into(),
        };
        let process = |i: &str, role, notify: &[&str]| Process {
            instance: i.into(),
            role,
            counter_peers: vec![],
            notify: notify.iter().map(|s| s.to_string()).collect(),
            shadow_peers: vec![],
            external_ports: vec![],
        };
        let roles = RoleDocument {
            format: 1,
            upgrades: vec![],
            groups: Groups {
                low: vec![member("R@h2", "R", "r-2", "h2")],
                shadow: vec![ShadowMember {
                    instance: "R@h2~shadow".into(),
                    shadows: "R@h2".into(),
                    component: "R".into(),
                    version: "r-1".into(),
                    host: "h2".into(),
                }],
                active: vec![member("C@h1", "C", "c-1", "h1")],
            },
            boundary: vec![],
            processes: vec![
                process("C@h1", Role::Active, &["R@h2~shadow"]),
                process("R@h2", Role::Low, &["C@h1", "R@h2~shadow"]),
                process("R@h2~shadow", Role::Shadow, &[]),
            ],
        };
        let services = Services {
            coordinator: ("coordinator".into(), "10.0.0.1:9000".into()),
            counters: "10.0.0.1:9001".into(),
            start_unix_ms: 7,
        };
        let s = specs(&d, &roles, &|h: &str| format!("10.0.0.{}", &h[1..]), &services).expect("specs");
        let c = &s["C@h1"].spec;
        assert_eq!(c.listen, "10.0.0.1:7700");
        assert_eq!(c.links.len(), 1);
        assert_eq!(c.links[0].peer, "R@h2");
        assert_eq!(c.links[0].peer_role, Role::Low);
        assert_eq!(c.links[0].peer_shadow.as_deref(), Some("R@h2~shadow"));
        assert_eq!(c.senders, ["R@h2", "R@h2~shadow"]);
        let sh = &s["R@h2~shadow"];
        assert_eq!((sh.host.as_str(), sh.spec.instance.as_str(), sh.spec.version.as_str()), ("h2", "R@h2", "r-1"));
        assert_eq!(sh.spec.listen, "10.0.0.2:7701", "the second process on h2");
        assert_eq!(sh.spec.links[0].peer, "C@h1");
        assert_eq!(sh.spec.links[0].peer_role, Role::Active);
        assert_eq!(sh.spec.links[0].port, "cin");
        assert_eq!(s["R@h2"].spec.addresses["coordinator"], "10.0.0.1:9000");
        assert_eq!(s["R@h2"].spec.version, "r-2");
        assert_eq!((c.link_slots, sh.spec.link_slots), (None, Some(SLOTS_PER_INSTANCE)), "twins share slots");
        assert_eq!(s["R@h2"].spec.link_slots, Some(SLOTS_PER_INSTANCE));
        assert_eq!(c.components["R@h2"], "R");
        let json = serde_json::to_string(c).expect("serialises");
        assert_eq!(serde_json::from_str::<MdcdSpec>(&json).expect("reads back"), *c);
    }
}
