#!/usr/bin/env bash
# Install everything needed to build, run and test the hashgate worker.
#
# Idempotent and non-interactive: on a warm machine every step is a quick
# check that prints "ok"; on a fresh one it installs, in this order:
#   - the Rust toolchain + wasm32 target from rust-toolchain.toml (rustup)
#   - wasm-bindgen-cli, at exactly the wasm-bindgen version in Cargo.lock
#   - worker-build 0.8.7
#   - the npm devDependencies (wrangler, miniflare, binaryen, esbuild) via `npm ci`
#   - the Python packages the project's scripts and tests use (pdqhash, pillow,
#     numpy, werkzeug, brotli, moto[server])
# The two cargo installs are the slow part (~5 min each on 2 cores); they run
# one after the other in the background while npm and pip run in the
# foreground. Only crates.io, npm and PyPI are contacted.
#
# Environment:
#   PYTHON        python interpreter to install the Python packages for (default python3)
#   SKIP_PYTHON=1 skip the Python packages
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WORKER_BUILD_VERSION=0.8.7
PYTHON="${PYTHON:-python3}"
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

start=$(date +%s)

# --- Rust toolchain -------------------------------------------------------
command -v rustup >/dev/null || die "rustup not found; install it from your distribution or rustup.rs"
command -v cargo >/dev/null || die "cargo not found"
# `rustup toolchain install` with no argument installs what rust-toolchain.toml
# asks for (channel, targets, components) and is a no-op when it is present.
say "rust toolchain from rust-toolchain.toml"
# (Older rustup lacks the no-argument form; there `rustup show` installs it.)
rustup toolchain install 2>&1 | sed "s/^/[setup]   /" || rustup show active-toolchain
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "  ok: wasm32-unknown-unknown target installed ($(rustc --version))"
else
  say "  adding target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# --- cargo-installed tools (background, sequential) -----------------------
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
[ -n "$WB_VERSION" ] || die "could not read the wasm-bindgen version from Cargo.lock"

cargo_jobs=()
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" = "$WB_VERSION" ]; then
  say "ok: wasm-bindgen $WB_VERSION (matches Cargo.lock)"
else
  say "will install wasm-bindgen-cli $WB_VERSION (have: $(wasm-bindgen --version 2>/dev/null || echo none))"
  # No --locked: the CLI's own lockfile pins a webpki-roots version that is
  # missing from the crates.io index, so locked resolution fails.
  cargo_jobs+=("cargo install wasm-bindgen-cli --version $WB_VERSION --force")
fi
if [ "$(worker-build --version 2>/dev/null)" = "$WORKER_BUILD_VERSION" ]; then
  say "ok: worker-build $WORKER_BUILD_VERSION"
else
  say "will install worker-build $WORKER_BUILD_VERSION (have: $(worker-build --version 2>/dev/null || echo none))"
  cargo_jobs+=("cargo install worker-build --version $WORKER_BUILD_VERSION --locked --force")
fi

cargo_pid=""
if [ ${#cargo_jobs[@]} -gt 0 ]; then
  (
    set -e
    for job in "${cargo_jobs[@]}"; do
      t0=$(date +%s)
      echo "[cargo] \$ $job"
      $job 2>&1 | sed -u 's/^/[cargo] /'
      echo "[cargo] done in $(( $(date +%s) - t0 ))s: $job"
    done
  ) &
  cargo_pid=$!
  # Stop the background install if this script is interrupted.
  trap '[ -n "$cargo_pid" ] && kill "$cargo_pid" 2>/dev/null || true' INT TERM
fi

# --- npm devDependencies ---------------------------------------------------
command -v node >/dev/null || die "node not found (Node >= 20.3 needed)"
command -v npm >/dev/null || die "npm not found"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=3)?0:1)' \
  || die "node $(node --version) is too old: wrangler 4.86 needs Node >= 20.3"
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.hashgate-setup-stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ] \
   && [ -x node_modules/.bin/wrangler ] && [ -x node_modules/.bin/wasm-opt ] \
   && [ -x node_modules/@esbuild/linux-x64/bin/esbuild ]; then
  say "ok: node_modules up to date with package-lock.json"
else
  say "npm ci (node_modules missing or stale)"
  t0=$(date +%s)
  npm ci --no-audit --no-fund
  echo "$lock_sum" > "$stamp"
  say "npm ci done in $(( $(date +%s) - t0 ))s"
fi

# --- Chromium (the console's browser tests) ---------------------------------
# Debian's chromium, driven by the npm playwright-core (which never downloads
# a browser of its own). Installed only when missing and apt is available.
if [ -x /usr/bin/chromium ]; then
  say "ok: chromium"
elif command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  say "apt-get install chromium (tests/console.test.mjs)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
    || say "WARNING: chromium could not be installed; tests/console.test.mjs will fail"
else
  say "WARNING: /usr/bin/chromium missing and apt-get unavailable; tests/console.test.mjs needs it"
fi

# --- Python packages -------------------------------------------------------
if [ "${SKIP_PYTHON:-0}" = 1 ]; then
  say "skip: Python packages (SKIP_PYTHON=1)"
elif ! command -v "$PYTHON" >/dev/null; then
  say "WARNING: $PYTHON not found; skipping the Python packages (pdqhash, pillow, numpy, werkzeug, brotli, moto[server])"
else
  missing=()
  # werkzeug, brotli: the Flask-style origin of tests/forms.test.mjs
  # moto[server]: the local S3 server of cli/tests/scan_s3.rs
  for spec in pdqhash:pdqhash pillow:PIL numpy:numpy werkzeug:werkzeug brotli:brotli \
              'moto[server]:moto.server'; do
    pkg="${spec%%:*}"; mod="${spec##*:}"
    "$PYTHON" -c "import $mod" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "ok: Python packages pdqhash, pillow, numpy, werkzeug, brotli, moto[server] ($("$PYTHON" --version 2>&1))"
  else
    say "pip install ${missing[*]}"
    "$PYTHON" -m pip install --disable-pip-version-check "${missing[@]}" \
      || die "pip install failed; for a system Python (PEP 668) use a venv and rerun with PYTHON=<venv>/bin/python"
  fi
fi

# --- wait for the cargo installs ------------------------------------------
if [ -n "$cargo_pid" ]; then
  say "waiting for the cargo installs to finish"
  wait "$cargo_pid" || die "a cargo install failed (see the [cargo] lines above)"
  trap - INT TERM
fi

# --- summary ---------------------------------------------------------------
[ "$(wasm-bindgen --version | awk '{print $2}')" = "$WB_VERSION" ] \
  || die "wasm-bindgen on PATH is not $WB_VERSION: $(command -v wasm-bindgen)"
[ "$(worker-build --version)" = "$WORKER_BUILD_VERSION" ] || die "worker-build is not $WORKER_BUILD_VERSION"
say "ready in $(( $(date +%s) - start ))s:"
say "  $(rustc --version), target wasm32-unknown-unknown"
say "  $(wasm-bindgen --version), worker-build $(worker-build --version)"
say "  wrangler $(node_modules/.bin/wrangler --version 2>/dev/null | tail -n1), $(node_modules/.bin/wasm-opt --version), esbuild $(node_modules/@esbuild/linux-x64/bin/esbuild --version)"
