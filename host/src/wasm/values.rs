//! Conversion between Bolt values (neo4rs) and the WIT value trees guests see.

use neo4rs::{
    BoltBoolean, BoltBytes, BoltFloat, BoltInteger, BoltList, BoltMap, BoltNull, BoltString,
    BoltType,
};

use super::bindings::graphmig::migration::types::{GraphNode, GraphRelationship, Value, ValueNode};

/// Deepest nesting accepted from a guest; deeper trees are refused, not recursed.
pub const MAX_DEPTH: usize = 256;

/// Flattens a Bolt value into a WIT tree (root at node 0).
pub fn bolt_to_value(value: &BoltType) -> Value {
    let mut nodes = Vec::new();
    push(value, &mut nodes);
    Value { nodes }
}

fn push(value: &BoltType, nodes: &mut Vec<ValueNode>) -> u32 {
    let index = nodes.len();
    nodes.push(ValueNode::Null);
    let node = match value {
        BoltType::Null(_) => ValueNode::Null,
        BoltType::Boolean(b) => ValueNode::Boolean(b.value),
        BoltType::Integer(i) => ValueNode::Integer(i.value),
        BoltType::Float(f) => ValueNode::Float(f.value),
        BoltType::String(s) => ValueNode::Text(s.value.clone()),
        BoltType::Bytes(b) => ValueNode::Bytes(b.value.to_vec()),
        BoltType::List(l) => ValueNode::List(l.value.iter().map(|v| push(v, nodes)).collect()),
        BoltType::Map(m) => ValueNode::Map(push_map(m, nodes)),
        BoltType::Node(n) => ValueNode::GraphNode(GraphNode {
            id: n.id.value,
            labels: n
                .labels
                .value
                .iter()
                .map(|l| match l {
                    BoltType::String(s) => s.value.clone(),
                    other => format!("{other:?}"),
                })
                .collect(),
            properties: push_map(&n.properties, nodes),
        }),
        BoltType::Relation(r) => ValueNode::GraphRelationship(GraphRelationship {
            id: r.id.value,
            start: r.start_node_id.value,
            end: r.end_node_id.value,
            rel_type: r.typ.value.clone(),
            properties: push_map(&r.properties, nodes),
        }),
        BoltType::UnboundedRelation(r) => ValueNode::GraphRelationship(GraphRelationship {
            id: r.id.value,
            start: -1,
            end: -1,
            rel_type: r.typ.value.clone(),
            properties: push_map(&r.properties, nodes),
        }),
        other => ValueNode::Other(render_other(other)),
    };
    nodes[index] = node;
    // A tree with more than u32::MAX nodes cannot come from one Bolt message.
    u32::try_from(index).unwrap_or(u32::MAX)
}

fn push_map(map: &BoltMap, nodes: &mut Vec<ValueNode>) -> Vec<(String, u32)> {
    let mut entries: Vec<_> = map.value.iter().collect();
    // Bolt maps arrive unordered; a stable order makes guest output reproducible.
    entries.sort_by(|a, b| a.0.value.cmp(&b.0.value));
    entries
        .into_iter()
        .map(|(k, v)| (k.value.clone(), push(v, nodes)))
        .collect()
}

/// Temporal values, durations and points reach guests as text.
fn render_other(value: &BoltType) -> String {
    match value {
        BoltType::Point2D(p) => format!(
            "point({{srid: {}, x: {}, y: {}}})",
            p.sr_id.value, p.x.value, p.y.value
        ),
        BoltType::Point3D(p) => format!(
            "point({{srid: {}, x: {}, y: {}, z: {}}})",
            p.sr_id.value, p.x.value, p.y.value, p.z.value
        ),
        other => format!("{other:?}"),
    }
}

/// Why a guest's value tree was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The tree has no root node.
    #[error("empty value tree")]
    Empty,
    /// A node refers to an index outside the tree.
    #[error("value node {0} refers outside the tree")]
    Dangling(u32),
    /// The tree nests deeper than allowed (or has a cycle).
    #[error("value nests deeper than {MAX_DEPTH} levels (or refers to itself)")]
    TooDeep,
    /// Graph entities are results, not parameters.
    #[error("nodes and relationships cannot be sent as parameters; send their ids or properties")]
    EntityParameter,
}

