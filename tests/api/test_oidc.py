"""City sign-in with OpenID Connect, against a real OpenID provider: panva's certified
`oidc-provider` (tests/support/oidc/provider.mjs, installed by scripts/bootstrap from its lock file)
on the loopback, with one static client and a few directory accounts.

Each sign-in goes the way a browser's does: the console's redirect to the provider, the
provider's own login page (login, password and, for an account that has one, the directory's
one-time code), the redirect back to the console's callback, then the outcome the login page
reads. The console talks to the provider over real HTTP: discovery, token endpoint with the
client secret and PKCE verifier, JWKS, userinfo. Forged ID tokens come from the provider's own
token endpoint (a test-only switch in the script), so the console's checks are exercised where
they matter, in its callback. The last test drives Debian's chromium through the login page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from lanterne.accountability.accounts import (
    create_account,
    disable_account,
    enrol_second_factor,
    find_account,
)
from lanterne.accountability.habilitation import habilitate, train
from lanterne.accountability.oidc import (
    Identity,
    OidcClient,
    OidcError,
    Transaction,
    login_from_claim,
    role_for,
    second_factor_asserted,
    sync_account,
)
from lanterne.api.app import create_app
from lanterne.api.deps import COOKIE
from lanterne.audit import Action, AuditLog
from lanterne.config import Config, parse_config
from lanterne.config.schema import OidcSettings
from lanterne.store import Store
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT, free_port, wait_until
from tests.support.console import LOOPBACK

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = ROOT / "tests" / "support" / "oidc" / "provider.mjs"
CONSOLE = "http://localhost"
CALLBACK = CONSOLE + "/api/login/oidc/callback"
BROWSER_PORT = free_port()
BROWSER_CALLBACK = f"http://127.0.0.1:{BROWSER_PORT}/api/login/oidc/callback"
SECRET = "a client secret only the console and the directory know"
OTP = "424242"
"""The directory's own one-time code for the accounts that have one (its second factor)."""
PASSWORD = "directory password"
CAMERAS = ("quai-nord", "parvis")
ACCOUNTS: dict[str, dict[str, Any]] = {
    # login at the provider: its password, its one-time code, the claims it releases
    "ana": {
        "otp": OTP,
        "claims": {"preferred_username": "Ana.Op@Ville.fr", "groups": ["staff", "cctv-operators"]},
    },
    "sam": {
        "otp": OTP,
        "claims": {"preferred_username": "sam.sup", "groups": ["cctv-operators", "cctv-supervisors"]},
    },
    "alex": {"otp": OTP, "claims": {"preferred_username": "alex.dpo", "groups": ["dpo-office"]}},
    "noah": {"claims": {"preferred_username": "noah", "groups": ["staff", "library"]}},
    "eve": {"claims": {"preferred_username": "local.admin", "groups": ["dpo-office"]}},
    "jean": {"claims": {"preferred_username": "Jean Martin", "groups": ["dpo-office"]}},
    "zoe": {"otp": OTP, "claims": {"preferred_username": "zoe.op", "groups": ["cctv-operators"]}},
    "lea": {"otp": OTP, "claims": {"preferred_username": "lea.exports", "groups": ["cctv-exports"]}},
}
ROLES = [
    # Supervisors first: a person in both groups is a supervisor (the first match wins).
    {"group": "cctv-supervisors", "role": "supervisor", "scope": ["*"]},
    {"group": "cctv-operators", "role": "operator", "scope": ["quai-nord"]},
    {"group": "dpo-office", "role": "auditor", "scope": ["*"]},
    {"group": "cctv-exports", "role": "export_officer", "scope": ["*"]},
]


@dataclass
class Provider:
    issuer: str
    key: dict[str, Any]
    secret_file: Path

    def control(self, path: str, **fields: Any) -> None:
        body = urllib.parse.urlencode(fields, doseq=True).encode()
        with urllib.request.urlopen(urllib.request.Request(self.issuer + path, data=body), timeout=5) as r:
            assert r.status == 200

    def tamper(self, mode: str) -> None:
        self.control("/__test/tamper", mode=mode)

    def move(self, login: str, groups: list[str]) -> None:
        self.control("/__test/groups", login=login, group=groups)


