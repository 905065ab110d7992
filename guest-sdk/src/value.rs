//! Native Rust forms of Cypher values, parameters and the conversions between them.

use std::collections::{BTreeMap, HashMap};

use crate::error::Error;

/// A Cypher value, nested as deep as Cypher allows.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string.
    String(String),
    /// A byte array.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A map with string keys.
    Map(BTreeMap<String, Value>),
    /// A node returned by a query.
    Node(Node),
    /// A relationship returned by a query.
    Relationship(Relationship),
    /// A value the host passed as text (temporal values, durations, points).
    Other(String),
}

/// A node returned by a query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// The database's id of the node.
    pub id: i64,
    /// Its labels.
    pub labels: Vec<String>,
    /// Its properties.
    pub properties: BTreeMap<String, Value>,
}

/// A relationship returned by a query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Relationship {
    /// The database's id of the relationship.
    pub id: i64,
    /// The id of its start node.
    pub start: i64,
    /// The id of its end node.
    pub end: i64,
    /// Its type.
    pub rel_type: String,
    /// Its properties.
    pub properties: BTreeMap<String, Value>,
}

impl Value {
    /// The name of this value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Node(_) => "node",
            Value::Relationship(_) => "relationship",
            Value::Other(_) => "other",
        }
    }
}

/// Named query parameters, in the order they were added.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params(pub(crate) Vec<(String, Value)>);

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the parameter `name`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(existing, _)| *existing == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
        self
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut params = Params::new();
        for (name, value) in iter {
            params.insert(name, value);
        }
        params
    }
}

macro_rules! value_from {
    ($($ty:ty => $variant:ident $(as $cast:ty)?),+ $(,)?) => {
        $(impl From<$ty> for Value {
            fn from(value: $ty) -> Self {
                Value::$variant(value $(as $cast)?)
            }
        })+
    };
}

value_from! {
    bool => Bool,
    i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int,
    u8 => Int as i64, u16 => Int as i64, u32 => Int as i64,
    f32 => Float as f64, f64 => Float,
    String => String,
    Node => Node,
    Relationship => Relationship,
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::String(value.to_string())
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Value::String(value.clone())
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(values: Vec<T>) -> Self {
        Value::List(values.into_iter().map(Into::into).collect())
    }
}

impl<T: Clone + Into<Value>> From<&[T]> for Value {
    fn from(values: &[T]) -> Self {
        Value::List(values.iter().cloned().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

impl<K: Into<String>, T: Into<Value>> From<BTreeMap<K, T>> for Value {
    fn from(map: BTreeMap<K, T>) -> Self {
        Value::Map(map.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<String>, T: Into<Value>> From<HashMap<K, T>> for Value {
    fn from(map: HashMap<K, T>) -> Self {
        Value::Map(map.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl From<Params> for Value {
    fn from(params: Params) -> Self {
        Value::Map(params.0.into_iter().collect())
    }
}

/// Conversion from a [`Value`] read out of a result row.
pub trait FromValue: Sized {
    /// Converts `value`, or says what was expected.
    fn from_value(value: &Value) -> Result<Self, Error>;
}

fn mismatch(expected: &'static str, found: &Value) -> Error {
    Error::Decode {
        expected,
        found: found.kind(),
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self, Error> {
        Ok(value.clone())
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Bool(b) => Ok(*b),
            other => Err(mismatch("boolean", other)),
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Int(i) => Ok(*i),
            other => Err(mismatch("integer", other)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Float(f) => Ok(*f),
            // Cypher arithmetic mixes the two freely; an integer is a valid float.
            Value::Int(i) => Ok(*i as f64),
            other => Err(mismatch("float", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(mismatch("string", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Bytes(b) => Ok(b.clone()),
            other => Err(mismatch("bytes", other)),
        }
    }
}

impl FromValue for Node {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Node(n) => Ok(n.clone()),
            other => Err(mismatch("node", other)),
        }
    }
}

impl FromValue for Relationship {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Relationship(r) => Ok(r.clone()),
            other => Err(mismatch("relationship", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::List(items) => items.iter().map(T::from_value).collect(),
            other => Err(mismatch("list", other)),
        }
    }
}

impl<T: FromValue> FromValue for BTreeMap<String, T> {
    fn from_value(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), T::from_value(v)?)))
                .collect(),
            other => Err(mismatch("map", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_keep_order_and_replace_by_name() {
        let mut p = Params::new();
        p.insert("a", 1).insert("b", "two").insert("a", 3.5);
        assert_eq!(
            p.0,
            vec![
                ("a".to_string(), Value::Float(3.5)),
                ("b".to_string(), Value::String("two".into()))
            ]
        );
    }

    #[test]
    fn rust_values_convert_both_ways() {
        let v: Value = vec![Some(1i64), None].into();
        assert_eq!(v, Value::List(vec![Value::Int(1), Value::Null]));
        assert_eq!(Vec::<Option<i64>>::from_value(&v), Ok(vec![Some(1), None]));
        assert_eq!(f64::from_value(&Value::Int(2)), Ok(2.0));
        assert_eq!(
            String::from_value(&Value::Int(2)),
            Err(Error::Decode {
                expected: "string",
                found: "integer"
            })
        );
    }
}
