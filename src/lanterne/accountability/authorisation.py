"""Deployment authorisations: the legal switch of algorithmic alerting (loi 2023-380 art. 10).

Outside a recorded authorisation Lanterne may only count (CNIL, 19 July 2022). An authorisation
names a legal basis, the authority that issued it, a validity window, a camera perimeter and the
event types allowed there. A detector alerts on a camera only while one covers that camera and
that event type (LB-01); at the end date alerting stops by itself (LB-02) and the camera falls back
to statistics-only. A site-wide legal end date caps every authorisation (LB-03).

Dates are never edited: a renewal is a new record with a new reference, so the register shows
what was authorised when, and revocation only ever shortens an authorisation.

>>> from datetime import UTC, datetime
>>> a = Authorisation(
...     reference="AP-2026-001", legal_basis="Loi 2023-380 art. 10", authority="Préfecture",
...     valid_from=datetime(2026, 6, 1, tzinfo=UTC), valid_until=datetime(2026, 9, 1, tzinfo=UTC),
...     cameras=("gare-nord",), event_types=(EventType.ZONE_INTRUSION,))
>>> a.covers("gare-nord", EventType.ZONE_INTRUSION, datetime(2026, 7, 14, tzinfo=UTC))
True
>>> a.covers("gare-nord", EventType.ZONE_INTRUSION, datetime(2026, 9, 1, tzinfo=UTC))
False
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lanterne.accountability.fria import NO_DPIA, NO_FRIA
from lanterne.core.errors import LanterneError
from lanterne.core.types import EventType
from lanterne.store.db import describe_failure
from lanterne.store.tables import AuthorisationRecord

if TYPE_CHECKING:
    from lanterne.audit import Action, AuditLog
    from lanterne.config.schema import Config

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

LEGAL_TIMEZONE = ZoneInfo("Europe/Paris")
"""French texts end "le 31 mars 2025" at midnight in metropolitan France, not in UTC: reading the
legal end date in Paris time stops alerting two hours earlier in summer than a UTC reading would,
never later."""

SYSTEM_USER = "system"

_LACKING = {NO_DPIA: "no DPIA link", NO_FRIA: "no recorded FRIA"}


class AuthorisationError(LanterneError):
    """An authorisation that cannot be recorded or changed as asked."""


class RecipientError(AuthorisationError):
    """A transmission to a service that no authorisation in force names (AC-06)."""


def _now() -> datetime:
    return datetime.now(UTC)


def legal_end_instant(legal_end_date: date) -> datetime:
    """The first instant after the legal end date (the date itself is still covered), in UTC.

    >>> legal_end_instant(date(2025, 3, 31)).isoformat()
    '2025-03-31T22:00:00+00:00'
    """
    midnight = datetime.combine(legal_end_date + timedelta(days=1), time(0), tzinfo=LEGAL_TIMEZONE)
    return midnight.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise AuthorisationError(f"{name} {value.isoformat()} has no time zone; give it with one, e.g. 'Z'")
    return value.astimezone(UTC)


def parse_event_type(name: str | EventType) -> EventType:
    """An event type from its name, refusing anything outside the closed list and `weapon`."""
    try:
        etype = EventType(str(name).strip())
    except ValueError:
        allowed = ", ".join(str(t) for t in EventType if t is not EventType.WEAPON)
        raise AuthorisationError(
            f"event type {str(name)!r} is not one of décret 2023-828 art. 3; use one of: {allowed}"
        ) from None
    if etype is EventType.WEAPON:
        raise AuthorisationError(
            "event type 'weapon' cannot be authorised: no validated weapon-detection model is installed; "
            "remove it from the list"
        )
    return etype


@dataclass(frozen=True, slots=True)
class Authorisation:
    """One deployment authorisation as recorded. Times are UTC-aware."""

    reference: str
    """The authorising act's reference, e.g. the prefectoral arrêté number; unique."""
    legal_basis: str
    authority: str
    valid_from: datetime
    valid_until: datetime
    """Exclusive: alerting stops at this instant."""
    cameras: tuple[str, ...]
    event_types: tuple[EventType, ...]
    impact_assessments: tuple[str, ...] = ()
    """Links or document references of the DPIA and other impact assessments."""
    created_by: str = ""
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    manifestation: str | None = None
    """The event (manifestation) the act is for, e.g. "Fête de la musique 2026" (LB-01)."""
    responsible_service: str | None = None
    """The service the act makes responsible for the processing (LB-01)."""
    recipients: tuple[str, ...] | None = None
    """Services alerts and exports may go to under this act (AC-06, CSI L252-3); None: recorded
    before recipients were kept, so it restricts nothing (`authorised_recipients`)."""

    def in_force(self, at: datetime) -> bool:
        """Within its dates and not revoked at `at` (a revocation ends it from then on only, so the
        register still says what was authorised before)."""
        if self.revoked_at is not None and at >= self.revoked_at:
            return False
        return self.valid_from <= at < self.valid_until

    def covers(self, camera: str, event_type: EventType, at: datetime) -> bool:
        return self.in_force(at) and camera in self.cameras and event_type in self.event_types

    def state(self, at: datetime) -> str:
        """`revoked`, `upcoming`, `active` or `expired`, for the register."""
        if self.revoked_at is not None and at >= self.revoked_at:
            return "revoked"
        if at < self.valid_from:
            return "upcoming"
        return "active" if at < self.valid_until else "expired"


