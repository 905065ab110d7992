//! What an administrator runs so that migrations connect as a user the server itself limits.
//!
//! graphmig's Cypher policy is one wall; this is the second: the server refuses a
//! migration's security changes, reads of other databases (the history above all),
//! DBMS administration and, where the server can, LOAD CSV file reads, whatever
//! the migration's code manages to send.

use std::fmt::{self, Write};

/// The target the statements are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegeTarget {
    /// Neo4j 5, Enterprise Edition.
    Neo4j5,
    /// Neo4j 4.4, Enterprise Edition.
    Neo4j44,
    /// ArcadeDB, whose limits live in server groups and users, not in Cypher.
    ArcadeDb,
}

/// Who and what the privileges are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeRequest {
    /// The user migrations connect as (`[database] migration-user`).
    pub migration_user: String,
    /// The user graphmig's bookkeeping connects as (`[database] user`).
    pub owner_user: String,
    /// The target database migrations change.
    pub database: String,
    /// The database holding graphmig's history and lock, if separate (recommended).
    pub history_database: Option<String>,
}

/// The role (Neo4j) or group (ArcadeDB) name migrations get.
pub const MIGRATION_ROLE: &str = "graphmig_migration";
/// The role graphmig's bookkeeping gets (Neo4j).
pub const OWNER_ROLE: &str = "graphmig_owner";

/// The only way the migration password reaches graphmig, so it is never in a file.
const PASSWORD_VARIABLE: &str = "GRAPHMIG_MIGRATION_PASSWORD";

/// Labels of graphmig's own nodes in the target database when the history shares
/// it: history entries and the lock. Not the `__GraphmigApplied` markers: a
/// migration's own transaction writes its marker, as the migration user.
const BOOKKEEPING_LABELS: [&str; 2] = ["__GraphmigMigration", "__GraphmigLock"];

/// The script for `target`, ready to paste: comments say where to run it.
pub fn render(target: PrivilegeTarget, request: &PrivilegeRequest) -> String {
    let comment = match target {
        PrivilegeTarget::ArcadeDb => "#",
        PrivilegeTarget::Neo4j5 | PrivilegeTarget::Neo4j44 => "//",
    };
    let mut script = String::new();
    // Writing into a String cannot fail, so the fmt::Result carries nothing.
    let _ = match refusal(request) {
        Some(reason) => writeln!(script, "{comment} graphmig privileges: refused: {reason}"),
        None => match target {
            PrivilegeTarget::Neo4j5 => neo4j(&mut script, Neo4jVersion::Five, request),
            PrivilegeTarget::Neo4j44 => neo4j(&mut script, Neo4jVersion::FourFour, request),
            PrivilegeTarget::ArcadeDb => arcadedb(&mut script, request),
        },
    };
    script
}

/// Backtick-quotes a Cypher identifier, doubling embedded backticks, so that no
/// name can end the identifier and start a statement of its own.
fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Escapes `"` and `\` for a JSON string; [`refusal`] has already turned away the
/// control characters JSON would also need escaped.
fn json_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The inside of a shell single-quoted word: `'` closes, escapes and reopens.
fn shell_escape(text: &str) -> String {
    text.replace('\'', "'\\''")
}

/// Why the request cannot become a script, if it cannot. A line break in a name
/// would end a comment and turn the rest of the name into a statement.
fn refusal(request: &PrivilegeRequest) -> Option<String> {
    let names = [
        ("migration user", Some(&request.migration_user)),
        ("owner user", Some(&request.owner_user)),
        ("database", Some(&request.database)),
        ("history database", request.history_database.as_ref()),
    ];
    for (what, name) in names {
        let Some(name) = name else { continue };
        let unsafe_char = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
        if name.is_empty() || name.chars().any(unsafe_char) {
            return Some(format!(
                "the {what} name {name:?} is empty or holds a control character"
            ));
        }
    }
    (request.migration_user == request.owner_user).then(|| {
        format!(
            "the migration user {:?} is the owner user: give migrations a user of their own",
            request.migration_user
        )
    })
}

