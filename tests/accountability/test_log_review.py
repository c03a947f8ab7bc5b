"""The automatic review of the audit log (LG-06): each rule raises a finding on its positive case
and none on its negative one, over real records written through `AuditLog` on SQLite and
PostgreSQL; LG-06's own test (a user exports 20 clips in 10 minutes: a finding); findings stored
once however often the review runs; the DPO's decisions; the hourly chore; the command."""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import func, select
from typer.testing import CliRunner

from lanterne.accountability.accounts import create_account
from lanterne.accountability.habilitation import habilitate
from lanterne.accountability.log_review import (
    BULK_EXPORT,
    DAILY_VOLUME,
    LOG_ACCESS,
    NO_HABILITATION,
    OUTSIDE_SHIFT,
    PRIVACY_LEFT_OPEN,
    REPEATED_REFUSALS,
    REPLAYED_BY_MANY,
    WIDE_SEARCH,
    Finding,
    FindingConflict,
    FindingNotFound,
    HourlyReview,
    ReviewError,
    decide,
    findings,
    review,
)
from lanterne.accountability.privacy import end_use, grant, start_use
from lanterne.audit import Action, AuditLog
from lanterne.audit.verify import export_extract
from lanterne.cli.main import app
from lanterne.config.schema import ReviewSettings
from lanterne.store import Store
from lanterne.store.tables import ReviewFindingRecord

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
"""10:00 in Paris (summer time): the hour the tests review."""
HOUR = (T0, T0 + timedelta(hours=1))
PASSWORD = "lanterns carry light slowly"
SETTINGS = ReviewSettings()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Site:
    """A store, its audit log on a clock the test moves, and helpers that write real records."""

    def __init__(self, url: str) -> None:
        self.store = Store.open(url)
        self.clock = Clock()
        self.audit = AuditLog(self.store.engine, clock=self.clock)

    def at(self, when: datetime, user: str, action: Action, **fields: Any) -> int:
        self.clock.now = when
        return self.audit.append(user, action, **fields).seq

    def export(self, when: datetime, user: str, camera: str = "quai", minutes: int = 1) -> int:
        start = when - timedelta(days=1)
        return self.at(
            when,
            user,
            Action.EXPORT,
            object_type="recording",
            object_id=f"exp-{when.timestamp()}",
            time_from=start,
            time_to=start + timedelta(minutes=minutes),
            purpose="requisition 2026-114",
            recipient="OPJ Lyon",
            details={"camera": camera},
        )

    def play(self, when: datetime, user: str, camera: str, start: datetime, end: datetime) -> int:
        return self.at(
            when,
            user,
            Action.VIEW_RECORDING,
            object_type="recording",
            object_id=camera,
            time_from=start,
            time_to=end,
            purpose="incident 2026-041",
            details={"recording": {"camera": camera, "from": start.isoformat(), "to": end.isoformat()}},
        )

    def account(self, login: str, role: str = "operator", scope: tuple[str, ...] = ("*",)) -> str:
        self.clock.now = T0 - timedelta(days=60)
        return create_account(self.store.engine, self.audit, login, role, scope, PASSWORD, "admin").id

    def review(self, since: datetime = HOUR[0], until: datetime = HOUR[1], **settings: Any) -> list[Finding]:
        self.clock.now = until
        return review(self.store, self.audit, SETTINGS.model_copy(update=settings), since, until)

    def stored(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ReviewFindingRecord)).scalar_one())


@pytest.fixture
def site(db_url: str, cheap_hashes: None) -> Iterator[Site]:
    s = Site(db_url)
    yield s
    s.store.close()


def by_rule(found: list[Finding], rule: str) -> dict[str | None, Finding]:
    return {f.account: f for f in found if f.rule == rule}


# --- 1. bulk export ---------------------------------------------------------------------------


