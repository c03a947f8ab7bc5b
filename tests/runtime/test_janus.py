"""Lanterne's Janus gateway (issue 14) against Debian's real Janus 1.1.2: its own Janus loads the
streaming plugin and the HTTP and WebSocket transports only and takes real H.264 RTP from PyAV; Janus itself
refuses a request without a stored token, a `watch` with a wrong or rotated pin, and a removed
token; a Janus killed with SIGKILL comes back with the same mountpoints, ports, pins and tokens;
an existing Janus by URL is driven the same way; and a missing binary or a taken port is one
line saying what to do."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from lanterne.core.errors import JanusError
from lanterne.runtime.janus import Janus, Mountpoint

WAIT_SECONDS = 15.0
"""Generous bounds for what takes milliseconds on an idle machine."""


@pytest.fixture
def janus(tmp_path: Path) -> Iterator[Janus]:
    if shutil.which("janus") is None:
        pytest.fail("janus is not installed; `apt-get install janus` (.ci/run does)")
    gateway = Janus.start_own(tmp_path / "janus")
    try:
        yield gateway
    finally:
        gateway.stop()


def wait_until(condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=40) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def own_settings(janus: Janus) -> dict[str, str]:
    """What an operator reads in their Janus's configuration to give `Janus.existing`."""
    assert janus.log_path is not None
    workdir = janus.log_path.parent
    core = (workdir / "janus.jcfg").read_text()
    streaming = (workdir / "janus.plugin.streaming.jcfg").read_text()
    return {
        "admin_secret": re.findall(r'admin_secret = "([^"]+)"', core)[0],
        "admin_key": re.findall(r'admin_key = "([^"]+)"', streaming)[0],
    }


class Viewer:
    """A browser's side of the Janus API, without the browser: a session and a streaming handle
    opened with a token, and the plugin's answers read from the long poll."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url
        self.token = token
        session = self.request(api_url, {"janus": "create"})
        assert session["janus"] == "success", session
        self.session = int(session["data"]["id"])
        handle = self.request(
            f"{api_url}/{self.session}", {"janus": "attach", "plugin": "janus.plugin.streaming"}
        )
        assert handle["janus"] == "success", handle
        self.handle = int(handle["data"]["id"])

    def request(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return post(url, {**body, "transaction": secrets.token_hex(6), "token": self.token})

    def watch(self, mountpoint_id: int, pin: str) -> dict[str, Any]:
        """The plugin's event answering `watch`, with the SDP offer when it was accepted."""
        ack = self.request(
            f"{self.api_url}/{self.session}/{self.handle}",
            {"janus": "message", "body": {"request": "watch", "id": mountpoint_id, "pin": pin}},
        )
        assert ack["janus"] == "ack", ack
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            event = get(f"{self.api_url}/{self.session}?maxev=1&token={self.token}")
            if event.get("janus") == "event" and event.get("sender") == self.handle:
                return event
        raise AssertionError("no answer to watch")


def refused(event: dict[str, Any]) -> bool:
    return event["plugindata"]["data"].get("error_code") == 457


def accepted(event: dict[str, Any]) -> bool:
    """`watch` was accepted: Janus offers the stream, with ICE candidates on the host's network
    interface (enforcing loopback would leave none: Janus 1.1.2 skips it when gathering)."""
    data = event["plugindata"]["data"]
    jsep = event.get("jsep", {})
    return (
        data.get("result", {}).get("status") == "preparing"
        and jsep.get("type") == "offer"
        and "a=candidate:" in jsep.get("sdp", "")
    )


def mountpoint_info(janus: Janus, mp: Mountpoint) -> dict[str, Any]:
    """The streaming plugin's `info` with the mountpoint's secret, asked through the admin API."""
    answer = post(
        janus.admin_url,
        {
            "janus": "message_plugin",
            "transaction": "t",
            "admin_secret": own_settings(janus)["admin_secret"],
            "plugin": "janus.plugin.streaming",
            "request": {"request": "info", "id": mp.id, "secret": mp.secret},
        },
    )
    info: dict[str, Any] = answer["response"]["info"]
    return info


