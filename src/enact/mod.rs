//! The enactment contract: how a component of a DDD runs as an operating-system
//! process, which TCP endpoint each of its ports listens on, and the wiring
//! document an instance reads to find its peers. Pure data and pure functions
//! (no IO, no processes): the manager and agent (`deladas manage`, `deladas
//! agent`), the Kubernetes export and the example components all follow it.
//! `docs/runspec.md` is the user-facing description.
//!
//! - [`RunSpec::of`]: what to run for a component — its `command` attribute
//!   (program and arguments, split at white space; no shell), else its `code`
//!   when that is a `file://` URL or a plain path; `image` names a container
//!   image for Kubernetes.
//! - [`Endpoints::assign`]: a TCP port for every (instance, port) on its host,
//!   stable across generations (a surviving instance keeps its ports).
//! - [`wirings`]: for every instance, its [`Wiring`]: per port, the listen
//!   endpoint and the channels with the peer's instance, port and endpoint.
//!   The `from` end of a channel dials the `to` end's endpoint (for directed
//!   channels `from` is the output end).

use std::collections::{BTreeMap, BTreeSet};

pub mod mdcd;
pub mod protocol;

use serde::{Deserialize, Serialize};

use crate::ddd::{AttrValue, Component, Deployment, Direction};

/// Version of the wiring document ([`Wiring::format`]).
pub const WIRING_FORMAT: u32 = 1;

/// Environment variables an instance process is started with.
pub mod env {
    /// The instance id, e.g. `Router@h3`.
    pub const INSTANCE: &str = "DELADAS_INSTANCE";
    /// The component type, e.g. `Router`.
    pub const COMPONENT: &str = "DELADAS_COMPONENT";
    /// The host id, e.g. `h3`.
    pub const HOST: &str = "DELADAS_HOST";
    /// The generation of the deployment the process was started for.
    pub const GENERATION: &str = "DELADAS_GENERATION";
    /// Path of the wiring document (JSON, [`super::Wiring`]). It is replaced
    /// atomically (write, fsync, rename) when the instance is rewired, and the
    /// process then gets `SIGHUP`; a process may also poll its modification
    /// time (Kubernetes updates mounted ConfigMaps without a signal).
    pub const WIRING: &str = "DELADAS_WIRING";
    /// A directory of the instance's own (kept across restarts in place; the
    /// example components write their `status.json` there).
    pub const STATE_DIR: &str = "DELADAS_STATE_DIR";
    /// During a guarded upgrade only: path of the process's MDCD document
    /// (JSON, [`super::mdcd::MdcdSpec`]): its role, version, links and peers.
    pub const MDCD: &str = "DELADAS_MDCD";
    /// During a guarded upgrade only: the process's role, `low`, `shadow` or
    /// `active` (the same as in [`MDCD`]'s document).
    pub const MDCD_ROLE: &str = "DELADAS_MDCD_ROLE";
    /// During a guarded upgrade only: the code of the version to run (the
    /// upgrade's `code` for G_low, the component's `code` otherwise).
    pub const MDCD_VERSION: &str = "DELADAS_MDCD_VERSION";
}

/// What runs for a component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Program and arguments. A program with a `/` is a path (relative paths
    /// are resolved by the agent against its bundle directory); a bare name
    /// is looked up on `PATH`.
    pub command: Vec<String>,
    /// Container image (the `image` attribute), for Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Why a component cannot be run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSpecError {
    /// The component's name.
    pub component: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl std::fmt::Display for RunSpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "component `{}`: {}", self.component, self.message)
    }
}

fn string_attr<'a>(c: &'a Component, name: &str) -> Result<Option<&'a str>, RunSpecError> {
    match c.attrs.iter().find(|a| a.name == name) {
        None => Ok(None),
        Some(a) => match &a.value {
            AttrValue::Str(s) => Ok(Some(s.as_str())),
            _ => Err(RunSpecError {
                component: c.name.clone(),
                message: format!("the `{name}` attribute must be a string"),
            }),
        },
    }
}

