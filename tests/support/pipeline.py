"""The whole analysis chain (PyAV source, YOLOX-Nano, ByteTrack, rules) over a real or
semi-synthetic clip, as a camera would run it; shared by the scene tests and
benchmarks/event_accuracy.py, which prints the same figures over more variants."""

from __future__ import annotations

from pathlib import Path

from lanterne.config import config_hash, parse_config
from lanterne.core.types import Event
from lanterne.runtime.demo import CROSSROADS, LAWN
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector
from tests.support.scenes import Scene


def run_pipeline(video: Path, cfg_data: dict) -> tuple[list[Event], list[tuple[int, float]], object]:
    cfg = parse_config(cfg_data)
    cam = cfg.cameras[0]
    analyser = CameraAnalyser(
        cam, cfg, create_detector(cfg.detector, cfg.models_dir), config_hash=config_hash(cfg)
    )
    events: list[Event] = []
    times: list[tuple[int, float]] = []
    masks = [m.polygon for m in cam.privacy_masks]
    for frame in FileSource(cam.id, str(video), fps=cam.fps, masks=masks).frames():
        events += [e for e in analyser.process(frame) if not e.ongoing]
        times.append((frame.index, frame.pts))
    events += analyser.finish()
    return events, times, cfg


PETS = {
    "mode": "alerts",
    "cameras": [
        {
            "id": "pets",
            "source": "vtest.avi",
            "location": {"lat": 51.44, "lon": -0.94},
            "fps": 5,
            "zones": [
                {"id": "lawn", "polygon": LAWN, "events": {"zone_intrusion": {"min_seconds": 2}}},
                {
                    "id": "crossroads",
                    "polygon": CROSSROADS,
                    "events": {
                        "crowd_density": {"max_people": 4, "min_seconds": 2},
                        "wrong_way": {"direction": [1, 0], "classes": ["person"], "min_seconds": 1.5},
                    },
                },
            ],
        }
    ],
}


ABANDONED_SECONDS = 8.0
DOWN_SECONDS = 3.0
BAG_TOLERANCE = 2.0
"""Seconds between the scripted moment the owner is out of reach and the event start: the bag's
detected box is larger than its pixels and the walker's box lags by a frame or two."""
DOWN_TOLERANCE = 1.0


def run(scene: Scene, events: dict) -> list[Event]:
    """The events a one-zone camera over the whole picture raises on a staged scene."""
    data = {
        "mode": "alerts",
        "cameras": [
            {
                "id": "synthetic",
                "source": str(scene.path),
                "location": {"lat": 48.85, "lon": 2.35},
                "fps": 5,
                "zones": [{"id": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "events": events}],
            }
        ],
    }
    return run_pipeline(scene.path, data)[0]


ABANDONED = {"abandoned_object": {"min_seconds": ABANDONED_SECONDS}}
DOWN = {"person_down": {"min_seconds": DOWN_SECONDS}}
