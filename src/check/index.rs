//! The symbol index: every name written in the loaded files, resolved to the
//! declaration it means, for editor navigation (go to definition, find
//! references, hover) in the language server.
//!
//! The checker records occurrences while it resolves names; nothing here
//! changes what is checked or reported. A symbol is identified by where it is
//! declared (its defining [`Loc`]), which is unique: a component, host or
//! constraintset by its name in its declaration, a port by its name in its
//! component's `ports`, a variable by its binder, a pattern parameter by its
//! name in the pattern's parameter list.
//!
//! Names inside a pattern's body are indexed once, from the pattern's generic
//! check (a parameter resolves to the parameter); the expansions of `use` add
//! only what the user wrote at the use site (the pattern's name, and the
//! components and ports given as arguments).

use super::ir::{CompId, Loc};

/// What kind of declaration a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolKind {
    /// A component type (`component Router(…)`).
    Component,
    /// A host (`host h1 = host(…)`).
    Host,
    /// A constraintset, with or without parameters.
    Constraintset,
    /// A port of a component (`cin` in `ports = {cin[], …}`).
    Port,
    /// A variable bound by `forall`, `exists`, `card(…)` or `sum(…)`.
    Variable,
    /// A pattern parameter (`component Hub`, `port hubport`, `int k`, `attribute a`).
    Parameter,
    /// A named instance or a group of them (`instance vm1 = VM(…)`).
    Instance,
}

/// One name written in the source, resolved to its declaration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Occurrence {
    /// Where the name is written.
    pub loc: Loc,
    pub kind: SymbolKind,
    pub name: String,
    /// Where the symbol is declared; equal to `loc` at the declaration itself.
    pub def: Loc,
}

impl Occurrence {
    /// Whether this occurrence is the declaration itself.
    pub fn is_def(&self) -> bool {
        self.loc == self.def
    }
}

/// The sort a variable ranges over, as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarSort {
    /// `forall host h …`
    Host,
    /// Instances of a declared component.
    Component(CompId),
    /// Instances of a pattern's component parameter (named).
    ComponentParam(String),
    /// The values of a host attribute (`forall zone z in deployment`).
    Group(String),
    /// The sort could not be resolved (an error was reported).
    Unknown,
}

/// A variable binding: where it is bound and what it ranges over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarDef {
    pub loc: Loc,
    pub name: String,
    pub sort: VarSort,
}

/// A pattern parameter: where it is declared, its kind and its pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDef {
    pub loc: Loc,
    /// `component`, `port`, `int` or `attribute` (as written).
    pub kind: String,
    pub name: String,
    /// The constraintset that declares it.
    pub pattern: String,
}

/// Every resolved name of a checked goal, with variable and parameter details.
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// Sorted by location after checking; one entry per written name.
    pub occurrences: Vec<Occurrence>,
    pub vars: Vec<VarDef>,
    pub params: Vec<ParamDef>,
}

impl Index {
    pub(super) fn add(&mut self, loc: Loc, kind: SymbolKind, name: &str, def: Loc) {
        self.occurrences.push(Occurrence { loc, kind, name: name.to_string(), def });
    }

    /// Sorts occurrences by place and drops repeats (a name resolved twice).
    pub(super) fn finish(&mut self) {
        self.occurrences.sort();
        self.occurrences.dedup_by(|a, b| a.loc == b.loc && a.def == b.def);
    }

    /// The occurrence whose name covers `offset` in `file` (its end included,
    /// so a cursor just after a name still finds it).
    pub fn at(&self, file: usize, offset: usize) -> Option<&Occurrence> {
        let offset = offset as u32;
        let hits = self
            .occurrences
            .iter()
            .filter(|o| o.loc.file == file && o.loc.span.start <= offset && offset <= o.loc.span.end);
        // Prefer a name that strictly contains the offset over one that ends there.
        hits.min_by_key(|o| (o.loc.span.end == offset, o.loc.span.len()))
    }

    /// Every occurrence of the symbol declared at `def`, the declaration included.
    pub fn references(&self, def: Loc) -> impl Iterator<Item = &Occurrence> {
        self.occurrences.iter().filter(move |o| o.def == def)
    }

    /// The variable bound at `loc`.
    pub fn var(&self, loc: Loc) -> Option<&VarDef> {
        self.vars.iter().find(|v| v.loc == loc)
    }

    /// The pattern parameter declared at `loc`.
    pub fn param(&self, loc: Loc) -> Option<&ParamDef> {
        self.params.iter().find(|p| p.loc == loc)
    }
}
