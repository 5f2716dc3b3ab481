//! Tests of the independent evaluator (`deladas::eval`): binding DDDs to
//! goals, clause violations with their witnesses (insta snapshots), the
//! structural rules, parsimony, reachability over directed channels, the
//! brute-force oracle, robustness on broken programs, and speed on a
//! thousand hosts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use deladas::check::ir::{Clause, Formula, FormulaKind, Loc, Origin, Program, Term, TermKind, Type};
use deladas::check::{check_loaded, check_path, load, RealFs};
use deladas::ddd::{self, from_xml, Channel, Deployment, End, Instance};
use deladas::diagnostics::{render, Sources};
use deladas::eval::brute::{enumerate, BruteResult, Limits};
use deladas::eval::{
    bind, is_solution, structural_violations, superfluous, violations, Part, Rule, Violation, ViolationKind, World,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Helpers

fn manifest() -> PathBuf {
    PathBuf::from(env!("DELADAS_ROOT"))
}

/// Checks a goal file (relative to the crate root); it must have no errors.
fn goal(rel: &str) -> (Sources, Program) {
    // Relative to the crate root (the tests' working directory), so
    // rendered paths in snapshots do not depend on the checkout.
    let (sources, checked) = check_path(Path::new(rel));
    assert!(!checked.has_errors(), "{rel} has errors:\n{}", render::to_text(&checked.diags, &sources));
    (sources, checked.program)
}

/// Checks a goal given as text; it must have no errors.
fn goal_text(name: &str, text: &str) -> (Sources, Program) {
    let (sources, checked) = check_loaded(load(Path::new(name), Some(text), &RealFs));
    assert!(!checked.has_errors(), "{name} has errors:\n{}", render::to_text(&checked.diags, &sources));
    (sources, checked.program)
}

/// A DDD with every host and component of the goal, these instances
/// (`Comp@host` or `Comp@host#k`) and these channels (`Inst.port` pairs, in
/// from/to order). Directed exactly when both ports declare directions;
/// variadic indices numbered in order.
fn deployment(prog: &Program, instances: &[&str], channels: &[(&str, &str)]) -> Deployment {
    let all = World { hosts: (0..prog.hosts.len()).collect(), ..World::default() };
    let mut d = all.to_deployment(prog);
    for id in instances {
        let (comp, rest) = id.split_once('@').expect("instance id has @");
        let host = rest.split('#').next().unwrap_or(rest);
        d.instances.push(Instance { id: id.to_string(), component: comp.into(), host: host.into() });
    }
    let mut next: std::collections::HashMap<(String, String), u32> = Default::default();
    let mut end = |d: &Deployment, s: &str| -> (End, Option<ddd::Direction>) {
        let (inst, port) = s.rsplit_once('.').expect("end is Inst.port");
        let decl = d.end_port(&End { instance: inst.into(), port: port.into(), index: None }).cloned();
        let variadic = decl.as_ref().is_some_and(|p| p.variadic);
        let index = variadic.then(|| {
            let n = next.entry((inst.into(), port.into())).or_insert(0);
            *n += 1;
            *n - 1
        });
        (End { instance: inst.into(), port: port.into(), index }, decl.and_then(|p| p.direction))
    };
    for (i, (a, b)) in channels.iter().enumerate() {
        let (from, fd) = end(&d, a);
        let (to, td) = end(&d, b);
        let dirs = [fd, td];
        let directed = dirs.iter().all(|x| matches!(x, Some(ddd::Direction::Input | ddd::Direction::Output)));
        d.channels.push(Channel { id: format!("c{}", i + 1), directed, from, to });
    }
    d
}

fn bound(prog: &Program, d: &Deployment) -> World {
    match bind(prog, d) {
        Ok(w) => w,
        Err(e) => panic!("bind failed:\n{}", e.join("\n")),
    }
}

/// A violation in words, with where its clause and steps are.
fn describe(v: &Violation, sources: &Sources) -> String {
    let at = |loc: Loc| {
        let (l, c) = sources.line_col(loc.file, loc.span.start as usize);
        let name = Path::new(sources.name_of(loc.file)).file_name().map(|n| n.to_string_lossy().into_owned());
        format!("{}:{l}:{c}", name.unwrap_or_default())
    };
    let mut s = match &v.origin {
        Some(o) => format!("[{:?}] constraintset {} at {}\n", v.kind, o.constraintset, at(o.loc)),
        None => format!("[{:?}]\n", v.kind),
    };
    s.push_str(&v.message);
    s.push('\n');
    for st in &v.witness {
        match st.loc {
            Some(l) => s.push_str(&format!("  - {}  ({})\n", st.text, at(l))),
            None => s.push_str(&format!("  - {}\n", st.text)),
        }
    }
    s
}

fn describe_all(vs: &[Violation], sources: &Sources) -> String {
    vs.iter().map(|v| describe(v, sources)).collect::<Vec<_>>().join("\n")
}

/// The line of a violation's clause.
fn clause_line(v: &Violation, sources: &Sources) -> usize {
    let o = v.origin.as_ref().expect("a clause violation has an origin");
    sources.line_col(o.loc.file, o.loc.span.start as usize).0
}

const P2P_INSTANCES: &[&str] = &["Client@h1", "Client@h2", "Router@h3", "Router@h4", "Client@h5", "Client@h6"];

/// The valid P2P configuration: clients h1, h5 on Router@h3, h2, h6 on
/// Router@h4, the routers wired both ways.
fn p2p_channels() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Client@h1.out", "Router@h3.cin"),
        ("Client@h1.in", "Router@h3.cout"),
        ("Client@h5.out", "Router@h3.cin"),
        ("Client@h5.in", "Router@h3.cout"),
        ("Client@h2.out", "Router@h4.cin"),
        ("Client@h2.in", "Router@h4.cout"),
        ("Client@h6.out", "Router@h4.cin"),
        ("Client@h6.in", "Router@h4.cout"),
        ("Router@h3.rout", "Router@h4.rin"),
        ("Router@h4.rout", "Router@h3.rin"),
    ]
}

