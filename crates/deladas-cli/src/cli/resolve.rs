//! `deladas resolve` (re-solve a running deployment after failures, print
//! the migration plan) and `deladas whatif` (which single or paired host
//! failures the goal survives).
//!
//! Output: the new DDD goes to `-o FILE`, or stdout; the plan goes to
//! stdout when the DDD went to a file, else to stderr, so that
//! `deladas resolve … > new.ddd.xml` keeps the DDD clean.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{emit, load_deployment, lower_error, self_check, solve_error_exit, write_out, DiagFormat, TermProgress};
use super::{EXIT_BAD_INPUT, EXIT_NO, EXIT_OK, EXIT_UNKNOWN};
use deladas::check::ir::Program;
use deladas::diagnostics::{did_you_mean, Code, Diagnostic, Sources};
use deladas::solve::resolve::{self, Level, ResolveOutcome, Running, Scenario, Strategy, Survival};

/// How the migration plan is printed.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub(super) enum PlanFormat {
    /// For people.
    Text,
    /// For tools (one JSON object).
    Json,
}

/// How to re-solve (`--strategy`).
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub(super) enum StrategyArg {
    /// Keep the most bindings, then channels, then start the fewest instances (proven).
    Optimal,
    /// The paper's: pin every survivor, drop pins in deployment order until a solution exists.
    Progressive,
}

/// The arguments of `deladas resolve`.
pub(super) struct ResolveArgs<'a> {
    pub file: &'a Path,
    pub from: &'a Path,
    pub fail_hosts: &'a [String],
    pub fail_instances: &'a [String],
    pub add_hosts: &'a [String],
    pub output: Option<&'a Path>,
    pub plan_format: PlanFormat,
    pub strategy: StrategyArg,
    pub timeout: Option<f64>,
}

/// A goal loaded with its added hosts, and the running deployment bound to it.
struct Loaded {
    sources: Sources,
    program: Program,
    old: deladas::ddd::Deployment,
    world: deladas::eval::World,
    /// Hosts added on the command line (ids).
    added: Vec<usize>,
    /// SHA-256 of the goal file as it is on disk.
    sha256: String,
    /// Length of the goal file's text (declarations after it were added).
    original_len: u32,
}

fn bad(message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(Code::BadFailure, message)
}