/// As [`value_to_bolt`], consuming the tree: a lone string or byte array (the
/// usual field of a batch row) moves into the Bolt value instead of being copied.
pub fn value_into_bolt(mut value: Value) -> Result<BoltType, ValueError> {
    if value.nodes.len() == 1 {
        match value.nodes.pop() {
            Some(ValueNode::Text(s) | ValueNode::Other(s)) => {
                return Ok(BoltType::String(BoltString { value: s }));
            }
            Some(ValueNode::Bytes(b)) => return Ok(BoltType::Bytes(BoltBytes::new(b.into()))),
            Some(node) => value.nodes.push(node),
            None => {}
        }
    }
    value_to_bolt(&value)
}

/// Rebuilds a Bolt value from a guest's WIT tree, refusing malformed trees.
pub fn value_to_bolt(value: &Value) -> Result<BoltType, ValueError> {
    if value.nodes.is_empty() {
        return Err(ValueError::Empty);
    }
    read(&value.nodes, 0, 0)
}

fn read(nodes: &[ValueNode], index: u32, depth: usize) -> Result<BoltType, ValueError> {
    if depth > MAX_DEPTH {
        return Err(ValueError::TooDeep);
    }
    let node = nodes
        .get(index as usize)
        .ok_or(ValueError::Dangling(index))?;
    Ok(match node {
        ValueNode::Null => BoltType::Null(BoltNull),
        ValueNode::Boolean(b) => BoltType::Boolean(BoltBoolean::new(*b)),
        ValueNode::Integer(i) => BoltType::Integer(BoltInteger::new(*i)),
        ValueNode::Float(f) => BoltType::Float(BoltFloat::new(*f)),
        ValueNode::Text(s) | ValueNode::Other(s) => BoltType::String(BoltString::new(s)),
        ValueNode::Bytes(b) => BoltType::Bytes(BoltBytes::new(b.clone().into())),
        ValueNode::List(items) => {
            let mut list = BoltList::with_capacity(items.len());
            for item in items {
                list.push(read(nodes, *item, depth + 1)?);
            }
            BoltType::List(list)
        }
        ValueNode::Map(entries) => {
            let mut map = BoltMap::with_capacity(entries.len());
            for (key, item) in entries {
                map.put(BoltString::new(key), read(nodes, *item, depth + 1)?);
            }
            BoltType::Map(map)
        }
        ValueNode::GraphNode(_) | ValueNode::GraphRelationship(_) => {
            return Err(ValueError::EntityParameter);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested() -> BoltType {
        let mut inner = BoltMap::new();
        inner.put(
            BoltString::new("b"),
            BoltType::Bytes(BoltBytes::new(vec![1u8, 2].into())),
        );
        inner.put(BoltString::new("n"), BoltType::Null(BoltNull));
        let mut list = BoltList::new();
        list.push(BoltType::Integer(BoltInteger::new(-7)));
        list.push(BoltType::Float(BoltFloat::new(1.5)));
        list.push(BoltType::Map(inner));
        let mut outer = BoltMap::new();
        outer.put(BoltString::new("list"), BoltType::List(list));
        outer.put(
            BoltString::new("ok"),
            BoltType::Boolean(BoltBoolean::new(true)),
        );
        outer.put(BoltString::new("s"), BoltType::String(BoltString::new("ü")));
        BoltType::Map(outer)
    }

    #[test]
    fn nested_values_survive_a_round_trip() {
        let value = nested();
        assert_eq!(value_to_bolt(&bolt_to_value(&value)), Ok(value));
    }

    #[test]
    fn malformed_trees_are_refused_not_followed() {
        let cyclic = Value {
            nodes: vec![ValueNode::List(vec![0])],
        };
        assert_eq!(value_to_bolt(&cyclic), Err(ValueError::TooDeep));
        let dangling = Value {
            nodes: vec![ValueNode::List(vec![5])],
        };
        assert_eq!(value_to_bolt(&dangling), Err(ValueError::Dangling(5)));
        assert_eq!(
            value_to_bolt(&Value { nodes: vec![] }),
            Err(ValueError::Empty)
        );
    }
}
