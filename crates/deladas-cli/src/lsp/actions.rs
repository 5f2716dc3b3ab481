//! Code actions (quick fixes): apply a "did you mean" of a diagnostic, and
//! apply a repair that the satisfiability check on save found for an
//! unsatisfiable goal (drop a clause or a `use`, add hosts like one, raise
//! `maxinstances`, `maxperhost` or a port's capacity), and add the `upgrade` that an E0610 of
//! the cluster check on save asks for.

use std::collections::HashMap;

use lsp_types::{CodeAction, CodeActionKind, CodeActionOrCommand, Range, TextEdit, Uri, WorkspaceEdit};

use super::analysis::Analysis;
use deladas::check::ir::Program;
use deladas::solve::explain::Repair;
use deladas::syntax::ast::{DeclKind, Span};

/// A quick fix that edits one document.
#[allow(clippy::mutable_key_type)] // `WorkspaceEdit::changes` is keyed by `Uri`.
fn fix(title: String, uri: &Uri, edits: Vec<TextEdit>, diag: Option<lsp_types::Diagnostic>) -> CodeActionOrCommand {
    let changes = HashMap::from([(uri.clone(), edits)]);
    CodeActionOrCommand::CodeAction(CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: diag.map(|d| vec![d]),
        edit: Some(WorkspaceEdit { changes: Some(changes), ..Default::default() }),
        is_preferred: Some(true),
        ..Default::default()
    })
}

fn overlaps(a: Range, b: Range) -> bool {
    let key = |p: lsp_types::Position| (p.line, p.character);
    key(a.start) <= key(b.end) && key(b.start) <= key(a.end)
}

/// "Did you mean" fixes for the diagnostics of the root file at `range`.
pub fn did_you_mean(a: &Analysis, uri: &Uri, range: Range) -> Vec<CodeActionOrCommand> {
    let mut out = vec![];
    for d in &a.checked.diags {
        let Some(label) = d.labels.iter().find(|l| l.primary && l.file == a.files.root) else { continue };
        let at = a.files.range(label.file, label.span);
        if !overlaps(at, range) {
            continue;
        }
        // The library's structured suggestions (`did you mean`), each an
        // edit with its own span; the help text is only their rendering.
        for s in d.suggestions.iter().filter(|s| s.file == a.files.root) {
            let edit = TextEdit { range: a.files.range(s.file, s.span), new_text: s.replacement.clone() };
            let diag = a.files.to_lsp(d, false).into_iter().next();
            out.push(fix(format!("Replace with `{}`", s.replacement), uri, vec![edit], diag));
        }
    }
    out
}

/// The span of whole lines around `span` when nothing else is on them
/// (so that dropping a clause leaves no blank line), else `span`.
fn whole_lines(text: &str, span: Span) -> Span {
    let (s, e) = (span.start as usize, span.end as usize);
    let ls = text[..s].rfind('\n').map_or(0, |i| i + 1);
    let le = text[e..].find('\n').map_or(text.len(), |i| e + i + 1);
    if text[ls..s].trim().is_empty() && text[e..le].trim().is_empty() {
        Span::new(ls, le)
    } else {
        span
    }
}

