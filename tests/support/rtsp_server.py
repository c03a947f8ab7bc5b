"""A real RTSP camera for the tests: GStreamer's RTSP server (Debian's gst-rtsp-server) serving an
H.264 file in a loop at real time, on 127.0.0.1.

Run with the system Python, which has the GObject bindings (`python3-gi`,
`gir1.2-gst-rtsp-server-1.0`), not the project's virtual environment:

    /usr/bin/python3 tests/support/rtsp_server.py CLIP.mp4 PORT

Signals make it misbehave as cameras do: SIGUSR1 hangs it (sessions stay open, no video flows),
SIGUSR2 resumes, SIGTERM kills it. It prints `ready` once it listens.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

VALVES: list[Any] = []
HUNG = {"on": False}


def main() -> None:
    # Imported here: the project's environment (pytest collects this file) has no GObject bindings.
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    clip, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    # multifilesrc loops the file, identity paces it at real time as a camera sends, and the
    # valve drops every buffer while the camera "hangs".
    factory.set_launch(
        f"( multifilesrc location={clip} loop=true ! qtdemux ! identity sync=true ! h264parse config-interval=-1 "
        "! valve name=hang drop=false ! rtph264pay name=pay0 pt=96 )"
    )
    factory.set_shared(True)

    def configured(_factory: Any, media: Any) -> None:
        valve = media.get_element().get_by_name("hang")
        valve.set_property("drop", HUNG["on"])
        VALVES.append(valve)

    factory.connect("media-configure", configured)
    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)

    def hang(on: bool) -> bool:
        HUNG["on"] = on
        for valve in VALVES:
            valve.set_property("drop", on)
        return True

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, lambda: hang(True))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, lambda: hang(False))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
