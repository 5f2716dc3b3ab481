//! Checking formulas and terms: scopes, sorts, ports, attributes, and the
//! static truth of clauses (for the "always true/false" warnings).

use super::index::{SymbolKind, VarDef, VarSort};
use super::ir::*;
use super::{Binding, Checker, Global};
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::syntax::ast::{self, CardArg, ExprKind, SortName};

impl Checker<'_> {
    fn loc(&self, span: ast::Span) -> Loc {
        Loc::new(self.file, span)
    }

    /// A type in words, for messages: "an instance of `Web`", "a host".
    pub(super) fn type_name(&self, t: Type) -> String {
        match t {
            Type::Instance(c) => match self.prog.components.get(c) {
                Some(x) if x.named.is_some() => format!(
                    "the named instance `{}` of `{}`",
                    x.name,
                    self.prog.components.get(self.prog.ddd_component(c)).map(|b| b.name.as_str()).unwrap_or("?")
                ),
                x => format!("an instance of `{}`", x.map(|c| c.name.as_str()).unwrap_or("?")),
            },
            Type::Int => "an integer".to_string(),
            Type::Str => "a string".to_string(),
            Type::Bool => "a boolean".to_string(),
            Type::Host => "a host".to_string(),
            Type::Unknown => "a value of unknown type".to_string(),
        }
    }

    /// How many errors have been reported so far. Diagnostics are only ever
    /// appended, so only the new ones are counted (amortised O(1)).
    pub(super) fn error_count(&self) -> usize {
        let (seen, count) = self.error_tally.get();
        let new = self.diags.get(seen..).unwrap_or_default().iter().filter(|d| d.is_error()).count();
        self.error_tally.set((self.diags.len(), count + new));
        count + new
    }

    fn is_phantom(&self, c: CompId) -> bool {
        c >= self.real_comps
    }

    fn new_var(&mut self, name: &str, sort: Sort, loc: Loc) -> VarId {
        self.prog.vars.push(VarInfo { name: name.to_string(), sort, loc });
        self.var_used.push(false);
        self.prog.vars.len() - 1
    }

    fn lookup_var(&mut self, name: &str) -> Option<VarId> {
        let v = self.scopes.iter().rev().flat_map(|s| s.iter().rev()).find(|(n, _)| n == name).map(|(_, v)| *v)?;
        self.var_used[v] = true;
        Some(v)
    }

    /// Opens a scope binding `names`; reports names bound twice in it.
    fn push_scope(&mut self, names: &[ast::Ident], sort: Sort, param: Option<String>) -> Vec<VarId> {
        let mut scope: Vec<(String, VarId)> = vec![];
        let mut ids = vec![];
        for n in names {
            if let Some((_, prev)) = scope.iter().find(|(s, _)| *s == n.name) {
                let prev_loc = self.prog.vars[*prev].loc;
                self.report(
                    Diagnostic::new(Code::DuplicateVariable, format!("variable `{}` is bound twice here", n.name))
                        .primary(self.file, n.span, "bound again here")
                        .secondary(prev_loc.file, prev_loc.span, "first bound here"),
                );
            }
            let v = self.new_var(&n.name, sort, self.loc(n.span));
            if let Some(p) = &param {
                self.var_param.insert(v, p.clone());
            }
            if self.frames.is_empty() {
                let loc = self.loc(n.span);
                let vsort = match (sort, &param) {
                    (_, Some(p)) => VarSort::ComponentParam(p.clone()),
                    (Sort::Host, None) => VarSort::Host,
                    (Sort::Instance(c), None) => VarSort::Component(c),
                    (Sort::Group(g), None) => VarSort::Group(self.prog.groups.get(g).cloned().unwrap_or_default()),
                };
                self.index.add(loc, SymbolKind::Variable, &n.name, loc);
                self.index.vars.push(VarDef { loc, name: n.name.clone(), sort: vsort });
            }
            scope.push((n.name.clone(), v));
            ids.push(v);
        }
        self.scopes.push(scope);
        ids
    }

    /// Marks the index entries of variables whose sort did not resolve.
    fn index_unknown_sorts(&mut self, ids: &[VarId]) {
        for &v in ids {
            let loc = self.prog.vars[v].loc;
            if let Some(d) = self.index.vars.iter_mut().rev().find(|d| d.loc == loc) {
                d.sort = VarSort::Unknown;
            }
        }
    }

    /// Closes a scope, warning about variables never used.
    fn pop_scope(&mut self, warn_unused: bool) {
        let Some(scope) = self.scopes.pop() else { return };
        if !warn_unused || !self.warn || !self.frames.is_empty() {
            return;
        }
        for (name, v) in scope {
            if !self.var_used[v] && !name.starts_with('_') {
                let loc = self.prog.vars[v].loc;
                self.diags.push(
                    Diagnostic::new(Code::UnusedVariable, format!("variable `{name}` is never used"))
                        .primary(loc.file, loc.span, "bound here but never used")
                        .help(format!("if that is intended, name it `_{name}`")),
                );
            }
        }
    }

    /// Resolves the sort of a binder; `None` after reporting an error. In a
    /// copy of a binder over a type with named instances, the copy's sort.
    fn sort(&mut self, s: &SortName) -> Option<(Sort, Option<String>)> {
        let r = self.sort_plain(s);
        let r = r.map(|(sort, p)| (self.take_override(sort), p));
        self.named.sort_override = None;
        r
    }

    fn sort_plain(&mut self, s: &SortName) -> Option<(Sort, Option<String>)> {
        match s {
            SortName::Host(_) => Some((Sort::Host, None)),
            SortName::Named(n) => {
                if let Some((b, _)) = self.env.get(&n.name) {
                    return match b {
                        Binding::Component(c) => {
                            let c = *c;
                            self.record_param(n);
                            Some((Sort::Instance(c), Some(n.name.clone())))
                        }
                        Binding::Invalid => None,
                        _ => {
                            self.report(
                                Diagnostic::new(Code::WrongSort, format!("`{}` is not a component parameter", n.name))
                                    .primary(self.file, n.span, "expected a component or `host`"),
                            );
                            None
                        }
                    };
                }
                match self.globals.get(&n.name).copied() {
                    Some((Global::Component(c), def)) => {
                        if self.in_force && c < self.mentioned.len() {
                            self.mentioned[c] = true;
                        }
                        self.record(n.span, SymbolKind::Component, &n.name, def);
                        Some((Sort::Instance(c), None))
                    }
                    Some((Global::Broken, _)) => None,
                    Some((Global::Instance(_) | Global::InstanceGroup(_), _)) => self.group_sort(n).map(|s| (s, None)),
                    _ if self.prog.host_attr_types.contains_key(&n.name) => {
                        Some((Sort::Group(self.group(&n.name)), None))
                    }
                    _ => {
                        self.unknown_component(n);
                        None
                    }
                }
            }
        }
    }

    fn domain(&mut self, d: &ast::Domain, sort: Sort, sort_span: ast::Span) -> Domain {
        if let Sort::Group(g) = sort {
            if !matches!(d, ast::Domain::Deployment(_)) {
                let attr = self.prog.groups.get(g).cloned().unwrap_or_default();
                let span = match d {
                    ast::Domain::Host(e) => e.span,
                    ast::Domain::Group { attr, value } => attr.span.to(value.span),
                    ast::Domain::Deployment(s) => *s,
                };
                self.report(
                    Diagnostic::new(Code::GroupMisuse, format!("the values of `{attr}` range over `deployment` only"))
                        .primary(self.file, span, "expected `deployment`")
                        .secondary(self.file, sort_span, format!("a binder over the values of host attribute `{attr}`"))
                        .note(format!(
                            "`{attr} z in deployment` ranges over every value `{attr}` takes on an available host"
                        )),
                );
            }
            return Domain::Deployment;
        }
        match d {
            ast::Domain::Deployment(_) => Domain::Deployment,
            ast::Domain::Group { attr, value } => self.group_domain(attr, value),
            ast::Domain::Host(e) => {
                if sort == Sort::Host {
                    self.report(
                        Diagnostic::new(Code::WrongSort, "hosts range over `deployment` only")
                            .primary(self.file, e.span, "expected `deployment`")
                            .secondary(self.file, sort_span, "a binder over hosts"),
                    );
                    return Domain::Deployment;
                }
                let t = self.term(e);
                self.expect_type(&t, Type::Host, "`deployment` or a host after `in`");
                Domain::OnHost(t)
            }
        }
    }

    fn expect_type(&mut self, t: &Term, want: Type, what: &str) -> bool {
        if t.ty == want || t.ty == Type::Unknown {
            return true;
        }
        self.report(
            Diagnostic::new(Code::WrongSort, format!("expected {what}, found {}", self.type_name(t.ty))).primary(
                t.loc.file,
                t.loc.span,
                format!("this is {}", self.type_name(t.ty)),
            ),
        );
        false
    }

    /// A term that must be an instance variable (for `connectedto`,
    /// `reachable`, `hostof`, `on`).
    fn instance_var(&mut self, e: &ast::Expr, role: &str) -> Option<VarId> {
        let t = self.term(e);
        match (&t.kind, t.ty) {
            (TermKind::Var(v), Type::Instance(_)) => Some(*v),
            (_, Type::Unknown) => None,
            _ => {
                self.report(
                    Diagnostic::new(Code::WrongSort, format!("{role} needs a component instance variable"))
                        .primary(t.loc.file, t.loc.span, format!("this is {}", self.type_name(t.ty)))
                        .note("instance variables are bound by `forall`, `exists`, `card(…)` and `sum(…)`"),
                );
                None
            }
        }
    }

    /// Checks the clauses of a body, warning about clauses that are always
    /// true or false, and conjoins them.
    pub(super) fn clauses(&mut self, es: &[ast::Expr], span: ast::Span) -> Formula {
        let mut fs: Vec<Formula> = es.iter().map(|e| self.clause(e)).collect();
        if fs.len() == 1 {
            return fs.remove(0);
        }
        Formula { kind: FormulaKind::And(fs), loc: self.loc(span) }
    }

    /// Checks one clause and warns when it is statically true or false.
    pub(super) fn clause(&mut self, e: &ast::Expr) -> Formula {
        let errors_before = self.diags.len();
        self.named.implicit.push(vec![]);
        let f = self.formula(e);
        let f = self.close_implicit(f);
        // A `use` is judged inside its own expansion.
        if self.diags.len() == errors_before && !matches!(e.kind, ExprKind::Use(_)) {
            let counts = matches!(&f.kind, FormulaKind::Cmp(_, a, b)
                if matches!(a.kind, TermKind::Count(_)) || matches!(b.kind, TermKind::Count(_)));
            match static_truth(&f) {
                Some(true) if !matches!(f.kind, FormulaKind::Const(_)) || self.warn => {
                    let mut d = Diagnostic::new(Code::TriviallyTrue, "this clause is always true").primary(
                        f.loc.file,
                        f.loc.span,
                        "always true",
                    );
                    d = if counts {
                        d.note("a count is never negative, so this holds in every configuration")
                    } else {
                        d.note("it holds in every configuration, so it constrains nothing; was something else meant?")
                    };
                    self.report(d);
                }
                // A clause of a pattern that is false whatever the arguments
                // was reported by the pattern's own check; not again per use.
                Some(false) if self.frames.is_empty() || !self.false_in_pattern.contains(&f.loc) => {
                    if self.generic {
                        self.false_in_pattern.insert(f.loc);
                    }
                    let mut d = Diagnostic::new(Code::TriviallyFalse, "this clause is always false").primary(
                        f.loc.file,
                        f.loc.span,
                        "always false",
                    );
                    if counts {
                        d = d.note("a count is never negative");
                    }
                    self.report(d.note("no configuration can satisfy a goal with this clause in force"));
                }
                _ => {}
            }
        }
        f
    }

    fn formula(&mut self, e: &ast::Expr) -> Formula {
        let loc = self.loc(e.span);
        let kind = match &e.kind {
            ExprKind::Bool(b) => FormulaKind::Const(*b),
            ExprKind::Not(a) => FormulaKind::Not(Box::new(self.formula(a))),
            ExprKind::And(v) => FormulaKind::And(v.iter().map(|a| self.formula(a)).collect()),
            ExprKind::Or(v) => FormulaKind::Or(v.iter().map(|a| self.formula(a)).collect()),
            ExprKind::Group(v) => FormulaKind::And(v.iter().map(|a| self.clause(a)).collect()),
            ExprKind::Implies(a, b) => FormulaKind::Implies(Box::new(self.formula(a)), Box::new(self.formula(b))),
            ExprKind::Cmp(a, op, b) => {
                let (ta, tb) = (self.term(a), self.term(b));
                self.compare(*op, ta, tb, e.span)
            }
            ExprKind::ConnectsTo(a, b) => self.connects(a, b, e.span),
            ExprKind::ConnectedTo(a, b) => {
                match (self.instance_var(a, "`connectedto`"), self.instance_var(b, "`connectedto`")) {
                    (Some(x), Some(y)) => FormulaKind::Connected(x, y),
                    _ => FormulaKind::Error,
                }
            }
            ExprKind::Reachable(a, b) => {
                match (self.instance_var(a, "`reachable`"), self.instance_var(b, "`reachable`")) {
                    (Some(x), Some(y)) => FormulaKind::Reachable(x, y),
                    _ => FormulaKind::Error,
                }
            }
            ExprKind::On(a, b) => {
                let x = self.instance_var(a, "`on`");
                let h = self.term(b);
                let h_ok = self.expect_type(&h, Type::Host, "a host after `on`");
                match x {
                    Some(x) if h_ok => {
                        let lhs = Term { kind: TermKind::HostOf(x), ty: Type::Host, loc: self.loc(a.span) };
                        FormulaKind::Cmp(ast::CmpOp::Eq, lhs, h)
                    }
                    _ => FormulaKind::Error,
                }
            }
            ExprKind::Quant { q, sort, vars, domain, body } => {
                if let Some(f) = self.quant_copies(e, *q, sort, vars, domain, body) {
                    return f;
                }
                let Some((s, param)) = self.sort(sort) else {
                    // Still check the body for other errors, with the variables poisoned.
                    if let ast::Domain::Host(d) = domain {
                        let _ = self.term(d);
                    }
                    let ids = self.push_scope(vars, Sort::Host, None);
                    self.poisoned.extend(ids.iter().copied());
                    self.index_unknown_sorts(&ids);
                    let body_span = e.span;
                    let _ = self.clauses(body, body_span);
                    self.pop_scope(false);
                    return Formula { kind: FormulaKind::Error, loc };
                };
                let errors_before = self.error_count();
                let dom = self.domain(domain, s, sort.span());
                let ids = self.push_scope(vars, s, param);
                let body_span = body.first().map(|b| b.span.to(body[body.len() - 1].span)).unwrap_or(e.span);
                let mut f = self.clauses(body, body_span);
                // After an error in the body (a misspelt variable, say) an
                // "unused variable" warning would only repeat it.
                let clean = self.error_count() == errors_before;
                self.pop_scope(clean);
                for v in ids.into_iter().rev() {
                    f = Formula {
                        kind: FormulaKind::Quant { q: *q, var: v, domain: dom.clone(), body: Box::new(f) },
                        loc,
                    };
                }
                return f;
            }
            ExprKind::Use(u) => {
                let clauses = self.expand_use(u);
                FormulaKind::And(clauses.into_iter().map(|c| c.formula).collect())
            }
            _ => {
                let t = self.term(e);
                if t.ty != Type::Unknown {
                    let mut d = Diagnostic::new(
                        Code::FormulaTermMismatch,
                        format!("expected a clause, found {}", self.type_name(t.ty)),
                    )
                    .primary(self.file, e.span, "this is a value, not a condition");
                    if t.ty == Type::Bool {
                        d = d.help("compare it: `… = true`");
                    } else {
                        d = d.help("compare it with something, e.g. `… = …` or `… <= …`");
                    }
                    self.report(d);
                }
                FormulaKind::Error
            }
        };
        Formula { kind, loc }
    }

    fn compare(&mut self, op: ast::CmpOp, a: Term, b: Term, span: ast::Span) -> FormulaKind {
        use ast::CmpOp::*;
        if a.ty == Type::Unknown || b.ty == Type::Unknown {
            // Already reported, or abstract in a generic check: keep it
            // opaque so it is not mistaken for a constant clause.
            return FormulaKind::Cmp(op, a, b);
        }
        let phantoms =
            matches!((a.ty, b.ty), (Type::Instance(x), Type::Instance(y)) if self.is_phantom(x) || self.is_phantom(y));
        let at = self.operator_span(&a, &b, span);
        if let (Type::Instance(x), Type::Instance(y), Eq | Ne) = (a.ty, b.ty, op) {
            if self.same_family(x, y) {
                // A named instance is no other instance of its type.
                return FormulaKind::Const(op == Ne);
            }
        }
        if a.ty != b.ty && !phantoms {
            let mut d = Diagnostic::new(
                Code::SortMismatch,
                format!("cannot compare {} with {}", self.type_name(a.ty), self.type_name(b.ty)),
            )
            .primary(self.file, at, "comparison across sorts")
            .secondary(a.loc.file, a.loc.span, format!("this is {}", self.type_name(a.ty)))
            .secondary(b.loc.file, b.loc.span, format!("this is {}", self.type_name(b.ty)));
            if matches!((a.ty, b.ty), (Type::Instance(_), Type::Host) | (Type::Host, Type::Instance(_))) {
                d = d.help("to ask where an instance runs, compare its host: `hostof(x) = h`, or write `x on h`");
            }
            self.report(d);
            return FormulaKind::Error;
        }
        if matches!(op, Lt | Le | Gt | Ge) && a.ty != Type::Int {
            self.report(
                Diagnostic::new(
                    Code::NotOrdered,
                    format!("`{}` needs integers, found {}", op.as_str(), self.type_name(a.ty)),
                )
                .primary(self.file, at, "ordering comparison on non-integers")
                .secondary(a.loc.file, a.loc.span, format!("this is {}", self.type_name(a.ty)))
                .note("only `=` and `!=` compare strings, booleans, hosts and instances"),
            );
            return FormulaKind::Error;
        }
        FormulaKind::Cmp(op, a, b)
    }

    /// The span of the operator between two operands (`=` in `a = b`), found
    /// in the source text; the whole `span` when it cannot be found.
    fn operator_span(&self, a: &Term, b: &Term, span: ast::Span) -> ast::Span {
        let (l, r) = (a.loc.span.end as usize, b.loc.span.start as usize);
        if a.loc.file != self.file || b.loc.file != self.file || l >= r {
            return span;
        }
        let Some(gap) = self.sources.and_then(|s| s.text(self.file).get(l..r)) else { return span };
        let lead = gap.len() - gap.trim_start().len();
        let op_len = gap[lead..].find(|c: char| !"=!<>*".contains(c)).unwrap_or(gap.len() - lead);
        if op_len == 0 {
            return span;
        }
        ast::Span::new(l + lead, l + lead + op_len)
    }

    /// `x.p connectsto y.q`.
    fn connects(&mut self, a: &ast::Expr, b: &ast::Expr, span: ast::Span) -> FormulaKind {
        let pa = self.port_ref(a);
        let pb = self.port_ref(b);
        let (Some((x, px)), Some((y, py))) = (pa, pb) else { return FormulaKind::Error };
        if x == y {
            self.report(
                Diagnostic::new(Code::SelfChannel, "a channel cannot join two ports of the same instance")
                    .primary(self.file, span, "both ends are ports of the same variable")
                    .note("channels join different instances; to connect two instances of one component, bind two variables and add `x != y`"),
            );
            return FormulaKind::Error;
        }
        let (Sort::Instance(cx), Sort::Instance(cy)) = (self.prog.vars[x].sort, self.prog.vars[y].sort) else {
            return FormulaKind::Error;
        };
        let portx = &self.prog.components[cx].ports[px];
        let porty = &self.prog.components[cy].ports[py];
        let (dx, dy) = (portx.direction, porty.direction);
        let (lx, ly) = (portx.loc, porty.loc);
        let (nx, ny) = (portx.name.clone(), porty.name.clone());
        let (cnx, cny) = (self.prog.components[cx].name.clone(), self.prog.components[cy].name.clone());
        // As written, with a port parameter replaced by the port it stands for.
        let (wx, wy) = (format!("{}.{nx}", self.prog.vars[x].name), format!("{}.{ny}", self.prog.vars[y].name));
        if dx == Direction::External || dy == Direction::External {
            let (n, l, c, end) = if dx == Direction::External { (nx, lx, cnx, a.span) } else { (ny, ly, cny, b.span) };
            self.report(
                Diagnostic::new(
                    Code::ExternalPort,
                    format!("port `{n}` of `{c}` is external; no channel may attach to it"),
                )
                .primary(self.file, end, "an external port")
                .secondary(l.file, l.span, "declared `: external` here")
                .note("an external port talks to the world outside the deployment, not to other instances"),
            );
            return FormulaKind::Error;
        }
        if dx == dy && dx != Direction::Both {
            let w = dx.word();
            let mut d = Diagnostic::new(Code::PortDirection, format!("`{wx}` and `{wy}` are both {w} ports"))
                .primary(self.file, span, format!("{w} to {w}"))
                .secondary(lx.file, lx.span, format!("`{cnx}.{nx}` is an {w} port"));
            if ly != lx {
                d = d.secondary(ly.file, ly.span, format!("`{cny}.{ny}` is an {w} port"));
            }
            self.report(d.help(
                "a channel goes from an `output` port to an `input` port; a port without a direction can be either end",
            ));
            return FormulaKind::Error;
        }
        FormulaKind::Connects { a: x, pa: px, b: y, pb: py }
    }

    /// Resolves `x.p` to a variable and a port of its component.
    fn port_ref(&mut self, e: &ast::Expr) -> Option<(VarId, PortId)> {
        let ExprKind::Field(base, pname) = &e.kind else {
            let t = self.term(e);
            if t.ty != Type::Unknown {
                let mut d =
                    Diagnostic::new(Code::ExpectedPort, "`connectsto` joins two ports, like `c.out connectsto r.cin`")
                        .primary(
                            self.file,
                            e.span,
                            format!("expected a port of an instance variable, found {}", self.type_name(t.ty)),
                        );
                if matches!(t.ty, Type::Instance(_)) {
                    d = d.help("to say that two instances share a channel on any ports, write `x connectedto y`");
                }
                self.report(d);
            }
            return None;
        };
        let ExprKind::Name(vname) = &base.kind else {
            self.report(Diagnostic::new(Code::ExpectedPort, "`connectsto` joins ports of instance variables").primary(
                self.file,
                base.span,
                "expected an instance variable here",
            ));
            return None;
        };
        let Some(v) = self.lookup_var(&vname.name) else {
            if let Some((Global::Instance(c), def)) = self.globals.get(&vname.name).copied() {
                // `vm1.nic`: a port of a named instance.
                self.record(vname.span, SymbolKind::Instance, &vname.name, def);
                let v = self.implicit_var(c, &vname.name, self.loc(vname.span))?;
                let port = self.prog.components[c].port(&pname.name);
                return match port {
                    Some(p) => Some((v, p)),
                    None => {
                        self.missing_port(v, self.prog.ddd_component(c), &pname.name, None, pname);
                        None
                    }
                };
            }
            self.unknown_name(vname);
            return None;
        };
        let vdef = self.prog.vars[v].loc;
        self.record(vname.span, SymbolKind::Variable, &vname.name, vdef);
        if self.poisoned.contains(&v) {
            return None;
        }
        let Sort::Instance(c) = self.prog.vars[v].sort else {
            self.report(
                Diagnostic::new(Code::ExpectedPort, format!("`{}` is a host; hosts have no ports", vname.name))
                    .primary(self.file, base.span, "a host variable"),
            );
            return None;
        };
        // A port parameter stands for the port name it is bound to.
        let (port_name, via_param) = match self.env.get(&pname.name) {
            Some((Binding::Port(n), _)) => (n.clone(), Some(pname.name.clone())),
            _ => (pname.name.clone(), None),
        };
        if via_param.is_some() {
            self.record_param(pname);
        }
        if let Some(p) = self.prog.components[c].port(&port_name) {
            if !self.is_phantom(c) {
                let def = self.prog.components[c].ports[p].loc;
                match via_param.as_deref().and_then(|q| self.blame_arg(q)) {
                    // The port argument of the user's `use` names this port.
                    Some(arg) if !self.frames.is_empty() => {
                        self.index.add(arg, SymbolKind::Port, &port_name, def);
                    }
                    _ if via_param.is_none() => self.record(pname.span, SymbolKind::Port, &port_name, def),
                    _ => {}
                }
            }
            return Some((v, p));
        }
        if self.is_phantom(c) {
            // A generic check: the pattern requires this port of its argument.
            let comp = &mut self.prog.components[c];
            comp.ports.push(Port {
                name: port_name,
                loc: Loc::new(self.file, pname.span),
                variadic: true,
                capacity: None,
                direction: Direction::Both,
            });
            return Some((v, comp.ports.len() - 1));
        }
        self.missing_port(v, c, &port_name, via_param, pname);
        None
    }

    fn missing_port(&mut self, v: VarId, c: CompId, port: &str, via_param: Option<String>, at: &ast::Ident) {
        let comp = &self.prog.components[c];
        let (cname, cloc) = (comp.name.clone(), comp.loc);
        let ports: Vec<String> = comp.ports.iter().map(|p| p.name.clone()).collect();
        let hint = did_you_mean(port, ports.iter().map(String::as_str)).map(str::to_string);
        let comp_param = self.var_param.get(&v).cloned();
        if let (Some(frame), true) = (self.frames.last(), via_param.is_some() || comp_param.is_some()) {
            // The requirement comes from a pattern: blame the argument of the
            // user's `use` that the port (or component) came from, following
            // parameters through nested uses; else the whole outermost `use`.
            let outer = self.frames.first().map(|f| f.use_loc).unwrap_or(frame.use_loc);
            let primary = via_param
                .as_deref()
                .and_then(|p| self.blame_arg(p))
                .or_else(|| comp_param.as_deref().and_then(|p| self.blame_arg(p)))
                .unwrap_or(outer);
            // One report per use, component and port, however many clauses
            // of the pattern read that port.
            if !self.missing_reported.insert((outer, c, port.to_string())) {
                return;
            }
            let mut d = Diagnostic::new(
                Code::MissingRequiredPort,
                format!("component `{cname}` has no port `{port}`, required by constraintset `{}`", frame.pattern),
            )
            .primary(primary.file, primary.span, format!("`{cname}` lacks `{port}`"));
            for f in self.frames.iter().skip(1) {
                d = d.secondary(f.use_loc.file, f.use_loc.span, format!("through this use of `{}`", f.pattern));
            }
            d = d.secondary(self.file, at.span, "required here").secondary(
                cloc.file,
                cloc.span,
                format!("`{cname}` declared here"),
            );
            d = match hint {
                Some(h) => d.help(format!("did you mean `{h}`?")),
                None if ports.is_empty() => d.note(format!("`{cname}` has no ports")),
                None => d.note(format!("`{cname}` has ports: {}", ports.join(", "))),
            };
            self.diags.push(d);
            return;
        }
        let mut d = Diagnostic::new(Code::UnknownPort, format!("component `{cname}` has no port `{port}`"))
            .primary(self.file, at.span, "unknown port")
            .secondary(cloc.file, cloc.span, format!("`{cname}` declared here"));
        d = match hint {
            Some(h) => d.did_you_mean(&h),
            None if ports.is_empty() => d.note(format!("`{cname}` has no ports")),
            None => d.note(format!("`{cname}` has ports: {}", ports.join(", "))),
        };
        self.report(d);
    }

    /// The argument of the outermost `use` that parameter `param` of the
    /// innermost pattern stands for, following parameters passed on through
    /// nested uses; `None` when a pattern in between fixed it itself.
    fn blame_arg(&self, param: &str) -> Option<Loc> {
        let mut p = param.to_string();
        for (k, f) in self.frames.iter().enumerate().rev() {
            let (loc, name) = f.args.get(&p)?;
            if k == 0 {
                return Some(*loc);
            }
            p = name.clone()?;
        }
        None
    }

    fn unknown_name(&mut self, n: &ast::Ident) {
        let mut cands: Vec<String> = self.scopes.iter().flatten().map(|(s, _)| s.clone()).collect();
        cands.extend(self.prog.hosts.iter().map(|h| h.name.clone()));
        cands.extend(self.env.iter().filter(|(_, (b, _))| matches!(b, Binding::Int(_))).map(|(k, _)| k.clone()));
        let mut d = Diagnostic::new(Code::UnknownName, format!("unknown name `{}`", n.name)).primary(
            self.file,
            n.span,
            "not a variable or host in scope",
        );
        if self.soft {
            d = Diagnostic::new(Code::UnboundInSoft, format!("unbound name `{}`", n.name))
                .primary(self.file, n.span, "not a variable or host in scope")
                .help("objectives and preferences are closed: bind the variable with `forall`, `card` or `sum`, e.g. `prefer forall Web w in deployment (…)`");
        }
        if let Some(s) = did_you_mean(&n.name, cands.iter().map(String::as_str)) {
            d = d.did_you_mean(s);
        } else if let Some(hint) = foreign_feature(&n.name) {
            d = d.help(hint);
        }
        self.report(d);
    }

    fn err_term(&self, span: ast::Span) -> Term {
        Term { kind: TermKind::Error, ty: Type::Unknown, loc: self.loc(span) }
    }

    pub(super) fn term(&mut self, e: &ast::Expr) -> Term {
        let loc = self.loc(e.span);
        let mk = |kind, ty| Term { kind, ty, loc };
        match &e.kind {
            ExprKind::Int(n) => mk(TermKind::Int(*n), Type::Int),
            ExprKind::Str(s) => mk(TermKind::Str(s.clone()), Type::Str),
            ExprKind::Bool(b) => mk(TermKind::Bool(*b), Type::Bool),
            ExprKind::Name(n) => self.name_term(n, loc),
            ExprKind::Field(base, f) => self.field(base, f, loc),
            ExprKind::HostOf(x) => match self.instance_var(x, "`hostof`") {
                Some(v) => mk(TermKind::HostOf(v), Type::Host),
                None => self.err_term(e.span),
            },
            ExprKind::Neg(a) => {
                let t = self.term(a);
                if !self.arith_operand(&t) {
                    return self.err_term(e.span);
                }
                mk(TermKind::Neg(Box::new(t)), Type::Int)
            }
            ExprKind::Add(v) => {
                let mut ok = true;
                let mut out = vec![];
                for (neg, a) in v {
                    let t = self.term(a);
                    ok &= self.arith_operand(&t);
                    out.push((*neg, t));
                }
                if !ok {
                    return self.err_term(e.span);
                }
                mk(TermKind::Add(out), Type::Int)
            }
            ExprKind::Mul(a, b) => {
                let (ta, tb) = (self.term(a), self.term(b));
                let ok = self.arith_operand(&ta) & self.arith_operand(&tb);
                if !ok {
                    return self.err_term(e.span);
                }
                if !ta.is_constant() && !tb.is_constant() {
                    let at = self.operator_span(&ta, &tb, e.span);
                    self.report(
                        Diagnostic::new(Code::NonLinear, "a product needs a constant on one side")
                            .primary(self.file, at, "product of two terms that vary with the configuration")
                            .secondary(ta.loc.file, ta.loc.span, "not constant")
                            .secondary(tb.loc.file, tb.loc.span, "not constant")
                            .note("Deladas constraints are linear; multiply by an integer literal or parameter"),
                    );
                    return self.err_term(e.span);
                }
                mk(TermKind::Mul(Box::new(ta), Box::new(tb)), Type::Int)
            }
            ExprKind::Card(arg) => {
                let sort = match &**arg {
                    CardArg::InstancesOf { component, .. } => SortName::Named(component.clone()),
                    CardArg::ConnectedTo { sort, .. } => sort.clone(),
                    CardArg::Filter(b) => b.sort.clone(),
                };
                match self.copies(&sort, |me| me.card(arg, loc)) {
                    super::instances::Copies::Plain => self.card(arg, loc),
                    super::instances::Copies::Each(ts) => self.add_copies(ts, loc),
                }
            }
            ExprKind::Abs(_) | ExprKind::Extreme { .. } | ExprKind::Aggregate { .. } => self.workload_term(e, loc),
            ExprKind::Sum(b, _) if self.named.sort_override.is_none() => match self.copies(&b.sort, |me| me.term(e)) {
                super::instances::Copies::Plain => self.sum_term(e, loc),
                super::instances::Copies::Each(ts) => self.add_copies(ts, loc),
            },
            ExprKind::Sum(..) => self.sum_term(e, loc),
            _ => {
                self.report(
                    Diagnostic::new(Code::FormulaTermMismatch, "expected a term, found a clause")
                        .primary(self.file, e.span, "this is a condition, not a value")
                        .note("conditions can be counted: `card(T x in deployment where …)`"),
                );
                self.err_term(e.span)
            }
        }
    }

    /// `sum(T y in D [where F] : t)`.
    fn sum_term(&mut self, e: &ast::Expr, loc: Loc) -> Term {
        let mk = |kind, ty| Term { kind, ty, loc };
        let ExprKind::Sum(b, t) = &e.kind else { return self.err_term(e.span) };
        let Some(binder) = self.binder(b) else { return self.err_term(e.span) };
        let body = self.term(t);
        self.pop_scope(false);
        if !self.expect_type(&body, Type::Int, "an integer term to sum") {
            return self.err_term(e.span);
        }
        if body.has_extreme() {
            self.report(
                        Diagnostic::new(Code::ExtremeInSum, "`abs`, `min` and `max` cannot be summed")
                            .primary(body.loc.file, body.loc.span, "a sum of `abs`, `min` or `max` terms")
                            .note("each `abs`, `min` or `max` is decided by cases in the comparison it stands in; a sum of them would need a case per combination")
                            .help("bound each one instead: `forall … ( max(…) <= k )`, or sum the parts and compare with `min`/`max` outside the sum"),
                    );
            return self.err_term(e.span);
        }
        mk(TermKind::Sum(Box::new(binder), Box::new(body)), Type::Int)
    }

    /// The copies of a count or sum over a type with named instances, added up.
    fn add_copies(&mut self, ts: Vec<Term>, loc: Loc) -> Term {
        if ts.iter().any(|t| t.ty == Type::Unknown) {
            return Term { kind: TermKind::Error, ty: Type::Unknown, loc };
        }
        Term { kind: TermKind::Add(ts.into_iter().map(|t| (false, t)).collect()), ty: Type::Int, loc }
    }

    /// A quantifier over a type with named instances or over a group: one
    /// copy per member (see `instances.rs`), several variables nested.
    fn quant_copies(
        &mut self,
        e: &ast::Expr,
        q: ast::Quantifier,
        sort: &SortName,
        vars: &[ast::Ident],
        domain: &ast::Domain,
        body: &[ast::Expr],
    ) -> Option<Formula> {
        if self.named.sort_override.is_some() {
            return None;
        }
        if vars.len() > 1 && !matches!(self.copies_of(sort).len(), 0 | 1) {
            // `forall VM a, b (…)` is `forall VM a (forall VM b (…))`.
            let inner = ast::Expr {
                kind: ExprKind::Quant {
                    q,
                    sort: sort.clone(),
                    vars: vars[1..].to_vec(),
                    domain: domain.clone(),
                    body: body.to_vec(),
                },
                span: e.span,
                depth: e.depth,
            };
            let outer = ast::Expr {
                kind: ExprKind::Quant {
                    q,
                    sort: sort.clone(),
                    vars: vars[..1].to_vec(),
                    domain: domain.clone(),
                    body: vec![inner],
                },
                span: e.span,
                depth: e.depth,
            };
            return Some(self.formula(&outer));
        }
        match self.copies(sort, |me| me.formula(e)) {
            super::instances::Copies::Plain => None,
            super::instances::Copies::Each(fs) => {
                let loc = self.loc(e.span);
                let kind = match q {
                    ast::Quantifier::Forall => FormulaKind::And(fs),
                    ast::Quantifier::Exists => FormulaKind::Or(fs),
                };
                Some(Formula { kind, loc })
            }
        }
    }

    fn arith_operand(&mut self, t: &Term) -> bool {
        if t.ty == Type::Int {
            return true;
        }
        if t.ty != Type::Unknown {
            self.report(
                Diagnostic::new(
                    Code::NotArithmetic,
                    format!("arithmetic needs integers, found {}", self.type_name(t.ty)),
                )
                .primary(t.loc.file, t.loc.span, "expected an integer"),
            );
        }
        false
    }

    fn name_term(&mut self, n: &ast::Ident, loc: Loc) -> Term {
        if let Some(v) = self.lookup_var(&n.name) {
            let def = self.prog.vars[v].loc;
            self.record(n.span, SymbolKind::Variable, &n.name, def);
            if self.poisoned.contains(&v) {
                return self.err_term(n.span);
            }
            let ty = match self.prog.vars[v].sort {
                Sort::Host => Type::Host,
                Sort::Instance(c) => Type::Instance(c),
                Sort::Group(g) => self.group_type(g),
            };
            return Term { kind: TermKind::Var(v), ty, loc };
        }
        self.record_param(n);
        if let Some((b, _)) = self.env.get(&n.name) {
            let msg = match b {
                Binding::Int(_) if self.generic => {
                    return Term { kind: TermKind::Param(n.name.clone()), ty: Type::Int, loc }
                }
                Binding::Int(k) => return Term { kind: TermKind::Int(*k), ty: Type::Int, loc },
                Binding::Invalid => return self.err_term(n.span),
                Binding::Component(_) => {
                    "a component parameter; count its instances with `card(instancesof … in deployment)`"
                }
                Binding::Port(_) => "a port parameter; use it as `x.p` in `connectsto`",
                Binding::Attr(_) => "an attribute parameter; use it as `x.a` or `h.a`",
            };
            self.report(Diagnostic::new(Code::WrongSort, format!("`{}` is {msg}", n.name)).primary(
                self.file,
                n.span,
                "not a value",
            ));
            return self.err_term(n.span);
        }
        self.record_global(n);
        match self.globals.get(&n.name).copied() {
            Some((Global::Host(h), _)) => Term { kind: TermKind::Host(h), ty: Type::Host, loc },
            Some((Global::Broken, _)) => self.err_term(n.span),
            Some((Global::Instance(c), _)) => match self.implicit_var(c, &n.name, loc) {
                Some(v) => Term { kind: TermKind::Var(v), ty: Type::Instance(c), loc },
                None => self.err_term(n.span),
            },
            Some((Global::InstanceGroup(_), dl)) => {
                self.report(
                    Diagnostic::new(
                        Code::WrongSort,
                        format!("`{}` is a group of named instances, not a value", n.name),
                    )
                    .primary(self.file, n.span, "a group")
                    .secondary(dl.file, dl.span, "declared here")
                    .help(format!(
                        "range over it (`forall {} x in deployment (…)`) or name one member (`{}1`)",
                        n.name, n.name
                    )),
                );
                self.err_term(n.span)
            }
            Some((Global::Component(_), dl)) => {
                self.report(
                    Diagnostic::new(Code::WrongSort, format!("`{}` is a component, not a value", n.name))
                        .primary(self.file, n.span, "a component type")
                        .secondary(dl.file, dl.span, "declared here")
                        .help(format!("bind an instance (`forall {} x in deployment (…)`) or count them (`card(instancesof {} in deployment)`)", n.name, n.name)),
                );
                self.err_term(n.span)
            }
            Some((Global::Constraintset(_), _)) => {
                self.report(
                    Diagnostic::new(Code::WrongSort, format!("`{}` is a constraintset, not a value", n.name))
                        .primary(self.file, n.span, "a constraintset")
                        .help(format!("bring it into force with `use {}(…)`", n.name)),
                );
                self.err_term(n.span)
            }
            None => {
                self.unknown_name(n);
                self.err_term(n.span)
            }
        }
    }

    /// `x.attr`, `h.attr`, `hostof(x).attr`.
    fn field(&mut self, base: &ast::Expr, f: &ast::Ident, loc: Loc) -> Term {
        let b = self.term(base);
        if matches!(self.env.get(&f.name), Some((Binding::Attr(_), _))) {
            self.record_param(f);
        }
        let attr = match self.env.get(&f.name) {
            // Generically, an attribute parameter names no attribute yet.
            Some((Binding::Attr(_), _)) if self.generic => return self.err_term(loc.span),
            Some((Binding::Attr(a), _)) => a.clone(),
            _ => f.name.clone(),
        };
        match b.ty {
            Type::Unknown => self.err_term(loc.span),
            Type::Instance(c) => {
                if self.is_phantom(c) {
                    return self.err_term(loc.span);
                }
                let comp = &self.prog.components[c];
                let value = match attr.as_str() {
                    "code" | "bundle" => Some(Value::Str(comp.code.clone())),
                    "maxperhost" => Some(Value::Int(comp.maxperhost as i64)),
                    "maxinstances" => comp.maxinstances.map(|n| Value::Int(n as i64)),
                    _ => comp.attr(&attr).cloned(),
                };
                if let Some(v) = value {
                    return Term::literal(v, loc);
                }
                let (cname, cloc) = (comp.name.clone(), comp.loc);
                if comp.port(&attr).is_some() {
                    self.report(
                        Diagnostic::new(
                            Code::WrongSort,
                            format!("`{}` is a port of `{cname}`, not an attribute", attr),
                        )
                        .primary(self.file, f.span, "a port")
                        .note("ports appear in `connectsto`: `x.p connectsto y.q`"),
                    );
                    return self.err_term(loc.span);
                }
                let names: Vec<String> = comp.attrs.iter().map(|(k, _)| k.clone()).collect();
                let mut d =
                    Diagnostic::new(Code::UnknownAttribute, format!("component `{cname}` has no attribute `{attr}`"))
                        .primary(self.file, f.span, "unknown attribute")
                        .secondary(cloc.file, cloc.span, format!("`{cname}` declared here"));
                if let Some(s) = did_you_mean(&attr, names.iter().map(String::as_str)) {
                    d = d.did_you_mean(s);
                } else if names.is_empty() {
                    d = d.note(format!("`{cname}` has no attributes besides `code`, `maxperhost` and `maxinstances`"));
                } else {
                    d = d.note(format!("`{cname}` has attributes: {}", names.join(", ")));
                }
                self.report(d);
                self.err_term(loc.span)
            }
            Type::Host => {
                if let TermKind::Host(h) = b.kind {
                    let host = &self.prog.hosts[h];
                    if let Some(v) = host.attr(&attr).cloned() {
                        return Term::literal(v, loc);
                    }
                    let (hname, hloc) = (host.name.clone(), host.loc);
                    let names: Vec<String> = host.attrs.iter().map(|(k, _)| k.clone()).collect();
                    let mut d =
                        Diagnostic::new(Code::UnknownAttribute, format!("host `{hname}` has no attribute `{attr}`"))
                            .primary(self.file, f.span, "unknown attribute")
                            .secondary(hloc.file, hloc.span, format!("`{hname}` declared here"));
                    if let Some(s) = did_you_mean(&attr, names.iter().map(String::as_str)) {
                        d = d.did_you_mean(s);
                    } else if names.is_empty() {
                        d = d.note(format!("`{hname}` has no attributes"));
                    } else {
                        d = d.note(format!("`{hname}` has attributes: {}", names.join(", ")));
                    }
                    self.report(d);
                    return self.err_term(loc.span);
                }
                // A host variable or `hostof(x)`: every available host must have it.
                let Some(ty) = self.prog.host_attr_types.get(&attr).copied() else {
                    let names: Vec<&str> = self.prog.host_attr_types.keys().map(String::as_str).collect();
                    let mut d = Diagnostic::new(Code::UnknownAttribute, format!("no host has an attribute `{attr}`"))
                        .primary(self.file, f.span, "unknown host attribute");
                    if let Some(s) = did_you_mean(&attr, names.iter().copied()) {
                        d = d.did_you_mean(s);
                    } else if names.is_empty() {
                        d = d.note("no host declares any attribute");
                    } else {
                        d = d.note(format!("host attributes: {}", names.join(", ")));
                    }
                    self.report(d);
                    return self.err_term(loc.span);
                };
                let lacking: Vec<(String, Loc)> = self
                    .prog
                    .hosts
                    .iter()
                    .filter(|h| h.attr(&attr).is_none())
                    .map(|h| (h.name.clone(), h.loc))
                    .collect();
                if !lacking.is_empty() {
                    let names: Vec<String> = lacking.iter().take(8).map(|(n, _)| format!("`{n}`")).collect();
                    let more =
                        if lacking.len() > 8 { format!(" and {} more", lacking.len() - 8) } else { String::new() };
                    let mut d = Diagnostic::new(
                        Code::UnknownAttribute,
                        format!("not every host has attribute `{attr}`: {}{more} lack it", names.join(", ")),
                    )
                    .primary(self.file, f.span, "read on every host in the domain");
                    for (n, l) in lacking.iter().take(3) {
                        d = d.secondary(l.file, l.span, format!("`{n}` has no `{attr}`"));
                    }
                    d = d.help(format!("give every host a `{attr}`"));
                    self.report(d);
                    return self.err_term(loc.span);
                }
                Term { kind: TermKind::HostAttr(Box::new(b), attr), ty, loc }
            }
            other => {
                self.report(
                    Diagnostic::new(Code::WrongSort, format!("{} has no attributes", self.type_name(other))).primary(
                        b.loc.file,
                        b.loc.span,
                        "only instances and hosts have attributes",
                    ),
                );
                self.err_term(loc.span)
            }
        }
    }

    /// `T y in D [where F]`: opens a scope with `y` (closed by the caller).
    fn binder(&mut self, b: &ast::Binder) -> Option<Binder> {
        let Some((sort, param)) = self.sort(&b.sort) else {
            let ids = self.push_scope(std::slice::from_ref(&b.var), Sort::Host, None);
            self.index_unknown_sorts(&ids);
            self.poisoned.extend(ids);
            if let Some(c) = &b.cond {
                let _ = self.clauses(c, b.var.span);
            }
            self.pop_scope(false);
            return None;
        };
        let domain = self.domain(&b.domain, sort, b.sort.span());
        let ids = self.push_scope(std::slice::from_ref(&b.var), sort, param);
        let var = ids[0];
        self.var_used[var] = true;
        // A `where` condition filters what is counted: it being always true
        // or false is not a clause of the goal being so, so no W0004/W0005.
        let cond = b.cond.as_ref().map(|c| {
            let span = c.first().map(|x| x.span.to(c[c.len() - 1].span)).unwrap_or(b.var.span);
            let mut fs: Vec<Formula> = c.iter().map(|e| self.formula(e)).collect();
            if fs.len() == 1 {
                fs.remove(0)
            } else {
                Formula { kind: FormulaKind::And(fs), loc: self.loc(span) }
            }
        });
        Some(Binder { var, domain, cond })
    }

    fn card(&mut self, arg: &CardArg, loc: Loc) -> Term {
        let count = |b: Binder| Term { kind: TermKind::Count(Box::new(b)), ty: Type::Int, loc };
        match arg {
            CardArg::InstancesOf { component, domain } => {
                let Some((sort, param)) = self.sort(&SortName::Named(component.clone())) else {
                    return self.err_term(loc.span);
                };
                let domain = self.domain(domain, sort, component.span);
                let var = self.new_var("_", sort, Loc::new(self.file, component.span));
                if let Some(p) = param {
                    self.var_param.insert(var, p);
                }
                count(Binder { var, domain, cond: None })
            }
            CardArg::ConnectedTo { sort, var, target } => {
                let Some((s, param)) = self.sort(sort) else {
                    // Still resolve the target, so its variable counts as used.
                    let _ = self.term(target);
                    return self.err_term(loc.span);
                };
                if s == Sort::Host {
                    self.report(
                        Diagnostic::new(Code::WrongSort, "hosts are not connected by channels")
                            .primary(self.file, sort.span(), "expected a component")
                            .help("count hosts with `card(host h in deployment where …)`"),
                    );
                    return self.err_term(loc.span);
                }
                let t = self.instance_var(target, "`connectedto`");
                let ids = self.push_scope(std::slice::from_ref(var), s, param);
                self.var_used[ids[0]] = true;
                self.pop_scope(false);
                let Some(t) = t else { return self.err_term(loc.span) };
                let cond = Formula { kind: FormulaKind::Connected(ids[0], t), loc };
                count(Binder { var: ids[0], domain: Domain::Deployment, cond: Some(cond) })
            }
            CardArg::Filter(b) => {
                let Some(binder) = self.binder(b) else { return self.err_term(loc.span) };
                self.pop_scope(false);
                count(binder)
            }
        }
    }
}

