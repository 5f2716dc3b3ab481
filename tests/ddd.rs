//! Tests of the DDD module (`deladas::ddd`): round trips, canonical order,
//! snapshots of the XML, JSON and DOT renderings, schema validation with
//! xmllint, one rejected fixture per reader rule (`tests/ddd/bad/`), valid
//! fixtures that must round-trip byte for byte (`tests/ddd/good/`), and
//! property tests (random valid deployments round-trip and validate; random
//! and mutated input never panics the reader).

use deladas::ddd::{
    from_xml, instance_id, to_dot, to_json, to_xml, Attr, AttrValue, Channel, Component, DddError, Deployment,
    Direction, End, Host, Instance, Port,
};
use proptest::prelude::*;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------
// Helpers

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("DELADAS_ROOT"))
}

fn port(name: &str) -> Port {
    Port { name: name.into(), ..Port::default() }
}

fn variadic(name: &str) -> Port {
    Port { name: name.into(), variadic: true, ..Port::default() }
}

fn end(instance: &str, port: &str, index: Option<u32>) -> End {
    End { instance: instance.into(), port: port.into(), index }
}

fn chan(directed: bool, from: End, to: End) -> Channel {
    Channel { id: String::new(), directed, from, to }
}

fn inst(component: &str, host: &str) -> Instance {
    Instance { id: instance_id(component, host, None), component: component.into(), host: host.into() }
}

/// The peer-to-peer example of `language.md` §1.
const P2P_GOAL: &str = r#"// resources
component Client(
    code = "file:///D:ClientBundle.xml",
    ports = {in, out}
)
component Router(
    code = "http://deladas.org/RBundle.xml",
    ports = {cin[], cout[], rin[], rout[]}
)
host h1 = host(ipaddress = "192.168.0.1")
host h2 = host(ipaddress = "192.168.0.2")
host h3 = host(ipaddress = "192.168.0.3")
host h4 = host(ipaddress = "192.168.0.4")
host h5 = host(ipaddress = "192.168.0.5")
host h6 = host(ipaddress = "192.168.0.6")

// goal
constraintset randc = constraintset {
    // 1 router or client per host
    forall host h in deployment (
        card(instancesof Router in h) = 1 or
        card(instancesof Client in h) = 1
    )
    // every client connects to at least 1 router
    forall Client c in deployment (
        exists Router r in deployment (
            c.out connectsto r.cin
            c.in connectsto r.cout
        )
    )
    // every router connects to at most 2 clients
    forall Router r in deployment (
        card(Client c connectedto r) <= 2
    )
    // every router connects to at least 1 other router
    forall Router r1 in deployment (
        exists Router r2 in deployment (
            r1.rout connectsto r2.rin
            r1.rin connectsto r2.rout
            r1 != r2
        )
    )
    // routers are reachable from each other
    forall Router r1, r2 in deployment (
        reachable(r1, r2)
    )
}
"#;

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A solution of the peer-to-peer example of `language.md` §1: routers on
/// h3 and h4, each serving two clients, connected to each other.
fn p2p() -> Deployment {
    let hosts = (1..=6)
        .map(|i| Host {
            id: format!("h{i}"),
            attrs: vec![Attr { name: "ipaddress".into(), value: AttrValue::Str(format!("192.168.0.{i}")) }],
        })
        .collect();
    let components = vec![
        Component {
            name: "Client".into(),
            code: "file:///D:ClientBundle.xml".into(),
            ports: vec![port("in"), port("out")],
            ..Component::default()
        },
        Component {
            name: "Router".into(),
            code: "http://deladas.org/RBundle.xml".into(),
            ports: vec![variadic("cin"), variadic("cout"), variadic("rin"), variadic("rout")],
            ..Component::default()
        },
    ];
    let instances = vec![
        inst("Client", "h1"),
        inst("Client", "h2"),
        inst("Router", "h3"),
        inst("Router", "h4"),
        inst("Client", "h5"),
        inst("Client", "h6"),
    ];
    let mut channels = Vec::new();
    for (client, router, k) in [("h1", "h3", 0), ("h2", "h3", 1), ("h5", "h4", 0), ("h6", "h4", 1)] {
        let c = format!("Client@{client}");
        let r = format!("Router@{router}");
        channels.push(chan(false, end(&c, "out", None), end(&r, "cin", Some(k))));
        channels.push(chan(false, end(&c, "in", None), end(&r, "cout", Some(k))));
    }
    channels.push(chan(false, end("Router@h3", "rout", Some(0)), end("Router@h4", "rin", Some(0))));
    channels.push(chan(false, end("Router@h4", "rout", Some(0)), end("Router@h3", "rin", Some(0))));
    let mut d = Deployment {
        goal: Some("p2p.deladas".into()),
        goal_sha256: Some(sha256_hex(P2P_GOAL)),
        generator: "deladas 0.1.0".into(),
        hosts,
        components,
        instances,
        channels,
    };
    d.canonicalize();
    d
}

