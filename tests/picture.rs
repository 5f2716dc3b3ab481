//! Pictures (issue 18): `--format svg` of solve, verify and roles,
//! `resolve --plan-format svg`, and `explain --format html`.
//!
//! Every SVG is checked well-formed by `xmllint`; its structure (one group
//! per host holding one group per instance, one group per channel, with the
//! marks as CSS classes) is read back and compared with what the command
//! reports in its other formats (the plan's JSON, the role document), and
//! snapshotted.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, deladas, show, stdout};
use deladas::ddd::{Attr, AttrValue, Channel, Deployment, End, Host, Instance};

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("picture").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// `xmllint --noout` accepts the text.
fn assert_well_formed(text: &str, d: &Path, name: &str) {
    let f = d.join(name);
    std::fs::write(&f, text).expect("write");
    let o =
        Command::new("xmllint").arg("--noout").arg(&f).output().expect("xmllint runs (apt-get install libxml2-utils)");
    assert!(o.status.success(), "{name} is not well-formed XML:\n{}", String::from_utf8_lossy(&o.stderr));
}

/// The value of attribute `name` in the tag text `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

/// What the picture shows: hosts (class, instances with their classes),
/// channels (class, title, whether drawn and labelled), legend entries.
#[derive(Debug, Default)]
struct Shape {
    /// host → (class, [(instance, class)])
    hosts: BTreeMap<String, (String, Vec<(String, String)>)>,
    /// channel id → (class, title, has a path, has a label)
    channels: BTreeMap<String, (String, String, bool, bool)>,
    legend: Vec<String>,
    frames: Vec<String>,
    captions: Vec<String>,
}

fn classes(tag: &str, kind: &str) -> String {
    attr(tag, "class").unwrap_or("").strip_prefix(kind).unwrap_or("").trim().to_string()
}

fn shape(svg: &str) -> Shape {
    let mut s = Shape::default();
    let mut host: Option<String> = None;
    let (legend_start, legend_end) = match svg.find("<g class=\"legend\"") {
        Some(a) => (a, a + svg[a..].find("\n</g>").unwrap_or(0)),
        None => (usize::MAX, usize::MAX),
    };
    for (at, _) in svg.match_indices("<g class=\"") {
        let tag = &svg[at..at + svg[at..].find('>').unwrap_or(0)];
        if at > legend_start && at < legend_end {
            if tag.contains("class=\"legend-item\"") {
                let text = &svg[at..];
                let t0 = text.find("<text").and_then(|i| text[i..].find('>').map(|j| i + j + 1)).unwrap_or(0);
                let t1 = text[t0..].find("</text>").map(|j| t0 + j).unwrap_or(t0);
                s.legend.push(text[t0..t1].to_string());
            }
            continue;
        }
        if let Some(h) = attr(tag, "data-host") {
            host = Some(h.to_string());
            s.hosts.insert(h.to_string(), (classes(tag, "host"), vec![]));
        } else if let Some(i) = attr(tag, "data-instance") {
            let h = host.clone().expect("instances are inside a host");
            s.hosts.get_mut(&h).expect("host").1.push((i.to_string(), classes(tag, "instance")));
        } else if let Some(c) = attr(tag, "data-channel") {
            let body = &svg[at..at + svg[at..].find("</g>").expect("channel group ends")];
            let title = body.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or("");
            s.channels.insert(
                c.to_string(),
                (classes(tag, "channel"), title.to_string(), body.contains("<path d=\"M"), body.contains("<text")),
            );
        } else if tag.contains("class=\"frame\"") {
            let text = &svg[at..];
            let t0 = text.find("<text").and_then(|i| text[i..].find('>').map(|j| i + j + 1)).unwrap_or(0);
            let t1 = text[t0..].find("</text>").map(|j| t0 + j).unwrap_or(t0);
            s.frames.push(text[t0..t1].to_string());
        }
    }
    for (at, _) in svg.match_indices("<text class=\"caption\"") {
        let t0 = at + svg[at..].find('>').unwrap_or(0) + 1;
        let t1 = t0 + svg[t0..].find("</text>").unwrap_or(0);
        s.captions.push(svg[t0..t1].to_string());
    }
    s
}

