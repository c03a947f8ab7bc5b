"""Blinded recall audits (PM-03): of the situations a person sees, how many did the system alert?

Precision (`lanterne.accountability.precision`) comes from the operators' decisions and says how
often an alert was right; it can never say what was missed, because a miss raises nothing to
decide. A recall audit measures misses the only way a live site can: a reviewer watches stretches
of recorded footage drawn at random, without the system's alerts, marks every situation of the 8
types they see, and only then are the marks matched to the alerts.

**The draw.** N windows (default 20 of 30 s) over a date range and a set of cameras, uniform over
the footage that exists: the recording index (readable segments, joined into runs where they meet
within a second, as `lanterne.video.recording.timeline` shows them), within the recording retention
and the alerts' retention (a window whose alerts were already deleted would count every situation
as missed). Only cameras that record continuously take part: a `record: events` camera keeps
footage only around its events, so a sample of it would be a sample of alerts. The draw never reads
the events: weighting it by alerts would tell the reviewer where to look, and would measure recall
where the detector already fired. The seed comes from `secrets` (nobody picks the windows); the
draw itself is `random.Random(seed)` over the index, so the same seed draws the same windows again
while the segments exist. Seed and windows are stored and in the audit log.

**The review.** Only the reviewer plays the windows, through the one read path (decrypted,
verified, masked, anonymised), each view recorded as `view_recording` with the audit as its
purpose. While the audit is open nothing here returns an event of the system: not its id, not its
time, not a count. The tool cannot stop a supervisor from opening the alert queue elsewhere; what
it can do is read the audit log when it scores: a window whose alert the reviewer had opened
(snapshot, clip, decision) or whose camera's timeline they had searched over it is flagged
`unblinded` (the blinding flag), and the count is given with the score. A mark is a type, a time in
the window and optionally a zone: no free text, so a mark says what happened and never who was
there. A window is done when the reviewer says they marked everything in it, or that nothing of the
8 types happened.

**The score.** When the last window is reviewed, or the audit is closed early (unreviewed windows
are left out), each mark is matched to an alert (mode `alerts`) of the same camera and type whose
time, widened by the tolerance (default 5 s), holds the mark: one alert per mark, in time order,
one in the mark's zone first, then the nearest. Recall = matched marks ÷ marks, per
detector and per camera, with its 95 % Wilson interval: 20 windows give few marks, and the interval
says so. A mark of a type its camera was not set to detect is counted apart (`unwatched`): the
detector was never asked to look there. The alerts raised in a window that no mark matched are
listed after the score, as candidates for a precision review. The score is stored with the audit,
so the published figure outlives the alerts that retention deletes.

>>> from datetime import UTC, datetime, timedelta
>>> t = datetime(2026, 5, 1, tzinfo=UTC)
>>> [(w.camera, w.start.time().isoformat()) for w in draw_windows({"c1": [(t, t + timedelta(minutes=5))]}, 2, 30, "doc")]
[('c1', '00:04:08'), ('c1', '00:01:02')]
"""

from __future__ import annotations

import bisect
import logging
import random
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    case,
    delete,
    extract,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from lanterne.accountability.habilitation import may_view_video
from lanterne.accountability.precision import wilson_interval
from lanterne.audit import Action, AuditLog
from lanterne.config import Config
from lanterne.config.schema import Mode
from lanterne.core.errors import LanterneError
from lanterne.core.types import EventType
from lanterne.store.db import describe_failure, transaction
from lanterne.store.tables import (
    EventRecord,
    RecallAuditRecord,
    RecallMarkRecord,
    RecallWindowRecord,
    RecordingSegmentRecord,
    UtcDateTime,
)

log = logging.getLogger(__name__)

DEFAULT_WINDOWS = 20
DEFAULT_SECONDS = 30
DEFAULT_TOLERANCE = 5.0
MAX_WINDOWS = 200
"""An afternoon of review at most: 200 windows of 30 s are 100 minutes of footage."""
MIN_SECONDS, MAX_SECONDS = 5, 600
"""A window shorter than a situation cuts it; one longer than the read path's 10 minutes cannot
be played as one stretch."""
MAX_TOLERANCE = 60.0
JOIN_SECONDS = 1.0
"""Recorded spans closer than this are one run of footage (segments of one connection meet within
a frame interval); a window never straddles a longer gap."""
PUBLISHED_DAYS = 365
"""The public page sums the audits closed in the last year: recall is a property of the detector
as it runs now, and a model or threshold changed since an older audit would be mixed in."""
REVIEW_ROLES: tuple[str, ...] = ("supervisor",)
"""Who reviews: supervisors. Auditors see no footage (AC-02), and operators decide the very
alerts an audit scores, so they would review footage they may remember alerting."""
OBJECT = "recall_audit"

_A = RecallAuditRecord.__table__
_W = RecallWindowRecord.__table__
_M = RecallMarkRecord.__table__
_E = EventRecord.__table__
_S = RecordingSegmentRecord.__table__
READABLE = ("complete", "recovered")
"""Segment states that hold footage to review: not `open` (still being written), not `lost`."""