/// Loads the goal (with `--add-host` declarations appended) and the DDD.
fn load(file: &Path, from: &Path, add_hosts: &[String], format: DiagFormat) -> Result<Loaded, i32> {
    let original = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(_) => {
            // Let the loader report it (unreadable, not UTF-8) the usual way.
            let (sources, checked) = deladas::check::check_path(file);
            emit(&checked.diags, &sources, format);
            return Err(EXIT_BAD_INPUT);
        }
    };
    let mut text = original.clone();
    let mut re_added: Vec<String> = vec![];
    if !add_hosts.is_empty() {
        text.push_str("\n// hosts added by `deladas resolve --add-host`\n");
    }
    let mut arg_errors = vec![];
    for raw in add_hosts {
        let a = raw.trim();
        let a = a.strip_prefix("host ").map(str::trim_start).unwrap_or(a);
        if a.is_empty() {
            arg_errors.push(bad("`--add-host` is empty: give a host's name, or `NAME = host(attr = value, …)`"));
            continue;
        }
        if !a.contains('=') && a.chars().all(|c| c.is_alphanumeric() || c == '_') {
            // A bare name: a host the goal declares, back in service.
            re_added.push(a.to_string());
            continue;
        }
        // Exactly one host declaration, nothing else.
        let decl = format!("host {a}");
        let (parsed, diags) = deladas::syntax::parse(&decl, 0);
        let one_host =
            parsed.decls.len() == 1 && matches!(parsed.decls[0].kind, deladas::syntax::ast::DeclKind::Host { .. });
        if !diags.is_empty() || !one_host || a.contains('\n') {
            let why = diags.first().map(|d| format!(": {}", d.message)).unwrap_or_default();
            arg_errors.push(
                bad(format!("`--add-host {raw}` is not one host declaration{why}"))
                    .help("write `--add-host 'NAME = host(attr = value, …)'`, one host per flag"),
            );
            continue;
        }
        text.push_str(&format!("{decl}\n"));
    }
    if !arg_errors.is_empty() {
        emit(&arg_errors, &Sources::default(), format);
        return Err(EXIT_BAD_INPUT);
    }
    let loaded = deladas::check::load(file, Some(&text), &deladas::check::RealFs);
    let (mut sources, checked) = deladas::check::check_loaded(loaded);
    if checked.has_errors() {
        emit(&checked.diags, &sources, format);
        return Err(EXIT_BAD_INPUT);
    }
    if !checked.diags.is_empty() && format == DiagFormat::Text {
        emit(&checked.diags, &sources, format);
    }
    let program = checked.program;
    let (old, world) = load_deployment(&program, &mut sources, from, format)?;
    let mut added: Vec<usize> = vec![];
    let mut errors = vec![];
    let base = original.len() as u32;
    for (h, host) in program.hosts.iter().enumerate() {
        if host.loc.file == program.root_file && host.loc.span.start >= base && !world.hosts.contains(&h) {
            added.push(h);
        }
    }
    for name in &re_added {
        match program.host(name) {
            Some(h) if world.hosts.contains(&h) => {
                errors.push(bad(format!("`--add-host {name}`: host `{name}` is already in the deployment")))
            }
            Some(h) => added.push(h),
            None => {
                let mut d = bad(format!("`--add-host {name}`: the goal declares no host `{name}`"))
                    .help("to add a new host, give its declaration: `--add-host 'NAME = host(attr = value, …)'`");
                if let Some(s) = did_you_mean(name, program.hosts.iter().map(|h| h.name.as_str())) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                errors.push(d);
            }
        }
    }
    if !errors.is_empty() {
        emit(&errors, &sources, format);
        return Err(EXIT_BAD_INPUT);
    }
    added.sort();
    added.dedup();
    use sha2::Digest;
    let sha256 = sha2::Sha256::digest(original.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    Ok(Loaded { sources, program, old, world, added, sha256, original_len: base })
}

