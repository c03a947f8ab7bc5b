"""What every parameter model shares, below both the rules that read their parameters and the
configuration that gathers them: each rule module declares its own `Params` on this base, so that
the rules never import the configuration."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

BAG_CLASSES: tuple[str, ...] = ("backpack", "handbag", "suitcase")
VEHICLE_CLASSES: tuple[str, ...] = ("bicycle", "car", "motorcycle", "bus", "truck")


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a zone must not silently disable a detector."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_classes(classes: list[str]) -> list[str]:
    unknown = [c for c in classes if c not in COCO_CLASSES]
    if unknown:
        raise ValueError(
            f"unknown object class {unknown[0]!r}; expected COCO names such as 'person', 'car', 'suitcase'"
        )
    return classes


Seconds = Annotated[float, Field(ge=0, le=3600)]
