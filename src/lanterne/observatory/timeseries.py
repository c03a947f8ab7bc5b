"""Time series of counts: trend, weekly and yearly seasonality, robust anomalies explained in
words, and other sources (weather, footfall, bike counts) beside the incidents.

Everything is numpy over a dense series of periods, without a statistics package: the series the
console draws are at most a few tens of thousands of points (four years of hours), and the
classical decomposition below is a handful of array passes over them.

The model is multiplicative, because these are counts: a summer that brings 20 % more thefts
brings 20 % more in a busy year and in a quiet one, so the usual level of a period is
``trend × yearly factor × weekly factor``. Components are also given in counts (``trend + yearly +
weekly + residual = observed``) so that charts can stack them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from lanterne.observatory.aggregate import AreaRef, Filters, Grain, period_end, series
from lanterne.observatory.store import ObservatoryError, ObservatoryStore

Aggregation = Literal["sum", "mean"]

PERIODS_PER_YEAR: dict[Grain, int] = {
    Grain.HOUR: 52 * 168,
    Grain.DAY: 52 * 7,
    Grain.WEEK: 52,
    Grain.MONTH: 12,
}
"""A year in periods, as whole weeks for hours and days (364 days): a moving average over it
then cancels the weekly cycle exactly as well as (almost exactly) the yearly one."""

WEEKLY_BUCKETS: dict[Grain, int] = {Grain.HOUR: 168, Grain.DAY: 7}
"""Hour of the week (Monday 00:00 = 0) for hourly series, day of the week for daily ones; weekly
and monthly periods have no weekly cycle."""

OUTLIER_Z = 4.0
"""Points further than this from the first fit are left out of the second one, so that one
exceptional week does not lift the trend and the seasonal factors that judge it."""

MIN_SCALE = 1.0
"""Floor of the robust spread of standardised residuals. For Poisson counts the standardised
residual has spread 1: a series smoother than chance (tiny MAD, or all zeros) must not turn every
small wobble into an anomaly."""

RATIO_FLOOR = 0.1
"""Expected values below this are treated as 0.1 in the ratio, so that a rare category's first
record in months reads as a large, finite ratio instead of a division by zero."""

MEAN_PREFIXES = ("temp", "humidity", "pressure", "wind", "pop")
"""Measures that are levels, not counts, named by how their variable begins (`temperature_c`,
`temp`, `POP`): a day's temperature is the mean of its hours, a month's population the mean of
its values. Every other variable (bike_count, pedestrians, rain_mm, camera counts) is summed over
the period and over its sites. Pass ``(dataset, variable, "mean")`` to decide for a variable
these prefixes get wrong."""

CORRELATION_CAVEAT = (
    "Correlation is not causation: two series that follow the same seasons, weekdays or hours "
    "correlate without either causing the other, and a correlation says nothing about a single period."
)

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Decomposition:
    """A series split into ``trend + yearly + weekly + residual`` (all in counts), with the
    multiplicative factors behind the seasonal parts.

    Periods without data (before a dataset's first record, a gap in the source) have NaN as
    ``observed`` and ``residual``; the model parts are still given there.
    """

    starts: list[datetime]
    observed: np.ndarray
    trend: np.ndarray
    weekly: np.ndarray
    yearly: np.ndarray
    residual: np.ndarray
    grain: Grain = Grain.WEEK
    yearly_profile: np.ndarray = field(default_factory=lambda: np.ones(0))
    """Factor per week of the year (52, ISO week 53 folded into 52) or per month (12); empty when
    the series is too short (see ``notes``). 1.2 = 20 % above the year's average."""
    weekly_profile: np.ndarray = field(default_factory=lambda: np.ones(0))
    """Factor per day of the week (7, Monday first) or hour of the week (168); empty for weekly
    and monthly series."""
    notes: tuple[str, ...] = ()

    @property
    def expected(self) -> np.ndarray:
        """The usual level of each period: what an anomaly is measured against."""
        return self.trend + self.yearly + self.weekly


@dataclass(frozen=True)
class Anomaly:
    start: datetime
    observed: int
    expected: float
    ratio: float
    """observed / expected (expected floored at `RATIO_FLOOR`): 3.1 = three times the usual."""
    score: float
    """Robust z: standardised residual over the series' robust spread; negative for dips."""
    text: str


class Anomalies(list[Anomaly]):
    """The anomalies of a series, most extreme first, with what was left out and why.

    A list, so that callers that only iterate need not know about `withheld` and `notes`.
    """

    def __init__(
        self, items: Sequence[Anomaly] = (), *, withheld: int = 0, notes: Sequence[str] = ()
    ) -> None:
        super().__init__(items)
        self.withheld = withheld
        """Anomalies not listed because their period's count is suppressed for this role."""
        self.notes = tuple(notes)


@dataclass(frozen=True)
class MeasureSeries:
    dataset: str
    variable: str
    aggregation: Aggregation
    values: list[float | None]
    """One value per period of `CrossSource.starts`; None where the measure has no data."""
    correlation: float | None
    """Pearson correlation with the incident counts over `periods` common periods; None when
    fewer than three periods are common or either side is constant."""
    periods: int


@dataclass(frozen=True)
class CrossSource:
    grain: Grain
    starts: list[datetime]
    incidents: list[int | None]
    """Incident counts; None where suppressed for this role (never used in a correlation)."""
    measures: list[MeasureSeries]
    caveat: str = CORRELATION_CAVEAT
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Pure functions


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean over `window` periods, NaN-aware; NaN where the full window does not
    fit or holds less than half its weight in data.

    An even window is the classical 2×m average (half weight on both ends) so that it stays
    centred on a period; cumulative sums keep it linear in the length of the series.
    """
    n = len(x)
    half = window // 2
    out = np.full(n, np.nan)
    if n < 2 * half + 1:
        return out
    valid = ~np.isnan(x)
    x0 = np.where(valid, x, 0.0)
    w0 = valid.astype(float)
    cx = np.concatenate(([0.0], np.cumsum(x0)))
    cw = np.concatenate(([0.0], np.cumsum(w0)))
    centre = np.arange(half, n - half)
    num = cx[centre + half + 1] - cx[centre - half]
    den = cw[centre + half + 1] - cw[centre - half]
    if window % 2 == 0:
        num = num - 0.5 * (x0[centre - half] + x0[centre + half])
        den = den - 0.5 * (w0[centre - half] + w0[centre + half])
    with np.errstate(invalid="ignore", divide="ignore"):
        out[centre] = np.where(den >= 0.5 * window, num / den, np.nan)
    return out


def _fill(x: np.ndarray) -> np.ndarray:
    """Interpolate NaNs inside, hold the nearest value at the edges (the trend at the first and
    last half-year is the first and last full-year mean: a shorter window would lean on the
    season at that end)."""
    known = np.flatnonzero(~np.isnan(x))
    if len(known) == 0:
        return x
    return np.interp(np.arange(len(x)), known, x[known])


def _trend(x: np.ndarray, grain: Grain) -> np.ndarray:
    n = len(x)
    windows = []
    if grain in PERIODS_PER_YEAR:
        windows.append(PERIODS_PER_YEAR[grain])
    if grain in WEEKLY_BUCKETS:
        windows.append(WEEKLY_BUCKETS[grain])
    # Shorter than a year and without a weekly cycle: a quarter's (or three months') average.
    windows.append({Grain.WEEK: 13, Grain.MONTH: 3}.get(grain, 3))
    for window in windows:
        if n > window:
            trend = _moving_average(x, window)
            if not np.all(np.isnan(trend)):
                return _fill(trend)
    level = np.nanmean(x) if np.any(~np.isnan(x)) else 0.0
    return np.full(n, level)


def _yearly_keys(starts: Sequence[datetime], grain: Grain) -> tuple[np.ndarray, np.ndarray]:
    """(season bucket, year) per period: month for monthly series, ISO week otherwise (week 53,
    which only some years have, is folded into 52)."""
    if grain is Grain.MONTH:
        return np.array([s.month - 1 for s in starts]), np.array([s.year for s in starts])
    iso = [s.isocalendar() for s in starts]
    return np.array([min(c.week, 52) - 1 for c in iso]), np.array([c.year for c in iso])


def _weekly_keys(starts: Sequence[datetime], grain: Grain) -> np.ndarray:
    if grain is Grain.HOUR:
        return np.array([s.weekday() * 24 + s.hour for s in starts])
    return np.array([s.weekday() for s in starts])


def _bucket_stat(
    keys: np.ndarray, values: np.ndarray, size: int, how: Literal["mean", "median"]
) -> np.ndarray:
    out = np.full(size, np.nan)
    ok = ~np.isnan(values)
    keys, values = keys[ok], values[ok]
    if len(values) == 0:
        return out
    if how == "mean":
        sums = np.bincount(keys, weights=values, minlength=size)
        counts = np.bincount(keys, minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    bounds = np.searchsorted(keys, np.arange(size + 1))
    for b in range(size):
        if bounds[b + 1] > bounds[b]:
            out[b] = np.median(values[bounds[b] : bounds[b + 1]])
    return out


def _normalise(profile: np.ndarray) -> np.ndarray:
    """Factors averaging 1 over the buckets that have data; buckets without data get 1."""
    if np.all(np.isnan(profile)):
        return np.ones_like(profile)
    mean = np.nanmean(profile)
    if not mean > 0:
        return np.ones_like(profile)
    return np.where(np.isnan(profile), 1.0, profile / mean)


@dataclass(frozen=True)
class _Fit:
    trend: np.ndarray
    yearly_factor: np.ndarray  # per period
    weekly_factor: np.ndarray  # per period
    yearly_profile: np.ndarray
    weekly_profile: np.ndarray

    @property
    def expected(self) -> np.ndarray:
        return self.trend * self.yearly_factor * self.weekly_factor


def _seasonal_centre(table: np.ndarray) -> np.ndarray:
    """The usual ratio of each season bucket (rows) from its values in each year (columns).

    Three years or more: the median, which one exceptional year cannot move. Two: the one closer
    to 1 (the milder season the data allows), because with two years nothing says which one is
    the exception, and a mean would turn a lockdown spring into a usual spring half as busy,
    flagging the normal year as high and hiding the lockdown.
    """
    out = np.full(len(table), np.nan)
    for row, values in enumerate(table):
        known = values[~np.isnan(values)]
        if len(known) >= 3:
            out[row] = np.median(known)
        elif len(known) == 2:
            with np.errstate(divide="ignore"):
                distance = np.abs(np.log(np.maximum(known, 0.0)))
            out[row] = known[int(np.argmin(distance))]
        elif len(known) == 1:
            out[row] = known[0]
    return out


def _fit_once(x: np.ndarray, starts: Sequence[datetime], grain: Grain, *, with_yearly: bool) -> _Fit:
    n = len(x)
    trend = _trend(x, grain)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(trend > 0, x / trend, np.nan)

    yearly_factor = np.ones(n)
    yearly_profile = np.ones(0)
    if with_yearly:
        size = 12 if grain is Grain.MONTH else 52
        bucket, year = _yearly_keys(starts, grain)
        years = np.unique(year)
        # One ratio per (bucket, year): for hours and days the mean over the week's periods,
        # which cancels the weekly cycle before the yearly one is read.
        table = np.full((size, len(years)), np.nan)
        year_index = np.searchsorted(years, year)
        for j in range(len(years)):
            here = year_index == j
            table[:, j] = _bucket_stat(bucket[here], ratio[here], size, "mean")
        yearly_profile = _normalise(_seasonal_centre(table))
        yearly_factor = yearly_profile[bucket]

    weekly_factor = np.ones(n)
    weekly_profile = np.ones(0)
    if grain in WEEKLY_BUCKETS:
        size = WEEKLY_BUCKETS[grain]
        keys = _weekly_keys(starts, grain)
        with np.errstate(invalid="ignore", divide="ignore"):
            rest = ratio / yearly_factor
        weekly_profile = _normalise(_bucket_stat(keys, rest, size, "median"))
        weekly_factor = weekly_profile[keys]
    return _Fit(trend, yearly_factor, weekly_factor, yearly_profile, weekly_profile)


def _standardised(x: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Signed Poisson deviance residuals: residuals in standard deviations of chance.

    A count of 1,200 varies by ±35 by chance alone, a count of 16 by ±4, so raw residuals of busy
    and quiet periods are not comparable. The deviance form rather than (x - e) / √e because
    small counts are skewed: 1 where 16 are usual is far rarer (p ≈ 2·10⁻⁶) than 31 (p ≈ 6·10⁻⁴),
    which the deviance says (-4.9 against +3.3) and the plain ratio does not (-3.75 against +3.75).
    """
    e = np.maximum(expected, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / e), 0.0)
    deviance = np.maximum(2.0 * (term - (x - e)), 0.0)
    return np.sign(x - e) * np.sqrt(deviance)


