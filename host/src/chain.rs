//! Discovers migration artifacts in a folder, parses their names and orders them.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::migration::{ArtifactKind, Checksum, Migration, MigrationId, Version};

/// The ordered migrations of a project.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    migrations: Vec<Migration>,
}

/// A file name that names a migration, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    /// The version, or the repeatable description.
    pub id: MigrationId,
    /// The description, `_` read as spaces.
    pub description: String,
}

/// Splits `V<version>__<description>` or `R__<description>` (the stem of a
/// migration file or folder).
pub fn parse_name(stem: &str) -> Option<ParsedName> {
    let (id, description) = if let Some(description) = stem.strip_prefix("R__") {
        let description = description.replace('_', " ").trim().to_string();
        (MigrationId::Repeatable(description.clone()), description)
    } else {
        let rest = stem.strip_prefix('V')?;
        let (version, description) = rest.split_once("__")?;
        let version = Version::parse(version)?;
        (
            MigrationId::Versioned(version),
            description.replace('_', " ").trim().to_string(),
        )
    };
    if description.is_empty() {
        return None;
    }
    Some(ParsedName { id, description })
}

impl Chain {
    /// Reads every `V<version>__<description>.wasm` or `.cypher` in `dir` (not
    /// recursively), attaches `U<version>__<description>.cypher` undo scripts to
    /// their Cypher migrations, and orders them by version.
    ///
    /// A `.wasm` or `.cypher` file with another name, an undo script without its
    /// migration, two files with the same version, or an unreadable folder is an
    /// error. Other files (sources, notes) are ignored.
    pub fn discover(dir: &Path) -> Result<Chain, Error> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::MigrationsDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut migrations: Vec<Migration> = Vec::new();
        let mut undo_scripts: Vec<(Version, PathBuf)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::MigrationsDir {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            let kind = match path.extension().and_then(|e| e.to_str()) {
                Some("wasm") => ArtifactKind::Component,
                Some("cypher") => ArtifactKind::Cypher,
                _ => continue,
            };
            if !path.is_file() {
                continue;
            }
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if kind == ArtifactKind::Cypher
                && let Some(version) = parse_undo_name(stem)
            {
                undo_scripts.push((version, path));
                continue;
            }
            let Some(parsed) = parse_name(stem) else {
                return Err(Error::BadMigrationName { path });
            };
            let bytes = read(&path)?;
            migrations.push(Migration::new(
                parsed.id,
                parsed.description,
                path,
                kind,
                Checksum::of(&bytes),
            ));
        }
        for (version, undo) in undo_scripts {
            let id = MigrationId::Versioned(version.clone());
            let Some(at) = migrations
                .iter()
                .position(|m| m.id() == &id && m.kind() == ArtifactKind::Cypher)
            else {
                return Err(Error::OrphanUndo {
                    path: undo,
                    version: version.to_string(),
                });
            };
            let main = read(migrations[at].path())?;
            let undo_bytes = read(&undo)?;
            let checksum = Checksum::of_files(&main, Some(&undo_bytes));
            migrations[at] = migrations[at].clone().with_undo(undo, checksum);
        }
        Chain::from_migrations(migrations)
    }

    /// Orders migrations and refuses duplicate versions.
    pub fn from_migrations(mut migrations: Vec<Migration>) -> Result<Chain, Error> {
        migrations.sort_by(|a, b| a.id().cmp(b.id()).then_with(|| a.path().cmp(b.path())));
        if let Some(pair) = migrations
            .windows(2)
            .find(|pair| pair[0].id() == pair[1].id())
        {
            return Err(Error::DuplicateVersion {
                version: pair[0].id().to_string(),
                first: pair[0].path().to_path_buf(),
                second: pair[1].path().to_path_buf(),
            });
        }
        Ok(Chain { migrations })
    }

    /// The migrations, lowest version first.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// The migration with this identity, if any.
    pub fn find(&self, id: &MigrationId) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.id() == id)
    }

    /// Number of migrations.
    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }
}