/// The truth value of a formula that does not depend on the configuration,
/// if it can be seen without solving: constants, comparisons of constants,
/// `x = x`, and counts compared with negative numbers (a count is never < 0).
pub fn static_truth(f: &Formula) -> Option<bool> {
    use ast::CmpOp::*;
    match &f.kind {
        FormulaKind::Const(b) => Some(*b),
        FormulaKind::Not(a) => static_truth(a).map(|b| !b),
        FormulaKind::And(v) => {
            let vals: Vec<Option<bool>> = v.iter().map(static_truth).collect();
            if vals.contains(&Some(false)) {
                Some(false)
            } else if vals.iter().all(|x| *x == Some(true)) {
                Some(true)
            } else {
                None
            }
        }
        FormulaKind::Or(v) => {
            let vals: Vec<Option<bool>> = v.iter().map(static_truth).collect();
            if vals.contains(&Some(true)) {
                Some(true)
            } else if vals.iter().all(|x| *x == Some(false)) {
                Some(false)
            } else {
                None
            }
        }
        FormulaKind::Implies(a, b) => match (static_truth(a), static_truth(b)) {
            (Some(false), _) | (_, Some(true)) => Some(true),
            (Some(true), Some(false)) => Some(false),
            _ => None,
        },
        FormulaKind::Cmp(op, a, b) => {
            if let (Some(x), Some(y)) = (a.constant(), b.constant()) {
                return Some(match op {
                    Eq => x == y,
                    Ne => x != y,
                    Lt => x < y,
                    Le => x <= y,
                    Gt => x > y,
                    Ge => x >= y,
                });
            }
            if let (TermKind::Var(x), TermKind::Var(y)) = (&a.kind, &b.kind) {
                if x == y {
                    return Some(matches!(op, Eq | Le | Ge));
                }
            }
            // count OP k, or k OP count, with count >= 0.
            let (count_left, k) = match (&a.kind, &b.kind, a.constant(), b.constant()) {
                (TermKind::Count(_), _, _, Some(Value::Int(k))) => (true, k),
                (_, TermKind::Count(_), Some(Value::Int(k)), _) => (false, k),
                _ => return None,
            };
            // Normalise to `count OP k`.
            let op = if count_left {
                *op
            } else {
                match op {
                    Lt => Gt,
                    Le => Ge,
                    Gt => Lt,
                    Ge => Le,
                    o => *o,
                }
            };
            match op {
                Lt if k <= 0 => Some(false),
                Le if k < 0 => Some(false),
                Ge if k <= 0 => Some(true),
                Gt if k < 0 => Some(true),
                Eq if k < 0 => Some(false),
                Ne if k < 0 => Some(true),
                _ => None,
            }
        }
        _ => None,
    }
}