/// Every host the scenario grounds over: the deployment's and the added ones.
fn scenario_hosts(l: &Loaded) -> Vec<usize> {
    let mut hosts: Vec<usize> = l.world.hosts.iter().copied().chain(l.added.iter().copied()).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

pub(super) fn cmd_resolve(args: ResolveArgs) -> i32 {
    let format = DiagFormat::Text;
    let l = match load(args.file, args.from, args.add_hosts, format) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let program = &l.program;
    // Failures must name what the deployment has.
    let mut errors = vec![];
    let mut down = vec![];
    for name in args.fail_hosts {
        match program.host(name).filter(|h| l.world.hosts.contains(h)) {
            Some(h) => down.push(h),
            None => {
                let mut d = bad(format!("`--fail-host {name}`: the deployment has no host `{name}`"));
                let names: Vec<&str> = l.world.hosts.iter().map(|&h| program.hosts[h].name.as_str()).collect();
                if let Some(s) = did_you_mean(name, names.iter().copied()) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                d = d.note(format!("the deployment's hosts: {}", names.join(", ")));
                errors.push(d);
            }
        }
    }
    let mut failed_instances = vec![];
    for id in args.fail_instances {
        match l.world.instances.iter().position(|i| &i.id == id) {
            Some(i) => failed_instances.push(i),
            None => {
                let mut d = bad(format!("`--fail-instance {id}`: the deployment has no instance `{id}`"));
                if let Some(s) = did_you_mean(id, l.world.instances.iter().map(|i| i.id.as_str())) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                errors.push(d);
            }
        }
    }
    if !errors.is_empty() {
        emit(&errors, &l.sources, format);
        return EXIT_BAD_INPUT;
    }
    down.sort();
    down.dedup();
    let scenario = Scenario { hosts: scenario_hosts(&l), down, failed_instances };
    let run = Running::from_world(&l.world);
    let strategy = match args.strategy {
        StrategyArg::Optimal => Strategy::Optimal,
        StrategyArg::Progressive => Strategy::Progressive,
    };
    let timeout = args.timeout.filter(|t| t.is_finite() && *t > 0.0).map(Duration::from_secs_f64);
    let started = std::time::Instant::now();
    let mut progress = TermProgress::new();
    deladas::solve::Progress::phase(&mut progress, "re-solving", &format!("{} hosts", scenario.hosts.len()));
    let result = resolve::resolve(program, &run, &scenario, strategy, timeout);
    progress.finish();
    let resolved = match result {
        Err(e) => {
            emit(&[lower_error(&e, program.root_file)], &l.sources, format);
            return solve_error_exit(&e);
        }
        Ok(ResolveOutcome::Unknown(reason)) => {
            let why = match (timeout, reason.as_str()) {
                (Some(t), "timeout" | "canceled" | "unknown") => format!("out of time after {:.1} s", t.as_secs_f64()),
                _ => reason,
            };
            let d = Diagnostic::new(
                Code::SolverGaveUp,
                format!("the solver gave up before finding any configuration: {why}"),
            )
            .help("a longer `--timeout` may help");
            emit(&[d], &l.sources, format);
            return EXIT_UNKNOWN;
        }
        Ok(ResolveOutcome::Impossible) => {
            // The explanation shares the run's time limit.
            let left = timeout.map(|t| t.saturating_sub(started.elapsed()).max(Duration::from_millis(1)));
            return impossible(&l, &scenario, left);
        }
        Ok(ResolveOutcome::Resolved(r)) => r,
    };
    // The new DDD: kept instances keep their ids.
    let fixed: HashMap<u32, String> = resolved.kept.iter().map(|(&s, &i)| (s, run.instances[i].id.clone())).collect();
    let taken: HashSet<String> = run.instances.iter().map(|i| i.id.clone()).collect();
    let info = deladas::solve::output::GoalInfo {
        name: args.file.file_name().map(|n| n.to_string_lossy().into_owned()),
        sha256: Some(l.sha256.clone()),
    };
    let new = deladas::solve::output::to_deployment_with(
        program,
        &scenario.up(),
        &resolved.ground,
        &resolved.solution,
        &info,
        &fixed,
        &taken,
    );
    if let Err(diags) = self_check(program, &new, false) {
        emit(&diags, &l.sources, format);
        return 101;
    }
    let plan = Plan::new(program, &l, &new, &scenario, &resolved);
    let text = deladas::ddd::to_xml(&new);
    if let Err(code) = write_out(args.output, &text) {
        return code;
    }
    let rendered = match args.plan_format {
        PlanFormat::Text => plan.text(),
        PlanFormat::Json => format!("{:#}\n", plan.json()),
    };
    if args.output.is_some() {
        super::print_out(&rendered);
    } else {
        eprint!("{rendered}");
    }
    EXIT_OK
}

/// No configuration exists on what is left: the explanation, naming the failure.
fn impossible(l: &Loaded, scenario: &Scenario, timeout: Option<Duration>) -> i32 {
    let program = &l.program;
    let up = scenario.up();
    let budget = timeout.unwrap_or(Duration::from_secs(20));
    let lost: Vec<String> = scenario.down.iter().map(|&h| format!("`{}`", program.hosts[h].name)).collect();
    let failure = if lost.is_empty() {
        "with the deployment's hosts".to_string()
    } else {
        format!("after the failure of {}", lost.join(" and "))
    };
    match deladas::solve::explain::explain(program, &up, budget) {
        Ok(deladas::solve::explain::Explained::Unsatisfiable { conflict, repairs, repairs_complete }) => {
            let d = super::explain::explanation(program, &l.sources, &up, &conflict, &repairs, repairs_complete);
            let d = d.note(format!(
                "no configuration exists {failure}: {} host{} left",
                up.len(),
                if up.len() == 1 { " is" } else { "s are" }
            ));
            emit(&[d], &l.sources, DiagFormat::Text);
            EXIT_NO
        }
        Ok(_) => {
            // The explanation's fresh solve disagrees or gave up: still a "no".
            let d = Diagnostic::new(Code::Unsatisfiable, format!("no configuration exists {failure}"));
            emit(&[d], &l.sources, DiagFormat::Text);
            EXIT_NO
        }
        Err(e) => {
            emit(&[lower_error(&e, program.root_file)], &l.sources, DiagFormat::Text);
            solve_error_exit(&e)
        }
    }
}

/// An instance in a plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PInst {
    id: String,
    component: String,
    host: String,
}

