//! The Cypher policy's probe corpus: statements that must be denied (with the rule
//! that must deny them) and statements that must be allowed. Shared by the policy's
//! unit tests and the end-to-end suite, which runs each as a `.cypher` migration.

/// Which policy a probe runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Under {
    /// `allow = ["read", "write", "schema"]`, the default.
    Default,
    /// `allow = ["read"]`.
    ReadOnly,
}

/// One probe: the statement, the policy it runs under, and the rule that must deny
/// it (`None`: it must be allowed).
#[derive(Debug, Clone)]
pub struct Probe {
    /// The attack class or the reason it is allowed.
    pub class: &'static str,
    /// The statement.
    pub statement: String,
    /// The policy.
    pub under: Under,
    /// The rule that denies it, or `None`.
    pub denied_by: Option<&'static str>,
}

fn deny(class: &'static str, rule: &'static str, statement: impl Into<String>) -> Probe {
    Probe {
        class,
        statement: statement.into(),
        under: Under::Default,
        denied_by: Some(rule),
    }
}

fn deny_read_only(class: &'static str, rule: &'static str, statement: impl Into<String>) -> Probe {
    Probe {
        under: Under::ReadOnly,
        ..deny(class, rule, statement)
    }
}

fn allow(class: &'static str, statement: impl Into<String>) -> Probe {
    Probe {
        class,
        statement: statement.into(),
        under: Under::Default,
        denied_by: None,
    }
}

/// Admin statements, in Neo4j 4.4, 5 and 2025 syntax.
const ADMIN: &[&str] = &[
    "CREATE USER mallory SET PASSWORD 'secret-pass'",
    "CREATE USER mallory IF NOT EXISTS SET PLAINTEXT PASSWORD 'x' CHANGE NOT REQUIRED",
    "CREATE OR REPLACE USER mallory SET PASSWORD 'x'",
    "ALTER USER root SET PASSWORD 'owned-now'",
    "ALTER CURRENT USER SET PASSWORD FROM 'a' TO 'b'",
    "ALTER USERS a, b SET TAG 'x'",
    "DROP USER root",
    "RENAME USER root TO toor",
    "CREATE ROLE r",
    "CREATE IMMUTABLE ROLE r",
    "DROP ROLE admin",
    "GRANT ROLE admin TO mallory",
    "GRANT ALL ON DATABASE * TO PUBLIC",
    "DENY READ {*} ON GRAPH * TO r",
    "REVOKE ROLE admin FROM mallory",
    "CREATE DATABASE evil",
    "CREATE DATABASE evil IF NOT EXISTS",
    "CREATE OR REPLACE DATABASE evil",
    "CREATE COMPOSITE DATABASE evil",
    "CREATE REPLICA DATABASE evil",
    "DROP DATABASE graphmig",
    "ALTER DATABASE graphmig SET ACCESS READ ONLY",
    "START DATABASE graphmig",
    "STOP DATABASE graphmig",
    "CREATE ALIAS a FOR DATABASE graphmig",
    "CREATE AUTH RULE r SET CONDITION x",
    "ENABLE SERVER 'x'",
    "DEALLOCATE DATABASES FROM SERVER 'x'",
    "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "SHOW USERS",
    "SHOW CURRENT USER",
    "SHOW ALL PRIVILEGES",
    "SHOW ROLES",
    "SHOW SETTINGS",
    "SHOW TRANSACTIONS",
    "SHOW DATABASES",
    "SHOW SERVERS",
    "USE system MATCH (n) RETURN n",
    "USE other CREATE (:X)",
];

