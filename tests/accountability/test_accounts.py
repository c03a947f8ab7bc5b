"""Console accounts (AC-01…AC-04): argon2 hashes, refused inputs, authentication, sessions under a
controlled clock (idle timeout, shift length), the login throttle, what the audit log keeps (never
a password or a login), and `lanterne users` — on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from lanterne.accountability import accounts
from lanterne.accountability.accounts import (
    AccountError,
    LoginThrottle,
    authenticate,
    close_session,
    create_account,
    disable_account,
    find_account,
    list_accounts,
    open_session,
    session_for,
)
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import Config, parse_config
from lanterne.store import Store
from lanterne.store.tables import AccountRecord, AuditRecord, SessionRecord

NOW = datetime(2026, 6, 20, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
LOGIN = "j.martin"
IDLE = timedelta(minutes=15)
SHIFT = timedelta(hours=12)
LOCATION = {"lat": 48.8809, "lon": 2.3553}


def config_dict(db_url: str) -> dict[str, Any]:
    return {
        "site": "Ville d'Exemple — gare",
        "store": {"url": db_url},
        "console": {"max_failed_logins": 3, "idle_minutes": 15, "session_hours": 12},
        "cameras": [
            {"id": "gare-nord", "source": "a.mp4", "location": LOCATION},
            {"id": "parvis", "source": "b.mp4", "location": LOCATION},
        ],
    }


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its real cost takes 0.16 s per hash here; the tests make dozens. The real
    parameters are checked in `test_hash_is_argon2id_at_full_cost`."""
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setattr(accounts, "_DUMMY_HASH", [])


@dataclass
class Site:
    cfg: Config
    store: Store
    audit: AuditLog
    tmp: Path


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    cfg = parse_config(config_dict(db_url), base_dir=tmp_path)
    store = Store.open(db_url)
    yield Site(cfg, store, AuditLog(store.engine, clock=lambda: NOW), tmp_path)
    store.close()


def add(
    s: Site, login: str = LOGIN, role: str = "operator", scope: list[str] | None = None
) -> accounts.Account:
    return create_account(
        s.store.engine, s.audit, login, role, scope or ["gare-nord"], PASSWORD, "u-admin0001"
    )


def audit_rows(s: Site) -> list[Any]:
    with s.store.engine.connect() as conn:
        return list(conn.execute(select(AuditRecord.__table__).order_by(AuditRecord.seq)).mappings())


def stored_hash(s: Site, account_id: str) -> str:
    with s.store.engine.connect() as conn:
        t = AccountRecord.__table__
        return conn.execute(select(t.c.password_hash).where(t.c.id == account_id)).scalar_one()


# --- accounts --------------------------------------------------------------------------------


def test_hash_is_argon2id_at_full_cost(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher())
    account = add(site)
    h = stored_hash(site, account.id)
    assert h.startswith("$argon2id$") and "m=65536,t=3,p=4" in h
    assert PASSWORD not in h
    assert authenticate(site.store.engine, LOGIN, PASSWORD) == account