def _robust_scores(u: np.ndarray) -> np.ndarray:
    """Robust z of standardised residuals: centred on their median, divided by 1.4826 × MAD
    (the standard deviation for normal data, unmoved by the outliers it is looking for), with
    the Poisson floor `MIN_SCALE`."""
    known = u[~np.isnan(u)]
    if len(known) == 0:
        return np.full_like(u, np.nan)
    centre = float(np.median(known))
    scale = max(1.4826 * float(np.median(np.abs(known - centre))), MIN_SCALE)
    return (u - centre) / scale


def _fit(x: np.ndarray, starts: Sequence[datetime], grain: Grain) -> tuple[_Fit, list[str]]:
    notes: list[str] = []
    per_year = PERIODS_PER_YEAR.get(grain)
    with_yearly = per_year is not None and len(x) >= 2 * per_year
    if per_year is not None and not with_yearly:
        years = len(x) / per_year
        notes.append(
            f"no yearly seasonality: the series covers {years:.1f} years and at least 2 are needed to tell a season from a trend"
        )
    if grain is Grain.YEAR:
        notes.append("yearly series: trend only")
    first = _fit_once(x, starts, grain, with_yearly=with_yearly)
    scores = _robust_scores(_standardised(x, first.expected))
    outliers = np.abs(scores) > OUTLIER_Z
    if not outliers.any():
        return first, notes
    cleaned = np.where(outliers, np.nan, x)
    return _fit_once(cleaned, starts, grain, with_yearly=with_yearly), notes