/// Statements that touch graphmig's history, lock or tags by name.
const RESERVED: &[&str] = &[
    "MATCH (h:__GraphmigMigration) DETACH DELETE h",
    "MATCH (l:`__GraphmigLock`) SET l.owner = 'me'",
    "MATCH (n) WHERE n:__graphmigmigration RETURN n",
    "CREATE (:__GraphmigMigration {seq: 999})",
    "MATCH (n:__GraphmigApplied) DELETE n",
    "MATCH (n) WHERE 'x' IN labels(n) OR labels(n)[0] = '__GraphmigMigration' DELETE n",
    "MATCH (n) WHERE '\\u005f_GraphmigLock' IN labels(n) SET n.expires = 0",
    "MATCH (n) WHERE any(l IN labels(n) WHERE l = \"__GRAPHMIGMIGRATION\") DETACH DELETE n",
    "MATCH (n) SET n._graphmig_batch = 'forged'",
    "MATCH (n) REMOVE n._graphmig_batch",
    "CREATE (:Person {_graphmig_batch: 'b-1'})",
    "MATCH (n) SET n += {_graphmig_batch: 'x'}",
    "MATCH (n) WHERE n._graphmig_batch IS NOT NULL DETACH DELETE n",
    "MATCH (n) SET n['_graphmig_batch'] = 'x'",
    "MATCH (n) RETURN apoc.text.join(['__Graphmig', 'Lock'], '') AS x, '__GraphmigLock' AS y",
    "MERGE (n:__GraphmigLock {id: 'graphmig'}) SET n.owner = 'x'",
    "MATCH ()-[r:__GraphmigEdge]->() DELETE r",
    "MATCH (n) CREATE (n:$('__GraphmigMigration'))",
    "MATCH (n) SET n:$('__GraphmigMigration')",
    "MATCH (n) SET n:$('\\u005f_GraphmigLock')",
    "MATCH (n:$('__GraphmigLock')) DETACH DELETE n",
    "MATCH (n) WHERE n:__GraphmigMigration|Person RETURN n",
    "MATCH (n) WHERE NOT n:__GraphmigMigration OR true DETACH DELETE n",
    "MATCH (n) WHERE NOT NOT n:__GraphmigMigration DETACH DELETE n",
    "MATCH (n) WHERE NOT n:__GraphmigMigration|X DETACH DELETE n",
];

/// Statements with a label, type or written property named by an expression.
const DYNAMIC: &[&str] = &[
    "MATCH (n) CREATE (m:$($label))",
    "MATCH (n) CREATE (m:$('__Graphmig' + 'Migration'))",
    "MATCH (n:$(toUpper('x'))) RETURN n",
    "MATCH (n) SET n[$key] = 1",
    "MATCH (n) SET n['_graph' + 'mig_batch'] = 1",
    "MATCH (n) SET n:$('__Graph' + 'migLock')",
];

