"""Mapping files: how the columns of one published table become observatory rows.

A mapping is the only place where a source's quirks live (semicolons, decimal commas, a year
written `16`, an hour written `6:00-6:59`, a point serialised as a Python dict), so that `ingest`
can stay one generic, vectorised pass. The schema is strict: an unknown key is an error, because a
misspelt `channel` would otherwise silently label police stops as citizen reports (OB-04).
Only the columns named here are ever read; everything else in the source stays out of the store.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lanterne.config.loader import format_validation_error, read_yaml
from lanterne.observatory.store import Channel, ObservatoryError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Kind(StrEnum):
    INCIDENTS = "incidents"
    MEASURES = "measures"


class FileFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    GEOJSON = "geojson"


class Precision(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


def _text_keys(v: Any) -> Any:
    """YAML reads `true:` and `1:` as a boolean and an integer; source values are compared as text."""
    if isinstance(v, dict):
        return {(str(k).lower() if isinstance(k, bool) else str(k)): val for k, val in v.items()}
    return v


class CsvOptions(_Strict):
    delimiter: str = Field(
        ",",
        min_length=1,
        max_length=1,
        title="Delimiter",
        description="Field separator, one character (`;` for most French open data, `\\t` for TSV).",
    )
    decimal: str = Field(
        ".",
        pattern=r"^[.,]$",
        title="Decimal separator",
        description="`.` or `,`; with `,` the numbers `2,25` are read as 2.25.",
    )
    encoding: str = Field(
        "utf-8",
        pattern=r"^(utf-8|utf-16|latin-1)$",
        title="Encoding",
        description="`utf-8` (a byte-order mark is skipped), `utf-16` or `latin-1`.",
    )
    header: bool = Field(
        True, title="Header row", description="Whether the first row holds the column names."
    )
    columns: list[str] | None = Field(
        None,
        title="Column names",
        description="Names to give the columns when the file has no header row.",
    )

    @model_validator(mode="after")
    def _names_without_header(self) -> CsvOptions:
        if not self.header and not self.columns:
            raise ValueError("a file without a header row needs `columns` (the names, in order)")
        return self


class TimeSpec(_Strict):
    column: str | None = Field(
        None,
        title="Time column",
        description="Column with a date or date and time. Native timestamps and ISO 8601 text are read as they are; text with an offset (`+01:00`, `Z`) is converted to `time_zone`.",
    )
    format: str | None = Field(
        None,
        title="strptime format",
        description="Format of the text in `column` (or `date_column`), e.g. `%d/%m/%Y %H:%M`. `%z` reads an offset, which is converted to `time_zone`.",
    )
    year_column: str | None = Field(
        None,
        title="Year column",
        description="For yearly tables: the column with the year (then `precision` must be `year`).",
    )
    year_offset: int = Field(
        0,
        ge=0,
        le=3000,
        title="Year offset",
        description="Added to `year_column`, for years written with two digits (SSMSI `annee` 16 → 2016 with 2000).",
    )
    date_column: str | None = Field(
        None,
        title="Date column",
        description="Column with the date when the hour is in another column (`hour_column`).",
    )
    hour_column: str | None = Field(
        None,
        title="Hour column",
        description="Column with the hour: a number 0-23 or text starting with it (`6:00-6:59` → 6).",
    )
    day_starts_at: int = Field(
        0,
        ge=0,
        le=23,
        title="Counting day starts at",
        description="With `hour_column`: the hour the source's day starts. Hours before it belong to the next calendar day (Auckland's counting day runs 6:00 → 5:59, so `2019-12-31` `0:00-0:59` is New Year's midnight).",
    )
    time_zone: str = Field(
        ...,
        title="Time zone",
        description="IANA zone of the wall-clock times stored (e.g. `Europe/Paris`, `America/Chicago`).",
    )
    precision: Precision = Field(
        ...,
        title="Precision",
        description="What the source really records: `minute`, `hour`, `day`, `month` or `year`. Times are truncated to it.",
    )

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Europe/Paris") from None
        return v

    @model_validator(mode="after")
    def _one_source(self) -> TimeSpec:
        modes = [m for m in ("column", "year_column", "date_column") if getattr(self, m)]
        if len(modes) != 1:
            raise ValueError(
                "give exactly one of `column`, `year_column` or `date_column` (with `hour_column`)"
            )
        if self.hour_column and not self.date_column:
            raise ValueError("`hour_column` goes with `date_column`")
        if self.day_starts_at and not self.hour_column:
            raise ValueError("`day_starts_at` goes with `hour_column`")
        if self.year_column and self.precision is not Precision.YEAR:
            raise ValueError("a `year_column` only gives the year: set `precision: year`")
        if self.year_column and self.format:
            raise ValueError("`format` does not apply to `year_column`")
        return self


class AreaSpec(_Strict):
    column: str = Field(
        ..., title="Area code column", description="Column with the area code (beat, INSEE code…)."
    )
    layer: str = Field(
        ...,
        pattern=r"^[a-z0-9_]{1,32}$",
        title="Layer id",
        description="Id of the boundary layer (`observatory.layers` of the site config) whose codes these are.",
    )
    pad: int | None = Field(
        None,
        ge=1,
        le=12,
        title="Zero-pad to width",
        description="Left-pad the code with zeros to this many characters (`1` → `01` with 2).",
    )
    prefix: str = Field(
        "",
        max_length=12,
        title="Prefix",
        description="Text put before the (padded) code, e.g. `751` turns Paris arrondissement `9` (pad 2) into INSEE `75109`.",
    )
    required: bool = Field(
        True,
        title="Required",
        description="Refuse a row without an area code (otherwise it is kept, without an area).",
    )


class LocationSpec(_Strict):
    lat: str | None = Field(None, title="Latitude column", description="WGS84 latitude in degrees.")
    lon: str | None = Field(None, title="Longitude column", description="WGS84 longitude in degrees.")
    wkt: str | None = Field(None, title="WKT column", description="Column with `POINT (lon lat)` text.")
    point_text: str | None = Field(
        None,
        title="Point text column",
        description="Column with text holding `lat` and `lon` keys, JSON or a Python dict (`{'lon': 2.33, 'lat': 48.88}`).",
    )
    geometry: bool = Field(
        False,
        title="GeoJSON geometry",
        description="For a `.geojson` file: take each feature's Point geometry.",
    )
    area: AreaSpec | None = Field(
        None, title="Area code", description="Area code column and its boundary layer."
    )

    @model_validator(mode="after")
    def _one_point(self) -> LocationSpec:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("`lat` and `lon` go together")
        modes = [self.lat is not None, self.wkt is not None, self.point_text is not None, self.geometry]
        if sum(modes) > 1:
            raise ValueError("give one of `lat`/`lon`, `wkt`, `point_text` or `geometry`")
        if sum(modes) == 0 and self.area is None:
            raise ValueError("give coordinates (`lat`/`lon`, `wkt`, `point_text`, `geometry`) or an `area`")
        return self

    @property
    def has_point(self) -> bool:
        return self.lat is not None or self.wkt is not None or self.point_text is not None or self.geometry


class CategorySpec(_Strict):
    column: str | None = Field(None, title="Category column", description="Column with the category.")
    value: str | None = Field(
        None, min_length=1, title="Constant category", description="One category for every row."
    )
    rename: dict[str, str] = Field(
        default_factory=dict,
        title="Rename",
        description="Source value → category shown; values not listed are kept as they are.",
    )

    _keys = field_validator("rename", mode="before")(_text_keys)

    @model_validator(mode="after")
    def _one(self) -> CategorySpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of `column` or `value`")
        return self


class ChannelSpec(_Strict):
    value: Channel | None = Field(
        None,
        title="Constant channel",
        description="One channel for every row: `citizen_report`, `police_initiated`, `sensor` or `operator`.",
    )
    column: str | None = Field(
        None, title="Channel column", description="Column whose values say who produced the record."
    )
    values: dict[str, Channel] = Field(
        default_factory=dict,
        title="Value → channel",
        description="For `column`: each source value and its channel (`true: police_initiated`). Compared as lower-case text.",
    )
    by_category: dict[str, Channel] = Field(
        default_factory=dict,
        title="Category → channel",
        description="Channel per category (after `rename`), for tables where the category says who found it.",
    )
    default: Channel | None = Field(
        None,
        title="Default channel",
        description="With `by_category`: the channel of categories not listed. Without it, such rows are refused.",
    )

    _keys = field_validator("values", "by_category", mode="before")(_text_keys)

    @model_validator(mode="after")
    def _one(self) -> ChannelSpec:
        modes = [self.value is not None, self.column is not None, bool(self.by_category)]
        if sum(modes) != 1:
            raise ValueError("give exactly one of `value`, `column` (with `values`) or `by_category`")
        if self.column is not None and not self.values:
            raise ValueError("`column` needs `values` (source value → channel)")
        if self.default is not None and not self.by_category:
            raise ValueError("`default` goes with `by_category`")
        return self


class FilterSpec(_Strict):
    column: str = Field(..., title="Column", description="Column compared.")
    values: list[str] = Field(
        ...,
        min_length=1,
        title="Kept values",
        description="Rows whose value (as text) is one of these are read.",
    )


class MeasureSpec(_Strict):
    variable: str = Field(
        ...,
        pattern=r"^[a-z0-9_]{1,64}$",
        title="Variable",
        description="Name of the measure in the observatory (`population`, `bike_count`, `temperature`).",
    )
    column: str = Field(..., title="Column", description="Column holding the numbers.")
    site: str | None = Field(None, max_length=128, title="Site", description="Sensor or site name, if any.")


class SitesSpec(_Strict):
    file: Path = Field(
        ..., title="Sites file", description="CSV with one row per site (relative to the mapping file)."
    )
    key: str = Field(
        ..., title="Key column", description="Column with the site name, as in the wide table's headers."
    )
    lat: str = Field(..., title="Latitude column", description="WGS84 latitude of the site.")
    lon: str = Field(..., title="Longitude column", description="WGS84 longitude of the site.")


class UnpivotSpec(_Strict):
    variable: str = Field(
        ...,
        pattern=r"^[a-z0-9_]{1,64}$",
        title="Variable",
        description="Name of the measure every site column holds (`pedestrians`).",
    )
    columns: list[str] | None = Field(
        None,
        title="Site columns",
        description="The wide columns, one per site (default: every column not in `exclude`).",
    )
    exclude: list[str] = Field(
        default_factory=list,
        title="Excluded columns",
        description="Columns that are not sites (date, hour, year…), when `columns` is not given.",
    )
    sites: SitesSpec | None = Field(
        None, title="Site locations", description="Where each site is, joined on the column name."
    )


class Mapping(_Strict):
    id: str = Field(
        ...,
        pattern=r"^[a-z0-9_]{1,64}$",
        title="Dataset id",
        description="Short name of the dataset in the observatory (lower case, digits, `_`).",
    )
    title: str = Field(
        ..., min_length=1, max_length=200, title="Title", description="What the dataset is, for people."
    )
    kind: Kind = Field(
        ...,
        title="Kind",
        description="`incidents` (one row per recorded event, or a count of them) or `measures` (exposure and covariates: population, footfall, weather).",
    )
    origin: str = Field(
        ...,
        min_length=1,
        title="Origin",
        description="Who published it and where it was obtained (kept as provenance).",
    )
    licence: str = Field(
        ..., min_length=1, title="Licence", description="Licence of the source, as stated by it."
    )
    format: FileFormat | None = Field(
        None,
        title="File format",
        description="`csv`, `parquet` or `geojson`; by default from the extension (`.csv.gz` is CSV).",
    )
    csv: CsvOptions = Field(
        default_factory=CsvOptions, title="CSV options", description="How the CSV is written."
    )
    time: TimeSpec = Field(..., title="Time", description="Where each row's time is and how it is written.")
    location: LocationSpec | None = Field(
        None,
        title="Location",
        description="Coordinates (stored as H3 cells, never exactly) and/or an area code.",
    )
    category: CategorySpec | None = Field(
        None, title="Category", description="For incidents: what happened (column or constant)."
    )
    channel: ChannelSpec | None = Field(
        None,
        title="Channel",
        description="For incidents: who produced each record. A row whose channel cannot be resolved is refused (OB-04).",
    )
    count: str | None = Field(
        None,
        title="Count column",
        description="For pre-aggregated tables: the column with the number of incidents the row stands for (default 1 per row).",
    )
    filter: list[FilterSpec] = Field(
        default_factory=list,
        title="Row filter",
        description="Read only the rows matching every item (the others are not part of this dataset and are not counted).",
    )
    measures: list[MeasureSpec] = Field(
        default_factory=list, title="Measures", description="For measures: the variables and their columns."
    )
    unpivot: UnpivotSpec | None = Field(
        None, title="Wide to long", description="For measures in wide tables: one column per site."
    )

    @model_validator(mode="after")
    def _by_kind(self) -> Mapping:
        if self.kind is Kind.INCIDENTS:
            if self.category is None or self.channel is None:
                raise ValueError("incidents need `category` and `channel`")
            if self.measures or self.unpivot:
                raise ValueError("`measures` and `unpivot` are for `kind: measures`")
        else:
            if not self.measures and self.unpivot is None:
                raise ValueError("measures need `measures` or `unpivot`")
            if self.category or self.channel or self.count:
                raise ValueError("`category`, `channel` and `count` are for `kind: incidents`")
            if self.unpivot is not None and self.location is not None and self.location.has_point:
                raise ValueError("with `unpivot`, site coordinates come from `unpivot.sites`, not `location`")
        return self

    def file_format(self, file: Path) -> FileFormat:
        if self.format is not None:
            return self.format
        name = file.name.lower()
        for suffix in (".gz", ".zst"):
            name = name.removesuffix(suffix)
        if name.endswith((".parquet", ".pq")):
            return FileFormat.PARQUET
        if name.endswith((".geojson", ".json")):
            return FileFormat.GEOJSON
        if name.endswith((".csv", ".tsv", ".txt")):
            return FileFormat.CSV
        raise ObservatoryError(
            f"{file.name}: cannot tell the format from the extension; set `format: csv|parquet|geojson` in the mapping"
        )

    def canonical_json(self) -> str:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    def sha256(self) -> str:
        """Hash of the mapping's meaning (not its comments or key order), kept as provenance."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def parse_mapping(data: Any, base_dir: Path | None = None, *, name: str = "mapping") -> Mapping:
    if not isinstance(data, dict):
        raise ObservatoryError(f"{name}: the top level must be a mapping with `id`, `kind`, `time`…")
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        raise ObservatoryError(f"{name}: {format_validation_error(exc)}") from None
    if (
        base_dir is not None
        and mapping.unpivot
        and mapping.unpivot.sites
        and not mapping.unpivot.sites.file.is_absolute()
    ):
        sites = mapping.unpivot.sites.model_copy(
            update={"file": (base_dir / mapping.unpivot.sites.file).resolve()}
        )
        mapping = mapping.model_copy(update={"unpivot": mapping.unpivot.model_copy(update={"sites": sites})})
    return mapping