/// A channel in a plan: (instance, port) ends.
type PChan = ((String, String), (String, String));

/// The migration plan: what changes between the old and the new deployment.
struct Plan {
    kept: Vec<PInst>,
    restarted: Vec<PInst>,
    /// With the reason: host failed, instance failed, no longer needed.
    stopped: Vec<(PInst, String)>,
    started: Vec<PInst>,
    moved: Vec<(PInst, PInst)>,
    chans_kept: Vec<PChan>,
    chans_removed: Vec<PChan>,
    chans_added: Vec<PChan>,
    failed_hosts: Vec<String>,
    added_hosts: Vec<String>,
    /// Added hosts the goal file declares (`--add-host NAME`).
    added_declared: Vec<String>,
    levels: [Level; 3],
    surviving: usize,
    surviving_channels: usize,
    strategy: Strategy,
}

fn chan_key(c: &deladas::ddd::Channel) -> PChan {
    ((c.from.instance.clone(), c.from.port.clone()), (c.to.instance.clone(), c.to.port.clone()))
}

impl Plan {
    fn new(
        program: &Program,
        l: &Loaded,
        new: &deladas::ddd::Deployment,
        scenario: &Scenario,
        r: &resolve::Resolved,
    ) -> Plan {
        let pinst = |i: &deladas::ddd::Instance| PInst {
            id: i.id.clone(),
            component: i.component.clone(),
            host: i.host.clone(),
        };
        let down: HashSet<&str> = scenario.down.iter().map(|&h| program.hosts[h].name.as_str()).collect();
        let failed: HashSet<&str> =
            scenario.failed_instances.iter().map(|&i| l.world.instances[i].id.as_str()).collect();
        let new_ids: HashMap<&str, &deladas::ddd::Instance> =
            new.instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let old_ids: HashSet<&str> = l.old.instances.iter().map(|i| i.id.as_str()).collect();
        let (mut kept, mut restarted, mut stopped) = (vec![], vec![], vec![]);
        for i in &l.old.instances {
            let same = new_ids.get(i.id.as_str()).is_some_and(|n| n.component == i.component && n.host == i.host);
            if same && failed.contains(i.id.as_str()) {
                restarted.push(pinst(i));
            } else if same {
                kept.push(pinst(i));
            } else {
                let why = if down.contains(i.host.as_str()) {
                    "host failed"
                } else if failed.contains(i.id.as_str()) {
                    "instance failed"
                } else {
                    "no longer needed"
                };
                stopped.push((pinst(i), why.to_string()));
            }
        }
        let mut started: Vec<PInst> =
            new.instances.iter().filter(|i| !old_ids.contains(i.id.as_str())).map(pinst).collect();
        // A stopped instance and a started one of the same component: a move.
        let mut moved = vec![];
        let mut by_comp: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (k, s) in started.iter().enumerate() {
            by_comp.entry(s.component.clone()).or_default().push(k);
        }
        let mut used = HashSet::new();
        stopped.retain(|(s, _)| {
            if let Some(k) =
                by_comp.get_mut(&s.component).and_then(|v| if v.is_empty() { None } else { Some(v.remove(0)) })
            {
                moved.push((s.clone(), started[k].clone()));
                used.insert(k);
                false
            } else {
                true
            }
        });
        // Say what took the place of an instance stopped on a live host.
        for (st, why) in &mut stopped {
            if why == "no longer needed" {
                if let Some(n) = new.instances.iter().find(|n| n.host == st.host && !old_ids.contains(n.id.as_str())) {
                    *why = format!("{} takes its place on {}", n.id, n.host);
                }
            }
        }
        let mut k = 0;
        started.retain(|_| {
            k += 1;
            !used.contains(&(k - 1))
        });
        let old_chans: Vec<PChan> = l.old.channels.iter().map(chan_key).collect();
        let new_chans: Vec<PChan> = new.channels.iter().map(chan_key).collect();
        let new_set: HashSet<&PChan> = new_chans.iter().collect();
        let old_set: HashSet<&PChan> = old_chans.iter().collect();
        let chans_kept = old_chans.iter().filter(|c| new_set.contains(c)).cloned().collect();
        let chans_removed = old_chans.iter().filter(|c| !new_set.contains(c)).cloned().collect();
        let chans_added = new_chans.iter().filter(|c| !old_set.contains(c)).cloned().collect();
        Plan {
            kept,
            restarted,
            stopped,
            started,
            moved,
            chans_kept,
            chans_removed,
            chans_added,
            failed_hosts: scenario.down.iter().map(|&h| program.hosts[h].name.clone()).collect(),
            added_hosts: l.added.iter().map(|&h| program.hosts[h].name.clone()).collect(),
            added_declared: l
                .added
                .iter()
                .filter(|&&h| program.hosts[h].loc.span.start < l.original_len)
                .map(|&h| program.hosts[h].name.clone())
                .collect(),
            levels: r.levels,
            surviving: r.surviving,
            surviving_channels: r.surviving_channels,
            strategy: r.strategy,
        }
    }