def _from_row(r: Any) -> Authorisation:
    return Authorisation(
        reference=r.reference,
        legal_basis=r.legal_basis,
        authority=r.authority,
        valid_from=r.valid_from,
        valid_until=r.valid_until,
        cameras=tuple(r.cameras),
        event_types=tuple(EventType(t) for t in r.event_types),
        impact_assessments=tuple(r.impact_assessments),
        created_by=r.created_by,
        created_at=r.created_at,
        revoked_at=r.revoked_at,
        revoked_by=r.revoked_by,
        revoke_reason=r.revoke_reason,
        manifestation=r.manifestation,
        responsible_service=r.responsible_service,
        recipients=tuple(r.recipients) if r.recipients is not None else None,
    )


def _text(value: str, name: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise AuthorisationError(f"{name} is empty; give the {name.replace('_', ' ')} of the authorising act")
    if len(value) > limit:
        raise AuthorisationError(f"{name} is longer than {limit} characters; shorten it")
    return value


class Authorisations:
    """The register of deployment authorisations. Every change is written to the audit log."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        legal_end_date: date | None = None,
        *,
        clock: Clock = _now,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.legal_end_date = legal_end_date
        self.legal_end = legal_end_instant(legal_end_date) if legal_end_date is not None else None
        self._clock = clock

    def add(
        self,
        reference: str,
        *,
        legal_basis: str,
        authority: str,
        valid_from: datetime,
        valid_until: datetime,
        cameras: Iterable[str],
        event_types: Iterable[EventType | str],
        impact_assessments: Iterable[str] = (),
        user_id: str,
        manifestation: str | None = None,
        responsible_service: str | None = None,
        recipients: Iterable[str] | None = None,
    ) -> Authorisation:
        """Record a new authorisation (a renewal is a new one: dates are never edited, LB-02).
        `recipients` None: the act names none, and then it restricts no transmission (AC-06)."""
        reference = _text(reference, "reference", 128)
        legal_basis = _text(legal_basis, "legal_basis", 500)
        authority = _text(authority, "authority", 500)
        start = _aware(valid_from, "valid_from")
        end = _aware(valid_until, "valid_until")
        if end <= start:
            raise AuthorisationError(
                f"authorisation {reference}: valid_until {_iso(end)} is not after valid_from {_iso(start)}; "
                "swap or fix the dates"
            )
        if self.legal_end is not None and end > self.legal_end:
            raise AuthorisationError(
                f"authorisation {reference}: valid_until {_iso(end)} is after the site legal end date "
                f"{self.legal_end_date} (LB-03); end it on or before {self.legal_end_date}"
            )
        cams = tuple(dict.fromkeys(c.strip() for c in cameras if c.strip()))
        if not cams:
            raise AuthorisationError(f"authorisation {reference}: no camera; name at least one with --camera")
        types = tuple(dict.fromkeys(parse_event_type(t) for t in event_types))
        if not types:
            raise AuthorisationError(
                f"authorisation {reference}: no event type; name at least one with --event"
            )
        links = tuple(dict.fromkeys(a.strip() for a in impact_assessments if a.strip()))
        manifestation = _text(manifestation, "manifestation", 300) if manifestation is not None else None
        service = (
            _text(responsible_service, "responsible_service", 300)
            if responsible_service is not None
            else None
        )
        to = (
            tuple(dict.fromkeys(_text(r, "recipient", 256) for r in recipients))
            if recipients is not None
            else None
        )
        auth = Authorisation(
            reference=reference,
            legal_basis=legal_basis,
            authority=authority,
            valid_from=start,
            valid_until=end,
            cameras=cams,
            event_types=types,
            impact_assessments=links,
            created_by=user_id,
            created_at=self._clock(),
            manifestation=manifestation,
            responsible_service=service,
            recipients=to,
        )
        try:
            with self.engine.begin() as conn:
                exists = conn.execute(
                    select(AuthorisationRecord.reference).where(AuthorisationRecord.reference == reference)
                ).first()
                if exists is not None:
                    raise AuthorisationError(
                        f"authorisation {reference} already exists; a renewal needs a new reference"
                    )
                conn.execute(
                    insert(AuthorisationRecord).values(
                        reference=reference,
                        legal_basis=legal_basis,
                        authority=authority,
                        valid_from=start,
                        valid_until=end,
                        cameras=list(cams),
                        event_types=[str(t) for t in types],
                        impact_assessments=list(links),
                        created_by=user_id,
                        created_at=auth.created_at,
                        manifestation=manifestation,
                        responsible_service=service,
                        recipients=list(to) if to is not None else None,
                    )
                )
        except IntegrityError:
            # Another process recorded the same reference between our check and our insert.
            raise AuthorisationError(
                f"authorisation {reference} already exists; a renewal needs a new reference"
            ) from None
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        self._audited(
            lambda: self._audit_change(user_id, "add", auth),
            undo=delete(AuthorisationRecord).where(AuthorisationRecord.reference == reference),
        )
        return auth

    def revoke(self, reference: str, user_id: str, reason: str) -> Authorisation:
        """End an authorisation now, before its date (e.g. the event was cancelled)."""
        reason = _text(reason, "reason", 1000)
        current = self.get(reference)
        if current is None:
            raise AuthorisationError(
                f"authorisation {reference} does not exist; see `lanterne authorisation list`"
            )
        if current.revoked_at is not None:
            raise AuthorisationError(
                f"authorisation {reference} was already revoked on {_iso(current.revoked_at)}"
            )
        now = self._clock()
        try:
            with self.engine.begin() as conn:
                # The WHERE on revoked_at makes two concurrent revocations record only one.
                done = conn.execute(
                    update(AuthorisationRecord)
                    .where(
                        AuthorisationRecord.reference == reference, AuthorisationRecord.revoked_at.is_(None)
                    )
                    .values(revoked_at=now, revoked_by=user_id, revoke_reason=reason)
                ).rowcount
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        if done != 1:
            raise AuthorisationError(f"authorisation {reference} was revoked meanwhile by someone else")
        revoked = replace(current, revoked_at=now, revoked_by=user_id, revoke_reason=reason)
        self._audited(
            lambda: self._audit_change(user_id, "revoke", revoked),
            undo=update(AuthorisationRecord)
            .where(AuthorisationRecord.reference == reference)
            .values(revoked_at=None, revoked_by=None, revoke_reason=None),
        )
        return revoked

    def link_assessments(self, reference: str, links: Iterable[str], user_id: str) -> Authorisation:
        """Add impact-assessment references to a recorded authorisation (GV-01, GV-02): the DPIA
        link or the FRIA reference written after the act was recorded. The act itself, its dates
        and perimeter, is untouched and no link is ever removed; the addition is audited as
        `change: link_assessments` with the links `added`. Links already there are not repeated."""
        wanted = tuple(dict.fromkeys(x.strip() for x in links if x.strip()))
        if not wanted:
            raise AuthorisationError(
                f"authorisation {reference}: no link given; pass the DPIA link or the FRIA reference"
            )
        try:
            with self.engine.begin() as conn:
                # FOR UPDATE (PostgreSQL): two links added at once must not overwrite each other.
                row = conn.execute(
                    select(AuthorisationRecord)
                    .where(AuthorisationRecord.reference == reference)
                    .with_for_update()
                ).first()
                if row is None:
                    raise AuthorisationError(
                        f"authorisation {reference} does not exist; see `lanterne authorisation list`"
                    )
                current = _from_row(row)
                added = tuple(x for x in wanted if x not in current.impact_assessments)
                if added:
                    conn.execute(
                        update(AuthorisationRecord)
                        .where(AuthorisationRecord.reference == reference)
                        .values(impact_assessments=[*current.impact_assessments, *added])
                    )
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        if not added:
            return current
        linked = replace(current, impact_assessments=current.impact_assessments + added)
        self._audited(
            lambda: self._audit_change(user_id, "link_assessments", linked, added),
            undo=update(AuthorisationRecord)
            .where(AuthorisationRecord.reference == reference)
            .values(impact_assessments=list(current.impact_assessments)),
        )
        return linked

    def _audited(self, write: Callable[[], object], undo: object) -> None:
        """A change stands only once it is in the audit log: if the log refuses the record, the
        change is undone and the error raised, so no authorisation changes unrecorded."""
        try:
            write()
        except BaseException:
            with self.engine.begin() as conn:
                conn.execute(undo)  # type: ignore[call-overload]
            raise

    def _audit_change(self, user_id: str, change: str, a: Authorisation, added: tuple[str, ...] = ()) -> None:
        from lanterne.audit import Action

        details: dict[str, object] = {
            "change": change,
            "cameras": list(a.cameras),
            "event_types": [str(t) for t in a.event_types],
            "legal_basis": a.legal_basis,
            "authority": a.authority,
            "impact_assessments": list(a.impact_assessments),
            "manifestation": a.manifestation,
            "responsible_service": a.responsible_service,
            "recipients": list(a.recipients) if a.recipients is not None else None,
        }
        if added:
            details["added"] = list(added)
        if change == "revoke":
            details["reason"] = a.revoke_reason
            details["revoked_at"] = _iso(a.revoked_at) if a.revoked_at else None
        self.audit.append(
            user_id,
            Action.AUTHORISATION_CHANGE,
            object_type="authorisation",
            object_id=a.reference,
            time_from=a.valid_from,
            time_to=a.valid_until,
            details=details,
        )

    def get(self, reference: str) -> Authorisation | None:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(AuthorisationRecord).where(AuthorisationRecord.reference == reference)
                ).first()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        return None if row is None else _from_row(row)

    def list(self) -> list[Authorisation]:
        """Every authorisation ever recorded, oldest start first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(AuthorisationRecord).order_by(
                        AuthorisationRecord.valid_from, AuthorisationRecord.reference
                    )
                ).all()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        return [_from_row(r) for r in rows]

    def within_legal_end(self, at: datetime) -> bool:
        return self.legal_end is None or at < self.legal_end

    def active(self, at: datetime | None = None) -> list[Authorisation]:
        """The authorisations in force at `at` (now by default). None after the legal end date,
        even one recorded before that date was set."""
        at = self._clock() if at is None else _aware(at, "at")
        if not self.within_legal_end(at):
            return []
        return [a for a in self.list() if a.in_force(at)]

    def covering(
        self, camera: str, event_type: EventType, at: datetime | None = None
    ) -> Authorisation | None:
        """The authorisation that allows `event_type` on `camera` at `at`, or None. When several
        do, the one lasting longest, whose reference stays valid in the audit record longest."""
        at = self._clock() if at is None else _aware(at, "at")
        found = [a for a in self.active(at) if a.covers(camera, event_type, at)]
        return max(found, key=lambda a: (a.valid_until, a.reference)) if found else None

    def authorised_recipients(self, at: datetime | None = None) -> frozenset[str] | None:
        """The services the authorisations in force at `at` let alerts and exports go to (AC-06),
        or None when none of them names its recipients (acts recorded before they were kept, or
        no act in force): then no list exists to check against, which `check_recipients` says."""
        lists = [a.recipients for a in self.active(at) if a.recipients is not None]
        return frozenset(r for names in lists for r in names) if lists else None

    def check_recipients(
        self, recipients: Iterable[str], *, channel: str, user_id: str, at: datetime | None = None
    ) -> None:
        """Refuse, on the record, a transmission to a service no authorisation in force names
        (AC-06, CSI L252-3): `channel` is `outbound` (a configured destination) or `export`. The
        refusal is an audit record `recipient_refused` naming the recipients and the channel,
        written before `RecipientError` is raised with one line naming the fix."""
        from lanterne.audit import Action

        at = self._clock() if at is None else _aware(at, "at")
        allowed = self.authorised_recipients(at)
        if allowed is None:
            return
        refused = sorted(dict.fromkeys(r for r in recipients if r not in allowed))
        if not refused:
            return
        self.audit.append(
            user_id,
            Action.RECIPIENT_REFUSED,
            object_type=channel,
            object_id=refused[0][:128],
            details={"channel": channel, "refused": refused, "authorised": sorted(allowed)},
        )
        names = ", ".join(repr(r) for r in refused)
        raise RecipientError(
            f"{channel} recipient {names} is not named by an authorisation in force (AC-06, CSI L252-3; "
            f"authorised: {', '.join(sorted(allowed)) or 'none'}); record an authorisation naming it "
            "with `lanterne authorisation add … --recipient NAME`, or send nothing to it"
        )


