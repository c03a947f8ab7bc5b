"""Who may see video: habilitation and training records, checked at every video access.

French law lets only individually designated agents view the images (CSI L252-2, L255-1: AC-01),
designated by the mayor for municipal police or by their chief of service, for a scope and a time
(AC-05); and only once trained in data protection and in the system's limits (HO-06). A role says
what a person's job is; these records say that the person may do it today. So every snapshot,
clip and recording served asks `may_view_video`, which answers why not in one line, or None.

Records are never edited except to revoke them: a renewal is a new row, and the register shows
who could see which camera when.

>>> from datetime import UTC, datetime
>>> h = Habilitation(1, "u-1", "Maire de Lanterne", datetime(2026, 1, 1, tzinfo=UTC), ("quai",),
...     datetime(2027, 1, 1, tzinfo=UTC), "u-admin", None)
>>> h.valid_at(datetime(2026, 6, 1, tzinfo=UTC)), h.covers("quai"), h.covers("parvis")
(True, True, False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.store.tables import AccountRecord, HabilitationRecord, TrainingRecord

DEFAULT_VALIDITY = timedelta(days=365)
"""AC-05: a habilitation lapses after a year unless renewed; a training record, as the law asks for
a regular update of knowledge (CSI L255-1), after a year too by default."""
MAX_VALIDITY = timedelta(days=3 * 365 + 1)
"""No record runs longer than three years: past that, the designation is a new decision."""
ALL_CAMERAS = "*"

_H = HabilitationRecord.__table__
_T = TrainingRecord.__table__
_A = AccountRecord.__table__


class HabilitationError(LanterneError):
    """A record that cannot be made or revoked as asked."""


@dataclass(frozen=True, slots=True)
class Habilitation:
    id: int
    user_id: str
    authority: str
    """Who designated the person, e.g. "Maire de Lanterne" or "chef de service"."""
    designated_on: datetime
    cameras: tuple[str, ...]
    """Camera ids, or `("*",)` for every camera."""
    expires_at: datetime
    recorded_by: str
    revoked_at: datetime | None

    def ends(self) -> datetime:
        return min(self.expires_at, self.revoked_at) if self.revoked_at is not None else self.expires_at

    def valid_at(self, at: datetime) -> bool:
        return self.designated_on <= at < self.ends()

    def covers(self, camera: str | None) -> bool:
        """`camera` None asks whether any camera is covered (a route that does not yet know it)."""
        return camera is None or ALL_CAMERAS in self.cameras or camera in self.cameras


@dataclass(frozen=True, slots=True)
class Training:
    id: int
    user_id: str
    course: str
    completed_on: datetime
    expires_at: datetime
    recorded_by: str
    revoked_at: datetime | None

    def ends(self) -> datetime:
        return min(self.expires_at, self.revoked_at) if self.revoked_at is not None else self.expires_at

    def valid_at(self, at: datetime) -> bool:
        return self.completed_on <= at < self.ends()


def _habilitation(r: object) -> Habilitation:
    return Habilitation(
        id=r.id,  # type: ignore[attr-defined]
        user_id=r.user_id,  # type: ignore[attr-defined]
        authority=r.authority,  # type: ignore[attr-defined]
        designated_on=r.designated_on,  # type: ignore[attr-defined]
        cameras=tuple(r.cameras.split(",")),  # type: ignore[attr-defined]
        expires_at=r.expires_at,  # type: ignore[attr-defined]
        recorded_by=r.recorded_by,  # type: ignore[attr-defined]
        revoked_at=r.revoked_at,  # type: ignore[attr-defined]
    )


def _training(r: object) -> Training:
    return Training(
        id=r.id,  # type: ignore[attr-defined]
        user_id=r.user_id,  # type: ignore[attr-defined]
        course=r.course,  # type: ignore[attr-defined]
        completed_on=r.completed_on,  # type: ignore[attr-defined]
        expires_at=r.expires_at,  # type: ignore[attr-defined]
        recorded_by=r.recorded_by,  # type: ignore[attr-defined]
        revoked_at=r.revoked_at,  # type: ignore[attr-defined]
    )


def _expiry(start: datetime, expires: datetime | None, what: str) -> datetime:
    end = expires if expires is not None else start + DEFAULT_VALIDITY
    if not start < end <= start + MAX_VALIDITY:
        raise HabilitationError(
            f"a {what} expires after its date and within {MAX_VALIDITY.days} days of it; pick another expiry"
        )
    return end


def _check_user(engine: Engine, user_id: str) -> None:
    with engine.connect() as conn:
        if conn.execute(select(_A.c.id).where(_A.c.id == user_id)).first() is None:
            raise HabilitationError(f"no account has id {user_id!r}; see `lanterne users list`")


def habilitate(
    engine: Engine,
    audit: AuditLog,
    *,
    user: str,
    authority: str,
    designated_on: datetime,
    cameras: Sequence[str],
    recorded_by: str,
    now: datetime,
    expires: datetime | None = None,
) -> Habilitation:
    """Record that `authority` designated account `user` on `designated_on` to view `cameras`
    (`*` for all) until `expires` (default a year later); audited as `user_change`."""
    cams = tuple(dict.fromkeys(c.strip() for c in cameras if c.strip()))
    if not cams or (ALL_CAMERAS in cams and len(cams) > 1):
        raise HabilitationError("a habilitation covers '*' (every camera) or a list of camera ids")
    if not authority.strip():
        raise HabilitationError(
            "a habilitation names its designating authority (e.g. 'Maire de Lanterne' or 'chef de service')"
        )
    end = _expiry(designated_on, expires, "habilitation")
    _check_user(engine, user)
    values = {
        "user_id": user,
        "authority": authority.strip(),
        "designated_on": designated_on,
        "cameras": ",".join(cams),
        "expires_at": end,
        "recorded_by": recorded_by,
        "recorded_at": now,
    }
    with engine.begin() as conn:
        new_id = conn.execute(insert(_H).values(**values).returning(_H.c.id)).scalar_one()
    audit.append(
        recorded_by,
        Action.USER_CHANGE,
        object_type="account",
        object_id=user,
        time_from=designated_on,
        time_to=end,
        details={"change": "habilitate", "habilitation": new_id, "cameras": list(cams)},
    )
    return Habilitation(new_id, user, values["authority"], designated_on, cams, end, recorded_by, None)


def train(
    engine: Engine,
    audit: AuditLog,
    *,
    user: str,
    course: str,
    completed_on: datetime,
    recorded_by: str,
    now: datetime,
    expires: datetime | None = None,
) -> Training:
    """Record that account `user` completed `course` on `completed_on`, valid until `expires`
    (default a year later); audited as `user_change`."""
    if not course.strip():
        raise HabilitationError(
            "a training record names its course or certificate (e.g. 'RGPD et limites du système')"
        )
    end = _expiry(completed_on, expires, "training record")
    _check_user(engine, user)
    values = {
        "user_id": user,
        "course": course.strip(),
        "completed_on": completed_on,
        "expires_at": end,
        "recorded_by": recorded_by,
        "recorded_at": now,
    }
    with engine.begin() as conn:
        new_id = conn.execute(insert(_T).values(**values).returning(_T.c.id)).scalar_one()
    audit.append(
        recorded_by,
        Action.USER_CHANGE,
        object_type="account",
        object_id=user,
        time_from=completed_on,
        time_to=end,
        details={"change": "train", "training": new_id},
    )
    return Training(new_id, user, values["course"], completed_on, end, recorded_by, None)


def revoke(
    engine: Engine, audit: AuditLog, kind: str, record_id: int, *, revoked_by: str, now: datetime
) -> None:
    """End a habilitation (`kind` "habilitation") or a training record ("training") now; audited.
    Revoking twice is refused: the register keeps the first."""
    table = {"habilitation": _H, "training": _T}.get(kind)
    if table is None:
        raise HabilitationError(f"unknown record kind {kind!r}; use 'habilitation' or 'training'")
    with engine.begin() as conn:
        row = conn.execute(select(table.c.user_id).where(table.c.id == record_id)).first()
        done = conn.execute(
            update(table)
            .where(table.c.id == record_id, table.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=revoked_by)
        ).rowcount
    if row is None or not done:
        raise HabilitationError(f"{kind} {record_id} does not exist or was already revoked")
    audit.append(
        revoked_by,
        Action.USER_CHANGE,
        object_type="account",
        object_id=row[0],
        details={"change": f"revoke_{kind}", kind: record_id},
    )


def habilitations(engine: Engine, user: str | None = None) -> list[Habilitation]:
    """Every habilitation ever recorded (of `user` if given), newest first: the register."""
    q = select(_H).order_by(_H.c.id.desc())
    if user is not None:
        q = q.where(_H.c.user_id == user)
    with engine.connect() as conn:
        return [_habilitation(r) for r in conn.execute(q)]


def trainings(engine: Engine, user: str | None = None) -> list[Training]:
    """Every training record (of `user` if given), newest first."""
    q = select(_T).order_by(_T.c.id.desc())
    if user is not None:
        q = q.where(_T.c.user_id == user)
    with engine.connect() as conn:
        return [_training(r) for r in conn.execute(q)]


def _day(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d")


def may_view_video(engine: Engine, user_id: str, camera: str | None, now: datetime) -> str | None:
    """None when `user_id` holds, at `now`, a habilitation covering `camera` (any camera when
    None) and a training record; else the one-line reason, which the console shows as it is.

    The reason names the nearest fix: a lapsed record says when it ended, so the person knows to
    ask for a renewal rather than a first designation."""
    habs = habilitations(engine, user_id)
    valid = [h for h in habs if h.valid_at(now)]
    if not habs:
        return "no habilitation record: an administrator records the designation with `lanterne users habilitate`"
    if not valid:
        started = [h for h in habs if h.designated_on <= now]
        if not started:
            first = min(h.designated_on for h in habs)
            return f"habilitation starts on {_day(first)}; no video before then"
        last = max(started, key=lambda h: h.ends())
        if last.revoked_at is not None and last.revoked_at < last.expires_at:
            return f"habilitation revoked on {_day(last.revoked_at)}; ask the designating authority for a new one"
        return f"habilitation expired on {_day(last.expires_at)}; ask the designating authority to renew it"
    if not any(h.covers(camera) for h in valid):
        return f"camera {camera} is outside the habilitation's scope"
    courses = trainings(engine, user_id)
    if not courses:
        return "no training record: an administrator records the course with `lanterne users train`"
    if not any(t.valid_at(now) for t in courses):
        started_t = [t for t in courses if t.completed_on <= now]
        if not started_t:
            return "no training completed yet: record the course once it is passed (`lanterne users train`)"
        last_t = max(started_t, key=lambda t: t.ends())
        if last_t.revoked_at is not None and last_t.revoked_at < last_t.expires_at:
            return f"training record revoked on {_day(last_t.revoked_at)}; record a new course"
        return f"training expired on {_day(last_t.expires_at)}; the course must be taken again"
    return None
