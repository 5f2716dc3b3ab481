//! Re-solving on request: the library API behind `deladas resolve`, for
//! every front end (the CLI, the language server, the manager daemon). No
//! argv, no stderr, no exit codes: data in, a checked deployment and a
//! migration plan — or diagnostics — out.
//!
//! ```no_run
//! use deladas::request::{self, Answer, Request};
//! # fn run(program: &deladas::check::ir::Program, sources: &mut deladas::diagnostics::Sources,
//! #        old: &deladas::ddd::Deployment, info: &deladas::solve::output::GoalInfo) {
//! let req = Request { fail_hosts: vec!["h1".into()], ..Request::default() };
//! match request::resolve_request(program, sources, old, &req, info) {
//!     Ok(Answer::Resolved(r)) => {
//!         let xml = r.deployment.to_xml(); // checked by the evaluator
//!         print!("{}", r.plan.to_text());
//!     }
//!     Ok(Answer::Impossible(why)) => { /* no configuration on the hosts left */ }
//!     Ok(Answer::Unknown(diagnostic)) => { /* the solver gave up */ }
//!     Err(diagnostics) => { /* bad request (E0805, E0703, …) or a bug (E0901) */ }
//! }
//! # }
//! ```
//!
//! Steps, each usable alone:
//! 1. [`AddHost::parse`]: a host given as text (`NAME = host(attr = value, …)`,
//!    or the name of a declared host back in service), syntax only (E0805).
//! 2. [`Prepared::new`]: binds the running deployment to the goal (E0703),
//!    adds the new hosts to the goal as checked declarations
//!    ([`crate::check::add_host`]), and validates the failures against the
//!    deployment (E0805, with `did you mean`).
//! 3. [`Prepared::resolve`]: re-solves ([`crate::solve::resolve::resolve`]);
//!    the new deployment is checked by the evaluator before it is returned,
//!    and the plan is [`Plan::diff`] of the old and new deployments.

use std::time::Duration;

use crate::check::ir::{HostId, Program};
use crate::ddd::Deployment;
use crate::diagnostics::{did_you_mean, Code, Diagnostic, Sources};
use crate::eval::World;
use crate::plan::{Objective, Plan, PlanScenario};
use crate::solve::output::GoalInfo;
use crate::solve::resolve::{self, ResolveOutcome, Resolved, Running, Scenario, Strategy};
use crate::solve::CheckedDeployment;

/// A host added to the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddHost {
    /// A host the goal declares, back in service: its name.
    Declared(String),
    /// A new host: one declaration, as written after `host` in a goal
    /// (`NAME = host(attr = value, …)`).
    New(String),
}

impl AddHost {
    /// Reads a host given as text: a bare name is a declared host; anything
    /// else must be exactly one host declaration (`host ` may be written in
    /// front). Syntax only; [`Prepared::new`] checks it against the goal.
    pub fn parse(raw: &str) -> Result<AddHost, Diagnostic> {
        let a = raw.trim();
        let a = a.strip_prefix("host ").map(str::trim_start).unwrap_or(a);
        if a.is_empty() {
            return Err(bad("`--add-host` is empty: give a host's name, or `NAME = host(attr = value, …)`"));
        }
        if !a.contains('=') && a.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Ok(AddHost::Declared(a.to_string()));
        }
        let decl = format!("host {a}");
        let (parsed, diags) = crate::syntax::parse(&decl, 0);
        let one_host =
            parsed.decls.len() == 1 && matches!(parsed.decls[0].kind, crate::syntax::ast::DeclKind::Host { .. });
        if !diags.is_empty() || !one_host || a.contains('\n') {
            let why = diags.first().map(|d| format!(": {}", d.message)).unwrap_or_default();
            return Err(bad(format!("`--add-host {raw}` is not one host declaration{why}"))
                .help("write `--add-host 'NAME = host(attr = value, …)'`, one host per flag"));
        }
        Ok(AddHost::New(a.to_string()))
    }

    /// [`AddHost::parse`] for each; every error at once.
    pub fn parse_all(raws: &[String]) -> Result<Vec<AddHost>, Vec<Diagnostic>> {
        let (ok, errs): (Vec<_>, Vec<_>) = raws.iter().map(|r| AddHost::parse(r)).partition(Result::is_ok);
        if errs.is_empty() {
            Ok(ok.into_iter().filter_map(Result::ok).collect())
        } else {
            Err(errs.into_iter().filter_map(Result::err).collect())
        }
    }
}

