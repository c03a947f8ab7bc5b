"""The demo deployment used by the README's main job: the PETS 2009 S2.L1 campus crossroads
(`vtest.avi`, 768x576, 10 fps). Zones are drawn on what that camera sees: the lawn in the
foreground, the paved crossroads where people walk."""

from __future__ import annotations

from typing import Any

LAWN = [[0.0, 0.46], [0.39, 0.55], [0.57, 0.66], [0.78, 0.78], [1.0, 0.91], [1.0, 1.0], [0.0, 1.0]]
CROSSROADS = [
    [0.0, 0.3],
    [0.55, 0.26],
    [0.92, 0.2],
    [1.0, 0.3],
    [1.0, 0.84],
    [0.75, 0.72],
    [0.45, 0.5],
    [0.0, 0.44],
]

DEMO_CONFIG: dict[str, Any] = {
    "mode": "alerts",
    "site": "Demo: PETS 2009 campus crossroads",
    "cameras": [
        {
            "id": "pets-crossroads",
            "name": "Campus crossroads (PETS 2009 S2.L1, view 1)",
            "source": "vtest.avi",
            "location": {"lat": 51.4417, "lon": -0.9403},
            "fps": 5,
            "zones": [
                {
                    "id": "lawn",
                    "polygon": LAWN,
                    "events": {"zone_intrusion": {"classes": ["person"], "min_seconds": 2}},
                },
                {
                    "id": "crossroads",
                    "polygon": CROSSROADS,
                    "events": {
                        "crowd_density": {"max_people": 5, "min_seconds": 2},
                        "wrong_way": {"direction": [1, 0], "classes": ["person"], "min_seconds": 1.5},
                        "person_down": {"min_seconds": 5},
                        "abandoned_object": {"min_seconds": 20},
                    },
                },
            ],
        }
    ],
}
