#!/usr/bin/env python3
"""Opens a deployed version's Lance datasets with Python `lance` (pip install pylance) and checks
them against the version's manifest: one row per item and per user, ids in order, and one
FixedSizeList<float32, d> column per policy with vectors. Exit 0 and a summary line when they
match; a message and exit 1 when not.

    python3 tests/python/check_lance.py <home>/models/<model>/versions/<NNNNNN>
"""

import json
import sys
from pathlib import Path

import lance
import pyarrow as pa


def fail(msg):
    print(f"check_lance: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    version = Path(sys.argv[1])
    manifest = json.loads((version / "manifest.json").read_text())
    summary = []
    for table, key, id_col in [("items", "items", "item_id"), ("users", "users", "user_id")]:
        ds = lance.dataset(str(version / "lance" / f"{table}.lance"))
        if ds.count_rows() != manifest[key]:
            fail(f"{table}: {ds.count_rows()} rows, the manifest says {manifest[key]}")
        t = ds.to_table()
        if t.schema.field(0).name != id_col:
            fail(f"{table}: the first column is {t.schema.field(0).name}, not {id_col}")
        for policy, info in manifest["indexes"].items():
            field = t.schema.field(f"vector_{policy}")
            if not pa.types.is_fixed_size_list(field.type):
                fail(f"{table}.vector_{policy} is {field.type}, not a fixed-size list")
            if field.type.list_size != info["dim"] or field.type.value_type != pa.float32():
                fail(f"{table}.vector_{policy} is {field.type}, expected {info['dim']} float32")
            summary.append(f"{table}.vector_{policy}: {t.num_rows} × {field.type.list_size}")
        if table == "items":
            # Nearest neighbours with Lance's own (exact) search work on the stored vectors.
            for policy in manifest["indexes"]:
                col = t.column(f"vector_{policy}")
                q = col[0].values.to_numpy()
                hits = ds.to_table(nearest={"column": f"vector_{policy}", "q": q, "k": 5})
                if hits.num_rows != min(5, t.num_rows):
                    fail(f"Lance nearest search returned {hits.num_rows} rows")
    for policy, info in manifest["indexes"].items():
        if info["kind"] == "ivf_sq8":
            ivf = lance.dataset(str(version / "lance" / "ivf" / policy / "codes.lance"))
            if ivf.count_rows() != manifest["items"]:
                fail(f"ivf/{policy}/codes: {ivf.count_rows()} rows for {manifest['items']} items")
            summary.append(f"ivf/{policy}: {ivf.count_rows()} codes")
    if not summary:
        fail("no vector columns")
    print("; ".join(summary))


if __name__ == "__main__":
    main()
