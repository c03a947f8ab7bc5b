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

from lanterne.core.errors import ConfigError

MESSAGE = (
    "weapon: no validated weapon-detection model is installed (none with a permissive "
    "licence exists); remove 'weapon' from this zone's events"
)
"""Same words as the configuration validator (`ZoneEvents`), so the user reads one message
whichever layer catches the request first."""


def refuse() -> NoReturn:
    raise ConfigError(MESSAGE)
