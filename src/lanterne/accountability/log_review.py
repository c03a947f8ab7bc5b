"""The automatic review of the audit log for the DPO (LG-06): what a person must look at, flagged.

The CNIL asks for a "contrôle automatique régulier" of the access logs (délib. 2021-122): nobody
reads thousands of records a day, so a review reads them and raises a *finding* for each pattern
a DPO must see. Nine rules, each a pure function over the records and what the site knows of its
accounts (`Context`), so a test builds any situation and a finding can be replayed from the log:

| rule | flags |
|---|---|
| `bulk_export` | one account exporting `bulk_exports` times or more within `bulk_minutes` (20 in 10) |
| `daily_volume` | one account's views and exports in a day above its own habit (see `daily_limit`) |
| `wide_search` | an event search over the whole site, or more than `search_cameras` cameras, over a long range |
| `repeated_refusals` | `refusals` refusals or more (logins, role, scope, records) within `refusal_minutes` |
| `privacy_left_open` | a removal of privacy protection with no end record `privacy_grace_minutes` later |
| `no_habilitation` | footage viewed, exported or searched with no habilitation valid then (and covering the camera) |
| `outside_shift` | footage viewed or exported outside the role's `shift_hours` |
| `replayed_by_many` | one moment of one camera's recording viewed by `replay_users` accounts or more |
| `log_access` | every extract of the log handed out; the log or its findings read by another role, or refused to it |

A finding names the rule, the account (a user id; none for a replay, which concerns several), a
window, the audit records that show it by sequence number and a one-line explanation: never an
image, a name or a purpose's text. It is stored once (`record_findings`): each has a deterministic
key (rule, account, the rule's window: the day, the burst's first record, the removal record, the
replayed moment, the extract's record), and a finding that shares a record with a stored one of
the same rule and account joins it, so a review run again over the same records, or over
overlapping hours, adds nothing twice. New records on a closed finding open it again: what the DPO closed is what they saw.

The review judges the records of `[since, until)`, reading before `since` only what a rule needs
as context: the window of a burst, the day so far, and the footage accesses of the history and
replay windows. `HourlyReview` runs it over each full hour in the process that runs the site's
chores; `lanterne audit review` runs it now. Each run is itself recorded (`log_review`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lanterne.accountability.habilitation import Habilitation, habilitations
from lanterne.audit import Action, AuditEntry, AuditLog
from lanterne.config.schema import ReviewSettings, shift_window
from lanterne.core.errors import LanterneError
from lanterne.store import Store
from lanterne.store.db import describe_failure
from lanterne.store.tables import FINDING_STATES, AccountRecord, AuditRecord, ReviewFindingRecord

log = logging.getLogger(__name__)

SYSTEM = "system"
"""Who runs the hourly review in the audit log."""
REVIEWER_ROLES: tuple[str, ...] = ("auditor",)
"""Who reads and handles findings: the DPO's role (AC-03: audit log and statistics, no footage).
Not supervisors: the findings are about the people who watch, supervisors included."""

BULK_EXPORT = "bulk_export"
DAILY_VOLUME = "daily_volume"
WIDE_SEARCH = "wide_search"
REPEATED_REFUSALS = "repeated_refusals"
PRIVACY_LEFT_OPEN = "privacy_left_open"
NO_HABILITATION = "no_habilitation"
OUTSIDE_SHIFT = "outside_shift"
REPLAYED_BY_MANY = "replayed_by_many"
LOG_ACCESS = "log_access"

RULE_TITLES: dict[str, str] = {
    BULK_EXPORT: "bulk export",
    DAILY_VOLUME: "unusually many views in a day",
    WIDE_SEARCH: "search over many cameras",
    REPEATED_REFUSALS: "repeated refusals",
    PRIVACY_LEFT_OPEN: "privacy protection removed without its end",
    NO_HABILITATION: "access without a valid habilitation",
    OUTSIDE_SHIFT: "views outside shift hours",
    REPLAYED_BY_MANY: "the same footage replayed by many",
    LOG_ACCESS: "access to the audit log itself",
}
"""What each rule is called where a person reads it (console, CLI)."""

MIN_ACTIVE_DAYS = 5
"""Fewer active days than this in the history: too little to call a day unusual for this
account, so only the floor applies (a new account is judged against the floor alone)."""
CATCH_UP = timedelta(days=7)
"""How far back the hourly review resumes after a pause (a stopped process): further back is
`lanterne audit review`'s job."""
NOTE_MAX = 1000
DAY_TIME = "%Y-%m-%d %H:%M"

VIEWS: frozenset[Action] = frozenset(
    {Action.VIEW_LIVE, Action.VIEW_SNAPSHOT, Action.VIEW_CLIP, Action.VIEW_RECORDING}
)
FOOTAGE: frozenset[Action] = VIEWS | {Action.EXPORT}
"""What counts as reaching footage. `privacy_removed` is left out: it opens a view or an export
that is counted itself."""
CAMERA_SEARCHES: frozenset[str] = frozenset({"events", "recording"})
"""Objects of the `search` records that look through cameras (an event search, a recording's
timeline); the observatory's and an alert's details do not."""
REFUSALS: frozenset[Action] = frozenset({Action.ACCESS_DENIED, Action.LOGIN_FAILED})
LOG_READS: dict[str, str] = {
    "audit_log": "review run",
    "review_summary": "week's summary written",
    "review_queue": "queue listed",
    "review_finding": "finding decided",
}
"""Objects of the `log_review` records that read the log or what its review drew from it, in the
words of `log_access`'s explanation: a review run by a person (it prints its findings), the week's
summary (files with account ids), the DPO's queue listed, a finding acknowledged or closed."""
LOG_PAGES: tuple[str, ...] = ("/api/review/", "/console/review")
"""Where a refused request reached for the log's findings: the queue's API and its page."""

