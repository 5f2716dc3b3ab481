//! Kubernetes manifests that run exactly the deployment a DDD describes
//! (`deladas export DDD --to kubernetes`). deladas decides placement and
//! wiring; Kubernetes only runs what it is told, where it is told.
//!
//! Per instance (in DDD order):
//!
//! - a **ConfigMap** holding its wiring document ([`crate::enact::Wiring`])
//!   as `wiring.json`, mounted at [`WIRING_DIR`] (so `DELADAS_WIRING` is
//!   `/etc/deladas/wiring.json`). Kubernetes updates a mounted ConfigMap in
//!   place, without a signal: the process polls the file's modification time.
//!   Every `listen.host` is `0.0.0.0` (a Pod's address is not known in
//!   advance; the process binds every address), every peer endpoint is the
//!   peer port's Service, `<service>.<namespace>.svc`.
//! - a bare **Pod**, pinned to its host's node by a required node affinity on
//!   `kubernetes.io/hostname`, tolerating the `not-ready` and `unreachable`
//!   taints forever (no `tolerationSeconds`) so that Kubernetes' taint-based
//!   eviction never races deladas' re-solve. A bare Pod rather than a
//!   single-replica Deployment or StatefulSet: deladas is the controller. A
//!   ReplicaSet would create a second Pod of the same instance while the first
//!   is still running on a partitioned node; a Pod pinned to a dead node would
//!   only sit Pending anyway; and the Pod spec does not depend on the
//!   generation, so applying a new generation only relabels the Pods of the
//!   instances it keeps — they are not restarted (a Deployment restarts on
//!   any template change, labels included). `DELADAS_GENERATION` comes from
//!   the Pod's generation label through the downward API.
//! - a **Service** per declared port (ClusterIP, the port's TCP port from
//!   [`Endpoints::assign`]), so peers resolve it by DNS;
//! - for an `external` port, a **NetworkPolicy** allowing ingress to that
//!   port from outside the cluster (`ipBlock` 0.0.0.0/0 and ::/0).
//!
//! Then the NetworkPolicies of the wiring: one that denies all ingress to the
//! deployment's Pods, and one per channel allowing its `from` Pod to reach its
//! `to` Pod on the `to` port (the `from` end dials; replies flow on that
//! connection). Egress stays open so that DNS and external ports work; every
//! Pod-to-Pod pair is still decided at the receiving end.
//!
//! **Names** (DNS-1123 labels, at most 63 characters, deterministic): a
//! readable part — the instance id lower-cased, every run of other
//! characters turned into one `-` (`Router@h3#1` → `router-h3-1`), cut to 54
//! characters — then `-` and the first 8 hex digits of the SHA-256 of the
//! deployment name, a NUL and the exact id. The hash keeps ids that differ
//! only in case or punctuation apart (`Router@h3` and `router@h3`), and two
//! deladas deployments in one namespace apart; a collision of the whole name
//! is detected and refused ([`render`] fails), never merged. Services hash
//! `deployment NUL id NUL port`; channel policies hash both ends, so a
//! channel kept by a re-solve keeps its policy's name even when its `c<N>`
//! id changes.
//!
//! **Labels** on every object: `app.kubernetes.io/managed-by: deladas`,
//! `deladas.org/deployment` (the deployment name) and
//! `deladas.org/generation`; per instance also `deladas.org/instance` (its
//! object name) and `deladas.org/component`. The exact ids are annotations
//! (`deladas.org/instance-id`, `deladas.org/host`, `deladas.org/port`,
//! `deladas.org/channel`). [`prune_args`] gives the `kubectl apply --prune`
//! arguments that remove what a new DDD no longer has.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::ddd::{Channel, Deployment, Direction};
use crate::enact::{self, Endpoints, RunSpec};

