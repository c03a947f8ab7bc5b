"""Detector backends, chosen by `detector.backend` in the configuration.

Importing a backend module registers it; this package imports the ones that ship, so that
`create_detector` finds them without the caller knowing module names."""

from __future__ import annotations

from pathlib import Path

from lanterne.config.schema import DetectorSettings
from lanterne.core.errors import ConfigError
from lanterne.video.detectors import onnx_yolox as _onnx_yolox  # noqa: F401  (registers "onnxruntime")
from lanterne.video.detectors.base import REGISTRY, Detector, PixelBox

__all__ = ["Detector", "PixelBox", "create_detector"]


def create_detector(settings: DetectorSettings, models_dir: Path | None = None) -> Detector:
    """The configured backend, its model checked by sha256 and loaded.

    >>> from lanterne.config.schema import DetectorSettings
    >>> create_detector(DetectorSettings()).model_name
    'yolox_nano'
    """
    factory = REGISTRY.get(settings.backend)
    if factory is None:
        raise ConfigError(
            f"detector backend {settings.backend!r} is not installed; available: {', '.join(sorted(REGISTRY))}"
        )
    return factory(settings, models_dir)
