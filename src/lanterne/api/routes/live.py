"""The live wall's API (issue 14): start, confirm and end views; remove protection under a
permission; who watches what; saved walls.

Who may watch: operators and supervisors, only cameras in their scope, only while they hold a
habilitation and a training record (`VideoViewer`, checked again at every confirmation: a record
that lapses mid-shift ends the view at the next one). Anything else is refused (403) and the
refusal recorded. Every view's start and end is a `view_live` audit record with its purpose.

The gateway starts with the first request that needs it, not with the console: a console nobody
watches live starts no Janus, and tests of the other routes start none. Without a gateway (it
cannot start, or is unreachable) anonymised views still play, through the fallback: the view's
pictures as MJPEG from this console (`runtime.live_wall`), on the record like any other view.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import websockets
from fastapi import APIRouter, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from lanterne.accountability import live
from lanterne.accountability.habilitation import may_view_video
from lanterne.accountability.privacy import PrivacyError
from lanterne.api.deps import (
    FOOTAGE_ROLES,
    AuditDep,
    ConfigDep,
    CurrentUser,
    EngineDep,
    Now,
    Supervisor,
    VideoViewer,
    Viewer,
    Writer,
    current_user,
    forbid,
)
from lanterne.api.schemas.common import ERRORS
from lanterne.api.schemas.live import GrantOut, GroupIn, GroupOut, LiveStatusOut, RawViewIn, ViewIn, ViewOut
from lanterne.audit import Action
from lanterne.config import Config
from lanterne.core.errors import JanusError
from lanterne.runtime.live_wall import Grant, LiveWall
from lanterne.video.live import JpegRelay

HEARTBEAT_SECONDS = 5.0
"""How often a playing tile confirms it still plays: a sixth of the default quiet time."""

GATEWAY_PATH = "/api/live/gateway"
"""Where pages reach Janus (relayed by the console) unless `live.public_url` names another way."""
JANUS_PROTOCOL = "janus-protocol"
FALLBACK_PATH = "/api/live/views/{view}/mjpeg"
BOUNDARY = "lanterne-frame"
FALLBACK_CHECK_SECONDS = 1.0
"""How often a fallback stream looks whether its view is still open: a view that ended (quiet,
refused at a confirmation, closed elsewhere) stops sending pictures within a second."""
FALLBACK_QUIET_SECONDS = 10.0
"""A fallback stream that got no picture for this long ends; the page's tile says
"reconnecting" and asks again."""

ViewId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="The view's number.")]
GroupId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="The saved wall's number.")]

router = APIRouter(tags=["live wall"], responses=ERRORS)
_opening = threading.Lock()


def wall(request: Request) -> LiveWall:
    """The console's live wall, started on first use."""
    state = request.app.state
    with _opening:
        w: LiveWall | None = getattr(state, "live_wall", None)
        if w is None:
            import tempfile

            cfg = state.cfg
            workdir = Path(tempfile.mkdtemp(prefix="lanterne-janus-"))
            w = LiveWall.open(cfg, state.store.engine, state.audit, workdir, state.clock).start()
            state.live_wall = w
    return w


def _usable(request: Request) -> LiveWall:
    w = wall(request)
    if w.janus is None:
        why = w.unavailable or "live view over WebRTC unavailable"
        raise HTTPException(503, f"{why}; removing protection needs WebRTC (the fallback is anonymised only)")
    return w


def _in_scope(request: Request, user: CurrentUser, camera: str, cfg_cameras: set[str]) -> None:
    if camera not in cfg_cameras:
        raise HTTPException(404, f"no camera {camera!r}")
    if not user.sees(camera):
        forbid(request, user, "view_live", camera, action=Action.ACCESS_DENIED, object_type="camera")


