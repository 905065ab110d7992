//! Typed schema operations (constraints and indexes) and their rendering as Cypher
//! for each target dialect: Neo4j 5, Neo4j 4.4 and ArcadeDB.

use std::fmt;

/// The Cypher dialect of a target server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Neo4j 5.x (and 2025.x).
    Neo4j5,
    /// Neo4j 4.4.
    Neo4j44,
    /// ArcadeDB's Neo4j 5 Cypher over Bolt.
    ArcadeDb,
}

impl Dialect {
    /// Every dialect, for golden tests and help text.
    pub const ALL: [Dialect; 3] = [Dialect::Neo4j5, Dialect::Neo4j44, Dialect::ArcadeDb];

    /// The name used in `graphmig.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Neo4j5 => "neo4j-5",
            Dialect::Neo4j44 => "neo4j-4.4",
            Dialect::ArcadeDb => "arcadedb",
        }
    }

    /// Parses a name from `graphmig.toml`.
    pub fn parse(text: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.as_str() == text)
    }

    /// Detects the dialect from the agent a server announces in its Bolt HELLO
    /// reply (`Neo4j/5.26.0`, `Neo4j/4.4.30`, `Neo4j/5.26.0 compatible (ArcadeDB 26.10.2)`).
    pub fn from_agent(agent: &str) -> Option<Dialect> {
        if agent.to_ascii_lowercase().contains("arcadedb") {
            return Some(Dialect::ArcadeDb);
        }
        let version = agent.strip_prefix("Neo4j/")?;
        let major: u32 = version.split('.').next()?.parse().ok()?;
        Some(match major {
            0..=3 => return None,
            4 => Dialect::Neo4j44,
            _ => Dialect::Neo4j5,
        })
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a schema element applies to nodes or to relationships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// Nodes with a label.
    Node,
    /// Relationships of a type.
    Relationship,
}

/// What a constraint requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKind {
    /// The property values are unique (together, when several).
    Unique,
    /// The properties exist and are unique together (NODE KEY / RELATIONSHIP KEY).
    Key,
    /// The property exists (IS NOT NULL).
    Exists,
    /// The property has this Cypher type (`IS :: STRING`).
    PropertyType(String),
}

/// A constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// Its name; derived from the rest when absent.
    pub name: Option<String>,
    /// Nodes or relationships.
    pub entity: Entity,
    /// The label (or relationship type).
    pub label: String,
    /// The properties, in order.
    pub properties: Vec<String>,
    /// What it requires.
    pub kind: ConstraintKind,
}

/// The kind of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Range (the default index).
    Range,
    /// Text (string predicates).
    Text,
    /// Point (spatial).
    Point,
    /// Full-text (Lucene), possibly over several labels.
    Fulltext,
    /// Vector (similarity search).
    Vector,
}

impl IndexKind {
    fn as_str(self) -> &'static str {
        match self {
            IndexKind::Range => "range",
            IndexKind::Text => "text",
            IndexKind::Point => "point",
            IndexKind::Fulltext => "fulltext",
            IndexKind::Vector => "vector",
        }
    }
}

/// An index.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// Its name; derived from the rest when absent.
    pub name: Option<String>,
    /// Nodes or relationships.
    pub entity: Entity,
    /// The labels (or types); several only for full-text indexes.
    pub labels: Vec<String>,
    /// The properties, in order.
    pub properties: Vec<String>,
    /// Its kind.
    pub kind: IndexKind,
    /// Vector dimensions (vector indexes).
    pub vector_dimensions: Option<u32>,
    /// Vector similarity function, `cosine` or `euclidean` (vector indexes).
    pub vector_similarity: Option<String>,
}

/// Why a schema operation cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The target cannot do this.
    #[error("{dialect} does not support {operation}")]
    Unsupported {
        /// The target.
        dialect: Dialect,
        /// What was asked.
        operation: String,
    },
    /// The operation is malformed (no properties, a bad name, ...).
    #[error("invalid schema operation: {0}")]
    Invalid(String),
}

/// Quotes an identifier with backticks, doubling any backtick inside.
pub fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

