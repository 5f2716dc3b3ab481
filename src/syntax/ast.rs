//! The untyped syntax tree of one Deladas file, as written.
//!
//! Every node carries the byte [`Span`] it came from, so every later stage can
//! point back at source. Nothing here is resolved: names are strings, and
//! formulas and terms share one [`Expr`] type because the grammar cannot tell
//! `true` the formula from `true` the boolean term; `check` classifies them.

use std::fmt;

pub use crate::diagnostics::span::Span;

/// A name as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// One parsed file: its declarations in source order.
#[derive(Debug, Clone, Default)]
pub struct SourceFile {
    pub decls: Vec<Decl>,
    /// Names of declarations that failed to parse (`component A(` with no
    /// `)`): the checker treats them as declared so one syntax error does
    /// not also make every use of `A` an "unknown name".
    pub broken: Vec<Ident>,
}

/// A top-level declaration with its span and `///` doc comment.
#[derive(Debug, Clone)]
pub struct Decl {
    pub kind: DeclKind,
    pub span: Span,
    pub doc: Option<String>,
}

/// The kinds of top-level declaration.
#[derive(Debug, Clone)]
pub enum DeclKind {
    /// `import "patterns"`: brings another file's declarations into scope.
    Import { path: String, path_span: Span },
    /// `component Client(code = "…", ports = {in, out})`: a component type.
    Component { name: Ident, attrs: AttrList },
    /// `host h1 = host(ipaddress = "…")`: a machine components may run on.
    Host { name: Ident, attrs: AttrList },
    /// `constraintset randc = constraintset { … }`, optionally with parameters
    /// (then it is a reusable pattern, in force only through `use`).
    Constraintset(ConstraintsetDecl),
    /// A top-level `use star(Router, Client, cout, in)`.
    Use(UseStmt),
    /// `upgrade Router(code = "…", changes = {rin, rout})`: a new version of a
    /// component, for guarded upgrades.
    Upgrade { component: Ident, attrs: AttrList },
    /// `minimize TERM` / `maximize TERM`: an objective (issue 19).
    Objective(ObjectiveDecl),
    /// `prefer [WEIGHT] CLAUSE`: a soft clause (issue 19).
    Prefer(PreferDecl),
    /// `import hosts from "inventory.csv"` (or `.json`): hosts from an
    /// inventory file. `what` and `from` are the two words as written.
    ImportHosts { what: Ident, from: Ident, path: String, path_span: Span },
    /// `host web[20] = host(…)`: hosts `web1` … `web20` with these attributes.
    HostRange { name: Ident, count: i64, count_span: Span, attrs: AttrList },
    /// `instance vm1 = VM(cpu = 4)` or `instance part[3] = Partition(…)`:
    /// named instances that must exist (issue 19).
    Instance(InstanceDecl),
}

/// `instance NAME = COMPONENT(ATTR = VALUE, …)`, or `instance NAME[N] = …`
/// for a group of N (`NAME1` … `NAMEN`).
#[derive(Debug, Clone)]
pub struct InstanceDecl {
    pub name: Ident,
    /// `[N]` and where N is written: a group.
    pub count: Option<(i64, Span)>,
    pub component: Ident,
    /// Per-instance attribute values (attributes the component declares).
    pub attrs: Option<AttrList>,
}

/// Whether an objective is minimised or maximised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sense {
    Minimize,
    Maximize,
}

impl Sense {
    pub fn word(self) -> &'static str {
        match self {
            Sense::Minimize => "minimize",
            Sense::Maximize => "maximize",
        }
    }
}

/// `minimize TERM` or `maximize TERM`.
#[derive(Debug, Clone)]
pub struct ObjectiveDecl {
    pub sense: Sense,
    /// The `minimize`/`maximize` keyword.
    pub keyword: Span,
    pub term: Expr,
}

