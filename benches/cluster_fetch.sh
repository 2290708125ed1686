#!/usr/bin/env bash
# MovieLens-1M's fetch and dataset build, in this process against a Ballista cluster on loopback
# (a scheduler and two executors of one task each, started here from `feedctl cluster`),
# alternating, five runs each; prints each run's seconds (`feedctl bench`'s fetch_dataset_s).
# The model file is examples/movielens/ml-1m.yaml with popularity as its only policy.
#
#   python3 examples/movielens/fetch_data.py ml-1m && benches/cluster_fetch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$HOME/.cache/feed/target}
feedctl=${FEEDCTL:-$target/debug/feedctl}
out=${OUT:-/tmp/feed-cluster-fetch}
data=$PWD/examples/movielens/data
[ -x "$feedctl" ] || cargo build -p feedctl
[ -s "$data/ml-1m/ratings.csv" ] || python3 examples/movielens/fetch_data.py ml-1m
mkdir -p "$out/e0" "$out/e1"
python3 - "$data" "$out" <<'PY'
import sys
data, out = sys.argv[1], sys.argv[2]
text = open("examples/movielens/ml-1m.yaml").read().replace("data/ml-1m", f"{data}/ml-1m")
head = text[: text.index("policies:")] + "policies:\n  - {name: popular, type: popular}\n"
open(f"{out}/local.yaml", "w").write(head)
open(f"{out}/cluster.yaml", "w").write(
    head.replace("fetch:\n", "fetch:\n  engine: ballista\n  scheduler: df://127.0.0.1:51050\n", 1))
PY
"$feedctl" cluster scheduler --bind 127.0.0.1:51050 2>"$out/scheduler.log" & s=$!
"$feedctl" cluster executor --scheduler 127.0.0.1:51050 --port 51051 --grpc-port 51052 \
  --concurrent-tasks 1 --work-dir "$out/e0" 2>"$out/e0.log" & e0=$!
"$feedctl" cluster executor --scheduler 127.0.0.1:51050 --port 51053 --grpc-port 51054 \
  --concurrent-tasks 1 --work-dir "$out/e1" 2>"$out/e1.log" & e1=$!
trap 'kill $s $e0 $e1 2>/dev/null' EXIT
for i in 1 2 3 4 5; do
  for m in local cluster; do
    "$feedctl" --data-root "$data" bench --file "$out/$m.yaml" --requests 10 --out "$out/$m-$i.json" >/dev/null
    python3 -c "import json; d = json.load(open('$out/$m-$i.json')); print('$m', round(d['fetch_dataset_s'], 3), 's,', d['events'], 'events')"
  done
done