def _grant(g: Grant, cfg: Config) -> GrantOut:
    return GrantOut(
        view=g.view.id,
        camera=g.view.camera,
        kind=g.view.kind,
        janus_url=(cfg.live.public_url or GATEWAY_PATH) if g.token is not None else None,
        fallback_url=FALLBACK_PATH.format(view=g.view.id) if g.view.kind == "anonymised" else None,
        token=g.token,
        mountpoint=g.mountpoint,
        pin=g.pin,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        raw_until=g.view.raw_until,
    )


@router.get("/api/live", summary="Whether live view is available here")
def status(request: Request, user: Viewer, cfg: ConfigDep) -> LiveStatusOut:
    if not cfg.live.enabled:
        return LiveStatusOut(
            available=False,
            reason="live view is switched off on this site (live.enabled)",
            heartbeat_seconds=HEARTBEAT_SECONDS,
            quiet_seconds=cfg.live.view_quiet_seconds,
        )
    w = wall(request)
    return LiveStatusOut(
        available=True,
        webrtc=w.janus is not None,
        reason=w.unavailable and f"{w.unavailable}; tiles play the fallback (MJPEG, anonymised only)",
        heartbeat_seconds=HEARTBEAT_SECONDS,
        quiet_seconds=cfg.live.view_quiet_seconds,
    )


@router.post("/api/live/{camera}/views", status_code=201, summary="Watch a camera live, anonymised")
def watch(
    request: Request, camera: str, body: ViewIn, user: VideoViewer, _: Writer, cfg: ConfigDep, now: Now
) -> GrantOut:
    if not cfg.live.enabled:
        raise HTTPException(404, "live view is switched off on this site (live.enabled)")
    _in_scope(request, user, camera, {c.id for c in cfg.cameras})
    w = wall(request)
    try:
        return _grant(w.watch(user=user.id, camera=camera, purpose=body.purpose, now=now), cfg)
    except JanusError as exc:
        raise HTTPException(503, str(exc)) from None


@router.post(
    "/api/live/{camera}/views/raw",
    status_code=201,
    summary="Watch a camera live with privacy protection removed",
)
def watch_raw(
    request: Request, camera: str, body: RawViewIn, user: VideoViewer, _: Writer, cfg: ConfigDep, now: Now
) -> GrantOut:
    if not cfg.live.enabled:
        raise HTTPException(404, "live view is switched off on this site (live.enabled)")
    _in_scope(request, user, camera, {c.id for c in cfg.cameras})
    w = _usable(request)
    try:
        grant = w.watch_raw(
            user=user.id,
            login=user.login,
            camera=camera,
            purpose=body.purpose,
            reason=body.reason,
            reference=body.reference,
            duration=timedelta(minutes=body.minutes),
            now=now,
        )
    except PrivacyError as exc:
        raise HTTPException(403, str(exc)) from None  # recorded by start_use
    except JanusError as exc:
        raise HTTPException(503, str(exc)) from None
    return _grant(grant, cfg)


def _still_allowed(request: Request, w: LiveWall, view_id: int, user: CurrentUser, now: datetime) -> None:
    """404 unless `view_id` is the user's open view; 403 (recorded, and the view ended) when its
    camera left their scope or their habilitation lapsed since it started."""
    engine = w.engine
    v = live.view(engine, view_id)
    if v is None or v.account != user.id or not v.open:
        raise HTTPException(404, "this view has ended; start it again")
    why = (
        may_view_video(engine, user.id, v.camera, now)
        if user.sees(v.camera)
        else "the camera left your scope"
    )
    if why is not None:
        w.end_for(v, "refused", now)
        forbid(
            request,
            user,
            "view_live",
            v.camera,
            action=Action.ACCESS_DENIED,
            object_type="camera",
            reason=why,
        )


@router.post("/api/live/views/{view_id}/heartbeat", status_code=204, summary="The tile still plays")
def heartbeat(request: Request, view_id: ViewId, user: Viewer, _: Writer, now: Now) -> Response:
    w = wall(request)
    _still_allowed(request, w, view_id, user, now)
    if w.heartbeat(view_id, user.id, now) is None:
        raise HTTPException(404, "this view has ended; start it again")
    return Response(status_code=204)


