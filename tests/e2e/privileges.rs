//! Least privilege enforced by the server: with graphmig's Cypher policy opened
//! wide by configuration, a migration connected as the migration user still cannot
//! change security, read the server's files or reach the history database; and
//! `graphmig doctor` reports which of those the server refuses.

use crate::support::{Project, logs_in, text};

/// Everything the policy can allow by configuration: admin, LOAD CSV from any
/// file, every procedure.
const POLICY_OFF: &str = "[policy]\nallow = [\"read\", \"write\", \"schema\", \"load-csv\", \"admin\"]\nload-csv = [\"file:///\"]\nprocedures = [\"*\"]\n";

#[test]
fn the_server_refuses_the_migration_user_what_the_policy_was_told_to_allow() {
    let project = Project::new("");
    project.write_extra_config(POLICY_OFF);
    let history = project.history.as_ref().expect("a history database");
    std::fs::write(
        project.migrations().join("V1__seed.cypher"),
        "CREATE (:Survivor {id: 1});\n",
    )
    .expect("seed");
    let seeded = project.graphmig(&["run"]);
    assert!(seeded.status.success(), "{}", text(&seeded));
    let history_before = history.count("__GraphmigMigration");

    let attacks = [
        "CREATE USER mallory SET PASSWORD 'secret-pass'",
        "ALTER USER root SET PASSWORD 'owned-now-42'",
        "LOAD CSV FROM 'file:///etc/hostname' AS r CREATE (:Loaded {line: r[0]})",
        "LOAD CSV FROM 'file:///proc/self/cmdline' AS r CREATE (:Loaded {line: r[0]})",
    ];
    for (i, attack) in attacks.iter().enumerate() {
        let file = project
            .migrations()
            .join(format!("V{}__attack.cypher", i + 2));
        std::fs::write(&file, format!("{attack};\n")).expect("attack");
        let output = project.graphmig(&["run"]);
        let out = text(&output);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{attack} was not refused:\n{out}"
        );
        assert!(
            out.contains("Neo.ClientError.Security.Forbidden"),
            "{attack}: the server, not the policy, refused it:\n{out}"
        );
        std::fs::remove_file(&file).expect("remove attack");
    }

    assert!(
        !logs_in(&project, "mallory", "secret-pass"),
        "no user was created"
    );
    assert!(
        logs_in(&project, "root", &project.db.server.password),
        "root's password is unchanged"
    );
    assert_eq!(project.db.count("Loaded"), 0, "no file was read");
    assert_eq!(project.db.count("Survivor"), 1);
    assert_eq!(history.count("__GraphmigMigration"), history_before);
    let verify = project.graphmig(&["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn doctor_reports_what_the_server_enforces_and_what_rests_on_the_policy() {
    let secure = Project::new("");
    let output = secure.graphmig(&["doctor", "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let guards: Vec<(String, String)> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap_or_default().to_string(),
                c["guard"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for check in [
        "migration-user",
        "history-database",
        "security",
        "history-access",
        "load-csv",
    ] {
        assert!(
            guards.contains(&(check.to_string(), "server".to_string())),
            "{check} is enforced by the server: {guards:?}"
        );
    }
    assert_eq!(doc["server_enforced"], true);

    let legacy = Project::sharing_history("");
    let output = legacy.graphmig(&["doctor"]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("RISK migration-user") && out.contains("RISK history-database"),
        "{out}"
    );
    std::fs::write(
        legacy.migrations().join("V1__seed.cypher"),
        "CREATE (:Survivor {id: 1});\n",
    )
    .expect("seed");
    let run = legacy.graphmig(&["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert_eq!(
        out.matches("warning: migrations connect as `root`").count(),
        1,
        "run warns once that only the policy stands in the way: {out}"
    );
}
