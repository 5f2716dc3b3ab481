//! Checking: names, sorts and types; from syntax trees to the typed goal.
//!
//! [`check`] never fails: it returns the [`ir::Program`] it could build and
//! every diagnostic, so the language server has a goal for a half-typed file.
//! Later stages only run when there are no errors.
//!
//! Order of work: collect every declaration of every loaded file into one
//! namespace (duplicates are errors showing both), read components, hosts and
//! upgrades, check each parameterised constraintset once generically (its
//! component parameters become *phantom* components whose ports are the
//! pattern's requirements), then check the goal: the root file's
//! parameterless constraintsets and every `use`, expanding each `use` by
//! checking the pattern's body again with the arguments bound.

mod decls;
mod expr;
pub mod index;
mod instances;
pub mod inventory;
pub mod ir;
pub mod load;
mod objectives;

use std::collections::HashMap;

use crate::diagnostics::{Code, Diagnostic, FileId, Sources};
use crate::syntax::ast::{self, DeclKind};
pub use expr::static_truth;
use index::SymbolKind;
use ir::*;
pub use load::{load, load_path, FileSystem, Loaded, RealFs};

/// The result of checking: the goal (possibly partial) and diagnostics.
#[derive(Debug)]
pub struct Checked {
    pub program: Program,
    pub diags: Vec<Diagnostic>,
    /// The generic requirements of each pattern: the ports its body reads on
    /// each component parameter, for hover and docs.
    pub patterns: Vec<PatternInfo>,
    /// Every name written in the loaded files, resolved (for the language server).
    pub index: index::Index,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
}

/// What a parameterised constraintset needs of its arguments.
#[derive(Debug, Clone)]
pub struct PatternInfo {
    pub name: String,
    pub loc: Loc,
    pub params: Vec<(String, String)>,
    /// For each component parameter, the ports the body reads on it.
    pub required_ports: Vec<(String, Vec<String>)>,
    pub doc: Option<String>,
}

/// Loads and checks a goal file from disk.
pub fn check_path(path: &std::path::Path) -> (Sources, Checked) {
    let loaded = load_path(path);
    check_loaded(loaded)
}

/// Checks a loaded goal.
pub fn check_loaded(loaded: Loaded) -> (Sources, Checked) {
    let checked = check(&loaded);
    let mut diags = loaded.diags;
    diags.extend(checked.diags);
    let mut checked = Checked { diags, ..checked };
    sort_diags(&mut checked.diags);
    cap_warnings(&mut checked.diags);
    (loaded.sources, checked)
}

/// At most this many warnings of one code are reported; the rest are
/// summarised in one more warning of that code.
pub const MAX_WARNINGS_PER_CODE: usize = 100;

/// Keeps the first [`MAX_WARNINGS_PER_CODE`] warnings of each code (in
/// order) and appends, per code with more, one warning that counts the
/// rest. Errors are all kept.
pub fn cap_warnings(diags: &mut Vec<Diagnostic>) {
    let mut seen: std::collections::BTreeMap<crate::diagnostics::Code, usize> = Default::default();
    diags.retain(|d| {
        if d.is_error() {
            return true;
        }
        let n = seen.entry(d.code).or_insert(0);
        *n += 1;
        *n <= MAX_WARNINGS_PER_CODE
    });
    for (code, n) in seen {
        if n > MAX_WARNINGS_PER_CODE {
            let more = n - MAX_WARNINGS_PER_CODE;
            diags.push(
                Diagnostic::new(
                    code,
                    format!("{more} more warnings like these ({code}: {}) are not shown", code.title()),
                )
                .note(format!("only the first {MAX_WARNINGS_PER_CODE} warnings of each kind are shown")),
            );
        }
    }
}

/// Orders diagnostics by file and position, errors before warnings at a tie.
pub fn sort_diags(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| {
        let l = d.primary_label().or(d.labels.first());
        (l.map(|l| (l.file, l.span.start, l.span.end)), d.severity, d.code)
    });
}

/// Checks loaded files (the loader's diagnostics are not repeated).
pub fn check(loaded: &Loaded) -> Checked {
    let mut c = Checker::new();
    c.prog.root_file = loaded.root.unwrap_or(0);
    c.run(loaded);
    c.index.finish();
    Checked { program: c.prog, diags: c.diags, patterns: c.pattern_infos, index: c.index }
}

