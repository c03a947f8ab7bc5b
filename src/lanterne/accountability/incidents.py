"""Incidents and personal-data breaches (RK-05, SC-05): detected, recorded with a timeline, owned,
notified and closed with their cause and remedy.

A deployer must notice when the system misbehaves and tell the provider or the authority (AI Act
art. 26(5), 73), and must notify a personal-data breach to the CNIL within 72 hours of becoming
aware of it (GDPR art. 33, LED art. 30). Lanterne already measures the symptoms elsewhere; this
module turns them into records a person answers for:

- `detector_silent`: a camera that was running has written no health row for `SILENT_AFTER`, or
  its row has said `failed` or `stalled` for that long (`lanterne.accountability.cameras`): its
  detector produces nothing, so nobody is alerted of anything there;
- `false_alarm_spike`: the operators dismissed one detector's alerts on one camera far more often
  in the last hour than its own history says is usual (`spikes`), or the detector suspended
  itself for an alert flood or a precision collapse (`lanterne.accountability.suspension`);
- `recall_miss`: a closed blinded recall audit (`lanterne.accountability.recall`) found situations
  the system did not alert on a camera set to detect them;
- `breach`: `lanterne audit verify` found the audit log altered or truncated, or the witnesses
  disagreeing with it (a breach of integrity of personal data: user ids and what they viewed).
  A breach carries the 72-hour deadline, counted from when it became known;
- `manual`: anything a person records (`lanterne incidents open`).

`IncidentSweep` runs the first three once a minute beside the site's other chores
(`lanterne.runtime.runner.site_retention`). What the sweep opened is recognised by its
`dedupe_key`, so a camera down for an hour is one incident, not sixty.

Each incident has a timeline (opened, evidence, note, notified, closed) and an owner, and
`template` writes the notification the owner sends: what, when, which cameras and detectors,
effects, measures, and for a breach the headings of the CNIL's notification form. It is built from
the incident's ids, counts and the owner's own text, never from footage or a person's data. Every
step is an audit record (`incident`), written before the step stands.

>>> from datetime import UTC, datetime
>>> t = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
>>> spike(dismissed=12, history=14, history_hours=168)
True
>>> spike(dismissed=4, history=0, history_hours=168), spike(dismissed=30, history=1680, history_hours=168)
(False, False)
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.store.db import describe_failure, locked_write, transaction
from lanterne.store.tables import (
    INCIDENT_KINDS,
    INCIDENT_STATES,
    AlertStateRecord,
    CameraHealthRecord,
    EventRecord,
    IncidentEntryRecord,
    IncidentRecord,
    RecallAuditRecord,
    RecallMarkRecord,
    RecallWindowRecord,
    SuspensionRecord,
)

if TYPE_CHECKING:
    from lanterne.config.schema import Config

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = INCIDENT_KINDS
SYSTEM = "system"
"""Who opens what the sweep finds, in the incident and in the audit log."""
INCIDENT_ROLES: tuple[str, ...] = ("supervisor", "auditor")
"""Who handles incidents in the console: supervisors (they run the cameras and stop detectors)
and the DPO (role `auditor`, who notifies breaches). Operators see their alerts, not these."""
UNASSIGNED = "unassigned"
"""The owner of an incident the sweep opened until a person takes it (`note --owner`)."""
OBJECT = "incident"

BREACH_DEADLINE = timedelta(hours=72)
"""GDPR art. 33(1): the authority is notified within 72 hours of the controller becoming aware."""
SILENT_AFTER = timedelta(minutes=5)
"""How long a camera's detector may be silent before an incident opens: the runner rewrites each
camera's health row every few seconds and reconnects a dropped stream within seconds, so five
minutes is a failure, not a hiccup, and short enough that an evening is not lost unnoticed."""
SPIKE_WINDOW = timedelta(hours=1)
SPIKE_HISTORY = timedelta(days=7)
SPIKE_MIN = 5
"""Fewer dismissals in an hour than this are never a spike: a quiet detector's three dismissals
would otherwise be "well above" a history of nearly none."""
SPIKE_FACTOR = 4.0
"""A spike is at least this many times the detector's usual hourly dismissals on the camera."""
SPIKE_EVERY = timedelta(minutes=10)
"""How often the sweep measures dismissals (seven days of decisions per camera and type)."""
BREACH_KEY = "breach:audit_log:"
"""The `dedupe_key` prefix of breaches `lanterne audit verify` opened, before the finding's hash."""
LOOKBACK = timedelta(days=30)
"""Recall audits closed, and self-suspensions started, longer ago than this are not turned into
incidents by the sweep: an upgraded site does not open a year's worth at once."""
RECIPIENTS: tuple[str, ...] = ("authority", "provider")
"""Who a notification goes to: the supervisory or market-surveillance authority (the CNIL for a
breach), or the provider of the AI system."""
TEXT_LIMIT = 2000
NOTE_LIMIT = 1000

