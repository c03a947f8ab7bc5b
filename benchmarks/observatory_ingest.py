"""Ingest of the full Chicago file (1,382,764 rows, 2013-2017) with H3 indexing: `lanterne
observatory ingest` beside a straightforward pandas implementation of the same work (goal:
≤ 15 s on a 2-core machine; ratio reported against pandas).

Both sides do the same work: read the mapped columns of the Parquet file, parse and truncate the
time, check coordinates, area code, category (incl. the personal-identifier patterns) and channel,
index every located row as an H3 resolution-10 cell, and store the result (Lanterne: a DuckDB
file with rows, rejects and provenance in one transaction; pandas: a Parquet file with the same
columns). The pandas side uses vectorised column operations where pandas has them and one
`h3.latlng_to_cell` call per row, as an analyst would write it. Lanterne's own run is timed with
and without indexing the beats and districts layers (the point-in-polygon of each new cell).

    .venv/bin/python benchmarks/observatory_ingest.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from h3.api import basic_int as h3

from lanterne.config import load_config
from lanterne.observatory.ingest import PII_PATTERNS, ingest
from lanterne.observatory.mapping import load_mapping
from lanterne.observatory.store import ObservatoryStore

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "observatory"
CHICAGO = DATA / "chicago_crimes_2013_2017.parquet"
MAPPING = ROOT / "examples" / "observatory" / "chicago_crimes.yml"
SITE = ROOT / "examples" / "observatory" / "site.yml"


def lanterne_ingest(workdir: Path, with_layers: bool) -> tuple[float, int]:
    cfg = load_config(SITE)
    layers = (
        [layer for layer in cfg.observatory.layers if layer.id in ("beats", "districts")]
        if with_layers
        else []
    )
    path = workdir / f"obs-{time.monotonic_ns()}.duckdb"
    started = time.perf_counter()
    store = ObservatoryStore.open(path)
    report = ingest(store, CHICAGO, load_mapping(MAPPING), user_id="bench", layers=layers)
    store.close()
    return time.perf_counter() - started, report.rows_loaded


def pandas_ingest(workdir: Path) -> tuple[float, int]:
    started = time.perf_counter()
    df = pd.read_parquet(CHICAGO, columns=["datetime_local", "primary_type", "arrest", "beat", "lat", "lon"])
    ts = pd.to_datetime(df["datetime_local"], errors="coerce").dt.floor("min")
    lat = pd.to_numeric(df["lat"], errors="coerce")
    lon = pd.to_numeric(df["lon"], errors="coerce")
    area = df["beat"].astype("Int64").astype("string")
    category = df["primary_type"].astype("string").str.strip().replace("", pd.NA)
    channel = df["arrest"].map({True: "police_initiated", False: "citizen_report"})
    personal = pd.Series(False, index=df.index)
    with warnings.catch_warnings():  # "has match groups": only whether it matches is used
        warnings.simplefilter("ignore", UserWarning)
        for _, pattern in PII_PATTERNS:
            personal |= category.str.contains(pattern, na=False)
    reason = np.select(
        [
            ts.isna(),
            lat.isna() != lon.isna(),
            (lat.abs() > 90) | (lon.abs() > 180),
            area.isna(),
            category.isna(),
            personal,
            channel.isna(),
        ],
        [
            "time",
            "coordinates incomplete",
            "coordinates out of range",
            "area",
            "category",
            "personal",
            "channel",
        ],
        default="",
    )
    ok = reason == ""
    located = ok & lat.notna() & lon.notna() & ~((lat == 0) & (lon == 0))
    cells = [
        h3.latlng_to_cell(a, b, 10) if keep else None
        for a, b, keep in zip(lat.tolist(), lon.tolist(), located.tolist(), strict=True)
    ]
    out = pd.DataFrame(
        {
            "dataset": "chicago_crimes",
            "ts": ts,
            "category": category,
            "channel": channel,
            "h3": pd.array(cells, dtype="Int64"),
            "area_layer": "beats",
            "area_code": area,
            "n": 1,
        }
    )
    rejects = pd.DataFrame({"row_number": np.flatnonzero(~ok) + 1, "reason": reason[~ok]})
    out[ok].to_parquet(workdir / "incidents.parquet")
    rejects.to_parquet(workdir / "rejects.parquet")
    return time.perf_counter() - started, int(ok.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each (the median is reported).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results: dict[str, list[float]] = {"lanterne": [], "lanterne+layers": [], "pandas": []}
        loaded: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, run in (
                ("lanterne", lambda: lanterne_ingest(work, with_layers=False)),
                ("lanterne+layers", lambda: lanterne_ingest(work, with_layers=True)),
                ("pandas", lambda: pandas_ingest(work)),
            ):
                seconds, rows = run()
                results[name].append(seconds)
                loaded[name] = rows
    assert len(set(loaded.values())) == 1, f"the implementations disagree on rows loaded: {loaded}"
    print(f"Chicago 2013-2017: {loaded['lanterne']:,} rows loaded, median of {args.repeat} runs")
    med = {name: statistics.median(times) for name, times in results.items()}
    for name, seconds in med.items():
        runs = ", ".join(f"{t:.2f}" for t in results[name])
        print(f"  {name:<16} {seconds:6.2f} s   ({runs})")
    print(f"  ratio pandas / lanterne         {med['pandas'] / med['lanterne']:.2f}x")
    print(f"  ratio pandas / lanterne+layers  {med['pandas'] / med['lanterne+layers']:.2f}x")
    print(f"  goal ≤ 15 s with H3: {'met' if med['lanterne+layers'] <= 15 else 'NOT met'}")


if __name__ == "__main__":
    main()