def _coverage(
    auths: Iterable[Authorisation], camera: str, watched: Collection[EventType], at: datetime
) -> dict[EventType, Authorisation]:
    """For each watched type covered on `camera` at `at`, the authorisation lasting longest."""
    out: dict[EventType, Authorisation] = {}
    for a in auths:
        if camera not in a.cameras or not a.in_force(at):
            continue
        for t in a.event_types:
            if t in watched and (
                t not in out or (a.valid_until, a.reference) > (out[t].valid_until, out[t].reference)
            ):
                out[t] = a
    return out


_NEVER_BEFORE = datetime.min.replace(tzinfo=UTC)
_NEVER_AFTER = datetime.max.replace(tzinfo=UTC)


REFRESH_SECONDS = 5.0
"""How often a gate reads the register when nobody tells it of a change (see `changed`)."""


class AlertingGate:
    """Answers, for one camera, whether a rule may run now; switches alerting on and off by itself.

    `allowed` is called for every rule on every analysed frame, so it answers from a cache: the
    register is read at most every `refresh_seconds` (to see revocations and new authorisations),
    and the cache also expires at the next known boundary (an authorisation's start or end, the
    legal end date), so an authorisation ends on the frame it ends, not up to a refresh later.
    Between those instants a call is one clock read, one comparison and one set lookup.

    The clock, not the stream time, decides: an authorisation governs when the processing
    happens, and a replayed file is processed now.

    If the register cannot be read, the last list read goes on being applied (so known end dates
    still end alerting) and the read is retried at the next refresh. Switching on is never done
    unrecorded: if the ALERTING_ON record cannot be written, the types stay off until it can.

    With `assessments` (what `gates_for` gives in alerts mode), an authorisation counts only once
    it names both its DPIA and a recorded FRIA (GV-01, GV-02, `lanterne.accountability.fria`):
    the check is read with the register, so a FRIA linked while the camera runs switches alerting
    on at the next refresh, and an authorisation never checked counts for nothing.
    """

    def __init__(
        self,
        camera_id: str,
        authorisations: Authorisations,
        audit: AuditLog,
        legal_end_date: date | None,
        clock: Clock = _now,
        refresh_seconds: float = REFRESH_SECONDS,
        *,
        event_types: Iterable[EventType] | None = None,
        assessments: Callable[[Sequence[Authorisation]], Mapping[str, tuple[str, ...]]] | None = None,
    ) -> None:
        """`event_types`: the types the camera's zones watch (default: all but weapon); only
        these are reported in the ALERTING_ON/OFF records, so the log says what actually runs.
        `assessments`: for the authorisations read, what each lacks (`no_dpia`, `no_fria`; none
        when it names both); None: authorisations are not asked for their assessments."""
        self.camera_id = camera_id
        self.authorisations = authorisations
        self.audit = audit
        self.legal_end = legal_end_instant(legal_end_date) if legal_end_date is not None else None
        self._clock = clock
        self.refresh = timedelta(seconds=refresh_seconds)
        self.watched: frozenset[EventType] = frozenset(
            event_types if event_types is not None else (t for t in EventType if t is not EventType.WEAPON)
        )
        self._known: list[Authorisation] = []
        self._assessments = assessments
        self._missing: Mapping[str, tuple[str, ...]] = {}
        self._allowed: frozenset[EventType] = frozenset()
        self._by_type: dict[EventType, Authorisation] = {}
        # Both start in the past so that the first call reads the register.
        self._next_check = self._next_read = _NEVER_BEFORE
        self._last_check = self._last_read = _NEVER_BEFORE
        self._started = False

    @property
    def allowed_types(self) -> frozenset[EventType]:
        return self._allowed

    def changed(self) -> None:
        """The register changed in another process (a worker heard the control bell): the next
        `allowed` reads it. Called from another thread; the worst a race costs is one more read."""
        self._next_read = self._next_check = _NEVER_BEFORE

    def allowed(self, event_type: EventType, t_stream: float) -> bool:
        """Whether rules of `event_type` may run on this camera now. `t_stream` is part of the
        pipeline's contract but unused: the clock decides (see the class docstring)."""
        now = self._clock()
        # A clock set back (NTP step, test) could otherwise freeze the cache until it catches up.
        if now >= self._next_check or now < self._last_check:
            self.check(now)
        return event_type in self._allowed

    def check(self, now: datetime | None = None) -> frozenset[EventType]:
        """Re-read the register if due, recompute the allowed types, record any change. The runner
        may call it at start so that alerting switching on is recorded before the first frame."""
        now = self._clock() if now is None else now
        self._last_check = now
        if now >= self._next_read or now < self._last_read:
            try:
                known = self.authorisations.list()
                missing = self._assessments(known) if self._assessments is not None else {}
            except LanterneError as exc:
                log.warning(
                    "camera %s: authorisations unreadable, applying the last ones read: %s",
                    self.camera_id,
                    exc,
                )
            else:
                # Both or neither: a list read without its check would count unchecked ones.
                self._known, self._missing = known, missing
            self._last_read = now
            self._next_read = now + self.refresh
        if self.legal_end is not None and now >= self.legal_end:
            coverage: dict[EventType, Authorisation] = {}
        else:
            usable = [a for a in self._known if not self._lacks(a)]
            coverage = _coverage(usable, self.camera_id, self.watched, now)
        self._apply(coverage, now)
        if not self._started:
            from lanterne.audit import Action

            # LB-01: a start at which watched types stay off is on the record, once, with why.
            self._started = True
            refused = self.watched - self._allowed
            for reason, (types, refs) in self._refusals(refused, now).items():
                details: dict[str, object] = {"event_types": sorted(types), "reason": reason}
                if refs:
                    details["authorisations"] = sorted(refs)
                    log.error(
                        "camera %s: authorisation %s names %s (GV-01, GV-02), no alerting for %s; link them: "
                        "lanterne fria link FRIA_REF --authorisation %s --dpia DPIA_URL --config SITE.yml",
                        self.camera_id,
                        ", ".join(sorted(refs)),
                        " and ".join(_LACKING[r] for r in reason.split(",")),
                        ", ".join(sorted(types)),
                        sorted(refs)[0],
                    )
                self._record(Action.ALERTING_REFUSED, details)
        self._next_check = min(self._next_read, self._boundary(now))
        return self._allowed

    def _lacks(self, a: Authorisation) -> tuple[str, ...]:
        """What `a` lacks before it may switch alerting on; () when nothing is asked of it."""
        if self._assessments is None:
            return ()
        return self._missing.get(a.reference, (NO_DPIA, NO_FRIA))

    def _refusals(self, refused: frozenset[EventType], now: datetime) -> dict[str, tuple[set[str], set[str]]]:
        """Why each refused type stays off, grouped by reason: the impact assessments its
        authorisations lack (`no_dpia`, `no_fria`, both), or `not_authorised`. Values: the
        types, and the authorisations that lack assessments."""
        out: dict[str, tuple[set[str], set[str]]] = {}
        in_force = self.legal_end is None or now < self.legal_end
        for t in refused:
            lacking = [
                a for a in self._known if in_force and a.covers(self.camera_id, t, now) and self._lacks(a)
            ]
            reason = ",".join(sorted({m for a in lacking for m in self._lacks(a)})) or "not_authorised"
            types, refs = out.setdefault(reason, (set(), set()))
            types.add(str(t))
            refs.update(a.reference for a in lacking)
        return out

    def _boundary(self, now: datetime) -> datetime:
        """The next instant at which coverage can change without a register change."""
        edges = [
            e
            for a in self._known
            if self.camera_id in a.cameras
            for e in (a.valid_from, a.valid_until, a.revoked_at)
            if e is not None and e > now
        ]
        if self.legal_end is not None and self.legal_end > now:
            edges.append(self.legal_end)
        return min(edges, default=_NEVER_AFTER)

    def _apply(self, coverage: dict[EventType, Authorisation], now: datetime) -> None:
        from lanterne.audit import Action

        new = frozenset(coverage)
        off = self._allowed - new
        on = new - self._allowed
        if off:
            # Switching off is always done, recorded or not: stopping alerts is never the risk.
            refs = sorted({self._by_type[t].reference for t in off if t in self._by_type})
            details = {
                "event_types": sorted(str(t) for t in off),
                "authorisations": refs,
                "reason": self._why_off(off, now),
                "still_allowed": sorted(str(t) for t in self._allowed & new),
            }
            self._allowed = self._allowed - off
            for t in off:
                self._by_type.pop(t, None)
            self._record(Action.ALERTING_OFF, details)
        if on:
            refs = sorted({coverage[t].reference for t in on})
            details = {
                "event_types": sorted(str(t) for t in on),
                "authorisations": refs,
                "allowed": sorted(str(t) for t in new),
            }
            if self._record(Action.ALERTING_ON, details):
                self._allowed = self._allowed | on
            else:
                # Retry soon rather than after a whole refresh: alerting stays off meanwhile.
                self._next_read = now
        for t in self._allowed:
            self._by_type[t] = coverage[t]

    def _why_off(self, off: frozenset[EventType], now: datetime) -> str:
        if self.legal_end is not None and now >= self.legal_end:
            return "legal_end_date"
        fresh = {a.reference: a for a in self._known}
        reasons = set()
        for t in off:
            old = self._by_type.get(t)
            a = fresh.get(old.reference) if old is not None else None
            if a is None:
                reasons.add("not_covered")
            elif a.revoked_at is not None and now >= a.revoked_at:
                reasons.add("revoked")
            elif now >= a.valid_until:
                reasons.add("expired")
            else:
                reasons.add("not_covered")
        return ",".join(sorted(reasons))

    def _record(self, action: Action, details: dict[str, object]) -> bool:
        try:
            self.audit.append(
                SYSTEM_USER,
                action,
                object_type="camera",
                object_id=self.camera_id,
                details=details,
            )
        except Exception as exc:  # the database may be down; alerting must not crash the camera
            log.error("camera %s: could not record %s: %s", self.camera_id, action, exc)
            return False
        log.info("camera %s: %s %s", self.camera_id, action, details["event_types"])
        return True


