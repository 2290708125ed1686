#!/usr/bin/env python3
"""PyTorch reference for Feed's SASRec: the same network (pmixer-style blocks as in Klenitskiy &
Vasilev 2023: Q = LN(x), x = Q + MHA(Q, x, x), x = LN(x), x = x + FFN(x); final LN; shared item
embeddings; N(0, 0.02) init but for PyTorch's Xavier-uniform Q/K/V projection; LN eps 1e-8), the same data (ratings.csv, time-ordered
leave-last-out, the latest max_len + 1 training items per user, right-padded), the same batch,
loss (full softmax over all items, mean over predicted positions) and optimiser (AdamW with
weight decay 0 and eps 1e-8), plain random batches as Feed's.

Reports seconds per epoch and validation NDCG@10 per epoch, early stopping with patience, and the
test NDCG@10 / HR@10 of the best epoch (seen items excluded, full ranking), so that Feed's figures
on the same device compare:

    python3 benches/sasrec_torch.py --data examples/movielens/data/ml-1m/ratings.csv \
        --min-item-ratings 5 --device cuda

With `--feed-streams` it also draws what Feed draws from Feed's generators (util/linalg.rs `Rng`,
nn/layers.rs `normal`, `uniform`, `dropout_mask`): the initial weights in Feed's order, each
epoch's shuffle, and every dropout mask. The two runs then compute the same thing step for step,
so their losses agree to float rounding, not only in distribution (a check of the network, not a
timing: the masks are made in numpy, and the attention is written out instead of
`MultiheadAttention`).
"""
import argparse
import csv
import math
import random
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load(path, items_path=None, min_item_ratings=0):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append((r["user_id"], r["item_id"], int(r["timestamp"])))
    # Items with fewer ratings dropped, as the example's fetch SQL does (the paper's data).
    if min_item_ratings > 1:
        counts = defaultdict(int)
        for _, i, _ in rows:
            counts[i] += 1
        rows = [r for r in rows if counts[r[1]] >= min_item_ratings]
    # The catalog: rated items, plus those of an items file when the Feed model fetches one.
    items = {r[1] for r in rows}
    if items_path:
        with open(items_path) as f:
            items |= {r["item_id"] for r in csv.DictReader(f)}
    items = sorted(items)
    index = {i: n for n, i in enumerate(items)}
    # Sorted by time; equal timestamps keep the file's order, as Feed's fetch does.
    by_user = defaultdict(list)
    for pos, (u, i, t) in enumerate(rows):
        by_user[u].append((t, pos, index[i]))
    return [[i for _, _, i in sorted(by_user[u])] for u in sorted(by_user)], len(items)


class Block(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.attn_norm = nn.LayerNorm(d, eps=1e-8)
        self.attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.ffn_norm = nn.LayerNorm(d, eps=1e-8)
        self.ffn1, self.ffn2 = nn.Linear(d, d), nn.Linear(d, d)
        self.drop = nn.Dropout(p)

    def forward(self, x, causal):
        q = self.attn_norm(x)
        a, _ = self.attn(q, x, x, attn_mask=causal, need_weights=False)
        x = self.ffn_norm(q + a)
        return x + self.drop(self.ffn2(self.drop(F.relu(self.ffn1(x)))))


class SasRec(nn.Module):
    def __init__(self, n_items, max_len, d, layers, heads, p):
        super().__init__()
        self.item = nn.Embedding(n_items, d)
        self.pos = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList([Block(d, heads, p) for _ in range(layers)])
        self.last = nn.LayerNorm(d, eps=1e-8)
        self.drop = nn.Dropout(p)
        self.d = d
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            # MultiheadAttention's Q/K/V projection is a bare parameter, not an nn.Linear: it
            # keeps PyTorch's Xavier-uniform default, as in the paper's code (and in Feed's).

    def forward(self, ids):
        n, length = ids.shape
        pos = torch.arange(length, device=ids.device)
        x = self.drop(self.item(ids) * math.sqrt(self.d) + self.pos(pos)[None])
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=ids.device), 1)
        for b in self.blocks:
            x = b(x, causal)
        return self.last(x)


MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z):
    """SplitMix64's finaliser (util/linalg.rs, nn/layers.rs)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class FeedRng:
    """Feed's `Rng`: SplitMix64."""

    def __init__(self, seed):
        self.state = (seed ^ GOLDEN) & MASK64

    def next_u64(self):
        self.state = (self.state + GOLDEN) & MASK64
        return mix(self.state)

    def next_f32(self):
        return np.float32(self.next_u64() >> 40) / np.float32(1 << 24)

    def normal(self, n, std):
        out = []
        while len(out) < n:
            u1 = max(float(self.next_f32()), 1e-12)
            u2 = float(self.next_f32())
            r = math.sqrt(-2.0 * math.log(u1))
            t = 2.0 * math.pi * u2
            out.append(np.float32(r * math.cos(t)) * np.float32(std))
            out.append(np.float32(r * math.sin(t)) * np.float32(std))
        return np.array(out[:n], dtype=np.float32)

    def uniform(self, n, bound):
        return np.array([(np.float32(2.0) * self.next_f32() - np.float32(1.0)) * np.float32(bound)
                         for _ in range(n)], dtype=np.float32)

    def shuffle(self, v):
        for i in range(len(v) - 1, 0, -1):
            j = self.next_u64() % (i + 1)
            v[i], v[j] = v[j], v[i]


