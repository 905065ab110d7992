#!/usr/bin/env bash
# Installs the toolchain pieces graphmig's demo and tests need: the wasm32-wasip2
# Rust target (for building migrations) and a local ArcadeDB.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: adding the wasm32-wasip2 Rust target" >&2
    rustup target add wasm32-wasip2
  fi
else
  echo "setup: rustup not found; make sure your Rust has the wasm32-wasip2 target" >&2
fi
scripts/arcadedb.sh install
