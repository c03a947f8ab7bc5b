"""What the public is told (TR-01, TR-02, TR-04, PM-04): one immutable snapshot, built from the
configuration and the store, that the HTML page, the JSON and the GeoJSON all render.

Only facts about the *system* go in: where the cameras are, what they watch, under which
authorisation, which algorithms with which known limits, and monthly counts of alerts and of the
operators' verdicts per event type, all cameras together. Nothing about individuals: no event
rows, no images, no user ids (an authorisation's author or revoker is an agent's id, so the
register leaves it out), no free text an operator typed.

>>> from datetime import UTC, datetime
>>> from lanterne.config import parse_config
>>> from lanterne.store import Store
>>> cfg = parse_config({"cameras": [{"id": "c1", "source": "a.mp4", "location": {"lat": 48.85, "lon": 2.35}}]})
>>> data = public_data(cfg, Store.open("sqlite://").engine, datetime(2026, 6, 1, tzinfo=UTC))
>>> data.cameras[0].status
'statistics only'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from lanterne.accountability.equity import EquityReport, equity_report
from lanterne.accountability.governance import model_in_use
from lanterne.accountability.operations import PublicTypeFigures
from lanterne.accountability.quarterly import Indicator, quarter_to_date
from lanterne.config import Config, config_hash
from lanterne.config.schema import Mode
from lanterne.core.assets import MODELS
from lanterne.core.types import EventType
from lanterne.rules import DETECTOR_TYPES, EVENTS
from lanterne.rules.envelope import ENVELOPES, Envelope
from lanterne.store.tables import AuditCheckpointRecord, SuspensionRecord

SIGNED_HEAD_DAYS = 31
"""How many days of signed audit heads the page lists; older ones live on in copies of it."""

STATISTICS_ONLY = "statistics only"
ALERTS = "alerts"


def doc_path(event_type: EventType) -> str:
    """Where the full description of an event type lies in the Lanterne source."""
    return f"docs/events/{event_type}.md"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AuthorisationRef:
    """An authorisation as the public sees it: the act, not the agents who recorded it."""

    reference: str
    legal_basis: str
    authority: str
    valid_from: str
    valid_until: str
    """Exclusive end, ISO 8601 UTC."""
    event_types: tuple[str, ...]


@dataclass(frozen=True)
class EnvelopeStatus:
    """Where a camera stands against one detector's operating envelope (EV-05). The figures and
    the reasons are measurements; an override's reason is an agent's free text, so the page says
    only that there is one."""

    event_type: str
    status: str
    """`inside`, `outside`, `undetermined` or `not_checked`."""
    reasons: tuple[str, ...]
    overridden: bool
    checked_at: str | None


@dataclass(frozen=True)
class CameraInfo:
    id: str
    name: str
    lat: float
    lon: float
    watched: tuple[str, ...]
    """Event types its zones are configured to watch."""
    alerting: tuple[str, ...]
    """Of those, the ones that may raise alerts now: mode `alerts`, covered by an authorisation in
    force, not suspended. Everything else on this camera only counts."""
    suspended: tuple[str, ...]
    """Detectors switched off on this camera pending a supervisor's review (HO-04, PM-05)."""
    authorisations: tuple[AuthorisationRef, ...]
    """The authorisations in force now that name this camera."""
    zones: tuple[str, ...]
    envelope: tuple[EnvelopeStatus, ...] = ()
    """Per watched type, the camera's latest envelope check (EV-05)."""

    @property
    def status(self) -> str:
        return ALERTS if self.alerting else STATISTICS_ONLY


@dataclass(frozen=True)
class ModelInfo:
    name: str
    file: str
    sha256: str
    origin: str
    """The pinned public address the file comes from (a commit, so the version is fixed)."""
    licence: str
    role: str


