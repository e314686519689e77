#!/usr/bin/env bash
# The main job, locally: the hashgate worker under `wrangler dev` in front of
# a demo origin, with a demo hash index in local KV. Prints two URLs: one
# answers 451 (its image is on the demo list), one passes.
#
#   bash scripts/demo.sh            run until Ctrl-C
#   bash scripts/demo.sh --check    check both URLs, then stop (exit 1 if wrong)
#
# Steps: build the worker (skipped when up to date); build the demo index
# from fixtures/lists/demo.csv with `hashgate index build`; start the demo
# origin (tests/support/origin.mjs serving fixtures/) on 127.0.0.1; load the
# index with `wrangler kv bulk put --local --binding HASH_INDEX`; run
# `wrangler dev --local` on the project's wrangler.toml with
# `--var ORIGIN:... --var POLICY:...`. Background processes are stopped on
# exit (by the pids started here). Runs scripts/setup.sh first, so it works
# on a fresh machine (quick when everything is installed).
#
# Environment: PORT (default 8787), ORIGIN_PORT (default 8788).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true CLOUDFLARE_CF_FETCH_ENABLED=false

PORT="${PORT:-8787}"
ORIGIN_PORT="${ORIGIN_PORT:-8788}"
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1

OUT="target/demo"
STATE="$OUT/wrangler-state"
POLICY='{"routes":[{"pattern":"*/*","action":"block","lists":["demo"],"scan":["responses","uploads"],"fail":"open"}]}'

say() { printf '[demo] %s\n' "$*"; }
die() { printf '[demo] ERROR: %s\n' "$*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free "$PORT" || die "port $PORT is in use (set PORT=...)"
port_free "$ORIGIN_PORT" || die "port $ORIGIN_PORT is in use (set ORIGIN_PORT=...)"

# Background processes run in their own process group (setsid), so stopping
# one stops its children too (wrangler's workerd); they are stopped by the
# pids remembered here, never by name.
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "installing what is missing (scripts/setup.sh)"
bash scripts/setup.sh

say "building the worker"
bash scripts/build-worker.sh

say "building the demo index from fixtures/lists/demo.csv"
mkdir -p "$OUT"
cargo run --release --quiet -p hashgate-cli -- index build --list demo=fixtures/lists/demo.csv --out "$OUT/index" \
  > "$OUT/index-build.txt"

mkdir -p "$OUT"
say "starting the demo origin on http://127.0.0.1:$ORIGIN_PORT (serving fixtures/)"
setsid node tests/support/origin.mjs --port "$ORIGIN_PORT" > "$OUT/origin.log" 2>&1 &
pids+=($!)

say "loading the index into local KV: the upload commands index build printed, with --local"
rm -rf "$STATE"
grep '^  npx wrangler kv ' "$OUT/index-build.txt" | while read -r -a command; do
  args=()
  for word in "${command[@]:2}"; do
    [ "$word" = --remote ] && word=--local
    args+=("$word")
  done
  npx wrangler "${args[@]}" --persist-to "$STATE" 2>&1 \
    | grep -v 'Unknown user config "nodedir"' | sed 's/^/[wrangler] /'
done

say "starting wrangler dev on http://127.0.0.1:$PORT (log: $OUT/wrangler-dev.log)"
setsid npx wrangler dev --local --ip 127.0.0.1 --port "$PORT" --persist-to "$STATE" \
  --var "ORIGIN:http://127.0.0.1:$ORIGIN_PORT" --var "POLICY:$POLICY" > "$OUT/wrangler-dev.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 180); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/web/hello.txt" && break
  kill -0 "${pids[1]}" 2>/dev/null || { tail -n 30 "$OUT/wrangler-dev.log" >&2; die "wrangler dev exited"; }
  sleep 0.5
done
curl -s -o /dev/null "http://127.0.0.1:$PORT/web/hello.txt" || die "wrangler dev did not answer in 90 s (see $OUT/wrangler-dev.log)"

blocked="http://127.0.0.1:$PORT/photos/chelsea.jpg"
passes="http://127.0.0.1:$PORT/photos/coffee.jpg"
status() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
got_blocked="$(status "$blocked")"
got_passes="$(status "$passes")"

cat <<EOF

hashgate is running under wrangler dev, in front of the demo origin.
Policy: $POLICY

  $blocked   -> $got_blocked (on the demo list: 451 Unavailable For Legal Reasons)
  $passes    -> $got_passes (not listed: the origin's image, untouched)

Try:
  curl -i $blocked
  curl -s $passes | cmp - fixtures/photos/coffee.jpg && echo identical
  curl -i -X PUT --data-binary @fixtures/photos/chelsea.jpg -H 'content-type: image/jpeg' http://127.0.0.1:$PORT/upload/cat.jpg
EOF

[ "$got_blocked" = 451 ] && [ "$got_passes" = 200 ] || die "expected 451 and 200, got $got_blocked and $got_passes"
if [ "$CHECK" = 1 ]; then
  say "check passed; stopping"
  exit 0
fi
say "press Ctrl-C to stop"
wait "${pids[1]}"
