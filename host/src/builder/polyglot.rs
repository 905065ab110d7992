//! Building JavaScript, Python and Go migrations. Each gets a work folder under
//! `.graphmig/build/<name>/` holding the WIT and the language's SDK as this
//! graphmig carries them, so a project needs nothing but its own sources.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Language, WIT, fingerprint, install_artifact, run_step};
use crate::error::Error;

/// The JavaScript SDK (`import ... from "graphmig"`).
const JS_SDK: &[(&str, &str)] = &[(
    "graphmig.js",
    include_str!("../../../guest-sdk/js/graphmig.js"),
)];

/// The Python SDK (`from graphmig import ...`) and the fixed entry module
/// componentize-py starts from.
const PYTHON_SDK: &[(&str, &str)] = &[
    ("app.py", include_str!("../../../guest-sdk/python/app.py")),
    (
        "graphmig/__init__.py",
        include_str!("../../../guest-sdk/python/graphmig/__init__.py"),
    ),
    (
        "graphmig/context.py",
        include_str!("../../../guest-sdk/python/graphmig/context.py"),
    ),
    (
        "graphmig/errors.py",
        include_str!("../../../guest-sdk/python/graphmig/errors.py"),
    ),
    (
        "graphmig/schema.py",
        include_str!("../../../guest-sdk/python/graphmig/schema.py"),
    ),
    (
        "graphmig/values.py",
        include_str!("../../../guest-sdk/python/graphmig/values.py"),
    ),
    (
        "graphmig/_entry.py",
        include_str!("../../../guest-sdk/python/graphmig/_entry.py"),
    ),
    (
        "graphmig/_wire.py",
        include_str!("../../../guest-sdk/python/graphmig/_wire.py"),
    ),
    (
        "graphmig/py.typed",
        include_str!("../../../guest-sdk/python/graphmig/py.typed"),
    ),
];

/// The Go SDK (module `graphmig`).
const GO_SDK: &[(&str, &str)] = &[
    ("go.mod", include_str!("../../../guest-sdk/go/go.mod")),
    (
        "graphmig.go",
        include_str!("../../../guest-sdk/go/graphmig.go"),
    ),
    ("values.go", include_str!("../../../guest-sdk/go/values.go")),
    ("schema.go", include_str!("../../../guest-sdk/go/schema.go")),
];

/// The Go package that implements the exported `lifecycle` interface.
const GO_EXPORT: &str = include_str!("../../../guest-sdk/go/export.go.in");

fn sdk_files(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::JavaScript => JS_SDK,
        Language::Python => PYTHON_SDK,
        Language::Go => GO_SDK,
        Language::Rust | Language::Cypher => &[],
    }
}

/// Builds `folder` into `artifact`, unless the sources, the SDK and the WIT are
/// byte for byte those of the last build and the artifact is still the one it
/// wrote: rebuilding an applied migration with a newer toolchain would change
/// its checksum for nothing.
pub(super) fn build(
    folder: &Path,
    language: Language,
    build_dir: &Path,
    artifact: &Path,
) -> Result<(PathBuf, bool), Error> {
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let work = build_dir.join(&name);
    let fail = |message: String| Error::Build {
        path: folder.to_path_buf(),
        message,
    };
    let sdk: Vec<&[u8]> = sdk_files(language)
        .iter()
        .flat_map(|(n, text)| [n.as_bytes(), text.as_bytes()])
        .chain([WIT.as_bytes(), env!("CARGO_PKG_VERSION").as_bytes()])
        .collect();
    let stamp = fingerprint(folder, &sdk)?;
    let stamp_file = work.join("stamp");
    if let (Ok(recorded), Ok(bytes)) = (
        std::fs::read_to_string(&stamp_file),
        std::fs::read(artifact),
    ) && recorded == format!("{stamp} {}", crate::migration::Checksum::of(&bytes))
    {
        return Ok((artifact.to_path_buf(), true));
    }

    if work.exists() {
        std::fs::remove_dir_all(&work)
            .map_err(|e| fail(format!("cannot clear {}: {e}", work.display())))?;
    }
    let sdk_dir = work.join("sdk");
    let write = |path: PathBuf, text: &[u8]| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)
    };
    write(work.join("wit/migration.wit"), WIT.as_bytes())
        .and_then(|()| {
            sdk_files(language)
                .iter()
                .try_for_each(|(n, text)| write(sdk_dir.join(n), text.as_bytes()))
        })
        .map_err(|e| fail(format!("cannot prepare {}: {e}", work.display())))?;
    let source = std::fs::canonicalize(folder)
        .map_err(|e| fail(format!("cannot resolve the folder: {e}")))?;

    let out = work.join("out.wasm");
    match language {
        Language::JavaScript => build_js(folder, &source, &work)?,
        Language::Python => build_python(folder, &source, &work)?,
        Language::Go => build_go(folder, &source, &work)?,
        Language::Rust | Language::Cypher => unreachable!("not built here"),
    }
    install_artifact(folder, &out, artifact)?;
    let bytes = std::fs::read(artifact).map_err(|e| fail(e.to_string()))?;
    std::fs::write(
        &stamp_file,
        format!("{stamp} {}", crate::migration::Checksum::of(&bytes)),
    )
    .map_err(|e| fail(format!("cannot write {}: {e}", stamp_file.display())))?;
    Ok((artifact.to_path_buf(), false))
}

