"""Recording: each camera's own stream kept encrypted at rest, in short hash-chained segments,
for at most 30 days (issue 11). Write with `Recorder`; read only through `open_segment`, which
checks every byte; prove the whole with `verify`. See docs/recording.md."""

from lanterne.core.errors import RecordingError
from lanterne.video.recording.index import SegmentRow, Span, segments, timeline
from lanterne.video.recording.keys import KeyRing
from lanterne.video.recording.reader import Problem, open_segment, verify
from lanterne.video.recording.writer import CameraRecorder, Recorder, recording_mode

__all__ = [
    "CameraRecorder",
    "KeyRing",
    "Problem",
    "Recorder",
    "RecordingError",
    "SegmentRow",
    "Span",
    "open_segment",
    "recording_mode",
    "segments",
    "timeline",
    "verify",
]