/// Adds one host declaration to a checked goal: the text of `file` in
/// `sources` must be exactly one `host NAME = host(attr = value, …)`. The
/// host is checked as the goal's own are — its name is new among the
/// goal's hosts and components, its attributes are well formed and each
/// has the type it has on the goal's hosts — and appended to
/// `program.hosts`. This is how a re-solve adds hosts given as data
/// (a re-solve request), without splicing text onto the goal.
pub fn add_host(program: &mut Program, sources: &Sources, file: FileId) -> Result<HostId, Vec<Diagnostic>> {
    let (parsed, diags) = crate::syntax::parse(sources.text(file), file);
    if !diags.is_empty() {
        return Err(diags);
    }
    let [decl] = parsed.decls.as_slice() else {
        return Err(vec![Diagnostic::new(Code::BadFailure, "an added host must be exactly one host declaration")]);
    };
    let DeclKind::Host { name, attrs } = &decl.kind else {
        return Err(vec![Diagnostic::new(Code::BadFailure, "an added host must be a host declaration").primary(
            file,
            decl.span,
            "not a host",
        )]);
    };
    let n = &name.name;
    let previous = program
        .hosts
        .iter()
        .map(|h| (h.loc, "a host"))
        .chain(program.components.iter().map(|c| (c.loc, "a component")))
        .zip(program.hosts.iter().map(|h| h.name.as_str()).chain(program.components.iter().map(|c| c.name.as_str())))
        .find(|(_, other)| other == n);
    if let Some(((loc, what), _)) = previous {
        return Err(vec![Diagnostic::new(Code::Duplicate, format!("the name `{n}` is declared twice"))
            .primary(file, name.span, format!("`{n}` declared again here"))
            .secondary(loc.file, loc.span, format!("first declared here, as {what}"))
            .note("components, hosts and constraintsets of all loaded files share one namespace; every name must be unique")]);
    }
    let mut c = Checker::new();
    c.prog = std::mem::take(program);
    let host = c.host(file, name, attrs);
    for (k, v) in &host.attrs {
        let Some(&main) = c.prog.host_attr_types.get(k) else { continue };
        if v.ty() == main {
            continue;
        }
        let at = c.host_attr_locs.get(&(n.clone(), k.clone())).copied().unwrap_or(host.loc);
        let mut d = Diagnostic::new(
            Code::MixedAttributeTypes,
            format!(
                "host attribute `{k}` has mixed types: {} and {}",
                decls::type_word(main),
                decls::type_word(v.ty())
            ),
        )
        .primary(at.file, at.span, format!("{} on `{n}`", decls::type_article(v.ty())));
        if let Some(h) = c.prog.hosts.iter().find(|h| h.attr(k).is_some()) {
            d = d.secondary(h.loc.file, h.loc.span, format!("{} on `{}`", decls::type_article(main), h.name));
        }
        c.diags.push(
            d.note("an attribute name has one type across all hosts")
                .help(format!("write every `{k}` as {}", decls::type_article(main))),
        );
    }
    *program = std::mem::take(&mut c.prog);
    if !c.diags.is_empty() {
        return Err(c.diags);
    }
    for (k, v) in &host.attrs {
        program.host_attr_types.entry(k.clone()).or_insert(v.ty());
    }
    program.hosts.push(host);
    Ok(program.hosts.len() - 1)
}

/// A declaration in the one global namespace.
#[derive(Debug, Clone, Copy)]
enum Global {
    Component(CompId),
    Host(HostId),
    Constraintset(usize),
    /// A named instance (`instance vm1 = VM(…)`): its component in the program.
    Instance(CompId),
    /// A group of named instances (`instance part[3] = …`): index in
    /// [`Checker::instance_groups`].
    InstanceGroup(usize),
    /// A declaration that failed to parse: uses of it are not reported.
    Broken,
}

/// A constraintset declaration with where it lives.
struct CsRef<'a> {
    file: FileId,
    decl: &'a ast::ConstraintsetDecl,
    doc: Option<&'a str>,
    /// Whether its generic check found errors (then uses are not expanded).
    broken: bool,
}

/// What a pattern parameter is bound to while checking a body.
#[derive(Debug, Clone)]
enum Binding {
    Component(CompId),
    Port(String),
    Int(i64),
    Attr(String),
    /// A parameter whose kind was invalid; uses of it are not reported again.
    Invalid,
}

/// One `use` being expanded.
#[derive(Debug, Clone)]
struct Frame {
    pattern: String,
    use_loc: Loc,
    /// Arguments by parameter name: where each is written, and the name
    /// written (`None` for an integer).
    args: HashMap<String, (Loc, Option<String>)>,
}

struct Checker<'a> {
    prog: Program,
    diags: Vec<Diagnostic>,
    globals: HashMap<String, (Global, Loc)>,
    sets: Vec<CsRef<'a>>,
    pattern_infos: Vec<PatternInfo>,
    /// Number of real components; those after it are phantoms of a generic check.
    real_comps: usize,
    // ---- state while checking a body ----
    file: FileId,
    scopes: Vec<Vec<(String, VarId)>>,
    var_used: Vec<bool>,
    /// For variables whose sort came from a component parameter: its name.
    var_param: HashMap<VarId, String>,
    /// Variables whose sort could not be resolved (already reported): their
    /// uses are checked no further, so one mistake is reported once.
    poisoned: std::collections::HashSet<VarId>,
    env: HashMap<String, (Binding, Loc)>,
    frames: Vec<Frame>,
    /// Report warnings (off while expanding a `use`).
    warn: bool,
    /// Checking a pattern's body generically: parameters have no values yet.
    generic: bool,
    /// Whether the body being checked is in force (for "component never mentioned").
    in_force: bool,
    mentioned: Vec<bool>,
    /// Where each host attribute's value is written: (host, attribute).
    host_attr_locs: HashMap<(String, String), Loc>,
    /// Clauses found always false by a pattern's generic check.
    false_in_pattern: std::collections::HashSet<Loc>,
    /// Where each upgraded component is named in its `upgrade`.
    upgrade_names: Vec<(CompId, Loc)>,
    /// `MissingRequiredPort` already reported: outermost use, component, port.
    missing_reported: std::collections::HashSet<(Loc, CompId, String)>,
    /// The constraintset whose body is being checked (for cycles of `use`).
    current_set: Option<String>,
    /// The loaded source texts (to find operators between operands).
    sources: Option<&'a Sources>,
    /// Files of the standard library (for wording).
    stdlib_files: Vec<FileId>,
    /// Cache for [`Checker::error_count`]: diagnostics scanned, errors among them.
    error_tally: std::cell::Cell<(usize, usize)>,
    /// Names resolved so far, for editors.
    index: index::Index,
    /// Checking an objective or a preference (an unknown name is E0473).
    soft: bool,
    /// Hosts of `host web[N]` ranges: their names (`web1`) are written
    /// nowhere, so neither they nor their uses are indexed for editors.
    unwritten_hosts: std::collections::HashSet<String>,
    /// Named instances and replicas (issue 19, `instances.rs`).
    named: instances::NamedState,
}