fn build_js(folder: &Path, source: &Path, work: &Path) -> Result<(), Error> {
    let entry = source.join("migration.js");
    // JSON string syntax is valid JavaScript string syntax, escapes included.
    let entry = serde_json::to_string(&entry.to_string_lossy()).unwrap_or_default();
    std::fs::write(
        work.join("entry.js"),
        format!(
            "import * as migration from {entry};\n\
             import {{ lifecycleFor }} from \"graphmig\";\n\
             export const lifecycle = lifecycleFor(migration);\n"
        ),
    )
    .map_err(|e| Error::Build {
        path: folder.to_path_buf(),
        message: format!("cannot write entry.js: {e}"),
    })?;
    run_step(
        folder,
        "esbuild",
        Command::new("esbuild").current_dir(work).args([
            "entry.js",
            "--bundle",
            "--format=esm",
            "--platform=neutral",
            "--log-level=error",
            "--outfile=bundle.js",
            "--alias:graphmig=./sdk/graphmig.js",
            "--external:graphmig:*",
        ]),
    )?;
    run_step(
        folder,
        "componentize-js",
        Command::new("componentize-js").current_dir(work).args([
            "bundle.js",
            "--wit",
            "wit",
            "--world-name",
            "migration",
            "--disable",
            "http",
            "--disable",
            "fetch-event",
            "--out",
            "out.wasm",
        ]),
    )
}

fn build_python(folder: &Path, source: &Path, work: &Path) -> Result<(), Error> {
    // componentize-py bundles the site-packages of the active environment; an
    // empty one keeps the builder's own Python packages out of the component.
    let env = work.join("env");
    std::fs::create_dir_all(env.join("lib/site-packages")).map_err(|e| Error::Build {
        path: folder.to_path_buf(),
        message: format!("cannot prepare {}: {e}", env.display()),
    })?;
    run_step(
        folder,
        "componentize-py",
        Command::new("componentize-py")
            .current_dir(work)
            .env("VIRTUAL_ENV", &env)
            // Build errors read as Python tracebacks, not Rust panics.
            .env("RUST_BACKTRACE", "0")
            .args([
                "-d",
                "wit",
                "-w",
                "migration",
                "componentize",
                "app",
                "-p",
                "sdk",
                "-p",
            ])
            .arg(source)
            .args(["-o", "out.wasm"]),
    )
}

fn build_go(folder: &Path, source: &Path, work: &Path) -> Result<(), Error> {
    let fail = |message: String| Error::Build {
        path: folder.to_path_buf(),
        message,
    };
    run_step(
        folder,
        "wit-bindgen go",
        Command::new("wit-bindgen").current_dir(work).args([
            "go",
            "wit",
            "--world",
            "migration",
            "--out-dir",
            "gen",
            "--quiet",
        ]),
    )?;
    // The bindings expect the author to fill in stubs; graphmig's package hands
    // the exports to the SDK and the author's `migration.Migration` instead.
    let export = work.join("gen/export_graphmig_migration_lifecycle");
    let _ = std::fs::remove_dir_all(&export);
    std::fs::create_dir_all(&export)
        .and_then(|()| std::fs::write(export.join("lifecycle.go"), GO_EXPORT))
        .map_err(|e| fail(format!("cannot write the export package: {e}")))?;
    // The bindings' one dependency, go.bytecodealliance.org/pkg, comes from a
    // local copy when one is given (the Go module proxy may be out of reach).
    let replace = go_pkg_dir()
        .map(|dir| format!("replace go.bytecodealliance.org/pkg => {}\n", go_path(&dir)))
        .unwrap_or_default();
    std::fs::write(
        work.join("go.work"),
        format!(
            "go 1.25\n\nuse (\n\t./gen\n\t./sdk\n\t{}\n)\n\n{replace}",
            go_path(source)
        ),
    )
    .map_err(|e| fail(format!("cannot write go.work: {e}")))?;
    run_step(
        folder,
        "go build",
        Command::new("go")
            .current_dir(work.join("gen"))
            .env("GOWORK", work.join("go.work"))
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "")
            .args([
                "build",
                "-buildmode=c-shared",
                // The bindings link runtime internals by name.
                "-ldflags=-checklinkname=0",
                "-o",
                "../core.wasm",
                ".",
            ]),
    )?;
    run_step(
        folder,
        "wasm-tools component embed",
        Command::new("wasm-tools").current_dir(work).args([
            "component",
            "embed",
            "wit",
            "--world",
            "migration",
            "core.wasm",
            "-o",
            "embedded.wasm",
        ]),
    )?;
    std::fs::write(
        work.join("wasi_snapshot_preview1.reactor.wasm"),
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    )
    .map_err(|e| fail(format!("cannot write the WASI adapter: {e}")))?;
    run_step(
        folder,
        "wasm-tools component new",
        Command::new("wasm-tools").current_dir(work).args([
            "component",
            "new",
            "embedded.wasm",
            "--adapt",
            "wasi_snapshot_preview1=wasi_snapshot_preview1.reactor.wasm",
            "-o",
            "out.wasm",
        ]),
    )
}

/// A local copy of go.bytecodealliance.org/pkg: `GRAPHMIG_GO_PKG`, else a
/// `go-pkg` folder beside the folder `wit-bindgen` is installed in (the layout
/// of the repository's scripts/toolchains.sh).
fn go_pkg_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GRAPHMIG_GO_PKG") {
        return Some(PathBuf::from(dir));
    }
    let bin = super::find_tool("wit-bindgen")?;
    let dir = bin.parent()?.parent()?.join("go-pkg");
    dir.join("go.mod").is_file().then_some(dir)
}

/// A path as go.work wants it: quoted when it has spaces.
fn go_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text.contains(char::is_whitespace) {
        format!("{text:?}")
    } else {
        text.into_owned()
    }
}