/// What happened to a running deployment, and how to re-solve.
#[derive(Debug, Clone)]
pub struct Request {
    /// Names of hosts that failed.
    pub fail_hosts: Vec<String>,
    /// Ids of instances that failed on a live host (restarted in place when
    /// the goal allows).
    pub fail_instances: Vec<String>,
    /// Hosts added: new ones, or declared ones back in service.
    pub add_hosts: Vec<AddHost>,
    pub strategy: Strategy,
    /// Give up after this long ([`Answer::Unknown`]; a configuration found
    /// by then is returned, not proven optimal).
    pub timeout: Option<Duration>,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            fail_hosts: vec![],
            fail_instances: vec![],
            add_hosts: vec![],
            strategy: Strategy::Optimal,
            timeout: None,
        }
    }
}

fn bad(message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(Code::BadFailure, message)
}

/// A request validated against the goal and the running deployment.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The goal, with the new hosts added.
    pub program: Program,
    /// The running deployment, and its binding to the goal.
    pub old: Deployment,
    pub world: World,
    /// The hosts added (ids into `program.hosts`), in declaration order.
    pub added: Vec<HostId>,
    /// Hosts the goal declares (the new hosts' ids are from here on).
    pub declared: usize,
    pub scenario: Scenario,
    pub strategy: Strategy,
    pub timeout: Option<Duration>,
}

/// A re-solve that found a configuration.
#[derive(Debug)]
pub struct Resolution {
    /// The new deployment, checked by the evaluator.
    pub deployment: CheckedDeployment,
    pub plan: Plan,
    /// The solver's answer: grounding, kept bindings, levels.
    pub resolved: Box<Resolved>,
}

/// No configuration exists on the hosts that are up.
#[derive(Debug, Clone)]
pub struct Impossible {
    /// The hosts that are up.
    pub up: Vec<HostId>,
    /// `after the failure of `h1``, or `with the deployment's hosts`.
    pub failure: String,
}

/// How a re-solve ended.
#[derive(Debug)]
pub enum Answer {
    Resolved(Box<Resolution>),
    Impossible(Impossible),
    /// The solver gave up before finding any configuration (E0802).
    Unknown(Diagnostic),
}