impl<'a> Checker<'a> {
    fn new() -> Self {
        Checker {
            prog: Program::default(),
            diags: vec![],
            globals: HashMap::new(),
            sets: vec![],
            pattern_infos: vec![],
            real_comps: 0,
            file: 0,
            scopes: vec![],
            var_used: vec![],
            var_param: HashMap::new(),
            poisoned: Default::default(),
            env: HashMap::new(),
            frames: vec![],
            warn: true,
            generic: false,
            in_force: false,
            mentioned: vec![],
            error_tally: Default::default(),
            stdlib_files: vec![],
            sources: None,
            current_set: None,
            missing_reported: Default::default(),
            upgrade_names: vec![],
            false_in_pattern: Default::default(),
            host_attr_locs: HashMap::new(),
            index: index::Index::default(),
            soft: false,
            unwritten_hosts: Default::default(),
            named: Default::default(),
        }
    }

    fn run(&mut self, loaded: &'a Loaded) {
        let root = loaded.root;
        self.stdlib_files = loaded.files.iter().filter(|f| f.path.is_none()).map(|f| f.id).collect();
        self.sources = Some(&loaded.sources);
        // 1. One namespace for components, hosts and constraintsets.
        for pf in &loaded.files {
            for d in &pf.ast.decls {
                match &d.kind {
                    DeclKind::Component { name, attrs } => {
                        let id = self.prog.components.len();
                        if self.declare(name, pf.id, Global::Component(id)) {
                            let comp = self.component(pf.id, name, attrs, d.doc.clone());
                            self.prog.components.push(comp);
                        }
                    }
                    DeclKind::Host { name, attrs } => {
                        let id = self.prog.hosts.len();
                        if self.declare(name, pf.id, Global::Host(id)) {
                            let host = self.host(pf.id, name, attrs);
                            self.prog.hosts.push(host);
                        }
                    }
                    DeclKind::Constraintset(cs) => {
                        let id = self.sets.len();
                        if self.declare(&cs.name, pf.id, Global::Constraintset(id)) {
                            self.sets.push(CsRef { file: pf.id, decl: cs, doc: d.doc.as_deref(), broken: false });
                        }
                    }
                    DeclKind::Import { .. }
                    | DeclKind::Use(_)
                    | DeclKind::Upgrade { .. }
                    | DeclKind::Objective(_)
                    | DeclKind::Prefer(_)
                    | DeclKind::Instance(_) => {}
                    DeclKind::ImportHosts { path_span, .. } => self.inventory_hosts(loaded, pf.id, *path_span),
                    DeclKind::HostRange { name, count, count_span, attrs } => {
                        self.host_range(pf.id, name, *count, *count_span, attrs)
                    }
                }
            }
        }
        for pf in &loaded.files {
            for n in &pf.ast.broken {
                self.globals.entry(n.name.clone()).or_insert((Global::Broken, Loc::new(pf.id, n.span)));
            }
        }
        self.named_instances(loaded);
        self.real_comps = self.prog.components.len();
        self.mentioned = vec![false; self.real_comps];
        self.host_attr_types();
        self.named_instance_clauses();
        // 2. Upgrades.
        for pf in &loaded.files {
            for d in &pf.ast.decls {
                if let DeclKind::Upgrade { component, attrs } = &d.kind {
                    self.upgrade(pf.id, component, attrs, d.span);
                }
            }
        }
        // 3. Patterns, generically.
        for i in 0..self.sets.len() {
            if self.sets[i].decl.params.is_some() {
                self.check_pattern(i);
            }
        }
        // 4. The goal: the root file's parameterless constraintsets and uses,
        //    in source order. Parameterless sets of imported files are checked
        //    for errors but are not in force.
        for pf in &loaded.files {
            let is_root = Some(pf.id) == root;
            for d in &pf.ast.decls {
                match &d.kind {
                    DeclKind::Constraintset(cs) if cs.params.is_none() => {
                        let Some((Global::Constraintset(i), _)) = self.globals.get(&cs.name.name).copied() else {
                            continue;
                        };
                        if !std::ptr::eq(self.sets[i].decl, cs) {
                            continue; // a duplicate, already reported
                        }
                        self.check_goal_set(i, is_root);
                    }
                    DeclKind::Use(u) if is_root => {
                        self.file = pf.id;
                        self.in_force = true;
                        let clauses = self.expand_use(u);
                        self.prog.clauses.extend(clauses);
                        self.in_force = false;
                    }
                    DeclKind::Objective(o) => self.objective(pf.id, o, d.span, is_root),
                    DeclKind::Prefer(p) => self.preference(pf.id, p, d.span, is_root),
                    _ => {}
                }
            }
        }
        // 5. Components no constraint in force mentions. Not after an error:
        //    a clause that failed to parse or check mentions nothing, so the
        //    warning would only repeat the error.
        let any_error = loaded.diags.iter().any(Diagnostic::is_error) || self.diags.iter().any(Diagnostic::is_error);
        for (i, m) in self.mentioned.clone().into_iter().enumerate() {
            if !m && root.is_some() && !any_error {
                let c = &self.prog.components[i];
                self.diags.push(
                    Diagnostic::new(
                        Code::UnusedComponent,
                        format!("component `{}` is not mentioned by any constraint", c.name),
                    )
                    .primary(c.loc.file, c.loc.span, "never mentioned")
                    .note("no constraint names it, so instances of it are deployed only where a `reachable` path needs one"),
                );
            }
        }
    }

