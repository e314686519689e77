#!/usr/bin/env bash
# Every test hashgate has, in one command (the README's test command, and
# what CI runs):
#   1. install what is missing (scripts/setup.sh; fast when warm);
#   2. lints: rustfmt and clippy with warnings as errors (the worker's
#      deny(clippy::unwrap_used) holds only if clippy runs);
#   3. native Rust tests of the whole workspace (hasher, index, CLI, worker's
#      pure modules), including agreement with Meta's PDQ regression data
#      when ../shared/pdq-regression is present;
#   4. the hasher's fixture and malformed-image tests compiled to wasm32 and run under node
#      (wasm-bindgen-test), so the hasher is checked where the worker runs it;
#   5. end-to-end tests: the built worker in workerd (Miniflare) with local
#      KV and queues, in front of a real origin on 127.0.0.1.
# Works from any directory; exits non-zero on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "setup"
bash scripts/setup.sh

step "lints (cargo fmt --check, clippy -D warnings, natively and for the worker's wasm)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p hashgate-worker --target wasm32-unknown-unknown --locked -- -D warnings

step "native tests (cargo test --workspace)"
cargo test --workspace --locked

step "wasm tests (hasher fixtures and malformed images under node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --locked -p hashgate --target wasm32-unknown-unknown --test fixtures --test malformed

step "end-to-end tests (worker in workerd via Miniflare)"
bash scripts/test-e2e.sh