/// A property key for a `REMOVE` clause: bare when it is a plain identifier,
/// quoted otherwise. ArcadeDB ignores `REMOVE n.\`key\`` with backticks (it
/// removes nothing), so plain keys must stay bare.
pub fn remove_key(key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { key.to_string() } else { quote(key) }
}

fn check_name(name: &str) -> Result<(), SchemaError> {
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(SchemaError::Invalid(format!(
            "name `{name}`: use 1 to 128 letters, digits and underscores"
        )));
    }
    Ok(())
}

fn check_parts(labels: &[String], properties: &[String]) -> Result<(), SchemaError> {
    if labels.is_empty() || labels.iter().any(|l| l.is_empty()) {
        return Err(SchemaError::Invalid(
            "a label or relationship type is required".into(),
        ));
    }
    if properties.is_empty() || properties.iter().any(|p| p.is_empty()) {
        return Err(SchemaError::Invalid(
            "at least one property is required".into(),
        ));
    }
    Ok(())
}

/// A stable name from the parts: `person_email_unique`.
fn derive_name(labels: &[String], properties: &[String], suffix: &str) -> String {
    let mut name: String = labels
        .iter()
        .chain(properties)
        .map(String::as_str)
        .chain([suffix])
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(120);
    name
}

fn pattern(entity: Entity, var: &str, labels: &[String]) -> String {
    let labels = labels
        .iter()
        .map(|l| quote(l))
        .collect::<Vec<_>>()
        .join("|");
    match entity {
        Entity::Node => format!("({var}:{labels})"),
        Entity::Relationship => format!("()-[{var}:{labels}]-()"),
    }
}

fn props(var: &str, properties: &[String]) -> Vec<String> {
    properties
        .iter()
        .map(|p| format!("{var}.{}", quote(p)))
        .collect()
}

impl Constraint {
    /// Its name, given or derived.
    pub fn effective_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let suffix = match &self.kind {
                ConstraintKind::Unique => "unique".to_string(),
                ConstraintKind::Key => "key".to_string(),
                ConstraintKind::Exists => "exists".to_string(),
                ConstraintKind::PropertyType(t) => format!("type_{t}"),
            };
            derive_name(std::slice::from_ref(&self.label), &self.properties, &suffix)
        })
    }

    fn describe(&self) -> String {
        let what = match &self.kind {
            ConstraintKind::Unique => "uniqueness constraints".to_string(),
            ConstraintKind::Key => "key constraints".to_string(),
            ConstraintKind::Exists => "property existence constraints".to_string(),
            ConstraintKind::PropertyType(_) => "property type constraints".to_string(),
        };
        let on = match self.entity {
            Entity::Node => "nodes",
            Entity::Relationship => "relationships",
        };
        format!("{what} on {on}")
    }

    /// `CREATE CONSTRAINT ... IF NOT EXISTS` for `dialect`.
    pub fn render_create(&self, dialect: Dialect) -> Result<String, SchemaError> {
        let name = self.effective_name();
        check_name(&name)?;
        check_parts(std::slice::from_ref(&self.label), &self.properties)?;
        let unsupported = || SchemaError::Unsupported {
            dialect,
            operation: self.describe(),
        };
        match (&self.kind, self.entity, dialect) {
            (ConstraintKind::PropertyType(_), _, Dialect::Neo4j44) => return Err(unsupported()),
            (
                ConstraintKind::Unique | ConstraintKind::Key,
                Entity::Relationship,
                Dialect::Neo4j44,
            ) => {
                return Err(unsupported());
            }
            (ConstraintKind::Key, Entity::Relationship, Dialect::ArcadeDb) => {
                return Err(unsupported());
            }
            (ConstraintKind::Exists | ConstraintKind::PropertyType(_), _, _)
                if self.properties.len() != 1 =>
            {
                return Err(SchemaError::Invalid(format!(
                    "{} take exactly one property",
                    self.describe()
                )));
            }
            _ => {}
        }
        let var = match self.entity {
            Entity::Node => "n",
            Entity::Relationship => "r",
        };
        let properties = props(var, &self.properties);
        let subject = if properties.len() == 1 {
            properties[0].clone()
        } else {
            format!("({})", properties.join(", "))
        };
        let requirement = match &self.kind {
            ConstraintKind::Unique => "IS UNIQUE".to_string(),
            ConstraintKind::Key => match self.entity {
                Entity::Node => "IS NODE KEY".to_string(),
                Entity::Relationship => "IS RELATIONSHIP KEY".to_string(),
            },
            ConstraintKind::Exists => "IS NOT NULL".to_string(),
            ConstraintKind::PropertyType(t) => {
                let t = t.to_ascii_uppercase();
                if !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " <>_|".contains(c))
                {
                    return Err(SchemaError::Invalid(format!("property type `{t}`")));
                }
                format!("IS :: {t}")
            }
        };
        Ok(format!(
            "CREATE CONSTRAINT {} IF NOT EXISTS FOR {} REQUIRE {subject} {requirement}",
            quote(&name),
            pattern(self.entity, var, std::slice::from_ref(&self.label))
        ))
    }
}

