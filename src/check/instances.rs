//! Named instances and replicas (issue 19; docs/reference/instances.md).
//!
//! `instance vm1 = VM(cpu = 4)` declares an instance of `VM` that must exist,
//! with its own attribute values; `instance part[3] = Partition(…)` declares
//! `part1` … `part3` and the group `part`. In the checked [`Program`] each
//! named instance is a component of its own ([`Component::named`] is its
//! type): one slot per host, exactly one instance (a clause in force), its
//! attributes folded like any component's. So the back ends need nothing
//! new; the checker does three things:
//!
//! * a binder over a type that has named instances (`forall VM v`,
//!   `card(VM v in h)`, `sum(…)`) is checked once per member of the family
//!   (the type itself, then each named instance) and the copies are combined
//!   (`and` for `forall`, `or` for `exists`, `+` for counts and sums); a
//!   binder over a group (`forall part p`) ranges over its members only.
//!   Only the first copy reports diagnostics.
//! * the name of a named instance in a clause is a variable bound by an
//!   implicit `forall` over that instance's (single) slot around the
//!   innermost clause that names it; in an objective, a `sum` over it.
//! * the type's `maxperhost` and `maxinstances` bound the whole family: a
//!   clause in force when the type has named instances, and E0342 when the
//!   named instances alone cannot fit.

use super::index::SymbolKind;
use super::ir::*;
use super::load::Loaded;
use super::{Checker, Global};
use crate::diagnostics::{did_you_mean, Code, Diagnostic, FileId};
use crate::syntax::ast::{self, DeclKind, SortName};

/// Most named instances one `instance NAME[N]` declares.
pub const MAX_GROUP: i64 = 10_000;

/// The checker's state for named instances.
#[derive(Debug, Default)]
pub(super) struct NamedState {
    /// Named instances of each type (by the type's [`CompId`]).
    pub variants: std::collections::HashMap<CompId, Vec<CompId>>,
    /// Groups: name and members.
    pub groups: Vec<(String, Vec<CompId>)>,
    /// The sort the next [`Checker::sort`] call resolves to (one copy of an
    /// expanded binder).
    pub sort_override: Option<CompId>,
    /// Implicit variables of the clauses being checked, innermost last: the
    /// named instance (its component) and the variable standing for it.
    pub implicit: Vec<Vec<(CompId, VarId)>>,
    /// Where each named instance (and group) is declared.
    pub decl_locs: Vec<(CompId, Loc)>,
    /// Attributes declared without a value (`cpu = int`), by component:
    /// name, type, where declared. Each named instance must give them; the
    /// type then has no unnamed instances.
    pub required: std::collections::HashMap<CompId, Vec<(String, Type, Loc)>>,
}

/// What a copy of an expanded binder gives back.
pub(super) enum Copies<T> {
    /// No named instances: check as usual.
    Plain,
    Each(Vec<T>),
}

