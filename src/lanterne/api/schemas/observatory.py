"""The observatory's query parameters, export request and answers.

Query models forbid extra fields: an unknown parameter is refused (422) rather than ignored, so a
client believing it filtered learns at once that it did not (`lanterne.api.deps` words the
refusal). Values are checked against patterns and ranges here, before any query; SQL only ever
receives them as bound parameters.

The answers describe exactly what the console has always received: the same keys in the same
order, null where a count is suppressed or a figure undefined (a NaN trend at the edges, a rate
over zero exposure), never a key left out.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lanterne.api.deps import MaybePurpose
from lanterne.observatory.aggregate import Grain
from lanterne.observatory.store import Channel

ID_PATTERN = r"^[a-z0-9_]{1,64}$"
LEVEL_PATTERN = r"^(h3:[0-9]{1,2}|layer:[a-z0-9_]{1,32})$"
AREA_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
MEASURE_PATTERN = r"^[a-z0-9_]{1,64}:[A-Za-z0-9_.-]{1,64}$"
MAX_CATEGORY = 200
ROWS_LIMIT = 1000

ProfileBy = Literal["hour", "dow", "month"]
DatasetId = Annotated[str, Field(pattern=ID_PATTERN, description="Dataset id.")]
Level = Annotated[str, Field(pattern=LEVEL_PATTERN, description="h3:5..h3:9 or layer:<id>.")]
CategoryName = Annotated[str, Field(max_length=MAX_CATEGORY)]


def _finite(value: float | None) -> float | None:
    # The GeoJSON answer is rendered by Python's json module, which refuses NaN: undefined figures
    # become null here, as the JSON answers' serializer does by itself.
    return value if value is None or math.isfinite(value) else None


Figure = Annotated[float | None, AfterValidator(_finite)]
"""A figure that may be undefined (null)."""
Figures = list[Figure]


# --- query parameters ------------------------------------------------------------------------


class StrictQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoQuery(StrictQuery):
    """A route that takes no parameter: any parameter is unknown."""


class DatasetQuery(StrictQuery):
    dataset: DatasetId


class FilterQuery(DatasetQuery):
    """The filters every view of incidents takes: category, channel and a time window, in the
    dataset's own wall clock."""

    category: CategoryName | None = Field(None, description="One category.")
    channel: list[Channel] | None = Field(None, description="Reporting channel(s); repeat.")
    from_: datetime | None = Field(None, alias="from", description="At or after (local time).")
    to: datetime | None = Field(None, description="Before (local time).")


class SeriesQuery(FilterQuery):
    """A time series, of the whole dataset or of one area (give both `area_level` and
    `area_key`, or neither)."""

    grain: Grain = Grain.WEEK
    area_level: Level | None = None
    area_key: Annotated[str, Field(pattern=AREA_KEY_PATTERN)] | None = None


class MapQuery(FilterQuery):
    level: Level = "h3:8"
    exposure: Annotated[str, Field(pattern=MEASURE_PATTERN)] | None = Field(
        None, description="DATASET:VARIABLE of a measures dataset: rates per 1,000."
    )


class ProfileQuery(FilterQuery):
    by: ProfileBy


class AnomaliesQuery(SeriesQuery):
    threshold: float = Field(3.5, ge=2.0, le=10.0)


class CrossQuery(SeriesQuery):
    measure: list[str] = Field(description="dataset:variable of a measures dataset; repeat.")


class AuditQuery(DatasetQuery):
    level: Level = "h3:8"


class HotspotsQuery(FilterQuery):
    category: CategoryName = Field(description="The category ranked.")
    level: Level = "h3:8"
    top: int = Field(10, ge=1, le=50)
    include_discovered: bool = Field(
        False,
        description="Rank a category that is mostly police-initiated anyway (refused by default: "
        "its ranking maps where police looked).",
    )


class RowsQuery(FilterQuery):
    purpose: MaybePurpose = Field(None, description="Why you read individual rows (recorded).")
    limit: int = Field(100, ge=1, le=ROWS_LIMIT)


class ExportRequest(BaseModel):
    """What a report covers and why it leaves the system. Unknown fields are refused, like unknown
    query parameters."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetId
    category: CategoryName | None = None
    from_: datetime | None = Field(None, alias="from")
    to: datetime | None = None
    level: Level | None = None
    area_level: Level | None = None
    area_key: Annotated[str, Field(pattern=AREA_KEY_PATTERN)] | None = None
    format: Literal["html", "pdf"] = "html"
    purpose: MaybePurpose = Field(..., description="Why the report leaves the system (recorded).")
    recipient: str = Field(..., max_length=256)


# --- answers ---------------------------------------------------------------------------------


class LayerOut(BaseModel):
    id: str
    label: str


class DatasetOut(BaseModel):
    """A dataset's provenance and what it can be viewed by."""

    id: str
    title: str
    kind: str
    origin: str
    licence: str
    source_file: str
    """The file's name only: the server's directories are nobody's business."""
    sha256: str
    mapping_sha256: str
    time_zone: str
    time_precision: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    ingested_at: datetime
    ingested_by: str
    first: datetime | None
    last: datetime | None
    located: bool
    area_layers: list[str]
    channels: list[str]
    variables: list[str]


class DatasetsOut(BaseModel):
    datasets: list[DatasetOut]
    layers: list[LayerOut]
    resolutions: list[int]
    k: int
    analyst: bool
    caveat: str
    export: bool


