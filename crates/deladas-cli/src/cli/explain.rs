//! `deladas explain`, and the explanation `solve` prints on unsat: a minimal
//! conflict rendered as one "goal is unsatisfiable" diagnostic, with repair hints.

use super::{emit, load_checked, DiagFormat, EXIT_BAD_INPUT, EXIT_NO, EXIT_OK, EXIT_UNKNOWN};
use deladas::diagnostics::{Diagnostic, Sources};

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
    program: &deladas::check::ir::Program,
    sources: &Sources,
    format: DiagFormat,
    budget: std::time::Duration,
) -> i32 {
    use deladas::solve::explain::{explain, Explained};
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    match explain(program, &available, budget) {
        Err(e) => {
            emit(&[e.to_diagnostic(program.root_file)], sources, format);
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
            let d = Diagnostic::new(
                deladas::diagnostics::Code::SolverGaveUp,
                format!("could not decide the goal: {reason}"),
            )
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

/// The name of the constraintset a `use` at `u` uses, read from the source.
fn use_name(sources: &Sources, u: deladas::check::ir::Loc) -> Option<String> {
    let text = sources.text(u.file).get(u.span.start as usize..u.span.end as usize)?;
    let rest = text.strip_prefix("use")?.trim_start();
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        one.to_string()
    } else {
        many.to_string()
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Renders a conflict as one "goal is unsatisfiable" diagnostic.
pub(crate) fn explanation(
    program: &deladas::check::ir::Program,
    sources: &Sources,
    available: &[usize],
    conflict: &deladas::solve::explain::Conflict,
    repairs: &[deladas::solve::explain::Repair],
    repairs_complete: bool,
) -> Diagnostic {
    use deladas::check::ir::{Direction, Loc};
    use deladas::lower::bounds::{Reason, Resource};
    use deladas::solve::explain::{pieces_of, Observation, Piece, Repair, REPAIR_TOTAL, REPAIR_VARIANT};
    let mut d = Diagnostic::new(deladas::diagnostics::Code::Unsatisfiable, "goal is unsatisfiable");
    let line = |l: Loc| sources.line_col(l.file, l.span.start as usize).0;
    // Where the user sees a piece: the `use` it came through, or the piece.
    let anchor = |p: &Piece| program.clauses[p.clause].origin.use_site.or(p.via_use).unwrap_or(p.loc);
    let clause_line = |c: usize| {
        let o = &program.clauses[c].origin;
        line(o.use_site.unwrap_or(o.loc))
    };
    let n_pieces = conflict.pieces.len();
    let has_res = !conflict.resources.is_empty();
    // What a label says about `n` pieces, `subject` being "this clause" etc.
    let says = |subject: &str, n: usize| -> String {
        let (is, conflicts) = if n == 1 { ("is", "conflicts") } else { ("are", "conflict") };
        if conflict.statically_false {
            format!("{subject} {is} false in every configuration")
        } else if n == n_pieces && n == 1 {
            if has_res {
                format!("{subject} cannot hold with the resources")
            } else {
                format!("{subject} cannot hold on the available hosts")
            }
        } else if n == n_pieces {
            format!("{subject} {conflicts} with each other{}", if has_res { " and the resources" } else { "" })
        } else {
            format!("{subject} {conflicts} with the other labelled ones")
        }
    };
    // Clauses in conflict order; those through one `use` share its label.
    let mut use_groups: Vec<(Loc, Vec<(Loc, &'static str)>)> = vec![];
    let mut plain: Vec<(usize, Vec<&Piece>)> = vec![];
    let mut order: Vec<(bool, usize)> = vec![];
    for &c in &conflict.clauses {
        let ps: Vec<&Piece> = conflict.pieces.iter().filter(|p| p.clause == c).collect();
        let origin = &program.clauses[c].origin;
        let all_parts = ps.len() == 1 && ps[0].whole || ps.len() == pieces_of(program, c).len();
        match origin.use_site.or(ps.iter().find_map(|p| p.via_use)) {
            Some(u) => {
                let k = match use_groups.iter().position(|(l, _)| *l == u) {
                    Some(k) => k,
                    None => {
                        use_groups.push((u, vec![]));
                        order.push((true, use_groups.len() - 1));
                        use_groups.len() - 1
                    }
                };
                for p in &ps {
                    let label = if origin.use_site.is_some() && p.via_use.is_none() && (p.whole || all_parts) {
                        (origin.loc, "the pattern's clause")
                    } else if origin.use_site.is_some() && p.via_use.is_none() {
                        (p.loc, "this part of the pattern's clause")
                    } else {
                        (p.loc, "the pattern's clause")
                    };
                    if !use_groups[k].1.contains(&label) {
                        use_groups[k].1.push(label);
                    }
                }
            }
            None => {
                plain.push((c, if all_parts { vec![] } else { ps }));
                order.push((false, plain.len() - 1));
            }
        }
    }
    for (is_use, k) in order {
        if is_use {
            let (u, pattern_labels) = &use_groups[k];
            let name = use_name(sources, *u).unwrap_or_else(|| "a pattern".into());
            let n = pattern_labels.len().max(1);
            let subject = format!("through this use of `{name}`: {}", plural(n, "its clause", "its clauses"));
            d = d.primary(u.file, u.span, says(&subject, n));
            for (l, m) in pattern_labels {
                d = d.secondary(l.file, l.span, *m);
            }
        } else {
            let (c, parts) = &plain[k];
            let o = &program.clauses[*c].origin;
            if parts.is_empty() {
                d = d.primary(o.loc.file, o.loc.span, says("this clause", 1));
            } else {
                for p in parts {
                    d = d.primary(p.loc.file, p.loc.span, says("this part", 1));
                }
                d = d.secondary(o.loc.file, o.loc.span, "in this clause; its other parts are not needed");
            }
        }
    }
    let hosts_phrase =
        |n: usize| if n == 0 { "no host".to_string() } else { format!("{n} {}", plural(n, "host", "hosts")) };
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
                let m = comp.maxinstances.unwrap_or(0);
                d = d.secondary(
                    comp.loc.file,
                    comp.loc.span,
                    format!(
                        "at most {m} {} of `{}` (`maxinstances = {m}`)",
                        plural(m as usize, "instance", "instances"),
                        comp.name
                    ),
                );
            }
            Resource::Placement(c) => {
                let comp = &program.components[c];
                let text = if available.is_empty() {
                    "no host to place it on".to_string()
                } else {
                    format!("at most {} per host on {}", comp.maxperhost, hosts_phrase(available.len()))
                };
                d = d.secondary(comp.loc.file, comp.loc.span, text);
            }
        }
    }
    let uses_hosts = conflict.resources.iter().any(|r| matches!(r, Resource::Placement(_)))
        || conflict.facts.iter().any(|f| matches!(f.reason, Reason::HostSum(_)));
    if available.is_empty() {
        d = d.note(if program.hosts.is_empty() {
            "no host is available: the goal declares none"
        } else {
            "no host is available"
        });
    } else if uses_hosts || conflict.facts.is_empty() || conflict.hosts_needed.is_some() {
        let names: Vec<String> = available.iter().take(6).map(|&h| format!("`{}`", program.hosts[h].name)).collect();
        let more = if available.len() > 6 { format!(", … ({} in all)", available.len()) } else { String::new() };
        let needed = match conflict.hosts_needed {
            Some(n) => format!("; the goal needs at least {n} hosts like them"),
            None => String::new(),
        };
        d = d.note(format!(
            "{} {} available: {}{more}{needed}",
            available.len(),
            plural(available.len(), "host is", "hosts are"),
            names.join(", ")
        ));
    }
    let piece_line = |i: usize| conflict.pieces.get(i).map(|p| line(anchor(p))).unwrap_or(0);
    // "the clause at line N", or "the part at line N" for a part of one.
    let piece_at = |i: usize| {
        let what = match conflict.pieces.get(i) {
            Some(p) if !p.whole && p.via_use.is_none() && program.clauses[p.clause].origin.use_site.is_none() => "part",
            _ => "clause",
        };
        format!("the {what} at line {}", piece_line(i))
    };
    let comp_name = |c: usize| format!("`{}`", program.components[c].name);
    if !conflict.facts.is_empty() {
        let mut lines = vec!["by counting instances (#C is the number of instances of C):".to_string()];
        for f in &conflict.facts {
            let first = f.from.first().map(|&i| piece_line(i)).unwrap_or(0);
            let first_at = f.from.first().map(|&i| piece_at(i)).unwrap_or_default();
            let why = match &f.reason {
                Reason::HostSum(n) => format!("{first_at} summed over the {n} hosts"),
                Reason::Written => first_at,
                Reason::Capacity => {
                    let a = f.terms.iter().find(|t| t.1 > 0).map(|t| t.0);
                    let b = f.terms.iter().find(|t| t.1 < 0).map(|t| (t.0, -t.1));
                    match (a, b) {
                        (Some(a), Some((b, k))) => {
                            let (an, bn) = (comp_name(a), comp_name(b));
                            let port = f.resources.iter().find_map(|r| match r {
                                Resource::PortCapacity(c, p) => Some(&program.components[*c].ports[*p].name),
                                _ => None,
                            });
                            match port {
                                Some(port) => format!(
                                    "every {an} needs a channel to a {bn} (line {first}), and port `{port}` of {bn} holds at most {k}"
                                ),
                                None => format!(
                                    "every {an} needs a channel to a {bn} (line {first}), and each {bn} is connected to at most {k} (line {})",
                                    f.from.get(1).map(|&i| piece_line(i)).unwrap_or(first)
                                ),
                            }
                        }
                        _ => "every instance needs a channel to one that takes a bounded number".to_string(),
                    }
                }
                Reason::Placement => match f.resources.first() {
                    Some(Resource::MaxInstances(c)) => {
                        format!(
                            "`maxinstances = {}` on {}",
                            program.components[*c].maxinstances.unwrap_or(0),
                            comp_name(*c)
                        )
                    }
                    Some(Resource::Placement(_)) if available.is_empty() => "no host is available".to_string(),
                    Some(Resource::Placement(c)) => format!(
                        "`maxperhost = {}` on {} × {}",
                        program.components[*c].maxperhost,
                        comp_name(*c),
                        hosts_phrase(available.len())
                    ),
                    _ => "maxperhost times the hosts".to_string(),
                },
            };
            lines.push(format!("  {}   ({why})", f.describe(program)));
        }
        lines.push("these cannot all hold at once".to_string());
        d = d.note(lines.join("\n"));
    }
    for o in &conflict.observations {
        match o {
            Observation::NoHostWith { attr, value, .. } => {
                let mut values: Vec<String> = vec![];
                for &h in available {
                    if let Some(v) = program.hosts[h].attr(attr) {
                        let v = v.to_string();
                        if !values.contains(&v) {
                            values.push(v);
                        }
                    }
                }
                let have = if values.is_empty() {
                    format!("none of them has `{attr}`")
                } else {
                    format!("they have {attr} {}", values.join(" or "))
                };
                d = d.note(format!("no available host has {attr} {value} ({have})"));
            }
            Observation::NoPath { from, to, .. } => {
                let ports = |c: usize| {
                    let comp = &program.components[c];
                    let ps: Vec<String> = comp
                        .ports
                        .iter()
                        .map(|p| {
                            let brackets = match (p.variadic, p.capacity) {
                                (false, _) => String::new(),
                                (true, None) => "[]".into(),
                                (true, Some(k)) => format!("[{k}]"),
                            };
                            match p.direction {
                                Direction::Both => format!("`{}{brackets}`", p.name),
                                dir => format!("`{}{brackets}: {}`", p.name, dir.word()),
                            }
                        })
                        .collect();
                    format!("`{}` has {}", comp.name, and_list(&ps))
                };
                d = d.note(format!(
                    "no path of channels can lead from a {} to a {}: a channel between an output and an input port is followed only from the output; {}; {}",
                    comp_name(*from),
                    comp_name(*to),
                    ports(*from),
                    ports(*to)
                ));
            }
        }
    }
    // `FILE:LINE` of a place outside the goal file, `line N` inside it.
    let place = |l: Loc| {
        if l.file == program.root_file {
            format!("line {}", line(l))
        } else {
            format!("{}:{}", sources.name_of(l.file), line(l))
        }
    };
    let use_of = |c: usize| {
        let o = &program.clauses[c].origin;
        let u = o.use_site.unwrap_or(o.loc);
        use_name(sources, u).unwrap_or_else(|| o.constraintset.clone())
    };
    for ill in &conflict.illustrations {
        let Some(p) = conflict.pieces.get(ill.piece) else { continue };
        let o = &program.clauses[p.clause].origin;
        let dropped = match o.use_site {
            Some(u) => {
                format!("the clause of `{}` at {} (through the `use` at {})", o.constraintset, place(o.loc), place(u))
            }
            None if p.via_use == Some(o.loc) => format!("the `use` of `{}` at {}", use_of(p.clause), place(o.loc)),
            None => format!("the clause at {}", place(o.loc)),
        };
        let what = if p.whole && p.via_use.is_none() {
            "that clause".to_string()
        } else if p.via_use.is_some() {
            format!("the clause of `{}` at {}", use_of(p.clause), place(p.loc))
        } else {
            format!("its part at {}", place(p.loc))
        };
        let mut lines = vec![format!("with {dropped} left out, the goal has a configuration, in which {what} fails:")];
        lines.extend(ill.witness.iter().map(|w| format!("  {w}")));
        d = d.note(lines.join("\n"));
    }
    if !conflict.minimal {
        d = d.note("some checks ran out of time: the labelled set may not be minimal");
    }
    if repairs.iter().any(|r| matches!(r, Repair::DropClauses(_))) {
        d = d.note("the goal has more than this conflict: dropping any one clause of it leaves another");
    }
    let bound = format!("{} s per variant, {} s in all", REPAIR_VARIANT.as_secs(), REPAIR_TOTAL.as_secs());
    if !repairs.is_empty() && !repairs_complete {
        d = d.note(format!("some repairs could not be decided within the time bound ({bound})"));
    }
    let is_use = |c: usize| {
        program.clauses[c].origin.use_site.is_some()
            || conflict.pieces.iter().any(|p| p.clause == c && p.via_use == Some(program.clauses[c].origin.loc))
    };
    let mut helps: Vec<String> = vec![];
    let multi = repairs.iter().filter(|r| matches!(r, Repair::DropClauses(_))).count();
    let mut multi_shown = 0;
    for r in repairs {
        let text = match r {
            Repair::DropClause(c) if is_use(*c) => {
                let u = program.clauses[*c].origin.use_site.unwrap_or(program.clauses[*c].origin.loc);
                format!("dropping the `use` of `{}` at {} makes the goal satisfiable", use_of(*c), place(u))
            }
            Repair::DropClause(c) => format!(
                "dropping the clause at line {} (constraintset `{}`) makes the goal satisfiable",
                clause_line(*c),
                program.clauses[*c].origin.constraintset
            ),
            Repair::DropClauses(_) if multi_shown >= 2 => continue,
            Repair::DropClauses(cs) => {
                multi_shown += 1;
                let mut ls: Vec<usize> = cs.iter().map(|&c| clause_line(c)).collect();
                ls.dedup();
                let ls: Vec<String> = ls.iter().map(|l| l.to_string()).collect();
                let more = if multi_shown == 2 && multi > 2 {
                    format!("; {} other sets of {} do too", multi - 2, cs.len())
                } else {
                    String::new()
                };
                format!(
                    "dropping the clauses at lines {} together makes the goal satisfiable (no single clause does{more})",
                    and_list(&ls)
                )
            }
            Repair::AddHosts { like, count } => {
                let name = &program.hosts[*like].name;
                if *count == 1 {
                    format!("adding one more host like `{name}` makes this goal satisfiable")
                } else if repairs_complete {
                    format!("adding {count} more hosts like `{name}` makes this goal satisfiable (fewer do not)")
                } else {
                    format!("adding {count} more hosts like `{name}` makes this goal satisfiable")
                }
            }
            Repair::DeclareHosts(n) => format!(
                "declaring {} (e.g. `host h1 = host()`) makes this goal satisfiable",
                if *n == 1 { "a host".to_string() } else { format!("{n} hosts") }
            ),
            Repair::RaiseCapacity(c, p, to) => {
                let port = &program.components[*c].ports[*p];
                format!(
                    "letting port `{}` of `{}` hold {to} channels (`{}[{to}]`) makes this goal satisfiable",
                    port.name, program.components[*c].name, port.name
                )
            }
            Repair::RaiseMaxPerHost(c, to) => {
                format!("`maxperhost = {to}` on `{}` makes this goal satisfiable", program.components[*c].name)
            }
            Repair::RaiseMaxInstances(c, to) => {
                format!("`maxinstances = {to}` on `{}` makes this goal satisfiable", program.components[*c].name)
            }
        };
        if !helps.contains(&text) {
            helps.push(text);
        }
    }
    for h in helps {
        d = d.help(h);
    }
    if repairs.is_empty() {
        d = d.note(if repairs_complete {
            "no repair found: no set of up to 3 clauses dropped, no resource raised, and no number of added hosts makes it satisfiable".to_string()
        } else {
            format!("no repair found within the time bound ({bound})")
        });
    }
    d
}
