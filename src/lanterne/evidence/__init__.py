"""Anonymised snapshots and clips that let an operator verify an event."""

from lanterne.evidence.writer import EvidenceFile, EvidenceWriter

__all__ = ["EvidenceFile", "EvidenceWriter"]
