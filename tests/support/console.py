"""The console helpers the API tests share: a three-camera site, accounts of each role, a fixed
clock, and a login that returns the CSRF header. Registered as a pytest plugin by tests/conftest.py,
so its fixtures (`clock`, `console`, `cheap_hashes`) are available everywhere by name."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from lanterne.accountability.accounts import (
    Account,
    create_account,
    enrol_second_factor,
)
from lanterne.accountability.habilitation import habilitate, train
from lanterne.api.app import create_app
from lanterne.api.deps import RECORDING_ROLES
from lanterne.audit import Action, AuditLog
from lanterne.config import Config, parse_config
from lanterne.core.types import Event, EventType
from lanterne.store import Store

if TYPE_CHECKING:
    from sqlalchemy import Engine

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
PASSWORD = "lanterns carry light slowly"
SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
CAMERAS = ("quai-nord", "parvis", "depot")
LOOPBACK = ("127.0.0.1", 50000)
"""The client address a test's `TestClient` presents (its default, `testclient`, is no address):
the console answers only `console.allowed_networks`, this machine by default (AC-04)."""


def site_config(db_url: str, tmp_path: Path, **console: Any) -> Config:
    cameras = [
        {
            "id": cam,
            "name": f"Camera {cam}",
            "source": f"{cam}.mp4",
            "location": {"lat": 48.88 + i * 0.001, "lon": 2.355 + i * 0.001},
            "zones": [{"id": "z1", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
        }
        for i, cam in enumerate(CAMERAS)
    ]
    data = {
        "site": "Ville d'Exemple",
        "store": {"url": db_url},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": cameras,
        "console": console,
    }
    return parse_config(data, base_dir=tmp_path)


def from_loopback(app: ASGIApp) -> ASGIApp:
    """`app` as a client on this machine reaches it: for tools that call an ASGI app with no
    address of their own (schemathesis's transport), which the console's network check refuses."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "client": LOOPBACK}
        await app(scope, receive, send)

    return asgi


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


ACCOUNTS: dict[str, tuple[str, list[str]]] = {
    "sup": ("supervisor", ["*"]),
    "sup-nord": ("supervisor", ["quai-nord"]),
    "oper": ("operator", ["*"]),
    "oper-nord": ("operator", ["quai-nord"]),
    "audi": ("auditor", ["*"]),
}


@dataclass
class _Factor:
    secret: str
    recovery: list[str]
    last_step: int = -1
    spent: list[str] = field(default_factory=list)


_FACTORS: dict[str, _Factor] = {}
"""The second factor of each account (by id) this test process enrolled, as its phone holds it."""
_LATEST: dict[str, str] = {}
"""The id of the account last made under each login: the one a test that names only the login
is using (module-scoped sites pass the id, since a later test may reuse the login)."""


def cleared_account(
    engine: Engine,
    audit: AuditLog,
    login: str,
    role: str,
    scope: Sequence[str],
    password: str,
    created_by: str,
    *,
    now: datetime | None = None,
) -> Account:
    """`create_account` with an enrolled second factor, which every account logs in with and
    `second_factor(login)` then answers; plus what a role that sees video (operator, supervisor,
    export officer) needs before seeing it: a habilitation for its scope and a training record
    (dated a month before `now`, a year long)."""
    account = create_account(engine, audit, login, role, scope, password, created_by, now=now)
    at = now or datetime.now(UTC)
    if role in RECORDING_ROLES:
        since = at - timedelta(days=30)
        habilitate(
            engine,
            audit,
            user=account.id,
            authority="chef de service",
            designated_on=since,
            cameras=scope,
            recorded_by=created_by,
            now=at,
        )
        train(
            engine,
            audit,
            user=account.id,
            course="RGPD et limites du système",
            completed_on=since,
            recorded_by=created_by,
            now=at,
        )
    enrolment = enrol_second_factor(engine, audit, login, created_by, now=at)
    _FACTORS[account.id] = _Factor(enrolment.secret, list(enrolment.recovery_codes))
    _LATEST[login] = account.id
    return account


def second_factor(account_id: str, at: datetime | None = None) -> str:
    """A code the server will accept once for the account at `at` (default now): this step's TOTP,
    or the next step's when this one was already used (the window allows it), then a recovery
    code. Tests log the same person in several times within 30 s; the server refuses a replay."""
    f = _FACTORS[account_id]
    totp = pyotp.TOTP(f.secret)
    step = totp.timecode(at or datetime.now(UTC))
    for s in (step, step + 1):
        if s > f.last_step:
            f.last_step = s
            return totp.generate_otp(s)
    assert f.recovery, "every code of this 30 s step is spent; keep the session instead of logging in again"
    code = f.recovery.pop()
    f.spent.append(code)
    return code


def login_json(
    login: str, password: str = PASSWORD, at: datetime | None = None, *, account_id: str | None = None
) -> dict[str, str]:
    """The body of `POST /api/login`, with a second factor when the account has one."""
    body = {"login": login, "password": password}
    who = account_id or _LATEST.get(login)
    if who in _FACTORS:
        body["code"] = second_factor(who, at)
    return body


class Console:
    """An app with one logged-in user at a time (`as_user` switches the session cookie)."""

    def __init__(
        self, client: TestClient, store: Store, audit: AuditLog, ids: dict[str, str], clock: Clock
    ) -> None:
        self.client, self.store, self.audit, self.ids, self.clock = client, store, audit, ids, clock
        self.csrf: dict[str, str] = {}

    def as_user(self, login: str) -> dict[str, str]:
        r = self.client.post(
            "/api/login", json=login_json(login, at=self.clock.now, account_id=self.ids[login])
        )
        assert r.status_code == 200, r.text
        self.csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
        return self.csrf

    def audit_entries(self, action: Action) -> list[Any]:
        return [e for e in self.audit.entries() if e.action == action]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id's production cost (64 MiB, 3 passes) is the point in service and a minute of CPU
    over these tests; the hashing itself is tested with the accounts."""
    monkeypatch.setattr(
        "lanterne.accountability.accounts.HASHER", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )


def open_console(cfg: Config, clock: Clock) -> Iterator[Console]:
    store = Store.open(cfg.store.url)
    audit = AuditLog(store.engine)
    ids = {
        login: cleared_account(store.engine, audit, login, role, scope, PASSWORD, "test", now=NOW).id
        for login, (role, scope) in ACCOUNTS.items()
    }
    with TestClient(create_app(cfg, clock=clock), client=LOOPBACK) as client:
        yield Console(client, store, audit, ids, clock)
    store.close()


def add_account(console: Console, login: str, role: str, scope: Sequence[str] = ("*",)) -> str:
    """An account of a role the standard site has none of (export officer, admin, analyst), made
    and cleared as `open_console` makes the others; its id is kept in `console.ids`."""
    account = cleared_account(
        console.store.engine, console.audit, login, role, list(scope), PASSWORD, "test", now=NOW
    )
    console.ids[login] = account.id
    return account.id


def add_event(
    store: Store,
    eid: str,
    camera: str,
    type: EventType = EventType.ZONE_INTRUSION,
    at: datetime = NOW,
    *,
    zone: str = "z1",
    confidence: float = 0.8,
    object_class: str | None = "person",
    mode: str = "alerts",
) -> None:
    store.upsert_event(
        Event(eid, type, camera, zone, 0.0, 5.0, confidence, (0.1, 0.1, 0.2, 0.2), False, object_class),
        at,
        mode,
    )


@pytest.fixture
def console(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Console]:
    yield from open_console(site_config(db_url, tmp_path), clock)


TEST_DPIA = "https://ville.example/aipd-test.pdf"
TEST_FRIA = "FRIA-TEST"
TEST_NOTICE = "https://ville.example/transparence"
_KEYS: list[Path] = []


def masks_checked(cfg: Config, audit: AuditLog) -> None:
    """Every camera's privacy masks validated (LB-06), as a site records before it alerts, and the
    rest of what alerting needs (`cleared_to_alert`)."""
    from lanterne.accountability.masks import validate_masks

    for camera in cfg.cameras:
        validate_masks(audit, camera, "tester", "test: the research clip shows no dwelling")
    cleared_to_alert(cfg, audit)


def cleared_to_alert(cfg: Config, audit: AuditLog) -> None:
    """What alerting needs beside validated masks: a FRIA (`TEST_FRIA`) and a DPIA link
    (`TEST_DPIA`) named by every authorisation recorded so far (GV-01, GV-02), and what the
    configuration runs (model, thresholds, zones, event types) approved in signed governance
    records (GV-05). An audit log opened without a signing key is given one: governance records
    are signed with it."""
    import atexit
    import shutil
    import tempfile

    from lanterne.accountability.authorisation import Authorisations
    from lanterne.accountability.fria import Elements, FriaRegister
    from lanterne.accountability.governance import Governance

    if audit.key_path is None:
        if not _KEYS:
            keys = tempfile.mkdtemp(prefix="lanterne-test-key-")
            atexit.register(shutil.rmtree, keys, True)
            _KEYS.append(Path(keys) / "audit.key")
        audit.key_path = _KEYS[0]
    frias = FriaRegister(audit.engine, audit)
    if frias.get(TEST_FRIA) is None:
        what = ("processes", "period", "people affected", "risks", "oversight", "mitigation")
        elements = Elements(*(f"test: {w} of the research clip's deployment" for w in what))
        frias.add(TEST_FRIA, NOW.date(), elements, "tester")
    register = Authorisations(audit.engine, audit)
    for a in register.list():
        register.link_assessments(a.reference, [TEST_DPIA, TEST_FRIA], "tester")
    governance = Governance(audit.engine, audit)
    pending = [p.change for p in governance.pending(cfg)]
    if pending:
        governance.approve_config(
            cfg,
            pending,
            notice_url=TEST_NOTICE,
            summary="test: the test site's rules",
            user_id="tester",
            dpia=TEST_DPIA,
            fria=TEST_FRIA,
        )
