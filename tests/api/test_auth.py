"""Console login over HTTP (AC-01…AC-04): the session cookie's flags, 401 without a session, the
throttle refusing even the right password, CSRF on logout, a role-protected route that refuses
and audits, the public page still open, and JSON error bodies without a traceback."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from argon2 import PasswordHasher
from fastapi import Depends
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from lanterne.accountability import accounts
from lanterne.accountability.accounts import disable_account
from lanterne.api.app import create_app
from lanterne.api.deps import COOKIE, CurrentUser, csrf_protect, require_roles
from lanterne.audit import Action, AuditLog
from lanterne.config import Config, parse_config
from lanterne.store import Store
from lanterne.store.tables import AuditRecord, SessionRecord
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT, lanterne_serve, wait_until
from tests.support.console import LOOPBACK, cleared_account, login_json, second_factor

NOW = datetime(2026, 6, 20, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
LOCATION = {"lat": 48.8809, "lon": 2.3553}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setattr(accounts, "_DUMMY_HASH", [])


@dataclass
class Site:
    cfg: Config
    store: Store
    clock: dict[str, datetime]
    ids: dict[str, str]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path / 'lanterne.db'}"
    cfg = parse_config(
        {
            "site": "Ville d'Exemple",
            "store": {"url": url},
            "console": {"max_failed_logins": 3, "idle_minutes": 15, "session_hours": 12},
            "cameras": [{"id": "gare-nord", "source": "a.mp4", "location": LOCATION}],
        },
        base_dir=tmp_path,
    )
    store = Store.open(url)
    audit = AuditLog(store.engine, clock=lambda: NOW)
    ids = {
        login: cleared_account(store.engine, audit, login, role, ["*"], PASSWORD, "u-admin0001", now=NOW).id
        for login, role in (("op.one", "operator"), ("sup.one", "supervisor"))
    }
    yield Site(cfg, store, {"now": NOW}, ids)
    store.close()


def make_client(site: Site, **kwargs: Any) -> TestClient:
    app = create_app(site.cfg, clock=lambda: site.clock["now"])

    @app.get("/test/supervisors")
    def supervisors_only(
        user: Annotated[CurrentUser, Depends(require_roles("supervisor"))],
    ) -> dict[str, str]:
        return {"id": user.id}

    @app.post("/test/write")
    def write(user: Annotated[CurrentUser, Depends(csrf_protect)]) -> dict[str, str]:
        return {"id": user.id}

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("secret internal state /etc/lanterne")

    return TestClient(app, **({"client": LOOPBACK} | kwargs))


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    with make_client(site) as c:
        yield c


def login(c: TestClient, who: str = "op.one", password: str = PASSWORD) -> Any:
    at = c.app.state.clock()  # type: ignore[attr-defined]
    return c.post("/api/login", json=login_json(who, password, at))


def audit_rows(site: Site) -> list[Any]:
    with site.store.engine.connect() as conn:
        return list(conn.execute(select(AuditRecord.__table__).order_by(AuditRecord.seq)).mappings())


def assert_no_personal_text(rows: list[Any], *texts: str) -> None:
    for r in rows:
        dumped = json.dumps({k: str(v) for k, v in r.items()})
        for t in texts:
            assert t not in dumped


def test_login_sets_a_strict_httponly_cookie(client: TestClient, site: Site) -> None:
    r = login(client)
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == {"id": site.ids["op.one"], "login": "op.one", "role": "operator", "scope": ["*"]}
    assert len(body["csrf_token"]) >= 43 and PASSWORD not in r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain http (tests, loopback); see the https test
    me = client.get("/api/me")
    assert me.status_code == 200 and me.json() == body  # a reloaded page recovers its CSRF token
    rows = audit_rows(site)
    assert (rows[-1]["user_id"], rows[-1]["action"], rows[-1]["object_id"]) == (
        site.ids["op.one"],
        Action.LOGIN,
        site.ids["op.one"],
    )


def test_cookie_is_secure_over_https(site: Site) -> None:
    with make_client(site, base_url="https://testserver") as c:
        r = login(c)
    assert r.status_code == 200
    assert "secure" in {f.strip().lower() for f in r.headers["set-cookie"].split(";")}


def test_me_needs_a_login(client: TestClient) -> None:
    r = client.get("/api/me")
    assert r.status_code == 401 and r.json() == {"detail": "login required"}
    client.cookies.set(COOKIE, "forged-token")
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    ("who", "password", "user_id", "reason"),
    [
        ("op.one", "wrong password!", "op.one", "bad_password"),
        ("Jean Dupont", PASSWORD, "unknown", "unknown_login"),
        ("", PASSWORD, "unknown", "unknown_login"),
    ],
)
def test_wrong_credentials(
    client: TestClient, site: Site, who: str, password: str, user_id: str, reason: str
) -> None:
    before = len(audit_rows(site))
    r = login(client, who, password)
    assert r.status_code == 401 and r.json() == {"detail": "wrong login or password"}
    assert "set-cookie" not in r.headers
    assert client.get("/api/me").status_code == 401
    rows = audit_rows(site)[before:]
    assert len(rows) == 1 and rows[0]["action"] == Action.LOGIN_FAILED
    assert rows[0]["user_id"] == site.ids.get(user_id, "unknown")
    assert json.loads(rows[0]["details"]) == {"reason": reason, "locked": False}
    assert_no_personal_text(rows, PASSWORD, "wrong password!", "op.one", "Jean Dupont")


def test_disabled_account_is_refused_and_logged_out(client: TestClient, site: Site) -> None:
    assert login(client).status_code == 200
    disable_account(site.store.engine, AuditLog(site.store.engine), "op.one", "u-admin0001")
    assert client.get("/api/me").status_code == 401
    assert login(client).status_code == 401
    assert json.loads(audit_rows(site)[-1]["details"])["reason"] == "disabled"


def test_throttle_refuses_even_the_right_password(client: TestClient, site: Site) -> None:
    for i in range(3):
        assert login(client, password=f"guess number {i}").status_code == 401
    assert json.loads(audit_rows(site)[-1]["details"]) == {"reason": "bad_password", "locked": True}
    refused = login(client)
    assert refused.status_code == 429 and "15 minutes" in refused.json()["detail"]
    assert "set-cookie" not in refused.headers
    # The address is locked too: another account from the same workstation waits as well.
    assert login(client, "sup.one").status_code == 429
    site.clock["now"] = NOW + timedelta(minutes=14)
    assert login(client).status_code == 429
    site.clock["now"] = NOW + timedelta(minutes=15)
    assert login(client).status_code == 200


def test_logout_needs_the_csrf_token(client: TestClient) -> None:
    csrf = login(client).json()["csrf_token"]
    assert client.post("/api/logout").status_code == 403
    wrong = client.post("/api/logout", headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403 and wrong.json() == {"detail": "CSRF token missing or wrong"}
    assert client.get("/api/me").status_code == 200  # still logged in
    assert client.post("/test/write", headers={"X-CSRF-Token": csrf}).status_code == 200
    out = client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    assert client.get("/api/me").status_code == 401
    # The old cookie is dead server-side too, not only deleted in this browser.
    assert client.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 401


def test_csrf_token_of_another_session_is_refused(site: Site) -> None:
    with make_client(site) as a, make_client(site) as b:
        login(a)
        other = login(b, "sup.one").json()["csrf_token"]
        assert a.post("/test/write", headers={"X-CSRF-Token": other}).status_code == 403


def test_role_check_refuses_and_audits(client: TestClient, site: Site) -> None:
    assert client.get("/test/supervisors").status_code == 401
    login(client)
    before = len(audit_rows(site))
    r = client.get("/test/supervisors")
    assert r.status_code == 403 and r.json() == {"detail": "not allowed for your role or scope"}
    rows = audit_rows(site)[before:]
    assert len(rows) == 1 and rows[0]["user_id"] == site.ids["op.one"]
    assert rows[0]["action"] == Action.ACCESS_DENIED, "a refusal, not a view: nothing was shown"
    assert json.loads(rows[0]["details"]) == {
        "denied": "GET /test/supervisors",
        "role": "operator",
        "path": "/test/supervisors",
    }
    with make_client(site) as sup:
        login(sup, "sup.one")
        assert sup.get("/test/supervisors").json() == {"id": site.ids["sup.one"]}


def test_login_sweeps_sessions_past_their_shift(site: Site) -> None:
    with make_client(site) as a, make_client(site) as b:
        login(a)
        site.clock["now"] = NOW + timedelta(hours=12)
        login(b, "sup.one")
    with site.store.engine.connect() as conn:
        owners = [r.account_id for r in conn.execute(select(SessionRecord.__table__))]
    assert owners == [site.ids["sup.one"]]


def test_idle_session_ends(client: TestClient, site: Site) -> None:
    login(client)
    site.clock["now"] = NOW + timedelta(minutes=10)
    assert client.get("/api/me").status_code == 200
    site.clock["now"] = NOW + timedelta(minutes=24)  # 14 min after last use
    assert client.get("/api/me").status_code == 200
    site.clock["now"] = NOW + timedelta(minutes=40)
    assert client.get("/api/me").status_code == 401


def test_public_page_and_login_page_need_no_login(client: TestClient) -> None:
    assert client.get("/public").status_code == 200
    page = client.get("/login")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    # The script is a file of the app's own (a module since the pages share common.js), never inline.
    assert 'src="/static/login.js"></script>' in page.text and "<script>" not in page.text
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    for path, kind in (("/static/login.js", "javascript"), ("/static/console.css", "text/css")):
        r = client.get(path)
        assert r.status_code == 200 and kind in r.headers["content-type"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"login": "op.one"}', b'{"login": 3, "password": "correct horse battery"}'],
)
def test_malformed_login_is_refused_without_echo(client: TestClient, body: bytes) -> None:
    r = client.post("/api/login", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json() == {"detail": "send JSON with a login and a password"}


def test_error_bodies_have_no_traceback(site: Site) -> None:
    with make_client(site, raise_server_exceptions=False) as c:
        r = c.get("/test/crash")
        assert r.status_code == 500 and r.json() == {"detail": "internal error; see the server log"}
        for _ in range(3):
            login(c, password="wrong wrong wrong")
        for resp in (r, c.get("/api/me"), login(c), c.post("/api/login", content=b"x")):
            assert set(resp.json()) == {"detail"}
            assert "Traceback" not in resp.text and "/etc/lanterne" not in resp.text


# --- the login page in a real browser ---------------------------------------------------------


@pytest.fixture
def server(site: Site, tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "site.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": "Ville d'Exemple",
                "store": {"url": site.cfg.store.url},
                "cameras": [{"id": "gare-nord", "source": "a.mp4", "location": LOCATION}],
            }
        ),
        encoding="utf-8",
    )
    with lanterne_serve(config, probe="/login") as base:
        yield base


def test_login_page_in_chromium(server: str, site: Site) -> None:
    OUTPUT.mkdir(exist_ok=True)
    csp_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on(
                "console",
                lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.on("pageerror", lambda e: csp_errors.append(str(e)))
            page.goto(server + "/login", wait_until="networkidle")
            page.fill("#login", "op.one")
            page.fill("#password", "not the password")
            page.click("#submit")
            wait_until(page, "document.getElementById('message').textContent.length > 0")
            assert page.inner_text("#message") == "Wrong login or password."
            assert page.input_value("#password") == ""  # cleared after a failure
            page.screenshot(path=str(OUTPUT / "login-refused.png"))

            page.fill("#password", PASSWORD)  # the right password, but no second factor
            page.click("#submit")
            wait_until(page, "document.getElementById('message').textContent.includes('6-digit code')")
            assert page.input_value("#code") == ""

            page.fill("#password", PASSWORD)
            page.fill("#code", second_factor(site.ids["op.one"]))
            page.click("#submit")
            page.wait_for_url(server + "/console")
            csrf = page.evaluate("sessionStorage.getItem('lanterne.csrf')")
            me = page.evaluate("fetch('/api/me').then(r => r.json())")
            assert me["user"]["login"] == "op.one" and csrf == me["csrf_token"]
            assert page.evaluate("document.cookie") == ""  # HttpOnly: invisible to scripts
            page.evaluate("sessionStorage.clear()")
            page.goto(server + "/login")
            page.wait_for_url(server + "/console")
            assert page.evaluate("sessionStorage.getItem('lanterne.csrf')") == csrf
        finally:
            browser.close()
    assert not csp_errors, csp_errors
