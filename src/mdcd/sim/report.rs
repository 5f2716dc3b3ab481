//! The simulator's report (`--report json`): figures per role, overhead
//! against checkpointing on every receipt, and the verdict of the checks of
//! mdcd.md §3.

use std::collections::BTreeMap;

use serde::Serialize;

use super::engine::{External, Payload, RunOutcome, Scenario};
use crate::mdcd::model::Role;
use crate::mdcd::runtime::ProtocolStats;

/// Figures for one role, summed over its processes (memory high-water
/// marks: the largest of any one process).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RoleFigures {
    /// Processes in the role.
    pub processes: u64,
    /// Their counters, summed (high-water marks: the largest of any one
    /// process).
    #[serde(flatten)]
    pub stats: ProtocolStats,
}

/// Protocol overhead against a protocol that checkpoints on every receipt.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overhead {
    /// Application messages received by all processes.
    pub messages: u64,
    /// Checkpoints established (all roles).
    pub checkpoints: u64,
    /// Log entries written (receiver and sender side).
    pub log_entries: u64,
    /// Checkpoints per 1,000 messages.
    pub checkpoints_per_1000: f64,
    /// Log entries per 1,000 messages.
    pub log_entries_per_1000: f64,
    /// The baseline: a checkpoint on every receipt.
    pub baseline_checkpoints_per_1000: f64,
    /// (checkpoints + log entries) / baseline checkpoints.
    pub ratio: f64,
}

/// The checks of mdcd.md §3.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Checks {
    /// The world received, port by port, exactly the reference's messages
    /// in the reference's order.
    pub external_equal: bool,
    /// Whether `external_equal` must hold: AT coverage 1, or no fault.
    pub external_equal_required: bool,
    /// Every rollback was the process's only one in its recovery, to the
    /// smallest-index checkpoint of its own array.
    pub no_cascading_rollback: bool,
    /// After every "passed AT", nothing at or below its counter remained.
    pub reclaimed: bool,
    /// Without a fault: no recovery and no rollback.
    pub fault_free_no_rollback: bool,
    /// Both runs handled every event.
    pub completed: bool,
}

/// The report of one scenario.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Ticks per application.
    pub steps: u64,
    /// The fault's first step, if any.
    pub fault_at: Option<u64>,
    /// The AT's coverage.
    pub at_coverage: f64,
    /// Whether this reports the reference run only.
    pub reference: bool,
    /// The run's last step.
    pub end_step: u64,
    /// External messages the world received.
    pub external_messages: u64,
    /// External messages in the reference run.
    pub reference_external_messages: u64,
    /// Recoveries.
    pub recoveries: u64,
    /// Figures per role (`low`, `shadow`, `active`).
    pub roles: BTreeMap<String, RoleFigures>,
    /// Overhead against checkpointing on every receipt.
    pub overhead: Overhead,
    /// The checks.
    pub checks: Checks,
    /// The first port whose messages differ from the reference, if any.
    pub first_difference: Option<String>,
    /// Every required check holds.
    pub ok: bool,
    /// Nothing reached the world in either run (no external port reports):
    /// `external_equal` then compares two empty sequences and says nothing
    /// about what the protocol protects.
    pub vacuous: bool,
}

type PortKey = (String, String);

/// The world's messages of a run and its reference, compared port by port
/// (instance, external port) as they come: only what one run has sent on a
/// port and the other not yet is kept, so a long run's comparison takes
/// memory bounded by how far the runs drift apart, not by their length.
#[derive(Debug, Default)]
pub struct Comparison {
    ports: BTreeMap<PortKey, PortCmp>,
}

#[derive(Debug, Default)]
struct PortCmp {
    /// Messages one side sent that the other has not yet: `ahead_run` tells which.
    ahead: std::collections::VecDeque<Payload>,
    ahead_run: bool,
    matched: u64,
    run: u64,
    reference: u64,
    first_diff: Option<u64>,
}