/// `app.kubernetes.io/managed-by`, always `deladas`.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The deployment name (the goal's file stem, or `--name`).
pub const LABEL_DEPLOYMENT: &str = "deladas.org/deployment";
/// The generation the manifests were written for.
pub const LABEL_GENERATION: &str = "deladas.org/generation";
/// The instance's object name (see the module documentation).
pub const LABEL_INSTANCE: &str = "deladas.org/instance";
/// The instance's component.
pub const LABEL_COMPONENT: &str = "deladas.org/component";
/// Annotation: the exact instance id, e.g. `Router@h3#1`.
pub const ANNOTATION_INSTANCE_ID: &str = "deladas.org/instance-id";
/// Annotation: the deladas host id.
pub const ANNOTATION_HOST: &str = "deladas.org/host";
/// Annotation: the port name (Services, external-port policies).
pub const ANNOTATION_PORT: &str = "deladas.org/port";
/// Annotation: the channel a policy allows, e.g. `Client@h1.out -- Router@h3.cin`.
pub const ANNOTATION_CHANNEL: &str = "deladas.org/channel";
/// Where the wiring ConfigMap is mounted.
pub const WIRING_DIR: &str = "/etc/deladas";
/// The wiring document's file name in [`WIRING_DIR`] (and its ConfigMap key).
pub const WIRING_FILE: &str = "wiring.json";
/// The first TCP port [`Endpoints::assign`] hands out.
pub const DEFAULT_PORT_BASE: u16 = 7400;
/// The longest deployment name (it prefixes `-default-deny`).
pub const MAX_NAME: usize = 48;

/// What the manifests are rendered for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// The deployment name: a DNS label of at most [`MAX_NAME`] characters.
    pub name: String,
    /// The namespace every object goes to.
    pub namespace: String,
    /// Host id → Kubernetes node name; a host not listed runs on the node of
    /// its own name.
    #[serde(default)]
    pub nodes: BTreeMap<String, String>,
    /// The generation (labels, `DELADAS_GENERATION`, the wiring documents).
    pub generation: u64,
    /// The first TCP port handed out per host.
    pub port_base: u16,
}

impl Options {
    /// The defaults for a DDD: named after its goal file (`p2p.deladas` →
    /// `p2p`, `2tier.deladas` → `d-2tier`, else `deladas`), namespace
    /// `default`, generation 1.
    pub fn for_deployment(d: &Deployment) -> Options {
        let stem = d
            .goal
            .as_deref()
            .map(|g| {
                let base = g.rsplit(['/', '\\']).next().unwrap_or(g);
                base.strip_suffix(".deladas").unwrap_or(base).to_string()
            })
            .unwrap_or_default();
        let mut name = slug(&stem, MAX_NAME);
        if name.is_empty() {
            name = "deladas".into();
        } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            name = slug(&format!("d-{name}"), MAX_NAME);
        }
        Options {
            name,
            namespace: "default".into(),
            nodes: BTreeMap::new(),
            generation: 1,
            port_base: DEFAULT_PORT_BASE,
        }
    }

    /// The node an instance on `host` runs on.
    pub fn node<'a>(&'a self, host: &'a str) -> &'a str {
        self.nodes.get(host).map(String::as_str).unwrap_or(host)
    }
}

/// Why a deployment cannot be exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportError {
    /// The component concerned, if any (to point at it in the DDD).
    pub component: Option<String>,
    /// What is wrong, in a sentence.
    pub message: String,
    /// How to fix it, if there is a simple way.
    pub help: Option<String>,
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn err(message: impl Into<String>) -> ExportError {
    ExportError { component: None, message: message.into(), help: None }
}

/// One rendered object, with the instance it belongs to (`None` for the
/// deployment-wide NetworkPolicies).
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// The instance id, e.g. `Router@h3`.
    pub instance: Option<String>,
    /// The Kubernetes object.
    pub value: Value,
}

/// The manifests of a deployment, and the TCP ports they use.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// Every object, in a deterministic order: per instance its ConfigMap,
    /// Pod, Services and external-port policies; then the default-deny policy
    /// and one policy per channel, in DDD order.
    pub objects: Vec<Object>,
    /// The TCP port of every (instance, port).
    pub endpoints: Endpoints,
}

/// `s` as a DNS-1123 label part: lower-case ASCII letters and digits, every
/// run of other characters one `-`, no `-` at either end, at most `max`
/// characters.
pub fn slug(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn hash8(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// A name: the readable part (made to start with a letter, as Services
/// require) and the hash.
fn named(readable: &str, parts: &[&str]) -> String {
    let mut s = slug(readable, 54);
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s = slug(&format!("x-{s}"), 54);
    }
    format!("{s}-{}", hash8(parts))
}

/// The object name of an instance's Pod and ConfigMap (and its
/// `deladas.org/instance` label), e.g. `router-h3-1c0ffee5`.
pub fn instance_name(deployment: &str, id: &str) -> String {
    named(id, &[deployment, id])
}

/// The Service name of an instance port, e.g. `router-h3-cin-0badf00d`.
pub fn service_name(deployment: &str, id: &str, port: &str) -> String {
    named(&format!("{id}-{port}"), &[deployment, id, port])
}

/// The name of the NetworkPolicy that allows a channel; it depends on the
/// channel's ends, not on its `c<N>` id.
pub fn channel_policy_name(deployment: &str, ch: &Channel) -> String {
    named(
        &format!("{}-{}-to-{}-{}", ch.from.instance, ch.from.port, ch.to.instance, ch.to.port),
        &[deployment, &ch.from.instance, &ch.from.port, &ch.to.instance, &ch.to.port],
    )
}

/// The name of the deployment's default-deny NetworkPolicy.
pub fn default_deny_name(deployment: &str) -> String {
    format!("{deployment}-default-deny")
}

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A label value for `s`: `s` itself when it is one, else its slug.
fn label_value(s: &str) -> String {
    let ok = s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        s.to_string()
    } else {
        slug(s, 63)
    }
}

