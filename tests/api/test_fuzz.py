"""Property-based requests from the app's own OpenAPI schema (schemathesis): whatever a client
sends, no route answers with a server error, and every answer has the shape the schema documents
for its status (the routes declare their response models and their refusals' body). Each operation
is tried logged in as a supervisor with every camera in scope (session cookie and CSRF header) and,
separately, without a session.

In-process (ASGI transport, no server), over a seeded SQLite site, with a bounded number of
examples per operation so the whole file runs in well under a minute."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from starlette.testclient import TestClient

from lanterne.api.app import create_app
from lanterne.audit import AuditLog
from lanterne.core.types import EventType
from lanterne.store import Store
from tests.support.console import (
    LOOPBACK,
    NOW,
    PASSWORD,
    Clock,
    add_event,
    cleared_account,
    from_loopback,
    login_json,
    site_config,
)

EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance]
ENDLESS = {"/api/alerts/stream"}
"""Server-sent events: a logged-in request never ends by design; tried without a session only."""
ENDS_SESSION = {("POST", "/api/logout")}
"""Would log the fuzzing session out half-way; tried without a session only."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    mp = pytest.MonkeyPatch()
    mp.setattr(
        "lanterne.accountability.accounts.HASHER", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = site_config(f"sqlite:///{tmp / 'lanterne.db'}", tmp)
    store = Store.open(cfg.store.url)
    audit = AuditLog(store.engine)
    cleared_account(store.engine, audit, "fuzz-sup", "supervisor", ["*"], PASSWORD, "test", now=NOW)
    for i in range(6):
        add_event(
            store,
            f"ev{i}",
            ("quai-nord", "parvis", "depot")[i % 3],
            EventType.FIRE,
            NOW - timedelta(minutes=i),
        )
    app = create_app(cfg, clock=Clock())
    # The lifespan is what opens the store; schemathesis's ASGI transport does not run it.
    app.state.store = store
    with TestClient(app, client=LOOPBACK) as client:
        r = client.post("/api/login", json=login_json("fuzz-sup", at=NOW))
        assert r.status_code == 200, r.text
        cookie = client.cookies.get("lanterne_session")
        auth = {"headers": {"X-CSRF-Token": r.json()["csrf_token"]}, "cookies": {"lanterne_session": cookie}}
        app.state.store = store  # the context manager's lifespan closed its own; put ours back
        yield {"app": app, "auth": auth}
    store.close()
    mp.undo()


def fuzz(app: Any, auth: dict[str, dict[str, str]] | None, seen: dict[str, set[int]]) -> list[str]:
    """Every operation, `EXAMPLES` valid and `EXAMPLES` invalid requests each; returns the failures
    (operation, then the check's message with the request as curl) instead of stopping at the first,
    so one run lists them all."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", from_loopback(app))
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if auth is not None and (
            operation.path in ENDLESS or (operation.method.upper(), operation.path) in ENDS_SESSION
        ):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @FUZZ
            def run(case: schemathesis.Case) -> None:
                if auth is None:
                    response = case.call_and_validate(checks=CHECKS)
                else:
                    response = case.call_and_validate(
                        headers={**(case.headers or {}), **auth["headers"]},
                        cookies=auth["cookies"],
                        checks=CHECKS,
                    )
                seen.setdefault(f"{case.method.upper()} {case.path}", set()).add(response.status_code)

            try:
                run()
            except Unsatisfiable:
                pass  # no invalid request exists for an operation without parameters
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:2000]}")
    return failures


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows its request as drawn
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.mark.parametrize("who", ["supervisor", "anonymous"])
def test_no_server_error(site: dict[str, Any], who: str) -> None:
    seen: dict[str, set[int]] = {}
    failures = fuzz(site["app"], site["auth"] if who == "supervisor" else None, seen)
    assert not failures, "\n\n".join(failures)
    if who == "supervisor":  # the session worked: requests got past the login check
        # Routes without parameters: every request must pass (generated ones may not, by chance).
        for route in ("GET /api/me", "GET /api/cameras", "GET /api/stops"):
            assert any(200 <= code < 300 for code in seen[route]), (route, seen[route])
    else:
        assert seen["GET /api/cameras"] == {401}


def test_schema_lists_the_console_routes(site: dict[str, Any]) -> None:
    paths = set(site["app"].openapi()["paths"])
    assert {"/api/events", "/api/cameras", "/api/stops", "/api/stops/{stop_id}/lift"} <= paths
