"""Recorded video out of the site: rendered through the read path, watermarked, signed, audited.

The read path itself (`lanterne.video.playback`) knows nothing of users or the audit log; this is
where an export becomes an act on the record (RT-04, LG-02): who asked, for whom, why, until
when, and from which segments, with the export's own sha256, written before the file is handed
over.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from lanterne.accountability.accounts import EXPORT_ROLES, find_account, get_account
from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.habilitation import HabilitationError, may_view_video
from lanterne.accountability.privacy import end_use, start_use
from lanterne.accountability.requests import answered, check_range
from lanterne.accountability.requests import get as get_request
from lanterne.audit import Action
from lanterne.audit.signing import load_or_create_key
from lanterne.config import Config
from lanterne.core.errors import ConfigError
from lanterne.core.types import Box
from lanterne.runtime.site import Site
from lanterne.store import Store
from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
from lanterne.video.detectors import create_detector
from lanterne.video.export import Manifest, export_view, manifest_path
from lanterne.video.playback import Renderer, Reveal, recorded
from lanterne.video.recording import KeyRing

DEFAULT_EXPIRY = timedelta(days=30)
MAX_EXPORT = timedelta(hours=2)
"""Longer ranges are refused: an export is evidence about a situation, not a copy of the archive."""


def renderer_for(cfg: Config, store: Store) -> Renderer:
    """The site's read path: its recordings and key file, the analysis's detector for the people
    and vehicles to blur, and the default anonymiser (one per thread)."""
    keys = KeyRing.load(cfg.recording.key_file)
    return Renderer(
        recorded(store, cfg.recording.dir, keys),
        create_detector(cfg.detector, cfg.models_dir),
        lambda: DefaultAnonymizer(cfg.models_dir),
    )


def _check_habilitation(site: Site, requester: str, camera_id: str, now: datetime) -> None:
    """A requester who is a console account (by id or login) needs the export officer's role
    (AC-03: those who watch or administer do not copy footage out) and what the console asks
    before showing video: a habilitation covering the camera and a training record (AC-01, HO-06).
    A requester who is not one (the site's system user) acts under the machine's own access rules."""
    engine = site.store.engine
    account = get_account(engine, requester) or find_account(engine, requester)
    if account is None:
        return
    if account.role not in EXPORT_ROLES:
        why = f"exports are made by an export officer, not a {account.role} (AC-03); ask one to make it"
    else:
        why = may_view_video(engine, account.id, camera_id, now)
    if why is not None:
        site.audit.append(
            account.id,
            Action.ACCESS_DENIED,
            object_type="camera",
            object_id=camera_id,
            details={"denied": "export", "reason": why},
        )
        raise HabilitationError(f"{requester} may not export video of {camera_id}: {why}")


def export_recording(
    site: Site,
    camera_id: str,
    start: datetime,
    end: datetime,
    out: Path,
    *,
    requester: str,
    recipient: str,
    purpose: str,
    now: datetime,
    expires: datetime | None = None,
    unmasked_reference: str | None = None,
) -> Manifest:
    """Write `out` (MP4) and its signed manifest, and record the export. Raises `ConfigError` for
    an unknown camera or a bad range, `RecordingError` naming a segment that fails its checks.

    `unmasked_reference` (a requisition, a case number): export without anonymisation, which the
    requester's permission must cover (`PrivacyError` otherwise); the use is recorded before the
    first frame, the purpose is its reason, and every frame says so. Privacy masks stay."""
    camera = next((c for c in site.cfg.cameras if c.id == camera_id), None)
    if camera is None:
        raise ConfigError(f"camera {camera_id!r} is not in the configuration; check its id")
    if not end > start:
        raise ConfigError("the export's end must come after its start")
    if end - start > MAX_EXPORT:
        raise ConfigError(f"an export covers at most {MAX_EXPORT}; split the range")
    if not recipient.strip() or not purpose.strip():
        raise ConfigError("an export needs a recipient and a purpose (RT-04, LG-02)")
    # AC-06: a service receives video only if an authorisation in force names it (recorded if not).
    Authorisations(site.store.engine, site.audit, site.cfg.legal_end_date).check_recipients(
        [recipient.strip()], channel="export", user_id=requester, at=now
    )
    _check_habilitation(site, requester, camera_id, now)
    expires = expires or now + DEFAULT_EXPIRY
    renderer = renderer_for(site.cfg, site.store)
    use = None
    if unmasked_reference is not None:
        use = start_use(
            site.store.engine,
            site.audit,
            user=requester,
            camera=camera_id,
            start=start,
            end=end,
            reason=purpose,
            reference=unmasked_reference,
            now=now,
        )
    reveal = Reveal(requester, use.reason, use.reference) if use is not None else None
    export_id = secrets.token_hex(6)
    frames = 0
    try:
        manifest = export_view(
            renderer.open(camera, start, end, reveal),
            out,
            export_id=export_id,
            requester=requester,
            recipient=recipient,
            purpose=purpose,
            created=now,
            expires=expires,
            key=load_or_create_key(site.cfg.audit.key_path),
        )
        frames = manifest.frames
    finally:
        if use is not None:
            # The use is closed in the log whatever happened, with what was rendered.
            end_use(site.audit, use, frames=frames)
    with _recorded_or_removed(out):
        _record_export(site, manifest, out, expires=expires, anonymised=use is None)
    return manifest


@contextmanager
def _recorded_or_removed(out: Path) -> Iterator[None]:
    """An export the log did not record must not exist: its files go if recording it fails."""
    try:
        yield
    except BaseException:
        out.unlink(missing_ok=True)
        manifest_path(out).unlink(missing_ok=True)
        raise


def _record_export(site: Site, m: Manifest, out: Path, **details: object) -> None:
    site.audit.append(
        m.requester,
        Action.EXPORT,
        object_type="recording",
        object_id=m.export_id,
        time_from=datetime.fromisoformat(m.start),
        time_to=datetime.fromisoformat(m.end),
        purpose=m.purpose,
        recipient=m.recipient,
        details={
            "camera": m.camera,
            "segments": [s.id for s in m.segments],
            "sha256": m.video_sha256,
            "file": out.name,
            **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in details.items()},
        },
    )


def answer_access_request(
    site: Site,
    request_id: int,
    camera_id: str,
    start: datetime,
    end: datetime,
    keep: Box,
    out: Path,
    *,
    agent: str,
    now: datetime,
) -> Manifest:
    """Answer an access request (TR-03) with an export of `camera_id` between `start` and `end`,
    inside the request's window, where the person whose box is centred in `keep` (the region the
    agent marked, frame fractions) is shown as recorded and everyone else is hidden whole; faces
    and plates elsewhere are blurred as always. The export and the request's closing are
    recorded under the request's number, never the requester's name. An agent who is a console
    account is held to what any export asks of it (`_check_habilitation`)."""
    request = get_request(site.store.engine, request_id)
    check_range(request, start, end)
    camera = next((c for c in site.cfg.cameras if c.id == camera_id), None)
    if camera is None:
        raise ConfigError(f"camera {camera_id!r} is not in the configuration; check its id")
    _check_habilitation(site, agent, camera_id, now)
    if not (0 <= keep[0] < keep[2] <= 1 and 0 <= keep[1] < keep[3] <= 1):
        raise ConfigError("the requester's region is x0,y0,x1,y1 in fractions of the frame, x0 < x1, y0 < y1")
    recipient = f"requester of access request {request_id}"
    purpose = f"access request {request_id} (GDPR art. 15)"
    export_id = secrets.token_hex(6)
    manifest = export_view(
        renderer_for(site.cfg, site.store).open(camera, start, end, keep=keep),
        out,
        export_id=export_id,
        requester=agent,
        recipient=recipient,
        purpose=purpose,
        created=now,
        expires=now + DEFAULT_EXPIRY,
        key=load_or_create_key(site.cfg.audit.key_path),
    )
    with _recorded_or_removed(out):
        _record_export(site, manifest, out, access_request=request_id)
        answered(site.store.engine, site.audit, request_id, export_id=export_id, by=agent, now=now)
    return manifest
