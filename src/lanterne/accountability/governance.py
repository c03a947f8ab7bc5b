"""Change control (GV-05): a change that bears on what the system detects takes effect only once
a person approved it in a signed governance record.

Five kinds of change are approved, each by the sha256 of what was reviewed:

- `model`: the detector model file (its registry sha256: the file is refused at load unless its
  bytes match, so that hash is what runs);
- `thresholds`: the detector's score thresholds and every zone's event parameters;
- `zones`: the cameras and their zones (polygons, and which event types each zone watches), so a
  new camera, a new source of images, needs one too;
- `event_types`: the event types the site watches, out of the eight of décret 2023-828 (LB-04);
- `observatory_source`: a source of the observatory, by the sha256 of its mapping file (what a
  review reads: publisher, licence, the columns read and how; a new month of the same export is
  no new source).

A record says who approved what, when, why (`summary`), where the updated public notice is
(`notice_url`), and which updated impact assessments cover the change: the DPIA by its link or
reference (`dpia`) and the FRIA by the reference of a recorded one (`fria`, as the authorisation
gate reads it: a FRIA nobody recorded is no assessment). It is signed with the site's audit key
(Ed25519, the key of the audit checkpoints, which lives outside the database) over all of it, and
written to the audit log. A row edited in the database, or written there without the key, fails
its signature and does not count; a record signed before records named their assessments
(`lanterne-governance-record-v1`) still verifies but no longer counts, so the change is approved
again with its DPIA and FRIA.

The two references are kept in the `summary` column, after the summary, on two lines of their own
(`DPIA: …`, `FRIA: …`): the table has no column for them, and columns of their own need a
migration (until one is written, this keeps every record readable by plain SQL). `Approval`
splits them out, and the signature covers each field apart, so a row whose lines were edited,
added or removed fails it.

In `alerts` mode, `authorisation.gates_for` asks `Governance.pending` before any camera opens: a
detector model, a set of thresholds, zones or event types whose current hash has no valid record
refuses the start, in one line naming the hash and the command that approves it. A statistics
site, or an alerts site none of whose cameras may alert yet (no validated masks, LB-06), needs
none: nothing it runs raises an alert. The observatory's ingest asks `Governance.approval` for the
sha256 of the source's mapping file (`lanterne.runtime.observatory_sources`). The configuration's
own hash (`config_hash`, the notice's) is not touched: records live in the database, not in the
file; a change of the configuration unpublishes the notice (TR-01), so an alerts-mode start needs
both the record and a notice published for the changed configuration.

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

GOVERNANCE_DOMAIN = b"lanterne-governance-record-v2\n"
"""Prefixed to every signed record, so that the audit key's signature over a record can never be
replayed as a checkpoint's, nor a checkpoint's as a record's (`signing.CHECKPOINT_DOMAIN`)."""
LEGACY_DOMAIN = b"lanterne-governance-record-v1\n"
"""Records signed before they named their DPIA and FRIA: verified, listed, never counted."""
ASSESSMENTS = re.compile(r"\n\nDPIA: (?P<dpia>[^\n]+)\nFRIA: (?P<fria>[^\n]+)\Z")
"""How the DPIA and FRIA references follow the summary in the stored `summary` column."""
SUMMARY_COLUMN = 1000
REFERENCE_LIMIT = 500

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
    name = detector_file(cfg.detector.model, cfg.detector.input_size, cfg.detector.input_shape)
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
        "an observatory source is approved by the sha256 of its mapping file; pass --file MAPPING.yml"
    )


def record_message(
    change: str,
    sha256: str,
    summary: str,
    notice_url: str,
    approved_by: str,
    approved_at: datetime,
    kid: str,
    dpia: str | None = None,
    fria: str | None = None,
) -> bytes:
    """What a record's signature covers: every field but the row id. A record without its
    assessments is one signed before they were asked (`LEGACY_DOMAIN`)."""
    body = {
        "approved_at": approved_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "approved_by": approved_by,
        "change": change,
        "key_id": kid,
        "notice_url": notice_url,
        "sha256": sha256,
        "summary": summary,
    }
    if dpia is None and fria is None:
        return LEGACY_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body |= {"dpia": dpia, "fria": fria}
    return GOVERNANCE_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def stored_summary(summary: str, dpia: str, fria: str) -> str:
    """The `summary` column: the summary, then the assessments on lines of their own."""
    return f"{summary}\n\nDPIA: {dpia}\nFRIA: {fria}"


