"""Anonymised snapshots and clips that let an operator verify an event."""

from lanterne.video.evidence.writer import EvidenceFile, EvidenceWriter

__all__ = ["EvidenceFile", "EvidenceWriter"]