// ---- workloads (issue 19): abs, min, max, aggregates, grouping ----

impl Checker<'_> {
    /// The [`Sort::Group`] index of host attribute `attr`, added on first use.
    pub(super) fn group(&mut self, attr: &str) -> usize {
        if let Some(g) = self.prog.groups.iter().position(|a| a == attr) {
            return g;
        }
        self.prog.groups.push(attr.to_string());
        self.prog.groups.len() - 1
    }

    /// The type of the values of group `g` (its host attribute's type).
    pub(super) fn group_type(&self, g: usize) -> Type {
        self.prog.groups.get(g).and_then(|a| self.prog.host_attr_types.get(a)).copied().unwrap_or(Type::Unknown)
    }

    /// `in zone z`: hosts whose attribute `zone` equals `z`.
    pub(super) fn group_domain(&mut self, attr: &ast::Ident, value: &ast::Expr) -> Domain {
        let v = self.term(value);
        let Some(ty) = self.prog.host_attr_types.get(&attr.name).copied() else {
            let names: Vec<&str> = self.prog.host_attr_types.keys().map(String::as_str).collect();
            let mut d = Diagnostic::new(
                Code::GroupMisuse,
                format!(
                    "`in {} …` groups by a host attribute, and no host has an attribute `{}`",
                    attr.name, attr.name
                ),
            )
            .primary(self.file, attr.span, "not a host attribute");
            if let Some(s) = did_you_mean(&attr.name, names.iter().copied()) {
                d = d.did_you_mean(s);
            } else if names.is_empty() {
                d = d.note("no host declares any attribute");
            } else {
                d = d.note(format!("host attributes: {}", names.join(", ")));
            }
            self.report(d.note("`in ATTR v` means: on the hosts whose attribute ATTR equals v"));
            return Domain::Deployment;
        };
        if v.ty != ty && v.ty != Type::Unknown {
            self.report(
                Diagnostic::new(
                    Code::SortMismatch,
                    format!(
                        "cannot compare {} with the values of `{}`, which are {}",
                        self.type_name(v.ty),
                        attr.name,
                        decls_type_word(ty)
                    ),
                )
                .primary(v.loc.file, v.loc.span, format!("this is {}", self.type_name(v.ty)))
                .secondary(self.file, attr.span, format!("host attribute `{}`", attr.name)),
            );
        }
        Domain::Group { attr: attr.name.clone(), value: v }
    }

    /// `abs(t)`, `min(a, b, …)`, `max(a, b, …)` and `min`/`max` over a binder.
    fn workload_term(&mut self, e: &ast::Expr, loc: Loc) -> Term {
        let mk = |kind| Term { kind, ty: Type::Int, loc };
        match &e.kind {
            ExprKind::Abs(a) => {
                let t = self.term(a);
                if !self.arith_operand(&t) {
                    return self.err_term(e.span);
                }
                mk(TermKind::Abs(Box::new(t)))
            }
            ExprKind::Extreme { max, args } => {
                let mut ok = true;
                let mut out = vec![];
                for a in args {
                    let t = self.term(a);
                    ok &= self.arith_operand(&t);
                    out.push(t);
                }
                let f = if *max { "max" } else { "min" };
                if args.len() < 2 {
                    self.report(
                        Diagnostic::new(Code::ExtremeArity, format!("`{f}(…)` needs at least two terms, or a binder"))
                            .primary(self.file, e.span, format!("`{f}` of one term"))
                            .note(format!("`{f}(t)` would just be `t`"))
                            .help(format!(
                                "to take the {} over a domain, bind a variable: `{f}(host h in deployment : …)`",
                                if *max { "greatest value" } else { "least value" }
                            )),
                    );
                    return self.err_term(e.span);
                }
                if !ok {
                    return self.err_term(e.span);
                }
                mk(TermKind::Extreme { max: *max, args: out })
            }
            ExprKind::Aggregate { max, binder, body } => {
                if !self.copies_of(&binder.sort).is_empty() {
                    self.report(
                        Diagnostic::new(
                            Code::InstanceAggregate,
                            format!("`{}` over instances of a type with named instances is not supported", if *max { "max" } else { "min" }),
                        )
                        .primary(self.file, binder.sort.span(), "this type (or group) has named instances")
                        .note("the least or greatest value over several instance types would need a case per type and per instance")
                        .help("bound every instance instead: `forall T x in deployment ( … <= k )`"),
                    );
                    return self.err_term(e.span);
                }
                let Some(b) = self.binder(binder) else { return self.err_term(e.span) };
                let t = self.term(body);
                self.pop_scope(false);
                if !self.expect_type(
                    &t,
                    Type::Int,
                    &format!("an integer term to take the {} of", if *max { "max" } else { "min" }),
                ) {
                    return self.err_term(e.span);
                }
                mk(TermKind::Aggregate { max: *max, binder: Box::new(b), body: Box::new(t) })
            }
            _ => self.err_term(e.span),
        }
    }
}

