"""The live video wall's sending side (issue 14): while someone watches a camera, the process that
analyses it sends one anonymised H.264 stream to a Janus streaming mountpoint, which every viewer
shares, and, for a browser that cannot play WebRTC, the console turns that same stream into JPEG
pictures (`JpegRelay`). Janus itself is driven from the runtime; nothing here knows of viewers or
accounts."""

from lanterne.video.live.encoder import LiveEncoder, LiveSettings, LiveStats, sdp
from lanterne.video.live.relay import JpegRelay

__all__ = ["JpegRelay", "LiveEncoder", "LiveSettings", "LiveStats", "sdp"]
