//! End-to-end tests: the real `graphmig` binary, real Wasm guests, and a real
//! ArcadeDB server over Bolt (started by `scripts/test.sh`).

mod backfill;
mod bad_input;
mod batches;
mod deadlines;
mod deferred_schema;
mod down;
mod failures;
mod faults;
mod hostile;
mod large_data;
mod memory;
mod output;
mod people;
mod policy;
mod polyglot;
mod privileges;
mod quickstart;
mod recovery;
mod relay;
mod support;
mod trust;
