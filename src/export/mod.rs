//! Renderings of a DDD for other systems that run it. Pure: a deployment and
//! options in, objects and text out; the command line writes the files.
//!
//! - [`kubernetes`]: Pods pinned to their nodes, the wiring in ConfigMaps,
//!   a Service per instance port and NetworkPolicies that allow exactly the
//!   DDD's channels (`deladas export DDD --to kubernetes`).
//! - [`yaml`]: the YAML writer the manifests are written with.

pub mod kubernetes;
pub mod yaml;
