//! Hover, go to definition and find references: the symbol index of the
//! check (`check::index`) read at the cursor.

use lsp_types::{Hover, HoverContents, Location, MarkupContent, MarkupKind};

use super::analysis::Analysis;
use deladas::check::index::{Occurrence, SymbolKind, VarSort};
use deladas::check::ir::{Component, Direction, Loc, Port};

/// The resolved name under the cursor (a byte offset in the root file).
pub fn occurrence_at(a: &Analysis, offset: usize) -> Option<&Occurrence> {
    a.checked.index.at(a.files.root, offset)
}

/// Where the name under the cursor is declared; on an import's path, the
/// imported file.
pub fn definition(a: &Analysis, offset: usize) -> Option<Location> {
    if let Some(o) = occurrence_at(a, offset) {
        return a.files.location(o.def.file, o.def.span);
    }
    // An import's path: the imported file (also one that could not be loaded).
    let uri = super::features::import_target(a, offset)?;
    Some(Location { uri, range: lsp_types::Range::default() })
}

/// Every place the symbol declared at `def` is written, in this analysis.
pub fn references(a: &Analysis, def: Loc, include_decl: bool) -> Vec<Location> {
    a.checked
        .index
        .references(def)
        .filter(|o| include_decl || !o.is_def())
        .filter_map(|o| a.files.location(o.loc.file, o.loc.span))
        .collect()
}

/// A port as written in a `ports` set: `cin[]`, `p[4]`, `out: output`.
pub fn port_text(p: &Port) -> String {
    let arity = match (p.variadic, p.capacity) {
        (false, _) => String::new(),
        (true, None) => "[]".to_string(),
        (true, Some(n)) => format!("[{n}]"),
    };
    let dir = match p.direction {
        Direction::Both => "",
        Direction::Input => ": input",
        Direction::Output => ": output",
        Direction::External => ": external",
    };
    format!("{}{arity}{dir}", p.name)
}

/// A component's declaration, reconstructed: code, ports, bounds, attributes.
pub fn component_text(c: &Component) -> String {
    let ports: Vec<String> = c.ports.iter().map(port_text).collect();
    let mut lines = vec![format!("    code = {:?}", c.code), format!("    ports = {{{}}}", ports.join(", "))];
    if c.maxperhost != 1 {
        lines.push(format!("    maxperhost = {}", c.maxperhost));
    }
    if let Some(n) = c.maxinstances {
        lines.push(format!("    maxinstances = {n}"));
    }
    for (k, v) in &c.attrs {
        lines.push(format!("    {k} = {v}"));
    }
    format!("component {}(\n{}\n)", c.name, lines.join(",\n"))
}

fn port_words(p: &Port) -> String {
    let holds = match (p.variadic, p.capacity) {
        (false, _) => "holds at most one channel".to_string(),
        (true, None) => "variadic: any number of channels".to_string(),
        (true, Some(n)) => format!("variadic: at most {n} channels"),
    };
    let dir = match p.direction {
        Direction::Both => "bidirectional",
        Direction::Input => "input (channels end here)",
        Direction::Output => "output (channels start here)",
        Direction::External => "external (no channel may attach)",
    };
    format!("{holds}; {dir}")
}

fn code_block(s: &str) -> String {
    format!("```deladas\n{s}\n```")
}

/// The doc comment of the declaration whose name is at `def`.
fn doc_at(a: &Analysis, def: Loc) -> Option<String> {
    use deladas::syntax::ast::DeclKind;
    let pf = a.parsed.iter().find(|p| p.id == def.file)?;
    pf.ast.decls.iter().find_map(|d| {
        let name = match &d.kind {
            DeclKind::Component { name, .. } | DeclKind::Host { name, .. } => name,
            DeclKind::Constraintset(cs) => &cs.name,
            _ => return None,
        };
        (name.span == def.span).then(|| d.doc.clone()).flatten()
    })
}