def test_lg06_a_user_exporting_20_clips_in_10_minutes_raises_a_finding(site: Site) -> None:
    bulk = [site.export(T0 + timedelta(minutes=5, seconds=28 * i), "u-bulk") for i in range(20)]  # 9 min
    for i in range(19):  # one short of the threshold
        site.export(T0 + timedelta(minutes=5, seconds=30 * i), "u-almost")
    for i in range(20):  # as many, spread over the hour
        site.export(T0 + timedelta(minutes=3 * i), "u-steady")
    found = site.review()
    assert set(by_rule(found, BULK_EXPORT)) == {"u-bulk"}
    f = by_rule(found, BULK_EXPORT)["u-bulk"]
    assert f.evidence == tuple(bulk) and f.state == "open" and f.id is not None
    assert (f.window_start, f.window_end) == (
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=5, seconds=532),
    )
    assert f.explanation.startswith("20 exports from 2026-05-04 10:05 to 10:13 CEST")
    [run] = site.audit.entries(action=Action.LOG_REVIEW)
    assert (run.user_id, run.time_from, run.time_to) == ("system", *HOUR)
    assert run.details["step"] == "run" and run.details["records"] == 59
    assert run.details["new"] == len(found) and run.details["rules"][BULK_EXPORT] == 1


# --- 2. unusually many views in a day ---------------------------------------------------------


def test_a_day_far_above_the_accounts_own_habit_is_flagged(site: Site) -> None:
    def views(day: int, user: str, n: int, **details: Any) -> None:
        for i in range(n):
            when = T0 - timedelta(days=day) + timedelta(seconds=40 * i)
            site.at(when, user, Action.VIEW_SNAPSHOT, object_type="alert", object_id=f"a{i}", details=details)

    for day in range(1, 6):  # five active days of history each
        views(day, "u-quiet", 20)
        views(day, "u-busy", 30)
    views(0, "u-quiet", 61)  # over 3 × 20 = 60
    views(0, "u-busy", 61)  # under 3 × 30 = 90
    views(0, "u-new", 51)  # no history: the floor of 50 alone
    views(0, "u-denied", 70, denied="view_snapshot")  # refused, not views
    found = by_rule(site.review(), DAILY_VOLUME)
    assert set(found) == {"u-quiet", "u-new"}
    assert len(found["u-quiet"].evidence) == 61
    assert "over 60: 3 × median 20 of 5 active days" in found["u-quiet"].explanation
    assert "over 50: the floor" in found["u-new"].explanation
    assert found["u-new"].window_start == datetime(2026, 5, 3, 22, tzinfo=UTC)  # local midnight


# --- 3. searches over many cameras ------------------------------------------------------------


def test_a_long_search_over_the_whole_site_or_many_cameras_is_flagged(site: Site) -> None:
    everyone = site.account("ana.all")
    many = site.account("ben.many", scope=tuple(f"cam-{i}" for i in range(12)))
    few = site.account("chloe.few", scope=("cam-1", "cam-2", "cam-3"))

    def search(user: str, hours: float | None, camera: str | None = None, minute: int = 10) -> int:
        span = {} if hours is None else {"time_from": T0 - timedelta(hours=hours), "time_to": T0}
        return site.at(
            T0 + timedelta(minutes=minute),
            user,
            Action.SEARCH,
            object_type="events",
            purpose="statistics for the prefecture",
            details={"page": 1} | ({"camera": camera} if camera else {}),
            **span,
        )

    wide = search(everyone, 48)
    unbounded = search(everyone, None, minute=20)
    search(everyone, 48, camera="cam-1", minute=30)  # one camera
    search(everyone, 2, minute=40)  # the last two hours: a routine glance
    search(few, 48)  # three cameras
    twelve = search(many, 72)
    found = by_rule(site.review(), WIDE_SEARCH)
    assert set(found) == {everyone, many}
    assert found[everyone].evidence == (wide, unbounded)
    assert "over the whole site" in found[everyone].explanation
    assert "no time limit" in found[everyone].explanation
    assert found[many].evidence == (twelve,) and "up to 12 cameras" in found[many].explanation


# --- 4. repeated refusals ---------------------------------------------------------------------