/// A deployment using every part of the format: all attribute types,
/// characters that need escaping, bounds, directions, an external port,
/// directed channels, several instances of a component on one host.
fn pipeline() -> Deployment {
    let mut d = Deployment {
        goal: Some("pipe & filter <demo>.deladas".into()),
        goal_sha256: None,
        generator: "deladas 0.1.0".into(),
        hosts: vec![
            Host {
                id: "edge".into(),
                attrs: vec![
                    Attr { name: "zone".into(), value: AttrValue::Str("eu-west \"A\"\n\ttab".into()) },
                    Attr { name: "memory".into(), value: AttrValue::Int(-2048) },
                    Attr { name: "gpu".into(), value: AttrValue::Bool(false) },
                ],
            },
            Host { id: "core".into(), attrs: vec![] },
            Host {
                id: "spare".into(),
                attrs: vec![Attr { name: "note".into(), value: AttrValue::Str("äöü 中文 ☃ <&>'".into()) }],
            },
        ],
        components: vec![
            Component {
                name: "Source".into(),
                code: "file:///opt/source.jar?a=1&b=2".into(),
                maxperhost: Some(1),
                maxinstances: None,
                attrs: vec![],
                ports: vec![
                    Port { name: "out".into(), variadic: false, max: None, direction: Some(Direction::Output) },
                    Port { name: "device".into(), variadic: false, max: None, direction: Some(Direction::External) },
                ],
            },
            Component {
                name: "Filter".into(),
                code: "http://example.org/filter.xml".into(),
                maxperhost: Some(3),
                maxinstances: Some(4),
                attrs: vec![
                    Attr { name: "memory".into(), value: AttrValue::Int(512) },
                    Attr { name: "stateless".into(), value: AttrValue::Bool(true) },
                ],
                ports: vec![
                    Port { name: "in".into(), variadic: false, max: None, direction: Some(Direction::Input) },
                    Port { name: "out".into(), variadic: true, max: Some(2), direction: Some(Direction::Output) },
                    variadic("ctl"),
                ],
            },
            Component {
                name: "Sink".into(),
                code: "sink".into(),
                maxperhost: None,
                maxinstances: Some(0),
                attrs: vec![],
                ports: vec![],
            },
        ],
        instances: vec![
            Instance { id: "Filter@core#2".into(), component: "Filter".into(), host: "core".into() },
            Instance { id: "Filter@core#1".into(), component: "Filter".into(), host: "core".into() },
            inst("Source", "edge"),
        ],
        channels: vec![
            chan(true, end("Filter@core#1", "out", Some(0)), end("Filter@core#2", "in", None)),
            chan(true, end("Source@edge", "out", None), end("Filter@core#1", "in", None)),
            chan(false, end("Filter@core#2", "ctl", Some(0)), end("Filter@core#1", "ctl", Some(0))),
        ],
    };
    d.canonicalize();
    d
}