    /// Adds a name to the global namespace; reports a duplicate and returns false.
    fn declare(&mut self, name: &ast::Ident, file: FileId, g: Global) -> bool {
        let loc = Loc::new(file, name.span);
        if let Some((prev, prev_loc)) = self.globals.get(&name.name) {
            let what = |g: &Global| match g {
                Global::Component(_) => "a component",
                Global::Host(_) => "a host",
                Global::Constraintset(_) => "a constraintset",
                Global::Instance(_) => "a named instance",
                Global::InstanceGroup(_) => "a group of named instances",
                Global::Broken => "a declaration",
            };
            let n = &name.name;
            let mut d = Diagnostic::new(Code::Duplicate, format!("the name `{n}` is declared twice"));
            if prev_loc.file == file {
                d = d.primary(file, name.span, format!("`{n}` declared again here")).secondary(
                    prev_loc.file,
                    prev_loc.span,
                    format!("first declared here, as {}", what(prev)),
                );
            } else {
                // In two files: the primary label goes to the goal file (the
                // user's code) when one of them is it.
                let (main, other, other_what) = if prev_loc.file == self.prog.root_file {
                    (*prev_loc, loc, what(&g))
                } else {
                    (loc, *prev_loc, what(prev))
                };
                let where_ = if self.stdlib_files.contains(&other.file) {
                    "in the standard library"
                } else {
                    "in an imported file"
                };
                d = d.primary(main.file, main.span, format!("`{n}` declared here")).secondary(
                    other.file,
                    other.span,
                    format!("and also here, {where_}, as {other_what}"),
                );
                if self.stdlib_files.contains(&other.file) {
                    d = d.help(format!("rename yours: the standard library already declares `{n}`"));
                }
            }
            d = d.note("components, hosts and constraintsets of all loaded files share one namespace; every name must be unique");
            self.diags.push(d);
            return false;
        }
        let kind = match g {
            Global::Component(_) => Some(SymbolKind::Component),
            Global::Host(_) => Some(SymbolKind::Host),
            Global::Constraintset(_) => Some(SymbolKind::Constraintset),
            Global::Instance(_) | Global::InstanceGroup(_) => Some(SymbolKind::Instance),
            Global::Broken => None,
        };
        if let Some(kind) = kind {
            self.index.add(loc, kind, &name.name, loc);
        }
        self.globals.insert(name.name.clone(), (g, loc));
        true
    }

    /// Records a name written at `span` of the current file as meaning the
    /// symbol declared at `def`; not while expanding a `use` (the pattern's
    /// body was indexed by its generic check).
    fn record(&mut self, span: ast::Span, kind: SymbolKind, name: &str, def: Loc) {
        if self.frames.is_empty() {
            self.index.add(Loc::new(self.file, span), kind, name, def);
        }
    }

    /// Records the name `n` if it is a global declaration (component, host or constraintset).
    fn record_global(&mut self, n: &ast::Ident) {
        if self.unwritten_hosts.contains(&n.name) {
            return;
        }
        let kind = match self.globals.get(&n.name) {
            Some((Global::Component(_), _)) => SymbolKind::Component,
            Some((Global::Host(_), _)) => SymbolKind::Host,
            Some((Global::Constraintset(_), _)) => SymbolKind::Constraintset,
            Some((Global::Instance(_) | Global::InstanceGroup(_), _)) => SymbolKind::Instance,
            _ => return,
        };
        if let Some((_, def)) = self.globals.get(&n.name).copied() {
            self.record(n.span, kind, &n.name, def);
        }
    }

