//! The library API a front end drives without argv, stderr or exit codes:
//! a re-solve request as data, the checked deployment it returns, the
//! migration plan, and the diagnostics of a bad request.

use std::path::Path;

use deladas::bench_goals::{p2p, p2p_canonical_ddd, Variant};
use deladas::check::ir::Program;
use deladas::diagnostics::{Code, Sources};
use deladas::plan::Plan;
use deladas::request::{self, AddHost, Answer, Prepared, Request};
use deladas::solve::output::GoalInfo;

fn goal(n: usize) -> (Sources, Program, deladas::ddd::Deployment, GoalInfo) {
    let text = p2p(n, Variant::Satisfy);
    let path = Path::new("p2p.deladas");
    let loaded = deladas::check::load(path, Some(&text), &deladas::check::RealFs);
    let (sources, checked) = deladas::check::check_loaded(loaded);
    assert!(!checked.has_errors(), "{:?}", checked.diags);
    let old = deladas::ddd::from_xml(&p2p_canonical_ddd(n).expect("canonical")).expect("reads");
    (sources, checked.program, old, GoalInfo::of(path, &text))
}

/// A host fails and one is added as data: the new deployment is checked,
/// lists the added host and not the failed one, and the plan moves the
/// failed host's router; its JSON and text renderings agree.
#[test]
fn resolve_request_returns_a_checked_deployment_and_its_plan() {
    let (mut sources, program, old, info) = goal(6);
    let req = Request {
        fail_hosts: vec!["h1".into()],
        add_hosts: vec![AddHost::parse("h9 = host(ipaddress = \"10.0.0.9\")").expect("one host")],
        ..Request::default()
    };
    let Answer::Resolved(r) = request::resolve_request(&program, &mut sources, &old, &req, &info).expect("valid")
    else {
        panic!("no configuration")
    };
    let d = r.deployment.deployment();
    assert_eq!(d.goal_sha256, info.sha256);
    assert!(d.hosts.iter().any(|h| h.id == "h9") && !d.hosts.iter().any(|h| h.id == "h1"), "{d:?}");
    // The evaluator agrees (the library already checked it).
    let with_h9 = Prepared::new(&program, &mut sources, &old, &req).expect("valid").program;
    let world = deladas::eval::bind(&with_h9, d).expect("binds");
    assert!(deladas::eval::all_violations(&with_h9, &world).is_empty());
    let plan = &r.plan;
    assert_eq!(plan.scenario.failed_hosts, vec!["h1"]);
    assert_eq!(plan.scenario.added_hosts, vec!["h9"]);
    assert_eq!(plan.scenario.undeclared_hosts, vec!["h9"]);
    assert!(plan.moved.iter().any(|m| m.from.host == "h1"), "{plan:?}");
    let json = plan.to_json();
    assert_eq!(json["counts"]["instances_kept"], plan.kept.len());
    assert!(plan.to_text().starts_with("migration plan (failed: h1; added: h9)\n"), "{}", plan.to_text());
    // The plan is data: it survives a serde round trip, and diffing the
    // same deployments again gives the same changes.
    let back: Plan = serde_json::from_str(&serde_json::to_string(plan).expect("ser")).expect("de");
    assert_eq!(&back, plan);
    let again = Plan::diff(&old, d, &plan.scenario);
    assert_eq!(
        (again.kept, again.moved, again.channels_added),
        (plan.kept.clone(), plan.moved.clone(), plan.channels_added.clone())
    );
}

/// Bad requests are E0805 diagnostics (with suggestions), checked before
/// any solving; a new host is checked like a declaration of the goal.
#[test]
fn bad_requests_are_diagnostics() {
    let (mut sources, program, old, _) = goal(4);
    let req = Request { fail_hosts: vec!["h7".into()], fail_instances: vec!["Rooter@h1".into()], ..Request::default() };
    let errs = Prepared::new(&program, &mut sources, &old, &req).expect_err("invalid");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().all(|d| d.code == Code::BadFailure), "{errs:?}");
    assert!(errs[1].notes.iter().any(|n| n.contains("did you mean `Router@h1`")), "{errs:?}");
    // Syntax: not one host declaration.
    assert_eq!(AddHost::parse("x = host(cpu = )").expect_err("bad").code, Code::BadFailure);
    assert_eq!(AddHost::parse("h3").expect("a name"), AddHost::Declared("h3".into()));
    // A new host that redeclares a name, or gives an attribute another type.
    for (decl, code) in
        [("h2 = host(ipaddress = \"x\")", Code::Duplicate), ("h9 = host(ipaddress = 3)", Code::MixedAttributeTypes)]
    {
        let req = Request { add_hosts: vec![AddHost::parse(decl).expect("syntax")], ..Request::default() };
        let errs = Prepared::new(&program, &mut sources, &old, &req).expect_err(decl);
        assert_eq!(errs[0].code, code, "{decl}: {errs:?}");
        // It points at the added declaration, not into the goal file.
        let l = errs[0].primary_label().expect("label");
        assert_ne!(l.file, program.root_file);
    }
}
