"""The real clips in ../shared (never copied into the repository) and short excerpts of them, which
keep the tests that run the whole pipeline fast."""

from __future__ import annotations

from pathlib import Path

import av

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"


def excerpt(src: Path, dst: Path, seconds: float) -> Path:
    """Re-encode the first `seconds` of a real clip (short inputs keep the tests fast)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream("mpeg4", rate=s_in.average_rate)
        s_out.width, s_out.height, s_out.pix_fmt = s_in.width, s_in.height, "yuv420p"
        s_out.bit_rate = 4_000_000
        for frame in inp.decode(s_in):
            if frame.time is not None and frame.time >= seconds:
                break
            frame.pict_type = av.video.frame.PictureType.NONE
            for p in s_out.encode(frame.reformat(format="yuv420p")):
                out.mux(p)
        for p in s_out.encode():
            out.mux(p)
    return dst