fn p2p() -> (Sources, Program) {
    goal("examples/p2p.deladas")
}

// ---------------------------------------------------------------------------
// The P2P example

#[test]
fn p2p_valid_ddd_has_no_violations_and_nothing_superfluous() {
    let (_, prog) = p2p();
    let text = std::fs::read_to_string(manifest().join("tests/eval/p2p-valid.xml")).expect("fixture");
    let d = from_xml(&text).unwrap_or_else(|e| panic!("fixture does not read: {e:?}"));
    let world = bound(&prog, &d);
    assert_eq!(world.hosts.len(), 6);
    assert_eq!(world.instances.len(), 6);
    assert_eq!(world.channels.len(), 10);
    assert!(structural_violations(&prog, &world).is_empty());
    assert!(violations(&prog, &world).is_empty());
    assert!(is_solution(&prog, &world));
    assert_eq!(superfluous(&prog, &world), vec![]);
}

#[test]
fn p2p_built_world_matches_the_fixture() {
    let (_, prog) = p2p();
    let built = bound(&prog, &deployment(&prog, P2P_INSTANCES, &p2p_channels()));
    assert!(violations(&prog, &built).is_empty());
    assert!(structural_violations(&prog, &built).is_empty());
    // The evaluator's own DDD is one the reader accepts.
    let mut d = built.to_deployment(&prog);
    d.canonicalize();
    d.check().unwrap_or_else(|e| panic!("to_deployment is not a valid DDD: {e:?}"));
}

/// One P2P variant: the violations it has, which must be exactly one, on
/// the clause at `line`; the description is snapshotted.
fn p2p_variant(name: &str, instances: &[&str], channels: &[(&str, &str)], line: usize) {
    let (sources, prog) = p2p();
    let world = bound(&prog, &deployment(&prog, instances, channels));
    assert!(structural_violations(&prog, &world).is_empty(), "{name}: structural violations");
    let vs = violations(&prog, &world);
    assert_eq!(vs.len(), 1, "{name}: expected one violation, got:\n{}", describe_all(&vs, &sources));
    assert_eq!(vs[0].kind, ViolationKind::Clause);
    assert_eq!(clause_line(&vs[0], &sources), line, "{name}: wrong clause");
    assert!(!is_solution(&prog, &world));
    insta::assert_snapshot!(name, describe_all(&vs, &sources));
}

#[test]
fn p2p_host_without_router_or_client() {
    // Client@h6 gone: host h6 runs neither.
    let channels: Vec<_> = p2p_channels().into_iter().filter(|(a, _)| !a.starts_with("Client@h6")).collect();
    p2p_variant("p2p_clause1_empty_host", &P2P_INSTANCES[..5], &channels, 38);
}

#[test]
fn p2p_client_wired_one_way_only() {
    // Client@h6.in is no longer wired to Router@h4.cout.
    let channels: Vec<_> = p2p_channels().into_iter().filter(|c| *c != ("Client@h6.in", "Router@h4.cout")).collect();
    p2p_variant("p2p_clause2_one_way_client", P2P_INSTANCES, &channels, 43);
}