/// The label selector of everything [`render`] writes for `opts.name`.
pub fn selector(opts: &Options) -> String {
    format!("{LABEL_MANAGED_BY}=deladas,{LABEL_DEPLOYMENT}={}", opts.name)
}

/// The kinds [`render`] writes, as `kubectl apply --prune-allowlist` wants them.
pub const PRUNE_ALLOWLIST: &[&str] =
    &["core/v1/ConfigMap", "core/v1/Pod", "core/v1/Service", "networking.k8s.io/v1/NetworkPolicy"];

/// The arguments that make `kubectl apply -f DIR` remove the objects of this
/// deployment that the manifests no longer have: `--prune -l SELECTOR
/// --prune-allowlist=…` for each kind written.
pub fn prune_args(opts: &Options) -> Vec<String> {
    let mut v = vec!["--prune".to_string(), "-l".to_string(), selector(opts)];
    v.extend(PRUNE_ALLOWLIST.iter().map(|k| format!("--prune-allowlist={k}")));
    v
}

fn check_options(d: &Deployment, opts: &Options) -> Result<(), ExportError> {
    if !is_dns_label(&opts.name, MAX_NAME) || !opts.name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(ExportError {
            component: None,
            message: format!(
                "the deployment name `{}` is not a DNS label of at most {MAX_NAME} characters starting with a letter",
                opts.name
            ),
            help: Some("give `--name` with lower-case letters, digits and `-`, e.g. `--name p2p`".into()),
        });
    }
    if !is_dns_label(&opts.namespace, 63) {
        return Err(ExportError {
            component: None,
            message: format!("the namespace `{}` is not a DNS label", opts.namespace),
            help: Some("a namespace has lower-case letters, digits and `-`, at most 63 characters".into()),
        });
    }
    for (host, node) in &opts.nodes {
        if d.host(host).is_none() {
            let hosts: Vec<&str> = d.hosts.iter().map(|h| h.id.as_str()).collect();
            return Err(ExportError {
                component: None,
                message: format!("`--node {host}={node}`: the deployment has no host `{host}`"),
                help: Some(format!("the deployment's hosts: {}", hosts.join(", "))),
            });
        }
        let valid = !node.is_empty() && node.len() <= 253 && node.split('.').all(|part| is_dns_label(part, 63));
        if !valid {
            return Err(err(format!("`--node {host}={node}`: `{node}` is not a valid node name")));
        }
    }
    if opts.port_base == 0 {
        return Err(ExportError {
            component: None,
            message: "the port base is 0, which is not a TCP port".into(),
            help: Some(format!("give `--port-base` from 1 to 65535, e.g. `--port-base {DEFAULT_PORT_BASE}`")),
        });
    }
    Ok(())
}

fn meta(opts: &Options, name: &str, labels: &[(&str, String)], annotations: &[(&str, String)]) -> Value {
    let mut l = Map::new();
    l.insert(LABEL_MANAGED_BY.into(), json!("deladas"));
    l.insert(LABEL_DEPLOYMENT.into(), json!(opts.name));
    l.insert(LABEL_GENERATION.into(), json!(opts.generation.to_string()));
    for (k, v) in labels {
        l.insert((*k).into(), json!(v));
    }
    let mut m = json!({"name": name, "namespace": opts.namespace, "labels": l});
    if !annotations.is_empty() {
        let a: Map<String, Value> = annotations.iter().map(|(k, v)| ((*k).to_string(), json!(v))).collect();
        m["annotations"] = Value::Object(a);
    }
    m
}

fn pod_selector(opts: &Options, instance: &str) -> Value {
    json!({"matchLabels": {LABEL_DEPLOYMENT: opts.name, LABEL_INSTANCE: instance}})
}

