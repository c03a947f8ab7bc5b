"""AC-03, the role matrix: every role against every route that serves footage (snapshots, clips,
recording timeline and playback, exports, access-request answers, the live wall, recall windows)
and against the routes that belong to one role (stops, the log review, incidents, the alert
queue), through HTTP. A refused call answers 403 and leaves a refusal on the audit log naming the
account, its role and the path; an allowed one is never refused on role (what it answers next,
a 404 for nothing recorded or a 200, is each route's own tests' business).

No route of the console belongs to the admin: configuration and accounts are changed with the
`lanterne` command on the server. So the admin's whole footprint here is refusals, and the test
that no role both administers and sees video reads the same table.

One site for the module (SQLite: the checks are in Python, the database holds no rule), each role
logged in once and its session kept: a fixed clock gives each account only a few second-factor
codes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from lanterne.accountability.accounts import EXPORT_ROLES
from lanterne.accountability.privacy import grant
from lanterne.api import routes as routes_package
from lanterne.api.deps import COOKIE, FOOTAGE_ROLES, RECORDING_ROLES, recording_viewer, video_viewer
from lanterne.audit import Action
from lanterne.config.schema import Mode
from lanterne.store.tables import ROLES
from tests.support.console import NOW, Clock, Console, add_account, add_event, open_console, site_config

LOGINS = {
    "operator": "oper",
    "supervisor": "sup",
    "export_officer": "expo",
    "auditor": "audi",
    "admin": "adm",
    "analyst": "ana",
}
WATCHERS = frozenset(FOOTAGE_ROLES)
RECORDED = frozenset(RECORDING_ROLES)
EXPORTERS = frozenset(EXPORT_ROLES)
PURPOSE = "réquisition PV 2026/123"
RANGE = {"start": NOW.isoformat(), "end": (NOW + timedelta(seconds=5)).isoformat()}


@dataclass(frozen=True)
class Route:
    """One call: `route` is the path as the app declares it (matched against the app's own
    routes), `path` the concrete one called."""

    method: str
    route: str
    path: str
    allowed: frozenset[str]
    footage: bool
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = (
    # Footage: pixels of an alert, of a recording, live.
    Route("GET", "/api/alerts/{alert_id}/snapshot", "/api/alerts/a1/snapshot", WATCHERS, True),
    Route("GET", "/api/alerts/{alert_id}/clip", "/api/alerts/a1/clip", WATCHERS, True, {"purpose": PURPOSE}),
    Route(
        "GET",
        "/api/cameras/{camera}/recording",
        "/api/cameras/quai-nord/recording",
        RECORDED,
        True,
        RANGE | {"purpose": PURPOSE},
    ),
    Route(
        "GET",
        "/api/cameras/{camera}/recording/video",
        "/api/cameras/depot/recording/video",
        RECORDED,
        True,
        RANGE | {"purpose": PURPOSE},
    ),
    Route(
        "POST",
        "/api/cameras/{camera}/recording/export",
        "/api/cameras/depot/recording/export",
        EXPORTERS,
        True,
        body=RANGE | {"purpose": PURPOSE, "recipient": "OPJ Martin"},
    ),
    Route(
        "POST",
        "/api/requests/{request_id}/answer",
        "/api/requests/1/answer",
        EXPORTERS,
        True,
        body=RANGE | {"camera": "depot", "keep": {"x0": 0.4, "y0": 0.3, "x1": 0.6, "y1": 0.9}},
    ),
    Route(
        "POST",
        "/api/live/{camera}/views",
        "/api/live/quai-nord/views",
        WATCHERS,
        True,
        body={"purpose": PURPOSE},
    ),
    Route(
        "POST",
        "/api/live/{camera}/views/raw",
        "/api/live/quai-nord/views/raw",
        WATCHERS,
        True,
        body={"purpose": PURPOSE, "reason": "enquête", "reference": "PV 2026/123"},
    ),
    Route(
        "GET",
        "/api/recall/audits/{audit_id}/windows/{seq}/video",
        "/api/recall/audits/1/windows/1/video",
        frozenset({"supervisor"}),
        True,
        RANGE | {"purpose": PURPOSE},
    ),
    # Pages that exist to show footage.
    Route("GET", "/console", "/console", WATCHERS, True),
    Route("GET", "/console/wall", "/console/wall", WATCHERS, True),
    Route("GET", "/console/recordings", "/console/recordings", RECORDED, True),
    Route("GET", "/console/requests", "/console/requests", EXPORTERS, True),
    # Alerts without pixels: the watchers' work, not the export officer's.
    Route("GET", "/api/alerts", "/api/alerts", WATCHERS, False),
    Route("GET", "/api/live", "/api/live", WATCHERS, False),
    Route("GET", "/api/cameras", "/api/cameras", RECORDED, False),
    Route("GET", "/api/requests", "/api/requests", EXPORTERS, False),
    # One role's work: stops and suspensions, the log review, incidents.
    Route("GET", "/api/stops", "/api/stops", frozenset({"supervisor"}), False),
    Route("GET", "/api/live/watching", "/api/live/watching", frozenset({"supervisor"}), False),
    Route("GET", "/api/review/findings", "/api/review/findings", frozenset({"auditor"}), False),
    Route("GET", "/api/incidents", "/api/incidents", frozenset({"supervisor", "auditor"}), False),
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Console, dict[str, tuple[str, str]]]]:
    """The console's three-camera site in alerts mode (`depot` records nothing), one account of
    each role, an alert on quai-nord, and each role's session (cookie, CSRF token)."""
    tmp = tmp_path_factory.mktemp("rbac")
    cfg = site_config(f"sqlite:///{tmp / 'lanterne.db'}", tmp).model_copy(update={"mode": Mode.ALERTS})
    cameras = [c.model_copy(update={"record": "off"}) if c.id == "depot" else c for c in cfg.cameras]
    cfg = cfg.model_copy(update={"cameras": cameras})
    with pytest.MonkeyPatch.context() as mp:
        # argon2's production cost is tested with the accounts; here it would only cost minutes.
        mp.setattr(
            "lanterne.accountability.accounts.HASHER",
            PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
        )
        gen = open_console(cfg, Clock())
        console = next(gen)
        for role in ("export_officer", "admin", "analyst"):
            add_account(console, LOGINS[role], role)
        add_event(console.store, "a1", "quai-nord")
        for login in ("oper", "sup"):
            # So that a raw live view is refused on role or not at all, never for a permission.
            grant(
                console.store.engine, console.audit, user=console.ids[login], cameras=["*"],
                until=NOW + timedelta(days=30), reason="unité judiciaire", granted_by="adm",
                now=NOW - timedelta(days=1),
            )  # fmt: skip
        sessions = {}
        for role, login in LOGINS.items():
            csrf = console.as_user(login)["X-CSRF-Token"]
            sessions[role] = (console.client.cookies[COOKIE], csrf)
        yield console, sessions
        gen.close()


