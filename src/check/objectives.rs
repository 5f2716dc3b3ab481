//! Checking `minimize`/`maximize` and `prefer` declarations (issue 19).
//!
//! An objective is a closed integer term; a preference is a closed clause
//! with an optional weight, a positive integer literal. Both are in force
//! only in the file given on the command line (like a top-level `use`); in
//! an imported file they are checked but not in force.

use super::ir::*;
use super::Checker;
use crate::diagnostics::{Code, Diagnostic, FileId};
use crate::syntax::ast::{self, ExprKind};

impl<'a> Checker<'a> {
    pub(super) fn objective(&mut self, file: FileId, o: &ast::ObjectiveDecl, span: ast::Span, in_force: bool) {
        self.file = file;
        self.in_force = in_force;
        self.warn = true;
        self.soft = true;
        self.named.implicit.push(vec![]);
        let term = self.term(&o.term);
        let term = self.close_implicit_term(term);
        self.soft = false;
        self.in_force = false;
        let loc = Loc::new(file, span);
        match term.ty {
            Type::Int => {}
            Type::Unknown => return,
            other => {
                let found = self.type_name(other);
                self.diags.push(
                    Diagnostic::new(Code::ObjectiveNotInteger, format!("an objective must be an integer term, found {found}"))
                        .primary(file, o.term.span, format!("{found}, not an integer"))
                        .secondary(file, o.keyword, format!("`{}` needs a number", o.sense.word()))
                        .help("count or sum what matters, e.g. `minimize card(host h in deployment where card(instancesof Web in h) > 0)`"),
                );
                return;
            }
        }
        if term.is_constant() {
            self.diags.push(
                Diagnostic::new(Code::ConstantObjective, "this objective is the same in every configuration")
                    .primary(file, o.term.span, "constant")
                    .note("it cannot tell configurations apart, so it changes nothing"),
            );
        }
        if !in_force {
            return;
        }
        self.prog.objectives.push(Objective { sense: o.sense, term, loc });
    }

    pub(super) fn preference(&mut self, file: FileId, p: &ast::PreferDecl, _span: ast::Span, in_force: bool) {
        self.file = file;
        let weight = match &p.weight {
            None => Some(1),
            Some(w) => match &w.kind {
                ExprKind::Int(n) if *n > 0 => Some(*n),
                _ => {
                    let why = match &w.kind {
                        ExprKind::Int(_) => "zero is not a weight",
                        ExprKind::Neg(_) => "a negative number is not a weight",
                        _ => "not an integer literal",
                    };
                    self.diags.push(
                        Diagnostic::new(Code::BadWeight, "a preference's weight must be a positive integer literal")
                            .primary(file, w.span, why)
                            .help("write `prefer [3] CLAUSE`; without `[…]` the weight is 1")
                            .note("to make a preference not count, remove it; to make it a rule, put it in a constraintset"),
                    );
                    None
                }
            },
        };
        self.in_force = in_force;
        self.warn = true;
        self.soft = true;
        let formula = self.clause(&p.clause);
        self.soft = false;
        self.in_force = false;
        if !in_force {
            return;
        }
        let Some(weight) = weight else { return };
        if self.prog.preferences.is_empty() {
            self.prog.prefer_rank = self.prog.objectives.len();
        }
        self.prog.preferences.push(Preference { weight, formula, loc: Loc::new(file, p.clause.span) });
    }
}
