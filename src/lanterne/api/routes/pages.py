"""The console's HTML pages. A page holds no data: its script asks the JSON API, which checks the
session; the alert pages also send a visitor without a session to the login page and refuse
(and record) a role that sees no footage, since their address alone names an alert."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lanterne.accountability.accounts import EXPORT_ROLES
from lanterne.accountability.incidents import INCIDENT_ROLES
from lanterne.accountability.log_review import REVIEWER_ROLES
from lanterne.accountability.oversight import OVERSIGHT_ROLES
from lanterne.api.deps import FOOTAGE_ROLES, RECORDING_ROLES, current_user, forbid

STATIC = Path(__file__).resolve().parents[1] / "static" / "console"
"""The pages and their scripts (also served under `/static/console/`)."""
LOGIN = STATIC.parent / "login.html"
HTML = "text/html; charset=utf-8"

router = APIRouter(include_in_schema=False)


def _page(path: Path) -> Response:
    return Response(path.read_bytes(), media_type=HTML)


def _role_page(
    request: Request, name: str, roles: tuple[str, ...] = FOOTAGE_ROLES, label: str | None = None
) -> Response:
    """A page only `roles` open: the login for a visitor, a recorded refusal (under `label`) for
    any other role."""
    try:
        user = current_user(request)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        return RedirectResponse("/login", status_code=303)
    if user.role not in roles:
        forbid(request, user, label or f"page {name.removesuffix('.html')}")
    return _page(STATIC / name)


@router.get("/console")
def queue_page(request: Request) -> Response:
    return _role_page(request, "queue.html", label="alert queue")


@router.get("/console/alerts/{alert_id}")
def alert_page(request: Request, alert_id: str) -> Response:
    return _role_page(request, "alert.html")


@router.get("/console/recordings")
def playback_page(request: Request) -> Response:
    # Like the alert pages: it exists to show footage, so a role that sees none is refused here;
    # export officers work here too (exports are made from it).
    return _role_page(request, "playback.html", RECORDING_ROLES)


@router.get("/console/requests")
def requests_page(request: Request) -> Response:
    # People's requests for their own images are answered with an export: the export officer's.
    return _role_page(request, "requests.html", EXPORT_ROLES)


@router.get("/console/wall")
def wall_page(request: Request) -> Response:
    # Live footage: refused to a role that sees none, like the alert pages.
    return _role_page(request, "wall.html")


@router.get("/console/recall")
def recall_page(request: Request) -> Response:
    # Blinded recall audits play footage: refused to a role that sees none, like the alert pages.
    return _role_page(request, "recall.html")


@router.get("/console/review")
def review_page(request: Request) -> Response:
    # The DPO's queue of findings over the audit log: only the role that audits opens it; anyone
    # else is refused and recorded, since the findings are about the people who watch.
    return _role_page(request, "review.html", REVIEWER_ROLES, "log review")


@router.get("/console/incidents")
def incidents_page(request: Request) -> Response:
    # Incidents and breaches: supervisors and the DPO handle them; anyone else is refused and
    # recorded, as for the log review.
    return _role_page(request, "incidents.html", INCIDENT_ROLES, "incidents")


@router.get("/console/oversight")
def oversight_page(request: Request) -> Response:
    # The independent oversight view: the role that audits reads it; anyone else is refused and
    # recorded, as for the log review. The page shows no footage and links to none.
    return _role_page(request, "oversight.html", OVERSIGHT_ROLES, "oversight")


@router.get("/console/map", response_class=HTMLResponse)
def map_page() -> Response:
    return _page(STATIC / "map.html")


@router.get("/console/search", response_class=HTMLResponse)
def search_page() -> Response:
    return _page(STATIC / "search.html")


@router.get("/login", response_class=HTMLResponse)
def login_page() -> Response:
    return _page(LOGIN)


@router.get("/favicon.ico")
def favicon() -> Response:
    # Browsers ask for it on every page; an empty answer keeps their consoles (and the browser
    # test) free of a 404 without shipping an icon.
    return Response(status_code=204)