impl RunSpec {
    /// The run spec of a component of a DDD.
    pub fn of(c: &Component) -> Result<RunSpec, RunSpecError> {
        let image = string_attr(c, "image")?.map(str::to_string);
        let command: Vec<String> = match string_attr(c, "command")? {
            Some(cmd) => cmd.split_whitespace().map(str::to_string).collect(),
            None => match c.code.strip_prefix("file://") {
                Some(path) => vec![path.to_string()],
                None if !c.code.contains("://") && !c.code.is_empty() => vec![c.code.clone()],
                None => Vec::new(),
            },
        };
        if command.is_empty() {
            return Err(RunSpecError {
                component: c.name.clone(),
                message: format!(
                    "nothing to run: `code = \"{}\"` is not a local path, and there is no `command` attribute \
                     (e.g. `command = \"p2p-router\"`)",
                    c.code
                ),
            });
        }
        Ok(RunSpec { command, image })
    }
}

/// A TCP endpoint: a host address (IP or DNS name) and a port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP address or DNS name.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// The TCP port of every (instance, port), per host. Serialises as
/// `{"Router@h3": {"cin": 7400, …}, …}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Endpoints {
    /// Instance id → port name → TCP port.
    pub ports: BTreeMap<String, BTreeMap<String, u16>>,
}

/// The assignment ran out of ports on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortsExhausted {
    /// The host.
    pub host: String,
}

impl Endpoints {
    /// Assigns a TCP port, from `base` upwards, to every port of every
    /// instance of `d`, unique per host. Assignments in `previous` are kept
    /// for instances that are still on the same host; new ones take the
    /// lowest free ports. Deterministic: instances in DDD order, ports in
    /// declaration order.
    pub fn assign(d: &Deployment, previous: &Endpoints, base: u16) -> Result<Endpoints, PortsExhausted> {
        let mut used: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
        let mut out = Endpoints::default();
        let components: BTreeMap<&str, &Component> = d.components.iter().map(|c| (c.name.as_str(), c)).collect();
        // Keep what survives first, so that new instances never take a kept port.
        for i in &d.instances {
            let Some(c) = components.get(i.component.as_str()) else { continue };
            if let Some(old) = previous.ports.get(&i.id) {
                for p in &c.ports {
                    if let Some(&n) = old.get(&p.name) {
                        if n >= base && used.entry(i.host.as_str()).or_default().insert(n) {
                            out.ports.entry(i.id.clone()).or_default().insert(p.name.clone(), n);
                        }
                    }
                }
            }
        }
        for i in &d.instances {
            let Some(c) = components.get(i.component.as_str()) else { continue };
            for p in &c.ports {
                if out.ports.get(&i.id).is_some_and(|m| m.contains_key(&p.name)) {
                    continue;
                }
                let taken = used.entry(i.host.as_str()).or_default();
                let mut n = base;
                while taken.contains(&n) {
                    n = n.checked_add(1).ok_or_else(|| PortsExhausted { host: i.host.clone() })?;
                }
                taken.insert(n);
                out.ports.entry(i.id.clone()).or_default().insert(p.name.clone(), n);
            }
        }
        Ok(out)
    }

    /// The TCP port of `instance`'s `port`, if assigned.
    pub fn get(&self, instance: &str, port: &str) -> Option<u16> {
        self.ports.get(instance)?.get(port).copied()
    }
}

/// Which end of a channel this instance's port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The `from` end (the output end of a directed channel): it dials the peer.
    From,
    /// The `to` end: the peer dials it.
    To,
}

/// The other end of a channel, as seen from one instance port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The peer's instance id.
    pub instance: String,
    /// The peer's port.
    pub port: String,
    /// The channel's index on the peer's port, if that port is variadic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Where the peer's port listens.
    pub endpoint: Endpoint,
}

