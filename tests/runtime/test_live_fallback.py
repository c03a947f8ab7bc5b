"""The live wall's fallback with real parts (issue 14, item 2): `lanterne run` on a real RTSP camera
(GStreamer's server), a console whose gateway cannot start (no Janus program), real RTP to the
console's relay, FFmpeg decoding. A view still starts and is on the record; its pictures reach
the console anonymised, from the camera's process, only while someone plays the fallback; the
relay stops after its last viewer, and the camera's encoder with it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from lanterne.accountability import live
from lanterne.accountability.live import LiveError
from lanterne.audit import AuditLog
from lanterne.config import Config, parse_config
from lanterne.runtime.live_wall import LINGER, LiveWall
from lanterne.runtime.runner import Runner
from lanterne.store import Store
from tests.runtime.test_live_feed import clip, wait_for
from tests.support.rtsp import rtsp_camera

__all__ = ["clip"]  # the module's RTSP clip fixture, shared


def site(tmp_path: Path, url: str) -> Config:
    return parse_config(
        {
            "mode": "statistics",
            "store": {"url": f"sqlite:///{tmp_path / 'run.db'}", "evidence_dir": str(tmp_path / "evidence")},
            "cameras": [{"id": "quai", "source": url, "location": {"lat": 51.44, "lon": -0.94}}],
            "live": {"janus_binary": str(tmp_path / "no-janus-here")},
        }
    )


def test_without_a_gateway_views_play_through_the_console_s_relay(tmp_path: Path, clip: Path) -> None:
    with rtsp_camera(clip) as camera:
        cfg = site(tmp_path, camera.url)
        runner = Runner(cfg)
        runner.start()
        store = Store.open(cfg.store.url)
        wall = LiveWall.open(cfg, store.engine, AuditLog(store.engine), tmp_path / "janus")
        try:
            assert wall.janus is None and wall.unavailable and "no-janus-here" in wall.unavailable
            wait_for(lambda: runner.workers["quai"].state.frames >= 5, 30)

            now = datetime.now(UTC)
            grant = wall.watch(user="oper", camera="quai", purpose="test", now=now)
            assert (grant.token, grant.mountpoint, grant.pin) == (None, None, None)
            assert live.view(store.engine, grant.view.id).open  # on the record like any view
            assert runner.live.watched() == {}  # nobody plays it yet: nothing encoded

            relay = wall.fallback(grant.view.id, "oper", now)
            [stream] = live.streams(store.engine)
            assert (stream.kind, stream.rtp_port, stream.view_id) == ("relay", relay.port, None)
            # A second fallback viewer of the camera shares the relay.
            other = wall.watch(user="oper2", camera="quai", purpose="test", now=now)
            assert wall.fallback(other.view.id, "oper2", now) is relay
            stop = relay.listen(lambda: None)
            took = wait_for(lambda: relay.latest()[1] is not None, 10)
            print(f"first fallback picture {took:.2f} s after the relay started")
            assert runner.live.watched() == {"quai": 1}
            picture = cv2.imdecode(np.frombuffer(relay.latest()[1], np.uint8), cv2.IMREAD_COLOR)
            assert picture.shape == (360, 640, 3)

            # Not someone else's view, not an ended one.
            with pytest.raises(LiveError, match="no open view of yours"):
                wall.fallback(grant.view.id, "oper2", now)
            wall.close(other.view.id, "oper2", now)
            with pytest.raises(LiveError, match="no open view of yours"):
                wall.fallback(other.view.id, "oper2", now)

            # The last viewer gone: the relay lingers, then stops, and so does the camera's encoder.
            stop()
            wall.close(grant.view.id, "oper", now)
            wall.sweep(now)
            assert len(live.streams(store.engine)) == 1
            wall.sweep(now + LINGER)
            assert live.streams(store.engine) == [] and relay.closed
            wait_for(lambda: runner.live.watched() == {}, 5)
        finally:
            wall.stop()
            runner.stop()
            store.close()