/// A stable text of the shape, for snapshots.
fn summary(s: &Shape) -> String {
    let mut o = String::new();
    for (h, (class, insts)) in &s.hosts {
        o.push_str(&format!("host {h} [{class}]\n"));
        for (i, c) in insts {
            o.push_str(&format!("  instance {i} [{c}]\n"));
        }
    }
    for (id, (class, title, path, label)) in &s.channels {
        o.push_str(&format!("channel {id} [{class}] {title} path={path} label={label}\n"));
    }
    for f in &s.frames {
        o.push_str(&format!("frame {f}\n"));
    }
    for c in &s.captions {
        o.push_str(&format!("caption {c}\n"));
    }
    for l in &s.legend {
        o.push_str(&format!("legend {l}\n"));
    }
    o
}

fn instances_with(s: &Shape, class: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .hosts
        .values()
        .flat_map(|(_, i)| i.iter())
        .filter(|(_, c)| c.split(' ').any(|c| c == class))
        .map(|(i, _)| i.clone())
        .collect();
    v.sort();
    v
}

/// The first milestone: `solve --format svg` draws every host with its
/// instances and every channel, well-formed and deterministic.
#[test]
fn solve_svg_shows_every_host_instance_and_channel() {
    let d = dir("solve");
    let o = deladas(&["solve", "examples/p2p.deladas", "--format", "svg"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let svg = stdout(&o);
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert_well_formed(&svg, &d, "p2p.svg");
    // The same configuration as XML: the picture shows all of it.
    let x = deladas(&["solve", "examples/p2p.deladas"]);
    assert_eq!(code(&x), 0, "{}", show(&x));
    let ddd = deladas::ddd::from_xml(&stdout(&x)).expect("the DDD reads");
    let s = shape(&svg);
    assert_eq!(s.hosts.len(), ddd.hosts.len());
    for i in &ddd.instances {
        let on = &s.hosts.get(&i.host).expect("host drawn").1;
        assert!(on.iter().any(|(id, _)| id == &i.id), "{} not drawn on {}", i.id, i.host);
    }
    assert_eq!(s.channels.len(), ddd.channels.len());
    for c in &ddd.channels {
        let (_, title, path, label) = s.channels.get(&c.id).expect("channel drawn");
        assert!(*path && *label, "channel {} has no path or label", c.id);
        assert!(title.contains(&c.from.to_string()) && title.contains(&c.to.to_string()), "{title}");
    }
    insta::assert_snapshot!("solve_p2p", summary(&s));
    // Deterministic: byte-identical on a second run.
    let again = deladas(&["solve", "examples/p2p.deladas", "--format", "svg"]);
    assert_eq!(stdout(&again), svg);
    // `-o` writes the same picture.
    let out = d.join("out.svg");
    let w = deladas(&["solve", "examples/p2p.deladas", "--format", "svg", "-o", out.to_str().expect("utf-8")]);
    assert_eq!(code(&w), 0, "{}", show(&w));
    assert_eq!(std::fs::read_to_string(&out).expect("written"), svg);
}

/// `resolve --plan-format svg`: old and new side by side; every stopped,
/// moved, started and restarted instance and every removed and added
/// channel of the JSON plan is marked. The peers' 8-host P2P deployment
/// loses a router host: a router moves, a client stops, channels change.
#[test]
fn resolve_svg_marks_the_plan() {
    let d = dir("resolve");
    let goal = d.join("p2p.deladas");
    let old = d.join("old.ddd.xml");
    std::fs::write(&goal, deladas::bench_goals::p2p(8, deladas::bench_goals::Variant::Satisfy)).expect("goal");
    std::fs::write(&old, deladas::bench_goals::p2p_canonical_ddd(8).expect("canonical")).expect("ddd");
    let new = d.join("new.ddd.xml");
    let (goal_s, old_s, new_s) =
        (goal.to_str().expect("utf-8"), old.to_str().expect("utf-8"), new.to_str().expect("utf-8"));
    let args = ["resolve", goal_s, "--from", old_s, "--fail-host", "h1", "-o", new_s];
    let o = deladas(&[&args[..], &["--plan-format", "svg"]].concat());
    assert_eq!(code(&o), 0, "{}", show(&o));
    let svg = stdout(&o);
    assert_well_formed(&svg, &d, "plan.svg");
    // cli.md's spelling, `--format svg`, is the same option.
    let f = deladas(&[&args[..], &["--format", "svg"]].concat());
    assert_eq!(code(&f), 0, "{}", show(&f));
    assert_eq!(stdout(&f), svg, "--format svg and --plan-format svg draw the same");
    let j = deladas(&[&args[..], &["--plan-format", "json"]].concat());
    assert_eq!(code(&j), 0, "{}", show(&j));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&j)).expect("plan json");
    // Two panels: the old deployment's hosts include the failed one.
    let panels: Vec<&str> = svg.split("<g class=\"panel\"").skip(1).collect();
    assert_eq!(panels.len(), 2, "old and new side by side");
    let (old, new) = (shape(panels[0]), shape(panels[1]));
    assert_eq!(old.hosts.get("h1").map(|h| h.0.as_str()), Some("failed"));
    assert!(!new.hosts.contains_key("h1"), "the failed host is not in the new deployment");
    let ids = |key: &str, field: &str| -> Vec<String> {
        let mut v: Vec<String> = plan["instances"][key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        let x = if field.is_empty() { x } else { &x[field] };
                        x["id"].as_str().or(x.as_str()).map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(instances_with(&old, "stopped"), ids("stopped", ""), "{:#}", plan["instances"]);
    assert_eq!(instances_with(&new, "started"), ids("started", ""), "{:#}", plan["instances"]);
    assert_eq!(instances_with(&old, "moved"), ids("moved", "from"), "{:#}", plan["instances"]);
    assert_eq!(instances_with(&new, "moved"), ids("moved", "to"), "{:#}", plan["instances"]);
    assert_eq!(instances_with(&new, "restarted"), ids("restarted", ""), "{:#}", plan["instances"]);
    let count = |s: &Shape, class: &str| s.channels.values().filter(|c| c.0 == class).count() as u64;
    let c = &plan["counts"];
    assert_eq!(count(&old, "removed"), c["channels_removed"].as_u64().expect("count"), "{c:#}");
    assert_eq!(count(&new, "added"), c["channels_added"].as_u64().expect("count"), "{c:#}");
    assert!(count(&old, "removed") > 0 && !instances_with(&old, "moved").is_empty(), "the failure changes something");
    let all = shape(&svg);
    assert!(all.legend.iter().any(|l| l == "channel added"), "{:?}", all.legend);
    insta::assert_snapshot!("resolve_p2p8_fail_h1", format!("{}---\n{}", summary(&old), summary(&new)));
}

/// `roles --format svg`: G_low, the shadows on their hosts and G_act, the
/// boundary channels highlighted, as in the role document.
#[test]
fn roles_svg_shows_the_groups_and_the_boundary() {
    let d = dir("roles");
    let args =
        ["roles", "tests/roles/cases/p2p-routers.deladas", "--deployment", "tests/roles/deployments/p2p.ddd.xml"];
    let o = deladas(&[&args[..], &["--format", "svg"]].concat());
    assert_eq!(code(&o), 0, "{}", show(&o));
    let svg = stdout(&o);
    assert_well_formed(&svg, &d, "roles.svg");
    let j = deladas(&[&args[..], &["--format", "json"]].concat());
    let doc = deladas::mdcd::RoleDocument::from_json(&stdout(&j)).expect("role document");
    let s = shape(&svg);
    let mut low: Vec<String> = doc.groups.low.iter().map(|m| m.instance.clone()).collect();
    low.sort();
    assert_eq!(instances_with(&s, "low"), low);
    for sh in &doc.groups.shadow {
        let on = &s.hosts.get(&sh.host).expect("shadow's host drawn").1;
        assert!(on.iter().any(|(i, c)| i == &sh.instance && c == "shadow"), "{} not on {}", sh.instance, sh.host);
    }
    let mut boundary: Vec<&str> = doc.boundary.iter().map(|b| b.channel.as_str()).collect();
    boundary.sort();
    let mut drawn: Vec<&str> = s.channels.iter().filter(|c| c.1 .0 == "boundary").map(|c| c.0.as_str()).collect();
    drawn.sort();
    assert_eq!(drawn, boundary);
    assert!(!boundary.is_empty());
    insta::assert_snapshot!("roles_p2p_routers", summary(&s));
}

/// `verify --format svg` on a deployment that breaks the goal: exit 1, the
/// picture marks the instances the violations name and lists them.
#[test]
fn verify_svg_marks_violations() {
    let d = dir("verify");
    // The example deployment without its last channel.
    let text = std::fs::read_to_string(common::manifest().join("examples/p2p.ddd.xml")).expect("example");
    let start = text.rfind("    <channel ").expect("a channel");
    let end = start + text[start..].find("</channel>\n").expect("end") + "</channel>\n".len();
    let broken = format!("{}{}", &text[..start], &text[end..]);
    let f = d.join("broken.ddd.xml");
    std::fs::write(&f, broken).expect("write");
    let o = deladas(&["verify", "examples/p2p.deladas", f.to_str().expect("utf-8"), "--format", "svg"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let svg = stdout(&o);
    assert_well_formed(&svg, &d, "verify.svg");
    let s = shape(&svg);
    assert!(!instances_with(&s, "violated").is_empty(), "{}", summary(&s));
    assert!(s.captions.iter().all(|c| c.starts_with("violated: ")) && !s.captions.is_empty(), "{:?}", s.captions);
    // The unbroken deployment verifies, and the picture says so.
    let ok = deladas(&["verify", "examples/p2p.deladas", "examples/p2p.ddd.xml", "--format", "svg"]);
    assert_eq!(code(&ok), 0, "{}", show(&ok));
    let s = shape(&stdout(&ok));
    assert!(instances_with(&s, "violated").is_empty());
    assert_eq!(s.captions, vec!["verified: the deployment satisfies the goal".to_string()]);
}

fn host(id: &str, zone: &str) -> Host {
    Host { id: id.into(), attrs: vec![Attr { name: "zone".into(), value: AttrValue::Str(zone.into()) }] }
}

fn inst(c: &str, h: &str, k: Option<u32>) -> Instance {
    Instance { id: deladas::ddd::instance_id(c, h, k), component: c.into(), host: h.into() }
}

fn chan(id: &str, a: &str, pa: &str, b: &str, pb: &str) -> Channel {
    Channel {
        id: id.into(),
        directed: true,
        from: End { instance: a.into(), port: pa.into(), index: None },
        to: End { instance: b.into(), port: pb.into(), index: Some(0) },
    }
}

/// Text from the input is escaped (ids with `@` and `#`, attribute values
/// with markup); `--group-by` frames each group once.
#[test]
fn text_is_escaped_and_groups_are_framed() {
    let d = dir("escape");
    let dep = Deployment {
        goal: Some("a<b>&\"c\".deladas".into()),
        generator: "test".into(),
        hosts: vec![host("h1", "<z&\"1\">"), host("h2", "<z&\"1\">"), host("h3", "eu']]>")],
        instances: vec![
            inst("Router", "h1", Some(1)),
            inst("Router", "h1", Some(2)),
            inst("C", "h2", None),
            inst("C", "h3", None),
        ],
        channels: vec![
            chan("c1", "C@h2", "out", "Router@h1#1", "cin"),
            chan("c2", "C@h3", "out", "Router@h1#2", "cin"),
            chan("c3", "Router@h1#1", "x", "Router@h1#2", "cin"),
        ],
        ..Deployment::default()
    };
    let opts = deladas::picture::Options { group_by: Some("zone".into()) };
    let svg = deladas::picture::deployment_svg(&dep, &opts);
    assert_well_formed(&svg, &d, "escaped.svg");
    assert!(svg.contains("a&lt;b&gt;&amp;&quot;c&quot;.deladas"));
    assert!(!svg.contains("<z&"));
    let s = shape(&svg);
    assert_eq!(s.frames, vec!["zone = &lt;z&amp;&quot;1&quot;&gt;".to_string(), "zone = eu&#39;]]&gt;".to_string()]);
    assert_eq!(s.hosts["h1"].1.iter().map(|i| i.0.as_str()).collect::<Vec<_>>(), vec!["Router@h1#1", "Router@h1#2"]);
    assert!(s.channels.values().all(|c| c.2 && c.3), "{}", summary(&s));
    assert_eq!(deladas::picture::deployment_svg(&dep, &opts), svg, "deterministic");
    insta::assert_snapshot!("escaped_grouped", summary(&s));
}

/// 200 hosts: every host and channel drawn, well-formed, deterministic; with
/// `--group-by zone`, one frame per zone.
#[test]
fn two_hundred_hosts() {
    let d = dir("n200");
    let goal = d.join("p2p.deladas");
    let ddd = d.join("p2p.ddd.xml");
    std::fs::write(&goal, deladas::bench_goals::p2p(200, deladas::bench_goals::Variant::Satisfy)).expect("goal");
    let text = deladas::bench_goals::p2p_canonical_ddd(200).expect("canonical");
    std::fs::write(&ddd, &text).expect("ddd");
    let o = deladas(&["verify", goal.to_str().expect("utf-8"), ddd.to_str().expect("utf-8"), "--format", "svg"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let svg = stdout(&o);
    assert_well_formed(&svg, &d, "n200.svg");
    let dep = deladas::ddd::from_xml(&text).expect("reads");
    let s = shape(&svg);
    assert_eq!(s.hosts.len(), 200);
    assert_eq!(s.channels.len(), dep.channels.len());
    assert!(s.channels.values().all(|c| c.2), "every channel drawn");
    // Grouped into 8 zones by hand: 8 frames, still every host.
    let mut zoned = dep.clone();
    for (k, h) in zoned.hosts.iter_mut().enumerate() {
        h.attrs.push(Attr { name: "zone".into(), value: AttrValue::Str(format!("z{}", k % 8)) });
    }
    let opts = deladas::picture::Options { group_by: Some("zone".into()) };
    let svg = deladas::picture::deployment_svg(&zoned, &opts);
    assert_well_formed(&svg, &d, "n200-zones.svg");
    let s = shape(&svg);
    assert_eq!(s.frames.len(), 8);
    assert_eq!(s.hosts.len(), 200);
    assert_eq!(deladas::picture::deployment_svg(&zoned, &opts), svg, "deterministic");
}

/// `explain --format html`: a self-contained page with the conflicting
/// clauses highlighted in the goal's source, the counting argument and
/// the repairs; well-formed, no scripts, no external resources.
#[test]
fn explain_html_page() {
    let d = dir("explain");
    let o = deladas(&["explain", "tests/explain/pigeonhole.deladas", "--format", "html"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let html = stdout(&o);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert_well_formed(&html, &d, "explain.html");
    let lower = html.to_lowercase();
    for bad in ["<script", " src=", " href=", "http://", "https://", "@import", "url("] {
        assert!(!lower.contains(bad), "the page has `{bad}`");
    }
    // As many highlighted clauses as the text form labels.
    let text = deladas(&["explain", "tests/explain/pigeonhole.deladas"]);
    let labels = common::stderr(&text).matches("this clause conflicts").count();
    assert!(labels >= 2);
    let marks = html.matches("this clause conflicts").count();
    assert_eq!(marks, labels, "{html}");
    assert!(html.contains("<mark class=\"primary\">"), "{html}");
    assert!(html.contains("#Router + #Client = 20"), "the counting argument: {html}");
    assert!(html.contains("<h3>Why</h3>"));
    // A satisfiable goal: a page that says so, exit 0.
    let ok = deladas(&["explain", "examples/p2p.deladas", "--format", "html"]);
    assert_eq!(code(&ok), 0, "{}", show(&ok));
    assert!(stdout(&ok).contains("satisfiable"));
    assert_well_formed(&stdout(&ok), &d, "sat.html");
}

/// `--plan-format svg` does not combine with `--to`: a usage error.
#[test]
fn plan_svg_with_to_is_refused() {
    let d = dir("to");
    let o = deladas(&[
        "resolve",
        "examples/p2p.deladas",
        "--from",
        "examples/p2p.ddd.xml",
        "--fail-host",
        "h6",
        "-o",
        d.to_str().expect("utf-8"),
        "--to",
        "kubernetes",
        "--plan-format",
        "svg",
    ]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(common::stderr(&o).contains("`--plan-format svg` cannot be combined with `--to`"), "{}", show(&o));
}