/// The hover text for the name under the cursor.
pub fn hover(a: &Analysis, offset: usize) -> Option<Hover> {
    let o = occurrence_at(a, offset)?;
    let prog = &a.checked.program;
    let mut parts: Vec<String> = vec![];
    match o.kind {
        SymbolKind::Component => {
            let c = prog.components.iter().find(|c| c.loc == o.def)?;
            parts.push(code_block(&component_text(c)));
            let ports: Vec<String> =
                c.ports.iter().map(|p| format!("- `{}`: {}", port_text(p), port_words(p))).collect();
            if ports.is_empty() {
                parts.push("no ports".to_string());
            } else {
                parts.push(format!("ports:\n{}", ports.join("\n")));
            }
            if let Some(d) = &c.doc {
                parts.push(d.clone());
            }
        }
        SymbolKind::Instance => {
            let mut members: Vec<_> = prog.components.iter().filter(|c| c.named.is_some() && c.loc == o.def).collect();
            // `part1` written in a clause: that member, not the whole group.
            if let Some(m) = members.iter().find(|c| c.name == o.name && members.len() > 1) {
                members = vec![*m];
            }
            let first = members.first()?;
            let ty = first.named.and_then(|b| prog.components.get(b))?;
            let attrs: Vec<String> = first.attrs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let name = if members.len() > 1 { format!("{}[{}]", o.name, members.len()) } else { o.name.clone() };
            parts.push(code_block(&format!("instance {name} = {}({})", ty.name, attrs.join(", "))));
            parts.push(if members.len() > 1 {
                format!("{} named instances of component `{}`, each must exist", members.len(), ty.name)
            } else {
                format!("named instance of component `{}`: it must exist", ty.name)
            });
        }
        SymbolKind::Host => {
            let h = prog.hosts.iter().find(|h| h.loc == o.def)?;
            let attrs: Vec<String> = h.attrs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            parts.push(code_block(&format!("host {} = host({})", h.name, attrs.join(", "))));
            if let Some(d) = doc_at(a, o.def) {
                parts.push(d);
            }
        }
        SymbolKind::Port => {
            let (c, p) =
                prog.components.iter().find_map(|c| c.ports.iter().find(|p| p.loc == o.def).map(|p| (c, p)))?;
            parts.push(code_block(&format!("{}.{}", c.name, port_text(p))));
            parts.push(format!("port of component `{}`: {}", c.name, port_words(p)));
        }
        SymbolKind::Variable => {
            let v = a.checked.index.var(o.def)?;
            let (sort, words) = match &v.sort {
                VarSort::Host => ("host".to_string(), "a host".to_string()),
                VarSort::Component(c) => {
                    let n = prog.components.get(*c).map_or("?", |c| c.name.as_str());
                    (n.to_string(), format!("an instance of component `{n}`"))
                }
                VarSort::ComponentParam(p) => (p.clone(), format!("an instance of component parameter `{p}`")),
                VarSort::Group(a) => (a.clone(), format!("a value host attribute `{a}` takes")),
                VarSort::Unknown => ("?".to_string(), "of an unknown sort".to_string()),
            };
            parts.push(code_block(&format!("{sort} {}", v.name)));
            parts.push(format!("variable: {words}"));
            if let VarSort::Component(c) = &v.sort {
                if let Some(c) = prog.components.get(*c) {
                    let ports: Vec<String> = c.ports.iter().map(|p| format!("`{}`", port_text(p))).collect();
                    parts.push(format!("ports: {}", ports.join(", ")));
                }
            }
        }
        SymbolKind::Parameter => {
            let p = a.checked.index.param(o.def)?;
            parts.push(code_block(&format!("{} {}", p.kind, p.name)));
            parts.push(format!("parameter of constraintset `{}`", p.pattern));
            if let Some(info) = a.checked.patterns.iter().find(|i| i.name == p.pattern) {
                if let Some((_, ports)) = info.required_ports.iter().find(|(n, _)| *n == p.name) {
                    if !ports.is_empty() {
                        let ps: Vec<String> = ports.iter().map(|q| format!("`{q}`")).collect();
                        parts.push(format!("the pattern reads ports {} of it", ps.join(", ")));
                    }
                }
            }
        }
        SymbolKind::Constraintset => {
            let info = a.checked.patterns.iter().find(|i| i.loc == o.def);
            match info {
                Some(info) => {
                    let ps: Vec<String> = info.params.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    parts.push(code_block(&format!("constraintset {}({})", info.name, ps.join(", "))));
                    let reqs: Vec<String> = info
                        .required_ports
                        .iter()
                        .filter(|(_, ports)| !ports.is_empty())
                        .map(|(c, ports)| {
                            let ps: Vec<String> = ports.iter().map(|q| format!("`{q}`")).collect();
                            format!("`{c}` must have {}", ps.join(", "))
                        })
                        .collect();
                    if !reqs.is_empty() {
                        parts.push(format!("requires: {}", reqs.join("; ")));
                    }
                    if let Some(d) = &info.doc {
                        parts.push(d.clone());
                    }
                }
                None => {
                    parts.push(code_block(&format!("constraintset {}", o.name)));
                    if let Some(d) = doc_at(a, o.def) {
                        parts.push(d);
                    }
                }
            }
        }
    }
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: parts.join("\n\n") }),
        range: Some(a.files.range(o.loc.file, o.loc.span)),
    })
}