#[test]
fn p2p_router_with_three_clients() {
    // Client@h6 moves to Router@h3.
    let channels: Vec<_> = p2p_channels()
        .into_iter()
        .map(|(a, b)| if a.starts_with("Client@h6") { (a, b.replace("h4", "h3").leak() as &str) } else { (a, b) })
        .collect();
    p2p_variant("p2p_clause3_three_clients", P2P_INSTANCES, &channels, 50);
}

#[test]
fn p2p_routers_wired_one_way() {
    // Only Router@h3.rout -> Router@h4.rin: still connected, but neither
    // router has a partner wired both ways.
    let channels: Vec<_> = p2p_channels().into_iter().filter(|c| *c != ("Router@h4.rout", "Router@h3.rin")).collect();
    p2p_variant("p2p_clause4_router_pair_one_way", P2P_INSTANCES, &channels, 54);
}

#[test]
fn p2p_two_router_islands() {
    // Routers in two pairs (h1-h2, h3-h4), clients on h5 and h6: every
    // router has a partner, but the pairs cannot reach each other.
    let instances = ["Router@h1", "Router@h2", "Router@h3", "Router@h4", "Client@h5", "Client@h6"];
    let channels = [
        ("Router@h1.rout", "Router@h2.rin"),
        ("Router@h2.rout", "Router@h1.rin"),
        ("Router@h3.rout", "Router@h4.rin"),
        ("Router@h4.rout", "Router@h3.rin"),
        ("Client@h5.out", "Router@h1.cin"),
        ("Client@h5.in", "Router@h1.cout"),
        ("Client@h6.out", "Router@h3.cin"),
        ("Client@h6.in", "Router@h3.cout"),
    ];
    p2p_variant("p2p_clause5_islands", &instances, &channels, 62);
}

#[test]
fn p2p_violation_as_diagnostic() {
    let (sources, prog) = p2p();
    let channels: Vec<_> = p2p_channels()
        .into_iter()
        .map(|(a, b)| if a.starts_with("Client@h6") { (a, b.replace("h4", "h3").leak() as &str) } else { (a, b) })
        .collect();
    let world = bound(&prog, &deployment(&prog, P2P_INSTANCES, &channels));
    let vs = violations(&prog, &world);
    assert_eq!(vs.len(), 1);
    assert_eq!(
        vs[0].to_string(),
        "a clause of constraintset `randc` does not hold: for Router r = Router@h3: Router@h3 is connected to \
         3 Clients (Client@h1, Client@h5, Client@h6); the clause allows at most 2"
    );
    let diags: Vec<_> = vs.iter().map(Violation::to_diagnostic).collect();
    insta::assert_snapshot!("p2p_clause3_diagnostic", render::to_text(&diags, &sources));
}

#[test]
fn p2p_extra_channel_is_superfluous() {
    let (_, prog) = p2p();
    let mut channels = p2p_channels();
    channels.push(("Router@h3.cout", "Router@h4.cin"));
    let world = bound(&prog, &deployment(&prog, P2P_INSTANCES, &channels));
    assert!(violations(&prog, &world).is_empty());
    assert!(structural_violations(&prog, &world).is_empty());
    assert_eq!(superfluous(&prog, &world), vec![Part::Channel(10)]);
    // Without it the world is parsimonious again.
    assert_eq!(superfluous(&prog, &world.without(Part::Channel(10))), vec![]);
}

#[test]
fn unneeded_instance_is_superfluous() {
    let (_, prog) = goal("tests/eval/spare.deladas");
    let world = bound(&prog, &deployment(&prog, &["Worker@h1"], &[]));
    assert!(violations(&prog, &world).is_empty());
    assert_eq!(superfluous(&prog, &world), vec![Part::Instance(0)]);
    let world = bound(&prog, &deployment(&prog, &["Worker@h2"], &[]));
    let vs = violations(&prog, &world);
    assert_eq!(vs.len(), 1);
    assert_eq!(vs[0].witness_text(), "for Worker w = Worker@h2: hostof(w).zone is \"west\", but must be = \"east\"");
}

// ---------------------------------------------------------------------------
// Reachability over directed channels

