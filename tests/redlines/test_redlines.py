"""The red lines, shown by tests: no biometric or re-identification capability, no audio, no
identity in an event, a closed list of event types.

These do not prove a negative in general; they make each known way of crossing a line fail
the build: a dependency, an import, a field, an API that returns face boxes.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

import lanterne
from lanterne.core.types import Event, EventType, TrackedObject

SRC = Path(lanterne.__file__).resolve().parent

FORBIDDEN_DISTRIBUTIONS = {
    # face recognition, face embeddings, re-identification
    "face-recognition", "face_recognition", "dlib", "deepface", "insightface", "facenet-pytorch",
    "arcface", "torchreid", "fast-reid", "fastreid", "boxmot", "opencv-contrib-python",
    "opencv-contrib-python-headless", "mediapipe", "compreface-sdk", "retinaface",
    # emotion / attribute / demographic classifiers
    "fer", "py-feat", "age-gender-estimation",
    # audio capture or analysis
    "pyaudio", "sounddevice", "soundfile", "librosa", "speechrecognition", "openai-whisper",
    "faster-whisper", "vosk", "pydub",
}  # fmt: skip


def runtime_closure(name: str = "lanterne") -> set[str]:
    """Every distribution installed because Lanterne needs it at run time (extras excluded)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        n = todo.pop().lower().replace("_", "-")
        if n in seen:
            continue
        seen.add(n)
        try:
            reqs = distribution(n).requires or []
        except Exception:
            continue
        for r in reqs:
            req = Requirement(r)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            todo.append(req.name)
    return seen


def test_no_biometric_reid_or_audio_dependency() -> None:
    closure = runtime_closure()
    assert "onnxruntime" in closure and "av" in closure  # the walk works
    bad = {d for d in closure if d in {f.lower().replace("_", "-") for f in FORBIDDEN_DISTRIBUTIONS}}
    assert not bad, f"forbidden packages in Lanterne's dependencies: {sorted(bad)}"


FORBIDDEN_WORDS = {
    "recognizer", "recognition", "recognize", "embedding", "embeddings", "reid", "reidentify",
    "reidentification", "gait", "emotion", "emotions", "gender", "ethnicity", "biometric",
    "biometrics", "demographics", "audio", "sound", "microphone",
}  # fmt: skip


def words(identifier: str) -> set[str]:
    """`FaceRecognizerSF` → {face, recognizer, sf}; `streams.audio` → {streams, audio}."""
    parts = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", identifier)
    return {p.lower() for p in parts}


def test_source_never_touches_recognition_or_audio_apis() -> None:
    hits = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Only code, not prose: docstrings and comments may explain what is refused.
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute | ast.alias):
                text = ast.unparse(node) if not isinstance(node, ast.alias) else node.name
                bad = words(text) & FORBIDDEN_WORDS
                if bad:
                    hits.append(f"{path.relative_to(SRC)}:{getattr(node, 'lineno', '?')}: {text}")
    assert not hits, hits


def test_word_splitter_catches_known_apis() -> None:
    assert words("cv2.FaceRecognizerSF") & FORBIDDEN_WORDS
    assert words("container.streams.audio") & FORBIDDEN_WORDS
    assert not words("ZoneMotion") & FORBIDDEN_WORDS


def test_event_carries_no_identity() -> None:
    fields = {f.name for f in dataclasses.fields(Event)}
    assert fields == {
        "id", "type", "camera", "zone", "start", "end", "confidence", "region",
        "ongoing", "object_class", "model_hash", "config_hash",
    }  # fmt: skip
    tracked = {f.name for f in dataclasses.fields(TrackedObject)}
    assert tracked == {"track_id", "label", "box", "confidence"}, "no appearance, no attribute"


def test_closed_event_list() -> None:
    assert sorted(t.value for t in EventType) == sorted(
        ["abandoned_object", "weapon", "wrong_way", "zone_intrusion", "person_down",
         "crowd_movement", "crowd_density", "fire"]
    )  # fmt: skip


def _public_callables() -> list[tuple[str, object]]:
    out = []
    for mod in pkgutil.walk_packages([str(SRC)], prefix="lanterne."):
        if ".migrations" in mod.name:
            continue
        m = importlib.import_module(mod.name)
        for name, obj in vars(m).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != m.__name__:
                continue
            if inspect.isfunction(obj):
                out.append((f"{m.__name__}.{name}", obj))
            elif inspect.isclass(obj):
                for mname, meth in vars(obj).items():
                    if not mname.startswith("_") and inspect.isfunction(meth):
                        out.append((f"{m.__name__}.{name}.{mname}", meth))
    return out


def test_no_engine_api_is_about_faces() -> None:
    """Face detection exists only to blur, inside `lanterne.video.anonymize`, behind private names."""
    offenders = [
        n for n, fn in _public_callables()
        if re.search(r"face", n.rsplit(".", 1)[-1], re.IGNORECASE)
        or re.search(r"face", str(inspect.signature(fn).return_annotation), re.IGNORECASE)
    ]  # fmt: skip
    assert not offenders, offenders


def test_anonymizer_returns_only_an_image() -> None:
    from lanterne.video.anonymize.anonymizer import DefaultAnonymizer

    img = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    out = DefaultAnonymizer(None).anonymize(img, [(100, 100, 160, 300)], [])
    assert isinstance(out, np.ndarray) and out.shape == img.shape and out is not img


@pytest.mark.parametrize("word", ["clothing", "colour", "color", "sex", "gender", "age", "ethnic", "face"])
def test_no_config_key_selects_people_by_attribute(word: str) -> None:
    from lanterne.config.docs import _models
    from lanterne.config.schema import Config

    keys = [k for m in _models(Config) for k in m.model_fields]
    assert not [k for k in keys if re.search(rf"(^|_){word}(_|$)", k)]
