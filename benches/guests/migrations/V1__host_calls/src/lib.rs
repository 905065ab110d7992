//! Bench guest: 10,000 guest-to-host calls (`log`) inside `describe`, the one
//! export the host calls without a database, so the bench measures the call.

use graphmig_sdk::__private::bindings::graphmig::migration::{context, types::LogLevel};

/// How many calls one `describe` makes; the bench divides by it.
pub const CALLS: usize = 10_000;

fn call_host() -> &'static str {
    for i in 0..CALLS {
        context::log(LogLevel::Debug, if i % 2 == 0 { "ping" } else { "pong" });
    }
    "host calls"
}

graphmig_sdk::migration! { description: call_host(), up: up }

fn up(_ctx: &graphmig_sdk::Context) -> graphmig_sdk::Result<()> {
    Ok(())
}