#[test]
fn one_way_cycle_is_strongly_connected() {
    let (_, prog) = goal("tests/eval/ring.deladas");
    let nodes = ["Node@h1", "Node@h2", "Node@h3"];
    let cycle = [("Node@h1.out", "Node@h2.in"), ("Node@h2.out", "Node@h3.in"), ("Node@h3.out", "Node@h1.in")];
    let world = bound(&prog, &deployment(&prog, &nodes, &cycle));
    assert!(world.channels.iter().all(|c| c.directed));
    assert!(structural_violations(&prog, &world).is_empty());
    assert!(violations(&prog, &world).is_empty());
    // Every channel is needed: without any one the cycle is a chain.
    assert_eq!(superfluous(&prog, &world), vec![]);
}

#[test]
fn one_way_chain_is_not_strongly_connected() {
    let (sources, prog) = goal("tests/eval/ring.deladas");
    let nodes = ["Node@h1", "Node@h2", "Node@h3"];
    let chain = [("Node@h1.out", "Node@h2.in"), ("Node@h2.out", "Node@h3.in")];
    let world = bound(&prog, &deployment(&prog, &nodes, &chain));
    assert!(structural_violations(&prog, &world).is_empty());
    let vs = violations(&prog, &world);
    assert_eq!(vs.len(), 1);
    assert_eq!(vs[0].witness_text(), "for Node x = Node@h2: for Node y = Node@h1: Node@h2 cannot reach Node@h1");
    insta::assert_snapshot!("ring_one_way_chain", describe_all(&vs, &sources));
    // The same chain, undirected (a flag the structural rules object to),
    // is followed both ways.
    let mut both = world.clone();
    for c in &mut both.channels {
        c.directed = false;
    }
    assert!(violations(&prog, &both).is_empty());
    assert!(structural_violations(&prog, &both)
        .iter()
        .all(|v| v.kind == ViolationKind::Structural(Rule::DirectionFlag)));
}

// ---------------------------------------------------------------------------
// Structural rules

#[test]
fn p2p_two_channels_on_one_port_and_maxperhost() {
    let (sources, prog) = p2p();
    let mut instances = P2P_INSTANCES.to_vec();
    instances.push("Router@h5");
    let mut channels = p2p_channels();
    channels.push(("Client@h1.out", "Router@h4.cin"));
    let mut d = deployment(&prog, &instances, &channels);
    // A second router on h3 (maxperhost defaults to 1).
    d.instances.push(Instance { id: "Router@h3#2".into(), component: "Router".into(), host: "h3".into() });
    let world = bound(&prog, &d);
    let vs = structural_violations(&prog, &world);
    let rules: Vec<_> = vs.iter().map(|v| v.kind).collect();
    assert_eq!(
        rules,
        vec![ViolationKind::Structural(Rule::PortCapacity), ViolationKind::Structural(Rule::MaxPerHost)],
        "{}",
        describe_all(&vs, &sources)
    );
    insta::assert_snapshot!("p2p_structural", describe_all(&vs, &sources));
}

#[test]
fn every_structural_rule() {
    let (sources, prog) = goal("tests/eval/wiring.deladas");
    let instances = ["Sensor@h1", "Sensor@h2", "Sink@h2", "Sink@h3", "Sensor@h3"];
    let channels = [
        ("Sensor@h1.dev", "Sink@h2.ctl"),     // external port
        ("Sensor@h1.data", "Sensor@h2.data"), // output–output
        ("Sink@h2.feed", "Sink@h3.feed"),     // input–input
        ("Sensor@h1.data", "Sink@h2.feed"),   // fine (capacity of Sensor@h1.data now 2)
        ("Sensor@h2.ctl", "Sink@h3.ctl"),     // fine
        ("Sink@h3.ctl", "Sensor@h2.ctl"),     // duplicate of the previous, and Sensor@h2.ctl holds 2
        ("Sink@h2.ctl", "Sink@h2.ctl"),       // self channel
        ("Sensor@h3.data", "Sink@h2.feed"),   // Sink@h2.feed: 3 channels, feed[2]
    ];
    let mut d = deployment(&prog, &instances, &channels);
    // Flags that disagree with the ports: an output-to-input channel not
    // marked directed, and a directed channel between undirected ports.
    d.channels[3].directed = false;
    d.channels[4].directed = true;
    // h3 is declared but not available.
    d.hosts.retain(|h| h.id != "h3");
    let world = bound(&prog, &d);
    let vs = structural_violations(&prog, &world);
    let rules: std::collections::BTreeSet<_> = vs
        .iter()
        .map(|v| match v.kind {
            ViolationKind::Structural(r) => r,
            k => panic!("unexpected {k:?}"),
        })
        .collect();
    let all = [
        Rule::UnavailableHost,
        Rule::SelfChannel,
        Rule::PortCapacity,
        Rule::DuplicateChannel,
        Rule::ExternalPort,
        Rule::IncompatibleDirections,
        Rule::DirectionFlag,
        Rule::MaxInstances,
    ];
    for r in all {
        assert!(rules.contains(&r), "{r:?} not reported:\n{}", describe_all(&vs, &sources));
    }
    insta::assert_snapshot!("every_structural_rule", describe_all(&vs, &sources));
    let diags: Vec<_> = vs.iter().take(2).map(Violation::to_diagnostic).collect();
    insta::assert_snapshot!("structural_diagnostic", render::to_text(&diags, &sources));
}

