//! The independent evaluator: is a configuration a solution of a goal, and
//! if not, why not?
//!
//! `verify` and the tests use it to cross-check the solver: it shares no
//! code with `lower`/`solve`, and evaluates every clause directly on a
//! configuration by the meaning of `language.md` §4 and §6.
//!
//! - [`bind`] binds a DDD ([`crate::ddd::Deployment`]) to a checked goal's
//!   indices, giving a [`World`]; every mismatch between them is an error.
//! - [`structural_violations`] checks the rules every configuration obeys
//!   (§6: available hosts, different instances, port capacities, directions,
//!   `maxperhost`, `maxinstances`).
//! - [`violations`] evaluates every clause in force and explains each false
//!   one with a grounded witness ("for Router r = Router@h3: Router@h3 is
//!   connected to 3 Clients (…); the clause allows at most 2").
//! - [`superfluous`] finds the parts whose removal leaves a solution (§6
//!   "Parsimony").
//! - [`brute::enumerate`] enumerates every configuration of a tiny goal: the
//!   oracle for "unsatisfiable".
//!
//! Submodules: `world` (the bound configuration), `ctx` (indexes and the
//! evaluation of formulas and terms), `explain` (witnesses), `print` (IR
//! back to Deladas text), `structural` (the §6 rules), `brute`.

pub mod brute;
mod ctx;
mod explain;
mod input;
pub mod objective;
mod print;
mod structural;
mod world;

pub use input::{deployment_from_text, read_deployment};
pub use world::{bind, bind_placed, Chan, ChanEnd, DddPlace, Inst, Part, World};

/// [`bind`], its errors as E0703 diagnostics: `what` names the deployment
/// in the note (`` `old.ddd.xml` ``, or `the deployment`).
pub fn bind_diagnosed(program: &Program, d: &crate::ddd::Deployment, what: &str) -> Result<World, Vec<Diagnostic>> {
    bind(program, d).map_err(|errs| {
        errs.into_iter()
            .map(|m| {
                Diagnostic::new(Code::DddMismatch, m)
                    .note(format!("{what} was not written for this goal, or the goal changed since"))
            })
            .collect()
    })
}

use std::fmt;

use crate::check::ir::{Formula, FormulaKind, Loc, Origin, Program};
use crate::diagnostics::{Code, Diagnostic};

use ctx::{Ctx, EvalError};
use explain::Explainer;

/// What a [`Violation`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// A clause in force is false.
    Clause,
    /// A rule every configuration obeys is broken.
    Structural(Rule),
    /// The evaluator could not evaluate a clause (a construct that never
    /// occurs in a goal that checked without errors, or integer overflow).
    Internal,
    /// The DDD does not match the goal (a [`bind`] error, see
    /// [`Violation::mismatch`]).
    Mismatch,
}

/// The structural rules of `language.md` §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// Each instance is placed on an available host.
    UnavailableHost,
    /// Each channel joins two different instances.
    SelfChannel,
    /// A non-variadic port holds at most one channel, `p[N]` at most N.
    PortCapacity,
    /// At most one channel between the same two instance ports.
    DuplicateChannel,
    /// No channel attaches to an `external` port.
    ExternalPort,
    /// No channel joins two input or two output ports.
    IncompatibleDirections,
    /// A channel is directed exactly when both ports declare directions,
    /// and then runs from the output end (`ddd.md`).
    DirectionFlag,
    /// At most `maxperhost` instances of a component on one host.
    MaxPerHost,
    /// At most `maxinstances` instances of a component in all.
    MaxInstances,
}

impl Rule {
    /// The rule in one line, used as the violation's message.
    pub fn message(self) -> &'static str {
        match self {
            Rule::UnavailableHost => "instance placed on a host that is not available",
            Rule::SelfChannel => "channel joins an instance to itself",
            Rule::PortCapacity => "port holds more channels than it allows",
            Rule::DuplicateChannel => "two channels join the same two instance ports",
            Rule::ExternalPort => "channel attached to an external port",
            Rule::IncompatibleDirections => "channel between ports of incompatible directions",
            Rule::DirectionFlag => "channel direction does not match its ports",
            Rule::MaxPerHost => "more instances on a host than `maxperhost` allows",
            Rule::MaxInstances => "more instances than `maxinstances` allows",
        }
    }
}

