//! The outline (document symbols) and semantic highlighting (semantic
//! tokens) of a document.
//!
//! Highlighting lexes the buffer (comments included) and colours each name by
//! what the check resolved it to, so a port named `in` is a port, not the
//! keyword, and a component reads differently from a host or a variable.

use logos::Logos;
use lsp_types::{
    DocumentSymbol, SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokens, SemanticTokensLegend,
    SymbolKind as LspSymbolKind,
};

use super::analysis::Analysis;
use super::convert::LineIndex;
use deladas::check::index::SymbolKind;
use deladas::syntax::ast::{AttrValueKind, DeclKind, Span};
use deladas::syntax::lexer::Tok;

/// The outline of the root file: its declarations, with ports under their
/// component and parameters under their pattern.
#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written out.
pub fn document_symbols(a: &Analysis) -> Vec<DocumentSymbol> {
    let Some(pf) = a.root_ast() else { return vec![] };
    let li = LineIndex::new(a.text());
    let sym = |name: String, detail: Option<String>, kind, range: Span, sel: Span, children: Vec<DocumentSymbol>| {
        DocumentSymbol {
            name,
            detail,
            kind,
            tags: None,
            deprecated: None,
            range: li.range(range),
            selection_range: li.range(sel),
            children: if children.is_empty() { None } else { Some(children) },
        }
    };
    let mut out = vec![];
    for d in &pf.ast.decls {
        match &d.kind {
            DeclKind::Component { name, attrs } => {
                let mut children = vec![];
                for e in &attrs.entries {
                    if let (true, AttrValueKind::Set(ports)) = (e.key.name == "ports", &e.value.kind) {
                        for p in ports {
                            children.push(sym(
                                p.name.name.clone(),
                                Some("port".into()),
                                LspSymbolKind::FIELD,
                                p.span,
                                p.name.span,
                                vec![],
                            ));
                        }
                    }
                }
                out.push(sym(
                    name.name.clone(),
                    Some("component".into()),
                    LspSymbolKind::CLASS,
                    d.span,
                    name.span,
                    children,
                ));
            }
            DeclKind::Host { name, .. } => out.push(sym(
                name.name.clone(),
                Some("host".into()),
                LspSymbolKind::CONSTANT,
                d.span,
                name.span,
                vec![],
            )),
            DeclKind::Constraintset(cs) => {
                let children: Vec<DocumentSymbol> = cs
                    .params
                    .iter()
                    .flatten()
                    .map(|p| {
                        sym(
                            p.name.name.clone(),
                            Some(format!("{} parameter", p.kind.name)),
                            LspSymbolKind::TYPE_PARAMETER,
                            p.kind.span.to(p.name.span),
                            p.name.span,
                            vec![],
                        )
                    })
                    .collect();
                let (detail, kind) = match &cs.params {
                    Some(_) => ("pattern", LspSymbolKind::FUNCTION),
                    None => ("constraintset", LspSymbolKind::NAMESPACE),
                };
                out.push(sym(cs.name.name.clone(), Some(detail.into()), kind, d.span, cs.name.span, children));
            }
            DeclKind::Use(u) => {
                out.push(sym(format!("use {}", u.name.name), None, LspSymbolKind::EVENT, d.span, u.name.span, vec![]))
            }
            DeclKind::Upgrade { component, .. } => out.push(sym(
                format!("upgrade {}", component.name),
                None,
                LspSymbolKind::EVENT,
                d.span,
                component.span,
                vec![],
            )),
            DeclKind::Import { path, path_span } => {
                out.push(sym(format!("import {path:?}"), None, LspSymbolKind::FILE, d.span, *path_span, vec![]))
            }
            DeclKind::Objective(o) => out.push(sym(
                o.sense.word().to_string(),
                Some("objective".into()),
                LspSymbolKind::EVENT,
                d.span,
                o.keyword,
                vec![],
            )),
            DeclKind::Prefer(p) => out.push(sym(
                "prefer".to_string(),
                Some("preference".into()),
                LspSymbolKind::EVENT,
                d.span,
                p.keyword,
                vec![],
            )),
            DeclKind::ImportHosts { path, path_span, .. } => out.push(sym(
                format!("import hosts from {path:?}"),
                None,
                LspSymbolKind::FILE,
                d.span,
                *path_span,
                vec![],
            )),
            DeclKind::HostRange { name, count, .. } => out.push(sym(
                format!("{}[{count}]", name.name),
                Some("hosts".into()),
                LspSymbolKind::CONSTANT,
                d.span,
                name.span,
                vec![],
            )),
            DeclKind::Instance(i) => out.push(sym(
                match i.count {
                    Some((n, _)) => format!("{}[{n}]", i.name.name),
                    None => i.name.name.clone(),
                },
                Some(format!("instance of {}", i.component.name)),
                LspSymbolKind::OBJECT,
                d.span,
                i.name.span,
                vec![],
            )),
        }
    }
    out
}

