//! Tests of `deladas roles` and the role document (`deladas::mdcd`).
//!
//! - `tests/roles/cases/*.deladas`: goal variants with `upgrade`
//!   declarations, each starting with the text of the goal it varies
//!   (`examples/NAME.deladas`, or `tests/roles/deployments/NAME.deladas`),
//!   run with the real binary on `tests/roles/deployments/NAME.ddd.xml`
//!   (NAME is the case name up to its first `-`; the DDDs were written by
//!   `deladas solve`). Each snapshot holds the case's own lines, the exit
//!   code, the XML document and the diagnostics; the JSON form must carry
//!   the same document.
//! - the issue's done criteria, asserted against the DDD directly;
//! - every XML role document the tests write validates against
//!   `schema/roles.xsd` (xmllint), and reads back equal;
//! - the readers' errors on malformed documents;
//! - property tests on random deployments and upgrades, against an oracle
//!   written here: the groups, the boundary, exactly the violations of the
//!   two rules, an optimal spread of `otherhost` shadows, and helps that,
//!   followed, make the rules hold.
//!
//! One test per case file (libtest-mimic, `harness = false`): `case::NAME`,
//! so `cargo test --test roles -- case::NAME` runs one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{code, deladas, manifest, show, stderr, stdout};
use deladas::check::check_loaded;
use deladas::check::ir::Program;
use deladas::check::load::{load, RealFs};
use deladas::ddd::{self, Deployment};
use deladas::eval::{Chan, ChanEnd, Inst, World};
use deladas::mdcd::model::{Role, RoleDocument};
use deladas::mdcd::roles::{assign, diagnostics, Violation};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Helpers

static TMP: AtomicUsize = AtomicUsize::new(0);

/// Validates every document against `schema/roles.xsd` in one xmllint run.
fn assert_schema_valid(docs: &[String]) {
    if docs.is_empty() {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "deladas-roles-{}-{}",
        std::process::id(),
        TMP.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let f = dir.join(format!("doc{i}.roles.xml"));
            std::fs::write(&f, d).unwrap();
            f
        })
        .collect();
    let schema = manifest().join("schema/roles.xsd");
    let out =
        Command::new("xmllint").arg("--noout").arg("--schema").arg(&schema).args(&files).output().unwrap_or_else(|e| {
            panic!("could not run xmllint ({e}); the schema tests need it: apt-get install libxml2-utils")
        });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "xmllint rejects a role document:\n{text}");
    assert_eq!(text.matches(" validates").count(), docs.len(), "{text}");
}