impl Prepared {
    /// Validates `req` against `program` and the running deployment `old`.
    /// New hosts are added to a copy of the goal as checked declarations,
    /// each in a file of its own in `sources` (so their diagnostics point
    /// there, not into the goal).
    pub fn new(
        program: &Program,
        sources: &mut Sources,
        old: &Deployment,
        req: &Request,
    ) -> Result<Prepared, Vec<Diagnostic>> {
        let world = crate::eval::bind(program, old).map_err(|errs| {
            errs.into_iter()
                .map(|m| {
                    Diagnostic::new(Code::DddMismatch, m)
                        .note("the deployment was not written for this goal, or the goal changed since")
                })
                .collect::<Vec<_>>()
        })?;
        let mut program = program.clone();
        let declared = program.hosts.len();
        let mut added = vec![];
        let mut errors = vec![];
        for a in &req.add_hosts {
            match a {
                AddHost::New(text) => {
                    let file = sources.add("<added host>", format!("host {text}"));
                    match crate::check::add_host(&mut program, sources, file) {
                        Ok(h) => added.push(h),
                        Err(diags) => errors.extend(diags),
                    }
                }
                AddHost::Declared(name) => match program.host(name) {
                    Some(h) if h < declared && world.hosts.contains(&h) => {
                        errors.push(bad(format!("`--add-host {name}`: host `{name}` is already in the deployment")))
                    }
                    Some(h) if h < declared => added.push(h),
                    _ => {
                        let mut d = bad(format!("`--add-host {name}`: the goal declares no host `{name}`")).help(
                            "to add a new host, give its declaration: `--add-host 'NAME = host(attr = value, …)'`",
                        );
                        if let Some(s) = did_you_mean(name, program.hosts[..declared].iter().map(|h| h.name.as_str())) {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        errors.push(d);
                    }
                },
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        added.sort();
        added.dedup();
        // Failures must name what the deployment has.
        let mut down = vec![];
        for name in &req.fail_hosts {
            match program.host(name).filter(|h| world.hosts.contains(h)) {
                Some(h) => down.push(h),
                None => {
                    let mut d = bad(format!("`--fail-host {name}`: the deployment has no host `{name}`"));
                    let names: Vec<&str> = world.hosts.iter().map(|&h| program.hosts[h].name.as_str()).collect();
                    if let Some(s) = did_you_mean(name, names.iter().copied()) {
                        d = d.help(format!("did you mean `{s}`?"));
                    }
                    d = d.note(format!("the deployment's hosts: {}", names.join(", ")));
                    errors.push(d);
                }
            }
        }
        let mut failed_instances = vec![];
        for id in &req.fail_instances {
            match world.instances.iter().position(|i| &i.id == id) {
                Some(i) => failed_instances.push(i),
                None => {
                    let mut d = bad(format!("`--fail-instance {id}`: the deployment has no instance `{id}`"));
                    if let Some(s) = did_you_mean(id, world.instances.iter().map(|i| i.id.as_str())) {
                        d = d.help(format!("did you mean `{s}`?"));
                    }
                    errors.push(d);
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        down.sort();
        down.dedup();
        let mut hosts: Vec<HostId> = world.hosts.iter().copied().chain(added.iter().copied()).collect();
        hosts.sort();
        hosts.dedup();
        let scenario = Scenario { hosts, down, failed_instances };
        Ok(Prepared {
            program,
            old: old.clone(),
            world,
            added,
            declared,
            scenario,
            strategy: req.strategy,
            timeout: req.timeout.filter(|t| !t.is_zero()),
        })
    }

    /// What happened, by name (for the plan).
    pub fn plan_scenario(&self) -> PlanScenario {
        let name = |h: &HostId| self.program.hosts[*h].name.clone();
        PlanScenario {
            failed_hosts: self.scenario.down.iter().map(name).collect(),
            failed_instances: self
                .scenario
                .failed_instances
                .iter()
                .map(|&i| self.world.instances[i].id.clone())
                .collect(),
            added_hosts: self.added.iter().map(name).collect(),
            undeclared_hosts: self.added.iter().filter(|&&h| h >= self.declared).map(name).collect(),
        }
    }

    /// Re-solves. The new deployment carries `info` (the goal's name and
    /// SHA-256). Errors: a goal too large to ground, or a configuration the
    /// evaluator rejects (E0901, a bug).
    pub fn resolve(&self, info: &GoalInfo) -> Result<Answer, Vec<Diagnostic>> {
        let run = Running::from_world(&self.world);
        let result = resolve::resolve(&self.program, &run, &self.scenario, self.strategy, self.timeout);
        match result.map_err(|e| vec![e.to_diagnostic(self.program.root_file)])? {
            ResolveOutcome::Rejected(diags) => Err(diags),
            ResolveOutcome::Unknown(reason) => {
                let why = match (self.timeout, reason.as_str()) {
                    (Some(t), "timeout" | "canceled" | "unknown") => {
                        format!("out of time after {:.1} s", t.as_secs_f64())
                    }
                    _ => reason,
                };
                Ok(Answer::Unknown(
                    Diagnostic::new(
                        Code::SolverGaveUp,
                        format!("the solver gave up before finding any configuration: {why}"),
                    )
                    .help("a longer `--timeout` may help"),
                ))
            }
            ResolveOutcome::Impossible => {
                let lost: Vec<String> =
                    self.scenario.down.iter().map(|&h| format!("`{}`", self.program.hosts[h].name)).collect();
                let failure = if lost.is_empty() {
                    "with the deployment's hosts".to_string()
                } else {
                    format!("after the failure of {}", lost.join(" and "))
                };
                Ok(Answer::Impossible(Impossible { up: self.scenario.up(), failure }))
            }
            ResolveOutcome::Resolved(mut r) => {
                let deployment = r.deployment.clone().with_goal(info);
                let plan = Plan::diff(&self.old, deployment.deployment(), &self.plan_scenario())
                    .with_objective(Objective::of(&r));
                r.deployment = deployment.clone();
                Ok(Answer::Resolved(Box::new(Resolution { deployment, plan, resolved: r })))
            }
        }
    }
}

/// [`Prepared::new`] then [`Prepared::resolve`]: one call for a daemon.
pub fn resolve_request(
    program: &Program,
    sources: &mut Sources,
    old: &Deployment,
    req: &Request,
    info: &GoalInfo,
) -> Result<Answer, Vec<Diagnostic>> {
    Prepared::new(program, sources, old, req)?.resolve(info)
}
