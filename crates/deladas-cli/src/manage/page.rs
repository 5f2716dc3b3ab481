//! The live page of `deladas manage` (`GET /`): the current deployment as
//! the picture of `deladas solve --format svg` (src/picture), failed and
//! silent hosts and restarting or crash-looping instances marked, the event
//! timeline, the last plan and the pending dry run (`POST /plan`) as a diff
//! like `nomad job plan`, and, when no re-solve exists, the explanation with
//! the goal's source lines. docs/manager.md, "The live page".
//!
//! One static page (`page/index.html`, `page/app.js`, `page/app.css`, in the
//! binary through `include_str!`; no CDN, no build step). The page itself is
//! public and holds no data; the data comes from `GET /page/view` (one JSON
//! view) and `GET /page/stream` (server-sent events: `view` when the view
//! changes, `event` for each event of the log), which need the token like
//! every other endpoint. The page reads the token from the URL fragment
//! (`/#token=…`, never sent to the server), removes it from the address bar
//! and keeps it in the tab's `sessionStorage`, or asks for it.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use deladas::ddd::{Deployment, Host, Instance};
use deladas::enact::protocol::{InstanceState, ObservedInstance};
use deladas::picture::{LegendKind, Marks, Options, Picture};
use deladas::plan::{Plan, PlanScenario};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::{lock, now_ms, Mgr, Shared};

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");

/// The page's Content-Security-Policy: its own script and stylesheet only
/// (inline styles for the SVG's `<style>`), requests to this origin only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                       img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
                       frame-ancestors 'none'";

/// Events the stream sends from the log when a page connects.
const TIMELINE: u64 = 200;
/// How often a stream checks whether the view changed.
const VIEW_TICK: Duration = Duration::from_millis(250);

/// Paths served without the token: the static page, which holds no data.
pub fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/page/app.js" | "/page/app.css")
}

/// The page's routes (merged into the manager's router, behind its auth layer).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(index))
        .route("/page/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/page/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/page/view", get(view))
        .route("/page/stream", get(stream))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([("content-type", content_type), ("x-content-type-options", "nosniff"), ("cache-control", "no-cache")], body)
        .into_response()
}