/// Renders the manifests of `d`. `previous` holds the TCP ports of the
/// deployment's previous generation (empty for a first export): an instance
/// that stays on its host keeps its ports, so its Service and its peers'
/// wiring do not change.
pub fn render(d: &Deployment, opts: &Options, previous: &Endpoints) -> Result<Rendered, ExportError> {
    check_options(d, opts)?;
    let endpoints = Endpoints::assign(d, previous, opts.port_base)
        .map_err(|e| err(format!("host `{}` ran out of TCP ports", e.host)))?;
    let mut specs: BTreeMap<&str, RunSpec> = BTreeMap::new();
    for i in &d.instances {
        if specs.contains_key(i.component.as_str()) {
            continue;
        }
        let Some(c) = d.component(&i.component) else {
            return Err(err(format!("instance `{}` has no component `{}`", i.id, i.component)));
        };
        let spec = RunSpec::of(c).map_err(|e| ExportError {
            component: Some(c.name.clone()),
            message: e.to_string(),
            help: Some("give the component a `command` attribute in the goal and solve again".into()),
        })?;
        if spec.image.is_none() {
            return Err(ExportError {
                component: Some(c.name.clone()),
                message: format!("component `{}` has no `image` attribute: Kubernetes needs a container image", c.name),
                help: Some(format!(
                    "declare it in the goal, e.g. `component {}(…, image = \"registry.example/{}:1.0\")`, and solve again",
                    c.name,
                    slug(&c.name, 63)
                )),
            });
        }
        specs.insert(i.component.as_str(), spec);
    }
    let ns = &opts.namespace;
    let dep = &opts.name;
    let mut wirings = enact::wirings(d, opts.generation, &endpoints, &|_, instance, port| {
        format!("{}.{ns}.svc", service_name(dep, instance, port))
    });
    for w in wirings.values_mut() {
        for p in w.ports.values_mut() {
            p.listen.host = "0.0.0.0".into();
        }
    }
    let mut objects = vec![];
    for i in &d.instances {
        let (Some(c), Some(spec), Some(wiring)) =
            (d.component(&i.component), specs.get(i.component.as_str()), wirings.get(&i.id))
        else {
            continue;
        };
        let name = instance_name(dep, &i.id);
        let labels = [(LABEL_INSTANCE, name.clone()), (LABEL_COMPONENT, label_value(&c.name))];
        let annotations = [(ANNOTATION_INSTANCE_ID, i.id.clone()), (ANNOTATION_HOST, i.host.clone())];
        let wiring_json =
            serde_json::to_string_pretty(wiring).map_err(|e| err(format!("wiring of `{}`: {e}", i.id)))? + "\n";
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(opts, &name, &labels, &annotations),
            "data": {WIRING_FILE: wiring_json},
        }));
        let ports: Vec<Value> = c
            .ports
            .iter()
            .filter_map(|p| endpoints.get(&i.id, &p.name))
            .map(|n| json!({"containerPort": n, "protocol": "TCP"}))
            .collect();
        let env = json!([
            {"name": enact::env::INSTANCE, "value": i.id},
            {"name": enact::env::COMPONENT, "value": c.name},
            {"name": enact::env::HOST, "value": i.host},
            {"name": enact::env::GENERATION, "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.labels['{LABEL_GENERATION}']")}}},
            {"name": enact::env::WIRING, "value": format!("{WIRING_DIR}/{WIRING_FILE}")},
        ]);
        let container_name = match slug(&c.name, 63) {
            s if s.is_empty() => "component".to_string(),
            s => s,
        };
        let mut container = json!({
            "name": container_name,
            "image": spec.image,
            "imagePullPolicy": "IfNotPresent",
            "command": spec.command,
            "env": env,
            "volumeMounts": [{"name": "wiring", "mountPath": WIRING_DIR, "readOnly": true}],
        });
        if !ports.is_empty() {
            container["ports"] = Value::Array(ports);
        }
        let toleration = |key: &str| json!({"key": key, "operator": "Exists", "effect": "NoExecute"});
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta(opts, &name, &labels, &annotations),
            "spec": {
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [opts.node(&i.host)]}
                    ]}]
                }}},
                "tolerations": [toleration("node.kubernetes.io/not-ready"), toleration("node.kubernetes.io/unreachable")],
                "restartPolicy": "Always",
                "enableServiceLinks": false,
                "containers": [container],
                "volumes": [{"name": "wiring", "configMap": {"name": name}}],
            },
        }));
        for p in &c.ports {
            let Some(n) = endpoints.get(&i.id, &p.name) else { continue };
            let svc = service_name(dep, &i.id, &p.name);
            let annotations = [
                (ANNOTATION_INSTANCE_ID, i.id.clone()),
                (ANNOTATION_HOST, i.host.clone()),
                (ANNOTATION_PORT, p.name.clone()),
            ];
            objects.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(opts, &svc, &labels, &annotations),
                "spec": {
                    "type": "ClusterIP",
                    "selector": {LABEL_DEPLOYMENT: dep, LABEL_INSTANCE: name},
                    "ports": [{"port": n, "targetPort": n, "protocol": "TCP"}],
                },
            }));
            if p.direction == Some(Direction::External) {
                objects.push(json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": meta(opts, &svc, &labels, &annotations),
                    "spec": {
                        "podSelector": pod_selector(opts, &name),
                        "policyTypes": ["Ingress"],
                        "ingress": [{
                            "from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}],
                            "ports": [{"protocol": "TCP", "port": n}],
                        }],
                    },
                }));
            }
        }
    }
    let mut out: Vec<Object> = vec![];
    // Group the objects by instance: each instance's objects were pushed in
    // a run, in DDD order.
    for v in objects {
        let id = v["metadata"]["annotations"][ANNOTATION_INSTANCE_ID].as_str().map(str::to_string);
        out.push(Object { instance: id, value: v });
    }
    out.push(Object {
        instance: None,
        value: json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(opts, &default_deny_name(dep), &[], &[]),
            "spec": {
                "podSelector": {"matchLabels": {LABEL_MANAGED_BY: "deladas", LABEL_DEPLOYMENT: dep}},
                "policyTypes": ["Ingress"],
            },
        }),
    });
    for ch in &d.channels {
        let Some(port) = endpoints.get(&ch.to.instance, &ch.to.port) else { continue };
        // The ends without the `c<N>` id and the indices, which a re-solve may
        // renumber: a kept channel keeps its policy unchanged.
        let text = format!(
            "{}.{} {} {}.{}",
            ch.from.instance,
            ch.from.port,
            if ch.directed { "->" } else { "--" },
            ch.to.instance,
            ch.to.port
        );
        out.push(Object {
            instance: None,
            value: json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta(opts, &channel_policy_name(dep, ch), &[], &[(ANNOTATION_CHANNEL, text)]),
                "spec": {
                    "podSelector": pod_selector(opts, &instance_name(dep, &ch.to.instance)),
                    "policyTypes": ["Ingress"],
                    "ingress": [{
                        "from": [{"podSelector": pod_selector(opts, &instance_name(dep, &ch.from.instance))}],
                        "ports": [{"protocol": "TCP", "port": port}],
                    }],
                },
            }),
        });
    }
    // Names must not collide (a hash collision, or ids that only differ past
    // the readable part and collide in the hash too): refuse rather than merge.
    let mut seen = BTreeSet::new();
    for o in &out {
        let k = key(&o.value);
        if !seen.insert(k.clone()) {
            return Err(err(format!(
                "two objects would both be named {}/{}; rename an instance's component or host",
                k.1, k.3
            )));
        }
    }
    Ok(Rendered { objects: out, endpoints })
}

