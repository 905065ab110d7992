//! The host side of the `context` interface: Cypher inside the migration's
//! transaction, and logging.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiCtx;

use super::bindings::graphmig::migration::{context, types};
use super::limits::MemoryLimiter;
use super::values::{bolt_to_value, value_to_bolt};
use crate::error::FailedStatement;
use crate::graph::{GraphError, GraphErrorKind, GraphTxn};
use crate::reporter::{LogLevel, Reporter};

/// Per-instance state: WASI (granting nothing), limits, and the open transaction.
pub struct GuestState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    txn: Option<GraphTxn>,
    statements: u32,
    doomed: Option<FailedStatement>,
    logs: Vec<(String, String)>,
    reporter: Arc<dyn Reporter>,
    label: String,
}

impl GuestState {
    pub(super) fn new(
        wasi: WasiCtx,
        table: ResourceTable,
        limiter: MemoryLimiter,
        txn: Option<GraphTxn>,
        reporter: Arc<dyn Reporter>,
        label: String,
    ) -> Self {
        GuestState {
            wasi,
            table,
            limiter,
            txn,
            statements: 0,
            doomed: None,
            logs: Vec::new(),
            reporter,
            label,
        }
    }

    pub(super) fn take_txn(&mut self) -> Option<GraphTxn> {
        self.txn.take()
    }

    pub(super) fn doomed(&self) -> Option<&FailedStatement> {
        self.doomed.as_ref()
    }

    pub(super) fn statements(&self) -> u32 {
        self.statements
    }

    pub(super) fn take_logs(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.logs)
    }

    fn refuse(code: &str, kind: types::GraphErrorKind, message: String) -> types::GraphError {
        types::GraphError {
            kind,
            code: code.to_string(),
            message,
        }
    }
}

fn to_wit_error(error: &GraphError) -> types::GraphError {
    types::GraphError {
        kind: match error.kind {
            GraphErrorKind::Syntax => types::GraphErrorKind::Syntax,
            GraphErrorKind::ConstraintViolation => types::GraphErrorKind::ConstraintViolation,
            GraphErrorKind::Transient => types::GraphErrorKind::Transient,
            GraphErrorKind::Forbidden => types::GraphErrorKind::Forbidden,
            GraphErrorKind::Other => types::GraphErrorKind::Other,
        },
        code: error.code.clone(),
        message: error.message.clone(),
    }
}

impl types::Host for GuestState {}

impl context::Host for GuestState {
    async fn run_cypher(
        &mut self,
        query: String,
        params: Vec<(String, types::Value)>,
    ) -> wasmtime::Result<Result<types::QueryResult, types::GraphError>> {
        self.statements += 1;
        let index = self.statements;
        if let Some(failed) = &self.doomed {
            return Ok(Err(Self::refuse(
                "graphmig.TransactionDoomed",
                types::GraphErrorKind::Other,
                format!(
                    "statement #{} already failed ({}); the transaction will be rolled back",
                    failed.index, failed.code
                ),
            )));
        }
        let Some(txn) = self.txn.as_mut() else {
            return Ok(Err(Self::refuse(
                "graphmig.NoTransaction",
                types::GraphErrorKind::Forbidden,
                "run-cypher is not available while the host reads metadata".into(),
            )));
        };
        let mut bolt_params = Vec::with_capacity(params.len());
        for (name, value) in &params {
            match value_to_bolt(value) {
                Ok(bolt) => bolt_params.push((name.clone(), bolt)),
                Err(e) => {
                    let error = Self::refuse(
                        "graphmig.InvalidParameter",
                        types::GraphErrorKind::Other,
                        format!("parameter `{name}`: {e}"),
                    );
                    self.doomed = Some(super::failed_statement(
                        index,
                        &query,
                        &error.code,
                        &error.message,
                    ));
                    return Ok(Err(error));
                }
            }
        }
        tracing::debug!(migration = %self.label, statement = index, query = %query, "run-cypher");
        match txn.run(&query, bolt_params).await {
            Ok(rows) => Ok(Ok(types::QueryResult {
                rows: rows
                    .iter()
                    .map(|row| {
                        row.iter()
                            .map(|(name, value)| (name.clone(), bolt_to_value(value)))
                            .collect()
                    })
                    .collect(),
            })),
            Err(error) => {
                self.doomed = Some(super::failed_statement(
                    index,
                    &query,
                    &error.code,
                    &error.message,
                ));
                Ok(Err(to_wit_error(&error)))
            }
        }
    }

    async fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            types::LogLevel::Debug => LogLevel::Debug,
            types::LogLevel::Info => LogLevel::Info,
            types::LogLevel::Warn => LogLevel::Warn,
            types::LogLevel::Error => LogLevel::Error,
        };
        self.reporter.guest_log(&self.label, level, &message);
        self.logs.push((level.as_str().to_string(), message));
        Ok(())
    }
}
