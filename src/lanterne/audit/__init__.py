"""Who looked at or changed what, when and why: the tamper-evident audit log (CNIL délib. 2021-122,
CSI L255-1). Append with `AuditLog.append`; prove the log intact with `lanterne audit verify`."""

from lanterne.audit.log import (
    GENESIS_HASH,
    Action,
    AuditEntry,
    AuditError,
    AuditLog,
    PurposeRequired,
    canonical_json,
)

__all__ = [
    "GENESIS_HASH",
    "Action",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "PurposeRequired",
    "canonical_json",
]
