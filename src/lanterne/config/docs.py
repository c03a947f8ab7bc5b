"""Generate `docs/config.md` from the schema, so the reference can never drift from the code.

`lanterne config docs -o docs/config.md` rewrites it; a test fails when the committed file differs
from what the schema produces. Each event type has a worked example, and a test loads every
example through the real validator.
"""

from __future__ import annotations

import json
import types
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from lanterne.config.schema import Config, ZoneEvents

EXAMPLES: dict[str, str] = {
    "zone_intrusion": """\
zones:
  - id: track-side
    polygon: [[0.05, 0.6], [0.95, 0.6], [0.95, 0.95], [0.05, 0.95]]
    events:
      zone_intrusion: {classes: [person], min_seconds: 1}
""",
    "wrong_way": """\
zones:
  - id: one-way-street
    polygon: [[0.0, 0.4], [1.0, 0.4], [1.0, 0.9], [0.0, 0.9]]
    events:
      wrong_way: {direction: [1, 0], classes: [car, bicycle, motorcycle], min_seconds: 1}
""",
    "crowd_density": """\
zones:
  - id: station-stairs
    polygon: [[0.2, 0.3], [0.8, 0.3], [0.9, 1.0], [0.1, 1.0]]
    events:
      crowd_density: {max_people: 6, min_seconds: 2}
""",
    "crowd_movement": """\
zones:
  - id: square
    polygon: [[0.0, 0.2], [1.0, 0.2], [1.0, 1.0], [0.0, 1.0]]
    events:
      crowd_movement: {min_speed: 0.15, min_moving_share: 0.25, min_coherence: 0.5, min_seconds: 1}
""",
    "abandoned_object": """\
zones:
  - id: concourse
    polygon: [[0.0, 0.35], [1.0, 0.35], [1.0, 1.0], [0.0, 1.0]]
    events:
      abandoned_object: {classes: [backpack, handbag, suitcase], min_seconds: 60, owner_distance: 2}
""",
    "person_down": """\
zones:
  - id: underpass
    polygon: [[0.1, 0.3], [0.9, 0.3], [0.9, 1.0], [0.1, 1.0]]
    events:
      person_down: {min_seconds: 5, fall_seconds: 2, min_upright_seconds: 1}
""",
    "fire": """\
zones:
  - id: bins
    polygon: [[0.6, 0.5], [0.95, 0.5], [0.95, 0.95], [0.6, 0.95]]
    events:
      fire: {experimental: true, min_seconds: 3, min_area: 0.01}
""",
    "weapon": """\
# Refused at load: no validated weapon-detection model with a permissive licence exists.
zones:
  - id: entrance
    polygon: [[0, 0], [1, 0], [1, 1]]
    events:
      weapon: {}
""",
}

FULL_EXAMPLE = """\
mode: alerts            # or: statistics (counts only, never a frame written)
site: Ville de Exemple
cameras:
  - id: cam-01
    name: Place de la Gare, north
    source: rtsp://10.0.0.21/stream1        # or a file path
    location: {lat: 45.7640, lon: 4.8357}
    fps: 5
    zones:
      - id: forecourt
        polygon: [[0.0, 0.4], [1.0, 0.4], [1.0, 1.0], [0.0, 1.0]]
        events:
          crowd_density: {max_people: 30, min_seconds: 5}
          abandoned_object: {min_seconds: 60}
store:
  url: sqlite:///lanterne.db
  evidence_dir: evidence
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if annotation is type(None):
        return "null"
    if origin is Literal:
        return " \\| ".join(json.dumps(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in get_args(annotation))
    if origin in (list, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        inner = ", ".join(_type_name(a) for a in args)
        return f"list[{inner}]" if origin is list else f"[{inner}]"
    if origin is dict:
        k, v = get_args(annotation)
        return f"map {_type_name(k)} → {_type_name(v)}"
    if get_origin(annotation) is not None and hasattr(annotation, "__origin__"):
        return _type_name(get_args(annotation)[0])
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return " \\| ".join(f'"{m.value}"' for m in annotation)
        if issubclass(annotation, BaseModel):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "see section"
    if isinstance(value, Enum):
        value = value.value
    return f"`{json.dumps(value, default=str)}`"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def visit(m: type[BaseModel]) -> None:
        if m in seen:
            return
        seen.append(m)
        for f in m.model_fields.values():
            stack = [f.annotation]
            while stack:
                a = stack.pop()
                if isinstance(a, type) and issubclass(a, BaseModel):
                    visit(a)
                stack.extend(get_args(a))

    visit(root)
    return seen


def model_tables(root: type[BaseModel]) -> list[str]:
    """One Markdown table per model reachable from `root`: key, type, default, title, description."""
    lines: list[str] = []
    for model in _models(root):
        lines += [f"## {model.__name__}", ""]
        doc = (model.__doc__ or "").strip()
        if doc and model.__doc__ is not BaseModel.__doc__:
            lines += [doc.splitlines()[0], ""]
        lines += ["| key | type | default | title | description |", "|---|---|---|---|---|"]
        for name, f in model.model_fields.items():
            lines.append(
                f"| `{name}` | {_type_name(f.annotation)} | {_default(f)} | {f.title or ''} | {f.description or ''} |"
            )
        lines.append("")
    return lines


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `lanterne config docs -o docs/config.md` from `src/lanterne/config/schema.py`. "
        "Do not edit by hand. -->",
        "",
        "Lanterne reads one YAML file. Unknown keys are errors, so a typo cannot silently switch a "
        "detector off. Check a file with `lanterne config check FILE`; a mistake is reported with its "
        "key path, e.g. `cameras[0].zones[1].polygon: needs at least 3 points`.",
        "",
        "Only the 8 event types of décret 2023-828 art. 3 exist; any other name under `events` is rejected.",
        "",
        "## Complete example",
        "",
        "```yaml",
        FULL_EXAMPLE.rstrip(),
        "```",
        "",
    ]
    lines += model_tables(Config)
    lines += ["## Worked examples, one per event type", ""]
    for name in ZoneEvents.model_fields:
        f = ZoneEvents.model_fields[name]
        lines += [f"### `{name}`", "", f.description or "", "", "```yaml", EXAMPLES[name].rstrip(), "```", ""]
    return "\n".join(lines)