_F = ReviewFindingRecord.__table__
_R = AuditRecord.__table__
_A = AccountRecord.__table__


class ReviewError(LanterneError):
    """A review or a decision on a finding that cannot be done as asked."""


class FindingNotFound(ReviewError):  # noqa: N818 (reads as the answer it becomes: 404)
    """No finding has that id."""


class FindingConflict(ReviewError):  # noqa: N818 (reads as the answer it becomes: 409)
    """The finding is not in a state that allows the decision."""


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the DPO must look at. `key` is deterministic: the same rule over the same records
    gives the same key. `id`, `state` and what follows are the stored finding's (None before)."""

    rule: str
    account: str | None
    window_start: datetime
    window_end: datetime
    evidence: tuple[int, ...]
    """Sequence numbers of the audit records that show it, ascending."""
    explanation: str
    key: str
    id: int | None = None
    state: str = "open"
    note: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None

    @property
    def title(self) -> str:
        return RULE_TITLES.get(self.rule, self.rule)


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What a rule may know of an account: its role and camera scope, never its login."""

    role: str
    scope: tuple[str, ...]


@dataclass(frozen=True)
class Context:
    """Everything the rules read: explicit and serialisable, so a test builds any situation.

    `records` are in chain order: every record from `since` less the longest short window (a
    burst, the refusals', the privacy grace, or the local day so far), and before that the footage
    accesses as far back as the history and the replay windows reach (`gather` reads them without
    purpose, recipient or hashes, which no rule needs). A rule raises a finding only when at least
    one of its records falls in `[since, until)`."""

    since: datetime
    until: datetime
    settings: ReviewSettings
    records: Sequence[AuditEntry]
    accounts: Mapping[str, AccountFacts] = field(default_factory=dict)
    habilitations: Mapping[str, Sequence[Habilitation]] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.time_zone)

    def judged(self, e: AuditEntry) -> bool:
        return self.since <= e.ts < self.until

    def day(self, ts: datetime) -> date:
        """The site's local day of `ts`."""
        return ts.astimezone(self.zone).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Local midnight to the next, in UTC (23 or 25 hours on the days the clocks change)."""
        start = datetime.combine(day, time(), self.zone)
        end = datetime.combine(day + timedelta(days=1), time(), self.zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def local(self, ts: datetime, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
        """`ts` in the site's zone, as explanations write it (with the zone's abbreviation, since the
        console shows windows in the browser's zone)."""
        return ts.astimezone(self.zone).strftime(fmt)


# --- what a record is ------------------------------------------------------------------------


def refused(e: AuditEntry) -> bool:
    """A refusal: a failed login, a request refused for role, scope or records (`access_denied`,
    or recorded under the action attempted with `denied` in its details), a refused removal of
    privacy protection."""
    return e.action in REFUSALS or "denied" in e.details


def is_footage(e: AuditEntry) -> bool:
    """A view (snapshot, clip, recording, the start of a live view) or an export that was served."""
    return e.action in FOOTAGE and not refused(e) and e.details.get("live") != "end"


def is_camera_search(e: AuditEntry) -> bool:
    return e.action == Action.SEARCH and e.object_type in CAMERA_SEARCHES and not refused(e)


def camera_of(e: AuditEntry) -> str | None:
    """The camera a record names, wherever its writer put it (an export's object is the export)."""
    recording = e.details.get("recording")
    if isinstance(recording, dict) and isinstance(recording.get("camera"), str):
        return recording["camera"]
    if isinstance(e.details.get("camera"), str):
        return str(e.details["camera"])
    if e.object_type in ("camera", "recording") and e.action != Action.EXPORT:
        return e.object_id
    return None


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def recorded_range(e: AuditEntry) -> tuple[datetime, datetime] | None:
    """The stretch of recording a view or an export showed; None for a snapshot, a live view or a
    clip rendered before recordings existed."""
    if e.action in (Action.VIEW_RECORDING, Action.EXPORT) and e.time_from and e.time_to:
        start, end = e.time_from, e.time_to
    elif e.action == Action.VIEW_CLIP and isinstance(e.details.get("recording"), dict):
        start, end = _parse(e.details["recording"].get("from")), _parse(e.details["recording"].get("to"))  # type: ignore[assignment]
        if start is None or end is None:
            return None
    else:
        return None
    return (start, end) if end > start else None


def _key(rule: str, account: str | None, window: str) -> str:
    return hashlib.sha256(f"{rule}\x1f{account or ''}\x1f{window}".encode()).hexdigest()


def _finding(
    rule: str,
    account: str | None,
    window: str,
    start: datetime,
    end: datetime,
    records: Iterable[AuditEntry],
    explanation: str,
) -> Finding:
    seqs = tuple(sorted({e.seq for e in records}))
    return Finding(rule, account, start, end, seqs, explanation[:500], _key(rule, account, window))


def _by_account(records: Iterable[AuditEntry]) -> dict[str, list[AuditEntry]]:
    grouped: dict[str, list[AuditEntry]] = defaultdict(list)
    for e in records:
        grouped[e.user_id].append(e)
    return grouped


def bursts(records: Sequence[AuditEntry], n: int, window: timedelta, ctx: Context) -> list[list[AuditEntry]]:
    """Runs of `records` (one account's, by time) where `n` or more fall within `window`, ending on a
    judged record; overlapping runs are one burst.

    >>> from lanterne.config.schema import ReviewSettings
    >>> t0 = datetime(2026, 5, 4, 10, tzinfo=UTC)
    >>> rec = lambda i, m: AuditEntry(i, t0 + timedelta(minutes=m), "u-1", Action.EXPORT,
    ...     None, None, None, None, None, None, {}, "", "")
    >>> ctx = Context(t0, t0 + timedelta(hours=1), ReviewSettings(), [])
    >>> [[e.seq for e in b] for b in bursts([rec(1, 0), rec(2, 1), rec(3, 2), rec(4, 30)], 3, timedelta(minutes=10), ctx)]
    [[1, 2, 3]]
    """
    found: list[tuple[int, int]] = []
    lo = 0
    for hi, e in enumerate(records):
        while e.ts - records[lo].ts > window:
            lo += 1
        if hi - lo + 1 < n or not ctx.judged(e):
            continue
        if found and lo <= found[-1][1] + 1:
            found[-1] = (found[-1][0], hi)
        else:
            found.append((lo, hi))
    return [list(records[a : b + 1]) for a, b in found]


def daily_limit(history: Sequence[int], floor: int, factor: float) -> tuple[int, str]:
    """How many views and exports in a day are still usual for an account whose previous days
    counted `history`, and why, in words a DPO can check by hand.

    The median of the account's *active* days (days it viewed anything), times `factor`, and never
    below `floor`. The median, not the mean: one exceptional day in the history (an incident
    everyone watched) does not raise the bar for the next four weeks, and the rule stays one
    sentence. Active days only: a part-time agent is compared with their working days, not with
    the days they were off.

    >>> daily_limit([0, 12, 10, 0, 14, 11, 90], floor=20, factor=3.0)
    (36, '3 × median 12 of 5 active days among the previous 7')
    >>> daily_limit([0, 40, 0], floor=50, factor=3.0)
    (50, 'the floor: 1 active day among the previous 3, too few to compare with')
    """
    active = [c for c in history if c > 0]
    if len(active) < MIN_ACTIVE_DAYS:
        days = "day" if len(active) == 1 else "days"
        return (
            floor,
            f"the floor: {len(active)} active {days} among the previous {len(history)}, too few to compare with",
        )
    median = statistics.median(active)
    limit = math.ceil(factor * median)
    if limit <= floor:
        return floor, f"the floor, above {factor:g} × median {median:g} of {len(active)} active days"
    return (
        limit,
        f"{factor:g} × median {median:g} of {len(active)} active days among the previous {len(history)}",
    )


# --- the rules -------------------------------------------------------------------------------


def flag_bulk_exports(ctx: Context) -> list[Finding]:
    """One account exporting `bulk_exports` times or more within `bulk_minutes`."""
    s = ctx.settings
    window = timedelta(minutes=s.bulk_minutes)
    exports = (e for e in ctx.records if e.action == Action.EXPORT and not refused(e))
    out = []
    for account, records in _by_account(exports).items():
        for burst in bursts(records, s.bulk_exports, window, ctx):
            first, last = burst[0].ts, burst[-1].ts
            out.append(
                _finding(
                    BULK_EXPORT,
                    account,
                    first.isoformat(),
                    first,
                    last,
                    burst,
                    f"{len(burst)} exports from {ctx.local(first, DAY_TIME)} to {ctx.local(last, '%H:%M %Z')}: "
                    f"{s.bulk_exports} or more within {s.bulk_minutes} min",
                )
            )
    return out


def flag_daily_volume(ctx: Context) -> list[Finding]:
    """One account's views and exports in a day above `daily_limit` of its previous days."""
    s = ctx.settings
    per_day: dict[tuple[str, date], list[AuditEntry]] = defaultdict(list)
    judged: set[tuple[str, date]] = set()
    for e in ctx.records:
        if is_footage(e):
            per_day[(e.user_id, ctx.day(e.ts))].append(e)
            if ctx.judged(e):
                judged.add((e.user_id, ctx.day(e.ts)))
    out = []
    for account, day in sorted(judged):
        records = per_day[(account, day)]
        history = [
            len(per_day.get((account, day - timedelta(days=k)), ())) for k in range(1, s.history_days + 1)
        ]
        limit, why = daily_limit(history, s.daily_floor, s.daily_factor)
        if len(records) <= limit:
            continue
        start, end = ctx.day_bounds(day)
        kinds = Counter(str(e.action) for e in records)
        detail = ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items()))
        out.append(
            _finding(
                DAILY_VOLUME,
                account,
                day.isoformat(),
                start,
                end,
                records,
                f"{len(records)} views and exports on {day.isoformat()} ({detail}), over {limit}: {why}",
            )
        )
    return out


