//! The one `bindgen!` of the host: Rust types for the `graphmig:migration` world.

// Generated code carries the WIT docs where the WIT has them.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "migration",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: { "graphmig:migration/context.batch-writer": super::host_batch::BatchWriter },
});
