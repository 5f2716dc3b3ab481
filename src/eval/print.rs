//! Formulas and terms of the typed goal back in Deladas syntax, for
//! messages ("card(Client c connectedto r) is 3, but must be <= 2").
//!
//! The text is rebuilt from the IR, so it shows the desugared form (`x on h`
//! reads `hostof(x) = h`, juxtaposed clauses read `and`).

use crate::check::ir::{Binder, Domain, Formula, FormulaKind, Program, Quantifier, Sort, Term, TermKind};

/// Longest formula text put in a message before it is cut with `…`.
pub(crate) const MAX_TEXT: usize = 100;

pub(crate) struct Printer<'a> {
    pub prog: &'a Program,
}

impl<'a> Printer<'a> {
    pub fn var(&self, v: usize) -> &'a str {
        self.prog.vars.get(v).map(|i| i.name.as_str()).unwrap_or("?")
    }

    pub fn sort_name(&self, s: Sort) -> String {
        match s {
            Sort::Host => "host".into(),
            // A named instance's variable ranges over its type.
            Sort::Instance(c) => self.comp(self.prog.ddd_component(c)).into(),
            Sort::Group(g) => self.prog.groups.get(g).cloned().unwrap_or_else(|| "?".into()),
        }
    }

    pub fn comp(&self, c: usize) -> &'a str {
        self.prog.components.get(c).map(|c| c.name.as_str()).unwrap_or("?")
    }

    pub fn var_sort(&self, v: usize) -> Option<Sort> {
        self.prog.vars.get(v).map(|i| i.sort)
    }

    fn port(&self, v: usize, p: usize) -> &'a str {
        match self.var_sort(v) {
            Some(Sort::Instance(c)) => {
                self.prog.components.get(c).and_then(|c| c.ports.get(p)).map(|p| p.name.as_str()).unwrap_or("?")
            }
            _ => "?",
        }
    }

    /// `in deployment` or `in h`.
    pub fn domain(&self, d: &Domain) -> String {
        match d {
            Domain::Deployment => "in deployment".into(),
            Domain::OnHost(t) => format!("in {}", self.term(t)),
            Domain::Group { attr, value } => format!("in {attr} {}", self.term(value)),
        }
    }

    /// A formula, cut to [`MAX_TEXT`] characters.
    pub fn formula_short(&self, f: &Formula) -> String {
        shorten(&self.formula(f))
    }

    /// A term, cut to [`MAX_TEXT`] characters.
    pub fn term_short(&self, t: &Term) -> String {
        shorten(&self.term(t))
    }

    pub fn formula(&self, f: &Formula) -> String {
        match &f.kind {
            FormulaKind::Const(b) => b.to_string(),
            FormulaKind::Not(g) => format!("not {}", self.operand(g)),
            FormulaKind::And(v) => self.join(v, " and "),
            FormulaKind::Or(v) => self.join(v, " or "),
            FormulaKind::Implies(a, b) => format!("{} implies {}", self.operand(a), self.operand(b)),
            FormulaKind::Cmp(op, l, r) => format!("{} {} {}", self.term(l), op.as_str(), self.term(r)),
            FormulaKind::Connects { a, pa, b, pb } => {
                format!("{}.{} connectsto {}.{}", self.var(*a), self.port(*a, *pa), self.var(*b), self.port(*b, *pb))
            }
            FormulaKind::Connected(a, b) => format!("{} connectedto {}", self.var(*a), self.var(*b)),
            FormulaKind::Reachable(a, b) => format!("reachable({}, {})", self.var(*a), self.var(*b)),
            FormulaKind::Quant { q, var, domain, body } => {
                let q = match q {
                    Quantifier::Forall => "forall",
                    Quantifier::Exists => "exists",
                };
                let sort = self.var_sort(*var).map(|s| self.sort_name(s)).unwrap_or_else(|| "?".into());
                format!("{q} {sort} {} {} ({})", self.var(*var), self.domain(domain), self.formula(body))
            }
            FormulaKind::Error => "<error>".into(),
        }
    }

    fn join(&self, v: &[Formula], sep: &str) -> String {
        if v.is_empty() {
            return if sep == " and " { "true".into() } else { "false".into() };
        }
        v.iter().map(|g| self.operand(g)).collect::<Vec<_>>().join(sep)
    }

    /// A sub-formula, parenthesized unless it is an atom.
    fn operand(&self, f: &Formula) -> String {
        match &f.kind {
            FormulaKind::And(v) | FormulaKind::Or(v) if v.len() == 1 => self.operand(&v[0]),
            FormulaKind::And(_) | FormulaKind::Or(_) | FormulaKind::Implies(..) | FormulaKind::Not(_) => {
                format!("({})", self.formula(f))
            }
            _ => self.formula(f),
        }
    }

    pub fn term(&self, t: &Term) -> String {
        match &t.kind {
            TermKind::Int(n) => n.to_string(),
            TermKind::Str(s) => format!("{s:?}"),
            TermKind::Bool(b) => b.to_string(),
            TermKind::Var(v) => self.var(*v).into(),
            TermKind::Host(h) => self.prog.hosts.get(*h).map(|h| h.name.clone()).unwrap_or_else(|| "?".into()),
            TermKind::HostOf(v) => format!("hostof({})", self.var(*v)),
            TermKind::HostAttr(h, a) => format!("{}.{a}", self.term(h)),
            TermKind::Count(b) => format!("card({})", self.binder(b)),
            TermKind::Sum(b, body) => format!("sum({} : {})", self.binder(b), self.term(body)),
            TermKind::Add(v) => {
                let mut s = String::new();
                for (i, (neg, t)) in v.iter().enumerate() {
                    match (i, neg) {
                        (0, false) => {}
                        (0, true) => s.push('-'),
                        (_, false) => s.push_str(" + "),
                        (_, true) => s.push_str(" - "),
                    }
                    s.push_str(&self.arith_operand(t));
                }
                s
            }
            TermKind::Mul(a, b) => format!("{} * {}", self.arith_operand(a), self.arith_operand(b)),
            TermKind::Neg(a) => format!("-{}", self.arith_operand(a)),
            TermKind::Abs(a) => format!("abs({})", self.term(a)),
            TermKind::Extreme { max, args } => format!(
                "{}({})",
                if *max { "max" } else { "min" },
                args.iter().map(|a| self.term(a)).collect::<Vec<_>>().join(", ")
            ),
            TermKind::Aggregate { max, binder, body } => {
                format!("{}({} : {})", if *max { "max" } else { "min" }, self.binder(binder), self.term(body))
            }
            TermKind::Param(p) => p.clone(),
            TermKind::Error => "<error>".into(),
        }
    }

    fn arith_operand(&self, t: &Term) -> String {
        match &t.kind {
            TermKind::Add(_) => format!("({})", self.term(t)),
            _ => self.term(t),
        }
    }

    /// The inside of `card(…)`: `instancesof T in D`, `T y connectedto x`, or
    /// `T y in D where F`.
    pub fn binder(&self, b: &Binder) -> String {
        let sort = self.var_sort(b.var).map(|s| self.sort_name(s)).unwrap_or_else(|| "?".into());
        let name = self.var(b.var);
        match (&b.cond, &b.domain) {
            (None, d) if name == "_" => format!("instancesof {sort} {}", self.domain(d)),
            (Some(Formula { kind: FormulaKind::Connected(y, x), .. }), Domain::Deployment) if *y == b.var => {
                format!("{sort} {name} connectedto {}", self.var(*x))
            }
            (None, d) => format!("{sort} {name} {}", self.domain(d)),
            (Some(c), d) => format!("{sort} {name} {} where {}", self.domain(d), self.formula(c)),
        }
    }
}