def flag_wide_searches(ctx: Context) -> list[Finding]:
    """Event searches over the whole site, or more than `search_cameras` cameras (no camera filter:
    the account's scope), over `search_hours` or more (no range: unbounded)."""
    s = ctx.settings
    per_day: dict[tuple[str, date], list[tuple[AuditEntry, int | None, timedelta | None]]] = defaultdict(list)
    for e in ctx.records:
        if not (ctx.judged(e) and e.action == Action.SEARCH and e.object_type == "events") or refused(e):
            continue
        facts = ctx.accounts.get(e.user_id)
        cameras: int | None
        if isinstance(e.details.get("camera"), str):
            cameras = 1
        elif facts is None:
            continue  # not a console account: its scope is unknown
        else:
            cameras = None if "*" in facts.scope else len(facts.scope)
        if cameras is not None and cameras <= s.search_cameras:
            continue
        span = e.time_to - e.time_from if e.time_from and e.time_to else None
        if span is not None and span < timedelta(hours=s.search_hours):
            continue
        per_day[(e.user_id, ctx.day(e.ts))].append((e, cameras, span))
    out = []
    for (account, day), hits in sorted(per_day.items()):
        whole = any(c is None for _, c, _ in hits)
        what = "the whole site" if whole else f"up to {max(c or 0 for _, c, _ in hits)} cameras"
        spans = [sp for _, _, sp in hits]
        longest = (
            "no time limit" if None in spans else f"{max(sp for sp in spans if sp) / timedelta(hours=1):g} h"
        )
        start, end = ctx.day_bounds(day)
        out.append(
            _finding(
                WIDE_SEARCH,
                account,
                day.isoformat(),
                start,
                end,
                [e for e, _, _ in hits],
                f"{len(hits)} event searches over {what} on {day.isoformat()}, the longest over {longest} "
                f"(flagged: more than {s.search_cameras} cameras over {s.search_hours:g} h or more)",
            )
        )
    return out


