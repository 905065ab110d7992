//! Errors a migration step sees and returns.

use std::fmt;

/// Result of a migration step or a context call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a statement failed, as the host classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphErrorKind {
    /// Not valid Cypher for the target.
    Syntax,
    /// A constraint was violated.
    ConstraintViolation,
    /// Temporary; running the migration again may succeed.
    Transient,
    /// Refused by the host's policy or the database's security.
    Forbidden,
    /// Anything else.
    Other,
}

/// A failed statement: its class, the server's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// The class of failure.
    pub kind: GraphErrorKind,
    /// The server's status code, such as `Neo.ClientError.Statement.SyntaxError`.
    pub code: String,
    /// The server's message.
    pub message: String,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for GraphError {}

/// Everything that can make a migration step fail.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A statement failed.
    Graph(GraphError),
    /// A row had no column of that name.
    MissingColumn(String),
    /// A value was not of the type asked for.
    Decode {
        /// The type asked for.
        expected: &'static str,
        /// The kind of value found.
        found: &'static str,
    },
    /// A query expected to return exactly one row returned another number.
    RowCount {
        /// How many rows came back.
        found: usize,
    },
    /// A dataset could not be read.
    Dataset(String),
    /// The target database cannot do this schema operation.
    Unsupported(String),
    /// The migration's own failure message.
    Message(String),
}

impl Error {
    /// A failure with the migration's own message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Message(message.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Graph(e) => write!(f, "statement failed: {e}"),
            Error::MissingColumn(c) => write!(f, "the result has no column `{c}`"),
            Error::Decode { expected, found } => write!(f, "expected {expected}, found {found}"),
            Error::RowCount { found } => write!(f, "expected exactly one row, got {found}"),
            Error::Dataset(m) => write!(f, "dataset {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Message(m) => f.write_str(m),
        }
    }
}

// The graph error's text is part of this error's message, so it is not also a source.
impl std::error::Error for Error {}

impl From<GraphError> for Error {
    fn from(e: GraphError) -> Self {
        Error::Graph(e)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Message(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Message(message.to_string())
    }
}
