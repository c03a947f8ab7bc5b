"""`GET /api/cameras` says how each camera keeps up with real time: its lag, the rate it analyses
at, whether it sheds, from the runner's fresh health row; a stale row is flagged and trusted for
nothing. The map page draws the lagging state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lanterne.accountability.cameras import HEALTH_STALE_AFTER, CameraHealth, record_health
from lanterne.api.routes.pages import STATIC
from tests.support.console import NOW, Console

pytestmark = pytest.mark.usefixtures("cheap_hashes")


def row(camera: str, **kw: object) -> CameraHealth:
    fields: dict[str, object] = {
        "camera": camera,
        "state": "running",
        "lag_seconds": 0.2,
        "analysis_fps": 5.0,
        "configured_fps": 5.0,
        "frames_dropped": 0,
        "restarts": 0,
        "last_error": None,
        "updated_at": NOW - timedelta(seconds=3),
    }
    fields.update(kw)
    return CameraHealth(**fields)  # type: ignore[arg-type]


def test_cameras_report_lag_rate_and_shedding(console: Console) -> None:
    record_health(
        console.store.engine,
        [
            row("quai-nord", worker="w-est"),
            row("parvis", state="shedding", lag_seconds=4.2, analysis_fps=2.5, frames_dropped=0),
            row("depot", updated_at=NOW - HEALTH_STALE_AFTER - timedelta(seconds=5)),
        ],
    )
    console.as_user("oper")
    r = console.client.get("/api/cameras")
    assert r.status_code == 200, r.text
    by_id = {c["id"]: c for c in r.json()}

    nord = by_id["quai-nord"]
    assert nord["state"] == "running"
    assert (nord["lag_seconds"], nord["analysis_fps"], nord["shed"]) == (0.2, 5.0, False)
    assert nord["health"]["configured_fps"] == 5.0 and nord["health_stale"] is False
    assert nord["health"]["worker"] == "w-est"  # which machine runs it, in a city

    parvis = by_id["parvis"]
    assert parvis["state"] == "lagging"
    assert (parvis["lag_seconds"], parvis["analysis_fps"], parvis["shed"]) == (4.2, 2.5, True)
    assert parvis["health"]["state"] == "shedding"

    depot = by_id["depot"]
    assert depot["state"] == "offline", "a row the runner stopped rewriting vouches for nothing"
    assert depot["health_stale"] is True and depot["health"] is None
    assert depot["lag_seconds"] is None and depot["analysis_fps"] is None and depot["shed"] is False


def test_the_scope_applies_to_health_too(console: Console) -> None:
    record_health(console.store.engine, [row(c) for c in ("quai-nord", "parvis", "depot")])
    console.as_user("oper-nord")
    assert [c["id"] for c in console.client.get("/api/cameras").json()] == ["quai-nord"]


def test_the_map_draws_a_lagging_camera_apart() -> None:
    script = (STATIC / "map.js").read_text(encoding="utf-8")
    css = (STATIC / "alerts.css").read_text(encoding="utf-8")
    assert "lagging:" in script and "h.lag_seconds" in script and "h.analysis_fps" in script
    assert "state-lagging" in css
