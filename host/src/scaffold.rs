//! `graphmig init` and `graphmig new`: a new project, and the next migration in
//! any language, each with a working `up` and `down` to start from.

use std::path::{Path, PathBuf};

use crate::builder::{Language, RUST_SDK_DIR, write_rust_sdk};
use crate::chain::{Chain, source_folders};
use crate::config::{CONFIG_FILE, Config};
use crate::error::Error;
use crate::migration::MigrationId;

const CONFIG_TEMPLATE: &str = r#"# graphmig project. Every setting is optional; these are the defaults, except
# the database names. The password comes only from the environment:
# GRAPHMIG_PASSWORD (GRAPHMIG_URI, GRAPHMIG_USER, GRAPHMIG_DATABASE and
# GRAPHMIG_HISTORY_DATABASE override the settings below).

[database]
uri = "bolt://127.0.0.1:7687"
user = "neo4j"
name = "neo4j"
# Migrations run code you may not have written: let them connect as a user the
# server itself limits (`graphmig privileges` prints the setup, `graphmig doctor`
# checks it); its password comes only from GRAPHMIG_MIGRATION_PASSWORD.
# migration-user = "graphmig_migrator"

[history]
# graphmig's history and lock, in a database of their own that migrations never
# reach. Create it first (Neo4j: CREATE DATABASE graphmig_history). On a server
# with one database only (Neo4j Community), remove this line: the history then
# shares the target database and rests on graphmig's Cypher policy.
database = "graphmig_history"

[migrations]
# V<version>__<description>.cypher files, and folders of Rust, JavaScript,
# Python or Go sources that `graphmig build` turns into .wasm components.
dir = "migrations"

[datasets]
# The only files a migration can read (ctx.read_dataset).
dir = "data"

[limits]
# Per migration; override one with [migration.V3].
fuel = 10_000_000_000
memory-mib = 512
deadline-secs = 300
"#;

const GITIGNORE: &str =
    "# graphmig's ledger, build folders and compiled-component cache\n.graphmig/\n";

/// What `init` or `new` created.
#[derive(Debug, Clone)]
pub struct Created {
    /// Files and folders written, for the operator.
    pub paths: Vec<PathBuf>,
    /// Files that were there and gained a line (`.gitignore`: `.graphmig/`).
    pub updated: Vec<PathBuf>,
}

/// Creates a project in `dir`: graphmig.toml, migrations/, data/ and a
/// .gitignore for graphmig's local state. Refuses to overwrite a project.
pub fn init(dir: &Path) -> Result<Created, Error> {
    let config = dir.join(CONFIG_FILE);
    if config.exists() {
        return Err(Error::Scaffold {
            path: config,
            message: "a project is already here; nothing was changed".into(),
        });
    }
    let mut paths = Vec::new();
    for folder in ["migrations", "data"] {
        let path = dir.join(folder);
        create_dir(&path)?;
        paths.push(path);
    }
    write_new(&config, CONFIG_TEMPLATE)?;
    paths.insert(0, config);
    let gitignore = dir.join(".gitignore");
    let mut updated = Vec::new();
    if !gitignore.exists() {
        write_new(&gitignore, GITIGNORE)?;
        paths.push(gitignore);
    } else if ignore_local_state(&gitignore)? {
        updated.push(gitignore);
    }
    Ok(Created { paths, updated })
}

/// Adds `.graphmig/` to an existing `.gitignore` that does not ignore it yet
/// (the ledger and build folders are this machine's, never the team's);
/// whether it did.
fn ignore_local_state(gitignore: &Path) -> Result<bool, Error> {
    let failed = |e: std::io::Error| Error::Scaffold {
        path: gitignore.to_path_buf(),
        message: e.to_string(),
    };
    let text = std::fs::read_to_string(gitignore).map_err(failed)?;
    let ignored = text.lines().map(str::trim).any(|line| {
        matches!(
            line,
            ".graphmig" | ".graphmig/" | "/.graphmig" | "/.graphmig/" | ".graphmig/*"
        )
    });
    if ignored {
        return Ok(false);
    }
    let separator = match text.is_empty() || text.ends_with('\n') {
        true => "",
        false => "\n",
    };
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(gitignore)
        .and_then(|mut f| f.write_all(format!("{separator}{GITIGNORE}").as_bytes()))
        .map_err(failed)?;
    Ok(true)
}

