"""The console side of the live wall: views, gateway mountpoints and tokens (issue 14).

A view starts in three steps, in this order: the view is recorded (`accountability.live`), the
camera's mountpoint exists (created with the first viewer, a row in `live_streams` tells the
camera's process to feed it), and the page receives a gateway token of its own and the
mountpoint's pin, rotated for this viewer. Janus refuses a session without a stored token and a
`watch` without the current pin, so a page holds a way in only for the view it was given, and
only until the view ends (its token is removed then). The anonymised mountpoint is shared by all
viewers of the camera and is destroyed `LINGER` after its last viewer leaves (a tile moved to
another slot does not restart the encoder). A raw mountpoint serves one view and is destroyed at
the end of the grant, which cuts the picture whatever the page does.

Where WebRTC cannot be set up (no gateway on this console, UDP blocked between the operator and
the gateway, a browser without WebRTC), an anonymised view plays through the fallback instead: a
`JpegRelay` on this console receives the camera's anonymised stream (a `relay` row in
`live_streams`, fed by the camera's process like a mountpoint) and the page shows its pictures
as MJPEG. One relay per camera, shared by its fallback viewers, stopped `LINGER` after the last.
A view with protection removed never plays through the fallback.

`sweep()` runs every second on the console's thread: ends quiet views and finished grants,
destroys unwatched mountpoints and relays, and restarts an own Janus that died (its mountpoints
and tokens come back, and the pages reconnect).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from lanterne.accountability import live
from lanterne.accountability.live import LiveError, Stream, View
from lanterne.audit import AuditLog
from lanterne.config import Config
from lanterne.core.errors import JanusError, LanterneError
from lanterne.runtime.janus import Janus, Mountpoint
from lanterne.video.live import JpegRelay

log = logging.getLogger(__name__)

LINGER = timedelta(seconds=15)
"""How long an unwatched anonymised mountpoint is kept: a tile moved or a page reloaded finds it
still fed, and starts in a frame instead of a GOP plus the encoder's start."""
SWEEP_SECONDS = 1.0
MAX_MOUNTPOINT_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Grant:
    """What a page needs to play one view, and nothing more: the gateway's token, mountpoint and
    pin when there is a gateway (None otherwise: the page plays the fallback)."""

    view: View
    token: str | None
    mountpoint: int | None
    pin: str | None