def handle_state(janus: Janus, viewer: Viewer) -> dict[str, Any]:
    """What Janus's admin API says the viewer's streaming handle is doing."""
    answer = post(
        f"{janus.admin_url}/{viewer.session}/{viewer.handle}",
        {"janus": "handle_info", "transaction": "t", "admin_secret": own_settings(janus)["admin_secret"]},
    )
    state: dict[str, Any] = answer["info"]["plugin_specific"]
    return state


class Camera(threading.Thread):
    """A camera process's live output: 320x240 H.264 baseline at 10 fps from numpy frames, sent as
    RTP to a mountpoint's port with PyAV, SPS/PPS repeated in-band."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stopping = threading.Event()
        self.frames = 0

    def run(self) -> None:
        out = av.open(f"rtp://127.0.0.1:{self.port}", "w", format="rtp")
        stream = out.add_stream(
            "libx264",
            rate=10,
            options={
                "preset": "ultrafast",
                "tune": "zerolatency",
                "profile": "baseline",
                "x264-params": "keyint=10:min-keyint=10:scenecut=0:bframes=0:repeat-headers=1",
            },
        )
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        picture = np.zeros((240, 320, 3), np.uint8)
        while not self.stopping.is_set() and self.frames < 600:
            picture[:, :, 1] = (self.frames * 7) % 256
            picture[100:140, (self.frames * 5) % 280 :][:, :40] = 255
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = self.frames
            for packet in stream.encode(frame):
                out.mux(packet)
            self.frames += 1
            time.sleep(0.1)
        for packet in stream.encode(None):
            out.mux(packet)
        out.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=WAIT_SECONDS)


def test_own_janus_loads_only_what_the_wall_needs_and_takes_h264(janus: Janus) -> None:
    assert janus.alive()
    info = get(janus.api_url + "/info")
    assert set(info["plugins"]) == {"janus.plugin.streaming"}
    assert set(info["transports"]) == {"janus.transport.http", "janus.transport.websockets"}
    assert info["events"] == {} and info["loggers"] == {}
    assert info["auth_token"] is True

    mp = janus.create_mountpoint(11, "camera 11")
    assert mp.id == 11 and mp.rtp_port > 0
    # Its RTCP port, where the camera process's stream takes its viewers' keyframe requests from.
    assert mp.rtcp_port is not None and mp.rtcp_port not in (0, mp.rtp_port)
    assert mountpoint_info(janus, mp)["media"][0]["rtcpport"] == mp.rtcp_port
    assert janus.mountpoints() == [11]
    assert janus.create_mountpoint(11, "camera 11") == mp, "idempotent: the same mountpoint comes back"
    # Janus counts a mountpoint's media age from its creation until the first packet.
    assert wait_until(lambda: (janus.media_age(mp) or 0.0) >= 1.0)

    camera = Camera(mp.rtp_port)
    camera.start()
    try:
        assert wait_until(lambda: (janus.media_age(mp) or 99.0) < 0.5), "Janus received no video"
    finally:
        camera.stop()
    assert camera.frames > 0

    janus.destroy_mountpoint(mp)
    assert janus.mountpoints() == []
    assert janus.media_age(mp) is None
    janus.destroy_mountpoint(mp)  # already gone: not an error


def test_cors_is_restricted_to_the_console(tmp_path: Path) -> None:
    origin = "https://console.example.org"
    with Janus.start_own(tmp_path / "janus", allow_origin=origin, ice_interface="nosuchif0") as janus:
        with urllib.request.urlopen(janus.api_url + "/info", timeout=WAIT_SECONDS) as response:
            assert response.headers["Access-Control-Allow-Origin"] == origin
        assert janus.log_path is not None
        assert "Adding 'nosuchif0' to the ICE enforce list" in janus.log_path.read_text()


def test_token_auth_is_enforced_by_janus(janus: Janus) -> None:
    forged = secrets.token_urlsafe(16)
    for body in (
        {"janus": "create", "transaction": "a"},
        {"janus": "create", "transaction": "b", "token": forged},
    ):
        answer = post(janus.api_url, body)
        assert answer["janus"] == "error" and answer["error"]["code"] == 403, answer

    token = secrets.token_urlsafe(16)
    janus.add_token(token)
    assert janus.tokens() == [token]
    viewer = Viewer(janus.api_url, token)  # a session and a streaming handle with the token

    janus.remove_token(token)
    assert janus.tokens() == []
    answer = post(janus.api_url, {"janus": "create", "transaction": "c", "token": token})
    assert answer["janus"] == "error" and answer["error"]["code"] == 403, answer
    answer = viewer.request(f"{janus.api_url}/{viewer.session}", {"janus": "keepalive"})
    assert answer["janus"] == "error" and answer["error"]["code"] == 403, "the token's sessions are shut too"
    janus.remove_token(token)  # already gone: not an error


def test_the_pin_gates_watch_and_rotates(janus: Janus) -> None:
    token = secrets.token_urlsafe(16)
    janus.add_token(token)
    mp = janus.create_mountpoint(5, "camera 5")

    assert refused(Viewer(janus.api_url, token).watch(5, "wrong"))
    first = Viewer(janus.api_url, token)
    assert accepted(first.watch(5, mp.pin))

    rotated = janus.set_pin(mp, secrets.token_hex(16))
    assert rotated.pin != mp.pin and (rotated.id, rotated.rtp_port, rotated.secret) == (
        mp.id,
        mp.rtp_port,
        mp.secret,
    )
    assert refused(Viewer(janus.api_url, token).watch(5, mp.pin)), "the old pin opens nothing new"
    assert accepted(Viewer(janus.api_url, token).watch(5, rotated.pin))
    state = handle_state(janus, first)
    assert state["state"] == "watching" and state["mountpoint_id"] == 5, "a viewer already watching goes on"

    janus.destroy_mountpoint(rotated)
    assert wait_until(lambda: handle_state(janus, first)["state"] == "idle"), "destroying kicks the viewers"


def test_a_killed_janus_comes_back_with_its_mountpoints_and_tokens(
    janus: Janus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lanterne.runtime.janus")
    token = secrets.token_urlsafe(16)
    janus.add_token(token)
    made = janus.create_mountpoint(21, "camera 21")
    # The pin rotated as the console rotates it, from the stream's row, which holds no pin and no
    # RTCP port: what Janus is made again with must still be what was made.
    pin = secrets.token_hex(16)
    janus.set_pin(Mountpoint(made.id, made.rtp_port, "", made.secret), pin)
    mp = dataclasses.replace(made, pin=pin)
    assert janus.watchdog_once() is False, "nothing to do while Janus runs"

    kill_9(janus)
    assert janus.watchdog_once() is True
    assert janus.alive()
    assert janus.mountpoints() == [21]
    assert janus.tokens() == [token]
    assert janus.watchdog_once() is False

    # Same port and pin: the camera process and a viewer's grant go on as if nothing happened.
    assert mountpoint_info(janus, mp)["media"][0]["port"] == mp.rtp_port
    assert mountpoint_info(janus, mp)["media"][0]["rtcpport"] == mp.rtcp_port
    assert wait_until(lambda: (janus.media_age(mp) or 0.0) >= 1.0)
    camera = Camera(mp.rtp_port)
    camera.start()
    try:
        assert wait_until(lambda: (janus.media_age(mp) or 99.0) < 0.5), "the port was not taken again"
    finally:
        camera.stop()
    assert accepted(Viewer(janus.api_url, token).watch(21, mp.pin))

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "restarting" in warnings[0].getMessage()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in (token, mp.pin, mp.secret, own_settings(janus)["admin_secret"]):
        assert value not in logged
    assert mp.pin not in repr(mp) and mp.secret not in repr(mp)

    janus.stop()
    assert not janus.alive()
    assert janus.watchdog_once() is False, "a stopped Janus stays stopped"


def test_a_port_taken_while_janus_was_down_is_one_line(janus: Janus) -> None:
    token = secrets.token_urlsafe(16)
    janus.add_token(token)
    mp = janus.create_mountpoint(41, "camera 41")
    kept = janus.create_mountpoint(42, "camera 42")
    kill_9(janus)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", mp.rtp_port))
        with pytest.raises(JanusError, match=r"ports of mountpoints \[41\] were taken meanwhile") as error:
            janus.watchdog_once()
        assert "\n" not in str(error.value)
    assert janus.alive() and janus.tokens() == [token]
    assert janus.mountpoints() == [42] and janus.media_age(kept) is not None
    again = janus.create_mountpoint(41, "camera 41")
    assert again.rtp_port != mp.rtp_port
    assert janus.mountpoints() == [41, 42]


def kill_9(janus: Janus) -> None:
    """SIGKILL the own Janus and wait until it is dead: waitable by its parent (this process),
    not yet reaped. Its main thread shows as a zombie while its other threads are still exiting,
    and until they have, the parent cannot reap it and still sees it running (seen in CI)."""
    pid = _janus_pid(janus)
    os.kill(pid, signal.SIGKILL)

    def dead() -> bool:
        try:
            return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True  # reaped already

    assert wait_until(dead)
    assert not janus.alive()


def _janus_pid(janus: Janus) -> int:
    """The own Janus's process id, found by its configuration file on the command line."""
    assert janus.log_path is not None
    config = str(janus.log_path.parent / "janus.jcfg")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if config.encode() in cmdline:
                return int(entry.name)
    raise AssertionError("own Janus process not found")


