"""Event rules, one module per event type of décret 2023-828 art. 3.

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
from lanterne.rules.base import RuleSpec

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


EVENT_TITLES: dict[EventType, str] = {
    EventType.ABANDONED_OBJECT: "Abandoned object",
    EventType.WEAPON: "Weapon",
    EventType.WRONG_WAY: "Wrong way",
    EventType.ZONE_INTRUSION: "Zone intrusion",
    EventType.PERSON_DOWN: "Person down",
    EventType.CROWD_MOVEMENT: "Crowd movement",
    EventType.CROWD_DENSITY: "Crowd density",
    EventType.FIRE: "Fire (experimental)",
}
"""What the console, the public page and the DPIA call each event type."""


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