    fn optimality(&self) -> Vec<String> {
        let [b, c, n] = self.levels;
        let mut out = vec![];
        if self.strategy == Strategy::Progressive {
            out.push(
                "strategy progressive: pins dropped in deployment order until a configuration existed; not optimised"
                    .to_string(),
            );
            return out;
        }
        out.push(if b.optimal() {
            format!(
                "optimal: no configuration keeps more than {} of the {} surviving instance bindings",
                b.value, self.surviving
            )
        } else {
            format!(
                "not proven optimal: keeps {} of {} surviving bindings; at most {} can be kept (the solver ran out of time)",
                b.value, self.surviving, b.bound
            )
        });
        out.push(if c.optimal() {
            format!(
                "keeping those, no configuration keeps more than {} of the {} surviving channels",
                c.value, self.surviving_channels
            )
        } else {
            format!("channels: keeps {}, at most {} could be kept (not proven: out of time)", c.value, c.bound)
        });
        out.push(if n.optimal() {
            match n.value {
                0 => "and it starts no new instance".to_string(),
                1 => "and it starts the one new instance that is needed".to_string(),
                v => format!("and none starts fewer than {v} new instances"),
            }
        } else {
            format!("new instances: {}, at least {} are needed (not proven: out of time)", n.value, n.bound)
        });
        out
    }

