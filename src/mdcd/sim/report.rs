//! The simulator's report (`--report json`): figures per role, overhead
//! against checkpointing on every receipt, and the verdict of the checks of
//! mdcd.md §3.

use std::collections::BTreeMap;

use serde::Serialize;

use super::engine::{External, RunOutcome, Scenario};
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

fn by_port(ext: &[External]) -> BTreeMap<PortKey, Vec<&super::engine::Payload>> {
    let mut m: BTreeMap<PortKey, Vec<&super::engine::Payload>> = BTreeMap::new();
    for e in ext {
        m.entry((e.process.clone(), e.port.clone())).or_default().push(&e.payload);
    }
    m
}

/// Compares a run with the reference run of the same scenario and makes the
/// report. With `run.reference`, reports the reference run alone.
pub fn compare(run: &RunOutcome, reference: &RunOutcome, sc: &Scenario) -> Report {
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
    let (a, b) = (by_port(&run.externals), by_port(&reference.externals));
    let mut first_difference = None;
    for key in a.keys().chain(b.keys()) {
        let (x, y) = (a.get(key), b.get(key));
        if x != y {
            let (x, y) = (x.map_or(&[][..], |v| &v[..]), y.map_or(&[][..], |v| &v[..]));
            let i = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
            first_difference = Some(format!(
                "{}.{}: message {} differs ({} sent, {} in the reference)",
                key.0,
                key.1,
                i + 1,
                x.len(),
                y.len()
            ));
            break;
        }
    }
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
        external_messages: run.externals.len() as u64,
        reference_external_messages: reference.externals.len() as u64,
        recoveries: run.recoveries,
        roles,
        overhead,
        checks,
        first_difference,
        ok,
        vacuous: run.externals.is_empty() && reference.externals.is_empty(),
    }
}