@router.post(
    "/api/live/views/{view_id}/rejoin", summary="Play an open view again after its connection dropped"
)
def rejoin(request: Request, view_id: ViewId, user: Viewer, _: Writer, cfg: ConfigDep, now: Now) -> GrantOut:
    """The same view, not a new one: the current pin of its mountpoint (another viewer's arrival
    rotates it) and its token back at the gateway, as after a restart of the gateway."""
    w = _usable(request)
    _still_allowed(request, w, view_id, user, now)
    try:
        grant = w.rejoin(view_id, user.id, now)
    except JanusError as exc:
        raise HTTPException(503, str(exc)) from None
    if grant is None:
        raise HTTPException(404, "this view has ended; start it again")
    return _grant(grant, cfg)


@router.delete("/api/live/views/{view_id}", status_code=204, summary="Stop watching")
def close(request: Request, view_id: ViewId, user: Viewer, _: Writer, now: Now) -> Response:
    if wall(request).close(view_id, user.id, now) is None:
        raise HTTPException(404, "no open view of yours with this number")
    return Response(status_code=204)


@router.get(
    FALLBACK_PATH.replace("{view}", "{view_id}"),
    summary="Play one of your anonymised views without WebRTC (MJPEG)",
    response_class=StreamingResponse,
    responses={200: {"content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {}}}},
)
async def fallback(
    request: Request, view_id: ViewId, user: Viewer, engine: EngineDep, now: Now
) -> StreamingResponse:
    """The view's anonymised pictures as a multipart JPEG stream, for an `<img>`: what a page
    plays when WebRTC cannot be set up. Only for the caller's own open anonymised view; the stream
    ends with the view (checked every second) and the view's confirmations go on as for WebRTC."""
    if user.role not in FOOTAGE_ROLES:
        raise HTTPException(403, "live video is for operators and supervisors")
    w = await run_in_threadpool(wall, request)
    try:
        relay = await run_in_threadpool(w.fallback, view_id, user.id, now)
    except live.LiveError as exc:
        raise HTTPException(404, str(exc)) from None
    return StreamingResponse(
        _pictures(relay, engine, view_id),
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _pictures(relay: JpegRelay, engine: Engine, view_id: int) -> AsyncIterator[bytes]:
    """Each new picture of `relay` as one part, until the view ends, the relay stops or goes
    quiet, or the page leaves (the server cancels this generator then)."""
    loop = asyncio.get_running_loop()
    fresh = asyncio.Event()
    stop = relay.listen(lambda: loop.call_soon_threadsafe(fresh.set))
    sent = 0
    checked = quiet_since = time.monotonic()
    try:
        while not relay.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fresh.wait(), FALLBACK_CHECK_SECONDS)
            fresh.clear()
            clock = time.monotonic()
            if clock - checked >= FALLBACK_CHECK_SECONDS:
                checked = clock
                v = await run_in_threadpool(live.view, engine, view_id)
                if v is None or not v.open:
                    return
            seq, jpeg, _ = relay.latest()
            if jpeg is None or seq == sent:
                if clock - quiet_since >= FALLBACK_QUIET_SECONDS:
                    return
                continue
            sent, quiet_since = seq, clock
            yield (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                + jpeg
                + b"\r\n"
            )
    finally:
        stop()


@router.get("/api/live/watching", summary="Who watches which camera now (supervisors)")
def watching(user: Supervisor, engine: EngineDep, audit: AuditDep) -> list[ViewOut]:
    views = live.open_views(engine)
    audit.append(user.id, Action.SEARCH, object_type="live_views", details={"open_views": len(views)})
    return [
        ViewOut(
            view=v.id,
            user=v.account,
            camera=v.camera,
            kind=v.kind,
            purpose=v.purpose,
            started_at=v.started_at,
            last_seen=v.last_seen,
            raw_until=v.raw_until,
            reason=v.reason,
            reference=v.reference,
        )
        for v in views
    ]


@router.get("/api/live/groups", summary="Your saved walls")
def groups(user: Viewer, engine: EngineDep) -> list[GroupOut]:
    return [
        GroupOut(id=g.id, title=g.title, layout=g.layout, cameras=list(g.cameras), updated_at=g.updated_at)
        for g in live.groups(engine, user.id)
    ]


@router.put("/api/live/groups", summary="Save a wall (replaces yours of the same title)")
def save_group(
    body: GroupIn, user: Viewer, _: Writer, engine: EngineDep, cfg: ConfigDep, now: Now
) -> GroupOut:
    known = {c.id for c in cfg.cameras}
    for camera in body.cameras:
        if camera is not None and (camera not in known or not user.sees(camera)):
            raise HTTPException(422, f"camera {camera!r} is not one of yours")
    try:
        g = live.save_group(
            engine, account=user.id, title=body.title, layout=body.layout, cameras=body.cameras, now=now
        )
    except live.LiveError as exc:
        raise HTTPException(422, str(exc)) from None
    return GroupOut(id=g.id, title=g.title, layout=g.layout, cameras=list(g.cameras), updated_at=g.updated_at)


@router.delete("/api/live/groups/{group_id}", status_code=204, summary="Delete one of your saved walls")
def delete_group(group_id: GroupId, user: Viewer, _: Writer, engine: EngineDep) -> Response:
    if not live.delete_group(engine, user.id, group_id):
        raise HTTPException(404, "no saved wall of yours with this number")
    return Response(status_code=204)


@router.websocket(GATEWAY_PATH)
async def gateway(websocket: WebSocket) -> None:
    """The page's connection to Janus, relayed by the console: same origin as the page (no
    gateway port to open to the operators' network, no CORS, the console's TLS), and only for a
    logged-in operator or supervisor of this console. Janus still wants a view's token for each
    session and the mountpoint's pin for each watch; the media itself goes straight to Janus."""
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    if origin is not None and urlsplit(origin).netloc != host:
        # A WebSocket carries the session cookie from any site: only the console's own pages.
        await websocket.close(code=1008)
        return
    try:
        user = await run_in_threadpool(current_user, websocket)  # type: ignore[arg-type]
    except HTTPException:
        await websocket.close(code=1008)
        return
    if user.role not in FOOTAGE_ROLES:
        # Refused and recorded, as the same account's request for a view token is (AC-02).
        await run_in_threadpool(
            websocket.app.state.audit.append,
            user.id,
            Action.ACCESS_DENIED,
            details={"denied": f"WEBSOCKET {GATEWAY_PATH}", "role": user.role, "path": GATEWAY_PATH},
        )
        await websocket.close(code=1008)
        return
    w: LiveWall | None = getattr(websocket.app.state, "live_wall", None)
    if w is None or w.janus is None:
        await websocket.close(code=1008)
        return
    try:
        upstream = await websockets.connect(
            w.janus.ws_url, subprotocols=[JANUS_PROTOCOL], open_timeout=5, close_timeout=1
        )  # type: ignore[list-item]
    except (OSError, websockets.WebSocketException, TimeoutError):
        await websocket.close(code=1013)  # try again later: the gateway is restarting
        return
    await websocket.accept(subprotocol=JANUS_PROTOCOL)

    async def down() -> None:
        async for message in upstream:
            await websocket.send_text(message if isinstance(message, str) else message.decode())

    async def up() -> None:
        while True:
            await upstream.send(await websocket.receive_text())

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # No await from here on: the page may be gone, and its server cancels a handler that
        # lingers after the disconnect. The gateway's socket closes in the background.
        for t in tasks:
            t.cancel()
        closing = asyncio.create_task(upstream.close())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
    for t in done:
        if not t.cancelled():
            t.exception()  # read: a page's disconnect is how a relay normally ends
    if tasks[0] in done:
        # The gateway went away (restarted): tell the page, whose tiles then reconnect.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1012)


_closing: set[asyncio.Task[None]] = set()
"""Gateway sockets being closed after their page left (a reference keeps each task alive)."""
