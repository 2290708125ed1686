#!/usr/bin/env bash
# Feed against a PyTorch reference on this machine's CPU, on MovieLens-1M: SASRec
# (benches/sasrec_torch.py, `ml-1m-sasrec.yaml`) or two-tower (benches/two_tower_torch.py,
# `ml-1m-two-tower.yaml`). The same network, data, batches, loss and optimiser, EPOCHS epochs each
# (2 by default), one after the other so that neither slows the other. Prints seconds per epoch
# (with validation, and training alone), the ratio Feed / PyTorch, and the losses per epoch; for
# SASRec also those of the reference drawing from Feed's random streams (`--feed-streams`).
#
#   benches/cpu.sh                     # MODEL=sasrec EPOCHS=2 OUT=/tmp/feed-cpu
#   MODEL=two_tower benches/cpu.sh
#   FEEDCTL=path/to/feedctl benches/cpu.sh
#
# Needs PyTorch (`pip install torch==2.9.1`) and ml-1m (fetched here if missing). Run it on a quiet
# machine: the two runs take turns, but anything else running shifts both.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-sasrec}
EPOCHS=${EPOCHS:-2}
OUT=${OUT:-/tmp/feed-cpu}
ROOT=$PWD/examples/movielens/data
DATA=$ROOT/ml-1m
[ -f "$DATA/ratings.csv" ] || python3 examples/movielens/fetch_data.py ml-1m
python3 -c "import torch" 2>/dev/null || { echo "benches/cpu.sh needs PyTorch: pip install torch==2.9.1" >&2; exit 2; }
if [ -z "${FEEDCTL:-}" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/feed/target}
    cargo build -q -p feedctl
    FEEDCTL=$CARGO_TARGET_DIR/debug/feedctl
fi
rm -rf "$OUT" && mkdir -p "$OUT"

case "$MODEL" in
    sasrec)
        EXAMPLE=examples/movielens/ml-1m-sasrec.yaml NAME=movielens_1m_sasrec
        TORCH=(benches/sasrec_torch.py --data "$DATA/ratings.csv" --min-item-ratings 5) ;;
    two_tower)
        EXAMPLE=examples/movielens/ml-1m-two-tower.yaml NAME=movielens_1m_two_tower
        TORCH=(benches/two_tower_torch.py --data-root "$ROOT") ;;
    *) echo "MODEL is sasrec or two_tower, not $MODEL" >&2; exit 2 ;;
esac

echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)'), $MODEL, cpu, $EPOCHS epochs"
python3 "${TORCH[@]}" --device cpu --epochs "$EPOCHS" --patience "$EPOCHS" | tee "$OUT/torch.log"
if [ "$MODEL" = sasrec ]; then
    # The losses step for step: the reference again with Feed's weights, shuffles and dropout
    # masks (slower — numpy masks, attention written out — so not timed).
    echo "== PyTorch with Feed's random streams (losses only)"
    python3 "${TORCH[@]}" --device cpu --epochs "$EPOCHS" --patience "$EPOCHS" --feed-streams \
        | tee "$OUT/torch-streams.log"
fi

echo "== Feed ($FEEDCTL), $MODEL, cpu, $EPOCHS epochs"
sed -e "s#path: data/#path: $ROOT/#" \
    -e "s#^    epochs: .*#    epochs: $EPOCHS#" \
    -e "s#^    patience: .*#    patience: $EPOCHS#" \
    -e "s#^  device: .*#  device: cpu#" \
    "$EXAMPLE" > "$OUT/model.yaml"
"$FEEDCTL" --home "$OUT/home" --data-root "$ROOT" create-model --file "$OUT/model.yaml"
"$FEEDCTL" --home "$OUT/home" view-model --model-name "$NAME" --json > "$OUT/feed.json"

python3 - "$OUT" "$MODEL" <<'PY'
import json, re, sys
out, policy = sys.argv[1], sys.argv[2]
torch = [tuple(map(float, m.groups())) for m in re.finditer(
    r"epoch \d+ loss ([\d.]+) valid NDCG@10 [\d.]+ train ([\d.]+)s \(with validation ([\d.]+)s\)",
    open(f"{out}/torch.log").read())]
try:
    streams = [float(x) for x in re.findall(r"epoch \d+ loss ([\d.]+)",
                                            open(f"{out}/torch-streams.log").read())]
except FileNotFoundError:
    streams = []
t = json.load(open(f"{out}/feed.json"))["metrics"]["policies"][policy]["training"]
feed = t["history"]
print(f"\n{'epoch':>5} {'PyTorch s':>10} {'Feed s':>8} {'ratio':>6} {'PyTorch loss':>13} "
      f"{'same streams':>13} {'Feed loss':>10}")
for n, ((loss, train_s, with_valid), e) in enumerate(zip(torch, feed)):
    same = f"{streams[n]:.4f}" if n < len(streams) else "-"
    print(f"{e['epoch']:>5} {with_valid:>10.1f} {e['seconds']:>8.1f} {e['seconds'] / with_valid:>6.2f} "
          f"{loss:>13.4f} {same:>13} {e['loss']:>10.4f}")
torch_train = sum(x[1] for x in torch) / len(torch)
feed_train = t["train_seconds_per_epoch"]
print(f"training alone, mean per epoch: PyTorch {torch_train:.1f} s, Feed {feed_train:.1f} s, "
      f"ratio {feed_train / torch_train:.2f}")
PY
