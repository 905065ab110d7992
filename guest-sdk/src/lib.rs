//! Write graphmig migrations in Rust: plain functions, typed Cypher values, no wit-bindgen.
//!
//! A migration is a `cdylib` crate built for `wasm32-wasip2` (`graphmig build` does
//! that for you). It declares its steps with [`migration!`]:
//!
//! ```no_run
//! use graphmig_sdk::{params, Context, Result};
//!
//! graphmig_sdk::migration! {
//!     description: "Create the first people",
//!     up: up,
//!     down: down,
//! }
//!
//! fn up(ctx: &Context) -> Result<()> {
//!     ctx.run("CREATE (:Person {name: $name, born: $born})", params! {
//!         "name" => "Ada",
//!         "born" => 1815,
//!     })?;
//!     Ok(())
//! }
//!
//! fn down(ctx: &Context) -> Result<()> {
//!     ctx.run("MATCH (p:Person {name: $name}) DETACH DELETE p", params! { "name" => "Ada" })?;
//!     Ok(())
//! }
//! ```
//!
//! Every statement of one step runs in one transaction that the host commits when the
//! step returns `Ok` and rolls back otherwise.

// The generated bindings name this crate by its public path, also from inside it.
extern crate self as graphmig_sdk;

mod backfill;
mod batch;
mod context;
mod error;
pub mod schema;
mod value;
mod wire;

pub use backfill::{Backfill, BackfillReport};
pub use batch::{Batch, Endpoint};
pub use context::{Context, QueryResult, Row};
pub use error::{Error, GraphError, GraphErrorKind, Result};
pub use value::{FromValue, Node, Params, Relationship, Value};

/// Whether a migration's `down` step can undo its `up` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rollback {
    /// `down` undoes `up` (the default).
    #[default]
    Reversible,
    /// `up` cannot be undone; the host refuses `down` unless forced.
    Irreversible,
}

/// Declares a migration: its description, its `up` step and, optionally, its `down`
/// step and rollback policy.
///
/// Steps are functions `fn(&Context) -> Result<()>`. A migration without `down`
/// is reverted by deleting the batches its `up` wrote; one that wrote none cannot
/// be reverted.
///
/// ```no_run
/// # use graphmig_sdk::{Context, Result};
/// graphmig_sdk::migration! {
///     description: "Backfill a flag that cannot be told apart afterwards",
///     rollback: Irreversible,
///     up: up,
/// }
/// fn up(ctx: &Context) -> Result<()> {
///     ctx.run("MATCH (p:Person) SET p.active = true", graphmig_sdk::params! {})?;
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! migration {
    (
        description: $description:expr,
        $(rollback: $rollback:ident,)?
        up: $up:path
        $(, down: $down:path)?
        $(,)?
    ) => {
        struct __GraphmigMigration;

        impl $crate::__private::Guest for __GraphmigMigration {
            fn describe() -> $crate::__private::Metadata {
                #[allow(unused_mut, unused_assignments)]
                let mut rollback = $crate::Rollback::Reversible;
                $(rollback = $crate::Rollback::$rollback;)?
                #[allow(unused_mut, unused_assignments)]
                let mut has_down = false;
                $(let _ = $down; has_down = true;)?
                $crate::__private::metadata($description, rollback, has_down)
            }

            fn up() -> ::core::result::Result<(), ::std::string::String> {
                $crate::__private::run_step($up)
            }

            fn down() -> ::core::result::Result<(), ::std::string::String> {
                #[allow(unused_mut, unused_assignments)]
                let mut step: ::core::option::Option<fn(&$crate::Context) -> $crate::Result<()>> =
                    ::core::option::Option::None;
                $(step = ::core::option::Option::Some($down);)?
                match step {
                    ::core::option::Option::Some(step) => $crate::__private::run_step(step),
                    ::core::option::Option::None => ::core::result::Result::Err(
                        ::std::string::String::from("this migration has no down step"),
                    ),
                }
            }
        }

        $crate::__private::bindings::export_migration!(
            __GraphmigMigration with_types_in $crate::__private::bindings
        );
    };
}

/// Builds [`Params`] from `"name" => value` pairs; values are anything that converts
/// into a [`Value`].
///
/// ```
/// let p = graphmig_sdk::params! { "name" => "Ada", "born" => 1815, "tags" => vec!["math"] };
/// assert_eq!(p.len(), 3);
/// ```
#[macro_export]
macro_rules! params {
    () => { $crate::Params::new() };
    ($($name:expr => $value:expr),+ $(,)?) => {{
        let mut params = $crate::Params::new();
        $(params.insert($name, $value);)+
        params
    }};
}

#[doc(hidden)]
pub mod __private {
    //! Support for the macros; not part of the public API.

    pub use wit_bindgen;

    #[allow(missing_docs, unsafe_code, clippy::all)]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "migration",
            path: "../wit",
            pub_export_macro: true,
            export_macro_name: "export_migration",
            default_bindings_module: "graphmig_sdk::__private::bindings",
            runtime_path: "graphmig_sdk::__private::wit_bindgen::rt",
        });
    }

    use bindings::exports::graphmig::migration::lifecycle::RollbackPolicy;
    pub use bindings::exports::graphmig::migration::lifecycle::{Guest, Metadata};

    /// Builds the WIT metadata record.
    pub fn metadata(description: &str, rollback: crate::Rollback, has_down: bool) -> Metadata {
        Metadata {
            description: description.to_string(),
            rollback: match rollback {
                crate::Rollback::Reversible => RollbackPolicy::Reversible,
                crate::Rollback::Irreversible => RollbackPolicy::Irreversible,
            },
            has_down,
        }
    }

    /// Runs one step and turns its error into the message the host shows.
    pub fn run_step(step: fn(&crate::Context) -> crate::Result<()>) -> Result<(), String> {
        step(&crate::Context::new()).map_err(|error| error.to_string())
    }
}
