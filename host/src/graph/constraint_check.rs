//! Whether the data a constraint covers satisfies it, asked in a transaction
//! before the constraint is created: the elements that break it, by value.
//!
//! A migration that writes data and then creates a constraint gets the
//! constraint after its data commits (a schema operation does not see the
//! writes of a transaction still open). The check runs first, inside that
//! transaction, where it sees the committed data and the migration's own
//! writes: a violation rolls everything back and names the offending values,
//! instead of a constraint that fails after the data committed.

use neo4rs::BoltType;

use super::{GraphError, GraphTxn, ResultBudget};
use crate::policy::{Ddl, Requirement};
use crate::schema::quote;

/// How many offending values a violation names.
const SAMPLE: u64 = 5;
/// The most bytes of offending values read back (values are the guest's data).
const SAMPLE_BYTES: u64 = 64 * 1024;
/// The most characters of one value shown.
const VALUE_CHARS: usize = 80;

/// What a constraint-creating statement requires, in a form that can be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCheck {
    /// On relationships (or nodes).
    pub relationship: bool,
    /// The label or relationship type.
    pub label: String,
    /// The properties, in the constraint's order.
    pub properties: Vec<String>,
    /// What it requires of them.
    pub requirement: Requirement,
}

/// Why a constraint cannot be checked before it is created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unchecked {
    /// The statement is not one the schema grammar reads.
    #[error("graphmig cannot read this constraint to check the data for it")]
    Unread,
    /// A property-type constraint: the servers name types differently, so
    /// graphmig does not judge values against them.
    #[error("graphmig cannot check the data for a property-type constraint")]
    PropertyType,
}

impl DataCheck {
    /// The check of a schema statement: `Ok(None)` when the statement does not
    /// create a constraint (indexes, drops), which needs no check.
    pub fn of(statement: &str) -> Result<Option<DataCheck>, Unchecked> {
        let Some(ddl) = crate::policy::schema_command(statement) else {
            return Err(Unchecked::Unread);
        };
        Self::of_ddl(&ddl)
    }

    fn of_ddl(ddl: &Ddl) -> Result<Option<DataCheck>, Unchecked> {
        if !(ddl.create && ddl.constraint) {
            return Ok(None);
        }
        let requirement = ddl.requirement.ok_or(Unchecked::Unread)?;
        if requirement == Requirement::Type {
            return Err(Unchecked::PropertyType);
        }
        let [label] = ddl.labels.as_slice() else {
            return Err(Unchecked::Unread);
        };
        if ddl.properties.is_empty() {
            return Err(Unchecked::Unread);
        }
        Ok(Some(DataCheck {
            relationship: ddl.relationship,
            label: label.clone(),
            properties: ddl.properties.clone(),
            requirement,
        }))
    }

    fn pattern(&self) -> String {
        match self.relationship {
            true => format!("()-[e:{}]->()", quote(&self.label)),
            false => format!("(e:{})", quote(&self.label)),
        }
    }

    fn property(&self, key: &str) -> String {
        format!("e.{}", quote(key))
    }

