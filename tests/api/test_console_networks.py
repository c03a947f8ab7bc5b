"""The console answers only the workstations of `console.allowed_networks` (AC-04): the login page,
the pages and the API are refused elsewhere with 403 and a reason naming the setting, each refusal
is recorded without the address, and `X-Forwarded-For` is believed only from trusted proxies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lanterne.accountability.networks import NetworkGate
from lanterne.api.app import create_app
from lanterne.audit import Action
from lanterne.config import load_config
from lanterne.core.errors import ConfigError
from tests.support.browser import free_port
from tests.support.console import Clock, Console, login_json, open_console, site_config

CONTROL_ROOM = "10.20.30.0/24"
DESK = "10.20.30.7"
OUTSIDE = "192.0.2.10"
PROXY = "10.20.0.5"
REFUSED = "this workstation's network may not use the console"


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path, clock: Clock, cheap_hashes: None) -> Iterator[Console]:
    """A console for the control room only, behind a trusted reverse proxy on this machine: the
    test client connects from the loopback, as the proxy would, and names the workstation in
    `X-Forwarded-For`."""
    cfg = site_config(sqlite_url, tmp_path, allowed_networks=[CONTROL_ROOM], trusted_proxies=["127.0.0.1/32"])
    yield from open_console(cfg, clock)


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def refusals(site: Console) -> list[tuple[str, dict[str, object]]]:
    return [
        (e.user_id, e.details)
        for e in site.audit_entries(Action.ACCESS_DENIED)
        if e.details.get("reason") in ("outside_allowed_networks", "unknown_address")
    ]


def test_the_control_room_uses_the_console(site: Console) -> None:
    c = site.client
    assert c.get("/login", headers=via(DESK)).status_code == 200
    r = c.post(
        "/api/login",
        json=login_json("audi", at=site.clock.now, account_id=site.ids["audi"]),
        headers=via(DESK),
    )
    assert r.status_code == 200, r.text
    assert c.get("/api/me", headers=via(DESK)).status_code == 200
    assert refusals(site) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/login"),
        ("POST", "/api/login"),
        ("GET", "/api/alerts"),
        ("GET", "/console"),
        ("GET", "/docs"),
    ],
)
def test_elsewhere_everything_of_the_console_is_refused(site: Console, method: str, path: str) -> None:
    body = login_json("oper", account_id=site.ids["oper"]) if path == "/api/login" else None
    r = site.client.request(method, path, json=body, headers=via(OUTSIDE))
    assert r.status_code == 403
    assert r.json() == {
        "detail": "this workstation's network may not use the console; the administrator lists the "
        "allowed networks in `console.allowed_networks`"
    }
    assert "set-cookie" not in r.headers
    assert r.headers["X-Frame-Options"] == "DENY", "a refusal carries the security headers too"
    [(user, details)] = refusals(site)
    assert (user, details) == (
        "unknown",
        {
            "denied": "console",
            "reason": "outside_allowed_networks",
            "method": method,
            "path": path,
            "unrecorded_since_last": 0,
        },
    )


def test_the_public_notice_and_the_probes_stay_open(site: Console) -> None:
    for path in ("/public", "/public/transparency.json", "/healthz"):
        assert site.client.get(path, headers=via(OUTSIDE)).status_code == 200, path
    assert refusals(site) == []


def test_refusals_are_recorded_without_the_address_and_with_the_user_when_known(site: Console) -> None:
    """A logged-in agent whose session is used from elsewhere is refused and named, every time;
    anonymous refusals are recorded once a minute with the count in between, so that a scanner
    cannot bury the log. The address is in no record."""
    c = site.client
    r = c.post(
        "/api/login",
        json=login_json("audi", at=site.clock.now, account_id=site.ids["audi"]),
        headers=via(DESK),
    )
    assert r.status_code == 200
    for _ in range(2):
        assert c.get("/api/me", headers=via(OUTSIDE)).status_code == 403
    c.cookies.clear()
    for _ in range(3):
        assert c.get("/login", headers=via(OUTSIDE)).status_code == 403
    site.clock.now += timedelta(minutes=1)
    assert c.get("/login", headers=via(OUTSIDE)).status_code == 403
    found = refusals(site)
    assert [(user, d.get("unrecorded_since_last")) for user, d in found] == [
        (site.ids["audi"], None),
        (site.ids["audi"], None),
        ("unknown", 0),
        ("unknown", 2),
    ]
    text = json.dumps([(e.user_id, e.details) for e in site.audit.entries()])
    assert OUTSIDE not in text and DESK not in text and "127.0.0.1" not in text


@pytest.mark.parametrize(
    ("forwarded", "status"),
    [
        (DESK, 200),  # the proxy says the desk: believed
        (f"{OUTSIDE}, {DESK}", 200),  # the client's own header left of the proxy's: not read
        (f"{DESK}, {OUTSIDE}", 403),  # the proxy saw the outside address
        (None, 403),  # no header: the proxy itself, on the loopback, is not a workstation
        ("not-an-address", 403),  # garbled: cannot tell, refused
    ],
)
def test_a_trusted_proxy_is_believed(site: Console, forwarded: str | None, status: int) -> None:
    headers = {} if forwarded is None else via(forwarded)
    assert site.client.get("/login", headers=headers).status_code == status
    if forwarded == "not-an-address":
        r = site.client.get("/api/me", headers=headers)
        assert "console.trusted_proxies" in r.json()["detail"]
        assert refusals(site)[0][1]["reason"] == "unknown_address"


def test_the_throttle_counts_each_workstation_behind_the_proxy_apart(site: Console) -> None:
    """The address the gate found is the one the login throttle counts: a guesser at one desk
    locks that desk out, not the whole control room behind the same proxy."""
    guesser, colleague = via(DESK), via("10.20.30.8")
    for i in range(5):  # `console.max_failed_logins`, default 5
        r = site.client.post("/api/login", json={"login": f"x{i}", "password": "guess"}, headers=guesser)
        assert r.status_code == 401
    assert (
        site.client.post("/api/login", json={"login": "y", "password": "g"}, headers=guesser).status_code
        == 429
    )
    assert (
        site.client.post("/api/login", json={"login": "y", "password": "g"}, headers=colleague).status_code
        == 401
    )


def test_an_untrusted_peer_is_judged_by_its_own_address(site: Console) -> None:
    """Anyone can write `X-Forwarded-For`: from a peer that is not a trusted proxy it is ignored,
    both ways."""
    cfg = site.client.app.state.cfg  # type: ignore[attr-defined]
    with TestClient(create_app(cfg, clock=site.clock), client=(OUTSIDE, 40000)) as outside:
        assert outside.get("/login", headers=via(DESK)).status_code == 403
        with pytest.raises(WebSocketDisconnect) as closed, outside.websocket_connect("/api/live/gateway"):
            pass
        assert closed.value.code == 1008
    with TestClient(create_app(cfg, clock=site.clock), client=(DESK, 40000)) as desk:
        assert desk.get("/login", headers=via(OUTSIDE)).status_code == 200
    assert [d["method"] for _, d in refusals(site)] == ["GET"], "the WebSocket fell in the same minute"


def test_the_default_is_this_machine_only(sqlite_url: str, tmp_path: Path, clock: Clock) -> None:
    cfg = site_config(sqlite_url, tmp_path)
    assert cfg.console.allowed_networks == ["127.0.0.0/8", "::1/128"]
    assert cfg.console.trusted_proxies == ["127.0.0.0/8", "::1/128"]
    with TestClient(create_app(cfg, clock=clock), client=("::1", 40000)) as local:
        assert local.get("/login").status_code == 200
        # A proxy on this machine is believed: what it forwards from the LAN is the LAN's.
        assert local.get("/login", headers=via("10.0.0.2")).status_code == 403
    with TestClient(create_app(cfg, clock=clock), client=("10.0.0.2", 40000)) as lan:
        assert lan.get("/login").status_code == 403
    with TestClient(create_app(cfg, clock=clock)) as nameless:  # `testclient`: no address at all
        r = nameless.get("/login")
        assert r.status_code == 403 and "cannot tell" in r.json()["detail"]


def write(tmp_path: Path, **console: object) -> Path:
    path = tmp_path / "site.yaml"
    data = {
        "site": "Ville d'Exemple",
        "store": {"url": f"sqlite:///{tmp_path / 'lanterne.db'}"},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": [{"id": "c1", "source": "c1.mp4", "location": {"lat": 48.85, "lon": 2.35}}],
        "console": console,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("console", "message"),
    [
        (
            {"allowed_networks": ["10.20.30.7/24"]},
            "console.allowed_networks[0]: '10.20.30.7/24' is not a CIDR network (10.20.30.7/24 has host "
            "bits set); write it like 10.20.0.0/16, 192.0.2.7/32 or 2001:db8::/48",
        ),
        (
            {"allowed_networks": [CONTROL_ROOM, "mairie"]},
            "console.allowed_networks[1]: 'mairie' is not a CIDR",
        ),
        ({"allowed_networks": ["10.0.0.0/33"]}, "console.allowed_networks[0]: '10.0.0.0/33' is not a CIDR"),
        (
            {"trusted_proxies": ["proxy.ville.fr"]},
            "console.trusted_proxies[0]: 'proxy.ville.fr' is not a CIDR",
        ),
        ({"allowed_networks": []}, "console.allowed_networks: list at least one network"),
        ({"allowed_network": [CONTROL_ROOM]}, "console.allowed_network: unknown key"),
    ],
)
def test_a_malformed_network_is_refused_at_load(
    tmp_path: Path, console: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, **console))
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_well_formed_list_loads_in_canonical_form(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, allowed_networks=[" 10.20.30.0/24", "2001:DB8::/48"], trusted_proxies=[PROXY])
    )
    assert cfg.console.allowed_networks == ["10.20.30.0/24", "2001:db8::/48"]
    assert cfg.console.trusted_proxies == ["10.20.0.5/32"]


def test_the_gate_reads_chains_and_mapped_addresses() -> None:
    gate = NetworkGate([CONTROL_ROOM], [f"{PROXY}/32", "127.0.0.1/32"])
    assert str(gate.client("::ffff:10.20.30.7", None)) == DESK, "IPv4 seen through a dual-stack socket"
    assert str(gate.client("127.0.0.1", f"{OUTSIDE}, {DESK}, {PROXY}")) == DESK
    assert str(gate.client("127.0.0.1", f"{PROXY}, {PROXY}")) == PROXY, "all trusted: the leftmost"
    assert gate.client(None, DESK) is None
    assert not gate.admits(None)
    assert not gate.open_to_all and NetworkGate(["0.0.0.0/0"]).open_to_all


def test_lanterne_serve_says_who_may_use_the_console(tmp_path: Path) -> None:
    """The list is printed at every start, and the running server refuses this machine when the
    list does not name it, while the public notice answers."""
    path = write(tmp_path, allowed_networks=[CONTROL_ROOM], trusted_proxies=[f"{PROXY}/32"])
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanterne.cli.main", "serve", "--config", str(path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"PYTHONUNBUFFERED": "1", "COLUMNS": "300"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.strip() == (
            "the console answers only 10.20.30.0/24 (console.allowed_networks); X-Forwarded-For is "
            "believed from 10.20.0.5/32 (console.trusted_proxies)"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/public/style.css", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "lanterne serve did not start"
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/login", timeout=5)
        assert refused.value.code == 403 and REFUSED in refused.value.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
