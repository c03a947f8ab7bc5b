"""Change control (GV-05): a change that bears on what the system detects takes effect only once
a person approved it in a signed governance record.

Five kinds of change are approved, each by the sha256 of what was reviewed:

- `model`: the detector model file (its registry sha256: the file is refused at load unless its
  bytes match, so that hash is what runs);
- `thresholds`: the detector's score thresholds and every zone's event parameters;
- `zones`: the cameras and their zones (polygons, and which event types each zone watches), so a
  new camera, a new source of images, needs one too;
- `event_types`: the event types the site watches, out of the eight of décret 2023-828 (LB-04);
- `observatory_source`: a dataset file for the observatory, by the sha256 of the file.

A record says who approved what, when, why (`summary`) and where the updated public notice is
(`notice_url`). It is signed with the site's audit key (Ed25519, the key of the audit checkpoints,
which lives outside the database) and written to the audit log. A row edited in the database, or
written there without the key, fails its signature and does not count.

In `alerts` mode, `authorisation.gates_for` asks `Governance.pending` before any camera opens: a
detector model, a set of thresholds, zones or event types whose current hash has no valid record
refuses the start, in one line naming the hash and the command that approves it. A statistics
site, or an alerts site none of whose cameras may alert yet (no validated masks, LB-06), needs
none: nothing it runs raises an alert. Observatory sources are recorded but not yet enforced by
the ingest. The configuration's own hash (`config_hash`, the notice's) is not touched: records
live in the database, not in the file.

>>> from lanterne.config import parse_config
>>> cfg = parse_config({"cameras": [{"id": "c", "source": "c.mp4", "location": {"lat": 0, "lon": 0}}]})
>>> change_sha256(cfg, Change.MODEL) == MODELS["yolox_nano"].sha256
True
>>> change_sha256(cfg, Change.ZONES) == change_sha256(cfg.model_copy(update={"site": "other"}), Change.ZONES)
True
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import signing
from lanterne.core.assets import MODELS, detector_file
from lanterne.core.errors import LanterneError
from lanterne.store.db import describe_failure
from lanterne.store.tables import GovernanceRecord

if TYPE_CHECKING:
    from lanterne.audit import AuditLog
    from lanterne.config.schema import Config

log = logging.getLogger(__name__)

GOVERNANCE_DOMAIN = b"lanterne-governance-record-v1\n"
"""Prefixed to every signed record, so that the audit key's signature over a record can never be
replayed as a checkpoint's, nor a checkpoint's as a record's (`signing.CHECKPOINT_DOMAIN`)."""

SHA256 = re.compile(r"^[0-9a-f]{64}$")
NO_RECORD = "no_governance_record"
"""The reason of the `alerting_refused` records of a start refused for want of a record."""


class GovernanceError(LanterneError):
    """A change that cannot be approved as asked, or a start refused for want of an approval."""


class Change(StrEnum):
    """What a governance record approves; the values are stored (`GOVERNANCE_CHANGES`)."""

    MODEL = "model"
    THRESHOLDS = "thresholds"
    ZONES = "zones"
    EVENT_TYPES = "event_types"
    OBSERVATORY_SOURCE = "observatory_source"


GATED: tuple[Change, ...] = (Change.MODEL, Change.EVENT_TYPES, Change.ZONES, Change.THRESHOLDS)
"""What an alerts-mode start needs approved, in the order a refusal names them."""


def parse_change(value: Change | str) -> Change:
    try:
        return Change(value)
    except ValueError:
        allowed = ", ".join(c.value for c in Change)
        raise GovernanceError(f"--what {value!r} is not a kind of change; use one of: {allowed}") from None


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def model_in_use(cfg: Config) -> tuple[str, str]:
    """The registry name and sha256 of the detector file the configuration loads."""
    name = detector_file(cfg.detector.model, cfg.detector.input_size)
    return name, MODELS[name].sha256


