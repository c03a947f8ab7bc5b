"""A worker's runner takes cameras one at a time (its leases come and go): a camera removed stops
and its recording segment is sealed, while the others go on; added back, it continues its hash
chain. Real clips, real recorder, real SQLite."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from lanterne.accountability.cameras import camera_health
from lanterne.accountability.transparency import export
from lanterne.audit import AuditLog
from lanterne.config import parse_config
from lanterne.core.errors import LanterneError
from lanterne.runtime.runner import Runner
from lanterne.runtime.worker import cluster_options
from lanterne.video.recording.index import all_segments
from tests.support.video import VIDEO, excerpt


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("clip") / "vtest-30s.mp4", 30)


def site(tmp: Path, clip: Path) -> dict:
    cam = {"source": str(clip), "location": {"lat": 51.44, "lon": -0.94}, "fps": 2, "record": "continuous"}
    return {
        "mode": "alerts",
        "store": {"url": f"sqlite:///{tmp / 'w.db'}", "evidence_dir": str(tmp / "evidence")},
        "recording": {"dir": str(tmp / "recordings"), "key_file": str(tmp / "keys.json")},
        "cameras": [{**cam, "id": "north"}, {**cam, "id": "south"}],
    }


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_removed_camera_stops_and_seals_its_segment_while_the_other_goes_on(
    tmp_path: Path, clip: Path
) -> None:
    cfg = parse_config(site(tmp_path, clip))
    audit = AuditLog.from_config(cfg)
    export(cfg, audit.engine, tmp_path / "public", "tester", datetime.now(UTC))
    runner = Runner(cfg)
    runner.start(cameras=())
    try:
        assert runner.cameras() == [], "a worker starts with no camera"
        assert runner.add_camera("north") and runner.add_camera("south")
        assert not runner.add_camera("north"), "a running camera is not started twice"
        with pytest.raises(LanterneError, match="not in the configuration"):
            runner.add_camera("east")
        store = runner.store
        wait_for(
            lambda: all(
                runner.workers[c].state.frames > 4 and all_segments(store, c, states=("open",))
                for c in ("north", "south")
            ),
            60,
        )
        south = runner.workers["south"]
        assert runner.remove_camera("north")
        assert runner.cameras() == ["south"]
        north = all_segments(store, "north")
        assert north and all(s.state == "complete" and s.sha256 for s in north), "north's segment sealed"
        health = camera_health(store.engine, "north")
        assert health is not None and health.state == "stopped"
        frames = south.state.frames
        wait_for(lambda: south.state.frames > frames + 3, 20)
        assert south.alive() and runner.workers["south"] is south, "south was not touched"
        assert all_segments(store, "south", states=("open",)), "south still records"
        assert not runner.remove_camera("north"), "removing twice is a no-op"

        # Gained again (a lease back): the camera continues its own hash chain.
        assert runner.add_camera("north")
        wait_for(lambda: len(all_segments(store, "north")) > len(north), 30)
        chain = all_segments(store, "north")
        assert chain[len(north)].seq == north[-1].seq + 1
        assert chain[len(north)].prev_sha256 == north[-1].sha256
    finally:
        runner.stop()
    assert all(s.state == "complete" for s in all_segments(runner.store, "south"))


def test_cluster_options_come_from_the_config_and_the_command_line_overrides_them(tmp_path: Path) -> None:
    data = site(tmp_path, tmp_path / "none.mp4")
    cfg = parse_config({**data, "cluster": {"nats_url": "nats://10.0.0.5:4222", "shards": 64}})
    opts = cluster_options(cfg, worker_id="w1")
    assert (opts.nats_url, opts.worker_id, opts.shards, opts.ttl) == ("nats://10.0.0.5:4222", "w1", 64, 6.0)
    opts = cluster_options(cfg, nats_url="nats://127.0.0.1:4333", shards=8, ttl=3.0, worker_id="w2")
    assert (opts.nats_url, opts.shards, opts.ttl) == ("nats://127.0.0.1:4333", 8, 3.0)
    with pytest.raises(LanterneError, match=r"set cluster\.nats_url .* or pass --nats"):
        cluster_options(parse_config(data))
    assert len(cluster_options(cfg).worker_id) >= 1, "the host name by default"


def test_worker_and_ingest_say_in_one_line_what_is_missing(tmp_path: Path) -> None:
    """No NATS URL anywhere, or a NATS server that is not there: one line naming the fix, exit 2."""
    data = site(tmp_path, tmp_path / "none.mp4")
    config = tmp_path / "site.yml"
    config.write_text(yaml.safe_dump({**data, "mode": "statistics"}), encoding="utf-8")
    lanterne = str(Path(sys.executable).with_name("lanterne"))
    for args, message in (
        (
            ["worker", "--config", str(config), "--id", "w1"],
            "set cluster.nats_url in the configuration or pass --nats",
        ),
        (["ingest", "--config", str(config)], "set cluster.nats_url in the configuration or pass --nats"),
        (
            ["worker", "--config", str(config), "--nats", "nats://127.0.0.1:9"],
            "cannot reach NATS at nats://127.0.0.1:9",
        ),
        (
            ["ingest", "--config", str(config), "--nats", "nats://127.0.0.1:9"],
            "cannot reach NATS at nats://127.0.0.1:9",
        ),
    ):
        result = subprocess.run([lanterne, *args], capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 2, result.stderr[-2000:]
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
