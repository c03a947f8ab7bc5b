"""API latency under load (issue 3: p95 ≤ 300 ms): 50 concurrent console clients listing alerts
and searching events over a seeded store, once on SQLite and once on PostgreSQL.

A real `lanterne serve` process (uvicorn, one worker, as deployed) on loopback; this process seeds
the store first (N events over 20 cameras and 30 days, a third of them decided), creates one
operator account per client, logs each client in, then runs `--clients` asyncio httpx clients at
once, each sending `--requests` requests in a loop with no pause: alternately the alert list
(`GET /api/alerts?limit=50`, a state filter one time in three) and an event search (`GET
/api/events`, purpose given, random filters and page; every search writes its audit record), or
only one of them (`--routes`), back to back or after a random pause of mean `--think` seconds
(an operator reading the answer). Latency
is measured per request from send to full body, and reported as p50 / p95 / max per route.

    .venv/bin/python benchmarks/api_load.py [--events 5000] [--clients 50] [--requests 20]
        [--backend sqlite|postgresql|both] [--routes alerts|events|both] [--think SECONDS]

PostgreSQL: the server at $LANTERNE_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres,
as the tests); a database `lanterne_bench_<random>` is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml

from _accounts import cleared_operator  # same folder: run as a script
from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.audit import AuditLog
from lanterne.core.types import Event, EventType
from lanterne.store import Store

PASSWORD = "lanterns carry light slowly"
CAMERAS = [f"cam-{i:02d}" for i in range(20)]
SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
PG_ADMIN = os.environ.get("LANTERNE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
GOAL_P95_MS = 300.0

CODES: dict[str, list[str]] = {}
"""Each benchmark account's unused recovery codes: one per login (the second factor)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'lanterne.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"lanterne_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def seed(url: str, tmp: Path, events: int, clients: int) -> Path:
    config = {
        "site": "Load test",
        "store": {"url": url},
        "audit": {"key_path": str(tmp / "audit.key")},
        "cameras": [
            {
                "id": cam,
                "name": cam,
                "source": f"{cam}.mp4",
                "location": {"lat": 48.85 + i / 1000, "lon": 2.35},
                "zones": [{"id": "z1", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
            }
            for i, cam in enumerate(CAMERAS)
        ],
    }
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    rng = random.Random(7)
    now = datetime.now(UTC)
    store = Store.open(url)
    audit = AuditLog(store.engine)
    types = list(EventType)
    for i in range(events):
        ev = Event(
            f"ev-{i:06d}",
            rng.choice(types),
            rng.choice(CAMERAS),
            "z1",
            0.0,
            rng.uniform(1, 30),
            rng.uniform(0.3, 0.99),
            (0.1, 0.1, 0.3, 0.4),
            False,
            rng.choice(["person", "car", "suitcase", None]),
        )
        store.upsert_event(ev, now - timedelta(seconds=rng.uniform(0, 30 * 86400)), "alerts")
    for i in range(0, events, 3):
        eid = f"ev-{i:06d}"
        acknowledge(store.engine, audit, eid, "u-seed", now)
        if i % 2:
            confirm(store.engine, audit, eid, "u-seed", now, "monitoring")
        else:
            dismiss(store.engine, audit, eid, "u-seed", now, reason="reflection_or_light")
    for c in range(clients):
        CODES[f"load{c:03d}"] = list(cleared_operator(store, f"load{c:03d}", PASSWORD))
    store.close()
    return path


@contextmanager
def server(config: Path) -> Iterator[str]:
    port = _free_port()
    log = (config.parent / "server.log").open("wb")
    # The server's log goes to a file: a pipe nobody reads would fill and block the server.
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanterne.cli.main", "serve", "--config", str(config), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/public/style.css", timeout=1):
                    break
            except OSError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"lanterne serve did not start: {(config.parent / 'server.log').read_text()[-2000:]}"
                    ) from exc
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        errors = [line for line in (config.parent / "server.log").read_text().splitlines() if "Error" in line]
        if errors:
            print(f"server log: {len(errors)} error lines, last: {errors[-1][:300]}")