/// Creates the next versioned migration, `V<next>__<description>`, in
/// `language`, with an `up` and a `down` that work as written.
pub fn new_migration(
    config: &Config,
    description: &str,
    language: Language,
) -> Result<Created, Error> {
    let slug = slug(description);
    if slug.is_empty() {
        return Err(Error::Scaffold {
            path: config.migrations_dir.clone(),
            message: format!("`{description}` has no letters or digits to name a migration with"),
        });
    }
    create_dir(&config.migrations_dir)?;
    let version = next_version(&config.migrations_dir)?;
    let name = format!("V{version}__{slug}");
    let dir = &config.migrations_dir;
    let texts = Templates {
        version,
        description: description.trim(),
    };
    let paths = match language {
        Language::Cypher => {
            let up = dir.join(format!("{name}.cypher"));
            let down = dir.join(format!("U{version}__{slug}.cypher"));
            write_new(&up, &texts.cypher_up())?;
            write_new(&down, &texts.cypher_down())?;
            vec![up, down]
        }
        _ => {
            let folder = dir.join(&name);
            if folder.exists() {
                return Err(Error::Scaffold {
                    path: folder,
                    message: "already exists".into(),
                });
            }
            create_dir(&folder)?;
            let files: Vec<(&str, String)> = match language {
                Language::Rust => {
                    let sdk = relative_sdk_path(config, &folder);
                    vec![
                        ("Cargo.toml", texts.rust_manifest(&slug, &sdk)),
                        ("src/lib.rs", texts.rust()),
                    ]
                }
                Language::JavaScript => vec![("migration.js", texts.js())],
                Language::Python => vec![("migration.py", texts.python())],
                Language::Go => vec![
                    ("go.mod", "module migration\n\ngo 1.25\n".to_string()),
                    ("migration.go", texts.go()),
                ],
                Language::Cypher => unreachable!("handled above"),
            };
            let mut paths = vec![folder.clone()];
            for (file, text) in files {
                let path = folder.join(file);
                if let Some(parent) = path.parent() {
                    create_dir(parent)?;
                }
                write_new(&path, &text)?;
                paths.push(path);
            }
            if language == Language::Rust {
                write_rust_sdk(&config.root)?;
            }
            paths
        }
    };
    Ok(Created {
        paths,
        updated: Vec::new(),
    })
}

/// The SDK folder as a path relative to a migration's folder, for Cargo.toml.
fn relative_sdk_path(config: &Config, folder: &Path) -> String {
    let depth = folder
        .strip_prefix(&config.root)
        .map(|rel| rel.components().count())
        .unwrap_or(2);
    let mut path = "../".repeat(depth);
    path.push_str(RUST_SDK_DIR);
    path
}

/// One more than the highest major version among the migrations and their
/// source folders (V1_2 → V2), or 1.
fn next_version(dir: &Path) -> Result<u64, Error> {
    let chain = Chain::discover(dir)?;
    let versions = chain.migrations().iter().map(|m| m.id().clone()).chain(
        source_folders(dir)?
            .into_iter()
            .map(|(parsed, _)| parsed.id),
    );
    let highest = versions
        .filter_map(|id| match id {
            MigrationId::Versioned(v) => v.as_str().split(['_', '.']).next()?.parse::<u64>().ok(),
            MigrationId::Repeatable(_) => None,
        })
        .max()
        .unwrap_or(0);
    Ok(highest + 1)
}

/// `Add person email index` → `Add_person_email_index`.
fn slug(description: &str) -> String {
    let mut slug = String::new();
    for word in description.split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        if !slug.is_empty() {
            slug.push('_');
        }
        slug.push_str(word);
    }
    slug
}

