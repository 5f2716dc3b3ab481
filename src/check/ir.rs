//! The typed, desugared goal that `check` produces and every back end reads.
//!
//! Names are resolved to indices, every term has a [`Type`], component
//! attributes are folded to constants, `use` is expanded (each clause records
//! the `use` site it came through), multi-variable quantifiers are nested
//! single-variable ones, `x on h` is `hostof(x) = h`, and all three forms of
//! `card` are one [`TermKind::Count`] over a [`Binder`].

use std::collections::BTreeMap;

use crate::diagnostics::FileId;
pub use crate::syntax::ast::{CmpOp, Quantifier, Sense, Span};

/// Index of a component in [`Program::components`].
pub type CompId = usize;
/// Index of a host in [`Program::hosts`].
pub type HostId = usize;
/// Index of a port in its component's [`Component::ports`].
pub type PortId = usize;
/// Index of a variable in [`Program::vars`].
pub type VarId = usize;

/// A place in the sources: a file and a byte span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Loc {
    pub file: FileId,
    pub span: Span,
}

impl Loc {
    pub fn new(file: FileId, span: Span) -> Loc {
        Loc { file, span }
    }
}

/// A checked goal: resources (components, hosts), the clauses in force, and
/// upgrade declarations.
#[derive(Debug, Clone, Default)]
pub struct Program {
    /// Components in declaration order (root file first, then imports).
    pub components: Vec<Component>,
    /// Hosts in declaration order.
    pub hosts: Vec<Host>,
    /// The type of every host attribute name (one type across all hosts).
    pub host_attr_types: BTreeMap<String, Type>,
    /// Every clause in force: the root file's parameterless constraintsets and
    /// every `use`, expanded.
    pub clauses: Vec<Clause>,
    /// `upgrade` declarations, for `roles`.
    pub upgrades: Vec<Upgrade>,
    /// Every variable bound anywhere in `clauses`.
    pub vars: Vec<VarInfo>,
    /// Every `use` expanded (statement or clause): where it is written and
    /// the pattern it names, so reports name a pattern without re-reading
    /// the source ([`Program::use_name`]).
    pub uses: Vec<(Loc, String)>,
    /// The file given on the command line.
    pub root_file: FileId,
    /// `minimize`/`maximize` declarations of the root file, in declaration
    /// order (= priority order, first is most important).
    pub objectives: Vec<Objective>,
    /// `prefer` clauses of the root file, in declaration order.
    pub preferences: Vec<Preference>,
    /// Where the preferences rank among the objectives: the number of
    /// objectives declared before the first `prefer` (all preferences
    /// together are one level: minimise the total weight broken).
    pub prefer_rank: usize,
    /// Host attributes used as sorts (`forall zone z in deployment`): the
    /// attribute of each [`Sort::Group`].
    pub groups: Vec<String>,
}

/// `minimize TERM` / `maximize TERM` in force.
#[derive(Debug, Clone)]
pub struct Objective {
    pub sense: Sense,
    /// An integer term.
    pub term: Term,
    /// The whole declaration.
    pub loc: Loc,
}

/// One soft clause of a `prefer` declaration. Leading `forall`s make it
/// one soft clause per binding (each binding that breaks it costs `weight`).
#[derive(Debug, Clone)]
pub struct Preference {
    pub weight: i64,
    pub formula: Formula,
    /// The clause as written.
    pub loc: Loc,
}

impl Program {
    /// Whether solving optimises anything.
    pub fn optimises(&self) -> bool {
        !self.objectives.is_empty() || !self.preferences.is_empty()
    }
}

/// An attribute value: a string, integer or boolean.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Int(i64),
    Str(String),
    Bool(bool),
}

