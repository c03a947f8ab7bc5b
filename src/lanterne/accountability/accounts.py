"""Local console accounts, their sessions, the login throttle and the second factor (AC-01…AC-04).

An account's `id` (``u-`` + 10 hex digits) is what the audit log records; its `login` is what a
person types and may be their name, so it never enters the audit log. Passwords are hashed with
argon2id; the database keeps only the sha256 of a session token, so a stolen database copy opens
no session.

Every account logs in with a TOTP code as well (AC-04): the secret is stored as the authenticator app needs it and never logged or shown again
after enrolment; the ten recovery codes are stored as salted hashes and spent when used.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.store.tables import (
    ROLES,
    AccountRecord,
    RecoveryCodeRecord,
    SecondFactorRecord,
    SessionRecord,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine, RowMapping

    from lanterne.config.schema import ConsoleSettings

LOGIN_PATTERN = re.compile(r"[a-z0-9._-]{3,64}")
MIN_PASSWORD_LENGTH = 12
ALL_CAMERAS = "*"
EXPORT_ROLES: tuple[str, ...] = ("export_officer",)
"""Who hands recorded footage out of the site, with a recipient and a purpose (AC-03): a job of
its own, so that the people who watch the cameras are not the ones who copy what they saw."""
THROTTLE_WINDOW = timedelta(minutes=15)
"""Failures older than this no longer count towards a lockout."""
LOCKOUT = timedelta(minutes=15)

HASHER = PasswordHasher()
"""argon2id with the library's defaults (RFC 9106 low-memory profile: 3 passes over 64 MiB):
about 0.16 s per login on a 2-core machine, which is nothing for a person and a wall for a
guesser."""

_A = AccountRecord.__table__
_S = SessionRecord.__table__


class AccountError(LanterneError):
    """A refused account operation (bad login, weak password, unknown role or account)."""


@dataclass(frozen=True)
class Account:
    id: str
    login: str
    role: str
    scope: tuple[str, ...]
    created_at: datetime
    created_by: str
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class Session:
    """A live session as `session_for` found it (after refreshing `last_seen`)."""

    account: Account
    csrf_token: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


def _account(row: RowMapping) -> Account:
    return Account(
        id=row["id"],
        login=row["login"],
        role=row["role"],
        scope=tuple(row["scope"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        disabled_at=row["disabled_at"],
    )


def _check_login(login: str) -> str:
    if not LOGIN_PATTERN.fullmatch(login):
        raise AccountError(
            "a login is 3 to 64 characters among a-z, 0-9, '.', '_' and '-'; choose another (e.g. 'j.martin')"
        )
    return login


def _check_scope(scope: Iterable[str]) -> list[str]:
    items = [s.strip() for s in scope if s.strip()]
    if not items:
        raise AccountError("a scope names at least one camera id, or '*' for every camera")
    if ALL_CAMERAS in items and len(items) > 1:
        raise AccountError("a scope is either '*' (every camera) or a list of camera ids, not both")
    return sorted(set(items))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_account(
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
    """Create an active account. Camera ids in `scope` are checked against the configuration by
    the caller (the CLI); here only their shape is. Audited as USER_CHANGE with the new id, its
    role and scope, never the login or the password."""
    _check_login(login)
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    cameras = _check_scope(scope)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters; a few unrelated words make a good one"
        )
    when = now or audit.clock()
    account_id = "u-" + secrets.token_hex(5)
    password_hash = HASHER.hash(password)
    with engine.begin() as conn:
        if conn.execute(select(_A.c.id).where(_A.c.login == login)).first() is not None:
            raise AccountError("that login is taken; choose another")
        try:
            conn.execute(
                insert(_A).values(
                    id=account_id,
                    login=login,
                    role=role,
                    scope=cameras,
                    password_hash=password_hash,
                    created_at=when,
                    created_by=created_by,
                    disabled_at=None,
                )
            )
        except IntegrityError:  # two admins creating the same login at once
            raise AccountError("that login is taken; choose another") from None
    audit.append(
        created_by,
        Action.USER_CHANGE,
        object_type="account",
        object_id=account_id,
        details={"change": "create", "role": role, "scope": cameras},
    )
    return Account(account_id, login, role, tuple(cameras), when, created_by, None)


def find_account(engine: Engine, login: str) -> Account | None:
    with engine.connect() as conn:
        row = conn.execute(select(_A).where(_A.c.login == login)).mappings().first()
    return None if row is None else _account(row)


def get_account(engine: Engine, account_id: str) -> Account | None:
    with engine.connect() as conn:
        row = conn.execute(select(_A).where(_A.c.id == account_id)).mappings().first()
    return None if row is None else _account(row)


def list_accounts(engine: Engine) -> list[Account]:
    with engine.connect() as conn:
        rows = conn.execute(select(_A).order_by(_A.c.login)).mappings().all()
    return [_account(r) for r in rows]


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(HASHER.hash(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


def authenticate(engine: Engine, login: str, password: str) -> Account | None:
    """The active account whose password this is, else None (unknown login, wrong password or
    disabled account alike: the caller cannot tell which, nor can a guesser by timing, since an
    unknown login is checked against a dummy hash)."""
    with engine.connect() as conn:
        row = conn.execute(select(_A).where(_A.c.login == login)).mappings().first()
    stored = row["password_hash"] if row is not None else _dummy_hash()
    try:
        HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled_at"] is not None:
        return None
    if HASHER.check_needs_rehash(stored):
        # Parameters raised since the hash was made: upgrade it now that we hold the password.
        with engine.begin() as conn:
            conn.execute(update(_A).where(_A.c.id == row["id"]).values(password_hash=HASHER.hash(password)))
    return _account(row)


def disable_account(
    engine: Engine, audit: AuditLog, login: str, by: str, *, now: datetime | None = None
) -> Account:
    """Disable an account and end its sessions at once. Accounts are never deleted: the audit log
    refers to their ids."""
    when = now or audit.clock()
    with engine.begin() as conn:
        row = conn.execute(select(_A).where(_A.c.login == login)).mappings().first()
        if row is None:
            raise AccountError("no account has that login; see `lanterne users list`")
        if row["disabled_at"] is not None:
            raise AccountError("that account is already disabled")
        conn.execute(update(_A).where(_A.c.id == row["id"]).values(disabled_at=when))
        conn.execute(delete(_S).where(_S.c.account_id == row["id"]))
    audit.append(
        by, Action.USER_CHANGE, object_type="account", object_id=row["id"], details={"change": "disable"}
    )
    return _account({**row, "disabled_at": when})


# --- sessions ------------------------------------------------------------------------------


def open_session(
    engine: Engine, account: Account, console: ConsoleSettings, now: datetime
) -> tuple[str, str]:
    """Start a session: `(token, csrf_token)`. The token goes in the cookie and only its sha256
    in the database; the CSRF token is returned to the page, which sends it back on writes."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(_S).values(
                token_sha256=_token_hash(token),
                account_id=account.id,
                csrf_token=csrf,
                created_at=now,
                last_seen=now,
                expires_at=now + timedelta(hours=console.session_hours),
            )
        )
    return token, csrf