    /// Records the name `n` if it is a pattern parameter in scope.
    fn record_param(&mut self, n: &ast::Ident) -> bool {
        if !self.generic {
            return false;
        }
        match self.env.get(&n.name).map(|(_, l)| *l) {
            Some(def) => {
                self.record(n.span, SymbolKind::Parameter, &n.name, def);
                true
            }
            None => false,
        }
    }

    fn check_goal_set(&mut self, i: usize, in_force: bool) {
        let (file, decl) = (self.sets[i].file, self.sets[i].decl);
        self.file = file;
        self.in_force = in_force;
        self.warn = true;
        if decl.body.is_empty() {
            self.diags.push(
                Diagnostic::new(Code::EmptyConstraintset, format!("constraintset `{}` has no clauses", decl.name.name))
                    .primary(file, decl.body_span, "empty")
                    .note("an empty constraintset constrains nothing"),
            );
        }
        self.current_set = Some(decl.name.name.clone());
        for e in &decl.body {
            let f = self.clause(e);
            if in_force {
                self.prog.clauses.push(Clause {
                    formula: f,
                    origin: Origin {
                        constraintset: decl.name.name.clone(),
                        loc: Loc::new(file, e.span),
                        use_site: None,
                    },
                });
            }
        }
        self.in_force = false;
        self.current_set = None;
    }

    /// Checks a pattern's body once with phantom components for its component
    /// parameters, recording the ports it requires of each.
    fn check_pattern(&mut self, i: usize) {
        let (file, decl, doc) = (self.sets[i].file, self.sets[i].decl, self.sets[i].doc);
        let errors_before = self.error_count();
        // Variables bound by the generic check have phantom sorts; they are
        // dropped afterwards so `Program::vars` only holds valid sorts.
        let vars_before = self.prog.vars.len();
        self.file = file;
        self.warn = true;
        self.in_force = false;
        let params = decl.params.as_deref().unwrap_or_default();
        let mut env = HashMap::new();
        let mut phantoms = vec![];
        for p in params {
            let loc = Loc::new(file, p.name.span);
            if let Some((_, first)) = env.get(&p.name.name) {
                let first: Loc = *first;
                self.diags.push(
                    Diagnostic::new(Code::DuplicateVariable, format!("parameter `{}` is declared twice", p.name.name))
                        .primary(file, p.name.span, "declared again here")
                        .secondary(first.file, first.span, "first declared here"),
                );
                continue;
            }
            self.index.add(loc, SymbolKind::Parameter, &p.name.name, loc);
            self.index.params.push(index::ParamDef {
                loc,
                kind: p.kind.name.clone(),
                name: p.name.name.clone(),
                pattern: decl.name.name.clone(),
            });
            let b = match p.kind.name.as_str() {
                "component" => {
                    let id = self.prog.components.len();
                    self.prog.components.push(Component {
                        name: p.name.name.clone(),
                        loc,
                        code: String::new(),
                        ports: vec![],
                        maxperhost: 1,
                        maxinstances: None,
                        attrs: vec![],
                        doc: None,
                        named: None,
                    });
                    phantoms.push((p.name.name.clone(), id));
                    Binding::Component(id)
                }
                "port" => Binding::Port(p.name.name.clone()),
                "int" => Binding::Int(0),
                "attribute" => Binding::Attr(p.name.name.clone()),
                other => {
                    let kinds = ["component", "port", "int", "attribute"];
                    let mut d = Diagnostic::new(Code::UnknownParamKind, format!("unknown parameter kind `{other}`"))
                        .primary(file, p.kind.span, "not a parameter kind")
                        .note("parameters are `component A`, `port p`, `int k` or `attribute a`");
                    // Typos, and longer spellings people reach for (`integer`, `attr`).
                    let guess = crate::diagnostics::did_you_mean(other, kinds).or_else(|| {
                        let o = other.to_lowercase();
                        kinds.into_iter().find(|k| o.len() >= 3 && (k.starts_with(o.as_str()) || o.starts_with(k)))
                    });
                    if other == "host" {
                        d = d.help("a pattern cannot take a host; quantify over hosts in its body with `forall host h in deployment (…)`");
                    } else if let Some(s) = guess {
                        d = d.help(format!("did you mean `{s}`?"));
                    }
                    self.diags.push(d);
                    Binding::Invalid
                }
            };
            env.insert(p.name.name.clone(), (b, loc));
        }
        self.env = env;
        if decl.body.is_empty() {
            self.diags.push(
                Diagnostic::new(Code::EmptyConstraintset, format!("constraintset `{}` has no clauses", decl.name.name))
                    .primary(file, decl.body_span, "empty"),
            );
        }
        // A `use` inside the body is expanded against the phantoms too, so
        // the inner pattern's requirements become this pattern's.
        self.generic = true;
        self.current_set = Some(decl.name.name.clone());
        for e in &decl.body {
            let _ = self.clause(e);
        }
        self.current_set = None;
        self.generic = false;
        self.env.clear();
        let required_ports = phantoms
            .iter()
            .map(|(n, id)| (n.clone(), self.prog.components[*id].ports.iter().map(|p| p.name.clone()).collect()))
            .collect();
        self.prog.components.truncate(self.real_comps);
        self.prog.vars.truncate(vars_before);
        self.var_used.truncate(vars_before);
        self.var_param.retain(|v, _| *v < vars_before);
        self.poisoned.retain(|v| *v < vars_before);
        self.pattern_infos.push(PatternInfo {
            name: decl.name.name.clone(),
            loc: Loc::new(file, decl.name.span),
            params: params.iter().map(|p| (p.kind.name.clone(), p.name.name.clone())).collect(),
            required_ports,
            doc: doc.map(str::to_string),
        });
        let errors_after = self.error_count();
        self.sets[i].broken = errors_after > errors_before;
    }

