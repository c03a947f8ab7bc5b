"""Who may see video, through the API: every snapshot, clip and recording asks for a valid
habilitation covering the camera and a training record (AC-01, AC-05, HO-06), refuses in one line
and records the refusal; and the login asks every account for a second factor (AC-04)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import pyotp
import pytest

from lanterne.accountability.accounts import create_account, enrol_second_factor, has_second_factor
from lanterne.accountability.habilitation import habilitate, habilitations, revoke, train
from lanterne.audit import Action
from tests.support.console import (
    NOW,
    PASSWORD,
    Clock,
    Console,
    add_event,
    cleared_account,
    login_json,
    open_console,
    site_config,
)

DAY = timedelta(days=1)


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path, clock: Clock, cheap_hashes: None) -> Iterator[Console]:
    """The console's site with one alert on `quai-nord` that has a snapshot on disk."""
    for console in open_console(site_config(sqlite_url, tmp_path, max_failed_logins=4), clock):
        add_event(console.store, "e1", "quai-nord")
        evidence = Path(console.client.app.state.cfg.store.evidence_dir)  # type: ignore[attr-defined]
        (evidence / "quai-nord").mkdir(parents=True, exist_ok=True)
        ok, jpeg = cv2.imencode(".jpg", np.full((90, 160, 3), 80, np.uint8))
        assert ok
        (evidence / "quai-nord" / "e1.jpg").write_bytes(jpeg.tobytes())
        console.store.add_evidence("e1", "snapshot", "quai-nord/e1.jpg", "0" * 64, len(jpeg))
        yield console


class Newcomer:
    """An operator with a password and a second factor, and no habilitation or training yet."""

    def __init__(self, site: Console, login: str = "nouveau") -> None:
        self.site, self.login = site, login
        self.id = create_account(
            site.store.engine, site.audit, login, "operator", ["*"], PASSWORD, "u-admin", now=NOW
        ).id
        self.secret = enrol_second_factor(site.store.engine, site.audit, login, "u-admin", now=NOW).secret

    def log_in(self) -> httpx.Response:
        """A login with a fresh code: the clock moves on a TOTP step, as a code works once."""
        self.site.clock.now += timedelta(seconds=30)
        code = pyotp.TOTP(self.secret).at(self.site.clock.now)
        return self.site.client.post(
            "/api/login", json={"login": self.login, "password": PASSWORD, "code": code}
        )


def denials(site: Console, user_id: str) -> list[object]:
    return [e for e in site.audit_entries(Action.ACCESS_DENIED) if e.user_id == user_id]


def test_records_let_the_fixture_accounts_see_the_snapshot(site: Console) -> None:
    site.as_user("oper")
    r = site.client.get("/api/alerts/e1/snapshot")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert [e.object_id for e in site.audit_entries(Action.VIEW_SNAPSHOT)] == ["e1"]


def test_without_valid_records_an_operator_is_stopped_at_login(site: Console) -> None:
    """AC-05, HO-06: the console exists to show footage, so a right password and code are not
    enough; each refusal names the record that is missing or lapsed, and is recorded."""
    who = Newcomer(site)
    engine, audit = site.store.engine, site.audit
    expected = []

    def refused(reason: str) -> None:
        r = who.log_in()
        assert r.status_code == 403 and "set-cookie" not in r.headers, r.text
        assert r.json()["detail"] == f"operators log in with valid records: {reason}"
        expected.append(reason)

    refused(
        "no habilitation record: an administrator records the designation with `lanterne users habilitate`"
    )
    habilitate(
        engine,
        audit,
        user=who.id,
        authority="Maire de Lanterne",
        designated_on=NOW - 400 * DAY,
        expires=NOW - DAY,
        cameras=["*"],
        recorded_by="u-admin",
        now=NOW,
    )
    refused("habilitation expired on 2026-05-03; ask the designating authority to renew it")
    habilitate(
        engine,
        audit,
        user=who.id,
        authority="Maire de Lanterne",
        designated_on=NOW - DAY,
        cameras=["parvis"],
        recorded_by="u-admin",
        now=NOW,
    )
    refused("no training record: an administrator records the course with `lanterne users train`")
    train(
        engine,
        audit,
        user=who.id,
        course="RGPD et limites du système",
        completed_on=NOW - 400 * DAY,
        expires=NOW - 2 * DAY,
        recorded_by="u-admin",
        now=NOW,
    )
    refused("training expired on 2026-05-02; the course must be taken again")
    train(
        engine,
        audit,
        user=who.id,
        course="RGPD et limites du système",
        completed_on=NOW - DAY,
        recorded_by="u-admin",
        now=NOW,
    )
    assert who.log_in().status_code == 200
    failures = [e.details for e in site.audit_entries(Action.LOGIN_FAILED) if e.user_id == who.id]  # type: ignore[attr-defined]
    assert [f["why"] for f in failures] == expected
    assert {f["reason"] for f in failures} == {"no_valid_habilitation_or_training"}
    # Logged in with a habilitation for another camera: this one's pictures stay refused.
    r = site.client.get("/api/alerts/e1/snapshot")
    assert (
        r.status_code == 403 and r.json()["detail"] == "camera quai-nord is outside the habilitation's scope"
    )
    habilitate(
        engine,
        audit,
        user=who.id,
        authority="Maire de Lanterne",
        designated_on=NOW - DAY,
        cameras=["quai-nord"],
        recorded_by="u-admin",
        now=NOW,
    )
    assert site.client.get("/api/alerts/e1/snapshot").status_code == 200
    assert [e.details["reason"] for e in denials(site, who.id)] == [  # type: ignore[attr-defined]
        "camera quai-nord is outside the habilitation's scope"
    ]


