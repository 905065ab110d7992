//! The handle a migration step receives: Cypher, results and logging.

use std::collections::BTreeMap;

use crate::__private::bindings::graphmig::migration::{
    context,
    types::{Entity, LogLevel},
};
use crate::error::{Error, Result};
use crate::value::{FromValue, Params, Value};
use crate::wire;

/// The host's services for one step: runs Cypher in the step's transaction and logs.
#[derive(Debug)]
pub struct Context {
    _private: (),
}

impl Context {
    pub(crate) fn new() -> Self {
        Context { _private: () }
    }

    /// Runs a statement with parameters inside the step's transaction.
    ///
    /// After a failed statement the transaction is doomed: return the error.
    pub fn run(&self, query: &str, params: Params) -> Result<QueryResult> {
        let params: Vec<_> = params
            .0
            .iter()
            .map(|(name, value)| (name.clone(), wire::to_wit(value)))
            .collect();
        let result = context::run_cypher(query, &params).map_err(wire::graph_error)?;
        let rows = result
            .rows
            .iter()
            .map(|row| {
                Row(row
                    .iter()
                    .map(|(name, value)| (name.clone(), wire::from_wit(value)))
                    .collect())
            })
            .collect();
        Ok(QueryResult { rows })
    }

    /// Runs a statement that returns exactly one row and reads one column of it.
    pub fn scalar<T: FromValue>(&self, query: &str, params: Params, column: &str) -> Result<T> {
        self.run(query, params)?.single()?.get(column)
    }

    /// Runs a backfill (see [`crate::Backfill`]): chunks the host commits one
    /// by one, resumed from the last checkpoint by a later attempt.
    pub fn backfill(&self, backfill: crate::Backfill) -> Result<crate::BackfillReport> {
        crate::backfill::run(backfill)
    }

    /// Renames a node label everywhere, in chunks inside this step's transaction;
    /// returns how many nodes changed.
    pub fn rename_label(&self, from: &str, to: &str) -> Result<u64> {
        context::rename_label(from, to).map_err(|e| wire::graph_error(e).into())
    }

    /// Renames a relationship type everywhere; returns how many changed.
    pub fn rename_type(&self, from: &str, to: &str) -> Result<u64> {
        context::rename_type(from, to).map_err(|e| wire::graph_error(e).into())
    }

    /// Renames a property of nodes labelled `label`; returns how many changed.
    pub fn rename_node_property(&self, label: &str, from: &str, to: &str) -> Result<u64> {
        context::rename_property(Entity::Node, label, from, to)
            .map_err(|e| wire::graph_error(e).into())
    }

    /// Renames a property of relationships of type `rel_type`.
    pub fn rename_relationship_property(
        &self,
        rel_type: &str,
        from: &str,
        to: &str,
    ) -> Result<u64> {
        context::rename_property(Entity::Relationship, rel_type, from, to)
            .map_err(|e| wire::graph_error(e).into())
    }

    /// Sets `name` to `default` on nodes labelled `label` that lack it.
    pub fn add_node_property(
        &self,
        label: &str,
        name: &str,
        default: impl Into<Value>,
    ) -> Result<u64> {
        context::add_property(Entity::Node, label, name, &wire::to_wit(&default.into()))
            .map_err(|e| wire::graph_error(e).into())
    }

    /// Sets `name` to `default` on relationships of type `rel_type` that lack it.
    pub fn add_relationship_property(
        &self,
        rel_type: &str,
        name: &str,
        default: impl Into<Value>,
    ) -> Result<u64> {
        context::add_property(
            Entity::Relationship,
            rel_type,
            name,
            &wire::to_wit(&default.into()),
        )
        .map_err(|e| wire::graph_error(e).into())
    }

    /// Removes `name` from nodes labelled `label`.
    pub fn remove_node_property(&self, label: &str, name: &str) -> Result<u64> {
        context::remove_property(Entity::Node, label, name).map_err(|e| wire::graph_error(e).into())
    }

    /// Removes `name` from relationships of type `rel_type`.
    pub fn remove_relationship_property(&self, rel_type: &str, name: &str) -> Result<u64> {
        context::remove_property(Entity::Relationship, rel_type, name)
            .map_err(|e| wire::graph_error(e).into())
    }