def test_repeated_refusals_of_one_account_or_of_unknown_names_are_flagged(site: Site) -> None:
    for i in range(5):
        site.at(T0 + timedelta(minutes=2 * i), "u-probe", Action.ACCESS_DENIED, details={"denied": "video"})
        site.at(
            T0 + timedelta(minutes=2 * i), "unknown", Action.LOGIN_FAILED, details={"reason": "unknown_login"}
        )
        # Refusals recorded under the action attempted, spread over the hour: not a burst.
        site.at(
            T0 + timedelta(minutes=12 * i),
            "u-slow",
            Action.SEARCH,
            object_type="camera",
            object_id="depot",
            details={"denied": "search_camera", "role": "operator"},
        )
    for i in range(4):
        site.at(T0 + timedelta(minutes=i), "u-four", Action.ACCESS_DENIED, details={"denied": "video"})
    found = by_rule(site.review(), REPEATED_REFUSALS)
    assert set(found) == {"u-probe", "unknown"}
    assert len(found["u-probe"].evidence) == 5
    assert "(access_denied ×5)" in found["u-probe"].explanation
    assert "(login_failed ×5)" in found["unknown"].explanation


# --- 5. privacy protection removed without its end --------------------------------------------


def test_a_removal_of_privacy_protection_left_open_is_flagged_once_its_grace_is_over(site: Site) -> None:
    engine, audit = site.store.engine, site.audit
    site.clock.now = T0 - timedelta(days=1)
    for user in ("u-open", "u-closed", "u-recent"):
        grant(
            engine,
            audit,
            user=user,
            cameras=["quai"],
            until=T0 + timedelta(days=30),
            reason="judicial unit's requisitions",
            granted_by="u-admin",
            now=site.clock.now,
        )

    def use(user: str, when: datetime) -> Any:
        site.clock.now = when
        return start_use(
            engine,
            audit,
            user=user,
            camera="quai",
            start=when - timedelta(hours=1),
            end=when - timedelta(minutes=30),
            reason="requisition",
            reference="PV 2026/114",
            now=when,
        )

    left = use("u-open", T0 - timedelta(minutes=150))  # its 180 min grace ends at 10:30
    done = use("u-closed", T0 - timedelta(minutes=150))
    site.clock.now = T0 - timedelta(minutes=140)
    end_use(audit, done, frames=250)
    use("u-recent", T0 + timedelta(minutes=10))  # its grace ends after the hour reviewed
    found = by_rule(site.review(), PRIVACY_LEFT_OPEN)
    assert set(found) == {"u-open"}
    assert found["u-open"].evidence == (left.record_seq,)
    assert found["u-open"].window_end == T0 + timedelta(minutes=30)
    assert "camera quai" in found["u-open"].explanation


# --- 6. access without a valid habilitation ---------------------------------------------------


def test_footage_reached_without_a_valid_habilitation_is_flagged(site: Site) -> None:
    engine, audit = site.store.engine, site.audit
    lapsed, valid, narrow = site.account("dan.lapsed"), site.account("eve.valid"), site.account("fay.narrow")
    for user, cameras, designated in (
        (lapsed, ["*"], T0 - timedelta(days=400)),
        (valid, ["*"], T0 - timedelta(days=30)),
        (narrow, ["quai"], T0 - timedelta(days=30)),
    ):
        site.clock.now = designated
        habilitate(
            engine,
            audit,
            user=user,
            authority="chef de service",
            designated_on=designated,
            cameras=cameras,
            recorded_by="u-admin",
            now=designated,
        )
    shown = (T0 - timedelta(hours=3), T0 - timedelta(hours=2, minutes=55))
    late = site.play(T0 + timedelta(minutes=5), lapsed, "quai", *shown)
    site.play(T0 + timedelta(minutes=6), valid, "parvis", *shown)
    site.play(T0 + timedelta(minutes=7), narrow, "quai", *shown)
    outside = site.play(T0 + timedelta(minutes=8), narrow, "parvis", *shown)
    site.export(T0 + timedelta(minutes=9), "j.dupont")  # an OS login, not a console account
    found = by_rule(site.review(), NO_HABILITATION)
    assert set(found) == {lapsed, narrow}
    assert found[lapsed].evidence == (late,)
    assert "habilitation expired on 2026-03-30" in found[lapsed].explanation
    assert found[narrow].evidence == (outside,) and "camera parvis outside" in found[narrow].explanation


