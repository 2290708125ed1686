#!/usr/bin/env bash
# Neural training on a GPU against PyTorch on the same device, MovieLens-1M.
#
#   benches/gpu.sh build   # here: a stripped CUDA release binary, xz-compressed, in .gpu/
#   benches/gpu.sh run     # on the GPU machine: Feed's SASRec and two-tower, then the PyTorch
#                          # reference (benches/sasrec_torch.py), seconds per epoch and NDCG@10
#
# With the device tool: run `build` here, then `run` there carrying `.gpu` and
# `examples/movielens/data` (the machine has no internet). Figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
build)
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/feed/target}"
  python3 examples/movielens/fetch_data.py ml-1m
  CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}" \
    cargo build --release --locked -p feedctl --features cuda
  mkdir -p .gpu
  cp "$CARGO_TARGET_DIR/release/feedctl" .gpu/feedctl
  strip .gpu/feedctl
  xz -T0 -f -9 .gpu/feedctl
  ls -l .gpu/
  ;;
run)
  out="${OUT:-/tmp/feed-gpu}"
  mkdir -p "$out"
  [ -x .gpu/feedctl ] || xz -dk .gpu/feedctl.xz
  export CUDA_PATH="${CUDA_PATH:-/usr/local/cuda}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
  home=$(mktemp -d)
  for f in ml-1m-sasrec ml-1m-two-tower; do
    FEED_DEVICE=cuda .gpu/feedctl --home "$home" create-model \
      --file "examples/movielens/$f.yaml" > "$out/$f.log" 2>&1 || { tail -20 "$out/$f.log"; exit 1; }
  done
  for m in movielens_1m_sasrec movielens_1m_two_tower; do
    .gpu/feedctl --home "$home" view-model --model-name "$m" --json > "$out/$m.json"
  done
  python3 benches/sasrec_torch.py --data examples/movielens/data/ml-1m/ratings.csv \
    --min-item-ratings 5 --device cuda | tee "$out/torch_sasrec.log"
  python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for m, p in [("movielens_1m_sasrec", "sasrec"), ("movielens_1m_two_tower", "two_tower")]:
    v = json.load(open(f"{out}/{m}.json"))
    r = v["metrics"]["policies"][p]
    t = r["training"]
    print(f"feed {p}: test NDCG@10 {r['test']['ndcg@10']:.4f} HR@10 {r['test']['hr@10']:.4f}, "
          f"{t['train_seconds_per_epoch']:.2f} s/epoch training ({t['seconds_per_epoch']:.2f} with validation), {t['epochs']} epochs, "
          f"best {t['best_epoch']}, device {t['device']}")
    print(f"  popularity NDCG@10 {v['metrics']['reference']['test']['ndcg@10']:.4f}")
PY
  tail -1 "$out/torch_sasrec.log"
  ;;
*)
  echo "usage: benches/gpu.sh build|run" >&2
  exit 2
  ;;
esac
