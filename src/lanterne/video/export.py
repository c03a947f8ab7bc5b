"""Exports of recorded video, with their chain of custody (RT-04, SC-02).

An export is the range of a camera's recording rendered through the one read path (decrypted,
verified, masked, anonymised), with a visible watermark burned into every frame (export id,
requester, recipient, date, expiry) and the same in the MP4's metadata, so that a copy found
anywhere says where it came from. Beside it, a manifest lists the segments it was made from with
their sha256 (the hashes chained in the store when they were written), the sha256 of the MP4
itself, and an Ed25519 signature by the site's audit key over all of it. `verify_export` says the
file is intact, or names what changed: the video, the manifest, or the signer.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lanterne.audit.signing import key_id, public_key_from_pem, public_key_pem
from lanterne.video.playback import DEFAULT_FPS, View, open_encoder
from lanterne.video.watermark import ascii_text, burn

MANIFEST_SUFFIX = ".manifest.json"
SIGNING_DOMAIN = b"lanterne-export-manifest-v1\n"
"""Prefixed to the signed bytes: a manifest signature can never pass for an audit checkpoint's,
though the same key makes both."""
_TIME_BASE_MS = 1000


@dataclass(frozen=True, slots=True)
class ExportedSegment:
    id: int
    start: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """What was exported, by whom, for whom, from which segments; signed as a whole."""

    export_id: str
    camera: str
    start: str
    end: str
    requester: str
    recipient: str
    purpose: str
    created: str
    expires: str
    segments: list[ExportedSegment]
    video_sha256: str
    video_bytes: int
    frames: int
    public_key: str
    """PEM of the key that signed; compare its id with the site's published key."""
    key_id: str
    anonymised: bool = True
    """False for an export made under a permission to remove privacy protection (masks stay)."""
    signature: str = ""

    def signed_bytes(self) -> bytes:
        body = asdict(self)
        body.pop("signature")
        return SIGNING_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def manifest_path(video: Path) -> Path:
    return video.with_name(video.name + MANIFEST_SUFFIX)


def watermark_text(
    export_id: str, requester: str, recipient: str, created: datetime, expires: datetime
) -> str:
    """The line burned into every frame and written in the file's metadata."""
    return ascii_text(
        f"LANTERNE EXPORT {export_id} | by {requester} for {recipient} | "
        f"{created.strftime('%Y-%m-%d %H:%M UTC')} | expires {expires.strftime('%Y-%m-%d')}"
    )


def export_view(
    view: View,
    out: Path,
    *,
    export_id: str,
    requester: str,
    recipient: str,
    purpose: str,
    created: datetime,
    expires: datetime,
    key: Ed25519PrivateKey,
    fps: float = DEFAULT_FPS,
) -> Manifest:
    """Render `view` into `out` (MP4) with the watermark, then write and sign its manifest."""
    text = watermark_text(export_id, requester, recipient, created, expires)
    part = out.with_name(out.name + ".part")
    container: Any = None
    stream: Any = None
    first: datetime | None = None
    frames = 0
    last_ms = -1
    try:
        for frame in view.frames(fps):
            image = burn(frame.image, text)
            if container is None:
                size = (image.shape[1] & ~1, image.shape[0] & ~1)
                container, stream = open_encoder(
                    part,
                    size,
                    fps,
                    live=False,
                    metadata={"title": f"Lanterne export {export_id}", "comment": text},
                )
                first = frame.at
            assert first is not None
            ms = round((frame.at - first).total_seconds() * _TIME_BASE_MS)
            if ms <= last_ms:
                continue
            last_ms = ms
            vf = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(image[: stream.height, : stream.width]), format="bgr24"
            )
            vf.pts = ms
            for packet in stream.encode(vf):
                container.mux(packet)
            frames += 1
        if container is None:
            raise ValueError(
                f"nothing was recorded on camera {view.camera.id} between {view.start} and {view.end}"
            )
        for packet in stream.encode():
            container.mux(packet)
        container.close()
        container = None
        part.replace(out)
    finally:
        if container is not None:
            container.close()
        part.unlink(missing_ok=True)
    data = out.read_bytes()
    manifest = Manifest(
        export_id=export_id,
        camera=view.camera.id,
        start=view.start.isoformat(),
        end=view.end.isoformat(),
        requester=requester,
        recipient=recipient,
        purpose=purpose,
        created=created.isoformat(),
        expires=expires.isoformat(),
        segments=[
            ExportedSegment(p.segment_id or 0, p.start.isoformat(), p.sha256 or "") for p in view.pieces
        ],
        video_sha256=hashlib.sha256(data).hexdigest(),
        video_bytes=len(data),
        frames=frames,
        public_key=public_key_pem(key),
        key_id=key_id(key.public_key()),
        anonymised=view.reveal is None,
    )
    signature = base64.b64encode(key.sign(manifest.signed_bytes())).decode()
    signed = Manifest(**{**_fields(manifest), "signature": signature})
    manifest_path(out).write_text(
        json.dumps(asdict(signed), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return signed


def _fields(m: Manifest) -> dict[str, Any]:
    return {name: getattr(m, name) for name in Manifest.__dataclass_fields__}


def read_manifest(video: Path) -> Manifest:
    data = json.loads(manifest_path(video).read_text(encoding="utf-8"))
    data["segments"] = [ExportedSegment(**s) for s in data["segments"]]
    return Manifest(**data)


def verify_export(video: Path, site_key: Ed25519PublicKey | None = None) -> list[str]:
    """What is wrong with an export, in one line each; an empty list means intact. `site_key`:
    the site's published audit key, which the manifest's signer must be (without it, the
    signature is checked against the key the manifest carries, and the report says so)."""
    path = manifest_path(video)
    if not video.is_file():
        return [f"{video}: no such file"]
    if not path.is_file():
        return [f"{video}: its manifest {path.name} is missing; an export is only verifiable with it"]
    try:
        manifest = read_manifest(video)
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{path.name}: not a Lanterne export manifest ({type(exc).__name__})"]
    problems: list[str] = []
    try:
        carried = public_key_from_pem(manifest.public_key)
        carried.verify(base64.b64decode(manifest.signature), manifest.signed_bytes())
    except (InvalidSignature, ValueError):
        problems.append(f"{path.name}: the signature does not match the manifest (the manifest was altered)")
    else:
        if site_key is not None and key_id(site_key) != key_id(carried):
            problems.append(
                f"{path.name}: signed by key {key_id(carried)}, not by this site's key {key_id(site_key)}"
            )
    data = video.read_bytes()
    if len(data) != manifest.video_bytes or hashlib.sha256(data).hexdigest() != manifest.video_sha256:
        problems.append(
            f"{video.name}: the video differs from the one exported (sha256 does not match the manifest)"
        )
    return problems
