"""The observatory store shared between the console (readers) and ingests (one writer)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from lanterne.observatory.store import ObservatoryStore, ReaderPool

WRITER = """
import sys, time
from lanterne.observatory.store import ObservatoryStore
print("ready", flush=True)
started = time.monotonic()
ObservatoryStore.open(sys.argv[1]).close()
print(time.monotonic() - started, flush=True)
"""


def test_console_readers_share_the_file_and_let_an_ingest_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's reads share one read-only open and let the file go soon after the last one,
    so that an ingest (which needs DuckDB's write lock) waits for that pause instead of failing."""
    path = tmp_path / "observatory.duckdb"
    ObservatoryStore.open(path).close()
    monkeypatch.setattr(ReaderPool, "LINGER_S", 0.3)
    pool = ReaderPool(path)
    first, second = pool.acquire(), pool.acquire()
    assert first is second
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"  # imports done: the writer is now trying
    time.sleep(0.8)
    assert proc.poll() is None, "the writer got in while the console was reading"
    released = time.monotonic()
    pool.release()
    pool.release()
    waited = float(proc.stdout.readline())
    assert proc.wait(timeout=30) == 0
    assert waited >= 0.8 + ReaderPool.LINGER_S - 0.05  # it waited for the readers and the linger
    assert time.monotonic() - released < 10
    pool.close()


def test_derived_figures_outlive_the_consoles_reopening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console reopens the file after each pause; the audit's cube (about a second on 1.4 M
    rows) is computed once per dataset version, not once per opening."""
    from lanterne.observatory import bias
    from lanterne.observatory.ingest import ingest
    from lanterne.observatory.mapping import load_mapping
    from tests.support.observatory_data import DATA, EXAMPLES

    path = tmp_path / "observatory.duckdb"
    store = ObservatoryStore.open(path)
    ingest(
        store,
        DATA / "paris_dansmarue_sample_2023_2024.csv.gz",
        load_mapping(EXAMPLES / "paris_dansmarue.yml"),
        user_id="test",
    )
    store.close()
    cubes = []
    real = bias._cube
    monkeypatch.setattr(bias, "_cube", lambda *a, **kw: cubes.append(1) or real(*a, **kw))
    readers = []  # kept alive: a new object must not pass for the old one by reusing its id
    for _ in range(2):
        reader = ObservatoryStore.open(path, read_only=True)
        assert reader.cache_key == str(path)
        first = bias.audit(reader, "paris_dansmarue", level="h3:8", k=10)
        reader.close()
        readers.append(reader)
    assert len(cubes) == 1 and first.categories
    assert ObservatoryStore.open(":memory:").cache_key != ObservatoryStore.open(":memory:").cache_key