    /// Begins a tracked batch: everything written through it is tagged, written in
    /// chunks that commit on their own, recorded in the ledger, and deleted again
    /// if the migration fails.
    pub fn begin_batch(&self, name: &str) -> crate::Batch {
        crate::Batch::new(context::begin_batch(name))
    }

    /// Deletes exactly what the batch with this id created; returns how many nodes
    /// and relationships went.
    pub fn delete_batch(&self, id: &str) -> Result<u64> {
        context::delete_batch(id).map_err(|e| wire::graph_error(e).into())
    }

    /// Creates a constraint unless one of that name exists; returns its name.
    ///
    /// Runs outside the data transaction; the host undoes it if the migration
    /// fails. A target that cannot do it answers [`Error::Unsupported`].
    pub fn create_constraint(&self, constraint: crate::schema::Constraint) -> Result<String> {
        context::create_constraint(&constraint.0).map_err(crate::schema::error)
    }

    /// Drops a constraint by name; absence is fine.
    pub fn drop_constraint(&self, name: &str) -> Result<()> {
        context::drop_constraint(name).map_err(crate::schema::error)
    }

    /// Creates an index unless one of that name exists; returns its name.
    pub fn create_index(&self, index: crate::schema::Index) -> Result<String> {
        context::create_index(&index.0).map_err(crate::schema::error)
    }

    /// Drops an index by name; absence is fine.
    pub fn drop_index(&self, name: &str) -> Result<()> {
        context::drop_index(name).map_err(crate::schema::error)
    }

    /// The live constraints and indexes.
    pub fn schema(&self) -> Result<Vec<crate::schema::SchemaElement>> {
        context::schema()
            .map(|elements| elements.into_iter().map(crate::schema::element).collect())
            .map_err(crate::schema::error)
    }

    /// Reads a file of the project's data folder (`data/`), by relative path.
    ///
    /// The host records every read (path, SHA-256, size) in its ledger.
    pub fn read_dataset(&self, path: &str) -> Result<Vec<u8>> {
        context::read_dataset(path).map_err(|e| {
            use crate::__private::bindings::graphmig::migration::types::DatasetError;
            Error::Dataset(match e {
                DatasetError::NotFound(m) => format!("{path}: not found: {m}"),
                DatasetError::Forbidden(m) => format!("{path}: forbidden: {m}"),
                DatasetError::Io(m) => format!("{path}: {m}"),
            })
        })
    }

    /// Reads a dataset as UTF-8 text.
    pub fn read_dataset_text(&self, path: &str) -> Result<String> {
        String::from_utf8(self.read_dataset(path)?)
            .map_err(|_| Error::Dataset(format!("{path}: not UTF-8 text")))
    }

    /// Logs a debug line.
    pub fn debug(&self, message: impl AsRef<str>) {
        context::log(LogLevel::Debug, message.as_ref());
    }

    /// Logs an informational line.
    pub fn info(&self, message: impl AsRef<str>) {
        context::log(LogLevel::Info, message.as_ref());
    }

    /// Logs a warning.
    pub fn warn(&self, message: impl AsRef<str>) {
        context::log(LogLevel::Warn, message.as_ref());
    }

    /// Logs an error line.
    pub fn error(&self, message: impl AsRef<str>) {
        context::log(LogLevel::Error, message.as_ref());
    }
}

/// The rows a statement returned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryResult {
    rows: Vec<Row>,
}

impl QueryResult {
    /// The rows, in the order the database sent them.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row came back.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The only row, or an error when there are none or several.
    pub fn single(self) -> Result<Row> {
        let found = self.rows.len();
        let mut rows = self.rows.into_iter();
        match (rows.next(), rows.next()) {
            (Some(row), None) => Ok(row),
            _ => Err(Error::RowCount { found }),
        }
    }
}

impl IntoIterator for QueryResult {
    type Item = Row;
    type IntoIter = std::vec::IntoIter<Row>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.into_iter()
    }
}

/// One result row: values by column name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(BTreeMap<String, Value>);

impl Row {
    /// The value of `column`, converted to `T`.
    pub fn get<T: FromValue>(&self, column: &str) -> Result<T> {
        let value = self
            .0
            .get(column)
            .ok_or_else(|| Error::MissingColumn(column.to_string()))?;
        T::from_value(value)
    }

    /// The raw value of `column`, if present.
    pub fn value(&self, column: &str) -> Option<&Value> {
        self.0.get(column)
    }

    /// The column names, sorted.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}