impl Value {
    pub fn ty(&self) -> Type {
        match self {
            Value::Int(_) => Type::Int,
            Value::Str(_) => Type::Str,
            Value::Bool(_) => Type::Bool,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A component type: code bundle, ports, placement bounds and free-form
/// attributes.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    /// Where the name is declared.
    pub loc: Loc,
    /// The `code` (or `bundle`) attribute: where the component's bundle lives.
    pub code: String,
    pub ports: Vec<Port>,
    /// At most this many instances on one host (default 1).
    pub maxperhost: u32,
    /// At most this many instances in the deployment.
    pub maxinstances: Option<u32>,
    /// Free-form attributes in declaration order.
    pub attrs: Vec<(String, Value)>,
    pub doc: Option<String>,
    /// For a named instance (`instance vm1 = VM(…)`, issue 19): the
    /// component it is an instance of. The named instance is a component of
    /// its own in the program (one slot per host, exactly one instance, its
    /// own attribute values), written in the DDD as an instance of `named`
    /// with id `name`.
    pub named: Option<CompId>,
}

impl Component {
    pub fn port(&self, name: &str) -> Option<PortId> {
        self.ports.iter().position(|p| p.name == name)
    }
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Which way messages flow through a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// No direction declared: either way.
    Both,
    Input,
    Output,
    /// Talks to the world outside the deployment; no channel may attach.
    External,
}

impl Direction {
    pub fn word(self) -> &'static str {
        match self {
            Direction::Both => "bidirectional",
            Direction::Input => "input",
            Direction::Output => "output",
            Direction::External => "external",
        }
    }
}

/// A port of a component: a place channels attach to.
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub loc: Loc,
    /// `p[]` or `p[N]`: each channel gets its own index in the DDD.
    pub variadic: bool,
    /// Most channels the port holds: 1 for `p`, N for `p[N]`, `None` for `p[]`.
    pub capacity: Option<u32>,
    pub direction: Direction,
}

/// An available machine and its attributes.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub loc: Loc,
    pub attrs: Vec<(String, Value)>,
}

impl Host {
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Where the old version of an upgraded component runs in shadow mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shadow {
    SameHost,
    OtherHost,
}

/// `upgrade C(code = …, changes = {…})`: a new version of component C.
#[derive(Debug, Clone)]
pub struct Upgrade {
    pub component: CompId,
    pub code: String,
    /// Ports whose message interface changes.
    pub changes: Vec<PortId>,
    pub shadow: Shadow,
    /// The whole declaration.
    pub loc: Loc,
    /// Where each port of `changes` is named in the declaration (parallel).
    pub change_locs: Vec<Loc>,
}

/// The sort of a variable: hosts, or instances of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    Host,
    Instance(CompId),
    /// The values host attribute [`Program::groups`]`[g]` takes on the
    /// available hosts (`forall zone z in deployment`).
    Group(usize),
}

/// A bound variable.
#[derive(Debug, Clone)]
pub struct VarInfo {
    pub name: String,
    pub sort: Sort,
    pub loc: Loc,
}

/// The type of a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    Int,
    Str,
    Bool,
    Host,
    Instance(CompId),
    /// After an error, so one mistake is reported once.
    Unknown,
}

/// A clause in force, with where it came from.
#[derive(Debug, Clone)]
pub struct Clause {
    pub formula: Formula,
    pub origin: Origin,
}

/// Where a clause in force was written and how it came into force.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The constraintset the clause belongs to.
    pub constraintset: String,
    /// The clause as written (inside the constraintset).
    pub loc: Loc,
    /// The outermost `use` that brought it into force, if any.
    pub use_site: Option<Loc>,
}