def start_provider(
    tmp: Path, host: str, redirect_uris: list[str]
) -> tuple[subprocess.Popen[bytes], Provider]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = json.loads(RSAAlgorithm.to_jwk(private)) | {"kid": "city-2026", "alg": "RS256", "use": "sig"}
    config = {
        "host": host,
        "client": {"client_id": "lanterne", "client_secret": SECRET, "redirect_uris": redirect_uris},
        "key": key,
        "accounts": {login: {"password": PASSWORD, **a} for login, a in ACCOUNTS.items()},
        "acr_values": ["urn:ville:loa:1", "urn:ville:loa:2"],
    }
    path = tmp / f"provider-{host}.json"
    path.write_text(json.dumps(config))
    secret_file = tmp / "client-secret"
    secret_file.write_text(SECRET + "\n")
    proc = subprocess.Popen(
        ["node", str(PROVIDER), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once it listens
    if not line:
        proc.wait(timeout=5)
        err = proc.stderr.read().decode() if proc.stderr else ""
        pytest.fail(f"the OpenID provider did not start (run scripts/bootstrap): {err[-2000:]}")
    return proc, Provider(json.loads(line)["issuer"], key, secret_file)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    proc, found = start_provider(tmp_path_factory.mktemp("oidc"), "127.0.0.1", [CALLBACK])
    yield found
    proc.terminate()
    proc.wait(timeout=10)


def oidc_settings(provider: Provider, **changes: Any) -> dict[str, Any]:
    return {
        "name": "Annuaire de la Ville",
        "issuer": provider.issuer,
        "client_id": "lanterne",
        "client_secret_file": str(provider.secret_file),
        "redirect_url": CALLBACK,
        "scopes": ["openid", "profile", "groups"],
        "roles": ROLES,
        **changes,
    }


def site(db_url: str, tmp_path: Path, oidc: dict[str, Any] | None, **console: Any) -> Config:
    data: dict[str, Any] = {
        "console": console,
        "site": "Ville d'Exemple",
        "store": {"url": db_url},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": [
            {"id": cam, "source": f"{cam}.mp4", "location": {"lat": 48.88, "lon": 2.355 + i / 1000}}
            for i, cam in enumerate(CAMERAS)
        ],
    }
    if oidc is not None:
        data["oidc"] = oidc
    return parse_config(data, base_dir=tmp_path)


class Console:
    def __init__(self, client: TestClient, store: Store, provider: Provider) -> None:
        self.client, self.store, self.provider = client, store, provider
        self.audit = AuditLog(store.engine)

    def sign_in(
        self, login: str, *, otp: str = "", tamper: str | None = None, state: str | None = None
    ) -> httpx.Response:
        """The whole round trip as a browser makes it; returns the outcome the login page reads."""
        start = self.client.get("/api/login/oidc", follow_redirects=False)
        assert start.status_code == 303, start.text
        at = start.headers["location"]
        assert at.startswith(self.provider.issuer + "/auth?")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(at).query)
        assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]
        if tamper:
            self.provider.tamper(tamper)
        with httpx.Client(base_url=self.provider.issuer, follow_redirects=False, timeout=10) as idp:
            r = idp.get(at)
            while r.status_code in (302, 303) and not r.headers["location"].startswith(CALLBACK):
                r = idp.get(r.headers["location"])
            if r.status_code == 200:  # the provider's login page
                action = re.search(r'action="([^"]+)"', r.text)
                assert action is not None, r.text
                r = idp.post(action.group(1), data={"login": login, "password": PASSWORD, "otp": otp})
                while r.status_code in (302, 303) and not r.headers["location"].startswith(CALLBACK):
                    r = idp.get(r.headers["location"])
            back = r.headers["location"]
        assert back.startswith(CALLBACK), back
        if state is not None:
            back = re.sub(r"state=[^&]+", f"state={state}", back)
        done = self.client.get(back.removeprefix(CONSOLE), follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/login?oidc=1", done.text
        return self.client.get("/api/login/oidc/outcome")

    def records(self, action: Action) -> list[Any]:
        return [e for e in self.audit.entries() if e.action == action]

    def last_failure(self) -> dict[str, Any]:
        entry = self.records(Action.LOGIN_FAILED)[-1]
        return {"user": entry.user_id, **entry.details}

    def account_id(self, login: str) -> str:
        account = find_account(self.store.engine, login)
        assert account is not None
        return account.id

    def clear_for_video(self, login: str, scope: list[str]) -> None:
        """What an administrator records before an operator sees video (habilitation, training)."""
        now = datetime.now(UTC)
        user = self.account_id(login)
        since = now - timedelta(days=30)
        habilitate(
            self.store.engine,
            self.audit,
            user=user,
            authority="Maire",
            designated_on=since,
            cameras=scope,
            recorded_by="u-admin",
            now=now,
        )
        train(
            self.store.engine,
            self.audit,
            user=user,
            course="RGPD",
            completed_on=since,
            recorded_by="u-admin",
            now=now,
        )


def open_console(cfg: Config, provider: Provider) -> Iterator[Console]:
    store = Store.open(cfg.store.url)
    with TestClient(create_app(cfg), base_url=CONSOLE, client=LOOPBACK) as client:
        yield Console(client, store, provider)
    store.close()


@pytest.fixture
def console(tmp_path: Path, provider: Provider) -> Iterator[Console]:
    yield from open_console(
        site(f"sqlite:///{tmp_path / 'lanterne.db'}", tmp_path, oidc_settings(provider)), provider
    )


# --- the flow --------------------------------------------------------------------------------


def test_operator_signs_in_through_the_directory(db_url: str, tmp_path: Path, provider: Provider) -> None:
    """First sign-in: the account is made with the mapped role and scope (recorded), then refused
    at the door like a local operator without records; with them, in, with the directory's
    second factor, the same session and CSRF as a local login, and the login recorded."""
    for c in open_console(site(db_url, tmp_path, oidc_settings(provider)), provider):
        first = c.sign_in("ana", otp=OTP)
        assert first.status_code == 403
        assert first.json()["detail"].startswith("operators log in with valid records: no habilitation")
        ana = c.account_id("ana.op")  # the e-mail's local part, lower-cased
        made = c.records(Action.USER_CHANGE)[-1]
        assert (made.user_id, made.object_id) == ("oidc", ana)
        assert made.details == {"change": "create", "role": "operator", "scope": ["quai-nord"]}
        assert c.last_failure() == {
            "user": ana,
            "method": "oidc",
            "reason": "no_valid_habilitation_or_training",
            "why": c.last_failure()["why"],
            "locked": False,
        }
        assert c.client.get("/api/me").status_code == 401

        c.clear_for_video("ana.op", ["quai-nord"])
        r = c.sign_in("ana", otp=OTP)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"] == {"id": ana, "login": "ana.op", "role": "operator", "scope": ["quai-nord"]}
        cookie = c.client.cookies.get(COOKIE)
        assert cookie
        me = c.client.get("/api/me")
        assert me.status_code == 200 and me.json()["csrf_token"] == body["csrf_token"]
        login = c.records(Action.LOGIN)[-1]
        assert login.user_id == ana
        assert login.details == {"method": "oidc", "second_factor": "provider"}
        # Nothing personal in the log: not the login, the e-mail, the subject or the groups.
        text = json.dumps([(e.user_id, e.details) for e in c.audit.entries()])
        assert "ana.op" not in text.lower() and "cctv-operators" not in text and '"ana"' not in text
        # The outcome is read once; the session then works like a local one, CSRF included.
        assert c.client.get("/api/login/oidc/outcome").status_code == 404
        assert c.client.post("/api/logout").status_code == 403
        assert c.client.post("/api/logout", headers={"X-CSRF-Token": body["csrf_token"]}).status_code == 200
        assert c.client.get("/api/me").status_code == 401
        # A directory account never logs in with a password (its hash is not an argon2 hash).
        assert c.client.post("/api/login", json={"login": "ana.op", "password": PASSWORD}).status_code == 401


def test_roles_follow_the_directory(console: Console) -> None:
    """The first mapping in the configuration's order wins; a change of groups in the directory
    changes the role at the next sign-in (recorded). An auditor, who sees no video, needs a
    second factor all the same (AC-04): the directory's password alone is refused."""
    c = console
    r = c.sign_in("alex")  # password only
    assert r.status_code == 403 and r.json()["detail"].startswith("the city directory did not confirm")
    assert c.last_failure()["reason"] == "no_second_factor"
    assert c.client.get("/api/me").status_code == 401
    r = c.sign_in("alex", otp=OTP)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "auditor"
    assert c.records(Action.LOGIN)[-1].details == {"method": "oidc", "second_factor": "provider"}

    r = c.sign_in("sam", otp=OTP)  # operators and supervisors: the supervisor mapping comes first
    assert r.status_code == 403  # no habilitation yet, but the account is made
    sam = find_account(c.store.engine, "sam.sup")
    assert sam is not None and (sam.role, sam.scope) == ("supervisor", ("*",))

    c.provider.move("sam", ["cctv-operators"])
    try:
        c.clear_for_video("sam.sup", ["quai-nord"])
        r = c.sign_in("sam", otp=OTP)
        assert r.status_code == 200, r.text
        assert r.json()["user"] == {
            "id": sam.id,
            "login": "sam.sup",
            "role": "operator",
            "scope": ["quai-nord"],
        }
        change = [e for e in c.records(Action.USER_CHANGE) if e.object_id == sam.id][-1]
        assert change.user_id == "oidc"
        assert change.details == {
            "change": "update",
            "role": "operator",
            "scope": ["quai-nord"],
            "login_changed": False,
        }
        r = c.client.get("/api/cameras")
        assert [cam["id"] for cam in r.json()] == ["quai-nord"]  # the mapped scope only
    finally:
        c.provider.move("sam", ["cctv-operators", "cctv-supervisors"])


def test_an_export_officer_comes_from_the_directory(console: Console) -> None:
    """AC-03: a directory group maps to the export officer's role, held to the watchers' door
    (records and a second factor), and let into the recordings but not the alerts."""
    c = console
    r = c.sign_in("lea", otp=OTP)
    assert r.status_code == 403
    assert r.json()["detail"].startswith("export_officers log in with valid records: no habilitation")
    c.clear_for_video("lea.exports", ["*"])
    r = c.sign_in("lea", otp=OTP)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "export_officer"
    assert c.records(Action.LOGIN)[-1].details == {"method": "oidc", "second_factor": "provider"}
    assert c.client.get("/console/recordings").status_code == 200
    assert c.client.get("/api/alerts").status_code == 403


def test_no_mapped_group_is_refused_and_recorded(console: Console) -> None:
    c = console
    r = c.sign_in("noah")
    assert r.status_code == 403
    assert "no group that gives access to Lanterne" in r.json()["detail"]
    assert c.last_failure() == {
        "user": "unknown",
        "method": "oidc",
        "reason": "no_mapped_role",
        "locked": False,
        "groups": 2,
    }
    assert find_account(c.store.engine, "noah") is None
    assert c.client.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("expired", "token_expired"),
        ("wrong_audience", "token_audience"),
        ("wrong_issuer", "token_issuer"),
        ("wrong_nonce", "token_nonce"),
        ("other_key", "token_signature"),
        ("tampered", "token_signature"),
        ("unsigned", "token_algorithm"),
        ("hs256_public_key", "token_algorithm"),
    ],
)
def test_a_forged_id_token_is_refused(console: Console, mode: str, reason: str) -> None:
    """The provider's token endpoint answers with a forged ID token: signed by its real key but
    expired, for another client, from another issuer or for another sign-in; signed by another
    key; its payload changed after signing; unsigned; or HMAC-signed with the public key."""
    c = console
    r = c.sign_in("alex", tamper=mode)
    assert r.status_code == 401, r.text
    assert r.json()["detail"]
    assert c.last_failure() == {"user": "unknown", "method": "oidc", "reason": reason, "locked": False}
    assert c.client.get("/api/me").status_code == 401
    assert not c.records(Action.LOGIN)
    assert find_account(c.store.engine, "alex.dpo") is None