/// The version of an undo script's stem, `U<version>__<description>`.
fn parse_undo_name(stem: &str) -> Option<Version> {
    let (version, description) = stem.strip_prefix('U')?.split_once("__")?;
    if description.trim_matches('_').is_empty() {
        return None;
    }
    Version::parse(version)
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::ReadArtifact {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a migration's files again and checks they still have the checksum the
/// chain was resolved with; returns the main file's bytes.
pub fn reread(migration: &Migration) -> Result<Vec<u8>, Error> {
    let main = read(migration.path())?;
    let undo = migration.undo_path().map(read).transpose()?;
    if Checksum::of_files(&main, undo.as_deref()) != *migration.checksum() {
        return Err(Error::ReadArtifact {
            path: migration.path().to_path_buf(),
            source: std::io::Error::other("the file changed while graphmig was reading it"),
        });
    }
    Ok(main)
}

/// Source folders in `dir` that `graphmig build` turns into artifacts: folders named
/// like migrations, in version order.
pub fn source_folders(dir: &Path) -> Result<Vec<(ParsedName, PathBuf)>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::MigrationsDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::MigrationsDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name();
        if let Some(parsed) = name.to_str().and_then(parse_name) {
            folders.push((parsed, path));
        }
    }
    folders.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Ok(folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_like_neo4j_migrations() {
        let parsed = parse_name("V1_2__Add_last_name_index").expect("valid");
        assert_eq!(
            parsed.id,
            MigrationId::Versioned(Version::parse("1_2").expect("v"))
        );
        assert_eq!(parsed.description, "Add last name index");
        assert!(parse_name("V1__").is_none());
        assert!(parse_name("v1__x").is_none());
        assert!(parse_name("V1_x").is_none());
        assert!(parse_name("Vx__y").is_none());
    }

    #[test]
    fn orders_numerically_and_names_both_files_of_a_duplicate() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "R__refresh.wasm",
            "V10__ten.wasm",
            "V2__two.wasm",
            "V1_1__one_one.wasm",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), name).expect("write");
        }
        let chain = Chain::discover(dir.path()).expect("chain");
        let versions: Vec<_> = chain
            .migrations()
            .iter()
            .map(|m| m.id().to_string())
            .collect();
        assert_eq!(versions, ["V1_1", "V2", "V10", "R__refresh"]);

        std::fs::write(dir.path().join("V02__again.wasm"), b"x").expect("write");
        let err = Chain::discover(dir.path()).expect_err("duplicate");
        let text = err.to_string();
        assert!(
            text.contains("V02__again.wasm") && text.contains("V2__two.wasm"),
            "{text}"
        );
    }

    #[test]
    fn cypher_files_join_the_chain_with_their_undo_scripts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        write("V1__schema.wasm", "wasm");
        write("V2__Add_index.cypher", "CREATE INDEX x FOR (n:A) ON (n.a);");
        write("U2__Add_index.cypher", "DROP INDEX x;");
        write("R__Refresh.cypher", "MATCH (n) RETURN n;");
        let chain = Chain::discover(dir.path()).expect("chain");
        let kinds: Vec<_> = chain
            .migrations()
            .iter()
            .map(|m| (m.id().to_string(), m.kind(), m.undo_path().is_some()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("V1".to_string(), ArtifactKind::Component, false),
                ("V2".to_string(), ArtifactKind::Cypher, true),
                ("R__Refresh".to_string(), ArtifactKind::Cypher, false),
            ]
        );
        // The undo script is part of the checksum: editing it is drift.
        let before = chain.migrations()[1].checksum().clone();
        write("U2__Add_index.cypher", "DROP INDEX x IF EXISTS;");
        let after = Chain::discover(dir.path()).expect("chain");
        assert_ne!(after.migrations()[1].checksum(), &before);
        assert!(reread(&after.migrations()[1]).is_ok());

        write("U3__nothing.cypher", "RETURN 1;");
        let err = Chain::discover(dir.path()).expect_err("orphan");
        assert!(err.to_string().contains("U3__nothing.cypher"), "{err}");
    }

    #[test]
    fn refuses_a_wasm_file_with_a_bad_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("create_people.wasm"), b"x").expect("write");
        let err = Chain::discover(dir.path()).expect_err("bad name");
        assert!(err.to_string().contains("create_people.wasm"), "{err}");
    }
}