    /// Values held by more than one element (those with every property set).
    fn duplicates_query(&self) -> String {
        let present = self
            .properties
            .iter()
            .map(|p| format!("{} IS NOT NULL", self.property(p)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let group = self
            .properties
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{} AS v{i}", self.property(p)))
            .collect::<Vec<_>>()
            .join(", ");
        let values = (0..self.properties.len())
            .map(|i| format!("v{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "MATCH {} WHERE {present} WITH {group}, count(*) AS c WHERE c > 1 \
             RETURN {values}, c ORDER BY c DESC LIMIT {SAMPLE}",
            self.pattern()
        )
    }

    /// Elements missing one of the properties.
    fn missing_query(&self) -> String {
        let absent = self
            .properties
            .iter()
            .map(|p| format!("{} IS NULL", self.property(p)))
            .collect::<Vec<_>>()
            .join(" OR ");
        format!(
            "MATCH {} WHERE {absent} RETURN count(*) AS c",
            self.pattern()
        )
    }

    fn subject(&self) -> String {
        match self.relationship {
            true => format!("`{}` relationships", self.label),
            false => format!(":{} nodes", self.label),
        }
    }

    fn keys(&self) -> String {
        self.properties
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads, in `txn`, what breaks the constraint: `Ok(None)` when nothing
    /// does, else a description naming the offending values (at most
    /// [`SAMPLE`], each cut short) or how many elements miss a property.
    pub async fn violations(&self, txn: &mut GraphTxn) -> Result<Option<String>, GraphError> {
        let mut found = Vec::new();
        if matches!(self.requirement, Requirement::NotNull | Requirement::Key) {
            let rows = txn.run(&self.missing_query(), Vec::new()).await?;
            let missing = rows
                .first()
                .and_then(|row| row.iter().find(|(k, _)| k == "c"))
                .and_then(|(_, v)| match v {
                    BoltType::Integer(i) => Some(i.value),
                    _ => None,
                })
                .unwrap_or(0);
            if missing > 0 {
                found.push(format!(
                    "{missing} {} lack {}",
                    self.subject(),
                    match self.properties.len() {
                        1 => self.keys(),
                        _ => format!("one of {}", self.keys()),
                    }
                ));
            }
        }
        if matches!(self.requirement, Requirement::Unique | Requirement::Key) {
            let budget = ResultBudget {
                rows: SAMPLE,
                bytes: SAMPLE_BYTES,
            };
            let read = txn
                .run_within(&self.duplicates_query(), Vec::new(), budget, |row| {
                    let weight = row.iter().map(|(_, v)| weight(v)).sum();
                    (row, weight)
                })
                .await?;
            let shown = match read {
                Ok((rows, _, _)) => rows
                    .iter()
                    .map(|row| self.describe_duplicate(row))
                    .collect::<Vec<_>>(),
                // Too large to read back: said, not shown.
                Err(_) => vec!["(values too large to show)".to_string()],
            };
            if !shown.is_empty() {
                found.push(format!(
                    "{} share values of {}: {}",
                    self.subject(),
                    self.keys(),
                    shown.join(", ")
                ));
            }
        }
        Ok((!found.is_empty()).then(|| found.join("; ")))
    }

    fn describe_duplicate(&self, row: &[(String, BoltType)]) -> String {
        let column = |name: &str| row.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let values = (0..self.properties.len())
            .map(|i| column(&format!("v{i}")).map_or_else(|| "?".into(), show))
            .collect::<Vec<_>>();
        let value = match values.len() {
            1 => values[0].clone(),
            _ => format!("({})", values.join(", ")),
        };
        match column("c") {
            Some(BoltType::Integer(c)) => format!("{value} ({} times)", c.value),
            _ => value,
        }
    }
}

/// Roughly the bytes a value holds, to bound what is read back.
fn weight(value: &BoltType) -> u64 {
    match value {
        BoltType::String(s) => 24 + s.value.len() as u64,
        BoltType::List(l) => 24 + l.value.iter().map(weight).sum::<u64>(),
        BoltType::Bytes(b) => 24 + b.value.len() as u64,
        _ => 24,
    }
}

/// A value as an error message shows it: short, and plainly typed.
fn show(value: &BoltType) -> String {
    match value {
        BoltType::String(s) => format!("{:?}", crate::journal::cut(&s.value, VALUE_CHARS)),
        BoltType::Integer(i) => i.value.to_string(),
        BoltType::Float(f) => f.value.to_string(),
        BoltType::Boolean(b) => b.value.to_string(),
        BoltType::List(l) => format!("a list of {}", l.value.len()),
        _ => "a value".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_that_can_be_checked_say_how() {
        let check = DataCheck::of(
            "CREATE CONSTRAINT c IF NOT EXISTS FOR (p:Person) REQUIRE (p.email, p.org) IS NODE KEY",
        )
        .expect("checkable")
        .expect("a constraint");
        assert_eq!(check.requirement, Requirement::Key);
        assert_eq!(check.properties, ["email", "org"]);
        assert_eq!(
            check.duplicates_query(),
            "MATCH (e:`Person`) WHERE e.`email` IS NOT NULL AND e.`org` IS NOT NULL WITH \
             e.`email` AS v0, e.`org` AS v1, count(*) AS c WHERE c > 1 RETURN v0, v1, c \
             ORDER BY c DESC LIMIT 5"
        );
        assert_eq!(
            check.missing_query(),
            "MATCH (e:`Person`) WHERE e.`email` IS NULL OR e.`org` IS NULL RETURN count(*) AS c"
        );
        let check = DataCheck::of("CREATE CONSTRAINT ON ()-[r:KNOWS]-() ASSERT r.id IS UNIQUE")
            .expect("checkable")
            .expect("a constraint");
        assert!(check.relationship);
        assert!(
            check
                .duplicates_query()
                .starts_with("MATCH ()-[e:`KNOWS`]->() ")
        );
    }

    #[test]
    fn what_cannot_be_checked_is_said() {
        assert_eq!(
            DataCheck::of("CREATE CONSTRAINT c FOR (p:P) REQUIRE p.age IS :: INTEGER"),
            Err(Unchecked::PropertyType)
        );
        assert_eq!(
            DataCheck::of("CREATE CONSTRAINT c FOR (p:P) REQUIRE p.age IS SOMETHING"),
            Err(Unchecked::Unread)
        );
        assert_eq!(
            DataCheck::of("CREATE INDEX i FOR (p:P) ON (p.age)"),
            Ok(None)
        );
        assert_eq!(DataCheck::of("DROP CONSTRAINT c"), Ok(None));
    }

    #[test]
    fn offending_values_are_shown_short() {
        let long = BoltType::String(neo4rs::BoltString::new(&"x".repeat(10_000)));
        assert!(show(&long).len() < 120);
        assert_eq!(show(&BoltType::Integer(neo4rs::BoltInteger::new(7))), "7");
    }
}