def flag_repeated_refusals(ctx: Context) -> list[Finding]:
    """`refusals` refusals or more for one account (or `unknown`, failed logins to names that do not
    exist: the log records no network address) within `refusal_minutes`."""
    s = ctx.settings
    window = timedelta(minutes=s.refusal_minutes)
    out = []
    for account, records in _by_account(e for e in ctx.records if refused(e)).items():
        for burst in bursts(records, s.refusals, window, ctx):
            first, last = burst[0].ts, burst[-1].ts
            kinds = Counter(str(e.action) for e in burst)
            detail = ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items()))
            out.append(
                _finding(
                    REPEATED_REFUSALS,
                    account,
                    first.isoformat(),
                    first,
                    last,
                    burst,
                    f"{len(burst)} refusals from {ctx.local(first, DAY_TIME)} to {ctx.local(last, '%H:%M %Z')} ({detail}): "
                    f"{s.refusals} or more within {s.refusal_minutes} min",
                )
            )
    return out


def flag_privacy_left_open(ctx: Context) -> list[Finding]:
    """A `privacy_removed` with no `privacy_restored` for it `privacy_grace_minutes` later: judged
    when that deadline falls in the review's range, so each removal is judged once."""
    grace = timedelta(minutes=ctx.settings.privacy_grace_minutes)
    closed_seqs: set[int] = set()
    closed_uses: set[tuple[str, str | None, datetime | None]] = set()
    for e in ctx.records:
        if e.action == Action.PRIVACY_RESTORED:
            if isinstance(e.details.get("opened_by"), int):
                closed_seqs.add(e.details["opened_by"])
            closed_uses.add((e.user_id, e.object_id, e.time_from))
    out = []
    for e in ctx.records:
        if e.action != Action.PRIVACY_REMOVED or not ctx.since <= e.ts + grace < ctx.until:
            continue
        if e.seq in closed_seqs or (e.user_id, e.object_id, e.time_from) in closed_uses:
            continue
        out.append(
            _finding(
                PRIVACY_LEFT_OPEN,
                e.user_id,
                str(e.seq),
                e.ts,
                e.ts + grace,
                [e],
                f"privacy protection removed on camera {e.object_id} at {ctx.local(e.ts)} (record {e.seq}) "
                f"has no privacy_restored record {ctx.settings.privacy_grace_minutes} min later",
            )
        )
    return out


def _lapse(habs: Sequence[Habilitation], at: datetime) -> str:
    if not habs:
        return "none recorded"
    started = [h for h in habs if h.designated_on <= at]
    if not started:
        return f"it started on {min(h.designated_on for h in habs):%Y-%m-%d}"
    last = max(started, key=lambda h: h.ends())
    if last.revoked_at is not None and last.revoked_at < last.expires_at:
        return f"revoked on {last.revoked_at:%Y-%m-%d}"
    return f"expired on {last.expires_at:%Y-%m-%d}"


def flag_without_habilitation(ctx: Context) -> list[Finding]:
    """Footage viewed, exported or searched by a console account that held, at that moment, no
    habilitation (or none covering the camera the record names). The console checks this before
    serving pixels; a finding means a way around it (a command-line export under a console
    account's id, a search, which needs no habilitation to be served, or a bug)."""
    per_day: dict[tuple[str, date], list[tuple[AuditEntry, str]]] = defaultdict(list)
    for e in ctx.records:
        if not ctx.judged(e) or e.user_id not in ctx.accounts or not (is_footage(e) or is_camera_search(e)):
            continue
        habs = ctx.habilitations.get(e.user_id, ())
        valid = [h for h in habs if h.valid_at(e.ts)]
        camera = camera_of(e)
        if not valid:
            why = f"habilitation {_lapse(habs, e.ts)}"
        elif camera is not None and not any(h.covers(camera) for h in valid):
            why = f"camera {camera} outside the habilitation"
        else:
            continue
        per_day[(e.user_id, ctx.day(e.ts))].append((e, why))
    out = []
    for (account, day), hits in sorted(per_day.items()):
        whys = "; ".join(sorted({w for _, w in hits})[:3])
        start, end = ctx.day_bounds(day)
        out.append(
            _finding(
                NO_HABILITATION,
                account,
                day.isoformat(),
                start,
                end,
                [e for e, _ in hits],
                f"{len(hits)} views, exports or searches on {day.isoformat()} without a valid habilitation ({whys})",
            )
        )
    return out


