#!/usr/bin/env bash
# The quickstart, end to end: installs what is needed, starts a local ArcadeDB on
# 127.0.0.1:7687, builds graphmig and the example's migrations, applies them, shows
# the status and the graph. Each run starts from an empty `quickstart` database.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

scripts/setup.sh
scripts/arcadedb.sh start demo 7687 2480 quickstart
echo "==> building graphmig (the first build compiles wasmtime and takes a while)"
cargo build --release -p graphmig
GRAPHMIG="$ROOT/target/release/graphmig"

# A clean slate, so the demo always shows the whole chain being applied.
# The database, graphmig's history database beside it, and the migration user the
# server limits to the first (see the README's "The sandbox").
scripts/arcadedb.sh fresh-project 2480 quickstart quickstart_history graphmig_migrator
rm -f examples/quickstart/.graphmig/ledger.db*

GRAPHMIG_PASSWORD="$(scripts/arcadedb.sh password)"
GRAPHMIG_MIGRATION_PASSWORD="$(scripts/arcadedb.sh migration-password)"
export GRAPHMIG_PASSWORD GRAPHMIG_MIGRATION_PASSWORD
cd examples/quickstart
echo "==> graphmig build"
"$GRAPHMIG" build
echo "==> graphmig run"
"$GRAPHMIG" run
echo "==> graphmig status"
"$GRAPHMIG" status
echo "==> graphmig run (again: nothing to do)"
"$GRAPHMIG" run
echo "==> the graph"
curl -sS -u "root:$GRAPHMIG_PASSWORD" -H 'Content-Type: application/json' \
  -X POST http://127.0.0.1:2480/api/v1/command/quickstart \
  -d '{"language":"cypher","command":"MATCH (p:Person) OPTIONAL MATCH (p)-[w:WORKS_AT]->(c:Company) RETURN p.name AS person, c.name AS company, w.since AS since ORDER BY person"}' |
  python3 -c 'import json, sys
for r in json.load(sys.stdin)["result"]:
    print("  %-16s %-24s %s" % (r["person"], r.get("company") or "-", r.get("since") or ""))'
echo
echo "ArcadeDB keeps running on bolt://127.0.0.1:7687 (user root, password: scripts/arcadedb.sh password)."
echo "Stop it with: scripts/arcadedb.sh stop demo"