/// A type in one word: "integer", "string", "boolean".
fn decls_type_word(t: Type) -> &'static str {
    match t {
        Type::Int => "integers",
        Type::Str => "strings",
        Type::Bool => "booleans",
        _ => "values",
    }
}

/// A hint for a name that is a feature of other languages (SQL, MiniZinc,
/// OPL, Kubernetes), not of Deladas.
pub(super) fn foreign_feature(name: &str) -> Option<&'static str> {
    Some(match name {
        "count" | "size" | "len" | "length" | "cardinality" | "num" => {
            "Deladas counts with `card(…)`: `card(instancesof T in deployment)`, `card(T x in D where …)`"
        }
        "avg" | "average" | "mean" => {
            "Deladas has no average; compare sums instead: `sum(T x in D : x.a) <= k * card(T y in D)`"
        }
        "abs" | "min" | "max" => "call it with parentheses: `abs(t)`, `min(a, b)`, `max(host h in deployment : t)`",
        "minimize" | "maximize" | "minimise" | "maximise" | "optimize" | "optimise" | "objective" => {
            "objectives are not part of this version of Deladas; bound the term instead (`… <= k`) and lower `k` until the goal is unsatisfiable"
        }
        "prefer" | "soft" | "should" | "preferred" => {
            "preferences are not part of this version of Deladas; every clause is a hard rule"
        }
        "sqrt" | "pow" | "mod" | "div" | "log" | "exp" => "Deladas terms are linear: `+`, `-`, and `*` by a constant",
        "all" | "every" | "each" | "any" | "some" => "quantify with `forall T x in D ( … )` or `exists T x in D ( … )`",
        "if" | "then" | "when" => "write a condition with `implies`: `A implies B`",
        "distinct" | "alldifferent" | "all_different" | "alldiff" => {
            "say it pairwise: `forall T a, b in deployment ( a != b implies hostof(a) != hostof(b) )`, or bound a count per host"
        }
        "zone" | "zones" | "rack" | "racks" | "region" => {
            "group by a host attribute: give hosts an attribute (`zone = \"a\"`) and write `forall zone z in deployment ( … card(instancesof T in zone z) … )`"
        }
        _ => return None,
    })
}
