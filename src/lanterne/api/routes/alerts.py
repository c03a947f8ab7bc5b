"""The live alert queue and the alert detail (issue 3, items 3 and 4): pages and JSON API.

Who sees what: operators and supervisors handle alerts, and only those of the cameras in their
scope; auditors and admins see no footage at all, so every route here refuses them (403, recorded).
An alert outside the user's scope answers 403 and is recorded too, never 404: the refusal itself is
what an auditor needs to see.

What is recorded (the audit log's `Action` belongs to the audit module; nothing is added to it):
viewing an alert's record is `SEARCH` with details `{"alert": id}` (it is a look-up in the stored
events), its snapshot `VIEW_SNAPSHOT`, its clip `VIEW_CLIP` with the purpose the operator typed
(recorded footage needs a stated purpose), each decision `ALERT_STATE` (written by
`lanterne.accountability.alerts`). Listing the queue and the live stream are not recorded one by one: they carry
no footage and would write a record every few seconds per open console.

New alerts reach open consoles by Server-Sent Events: each stream polls the store every 250 ms in
a worker thread for events stored after the last one it sent. Polling keeps the pipeline (another
process, possibly another machine) free of any channel to the web server; a query on the
`created_at` of a few rows costs well under a millisecond, so 250 ms leaves most of the 1 s budget
to the browser.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Engine, func, select
from sqlalchemy.sql import Select

from lanterne.accountability.alerts import (
    TRANSITIONS,
    AlertState,
    DecisionError,
    acknowledge,
    confirm,
    dismiss,
    history,
)
from lanterne.accountability.precision import latest_state, precision
from lanterne.api.deps import CurrentUser, audit_log, csrf_protect, current_user, forbid, require_roles
from lanterne.audit import Action
from lanterne.config import Config
from lanterne.core.types import EventType
from lanterne.store.tables import AlertStateRecord, EventRecord, EvidenceRecord

ALERT_MODE = "alerts"
ALERT_ROLES = ("operator", "supervisor")
LABEL = "machine suggestion — to verify"
STATIC = Path(__file__).resolve().parents[1] / "static" / "console"
POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
CLIP_PURPOSE_REQUIRED = "a purpose is required to view a recorded clip"

Viewer = Annotated[CurrentUser, Depends(require_roles(*ALERT_ROLES))]
"""Operators and supervisors; auditors and admins see no footage (403, recorded). Module-level:
with postponed annotations FastAPI resolves the alias among the module's names."""


class FollowUp(BaseModel):
    follow_up: str | None = None


class Dismissal(BaseModel):
    reason: str | None = None
    text: str | None = None


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _query(scope: frozenset[str]) -> tuple[Select[Any], Any]:
    """Alerts of `scope` with their current state, and the state alias to filter on."""
    s, on = latest_state()
    q = (
        select(
            EventRecord.id,
            EventRecord.type,
            EventRecord.camera,
            EventRecord.zone,
            EventRecord.start_ts,
            EventRecord.end_ts,
            EventRecord.confidence,
            EventRecord.x0,
            EventRecord.y0,
            EventRecord.x1,
            EventRecord.y1,
            EventRecord.ongoing,
            EventRecord.created_at,
            s.state,
        )
        .select_from(EventRecord)
        .outerjoin(s, on)
        .where(EventRecord.mode == ALERT_MODE)
    )
    if "*" not in scope:
        q = q.where(EventRecord.camera.in_(sorted(scope)))
    return q, s


class _Precisions:
    """Measured precision per (camera, type), computed once per request: a queue of 100 alerts
    usually comes from a handful of detectors."""

    def __init__(self, engine: Engine, now: datetime) -> None:
        self.engine = engine
        self.now = now
        self.cache: dict[tuple[str, str], dict[str, object]] = {}

    def __call__(self, camera: str, type: str) -> dict[str, object]:
        key = (camera, type)
        if key not in self.cache:
            self.cache[key] = _shared_precision(self.engine, camera, type, self.now)
        return self.cache[key]


PRECISION_TTL_S = 10.0
"""A 30-day precision moves slowly; sharing it between requests for a few seconds keeps 50 open
consoles from running one precision query per detector on every refresh (measured: the alert
list cost 170 ms of server time before, dominated by these queries)."""
_precision_cache: weakref.WeakKeyDictionary[
    Engine, dict[tuple[str, str], tuple[float, dict[str, object]]]
] = weakref.WeakKeyDictionary()
"""Per database engine (a weak key: a closed app's cache goes with its engine)."""
_precision_lock = threading.Lock()


