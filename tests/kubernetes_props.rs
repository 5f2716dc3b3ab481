//! Properties of the Kubernetes export on generated deployments: every
//! instance has exactly one Pod, pinned to its host's node; every channel
//! exactly one NetworkPolicy that allows it; no policy allows a pair of Pods
//! that has no channel; names are DNS labels and never collide; the wiring
//! names the peers' Services. The deployments are built directly (random
//! hosts, components, ports, instances and channels, with awkward names:
//! ids that differ only in case, underscores), canonicalised, and kept only
//! when the DDD reader accepts them.

use std::collections::{BTreeMap, BTreeSet};

use deladas::ddd::{self, Attr, AttrValue, Channel, Component, Deployment, Direction, End, Host, Instance, Port};
use deladas::enact::{Endpoints, Wiring};
use deladas::export::kubernetes::{self as k8s, Options};
use proptest::prelude::*;
use serde_json::Value;

const HOSTS: &[&str] = &["h1", "h2", "H2", "node_a", "h_3"];
const COMPONENTS: &[&str] = &["Router", "router", "Web", "_Db"];
const PORTS: &[&str] = &["in", "out", "p", "P", "x_y"];

/// A deployment from a sequence of choices (0 is always the simplest).
fn generate(data: &[u32]) -> Deployment {
    let mut pos = 0;
    let mut pick = |n: usize| -> usize {
        let v = data.get(pos).copied().unwrap_or(0) as usize;
        pos += 1;
        if n == 0 {
            0
        } else {
            v % n
        }
    };
    let mut d = Deployment { generator: "props".into(), ..Deployment::default() };
    let nh = 1 + pick(HOSTS.len());
    d.hosts = HOSTS[..nh].iter().map(|h| Host { id: (*h).into(), attrs: vec![] }).collect();
    let nc = 1 + pick(COMPONENTS.len());
    for c in &COMPONENTS[..nc] {
        let np = 1 + pick(3);
        let mut ports = vec![];
        for p in &PORTS[..np] {
            let direction = match pick(5) {
                1 => Some(Direction::Input),
                2 => Some(Direction::Output),
                3 => Some(Direction::External),
                _ => None,
            };
            ports.push(Port { name: (*p).into(), variadic: pick(2) == 1, max: None, direction });
        }
        let s = |v: &str| AttrValue::Str(v.into());
        d.components.push(Component {
            name: (*c).into(),
            code: format!("{c}.xml"),
            attrs: vec![
                Attr { name: "command".into(), value: s(&format!("run-{c}")) },
                Attr { name: "image".into(), value: s("registry.example/app:1") },
            ],
            ports,
            ..Component::default()
        });
    }
    for h in &d.hosts.clone() {
        for c in &d.components.clone() {
            for k in 0..pick(3) {
                let k = if k == 0 { None } else { Some(k as u32) };
                d.instances.push(Instance {
                    id: ddd::instance_id(&c.name, &h.id, k),
                    component: c.name.clone(),
                    host: h.id.clone(),
                });
            }
        }
    }
    // Channels between ports of distinct instances, none on external ports,
    // at most one on a non-variadic port, no pair twice.
    let ends: Vec<(String, Port)> = d
        .instances
        .iter()
        .flat_map(|i| {
            let c = d.component(&i.component).cloned().unwrap_or_default();
            c.ports.into_iter().map(move |p| (i.id.clone(), p))
        })
        .filter(|(_, p)| p.direction != Some(Direction::External))
        .collect();
    let mut used: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut pairs = BTreeSet::new();
    for _ in 0..2 + pick(12) {
        if ends.len() < 2 {
            break;
        }
        let (a, b) = (&ends[pick(ends.len())], &ends[pick(ends.len())]);
        if a.0 == b.0 {
            continue;
        }
        let (from, to) = match (a.1.direction, b.1.direction) {
            (Some(Direction::Input), Some(Direction::Output)) => (b, a),
            (Some(Direction::Output), Some(Direction::Input)) | (None, None) => (a, b),
            _ => continue,
        };
        let free = |e: &(String, Port), used: &BTreeMap<(String, String), u32>| {
            e.1.variadic || !used.contains_key(&(e.0.clone(), e.1.name.clone()))
        };
        let key = (from.0.clone(), from.1.name.clone(), to.0.clone(), to.1.name.clone());
        let back = (to.0.clone(), to.1.name.clone(), from.0.clone(), from.1.name.clone());
        if !free(from, &used) || !free(to, &used) || pairs.contains(&key) || pairs.contains(&back) {
            continue;
        }
        pairs.insert(key);
        let mut end = |e: &(String, Port)| {
            let n = used.entry((e.0.clone(), e.1.name.clone())).or_insert(0);
            *n += 1;
            End { instance: e.0.clone(), port: e.1.name.clone(), index: e.1.variadic.then_some(*n - 1) }
        };
        let (f, t) = (end(from), end(to));
        let directed = from.1.direction.is_some();
        d.channels.push(Channel { id: String::new(), directed, from: f, to: t });
    }
    d.canonicalize();
    d
}

