"""What the observatory tests share: the published data files (in ../shared, never copied into the
repository, and never skipped when missing), the Chicago police layers, k, and the two shortcuts a
test uses when it builds a store by direct insert because it is about arithmetic, not ingest (a
dataset's provenance row, resolution-10 H3 cells)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
from h3.api import basic_int as h3int

from lanterne.config.schema import BoundaryLayer

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "observatory"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "observatory"
CHICAGO = DATA / "chicago_crimes_2013_2017.parquet"
BAAC = DATA / "fr_road_injury_accidents_baac_2005_2020.parquet"
BIKES = DATA / "paris_bike_counts_weather_hourly_2019_2022.csv.gz"
AUCKLAND = DATA / "auckland_pedestrian_counts_hourly_2019_2025.csv.gz"
DANSMARUE = DATA / "paris_dansmarue_sample_2023_2024.csv.gz"
SSMSI = DATA / "fr_ssmsi_delinquance_departements_2016_2022.csv.gz"
BOUNDARIES = DATA / "boundaries"
BEATS = BoundaryLayer(id="beats", file=BOUNDARIES / "chicago_police_beats_2012.geojson", key="beat_num")
DISTRICTS = BoundaryLayer(
    id="districts",
    file=BOUNDARIES / "chicago_police_districts_2012.geojson",
    key="district",
    label="dist_label",
)
K = 10
"""The default small-cell threshold (observatory.min_count)."""


def h3_cells(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(resolution-10 cells as BIGINT, located): the cell is 0 where a coordinate is missing,
    so store it only where `located`, as ingest does."""
    located = ~(np.isnan(lat) | np.isnan(lon))
    cells = np.zeros(lat.size, dtype=np.int64)
    cells[located] = [
        h3int.latlng_to_cell(a, b, 10)
        for a, b in zip(lat[located].tolist(), lon[located].tolist(), strict=True)
    ]
    return cells, located


def register_dataset(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    *,
    kind: str = "incidents",
    source: str = "test",
    time_zone: str = "Europe/Paris",
    precision: str = "minute",
    rows: int = 0,
) -> None:
    """The provenance row ingest would write, so the aggregation sees the dataset's kind, time
    zone and precision; every other field is a placeholder no test reads."""
    con.execute(
        """INSERT INTO datasets VALUES ($id, $id, $kind, 'test', 'test', $source, 'test', 'test', '{}',
           $zone, $precision, $rows, $rows, 0, 'test', now(), 'test')""",
        {
            "id": dataset,
            "kind": kind,
            "source": source,
            "zone": time_zone,
            "precision": precision,
            "rows": rows,
        },
    )


# A file of bad rows (one refusal reason per row) and its mapping, for ingest on every store.
BAD_CSV = """when;lat;lon;kind;who;n
2021-03-04 10:15;48,85;2,35;Vol;citizen;1
2021-13-45 10:00;48,85;2,35;Vol;citizen;1
2021-03-04 11:00;95,0;2,35;Vol;citizen;1
2021-03-04 11:00;abc;2,35;Vol;citizen;1
2021-03-04 11:00;48,85;2,35;Vol;martian;1
2021-03-04 11:00;48,85;2,35;jean.dupont@example.org;citizen;1
2021-03-04 11:00;48,85;2,35;06 12 34 56 78;citizen;1
2021-03-04 11:00;48,85;2,35;Vol;police;-3
2021-03-04 11:00;48,85;2,35;Vol;police;2,5
2021-03-04 11:00;48,85;2,35;;police;1
2021-03-04 12:00;;;Dégradation;POLICE;4
2021-03-04 11:00;48,85;2,35;AB-123-CD;citizen;1
2021-03-04 11:00;48,85;2,35;1 85 05 78 006 084 36;citizen;1
;48,85;2,35;Vol;citizen;1
2021-03-04 11:00;48,85;;Vol;citizen;1
"""

BAD_MAPPING = {
    "id": "bad_rows",
    "title": "Bad rows",
    "kind": "incidents",
    "origin": "test",
    "licence": "test",
    "csv": {"delimiter": ";", "decimal": ","},
    "time": {
        "column": "when",
        "format": "%Y-%m-%d %H:%M",
        "time_zone": "Europe/Paris",
        "precision": "minute",
    },
    "location": {"lat": "lat", "lon": "lon"},
    "category": {"column": "kind"},
    "channel": {"column": "who", "values": {"citizen": "citizen_report", "police": "police_initiated"}},
    "count": "n",
}