class RecallError(LanterneError):
    """A recall audit that cannot be started or changed as asked (bad range, too many windows, a
    mark outside its window…)."""


class RecallNotFound(RecallError):  # noqa: N818 (reads as the answer it becomes: 404)
    """No such audit, window or mark."""


class RecallConflict(RecallError):  # noqa: N818 (reads as the answer it becomes: 409)
    """The audit or window is not in the state the step needs (already reviewed, already closed,
    still open)."""


class RecallRefused(RecallError):  # noqa: N818 (reads as the answer it becomes: 403)
    """The person may not do this: not a reviewer's role, a camera outside their scope or
    habilitation, or not this audit's reviewer."""


@dataclass(frozen=True)
class Reviewer:
    """Who asks: an account's id, role and camera scope (`{"*"}`: every camera)."""

    id: str
    role: str
    scope: frozenset[str]

    def sees(self, camera: str) -> bool:
        return "*" in self.scope or camera in self.scope


@dataclass(frozen=True, slots=True)
class DrawnWindow:
    camera: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class UnmarkedAlert:
    """An alert raised in a reviewed window that no mark matched: a candidate for a precision
    review (was it a situation the reviewer overlooked, or a false alarm?)."""

    window: int
    camera: str
    event_id: str
    type: str
    zone: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Mark:
    id: int
    window: int
    """The window's number in the audit (1-based)."""
    type: EventType
    at: float
    """Seconds from the window's start."""
    zone: str | None
    created_at: datetime
    matched_event: str | None
    """The alert the mark was matched to; None while open, or when the system missed it."""


