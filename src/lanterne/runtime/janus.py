"""The Janus gateway that carries the live video wall to browsers (issue 14).

Browsers watch cameras over WebRTC through Janus Gateway's streaming plugin: the camera process
encodes H.264 once and sends it as RTP to its camera's mountpoint, and Janus fans that one stream
out to every viewer, so a tenth viewer costs Janus a little and the camera process nothing.

Lanterne either runs its own Janus (`Janus.start_own`: configured from scratch in a work
directory, restarted with its mountpoints and tokens by `watchdog_once` when it dies) or talks to
one its operator runs (`Janus.existing`). Two gates, both enforced by Janus itself, stand between a
browser and a camera:

- **Stored tokens** (`token_auth`): every Janus API request needs a token Lanterne added through
  the admin API for a viewer's grant, good for the streaming plugin only, removed when the grant
  ends. A browser without one cannot even open a session.
- **The mountpoint's pin**: `watch` needs it. `set_pin` rotates it for each grant; viewers already
  watching keep watching, the next ones need the new pin.

Mountpoints are made through the admin API's `message_plugin` request (Janus 1.1.2 has it), which
needs the admin secret but no session, handle or token: nothing a browser holds can create,
edit or destroy one, and the streaming plugin's own `admin_key` is asked as well.

A mountpoint's secret (what `edit` and `destroy` need) is derived from the admin secret and the
mountpoint's id rather than drawn at random: a Lanterne that restarts beside a Janus that went on
can still replace the mountpoints it made before, and the secret is as hard to guess as the admin
secret, which opens everything anyway. Pins are random.

Secrets, pins and tokens never appear in a log line, an error or a `repr`. Janus's own log (own
Janus only) is `WORKDIR/janus.log`, never the parent's output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from lanterne.core.errors import JanusError

log = logging.getLogger(__name__)

STREAMING = "janus.plugin.streaming"
START_SECONDS = 10.0
"""How long a starting Janus has to answer on both its APIs. It answers in about half a second
on an idle machine; the margin is for a loaded one."""
STOP_SECONDS = 5.0
HTTP_SECONDS = 5.0
VIDEO_PT = 96
VIDEO_FMTP = "profile-level-id=42e01f;packetization-mode=1"
"""Constrained baseline, level 3.1, packetization mode 1: what the camera process encodes and what
every browser decodes. Janus puts no SPS/PPS in the SDP, so the sender repeats them in-band."""
NO_SUCH_MOUNTPOINT = 455
"""The streaming plugin's error code for an id it does not hold."""
CANT_CREATE = 456
"""The streaming plugin's error code for a mountpoint it could not make (its port taken, …)."""
PORT_ATTEMPTS = 3
_PLUGIN_FILE = "libjanus_streaming.so"
_TRANSPORT_FILE = "libjanus_http.so"
_WS_TRANSPORT_FILE = "libjanus_websockets.so"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_ERROR = re.compile(r"^(?:\[[^\]]*\]\s*)?\[(?:FATAL|ERR)\]\s*(?:\[[^\]]*\]\s*)?(.*)$")
"""A Janus log line at level error or fatal: `[time] [FATAL] [file.c:function:line] message`."""
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Janus is on this machine or beside it: an `http_proxy` from the environment must not carry the
admin secret to a proxy."""


@dataclass(frozen=True, slots=True)
class Mountpoint:
    """One camera's place in Janus: where its process sends RTP, and what viewers and Lanterne
    must give to use it. `pin` and `secret` stay out of the `repr`, so logging one leaks nothing."""

    id: int
    rtp_port: int
    """The UDP port the camera process sends H.264 RTP to (video only, payload type 96)."""
    pin: str = field(repr=False)
    """What a viewer gives to `watch`; rotated per viewer grant by `Janus.set_pin`."""
    secret: str = field(repr=False)
    """What `edit` and `destroy` need."""
    rtcp_port: int | None = None
    """The UDP port Janus takes the camera process's RTCP on and sends its viewers' keyframe
    requests back from (`lanterne.video.live.encoder.KeyframeRequests`); None where Janus did not
    say, and the stream then waits for its next scheduled keyframe."""


class _NoSuchMountpointError(JanusError):
    """Janus holds no mountpoint of that id (for the calls where that is an answer)."""


class _PortTakenError(JanusError):
    """Janus could not bind the RTP port it was given: another process took it since it was
    found free."""


@dataclass(slots=True)
class _Made:
    """What Lanterne made in Janus, to make it again after a restart."""

    mountpoint: Mountpoint
    description: str


class _OwnProcess:
    """The Janus process Lanterne configured in `workdir`, with what it needs to start it again."""

    def __init__(self, binary: str, workdir: Path, host: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.host = host
        self.config = workdir / "janus.jcfg"
        self.log_path = workdir / "janus.log"
        self.log_offset = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped = False

    def spawn(self) -> None:
        with self.log_path.open("ab") as out:
            self.log_offset = out.tell()
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--config",
                    str(self.config),
                    "--configs-folder",
                    str(self.workdir),
                    "--disable-colors",
                ],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def last_error(self) -> str:
        """The first error line this start wrote to Janus's log (the cause, where later ones are
        consequences: "Couldn't start webserver on port 8088..." before "No Janus API transport
        is available"), without its timestamp and source location."""
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(self.log_offset)
                lines = log_file.read().decode(errors="replace").splitlines()
        except OSError:
            return "no log"
        for line in lines:
            match = _LOG_ERROR.match(_ANSI.sub("", line))
            if match:
                return match.group(1).strip()
        return "no error in its log"


