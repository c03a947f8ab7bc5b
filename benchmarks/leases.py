"""What leases cost a city, and how fast a dead worker's cameras move (issue 12, item 2).

Starts a private `nats-server -js` (Debian's, on a free port), then `--workers` lease keepers in
this process (each with its own NATS connection, as separate machines would have) over
`--cameras` cameras, once with cameras grouped in `--shards` shards and once with one lease per
camera, side by side. For each it prints the KV writes a second in steady state (heartbeats,
renewals), then stops one keeper without handing its leases back (as `kill -9` would leave
them) and prints how long until every shard is held again, and how many moved.

    .venv/bin/python benchmarks/leases.py [--cameras 4000] [--workers 4] [--shards 256] [--ttl 6]
        [--steady 12]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from lanterne.cluster import LeaseKeeper


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server(store: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nats-server did not start; apt-get install nats-server")


def held(keepers: list[LeaseKeeper]) -> int:
    return sum(len(k.leases()) for k in keepers)


def measure(
    url: str, cameras: list[str], workers: int, shards: int, ttl: float, steady: float
) -> dict[str, float]:
    keepers = [LeaseKeeper(f"w{i}", url, cameras, shards=shards, ttl=ttl) for i in range(workers)]
    try:
        for k in keepers:
            k.start()
        deadline = time.monotonic() + 60
        while held(keepers) < shards or any(len(k.leases()) > k.target() for k in keepers):
            if time.monotonic() > deadline:
                raise SystemExit(f"{shards} shards not settled within 60 s")
            time.sleep(0.2)
        before, t0 = sum(k.ops for k in keepers), time.monotonic()
        time.sleep(steady)
        ops = (sum(k.ops for k in keepers) - before) / (time.monotonic() - t0)
        victim = keepers.pop()
        lost = len(victim.leases())
        victim.stop(release=False)
        killed = time.monotonic()
        while held(keepers) < shards:
            if time.monotonic() - killed > 6 * ttl:
                raise SystemExit("the dead keeper's shards were not taken over")
            time.sleep(0.05)
        return {"ops": ops, "moved": lost, "takeover": time.monotonic() - killed}
    finally:
        for k in keepers:
            k.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--shards", type=int, default=256)
    ap.add_argument("--ttl", type=float, default=6.0)
    ap.add_argument("--steady", type=float, default=12.0, help="seconds of steady state measured")
    args = ap.parse_args()
    cameras = [f"cam-{i:05d}" for i in range(args.cameras)]
    rows = []
    for label, shards in ((f"{args.shards} shards", args.shards), ("one lease per camera", args.cameras)):
        with tempfile.TemporaryDirectory() as d:
            proc, url = nats_server(Path(d))
            try:
                rows.append(
                    (label, shards, measure(url, cameras, args.workers, shards, args.ttl, args.steady))
                )
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    print(f"{args.cameras} cameras, {args.workers} workers, lease TTL {args.ttl:g} s, nats-server (Debian)")
    print("| leases | keys | KV writes/s, steady | keys moved when a worker dies | all held again after |")
    print("|---|---|---|---|---|")
    for label, keys, r in rows:
        print(f"| {label} | {keys} | {r['ops']:.0f} | {r['moved']:.0f} | {r['takeover']:.1f} s |")
    ratio = rows[1][2]["ops"] / rows[0][2]["ops"] if rows[0][2]["ops"] else float("nan")
    print(f"shards cost {ratio:.1f}x fewer KV writes than one lease per camera")


if __name__ == "__main__":
    main()