def _inside(minute: int, window: tuple[int, int]) -> bool:
    start, end = window
    return start <= minute < end if start < end else (minute >= start or minute < end)


def flag_outside_shift(ctx: Context) -> list[Finding]:
    """Footage viewed or exported outside the working hours configured for the account's role
    (`shift_hours`, local time); a role without hours is never flagged."""
    hours = ctx.settings.shift_hours
    per_day: dict[tuple[str, date], list[AuditEntry]] = defaultdict(list)
    for e in ctx.records:
        facts = ctx.accounts.get(e.user_id)
        if facts is None or facts.role not in hours or not ctx.judged(e) or not is_footage(e):
            continue
        window = shift_window(hours[facts.role])  # type: ignore[index]
        local = e.ts.astimezone(ctx.zone)
        if window is None or _inside(local.hour * 60 + local.minute, window):
            continue
        per_day[(e.user_id, local.date())].append(e)
    out = []
    for (account, day), records in sorted(per_day.items()):
        role = ctx.accounts[account].role
        start, end = ctx.day_bounds(day)
        out.append(
            _finding(
                OUTSIDE_SHIFT,
                account,
                day.isoformat(),
                start,
                end,
                records,
                f"{len(records)} views or exports on {day.isoformat()} outside the {role}s' hours "
                f"{hours[role]}, from {ctx.local(records[0].ts, '%H:%M')} to {ctx.local(records[-1].ts, '%H:%M %Z')}",  # type: ignore[index]
            )
        )
    return out


def _replayed(
    views: Sequence[tuple[datetime, datetime, AuditEntry]], k: int
) -> list[tuple[datetime, datetime, list[AuditEntry]]]:
    """The stretches of recorded time that `k` or more distinct accounts each saw part of at once,
    with the views overlapping each; stretches that share a view are one."""
    marks: list[tuple[datetime, int, str]] = []
    for start, end, e in views:
        marks += [(start, 1, e.user_id), (end, -1, e.user_id)]
    marks.sort(key=lambda m: (m[0], m[1]))  # an end before a start at the same instant
    active: Counter[str] = Counter()
    spans: list[tuple[datetime, datetime]] = []
    opened: datetime | None = None
    for at, step, user in marks:
        active[user] += step
        if active[user] == 0:
            del active[user]
        if opened is None and len(active) >= k:
            opened = at
        elif opened is not None and len(active) < k:
            if at > opened:
                spans.append((opened, at))
            opened = None
    out: list[tuple[datetime, datetime, list[AuditEntry]]] = []
    for a, b in spans:
        seen = [e for start, end, e in views if start < b and end > a]
        if out and {e.seq for e in seen} & {e.seq for e in out[-1][2]}:
            prev = out[-1]
            merged = {e.seq: e for e in (*prev[2], *seen)}
            out[-1] = (prev[0], b, [merged[s] for s in sorted(merged)])
        else:
            out.append((a, b, seen))
    return out


def flag_replays(ctx: Context) -> list[Finding]:
    """One moment of one camera's recording viewed or exported by `replay_users` accounts or more
    within `replay_days` (LG-06: the same range replayed by many users)."""
    s = ctx.settings
    oldest = ctx.since - timedelta(days=s.replay_days)
    per_camera: dict[str, list[tuple[datetime, datetime, AuditEntry]]] = defaultdict(list)
    for e in ctx.records:
        if e.ts < oldest or not is_footage(e):
            continue
        shown, camera = recorded_range(e), camera_of(e)
        if shown is not None and camera is not None:
            per_camera[camera].append((*shown, e))
    out = []
    for camera, views in sorted(per_camera.items()):
        for a, b, seen in _replayed(views, s.replay_users):
            if not any(ctx.judged(e) for e in seen):
                continue
            users = sorted({e.user_id for e in seen})
            named = ", ".join(users[:6]) + (f" and {len(users) - 6} more" if len(users) > 6 else "")
            out.append(
                _finding(
                    REPLAYED_BY_MANY,
                    None,
                    f"{camera}\x1f{a.isoformat()}",
                    min(e.ts for e in seen),
                    max(e.ts for e in seen),
                    seen,
                    f"camera {camera}, recorded {ctx.local(a, DAY_TIME)} to {ctx.local(b, '%H:%M:%S %Z')}, viewed or exported "
                    f"by {len(users)} accounts ({named}) within {s.replay_days} days",
                )
            )
    return out


def reads_log(e: AuditEntry) -> bool:
    """A read of the audit log or of what its review drew from it (`LOG_READS`), or a request for
    the DPO's queue refused (its path is in the refusal's details)."""
    if e.action == Action.LOG_REVIEW and e.object_type in LOG_READS:
        return not refused(e)
    path = e.details.get("path")
    return refused(e) and isinstance(path, str) and path.startswith(LOG_PAGES)