@dataclass(frozen=True)
class Window:
    seq: int
    camera: str
    start: datetime
    end: datetime
    reviewed_at: datetime | None
    watched: tuple[str, ...] | None
    """Event types the camera was set to detect, written when the audit was scored."""
    unmarked: tuple[UnmarkedAlert, ...] | None
    """Written when the audit was scored; None before, and for windows never reviewed."""
    marks: tuple[Mark, ...] = ()
    unblinded: bool | None = None
    """The blinding flag, written with the score: the audit log shows the reviewer had looked at an
    alert of this window (its snapshot, clip or decision, or the camera's timeline over it)."""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class RecallAudit:
    id: int
    reviewer: str
    created_by: str
    created_at: datetime
    range_start: datetime
    range_end: datetime
    cameras: tuple[str, ...]
    window_seconds: int
    tolerance: float
    seed: str
    state: str
    closed_at: datetime | None
    closed_by: str | None
    note: str | None
    windows: tuple[Window, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def reviewed(self) -> int:
        return sum(1 for w in self.windows if w.reviewed_at is not None)

    def window(self, seq: int) -> Window:
        for w in self.windows:
            if w.seq == seq:
                return w
        raise RecallNotFound(f"recall audit {self.id} has no window {seq}; it has 1 to {len(self.windows)}")


@dataclass(frozen=True, slots=True)
class RecallFigure:
    """Recall of one detector (`key` an event type) or one camera (`key` a camera id)."""

    key: str
    marks: int
    """Situations marked where the camera was set to detect their type."""
    found: int
    """Of those, the ones an alert matched."""
    unwatched: int = 0
    """Situations marked of a type the camera was not set to detect: not in the ratio."""
    windows: int = 0
    """Reviewed windows of cameras set to detect the type (for a detector), or of the camera."""

    @property
    def recall(self) -> float | None:
        """found / marks; None (unknown, not 0) when nothing was marked."""
        return self.found / self.marks if self.marks else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % Wilson interval of the recall; None when nothing was marked."""
        return wilson_interval(self.found, self.marks)


@dataclass(frozen=True)
class Results:
    """An audit's score, computed from what was stored when it closed."""

    windows: int
    reviewed: int
    overall: RecallFigure
    by_type: tuple[RecallFigure, ...]
    by_camera: tuple[RecallFigure, ...]
    unmarked: tuple[UnmarkedAlert, ...]
    unblinded: int = 0
    """Reviewed windows whose alerts the reviewer had looked at elsewhere in the console: their
    marks were not blind. Counted, not removed (removing them would let a glance pick windows)."""


@dataclass(frozen=True)
class PublishedRecall:
    """What the public page shows: the audits closed in the last `PUBLISHED_DAYS`, per detector."""

    audits: int
    windows: int
    """Reviewed windows of those audits."""
    open_audits: int
    """Audits started and not yet closed (any age): an audit cannot be dropped unseen."""
    by_type: tuple[RecallFigure, ...]


# --- reading ----------------------------------------------------------------------------------


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _unmarked(seq: int, camera: str, raw: Iterable[Mapping[str, Any]]) -> tuple[UnmarkedAlert, ...]:
    return tuple(
        UnmarkedAlert(
            window=seq,
            camera=camera,
            event_id=str(u["id"]),
            type=str(u["type"]),
            zone=str(u["zone"]),
            start=datetime.fromisoformat(str(u["start"])),
            end=datetime.fromisoformat(str(u["end"])),
        )
        for u in raw
    )


def _load(conn: Connection, audit_ids: Sequence[int]) -> list[RecallAudit]:
    if not audit_ids:
        return []
    audits = conn.execute(select(_A).where(_A.c.id.in_(audit_ids)).order_by(_A.c.id.desc())).all()
    windows = conn.execute(
        select(_W).where(_W.c.audit_id.in_(audit_ids)).order_by(_W.c.audit_id, _W.c.seq)
    ).all()
    marks = conn.execute(
        select(_M, _W.c.audit_id, _W.c.seq)
        .join(_W, _W.c.id == _M.c.window_id)
        .where(_W.c.audit_id.in_(audit_ids))
        .order_by(_M.c.offset_s, _M.c.id)
    ).all()
    by_window: dict[int, list[Mark]] = {}
    for m in marks:
        by_window.setdefault(m.window_id, []).append(
            Mark(m.id, m.seq, EventType(m.type), m.offset_s, m.zone, m.created_at, m.matched_event)
        )
    by_audit: dict[int, list[Window]] = {}
    for w in windows:
        by_audit.setdefault(w.audit_id, []).append(
            Window(
                seq=w.seq,
                camera=w.camera,
                start=w.start_ts,
                end=w.end_ts,
                reviewed_at=w.reviewed_at,
                watched=tuple(w.watched) if w.watched is not None else None,
                unmarked=_unmarked(w.seq, w.camera, w.unmarked) if w.unmarked is not None else None,
                marks=tuple(by_window.get(w.id, ())),
                unblinded=w.unblinded,
            )
        )
    return [
        RecallAudit(
            id=a.id,
            reviewer=a.reviewer,
            created_by=a.created_by,
            created_at=a.created_at,
            range_start=a.range_start,
            range_end=a.range_end,
            cameras=tuple(a.cameras),
            window_seconds=a.window_seconds,
            tolerance=a.tolerance_seconds,
            seed=a.seed,
            state=a.state,
            closed_at=a.closed_at,
            closed_by=a.closed_by,
            note=a.note,
            windows=tuple(by_audit.get(a.id, ())),
        )
        for a in audits
    ]


def get_audit(engine: Engine, audit_id: int) -> RecallAudit:
    """The audit with its windows and marks, or `RecallNotFound`."""
    try:
        with engine.connect() as conn:
            found = _load(conn, [audit_id])
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    if not found:
        raise RecallNotFound(f"no recall audit {audit_id}; `lanterne recall status` lists them")
    return found[0]


def list_audits(engine: Engine, *, state: str | None = None) -> list[RecallAudit]:
    """Every audit (in one state), newest first, with its windows and marks."""
    q = select(_A.c.id)
    if state is not None:
        q = q.where(_A.c.state == state)
    try:
        with engine.connect() as conn:
            return _load(conn, [r.id for r in conn.execute(q)])
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None


# --- the draw ---------------------------------------------------------------------------------


def recorded_runs(
    engine: Engine, camera: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The camera's readable footage over [start, end] as runs: its sealed segments (lost and open
    ones left out: nothing can be reviewed there), joined where one starts within `JOIN_SECONDS`
    of the previous one's end, as the timeline joins them, clipped to the range.

    Computed by the database (gaps and islands over the segments in recording order): a camera
    makes 8,640 segments a day, and turning each into an object, as `timeline()` does for a
    screen, took 1.8 s per camera-week on PostgreSQL where the draw needs only the runs."""
    prev_end = type_coerce(func.lag(_S.c.end_ts).over(order_by=_S.c.seq), UtcDateTime)
    seg = (
        select(_S.c.seq, _S.c.start_ts, _S.c.end_ts, prev_end.label("prev_end"))
        .where(
            _S.c.camera == camera,
            _S.c.state.in_(READABLE),
            _S.c.end_ts >= start,
            _S.c.start_ts <= end,
        )
        .subquery()
    )
    if engine.dialect.name == "sqlite":
        gap: Any = (func.julianday(seg.c.start_ts) - func.julianday(seg.c.prev_end)) * 86400.0
    else:
        gap = extract("epoch", seg.c.start_ts - seg.c.prev_end)
    new_run = case((or_(seg.c.prev_end.is_(None), gap > JOIN_SECONDS), 1), else_=0)
    flagged = select(seg.c.seq, seg.c.start_ts, seg.c.end_ts, new_run.label("new_run")).subquery()
    numbered = select(
        flagged.c.start_ts,
        flagged.c.end_ts,
        func.sum(flagged.c.new_run).over(order_by=flagged.c.seq).label("run"),
    ).subquery()
    q = (
        select(func.min(numbered.c.start_ts).label("first"), func.max(numbered.c.end_ts).label("last"))
        .group_by(numbered.c.run)
        .order_by(numbered.c.run)
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(q).all()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    runs = [(max(r.first, start), min(r.last, end)) for r in rows]
    return [(a, b) for a, b in runs if b > a]


def draw_windows(
    runs: Mapping[str, Sequence[tuple[datetime, datetime]]], count: int, seconds: int, seed: str
) -> list[DrawnWindow]:
    """`count` windows of `seconds`, each inside one run of one camera, uniform over every start
    second the runs allow, no two of a camera overlapping. Deterministic for a seed and the same
    runs: that is what makes an audit reproducible. Knows nothing of events, by design.

    Raises `RecallError` when the footage cannot hold that many windows."""
    slots: list[tuple[str, datetime, int]] = []  # camera, run start, number of start seconds
    capacity = 0
    for camera in sorted(runs):
        for start, end in runs[camera]:
            length = (end - start).total_seconds()
            if length < seconds:
                continue
            slots.append((camera, start, int(length - seconds) + 1))
            capacity += int(length // seconds)
    if capacity < count:
        raise RecallError(
            f"the recorded footage holds only {capacity} separate windows of {seconds} s, not {count}; "
            "ask for fewer or shorter windows, more cameras or a longer range"
        )
    ends = []
    total = 0
    for _, _, n in slots:
        total += n
        ends.append(total)
    rng = random.Random(seed)
    taken: dict[str, list[tuple[datetime, datetime]]] = {}
    out: list[DrawnWindow] = []
    # Rejection of overlaps keeps every start second equally likely among those still free; with
    # 20 windows in hours of footage a draw is rarely rejected.
    for _ in range(count * 200):
        if len(out) == count:
            break
        k = rng.randrange(total)
        i = bisect.bisect_right(ends, k)
        camera, run_start, n = slots[i]
        start = run_start + timedelta(seconds=k - (ends[i] - n))
        end = start + timedelta(seconds=seconds)
        if any(start < e and s < end for s, e in taken.get(camera, ())):
            continue
        taken.setdefault(camera, []).append((start, end))
        out.append(DrawnWindow(camera, start, end))
    if len(out) < count:
        raise RecallError(
            f"only {len(out)} of {count} windows of {seconds} s could be drawn without overlapping; "
            "ask for fewer or shorter windows, or a longer range"
        )
    return out


def _refuse(audit: AuditLog, by: str, reason: str, details: dict[str, object]) -> RecallRefused:
    """Record a refused start (who asked, for what, why) and return the error to raise: a refused
    attempt is what an auditor needs to see."""
    audit.append(
        by,
        Action.RECALL_AUDIT,
        object_type=OBJECT,
        details={"step": "refused", "reason": reason, **details},
    )
    return RecallRefused(reason)


def _check_numbers(windows: int, seconds: int, tolerance: float) -> None:
    if not 1 <= windows <= MAX_WINDOWS:
        raise RecallError(f"an audit draws 1 to {MAX_WINDOWS} windows, not {windows}")
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise RecallError(f"a window lasts {MIN_SECONDS} to {MAX_SECONDS} s, not {seconds}")
    if not 0 <= tolerance <= MAX_TOLERANCE:
        raise RecallError(f"the matching tolerance is 0 to {MAX_TOLERANCE:g} s, not {tolerance:g}")


def _kept_since(cfg: Config, now: datetime) -> datetime:
    """The oldest instant a window may start: footage and alerts both still kept."""
    days = min(cfg.recording.retention_days, cfg.retention.evidence_days)
    return now - timedelta(days=days)


def start_audit(
    engine: Engine,
    audit: AuditLog,
    cfg: Config,
    *,
    reviewer: Reviewer,
    cameras: Iterable[str],
    since: datetime,
    until: datetime,
    now: datetime,
    windows: int = DEFAULT_WINDOWS,
    seconds: int = DEFAULT_SECONDS,
    tolerance: float = DEFAULT_TOLERANCE,
    created_by: str | None = None,
    seed: str | None = None,
) -> RecallAudit:
    """Draw the windows of a new audit for `reviewer` and record it. `seed` is for tests and for
    reproducing a recorded draw; left out, it comes from `secrets`.

    Refusals of the person (role, scope, habilitation) are recorded before they are raised
    (`RecallRefused`); mistakes in the request raise `RecallError` without a record."""
    by = created_by or reviewer.id
    now, since, until = _aware(now, "now"), _aware(since, "since"), _aware(until, "until")
    _check_numbers(windows, seconds, tolerance)
    chosen = sorted(dict.fromkeys(c.strip() for c in cameras if c.strip()))
    if not chosen:
        raise RecallError("name at least one camera to audit")
    if reviewer.role not in REVIEW_ROLES:
        raise _refuse(
            audit,
            by,
            f"a recall audit is reviewed by a {' or '.join(REVIEW_ROLES)}, not a {reviewer.role}",
            {"reviewer": reviewer.id, "cameras": chosen},
        )
    outside = [c for c in chosen if not reviewer.sees(c)]
    if outside:
        raise _refuse(
            audit,
            by,
            f"camera(s) {', '.join(outside)} are outside the reviewer's scope",
            {"reviewer": reviewer.id, "cameras": chosen, "outside": outside},
        )
    known = {c.id: c for c in cfg.cameras}
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise RecallError(f"camera(s) {', '.join(unknown)} are not in the configuration; check their ids")
    if cfg.mode is not Mode.ALERTS:
        raise RecallError(
            "this site runs in statistics mode: it records no footage and raises no alert to score"
        )
    not_continuous = [c for c in chosen if known[c].record != "continuous"]
    if not_continuous:
        raise RecallError(
            f"camera(s) {', '.join(not_continuous)} do not record continuously: a `record: events` camera "
            "keeps footage only around its alerts, so a sample of it would be weighted by alerts; "
            "audit cameras with `record: continuous`"
        )
    for camera in chosen:
        why = may_view_video(engine, reviewer.id, camera, now)
        if why is not None:
            raise _refuse(
                audit, by, f"the reviewer may not view camera {camera}: {why}", {"reviewer": reviewer.id}
            )
    if until <= since:
        raise RecallError("the range's end must be after its start")
    start, end = max(since, _kept_since(cfg, now)), min(until, now)
    if end <= start:
        raise RecallError(
            f"nothing of {_iso(since)} to {_iso(until)} is still kept (footage and alerts go after "
            f"{min(cfg.recording.retention_days, cfg.retention.evidence_days)} days); pick a recent range"
        )
    seed = seed or secrets.token_hex(16)
    runs = {c: recorded_runs(engine, c, start, end) for c in chosen}
    drawn = draw_windows(runs, windows, seconds, seed)
    try:
        with transaction(engine) as conn:
            audit_id = conn.execute(
                insert(_A)
                .values(
                    reviewer=reviewer.id,
                    created_by=by,
                    created_at=now,
                    range_start=start,
                    range_end=end,
                    cameras=chosen,
                    window_seconds=seconds,
                    tolerance_seconds=float(tolerance),
                    seed=seed,
                    state="open",
                )
                .returning(_A.c.id)
            ).scalar_one()
            conn.execute(
                insert(_W),
                [
                    {"audit_id": audit_id, "seq": i, "camera": w.camera, "start_ts": w.start, "end_ts": w.end}
                    for i, w in enumerate(drawn, start=1)
                ],
            )
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    try:
        audit.append(
            by,
            Action.RECALL_AUDIT,
            object_type=OBJECT,
            object_id=str(audit_id),
            time_from=start,
            time_to=end,
            details={
                "step": "start",
                "reviewer": reviewer.id,
                "cameras": chosen,
                "seconds": seconds,
                "tolerance": tolerance,
                "seed": seed,
                "windows": [[w.camera, _iso(w.start)] for w in drawn],
            },
        )
    except BaseException:
        # An audit stands only once recorded: otherwise its windows could be watched unaccounted.
        with transaction(engine) as conn:
            conn.execute(delete(_W).where(_W.c.audit_id == audit_id))
            conn.execute(delete(_A).where(_A.c.id == audit_id))
        raise
    log.info(
        "recall audit %s started: %s windows of %s s over %s camera(s)",
        audit_id,
        windows,
        seconds,
        len(chosen),
    )
    return get_audit(engine, audit_id)


# --- the review -------------------------------------------------------------------------------


def _open_window(engine: Engine, audit_id: int, seq: int, by: str) -> tuple[RecallAudit, Window]:
    a = get_audit(engine, audit_id)
    if by != a.reviewer:
        raise RecallRefused(f"recall audit {audit_id} is reviewed by its reviewer only")
    if not a.is_open:
        raise RecallConflict(f"recall audit {audit_id} is closed; nothing in it can change")
    w = a.window(seq)
    if w.reviewed_at is not None:
        raise RecallConflict(f"window {seq} of recall audit {audit_id} is already reviewed")
    return a, w


def _window_id(conn: Connection, audit_id: int, seq: int) -> int:
    return int(conn.execute(select(_W.c.id).where(_W.c.audit_id == audit_id, _W.c.seq == seq)).scalar_one())


def window_for_review(engine: Engine, audit_id: int, seq: int, by: str) -> tuple[RecallAudit, Window]:
    """The audit and its window `seq`, for its reviewer to play (open or closed audit)."""
    a = get_audit(engine, audit_id)
    if by != a.reviewer:
        raise RecallRefused(f"recall audit {audit_id}'s windows are played by its reviewer only")
    return a, a.window(seq)


def view_purpose(audit_id: int, seq: int) -> str:
    """The purpose recorded with a window's view: the audit it serves."""
    return f"recall audit {audit_id}, window {seq}: blinded review (PM-03)"


def record_view(
    audit: AuditLog, a: RecallAudit, w: Window, *, by: str, segments: Sequence[int], fps: float
) -> None:
    """Record the view of a window before its first frame: as every look into a recording
    (`view_recording`, the camera, the range and its segments), the audit as its purpose."""
    audit.append(
        by,
        Action.VIEW_RECORDING,
        object_type="recording",
        object_id=w.camera,
        time_from=w.start,
        time_to=w.end,
        purpose=view_purpose(a.id, w.seq),
        details={
            "recording": {
                "camera": w.camera,
                "from": _iso(w.start),
                "to": _iso(w.end),
                "segments": list(segments),
            },
            "fps": fps,
            "recall_audit": a.id,
            "window": w.seq,
        },
    )


def _zones(cfg: Config, camera: str) -> list[str]:
    return [z.id for c in cfg.cameras if c.id == camera for z in c.zones]


def add_mark(
    engine: Engine,
    audit: AuditLog,
    cfg: Config,
    audit_id: int,
    seq: int,
    *,
    by: str,
    type: EventType | str,
    at: float,
    zone: str | None,
    now: datetime,
) -> Mark:
    """The reviewer saw a situation of `type` `at` seconds into window `seq` (in `zone` when they
    can tell). Written, then recorded; a mark the log refuses is taken back."""
    _, w = _open_window(engine, audit_id, seq, by)
    try:
        kind = EventType(str(type))
    except ValueError:
        raise RecallError(
            f"{type!r} is not one of the 8 event types ({', '.join(str(t) for t in EventType)})"
        ) from None
    if not 0 <= at <= w.seconds:
        raise RecallError(f"a mark is 0 to {w.seconds:g} s into its window, not {at:g}")
    zone = zone.strip() if zone else None
    if zone is not None and zone not in _zones(cfg, w.camera):
        raise RecallError(
            f"camera {w.camera} has no zone {zone!r}; use one of {', '.join(_zones(cfg, w.camera)) or '(none)'}"
        )
    with transaction(engine) as conn:
        window_id = _window_id(conn, audit_id, seq)
        mark_id = conn.execute(
            insert(_M)
            .values(window_id=window_id, type=str(kind), offset_s=float(at), zone=zone, created_at=now)
            .returning(_M.c.id)
        ).scalar_one()
    try:
        audit.append(
            by,
            Action.RECALL_AUDIT,
            object_type=OBJECT,
            object_id=str(audit_id),
            details={
                "step": "mark",
                "window": seq,
                "mark": mark_id,
                "type": str(kind),
                "at": at,
                "zone": zone,
            },
        )
    except BaseException:
        with transaction(engine) as conn:
            conn.execute(delete(_M).where(_M.c.id == mark_id))
        raise
    return Mark(mark_id, seq, kind, float(at), zone, now, None)


def remove_mark(engine: Engine, audit: AuditLog, audit_id: int, seq: int, mark_id: int, *, by: str) -> None:
    """Take back a mark of a window not yet reviewed (a wrong type, a wrong time): recorded first."""
    _, w = _open_window(engine, audit_id, seq, by)
    if mark_id not in {m.id for m in w.marks}:
        raise RecallNotFound(f"window {seq} of recall audit {audit_id} has no mark {mark_id}")
    audit.append(
        by,
        Action.RECALL_AUDIT,
        object_type=OBJECT,
        object_id=str(audit_id),
        details={"step": "unmark", "window": seq, "mark": mark_id},
    )
    with transaction(engine) as conn:
        conn.execute(delete(_M).where(_M.c.id == mark_id))


def finish_window(
    engine: Engine,
    audit: AuditLog,
    cfg: Config,
    audit_id: int,
    seq: int,
    *,
    by: str,
    nothing: bool,
    now: datetime,
) -> RecallAudit:
    """The reviewer has marked every situation they saw in window `seq`, or says nothing of the 8
    types happened in it (`nothing`, which must agree with the marks: an empty window is said, not
    assumed). The last window reviewed closes and scores the audit."""
    a, w = _open_window(engine, audit_id, seq, by)
    if nothing and w.marks:
        raise RecallError(
            f"window {seq} has {len(w.marks)} mark(s): remove them to say nothing happened, or finish it with its marks"
        )
    if not nothing and not w.marks:
        raise RecallError(
            f"window {seq} has no mark: mark what you saw, or say that nothing of the 8 types happened in it"
        )
    with transaction(engine) as conn:
        done = conn.execute(
            update(_W)
            .where(_W.c.audit_id == audit_id, _W.c.seq == seq, _W.c.reviewed_at.is_(None))
            .values(reviewed_at=now)
        ).rowcount
    if not done:
        raise RecallConflict(f"window {seq} of recall audit {audit_id} is already reviewed")
    try:
        audit.append(
            by,
            Action.RECALL_AUDIT,
            object_type=OBJECT,
            object_id=str(audit_id),
            details={"step": "window", "window": seq, "marks": len(w.marks), "nothing": nothing},
        )
    except BaseException:
        with transaction(engine) as conn:
            conn.execute(
                update(_W).where(_W.c.audit_id == audit_id, _W.c.seq == seq).values(reviewed_at=None)
            )
        raise
    if a.reviewed + 1 == len(a.windows):
        return close_audit(engine, audit, cfg, audit_id, by=by, now=now, last_window=True)
    return get_audit(engine, audit_id)


# --- the score --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Alert:
    id: str
    type: str
    zone: str
    start: datetime
    end: datetime


def _alerts(conn: Connection, w: Window, tolerance: float) -> list[_Alert]:
    slack = timedelta(seconds=tolerance)
    rows = conn.execute(
        select(_E.c.id, _E.c.type, _E.c.zone, _E.c.start_ts, _E.c.end_ts)
        .where(
            _E.c.camera == w.camera,
            _E.c.mode == "alerts",
            _E.c.start_ts <= w.end + slack,
            _E.c.end_ts >= w.start - slack,
        )
        .order_by(_E.c.start_ts, _E.c.id)
    )
    return [_Alert(r.id, r.type, r.zone, r.start_ts, r.end_ts) for r in rows]


def _match(
    w: Window, alerts: Sequence[_Alert], tolerance: float
) -> tuple[dict[int, str | None], list[_Alert]]:
    """Each mark's alert (or None) and the alerts inside the window no mark took. Greedy in the
    marks' time order, one alert per mark (as `lanterne.video.evaluation.match_events`): an alert
    of the mark's type whose [start - tolerance, end + tolerance] holds the mark, the one in the
    mark's zone first, then the nearest, then the earliest."""
    slack = timedelta(seconds=tolerance)
    used: set[str] = set()
    matched: dict[int, str | None] = {}
    for m in sorted(w.marks, key=lambda m: (m.at, m.id)):
        t = w.start + timedelta(seconds=m.at)
        fits = [
            a
            for a in alerts
            if a.id not in used and a.type == str(m.type) and a.start - slack <= t <= a.end + slack
        ]

        def rank(a: _Alert, t: datetime = t, zone: str | None = m.zone) -> tuple[bool, float, datetime]:
            gap = (
                0.0
                if a.start <= t <= a.end
                else min(abs((a.start - t).total_seconds()), abs((t - a.end).total_seconds()))
            )
            return (zone is not None and a.zone != zone, gap, a.start)

        best = min(fits, key=rank) if fits else None
        matched[m.id] = best.id if best is not None else None
        if best is not None:
            used.add(best.id)
    inside = [a for a in alerts if a.id not in used and a.start <= w.end and a.end >= w.start]
    return matched, inside


def _watched(cfg: Config, camera: str) -> list[str]:
    types: set[EventType] = set()
    for c in cfg.cameras:
        if c.id == camera:
            for z in c.zones:
                types.update(z.events.enabled())
    return [str(t) for t in EventType if t in types]


_LOOKS_AT_ALERTS = (Action.VIEW_SNAPSHOT, Action.VIEW_CLIP, Action.ALERT_STATE)


def _looked(audit: AuditLog, reviewer: str) -> tuple[set[str], list[tuple[str, datetime, datetime]]]:
    """What the audit log says the reviewer saw of the system's alerts, ever: the alerts whose
    snapshot, clip or decision they opened, and the recording timelines they searched (which
    mark the alerts). A look that left no record (the queue's list of alerts) cannot be known."""
    alerts: set[str] = set()
    for action in _LOOKS_AT_ALERTS:
        alerts.update(
            e.object_id
            for e in audit.entries(action=action, user_id=reviewer)
            if e.object_type == "alert" and e.object_id
        )
    timelines = [
        (e.object_id, e.time_from, e.time_to)
        for e in audit.entries(action=Action.SEARCH, user_id=reviewer)
        if e.object_type == "recording" and e.object_id and e.time_from is not None and e.time_to is not None
    ]
    return alerts, timelines


def close_audit(
    engine: Engine,
    audit: AuditLog,
    cfg: Config,
    audit_id: int,
    *,
    by: str,
    now: datetime,
    note: str | None = None,
    last_window: bool = False,
) -> RecallAudit:
    """Score the reviewed windows against the alerts and close the audit; windows not reviewed
    are left out of the score (and say so). Its reviewer or a supervisor covering its cameras
    closes it early (the caller checks who); the last reviewed window closes it by itself.
    Recorded with the score before the audit moves."""
    a = get_audit(engine, audit_id)
    if not a.is_open:
        raise RecallConflict(f"recall audit {audit_id} is already closed")
    note = (note or "").strip() or None
    if note is not None and len(note) > 1000:
        raise RecallError(f"the note is {len(note)} characters long; shorten it to 1000")
    seen, timelines = _looked(audit, a.reviewer)
    scored: list[tuple[Window, dict[int, str | None], list[_Alert], list[str], bool]] = []
    try:
        with engine.connect() as conn:
            for w in a.windows:
                if w.reviewed_at is None:
                    continue
                alerts = _alerts(conn, w, a.tolerance)
                matched, unmarked = _match(w, alerts, a.tolerance)
                unblinded = any(x.id in seen for x in alerts) or any(
                    camera == w.camera and start <= w.end and end >= w.start
                    for camera, start, end in timelines
                )
                scored.append((w, matched, unmarked, _watched(cfg, w.camera), unblinded))
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    marks = sum(len(w.marks) for w, *_ in scored)
    found = sum(1 for _, matched, *_ in scored for e in matched.values() if e is not None)
    unblinded = [w.seq for w, *_, flag in scored if flag]
    if unblinded:
        log.warning(
            "recall audit %s: the reviewer had looked at alerts of window(s) %s; their marks are not blind",
            audit_id,
            unblinded,
        )
    audit.append(
        by,
        Action.RECALL_AUDIT,
        object_type=OBJECT,
        object_id=str(audit_id),
        purpose=note,
        details={
            "step": "close",
            "by_itself": last_window,
            "windows": len(a.windows),
            "reviewed": len(scored),
            "marks": marks,
            "found": found,
            "unmarked_alerts": sum(len(u) for _, _, u, *_ in scored),
            "unblinded": unblinded,
        },
    )
    with transaction(engine) as conn:
        done = conn.execute(
            update(_A)
            .where(_A.c.id == audit_id, _A.c.state == "open")
            .values(state="closed", closed_at=now, closed_by=by, note=note)
        ).rowcount
        if not done:
            raise RecallConflict(f"recall audit {audit_id} was closed meanwhile")
        for w, matched, unmarked, watched, flag in scored:
            conn.execute(
                update(_W)
                .where(_W.c.audit_id == audit_id, _W.c.seq == w.seq)
                .values(
                    watched=watched,
                    unblinded=flag,
                    unmarked=[
                        {
                            "id": u.id,
                            "type": u.type,
                            "zone": u.zone,
                            "start": u.start.isoformat(),
                            "end": u.end.isoformat(),
                        }
                        for u in unmarked
                    ],
                )
            )
            for mark_id, event_id in matched.items():
                if event_id is not None:
                    conn.execute(update(_M).where(_M.c.id == mark_id).values(matched_event=event_id))
    log.info("recall audit %s closed: %s of %s marks found by the system", audit_id, found, marks)
    return get_audit(engine, audit_id)


def _figures(windows: Iterable[Window], key: Callable[[Window, Mark], str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for w in windows:
        for m in w.marks:
            tally = out.setdefault(key(w, m), [0, 0, 0])
            if str(m.type) in (w.watched or ()):
                tally[0] += 1
                tally[1] += int(m.matched_event is not None)
            else:
                tally[2] += 1
    return out


def results(a: RecallAudit) -> Results:
    """The score of a closed audit. Refused while it is open: any figure would tell the reviewer
    something about the alerts in the windows still to review."""
    if a.is_open:
        raise RecallConflict(f"recall audit {a.id} is still open: its results are shown once it is closed")
    scored = [w for w in a.windows if w.reviewed_at is not None]
    by_type = _figures(scored, lambda _w, m: str(m.type))
    by_camera = _figures(scored, lambda w, _m: w.camera)
    type_windows = Counter(t for w in scored for t in (w.watched or ()))
    camera_windows = Counter(w.camera for w in scored)
    total = [sum(v[i] for v in by_type.values()) for i in range(3)]
    return Results(
        windows=len(a.windows),
        reviewed=len(scored),
        overall=RecallFigure("all", total[0], total[1], total[2], len(scored)),
        by_type=tuple(
            RecallFigure(str(t), *by_type.get(str(t), (0, 0, 0)), type_windows[str(t)])
            for t in EventType
            if str(t) in by_type or type_windows[str(t)]
        ),
        by_camera=tuple(
            RecallFigure(c, *by_camera.get(c, (0, 0, 0)), camera_windows[c]) for c in sorted(camera_windows)
        ),
        unmarked=tuple(u for w in scored for u in (w.unmarked or ())),
        unblinded=sum(1 for w in scored if w.unblinded),
    )


def published_recall(engine: Engine, now: datetime, days: int = PUBLISHED_DAYS) -> PublishedRecall:
    """Recall per detector over the audits closed in the `days` before `now`, for the public page.
    Open audits give no figure, only their number."""
    now = _aware(now, "now")
    try:
        with engine.connect() as conn:
            ids = [
                r.id
                for r in conn.execute(
                    select(_A.c.id).where(
                        _A.c.state == "closed",
                        _A.c.closed_at <= now,
                        _A.c.closed_at > now - timedelta(days=days),
                    )
                )
            ]
            closed = _load(conn, ids)
            still_open = int(
                conn.execute(select(func.count()).select_from(_A).where(_A.c.state == "open")).scalar_one()
            )
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    scored = [w for a in closed for w in a.windows if w.reviewed_at is not None]
    tallies = _figures(scored, lambda _w, m: str(m.type))
    exposure = Counter(t for w in scored for t in (w.watched or ()))
    return PublishedRecall(
        audits=len(closed),
        windows=len(scored),
        open_audits=still_open,
        by_type=tuple(
            RecallFigure(str(t), *tallies.get(str(t), (0, 0, 0)), exposure[str(t)])
            for t in EventType
            if str(t) in tallies or exposure[str(t)]
        ),
    )


__all__ = [
    "DEFAULT_SECONDS",
    "DEFAULT_TOLERANCE",
    "DEFAULT_WINDOWS",
    "REVIEW_ROLES",
    "DrawnWindow",
    "Mark",
    "PublishedRecall",
    "RecallAudit",
    "RecallConflict",
    "RecallError",
    "RecallFigure",
    "RecallNotFound",
    "RecallRefused",
    "Results",
    "Reviewer",
    "UnmarkedAlert",
    "Window",
    "add_mark",
    "close_audit",
    "draw_windows",
    "finish_window",
    "get_audit",
    "list_audits",
    "published_recall",
    "record_view",
    "recorded_runs",
    "remove_mark",
    "results",
    "start_audit",
    "view_purpose",
    "window_for_review",
]