static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Validates `xml` against `schema/ddd.xsd` with xmllint; returns xmllint's
/// verdict and output.
fn xmllint(xml: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join("deladas-ddd-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("doc-{}-{}.xml", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&file, xml).unwrap();
    let schema = manifest_dir().join("schema").join("ddd.xsd");
    let out = match Command::new("xmllint").arg("--noout").arg("--schema").arg(&schema).arg(&file).output() {
        Ok(out) => out,
        Err(e) => panic!("could not run xmllint ({e}); the DDD schema tests need it: apt-get install libxml2-utils"),
    };
    let _ = std::fs::remove_file(&file);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn assert_schema_valid(xml: &str) {
    let (ok, out) = xmllint(xml);
    assert!(ok, "xmllint rejects the DDD:\n{out}\n--- document ---\n{xml}");
}

/// Every error's span lies in the text and its line matches the span.
fn assert_errors_well_placed(text: &str, errs: &[DddError]) {
    for e in errs {
        assert!(
            e.span.start <= e.span.end && e.span.end <= text.len(),
            "span {:?} outside the text ({} bytes): {}",
            e.span,
            text.len(),
            e.message
        );
        let line = 1 + text.as_bytes()[..e.span.start].iter().filter(|&&b| b == b'\n').count();
        assert_eq!(e.line, line, "line of {e}");
    }
}

fn render(errs: &[DddError]) -> String {
    errs.iter().map(|e| format!("{e}\n")).collect()
}

// ---------------------------------------------------------------------------
// Round trips and snapshots

#[test]
fn p2p_round_trips() {
    let d = p2p();
    let xml = to_xml(&d);
    assert_eq!(xml, to_xml(&d), "writing is deterministic");
    let back = from_xml(&xml).unwrap_or_else(|e| panic!("{}\n{xml}", render(&e)));
    assert_eq!(back, d);
    assert_eq!(to_xml(&back), xml, "written twice, byte-identical");
    assert_eq!(d.check(), Ok(()));
    insta::assert_snapshot!("p2p_xml", xml);
}

#[test]
fn p2p_validates_against_schema() {
    assert_schema_valid(&to_xml(&p2p()));
}

#[test]
fn p2p_json() {
    let d = p2p();
    let json = to_json(&d);
    assert_eq!(json, to_json(&d));
    let back: Deployment = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d, "the JSON rendering carries the whole deployment");
    insta::assert_snapshot!("p2p_json", json);
}

#[test]
fn p2p_dot() {
    let d = p2p();
    assert_eq!(to_dot(&d), to_dot(&d));
    insta::assert_snapshot!("p2p_dot", to_dot(&d));
}

#[test]
fn pipeline_round_trips_and_validates() {
    let d = pipeline();
    let xml = to_xml(&d);
    let back = from_xml(&xml).unwrap_or_else(|e| panic!("{}\n{xml}", render(&e)));
    assert_eq!(back, d);
    assert_eq!(to_xml(&back), xml);
    assert_schema_valid(&xml);
    let json = to_json(&d);
    assert_eq!(serde_json::from_str::<Deployment>(&json).unwrap(), d);
    insta::assert_snapshot!("pipeline_xml", xml);
    insta::assert_snapshot!("pipeline_json", json);
    insta::assert_snapshot!("pipeline_dot", to_dot(&d));
}

/// `tests/ddd/good/pipeline.xml` is what the writer produces for
/// [`pipeline`]: a fixed copy of the format, so a change to the writer that
/// changes the format shows up here.
#[test]
fn good_fixture_is_the_written_format() {
    let path = manifest_dir().join("tests/ddd/good/pipeline.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(to_xml(&pipeline()), text);
}

/// Every valid fixture reads, validates, and writes back byte for byte.
#[test]
fn good_fixtures() {
    insta::glob!("ddd/good/*.xml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let d = from_xml(&text).unwrap_or_else(|e| panic!("{}: {}", path.display(), render(&e)));
        assert_eq!(to_xml(&d), text, "{} round-trips", path.display());
        assert_schema_valid(&text);
    });
}

#[test]
fn canonical_order_does_not_depend_on_input_order() {
    for canonical in [p2p(), pipeline()] {
        let mut shuffled = canonical.clone();
        shuffled.instances.reverse();
        shuffled.channels.reverse();
        shuffled.channels.rotate_left(1);
        for (i, c) in shuffled.channels.iter_mut().enumerate() {
            c.id = format!("x{i}");
        }
        assert_ne!(shuffled, canonical);
        shuffled.canonicalize();
        assert_eq!(shuffled, canonical);
        assert_eq!(to_xml(&shuffled), to_xml(&canonical));
    }
}

#[test]
fn canonical_instance_order_is_host_component_then_number() {
    let mut d = pipeline();
    let ids: Vec<&str> = d.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["Source@edge", "Filter@core#1", "Filter@core#2"]);
    d.instances = (1..=11)
        .rev()
        .map(|k| Instance {
            id: instance_id("Filter", "core", Some(k)),
            component: "Filter".into(),
            host: "core".into(),
        })
        .collect();
    d.canonicalize();
    let ids: Vec<String> = d.instances.iter().map(|i| i.id.clone()).collect();
    let expected: Vec<String> = (1..=11).map(|k| format!("Filter@core#{k}")).collect();
    assert_eq!(ids, expected, "#10 comes after #9");
}