/// An object's identity: apiVersion, kind, namespace, name.
pub fn key(v: &Value) -> (String, String, String, String) {
    let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
    (s(&v["apiVersion"]), s(&v["kind"]), s(&v["metadata"]["namespace"]), s(&v["metadata"]["name"]))
}

/// The first line of every manifest file written by [`files`] for the
/// deployment `name`: a later export of the same deployment into the folder
/// removes the files that start with it and that it no longer has (and
/// never a file of another deployment, or of the user).
pub fn file_header(name: &str) -> String {
    format!("# Written by `deladas export --to kubernetes` for deployment {name}; do not edit (export again).\n")
}

/// The manifest files: one per instance (`<instance name>.yaml`: its
/// ConfigMap, Pod, Services and external-port policies) and
/// `network-policies.yaml` (default deny and one per channel), each a
/// multi-document YAML text. Sorted by file name.
pub fn files(r: &Rendered, opts: &Options) -> Vec<(String, String)> {
    let mut by_file: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for o in &r.objects {
        let f = match &o.instance {
            Some(id) => format!("{}.yaml", instance_name(&opts.name, id)),
            None => "network-policies.yaml".to_string(),
        };
        by_file.entry(f).or_default().push(&o.value);
    }
    let header = file_header(&opts.name);
    by_file
        .into_iter()
        .map(|(f, vs)| {
            let text = format!("{header}# generation {}\n{}", opts.generation, super::yaml::documents(vs));
            (f, text)
        })
        .collect()
}

