"""Weapon: refused, on purpose.

Décret 2023-828 lists the presence of a weapon among the events an operator may be alerted to,
so the type exists in the closed list. But no weapon-detection model with a permissive licence
and a published validation on public-space footage exists: the open ones are trained on a few
thousand web pictures of handguns, are under licences that forbid redistribution, or report no
false-alarm rate at all. A rule that cries "weapon" at umbrellas and phones would do more harm
than none, so Lanterne has no weapon rule and refuses a configuration that asks for one.
"""

from __future__ import annotations

from typing import NoReturn

from pydantic import Field

from lanterne.core.errors import ConfigError
from lanterne.core.params import Strict
from lanterne.core.types import EventType
from lanterne.rules.base import EventInfo

MESSAGE = (
    "weapon: no validated weapon-detection model is installed (none with a permissive "
    "licence exists); remove 'weapon' from this zone's events"
)
"""The one refusal text: the configuration validator (`ZoneEvents`) raises it too, so the user
reads one message whichever layer catches the request first."""


class WeaponParams(Strict):
    """Declared so that the closed list is complete; validation always refuses it."""

    model: str | None = Field(
        None,
        title="Weapon model",
        description="Name of a validated weapon-detection model. None is installed.",
    )


EXAMPLE = """\
# Refused at load: no validated weapon-detection model with a permissive licence exists.
zones:
  - id: entrance
    polygon: [[0, 0], [1, 0], [1, 1]]
    events:
      weapon: {}
"""

INFO = EventInfo(
    type=EventType.WEAPON,
    params=WeaponParams,
    title="Weapon",
    summary="Refused: no validated weapon model exists.",
    method="None: no validated weapon-detection model exists, so no weapon rule is installed.",
    known_limits=(),
    example=EXAMPLE,
)
"""Only what is said about the type: there is no `SPEC`, since there is no rule to run."""


def refuse() -> NoReturn:
    raise ConfigError(MESSAGE)
