//! The brute-force optimum of the property tests (`tests/optimize_props.rs`,
//! `tests/instances_props.rs`): every count of instances per (component,
//! host) up to `maxperhost`, judged by the evaluator.

use deladas::check::ir::Program;
use deladas::eval::objective::levels;
use deladas::eval::{is_solution, Inst, World};

/// The lexicographically best level vector over every configuration (an
/// empty vector without objectives), by enumeration.
pub fn brute_best(p: &Program) -> Option<Vec<i64>> {
    let slots: Vec<(usize, usize, u32)> = (0..p.hosts.len())
        .flat_map(|h| p.components.iter().enumerate().map(move |(c, comp)| (c, h, comp.maxperhost)))
        .collect();
    let mut counts = vec![0u32; slots.len()];
    let mut best: Option<Vec<i64>> = None;
    loop {
        let mut instances = vec![];
        for (i, &(c, h, _)) in slots.iter().enumerate() {
            for k in 0..counts[i] {
                instances.push(Inst { comp: c, host: h, id: p.instance_id(c, h, Some(k + 1)) });
            }
        }
        let world = World { hosts: (0..p.hosts.len()).collect(), instances, channels: vec![] };
        if is_solution(p, &world) {
            let v = levels(p, &world).expect("levels evaluate");
            if best.as_ref().is_none_or(|b| v < *b) {
                best = Some(v);
            }
        }
        let mut i = 0;
        loop {
            if i == slots.len() {
                return best;
            }
            if counts[i] < slots[i].2 {
                counts[i] += 1;
                break;
            }
            counts[i] = 0;
            i += 1;
        }
    }
}