def test_a_wrong_state_is_refused(console: Console) -> None:
    """A callback whose state is not this browser's sign-in (login CSRF, a replayed link) is
    refused and recorded, and spends the sign-in: the genuine code cannot be used afterwards."""
    c = console
    r = c.sign_in("alex", state="forged-state")
    assert r.status_code == 400
    assert "click the sign-in button again" in r.json()["detail"]
    assert c.last_failure() == {
        "user": "unknown",
        "method": "oidc",
        "reason": "state_mismatch",
        "locked": False,
    }
    assert c.client.get("/api/me").status_code == 401

    # A callback from a browser that never started a sign-in (no sign-in cookie).
    c.client.cookies.clear()
    r = c.client.get("/api/login/oidc/callback", params={"code": "x", "state": "y"}, follow_redirects=False)
    assert r.status_code == 303
    assert c.client.get("/api/login/oidc/outcome").status_code == 400
    assert c.last_failure()["reason"] == "state_mismatch"


def test_forged_callbacks_are_throttled(tmp_path: Path, provider: Provider) -> None:
    """A script replaying forged callbacks is locked out by address like a password guesser, so
    it cannot flood the audit log: the failure that locks is recorded, the next ones are not."""
    cfg = site(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, oidc_settings(provider), max_failed_logins=2)
    for c in open_console(cfg, provider):
        for _ in range(4):
            c.client.get("/api/login/oidc", follow_redirects=False)  # a real state cookie
            r = c.client.get(
                "/api/login/oidc/callback", params={"code": "x", "state": "forged"}, follow_redirects=False
            )
            assert r.headers["location"] == "/login?oidc=1"
        failures = c.records(Action.LOGIN_FAILED)
        assert [f.details["locked"] for f in failures] == [False, True]
        assert c.client.get("/api/login/oidc/outcome").status_code == 429
        # Locked for everyone at this address, a genuine sign-in included.
        assert c.sign_in("alex").status_code == 429
        assert len(c.records(Action.LOGIN_FAILED)) == 2


