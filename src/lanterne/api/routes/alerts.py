"""The live alert queue and the alert detail (issue 3, items 3 and 4): the JSON API (the pages are
in `lanterne.api.routes.pages`).

Who sees what: operators and supervisors handle alerts, and only those of the cameras in their
scope; auditors and admins see no footage at all, so every route here refuses them (403, recorded).
An alert outside the user's scope answers 403 and is recorded too, never 404: the refusal itself is
what an auditor needs to see.

What is recorded: viewing an alert's record is `SEARCH` with details `{"alert": id}` (it is a
look-up in the stored events), its snapshot `VIEW_SNAPSHOT`, its clip `VIEW_CLIP` with the purpose
the operator typed (recorded footage needs a stated purpose), each decision `ALERT_STATE` (written
by `lanterne.accountability.alerts`). Listing the queue and the live stream are not recorded one by
one: they carry no footage and would write a record every few seconds per open console.

New alerts reach open consoles by Server-Sent Events: each stream reads the store, in a worker
thread, for events stored after the last one it sent. On a small site (`lanterne run`, no NATS) it
reads every 250 ms: the pipeline keeps no channel to the web server, and a query on the
`created_at` of a few rows costs well under a millisecond, leaving most of the 1 s budget to the
browser. In a city (`cluster.nats_url` set) the ingester rings a bell on NATS after each commit
(`lanterne.cluster.StoredBell`) and the streams read at once, and otherwise every few seconds in
case a ring was lost: 50 open consoles no longer query the store 200 times a second. Either way
what is sent comes from the store, in the user's scope; the bell carries nothing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy import Engine

from lanterne.accountability.alerts import (
    TRANSITIONS,
    Alert,
    AlertState,
    DecisionError,
    acknowledge,
    alert_changes,
    confirm,
    dismiss,
    evidence_file,
    find_alert,
    history,
    last_step_id,
    list_alerts,
)
from lanterne.accountability.outbound import outbox_for
from lanterne.accountability.precision import PrecisionBoard
from lanterne.api.deps import (
    AuditDep,
    ClockDep,
    ConfigDep,
    CurrentUser,
    EngineDep,
    Now,
    VideoViewer,
    Viewer,
    Writer,
    forbid,
    renderer,
    required_purpose,
)
from lanterne.api.schemas.alerts import (
    AlertOut,
    AlertQuery,
    ClipQuery,
    Dismissal,
    FollowUp,
    HistoryOut,
    PrecisionOut,
    StepOut,
)
from lanterne.api.schemas.common import ERRORS, iso_utc
from lanterne.audit import Action, AuditLog
from lanterne.config.schema import Camera
from lanterne.core.errors import RecordingError
from lanterne.video.evidence.writer import POST_SECONDS, PRE_SECONDS
from lanterne.video.recording import recording_mode

LABEL = "machine suggestion — to verify"
POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
BELL_FALLBACK_SECONDS = 5.0
"""With a bell, how long a stream waits for one before it reads the store anyway."""


class Doorbell:
    """Wakes every open stream of this app when the ingester rings (from NATS's thread). Each
    ring replaces the event the streams wait on, so a stream never misses one that came while
    it was reading the store (it reads again right after)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, announce: Callable[[str], None]) -> None:
        """`announce(camera)` rings every console of the city (this one included) after a
        decision taken here."""
        self._loop = loop
        self._event = asyncio.Event()
        self.announce = announce

    def ring(self) -> None:
        self._loop.call_soon_threadsafe(self._rang)

    def _rang(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event


CLIP_PURPOSE_REQUIRED = "a purpose is required to view a recorded clip"

router = APIRouter(tags=["alerts"], responses=ERRORS)


class _Precisions:
    """Measured precision per (camera, type) for one request, read from the process's board."""

    def __init__(self, engine: Engine, now: datetime) -> None:
        self.board = precision_board(engine)
        self.now = now

    def __call__(self, camera: str, type: str) -> PrecisionOut:
        v = self.board.get(camera, type, self.now)
        return PrecisionOut(confirmed=v.confirmed, decided=v.decided, value=v.precision, days=PRECISION_DAYS)


PRECISION_TTL_S = 10.0
"""A 30-day precision moves slowly: the board is recounted at most this often (a decision taken
here recounts its detector at once; one taken by another process shows within this time)."""
PRECISION_DAYS = 30
_boards: weakref.WeakKeyDictionary[Engine, PrecisionBoard] = weakref.WeakKeyDictionary()
"""Per database engine (a weak key: a closed app's board goes with its engine)."""
_boards_lock = threading.Lock()


def precision_board(engine: Engine) -> PrecisionBoard:
    """The precision board of this engine's store, shared by every request of the process."""
    with _boards_lock:
        board = _boards.get(engine)
        if board is None:
            board = _boards[engine] = PrecisionBoard(engine, days=PRECISION_DAYS, ttl_s=PRECISION_TTL_S)
        return board


def _alert_out(a: Alert, precisions: _Precisions) -> AlertOut:
    return AlertOut(
        id=a.id,
        type=str(a.type),
        camera=a.camera,
        zone=a.zone,
        start=iso_utc(a.start),
        end=iso_utc(a.end),
        stored_at=iso_utc(a.stored_at),
        ongoing=a.ongoing,
        confidence=round(a.confidence, 3),
        region=list(a.region),
        state=str(a.state),
        label=LABEL,
        precision=precisions(a.camera, str(a.type)),
        snapshot_url=f"/api/alerts/{a.id}/snapshot",
        clip_url=f"/api/alerts/{a.id}/clip",
        page_url=f"/console/alerts/{a.id}",
    )


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
        return cls(datetime.now(UTC), frozenset(), last_step_id(engine))

    @classmethod
    def resume(cls, token: str | None) -> _Cursor | None:
        try:
            when, step = (token or "").split(" ")
            since = datetime.fromisoformat(when)
            return cls(since if since.tzinfo else since.replace(tzinfo=UTC), frozenset(), int(step))
        except ValueError:
            return None

    def token(self) -> str:
        return f"{iso_utc(self.since)} {self.step}"


def _poll(
    engine: Engine, scope: frozenset[str], cursor: _Cursor, now: datetime
) -> tuple[list[AlertOut], _Cursor]:
    """New alerts of `scope` since the cursor, then alerts whose state another operator changed
    (so every open console shows who has taken an alert), and the cursor after them."""
    changes = alert_changes(engine, scope, cursor.since, cursor.sent, cursor.step)
    fresh = changes.stored
    since, sent = cursor.since, cursor.sent
    if fresh:
        last = max(a.stored_at for a in fresh)
        at_last = {a.id for a in fresh if a.stored_at == last}
        sent = frozenset(at_last | (sent if last == since else set()))
        since = last
    precisions = _Precisions(engine, now)
    rows = fresh + changes.decided
    return [_alert_out(a, precisions) for a in rows], _Cursor(since, sent, changes.last_step)


def _load(
    request: Request, engine: Engine, user: CurrentUser, alert_id: str, action: Action = Action.SEARCH
) -> Alert:
    """The alert, after the scope check: 404 if it is not an alert, 403 (recorded as `action`
    with the denial) if it is one of a camera the user may not see."""
    a = find_alert(engine, alert_id)
    if a is None:
        raise HTTPException(404, detail=f"alert {alert_id!r} does not exist (or was deleted by retention)")
    if not user.sees(a.camera):
        forbid(request, user, "alert", alert_id, action=action, object_type="alert")
    return a


def _evidence(engine: Engine, evidence_dir: str, alert_id: str, kind: str) -> Path:
    rel = evidence_file(engine, alert_id, kind)
    if rel is None:
        raise HTTPException(404, detail=f"alert {alert_id!r} has no {kind}")
    root = Path(evidence_dir).resolve()
    path = (root / rel).resolve()
    # A stored path is written by the evidence writer, but a hand-edited row must not make the
    # server read outside the evidence directory.
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(
            404, detail=f"the {kind} of alert {alert_id!r} is missing from the evidence directory"
        )
    return path


@router.get("/api/alerts", summary="Alerts of the cameras in the user's scope, newest first")
def get_alerts(
    request: Request,
    user: Viewer,
    query: Annotated[AlertQuery, Query()],
    engine: EngineDep,
    now: Now,
) -> list[AlertOut]:
    if query.camera is not None and not user.sees(query.camera):
        forbid(request, user, "camera", query.camera)
    alerts = list_alerts(
        engine,
        state=query.state,
        camera=query.camera,
        limit=query.limit,
        scope=user.scope,
        before=query.before,
    )
    precisions = _Precisions(engine, now)
    return [_alert_out(a, precisions) for a in alerts]


@router.get(
    "/api/alerts/stream",
    summary="Server-Sent Events: each new alert of the user's scope as it is stored",
    response_class=StreamingResponse,
)
async def stream(request: Request, user: Viewer, engine: EngineDep, clock: ClockDep) -> StreamingResponse:
    scope = user.scope

    def poll(cursor: _Cursor) -> tuple[list[AlertOut], _Cursor]:
        return _poll(engine, scope, cursor, clock())

    async def events() -> AsyncIterator[str]:
        cursor = _Cursor.resume(request.headers.get("last-event-id"))
        if cursor is None:
            cursor = await anyio.to_thread.run_sync(_Cursor.now, engine)
        beat = time.monotonic()
        doorbell: Doorbell | None = getattr(request.app.state, "doorbell", None)
        yield "retry: 1000\n: stream open\n\n"
        while not await request.is_disconnected():
            rung = doorbell.current() if doorbell is not None else None
            changed, cursor = await anyio.to_thread.run_sync(poll, cursor)
            for a in changed:
                data = json.dumps(a.model_dump(mode="json"), ensure_ascii=False)
                yield f"event: alert\nid: {cursor.token()}\ndata: {data}\n\n"
            if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                beat = time.monotonic()
                yield ": heartbeat\n\n"
            if rung is None:
                await anyio.sleep(POLL_SECONDS)
            else:
                with anyio.move_on_after(BELL_FALLBACK_SECONDS):
                    await rung.wait()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/api/alerts/{alert_id}", summary="One alert (the view is recorded)")
def get_alert(
    request: Request, alert_id: str, user: Viewer, engine: EngineDep, audit: AuditDep, now: Now
) -> AlertOut:
    a = _load(request, engine, user, alert_id)
    audit.append(user.id, Action.SEARCH, object_type="alert", object_id=alert_id, details={"alert": alert_id})
    return _alert_out(a, _Precisions(engine, now))


@router.get("/api/alerts/{alert_id}/history", summary="Every state change: who and when")
def get_history(request: Request, alert_id: str, user: Viewer, engine: EngineDep) -> HistoryOut:
    a = _load(request, engine, user, alert_id)
    return HistoryOut(
        id=alert_id,
        raised=iso_utc(a.start),
        steps=[
            StepOut(
                state=str(s.state),
                user_id=s.user_id,
                ts=iso_utc(s.ts),
                reason=s.reason,
                reason_text=s.reason_text,
                follow_up=s.follow_up,
            )
            for s in history(engine, alert_id)
        ],
    )


@router.get(
    "/api/alerts/{alert_id}/snapshot",
    summary="The anonymised snapshot (JPEG; the view is recorded)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def get_snapshot(
    request: Request, alert_id: str, user: VideoViewer, engine: EngineDep, audit: AuditDep, cfg: ConfigDep
) -> FileResponse:
    _load(request, engine, user, alert_id, Action.VIEW_SNAPSHOT)
    path = _evidence(engine, cfg.store.evidence_dir, alert_id, "snapshot")
    # Recorded before it is served: a view the log refused must not happen.
    audit.append(user.id, Action.VIEW_SNAPSHOT, object_type="alert", object_id=alert_id)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.get(
    "/api/alerts/{alert_id}/clip",
    summary="The anonymised clip (MP4); a stated purpose is required and recorded",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}},
)
def get_clip(
    request: Request,
    alert_id: str,
    user: VideoViewer,
    query: Annotated[ClipQuery, Query()],
    engine: EngineDep,
    audit: AuditDep,
    cfg: ConfigDep,
) -> Response:
    a = _load(request, engine, user, alert_id)
    purpose = required_purpose(query.purpose, CLIP_PURPOSE_REQUIRED)
    camera = next((c for c in cfg.cameras if c.id == a.camera), None)
    if (
        camera is not None
        and recording_mode(cfg, camera.id) != "off"
        and evidence_file(engine, alert_id, "clip") is None
    ):
        return _recorded_clip(request, a, camera, user, audit, purpose)
    path = _evidence(engine, cfg.store.evidence_dir, alert_id, "clip")
    audit.append(user.id, Action.VIEW_CLIP, object_type="alert", object_id=alert_id, purpose=purpose)
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, no-store"})