/// Procedures and functions that are denied by default, in every disguise.
const CALLS: &[(&str, &str)] = &[
    (
        "procedure",
        "CALL dbms.security.createUser('m', 'p', false)",
    ),
    (
        "procedure",
        "call DBMS.Security.CreateUser('m', 'p', false)",
    ),
    (
        "procedure",
        "CALL `dbms`.`security`.`createUser`('m', 'p', false)",
    ),
    (
        "procedure",
        "CALL `dbms.security.createUser`('m', 'p', false)",
    ),
    (
        "procedure",
        "CALL dbms . security . createUser('m','p',false)",
    ),
    ("procedure", "CALL /* x */ dbms.setConfigValue('a', 'b')"),
    ("procedure", "CALL dbms.components() YIELD name RETURN name"),
    (
        "procedure",
        "CALL apoc.cypher.run('CREATE DATABASE evil', {})",
    ),
    (
        "procedure",
        "CALL apoc.cypher.runWrite('MATCH (n) DETACH DELETE n', {})",
    ),
    (
        "function",
        "RETURN apoc.cypher.runFirstColumnSingle('MATCH (n) DETACH DELETE n', {})",
    ),
    (
        "function",
        "WITH 1 AS x RETURN `apoc`.cypher.runFirstColumnMany('x', {}) AS y",
    ),
    (
        "function",
        "RETURN `apoc.cypher.runFirstColumnSingle`('MATCH (n) RETURN n', {}) AS y",
    ),
    ("function", "RETURN [1,2,3][0..sql.strcmpci('a','b')] AS x"),
    ("function", "RETURN [1,2,3][sql.strcmpci('a','b')..] AS x"),
    ("function", "RETURN [x IN [1] | sql.eval('x')] AS x"),
    ("function", "MATCH (n) WHERE n.x = custom.fn(1) RETURN n"),
    (
        "function",
        "RETURN CASE WHEN true THEN apoc.cypher.runFirstColumnSingle('x', {}) END",
    ),
    (
        "function",
        "RETURN {a: apoc.cypher.runFirstColumnSingle('x', {})} AS m",
    ),
    (
        "function",
        "MATCH (n) RETURN n {.name, x: apoc.cypher.runFirstColumnSingle('x', {})}",
    ),
    (
        "function",
        "RETURN reduce(s = 0, x IN [1] | s + apoc.cypher.runFirstColumnSingle('x', {}))",
    ),
    (
        "function",
        "MATCH (n) WHERE EXISTS { MATCH (n) WHERE apoc.cypher.runFirstColumnSingle('x', {}) } RETURN n",
    ),
    (
        "function",
        "MATCH (n) RETURN COUNT { MATCH (m) WHERE apoc.cypher.runFirstColumnSingle('x', {}) } AS c",
    ),
    ("function", "RETURN unknownfunction(1) AS x"),
    ("function", "RETURN eval('1 + 1') AS x"),
    (
        "function",
        "SHOW INDEXES YIELD * WHERE apoc.cypher.runFirstColumnSingle('x', {}) RETURN 1",
    ),
    ("procedure", "CALL apoc.load.json('http://evil.example/x')"),
    ("procedure", "CALL apoc.import.csv([], [], {})"),
    ("procedure", "CALL apoc.export.csv.all('/tmp/x.csv', {})"),
    (
        "procedure",
        "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {})",
    ),
    ("procedure", "CALL { CALL dbms.killQueries(['1']) }"),
    (
        "procedure",
        "MATCH (n) CALL { WITH n CALL apoc.cypher.doIt('x', {}) YIELD value RETURN value } RETURN 1",
    ),
    ("procedure", "CALL some.unknown.proc()"),
    ("procedure", "CALL apoc.refactor.rename.label('A', 'B')"),
    (
        "reserved",
        "CALL apoc.refactor.rename.label('A', '__GraphmigMigration')",
    ),
    (
        "procedure",
        "MATCH (n) CALL apoc.create.addLabels(n, ['X']) YIELD node RETURN node",
    ),
    (
        "procedure",
        "CALL apoc.create.node(['X'], {}) YIELD node RETURN node",
    ),
    (
        "procedure",
        "MATCH (n) CALL apoc.refactor.setType(n, 'X') YIELD output RETURN output",
    ),
    (
        "procedure",
        "CALL apoc.trigger.add('t', 'MATCH (n) DELETE n', {})",
    ),
    ("procedure", "CALL apoc.schema.assert({}, {})"),
    ("procedure", "CALL db.clearQueryCaches()"),
    ("procedure", "CALL apoc.systemdb.execute('SHOW USERS')"),
];

/// Statements the parser cannot read, or reads only in part.
const UNPARSED: &[&str] = &[
    "CREATE index = (:Doomed)",
    "CREATE constraint = (:Doomed)",
    "INSERT (n:X)",
    "MATCH (n) RETURN n LIMIT 1 CREATE USER x SET PASSWORD 'y'",
    "RETURN 'unterminated",
    "MATCH (n) /* open comment",
    "RETURN `unterminated",
    "CREATE DATA\\u0042ASE x",
    "MATCH (n)\u{200B} RETURN n",
    "\u{FEFF}MATCH (n) RETURN n",
    "MATCH (n) RETURN n\u{180E}",
    "MATCH (n)\u{0} RETURN n",
    "MATCH (n) RETURN n\u{7F}",
    "MATCH (n) RETURN n \\",
    "CREATE INDEX i FOR (n:L) ON (n.p) RETURN 1",
    "CREATE INDEX i FOR (n:L) ON (n.p) OPTIONS {x: apoc.cypher.runFirstColumn('x', {})}",
    "CREATE INDEX i FOR (n:L) ON (n.p) OPTIONS $options",
    "CREATE CONSTRAINT c FOR (n:L) REQUIRE n.p IS UNIQUE CREATE (x)",
    "DROP INDEX i CREATE (x)",
    "MATCH (n) REMOVE n.`_graphmig_batch`",
    "LOAD CSV FROM 'file:/' || '/x' AS r RETURN r",
    "CALL { LOAD CSV FROM 'file:///x' AS r RETURN r } RETURN 1",
    "",
];