def test_second_factor_when_the_directory_asserts_none(console: Console) -> None:
    """A password-only directory sign-in of an operator: without a Lanterne TOTP enrolled it is
    refused with the way out; with one, the code step follows (a wrong code is recorded and
    counted, the right one opens the session, recorded with `second_factor: totp`)."""
    c = console
    r = c.sign_in("zoe")  # no one-time code at the directory: amr ["pwd"]
    assert r.status_code == 403
    assert "did not confirm a second factor" in r.json()["detail"]
    assert "lanterne users totp" in r.json()["detail"]
    zoe = c.account_id("zoe.op")
    assert c.last_failure() == {"user": zoe, "method": "oidc", "reason": "no_second_factor", "locked": False}

    enrolment = enrol_second_factor(c.store.engine, c.audit, "zoe.op", "u-admin")
    c.clear_for_video("zoe.op", ["quai-nord"])
    r = c.sign_in("zoe")
    assert r.status_code == 200 and r.json()["step"] == "code", r.text
    assert c.client.get("/api/me").status_code == 401
    # The page reads the outcome again after a reload: still the code step.
    assert c.client.get("/api/login/oidc/outcome").json()["step"] == "code"

    r = c.client.post("/api/login/oidc/code", json={"code": "000000"})
    assert r.status_code == 401 and r.json()["detail"].startswith("wrong code")
    assert c.last_failure() == {"user": zoe, "method": "oidc", "reason": "bad_code", "locked": False}

    code = pyotp.TOTP(enrolment.secret).now()
    r = c.client.post("/api/login/oidc/code", json={"code": code})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["login"] == "zoe.op"
    assert c.client.get("/api/me").status_code == 200
    assert c.records(Action.LOGIN)[-1].details == {"method": "oidc", "second_factor": "totp"}
    # The sign-in is over: the code cannot be sent again.
    assert c.client.post("/api/login/oidc/code", json={"code": code}).status_code == 404

    # With the directory's one-time code, no Lanterne code is asked.
    r = c.sign_in("zoe", otp=OTP)
    assert r.status_code == 200 and "csrf_token" in r.json()


