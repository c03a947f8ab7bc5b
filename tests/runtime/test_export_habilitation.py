"""`lanterne export clip` asks a console account what the console asks before an export: the export
officer's role (AC-03), a habilitation covering the camera and a training record (AC-01, HO-06);
refused and recorded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lanterne.accountability.accounts import create_account
from lanterne.accountability.habilitation import HabilitationError, habilitate, train
from lanterne.audit import Action
from lanterne.runtime.site import Site
from tests.runtime.test_exports import T0, clip, export, site  # noqa: F401  (fixtures)

DAY = timedelta(days=1)


def test_a_console_account_needs_its_records_to_export(site: Site, tmp_path: Path) -> None:  # noqa: F811
    engine, audit = site.store.engine, site.audit
    a = create_account(
        engine, audit, "chef.quai", "export_officer", ["*"], "lanterns carry light slowly", "u-admin"
    )
    out = tmp_path / "export.mp4"
    for requester in (a.id, "chef.quai"):  # by id or by login
        with pytest.raises(HabilitationError, match="may not export video of quai: no habilitation record"):
            export(site, out, requester=requester)
    assert not out.exists()
    denied = [e for e in audit.entries() if e.action == Action.ACCESS_DENIED]
    assert [(e.user_id, e.object_id, e.details["denied"]) for e in denied] == [(a.id, "quai", "export")] * 2
    habilitate(
        engine,
        audit,
        user=a.id,
        authority="chef de service",
        designated_on=T0 - DAY,
        cameras=["quai"],
        recorded_by="u-admin",
        now=T0,
    )
    with pytest.raises(HabilitationError, match="no training record"):
        export(site, out, requester=a.id)
    train(engine, audit, user=a.id, course="RGPD", completed_on=T0 - DAY, recorded_by="u-admin", now=T0)
    export(site, out, requester=a.id)
    assert out.exists()
    assert [e.user_id for e in audit.entries() if e.action == Action.EXPORT] == [a.id]


@pytest.mark.parametrize("role", ["supervisor", "operator", "admin", "auditor", "analyst"])
def test_only_an_export_officer_exports_even_with_every_record(
    site: Site,  # noqa: F811
    tmp_path: Path,
    role: str,
) -> None:
    """AC-03: a supervisor habilitated and trained for the camera still does not export; the
    refusal names the role to ask and is recorded."""
    engine, audit = site.store.engine, site.audit
    a = create_account(engine, audit, "chef.quai", role, ["*"], "lanterns carry light slowly", "u-admin")
    habilitate(
        engine,
        audit,
        user=a.id,
        authority="chef de service",
        designated_on=T0 - DAY,
        cameras=["quai"],
        recorded_by="u-admin",
        now=T0,
    )
    train(engine, audit, user=a.id, course="RGPD", completed_on=T0 - DAY, recorded_by="u-admin", now=T0)
    out = tmp_path / "export.mp4"
    with pytest.raises(HabilitationError, match=f"exports are made by an export officer, not a {role}"):
        export(site, out, requester="chef.quai")
    assert not out.exists()
    assert not [e for e in audit.entries() if e.action == Action.EXPORT]
    denied = [e for e in audit.entries() if e.action == Action.ACCESS_DENIED]
    assert [(e.user_id, e.details["denied"]) for e in denied] == [(a.id, "export")]


def test_an_access_request_is_answered_by_an_export_officer_only(site: Site, tmp_path: Path) -> None:  # noqa: F811
    """`lanterne requests answer --user` naming a supervisor is refused as the console refuses it;
    an export officer with the records answers (AC-03, TR-03)."""
    from lanterne.accountability.requests import get, register
    from lanterne.runtime.exports import answer_access_request

    engine, audit = site.store.engine, site.audit
    ids = {}
    for login, role in (("chef.quai", "supervisor"), ("export.quai", "export_officer")):
        ids[role] = create_account(
            engine, audit, login, role, ["*"], "lanterns carry light slowly", "u-admin"
        ).id
        habilitate(
            engine, audit, user=ids[role], authority="chef de service", designated_on=T0 - DAY, cameras=["quai"],
            recorded_by="u-admin", now=T0,
        )  # fmt: skip
        train(
            engine, audit, user=ids[role], course="RGPD", completed_on=T0 - DAY, recorded_by="u-admin", now=T0
        )
    request = register(
        engine, audit, requester="Jeanne Martin", contact="jeanne@example.org", window_start=T0,
        window_end=T0 + timedelta(minutes=10), place="carrefour", description="", received_at=T0 + DAY,
        recorded_by=ids["export_officer"],
    )  # fmt: skip
    out = tmp_path / "answer.mp4"
    keep = (0.4, 0.3, 0.6, 0.9)
    start, end, now = T0 + timedelta(seconds=2), T0 + timedelta(seconds=4), T0 + 2 * DAY
    with pytest.raises(HabilitationError, match="exports are made by an export officer, not a supervisor"):
        answer_access_request(
            site, request.id, "quai", start, end, keep, out, agent=ids["supervisor"], now=now
        )
    assert not out.exists() and get(engine, request.id).state == "open"
    answer_access_request(
        site, request.id, "quai", start, end, keep, out, agent=ids["export_officer"], now=now
    )
    assert get(engine, request.id).state == "answered"
    exported = [e for e in audit.entries() if e.action == Action.EXPORT]
    assert [e.user_id for e in exported] == [ids["export_officer"]]
