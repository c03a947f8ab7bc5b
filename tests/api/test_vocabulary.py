"""`GET /api/vocabulary`: the console's pages read the event titles, follow-ups and dismissal
reasons from the server, so these must be the Python lists themselves (the ones the store's CHECK
constraints and the decision rules use), in their order, with a label for each, and only for a
logged-in user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lanterne.accountability.alerts import DISMISS_REASON_LABELS, FOLLOW_UP_LABELS
from lanterne.core.types import EventType
from lanterne.rules import EVENT_TITLES
from lanterne.store.tables import DISMISS_REASONS, FOLLOW_UPS
from tests.support.console import Clock, Console, open_console, site_config

pytestmark = pytest.mark.usefixtures("cheap_hashes")

EXPECTED = {
    "event_types": [
        {"id": "abandoned_object", "title": "Abandoned object"},
        {"id": "weapon", "title": "Weapon"},
        {"id": "wrong_way", "title": "Wrong way"},
        {"id": "zone_intrusion", "title": "Zone intrusion"},
        {"id": "person_down", "title": "Person down"},
        {"id": "crowd_movement", "title": "Crowd movement"},
        {"id": "crowd_density", "title": "Crowd density"},
        {"id": "fire", "title": "Fire (experimental)"},
    ],
    "follow_ups": [
        {"id": "none", "label": "none"},
        {"id": "monitoring", "label": "monitoring"},
        {"id": "field_request", "label": "field request"},
        {"id": "emergency_services", "label": "emergency services"},
    ],
    "dismissal_reasons": [
        {"id": "reflection_or_light", "label": "reflection or light"},
        {"id": "street_furniture", "label": "street furniture"},
        {"id": "person_at_rest", "label": "person at rest"},
        {"id": "owner_nearby", "label": "owner nearby"},
        {"id": "test", "label": "test"},
        {"id": "other", "label": "other (say what)"},
    ],
}
"""What the alert queue showed when these lists were hard-coded in queue.js (the fire title now
says what the rest of the system says: experimental)."""


@pytest.fixture
def console(tmp_path: Path, clock: Clock) -> Iterator[Console]:
    """SQLite only: the vocabulary reads no table, so a second backend would test nothing more."""
    yield from open_console(site_config(f"sqlite:///{tmp_path / 'lanterne.db'}", tmp_path), clock)


@pytest.mark.parametrize("login", ["oper-nord", "sup", "audi"])
def test_every_logged_in_role_gets_the_vocabulary_in_order(console: Console, login: str) -> None:
    console.as_user(login)
    r = console.client.get("/api/vocabulary")
    assert r.status_code == 200
    assert r.json() == EXPECTED


def test_vocabulary_is_the_python_lists(console: Console) -> None:
    console.as_user("oper")
    body = console.client.get("/api/vocabulary").json()
    assert [t["id"] for t in body["event_types"]] == [str(t) for t in EVENT_TITLES]
    assert [t["title"] for t in body["event_types"]] == list(EVENT_TITLES.values())
    assert [f["id"] for f in body["follow_ups"]] == list(FOLLOW_UPS)
    assert [f["label"] for f in body["follow_ups"]] == [FOLLOW_UP_LABELS[f] for f in FOLLOW_UPS]
    assert [r["id"] for r in body["dismissal_reasons"]] == list(DISMISS_REASONS)
    assert [r["label"] for r in body["dismissal_reasons"]] == [
        DISMISS_REASON_LABELS[r] for r in DISMISS_REASONS
    ]


def test_every_code_has_its_label() -> None:
    # A code without a label would reach the operator as its id: the labels keep the lists' order
    # and keys exactly.
    assert set(EVENT_TITLES) == set(EventType)
    assert list(FOLLOW_UP_LABELS) == list(FOLLOW_UPS)
    assert list(DISMISS_REASON_LABELS) == list(DISMISS_REASONS)


def test_vocabulary_needs_a_login(console: Console) -> None:
    r = console.client.get("/api/vocabulary")
    assert (r.status_code, r.json()) == (401, {"detail": "login required"})


def test_vocabulary_response_is_typed_in_openapi(console: Console) -> None:
    spec = console.client.get("/openapi.json").json()
    schema = spec["paths"]["/api/vocabulary"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    assert schema == {"$ref": "#/components/schemas/Vocabulary"}
    fields = spec["components"]["schemas"]["Vocabulary"]["properties"]
    assert set(fields) == {"event_types", "follow_ups", "dismissal_reasons"}
