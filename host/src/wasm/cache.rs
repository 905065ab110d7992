//! The compiled-component cache: components compiled once, stored on disk keyed by
//! the artifact's SHA-256, the engine configuration and the wasmtime version, and
//! loaded again by mmap. An entry whose bytes no longer match its recorded digest
//! is discarded and rebuilt, never loaded.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::migration::Checksum;

/// A folder of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

/// Whether a load came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid entry.
    Hit,
    /// Compiled (no entry, or a stale or corrupt one) and stored.
    Compiled,
}

/// Feeds wasmtime's compatibility hash into SHA-256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ComponentCache {
    /// A cache in `dir` for components compiled by `engine`.
    pub fn new(dir: &Path, engine: &Engine) -> ComponentCache {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        // The compatibility hash covers the engine's settings and wasmtime's own
        // version; the crate version is added so a graphmig upgrade starts afresh.
        hasher.write(env!("CARGO_PKG_VERSION").as_bytes());
        let engine_key = hex::encode(hasher.0.finalize())[..16].to_string();
        ComponentCache {
            dir: dir.to_path_buf(),
            engine_key,
        }
    }

    fn entry(&self, checksum: &Checksum) -> (PathBuf, PathBuf) {
        let stem = format!("{}-{}", checksum.as_str(), self.engine_key);
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.sha256")),
        )
    }

    /// Loads the component for `bytes` (whose SHA-256 is `checksum`) from the
    /// cache, or compiles and stores it.
    pub fn load(
        &self,
        engine: &Engine,
        checksum: &Checksum,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let (compiled, digest) = self.entry(checksum);
        if let Some(component) = self.load_entry(engine, &compiled, &digest) {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = Component::new(engine, bytes)?;
        // A cache that cannot be written only costs time.
        if let Err(e) = self.store(&component, &compiled, &digest) {
            tracing::warn!(path = %compiled.display(), error = %e, "cannot write the component cache");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn load_entry(&self, engine: &Engine, compiled: &Path, digest: &Path) -> Option<Component> {
        let recorded = std::fs::read_to_string(digest).ok()?;
        let contents = std::fs::read(compiled).ok()?;
        if hex::encode(Sha256::digest(&contents)) != recorded.trim() {
            tracing::warn!(path = %compiled.display(), "corrupt component cache entry; recompiling");
            let _ = std::fs::remove_file(compiled);
            let _ = std::fs::remove_file(digest);
            return None;
        }
        drop(contents);
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output
        // for a compatible engine. graphmig wrote it (`store`), its name carries the
        // engine's compatibility hash, and its SHA-256 was just checked against the
        // digest recorded when it was written, so it is exactly those bytes.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, compiled) };
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %compiled.display(), error = %e, "stale component cache entry; recompiling");
                let _ = std::fs::remove_file(compiled);
                let _ = std::fs::remove_file(digest);
                None
            }
        }
    }

    fn store(&self, component: &Component, compiled: &Path, digest: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let serialized = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let partial = compiled.with_extension("cwasm.partial");
        std::fs::write(&partial, &serialized)?;
        std::fs::rename(&partial, compiled)?;
        std::fs::write(digest, hex::encode(Sha256::digest(&serialized)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A minimal valid component.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_second_load_hits_and_a_corrupt_entry_is_rebuilt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("engine");
        let cache = ComponentCache::new(dir.path(), &engine);
        let checksum = Checksum::of(EMPTY_COMPONENT);

        let (_, first) = cache
            .load(&engine, &checksum, EMPTY_COMPONENT)
            .expect("compile");
        assert_eq!(first, CacheOutcome::Compiled);
        let (_, second) = cache
            .load(&engine, &checksum, EMPTY_COMPONENT)
            .expect("load");
        assert_eq!(second, CacheOutcome::Hit);

        let (compiled, _) = cache.entry(&checksum);
        let mut bytes = std::fs::read(&compiled).expect("entry");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xFF;
        std::fs::write(&compiled, bytes).expect("corrupt");
        let (_, third) = cache
            .load(&engine, &checksum, EMPTY_COMPONENT)
            .expect("rebuild");
        assert_eq!(
            third,
            CacheOutcome::Compiled,
            "a corrupt entry is rebuilt, not loaded"
        );
        let (_, fourth) = cache
            .load(&engine, &checksum, EMPTY_COMPONENT)
            .expect("load");
        assert_eq!(fourth, CacheOutcome::Hit);
    }
}
