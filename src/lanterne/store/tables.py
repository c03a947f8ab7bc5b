"""The database schema as typed SQLAlchemy models.

What is stored is a *situation* (type, place, time, region of the image) and where its anonymised
evidence lies, never who was there: no column can hold a name, a face, an embedding, an attribute or
a track id. `tests/test_store.py` scans the schema for such columns, so adding one fails the build.

The models are the reference for `alembic check`; the migrations under `migrations/versions/` are
written out by hand and never import this module, because a migration must keep producing the
schema of its day after the models move on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lanterne.core.types import EventType

EVENT_TYPES: tuple[str, ...] = tuple(str(t) for t in EventType)
EVENT_MODES: tuple[str, ...] = ("alerts", "evaluation")
"""`alerts`: raised live for operators; `evaluation`: produced while replaying a recorded clip to
measure the rules, kept apart so that a test run never pollutes the operators' list."""
EVIDENCE_KINDS: tuple[str, ...] = ("snapshot", "clip")


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC and always timezone-aware in Python.

    SQLite has no timezone type and hands back naive values; PostgreSQL converts to the session's
    zone. Normalising here means callers compare and subtract datetimes without surprises, and a
    naive datetime (whose zone nobody knows) is refused at write time instead of stored wrongly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value (e.g. datetime.now(UTC))")
        value = value.astimezone(UTC)
        # SQLite stores timestamps as text and compares them as text: every row must be written
        # in the same zone without an offset suffix for `since`/`until` filters to be right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class EventRecord(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(_in_list("type", EVENT_TYPES), name="ck_events_type"),
        CheckConstraint(_in_list("mode", EVENT_MODES), name="ck_events_mode"),
        CheckConstraint("end_offset >= start_offset", name="ck_events_order"),
        # The search's filters, each ending with the start time, so a filtered search reads one
        # index newest first and stops after a page (migration 0011 says more).
        Index("ix_events_camera_start", "camera", "start_ts"),
        Index("ix_events_type_start", "type", "start_ts"),
        Index("ix_events_start_id", "start_ts", "id"),
        Index("ix_events_zone_start", "zone", "start_ts"),
        Index("ix_events_object_class_start", "object_class", "start_ts"),
        # Conjunctions and the confidence order (migration 0018): the state index also carries
        # the other filters, so that a state with any of them is counted from the index alone.
        Index(
            "ix_events_state_start",
            "state",
            "start_ts",
            "camera",
            "zone",
            "type",
            "object_class",
            postgresql_where=text("state IS NOT NULL"),
            sqlite_where=text("state IS NOT NULL"),
        ),
        Index(
            "ix_events_camera_state_start",
            "camera",
            "state",
            "start_ts",
            "zone",
            "type",
            "object_class",
            postgresql_where=text("state IS NOT NULL"),
            sqlite_where=text("state IS NOT NULL"),
        ),
        Index("ix_events_type_confidence", "type", "confidence", "start_ts", "id"),
        Index("ix_events_camera_type_start", "camera", "type", "start_ts"),
        Index(
            "ix_events_new_start",
            "start_ts",
            postgresql_where=text("state IS NULL"),
            sqlite_where=text("state IS NULL"),
        ),
        Index(
            "ix_events_type_state_class_start",
            "type",
            "state",
            "object_class",
            "start_ts",
            postgresql_where=text("state IS NOT NULL"),
            sqlite_where=text("state IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    camera: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    start_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    end_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    start_offset: Mapped[float] = mapped_column(Float)
    """Seconds from the stream start: what ties the event to a recorded clip's ground truth."""
    end_offset: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    x0: Mapped[float] = mapped_column(Float)
    y0: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    object_class: Mapped[str | None] = mapped_column(String(32))
    ongoing: Mapped[bool] = mapped_column()
    model_hash: Mapped[str] = mapped_column(String(64), default="")
    config_hash: Mapped[str] = mapped_column(String(64), default="")
    mode: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str | None] = mapped_column(String(16))
    """The latest step of `alert_states` (None: `new`), written in the transaction that inserts
    the step: what a search filters on without reading the whole history (`alert_states` stays
    the record)."""


class EvidenceRecord(Base):
    __tablename__ = "evidence"
    __table_args__ = (
        CheckConstraint(_in_list("kind", EVIDENCE_KINDS), name="ck_evidence_kind"),
        UniqueConstraint("event_id", "path", name="uq_evidence_event_path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # ON DELETE CASCADE: retention deletes events and their evidence rows go with them (the files
    # themselves are the retention job's to delete, the database cannot reach the disk).
    event_id: Mapped[str] = mapped_column(String(64), ForeignKey("events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(512))
    """POSIX path relative to the evidence directory, so the directory can move."""
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ZoneCountRecord(Base):
    __tablename__ = "zone_counts"
    __table_args__ = (UniqueConstraint("camera", "zone", "bucket_start", name="uq_zone_counts_bucket"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(64))
    bucket_start: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    bucket_seconds: Mapped[float] = mapped_column(Float)
    max_people: Mapped[int] = mapped_column(Integer)
    mean_people: Mapped[float] = mapped_column(Float)
    entries: Mapped[dict[str, int]] = mapped_column(JSON)
    """Objects of each class that entered the zone during the bucket, e.g. `{"person": 12}`."""
    samples: Mapped[int] = mapped_column(Integer)


class AuditSettingsRecord(Base):
    """The audit retention, read by the database triggers that guard the audit tables."""

    __tablename__ = "audit_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="ck_audit_settings_single"),
        CheckConstraint("keep_days BETWEEN 183 AND 1096", name="ck_audit_settings_keep_days"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    keep_days: Mapped[int] = mapped_column(Integer)


class AuditRecord(Base):
    """One access or change, chained to the previous record by its hash (append-only: database
    triggers refuse UPDATE and DELETE). Holds a user id, never a name or an image."""

    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    user_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(128))
    time_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    time_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    purpose: Mapped[str | None] = mapped_column(String(1000))
    recipient: Mapped[str | None] = mapped_column(String(256))
    details: Mapped[str] = mapped_column(Text)
    """Canonical JSON of extra facts (ids, counts, hashes): never images, never personal data."""
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRecord(Base):
    """A signature over the chain hash at `seq`: proves the log up to there existed unaltered
    when it was signed, and anchors verification after old records are purged."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    seq: Mapped[int] = mapped_column(Integer)
    chain_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(256))


class AuthorisationRecord(Base):
    """A deployment authorisation (loi 2023-380 art. 10): alerting runs on a camera only for the
    event types listed, between the dates, and never after revocation."""

    __tablename__ = "authorisations"
    __table_args__ = (CheckConstraint("valid_until > valid_from", name="ck_authorisations_dates"),)

    reference: Mapped[str] = mapped_column(String(128), primary_key=True)
    legal_basis: Mapped[str] = mapped_column(String(500))
    authority: Mapped[str] = mapped_column(String(500))
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime)
    cameras: Mapped[list[str]] = mapped_column(JSON)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    impact_assessments: Mapped[list[str]] = mapped_column(JSON)
    """Links (URLs or document references) to the DPIA and other impact assessments."""
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(128))
    revoke_reason: Mapped[str | None] = mapped_column(String(1000))
    manifestation: Mapped[str | None] = mapped_column(String(300))
    """The event (manifestation) the act authorises for (LB-01); None on records before 0021."""
    responsible_service: Mapped[str | None] = mapped_column(String(300))
    recipients: Mapped[list[str] | None] = mapped_column(JSON)
    """Services alerts and exports may go to under this act (AC-06, CSI L252-3); None: recorded
    before the act's recipients were kept (0021), so it restricts nothing."""


class LegalHoldRecord(Base):
    """Keeps an event and its evidence past the retention limit for a judicial procedure (CSI
    L252-5). A database trigger refuses to delete an event while its hold is active."""

    __tablename__ = "legal_holds"
    __table_args__ = (CheckConstraint("length(judicial_reference) > 0", name="ck_legal_holds_reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    judicial_reference: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))


class EventAggregateRecord(Base):
    """Anonymous daily counts per camera and event type: what remains of events after retention
    deletes them (RT-03), for the published statistics."""

    __tablename__ = "event_aggregates"
    __table_args__ = (UniqueConstraint("day", "camera", "type", "mode", name="uq_event_aggregates_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    camera: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    events: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer, server_default="0")
    dismissed: Mapped[int] = mapped_column(Integer, server_default="0")
    dismiss_reasons: Mapped[dict[str, int] | None] = mapped_column(JSON)
    """Dismissals per reason code, e.g. `{"reflection_or_light": 3}`: how precision is explained."""


DISMISS_REASONS: tuple[str, ...] = (
    "reflection_or_light",
    "street_furniture",
    "person_at_rest",
    "owner_nearby",
    "test",
    "other",
)
"""Why an operator lifted the doubt (HO-01); `other` needs a text."""
FOLLOW_UPS: tuple[str, ...] = ("none", "monitoring", "field_request", "emergency_services")
"""What the operator decided to do after confirming. Lanterne itself never dispatches anything."""
ALERT_STATES: tuple[str, ...] = ("acknowledged", "confirmed", "dismissed")


class AlertStateRecord(Base):
    """One human step on an alert (`new` is the absence of any row). A history, never updated."""

    __tablename__ = "alert_states"
    __table_args__ = (
        Index("ix_alert_states_event_id_id", "event_id", "id"),
        CheckConstraint(_in_list("state", ALERT_STATES), name="ck_alert_states_state"),
        CheckConstraint(
            f"state <> 'dismissed' OR (reason IS NOT NULL AND {_in_list('reason', DISMISS_REASONS)} "
            "AND (reason <> 'other' OR (reason_text IS NOT NULL AND length(reason_text) > 0)))",
            name="ck_alert_states_dismiss_reason",
        ),
        CheckConstraint(
            f"state <> 'confirmed' OR (follow_up IS NOT NULL AND {_in_list('follow_up', FOLLOW_UPS)})",
            name="ck_alert_states_follow_up",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), ForeignKey("events.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(String(500))
    follow_up: Mapped[str | None] = mapped_column(String(32))


class SuspensionRecord(Base):
    """A detector switched off on one camera, by itself (alert flood, precision below the floor)
    or by a supervisor, until a supervisor lifts it."""

    __tablename__ = "suspensions"
    __table_args__ = (
        CheckConstraint(
            _in_list("cause", ("alert_rate", "precision_floor", "supervisor")), name="ck_suspensions_cause"
        ),
        Index("ix_suspensions_camera_type", "camera", "type"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    cause: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, object]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_by: Mapped[str] = mapped_column(String(128))
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))
    lift_note: Mapped[str | None] = mapped_column(String(1000))


class NoticeRecord(Base):
    """A publication of the public transparency notice; alerting cannot start before one exists
    for the configuration in force (TR-01)."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_by: Mapped[str] = mapped_column(String(128))
    config_sha256: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(1000))
    """Where the notice was published (a directory or URL)."""


ROLES: tuple[str, ...] = ("operator", "supervisor", "auditor", "admin", "analyst", "export_officer")
"""operator: alerts of their scope; supervisor: plus stop controls and suspensions; auditor: audit
log and statistics, no footage; admin: configuration and users, no footage; analyst: observatory
rows (aggregates only for everyone else); export_officer: extractions of recorded footage with a
recipient and a purpose, and the recordings they are cut from, no live view and no alerts (AC-03)."""


class AccountRecord(Base):
    """A local console account. `id` is what the audit log records; `login` is what the person
    types. Password hashes are argon2."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint(_in_list("role", ROLES), name="ck_accounts_role"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    scope: Mapped[list[str]] = mapped_column(JSON)
    """Camera ids this account may see; `["*"]` for every camera."""
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SessionRecord(Base):
    """A console session; the cookie carries a random token, the database only its sha256."""

    __tablename__ = "sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StopRecord(Base):
    """A supervisor's stop (HO-03): one detector on a camera, a whole camera, or the site.
    Inference stops; recording is untouched."""

    __tablename__ = "stops"
    __table_args__ = (
        CheckConstraint(_in_list("scope", ("detector", "camera", "site")), name="ck_stops_scope"),
        CheckConstraint(
            "(scope = 'site' AND camera IS NULL AND type IS NULL)"
            " OR (scope = 'camera' AND camera IS NOT NULL AND type IS NULL)"
            " OR (scope = 'detector' AND camera IS NOT NULL AND type IS NOT NULL)",
            name="ck_stops_shape",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    camera: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(1000))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_by: Mapped[str] = mapped_column(String(128))
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))


HEALTH_STATES: tuple[str, ...] = (
    "starting",
    "running",
    "shedding",
    "dropping",
    "failed",
    "finished",
    "stopped",
    "stalled",
)
"""A camera worker's state as `lanterne run` last wrote it: `shedding` analyses below the configured
rate to keep up with real time, `dropping` skips frames undecoded because even the lowest rate
could not; `failed` waits for the watchdog's restart; `stalled` has had no frame for a while (a
live stream reconnecting, a stuck worker)."""


class CameraHealthRecord(Base):
    """How each camera's worker keeps up with real time, one row per camera, rewritten every few
    seconds by `lanterne run` (the console runs in another process and reads it here). A row not
    rewritten lately means the runner is gone, whatever the row says."""

    __tablename__ = "camera_health"
    __table_args__ = (CheckConstraint(_in_list("state", HEALTH_STATES), name="ck_camera_health_state"),)

    camera: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    """Wall time since the stream opened minus stream time analysed; None for an unpaced file."""
    analysis_fps: Mapped[float] = mapped_column(Float)
    """The rate frames are analysed at now: below `configured_fps` while shedding."""
    configured_fps: Mapped[float] = mapped_column(Float)
    frames_dropped: Mapped[int] = mapped_column(Integer)
    """Frames skipped undecoded to catch up, since the runner started."""
    restarts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    worker: Mapped[str | None] = mapped_column(String(128))
    """The process that runs the camera now (`lanterne worker --id`); None for `lanterne run`."""


RECORDING_STATES: tuple[str, ...] = ("open", "complete", "recovered", "lost")
"""`open`: being written now (or left by a crash until the recorder's `recover` runs at start-up);
`complete`: sealed with its final record; `recovered`: cut short by a crash, its complete records
kept; `lost`: nothing in it could be read."""


class RecordingSegmentRecord(Base):
    """One encrypted segment of a camera's own stream (`video/recording/`). `sha256` is that of the
    file's bytes and `prev_sha256` that of the same camera's previous segment (`seq - 1`), so a
    replaced, removed or reordered segment breaks the chain. No image is ever in the database."""

    __tablename__ = "recording_segments"
    __table_args__ = (
        CheckConstraint(_in_list("state", RECORDING_STATES), name="ck_recording_segments_state"),
        CheckConstraint("end_ts >= start_ts", name="ck_recording_segments_order"),
        UniqueConstraint("camera", "seq", name="uq_recording_segments_seq"),
        Index("ix_recording_segments_camera_start", "camera", "start_ts"),
        Index("ix_recording_segments_end", "end_ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    start_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    end_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    path: Mapped[str] = mapped_column(String(512))
    """POSIX path relative to the recordings directory, so the directory can move."""
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    """None while the segment is open."""
    prev_sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))


class RecordingHoldRecord(Base):
    """Keeps a camera's segments (or every camera's, `camera` None) over a time range past
    retention for a judicial procedure (CSI L252-5). A database trigger refuses to delete a segment
    an active hold overlaps."""

    __tablename__ = "recording_holds"
    __table_args__ = (
        CheckConstraint("length(judicial_reference) > 0", name="ck_recording_holds_reference"),
        CheckConstraint("end_ts > start_ts", name="ck_recording_holds_order"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera: Mapped[str | None] = mapped_column(String(64))
    start_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    end_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    judicial_reference: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(1000))
    placed_by: Mapped[str] = mapped_column(String(128))
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))


class PrivacyPermissionRecord(Base):
    """A person's permission to see recorded video without anonymisation (issue 11 item 3, after
    Genetec's privilege): granted by an administrator, to one user, for named cameras (or all),
    until a date; revoking only ever ends it early. Each use is an audit record of its own."""

    __tablename__ = "privacy_permissions"
    __table_args__ = (CheckConstraint("length(reason) > 0", name="ck_privacy_permissions_reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    cameras: Mapped[str] = mapped_column(String(4000))
    """Camera ids separated by commas, or `*` for every camera."""
    reason: Mapped[str] = mapped_column(String(1000))
    granted_by: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(128))


class HabilitationRecord(Base):
    """A person's designation to view video (AC-01, AC-05): who designated them (the mayor for
    municipal police, the chief of service otherwise), when, for which cameras (or all) and until
    when. Revoking only ever ends it early; renewing is a new row, so the register keeps history."""

    __tablename__ = "habilitations"
    __table_args__ = (CheckConstraint("length(authority) > 0", name="ck_habilitations_authority"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    authority: Mapped[str] = mapped_column(String(256))
    designated_on: Mapped[datetime] = mapped_column(UtcDateTime)
    cameras: Mapped[str] = mapped_column(String(4000))
    """Camera ids separated by commas, or `*` for every camera."""
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(128))


class TrainingRecord(Base):
    """A completed course (data protection, the system's limits and failure modes: HO-06), with
    the date it was passed and when it must be refreshed."""

    __tablename__ = "trainings"
    __table_args__ = (CheckConstraint("length(course) > 0", name="ck_trainings_course"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    course: Mapped[str] = mapped_column(String(256))
    completed_on: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(128))


class SecondFactorRecord(Base):
    """An account's TOTP secret (AC-04). `last_step` is the 30-second step of the last code
    accepted: a code of that step or an earlier one is refused, so an observed code cannot be
    replayed."""

    __tablename__ = "second_factors"

    account_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_step: Mapped[int | None] = mapped_column(Integer)


class RecoveryCodeRecord(Base):
    """A one-time recovery code, kept as a salted sha256 (the code has 50 random bits, so a slow
    hash adds nothing but a wait); spent when used."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    salt: Mapped[str] = mapped_column(String(32))
    code_sha256: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


ACCESS_REQUEST_STATES: tuple[str, ...] = ("open", "answered", "refused")


class AccessRequestRecord(Base):
    """A person's request for their own images (GDPR art. 15, TR-03): what they say about when and
    where they were, and what became of it. The requester's name and contact are here, needed to
    answer, and nowhere else: the audit log names the request by its id."""

    __tablename__ = "access_requests"
    __table_args__ = (
        CheckConstraint(_in_list("state", ACCESS_REQUEST_STATES), name="ck_access_requests_state"),
        CheckConstraint(
            "state != 'refused' OR length(refusal_reason) > 0", name="ck_access_requests_refusal"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    requester: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deadline: Mapped[datetime] = mapped_column(UtcDateTime)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime)
    place: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[str] = mapped_column(String(128))
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(128))
    refusal_reason: Mapped[str | None] = mapped_column(String(1000))
    export_id: Mapped[str | None] = mapped_column(String(32))


OUTBOUND_STATES: tuple[str, ...] = ("pending", "sent", "dead")
"""`pending`: waiting for its next attempt; `sent`: the destination took it (MQTT QoS 1
acknowledged, webhook answered 2xx); `dead`: every attempt failed, listed for a supervisor."""


class OutboundRecord(Base):
    """One confirmed alert to deliver to one destination (`mqtt` or `webhook:<id>`), written by
    the transaction that records the confirmation (`accountability.outbound`): the outbox pattern,
    so a confirmation is never lost between the decision and the network, and an alert that no
    person confirmed has no row. `payload` is what leaves, fixed at the confirmation: ids, type,
    zone, times and follow-up, never a picture or a name. Deleted with its alert by retention."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        CheckConstraint(_in_list("state", OUTBOUND_STATES), name="ck_outbound_messages_state"),
        Index("ix_outbound_messages_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), ForeignKey("events.id", ondelete="CASCADE"), index=True)
    destination: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


LIVE_KINDS: tuple[str, ...] = ("anonymised", "raw")
"""`anonymised`: the default live picture, faces, plates and heads pixelated, shared by every
viewer of the camera; `raw`: privacy protection removed under a permission, for one view only,
until the grant's end (masks stay in both)."""
STREAM_KINDS: tuple[str, ...] = (*LIVE_KINDS, "relay")
"""A `relay` stream is the anonymised picture sent to the console for the wall's fallback
(MJPEG), for browsers that cannot play WebRTC."""
LIVE_END_REASONS: tuple[str, ...] = ("closed", "expired", "grant_ended", "refused")
"""Why a view ended: the viewer closed it; its page stopped confirming it was open (a closed tab,
a lost network); the removal of protection reached its end; the viewer lost the right to watch
(habilitation, scope) while watching."""


class LiveViewRecord(Base):
    """One person watching one camera live (LG-02): who, which camera, for what purpose, from when
    to when, anonymised or not. The console keeps `last_seen` fresh while the tile plays; a view
    whose page went quiet is ended by the sweeper with `expired`. `token` is the gateway credential
    handed to that page, revoked at the view's end."""

    __tablename__ = "live_views"
    __table_args__ = (
        CheckConstraint(_in_list("kind", LIVE_KINDS), name="ck_live_views_kind"),
        CheckConstraint(
            f"end_reason IS NULL OR {_in_list('end_reason', LIVE_END_REASONS)}", name="ck_live_views_end"
        ),
        CheckConstraint(
            "kind = 'anonymised' OR (permission_id IS NOT NULL AND length(reason) > 0"
            " AND length(reference) > 0 AND raw_until IS NOT NULL)",
            name="ck_live_views_raw",
        ),
        Index("ix_live_views_open", "ended_at", "camera"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(128))
    camera: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(1000))
    kind: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(16))
    permission_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(1000))
    reference: Mapped[str | None] = mapped_column(String(200))
    raw_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LiveStreamRecord(Base):
    """A live stream some camera process must feed now: the gateway mountpoint (its id is this
    row's), where to send RTP, and for a raw stream the view it serves and the text burned into
    it. Written and deleted by the console as views start and end; read by the process that
    analyses the camera, which encodes only while a row exists (no viewer, no encoding)."""

    __tablename__ = "live_streams"
    __table_args__ = (
        CheckConstraint(_in_list("kind", STREAM_KINDS), name="ck_live_streams_kind"),
        CheckConstraint(
            "(kind IN ('anonymised', 'relay') AND view_id IS NULL) OR (kind = 'raw' AND view_id IS NOT NULL)",
            name="ck_live_streams_shape",
        ),
        Index("ix_live_streams_camera", "camera"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    camera: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    view_id: Mapped[int | None] = mapped_column(Integer)
    rtp_host: Mapped[str] = mapped_column(String(255))
    rtp_port: Mapped[int] = mapped_column(Integer)
    rtcp_port: Mapped[int | None] = mapped_column(Integer)
    secret: Mapped[str] = mapped_column(String(64))
    banner: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LiveGroupRecord(Base):
    """A camera group an operator saved for the wall: its layout and the camera on each tile."""

    __tablename__ = "live_groups"
    __table_args__ = (
        UniqueConstraint("account", "title", name="uq_live_groups_account_title"),
        CheckConstraint("layout IN (1, 4, 9, 16)", name="ck_live_groups_layout"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(100))
    layout: Mapped[int] = mapped_column(Integer)
    cameras: Mapped[list[str | None]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


FINDING_STATES: tuple[str, ...] = ("open", "acknowledged", "closed")
"""`open`: raised by the review (or raised again by new records), waiting for the DPO;
`acknowledged`: the DPO is looking into it; `closed`: done, with the DPO's note."""


class ReviewFindingRecord(Base):
    """Something the automatic review of the audit log flags for the DPO (LG-06): which rule, the
    account concerned (a user id, never a name; none when several are, as for one recording
    replayed by many), the window, and the audit records that show it by sequence number, with a
    one-line explanation. `dedupe_key` (sha256 of rule, account and the rule's window) keeps a
    review run again over the same records from raising the finding twice."""

    __tablename__ = "review_findings"
    __table_args__ = (
        CheckConstraint(_in_list("state", FINDING_STATES), name="ck_review_findings_state"),
        CheckConstraint("state != 'closed' OR length(note) > 0", name="ck_review_findings_note"),
        Index("ix_review_findings_state_created", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    rule: Mapped[str] = mapped_column(String(32))
    account: Mapped[str | None] = mapped_column(String(128), index=True)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime)
    evidence: Mapped[list[int]] = mapped_column(JSON)
    """Sequence numbers of the audit records that show it, ascending."""
    explanation: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When a later review last added records to it (`created_at` until then)."""
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(128))


class FriaRecord(Base):
    """A fundamental-rights impact assessment (AI Act art. 27, GV-02), as the deployer recorded it:
    its reference (what an authorisation's `impact_assessments` names), the date it was carried
    out, and its six elements as text. An authorisation alerts only while it names a recorded
    one (`lanterne.accountability.fria`)."""

    __tablename__ = "fria_records"

    reference: Mapped[str] = mapped_column(String(128), primary_key=True)
    assessed_on: Mapped[date] = mapped_column(Date)
    processes: Mapped[str] = mapped_column(Text)
    """Art. 27(1)(a): the deployer's processes in which the system is used, and their purpose."""
    period: Mapped[str] = mapped_column(Text)
    """Art. 27(1)(b): the period of time and the frequency of use."""
    affected: Mapped[str] = mapped_column(Text)
    """Art. 27(1)(c): the categories of people and groups likely to be affected."""
    risks: Mapped[str] = mapped_column(Text)
    """Art. 27(1)(d): the specific risks of harm to those categories."""
    oversight: Mapped[str] = mapped_column(Text)
    """Art. 27(1)(e): the human oversight measures."""
    mitigation: Mapped[str] = mapped_column(Text)
    """Art. 27(1)(f): the measures if the risks materialise, governance and complaints included."""
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


GOVERNANCE_CHANGES: tuple[str, ...] = ("model", "thresholds", "zones", "event_types", "observatory_source")
"""What a governance record approves (GV-05): a detector model (its file's sha256), the detection
thresholds and event parameters, the zones and cameras, the event types watched, an observatory
source (each by the sha256 of what was reviewed)."""


class GovernanceRecord(Base):
    """A signed approval of a change (GV-05): who approved which change (by sha256), when, why,
    which updated DPIA and FRIA cover it, and where the updated public notice is. The DPIA and
    FRIA references follow the summary in `summary`, on lines of their own (`DPIA: …`, `FRIA: …`),
    which `lanterne.accountability.governance` splits out. `signature` is Ed25519 by the site's
    audit key over every other column but `id`, so a row edited in the database no longer counts."""

    __tablename__ = "governance_records"
    __table_args__ = (
        CheckConstraint(_in_list("change", GOVERNANCE_CHANGES), name="ck_governance_records_change"),
        Index("ix_governance_records_change_sha256", "change", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    change: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(1000))
    notice_url: Mapped[str] = mapped_column(String(500))
    approved_by: Mapped[str] = mapped_column(String(128))
    approved_at: Mapped[datetime] = mapped_column(UtcDateTime)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))


RECALL_AUDIT_STATES: tuple[str, ...] = ("open", "closed")
"""`open`: windows drawn, the reviewer marks what they see, no alert is shown; `closed`: scored
against the system's alerts (every window reviewed, or closed early) and published."""


class RecallAuditRecord(Base):
    """A blinded recall audit (PM-03): a reviewer watches randomly drawn windows of recorded
    footage without the system's alerts and marks the situations they see; once closed, the marks
    are matched to the alerts (`lanterne.accountability.recall`). `seed` is what the draw used,
    so the windows can be drawn again from the same recording index."""

    __tablename__ = "recall_audits"
    __table_args__ = (
        CheckConstraint(_in_list("state", RECALL_AUDIT_STATES), name="ck_recall_audits_state"),
        CheckConstraint("range_end > range_start", name="ck_recall_audits_range"),
        CheckConstraint("state = 'open' OR closed_at IS NOT NULL", name="ck_recall_audits_closed"),
        Index("ix_recall_audits_state_closed", "state", "closed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    """The account (id) that reviews the windows, and the only one that plays them."""
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    range_start: Mapped[datetime] = mapped_column(UtcDateTime)
    range_end: Mapped[datetime] = mapped_column(UtcDateTime)
    cameras: Mapped[list[str]] = mapped_column(JSON)
    window_seconds: Mapped[int] = mapped_column(Integer)
    tolerance_seconds: Mapped[float] = mapped_column(Float)
    seed: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(String(1000))


class RecallWindowRecord(Base):
    """One drawn window of a recall audit: a camera and a stretch of its recording. Reviewed when
    the reviewer said they marked everything (or nothing) in it. `watched` (event types the
    camera was set to detect) and `unmarked` (alerts in the window no mark matched: id, type and
    times) are written when the audit is scored, so the published figures outlive the alerts; so
    is `unblinded`, the blinding flag."""

    __tablename__ = "recall_windows"
    __table_args__ = (
        UniqueConstraint("audit_id", "seq", name="uq_recall_windows_seq"),
        CheckConstraint("end_ts > start_ts", name="ck_recall_windows_order"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[int] = mapped_column(Integer, ForeignKey("recall_audits.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    camera: Mapped[str] = mapped_column(String(64))
    start_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    end_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    watched: Mapped[list[str] | None] = mapped_column(JSON)
    unmarked: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)
    unblinded: Mapped[bool | None] = mapped_column()
    """Written with the score: the audit log shows the reviewer had looked at an alert of the
    window (its snapshot, clip or decision, or the camera's timeline over it) before closing."""


class RecallMarkRecord(Base):
    """A situation the reviewer saw in a window: its type, when (seconds from the window's start)
    and, optionally, the zone. No free text: a mark says what happened, never who was there.
    `matched_event` is the alert it was matched to when the audit was scored (no foreign key:
    retention deletes alerts, the audit's result stays)."""

    __tablename__ = "recall_marks"
    __table_args__ = (
        CheckConstraint(_in_list("type", EVENT_TYPES), name="ck_recall_marks_type"),
        CheckConstraint("offset_s >= 0", name="ck_recall_marks_offset"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    window_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("recall_windows.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))
    offset_s: Mapped[float] = mapped_column(Float)
    zone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    matched_event: Mapped[str | None] = mapped_column(String(64))


INCIDENT_KINDS: tuple[str, ...] = ("detector_silent", "false_alarm_spike", "recall_miss", "breach", "manual")
"""What went wrong (RK-05, SC-05): a running camera's detector fell silent, its dismissals spiked
above its own history, a recall audit found a missed situation, a personal-data breach (the audit
log found altered or truncated), or anything a person records by hand."""
INCIDENT_STATES: tuple[str, ...] = ("open", "closed")
INCIDENT_STEPS: tuple[str, ...] = ("opened", "evidence", "note", "notified", "closed")
"""The entries of an incident's timeline, in the order they usually come."""


class IncidentRecord(Base):
    """An incident (RK-05) or a personal-data breach (SC-05): what happened to which cameras and
    detectors, who owns it, and, for a breach, the 72-hour deadline to notify the authority (GDPR
    art. 33). `dedupe_key` lets the automatic sweep recognise what it already opened. Never a
    person: cameras and detectors by id, the rest is the owner's text (`lanterne.accountability.
    incidents`). Its timeline is in `incident_entries`."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint(_in_list("kind", INCIDENT_KINDS), name="ck_incidents_kind"),
        CheckConstraint(_in_list("state", INCIDENT_STATES), name="ck_incidents_state"),
        CheckConstraint(
            "state = 'open' OR (closed_at IS NOT NULL AND length(cause) > 0 AND length(remedy) > 0)",
            name="ck_incidents_closed",
        ),
        Index("ix_incidents_state_opened", "state", "opened_at"),
        Index("ix_incidents_dedupe_key", "dedupe_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(2000))
    """What happened and its effects so far, as the sweep or the owner wrote it."""
    owner: Mapped[str] = mapped_column(String(128))
    """The user id who answers for it (handles, notifies, closes)."""
    cameras: Mapped[list[str]] = mapped_column(JSON)
    detectors: Mapped[list[str]] = mapped_column(JSON)
    """Event types concerned, out of the eight."""
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When it became known: a breach's 72 hours run from here."""
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    opened_by: Mapped[str] = mapped_column(String(128))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """A breach's notification deadline (detected + 72 h); none for the other kinds."""
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the authority was first told (recorded by the owner)."""
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(128))
    cause: Mapped[str | None] = mapped_column(String(1000))
    remedy: Mapped[str | None] = mapped_column(String(1000))


class IncidentEntryRecord(Base):
    """One entry of an incident's timeline: opened, evidence found by a sweep, a note, a
    notification sent, closed. `details` holds the measurements (counts, ids, times), never a
    person."""

    __tablename__ = "incident_entries"
    __table_args__ = (CheckConstraint(_in_list("step", INCIDENT_STEPS), name="ck_incident_entries_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(Integer, ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    author: Mapped[str] = mapped_column(String(128))
    step: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(String(2000))
    details: Mapped[dict[str, object]] = mapped_column(JSON)


RISK_CATEGORIES: tuple[str, ...] = ("safety", "fundamental_rights", "misuse")
RISK_LEVELS: tuple[int, ...] = (1, 2, 3, 4)
"""The CNIL's four levels for likelihood and severity: 1 negligible, 2 limited, 3 significant,
4 maximum."""


class RiskRecord(Base):
    """A risk of the living risk register (RK-01): what could go wrong, for which detector (none:
    the whole deployment), its likelihood and severity (none until first assessed), the measures,
    the residual level, its owner and the date of its next review. In alerts mode a start is
    refused while a review is overdue (`lanterne.accountability.risks`)."""

    __tablename__ = "risks"
    __table_args__ = (
        CheckConstraint(_in_list("category", RISK_CATEGORIES), name="ck_risks_category"),
        CheckConstraint("likelihood IS NULL OR likelihood BETWEEN 1 AND 4", name="ck_risks_likelihood"),
        CheckConstraint("severity IS NULL OR severity BETWEEN 1 AND 4", name="ck_risks_severity"),
        CheckConstraint("residual IS NULL OR residual BETWEEN 1 AND 4", name="ck_risks_residual"),
        Index("ix_risks_next_review", "next_review"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(32))
    detector: Mapped[str | None] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(128))
    likelihood: Mapped[int | None] = mapped_column(Integer)
    severity: Mapped[int | None] = mapped_column(Integer)
    residual: Mapped[int | None] = mapped_column(Integer)
    measures: Mapped[str] = mapped_column(String(2000))
    next_review: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(128))


class ConfigSnapshotRecord(Base):
    """The canonical configuration behind a configuration hash (DC-03), stored the first time a
    process starts with it, so that the hash on an alert or a notice resolves to the thresholds,
    zones and models that produced it (`lanterne.accountability.snapshots`)."""

    __tablename__ = "config_snapshots"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[str] = mapped_column(Text)
    redacted: Mapped[list[str]] = mapped_column(JSON)
    """Paths of values whose credentials were replaced before storing (a password in a URL)."""
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    first_seen_by: Mapped[str] = mapped_column(String(128))


COMPLAINT_CATEGORIES: tuple[str, ...] = (
    "camera_placement",
    "false_alert",
    "discrimination",
    "privacy",
    "rights_request",
    "information",
    "misuse",
    "other",
)
"""What a complaint is about, from a closed list, so that counts per category mean the same thing
on every site and no category is itself free text (`lanterne.accountability.complaints`)."""
COMPLAINT_CHANNELS: tuple[str, ...] = ("letter", "email", "web_form", "phone", "in_person", "authority")
"""How it arrived; `authority`: referred by the CNIL, the commission départementale de
vidéoprotection, the Défenseur des droits or another public body."""
COMPLAINT_STATES: tuple[str, ...] = ("open", "answered")


class ComplaintRecord(Base):
    """A complaint about the system from the public or an authority (GV-07): when it was received,
    by which channel, its category and a summary; then when and how it was answered. No column
    holds the complainant: names and contact details stay in the city's mail register, and the
    summary is refused when it looks like it carries an e-mail address or a phone number."""

    __tablename__ = "complaints"
    __table_args__ = (
        CheckConstraint(_in_list("category", COMPLAINT_CATEGORIES), name="ck_complaints_category"),
        CheckConstraint(_in_list("channel", COMPLAINT_CHANNELS), name="ck_complaints_channel"),
        CheckConstraint(_in_list("state", COMPLAINT_STATES), name="ck_complaints_state"),
        CheckConstraint(
            "state = 'open' OR (answered_on IS NOT NULL AND length(answer) > 0)",
            name="ck_complaints_answered",
        ),
        Index("ix_complaints_state_received", "state", "received_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_on: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(String(1000))
    """What the complaint is about, without personal data."""
    state: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_by: Mapped[str] = mapped_column(String(128))
    answered_on: Mapped[date | None] = mapped_column(Date)
    answer: Mapped[str | None] = mapped_column(String(1000))
    """What was answered and done, without personal data."""
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(128))