#[test]
fn empty_deployment_round_trips_and_validates() {
    let d = Deployment { generator: "deladas 0.1.0".into(), ..Deployment::default() };
    let xml = to_xml(&d);
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <deployment xmlns=\"urn:deladas:ddd:1\" format=\"1\" generator=\"deladas 0.1.0\">\n  \
         <hosts/>\n  <components/>\n  <instances/>\n  <channels/>\n</deployment>\n"
    );
    assert_eq!(from_xml(&xml), Ok(d));
    assert_schema_valid(&xml);
}

#[test]
fn reader_accepts_equivalent_xml_spellings() {
    // Single quotes, a prefix for the namespace, comments, a BOM, no XML
    // declaration, start/end tags instead of empty elements, literal
    // newlines in attribute values (normalized to spaces).
    let text = "\u{feff}<!-- hand written -->\n\
        <d:deployment xmlns:d='urn:deladas:ddd:1' format='1' generator='hand'>\n\
        <d:hosts><d:host id='h1'><d:attr name='zone' type='string' value='a\nb'></d:attr></d:host></d:hosts>\n\
        <d:components><d:component name='C' code='c'><d:port name='p'/></d:component></d:components>\n\
        <d:instances><d:instance id='C@h1' component='C' host='h1'/></d:instances>\n\
        <d:channels></d:channels>\n\
        </d:deployment>\n";
    let d = from_xml(text).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(d.hosts[0].attrs[0].value, AttrValue::Str("a b".into()));
    assert_eq!(d.instances.len(), 1);
}

// ---------------------------------------------------------------------------
// Rejections

/// Each file in `tests/ddd/bad/` breaks one rule (a few break several). Its
/// leading comment lists, one per line, `expect: TEXT`: the reader must
/// report exactly as many errors as there are expectations, each containing
/// its text. The snapshot records the full messages with their lines.
#[test]
fn bad_fixtures_are_rejected() {
    insta::glob!("ddd/bad/*.xml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let expected: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("expect: ")).collect();
        assert!(!expected.is_empty(), "{} has no `expect:` lines", path.display());
        let errs = match from_xml(&text) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(errs) => errs,
        };
        assert_errors_well_placed(&text, &errs);
        let rendered = render(&errs);
        assert_eq!(
            errs.len(),
            expected.len(),
            "{}: expected {} errors, got:\n{rendered}",
            path.display(),
            expected.len()
        );
        for want in &expected {
            assert!(
                errs.iter().any(|e| e.message.contains(want)),
                "{}: no error contains {want:?}; got:\n{rendered}",
                path.display()
            );
        }
        insta::assert_snapshot!(rendered);
    });
}

