//! The Deployment Description Document (DDD), format 1 (`spec/ddd.md`): the
//! compiler's output and the input of re-solving, verification, role
//! assignment and enactment.
//!
//! This module owns the DDD data model ([`Deployment`] and its parts), the
//! canonical ordering ([`Deployment::canonicalize`]), the writers
//! ([`to_xml`], [`to_json`], [`to_dot`]) and the checking reader
//! ([`from_xml`]). The XML Schema for what [`to_xml`] writes is
//! `schema/ddd.xsd`.
//!
//! Submodules: `model` (types, canonical order), `write` (XML and JSON),
//! `dot` (Graphviz), `xml` (well-formed XML to an element tree with spans),
//! `read` (element tree to [`Deployment`], checking the format's structure),
//! `check` (the configuration rules: references, ports, indices, directions,
//! identity).

mod check;
mod dot;
pub mod goal;
mod model;
mod read;
mod write;
pub(crate) mod xml;

pub use dot::to_dot;
pub use model::{
    instance_id, instance_suffix, Attr, AttrValue, Channel, Component, Deployment, Direction, End, Host, Instance, Port,
};
pub use read::{from_xml, from_xml_located, Locations};
pub use write::{to_json, to_xml};

use std::fmt;
use std::ops::Range;

/// The XML namespace of DDD format 1.
pub const NAMESPACE: &str = "urn:deladas:ddd:1";

/// The value of the root element's `format` attribute this module reads and
/// writes.
pub const FORMAT: &str = "1";

/// A problem found while reading a DDD: what is wrong, naming the element,
/// and where.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DddError {
    /// What is wrong, naming the element (e.g. `<instance id="Client@h9">:
    /// host "h9" is not declared in <hosts>`). Does not repeat the line.
    pub message: String,
    /// The byte range in the text of the offending element's start tag or
    /// attribute.
    pub span: Range<usize>,
    /// The 1-based line of `span.start`.
    pub line: usize,
}

impl DddError {
    /// The E0704 diagnostic, pointing into the DDD (`file` in the sources).
    pub fn to_diagnostic(&self, file: crate::diagnostics::FileId) -> crate::diagnostics::Diagnostic {
        use crate::diagnostics::{Code, Diagnostic, Span};
        Diagnostic::new(Code::MalformedDdd, self.message.clone()).primary(
            file,
            Span::new(self.span.start, self.span.end),
            "here",
        )
    }
    /// An error at `span` of `text`, computing its line.
    pub(crate) fn new(text: &str, span: Range<usize>, message: String) -> DddError {
        let start = span.start.min(text.len());
        let line = 1 + text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count();
        DddError { message, span, line }
    }
}

impl fmt::Display for DddError {
    /// `line N: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DddError {}
