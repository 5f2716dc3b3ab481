//! Completion: ports and attributes after `x.`, names of components, hosts
//! and constraintsets, variables in scope, and keywords.
//!
//! The text being typed rarely parses (`c.` is not a term), so the variable
//! before a dot is resolved in three ways, first hit wins: the current
//! analysis's index; the same text with a placeholder name typed after the
//! dot, checked again; and a scan of the tokens back from the cursor for the
//! binder of that name (`forall Client c …`), which works even while the
//! surrounding parentheses are still open.

use lsp_types::{CompletionItem, CompletionItemKind};

use super::analysis::{Analysis, Overlay, Stdlib};
use deladas::check::index::{SymbolKind, VarSort};
use deladas::syntax::lexer::{lex, Tok, KEYWORDS};

/// The placeholder typed after a dot to make the text parse.
const PLACEHOLDER: &str = "deladas_completion_placeholder";

/// What the variable before a dot ranges over.
enum Base {
    Component(usize),
    ComponentParam { pattern: String, param: String },
    Host(Option<usize>),
}

fn item(label: &str, kind: CompletionItemKind, detail: impl Into<String>) -> CompletionItem {
    CompletionItem { label: label.to_string(), kind: Some(kind), detail: Some(detail.into()), ..Default::default() }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Completion items at byte `offset` of the analysed document.
pub fn complete(a: &Analysis, offset: usize, fs: &Overlay<'_>, stdlib: &Stdlib) -> Vec<CompletionItem> {
    let text = a.text();
    let offset = offset.min(text.len());
    let bytes = text.as_bytes();
    // The partial name being typed.
    let mut start = offset;
    while start > 0 && is_ident_byte(bytes[start - 1]) {
        start -= 1;
    }
    if start > 0 && bytes[start - 1] == b'.' {
        return after_dot(a, start - 1, offset, fs, stdlib);
    }
    let before: Vec<(Tok, deladas::syntax::ast::Span)> =
        lex(&text[..start]).tokens.into_iter().filter(|(_, s)| (s.end as usize) <= start).collect();
    let prev = before.last().map(|(t, _)| t.clone());
    let prog = &a.checked.program;
    let comps = || prog.components.iter().map(|c| item(&c.name, CompletionItemKind::CLASS, "component"));
    let sets = || {
        a.checked.index.occurrences.iter().filter(|o| o.kind == SymbolKind::Constraintset && o.is_def()).map(|o| {
            let detail = match a.checked.patterns.iter().find(|p| p.loc == o.def) {
                Some(p) => {
                    let ps: Vec<String> = p.params.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    format!("constraintset {}({})", p.name, ps.join(", "))
                }
                None => "constraintset".to_string(),
            };
            item(&o.name, CompletionItemKind::FUNCTION, detail)
        })
    };
    match prev {
        Some(Tok::Use) => return sets().collect(),
        Some(Tok::Forall | Tok::Exists | Tok::Instancesof) => {
            let mut v: Vec<CompletionItem> = comps().collect();
            v.push(item("host", CompletionItemKind::KEYWORD, "keyword: range over hosts"));
            v.extend(pattern_params(a, offset, "component"));
            return v;
        }
        _ => {}
    }
    let mut v: Vec<CompletionItem> = vec![];
    v.extend(variables_in_scope(a, offset));
    v.extend(pattern_params(a, offset, ""));
    v.extend(comps());
    v.extend(prog.hosts.iter().map(|h| item(&h.name, CompletionItemKind::CONSTANT, "host")));
    v.extend(sets());
    v.extend(KEYWORDS.iter().map(|k| item(k, CompletionItemKind::KEYWORD, "keyword")));
    v
}

/// The top-level declaration of the root file containing `offset`, as a byte range.
fn enclosing_decl(a: &Analysis, offset: usize) -> Option<(usize, usize)> {
    let pf = a.root_ast()?;
    let off = offset as u32;
    pf.ast
        .decls
        .iter()
        .find(|d| d.span.start <= off && off <= d.span.end)
        .map(|d| d.span.range())
        .map(|r| (r.start, r.end))
}

/// Variables bound before `offset` in the declaration around it.
fn variables_in_scope(a: &Analysis, offset: usize) -> Vec<CompletionItem> {
    let Some((lo, _)) = enclosing_decl(a, offset) else { return vec![] };
    let mut seen = std::collections::HashSet::new();
    let mut out = vec![];
    for v in a.checked.index.vars.iter().rev() {
        let s = v.loc.span.start as usize;
        if v.loc.file == a.files.root && s >= lo && s < offset && seen.insert(v.name.clone()) {
            let detail = match &v.sort {
                VarSort::Host => "host variable".to_string(),
                VarSort::Component(c) => {
                    format!("instance of {}", a.checked.program.components.get(*c).map_or("?", |c| c.name.as_str()))
                }
                VarSort::ComponentParam(p) => format!("instance of {p}"),
                VarSort::Group(a) => format!("a value of host attribute {a}"),
                VarSort::Unknown => "variable".to_string(),
            };
            out.push(item(&v.name, CompletionItemKind::VARIABLE, detail));
        }
    }
    out
}

/// Parameters (of `kind`, or all with "") of the pattern around `offset`.
fn pattern_params(a: &Analysis, offset: usize, kind: &str) -> Vec<CompletionItem> {
    let Some((lo, hi)) = enclosing_decl(a, offset) else { return vec![] };
    a.checked
        .index
        .params
        .iter()
        .filter(|p| p.loc.file == a.files.root && (lo..=hi).contains(&(p.loc.span.start as usize)))
        .filter(|p| kind.is_empty() || p.kind == kind)
        .map(|p| item(&p.name, CompletionItemKind::TYPE_PARAMETER, format!("{} parameter", p.kind)))
        .collect()
}

/// Items after the dot at byte `dot`.
fn after_dot(a: &Analysis, dot: usize, offset: usize, fs: &Overlay<'_>, stdlib: &Stdlib) -> Vec<CompletionItem> {
    let text = a.text();
    let bytes = text.as_bytes();
    if dot > 0 && bytes[dot - 1] == b')' {
        // `hostof(x).`
        return host_attrs(a, None);
    }
    let mut s = dot;
    while s > 0 && is_ident_byte(bytes[s - 1]) {
        s -= 1;
    }
    if s == dot {
        return vec![];
    }
    let name = &text[s..dot];
    // The analysis the base was resolved in: the items come from it too (a
    // pattern whose body is being typed is only known to the placeholder's).
    let mut with_placeholder: Option<Analysis> = None;
    let mut base = base_from_index(a, s, name);
    if base.is_none() {
        // Type a placeholder after the dot and check again.
        let mut t = String::with_capacity(text.len() + PLACEHOLDER.len());
        t.push_str(&text[..offset]);
        if offset == dot + 1 {
            t.push_str(PLACEHOLDER);
        }
        t.push_str(&text[offset..]);
        let uri = a.files.uris.get(a.files.root).cloned().flatten();
        let path = a.parsed.first().and_then(|p| p.path.clone());
        if let (Some(uri), Some(path)) = (uri, path) {
            let b = Analysis::new(&uri, &path, &t, fs, stdlib);
            base = base_from_index(&b, s, name);
            if base.is_some() {
                with_placeholder = Some(b);
            }
        }
    }
    if base.is_none() {
        base = base_from_tokens(a, s, name);
    }
    let a = with_placeholder.as_ref().unwrap_or(a);
    match base {
        Some(Base::Component(c)) => {
            let Some(comp) = a.checked.program.components.get(c) else { return vec![] };
            let mut v: Vec<CompletionItem> = comp
                .ports
                .iter()
                .map(|p| item(&p.name, CompletionItemKind::PROPERTY, format!("port {}", super::navigate::port_text(p))))
                .collect();
            v.extend(
                comp.attrs.iter().map(|(k, val)| item(k, CompletionItemKind::FIELD, format!("attribute = {val}"))),
            );
            v.push(item("code", CompletionItemKind::FIELD, format!("attribute = {:?}", comp.code)));
            v.push(item("maxperhost", CompletionItemKind::FIELD, format!("attribute = {}", comp.maxperhost)));
            v
        }
        Some(Base::ComponentParam { pattern, param }) => {
            let mut v: Vec<CompletionItem> = a
                .checked
                .index
                .params
                .iter()
                .filter(|p| p.pattern == pattern && (p.kind == "port" || p.kind == "attribute"))
                .map(|p| item(&p.name, CompletionItemKind::TYPE_PARAMETER, format!("{} parameter", p.kind)))
                .collect();
            if let Some(info) = a.checked.patterns.iter().find(|i| i.name == pattern) {
                if let Some((_, ports)) = info.required_ports.iter().find(|(n, _)| *n == param) {
                    for p in ports {
                        if !v.iter().any(|i| i.label == *p) && p != PLACEHOLDER {
                            v.push(item(p, CompletionItemKind::PROPERTY, format!("port required of {param}")));
                        }
                    }
                }
            }
            v
        }
        Some(Base::Host(h)) => host_attrs(a, h),
        None => vec![],
    }
}

fn host_attrs(a: &Analysis, host: Option<usize>) -> Vec<CompletionItem> {
    let prog = &a.checked.program;
    match host.and_then(|h| prog.hosts.get(h)) {
        Some(h) => {
            h.attrs.iter().map(|(k, v)| item(k, CompletionItemKind::FIELD, format!("attribute = {v}"))).collect()
        }
        None => prog
            .host_attr_types
            .iter()
            .map(|(k, t)| item(k, CompletionItemKind::FIELD, format!("host attribute: {}", type_word(*t))))
            .collect(),
    }
}

fn type_word(t: deladas::check::ir::Type) -> &'static str {
    use deladas::check::ir::Type;
    match t {
        Type::Int => "int",
        Type::Str => "string",
        Type::Bool => "bool",
        _ => "value",
    }
}

