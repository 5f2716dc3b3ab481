//! `deladas roles FILE --deployment DDD [-o OUT] [--format xml|json]`: the
//! MDCD cluster and role assignment (mdcd.md §1) for the goal's `upgrade`
//! declarations on a deployment. Loading and binding the DDD is shared with
//! `verify`; the computation is `deladas::mdcd::roles`, the writers are the
//! role document's.

use std::path::Path;

use clap::ValueEnum;

use super::{emit, load_checked, load_deployment, write_out, DiagFormat, EXIT_NO, EXIT_OK};

/// How the role document is written.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(super) enum RoleFormat {
    /// XML, namespace `urn:deladas:mdcd:1` (`schema/roles.xsd`).
    Xml,
    /// The same content as JSON (the shape of mdcd.md §1).
    Json,
    /// A picture (SVG): G_low, shadows and G_act instances on their hosts, boundary channels highlighted.
    Svg,
}

/// Exit 0 with the document written; 1 when the upgrades break the boundary
/// or agreement rule or an `otherhost` shadow has no host (every violation
/// reported, nothing written); 2 for a bad goal or DDD. Diagnostics are text
/// on stderr, or with `--format json` a JSON array on stdout (cli.md).
pub(super) fn cmd_roles(
    file: &Path,
    ddd: &Path,
    output: Option<&Path>,
    format: RoleFormat,
    group_by: Option<String>,
) -> i32 {
    let diag_format = match format {
        RoleFormat::Xml | RoleFormat::Svg => DiagFormat::Text,
        RoleFormat::Json => DiagFormat::Json,
    };
    let (mut sources, checked) = match load_checked(file, diag_format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let program = &checked.program;
    let (deployment, world) = match load_deployment(program, &mut sources, ddd, diag_format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let doc = match deladas::mdcd::assign(program, &world) {
        Ok(doc) => doc,
        Err(violations) => {
            let diags = deladas::mdcd::roles::diagnostics(program, &world, &violations);
            emit(&diags, &sources, diag_format);
            let internal = violations.iter().any(|v| matches!(v, deladas::mdcd::Violation::Internal(_)));
            return if internal { 101 } else { EXIT_NO };
        }
    };
    let text = match format {
        RoleFormat::Xml => doc.to_xml(),
        RoleFormat::Json => doc.to_json(),
        RoleFormat::Svg => deladas::picture::roles_svg(&deployment, &doc, &deladas::picture::Options { group_by }),
    };
    if let Err(code) = write_out(output, &text) {
        return code;
    }
    if diag_format == DiagFormat::Text {
        let g = &doc.groups;
        eprintln!(
            "roles: {} low, {} shadow, {} active; {} channel{} cross the cluster boundary",
            g.low.len(),
            g.shadow.len(),
            g.active.len(),
            doc.boundary.len(),
            if doc.boundary.len() == 1 { "" } else { "s" }
        );
        for u in &program.upgrades {
            if !world.instances.iter().any(|i| i.comp == u.component) {
                let name = program.components.get(u.component).map_or("?", |c| c.name.as_str());
                eprintln!("note: `{name}` is upgraded but has no instance in `{}`", ddd.display());
            }
        }
    }
    EXIT_OK
}
