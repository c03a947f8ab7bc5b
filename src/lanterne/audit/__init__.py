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
from lanterne.audit.verify import VerifyResult, export_extract, verify_extract, verify_log

__all__ = [
    "GENESIS_HASH",
    "Action",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "PurposeRequired",
    "VerifyResult",
    "canonical_json",
    "export_extract",
    "verify_extract",
    "verify_log",
]