/// The fixtures cover every rule of the reader.
#[test]
fn bad_fixture_set_is_complete() {
    let dir = manifest_dir().join("tests/ddd/bad");
    for name in [
        "not-well-formed",
        "unclosed-element",
        "unknown-root",
        "unknown-namespace",
        "no-namespace",
        "unknown-format",
        "missing-attribute",
        "missing-section",
        "unknown-element",
        "unknown-attribute",
        "bad-int",
        "bad-bool-attr",
        "bad-attr-type",
        "bad-variadic",
        "bad-direction",
        "bad-count",
        "duplicate-host",
        "duplicate-component",
        "duplicate-port",
        "duplicate-instance",
        "duplicate-channel-id",
        "dangling-component",
        "dangling-host",
        "dangling-instance",
        "dangling-port",
        "self-channel",
        "external-port",
        "index-on-non-variadic",
        "missing-index",
        "index-gap",
        "index-duplicate",
        "non-variadic-two-channels",
        "max-exceeded",
        "directed-wrong-way",
        "directed-without-directions",
        "undirected-with-directions",
        "bad-instance-id",
        "bad-instance-id-k0",
        "duplicate-channel-pair",
        "maxperhost-exceeded",
        "many-errors",
    ] {
        let p = dir.join(format!("{name}.xml"));
        assert!(p.exists(), "missing fixture {}", p.display());
    }
}

/// The schema is not vacuous: it rejects documents the reader rejects for
/// structural reasons.
#[test]
fn schema_rejects_structural_errors() {
    for name in [
        "unknown-element",
        "unknown-attribute",
        "missing-attribute",
        "missing-section",
        "duplicate-host",
        "duplicate-port",
        "dangling-host",
        "dangling-instance",
        "bad-variadic",
        "bad-direction",
        "unknown-format",
    ] {
        let path = manifest_dir().join(format!("tests/ddd/bad/{name}.xml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (ok, _) = xmllint(&text);
        assert!(!ok, "xmllint accepts {}", path.display());
    }
}

#[test]
fn errors_display_with_their_line() {
    let errs = from_xml("<deployment/>").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "line 1: <deployment>: no namespace; DDD format 1 uses xmlns=\"urn:deladas:ddd:1\""
    );
    let errs = from_xml("").unwrap_err();
    assert!(errs[0].message.contains("no root element"), "{errs:?}");
}

#[test]
fn check_reports_problems_of_a_built_deployment() {
    let mut d = p2p();
    d.channels[0].from.port = "nope".into();
    let errs = d.check().unwrap_err();
    assert_eq!(errs.len(), 1, "{}", render(&errs));
    assert!(errs[0].message.contains("has no port \"nope\""));
}

// ---------------------------------------------------------------------------
// Property tests

/// A structural recipe for a random valid deployment; [`build`] turns it into
/// one, dropping channel candidates that would break a rule.
#[derive(Debug, Clone)]
struct Recipe {
    host_attrs: Vec<Vec<(u8, AttrValue)>>,
    components: Vec<ComponentRecipe>,
    placements: Vec<(usize, usize, u32)>,
    channels: Vec<(usize, usize, usize, usize, bool)>,
    goal: Option<String>,
    sha: Option<[u8; 32]>,
    generator: String,
}

/// maxperhost, maxinstances, attributes, ports.
type ComponentRecipe = (Option<u32>, Option<u32>, Vec<(u8, AttrValue)>, Vec<PortRecipe>);

#[derive(Debug, Clone)]
struct PortRecipe {
    variadic: bool,
    max: Option<u32>,
    direction: Option<Direction>,
}

fn text_strategy() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 _.:/@#&<>\"'\t\n\r\u{e9}\u{4e2d}\u{2603}\u{1F600}-]{0,12}").unwrap()
}