// ---------------------------------------------------------------------------
// Binding

#[test]
fn bind_reports_every_mismatch() {
    let (_, prog) = p2p();
    let mut d = deployment(&prog, P2P_INSTANCES, &p2p_channels());
    d.hosts.push(ddd::Host { id: "h9".into(), attrs: vec![] });
    d.hosts[0].attrs[0].value = ddd::AttrValue::Str("10.0.0.1".into());
    let router = d.components.iter_mut().find(|c| c.name == "Router").expect("Router");
    router.ports[0].variadic = false;
    router.ports[1].direction = Some(ddd::Direction::Output);
    router.ports.pop();
    router.ports.push(ddd::Port { name: "xin".into(), ..ddd::Port::default() });
    router.maxperhost = Some(2);
    d.components.push(ddd::Component { name: "Ghost".into(), code: "g".into(), ..ddd::Component::default() });
    d.instances.push(Instance { id: "Proxy@h1".into(), component: "Proxy".into(), host: "h1".into() });
    d.instances.push(Instance { id: "Client@h7".into(), component: "Client".into(), host: "h7".into() });
    d.instances.push(Instance { id: "Client@h1".into(), component: "Client".into(), host: "h1".into() });
    d.channels.push(Channel {
        id: "c99".into(),
        directed: false,
        from: End { instance: "Client@h2".into(), port: "up".into(), index: None },
        to: End { instance: "Router@h9".into(), port: "cin".into(), index: Some(5) },
    });
    d.channels.push(Channel {
        id: "c98".into(),
        directed: false,
        from: End { instance: "Client@h2".into(), port: "out".into(), index: Some(0) },
        to: End { instance: "Router@h4".into(), port: "rin".into(), index: None },
    });
    let errors = bind(&prog, &d).expect_err("mismatches");
    insta::assert_snapshot!("bind_errors", errors.join("\n"));
}

// ---------------------------------------------------------------------------
// Brute force

#[test]
fn brute_force_finds_a_solution_of_a_satisfiable_goal() {
    let (_, prog) = goal("tests/eval/tiny-sat.deladas");
    let t = Instant::now();
    let r = enumerate(&prog, &Limits::default());
    let BruteResult::Found { world, examined } = r else { panic!("expected a solution, got {r:?}") };
    eprintln!("tiny-sat: found after {examined} configurations in {:?}", t.elapsed());
    assert!(examined > 0);
    assert!(violations(&prog, &world).is_empty());
    assert!(structural_violations(&prog, &world).is_empty());
    // It is a configuration the DDD reader accepts, and binds back.
    let mut d = world.to_deployment(&prog);
    d.canonicalize();
    d.check().unwrap_or_else(|e| panic!("not a valid DDD: {e:?}"));
    let again = bound(&prog, &d);
    assert!(is_solution(&prog, &again));
}

#[test]
fn brute_force_finds_nothing_for_an_unsatisfiable_goal() {
    let (_, prog) = goal("tests/eval/tiny-unsat.deladas");
    let t = Instant::now();
    let r = enumerate(&prog, &Limits::default());
    eprintln!("tiny-unsat: {r:?} in {:?}", t.elapsed());
    // Placements: 0 or 1 worker on each of 2 hosts; with two workers, the
    // channel between their `p` ports is there or not.
    assert_eq!(r, BruteResult::NotFound { examined: 5 });
}

#[test]
fn brute_force_agrees_with_the_evaluator_on_the_ring() {
    // Directed ring on three hosts: the solution needs a one-way cycle.
    let (_, prog) = goal("tests/eval/ring.deladas");
    let r = enumerate(&prog, &Limits::default());
    let BruteResult::Found { world, .. } = r else { panic!("expected a solution, got {r:?}") };
    assert!(is_solution(&prog, &world));
}