/// Every XML document reads back equal, and its JSON form too.
fn assert_round_trips(doc: &RoleDocument) {
    let xml = doc.to_xml();
    let back = RoleDocument::from_xml(&xml).unwrap_or_else(|e| panic!("{e:?}\n{xml}"));
    assert_eq!(&back, doc, "XML round trip");
    let json = doc.to_json();
    let back = RoleDocument::from_json(&json).unwrap_or_else(|e| panic!("{e:?}\n{json}"));
    assert_eq!(&back, doc, "JSON round trip");
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(manifest().join("tests/roles/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deladas"))
        .collect();
    v.sort();
    v
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// The deployment name of a case: its name up to the first `-`.
fn prefix(case: &str) -> &str {
    case.split('-').next().unwrap()
}

/// The goal a case varies: the example of that name, or the deployment's goal.
fn base_goal(prefix: &str) -> PathBuf {
    let example = manifest().join(format!("examples/{prefix}.deladas"));
    if example.exists() {
        example
    } else {
        manifest().join(format!("tests/roles/deployments/{prefix}.deladas"))
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(manifest()).unwrap().display().to_string()
}

fn ddd_of(case: &str) -> String {
    format!("tests/roles/deployments/{}.ddd.xml", prefix(case))
}

fn read_ddd(path: &str) -> Deployment {
    let text = std::fs::read_to_string(manifest().join(path)).unwrap();
    ddd::from_xml(&text).unwrap()
}

fn run_roles(case: &Path, format: &str) -> std::process::Output {
    let name = stem(case);
    deladas(&["roles", &rel(case), "--deployment", &ddd_of(&name), "--format", format])
}

fn checked_program(text: &str) -> Program {
    let (sources, checked) = check_loaded(load(Path::new("g.deladas"), Some(text), &RealFs));
    assert!(!checked.has_errors(), "{}\n{text}", deladas::diagnostics::render::to_text(&checked.diags, &sources));
    checked.program
}

// ---------------------------------------------------------------------------
// The cases

fn cases_vary_their_goal_and_deployments_are_real() {
    for case in cases() {
        let name = stem(&case);
        let base = std::fs::read_to_string(base_goal(prefix(&name))).unwrap();
        let text = std::fs::read_to_string(&case).unwrap();
        assert!(
            text.starts_with(&base),
            "{name} does not start with the text of {}",
            base_goal(prefix(&name)).display()
        );
        assert!(manifest().join(ddd_of(&name)).exists(), "{name}: no {}", ddd_of(&name));
    }
    // The DDDs are solutions of the examples the cases vary.
    for (goal, ddd) in [
        ("examples/p2p.deladas", "tests/roles/deployments/p2p.ddd.xml"),
        ("examples/webfarm.deladas", "tests/roles/deployments/webfarm.ddd.xml"),
        ("tests/roles/deployments/single.deladas", "tests/roles/deployments/single.ddd.xml"),
        ("tests/roles/deployments/chain.deladas", "tests/roles/deployments/chain.ddd.xml"),
    ] {
        let out = deladas(&["verify", goal, ddd]);
        assert_eq!(code(&out), 0, "{goal} {ddd}\n{}", show(&out));
    }
}

/// One case: `roles` in both formats, the snapshot, and the XML document
/// valid against the schema.
fn case(case: &Path) {
    let mut docs = Vec::new();
    {
        let name = stem(case);
        let base = std::fs::read_to_string(base_goal(prefix(&name))).unwrap();
        let text = std::fs::read_to_string(case).unwrap();
        let own = text.get(base.len()..).unwrap_or("").trim();
        let xml = run_roles(case, "xml");
        let json = run_roles(case, "json");
        let exit = code(&xml);
        assert_eq!(code(&json), exit, "{name}: the same exit code in both formats");
        assert!(exit == 0 || exit == 1, "{name}: {}", show(&xml));
        if exit == 0 {
            let from_xml = RoleDocument::from_xml(&stdout(&xml)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let from_json = RoleDocument::from_json(&stdout(&json)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(from_xml, from_json, "{name}: XML and JSON carry the same document");
            assert_eq!(stdout(&xml), from_xml.to_xml(), "{name}: the XML reads back to the same text");
            assert!(stderr(&json).is_empty(), "{name}: {}", stderr(&json));
            docs.push(stdout(&xml));
        } else {
            assert!(stdout(&xml).is_empty(), "{name}: nothing is written on violations");
            // With --format json the diagnostics are a JSON array on stdout.
            let diags: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
            let codes: BTreeSet<String> =
                diags.as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap().to_string()).collect();
            for c in &codes {
                assert!(stderr(&xml).contains(&format!("error[{c}]")), "{name}: {c} in both formats");
            }
        }
        let snap = format!(
            "----- CASE (after the text of {})\n{own}\n----- deladas roles {} --deployment {}\nexit {exit}\n----- STDOUT\n{}----- STDERR\n{}",
            rel(&base_goal(prefix(&name))),
            rel(case),
            ddd_of(&name),
            stdout(&xml),
            stderr(&xml)
        );
        insta::assert_snapshot!(format!("roles_case_{name}"), snap);
    }
    assert_schema_valid(&docs);
}

fn stale_snapshots_are_deleted() {
    let names: BTreeSet<String> = cases().iter().map(|c| format!("roles__roles_case_{}.snap", stem(c))).collect();
    for e in std::fs::read_dir(manifest().join("tests/snapshots")).unwrap() {
        let f = e.unwrap().file_name().to_string_lossy().into_owned();
        if f.starts_with("roles__roles_case_") && f.ends_with(".snap") {
            assert!(names.contains(&f), "{f} has no case in tests/roles/cases; delete it");
        }
    }
}

fn output_is_deterministic() {
    for name in ["p2p-routers", "p2p-otherhost", "webfarm-cluster"] {
        let case = manifest().join(format!("tests/roles/cases/{name}.deladas"));
        for format in ["xml", "json"] {
            let a = run_roles(&case, format);
            let b = run_roles(&case, format);
            assert_eq!(code(&a), 0, "{}", show(&a));
            assert_eq!(a.stdout, b.stdout, "{name} --format {format}");
        }
        // -o writes the same bytes as stdout.
        let out = std::env::temp_dir().join(format!("deladas-roles-o-{}-{name}.xml", std::process::id()));
        let o = deladas(&["roles", &rel(&case), "--deployment", &ddd_of(name), "-o", out.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{}", show(&o));
        assert!(stdout(&o).is_empty());
        assert_eq!(std::fs::read(&out).unwrap(), run_roles(&case, "xml").stdout);
        let _ = std::fs::remove_file(&out);
    }
}

/// The done criterion: routers upgraded on router-router ports only.
fn p2p_router_upgrade_clusters_the_routers() {
    let case = manifest().join("tests/roles/cases/p2p-routers.deladas");
    let out = run_roles(&case, "json");
    assert_eq!(code(&out), 0, "{}", show(&out));
    let doc = RoleDocument::from_json(&stdout(&out)).unwrap();
    let d = read_ddd(&ddd_of("p2p-routers"));
    let of = |c: &str| -> BTreeSet<String> {
        d.instances.iter().filter(|i| i.component == c).map(|i| i.id.clone()).collect()
    };
    let (routers, clients) = (of("Router"), of("Client"));
    assert_eq!(routers.len(), 2);
    assert_eq!(clients.len(), 4);
    let low: BTreeSet<String> = doc.groups.low.iter().map(|m| m.instance.clone()).collect();
    let active: BTreeSet<String> = doc.groups.active.iter().map(|m| m.instance.clone()).collect();
    assert_eq!(low, routers, "every router in G_low");
    assert_eq!(active, clients, "every client in G_act");
    // One shadow each, on its own host (samehost), running the old code.
    assert_eq!(doc.groups.shadow.len(), routers.len());
    for s in &doc.groups.shadow {
        let twin = d.instance(&s.shadows).unwrap();
        assert_eq!(s.instance, format!("{}~shadow", twin.id));
        assert_eq!(s.host, twin.host);
        assert_eq!(s.version, "http://deladas.org/RBundle.xml");
    }
    for m in &doc.groups.low {
        assert_eq!(m.version, "http://deladas.org/RBundle-2.xml");
    }
    // The boundary is exactly the client-router channels.
    let expected: BTreeSet<String> = d
        .channels
        .iter()
        .filter(|c| {
            let comps = [&c.from, &c.to].map(|e| d.instance(&e.instance).unwrap().component.clone());
            comps.contains(&"Client".to_string()) && comps.contains(&"Router".to_string())
        })
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(expected.len(), 8);
    let boundary: BTreeSet<String> = doc.boundary.iter().map(|b| b.channel.clone()).collect();
    assert_eq!(boundary, expected);
    for b in &doc.boundary {
        assert!(routers.contains(&b.low) && clients.contains(&b.active), "{b:?}");
        assert!(["cin", "cout"].contains(&b.low_port.as_str()) && ["in", "out"].contains(&b.active_port.as_str()));
    }
    // Per process: routers broadcast their counter to each other and notify
    // every client and shadow; clients notify the other clients and shadows.
    let shadows: BTreeSet<String> = doc.groups.shadow.iter().map(|s| s.instance.clone()).collect();
    for p in &doc.processes {
        let set = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<String>>();
        let others = |s: &BTreeSet<String>| s.iter().filter(|x| **x != p.instance).cloned().collect::<BTreeSet<_>>();
        match p.role {
            Role::Low => {
                assert_eq!(set(&p.counter_peers), others(&routers));
                assert_eq!(set(&p.notify), clients.union(&shadows).cloned().collect());
                assert_eq!(p.shadow_peers, vec![format!("{}~shadow", p.instance)]);
            }
            Role::Shadow => {
                assert_eq!(set(&p.counter_peers), others(&shadows));
                assert!(p.notify.is_empty());
                assert_eq!(p.shadow_peers, vec![p.instance.trim_end_matches("~shadow").to_string()]);
            }
            Role::Active => {
                assert!(p.counter_peers.is_empty());
                assert_eq!(set(&p.notify), others(&clients).union(&shadows).cloned().collect());
            }
        }
        assert!(p.external_ports.is_empty(), "P2P has no external ports");
    }
    assert_eq!(doc.processes.len(), 8);
}

/// The done criterion: changing `cin` exits 1 and names each client.
fn p2p_client_port_change_names_every_client() {
    let case = manifest().join("tests/roles/cases/p2p-client-port.deladas");
    let out = run_roles(&case, "json");
    assert_eq!(code(&out), 1, "{}", show(&out));
    let diags: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let d = read_ddd(&ddd_of("p2p-client-port"));
    let cin_channels: Vec<&ddd::Channel> =
        d.channels.iter().filter(|c| c.to.port == "cin" || c.from.port == "cin").collect();
    assert_eq!(diags.len(), cin_channels.len(), "one error per channel on `cin`");
    let goal = std::fs::read_to_string(&case).unwrap();
    for (diag, ch) in diags.iter().zip(&cin_channels) {
        assert_eq!(diag["code"], "E0610");
        let msg = diag["message"].as_str().unwrap();
        let client = if ch.from.port == "out" { &ch.from } else { &ch.to };
        let router = if ch.from.port == "cin" { &ch.from } else { &ch.to };
        assert!(msg.contains(&format!("channel {} ", ch.id)), "{msg}");
        assert!(msg.contains(&format!("`{}.out`", client.instance)), "{msg}");
        assert!(msg.contains(&format!("`{}.cin[{}]`", router.instance, router.index.unwrap())), "{msg}");
        // The primary label is the upgrade declaration.
        let label = diag["labels"].as_array().unwrap().iter().find(|l| l["primary"] == true).unwrap();
        let span = &goal[label["start"].as_u64().unwrap() as usize..label["end"].as_u64().unwrap() as usize];
        assert_eq!(span, r#"upgrade Router(code = "http://deladas.org/RBundle-2.xml", changes = {cin})"#);
        let notes = diag["notes"].as_array().unwrap();
        assert!(
            notes.iter().any(|n| n.as_str().unwrap().contains("add `upgrade Client (…, changes = {out})`")),
            "{notes:?}"
        );
    }
    let named: BTreeSet<&str> = cin_channels
        .iter()
        .map(|c| if c.from.port == "out" { c.from.instance.as_str() } else { c.to.instance.as_str() })
        .collect();
    let clients: BTreeSet<&str> =
        d.instances.iter().filter(|i| i.component == "Client").map(|i| i.id.as_str()).collect();
    assert_eq!(named, clients, "every client is named");
}

fn bad_inputs_exit_2() {
    // A DDD of another goal.
    let out = deladas(&[
        "roles",
        "tests/roles/cases/p2p-routers.deladas",
        "--deployment",
        "tests/roles/deployments/webfarm.ddd.xml",
    ]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(stderr(&out).contains("E0703"), "{}", show(&out));
    // A missing DDD.
    let out = deladas(&["roles", "tests/roles/cases/p2p-routers.deladas", "--deployment", "tests/roles/none.ddd.xml"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(stderr(&out).contains("E0009"), "{}", show(&out));
    // A role document is not a DDD.
    let doc = deladas(&[
        "roles",
        "tests/roles/cases/p2p-routers.deladas",
        "--deployment",
        "tests/roles/deployments/p2p.ddd.xml",
    ]);
    let path = std::env::temp_dir().join(format!("deladas-roles-notddd-{}.xml", std::process::id()));
    std::fs::write(&path, &doc.stdout).unwrap();
    let out = deladas(&["roles", "tests/roles/cases/p2p-routers.deladas", "--deployment", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(stderr(&out).contains("E0704"), "{}", show(&out));
    // --deployment is required.
    let out = deladas(&["roles", "tests/roles/cases/p2p-routers.deladas"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
}

// ---------------------------------------------------------------------------
// Reading malformed role documents

fn p2p_doc() -> RoleDocument {
    let case = manifest().join("tests/roles/cases/p2p-routers.deladas");
    RoleDocument::from_json(&stdout(&run_roles(&case, "json"))).unwrap()
}

fn xml_reader_reports_every_problem_with_its_line() {
    let good = p2p_doc().to_xml();
    let line_of = |text: &str, needle: &str| 1 + text[..text.find(needle).unwrap()].matches('\n').count();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (good.replace("urn:deladas:mdcd:1", "urn:other"), vec!["a role document is a <roles"]),
        (good.replace(r#"format="1""#, r#"format="2""#), vec!["unsupported format=\"2\""]),
        (good.replace(r#" role="low""#, r#" role="lowest""#), vec!["role=\"lowest\" is not low, shadow or active"; 2]),
        (
            good.replacen(r#"<notify instance="Client@h3"/>"#, r#"<notify instance="Client@h9"/>"#, 1),
            vec!["notify names `Client@h9`, which is not a process"],
        ),
        (good.replacen(r#" host="h2"/>"#, "/>", 1), vec!["missing required attribute host"]),
        (good.replacen("<boundary>", "<boundary><wire/>", 1), vec!["unknown element <wire>"]),
        (
            good.replacen(r#" low-index="0""#, r#" low-index="-1""#, 1),
            vec!["low-index=\"-1\" is not a non-negative integer"],
        ),
        (good.replace("  <boundary>\n", "  <boundary>\n  </boundary>\n  <boundary>\n"), vec!["second <boundary>"]),
        (good.replacen("</roles>", "", 1), vec!["never closed"]),
        (
            good.replacen(r#"shadows="Router@h6""#, r#"shadows="Client@h1""#, 1),
            vec![
                "it shadows `Client@h1`, which is not a G_low member",
                "the shadow of `Client@h1` must be called `Client@h1~shadow`",
                "`Router@h6` has no shadow in groups.shadow",
            ],
        ),
    ];
    for (text, expected) in cases {
        let errs = RoleDocument::from_xml(&text).expect_err(&text);
        let messages: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), expected.len(), "{messages:#?}");
        for want in &expected {
            assert!(errs.iter().any(|e| e.message.contains(want)), "no error says {want:?}: {messages:#?}");
        }
        for e in &errs {
            let span = e.span.clone().expect("XML errors have a span");
            assert!(span.end <= text.len());
            assert_eq!(e.line, Some(1 + text[..span.start].matches('\n').count()));
        }
    }
    // A problem found by the checks points at its element.
    let text = good.replacen(r#"<counter-peer instance="Router@h6"/>"#, r#"<counter-peer instance="Router@h2"/>"#, 1);
    let errs = RoleDocument::from_xml(&text).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.contains("counter_peers lists the process itself"), "{}", errs[0]);
    assert_eq!(errs[0].line, Some(line_of(&text, r#"<process instance="Router@h2" role="low">"#)));
}

fn json_reader_reports_problems() {
    let good = p2p_doc().to_json();
    for (text, want) in [
        (good.replacen("\"counter_peers\"", "\"counter_peer\"", 1), "unknown field `counter_peer`"),
        (good.replacen("\"role\": \"low\"", "\"role\": \"high\"", 1), "unknown variant `high`"),
        (good.replacen("\"format\": 1", "\"format\": 3", 1), "unsupported format 3"),
        (
            good.replacen("\"active\": \"Client@h1\"", "\"active\": \"Router@h6\"", 1),
            "boundary[0]: its active end `Router@h6` is not a G_act member",
        ),
        (String::from("{\"format\": 1"), "EOF while parsing"),
    ] {
        let errs = RoleDocument::from_json(&text).expect_err(&text);
        assert!(errs.iter().any(|e| e.to_string().contains(want)), "{want:?} not in {errs:?}");
    }
    let errs = RoleDocument::from_json(&good.replacen("\"counter_peers\"", "\"counter_peer\"", 1)).unwrap_err();
    assert!(errs[0].line.is_some(), "syntax errors have a line");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Mutated documents never panic the readers.
    fn readers_never_panic(pos in 0usize..10_000, byte in any::<u8>(), cut in any::<bool>()) {
        let doc = p2p_doc_cached();
        for text in [doc.0.as_bytes(), doc.1.as_bytes()] {
            let mut bytes = text.to_vec();
            let p = pos % bytes.len();
            if cut { bytes.truncate(p) } else { bytes[p] = byte }
            let s = String::from_utf8_lossy(&bytes);
            let _ = RoleDocument::from_xml(&s);
            let _ = RoleDocument::from_json(&s);
        }
    }
}

fn p2p_doc_cached() -> &'static (String, String) {
    static DOC: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let d = p2p_doc();
        (d.to_xml(), d.to_json())
    })
}

// ---------------------------------------------------------------------------
// Properties on random deployments

/// A random goal skeleton and deployment: components with ports (some
/// external), hosts, at most one instance per component and host, channels
/// between non-external ports (all variadic), and upgrades.
#[derive(Debug, Clone)]
struct Case {
    /// Per component: ports, `true` when external.
    comps: Vec<Vec<bool>>,
    hosts: usize,
    /// (component, host), distinct.
    instances: Vec<(usize, usize)>,
    /// ((instance, port), (instance, port)).
    channels: Vec<((usize, usize), (usize, usize))>,
    /// (component, changed ports, otherhost).
    upgrades: Vec<(usize, Vec<usize>, bool)>,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..=3, 1usize..=4)
        .prop_flat_map(|(ncomp, hosts)| {
            let comps = proptest::collection::vec(proptest::collection::vec(prop::bool::weighted(0.2), 1..=3), ncomp);
            let placement = proptest::collection::vec(prop::bool::weighted(0.6), ncomp * hosts);
            let picks = proptest::collection::vec((any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>()), 0..10);
            let ups = proptest::collection::vec((any::<bool>(), any::<u8>(), prop::bool::weighted(0.4)), ncomp);
            (Just(hosts), comps, placement, picks, ups)
        })
        .prop_map(|(hosts, comps, placement, picks, ups)| {
            let mut instances = Vec::new();
            for (k, on) in placement.iter().enumerate() {
                if *on {
                    instances.push((k / hosts, k % hosts));
                }
            }
            let internal = |c: usize| -> Vec<usize> { (0..comps[c].len()).filter(|&p| !comps[c][p]).collect() };
            let mut channels = Vec::new();
            if instances.len() >= 2 {
                for (a, pa, b, pb) in picks {
                    let a = a as usize % instances.len();
                    let b = b as usize % instances.len();
                    let (ia, ib) = (internal(instances[a].0), internal(instances[b].0));
                    if a == b || ia.is_empty() || ib.is_empty() {
                        continue;
                    }
                    let ea = (a, ia[pa as usize % ia.len()]);
                    let eb = (b, ib[pb as usize % ib.len()]);
                    if !channels.iter().any(|&(x, y)| (x, y) == (ea, eb) || (x, y) == (eb, ea)) {
                        channels.push((ea, eb));
                    }
                }
            }
            let upgrades = ups
                .iter()
                .enumerate()
                .filter(|(_, (on, _, _))| *on)
                .map(|(c, (_, mask, other))| {
                    let changes = internal(c).into_iter().filter(|p| mask & (1 << p) != 0).collect();
                    (c, changes, *other)
                })
                .collect();
            Case { comps, hosts, instances, channels, upgrades }
        })
}

fn goal_text(case: &Case, upgrades: &[(usize, Vec<usize>, bool)]) -> String {
    let mut s = String::new();
    for (c, ports) in case.comps.iter().enumerate() {
        let ports: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(p, ext)| if *ext { format!("p{p}: external") } else { format!("p{p}[]") })
            .collect();
        s.push_str(&format!("component C{c}(code = \"c{c}-1.xml\", ports = {{{}}})\n", ports.join(", ")));
    }
    for h in 0..case.hosts {
        s.push_str(&format!("host h{h} = host()\n"));
    }
    s.push_str("constraintset s = constraintset { true }\n");
    for (c, changes, other) in upgrades {
        let ch: Vec<String> = changes.iter().map(|p| format!("p{p}")).collect();
        let shadow = if *other { ", shadow = \"otherhost\"" } else { "" };
        s.push_str(&format!("upgrade C{c}(code = \"c{c}-2.xml\", changes = {{{}}}{shadow})\n", ch.join(", ")));
    }
    s
}

fn world(case: &Case) -> World {
    let instances = case.instances.iter().map(|&(c, h)| Inst { comp: c, host: h, id: format!("C{c}@h{h}") }).collect();
    let mut next: BTreeMap<(usize, usize), u32> = BTreeMap::new();
    let mut end = |(i, p): (usize, usize)| {
        let k = next.entry((i, p)).or_insert(0);
        *k += 1;
        ChanEnd { inst: i, port: p, index: Some(*k - 1) }
    };
    let channels = case
        .channels
        .iter()
        .enumerate()
        .map(|(k, &(a, b))| Chan { id: format!("c{}", k + 1), directed: false, from: end(a), to: end(b) })
        .collect();
    World { hosts: (0..case.hosts).collect(), instances, channels }
}

/// The oracle's verdict: (boundary-violating channels, disagreeing channels,
/// upgrades whose otherhost shadows have nowhere to go).
fn oracle(case: &Case, upgrades: &[(usize, Vec<usize>, bool)]) -> (BTreeSet<usize>, BTreeSet<usize>, BTreeSet<usize>) {
    let up = |c: usize| upgrades.iter().position(|u| u.0 == c);
    let low = |i: usize| up(case.instances[i].0).is_some();
    let changed = |(i, p): (usize, usize)| up(case.instances[i].0).is_some_and(|u| upgrades[u].1.contains(&p));
    let (mut boundary, mut disagree) = (BTreeSet::new(), BTreeSet::new());
    for (k, &(a, b)) in case.channels.iter().enumerate() {
        match (low(a.0), low(b.0)) {
            (true, true) if changed(a) != changed(b) => {
                disagree.insert(k);
            }
            (true, false) if changed(a) => {
                boundary.insert(k);
            }
            (false, true) if changed(b) => {
                boundary.insert(k);
            }
            _ => {}
        }
    }
    let stuck = (0..upgrades.len())
        .filter(|&u| case.hosts == 1 && upgrades[u].2 && case.instances.iter().any(|i| i.0 == upgrades[u].0))
        .collect();
    (boundary, disagree, stuck)
}

/// The least possible largest number of shadows on one host, by brute force
/// (None when there are too many otherhost shadows to enumerate).
fn best_spread(case: &Case) -> Option<usize> {
    let up = |c: usize| case.upgrades.iter().find(|u| u.0 == c);
    let mut fixed = vec![0usize; case.hosts];
    let mut movable = Vec::new();
    for &(c, h) in &case.instances {
        match up(c) {
            Some((_, _, true)) => movable.push(h),
            Some(_) => fixed[h] += 1,
            None => {}
        }
    }
    if movable.len() > 7 {
        return None;
    }
    fn go(k: usize, movable: &[usize], load: &mut Vec<usize>, best: &mut usize) {
        let cur = load.iter().copied().max().unwrap_or(0);
        if cur >= *best {
            return;
        }
        if k == movable.len() {
            *best = cur;
            return;
        }
        for h in 0..load.len() {
            if h != movable[k] {
                load[h] += 1;
                go(k + 1, movable, load, best);
                load[h] -= 1;
            }
        }
    }
    let mut best = usize::MAX;
    go(0, &movable, &mut fixed, &mut best);
    Some(best)
}

/// The fixes the diagnostics suggest: component to the full `changes`.
fn suggested(diags: &[deladas::diagnostics::Diagnostic]) -> BTreeMap<usize, Vec<usize>> {
    let mut out = BTreeMap::new();
    let ports = |s: &str| -> Vec<usize> {
        s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p[1..].parse().unwrap()).collect()
    };
    for d in diags {
        for n in &d.notes {
            let mut rest = n.text.as_str();
            while let Some(i) = rest.find("`upgrade C") {
                let after = &rest[i + "`upgrade C".len()..];
                let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
                let comp: usize = digits.parse().unwrap();
                let after = &after[digits.len()..];
                if let Some(body) = after.strip_prefix(" (…, changes = {") {
                    let set = &body[..body.find('}').unwrap()];
                    out.insert(comp, ports(set));
                }
                rest = after;
            }
            let mut rest = n.text.as_str();
            while let Some(i) = rest.find("write `changes = {") {
                let after = &rest[i + "write `changes = {".len()..];
                let set = &after[..after.find('}').unwrap()];
                let tail = &after[after.find("in `upgrade C").unwrap() + "in `upgrade C".len()..];
                let digits: String = tail.chars().take_while(|c| c.is_ascii_digit()).collect();
                out.insert(digits.parse().unwrap(), ports(set));
                rest = tail;
            }
        }
    }
    out
}

fn random_deployments_match_the_oracle() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 300, ..ProptestConfig::default() });
    let docs = std::sync::Mutex::new(Vec::new());
    let result = runner.run(&case_strategy(), |case| {
        let program = checked_program(&goal_text(&case, &case.upgrades));
        let w = world(&case);
        let (boundary_bad, disagree_bad, stuck) = oracle(&case, &case.upgrades);
        let result = assign(&program, &w);
        prop_assert_eq!(&result, &assign(&program, &w), "deterministic");
        match result {
            Ok(doc) => {
                prop_assert!(boundary_bad.is_empty() && disagree_bad.is_empty() && stuck.is_empty());
                prop_assert!(doc.validate().is_empty(), "{:?}", doc.validate());
                let upgraded: BTreeSet<usize> = case.upgrades.iter().map(|u| u.0).collect();
                let low: Vec<String> = case
                    .instances
                    .iter()
                    .filter(|i| upgraded.contains(&i.0))
                    .map(|&(c, h)| format!("C{c}@h{h}"))
                    .collect();
                let active: Vec<String> = case
                    .instances
                    .iter()
                    .filter(|i| !upgraded.contains(&i.0))
                    .map(|&(c, h)| format!("C{c}@h{h}"))
                    .collect();
                prop_assert_eq!(doc.groups.low.iter().map(|m| m.instance.clone()).collect::<Vec<_>>(), low);
                prop_assert_eq!(doc.groups.active.iter().map(|m| m.instance.clone()).collect::<Vec<_>>(), active);
                // Shadows: one per G_low instance, on the right host.
                let mut per_host = vec![0usize; case.hosts];
                for s in &doc.groups.shadow {
                    let twin = case.instances.iter().find(|&&(c, h)| format!("C{c}@h{h}") == s.shadows).unwrap();
                    let other = case.upgrades.iter().find(|u| u.0 == twin.0).unwrap().2;
                    let twin_host = format!("h{}", twin.1);
                    prop_assert_eq!(other, s.host != twin_host, "{:?}", s);
                    per_host[s.host[1..].parse::<usize>().unwrap()] += 1;
                }
                prop_assert_eq!(doc.groups.shadow.len(), doc.groups.low.len());
                if let Some(best) = best_spread(&case) {
                    let max = per_host.iter().copied().max().unwrap_or(0);
                    prop_assert_eq!(max, if doc.groups.shadow.is_empty() { 0 } else { best }, "spread {:?}", per_host);
                }
                // The boundary: every channel with exactly one end in G_low.
                let cross: Vec<String> = case
                    .channels
                    .iter()
                    .enumerate()
                    .filter(|(_, (a, b))| {
                        upgraded.contains(&case.instances[a.0].0) != upgraded.contains(&case.instances[b.0].0)
                    })
                    .map(|(k, _)| format!("c{}", k + 1))
                    .collect();
                prop_assert_eq!(doc.boundary.iter().map(|b| b.channel.clone()).collect::<Vec<_>>(), cross);
                assert_round_trips(&doc);
                docs.lock().unwrap().push(doc.to_xml());
            }
            Err(violations) => {
                let mut b = BTreeSet::new();
                let mut d = BTreeSet::new();
                let mut s = BTreeSet::new();
                for v in &violations {
                    match v {
                        Violation::Boundary { channel, .. } => b.insert(*channel),
                        Violation::Disagreement { channel, .. } => d.insert(*channel),
                        Violation::NoOtherHost { upgrade, .. } => s.insert(*upgrade),
                        Violation::Internal(m) => panic!("internal: {m}"),
                    };
                }
                prop_assert_eq!(&b, &boundary_bad);
                prop_assert_eq!(&d, &disagree_bad);
                prop_assert_eq!(&s, &stuck);
                let diags = diagnostics(&program, &w, &violations);
                prop_assert_eq!(diags.len(), violations.len());
                // Following every help makes both rules hold.
                if !b.is_empty() || !d.is_empty() {
                    let fixes = suggested(&diags);
                    prop_assert!(!fixes.is_empty(), "no fix suggested: {:?}", diags);
                    let mut ups = case.upgrades.clone();
                    for (c, changes) in fixes {
                        match ups.iter_mut().find(|u| u.0 == c) {
                            Some(u) => u.1 = changes,
                            None => ups.push((c, changes, false)),
                        }
                    }
                    let (b2, d2, _) = oracle(&case, &ups);
                    prop_assert!(b2.is_empty() && d2.is_empty(), "after the fixes {:?}: {:?} {:?}", ups, b2, d2);
                    let fixed = checked_program(&goal_text(&case, &ups));
                    if let Err(v) = assign(&fixed, &w) {
                        prop_assert!(v.iter().all(|v| matches!(v, Violation::NoOtherHost { .. })), "{:?}", v);
                    }
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_schema_valid(&docs.into_inner().unwrap());
}

/// A placement where taking the emptiest host for each shadow in turn ends
/// with three shadows on one host, though two per host is possible: the two
/// shadows whose twins are on h2 must both go to h0, leaving h1 and h2 for
/// the four whose twins are on h0.
fn otherhost_spread_looks_ahead() {
    let case = Case {
        comps: vec![vec![false]; 4],
        hosts: 3,
        instances: vec![(0, 2), (1, 2), (0, 0), (1, 0), (2, 0), (3, 0)],
        channels: vec![],
        upgrades: (0..4).map(|c| (c, vec![], true)).collect(),
    };
    let program = checked_program(&goal_text(&case, &case.upgrades));
    let doc = assign(&program, &world(&case)).unwrap();
    let hosts: Vec<(&str, &str)> = doc.groups.shadow.iter().map(|s| (s.shadows.as_str(), s.host.as_str())).collect();
    assert_eq!(
        hosts,
        [("C0@h2", "h0"), ("C1@h2", "h0"), ("C0@h0", "h1"), ("C1@h0", "h2"), ("C2@h0", "h1"), ("C3@h0", "h2")]
            .iter()
            .map(|&(a, b)| (a, b))
            .collect::<Vec<_>>()
    );
    assert_eq!(best_spread(&case), Some(2));
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let mut trials = vec![];
    for path in cases() {
        trials.push(libtest_mimic::Trial::test(format!("case::{}", stem(&path)), move || {
            case(&path);
            Ok(())
        }));
    }
    let whole: &[(&str, fn())] = &[
        ("cases_vary_their_goal_and_deployments_are_real", cases_vary_their_goal_and_deployments_are_real),
        ("stale_snapshots_are_deleted", stale_snapshots_are_deleted),
        ("output_is_deterministic", output_is_deterministic),
        ("p2p_router_upgrade_clusters_the_routers", p2p_router_upgrade_clusters_the_routers),
        ("p2p_client_port_change_names_every_client", p2p_client_port_change_names_every_client),
        ("bad_inputs_exit_2", bad_inputs_exit_2),
        ("xml_reader_reports_every_problem_with_its_line", xml_reader_reports_every_problem_with_its_line),
        ("json_reader_reports_problems", json_reader_reports_problems),
        ("random_deployments_match_the_oracle", random_deployments_match_the_oracle),
        ("otherhost_spread_looks_ahead", otherhost_spread_looks_ahead),
        ("readers_never_panic", readers_never_panic),
    ];
    for &(name, f) in whole {
        trials.push(libtest_mimic::Trial::test(name, move || {
            f();
            Ok(())
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}