class FeedMasks:
    """Feed's dropout masks: element i of a mask is kept where the top 32 bits of
    mix(key + i·golden) fall below (1 − p)·2³², and scaled by 1 / (1 − p); each mask's key comes
    from the run's seed and a count of masks drawn."""

    def __init__(self, seed, p, device):
        self.seed, self.count, self.p, self.device = seed, 0, p, device

    def __call__(self, shape):
        key = mix((self.seed ^ mix((self.count + 0x6A09E667F3BCC909) & MASK64)) & MASK64)
        self.count += 1
        n = math.prod(shape)
        z = np.uint64(key) + np.arange(n, dtype=np.uint64) * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        keep = (z >> np.uint64(32)) < np.uint64(int((1.0 - self.p) * 4294967296.0))
        scale = np.float32(1.0 / (1.0 - self.p))
        mask = np.where(keep, scale, np.float32(0.0)).astype(np.float32).reshape(shape)
        return torch.from_numpy(mask).to(self.device)


class FeedBlock(nn.Module):
    """Block with the attention written out, so that Feed's masks reach its weights."""

    def __init__(self, d, heads):
        super().__init__()
        self.attn_norm = nn.LayerNorm(d, eps=1e-8)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ffn_norm = nn.LayerNorm(d, eps=1e-8)
        self.ffn1, self.ffn2 = nn.Linear(d, d), nn.Linear(d, d)
        self.heads = heads

    def forward(self, x, causal, drop):
        n, length, d = x.shape
        dk = d // self.heads

        def split(t):
            return t.reshape(n, length, self.heads, dk).transpose(1, 2)

        q_in = self.attn_norm(x)
        q, k, v = split(self.q(q_in)), split(self.k(x)), split(self.v(x))
        scores = (q @ k.transpose(2, 3) / math.sqrt(dk)).masked_fill(causal, -1e9)
        w = torch.softmax(scores, 3)
        if drop:
            w = w * drop(w.shape)
        context = (w @ v).transpose(1, 2).reshape(n, length, d)
        x = self.ffn_norm(q_in + self.o(context))
        inner = F.relu(self.ffn1(x))
        if drop:
            inner = inner * drop(inner.shape)
        out = self.ffn2(inner)
        if drop:
            out = out * drop(out.shape)
        return x + out


class FeedSasRec(nn.Module):
    """SasRec with Feed's initial weights, drawn in Feed's order (`SasRecNet::build`: per block
    Q, K, V Xavier-uniform over the stacked projection, then O, FFN1, FFN2 from N(0, 0.02); then
    the item and position embeddings), and Feed's dropout masks."""

    def __init__(self, n_items, max_len, d, layers, heads, p, seed, device):
        super().__init__()
        rng = FeedRng(seed ^ 0x5A52EC)
        xavier = float(np.sqrt(np.float32(6.0) / (np.float32(4.0) * np.float32(d))))
        self.blocks = nn.ModuleList([FeedBlock(d, heads) for _ in range(layers)])

        def dense(layer, values):
            # Feed's Dense is x · W with W [in, out]; nn.Linear keeps Wᵀ.
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(values.reshape(d, d).T.copy()))
                layer.bias.zero_()

        for b in self.blocks:
            for lin in (b.q, b.k, b.v):
                dense(lin, rng.uniform(d * d, xavier))
            for lin in (b.o, b.ffn1, b.ffn2):
                dense(lin, rng.normal(d * d, 0.02))
        self.item = nn.Embedding(n_items, d)
        self.pos = nn.Embedding(max_len, d)
        with torch.no_grad():
            self.item.weight.copy_(torch.from_numpy(rng.normal(n_items * d, 0.02).reshape(n_items, d)))
            self.pos.weight.copy_(torch.from_numpy(rng.normal(max_len * d, 0.02).reshape(max_len, d)))
        self.last = nn.LayerNorm(d, eps=1e-8)
        self.masks = FeedMasks(seed, p, device) if p > 0 else None
        self.rng = rng  # the shuffles continue Feed's stream after the weights
        self.d = d

    def forward(self, ids):
        n, length = ids.shape
        pos = torch.arange(length, device=ids.device)
        drop = self.masks if self.training else None
        x = self.item(ids) * math.sqrt(self.d) + self.pos(pos)[None]
        if drop:
            x = x * drop(x.shape)
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=ids.device), 1)
        for b in self.blocks:
            x = b(x, causal, drop)
        return self.last(x)


