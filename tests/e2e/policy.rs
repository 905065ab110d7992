//! The Cypher policy's probe corpus run end to end: each probe as a one-statement
//! `.cypher` migration against ArcadeDB, with the graph, the server's users and
//! graphmig's history checked afterwards.

#[path = "../policy_probes.rs"]
mod corpus;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use corpus::{Under, probes};

use crate::support::{Project, logs_in, text, user_nodes, write_table};

#[test]
fn every_policy_probe_is_denied_or_allowed_end_to_end() {
    let project = Project::new("");
    std::fs::write(
        project.migrations().join("V1__seed.cypher"),
        "CREATE (:Survivor {id: 1});\nCREATE (:Survivor {id: 2})-[:KNOWS]->(:Survivor {id: 3});\n",
    )
    .expect("seed");
    let seeded = project.graphmig(&["run"]);
    assert!(seeded.status.success(), "seed: {}", text(&seeded));
    let nodes_before = user_nodes(&project);

    let mut failures = Vec::new();
    let mut by_class: BTreeMap<&str, (&str, usize, usize)> = BTreeMap::new();
    let mut config =
        std::fs::read_to_string(project.dir.path().join("graphmig.toml")).expect("read config");
    let mut applied = 1;
    // Deny probes first: the allowed ones include deletes that empty the graph.
    let mut ordered = probes();
    ordered.sort_by_key(|p| p.denied_by.is_none());
    let mut seeded_intact = None;
    for (i, probe) in ordered.iter().enumerate() {
        if probe.denied_by.is_none() && seeded_intact.is_none() {
            seeded_intact = Some(project.db.count("Survivor") == 3);
        }
        if probe.statement.trim().is_empty() {
            continue;
        }
        let version = i + 2;
        if probe.under == Under::ReadOnly {
            let _ = write!(config, "\n[migration.V{version}]\nallow = [\"read\"]\n");
            std::fs::write(project.dir.path().join("graphmig.toml"), &config)
                .expect("write config");
        }
        let file = project
            .migrations()
            .join(format!("V{version}__probe.cypher"));
        std::fs::write(&file, format!("{}\n", probe.statement)).expect("write probe");
        let output = project.graphmig(&["run"]);
        let out = text(&output);
        let ok = match probe.denied_by {
            Some(rule) => {
                let code = graphmig::policy::rule_code(rule);
                // The .cypher loader refuses some unreadable text (an open string or
                // comment) before the policy sees it: that is a refusal too.
                let refused_by_loader = rule == "unparsed" && output.status.code() == Some(2);
                let denied = output.status.code() == Some(1) && out.contains(&code);
                if !(denied || refused_by_loader) {
                    failures.push(format!(
                        "{:?}: expected {code}, got exit {:?}:\n{out}",
                        probe.statement,
                        output.status.code()
                    ));
                }
                std::fs::remove_file(&file).expect("remove probe");
                denied || refused_by_loader
            }
            None => {
                let denied = out.contains("graphmig.Policy.");
                if denied {
                    failures.push(format!("{:?}: denied:\n{out}", probe.statement));
                }
                if output.status.success() {
                    applied += 1;
                } else {
                    // The server may not support the statement; the policy let it by.
                    std::fs::remove_file(&file).expect("remove probe");
                }
                !denied
            }
        };
        let entry = by_class.entry(probe.class).or_insert((
            probe.denied_by.map_or("allowed", |_| "denied"),
            0,
            0,
        ));
        entry.1 += 1;
        entry.2 += usize::from(ok);
        if probe.denied_by.is_some() && user_nodes(&project) != nodes_before {
            failures.push(format!("{:?} changed the graph", probe.statement));
            break;
        }
    }

    assert_eq!(
        seeded_intact,
        Some(true),
        "the deny probes left the seeded graph intact"
    );
    assert_eq!(project.db.count("Doomed"), 0);
    assert!(
        logs_in(&project, "root", &project.db.server.password),
        "root's password is unchanged"
    );
    for password in ["secret-pass", "x"] {
        assert!(
            !logs_in(&project, "mallory", password),
            "no user was created"
        );
    }
    assert_eq!(
        project.history_db().count("__GraphmigMigration") as usize,
        applied,
        "one history entry per applied migration, none forged"
    );
    let verify = project.graphmig(&["verify"]);
    assert!(verify.status.success(), "verify: {}", text(&verify));

    let mut table = String::from("| Cypher probes | expected | got |\n|---|---|---|\n");
    for (class, (expected, total, ok)) in &by_class {
        let _ = writeln!(
            table,
            "| {class} ({total}) | {expected} | {ok} of {total} |"
        );
    }
    write_table(&table);
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n\n"));
}