/// `prefer [WEIGHT] CLAUSE`: a soft clause.
#[derive(Debug, Clone)]
pub struct PreferDecl {
    /// The `prefer` keyword.
    pub keyword: Span,
    /// The weight as written (checked to be a positive integer literal); 1 without.
    pub weight: Option<Expr>,
    pub clause: Expr,
}

/// A parenthesised `key = value, …` list with the span of its parentheses.
#[derive(Debug, Clone)]
pub struct AttrList {
    pub entries: Vec<AttrEntry>,
    pub span: Span,
}

/// One `key = value` of an attribute list.
#[derive(Debug, Clone)]
pub struct AttrEntry {
    pub key: Ident,
    pub value: AttrValue,
}

/// The value of an attribute as written.
#[derive(Debug, Clone)]
pub struct AttrValue {
    pub kind: AttrValueKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum AttrValueKind {
    Str(String),
    Int(i64),
    Bool(bool),
    /// `{p, q[], r[4], s: output}`: port declarations, or port names (`changes`).
    Set(Vec<PortDecl>),
    /// A bare name, e.g. `shadow = samehost`; always an error, reported with a hint.
    Name(String),
}

/// How many channels a port may hold, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// `p`: at most one channel.
    Single,
    /// `p[]`: any number of channels.
    Variadic,
    /// `p[N]`: at most N channels (N as written, may be out of range).
    Bounded(i64),
}

/// One port in a `ports = {…}` set, or one port name in `changes = {…}`.
#[derive(Debug, Clone)]
pub struct PortDecl {
    pub name: Ident,
    pub arity: Arity,
    pub direction: Option<Ident>,
    pub span: Span,
}

/// A constraintset declaration.
#[derive(Debug, Clone)]
pub struct ConstraintsetDecl {
    pub name: Ident,
    /// `None` without parentheses; `Some(vec![])` for `name()`.
    pub params: Option<Vec<Param>>,
    pub body: Vec<Expr>,
    /// The span of the `{ … }` body.
    pub body_span: Span,
}

/// A pattern parameter: `component A`, `port p`, `int k` or `attribute a`.
#[derive(Debug, Clone)]
pub struct Param {
    pub kind: Ident,
    pub name: Ident,
}

/// `use NAME(args)`, at top level or as a clause.
#[derive(Debug, Clone)]
pub struct UseStmt {
    pub name: Ident,
    pub args: Vec<UseArg>,
    pub span: Span,
}

/// An argument of `use`: a name (component, port or attribute) or an integer.
#[derive(Debug, Clone)]
pub enum UseArg {
    Name(Ident),
    Int(i64, Span),
}

impl UseArg {
    pub fn span(&self) -> Span {
        match self {
            UseArg::Name(i) => i.span,
            UseArg::Int(_, s) => *s,
        }
    }
}

/// A formula or a term.
#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Nesting depth of this node (1 for a leaf); the parser refuses trees
    /// deeper than [`MAX_DEPTH`] so later recursive passes cannot overflow.
    pub depth: u32,
}

/// The deepest formula or term the parser accepts.
pub const MAX_DEPTH: u32 = 200;

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// `forall` or `exists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    Forall,
    Exists,
}

/// The sort a binder ranges over: `host` or a component (or component parameter) name.
#[derive(Debug, Clone)]
pub enum SortName {
    Host(Span),
    Named(Ident),
}

impl SortName {
    pub fn span(&self) -> Span {
        match self {
            SortName::Host(s) => *s,
            SortName::Named(i) => i.span,
        }
    }
}

/// What a binder ranges over: `in deployment` or `in <host term>`.
#[derive(Debug, Clone)]
pub enum Domain {
    Deployment(Span),
    Host(Box<Expr>),
    /// `in zone z`: hosts whose attribute `attr` has the value of the term
    /// (or the instances on them).
    Group {
        attr: Ident,
        value: Box<Expr>,
    },
}

/// `T y in D [where F]` inside `card(…)` and `sum(…)`.
#[derive(Debug, Clone)]
pub struct Binder {
    pub sort: SortName,
    pub var: Ident,
    pub domain: Domain,
    pub cond: Option<Vec<Expr>>,
}