def change_sha256(cfg: Config, change: Change) -> str:
    """The sha256 of what the configuration runs for `change` (not for an observatory source,
    which is approved by its file's sha256)."""
    if change is Change.MODEL:
        return model_in_use(cfg)[1]
    if change is Change.EVENT_TYPES:
        return _digest(sorted({str(t) for c in cfg.cameras for z in c.zones for t in z.events.enabled()}))
    if change is Change.ZONES:
        return _digest(
            {
                c.id: sorted(
                    [
                        z.id,
                        [[float(x), float(y)] for x, y in z.polygon],
                        sorted(str(t) for t in z.events.enabled()),
                    ]
                    for z in c.zones
                )
                for c in cfg.cameras
            }
        )
    if change is Change.THRESHOLDS:
        return _digest(
            {
                "detector": {
                    "default_threshold": cfg.detector.default_threshold,
                    "class_thresholds": cfg.detector.class_thresholds,
                },
                "zones": {
                    c.id: {
                        z.id: {str(t): p.model_dump(mode="json") for t, p in z.events.enabled().items()}
                        for z in c.zones
                    }
                    for c in cfg.cameras
                },
            }
        )
    raise GovernanceError(
        "an observatory source is approved by the sha256 of its dataset file; pass --file or --sha256"
    )


def record_message(
    change: str, sha256: str, summary: str, notice_url: str, approved_by: str, approved_at: datetime, kid: str
) -> bytes:
    """What a record's signature covers: every field but the row id."""
    body = {
        "approved_at": approved_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "approved_by": approved_by,
        "change": change,
        "key_id": kid,
        "notice_url": notice_url,
        "sha256": sha256,
        "summary": summary,
    }
    return GOVERNANCE_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Approval:
    """One governance record as stored."""

    id: int
    change: Change
    sha256: str
    summary: str
    notice_url: str
    approved_by: str
    approved_at: datetime
    key_id: str
    signature: str

    def message(self) -> bytes:
        return record_message(
            self.change,
            self.sha256,
            self.summary,
            self.notice_url,
            self.approved_by,
            self.approved_at,
            self.key_id,
        )

    def verified(self, keys: Mapping[str, Ed25519PublicKey]) -> bool:
        """The signature holds under one of `keys` (by key id)."""
        key = keys.get(self.key_id)
        if key is None:
            return False
        try:
            key.verify(bytes.fromhex(self.signature), self.message())
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Pending:
    """A change the configuration runs with no valid record, and how many records for that hash
    were ignored for a bad signature."""

    change: Change
    sha256: str
    bad_signatures: int = 0


def _from_row(r: Any) -> Approval:
    return Approval(
        id=r.id,
        change=Change(r.change),
        sha256=r.sha256,
        summary=r.summary,
        notice_url=r.notice_url,
        approved_by=r.approved_by,
        approved_at=r.approved_at,
        key_id=r.key_id,
        signature=r.signature,
    )


def _notice_url(url: str) -> str:
    url = url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http", "file") or not (parsed.netloc or parsed.path):
        raise GovernanceError(
            f"--ref {url!r} is not a link to the public notice; give its address, e.g. "
            "https://ville.example/transparence"
        )
    if len(url) > 500:
        raise GovernanceError("--ref is longer than 500 characters; give a shorter link to the notice")
    return url


def _now() -> datetime:
    return datetime.now(UTC)


