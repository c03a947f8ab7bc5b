"""The independent oversight view (GV-07): what an ethics committee, the CNIL or the commission
départementale de vidéoprotection reads to hold the deployment to account, without any video.

Four parts, each read from the functions that already compute it elsewhere, so that the overseers
see the figures the public page, the quarterly report and the DPO see, never a second count:

- the register: every authorisation, in force and past, with its DPIA and FRIA links
  (`transparency.public_data`), the recorded FRIAs (`fria`) and the signed governance approvals
  with whether each signature holds (`governance`);
- the metrics: alerts and the confirmed share per month and detector, precision and recall per
  detector (`transparency.public_data`), this quarter's operating figures per detector, unrounded
  and unsuppressed (`operations`, as the quarterly report computes them), the suspensions and the
  incidents (`suspension`, `incidents`);
- the logs' summaries: the automatic review's findings per rule and state (`log_review`; the
  accounts they name stay in the DPO's queue) and the audit log's state (records, last signed
  checkpoint, records not yet signed, open breaches); `verify_chain` re-checks the whole chain on
  request, as `lanterne audit verify` does;
- the complaints (`complaints`), with their counts per category and state.

Nothing here is an image, a clip, an event row or a person: user ids appear only where they are
the accountability (who approved a governance record, who recorded a complaint).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select

from lanterne.accountability.complaints import Complaint, Complaints
from lanterne.accountability.fria import FriaRegister
from lanterne.accountability.governance import Governance
from lanterne.accountability.incidents import Incidents, open_breach
from lanterne.accountability.log_review import RULE_TITLES, finding_counts
from lanterne.accountability.operations import OperationsRow, operations
from lanterne.accountability.suspension import Suspensions
from lanterne.accountability.transparency.data import (
    ComplaintFigure,
    IncidentMonth,
    MonthFigure,
    RecallSummary,
    RegisterEntry,
    public_data,
)
from lanterne.audit import AuditLog, signing
from lanterne.audit.verify import verify_log
from lanterne.core.errors import LanterneError
from lanterne.store.tables import AuditCheckpointRecord, AuditRecord

if TYPE_CHECKING:
    from lanterne.config import Config

OVERSIGHT_ROLES: tuple[str, ...] = ("auditor",)
"""Who reads the oversight page: the role that audits and sees no footage (the DPO, and the
accounts a city opens for its oversight bodies). Admins run the system the overseers check, and
operators and supervisors watch the cameras whose use is checked: none of them reads it."""
INCIDENT_LIMIT = 200
"""The newest incidents listed; the counts per month and kind cover the rest."""


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FriaRef:
    reference: str
    assessed_on: str
    recorded_at: str


@dataclass(frozen=True)
class ApprovalRef:
    """A signed governance record (GV-05): which change, approved by whom, and whether its
    signature holds under the site's key."""

    id: int
    change: str
    sha256: str
    summary: str
    notice_url: str
    approved_by: str
    approved_at: str
    signature_valid: bool


@dataclass(frozen=True)
class SuspensionRef:
    camera: str
    event_type: str
    cause: str
    """`alert_rate`, `precision_floor` or `supervisor`."""
    started_at: str
    lifted_at: str | None


@dataclass(frozen=True)
class IncidentRef:
    id: int
    kind: str
    state: str
    title: str
    opened_at: str
    closed_at: str | None
    overdue: bool
    """A breach whose authority was not told within 72 hours."""


@dataclass(frozen=True)
class RuleFindings:
    """The automatic log review's findings of one rule, per state; no account named."""

    rule: str
    title: str
    open: int
    acknowledged: int
    closed: int


@dataclass(frozen=True)
class AuditState:
    """The audit log as stored now, cheap to read: a full re-check is `verify_chain`."""

    records: int
    last_seq: int | None
    last_record_at: str | None
    last_checkpoint_seq: int | None
    last_checkpoint_at: str | None
    unsigned: int
    """Records after the last signed checkpoint."""
    witness_file: bool
    """Whether the witness file (signed heads kept outside the database) exists."""
    open_breaches: int
    """Open incidents of kind `breach` (an altered log is one, `lanterne audit verify`)."""


@dataclass(frozen=True)
class Verification:
    ok: bool
    summary: str
    records: int
    first_bad_seq: int | None
    witnesses_checked: bool
    checked_at: str
    breach_incident: int | None
    """The breach incident a broken chain opened (or had opened), as `lanterne audit verify` does."""


@dataclass(frozen=True)
class OversightView:
    site: str
    generated_at: str
    config_sha256: str
    mode: str
    register: tuple[RegisterEntry, ...]
    frias: tuple[FriaRef, ...]
    approvals: tuple[ApprovalRef, ...]
    monthly: tuple[MonthFigure, ...]
    recall: RecallSummary
    quarter_since: str
    quarter: tuple[OperationsRow, ...]
    """This quarter per detector, all cameras: unsuppressed, as the overseers are not the public."""
    suspensions: tuple[SuspensionRef, ...]
    incidents: tuple[IncidentRef, ...]
    incident_months: tuple[IncidentMonth, ...]
    findings: tuple[RuleFindings, ...]
    audit: AuditState
    complaints: tuple[Complaint, ...]
    complaint_counts: tuple[ComplaintFigure, ...]