def _call(client: TestClient, route: Route, session: tuple[str, str]) -> Any:
    client.cookies.clear()
    client.cookies.set(COOKIE, session[0])
    return client.request(
        route.method,
        route.path,
        params=route.params,
        json=route.body,
        headers={"X-CSRF-Token": session[1]},
        follow_redirects=False,
    )


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
@pytest.mark.parametrize("role", list(LOGINS))
def test_each_role_reaches_only_its_routes_and_each_refusal_is_recorded(
    site: tuple[Console, dict[str, tuple[str, str]]], role: str, route: Route
) -> None:
    console, sessions = site
    user = console.ids[LOGINS[role]]
    before = len(console.audit.entries())
    r = _call(console.client, route, sessions[role])
    new = console.audit.entries()[before:]
    refusals = [e for e in new if e.user_id == user and "denied" in (e.details or {})]
    if role in route.allowed:
        assert r.status_code != 403, f"{role} refused: {r.text}"
        assert refusals == []
    else:
        assert r.status_code == 403, f"{role} let through: {r.status_code} {r.text[:200]}"
        assert [(e.action, e.details["role"], e.details["path"]) for e in refusals] == [
            (Action.ACCESS_DENIED, role, route.path)
        ]
        # Refused before anything was looked at: no view, search or export is on the log.
        assert [e for e in new if e.user_id == user and e not in refusals] == []