# --- 7. views outside shift hours -------------------------------------------------------------


def test_views_outside_the_roles_shift_hours_are_flagged(site: Site) -> None:
    day_shift, night_shift = site.account("gus.day"), site.account("hana.night", role="supervisor")
    analyst = site.account("ivo.analyst", role="analyst")
    noon, late = T0 + timedelta(hours=2), T0 + timedelta(hours=13, minutes=30)  # 12:00 and 23:30 local

    def snapshot(user: str, when: datetime) -> int:
        return site.at(when, user, Action.VIEW_SNAPSHOT, object_type="alert", object_id="a1")

    snapshot(day_shift, noon)
    night_view = snapshot(day_shift, late)
    snapshot(night_shift, late)
    day_view = snapshot(night_shift, noon)
    snapshot(analyst, late)  # a role without hours
    hours = {"operator": "06:00-22:00", "supervisor": "22:00-06:00"}
    found = by_rule(site.review(T0, T0 + timedelta(hours=16), shift_hours=hours), OUTSIDE_SHIFT)
    assert set(found) == {day_shift, night_shift}
    assert found[day_shift].evidence == (night_view,) and "06:00-22:00" in found[day_shift].explanation
    assert found[night_shift].evidence == (day_view,)
    assert by_rule(site.review(T0, T0 + timedelta(hours=16)), OUTSIDE_SHIFT) == {}  # no hours: nothing


# --- 8. the same footage replayed by many -----------------------------------------------------


def test_the_same_moment_replayed_by_many_accounts_is_flagged(site: Site) -> None:
    base = T0 - timedelta(days=2)

    def at(minutes: float) -> datetime:
        return base + timedelta(minutes=minutes)

    seqs = [
        site.play(T0 + timedelta(minutes=1), "u-1", "quai", at(0), at(10)),
        site.play(T0 + timedelta(minutes=2), "u-2", "quai", at(5), at(15)),
        site.play(T0 + timedelta(minutes=3), "u-3", "quai", at(8), at(20)),
    ]
    site.clock.now = T0 - timedelta(days=1)  # the fourth account watched the day before
    seqs.insert(0, site.play(T0 - timedelta(days=1), "u-4", "quai", at(9), at(11)))
    for user in ("u-1", "u-2", "u-3"):  # three accounts only
        site.play(T0 + timedelta(minutes=10), user, "parvis", at(0), at(10))
    for i in range(4):  # four accounts, one after the other, never the same moment
        site.play(T0 + timedelta(minutes=20), f"u-{i + 1}", "depot", at(5 * i), at(5 * i + 5))
    for _ in range(4):  # one account four times
        site.play(T0 + timedelta(minutes=30), "u-1", "gare", at(0), at(10))
    found = by_rule(site.review(), REPLAYED_BY_MANY)
    assert list(found) == [None]
    f = found[None]
    assert f.evidence == tuple(sorted(seqs))
    assert "camera quai" in f.explanation and "by 4 accounts (u-1, u-2, u-3, u-4)" in f.explanation
    assert "recorded 2026-05-02 10:09 to 10:10:00 CEST" in f.explanation


# --- 9. access to the audit log itself --------------------------------------------------------


