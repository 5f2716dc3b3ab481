//! The explanation of an unsatisfiable goal as one "goal is unsatisfiable"
//! diagnostic (E0801), for every front end: `deladas explain`, `solve` and
//! `resolve` on unsat, `whatif`'s fatal cases, and the language server.
//!
//! [`explanation`] renders a [`Conflict`] (from [`crate::solve::explain`])
//! section by section, one function each: the labelled clauses, the
//! resources, the hosts, the counting argument, observations,
//! illustrations, caveats, and the repairs. Everything it needs is in the
//! goal ([`Program`], including the pattern each `use` names) and the
//! conflict; `sources` only turns places into line numbers.

use crate::check::ir::{Direction, Loc, Program};
use crate::diagnostics::{Code, Diagnostic, Sources};
use crate::lower::bounds::{Reason, Resource};
use crate::solve::explain::{pieces_of, Conflict, Observation, Piece, Repair, REPAIR_TOTAL_WORK, REPAIR_VARIANT_WORK};

/// Renders a conflict as one "goal is unsatisfiable" diagnostic, with repair hints.
pub fn explanation(
    program: &Program,
    sources: &Sources,
    available: &[usize],
    conflict: &Conflict,
    repairs: &[Repair],
    repairs_complete: bool,
) -> Diagnostic {
    let cx = Report { program, sources, available, conflict };
    let d = Diagnostic::new(Code::Unsatisfiable, "goal is unsatisfiable");
    let d = cx.clauses(d);
    let d = cx.resources(d);
    let d = cx.hosts(d);
    let d = cx.counting(d);
    let d = cx.observations(d);
    let d = cx.illustrations(d);
    let d = cx.caveats(d, repairs, repairs_complete);
    cx.repairs(d, repairs, repairs_complete)
}

/// What every section reads.
struct Report<'a> {
    program: &'a Program,
    sources: &'a Sources,
    available: &'a [usize],
    conflict: &'a Conflict,
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

fn hosts_phrase(n: usize) -> String {
    if n == 0 {
        "no host".to_string()
    } else {
        format!("{n} {}", plural(n, "host", "hosts"))
    }
}