def split_summary(stored: str) -> tuple[str, str | None, str | None]:
    """The summary, DPIA and FRIA of a stored `summary` column (None, None when it names none).

    >>> split_summary(stored_summary("zone moved", "https://v.example/aipd.pdf", "FRIA-2"))
    ('zone moved', 'https://v.example/aipd.pdf', 'FRIA-2')
    >>> split_summary("signed before records named them")
    ('signed before records named them', None, None)
    """
    found = ASSESSMENTS.search(stored)
    if found is None:
        return stored, None, None
    return stored[: found.start()], found["dpia"], found["fria"]


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
    dpia: str | None = None
    """The updated DPIA's link or reference; None on a record signed before they were asked."""
    fria: str | None = None
    """The reference of the recorded FRIA that covers the change; None likewise."""

    def message(self) -> bytes:
        return record_message(
            self.change,
            self.sha256,
            self.summary,
            self.notice_url,
            self.approved_by,
            self.approved_at,
            self.key_id,
            self.dpia,
            self.fria,
        )

    @property
    def assessed(self) -> bool:
        """It names the DPIA and the FRIA updated for the change: only such a record counts."""
        return self.dpia is not None and self.fria is not None

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
    unassessed: int = 0
    """Validly signed records for that hash that name no DPIA and FRIA (signed before they were
    asked), ignored."""

    def ignored(self) -> str:
        """What was ignored, for a refusal: empty when nothing was."""
        said = []
        if self.bad_signatures:
            said.append(f"{self.bad_signatures} record with a bad signature ignored")
        if self.unassessed:
            said.append(f"{self.unassessed} record naming no DPIA and FRIA ignored")
        return f" ({'; '.join(said)})" if said else ""