@dataclass(frozen=True)
class AlgorithmInfo:
    event_type: str
    title: str
    method: str
    model: str | None
    """Name of the learned model the rule reads, None for the classical methods."""
    known_limits: tuple[str, ...]
    doc: str
    envelope: tuple[str, ...] = ()
    """The conditions the detector was measured under (EV-05), one line each."""


@dataclass(frozen=True)
class MonthFigure:
    month: str
    event_type: str
    alerts: int
    confirmed: int
    dismissed: int
    pending: int
    """Alerts nobody has confirmed or dismissed yet."""
    confirmed_share: float | None
    """confirmed ÷ (confirmed + dismissed); None when nothing was decided."""
    interval: tuple[float, float] | None
    """95 % Wilson interval of the confirmed share: with few decisions the share alone overstates
    what is known (PM-02)."""
    reasons: dict[str, int]
    """Dismissals per reason code."""


@dataclass(frozen=True)
class RegisterEntry:
    reference: str
    legal_basis: str
    authority: str
    valid_from: str
    valid_until: str
    cameras: tuple[str, ...]
    camera_count: int
    event_types: tuple[str, ...]
    impact_assessments: tuple[str, ...]
    state: str
    """`active`, `upcoming`, `expired` or `revoked`, as of the page's time."""
    revoked_at: str | None
    manifestation: str | None = None
    responsible_service: str | None = None
    recipients: tuple[str, ...] | None = None
    """The services the act lets alerts and exports go to (AC-06); None: not recorded."""


@dataclass(frozen=True)
class SignedHead:
    """The audit log's last signed checkpoint of a day, published as Certificate Transparency
    logs publish their tree heads: once a copy of the page exists anywhere, a log shortened
    below `seq` or rewritten before it no longer matches what the public saw. A count and hashes,
    nothing about who did what."""

    day: str
    seq: int
    chain_hash: str
    signed_at: str
    key_id: str
    signature: str


@dataclass(frozen=True)
class RecallRow:
    """One detector's recall measured by blinded audits (PM-03), beside its precision over the
    same days: precision says how often an alert was right, recall how much was caught."""

    event_type: str
    windows: int
    """Reviewed windows of cameras set to detect this type."""
    marks: int
    """Situations of this type the reviewers saw in them."""
    found: int
    """Of those, the ones the system alerted."""
    recall: float | None
    """found ÷ marks; None when nobody saw such a situation (unknown, not 0)."""
    interval: tuple[float, float] | None
    """95 % Wilson interval of the recall."""
    precision: float | None
    """Confirmed ÷ decided alerts of this type over the same days, all cameras."""
    precision_interval: tuple[float, float] | None
    decided: int


@dataclass(frozen=True)
class RecallSummary:
    """The blinded recall audits closed in the last `days` days, and how many are still open (an
    audit is published once closed; one left open is counted, so none disappears unseen)."""

    audits: int = 0
    windows: int = 0
    open_audits: int = 0
    days: int = 365
    rows: tuple[RecallRow, ...] = ()


@dataclass(frozen=True)
class IncidentMonth:
    """How many incidents of one kind were opened in a month: no title, camera or text, which
    the register keeps for the DPO and the authority."""

    month: str
    kind: str
    opened: int


@dataclass(frozen=True)
class ComplaintFigure:
    """How many complaints about the system of one category are in one state (GV-07): no date,
    channel or text, which the record keeps for the overseers."""

    category: str
    title: str
    state: str
    count: int


