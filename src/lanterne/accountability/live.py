"""Live views on the record (LG-02, issue 14): who watches which camera, why, from when to when.

Every tile of the wall is a view: it starts with a purpose (chosen once per wall session, as
operators work), is confirmed by its page every few seconds, and ends when the page closes it,
when the page goes quiet (a closed tab, a lost network: the sweeper ends it as `expired`), when
the viewer loses the right to watch, or, for a view with privacy protection removed, at the end
of its grant. Start and end are each one `view_live` audit record naming the view, so the log
answers "who watched camera X between 14:00 and 14:10" without the table.

Removing protection live uses the same permission, reason and reference as recordings
(`privacy.start_use`: refused and recorded without a permission, `privacy_removed` before the
first frame, `privacy_restored` at the end), for at most `MAX_RAW` at a time, renewable with a new
reason. Privacy masks stay on every frame either way.

The rows here hold no picture and no person: user ids, camera ids, times and what was typed as
the purpose, reason and reference.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete, insert, select, update

from lanterne.accountability.privacy import Use, end_use, permissions, start_use
from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.store.db import transaction
from lanterne.store.tables import LiveGroupRecord, LiveStreamRecord, LiveViewRecord

_V = LiveViewRecord.__table__
_S = LiveStreamRecord.__table__
_G = LiveGroupRecord.__table__

RAW_DEFAULT = timedelta(minutes=5)
"""How long protection stays removed when the viewer does not say: the time to look at one
scene. Renewing needs a new reason."""
MAX_RAW = timedelta(minutes=30)
LAYOUTS = (1, 4, 9, 16)


class LiveError(LanterneError):
    """A live view that cannot start, continue or change as asked."""


@dataclass(frozen=True, slots=True)
class View:
    id: int
    account: str
    camera: str
    purpose: str
    kind: str
    """`anonymised` or `raw` (protection removed under a permission)."""
    token: str
    started_at: datetime
    last_seen: datetime
    ended_at: datetime | None
    end_reason: str | None
    permission_id: int | None
    reason: str | None
    reference: str | None
    raw_until: datetime | None

    @property
    def open(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class Stream:
    """A stream some camera process feeds while it exists (`live_streams`): a gateway mountpoint
    (its id is the row's), or the console's fallback relay."""

    id: int
    camera: str
    kind: str
    """`anonymised` (the shared mountpoint), `raw` (one view's, protection removed) or `relay`
    (anonymised, to the console's fallback for browsers without WebRTC)."""
    view_id: int | None
    rtp_host: str
    rtp_port: int
    secret: str
    banner: str | None
    created_at: datetime
    expires_at: datetime | None
    rtcp_port: int | None = None
    """Where the gateway takes RTCP and sends keyframe requests back from (`Mountpoint.rtcp_port`);
    None for the fallback relay, or a gateway that did not say."""


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    account: str
    title: str
    layout: int
    cameras: tuple[str | None, ...]
    updated_at: datetime


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _view(r: object) -> View:
    m = r._mapping  # type: ignore[attr-defined]
    return View(
        id=m["id"],
        account=m["account"],
        camera=m["camera"],
        purpose=m["purpose"],
        kind=m["kind"],
        token=m["token"],
        started_at=_utc(m["started_at"]),  # type: ignore[arg-type]
        last_seen=_utc(m["last_seen"]),  # type: ignore[arg-type]
        ended_at=_utc(m["ended_at"]),
        end_reason=m["end_reason"],
        permission_id=m["permission_id"],
        reason=m["reason"],
        reference=m["reference"],
        raw_until=_utc(m["raw_until"]),
    )


def _stream(r: object) -> Stream:
    m = r._mapping  # type: ignore[attr-defined]
    return Stream(
        id=m["id"],
        camera=m["camera"],
        kind=m["kind"],
        view_id=m["view_id"],
        rtp_host=m["rtp_host"],
        rtp_port=m["rtp_port"],
        secret=m["secret"],
        banner=m["banner"],
        created_at=_utc(m["created_at"]),  # type: ignore[arg-type]
        expires_at=_utc(m["expires_at"]),
        rtcp_port=m["rtcp_port"],
    )


def new_token() -> str:
    """A gateway credential for one view: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


# --- views -------------------------------------------------------------------------------------


def _open(
    engine: Engine,
    audit: AuditLog,
    *,
    user: str,
    camera: str,
    purpose: str,
    token: str,
    now: datetime,
    use: Use | None = None,
) -> View:
    """Insert the view's row and record its start: the one way a view begins, raw or not."""
    raw = (
        {}
        if use is None
        else {
            "permission_id": use.permission.id,
            "reason": use.reason,
            "reference": use.reference,
            "raw_until": use.end,
        }
    )
    kind = "anonymised" if use is None else "raw"
    with transaction(engine) as conn:
        view_id = conn.execute(
            insert(_V)
            .values(
                account=user,
                camera=camera,
                purpose=purpose,
                kind=kind,
                token=token,
                started_at=now,
                last_seen=now,
                **raw,
            )
            .returning(_V.c.id)
        ).scalar_one()
    audit.append(
        user,
        Action.VIEW_LIVE,
        object_type="camera",
        object_id=camera,
        time_from=now,
        time_to=None if use is None else use.end,
        purpose=purpose,
        details={"live": "start", "view": view_id, "kind": kind}
        | ({} if use is None else {"opened_by": use.record_seq}),
    )
    found = view(engine, view_id)
    assert found is not None
    return found


def start_view(
    engine: Engine, audit: AuditLog, *, user: str, camera: str, purpose: str, token: str, now: datetime
) -> View:
    """Record the start of an anonymised view, before the page is given anything to play."""
    return _open(engine, audit, user=user, camera=camera, purpose=purpose, token=token, now=now)


def start_raw_view(
    engine: Engine,
    audit: AuditLog,
    *,
    user: str,
    camera: str,
    purpose: str,
    reason: str,
    reference: str,
    duration: timedelta,
    token: str,
    now: datetime,
) -> tuple[View, Use]:
    """Start a view with privacy protection removed: the permission checked and the use recorded
    (`privacy_removed`) before the row exists; `PrivacyError` (refusal recorded) without one."""
    if not timedelta(0) < duration <= MAX_RAW:
        raise LiveError(
            f"protection is removed live for at most {int(MAX_RAW.total_seconds() // 60)} minutes"
        )
    use = start_use(
        engine,
        audit,
        user=user,
        camera=camera,
        start=now,
        end=now + duration,
        reason=reason,
        reference=reference,
        now=now,
    )
    v = _open(engine, audit, user=user, camera=camera, purpose=purpose, token=token, now=now, use=use)
    return v, use


def end_view(engine: Engine, audit: AuditLog, view_id: int, *, reason: str, now: datetime) -> View | None:
    """End an open view and record it (with the seconds watched); None when it was not open.
    A raw view also closes its use of the permission (`privacy_restored`)."""
    with transaction(engine) as conn:
        done = conn.execute(
            update(_V)
            .where(_V.c.id == view_id, _V.c.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )
        if done.rowcount != 1:
            return None
        row = conn.execute(select(_V).where(_V.c.id == view_id)).one()
    v = _view(row)
    watched = max(0.0, (now - v.started_at).total_seconds())
    audit.append(
        v.account,
        Action.VIEW_LIVE,
        object_type="camera",
        object_id=v.camera,
        time_from=v.started_at,
        time_to=now,
        purpose=v.purpose,
        details={"live": "end", "view": v.id, "kind": v.kind, "reason": reason, "seconds": round(watched, 1)},
    )
    if v.kind == "raw" and v.permission_id is not None:
        _restore(engine, audit, v, now)
    return v


def _restore(engine: Engine, audit: AuditLog, v: View, now: datetime) -> None:
    """Close the raw view's use of its permission (`privacy_restored`), pointing at the record
    that opened it."""
    held = [p for p in permissions(engine) if p.id == v.permission_id]
    if not held:
        return
    opened = [
        e.seq
        for e in audit.entries(action=Action.PRIVACY_REMOVED, user_id=v.account, since=v.started_at)
        if e.object_id == v.camera and e.user_id == v.account and e.time_from == v.started_at
    ]
    use = Use(
        held[0],
        v.account,
        v.camera,
        v.started_at,
        v.raw_until or now,
        v.reason or "",
        v.reference or "",
        opened[-1] if opened else 0,
    )
    end_use(audit, use, frames=0)


def touch(engine: Engine, view_id: int, user: str, now: datetime) -> View | None:
    """The page says the tile still plays: keep the view from expiring. None when it is not an
    open view of this user (ended meanwhile, or another user's)."""
    with transaction(engine) as conn:
        done = conn.execute(
            update(_V)
            .where(_V.c.id == view_id, _V.c.account == user, _V.c.ended_at.is_(None))
            .values(last_seen=now)
        )
    return view(engine, view_id) if done.rowcount == 1 else None


def view(engine: Engine, view_id: int) -> View | None:
    with engine.connect() as conn:
        row = conn.execute(select(_V).where(_V.c.id == view_id)).first()
    return _view(row) if row is not None else None


def open_views(engine: Engine, camera: str | None = None) -> list[View]:
    """Views watching now, oldest first: the supervisors' "who watches what"."""
    q = select(_V).where(_V.c.ended_at.is_(None))
    if camera is not None:
        q = q.where(_V.c.camera == camera)
    with engine.connect() as conn:
        return [_view(r) for r in conn.execute(q.order_by(_V.c.id))]


def due(engine: Engine, now: datetime, quiet: timedelta) -> list[tuple[View, str]]:
    """Open views that must end now, with why: a page quiet for longer than `quiet` (`expired`),
    a raw view past its grant (`grant_ended`)."""
    out: list[tuple[View, str]] = []
    for v in open_views(engine):
        if v.kind == "raw" and v.raw_until is not None and v.raw_until <= now:
            out.append((v, "grant_ended"))
        elif now - v.last_seen > quiet:
            out.append((v, "expired"))
    return out


# --- streams -----------------------------------------------------------------------------------


def put_stream(engine: Engine, s: Stream) -> None:
    with transaction(engine) as conn:
        conn.execute(delete(_S).where(_S.c.id == s.id))
        conn.execute(
            insert(_S).values(
                id=s.id,
                camera=s.camera,
                kind=s.kind,
                view_id=s.view_id,
                rtp_host=s.rtp_host,
                rtp_port=s.rtp_port,
                rtcp_port=s.rtcp_port,
                secret=s.secret,
                banner=s.banner,
                created_at=s.created_at,
                expires_at=s.expires_at,
            )
        )


def delete_stream(engine: Engine, stream_id: int) -> None:
    with transaction(engine) as conn:
        conn.execute(delete(_S).where(_S.c.id == stream_id))


def streams(engine: Engine, cameras: list[str] | None = None) -> list[Stream]:
    """The streams to feed (for these cameras): what a camera process reads every few hundred ms."""
    q = select(_S)
    if cameras is not None:
        q = q.where(_S.c.camera.in_(cameras))
    with engine.connect() as conn:
        return [_stream(r) for r in conn.execute(q.order_by(_S.c.id))]


def anonymised_stream(engine: Engine, camera: str) -> Stream | None:
    with engine.connect() as conn:
        row = conn.execute(select(_S).where(and_(_S.c.camera == camera, _S.c.kind == "anonymised"))).first()
    return _stream(row) if row is not None else None


# --- saved walls -------------------------------------------------------------------------------


def groups(engine: Engine, account: str) -> list[Group]:
    with engine.connect() as conn:
        rows = conn.execute(select(_G).where(_G.c.account == account).order_by(_G.c.title))
        return [
            Group(r.id, r.account, r.title, r.layout, tuple(r.cameras), _utc(r.updated_at))  # type: ignore[arg-type]
            for r in rows
        ]


def save_group(
    engine: Engine, *, account: str, title: str, layout: int, cameras: list[str | None], now: datetime
) -> Group:
    """Create or replace the account's group of that title."""
    if layout not in LAYOUTS:
        raise LiveError(f"a wall has 1, 4, 9 or 16 tiles, not {layout}")
    if len(cameras) > layout:
        raise LiveError(f"{len(cameras)} cameras do not fit on {layout} tiles")
    with transaction(engine) as conn:
        conn.execute(delete(_G).where(_G.c.account == account, _G.c.title == title))
        conn.execute(
            insert(_G).values(
                account=account, title=title, layout=layout, cameras=list(cameras), updated_at=now
            )
        )
    return next(g for g in groups(engine, account) if g.title == title)


def delete_group(engine: Engine, account: str, group_id: int) -> bool:
    with transaction(engine) as conn:
        done = conn.execute(delete(_G).where(_G.c.id == group_id, _G.c.account == account))
    return done.rowcount == 1


__all__ = [
    "LAYOUTS",
    "MAX_RAW",
    "RAW_DEFAULT",
    "Group",
    "LiveError",
    "Stream",
    "View",
    "anonymised_stream",
    "delete_group",
    "delete_stream",
    "due",
    "end_view",
    "groups",
    "new_token",
    "open_views",
    "put_stream",
    "save_group",
    "start_raw_view",
    "start_view",
    "streams",
    "touch",
    "view",
]
