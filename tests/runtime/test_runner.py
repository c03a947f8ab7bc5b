"""`lanterne run`: cameras run side by side into the store; a dead stream or a crashing worker
does not stop the others, and a crashed worker is restarted on its own."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.transparency import export
from lanterne.audit import AuditLog
from lanterne.config import parse_config
from lanterne.core.errors import ConfigError
from lanterne.core.types import EventType
from lanterne.runtime.demo import CROSSROADS
from lanterne.runtime.runner import Runner
from lanterne.store import Store
from lanterne.store.tables import AuditRecord
from lanterne.video import analyser as camera_mod
from lanterne.video.recording import KeyRing, segments, verify
from tests.support.console import masks_checked
from tests.support.video import VIDEO, excerpt


def verify_log_entries(audit: AuditLog) -> list[AuditRecord]:
    with audit.engine.connect() as conn:
        return list(conn.execute(select(AuditRecord)).all())


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("clip") / "vtest-8s.mp4", 8)


def config(tmp: Path, clip: Path) -> dict:
    zone = {
        "id": "crossroads",
        "polygon": CROSSROADS,
        "events": {"wrong_way": {"direction": [1, 0], "min_seconds": 1}},
    }
    cam = {"source": str(clip), "location": {"lat": 51.44, "lon": -0.94}, "fps": 5, "zones": [zone]}
    return {
        "mode": "alerts",
        "store": {"url": f"sqlite:///{tmp / 'run.db'}", "evidence_dir": str(tmp / "evidence")},
        "recording": {"dir": str(tmp / "recordings"), "key_file": str(tmp / "recording-keys.json")},
        "cameras": [
            {**cam, "id": "good"},
            {**cam, "id": "crashy"},
            {**cam, "id": "dead", "source": "rtsp://127.0.0.1:9/stream"},
            {**cam, "id": "unauthorised"},
        ],
    }


def test_one_camera_failing_does_not_stop_the_others(
    tmp_path: Path, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashes = {"left": 1}
    real_process = camera_mod.CameraAnalyser.process

    def flaky(self: camera_mod.CameraAnalyser, frame: object) -> list:
        if self.camera.id == "crashy" and crashes["left"] > 0:
            crashes["left"] -= 1
            raise RuntimeError("simulated worker bug")
        return real_process(self, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(camera_mod.CameraAnalyser, "process", flaky)
    cfg = parse_config(config(tmp_path, clip))
    audit = AuditLog.from_config(cfg)
    now = datetime.now(UTC)
    Authorisations(audit.engine, audit, cfg.legal_end_date).add(
        "AP-TEST-1",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture (test)",
        valid_from=now - timedelta(hours=1),
        valid_until=now + timedelta(days=1),
        cameras=["good", "crashy", "dead"],
        event_types=[EventType.WRONG_WAY],
        user_id="tester",
    )
    with pytest.raises(ConfigError, match="publish the public notice first"):
        Runner(cfg).start()
    export(cfg, audit.engine, tmp_path / "public", "tester", now)
    masks_checked(cfg, audit)
    runner = Runner(cfg, restart_backoff=0.2)
    runner.start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            runner.watchdog_once()
            states = {k: w.state for k, w in runner.workers.items()}
            if all(states[c].status == "finished" for c in ("good", "crashy", "unauthorised")):
                break
            time.sleep(0.2)
        states = {k: w.state for k, w in runner.workers.items()}
        assert states["good"].status == "finished" and states["good"].restarts == 0
        assert states["crashy"].status == "finished" and states["crashy"].restarts == 1
        assert states["dead"].status == "running", "a dead stream keeps reconnecting in its own worker"
        assert runner.workers["dead"].alive()
    finally:
        runner.stop()
    assert not any(w.alive() for w in runner.workers.values()), "stop() ends every worker"
    store = Store.open(cfg.store.url)
    good = store.events(camera="good")
    assert good and all(e.mode == "alerts" for e in good)
    assert store.events(camera="crashy"), "the restarted worker analysed its camera"
    assert not store.events(camera="dead")
    assert not store.events(camera="unauthorised"), "no authorisation, no alert"
    assert store.counts(camera="unauthorised"), "but the camera still counts (statistics-only)"
    actions = [r.action for r in verify_log_entries(audit)]
    assert "alerting_on" in actions and "config_change" in actions
    snaps = list((tmp_path / "evidence" / "good").rglob("*-snapshot.jpg"))
    assert len(snaps) == len(good)
    # Recorded cameras: the clip is the recording itself, rendered when viewed; none is written.
    assert not list((tmp_path / "evidence").rglob("*-clip.mp4"))
    keys = KeyRing.load(cfg.recording.key_file)
    day = timedelta(days=1)
    recorded = segments(store, "good", now - day, now + day)
    assert recorded and all(s.state == "complete" for s in recorded)
    assert verify(store, cfg.recording.dir, keys) == []
    assert not segments(store, "dead", now - day, now + day)


def test_a_site_stop_halts_inference_on_every_camera(tmp_path: Path, clip: Path) -> None:
    from lanterne.accountability.stops import Stops

    cfg = parse_config({**config(tmp_path, clip), "cameras": config(tmp_path, clip)["cameras"][:1]})
    audit = AuditLog.from_config(cfg)
    now = datetime.now(UTC)
    Authorisations(audit.engine, audit, cfg.legal_end_date).add(
        "AP-TEST-2",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture (test)",
        valid_from=now - timedelta(hours=1),
        valid_until=now + timedelta(days=1),
        cameras=["good"],
        event_types=[EventType.WRONG_WAY],
        user_id="tester",
    )
    export(cfg, audit.engine, tmp_path / "public", "tester", now)
    masks_checked(cfg, audit)
    Stops(audit.engine, audit).stop_site("sup1", "drill")
    runner = Runner(cfg)
    runner.start()
    try:
        deadline = time.monotonic() + 120
        while runner.workers["good"].state.status != "finished" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.workers["good"].state.frames > 30, "frames still flow: recording is untouched"
    finally:
        runner.stop()
    store = Store.open(cfg.store.url)
    assert not store.events(camera="good") and not store.counts(camera="good"), "no inference at all"


class OtherWeights:
    """The real detector under another model file's sha256: what a swapped model looks like."""

    def __init__(self, inner: object, sha256: str) -> None:
        self.inner, self.model_sha256 = inner, sha256

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_model_change_is_recorded_once_with_the_previous_models(tmp_path: Path) -> None:
    """GV-05: the first run records its models, an unchanged restart records nothing, a run on
    other weights records the change beside the previous set."""
    from lanterne.core.assets import MODELS
    from lanterne.video.detectors import create_detector

    cfg = parse_config(
        {
            "mode": "statistics",
            "store": {"url": f"sqlite:///{tmp_path / 'run.db'}", "evidence_dir": str(tmp_path / "evidence")},
            "cameras": [
                {
                    "id": "dead",
                    "source": "rtsp://127.0.0.1:9/stream",
                    "location": {"lat": 51.44, "lon": -0.94},
                }
            ],
        }
    )
    real = create_detector(cfg.detector, cfg.models_dir)

    def run(detector: object) -> list:
        runner = Runner(cfg, detector=detector)  # type: ignore[arg-type]
        runner.start()
        runner.stop()
        return AuditLog.from_config(cfg).entries(action="model_change")

    first = run(real)
    assert [e.details for e in first] == [
        {
            "models": {"detector": {"name": "yolox_nano", "sha256": MODELS["yolox_nano"].sha256}},
            "previous": None,
        }
    ]
    assert len(run(real)) == 1, "an unchanged restart is not a change"
    changed = run(OtherWeights(real, "0" * 64))
    assert len(changed) == 2
    assert changed[-1].details == {
        "models": {"detector": {"name": "yolox_nano", "sha256": "0" * 64}},
        "previous": first[0].details["models"],
    }