@dataclass(frozen=True)
class PublicData:
    site: str
    generated_at: str
    config_sha256: str
    mode: str
    controller: str
    dpo_contact: str
    purposes: tuple[str, ...]
    rights: str
    evidence_retention_days: int
    audit_retention_days: int
    legal_end_date: str | None
    cameras: tuple[CameraInfo, ...]
    algorithms: tuple[AlgorithmInfo, ...]
    models: tuple[ModelInfo, ...]
    monthly: tuple[MonthFigure, ...]
    register: tuple[RegisterEntry, ...]
    signed_heads: tuple[SignedHead, ...] = ()
    """Newest day first, the last `SIGNED_HEAD_DAYS` days with a checkpoint."""
    recall: RecallSummary = RecallSummary()
    """Misses measured by blinded review of sampled footage (PM-03), only from closed audits."""
    equity: EquityReport | None = None
    """Alerts per 1,000 camera-hours by neighbourhood (RK-02), small counts hidden."""
    incidents: tuple[IncidentMonth, ...] = ()
    """Incidents opened per month and kind (RK-05, SC-05), newest month first: counts only."""
    operations_since: str | None = None
    """Start of the quarter `operations` and `evaluation` cover, up to `generated_at` (PM-01, PM-07)."""
    operations: tuple[PublicTypeFigures, ...] = ()
    """Per event type this quarter: alerts, decisions and the follow-up split, small cells hidden."""
    evaluation: tuple[Indicator, ...] = ()
    """The indicators of décret 2023-939 art. 4 this quarter, or why one cannot be computed."""
    complaints: tuple[ComplaintFigure, ...] = ()
    """Complaints recorded since the record began, per category and state (GV-07): counts only."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; camera status is a property, so it is added here."""
        out = dataclasses.asdict(self)
        for cam, info in zip(out["cameras"], self.cameras, strict=True):
            cam["status"] = info.status
        return out


def _watched(cfg: Config) -> dict[str, tuple[EventType, ...]]:
    out: dict[str, tuple[EventType, ...]] = {}
    for cam in cfg.cameras:
        types: dict[EventType, None] = {}
        for zone in cam.zones:
            types.update(dict.fromkeys(zone.events.enabled()))
        out[cam.id] = tuple(t for t in EventType if t in types)
    return out


def _suspended(engine: Engine) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(SuspensionRecord.camera, SuspensionRecord.type).where(SuspensionRecord.lifted_at.is_(None))
        ).all()
    for r in rows:
        out.setdefault(r.camera, set()).add(r.type)
    return out


def _models(cfg: Config) -> tuple[ModelInfo, ...]:
    detector, _ = model_in_use(cfg)
    roles = {
        detector: "Object detector (persons, vehicles, bags): boxes with a class and a score, nothing else.",
        "yunet": "Finds faces only to pixelate them in saved snapshots and clips; never recognises anyone.",
        "lpd_yunet": "Finds licence plates only to pixelate them in saved snapshots and clips; never reads them.",
    }
    return tuple(
        ModelInfo(name=a.name, file=a.filename, sha256=a.sha256, origin=a.url, licence=a.licence, role=role)
        for name, role in roles.items()
        if (a := MODELS.get(name)) is not None
    )


def _algorithms(cfg: Config, types: set[EventType]) -> tuple[AlgorithmInfo, ...]:
    return tuple(
        AlgorithmInfo(
            event_type=str(t),
            title=EVENTS[t].title,
            method=EVENTS[t].method,
            model=model_in_use(cfg)[0] if t in DETECTOR_TYPES else None,
            known_limits=EVENTS[t].known_limits,
            doc=doc_path(t),
            envelope=_envelope_lines(ENVELOPES[t]) if t in ENVELOPES else (),
        )
        for t in EventType
        if t in types
    )


def _envelope_lines(e: Envelope) -> tuple[str, ...]:
    lines = []
    if e.min_person_px is not None:
        lines.append(f"people at least {e.min_person_px.value:g} pixels high in the zone")
    lines.append(f"light: mean luma of the picture at least {e.min_luma.value:g} of 255")
    lines.append(f"analysis at {e.min_fps.value:g} frames per second or more")
    lines.append(f"picture at least {e.min_frame_height.value:g} pixels high")
    return tuple(lines)