/// The argument of `card(…)`.
#[derive(Debug, Clone)]
pub enum CardArg {
    /// `instancesof T in D`
    InstancesOf { component: Ident, domain: Domain },
    /// `T y connectedto x`
    ConnectedTo { sort: SortName, var: Ident, target: Box<Expr> },
    /// `T y in D [where F]`
    Filter(Binder),
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Int(i64),
    Str(String),
    Bool(bool),
    /// A variable, host, or parameter name.
    Name(Ident),
    /// `x.p` / `x.attr` / `hostof(x).attr`.
    Field(Box<Expr>, Ident),
    /// `hostof(x)`
    HostOf(Box<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// `a + b - c`, flattened: every element with `true` when subtracted
    /// (the first is never subtracted).
    Add(Vec<(bool, Expr)>),
    Mul(Box<Expr>, Box<Expr>),
    Cmp(Box<Expr>, CmpOp, Box<Expr>),
    ConnectsTo(Box<Expr>, Box<Expr>),
    ConnectedTo(Box<Expr>, Box<Expr>),
    On(Box<Expr>, Box<Expr>),
    Reachable(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `a and b and c`, flattened.
    And(Vec<Expr>),
    /// `a or b or c`, flattened.
    Or(Vec<Expr>),
    Implies(Box<Expr>, Box<Expr>),
    /// `( A B … )`: clauses written one after another, conjoined.
    Group(Vec<Expr>),
    Quant {
        q: Quantifier,
        sort: SortName,
        vars: Vec<Ident>,
        domain: Domain,
        body: Vec<Expr>,
    },
    Card(Box<CardArg>),
    Sum(Box<Binder>, Box<Expr>),
    Use(UseStmt),
    /// `abs(t)`
    Abs(Box<Expr>),
    /// `min(a, b, …)` / `max(a, b, …)`
    Extreme {
        max: bool,
        args: Vec<Expr>,
    },
    /// `min(T y in D [where F] : t)` / `max(…)`
    Aggregate {
        max: bool,
        binder: Box<Binder>,
        body: Box<Expr>,
    },
}

impl Expr {
    /// The immediate sub-expressions, for walkers and depth limits.
    pub fn children(&self) -> Vec<&Expr> {
        use ExprKind::*;
        fn dom(d: &Domain) -> Option<&Expr> {
            match d {
                Domain::Deployment(_) => None,
                Domain::Host(e) | Domain::Group { value: e, .. } => Some(e),
            }
        }
        fn binder(b: &Binder) -> Vec<&Expr> {
            let mut v: Vec<&Expr> = dom(&b.domain).into_iter().collect();
            if let Some(c) = &b.cond {
                v.extend(c.iter());
            }
            v
        }
        match &self.kind {
            Int(_) | Str(_) | Bool(_) | Name(_) | Use(_) => vec![],
            Field(e, _) | HostOf(e) | Neg(e) | Not(e) | Abs(e) => vec![e],
            Extreme { args, .. } => args.iter().collect(),
            Aggregate { binder: b, body, .. } => {
                let mut v = binder(b);
                v.push(body);
                v
            }
            Add(v) => v.iter().map(|(_, e)| e).collect(),
            Mul(a, b)
            | Cmp(a, _, b)
            | ConnectsTo(a, b)
            | ConnectedTo(a, b)
            | On(a, b)
            | Reachable(a, b)
            | Implies(a, b) => {
                vec![a, b]
            }
            And(v) | Or(v) | Group(v) => v.iter().collect(),
            Quant { domain, body, .. } => dom(domain).into_iter().chain(body.iter()).collect(),
            Card(arg) => match &**arg {
                CardArg::InstancesOf { domain, .. } => dom(domain).into_iter().collect(),
                CardArg::ConnectedTo { target, .. } => vec![target],
                CardArg::Filter(b) => binder(b),
            },
            Sum(b, t) => {
                let mut v = binder(b);
                v.push(t);
                v
            }
        }
    }
}
