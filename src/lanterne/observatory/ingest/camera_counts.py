"""The cameras' zone counts as an observatory dataset (`camera_counts`): the one way anything of
the video store reaches the observatory, and only as hourly counts per class and zone, with the
values below k left out (OB-01). No track, no frame, nothing per person."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Protocol
from zoneinfo import ZoneInfo

import pyarrow as pa
from h3.api import basic_int as h3

from lanterne.observatory.ingest.run import IngestReport, dataset_exists
from lanterne.observatory.store import FINEST_RESOLUTION, ObservatoryError, ObservatoryStore, lanterne_version

CAMERA_DATASET = "camera_counts"


class ZoneCounts(Protocol):
    """What is read of a zone's statistics bucket (a `CountsRow` of `Store.counts`): the camera,
    the zone, the start of the bucket and the entries per class. Nothing else crosses (OB-01)."""

    @property
    def camera(self) -> str: ...
    @property
    def zone(self) -> str: ...
    @property
    def bucket_start(self) -> datetime: ...
    @property
    def entries(self) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class _HourlyEntries:
    """Entries of one class into one camera zone during one local hour."""

    ts: datetime
    site: str
    variable: str
    h3: int
    value: int


def import_camera_counts(
    store: ObservatoryStore,
    counts: Sequence[ZoneCounts],
    cameras: dict[str, tuple[float, float]],
    *,
    k: int,
    time_zone: str,
    user_id: str,
) -> IngestReport:
    """Copy the video store's zone statistics as hourly measures (dataset `camera_counts`,
    replaced on every import): entries per class, zone and hour, located at the camera's H3
    cell. Only counts: no track, no frame, nothing per person. An hourly value below `k` is not
    copied (OB-01) and is listed in the rejects; `counts` are `CountsRow`s of `Store.counts`."""
    started = perf_counter()
    hourly = _hourly(counts, cameras, time_zone)
    kept = [h for h in hourly if h.value >= k]
    refused = [(i, h) for i, h in enumerate(hourly, start=1) if h.value < k]
    recipe = {
        "source": "zone_counts",
        "k": k,
        "time_zone": time_zone,
        "unit": "entries per class, zone and hour",
    }
    recipe_json = json.dumps(recipe, sort_keys=True)
    content = hashlib.sha256(
        json.dumps([(str(h.ts), h.site, h.variable, h.value) for h in hourly], separators=(",", ":")).encode()
    ).hexdigest()
    with store.transaction() as cur:
        for table in ("measures", "rejects"):
            cur.execute(f"DELETE FROM {table} WHERE dataset = $d", {"d": CAMERA_DATASET})
        replaced = dataset_exists(cur, CAMERA_DATASET)
        cur.execute("DELETE FROM datasets WHERE id = $d", {"d": CAMERA_DATASET})
        if kept:
            frame = pa.table(
                {
                    "ts": pa.array([h.ts for h in kept], type=pa.timestamp("us")),
                    "site": [h.site for h in kept],
                    "variable": [h.variable for h in kept],
                    "h3": pa.array([h.h3 for h in kept], type=pa.int64()),
                    "value": pa.array([float(h.value) for h in kept], type=pa.float64()),
                }
            )
            cur.register("__camera", frame)
            cur.execute(
                "INSERT INTO measures SELECT $d, ts, variable, site, h3, NULL, NULL, value FROM __camera",
                {"d": CAMERA_DATASET},
            )
            cur.unregister("__camera")
        reason = f"count below k = {k} (OB-01)"
        if refused:
            cur.executemany(
                "INSERT INTO rejects VALUES ($d, $n, 'value', $r)",
                [{"d": CAMERA_DATASET, "n": i, "r": reason} for i, _ in refused],
            )
        cur.execute(
            "INSERT INTO datasets VALUES ($id, $title, 'measures', $origin, $licence, 'zone_counts', $sha, $msha, "
            "$mjson, $tz, 'hour', $read, $loaded, $rejected, $who, $at, $version)",
            {
                "id": CAMERA_DATASET,
                "title": "Camera zone entries per hour (Lanterne statistics mode)",
                "origin": "this site's Lanterne video store, table zone_counts",
                "licence": "the operator's own data; internal use",
                "sha": content,
                "msha": hashlib.sha256(recipe_json.encode()).hexdigest(),
                "mjson": recipe_json,
                "tz": time_zone,
                "read": len(hourly),
                "loaded": len(kept),
                "rejected": len(refused),
                "who": user_id,
                "at": datetime.now(UTC).replace(tzinfo=None),
                "version": lanterne_version(),
            },
        )
    return IngestReport(
        dataset=CAMERA_DATASET,
        rows_read=len(hourly),
        rows_loaded=len(kept),
        rows_rejected=len(refused),
        rejects_by_reason={f"value: {reason}": len(refused)} if refused else {},
        sha256=content,
        seconds=perf_counter() - started,
        replaced=replaced,
        measures_loaded=len(kept),
    )


def _hourly(
    counts: Sequence[ZoneCounts], cameras: dict[str, tuple[float, float]], time_zone: str
) -> list[_HourlyEntries]:
    """Entries summed per local hour, zone and class, in that order; a camera missing from the
    site config is refused rather than placed nowhere."""
    zone = ZoneInfo(time_zone)
    totals: dict[tuple[datetime, str, str], int] = {}
    for row in counts:
        local = row.bucket_start.astimezone(zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        for cls, n in row.entries.items():
            key = (local, f"{row.camera}/{row.zone}", f"entries_{cls}".replace(" ", "_"))
            totals[key] = totals.get(key, 0) + int(n)
    unknown = sorted({site.split("/")[0] for _, site, _ in totals} - set(cameras))
    if unknown:
        raise ObservatoryError(
            f"zone counts of camera {unknown[0]!r}, which is not in the site config; add it or purge its counts"
        )
    return [
        _HourlyEntries(
            ts, site, variable, h3.latlng_to_cell(*cameras[site.split("/")[0]], FINEST_RESOLUTION), n
        )
        for (ts, site, variable), n in sorted(totals.items())
    ]