fn attr_value() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        text_strategy().prop_map(AttrValue::Str),
        any::<i64>().prop_map(AttrValue::Int),
        any::<bool>().prop_map(AttrValue::Bool),
    ]
}

fn port_recipe() -> impl Strategy<Value = PortRecipe> {
    (
        any::<bool>(),
        proptest::option::of(0u32..4),
        proptest::option::of(prop_oneof![Just(Direction::Input), Just(Direction::Output), Just(Direction::External),]),
    )
        .prop_map(|(variadic, max, direction)| PortRecipe {
            variadic,
            max: if variadic { max } else { None },
            direction,
        })
}

fn recipe() -> impl Strategy<Value = Recipe> {
    (
        proptest::collection::vec(proptest::collection::vec((0u8..4, attr_value()), 0..3), 1..5),
        proptest::collection::vec(
            (
                proptest::option::of(0u32..4),
                proptest::option::of(0u32..6),
                proptest::collection::vec((0u8..4, attr_value()), 0..3),
                proptest::collection::vec(port_recipe(), 0..5),
            ),
            1..4,
        ),
        proptest::collection::vec((0usize..8, 0usize..8, 1u32..4), 0..6),
        proptest::collection::vec((0usize..64, 0usize..8, 0usize..64, 0usize..8, any::<bool>()), 0..24),
        proptest::option::of(text_strategy()),
        proptest::option::of(any::<[u8; 32]>()),
        text_strategy(),
    )
        .prop_map(|(host_attrs, components, placements, channels, goal, sha, generator)| Recipe {
            host_attrs,
            components,
            placements,
            channels,
            goal,
            sha,
            generator,
        })
}

/// Attributes with distinct names (`a0`…`a3`).
fn attrs(list: &[(u8, AttrValue)]) -> Vec<Attr> {
    let mut out: Vec<Attr> = Vec::new();
    for (n, v) in list {
        let name = format!("a{n}");
        if out.iter().all(|a| a.name != name) {
            out.push(Attr { name, value: v.clone() });
        }
    }
    out
}

