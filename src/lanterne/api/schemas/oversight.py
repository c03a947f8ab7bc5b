"""The oversight page's answers (GV-07): the register, the metrics, the logs' summaries and the
complaints, as `lanterne.accountability.oversight` reads them; and a re-check of the audit chain.
No field is an image, an event or a person beyond the user ids that carry accountability."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from lanterne.accountability.complaints import CATEGORY_TITLES, Complaint
from lanterne.accountability.operations import OperationsRow
from lanterne.accountability.oversight import OversightView
from lanterne.api.schemas.common import iso_utc


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class RegisterOut(_Read):
    reference: str
    legal_basis: str
    authority: str
    valid_from: str
    valid_until: str
    camera_count: int
    event_types: list[str]
    impact_assessments: list[str]
    """The DPIA and FRIA the authorisation names (a recorded FRIA's reference, or a link)."""
    state: str
    """`active`, `upcoming`, `expired` or `revoked`."""
    revoked_at: str | None
    manifestation: str | None
    responsible_service: str | None
    recipients: list[str] | None


class FriaOut(_Read):
    reference: str
    assessed_on: str
    recorded_at: str


class ApprovalOut(_Read):
    id: int
    change: str
    sha256: str
    summary: str
    notice_url: str
    approved_by: str
    approved_at: str
    signature_valid: bool


class MonthOut(_Read):
    month: str
    event_type: str
    alerts: int
    confirmed: int
    dismissed: int
    pending: int
    confirmed_share: float | None
    interval: tuple[float, float] | None


class DetectorQualityOut(_Read):
    """Precision and recall of one detector over the last year (blinded recall audits)."""

    event_type: str
    windows: int
    marks: int
    found: int
    recall: float | None
    interval: tuple[float, float] | None
    precision: float | None
    precision_interval: tuple[float, float] | None
    decided: int


class RecallOut(_Read):
    audits: int
    windows: int
    open_audits: int
    days: int
    rows: list[DetectorQualityOut]


class QuarterOut(BaseModel):
    """One detector this quarter, all cameras, unsuppressed."""

    event_type: str
    alerts: int
    confirmed: int
    dismissed: int
    pending: int
    confirmed_share: float | None
    confirmed_share_interval: list[float] | None
    alerts_per_camera_hour: float | None
    useful_to_an_operation: int
    confirmed_without_action: int
    follow_up_unknown: int
    ack_median_s: float | None

    @classmethod
    def of(cls, row: OperationsRow) -> QuarterOut:
        return cls.model_validate({k: v for k, v in row.to_json().items() if k in cls.model_fields})


class SuspensionOut(_Read):
    camera: str
    event_type: str
    cause: str
    started_at: str
    lifted_at: str | None


class IncidentRefOut(_Read):
    id: int
    kind: str
    state: str
    title: str
    opened_at: str
    closed_at: str | None
    overdue: bool


class IncidentMonthOut(_Read):
    month: str
    kind: str
    opened: int


class RuleFindingsOut(_Read):
    rule: str
    title: str
    open: int
    acknowledged: int
    closed: int


class AuditStateOut(_Read):
    records: int
    last_seq: int | None
    last_record_at: str | None
    last_checkpoint_seq: int | None
    last_checkpoint_at: str | None
    unsigned: int
    witness_file: bool
    open_breaches: int


class ComplaintOut(BaseModel):
    id: int
    received_on: date
    channel: str
    category: str
    category_title: str
    summary: str
    state: str
    """`open` or `answered`."""
    answered_on: date | None
    answer: str | None
    days_to_answer: int | None
    recorded_by: str
    recorded_at: str

    @classmethod
    def of(cls, c: Complaint) -> ComplaintOut:
        return cls(
            id=c.id,
            received_on=c.received_on,
            channel=c.channel,
            category=c.category,
            category_title=CATEGORY_TITLES[c.category],
            summary=c.summary,
            state=c.state,
            answered_on=c.answered_on,
            answer=c.answer,
            days_to_answer=(c.answered_on - c.received_on).days if c.answered_on else None,
            recorded_by=c.recorded_by,
            recorded_at=iso_utc(c.recorded_at),
        )


class ComplaintCountOut(_Read):
    category: str
    title: str
    state: str
    count: int


class OversightOut(BaseModel):
    site: str
    generated_at: str
    config_sha256: str
    mode: str
    authorisations: list[RegisterOut]
    frias: list[FriaOut]
    approvals: list[ApprovalOut]
    monthly: list[MonthOut]
    recall: RecallOut
    quarter_since: str
    quarter: list[QuarterOut]
    suspensions: list[SuspensionOut]
    incidents: list[IncidentRefOut]
    incident_months: list[IncidentMonthOut]
    findings: list[RuleFindingsOut]
    audit: AuditStateOut
    complaints: list[ComplaintOut]
    complaint_counts: list[ComplaintCountOut]

    @classmethod
    def of(cls, v: OversightView) -> OversightOut:
        return cls(
            site=v.site,
            generated_at=v.generated_at,
            config_sha256=v.config_sha256,
            mode=v.mode,
            authorisations=[RegisterOut.model_validate(r) for r in v.register],
            frias=[FriaOut.model_validate(f) for f in v.frias],
            approvals=[ApprovalOut.model_validate(a) for a in v.approvals],
            monthly=[MonthOut.model_validate(m) for m in v.monthly],
            recall=RecallOut.model_validate(v.recall),
            quarter_since=v.quarter_since,
            quarter=[QuarterOut.of(r) for r in v.quarter],
            suspensions=[SuspensionOut.model_validate(s) for s in v.suspensions],
            incidents=[IncidentRefOut.model_validate(i) for i in v.incidents],
            incident_months=[IncidentMonthOut.model_validate(m) for m in v.incident_months],
            findings=[RuleFindingsOut.model_validate(f) for f in v.findings],
            audit=AuditStateOut.model_validate(v.audit),
            complaints=[ComplaintOut.of(c) for c in v.complaints],
            complaint_counts=[ComplaintCountOut.model_validate(c) for c in v.complaint_counts],
        )


class VerificationOut(_Read):
    ok: bool
    summary: str
    records: int
    first_bad_seq: int | None
    witnesses_checked: bool
    checked_at: str
    breach_incident: int | None
