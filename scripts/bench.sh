#!/usr/bin/env bash
# Runs graphmig's criterion benchmarks: builds the bench guests, starts a private
# ArcadeDB on 127.0.0.1 for the ingest and backfill benches, runs them all, and
# stops the server. Figures land in target/criterion; the latest
# are summarised by hand in benches/README.md. Pass bench names to run some:
#   scripts/bench.sh                 all five
#   scripts/bench.sh runtime ingest
set -euo pipefail
cd "$(dirname "$0")/.."

BOLT_PORT="${GRAPHMIG_BENCH_BOLT_PORT:-7696}"
HTTP_PORT="${GRAPHMIG_BENCH_HTTP_PORT:-2489}"
if [[ $# -gt 0 ]]; then BENCHES=("$@"); else BENCHES=(chain runtime ingest backfill policy); fi

scripts/setup.sh
cargo build --release -p graphmig
(cd benches/guests && ../../target/release/graphmig build)
(cd tests/fixtures/guests && GRAPHMIG_BUILD_TARGET_DIR=../../../target/guests ../../../target/release/graphmig build >/dev/null)

if [[ " ${BENCHES[*]} " == *" ingest "* || " ${BENCHES[*]} " == *" backfill "* ]]; then
  scripts/arcadedb.sh start benches "$BOLT_PORT" "$HTTP_PORT"
  trap 'scripts/arcadedb.sh stop benches' EXIT
  for db in ingest_bench backfill_bench; do
    scripts/arcadedb.sh drop-db "$HTTP_PORT" "$db" >/dev/null 2>&1 || true
    scripts/arcadedb.sh create-db "$HTTP_PORT" "$db"
  done
fi
export GRAPHMIG_BENCH_BOLT_PORT="$BOLT_PORT" GRAPHMIG_BENCH_HTTP_PORT="$HTTP_PORT"
GRAPHMIG_BENCH_PASSWORD="$(scripts/arcadedb.sh password)"
export GRAPHMIG_BENCH_PASSWORD

args=()
for bench in "${BENCHES[@]}"; do
  args+=(--bench "$bench")
done
cargo bench -p graphmig "${args[@]}"
