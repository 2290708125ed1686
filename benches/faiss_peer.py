#!/usr/bin/env python3
"""The faiss peer of `feedctl bench-vectors`: the same vectors, the same queries, one core.

    feedctl bench-vectors --items 1000000 --dim 64 --export /tmp/vec1m
    python3 benches/faiss_peer.py /tmp/vec1m

For each faiss index (IVF with 8-bit scalar quantiser + exact refine, the equivalent of ours;
IVF-PQ + refine; HNSW flat) it sweeps the search-time knob, finds the cheapest setting whose
recall@k against exact search reaches Feed's measured recall, and reports its p50 per query
(one query at a time, one thread) and the ratio Feed p50 / faiss p50 at equal recall.
Needs `pip install faiss-cpu numpy`.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    import faiss
except ImportError:
    sys.exit("faiss is missing: pip install faiss-cpu")


def load(folder: Path):
    feed = json.loads((folder / "feed.json").read_text())
    d = feed["dim"]
    items = np.fromfile(folder / "items.f32", dtype="<f4").reshape(-1, d)
    queries = np.fromfile(folder / "queries.f32", dtype="<f4").reshape(-1, d)
    return feed, items, queries


def p50_and_recall(index, queries, truth, k, params=None):
    lat, hits = [], 0
    for i, q in enumerate(queries):
        q = q.reshape(1, -1)
        t = time.perf_counter()
        _, found = index.search(q, k, params=params) if params else index.search(q, k)
        lat.append((time.perf_counter() - t) * 1e3)
        hits += len(set(found[0].tolist()) & set(truth[i].tolist()))
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), hits / truth.size


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    feed, items, queries = load(folder)
    n, d = items.shape
    k = feed["k"]
    faiss.omp_set_num_threads(1)
    flat = faiss.IndexFlatIP(d)
    flat.add(items)
    _, truth = flat.search(queries, k)
    ours = next(s for s in feed["scenarios"] if s["selectivity"] == 1.0)
    target = ours["recall"]
    nlist = feed["index"]["partitions"]
    print(f"{n} × {d}, k = {k}; Feed: recall {target:.4f} at p50 {ours['p50_ms']:.3f} ms "
          f"({feed['profile']} build)")

    results = []
    # Every nprobe up to 32, then coarser: the ratio at equal recall depends on the step.
    probes = [p for p in list(range(1, 33)) + [40, 48, 56, 64, 96, 128, 192, 256, 384, 512]
              if p <= nlist]

    def sweep(name, index, knob, values, make_params):
        best = None
        for v in values:
            p50, p99, recall = p50_and_recall(index, queries, truth, k, make_params(v))
            if recall >= target:
                best = (v, p50, p99, recall)
                break
        if best is None:
            print(f"{name}: never reached recall {target:.4f}")
            return
        v, p50, p99, recall = best
        results.append({"index": name, knob: v, "p50_ms": p50, "p99_ms": p99, "recall": recall,
                        "feed_over_faiss_p50": ours["p50_ms"] / p50})
        print(f"{name}: {knob}={v} recall {recall:.4f} p50 {p50:.3f} ms p99 {p99:.3f} ms; "
              f"Feed p50 / faiss p50 = {ours['p50_ms'] / p50:.2f}")

    train = items[np.random.default_rng(0).choice(n, min(n, nlist * 64), replace=False)]
    for name, factory in [
        ("faiss IVF_SQ8 + refine", f"IVF{nlist},SQ8,RFlat"),
        ("faiss IVF_PQ + refine", f"IVF{nlist},PQ{d // 4},RFlat"),
    ]:
        t = time.perf_counter()
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        index.add(items)
        build = time.perf_counter() - t
        print(f"{name}: built in {build:.1f}s (1 thread)")
        refine = feed["index"]["refine_factor"]
        sweep(name, index, "nprobe", probes,
              lambda v: faiss.IndexRefineSearchParameters(
                  k_factor=refine, base_index_params=faiss.SearchParametersIVF(nprobe=v)))
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(items)
    print(f"faiss HNSW32: built in {time.perf_counter() - t:.1f}s (1 thread)")
    sweep("faiss HNSW32", hnsw, "efSearch", list(range(16, 257, 16)) + [320, 384, 448, 512],
          lambda v: faiss.SearchParametersHNSW(efSearch=v))
    (folder / "faiss.json").write_text(json.dumps({"feed": ours, "faiss": results}, indent=2))


if __name__ == "__main__":
    main()
