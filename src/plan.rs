//! Migration plans: what changes between a running deployment and a new
//! one, for people (text) and tools (JSON, format 1 of cli.md).
//!
//! ```text
//! let plan = Plan::diff(&old_ddd, &new_ddd, &scenario).with_objective(Objective::of(&resolved));
//! print!("{}", plan.to_text());            // `deladas resolve`
//! println!("{:#}", plan.to_json());        // `--plan-format json`
//! ```
//!
//! A [`Plan`] is plain data (serde), so the manager can store it and a
//! client can read it back; [`Plan::to_json`] is the documented JSON
//! rendering (format 1), [`Plan::to_text`] the one `deladas resolve` prints.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ddd::{Channel, Deployment, Instance};
use crate::solve::resolve::{Level, Resolved, Strategy};

/// An instance in a plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PlanInstance {
    pub id: String,
    pub component: String,
    pub host: String,
}

/// One end of a channel in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PlanEnd {
    pub instance: String,
    pub port: String,
}

/// A channel in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PlanChannel {
    pub from: PlanEnd,
    pub to: PlanEnd,
}

/// An instance stopped, and why: `host failed`, `instance failed`, `no
/// longer needed`, or what takes its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    pub instance: PlanInstance,
    pub reason: String,
}

/// An instance stopped and one of the same component started elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub from: PlanInstance,
    pub to: PlanInstance,
}

/// What happened to the running deployment, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanScenario {
    /// Hosts that failed.
    pub failed_hosts: Vec<String>,
    /// Ids of instances that failed on a live host.
    pub failed_instances: Vec<String>,
    /// Hosts added (new ones and declared ones back in service).
    pub added_hosts: Vec<String>,
    /// The added hosts the goal file does not declare (their declarations
    /// came with the request).
    pub undeclared_hosts: Vec<String>,
}

/// How good the new deployment is, as far as the re-solve proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    pub strategy: Strategy,
    /// (1) bindings kept, (2) channels kept, (3) new instances.
    pub levels: [Level; 3],
    /// Instance bindings that could be kept.
    pub surviving: usize,
    /// Channels that could be kept.
    pub surviving_channels: usize,
}

impl Objective {
    /// The objective a re-solve reached.
    pub fn of(r: &Resolved) -> Objective {
        Objective {
            strategy: r.strategy,
            levels: r.levels,
            surviving: r.surviving,
            surviving_channels: r.surviving_channels,
        }
    }
}

/// The migration plan: what changes between the old and the new deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub scenario: PlanScenario,
    pub kept: Vec<PlanInstance>,
    /// Failed instances restarted in place.
    pub restarted: Vec<PlanInstance>,
    pub stopped: Vec<Stopped>,
    pub started: Vec<PlanInstance>,
    pub moved: Vec<Moved>,
    pub channels_kept: Vec<PlanChannel>,
    pub channels_removed: Vec<PlanChannel>,
    pub channels_added: Vec<PlanChannel>,
    /// Set by a re-solve; `None` for a plain diff.
    pub objective: Option<Objective>,
}

fn pinst(i: &Instance) -> PlanInstance {
    PlanInstance { id: i.id.clone(), component: i.component.clone(), host: i.host.clone() }
}

fn chan_key(c: &Channel) -> PlanChannel {
    PlanChannel {
        from: PlanEnd { instance: c.from.instance.clone(), port: c.from.port.clone() },
        to: PlanEnd { instance: c.to.instance.clone(), port: c.to.port.clone() },
    }
}

