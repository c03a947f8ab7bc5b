"""Blinded recall audits (PM-03): windows drawn at random from a real recording, marks matched to
known alerts (recall 2 of 3 with its interval), the draw not weighted by alerts (a fixed-seed
statistical test), refusals recorded, every step in the audit log, the score published beside
precision once the audit is closed, and the CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.accountability.precision import wilson_interval
from lanterne.accountability.recall import (
    RecallAudit,
    RecallConflict,
    RecallError,
    RecallRefused,
    Reviewer,
    add_mark,
    close_audit,
    draw_windows,
    finish_window,
    get_audit,
    published_recall,
    recorded_runs,
    remove_mark,
    results,
    start_audit,
)
from lanterne.accountability.transparency import public_data, render_html
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import Config, load_config
from lanterne.core.types import EventType
from lanterne.store import Store
from lanterne.store.tables import RecallAuditRecord, RecordingSegmentRecord
from lanterne.video.recording import timeline
from tests.support.console import NOW, PASSWORD, SQUARE, add_event, cleared_account
from tests.support.recording import camera_clip, record

SEED = "recall-test-seed"
ZI, PD, CD = EventType.ZONE_INTRUSION, EventType.PERSON_DOWN, EventType.CROWD_DENSITY
RUNS = (NOW - timedelta(minutes=10), NOW - timedelta(minutes=9), NOW - timedelta(minutes=8))
"""Three recordings of quai-nord, 20 s each, 40 s apart: three windows of 15 s fit, one in each."""
RANGE = (NOW - timedelta(hours=1), NOW)


def config_dict(db_url: str, tmp_path: Path) -> dict[str, Any]:
    cameras = [
        {
            "id": cam,
            "name": f"Camera {cam}",
            "source": f"{cam}.mp4",
            "location": {"lat": 48.88 + i * 0.001, "lon": 2.355 + i * 0.001},
            "record": record_mode,
            "zones": [{"id": "z1", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
        }
        for i, (cam, record_mode) in enumerate(
            (("quai-nord", "continuous"), ("parvis", "continuous"), ("depot", "events"))
        )
    ]
    return {
        "site": "Ville d'Exemple",
        "mode": "alerts",
        "store": {"url": db_url},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "recording": {"dir": str(tmp_path / "recordings"), "key_file": str(tmp_path / "keys.json")},
        "cameras": cameras,
    }


@dataclass
class Site:
    cfg: Config
    config_path: Path
    store: Store
    audit: AuditLog
    ids: dict[str, str]

    def timeline(self, camera: str, start: Any, end: Any) -> Any:
        return timeline(self.store, camera, start, end)

    def reviewer(self, login: str = "sup") -> Reviewer:
        scope = {"sup": ["*"], "sup-nord": ["quai-nord"], "oper": ["*"]}[login]
        role = "operator" if login == "oper" else "supervisor"
        return Reviewer(self.ids[login], role, frozenset(scope))

    def start(self, login: str = "sup", **kw: Any) -> RecallAudit:
        args: dict[str, Any] = {
            "cameras": ["quai-nord"],
            "since": RANGE[0],
            "until": RANGE[1],
            "now": NOW,
            "windows": 3,
            "seconds": 15,
            "seed": SEED,
        }
        return start_audit(
            self.store.engine,
            self.audit,
            self.cfg,
            reviewer=self.reviewer(login),
            **(args | kw),
        )

    def steps(self) -> list[dict[str, Any]]:
        return [e.details for e in self.audit.entries(action=Action.RECALL_AUDIT)]


def open_site(db_url: str, tmp_path: Path, clip: Path) -> Iterator[Site]:
    data = config_dict(db_url, tmp_path)
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = load_config(path)
    store = Store.open(cfg.store.url)
    audit = AuditLog(store.engine)
    ids = {
        login: cleared_account(store.engine, audit, login, role, scope, PASSWORD, "test", now=NOW).id
        for login, role, scope in (
            ("sup", "supervisor", ["*"]),
            ("sup-nord", "supervisor", ["quai-nord"]),
            ("oper", "operator", ["*"]),
        )
    }
    for origin in RUNS:
        record(cfg, store, audit, "quai-nord", origin, clip)
    yield Site(cfg, path, store, audit, ids)
    store.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camera_clip(tmp_path_factory.mktemp("cam"))


@pytest.fixture
def site(db_url: str, tmp_path: Path, clip: Path, cheap_hashes: None) -> Iterator[Site]:
    yield from open_site(db_url, tmp_path, clip)


@pytest.fixture
def sqlite_site(sqlite_url: str, tmp_path: Path, clip: Path, cheap_hashes: None) -> Iterator[Site]:
    yield from open_site(sqlite_url, tmp_path, clip)


def test_recall_of_marks_against_known_alerts_on_a_recorded_clip(site: Site) -> None:
    # The windows the seed draws from this recording, known before the audit starts: the draw is
    # reproducible from its seed and the index, which is what lets the alerts be placed first.
    runs = {"quai-nord": recorded_runs(site.store.engine, "quai-nord", *RANGE)}
    assert len(runs["quai-nord"]) == 3
    # The runs are the timeline's recorded spans, joined where they meet (as the playback page shows).
    joined: list[list[Any]] = []
    for x in site.timeline("quai-nord", *RANGE):
        if x.kind != "recorded":
            continue
        if joined and (x.start - joined[-1][1]).total_seconds() <= 1.0:
            joined[-1][1] = x.end
        else:
            joined.append([x.start, x.end])
    assert [list(r) for r in runs["quai-nord"]] == joined
    w1, w2, w3 = draw_windows(runs, 3, 15, SEED)
    add_event(site.store, "seen-1", "quai-nord", ZI, w1.start + timedelta(seconds=1))  # 1 to 6 s in
    add_event(site.store, "seen-2", "quai-nord", ZI, w2.start)
    add_event(site.store, "unseen", "quai-nord", CD, w3.start + timedelta(seconds=8))
    add_event(site.store, "replay", "quai-nord", ZI, w3.start, mode="evaluation")  # not an alert
    add_event(site.store, "elsewhere", "parvis", ZI, w3.start)  # another camera

    a = site.start()
    assert [(w.camera, w.start, w.end) for w in a.windows] == [
        (w.camera, w.start, w.end) for w in (w1, w2, w3)
    ]
    assert a.seed == SEED and a.state == "open" and a.reviewer == site.ids["sup"]
    for w in a.windows:  # each window lies inside one of the recordings
        assert any(r[0] <= w.start and w.end <= r[1] for r in runs["quai-nord"])

    by = site.ids["sup"]
    engine, audit, cfg = site.store.engine, site.audit, site.cfg
    add_mark(engine, audit, cfg, a.id, 1, by=by, type="zone_intrusion", at=2.0, zone=None, now=NOW)
    add_mark(
        engine, audit, cfg, a.id, 2, by=by, type=ZI, at=9.5, zone="z1", now=NOW
    )  # 4.5 s after the end: tolerated
    add_mark(engine, audit, cfg, a.id, 3, by=by, type=ZI, at=4.0, zone=None, now=NOW)  # the system missed it
    add_mark(
        engine, audit, cfg, a.id, 3, by=by, type=PD, at=6.0, zone=None, now=NOW
    )  # not watched on this camera
    with pytest.raises(RecallConflict, match="still open"):
        results(get_audit(engine, a.id))
    for seq in (1, 2):
        finish_window(engine, audit, cfg, a.id, seq, by=by, nothing=False, now=NOW)
    assert get_audit(engine, a.id).state == "open"
    closed = finish_window(engine, audit, cfg, a.id, 3, by=by, nothing=False, now=NOW)  # the last: scores
    assert closed.state == "closed" and closed.closed_by == by

    r = results(closed)
    assert (r.windows, r.reviewed) == (3, 3)
    (zi, pd) = r.by_type
    assert (zi.key, zi.marks, zi.found, zi.unwatched, zi.windows) == ("zone_intrusion", 3, 2, 0, 3)
    assert zi.recall == pytest.approx(2 / 3) and zi.interval == wilson_interval(2, 3)
    assert (pd.key, pd.marks, pd.found, pd.unwatched, pd.recall) == ("person_down", 0, 0, 1, None)
    assert [(c.key, c.marks, c.found, c.unwatched) for c in r.by_camera] == [("quai-nord", 3, 2, 1)]
    assert (r.overall.marks, r.overall.found) == (3, 2)
    assert [(u.window, u.event_id, u.type) for u in r.unmarked] == [(3, "unseen", "crowd_density")]
    assert {m.at: m.matched_event for w in closed.windows for m in w.marks} == {
        2.0: "seen-1",
        9.5: "seen-2",
        4.0: None,
        6.0: None,
    }

    steps = site.steps()
    assert [s["step"] for s in steps] == [
        "start",
        "mark",
        "mark",
        "mark",
        "mark",
        "window",
        "window",
        "window",
        "close",
    ]
    assert steps[0]["seed"] == SEED and len(steps[0]["windows"]) == 3
    assert steps[-1]["by_itself"] is True
    assert (steps[-1]["marks"], steps[-1]["found"], steps[-1]["unmarked_alerts"]) == (4, 2, 1)
    assert steps[-1]["unblinded"] == [] and r.unblinded == 0  # the reviewer never opened these alerts


def test_a_window_is_finished_with_marks_or_declared_empty_and_then_frozen(site: Site) -> None:
    a = site.start()
    by = site.ids["sup"]
    engine, audit, cfg = site.store.engine, site.audit, site.cfg
    with pytest.raises(RecallError, match="no mark"):
        finish_window(engine, audit, cfg, a.id, 1, by=by, nothing=False, now=NOW)
    with pytest.raises(RecallError, match="not one of the 8 event types"):
        add_mark(engine, audit, cfg, a.id, 1, by=by, type="loitering", at=1.0, zone=None, now=NOW)
    with pytest.raises(RecallError, match="0 to 15 s"):
        add_mark(engine, audit, cfg, a.id, 1, by=by, type=ZI, at=16.0, zone=None, now=NOW)
    with pytest.raises(RecallError, match="has no zone 'z9'"):
        add_mark(engine, audit, cfg, a.id, 1, by=by, type=ZI, at=1.0, zone="z9", now=NOW)
    with pytest.raises(RecallRefused, match="its reviewer only"):
        add_mark(engine, audit, cfg, a.id, 1, by=site.ids["sup-nord"], type=ZI, at=1.0, zone=None, now=NOW)
    m = add_mark(engine, audit, cfg, a.id, 1, by=by, type=ZI, at=1.0, zone=None, now=NOW)
    with pytest.raises(RecallError, match="remove them"):
        finish_window(engine, audit, cfg, a.id, 1, by=by, nothing=True, now=NOW)
    remove_mark(engine, audit, a.id, 1, m.id, by=by)
    finish_window(engine, audit, cfg, a.id, 1, by=by, nothing=True, now=NOW)
    with pytest.raises(RecallConflict, match="already reviewed"):
        add_mark(engine, audit, cfg, a.id, 1, by=by, type=ZI, at=1.0, zone=None, now=NOW)
    assert [s["step"] for s in site.steps()] == ["start", "mark", "unmark", "window"]
    assert site.steps()[-1] == {"step": "window", "window": 1, "marks": 0, "nothing": True}


def test_closing_early_scores_only_the_reviewed_windows(site: Site) -> None:
    a = site.start()
    by = site.ids["sup"]
    engine, audit, cfg = site.store.engine, site.audit, site.cfg
    add_event(site.store, "a1", "quai-nord", ZI, a.windows[0].start)
    add_event(site.store, "a2", "quai-nord", ZI, a.windows[2].start)
    # The reviewer acknowledged window 1's alert in the queue: its marks are no longer blind. An
    # operator deciding window 3's alert does not unblind anything.
    acknowledge(engine, audit, "a1", by, NOW)
    acknowledge(engine, audit, "a2", site.ids["oper"], NOW)
    add_mark(engine, audit, cfg, a.id, 1, by=by, type=ZI, at=1.0, zone=None, now=NOW)
    finish_window(engine, audit, cfg, a.id, 1, by=by, nothing=False, now=NOW)
    add_mark(engine, audit, cfg, a.id, 2, by=by, type=ZI, at=1.0, zone=None, now=NOW)  # window 2 not finished
    closed = close_audit(engine, audit, cfg, a.id, by=by, now=NOW, note="reviewer called away")
    r = results(closed)
    assert (r.windows, r.reviewed, r.overall.marks, r.overall.found) == (3, 1, 1, 1)
    assert r.unblinded == 1 and [w.unblinded for w in closed.windows] == [True, None, None]
    assert site.steps()[-1]["unblinded"] == [1]
    assert closed.note == "reviewer called away"
    assert site.audit.entries(action=Action.RECALL_AUDIT)[-1].purpose == "reviewer called away"
    with pytest.raises(RecallConflict, match="already closed"):
        close_audit(engine, audit, cfg, a.id, by=by, now=NOW)
    with pytest.raises(RecallConflict, match="closed"):
        add_mark(engine, audit, cfg, a.id, 3, by=by, type=ZI, at=1.0, zone=None, now=NOW)


def test_refusals_of_the_person_are_recorded_and_draw_nothing(site: Site) -> None:
    with pytest.raises(RecallRefused, match="parvis are outside the reviewer's scope"):
        site.start("sup-nord", cameras=["quai-nord", "parvis"])
    with pytest.raises(RecallRefused, match="not a operator"):
        site.start("oper")
    refused = site.steps()
    assert [(s["step"], s.get("outside")) for s in refused] == [("refused", ["parvis"]), ("refused", None)]
    assert refused[0]["reviewer"] == site.ids["sup-nord"]
    with site.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RecallAuditRecord)).scalar_one() == 0


def test_requests_the_draw_cannot_serve_are_refused_with_the_fix(site: Site) -> None:
    with pytest.raises(RecallError, match="weighted by alerts"):
        site.start(cameras=["depot"])  # record: events keeps footage only around alerts
    with pytest.raises(RecallError, match="only 3 separate windows of 15 s, not 4"):
        site.start(windows=4)
    with pytest.raises(RecallError, match="only 0 separate windows"):
        site.start(cameras=["parvis"])  # nothing recorded
    with pytest.raises(RecallError, match="still kept"):
        site.start(since=NOW - timedelta(days=60), until=NOW - timedelta(days=40))
    with pytest.raises(RecallError, match="not in the configuration"):
        site.start(cameras=["nowhere"])
    assert site.steps() == []  # mistakes in the request, not refusals of the person


def _segments(store: Store, camera: str, start: Any, hours: int) -> None:
    """An index of a camera recorded continuously for `hours` (one-minute segments): the draw reads
    the index only, so no file is needed."""
    rows = []
    for i in range(hours * 60):
        t = start + timedelta(minutes=i)
        rows.append(
            {
                "camera": camera,
                "seq": i + 1,
                "start_ts": t,
                "end_ts": t + timedelta(seconds=59.96),
                "path": f"{camera}/{i}.mkv",
                "size": 1,
                "sha256": "0" * 64,
                "prev_sha256": "0" * 64,
                "key_id": "k",
                "state": "complete",
            }
        )
    with store.engine.begin() as conn:
        conn.execute(insert(RecordingSegmentRecord), rows)


def test_the_draw_is_not_weighted_by_alerts(sqlite_site: Site) -> None:
    """An alert every 2 minutes in the first 3 hours of a 6-hour recording, none after. A draw
    blind to alerts puts windows on an alert at the rate the footage has them (about 15 %, all
    in the first half) and half of its windows in the quiet half; any weighting by alerts shows
    as far more. 50 audits of 20 windows, fixed seeds, 4 standard deviations."""
    site = sqlite_site
    camera, start, seconds = "parvis", NOW - timedelta(hours=6, minutes=1), 30
    _segments(site.store, camera, start, 6)
    alerts = [start + timedelta(minutes=2 * k + 1) for k in range(90)]  # 5 s each, first 3 h

    def draw(tag: str) -> list[Any]:
        a = site.start(cameras=[camera], since=start, windows=20, seconds=seconds, seed=tag)
        return list(a.windows)

    before = draw("seed-0")
    for i, at in enumerate(alerts):
        add_event(site.store, f"burst-{i}", camera, ZI, at)
    # The same seed draws the same windows whatever the alerts: the draw never reads them.
    assert [(w.start, w.end) for w in draw("seed-0")] == [(w.start, w.end) for w in before]

    windows = [w for k in range(50) for w in draw(f"seed-{k}")]
    n = len(windows)
    assert n == 1000

    def on_alert(s: Any) -> bool:
        e = s + timedelta(seconds=seconds)
        return any(s < at + timedelta(seconds=5) and at < e for at in alerts)

    # The exact rate: every start second of the one run is equally likely.
    (run,) = recorded_runs(site.store.engine, camera, start, NOW)
    positions = [
        run[0] + timedelta(seconds=k) for k in range(int((run[1] - run[0]).total_seconds()) - seconds + 1)
    ]
    p = sum(on_alert(s) for s in positions) / len(positions)
    assert 0.1 < p < 0.2
    hits = sum(on_alert(w.start) for w in windows)
    assert abs(hits - n * p) < 4 * math.sqrt(n * p * (1 - p)), (hits, n * p)
    middle = run[0] + (run[1] - run[0]) / 2
    quiet = sum(w.start >= middle for w in windows)
    assert abs(quiet - n / 2) < 4 * math.sqrt(n / 4), quiet


def test_the_public_page_shows_recall_beside_precision_once_closed(site: Site) -> None:
    engine, audit, cfg = site.store.engine, site.audit, site.cfg
    a = site.start()
    by = site.ids["sup"]
    add_event(site.store, "seen", "quai-nord", ZI, a.windows[0].start)
    add_event(site.store, "other", "quai-nord", ZI, NOW - timedelta(days=2))
    acknowledge(engine, audit, "seen", "op", NOW)
    confirm(engine, audit, "seen", "op", NOW, "monitoring")
    acknowledge(engine, audit, "other", "op", NOW)
    dismiss(engine, audit, "other", "op", NOW, "street_furniture")
    add_mark(engine, audit, cfg, a.id, 1, by=by, type=ZI, at=1.0, zone=None, now=NOW)
    add_mark(engine, audit, cfg, a.id, 2, by=by, type=ZI, at=1.0, zone=None, now=NOW)
    finish_window(engine, audit, cfg, a.id, 1, by=by, nothing=False, now=NOW)
    finish_window(engine, audit, cfg, a.id, 2, by=by, nothing=False, now=NOW)

    data = public_data(cfg, engine, NOW)
    assert (data.recall.audits, data.recall.open_audits, data.recall.rows) == (0, 1, ())
    html = render_html(data)
    assert 'id="recall-empty"' in html and "1 audit under way" in html

    finish_window(engine, audit, cfg, a.id, 3, by=by, nothing=True, now=NOW)
    data = public_data(cfg, engine, NOW + timedelta(minutes=1))
    assert (data.recall.audits, data.recall.windows, data.recall.open_audits) == (1, 3, 0)
    (row,) = data.recall.rows
    assert (row.event_type, row.windows, row.marks, row.found, row.recall) == ("zone_intrusion", 3, 2, 1, 0.5)
    assert row.interval == tuple(round(v, 4) for v in wilson_interval(1, 2))  # type: ignore[arg-type]
    assert (row.precision, row.decided) == (0.5, 2)
    html = render_html(data)
    cells = html.split('class="recall" data-type="zone_intrusion"', 1)[1].split("</tr>", 1)[0]
    assert (
        '<td class="n recall-share">50 %</td>' in cells and '<td class="n precision-share">50 %</td>' in cells
    )
    assert "1 audit, 3 stretches of footage reviewed" in html
    # A year later the audit no longer speaks for the detector as it runs then.
    assert published_recall(engine, NOW + timedelta(days=366)).audits == 0


def test_the_cli_starts_reports_and_closes_an_audit(site: Site, clip: Path) -> None:
    # The command line draws as of the real clock: parvis is recorded in the last minutes.
    now = datetime.now(UTC)
    for k in range(3):
        record(site.cfg, site.store, site.audit, "parvis", now - timedelta(minutes=10 - k), clip)
    runner = CliRunner()
    base = ["--config", str(site.config_path)]
    r = runner.invoke(
        app, ["recall", "start", *base, "--reviewer", "sup-nord", "--camera", "parvis", "--user", "admin"]
    )
    assert r.exit_code == 2 and "outside the reviewer's scope" in r.output
    assert site.steps()[-1]["step"] == "refused"
    r = runner.invoke(
        app,
        ["recall", "start", *base, "--reviewer", "sup", "--camera", "parvis", "--windows", "3",
         "--seconds", "15", "--user", "admin"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "recall audit 1: 3 windows of 15 s" in r.output
    start = site.audit.entries(action=Action.RECALL_AUDIT)[-1]
    assert start.user_id == "admin" and start.details["reviewer"] == site.ids["sup"]
    r = runner.invoke(app, ["recall", "report", "1", *base])
    assert r.exit_code == 2 and "still open" in r.output
    r = runner.invoke(app, ["recall", "status", "1", *base])
    assert r.exit_code == 0 and r.output.count("parvis") == 3
    a = get_audit(site.store.engine, 1)
    add_event(site.store, "cli-seen", "parvis", ZI, a.windows[0].start)
    by = site.ids["sup"]
    add_mark(site.store.engine, site.audit, site.cfg, 1, 1, by=by, type=ZI, at=2.0, zone=None, now=now)
    finish_window(site.store.engine, site.audit, site.cfg, 1, 1, by=by, nothing=False, now=now)
    r = runner.invoke(app, ["recall", "close", "1", *base, "--note", "enough for a test", "--user", "admin"])
    assert r.exit_code == 0, r.output
    assert "1 of 3 windows reviewed, 1 of 1 situations found" in r.output
    r = runner.invoke(app, ["recall", "report", "1", *base, "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["overall"]["recall"] == 1.0 and body["by_type"][0]["key"] == "zone_intrusion"
    assert body["unmarked"] == []
    r = runner.invoke(app, ["recall", "report", *base])
    assert r.exit_code == 0 and "1 audit(s) closed in the last year" in r.output