def test_an_existing_janus_is_driven_the_same_way(janus: Janus) -> None:
    settings = own_settings(janus)
    made_by_own = janus.create_mountpoint(31, "camera 31")
    other = Janus.existing(
        janus.api_url, janus.admin_url, settings["admin_secret"], plugin_admin_key=settings["admin_key"]
    )
    assert other.alive()
    assert other.mountpoints() == [31]

    # Another Lanterne (or this one restarted) makes camera 31 again: the old one is replaced.
    again = other.create_mountpoint(31, "camera 31")
    assert again.id == 31 and again.pin != made_by_own.pin
    mp = other.create_mountpoint(32, "camera 32")
    assert other.mountpoints() == [31, 32]
    token = secrets.token_urlsafe(16)
    other.add_token(token)
    assert refused(Viewer(janus.api_url, token).watch(31, made_by_own.pin))
    assert accepted(Viewer(janus.api_url, token).watch(31, again.pin))

    # Without the plugin's admin key, private mountpoints are listed only when this object made them.
    keyless = Janus.existing(janus.api_url + "/", janus.admin_url, settings["admin_secret"])
    assert keyless.mountpoints() == []
    other.destroy_mountpoint(mp)
    assert other.mountpoints() == [31]
    other.stop()  # not ours: left running
    assert janus.alive()
    assert other.watchdog_once() is False


