//! Editing features read off one analysis: formatting, rename, document
//! highlight, folding ranges, links on import paths, workspace symbols,
//! signature help for `use` arguments and the code lens that runs the solver.

use std::collections::HashMap;

use logos::Logos;
use lsp_types::{
    CodeLens, Command, DocumentHighlight, DocumentHighlightKind, DocumentLink, FoldingRange, FoldingRangeKind,
    Location, ParameterInformation, ParameterLabel, Range, SignatureHelp, SignatureInformation, SymbolInformation,
    SymbolKind as LspSymbolKind, TextEdit, Uri,
};

use super::analysis::{Analysis, Stdlib};
use super::convert::{path_to_uri, LineIndex};
use deladas::syntax::ast::{DeclKind, Span};
use deladas::syntax::lexer::{Tok, KEYWORDS};

/// The command the code lens runs: decide (and explain) the goal now.
pub const SOLVE_COMMAND: &str = "deladas.solve";

/// The whole document in the house style, as one edit; `Ok(None)` when it
/// already is; `Err` with the reason when it has syntax errors.
pub fn format(text: &str) -> Result<Option<Vec<TextEdit>>, String> {
    match deladas::syntax::format::format(text) {
        Ok(out) if out == text => Ok(Some(vec![])),
        Ok(out) => {
            let li = LineIndex::new(text);
            Ok(Some(vec![TextEdit { range: li.range(Span::new(0, text.len())), new_text: out }]))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Whether `name` can name a declaration or variable.
pub fn valid_name(name: &str) -> bool {
    let mut cs = name.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
}

/// The occurrence under the cursor if it can be renamed: its range, or why not.
pub fn prepare_rename(a: &Analysis, offset: usize, stdlib: &Stdlib) -> Result<Range, String> {
    let o = super::navigate::occurrence_at(a, offset).ok_or("there is no name here to rename")?;
    let def_uri = a.files.uris.get(o.def.file).cloned().flatten();
    if def_uri.is_none() || def_uri.as_ref().is_some_and(|u| stdlib.uris.values().any(|s| s == u)) {
        return Err(format!("`{}` is declared in the standard library and cannot be renamed", o.name));
    }
    Ok(a.files.range(o.loc.file, o.loc.span))
}

/// Edits that rename every given location (found by find references) to `new_name`.
#[allow(clippy::mutable_key_type)] // `WorkspaceEdit::changes` is keyed by `Uri`.
pub fn rename_edits(locations: Vec<Location>, new_name: &str) -> HashMap<Uri, Vec<TextEdit>> {
    let mut out: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for l in locations {
        out.entry(l.uri).or_default().push(TextEdit { range: l.range, new_text: new_name.to_string() });
    }
    out
}

/// Every place in this document where the symbol under the cursor is written.
pub fn highlights(a: &Analysis, offset: usize) -> Vec<DocumentHighlight> {
    let Some(o) = super::navigate::occurrence_at(a, offset) else { return vec![] };
    a.checked
        .index
        .references(o.def)
        .filter(|r| r.loc.file == a.files.root)
        .map(|r| DocumentHighlight {
            range: a.files.range(r.loc.file, r.loc.span),
            kind: Some(if r.is_def() { DocumentHighlightKind::WRITE } else { DocumentHighlightKind::READ }),
        })
        .collect()
}

/// Folds: brackets that span lines, runs of line comments, block comments
/// over several lines, and a run of imports.
pub fn folding_ranges(text: &str) -> Vec<FoldingRange> {
    let li = LineIndex::new(text);
    let line = |off: u32| li.position(off as usize).line;
    let fold = |start: u32, end: u32, kind: Option<FoldingRangeKind>| FoldingRange {
        start_line: start,
        end_line: end,
        kind,
        ..Default::default()
    };
    let mut out = vec![];
    let mut open: Vec<u32> = vec![];
    // The current run of line comments, and of imports: first and last line.
    let mut comments: Option<(u32, u32)> = None;
    let mut imports: Option<(u32, u32)> = None;
    let flush = |run: &mut Option<(u32, u32)>, kind: FoldingRangeKind, out: &mut Vec<FoldingRange>| {
        if let Some((a, b)) = run.take() {
            if b > a {
                out.push(fold(a, b, Some(kind)));
            }
        }
    };
    let mut lexer = Tok::lexer(text);
    let mut prev_import = false;
    while let Some(t) = lexer.next() {
        let r = lexer.span();
        let (l0, l1) = (line(r.start as u32), line(r.end as u32));
        let Ok(tok) = t else { continue };
        if let Tok::LineComment(_) = tok {
            comments = match comments {
                Some((a, b)) if l0 == b + 1 => Some((a, l0)),
                _ => {
                    flush(&mut comments, FoldingRangeKind::Comment, &mut out);
                    Some((l0, l0))
                }
            };
            continue;
        }
        flush(&mut comments, FoldingRangeKind::Comment, &mut out);
        match tok {
            Tok::BlockComment if l1 > l0 => out.push(fold(l0, l1, Some(FoldingRangeKind::Comment))),
            Tok::LParen | Tok::LBracket | Tok::LBrace => open.push(l0),
            Tok::RParen | Tok::RBracket | Tok::RBrace => {
                if let Some(s) = open.pop() {
                    if l0 > s + 1 {
                        out.push(fold(s, l0 - 1, None));
                    }
                }
            }
            _ => {}
        }
        match (&tok, prev_import) {
            (Tok::Import, _) => {
                imports = match imports {
                    Some((a, b)) if l0 <= b + 1 => Some((a, l0)),
                    _ => {
                        flush(&mut imports, FoldingRangeKind::Imports, &mut out);
                        Some((l0, l0))
                    }
                };
            }
            (Tok::Str(_), true) => {}
            _ => flush(&mut imports, FoldingRangeKind::Imports, &mut out),
        }
        prev_import = matches!(tok, Tok::Import);
    }
    flush(&mut comments, FoldingRangeKind::Comment, &mut out);
    flush(&mut imports, FoldingRangeKind::Imports, &mut out);
    out
}

/// The file an import of the root file names: the one the loader read, or
/// (when it could not be loaded, e.g. not UTF-8) the file on disk it names.
pub fn import_target(a: &Analysis, offset: usize) -> Option<Uri> {
    let off = offset as u32;
    if let Some(&(_, _, to)) =
        a.files.imports.iter().find(|(from, s, _)| *from == a.files.root && s.start <= off && off <= s.end)
    {
        if let Some(Some(u)) = a.files.uris.get(to) {
            return Some(u.clone());
        }
    }
    let pf = a.root_ast()?;
    let dir = pf.path.as_ref()?.parent()?.to_path_buf();
    pf.ast.decls.iter().find_map(|d| match &d.kind {
        DeclKind::Import { path, path_span } if path_span.start <= off && off <= path_span.end => {
            let p = dir.join(path);
            let cands = if p.extension().is_none() { vec![p.clone(), p.with_extension("deladas")] } else { vec![p] };
            cands.into_iter().find(|c| c.is_file()).and_then(|c| {
                use deladas::check::FileSystem as _;
                path_to_uri(&deladas::check::RealFs.canonical(&c))
            })
        }
        _ => None,
    })
}

/// A link on every import path of the root file.
pub fn links(a: &Analysis) -> Vec<DocumentLink> {
    let Some(pf) = a.root_ast() else { return vec![] };
    pf.ast
        .decls
        .iter()
        .filter_map(|d| match &d.kind {
            DeclKind::Import { path_span, .. } => {
                let target = import_target(a, path_span.start as usize)?;
                Some(DocumentLink {
                    range: a.files.range(a.files.root, *path_span),
                    target: Some(target),
                    tooltip: Some("open the imported file".into()),
                    data: None,
                })
            }
            _ => None,
        })
        .collect()
}

/// Declarations of every file the analyses loaded whose name contains
/// `query` (case-insensitively), each once.
#[allow(deprecated)] // `SymbolInformation::deprecated` must be written out.
pub fn workspace_symbols<'a>(analyses: impl Iterator<Item = &'a Analysis>, query: &str) -> Vec<SymbolInformation> {
    let q = query.to_lowercase();
    let mut seen = std::collections::HashSet::new();
    let mut out = vec![];
    for a in analyses {
        for pf in &a.parsed {
            let Some(Some(uri)) = a.files.uris.get(pf.id) else { continue };
            for d in &pf.ast.decls {
                let (name, kind, what) = match &d.kind {
                    DeclKind::Component { name, .. } => (name, LspSymbolKind::CLASS, "component"),
                    DeclKind::Host { name, .. } => (name, LspSymbolKind::CONSTANT, "host"),
                    DeclKind::Constraintset(cs) => (&cs.name, LspSymbolKind::FUNCTION, "constraintset"),
                    _ => continue,
                };
                if !name.name.to_lowercase().contains(&q) || !seen.insert((uri.as_str().to_string(), name.span)) {
                    continue;
                }
                out.push(SymbolInformation {
                    name: name.name.clone(),
                    kind,
                    tags: None,
                    deprecated: None,
                    location: Location { uri: uri.clone(), range: a.files.range(pf.id, name.span) },
                    container_name: Some(format!("{what} in {}", a.files.sources.name_of(pf.id))),
                });
            }
        }
    }
    out
}

/// Signature help inside the arguments of `use pattern(…)`: the pattern's
/// parameters, the one being written highlighted.
pub fn signature_help(a: &Analysis, offset: usize) -> Option<SignatureHelp> {
    let text = a.text();
    let offset = offset.min(text.len());
    // The tokens before the cursor; walk back to the unclosed `(`.
    let mut toks: Vec<Tok> = vec![];
    let mut lexer = Tok::lexer(text);
    while let Some(t) = lexer.next() {
        if lexer.span().end > offset {
            break;
        }
        match t {
            Ok(Tok::LineComment(_) | Tok::BlockComment) | Err(_) => {}
            Ok(t) => toks.push(t),
        }
    }
    let mut depth = 0usize;
    let mut commas = 0u32;
    let mut at = None;
    for (i, t) in toks.iter().enumerate().rev() {
        match t {
            Tok::RParen | Tok::RBrace | Tok::RBracket => depth += 1,
            Tok::LParen if depth == 0 => {
                at = Some(i);
                break;
            }
            Tok::LParen | Tok::LBrace | Tok::LBracket => depth = depth.saturating_sub(1),
            Tok::Comma if depth == 0 => commas += 1,
            _ => {}
        }
    }
    let at = at?;
    let (Some(Tok::Ident(name)), Some(Tok::Use)) = (toks.get(at.checked_sub(1)?), toks.get(at.checked_sub(2)?)) else {
        return None;
    };
    let info = a.checked.patterns.iter().find(|p| &p.name == name)?;
    let mut label = format!("{}(", info.name);
    let mut params = vec![];
    for (i, (kind, pname)) in info.params.iter().enumerate() {
        if i > 0 {
            label.push_str(", ");
        }
        let start = label.encode_utf16().count() as u32;
        label.push_str(&format!("{kind} {pname}"));
        let end = label.encode_utf16().count() as u32;
        params.push(ParameterInformation { label: ParameterLabel::LabelOffsets([start, end]), documentation: None });
    }
    label.push(')');
    Some(SignatureHelp {
        signatures: vec![SignatureInformation {
            label,
            documentation: info.doc.clone().map(|d| {
                lsp_types::Documentation::MarkupContent(lsp_types::MarkupContent {
                    kind: lsp_types::MarkupKind::Markdown,
                    value: d,
                })
            }),
            parameters: Some(params),
            active_parameter: Some(commas),
        }],
        active_signature: Some(0),
        active_parameter: Some(commas),
    })
}

/// A lens above the first constraintset (or the first declaration) of a
/// goal that checks: run the solver now.
pub fn code_lenses(a: &Analysis, uri: &Uri) -> Vec<CodeLens> {
    if a.checked.has_errors() {
        return vec![];
    }
    let Some(pf) = a.root_ast() else { return vec![] };
    let decl = pf
        .ast
        .decls
        .iter()
        .find(|d| matches!(d.kind, DeclKind::Constraintset(_) | DeclKind::Use(_)))
        .or(pf.ast.decls.first());
    let Some(d) = decl else { return vec![] };
    let start = a.files.range(a.files.root, Span::new(d.span.start as usize, d.span.start as usize));
    vec![CodeLens {
        range: start,
        command: Some(Command {
            title: "▶ Solve (and explain if unsatisfiable)".into(),
            command: SOLVE_COMMAND.into(),
            arguments: Some(vec![serde_json::Value::String(uri.as_str().to_string())]),
        }),
        data: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_brackets_comments_and_imports() {
        let text = "// a\n// b\nimport \"x\"\nimport \"y\"\nconstraintset s = constraintset {\n    a\n    b\n}\n";
        let f = folding_ranges(text);
        let got: Vec<(u32, u32)> = f.iter().map(|r| (r.start_line, r.end_line)).collect();
        assert!(got.contains(&(0, 1)), "{got:?}");
        assert!(got.contains(&(2, 3)), "{got:?}");
        assert!(got.contains(&(4, 6)), "{got:?}");
    }

    #[test]
    fn names() {
        assert!(valid_name("web_2"));
        assert!(!valid_name("2web"));
        assert!(!valid_name("forall"));
        assert!(!valid_name("a-b"));
    }
}