def _rounded(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if interval is None else (round(interval[0], 4), round(interval[1], 4))


def _monthly(engine: Engine, now: datetime) -> tuple[MonthFigure, ...]:
    from lanterne.accountability.precision import monthly_stats, wilson_interval

    out = []
    for m in monthly_stats(engine, now):
        decided = m.confirmed + m.dismissed
        out.append(
            MonthFigure(
                month=m.month,
                event_type=str(m.type),
                alerts=m.alerts,
                confirmed=m.confirmed,
                dismissed=m.dismissed,
                pending=max(m.alerts - decided, 0),
                confirmed_share=round(m.confirmed / decided, 4) if decided else None,
                interval=_rounded(wilson_interval(m.confirmed, decided)),
                reasons=dict(m.reasons),
            )
        )
    # Newest month first: the page is read for what happens now.
    return tuple(sorted(out, key=lambda f: (f.month, f.event_type), reverse=True))


def _signed_heads(engine: Engine, now: datetime) -> tuple[SignedHead, ...]:
    """Each day's last checkpoint, read newest first by primary key and stopped at the first one
    older than the window: the table has no index on time, and a busy log signs every minute."""
    cp = AuditCheckpointRecord.__table__
    since = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=SIGNED_HEAD_DAYS - 1)
    out: dict[str, SignedHead] = {}
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=500).execute(
            select(cp.c.seq, cp.c.ts, cp.c.chain_hash, cp.c.key_id, cp.c.signature).order_by(cp.c.id.desc())
        )
        for r in rows:
            if r.ts < since:
                break
            if r.ts > now:
                continue
            day = r.ts.astimezone(UTC).date().isoformat()
            if day not in out or r.seq > out[day].seq:
                out[day] = SignedHead(
                    day=day,
                    seq=r.seq,
                    chain_hash=r.chain_hash,
                    signed_at=r.ts.astimezone(UTC).isoformat(timespec="microseconds"),
                    key_id=r.key_id,
                    signature=r.signature,
                )
        rows.close()
    return tuple(out[d] for d in sorted(out, reverse=True))


def _recall(engine: Engine, now: datetime) -> RecallSummary:
    from lanterne.accountability.precision import precision_table, wilson_interval
    from lanterne.accountability.recall import PUBLISHED_DAYS, published_recall

    published = published_recall(engine, now, PUBLISHED_DAYS)
    decided: dict[str, list[int]] = {}
    for p in precision_table(engine, now, days=PUBLISHED_DAYS):
        tally = decided.setdefault(str(p.type), [0, 0])
        tally[0] += p.confirmed
        tally[1] += p.decided
    rows = []
    for f in published.by_type:
        confirmed, n = decided.get(f.key, [0, 0])
        rows.append(
            RecallRow(
                event_type=f.key,
                windows=f.windows,
                marks=f.marks,
                found=f.found,
                recall=round(f.recall, 4) if f.recall is not None else None,
                interval=_rounded(f.interval),
                precision=round(confirmed / n, 4) if n else None,
                precision_interval=_rounded(wilson_interval(confirmed, n)),
                decided=n,
            )
        )
    return RecallSummary(
        audits=published.audits,
        windows=published.windows,
        open_audits=published.open_audits,
        days=PUBLISHED_DAYS,
        rows=tuple(rows),
    )