def test_acr_can_assert_the_second_factor(tmp_path: Path, provider: Provider) -> None:
    """A site that trusts the provider's assurance level, not its `amr`."""
    settings = oidc_settings(provider, second_factor_amr=[], second_factor_acr=["urn:ville:loa:2"])
    for c in open_console(site(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, settings), provider):
        assert c.sign_in("zoe", otp=OTP).status_code == 403  # made, but no habilitation yet
        c.clear_for_video("zoe.op", ["quai-nord"])
        assert c.sign_in("zoe", otp=OTP).status_code == 200  # acr loa:2
        assert c.sign_in("zoe").json()["detail"].startswith("the city directory did not confirm")  # acr loa:1


def test_accounts_the_directory_cannot_take(console: Console) -> None:
    """A directory login that is a local account's, a login that is not a Lanterne login, and an
    account disabled in Lanterne are refused and recorded."""
    c = console
    create_account(c.store.engine, c.audit, "local.admin", "admin", ["*"], "a long local password", "u-admin")
    r = c.sign_in("eve")
    assert r.status_code == 403 and "already has the login" in r.json()["detail"]
    assert c.last_failure()["reason"] == "login_taken"
    assert find_account(c.store.engine, "local.admin").role == "admin"  # untouched

    r = c.sign_in("jean")
    assert r.status_code == 403 and "not a valid Lanterne login" in r.json()["detail"]
    assert c.last_failure()["reason"] == "login_claim_invalid"

    assert c.sign_in("alex", otp=OTP).status_code == 200
    disable_account(c.store.engine, c.audit, "alex.dpo", "u-admin")
    c.client.cookies.clear()
    r = c.sign_in("alex", otp=OTP)
    assert r.status_code == 403 and "disabled" in r.json()["detail"]
    assert c.last_failure() == {
        "user": c.account_id("alex.dpo"),
        "method": "oidc",
        "reason": "disabled",
        "locked": False,
    }


