"""The independent oversight view (GV-07), read-only, for the role that audits (`auditor`).

- `GET /api/oversight` gives the register (authorisations in force and past with their DPIA and
  FRIA links, the recorded FRIAs, the signed governance approvals), the metrics (alerts and the
  confirmed share per month, precision and recall per detector, this quarter's figures,
  suspensions, incidents), the logs' summaries (the log review's findings per rule and state, the
  audit log's state) and the complaints;
- `GET /api/oversight/verification` re-checks the whole audit chain now, as `lanterne audit
  verify` does, and opens the breach incident when it is broken.

Each read is recorded (`search`, object `oversight`) before it is answered: a read the audit log
refuses is not served. Anyone else is refused and the refusal recorded; nothing here serves an
image, and the auditor role stays refused on every footage route. The page is `/console/oversight`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from lanterne.accountability.oversight import OVERSIGHT_ROLES, oversight_view, verify_chain
from lanterne.api.deps import AuditDep, ConfigDep, CurrentUser, EngineDep, Now, require_roles
from lanterne.api.schemas.common import ERRORS
from lanterne.api.schemas.oversight import OversightOut, VerificationOut
from lanterne.audit import Action

router = APIRouter(tags=["oversight"], responses=ERRORS)

Overseer = Annotated[CurrentUser, Depends(require_roles(*OVERSIGHT_ROLES))]
"""The role that audits; anyone else is refused (403, recorded)."""
OBJECT = "oversight"


@router.get(
    "/api/oversight", summary="Register, metrics, logs' summaries and complaints (auditors; recorded)"
)
def read_oversight(
    user: Overseer, cfg: ConfigDep, engine: EngineDep, audit: AuditDep, now: Now
) -> OversightOut:
    view = OversightOut.of(oversight_view(cfg, engine, audit, now))
    # Recorded before the answer, as every read of the console is: a refused record serves nothing.
    audit.append(
        user.id, Action.SEARCH, object_type=OBJECT, object_id="dashboard", details={"section": "dashboard"}
    )
    return view


@router.get("/api/oversight/verification", summary="Re-check the whole audit chain now (auditors; recorded)")
def verify_audit_chain(
    user: Overseer, cfg: ConfigDep, engine: EngineDep, audit: AuditDep, now: Now
) -> VerificationOut:
    audit.append(
        user.id,
        Action.SEARCH,
        object_type=OBJECT,
        object_id="verification",
        details={"section": "verification"},
    )
    return VerificationOut.model_validate(verify_chain(cfg, engine, audit, now))
