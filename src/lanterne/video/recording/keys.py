"""The site's recording keys: AES-256 keys in one file outside the database, several by id.

The database holds the segment index and could be copied with a backup or read by whoever runs
reports on it; the key file is what turns the recordings directory from footage into noise, so it
lives apart (`recording.key_file`), readable by the service account only. New segments use the
newest key; older keys stay in the ring for reading until no segment uses them any more, which
is how a key is rotated without re-encrypting thirty days of video (docs/recording.md).

>>> import tempfile
>>> ring = KeyRing.load_or_create(Path(tempfile.mkdtemp()) / "keys.json")
>>> len(ring.newest[1])
32
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path

from lanterne.core.errors import RecordingError

log = logging.getLogger(__name__)

KEY_BYTES = 32
"""AES-256."""


def _new_id(now: datetime) -> str:
    return f"k{now:%Y%m%d}-{secrets.token_hex(3)}"


class KeyRing:
    """The keys of a key file, oldest first. Use `load_or_create` (the recorder) or `load` (readers,
    which must never create a key: a missing file there is a misconfiguration, not a first run)."""

    def __init__(self, path: Path, keys: list[tuple[str, bytes, str]]) -> None:
        self.path = path
        self._keys = keys
        """(id, key, created ISO time), oldest first."""

    # --- loading ----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """The keys at `path`; `RecordingError` with one line if missing, readable by others or
        not a key file."""
        try:
            st = path.stat()
        except FileNotFoundError:
            raise RecordingError(
                f"recording key file {path} not found; restore it from its backup or fix recording.key_file"
            ) from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise RecordingError(
                f"recording key file {path} can be read by other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}`"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = [
                (str(k["id"]), base64.b64decode(k["key"], validate=True), str(k["created"]))
                for k in data["keys"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RecordingError(
                f"recording key file {path} is not a Lanterne key file ({type(exc).__name__}); restore it from its backup"
            ) from None
        if not keys or any(len(k) != KEY_BYTES for _, k, _ in keys):
            raise RecordingError(
                f"recording key file {path} holds no valid 32-byte key; restore it from its backup"
            )
        return cls(path, keys)

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """The keys at `path`, a new file with one key (mode 0600) if there is none yet."""
        if not path.exists():
            if not path.parent.is_dir():
                raise RecordingError(
                    f"recording key file {path}: directory {path.parent} does not exist; create it or fix recording.key_file"
                )
            now = datetime.now(UTC)
            ring = cls(path, [(_new_id(now), secrets.token_bytes(KEY_BYTES), now.isoformat())])
            if ring._write(exclusive=True):
                log.info(
                    "recording key file created at %s (mode 0600); back it up apart from the database", path
                )
        return cls.load(path)

    # --- use --------------------------------------------------------------------------------

    @property
    def newest(self) -> tuple[str, bytes]:
        """The key new segments are written with."""
        key_id, key, _ = self._keys[-1]
        return key_id, key

    def key(self, key_id: str) -> bytes:
        for kid, key, _ in self._keys:
            if kid == key_id:
                return key
        raise RecordingError(
            f"recording key {key_id!r} is not in {self.path}; restore the key file that holds it (nothing was deleted)"
        )

    def ids(self) -> list[tuple[str, str]]:
        """(id, created) of every key, oldest first."""
        return [(kid, created) for kid, _, created in self._keys]

    # --- rotation ---------------------------------------------------------------------------

    def rotate(self, now: datetime | None = None) -> str:
        """Add a new key, which new segments use from the recorder's next start; return its id."""
        now = now or datetime.now(UTC)
        key_id = _new_id(now)
        self._keys.append((key_id, secrets.token_bytes(KEY_BYTES), now.isoformat()))
        self._write(exclusive=False)
        return key_id

    def retire(self, key_id: str) -> None:
        """Remove a key no segment uses any more (the caller checks the index first)."""
        if key_id == self.newest[0]:
            raise RecordingError(f"recording key {key_id!r} is the newest; rotate first, then retire it")
        self.key(key_id)
        self._keys = [k for k in self._keys if k[0] != key_id]
        self._write(exclusive=False)

    def _write(self, *, exclusive: bool) -> bool:
        """Write the ring to a private temporary file and move or link it into place, so the file
        is never seen half-written nor, even for an instant, with a wider mode. With `exclusive`, an
        existing file wins (two processes creating at once end up with the same key)."""
        body = {
            "version": 1,
            "keys": [
                {"id": kid, "created": created, "key": base64.b64encode(key).decode()}
                for kid, key, created in self._keys
            ],
        }
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(body, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            if exclusive:
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, self.path)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