    /// Expands `use NAME(args)`: checks the pattern's body with the arguments
    /// bound and returns its clauses.
    fn expand_use(&mut self, u: &ast::UseStmt) -> Vec<Clause> {
        let use_loc = Loc::new(self.file, u.span);
        if !self.prog.uses.iter().any(|(l, _)| *l == use_loc) {
            self.prog.uses.push((use_loc, u.name.name.clone()));
        }
        let Some((Global::Constraintset(i), _)) = self.globals.get(&u.name.name).copied() else {
            if !matches!(self.globals.get(&u.name.name), Some((Global::Broken, _))) {
                self.unknown_constraintset(&u.name);
            }
            return vec![];
        };
        self.record_global(&u.name);
        let (pfile, decl) = (self.sets[i].file, self.sets[i].decl);
        let name = &decl.name.name;
        // A cycle: the constraintset whose body is being checked, or one being
        // expanded, is used again inside its own expansion.
        let from_frame = self.frames.iter().position(|f| &f.pattern == name);
        if from_frame.is_some() || self.current_set.as_ref() == Some(name) {
            let mut chain: Vec<String> = vec![];
            if from_frame.is_none() {
                chain.push(format!("`{name}`"));
            }
            chain.extend(self.frames[from_frame.unwrap_or(0)..].iter().map(|f| format!("`{}`", f.pattern)));
            chain.push(format!("`{name}`"));
            let here = Loc::new(self.file, u.span);
            let outer = self.frames.first().map(|f| f.use_loc).unwrap_or(here);
            let mut d = Diagnostic::new(Code::RecursiveUse, format!("constraintset `{name}` uses itself"));
            if outer == here {
                d = d.primary(here.file, here.span, format!("`{name}` is used inside `{name}`"));
            } else {
                d = d.primary(outer.file, outer.span, format!("this use leads back to `{name}`")).secondary(
                    here.file,
                    here.span,
                    format!("`{name}` is used again here"),
                );
            }
            self.diags.push(
                d.note(format!("the chain: {}", chain.join(" uses ")))
                    .help("a constraintset cannot expand into itself; remove one of the uses in the chain"),
            );
            return vec![];
        }
        let params: &[ast::Param] = decl.params.as_deref().unwrap_or_default();
        if params.len() != u.args.len() {
            let sig: Vec<String> = params.iter().map(|p| format!("{} {}", p.kind.name, p.name.name)).collect();
            let ps = if params.len() == 1 { "" } else { "s" };
            let d = Diagnostic::new(
                Code::ArgumentCount,
                format!("`{}` takes {} argument{ps}, but {} were given", decl.name.name, params.len(), u.args.len()),
            )
            .primary(
                self.file,
                u.span,
                format!("{} argument{} given", u.args.len(), if u.args.len() == 1 { "" } else { "s" }),
            )
            .secondary(
                pfile,
                decl.name.span,
                format!("declared as `{}({})`", decl.name.name, sig.join(", ")),
            );
            let d = if params.len() > u.args.len() {
                let missing: Vec<String> = sig[u.args.len()..].iter().map(|p| format!("`{p}`")).collect();
                d.help(format!(
                    "add {} for {}",
                    if missing.len() == 1 { "an argument" } else { "arguments" },
                    missing.join(", ")
                ))
            } else {
                let extra = u.args.len() - params.len();
                d.help(if extra == 1 {
                    "remove the last argument".to_string()
                } else {
                    format!("remove the last {extra} arguments")
                })
            };
            self.report(d);
            return vec![];
        }
        // Bind arguments (resolved in the caller's environment).
        let mut env = HashMap::new();
        let mut args = HashMap::new();
        let mut ok = true;
        for (p, a) in params.iter().zip(&u.args) {
            let aloc = Loc::new(self.file, a.span());
            let written = match a {
                ast::UseArg::Name(n) => Some(n.name.clone()),
                ast::UseArg::Int(..) => None,
            };
            args.insert(p.name.name.clone(), (aloc, written));
            match self.bind_arg(p, a, pfile) {
                Some(b) => {
                    env.insert(p.name.name.clone(), (b, aloc));
                }
                None => ok = false,
            }
        }
        if !ok || self.sets[i].broken {
            return vec![];
        }
        // Check the body in the pattern's own scope.
        let saved_env = std::mem::replace(&mut self.env, env);
        let saved_scopes = std::mem::take(&mut self.scopes);
        let saved_file = std::mem::replace(&mut self.file, pfile);
        let saved_warn = std::mem::replace(&mut self.warn, false);
        self.frames.push(Frame { pattern: decl.name.name.clone(), use_loc, args });
        let outer_use = self.frames.first().map(|f| f.use_loc).unwrap_or(use_loc);
        let mut out = vec![];
        for e in &decl.body {
            let f = self.clause(e);
            out.push(Clause {
                formula: f,
                origin: Origin {
                    constraintset: decl.name.name.clone(),
                    loc: Loc::new(pfile, e.span),
                    use_site: Some(outer_use),
                },
            });
        }
        self.frames.pop();
        self.env = saved_env;
        self.scopes = saved_scopes;
        self.file = saved_file;
        self.warn = saved_warn;
        out
    }