    fn text(&self) -> String {
        let mut s = String::new();
        let mut what = vec![];
        if !self.failed_hosts.is_empty() {
            what.push(format!("failed: {}", self.failed_hosts.join(", ")));
        }
        if !self.added_hosts.is_empty() {
            what.push(format!("added: {}", self.added_hosts.join(", ")));
        }
        s.push_str(&format!(
            "migration plan{}\n",
            if what.is_empty() { String::new() } else { format!(" ({})", what.join("; ")) }
        ));
        let inst = |i: &PInst| format!("{} on {}", i.id, i.host);
        for i in &self.kept {
            s.push_str(&format!("  keep      {}\n", inst(i)));
        }
        for i in &self.restarted {
            s.push_str(&format!("  restart   {}   (instance failed; restarted in place)\n", inst(i)));
        }
        for (i, why) in &self.stopped {
            s.push_str(&format!("  stop      {}   ({why})\n", inst(i)));
        }
        for (a, b) in &self.moved {
            s.push_str(&format!("  move      {} on {} -> {} on {}\n", a.id, a.host, b.id, b.host));
        }
        for i in &self.started {
            s.push_str(&format!("  start     {}\n", inst(i)));
        }
        let ch = |c: &PChan| format!("{}.{} -- {}.{}", c.0 .0, c.0 .1, c.1 .0, c.1 .1);
        for c in &self.chans_removed {
            s.push_str(&format!("  unwire    {}\n", ch(c)));
        }
        for c in &self.chans_added {
            s.push_str(&format!("  wire      {}\n", ch(c)));
        }
        s.push_str(&format!(
            "instances: {} kept, {} restarted, {} stopped, {} started, {} moved\n",
            self.kept.len(),
            self.restarted.len(),
            self.stopped.len(),
            self.started.len(),
            self.moved.len()
        ));
        s.push_str(&format!(
            "channels: {} kept, {} removed, {} added\n",
            self.chans_kept.len(),
            self.chans_removed.len(),
            self.chans_added.len()
        ));
        for line in self.optimality() {
            s.push_str(&line);
            s.push('\n');
        }
        let undeclared: Vec<&String> = self.added_hosts.iter().filter(|h| !self.added_declared.contains(h)).collect();
        if !undeclared.is_empty() {
            let names: Vec<&str> = undeclared.iter().map(|h| h.as_str()).collect();
            s.push_str(&format!(
                "note: the goal file does not declare {}: add {} to it before using the new DDD with `deladas verify` or `deladas resolve`\n",
                names.join(", "),
                if names.len() == 1 { "its declaration" } else { "their declarations" }
            ));
        }
        s
    }

    fn json(&self) -> serde_json::Value {
        let inst = |i: &PInst| json!({"id": i.id, "component": i.component, "host": i.host});
        let ch = |c: &PChan| json!({"from": {"instance": c.0 .0, "port": c.0 .1}, "to": {"instance": c.1 .0, "port": c.1 .1}});
        let level = |l: &Level| json!({"value": l.value, "bound": l.bound, "optimal": l.optimal()});
        json!({
            "format": 1,
            "strategy": match self.strategy { Strategy::Optimal => "optimal", Strategy::Progressive => "progressive" },
            "failed_hosts": self.failed_hosts,
            "added_hosts": self.added_hosts,
            "instances": {
                "kept": self.kept.iter().map(inst).collect::<Vec<_>>(),
                "restarted": self.restarted.iter().map(inst).collect::<Vec<_>>(),
                "stopped": self.stopped.iter().map(|(i, why)| {
                    let mut v = inst(i);
                    v["reason"] = json!(why);
                    v
                }).collect::<Vec<_>>(),
                "started": self.started.iter().map(inst).collect::<Vec<_>>(),
                "moved": self.moved.iter().map(|(a, b)| json!({"from": inst(a), "to": inst(b)})).collect::<Vec<_>>(),
            },
            "channels": {
                "kept": self.chans_kept.iter().map(ch).collect::<Vec<_>>(),
                "removed": self.chans_removed.iter().map(ch).collect::<Vec<_>>(),
                "added": self.chans_added.iter().map(ch).collect::<Vec<_>>(),
            },
            "counts": {
                "instances_kept": self.kept.len(),
                "instances_restarted": self.restarted.len(),
                "instances_stopped": self.stopped.len(),
                "instances_started": self.started.len(),
                "instances_moved": self.moved.len(),
                "channels_kept": self.chans_kept.len(),
                "channels_removed": self.chans_removed.len(),
                "channels_added": self.chans_added.len(),
            },
            "objective": {
                "surviving_bindings": self.surviving,
                "surviving_channels": self.surviving_channels,
                "bindings_kept": level(&self.levels[0]),
                "channels_kept": level(&self.levels[1]),
                "new_instances": level(&self.levels[2]),
            },
        })
    }
}

