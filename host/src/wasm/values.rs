//! Conversion between Bolt values (neo4rs) and the WIT value trees guests see.

use neo4rs::{
    BoltBoolean, BoltBytes, BoltFloat, BoltInteger, BoltList, BoltMap, BoltNull, BoltString,
    BoltType,
};

use super::bindings::graphmig::migration::types::{GraphNode, GraphRelationship, Value, ValueNode};

/// Describes parameters without their values (which may be personal data):
/// `name: string(12), rows: list(1000)`.
pub(crate) fn summarize_params(params: &[(String, Value)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}: {}", shape(value)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn shape(value: &Value) -> String {
    match value.nodes.first() {
        None => "empty".into(),
        Some(ValueNode::Null) => "null".into(),
        Some(ValueNode::Boolean(_)) => "boolean".into(),
        Some(ValueNode::Integer(_)) => "integer".into(),
        Some(ValueNode::Float(_)) => "float".into(),
        Some(ValueNode::Text(s)) => format!("string({})", s.chars().count()),
        Some(ValueNode::Bytes(b)) => format!("bytes({})", b.len()),
        Some(ValueNode::List(items)) => format!("list({})", items.len()),
        Some(ValueNode::Map(entries)) => format!("map({})", entries.len()),
        Some(ValueNode::GraphNode(_)) => "node".into(),
        Some(ValueNode::GraphRelationship(_)) => "relationship".into(),
        Some(ValueNode::Other(_)) => "other".into(),
    }
}

/// Deepest nesting accepted from a guest; deeper trees are refused, not recursed.
pub const MAX_DEPTH: usize = 256;

/// What one heap allocation costs beyond its bytes (the allocator's header
/// and rounding), so that many small values are not undercounted.
pub const ALLOCATION_COST: usize = 32;

/// Flattens a Bolt value into a WIT tree (root at node 0).
pub fn bolt_to_value(value: &BoltType) -> Value {
    // Most values are one scalar: a vector of one, not of the four a first
    // push reserves (results are held, and weighed, in their thousands).
    let mut nodes = Vec::with_capacity(1);
    push(value, &mut nodes);
    nodes.shrink_to_fit();
    Value { nodes }
}

/// The bytes the WIT tree of `value` will hold in host memory, reckoned from
/// the Bolt value before anything is built: a node per value, the text and
/// bytes it owns, the entries of its lists and maps, and an
/// [`ALLOCATION_COST`] for each allocation. The result limits count this, so
/// `result-mib` bounds what the host really keeps, and a value past the budget
/// is never converted.
pub fn held_bytes(value: &BoltType) -> u64 {
    use std::mem::size_of;
    let owned = |len: usize| if len == 0 { 0 } else { len + ALLOCATION_COST };
    let entry = size_of::<(String, u32)>();
    let map_entries = |map: &BoltMap| {
        owned(map.value.len() * entry)
            + map
                .value
                .keys()
                .map(|k| owned(k.value.len()))
                .sum::<usize>()
    };
    let mut held = ALLOCATION_COST;
    // An explicit stack: results nest as deep as the statement makes them.
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        held += size_of::<ValueNode>();
        held += match value {
            BoltType::String(s) => owned(s.value.len()),
            BoltType::Bytes(b) => owned(b.value.len()),
            BoltType::List(l) => {
                stack.extend(l.value.iter());
                owned(l.value.len() * size_of::<u32>())
            }
            BoltType::Map(m) => {
                stack.extend(m.value.values());
                map_entries(m)
            }
            BoltType::Node(n) => {
                stack.extend(n.properties.value.values());
                owned(n.labels.value.len() * size_of::<String>())
                    + n.labels
                        .value
                        .iter()
                        .map(|l| match l {
                            BoltType::String(s) => owned(s.value.len()),
                            _ => owned(64),
                        })
                        .sum::<usize>()
                    + map_entries(&n.properties)
            }
            BoltType::Relation(r) => {
                stack.extend(r.properties.value.values());
                owned(r.typ.value.len()) + map_entries(&r.properties)
            }
            BoltType::UnboundedRelation(r) => {
                stack.extend(r.properties.value.values());
                owned(r.typ.value.len()) + map_entries(&r.properties)
            }
            BoltType::Null(_)
            | BoltType::Boolean(_)
            | BoltType::Integer(_)
            | BoltType::Float(_) => 0,
            // Rendered as text: a point or a temporal value is short.
            _ => owned(96),
        };
    }
    held as u64
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
    /// A node is referred to twice (or the root is referred to): the nodes form
    /// a graph, not a tree, and would unfold into far more values than were sent.
    #[error("value node {0} is referred to more than once: a value must be a tree")]
    Shared(u32),
    /// Nodes that the root does not reach (a detached cycle, or padding).
    #[error("{0} value node(s) are not reached from the root: a value must be one tree")]
    Unreached(usize),
}

/// What a checked tree holds: its node count and the bytes of its strings,
/// byte arrays and map keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeSize {
    /// Nodes.
    pub nodes: usize,
    /// Bytes of text, byte arrays and keys.
    pub bytes: usize,
}