/// One channel attached to an instance port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The channel id in the DDD (`c1`, …).
    pub channel: String,
    /// Whether messages flow only from the `from` end to the `to` end.
    pub directed: bool,
    /// This port's end of the channel.
    pub side: Side,
    /// The channel's index on this port, if it is variadic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The other end.
    pub peer: Peer,
}

/// One port of an instance: where it listens and what it is wired to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortWiring {
    /// The declared direction, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Where this port accepts connections from the peers that dial it.
    pub listen: Endpoint,
    /// The channels attached to the port, in DDD order.
    pub channels: Vec<Link>,
}

/// The wiring document of one instance (the file named by
/// `DELADAS_WIRING`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wiring {
    /// [`WIRING_FORMAT`].
    pub format: u32,
    /// The deployment's generation this wiring belongs to.
    pub generation: u64,
    /// The instance id.
    pub instance: String,
    /// Its component type.
    pub component: String,
    /// Its host id.
    pub host: String,
    /// Every declared port of the component, wired or not, by name.
    pub ports: BTreeMap<String, PortWiring>,
}

/// The wiring of every instance of `d` (by instance id), with hosts'
/// addresses given by `address` (host id → IP address or DNS name; the
/// Kubernetes export gives per-instance Service names instead, hence the
/// instance and port arguments). Instances whose component or endpoints are
/// missing are left out.
pub fn wirings(
    d: &Deployment,
    generation: u64,
    endpoints: &Endpoints,
    address: &dyn Fn(&str, &str, &str) -> String,
) -> BTreeMap<String, Wiring> {
    let components: BTreeMap<&str, &Component> = d.components.iter().map(|c| (c.name.as_str(), c)).collect();
    let hosts: BTreeMap<&str, &str> = d.instances.iter().map(|i| (i.id.as_str(), i.host.as_str())).collect();
    let endpoint = |instance: &str, port: &str| -> Option<Endpoint> {
        let host = hosts.get(instance)?;
        Some(Endpoint { host: address(host, instance, port), port: endpoints.get(instance, port)? })
    };
    let mut out = BTreeMap::new();
    for i in &d.instances {
        let Some(c) = components.get(i.component.as_str()) else { continue };
        let mut ports = BTreeMap::new();
        for p in &c.ports {
            let Some(listen) = endpoint(&i.id, &p.name) else { continue };
            ports.insert(p.name.clone(), PortWiring { direction: p.direction, listen, channels: Vec::new() });
        }
        out.insert(
            i.id.clone(),
            Wiring {
                format: WIRING_FORMAT,
                generation,
                instance: i.id.clone(),
                component: i.component.clone(),
                host: i.host.clone(),
                ports,
            },
        );
    }
    for ch in &d.channels {
        for (me, other, side) in [(&ch.from, &ch.to, Side::From), (&ch.to, &ch.from, Side::To)] {
            let Some(peer_endpoint) = endpoint(&other.instance, &other.port) else { continue };
            let Some(pw) = out.get_mut(&me.instance).and_then(|w| w.ports.get_mut(&me.port)) else { continue };
            pw.channels.push(Link {
                channel: ch.id.clone(),
                directed: ch.directed,
                side,
                index: me.index,
                peer: Peer {
                    instance: other.instance.clone(),
                    port: other.port.clone(),
                    index: other.index,
                    endpoint: peer_endpoint,
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddd::{Attr, Channel, End, Instance, Port};

    fn comp(name: &str, attrs: Vec<Attr>, code: &str, ports: &[&str]) -> Component {
        Component {
            name: name.into(),
            code: code.into(),
            attrs,
            ports: ports.iter().map(|p| Port { name: (*p).into(), variadic: true, ..Port::default() }).collect(),
            ..Component::default()
        }
    }

    fn inst(id: &str, c: &str, h: &str) -> Instance {
        Instance { id: id.into(), component: c.into(), host: h.into() }
    }

    fn p2p() -> Deployment {
        Deployment {
            components: vec![
                comp("Client", vec![], "bin/client", &["in", "out"]),
                comp("Router", vec![], "r", &["cin", "cout"]),
            ],
            instances: vec![
                inst("Client@h1", "Client", "h1"),
                inst("Router@h1", "Router", "h1"),
                inst("Router@h2", "Router", "h2"),
            ],
            channels: vec![Channel {
                id: "c1".into(),
                directed: false,
                from: End { instance: "Client@h1".into(), port: "out".into(), index: None },
                to: End { instance: "Router@h2".into(), port: "cin".into(), index: Some(0) },
            }],
            ..Deployment::default()
        }
    }

    #[test]
    fn run_spec_prefers_command_then_local_code() {
        let cmd = Attr { name: "command".into(), value: AttrValue::Str("p2p-router --fast".into()) };
        let img = Attr { name: "image".into(), value: AttrValue::Str("deladas/examples:1".into()) };
        let spec = RunSpec::of(&comp("R", vec![cmd, img], "http://x/R.xml", &[])).expect("runs");
        assert_eq!(spec.command, ["p2p-router", "--fast"]);
        assert_eq!(spec.image.as_deref(), Some("deladas/examples:1"));
        assert_eq!(RunSpec::of(&comp("C", vec![], "file:///opt/c", &[])).expect("runs").command, ["/opt/c"]);
        assert_eq!(RunSpec::of(&comp("C", vec![], "bin/c", &[])).expect("runs").command, ["bin/c"]);
        let e = RunSpec::of(&comp("W", vec![], "http://x/W.xml", &[])).expect_err("nothing to run");
        assert!(e.to_string().contains("`command`"), "{e}");
        let bad = Attr { name: "command".into(), value: AttrValue::Int(3) };
        assert!(RunSpec::of(&comp("B", vec![bad], "x", &[])).is_err());
    }

    #[test]
    fn endpoints_are_unique_per_host_and_kept_across_generations() {
        let d = p2p();
        let e = Endpoints::assign(&d, &Endpoints::default(), 7400).expect("ports");
        assert_eq!(e.get("Client@h1", "in"), Some(7400));
        assert_eq!(e.get("Client@h1", "out"), Some(7401));
        assert_eq!(e.get("Router@h1", "cin"), Some(7402));
        assert_eq!(e.get("Router@h2", "cin"), Some(7400));
        // The client goes away: the router on h1 keeps its ports, a new
        // instance takes the freed ones.
        let mut d2 = d.clone();
        d2.instances.retain(|i| i.id != "Client@h1");
        d2.instances.push(inst("Client@h1#1", "Client", "h1"));
        let e2 = Endpoints::assign(&d2, &e, 7400).expect("ports");
        assert_eq!(e2.get("Router@h1", "cin"), Some(7402));
        assert_eq!(e2.get("Client@h1#1", "in"), Some(7400));
        assert_eq!(e2.get("Client@h1", "in"), None);
    }

    #[test]
    fn wiring_names_both_ends_of_every_channel() {
        let d = p2p();
        let e = Endpoints::assign(&d, &Endpoints::default(), 7400).expect("ports");
        let w = wirings(&d, 3, &e, &|h, _, _| format!("10.0.0.{}", &h[1..]));
        let client = &w["Client@h1"];
        assert_eq!(client.generation, 3);
        let out = &client.ports["out"];
        assert_eq!(out.listen, Endpoint { host: "10.0.0.1".into(), port: 7401 });
        assert_eq!(out.channels.len(), 1);
        assert_eq!(out.channels[0].side, Side::From);
        assert_eq!(out.channels[0].peer.endpoint, Endpoint { host: "10.0.0.2".into(), port: 7400 });
        let cin = &w["Router@h2"].ports["cin"];
        assert_eq!(cin.channels[0].side, Side::To);
        assert_eq!(cin.channels[0].index, Some(0));
        assert_eq!(cin.channels[0].peer.instance, "Client@h1");
        assert!(w["Router@h1"].ports["cin"].channels.is_empty());
        let json = serde_json::to_string(&w["Client@h1"]).expect("serialises");
        let back: Wiring = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, w["Client@h1"]);
    }
}
