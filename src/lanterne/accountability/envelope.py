"""Envelope checks and overrides (EV-05): a camera outside a detector's measured conditions does
not alert that type unless a person records why it should.

A check (`lanterne envelope check`) measures a sample of the camera's frames and is recorded on the
audit log as `envelope_check`, with per type the verdict, its reasons and the figures. The log is
the store, as for the privacy masks' validation (`lanterne.accountability.masks`): a check is a
statement someone made at a time, never edited, and its record is chained and signed.

The verdict a gate applies is recomputed from the stored figures against the registry of today
(`lanterne.rules.envelope.ENVELOPES`) and the camera's configured rate, so a narrower envelope or a
lowered `fps` after the check is not hidden by an old verdict. An override
(`lanterne envelope override`) names the check it answers: a newer check that is still outside
needs a new one, since the figures the person vouched for are no longer the ones measured.

A camera never checked alerts as before, with a warning at start and "not checked" on the public
page: refusing every unchecked camera would switch off deployments recorded before EV-05 existed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from lanterne.audit import Action, AuditEntry, AuditLog
from lanterne.config.schema import Camera
from lanterne.core.errors import LanterneError
from lanterne.core.types import EventType
from lanterne.rules.base import ZoneRef
from lanterne.rules.envelope import (
    ENVELOPES,
    INSIDE,
    OUTSIDE,
    UNDETERMINED,
    Measured,
    PersonBox,
    assess,
    measure,
)

log = logging.getLogger(__name__)

NOT_CHECKED = "not_checked"
OUTSIDE_ENVELOPE = "outside_envelope"
"""The reason an `alerting_refused` record gives for a type refused here."""


class EnvelopeError(LanterneError):
    """A check or an override that cannot be recorded as asked."""


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """Where one camera stands for one watched type."""

    camera: str
    event_type: EventType
    status: str
    """`inside`, `outside`, `undetermined`, or `not_checked`."""
    reasons: tuple[str, ...] = ()
    measured: Measured | None = None
    checked_at: datetime | None = None
    check_seq: int | None = None
    overridden: bool = False
    override_by: str | None = None
    override_reason: str | None = None

    @property
    def may_alert(self) -> bool:
        """Whether the envelope lets this type alert (authorisations and the rest still apply)."""
        return self.status not in (OUTSIDE, UNDETERMINED) or self.overridden


def zones_of(camera: Camera, event_type: EventType) -> list[ZoneRef]:
    return [
        ZoneRef(camera.id, z.id, tuple(z.polygon)) for z in camera.zones if event_type in z.events.enabled()
    ]


def watched(camera: Camera) -> tuple[EventType, ...]:
    types = {t for z in camera.zones for t in z.events.enabled()}
    return tuple(t for t in EventType if t in types)


def record_check(
    audit: AuditLog,
    camera: Camera,
    persons: Iterable[PersonBox],
    luma: float,
    fps: float,
    frame_height: int,
    by: str,
    sample: dict[str, object] | None = None,
) -> dict[EventType, TypeStatus]:
    """Measure the sample against the envelope of every type the camera watches and record it.
    `sample`: how the figures were taken (frames, seconds, source of the rate), kept beside them."""
    if not by or not by.strip():
        raise EnvelopeError("a check names who ran it; pass --user")
    types = watched(camera)
    if not types:
        raise EnvelopeError(
            f"camera {camera.id} watches no event type: nothing to check; add zones with events"
        )
    people = list(persons)
    figures = {
        t: measure(people, zones_of(camera, t), luma, fps, frame_height) for t in types if t in ENVELOPES
    }
    verdicts = {t: assess(ENVELOPES[t], m) for t, m in figures.items()}
    audit.append(
        by,
        Action.ENVELOPE_CHECK,
        object_type="camera",
        object_id=camera.id,
        details={
            "types": {
                str(t): {"status": v.status, "reasons": list(v.reasons), "measured": asdict(figures[t])}
                for t, v in verdicts.items()
            },
            "sample": dict(sample or {}),
        },
    )
    return status_of(audit, [camera])[camera.id]


def record_override(
    audit: AuditLog, camera: Camera, event_type: EventType, reason: str, by: str
) -> AuditEntry:
    """Let `camera` alert `event_type` although its latest check puts it outside the envelope."""
    if not by or not by.strip():
        raise EnvelopeError("an override names who decided it; pass --user")
    if not reason or len(reason.strip()) < 10:
        raise EnvelopeError(
            "say why the camera may alert outside the measured conditions, e.g. "
            "--reason 'people here 45 px high; checked 20 alerts by hand on 2026-12-01, 18 right'"
        )
    if event_type not in watched(camera):
        raise EnvelopeError(f"camera {camera.id} does not watch {event_type}; nothing to override")
    current = status_of(audit, [camera])[camera.id].get(event_type)
    if current is None or current.status == NOT_CHECKED:
        raise EnvelopeError(
            f"camera {camera.id} was never checked: run `lanterne envelope check {camera.id}` first"
        )
    if current.status == INSIDE:
        raise EnvelopeError(f"camera {camera.id} is inside the {event_type} envelope: no override needed")
    return audit.append(
        by,
        Action.ENVELOPE_OVERRIDE,
        object_type="camera",
        object_id=camera.id,
        details={
            "event_type": str(event_type),
            "check_seq": current.check_seq,
            "reasons": list(current.reasons),
            "reason": reason.strip()[:1000],
        },
    )


def _read(audit: AuditLog) -> tuple[list[AuditEntry], list[AuditEntry]]:
    return audit.entries(action=Action.ENVELOPE_CHECK), audit.entries(action=Action.ENVELOPE_OVERRIDE)


def status_of(
    audit: AuditLog,
    cameras: Iterable[Camera],
    *,
    entries: tuple[list[AuditEntry], list[AuditEntry]] | None = None,
) -> dict[str, dict[EventType, TypeStatus]]:
    """Per camera, per watched type with an envelope: its envelope status now."""
    checks, overrides = entries if entries is not None else _read(audit)
    latest: dict[str, AuditEntry] = {}
    for e in checks:
        if e.object_type == "camera" and e.object_id is not None:
            latest[e.object_id] = e
    overridden: dict[tuple[str, str], AuditEntry] = {}
    for e in overrides:
        check = latest.get(e.object_id or "")
        if check is not None and e.details.get("check_seq") == check.seq:
            overridden[(check.object_id or "", str(e.details.get("event_type")))] = e
    out: dict[str, dict[EventType, TypeStatus]] = {}
    for cam in cameras:
        row: dict[EventType, TypeStatus] = {}
        check = latest.get(cam.id)
        stored = check.details.get("types", {}) if check is not None else {}
        for t in watched(cam):
            if t not in ENVELOPES:
                continue
            figures = stored.get(str(t))
            if check is None or figures is None:
                row[t] = TypeStatus(cam.id, t, NOT_CHECKED)
                continue
            m = Measured(**figures["measured"])
            # The rate analysed can only be lower than the one configured now.
            m = replace(m, fps=min(m.fps, cam.fps))
            verdict = assess(ENVELOPES[t], m)
            ov = overridden.get((cam.id, str(t))) if verdict.status in (OUTSIDE, UNDETERMINED) else None
            row[t] = TypeStatus(
                cam.id,
                t,
                verdict.status,
                verdict.reasons,
                m,
                check.ts,
                check.seq,
                overridden=ov is not None,
                override_by=ov.user_id if ov is not None else None,
                override_reason=str(ov.details.get("reason")) if ov is not None else None,
            )
        out[cam.id] = row
    return out


def refused_types(statuses: dict[EventType, TypeStatus]) -> dict[EventType, TypeStatus]:
    """The types the envelope keeps from alerting on one camera."""
    return {t: s for t, s in statuses.items() if not s.may_alert}


def gate_refusals(audit: AuditLog, cameras: Iterable[Camera], by: str) -> dict[str, frozenset[EventType]]:
    """For the cameras about to alert: record `alerting_refused` (`outside_envelope`) for the types
    outside their envelope without an override, log the fix in one line, and return them; warn
    about cameras never checked."""
    cameras = list(cameras)
    out: dict[str, frozenset[EventType]] = {}
    for cam_id, statuses in status_of(audit, cameras).items():
        refused = refused_types(statuses)
        unchecked = sorted(str(t) for t, s in statuses.items() if s.status == NOT_CHECKED)
        if unchecked:
            log.warning(
                "camera %s: never checked against the operating envelope of %s (EV-05); "
                "run: lanterne envelope check %s --user ID",
                cam_id,
                ", ".join(unchecked),
                cam_id,
            )
        if not refused:
            continue
        out[cam_id] = frozenset(refused)
        audit.append(
            by,
            Action.ALERTING_REFUSED,
            object_type="camera",
            object_id=cam_id,
            details={
                "event_types": sorted(str(t) for t in refused),
                "reason": OUTSIDE_ENVELOPE,
                "why": {str(t): list(s.reasons) for t, s in refused.items()},
                "check_seq": next(iter(refused.values())).check_seq,
            },
        )
        first = next(iter(refused))
        log.error(
            "camera %s: outside the operating envelope of %s (EV-05: %s), no alerting for them; "
            "bring the camera within it and check again (lanterne envelope check %s --user ID), or record why "
            "it may alert anyway: lanterne envelope override %s %s --reason '...' --user ID",
            cam_id,
            ", ".join(sorted(str(t) for t in refused)),
            "; ".join(refused[first].reasons),
            cam_id,
            cam_id,
            first,
        )
    return out
