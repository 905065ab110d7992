//! The graph database over Bolt: connecting, transactions and error classification.

pub mod agent;
pub mod batch;
pub mod constraint_check;
pub mod history;
pub mod intent;
pub mod lock;
pub mod progress;
pub mod relay;

pub use neo4rs::summary::Counters;

/// Counters as a short phrase: `+2 nodes, 4 properties set`; empty when nothing
/// changed.
pub fn describe_counters(c: &Counters) -> String {
    let parts = [
        (c.nodes_created, "+", "node(s)"),
        (c.nodes_deleted, "-", "node(s)"),
        (c.relationships_created, "+", "relationship(s)"),
        (c.relationships_deleted, "-", "relationship(s)"),
        (c.properties_set, "", "propert(ies) set"),
        (c.labels_added, "+", "label(s)"),
        (c.labels_removed, "-", "label(s)"),
        (c.indexes_added, "+", "index(es)"),
        (c.indexes_removed, "-", "index(es)"),
        (c.constraints_added, "+", "constraint(s)"),
        (c.constraints_removed, "-", "constraint(s)"),
    ];
    parts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, sign, what)| format!("{sign}{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

use std::collections::BTreeSet;
use std::sync::Arc;

use neo4rs::{BoltType, ConfigBuilder, Graph, Txn};

use crate::config::DatabaseSettings;
use crate::error::Error;
use crate::schema::{Constraint, Dialect, Index};

/// How the host classifies a failed statement (mirrors the WIT `graph-error-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphErrorKind {
    /// Not valid Cypher.
    Syntax,
    /// A constraint was violated.
    ConstraintViolation,
    /// Temporary; the migration may succeed if run again.
    Transient,
    /// Refused by policy or security.
    Forbidden,
    /// Anything else.
    Other,
}