class Governance:
    """The register of governance records. Approving is signed and audited; nothing is edited or
    deleted (a change approved by mistake is undone by changing the configuration back)."""

    def __init__(self, engine: Engine, audit: AuditLog, *, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self.audit = audit
        self._clock = clock

    def approve(
        self, change: Change | str, sha256: str, *, notice_url: str, summary: str, user_id: str
    ) -> Approval:
        """Record that `user_id` approved `change` at `sha256`, signed with the audit key."""
        from lanterne.audit import Action

        kind = parse_change(change)
        sha256 = sha256.strip().lower()
        if not SHA256.match(sha256):
            raise GovernanceError(f"{sha256!r} is not a sha256 (64 hexadecimal digits); check --sha256")
        url = _notice_url(notice_url)
        summary = summary.strip()
        if not summary:
            raise GovernanceError("say what changed and why it was approved with --summary")
        if len(summary) > 1000:
            raise GovernanceError(
                "--summary is longer than 1000 characters; link the full text from the notice"
            )
        if not user_id.strip():
            raise GovernanceError("a governance record names who approved it; pass --user")
        key = self.audit.signing_key()
        kid = signing.key_id(key.public_key())
        at = self._clock().astimezone(UTC)
        signature = key.sign(record_message(kind, sha256, summary, url, user_id, at, kid)).hex()
        values = {
            "change": str(kind),
            "sha256": sha256,
            "summary": summary,
            "notice_url": url,
            "approved_by": user_id,
            "approved_at": at,
            "key_id": kid,
            "signature": signature,
        }
        try:
            with self.engine.begin() as conn:
                row_id = conn.execute(insert(GovernanceRecord).values(**values)).inserted_primary_key[0]
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        try:
            # An approval nobody can trace on the log must not open anything: undone if unrecorded.
            self.audit.append(
                user_id,
                Action.CONFIG_CHANGE,
                object_type="governance",
                object_id=f"{kind}:{sha256[:16]}",
                details={
                    "event": "governance_approval",
                    "record": int(row_id),
                    "change": str(kind),
                    "sha256": sha256,
                    "summary": summary,
                    "notice_url": url,
                    "key_id": kid,
                    "signature": signature,
                },
            )
        except BaseException:
            with self.engine.begin() as conn:
                conn.execute(delete(GovernanceRecord).where(GovernanceRecord.id == row_id))
            raise
        return Approval(int(row_id), kind, sha256, summary, url, user_id, at, kid, signature)

    def approve_config(
        self, cfg: Config, changes: Iterable[Change | str], *, notice_url: str, summary: str, user_id: str
    ) -> list[Approval]:
        """Approve what the configuration runs now for each of `changes` (one record each). Every
        hash is computed before the first record, so a change that cannot be approved from the
        configuration (an observatory source) records none."""
        hashes = {c: change_sha256(cfg, c) for c in dict.fromkeys(parse_change(c) for c in changes)}
        return [
            self.approve(c, h, notice_url=notice_url, summary=summary, user_id=user_id)
            for c, h in hashes.items()
        ]

    def list(self) -> list[Approval]:
        """Every record, oldest first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(GovernanceRecord).order_by(GovernanceRecord.id)).all()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        return [_from_row(r) for r in rows]

    def keys(self) -> dict[str, Ed25519PublicKey]:
        """The keys a record may be signed with: the site's audit key. After a key rotation the
        approvals in force are recorded again under the new key."""
        public = self.audit.signing_key().public_key()
        return {signing.key_id(public): public}

    def pending(self, cfg: Config, changes: Sequence[Change] = GATED) -> list[Pending]:
        """The `changes` the configuration runs whose current hash has no validly signed record."""
        wanted = {c: change_sha256(cfg, c) for c in changes}
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(GovernanceRecord).where(
                        GovernanceRecord.change.in_([str(c) for c in wanted]),
                        GovernanceRecord.sha256.in_(list(set(wanted.values()))),
                    )
                ).all()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        keys = self.keys()
        good: set[Change] = set()
        bad: dict[Change, int] = {}
        for approval in map(_from_row, rows):
            if wanted.get(approval.change) != approval.sha256:
                continue
            if approval.verified(keys):
                good.add(approval.change)
            else:
                bad[approval.change] = bad.get(approval.change, 0) + 1
                log.error(
                    "governance record %d (%s %s…): bad signature, ignored; was it edited in the database?",
                    approval.id,
                    approval.change,
                    approval.sha256[:12],
                )
        return [Pending(c, h, bad.get(c, 0)) for c, h in wanted.items() if c not in good]


def refusal(cfg: Config, pending: Sequence[Pending]) -> str:
    """The one line that refuses an alerts-mode start for want of approvals, naming each hash
    and the command that approves them all."""
    parts = []
    for p in pending:
        what = f"detector model {model_in_use(cfg)[0]} sha256 {p.sha256}" if p.change is Change.MODEL else (
            f"{p.change} sha256 {p.sha256[:12]}…"
        )  # fmt: skip
        if p.bad_signatures:
            what += f" ({p.bad_signatures} record with a bad signature ignored)"
        parts.append(what)
    whats = " ".join(f"--what {p.change}" for p in pending)
    return (
        f"alerts mode refused (GV-05): no signed governance record for {'; '.join(parts)}; once reviewed, "
        f"approve: lanterne governance approve {whats} --ref NOTICE_URL --summary '...' --config SITE.yml --user ID"
    )
