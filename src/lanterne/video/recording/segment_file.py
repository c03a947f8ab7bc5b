"""The encrypted segment file: a clear header, then sealed records that each authenticate alone.

    header  = MAGIC (8 bytes, version in the last) | segment id (u64) | salt (16) | key id length (u8) | key id
    record  = length of sealed bytes (u32) | nonce (12) | AES-256-GCM(plaintext) with its 16-byte tag
    AAD     = header | record index (u64) | last flag (u8)

Why records rather than one sealed blob: a segment is written over ten seconds or more, and a
recorder killed halfway must leave every second already written readable, never a file that only
decrypts once complete. Binding the header, the index and the `last` flag into each record's
authenticated data makes a record moved within the file, taken from another segment, dropped, or a
file cut at a record boundary fail authentication or lack its `last` record: a complete segment
must end with the one record flagged last. Each segment gets its own key, derived from the site
key and the header's random salt (HKDF-SHA256), so the random 96-bit nonces never come near the
2^32 messages a single AES-GCM key allows, whatever the number of cameras and the rotation policy.

The plaintext is the segment's Matroska bytes in order. Nothing in clear touches the disk: the
muxer writes into memory and only sealed records reach the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lanterne.video.recording.keys import KeyRing

MAGIC = b"LNTSEG\x00\x01"
_FIXED = struct.Struct(">8sQ16sB")
_RECORD = struct.Struct(">I12s")
_AAD = struct.Struct(">QB")
_TAG = 16
MAX_RECORD = 64 << 20
"""Refuse a length field beyond this (a corrupt length must not make the reader allocate gigabytes)."""


def _subkey(site_key: bytes, salt: bytes, segment_id: int) -> AESGCM:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=salt,
        info=b"lanterne-segment-v1" + struct.pack(">Q", segment_id),
    )
    return AESGCM(hkdf.derive(site_key))


def header(segment_id: int, key_id: str, salt: bytes) -> bytes:
    kid = key_id.encode("ascii")
    return _FIXED.pack(MAGIC, segment_id, salt, len(kid)) + kid


class SegmentWriter:
    """Appends sealed records to a new segment file, hashing the bytes as they are written.

    A write that fails (a full disk) is undone to the previous record boundary before the error
    propagates, so a retry leaves no torn record behind."""

    def __init__(self, path: Path, segment_id: int, key_id: str, site_key: bytes) -> None:
        self.path = path
        salt = secrets.token_bytes(16)
        self._header = header(segment_id, key_id, salt)
        self._aead = _subkey(site_key, salt, segment_id)
        self._index = 0
        self._sha = hashlib.sha256()
        self.size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: a segment file is never overwritten, whatever the index says.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self._write(self._header)
        except BaseException:
            os.close(self._fd)
            raise

    @property
    def records(self) -> int:
        return self._index

    def _write(self, data: bytes) -> None:
        start = self.size
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
                os.lseek(self._fd, start, os.SEEK_SET)
            raise
        self.size += len(data)
        self._sha.update(data)

    def seal(self, plaintext: bytes, *, last: bool = False) -> None:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext, self._header + _AAD.pack(self._index, int(last)))
        self._write(_RECORD.pack(len(sealed), nonce) + sealed)
        self._index += 1

    def close(self) -> str:
        """Flush to disk and return the file's sha256. fsync once per segment, not per record: a
        killed process loses nothing the kernel already has, and a power cut loses at most the
        open segment's last seconds, which `recover` then marks."""
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
        return self._sha.hexdigest()

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a segment file holds: its decrypted chunks in order, whether the record flagged last
    was reached, the length of the valid prefix (header and whole authentic records), and the first
    problem met, if any (None for a clean, complete file)."""

    segment_id: int
    key_id: str
    chunks: tuple[bytes, ...]
    last: bool
    valid_length: int
    problem: str | None


def parse_header(data: bytes) -> tuple[int, str, bytes, int]:
    """(segment id, key id, salt, header length); ValueError if it is not a segment header."""
    if len(data) < _FIXED.size:
        raise ValueError("file shorter than a segment header")
    magic, segment_id, salt, kid_len = _FIXED.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("not a Lanterne segment file (bad magic)")
    end = _FIXED.size + kid_len
    if len(data) < end:
        raise ValueError("file shorter than its header")
    try:
        key_id = data[_FIXED.size : end].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("key id in the header is not ASCII") from None
    return segment_id, key_id, salt, end


def parse(data: bytes, keys: KeyRing) -> Parsed:
    """Decrypt every record that authenticates, stopping at the first that does not. Raises
    `ValueError` for a file that is not a segment and `RecordingError` (from the ring) when its key
    is not in the ring; every other problem is reported in `Parsed.problem`."""
    segment_id, key_id, salt, pos = parse_header(data)
    head = data[:pos]
    aead = _subkey(keys.key(key_id), salt, segment_id)
    chunks: list[bytes] = []
    index, last, problem = 0, False, None
    while pos < len(data):
        if last:
            problem = "bytes after the last record"
            break
        if len(data) - pos < _RECORD.size:
            problem = f"record {index} is cut short"
            break
        length, nonce = _RECORD.unpack_from(data, pos)
        body = pos + _RECORD.size
        if length < _TAG or length > MAX_RECORD or body + length > len(data):
            problem = (
                f"record {index} is cut short"
                if body + length > len(data)
                else f"record {index} has a bad length"
            )
            break
        sealed = data[body : body + length]
        for flag in (False, True):
            try:
                chunks.append(aead.decrypt(nonce, sealed, head + _AAD.pack(index, int(flag))))
            except InvalidTag:
                continue
            last = flag
            break
        else:
            problem = f"record {index} does not authenticate (altered, moved, or encrypted with another key)"
            break
        pos = body + length
        index += 1
    if problem is None and not last:
        problem = "no final record (the file was cut short)"
    return Parsed(segment_id, key_id, tuple(chunks), last, pos if problem else len(data), problem)
