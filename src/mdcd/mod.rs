//! MDCD guarded upgrades (mdcd.md): the role document that `deladas roles`
//! computes from a goal's `upgrade` declarations and a deployment, and that
//! the runtime protocol and the simulator consume without recomputation.
//!
//! Submodules: `model` (the role document, its JSON form and its checks),
//! `xml` (its XML form, `schema/roles.xsd`), `roles` (the computation: groups,
//! shadows, boundary, per-process needs, and the boundary and agreement
//! rules; pure, no I/O), `runtime` (the MDCD protocol of figures 2–4 as a
//! transport-independent library, one state machine per role) and `sim` (a
//! deterministic discrete-event simulator that runs a deployment and its role
//! document under the protocol and checks it against the old system).

pub mod model;
pub mod roles;
pub mod xml;

/// The MDCD runtime: the `mdcd-runtime` crate (std + serde only, so an
/// application embeds it without Z3), re-exported under its old path.
pub use mdcd_runtime as runtime;
pub use model::RoleDocument;
pub use roles::{assign, Violation};
pub mod sim;