def _shared_precision(engine: Engine, camera: str, type: str, now: datetime) -> dict[str, object]:
    key = (camera, type)
    with _precision_lock:
        hit = _precision_cache.get(engine, {}).get(key)
    if hit is not None and time.monotonic() - hit[0] < PRECISION_TTL_S:
        return hit[1]
    p = precision(engine, camera=camera, type=EventType(type), now=now, days=30)
    value: dict[str, object] = {
        "confirmed": p.confirmed,
        "decided": p.decided,
        "value": p.precision,
        "days": 30,
    }
    with _precision_lock:
        _precision_cache.setdefault(engine, {})[key] = (time.monotonic(), value)
    return value


def clear_precision_cache() -> None:
    """Forget shared precisions (after a decision, so the deciding operator sees it at once)."""
    with _precision_lock:
        _precision_cache.clear()


def _alert_json(r: Any, precisions: _Precisions) -> dict[str, object]:
    return {
        "id": r.id,
        "type": r.type,
        "camera": r.camera,
        "zone": r.zone,
        "start": _iso(r.start_ts),
        "end": _iso(r.end_ts),
        "stored_at": _iso(r.created_at),
        "ongoing": bool(r.ongoing),
        "confidence": round(float(r.confidence), 3),
        "region": [float(r.x0), float(r.y0), float(r.x1), float(r.y1)],
        "state": r.state or str(AlertState.NEW),
        "label": LABEL,
        "precision": precisions(r.camera, r.type),
        "snapshot_url": f"/api/alerts/{r.id}/snapshot",
        "clip_url": f"/api/alerts/{r.id}/clip",
        "page_url": f"/console/alerts/{r.id}",
    }


@dataclass(frozen=True, slots=True)
class _Cursor:
    """Where a live stream stands: alerts stored since `since` (those at exactly `since` already
    sent are in `sent`) and decisions after `step` (the `alert_states` id). Sent as each SSE event's
    id, so a browser that reconnects (`Last-Event-ID`) misses nothing stored while it was away."""

    since: datetime
    sent: frozenset[str]
    step: int

    @classmethod
    def now(cls, engine: Engine) -> _Cursor:
        with engine.connect() as conn:
            step = conn.execute(select(func.max(AlertStateRecord.id))).scalar() or 0
        return cls(datetime.now(UTC), frozenset(), int(step))

    @classmethod
    def resume(cls, token: str | None) -> _Cursor | None:
        try:
            when, step = (token or "").split(" ")
            since = datetime.fromisoformat(when)
            return cls(since if since.tzinfo else since.replace(tzinfo=UTC), frozenset(), int(step))
        except ValueError:
            return None

    def token(self) -> str:
        return f"{_iso(self.since)} {self.step}"


def _poll(
    engine: Engine, scope: frozenset[str], cursor: _Cursor, now: datetime
) -> tuple[list[dict[str, object]], _Cursor]:
    """New alerts of `scope` stored since the cursor, then alerts whose state another operator
    changed (so every open console shows who has taken an alert), and the cursor after them.

    `>=` on `created_at` with the ids already sent at that instant: two alerts stored in the same
    microsecond are both sent, and none twice.
    """
    q = (
        _query(scope)[0]
        .where(EventRecord.created_at >= cursor.since)
        .order_by(EventRecord.created_at)
        .limit(100)
    )
    with engine.connect() as conn:
        fresh = [r for r in conn.execute(q) if r.id not in cursor.sent]
        steps = conn.execute(
            select(AlertStateRecord.event_id, AlertStateRecord.id)
            .where(AlertStateRecord.id > cursor.step)
            .order_by(AlertStateRecord.id)
            .limit(500)
        ).all()
        decided = sorted({r.event_id for r in steps} - {r.id for r in fresh})
        changed = list(conn.execute(_query(scope)[0].where(EventRecord.id.in_(decided)))) if decided else []
    since, sent = cursor.since, cursor.sent
    if fresh:
        last = max(r.created_at for r in fresh)
        at_last = {r.id for r in fresh if r.created_at == last}
        sent = frozenset(at_last | (sent if last == since else set()))
        since = last
    step = max((r.id for r in steps), default=cursor.step)
    precisions = _Precisions(engine, now)
    rows = fresh + changed
    return [_alert_json(r, precisions) for r in rows], _Cursor(since, sent, step)