/// Writes hidden from a read-only migration.
const HIDDEN_WRITES: &[&str] = &[
    "MATCH (n) RETURN n LIMIT 1DELETE n",
    "MATCH (n) WITH n SKIP 0CREATE (m:X)",
    "MATCH (n) WITH n LIMIT 0x1MERGE (m:X)",
    "MATCH (n) WITH n LIMIT 1.0e0SET n.x = 1",
    "MATCH (n) CALL { WITH n SET n.x = 1 }",
    "MATCH (n) FOREACH (x IN [1] | SET n.a = x)",
    "MATCH (n) CALL db.create.setNodeVectorProperty(n, 'v', [1.0])",
    "MATCH (n) REMOVE n:Person",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n) WHERE EXISTS { MATCH (n) } SET n.x = 1",
    "UNWIND [1] AS x CREATE (:X)",
    "MERGE (n:X {id: 1}) ON CREATE SET n.c = 1",
    "MATCH (a), (b) CREATE (a)-[:R]->(b)",
    "CALL apoc.nodes.delete([], 1)",
];

/// LOAD CSV under the default policy, which does not allow it.
const LOAD_CSV: &[&str] = &[
    "LOAD CSV FROM 'file:///etc/hostname' AS r RETURN r",
    "LOAD CSV FROM 'file:///../../etc/hostname' AS r RETURN r",
    "LOAD CSV FROM 'file:/proc/self/cmdline' AS r RETURN r",
    "LOAD CSV FROM 'file://host/share/x.csv' AS r RETURN r",
    "LOAD CSV FROM 'https://evil.example/x.csv' AS r RETURN r",
    "LOAD CSV WITH HEADERS FROM \"http://evil.example/x.csv\" AS r RETURN r",
    "LOAD CSV FROM 'ht' + 'tp://evil.example' AS r RETURN r",
    "LOAD CSV FROM $url AS r RETURN r",
    "load csv from 'file:///x' as r return r",
    "MATCH (n) WITH n LOAD CSV FROM 'file:///x' AS r RETURN r",
    "UNWIND ['file:///x'] AS u LOAD CSV FROM u AS r RETURN r",
];