impl Comparison {
    /// A message the world received in the run (`from_run`) or in the reference.
    pub fn push(&mut self, from_run: bool, e: External) {
        let pc = self.ports.entry((e.process, e.port)).or_default();
        if from_run {
            pc.run += 1;
        } else {
            pc.reference += 1;
        }
        if pc.ahead.is_empty() || pc.ahead_run == from_run {
            pc.ahead_run = from_run;
            pc.ahead.push_back(e.payload);
            return;
        }
        if let Some(other) = pc.ahead.pop_front() {
            if other != e.payload && pc.first_diff.is_none() {
                pc.first_diff = Some(pc.matched);
            }
            pc.matched += 1;
        }
    }

    /// The first port (in order) whose messages differ from the
    /// reference's, described.
    pub fn first_difference(&self) -> Option<String> {
        self.ports.iter().find_map(|((process, port), pc)| {
            let i = pc.first_diff.or((pc.run != pc.reference).then_some(pc.matched))?;
            Some(format!(
                "{process}.{port}: message {} differs ({} sent, {} in the reference)",
                i + 1,
                pc.run,
                pc.reference
            ))
        })
    }
}

/// Compares a run with the reference run of the same scenario and makes the
/// report. With `run.reference`, reports the reference run alone.
pub fn compare(run: &RunOutcome, reference: &RunOutcome, sc: &Scenario) -> Report {
    let mut cmp = Comparison::default();
    for e in &run.externals {
        cmp.push(true, e.clone());
    }
    for e in &reference.externals {
        cmp.push(false, e.clone());
    }
    report(run, reference, &cmp, sc)
}

/// The report on a run and its reference, whose external messages `cmp`
/// compared.
pub(super) fn report(run: &RunOutcome, reference: &RunOutcome, cmp: &Comparison, sc: &Scenario) -> Report {
    let mut roles: BTreeMap<String, RoleFigures> = BTreeMap::new();
    for r in [Role::Low, Role::Shadow, Role::Active] {
        roles.insert(r.as_str().to_string(), RoleFigures::default());
    }
    for p in &run.processes {
        let f = roles.entry(p.role.as_str().to_string()).or_default();
        f.processes += 1;
        f.stats.absorb(&p.stats);
    }
    let messages: u64 = roles.values().map(|f| f.stats.receipts).sum();
    let checkpoints: u64 = roles.values().map(|f| f.stats.checkpoints).sum();
    let log_entries: u64 = roles.values().map(|f| f.stats.logged + f.stats.sender_logged).sum();
    let per = |x: u64| if messages == 0 { 0.0 } else { x as f64 * 1000.0 / messages as f64 };
    let overhead = Overhead {
        messages,
        checkpoints,
        log_entries,
        checkpoints_per_1000: per(checkpoints),
        log_entries_per_1000: per(log_entries),
        baseline_checkpoints_per_1000: if messages == 0 { 0.0 } else { 1000.0 },
        ratio: if messages == 0 { 0.0 } else { (checkpoints + log_entries) as f64 / messages as f64 },
    };
    let first_difference = cmp.first_difference();
    let rollbacks: u64 = roles.values().map(|f| f.stats.rollbacks).sum();
    let checks = Checks {
        external_equal: first_difference.is_none(),
        external_equal_required: sc.at_coverage >= 1.0 || sc.fault_at.is_none(),
        no_cascading_rollback: run.cascade_violations == 0,
        reclaimed: run.reclaim_violations == 0,
        fault_free_no_rollback: sc.fault_at.is_some() || (run.recoveries == 0 && rollbacks == 0),
        completed: run.completed && reference.completed,
    };
    let ok = (checks.external_equal || !checks.external_equal_required)
        && checks.no_cascading_rollback
        && checks.reclaimed
        && checks.fault_free_no_rollback
        && checks.completed;
    Report {
        seed: sc.seed,
        steps: sc.ticks,
        fault_at: sc.fault_at,
        at_coverage: sc.at_coverage,
        reference: run.reference,
        end_step: run.end_step,
        external_messages: run.external_count,
        reference_external_messages: reference.external_count,
        recoveries: run.recoveries,
        roles,
        overhead,
        checks,
        first_difference,
        ok,
        vacuous: run.external_count == 0 && reference.external_count == 0,
    }
}