impl Index {
    /// Its name, given or derived.
    pub fn effective_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| derive_name(&self.labels, &self.properties, self.kind.as_str()))
    }

    /// `CREATE ... INDEX ... IF NOT EXISTS` for `dialect`.
    pub fn render_create(&self, dialect: Dialect) -> Result<String, SchemaError> {
        let name = self.effective_name();
        check_name(&name)?;
        check_parts(&self.labels, &self.properties)?;
        let on = match self.entity {
            Entity::Node => "nodes",
            Entity::Relationship => "relationships",
        };
        let unsupported = |what: &str| SchemaError::Unsupported {
            dialect,
            operation: format!("{what} on {on}"),
        };
        if self.kind != IndexKind::Fulltext && self.labels.len() != 1 {
            return Err(SchemaError::Invalid(format!(
                "a {} index covers exactly one label or type",
                self.kind.as_str()
            )));
        }
        match (self.kind, dialect) {
            (IndexKind::Fulltext, Dialect::ArcadeDb) => {
                return Err(unsupported("full-text indexes"));
            }
            (IndexKind::Vector, Dialect::ArcadeDb | Dialect::Neo4j44) => {
                return Err(unsupported("vector indexes"));
            }
            (IndexKind::Point, Dialect::ArcadeDb) => return Err(unsupported("point indexes")),
            (IndexKind::Text | IndexKind::Point | IndexKind::Vector, _)
                if self.properties.len() != 1 =>
            {
                return Err(SchemaError::Invalid(format!(
                    "a {} index covers exactly one property",
                    self.kind.as_str()
                )));
            }
            _ => {}
        }
        let var = match self.entity {
            Entity::Node => "n",
            Entity::Relationship => "r",
        };
        let target = pattern(self.entity, var, &self.labels);
        let properties = props(var, &self.properties).join(", ");
        let name = quote(&name);
        Ok(match self.kind {
            IndexKind::Range => match dialect {
                // 4.4's plain CREATE INDEX is a B-tree index; RANGE is explicit there.
                Dialect::Neo4j44 => {
                    format!(
                        "CREATE RANGE INDEX {name} IF NOT EXISTS FOR {target} ON ({properties})"
                    )
                }
                _ => format!("CREATE INDEX {name} IF NOT EXISTS FOR {target} ON ({properties})"),
            },
            IndexKind::Text => {
                format!("CREATE TEXT INDEX {name} IF NOT EXISTS FOR {target} ON ({properties})")
            }
            IndexKind::Point => {
                format!("CREATE POINT INDEX {name} IF NOT EXISTS FOR {target} ON ({properties})")
            }
            IndexKind::Fulltext => {
                format!(
                    "CREATE FULLTEXT INDEX {name} IF NOT EXISTS FOR {target} ON EACH [{properties}]"
                )
            }
            IndexKind::Vector => {
                let dimensions = self.vector_dimensions.ok_or_else(|| {
                    SchemaError::Invalid("a vector index needs its dimensions".into())
                })?;
                let similarity = self.vector_similarity.as_deref().unwrap_or("cosine");
                if !matches!(similarity, "cosine" | "euclidean") {
                    return Err(SchemaError::Invalid(format!(
                        "vector similarity `{similarity}`: use cosine or euclidean"
                    )));
                }
                format!(
                    "CREATE VECTOR INDEX {name} IF NOT EXISTS FOR {target} ON ({properties}) OPTIONS {{indexConfig: {{`vector.dimensions`: {dimensions}, `vector.similarity_function`: '{similarity}'}}}}"
                )
            }
        })
    }
}

