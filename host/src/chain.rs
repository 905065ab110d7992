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
    /// Reads every `V<version>__<description>.wasm` in `dir` (not recursively) and
    /// orders them by version.
    ///
    /// A `.wasm` file with another name, two files with the same version, or an
    /// unreadable folder is an error. Other files (sources, notes) are ignored.
    pub fn discover(dir: &Path) -> Result<Chain, Error> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::MigrationsDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut migrations: Vec<Migration> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::MigrationsDir {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("wasm") || !path.is_file() {
                continue;
            }
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let Some(parsed) = parse_name(stem) else {
                return Err(Error::BadMigrationName { path });
            };
            let bytes = std::fs::read(&path).map_err(|source| Error::ReadArtifact {
                path: path.clone(),
                source,
            })?;
            migrations.push(Migration::new(
                parsed.id,
                parsed.description,
                path,
                ArtifactKind::Component,
                Checksum::of(&bytes),
            ));
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
    fn refuses_a_wasm_file_with_a_bad_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("create_people.wasm"), b"x").expect("write");
        let err = Chain::discover(dir.path()).expect_err("bad name");
        assert!(err.to_string().contains("create_people.wasm"), "{err}");
    }
}
