//! The manager's decisions, without IO: loading the goal, solving it,
//! re-solving after host failures (the library's `resolve`: surviving
//! bindings kept, proven), the migration plan between two deployments, and
//! what each host runs at each plan step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use deladas::check::ir::Program;
use deladas::ddd::Deployment;
use deladas::diagnostics::{render, Code, Diagnostic, Sources};
use deladas::enact::protocol::{AssignedInstance, Assignment, Epoch};
use deladas::enact::{wirings, Endpoints, RunSpec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The first TCP port of the instances' endpoints on each host.
pub const PORT_BASE: u16 = 7400;

/// A loaded, checked goal.
pub struct Goal {
    pub path: PathBuf,
    pub text: String,
    pub sha256: String,
    pub sources: Sources,
    pub program: Program,
}

/// An error for the API: an HTTP status and diagnostics as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: u16, code: Code, message: impl Into<String>) -> ApiError {
        let d = Diagnostic::new(code, message);
        ApiError { status, body: diags_json(&[d], &Sources::default()) }
    }
    pub fn diags(status: u16, diags: &[Diagnostic], sources: &Sources) -> ApiError {
        ApiError { status, body: diags_json(diags, sources) }
    }
}

/// Diagnostics as the JSON of cli.md (an array).
pub fn diags_json(diags: &[Diagnostic], sources: &Sources) -> Value {
    serde_json::from_str(&render::to_json(diags, sources)).unwrap_or(Value::Null)
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks goal text; the diagnostics on errors.
pub fn load_goal(path: &Path, text: Option<&str>) -> Result<Goal, ApiError> {
    let text = match text {
        Some(t) => t.to_string(),
        // Bounded, regular files only, as every input (E0011).
        None => deladas::check::load::read_input(path)
            .map_err(|e| ApiError::new(400, e.code(), format!("cannot read `{}`: {e}", path.display())))
            .and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| ApiError::new(400, Code::NotUtf8, format!("`{}` is not UTF-8 text", path.display())))
            })?,
    };
    let loaded = deladas::check::load(path, Some(&text), &deladas::check::RealFs);
    let (sources, checked) = deladas::check::check_loaded(loaded);
    if checked.has_errors() {
        return Err(ApiError::diags(422, &checked.diags, &sources));
    }
    Ok(Goal { path: path.to_path_buf(), sha256: sha256(&text), text, sources, program: checked.program })
}

impl Goal {
    fn info(&self) -> deladas::solve::output::GoalInfo {
        deladas::solve::output::GoalInfo {
            name: self.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            sha256: Some(self.sha256.clone()),
        }
    }