/// Where the history lives, which decides what must be denied.
#[derive(Clone, Copy)]
enum Layout<'a> {
    /// In a database of its own, which the migration user cannot access.
    Separate { history: &'a str },
    /// In the target database, guarded only by label denies.
    Same,
}

impl<'a> Layout<'a> {
    fn of(request: &'a PrivilegeRequest) -> Self {
        match request.history_database.as_deref() {
            Some(history) if history != request.database => Layout::Separate { history },
            _ => Layout::Same,
        }
    }

    /// The database holding the history and the lock.
    fn history_database(self, request: &'a PrivilegeRequest) -> &'a str {
        match self {
            Layout::Separate { history } => history,
            Layout::Same => &request.database,
        }
    }
}

/// The Neo4j release line, for the few statements that differ.
#[derive(Clone, Copy)]
enum Neo4jVersion {
    Five,
    FourFour,
}

/// The Cypher script for Neo4j Enterprise: roles, denies, the migration user.
fn neo4j(script: &mut String, version: Neo4jVersion, request: &PrivilegeRequest) -> fmt::Result {
    let layout = Layout::of(request);
    let db = quote(&request.database);
    let history = quote(layout.history_database(request));
    let migrator = quote(&request.migration_user);
    let owner = quote(&request.owner_user);
    let role = MIGRATION_ROLE;
    // Only Neo4j 5 has a minimum password length (dbms.security.auth_minimum_password_length).
    let (release, length_rule) = match version {
        Neo4jVersion::Five => ("Neo4j 5", "// (8 characters at least, by default.)\n"),
        Neo4jVersion::FourFour => ("Neo4j 4.4", ""),
    };
    writeln!(
        script,
        "// graphmig privileges for {release} (Enterprise Edition).\n\
         // Migrations connect as {migrator} and may change only {db};\n\
         // graphmig's bookkeeping (history and lock in {history}) connects as {owner}.\n\
         //\n\
         // Run as an administrator in cypher-shell against the system database\n\
         // (cypher-shell -d system), pasting the statements below.\n\
         // Enterprise Edition only: Community Edition has no role-based access\n\
         // control, so there everything rests on graphmig's own Cypher policy.\n\
         //\n\
         // Set the migration user's password first, in that same session:\n\
         //   :param password => '...'\n\
         {length_rule}\
         // Give it to graphmig only through the environment variable\n\
         // {PASSWORD_VARIABLE}, never in a file.\n\
         \n\
         // Migrations: read and write all data in {db}, create labels, types and\n\
         // property names, manage its indexes and constraints.\n\
         CREATE ROLE {role} IF NOT EXISTS;"
    )?;
    grant_data(script, role, &db, true)?;
    writeln!(
        script,
        "// Ordinary procedures (db.labels, db.schema.*, db.awaitIndexes) and functions.\n\
         // The built-in PUBLIC role grants them too; granted here, migrations keep\n\
         // them if PUBLIC is narrowed.\n\
         GRANT EXECUTE PROCEDURE db.* ON DBMS TO {role};\n\
         GRANT EXECUTE FUNCTION * ON DBMS TO {role};"
    )?;
    match version {
        Neo4jVersion::Five => writeln!(
            script,
            "// No LOAD CSV from files or URLs: PUBLIC grants LOAD ON ALL DATA by\n\
             // default, and a deny wins over a grant. The LOAD privilege exists from\n\
             // Neo4j 5.13; older servers reject this line: leave it out there and set\n\
             // dbms.security.allow_csv_import_from_file_urls=false in neo4j.conf.\n\
             DENY LOAD ON ALL DATA TO {role};"
        )?,
        Neo4jVersion::FourFour => writeln!(
            script,
            "// Neo4j 4.4 has no LOAD privilege: only server settings limit LOAD CSV.\n\
             // Set dbms.security.allow_csv_import_from_file_urls=false in neo4j.conf\n\
             // (no file:/// reads at all), or at least keep dbms.directories.import\n\
             // pointing at a directory with nothing secret in it. http(s) URLs stay open."
        )?,
    }
    match layout {
        Layout::Separate { .. } => writeln!(
            script,
            "// The history database is out of reach, whatever PUBLIC grants.\n\
             DENY ACCESS ON DATABASE {history} TO {role};"
        )?,
        Layout::Same => deny_bookkeeping(script, &db)?,
    }
    writeln!(
        script,
        "\n\
         // The migration user. IF NOT EXISTS keeps an existing user's password; to\n\
         // change it: ALTER USER {migrator} SET PASSWORD $password CHANGE NOT REQUIRED;\n\
         CREATE USER {migrator} IF NOT EXISTS SET PASSWORD $password CHANGE NOT REQUIRED;\n\
         GRANT ROLE {role} TO {migrator};\n\
         \n\
         // graphmig's bookkeeping: the history and the lock in {history}, with their\n\
         // constraints. {owner} must exist already: it is the user graphmig connects as.\n\
         CREATE ROLE {OWNER_ROLE} IF NOT EXISTS;"
    )?;
    grant_data(script, OWNER_ROLE, &history, true)?;
    if let Layout::Separate { .. } = layout {
        writeln!(
            script,
            "// In {db}: reading, and deleting the markers migrations leave there."
        )?;
        grant_data(script, OWNER_ROLE, &db, false)?;
    }
    let load = match version {
        Neo4jVersion::Five => " LOAD,",
        Neo4jVersion::FourFour => "",
    };
    writeln!(
        script,
        "GRANT ROLE {OWNER_ROLE} TO {owner};\n\
         \n\
         // Deliberately not granted to {role}: any DBMS privilege (user, role and\n\
         // privilege management, database management, EXECUTE ADMIN or BOOSTED\n\
         // procedures), dbms.* procedures (PUBLIC still grants EXECUTE PROCEDURE *\n\
         // by default; graphmig's policy refuses dbms.* in migrations),{load} and\n\
         // access to any database but {db}.\n\
         // Check with: SHOW ROLE {role} PRIVILEGES AS COMMANDS;"
    )
}

/// Access, reading and writing on `db`; with `manage`, also names, indexes and constraints.
fn grant_data(script: &mut String, role: &str, db: &str, manage: bool) -> fmt::Result {
    writeln!(script, "GRANT ACCESS ON DATABASE {db} TO {role};")?;
    writeln!(script, "GRANT MATCH {{*}} ON GRAPH {db} TO {role};")?;
    writeln!(script, "GRANT WRITE ON GRAPH {db} TO {role};")?;
    if manage {
        for privilege in ["NAME", "INDEX", "CONSTRAINT"] {
            writeln!(
                script,
                "GRANT {privilege} MANAGEMENT ON DATABASE {db} TO {role};"
            )?;
        }
    }
    Ok(())
}

/// The label denies that guard history, lock and markers sharing the target database.
fn deny_bookkeeping(script: &mut String, db: &str) -> fmt::Result {
    let labels = BOOKKEEPING_LABELS.join(", ");
    let role = MIGRATION_ROLE;
    writeln!(
        script,
        "// The history and the lock live in {db} too: migrations may read them but\n\
         // not create, change or delete them. A separate history database is safer:\n\
         // on some servers a dynamic label can reach history nodes past these denies.\n\
         DENY CREATE ON GRAPH {db} NODES {labels} TO {role};\n\
         DENY DELETE ON GRAPH {db} NODES {labels} TO {role};\n\
         DENY SET PROPERTY {{*}} ON GRAPH {db} NODES {labels} TO {role};\n\
         DENY SET LABEL {labels} ON GRAPH {db} TO {role};\n\
         DENY REMOVE LABEL {labels} ON GRAPH {db} TO {role};\n\
         // Privileges on labels that do not exist yet do not apply (Operations Manual,\n\
         // \"Privileges for nonexistent labels\"), so create them now. USE sends each\n\
         // line to {db}; where the server refuses that, run them without USE in a\n\
         // session on {db}."
    )?;
    for label in BOOKKEEPING_LABELS {
        writeln!(script, "USE {db} CALL db.createLabel('{label}');")?;
    }
    Ok(())
}

/// The group migrations get, exactly as it goes into `config/server-groups.json`.
const ARCADEDB_GROUP: &str = r#""graphmig_migration": {
  "resultSetLimit": -1,
  "readTimeout": -1,
  "access": ["updateSchema"],
  "types": { "*": { "access": ["createRecord", "readRecord", "updateRecord", "deleteRecord"] } }
}"#;

