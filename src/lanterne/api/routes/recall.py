"""Blinded recall audits in the console (PM-03): a supervisor draws random windows of recorded
footage, plays them without the system's alerts, marks what they see; once the audit is closed,
the marks are scored against the alerts (`lanterne.accountability.recall`).

- `GET /api/recall/cameras`: the cameras an audit may draw from (in scope, recording
  continuously), with their zones. Not `/api/cameras`, which carries each camera's latest alerts.
- `POST /api/recall/audits`: start one, reviewed by whoever starts it. A camera outside the
  scope, or one the reviewer is not habilitated for, is refused and the refusal recorded.
- `GET /api/recall/audits`, `GET /api/recall/audits/{id}`: the audits; an open one shows its
  windows and the reviewer's own marks, never an alert; a closed one its score and the alerts
  no mark matched.
- `GET /api/recall/audits/{id}/windows/{n}/video`: the window through the one read path
  (decrypted, verified, masked, anonymised; never unmasked here), to the reviewer only, recorded
  as `view_recording` with the audit as purpose before the first byte.
- `POST …/windows/{n}/marks`, `DELETE …/marks/{mark}`, `POST …/windows/{n}/done`,
  `POST /api/recall/audits/{id}/close`: the review, each step recorded (`recall_audit`).

Who: supervisors review (auditors see no footage, operators decide the alerts being scored);
auditors (the DPO) read the audits and their scores. A supervisor reads only the audits whose
cameras are all in their scope. Every refusal is recorded. The page is `/console/recall`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from lanterne.accountability.habilitation import may_view_video
from lanterne.accountability.recall import (
    RecallAudit,
    RecallConflict,
    RecallError,
    RecallNotFound,
    RecallRefused,
    Reviewer,
    add_mark,
    close_audit,
    finish_window,
    get_audit,
    list_audits,
    record_view,
    remove_mark,
    results,
    start_audit,
)
from lanterne.api.deps import (
    AuditDep,
    ConfigDep,
    CurrentUser,
    EngineDep,
    Now,
    Writer,
    forbid,
    renderer,
    require_roles,
)
from lanterne.api.schemas.common import ERRORS
from lanterne.api.schemas.recall import (
    AuditIn,
    AuditOut,
    AuditSummaryOut,
    CloseIn,
    DoneIn,
    MarkIn,
    MarkOut,
    ResultsOut,
    ReviewCameraOut,
    VideoQuery,
    WindowOut,
)
from lanterne.config import Config
from lanterne.config.schema import Mode
from lanterne.core.errors import RecordingError

router = APIRouter(tags=["recall"], responses=ERRORS)

Reader = Annotated[CurrentUser, Depends(require_roles("supervisor", "auditor"))]
"""Supervisors (audits of their cameras) and auditors (every audit; no footage)."""
Reviewing = Annotated[CurrentUser, Depends(require_roles("supervisor"))]
"""Supervisors: they start, review and close audits; anyone else is refused (403, recorded)."""

AuditId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The audit's number.")]
WindowSeq = Annotated[int, Path(ge=1, le=10_000, description="The window's number in the audit.")]
MarkId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The mark's number.")]


def _failed(exc: RecallError) -> HTTPException:
    """One status per kind of refusal, with the one-line reason."""
    if isinstance(exc, RecallNotFound):
        return HTTPException(404, str(exc))
    if isinstance(exc, RecallConflict):
        return HTTPException(409, str(exc))
    if isinstance(exc, RecallRefused):
        return HTTPException(403, str(exc))
    return HTTPException(422, str(exc))


def _audit(engine: EngineDep, audit_id: int) -> RecallAudit:
    try:
        return get_audit(engine, audit_id)
    except RecallError as exc:
        raise _failed(exc) from None


def _readable(request: Request, user: CurrentUser, a: RecallAudit) -> RecallAudit:
    """An auditor reads every audit; a supervisor only those whose cameras are all theirs."""
    if user.role == "supervisor" and not all(user.sees(c) for c in a.cameras):
        forbid(request, user, "recall audit", str(a.id), object_type="recall_audit")
    return a


def _reviewer_only(request: Request, user: CurrentUser, a: RecallAudit) -> None:
    if user.id != a.reviewer:
        forbid(
            request,
            user,
            "recall audit",
            str(a.id),
            object_type="recall_audit",
            reason=f"recall audit {a.id} is reviewed by its reviewer only",
        )


def _out(a: RecallAudit, user: CurrentUser, cfg: Config) -> AuditOut:
    closed = not a.is_open
    cameras = {c.id: c for c in cfg.cameras}

    def name(camera: str) -> str:
        c = cameras.get(camera)
        return (c.name or c.id) if c is not None else camera

    def zones(camera: str) -> list[str]:
        c = cameras.get(camera)
        return [z.id for z in c.zones] if c is not None else []

    return AuditOut(
        id=a.id,
        state=a.state,
        reviewer=a.reviewer,
        you_review=a.reviewer == user.id,
        created_by=a.created_by,
        created_at=a.created_at,
        range_start=a.range_start,
        range_end=a.range_end,
        cameras=list(a.cameras),
        window_seconds=a.window_seconds,
        tolerance=a.tolerance,
        seed=a.seed,
        reviewed=a.reviewed,
        closed_at=a.closed_at,
        closed_by=a.closed_by,
        note=a.note,
        windows=[WindowOut.of(w, closed, name(w.camera), zones(w.camera)) for w in a.windows],
        results=ResultsOut.of(results(a)) if closed else None,
    )


@router.get("/api/recall/cameras", summary="Cameras a recall audit may draw from (supervisors)")
def review_cameras(user: Reviewing, cfg: ConfigDep) -> list[ReviewCameraOut]:
    if cfg.mode is not Mode.ALERTS:
        return []
    return [
        ReviewCameraOut(id=c.id, name=c.name or c.id, zones=[z.id for z in c.zones])
        for c in cfg.cameras
        if user.sees(c.id) and c.record == "continuous"
    ]


@router.get(
    "/api/recall/audits", summary="Recall audits, newest first (supervisors: of their cameras; auditors)"
)
def audits(user: Reader, engine: EngineDep) -> list[AuditSummaryOut]:
    out = []
    for a in list_audits(engine):
        if user.role == "supervisor" and not all(user.sees(c) for c in a.cameras):
            continue
        out.append(AuditSummaryOut.of(a, user.id, None if a.is_open else results(a).overall))
    return out


@router.post(
    "/api/recall/audits",
    summary="Start a blinded recall audit: draw random windows of recorded footage (supervisors; recorded)",
    status_code=201,
)
def start(
    body: AuditIn,
    request: Request,
    user: Reviewing,
    _csrf: Writer,
    cfg: ConfigDep,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> AuditOut:
    try:
        a = start_audit(
            engine,
            audit,
            cfg,
            reviewer=Reviewer(user.id, user.role, user.scope),
            cameras=body.cameras,
            since=body.start,
            until=body.end,
            now=now,
            windows=body.windows,
            seconds=body.seconds,
            tolerance=body.tolerance,
        )
    except RecallError as exc:
        raise _failed(exc) from None
    return _out(a, user, cfg)


@router.get(
    "/api/recall/audits/{audit_id}",
    summary="A recall audit: its windows and marks; its score once closed (never an alert while open)",
)
def audit_detail(
    request: Request, audit_id: AuditId, user: Reader, cfg: ConfigDep, engine: EngineDep
) -> AuditOut:
    return _out(_readable(request, user, _audit(engine, audit_id)), user, cfg)


@router.get(
    "/api/recall/audits/{audit_id}/windows/{seq}/video",
    summary="A window of a recall audit, masked and anonymised, as fragmented MP4 (its reviewer; recorded)",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}}},
)
def window_video(
    request: Request,
    audit_id: AuditId,
    seq: WindowSeq,
    user: Reviewing,
    query: Annotated[VideoQuery, Query()],
    cfg: ConfigDep,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> Response:
    a = _audit(engine, audit_id)
    _reviewer_only(request, user, a)
    try:
        w = a.window(seq)
    except RecallError as exc:
        raise _failed(exc) from None
    # Asked at every view, as for any footage: a habilitation lapsed mid-audit stops the next window.
    why = may_view_video(engine, user.id, w.camera, now)
    if why is not None:
        forbid(request, user, "video", w.camera, object_type="camera", reason=why)
    camera = next((c for c in cfg.cameras if c.id == w.camera), None)
    if camera is None:
        raise HTTPException(404, f"camera {w.camera!r} is no longer in the configuration")
    try:
        # Every segment of the window is decrypted and verified here, before anything is sent.
        view = renderer(request).open(camera, w.start, w.end)
    except RecordingError as exc:
        raise HTTPException(409, str(exc)) from None
    if not view.pieces:
        raise HTTPException(
            404,
            f"window {seq} of recall audit {audit_id} is no longer recorded (deleted by retention); close the audit",
        )
    record_view(audit, a, w, by=user.id, segments=view.segment_ids, fps=query.fps)
    return StreamingResponse(
        view.mp4(fps=query.fps), media_type="video/mp4", headers={"Cache-Control": "private, no-store"}
    )


@router.post(
    "/api/recall/audits/{audit_id}/windows/{seq}/marks",
    summary="Mark a situation seen in a window: type, seconds into it, optional zone (its reviewer; recorded)",
    status_code=201,
)
def mark(
    request: Request,
    audit_id: AuditId,
    seq: WindowSeq,
    body: MarkIn,
    user: Reviewing,
    _csrf: Writer,
    cfg: ConfigDep,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> MarkOut:
    _reviewer_only(request, user, _audit(engine, audit_id))
    try:
        m = add_mark(
            engine, audit, cfg, audit_id, seq, by=user.id, type=body.type, at=body.at, zone=body.zone, now=now
        )
    except RecallError as exc:
        raise _failed(exc) from None
    return MarkOut.of(m, closed=False)


@router.delete(
    "/api/recall/audits/{audit_id}/windows/{seq}/marks/{mark_id}",
    summary="Take back a mark of a window not yet finished (its reviewer; recorded)",
    status_code=204,
)
def unmark(
    request: Request,
    audit_id: AuditId,
    seq: WindowSeq,
    mark_id: MarkId,
    user: Reviewing,
    _csrf: Writer,
    engine: EngineDep,
    audit: AuditDep,
) -> Response:
    _reviewer_only(request, user, _audit(engine, audit_id))
    try:
        remove_mark(engine, audit, audit_id, seq, mark_id, by=user.id)
    except RecallError as exc:
        raise _failed(exc) from None
    return Response(status_code=204)


@router.post(
    "/api/recall/audits/{audit_id}/windows/{seq}/done",
    summary="Finish a window: every situation is marked, or nothing happened (its reviewer; recorded)",
)
def done(
    request: Request,
    audit_id: AuditId,
    seq: WindowSeq,
    body: DoneIn,
    user: Reviewing,
    _csrf: Writer,
    cfg: ConfigDep,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> AuditOut:
    _reviewer_only(request, user, _audit(engine, audit_id))
    try:
        a = finish_window(engine, audit, cfg, audit_id, seq, by=user.id, nothing=body.nothing, now=now)
    except RecallError as exc:
        raise _failed(exc) from None
    return _out(a, user, cfg)


@router.post(
    "/api/recall/audits/{audit_id}/close",
    summary="Close a recall audit now and score its reviewed windows (its reviewer or a supervisor of its cameras; recorded)",
)
def close(
    request: Request,
    audit_id: AuditId,
    body: CloseIn,
    user: Reviewing,
    _csrf: Writer,
    cfg: ConfigDep,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> AuditOut:
    _readable(request, user, _audit(engine, audit_id))
    try:
        a = close_audit(engine, audit, cfg, audit_id, by=user.id, now=now, note=body.note)
    except RecallError as exc:
        raise _failed(exc) from None
    return _out(a, user, cfg)