def batches(windows, size, rng):
    # Plain random batches, each padded to its longest sequence (as the paper's DataLoader).
    order = list(range(len(windows)))
    rng.shuffle(order)  # random.Random, or FeedRng with --feed-streams
    return [order[i:i + size] for i in range(0, len(order), size)]


def pad(seqs, device):
    length = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s)
    return ids.to(device)


@torch.no_grad()
def evaluate(model, histories, targets, n_items, max_len, device):
    model.eval()
    ndcg = hits = 0.0
    order = sorted(range(len(histories)), key=lambda i: len(histories[i]))
    for c in range(0, len(order), 256):
        chunk = order[c:c + 256]
        seqs = [histories[i][-max_len:] for i in chunk]
        h = model(pad(seqs, device))
        last = torch.tensor([len(s) - 1 for s in seqs], device=device)
        u = h[torch.arange(len(seqs), device=device), last]
        scores = u @ model.item.weight.T
        for r, i in enumerate(chunk):
            scores[r, torch.tensor(histories[i], device=device)] = -float("inf")
        t = torch.tensor([targets[i] for i in chunk], device=device)
        ts = scores[torch.arange(len(chunk), device=device), t]
        rank = (scores > ts[:, None]).sum(1)
        hit = rank < 10
        hits += hit.sum().item()
        ndcg += (hit.float() / torch.log2(rank.float() + 2)).sum().item()
    model.train()
    return ndcg / len(histories), hits / len(histories)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--items", help="items file whose ids join the catalog (as `fetch.items` does)")
    ap.add_argument("--min-item-ratings", type=int, default=0,
                    help="drop items with fewer ratings (5 in ml-1m-sasrec.yaml, the paper's data)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--feed-streams", action="store_true",
                    help="initial weights, shuffles and dropout masks from Feed's generators")
    ap.add_argument("--float64", action="store_true",
                    help="train in double precision: how far rounding alone moves the losses")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    seqs, n_items = load(a.data, a.items, a.min_item_ratings)
    evaluated = [s for s in seqs if len(s) >= 3]
    train = [s[:-2] if len(s) >= 3 else s for s in seqs]
    windows = [t[-(a.max_len + 1):] for t in train if len(t) >= 2]
    valid = ([s[:-2] for s in evaluated], [s[-2] for s in evaluated])
    test = ([s[:-1] for s in evaluated], [s[-1] for s in evaluated])
    if a.feed_streams:
        model = FeedSasRec(n_items, a.max_len, a.hidden, a.layers, a.heads, a.dropout, a.seed,
                           a.device).to(a.device)
        rng = model.rng
    else:
        model = SasRec(n_items, a.max_len, a.hidden, a.layers, a.heads, a.dropout).to(a.device)
    if a.float64:
        model = model.double()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0, eps=1e-8)
    print(f"device {a.device} ({torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu'}), "
          f"{len(windows)} sequences, {n_items} items", flush=True)
    best, best_epoch, state, times = -1.0, 0, None, []
    for epoch in range(1, a.epochs + 1):
        start = time.time()
        total = 0.0
        bs = batches(windows, a.batch, rng)
        for b in bs:
            seqs_b = [windows[j] for j in b]
            ids = pad([s[:-1] for s in seqs_b], a.device)
            tg = pad([s[1:] for s in seqs_b], a.device)
            mask = torch.zeros_like(tg, dtype=torch.bool)
            for r, s in enumerate(seqs_b):
                mask[r, :len(s) - 1] = True
            h = model(ids)[mask]
            loss = F.cross_entropy(h @ model.item.weight.T, tg[mask])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        if a.device == "cuda":
            torch.cuda.synchronize()
        train_s = time.time() - start
        times.append(train_s)
        v, _ = evaluate(model, *valid, n_items, a.max_len, a.device)
        print(f"epoch {epoch} loss {total / len(bs):.4f} valid NDCG@10 {v:.4f} train {train_s:.1f}s "
              f"(with validation {time.time() - start:.1f}s)", flush=True)
        if v > best:
            best, best_epoch = v, epoch
            state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        elif epoch - best_epoch >= a.patience:
            break
    model.load_state_dict(state)
    n, h = evaluate(model, *test, n_items, a.max_len, a.device)
    print(f"best epoch {best_epoch}: test NDCG@10 {n:.4f} HR@10 {h:.4f}; "
          f"{sum(times) / len(times):.2f} s per epoch (training only)")


if __name__ == "__main__":
    main()
