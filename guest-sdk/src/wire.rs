//! Conversion between native [`Value`]s and the flattened value trees of the WIT world.

use crate::__private::bindings::graphmig::migration::types::{
    GraphErrorKind as WitErrorKind, GraphNode, GraphRelationship, Value as WitValue, ValueNode,
};
use crate::error::{GraphError, GraphErrorKind};
use crate::value::{Node, Relationship, Value};
use std::collections::BTreeMap;

/// Flattens a value into a WIT tree; the root is node 0.
pub(crate) fn to_wit(value: &Value) -> WitValue {
    let mut nodes = Vec::new();
    push(value, &mut nodes);
    WitValue { nodes }
}

/// As [`to_wit`], moving the value: a row's strings are handed on, not copied.
pub(crate) fn into_wit(value: Value) -> WitValue {
    let node = match value {
        Value::Null => ValueNode::Null,
        Value::Bool(b) => ValueNode::Boolean(b),
        Value::Int(i) => ValueNode::Integer(i),
        Value::Float(f) => ValueNode::Float(f),
        Value::String(s) => ValueNode::Text(s),
        Value::Bytes(b) => ValueNode::Bytes(b),
        Value::Other(s) => ValueNode::Other(s),
        nested => return to_wit(&nested),
    };
    WitValue { nodes: vec![node] }
}

fn push(value: &Value, nodes: &mut Vec<ValueNode>) -> u32 {
    let index = nodes.len();
    nodes.push(ValueNode::Null);
    let node = match value {
        Value::Null => ValueNode::Null,
        Value::Bool(b) => ValueNode::Boolean(*b),
        Value::Int(i) => ValueNode::Integer(*i),
        Value::Float(f) => ValueNode::Float(*f),
        Value::String(s) => ValueNode::Text(s.clone()),
        Value::Bytes(b) => ValueNode::Bytes(b.clone()),
        Value::Other(s) => ValueNode::Other(s.clone()),
        Value::List(items) => ValueNode::List(items.iter().map(|v| push(v, nodes)).collect()),
        Value::Map(entries) => ValueNode::Map(push_entries(entries, nodes)),
        Value::Node(n) => ValueNode::GraphNode(GraphNode {
            id: n.id,
            labels: n.labels.clone(),
            properties: push_entries(&n.properties, nodes),
        }),
        Value::Relationship(r) => ValueNode::GraphRelationship(GraphRelationship {
            id: r.id,
            start: r.start,
            end: r.end,
            rel_type: r.rel_type.clone(),
            properties: push_entries(&r.properties, nodes),
        }),
    };
    nodes[index] = node;
    u32::try_from(index).expect("a value tree fits in u32 indices")
}

fn push_entries(
    entries: &BTreeMap<String, Value>,
    nodes: &mut Vec<ValueNode>,
) -> Vec<(String, u32)> {
    entries
        .iter()
        .map(|(k, v)| (k.clone(), push(v, nodes)))
        .collect()
}

/// Rebuilds a native value from a WIT tree the host sent.
pub(crate) fn from_wit(value: &WitValue) -> Value {
    read(&value.nodes, 0, 0)
}

// The host builds trees without cycles, but a bound keeps a malformed one from
// recursing forever.
const MAX_DEPTH: usize = 1024;

fn read(nodes: &[ValueNode], index: u32, depth: usize) -> Value {
    let Some(node) = nodes.get(index as usize) else {
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let entries = |props: &[(String, u32)]| {
        props
            .iter()
            .map(|(k, i)| (k.clone(), read(nodes, *i, depth + 1)))
            .collect::<BTreeMap<_, _>>()
    };
    match node {
        ValueNode::Null => Value::Null,
        ValueNode::Boolean(b) => Value::Bool(*b),
        ValueNode::Integer(i) => Value::Int(*i),
        ValueNode::Float(f) => Value::Float(*f),
        ValueNode::Text(s) => Value::String(s.clone()),
        ValueNode::Bytes(b) => Value::Bytes(b.clone()),
        ValueNode::Other(s) => Value::Other(s.clone()),
        ValueNode::List(items) => {
            Value::List(items.iter().map(|i| read(nodes, *i, depth + 1)).collect())
        }
        ValueNode::Map(props) => Value::Map(entries(props)),
        ValueNode::GraphNode(n) => Value::Node(Node {
            id: n.id,
            labels: n.labels.clone(),
            properties: entries(&n.properties),
        }),
        ValueNode::GraphRelationship(r) => Value::Relationship(Relationship {
            id: r.id,
            start: r.start,
            end: r.end,
            rel_type: r.rel_type.clone(),
            properties: entries(&r.properties),
        }),
    }
}

pub(crate) fn graph_error(
    e: crate::__private::bindings::graphmig::migration::types::GraphError,
) -> GraphError {
    GraphError {
        kind: match e.kind {
            WitErrorKind::Syntax => GraphErrorKind::Syntax,
            WitErrorKind::ConstraintViolation => GraphErrorKind::ConstraintViolation,
            WitErrorKind::Transient => GraphErrorKind::Transient,
            WitErrorKind::Forbidden => GraphErrorKind::Forbidden,
            WitErrorKind::Other => GraphErrorKind::Other,
        },
        code: e.code,
        message: e.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_flatten_and_rebuild() {
        let mut inner = BTreeMap::new();
        inner.insert(
            "k".to_string(),
            Value::List(vec![Value::Bytes(vec![1, 2]), Value::Null]),
        );
        let value = Value::List(vec![
            Value::Int(1),
            Value::Map(inner),
            Value::String("s".into()),
        ]);
        let wit = to_wit(&value);
        assert!(matches!(wit.nodes[0], ValueNode::List(_)), "root is node 0");
        assert_eq!(from_wit(&wit), value);
    }
}