def _from_row(r: Any) -> Approval:
    summary, dpia, fria = split_summary(r.summary)
    return Approval(
        id=r.id,
        change=Change(r.change),
        sha256=r.sha256,
        summary=summary,
        notice_url=r.notice_url,
        approved_by=r.approved_by,
        approved_at=r.approved_at,
        key_id=r.key_id,
        signature=r.signature,
        dpia=dpia,
        fria=fria,
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


def _reference(value: str | None, option: str, what: str) -> str:
    ref = (value or "").strip()
    if not ref:
        raise GovernanceError(f"name the {what} updated for this change with {option}")
    if "\n" in ref or "\r" in ref:
        raise GovernanceError(f"{option} holds a line break; give the {what}'s link or reference on one line")
    if len(ref) > REFERENCE_LIMIT:
        raise GovernanceError(f"{option} is longer than {REFERENCE_LIMIT} characters; give a shorter link")
    return ref


def _now() -> datetime:
    return datetime.now(UTC)


class Governance:
    """The register of governance records. Approving is signed and audited; nothing is edited or
    deleted (a change approved by mistake is undone by changing the configuration back)."""

    def __init__(self, engine: Engine, audit: AuditLog, *, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self.audit = audit
        self._clock = clock

    def _assessments(self, dpia: str | None, fria: str | None) -> tuple[str, str]:
        """The DPIA and FRIA references of an approval, checked as the authorisation gate reads
        an authorisation's links: the FRIA is a recorded one, and the DPIA is not a FRIA."""
        from lanterne.accountability.fria import FriaRegister

        dpia = _reference(dpia, "--dpia", "DPIA")
        fria = _reference(fria, "--fria", "FRIA")
        frias = FriaRegister(self.engine, self.audit)
        if frias.get(fria) is None:
            raise GovernanceError(
                f"--fria {fria!r} is not a recorded FRIA; record it first (lanterne fria add --reference "
                f"{fria} …) or name one of lanterne fria list"
            )
        if frias.get(dpia) is not None:
            raise GovernanceError(
                f"--dpia {dpia!r} is the reference of a FRIA; give the DPIA's own link or reference"
            )
        return dpia, fria

    def approve(
        self,
        change: Change | str,
        sha256: str,
        *,
        notice_url: str,
        summary: str,
        user_id: str,
        dpia: str | None,
        fria: str | None,
    ) -> Approval:
        """Record that `user_id` approved `change` at `sha256`, under the updated `dpia` and
        `fria`, signed with the audit key."""
        from lanterne.audit import Action

        kind = parse_change(change)
        sha256 = sha256.strip().lower()
        if not SHA256.match(sha256):
            raise GovernanceError(f"{sha256!r} is not a sha256 (64 hexadecimal digits); check --sha256")
        url = _notice_url(notice_url)
        summary = summary.strip()
        if not summary:
            raise GovernanceError("say what changed and why it was approved with --summary")
        if not user_id.strip():
            raise GovernanceError("a governance record names who approved it; pass --user")
        dpia, fria = self._assessments(dpia, fria)
        stored = stored_summary(summary, dpia, fria)
        if len(stored) > SUMMARY_COLUMN:
            room = SUMMARY_COLUMN - (len(stored) - len(summary))
            raise GovernanceError(
                f"--summary is longer than the {room} characters left beside the DPIA and FRIA "
                "references; link the full text from the notice"
            )
        key = self.audit.signing_key()
        kid = signing.key_id(key.public_key())
        at = self._clock().astimezone(UTC)
        signature = key.sign(record_message(kind, sha256, summary, url, user_id, at, kid, dpia, fria)).hex()
        values = {
            "change": str(kind),
            "sha256": sha256,
            "summary": stored,
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
                    "dpia": dpia,
                    "fria": fria,
                    "key_id": kid,
                    "signature": signature,
                },
            )
        except BaseException:
            with self.engine.begin() as conn:
                conn.execute(delete(GovernanceRecord).where(GovernanceRecord.id == row_id))
            raise
        return Approval(int(row_id), kind, sha256, summary, url, user_id, at, kid, signature, dpia, fria)

    def approve_config(
        self,
        cfg: Config,
        changes: Iterable[Change | str],
        *,
        notice_url: str,
        summary: str,
        user_id: str,
        dpia: str | None,
        fria: str | None,
    ) -> list[Approval]:
        """Approve what the configuration runs now for each of `changes` (one record each). Every
        hash, and the assessments, are checked before the first record, so a change that cannot
        be approved from the configuration (an observatory source) records none."""
        hashes = {c: change_sha256(cfg, c) for c in dict.fromkeys(parse_change(c) for c in changes)}
        self._assessments(dpia, fria)
        return [
            self.approve(c, h, notice_url=notice_url, summary=summary, user_id=user_id, dpia=dpia, fria=fria)
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

    def _judged(self, wanted: Mapping[Change, str]) -> tuple[dict[Change, Approval], list[Pending]]:
        """For each change wanted at its hash: the newest record that counts (validly signed and
        naming its DPIA and FRIA), or what is pending and what was ignored."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(GovernanceRecord)
                    .where(
                        GovernanceRecord.change.in_([str(c) for c in wanted]),
                        GovernanceRecord.sha256.in_(list(set(wanted.values()))),
                    )
                    .order_by(GovernanceRecord.id)
                ).all()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        keys = self.keys()
        good: dict[Change, Approval] = {}
        bad: dict[Change, int] = {}
        unassessed: dict[Change, int] = {}
        for approval in map(_from_row, rows):
            if wanted.get(approval.change) != approval.sha256:
                continue
            if not approval.verified(keys):
                bad[approval.change] = bad.get(approval.change, 0) + 1
                log.error(
                    "governance record %d (%s %s…): bad signature, ignored; was it edited in the database?",
                    approval.id,
                    approval.change,
                    approval.sha256[:12],
                )
            elif not approval.assessed:
                unassessed[approval.change] = unassessed.get(approval.change, 0) + 1
            else:
                good[approval.change] = approval
        pending = [
            Pending(c, h, bad.get(c, 0), unassessed.get(c, 0)) for c, h in wanted.items() if c not in good
        ]
        return good, pending

    def pending(self, cfg: Config, changes: Sequence[Change] = GATED) -> list[Pending]:
        """The `changes` the configuration runs whose current hash has no record that counts."""
        return self._judged({c: change_sha256(cfg, c) for c in changes})[1]

    def approval(self, change: Change | str, sha256: str) -> Approval | Pending:
        """The record that approves `change` at `sha256` (the newest that counts), or what is
        pending: how a change that is not the configuration's, an observatory source, is asked."""
        kind = parse_change(change)
        good, pending = self._judged({kind: sha256})
        return good[kind] if kind in good else pending[0]


APPROVE_OPTIONS = "--dpia DPIA_REF --fria FRIA_REF --ref NOTICE_URL --summary '...'"
"""The options every approval needs, as a refusal shows them."""


def refusal(cfg: Config, pending: Sequence[Pending]) -> str:
    """The one line that refuses an alerts-mode start for want of approvals, naming each hash
    and the command that approves them all."""
    parts = []
    for p in pending:
        what = f"detector model {model_in_use(cfg)[0]} sha256 {p.sha256}" if p.change is Change.MODEL else (
            f"{p.change} sha256 {p.sha256[:12]}…"
        )  # fmt: skip
        parts.append(what + p.ignored())
    whats = " ".join(f"--what {p.change}" for p in pending)
    return (
        f"alerts mode refused (GV-05): no signed governance record for {'; '.join(parts)}; once reviewed, "
        f"approve: lanterne governance approve {whats} {APPROVE_OPTIONS} --config SITE.yml --user ID"
    )


def source_refusal(mapping_file: str, pending: Pending) -> str:
    """The one line that refuses an observatory ingest whose source has no record."""
    return (
        f"ingest refused (GV-05): no signed governance record for the observatory source {mapping_file} "
        f"(mapping sha256 {pending.sha256}){pending.ignored()}; once reviewed, approve: lanterne governance "
        f"approve --what observatory_source --file {mapping_file} {APPROVE_OPTIONS} --config SITE.yml --user ID"
    )