#[test]
fn brute_force_bails_out_when_too_large() {
    let (_, prog) = p2p();
    let r = enumerate(&prog, &Limits { max_candidates: 1000 });
    assert!(matches!(r, BruteResult::TooLarge { .. }), "{r:?}");
    // Small enough in placements, too many channel subsets.
    let (_, prog) = goal("tests/eval/ring.deladas");
    let r = enumerate(&prog, &Limits { max_candidates: 20 });
    assert_eq!(r, BruteResult::TooLarge { examined: 20 });
}

// ---------------------------------------------------------------------------
// Robustness

fn origin() -> Origin {
    Origin { constraintset: "broken".into(), loc: Loc::default(), use_site: None }
}

#[test]
fn error_nodes_are_internal_errors_not_panics() {
    let (_, mut prog) = goal("tests/eval/tiny-unsat.deladas");
    let f = |kind| Formula { kind, loc: Loc::default() };
    let t = |kind| Term { kind, ty: Type::Int, loc: Loc::default() };
    prog.clauses = vec![
        Clause { formula: f(FormulaKind::Error), origin: origin() },
        Clause {
            formula: f(FormulaKind::Cmp(
                deladas::check::ir::CmpOp::Le,
                t(TermKind::Param("k".into())),
                t(TermKind::Error),
            )),
            origin: origin(),
        },
        Clause {
            formula: f(FormulaKind::Cmp(
                deladas::check::ir::CmpOp::Le,
                t(TermKind::Mul(Box::new(t(TermKind::Int(i64::MAX))), Box::new(t(TermKind::Int(2))))),
                t(TermKind::Int(0)),
            )),
            origin: origin(),
        },
        Clause { formula: f(FormulaKind::Reachable(0, 99)), origin: origin() },
    ];
    let world = World { hosts: vec![0], ..World::default() };
    let vs = violations(&prog, &world);
    assert_eq!(vs.len(), 4);
    assert!(vs.iter().all(|v| v.kind == ViolationKind::Internal), "{vs:?}");
    insta::assert_snapshot!("internal_errors", vs.iter().map(|v| v.message.clone()).collect::<Vec<_>>().join("\n"));
    assert!(!is_solution(&prog, &world));
    assert!(matches!(enumerate(&prog, &Limits::default()), BruteResult::Error(_)));
    // A hand-built world with an index out of range.
    let bad = World { hosts: vec![7], ..World::default() };
    assert_eq!(violations(&prog, &bad)[0].kind, ViolationKind::Internal);
    assert_eq!(structural_violations(&prog, &bad)[0].kind, ViolationKind::Internal);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random P2P worlds (any instances, any channels between compatible
    /// ports): the evaluator never panics, `is_solution` agrees with the
    /// violation lists, every violation has a witness, and taking away a
    /// superfluous part leaves a solution.
    #[test]
    fn random_p2p_worlds(
        placed in proptest::collection::vec(any::<bool>(), 12),
        wires in proptest::collection::vec((0usize..12, 0usize..4, 0usize..12, 0usize..4), 0..14),
    ) {
        let (_, prog) = p2p();
        let mut names = Vec::new();
        for (k, &on) in placed.iter().enumerate() {
            if on {
                let comp = if k < 6 { "Client" } else { "Router" };
                names.push(format!("{comp}@h{}", k % 6 + 1));
            }
        }
        let port = |inst: &str, p: usize| -> String {
            let ports: &[&str] = if inst.starts_with("Client") { &["in", "out"] } else { &["cin", "cout", "rin", "rout"] };
            format!("{inst}.{}", ports[p % ports.len()])
        };
        let mut chans: Vec<(String, String)> = Vec::new();
        if !names.is_empty() {
            for (a, pa, b, pb) in wires {
                let (a, b) = (&names[a % names.len()], &names[b % names.len()]);
                chans.push((port(a, pa), port(b, pb)));
            }
        }
        let inst_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let chan_refs: Vec<(&str, &str)> = chans.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let world = bound(&prog, &deployment(&prog, &inst_refs, &chan_refs));
        let s = structural_violations(&prog, &world);
        let v = violations(&prog, &world);
        prop_assert!(v.iter().all(|x| x.kind == ViolationKind::Clause && !x.witness.is_empty()));
        prop_assert!(s.iter().all(|x| matches!(x.kind, ViolationKind::Structural(_)) && !x.witness.is_empty()));
        prop_assert_eq!(is_solution(&prog, &world), s.is_empty() && v.is_empty());
        for part in superfluous(&prog, &world) {
            prop_assert!(is_solution(&prog, &world.without(part)));
        }
    }
}

// ---------------------------------------------------------------------------
// Speed

/// The P2P goal over `n` hosts, and a valid configuration: routers on the
/// first half in a chain wired both ways, one client per router on the
/// second half.
fn big_p2p(n: usize) -> (Program, World) {
    let mut text = String::from(
        "component Client(code = \"c\", ports = {in, out})\n\
         component Router(code = \"r\", ports = {cin[], cout[], rin[], rout[]})\n",
    );
    for h in 1..=n {
        text.push_str(&format!("host h{h} = host(ipaddress = \"10.0.{}.{}\")\n", h / 256, h % 256));
    }
    let p2p = std::fs::read_to_string(manifest().join("examples/p2p.deladas")).expect("p2p");
    text.push_str(&p2p[p2p.find("constraintset randc").expect("goal")..]);
    let (_, prog) = goal_text("big.deladas", &text);
    let half = n / 2;
    let mut instances: Vec<String> = (1..=half).map(|h| format!("Router@h{h}")).collect();
    instances.extend((half + 1..=n).map(|h| format!("Client@h{h}")));
    let mut channels = Vec::new();
    for r in 1..half {
        channels.push((format!("Router@h{r}.rout"), format!("Router@h{}.rin", r + 1)));
        channels.push((format!("Router@h{}.rout", r + 1), format!("Router@h{r}.rin")));
    }
    for r in 1..=half {
        channels.push((format!("Client@h{}.out", r + half), format!("Router@h{r}.cin")));
        channels.push((format!("Client@h{}.in", r + half), format!("Router@h{r}.cout")));
    }
    let inst_refs: Vec<&str> = instances.iter().map(String::as_str).collect();
    let chan_refs: Vec<(&str, &str)> = channels.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let world = bound(&prog, &deployment(&prog, &inst_refs, &chan_refs));
    (prog, world)
}

#[test]
fn a_thousand_hosts_evaluate_quickly() {
    let (prog, world) = big_p2p(1000);
    let t = Instant::now();
    assert!(structural_violations(&prog, &world).is_empty());
    let vs = violations(&prog, &world);
    let elapsed = t.elapsed();
    assert!(vs.is_empty(), "{:?}", vs.first().map(|v| v.to_string()));
    eprintln!("1000 hosts, {} instances, {} channels: {elapsed:?}", world.instances.len(), world.channels.len());
    // Break the chain in the middle: 250 routers cannot reach the other 250.
    let broken = world.without(Part::Channel(498)).without(Part::Channel(498));
    let t = Instant::now();
    let vs = violations(&prog, &broken);
    eprintln!("1000 hosts, broken chain: {:?}, {} violations", t.elapsed(), vs.len());
    assert_eq!(vs.len(), 1, "{}", vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n"));
    assert_eq!(
        vs[0].witness_text(),
        "for Router r1 = Router@h1: for Router r2 = Router@h251: Router@h1 cannot reach Router@h251"
    );
    assert!(elapsed.as_secs() < 20, "too slow: {elapsed:?}");
}

// ---------------------------------------------------------------------------
// Clauses from patterns

#[test]
fn pattern_clauses_name_their_use_site() {
    let (sources, prog) = goal("tests/eval/uses.deladas");
    let world = bound(&prog, &deployment(&prog, &["Node@h1", "Node@h2"], &[("Node@h1.out", "Node@h2.in")]));
    assert!(structural_violations(&prog, &world).is_empty());
    let vs = violations(&prog, &world);
    assert_eq!(vs.len(), 3, "{}", describe_all(&vs, &sources));
    // `use ring` as a clause of `g` is one clause (both of ring's clauses
    // are false: one violation each); the top-level `use spread` brings in
    // spread's clause with its use site.
    let origins: Vec<_> =
        vs.iter().map(|v| v.origin.as_ref().map(|o| (o.constraintset.as_str(), o.use_site.is_some()))).collect();
    assert_eq!(origins.iter().filter(|o| **o == Some(("g", false))).count(), 2);
    assert_eq!(origins.iter().filter(|o| **o == Some(("spread", true))).count(), 1);
    insta::assert_snapshot!("pattern_violations", describe_all(&vs, &sources));
    let diags: Vec<_> = vs.iter().map(Violation::to_diagnostic).collect();
    insta::assert_snapshot!("pattern_diagnostics", render::to_text(&diags, &sources));
}

// ---------------------------------------------------------------------------
// Sums, host attributes, placement domains: the web farm example

const WEBFARM_INSTANCES: &[&str] =
    &["LoadBalancer@lb1", "WebServer@w1", "WebServer@w2", "WebServer@w3", "Database@db1", "Replica@db2"];

fn webfarm_channels() -> Vec<(&'static str, &'static str)> {
    vec![
        ("LoadBalancer@lb1.backends", "WebServer@w1.front"),
        ("LoadBalancer@lb1.backends", "WebServer@w2.front"),
        ("LoadBalancer@lb1.backends", "WebServer@w3.front"),
        ("WebServer@w1.db", "Database@db1.clients"),
        ("WebServer@w2.db", "Database@db1.clients"),
        ("WebServer@w3.db", "Database@db1.clients"),
        ("Database@db1.replog", "Replica@db2.replin"),
    ]
}

#[test]
fn webfarm_valid_world() {
    let (_, prog) = goal("examples/webfarm.deladas");
    let world = bound(&prog, &deployment(&prog, WEBFARM_INSTANCES, &webfarm_channels()));
    assert!(world.channels[6].directed);
    assert!(structural_violations(&prog, &world).is_empty());
    let vs = violations(&prog, &world);
    assert!(vs.is_empty(), "{}", vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n"));
    assert_eq!(superfluous(&prog, &world), vec![]);
}

#[test]
fn webfarm_replica_next_to_the_primary() {
    let (sources, prog) = goal("examples/webfarm.deladas");
    let mut instances = WEBFARM_INSTANCES.to_vec();
    instances[5] = "Replica@db1";
    let channels: Vec<_> = webfarm_channels()
        .into_iter()
        .map(|(a, b)| (a, if b == "Replica@db2.replin" { "Replica@db1.replin" } else { b }))
        .collect();
    let world = bound(&prog, &deployment(&prog, &instances, &channels));
    assert!(structural_violations(&prog, &world).is_empty());
    let vs = violations(&prog, &world);
    insta::assert_snapshot!("webfarm_replica_next_to_primary", describe_all(&vs, &sources));
}

#[test]
fn empty_domains() {
    let (sources, prog) = goal_text(
        "empty.deladas",
        "component Node(code = \"n\", ports = {p})\nhost h1 = host(zone = \"a\")\n\
         constraintset g = constraintset {\n    forall Node x in deployment (false)\n    \
         exists Node x in deployment (true)\n    exists Node x in h1 (true)\n}\n",
    );
    let world = bound(&prog, &deployment(&prog, &[], &[]));
    let vs = violations(&prog, &world);
    assert_eq!(vs.len(), 2, "{}", describe_all(&vs, &sources));
    assert_eq!(vs[0].witness_text(), "no Node x in the deployment satisfies `true`: the deployment has no Nodes");
    assert_eq!(vs[1].witness_text(), "no Node x on host h1 satisfies `true`: host h1 runs no Nodes");
    // With h1 unavailable, the host quantifier has nothing to range over.
    let (_, prog) = goal_text(
        "hosts.deladas",
        "component Node(code = \"n\", ports = {p})\nhost h1 = host(zone = \"a\")\n\
         constraintset g = constraintset {\n    forall host h in deployment (false)\n    \
         exists host h in deployment (h.zone = \"a\")\n}\n",
    );
    let mut d = deployment(&prog, &[], &[]);
    d.hosts.clear();
    let vs = violations(&prog, &bound(&prog, &d));
    assert_eq!(vs.len(), 1);
    assert_eq!(
        vs[0].witness_text(),
        "no host h among the available hosts satisfies `h.zone = \"a\"`: no host is available"
    );
}

#[test]
fn host_counts_and_arithmetic() {
    let (sources, prog) = goal_text(
        "zones.deladas",
        "component Node(code = \"n\", ports = {p})\n\
         host h1 = host(zone = \"a\")\nhost h2 = host(zone = \"a\")\nhost h3 = host(zone = \"b\")\n\
         constraintset g = constraintset {\n    card(host h in deployment where h.zone = \"a\") * 2 - 1 >= 3\n}\n",
    );
    let world = bound(&prog, &deployment(&prog, &[], &[]));
    assert!(violations(&prog, &world).is_empty());
    let mut d = deployment(&prog, &[], &[]);
    d.hosts.retain(|h| h.id != "h2");
    let vs = violations(&prog, &bound(&prog, &d));
    assert_eq!(vs.len(), 1, "{}", describe_all(&vs, &sources));
    assert_eq!(vs[0].witness_text(), "card(host h in deployment where h.zone = \"a\") * 2 - 1 is 1, but must be >= 3");
    // Mismatches report like violations.
    let m = Violation::mismatch("host `h9` in the DDD is not declared in the goal");
    assert_eq!(m.kind, ViolationKind::Mismatch);
    assert_eq!(m.to_diagnostic().message, m.message);
}