KIND_TITLES: dict[str, str] = {
    "detector_silent": "detector silent",
    "false_alarm_spike": "false-alarm spike",
    "recall_miss": "missed situations found by a recall audit",
    "breach": "personal-data breach",
    "manual": "incident recorded by hand",
}
EFFECTS: dict[str, str] = {
    "detector_silent": (
        "While silent, the detector analysed nothing on these cameras: no situation there could raise "
        "an alert, and operators relying on alerts were not warned. No footage was disclosed."
    ),
    "false_alarm_spike": (
        "Operators were sent many alerts that they dismissed: attention spent on false alarms, and a "
        "risk that real alerts were dismissed unseen. Agents may have been sent towards people who had "
        "done nothing."
    ),
    "recall_miss": (
        "Situations of a type the cameras were set to detect happened without an alert: the operators "
        "relied on a detection that did not come."
    ),
    "breach": (
        "The integrity of the audit log is no longer proven: records of who viewed or exported footage "
        "may have been altered or deleted, so misuse of footage may be hidden."
    ),
    "manual": "As described above.",
}


class IncidentError(LanterneError):
    """An incident step that cannot be done as asked."""


class IncidentNotFound(IncidentError):  # noqa: N818 (reads as the answer it becomes: 404)
    """No incident has this number."""


class IncidentConflict(IncidentError):  # noqa: N818 (reads as the answer it becomes: 409)
    """The step does not fit the incident's state (closing a closed one)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of an incident's timeline."""

    id: int
    at: datetime
    author: str
    step: str
    """`opened`, `evidence`, `note`, `notified` or `closed`."""
    body: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Incident:
    id: int
    kind: str
    state: str
    title: str
    summary: str
    owner: str
    cameras: tuple[str, ...]
    detectors: tuple[str, ...]
    detected_at: datetime
    opened_at: datetime
    opened_by: str
    deadline: datetime | None
    notified_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    cause: str | None
    remedy: str | None
    entries: tuple[Entry, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    def overdue(self, now: datetime) -> bool:
        """A breach whose authority was not told by its deadline (closed or not: the late
        notification still has to give the reasons for the delay, art. 33(1))."""
        if self.deadline is None:
            return False
        told = self.notified_at
        return (told is None and now > self.deadline) or (told is not None and told > self.deadline)


def _aware(value: datetime, name: str = "now") -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")
    return value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: str | None, what: str, limit: int, *, option: str) -> str:
    text = (value or "").strip()
    if not text:
        raise IncidentError(f"{what} is empty; say it with {option}")
    if len(text) > limit:
        raise IncidentError(f"{what} is {len(text)} characters long; shorten it to {limit}")
    return text


def _incident(r: Any, entries: Sequence[Entry] = ()) -> Incident:
    return Incident(
        id=int(r.id),
        kind=r.kind,
        state=r.state,
        title=r.title,
        summary=r.summary,
        owner=r.owner,
        cameras=tuple(r.cameras or ()),
        detectors=tuple(r.detectors or ()),
        detected_at=r.detected_at,
        opened_at=r.opened_at,
        opened_by=r.opened_by,
        deadline=r.deadline,
        notified_at=r.notified_at,
        closed_at=r.closed_at,
        closed_by=r.closed_by,
        cause=r.cause,
        remedy=r.remedy,
        entries=tuple(entries),
    )


def _entry(r: Any) -> Entry:
    return Entry(int(r.id), r.at, r.author, r.step, r.body, dict(r.details or {}))


_I = IncidentRecord.__table__
_E = IncidentEntryRecord.__table__


