"""Access requests in the console (GDPR art. 15, TR-03): a person asks for the images of themselves.

Who: export officers, the only role that exports (`recordings.post_export`, AC-03): an answer is
footage handed out of the site; anyone else is refused (403) and the refusal recorded. The list
carries the requesters' names and contacts, which the agent needs to answer them; the audit log
never does (it names a request by its number).

How the agent finds the person: by camera and time only, never by face. The page shows a frame of
the chosen instant through the recordings' own video route (purpose: the request's number, so the
look is recorded as any other), the agent marks the region where the requester stands, and the
answer is `runtime.exports.answer_access_request`: the range rendered with the person centred in
that region shown as recorded and everyone else hidden whole, watermarked, signed, and handed over
as the console's exports are (`recordings.export_download`), never kept on the server.

What is recorded: each step by the service itself (`accountability.requests`: received, refused
with its reason, answered with its export; `runtime.exports`: the export with its segments).
Reading the list is not: like the alert queue, and like `lanterne requests list`, it is the
export officers' work list, not a look into footage; every look into footage on the way to an
answer is a recorded view of the recording, with its purpose.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from sqlalchemy import Engine

from lanterne.accountability.accounts import EXPORT_ROLES
from lanterne.accountability.habilitation import may_view_video
from lanterne.accountability.requests import (
    AccessRequest,
    RequestError,
    check_range,
    refuse,
    register,
    requests,
)
from lanterne.accountability.requests import get as get_request
from lanterne.api.deps import (
    AuditDep,
    ConfigDep,
    EngineDep,
    ExportOfficer,
    Now,
    RecordingViewer,
    Writer,
    forbid,
)
from lanterne.api.routes.recordings import EXPORT_DIR_PREFIX, MAX_CONSOLE_EXPORT, export_download
from lanterne.api.schemas.common import ERRORS
from lanterne.api.schemas.requests import AnswerIn, RefusalIn, RequestIn, RequestOut, RequestsOut
from lanterne.audit import Action
from lanterne.config.schema import Mode
from lanterne.core.errors import ConfigError, RecordingError
from lanterne.runtime.exports import answer_access_request
from lanterne.runtime.site import Site
from lanterne.video.recording import recording_mode

MAX_CLOSED = 200
"""Closed requests listed after the open ones: the latest, enough for a month's follow-up."""

router = APIRouter(tags=["access requests"], responses=ERRORS)
RequestId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="The request's number.")]
"""Bounded as the table's integer column: a larger number is a 422, never a database error."""


def _open_request(engine: Engine, request_id: int) -> AccessRequest:
    """The request, 404 if there is none, 409 once it is answered or refused."""
    try:
        found = get_request(engine, request_id)
    except RequestError:
        raise HTTPException(404, f"access request {request_id} does not exist; see the list") from None
    if found.state != "open":
        raise HTTPException(409, f"access request {request_id} is already {found.state}")
    return found


@router.get(
    "/api/requests",
    summary="Access requests: open ones first (overdue flagged, with their count), then the latest closed (export officers)",
)
def get_requests(user: ExportOfficer, engine: EngineDep, now: Now) -> RequestsOut:
    rows = requests(engine)
    open_ = [r for r in rows if r.state == "open"]
    closed = sorted(
        (r for r in rows if r.state != "open"),
        key=lambda r: (r.closed_at or r.received_at, r.id),
        reverse=True,
    )
    return RequestsOut(
        overdue=sum(r.overdue(now) for r in open_),
        items=[RequestOut.of(r, now) for r in open_ + closed[:MAX_CLOSED]],
    )


