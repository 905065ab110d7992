#!/usr/bin/env bash
# The polyglot example, end to end: installs the pinned guest toolchains (once:
# the Go tooling is built with cargo and takes several minutes), starts a local
# ArcadeDB on 127.0.0.1:7687, builds the five migrations (Cypher, JavaScript,
# Python, Go, Rust), applies them, shows the graph, then reverts them all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

scripts/setup.sh
scripts/toolchains.sh all
PATH="$(scripts/toolchains.sh path):$PATH"
export PATH
scripts/arcadedb.sh start demo 7687 2480 polyglot
echo "==> building graphmig"
cargo build --release -p graphmig
GRAPHMIG="$ROOT/target/release/graphmig"

# The database, graphmig's history database beside it, and the migration user the
# server limits to the first (see the README's "The sandbox").
scripts/arcadedb.sh fresh-project 2480 polyglot polyglot_history graphmig_migrator
rm -f examples/polyglot/.graphmig/ledger.db*

GRAPHMIG_PASSWORD="$(scripts/arcadedb.sh password)"
GRAPHMIG_MIGRATION_PASSWORD="$(scripts/arcadedb.sh migration-password)"
export GRAPHMIG_PASSWORD GRAPHMIG_MIGRATION_PASSWORD
cd examples/polyglot
echo "==> graphmig build"
"$GRAPHMIG" build
echo "==> graphmig run"
"$GRAPHMIG" run
echo "==> graphmig status"
"$GRAPHMIG" status
echo "==> the graph"
curl -sS -u "root:$GRAPHMIG_PASSWORD" -H 'Content-Type: application/json' \
  -X POST http://127.0.0.1:2480/api/v1/command/polyglot \
  -d '{"language":"cypher","command":"MATCH (p:Person)-[:LIVES_IN]->(c:City) RETURN c.name AS city, p.generation AS generation, count(p) AS people ORDER BY city, generation LIMIT 12"}' |
  python3 -c 'import json, sys
for r in json.load(sys.stdin)["result"]:
    print("  %-10s %-14s %3d" % (r["city"], r["generation"], r["people"]))'
echo "==> graphmig down --target 0"
"$GRAPHMIG" down --target 0
"$GRAPHMIG" status
