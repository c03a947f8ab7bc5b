"""Configuration snapshots (DC-03): every configuration hash an alert or a notice carries resolves
to the configuration it was computed over.

An event names its configuration by `config_hash` (`lanterne.config.config_hash`: the sha256 of
the canonical JSON of the effective configuration). A hash alone proves nothing a year later if
the file was edited meanwhile and nobody kept it under version control, so each process that
starts (`lanterne run`, `lanterne worker`) stores that canonical JSON once per hash, and
`lanterne config snapshot HASH` prints it back.

The configuration holds no secret by design (passwords and keys are files it names), but a URL
can still carry one (`rtsp://user:password@camera`, `postgresql://user:password@host/db`): its
password is replaced by `***` before storing, and the value's path is listed in `redacted`. The
stored text then hashes to the recorded hash only when nothing was redacted, which
`Snapshot.verifies` says.

>>> text, redacted = canonical({"cameras": [{"source": "rtsp://op:s3cret@10.0.0.5/live"}]})
>>> text
'{"cameras":[{"source":"rtsp://op:***@10.0.0.5/live"}]}'
>>> redacted
['cameras[0].source']
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lanterne.core.errors import LanterneError
from lanterne.store.db import describe_failure
from lanterne.store.tables import ConfigSnapshotRecord

if TYPE_CHECKING:
    from lanterne.audit import AuditLog
    from lanterne.config.schema import Config

SYSTEM_USER = "system"
MIN_PREFIX = 8
"""Shortest hash prefix `get` accepts: `lanterne config check` prints 12 characters."""

_USERINFO_PASSWORD = re.compile(r"^(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:)(?P<secret>[^/@]*)(?P<tail>@)")


class SnapshotError(LanterneError):
    """A configuration hash that cannot be resolved as asked."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    sha256: str
    config: str
    """The canonical JSON, credentials in URLs replaced by `***`."""
    redacted: tuple[str, ...]
    first_seen_at: datetime
    first_seen_by: str

    @property
    def verifies(self) -> bool:
        """The stored text hashes to `sha256` (true whenever nothing had to be redacted)."""
        return hashlib.sha256(self.config.encode()).hexdigest() == self.sha256


def _scrub(value: Any, path: str, redacted: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, f"{path}.{k}" if path else str(k), redacted) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, f"{path}[{i}]", redacted) for i, v in enumerate(value)]
    if isinstance(value, str):
        m = _USERINFO_PASSWORD.match(value)
        if m is not None and m.group("secret"):
            redacted.append(path)
            return m.group("head") + "***" + value[m.end("secret") :]
    return value


def canonical(dumped: dict[str, Any]) -> tuple[str, list[str]]:
    """The JSON `config_hash` hashes (`model_dump(mode="json")`, sorted keys, no spaces), with any
    password written in a URL replaced; and the paths of the values replaced."""
    redacted: list[str] = []
    scrubbed = _scrub(dumped, "", redacted)
    return json.dumps(scrubbed, sort_keys=True, separators=(",", ":")), redacted


def record(engine: Engine, audit: AuditLog, cfg: Config, *, user_id: str = SYSTEM_USER) -> str:
    """Store `cfg` under its hash unless stored already; return the hash. Storing is audited as
    `config_snapshot` (`change: stored`); a hash already stored writes nothing, so a restart with
    the same file adds no row and no record."""
    from lanterne.audit import Action
    from lanterne.config import config_hash

    digest = config_hash(cfg)
    text, redacted = canonical(cfg.model_dump(mode="json"))
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            known = conn.execute(
                select(ConfigSnapshotRecord.sha256).where(ConfigSnapshotRecord.sha256 == digest)
            ).first()
            if known is not None:
                return digest
            conn.execute(
                insert(ConfigSnapshotRecord).values(
                    sha256=digest, config=text, redacted=redacted, first_seen_at=now, first_seen_by=user_id
                )
            )
    except IntegrityError:
        return digest  # another process of the site stored the same hash first
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    audit.append(
        user_id,
        Action.CONFIG_SNAPSHOT,
        object_type="config",
        object_id=digest,
        details={"change": "stored", "site": cfg.site, "mode": str(cfg.mode), "redacted": redacted},
    )
    return digest


def get(engine: Engine, audit: AuditLog, sha256: str, *, user_id: str) -> Snapshot:
    """The snapshot of a hash or of a unique prefix of one (at least `MIN_PREFIX` characters);
    the reading is audited (`change: read`), since a configuration names cameras and places."""
    from lanterne.audit import Action

    wanted = sha256.strip().lower()
    if len(wanted) < MIN_PREFIX or not re.fullmatch(r"[0-9a-f]+", wanted) or len(wanted) > 64:
        raise SnapshotError(
            f"{sha256!r} is not a configuration hash; give its hexadecimal sha256, at least {MIN_PREFIX} characters"
        )
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(ConfigSnapshotRecord).where(ConfigSnapshotRecord.sha256.startswith(wanted)).limit(2)
            ).all()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    if not rows:
        raise SnapshotError(
            f"no configuration stored under {wanted}; it is stored when `lanterne run` or a worker starts with it"
        )
    if len(rows) > 1:
        raise SnapshotError(f"{wanted} is the start of several configuration hashes; give more characters")
    r = rows[0]
    audit.append(
        user_id, Action.CONFIG_SNAPSHOT, object_type="config", object_id=r.sha256, details={"change": "read"}
    )
    return Snapshot(r.sha256, r.config, tuple(r.redacted), r.first_seen_at, r.first_seen_by)