impl Plan {
    /// The changes from `old` to `new`: instances kept (same id, component
    /// and host), restarted (kept, but failed), stopped, started, and moved
    /// (a stopped and a started instance of the same component, paired in
    /// order); channels by their (instance, port) ends.
    pub fn diff(old: &Deployment, new: &Deployment, scenario: &PlanScenario) -> Plan {
        let down: HashSet<&str> = scenario.failed_hosts.iter().map(String::as_str).collect();
        let failed: HashSet<&str> = scenario.failed_instances.iter().map(String::as_str).collect();
        let new_ids: HashMap<&str, &Instance> = new.instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let old_ids: HashSet<&str> = old.instances.iter().map(|i| i.id.as_str()).collect();
        let (mut kept, mut restarted, mut stopped) = (vec![], vec![], vec![]);
        for i in &old.instances {
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
                stopped.push(Stopped { instance: pinst(i), reason: why.to_string() });
            }
        }
        let mut started: Vec<PlanInstance> =
            new.instances.iter().filter(|i| !old_ids.contains(i.id.as_str())).map(pinst).collect();
        // A stopped instance and a started one of the same component: a move.
        let mut moved = vec![];
        let mut by_comp: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (k, s) in started.iter().enumerate() {
            by_comp.entry(s.component.clone()).or_default().push(k);
        }
        let mut used = HashSet::new();
        stopped.retain(|s| {
            if let Some(k) =
                by_comp.get_mut(&s.instance.component).and_then(|v| if v.is_empty() { None } else { Some(v.remove(0)) })
            {
                moved.push(Moved { from: s.instance.clone(), to: started[k].clone() });
                used.insert(k);
                false
            } else {
                true
            }
        });
        // Say what took the place of an instance stopped on a live host.
        for st in &mut stopped {
            if st.reason == "no longer needed" {
                if let Some(n) =
                    new.instances.iter().find(|n| n.host == st.instance.host && !old_ids.contains(n.id.as_str()))
                {
                    st.reason = format!("{} takes its place on {}", n.id, n.host);
                }
            }
        }
        let mut k = 0;
        started.retain(|_| {
            k += 1;
            !used.contains(&(k - 1))
        });
        let old_chans: Vec<PlanChannel> = old.channels.iter().map(chan_key).collect();
        let new_chans: Vec<PlanChannel> = new.channels.iter().map(chan_key).collect();
        let new_set: HashSet<&PlanChannel> = new_chans.iter().collect();
        let old_set: HashSet<&PlanChannel> = old_chans.iter().collect();
        Plan {
            scenario: scenario.clone(),
            kept,
            restarted,
            stopped,
            started,
            moved,
            channels_kept: old_chans.iter().filter(|c| new_set.contains(c)).cloned().collect(),
            channels_removed: old_chans.iter().filter(|c| !new_set.contains(c)).cloned().collect(),
            channels_added: new_chans.iter().filter(|c| !old_set.contains(c)).cloned().collect(),
            objective: None,
        }
    }

    /// The plan with the objective a re-solve reached.
    pub fn with_objective(mut self, objective: Objective) -> Plan {
        self.objective = Some(objective);
        self
    }

    /// What the objective says about optimality, one line each.
    pub fn optimality(&self) -> Vec<String> {
        let Some(o) = &self.objective else { return vec![] };
        let [b, c, n] = o.levels;
        let mut out = vec![];
        if o.strategy == Strategy::Progressive {
            out.push(
                "strategy progressive: pins dropped in deployment order until a configuration existed; not optimised"
                    .to_string(),
            );
            return out;
        }
        out.push(if b.optimal() {
            format!(
                "optimal: no configuration keeps more than {} of the {} surviving instance bindings",
                b.value, o.surviving
            )
        } else {
            format!(
                "not proven optimal: keeps {} of {} surviving bindings; at most {} can be kept (the solver ran out of time)",
                b.value, o.surviving, b.bound
            )
        });
        out.push(if c.optimal() {
            format!(
                "keeping those, no configuration keeps more than {} of the {} surviving channels",
                c.value, o.surviving_channels
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

    /// The plan for people (what `deladas resolve` prints).
    pub fn to_text(&self) -> String {
        let sc = &self.scenario;
        let mut s = String::new();
        let mut what = vec![];
        if !sc.failed_hosts.is_empty() {
            what.push(format!("failed: {}", sc.failed_hosts.join(", ")));
        }
        if !sc.added_hosts.is_empty() {
            what.push(format!("added: {}", sc.added_hosts.join(", ")));
        }
        s.push_str(&format!(
            "migration plan{}\n",
            if what.is_empty() { String::new() } else { format!(" ({})", what.join("; ")) }
        ));
        let inst = |i: &PlanInstance| format!("{} on {}", i.id, i.host);
        for i in &self.kept {
            s.push_str(&format!("  keep      {}\n", inst(i)));
        }
        for i in &self.restarted {
            s.push_str(&format!("  restart   {}   (instance failed; restarted in place)\n", inst(i)));
        }
        for st in &self.stopped {
            s.push_str(&format!("  stop      {}   ({})\n", inst(&st.instance), st.reason));
        }
        for m in &self.moved {
            s.push_str(&format!("  move      {} on {} -> {} on {}\n", m.from.id, m.from.host, m.to.id, m.to.host));
        }
        for i in &self.started {
            s.push_str(&format!("  start     {}\n", inst(i)));
        }
        let ch = |c: &PlanChannel| format!("{}.{} -- {}.{}", c.from.instance, c.from.port, c.to.instance, c.to.port);
        for c in &self.channels_removed {
            s.push_str(&format!("  unwire    {}\n", ch(c)));
        }
        for c in &self.channels_added {
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
            self.channels_kept.len(),
            self.channels_removed.len(),
            self.channels_added.len()
        ));
        for line in self.optimality() {
            s.push_str(&line);
            s.push('\n');
        }
        if !sc.undeclared_hosts.is_empty() {
            let names: Vec<&str> = sc.undeclared_hosts.iter().map(|h| h.as_str()).collect();
            s.push_str(&format!(
                "note: the goal file does not declare {}: add {} to it before using the new DDD with `deladas verify` or `deladas resolve`\n",
                names.join(", "),
                if names.len() == 1 { "its declaration" } else { "their declarations" }
            ));
        }
        s
    }

    /// The plan for tools: the JSON object of cli.md (format 1).
    pub fn to_json(&self) -> serde_json::Value {
        let inst = |i: &PlanInstance| json!({"id": i.id, "component": i.component, "host": i.host});
        let ch = |c: &PlanChannel| json!({"from": {"instance": c.from.instance, "port": c.from.port}, "to": {"instance": c.to.instance, "port": c.to.port}});
        let level = |l: &Level| json!({"value": l.value, "bound": l.bound, "optimal": l.optimal()});
        let mut v = json!({
            "format": 1,
            "failed_hosts": self.scenario.failed_hosts,
            "added_hosts": self.scenario.added_hosts,
            "instances": {
                "kept": self.kept.iter().map(inst).collect::<Vec<_>>(),
                "restarted": self.restarted.iter().map(inst).collect::<Vec<_>>(),
                "stopped": self.stopped.iter().map(|s| {
                    let mut v = inst(&s.instance);
                    v["reason"] = json!(s.reason);
                    v
                }).collect::<Vec<_>>(),
                "started": self.started.iter().map(inst).collect::<Vec<_>>(),
                "moved": self.moved.iter().map(|m| json!({"from": inst(&m.from), "to": inst(&m.to)})).collect::<Vec<_>>(),
            },
            "channels": {
                "kept": self.channels_kept.iter().map(ch).collect::<Vec<_>>(),
                "removed": self.channels_removed.iter().map(ch).collect::<Vec<_>>(),
                "added": self.channels_added.iter().map(ch).collect::<Vec<_>>(),
            },
            "counts": {
                "instances_kept": self.kept.len(),
                "instances_restarted": self.restarted.len(),
                "instances_stopped": self.stopped.len(),
                "instances_started": self.started.len(),
                "instances_moved": self.moved.len(),
                "channels_kept": self.channels_kept.len(),
                "channels_removed": self.channels_removed.len(),
                "channels_added": self.channels_added.len(),
            },
        });
        if let Some(o) = &self.objective {
            v["strategy"] = json!(match o.strategy {
                Strategy::Optimal => "optimal",
                Strategy::Progressive => "progressive",
            });
            v["objective"] = json!({
                "surviving_bindings": o.surviving,
                "surviving_channels": o.surviving_channels,
                "bindings_kept": level(&o.levels[0]),
                "channels_kept": level(&o.levels[1]),
                "new_instances": level(&o.levels[2]),
            });
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddd;

    fn inst(id: &str, c: &str, h: &str) -> ddd::Instance {
        ddd::Instance { id: id.into(), component: c.into(), host: h.into() }
    }

    /// A failed host's instance moves; a failed instance restarts; the
    /// JSON rendering round-trips through serde.
    #[test]
    fn diff_of_two_deployments() {
        let instances = vec![inst("A@h1", "A", "h1"), inst("B@h2", "B", "h2"), inst("C@h2", "C", "h2")];
        let old = Deployment { instances, ..Default::default() };
        let instances = vec![inst("A@h3", "A", "h3"), inst("B@h2", "B", "h2"), inst("C@h2", "C", "h2")];
        let new = Deployment { instances, ..Default::default() };
        let sc = PlanScenario {
            failed_hosts: vec!["h1".into()],
            failed_instances: vec!["C@h2".into()],
            ..Default::default()
        };
        let plan = Plan::diff(&old, &new, &sc);
        assert_eq!(plan.kept, vec![inst_p("B@h2", "B", "h2")]);
        assert_eq!(plan.restarted, vec![inst_p("C@h2", "C", "h2")]);
        assert_eq!(plan.moved.len(), 1);
        assert!(plan.to_text().contains("  move      A@h1 on h1 -> A@h3 on h3\n"), "{}", plan.to_text());
        assert_eq!(plan.to_json()["counts"]["instances_moved"], 1);
        let back: Plan = serde_json::from_str(&serde_json::to_string(&plan).expect("serialises")).expect("reads");
        assert_eq!(back, plan);
    }

    fn inst_p(id: &str, c: &str, h: &str) -> PlanInstance {
        PlanInstance { id: id.into(), component: c.into(), host: h.into() }
    }
}