async def login(base: str, n: int) -> httpx.AsyncClient:
    """A client holding a fresh session. Its connection is opened by the first measured request:
    one kept from the login could be closed meanwhile by uvicorn's 5 s keep-alive timeout."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        login = f"load{n:03d}"
        r = await http.post(
            "/api/login", json={"login": login, "password": PASSWORD, "code": CODES[login].pop()}
        )
        r.raise_for_status()
        cookies = http.cookies
    return httpx.AsyncClient(base_url=base, timeout=60, cookies=cookies)


async def client(
    http: httpx.AsyncClient,
    n: int,
    requests: int,
    routes: str,
    think: float,
    out: dict[str, list[float]],
    errors: list[str],
) -> None:
    rng = random.Random(n)
    for i in range(requests):
        if think:  # an operator reads the answer before the next click (random, mean `think`)
            await asyncio.sleep(rng.uniform(0, 2 * think))
        params: dict[str, str | int]
        if routes == "alerts" or (routes == "both" and i % 2 == 0):
            route, path, params = "GET /api/alerts", "/api/alerts", {"limit": 50}
            if i % 3 == 0:
                params["state"] = rng.choice(["new", "confirmed", "dismissed"])
        else:
            route, path = "GET /api/events", "/api/events"
            params = {"purpose": "load test", "page": rng.randint(1, 5), "page_size": 50}
            if rng.random() < 0.5:
                params["camera"] = rng.choice(CAMERAS)
            if rng.random() < 0.5:
                params["type"] = str(rng.choice(list(EventType)))
            if rng.random() < 0.3:
                params["sort"] = "confidence"
        t0 = time.perf_counter()
        r = await http.get(path, params=params)
        _ = r.content
        out.setdefault(route, []).append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            errors.append(f"{route} {r.status_code} {r.text[:200]}")


async def load(
    base: str, clients: int, requests: int, routes: str, think: float
) -> tuple[dict[str, list[float]], list[str], float]:
    # Logins first (not what is measured), then every client starts at once.
    sessions = [await login(base, n) for n in range(clients)]
    out: dict[str, list[float]] = {}
    errors: list[str] = []
    t0 = time.perf_counter()
    try:
        await asyncio.gather(
            *(client(http, n, requests, routes, think, out, errors) for n, http in enumerate(sessions))
        )
    finally:
        for http in sessions:
            await http.aclose()
    return out, errors, time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20, help="requests per client")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument(
        "--think", type=float, default=0.0, help="mean pause between a client's requests, s (0: none)"
    )
    ap.add_argument(
        "--routes", choices=["alerts", "events", "both"], default="both", help="which routes the clients call"
    )
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(
        f"{args.clients} clients x {args.requests} requests ({args.routes}, think {args.think} s), "
        f"{args.events} events, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'backend':<11} {'route':<16} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for backend in backends:
        with tempfile.TemporaryDirectory() as d, database(backend, Path(d)) as url:
            t0 = time.perf_counter()
            config = seed(url, Path(d), args.events, args.clients)
            seeded = time.perf_counter() - t0
            with server(config) as base:
                try:
                    out, errors, wall = asyncio.run(
                        load(base, args.clients, args.requests, args.routes, args.think)
                    )
                except httpx.HTTPError:
                    print((Path(d) / "server.log").read_text()[-3000:])
                    raise
        for route, values in sorted(out.items()):
            p95 = pct(values, 95)
            worst = max(worst, p95)
            print(
                f"{backend:<11} {route:<16} {len(values):>5} {statistics.median(values):>8.0f} {p95:>8.0f} "
                f"{max(values):>8.0f}"
            )
        total = sum(len(v) for v in out.values())
        print(
            f"{backend:<11} {'(all)':<16} {total:>5} requests in {wall:.1f} s = {total / wall:.0f}/s; seeded in {seeded:.0f} s"
        )
        if errors:
            print(f"{backend}: {len(errors)} non-200 answers, first: {errors[0]}")
    print(
        f"worst p95 {worst:.0f} ms (goal {GOAL_P95_MS:.0f} ms): {'met' if worst <= GOAL_P95_MS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