async fn index() -> Response {
    (
        [
            ("content-type", "text/html; charset=utf-8"),
            ("content-security-policy", CSP),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("cache-control", "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

/// What the page remembers beside the manager's state: the last plan the
/// manager made and the last dry run, as the library's migration plans.
#[derive(Default)]
pub struct PageState {
    last: Option<Made>,
    pending: Option<Made>,
    /// The explanation of the last `no-configuration` event, for the
    /// failed hosts it was about (`impossible_for`).
    explanation: Option<(BTreeSet<String>, Value)>,
    /// Bumps whenever a plan is recorded (part of the view key).
    serial: u64,
}

#[derive(Clone)]
struct Made {
    /// The generation the plan was made against.
    against: u64,
    reason: String,
    plan: Plan,
    time_ms: u64,
}

fn library_plan(old: Option<&Deployment>, new: &Deployment, failed: &BTreeSet<String>) -> Plan {
    let empty = Deployment::default();
    let old = old.unwrap_or(&empty);
    let scenario = PlanScenario {
        failed_hosts: old.hosts.iter().filter(|h| failed.contains(&h.id)).map(|h| h.id.clone()).collect(),
        added_hosts: if old.hosts.is_empty() {
            vec![]
        } else {
            new.hosts.iter().filter(|h| !old.hosts.iter().any(|o| o.id == h.id)).map(|h| h.id.clone()).collect()
        },
        ..PlanScenario::default()
    };
    Plan::diff(old, new, &scenario)
}

/// Hook: the manager makes `new` the desired deployment (before the
/// generation is bumped). A pending dry run is then stale and dropped.
pub fn on_enact(m: &mut Mgr, old: Option<&Deployment>, new: &Deployment, reason: &str) {
    let plan = library_plan(old, new, &m.d.failed_hosts);
    m.page.last = Some(Made { against: m.d.generation, reason: reason.to_string(), plan, time_ms: now_ms() as u64 });
    m.page.pending = None;
    m.page.serial += 1;
}

/// Hook: `POST /plan` planned `target` against the current generation.
pub fn on_dry_run(m: &mut Mgr, target: &Deployment) {
    let plan = library_plan(m.new_d.as_ref(), target, &m.d.failed_hosts);
    let reason = "a dry run through POST /plan (not enacted)".to_string();
    m.page.pending = Some(Made { against: m.d.generation, reason, plan, time_ms: now_ms() as u64 });
    m.page.serial += 1;
}

/// Everything the view is drawn from, copied under the lock.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub goal_file: String,
    pub goal_text: Arc<str>,
    pub generation: u64,
    pub step: u32,
    pub frozen: Option<String>,
    pub plan_reason: Option<String>,
    pub plan_in_progress: bool,
    /// Declared hosts in order: (name, `alive` / `silent` / `failed`).
    pub hosts: Vec<(String, &'static str)>,
    pub desired: Option<Deployment>,
    pub previous: Option<Deployment>,
    /// Host → what its agent reports.
    pub observed: BTreeMap<String, Vec<ObservedInstance>>,
    last: Option<Made>,
    pending: Option<Made>,
    pub explanation: Option<Value>,
}

fn host_state(m: &Mgr, h: &str) -> &'static str {
    if m.d.failed_hosts.contains(h) {
        "failed"
    } else if m.alive(h) {
        "alive"
    } else {
        "silent"
    }
}

/// A cheap summary of what the view shows: the view is drawn again only
/// when it changes.
fn key(m: &Mgr) -> String {
    let mut k = format!(
        "{} {} {:?} {} {} {:?}|",
        m.d.generation,
        m.d.step,
        m.d.frozen,
        m.d.plan.is_some(),
        m.page.serial,
        m.d.impossible_for
    );
    for h in m.goal.host_names() {
        k.push_str(&h);
        k.push_str(host_state(m, &h));
        if let Some(hb) = m.observed.get(&h) {
            for o in &hb.instances {
                k.push_str(&format!(" {}:{:?}:{}:{}", o.id, o.state, o.restarts, o.generation));
            }
        }
        k.push('|');
    }
    k
}

fn snapshot(m: &mut Mgr) -> Snapshot {
    let explanation = match &m.d.impossible_for {
        None => None,
        Some(failed) => {
            if m.page.explanation.as_ref().is_none_or(|(f, _)| f != failed) {
                let from = m.d.next_event.saturating_sub(super::store::MAX_EVENTS);
                let found = m
                    .store
                    .events(from, super::store::MAX_EVENTS as usize)
                    .unwrap_or_default()
                    .into_iter()
                    .rev()
                    .find(|e| e["kind"] == "no-configuration")
                    .map(|e| e["data"].clone());
                // Remembered also when the event is gone (not looked for again).
                m.page.explanation = Some((failed.clone(), found.unwrap_or(Value::Null)));
            }
            m.page.explanation.as_ref().map(|(_, e)| e.clone()).filter(|e| !e.is_null())
        }
    };
    Snapshot {
        goal_file: m.goal.path.display().to_string(),
        goal_text: Arc::from(m.goal.text.as_str()),
        generation: m.d.generation,
        step: m.d.step,
        frozen: m.d.frozen.clone(),
        plan_reason: m.d.plan_reason.clone(),
        plan_in_progress: m.d.plan.is_some(),
        hosts: m.goal.host_names().into_iter().map(|h| (h.clone(), host_state(m, &h))).collect(),
        desired: m.new_d.clone(),
        previous: if m.d.plan.is_some() { m.old_d.clone() } else { None },
        observed: m.observed.iter().map(|(h, hb)| (h.clone(), hb.instances.clone())).collect(),
        last: m.page.last.clone(),
        pending: m.page.pending.clone(),
        explanation,
    }
}

/// The deployment as drawn: every declared host (those the deployment no
/// longer uses, e.g. failed ones, empty), the desired instances, and, while
/// a plan runs, the old instances it stops.
fn picture(s: &Snapshot) -> Picture {
    let desired = s.desired.clone().unwrap_or_default();
    let mut d = desired.clone();
    d.hosts = s
        .hosts
        .iter()
        .map(|(h, _)| {
            desired
                .hosts
                .iter()
                .chain(s.previous.iter().flat_map(|p| p.hosts.iter()))
                .find(|x| &x.id == h)
                .cloned()
                .unwrap_or_else(|| Host { id: h.clone(), attrs: vec![] })
        })
        .collect();
    let mut m = Marks {
        title: match (&s.desired, s.plan_in_progress) {
            (None, _) => "no deployment yet: waiting for every host's agent".to_string(),
            (Some(_), true) => format!("generation {} (plan step {} in progress)", s.generation, s.step),
            (Some(_), false) => format!("generation {}", s.generation),
        },
        ..Marks::default()
    };
    for (h, state) in &s.hosts {
        if *state != "alive" {
            m.hosts.insert(h.clone(), state.to_string());
        }
    }
    let started: BTreeSet<&str> = match (&s.last, s.plan_in_progress) {
        (Some(l), true) => l.plan.started.iter().map(|i| i.id.as_str()).collect(),
        _ => BTreeSet::new(),
    };
    for i in &d.instances {
        let seen = s.observed.get(&i.host).and_then(|os| os.iter().find(|o| o.id == i.id));
        let class = match seen.map(|o| o.state) {
            Some(InstanceState::Failed) => Some("failed"),
            Some(InstanceState::BackingOff) => Some("restarting"),
            _ if started.contains(i.id.as_str()) => Some("started"),
            _ => None,
        };
        if let Some(c) = class {
            m.instances.insert(i.id.clone(), c.to_string());
        }
        match seen {
            Some(o) if o.state == InstanceState::Failed => {
                m.notes.insert(i.id.clone(), format!("crash loop ({} restarts)", o.restarts));
            }
            Some(o) if o.restarts > 0 => {
                m.notes.insert(i.id.clone(), format!("↻ {}", o.restarts));
            }
            None if s.desired.is_some() && !started.contains(i.id.as_str()) => {
                m.notes.insert(i.id.clone(), "not reported".to_string());
            }
            _ => {}
        }
    }
    if let Some(p) = &s.previous {
        let ids: BTreeSet<&str> = d.instances.iter().map(|i| i.id.as_str()).collect();
        for i in p.instances.iter().filter(|i| !ids.contains(i.id.as_str())) {
            let inst = Instance { id: i.id.clone(), component: i.component.clone(), host: i.host.clone() };
            m.extra.push((inst, "stopped".to_string()));
        }
    }
    let failed: Vec<&str> = s.hosts.iter().filter(|(_, st)| *st == "failed").map(|(h, _)| h.as_str()).collect();
    if !failed.is_empty() {
        m.captions.push(format!("failed: {}", failed.join(", ")));
    }
    if let Some(f) = &s.frozen {
        m.captions.push(format!("frozen: {f}"));
    }
    let legend = vec![
        (LegendKind::Host, "failed".to_string(), "failed host".to_string()),
        (LegendKind::Host, "silent".to_string(), "silent host (no heartbeat)".to_string()),
        (LegendKind::Instance, "restarting".to_string(), "restarting in place".to_string()),
        (LegendKind::Instance, "failed".to_string(), "crash loop (given up)".to_string()),
        (LegendKind::Instance, "started".to_string(), "being started".to_string()),
        (LegendKind::Instance, "stopped".to_string(), "being stopped".to_string()),
    ];
    let title = format!("deployment of {}", s.goal_file);
    Picture { title, panels: vec![(d, m)], legend }
}

/// A plan as diff lines like `nomad job plan`: `+` start/wire, `-`
/// stop/unwire, `~` move/restart, ` ` keep; summary lines with op `#`.
/// The text is the library's (`Plan::to_text`, what `deladas resolve` prints).
pub fn diff_lines(plan: &Plan) -> Vec<Value> {
    plan.to_text()
        .lines()
        .map(|line| {
            let verb = line.split_whitespace().next().unwrap_or("");
            let op = if !line.starts_with("  ") {
                "#"
            } else {
                match verb {
                    "start" | "wire" => "+",
                    "stop" | "unwire" => "-",
                    "move" | "restart" => "~",
                    _ => " ",
                }
            };
            json!({"op": op, "text": line.trim_start()})
        })
        .collect()
}

/// The goal's source lines around the explanation's conflicting clauses:
/// each clause's lines marked, two lines of context, gaps as `null`.
pub fn source_excerpt(text: &str, explanation: &Value) -> Vec<Value> {
    let lines: Vec<&str> = text.lines().collect();
    let mut hit: BTreeSet<usize> = BTreeSet::new();
    for c in explanation["conflict"].as_array().into_iter().flatten() {
        let Some(first) = c["line"].as_u64() else { continue };
        let n = c["clause"].as_str().map(|t| t.lines().count().max(1)).unwrap_or(1);
        for l in first as usize..first as usize + n {
            hit.insert(l);
        }
    }
    if hit.is_empty() {
        return vec![];
    }
    let show: BTreeSet<usize> =
        hit.iter().flat_map(|&l| l.saturating_sub(2).max(1)..=(l + 2).min(lines.len())).collect();
    let mut out = vec![];
    let mut prev = 0;
    for &l in &show {
        if prev != 0 && l > prev + 1 {
            out.push(Value::Null);
        }
        out.push(json!({"line": l, "text": lines.get(l - 1).copied().unwrap_or(""), "hit": hit.contains(&l)}));
        prev = l;
    }
    out
}

fn made_json(m: &Made, s: &Snapshot, pending: bool) -> Value {
    let status = if pending {
        if m.against == s.generation {
            "pending: enact it with `deladas enact` (or POST /enact with this generation)".to_string()
        } else {
            format!("stale: made against generation {}, the manager is at {}", m.against, s.generation)
        }
    } else if s.plan_in_progress && m.against + 1 == s.generation {
        format!("in progress: step {} of 2", s.step + 1)
    } else {
        "done".to_string()
    };
    json!({"generation": m.against, "reason": m.reason, "time_ms": m.time_ms, "status": status,
           "lines": diff_lines(&m.plan)})
}

/// The view the page shows (`GET /page/view`, the stream's `view` event).
pub fn render(s: &Snapshot) -> Value {
    let svg = picture(s).to_svg(&Options::default());
    let svg = svg.split_once("?>\n").map_or(svg.as_str(), |(_, rest)| rest).to_string();
    let explanation = s.explanation.as_ref().map(|e| {
        let ex = if e["explanation"].is_null() { e } else { &e["explanation"] };
        json!({"message": ex["message"], "failed_hosts": e["failed_hosts"], "action": e["action"],
               "hosts_needed": ex["hosts_needed"], "resources": ex["resources"], "repairs": ex["repairs"],
               "diagnostics": if ex.is_array() { ex.clone() } else { Value::Null },
               "file": s.goal_file, "source": source_excerpt(&s.goal_text, ex)})
    });
    json!({
        "goal": s.goal_file,
        "generation": s.generation,
        "step": s.step,
        "frozen": s.frozen,
        "plan_in_progress": s.plan_in_progress,
        "plan_reason": s.plan_reason,
        "hosts": s.hosts.iter().map(|(h, st)| {
            let inst = s.observed.get(h).map(Vec::len).unwrap_or(0);
            json!({"host": h, "state": st, "instances": inst})
        }).collect::<Vec<_>>(),
        "svg": svg,
        "last_plan": s.last.as_ref().map(|m| made_json(m, s, false)),
        "pending_plan": s.pending.as_ref().map(|m| made_json(m, s, true)),
        "explanation": explanation,
    })
}

async fn render_off_thread(s: Snapshot) -> Value {
    tokio::task::spawn_blocking(move || render(&s)).await.unwrap_or(Value::Null)
}

async fn view(State(s): State<Shared>) -> Json<Value> {
    let snap = snapshot(&mut lock(&s));
    Json(render_off_thread(snap).await)
}

/// `GET /page/stream`: `view` now and whenever it changes, `event` for the
/// last events of the log and every new one.
async fn stream(State(s): State<Shared>) -> Response {
    let (mut rx, stored) = {
        let m = lock(&s);
        let from = m.d.next_event.saturating_sub(TIMELINE);
        (m.tx.subscribe(), m.store.events(from, TIMELINE as usize).unwrap_or_default())
    };
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let send_event = |ev: &Value| Ok(Event::default().event("event").data(ev.to_string()));
        let mut last_seq = None;
        let mut last_key = String::new();
        let mut tick = tokio::time::interval(VIEW_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The view first, so the picture shows before the timeline fills.
        let mut pending_events = stored;
        loop {
            let changed = {
                let mut m = lock(&s);
                let k = key(&m);
                (k != last_key).then(|| (k, snapshot(&mut m)))
            };
            if let Some((k, snap)) = changed {
                let v = render_off_thread(snap).await;
                if tx.send(Ok(Event::default().event("view").data(v.to_string()))).await.is_err() {
                    return;
                }
                last_key = k;
            }
            for ev in pending_events.drain(..) {
                let seq = ev["seq"].as_u64();
                if last_seq.is_some_and(|l| seq.is_none_or(|s| s <= l)) {
                    continue;
                }
                last_seq = seq.or(last_seq);
                if tx.send(send_event(&ev)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => pending_events.push(ev),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {}
                _ = tx.closed() => return,
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(out))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Checks that `text` is well-formed XML (elements nested and closed,
    /// attributes quoted and not repeated, `&` only in entities); the
    /// element names in document order. A small reader, so that the test
    /// needs no XML crate here (tests/architecture.rs confines quick-xml
    /// to src/ddd/).
    fn elements(text: &str) -> Vec<String> {
        fn entities_ok(t: &str) -> bool {
            t.split('&').skip(1).all(|after| {
                let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '#').collect();
                !name.is_empty() && after[name.len()..].starts_with(';')
            })
        }
        let mut stack: Vec<String> = vec![];
        let mut names = vec![];
        let mut rest = text;
        while let Some(p) = rest.find('<') {
            assert!(entities_ok(&rest[..p]), "a bare & in text: {}", &rest[..p]);
            rest = &rest[p..];
            for (open, close) in [("<!--", "-->"), ("<?", "?>"), ("<!DOCTYPE", ">")] {
                if rest.starts_with(open) {
                    let e = rest.find(close).unwrap_or_else(|| panic!("{open} is closed"));
                    rest = &rest[e + close.len()..];
                }
            }
            if !rest.starts_with('<') || rest.starts_with("<!") || rest.starts_with("<?") {
                continue;
            }
            let mut quote = None;
            let end = rest
                .char_indices()
                .find(|&(_, c)| match (quote, c) {
                    (None, '"' | '\'') => {
                        quote = Some(c);
                        false
                    }
                    (Some(q), c) if c == q => {
                        quote = None;
                        false
                    }
                    (None, '>') => true,
                    _ => false,
                })
                .map(|(i, _)| i)
                .unwrap_or_else(|| panic!("a tag is not closed: {}", &rest[..rest.len().min(80)]));
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.trim()), "</{name}> closes the open element");
                continue;
            }
            let empty = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
            assert!(!name.is_empty() && !name.contains(['<', '"', '=']), "an element name: <{tag}>");
            // Attributes: name="value" or name='value', each once.
            let mut attrs = tag[name.len()..].trim();
            let mut seen = BTreeSet::new();
            while !attrs.is_empty() {
                let (a, after) = attrs.split_once('=').unwrap_or_else(|| panic!("an attribute has a value: <{tag}>"));
                assert!(seen.insert(a.trim().to_string()), "attribute {a} repeated in <{tag}>");
                let after = after.trim_start();
                let q = after.chars().next().filter(|c| *c == '"' || *c == '\'');
                let q = q.unwrap_or_else(|| panic!("attribute {a} is quoted in <{tag}>"));
                let close = after[1..].find(q).unwrap_or_else(|| panic!("attribute {a} ends in <{tag}>"));
                assert!(entities_ok(&after[1..1 + close]) && !after[1..1 + close].contains('<'), "value of {a}");
                attrs = after[close + 2..].trim_start();
            }
            names.push(name.clone());
            if !empty {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
        names
    }

    fn external_urls(text: &str) -> Vec<String> {
        let mut found = vec![];
        for scheme in ["http://", "https://", "//"] {
            let mut at = 0;
            while let Some(p) = text[at..].find(scheme) {
                let start = at + p;
                let end = text[start..]
                    .find(|c: char| c.is_whitespace() || "\"')<>".contains(c))
                    .map_or(text.len(), |e| start + e);
                let url = &text[start..end];
                // The SVG namespace name is not fetched.
                let allowed = url.starts_with("http://www.w3.org/") || (scheme == "//" && text[..start].ends_with(':'));
                let comment = scheme == "//" && is_comment(text, start);
                if !(allowed || comment) {
                    found.push(url.to_string());
                }
                at = start + scheme.len();
            }
        }
        found
    }

    /// `//` starting a JS line comment.
    fn is_comment(text: &str, at: usize) -> bool {
        let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
        let before = &text[line_start..at];
        before.trim().is_empty() || before.ends_with(' ') || before.ends_with(';')
    }

    #[test]
    fn the_page_is_well_formed_and_loads_nothing_from_elsewhere() {
        let names = elements(INDEX_HTML.trim_start_matches("<!DOCTYPE html>"));
        for want in ["html", "head", "body", "main", "script", "link"] {
            assert!(names.iter().any(|n| n == want), "<{want}> in the page: {names:?}");
        }
        for id in ["picture", "timeline", "last-plan", "pending-plan", "explanation", "hosts", "status", "login"] {
            assert!(INDEX_HTML.contains(&format!("id=\"{id}\"")), "an element #{id}");
        }
        assert!(INDEX_HTML.contains("src=\"/page/app.js\""), "the script is the manager's");
        assert!(INDEX_HTML.contains("href=\"/page/app.css\""), "the stylesheet is the manager's");
        assert!(!INDEX_HTML.contains("<script>"), "no inline script (the CSP forbids it)");
        for (name, text) in [("index.html", INDEX_HTML), ("app.js", APP_JS), ("app.css", APP_CSS)] {
            assert_eq!(external_urls(text), Vec::<String>::new(), "{name} loads nothing from elsewhere");
        }
        assert!(!APP_JS.contains("EventSource"), "the stream is read with fetch, so the token goes in a header");
        assert!(APP_JS.contains("replaceState"), "the token is removed from the address bar");
        assert!(APP_JS.contains("/page/stream"), "the page reads the stream");
        // The JS never parses event data as HTML: only the manager's SVG is.
        assert_eq!(APP_JS.matches("innerHTML").count(), 1, "one innerHTML: the picture");
    }

    #[test]
    fn the_checks_catch_what_they_look_for() {
        for bad in ["<a><b></a>", "<a x=\"1\" x=\"2\"/>", "<a x=1/>", "<a>&</a>", "<a>"] {
            assert!(std::panic::catch_unwind(|| elements(bad)).is_err(), "{bad} is not well-formed");
        }
        assert_eq!(elements("<a><b x=\"&amp;\"/>t &lt; u</a>"), vec!["a", "b"]);
        assert_eq!(external_urls("<script src=\"https://cdn.example/x.js\">"), vec!["https://cdn.example/x.js"]);
        assert_eq!(external_urls("<img src=\"//cdn.example/x.png\">"), vec!["//cdn.example/x.png"]);
        assert!(external_urls("<svg xmlns=\"http://www.w3.org/2000/svg\">\n// a comment").is_empty());
    }

    #[test]
    fn public_paths_are_the_static_page_only() {
        for p in ["/", "/page/app.js", "/page/app.css"] {
            assert!(is_public(p), "{p}");
        }
        for p in ["/page/view", "/page/stream", "/deployment", "/events", "/page", "/page/"] {
            assert!(!is_public(p), "{p}");
        }
    }

    fn deployment() -> Deployment {
        let xml = r#"<deployment xmlns="urn:deladas:ddd:1" format="1" generator="test">
  <hosts><host id="h1"/><host id="h2"/></hosts>
  <components>
    <component name="Router" code="r"><port name="cin"/></component>
    <component name="Client" code="c"><port name="out"/></component>
  </components>
  <instances>
    <instance id="Router@h1" component="Router" host="h1"/>
    <instance id="Client@h2" component="Client" host="h2"/>
  </instances>
  <channels/>
</deployment>"#;
        deladas::ddd::from_xml(xml).expect("a DDD")
    }

    fn snap() -> Snapshot {
        let d = deployment();
        Snapshot {
            goal_file: "goal.deladas".into(),
            goal_text: Arc::from("host h1\nhost h2\nhost h3\nforall x (\n  a = b\n)\nrest\n"),
            generation: 2,
            hosts: vec![("h1".into(), "alive"), ("h2".into(), "alive"), ("h3".into(), "failed")],
            observed: BTreeMap::from([
                (
                    "h1".to_string(),
                    vec![ObservedInstance {
                        id: "Router@h1".into(),
                        state: InstanceState::BackingOff,
                        pid: None,
                        restarts: 2,
                        generation: 2,
                        last_exit: None,
                    }],
                ),
                (
                    "h2".to_string(),
                    vec![ObservedInstance {
                        id: "Client@h2".into(),
                        state: InstanceState::Failed,
                        pid: None,
                        restarts: 5,
                        generation: 2,
                        last_exit: Some("exit 1".into()),
                    }],
                ),
            ]),
            desired: Some(d),
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_view_draws_every_declared_host_and_marks_failures() {
        let v = render(&snap());
        let svg = v["svg"].as_str().expect("svg");
        let names = elements(svg);
        assert_eq!(names.first().map(String::as_str), Some("svg"), "the SVG without the XML declaration");
        assert!(!svg.contains("<?xml"));
        assert_eq!(svg.matches("data-host=").count(), 3, "every declared host, also the failed one: {svg}");
        assert!(svg.contains("class=\"host failed\" data-host=\"h3\""), "{svg}");
        assert!(svg.contains("class=\"instance restarting\" data-instance=\"Router@h1\""), "{svg}");
        assert!(svg.contains("class=\"instance failed\" data-instance=\"Client@h2\""), "{svg}");
        assert!(svg.contains("crash loop (5 restarts)"), "{svg}");
        assert!(svg.contains("failed: h3"), "{svg}");
        assert_eq!(v["hosts"][2]["state"], "failed");
        assert!(v["last_plan"].is_null() && v["pending_plan"].is_null() && v["explanation"].is_null());
    }

    #[test]
    fn plans_are_diffs_like_nomad_job_plan() {
        let old = deployment();
        let mut new = deployment();
        new.instances.retain(|i| i.host != "h2");
        new.instances.push(Instance { id: "Client@h1".into(), component: "Client".into(), host: "h1".into() });
        let plan = library_plan(Some(&old), &new, &BTreeSet::from(["h2".to_string()]));
        let lines = diff_lines(&plan);
        let ops: Vec<(&str, &str)> =
            lines.iter().map(|l| (l["op"].as_str().unwrap_or("?"), l["text"].as_str().unwrap_or(""))).collect();
        assert_eq!(ops[0], ("#", "migration plan (failed: h2)"), "{ops:?}");
        assert!(ops.contains(&(" ", "keep      Router@h1 on h1")), "{ops:?}");
        assert!(ops.iter().any(|(op, t)| *op == "~" && t.starts_with("move")), "{ops:?}");
        assert!(ops.iter().any(|(op, t)| *op == "#" && t.starts_with("instances:")), "{ops:?}");
        let mut s = snap();
        s.last = Some(Made { against: 1, reason: "r".into(), plan: plan.clone(), time_ms: 0 });
        s.plan_in_progress = true;
        s.pending = Some(Made { against: 1, reason: "dry".into(), plan, time_ms: 0 });
        let v = render(&s);
        assert_eq!(v["last_plan"]["status"], "in progress: step 1 of 2");
        assert!(v["pending_plan"]["status"].as_str().is_some_and(|t| t.starts_with("stale")), "{v}");
    }

    #[test]
    fn the_explanation_shows_the_goal_lines_of_the_conflict() {
        let ex = json!({"message": "no configuration exists", "conflict": [{"clause": "forall x (\n  a = b\n)", "line": 4}]});
        let lines = source_excerpt("host h1\nhost h2\nhost h3\nforall x (\n  a = b\n)\nrest\nmore\nend\n", &ex);
        let shown: Vec<(u64, bool)> =
            lines.iter().map(|l| (l["line"].as_u64().unwrap_or(0), l["hit"].as_bool().unwrap_or(false))).collect();
        assert_eq!(shown, vec![(2, false), (3, false), (4, true), (5, true), (6, true), (7, false), (8, false)]);
        let mut s = snap();
        s.explanation = Some(json!({"failed_hosts": ["h3"], "explanation": ex, "action": "nothing is stopped"}));
        let v = render(&s);
        assert_eq!(v["explanation"]["source"][2]["text"], "forall x (");
        assert_eq!(v["explanation"]["action"], "nothing is stopped");
    }
}
