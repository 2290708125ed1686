#!/usr/bin/env bash
# Scale figures for docs/scaling.md: for each size, `feedctl synth` writes a catalog (20 events
# per user, one item per 100 events) and `feedctl bench` measures it end to end in one process:
# fetch + dataset build, create-model (train ALS and popularity, evaluate, deploy), snapshot
# load and rank latency, each stage's peak resident memory over what the process held before
# it, and the version's bytes on disk. /usr/bin/time adds the process's peak resident set.
#
#   benches/scaling.sh                       # 1M 10M 30M events
#   SIZES="1000000" benches/scaling.sh       # one size
#
# Figures land in $OUT (default /tmp/feed-scaling): <events>/bench.json and time.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$HOME/.cache/feed/target}
feedctl=${FEEDCTL:-$target/debug/feedctl}
out=${OUT:-/tmp/feed-scaling}
[ -x "$feedctl" ] || cargo build -p feedctl
for events in ${SIZES:-1000000 10000000 30000000}; do
  dir=$out/$events
  mkdir -p "$dir"
  if [ ! -s "$dir/data/events.csv" ]; then
    "$feedctl" synth --out "$dir/data" --events "$events" --users $((events / 20)) \
      --items $((events / 100)) --iterations 5 >/dev/null
  fi
  echo "== $events events: $(du -sb "$dir/data/events.csv" | cut -f1) bytes of CSV" >&2
  /usr/bin/time -v -o "$dir/time.txt" "$feedctl" --data-root "$dir/data" bench \
    --file "$dir/data/model.yaml" --requests 2000 --out "$dir/bench.json" | tee "$dir/bench.txt"
  grep -E "Maximum resident|Elapsed" "$dir/time.txt" >&2
done
