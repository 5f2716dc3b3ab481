//! What `solve` says about objectives and preferences (issue 19): one note
//! per level on stderr (the value, and whether it is proven optimal or only
//! the best found with the proven bound), a W0801 warning per broken
//! preference pointing at it with the clauses, objectives and other
//! preferences that forced it, and the same facts as JSON beside the DDD.

use deladas::check::ir::{Program, Sense};
use deladas::diagnostics::{Code, Diagnostic, Sources};
use deladas::lower::bounds::Resource;
use deladas::lower::objective::LevelSource;
use deladas::lower::Ground;
use deladas::solve::optimize::{describe_binding, Report};
use deladas::solve::Solution;

fn snippet(sources: &Sources, program: &Program, loc: deladas::check::ir::Loc) -> String {
    let text = sources.text(loc.file).get(loc.span.range()).unwrap_or("").trim();
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let _ = program;
    if one_line.chars().count() > 90 {
        format!("{}…", one_line.chars().take(89).collect::<String>())
    } else {
        one_line
    }
}

fn level_name(sources: &Sources, program: &Program, source: LevelSource) -> String {
    match source {
        LevelSource::Objective(i) => {
            let o = &program.objectives[i];
            snippet(sources, program, o.loc)
        }
        LevelSource::Preferences => "the total weight of broken preferences".to_string(),
    }
}

fn resource_text(program: &Program, r: &Resource) -> String {
    match *r {
        Resource::PortCapacity(c, p) => {
            format!("the capacity of port `{}.{}`", program.components[c].name, program.components[c].ports[p].name)
        }
        Resource::MaxInstances(c) => format!("`maxinstances` of `{}`", program.components[c].name),
        Resource::Placement(c) => format!("`maxperhost` of `{}` on the available hosts", program.components[c].name),
    }
}

/// The stderr notes for the levels of the first configuration.
pub(super) fn notes(sources: &Sources, program: &Program, report: &Report) -> Vec<String> {
    let mut out = vec![];
    for l in &report.levels {
        let name = level_name(sources, program, l.source);
        let sense = match l.source {
            LevelSource::Objective(i) => program.objectives[i].sense,
            LevelSource::Preferences => Sense::Minimize,
        };
        if l.proven {
            out.push(format!("note: optimum proven: {name} = {}", l.value));
        } else {
            let rel = if sense == Sense::Minimize { "at least" } else { "at most" };
            out.push(format!(
                "note: best found, not proven optimal: {name} = {} (proven only: {rel} {}; the limit stopped the search)",
                l.value, l.bound
            ));
        }
    }
    if report.values.len() > 1 {
        let rows: Vec<String> = report
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{}: {}", i + 1, v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")))
            .collect();
        out.push(format!("note: values per configuration, best first: {}", rows.join("; ")));
    }
    out
}

/// A W0801 warning per broken preference of the first configuration.
pub(super) fn broken(program: &Program, ground: &Ground, sol: &Solution, report: &Report) -> Vec<Diagnostic> {
    let mut out = vec![];
    for b in &report.broken {
        let pref = &program.preferences[b.pref];
        let bind = describe_binding(program, ground, sol, &b.binding);
        let for_ = if bind.is_empty() { String::new() } else { format!(" for {bind}") };
        let mut d = Diagnostic::new(Code::PreferenceBroken, format!("preference broken{for_} (weight {})", b.weight))
            .primary(pref.loc.file, pref.loc.span, format!("broken{for_}"));
        let why = &b.why;
        for &c in &why.clauses {
            let cl = &program.clauses[c];
            d = d.secondary(cl.origin.loc.file, cl.origin.loc.span, "it cannot hold together with this clause");
        }
        for &o in &why.objectives {
            let ob = &program.objectives[o];
            d = d.secondary(ob.loc.file, ob.loc.span, "…with this objective at its optimum (it ranks higher)");
        }
        for (p, kept) in &why.kept {
            let other = &program.preferences[*p];
            let kb = describe_binding(program, ground, sol, kept);
            let k = if kb.is_empty() { String::new() } else { format!(" for {kb}") };
            d = d.secondary(other.loc.file, other.loc.span, format!("…with this preference, kept{k}"));
        }
        for r in &why.resources {
            d = d.note(format!("the conflict needs {}", resource_text(program, r)));
        }
        if why.unknown {
            d = d.note("no reason found before the limit was reached");
        } else if why.clauses.is_empty() && why.objectives.is_empty() && why.kept.is_empty() {
            d = d.note("it holds in no configuration of the available hosts");
        } else if !why.kept.is_empty() {
            d = d.note("keeping it would break preferences of at least the same total weight");
        }
        out.push(d);
    }
    if report.unexplained > 0 {
        out.push(
            Diagnostic::new(
                Code::PreferenceBroken,
                format!("{} more preference binding(s) broken, not explained", report.unexplained),
            )
            .note(format!("at most {} broken preferences are explained", deladas::solve::optimize::MAX_EXPLAINED)),
        );
    }
    out
}

/// The optimisation as JSON, for `--format json`.
pub(super) fn json(
    sources: &Sources,
    program: &Program,
    ground: &Ground,
    sol: &Solution,
    report: &Report,
    index: usize,
) -> serde_json::Value {
    let levels: Vec<serde_json::Value> = report
        .levels
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let (kind, sense) = match l.source {
                LevelSource::Objective(i) => ("objective", program.objectives[i].sense.word()),
                LevelSource::Preferences => ("preferences", "minimize"),
            };
            let value = report.values.get(index).and_then(|v| v.get(k)).copied().unwrap_or(l.value);
            serde_json::json!({
                "kind": kind,
                "sense": sense,
                "term": level_name(sources, program, l.source),
                "value": value,
                "bound": l.bound,
                "proven": index == 0 && l.proven,
            })
        })
        .collect();
    let broken: Vec<serde_json::Value> = if index == 0 {
        report
            .broken
            .iter()
            .map(|b| {
                let pref = &program.preferences[b.pref];
                serde_json::json!({
                    "preference": snippet(sources, program, pref.loc),
                    "file": sources.name_of(pref.loc.file),
                    "start": pref.loc.span.start,
                    "end": pref.loc.span.end,
                    "weight": b.weight,
                    "binding": describe_binding(program, ground, sol, &b.binding),
                    "because": {
                        "clauses": b.why.clauses.iter().map(|&c| snippet(sources, program, program.clauses[c].origin.loc)).collect::<Vec<_>>(),
                        "objectives": b.why.objectives.iter().map(|&o| snippet(sources, program, program.objectives[o].loc)).collect::<Vec<_>>(),
                        "preferences": b.why.kept.iter().map(|(p, kb)| serde_json::json!({
                            "preference": snippet(sources, program, program.preferences[*p].loc),
                            "binding": describe_binding(program, ground, sol, kb),
                        })).collect::<Vec<_>>(),
                        "resources": b.why.resources.iter().map(|r| resource_text(program, r)).collect::<Vec<_>>(),
                        "unknown": b.why.unknown,
                    },
                })
            })
            .collect()
    } else {
        vec![]
    };
    serde_json::json!({ "proven": index == 0 && report.proven(), "levels": levels, "broken": broken })
}