/// Every object as one multi-document YAML text (for stdout).
pub fn to_yaml(r: &Rendered) -> String {
    super::yaml::documents(r.objects.iter().map(|o| &o.value))
}

/// What the export remembers between generations, in `DIR/`[`STATE_FILE`]:
/// the options and the TCP ports, so that a re-solve keeps the ports of the
/// instances it keeps and counts generations on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Always 1.
    pub format: u32,
    /// The options the manifests in the folder were rendered with.
    pub options: Options,
    /// Their TCP ports.
    pub endpoints: Endpoints,
}

/// The state file's name in the manifest folder (no `.json`/`.yaml`
/// extension, so `kubectl apply -f DIR` skips it).
pub const STATE_FILE: &str = "deladas.state";
/// The DDD the manifests in the folder run.
pub const DDD_FILE: &str = "deployment.ddd.xml";

/// One object of an [`ObjectPlan`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// `Pod`, `Service`, …
    pub kind: String,
    /// The object name.
    pub name: String,
    /// The deladas instance it belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// Which objects a new generation creates, changes and deletes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ObjectPlan {
    /// In the new manifests only.
    pub created: Vec<ObjectRef>,
    /// In both, with different content (besides the generation).
    pub changed: Vec<ObjectRef>,
    /// Pods whose spec changed: a Pod's spec cannot be updated, so these
    /// are deleted and created again (`kubectl replace --force`).
    pub replaced: Vec<ObjectRef>,
    /// In the old manifests only (`kubectl apply --prune` removes them).
    pub deleted: Vec<ObjectRef>,
    /// In both, identical but for the generation label and the wiring's
    /// generation.
    pub unchanged: Vec<ObjectRef>,
}

/// The object without what every generation changes: the generation label,
/// and the generation inside a wiring document.
fn normalised(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(l) = v.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        l.remove(LABEL_GENERATION);
    }
    if let Some(Value::String(w)) = v.pointer_mut(&format!("/data/{}", WIRING_FILE.replace('~', "~0"))) {
        if let Ok(mut doc) = serde_json::from_str::<Value>(w) {
            doc["generation"] = json!(0);
            *w = doc.to_string();
        }
    }
    v
}