/// The base resolved by an analysis's index: a variable or a host named at `at`.
fn base_from_index(a: &Analysis, at: usize, name: &str) -> Option<Base> {
    let o = a.checked.index.at(a.files.root, at)?;
    if o.name != name || o.loc.span.start as usize != at {
        return None;
    }
    match o.kind {
        SymbolKind::Variable => match &a.checked.index.var(o.def)?.sort {
            VarSort::Component(c) => Some(Base::Component(*c)),
            VarSort::Host => Some(Base::Host(None)),
            VarSort::ComponentParam(p) => {
                let pattern = a
                    .checked
                    .index
                    .params
                    .iter()
                    .filter(|q| q.name == *p && q.loc.file == o.def.file && q.loc.span.start < o.def.span.start)
                    .max_by_key(|q| q.loc.span.start)?
                    .pattern
                    .clone();
                Some(Base::ComponentParam { pattern, param: p.clone() })
            }
            VarSort::Group(_) | VarSort::Unknown => None,
        },
        SymbolKind::Host => Some(Base::Host(a.checked.program.hosts.iter().position(|h| h.loc == o.def))),
        _ => None,
    }
}

/// The base found by scanning tokens back from `at` for the binder of `name`:
/// `SORT a, name, b in|connectedto`.
fn base_from_tokens(a: &Analysis, at: usize, name: &str) -> Option<Base> {
    let text = a.text();
    let toks = lex(&text[..at]).tokens;
    let is_name = |t: &Tok| matches!(t, Tok::Ident(n) if n == name);
    for i in (0..toks.len()).rev() {
        if !is_name(&toks[i].0) {
            continue;
        }
        // Followed by `in`, `connectedto` or `, other … in`.
        let mut j = i + 1;
        while j + 1 < toks.len() && toks[j].0 == Tok::Comma && matches!(toks[j + 1].0, Tok::Ident(_)) {
            j += 2;
        }
        if !matches!(toks.get(j).map(|t| &t.0), Some(Tok::In | Tok::Connectedto)) {
            continue;
        }
        // Preceded by `other, ` pairs, then the sort.
        let mut k = i;
        while k >= 2 && toks[k - 1].0 == Tok::Comma && matches!(toks[k - 2].0, Tok::Ident(_)) {
            k -= 2;
        }
        let sort = &toks.get(k.checked_sub(1)?)?.0;
        return match sort {
            Tok::Host => Some(Base::Host(None)),
            Tok::Ident(s) => {
                if let Some(c) = a.checked.program.component(s) {
                    return Some(Base::Component(c));
                }
                let p = a.checked.index.params.iter().rev().find(|p| p.name == *s && p.loc.file == a.files.root)?;
                Some(Base::ComponentParam { pattern: p.pattern.clone(), param: s.clone() })
            }
            _ => None,
        };
    }
    None
}