def test_every_extract_of_the_log_and_its_reads_by_others_than_the_dpo_are_flagged(
    site: Site, tmp_path: Path
) -> None:
    dpo, oper = site.account("dora.dpo", role="auditor"), site.account("olga.oper")
    sup = site.account("sam.sup", role="supervisor")
    engine, key = site.store.engine, Ed25519PrivateKey.generate()

    def extract(when: datetime, user: str) -> int:
        site.clock.now = when
        export_extract(
            engine,
            T0 - timedelta(days=1),
            T0,
            tmp_path / f"{user}-{when.minute}.json",
            user,
            key,
            purpose="CNIL control 2026-17",
            recipient="CNIL",
            clock=site.clock,
        )
        return site.audit.entries(action=Action.AUDIT_EXPORT)[-1].seq

    def run_by(user: str, when: datetime) -> int:
        site.clock.now = when
        review(site.store, site.audit, SETTINGS, T0 - timedelta(days=2), T0 - timedelta(days=1), by=user)
        return site.audit.entries(action=Action.LOG_REVIEW)[-1].seq

    def refused(user: str, when: datetime, path: str) -> int:
        denied = {"denied": f"GET {path}", "role": "operator", "path": path}
        return site.at(when, user, Action.ACCESS_DENIED, details=denied)

    extract(T0 - timedelta(minutes=30), dpo)  # before the hour reviewed
    handed_out = extract(T0 + timedelta(minutes=10), dpo)  # the DPO's own extract: flagged too
    run_by(dpo, T0 + timedelta(minutes=12))  # the DPO reading: their job
    site.at(
        T0 + timedelta(minutes=13),
        dpo,
        Action.LOG_REVIEW,
        object_type="review_queue",
        details={"step": "list"},
    )
    by_supervisor = run_by(sup, T0 + timedelta(minutes=15))
    summary = site.at(
        T0 + timedelta(minutes=20),
        "j.dupont",  # an OS login, no console account
        Action.LOG_REVIEW,
        object_type="review_summary",
        object_id="2026-W18",
        details={"step": "summary", "findings": 0},
    )
    queue = refused(oper, T0 + timedelta(minutes=25), "/api/review/findings")
    page = refused(oper, T0 + timedelta(minutes=26), "/console/review")
    refused(oper, T0 + timedelta(minutes=27), "/api/cameras/quai/snapshot")  # not the log
    found = [f for f in site.review() if f.rule == LOG_ACCESS]
    assert sorted((f.account or "", f.evidence) for f in found) == sorted(
        [(dpo, (handed_out,)), (sup, (by_supervisor,)), ("j.dupont", (summary,)), (oper, (queue, page))]
    )
    flagged = by_rule(found, LOG_ACCESS)
    assert (
        "audit log (" in flagged[dpo].explanation
        and f"are in record {handed_out}" in flagged[dpo].explanation
    )
    assert flagged[dpo].window_start == flagged[dpo].window_end == T0 + timedelta(minutes=10)
    assert "(role supervisor): review run ×1" in flagged[sup].explanation
    assert "(not a console account): week's summary written ×1" in flagged["j.dupont"].explanation
    assert "(role operator): refused ×2" in flagged[oper].explanation
    assert flagged[oper].window_start == datetime(2026, 5, 3, 22, tzinfo=UTC)  # the local day

    # Stored once: the hour again adds nothing; the supervisor's next read that day joins theirs.
    stored = site.stored()
    assert [f.id for f in site.review() if f.rule == LOG_ACCESS] == [f.id for f in found]
    assert site.stored() == stored
    again = run_by(sup, T0 + timedelta(hours=1, minutes=5))
    later = by_rule(site.review(T0 + timedelta(hours=1), T0 + timedelta(hours=2)), LOG_ACCESS)
    assert set(later) == {sup} and later[sup].id == flagged[sup].id
    assert later[sup].evidence == (by_supervisor, again) and site.stored() == stored


# --- stored once ------------------------------------------------------------------------------


def test_a_review_run_again_adds_nothing_twice(site: Site) -> None:
    for i in range(20):
        site.export(T0 + timedelta(minutes=5, seconds=20 * i), "u-bulk")
    first = site.review()
    again = site.review()
    assert [f.id for f in first] == [f.id for f in again] and site.stored() == len(first) == 1
    runs = site.audit.entries(action=Action.LOG_REVIEW)
    assert [r.details["new"] for r in runs] == [1, 0]