fn build(r: &Recipe) -> Deployment {
    let hosts: Vec<Host> =
        r.host_attrs.iter().enumerate().map(|(i, a)| Host { id: format!("h{i}"), attrs: attrs(a) }).collect();
    let components: Vec<Component> = r
        .components
        .iter()
        .enumerate()
        .map(|(i, (mph, mi, a, ports))| Component {
            name: format!("C{i}"),
            code: format!("bundle-{i}.xml"),
            maxperhost: *mph,
            maxinstances: *mi,
            attrs: attrs(a),
            ports: ports
                .iter()
                .enumerate()
                .map(|(j, p)| Port { name: format!("p{j}"), variadic: p.variadic, max: p.max, direction: p.direction })
                .collect(),
        })
        .collect();

    // Instances: `count` of component c on host h, within the bounds.
    let mut instances = Vec::new();
    let mut placed = std::collections::HashSet::new();
    for &(c, h, count) in &r.placements {
        let (c, h) = (c % components.len(), h % hosts.len());
        if !placed.insert((c, h)) {
            continue;
        }
        let comp = &components[c];
        let total = instances.iter().filter(|i: &&Instance| i.component == comp.name).count() as u32;
        let mut count = count.min(comp.maxperhost.unwrap_or(u32::MAX));
        if let Some(mi) = comp.maxinstances {
            count = count.min(mi.saturating_sub(total));
        }
        for k in 1..=count {
            instances.push(Instance {
                id: instance_id(&comp.name, &hosts[h].id, if count == 1 { None } else { Some(k) }),
                component: comp.name.clone(),
                host: hosts[h].id.clone(),
            });
        }
    }

    // Channels: keep a candidate only when it is legal.
    let mut channels: Vec<Channel> = Vec::new();
    let mut used: std::collections::HashMap<(String, String), u32> = Default::default();
    let mut pairs = std::collections::HashSet::new();
    if !instances.is_empty() {
        for &(a, pa, b, pb, swap) in &r.channels {
            let (ia, ib) = (&instances[a % instances.len()], &instances[b % instances.len()]);
            if ia.id == ib.id {
                continue;
            }
            let ca = components.iter().find(|c| c.name == ia.component).unwrap();
            let cb = components.iter().find(|c| c.name == ib.component).unwrap();
            if ca.ports.is_empty() || cb.ports.is_empty() {
                continue;
            }
            let (mut x, mut y) = ((ia, &ca.ports[pa % ca.ports.len()]), (ib, &cb.ports[pb % cb.ports.len()]));
            let ext = Some(Direction::External);
            if x.1.direction == ext || y.1.direction == ext {
                continue;
            }
            let directed = match (x.1.direction, y.1.direction) {
                (Some(Direction::Output), Some(Direction::Input)) => true,
                (Some(Direction::Input), Some(Direction::Output)) => {
                    std::mem::swap(&mut x, &mut y);
                    true
                }
                (Some(_), Some(_)) => continue,
                _ => {
                    if swap {
                        std::mem::swap(&mut x, &mut y);
                    }
                    false
                }
            };
            let key = |e: &(&Instance, &Port)| (e.0.id.clone(), e.1.name.clone());
            let (kx, ky) = (key(&x), key(&y));
            let pair = if kx <= ky { (kx.clone(), ky.clone()) } else { (ky.clone(), kx.clone()) };
            let cap = |p: &Port| {
                if p.variadic {
                    p.max.unwrap_or(u32::MAX)
                } else {
                    1
                }
            };
            let ux = used.get(&kx).copied().unwrap_or(0);
            let uy = used.get(&ky).copied().unwrap_or(0);
            if pairs.contains(&pair) || ux >= cap(x.1) || uy >= cap(y.1) {
                continue;
            }
            pairs.insert(pair);
            used.insert(kx, ux + 1);
            used.insert(ky, uy + 1);
            channels.push(Channel {
                id: String::new(),
                directed,
                from: End { instance: x.0.id.clone(), port: x.1.name.clone(), index: x.1.variadic.then_some(ux) },
                to: End { instance: y.0.id.clone(), port: y.1.name.clone(), index: y.1.variadic.then_some(uy) },
            });
        }
    }
    let mut d = Deployment {
        goal: r.goal.clone(),
        goal_sha256: r.sha.map(|b| b.iter().map(|x| format!("{x:02x}")).collect()),
        generator: r.generator.clone(),
        hosts,
        components,
        instances,
        channels,
    };
    d.canonicalize();
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random valid deployments round-trip exactly, are accepted by the
    /// checks, and validate against the schema.
    #[test]
    fn random_deployments_round_trip(r in recipe()) {
        let d = build(&r);
        let xml = to_xml(&d);
        let back = from_xml(&xml);
        prop_assert_eq!(back.as_ref().map_err(|e| render(e)), Ok(&d), "{}", xml);
        prop_assert_eq!(to_xml(&d), xml.clone());
        let mut again = d.clone();
        again.canonicalize();
        prop_assert_eq!(&again, &d, "canonicalize is idempotent");
        let json = to_json(&d);
        prop_assert_eq!(serde_json::from_str::<Deployment>(&json).unwrap(), d.clone());
        let (ok, out) = xmllint(&xml);
        prop_assert!(ok, "xmllint: {}\n{}", out, xml);
    }
}

fn seed_documents() -> Vec<String> {
    let mut docs = vec![to_xml(&p2p()), to_xml(&pipeline())];
    let bad = manifest_dir().join("tests/ddd/bad");
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(&bad).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    names.sort();
    for p in names.iter().take(12) {
        if let Ok(t) = std::fs::read_to_string(p) {
            docs.push(t);
        }
    }
    docs
}

