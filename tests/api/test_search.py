"""Event search (HTTP): filters, pagination, order, camera scope, a purpose on every search, every
search audited, and no way to search for a person (unknown parameters refused, not ignored)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.audit import Action
from lanterne.core.types import EventType
from tests.support.console import (
    CAMERAS,
    NOW,
    Console,
    add_event,
)

pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def seeded(console: Console) -> Console:
    """Ten events: e0..e9, one per minute from an hour ago, over the three cameras."""
    types = [EventType.ZONE_INTRUSION, EventType.FIRE, EventType.WRONG_WAY]
    for i in range(10):
        add_event(
            console.store,
            f"e{i}",
            CAMERAS[i % 3],
            types[i % 3],
            NOW - timedelta(hours=1) + timedelta(minutes=i),
            zone="z1" if i < 5 else "z2",
            confidence=0.5 + i / 100 * (1 if i % 2 else -1),
            object_class="car" if i == 4 else "person",
            mode="evaluation" if i == 9 else "alerts",
        )
    e, a = console.store.engine, console.audit
    acknowledge(e, a, "e0", "u", NOW)
    confirm(e, a, "e0", "u", NOW, "monitoring")
    acknowledge(e, a, "e3", "u", NOW)
    dismiss(e, a, "e3", "u", NOW, reason="reflection_or_light")
    acknowledge(e, a, "e6", "u", NOW)
    return console


def ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


P = {"purpose": "investigation of the depot fire, ref 2026-17"}


FILTER_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({}, [f"e{i}" for i in range(9, -1, -1)]),
    ({"camera": "parvis"}, ["e7", "e4", "e1"]),
    ({"type": "fire"}, ["e7", "e4", "e1"]),
    ({"zone": "z2"}, ["e9", "e8", "e7", "e6", "e5"]),
    ({"object_class": "car"}, ["e4"]),
    ({"state": "confirmed"}, ["e0"]),
    ({"state": "dismissed"}, ["e3"]),
    ({"state": "acknowledged"}, ["e6"]),
    (
        {
            "from": (NOW - timedelta(minutes=53)).isoformat(),
            "to": (NOW - timedelta(minutes=51)).isoformat(),
        },
        ["e8", "e7"],
    ),
    ({"from": "2026-05-04T11:07:00"}, ["e9", "e8", "e7"]),  # naive: read as UTC
    ({"sort": "start"}, [f"e{i}" for i in range(10)]),
    ({"camera": "quai-nord", "sort": "confidence"}, ["e9", "e3", "e0", "e6"]),
    ({"camera": "depot", "type": "fire"}, []),
]
"""(filters, expected ids in order): one app per backend answers them all, a second each
rather than a fresh site per case."""


def test_filters_and_order(seeded: Console) -> None:
    seeded.as_user("oper")
    for params, expect in FILTER_CASES:
        r = seeded.client.get("/api/events", params={**P, **params})
        assert ids(r) == expect, params
        assert r.json()["total"] == len(expect), params


def test_pagination_and_total(seeded: Console) -> None:
    seeded.as_user("sup")
    pages = [seeded.client.get("/api/events", params={**P, "page": n, "page_size": 4}) for n in (1, 2, 3, 4)]
    assert [ids(p) for p in pages] == [["e9", "e8", "e7", "e6"], ["e5", "e4", "e3", "e2"], ["e1", "e0"], []]
    assert {p.json()["total"] for p in pages} == {10}
    assert seeded.client.get("/api/events", params={**P, "page_size": 201}).status_code == 422
    assert seeded.client.get("/api/events", params={**P, "page": 0}).status_code == 422


def test_scope_limits_results_and_refuses_other_cameras(seeded: Console) -> None:
    seeded.as_user("oper-nord")
    assert ids(seeded.client.get("/api/events", params=P)) == ["e9", "e6", "e3", "e0"]
    r = seeded.client.get("/api/events", params={**P, "camera": "parvis"})
    assert r.status_code == 403
    denied = [e for e in seeded.audit_entries(Action.SEARCH) if "denied" in e.details]
    assert denied and denied[-1].object_id == "parvis" and denied[-1].user_id == seeded.ids["oper-nord"]


def test_every_search_is_audited_with_its_purpose_and_filters(seeded: Console) -> None:
    seeded.as_user("oper")
    before = len(seeded.audit_entries(Action.SEARCH))
    seeded.client.get("/api/events", params={**P, "type": "fire", "from": "2026-05-04T10:00:00Z"})
    entries = seeded.audit_entries(Action.SEARCH)
    assert len(entries) == before + 1
    last = entries[-1]
    assert last.user_id == seeded.ids["oper"] and last.purpose == P["purpose"]
    assert last.details["type"] == "fire" and last.details["from"] == "2026-05-04T10:00:00+00:00"
    assert last.time_from == datetime(2026, 5, 4, 10, tzinfo=UTC)


@pytest.mark.parametrize("purpose", [None, "", "   "])
def test_a_purpose_is_required(seeded: Console, purpose: str | None) -> None:
    seeded.as_user("oper")
    params = {} if purpose is None else {"purpose": purpose}
    before = len(seeded.audit_entries(Action.SEARCH))
    r = seeded.client.get("/api/events", params=params)
    assert r.status_code == 400 and "purpose" in r.json()["detail"]
    assert len(seeded.audit_entries(Action.SEARCH)) == before, "a refused search is not served"


@pytest.mark.parametrize("attribute", ["clothing", "gender", "age", "face", "colour", "q"])
def test_no_search_on_people_unknown_parameters_are_rejected(seeded: Console, attribute: str) -> None:
    seeded.as_user("oper")
    r = seeded.client.get("/api/events", params={**P, attribute: "red"})
    assert r.status_code == 422 and attribute in r.json()["detail"]


@pytest.mark.parametrize(("login", "status"), [(None, 401), ("audi", 403), ("oper", 200), ("sup", 200)])
def test_roles(seeded: Console, login: str | None, status: int) -> None:
    if login:
        seeded.as_user(login)
    assert seeded.client.get("/api/events", params=P).status_code == status


@pytest.mark.parametrize(
    "params",
    [{"type": "face"}, {"state": "maybe"}, {"sort": "age"}, {"camera": "a b"}, {"from": "yesterday"}],
)
def test_bad_values_are_422(seeded: Console, params: dict[str, str]) -> None:
    seeded.as_user("oper")
    assert seeded.client.get("/api/events", params={**P, **params}).status_code == 422


def test_search_page_is_served_with_its_script(console: Console) -> None:
    page = console.client.get("/console/search")
    assert page.status_code == 200 and "/static/console/search.js" in page.text
    assert "<script>" not in page.text and "style=" not in page.text
    js = console.client.get("/static/console/search.js")
    assert js.status_code == 200 and "/api/events?" in js.text