/// Token types, in legend order.
const TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::KEYWORD,
    SemanticTokenType::CLASS,       // component
    SemanticTokenType::ENUM_MEMBER, // host
    SemanticTokenType::FUNCTION,    // constraintset
    SemanticTokenType::PROPERTY,    // port
    SemanticTokenType::VARIABLE,
    SemanticTokenType::PARAMETER,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::OPERATOR,
];

/// Token modifiers, in legend order (bit i is modifier i).
const MODIFIERS: &[SemanticTokenModifier] = &[SemanticTokenModifier::DECLARATION, SemanticTokenModifier::DOCUMENTATION];

/// The legend the server announces.
pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend { token_types: TYPES.to_vec(), token_modifiers: MODIFIERS.to_vec() }
}

fn type_index(t: &SemanticTokenType) -> u32 {
    TYPES.iter().position(|x| x == t).unwrap_or(0) as u32
}

/// Semantic tokens of the whole root file.
pub fn semantic_tokens(a: &Analysis) -> SemanticTokens {
    let text = a.text();
    let li = LineIndex::new(text);
    let index = &a.checked.index;
    let root = a.files.root;
    // Resolved names of the root file, by start offset.
    let mut names = std::collections::HashMap::new();
    for o in index.occurrences.iter().filter(|o| o.loc.file == root) {
        names.insert(o.loc.span.start, o);
    }
    // (span, type, modifiers)
    let mut raw: Vec<(Span, SemanticTokenType, u32)> = vec![];
    let mut lexer = Tok::lexer(text);
    while let Some(res) = lexer.next() {
        let r = lexer.span();
        let span = Span::new(r.start, r.end);
        let Ok(tok) = res else { continue };
        if let Some(o) = names.get(&span.start).filter(|o| o.loc.span == span) {
            let ty = match o.kind {
                SymbolKind::Component => SemanticTokenType::CLASS,
                SymbolKind::Host => SemanticTokenType::ENUM_MEMBER,
                SymbolKind::Constraintset => SemanticTokenType::FUNCTION,
                SymbolKind::Port => SemanticTokenType::PROPERTY,
                SymbolKind::Variable => SemanticTokenType::VARIABLE,
                SymbolKind::Parameter => SemanticTokenType::PARAMETER,
                SymbolKind::Instance => SemanticTokenType::ENUM_MEMBER,
            };
            raw.push((span, ty, u32::from(o.is_def())));
            continue;
        }
        let ty = match tok {
            Tok::LineComment(doc) => {
                raw.push((span, SemanticTokenType::COMMENT, if doc { 2 } else { 0 }));
                continue;
            }
            Tok::BlockComment => SemanticTokenType::COMMENT,
            Tok::Str(_) => SemanticTokenType::STRING,
            Tok::Int(_) => SemanticTokenType::NUMBER,
            Tok::Ident(_) => continue,
            t if t.keyword().is_some() => SemanticTokenType::KEYWORD,
            Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge | Tok::Plus | Tok::Minus | Tok::Star => {
                SemanticTokenType::OPERATOR
            }
            _ => continue,
        };
        raw.push((span, ty, 0));
    }
    // Encode relative to the previous token, one token per line.
    let mut data = vec![];
    let (mut pline, mut pcol) = (0u32, 0u32);
    for (span, ty, mods) in raw {
        let mut lo = span.start as usize;
        let hi = span.end as usize;
        while lo < hi {
            let line_end = text[lo..hi].find('\n').map_or(hi, |i| lo + i);
            let visible_end = if text[lo..line_end].ends_with('\r') { line_end - 1 } else { line_end };
            let (start, end) = (li.position(lo), li.position(visible_end));
            if end.character > start.character {
                let delta_line = start.line - pline;
                let delta_start = if delta_line == 0 { start.character - pcol } else { start.character };
                data.push(SemanticToken {
                    delta_line,
                    delta_start,
                    length: end.character - start.character,
                    token_type: type_index(&ty),
                    token_modifiers_bitset: mods,
                });
                pline = start.line;
                pcol = start.character;
            }
            lo = line_end + 1;
        }
    }
    SemanticTokens { result_id: None, data }
}
