#!/usr/bin/env bash
# Runs every test of graphmig. Installs what the tests need by itself (the
# wasm32-wasip2 Rust target, ArcadeDB from PyPI, and the pinned JavaScript,
# Python and Go guest toolchains into .dev/toolchains), starts a private ArcadeDB
# on 127.0.0.1, runs the whole suite against it and stops it again.
set -euo pipefail
cd "$(dirname "$0")/.."

BOLT_PORT="${GRAPHMIG_TEST_BOLT_PORT:-7688}"
HTTP_PORT="${GRAPHMIG_TEST_HTTP_PORT:-2481}"

scripts/setup.sh
scripts/toolchains.sh all
PATH="$(scripts/toolchains.sh path):$PATH"
export PATH
scripts/arcadedb.sh start test "$BOLT_PORT" "$HTTP_PORT" graphmig
trap 'scripts/arcadedb.sh stop test' EXIT

export GRAPHMIG_TEST_BOLT_PORT="$BOLT_PORT"
export GRAPHMIG_TEST_HTTP_PORT="$HTTP_PORT"
GRAPHMIG_TEST_PASSWORD="$(scripts/arcadedb.sh password)"
export GRAPHMIG_TEST_PASSWORD

cargo fmt --all -- --check
rm -f target/hostile-suite.md
# Release, like the demo: one build of wasmtime serves both.
cargo test --release --workspace
echo
echo "Hostile-migration suite:"
cat target/hostile-suite.md
