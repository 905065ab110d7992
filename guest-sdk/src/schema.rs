//! Typed schema operations: constraints and indexes the host renders for the
//! target's Cypher dialect.

use crate::__private::bindings::graphmig::migration::types as wit;

pub use wit::{Entity, IndexKind};

/// A constraint to create. Build one with [`Constraint::unique`] and friends.
#[derive(Debug, Clone)]
pub struct Constraint(pub(crate) wit::Constraint);

/// An index to create. Build one with [`Index::range`] and friends.
#[derive(Debug, Clone)]
pub struct Index(pub(crate) wit::Index);

/// One element of the live schema.
#[derive(Debug, Clone)]
pub enum SchemaElement {
    /// A constraint.
    Constraint {
        /// Its name.
        name: String,
        /// Its label or relationship type.
        label: String,
        /// Its properties.
        properties: Vec<String>,
    },
    /// An index no constraint owns.
    Index {
        /// Its name.
        name: String,
        /// Its labels or relationship types.
        labels: Vec<String>,
        /// Its properties.
        properties: Vec<String>,
    },
}

impl SchemaElement {
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            SchemaElement::Constraint { name, .. } | SchemaElement::Index { name, .. } => name,
        }
    }
}

fn strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl Constraint {
    fn new(label: &str, properties: Vec<String>, kind: wit::ConstraintKind) -> Self {
        Constraint(wit::Constraint {
            name: None,
            entity: wit::Entity::Node,
            label: label.to_string(),
            properties,
            kind,
        })
    }

    /// Values of `properties` (together) are unique among nodes labelled `label`.
    pub fn unique<I: IntoIterator<Item = S>, S: Into<String>>(label: &str, properties: I) -> Self {
        Self::new(label, strings(properties), wit::ConstraintKind::Unique)
    }

    /// `properties` exist and are unique together (a node key).
    pub fn key<I: IntoIterator<Item = S>, S: Into<String>>(label: &str, properties: I) -> Self {
        Self::new(label, strings(properties), wit::ConstraintKind::Key)
    }

    /// `property` exists (`IS NOT NULL`).
    pub fn exists(label: &str, property: &str) -> Self {
        Self::new(
            label,
            vec![property.to_string()],
            wit::ConstraintKind::Exists,
        )
    }

    /// `property` has the Cypher type `cypher_type` (`STRING`, `INTEGER`, ...).
    pub fn property_type(label: &str, property: &str, cypher_type: &str) -> Self {
        Self::new(
            label,
            vec![property.to_string()],
            wit::ConstraintKind::PropertyType(cypher_type.to_string()),
        )
    }

    /// Applies to relationships of type `label` instead of nodes.
    pub fn on_relationships(mut self) -> Self {
        self.0.entity = wit::Entity::Relationship;
        self
    }

    /// Gives it this name instead of the derived one.
    pub fn named(mut self, name: &str) -> Self {
        self.0.name = Some(name.to_string());
        self
    }
}

impl Index {
    fn new(labels: Vec<String>, properties: Vec<String>, kind: wit::IndexKind) -> Self {
        Index(wit::Index {
            name: None,
            entity: wit::Entity::Node,
            labels,
            properties,
            kind,
            vector_dimensions: None,
            vector_similarity: None,
        })
    }

    /// A range index (the default kind) on `properties` of `label`.
    pub fn range<I: IntoIterator<Item = S>, S: Into<String>>(label: &str, properties: I) -> Self {
        Self::new(
            vec![label.to_string()],
            strings(properties),
            wit::IndexKind::Range,
        )
    }

    /// A text index on `property` of `label`.
    pub fn text(label: &str, property: &str) -> Self {
        Self::new(
            vec![label.to_string()],
            vec![property.to_string()],
            wit::IndexKind::Text,
        )
    }

    /// A point index on `property` of `label`.
    pub fn point(label: &str, property: &str) -> Self {
        Self::new(
            vec![label.to_string()],
            vec![property.to_string()],
            wit::IndexKind::Point,
        )
    }

    /// A full-text index over `properties` of nodes with any of `labels`.
    pub fn fulltext<L, P, S, T>(labels: L, properties: P) -> Self
    where
        L: IntoIterator<Item = S>,
        S: Into<String>,
        P: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self::new(
            strings(labels),
            strings(properties),
            wit::IndexKind::Fulltext,
        )
    }

    /// A vector index on `property` of `label`.
    pub fn vector(label: &str, property: &str, dimensions: u32, similarity: &str) -> Self {
        let mut index = Self::new(
            vec![label.to_string()],
            vec![property.to_string()],
            wit::IndexKind::Vector,
        );
        index.0.vector_dimensions = Some(dimensions);
        index.0.vector_similarity = Some(similarity.to_string());
        index
    }

    /// Applies to relationships instead of nodes.
    pub fn on_relationships(mut self) -> Self {
        self.0.entity = wit::Entity::Relationship;
        self
    }

    /// Gives it this name instead of the derived one.
    pub fn named(mut self, name: &str) -> Self {
        self.0.name = Some(name.to_string());
        self
    }
}

pub(crate) fn element(e: wit::SchemaElement) -> SchemaElement {
    match e {
        wit::SchemaElement::Constraint(c) => SchemaElement::Constraint {
            name: c.name.unwrap_or_default(),
            label: c.label,
            properties: c.properties,
        },
        wit::SchemaElement::Index(i) => SchemaElement::Index {
            name: i.name.unwrap_or_default(),
            labels: i.labels,
            properties: i.properties,
        },
    }
}

pub(crate) fn error(e: wit::SchemaError) -> crate::Error {
    match e {
        wit::SchemaError::Unsupported(m) => crate::Error::Unsupported(m),
        wit::SchemaError::Invalid(m) => {
            crate::Error::Message(format!("invalid schema operation: {m}"))
        }
        wit::SchemaError::Graph(g) => crate::Error::Graph(crate::wire::graph_error(g)),
    }
}