/// A formula with its source location.
#[derive(Debug, Clone)]
pub struct Formula {
    pub kind: FormulaKind,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum FormulaKind {
    Const(bool),
    Not(Box<Formula>),
    And(Vec<Formula>),
    Or(Vec<Formula>),
    Implies(Box<Formula>, Box<Formula>),
    /// Comparison of two terms of the same type (ordering only on `Int`).
    Cmp(CmpOp, Term, Term),
    /// `a.pa connectsto b.pb`: a channel joins port `pa` of `a` and `pb` of `b`.
    Connects {
        a: VarId,
        pa: PortId,
        b: VarId,
        pb: PortId,
    },
    /// `a connectedto b`: some channel joins any port of `a` and any of `b`.
    Connected(VarId, VarId),
    /// `reachable(a, b)`: `a = b` or a path of channels leads from a to b.
    Reachable(VarId, VarId),
    /// A quantifier over one variable.
    Quant {
        q: Quantifier,
        var: VarId,
        domain: Domain,
        body: Box<Formula>,
    },
    /// Stands for a formula that failed to check (never in a program that
    /// checked without errors).
    Error,
}

/// What an instance binder ranges over.
#[derive(Debug, Clone)]
pub enum Domain {
    /// All instances of the variable's component (or all available hosts).
    Deployment,
    /// Instances placed on the host this term denotes.
    OnHost(Term),
    /// `in zone z`: the available hosts whose attribute `attr` equals the
    /// value of the term, or the instances placed on them.
    Group { attr: String, value: Term },
}

/// `T y in D where F`: a variable, its domain, and an optional condition.
#[derive(Debug, Clone)]
pub struct Binder {
    pub var: VarId,
    pub domain: Domain,
    pub cond: Option<Formula>,
}

/// A term with its type and source location.
#[derive(Debug, Clone)]
pub struct Term {
    pub kind: TermKind,
    pub ty: Type,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum TermKind {
    Int(i64),
    Str(String),
    Bool(bool),
    /// A variable (host or instance).
    Var(VarId),
    /// A declared host.
    Host(HostId),
    /// The host an instance variable is placed on.
    HostOf(VarId),
    /// An attribute of a host term (never a constant host: those are folded).
    HostAttr(Box<Term>, String),
    /// How many values of the binder's variable satisfy its condition.
    Count(Box<Binder>),
    /// The sum of an integer term over the binder.
    Sum(Box<Binder>, Box<Term>),
    /// `t1 ± t2 ± …`: each element with `true` when subtracted.
    Add(Vec<(bool, Term)>),
    /// A product; at least one side is constant.
    Mul(Box<Term>, Box<Term>),
    Neg(Box<Term>),
    /// `abs(t)`.
    Abs(Box<Term>),
    /// `min(a, b, …)` (`max` false) or `max(a, b, …)`: at least two terms.
    Extreme {
        max: bool,
        args: Vec<Term>,
    },
    /// `min(T y in D [where F] : t)` or `max(…)`: the least or greatest value
    /// of `t` over the binder; 0 when nothing is in it.
    Aggregate {
        max: bool,
        binder: Box<Binder>,
        body: Box<Term>,
    },
    /// An `int` parameter while a pattern is checked generically (its value
    /// is not known yet). Never in a [`Program`].
    Param(String),
    /// Stands for a term that failed to check.
    Error,
}

impl Term {
    /// A literal term for a constant value (a folded attribute).
    pub fn literal(v: Value, loc: Loc) -> Term {
        let ty = v.ty();
        let kind = match v {
            Value::Int(n) => TermKind::Int(n),
            Value::Str(s) => TermKind::Str(s),
            Value::Bool(b) => TermKind::Bool(b),
        };
        Term { kind, ty, loc }
    }

    /// Whether the term is the same in every configuration (a literal, an
    /// `int` parameter, or arithmetic over those).
    pub fn is_constant(&self) -> bool {
        match &self.kind {
            TermKind::Int(_) | TermKind::Str(_) | TermKind::Bool(_) | TermKind::Param(_) => true,
            TermKind::Neg(t) => t.is_constant(),
            TermKind::Add(v) => v.iter().all(|(_, t)| t.is_constant()),
            TermKind::Mul(a, b) => a.is_constant() && b.is_constant(),
            TermKind::Abs(t) => t.is_constant(),
            TermKind::Extreme { args, .. } => args.iter().all(Term::is_constant),
            _ => false,
        }
    }

