//! The declarations part of a DDD, from a checked goal: its hosts and
//! components. The one writer for the solver's output (`solve::output`) and
//! the evaluator's `World::to_deployment`, so the two cannot diverge
//! (`maxperhost` is written only when it is not the default 1, as ddd.md's
//! canonical form has it).

use super::{Attr, AttrValue, Component, Direction, Host, Port};
use crate::check::ir;

/// An attribute value of the goal as a DDD attribute.
pub fn attr(name: &str, v: &ir::Value) -> Attr {
    Attr {
        name: name.to_string(),
        value: match v {
            ir::Value::Int(n) => AttrValue::Int(*n),
            ir::Value::Str(s) => AttrValue::Str(s.clone()),
            ir::Value::Bool(b) => AttrValue::Bool(*b),
        },
    }
}

/// A host declaration as a DDD host.
pub fn host(h: &ir::Host) -> Host {
    Host { id: h.name.clone(), attrs: h.attrs.iter().map(|(k, v)| attr(k, v)).collect() }
}

/// A component declaration as a DDD component.
pub fn component(c: &ir::Component) -> Component {
    Component {
        name: c.name.clone(),
        code: c.code.clone(),
        maxperhost: (c.maxperhost != 1).then_some(c.maxperhost),
        maxinstances: c.maxinstances,
        attrs: c.attrs.iter().map(|(k, v)| attr(k, v)).collect(),
        ports: c
            .ports
            .iter()
            .map(|p| Port {
                name: p.name.clone(),
                variadic: p.variadic,
                max: if p.variadic { p.capacity } else { None },
                direction: match p.direction {
                    ir::Direction::Both => None,
                    ir::Direction::Input => Some(Direction::Input),
                    ir::Direction::Output => Some(Direction::Output),
                    ir::Direction::External => Some(Direction::External),
                },
            })
            .collect(),
    }
}