def _approvals(engine: Engine, audit: AuditLog) -> tuple[ApprovalRef, ...]:
    governance = Governance(engine, audit)
    try:
        keys = governance.keys()
    except LanterneError:
        keys = {}  # no signing key here: no signature can be shown to hold
    return tuple(
        ApprovalRef(
            id=a.id,
            change=str(a.change),
            sha256=a.sha256,
            summary=a.summary,
            notice_url=a.notice_url,
            approved_by=a.approved_by,
            approved_at=_iso(a.approved_at) or "",
            signature_valid=a.verified(keys),
        )
        for a in governance.list()
    )


def _findings(engine: Engine) -> tuple[RuleFindings, ...]:
    counts = finding_counts(engine)
    rules = list(RULE_TITLES) + sorted({r for r, _ in counts} - set(RULE_TITLES))
    return tuple(
        RuleFindings(
            rule=r,
            title=RULE_TITLES.get(r, r),
            open=counts.get((r, "open"), 0),
            acknowledged=counts.get((r, "acknowledged"), 0),
            closed=counts.get((r, "closed"), 0),
        )
        for r in rules
    )


def audit_state(cfg: Config, engine: Engine, audit: AuditLog) -> AuditState:
    r, c = AuditRecord, AuditCheckpointRecord
    with engine.connect() as conn:
        records, last_seq = conn.execute(select(func.count(), func.max(r.seq))).one()
        last_ts = conn.execute(select(r.ts).where(r.seq == last_seq)).scalar() if last_seq else None
        cp = conn.execute(select(c.seq, c.ts).order_by(c.seq.desc(), c.id.desc()).limit(1)).first()
    breaches = Incidents(engine, audit).list(state="open", kind="breach")
    return AuditState(
        records=int(records),
        last_seq=last_seq,
        last_record_at=_iso(last_ts),
        last_checkpoint_seq=cp.seq if cp else None,
        last_checkpoint_at=_iso(cp.ts) if cp else None,
        unsigned=(last_seq or 0) - (cp.seq if cp else 0),
        witness_file=cfg.audit.witness_path.exists(),
        open_breaches=len(breaches),
    )


def oversight_view(cfg: Config, engine: Engine, audit: AuditLog, now: datetime) -> OversightView:
    """Everything the page shows, as of `now` (timezone-aware). Reads only; the route records the
    read in the audit log before answering."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    public = public_data(cfg, engine, now)
    # The quarter the public page's figures cover, so both read the same period.
    since = datetime.fromisoformat(public.operations_since) if public.operations_since else now
    watched = {cam.id: sorted({str(t) for z in cam.zones for t in z.events.enabled()}) for cam in cfg.cameras}
    quarter = operations(engine, since, now + timedelta(microseconds=1), watched=watched)
    register = Complaints(engine, audit)
    incidents = Incidents(engine, audit).list(limit=INCIDENT_LIMIT)
    return OversightView(
        site=cfg.site,
        generated_at=public.generated_at,
        config_sha256=public.config_sha256,
        mode=public.mode,
        register=public.register,
        frias=tuple(
            FriaRef(f.reference, f.assessed_on.isoformat(), _iso(f.recorded_at) or "")
            for f in FriaRegister(engine, audit).list()
        ),
        approvals=_approvals(engine, audit),
        monthly=public.monthly,
        recall=public.recall,
        quarter_since=public.operations_since or "",
        quarter=quarter.by_type,
        suspensions=tuple(
            SuspensionRef(s.camera, str(s.type), s.cause, _iso(s.started_at) or "", _iso(s.lifted_at))
            for s in reversed(Suspensions(engine, audit, cfg.suspension).list())
        ),
        incidents=tuple(
            IncidentRef(
                i.id, i.kind, i.state, i.title, _iso(i.opened_at) or "", _iso(i.closed_at), i.overdue(now)
            )
            for i in incidents
        ),
        incident_months=public.incidents,
        findings=_findings(engine),
        audit=audit_state(cfg, engine, audit),
        complaints=tuple(register.list()),
        complaint_counts=public.complaints,
    )


def verify_chain(cfg: Config, engine: Engine, audit: AuditLog, now: datetime) -> Verification:
    """Re-check every record, checkpoint and witnessed head of the site's log, as `lanterne audit
    verify --config` does (the NATS witness stream of a city aside: the command reads it), and,
    when the chain is broken, open its breach incident as the command does: an overseer who
    finds the log altered has found a personal-data breach."""
    keys = []
    if cfg.audit.key_path.exists():
        keys.append(signing.load_private_key(cfg.audit.key_path).public_key())
    witnesses = [cfg.audit.witness_path] if cfg.audit.witness_path.exists() else []
    result = verify_log(engine, keys, witnesses)
    breach = None
    if not result.ok:
        incident, _ = open_breach(
            engine, audit, result.problem or result.summary(), result.first_bad_seq, now=now
        )
        breach = incident.id
    return Verification(
        ok=result.ok,
        summary=result.summary(),
        records=result.records,
        first_bad_seq=result.first_bad_seq,
        witnesses_checked=result.witnesses_checked,
        checked_at=_iso(now) or "",
        breach_incident=breach,
    )