TOUCH_EVERY = timedelta(seconds=30)
"""`last_seen` is written at most this often: the console polls every few seconds and a write per
poll would keep SQLite's single writer busy for nothing; the idle timeout is minutes long."""


def session_for(
    engine: Engine, token: str, now: datetime, idle: timedelta, max_age: timedelta
) -> Session | None:
    """The live session of this cookie token, its idle clock refreshed; None when unknown,
    idle longer than `idle`, older than `max_age` (or its stored expiry), or its account is
    disabled. A dead session is deleted on sight."""
    digest = _token_hash(token)
    with engine.begin() as conn:
        srow = conn.execute(select(_S).where(_S.c.token_sha256 == digest)).mappings().first()
        if srow is None:
            return None
        arow = conn.execute(select(_A).where(_A.c.id == srow["account_id"])).mappings().first()
        expired = (
            now - srow["last_seen"] >= idle
            or now - srow["created_at"] >= max_age
            or now >= srow["expires_at"]
            or arow is None
            or arow["disabled_at"] is not None
        )
        if expired:
            conn.execute(delete(_S).where(_S.c.token_sha256 == digest))
            return None
        last_seen = srow["last_seen"]
        if now - last_seen >= TOUCH_EVERY:
            conn.execute(update(_S).where(_S.c.token_sha256 == digest).values(last_seen=now))
            last_seen = now
    assert arow is not None
    return Session(_account(arow), srow["csrf_token"], srow["created_at"], last_seen, srow["expires_at"])


