"""The mapping as SQL: one expression per value a row yields (time, point, area code, category,
channel, count, measures) and the checks that refuse a row, first failing one wins.

Parsing, validation and the reject reasons are column expressions evaluated in one vectorised
scan, because 1.4 M rows must load in seconds on a small machine; only the H3 indexing of points
and the personal-identifier test of the (few) distinct categories run in Python.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from lanterne.observatory.ingest.readers import Source
from lanterne.observatory.mapping import AreaSpec, Kind, LocationSpec, Mapping, MeasureSpec, TimeSpec
from lanterne.observatory.store import literal, quoted

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")  # fmt: skip
MAX_COUNT = 2**31 - 1
"""`incidents.n` is an INTEGER: a larger count in one source row is a data error, not a crowd."""


# --- personal identifiers in categories (OB-02) ------------------------------------------------
# A category is published in aggregate tables; a free-text field mapped as a category by mistake
# would publish whatever people typed. These patterns catch the identifiers that matter most; a
# category matching one is refused row by row (the value itself is never logged).
PII_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an e-mail address", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    (
        "a French social security number (NIR)",
        re.compile(r"\b[12]\s?\d{2}\s?(0[1-9]|1[0-2]|[2-9]\d)\s?(\d{2}|2[AB])\s?\d{3}\s?\d{3}(\s?\d{2})?\b"),
    ),
    ("a phone number", re.compile(r"(?<![\w])(\+|00)?\d(?:[\s.\-()]{0,2}\d){8,14}(?![\w])")),
    (
        "a vehicle registration plate",
        re.compile(
            r"\b[A-HJ-NP-TV-Z]{2}[\s-]?\d{3}[\s-]?[A-HJ-NP-TV-Z]{2}\b"  # French SIV: AB-123-CD
            r"|\b\d{1,4}[\s-]?[A-Z]{1,3}[\s-]?(\d{2}|2[AB]|97\d)\b"  # French FNI: 1234 AB 56
        ),
    ),
)


def personal_identifier(text: str) -> str | None:
    """What kind of personal identifier `text` looks like, or None."""
    for kind, pattern in PII_PATTERNS:
        if pattern.search(text):
            return kind
    return None


@dataclass
class Check:
    field: str
    condition: str
    reason: str


@dataclass
class Plan:
    """The expressions computed per row, then the checks that refuse a row (first one wins)."""

    exprs: dict[str, str] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)
    """Computed from `exprs` (the channel of a category), in a second step."""
    checks: list[Check] = field(default_factory=list)


class Exprs:
    """SQL expressions over the source's columns, aware of their types (Parquet is typed, CSV is
    read as text)."""

    def __init__(self, types: dict[str, str], decimal_comma: bool) -> None:
        self.types = types
        self.decimal_comma = decimal_comma

    def is_numeric(self, col: str) -> bool:
        return self.types.get(col, "VARCHAR").split("(")[0] in NUMERIC_TYPES

    def text(self, col: str) -> str:
        return f"NULLIF(trim(CAST({quoted(col)} AS VARCHAR)), '')"

    def present(self, col: str) -> str:
        if self.types.get(col, "VARCHAR") != "VARCHAR":
            # Typed (Parquet) values: formatting 1.4 M doubles as text just to test for NULL
            # costs seconds.
            return f"({quoted(col)} IS NOT NULL)"
        return f"({self.text(col)} IS NOT NULL)"

    def raw_number(self, col: str) -> str:
        if self.is_numeric(col):
            return f"CAST({quoted(col)} AS DOUBLE)"
        text = self.text(col)
        if self.decimal_comma:
            text = f"replace({text}, ',', '.')"
        return f"try_cast({text} AS DOUBLE)"

    def number(self, col: str) -> str:
        """NaN is how pandas writes an empty cell: it means missing, not a malformed value."""
        raw = self.raw_number(col)
        return f"(CASE WHEN isnan({raw}) THEN NULL ELSE {raw} END)"

    def bad_number(self, col: str) -> str:
        if self.is_numeric(col):
            return "false"
        return f"({self.present(col)} AND {self.raw_number(col)} IS NULL)"


def plan_rows(x: Exprs, mapping: Mapping, measures: Sequence[MeasureSpec]) -> Plan:
    """Every value a row of an incidents dataset (or a measures one, its `measures`) yields, and
    the checks that refuse it, in the order the reasons are reported."""
    plan = Plan()
    _time(plan, x, mapping)
    _location(plan, x, mapping)
    if mapping.kind is Kind.INCIDENTS:
        _category_and_channel(plan, x, mapping)
    else:
        _measures(plan, x, measures)
    return plan


# --- time -------------------------------------------------------------------------------------------

_OFFSET_RE = r"\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$"

_TimeExprs = tuple[str, str, str, str]
"""The timestamp, the test that the source has one, the reason when it has none, the reason when
it cannot be read."""


def _time(plan: Plan, x: Exprs, mapping: Mapping) -> None:
    t = mapping.time
    if t.column:
        ts, present, missing_reason, bad_reason = _time_of_column(x, t)
    elif t.year_column:
        ts, present, missing_reason, bad_reason = _time_of_year(x, t)
    else:
        ts, present, missing_reason, bad_reason = _time_of_date(x, t)
    plan.exprs["ts_raw"] = ts
    plan.exprs["ts_present"] = present
    plan.checks += [
        Check("time", "NOT ts_present", missing_reason),
        Check("time", "ts_raw IS NULL", bad_reason),
        Check(
            "time",
            "ts_raw < TIMESTAMP '1900-01-01' OR ts_raw >= TIMESTAMP '2100-01-01'",
            "time is outside 1900-2099",
        ),
    ]


def _format_name(t: TimeSpec) -> str:
    return f"`{t.format}`" if t.format else "ISO 8601"


def _time_of_column(x: Exprs, t: TimeSpec) -> _TimeExprs:
    assert t.column is not None
    col = t.column
    tz = literal(t.time_zone)
    kind = x.types.get(col, "VARCHAR")
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        ts = f"timezone({tz}, {quoted(col)})"
    elif kind.startswith(("TIMESTAMP", "DATE")):
        ts = f"CAST({quoted(col)} AS TIMESTAMP)"
    elif t.format:
        parsed = f"try_strptime({x.text(col)}, {literal(t.format)})"
        ts = f"timezone({tz}, {parsed})" if "%z" in t.format or "%Z" in t.format else parsed
    else:
        text = x.text(col)
        ts = (
            f"(CASE WHEN regexp_matches({text}, {literal(_OFFSET_RE)}) "
            f"THEN timezone({tz}, try_cast({text} AS TIMESTAMPTZ)) ELSE try_cast({text} AS TIMESTAMP) END)"
        )
    return ts, x.present(col), "time is missing", f"time is not a date/time ({_format_name(t)})"


def _time_of_year(x: Exprs, t: TimeSpec) -> _TimeExprs:
    assert t.year_column is not None
    col = t.year_column
    year = f"CAST({quoted(col)} AS INTEGER)" if x.is_numeric(col) else f"try_cast({x.text(col)} AS INTEGER)"
    year = f"({year} + {t.year_offset})"
    ts = f"(CASE WHEN {year} BETWEEN 1 AND 9999 THEN make_timestamp({year}, 1, 1, 0, 0, 0) END)"
    return ts, x.present(col), "year is missing", "year is not a whole number"


def _time_of_date(x: Exprs, t: TimeSpec) -> _TimeExprs:
    assert t.date_column is not None
    what = _format_name(t)
    dcol = t.date_column
    dkind = x.types.get(dcol, "VARCHAR")
    if dkind.startswith(("TIMESTAMP", "DATE")):
        day = f"CAST({quoted(dcol)} AS DATE)"
    elif t.format:
        day = f"CAST(try_strptime({x.text(dcol)}, {literal(t.format)}) AS DATE)"
    else:
        day = f"try_cast({x.text(dcol)} AS DATE)"
    if not t.hour_column:
        return f"CAST({day} AS TIMESTAMP)", x.present(dcol), "date is missing", f"date is not a date ({what})"
    hcol = t.hour_column
    hour = (
        f"CAST({quoted(hcol)} AS INTEGER)"
        if x.is_numeric(hcol)
        else f"try_cast(regexp_extract({x.text(hcol)}, '^(\\d{{1,2}})', 1) AS INTEGER)"
    )
    next_day = (
        f" + to_days(CASE WHEN {hour} < {t.day_starts_at} THEN 1 ELSE 0 END)" if t.day_starts_at else ""
    )
    ts = f"(CASE WHEN {hour} BETWEEN 0 AND 23 THEN CAST({day} AS TIMESTAMP) + to_hours({hour}){next_day} END)"
    present = f"({x.present(dcol)} AND {x.present(hcol)})"
    return ts, present, "date or hour is missing", f"date ({what}) or hour (0-23) is not valid"


# --- place ------------------------------------------------------------------------------------------

_LAT_KEY = r"""['"]lat(?:itude)?['"]\s*:\s*([-+0-9.eE]+)"""
_LON_KEY = r"""['"](?:lon|lng|longitude)['"]\s*:\s*([-+0-9.eE]+)"""
_WKT_POINT = r"(?i)^\s*POINT\s*(?:Z\s*|M\s*|ZM\s*)?\(\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)"


def _location(plan: Plan, x: Exprs, mapping: Mapping) -> None:
    loc = mapping.location
    if loc is None or not loc.has_point:
        plan.exprs["lat"] = "CAST(NULL AS DOUBLE)"
        plan.exprs["lon"] = "CAST(NULL AS DOUBLE)"
    else:
        _point(plan, x, loc)
    area = loc.area if loc is not None else None
    if area is None:
        plan.exprs["area_code"] = "CAST(NULL AS VARCHAR)"
        return
    _area(plan, x, area)


def _point(plan: Plan, x: Exprs, loc: LocationSpec) -> None:
    if loc.lat is not None and loc.lon is not None:
        lat, lon = x.number(loc.lat), x.number(loc.lon)
        plan.exprs["loc_present"] = f"({x.present(loc.lat)} OR {x.present(loc.lon)})"
        plan.exprs["loc_bad"] = f"({x.bad_number(loc.lat)} OR {x.bad_number(loc.lon)})"
        plan.checks.append(Check("location", "loc_bad", "coordinates are not numbers"))
    elif loc.wkt is not None:
        text = x.text(loc.wkt)
        lon = f"try_cast(NULLIF(regexp_extract({text}, {literal(_WKT_POINT)}, 1), '') AS DOUBLE)"
        lat = f"try_cast(NULLIF(regexp_extract({text}, {literal(_WKT_POINT)}, 2), '') AS DOUBLE)"
        plan.exprs["loc_present"] = x.present(loc.wkt)
        plan.checks.append(
            Check("location", "loc_present AND (lat IS NULL OR lon IS NULL)", "WKT is not a POINT")
        )
    elif loc.point_text is not None:
        text = x.text(loc.point_text)
        lat = f"try_cast(NULLIF(regexp_extract({text}, {literal(_LAT_KEY)}, 1), '') AS DOUBLE)"
        lon = f"try_cast(NULLIF(regexp_extract({text}, {literal(_LON_KEY)}, 1), '') AS DOUBLE)"
        plan.exprs["loc_present"] = x.present(loc.point_text)
        plan.checks.append(
            Check(
                "location",
                "loc_present AND (lat IS NULL OR lon IS NULL)",
                "point text has no lat and lon",
            )
        )
    else:
        lat, lon = "__lat", "__lon"
        plan.exprs["loc_present"] = "(__geom IS NOT NULL)"
        plan.checks.append(
            Check("location", "__geom IS NOT NULL AND __geom <> 'Point'", "geometry is not a Point")
        )
        plan.checks.append(
            Check(
                "location",
                "__geom = 'Point' AND (lat IS NULL OR lon IS NULL)",
                "Point has no coordinates",
            )
        )
    plan.exprs["lat"] = lat
    plan.exprs["lon"] = lon
    plan.checks += [
        Check(
            "location",
            "loc_present AND ((lat IS NULL) <> (lon IS NULL))",
            "coordinates incomplete (one of lat, lon)",
        ),
        Check(
            "location",
            "lat NOT BETWEEN -90 AND 90 OR lon NOT BETWEEN -180 AND 180",
            "coordinates out of range",
        ),
    ]


def _area(plan: Plan, x: Exprs, area: AreaSpec) -> None:
    text = x.text(area.column)
    if x.is_numeric(area.column) and x.types[area.column].split("(")[0] in ("FLOAT", "DOUBLE", "DECIMAL"):
        # 9.0 must become "9": a code is never fractional, and a float column is a CSV-writer artefact.
        text = f"NULLIF(CAST(try_cast({quoted(area.column)} AS BIGINT) AS VARCHAR), '')"
    if area.pad:
        text = f"(CASE WHEN length({text}) < {area.pad} THEN lpad({text}, {area.pad}, '0') ELSE {text} END)"
    plan.exprs["area_code"] = f"({literal(area.prefix)} || {text})" if area.prefix else text
    if area.required:
        plan.checks.append(Check("area", "area_code IS NULL", "area code is missing"))


# --- what was recorded ------------------------------------------------------------------------------


def _category_and_channel(plan: Plan, x: Exprs, mapping: Mapping) -> None:
    cat, chan = mapping.category, mapping.channel
    assert cat is not None and chan is not None
    if cat.column is not None:
        text = x.text(cat.column)
        if cat.rename:
            whens = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in cat.rename.items())
            text = f"(CASE {text} {whens} ELSE {text} END)"
        plan.exprs["category"] = text
    else:
        assert cat.value is not None
        plan.exprs["category"] = literal(cat.value)
    plan.checks.append(Check("category", "category IS NULL", "category is empty"))
    if chan.value is not None:
        plan.exprs["channel"] = literal(str(chan.value))
    elif chan.column is not None:
        key = (
            f"(CASE WHEN {quoted(chan.column)} THEN 'true' WHEN NOT {quoted(chan.column)} THEN 'false' END)"
            if x.types.get(chan.column) == "BOOLEAN"
            else f"lower({x.text(chan.column)})"
        )
        whens = " ".join(f"WHEN {literal(k.lower())} THEN {literal(str(v))}" for k, v in chan.values.items())
        plan.exprs["channel"] = f"(CASE {key} {whens} END)"
        plan.checks.append(
            Check("channel", "channel IS NULL", "channel value not listed in `channel.values`")
        )
    else:
        whens = " ".join(f"WHEN {literal(k)} THEN {literal(str(v))}" for k, v in chan.by_category.items())
        default = literal(str(chan.default)) if chan.default is not None else "NULL"
        plan.derived["channel"] = f"(CASE category {whens} ELSE {default} END)"
        plan.checks.append(
            Check(
                "channel",
                "channel IS NULL",
                "category has no channel in `channel.by_category` and no default",
            )
        )
    if mapping.count:
        n = x.raw_number(mapping.count)
        plan.exprs["n"] = (
            f"(CASE WHEN {n} >= 0 AND {n} <= {MAX_COUNT} AND {n} = floor({n}) THEN CAST({n} AS INTEGER) END)"
        )
        plan.checks.append(Check("count", "n IS NULL", "count is not a whole number ≥ 0"))
    else:
        plan.exprs["n"] = "1"


