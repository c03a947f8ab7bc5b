"""Event rules, one module per event type of décret 2023-828 art. 3.

Each module holds everything about its type: its parameters (`Params`), its state and `step`,
and what is said about it (`EventInfo`: title, method, known limits, worked example). The
configuration, the public page and the DPIA read the vocabulary below rather than keeping their
own copies.

`RULES` is the registry the pipeline drives: one `RuleSpec` per type, every type but `weapon`,
which has no model to rest on and is refused (see `lanterne.rules.weapon`).
"""

from __future__ import annotations

from typing import Any

from lanterne.core.errors import ConfigError
from lanterne.core.types import EventType
from lanterne.rules import (
    abandoned_object,
    crowd_density,
    crowd_movement,
    fire,
    person_down,
    weapon,
    wrong_way,
    zone_intrusion,
)
from lanterne.rules.base import EventInfo, RuleSpec

RULES: dict[EventType, RuleSpec[Any, Any]] = {
    m.SPEC.type: m.SPEC
    for m in (
        zone_intrusion,
        wrong_way,
        crowd_density,
        crowd_movement,
        abandoned_object,
        person_down,
        fire,
    )
}

EVENTS: dict[EventType, EventInfo] = {
    **{t: spec.info for t, spec in RULES.items()},
    EventType.WEAPON: weapon.INFO,
}
"""Every type of the closed list, in the order of the configuration's `events` keys."""

EVENT_TITLES: dict[EventType, str] = {t: EVENTS[t].title for t in EventType}
"""What the console, the public page and the DPIA call each event type. Built over the whole
`EventType`, so a member without a rule module fails at import."""

DETECTOR_TYPES: frozenset[EventType] = frozenset(t for t, spec in RULES.items() if spec.uses_detector)
"""Event types whose rule reads the object detector's boxes; crowd movement and fire read pixels
through a classical method and use no learned model."""


def rule_for(t: EventType) -> RuleSpec[Any, Any]:
    """The rule of one event type; a weapon rule is refused with the configuration's message."""
    if t is EventType.WEAPON:
        weapon.refuse()
    try:
        return RULES[t]
    except KeyError:
        raise ConfigError(
            f"{t}: this event type has no rule installed; remove it from the zone's events"
        ) from None