class Incidents:
    """The incident register. Every step is recorded in the audit log before it stands: a step
    the log refuses is taken back (an incident opened unrecorded is deleted again)."""

    def __init__(self, engine: Engine, audit: AuditLog, *, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self.audit = audit
        self._clock = clock

    # --- reading ------------------------------------------------------------------------------

    def get(self, incident_id: int) -> Incident:
        try:
            with self.engine.connect() as conn:
                r = conn.execute(select(_I).where(_I.c.id == incident_id)).first()
                rows = conn.execute(select(_E).where(_E.c.case_id == incident_id).order_by(_E.c.id)).all()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        if r is None:
            raise IncidentNotFound(f"incident {incident_id} does not exist; see `lanterne incidents list`")
        return _incident(r, [_entry(e) for e in rows])

    def list(self, *, state: str | None = None, kind: str | None = None, limit: int = 500) -> list[Incident]:
        """Newest first, without their timelines."""
        if state is not None and state not in INCIDENT_STATES:
            raise IncidentError(f"unknown state {state!r}; choose one of {', '.join(INCIDENT_STATES)}")
        if kind is not None and kind not in INCIDENT_KINDS:
            raise IncidentError(f"unknown kind {kind!r}; choose one of {', '.join(INCIDENT_KINDS)}")
        stmt = select(_I).order_by(_I.c.opened_at.desc(), _I.c.id.desc()).limit(limit)
        if state is not None:
            stmt = stmt.where(_I.c.state == state)
        if kind is not None:
            stmt = stmt.where(_I.c.kind == kind)
        try:
            with self.engine.connect() as conn:
                return [_incident(r) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None

    # --- opening ------------------------------------------------------------------------------

    def open(
        self,
        kind: str,
        title: str,
        summary: str,
        *,
        by: str,
        owner: str | None = None,
        cameras: Iterable[str] = (),
        detectors: Iterable[str] = (),
        detected_at: datetime | None = None,
        dedupe_key: str | None = None,
        once: bool = False,
        evidence: dict[str, Any] | None = None,
    ) -> tuple[Incident, bool]:
        """Open an incident; `(incident, True)`. With `dedupe_key`, an open incident with that key
        (any incident, when `once`) is returned instead, `(incident, False)`: the sweep calls this
        every minute for as long as a symptom lasts."""
        if kind not in INCIDENT_KINDS:
            raise IncidentError(f"unknown kind {kind!r}; choose one of {', '.join(INCIDENT_KINDS)}")
        title = _text(title, "the title", 200, option="--title")
        summary = _text(summary, "the summary", TEXT_LIMIT, option="--summary")
        if not by.strip():
            raise IncidentError("an incident names who opened it; pass --user")
        owner = (owner or (UNASSIGNED if by == SYSTEM else by)).strip()
        now = _aware(self._clock())
        detected = _aware(detected_at, "detected_at") if detected_at is not None else now
        if detected > now:
            raise IncidentError("--detected is in the future; give when it became known")
        deadline = detected + BREACH_DEADLINE if kind == "breach" else None
        values = {
            "kind": kind,
            "state": "open",
            "title": title,
            "summary": summary,
            "owner": owner,
            "cameras": sorted(set(cameras)),
            "detectors": sorted(set(detectors)),
            "detected_at": detected,
            "opened_at": now,
            "opened_by": by,
            "dedupe_key": dedupe_key,
            "deadline": deadline,
        }
        with locked_write(self.engine, "incidents") as conn:
            if dedupe_key is not None:
                found = conn.execute(
                    select(_I.c.id)
                    .where(_I.c.dedupe_key == dedupe_key, *(() if once else (_I.c.state == "open",)))
                    .order_by(_I.c.id.desc())
                    .limit(1)
                ).scalar()
                if found is not None:
                    return self.get(int(found)), False
            new_id = int(conn.execute(insert(_I).values(**values).returning(_I.c.id)).scalar_one())
            conn.execute(
                insert(_E).values(
                    case_id=new_id, at=now, author=by, step="opened", body=summary, details=evidence or {}
                )
            )
        try:
            self.audit.append(
                by,
                Action.INCIDENT,
                object_type=OBJECT,
                object_id=str(new_id),
                details={
                    "step": "opened",
                    "kind": kind,
                    "title": title,
                    "owner": owner,
                    "cameras": values["cameras"],
                    "detectors": values["detectors"],
                    "detected_at": detected.isoformat(),
                    **({"deadline": deadline.isoformat()} if deadline is not None else {}),
                    **({"evidence": evidence} if evidence else {}),
                },
            )
        except BaseException:
            with transaction(self.engine) as conn:
                conn.execute(_E.delete().where(_E.c.case_id == new_id))
                conn.execute(_I.delete().where(_I.c.id == new_id))
            raise
        log.warning("incident %d opened: %s (%s)", new_id, title, kind)
        return self.get(new_id), True

    # --- the timeline -------------------------------------------------------------------------

    def _add(
        self,
        incident_id: int,
        step: str,
        body: str,
        by: str,
        details: dict[str, Any],
        *,
        changes: dict[str, Any] | None = None,
        when_open: bool = False,
        recipient: str | None = None,
        purpose: str | None = None,
    ) -> Incident:
        """Record the step, then write its entry (and `changes` to the incident) in one
        transaction: a step the log refuses never stands."""
        if not by.strip():
            raise IncidentError("a step names who took it; pass --user")
        current = self.get(incident_id)
        if when_open and not current.is_open:
            raise IncidentConflict(
                f"incident {incident_id} was closed by {current.closed_by} at "
                f"{current.closed_at:%Y-%m-%d %H:%M} UTC; open a new one if it happened again"
            )
        now = _aware(self._clock())
        self.audit.append(
            by,
            Action.INCIDENT,
            object_type=OBJECT,
            object_id=str(incident_id),
            recipient=recipient,
            purpose=purpose,
            details={"step": step, "kind": current.kind, **details},
        )
        with locked_write(self.engine, "incidents") as conn:
            if changes:
                guard = [_I.c.id == incident_id]
                if when_open:
                    guard.append(_I.c.state == "open")
                done = conn.execute(update(_I).where(*guard).values(**changes)).rowcount
                if not done:
                    raise IncidentConflict(f"incident {incident_id} was closed meanwhile")
            conn.execute(
                insert(_E).values(
                    case_id=incident_id, at=now, author=by, step=step, body=body, details=details
                )
            )
        return self.get(incident_id)

    def add_evidence(
        self, incident_id: int, body: str, details: dict[str, Any], *, by: str = SYSTEM
    ) -> Incident:
        """What a later sweep (or a person) found about an incident: measurements, not opinions."""
        return self._add(
            incident_id, "evidence", _text(body, "the evidence", TEXT_LIMIT, option="--text"), by, details
        )

    def note(self, incident_id: int, text: str, *, by: str, owner: str | None = None) -> Incident:
        """A note on the timeline (what was checked, what was done); `owner` hands the incident to
        another user id at the same time."""
        text = _text(text, "the note", NOTE_LIMIT, option="--text")
        changes: dict[str, Any] | None = None
        details: dict[str, Any] = {}
        if owner is not None:
            owner = owner.strip()
            if not owner or len(owner) > 128:
                raise IncidentError("--owner must be a user id of 1 to 128 characters")
            changes, details = {"owner": owner}, {"owner": owner}
        return self._add(incident_id, "note", text, by, details, changes=changes, purpose=text)

    def notify(self, incident_id: int, to: str, reference: str, *, by: str) -> Incident:
        """Record that the notification was sent to `to` (`authority` or `provider`), with the
        reference the recipient gave (a receipt number) or how it was sent. The first one to the
        authority stops a breach's clock."""
        if to not in RECIPIENTS:
            raise IncidentError(f"--to {to!r}: choose one of {', '.join(RECIPIENTS)}")
        reference = _text(reference, "the notification's reference", 500, option="--reference")
        current = self.get(incident_id)
        now = _aware(self._clock())
        changes = {"notified_at": now} if to == "authority" and current.notified_at is None else None
        late = current.deadline is not None and to == "authority" and now > current.deadline
        details: dict[str, Any] = {"to": to, "reference": reference}
        if late:
            details["late_hours"] = round((now - current.detected_at).total_seconds() / 3600, 1)
        body = f"notified the {to}: {reference}"
        return self._add(incident_id, "notified", body, by, details, changes=changes, recipient=to)

    def close(self, incident_id: int, cause: str, remedy: str, *, by: str) -> Incident:
        """Close with what caused it and what was done so it does not happen again."""
        cause = _text(cause, "the cause", NOTE_LIMIT, option="--cause")
        remedy = _text(remedy, "the remedy", NOTE_LIMIT, option="--remedy")
        now = _aware(self._clock())
        return self._add(
            incident_id,
            "closed",
            f"cause: {cause}; remedy: {remedy}",
            by,
            {"cause": cause, "remedy": remedy},
            changes={"state": "closed", "closed_at": now, "closed_by": by, "cause": cause, "remedy": remedy},
            when_open=True,
        )


# --- the notification template -------------------------------------------------------------------


def _when(ts: datetime | None) -> str:
    return "—" if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


TO_COMPLETE = "TO BE COMPLETED BY THE OWNER"


def _measures(i: Incident) -> list[str]:
    return [f"- {_when(e.at)}: {e.body}" for e in i.entries if e.step in ("note", "evidence") and e.body] or [
        f"- {TO_COMPLETE}"
    ]


def template(
    i: Incident, *, site: str, controller: str = "", dpo_contact: str = "", now: datetime | None = None
) -> str:
    """The notification the owner sends (Markdown), from the incident's record only: ids, times,
    counts and the owner's own notes. A breach gets the headings of the CNIL's notification form
    (GDPR art. 33(3)); the rest a malfunction report for the provider or the authority (AI Act
    art. 26(5), 73)."""
    now = _aware(now or _now())
    cameras = ", ".join(i.cameras) or "none in particular"
    detectors = ", ".join(i.detectors) or "none in particular"
    controller = controller or TO_COMPLETE
    contact = dpo_contact or TO_COMPLETE
    cause = i.cause or "under investigation"
    remedy = i.remedy or "under investigation"
    if i.kind == "breach":
        assert i.deadline is not None
        late = i.overdue(now)
        lines = [
            f"# Notification de violation de données personnelles — incident {i.id}",
            "",
            f"Site {site}. GDPR art. 33 (LED art. 30): to the CNIL within 72 hours of becoming aware.",
            f"Became aware: {_when(i.detected_at)}. Deadline: {_when(i.deadline)}."
            + (" **OVERDUE.**" if late else ""),
            "",
            "## 1. Organisme (controller)",
            f"{controller}",
            "",
            "## 2. Nature de la violation (nature of the breach)",
            f"{i.title}. {i.summary}",
            "Confidentiality, integrity or availability: integrity (the audit log), unless stated otherwise below.",
            "",
            "## 3. Date et circonstances (when and how it was discovered)",
            f"Discovered {_when(i.detected_at)}; recorded {_when(i.opened_at)}.",
            f"Cameras concerned: {cameras}. Detectors concerned: {detectors}.",
            "",
            "## 4. Données concernées (categories and approximate number of records)",
            f"{TO_COMPLETE}: e.g. audit records (user ids of staff, times, what they viewed), footage.",
            "",
            "## 5. Personnes concernées (categories and approximate number of people)",
            f"{TO_COMPLETE}: e.g. staff whose actions were logged; people filmed, if footage is concerned.",
            "",
            "## 6. Conséquences probables (likely consequences)",
            EFFECTS["breach"],
            "",
            "## 7. Mesures prises ou envisagées (measures taken or proposed)",
            *_measures(i),
            f"Cause: {cause}. Remedy: {remedy}.",
            "",
            "## 8. Information des personnes concernées (GDPR art. 34)",
            f"{TO_COMPLETE}: whether the people concerned are told, and how; or why not.",
            "",
            "## 9. Délégué à la protection des données (contact)",
            f"{contact}",
        ]
        if late:
            lines += ["", "## 10. Motifs du retard (reasons for notifying after 72 hours)", TO_COMPLETE]
        return "\n".join(lines) + "\n"
    lines = [
        f"# Incident report {i.id}: {i.title}",
        "",
        f"Site {site}. To the provider of the AI system and/or the market-surveillance authority "
        "(AI Act art. 26(5), 73).",
        "",
        "## What happened",
        f"{KIND_TITLES[i.kind].capitalize()}. {i.summary}",
        "",
        "## When",
        f"Detected {_when(i.detected_at)}; recorded {_when(i.opened_at)}"
        + (f"; closed {_when(i.closed_at)}." if i.closed_at else "; still open."),
        "",
        "## Cameras and detectors concerned",
        f"- cameras: {cameras}",
        f"- detectors: {detectors}",
        "",
        "## Effects",
        EFFECTS[i.kind],
        "",
        "## Measures taken",
        *_measures(i),
        "",
        "## Cause and remedy",
        f"Cause: {cause}. Remedy: {remedy}.",
        "",
        "## Contact",
        f"{controller}; data-protection officer: {contact}.",
    ]
    return "\n".join(lines) + "\n"


# --- what the public page shows ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthCount:
    month: str
    """`YYYY-MM`, by when the incident was opened (UTC)."""
    kind: str
    opened: int


def monthly_counts(engine: Engine, now: datetime, months: int = 12) -> list[MonthCount]:
    """Incidents opened per month and kind over the last `months` months, newest month first:
    counts only, no title, camera or text (the public page)."""
    now = _aware(now)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    for _ in range(months - 1):
        start = (start - timedelta(days=1)).replace(day=1)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(_I.c.kind, _I.c.opened_at).where(_I.c.opened_at >= start, _I.c.opened_at <= now)
            ).all()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    counts = Counter((r.opened_at.astimezone(UTC).strftime("%Y-%m"), r.kind) for r in rows)
    months_first = sorted({m for m, _ in counts}, reverse=True)
    return [
        MonthCount(m, k, counts[(m, k)]) for m in months_first for k in INCIDENT_KINDS if (m, k) in counts
    ]


# --- the sweep -----------------------------------------------------------------------------------


def spike(*, dismissed: int, history: int, history_hours: float) -> bool:
    """`dismissed` in the last hour is well above the usual hourly rate of `history` dismissals
    over `history_hours`: at least `SPIKE_MIN` and at least `SPIKE_FACTOR` times the usual."""
    usual = history / history_hours if history_hours > 0 else 0.0
    return dismissed >= SPIKE_MIN and dismissed >= math.ceil(SPIKE_FACTOR * usual)


def _dismissals(conn: Connection, start: datetime, end: datetime) -> Counter[tuple[str, str]]:
    rows = conn.execute(
        select(EventRecord.camera, EventRecord.type, func.count(func.distinct(AlertStateRecord.event_id)))
        .join(EventRecord, EventRecord.id == AlertStateRecord.event_id)
        .where(
            EventRecord.mode == "alerts",
            AlertStateRecord.state == "dismissed",
            AlertStateRecord.ts >= start,
            AlertStateRecord.ts < end,
        )
        .group_by(EventRecord.camera, EventRecord.type)
    ).all()
    return Counter({(r[0], r[1]): int(r[2]) for r in rows})


@dataclass(frozen=True, slots=True)
class Spike:
    camera: str
    type: str
    dismissed: int
    history: int
    """Dismissals of the same detector on the camera over the `SPIKE_HISTORY` before the hour."""


def spikes(engine: Engine, now: datetime) -> list[Spike]:
    """Detectors whose dismissals on a camera in the last hour are well above their own history."""
    now = _aware(now)
    start = now - SPIKE_WINDOW
    try:
        with engine.connect() as conn:
            recent = _dismissals(conn, start, now)
            if not recent:
                return []
            before = _dismissals(conn, start - SPIKE_HISTORY, start)
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    hours = SPIKE_HISTORY.total_seconds() / 3600
    return [
        Spike(cam, typ, n, before.get((cam, typ), 0))
        for (cam, typ), n in sorted(recent.items())
        if spike(dismissed=n, history=before.get((cam, typ), 0), history_hours=hours)
    ]


@dataclass(frozen=True, slots=True)
class Silence:
    camera: str
    since: datetime
    state: str
    """The health row's state, or `stale` when the row was not rewritten."""


def silent_cameras(
    engine: Engine, cameras: Iterable[str], now: datetime, seen: dict[str, datetime]
) -> list[Silence]:
    """Configured cameras whose detector has been silent for `SILENT_AFTER`: a health row not
    rewritten since then (the process running it is gone), or one saying `failed` or `stalled`
    since the sweep first saw it so (`seen`, updated here: the row keeps no start of its state).
    A camera stopped on purpose, or a file that finished, is not silent."""
    now = _aware(now)
    wanted = set(cameras)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(CameraHealthRecord).where(CameraHealthRecord.camera.in_(wanted))).all()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    out = []
    for r in rows:
        if r.state in ("stopped", "finished"):
            seen.pop(r.camera, None)
            continue
        if now - r.updated_at > SILENT_AFTER:
            out.append(Silence(r.camera, r.updated_at, "stale"))
            seen.pop(r.camera, None)
        elif r.state in ("failed", "stalled"):
            since = seen.setdefault(r.camera, now)
            if now - since >= SILENT_AFTER:
                out.append(Silence(r.camera, since, r.state))
        else:
            seen.pop(r.camera, None)
    return out