def alerts_router(cfg: Config, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> APIRouter:
    """The routes of the queue and the detail, bound to one configuration (its evidence directory)
    and clock (the 30-day precision window)."""
    router = APIRouter(tags=["alerts"])
    evidence_root = Path(cfg.store.evidence_dir).resolve()

    def engine_of(request: Request) -> Engine:
        return request.app.state.store.engine  # type: ignore[no-any-return]

    def load(request: Request, user: CurrentUser, alert_id: str, action: Action = Action.SEARCH) -> Any:
        """The alert's row, after the scope check: 404 if it is not an alert, 403 (recorded as
        `action` with the denial) if it is one of a camera the user may not see."""
        with engine_of(request).connect() as conn:
            r = conn.execute(_query(frozenset({"*"}))[0].where(EventRecord.id == alert_id)).first()
        if r is None:
            raise HTTPException(
                404, detail=f"alert {alert_id!r} does not exist (or was deleted by retention)"
            )
        if not user.sees(r.camera):
            forbid(request, user, "alert", alert_id, action=action, object_type="alert")
        return r

    def evidence(request: Request, alert_id: str, kind: str) -> Path:
        with engine_of(request).connect() as conn:
            rel = conn.execute(
                select(EvidenceRecord.path)
                .where(EvidenceRecord.event_id == alert_id, EvidenceRecord.kind == kind)
                .order_by(EvidenceRecord.id.desc())
                .limit(1)
            ).scalar()
        if rel is None:
            raise HTTPException(404, detail=f"alert {alert_id!r} has no {kind}")
        path = (evidence_root / rel).resolve()
        # A stored path is written by the evidence writer, but a hand-edited row must not make the
        # server read outside the evidence directory.
        if not path.is_relative_to(evidence_root) or not path.is_file():
            raise HTTPException(
                404, detail=f"the {kind} of alert {alert_id!r} is missing from the evidence directory"
            )
        return path

    # --- pages --------------------------------------------------------------------------------

    def page(request: Request, name: str) -> Response:
        try:
            user = current_user(request)
        except HTTPException as exc:
            if exc.status_code != 401:
                raise
            return RedirectResponse("/login", status_code=303)
        if user.role not in ALERT_ROLES:
            forbid(request, user, "alert queue")
        return Response((STATIC / name).read_bytes(), media_type="text/html; charset=utf-8")

    @router.get("/console", include_in_schema=False)
    def queue_page(request: Request) -> Response:
        return page(request, "queue.html")

    @router.get("/console/alerts/{alert_id}", include_in_schema=False)
    def alert_page(request: Request, alert_id: str) -> Response:
        return page(request, "alert.html")

    # --- JSON ---------------------------------------------------------------------------------

    @router.get("/api/alerts", summary="Alerts of the cameras in the user's scope, newest first")
    def list_alerts(
        request: Request,
        user: Viewer,
        state: AlertState | None = None,
        camera: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        before: Annotated[
            datetime | None, Query(description="only alerts that started before (ISO time)")
        ] = None,
    ) -> list[dict[str, object]]:
        if camera is not None and not user.sees(camera):
            forbid(request, user, "camera", camera)
        q, s = _query(user.scope)
        if camera is not None:
            q = q.where(EventRecord.camera == camera)
        if state is not None:
            q = q.where(s.state.is_(None)) if state is AlertState.NEW else q.where(s.state == str(state))
        if before is not None:
            if before.tzinfo is None:
                before = before.replace(tzinfo=UTC)
            q = q.where(EventRecord.start_ts < before)
        q = q.order_by(EventRecord.start_ts.desc(), EventRecord.id).limit(limit)
        precisions = _Precisions(engine_of(request), clock())
        with engine_of(request).connect() as conn:
            rows = list(conn.execute(q))
        return [_alert_json(r, precisions) for r in rows]

    @router.get(
        "/api/alerts/stream",
        summary="Server-Sent Events: each new alert of the user's scope as it is stored",
        response_class=StreamingResponse,
    )
    async def stream(request: Request, user: Viewer) -> StreamingResponse:
        engine = engine_of(request)
        scope = user.scope

        def poll(cursor: _Cursor) -> tuple[list[dict[str, object]], _Cursor]:
            return _poll(engine, scope, cursor, clock())

        async def events() -> AsyncIterator[str]:
            cursor = _Cursor.resume(request.headers.get("last-event-id"))
            if cursor is None:
                cursor = await anyio.to_thread.run_sync(_Cursor.now, engine)
            beat = time.monotonic()
            yield "retry: 1000\n: stream open\n\n"
            while not await request.is_disconnected():
                changed, cursor = await anyio.to_thread.run_sync(poll, cursor)
                for a in changed:
                    data = json.dumps(a, ensure_ascii=False)
                    yield f"event: alert\nid: {cursor.token()}\ndata: {data}\n\n"
                if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                    beat = time.monotonic()
                    yield ": heartbeat\n\n"
                await anyio.sleep(POLL_SECONDS)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get("/api/alerts/{alert_id}", summary="One alert (the view is recorded)")
    def get_alert(request: Request, alert_id: str, user: Viewer) -> dict[str, object]:
        r = load(request, user, alert_id)
        audit_log(request).append(
            user.id, Action.SEARCH, object_type="alert", object_id=alert_id, details={"alert": alert_id}
        )
        return _alert_json(r, _Precisions(engine_of(request), clock()))

    @router.get("/api/alerts/{alert_id}/history", summary="Every state change: who and when")
    def get_history(request: Request, alert_id: str, user: Viewer) -> dict[str, object]:
        r = load(request, user, alert_id)
        steps = history(engine_of(request), alert_id)
        return {
            "id": alert_id,
            "raised": _iso(r.start_ts),
            "steps": [
                {
                    "state": str(s.state),
                    "user_id": s.user_id,
                    "ts": _iso(s.ts),
                    "reason": s.reason,
                    "reason_text": s.reason_text,
                    "follow_up": s.follow_up,
                }
                for s in steps
            ],
        }

    @router.get(
        "/api/alerts/{alert_id}/snapshot",
        summary="The anonymised snapshot (JPEG; the view is recorded)",
        response_class=FileResponse,
    )
    def get_snapshot(request: Request, alert_id: str, user: Viewer) -> FileResponse:
        load(request, user, alert_id, Action.VIEW_SNAPSHOT)
        path = evidence(request, alert_id, "snapshot")
        # Recorded before it is served: a view the log refused must not happen.
        audit_log(request).append(user.id, Action.VIEW_SNAPSHOT, object_type="alert", object_id=alert_id)
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})

    @router.get(
        "/api/alerts/{alert_id}/clip",
        summary="The anonymised clip (MP4); a stated purpose is required and recorded",
        response_class=FileResponse,
    )
    def get_clip(
        request: Request,
        alert_id: str,
        user: Viewer,
        purpose: Annotated[str | None, Query(max_length=500)] = None,
    ) -> FileResponse:
        load(request, user, alert_id)
        if purpose is None or not purpose.strip():
            raise HTTPException(400, detail=CLIP_PURPOSE_REQUIRED)
        path = evidence(request, alert_id, "clip")
        audit_log(request).append(
            user.id, Action.VIEW_CLIP, object_type="alert", object_id=alert_id, purpose=purpose.strip()
        )
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, no-store"})

    # --- decisions ----------------------------------------------------------------------------

    def decide(
        request: Request, user: CurrentUser, alert_id: str, to: AlertState, act: Callable[..., Any]
    ) -> Any:
        load(request, user, alert_id, Action.ALERT_STATE)
        engine = engine_of(request)
        try:
            act(engine, audit_log(request), alert_id, user.id, clock())
        except DecisionError as exc:
            # A refused step is either out of order (someone else already decided: 409) or an
            # incomplete decision (no reason, no follow-up: 422). The state tells which.
            current = AlertState(load(request, user, alert_id).state or AlertState.NEW)
            # The library's messages end with a hint for the command line ("; pass --reason"),
            # which means nothing in the console: the page shows the first part.
            detail = str(exc).split("; pass --")[0]
            raise HTTPException(422 if to in TRANSITIONS[current] else 409, detail=detail) from None
        clear_precision_cache()
        return _alert_json(load(request, user, alert_id), _Precisions(engine, clock()))

    @router.post(
        "/api/alerts/{alert_id}/ack",
        summary="Acknowledge: someone is looking",
        dependencies=[Depends(csrf_protect)],
    )
    def post_ack(request: Request, alert_id: str, user: Viewer) -> dict[str, object]:
        return decide(request, user, alert_id, AlertState.ACKNOWLEDGED, acknowledge)  # type: ignore[no-any-return]

    @router.post(
        "/api/alerts/{alert_id}/confirm",
        summary="Confirm with a follow-up (recorded, never dispatched)",
        dependencies=[Depends(csrf_protect)],
    )
    def post_confirm(request: Request, alert_id: str, body: FollowUp, user: Viewer) -> dict[str, object]:
        def act(engine: Engine, audit: Any, event_id: str, user_id: str, now: datetime) -> Any:
            return confirm(engine, audit, event_id, user_id, now, body.follow_up or "")

        if not body.follow_up:
            load(request, user, alert_id, Action.ALERT_STATE)
            raise HTTPException(
                422,
                detail="a confirmation needs a follow-up: none, monitoring, field_request or emergency_services",
            )
        return decide(request, user, alert_id, AlertState.CONFIRMED, act)  # type: ignore[no-any-return]

    @router.post(
        "/api/alerts/{alert_id}/dismiss",
        summary="Dismiss with the reason the detector was wrong",
        dependencies=[Depends(csrf_protect)],
    )
    def post_dismiss(request: Request, alert_id: str, body: Dismissal, user: Viewer) -> dict[str, object]:
        def act(engine: Engine, audit: Any, event_id: str, user_id: str, now: datetime) -> Any:
            return dismiss(engine, audit, event_id, user_id, now, body.reason, body.text)

        return decide(request, user, alert_id, AlertState.DISMISSED, act)  # type: ignore[no-any-return]

    return router
