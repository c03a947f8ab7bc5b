"""Who may see video (AC-01, AC-05, HO-06) and the second factor (AC-04), on the store itself:
records, expiry, scope, the one-line refusals, and TOTP codes that work once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from lanterne.accountability import accounts
from lanterne.accountability.accounts import (
    Account,
    AccountError,
    check_second_factor,
    create_account,
    enrol_second_factor,
    has_second_factor,
    recovery_codes_left,
)
from lanterne.accountability.habilitation import (
    DEFAULT_VALIDITY,
    HabilitationError,
    habilitate,
    habilitations,
    may_view_video,
    revoke,
    train,
)
from lanterne.audit import Action, AuditLog
from lanterne.store import Store
from lanterne.store.tables import AuditRecord, RecoveryCodeRecord, SecondFactorRecord

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PASSWORD = "lanterns carry light slowly"


@pytest.fixture
def site(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, AuditLog]]:
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    store = Store.open(db_url)
    yield store, AuditLog(store.engine, clock=lambda: NOW)
    store.close()


def account(site: tuple[Store, AuditLog], login: str = "op-nord", role: str = "operator") -> Account:
    store, audit = site
    return create_account(store.engine, audit, login, role, ["*"], PASSWORD, "u-admin", now=NOW)


def hab(site: tuple[Store, AuditLog], user: str, **kw: object) -> object:
    store, audit = site
    args: dict[str, object] = {
        "user": user,
        "authority": "Maire de Lanterne",
        "designated_on": NOW - 10 * DAY,
        "cameras": ["*"],
        "recorded_by": "u-admin",
        "now": NOW,
    }
    args.update(kw)
    return habilitate(store.engine, audit, **args)  # type: ignore[arg-type]


def course(site: tuple[Store, AuditLog], user: str, **kw: object) -> object:
    store, audit = site
    args: dict[str, object] = {
        "user": user,
        "course": "RGPD et limites du système",
        "completed_on": NOW - 10 * DAY,
        "recorded_by": "u-admin",
        "now": NOW,
    }
    args.update(kw)
    return train(store.engine, audit, **args)  # type: ignore[arg-type]


# --- habilitation and training ----------------------------------------------------------------


def test_a_habilitation_lasts_a_year_by_default_and_is_audited(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    a = account(site)
    h = hab(site, a.id, cameras=["quai-nord", "parvis"])
    assert h.expires_at == NOW - 10 * DAY + DEFAULT_VALIDITY  # type: ignore[attr-defined]
    assert timedelta(days=365) == DEFAULT_VALIDITY
    assert habilitations(store.engine, a.id) == [h]
    [rec] = [e for e in audit.entries() if e.details.get("change") == "habilitate"]
    assert rec.action == Action.USER_CHANGE and rec.user_id == "u-admin" and rec.object_id == a.id
    assert rec.details["cameras"] == ["quai-nord", "parvis"]
    assert "Maire" not in json.dumps(rec.details), "the authority's name is in the register, not the log"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"authority": "  "}, "designating authority"),
        ({"cameras": []}, "every camera"),
        ({"cameras": ["*", "parvis"]}, "every camera"),
        ({"expires": NOW - 10 * DAY}, "expires after its date"),
        ({"expires": NOW + 4 * 365 * DAY}, "within 1096 days"),
        ({"as_user": "u-nobody"}, "no account has id"),
    ],
)
def test_bad_habilitations_are_refused(
    site: tuple[Store, AuditLog], kw: dict[str, object], message: str
) -> None:
    a = account(site)
    kw = dict(kw)  # the parameter table is shared by the sqlite and postgresql runs
    who = str(kw.pop("as_user", a.id))
    with pytest.raises(HabilitationError, match=message):
        hab(site, who, **kw)


def test_a_training_record_needs_a_course(site: tuple[Store, AuditLog]) -> None:
    a = account(site)
    with pytest.raises(HabilitationError, match="names its course"):
        course(site, a.id, course=" ")


@pytest.mark.parametrize(
    ("setup", "camera", "reason"),
    [
        ("nothing", "quai-nord", "no habilitation record"),
        ("expired", "quai-nord", "habilitation expired on 2026-12-04"),
        ("revoked", "quai-nord", "habilitation revoked on 2026-12-05"),
        ("future", "quai-nord", "habilitation starts on 2026-12-10"),
        ("scope", "parvis", "camera parvis is outside the habilitation's scope"),
        ("no-training", "quai-nord", "no training record"),
        ("training-expired", "quai-nord", "training expired on 2026-11-30"),
        ("training-revoked", "quai-nord", "training record revoked on 2026-12-05"),
        ("valid", "quai-nord", None),
        ("valid", None, None),
    ],
)
def test_may_view_video_names_the_reason(
    site: tuple[Store, AuditLog], setup: str, camera: str | None, reason: str | None
) -> None:
    store, audit = site
    a = account(site)
    if setup == "expired":
        hab(site, a.id, designated_on=NOW - 400 * DAY, expires=NOW - DAY)
    elif setup == "revoked":
        h = hab(site, a.id)
        revoke(store.engine, audit, "habilitation", h.id, revoked_by="u-admin", now=NOW - timedelta(hours=1))  # type: ignore[attr-defined]
    elif setup == "future":
        hab(site, a.id, designated_on=NOW + 5 * DAY)
    elif setup != "nothing":
        hab(site, a.id, cameras=["quai-nord"])
    if setup == "training-expired":
        course(site, a.id, completed_on=NOW - 400 * DAY, expires=NOW - 5 * DAY)
    elif setup == "training-revoked":
        t = course(site, a.id)
        revoke(store.engine, audit, "training", t.id, revoked_by="u-admin", now=NOW - timedelta(hours=1))  # type: ignore[attr-defined]
    elif setup not in ("nothing", "no-training"):
        course(site, a.id)
    found = may_view_video(store.engine, a.id, camera, NOW)
    assert found is None if reason is None else found is not None and found.startswith(reason), found
    assert found is None or "\n" not in found, "one line"


def test_expiry_is_checked_at_the_moment_asked(site: tuple[Store, AuditLog]) -> None:
    """The same records let video through today and refuse it the day after they lapse (AC-05)."""
    store, _ = site
    a = account(site)
    hab(site, a.id, designated_on=NOW - DAY, expires=NOW + DAY)
    course(site, a.id)
    assert may_view_video(store.engine, a.id, "quai-nord", NOW) is None
    assert (
        may_view_video(store.engine, a.id, "quai-nord", NOW + DAY)
        == "habilitation expired on 2026-12-06; ask the designating authority to renew it"
    )
    hab(site, a.id, designated_on=NOW + DAY)  # the renewal: a new record
    assert may_view_video(store.engine, a.id, "quai-nord", NOW + DAY) is None


def test_revoking_twice_is_refused_and_each_revocation_audited(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    a = account(site)
    h = hab(site, a.id)
    revoke(store.engine, audit, "habilitation", h.id, revoked_by="u-admin", now=NOW)  # type: ignore[attr-defined]
    with pytest.raises(HabilitationError, match="already revoked"):
        revoke(store.engine, audit, "habilitation", h.id, revoked_by="u-admin", now=NOW)  # type: ignore[attr-defined]
    with pytest.raises(HabilitationError, match="unknown record kind"):
        revoke(store.engine, audit, "badge", 1, revoked_by="u-admin", now=NOW)
    revoked = [e for e in audit.entries() if e.details.get("change") == "revoke_habilitation"]
    assert [(e.object_id, e.details["habilitation"]) for e in revoked] == [(a.id, h.id)]  # type: ignore[attr-defined]


# --- second factor ----------------------------------------------------------------------------


def test_a_code_works_once_within_a_small_window(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    a = account(site)
    assert not has_second_factor(store.engine, a.id)
    assert check_second_factor(store.engine, a.id, "123456", NOW) == "no_second_factor"
    e = enrol_second_factor(store.engine, audit, a.login, "u-admin", now=NOW)
    assert has_second_factor(store.engine, a.id) and e.uri.startswith("otpauth://totp/Lanterne:op-nord?")
    totp = pyotp.TOTP(e.secret)
    step = totp.timecode(NOW)
    assert check_second_factor(store.engine, a.id, totp.generate_otp(step + 2), NOW) == "bad_code", (
        "outside the window"
    )
    assert check_second_factor(store.engine, a.id, totp.generate_otp(step - 1), NOW) is None, (
        "30 s late: accepted"
    )
    assert check_second_factor(store.engine, a.id, totp.generate_otp(step - 1), NOW) == "replayed_code"
    assert check_second_factor(store.engine, a.id, totp.generate_otp(step), NOW) is None
    assert check_second_factor(store.engine, a.id, totp.generate_otp(step), NOW) == "replayed_code"
    # An older code than the last accepted one is a replay as well, even never used itself.
    later = NOW + timedelta(seconds=30)
    assert check_second_factor(store.engine, a.id, totp.generate_otp(step + 1), later) is None
    assert check_second_factor(store.engine, a.id, totp.generate_otp(step), later) == "replayed_code"
    assert check_second_factor(store.engine, a.id, "12345", later) == "bad_code"
    assert check_second_factor(store.engine, a.id, "", later) == "bad_code"


def test_recovery_codes_are_hashed_and_spent_once(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    a = account(site)
    e = enrol_second_factor(store.engine, audit, a.login, "u-admin", now=NOW)
    assert len(e.recovery_codes) == len(set(e.recovery_codes)) == 10
    with store.engine.connect() as conn:
        stored = json.dumps(
            [dict(r) for r in conn.execute(select(RecoveryCodeRecord.__table__)).mappings()], default=str
        )
    assert not any(c.replace("-", "") in stored or c in stored for c in e.recovery_codes)
    code = e.recovery_codes[3]
    assert check_second_factor(store.engine, a.id, code.upper(), NOW) is None, "case and dash do not matter"
    assert check_second_factor(store.engine, a.id, code, NOW) == "bad_code", "spent"
    assert recovery_codes_left(store.engine, a.id) == 9
    # Enrolling again (a lost phone) replaces the secret and every code.
    again = enrol_second_factor(store.engine, audit, a.login, "u-admin", now=NOW)
    assert again.secret != e.secret
    assert check_second_factor(store.engine, a.id, e.recovery_codes[0], NOW) == "bad_code"
    assert recovery_codes_left(store.engine, a.id) == 10


def test_the_secret_is_never_in_the_audit_log(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    a = account(site)
    e = enrol_second_factor(store.engine, audit, a.login, "u-admin", now=NOW)
    with store.engine.connect() as conn:
        rows = json.dumps(
            [dict(r) for r in conn.execute(select(AuditRecord.__table__)).mappings()], default=str
        )
        [kept] = conn.execute(select(SecondFactorRecord.__table__.c.secret)).scalars().all()
    assert kept == e.secret
    assert e.secret not in rows and all(c not in rows for c in e.recovery_codes)
    [rec] = [x for x in audit.entries() if x.details.get("change") == "second_factor"]
    assert rec.object_id == a.id and rec.details == {"change": "second_factor", "recovery_codes": 10}


def test_enrolment_needs_an_active_account(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    with pytest.raises(AccountError, match="no account has that login"):
        enrol_second_factor(store.engine, audit, "nobody", "u-admin", now=NOW)
    a = account(site)
    accounts.disable_account(store.engine, audit, a.login, "u-admin", now=NOW)
    with pytest.raises(AccountError, match="disabled"):
        enrol_second_factor(store.engine, audit, a.login, "u-admin", now=NOW)
