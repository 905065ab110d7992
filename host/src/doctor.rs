//! `graphmig doctor`: which dangerous operations the server itself refuses the
//! migration user, and which rest on graphmig's Cypher policy alone.

use crate::config::DatabaseSettings;
use crate::graph::GraphDb;
use crate::schema::Dialect;

/// Who stops an operation a hostile migration might try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The server refuses it to the migration user.
    Server,
    /// Only graphmig's Cypher policy stands in the way.
    PolicyOnly,
}

impl Guard {
    /// Lowercase name, for output.
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Server => "server",
            Guard::PolicyOnly => "policy only",
        }
    }
}

/// One check of `graphmig doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A short stable name: `migration-user`, `history-database`, `security`,
    /// `history-access`, `load-csv`.
    pub check: &'static str,
    /// What a hostile migration would try.
    pub operation: String,
    /// Who stops it.
    pub guard: Guard,
    /// What was seen, and the way to a server-enforced setup where there is none.
    pub detail: String,
}

/// The risks in the configuration alone, one sentence each: what `run` warns
/// about once before it starts.
pub fn configuration_risks(settings: &DatabaseSettings) -> Vec<String> {
    let mut risks = Vec::new();
    if settings.migration_user.is_none() {
        risks.push(format!(
            "migrations connect as `{}`, the owner user: only graphmig's Cypher policy stands \
             between a migration and the server (set database.migration-user; see `graphmig \
             doctor` and `graphmig privileges`)",
            settings.user
        ));
    }
    if settings
        .history_database
        .as_deref()
        .is_none_or(|h| h == settings.database)
    {
        risks.push(
            "graphmig's history and lock are in the target database, within a migration's \
             reach (set [history] database to a database of their own)"
                .to_string(),
        );
    }
    risks
}

fn refused(error: &crate::graph::GraphError) -> bool {
    error.code.contains("Security") || error.kind == crate::graph::GraphErrorKind::Forbidden
}

/// Runs `statement` on `database` as the migration user in a transaction that is
/// always rolled back; `Err` holds the server's refusal or failure.
async fn attempt(db: &GraphDb, database: &str, statement: &str) -> Result<(), String> {
    let mut txn = db
        .begin_as_migration_user_on(database)
        .await
        .map_err(|e| e.to_string())?;
    let outcome = txn.run(statement, Vec::new()).await;
    let _ = txn.rollback().await;
    match outcome {
        Ok(_) => Ok(()),
        Err(e) if refused(&e) => Err(format!("refused: {}", e.message)),
        Err(e) => Err(format!("failed: {}: {}", e.code, e.message)),
    }
}

fn probe_name() -> String {
    let key = crate::journal::new_attempt_key();
    format!("graphmig_doctor_{}", &key[..12])
}

/// Checks the live target: connects as the migration user and tries what a
/// hostile migration would (each in a transaction rolled back; a user the
/// server lets it create is dropped again as the owner).
pub async fn diagnose(db: &GraphDb, settings: &DatabaseSettings) -> Vec<Finding> {
    let mut findings = Vec::new();
    let separate = db.history_is_separate();
    match &settings.migration_user {
        None => findings.push(Finding {
            check: "migration-user",
            operation: "connect as a user the server limits".into(),
            guard: Guard::PolicyOnly,
            detail: format!(
                "migrations connect as `{}`, the owner; set database.migration-user and \
                 GRAPHMIG_MIGRATION_PASSWORD (`graphmig privileges` prints the setup)",
                settings.user
            ),
        }),
        Some(user) => findings.push(Finding {
            check: "migration-user",
            operation: "connect as a user the server limits".into(),
            guard: Guard::Server,
            detail: format!("migrations connect as `{}`", user.user),
        }),
    }
    findings.push(Finding {
        check: "history-database",
        operation: "reach graphmig's history and lock".into(),
        guard: if separate {
            Guard::Server
        } else {
            Guard::PolicyOnly
        },
        detail: if separate {
            format!(
                "history and lock are in `{}`, a database of their own",
                db.history_database()
            )
        } else {
            "history and lock are in the target database: a dynamic label or a \
             `MATCH (n) DETACH DELETE n` reaches them; set [history] database"
                .into()
        },
    });
    if settings.migration_user.is_none() {
        // Probing as the owner would create a real user with the owner's rights.
        return findings;
    }

    let security_db = match db.dialect() {
        Dialect::ArcadeDb => settings.database.clone(),
        Dialect::Neo4j5 | Dialect::Neo4j44 => "system".to_string(),
    };
    let name = probe_name();
    let create = format!(
        "CREATE USER {name} SET PASSWORD '{}' CHANGE NOT REQUIRED",
        probe_name()
    );
    let security = attempt(db, &security_db, &create).await;
    let mut detail = security.clone().err().unwrap_or_default();
    if security.is_ok() {
        // Not transactional on every server: the user may exist now.
        let drop = format!("DROP USER {name} IF EXISTS");
        detail = match db.begin_as_owner_on(&security_db).await {
            Ok(mut txn) => match txn.run(&drop, Vec::new()).await {
                Ok(_) => {
                    let _ = txn.commit().await;
                    format!(
                        "the server let the migration user create user `{name}` (dropped again)"
                    )
                }
                Err(e) => format!(
                    "the server let the migration user create user `{name}`, and dropping it \
                     failed ({}): drop it by hand",
                    e.message
                ),
            },
            Err(e) => format!("the server let the migration user create user `{name}`: {e}"),
        };
    }
    findings.push(Finding {
        check: "security",
        operation: "create or alter users, roles and privileges".into(),
        guard: if security.is_ok() {
            Guard::PolicyOnly
        } else {
            Guard::Server
        },
        detail,
    });

    if separate {
        let access = attempt(db, db.history_database(), "MATCH (n) RETURN count(n) AS n").await;
        findings.push(Finding {
            check: "history-access",
            operation: format!(
                "read or write the history database `{}`",
                db.history_database()
            ),
            guard: if access.is_ok() {
                Guard::PolicyOnly
            } else {
                Guard::Server
            },
            detail: access.err().unwrap_or_else(|| {
                "the migration user can open the history database: take its access away".into()
            }),
        });
    }

    let load = attempt(
        db,
        &settings.database,
        "LOAD CSV FROM 'file:///etc/hostname' AS r RETURN count(r) AS n",
    )
    .await;
    findings.push(Finding {
        check: "load-csv",
        operation: "read files of the database host with LOAD CSV".into(),
        guard: if load.is_ok() {
            Guard::PolicyOnly
        } else {
            Guard::Server
        },
        detail: load
            .err()
            .unwrap_or_else(|| "the migration user read /etc/hostname of the server".into()),
    });
    findings
}