def _as_array(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    x = (
        np.array([np.nan if v is None else v for v in values], dtype=float)
        if not isinstance(values, np.ndarray)
        else values.astype(float)
    )
    if np.any(x[~np.isnan(x)] < 0):
        raise ValueError("counts cannot be negative")
    return x


def decompose(
    starts: list[datetime], values: Sequence[float | None] | np.ndarray, grain: Grain
) -> Decomposition:
    """Split a dense count series into trend, yearly and weekly seasonality and residual.

    `starts` are consecutive period starts at `grain` (every period present); `values` the counts,
    NaN or None for a period without data (a gap, not a zero). Trend: centred moving mean over a
    year (52 weeks, 12 months, 364 days, 52×168 hours), held flat over the first and last
    half-year; yearly factors: median across years of the detrended ratio per ISO week (month for
    monthly series; with exactly two years, the one closer to 1), only with at least two years; weekly factors: median per day of the week
    (hour of the week for hourly series). Fitted twice, the second time without the points the
    first fit found extreme, so that one exceptional period does not bend its own baseline.

    >>> from datetime import datetime, timedelta
    >>> starts = [datetime(2020, 1, 6) + timedelta(days=i) for i in range(28)]
    >>> d = decompose(starts, [10, 10, 10, 10, 10, 20, 20] * 4, Grain.DAY)
    >>> [round(float(f), 2) for f in d.weekly_profile]
    [0.78, 0.78, 0.78, 0.78, 0.78, 1.56, 1.56]
    """
    grain = Grain(grain)
    if len(starts) != len(values):
        raise ValueError("starts and values differ in length")
    x = _as_array(values)
    fit, notes = _fit(x, starts, grain)
    seasonal = fit.trend * fit.yearly_factor
    return Decomposition(
        starts=list(starts),
        observed=x,
        trend=fit.trend,
        yearly=seasonal - fit.trend,
        weekly=seasonal * fit.weekly_factor - seasonal,
        residual=x - fit.expected,
        grain=grain,
        yearly_profile=fit.yearly_profile,
        weekly_profile=fit.weekly_profile,
        notes=tuple(notes),
    )


def _about(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _times(ratio: float) -> str:
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×"


def _season_month(start: datetime, grain: Grain) -> str:
    # A week belongs to the month of its Thursday, as ISO weeks belong to the year of theirs.
    day = start + timedelta(days=3) if grain is Grain.WEEK else start
    return _MONTHS[day.month - 1]


def explain(start: datetime, observed: int, expected: float, grain: Grain, *, seasonal: bool = True) -> str:
    """One sentence a reader can check against the chart: which period, how many times the
    usual, and the two numbers.

    >>> explain(datetime(2016, 8, 8), 412, 133.0, Grain.WEEK)
    'week 32 of 2016 (8 Aug): 3.1× the usual for August (412 vs about 133)'
    >>> explain(datetime(2015, 3, 1), 1234, 3085.0, Grain.MONTH)
    'March 2015: 0.4× the usual for March (1,234 vs about 3,085)'
    """
    grain = Grain(grain)
    month = _season_month(start, grain)
    weekday = _WEEKDAYS[start.weekday()]
    day = f"{start.day} {start:%b}"
    if grain is Grain.HOUR:
        when = f"{weekday} {day} {start.year}, {start:%H}:00"
        usual = f"a {weekday} at {start:%H}:00" + (f" in {month}" if seasonal else "")
    elif grain is Grain.DAY:
        when = f"{weekday} {day} {start.year}"
        usual = f"a {weekday}" + (f" in {month}" if seasonal else "")
    elif grain is Grain.WEEK:
        iso = start.isocalendar()
        when = f"week {iso.week} of {iso.year} ({day})"
        usual = month if seasonal else "the weeks around it"
    elif grain is Grain.MONTH:
        when = f"{_MONTHS[start.month - 1]} {start.year}"
        usual = month if seasonal else "the months around it"
    else:
        when = f"{start.year}"
        usual = "the years around it"
    if observed == 0:
        return f"{when}: none recorded, against about {_about(expected)} usually for {usual}"
    ratio = observed / max(expected, RATIO_FLOOR)
    return f"{when}: {_times(ratio)} the usual for {usual} ({observed:,} vs about {_about(expected)})"


def find_anomalies(
    starts: list[datetime],
    values: Sequence[float | None] | np.ndarray,
    grain: Grain,
    *,
    threshold: float = 3.5,
) -> Anomalies:
    """Periods whose count is far from its usual level, most extreme first.

    The usual level is `Decomposition.expected` (``trend × yearly factor × weekly factor``, the
    fit of `decompose`); the score is a robust z of the Poisson-standardised residual. Periods given as NaN/None (no data: before a dataset's first record, a gap in the
    source, a period only partly covered) are never flagged and do not shape the baseline.
    """
    grain = Grain(grain)
    if grain is Grain.YEAR:
        raise ObservatoryError(
            "anomalies need an hour, day, week or month grain; a handful of years has no usual level"
        )
    x = _as_array(values)
    known = int(np.sum(~np.isnan(x)))
    minimum = 2 * WEEKLY_BUCKETS.get(grain, 4)
    if known < minimum:
        return Anomalies(
            notes=[f"too short for anomalies: {known} periods with data, at least {minimum} needed"]
        )
    fit, notes = _fit(x, starts, grain)
    expected = fit.expected
    scores = _robust_scores(_standardised(x, expected))
    flagged = np.flatnonzero(np.abs(np.nan_to_num(scores)) >= threshold)
    seasonal = len(fit.yearly_profile) > 0
    found = [
        Anomaly(
            start=starts[i],
            observed=round(float(x[i])),
            expected=float(expected[i]),
            ratio=float(x[i] / max(expected[i], RATIO_FLOOR)),
            score=float(scores[i]),
            text=explain(starts[i], round(float(x[i])), float(expected[i]), grain, seasonal=seasonal),
        )
        for i in flagged
    ]
    found.sort(key=lambda a: -abs(a.score))
    return Anomalies(found, notes=notes)


def pearson(a: Sequence[float | None], b: Sequence[float | None]) -> tuple[float | None, int]:
    """Pearson correlation over the positions where both are known, and how many those are."""
    x = np.array([np.nan if v is None else v for v in a], dtype=float)
    y = np.array([np.nan if v is None else v for v in b], dtype=float)
    both = ~np.isnan(x) & ~np.isnan(y)
    count = int(both.sum())
    if count < 3:
        return None, count
    x, y = x[both] - x[both].mean(), y[both] - y[both].mean()
    denominator = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if denominator == 0:
        return None, count
    return float(np.dot(x, y)) / denominator, count


# ---------------------------------------------------------------------------------------------
# Store wiring


_PRECISION_RANK = {"minute": 0, "hour": 1, "day": 2, "month": 3, "year": 4}
_GRAIN_RANK = {Grain.HOUR: 1, Grain.DAY: 2, Grain.WEEK: 2, Grain.MONTH: 3, Grain.YEAR: 4}


def _dataset_info(
    store: ObservatoryStore, dataset: str, kind: str
) -> tuple[str, datetime | None, datetime | None]:
    """(time precision, first ts, last ts) of a dataset, refusing an unknown one or the wrong kind."""
    rows = store.query("SELECT kind, time_precision FROM datasets WHERE id = $id", {"id": dataset})
    if not rows:
        raise ObservatoryError(f"no dataset {dataset!r} in the observatory store; ingest it first")
    if rows[0][0] != kind:
        raise ObservatoryError(f"dataset {dataset!r} holds {rows[0][0]}, not {kind}; pick a {kind} dataset")
    table = "incidents" if kind == "incidents" else "measures"
    first, last = store.query(f"SELECT min(ts), max(ts) FROM {table} WHERE dataset = $d", {"d": dataset})[0]
    return str(rows[0][1]), first, last


def _covered(
    store: ObservatoryStore, filters: Filters, grain: Grain, starts: Sequence[datetime]
) -> np.ndarray:
    """Which periods the dataset fully covers: inside its first and last day (hour, for hourly
    series) and the filter's window, and holding at least one record of any category or place.

    A zero there is an observation; outside, it is only the absence of data: the week of
    31 Dec 2012 holds one day of a dataset that starts on 1 Jan 2013, and a month in which the
    source published nothing at all is a gap in the source, not a month without crime.
    """
    _, first, last = _dataset_info(store, filters.dataset, "incidents")
    ok = np.zeros(len(starts), dtype=bool)
    if first is None or last is None or not starts:
        return ok
    step = timedelta(hours=1) if grain is Grain.HOUR else timedelta(days=1)
    unit = "hour" if grain is Grain.HOUR else "day"
    begin = (
        datetime.combine(first.date(), datetime.min.time())
        if unit == "day"
        else first.replace(minute=0, second=0, microsecond=0)
    )
    end = (
        datetime.combine(last.date(), datetime.min.time())
        if unit == "day"
        else last.replace(minute=0, second=0, microsecond=0)
    ) + step
    if filters.start is not None:
        begin = max(begin, filters.start)
    if filters.end is not None:
        end = min(end, filters.end)
    rows = store.query(
        f"SELECT DISTINCT date_trunc('{grain.value}', ts) FROM incidents WHERE dataset = $d AND ts >= $a AND ts < $b",
        {"d": filters.dataset, "a": starts[0], "b": period_end(starts[-1], grain)},
    )
    present = {row[0] for row in rows}
    for i, start in enumerate(starts):
        ok[i] = start >= begin and period_end(start, grain) <= end and start in present
    return ok


def anomalies(
    store: ObservatoryStore,
    filters: Filters,
    grain: Grain = Grain.WEEK,
    *,
    area: AreaRef | None = None,
    k: int,
    analyst: bool = False,
    threshold: float = 3.5,
) -> Anomalies:
    """Anomalies of the filter's incident series (see `find_anomalies`), most extreme first.

    The baseline is fitted on exact counts (a suppressed period is still a real period of the
    series); outside the analyst role an anomaly is listed only where the published series
    shows its count, so a list can never reveal what the chart hides. `withheld` says how many
    were left out that way.
    """
    grain = Grain(grain)
    published = series(store, filters, grain, area=area, k=k, analyst=analyst)
    if not published:
        return Anomalies(notes=["no records match the filter"])
    exact = published if analyst else series(store, filters, grain, area=area, k=k, analyst=True)
    starts = [p.start for p in exact]
    covered = _covered(store, filters, grain, starts)
    values = np.array([float(p.count or 0) for p in exact])
    values[~covered] = np.nan
    found = find_anomalies(starts, values, grain, threshold=threshold)
    notes = list(found.notes)
    if (~covered).any():
        notes.append(
            f"{int((~covered).sum())} periods without data in the dataset (outside its span, partly covered or empty) were not judged"
        )
    if analyst:
        return Anomalies(found, notes=notes)
    shown_at = {p.start for p in published if not p.suppressed and p.count is not None and p.count >= k}
    listed = [a for a in found if a.start in shown_at]
    withheld = len(found) - len(listed)
    if withheld:
        notes.append(
            f"{withheld} anomalies withheld: their counts are below k={k} or hidden to protect one that is"
        )
    return Anomalies(listed, withheld=withheld, notes=notes)


def aggregation_of(variable: str) -> Aggregation:
    """How a measure combines within a period and across sites (`MEAN_PREFIXES`, else sum)."""
    return "mean" if variable.lower().startswith(MEAN_PREFIXES) else "sum"


def _measure_values(
    store: ObservatoryStore,
    dataset: str,
    variable: str,
    how: Aggregation,
    grain: Grain,
    starts: Sequence[datetime],
) -> list[float | None]:
    precision, _, _ = _dataset_info(store, dataset, "measures")
    if _PRECISION_RANK[precision] > _GRAIN_RANK[grain]:
        raise ObservatoryError(
            f"measures {dataset!r} record time by {precision}; choose a grain of {precision} or coarser"
        )
    if not store.query(
        "SELECT 1 FROM measures WHERE dataset = $d AND variable = $v LIMIT 1", {"d": dataset, "v": variable}
    ):
        names = [
            row[0]
            for row in store.query(
                "SELECT DISTINCT variable FROM measures WHERE dataset = $d ORDER BY 1", {"d": dataset}
            )
        ]
        raise ObservatoryError(f"measures {dataset!r} have no variable {variable!r}; use one of {names}")
    function = "avg" if how == "mean" else "sum"
    rows = store.query(
        f"SELECT date_trunc('{grain.value}', ts) AS period, {function}(value) FROM measures "
        "WHERE dataset = $d AND variable = $v AND ts >= $a AND ts < $b GROUP BY period",
        {"d": dataset, "v": variable, "a": starts[0], "b": period_end(starts[-1], grain)},
    )
    found = {period: float(value) for period, value in rows if value is not None}
    return [found.get(start) for start in starts]


def cross_source(
    store: ObservatoryStore,
    filters: Filters,
    grain: Grain,
    measures: Sequence[tuple[str, str] | tuple[str, str, Aggregation]],
    *,
    area: AreaRef | None = None,
    k: int,
    analyst: bool = False,
) -> CrossSource:
    """Incident counts beside other sources, period by period, with each one's correlation.

    `measures` are `(dataset, variable)` or `(dataset, variable, "sum" | "mean")`; without the
    third element `aggregation_of` decides (temperature is averaged, counts and rain summed).
    Measures are taken over their whole dataset, all sites together: a city's weather or
    footfall beside one area's incidents. Suppressed incident periods are None and stay out of
    every correlation, so a correlation cannot be used to solve for them.
    """
    grain = Grain(grain)
    points = series(store, filters, grain, area=area, k=k, analyst=analyst)
    starts = [p.start for p in points]
    incidents = [None if p.suppressed else p.count for p in points]
    notes: list[str] = []
    if area is not None:
        notes.append("measures are for their whole dataset (all sites), the incidents for the chosen area")
    zones = {
        str(row[0]): str(row[1])
        for row in store.query(
            "SELECT id, time_zone FROM datasets WHERE id IN (SELECT unnest($ids))",
            {"ids": [filters.dataset, *(m[0] for m in measures)]},
        )
    }
    columns = []
    for spec in measures:
        dataset, variable = spec[0], spec[1]
        if dataset in zones and zones[dataset] != zones.get(filters.dataset):
            notes.append(
                f"{dataset} is in {zones[dataset]} time, the incidents in {zones.get(filters.dataset)}: "
                "periods are matched on local clock time"
            )
        how: Aggregation = spec[2] if len(spec) == 3 else aggregation_of(variable)  # type: ignore[misc]
        if how not in ("sum", "mean"):
            raise ObservatoryError(
                f"aggregation {how!r} for {dataset}/{variable} is not offered; use sum or mean"
            )
        values = _measure_values(store, dataset, variable, how, grain, starts) if starts else []
        correlation, common = pearson(incidents, values)
        columns.append(MeasureSeries(dataset, variable, how, values, correlation, common))
    return CrossSource(grain=grain, starts=starts, incidents=incidents, measures=columns, notes=tuple(notes))
