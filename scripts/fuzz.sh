#!/usr/bin/env bash
# Fuzzes hashgate's input parsers with cargo-fuzz (libFuzzer), one target
# at a time, and prints executions, coverage and crashes per target.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGET defaults to every target in
# fuzz/Cargo.toml. Each target's corpus starts from fixtures/ (images,
# lists, earlier crashes in fixtures/regressions/<target>/) and from inputs
# made by the project's own encoders (`fuzz/seeds`), and grows in
# fuzz/corpus/<target> (not committed). A crash, hang (-timeout) or single
# allocation over MALLOC_LIMIT_MB leaves an input in
# fuzz/artifacts/<target>/: copy it to fixtures/regressions/<target>/, fix
# the library, and `cargo test -p hashgate --test regressions` keeps it
# fixed. Not part of scripts/test.sh (CI time); the regression inputs are.
#
# Environment: RSS_LIMIT_MB (default 2048), MALLOC_LIMIT_MB (default 96:
# the edge's 48 MiB decode cap and what is built around it), TIMEOUT
# (seconds per input, default 10), MAX_LEN (bytes, default 65536 for the
# image targets and 16384 otherwise), JOBS is always 1 (the machine is
# shared; run targets one after the other).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

SECONDS_PER_TARGET="${1:-60}"
shift || true
RSS_LIMIT_MB="${RSS_LIMIT_MB:-2048}"
MALLOC_LIMIT_MB="${MALLOC_LIMIT_MB:-96}"
TIMEOUT="${TIMEOUT:-10}"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: cargo-fuzz needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "==> installing cargo-fuzz"
  cargo +nightly install cargo-fuzz --locked || cargo +nightly install cargo-fuzz
fi

ALL_TARGETS=(hash_image hash_variants hash_list list_formats index_record index_resolve index_snapshot policy queue_event multipart multipart_reference)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

echo "==> building targets (nightly, address sanitizer)"
cargo +nightly fuzz build --fuzz-dir fuzz 2>&1 | grep -Ev '^\s+(Compiling|Finished)' || true
echo "==> writing generated seeds"
SEEDS="fuzz/out/seeds"
rm -rf "$SEEDS" && mkdir -p "$SEEDS"
cargo +nightly run --quiet --release --manifest-path fuzz/Cargo.toml --target-dir fuzz/target/seeds --bin seeds -- "$SEEDS"

# Seeds from fixtures/ for one target, into $SEEDS/<target>.
seed_fixtures() {
  local target="$1" dir="$SEEDS/$1"
  mkdir -p "$dir"
  case "$target" in
    hash_image|hash_variants)
      cp fixtures/photos/* fixtures/formats/* fixtures/exact/* fixtures/errors/* "$dir"/ ;;
    hash_list)
      cp fixtures/lists/*.* "$dir"/ ;;
    list_formats)
      cp fixtures/lists/*.* fixtures/lists/formats/* "$dir"/ ;;
  esac
  if [ -d "fixtures/regressions/$target" ]; then
    cp "fixtures/regressions/$target"/* "$dir"/ 2>/dev/null || true
  fi
}

SUMMARY="fuzz/out/summary.tsv"
printf 'target\tseconds\texecs\texecs/s\tcov\tft\tcorpus\tpeak_rss_mb\tcrashes\n' >"$SUMMARY"
failed=0
for target in "${TARGETS[@]}"; do
  seed_fixtures "$target"
  corpus="fuzz/corpus/$target" artifacts="fuzz/artifacts/$target" log="fuzz/out/$target.log"
  mkdir -p "$corpus" "$artifacts"
  case "$target" in hash_image|hash_variants) max_len="${MAX_LEN:-65536}" ;; *) max_len="${MAX_LEN:-16384}" ;; esac
  before=$(find "$artifacts" -type f | wc -l)
  echo "==> $target: ${SECONDS_PER_TARGET}s (rss ${RSS_LIMIT_MB} MB, malloc ${MALLOC_LIMIT_MB} MB, timeout ${TIMEOUT}s, max_len ${max_len})"
  status=0
  cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" "$SEEDS/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_LIMIT_MB" -malloc_limit_mb="$MALLOC_LIMIT_MB" \
    -timeout="$TIMEOUT" -max_len="$max_len" -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  after=$(find "$artifacts" -type f | wc -l)
  final_stat() { grep -m1 "^stat::$1:" "$log" | awk '{print $2}'; }
  last=$(grep -E 'cov: [0-9]+' "$log" | tail -n 1 || true)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.*corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$SECONDS_PER_TARGET" "$(final_stat number_of_executed_units)" \
    "$(final_stat average_exec_per_sec)" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$(final_stat peak_rss_mb)" "$((after - before))" >>"$SUMMARY"
  if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
    failed=1
    echo "    FAILED (exit $status): see $log and $artifacts/"
    grep -E '^(==[0-9]+==ERROR|thread .* panicked|.*panicked at|SUMMARY:|artifact_prefix|Test unit written)' "$log" | head -n 8 | sed 's/^/    /' || true
  fi
done

echo
column -t -s $'\t' "$SUMMARY"
exit "$failed"