def _recorded_clip(
    request: Request, a: Alert, camera: Camera, user: CurrentUser, audit: AuditLog, purpose: str
) -> Response:
    """A recorded camera's clip: the alert's time range of the recording, rendered through the
    one read path (decrypted, masked, anonymised) while it streams. Its segments are verified
    before the first byte, and the audit record names them."""
    start = a.start - timedelta(seconds=PRE_SECONDS)
    end = a.end + timedelta(seconds=POST_SECONDS)
    try:
        view = renderer(request).open(camera, start, end)
    except RecordingError as exc:
        raise HTTPException(409, detail=str(exc)) from None
    if not view.pieces:
        raise HTTPException(
            404,
            detail=f"no recording of camera {a.camera!r} covers alert {a.id!r} (deleted, lost or not yet sealed)",
        )
    audit.append(
        user.id,
        Action.VIEW_CLIP,
        object_type="alert",
        object_id=a.id,
        purpose=purpose,
        details={
            "recording": {
                "camera": a.camera,
                "from": iso_utc(start),
                "to": iso_utc(end),
                "segments": view.segment_ids,
            }
        },
    )
    # At the analysis rate, as the clips written at analysis time were: what the rule saw.
    return StreamingResponse(
        view.mp4(fps=camera.fps), media_type="video/mp4", headers={"Cache-Control": "private, no-store"}
    )