    pub fn host_names(&self) -> Vec<String> {
        self.program.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// Parses a DDD and binds it to this goal by the rules every command that
    /// reads a DDD applies (`eval::deployment_from_text`: structure, the
    /// goal's declarations, its `maxperhost`), each error pointing into the
    /// DDD: 400 when the body is not a DDD, 422 when it is one for another goal.
    fn read_ddd(&self, xml: &str) -> Result<(Deployment, deladas::eval::World), ApiError> {
        let mut sources = self.sources.clone();
        deladas::eval::deployment_from_text(&self.program, &mut sources, "the DDD".to_string(), xml.to_string())
            .map_err(|diags| {
                let status = if diags.iter().any(|d| d.code == Code::MalformedDdd) { 400 } else { 422 };
                ApiError::diags(status, &diags, &sources)
            })
    }

    /// Parses a DDD and checks that it is one for this goal (not that it satisfies it).
    pub fn accept_shape(&self, xml: &str) -> Result<Deployment, ApiError> {
        Ok(self.read_ddd(xml)?.0)
    }

    /// Parses a DDD and checks that it is one for this goal and satisfies it.
    pub fn accept(&self, xml: &str) -> Result<Deployment, ApiError> {
        let (d, world) = self.read_ddd(xml)?;
        let violations = deladas::eval::all_violations(&self.program, &world);
        if !violations.is_empty() {
            let diags: Vec<Diagnostic> = violations.iter().map(|v| v.to_diagnostic()).collect();
            return Err(ApiError::diags(422, &diags, &self.sources));
        }
        for c in &d.components {
            if d.instances.iter().any(|i| i.component == c.name) {
                RunSpec::of(c).map_err(|e| ApiError::new(422, Code::DddMismatch, e.to_string()))?;
            }
        }
        Ok(d)
    }

    /// Solves the goal over the given hosts (all declared when `None`).
    pub fn satisfy(
        &self,
        hosts: Option<&[String]>,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Deployment>, ApiError> {
        let available: Vec<usize> = match hosts {
            None => (0..self.program.hosts.len()).collect(),
            Some(names) => {
                let mut v = vec![];
                for n in names {
                    v.push(self.program.host(n).ok_or_else(|| {
                        ApiError::new(422, Code::BadFailure, format!("the goal declares no host `{n}`"))
                    })?);
                }
                v.sort();
                v.dedup();
                v
            }
        };
        let opts = deladas::solve::Options { timeout: Some(timeout), count, ..Default::default() };
        let (outcome, _) = deladas::solve::solve(&self.program, &available, &opts, &mut deladas::solve::Quiet)
            .map_err(|e| ApiError::new(422, Code::GroundingTooLarge, format!("{e:?}")))?;
        match outcome {
            deladas::solve::Outcome::Sat { deployments, .. } => {
                Ok(deployments.into_iter().map(|d| d.with_goal(&self.info()).into_deployment()).collect())
            }
            deladas::solve::Outcome::Rejected(diags) => Err(ApiError::diags(500, &diags, &self.sources)),
            deladas::solve::Outcome::Unsat { .. } => {
                let ex = self.explain(&available, "with these hosts");
                Err(ApiError { status: 409, body: ex })
            }
            deladas::solve::Outcome::Unknown(r) | deladas::solve::Outcome::Internal(r) => {
                Err(ApiError::new(503, Code::SolverGaveUp, format!("the solver gave up: {r}")))
            }
        }
    }

    /// The explanation of why no configuration exists on `available` hosts, as JSON.
    pub fn explain(&self, available: &[usize], context: &str) -> Value {
        let p = &self.program;
        let hosts: Vec<&str> = available.iter().map(|&h| p.hosts[h].name.as_str()).collect();
        let message = format!("no configuration exists {context}: {} host(s) left ({})", hosts.len(), hosts.join(", "));
        match deladas::solve::explain::explain(p, available, Duration::from_secs(10)) {
            Ok(deladas::solve::explain::Explained::Unsatisfiable { conflict, repairs, repairs_complete }) => {
                let clauses: Vec<Value> = conflict
                    .pieces
                    .iter()
                    .map(|piece| {
                        let text = self.sources.text(piece.loc.file);
                        let span = text
                            .get(piece.loc.span.start as usize..piece.loc.span.end as usize)
                            .unwrap_or("")
                            .to_string();
                        let line = text[..(piece.loc.span.start as usize).min(text.len())].lines().count().max(1);
                        json!({"clause": span, "line": line})
                    })
                    .collect();
                // The words `deladas explain` prints: its `help:` lines are
                // the repairs, its `note:` lines the counting facts.
                let d =
                    deladas::report::explanation(p, &self.sources, available, &conflict, &repairs, repairs_complete);
                let texts = |kind: deladas::diagnostics::NoteKind| {
                    d.notes.iter().filter(|n| n.kind == kind).map(|n| n.text.clone()).collect::<Vec<_>>()
                };
                json!({
                    "message": message,
                    "conflict": clauses,
                    "resources": texts(deladas::diagnostics::NoteKind::Note),
                    "hosts_needed": conflict.hosts_needed,
                    "repairs": texts(deladas::diagnostics::NoteKind::Help),
                })
            }
            _ => json!({"message": message}),
        }
    }

    /// Re-solves `old` after the failure of `down` hosts, keeping the most
    /// surviving bindings: the library's re-solve request, the same call as
    /// `deladas resolve --fail-host`.
    pub fn resolve(&self, old: &Deployment, down: &[String], timeout: Duration) -> Result<Resolution, ApiError> {
        self.resolve_with(old, down, &[], timeout)
    }

    /// [`Goal::resolve`] with declared hosts back in service (`add`).
    pub fn resolve_with(
        &self,
        old: &Deployment,
        down: &[String],
        add: &[String],
        timeout: Duration,
    ) -> Result<Resolution, ApiError> {
        let req = deladas::request::Request {
            fail_hosts: down.to_vec(),
            add_hosts: add.iter().map(|h| deladas::request::AddHost::Declared(h.clone())).collect(),
            timeout: Some(timeout),
            ..deladas::request::Request::default()
        };
        let mut sources = self.sources.clone();
        match deladas::request::resolve_request(&self.program, &mut sources, old, &req, &self.info()) {
            Err(diags) => Err(ApiError::diags(422, &diags, &sources)),
            Ok(deladas::request::Answer::Resolved(r)) => {
                let plan = r.plan.to_json();
                Ok(Resolution::Resolved(r.deployment.into_deployment(), plan))
            }
            Ok(deladas::request::Answer::Impossible(why)) => {
                Ok(Resolution::Impossible(self.explain(&why.up, &why.failure)))
            }
            Ok(deladas::request::Answer::Unknown(d)) => Err(ApiError::diags(503, &[d], &sources)),
        }
    }
}

/// What a re-solve found.
pub enum Resolution {
    /// The new deployment and the library's migration plan (JSON).
    Resolved(Deployment, Value),
    /// No configuration: the explanation.
    Impossible(Value),
}

/// The migration plan from one deployment to the next, in the order it is
/// enacted: step 0 starts new instances and wires new and kept ones; step 1
/// stops what is no longer needed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The generation the plan was made against; enacting it makes generation + 1.
    pub generation: u64,
    pub kept: Vec<String>,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    /// Kept instances whose wiring changes.
    pub rewired: Vec<String>,
    pub channels_added: usize,
    pub channels_removed: usize,
    pub steps: Vec<String>,
}

fn chan_key(c: &deladas::ddd::Channel) -> (String, String, String, String) {
    (c.from.instance.clone(), c.from.port.clone(), c.to.instance.clone(), c.to.port.clone())
}

impl Plan {
    pub fn diff(old: Option<&Deployment>, new: &Deployment, generation: u64) -> Plan {
        let binding = |i: &deladas::ddd::Instance| (i.id.clone(), i.component.clone(), i.host.clone());
        let old_b: BTreeSet<_> = old.map(|o| o.instances.iter().map(binding).collect()).unwrap_or_default();
        let new_b: BTreeSet<_> = new.instances.iter().map(binding).collect();
        let old_c: BTreeSet<_> = old.map(|o| o.channels.iter().map(chan_key).collect()).unwrap_or_default();
        let new_c: BTreeSet<_> = new.channels.iter().map(chan_key).collect();
        let kept: Vec<String> = old_b.intersection(&new_b).map(|b| b.0.clone()).collect();
        let started: Vec<String> = new_b.difference(&old_b).map(|b| b.0.clone()).collect();
        let stopped: Vec<String> = old_b.difference(&new_b).map(|b| b.0.clone()).collect();
        let touched: BTreeSet<&String> = old_c.symmetric_difference(&new_c).flat_map(|c| [&c.0, &c.2]).collect();
        let rewired: Vec<String> = kept.iter().filter(|k| touched.contains(k)).cloned().collect();
        let mut steps = vec![];
        if !started.is_empty() || !rewired.is_empty() {
            steps.push(format!("start {} and wire {}", list(&started), list(&rewired)));
        }
        if !stopped.is_empty() {
            steps.push(format!("unwire and stop {}", list(&stopped)));
        }
        Plan {
            generation,
            channels_added: new_c.difference(&old_c).count(),
            channels_removed: old_c.difference(&new_c).count(),
            kept,
            started,
            stopped,
            rewired,
            steps,
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// The union of two deployments' instances (for ports unique across both).
fn union(old: Option<&Deployment>, new: &Deployment) -> Deployment {
    let mut u = new.clone();
    if let Some(o) = old {
        let ids: BTreeSet<&str> = new.instances.iter().map(|i| i.id.as_str()).collect();
        for i in &o.instances {
            if !ids.contains(i.id.as_str()) {
                u.instances.push(i.clone());
            }
        }
        for c in &o.components {
            if !u.components.iter().any(|x| x.name == c.name) {
                u.components.push(c.clone());
            }
        }
    }
    u
}

/// Ports for a transition: unique over the old and the new instances, kept
/// for survivors.
pub fn transition_endpoints(old: Option<&Deployment>, new: &Deployment, previous: &Endpoints) -> Endpoints {
    Endpoints::assign(&union(old, new), previous, PORT_BASE).unwrap_or_default()
}

/// What every host runs at `epoch` of a transition from `old` (generation
/// − 1) to `new`: at step 0 the new deployment plus old instances not in it
/// (kept with their old wiring); at step 1 only the new deployment.
pub fn assignments(
    old: Option<&Deployment>,
    new: &Deployment,
    epoch: Epoch,
    endpoints: &Endpoints,
    addresses: &BTreeMap<String, String>,
    fence_after_ms: u64,
) -> BTreeMap<String, Assignment> {
    let address = |h: &str, _: &str, _: &str| addresses.get(h).cloned().unwrap_or_else(|| "127.0.0.1".into());
    let mut out: BTreeMap<String, Assignment> = BTreeMap::new();
    let mut add = |d: &Deployment, wiring_gen: u64, only: &dyn Fn(&str) -> bool| {
        let w = wirings(d, wiring_gen, endpoints, &address);
        for i in &d.instances {
            if !only(&i.id) {
                continue;
            }
            let Some(c) = d.components.iter().find(|c| c.name == i.component) else { continue };
            let Ok(spec) = RunSpec::of(c) else { continue };
            let Some(wiring) = w.get(&i.id).cloned() else { continue };
            out.entry(i.host.clone())
                .or_insert_with(|| Assignment {
                    host: i.host.clone(),
                    epoch,
                    failed: false,
                    fence_after_ms,
                    leader_term: 0,
                    instances: vec![],
                })
                .instances
                .push(AssignedInstance {
                    id: i.id.clone(),
                    component: i.component.clone(),
                    command: spec.command,
                    wiring,
                    mdcd: None,
                });
        }
    };
    add(new, epoch.generation, &|_| true);
    if epoch.step == 0 {
        if let Some(o) = old {
            let ids: BTreeSet<&str> = new.instances.iter().map(|i| i.id.as_str()).collect();
            add(o, epoch.generation.saturating_sub(1), &|id| !ids.contains(id));
        }
    }
    out
}