def test_a_session_whose_habilitation_is_revoked_sees_no_video_at_all(site: Console) -> None:
    site.as_user("oper")
    uid = site.ids["oper"]
    [h] = habilitations(site.store.engine, uid)
    revoke(site.store.engine, site.audit, "habilitation", h.id, revoked_by="u-admin", now=NOW)
    window = {"start": NOW.isoformat(), "end": (NOW + timedelta(minutes=5)).isoformat(), "purpose": "p"}
    for path, params in (
        ("/api/alerts/e1/snapshot", {}),
        ("/api/alerts/e1/clip", {"purpose": "vérifier l'alerte"}),
        ("/api/cameras/quai-nord/recording", window),
        ("/api/cameras/quai-nord/recording/video", window),
    ):
        r = site.client.get(path, params=params)
        assert r.status_code == 403, path
        assert r.json()["detail"].startswith("habilitation revoked on"), r.text
    assert len(denials(site, uid)) == 4
    d = denials(site, uid)[0]
    assert d.object_id == "quai-nord" and d.details["denied"] == "video"  # type: ignore[attr-defined]
    assert d.details["reason"].startswith("habilitation revoked on")  # type: ignore[attr-defined]
    assert site.audit_entries(Action.VIEW_SNAPSHOT) == [] and site.audit_entries(Action.VIEW_CLIP) == []
    # The alert list shows no pixels: it stays open to the operator's role and scope alone.
    assert site.client.get("/api/alerts").status_code == 200


def test_a_revocation_stops_the_next_request_of_a_live_session(site: Console) -> None:
    site.as_user("oper")
    assert site.client.get("/api/alerts/e1/snapshot").status_code == 200
    [h] = habilitations(site.store.engine, site.ids["oper"])
    revoke(site.store.engine, site.audit, "habilitation", h.id, revoked_by="u-admin", now=NOW)
    r = site.client.get("/api/alerts/e1/snapshot")
    assert r.status_code == 403 and r.json()["detail"].startswith("habilitation revoked on 2026-05-04")


def test_the_habilitation_lapses_with_the_clock(site: Console) -> None:
    """AC-05: the fixture's records, dated a month before NOW, last a year; a session open when
    they lapse loses the video at its next request."""
    site.clock.now = NOW + 335 * DAY - timedelta(minutes=1)
    site.as_user("oper")
    assert site.client.get("/api/alerts/e1/snapshot").status_code == 200
    site.clock.now = NOW + 335 * DAY
    r = site.client.get("/api/alerts/e1/snapshot")
    assert r.status_code == 403 and r.json()["detail"].startswith("habilitation expired on 2027-04-04")


# --- the second factor at login ---------------------------------------------------------------


def login_failures(site: Console, user_id: str) -> list[str]:
    return [e.details["reason"] for e in site.audit_entries(Action.LOGIN_FAILED) if e.user_id == user_id]


def test_an_operator_without_a_second_factor_cannot_log_in(site: Console) -> None:
    a = create_account(site.store.engine, site.audit, "sans-code", "operator", ["*"], PASSWORD, "u-admin")
    r = site.client.post("/api/login", json={"login": "sans-code", "password": PASSWORD})
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert r.json()["detail"].endswith("(`lanterne users totp LOGIN`)")
    assert login_failures(site, a.id) == ["no_second_factor"]


