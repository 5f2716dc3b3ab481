//! Checking resource declarations: components, hosts and upgrades.

use super::ir::*;
use super::Checker;
use crate::diagnostics::{did_you_mean, Code, Diagnostic, FileId};
use crate::syntax::ast::{self, Arity, AttrValueKind};

pub(super) fn value_of(kind: &AttrValueKind) -> Option<Value> {
    match kind {
        AttrValueKind::Str(s) => Some(Value::Str(s.clone())),
        AttrValueKind::Int(n) => Some(Value::Int(*n)),
        AttrValueKind::Bool(b) => Some(Value::Bool(*b)),
        AttrValueKind::Set(_) | AttrValueKind::Name(_) => None,
    }
}

fn describe_value(kind: &AttrValueKind) -> &'static str {
    match kind {
        AttrValueKind::Str(_) => "a string",
        AttrValueKind::Int(_) => "an integer",
        AttrValueKind::Bool(_) => "a boolean",
        AttrValueKind::Set(_) => "a set",
        AttrValueKind::Name(_) => "a bare name",
    }
}

impl Checker<'_> {
    /// Reports duplicate keys in an attribute list; `bundle` counts as `code`.
    pub(super) fn duplicate_keys(&mut self, file: FileId, attrs: &ast::AttrList) {
        for (i, e) in attrs.entries.iter().enumerate() {
            let canon = |k: &str| if k == "bundle" { "code".to_string() } else { k.to_string() };
            if let Some(prev) = attrs.entries[..i].iter().find(|p| canon(&p.key.name) == canon(&e.key.name)) {
                let d = if prev.key.name == e.key.name {
                    Diagnostic::new(Code::DuplicateAttribute, format!("attribute `{}` is given twice", e.key.name))
                        .primary(file, e.key.span, "given again here")
                        .secondary(file, prev.key.span, "first given here")
                } else {
                    Diagnostic::new(
                        Code::DuplicateAttribute,
                        format!("`{}` and `{}` are both given", prev.key.name, e.key.name),
                    )
                    .primary(file, e.key.span, format!("`{}` is another name for `{}`", e.key.name, prev.key.name))
                    .secondary(file, prev.key.span, "already given here")
                    .help("keep one of them")
                };
                self.diags.push(d);
            }
        }
    }

    pub(super) fn bad_value(&mut self, file: FileId, e: &ast::AttrEntry, expected: &str) {
        let mut d = Diagnostic::new(
            Code::BadAttributeValue,
            format!("`{}` must be {expected}, found {}", e.key.name, describe_value(&e.value.kind)),
        )
        .primary(file, e.value.span, format!("expected {expected}"));
        if let AttrValueKind::Name(n) = &e.value.kind {
            d = d.help(format!("if you meant text, quote it: `\"{n}\"`"));
        }
        self.diags.push(d);
    }

    fn bound(&mut self, file: FileId, e: &ast::AttrEntry) -> Option<u32> {
        match &e.value.kind {
            AttrValueKind::Int(n) if *n < 0 => {
                self.diags.push(Diagnostic::new(Code::NegativeBound, format!("`{}` is negative", e.key.name)).primary(
                    file,
                    e.value.span,
                    "must be 0 or more",
                ));
                None
            }
            AttrValueKind::Int(n) => Some(*n as u32),
            _ => {
                self.bad_value(file, e, "an integer");
                None
            }
        }
    }

    pub(super) fn component(
        &mut self,
        file: FileId,
        name: &ast::Ident,
        attrs: &ast::AttrList,
        doc: Option<String>,
    ) -> Component {
        self.duplicate_keys(file, attrs);
        let mut comp = Component {
            name: name.name.clone(),
            loc: Loc::new(file, name.span),
            code: String::new(),
            ports: vec![],
            maxperhost: 1,
            maxinstances: None,
            attrs: vec![],
            doc,
            named: None,
        };
        let (mut has_code, mut has_ports) = (false, false);
        for e in &attrs.entries {
            match e.key.name.as_str() {
                "code" | "bundle" => {
                    has_code = true;
                    match &e.value.kind {
                        AttrValueKind::Str(s) => comp.code = s.clone(),
                        _ => self.bad_value(file, e, "a string (where the component's bundle lives)"),
                    }
                }
                "ports" => {
                    has_ports = true;
                    match &e.value.kind {
                        AttrValueKind::Set(ports) => {
                            for p in ports {
                                if let Some(port) = self.port(file, &comp, p) {
                                    comp.ports.push(port);
                                }
                            }
                        }
                        _ => self.bad_value(file, e, "a set of ports like `{in, out[]}`"),
                    }
                }
                "maxperhost" => {
                    if let Some(n) = self.bound(file, e) {
                        comp.maxperhost = n;
                    }
                }
                "maxinstances" => comp.maxinstances = self.bound(file, e),
                _ => match value_of(&e.value.kind) {
                    Some(v) => comp.attrs.push((e.key.name.clone(), v)),
                    // `cpu = int`: each named instance gives it (instances.rs).
                    None if self.required_attribute(file, e) => {}
                    None => self.bad_value(file, e, "a string, an integer or a boolean"),
                },
            }
        }
        for (present, code, what, example) in [
            (has_code, Code::MissingCode, "code", "code = \"file:///bundle.xml\""),
            (has_ports, Code::MissingPorts, "ports", "ports = {in, out}"),
        ] {
            if !present {
                self.diags.push(
                    Diagnostic::new(code, format!("component `{}` has no `{what}`", name.name))
                        .primary(file, name.span, format!("missing `{what}`"))
                        .secondary(file, attrs.span, "in this attribute list")
                        .help(format!("add `{example}`")),
                );
            }
        }
        comp
    }

    fn port(&mut self, file: FileId, comp: &Component, p: &ast::PortDecl) -> Option<Port> {
        if let Some(prev) = comp.ports.iter().find(|q| q.name == p.name.name) {
            self.diags.push(
                Diagnostic::new(
                    Code::DuplicatePort,
                    format!("port `{}` is declared twice in `{}`", p.name.name, comp.name),
                )
                .primary(file, p.name.span, "declared again here")
                .secondary(prev.loc.file, prev.loc.span, "first declared here"),
            );
            return None;
        }
        let (variadic, capacity) = match p.arity {
            Arity::Single => (false, Some(1)),
            Arity::Variadic => (true, None),
            Arity::Bounded(n) if n < 0 => {
                self.diags.push(
                    Diagnostic::new(Code::NegativeBound, format!("port `{}` has a negative bound", p.name.name))
                        .primary(file, p.span, "the bound must be 0 or more")
                        .help(format!("write `{}[]` for any number of channels", p.name.name)),
                );
                (true, None)
            }
            Arity::Bounded(n) => (true, Some(n as u32)),
        };
        let direction = match &p.direction {
            None => Direction::Both,
            Some(d) => match d.name.as_str() {
                "input" => Direction::Input,
                "output" => Direction::Output,
                "external" => Direction::External,
                other => {
                    let mut diag = Diagnostic::new(Code::BadDirection, format!("unknown port direction `{other}`"))
                        .primary(file, d.span, "not a direction")
                        .note("a port is `: input`, `: output` or `: external`, or has no direction (bidirectional)");
                    if let Some(s) = did_you_mean(other, ["input", "output", "external"]) {
                        diag = diag.did_you_mean(s);
                    }
                    self.diags.push(diag);
                    Direction::Both
                }
            },
        };
        let loc = Loc::new(file, p.name.span);
        self.index.add(loc, super::index::SymbolKind::Port, &p.name.name, loc);
        Some(Port { name: p.name.name.clone(), loc, variadic, capacity, direction })
    }

    pub(super) fn host(&mut self, file: FileId, name: &ast::Ident, attrs: &ast::AttrList) -> Host {
        self.duplicate_keys(file, attrs);
        let mut host = Host { name: name.name.clone(), loc: Loc::new(file, name.span), attrs: vec![] };
        for e in &attrs.entries {
            match value_of(&e.value.kind) {
                Some(v) => {
                    if host.attr(&e.key.name).is_none() {
                        host.attrs.push((e.key.name.clone(), v));
                        self.host_attr_locs
                            .insert((name.name.clone(), e.key.name.clone()), Loc::new(file, e.value.span));
                    }
                }
                None => self.bad_value(file, e, "a string, an integer or a boolean"),
            }
        }
        host
    }

    /// Every host attribute name has one type across all hosts. One error per
    /// attribute name: at the first value of a minority type, against the
    /// first value of the most common type.
    pub(super) fn host_attr_types(&mut self) {
        // Per attribute: (type, where the value is, host name), in host order.
        let mut seen: std::collections::BTreeMap<String, Vec<(Type, Loc, String)>> = Default::default();
        for h in &self.prog.hosts {
            for (k, v) in &h.attrs {
                let at = self.host_attr_locs.get(&(h.name.clone(), k.clone())).copied().unwrap_or(h.loc);
                seen.entry(k.clone()).or_default().push((v.ty(), at, h.name.clone()));
            }
        }
        let mut types = std::collections::BTreeMap::new();
        for (k, vals) in seen {
            let counts: Vec<(Type, usize)> = [Type::Int, Type::Str, Type::Bool]
                .into_iter()
                .map(|t| (t, vals.iter().filter(|(u, _, _)| *u == t).count()))
                .collect();
            let count = |t: Type| counts.iter().find(|(u, _)| *u == t).map_or(0, |(_, n)| *n);
            // The most common type (the first seen on a tie) is taken as meant.
            let mut main = vals[0].0;
            for (t, n) in &counts {
                if *n > count(main) {
                    main = *t;
                }
            }
            types.insert(k.clone(), main);
            let Some((odd_t, odd_loc, odd_host)) = vals.iter().find(|(t, _, _)| *t != main) else { continue };
            let (_, main_loc, main_host) = vals.iter().find(|(t, _, _)| *t == main).expect("the main type occurs");
            let mut kinds: Vec<String> = vec![];
            for t in [Type::Int, Type::Str, Type::Bool] {
                match count(t) {
                    0 => {}
                    1 => kinds.push(format!("1 host has {}", type_article(t))),
                    n => kinds.push(format!("{n} hosts have {}", type_article(t))),
                }
            }
            self.diags.push(
                Diagnostic::new(
                    Code::MixedAttributeTypes,
                    format!("host attribute `{k}` has mixed types: {} and {}", type_word(main), type_word(*odd_t)),
                )
                .primary(odd_loc.file, odd_loc.span, format!("{} on `{odd_host}`", type_article(*odd_t)))
                .secondary(main_loc.file, main_loc.span, format!("{} on `{main_host}`", type_article(main)))
                .note(format!("an attribute name has one type across all hosts; here {}", kinds.join(", ")))
                .help(format!("write every `{k}` as {}", type_article(main))),
            );
        }
        self.prog.host_attr_types = types;
    }

    pub(super) fn upgrade(&mut self, file: FileId, component: &ast::Ident, attrs: &ast::AttrList, span: ast::Span) {
        self.duplicate_keys(file, attrs);
        let comp = match self.globals.get(&component.name).copied() {
            Some((super::Global::Component(c), def)) => {
                self.index.add(
                    Loc::new(file, component.span),
                    super::index::SymbolKind::Component,
                    &component.name,
                    def,
                );
                Some(c)
            }
            _ => {
                let names: Vec<&str> = self.prog.components.iter().map(|c| c.name.as_str()).collect();
                let mut d = Diagnostic::new(
                    Code::UpgradeUnknownComponent,
                    format!("`upgrade` of unknown component `{}`", component.name),
                )
                .primary(file, component.span, "not a declared component");
                if let Some(s) = did_you_mean(&component.name, names) {
                    d = d.did_you_mean(s);
                }
                self.diags.push(d);
                None
            }
        };
        if let Some(c) = comp {
            if let Some(prev) = self.prog.upgrades.iter().find(|u| u.component == c) {
                // Point at the first upgrade's component name, not all of it.
                let prev = self.upgrade_names.iter().find(|(k, _)| *k == c).map(|(_, l)| *l).unwrap_or(prev.loc);
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateUpgrade,
                        format!("component `{}` is upgraded twice", component.name),
                    )
                    .primary(file, component.span, "second upgrade here")
                    .secondary(prev.file, prev.span, "first upgrade here")
                    .note("an upgrade declares the one new version of a component"),
                );
                return;
            }
        }
        let mut up = Upgrade {
            component: comp.unwrap_or(0),
            code: String::new(),
            changes: vec![],
            shadow: Shadow::SameHost,
            loc: Loc::new(file, span),
            change_locs: vec![],
        };
        let (mut has_code, mut has_changes) = (false, false);
        for e in &attrs.entries {
            match e.key.name.as_str() {
                "code" | "bundle" => {
                    has_code = true;
                    match &e.value.kind {
                        AttrValueKind::Str(s) => up.code = s.clone(),
                        _ => self.bad_value(file, e, "a string (where the new bundle lives)"),
                    }
                }
                "changes" => {
                    has_changes = true;
                    let AttrValueKind::Set(ports) = &e.value.kind else {
                        self.bad_value(file, e, "a set of port names like `{rin, rout}`");
                        continue;
                    };
                    for p in ports {
                        if p.arity != Arity::Single || p.direction.is_some() {
                            self.diags.push(
                                Diagnostic::new(Code::BadAttributeValue, "`changes` lists port names only").primary(
                                    file,
                                    p.span,
                                    "a port name, without `[]` or a direction",
                                ),
                            );
                        }
                        let Some(c) = comp else { continue };
                        let cdef = &self.prog.components[c];
                        match cdef.port(&p.name.name) {
                            Some(pid) => {
                                let def = cdef.ports[pid].loc;
                                self.index.add(
                                    Loc::new(file, p.name.span),
                                    super::index::SymbolKind::Port,
                                    &p.name.name,
                                    def,
                                );
                                if !up.changes.contains(&pid) {
                                    up.changes.push(pid);
                                    up.change_locs.push(Loc::new(file, p.name.span));
                                }
                            }
                            None => {
                                let mut d = Diagnostic::new(
                                    Code::UpgradeUnknownPort,
                                    format!("component `{}` has no port `{}`", cdef.name, p.name.name),
                                )
                                .primary(file, p.name.span, "unknown port")
                                .secondary(
                                    cdef.loc.file,
                                    cdef.loc.span,
                                    format!("`{}` declared here", cdef.name),
                                );
                                if let Some(s) = did_you_mean(&p.name.name, cdef.ports.iter().map(|q| q.name.as_str()))
                                {
                                    d = d.did_you_mean(s);
                                } else {
                                    let list: Vec<&str> = cdef.ports.iter().map(|q| q.name.as_str()).collect();
                                    d = d.note(format!("`{}` has ports: {}", cdef.name, list.join(", ")));
                                }
                                self.diags.push(d);
                            }
                        }
                    }
                }
                "shadow" => match &e.value.kind {
                    AttrValueKind::Str(s) if s == "samehost" => up.shadow = Shadow::SameHost,
                    AttrValueKind::Str(s) if s == "otherhost" => up.shadow = Shadow::OtherHost,
                    _ => {
                        let mut d = Diagnostic::new(Code::BadShadow, "`shadow` must be \"samehost\" or \"otherhost\"")
                            .primary(file, e.value.span, "unknown shadow placement")
                            .note("the old version runs in shadow mode on the same host (default) or another one");
                        if let AttrValueKind::Name(n) | AttrValueKind::Str(n) = &e.value.kind {
                            if matches!(n.as_str(), "samehost" | "otherhost") {
                                d = d.help(format!("write it as a string: `\"{n}\"`"));
                            } else if let Some(s) = did_you_mean(n, ["samehost", "otherhost"]) {
                                d = d.help(format!("did you mean `\"{s}\"`?"));
                            }
                        }
                        self.diags.push(d);
                    }
                },
                other => {
                    let mut d =
                        Diagnostic::new(Code::UnknownUpgradeAttribute, format!("unknown upgrade attribute `{other}`"))
                            .primary(file, e.key.span, "not an upgrade attribute")
                            .note("an upgrade takes `code`, `changes` and optionally `shadow`");
                    if let Some(s) = did_you_mean(other, ["code", "changes", "shadow"]) {
                        d = d.did_you_mean(s);
                    }
                    self.diags.push(d);
                }
            }
        }
        if !has_code {
            self.diags.push(
                Diagnostic::new(Code::MissingCode, format!("upgrade of `{}` has no `code`", component.name))
                    .primary(file, component.span, "missing `code`")
                    .help("add `code = \"…\"`: where the new version's bundle lives"),
            );
        }
        if !has_changes {
            self.diags.push(
                Diagnostic::new(Code::MissingChanges, format!("upgrade of `{}` has no `changes`", component.name))
                    .primary(file, component.span, "missing `changes`")
                    .help("list the ports whose message interface changes, e.g. `changes = {rin, rout}`, or `changes = {}`"),
            );
        }
        if let Some(c) = comp {
            self.prog.upgrades.push(up);
            self.upgrade_names.push((c, Loc::new(file, component.span)));
        }
    }
}

pub(super) fn type_word(t: Type) -> &'static str {
    match t {
        Type::Int => "int",
        Type::Str => "string",
        Type::Bool => "bool",
        Type::Host => "host",
        Type::Instance(_) => "instance",
        Type::Unknown => "unknown",
    }
}

pub(super) fn type_article(t: Type) -> &'static str {
    match t {
        Type::Int => "an int",
        Type::Str => "a string",
        Type::Bool => "a bool",
        _ => "a value",
    }
}