/// Reads `text`; must not panic, errors must be placed in the text, and an
/// accepted document must be stable under writing and reading again.
fn read_anything(text: &str) -> Result<(), TestCaseError> {
    match from_xml(text) {
        Ok(d) => {
            let again = from_xml(&to_xml(&d));
            prop_assert_eq!(again.as_ref().map_err(|e| render(e)), Ok(&d));
        }
        Err(errs) => {
            prop_assert!(!errs.is_empty());
            for e in &errs {
                prop_assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{:?}", e);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, String),
    Duplicate(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 0usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            prop_oneof![
                Just("<".to_string()),
                Just(">".to_string()),
                Just("/>".to_string()),
                Just("\"".to_string()),
                Just("&".to_string()),
                Just("&#0;".to_string()),
                Just("&#x110000;".to_string()),
                Just("<!--".to_string()),
                Just("<![CDATA[".to_string()),
                Just("<?xml version=\"1.0\"?>".to_string()),
                Just("<!DOCTYPE x [<!ENTITY a \"b\">]>".to_string()),
                Just(" index=\"99999999999\"".to_string()),
                Just(" x:y=\"1\"".to_string()),
                Just("<port name=\"q\"/>".to_string()),
                Just("</channel>".to_string()),
                Just("\u{feff}".to_string()),
                "[ -~]{0,8}",
            ]
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<usize>(), 0usize..200, any::<usize>()).prop_map(|(i, n, j)| Mutation::Duplicate(i, n, j)),
    ]
}

fn apply(doc: &[u8], m: &Mutation) -> Vec<u8> {
    let mut v = doc.to_vec();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match m {
        Mutation::Truncate(i) => v.truncate(at(*i, doc.len())),
        Mutation::Flip(i, b) => {
            if !v.is_empty() {
                let i = i % v.len();
                v[i] ^= b | 1;
            }
        }
        Mutation::Delete(i, n) => {
            let s = at(*i, v.len());
            let e = (s + n).min(v.len());
            v.drain(s..e);
        }
        Mutation::Insert(i, s) => {
            let p = at(*i, v.len());
            v.splice(p..p, s.bytes());
        }
        Mutation::Duplicate(i, n, j) => {
            let s = at(*i, v.len());
            let e = (s + n).min(v.len());
            let piece: Vec<u8> = v[s..e].to_vec();
            let p = at(*j, v.len());
            v.splice(p..p, piece);
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_anything(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn reader_never_panics_on_arbitrary_xmlish_text(text in "[<>/=\"' a-z:&#;!?\\[\\]\n-]{0,200}") {
        read_anything(&text)?;
    }

    #[test]
    fn reader_never_panics_on_mutated_documents(
        seed in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let docs = seed_documents();
        let mut doc = docs[seed.index(docs.len())].clone().into_bytes();
        for m in &mutations {
            doc = apply(&doc, m);
        }
        read_anything(&String::from_utf8_lossy(&doc))?;
    }
}

#[test]
fn reader_survives_deep_nesting_and_many_elements() {
    let nested = |n: usize| {
        format!(
            "<deployment xmlns=\"urn:deladas:ddd:1\" format=\"1\" generator=\"g\">{}{}</deployment>",
            "<x>".repeat(n),
            "</x>".repeat(n)
        )
    };
    let errs = from_xml(&nested(50_000)).unwrap_err();
    assert!(errs.iter().any(|e| e.message.contains("unknown element <x>")), "{}", render(&errs));
    // Deeper than quick-xml's nesting limit: an error, not a crash.
    assert!(from_xml(&nested(100_000)).is_err());
    let wide = format!(
        "<deployment xmlns=\"urn:deladas:ddd:1\" format=\"1\" generator=\"g\"><hosts>{}</hosts><components/><instances/><channels/></deployment>",
        (0..20_000).map(|i| format!("<host id=\"h{i}\"/>")).collect::<String>()
    );
    assert_eq!(from_xml(&wide).unwrap().hosts.len(), 20_000);
}