impl Report<'_> {
    fn line(&self, l: Loc) -> usize {
        self.sources.line_col(l.file, l.span.start as usize).0
    }

    /// Where the user sees a piece: the `use` it came through, or the piece.
    fn anchor(&self, p: &Piece) -> Loc {
        self.program.clauses[p.clause].origin.use_site.or(p.via_use).unwrap_or(p.loc)
    }

    fn clause_line(&self, c: usize) -> usize {
        let o = &self.program.clauses[c].origin;
        self.line(o.use_site.unwrap_or(o.loc))
    }

    /// What a label says about `n` pieces, `subject` being "this clause" etc.
    fn says(&self, subject: &str, n: usize) -> String {
        let n_pieces = self.conflict.pieces.len();
        let has_res = !self.conflict.resources.is_empty();
        let (is, conflicts) = if n == 1 { ("is", "conflicts") } else { ("are", "conflict") };
        if self.conflict.statically_false {
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
    }

    fn piece_line(&self, i: usize) -> usize {
        self.conflict.pieces.get(i).map(|p| self.line(self.anchor(p))).unwrap_or(0)
    }

    /// "the clause at line N", or "the part at line N" for a part of one.
    fn piece_at(&self, i: usize) -> String {
        let what = match self.conflict.pieces.get(i) {
            Some(p) if !p.whole && p.via_use.is_none() && self.program.clauses[p.clause].origin.use_site.is_none() => {
                "part"
            }
            _ => "clause",
        };
        format!("the {what} at line {}", self.piece_line(i))
    }

    fn comp_name(&self, c: usize) -> String {
        format!("`{}`", self.program.components[c].name)
    }

    /// `FILE:LINE` of a place outside the goal file, `line N` inside it.
    fn place(&self, l: Loc) -> String {
        if l.file == self.program.root_file {
            format!("line {}", self.line(l))
        } else {
            format!("{}:{}", self.sources.name_of(l.file), self.line(l))
        }
    }

    /// The pattern a clause's `use` names.
    fn use_of(&self, c: usize) -> String {
        let o = &self.program.clauses[c].origin;
        let u = o.use_site.unwrap_or(o.loc);
        self.program.use_name(u).map(str::to_string).unwrap_or_else(|| o.constraintset.clone())
    }

    /// Whether a clause came in through a `use` (statement or clause).
    fn is_use(&self, c: usize) -> bool {
        let o = &self.program.clauses[c].origin;
        o.use_site.is_some() || self.conflict.pieces.iter().any(|p| p.clause == c && p.via_use == Some(o.loc))
    }

    /// The labels: each conflicting clause (or part), or the `use` it came
    /// through with the pattern's clauses as secondary labels.
    fn clauses(&self, mut d: Diagnostic) -> Diagnostic {
        let (program, conflict) = (self.program, self.conflict);
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
                let name = program.use_name(*u).unwrap_or("a pattern");
                let n = pattern_labels.len().max(1);
                let subject = format!("through this use of `{name}`: {}", plural(n, "its clause", "its clauses"));
                d = d.primary(u.file, u.span, self.says(&subject, n));
                for (l, m) in pattern_labels {
                    d = d.secondary(l.file, l.span, *m);
                }
            } else {
                let (c, parts) = &plain[k];
                let o = &program.clauses[*c].origin;
                if parts.is_empty() {
                    d = d.primary(o.loc.file, o.loc.span, self.says("this clause", 1));
                } else {
                    for p in parts {
                        d = d.primary(p.loc.file, p.loc.span, self.says("this part", 1));
                    }
                    d = d.secondary(o.loc.file, o.loc.span, "in this clause; its other parts are not needed");
                }
            }
        }
        d
    }

    /// The resource limits in the conflict, as secondary labels.
    fn resources(&self, mut d: Diagnostic) -> Diagnostic {
        let program = self.program;
        for r in &self.conflict.resources {
            match *r {
                Resource::PortCapacity(c, p) => {
                    let port = &program.components[c].ports[p];
                    let cap = port.capacity.unwrap_or(0);
                    let what =
                        if cap == 1 { "at most one channel".to_string() } else { format!("at most {cap} channels") };
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
                    let text = if self.available.is_empty() {
                        "no host to place it on".to_string()
                    } else {
                        format!("at most {} per host on {}", comp.maxperhost, hosts_phrase(self.available.len()))
                    };
                    d = d.secondary(comp.loc.file, comp.loc.span, text);
                }
            }
        }
        d
    }

    /// The available hosts, when the conflict depends on them.
    fn hosts(&self, d: Diagnostic) -> Diagnostic {
        let (program, conflict, available) = (self.program, self.conflict, self.available);
        let uses_hosts = conflict.resources.iter().any(|r| matches!(r, Resource::Placement(_)))
            || conflict.facts.iter().any(|f| matches!(f.reason, Reason::HostSum(_) | Reason::AttrSum(..)));
        if available.is_empty() {
            d.note(if program.hosts.is_empty() {
                "no host is available: the goal declares none"
            } else {
                "no host is available"
            })
        } else if uses_hosts || conflict.facts.is_empty() || conflict.hosts_needed.is_some() {
            let names: Vec<String> =
                available.iter().take(6).map(|&h| format!("`{}`", program.hosts[h].name)).collect();
            let more = if available.len() > 6 { format!(", … ({} in all)", available.len()) } else { String::new() };
            let needed = match conflict.hosts_needed {
                Some(n) => format!("; the goal needs at least {n} hosts like them"),
                None => String::new(),
            };
            d.note(format!(
                "{} {} available: {}{more}{needed}",
                available.len(),
                plural(available.len(), "host is", "hosts are"),
                names.join(", ")
            ))
        } else {
            d
        }
    }

    /// The counting argument, when counting refuted the goal.
    fn counting(&self, d: Diagnostic) -> Diagnostic {
        let (program, conflict, available) = (self.program, self.conflict, self.available);
        if conflict.facts.is_empty() {
            return d;
        }
        let mut lines = vec!["by counting instances (#C is the number of instances of C):".to_string()];
        for f in &conflict.facts {
            let first = f.from.first().map(|&i| self.piece_line(i)).unwrap_or(0);
            let first_at = f.from.first().map(|&i| self.piece_at(i)).unwrap_or_default();
            let why = match &f.reason {
                Reason::HostSum(n) => format!("{first_at} summed over the {n} hosts"),
                Reason::AttrSum(n, totals) => {
                    let t: Vec<String> = totals.iter().map(|(a, v)| format!("their `{a}` totals {v}")).collect();
                    format!("{first_at} summed over the {n} hosts; {}", t.join(", "))
                }
                Reason::Distinct(a, k) => format!(
                    "{first_at}: at most one per value of `{a}`, and the hosts have {k} {}",
                    plural(*k, "value", "values")
                ),
                Reason::Written => first_at,
                Reason::Capacity => {
                    let a = f.terms.iter().find(|t| t.1 > 0).map(|t| t.0);
                    let b = f.terms.iter().find(|t| t.1 < 0).map(|t| (t.0, -t.1));
                    match (a, b) {
                        (Some(a), Some((b, k))) => {
                            let (an, bn) = (self.comp_name(a), self.comp_name(b));
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
                                    f.from.get(1).map(|&i| self.piece_line(i)).unwrap_or(first)
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
                            self.comp_name(*c)
                        )
                    }
                    Some(Resource::Placement(_)) if available.is_empty() => "no host is available".to_string(),
                    Some(Resource::Placement(c)) => format!(
                        "`maxperhost = {}` on {} × {}",
                        program.components[*c].maxperhost,
                        self.comp_name(*c),
                        hosts_phrase(available.len())
                    ),
                    _ => "maxperhost times the hosts".to_string(),
                },
            };
            lines.push(format!("  {}   ({why})", f.describe(program)));
        }
        lines.push("these cannot all hold at once".to_string());
        d.note(lines.join("\n"))
    }

    /// Plain-words facts about the declarations (no host has the value, no
    /// path of channels can exist).
    fn observations(&self, mut d: Diagnostic) -> Diagnostic {
        let program = self.program;
        for o in &self.conflict.observations {
            match o {
                Observation::NoHostWith { attr, value, .. } => {
                    let mut values: Vec<String> = vec![];
                    for &h in self.available {
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
                        self.comp_name(*from),
                        self.comp_name(*to),
                        ports(*from),
                        ports(*to)
                    ));
                }
            }
        }
        d
    }

    /// Grounded illustrations: with a clause left out, how a piece fails.
    fn illustrations(&self, mut d: Diagnostic) -> Diagnostic {
        let program = self.program;
        for ill in &self.conflict.illustrations {
            let Some(p) = self.conflict.pieces.get(ill.piece) else { continue };
            let o = &program.clauses[p.clause].origin;
            let dropped = match o.use_site {
                Some(u) => format!(
                    "the clause of `{}` at {} (through the `use` at {})",
                    o.constraintset,
                    self.place(o.loc),
                    self.place(u)
                ),
                None if p.via_use == Some(o.loc) => {
                    format!("the `use` of `{}` at {}", self.use_of(p.clause), self.place(o.loc))
                }
                None => format!("the clause at {}", self.place(o.loc)),
            };
            let what = if p.whole && p.via_use.is_none() {
                "that clause".to_string()
            } else if p.via_use.is_some() {
                format!("the clause of `{}` at {}", self.use_of(p.clause), self.place(p.loc))
            } else {
                format!("its part at {}", self.place(p.loc))
            };
            let mut lines =
                vec![format!("with {dropped} left out, the goal has a configuration, in which {what} fails:")];
            lines.extend(ill.witness.iter().map(|w| format!("  {w}")));
            d = d.note(lines.join("\n"));
        }
        d
    }

    /// What the search could not establish.
    fn caveats(&self, mut d: Diagnostic, repairs: &[Repair], repairs_complete: bool) -> Diagnostic {
        if let Some(why) = &self.conflict.cut_short {
            // The limit, not the work bound: say so once, for both.
            d = d.note(format!(
                "the explanation stopped early, {why}: the goal is unsatisfiable, but the labelled set may not be \
                 minimal and repairs may be missing"
            ));
            if repairs.iter().any(|r| matches!(r, Repair::DropClauses(_))) {
                d = d.note("the goal has more than this conflict: dropping any one clause of it leaves another");
            }
            return d;
        }
        if !self.conflict.minimal {
            d = d.note("some checks ran out of time: the labelled set may not be minimal");
        }
        if repairs.iter().any(|r| matches!(r, Repair::DropClauses(_))) {
            d = d.note("the goal has more than this conflict: dropping any one clause of it leaves another");
        }
        if !repairs.is_empty() && !repairs_complete {
            d = d.note(format!("some repairs could not be decided within the work bound ({})", repair_bound()));
        }
        d
    }

    /// The repairs found, as `help:` lines (or why there is none).
    fn repairs(&self, mut d: Diagnostic, repairs: &[Repair], repairs_complete: bool) -> Diagnostic {
        let program = self.program;
        let mut helps: Vec<String> = vec![];
        let multi = repairs.iter().filter(|r| matches!(r, Repair::DropClauses(_))).count();
        let mut multi_shown = 0;
        for r in repairs {
            let text = match r {
                Repair::DropClause(c) if self.is_use(*c) => {
                    let u = program.clauses[*c].origin.use_site.unwrap_or(program.clauses[*c].origin.loc);
                    format!(
                        "dropping the `use` of `{}` at {} makes the goal satisfiable",
                        self.use_of(*c),
                        self.place(u)
                    )
                }
                Repair::DropClause(c) => format!(
                    "dropping the clause at line {} (constraintset `{}`) makes the goal satisfiable",
                    self.clause_line(*c),
                    program.clauses[*c].origin.constraintset
                ),
                Repair::DropClauses(_) if multi_shown >= 2 => continue,
                Repair::DropClauses(cs) => {
                    multi_shown += 1;
                    let mut ls: Vec<usize> = cs.iter().map(|&c| self.clause_line(c)).collect();
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
        if repairs.is_empty() && self.conflict.cut_short.is_some() {
            // Said by the caveat above.
        } else if repairs.is_empty() {
            d = d.note(if repairs_complete {
                "no repair found: no set of up to 3 clauses dropped, no resource raised, and no number of added hosts makes it satisfiable".to_string()
            } else {
                format!("no repair found within the work bound ({})", repair_bound())
            });
        }
        d
    }
}

fn repair_bound() -> String {
    // Work, not time: the same goal gets the same repairs on any machine.
    format!(
        "{} million solver steps per variant, {} million in all",
        REPAIR_VARIANT_WORK / 1_000_000,
        REPAIR_TOTAL_WORK / 1_000_000
    )
}

/// What [`explain`] found.
#[derive(Debug)]
pub enum Explained {
    /// Nothing to explain: the goal has a configuration.
    Satisfiable,
    /// The solver could not decide within the budget: why.
    Unknown(String),
    /// The explanation (E0801).
    Unsatisfiable(Diagnostic),
}

/// Decides the goal on the `available` hosts and, when it is
/// unsatisfiable, explains it ([`crate::solve::explain::explain`], then
/// [`explanation`]). `Err`: the goal cannot be grounded (its diagnostic).
pub fn explain(
    program: &Program,
    sources: &Sources,
    available: &[usize],
    budget: std::time::Duration,
) -> Result<Explained, Diagnostic> {
    use crate::solve::explain::Explained as E;
    match crate::solve::explain::explain(program, available, budget) {
        Err(e) => Err(e.to_diagnostic(program.root_file)),
        Ok(E::Satisfiable) => Ok(Explained::Satisfiable),
        Ok(E::Unknown(why)) => Ok(Explained::Unknown(why)),
        Ok(E::Unsatisfiable { conflict, repairs, repairs_complete }) => Ok(Explained::Unsatisfiable(explanation(
            program,
            sources,
            available,
            &conflict,
            &repairs,
            repairs_complete,
        ))),
    }
}
