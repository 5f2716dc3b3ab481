//! MDCD guarded upgrades (mdcd.md): the role document that `deladas roles`
//! computes from a goal's `upgrade` declarations and a deployment, and that
//! the runtime protocol and the simulator consume without recomputation.

pub mod model;