/// The edits of one repair, in the root file; `None` when the repair
/// touches another file (an import) or cannot be written as an edit.
fn repair_edits(a: &Analysis, program: &Program, r: &Repair) -> Option<(String, Vec<TextEdit>)> {
    let root = a.files.root;
    let text = a.text();
    let pf = a.root_ast()?;
    let edit = |span: Span, new_text: String| TextEdit { range: a.files.range(root, span), new_text };
    let drop_clause = |c: usize| -> Option<TextEdit> {
        let o = &program.clauses.get(c)?.origin;
        let loc = o.use_site.unwrap_or(o.loc);
        (loc.file == root).then(|| edit(whole_lines(text, loc.span), String::new()))
    };
    match r {
        Repair::DropClause(c) => {
            let e = drop_clause(*c)?;
            let o = &program.clauses[*c].origin;
            let what = if o.use_site.is_some() { "the `use`" } else { "the clause" };
            let line = e.range.start.line + 1;
            Some((format!("Drop {what} at line {line} (makes the goal satisfiable)"), vec![e]))
        }
        Repair::DropClauses(cs) => {
            let mut edits: Vec<TextEdit> = cs.iter().map(|&c| drop_clause(c)).collect::<Option<_>>()?;
            edits.dedup_by(|x, y| x.range == y.range);
            let lines: Vec<String> = edits.iter().map(|e| (e.range.start.line + 1).to_string()).collect();
            Some((format!("Drop the clauses at lines {} (makes the goal satisfiable)", lines.join(", ")), edits))
        }
        Repair::AddHosts { like, count } => {
            let h = program.hosts.get(*like)?;
            if h.loc.file != root {
                return None;
            }
            let decl = pf.ast.decls.iter().find(|d| match &d.kind {
                DeclKind::Host { name, .. } => name.span == h.loc.span,
                _ => false,
            })?;
            let decl_text = &text[decl.span.range()];
            let name_at = (h.loc.span.start - decl.span.start) as usize;
            let name_end = (h.loc.span.end - decl.span.start) as usize;
            let taken = |n: &str| program.hosts.iter().any(|x| x.name == n);
            let mut new = String::new();
            let mut k = 2;
            for _ in 0..*count {
                while taken(&format!("{}_{k}", h.name)) {
                    k += 1;
                }
                new.push_str(&format!("\n{}{}_{k}{}", &decl_text[..name_at], h.name, &decl_text[name_end..]));
                k += 1;
            }
            let at = Span::new(decl.span.end as usize, decl.span.end as usize);
            Some((
                format!("Add {count} more host(s) like `{}` (makes the goal satisfiable)", h.name),
                vec![edit(at, new)],
            ))
        }
        Repair::DeclareHosts(n) => {
            let mut new = String::new();
            for i in 1..=*n {
                new.push_str(&format!("host h{i} = host()\n"));
            }
            let end = Span::new(text.len(), text.len());
            let sep = if text.ends_with('\n') || text.is_empty() { "" } else { "\n" };
            Some((format!("Declare {n} host(s) (makes the goal satisfiable)"), vec![edit(end, format!("{sep}{new}"))]))
        }
        Repair::RaiseMaxInstances(c, n) => raise_attr(a, program, *c, "maxinstances", *n),
        Repair::RaiseMaxPerHost(c, n) => raise_attr(a, program, *c, "maxperhost", *n),
        Repair::RaiseCapacity(c, port, n) => {
            let comp = program.components.get(*c)?;
            let p = comp.ports.get(*port)?;
            if p.loc.file != root {
                return None;
            }
            // `p`, `p[]` or `p[4]`, then maybe `: output`: replace the arity.
            let from = p.loc.span.end as usize;
            let rest = &text[from..];
            let stop = rest.find([',', '}', ':']).unwrap_or(rest.len());
            let to = from + rest[..stop].rfind(']').map_or(0, |i| i + 1);
            let title = format!("Let `{}.{}` hold {n} channels (makes the goal satisfiable)", comp.name, p.name);
            Some((title, vec![edit(Span::new(from, to), format!("[{n}]"))]))
        }
    }
}

/// Sets `key = n` in a component's declaration (replacing or adding it).
fn raise_attr(a: &Analysis, program: &Program, comp: usize, key: &str, n: u32) -> Option<(String, Vec<TextEdit>)> {
    let c = program.components.get(comp)?;
    if c.loc.file != a.files.root {
        return None;
    }
    let pf = a.root_ast()?;
    let attrs = pf.ast.decls.iter().find_map(|d| match &d.kind {
        DeclKind::Component { name, attrs } if name.span == c.loc.span => Some(attrs),
        _ => None,
    })?;
    let range = |s: Span| a.files.range(a.files.root, s);
    let e = match attrs.entries.iter().find(|e| e.key.name == key) {
        Some(e) => TextEdit { range: range(e.value.span), new_text: n.to_string() },
        None => {
            let close = attrs.span.end.checked_sub(1)? as usize;
            let sep = if attrs.entries.is_empty() { "" } else { ", " };
            TextEdit { range: range(Span::new(close, close)), new_text: format!("{sep}{key} = {n}") }
        }
    };
    Some((format!("Set `{key} = {n}` on `{}` (makes the goal satisfiable)", c.name), vec![e]))
}

