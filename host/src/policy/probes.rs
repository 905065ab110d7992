//! The probe corpus (`tests/policy_probes.rs`) run through the classifier, plus the
//! policy's own unit tests.

#[path = "../../../tests/policy_probes.rs"]
mod corpus;

use super::*;
use corpus::{Under, probes};

fn policy(under: Under) -> Policy {
    match under {
        Under::Default => Policy::default(),
        Under::ReadOnly => Policy::new([Class::Read], vec![], vec![]),
    }
}

#[test]
fn every_probe_is_denied_by_its_rule_or_allowed() {
    let probes = probes();
    let denied = probes.iter().filter(|p| p.denied_by.is_some()).count();
    assert!(denied >= 150, "{denied} deny probes");
    assert!(
        probes.len() - denied >= 40,
        "{} allow probes",
        probes.len() - denied
    );
    let mut wrong = Vec::new();
    for probe in &probes {
        let got = policy(probe.under).check(&probe.statement);
        match (probe.denied_by, &got) {
            (Some(rule), Err(denial)) if denial.rule == rule => {}
            (None, Ok(_)) => {}
            _ => wrong.push(format!(
                "{:?} [{}]: expected {:?}, got {:?}",
                probe.statement,
                probe.class,
                probe.denied_by,
                got.map(|c| c.classes)
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn schema_statements_are_classified_as_schema_and_nothing_else() {
    for query in [
        "CREATE CONSTRAINT c IF NOT EXISTS FOR (p:Person) REQUIRE p.email IS UNIQUE",
        "CREATE TEXT INDEX t IF NOT EXISTS FOR (p:Person) ON (p.name)",
        "DROP INDEX t IF EXISTS",
    ] {
        let classes = Policy::default().check(query).expect("allowed").classes;
        assert_eq!(classes, [Class::Schema].into(), "{query}");
    }
    let classes = Policy::default()
        .check("MATCH (n) SET n.index = 1")
        .expect("allowed")
        .classes;
    assert_eq!(classes, [Class::Write].into());
}

#[test]
fn load_csv_reads_only_literal_urls_under_allowed_prefixes() {
    let policy =
        Policy::new([Class::Read, Class::LoadCsv], vec![], vec![]).with_load_csv_prefixes(vec![
            "file:///import/".into(),
            "https://data.example/".into(),
        ]);
    for query in [
        "LOAD CSV FROM 'file:///import/people.csv' AS r RETURN r",
        "LOAD CSV WITH HEADERS FROM 'https://data.example/x.csv' AS r RETURN r.a",
    ] {
        assert!(policy.check(query).is_ok(), "{query}");
    }
    for query in [
        "LOAD CSV FROM 'file:///import/../etc/passwd' AS r RETURN r",
        "LOAD CSV FROM 'file:///import/%2e%2e/etc/passwd' AS r RETURN r",
        "LOAD CSV FROM 'file:///etc/passwd' AS r RETURN r",
        "LOAD CSV FROM 'file://host/import/x' AS r RETURN r",
        "LOAD CSV FROM 'file:///import/' + 'x' AS r RETURN r",
        "LOAD CSV FROM $url AS r RETURN r",
        "LOAD CSV FROM 'https://data.example.evil/x' AS r RETURN r",
        "LOAD CSV FROM 'file:///import/\\q' AS r RETURN r",
    ] {
        assert_eq!(
            policy.check(query).expect_err(query).rule,
            "load-csv",
            "{query}"
        );
    }
    let no_prefixes = Policy::new([Class::Read, Class::LoadCsv], vec![], vec![]);
    assert!(
        no_prefixes
            .check("LOAD CSV FROM 'file:///x' AS r RETURN r")
            .is_err()
    );
}

#[test]
fn grants_narrow_and_widen_the_policy() {
    let widened = Policy::new(
        [Class::Read, Class::Write],
        vec!["apoc.periodic.iterate".into()],
        vec!["db.labels".into()],
    );
    assert!(
        widened
            .check("CALL apoc.periodic.iterate('a', 'b', {})")
            .is_ok()
    );
    assert_eq!(
        widened
            .check("CALL db.labels()")
            .expect_err("narrowed")
            .rule,
        "procedure"
    );
    let read_only = Policy::new([Class::Read], vec!["apoc.periodic.iterate".into()], vec![]);
    assert_eq!(
        read_only
            .check("CALL apoc.periodic.iterate('a', 'b', {})")
            .expect_err("writes")
            .rule,
        "write"
    );
    let admin = Policy::new([Class::Read, Class::Admin], vec![], vec![]);
    assert!(admin.check("SHOW USERS").is_ok());
}

#[test]
fn denials_name_the_rule_and_the_position() {
    let denial = Policy::default()
        .check("MATCH (n)\nRETURN custom.fn(n)")
        .expect_err("denied");
    assert_eq!(denial.code(), "graphmig.Policy.Function");
    assert!(
        denial.detail.contains("line 2, column 8"),
        "{}",
        denial.detail
    );
    let denial = Policy::default()
        .check("CREATE index = (:Doomed)")
        .expect_err("denied");
    assert_eq!(denial.code(), "graphmig.Policy.Unparsed");
    assert!(denial.detail.contains("column 14"), "{}", denial.detail);
    assert_eq!(
        Policy::default()
            .check("RETURN 1; RETURN 2")
            .expect_err("two")
            .code(),
        "graphmig.Policy.MultipleStatements"
    );
}

#[test]
fn newer_forms_the_parser_does_not_read_are_named_with_what_to_write() {
    for (query, names) in [
        (
            "MATCH (n) CALL { WITH n SET n.x = 1 } IN TRANSACTIONS OF 10 ROWS ON ERROR CONTINUE REPORT STATUS AS s RETURN s",
            "REPORT STATUS",
        ),
        (
            "MATCH (n) CALL { WITH n SET n.x = 1 } IN 2 CONCURRENT TRANSACTIONS OF 10 ROWS",
            "IN CONCURRENT TRANSACTIONS",
        ),
        (
            "MATCH (n) CALL { WITH n SET n.x = 1 } IN TRANSACTIONS ON ERROR RETRY FOR 3 SECONDS THEN FAIL",
            "ON ERROR RETRY",
        ),
        (
            "MATCH (n) CALL (n) { SET n.x = 1 } IN TRANSACTIONS",
            "CALL { WITH variables",
        ),
    ] {
        let denial = super::classify(query).expect_err(query);
        assert_eq!(denial.rule, "unsupported", "{query}: {denial:?}");
        assert_eq!(denial.code(), "graphmig.Unsupported");
        assert!(denial.detail.contains(names), "{query}: {}", denial.detail);
    }
    // Only a refusal is renamed: a statement the parser reads is not.
    let read = super::classify("MATCH (n) WHERE n.report = 'status' RETURN n").expect("reads");
    assert!(read.in_transactions.is_none());
    // Text that names a form but does not parse for another reason is still unparsed
    // or unsupported, never allowed.
    assert!(super::classify("MATCH (n RETURN n REPORT STATUS").is_err());
}