    /// The value of a term with no variables, counts or host attributes.
    pub fn constant(&self) -> Option<Value> {
        match &self.kind {
            TermKind::Int(n) => Some(Value::Int(*n)),
            TermKind::Str(s) => Some(Value::Str(s.clone())),
            TermKind::Bool(b) => Some(Value::Bool(*b)),
            TermKind::Neg(t) => match t.constant()? {
                Value::Int(n) => Some(Value::Int(n.checked_neg()?)),
                _ => None,
            },
            TermKind::Add(v) => {
                let mut acc: i64 = 0;
                for (neg, t) in v {
                    let Value::Int(n) = t.constant()? else { return None };
                    acc = if *neg { acc.checked_sub(n)? } else { acc.checked_add(n)? };
                }
                Some(Value::Int(acc))
            }
            TermKind::Mul(a, b) => match (a.constant()?, b.constant()?) {
                (Value::Int(x), Value::Int(y)) => Some(Value::Int(x.checked_mul(y)?)),
                _ => None,
            },
            TermKind::Abs(t) => match t.constant()? {
                Value::Int(n) => Some(Value::Int(n.checked_abs()?)),
                _ => None,
            },
            TermKind::Extreme { max, args } => {
                let mut best: Option<i64> = None;
                for a in args {
                    let Value::Int(n) = a.constant()? else { return None };
                    best = Some(match best {
                        None => n,
                        Some(b) if *max => b.max(n),
                        Some(b) => b.min(n),
                    });
                }
                best.map(Value::Int)
            }
            _ => None,
        }
    }
}

impl Program {
    pub fn component(&self, name: &str) -> Option<CompId> {
        self.components.iter().position(|c| c.name == name && c.named.is_none())
    }

    /// The component written in the DDD for instances of `c`: the type of a
    /// named instance, else `c` itself.
    pub fn ddd_component(&self, c: CompId) -> CompId {
        self.components.get(c).and_then(|x| x.named).unwrap_or(c)
    }

    /// The DDD id of an instance of `c` on host `h` (`k` as in
    /// `crate::ddd::instance_id`): a named instance's name, else
    /// `Component@host` or `Component@host#k`.
    pub fn instance_id(&self, c: CompId, h: HostId, k: Option<u32>) -> String {
        match self.components.get(c) {
            Some(x) if x.named.is_some() => x.name.clone(),
            x => {
                // `crate::ddd::instance_id`'s format (check must not depend on ddd).
                let (cn, hn) = (
                    x.map(|x| x.name.as_str()).unwrap_or("?"),
                    self.hosts.get(h).map(|h| h.name.as_str()).unwrap_or("?"),
                );
                match k {
                    None => format!("{cn}@{hn}"),
                    Some(k) => format!("{cn}@{hn}#{k}"),
                }
            }
        }
    }

    /// The component name written in the DDD for instances of `c`.
    pub fn ddd_component_name(&self, c: CompId) -> &str {
        self.components.get(self.ddd_component(c)).map(|x| x.name.as_str()).unwrap_or("?")
    }

    /// The program component of a DDD instance: the named instance whose
    /// name is the instance id and whose type is `component`, else the
    /// component of that name.
    pub fn instance_component(&self, id: &str, component: &str) -> Option<CompId> {
        let base = self.component(component)?;
        Some(self.components.iter().position(|c| c.named == Some(base) && c.name == id).unwrap_or(base))
    }
    pub fn host(&self, name: &str) -> Option<HostId> {
        self.hosts.iter().position(|h| h.name == name)
    }

    /// The pattern named by the `use` written at `at` (a `use` statement,
    /// or a clause that is a `use`).
    pub fn use_name(&self, at: Loc) -> Option<&str> {
        self.uses.iter().find(|(l, _)| l.file == at.file && l.span.start == at.span.start).map(|(_, n)| n.as_str())
    }
}

impl Term {
    /// Whether `abs`, `min` or `max` occurs in the term outside the bodies
    /// and conditions of `card(…)`/`sum(…)` (those are checked where they are).
    pub fn has_extreme(&self) -> bool {
        match &self.kind {
            TermKind::Abs(_) | TermKind::Extreme { .. } | TermKind::Aggregate { .. } => true,
            TermKind::Neg(t) => t.has_extreme(),
            TermKind::Add(v) => v.iter().any(|(_, t)| t.has_extreme()),
            TermKind::Mul(a, b) => a.has_extreme() || b.has_extreme(),
            _ => false,
        }
    }
}
