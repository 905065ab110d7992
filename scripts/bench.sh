#!/usr/bin/env bash
# Runs graphmig's criterion benchmarks: builds the bench guests, starts a private
# ArcadeDB on 127.0.0.1 for the ingest bench, runs `chain`, `runtime` and
# `ingest`, and stops the server. Figures land in target/criterion; the latest
# are summarised by hand in benches/README.md. Pass bench names to run some:
#   scripts/bench.sh                 all four
#   scripts/bench.sh runtime ingest
set -euo pipefail
cd "$(dirname "$0")/.."

BOLT_PORT="${GRAPHMIG_BENCH_BOLT_PORT:-7696}"
HTTP_PORT="${GRAPHMIG_BENCH_HTTP_PORT:-2489}"
if [[ $# -gt 0 ]]; then BENCHES=("$@"); else BENCHES=(chain runtime ingest policy); fi

scripts/setup.sh
cargo build --release -p graphmig
(cd benches/guests && ../../target/release/graphmig build)
(cd tests/fixtures/guests && GRAPHMIG_BUILD_TARGET_DIR=../../../target/guests ../../../target/release/graphmig build >/dev/null)

if [[ " ${BENCHES[*]} " == *" ingest "* ]]; then
  scripts/arcadedb.sh start benches "$BOLT_PORT" "$HTTP_PORT"
  trap 'scripts/arcadedb.sh stop benches' EXIT
  scripts/arcadedb.sh drop-db "$HTTP_PORT" ingest_bench >/dev/null 2>&1 || true
  scripts/arcadedb.sh create-db "$HTTP_PORT" ingest_bench
fi
export GRAPHMIG_BENCH_BOLT_PORT="$BOLT_PORT" GRAPHMIG_BENCH_HTTP_PORT="$HTTP_PORT"
GRAPHMIG_BENCH_PASSWORD="$(scripts/arcadedb.sh password)"
export GRAPHMIG_BENCH_PASSWORD

args=()
for bench in "${BENCHES[@]}"; do
  args+=(--bench "$bench")
done
cargo bench -p graphmig "${args[@]}"