impl Checker<'_> {
    /// `ATTR = int` (or `string`, `bool`) in a component declaration: an
    /// attribute every named instance gives; false when the value is not a
    /// type name.
    pub(super) fn required_attribute(&mut self, file: FileId, e: &ast::AttrEntry) -> bool {
        let ast::AttrValueKind::Name(n) = &e.value.kind else { return false };
        let ty = match n.as_str() {
            "int" => Type::Int,
            "string" => Type::Str,
            "bool" => Type::Bool,
            _ => return false,
        };
        // Called while the component is declared: it gets the next index.
        let c = self.prog.components.len();
        self.named.required.entry(c).or_default().push((e.key.name.clone(), ty, Loc::new(file, e.key.span)));
        true
    }

    /// Declares every `instance` of the loaded files (after the components).
    pub(super) fn named_instances(&mut self, loaded: &Loaded) {
        for pf in &loaded.files {
            for d in &pf.ast.decls {
                if let DeclKind::Instance(i) = &d.kind {
                    self.instance_decl(pf.id, i, d.span);
                }
            }
        }
    }

    fn instance_decl(&mut self, file: FileId, i: &ast::InstanceDecl, span: ast::Span) {
        self.file = file;
        let base = match self.globals.get(&i.component.name).copied() {
            Some((Global::Component(c), def)) => {
                self.record(i.component.span, SymbolKind::Component, &i.component.name, def);
                c
            }
            Some((Global::Broken, _)) => return,
            _ => {
                self.unknown_component(&i.component);
                return;
            }
        };
        let mut comp = self.prog.components[base].clone();
        comp.named = Some(base);
        comp.maxperhost = 1;
        comp.maxinstances = None;
        comp.doc = None;
        if let Some(attrs) = &i.attrs {
            self.duplicate_keys(file, attrs);
            for e in &attrs.entries {
                let key = &e.key.name;
                let tname = &self.prog.components[base].name;
                if matches!(key.as_str(), "code" | "bundle" | "ports" | "maxperhost" | "maxinstances") {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InstanceAttribute,
                            format!("`{key}` is set on the component type, not on an instance"),
                        )
                        .primary(file, e.key.span, "not an instance attribute")
                        .note(format!("every instance of `{tname}` has the type's `{key}`"))
                        .help("declare another component type for instances that differ in it"),
                    );
                    continue;
                }
                let Some(v) = super::decls::value_of(&e.value.kind) else {
                    self.bad_value(file, e, "a string, an integer or a boolean");
                    continue;
                };
                let required =
                    self.named.required.get(&base).and_then(|r| r.iter().find(|(n, _, _)| n == key)).cloned();
                if let Some((_, want, at)) = required {
                    if v.ty() == want {
                        comp.attrs.push((key.clone(), v));
                    } else {
                        // Reported; a placeholder keeps uses from repeating it.
                        comp.attrs.push((key.clone(), placeholder(want)));
                        let (w, f) = (self.type_name(want), self.type_name(v.ty()));
                        self.diags.push(
                            Diagnostic::new(
                                Code::InstanceAttributeType,
                                format!("`{key}` of `{tname}` is {w}, found {f}"),
                            )
                            .primary(file, e.value.span, f)
                            .secondary(
                                at.file,
                                at.span,
                                format!("`{tname}` declares `{key}` as {w}"),
                            ),
                        );
                    }
                    continue;
                }
                let Some(pos) = comp.attrs.iter().position(|(n, _)| n == key) else {
                    let mut d = Diagnostic::new(
                        Code::InstanceAttribute,
                        format!("component `{tname}` declares no attribute `{key}`"),
                    )
                    .primary(file, e.key.span, "not an attribute of the type")
                    .secondary(
                        self.prog.components[base].loc.file,
                        self.prog.components[base].loc.span,
                        format!("`{tname}` is declared here"),
                    )
                    .note("an instance sets attributes its type declares, with a default value there");
                    if let Some(s) = did_you_mean(key, comp.attrs.iter().map(|(n, _)| n.as_str())) {
                        d = d.did_you_mean(s);
                    } else {
                        d = d.help(format!("add `{key} = …` (the default) to component `{tname}`"));
                    }
                    self.diags.push(d);
                    continue;
                };
                let want = comp.attrs[pos].1.ty();
                if v.ty() != want {
                    let word = |t: Type| match t {
                        Type::Int => "an integer",
                        Type::Str => "a string",
                        _ => "a boolean",
                    };
                    self.diags.push(
                        Diagnostic::new(
                            Code::InstanceAttributeType,
                            format!("`{key}` of `{tname}` is {}, found {}", word(want), word(v.ty())),
                        )
                        .primary(file, e.value.span, word(v.ty()).to_string())
                        .secondary(
                            self.prog.components[base].loc.file,
                            self.prog.components[base].loc.span,
                            format!("`{tname}` declares `{key} = {}`", comp.attrs[pos].1),
                        ),
                    );
                    continue;
                }
                comp.attrs[pos].1 = v;
            }
        }
        for (key, ty, at) in self.named.required.get(&base).cloned().unwrap_or_default() {
            if comp.attr(&key).is_none() {
                comp.attrs.push((key.clone(), placeholder(ty)));
                let tname = self.prog.components[base].name.clone();
                let example = match ty {
                    Type::Int => "1",
                    Type::Bool => "true",
                    _ => "\"…\"",
                };
                self.diags.push(
                    Diagnostic::new(Code::MissingInstanceAttribute, format!("`{}` does not give `{key}`", i.name.name))
                        .primary(file, i.name.span, format!("an instance of `{tname}` without `{key}`"))
                        .secondary(at.file, at.span, format!("`{tname}` declares `{key}` without a value"))
                        .help(format!("write `instance {} = {tname}({key} = {example})`", i.name.name)),
                );
            }
        }
        let names: Vec<String> = match i.count {
            None => vec![i.name.name.clone()],
            Some((n, nspan)) => {
                if !(1..=MAX_GROUP).contains(&n) {
                    self.diags.push(
                        Diagnostic::new(Code::BadInstanceGroup, format!("a group declares 1 to {MAX_GROUP} instances"))
                            .primary(file, nspan, format!("{n} instances"))
                            .note(format!(
                                "`instance {0}[3] = {1}(…)` declares `{0}1`, `{0}2` and `{0}3`",
                                i.name.name, i.component.name
                            )),
                    );
                    return;
                }
                (1..=n).map(|k| format!("{}{k}", i.name.name)).collect()
            }
        };
        let mut members = vec![];
        for n in &names {
            let id = self.prog.components.len();
            let ident = ast::Ident { name: n.clone(), span: i.name.span };
            if !self.declare(&ident, file, Global::Instance(id)) {
                continue;
            }
            if i.count.is_some() && self.index.occurrences.last().is_some_and(|o| &o.name == n) {
                // `part1` is written nowhere; the group's name is indexed instead.
                self.index.occurrences.pop();
            }
            let mut c = comp.clone();
            c.name = n.clone();
            c.loc = Loc::new(file, i.name.span);
            self.prog.components.push(c);
            self.named.variants.entry(base).or_default().push(id);
            self.named.decl_locs.push((id, Loc::new(file, span)));
            members.push(id);
        }
        if i.count.is_some() {
            let g = self.named.groups.len();
            if self.declare(&i.name, file, Global::InstanceGroup(g)) {
                self.named.groups.push((i.name.name.clone(), members));
            }
        }
    }

    /// The clauses named instances bring into force (each exists, once; the
    /// type's bounds hold for the family), and E0342 when they cannot fit.
    pub(super) fn named_instance_clauses(&mut self) {
        let mut bases: Vec<CompId> = self.named.variants.keys().copied().collect();
        bases.sort();
        for &(c, _) in &self.named.decl_locs {
            if let Some(m) = self.mentioned.get_mut(c) {
                *m = true;
            }
        }
        for &b in &bases {
            if let Some(m) = self.mentioned.get_mut(b) {
                *m = true;
            }
        }
        for (c, loc) in self.named.decl_locs.clone() {
            let name = self.prog.components[c].name.clone();
            let count = self.count_term(&[c], Domain::Deployment, loc);
            let formula =
                Formula { kind: FormulaKind::Cmp(ast::CmpOp::Eq, count, Term::literal(Value::Int(1), loc)), loc };
            self.prog.clauses.push(Clause {
                formula,
                origin: Origin { constraintset: format!("instance {name}"), loc, use_site: None },
            });
        }
        let mut with_required: Vec<CompId> = self.named.required.keys().copied().collect();
        with_required.sort();
        for b in with_required {
            let Some(comp) = self.prog.components.get(b).cloned() else { continue };
            let count = self.count_term(&[b], Domain::Deployment, comp.loc);
            let formula = Formula {
                kind: FormulaKind::Cmp(ast::CmpOp::Eq, count, Term::literal(Value::Int(0), comp.loc)),
                loc: comp.loc,
            };
            let origin = Origin {
                constraintset: format!("required attributes of {}", comp.name),
                loc: comp.loc,
                use_site: None,
            };
            self.prog.clauses.push(Clause { formula, origin });
        }
        let hosts = self.prog.hosts.len() as u64;
        for b in bases {
            let family = self.family(b);
            let named = family.len() as u64 - 1;
            let comp = self.prog.components[b].clone();
            let first = self.named.decl_locs.iter().find(|(c, _)| family.contains(c)).map(|(_, l)| *l);
            let Some(first) = first else { continue };
            let fit = comp.maxinstances.map_or(u64::MAX, u64::from).min(u64::from(comp.maxperhost) * hosts);
            if named > fit {
                let why = match comp.maxinstances {
                    Some(m) if u64::from(m) <= u64::from(comp.maxperhost) * hosts => format!("`maxinstances = {m}`"),
                    _ => format!(
                        "`maxperhost = {}` × {hosts} host{} = {}",
                        comp.maxperhost,
                        if hosts == 1 { "" } else { "s" },
                        u64::from(comp.maxperhost) * hosts
                    ),
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::TooManyInstances,
                        format!("{named} named instances of `{}` cannot all be placed", comp.name),
                    )
                    .primary(first.file, first.span, format!("{named} named instances of `{}`", comp.name))
                    .secondary(comp.loc.file, comp.loc.span, format!("at most {fit} instances fit: {why}"))
                    .note("every named instance must exist, and instances of a type (named or not) share its `maxperhost` and `maxinstances`")
                    .help(match comp.maxinstances {
                        Some(m) if u64::from(m) == fit => {
                            format!("raise `maxinstances` of `{}`, or declare fewer instances", comp.name)
                        }
                        _ => format!("raise `maxperhost` of `{}`, add hosts, or declare fewer instances", comp.name),
                    }),
                );
                continue;
            }
            let loc = comp.loc;
            let origin = |what: &str| Origin { constraintset: format!("{what} of {}", comp.name), loc, use_site: None };
            // At most `maxperhost` of the family on each host.
            let var = self.fresh_var("h", Sort::Host, loc);
            let host = Term { kind: TermKind::Var(var), ty: Type::Host, loc };
            let count = self.count_term(&family, Domain::OnHost(host), loc);
            let body = Formula {
                kind: FormulaKind::Cmp(
                    ast::CmpOp::Le,
                    count,
                    Term::literal(Value::Int(i64::from(comp.maxperhost)), loc),
                ),
                loc,
            };
            let formula = Formula {
                kind: FormulaKind::Quant {
                    q: ast::Quantifier::Forall,
                    var,
                    domain: Domain::Deployment,
                    body: Box::new(body),
                },
                loc,
            };
            self.prog.clauses.push(Clause { formula, origin: origin("maxperhost") });
            if let Some(m) = comp.maxinstances {
                let count = self.count_term(&family, Domain::Deployment, loc);
                let formula = Formula {
                    kind: FormulaKind::Cmp(ast::CmpOp::Le, count, Term::literal(Value::Int(i64::from(m)), loc)),
                    loc,
                };
                self.prog.clauses.push(Clause { formula, origin: origin("maxinstances") });
            }
        }
    }

    fn fresh_var(&mut self, name: &str, sort: Sort, loc: Loc) -> VarId {
        self.prog.vars.push(VarInfo { name: name.to_string(), sort, loc });
        self.var_used.push(true);
        self.prog.vars.len() - 1
    }

    /// `card(instancesof …)` over the components `comps`, added up.
    fn count_term(&mut self, comps: &[CompId], domain: Domain, loc: Loc) -> Term {
        let mut parts = vec![];
        for &c in comps {
            let var = self.fresh_var("_", Sort::Instance(c), loc);
            let binder = Binder { var, domain: domain.clone(), cond: None };
            parts.push((false, Term { kind: TermKind::Count(Box::new(binder)), ty: Type::Int, loc }));
        }
        if parts.len() == 1 {
            return parts.remove(0).1;
        }
        Term { kind: TermKind::Add(parts), ty: Type::Int, loc }
    }

    /// A type and its named instances, the type first; empty when it has none.
    pub(super) fn family(&self, c: CompId) -> Vec<CompId> {
        match self.named.variants.get(&c) {
            Some(v) if !v.is_empty() => std::iter::once(c).chain(v.iter().copied()).collect(),
            _ => vec![],
        }
    }

    /// The members a binder over type `c` ranges over: its family, without
    /// the type itself when it has required attributes (it has no unnamed
    /// instances then).
    fn binder_family(&self, c: CompId) -> Vec<CompId> {
        let mut f = self.family(c);
        if self.named.required.contains_key(&c) && !f.is_empty() {
            f.remove(0);
        }
        f
    }

    /// The sorts a binder over `s` is checked with, one copy each; empty when
    /// it needs no copies (no named instances, or a group of one).
    pub(super) fn copies_of(&self, s: &SortName) -> Vec<CompId> {
        let SortName::Named(n) = s else { return vec![] };
        if let Some((super::Binding::Component(c), _)) = self.env.get(&n.name) {
            return self.binder_family(*c);
        }
        if self.env.contains_key(&n.name) {
            return vec![];
        }
        match self.globals.get(&n.name) {
            Some((Global::Component(c), _)) => self.binder_family(*c),
            Some((Global::InstanceGroup(g), _)) => match self.named.groups.get(*g) {
                Some((_, m)) if m.len() > 1 => m.clone(),
                _ => vec![],
            },
            _ => vec![],
        }
    }

    /// Checks something that binds sort `s` once per member of its family
    /// (see the module docs); only the first copy reports.
    pub(super) fn copies<T>(&mut self, s: &SortName, mut f: impl FnMut(&mut Self) -> T) -> Copies<T> {
        let sorts = self.copies_of(s);
        if sorts.is_empty() {
            return Copies::Plain;
        }
        let mut out = vec![];
        for (i, c) in sorts.into_iter().enumerate() {
            self.named.sort_override = Some(c);
            if i == 0 {
                let nd = self.diags.len();
                out.push(f(self));
                if self.prog.components.get(c).is_some_and(|x| x.named.is_some()) {
                    // A clause true or false for this member's attribute
                    // values may not be for the others: no W0004/W0005.
                    let mut k = nd;
                    while k < self.diags.len() {
                        if matches!(self.diags[k].code, Code::TriviallyTrue | Code::TriviallyFalse) {
                            self.diags.remove(k);
                        } else {
                            k += 1;
                        }
                    }
                    // Entries moved: count the errors afresh.
                    let errors = self.diags.iter().filter(|d| d.is_error()).count();
                    self.error_tally.set((self.diags.len(), errors));
                }
                continue;
            }
            let _ = self.error_count();
            let tally = self.error_tally.get();
            let (nd, no, nv) = (self.diags.len(), self.index.occurrences.len(), self.index.vars.len());
            let (warn, mentioned) = (self.warn, self.mentioned.clone());
            out.push(f(self));
            self.diags.truncate(nd);
            self.error_tally.set(tally);
            self.index.occurrences.truncate(no);
            self.index.vars.truncate(nv);
            self.warn = warn;
            self.mentioned = mentioned;
        }
        self.named.sort_override = None;
        Copies::Each(out)
    }

    /// The sort a named sort resolves to when it is not a component: a
    /// group of named instances (its first member; [`Checker::copies`] does
    /// the others).
    pub(super) fn group_sort(&mut self, n: &ast::Ident) -> Option<Sort> {
        let (g, def) = match self.globals.get(&n.name).copied() {
            Some((Global::InstanceGroup(g), def)) => (g, def),
            Some((Global::Instance(c), def)) => {
                self.record(n.span, SymbolKind::Instance, &n.name, def);
                self.report(
                    Diagnostic::new(Code::WrongSort, format!("`{}` is a named instance, not a component type", n.name))
                        .primary(self.file, n.span, "expected a component type or a group")
                        .secondary(def.file, def.span, "declared here")
                        .help(format!(
                            "name it directly (`{} on h`, `{}.attr`), or range over its type `{}`",
                            n.name,
                            n.name,
                            self.prog
                                .components
                                .get(self.prog.ddd_component(c))
                                .map(|x| x.name.as_str())
                                .unwrap_or("?")
                        )),
                );
                return None;
            }
            _ => return None,
        };
        self.record(n.span, SymbolKind::Instance, &n.name, def);
        let first = self.named.groups.get(g).and_then(|(_, m)| m.first().copied())?;
        Some(Sort::Instance(first))
    }

    /// The sort the current copy of an expanded binder stands for.
    pub(super) fn take_override(&mut self, s: Sort) -> Sort {
        match (self.named.sort_override.take(), s) {
            (Some(c), Sort::Instance(_)) => Sort::Instance(c),
            _ => s,
        }
    }

    /// The variable standing for named instance `c` in the clause being
    /// checked, made on first use.
    pub(super) fn implicit_var(&mut self, c: CompId, name: &str, loc: Loc) -> Option<VarId> {
        for frame in self.named.implicit.iter().rev() {
            if let Some((_, v)) = frame.iter().find(|(x, _)| *x == c) {
                return Some(*v);
            }
        }
        if self.named.implicit.is_empty() {
            // Not in a clause or an objective (nothing binds it).
            self.report(
                Diagnostic::new(Code::WrongSort, format!("the named instance `{name}` cannot be used here"))
                    .primary(loc.file, loc.span, "not in a clause or an objective")
                    .note("a named instance stands for its instance in clauses, objectives and preferences"),
            );
            return None;
        }
        let v = self.fresh_var(name, Sort::Instance(c), loc);
        self.named.implicit.last_mut()?.push((c, v));
        Some(v)
    }

    /// Wraps a clause in the `forall`s over the named instances it named.
    pub(super) fn close_implicit(&mut self, mut f: Formula) -> Formula {
        let frame = self.named.implicit.pop().unwrap_or_default();
        for (_, var) in frame.into_iter().rev() {
            let loc = f.loc;
            f = Formula {
                kind: FormulaKind::Quant {
                    q: ast::Quantifier::Forall,
                    var,
                    domain: Domain::Deployment,
                    body: Box::new(f),
                },
                loc,
            };
        }
        f
    }

    /// Wraps a term (an objective) in `sum`s over the named instances it named.
    pub(super) fn close_implicit_term(&mut self, mut t: Term) -> Term {
        let frame = self.named.implicit.pop().unwrap_or_default();
        for (_, var) in frame.into_iter().rev() {
            let loc = t.loc;
            let binder = Binder { var, domain: Domain::Deployment, cond: None };
            t = Term { kind: TermKind::Sum(Box::new(binder), Box::new(t)), ty: Type::Int, loc };
        }
        t
    }

    /// Whether two instance types are one type and its named instances
    /// (their instances are never equal: `a = b` is false).
    pub(super) fn same_family(&self, a: CompId, b: CompId) -> bool {
        a != b && self.prog.ddd_component(a) == self.prog.ddd_component(b)
    }
}

/// A value of type `t`, standing in for one whose error was reported.
fn placeholder(t: Type) -> Value {
    match t {
        Type::Str => Value::Str(String::new()),
        Type::Bool => Value::Bool(false),
        _ => Value::Int(0),
    }
}