def test_login_needs_a_fresh_code(site: Console) -> None:
    uid = site.ids["oper"]
    refused = site.client.post("/api/login", json={"login": "oper", "password": PASSWORD})
    assert refused.status_code == 401 and "6-digit code" in refused.json()["detail"]
    wrong = site.client.post("/api/login", json={"login": "oper", "password": PASSWORD, "code": "000000"})
    assert wrong.status_code == 401 and wrong.json()["detail"].startswith("wrong code")
    body = login_json("oper", at=NOW, account_id=uid)
    assert site.client.post("/api/login", json=body).status_code == 200
    site.client.cookies.clear()
    replay = site.client.post("/api/login", json=body)
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    assert "set-cookie" not in replay.headers
    assert login_failures(site, uid) == ["no_code", "bad_code", "replayed_code"]
    # A wrong password is still only a wrong password: the code is not even looked at.
    bad = site.client.post(
        "/api/login", json={"login": "oper", "password": "wrong password!", "code": "000000"}
    )
    assert bad.json() == {"detail": "wrong login or password"}


def test_a_recovery_code_is_spent_once(site: Console) -> None:
    e = enrol_second_factor(site.store.engine, site.audit, "sup", "u-admin", now=NOW)
    code = e.recovery_codes[0]
    assert (
        site.client.post("/api/login", json={"login": "sup", "password": PASSWORD, "code": code}).status_code
        == 200
    )
    site.client.cookies.clear()
    again = site.client.post("/api/login", json={"login": "sup", "password": PASSWORD, "code": code})
    assert again.status_code == 401 and again.json()["detail"].startswith("wrong code")


def test_wrong_codes_count_towards_the_lockout(site: Console) -> None:
    for _ in range(4):
        site.client.post("/api/login", json={"login": "oper", "password": PASSWORD, "code": "000000"})
    r = site.client.post("/api/login", json=login_json("oper", at=NOW, account_id=site.ids["oper"]))
    assert r.status_code == 429


@pytest.mark.parametrize("role", ["operator", "supervisor", "auditor", "admin", "analyst"])
def test_every_role_logs_in_with_a_second_factor(site: Console, role: str) -> None:
    """AC-04: whatever the role (an auditor reads who saw what, an admin grants access), the
    password alone opens nothing: without an enrolled factor the account is refused with the way
    out, without the code it is asked for it, and only the right code opens the session."""
    engine, audit = site.store.engine, site.audit
    a = create_account(engine, audit, f"new-{role}", role, ["*"], PASSWORD, "u-admin", now=NOW)
    if role in ("operator", "supervisor"):  # their records, so that only the factor is in the way
        habilitate(
            engine, audit, user=a.id, authority="Maire", designated_on=NOW - DAY, cameras=["*"],
            recorded_by="u-admin", now=NOW,
        )  # fmt: skip
        train(engine, audit, user=a.id, course="RGPD", completed_on=NOW - DAY, recorded_by="u-admin", now=NOW)
    bare = {"login": a.login, "password": PASSWORD}
    r = site.client.post("/api/login", json=bare)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert r.json()["detail"].endswith("(`lanterne users totp LOGIN`)")
    secret = enrol_second_factor(engine, audit, a.login, "u-admin", now=NOW).secret
    r = site.client.post("/api/login", json=bare)
    assert r.status_code == 401 and "6-digit code" in r.json()["detail"]
    r = site.client.post("/api/login", json=bare | {"code": pyotp.TOTP(secret).at(NOW)})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == role
    assert login_failures(site, a.id) == ["no_second_factor", "no_code"]


def test_fixture_accounts_hold_their_records(site: Console) -> None:
    """The shared fixture gives operators and supervisors what they need to see video, others no
    video records, and every account a second factor."""
    made = cleared_account(
        site.store.engine, site.audit, "chef-2", "supervisor", ["parvis"], PASSWORD, "t", now=NOW
    )
    [h] = habilitations(site.store.engine, made.id)
    assert h.cameras == ("parvis",) and h.valid_at(NOW)
    assert habilitations(site.store.engine, site.ids["audi"]) == []
    assert has_second_factor(site.store.engine, made.id) and has_second_factor(
        site.store.engine, site.ids["audi"]
    )
