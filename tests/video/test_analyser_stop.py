"""A supervisor's stop (HO-03): from the next frame on, nothing is detected, counted or signalled,
and what was open is closed."""

from __future__ import annotations

from pathlib import Path

from lanterne.config import config_hash, parse_config
from lanterne.core.types import Counts, Event
from lanterne.runtime.demo import CROSSROADS
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"


def test_stopped_camera_runs_no_inference_and_closes_its_events() -> None:
    cfg = parse_config(
        {
            "mode": "alerts",
            "cameras": [
                {
                    "id": "pets",
                    "source": "x",
                    "location": {"lat": 0, "lon": 0},
                    "fps": 5,
                    "zones": [
                        {"id": "walk", "polygon": CROSSROADS, "events": {"wrong_way": {"direction": [1, 0]}}}
                    ],
                }
            ],
        }
    )
    running = {"on": True}
    events: list[Event] = []
    counts: list[Counts] = []
    analyser = CameraAnalyser(
        cfg.cameras[0],
        cfg,
        create_detector(cfg.detector, None),
        config_hash=config_hash(cfg),
        on_event=events.append,
        on_counts=counts.append,
        inference_on=lambda: running["on"],
    )
    runs_at_stop = 0
    for frame in FileSource("pets", str(VIDEO / "vtest.avi"), fps=5).frames():
        if frame.pts >= 6.0 and running["on"]:
            running["on"] = False
            runs_at_stop = analyser.stats.detector_runs
        analyser.process(frame)
        if frame.pts > 12:
            break
    analyser.finish()
    assert runs_at_stop > 20 and analyser.stats.detector_runs == runs_at_stop, "no inference after the stop"
    opened = {e.id for e in events if e.ongoing}
    assert opened, "people walked the wrong way before the stop"
    assert all(e.start < 6.0 for e in events if e.ongoing), "nothing opens after the stop"
    closed = {e.id for e in events if not e.ongoing}
    assert opened == closed, "every open event is closed"
