//! The memory limiter: caps linear memory and remembers a refused growth so the
//! error can name the limit (a refused `memory.grow` otherwise surfaces as a bare
//! `unreachable` trap from the guest's allocator).

use wasmtime::ResourceLimiter;

/// Caps linear memory and records the growth it refused.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    denied: Option<usize>,
}

impl MemoryLimiter {
    /// A limiter allowing `max_bytes` per memory.
    pub fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            denied: None,
        }
    }

    /// The size of the largest refused growth, if any was refused.
    pub fn denied(&self) -> Option<usize> {
        self.denied
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.denied = Some(self.denied.map_or(desired, |d| d.max(desired)));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any
        // real migration and keeps a table bomb from eating host memory.
        Ok(desired <= 1_000_000)
    }
}
