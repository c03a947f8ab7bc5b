"""A camera's continuous recording in the console (issue 11, item 4): its timeline over a window,
and a stretch of it rendered as video through the one read path (`lanterne.video.playback`).

Who sees what: operators, supervisors and export officers (`RECORDING_ROLES`), and only the cameras
in their scope; anyone else is refused (403) and the refusal recorded. An export officer's timeline
carries no alert markers: alerts are the watchers' work (AC-03). Only export officers export
(`EXPORT_ROLES`): the people who watch the cameras are not the ones who copy footage out of the
site, and a supervisor or operator who tries is refused and recorded. Both views are looks into
recorded footage, so both need a stated purpose (CSI L255-1, LG-02): the timeline is recorded as a `search` of the
recordings, a stretch played as `view_recording` naming the camera, the range and the segments,
written before the first byte is sent. A refusal is recorded as `search` with what was denied,
as an alert's refused clip is: the purpose belongs to a view that happened.

Why windows are bounded: the renderer decrypts and verifies every segment of a range before the
first frame (a tampered segment is named before anything is shown), so the work and the memory of
one request grow with its length. Ten minutes of a 4 Mbit/s camera is 300 MB; the page asks for
much less at a time and requests the next stretch as it plays. A day of timeline is a few
thousand index rows, the most one screen-wide bar can show.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from lanterne.accountability.accounts import EXPORT_ROLES
from lanterne.accountability.habilitation import HabilitationError
from lanterne.accountability.privacy import PrivacyError, Use, end_use, start_use
from lanterne.accountability.search import EventFilters, Sort, search_events
from lanterne.api.deps import (
    FOOTAGE_ROLES,
    AuditDep,
    ConfigDep,
    CurrentUser,
    EngineDep,
    Now,
    RecordingViewer,
    Writer,
    forbid,
    renderer,
    required_purpose,
)
from lanterne.api.schemas.common import ERRORS, iso_utc
from lanterne.api.schemas.recordings import (
    ExportIn,
    RecordingAlertOut,
    SpanOut,
    TimelineOut,
    TimelineQuery,
    VideoQuery,
)
from lanterne.audit import Action, AuditLog
from lanterne.config import Config
from lanterne.config.schema import Camera, Mode
from lanterne.core.errors import ConfigError, RecordingError
from lanterne.runtime.exports import export_recording
from lanterne.runtime.site import Site
from lanterne.store import Store
from lanterne.video.export import manifest_path
from lanterne.video.playback import Reveal, View
from lanterne.video.recording import recording_mode, timeline

MAX_TIMELINE = timedelta(hours=24)
MAX_VIDEO = timedelta(minutes=10)
MAX_ALERTS = 500
"""Markers on one timeline: more would not be told apart on a bar a screen wide."""
TIMELINE_PURPOSE_REQUIRED = (
    "looking through a recording needs a purpose: add purpose=... (why you look at this camera's recording)"
)
VIDEO_PURPOSE_REQUIRED = "a purpose is required to view recorded video: add purpose=... (why you view it)"

router = APIRouter(tags=["recordings"], responses=ERRORS)


def _window(start: datetime, end: datetime, longest: timedelta, what: str) -> None:
    if end <= start:
        raise HTTPException(422, "end must be after start; give an ISO 8601 time for each")
    if end - start > longest:
        hours = longest.total_seconds() / 3600
        most = f"{hours:g} h" if hours >= 1 else f"{longest.total_seconds() / 60:g} minutes"
        raise HTTPException(422, f"a {what} covers at most {most}; ask for a shorter window")


def _recorded_camera(request: Request, user: CurrentUser, cfg: Config, camera_id: str) -> Camera:
    """The camera, after the scope check (403, recorded) and once it is known to record (404 with
    why not: a statistics site and a `record: off` camera keep no video at all)."""
    if not user.sees(camera_id):
        forbid(request, user, "recording", camera_id, action=Action.SEARCH, object_type="camera")
    camera = next((c for c in cfg.cameras if c.id == camera_id), None)
    if camera is None:
        raise HTTPException(404, f"camera {camera_id!r} is not in the configuration; check its id")
    if cfg.mode is Mode.STATISTICS:
        raise HTTPException(404, "this site runs in statistics mode, which never records video")
    if recording_mode(cfg, camera_id) == "off":
        raise HTTPException(404, f"camera {camera_id!r} does not record (record: off in the configuration)")
    return camera


def _store(request: Request) -> Store:
    """The site's store, opened with the app's lifespan (the recording index lives in it)."""
    return request.app.state.store  # type: ignore[no-any-return]


@router.get(
    "/api/cameras/{camera}/recording",
    summary="A camera's recording over a window: recorded, lost and gap spans, and its alerts (purpose required; audited)",
)
def get_timeline(
    request: Request,
    camera: str,
    user: RecordingViewer,
    query: Annotated[TimelineQuery, Query()],
    cfg: ConfigDep,
    engine: EngineDep,
    audit: AuditDep,
) -> TimelineOut:
    q = query
    _window(q.start, q.end, MAX_TIMELINE, "timeline")
    cam = _recorded_camera(request, user, cfg, camera)
    purpose = required_purpose(q.purpose, TIMELINE_PURPOSE_REQUIRED)
    # Recorded before the answer: a search the audit log refuses is not served.
    audit.append(
        user.id,
        Action.SEARCH,
        object_type="recording",
        object_id=camera,
        time_from=q.start,
        time_to=q.end,
        purpose=purpose,
        details={"camera": camera, "from": iso_utc(q.start), "to": iso_utc(q.end)},
    )
    spans = timeline(_store(request), camera, q.start, q.end)
    # Alerts are the watchers' work: an export officer's timeline shows the recording only.
    found = (
        search_events(
            engine,
            user.scope,
            EventFilters(since=q.start, until=q.end, camera=camera),
            sort=Sort.START,
            page_size=MAX_ALERTS,
        ).items
        if user.role in FOOTAGE_ROLES
        else []
    )
    return TimelineOut(
        camera=camera,
        start=q.start,
        end=q.end,
        record=cam.record,
        spans=[SpanOut(kind=s.kind, start=s.start, end=s.end) for s in spans],  # type: ignore[arg-type]
        alerts=[
            RecordingAlertOut(id=e.id, type=e.type, start=e.start, end=e.end, state=e.state)
            for e in found
            if e.mode == "alerts"
        ],
        max_video_seconds=int(MAX_VIDEO.total_seconds()),
    )


@router.get(
    "/api/cameras/{camera}/recording/video",
    summary="A stretch of a camera's recording, masked and anonymised, as fragmented MP4 (purpose required; audited)",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}}},
)
def get_video(
    request: Request,
    camera: str,
    user: RecordingViewer,
    query: Annotated[VideoQuery, Query()],
    cfg: ConfigDep,
    audit: AuditDep,
    now: Now,
) -> Response:
    q = query
    _window(q.start, q.end, MAX_VIDEO, "video request")
    cam = _recorded_camera(request, user, cfg, camera)
    purpose = required_purpose(q.purpose, VIDEO_PURPOSE_REQUIRED)
    use = None
    if q.unmasked_reference is not None:
        try:
            use = start_use(
                _store(request).engine,
                audit,
                user=user.id,
                camera=camera,
                start=q.start,
                end=q.end,
                reason=purpose,
                reference=q.unmasked_reference,
                now=now,
            )
        except PrivacyError as exc:
            raise HTTPException(403, str(exc)) from None
    reveal = Reveal(user.login, use.reason, use.reference) if use is not None else None
    try:
        # Every segment of the range is decrypted and verified here, before anything is sent.
        view = renderer(request).open(cam, q.start, q.end, reveal)
    except RecordingError as exc:
        if use is not None:
            end_use(audit, use, frames=0)
        raise HTTPException(409, str(exc)) from None
    if not view.pieces:
        raise HTTPException(
            404,
            f"nothing of camera {camera!r} is recorded between {iso_utc(q.start)} and {iso_utc(q.end)} "
            "(a gap, lost, deleted by retention, or not yet sealed); pick a recorded span of the timeline",
        )
    # Recorded before the first byte: a view the log refused must not happen.
    audit.append(
        user.id,
        Action.VIEW_RECORDING,
        object_type="recording",
        object_id=camera,
        time_from=q.start,
        time_to=q.end,
        purpose=purpose,
        details={
            "recording": {
                "camera": camera,
                "from": iso_utc(q.start),
                "to": iso_utc(q.end),
                "segments": view.segment_ids,
            },
            "fps": q.fps,
        },
    )
    return StreamingResponse(
        _closing(view, use, audit, q.fps),
        media_type="video/mp4",
        headers={"Cache-Control": "private, no-store"},
    )


def _closing(view: View, use: Use | None, audit: AuditLog, fps: float) -> Iterator[bytes]:
    """The stream, and for an unanonymised view the end of the permission's use in the log with
    the frames rendered, however the stream ended (played out, or the browser went away)."""
    try:
        yield from view.mp4(fps=fps)
    finally:
        if use is not None:
            end_use(audit, use, frames=view.rendered[0])


MAX_CONSOLE_EXPORT = timedelta(minutes=10)
"""From the console an export is rendered while the export officer waits; longer ones go through
`lanterne export clip` (up to two hours)."""


@router.post(
    "/api/cameras/{camera}/recording/export",
    summary="Export a stretch of a camera's recording: watermarked MP4 and its signed manifest, as a zip (export officers; audited)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def post_export(
    body: ExportIn,
    request: Request,
    camera: str,
    user: RecordingViewer,
    _csrf: Writer,
    cfg: ConfigDep,
    audit: AuditDep,
    now: Now,
) -> Response:
    if user.role not in EXPORT_ROLES:
        forbid(request, user, "export", camera, action=Action.ACCESS_DENIED, object_type="camera")
    _window(body.start, body.end, MAX_CONSOLE_EXPORT, "console export")
    cam = _recorded_camera(request, user, cfg, camera)
    site = Site(cfg, _store(request), audit)
    with tempfile.TemporaryDirectory(prefix=EXPORT_DIR_PREFIX) as tmp:
        out = Path(tmp) / f"{camera}-{body.start.strftime('%Y%m%dT%H%M%SZ')}.mp4"
        try:
            manifest = export_recording(
                site,
                cam.id,
                body.start,
                body.end,
                out,
                requester=user.id,
                recipient=body.recipient,
                purpose=body.purpose,
                now=now,
                expires=body.expires,
                unmasked_reference=body.unmasked_reference,
            )
        except RecordingError as exc:
            raise HTTPException(409, str(exc)) from None
        except (PrivacyError, HabilitationError) as exc:
            raise HTTPException(403, str(exc)) from None
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        return export_download(out, manifest.export_id)


EXPORT_DIR_PREFIX = "lanterne-export-"
"""Exports from the console are rendered into a temporary directory of this name and handed over
with `export_download`; access requests' answers take the same way out."""


def export_download(out: Path, export_id: str) -> Response:
    """An export (`out`) and its signed manifest as one zip download. The copy leaves with the
    response and is not kept on the server: the recording stays the only footage at rest,
    encrypted."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.write(out, out.name)
        zf.write(manifest_path(out), manifest_path(out).name)
    return Response(
        data.getvalue(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="lanterne-export-{export_id}.zip"',
            "Cache-Control": "private, no-store",
        },
    )