/// `DROP CONSTRAINT name IF EXISTS`.
pub fn render_drop_constraint(name: &str) -> Result<String, SchemaError> {
    check_name(name)?;
    Ok(format!("DROP CONSTRAINT {} IF EXISTS", quote(name)))
}

/// `DROP INDEX name IF EXISTS`.
pub fn render_drop_index(name: &str) -> Result<String, SchemaError> {
    check_name(name)?;
    Ok(format!("DROP INDEX {} IF EXISTS", quote(name)))
}

/// Reads one row of `SHOW CONSTRAINTS` into a constraint (`None` for kinds
/// graphmig does not model).
pub fn constraint_from_show(
    name: String,
    kind: &str,
    entity: &str,
    labels: Vec<String>,
    properties: Vec<String>,
    property_type: Option<String>,
) -> Option<Constraint> {
    let kind = match kind {
        "UNIQUENESS" | "NODE_UNIQUENESS" | "RELATIONSHIP_UNIQUENESS" => ConstraintKind::Unique,
        "NODE_KEY" | "RELATIONSHIP_KEY" => ConstraintKind::Key,
        "NODE_PROPERTY_EXISTENCE" | "RELATIONSHIP_PROPERTY_EXISTENCE" => ConstraintKind::Exists,
        "NODE_PROPERTY_TYPE" | "RELATIONSHIP_PROPERTY_TYPE" => {
            ConstraintKind::PropertyType(property_type.unwrap_or_default())
        }
        _ => return None,
    };
    Some(Constraint {
        name: Some(name),
        entity: if entity == "RELATIONSHIP" {
            Entity::Relationship
        } else {
            Entity::Node
        },
        label: labels.into_iter().next()?,
        properties,
        kind,
    })
}