/// The shell recipe for ArcadeDB: a server group, then a user limited to the target.
fn arcadedb(script: &mut String, request: &PrivilegeRequest) -> fmt::Result {
    let layout = Layout::of(request);
    let db = quote(&request.database);
    let history = quote(layout.history_database(request));
    let migrator = quote(&request.migration_user);
    let owner = quote(&request.owner_user);
    let db_json = json_escape(&request.database);
    writeln!(
        script,
        "# graphmig privileges for ArcadeDB.\n\
         # Migrations connect as {migrator} and may change only {db};\n\
         # graphmig's bookkeeping (history and lock in {history}) connects as {owner}.\n\
         # ArcadeDB has no Cypher privilege statements: the limits live in the\n\
         # server's groups and users.\n\
         #\n\
         # 1. Add this group to config/server-groups.json, under\n\
         #    \"databases\" -> \"*\" -> \"groups\" (or under\n\
         #    \"databases\" -> \"{db_json}\" -> \"groups\" for that database only):\n\
         #"
    )?;
    for line in ARCADEDB_GROUP.lines() {
        writeln!(script, "#    {line}")?;
    }
    writeln!(
        script,
        "#\n\
         #    (beside the groups already there: mind the comma between them).\n\
         #    No \"updateSecurity\" and no \"updateDatabaseSettings\", on purpose: without\n\
         #    them the server refuses CREATE USER, ALTER USER, writes to other\n\
         #    databases and LOAD CSV file reads (Neo.ClientError.Security.Forbidden,\n\
         #    measured). \"updateSchema\" lets migrations manage types and indexes.\n\
         #    ArcadeDB reads group edits when it starts: restart the server after\n\
         #    editing."
    )?;
    if let Layout::Same = layout {
        writeln!(
            script,
            "#    The history and the lock live in {db} too, and this group can write\n\
             #    them. ArcadeDB can limit a group per type, but graphmig has not measured\n\
             #    that for its own types: keep the history in a separate database."
        )?;
    }
    // The command is JSON inside a JSON string, inside a shell single-quoted word;
    // the shell splices the password in between the two quoted halves. (`\x20`
    // below keeps the indent that a string continuation would strip.)
    let user_json = json_escape(&request.migration_user);
    let user_before = format!(r#"{{"name":"{user_json}","password":""#);
    let user_after = format!(r#"","databases":{{"{db_json}":["{MIGRATION_ROLE}"]}}}}"#);
    let body_before = shell_escape(&format!(
        r#"{{"command":"create user {}"#,
        json_escape(&user_before)
    ));
    let body_after = shell_escape(&format!(r#"{}"}}"#, json_escape(&user_after)));
    writeln!(
        script,
        "#\n\
         # 2. Create the migration user with {db} as its only database, so the\n\
         #    history database and every other database are out of its reach. curl\n\
         #    asks for root's password; the migration password comes from the\n\
         #    environment (8 characters at least, without \" or \\), typed unseen:\n\
         #      read -rs {PASSWORD_VARIABLE}; export {PASSWORD_VARIABLE}\n\
         #    Give it to graphmig the same way, through {PASSWORD_VARIABLE} only.\n\
         curl --fail -u root -X POST \"${{ARCADEDB_URL:-http://localhost:2480}}/api/v1/server\" \\\n\
         \x20 -H 'Content-Type: application/json' \\\n\
         \x20 --data-binary '{body_before}'\"${PASSWORD_VARIABLE}\"'{body_after}'\n\
         #\n\
         # 3. The owner user {owner} (root, or a user of the admin group) keeps its"
    )?;
    match layout {
        Layout::Separate { .. } => writeln!(
            script,
            "#    access to {history}, for the history and the lock, and to {db},\n\
             #    for the markers migrations leave there."
        ),
        Layout::Same => writeln!(
            script,
            "#    access to {db}: the history and the lock stay with it."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(history: Option<&str>) -> PrivilegeRequest {
        PrivilegeRequest {
            migration_user: "graphmig_migrator".into(),
            owner_user: "graphmig".into(),
            database: "people".into(),
            history_database: history.map(str::to_owned),
        }
    }

    const ALL_TARGETS: [PrivilegeTarget; 3] = [
        PrivilegeTarget::Neo4j5,
        PrivilegeTarget::Neo4j44,
        PrivilegeTarget::ArcadeDb,
    ];

    #[test]
    fn matches_the_reviewed_golden_files() {
        let golden = [
            (
                PrivilegeTarget::Neo4j5,
                Some("graphmig_history"),
                include_str!("../../tests/golden/privileges/neo4j-5-separate.txt"),
            ),
            (
                PrivilegeTarget::Neo4j5,
                None,
                include_str!("../../tests/golden/privileges/neo4j-5-same.txt"),
            ),
            (
                PrivilegeTarget::Neo4j44,
                Some("graphmig_history"),
                include_str!("../../tests/golden/privileges/neo4j-4.4-separate.txt"),
            ),
            (
                PrivilegeTarget::Neo4j44,
                None,
                include_str!("../../tests/golden/privileges/neo4j-4.4-same.txt"),
            ),
            (
                PrivilegeTarget::ArcadeDb,
                Some("graphmig_history"),
                include_str!("../../tests/golden/privileges/arcadedb-separate.txt"),
            ),
            (
                PrivilegeTarget::ArcadeDb,
                None,
                include_str!("../../tests/golden/privileges/arcadedb-same.txt"),
            ),
        ];
        for (target, history, expected) in golden {
            assert_eq!(
                render(target, &request(history)),
                expected,
                "{target:?} {history:?}"
            );
        }
    }

    #[test]
    fn history_named_like_the_target_is_the_same_layout() {
        for target in ALL_TARGETS {
            let same = render(target, &request(None));
            assert_eq!(render(target, &request(Some("people"))), same);
        }
    }

    #[test]
    fn layouts_deny_what_each_needs() {
        let separate = render(PrivilegeTarget::Neo4j5, &request(Some("graphmig_history")));
        assert!(
            separate.contains("DENY ACCESS ON DATABASE `graphmig_history` TO graphmig_migration;")
        );
        assert!(
            !separate.contains("__Graphmig"),
            "markers are the migration's to write"
        );
        let same = render(PrivilegeTarget::Neo4j44, &request(None));
        assert!(!same.contains("DENY ACCESS"));
        for label in BOOKKEEPING_LABELS {
            assert!(same.contains(&format!("USE `people` CALL db.createLabel('{label}');")));
        }
        assert!(same.contains(
            "DENY DELETE ON GRAPH `people` NODES __GraphmigMigration, __GraphmigLock TO graphmig_migration;"
        ));
    }

    #[test]
    fn load_is_denied_on_neo4j_5_only() {
        let deny = "DENY LOAD ON ALL DATA TO graphmig_migration;";
        assert!(render(PrivilegeTarget::Neo4j5, &request(None)).contains(deny));
        assert!(!render(PrivilegeTarget::Neo4j44, &request(None)).contains("DENY LOAD"));
    }

    #[test]
    fn hostile_names_stay_inside_their_quotes() {
        assert_eq!(quote("a`b; DROP DATABASE x"), "`a``b; DROP DATABASE x`");
        let hostile = PrivilegeRequest {
            migration_user: "m`x'\"\\".into(),
            owner_user: "o".into(),
            database: "a`b; DROP DATABASE x".into(),
            history_database: Some("h".into()),
        };
        let neo4j = render(PrivilegeTarget::Neo4j5, &hostile);
        assert!(
            neo4j.contains(
                "GRANT ACCESS ON DATABASE `a``b; DROP DATABASE x` TO graphmig_migration;"
            )
        );
        assert!(neo4j.contains("GRANT ROLE graphmig_migration TO `m``x'\"\\`;"));
        assert!(neo4j.lines().all(|line| !line.starts_with("DROP")));
        let arcadedb = render(PrivilegeTarget::ArcadeDb, &hostile);
        // JSON inside JSON inside a shell word: the quote is escaped twice, then for the shell.
        assert!(
            arcadedb.contains(r#"{\"name\":\"m`x'\''\\\"\\\\\",\"password\":\"'"#),
            "{arcadedb}"
        );
        assert!(arcadedb.contains(r#"\"databases\":{\"a`b; DROP DATABASE x\":"#));
    }

    #[test]
    fn names_that_could_break_a_line_are_refused() {
        for name in ["", "people\nDROP DATABASE x", "a\u{2028}b"] {
            let mut bad = request(Some("graphmig_history"));
            bad.database = name.into();
            for target in ALL_TARGETS {
                let script = render(target, &bad);
                assert_eq!(script.lines().count(), 1, "{script}");
                assert!(script.contains("refused"));
            }
        }
        let mut shared = request(None);
        shared.migration_user = shared.owner_user.clone();
        assert!(render(PrivilegeTarget::Neo4j5, &shared).contains("is the owner user"));
    }

    /// The first `password` followed by a quoted value that neither comes from `$...`
    /// (the Cypher parameter, the environment) nor is the `'...'` placeholder.
    fn literal_password(script: &str) -> Option<&str> {
        let lower = script.to_ascii_lowercase();
        lower.match_indices("password").find_map(|(at, _)| {
            if matches!(lower[..at].chars().last(), Some('$' | '_')) {
                return None;
            }
            let rest = &script[at + "password".len()..];
            let value = rest.trim_start_matches([' ', '\\', ':', '=', '>', '"', '\'']);
            let quoted = rest[..rest.len() - value.len()].contains(['"', '\'']);
            let safe = value.starts_with('$') || value.starts_with("...");
            (quoted && !safe).then_some(rest)
        })
    }

    #[test]
    fn no_password_is_ever_literal() {
        assert!(literal_password("CREATE USER x SET PASSWORD 'hunter22';").is_some());
        assert!(literal_password(r#"{\"password\":\"hunter22\"}"#).is_some());
        assert!(literal_password("SET PASSWORD $password CHANGE NOT REQUIRED").is_none());
        for target in ALL_TARGETS {
            for history in [None, Some("graphmig_history")] {
                let script = render(target, &request(history));
                assert_eq!(literal_password(&script), None, "{target:?}");
            }
        }
    }

    #[test]
    fn no_dbms_administration_is_granted() {
        let forbidden = [
            "ROLE MANAGEMENT",
            "USER MANAGEMENT",
            "DATABASE MANAGEMENT",
            "PRIVILEGE MANAGEMENT",
            "ALL DBMS PRIVILEGES",
            "ADMIN",
            "BOOSTED",
        ];
        for target in ALL_TARGETS {
            for history in [None, Some("graphmig_history")] {
                let script = render(target, &request(history));
                for grant in script.lines().filter(|line| line.starts_with("GRANT ")) {
                    assert!(!forbidden.iter().any(|f| grant.contains(f)), "{grant}");
                    if grant.contains("ON DBMS") {
                        assert!(
                            grant.starts_with("GRANT EXECUTE PROCEDURE db.* ")
                                || grant.starts_with("GRANT EXECUTE FUNCTION * "),
                            "{grant}"
                        );
                    }
                }
            }
        }
    }
}
