"""Permissions to remove privacy protection: granted to one person, until a date, for named
cameras; each use needs a reason and a reference and is on the record before anything is shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lanterne.accountability.privacy import PrivacyError, grant, permissions, revoke, start_use
from lanterne.audit import Action, AuditLog
from lanterne.store import Store

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def site(db_url: str) -> tuple[Store, AuditLog]:
    store = Store.open(db_url)
    yield store, AuditLog(store.engine)
    store.close()


def use(
    store: Store, audit: AuditLog, *, user: str = "opj", camera: str = "quai", now: datetime = NOW, **kw: str
) -> object:
    args = {"reason": "réquisition du parquet", "reference": "PV 2026/123"} | kw
    return start_use(
        store.engine,
        audit,
        user=user,
        camera=camera,
        start=NOW - timedelta(hours=1),
        end=NOW - timedelta(minutes=50),
        now=now,
        **args,
    )


def test_a_granted_permission_is_used_with_a_reason_and_a_reference(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    p = grant(
        store.engine,
        audit,
        user="opj",
        cameras=["quai"],
        until=NOW + timedelta(days=30),
        reason="unité judiciaire",
        granted_by="admin",
        now=NOW,
    )
    [granted] = audit.entries(action=Action.PRIVACY_PERMISSION)
    assert granted.user_id == "admin" and granted.object_id == "opj" and granted.details["permission"] == p.id
    u = use(store, audit)
    [removed] = audit.entries(action=Action.PRIVACY_REMOVED)
    assert removed.user_id == "opj" and removed.purpose == "réquisition du parquet"
    assert removed.details == {"reference": "PV 2026/123", "permission": p.id}
    assert u.record_seq == removed.seq  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"user": "oper"}, "user oper holds no permission to remove privacy protection on camera quai"),
        ({"camera": "parvis"}, "holds no permission"),
        ({"now": NOW + timedelta(days=31)}, "holds no permission"),
        ({"reference": " "}, "needs a reason and a reference"),
    ],
)
def test_without_a_covering_permission_nothing_is_revealed(
    site: tuple[Store, AuditLog], kw: dict, message: str
) -> None:
    store, audit = site
    grant(
        store.engine,
        audit,
        user="opj",
        cameras=["quai"],
        until=NOW + timedelta(days=30),
        reason="unité judiciaire",
        granted_by="admin",
        now=NOW,
    )
    with pytest.raises(PrivacyError, match=message):
        use(store, audit, **kw)
    assert not audit.entries(action=Action.PRIVACY_REMOVED)


def test_a_refusal_for_want_of_permission_is_recorded(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    with pytest.raises(PrivacyError):
        use(store, audit)
    [denied] = audit.entries(action=Action.ACCESS_DENIED)
    assert denied.user_id == "opj" and denied.details["refused"] == "remove privacy protection"


def test_revoking_ends_it_at_once_and_only_once(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    p = grant(
        store.engine,
        audit,
        user="opj",
        cameras=["*"],
        until=NOW + timedelta(days=30),
        reason="unité judiciaire",
        granted_by="admin",
        now=NOW - timedelta(days=1),
    )
    use(store, audit, camera="any-camera")
    revoke(store.engine, audit, p.id, revoked_by="admin", now=NOW)
    with pytest.raises(PrivacyError, match="holds no permission"):
        use(store, audit, now=NOW + timedelta(seconds=1))
    with pytest.raises(PrivacyError, match="already revoked"):
        revoke(store.engine, audit, p.id, revoked_by="admin", now=NOW)
    [listed] = permissions(store.engine)
    assert listed.revoked_at == NOW and listed.cameras == ("*",)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"reason": ""}, "needs the reason"),
        ({"cameras": []}, "at least one camera"),
        ({"until": NOW + timedelta(days=400)}, "within 366 days"),
        ({"until": NOW}, "ends after now"),
    ],
)
def test_a_permission_is_bounded(site: tuple[Store, AuditLog], kw: dict, message: str) -> None:
    store, audit = site
    args = {
        "user": "opj",
        "cameras": ["quai"],
        "until": NOW + timedelta(days=30),
        "reason": "x",
        "granted_by": "admin",
        "now": NOW,
    } | kw
    with pytest.raises(PrivacyError, match=message):
        grant(store.engine, audit, **args)
    assert not permissions(store.engine)