def _read_kind(e: AuditEntry) -> str:
    return "refused" if refused(e) else LOG_READS.get(e.object_type or "", str(e.object_type))


def flag_log_access(ctx: Context) -> list[Finding]:
    """Access to the audit log itself (LG-06's last example), two ways:

    - every extract of the log handed out (`audit_export`), whoever made it: the only way records
      leave the system with their user ids, purposes and recipients, so the DPO sees each one (one
      finding per extract, the recipient and purpose in its record);
    - the log or its findings read by an account whose role is not the DPO's (`REVIEWER_ROLES`),
      or by a name that is no console account (a command run under an OS login), and requests for
      the DPO's queue refused to another role: one finding per account and local day. The hourly
      review itself (`system`) is not a reader.

    The DPO's own reads are not flagged, however many: reading the log is their job, the queue is
    refused to everyone else, and a count would be judged by the person it counts."""
    out = []
    reads: dict[tuple[str, date], list[AuditEntry]] = defaultdict(list)
    for e in ctx.records:
        if not ctx.judged(e) or e.user_id == SYSTEM:
            continue
        if e.action == Action.AUDIT_EXPORT and not refused(e):
            span = (
                f"{ctx.local(e.time_from, DAY_TIME)} to {ctx.local(e.time_to)}"
                if e.time_from and e.time_to
                else "an unstated range"
            )
            count = e.details.get("records")
            what = f"{count} records" if isinstance(count, int) else "records"
            out.append(
                _finding(
                    LOG_ACCESS,
                    e.user_id,
                    f"extract\x1f{e.seq}",
                    e.ts,
                    e.ts,
                    [e],
                    f"an extract of the audit log ({what}, {span}) handed out at {ctx.local(e.ts)}: "
                    f"its recipient and purpose are in record {e.seq}",
                )
            )
            continue
        if not reads_log(e):
            continue
        facts = ctx.accounts.get(e.user_id)
        if facts is not None and facts.role in REVIEWER_ROLES and not refused(e):
            continue
        reads[(e.user_id, ctx.day(e.ts))].append(e)
    for (account, day), records in sorted(reads.items()):
        facts = ctx.accounts.get(account)
        who = f"role {facts.role}" if facts is not None else "not a console account"
        kinds = Counter(_read_kind(e) for e in records)
        detail = ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items()))
        start, end = ctx.day_bounds(day)
        out.append(
            _finding(
                LOG_ACCESS,
                account,
                f"read\x1f{day.isoformat()}",
                start,
                end,
                records,
                f"{len(records)} accesses to the audit log or its findings on {day.isoformat()} by an account "
                f"that is not the DPO's ({who}): {detail}",
            )
        )
    return out


RULES: dict[str, Callable[[Context], list[Finding]]] = {
    BULK_EXPORT: flag_bulk_exports,
    DAILY_VOLUME: flag_daily_volume,
    WIDE_SEARCH: flag_wide_searches,
    REPEATED_REFUSALS: flag_repeated_refusals,
    PRIVACY_LEFT_OPEN: flag_privacy_left_open,
    NO_HABILITATION: flag_without_habilitation,
    OUTSIDE_SHIFT: flag_outside_shift,
    REPLAYED_BY_MANY: flag_replays,
    LOG_ACCESS: flag_log_access,
}


def judge(ctx: Context) -> list[Finding]:
    """Every rule over `ctx`: the findings, not yet stored."""
    return [f for rule in RULES.values() for f in rule(ctx)]


# --- reading what the rules need -------------------------------------------------------------


_ACTIONS: dict[str, Action] = {str(a): a for a in Action}
_READ = (
    _R.c.seq,
    _R.c.ts,
    _R.c.user_id,
    _R.c.action,
    _R.c.object_type,
    _R.c.object_id,
    _R.c.time_from,
    _R.c.time_to,
    _R.c.details,
)
"""What the rules read of a record. Never the purpose's text or the recipient: the review judges
who reached what and when, not why they said they did; nor the hashes, `lanterne audit verify`'s."""


def _entry(row: Any) -> AuditEntry:
    seq, ts, user_id, action, object_type, object_id, time_from, time_to, text = row
    try:
        details = json.loads(text)
    except ValueError:
        details = {}
    # A forged or future action stays as stored: no rule matches it, verification judges it.
    return AuditEntry(
        seq,
        ts,
        user_id,
        _ACTIONS.get(action, action),
        object_type,
        object_id,
        time_from,
        time_to,
        None,
        None,
        details if isinstance(details, dict) else {},
        "",
        "",
    )


def reach(settings: ReviewSettings, since: datetime) -> tuple[datetime, datetime]:
    """How far before `since` the rules read: every record from the first time, footage accesses
    only from the second (see `Context`)."""
    zone = ZoneInfo(settings.time_zone)
    day_start = datetime.combine(since.astimezone(zone).date(), time(), zone).astimezone(UTC)
    short = max(settings.bulk_minutes, settings.refusal_minutes, settings.privacy_grace_minutes)
    every = min(since - timedelta(minutes=short), day_start)
    footage = min(
        every, day_start - timedelta(days=settings.history_days), since - timedelta(days=settings.replay_days)
    )
    return every, footage


