"""Boundary layers: the polygons (police beats, arrondissements, départements) that maps count by,
and the table that says which polygon holds each stored H3 cell.

Rows reach a layer in one of two ways: the source gave the area's code (Chicago's `beat`, the
INSEE commune of a road accident), or it gave a point, kept only as its resolution-10 H3 cell.
Counting by polygon for the second kind needs a point-in-polygon test, done once per cell and
layer version (`layer_cells`) rather than once per row and query: 1.4 M Chicago rows fall in
about 60,000 distinct cells, and a map is then a join on an integer.

A cell belongs to the polygon holding its centre. Cells straddling a border are therefore
counted wholly on one side: at resolution 10 (edge about 66 m) that moves a few rows near each
border, far less than the disagreement between recorded and geometric beats (about 8 % in
Chicago, SOURCES.md).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from h3.api import basic_int as h3int

from lanterne.config.schema import BoundaryLayer
from lanterne.observatory.store import ObservatoryError, ObservatoryStore

DISPLAY_DECIMALS = 5
"""Coordinates sent to the console and reports: 5 decimals is about 1 m, below what a choropleth
can show, and keeps the 277 Chicago beats under 1 MB."""


@dataclass(frozen=True)
class Layer:
    """One boundary file as loaded: the codes rows can carry, readable labels, and a light copy of
    the polygons for maps. `sha256` identifies the file's version; `layer_cells` rows of another
    version are stale."""

    id: str
    sha256: str
    codes: tuple[str, ...]
    labels: dict[str, str]
    geojson: dict[str, Any] = field(repr=False)
    polygons: tuple[shapely.Geometry, ...] = field(default=(), repr=False, compare=False)
    """Full-precision geometry per code, in the order of `codes` (used for the cell lookup)."""


def area_code(value: object) -> str | None:
    """A layer's code as text: GeoJSON writers store `beat_num` 1713 as a number, the same code
    as `1713` or `1713.0` in a CSV. Integers lose nothing by becoming their decimal text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


_CACHE: dict[tuple[str, str, int, int, str, str | None], Layer] = {}
_CACHE_LOCK = threading.Lock()


def load_layer(settings: BoundaryLayer) -> Layer:
    """Read a layer's GeoJSON (WGS84 Polygon/MultiPolygon). Cached per file and modification
    time: the console asks for the same layer on every map request."""
    path = Path(settings.file)
    try:
        stat = path.stat()
    except OSError:
        raise ObservatoryError(
            f"boundary file {path.name} of layer {settings.id} not found; check observatory.layers[].file"
        ) from None
    key = (settings.id, str(path.resolve()), stat.st_mtime_ns, stat.st_size, settings.key, settings.label)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    layer = _read_layer(settings, path)
    with _CACHE_LOCK:
        _CACHE[key] = layer
    return layer


def _read_layer(settings: BoundaryLayer, path: Path) -> Layer:
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ObservatoryError(
            f"boundary file {path.name} is not valid GeoJSON ({exc}); export it again"
        ) from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list) or not features:
        raise ObservatoryError(f"boundary file {path.name} has no features; give a GeoJSON FeatureCollection")

    parts: dict[str, list[shapely.Geometry]] = {}
    labels: dict[str, str] = {}
    for number, feature in enumerate(features, start=1):
        properties = feature.get("properties") or {}
        if settings.key not in properties:
            raise ObservatoryError(
                f"feature {number} of {path.name} has no property {settings.key!r}; "
                f"set observatory.layers[{settings.id}].key to one of {sorted(properties)}"
            )
        code = area_code(properties[settings.key])
        if code is None:
            raise ObservatoryError(
                f"feature {number} of {path.name} has an empty {settings.key!r}; fix the file"
            )
        geometry = feature.get("geometry") or {}
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise ObservatoryError(
                f"feature {number} of {path.name} is a {geometry.get('type')}, not a polygon; "
                "boundary layers need Polygon or MultiPolygon features"
            )
        try:
            shape = shapely.from_geojson(json.dumps(geometry))
        except shapely.errors.GEOSException as exc:
            raise ObservatoryError(f"feature {number} of {path.name} has broken geometry ({exc})") from None
        if not shape.is_valid:
            # Self-touching rings are common in simplified municipal files; make_valid keeps the area.
            shape = shapely.make_valid(shape)
        parts.setdefault(code, []).append(shape)
        label = properties.get(settings.label) if settings.label else None
        labels.setdefault(code, str(label) if label is not None else code)

    codes = tuple(parts)
    # A code split over several features (islands drawn separately) is one area.
    polygons = tuple(
        shapes[0] if len(shapes) == 1 else shapely.union_all(shapes) for shapes in (parts[c] for c in codes)
    )
    geojson = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": code, "label": labels[code]},
                "geometry": json.loads(
                    shapely.to_geojson(shapely.transform(shape, lambda xy: np.round(xy, DISPLAY_DECIMALS)))
                ),
            }
            for code, shape in zip(codes, polygons, strict=True)
        ],
    }
    return Layer(
        id=settings.id,
        sha256=hashlib.sha256(raw).hexdigest(),
        codes=codes,
        labels=labels,
        geojson=geojson,
        polygons=polygons,
    )


def locate_cells(layer: Layer, cells: np.ndarray) -> list[str | None]:
    """The code of the area holding each H3 cell's centre, None outside every polygon."""
    if len(cells) == 0:
        return []
    centres = np.array([h3int.cell_to_latlng(int(c)) for c in cells], dtype=np.float64)
    points = shapely.points(centres[:, 1], centres[:, 0])
    tree = shapely.STRtree(layer.polygons)
    point_index, area_index = tree.query(points, predicate="within")
    found = np.full(len(cells), -1, dtype=np.int64)
    # A centre exactly on a shared border matches two areas; reversing makes the lowest area
    # index win, so the answer does not depend on the tree's internal order.
    found[point_index[::-1]] = area_index[::-1]
    return [layer.codes[i] if i >= 0 else None for i in found]


def ensure_layer_cells(store: ObservatoryStore, layer: Layer) -> int:
    """Index every stored H3 cell not yet placed in this version of the layer; drop rows of older
    versions. Returns the number of cells added. Idempotent, so ingest calls it after every load
    and the console never has to."""
    with store.transaction() as cur:
        cur.execute(
            "DELETE FROM layer_cells WHERE layer = $layer AND layer_sha256 <> $sha",
            {"layer": layer.id, "sha": layer.sha256},
        )
        missing = cur.execute(
            """SELECT h3 FROM (
                   SELECT DISTINCT h3 FROM incidents WHERE h3 IS NOT NULL
                   UNION SELECT DISTINCT h3 FROM measures WHERE h3 IS NOT NULL
               ) AS stored
               ANTI JOIN (SELECT h3 FROM layer_cells WHERE layer = $layer AND layer_sha256 = $sha) AS known
               USING (h3)""",
            {"layer": layer.id, "sha": layer.sha256},
        ).fetchnumpy()["h3"]
        if len(missing) == 0:
            return 0
        cells = np.asarray(missing, dtype=np.int64)
        new_cells = pd.DataFrame(
            {
                "layer": layer.id,
                "layer_sha256": layer.sha256,
                "h3": cells,
                "area_code": pd.array(locate_cells(layer, cells), dtype="string"),
            }
        )
        cur.register("new_cells", new_cells)
        try:
            cur.execute("INSERT INTO layer_cells SELECT layer, layer_sha256, h3, area_code FROM new_cells")
        finally:
            cur.unregister("new_cells")
        return len(cells)
