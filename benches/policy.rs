//! The Cypher policy's check of one statement (lex, parse, walk, decide): the
//! target is under 20 µs for a typical migration statement.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use graphmig::policy::Policy;

const TYPICAL: &[(&str, &str)] = &[
    (
        "read",
        "MATCH (p:Person) WHERE p.age > $min RETURN p.name AS name, p.born AS born",
    ),
    (
        "batch write",
        "UNWIND $rows AS r MERGE (p:Person {id: r.id}) ON CREATE SET p.name = r.name, p.born = r.born",
    ),
    (
        "schema",
        "CREATE CONSTRAINT person_id IF NOT EXISTS FOR (p:Person) REQUIRE p.id IS UNIQUE",
    ),
    (
        "long read",
        "MATCH (a:Person)-[:KNOWS*1..3]->(b:Person) WHERE a.id = $id AND NOT b:Blocked \
        WITH b, count(*) AS paths ORDER BY paths DESC LIMIT 25 \
        RETURN b.name AS name, paths, [x IN labels(b) WHERE x <> 'Person'] AS other, \
        COUNT { (b)--() } AS degree",
    ),
];

fn policy_check(c: &mut Criterion) {
    let policy = Policy::default();
    let mut group = c.benchmark_group("policy check");
    for (name, statement) in TYPICAL {
        assert!(policy.check(statement).is_ok(), "{statement}");
        group.bench_function(*name, |b| {
            b.iter(|| policy.check(std::hint::black_box(statement)))
        });
    }
    group.finish();
}

criterion_group!(benches, policy_check);
criterion_main!(benches);
