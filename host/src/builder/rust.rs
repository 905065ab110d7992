//! Building Rust migrations: a cdylib crate compiled by cargo for wasm32-wasip2.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::WIT;
use crate::error::Error;

/// The Rust SDK as this graphmig carries it, written into a project so that its
/// Rust migrations build without the graphmig repository.
const RUST_SDK: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
    (
        "src/backfill.rs",
        include_str!("../../../guest-sdk/src/backfill.rs"),
    ),
    (
        "src/batch.rs",
        include_str!("../../../guest-sdk/src/batch.rs"),
    ),
    (
        "src/context.rs",
        include_str!("../../../guest-sdk/src/context.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../../guest-sdk/src/error.rs"),
    ),
    (
        "src/schema.rs",
        include_str!("../../../guest-sdk/src/schema.rs"),
    ),
    (
        "src/value.rs",
        include_str!("../../../guest-sdk/src/value.rs"),
    ),
    (
        "src/wire.rs",
        include_str!("../../../guest-sdk/src/wire.rs"),
    ),
];

/// Where a project keeps the Rust SDK, relative to its root.
pub const RUST_SDK_DIR: &str = ".graphmig/sdk/rust";

/// Writes (or refreshes) the project's copy of the Rust SDK; files are only
/// rewritten when their content changes, so cargo's incremental builds hold.
pub fn write_rust_sdk(root: &Path) -> Result<PathBuf, Error> {
    let sdk = root.join(RUST_SDK_DIR);
    let manifest = format!(
        "# Written by graphmig {version}; `graphmig build` refreshes it.\n\
         [package]\nname = \"graphmig-sdk\"\nversion = \"{version}\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nwit-bindgen = {{ version = \"0.63\", default-features = false, features = [\"macros\", \"realloc\", \"std\"] }}\n",
        version = env!("CARGO_PKG_VERSION")
    );
    let files = RUST_SDK
        .iter()
        .map(|(name, text)| (sdk.join(name), text.to_string()))
        .chain([
            (sdk.join("Cargo.toml"), manifest),
            // The SDK's bindings read the WIT from ../wit, as in the repository.
            (
                root.join(".graphmig/sdk/wit/migration.wit"),
                WIT.to_string(),
            ),
        ]);
    for (path, text) in files {
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Scaffold {
                path: parent.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        std::fs::write(&path, text).map_err(|e| Error::Scaffold {
            path: path.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(sdk)
}

/// The Rust target migrations are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

pub(super) fn check_target() -> Result<(), Error> {
    let cargo = Command::new("cargo")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !cargo.is_ok_and(|s| s.success()) {
        return Err(Error::ToolMissing {
            tool: "cargo".into(),
            hint: "install Rust from https://rustup.rs, then run `rustup target add wasm32-wasip2`"
                .into(),
        });
    }
    // Without rustup (a distribution's Rust) the build itself reports a missing
    // target; with it, the answer is precise and quick.
    if let Ok(output) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        && output.status.success()
        && !String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|l| l.trim() == WASM_TARGET)
    {
        return Err(Error::ToolMissing {
            tool: format!("the Rust target {WASM_TARGET}"),
            hint: format!("run `rustup target add {WASM_TARGET}`"),
        });
    }
    Ok(())
}

pub(super) fn build(folder: &Path, target_dir: &Path) -> Result<PathBuf, Error> {
    let fail = |message: String| Error::Build {
        path: folder.to_path_buf(),
        message,
    };
    let output = Command::new("cargo")
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(folder.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--message-format=json-render-diagnostics")
        // Fast, self-contained components; set here so that migration crates
        // need no profile section of their own. Optimised for speed, not size
        // (a component grows by a few KiB): a migration that transforms many
        // rows spends its time in loops, and unrolled loops also mean fewer
        // fuel checks (metering cost 6 % at opt-level "s", none measurable at 3).
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run cargo: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        if stderr.contains("may not be installed") || stderr.contains("can't find crate for `std`")
        {
            return Err(Error::ToolMissing {
                tool: format!("the Rust target {WASM_TARGET}"),
                hint: format!("run `rustup target add {WASM_TARGET}`"),
            });
        }
        return Err(fail(format!("cargo failed:\n{}", tail.join("\n"))));
    }
    let wasm = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| {
            msg["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .filter_map(|msg| {
            msg["filenames"].as_array().and_then(|files| {
                files
                    .iter()
                    .filter_map(|f| f.as_str())
                    .find(|f| f.ends_with(".wasm"))
                    .map(PathBuf::from)
            })
        })
        .next_back()
        .ok_or_else(|| {
            fail("cargo built no .wasm; is the crate a `cdylib` (`[lib] crate-type = [\"cdylib\"]`)?".into())
        })?;
    let artifact = super::artifact_path(folder)?;
    super::install_artifact(folder, &wasm, &artifact)?;
    Ok(artifact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carried_sdk_has_every_file_of_the_sdk() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&src)
            .expect("guest-sdk/src")
            .filter_map(|e| e.ok())
            .map(|e| format!("src/{}", e.file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let mut carried: Vec<String> = RUST_SDK.iter().map(|(p, _)| (*p).to_string()).collect();
        carried.sort();
        assert_eq!(carried, on_disk, "add the new file to RUST_SDK");
    }
}
