"""`lanterne export clip` asks a console account what the console asks before showing video: a
habilitation covering the camera and a training record (AC-01, HO-06); refused and recorded."""

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
        engine, audit, "chef.quai", "supervisor", ["*"], "lanterns carry light slowly", "u-admin"
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
