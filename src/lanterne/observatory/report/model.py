"""What a report is: the figures it publishes, computed once by `build` and drawn twice, by
`html` and `pdf`, so the two formats cannot disagree.

A report leaves the system, so everything here is already a publication (OB-08): a count is None
where it is suppressed, and the caveat is part of the report, not of its rendering (OB-07).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lanterne.observatory.aggregate import AreaRef, Grain
from lanterne.observatory.bias import CategoryAudit
from lanterne.observatory.timeseries import Anomaly

CAVEAT = (
    "Recorded incidents measure what was reported to and recorded by the police and the city, and "
    "where officers, cameras and patrols were looking: they are not the true rate of crime or "
    "nuisance. Categories that police activity produces (drug offences, weapons, prostitution) map "
    "enforcement, not offending. Compare areas only with the bias audit below, and never use these "
    "counts to judge a person."
)
"""OB-07: on the first page of every report, above the map, in the reader's way rather than in a footnote."""


@dataclass(frozen=True)
class MapArea:
    """One polygon of the map: a boundary area or an H3 cell, with its published count."""

    key: str
    label: str
    count: int | None
    """None when suppressed."""
    suppressed: bool
    rings: tuple[tuple[tuple[float, float], ...], ...]
    """Outer rings as (lon, lat); holes are left out, a choropleth does not need them."""

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.count is None else poisson_interval(self.count)


@dataclass(frozen=True)
class ReportMap:
    level: str
    areas: tuple[MapArea, ...]
    total: int | None
    """The published total of the map (None when it would reveal a suppressed cell)."""
    suppressed_cells: int
    unlocated: int | None
    """Rows without a place on this map; None when hidden or when the map is part of a larger one."""
    breaks: tuple[int, ...]
    """Lower bounds of the colour classes (the first is k)."""


@dataclass(frozen=True)
class ReportSeries:
    grain: Grain
    starts: tuple[datetime, ...]
    counts: tuple[int | None, ...]
    trend: tuple[float | None, ...]
    note: str | None = None


@dataclass(frozen=True)
class Profile:
    title: str
    labels: tuple[str, ...]
    counts: tuple[int | None, ...]


@dataclass(frozen=True)
class Report:
    """Everything a report shows, computed once and rendered twice (HTML, PDF)."""

    title: str
    subtitle: str
    generated_at: datetime
    dataset: str
    dataset_title: str
    category: str | None
    area: AreaRef | None
    area_label: str
    period: tuple[datetime, datetime]
    k: int
    caveat: str
    provenance: tuple[tuple[str, str], ...]
    map: ReportMap
    monthly: ReportSeries
    weekly: ReportSeries
    profiles: tuple[Profile, ...]
    anomalies: tuple[Anomaly, ...]
    audit_rows: tuple[CategoryAudit, ...]
    audit_notes: tuple[str, ...]
    ranking: tuple[tuple[str, int], ...]
    ranking_notes: tuple[str, ...]
    suppressed: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    lanterne_version: str
    inputs_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)


def poisson_interval(n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % interval of a Poisson count (Wilson-Hilferty approximation of Garwood's exact interval,
    within 1 % of it from n = 1): the uncertainty OB-07 asks to show beside every count."""
    if n <= 0:
        return 0.0, 3.689
    lower = n * (1 - 1 / (9 * n) - z / (3 * math.sqrt(n))) ** 3
    m = n + 1
    upper = m * (1 - 1 / (9 * m) + z / (3 * math.sqrt(m))) ** 3
    return max(lower, 0.0), upper