/// `s` cut to [`MAX_TEXT`] characters, ending in `…` when cut.
pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_TEXT - 1).collect();
    out.push('…');
    out
}

/// `n Clients`: a count of instances of a component, in words.
pub(crate) fn count_of(n: usize, comp: &str) -> String {
    if n == 1 {
        format!("1 {comp}")
    } else if n == 0 {
        format!("no {}", plural(comp))
    } else {
        format!("{n} {}", plural(comp))
    }
}

/// The plural of a component name: `Clients`, `Proxies`, `Buses`.
pub(crate) fn plural(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let ends = |s: &str| lower.ends_with(s);
    if ends("s") || ends("x") || ends("z") || ends("ch") || ends("sh") {
        format!("{name}es")
    } else if ends("y") && !(ends("ay") || ends("ey") || ends("iy") || ends("oy") || ends("uy")) {
        format!("{}ies", &name[..name.len() - 1])
    } else {
        format!("{name}s")
    }
}

/// A list of names for a message: `A, B, C` or `A, B, C, … (7 in all)`.
pub(crate) fn list(names: &[String]) -> String {
    const MAX: usize = 5;
    if names.len() <= MAX {
        names.join(", ")
    } else {
        format!("{}, … ({} in all)", names[..MAX].join(", "), names.len())
    }
}