    fn bind_arg(&mut self, p: &ast::Param, a: &ast::UseArg, pfile: FileId) -> Option<Binding> {
        let kind = p.kind.name.as_str();
        let wrong = |this: &mut Self, found: &str| {
            this.report(
                Diagnostic::new(
                    Code::ArgumentKind,
                    format!("argument for `{} {}` must be {}, found {found}", kind, p.name.name, kind_phrase(kind)),
                )
                .primary(this.file, a.span(), format!("expected {}", kind_phrase(kind)))
                .secondary(pfile, p.name.span, "parameter declared here"),
            );
            None
        };
        match (kind, a) {
            ("component", ast::UseArg::Name(n)) => {
                if let Some((Binding::Component(c), _)) = self.env.get(&n.name) {
                    let c = *c;
                    self.record_param(n);
                    return Some(Binding::Component(c));
                }
                match self.globals.get(&n.name).copied() {
                    Some((Global::Component(c), def)) => {
                        self.record(n.span, SymbolKind::Component, &n.name, def);
                        if self.in_force && c < self.mentioned.len() {
                            self.mentioned[c] = true;
                        }
                        Some(Binding::Component(c))
                    }
                    Some((Global::Broken, _)) => None,
                    Some((Global::Host(_), _)) => wrong(self, &format!("host `{}`", n.name)),
                    Some((Global::Constraintset(_), _)) => wrong(self, &format!("constraintset `{}`", n.name)),
                    Some((Global::Instance(_), _)) => wrong(self, &format!("named instance `{}`", n.name)),
                    Some((Global::InstanceGroup(_), _)) => {
                        wrong(self, &format!("group of named instances `{}`", n.name))
                    }
                    None => {
                        self.unknown_component(n);
                        None
                    }
                }
            }
            ("port", ast::UseArg::Name(n)) => match self.env.get(&n.name).cloned() {
                Some((Binding::Port(q), _)) => {
                    self.record_param(n);
                    Some(Binding::Port(q))
                }
                _ => Some(Binding::Port(n.name.clone())),
            },
            ("attribute", ast::UseArg::Name(n)) => match self.env.get(&n.name).cloned() {
                Some((Binding::Attr(q), _)) => {
                    self.record_param(n);
                    Some(Binding::Attr(q))
                }
                _ => Some(Binding::Attr(n.name.clone())),
            },
            ("int", ast::UseArg::Int(v, _)) => Some(Binding::Int(*v)),
            ("int", ast::UseArg::Name(n)) => match self.env.get(&n.name).cloned() {
                Some((Binding::Int(v), _)) => {
                    self.record_param(n);
                    Some(Binding::Int(v))
                }
                _ => wrong(self, &format!("`{}`", n.name)),
            },
            // A parameter of an unknown kind (already reported): accept anything.
            (k, _) if !matches!(k, "component" | "port" | "int" | "attribute") => Some(Binding::Invalid),
            (_, ast::UseArg::Int(v, _)) => wrong(self, &format!("the integer `{v}`")),
            _ => Some(Binding::Invalid),
        }
    }

    /// Reports a diagnostic; inside a `use` expansion, the primary label moves
    /// to the outermost `use` (the user's code) and the pattern's place
    /// becomes a secondary label.
    fn report(&mut self, d: Diagnostic) {
        let Some(outer) = self.frames.first() else {
            self.diags.push(d);
            return;
        };
        if d.severity == crate::diagnostics::Severity::Warning && !self.warn && d.code != Code::TriviallyFalse {
            return;
        }
        let mut nd = Diagnostic::new(d.code, d.message.clone());
        nd.severity = d.severity;
        nd = nd.primary(outer.use_loc.file, outer.use_loc.span, format!("in this use of `{}`", outer.pattern));
        for l in d.labels {
            nd = nd.secondary(l.file, l.span, l.message);
        }
        nd.notes = d.notes;
        nd.suggestions = d.suggestions;
        self.diags.push(nd);
    }