# --- decisions --------------------------------------------------------------------------------

Decide = Callable[[Engine, AuditLog, str, str, datetime], Any]


def _decide(
    request: Request,
    engine: Engine,
    audit: AuditLog,
    user: CurrentUser,
    alert_id: str,
    to: AlertState,
    act: Decide,
    now: datetime,
) -> AlertOut:
    _load(request, engine, user, alert_id, Action.ALERT_STATE)
    try:
        act(engine, audit, alert_id, user.id, now)
    except DecisionError as exc:
        # A refused step is either out of order (someone else already decided: 409) or an
        # incomplete decision (no reason, no follow-up: 422). The state tells which.
        current = _load(request, engine, user, alert_id).state
        # The library's messages end with a hint for the command line ("; pass --reason"),
        # which means nothing in the console: the page shows the first part.
        detail = str(exc).split("; pass --")[0]
        raise HTTPException(422 if to in TRANSITIONS[current] else 409, detail=detail) from None
    decided = _load(request, engine, user, alert_id)
    precision_board(engine).refresh(decided.camera, str(decided.type), now)  # seen at once
    out = _alert_out(decided, _Precisions(engine, now))
    doorbell: Doorbell | None = getattr(request.app.state, "doorbell", None)
    if doorbell is not None:
        doorbell.announce(out.camera)  # every console of the city shows the new state at once
    return out