def test_a_janus_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = Janus.existing(f"http://127.0.0.1:{port}/janus", f"http://127.0.0.1:{port}/admin", "secret")
    assert not gone.alive()
    with pytest.raises(JanusError, match=r"does not answer \(.*\); is it running\?") as error:
        gone.create_mountpoint(1, "camera 1")
    assert "\n" not in str(error.value) and "secret" not in str(error.value)


def test_a_wrong_admin_secret_is_refused(janus: Janus) -> None:
    wrong = Janus.existing(janus.api_url, janus.admin_url, "not-the-secret")
    with pytest.raises(JanusError, match=r"Janus refused .*Unauthorized") as error:
        wrong.add_token("sometoken")
    assert "sometoken" not in str(error.value) and "not-the-secret" not in str(error.value)


def test_a_missing_binary_or_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(JanusError, match="not found; install Debian's janus package") as error:
        Janus.start_own(tmp_path / "a", binary=str(tmp_path / "no-janus"))
    assert "\n" not in str(error.value)

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        for where in ({"http_port": port}, {"admin_port": port}):
            with pytest.raises(JanusError, match=rf"Couldn't start .*webserver on port {port}") as error:
                Janus.start_own(tmp_path / "b", **where)  # type: ignore[arg-type]
            assert "\n" not in str(error.value) and "janus.log" in str(error.value)


def test_mountpoint_ids_and_pins_are_checked(janus: Janus) -> None:
    with pytest.raises(ValueError, match="positive"):
        janus.create_mountpoint(0, "camera 0")
    mp = janus.create_mountpoint(3, "camera 3")
    with pytest.raises(ValueError, match="empty pin"):
        janus.set_pin(mp, "")
    forged = Mountpoint(mp.id, mp.rtp_port, mp.pin, "not-its-secret")
    with pytest.raises(JanusError, match="refused the new pin of mountpoint 3: Unauthorized") as error:
        janus.set_pin(forged, "1234")
    assert "not-its-secret" not in str(error.value) and "1234" not in str(error.value)