def gather(
    store: Store, audit: AuditLog, settings: ReviewSettings, since: datetime, until: datetime
) -> Context:
    """The records and account facts a review of `[since, until)` needs, read in one go."""
    every, footage = reach(settings, since)
    recent = select(*_READ).where(_R.c.ts >= every, _R.c.ts < until)
    older = select(*_READ).where(
        _R.c.ts >= footage, _R.c.ts < every, _R.c.action.in_(sorted(str(a) for a in FOOTAGE))
    )
    try:
        with audit.engine.connect() as conn:
            rows = [
                *conn.execute(older.order_by(_R.c.seq)).all(),
                *conn.execute(recent.order_by(_R.c.seq)).all(),
            ]
        with store.engine.connect() as conn:
            accounts = {
                r.id: AccountFacts(r.role, tuple(r.scope))
                for r in conn.execute(select(_A.c.id, _A.c.role, _A.c.scope))
            }
    except SQLAlchemyError as exc:
        raise describe_failure(audit.engine, exc) from None
    habs: dict[str, list[Habilitation]] = defaultdict(list)
    for h in habilitations(store.engine):
        habs[h.user_id].append(h)
    records = sorted(map(_entry, rows), key=lambda e: e.seq)
    return Context(since, until, settings, records, accounts, dict(habs))


# --- storing findings ------------------------------------------------------------------------


def _stored(r: Any) -> Finding:
    return Finding(
        rule=r.rule,
        account=r.account,
        window_start=r.window_start,
        window_end=r.window_end,
        evidence=tuple(r.evidence),
        explanation=r.explanation,
        key=r.dedupe_key,
        id=r.id,
        state=r.state,
        note=r.note,
        created_at=r.created_at,
        updated_at=r.updated_at,
        decided_at=r.decided_at,
        decided_by=r.decided_by,
    )


def _same(conn: Connection, f: Finding) -> Any:
    """The stored finding `f` is: the one with its key, else one of the same rule and account
    whose window overlaps and that shares a record with it (a burst seen again from another
    hour's review, with a different first record)."""
    row = conn.execute(select(_F).where(_F.c.dedupe_key == f.key)).first()
    if row is not None:
        return row
    account = _F.c.account.is_(None) if f.account is None else _F.c.account == f.account
    near = conn.execute(
        select(_F)
        .where(
            _F.c.rule == f.rule, account, _F.c.window_start <= f.window_end, _F.c.window_end >= f.window_start
        )
        .order_by(_F.c.id)
    )
    mine = set(f.evidence)
    return next((r for r in near if mine & set(r.evidence)), None)


def _merge(conn: Connection, row: Any, f: Finding, now: datetime) -> bool:
    """Add `f`'s records to the stored finding; False when it had them all already. A closed
    finding that gains records is open again; an acknowledged one stays with the DPO."""
    old = set(row.evidence)
    if set(f.evidence) <= old:
        return False
    explanation = (
        f.explanation if old <= set(f.evidence) else f"{row.explanation}; then {f.explanation}"[:500]
    )
    conn.execute(
        update(_F)
        .where(_F.c.id == row.id)
        .values(
            evidence=sorted(old | set(f.evidence)),
            window_start=min(row.window_start, f.window_start),
            window_end=max(row.window_end, f.window_end),
            explanation=explanation,
            state="open" if row.state == "closed" else row.state,
            updated_at=now,
        )
    )
    return True