/// One step of a witness: a sentence about the configuration, and the part
/// of the goal it is about (a quantifier, an atom, a port declaration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub loc: Option<Loc>,
    pub text: String,
}

/// A clause or rule the configuration breaks, with a grounded witness.
#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: ViolationKind,
    /// The clause (for [`ViolationKind::Clause`] and clause-level
    /// [`ViolationKind::Internal`]); `None` for structural rules.
    pub origin: Option<Origin>,
    /// One line: what is broken.
    pub message: String,
    /// Why, from the outermost binding to the false atom: `for Router r =
    /// Router@h3`, `Router@h3 is connected to 3 Clients (…); the clause
    /// allows at most 2`.
    pub witness: Vec<Step>,
}

impl Violation {
    fn clause(origin: &Origin, witness: Vec<Step>) -> Violation {
        Violation {
            kind: ViolationKind::Clause,
            origin: Some(origin.clone()),
            message: format!("a clause of constraintset `{}` does not hold", origin.constraintset),
            witness,
        }
    }

    fn internal(origin: Option<&Origin>, e: EvalError) -> Violation {
        Violation {
            kind: ViolationKind::Internal,
            origin: origin.cloned(),
            message: format!("internal error: cannot evaluate the goal: {e}"),
            witness: vec![],
        }
    }

    /// A [`bind`] error as a violation, to report it like the others.
    pub fn mismatch(message: impl Into<String>) -> Violation {
        Violation { kind: ViolationKind::Mismatch, origin: None, message: message.into(), witness: vec![] }
    }

    /// The witness in one line, steps joined by `: `.
    pub fn witness_text(&self) -> String {
        self.witness.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(": ")
    }

    /// The violation as a diagnostic: the clause as the primary label (the
    /// `use` that brought it into force as a secondary one), the false atom
    /// labelled with the last step of the witness, every step as a note.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let mut d = Diagnostic::new(code_for(self.kind), self.message.clone());
        // The step shown as a label is not repeated as a note.
        let mut labelled = None;
        match &self.origin {
            Some(o) => {
                let what = match self.kind {
                    ViolationKind::Internal => "while evaluating this clause",
                    _ => "this clause is false in the configuration",
                };
                d = d.primary(o.loc.file, o.loc.span, what);
                if let Some(u) = o.use_site {
                    d = d.secondary(u.file, u.span, "brought into force by this `use`");
                }
                // The false atom: the last step, when it has a place of its own.
                if let Some(s) = self.witness.last() {
                    if let Some(loc) = s.loc.filter(|l| *l != o.loc) {
                        d = d.secondary(loc.file, loc.span, s.text.clone());
                        labelled = Some(self.witness.len() - 1);
                    }
                }
            }
            None => {
                if let Some((k, loc, s)) = self.witness.iter().enumerate().find_map(|(k, s)| s.loc.map(|l| (k, l, s))) {
                    d = d.primary(loc.file, loc.span, s.text.clone());
                    labelled = Some(k);
                }
            }
        }
        for (k, s) in self.witness.iter().enumerate() {
            if labelled != Some(k) {
                d = d.note(&s.text);
            }
        }
        d
    }
}

impl fmt::Display for Violation {
    /// `message: witness`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.witness.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.message, self.witness_text())
        }
    }
}

// Codes the lead adds to `diagnostics/codes.rs` (section "verification"):
//
//     ViolatedClause = "E0701", Error, "violated clause";
//     StructuralRule = "E0702", Error, "structural rule broken";
//     DddMismatch    = "E0703", Error, "DDD does not match the goal";
//
// Until then `code_for` answers with a placeholder; switch it here, in one
// place. (Bind errors are plain strings; `Violation::mismatch` turns one into
// a violation of kind `Mismatch`, whose diagnostic gets `DddMismatch`.)

