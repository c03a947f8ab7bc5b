"""Whether a dotted name the docs cite (a module, a package, or a name inside one) exists."""

from __future__ import annotations

import importlib
import importlib.util


def module_exists(dotted: str) -> bool:
    """A module or package, or a name defined in one (`lanterne.rules.rule_for`)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # a name inside a module (`lanterne.core.types.EventType`)
            spec = None
        if spec is None:
            continue
        obj: object = importlib.import_module(name)
        for attr in parts[n:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False