@dataclass(frozen=True, slots=True)
class Miss:
    audit_id: int
    closed_at: datetime
    missed: dict[str, int]
    """Missed situations per `camera/type`."""


def recall_misses(engine: Engine, now: datetime) -> list[Miss]:
    """Recall audits closed within `LOOKBACK` whose marks of a watched type no alert matched."""
    now = _aware(now)
    a, w, m = RecallAuditRecord.__table__, RecallWindowRecord.__table__, RecallMarkRecord.__table__
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(a.c.id, a.c.closed_at, w.c.camera, w.c.watched, m.c.type)
                .join(w, w.c.audit_id == a.c.id)
                .join(m, m.c.window_id == w.c.id)
                .where(
                    a.c.state == "closed",
                    a.c.closed_at >= now - LOOKBACK,
                    w.c.reviewed_at.is_not(None),
                    m.c.matched_event.is_(None),
                )
                .order_by(a.c.id)
            ).all()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    found: dict[int, Miss] = {}
    for r in rows:
        if r.type not in (r.watched or ()):
            continue  # a type the camera was not set to detect is not a miss (recall's `unwatched`)
        miss = found.setdefault(int(r.id), Miss(int(r.id), r.closed_at, {}))
        key = f"{r.camera}/{r.type}"
        miss.missed[key] = miss.missed.get(key, 0) + 1
    return list(found.values())