fn object_ref(v: &Value) -> ObjectRef {
    ObjectRef {
        kind: v["kind"].as_str().unwrap_or_default().to_string(),
        name: v["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        instance: v["metadata"]["annotations"][ANNOTATION_INSTANCE_ID].as_str().map(str::to_string),
    }
}

/// The object-level difference between two sets of manifests. Every list
/// is sorted by kind, then name.
pub fn diff(old: &[Value], new: &[Value]) -> ObjectPlan {
    let index = |vs: &[Value]| -> BTreeMap<(String, String, String, String), Value> {
        vs.iter().map(|v| (key(v), v.clone())).collect()
    };
    let (old, new) = (index(old), index(new));
    let mut plan = ObjectPlan::default();
    for (k, n) in &new {
        match old.get(k) {
            None => plan.created.push(object_ref(n)),
            Some(o) => {
                let (on, nn) = (normalised(o), normalised(n));
                if on == nn {
                    plan.unchanged.push(object_ref(n));
                } else if k.1 == "Pod" && on["spec"] != nn["spec"] {
                    plan.replaced.push(object_ref(n));
                } else {
                    plan.changed.push(object_ref(n));
                }
            }
        }
    }
    for (k, o) in &old {
        if !new.contains_key(k) {
            plan.deleted.push(object_ref(o));
        }
    }
    for l in [&mut plan.created, &mut plan.changed, &mut plan.replaced, &mut plan.deleted, &mut plan.unchanged] {
        l.sort();
    }
    plan
}

impl ObjectPlan {
    /// The plan as text, one object a line, then the counts.
    pub fn text(&self, opts: &Options) -> String {
        let mut s = format!(
            "kubernetes objects (deployment {}, namespace {}, generation {}):\n",
            opts.name, opts.namespace, opts.generation
        );
        let line = |s: &mut String, verb: &str, o: &ObjectRef, why: &str| {
            let inst = o.instance.as_deref().map(|i| format!("   ({i})")).unwrap_or_default();
            s.push_str(&format!("  {verb:<9} {}/{}{inst}{why}\n", o.kind, o.name));
        };
        for o in &self.created {
            line(&mut s, "create", o, "");
        }
        for o in &self.changed {
            line(&mut s, "change", o, "");
        }
        for o in &self.replaced {
            line(&mut s, "replace", o, "   (a Pod's spec cannot change: delete and create)");
        }
        for o in &self.deleted {
            line(&mut s, "delete", o, "");
        }
        s.push_str(&format!(
            "objects: {} created, {} changed, {} replaced, {} deleted, {} unchanged\n",
            self.created.len(),
            self.changed.len(),
            self.replaced.len(),
            self.deleted.len(),
            self.unchanged.len()
        ));
        s
    }

    /// The plan as JSON.
    pub fn json(&self, opts: &Options) -> Value {
        json!({
            "deployment": opts.name,
            "namespace": opts.namespace,
            "generation": opts.generation,
            "created": self.created,
            "changed": self.changed,
            "replaced": self.replaced,
            "deleted": self.deleted,
            "unchanged": self.unchanged.len(),
        })
    }
}

/// The manifests of the next generation after a re-solve, and what they
/// change. `state` is the previous export's (if the folder has one): its
/// options and ports render `old` exactly as it was exported; without it,
/// `old` is taken as generation 1 with `defaults`.
pub fn next_generation(
    old: &Deployment,
    new: &Deployment,
    state: Option<&State>,
    defaults: &Options,
) -> Result<(Rendered, Options, ObjectPlan), ExportError> {
    let (old_opts, old_ports) = match state {
        Some(s) => (s.options.clone(), s.endpoints.clone()),
        None => (Options { generation: 1, ..defaults.clone() }, Endpoints::default()),
    };
    let before = render(old, &old_opts, &old_ports)?;
    let generation = old_opts.generation.checked_add(1).ok_or_else(|| ExportError {
        component: None,
        message: format!("the generation {} cannot be increased", old_opts.generation),
        help: Some(format!("the state file `{STATE_FILE}` was edited: export again into a fresh folder")),
    })?;
    let mut new_opts = Options { generation, ..old_opts };
    // A failed host is no longer in the new deployment: its node mapping goes.
    new_opts.nodes.retain(|h, _| new.host(h).is_some());
    let after = render(new, &new_opts, &before.endpoints)?;
    let values = |r: &Rendered| r.objects.iter().map(|o| o.value.clone()).collect::<Vec<_>>();
    let plan = diff(&values(&before), &values(&after));
    Ok((after, new_opts, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_keep_ids_apart() {
        let a = instance_name("p2p", "Router@h3#1");
        assert!(a.starts_with("router-h3-1-"), "{a}");
        assert!(is_dns_label(&a, 63));
        assert_ne!(instance_name("p2p", "Router@h3"), instance_name("p2p", "router@h3"));
        assert_ne!(instance_name("p2p", "Router@h3"), instance_name("other", "Router@h3"));
        assert_eq!(instance_name("p2p", "Router@h3"), instance_name("p2p", "Router@h3"));
        let long = format!("{}@h1", "C".repeat(200));
        let n = service_name("p2p", &long, "_port");
        assert!(is_dns_label(&n, 63), "{n}");
        let odd = service_name("p2p", "_x@_y", "_p");
        assert!(odd.starts_with("x-"), "{odd}");
        assert_eq!(slug("--A@@b#1--", 63), "a-b-1");
        let named = |goal: Option<&str>| {
            Options::for_deployment(&Deployment { goal: goal.map(str::to_string), ..Deployment::default() }).name
        };
        assert_eq!(named(Some("dir/p2p.deladas")), "p2p");
        assert_eq!(named(Some("2_Tier.deladas")), "d-2-tier");
        assert_eq!(named(Some("@@.deladas")), "deladas");
        assert_eq!(named(None), "deladas");
    }

    fn ddd(hosts: &[&str]) -> Deployment {
        let hs: String = hosts.iter().map(|h| format!("<host id=\"{h}\"/>")).collect();
        let is: String =
            hosts.iter().map(|h| format!("<instance id=\"Web@{h}\" component=\"Web\" host=\"{h}\"/>")).collect();
        let text = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <deployment xmlns=\"urn:deladas:ddd:1\" format=\"1\" generator=\"test\">\
             <hosts>{hs}</hosts><components><component name=\"Web\" code=\"web.xml\">\
             <attr name=\"command\" type=\"string\" value=\"web-server\"/>\
             <attr name=\"image\" type=\"string\" value=\"registry.example/web:1\"/>\
             <port name=\"front\"/></component></components><instances>{is}</instances><channels/></deployment>\n"
        );
        match crate::ddd::from_xml(&text) {
            Ok(d) => d,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn next_generation_drops_the_node_mappings_of_failed_hosts() {
        let (old, new) = (ddd(&["h1", "h2"]), ddd(&["h1"]));
        let mut opts = Options::for_deployment(&old);
        opts.nodes.insert("h1".into(), "worker-1".into());
        opts.nodes.insert("h2".into(), "worker-2".into());
        let r = render(&old, &opts, &Endpoints::default()).expect("renders");
        let state = State { format: 1, options: opts.clone(), endpoints: r.endpoints };
        let (after, next, plan) = next_generation(&old, &new, Some(&state), &opts).expect("next generation");
        assert_eq!(next.generation, 2);
        assert_eq!(next.nodes, BTreeMap::from([("h1".to_string(), "worker-1".to_string())]));
        assert!(to_yaml(&after).contains("worker-1") && !to_yaml(&after).contains("worker-2"));
        assert!(plan.deleted.iter().any(|o| o.kind == "Pod" && o.instance.as_deref() == Some("Web@h2")), "{plan:?}");
    }

    #[test]
    fn a_state_that_cannot_go_on_is_an_error() {
        let d = ddd(&["h1"]);
        let opts = Options { generation: u64::MAX, ..Options::for_deployment(&d) };
        let state = State { format: 1, options: opts.clone(), endpoints: Endpoints::default() };
        let e = next_generation(&d, &d, Some(&state), &opts).expect_err("overflow");
        assert!(e.message.contains("cannot be increased"), "{e}");
        let zero = Options { port_base: 0, ..Options::for_deployment(&d) };
        let e = render(&d, &zero, &Endpoints::default()).expect_err("port 0");
        assert!(e.message.contains("port base is 0"), "{e}");
    }

    #[test]
    fn file_headers_name_the_deployment() {
        let d = ddd(&["h1"]);
        let opts = Options::for_deployment(&d);
        let r = render(&d, &opts, &Endpoints::default()).expect("renders");
        for (_, text) in files(&r, &opts) {
            assert!(text.starts_with(&file_header(&opts.name)), "{text}");
            assert!(!text.starts_with(&file_header("other")), "{text}");
        }
        assert!(file_header("p2p").contains("for deployment p2p;"));
    }

    #[test]
    fn diff_sorts_objects_into_created_changed_replaced_deleted_unchanged() {
        let obj = |kind: &str, name: &str, generation: u64, body: Value| {
            let mut v = json!({"apiVersion": "v1", "kind": kind,
                "metadata": {"name": name, "namespace": "default", "labels": {LABEL_GENERATION: generation.to_string()}}});
            if let (Some(o), Value::Object(b)) = (v.as_object_mut(), body) {
                o.extend(b);
            }
            v
        };
        let wiring =
            |g: u64, peer: &str| json!({"data": {WIRING_FILE: json!({"generation": g, "peer": peer}).to_string()}});
        let old = vec![
            obj("ConfigMap", "same", 1, wiring(1, "a")),
            obj("ConfigMap", "rewired", 1, wiring(1, "a")),
            obj("Pod", "kept", 1, json!({"spec": {"image": "x"}})),
            obj("Pod", "new-image", 1, json!({"spec": {"image": "x"}})),
            obj("Service", "gone", 1, json!({})),
        ];
        let new = vec![
            obj("ConfigMap", "same", 2, wiring(2, "a")),
            obj("ConfigMap", "rewired", 2, wiring(2, "b")),
            obj("Pod", "kept", 2, json!({"spec": {"image": "x"}})),
            obj("Pod", "new-image", 2, json!({"spec": {"image": "y"}})),
            obj("Service", "fresh", 2, json!({})),
        ];
        let p = diff(&old, &new);
        let names = |l: &[ObjectRef]| l.iter().map(|o| format!("{}/{}", o.kind, o.name)).collect::<Vec<_>>();
        assert_eq!(names(&p.created), ["Service/fresh"]);
        assert_eq!(names(&p.changed), ["ConfigMap/rewired"]);
        assert_eq!(names(&p.replaced), ["Pod/new-image"]);
        assert_eq!(names(&p.deleted), ["Service/gone"]);
        assert_eq!(names(&p.unchanged), ["ConfigMap/same", "Pod/kept"]);
    }
}