def session_account_id(engine: Engine, token: str) -> str | None:
    """The account id a session token was opened for, whatever the session's age, without
    touching its idle clock: enough to name who a refused request came from, and no more
    (it does not make the request logged in)."""
    with engine.connect() as conn:
        found = conn.execute(select(_S.c.account_id).where(_S.c.token_sha256 == _token_hash(token))).first()
    return None if found is None else str(found.account_id)


def close_session(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(_S).where(_S.c.token_sha256 == _token_hash(token)))


def purge_sessions(engine: Engine, now: datetime) -> int:
    """Delete sessions past their stored expiry (idle ones go when next presented)."""
    with engine.begin() as conn:
        return conn.execute(delete(_S).where(_S.c.expires_at <= now)).rowcount or 0


# --- throttle --------------------------------------------------------------------------------


@dataclass
class _Failures:
    times: deque[datetime] = field(default_factory=deque)
    locked_until: datetime | None = None


class LoginThrottle:
    """Failed logins per key (a login, a client address): after `max_failed` failures within
    15 minutes, every attempt on that key is refused for 15 minutes, right password or not.

    Kept in memory, in a dict bounded to `max_keys` entries (the oldest forgotten first): a
    restart forgets lockouts, and a flood of distinct keys can push a lockout out early. Both are
    acceptable for one server behind a city network; a shared store would be needed for several
    workers. Thread-safe: FastAPI runs login in its thread pool.
    """

    def __init__(self, max_failed: int, *, max_keys: int = 10_000) -> None:
        self.max_failed = max_failed
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def blocked(self, keys: Iterable[str], now: datetime) -> bool:
        with self._lock:
            for key in keys:
                f = self._keys.get(key)
                if f is not None and f.locked_until is not None and now < f.locked_until:
                    return True
        return False

    def failure(self, keys: Iterable[str], now: datetime) -> bool:
        """Count a failure on every key; True when it starts a lockout on any of them."""
        locked = False
        with self._lock:
            for key in keys:
                f = self._keys.pop(key, None) or _Failures()
                self._keys[key] = f  # most recently used last: eviction takes the oldest
                while f.times and now - f.times[0] >= THROTTLE_WINDOW:
                    f.times.popleft()
                f.times.append(now)
                if len(f.times) >= self.max_failed:
                    f.locked_until = now + LOCKOUT
                    f.times.clear()
                    locked = True
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        return locked

    def success(self, key: str) -> None:
        """Forget the failures of a login that just succeeded. Address keys are not cleared: one
        valid account must not reset the count of a guesser sharing its address."""
        with self._lock:
            self._keys.pop(key, None)


# --- second factor (AC-04) -------------------------------------------------------------------

RECOVERY_CODES = 10
TOTP_WINDOW = 1
"""Steps of 30 s accepted either side of now: a phone's clock a little off, a code typed as it
turns. Wider would widen what a shoulder-surfer could reuse."""
ISSUER = "Lanterne"

_F = SecondFactorRecord.__table__
_R = RecoveryCodeRecord.__table__


@dataclass(frozen=True)
class Enrolment:
    """What the person is shown once: the secret (as a provisioning URI for an authenticator app,
    and as text to type) and the recovery codes. Only the secret is kept, and the codes' hashes."""

    secret: str
    uri: str
    recovery_codes: tuple[str, ...]


