#!/usr/bin/env python3
"""PyTorch reference for Feed's two-tower policy (engine/src/nn/two_tower.rs, as configured by
examples/movielens/ml-1m-two-tower.yaml): the same data (ratings.csv with movies.csv and users.csv,
dense ids in sorted id order, time-ordered leave-last-out), the same features (user age numeric,
gender categorical, occupation categorical; item genres multi-valued, year numeric: tokens of one
vocabulary per tower, values seen once sharing a rare token per feature, each feature's tokens
weighing 1 in all, numbers standardised on all rows with a missing one at the mean), the same
network (user tower: user-id embedding + pooled feature tokens + projected numbers + the mean
embedding of the user's latest `history` items before the example, item-id table shared; item
tower: item-id embedding, hidden for a share `id_dropout` of the columns, + its features; each a
residual ReLU MLP y = x + mlp2(relu(mlp1(x))) and L2 normalisation; N(0, 0.02) init but for mlp1's
N(0, 2/d), biases zero), the same batches (every (user, position) of the training cut, shuffled
each epoch, `batch_size` at a time), loss (in-batch softmax at the temperature, logQ-corrected
with log(b * count / total), the row's positive masked where it repeats in another column) and
optimiser (AdamW, weight decay 0, eps 1e-8, learning rate 1e-3). Feature and history pooling use
F.embedding_bag (weighted sums, as Feed's gather-multiply-sum); batches are built with tensor
indexing, without per-row Python, so that the comparison is of the training math.

Reports seconds per epoch and validation NDCG@10 per epoch (user vectors from the training cut
against every item's vector, full ranking, seen items excluded, ties by item order), early
stopping with patience, and the test NDCG@10 / HR@10 of the best epoch, so that Feed's figures on
the same device compare:

    python3 benches/two_tower_torch.py --device cpu            # ml-1m under examples/movielens/data
    python3 benches/two_tower_torch.py --data-root DIR --epochs 2 --patience 2 --threads 2
"""
import argparse
import csv
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Rows per forward pass when encoding every user or item (Feed's ENCODE_BATCH).
ENCODE_BATCH = 4096
# Users ranked at once in an evaluation.
RANK_BATCH = 512
# Tokens seen fewer times than this share one "rare" token per feature (features.rs).
MIN_TOKEN_COUNT = 2
K = 10


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load(root):
    """Events, ids and attribute rows as Feed's fetch builds them: ids of the items (users) file
    and of the events, dense in sorted order; each user's events sorted by time, ties in file
    order."""
    ratings = read(os.path.join(root, "ratings.csv"))
    movies = read(os.path.join(root, "movies.csv"))
    people = read(os.path.join(root, "users.csv"))
    item_rows, user_rows = {}, {}
    for r in movies:  # a duplicate id keeps its first row
        item_rows.setdefault(r["item_id"], r)
    for r in people:
        user_rows.setdefault(r["user_id"], r)
    users = sorted(set(user_rows) | {r["user_id"] for r in ratings})
    items = sorted(set(item_rows) | {r["item_id"] for r in ratings})
    uidx = {u: n for n, u in enumerate(users)}
    iidx = {i: n for n, i in enumerate(items)}
    u = np.array([uidx[r["user_id"]] for r in ratings], dtype=np.int64)
    i = np.array([iidx[r["item_id"]] for r in ratings], dtype=np.int64)
    t = np.array([int(r["timestamp"]) for r in ratings], dtype=np.int64)
    order = np.lexsort((np.arange(len(u)), t, u))  # by user, then time, then file order
    seq = i[order]
    counts = np.bincount(u, minlength=len(users))
    off = np.concatenate([[0], np.cumsum(counts)])
    return (seq, off, counts, [user_rows.get(x) for x in users],
            [item_rows.get(x) for x in items])


def present(row, col):
    """The row's value of `col`, or None where it is null (no row, or an empty CSV field)."""
    if row is None:
        return None
    v = row.get(col)
    return None if v is None or v == "" else v


def number(v):
    try:
        return float(v)
    except ValueError:
        return None


def features(rows, specs):
    """Feed's FeatureTable: per row, padded token ids and weights, and standardised numbers.
    `specs` are (column, kind) with kind numeric, categorical, multi or None (inferred: numbers
    numeric, text with `|` multi-valued, other text categorical)."""
    n = len(rows)
    row_tokens = [[] for _ in range(n)]
    numeric, described, n_tokens = [], [], 0
    for col, kind in specs:
        values = [present(r, col) for r in rows]
        if kind is None:
            given = [v for v in values if v is not None]
            if given and all(number(v) is not None for v in given):
                kind = "numeric"
            else:
                kind = "multi" if any("|" in v for v in given) else "categorical"
        if kind == "numeric":
            x = [number(v) if v is not None else None for v in values]
            x = [v if v is not None and math.isfinite(v) else None for v in x]
            seen = [v for v in x if v is not None]
            mean = sum(seen) / max(len(seen), 1)
            std = max(math.sqrt(sum((v - mean) ** 2 for v in seen) / max(len(seen), 1)), 1e-9)
            numeric.append([(v - mean) / std if v is not None else 0.0 for v in x])
            described.append(f"{col}: numeric (mean {mean:.3f}, std {std:.3f})")
            continue
        multi = kind == "multi"

        def split(v):
            return [p.strip() for p in v.split("|") if p.strip()] if multi else [v.strip()]

        parts = [split(v) if v is not None else None for v in values]
        counts = {}
        for p in parts:
            for tok in p or ():
                counts[tok] = counts.get(tok, 0) + 1
        vocab = sorted(tok for tok, c in counts.items() if c >= MIN_TOKEN_COUNT)
        index = {tok: n_tokens + k for k, tok in enumerate(vocab)}
        rare = n_tokens + len(vocab)
        n_tokens += len(vocab) + 1
        for r, p in enumerate(parts):
            if p is None:
                continue
            w = 1.0 / max(len(p), 1)
            row_tokens[r].extend((index.get(tok, rare), w) for tok in p)
        described.append(f"{col}: {kind} ({len(vocab)} values, {len(counts) - len(vocab)} rare)")
    width = max((len(t) for t in row_tokens), default=0)
    tokens = np.zeros((n, width), dtype=np.int64)
    weights = np.zeros((n, width), dtype=np.float32)
    for r, toks in enumerate(row_tokens):
        for j, (tok, w) in enumerate(toks):
            tokens[r, j], weights[r, j] = tok, w
    numbers = np.array(numeric, dtype=np.float32).T.reshape(n, len(numeric))
    return tokens, weights, numbers, n_tokens, described


def parse_specs(text):
    """`age,gender,occupation:categorical` → [(age, None), (gender, None), (occupation, ...)]."""
    out = []
    for s in filter(None, (x.strip() for x in text.split(","))):
        col, _, kind = s.partition(":")
        out.append((col, kind or None))
    return out


def dense(d_in, d_out, std):
    """Feed's Dense: weights N(0, std²), bias zero."""
    layer = nn.Linear(d_in, d_out)
    nn.init.normal_(layer.weight, 0.0, std)
    nn.init.zeros_(layer.bias)
    return layer


class Tower(nn.Module):
    def __init__(self, d, tokens, weights, numbers, n_tokens):
        super().__init__()
        # The tower's feature rows, one per dense id, on the model's device.
        self.register_buffer("row_tokens", torch.from_numpy(tokens), persistent=False)
        self.register_buffer("row_weights", torch.from_numpy(weights), persistent=False)
        self.register_buffer("row_numbers", torch.from_numpy(numbers), persistent=False)
        self.tokens = nn.Parameter(torch.randn(n_tokens, d) * 0.02) if n_tokens else None
        self.numeric = dense(numbers.shape[1], d, 0.02) if numbers.shape[1] else None
        self.mlp1 = dense(d, d, math.sqrt(2.0 / d))
        self.mlp2 = dense(d, d, 0.02)

    def forward(self, x, rows):
        if self.tokens is not None and self.row_tokens.shape[1]:
            x = x + F.embedding_bag(self.row_tokens[rows], self.tokens, mode="sum",
                                    per_sample_weights=self.row_weights[rows])
        if self.numeric is not None:
            x = x + self.numeric(self.row_numbers[rows])
        y = x + self.mlp2(F.relu(self.mlp1(x)))
        return y / torch.sqrt(y.pow(2).sum(1, keepdim=True) + 1e-12)


class TwoTower(nn.Module):
    def __init__(self, n_users, n_items, d, user, item):
        super().__init__()
        self.user_ids = nn.Embedding(n_users, d)
        self.item_ids = nn.Embedding(n_items, d)
        nn.init.normal_(self.user_ids.weight, 0.0, 0.02)
        nn.init.normal_(self.item_ids.weight, 0.0, 0.02)
        self.user_tower = Tower(d, *user)
        self.item_tower = Tower(d, *item)

    def users(self, users, history, history_weights):
        x = self.user_ids(users)
        if history is not None:
            # The mean of the latest items' embeddings (the shared item-id table).
            x = x + F.embedding_bag(history, self.item_ids.weight, mode="sum",
                                    per_sample_weights=history_weights)
        return self.user_tower(x, users)

    def items(self, items, keep):
        return self.item_tower(self.item_ids(items) * keep[:, None], items)


class Data:
    """Every user's events in one flat tensor (`seq[off[u]:off[u + 1]]`, oldest first) on the
    device, with what a batch or an encoding gathers from it."""

    def __init__(self, seq, off, counts, history, device):
        self.seq = torch.from_numpy(seq).to(device)
        self.off = torch.from_numpy(off[:-1]).to(device)
        self.n = torch.from_numpy(counts).to(device)
        split = counts >= 3  # users with fewer events keep them all and are not evaluated
        self.train_len = torch.from_numpy(np.where(split, counts - 2, counts)).to(device)
        self.test_len = torch.from_numpy(np.where(split, counts - 1, counts)).to(device)
        self.evaluated = torch.from_numpy(np.flatnonzero(split)).to(device)
        self.history = history
        self.cols = torch.arange(history, device=device)
        self.device = device

    def before(self, users, p):
        """Each row's latest `history` items before position `p` of its user's sequence, padded,
        and weights 1/len (0 on padding): Feed's TowerData::before and TowerBatch history."""
        if self.history == 0:
            return None, None
        j = p[:, None] - self.history + self.cols[None]
        valid = j >= 0
        idx = torch.where(valid, self.off[users][:, None] + j, 0)
        n = p.clamp(max=self.history).clamp(min=1).to(torch.float32)
        return self.seq[idx], valid.to(torch.float32) / n[:, None]

    def seen(self, users, visible):
        """(row, item) of every visible item of `users`, for excluding them from a ranking."""
        lengths = visible[users]
        rows = torch.repeat_interleave(torch.arange(len(users), device=self.device), lengths)
        starts = torch.cumsum(lengths, 0) - lengths
        pos = torch.arange(int(lengths.sum()), device=self.device) - starts[rows]
        return rows, self.seq[self.off[users][rows] + pos]


@torch.no_grad()
def evaluate(model, data, visible, target_at, keep, n_users, n_items):
    """NDCG@10 and HR@10 of the target at position `target_at` (per user), the user tower reading
    the latest items of `visible` events, every item ranked, the visible ones excluded."""
    model.eval()
    dev = data.device
    all_users = torch.arange(n_users, device=dev)
    u_vec = torch.cat([model.users(c, *data.before(c, visible[c]))
                       for c in all_users.split(ENCODE_BATCH)])
    all_items = torch.arange(n_items, device=dev)
    v_vec = torch.cat([model.items(c, keep[c]) for c in all_items.split(ENCODE_BATCH)])
    ndcg = hits = 0.0
    item_order = all_items[None]
    for users in data.evaluated.split(RANK_BATCH):
        scores = u_vec[users] @ v_vec.T
        scores[data.seen(users, visible)] = -float("inf")
        t = data.seq[data.off[users] + target_at[users]]
        ts = scores.gather(1, t[:, None])
        # Ties broken by item order, as Feed ranks; a target already seen cannot be hit.
        rank = (scores > ts).sum(1) + ((scores == ts) & (item_order < t[:, None])).sum(1)
        hit = (rank < K) & torch.isfinite(ts[:, 0])
        hits += hit.sum().item()
        ndcg += (hit.double() / torch.log2(rank.double() + 2)).sum().item()
    model.train()
    n = max(len(data.evaluated), 1)
    return ndcg / n, hits / n


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=os.path.join(here, "..", "examples", "movielens", "data"),
                    help="the folder holding ml-1m/ (feedctl's --data-root for the example)")
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--user-features", default="age,gender,occupation:categorical",
                    help="column[:numeric|categorical|multi], comma-separated (kind inferred if none)")
    ap.add_argument("--item-features", default="genres,year")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--history", type=int, default=50)
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--negatives", type=int, default=0, help="extra uniform negatives per batch")
    ap.add_argument("--no-logq", action="store_true", help="no logQ correction")
    ap.add_argument("--id-dropout", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-decay", type=float, default=1.0, help="rate multiplier per epoch")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    dev = torch.device(a.device)

    seq, off, counts, user_rows, item_rows = load(os.path.join(a.data_root, a.dataset))
    n_users, n_items = len(user_rows), len(item_rows)
    ut, uw, un, n_ut, u_desc = features(user_rows, parse_specs(a.user_features))
    it, iw, inum, n_it, i_desc = features(item_rows, parse_specs(a.item_features))
    model = TwoTower(n_users, n_items, a.hidden, (ut, uw, un, n_ut), (it, iw, inum, n_it)).to(dev)
    data = Data(seq, off, counts, a.history, dev)

    # The training examples: every (user, position) of the training cut.
    train_len = data.train_len
    ex_user = torch.repeat_interleave(torch.arange(n_users, device=dev), train_len)
    ex_pos = torch.arange(len(ex_user), device=dev) - (torch.cumsum(train_len, 0) - train_len)[ex_user]
    total = len(ex_user)
    # Visible events per item (logQ); items without any are placed from features alone.
    item_count = torch.bincount(data.seq[data.off[ex_user] + ex_pos], minlength=n_items)
    trained = (item_count > 0).to(torch.float32)
    count64 = item_count.clamp(min=1).to(torch.float64)

    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay, eps=a.eps)
    print(f"device {a.device} ({torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, "
          f"{torch.get_num_threads()} threads), {total} interactions, {n_users} users, "
          f"{n_items} items, {-(-total // a.batch_size)} batches per epoch", flush=True)
    for d in u_desc:
        print(f"user feature {d}")
    for d in i_desc:
        print(f"item feature {d}", flush=True)

    best, best_epoch, state, times = -1.0, 0, None, []
    for epoch in range(1, a.epochs + 1):
        start = time.time()
        for g in opt.param_groups:
            g["lr"] = a.lr * a.lr_decay ** (epoch - 1)
        order = torch.randperm(total, generator=gen).to(dev)
        loss_sum, steps = 0.0, 0
        for chunk in order.split(a.batch_size):
            users, p = ex_user[chunk], ex_pos[chunk]
            b = len(chunk)
            positives = data.seq[data.off[users] + p]
            items = positives
            if a.negatives:
                randoms = torch.randint(n_items, (a.negatives,), generator=gen).to(dev)
                items = torch.cat([positives, randoms])
            m = len(items)
            keep = (torch.rand(m, generator=gen) >= a.id_dropout).to(torch.float32).to(dev)
            if a.no_logq:
                logq = torch.zeros(m, device=dev)
            else:
                logq = torch.log(b * count64[positives] / total)
                if a.negatives:
                    logq = torch.cat([logq, torch.full((a.negatives,), math.log(a.negatives / n_items),
                                                       dtype=torch.float64, device=dev)])
                logq = logq.to(torch.float32)
            # A column holding the row's own positive but not its label.
            cols = torch.arange(m, device=dev)
            same = (items[None] == positives[:, None]) & (cols[None] != cols[:b, None])

            u = model.users(users, *data.before(users, p))
            v = model.items(items, keep)
            logits = (u @ v.T / a.temperature - logq[None]).masked_fill(same, -1e9)
            loss = F.cross_entropy(logits, cols[:b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            steps += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        train_s = time.time() - start
        times.append(train_s)
        v_ndcg, _ = evaluate(model, data, data.train_len, data.train_len, trained, n_users, n_items)
        print(f"epoch {epoch} loss {loss_sum / steps:.4f} valid NDCG@10 {v_ndcg:.4f} train {train_s:.1f}s "
              f"(with validation {time.time() - start:.1f}s)", flush=True)
        if v_ndcg > best:
            best, best_epoch = v_ndcg, epoch
            state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        elif a.patience > 0 and epoch - best_epoch >= a.patience:
            break
    model.load_state_dict(state)
    # Test: the user tower reads the training and validation events (Feed's refit); items keep
    # their id embedding where they had training events.
    n, h = evaluate(model, data, data.test_len, data.test_len, trained, n_users, n_items)
    print(f"best epoch {best_epoch}: test NDCG@10 {n:.4f} HR@10 {h:.4f}; "
          f"{sum(times) / len(times):.2f} s per epoch (training only)")


if __name__ == "__main__":
    main()