def _measures(plan: Plan, x: Exprs, measures: Sequence[MeasureSpec]) -> None:
    for i, m in enumerate(measures):
        plan.exprs[f"v{i}"] = x.number(m.column)
        plan.exprs[f"v{i}_bad"] = x.bad_number(m.column)
        plan.checks.append(Check(m.column, f"v{i}_bad", "value is not a number"))


def refuse_personal_categories(cur: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """Add a check per kind of identifier found among the categories. Categories are few (tens to
    hundreds): testing the distinct values in Python costs nothing, where a regular expression
    per row would cost seconds on 1.4 M rows."""
    distinct = [r[0] for r in cur.execute("SELECT DISTINCT category FROM __vals").fetchall()]
    flagged: dict[str, list[str]] = {}
    for value in distinct:
        kind = personal_identifier(str(value)) if value is not None else None
        if kind is not None:
            flagged.setdefault(kind, []).append(str(value))
    after = next(i for i, c in enumerate(plan.checks) if c.field == "category") + 1
    plan.checks[after:after] = [
        Check(
            "category",
            f"category IN ({', '.join(literal(v) for v in values)})",
            f"category looks like {kind} (OB-02)",
        )
        for kind, values in flagged.items()
    ]


# --- the relations the pass reads ---------------------------------------------------------------


def values_sql(plan: Plan, source: Source, mapping: Mapping, x: Exprs) -> str:
    """Every value computed from the source columns, then those computed from them (a category's
    channel). Materialised once: the checks below read these columns instead of re-evaluating
    the parsing expressions in every branch of the reason CASE."""
    first = ["__row AS row_number"]
    if mapping.location is not None and mapping.location.geometry:
        first += ["__geom"]
    values = [f"{expr} AS {name}" for name, expr in plan.exprs.items()]
    where = " AND ".join(
        f"{x.text(f.column)} IN ({', '.join(literal(v) for v in f.values)})" for f in mapping.filter
    )
    step1 = f"SELECT {', '.join(first + values)} FROM {source.sql} WHERE {where or 'true'}"
    derived = "".join(f", {expr} AS {name}" for name, expr in plan.derived.items())
    return f"SELECT *{derived} FROM ({step1})"


def staged_sql(plan: Plan, mapping: Mapping, h3_join: str, h3_col: str) -> str:
    """The first failing check of each row becomes its `field` and `reason` (NULL: loaded)."""
    reason = " ".join(f"WHEN {c.condition} THEN {literal(c.reason)}" for c in plan.checks)
    fields = " ".join(f"WHEN {c.condition} THEN {literal(c.field)}" for c in plan.checks)
    keep = [
        n
        for n in (*plan.exprs, *plan.derived)
        if n not in ("ts_raw", "lat", "lon") and not n.endswith(("_bad", "_present"))
    ]
    return (
        f"SELECT row_number, date_trunc({literal(mapping.time.precision.value)}, ts_raw) AS ts, "
        f"{''.join(f'{n}, ' for n in keep)}{h3_col} AS h3, "
        f"CASE {fields} END AS field, CASE {reason} END AS reason FROM {h3_join or '__vals'}"
    )
