"""A camera's recording made as `lanterne run` makes it: a short real clip with the keyframe
interval of a camera, its packets copied into encrypted segments by the real `Recorder`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import av

from lanterne.audit import AuditLog
from lanterne.config import Config
from lanterne.runtime.recording import open_recorder
from lanterne.store import Store
from tests.support.video import VIDEO, excerpt


def camera_clip(directory: Path, seconds: float = 20.0) -> Path:
    """PETS re-encoded with a keyframe every 1.2 s, as a camera sends (vtest.avi has one every 25 s)."""
    return excerpt(VIDEO / "vtest.avi", directory / "pets.mp4", seconds)


def record(cfg: Config, store: Store, audit: AuditLog, camera: str, origin: datetime, clip: Path) -> None:
    """Copy every packet of `clip` into the camera's recording, starting at wall time `origin`."""
    recorder = open_recorder(cfg.recording, store, audit)
    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        cam = recorder.open(camera, stream, origin)
        for packet in src.demux(stream):
            cam.push(packet)
        cam.close()