def test_a_burst_across_two_hourly_reviews_is_one_finding_reopened_by_new_records(site: Site) -> None:
    dpo = site.account("dora.dpo", role="auditor")  # the DPO's decision is no finding
    for i in range(20):  # 10:50 to 10:59:30
        site.export(T0 + timedelta(minutes=50, seconds=30 * i), "u-bulk")
    [f] = site.review(T0, T0 + timedelta(hours=1))
    decide(
        site.store.engine,
        site.audit,
        f.id,
        state="closed",
        note="requisition batch, checked",
        by=dpo,
        now=T0,
    )
    for i in range(10):  # it goes on after 11:00
        site.export(T0 + timedelta(hours=1, seconds=20 * i), "u-bulk")
    [g] = site.review(T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert g.id == f.id and site.stored() == 1
    assert len(g.evidence) == 30 and g.state == "open"  # what the DPO closed was 20 exports
    assert g.note == "requisition batch, checked"
    # A burst cut by the hour, 12 exports before 13:00 and 12 after: one finding with the 24.
    for i in range(24):
        site.export(T0 + timedelta(hours=2, minutes=54, seconds=30 * i), "u-other")
    assert by_rule(site.review(T0 + timedelta(hours=2), T0 + timedelta(hours=3)), BULK_EXPORT) == {}
    found = by_rule(site.review(T0 + timedelta(hours=3), T0 + timedelta(hours=4)), BULK_EXPORT)
    assert len(found["u-other"].evidence) == 24


# --- the DPO's decisions ----------------------------------------------------------------------


def test_the_dpo_acknowledges_then_closes_with_a_note_on_the_record(site: Site) -> None:
    for i in range(5):
        site.at(T0 + timedelta(minutes=i), "u-probe", Action.ACCESS_DENIED, details={"denied": "video"})
    [f] = site.review()
    engine, audit = site.store.engine, site.audit
    assert [x.id for x in findings(engine, state="open")] == [f.id]
    seen = decide(engine, audit, f.id, state="acknowledged", note=None, by="u-dpo", now=T0)
    assert (seen.state, seen.decided_by) == ("acknowledged", "u-dpo")
    with pytest.raises(ReviewError, match="needs a note"):
        decide(engine, audit, f.id, state="closed", note="  ", by="u-dpo", now=T0)
    done = decide(engine, audit, f.id, state="closed", note="a mistyped camera id, told", by="u-dpo", now=T0)
    assert (done.state, done.note) == ("closed", "a mistyped camera id, told")
    assert findings(engine, state="open") == [] and [x.id for x in findings(engine, state="closed")] == [f.id]
    with pytest.raises(FindingConflict, match="is closed"):
        decide(engine, audit, f.id, state="acknowledged", note=None, by="u-dpo", now=T0)
    with pytest.raises(FindingNotFound):
        decide(engine, audit, f.id + 1, state="closed", note="x", by="u-dpo", now=T0)
    steps = [
        (e.object_id, e.details["step"], e.purpose)
        for e in audit.entries(action=Action.LOG_REVIEW)
        if e.object_type == "review_finding"
    ]
    assert steps == [(str(f.id), "acknowledged", None), (str(f.id), "closed", "a mistyped camera id, told")]


# --- when it runs -----------------------------------------------------------------------------


def test_the_hourly_chore_reviews_each_hour_once_and_catches_up_after_a_pause(site: Site) -> None:
    chore = HourlyReview(site.store, site.audit, SETTINGS)
    assert chore(T0 + timedelta(minutes=30)) == []  # started at 10:30: nothing until 11:00
    for i in range(20):
        site.export(T0 + timedelta(minutes=40, seconds=10 * i), "u-bulk")
    site.clock.now = T0 + timedelta(hours=1, minutes=1)
    [f] = chore(site.clock.now)
    assert f.rule == BULK_EXPORT
    assert chore(T0 + timedelta(hours=1, minutes=2)) == []  # the same hour: not again
    later = HourlyReview(site.store, site.audit, SETTINGS)  # a restart, four hours later
    later(T0 + timedelta(hours=5, minutes=10))
    site.clock.now = T0 + timedelta(hours=6)
    later(site.clock.now)
    ranges = [(r.time_from, r.time_to) for r in site.audit.entries(action=Action.LOG_REVIEW)]
    assert ranges == [(T0, T0 + timedelta(hours=1)), (T0 + timedelta(hours=1), T0 + timedelta(hours=6))]


def test_the_command_reviews_now_and_prints_the_findings(
    tmp_path: Path, sqlite_url: str, cheap_hashes: None
) -> None:
    site = Site(sqlite_url)
    for i in range(20):
        site.export(T0 + timedelta(minutes=5, seconds=20 * i), "u-bulk")
    site.store.close()
    data = {
        "store": {"url": sqlite_url},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": [{"id": "quai", "source": "quai.mp4", "location": {"lat": 48.88, "lon": 2.35}}],
    }
    config = tmp_path / "site.yml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    runner = CliRunner()
    args = ["audit", "review", "--config", str(config), "--since", "2026-05-04", "--until", "2026-05-04"]
    r = runner.invoke(app, [*args, "--user", "u-dpo"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "bulk export" in r.output and "u-bulk" in r.output and "1 findings" in r.output
    bad = runner.invoke(
        app, ["audit", "review", "--config", str(config), "--since", "2026-05-05", "--until", "2026-05-03"]
    )
    assert bad.exit_code == 2 and "before its end" in bad.output


def test_the_weeks_summary_is_written_as_pdf_and_html_and_recorded(
    tmp_path: Path, sqlite_url: str, cheap_hashes: None
) -> None:
    site = Site(sqlite_url)
    for i in range(20):
        site.export(T0 + timedelta(minutes=5, seconds=20 * i), "u-bulk")
    site.store.close()
    data = {
        "site": "Ville d'Exemple",
        "store": {"url": sqlite_url},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": [{"id": "quai", "source": "quai.mp4", "location": {"lat": 48.88, "lon": 2.35}}],
    }
    config = tmp_path / "site.yml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    pdf = tmp_path / "w19.pdf"
    args = [
        "audit",
        "review",
        "--config",
        str(config),
        "--week",
        "2026-W19",
        "--pdf",
        str(pdf),
        "--user",
        "u-dpo",
    ]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    page = pdf.with_suffix(".html").read_text(encoding="utf-8")
    assert "week 2026-W19" in page and "u-bulk" in page and "20 exports from 2026-05-04 10:05" in page
    assert "<script" not in page
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "week 2026-W19" in text and "u-bulk" in text and "bulk export" in text
    site = Site(sqlite_url)
    [run, summary] = site.audit.entries(action=Action.LOG_REVIEW)
    assert (run.time_from, run.time_to) == (
        datetime(2026, 5, 3, 22, tzinfo=UTC),
        datetime(2026, 5, 10, 22, tzinfo=UTC),
    )
    assert (summary.user_id, summary.object_id, summary.details["findings"]) == ("u-dpo", "2026-W19", 1)
    assert summary.details["pdf_sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    site.store.close()
    both = CliRunner().invoke(app, [*args[:4], "--week", "2026-W19", "--since", "2026-05-01"])
    assert both.exit_code == 2 and "not both" in both.output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"shift_hours": {"operator": "6h-22h"}}, "is not a shift; write 'HH:MM-HH:MM'"),
        ({"shift_hours": {"operator": "06:00-06:00"}}, "is not a shift"),
        ({"shift_hours": {"pilot": "06:00-22:00"}}, "'operator', 'supervisor'"),
        ({"time_zone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"bulk_exports": 1}, "greater than or equal to 2"),
    ],
)
def test_review_settings_refuse_mistakes_naming_the_fix(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ReviewSettings(**settings)
