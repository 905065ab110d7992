//! The Bolt relay every driver connection goes through: TLS to the server, a
//! routing table rewritten so routed connections come through it too, and
//! records too large to decode stopped before the driver reads them.

use crate::support::{PrivateServer, Project, graphmig_measuring_peak, text};

/// The guest's memory limit (the default), plus 64 MiB, plus the result limit:
/// the host's documented bound, in KiB.
const BOUND_KIB: u64 = (512 + 64 + 64) * 1024;

/// Adds `V<version>__query`, a component that runs `query` and reads its rows.
fn add_query(project: &Project, version: u32, query: &str) {
    let data = project.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("query.txt"), query).expect("query.txt");
    project.add("V45__run_dataset_query", &format!("V{version}__query"));
}

/// Runs a migration whose one record would take 2 GB to decode; returns the
/// output and the host's peak resident memory in KiB, after checking that the
/// relay stopped the record with the result limit.
fn run_huge_record(project: &Project, version: u32) -> String {
    add_query(project, version, "RETURN range(1, 6000000) AS big");
    let (output, peak_kib) = graphmig_measuring_peak(project, &["run"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(4), "{out}");
    assert!(out.contains("result bytes limit exceeded"), "{out}");
    assert!(
        out.contains("would take") && out.contains("stopped them before reading them"),
        "the relay did not see the record:\n{out}"
    );
    assert!(
        peak_kib > 0 && peak_kib < BOUND_KIB,
        "peak {peak_kib} KiB, bound {BOUND_KIB} KiB\n{out}"
    );
    out
}

#[test]
fn migrations_run_over_bolt_tls_and_records_are_weighed_inside_it() {
    let private = PrivateServer::start_tls();
    let project = Project::on(private.server.clone(), "result-mib = 64\n");
    let port = private.server.bolt_port;
    std::fs::write(
        project.migrations().join("V1__over_tls.cypher"),
        "CREATE (:TlsProbe {n: 1});\n",
    )
    .expect("V1");

    // The server speaks TLS only: plain Bolt gets nowhere.
    project.write_config(&format!("bolt://127.0.0.1:{port}"), "result-mib = 64\n");
    let plain = project.graphmig(&["run"]);
    assert!(!plain.status.success(), "{}", text(&plain));
    assert_eq!(project.db.count("TlsProbe"), 0);

    // Verified TLS refuses a self-signed certificate, and says so.
    project.write_config(&format!("bolt+s://127.0.0.1:{port}"), "result-mib = 64\n");
    let verified = project.graphmig(&["run"]);
    assert!(!verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("invalid peer certificate"),
        "{}",
        text(&verified)
    );
    assert_eq!(project.db.count("TlsProbe"), 0);

    // +ssc accepts it: the migration runs, as the migration user, over TLS.
    project.write_config(&format!("bolt+ssc://127.0.0.1:{port}"), "result-mib = 64\n");
    let run = project.graphmig(&["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(project.db.count("TlsProbe"), 1);

    // Inside TLS the relay still weighs what the server sends.
    run_huge_record(&project, 2);
    let status = project.graphmig(&["status"]);
    assert!(text(&status).contains("applied"), "{}", text(&status));
}

#[test]
fn routed_connections_come_through_the_relay() {
    let project = Project::new("result-mib = 64\n");
    let port = project.db.server.bolt_port;
    // The driver asks the server for its routing table (ROUTE) and connects to
    // the members it names: those connections must be relayed as well.
    project.write_config(&format!("neo4j://127.0.0.1:{port}"), "result-mib = 64\n");
    std::fs::write(
        project.migrations().join("V1__routed.cypher"),
        "CREATE (:RoutedProbe {n: 1});\n",
    )
    .expect("V1");
    let run = project.graphmig(&["run"]);
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(project.db.count("RoutedProbe"), 1);
    run_huge_record(&project, 2);
}

#[test]
fn a_result_of_many_rows_under_the_limit_passes_the_relay_whole() {
    // The relay bounds what one batch of records costs to decode; a result
    // within the limit, many batches long, still arrives row for row.
    let project = Project::new("result-mib = 64\n");
    add_query(
        &project,
        1,
        "UNWIND range(1, 20000) AS i RETURN i, range(1, 20) AS small, 'row ' + i AS label",
    );
    let run = project.graphmig(&["run"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(out.contains("20000 row"), "{out}");
}