def _api_routes() -> list[APIRoute]:
    """Every route of every module of `lanterne.api.routes` (each module has one `router`)."""
    found = []
    for info in pkgutil.iter_modules(routes_package.__path__):
        module = importlib.import_module(f"{routes_package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        found += [r for r in getattr(router, "routes", []) if isinstance(r, APIRoute)]
    return found


def test_every_route_that_serves_footage_is_in_the_matrix() -> None:
    """A new route that clears its caller to see video must be added to `ROUTES`, so its roles are
    tested; the routes are found by their dependency, not by a list kept by hand."""

    def clears(dependant: Any) -> bool:
        return any(d.call in (video_viewer, recording_viewer) or clears(d) for d in dependant.dependencies)

    app_routes = _api_routes()
    serving = {(m, r.path) for r in app_routes if clears(r.dependant) for m in r.methods}
    assert len(serving) >= 7  # the scan really found the snapshot, clip, recording and live routes
    tested = {(r.method, r.route) for r in ROUTES}
    assert serving - tested == set()
    # And every route of the matrix exists as written (a renamed route would be tested nowhere).
    declared = {(m, r.path) for r in app_routes for m in r.methods}
    assert tested <= declared


def test_no_role_both_administers_and_sees_video() -> None:
    """AC-03's last sentence, on the role sets the routes use and on the matrix itself."""
    assert set(ROLES) == set(LOGINS)  # every role is in the matrix
    for sees in (FOOTAGE_ROLES, RECORDING_ROLES, EXPORT_ROLES):
        assert "admin" not in sees
    assert not any("admin" in r.allowed for r in ROUTES if r.footage)
    # Only the export officer exports: the watchers and the supervisors do not copy footage out.
    exports = [r for r in ROUTES if r.route.endswith(("/export", "/answer"))]
    assert len(exports) == 2 and all(r.allowed == {"export_officer"} for r in exports)


def test_an_account_of_each_role_that_sees_video_logs_in_with_a_second_factor(
    site: tuple[Console, dict[str, tuple[str, str]]],
) -> None:
    """The export officer sees recorded footage; like every account it logs in with a second
    factor (AC-04): a password alone is refused."""
    console, _ = site
    console.client.cookies.clear()
    r = console.client.post("/api/login", json={"login": "expo", "password": "lanterns carry light slowly"})
    assert r.status_code == 401 and "code" in r.json()["detail"]


def test_every_role_can_come_from_the_directory_and_have_shift_hours() -> None:
    """The configuration names roles in two places, which must follow the accounts' list: an
    export officer signed in through OpenID Connect (`oidc.roles`) and the log review's working
    hours per role (`review.shift_hours`)."""
    from typing import get_args

    from pydantic import ValidationError

    from lanterne.config.schema import OidcRole, ReviewSettings

    assert set(get_args(OidcRole.model_fields["role"].annotation)) == set(ROLES)
    (hours,) = [a for a in get_args(ReviewSettings.model_fields["shift_hours"].annotation) if get_args(a)]
    assert set(get_args(hours)) == set(ROLES)
    assert OidcRole(group="cctv-exports", role="export_officer", scope=["*"]).role == "export_officer"
    with pytest.raises(ValidationError, match="role"):
        OidcRole(group="cctv-exports", role="exporter", scope=["*"])  # type: ignore[arg-type]