/// The whole corpus.
pub fn probes() -> Vec<Probe> {
    let mut probes = Vec::new();
    for statement in ADMIN {
        probes.push(deny("admin", "admin", *statement));
    }
    // The same commands with every separator Cypher reads as whitespace.
    for (i, separator) in [
        '\u{1C}', '\u{1D}', '\u{1E}', '\u{1F}', '\u{A0}', '\u{2003}', '\u{3000}', '\u{85}',
    ]
    .iter()
    .enumerate()
    {
        let statement = ADMIN[i % 4].replacen(' ', &separator.to_string(), 1);
        probes.push(deny("whitespace", "admin", statement));
    }
    probes.push(deny(
        "comments",
        "admin",
        "CREATE /* harmless */ USER m SET PASSWORD 'x'",
    ));
    probes.push(deny(
        "comments",
        "admin",
        "CREATE // line\n USER m SET PASSWORD 'x'",
    ));
    probes.push(deny("case", "admin", "cReAtE uSeR m SET PASSWORD 'x'"));
    for statement in RESERVED {
        probes.push(deny("reserved", "reserved", *statement));
    }
    for statement in DYNAMIC {
        probes.push(deny("dynamic label", "dynamic-label", *statement));
    }
    for (rule, statement) in CALLS {
        probes.push(deny("calls", rule, *statement));
    }
    for statement in UNPARSED {
        probes.push(deny("unparsed", "unparsed", *statement));
    }
    // Nesting deep enough to overflow the parser's stack is refused unread.
    for (open, close) in [
        ("(", ")"),
        ("[", "]"),
        ("{a: ", "}"),
        ("CASE WHEN true THEN ", " END"),
    ] {
        probes.push(deny(
            "deep nesting",
            "unparsed",
            format!("RETURN {}1{}", open.repeat(20_000), close.repeat(20_000)),
        ));
    }
    for prefix in ["NOT ", "-", "- ", "+"] {
        probes.push(deny(
            "deep nesting",
            "unparsed",
            format!("RETURN {}1", prefix.repeat(20_000)),
        ));
    }
    for statement in HIDDEN_WRITES {
        probes.push(deny_read_only("read-only", "write", *statement));
    }
    probes.push(deny_read_only(
        "read-only",
        "schema",
        "CREATE INDEX i IF NOT EXISTS FOR (n:X) ON (n.p)",
    ));
    for statement in LOAD_CSV {
        probes.push(deny("load csv", "load-csv", *statement));
    }
    probes.push(deny(
        "multiple statements",
        "multiple-statements",
        "MATCH (n) RETURN n; DROP DATABASE graphmig",
    ));
    probes.push(deny(
        "multiple statements",
        "multiple-statements",
        "RETURN 1;\u{1C}CREATE USER m SET PASSWORD 'x'",
    ));

    for statement in [
        "MATCH (show:Show) RETURN show.title",
        "MATCH (call:Call) RETURN call.duration",
        "MATCH (grant:Grant) RETURN grant.amount",
        "MATCH (drop:Drop) RETURN drop.name",
        "MATCH (set:Thing) RETURN set.name",
        "MATCH (user:User {role: 'admin'}) RETURN user.database",
        "MATCH (n) SET n.create = 1, n.database = 'x' RETURN n.user",
        "MATCH (n) RETURN n.index AS index, n.constraint AS constraint",
        "MATCH (u:User:Grant {role: 'admin'}) RETURN u",
        "RETURN 'CREATE DATABASE x; CALL dbms.security.createUser()' AS text",
        "MATCH (n) RETURN n // CREATE DATABASE x",
        "MATCH (n) RETURN n /* USE system */",
        "RETURN 'graphmig' AS name",
    ] {
        probes.push(allow("keywords as names", statement));
    }
    for statement in [
        "SHOW FUNCTIONS",
        "SHOW PROCEDURES",
        "SHOW INDEXES",
        "SHOW CONSTRAINTS",
        "SHOW RANGE INDEXES",
        "SHOW CURRENT GRAPH TYPE",
        "SHOW INDEXES YIELD name, type RETURN name",
    ] {
        probes.push(allow("introspection", statement));
    }
    for statement in [
        "MATCH (n) WHERE NOT n:__GraphmigMigration DETACH DELETE n",
        "MATCH (n) WHERE NOT n:__GraphmigMigration AND NOT n:__GraphmigLock AND n.x = 1 DETACH DELETE n",
        "MATCH (n:Person) RETURN n.name",
        "UNWIND $rows AS r CREATE (:Person {name: r.name})",
        "MERGE (p:Person {id: 1}) ON CREATE SET p.created = 1 ON MATCH SET p.seen = 2",
        "MATCH (a:Person), (b:Person) WHERE a.id < b.id CREATE (a)-[:KNOWS {since: 2020}]->(b)",
        "MATCH (p:Person) WHERE p.id IS NULL SET p.id = randomUUID()",
        "MATCH (n) WHERE COUNT { (n)--() } > 1 RETURN n",
        "MATCH (n) WHERE EXISTS { MATCH (n)--(m) } RETURN n",
        "MATCH (n) RETURN COLLECT { MATCH (n)--(m) RETURN m.name } AS names",
        "MATCH (n) CALL { WITH n RETURN count(*) AS c } RETURN c",
        "CALL db.labels() YIELD label RETURN label",
        "RETURN point.distance(point({x: 1, y: 2}), point({x: 2, y: 3})) AS d",
        "RETURN date('2020-01-01') AS d, datetime.statement() AS t",
        "MATCH (n:Person) WITH n ORDER BY n.name SKIP 1 LIMIT 2 RETURN n.name",
        "MATCH (n) RETURN n UNION MATCH (m) RETURN m AS n",
        "RETURN [x IN range(1, 10) WHERE x % 2 = 0 | x * 2] AS xs",
        "MATCH (n) CREATE (m:$('Literal'))",
        "MATCH (n) SET n:$('Literal')",
        "MATCH (n) REMOVE n:$(\"Literal\")",
        "MATCH (a), (b) CREATE (a)-[:$('LINKS')]->(b)",
        "CREATE CONSTRAINT person_id IF NOT EXISTS FOR (p:Person) REQUIRE p.id IS UNIQUE",
        "CREATE INDEX person_name IF NOT EXISTS FOR (p:Person) ON (p.name)",
        "DROP INDEX person_name IF EXISTS",
        "CREATE (n:`Weird Label` {`my prop`: 1})",
        "MATCH (n) RETURN n;",
        // Allowed by the policy; the host runs it in auto-commit, as it must.
        "MATCH (n) CALL { WITH n SET n.x = 1 } IN TRANSACTIONS OF 10 ROWS",
        "MATCH (n) CALL { WITH n SET n.x = 1 } IN TRANSACTIONS OF 10 ROWS ON ERROR FAIL",
    ] {
        probes.push(allow("ordinary", statement));
    }
    probes
}