fn create_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|e| Error::Scaffold {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn write_new(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::Scaffold {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// The starting code of a new migration: `up` marks the graph with a node the
/// `down` removes, so the pair runs as written and shows the shape to follow.
struct Templates<'a> {
    version: u64,
    description: &'a str,
}

impl Templates<'_> {
    fn quoted(&self) -> String {
        serde_json::to_string(self.description).unwrap_or_default()
    }

    fn cypher_up(&self) -> String {
        format!(
            "// V{v}: {d}\n\
             // Statements end with a semicolon at the end of a line and run in one\n\
             // transaction; schema statements (CREATE INDEX ...) run on their own and\n\
             // are undone if a later statement fails. U{v}__*.cypher reverts this file.\n\
             MERGE (m:Example {{version: {v}}})\n  SET m.description = $description;\n",
            v = self.version,
            d = self.description,
        )
        .replace("$description", &cypher_string(self.description))
    }

    fn cypher_down(&self) -> String {
        format!(
            "// Reverts V{v}: run by `graphmig down`.\nMATCH (m:Example {{version: {v}}}) DELETE m;\n",
            v = self.version
        )
    }

    fn rust_manifest(&self, slug: &str, sdk: &str) -> String {
        format!(
            "[package]\nname = \"v{v}-{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\ngraphmig-sdk = {{ path = \"{sdk}\" }}\n",
            v = self.version,
            name = slug.to_ascii_lowercase().replace('_', "-"),
        )
    }

    fn rust(&self) -> String {
        format!(
            r#"//! V{v}: {d}

use graphmig_sdk::{{Context, Result, params}};

graphmig_sdk::migration! {{ description: {q}, up: up, down: down }}

fn up(ctx: &Context) -> Result<()> {{
    ctx.run(
        "MERGE (m:Example {{version: $version}}) SET m.description = $description",
        params! {{ "version" => {v}i64, "description" => {q} }},
    )?;
    ctx.info("marked the graph");
    Ok(())
}}

fn down(ctx: &Context) -> Result<()> {{
    ctx.run(
        "MATCH (m:Example {{version: $version}}) DELETE m",
        params! {{ "version" => {v}i64 }},
    )?;
    Ok(())
}}
"#,
            v = self.version,
            d = self.description,
            q = self.quoted(),
        )
    }

    fn js(&self) -> String {
        format!(
            r#"// V{v}: {d}
// Build with `graphmig build`; `ctx` is the migration's only door to the graph.

export const description = {q};

export function up(ctx) {{
  ctx.run("MERGE (m:Example {{version: $version}}) SET m.description = $description", {{
    version: {v},
    description,
  }});
  ctx.log.info("marked the graph");
}}

export function down(ctx) {{
  ctx.run("MATCH (m:Example {{version: $version}}) DELETE m", {{ version: {v} }});
}}
"#,
            v = self.version,
            d = self.description,
            q = self.quoted(),
        )
    }

    fn python(&self) -> String {
        format!(
            r#""""V{v}: {d}

Build with `graphmig build`; `ctx` is the migration's only door to the graph.
"""

DESCRIPTION = {q}


def up(ctx):
    ctx.run(
        "MERGE (m:Example {{version: $version}}) SET m.description = $description",
        {{"version": {v}, "description": DESCRIPTION}},
    )
    ctx.info("marked the graph")


def down(ctx):
    ctx.run("MATCH (m:Example {{version: $version}}) DELETE m", {{"version": {v}}})
"#,
            v = self.version,
            d = self.description,
            q = self.quoted(),
        )
    }

    fn go(&self) -> String {
        format!(
            r#"// Package migration is V{v}: {d}
// Build with `graphmig build`; ctx is the migration's only door to the graph.
package migration

import "graphmig"

const description = {q}

// Migration is what graphmig runs.
var Migration = graphmig.Migration{{
	Description: description,
	Up:          up,
	Down:        down,
}}

func up(ctx *graphmig.Context) error {{
	_, err := ctx.Run("MERGE (m:Example {{version: $version}}) SET m.description = $description",
		graphmig.Params{{"version": {v}, "description": description}})
	if err != nil {{
		return err
	}}
	ctx.Infof("marked the graph")
	return nil
}}

func down(ctx *graphmig.Context) error {{
	_, err := ctx.Run("MATCH (m:Example {{version: $version}}) DELETE m", graphmig.Params{{"version": {v}}})
	return err
}}
"#,
            v = self.version,
            d = self.description,
            q = self.quoted(),
        )
    }
}

/// A Cypher string literal.
fn cypher_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_words_and_drop_the_rest() {
        assert_eq!(slug("Add person email index"), "Add_person_email_index");
        assert_eq!(
            slug("  rename: born -> birth_year "),
            "rename_born_birth_year"
        );
        assert_eq!(slug("!!!"), "");
    }

    #[test]
    fn next_version_follows_the_highest_major_of_files_and_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(next_version(dir.path()).expect("v"), 1);
        std::fs::write(dir.path().join("V1_2__a.cypher"), "RETURN 1;").expect("write");
        std::fs::create_dir(dir.path().join("V7__source")).expect("mkdir");
        std::fs::write(dir.path().join("R__r.cypher"), "RETURN 1;").expect("write");
        assert_eq!(next_version(dir.path()).expect("v"), 8);
    }

    #[test]
    fn init_refuses_to_overwrite_a_project() {
        let dir = tempfile::tempdir().expect("tempdir");
        let created = init(dir.path()).expect("init");
        assert!(created.paths.iter().any(|p| p.ends_with(CONFIG_FILE)));
        assert!(dir.path().join("migrations").is_dir());
        let err = init(dir.path()).expect_err("twice");
        assert!(err.to_string().contains("already"), "{err}");
    }
}
