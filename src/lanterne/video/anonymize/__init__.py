"""Anonymisation of every frame that leaves memory: faces, licence plates and the head region of
every person are pixelated before a snapshot, clip or console image is written or shown.

Face and plate boxes stay inside this package: its public functions return images, counts and
statistics, never the boxes themselves."""

from lanterne.video.anonymize.anonymizer import BlurCounts, DefaultAnonymizer
from lanterne.video.anonymize.base import Anonymizer
from lanterne.video.anonymize.clip import ClipStats, anonymize_clip
from lanterne.video.anonymize.memory import FrameMemory
from lanterne.video.anonymize.pixelate import block_size, pixelate

__all__ = [
    "Anonymizer",
    "BlurCounts",
    "ClipStats",
    "DefaultAnonymizer",
    "FrameMemory",
    "anonymize_clip",
    "block_size",
    "pixelate",
]