/// Reads one row of `SHOW INDEXES` into an index (`None` for lookup indexes and
/// kinds graphmig does not model).
pub fn index_from_show(
    name: String,
    kind: &str,
    entity: &str,
    labels: Vec<String>,
    properties: Vec<String>,
) -> Option<Index> {
    let kind = match kind {
        "RANGE" | "BTREE" => IndexKind::Range,
        "TEXT" => IndexKind::Text,
        "POINT" => IndexKind::Point,
        "FULLTEXT" => IndexKind::Fulltext,
        "VECTOR" => IndexKind::Vector,
        _ => return None,
    };
    if labels.is_empty() || properties.is_empty() {
        return None;
    }
    Some(Index {
        name: Some(name),
        entity: if entity == "RELATIONSHIP" {
            Entity::Relationship
        } else {
            Entity::Node
        },
        labels,
        properties,
        kind,
        vector_dimensions: None,
        vector_similarity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(entity: Entity, label: &str, properties: &[&str], kind: ConstraintKind) -> Constraint {
        Constraint {
            name: None,
            entity,
            label: label.into(),
            properties: properties.iter().map(|p| p.to_string()).collect(),
            kind,
        }
    }

    fn i(entity: Entity, labels: &[&str], properties: &[&str], kind: IndexKind) -> Index {
        Index {
            name: None,
            entity,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            properties: properties.iter().map(|p| p.to_string()).collect(),
            kind,
            vector_dimensions: (kind == IndexKind::Vector).then_some(1536),
            vector_similarity: None,
        }
    }

    /// Every operation rendered for every dialect, compared with the golden file
    /// `host/tests/golden/schema.txt`. Set GRAPHMIG_BLESS=1 to rewrite it.
    #[test]
    fn every_operation_renders_as_the_golden_file_says() {
        use ConstraintKind::*;
        use Entity::*;
        let constraints = [
            c(Node, "Person", &["email"], Unique),
            c(Node, "Person", &["first", "last"], Unique),
            c(Node, "Person", &["id"], Key),
            c(Node, "Person", &["tenant", "id"], Key),
            c(Node, "Person", &["name"], Exists),
            c(Relationship, "WORKS_AT", &["since"], Exists),
            c(Node, "Person", &["born"], PropertyType("INTEGER".into())),
            c(
                Relationship,
                "WORKS_AT",
                &["since"],
                PropertyType("DATE".into()),
            ),
            c(Relationship, "WORKS_AT", &["contract"], Unique),
            c(Relationship, "WORKS_AT", &["contract"], Key),
            c(Node, "Odd `Label`", &["we`ird"], Unique),
        ];
        let indexes = [
            i(Node, &["Person"], &["name"], IndexKind::Range),
            i(Node, &["Person"], &["last", "first"], IndexKind::Range),
            i(Relationship, &["WORKS_AT"], &["since"], IndexKind::Range),
            i(Node, &["Person"], &["bio"], IndexKind::Text),
            i(Node, &["Place"], &["location"], IndexKind::Point),
            i(
                Node,
                &["Person", "Company"],
                &["name", "description"],
                IndexKind::Fulltext,
            ),
            i(Node, &["Document"], &["embedding"], IndexKind::Vector),
        ];
        let mut out = String::new();
        for dialect in Dialect::ALL {
            out.push_str(&format!("== {dialect}\n"));
            for constraint in &constraints {
                out.push_str(&match constraint.render_create(dialect) {
                    Ok(cypher) => cypher,
                    Err(e) => format!("ERROR {e}"),
                });
                out.push('\n');
            }
            for index in &indexes {
                out.push_str(&match index.render_create(dialect) {
                    Ok(cypher) => cypher,
                    Err(e) => format!("ERROR {e}"),
                });
                out.push('\n');
            }
            out.push_str(&render_drop_constraint("person_email_unique").expect("drop"));
            out.push('\n');
            out.push_str(&render_drop_index("person_name_range").expect("drop"));
            out.push('\n');
        }
        let golden =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/schema.txt");
        if std::env::var_os("GRAPHMIG_BLESS").is_some() {
            std::fs::create_dir_all(golden.parent().expect("parent")).expect("golden dir");
            std::fs::write(&golden, &out).expect("write golden");
        }
        let expected = std::fs::read_to_string(&golden)
            .expect("golden file exists (run once with GRAPHMIG_BLESS=1 and review it)");
        assert_eq!(
            out, expected,
            "rendering changed; review and bless with GRAPHMIG_BLESS=1"
        );
    }

    #[test]
    fn names_are_derived_stably_and_validated() {
        let unique = c(Entity::Node, "Person", &["email"], ConstraintKind::Unique);
        assert_eq!(unique.effective_name(), "person_email_unique");
        let mut bad = unique.clone();
        bad.name = Some("no spaces; DROP".into());
        assert!(matches!(
            bad.render_create(Dialect::Neo4j5),
            Err(SchemaError::Invalid(_))
        ));
        assert!(render_drop_index("x` DETACH DELETE").is_err());
    }

    #[test]
    fn dialects_are_detected_from_the_server_agent() {
        assert_eq!(Dialect::from_agent("Neo4j/5.26.0"), Some(Dialect::Neo4j5));
        assert_eq!(
            Dialect::from_agent("Neo4j/2025.10.1"),
            Some(Dialect::Neo4j5)
        );
        assert_eq!(Dialect::from_agent("Neo4j/4.4.30"), Some(Dialect::Neo4j44));
        assert_eq!(
            Dialect::from_agent("Neo4j/5.26.0 compatible (ArcadeDB 26.10.2)"),
            Some(Dialect::ArcadeDb)
        );
        assert_eq!(Dialect::from_agent("Memgraph/2.0"), None);
    }
}