class CategoryCount(BaseModel):
    name: str
    count: int | None
    suppressed: bool


class CategoriesOut(BaseModel):
    dataset: str
    k: int
    analyst: bool
    categories: list[CategoryCount]


class AreaProperties(BaseModel):
    key: str
    label: str
    count: int | None
    interval: list[float] | None
    """The count's 95 % Poisson interval (OB-07); null with the count."""
    suppressed: bool
    rate: Figure
    rate_interval: list[float] | None


class AreaFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any]
    """A hexagon's Polygon, or the layer file's own geometry for an area."""
    properties: AreaProperties


class AreaMapOut(BaseModel):
    """A GeoJSON FeatureCollection with the map's figures beside its features."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[AreaFeature]
    level: str
    k: int
    total: int | None
    suppressed_cells: int
    unlocated: int | None
    analyst: bool
    caveat: str
    rate_per: float | None
    filters: dict[str, str | list[str]]
    """The filters as recorded in the audit log."""


class PointOut(BaseModel):
    start: datetime
    count: int | None
    suppressed: bool


class DecompositionOut(BaseModel):
    trend: Figures
    weekly: Figures
    yearly: Figures
    yearly_profile: Figures
    weekly_profile: Figures
    notes: list[str]


class SeriesOut(BaseModel):
    grain: Grain
    k: int
    analyst: bool
    points: list[PointOut]
    intervals: list[list[float] | None]
    """OB-07: each shown count's 95 % Poisson interval (none for a suppressed one)."""
    decomposition: DecompositionOut | None
    note: str | None
    caveat: str


class ProfileBin(BaseModel):
    key: int
    count: int | None
    suppressed: bool


class ProfileOut(BaseModel):
    by: ProfileBy
    k: int
    analyst: bool
    bins: list[ProfileBin]
    time_precision: str
    """An hour-of-day profile of day-precision data has one bar at midnight: the page says so
    instead of drawing it."""


class AnomalyOut(BaseModel):
    start: datetime
    observed: int
    expected: float
    ratio: float
    score: float
    text: str


class AnomaliesOut(BaseModel):
    grain: Grain
    k: int
    analyst: bool
    anomalies: list[AnomalyOut]
    withheld: int
    """Unusual periods whose count is hidden for this role: counted, not shown."""
    notes: list[str]
    caveat: str


class MeasureOut(BaseModel):
    dataset: str
    variable: str
    aggregation: Literal["sum", "mean"]
    values: Figures
    correlation: Figure
    periods: int


class CrossSourceOut(BaseModel):
    grain: Grain
    starts: list[datetime]
    incidents: list[int | None]
    measures: list[MeasureOut]
    caveat: str
    notes: list[str]


class CrossOut(BaseModel):
    grain: Grain
    k: int
    analyst: bool
    cross: CrossSourceOut
    caveat: str


class CategoryAuditOut(BaseModel):
    category: str
    total: int
    channel_shares: dict[str, float]
    discovered: bool
    gini: float
    top10_share: float
    persistence: Figure
    areas: int
    areas_with_records: int
    unlocated: int


class AreaChannelMixOut(BaseModel):
    key: str
    label: str | None
    total: int | None
    channel_shares: dict[str, Figure] | None
    suppressed: bool


class YearCoverageOut(BaseModel):
    year: int
    records: int
    located_share: float
    coded_share: float
    channel_shares: dict[str, float]


class CategoryOverlapOut(BaseModel):
    discovered: str
    reported: str
    jaccard: float


class DatasetAuditOut(BaseModel):
    dataset: str
    level: str
    k: int
    analyst: bool
    categories: list[CategoryAuditOut]
    suppressed_categories: int
    areas: int
    channel_mix: list[AreaChannelMixOut]
    suppressed_areas: int
    coverage: list[YearCoverageOut]
    drift_notes: list[str]
    overlaps: list[CategoryOverlapOut]
    discovered_vs_reported: Figure
    caveat: str


class AuditOut(BaseModel):
    analyst: bool
    k: int
    audit: DatasetAuditOut


class RankedAreaOut(BaseModel):
    rank: int
    key: str
    label: str | None
    count: int


class FeedbackOut(BaseModel):
    """A feedback-loop simulation in the figures the panel shows."""

    rounds: int
    top: int
    update: str
    discovered_share: float
    true_top_share: float
    final_record_top_share: float
    final_patrol_on_true_top: float
    final_estimate_gap: float
    record_top_share: Figures
    """Sampled weekly: enough for a sparkline, a tenth of the bytes."""


class HotspotsBody(BaseModel):
    dataset: str
    category: str
    level: str
    k: int
    analyst: bool
    ranking: list[RankedAreaOut]
    excluded_below_k: int
    audit: CategoryAuditOut
    naive: FeedbackOut
    mitigated: FeedbackOut
    runaway: bool
    feedback_text: str
    """The simulation's result in words: a number on its own would let the ranking be read
    without its consequence (OB-05)."""
    warning: str | None
    caveat: str


class HotspotsOut(BaseModel):
    analyst: bool
    k: int
    hotspots: HotspotsBody
    caveat: str


class RowOut(BaseModel):
    ts: datetime
    category: str
    channel: str
    h3: str | None
    area_layer: str | None
    area_code: str | None
    n: int


class RowsOut(BaseModel):
    dataset: str
    total: int
    limit: int
    rows: list[RowOut]
