//! `deladas explain`, and the explanation `solve` prints on unsat: a minimal
//! conflict rendered as one "goal is unsatisfiable" diagnostic, with repair hints.

use super::{emit, load_checked, lower_error, DiagFormat, EXIT_BAD_INPUT, EXIT_NO, EXIT_OK, EXIT_UNKNOWN};
use crate::diagnostics::{Diagnostic, Sources};

pub(super) fn cmd_explain(file: &std::path::Path, format: DiagFormat, timeout: f64) -> i32 {
    let (sources, checked) = match load_checked(file, format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let budget = std::time::Duration::from_secs_f64(if timeout.is_finite() && timeout > 0.0 { timeout } else { 20.0 });
    explain_and_emit(&checked.program, &sources, format, budget)
}

/// Explains the goal and prints the explanation; returns the exit code.
pub(super) fn explain_and_emit(
    program: &crate::check::ir::Program,
    sources: &Sources,
    format: DiagFormat,
    budget: std::time::Duration,
) -> i32 {
    use crate::solve::explain::{explain, Explained};
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    match explain(program, &available, budget) {
        Err(e) => {
            emit(&[lower_error(&e, program.root_file)], sources, format);
            EXIT_BAD_INPUT
        }
        Ok(Explained::Satisfiable) => {
            match format {
                DiagFormat::Text => {
                    eprintln!("the goal is satisfiable: nothing to explain (`deladas solve` finds a configuration)")
                }
                DiagFormat::Json => println!("[]"),
            }
            EXIT_OK
        }
        Ok(Explained::Unknown(reason)) => {
            let d =
                Diagnostic::new(crate::diagnostics::Code::SolverGaveUp, format!("could not decide the goal: {reason}"))
                    .help("a longer `--timeout` may help");
            emit(&[d], sources, format);
            EXIT_UNKNOWN
        }
        Ok(Explained::Unsatisfiable { conflict, repairs, repairs_complete }) => {
            let d = explanation(program, sources, &available, &conflict, &repairs, repairs_complete);
            emit(&[d], sources, format);
            EXIT_NO
        }
    }
}

/// Renders a conflict as one "goal is unsatisfiable" diagnostic.
pub(crate) fn explanation(
    program: &crate::check::ir::Program,
    sources: &Sources,
    available: &[usize],
    conflict: &crate::solve::explain::Conflict,
    repairs: &[crate::solve::explain::Repair],
    repairs_complete: bool,
) -> Diagnostic {
    use crate::lower::bounds::{Reason, Resource};
    use crate::solve::explain::Repair;
    let mut d = Diagnostic::new(crate::diagnostics::Code::Unsatisfiable, "goal is unsatisfiable");
    let line_of = |c: usize| {
        let o = &program.clauses[c].origin;
        let l = o.use_site.unwrap_or(o.loc);
        sources.line_col(l.file, l.span.start as usize).0
    };
    for &i in &conflict.clauses {
        let c = &program.clauses[i];
        let text = if conflict.statically_false {
            "this clause is false in every configuration".to_string()
        } else if conflict.clauses.len() == 1 {
            "this clause cannot hold with the resources".to_string()
        } else {
            "this clause conflicts with the other labelled ones".to_string()
        };
        match c.origin.use_site {
            Some(u) => {
                d = d
                    .primary(u.file, u.span, format!("through this use of `{}`: {text}", c.origin.constraintset))
                    .secondary(c.origin.loc.file, c.origin.loc.span, "the pattern's clause")
            }
            None => d = d.primary(c.origin.loc.file, c.origin.loc.span, text),
        }
    }
    for r in &conflict.resources {
        match *r {
            Resource::PortCapacity(c, p) => {
                let port = &program.components[c].ports[p];
                let cap = port.capacity.unwrap_or(0);
                let what = if cap == 1 { "at most one channel".to_string() } else { format!("at most {cap} channels") };
                d = d.secondary(port.loc.file, port.loc.span, format!("port `{}` holds {what}", port.name));
            }
            Resource::MaxInstances(c) => {
                let comp = &program.components[c];
                d = d.secondary(
                    comp.loc.file,
                    comp.loc.span,
                    format!("at most {} `{}` instances (`maxinstances`)", comp.maxinstances.unwrap_or(0), comp.name),
                );
            }
            Resource::Placement(c) => {
                let comp = &program.components[c];
                d = d.secondary(
                    comp.loc.file,
                    comp.loc.span,
                    format!(
                        "at most {} per host on {} host{}",
                        comp.maxperhost,
                        available.len(),
                        if available.len() == 1 { "" } else { "s" }
                    ),
                );
            }
        }
    }
    let uses_hosts = conflict.resources.iter().any(|r| matches!(r, Resource::Placement(_)))
        || conflict.facts.iter().any(|f| matches!(f.reason, Reason::HostSum(_)));
    if available.is_empty() {
        d = d.note("no host is available: the goal declares none");
    } else if uses_hosts || conflict.facts.is_empty() {
        let names: Vec<String> = available.iter().take(6).map(|&h| format!("`{}`", program.hosts[h].name)).collect();
        let more = if available.len() > 6 { format!(", … ({} in all)", available.len()) } else { String::new() };
        d = d.note(format!(
            "{} host{} available: {}{more}",
            available.len(),
            if available.len() == 1 { " is" } else { "s are" },
            names.join(", ")
        ));
    }
    if !conflict.facts.is_empty() {
        let mut lines = vec!["by counting instances (#C is the number of instances of C):".to_string()];
        for f in &conflict.facts {
            let why = match &f.reason {
                Reason::HostSum(n) => {
                    format!(
                        "the clause at line {} summed over the {n} hosts",
                        f.from.first().map(|&c| line_of(c)).unwrap_or(0)
                    )
                }
                Reason::Written => format!("the clause at line {}", f.from.first().map(|&c| line_of(c)).unwrap_or(0)),
                Reason::Capacity => {
                    let ls: Vec<String> = f.from.iter().map(|&c| line_of(c).to_string()).collect();
                    format!(
                        "every instance needs a channel to one that takes a bounded number (line{} {})",
                        if ls.len() == 1 { "" } else { "s" },
                        ls.join(" and ")
                    )
                }
                Reason::Placement => "maxperhost times the hosts, or maxinstances".to_string(),
            };
            lines.push(format!("  {}   ({why})", f.describe(program)));
        }
        lines.push("these cannot all hold at once".to_string());
        d = d.note(lines.join("\n"));
    }
    if !conflict.minimal {
        d = d.note("some checks ran out of time: the labelled set may not be minimal");
    }
    if !repairs.is_empty() && !repairs_complete {
        d = d.note("some repairs could not be decided within the time bound (2 s per variant, 6 s in all)");
    }
    for r in repairs {
        let text = match r {
            Repair::DropClause(c) => match program.clauses[*c].origin.use_site {
                Some(_) => format!(
                    "dropping the `use` of `{}` at line {} makes the goal satisfiable",
                    program.clauses[*c].origin.constraintset,
                    line_of(*c)
                ),
                None => format!(
                    "dropping the clause at line {} (constraintset `{}`) makes the goal satisfiable",
                    line_of(*c),
                    program.clauses[*c].origin.constraintset
                ),
            },
            Repair::AddHosts { like, count } => {
                if *count == 1 {
                    format!("adding one more host like `{}` makes this goal satisfiable", program.hosts[*like].name)
                } else {
                    format!(
                        "adding {count} more hosts like `{}` makes this goal satisfiable (fewer do not)",
                        program.hosts[*like].name
                    )
                }
            }
            Repair::RaiseCapacity(c, p) => {
                let port = &program.components[*c].ports[*p];
                let now = port.capacity.unwrap_or(0);
                format!(
                    "letting port `{}` of `{}` hold {} channels (`{}[{}]`) makes this goal satisfiable",
                    port.name,
                    program.components[*c].name,
                    now + 1,
                    port.name,
                    now + 1
                )
            }
            Repair::RaiseMaxPerHost(c) => {
                let comp = &program.components[*c];
                format!("`maxperhost = {}` on `{}` makes this goal satisfiable", comp.maxperhost + 1, comp.name)
            }
            Repair::RaiseMaxInstances(c) => {
                let comp = &program.components[*c];
                format!(
                    "`maxinstances = {}` on `{}` makes this goal satisfiable",
                    comp.maxinstances.unwrap_or(0) + 1,
                    comp.name
                )
            }
        };
        d = d.help(text);
    }
    if repairs.is_empty() {
        d = d.note(if repairs_complete {
            "no single clause dropped, resource raised, or number of added hosts repairs it".to_string()
        } else {
            "no repair found within the time bound (2 s per variant, 6 s in all)".to_string()
        });
    }
    d
}