/// The diagnostic code of a violation.
// TODO(lead): return Code::ViolatedClause / Code::StructuralRule once added
// to codes.rs; Internal could stay a clause code or get its own.
fn code_for(kind: ViolationKind) -> Code {
    match kind {
        ViolationKind::Clause => Code::ViolatedClause,
        ViolationKind::Internal => Code::Internal,
        ViolationKind::Structural(_) => Code::StructuralViolation,
        ViolationKind::Mismatch => Code::DddMismatch,
    }
}

/// Every structural rule of `language.md` §6 that `world` breaks.
pub fn structural_violations(program: &Program, world: &World) -> Vec<Violation> {
    match Ctx::new(program, world) {
        Ok(ctx) => structural::check(&ctx),
        Err(e) => vec![Violation::internal(None, e)],
    }
}

/// Every clause in force that is false in `world`, in the order of
/// `program.clauses`, each with a witness. A clause that is a conjunction at
/// its top (`(a) and (b)`, or a `use` written as a clause) gives one
/// violation per false conjunct, all with the clause's origin. A clause that
/// cannot be evaluated gives a [`ViolationKind::Internal`] violation.
pub fn violations(program: &Program, world: &World) -> Vec<Violation> {
    let ctx = match Ctx::new(program, world) {
        Ok(ctx) => ctx,
        Err(e) => return vec![Violation::internal(None, e)],
    };
    let ex = Explainer::new(&ctx);
    let mut out = Vec::new();
    for clause in &program.clauses {
        let mut env = vec![None; program.vars.len()];
        let mut conjuncts = Vec::new();
        top_conjuncts(&clause.formula, &mut conjuncts);
        for f in conjuncts {
            match ctx.holds(f, &mut env) {
                Ok(true) => {}
                Ok(false) => match ex.why_false(f, &mut env) {
                    Ok(w) => out.push(Violation::clause(&clause.origin, w)),
                    Err(e) => out.push(Violation::internal(Some(&clause.origin), e)),
                },
                Err(e) => {
                    out.push(Violation::internal(Some(&clause.origin), e));
                    break;
                }
            }
        }
    }
    out
}

/// The conjuncts of a clause's top-level `and`s (a `use` written as a
/// clause is the conjunction of the pattern's clauses): each false one is a
/// violation of its own.
fn top_conjuncts<'f>(f: &'f Formula, out: &mut Vec<&'f Formula>) {
    match &f.kind {
        FormulaKind::And(v) if !v.is_empty() => v.iter().for_each(|g| top_conjuncts(g, out)),
        _ => out.push(f),
    }
}

/// Everything wrong with `world`: the structural violations, then the
/// clause violations.
pub fn all_violations(program: &Program, world: &World) -> Vec<Violation> {
    let mut out = structural_violations(program, world);
    out.extend(violations(program, world));
    out
}

/// Whether `world` obeys every structural rule and makes every clause true
/// (no witnesses are built; an evaluation error counts as "no").
pub fn is_solution(program: &Program, world: &World) -> bool {
    let Ok(ctx) = Ctx::new(program, world) else { return false };
    if !structural::check(&ctx).is_empty() {
        return false;
    }
    program.clauses.iter().all(|c| {
        let mut env = vec![None; program.vars.len()];
        matches!(ctx.holds(&c.formula, &mut env), Ok(true))
    })
}

/// The superfluous parts of `world` (`language.md` §6 "Parsimony"): every
/// channel, and every instance together with its channels, whose removal
/// leaves every clause and structural rule satisfied. Channels first, then
/// instances, each in world order. A parsimonious solution has none.
///
/// With objectives or preferences (issue 19), a removal must also make no
/// level worse: a part that an objective or a kept preference needs is not
/// superfluous.
pub fn superfluous(program: &Program, world: &World) -> Vec<Part> {
    let channels = (0..world.channels.len()).map(Part::Channel);
    let instances = (0..world.instances.len()).map(Part::Instance);
    let before = if program.optimises() { objective::levels(program, world) } else { None };
    channels
        .chain(instances)
        .filter(|&p| {
            let w = world.without(p);
            is_solution(program, &w)
                && before.as_ref().is_none_or(|b| {
                    objective::levels(program, &w).is_some_and(|a| a.iter().zip(b).all(|(x, y)| x <= y))
                })
        })
        .collect()
}