def load_mapping(path: Path) -> Mapping:
    data = read_yaml(path, "mapping", "--mapping", ObservatoryError)
    return parse_mapping(data, path.parent.resolve(), name=path.name)


def render_docs() -> str:
    """`docs/observatory-mapping.md`, generated from this schema (a test keeps it current), with
    the shipped mapping of the Paris citizen reports as the worked example."""
    from lanterne.config.docs import model_tables

    example = Path(__file__).resolve().parents[3] / "examples" / "observatory" / "paris_dansmarue.yml"
    lines = [
        "# Observatory mapping files",
        "",
        "<!-- Generated by `lanterne observatory mapping-docs -o docs/observatory-mapping.md` from "
        "`src/lanterne/observatory/mapping.py`. Do not edit by hand. -->",
        "",
        "A mapping file tells `lanterne observatory ingest FILE --mapping MAP.yml` which column holds "
        "the time, the place, the category, the reporting channel and the count of each row. Columns "
        "it does not name are never read. Unknown keys are errors. Every shipped dataset has one in "
        "`examples/observatory/`.",
        "",
        "## Example: Paris citizen reports",
        "",
        "```yaml",
        example.read_text(encoding="utf-8").rstrip(),
        "```",
        "",
    ]
    return "\n".join([*lines, *model_tables(Mapping)])