def watched_types(camera: object) -> frozenset[EventType]:
    """The event types a camera's zones are configured to watch."""
    zones = getattr(camera, "zones", ())
    return frozenset(t for z in zones for t in z.events.enabled())


def gates_for(
    cfg: Config,
    engine: Engine,
    audit: AuditLog,
    clock: Clock = _now,
    refresh_seconds: float = REFRESH_SECONDS,
) -> dict[str, AlertingGate]:
    """One gate per camera of the configuration, sharing one register.

    Every camera gets a gate, in every mode, so that a runner never falls back to "no gate, all
    allowed" by a missing key. In statistics mode the gates watch nothing and so never allow, and
    neither does the gate of a camera whose privacy masks nobody validated (LB-06,
    `lanterne.accountability.masks`): it is counted, never alerted on.

    In alerts mode, an authorisation counts only once it names its DPIA and a recorded FRIA
    (GV-01, GV-02; the gate records a start refused for want of them as `no_dpia`, `no_fria`), and
    when some camera may alert (masks validated, zones watching), the detector model, thresholds,
    zones and event types must each carry a signed governance record at their current hash
    (GV-05, `lanterne.accountability.governance`): otherwise `alerting_refused` is recorded for
    those cameras (`no_governance_record`) and `GovernanceError` refuses the start, one line. A
    type its camera's latest envelope check puts outside the detector's measured conditions, with
    no override, does not alert (EV-05, `lanterne.accountability.envelope`: `outside_envelope`).
    No risk of the register may be overdue for review (RK-01, `lanterne.accountability.risks`):
    otherwise `alerting_refused` (`risk_review_overdue`) and `RiskError` refuse the start, one line.
    """
    from lanterne.accountability.envelope import gate_refusals
    from lanterne.accountability.fria import assessment_check
    from lanterne.accountability.governance import NO_RECORD, Governance, GovernanceError, refusal
    from lanterne.accountability.masks import validated
    from lanterne.accountability.risks import OVERDUE as RISK_OVERDUE
    from lanterne.accountability.risks import RiskError, RiskRegister
    from lanterne.accountability.risks import refusal as risk_refusal
    from lanterne.audit import Action
    from lanterne.config.schema import Mode

    register = Authorisations(engine, audit, cfg.legal_end_date, clock=clock)
    alerting = cfg.mode is Mode.ALERTS
    checked = validated(audit, list(cfg.cameras)) if alerting else set()
    for cam in cfg.cameras:
        if alerting and cam.id not in checked:
            audit.append(
                SYSTEM_USER,
                Action.ALERTING_REFUSED,
                object_type="camera",
                object_id=cam.id,
                details={
                    "event_types": sorted(str(t) for t in watched_types(cam)),
                    "reason": "privacy_masks_not_validated",
                },
            )
            log.error(
                "camera %s: privacy masks not validated (LB-06), no alerting; record who checked them: "
                "lanterne masks validate %s --note '...' --user ID",
                cam.id,
                cam.id,
            )
    may_alert = [cam for cam in cfg.cameras if cam.id in checked and watched_types(cam)]
    pending = Governance(engine, audit, clock=clock).pending(cfg) if may_alert else []
    if pending:
        for cam in may_alert:
            audit.append(
                SYSTEM_USER,
                Action.ALERTING_REFUSED,
                object_type="camera",
                object_id=cam.id,
                details={
                    "event_types": sorted(str(t) for t in watched_types(cam)),
                    "reason": NO_RECORD,
                    "changes": {str(p.change): p.sha256 for p in pending},
                },
            )
        raise GovernanceError(refusal(cfg, pending))
    overdue = RiskRegister(engine, audit, clock=clock).overdue() if may_alert else []
    if overdue:
        # RK-01: a register nobody reviews on the dates it committed to does not start alerting.
        for cam in may_alert:
            audit.append(
                SYSTEM_USER,
                Action.ALERTING_REFUSED,
                object_type="camera",
                object_id=cam.id,
                details={
                    "event_types": sorted(str(t) for t in watched_types(cam)),
                    "reason": RISK_OVERDUE,
                    "risks": [r.id for r in overdue],
                },
            )
        raise RiskError(risk_refusal(overdue))
    assessed = assessment_check(engine) if alerting else None
    # EV-05: a type outside its measured envelope stays off unless an override is recorded.
    outside = gate_refusals(audit, may_alert, SYSTEM_USER) if may_alert else {}
    return {
        cam.id: AlertingGate(
            cam.id,
            register,
            audit,
            cfg.legal_end_date,
            clock=clock,
            refresh_seconds=refresh_seconds,
            event_types=watched_types(cam) - outside.get(cam.id, frozenset()) if cam.id in checked else (),
            assessments=assessed,
        )
        for cam in cfg.cameras
    }
