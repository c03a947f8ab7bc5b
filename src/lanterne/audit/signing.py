"""The Ed25519 key that signs audit checkpoints.

The hash chain alone proves only that the records hang together: anyone with write access to the
database can recompute every hash after rewriting a record, since SHA-256 has no secret. A
checkpoint signed with a key that lives *outside* the database (a file readable by the application
only, ideally also published to auditors) is what an attacker with database access cannot forge.

Ed25519 because its keys and signatures are small (32 and 64 bytes), it has no parameters to get
wrong, and verification needs nothing but the public key, so an auditor can check offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lanterne.core.errors import LanterneError

CHECKPOINT_DOMAIN = b"lanterne-audit-checkpoint-v1\n"
"""Prefixed to every signed message so that a checkpoint signature can never be replayed as a
signature over anything else the same key might one day sign."""


class AuditKeyError(LanterneError):
    """The signing key is missing, unreadable or not an Ed25519 key."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw public key: short enough to print, long enough
    that two keys of one site never collide.

    >>> key_id(Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key())
    '139e3940e64b5491'
    """
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The private key at `path`, created (mode 0600) on first use.

    Creation writes a temporary file and hard-links it into place, which fails if the name exists:
    two processes starting at once end up with the same key instead of each signing with its own.
    """
    if path.exists():
        return load_private_key(path)
    if not path.parent.is_dir():
        raise AuditKeyError(
            f"audit signing key {path}: directory {path.parent} does not exist; create it or fix audit.key_path"
        )
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return load_private_key(path)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AuditKeyError(
            f"audit signing key {path} not found; restore it from your backup or fix audit.key_path"
        ) from None
    except OSError as exc:
        raise AuditKeyError(
            f"audit signing key {path}: cannot read it ({exc.strerror}); check its permissions"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise AuditKeyError(
            f"audit signing key {path}: not an unencrypted PEM private key; fix audit.key_path"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"audit signing key {path}: not an Ed25519 key; fix audit.key_path")
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public half as PEM text, what an auditor keeps to verify checkpoints and extracts."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM file: either the public key itself or the private key it belongs to."""
    try:
        data = path.read_bytes()
    except OSError:
        raise AuditKeyError(f"public key {path} cannot be read; pass an existing PEM file") from None
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise AuditKeyError(
            f"public key {path}: not a PEM public key; export one with `lanterne audit public-key`"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"public key {path}: not an Ed25519 key")
    return key


def public_key_from_pem(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise AuditKeyError("the public key is not valid PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError("the public key is not an Ed25519 key")
    return key


def checkpoint_message(seq: int, chain_hash: str, ts: datetime, kid: str) -> bytes:
    """What a checkpoint signature covers: the position in the chain, its hash, when, and by which key."""
    body = {"chain_hash": chain_hash, "key_id": kid, "seq": seq, "ts": ts.isoformat(timespec="microseconds")}
    return CHECKPOINT_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_checkpoint(key: Ed25519PrivateKey, seq: int, chain_hash: str, ts: datetime) -> tuple[str, str]:
    """`(key_id, signature hex)` over the checkpoint."""
    kid = key_id(key.public_key())
    return kid, key.sign(checkpoint_message(seq, chain_hash, ts, kid)).hex()


def keyring(
    public_keys: Iterable[Ed25519PublicKey] | Mapping[str, Ed25519PublicKey],
) -> dict[str, Ed25519PublicKey]:
    """Trusted keys by key id; several when the key was rotated."""
    if isinstance(public_keys, Mapping):
        return dict(public_keys)
    return {key_id(k): k for k in public_keys}


def checkpoint_signature_ok(
    keys: Mapping[str, Ed25519PublicKey], seq: int, chain_hash: str, ts: datetime, kid: str, signature: str
) -> bool:
    key = keys.get(kid)
    if key is None:
        return False
    try:
        key.verify(bytes.fromhex(signature), checkpoint_message(seq, chain_hash, ts, kid))
    except (InvalidSignature, ValueError):
        return False
    return True