    fn unknown_component(&mut self, n: &ast::Ident) {
        let mut cands: Vec<&str> = self.prog.components[..self.real_comps].iter().map(|c| c.name.as_str()).collect();
        let params: Vec<String> =
            self.env.iter().filter(|(_, (b, _))| matches!(b, Binding::Component(_))).map(|(k, _)| k.clone()).collect();
        cands.extend(params.iter().map(String::as_str));
        let d = if let Some((g, loc)) = self.globals.get(&n.name) {
            // Declared, but not as a component.
            let what = if matches!(g, Global::Host(_)) { "a host" } else { "a constraintset" };
            let mut d =
                Diagnostic::new(Code::UnknownComponent, format!("`{}` is {what}, not a component type", n.name))
                    .primary(self.file, n.span, "expected a component type")
                    .secondary(loc.file, loc.span, format!("`{}` is declared here as {what}", n.name));
            if matches!(g, Global::Host(_)) {
                d = d.help(format!(
                    "to range over the instances on host `{}`, write `forall T x in {} (…)` with a component type `T`",
                    n.name, n.name
                ));
            }
            d
        } else {
            let mut d = Diagnostic::new(Code::UnknownComponent, format!("unknown component `{}`", n.name)).primary(
                self.file,
                n.span,
                "not a declared component",
            );
            let attrs: Vec<&str> = self.prog.host_attr_types.keys().map(String::as_str).collect();
            if let Some(s) = crate::diagnostics::did_you_mean(&n.name, cands.iter().copied()) {
                d = d.did_you_mean(s);
            } else if let Some(s) = crate::diagnostics::did_you_mean(&n.name, attrs.iter().copied()) {
                d = d.help(format!(
                    "did you mean the host attribute `{s}`? `{s} z in deployment` ranges over the values it takes"
                ));
            } else if let Some(hint) = expr::foreign_feature(&n.name) {
                d = d.help(hint);
            }
            d
        };
        self.report(d);
    }

    fn unknown_constraintset(&mut self, n: &ast::Ident) {
        let cands: Vec<String> = self
            .globals
            .iter()
            .filter(|(_, (g, _))| matches!(g, Global::Constraintset(_)))
            .map(|(k, _)| k.clone())
            .collect();
        let mut d = Diagnostic::new(Code::UnknownConstraintset, format!("unknown constraintset `{}`", n.name)).primary(
            self.file,
            n.span,
            "no constraintset of this name",
        );
        if let Some(s) = crate::diagnostics::did_you_mean(&n.name, cands.iter().map(String::as_str)) {
            d = d.did_you_mean(s);
        } else if crate::check::load::STDLIB.iter().any(|(_, t)| t.contains(&format!("constraintset {}(", n.name))) {
            d = d.help("it is in the standard library: add `import \"patterns\"`");
        }
        self.report(d);
    }
}

fn kind_phrase(kind: &str) -> &'static str {
    match kind {
        "component" => "a component name",
        "port" => "a port name",
        "int" => "an integer",
        "attribute" => "an attribute name",
        _ => "an argument",
    }
}

// ---- workloads (issue 19): hosts from inventories and ranges ----

impl Checker<'_> {
    /// Declares the hosts of the inventory imported at `at` in `file`.
    fn inventory_hosts(&mut self, loaded: &Loaded, file: FileId, at: ast::Span) {
        let Some(inv) = loaded.inventories.iter().find(|i| i.from == file && i.at == at) else { return };
        for h in &inv.hosts {
            let ident = ast::Ident { name: h.name.clone(), span: h.name_span };
            let id = self.prog.hosts.len();
            if self.declare(&ident, inv.file, Global::Host(id)) {
                let mut host = Host { name: h.name.clone(), loc: Loc::new(inv.file, h.name_span), attrs: vec![] };
                for (k, v, span) in &h.attrs {
                    host.attrs.push((k.clone(), v.clone()));
                    self.host_attr_locs.insert((h.name.clone(), k.clone()), Loc::new(inv.file, *span));
                }
                self.prog.hosts.push(host);
            }
        }
    }

    /// `host web[20] = host(…)`: hosts `web1` … `web20`.
    fn host_range(
        &mut self,
        file: FileId,
        name: &ast::Ident,
        count: i64,
        count_span: ast::Span,
        attrs: &ast::AttrList,
    ) {
        if count < 1 || count as usize > inventory::MAX_HOSTS {
            self.diags.push(
                Diagnostic::new(
                    Code::BadHostRange,
                    format!("a host range declares 1 to {} hosts", inventory::MAX_HOSTS),
                )
                .primary(file, count_span, format!("{count} hosts"))
                .note(format!(
                    "`host {}[3] = host(…)` declares `{}1`, `{}2` and `{}3`",
                    name.name, name.name, name.name, name.name
                )),
            );
            return;
        }
        let first = self.host(file, name, attrs);
        for i in 1..=count {
            let n = format!("{}{i}", name.name);
            let ident = ast::Ident { name: n.clone(), span: name.span };
            let id = self.prog.hosts.len();
            if self.declare(&ident, file, Global::Host(id)) {
                // The index holds names as written; `web1` is not.
                if self.index.occurrences.last().is_some_and(|o| o.name == n) {
                    self.index.occurrences.pop();
                }
                self.unwritten_hosts.insert(n.clone());
                let mut host = first.clone();
                host.name = n.clone();
                for e in &attrs.entries {
                    self.host_attr_locs.insert((n.clone(), e.key.name.clone()), Loc::new(file, e.value.span));
                }
                self.prog.hosts.push(host);
            }
        }
    }
}