def _store_one(engine: Engine, f: Finding, now: datetime) -> tuple[int, bool]:
    """(id, whether it is new); a concurrent review that stored the same key first wins the
    insert, and this one's records are merged into its finding."""
    for _attempt in range(2):
        try:
            with engine.begin() as conn:
                row = _same(conn, f)
                if row is not None:
                    _merge(conn, row, f, now)
                    return int(row.id), False
                new_id = conn.execute(
                    insert(_F)
                    .values(
                        dedupe_key=f.key,
                        rule=f.rule,
                        account=f.account,
                        window_start=f.window_start,
                        window_end=f.window_end,
                        evidence=list(f.evidence),
                        explanation=f.explanation,
                        state="open",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(_F.c.id)
                ).scalar_one()
                return int(new_id), True
        except IntegrityError:
            continue
    raise ReviewError(f"finding {f.key[:12]} could not be stored; run the review again")


def record_findings(engine: Engine, found: Iterable[Finding], now: datetime) -> tuple[list[Finding], int]:
    """Store each finding once (see the module's docstring) and return them as stored, each once,
    with how many are new."""
    ids: dict[int, None] = {}
    new = 0
    try:
        for f in found:
            fid, created = _store_one(engine, f, now)
            ids[fid] = None
            new += created
        if not ids:
            return [], 0
        with engine.connect() as conn:
            rows = {r.id: _stored(r) for r in conn.execute(select(_F).where(_F.c.id.in_(list(ids))))}
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    return [rows[i] for i in ids], new


# --- running it ------------------------------------------------------------------------------


def review(
    store: Store,
    audit: AuditLog,
    settings: ReviewSettings,
    since: datetime,
    until: datetime,
    *,
    by: str = SYSTEM,
    now: datetime | None = None,
) -> list[Finding]:
    """Review the audit records of `[since, until)`: every rule, each finding stored once, and
    the run recorded (`log_review`, by `by`) with the counts. Returns the findings this run raised
    or found again, as stored (their state included)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ReviewError("give the review's range as timezone-aware times (e.g. datetime.now(UTC))")
    if not since < until:
        raise ReviewError("the review's start must be before its end; check --since and --until")
    ctx = gather(store, audit, settings, since, until)
    stored, new = record_findings(store.engine, judge(ctx), now or audit.clock())
    read = sum(1 for e in ctx.records if ctx.judged(e))
    per_rule = Counter(f.rule for f in stored)
    audit.append(
        by,
        Action.LOG_REVIEW,
        object_type="audit_log",
        time_from=since,
        time_to=until,
        details={
            "step": "run",
            "records": read,
            "findings": len(stored),
            "new": new,
            "rules": dict(per_rule),
        },
    )
    log.info("log review: %d records, %d findings (%d new)", read, len(stored), new)
    return stored


def last_run_end(audit: AuditLog) -> datetime | None:
    """Where the last hourly review stopped: the end of its range, from its record."""
    stmt = (
        select(_R.c.time_to)
        .where(_R.c.action == str(Action.LOG_REVIEW), _R.c.user_id == SYSTEM, _R.c.object_type == "audit_log")
        .order_by(_R.c.seq.desc())
        .limit(1)
    )
    try:
        with audit.engine.connect() as conn:
            found: datetime | None = conn.execute(stmt).scalar()
    except SQLAlchemyError as exc:
        raise describe_failure(audit.engine, exc) from None
    return found


class HourlyReview:
    """The minutely chore that reviews each full hour once it is over (`lanterne.runtime.runner.
    site_retention` adds it). At each hour's turn it reviews from where the last hourly review
    stopped (at most `CATCH_UP` back; the hour before on a new site) to the turn, so an hour the
    process was down for is reviewed when it comes back. Between turns a call costs a comparison.
    A failed review raises (the runner logs it) and is tried again the next minute."""

    def __init__(self, store: Store, audit: AuditLog, settings: ReviewSettings) -> None:
        self.store, self.audit, self.settings = store, audit, settings
        self._next: datetime | None = None

    def __call__(self, now: datetime) -> list[Finding]:
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if self._next is None:
            self._next = hour + timedelta(hours=1)  # the first turn after start; see the class doc
            return []
        if now < self._next:
            return []
        last = last_run_end(self.audit)
        start = max(last if last is not None else hour - timedelta(hours=1), hour - CATCH_UP)
        found = review(self.store, self.audit, self.settings, start, hour) if start < hour else []
        self._next = hour + timedelta(hours=1)
        return found


# --- the DPO's queue -------------------------------------------------------------------------


def findings(engine: Engine, *, state: str | None = None, limit: int = 500) -> list[Finding]:
    """Stored findings, newest first (of `state` when given)."""
    if state is not None and state not in FINDING_STATES:
        raise ReviewError(f"unknown state {state!r}; choose one of {', '.join(FINDING_STATES)}")
    stmt = select(_F).order_by(_F.c.created_at.desc(), _F.c.id.desc()).limit(limit)
    if state is not None:
        stmt = stmt.where(_F.c.state == state)
    try:
        with engine.connect() as conn:
            return [_stored(r) for r in conn.execute(stmt)]
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None


def finding_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Stored findings per (rule, state), every one counted: the oversight page's summary of the
    review, which names no account (the queue does, for the DPO)."""
    stmt = select(_F.c.rule, _F.c.state, func.count()).group_by(_F.c.rule, _F.c.state)
    try:
        with engine.connect() as conn:
            return {(str(r[0]), str(r[1])): int(r[2]) for r in conn.execute(stmt)}
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None


def finding(engine: Engine, finding_id: int) -> Finding:
    with engine.connect() as conn:
        row = conn.execute(select(_F).where(_F.c.id == finding_id)).first()
    if row is None:
        raise FindingNotFound(f"no finding {finding_id}; see the review queue")
    return _stored(row)


_NEXT: dict[str, tuple[str, ...]] = {
    "open": ("acknowledged", "closed"),
    "acknowledged": ("closed",),
    "closed": (),
}


def decide(
    engine: Engine, audit: AuditLog, finding_id: int, *, state: str, note: str | None, by: str, now: datetime
) -> Finding:
    """The DPO acknowledges a finding (looking into it) or closes it, with a note (required to
    close: what was found, what was done). Recorded before the row moves, the note as purpose, so
    no decision goes unrecorded; the record names the finding, its rule and account."""
    text = (note or "").strip() or None
    if state not in ("acknowledged", "closed"):
        raise ReviewError(f"a finding is acknowledged or closed, not {state!r}")
    if state == "closed" and text is None:
        raise ReviewError("closing a finding needs a note: what you found and what was done")
    if text is not None and len(text) > NOTE_MAX:
        raise ReviewError(f"the note is {len(text)} characters long; shorten it to {NOTE_MAX}")
    f = finding(engine, finding_id)
    if state not in _NEXT[f.state]:
        raise FindingConflict(f"finding {finding_id} is {f.state}; it cannot be {state} now")
    audit.append(
        by,
        Action.LOG_REVIEW,
        object_type="review_finding",
        object_id=str(finding_id),
        purpose=text,
        details={"step": state, "previous": f.state, "rule": f.rule, "account": f.account},
    )
    values: dict[str, object] = {"state": state, "decided_at": now, "decided_by": by}
    if text is not None:
        values["note"] = text
    with engine.begin() as conn:
        done = conn.execute(
            update(_F).where(_F.c.id == finding_id, _F.c.state == f.state).values(**values)
        ).rowcount
    if not done:
        raise FindingConflict(f"finding {finding_id} changed meanwhile; reload the queue")
    return finding(engine, finding_id)
