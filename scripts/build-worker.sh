#!/usr/bin/env bash
# Build the hashgate worker (worker/ crate) to worker/build/ with worker-build,
# in release mode. Works from any directory. Extra arguments go to worker-build.
#
# Output (what wrangler.toml `main` and the tests load):
#   worker/build/index.js        ES module entry (wasm-bindgen glue + shim, bundled by esbuild)
#   worker/build/index_bg.wasm   the worker, optimised by wasm-opt
#
# Nothing is downloaded: worker-build would otherwise fetch wasm-bindgen,
# wasm-opt and esbuild from GitHub/npm at build time, so we point it at the
# copies installed by scripts/setup.sh:
#   WASM_BINDGEN_BIN  wasm-bindgen-cli from cargo (must equal Cargo.lock's wasm-bindgen)
#   WASM_OPT_BIN      node_modules/.bin/wasm-opt (npm `binaryen`; Debian's 108 is too old)
#   ESBUILD_BIN       node_modules/@esbuild/linux-x64/bin/esbuild (npm `esbuild`)
# Any of them may be overridden from the environment.
#
# Up-to-date check: the build is skipped when worker/build/ was made from the
# same inputs (sources and manifests of worker/ and hasher/, Cargo.lock,
# the toolchain file, the
# arguments); `wrangler dev` runs this script twice on start and on every
# change in its watch_dir, and the tests and demo run it every time.
# FORCE_BUILD=1 rebuilds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

die() { printf '[build-worker] ERROR: %s\n' "$*" >&2; exit 1; }
hint="run scripts/setup.sh first"

command -v worker-build >/dev/null || die "worker-build not found; $hint"

want_wb="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
if [ -z "${WASM_BINDGEN_BIN:-}" ]; then
  WASM_BINDGEN_BIN="$(command -v wasm-bindgen || true)"
  [ -n "$WASM_BINDGEN_BIN" ] || die "wasm-bindgen not found; $hint"
fi
have_wb="$("$WASM_BINDGEN_BIN" --version | awk '{print $2}')"
[ "$have_wb" = "$want_wb" ] \
  || die "wasm-bindgen CLI is $have_wb but Cargo.lock has wasm-bindgen $want_wb; $hint"

export WASM_BINDGEN_BIN
export WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild}"
[ -x "$WASM_OPT_BIN" ] || die "wasm-opt not found at $WASM_OPT_BIN; $hint"
[ -x "$ESBUILD_BIN" ] || die "esbuild not found at $ESBUILD_BIN; $hint"

out="$ROOT/worker/build"
stamp="$out/.inputs.sha256"
inputs="$(
  cd "$ROOT"
  {
    find worker/src hasher/src -type f -name '*.rs' -print0 | sort -z | xargs -0 sha256sum
    sha256sum Cargo.toml Cargo.lock worker/Cargo.toml hasher/Cargo.toml rust-toolchain.toml .cargo/config.toml 2>/dev/null || true
    echo "args: $*"
  } | sha256sum | cut -d' ' -f1
)"
if [ "${FORCE_BUILD:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ] \
   && [ -f "$out/index.js" ] && [ -f "$out/index_bg.wasm" ]; then
  printf '[build-worker] worker/build/ is up to date (FORCE_BUILD=1 to rebuild)\n'
  exit 0
fi

t0=$(date +%s)
cd "$ROOT/worker"
rm -f "$stamp"
worker-build --release "$@"

[ -f "$out/index.js" ] && [ -f "$out/index_bg.wasm" ] || die "worker-build did not produce $out/index.js and index_bg.wasm"
echo "$inputs" > "$stamp"
raw=$(stat -c %s "$out/index_bg.wasm")
gz=$(gzip -9c "$out/index_bg.wasm" | wc -c)
printf '[build-worker] built worker/build/ in %ss: index_bg.wasm %s KiB (gzip %s KiB), index.js %s KiB\n' \
  "$(( $(date +%s) - t0 ))" "$(( raw / 1024 ))" "$(( gz / 1024 ))" "$(( $(stat -c %s "$out/index.js") / 1024 ))"