@router.post("/api/alerts/{alert_id}/ack", summary="Acknowledge: someone is looking")
def post_ack(
    request: Request, _csrf: Writer, alert_id: str, user: Viewer, engine: EngineDep, audit: AuditDep, now: Now
) -> AlertOut:
    return _decide(request, engine, audit, user, alert_id, AlertState.ACKNOWLEDGED, acknowledge, now)


@router.post(
    "/api/alerts/{alert_id}/confirm", summary="Confirm with a follow-up (recorded, never dispatched)"
)
def post_confirm(
    request: Request,
    _csrf: Writer,
    alert_id: str,
    body: FollowUp,
    user: Viewer,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> AlertOut:
    def act(engine: Engine, audit: AuditLog, event_id: str, user_id: str, now: datetime) -> Any:
        outbox = outbox_for(request.app.state.cfg)
        return confirm(engine, audit, event_id, user_id, now, body.follow_up or "", outbox)

    if not body.follow_up:
        _load(request, engine, user, alert_id, Action.ALERT_STATE)
        raise HTTPException(
            422,
            detail="a confirmation needs a follow-up: none, monitoring, field_request or emergency_services",
        )
    return _decide(request, engine, audit, user, alert_id, AlertState.CONFIRMED, act, now)


@router.post("/api/alerts/{alert_id}/dismiss", summary="Dismiss with the reason the detector was wrong")
def post_dismiss(
    request: Request,
    _csrf: Writer,
    alert_id: str,
    body: Dismissal,
    user: Viewer,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> AlertOut:
    def act(engine: Engine, audit: AuditLog, event_id: str, user_id: str, now: datetime) -> Any:
        return dismiss(engine, audit, event_id, user_id, now, body.reason, body.text)

    return _decide(request, engine, audit, user, alert_id, AlertState.DISMISSED, act, now)
