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

/// What identifies a migration: a version, or for repeatable migrations
/// (`R__<description>`) the description. Versioned migrations order first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MigrationId {
    /// `V<version>__<description>`: applied once, in version order.
    Versioned(Version),
    /// `R__<description>`: applied again whenever its checksum changes, after
    /// the versioned migrations.
    Repeatable(String),
}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.significant().hash(state);
    }
}

impl MigrationId {
    /// The key stored in the ledger and the graph: the version as written, or
    /// `R__<description>`.
    pub fn key(&self) -> String {
        match self {
            MigrationId::Versioned(v) => v.as_str().to_string(),
            MigrationId::Repeatable(d) => format!("R__{}", d.replace(' ', "_")),
        }
    }

    /// Reads a key written by [`MigrationId::key`], or a user's `V3` / `R__name`.
    pub fn parse_key(key: &str) -> Option<MigrationId> {
        if let Some(description) = key.strip_prefix("R__") {
            return (!description.is_empty())
                .then(|| MigrationId::Repeatable(description.replace('_', " ")));
        }
        Version::parse(key.strip_prefix('V').unwrap_or(key)).map(MigrationId::Versioned)
    }

    /// The version, for versioned migrations.
    pub fn version(&self) -> Option<&Version> {
        match self {
            MigrationId::Versioned(v) => Some(v),
            MigrationId::Repeatable(_) => None,
        }
    }
}

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationId::Versioned(v) => write!(f, "V{v}"),
            MigrationId::Repeatable(d) => write!(f, "R__{}", d.replace(' ', "_")),
        }
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

    /// The checksum of a migration made of a main file and an optional undo
    /// file: the main file's SHA-256 alone when there is no undo file (so that
    /// `sha256sum` agrees), else one SHA-256 over both, separated.
    pub fn of_files(main: &[u8], undo: Option<&[u8]>) -> Checksum {
        match undo {
            None => Checksum::of(main),
            Some(undo) => {
                let mut hasher = Sha256::new();
                hasher.update(main);
                hasher.update(b"\0graphmig-undo\0");
                hasher.update(undo);
                Checksum(hex::encode(hasher.finalize()))
            }
        }
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
    /// A `.cypher` file run by the host, with an optional `U…` undo file.
    Cypher,
}

/// One migration of the chain, as found on disk.
#[derive(Debug, Clone)]
pub struct Migration {
    id: MigrationId,
    description: String,
    path: PathBuf,
    kind: ArtifactKind,
    checksum: Checksum,
    undo: Option<PathBuf>,
}

impl Migration {
    pub(crate) fn new(
        id: MigrationId,
        description: String,
        path: PathBuf,
        kind: ArtifactKind,
        checksum: Checksum,
    ) -> Self {
        Migration {
            id,
            description,
            path,
            kind,
            checksum,
            undo: None,
        }
    }

    /// Attaches the undo script of a Cypher migration; the checksum then covers
    /// both files, like a component's covers its `up` and `down`.
    pub(crate) fn with_undo(mut self, undo: PathBuf, checksum: Checksum) -> Self {
        self.undo = Some(undo);
        self.checksum = checksum;
        self
    }

    /// The undo script of a Cypher migration, if it has one.
    pub fn undo_path(&self) -> Option<&std::path::Path> {
        self.undo.as_deref()
    }

    /// Its identity.
    pub fn id(&self) -> &MigrationId {
        &self.id
    }

    /// Whether it is a repeatable migration.
    pub fn is_repeatable(&self) -> bool {
        matches!(self.id, MigrationId::Repeatable(_))
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

    /// `V<version> <description>` (or `R <description>`), for messages.
    pub fn label(&self) -> String {
        match &self.id {
            MigrationId::Versioned(v) => format!("V{v} {}", self.description),
            MigrationId::Repeatable(_) => format!("R {}", self.description),
        }
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
    fn ids_order_versions_first_and_round_trip_through_keys() {
        let r = MigrationId::Repeatable("refresh views".into());
        let ten = MigrationId::Versioned(v("10"));
        assert!(ten < r);
        assert_eq!(MigrationId::parse_key(&r.key()), Some(r.clone()));
        assert_eq!(
            MigrationId::parse_key("V1_2"),
            Some(MigrationId::Versioned(v("1.2")))
        );
        assert_eq!(r.to_string(), "R__refresh_views");
    }

    #[test]
    fn checksum_is_sha256_hex() {
        assert_eq!(
            Checksum::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
