"""Removing privacy protection from recorded video: a permission, a reason, a reference, a record.

Recorded video is shown and exported anonymised. A judicial requisition may need the faces and
plates: then, as with Genetec's "remove privacy protection" privilege, an administrator grants one
user a permission for named cameras until a date (at most a year, and only ever shortened by a
revocation), and each use names its reason and its reference (requisition, case number), covers
at most two hours of one camera, and is written to the audit log before the first frame is
rendered and again when it ends. The privacy masks over dwellings stay on every frame whatever
the permission (LB-06), and every unanonymised frame carries who removed the protection and why.

>>> from datetime import UTC, datetime
>>> p = Permission(1, "opj", ("quai",), "requisitions of the parquet", "admin",
...     datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), None)
>>> p.covers("quai", datetime(2026, 12, 5, tzinfo=UTC)), p.covers("parvis", datetime(2026, 12, 5, tzinfo=UTC))
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.store.tables import PrivacyPermissionRecord

MAX_PERMISSION = timedelta(days=366)
MAX_UNMASKED = timedelta(hours=2)
"""The longest range one use may render without anonymisation."""
_T = PrivacyPermissionRecord.__table__


class PrivacyError(LanterneError):
    """A permission that cannot be granted or used as asked."""


@dataclass(frozen=True, slots=True)
class Permission:
    id: int
    user_id: str
    cameras: tuple[str, ...]
    """Camera ids, or `("*",)` for every camera."""
    reason: str
    granted_by: str
    granted_at: datetime
    valid_until: datetime
    revoked_at: datetime | None

    def covers(self, camera: str, at: datetime) -> bool:
        ends = min(self.valid_until, self.revoked_at) if self.revoked_at is not None else self.valid_until
        return self.granted_at <= at < ends and ("*" in self.cameras or camera in self.cameras)


@dataclass(frozen=True, slots=True)
class Use:
    """One use of a permission, as recorded before the first unanonymised frame."""

    permission: Permission
    user_id: str
    camera: str
    start: datetime
    end: datetime
    reason: str
    reference: str
    record_seq: int


def _row(r: object) -> Permission:
    return Permission(
        id=r.id,  # type: ignore[attr-defined]
        user_id=r.user_id,  # type: ignore[attr-defined]
        cameras=tuple(r.cameras.split(",")),  # type: ignore[attr-defined]
        reason=r.reason,  # type: ignore[attr-defined]
        granted_by=r.granted_by,  # type: ignore[attr-defined]
        granted_at=r.granted_at,  # type: ignore[attr-defined]
        valid_until=r.valid_until,  # type: ignore[attr-defined]
        revoked_at=r.revoked_at,  # type: ignore[attr-defined]
    )


def grant(
    engine: Engine,
    audit: AuditLog,
    *,
    user: str,
    cameras: list[str],
    until: datetime,
    reason: str,
    granted_by: str,
    now: datetime,
) -> Permission:
    """Give `user` the permission on `cameras` (`*` for all) until `until`; recorded."""
    cams = tuple(dict.fromkeys(c.strip() for c in cameras if c.strip()))
    if not user.strip() or not cams:
        raise PrivacyError("a permission names one user and at least one camera (or *)")
    if not reason.strip():
        raise PrivacyError(
            "a permission needs the reason it is granted (e.g. the judicial unit's requisitions)"
        )
    if not now < until <= now + MAX_PERMISSION:
        raise PrivacyError(
            f"a permission ends after now and within {MAX_PERMISSION.days} days; renew it then"
        )
    values = {
        "user_id": user.strip(),
        "cameras": ",".join(cams),
        "reason": reason.strip(),
        "granted_by": granted_by,
        "granted_at": now,
        "valid_until": until,
    }
    with engine.begin() as conn:
        new_id = conn.execute(insert(_T).values(**values).returning(_T.c.id)).scalar_one()
    audit.append(
        granted_by,
        Action.PRIVACY_PERMISSION,
        object_type="user",
        object_id=values["user_id"],
        time_from=now,
        time_to=until,
        details={"operation": "grant", "permission": new_id, "cameras": list(cams)},
    )
    return Permission(new_id, values["user_id"], cams, values["reason"], granted_by, now, until, None)


def revoke(engine: Engine, audit: AuditLog, permission_id: int, *, revoked_by: str, now: datetime) -> None:
    """End a permission now; recorded. Revoking twice is refused (the register keeps the first)."""
    with engine.begin() as conn:
        done = conn.execute(
            update(_T)
            .where(_T.c.id == permission_id, _T.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=revoked_by)
        ).rowcount
    if not done:
        raise PrivacyError(f"permission {permission_id} does not exist or was already revoked")
    audit.append(
        revoked_by,
        Action.PRIVACY_PERMISSION,
        object_type="permission",
        object_id=str(permission_id),
        details={"operation": "revoke", "permission": permission_id},
    )


def permissions(engine: Engine) -> list[Permission]:
    """Every permission ever granted, newest first: the register."""
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(_T).order_by(_T.c.id.desc()))]


def start_use(
    engine: Engine,
    audit: AuditLog,
    *,
    user: str,
    camera: str,
    start: datetime,
    end: datetime,
    reason: str,
    reference: str,
    now: datetime,
) -> Use:
    """Check that `user` holds a permission covering `camera` now, and record the use before
    anything is rendered. Raises `PrivacyError` (one line, nothing recorded as a use) otherwise."""
    if not reason.strip() or not reference.strip():
        raise PrivacyError(
            "removing privacy protection needs a reason and a reference (requisition, case number)"
        )
    if not end > start or end - start > MAX_UNMASKED:
        raise PrivacyError(f"an unanonymised range runs forward and covers at most {MAX_UNMASKED}")
    held = [p for p in permissions(engine) if p.user_id == user and p.covers(camera, now.astimezone(UTC))]
    if not held:
        audit.append(
            user,
            Action.ACCESS_DENIED,
            object_type="camera",
            object_id=camera,
            time_from=start,
            time_to=end,
            details={"refused": "remove privacy protection", "reason": "no permission"},
        )
        raise PrivacyError(
            f"user {user} holds no permission to remove privacy protection on camera {camera}; "
            "an administrator grants one with `lanterne privacy grant`"
        )
    entry = audit.append(
        user,
        Action.PRIVACY_REMOVED,
        object_type="camera",
        object_id=camera,
        time_from=start,
        time_to=end,
        purpose=reason.strip(),
        details={"reference": reference.strip(), "permission": held[0].id},
    )
    return Use(held[0], user, camera, start, end, reason.strip(), reference.strip(), entry.seq)


def end_use(audit: AuditLog, use: Use, *, frames: int) -> None:
    """Close a use in the log with what was rendered."""
    audit.append(
        use.user_id,
        Action.PRIVACY_RESTORED,
        object_type="camera",
        object_id=use.camera,
        time_from=use.start,
        time_to=use.end,
        details={"permission": use.permission.id, "opened_by": use.record_seq, "frames": frames},
    )