fn labels(v: &Value) -> &serde_json::Map<String, Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    v["metadata"]["labels"].as_object().unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn check(d: &Deployment) -> Result<(), TestCaseError> {
    let mut opts = Options::for_deployment(d);
    opts.nodes.insert(d.hosts[0].id.clone(), "worker-0.example".into());
    let r = k8s::render(d, &opts, &Endpoints::default()).map_err(|e| TestCaseError::fail(e.message))?;
    let again = k8s::render(d, &opts, &Endpoints::default()).map_err(|e| TestCaseError::fail(e.message))?;
    prop_assert_eq!(&r, &again, "deterministic");
    let objs: Vec<&Value> = r.objects.iter().map(|o| &o.value).collect();
    let of = |kind: &str| objs.iter().copied().filter(move |o| o["kind"] == kind).collect::<Vec<_>>();
    // Names: DNS labels, unique per kind; every object carries the deployment's labels.
    let mut keys = BTreeSet::new();
    for o in &objs {
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        prop_assert!(is_dns_label(name), "name {name:?}");
        prop_assert!(keys.insert(k8s::key(o)), "duplicate {:?}", k8s::key(o));
        prop_assert_eq!(&labels(o)[k8s::LABEL_DEPLOYMENT], &Value::from(opts.name.clone()));
        prop_assert_eq!(&labels(o)[k8s::LABEL_MANAGED_BY], &Value::from("deladas"));
        prop_assert_eq!(&labels(o)[k8s::LABEL_GENERATION], &Value::from("1"));
    }
    // Exactly one Pod per instance, pinned to the host's node, not evicted by taints.
    let pods = of("Pod");
    prop_assert_eq!(pods.len(), d.instances.len());
    let mut pod_of: BTreeMap<String, String> = BTreeMap::new(); // instance label -> instance id
    for i in &d.instances {
        let mine: Vec<&&Value> = pods
            .iter()
            .filter(|p| p["metadata"]["annotations"][k8s::ANNOTATION_INSTANCE_ID] == i.id.as_str())
            .collect();
        prop_assert_eq!(mine.len(), 1, "one Pod for {}", i.id);
        let p = mine[0];
        let terms = &p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        let expected = serde_json::json!([{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [opts.node(&i.host)]}]}]);
        prop_assert_eq!(terms, &expected, "pinned: {}", i.id);
        let tolerations = p["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            prop_assert!(
                tolerations.iter().any(|t| t["key"] == key
                    && t["effect"] == "NoExecute"
                    && t["operator"] == "Exists"
                    && t.get("tolerationSeconds").is_none()),
                "{} tolerates {key} forever",
                i.id
            );
        }
        let inst_label = labels(p)[k8s::LABEL_INSTANCE].as_str().unwrap_or_default().to_string();
        prop_assert!(pod_of.insert(inst_label, i.id.clone()).is_none(), "instance labels unique");
    }
    // A Service per instance port, selecting that instance's Pod only.
    let services = of("Service");
    let ports: usize = d.instances.iter().map(|i| d.component(&i.component).map_or(0, |c| c.ports.len())).sum();
    prop_assert_eq!(services.len(), ports);
    for s in &services {
        let sel = s["spec"]["selector"][k8s::LABEL_INSTANCE].as_str().unwrap_or_default();
        prop_assert_eq!(
            pod_of.get(sel).map(String::as_str),
            s["metadata"]["annotations"][k8s::ANNOTATION_INSTANCE_ID].as_str()
        );
    }
    // Policies: one default deny over every Pod; the pairs the others allow
    // are exactly the channels', one policy per channel.
    let policies = of("NetworkPolicy");
    let mut allowed: BTreeMap<(String, String, u64), usize> = BTreeMap::new();
    let mut default_deny = 0;
    for p in &policies {
        let spec = &p["spec"];
        prop_assert_eq!(&spec["policyTypes"], &serde_json::json!(["Ingress"]));
        let Some(rules) = spec["ingress"].as_array() else {
            // No ingress rule: the default deny, selecting every Pod of the deployment.
            let sel = spec["podSelector"]["matchLabels"].as_object().cloned().unwrap_or_default();
            for pod in &pods {
                prop_assert!(sel.iter().all(|(k, v)| labels(pod).get(k) == Some(v)), "default deny selects every Pod");
            }
            default_deny += 1;
            continue;
        };
        let target = spec["podSelector"]["matchLabels"][k8s::LABEL_INSTANCE].as_str().unwrap_or_default();
        prop_assert!(pod_of.contains_key(target), "policy selects one Pod of the deployment");
        for rule in rules {
            let peers = rule["from"].as_array().cloned().unwrap_or_default();
            prop_assert!(!peers.is_empty(), "no rule allows every source");
            for peer in &peers {
                if peer.get("ipBlock").is_some() {
                    // External ports: from outside the cluster, only on an external port.
                    prop_assert!(p["metadata"]["annotations"][k8s::ANNOTATION_PORT].is_string());
                    continue;
                }
                let src = peer["podSelector"]["matchLabels"][k8s::LABEL_INSTANCE].as_str().unwrap_or_default();
                prop_assert!(pod_of.contains_key(src), "source is a Pod of the deployment");
                for port in rule["ports"].as_array().cloned().unwrap_or_default() {
                    let n = port["port"].as_u64().unwrap_or_default();
                    *allowed.entry((pod_of[src].clone(), pod_of[target].clone(), n)).or_default() += 1;
                }
            }
        }
    }
    prop_assert_eq!(default_deny, 1);
    let mut expected: BTreeMap<(String, String, u64), usize> = BTreeMap::new();
    for ch in &d.channels {
        let n = u64::from(r.endpoints.get(&ch.to.instance, &ch.to.port).unwrap_or_default());
        *expected.entry((ch.from.instance.clone(), ch.to.instance.clone(), n)).or_default() += 1;
    }
    prop_assert_eq!(&allowed, &expected, "allowed pairs are exactly the channels'");
    let channel_policies =
        policies.iter().filter(|p| p["metadata"]["annotations"][k8s::ANNOTATION_CHANNEL].is_string()).count();
    prop_assert_eq!(channel_policies, d.channels.len(), "one policy per channel");
    // The wiring: peers are reached through their port's Service.
    for cm in of("ConfigMap") {
        let text = cm["data"][k8s::WIRING_FILE].as_str().unwrap_or_default();
        let w: Wiring = serde_json::from_str(text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for pw in w.ports.values() {
            prop_assert_eq!(pw.listen.host.as_str(), "0.0.0.0");
            for l in &pw.channels {
                let svc = k8s::service_name(&opts.name, &l.peer.instance, &l.peer.port);
                prop_assert_eq!(l.peer.endpoint.host.clone(), format!("{svc}.{}.svc", opts.namespace));
                prop_assert!(keys.contains(&("v1".into(), "Service".into(), opts.namespace.clone(), svc)));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn manifests_pin_every_instance_and_allow_exactly_the_channels(data in proptest::collection::vec(0u32..1000, 0..80)) {
        let d = generate(&data);
        prop_assume!(d.check().is_ok());
        check(&d)?;
    }
}

/// The generator is not vacuous: it makes deployments the reader accepts,
/// with channels, on several hosts.
#[test]
fn generated_deployments_are_varied() {
    let mut with_channels = 0;
    let mut accepted = 0;
    for seed in 0..200u32 {
        let data: Vec<u32> = (0..80).map(|i| seed.wrapping_mul(2654435761).wrapping_add(i * 40503) % 1000).collect();
        let d = generate(&data);
        if d.check().is_ok() {
            accepted += 1;
            if d.channels.len() >= 2 && d.hosts.len() >= 2 {
                with_channels += 1;
            }
        }
    }
    eprintln!("{accepted} valid, {with_channels} with channels");
    assert!(accepted >= 100, "only {accepted} of 200 generated deployments are valid");
    assert!(with_channels >= 30, "only {with_channels} have channels on several hosts");
}
