#!/usr/bin/env bash
# Vector retrieval benchmark, Feed and its faiss peer in one run on the same vectors and
# queries: `feedctl bench-vectors` (exact scan as the in-run baseline, filters of 10% … 0.01%)
# then `benches/faiss_peer.py` (faiss IVF_SQ8+refine, IVF_PQ+refine, HNSW at equal recall).
#
#   benches/vectors.sh [ITEMS] [DIM]          # default 1000000 64
#
# Needs `pip install faiss-cpu numpy`. Figures go to stdout and $OUT (default /tmp/feed-vectors).
set -euo pipefail
cd "$(dirname "$0")/.."
items="${1:-1000000}"
dim="${2:-64}"
out="${OUT:-/tmp/feed-vectors}/${items}x${dim}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/feed/target}"
cargo build --locked --workspace --quiet
mkdir -p "$out"
"$CARGO_TARGET_DIR/debug/feedctl" bench-vectors --items "$items" --dim "$dim" \
  --export "$out" --out "$out/feed-report.json"
python3 benches/faiss_peer.py "$out"