def has_second_factor(engine: Engine, account_id: str) -> bool:
    """Every console account logs in with a second factor, whatever its role (AC-04): an
    auditor reads who saw what, an admin grants habilitations, an analyst reads incident rows,
    and a stolen password must open none of these. An account without one cannot log in."""
    with engine.connect() as conn:
        return conn.execute(select(_F.c.account_id).where(_F.c.account_id == account_id)).first() is not None


def _recovery_hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _normal_code(code: str) -> str:
    return "".join(ch for ch in code if ch.isalnum()).lower()


def enrol_second_factor(
    engine: Engine, audit: AuditLog, login: str, by: str, *, now: datetime | None = None
) -> Enrolment:
    """Give the account a new TOTP secret and ten new recovery codes, replacing any previous
    ones (a lost phone is handled by enrolling again). Audited as USER_CHANGE without the secret."""
    import pyotp  # here: only enrolment and login need it

    when = now or audit.clock()
    account = find_account(engine, login)
    if account is None:
        raise AccountError("no account has that login; see `lanterne users list`")
    if not account.active:
        raise AccountError("that account is disabled; a disabled account cannot be enrolled")
    secret = pyotp.random_base32()
    codes = tuple(f"{c[:5]}-{c[5:]}" for c in (secrets.token_hex(5) for _ in range(RECOVERY_CODES)))
    with engine.begin() as conn:
        conn.execute(delete(_F).where(_F.c.account_id == account.id))
        conn.execute(delete(_R).where(_R.c.account_id == account.id))
        conn.execute(
            insert(_F).values(account_id=account.id, secret=secret, enrolled_at=when, last_step=None)
        )
        for code in codes:
            salt = secrets.token_hex(8)
            conn.execute(
                insert(_R).values(
                    account_id=account.id,
                    salt=salt,
                    code_sha256=_recovery_hash(salt, _normal_code(code)),
                    used_at=None,
                )
            )
    audit.append(
        by,
        Action.USER_CHANGE,
        object_type="account",
        object_id=account.id,
        details={"change": "second_factor", "recovery_codes": RECOVERY_CODES},
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=ISSUER)
    return Enrolment(secret, uri, codes)


def check_second_factor(engine: Engine, account_id: str, code: str, now: datetime) -> str | None:
    """None when `code` is a TOTP code of now (± `TOTP_WINDOW` steps) newer than the last one
    accepted, or an unspent recovery code (spent now); else why not: `no_second_factor`,
    `replayed_code` or `bad_code`."""
    import pyotp

    with engine.connect() as conn:
        row = conn.execute(select(_F).where(_F.c.account_id == account_id)).mappings().first()
    if row is None:
        return "no_second_factor"
    typed = code.strip().replace(" ", "")
    if typed.isdigit() and len(typed) == 6:
        totp = pyotp.TOTP(row["secret"])
        step = totp.timecode(now)
        matched = next(
            (
                s
                for s in range(step - TOTP_WINDOW, step + TOTP_WINDOW + 1)
                if hmac.compare_digest(totp.generate_otp(s), typed)
            ),
            None,
        )
        if matched is None:
            return "bad_code"
        last = row["last_step"]
        with engine.begin() as conn:
            # Conditional update: two logins racing with the same code cannot both pass.
            done = conn.execute(
                update(_F)
                .where(_F.c.account_id == account_id)
                .where((_F.c.last_step.is_(None)) | (_F.c.last_step < matched))
                .values(last_step=matched)
            ).rowcount
        return None if done else ("replayed_code" if last is not None else "bad_code")
    wanted = _normal_code(typed)
    with engine.begin() as conn:
        for r in conn.execute(
            select(_R).where(_R.c.account_id == account_id, _R.c.used_at.is_(None))
        ).mappings():
            if hmac.compare_digest(_recovery_hash(r["salt"], wanted), r["code_sha256"]):
                done = conn.execute(
                    update(_R).where(_R.c.id == r["id"], _R.c.used_at.is_(None)).values(used_at=now)
                ).rowcount
                return None if done else "bad_code"
    return "bad_code"


def recovery_codes_left(engine: Engine, account_id: str) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(select(_R.c.id).where(_R.c.account_id == account_id, _R.c.used_at.is_(None))).all()
        )
