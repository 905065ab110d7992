//! What a migration is: its version, description, artifact and checksum.

use std::cmp::Ordering;
use std::fmt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// A migration version: digits in parts separated by `_` or `.`, compared part by
/// part as numbers (`1_2` < `1_10`, and `1_2` equals `1.2` and `01_2`).
#[derive(Debug, Clone)]
pub struct Version {
    parts: Vec<u64>,
    text: String,
}

impl Version {
    /// Parses the version part of a file name (`1`, `1_2`, `2026.11.22`).
    pub fn parse(text: &str) -> Option<Version> {
        if text.is_empty() {
            return None;
        }
        let parts = text
            .split(['_', '.'])
            .map(|part| {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    part.parse::<u64>().ok()
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Version {
            parts,
            text: text.to_string(),
        })
    }

    /// The version as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Significant parts, trailing zeros dropped, so that `1` and `1.0` compare equal.
    fn significant(&self) -> &[u64] {
        let end = self
            .parts
            .iter()
            .rposition(|p| *p != 0)
            .map_or(0, |last| last + 1);
        &self.parts[..end]
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.significant() == other.significant()
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.significant().cmp(other.significant())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// SHA-256 of a migration artifact's bytes, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum(String);

impl Checksum {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Checksum {
        Checksum(hex::encode(Sha256::digest(bytes)))
    }

    /// Wraps a hex digest read back from the ledger.
    pub fn from_hex(hex: impl Into<String>) -> Checksum {
        Checksum(hex.into())
    }

    /// The digest as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for tables.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of artifact a migration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A WebAssembly component of the `graphmig:migration/migration` world.
    Component,
}

/// One migration of the chain, as found on disk.
#[derive(Debug, Clone)]
pub struct Migration {
    version: Version,
    description: String,
    path: PathBuf,
    kind: ArtifactKind,
    checksum: Checksum,
}

impl Migration {
    pub(crate) fn new(
        version: Version,
        description: String,
        path: PathBuf,
        kind: ArtifactKind,
        checksum: Checksum,
    ) -> Self {
        Migration {
            version,
            description,
            path,
            kind,
            checksum,
        }
    }

    /// Its version.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// Its description, from the file name with `_` read as spaces.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Where its artifact is.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// What kind of artifact it is.
    pub fn kind(&self) -> ArtifactKind {
        self.kind
    }

    /// SHA-256 of the artifact.
    pub fn checksum(&self) -> &Checksum {
        &self.checksum
    }

    /// `V<version> <description>`, for messages.
    pub fn label(&self) -> String {
        format!("V{} {}", self.version, self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("valid version")
    }

    #[test]
    fn versions_compare_numerically_part_by_part() {
        assert!(v("2") < v("10"));
        assert!(v("1_2") < v("1_10"));
        assert!(v("1.9.9") < v("2"));
        assert_eq!(v("1_2"), v("1.2"));
        assert_eq!(v("01"), v("1"));
        assert_eq!(v("1"), v("1.0"));
    }

    #[test]
    fn rejects_versions_that_are_not_digits() {
        for bad in ["", "a", "1__2", "1_", "_1", "1-2", "1 2", "１"] {
            assert!(Version::parse(bad).is_none(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn checksum_is_sha256_hex() {
        assert_eq!(
            Checksum::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