def public_data(cfg: Config, engine: Engine, now: datetime) -> PublicData:
    """The public notice as of `now` (timezone-aware), read live from the configuration and the store."""
    from lanterne.accountability.authorisation import Authorisations
    from lanterne.audit import AuditLog

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    # Reading the register never writes the audit log: the AuditLog here is only the
    # constructor's required companion, used by add/revoke.
    register = Authorisations(engine, AuditLog(engine), cfg.legal_end_date)
    everything = register.list()
    in_force = register.active(now)
    from lanterne.accountability.envelope import status_of

    suspended = _suspended(engine)
    watched = _watched(cfg)
    envelopes = status_of(AuditLog(engine), cfg.cameras)

    cameras = []
    for cam in cfg.cameras:
        covering = [a for a in in_force if cam.id in a.cameras]
        paused = suspended.get(cam.id, set())
        checks = envelopes.get(cam.id, {})
        alerting = (
            tuple(
                str(t)
                for t in watched[cam.id]
                if str(t) not in paused
                and any(t in a.event_types for a in covering)
                and (t not in checks or checks[t].may_alert)
            )
            if cfg.mode is Mode.ALERTS
            else ()
        )
        cameras.append(
            CameraInfo(
                id=cam.id,
                name=cam.name or cam.id,
                lat=cam.location.lat,
                lon=cam.location.lon,
                watched=tuple(str(t) for t in watched[cam.id]),
                alerting=alerting,
                suspended=tuple(sorted(paused)),
                authorisations=tuple(
                    AuthorisationRef(
                        reference=a.reference,
                        legal_basis=a.legal_basis,
                        authority=a.authority,
                        valid_from=_iso(a.valid_from),
                        valid_until=_iso(a.valid_until),
                        event_types=tuple(str(t) for t in a.event_types),
                    )
                    for a in sorted(covering, key=lambda a: (a.valid_until, a.reference))
                ),
                zones=tuple(z.id for z in cam.zones),
                envelope=tuple(
                    EnvelopeStatus(
                        event_type=str(t),
                        status=s.status,
                        reasons=s.reasons,
                        overridden=s.overridden,
                        checked_at=_iso(s.checked_at) if s.checked_at is not None else None,
                    )
                    for t, s in checks.items()
                ),
            )
        )

    all_watched = {t for types in watched.values() for t in types}
    quarter_start, quarter_figures, indicators = quarter_to_date(cfg, engine, now, everything)
    return PublicData(
        site=cfg.site,
        generated_at=_iso(now),
        config_sha256=config_hash(cfg),
        mode=str(cfg.mode),
        controller=cfg.public.controller,
        dpo_contact=cfg.public.dpo_contact,
        purposes=tuple(cfg.public.purposes),
        rights=cfg.public.rights,
        evidence_retention_days=cfg.retention.evidence_days,
        audit_retention_days=cfg.audit.retention_days,
        legal_end_date=cfg.legal_end_date.isoformat() if isinstance(cfg.legal_end_date, date) else None,
        cameras=tuple(cameras),
        algorithms=_algorithms(cfg, all_watched),
        models=_models(cfg),
        monthly=_monthly(engine, now),
        register=tuple(
            RegisterEntry(
                reference=a.reference,
                legal_basis=a.legal_basis,
                authority=a.authority,
                valid_from=_iso(a.valid_from),
                valid_until=_iso(a.valid_until),
                cameras=a.cameras,
                camera_count=len(a.cameras),
                event_types=tuple(str(t) for t in a.event_types),
                impact_assessments=a.impact_assessments,
                state=a.state(now),
                revoked_at=_iso(a.revoked_at) if a.revoked_at is not None and a.revoked_at <= now else None,
                manifestation=a.manifestation,
                responsible_service=a.responsible_service,
                recipients=a.recipients,
            )
            for a in everything
        ),
        signed_heads=_signed_heads(engine, now),
        recall=_recall(engine, now),
        equity=equity_report(cfg, engine, now),
        incidents=_incidents(engine, now),
        operations_since=quarter_start,
        operations=quarter_figures,
        evaluation=indicators,
        complaints=_complaints(engine),
    )


def _incidents(engine: Engine, now: datetime) -> tuple[IncidentMonth, ...]:
    from lanterne.accountability.incidents import monthly_counts

    return tuple(IncidentMonth(m.month, m.kind, m.opened) for m in monthly_counts(engine, now))


def _complaints(engine: Engine) -> tuple[ComplaintFigure, ...]:
    from lanterne.accountability.complaints import CATEGORY_TITLES, counts

    return tuple(
        ComplaintFigure(c.category, CATEGORY_TITLES[c.category], c.state, c.count) for c in counts(engine)
    )
