"""The only way back from a segment file to video bytes, and the check that the recordings are
whole. Everything that shows or exports recorded pixels goes through `open_segment` (then
through masking and anonymisation, in the read path above it), so a segment altered on disk, a
file swapped for another, or a key that is not the one it was written with is named here, once,
in one line (SC-02)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lanterne.audit import AuditLog
from lanterne.core.errors import RecordingError
from lanterne.store import Store
from lanterne.video.recording.index import GENESIS_SHA256, SegmentRow, all_segments, deleted_seqs, inside
from lanterne.video.recording.keys import KeyRing
from lanterne.video.recording.segment_file import parse

_TOLERATED_WHEN_RECOVERED = "no final record (the file was cut short)"


def open_segment(row: SegmentRow, recordings_dir: Path, keys: KeyRing) -> bytes:
    """The segment's Matroska bytes, after checking its size and sha256 against the index and
    authenticating every record. Raises `RecordingError` naming the segment (camera, start, id)."""
    label = row.label()
    if row.state == "lost":
        raise RecordingError(f"{label} was lost in a crash: nothing in it could be read")
    if row.state == "open" or row.sha256 is None:
        raise RecordingError(f"{label} is still being written; read it once it is sealed")
    try:
        data = inside(recordings_dir, row.path).read_bytes()
    except FileNotFoundError:
        raise RecordingError(
            f"{label}: file {row.path} is missing from {recordings_dir}; restore it or check recording.dir"
        ) from None
    except OSError as exc:
        raise RecordingError(f"{label}: file {row.path} cannot be read ({exc.strerror})") from None
    if len(data) != row.size or hashlib.sha256(data).hexdigest() != row.sha256:
        raise RecordingError(
            f"{label}: file does not match the sha256 recorded when it was written (tampered or damaged); "
            "do not use it as evidence"
        )
    try:
        parsed = parse(data, keys)
    except ValueError as exc:
        raise RecordingError(f"{label}: {exc}") from None
    except RecordingError as exc:
        raise RecordingError(f"{label}: {exc}") from None
    if parsed.segment_id != row.id:
        raise RecordingError(f"{label}: the file belongs to segment {parsed.segment_id} (files swapped)")
    if parsed.problem is not None and not (
        row.state == "recovered" and parsed.problem == _TOLERATED_WHEN_RECOVERED
    ):
        if not parsed.chunks and parsed.problem.startswith("record 0 does not authenticate"):
            # The bytes are those written (sha256 above) but the first record fails: the key.
            raise RecordingError(
                f"{label}: key {parsed.key_id} in {keys.path} is not the key it was written with; "
                "restore the key file that holds it (nothing was deleted)"
            )
        raise RecordingError(f"{label}: {parsed.problem}; do not use it as evidence")
    return b"".join(parsed.chunks)


@dataclass(frozen=True, slots=True)
class Problem:
    camera: str
    segment_id: int | None
    start: datetime | None
    message: str

    def __str__(self) -> str:
        return self.message


def verify(
    store: Store,
    recordings_dir: Path,
    keys: KeyRing,
    camera: str | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Problem]:
    """Every problem with the recordings: a segment whose file is missing, altered or unreadable,
    a break in a camera's hash chain, and segments absent from the index whose deletion no audit
    record accounts for. An empty list means every segment checked is whole. `since`/`until`
    limit the segments read (the chain is checked across all of them: it costs no file read)."""
    problems: list[Problem] = []
    deleted = deleted_seqs(AuditLog(store.engine))
    rows = [r for r in all_segments(store, camera) if r.state != "open"]
    by_camera: dict[str, list[SegmentRow]] = {}
    for r in rows:
        by_camera.setdefault(r.camera, []).append(r)
    for cam, cam_rows in sorted(by_camera.items()):
        gone = deleted.get(cam, set())
        prev: SegmentRow | None = None
        for row in cam_rows:
            expected_prev = 1 if prev is None else prev.seq + 1
            missing = sorted(set(range(expected_prev, row.seq)) - gone)
            if missing:
                problems.append(
                    Problem(
                        cam,
                        row.id,
                        row.start,
                        f"camera {cam}: segments {missing[0]}..{missing[-1]} before {row.label()} are missing "
                        "from the index and no recorded deletion accounts for them",
                    )
                )
            if prev is not None and row.seq == prev.seq + 1 and row.prev_sha256 != prev.sha256:
                problems.append(
                    Problem(
                        cam,
                        row.id,
                        row.start,
                        f"{row.label()}: chain broken, its previous-segment hash is not that of segment {prev.id}",
                    )
                )
            if prev is None and row.seq == 1 and row.prev_sha256 != GENESIS_SHA256:
                problems.append(
                    Problem(cam, row.id, row.start, f"{row.label()}: chain broken at the first segment")
                )
            prev = row
            if (since is not None and row.end < since) or (until is not None and row.start > until):
                continue
            if row.state == "lost":
                continue
            try:
                open_segment(row, recordings_dir, keys)
            except RecordingError as exc:
                problems.append(Problem(cam, row.id, row.start, str(exc)))
    return problems