def flood_suspensions(engine: Engine, now: datetime) -> list[Any]:
    """Suspensions the system placed itself (alert flood, precision floor) within `LOOKBACK`."""
    now = _aware(now)
    s = SuspensionRecord.__table__
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    select(s).where(
                        and_(
                            s.c.started_by == SYSTEM, s.c.started_at >= now - LOOKBACK, s.c.started_at <= now
                        )
                    )
                ).all()
            )
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None


class IncidentSweep:
    """The minutely chore that opens incidents from what the site measures (added by
    `lanterne.runtime.runner.site_retention`, so one process of a site runs it). Silent cameras,
    recall misses and self-suspensions are looked at every call; dismissal spikes every
    `SPIKE_EVERY`. A failure raises a `LanterneError` (the runner logs it and tries again)."""

    def __init__(self, engine: Engine, audit: AuditLog, cfg: Config) -> None:
        self.engine = engine
        self.audit = audit
        self.incidents = Incidents(engine, audit)
        self.cameras = [c.id for c in cfg.cameras]
        self._seen: dict[str, datetime] = {}
        self._silent: set[str] = set()
        self._spikes_at: datetime | None = None

    def __call__(self, now: datetime) -> list[Incident]:
        now = _aware(now)
        # What is opened is stamped with the sweep's time, the one the symptoms were measured at.
        self.incidents = Incidents(self.engine, self.audit, clock=lambda: now)
        opened: list[Incident] = []
        opened += self._silences(now)
        opened += self._recall(now)
        opened += self._suspensions(now)
        if self._spikes_at is None or now - self._spikes_at >= SPIKE_EVERY:
            self._spikes_at = now
            opened += self._spikes(now)
        return opened

    def _silences(self, now: datetime) -> list[Incident]:
        out = []
        silent = silent_cameras(self.engine, self.cameras, now, self._seen)
        for s in silent:
            what = "has written no health report" if s.state == "stale" else f"has been {s.state}"
            minutes = int((now - s.since).total_seconds() // 60)
            incident, new = self.incidents.open(
                "detector_silent",
                f"camera {s.camera}: detector silent",
                f"Camera {s.camera} {what} since {_when(s.since)} ({minutes} min): its detector analyses "
                "nothing and raises no alert.",
                by=SYSTEM,
                cameras=[s.camera],
                detected_at=now,
                dedupe_key=f"detector_silent:{s.camera}",
                evidence={"camera": s.camera, "since": s.since.isoformat(), "health": s.state},
            )
            if new:
                out.append(incident)
        back = self._silent - {s.camera for s in silent}
        for camera in sorted(back):
            # Said once on the timeline; the owner closes it once the cause is known.
            for i in self.incidents.list(state="open", kind="detector_silent"):
                if camera in i.cameras:
                    self.incidents.add_evidence(
                        i.id,
                        f"camera {camera} reports again at {_when(now)}",
                        {"camera": camera, "back_at": now.isoformat()},
                    )
        self._silent = {s.camera for s in silent}
        return out

    def _recall(self, now: datetime) -> list[Incident]:
        out = []
        for miss in recall_misses(self.engine, now):
            total = sum(miss.missed.values())
            listed = ", ".join(f"{k}: {n}" for k, n in sorted(miss.missed.items()))
            incident, new = self.incidents.open(
                "recall_miss",
                f"recall audit {miss.audit_id}: {total} situation{'s' if total != 1 else ''} missed",
                f"The blinded recall audit {miss.audit_id}, closed {_when(miss.closed_at)}, found situations "
                f"the system did not alert on cameras set to detect them ({listed}).",
                by=SYSTEM,
                cameras=[k.split("/")[0] for k in miss.missed],
                detectors=[k.split("/")[1] for k in miss.missed],
                detected_at=min(now, miss.closed_at),
                dedupe_key=f"recall_miss:{miss.audit_id}",
                once=True,
                evidence={"recall_audit": miss.audit_id, "missed": miss.missed},
            )
            if new:
                out.append(incident)
        return out

    def _suspensions(self, now: datetime) -> list[Incident]:
        out = []
        for s in flood_suspensions(self.engine, now):
            what = (
                f"{s.details.get('alerts')} alerts in an hour (limit {s.details.get('max_alerts_per_hour')})"
                if s.cause == "alert_rate"
                else f"precision {s.details.get('precision')} over its last {s.details.get('decisions')} decisions"
            )
            incident, new = self.incidents.open(
                "false_alarm_spike",
                f"camera {s.camera}: {s.type} suspended itself",
                f"The {s.type} detector on camera {s.camera} suspended itself at {_when(s.started_at)}: {what}.",
                by=SYSTEM,
                cameras=[s.camera],
                detectors=[s.type],
                detected_at=min(now, s.started_at),
                dedupe_key=f"suspension:{s.id}",
                once=True,
                evidence={"suspension": int(s.id), "cause": s.cause, **dict(s.details or {})},
            )
            if new:
                out.append(incident)
        return out

    def _spikes(self, now: datetime) -> list[Incident]:
        out = []
        usual_hours = SPIKE_HISTORY.total_seconds() / 3600
        for sp in spikes(self.engine, now):
            usual = sp.history / usual_hours
            incident, new = self.incidents.open(
                "false_alarm_spike",
                f"camera {sp.camera}: {sp.type} dismissals spike",
                f"Operators dismissed {sp.dismissed} {sp.type} alerts of camera {sp.camera} in the hour to "
                f"{_when(now)}, against {usual:.2f} an hour over the previous {SPIKE_HISTORY.days} days.",
                by=SYSTEM,
                cameras=[sp.camera],
                detectors=[sp.type],
                detected_at=now,
                dedupe_key=f"false_alarm_spike:{sp.camera}/{sp.type}",
                evidence={
                    "dismissed": sp.dismissed,
                    "history": sp.history,
                    "history_days": SPIKE_HISTORY.days,
                },
            )
            if new:
                out.append(incident)
        return out


# --- breaches found by the audit log's verification -------------------------------------------------


def open_breach(
    engine: Engine, audit: AuditLog, problem: str, first_bad_seq: int | None, *, now: datetime | None = None
) -> tuple[Incident, bool]:
    """Open the breach incident for what `lanterne audit verify` found (its one-line problem),
    `(incident, True)`. A finding already recorded returns its incident, even closed: the log
    stays broken after the breach is handled, and each verify must not open another. A new
    finding while an audit-log breach is open becomes evidence on it: every record written since
    (this incident's own included) moves the tail, so the same tampering reads differently later
    ("records 6-8 missing", then "records 7-8 missing")."""
    digest = hashlib.sha256(problem.encode()).hexdigest()[:32]
    key = BREACH_KEY + digest
    register = Incidents(engine, audit, clock=(lambda: now) if now is not None else _now)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(_I.c.id, _I.c.state, _I.c.dedupe_key)
                .where(_I.c.kind == "breach", _I.c.dedupe_key.like(BREACH_KEY + "%"))
                .order_by(_I.c.id.desc())
            ).all()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    same = next((r for r in rows if r.dedupe_key == key), None)
    if same is not None:
        return register.get(int(same.id)), False
    ongoing = next((r for r in rows if r.state == "open"), None)
    if ongoing is not None:
        current = register.get(int(ongoing.id))
        if any(e.details.get("finding") == digest for e in current.entries):
            return current, False
        details = {"source": "audit verify", "first_bad_seq": first_bad_seq, "finding": digest}
        return register.add_evidence(
            current.id, f"lanterne audit verify: {problem}"[:TEXT_LIMIT], details
        ), False
    return register.open(
        "breach",
        "audit log altered or truncated",
        f"lanterne audit verify: {problem}"[:TEXT_LIMIT],
        by=SYSTEM,
        dedupe_key=key,
        once=True,
        evidence={"source": "audit verify", "first_bad_seq": first_bad_seq, "finding": digest},
    )


def sweep_for(cfg: Config, engine: Engine, audit: AuditLog) -> Callable[[datetime], object]:
    """The chore `site_retention` adds."""
    return IncidentSweep(engine, audit, cfg)