/// Checks, in one linear pass and without recursion, that `value` is a tree:
/// every reference inside it, each node referred to at most once, the root never,
/// every node reached from the root, at most [`MAX_DEPTH`] levels. Nothing is
/// built before this holds, so a guest cannot make the host unfold a small
/// shared graph into an exponential number of values.
pub fn check_tree(value: &Value) -> Result<TreeSize, ValueError> {
    let nodes = &value.nodes;
    if nodes.is_empty() {
        return Err(ValueError::Empty);
    }
    // The usual field of a row: one scalar node, nothing to walk.
    if let [node] = nodes.as_slice() {
        return match node {
            ValueNode::Text(s) | ValueNode::Other(s) => Ok(TreeSize {
                nodes: 1,
                bytes: s.len(),
            }),
            ValueNode::Bytes(b) => Ok(TreeSize {
                nodes: 1,
                bytes: b.len(),
            }),
            ValueNode::Null
            | ValueNode::Boolean(_)
            | ValueNode::Integer(_)
            | ValueNode::Float(_) => Ok(TreeSize { nodes: 1, bytes: 0 }),
            _ => check_walk(nodes),
        };
    }
    check_walk(nodes)
}

fn check_walk(nodes: &[ValueNode]) -> Result<TreeSize, ValueError> {
    // The depth at which each node was reached; 0 = not yet (the root is 1).
    let mut depth = vec![0u16; nodes.len()];
    depth[0] = 1;
    let mut size = TreeSize::default();
    let mut stack = vec![0u32];
    while let Some(index) = stack.pop() {
        let node = &nodes[index as usize];
        let level = depth[index as usize];
        size.nodes += 1;
        let mut visit = |child: u32, stack: &mut Vec<u32>| -> Result<(), ValueError> {
            let slot = depth
                .get_mut(child as usize)
                .ok_or(ValueError::Dangling(child))?;
            if *slot != 0 {
                return Err(ValueError::Shared(child));
            }
            if usize::from(level) > MAX_DEPTH {
                return Err(ValueError::TooDeep);
            }
            *slot = level + 1;
            stack.push(child);
            Ok(())
        };
        match node {
            ValueNode::Text(s) | ValueNode::Other(s) => size.bytes += s.len(),
            ValueNode::Bytes(b) => size.bytes += b.len(),
            ValueNode::List(items) => {
                for item in items {
                    visit(*item, &mut stack)?;
                }
            }
            ValueNode::Map(entries) => {
                for (key, item) in entries {
                    size.bytes += key.len();
                    visit(*item, &mut stack)?;
                }
            }
            ValueNode::GraphNode(n) => {
                for (key, item) in &n.properties {
                    size.bytes += key.len();
                    visit(*item, &mut stack)?;
                }
            }
            ValueNode::GraphRelationship(r) => {
                for (key, item) in &r.properties {
                    size.bytes += key.len();
                    visit(*item, &mut stack)?;
                }
            }
            ValueNode::Null
            | ValueNode::Boolean(_)
            | ValueNode::Integer(_)
            | ValueNode::Float(_) => {}
        }
    }
    if size.nodes != nodes.len() {
        return Err(ValueError::Unreached(nodes.len() - size.nodes));
    }
    Ok(size)
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

/// Rebuilds a Bolt value from a guest's WIT tree, refusing malformed trees
/// ([`check_tree`]) before anything is built.
pub fn value_to_bolt(value: &Value) -> Result<BoltType, ValueError> {
    check_tree(value)?;
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
        assert_eq!(value_to_bolt(&cyclic), Err(ValueError::Shared(0)));
        let dangling = Value {
            nodes: vec![ValueNode::List(vec![5])],
        };
        assert_eq!(value_to_bolt(&dangling), Err(ValueError::Dangling(5)));
        assert_eq!(
            value_to_bolt(&Value { nodes: vec![] }),
            Err(ValueError::Empty)
        );
    }

    #[test]
    fn shared_nodes_are_refused_before_anything_unfolds() {
        // Each list points twice at the next: 64 nodes that would unfold into 2^63.
        let mut nodes: Vec<ValueNode> = (1..64u32).map(|i| ValueNode::List(vec![i, i])).collect();
        nodes.push(ValueNode::Integer(1));
        let dag = Value { nodes };
        assert_eq!(check_tree(&dag), Err(ValueError::Shared(1)));
        assert_eq!(value_to_bolt(&dag), Err(ValueError::Shared(1)));
        let root_referred = Value {
            nodes: vec![ValueNode::List(vec![1]), ValueNode::List(vec![0])],
        };
        assert_eq!(check_tree(&root_referred), Err(ValueError::Shared(0)));
        let detached_cycle = Value {
            nodes: vec![
                ValueNode::Null,
                ValueNode::List(vec![2]),
                ValueNode::List(vec![1]),
            ],
        };
        assert_eq!(check_tree(&detached_cycle), Err(ValueError::Unreached(2)));
        let padded = Value {
            nodes: vec![ValueNode::Integer(1), ValueNode::Text("unused".into())],
        };
        assert_eq!(check_tree(&padded), Err(ValueError::Unreached(1)));
    }

    #[test]
    fn deep_trees_are_refused_without_recursion() {
        let deep = Value {
            nodes: (0..100_000u32)
                .map(|i| {
                    if i + 1 < 100_000 {
                        ValueNode::List(vec![i + 1])
                    } else {
                        ValueNode::Null
                    }
                })
                .collect(),
        };
        assert_eq!(check_tree(&deep), Err(ValueError::TooDeep));
        let wide = Value {
            nodes: std::iter::once(ValueNode::List((1..=100_000).collect()))
                .chain((0..100_000).map(|_| ValueNode::Text("ab".into())))
                .collect(),
        };
        assert_eq!(
            check_tree(&wide),
            Ok(TreeSize {
                nodes: 100_001,
                bytes: 200_000
            })
        );
    }
}