def test_weaker_hash_is_upgraded_at_next_login(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    account = add(site)
    assert "m=8," in stored_hash(site, account.id)
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    assert authenticate(site.store.engine, LOGIN, PASSWORD) is not None
    assert "m=16,t=2" in stored_hash(site, account.id)


def test_account_shape(site: Site) -> None:
    account = add(site, scope=["parvis", "gare-nord", "parvis"])
    assert account.id.startswith("u-") and len(account.id) == 12
    assert account.scope == ("gare-nord", "parvis")
    assert account.active and account.created_by == "u-admin0001" and account.created_at == NOW
    assert find_account(site.store.engine, LOGIN) == account
    assert [a.login for a in list_accounts(site.store.engine)] == [LOGIN]


@pytest.mark.parametrize(
    ("login", "role", "scope", "password", "message"),
    [
        ("ab", "operator", ["*"], PASSWORD, "3 to 64 characters"),
        ("J.Martin", "operator", ["*"], PASSWORD, "3 to 64 characters"),
        ("jean martin", "operator", ["*"], PASSWORD, "3 to 64 characters"),
        ("jean@ville.fr", "operator", ["*"], PASSWORD, "3 to 64 characters"),
        ("x" * 65, "operator", ["*"], PASSWORD, "3 to 64 characters"),
        ("j.martin", "root", ["*"], PASSWORD, "unknown role 'root'"),
        ("j.martin", "operator", [], PASSWORD, "at least one camera"),
        ("j.martin", "operator", ["*", "parvis"], PASSWORD, "not both"),
        ("j.martin", "operator", ["*"], "elevenchars", "at least 12 characters"),
        ("j.martin", "operator", ["*"], "", "at least 12 characters"),
    ],
)
def test_refused_accounts(
    site: Site, login: str, role: str, scope: list[str], password: str, message: str
) -> None:
    with pytest.raises(AccountError, match=message):
        create_account(site.store.engine, site.audit, login, role, scope, password, "u-admin0001")
    assert list_accounts(site.store.engine) == []
    assert audit_rows(site) == []


def test_login_taken(site: Site) -> None:
    add(site)
    with pytest.raises(AccountError, match="taken"):
        add(site, role="supervisor")


@pytest.mark.parametrize(
    ("login", "password", "ok"),
    [
        (LOGIN, PASSWORD, True),
        (LOGIN, PASSWORD + " ", False),
        (LOGIN, "", False),
        ("J.MARTIN", PASSWORD, False),
        ("nobody", PASSWORD, False),
    ],
)
def test_authenticate(site: Site, login: str, password: str, ok: bool) -> None:
    account = add(site)
    assert authenticate(site.store.engine, login, password) == (account if ok else None)


def test_disabled_account_cannot_log_in_and_loses_its_sessions(site: Site) -> None:
    account = add(site)
    token, _ = open_session(site.store.engine, account, site.cfg.console, NOW)
    disabled = disable_account(site.store.engine, site.audit, LOGIN, "u-admin0001", now=NOW)
    assert disabled.disabled_at == NOW and not disabled.active
    assert authenticate(site.store.engine, LOGIN, PASSWORD) is None
    assert session_for(site.store.engine, token, NOW, IDLE, SHIFT) is None
    with pytest.raises(AccountError, match="already disabled"):
        disable_account(site.store.engine, site.audit, LOGIN, "u-admin0001")
    with pytest.raises(AccountError, match="no account"):
        disable_account(site.store.engine, site.audit, "nobody", "u-admin0001")


# --- sessions --------------------------------------------------------------------------------


def test_session_lives_while_used_and_dies_when_idle(site: Site) -> None:
    account = add(site)
    token, csrf = open_session(site.store.engine, account, site.cfg.console, NOW)
    t = NOW
    for _ in range(4):  # used every 14 minutes: still alive an hour later
        t += timedelta(minutes=14)
        s = session_for(site.store.engine, token, t, IDLE, SHIFT)
        assert s is not None and s.account == account and s.csrf_token == csrf and s.last_seen == t
    assert session_for(site.store.engine, token, t + IDLE, IDLE, SHIFT) is None
    # Gone for good, even if the clock were turned back.
    assert session_for(site.store.engine, token, t, IDLE, SHIFT) is None


def test_session_ends_after_the_shift_whatever_its_use(site: Site) -> None:
    account = add(site)
    token, _ = open_session(site.store.engine, account, site.cfg.console, NOW)
    t = NOW
    while t + timedelta(minutes=10) < NOW + SHIFT:
        t += timedelta(minutes=10)
        assert session_for(site.store.engine, token, t, IDLE, SHIFT) is not None
    assert session_for(site.store.engine, token, NOW + SHIFT, IDLE, SHIFT) is None


def test_session_token_is_stored_hashed_and_closes(site: Site) -> None:
    account = add(site)
    token, csrf = open_session(site.store.engine, account, site.cfg.console, NOW)
    other, _ = open_session(site.store.engine, account, site.cfg.console, NOW)
    assert token != other and len(token) >= 43 and csrf != token
    with site.store.engine.connect() as conn:
        stored = [r.token_sha256 for r in conn.execute(select(SessionRecord.__table__))]
    assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored
    assert session_for(site.store.engine, "forged" + token, NOW, IDLE, SHIFT) is None
    close_session(site.store.engine, token)
    assert session_for(site.store.engine, token, NOW, IDLE, SHIFT) is None
    assert session_for(site.store.engine, other, NOW, IDLE, SHIFT) is not None


# --- throttle --------------------------------------------------------------------------------


def test_throttle_locks_after_max_failures_for_fifteen_minutes() -> None:
    th = LoginThrottle(3)
    keys = ("login:j.martin", "addr:10.0.0.5")
    t = NOW
    assert th.failure(keys, t) is False
    assert th.failure(keys, t + timedelta(minutes=1)) is False
    assert not th.blocked(keys, t + timedelta(minutes=2))
    assert th.failure(keys, t + timedelta(minutes=2)) is True
    assert th.blocked(keys, t + timedelta(minutes=2))
    assert th.blocked(["addr:10.0.0.5"], t + timedelta(minutes=16, seconds=59))  # the address alone too
    assert th.blocked(
        ["login:j.martin", "addr:10.9.9.9"], t + timedelta(minutes=10)
    )  # the login from elsewhere
    assert not th.blocked(keys, t + timedelta(minutes=17))
    assert not th.blocked(["login:other", "addr:10.9.9.9"], t + timedelta(minutes=3))


def test_throttle_forgets_failures_older_than_the_window() -> None:
    th = LoginThrottle(3)
    t = NOW
    for i in range(6):  # one failure every 8 minutes: never three within 15 minutes
        assert th.failure(["login:a"], t + i * timedelta(minutes=8)) is False
    assert not th.blocked(["login:a"], t + timedelta(minutes=41))


def test_success_clears_the_login_but_not_the_address() -> None:
    th = LoginThrottle(2)
    th.failure(["login:a", "addr:x"], NOW)
    th.success("login:a")
    assert th.failure(["login:a", "addr:x"], NOW) is True  # the address reached 2
    assert th.blocked(["addr:x"], NOW)
    assert not th.blocked(["login:a", "addr:y"], NOW)  # the login itself had one failure since
    th2 = LoginThrottle(2)
    th2.failure(["login:a", "addr:x"], NOW)
    th2.success("login:a")
    th2.failure(["login:a"], NOW)
    assert not th2.blocked(["login:a"], NOW)


def test_throttle_memory_is_bounded() -> None:
    th = LoginThrottle(1, max_keys=100)
    for i in range(1000):
        th.failure([f"addr:{i}"], NOW)
    assert len(th._keys) == 100
    assert th.blocked(["addr:999"], NOW) and not th.blocked(["addr:0"], NOW)


# --- audit -----------------------------------------------------------------------------------


def test_account_changes_are_audited_without_login_or_password(site: Site) -> None:
    account = add(site, scope=["parvis"])
    disable_account(site.store.engine, site.audit, LOGIN, "u-admin0001", now=NOW)
    rows = audit_rows(site)
    assert [(r["user_id"], r["action"], r["object_type"], r["object_id"]) for r in rows] == [
        ("u-admin0001", Action.USER_CHANGE, "account", account.id),
        ("u-admin0001", Action.USER_CHANGE, "account", account.id),
    ]
    assert json.loads(rows[0]["details"]) == {"change": "create", "role": "operator", "scope": ["parvis"]}
    assert json.loads(rows[1]["details"]) == {"change": "disable"}
    for r in rows:
        text = json.dumps({k: str(v) for k, v in r.items()})
        assert LOGIN not in text and PASSWORD not in text


# --- CLI -------------------------------------------------------------------------------------


def write_config(s: Site) -> Path:
    path = s.tmp / "lanterne.yaml"
    path.write_text(yaml.safe_dump(config_dict(s.cfg.store.url)), encoding="utf-8")
    return path


def test_cli_add_list_disable(site: Site) -> None:
    cfg = write_config(site)
    runner = CliRunner()
    add_args = ["users", "add", LOGIN, "--role", "supervisor", "--scope", "gare-nord,parvis"]
    result = runner.invoke(
        app, [*add_args, "--config", str(cfg), "--user", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert f"`lanterne users totp {LOGIN}` enrols its second factor" in result.output
    account = find_account(site.store.engine, LOGIN)
    assert account is not None and account.role == "supervisor" and account.scope == ("gare-nord", "parvis")
    assert account.created_by == "admin"
    assert authenticate(site.store.engine, LOGIN, PASSWORD) == account

    listed = runner.invoke(app, ["users", "list", "--config", str(cfg)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and account.id in listed.output and LOGIN in listed.output

    off = runner.invoke(app, ["users", "disable", LOGIN, "--config", str(cfg), "--user", "admin"])
    assert off.exit_code == 0, off.output
    assert authenticate(site.store.engine, LOGIN, PASSWORD) is None


@pytest.mark.parametrize(
    ("scope", "password", "message"),
    [
        ("gare-nord,quai-sud", PASSWORD, "unknown camera 'quai-sud'"),
        ("*", "short", "at least 12 characters"),
    ],
)
def test_cli_refusals_are_one_line(site: Site, scope: str, password: str, message: str) -> None:
    cfg = write_config(site)
    result = CliRunner().invoke(
        app,
        [
            "users",
            "add",
            LOGIN,
            "--role",
            "operator",
            "--scope",
            scope,
            "--config",
            str(cfg),
            "--password-stdin",
        ],
        input=password + "\n",
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert password not in result.output
    assert list_accounts(site.store.engine) == []


def test_cli_prompt_asks_twice_and_hides(site: Site) -> None:
    cfg = write_config(site)
    args = ["users", "add", LOGIN, "--role", "auditor", "--scope", "*", "--config", str(cfg)]
    result = CliRunner().invoke(app, args, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert authenticate(site.store.engine, LOGIN, PASSWORD) is not None
