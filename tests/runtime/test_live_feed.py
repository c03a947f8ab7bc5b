"""The camera side of the live wall with real parts: `lanterne run` on a real RTSP camera
(GStreamer's server), Debian's Janus started by the console's `LiveWall`, real RTP. Nobody
watches: nothing is encoded. A viewer arrives: the camera's process feeds the mountpoint within a
second or two. The last viewer leaves: the stream stops. A camera that drops and comes back
feeds the same mountpoint again (issue 14)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lanterne.accountability import live
from lanterne.audit import AuditLog
from lanterne.config import Config, parse_config
from lanterne.runtime.janus import Mountpoint
from lanterne.runtime.live_wall import LINGER, LiveWall
from lanterne.runtime.runner import Runner
from lanterne.store import Store
from tests.support.rtsp import h264_clip, rtsp_camera

pytestmark = pytest.mark.skipif(shutil.which("janus") is None, reason="Debian's janus is not installed")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return h264_clip(tmp_path_factory.mktemp("rtsp") / "cam.mp4")


def wait_for(condition: Callable[[], object], seconds: float) -> float:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.1)
    return time.monotonic() - t0


def site(tmp_path: Path, url: str) -> Config:
    return parse_config(
        {
            "mode": "statistics",
            "store": {"url": f"sqlite:///{tmp_path / 'run.db'}", "evidence_dir": str(tmp_path / "evidence")},
            "cameras": [{"id": "quai", "source": url, "location": {"lat": 51.44, "lon": -0.94}}],
        }
    )


def test_a_camera_is_encoded_only_while_somebody_watches_it(tmp_path: Path, clip: Path) -> None:
    with rtsp_camera(clip) as camera:
        cfg = site(tmp_path, camera.url)
        runner = Runner(cfg)
        runner.start()
        store = Store.open(cfg.store.url)
        wall = LiveWall.open(cfg, store.engine, AuditLog(store.engine), tmp_path / "janus")
        try:
            assert wall.janus is not None, wall.unavailable
            wait_for(lambda: runner.workers["quai"].state.frames >= 5, 30)
            assert runner.live.watched() == {}  # nobody watches: no encoder at all

            now = datetime.now(UTC)
            grant = wall.watch(user="oper", camera="quai", purpose="test", now=now)
            [stream] = live.streams(store.engine)
            mp = Mountpoint(stream.id, stream.rtp_port, "", stream.secret)
            took = wait_for(lambda: runner.live.watched() == {"quai": 1}, 5)
            print(f"encoding {took:.2f} s after the view started")
            # Janus counts a new mountpoint's media age from its creation: wait past that.
            time.sleep(1.0)
            wait_for(lambda: (wall.janus.media_age(mp) or 99) < 0.5, 10)

            # The camera is analysed at 5 fps (the default) and sends 10: the tile plays at its
            # own 10 fps, the frames in between shown with the boxes of the analysed one before.
            [feed] = runner.live._feeds["quai"]
            worker = runner.workers["quai"]
            sent, analysed = feed.encoder.stats.frames_sent, worker.state.frames
            time.sleep(3.0)
            sent, analysed = feed.encoder.stats.frames_sent - sent, worker.state.frames - analysed
            assert analysed >= 10 and sent >= 1.7 * analysed, (sent, analysed)

            # A second viewer shares the stream: still one encoder.
            second = wall.watch(user="oper2", camera="quai", purpose="test", now=now)
            time.sleep(0.5)
            assert runner.live.watched() == {"quai": 1} and second.mountpoint == grant.mountpoint

            # The camera drops and comes back: the same mountpoint is fed again.
            camera.hang()
            wait_for(lambda: (wall.janus.media_age(mp) or 0) > 2.0, 20)
            camera.resume()
            wait_for(lambda: (wall.janus.media_age(mp) or 99) < 0.5, 45)

            wall.close(grant.view.id, "oper", now)
            wall.close(second.view.id, "oper2", now)
            wall.sweep(now + LINGER)
            assert live.streams(store.engine) == []
            wait_for(lambda: runner.live.watched() == {}, 5)
        finally:
            wall.stop()
            runner.stop()
            store.close()