/// Fixes from the repairs of the last satisfiability check, offered on the
/// conflict's diagnostics.
pub fn repairs(
    a: &Analysis,
    uri: &Uri,
    program: &Program,
    repairs: &[Repair],
    diags: &[lsp_types::Diagnostic],
    range: Range,
) -> Vec<CodeActionOrCommand> {
    let Some(diag) = diags.iter().find(|d| overlaps(d.range, range)) else { return vec![] };
    repairs
        .iter()
        .filter_map(|r| repair_edits(a, program, r))
        .map(|(title, edits)| fix(title, uri, edits, Some(diag.clone())))
        .collect()
}

/// On save, for a goal with `upgrade` declarations and a deployment
/// `NAME.ddd.xml` beside `NAME.deladas`: the cluster check of `deladas
/// roles` (E0610 a changed port crosses the boundary, E0611, E0612). Nothing
/// when there is no such deployment or it does not fit the goal (`deladas
/// roles` says why).
pub fn roles_check(a: &Analysis, path: &std::path::Path) -> Vec<deladas::diagnostics::Diagnostic> {
    let program = &a.checked.program;
    if program.upgrades.is_empty() || a.checked.has_errors() {
        return vec![];
    }
    let ddd = path.with_extension("ddd.xml");
    if !ddd.is_file() {
        return vec![];
    }
    let Ok(text) = std::fs::read_to_string(&ddd) else { return vec![] };
    let Ok(deployment) = deladas::ddd::from_xml(&text) else { return vec![] };
    let Ok(world) = deladas::eval::bind(program, &deployment) else { return vec![] };
    match deladas::mdcd::assign(program, &world) {
        Ok(_) => vec![],
        Err(violations) => deladas::mdcd::roles::diagnostics(program, &world, &violations),
    }
}

/// The `upgrade` an E0610 help asks for: the component and its changed ports.
fn missing_upgrade(help: &str) -> Option<(&str, &str)> {
    let rest = help.strip_prefix("add `upgrade ")?;
    let (name, rest) = rest.split_once(" (…, changes = {")?;
    let (ports, _) = rest.split_once("})`")?;
    Some((name, ports))
}

/// "Add `upgrade Client(…)`" for the E0610 diagnostics of the last roles
/// check at `range`: the declaration the help gives, after the upgrade that
/// crosses the boundary, with the component's current `code` to be edited.
pub fn add_upgrade(
    a: &Analysis,
    uri: &Uri,
    roles: &[deladas::diagnostics::Diagnostic],
    range: Range,
) -> Vec<CodeActionOrCommand> {
    let mut out = vec![];
    let Some(pf) = a.root_ast() else { return out };
    for d in roles.iter().filter(|d| d.code == deladas::diagnostics::Code::ChangedPortCrossesBoundary) {
        let Some(label) = d.labels.iter().find(|l| l.primary && l.file == a.files.root) else { continue };
        if !overlaps(a.files.range(label.file, label.span), range) {
            continue;
        }
        let Some(decl) = pf.ast.decls.iter().find(|x| x.span.start <= label.span.start && label.span.end <= x.span.end)
        else {
            continue;
        };
        for (name, ports) in d
            .notes
            .iter()
            .filter(|n| n.kind == deladas::diagnostics::NoteKind::Help)
            .map(|n| n.text.as_str())
            .filter_map(missing_upgrade)
        {
            let Some(c) = a.checked.program.components.iter().find(|c| c.name == name) else { continue };
            let new_text = format!("\nupgrade {name}(code = {:?}, changes = {{{ports}}})", c.code);
            let at = Span::new(decl.span.end as usize, decl.span.end as usize);
            let edit = TextEdit { range: a.files.range(a.files.root, at), new_text };
            let diag = a.files.to_lsp(d, false).into_iter().next();
            out.push(fix(format!("Add `upgrade {name}` (changes = {{{ports}}})"), uri, vec![edit], diag));
        }
    }
    out
}
