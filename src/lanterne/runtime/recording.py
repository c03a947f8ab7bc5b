"""The recorder as a site runs it: with its key ring and the retention's way to free a full disk.

The recorder (`lanterne.video.recording`) writes segments; deleting them is the retention's job
(`lanterne.accountability.recordings`), whether by age, events-only, storage cap or a full disk.
The two packages sit side by side and never import each other, so they meet here."""

from __future__ import annotations

from pathlib import Path

from lanterne.accountability.recordings import free_oldest
from lanterne.audit import AuditLog
from lanterne.config.schema import RecordingSettings
from lanterne.store import Store
from lanterne.video.recording import KeyRing, Recorder


def open_recorder(
    settings: RecordingSettings, store: Store, audit: AuditLog, keys: KeyRing | None = None
) -> Recorder:
    """A recorder for `settings` (its key file unless `keys` is given) that frees a full disk by
    deleting the oldest segments no legal hold covers, recorded as every deletion is."""
    root = Path(settings.dir)
    return Recorder(
        settings,
        keys if keys is not None else KeyRing.load_or_create(settings.key_file),
        store,
        audit,
        free=lambda target: free_oldest(store, root, target, audit),
    )
