//! Reading a DDD for a goal: the one place every command that takes a DDD
//! (`verify`, `resolve`, `whatif`, `roles`, `simulate`) gets it from, so they
//! all apply the same rules and every problem points at the DDD's line.
//!
//! In order: the file is read with the input limits of
//! [`crate::check::load::read_input`] (E0011, E0009); it must be UTF-8 and a
//! well-formed DDD (E0704, from [`crate::ddd::from_xml_located`]); it must
//! match the goal (E0703, from [`super::bind_placed`]); and it must obey the
//! goal's bounds that the DDD cannot state on its own (E0702): a component
//! whose DDD declaration leaves `maxperhost` out allows one instance per host,
//! as in the goal.

use std::path::Path;

use crate::check::ir::Program;
use crate::ddd::{Deployment, Locations};
use crate::diagnostics::{Code, Diagnostic, FileId, Sources};
use crate::syntax::ast::Span;

use super::{bind_placed, DddPlace, Rule, ViolationKind, World};

/// Reads the DDD at `path` (added to `sources` under its path) and binds it
/// to `program`. On any problem, every diagnostic found, each pointing into
/// the DDD where it can.
pub fn read_deployment(
    program: &Program,
    sources: &mut Sources,
    path: &Path,
) -> Result<(Deployment, World), Vec<Diagnostic>> {
    let shown = path.display().to_string();
    let text = match crate::check::load::read_input(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return Err(vec![Diagnostic::new(Code::MalformedDdd, format!("`{shown}` is not UTF-8 text"))]),
        },
        Err(e) => return Err(vec![Diagnostic::new(e.code(), format!("cannot read `{shown}`: {e}"))]),
    };
    deployment_from_text(program, sources, shown, text)
}

/// [`read_deployment`] on a DDD's text, shown as `name` in diagnostics.
pub fn deployment_from_text(
    program: &Program,
    sources: &mut Sources,
    name: String,
    text: String,
) -> Result<(Deployment, World), Vec<Diagnostic>> {
    let file = sources.add(name.clone(), text);
    let text = sources.text(file);
    let (deployment, at) = match crate::ddd::from_xml_located(text) {
        Ok(x) => x,
        Err(errs) => {
            return Err(errs
                .iter()
                .map(|e| {
                    Diagnostic::new(Code::MalformedDdd, e.message.clone()).primary(
                        file,
                        Span::new(e.span.start, e.span.end),
                        "here",
                    )
                })
                .collect())
        }
    };
    let world = match bind_placed(program, &deployment) {
        Ok(w) => w,
        Err(errs) => {
            return Err(errs
                .into_iter()
                .map(|(place, m)| {
                    let (span, label) = place_span(&at, place);
                    Diagnostic::new(Code::DddMismatch, m)
                        .primary(file, span, label)
                        .note(format!("`{name}` was not written for this goal, or the goal changed since"))
                })
                .collect())
        }
    };
    let diags = goal_bounds(program, &world, &at, file);
    if diags.is_empty() {
        Ok((deployment, world))
    } else {
        Err(diags)
    }
}

fn place_span(at: &Locations, place: DddPlace) -> (Span, &'static str) {
    let (spans, label) = match place {
        DddPlace::Host(i) => (at.hosts.get(i), "this host"),
        DddPlace::Component(i) => (at.components.get(i), "this component"),
        DddPlace::Instance(i) => (at.instances.get(i), "this instance"),
        DddPlace::Channel(i) => (at.channels.get(i), "this channel"),
    };
    let r = spans.unwrap_or(&at.root);
    (Span::new(r.start, r.end), label)
}

/// The goal's `maxperhost` on a bound world (whose instances are the DDD's,
/// in its order): the first instance past the bound on each host is the
/// error, with the component's declaration in the goal beside it. Any other
/// structural rule broken (which the DDD reader normally catches first) is
/// reported as the evaluator words it.
fn goal_bounds(program: &Program, world: &World, at: &Locations, file: FileId) -> Vec<Diagnostic> {
    let mut out = vec![];
    let mut on_host: std::collections::HashMap<(usize, usize), Vec<usize>> = Default::default();
    for (i, inst) in world.instances.iter().enumerate() {
        on_host.entry((inst.comp, inst.host)).or_default().push(i);
    }
    let mut groups: Vec<_> = on_host.into_iter().collect();
    groups.sort_by_key(|(_, v)| v.first().copied());
    for ((comp, host), insts) in groups {
        let (Some(c), Some(h)) = (program.components.get(comp), program.hosts.get(host)) else { continue };
        let max = c.maxperhost as usize;
        if insts.len() <= max {
            continue;
        }
        let extra = insts[max];
        let (span, _) = place_span(at, DddPlace::Instance(extra));
        let names: Vec<String> = insts.iter().map(|&i| format!("`{}`", world.instances[i].id)).collect();
        out.push(
            Diagnostic::new(Code::StructuralViolation, Rule::MaxPerHost.message())
                .primary(file, span, format!("instance {} of {} on host {}", max + 1, c.name, h.name))
                .secondary(c.loc.file, c.loc.span, format!("{} allows at most {max} per host", c.name))
                .note(format!("host {} runs {} instances of {}: {}", h.name, insts.len(), c.name, names.join(", ")))
                .help("remove the extra instances, or raise `maxperhost` in the goal and solve again"),
        );
    }
    if out.is_empty() {
        for v in super::structural_violations(program, world) {
            if !matches!(v.kind, ViolationKind::Structural(Rule::MaxPerHost)) {
                out.push(v.to_diagnostic().note("in the DDD as given"));
            }
        }
    }
    out
}
