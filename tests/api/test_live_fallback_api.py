"""The live wall without WebRTC (issue 14, item 2): a console whose gateway cannot start still serves
anonymised views, on the record, as MJPEG from its relay. A real `LiveEncoder` stands for the
camera's process, sending the anonymised stream where the console's `relay` row says; the HTTP
response is read part by part as a browser would. Only the view's own operator gets it, only
while the view is open; protection cannot be removed without WebRTC."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lanterne.accountability import live
from lanterne.audit import Action
from lanterne.core.types import Frame
from lanterne.video.live import LiveEncoder
from tests.support.console import Console, open_console, site_config
from tests.support.video import VIDEO


@pytest.fixture
def console(db_url: str, tmp_path: Path, clock) -> Iterator[Console]:
    cfg = site_config(db_url, tmp_path)
    cfg = cfg.model_copy(
        update={"live": cfg.live.model_copy(update={"janus_binary": str(tmp_path / "no-janus")})}
    )
    yield from open_console(cfg, clock)


class Camera:
    """The camera's process as far as the fallback sees it: once the console's relay row exists,
    PETS frames encoded and sent to it, with the people's boxes fresh."""

    def __init__(self, console: Console, camera: str) -> None:
        with av.open(str(VIDEO / "vtest.avi")) as c:
            self.frames = [
                f.to_ndarray(format="bgr24") for _, f in zip(range(20), c.decode(video=0), strict=False)
            ]
        self.engine = console.store.engine
        self.camera = camera
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        encoder = None
        i = 0
        while not self.stop.is_set():
            rows = [s for s in live.streams(self.engine, [self.camera]) if s.kind == "relay"]
            if encoder is None and rows:
                encoder = LiveEncoder(self.camera, rows[0].rtp_host, rows[0].rtp_port)
            if encoder is not None:
                now = time.monotonic()
                encoder.push(Frame(self.camera, i / 10, self.frames[i % 20], i), [], [], now, now)
                i += 1
            time.sleep(0.05)
        if encoder is not None:
            encoder.close()

    def __enter__(self) -> Camera:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def _parts(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The JPEGs of a multipart body, by each part's Content-Length."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            headers = buffer[:end].decode().lower()
            length = int(headers.split("content-length:")[1].split("\r\n")[0])
            if len(buffer) < end + 4 + length:
                break
            yield buffer[end + 4 : end + 4 + length]
            buffer = buffer[end + 4 + length :]


def test_without_a_gateway_an_anonymised_view_plays_as_mjpeg_until_it_ends(console: Console) -> None:
    console.as_user("oper")
    status = console.client.get("/api/live").json()
    assert status["available"] is True and status["webrtc"] is False
    assert "no-janus" in status["reason"] and "fallback" in status["reason"]
    r = console.client.post(
        "/api/live/quai-nord/views", json={"purpose": "night patrol"}, headers=console.csrf
    )
    assert r.status_code == 201, r.text
    g = r.json()
    assert (g["janus_url"], g["token"], g["mountpoint"], g["pin"]) == (None, None, None, None)
    assert g["fallback_url"] == f"/api/live/views/{g['view']}/mjpeg"
    [opened] = console.audit_entries(Action.VIEW_LIVE)
    assert opened.details == {"live": "start", "view": g["view"], "kind": "anonymised"}

    with Camera(console, "quai-nord"), console.client.stream("GET", g["fallback_url"]) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("multipart/x-mixed-replace")
        assert resp.headers["cache-control"] == "no-store"
        parts = _parts(resp.iter_bytes())
        for _ in range(3):
            picture = cv2.imdecode(np.frombuffer(next(parts), np.uint8), cv2.IMREAD_COLOR)
            assert picture.shape == (360, 640, 3)
        # The view ends (here closed from another tab): the stream ends within a couple of seconds.
        assert console.client.delete(f"/api/live/views/{g['view']}", headers=console.csrf).status_code == 204
        started = time.monotonic()
        for _ in parts:
            assert time.monotonic() - started < 5, "pictures still sent after the view ended"
    assert time.monotonic() - started < 5
    # An ended view has no fallback either.
    assert console.client.get(g["fallback_url"]).status_code == 404


def test_the_fallback_is_only_the_viewer_s_own_and_never_unmasked(console: Console) -> None:
    console.as_user("oper")
    g = console.client.post(
        "/api/live/quai-nord/views", json={"purpose": "night patrol"}, headers=console.csrf
    ).json()
    console.as_user("sup")
    assert console.client.get(g["fallback_url"]).status_code == 404
    console.as_user("audi")
    assert console.client.get(g["fallback_url"]).status_code == 403
    console.as_user("oper")
    r = console.client.post(
        "/api/live/quai-nord/views/raw",
        json={"purpose": "x", "reason": "identify", "reference": "PV 1"},
        headers=console.csrf,
    )
    assert r.status_code == 503 and "removing protection needs WebRTC" in r.json()["detail"]
    assert console.client.get("/api/live/views/999999/mjpeg").status_code == 404
    assert console.client.get("/api/live/views/0/mjpeg").status_code == 422
