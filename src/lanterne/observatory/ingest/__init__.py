"""Ingest: a published table into the observatory store through its mapping file, and the
cameras' zone counts as a dataset of their own.

`readers` opens the source as a SQL relation, `expressions` turns the mapping into the per-row
values and checks, `run` is the one-transaction pass that writes rows, rejects and provenance,
and `camera_counts` copies the video store's hourly counts (OB-01).
"""

from lanterne.observatory.ingest.camera_counts import CAMERA_DATASET, ZoneCounts, import_camera_counts
from lanterne.observatory.ingest.expressions import PII_PATTERNS, personal_identifier
from lanterne.observatory.ingest.run import IngestReport, ingest, ingest_recorded, record_dataset_change

__all__ = [
    "CAMERA_DATASET",
    "PII_PATTERNS",
    "IngestReport",
    "ZoneCounts",
    "import_camera_counts",
    "ingest",
    "ingest_recorded",
    "personal_identifier",
    "record_dataset_change",
]