def test_without_oidc_the_routes_say_so(tmp_path: Path) -> None:
    cfg = site(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, None)
    with TestClient(create_app(cfg), client=LOOPBACK) as client:
        assert client.get("/api/login/methods").json() == {"oidc": None}
        r = client.get("/api/login/oidc", follow_redirects=False)
        assert r.status_code == 404 and "not configured" in r.json()["detail"]
        assert client.get("/api/login/oidc/callback", params={"code": "x", "state": "y"}).status_code == 404
        assert client.post("/api/login/oidc/code", json={"code": "123456"}).status_code == 404


def test_an_unreachable_provider_is_said(tmp_path: Path, provider: Provider) -> None:
    settings = oidc_settings(provider, issuer=f"http://127.0.0.1:{free_port()}")
    with TestClient(
        create_app(site(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, settings)), client=LOOPBACK
    ) as client:
        assert client.get("/api/login/methods").json() == {
            "oidc": {"name": "Annuaire de la Ville", "url": "/api/login/oidc"}
        }
        r = client.get("/api/login/oidc", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?oidc=1"
        r = client.get("/api/login/oidc/outcome")
        assert r.status_code == 502 and "cannot be reached" in r.json()["detail"]


# --- the pieces --------------------------------------------------------------------------------


def test_the_id_token_checks_one_by_one(provider: Provider) -> None:
    """`verify_id_token` on tokens signed with the provider's real key (the test holds it), one
    claim wrong at a time; the good one passes."""
    import jwt

    settings = OidcSettings(**oidc_settings(provider))
    client = OidcClient(settings, CAMERAS)
    now = int(time.time())
    good = {
        "iss": provider.issuer,
        "sub": "ana",
        "aud": "lanterne",
        "iat": now,
        "exp": now + 300,
        "nonce": "n1",
    }
    private = RSAAlgorithm.from_jwk(json.dumps(provider.key))

    def token(claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": "city-2026", **header})

    assert client.verify_id_token(token(good), "n1")["sub"] == "ana"
    cases = {
        "token_nonce": (good, "n2"),
        "token_expired": (good | {"exp": now - 3600, "iat": now - 7200}, "n1"),
        "token_audience": (good | {"aud": ["lanterne", "other"]}, "n1"),  # several audiences, no azp
        "token_issuer": (good | {"iss": provider.issuer + "/other"}, "n1"),
        "token_claims": ({k: v for k, v in good.items() if k != "exp"}, "n1"),
        "token_not_yet_valid": (good | {"iat": now + 3600}, "n1"),
    }
    for reason, (claims, nonce) in cases.items():
        with pytest.raises(OidcError) as caught:
            client.verify_id_token(token(claims), nonce)
        assert caught.value.reason == reason, reason
    assert client.verify_id_token(token(good | {"aud": ["lanterne", "other"], "azp": "lanterne"}), "n1")
    with pytest.raises(OidcError) as caught:  # a key id the provider does not publish
        client.verify_id_token(token(good, kid="unknown"), "n1")
    assert caught.value.reason == "token_signature"


def test_a_mix_up_is_refused(provider: Provider) -> None:
    """RFC 9207: an authorization response naming another issuer is refused before any exchange."""
    client = OidcClient(OidcSettings(**oidc_settings(provider)))
    tx = Transaction("s", "n", "v" * 43, datetime.now(UTC))
    with pytest.raises(OidcError) as caught:
        client.finish("code", tx, iss="https://impostor.example")
    assert caught.value.reason == "token_issuer"


def test_mapping_and_second_factor_tables(provider: Provider) -> None:
    settings = OidcSettings(**oidc_settings(provider, second_factor_acr=["urn:ville:loa:2"]))
    for groups, role in [
        (["cctv-operators"], "operator"),
        (["cctv-operators", "cctv-supervisors"], "supervisor"),
        (["dpo-office", "cctv-operators"], "operator"),
        (["CCTV-operators"], None),  # compared exactly
        ([], None),
    ]:
        found = role_for(settings, groups)
        assert (found.role if found else None) == role, groups

    def who(amr: tuple[str, ...], acr: str | None) -> Identity:
        return Identity(provider.issuer, "s", "a.b", (), amr, acr)

    assert second_factor_asserted(settings, who(("pwd", "mfa"), None))
    assert second_factor_asserted(settings, who(("otp",), None))
    assert second_factor_asserted(settings, who(("pwd",), "urn:ville:loa:2"))
    assert not second_factor_asserted(settings, who(("pwd",), "urn:ville:loa:1"))
    assert not second_factor_asserted(settings, who((), None))
    assert [login_from_claim(v) for v in ("J.Martin@ville.fr", "ab", "agent_7", 12, "é.dupont")] == [
        "j.martin",
        None,
        "agent_7",
        None,
        None,
    ]


def test_the_configuration_refuses_what_would_leak(provider: Provider) -> None:
    from pydantic import ValidationError

    for bad in (
        {"issuer": "http://sso.ville.fr/realms/agents"},  # plain http off the loopback
        {"client_secret_file": "oidc-secret"},  # relative: where would it be read from?
        {"scopes": ["profile"]},
        {"roles": []},
        {"roles": [ROLES[0], ROLES[0]]},
        {"client_secret": "inline"},  # never the secret itself
    ):
        with pytest.raises(ValidationError):
            OidcSettings(**oidc_settings(provider, **bad))
    with pytest.raises(Exception, match="names camera 'gare'"):
        OidcClient(OidcSettings(**oidc_settings(provider, roles=[ROLES[0] | {"scope": ["gare"]}])), CAMERAS)


def test_sync_account_binds_the_subject_not_the_login(tmp_path: Path, provider: Provider) -> None:
    """A person renamed in the directory keeps their account; another person cannot take it by
    taking the old login."""
    store = Store.open(f"sqlite:///{tmp_path / 'l.db'}")
    audit = AuditLog(store.engine)
    settings = OidcSettings(**oidc_settings(provider))
    mapping = settings.roles[2]
    now = datetime.now(UTC)
    first = sync_account(
        store.engine, audit, Identity(provider.issuer, "p-1", "m.durand", (), (), None), mapping, now
    )
    renamed = sync_account(
        store.engine, audit, Identity(provider.issuer, "p-1", "m.dupont", (), (), None), mapping, now
    )
    assert renamed.id == first.id and renamed.login == "m.dupont"
    assert audit.entries()[-1].details["login_changed"] is True
    other = sync_account(
        store.engine, audit, Identity(provider.issuer, "p-2", "m.durand", (), (), None), mapping, now
    )
    assert other.id != first.id
    with pytest.raises(OidcError, match="already has the login"):
        sync_account(
            store.engine, audit, Identity(provider.issuer, "p-3", "m.dupont", (), (), None), mapping, now
        )
    store.close()


# --- in a real browser ---------------------------------------------------------------------------


def test_sign_in_from_the_login_page_in_chromium(tmp_path: Path) -> None:
    """Debian's chromium, from the console's login page to the provider (on another site:
    `localhost`, while the console is `127.0.0.1`, so SameSite applies as in a city) and back:
    an auditor lands on the oversight page; an operator whose directory asserted no second factor
    types the Lanterne code on the login page and lands on the alert queue."""
    from playwright.sync_api import sync_playwright

    proc, idp = start_provider(tmp_path, "localhost", [BROWSER_CALLBACK])
    server = None
    try:
        settings = oidc_settings(idp, redirect_url=BROWSER_CALLBACK)
        db = tmp_path / "lanterne.db"
        config = {
            "site": "Ville d'Exemple",
            "store": {"url": f"sqlite:///{db}"},
            "audit": {"key_path": str(tmp_path / "audit.key")},
            "cameras": [
                {"id": c, "source": f"{c}.mp4", "location": {"lat": 48.88, "lon": 2.35}} for c in CAMERAS
            ],
            "oidc": settings,
        }
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(config))
        # The operator was made by an earlier sign-in; an administrator enrolled and cleared them.
        store = Store.open(f"sqlite:///{db}")
        audit = AuditLog(store.engine)
        mapping = OidcSettings(**settings).roles[1]
        zoe = sync_account(
            store.engine,
            audit,
            Identity(idp.issuer, "zoe", "zoe.op", (), (), None),
            mapping,
            datetime.now(UTC),
        )
        secret = enrol_second_factor(store.engine, audit, "zoe.op", "u-admin").secret
        since = datetime.now(UTC) - timedelta(days=30)
        habilitate(
            store.engine,
            audit,
            user=zoe.id,
            authority="Maire",
            designated_on=since,
            cameras=["quai-nord"],
            recorded_by="u-admin",
            now=since,
        )
        train(
            store.engine,
            audit,
            user=zoe.id,
            course="RGPD",
            completed_on=since,
            recorded_by="u-admin",
            now=since,
        )
        store.close()

        base = f"http://127.0.0.1:{BROWSER_PORT}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lanterne.cli.main",
                "serve",
                "--config",
                str(path),
                "--port",
                str(BROWSER_PORT),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/login", timeout=1):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "lanterne serve did not start"
                time.sleep(0.2)

        problems: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for login, otp in (("alex", OTP), ("zoe", "")):
                    page = browser.new_context().new_page()
                    page.on("pageerror", lambda e: problems.append(str(e)))
                    page.goto(base + "/login", wait_until="networkidle")
                    button = page.locator("#oidc-link")
                    assert button.is_visible()
                    assert button.inner_text() == "Sign in with Annuaire de la Ville"
                    button.click()
                    page.wait_for_url(lambda url: url.startswith(idp.issuer + "/interaction/"))
                    page.fill("#idp-login", login)
                    page.fill("#idp-password", PASSWORD)
                    page.fill("#idp-otp", otp)
                    page.click("#idp-submit")
                    if login == "alex":
                        page.wait_for_url(lambda url: url.endswith("/console/oversight"), timeout=15000)
                    else:
                        page.wait_for_url(lambda url: "/login" in url and url.startswith(base))
                        wait_until(page, "document.getElementById('password-fields').hidden", 10)
                        assert "did not confirm a second factor" in page.inner_text("#message")
                        assert not page.locator("#password").is_visible()
                        OUTPUT.mkdir(exist_ok=True)
                        page.screenshot(path=str(OUTPUT / "oidc-code-step.png"))
                        page.fill("#code", pyotp.TOTP(secret).now())
                        page.click("#submit")
                        page.wait_for_url(lambda url: url.endswith("/console"), timeout=15000)
                    me = page.evaluate("fetch('/api/me').then(r => r.json())")
                    assert me["user"]["login"] == ("alex.dpo" if login == "alex" else "zoe.op")
                    assert me["csrf_token"] == page.evaluate("sessionStorage.getItem('lanterne.csrf')")
                    page.context.close()
                # The login page as a person sees it.
                page = browser.new_page()
                page.goto(base + "/login", wait_until="networkidle")
                page.screenshot(path=str(OUTPUT / "oidc-login.png"))
            finally:
                browser.close()
        assert not problems, problems
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        proc.terminate()
        proc.wait(timeout=10)