class Janus:
    """A Janus gateway Lanterne talks to: its own (configured and started by Lanterne, restarted
    when it dies) or an existing one by URL.

    Every method is thread-safe: the camera processes' supervisor, the API handing out viewer
    grants and the watchdog may call it from their own threads.
    """

    def __init__(
        self,
        api_url: str,
        admin_url: str,
        admin_secret: str,
        *,
        plugin_admin_key: str | None = None,
        own: _OwnProcess | None = None,
        ws_url: str | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        """http://host:port/janus: the HTTP API, for this module's own requests."""
        self.ws_url = ws_url
        """ws://host:port: the WebSocket API the console relays each page's session to
        (`api/routes/live.py`): a page holds one socket for all its tiles' sessions, where HTTP
        long polls would need one connection each and a browser opens six per host."""
        self.admin_url = admin_url.rstrip("/")
        self._admin_secret = admin_secret
        self._plugin_admin_key = plugin_admin_key
        self._own = own
        self._made: dict[int, _Made] = {}
        self._tokens: set[str] = set()
        self._lock = threading.RLock()

    @classmethod
    def start_own(
        cls,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        http_port: int | None = None,
        admin_port: int | None = None,
        ws_port: int | None = None,
        rtp_ports: tuple[int, int] = (20000, 40000),
        ice_interface: str | None = None,
        allow_origin: str | None = None,
        binary: str = "janus",
    ) -> Janus:
        """Configure a Janus in `workdir` and start it; returns once both its APIs answer.

        It loads the streaming plugin and the HTTP transport only (folders of links to just those
        two), no event handler, logger, STUN or TURN. `rtp_ports` are for WebRTC; `ice_interface`
        (auto: the default route's interface) is the only one ICE gathers on, because Janus 1.1.2
        skips loopback when gathering, so enforcing `lo` leaves no candidate at all; traffic to the
        host's own address stays on the machine anyway. `allow_origin` restricts CORS to the
        console's origin. Raises `JanusError` when the binary is missing or Janus does not start.
        """
        found = shutil.which(binary)
        if found is None:
            raise JanusError(
                f"Janus binary {binary!r} not found; install Debian's janus package "
                "(apt-get install janus) or set live.janus_url to an existing Janus"
            )
        modules = _modules_dir(Path(found))
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        links = _link_modules(workdir / "modules", modules)
        http_port = http_port or _free_port(host)
        admin_port = admin_port or _free_port(host)
        ws_port = ws_port or _free_port(host)
        admin_secret = secrets.token_urlsafe(24)
        admin_key = secrets.token_urlsafe(24)
        interface = ice_interface or _default_interface()
        general: dict[str, _Value] = {
            "configs_folder": str(workdir),
            "plugins_folder": str(links / "plugins"),
            "transports_folder": str(links / "transports"),
            "events_folder": str(links / "events"),
            "loggers_folder": str(links / "loggers"),
            "debug_level": 4,
            "debug_timestamps": True,
            "server_name": "Lanterne",
            "admin_secret": admin_secret,
            "token_auth": True,
        }
        _write_private(
            workdir / "janus.jcfg",
            _jcfg(
                {
                    "general": general,
                    "media": {"rtp_port_range": f"{rtp_ports[0]}-{rtp_ports[1]}"},
                    # full_trickle stays at Janus's default (half-trickle): the end-to-end check
                    # with Chromium played with it, and the offer then carries its candidates.
                    "nat": {"ice_enforce_list": interface, "full_trickle": False},
                    "events": {"broadcast": False},
                }
            ),
        )
        http: dict[str, Mapping[str, _Value]] = {
            "general": {
                "json": "compact",
                "base_path": "/janus",
                "http": True,
                "port": http_port,
                "ip": host,
            },
            "admin": {
                "admin_base_path": "/admin",
                "admin_http": True,
                "admin_port": admin_port,
                "admin_ip": host,
            },
            "cors": {"allow_origin": allow_origin} if allow_origin else {},
        }
        _write_private(workdir / "janus.transport.http.jcfg", _jcfg(http))
        ws = {"general": {"json": "compact", "ws": True, "ws_port": ws_port, "ws_ip": host, "wss": False}}
        _write_private(workdir / "janus.transport.websockets.jcfg", _jcfg(ws))
        streaming = {"general": {"admin_key": admin_key, "events": False}}
        _write_private(workdir / "janus.plugin.streaming.jcfg", _jcfg(streaming))
        own = _OwnProcess(found, workdir, host)
        url_host = f"[{host}]" if ":" in host else host
        janus = cls(
            f"http://{url_host}:{http_port}/janus",
            f"http://{url_host}:{admin_port}/admin",
            admin_secret,
            plugin_admin_key=admin_key,
            own=own,
            ws_url=f"ws://{url_host}:{ws_port}",
        )
        janus._start()
        log.info("Janus started: API %s, WebRTC on %s ports %d-%d", janus.api_url, interface, *rtp_ports)
        return janus

    @classmethod
    def existing(
        cls,
        api_url: str,
        admin_url: str,
        admin_secret: str,
        *,
        plugin_admin_key: str | None = None,
        ws_url: str | None = None,
    ) -> Janus:
        """A Janus its operator runs, with token_auth on and the admin API reachable. Nothing is
        asked of it until the first call, so Lanterne may start before it."""
        return cls(api_url, admin_url, admin_secret, plugin_admin_key=plugin_admin_key, ws_url=ws_url)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def log_path(self) -> Path | None:
        """Own Janus's log file; None for an existing one."""
        return None if self._own is None else self._own.log_path

    def alive(self) -> bool:
        """Whether Janus answers `GET {api_url}/info` (which needs no token)."""
        try:
            return self._http(self.api_url + "/info", None).get("janus") == "server_info"
        except JanusError:
            return False

    def create_mountpoint(self, mountpoint_id: int, description: str) -> Mountpoint:
        """An RTP, video-only H.264 mountpoint, private (not listed to viewers), with a random pin,
        on a free UDP port (`Mountpoint.rtp_port`): one the system gives for own Janus, one Janus
        picks for an existing one (it may be on another machine).

        Idempotent per id: the one this object made, with the same description, is returned as it
        is (its viewers go on watching); any other Janus holds under that id (one made before Lanterne restarted) is
        destroyed and made again.
        """
        if mountpoint_id <= 0:
            raise ValueError(f"a mountpoint id is a positive integer, not {mountpoint_id}")
        with self._lock:
            secret = self._secret(mountpoint_id)
            info = self._info(mountpoint_id, secret)
            made = self._made.get(mountpoint_id)
            if info is not None and made is not None and made.description == description:
                return made.mountpoint
            if info is not None:
                self._destroy(mountpoint_id, secret)
            pin = secrets.token_hex(16)
            for attempt in range(PORT_ATTEMPTS):
                try:
                    mp = self._create(
                        mountpoint_id, description, self._free_rtp_port(), pin, secret, self._free_rtp_port()
                    )
                    break
                except _PortTakenError:
                    if attempt == PORT_ATTEMPTS - 1:
                        raise
            self._made[mountpoint_id] = _Made(mp, description)
            log.info("Janus mountpoint %d made: RTP video on UDP port %d", mp.id, mp.rtp_port)
            return mp

    def set_pin(self, mp: Mountpoint, pin: str) -> Mountpoint:
        """The mountpoint with `pin` as its pin: viewers already watching keep watching, new ones
        need the new pin."""
        if not pin:
            raise ValueError("an empty pin would open the mountpoint to every token; give a pin")
        with self._lock:
            self._streaming(
                f"the new pin of mountpoint {mp.id}",
                {"request": "edit", "id": mp.id, "secret": mp.secret, "new_pin": pin, "permanent": False},
            )
            changed = dataclasses.replace(mp, pin=pin)
            made = self._made.get(mp.id)
            if made is not None:
                # Only the pin: a caller may know the mountpoint by its id and secret alone (the
                # console, from a stream's row), and a restart must make it again as it was made.
                made.mountpoint = dataclasses.replace(made.mountpoint, pin=pin)
            log.info("Janus mountpoint %d: pin rotated", mp.id)
            return changed

    def destroy_mountpoint(self, mp: Mountpoint) -> None:
        """Remove the mountpoint; Janus hangs up on its viewers. One Janus no longer holds is not
        an error."""
        with self._lock:
            self._destroy(mp.id, mp.secret)
            self._made.pop(mp.id, None)
            log.info("Janus mountpoint %d destroyed", mp.id)

    def mountpoints(self) -> list[int]:
        """The ids of the mountpoints Janus holds. Private ones (all Lanterne's) are listed only
        with the streaming plugin's admin key; without it, those this object made that Janus
        still holds are added to the public ones."""
        with self._lock:
            request: dict[str, Any] = {"request": "list"}
            if self._plugin_admin_key:
                request["admin_key"] = self._plugin_admin_key
            answer = self._streaming("the list of mountpoints", request)
            ids = {int(item["id"]) for item in answer.get("list", [])}
            if not self._plugin_admin_key:
                ids |= {
                    i for i, made in self._made.items() if self._info(i, made.mountpoint.secret) is not None
                }
            return sorted(ids)

    def media_age(self, mp: Mountpoint) -> float | None:
        """Seconds since the mountpoint last received video; None when Janus does not hold it.
        Janus counts from the mountpoint's creation until the first packet, so a camera that never
        sent looks like one that stopped when it was made."""
        with self._lock:
            info = self._info(mp.id, mp.secret)
        if info is None:
            return None
        ages = [m["age_ms"] for m in info.get("media", []) if m.get("type") == "video" and "age_ms" in m]
        return min(ages) / 1000.0 if ages else None

    def add_token(self, token: str) -> None:
        """Let `token` into the Janus API, for the streaming plugin only."""
        _check_token(token)
        with self._lock:
            self._admin(
                "adding a token", {"janus": "add_token", "token": token, "plugins": [STREAMING]}, token
            )
            self._tokens.add(token)

    def remove_token(self, token: str) -> None:
        """Shut `token` out of the Janus API at once, requests on the sessions it opened included
        (their video stops when Janus times them out, 60 s without a keepalive). Removing a token
        Janus does not hold is not an error."""
        _check_token(token)
        with self._lock:
            self._tokens.discard(token)
            try:
                self._admin("removing a token", {"janus": "remove_token", "token": token}, token)
            except JanusError:
                if token in self.tokens():
                    raise

    def tokens(self) -> list[str]:
        """The stored tokens Janus accepts."""
        with self._lock:
            answer = self._admin("the list of tokens", {"janus": "list_tokens"})
            return [str(t["token"]) for t in answer.get("data", {}).get("tokens", [])]

    def watchdog_once(self) -> bool:
        """Own Janus only: when its process died, start it again with the same configuration and
        ports, make every mountpoint again (same ids, ports, pins and secrets, so camera processes
        and viewers' grants go on) and add every token. Returns True when it restarted.

        Raises `JanusError` when Janus does not start again (the next call tries again), or when
        another process took a mountpoint's RTP port while Janus was down: that mountpoint is
        forgotten, and `create_mountpoint` makes it again on a new port for its camera process.
        """
        own = self._own
        if own is None:
            return False
        with self._lock:
            if own.stopped or own.running():
                return False
            log.warning(
                "Janus exited with code %s; restarting it with its %d mountpoints and %d tokens (log: %s)",
                own.exit_code(),
                len(self._made),
                len(self._tokens),
                own.log_path,
            )
            self._start()
            lost: list[int] = []
            for made in self._made.values():
                mp = made.mountpoint
                try:
                    self._create(mp.id, made.description, mp.rtp_port, mp.pin, mp.secret, mp.rtcp_port or 0)
                except _PortTakenError:
                    lost.append(mp.id)
            for mountpoint_id in lost:
                del self._made[mountpoint_id]
            for token in self._tokens:
                self._admin(
                    "adding a token", {"janus": "add_token", "token": token, "plugins": [STREAMING]}, token
                )
            if lost:
                raise JanusError(
                    f"Janus restarted, but the RTP ports of mountpoints {lost} were taken meanwhile; "
                    "start their cameras' live view again"
                )
            return True

    def stop(self) -> None:
        """Own Janus: terminate it (kill it if it lingers) and keep the watchdog from restarting
        it. An existing Janus is left running."""
        if self._own is None:
            return
        with self._lock:
            self._own.stopped = True
            self._own.terminate()
            log.info("Janus stopped")

    # --- Janus's APIs ------------------------------------------------------------------------

    def _start(self) -> None:
        """Start own Janus and wait for both APIs; one-line `JanusError` naming the cause."""
        own = self._own
        assert own is not None
        own.stopped = False
        own.spawn()
        deadline = time.monotonic() + START_SECONDS
        while True:
            code = own.exit_code()
            if code is not None:
                raise JanusError(
                    f"Janus exited at start with code {code}: {own.last_error()} (see {own.log_path}); "
                    "check that its ports are free, or set live.janus_url to an existing Janus"
                )
            try:
                self._http(self.api_url + "/info", None, timeout=1.0)
                self._admin("a ping", {"janus": "ping"}, timeout=1.0)
                return
            except JanusError:
                if time.monotonic() > deadline:
                    own.terminate()
                    raise JanusError(
                        f"Janus did not start within {START_SECONDS:.0f} s ({own.last_error()}; see {own.log_path}); "
                        "install Debian's janus package or set live.janus_url"
                    ) from None
                time.sleep(0.1)

    def _free_rtp_port(self) -> int:
        """A UDP port for a new mountpoint's RTP or RTCP. Own Janus: one the system finds free, at random in its
        ephemeral range. Janus left to choose hands out the lowest free port of its range, so
        two Janus on one machine, or one restarted after another process took its first port,
        would collide on the same few ports. Existing Janus: 0, Janus chooses."""
        if self._own is None:
            return 0
        host = self._own.host or "0.0.0.0"
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])

    def _secret(self, mountpoint_id: int) -> str:
        mac = hmac.new(
            self._admin_secret.encode(), f"lanterne mountpoint {mountpoint_id}".encode(), hashlib.sha256
        )
        return mac.hexdigest()[:32]

    def _create(
        self, mountpoint_id: int, description: str, port: int, pin: str, secret: str, rtcp_port: int
    ) -> Mountpoint:
        video: dict[str, Any] = {
            "type": "video",
            "mid": "v",
            "port": port,
            # RTCP both ways: Janus learns the camera process's address from the packets it sends
            # there, and then passes on a keyframe request whenever a viewer starts watching or
            # a viewer's browser asks for one (after a lost packet), so a picture never waits
            # for the next scheduled keyframe.
            "rtcpport": rtcp_port,
            "pt": VIDEO_PT,
            "codec": "h264",
            "fmtp": VIDEO_FMTP,
            # Janus keeps the last keyframe and sends it to a new viewer at once: the first
            # picture comes about one GOP sooner.
            "bufferkf": True,
        }
        if self._own is not None and self._own.host not in ("", "0.0.0.0", "::"):
            # Own Janus takes RTP on the address its APIs listen on: bound to loopback, no other
            # machine can push pictures into a camera's tile.
            video["iface"] = self._own.host
        request: dict[str, Any] = {
            "request": "create",
            "type": "rtp",
            "id": mountpoint_id,
            "description": description,
            "is_private": True,
            "pin": pin,
            "secret": secret,
            "permanent": False,
            # Janus 1.x's `media` list, not the deprecated `video`/`videoport`/… keys.
            "media": [video],
            # Lets the page ask for no playout delay (`configure {min_delay: 0, max_delay: 0}`);
            # without it Chromium sometimes holds each frame until the next.
            "playoutdelay_ext": True,
        }
        if self._plugin_admin_key:
            request["admin_key"] = self._plugin_admin_key
        answer = self._streaming(f"mountpoint {mountpoint_id}", request, pin, secret)
        videos = [p for p in answer.get("stream", {}).get("ports", []) if p.get("type") == "video"]
        port = videos[0].get("port") if videos else None
        if not isinstance(port, int) or port <= 0:
            raise JanusError(
                f"Janus made mountpoint {mountpoint_id} but did not say its video port; is it Janus 1.x?"
            )
        rtcp = videos[0].get("rtcp_port")
        return Mountpoint(
            mountpoint_id, port, pin, secret, rtcp if isinstance(rtcp, int) and rtcp > 0 else None
        )

    def _destroy(self, mountpoint_id: int, secret: str) -> None:
        with contextlib.suppress(_NoSuchMountpointError):
            self._streaming(
                f"destroying mountpoint {mountpoint_id}",
                {"request": "destroy", "id": mountpoint_id, "secret": secret, "permanent": False},
                secret,
            )

    def _info(self, mountpoint_id: int, secret: str) -> dict[str, Any] | None:
        """The plugin's `info` with the secret (ports, pin, media ages); None for an unknown id."""
        try:
            answer = self._streaming(
                f"the state of mountpoint {mountpoint_id}",
                {"request": "info", "id": mountpoint_id, "secret": secret},
                secret,
            )
        except _NoSuchMountpointError:
            return None
        return dict(answer.get("info", {}))

    def _streaming(self, what: str, request: Mapping[str, Any], *hidden: str) -> dict[str, Any]:
        """A streaming plugin request through the admin API's `message_plugin`."""
        body = {"janus": "message_plugin", "plugin": STREAMING, "request": dict(request)}
        answer = self._admin(what, body, *hidden)
        response = answer.get("response")
        if not isinstance(response, dict):
            raise JanusError(f"Janus's streaming plugin gave no answer about {what}; is the plugin loaded?")
        if "error_code" in response:
            reason = _redact(str(response.get("error", "")), self._admin_secret, *hidden)
            code = response["error_code"]
            error = JanusError
            if code == NO_SUCH_MOUNTPOINT:
                error = _NoSuchMountpointError
            elif code == CANT_CREATE and "error creating" in reason:
                # "Can't add 'rtp' stream, error creating data source stream": the bind failed.
                error = _PortTakenError
            raise error(f"Janus's streaming plugin refused {what}: {reason} (error {response['error_code']})")
        return response

    def _admin(
        self, what: str, request: Mapping[str, Any], *hidden: str, timeout: float = HTTP_SECONDS
    ) -> dict[str, Any]:
        body = {**request, "transaction": secrets.token_hex(8), "admin_secret": self._admin_secret}
        answer = self._http(self.admin_url, body, timeout=timeout)
        if answer.get("janus") == "error":
            error = answer.get("error", {})
            reason = _redact(str(error.get("reason", "")), self._admin_secret, *hidden)
            raise JanusError(f"Janus refused {what}: {reason} (error {error.get('code')})")
        return answer

    def _http(
        self, url: str, body: Mapping[str, Any] | None, *, timeout: float = HTTP_SECONDS
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with _NO_PROXY.open(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if not raw:
                raise JanusError(
                    f"Janus at {url} answered HTTP {exc.code}; is this a Janus API URL?"
                ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise JanusError(f"Janus at {url} does not answer ({reason}); is it running?") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise JanusError(
                f"Janus at {url} answered something that is not JSON; is this a Janus API URL?"
            ) from None
        if not isinstance(answer, dict):
            raise JanusError(
                f"Janus at {url} answered something that is not a Janus message; is this a Janus API URL?"
            )
        return answer


_Value = str | int | bool | Sequence[str]


def _jcfg(sections: Mapping[str, Mapping[str, _Value]]) -> str:
    """A Janus configuration file (libconfig syntax) from sections of settings.

    >>> print(_jcfg({"general": {"admin_secret": 'a"b', "token_auth": True, "debug_level": 4}, "cors": {}}))
    general: {
        admin_secret = "a\\"b"
        token_auth = true
        debug_level = 4
    }
    cors: {
    }
    <BLANKLINE>
    """
    lines: list[str] = []
    for name, settings in sections.items():
        lines.append(f"{name}: {{")
        lines.extend(f"    {key} = {_jcfg_value(value)}" for key, value in settings.items())
        lines.append("}")
    return "\n".join(lines) + "\n"


def _jcfg_value(value: _Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if any(ord(c) < 32 for c in value):
            raise ValueError("a Janus setting cannot hold control characters")
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(_jcfg_value(v) for v in value) + "]"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: Janus's configuration holds the admin secret."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    path.chmod(0o600)


def _modules_dir(binary: Path) -> Path:
    """The folder holding Janus's `plugins/` and `transports/`: beside a self-built binary's
    prefix, or Debian's multiarch library folder."""
    candidates = [
        binary.resolve().parent.parent / "lib" / "janus",
        *sorted(Path("/usr/lib").glob("*/janus")),
        Path("/usr/lib/janus"),
        Path("/usr/local/lib/janus"),
        Path("/opt/janus/lib/janus"),
    ]
    for folder in candidates:
        if all(
            (folder / kind / name).exists()
            for kind, name in (
                ("plugins", _PLUGIN_FILE),
                ("transports", _TRANSPORT_FILE),
                ("transports", _WS_TRANSPORT_FILE),
            )
        ):
            return folder
    raise JanusError(
        f"Janus's streaming plugin and HTTP and WebSocket transports ({_PLUGIN_FILE}, {_TRANSPORT_FILE}, "
        f"{_WS_TRANSPORT_FILE}) are not installed "
        f"beside {binary}; install Debian's janus package"
    )


def _link_modules(links: Path, modules: Path) -> Path:
    """Folders holding links to the streaming plugin and the HTTP and WebSocket transports only,
    and no event handler or logger: Janus loads every module of a folder, and the others (SIP,
    MQTT, …) are code and ports the live view does not need."""
    for kind, names in (
        ("plugins", (_PLUGIN_FILE,)),
        ("transports", (_TRANSPORT_FILE, _WS_TRANSPORT_FILE)),
        ("events", ()),
        ("loggers", ()),
    ):
        folder = links / kind
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).symlink_to(modules / kind / name)
    return links


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _default_interface() -> str:
    """The interface of the default route, else the first one that is not loopback."""
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 1 and fields[1] == "00000000" and fields[0] != "lo":
                return fields[0]
    except OSError:
        pass
    for _, name in socket.if_nameindex():
        if name != "lo":
            return name
    raise JanusError(
        "no network interface but loopback for WebRTC (Janus gathers no candidate on loopback); give ice_interface"
    )


def _check_token(token: str) -> None:
    if not token or any(ord(c) < 33 for c in token):
        raise ValueError("a Janus token is a non-empty string without spaces or control characters")


def _redact(text: str, *hidden: str) -> str:
    """Janus's reason without any secret, pin or token it may quote."""
    for value in hidden:
        if len(value) >= 4:  # shorter ones would mangle the text and are no secret anyway
            text = text.replace(value, "…")
    return text.replace("\n", " ")