/// A failed statement or commit, with the server's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// The class of failure.
    pub kind: GraphErrorKind,
    /// The server's code, or a `graphmig.*` code for host-side failures.
    pub code: String,
    /// The message.
    pub message: String,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl GraphError {
    /// A failure to reach the database (connecting, beginning), as a graph error.
    pub fn database(error: Error) -> GraphError {
        GraphError {
            kind: GraphErrorKind::Other,
            code: "graphmig.Database".into(),
            message: error.to_string(),
        }
    }

    /// Classifies a Neo4j status code.
    pub fn from_code(code: &str, message: impl Into<String>) -> GraphError {
        let kind = if code.starts_with("Neo.TransientError.") {
            GraphErrorKind::Transient
        } else if code == "Neo.ClientError.Statement.SyntaxError" {
            GraphErrorKind::Syntax
        } else if code.starts_with("Neo.ClientError.Schema.ConstraintValidationFailed")
            || code == "Neo.ClientError.Schema.ConstraintViolation"
        {
            GraphErrorKind::ConstraintViolation
        } else if code.starts_with("Neo.ClientError.Security.") {
            GraphErrorKind::Forbidden
        } else {
            GraphErrorKind::Other
        };
        GraphError {
            kind,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// Maps a driver error. neo4rs reports some server failures (notably a
    /// constraint violation surfacing at COMMIT) as unexpected messages whose text
    /// carries the `Failure{code, message}`; those are parsed back into a code.
    pub fn from_driver(error: &neo4rs::Error) -> GraphError {
        match error {
            neo4rs::Error::Neo4j(e) => GraphError::from_code(e.code(), e.message()),
            neo4rs::Error::UnexpectedMessage(text) => match parse_failure(text) {
                Some((code, message)) => GraphError::from_code(&code, message),
                None => GraphError {
                    kind: GraphErrorKind::Other,
                    code: "graphmig.Driver".into(),
                    message: text.clone(),
                },
            },
            other => GraphError {
                kind: GraphErrorKind::Other,
                code: "graphmig.Driver".into(),
                message: other.to_string(),
            },
        }
    }
}

/// Pulls `code` and `message` out of a debug-printed Bolt `Failure{...}`, whose
/// entries print as `BoltString { value: "code" }: String(BoltString { value: "..." })`.
fn parse_failure(text: &str) -> Option<(String, String)> {
    let code = debug_string_after(text, "\"code\"")?;
    let message = debug_string_after(text, "\"message\"").unwrap_or_else(|| text.to_string());
    Some((code, message))
}

/// The Debug-escaped string that follows `key` as `value: "..."`, unescaped.
fn debug_string_after(text: &str, key: &str) -> Option<String> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = &rest[rest.find("value: \"")? + "value: \"".len()..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// A connected graph database.
pub struct GraphDb {
    graph: Graph,
    /// What the driver's connections go through ([`relay`]); kept for as long
    /// as the pools are.
    _relay: relay::Relay,
    relay_state: Arc<relay::RelayState>,
    /// The pool of the migration user, when one is configured: migrations' own
    /// transactions run on it, bookkeeping on `graph`.
    migration_graph: Option<Graph>,
    settings: DatabaseSettings,
    agent: String,
    dialect: Dialect,
}

impl std::fmt::Debug for GraphDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphDb")
            .field("uri", &self.settings.uri)
            .field("database", &self.settings.database)
            .finish_non_exhaustive()
    }
}

impl GraphDb {
    /// Connects and proves the connection with a query, within the connect timeout.
    ///
    /// A refused connection, a wrong password or a missing database all fail here,
    /// quickly and with a message that names the URI and database but never the
    /// password.
    pub async fn connect(settings: &DatabaseSettings) -> Result<GraphDb, Error> {
        let fail = |message: String| Error::Connect {
            uri: settings.uri.clone(),
            database: settings.database.clone(),
            message,
        };
        let target = RelayTarget::parse(&settings.uri).map_err(&fail)?;
        let (relay, relay_state) = relay::Relay::start(
            &target.host,
            target.port,
            target.tls,
            target.routing,
            settings.connect_timeout,
        )
        .map_err(|e| {
            fail(format!(
                "cannot start graphmig's Bolt relay on 127.0.0.1: {e}"
            ))
        })?;
        let driver_uri = target.driver_uri(relay.local_addr());
        let config = pool_config(
            settings,
            &driver_uri,
            &settings.user,
            settings.password.expose(),
        )
        .map_err(|e| fail(redact(&e.to_string(), settings)))?;
        let probe = async {
            let graph = Graph::connect(config)?;
            // A transaction, unlike Graph::run, is not retried with backoff by the
            // driver, so a wrong password fails at once instead of after a minute.
            let mut txn = graph.start_txn_on(settings.database.as_str()).await?;
            let mut rows = txn
                .execute(neo4rs::query(
                    "CALL dbms.components() YIELD name, versions RETURN name, versions",
                ))
                .await;
            let agent = match rows.as_mut() {
                Ok(stream) => {
                    let mut agent = String::new();
                    while let Some(row) = stream.next(txn.handle()).await? {
                        let name: String = row.get("name").unwrap_or_default();
                        let versions: Vec<String> = row.get("versions").unwrap_or_default();
                        agent = format!("{name} {}", versions.join(","));
                    }
                    agent
                }
                // Not every server has dbms.components(); a plain query proves the
                // connection just as well.
                Err(_) => String::from("unknown"),
            };
            txn.rollback().await?;
            Ok::<_, neo4rs::Error>((graph, agent))
        };
        match tokio::time::timeout(settings.connect_timeout, probe).await {
            Err(_) => Err(fail(format!(
                "no answer within {} s (is the server running and the URI right?)",
                settings.connect_timeout.as_secs()
            ))),
            Ok(Err(e)) => Err(fail(match relay_state.take_upstream_error() {
                // The driver only saw the relay close; the relay knows why.
                Some(why) if matches!(e, neo4rs::Error::IOError { .. }) => why,
                _ => describe_connect_error(&e, settings),
            })),
            Ok(Ok((graph, components))) => {
                // Through the relay, so that a TLS server is asked too.
                let announced = agent::server_agent(
                    &driver_uri,
                    &settings.user,
                    settings.password.expose(),
                    settings.connect_timeout,
                )
                .await;
                let detected = announced.as_deref().and_then(Dialect::from_agent);
                // The configured dialect wins; then the announced agent; then the
                // kernel version (which cannot tell ArcadeDB apart).
                let dialect =
                    settings
                        .dialect
                        .or(detected)
                        .unwrap_or(if components.contains(" 4.") {
                            Dialect::Neo4j44
                        } else {
                            Dialect::Neo4j5
                        });
                let migration_graph = match &settings.migration_user {
                    Some(user) => Some(connect_migration_user(settings, &driver_uri, user).await?),
                    None => None,
                };
                Ok(GraphDb {
                    graph,
                    _relay: relay,
                    relay_state,
                    migration_graph,
                    settings: settings.clone(),
                    agent: announced.unwrap_or(components),
                    dialect,
                })
            }
        }
    }

    /// What the server said it is.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The Cypher dialect schema operations are rendered in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Runs one schema statement in a transaction of its own, as Neo4j wants
    /// schema changes run (never beside data writes). An explicit BEGIN, RUN
    /// and COMMIT, not an auto-commit RUN: measured on ArcadeDB, an index
    /// created in auto-commit took about 2 ms longer. A transient failure
    /// (a lock held by another transaction, say) is tried twice more.
    pub async fn run_schema(&self, statement: &str) -> Result<Counters, GraphError> {
        let mut attempt = 1;
        loop {
            let result: Result<Counters, GraphError> = async {
                let mut txn = self.begin().await.map_err(|e| GraphError {
                    kind: GraphErrorKind::Other,
                    code: "graphmig.Database".into(),
                    message: e.to_string(),
                })?;
                let counters = txn.run_discarding(statement, Vec::new()).await?;
                txn.commit().await?;
                Ok(counters)
            }
            .await;
            match result {
                Err(e) if e.kind == GraphErrorKind::Transient && attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Runs one statement in an implicit (auto-commit) transaction as the
    /// migration user, as `CALL { ... } IN TRANSACTIONS` must run: the server
    /// commits its inner transactions as it goes. Rows are not read.
    ///
    /// neo4rs retries a statement run this way when the server calls its
    /// failure transient; graphmig only sends it this way for `IN
    /// TRANSACTIONS`, whose committed inner transactions a retry would repeat,
    /// which the README says.
    pub async fn run_autocommit(
        &self,
        query: &str,
        params: Vec<(String, BoltType)>,
    ) -> Result<Counters, GraphError> {
        let graph = self.migration_graph.as_ref().unwrap_or(&self.graph);
        let mut q = neo4rs::query(query);
        for (name, value) in params {
            q = q.param(&name, value);
        }
        graph
            .run_on(self.settings.database.as_str(), q)
            .await
            .map(|summary| *summary.stats())
            .map_err(|e| GraphError::from_driver(&e))
    }

    /// Copies a backfill's checkpoint into the history database (as the
    /// owner), when that is a database of its own.
    pub async fn mirror_backfill(
        &self,
        migration: &str,
        name: &str,
        mark: &progress::BackfillMark,
        attempt: &str,
    ) -> Result<(), GraphError> {
        let mut txn = self.begin_history().await.map_err(GraphError::database)?;
        match txn.write_backfill(migration, name, mark, attempt).await {
            Ok(()) => txn.commit().await,
            Err(e) => {
                let _ = txn.rollback().await;
                Err(e)
            }
        }
    }

    /// Removes `migration`'s checkpoint copies from the history database.
    pub async fn clear_backfill_mirror(&self, migration: &str) -> Result<(), GraphError> {
        let mut txn = self.begin_history().await.map_err(GraphError::database)?;
        match txn.clear_progress(migration).await {
            Ok(()) => txn.commit().await,
            Err(e) => {
                let _ = txn.rollback().await;
                Err(e)
            }
        }
    }

    /// The backfill checkpoints, for `status`: those in the target, committed
    /// with their chunks, first; then the history database's copies of any
    /// other. The copy is written after its chunk commits, so it can lag the
    /// target by a chunk when a runner dies in between.
    pub async fn backfill_checkpoints(
        &self,
    ) -> Result<Vec<crate::journal::BackfillCheckpoint>, GraphError> {
        let mut txn = self.begin().await.map_err(GraphError::database)?;
        let listed = txn.list_backfills().await;
        let _ = txn.rollback().await;
        let mut checkpoints = listed?;
        let mut txn = self.begin_history().await.map_err(GraphError::database)?;
        let copies = txn.list_backfills().await;
        let _ = txn.rollback().await;
        for copy in copies? {
            if !checkpoints
                .iter()
                .any(|c| c.migration == copy.migration && c.name == copy.name)
            {
                checkpoints.push(copy);
            }
        }
        Ok(checkpoints)
    }

    /// The names of every live constraint and index, each with whether it is
    /// a constraint: what a failed schema statement may have left behind is
    /// what is in this list afterwards and was not before.
    pub async fn schema_names(&self) -> Result<BTreeSet<(bool, String)>, GraphError> {
        let mut txn = self.begin().await.map_err(GraphError::database)?;
        let constraints = txn.run("SHOW CONSTRAINTS", Vec::new()).await;
        let indexes = txn.run("SHOW INDEXES", Vec::new()).await;
        let _ = txn.rollback().await;
        let mut names = BTreeSet::new();
        for (constraint, rows) in [(true, constraints?), (false, indexes?)] {
            for row in &rows {
                if let Some(name) = history::text(row, "name") {
                    names.insert((constraint, name));
                }
            }
        }
        Ok(names)
    }

    /// The live constraints and the indexes no constraint owns.
    pub async fn list_schema(&self) -> Result<(Vec<Constraint>, Vec<Index>), GraphError> {
        use history::{strings, text};
        let mut txn = self.begin().await.map_err(|e| GraphError {
            kind: GraphErrorKind::Other,
            code: "graphmig.Database".into(),
            message: e.to_string(),
        })?;
        let constraints = txn.run("SHOW CONSTRAINTS", Vec::new()).await?;
        let indexes = txn.run("SHOW INDEXES", Vec::new()).await?;
        let _ = txn.rollback().await;
        let constraints = constraints
            .iter()
            .filter_map(|row| {
                crate::schema::constraint_from_show(
                    text(row, "name")?,
                    &text(row, "type")?,
                    &text(row, "entityType").unwrap_or_default(),
                    strings(row, "labelsOrTypes"),
                    strings(row, "properties"),
                    text(row, "propertyType"),
                )
            })
            .filter(|c| !c.label.starts_with("__Graphmig"))
            .collect();
        let indexes = indexes
            .iter()
            .filter(|row| text(row, "owningConstraint").is_none())
            .filter_map(|row| {
                crate::schema::index_from_show(
                    text(row, "name")?,
                    &text(row, "type")?,
                    &text(row, "entityType").unwrap_or_default(),
                    strings(row, "labelsOrTypes"),
                    strings(row, "properties"),
                )
            })
            .filter(|i| !i.labels.iter().any(|l| l.starts_with("__Graphmig")))
            .collect();
        Ok((constraints, indexes))
    }

    /// A key naming this URI and database, used to keep ledgers of several
    /// databases apart.
    pub fn target_key(&self) -> String {
        target_key(&self.settings)
    }

    /// Starts an explicit transaction on the configured database.
    pub async fn begin(&self) -> Result<GraphTxn, Error> {
        let graph = self.migration_graph.as_ref().unwrap_or(&self.graph);
        self.begin_on(graph, &self.settings.database).await
    }

    /// The user migrations' statements run as: the migration user if configured,
    /// else the owner.
    pub fn migration_user(&self) -> &str {
        self.settings
            .migration_user
            .as_ref()
            .map_or(&self.settings.user, |m| &m.user)
    }

    /// An explicit transaction on `database` as the migration user (the owner if
    /// none is configured), for `graphmig doctor`'s probes of what the server
    /// refuses that user.
    pub async fn begin_as_migration_user_on(&self, database: &str) -> Result<GraphTxn, Error> {
        let graph = self.migration_graph.as_ref().unwrap_or(&self.graph);
        self.begin_on(graph, database).await
    }

    /// Starts an explicit transaction on the database holding the history and
    /// the lock (the target database unless configured otherwise).
    pub async fn begin_history(&self) -> Result<GraphTxn, Error> {
        self.begin_on(&self.graph, self.history_database()).await
    }

    /// An explicit transaction on `database` as the owner user (bookkeeping).
    pub async fn begin_as_owner_on(&self, database: &str) -> Result<GraphTxn, Error> {
        self.begin_on(&self.graph, database).await
    }

    /// How long bookkeeping waits for the server ([`DatabaseSettings::grace`]).
    pub fn grace(&self) -> std::time::Duration {
        self.settings.grace
    }

    /// The database holding the history and the lock.
    pub fn history_database(&self) -> &str {
        self.settings
            .history_database
            .as_deref()
            .unwrap_or(&self.settings.database)
    }

    /// Whether a migration's history entry is written apart from its
    /// transaction: by the owner, right after the data commits with a marker. So
    /// it is when the history lives in a database of its own, and when
    /// migrations run as a migration user, who may not write the history.
    pub fn history_written_apart(&self) -> bool {
        self.history_is_separate() || self.migration_graph.is_some()
    }

    /// Whether the history lives in a database of its own, so that it cannot
    /// share the migration's transaction.
    pub fn history_is_separate(&self) -> bool {
        self.history_database() != self.settings.database
    }

    async fn begin_on(&self, graph: &Graph, database: &str) -> Result<GraphTxn, Error> {
        let txn = tokio::time::timeout(self.settings.connect_timeout, graph.start_txn_on(database))
            .await
            .map_err(|_| Error::Database {
                uri: self.settings.uri.clone(),
                message: "no answer to BEGIN".into(),
            })?
            .map_err(|e| Error::Database {
                uri: self.settings.uri.clone(),
                message: match &e {
                    neo4rs::Error::Neo4j(n)
                        if n.code().contains("DatabaseNotFound")
                            && self.history_is_separate()
                            && database == self.history_database() =>
                    {
                        format!(
                            "graphmig's history database `{database}` does not exist: create it \
                             (Neo4j: CREATE DATABASE {database}; ArcadeDB: scripts/arcadedb.sh \
                             create-db PORT {database}), or remove `[history] database` from \
                             graphmig.toml to keep the history in the target database"
                        )
                    }
                    _ => redact(&e.to_string(), &self.settings),
                },
            })?;
        Ok(GraphTxn {
            txn,
            failed: false,
            relay: Arc::clone(&self.relay_state),
        })
    }
}

/// Sets the relay's cap for one bounded statement (a migration's) and puts
/// it back however the statement ends (a deadline drops the future mid-read).
/// The host's own unbounded statements leave the cap alone: the lock's
/// heartbeat, reading on another connection while a migration's statement
/// runs, must not lift that statement's cap when it ends.
struct CapGuard(Option<Arc<relay::RelayState>>);

impl CapGuard {
    fn set(state: &Arc<relay::RelayState>, bytes: u64) -> CapGuard {
        if bytes >= relay::UNBOUNDED_CAP {
            return CapGuard(None);
        }
        state.set_cap(bytes);
        CapGuard(Some(Arc::clone(state)))
    }
}

impl Drop for CapGuard {
    fn drop(&mut self) {
        if let Some(state) = &self.0 {
            state.reset_cap();
        }
    }
}

/// Where the relay connects and what the driver is told instead.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RelayTarget {
    host: String,
    port: u16,
    tls: relay::Tls,
    routing: bool,
    /// The URI's query (a `neo4j://` routing context), kept for the driver.
    query: String,
}

impl RelayTarget {
    fn parse(uri: &str) -> Result<RelayTarget, String> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| format!("`{uri}` has no scheme"))?;
        let (routing, tls) = match scheme {
            "bolt" => (false, relay::Tls::Off),
            "bolt+s" => (false, relay::Tls::Verified),
            "bolt+ssc" => (false, relay::Tls::SelfSigned),
            "neo4j" => (true, relay::Tls::Off),
            "neo4j+s" => (true, relay::Tls::Verified),
            "neo4j+ssc" => (true, relay::Tls::SelfSigned),
            other => return Err(format!("the scheme `{other}://` is not supported")),
        };
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, q.to_string()),
            None => (rest, String::new()),
        };
        let authority = authority.trim_end_matches('/');
        if authority.contains(['/', '@']) {
            return Err(format!(
                "`{uri}`: give host and port only (the user goes in GRAPHMIG_USER, the \
                 database in [database] name)"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{uri}`: an unclosed `[`"))?;
            (host.to_string(), after.strip_prefix(':').unwrap_or(""))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), port),
                None => (authority.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(format!("`{uri}` names no host"));
        }
        let port = if port.is_empty() {
            7687
        } else {
            port.parse()
                .map_err(|_| format!("`{uri}`: `{port}` is not a port"))?
        };
        Ok(RelayTarget {
            host,
            port,
            tls,
            routing,
            query,
        })
    }

    /// The URI the driver connects to: plain Bolt to the relay.
    fn driver_uri(&self, relay: std::net::SocketAddr) -> String {
        let scheme = if self.routing { "neo4j" } else { "bolt" };
        if self.query.is_empty() {
            format!("{scheme}://{relay}")
        } else {
            format!("{scheme}://{relay}?{}", self.query)
        }
    }
}

/// The ledger key for a database: the URI without its scheme, and the database name.
pub fn target_key(settings: &DatabaseSettings) -> String {
    let address = settings
        .uri
        .split_once("://")
        .map_or(settings.uri.as_str(), |(_, rest)| rest);
    format!("{}/{}", address.trim_end_matches('/'), settings.database)
}

/// What to check when a login fails. ArcadeDB answers a login refused for
/// too many failed attempts with the same message as a wrong password.
const AUTH_HINT: &str = "(check GRAPHMIG_USER and GRAPHMIG_PASSWORD; after many failed logins ArcadeDB refuses even the right password for a while)";

const MIGRATION_AUTH_HINT: &str = "(check database.migration-user and GRAPHMIG_MIGRATION_PASSWORD; `graphmig privileges` shows how the user is set up)";

fn describe_connect_error(error: &neo4rs::Error, settings: &DatabaseSettings) -> String {
    describe_login_error(error, settings, &settings.user, AUTH_HINT)
}

fn describe_login_error(
    error: &neo4rs::Error,
    settings: &DatabaseSettings,
    user: &str,
    hint: &str,
) -> String {
    let text = match error {
        neo4rs::Error::IOError { detail } => format!("{detail}"),
        neo4rs::Error::AuthenticationError(m) => {
            format!("authentication failed for user `{user}`: {m} {hint}")
        }
        neo4rs::Error::Neo4j(e) if e.code().starts_with("Neo.ClientError.Security.") => format!(
            "authentication failed for user `{user}`: {} {hint}",
            e.message()
        ),
        neo4rs::Error::Neo4j(e) if e.code().contains("DatabaseNotFound") => format!(
            "the server has no database `{}`: {}",
            settings.database,
            e.message()
        ),
        other => other.to_string(),
    };
    redact(&text, settings)
}

/// Removes the passwords from a message, should a driver ever echo one.
fn redact(text: &str, settings: &DatabaseSettings) -> String {
    let mut text = text.to_string();
    let migration = settings
        .migration_user
        .as_ref()
        .map(|m| m.password.expose());
    for password in std::iter::once(settings.password.expose()).chain(migration) {
        if !password.is_empty() {
            text = text.replace(password, "***");
        }
    }
    text
}

/// The driver configuration of a pool of `user` on the target database.
fn pool_config(
    settings: &DatabaseSettings,
    driver_uri: &str,
    user: &str,
    password: &str,
) -> Result<neo4rs::Config, neo4rs::Error> {
    ConfigBuilder::default()
        .uri(driver_uri)
        .user(user)
        .password(password)
        .db(settings.database.as_str())
        .max_connections(4)
        // neo4rs waits 30 s for an answer by default: a statement its deadline
        // allows to run longer would be cut off, so the wait follows the deadline.
        .connection_timeout(settings.read_timeout)
        .build()
}

/// Opens the migration user's pool and proves its login with a transaction on
/// the target database, within the connect timeout.
async fn connect_migration_user(
    settings: &DatabaseSettings,
    driver_uri: &str,
    user: &crate::config::MigrationUser,
) -> Result<Graph, Error> {
    let fail = |message: String| Error::Connect {
        uri: settings.uri.clone(),
        database: settings.database.clone(),
        message: format!("as the migration user: {message}"),
    };
    if user.password.expose().is_empty() {
        return Err(fail(format!(
            "database.migration-user is `{}` but GRAPHMIG_MIGRATION_PASSWORD is not set",
            user.user
        )));
    }
    let config = pool_config(settings, driver_uri, &user.user, user.password.expose())
        .map_err(|e| fail(redact(&e.to_string(), settings)))?;
    let probe = async {
        let graph = Graph::connect(config)?;
        let mut txn = graph.start_txn_on(settings.database.as_str()).await?;
        txn.run(neo4rs::query("RETURN 1")).await?;
        txn.rollback().await?;
        Ok::<_, neo4rs::Error>(graph)
    };
    match tokio::time::timeout(settings.connect_timeout, probe).await {
        Err(_) => Err(fail(format!(
            "no answer within {} s",
            settings.connect_timeout.as_secs()
        ))),
        Ok(Err(e)) => Err(fail(redact(
            &describe_login_error(&e, settings, &user.user, MIGRATION_AUTH_HINT),
            settings,
        ))),
        Ok(Ok(graph)) => Ok(graph),
    }
}

/// How much of a result the host may still take in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultBudget {
    /// Rows.
    pub rows: u64,
    /// Bytes, as the caller weighs them.
    pub bytes: u64,
}

/// How far a result went past its [`ResultBudget`] before the host stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overrun {
    /// This many rows had arrived.
    Rows(u64),
    /// This many bytes had arrived.
    Bytes(u64),
    /// The relay stopped records that would have cost the driver this many
    /// bytes to decode, before the driver read them.
    Undecoded(u64),
}

/// One open explicit transaction.
pub struct GraphTxn {
    txn: Txn,
    failed: bool,
    relay: Arc<relay::RelayState>,
}

impl std::fmt::Debug for GraphTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphTxn").finish_non_exhaustive()
    }
}

impl GraphTxn {
    /// Runs a statement and collects its rows (column name and value).
    pub async fn run(
        &mut self,
        query: &str,
        params: Vec<(String, BoltType)>,
    ) -> Result<Vec<Vec<(String, BoltType)>>, GraphError> {
        self.run_counted(query, params).await.map(|(rows, _)| rows)
    }

    /// Runs a statement and returns its rows and the server's update counters.
    pub async fn run_counted(
        &mut self,
        query: &str,
        params: Vec<(String, BoltType)>,
    ) -> Result<(Vec<Vec<(String, BoltType)>>, Counters), GraphError> {
        let unbounded = ResultBudget {
            rows: u64::MAX,
            bytes: u64::MAX,
        };
        match self
            .run_within(query, params, unbounded, |row| (row, 0))
            .await?
        {
            Ok((rows, counters, _)) => Ok((rows, counters)),
            // Nothing passes an unbounded budget.
            Err(_) => Err(GraphError {
                kind: GraphErrorKind::Other,
                code: "graphmig.LimitExceeded".into(),
                message: "a result passed an unbounded budget".into(),
            }),
        }
    }

    /// Runs a statement and reads its rows as they arrive, each handed to `take`
    /// (which turns it into what the caller keeps and says how many bytes that
    /// holds), stopping as soon as they pass `budget`: the host never holds more
    /// than the budget plus one record. `Ok(Err(overrun))` says how far past the
    /// budget the rows went; the transaction is then doomed (the rest stays on
    /// the server until the rollback discards it).
    pub async fn run_within<R>(
        &mut self,
        query: &str,
        params: Vec<(String, BoltType)>,
        budget: ResultBudget,
        mut take: impl FnMut(Vec<(String, BoltType)>) -> (R, u64) + Send,
    ) -> Result<Result<(Vec<R>, Counters, u64), Overrun>, GraphError> {
        let mut q = neo4rs::query(query);
        for (name, value) in params {
            q = q.param(&name, value);
        }
        // What the driver will buffer of this result is bounded by the relay
        // before it reads it; the rows the host keeps, here as they arrive.
        let _cap = CapGuard::set(&self.relay, budget.bytes);
        let failed = &mut self.failed;
        let relay = &self.relay;
        let mut fail = |e: neo4rs::Error| {
            *failed = true;
            match relay.take_cut() {
                Some(relay::Cut::Weight { weight, .. }) => Ok(Overrun::Undecoded(weight)),
                Some(cut @ relay::Cut::Malformed(_)) => Err(GraphError {
                    kind: GraphErrorKind::Other,
                    code: "graphmig.Malformed".into(),
                    message: cut.to_string(),
                }),
                None => Err(GraphError::from_driver(&e)),
            }
        };
        let mut stream = match self.txn.execute(q).await {
            Ok(stream) => stream,
            Err(e) => return fail(e).map(Err),
        };
        let mut rows = Vec::new();
        let mut bytes = 0u64;
        loop {
            let row = match stream.next(self.txn.handle()).await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => return fail(e).map(Err),
            };
            let map: std::collections::HashMap<String, BoltType> =
                row.to().map_err(|e| GraphError {
                    kind: GraphErrorKind::Other,
                    code: "graphmig.Decode".into(),
                    message: e.to_string(),
                })?;
            let (kept, weight) = take(map.into_iter().collect());
            bytes += weight;
            rows.push(kept);
            let overrun = if rows.len() as u64 > budget.rows {
                Some(Overrun::Rows(rows.len() as u64))
            } else if bytes > budget.bytes {
                Some(Overrun::Bytes(bytes))
            } else {
                None
            };
            if let Some(overrun) = overrun {
                self.failed = true;
                return Ok(Err(overrun));
            }
        }
        let summary = match stream.finish(self.txn.handle()).await {
            Ok(summary) => summary,
            Err(e) => return fail(e).map(Err),
        };
        Ok(Ok((rows, *summary.stats(), bytes)))
    }

    /// Runs a statement whose rows nobody reads and returns its counters: RUN
    /// and DISCARD go out together, one round trip instead of two.
    pub async fn run_discarding(
        &mut self,
        query: &str,
        params: Vec<(String, BoltType)>,
    ) -> Result<Counters, GraphError> {
        let mut q = neo4rs::query(query);
        for (name, value) in params {
            q = q.param(&name, value);
        }
        match self.txn.run(q).await {
            Ok(summary) => Ok(*summary.stats()),
            Err(e) => {
                self.failed = true;
                Err(GraphError::from_driver(&e))
            }
        }
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), GraphError> {
        self.txn
            .commit()
            .await
            .map(|_bookmark| ())
            .map_err(|e| GraphError::from_driver(&e))
    }

    /// Marks a statement given up half-read (its deadline passed): what the
    /// connection will answer next is unknown, so [`Self::rollback`] sends
    /// nothing and the pool resets the connection, which ends the transaction.
    pub fn abandon(&mut self) {
        self.failed = true;
    }

    /// Rolls back. A failure here is reported, though the server also drops the
    /// transaction when the connection closes.
    pub async fn rollback(self) -> Result<(), GraphError> {
        if self.failed {
            // After a FAILURE the server answers IGNORED to everything until the
            // connection is RESET, which the pool does before reusing it; RESET
            // ends the transaction, so an explicit ROLLBACK would only be ignored.
            return Ok(());
        }
        self.txn
            .rollback()
            .await
            .map_err(|e| GraphError::from_driver(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_commit_failure_into_code_and_message() {
        let text = r#"unexpected response for COMMIT: Failure(Failure { metadata: BoltMap { value: {BoltString { value: "code" }: String(BoltString { value: "Neo.ClientError.Schema.ConstraintValidationFailed" }), BoltString { value: "message" }: String(BoltString { value: "Duplicated key [x] on \"Person\"" })} } })"#;
        let e = GraphError::from_driver(&neo4rs::Error::UnexpectedMessage(text.into()));
        assert_eq!(e.kind, GraphErrorKind::ConstraintViolation);
        assert_eq!(e.code, "Neo.ClientError.Schema.ConstraintValidationFailed");
        assert_eq!(e.message, "Duplicated key [x] on \"Person\"");
    }

    #[test]
    fn classifies_codes() {
        let kind = |c| GraphError::from_code(c, "").kind;
        assert_eq!(
            kind("Neo.ClientError.Statement.SyntaxError"),
            GraphErrorKind::Syntax
        );
        assert_eq!(
            kind("Neo.TransientError.Transaction.DeadlockDetected"),
            GraphErrorKind::Transient
        );
        assert_eq!(
            kind("Neo.ClientError.Security.Forbidden"),
            GraphErrorKind::Forbidden
        );
        assert_eq!(
            kind("Neo.DatabaseError.General.UnknownError"),
            GraphErrorKind::Other
        );
    }
}
