"""Validated privacy masks (LB-06): a camera alerts only once a person has checked its masks.

The masks (`privacy_masks` in the configuration, painted flat before analysis and on every
picture shown) hide dwellings' windows and entrances; only someone who has looked at the camera's
view can say they cover them all, or that the view holds none. That check is recorded as
`masks_validated` on the audit log: who, their note (what they looked at), and the sha256 of the
camera's mask set. A camera whose current masks (the polygons of the configuration now) carry no
such record does not alert (`authorisation.gates_for`): a mask moved or removed since the check
needs a new one, whoever edited the file.

>>> from lanterne.config import parse_config
>>> cam = parse_config({"cameras": [{"id": "c", "source": "c.mp4", "location": {"lat": 0, "lon": 0}}]}).cameras[0]
>>> len(masks_digest(cam))
64
"""

from __future__ import annotations

import hashlib
import json

from lanterne.audit import Action, AuditLog
from lanterne.config.schema import Camera
from lanterne.core.errors import LanterneError


class MaskValidationError(LanterneError):
    """A validation that cannot be recorded as asked."""


def masks_digest(camera: Camera) -> str:
    """The sha256 of the camera's mask set (ids and polygons, in order of id): what a
    validation vouches for."""
    masks = sorted([m.id, [[float(x), float(y)] for x, y in m.polygon]] for m in camera.privacy_masks)
    return hashlib.sha256(json.dumps(masks, separators=(",", ":")).encode()).hexdigest()


def validate_masks(audit: AuditLog, camera: Camera, by: str, note: str) -> str:
    """Record that `by` checked the camera's current masks (or that its view holds no dwelling);
    returns the digest recorded."""
    if not by or not by.strip():
        raise MaskValidationError("a validation names who checked the masks; pass --user")
    if not note or not note.strip():
        raise MaskValidationError(
            "say what was checked, e.g. --note 'view walked 2026-12-05: windows of no. 12 covered'"
        )
    digest = masks_digest(camera)
    audit.append(
        by,
        Action.MASKS_VALIDATED,
        object_type="camera",
        object_id=camera.id,
        details={"masks_sha256": digest, "masks": len(camera.privacy_masks), "note": note.strip()[:500]},
    )
    return digest


def validated(audit: AuditLog, cameras: list[Camera]) -> set[str]:
    """The ids of `cameras` whose current masks carry a validation record."""
    done = {
        (e.object_id, e.details.get("masks_sha256"))
        for e in audit.entries(action=Action.MASKS_VALIDATED)
        if e.object_type == "camera"
    }
    return {c.id for c in cameras if (c.id, masks_digest(c)) in done}