/// `deladas whatif`.
pub(super) fn cmd_whatif(file: &Path, from: &Path, pairs: bool, format: DiagFormat, timeout: Option<f64>) -> i32 {
    let l = match load(file, from, &[], format) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let program = &l.program;
    let hosts = scenario_hosts(&l);
    let mut cases: Vec<Vec<usize>> = hosts.iter().map(|&h| vec![h]).collect();
    if pairs {
        for (i, &a) in hosts.iter().enumerate() {
            for &b in &hosts[i + 1..] {
                cases.push(vec![a, b]);
            }
        }
    }
    let run = Running::from_world(&l.world);
    let per_case = timeout.filter(|t| t.is_finite() && *t > 0.0).map(Duration::from_secs_f64);
    let mut progress = TermProgress::new();
    deladas::solve::Progress::phase(&mut progress, "what if", &format!("{} failure cases", cases.len()));
    let result = resolve::whatif(program, &run, &hosts, &cases, per_case);
    progress.finish();
    let answers = match result {
        Ok(a) => a,
        Err(e) => {
            emit(&[lower_error(&e, program.root_file)], &l.sources, format);
            return solve_error_exit(&e);
        }
    };
    let names = |c: &[usize]| c.iter().map(|&h| program.hosts[h].name.clone()).collect::<Vec<_>>();
    let name = |c: &[usize]| names(c).join(" + ");
    let mut diags = vec![];
    let mut rows = vec![];
    let mut unknown = false;
    for (case, ans) in cases.iter().zip(&answers) {
        match ans {
            Survival::Survives { kept, surviving } => rows.push(json!({
                "fail": names(case),
                "survives": true, "bindings_kept": kept.value, "bindings_surviving": surviving,
                "optimal": kept.optimal(),
            })),
            Survival::Unknown(r) => {
                unknown = true;
                rows.push(json!({"fail": names(case),
                    "survives": null, "reason": r}));
            }
            Survival::Fatal => {
                rows.push(json!({"fail": names(case),
                    "survives": false}));
                // Explain single points of failure (pairs only when no single host is fatal).
                if case.len() == 1 || !answers.iter().take(hosts.len()).any(|a| *a == Survival::Fatal) {
                    let up: Vec<usize> = hosts.iter().copied().filter(|h| !case.contains(h)).collect();
                    let d = match deladas::solve::explain::explain(program, &up, Duration::from_secs(8)) {
                        Ok(deladas::solve::explain::Explained::Unsatisfiable {
                            conflict,
                            repairs,
                            repairs_complete,
                        }) => {
                            super::explain::explanation(program, &l.sources, &up, &conflict, &repairs, repairs_complete)
                        }
                        _ => Diagnostic::new(Code::Unsatisfiable, "goal is unsatisfiable"),
                    };
                    let what = if case.len() == 1 { "single point of failure" } else { "fatal pair" };
                    diags.push(d.note(format!("{what}: the goal cannot be met if {} fails", name(case))));
                }
            }
        }
    }
    match format {
        DiagFormat::Json => {
            let report = json!({"format": 1, "cases": rows, "diagnostics": serde_json::from_str::<serde_json::Value>(&deladas::diagnostics::render::to_json(&diags, &l.sources)).unwrap_or(serde_json::Value::Null)});
            super::print_out(&format!("{report:#}\n"));
        }
        DiagFormat::Text => {
            let mut out = String::from("what if a host fails:\n");
            for (case, ans) in cases.iter().zip(&answers) {
                let line = match ans {
                    Survival::Survives { kept, surviving } => format!(
                        "  {:<20} survives; the best repair keeps {} of {} bindings{}",
                        name(case),
                        kept.value,
                        surviving,
                        if kept.optimal() { "" } else { " (not proven best: out of time)" }
                    ),
                    Survival::Fatal => format!("  {:<20} FATAL: no configuration without it", name(case)),
                    Survival::Unknown(r) => format!("  {:<20} unknown ({r})", name(case)),
                };
                out.push_str(&line);
                out.push('\n');
            }
            let fatal = answers.iter().filter(|a| **a == Survival::Fatal).count();
            out.push_str(&format!(
                "{} case{}, {} fatal\n",
                cases.len(),
                if cases.len() == 1 { "" } else { "s" },
                fatal
            ));
            super::print_out(&out);
            emit(&diags, &l.sources, format);
        }
    }
    if answers.contains(&Survival::Fatal) {
        EXIT_NO
    } else if unknown {
        EXIT_UNKNOWN
    } else {
        EXIT_OK
    }
}