class LiveWall:
    """Live views for one console. Thread-safe: the API's handlers and the sweeper share it."""

    def __init__(
        self,
        cfg: Config,
        engine: Engine,
        audit: AuditLog,
        janus: Janus | None,
        unavailable: str | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.audit = audit
        self.janus = janus
        self.unavailable = unavailable
        """Why there is no live view (one line), or None."""
        self.quiet = timedelta(seconds=cfg.live.view_quiet_seconds)
        self.clock = clock
        """The console's clock: views are started and confirmed at its times, so they end by it."""
        self._lock = threading.RLock()
        self._unwatched: dict[int, datetime] = {}
        self._relays: dict[int, JpegRelay] = {}
        """The fallback relays this console runs, by their `live_streams` row."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        cfg: Config,
        engine: Engine,
        audit: AuditLog,
        workdir: Path,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> LiveWall:
        """Start or reach the gateway. A gateway that cannot be had leaves the wall unavailable
        with its one-line reason (the console still serves everything else)."""
        janus: Janus | None = None
        why: str | None = None
        try:
            if cfg.live.janus_url:
                if not cfg.live.janus_admin_url or cfg.live.janus_admin_secret_file is None:
                    raise JanusError(
                        "live.janus_url needs live.janus_admin_url and live.janus_admin_secret_file"
                    )
                if not cfg.live.janus_ws_url and not cfg.live.public_url:
                    raise JanusError(
                        "live.janus_url needs live.janus_ws_url (or live.public_url for the pages)"
                    )
                secret = Path(cfg.live.janus_admin_secret_file).read_text().strip()
                janus = Janus.existing(
                    cfg.live.janus_url, cfg.live.janus_admin_url, secret, ws_url=cfg.live.janus_ws_url
                )
            else:
                janus = Janus.start_own(workdir, binary=cfg.live.janus_binary)
        except (JanusError, OSError) as exc:
            why = f"live view unavailable: {exc}"
            log.error("%s", why)
        wall = cls(cfg, engine, audit, janus, why, clock)
        wall._forget_previous()
        return wall

    def start(self) -> LiveWall:
        self._thread = threading.Thread(target=self._run, name="live-wall", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        now = self.clock()
        for v in live.open_views(self.engine):
            self._end(v, "closed", now)
        for s in live.streams(self.engine):
            self._destroy(s)
        if self.janus is not None:
            self.janus.stop()

    def _forget_previous(self) -> None:
        """A console that restarts finds the views and streams of its previous run: their pages
        lost their gateway with it, so the views end (`expired`) and the streams go."""
        now = self.clock()
        for v in live.open_views(self.engine):
            self._end(v, "expired", now)
        for s in live.streams(self.engine):
            self._destroy(s)

    def _run(self) -> None:
        while not self._stop.wait(SWEEP_SECONDS):
            try:
                self.sweep(self.clock())
            except Exception:
                log.exception("live: sweep failed; next one in %.0f s", SWEEP_SECONDS)

    # --- views -------------------------------------------------------------------------------

    def _require(self) -> Janus:
        if self.janus is None:
            raise LiveError(self.unavailable or "live view unavailable")
        return self.janus

    def watch(self, *, user: str, camera: str, purpose: str, now: datetime) -> Grant:
        """Start an anonymised view of `camera` (the caller checked role, scope and habilitation).
        Without a gateway the view is recorded all the same and plays through the fallback."""
        janus = self.janus
        with self._lock:
            token = live.new_token()
            if janus is None:
                v = live.start_view(
                    self.engine, self.audit, user=user, camera=camera, purpose=purpose, token=token, now=now
                )
                return Grant(v, None, None, None)
            stream = self._anonymised_stream(janus, camera, now)
            self._unwatched.pop(stream.id, None)
            v = live.start_view(
                self.engine, self.audit, user=user, camera=camera, purpose=purpose, token=token, now=now
            )
            pin = self._admit(janus, stream, token)
        return Grant(v, token, stream.id, pin)

    def watch_raw(
        self,
        *,
        user: str,
        login: str,
        camera: str,
        purpose: str,
        reason: str,
        reference: str,
        duration: timedelta,
        now: datetime,
    ) -> Grant:
        """Start a view with protection removed: `PrivacyError` (recorded) without a permission."""
        janus = self._require()
        token = live.new_token()
        with self._lock:
            v, _ = live.start_raw_view(
                self.engine,
                self.audit,
                user=user,
                camera=camera,
                purpose=purpose,
                reason=reason,
                reference=reference,
                duration=duration,
                token=token,
                now=now,
            )
            try:
                mp = janus.create_mountpoint(self._new_id(), f"{camera} (protection removed)")
            except JanusError:
                self._end(v, "closed", now)
                raise
            banner = f"{login} - {v.reason} - {v.reference}"[:300]
            stream = self._put(mp, camera, "raw", now, view_id=v.id, banner=banner, expires_at=v.raw_until)
            pin = self._admit(janus, stream, token)
        return Grant(v, token, stream.id, pin)

    def _anonymised_stream(self, janus: Janus, camera: str, now: datetime) -> Stream:
        """The camera's shared anonymised stream, made (mountpoint and row) for its first viewer.
        Under `self._lock`."""
        stream = live.anonymised_stream(self.engine, camera)
        if stream is None:
            mp = janus.create_mountpoint(self._new_id(), f"{camera} (anonymised)")
            stream = self._put(mp, camera, "anonymised", now)
        return stream

    def _put(
        self,
        mp: Mountpoint,
        camera: str,
        kind: str,
        now: datetime,
        *,
        view_id: int | None = None,
        banner: str | None = None,
        expires_at: datetime | None = None,
    ) -> Stream:
        """The row that tells the camera's process to feed mountpoint `mp`."""
        stream = Stream(
            id=mp.id,
            camera=camera,
            kind=kind,
            view_id=view_id,
            rtp_host=self.cfg.live.rtp_host,
            rtp_port=mp.rtp_port,
            rtcp_port=mp.rtcp_port,
            secret=mp.secret,
            banner=banner,
            created_at=now,
            expires_at=expires_at,
        )
        live.put_stream(self.engine, stream)
        return stream

    def _admit(self, janus: Janus, stream: Stream, token: str) -> str:
        pin = secrets.token_urlsafe(12)
        janus.set_pin(Mountpoint(stream.id, stream.rtp_port, "", stream.secret), pin)
        janus.add_token(token)
        return pin

    def fallback(self, view_id: int, user: str, now: datetime) -> JpegRelay:
        """The relay that plays `user`'s open anonymised view `view_id` without WebRTC, started
        (and its camera's process asked for the stream) with the camera's first fallback viewer.
        `LiveError` for a view that is not theirs, has ended, or has protection removed."""
        v = live.view(self.engine, view_id)
        if v is None or v.account != user or not v.open:
            raise LiveError("no open view of yours with this number; start it again")
        if v.kind != "anonymised":
            raise LiveError(
                "a view with privacy protection removed plays only over WebRTC; the fallback carries "
                "anonymised pictures only"
            )
        with self._lock:
            for s in live.streams(self.engine, [v.camera]):
                relay = self._relays.get(s.id)
                if s.kind == "relay" and relay is not None and not relay.closed:
                    self._unwatched.pop(s.id, None)
                    return relay
            try:
                relay = JpegRelay(v.camera, self.cfg.live.relay_host).start()
            except LanterneError as exc:
                raise LiveError(str(exc)) from None
            stream = Stream(
                id=self._new_id(),
                camera=v.camera,
                kind="relay",
                view_id=None,
                rtp_host=self.cfg.live.relay_host,
                rtp_port=relay.port,
                secret=secrets.token_hex(16),
                banner=None,
                created_at=now,
                expires_at=None,
            )
            live.put_stream(self.engine, stream)
            self._relays[stream.id] = relay
        log.info("live: fallback relay for camera %s on port %d", v.camera, relay.port)
        return relay

    def heartbeat(self, view_id: int, user: str, now: datetime) -> View | None:
        return live.touch(self.engine, view_id, user, now)

    def rejoin(self, view_id: int, user: str, now: datetime) -> Grant | None:
        """`user`'s open view `view_id` again over WebRTC (the caller checked scope and
        habilitation), after its connection dropped: the gateway restarted, or the network.
        Another viewer of the camera may have arrived since, which rotated the mountpoint's pin,
        so the view gets the current one (rotated again) and its token back; it stays the same
        view, on the record from its start. None when the view is not `user`'s open one, or is
        a raw view whose grant is over or whose mountpoint is gone."""
        janus = self._require()
        with self._lock:
            v = live.touch(self.engine, view_id, user, now)
            if v is None:
                return None
            if v.kind == "raw":
                if v.raw_until is None or v.raw_until <= now:
                    return None  # the grant is over: its sweep is about to end the view
                stream = next((s for s in live.streams(self.engine, [v.camera]) if s.view_id == v.id), None)
                if stream is None:
                    return None
            else:
                stream = self._anonymised_stream(janus, v.camera, now)
            self._unwatched.pop(stream.id, None)
            pin = self._admit(janus, stream, v.token)
        return Grant(v, v.token, stream.id, pin)

    def close(self, view_id: int, user: str, now: datetime) -> View | None:
        """The viewer closed the tile; None when it was not this user's open view."""
        v = live.view(self.engine, view_id)
        if v is None or v.account != user or not v.open:
            return None
        return self._end(v, "closed", now)

    def end_for(self, v: View, reason: str, now: datetime) -> View | None:
        return self._end(v, reason, now)

    def _end(self, v: View, reason: str, now: datetime) -> View | None:
        with self._lock:
            ended = live.end_view(self.engine, self.audit, v.id, reason=reason, now=now)
            if self.janus is not None:
                try:
                    self.janus.remove_token(v.token)
                except JanusError as exc:
                    log.warning("live: view %d's token not removed (%s)", v.id, exc)
            for s in live.streams(self.engine, [v.camera]):
                if s.kind == "raw" and s.view_id == v.id:
                    self._destroy(s)
                elif s.kind == "anonymised" and not any(
                    o.kind == "anonymised" for o in live.open_views(self.engine, v.camera)
                ):
                    self._unwatched.setdefault(s.id, now)
        return ended

    def _destroy(self, s: Stream) -> None:
        live.delete_stream(self.engine, s.id)
        self._unwatched.pop(s.id, None)
        relay = self._relays.pop(s.id, None)
        if relay is not None:
            relay.close()
            r = relay.stats
            # Its cost at its end, as a live encoder says its own: what a fallback camera costs here.
            log.info(
                "live: fallback relay for camera %s stopped after %d pictures (%d packets, %d lost, "
                "%d decode errors; %.2f CPU s, %.1f ms a picture)",
                s.camera,
                r.frames,
                r.packets,
                r.lost,
                r.decode_errors,
                r.cpu_seconds,
                1000 * r.cpu_seconds / max(1, r.frames),
            )
        if s.kind == "relay":
            return
        if self.janus is not None:
            try:
                self.janus.destroy_mountpoint(Mountpoint(s.id, s.rtp_port, "", s.secret))
            except JanusError as exc:
                log.warning("live: mountpoint %d not destroyed (%s)", s.id, exc)

    def _new_id(self) -> int:
        taken = {s.id for s in live.streams(self.engine)}
        while True:
            candidate = secrets.randbelow(MAX_MOUNTPOINT_ID) + 1
            if candidate not in taken:
                return candidate

    # --- the sweeper -------------------------------------------------------------------------

    def sweep(self, now: datetime) -> None:
        for v, reason in live.due(self.engine, now, self.quiet):
            self._end(v, reason, now)
        with self._lock:
            for s in live.streams(self.engine):
                if s.kind == "raw" and (s.expires_at is None or s.expires_at <= now):
                    self._destroy(s)
                elif s.kind == "anonymised":
                    since = self._unwatched.get(s.id)
                    if since is None and not live.open_views(self.engine, s.camera):
                        self._unwatched[s.id] = now
                    elif since is not None and now - since >= LINGER:
                        self._destroy(s)
                elif s.kind == "relay":
                    relay = self._relays.get(s.id)
                    since = self._unwatched.get(s.id)
                    if relay is None:
                        self._destroy(s)  # another console's, from before a restart
                    elif relay.listeners:
                        self._unwatched.pop(s.id, None)
                    elif since is None:
                        self._unwatched[s.id] = now
                    elif now - since >= LINGER:
                        self._destroy(s)
        if self.janus is not None:
            try:
                if self.janus.watchdog_once():
                    log.warning("live: Janus restarted; tiles reconnect")
            except JanusError as exc:
                log.error("live: %s", exc)

    def watching(self) -> list[View]:
        return live.open_views(self.engine)