@router.post(
    "/api/requests",
    status_code=201,
    summary="Record an access request as received; it is due one month later (export officers; audited)",
)
def post_request(
    body: RequestIn, user: ExportOfficer, _csrf: Writer, engine: EngineDep, audit: AuditDep, now: Now
) -> RequestOut:
    received = body.received_at or now
    if received > now:
        raise HTTPException(422, "a request cannot be received in the future; give the day it arrived")
    try:
        r = register(
            engine,
            audit,
            requester=body.requester,
            contact=body.contact,
            window_start=body.window_start,
            window_end=body.window_end,
            place=body.place,
            description=body.description,
            received_at=received,
            recorded_by=user.id,
        )
    except RequestError as exc:
        raise HTTPException(422, str(exc)) from None
    except (OverflowError, ValueError):
        # A deadline past year 9999: a date no request arrives on.
        raise HTTPException(
            422, "the date received is out of range; give the day the request arrived"
        ) from None
    return RequestOut.of(r, now)


@router.post(
    "/api/requests/{request_id}/refuse",
    summary="Refuse an open access request with the reason the requester is told (export officers; audited)",
)
def post_refusal(
    request_id: RequestId,
    body: RefusalIn,
    user: ExportOfficer,
    _csrf: Writer,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> RequestOut:
    _open_request(engine, request_id)
    try:
        refuse(engine, audit, request_id, reason=body.reason, by=user.id, now=now)
    except RequestError as exc:  # closed by someone else in between
        raise HTTPException(409, str(exc)) from None
    return RequestOut.of(get_request(engine, request_id), now)


@router.post(
    "/api/requests/{request_id}/answer",
    summary=(
        "Answer an access request: the range with only the person in the marked region visible, "
        "watermarked MP4 and its signed manifest, as a zip (export officers; audited)"
    ),
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def post_answer(
    request_id: RequestId,
    body: AnswerIn,
    request: Request,
    user: RecordingViewer,
    _csrf: Writer,
    cfg: ConfigDep,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> Response:
    if user.role not in EXPORT_ROLES:
        forbid(
            request,
            user,
            "export",
            str(request_id),
            action=Action.ACCESS_DENIED,
            object_type="access_request",
        )
    camera = body.camera
    if not user.sees(camera):
        forbid(request, user, "export", camera, action=Action.ACCESS_DENIED, object_type="camera")
    # The route's path names no camera, so the habilitation is checked here for the one asked.
    why = may_view_video(engine, user.id, camera, now)
    if why is not None:
        forbid(request, user, "video", camera, action=Action.ACCESS_DENIED, object_type="camera", reason=why)
    if not any(c.id == camera for c in cfg.cameras):
        raise HTTPException(404, f"camera {camera!r} is not in the configuration; check its id")
    if cfg.mode is Mode.STATISTICS or recording_mode(cfg, camera) == "off":
        raise HTTPException(404, f"camera {camera!r} keeps no recording; no answer can come from it")
    found = _open_request(engine, request_id)
    try:
        check_range(found, body.start, body.end)
    except RequestError as exc:
        raise HTTPException(422, str(exc)) from None
    if body.end - body.start > MAX_CONSOLE_EXPORT:
        minutes = MAX_CONSOLE_EXPORT.total_seconds() / 60
        raise HTTPException(
            422, f"an answer from the console covers at most {minutes:g} minutes; answer longer ranges "
            "with `lanterne requests answer`"
        )  # fmt: skip
    keep = (body.keep.x0, body.keep.y0, body.keep.x1, body.keep.y1)
    site = Site(cfg, request.app.state.store, audit)
    with tempfile.TemporaryDirectory(prefix=EXPORT_DIR_PREFIX) as tmp:
        out = Path(tmp) / f"access-request-{request_id}-{camera}-{_stamp(body.start)}.mp4"
        try:
            manifest = answer_access_request(
                site, request_id, camera, body.start, body.end, keep, out, agent=user.id, now=now
            )
        except RecordingError as exc:
            raise HTTPException(409, str(exc)) from None
        except (ConfigError, RequestError) as exc:
            raise HTTPException(422, str(exc)) from None
        except ValueError as exc:  # `export_view`: no frame recorded in the range
            raise HTTPException(404, f"{exc}; pick a recorded time of the camera") from None
        return export_download(out, manifest.export_id)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%SZ")
