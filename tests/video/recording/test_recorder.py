"""The recorder on real video (PyAV on the shared clips), real AES-GCM and a real store: what goes
in comes out frame for frame, segments start on keyframes and chain, a changed byte, a wrong key,
a kill -9 and a dropped camera each end as the issue says (issue 11, SC-02, EV-06)."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from lanterne.audit import AuditLog
from lanterne.config.schema import RecordingSettings
from lanterne.core.errors import RecordingError
from lanterne.runtime.recording import open_recorder
from lanterne.store import Store
from lanterne.video.recording import KeyRing, Recorder, open_segment, segments, timeline, verify
from lanterne.video.recording.index import all_segments
from tests.support.video import VIDEO

VTEST = VIDEO / "vtest.avi"
ORIGIN = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
LATER = ORIGIN + timedelta(days=1)


@dataclass
class Site:
    store: Store
    audit: AuditLog
    keys: KeyRing
    settings: RecordingSettings

    @property
    def root(self) -> Path:
        return self.settings.dir

    def recorder(self) -> Recorder:
        return open_recorder(self.settings, self.store, self.audit, keys=self.keys)


def make_site(url: str, tmp: Path, segment_seconds: int = 5) -> Site:
    store = Store.open(url)
    return Site(
        store,
        AuditLog(store.engine),
        KeyRing.load_or_create(tmp / "keys.json"),
        RecordingSettings(dir=tmp / "rec", key_file=tmp / "keys.json", segment_seconds=segment_seconds),
    )


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    s = make_site(db_url, tmp_path)
    yield s
    s.store.close()


@pytest.fixture
def lite(sqlite_url: str, tmp_path: Path) -> Iterator[Site]:
    """SQLite only: for what is about the files, not the database."""
    s = make_site(sqlite_url, tmp_path)
    yield s
    s.store.close()


def record(
    site: Site, clip: Path = VTEST, camera: str = "cam1", origin: datetime = ORIGIN, limit: int | None = None
) -> int:
    """Push the clip's video packets through a recorder, as the camera source will; return how many."""
    rec = site.recorder()
    n = 0
    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        cam = rec.open(camera, stream, origin)
        for packet in src.demux(stream):
            if limit is not None and n >= limit:
                break
            cam.push(packet)
            n += 1
        cam.close()
    return n


def frames_of(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        assert [s.type for s in c.streams] == ["video"]
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def test_round_trip_gives_back_every_frame_pixel_for_pixel(lite: Site) -> None:
    record(lite)
    rows = segments(lite.store, "cam1", ORIGIN, LATER)
    assert rows and all(r.state == "complete" for r in rows)
    got = [f for r in rows for f in frames_of(open_segment(r, lite.root, lite.keys))]
    with av.open(str(VTEST)) as src:
        want = [f.to_ndarray(format="gray") for f in src.decode(video=0)]
    assert len(got) == len(want) == 795
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    # Nothing in clear on disk: no Matroska magic in any file, every file private.
    for r in rows:
        path = lite.root / r.path
        assert b"matroska" not in path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_segments_start_on_keyframes_and_chain(site: Site) -> None:
    record(site)
    rows = segments(site.store, "cam1", ORIGIN, LATER)
    # vtest.avi has a keyframe every 25 s (frames 0, 250, 500, 750 at 10 fps): with 5-second
    # segments, each new segment waits for the next keyframe.
    assert [(r.start - ORIGIN).total_seconds() for r in rows] == [0.0, 25.0, 50.0, 75.0]
    assert (rows[-1].end - ORIGIN).total_seconds() == pytest.approx(79.5)
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert rows[0].prev_sha256 == "0" * 64
    for prev, row in itertools.pairwise(rows):
        assert row.prev_sha256 == prev.sha256
        assert prev.end == row.start
    for r in rows:
        data = (site.root / r.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r.sha256 and len(data) == r.size
        with av.open(io.BytesIO(open_segment(r, site.root, site.keys))) as c:
            first = next(c.decode(video=0))
            assert first.key_frame and first.time == 0.0
    assert verify(site.store, site.root, site.keys) == []
    assert [s.kind for s in timeline(site.store, "cam1", ORIGIN, ORIGIN + timedelta(seconds=79.5))] == [
        "recorded"
    ] * 4


def test_one_flipped_byte_is_named_by_playback_and_verification(site: Site) -> None:
    record(site)
    rows = segments(site.store, "cam1", ORIGIN, LATER)
    target = rows[1]
    path = site.root / target.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError) as exc:
        open_segment(target, site.root, site.keys)
    msg = str(exc.value)
    assert f"segment {target.id} of camera cam1 at 2026-05-01T08:00:25+00:00" in msg and "\n" not in msg
    problems = verify(site.store, site.root, site.keys)
    assert [p.segment_id for p in problems] == [target.id]
    # The others still play.
    for r in rows:
        if r.id != target.id:
            assert frames_of(open_segment(r, site.root, site.keys))


def test_a_removed_segment_row_breaks_the_chain(site: Site) -> None:
    from sqlalchemy import delete

    from lanterne.store.tables import RecordingSegmentRecord as R

    record(site)
    rows = segments(site.store, "cam1", ORIGIN, LATER)
    with site.store.engine.begin() as conn:
        conn.execute(delete(R).where(R.id == rows[1].id))
    problems = verify(site.store, site.root, site.keys)
    assert (
        len(problems) == 1
        and "segments 2..2" in str(problems[0])
        and "no recorded deletion" in str(problems[0])
    )


@pytest.mark.parametrize("how", ["other key file", "missing key file"])
def test_a_wrong_or_missing_key_is_one_line_and_deletes_nothing(lite: Site, tmp_path: Path, how: str) -> None:
    record(lite)
    rows = segments(lite.store, "cam1", ORIGIN, LATER)
    before = {p: p.read_bytes() for p in lite.root.rglob("*.lseg")}
    key_file = lite.settings.key_file
    key_file.unlink()
    if how == "other key file":
        KeyRing.load_or_create(key_file)
        with pytest.raises(RecordingError, match=r"is not in .*keys\.json; restore the key file") as exc:
            open_segment(rows[0], lite.root, KeyRing.load(key_file))
    else:
        with pytest.raises(RecordingError, match=r"recording key file .* not found; restore it") as exc:
            KeyRing.load(key_file)
    assert "\n" not in str(exc.value)
    assert {p: p.read_bytes() for p in lite.root.rglob("*.lseg")} == before
    assert segments(lite.store, "cam1", ORIGIN, LATER) == rows


def test_same_key_id_with_other_bytes_is_named_as_the_wrong_key(lite: Site) -> None:
    import base64
    import json

    record(lite, limit=100)
    row = segments(lite.store, "cam1", ORIGIN, LATER)[0]
    body = json.loads(lite.settings.key_file.read_text())
    body["keys"][0]["key"] = base64.b64encode(os.urandom(32)).decode()
    lite.settings.key_file.write_text(json.dumps(body))
    with pytest.raises(RecordingError, match="is not the key it was written with; restore the key file"):
        open_segment(row, lite.root, KeyRing.load(lite.settings.key_file))


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, UTC
    import av
    from lanterne.audit import AuditLog
    from lanterne.config.schema import RecordingSettings
    from lanterne.store import Store
    from lanterne.runtime.recording import open_recorder
    url, root, keys, clip, stop_after = sys.argv[1:6]
    store = Store.open(url)
    rec = open_recorder(RecordingSettings(dir=root, key_file=keys, segment_seconds=5), store, AuditLog(store.engine))
    src = av.open(clip); s = src.streams.video[0]
    cam = rec.open("cam1", s, datetime(2026, 5, 1, 8, 0, tzinfo=UTC))
    for i, p in enumerate(src.demux(s)):
        cam.push(p)
        if i + 1 == int(stop_after):
            print("ready", flush=True)
            time.sleep(600)
    """
)


def test_kill_9_mid_segment_keeps_completed_segments_and_recovers_the_partial_one(
    lite: Site, sqlite_url: str
) -> None:
    # 400 packets: segment 1 (frames 0-249) is sealed, segment 2 is 15 s into its 25 s.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLED_WRITER,
            sqlite_url,
            str(lite.root),
            str(lite.settings.key_file),
            str(VTEST),
            "400",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert [r.state for r in all_segments(lite.store, "cam1")] == ["complete", "open"]
    recovered = lite.recorder().recover()
    assert [r.state for r in recovered] == ["recovered"]
    rows = segments(lite.store, "cam1", ORIGIN, LATER)
    assert [r.state for r in rows] == ["complete", "recovered"]
    assert verify(lite.store, lite.root, lite.keys) == []
    assert len(frames_of(open_segment(rows[0], lite.root, lite.keys))) == 250
    # Clusters close every second (10 frames here): at most the last one was never written.
    partial = frames_of(open_segment(rows[1], lite.root, lite.keys))
    assert 140 <= len(partial) <= 150
    assert (rows[1].end - rows[1].start).total_seconds() == pytest.approx(len(partial) / 10)
    with av.open(str(VTEST)) as src:
        want = [f.to_ndarray(format="gray") for f in src.decode(video=0)][250 : 250 + len(partial)]
    assert all(np.array_equal(a, b) for a, b in zip(partial, want, strict=True))
    # Recording goes on after the crash, chained to the recovered segment.
    record(lite, origin=ORIGIN + timedelta(minutes=5), limit=50)
    rows = segments(lite.store, "cam1", ORIGIN, LATER)
    assert rows[-1].prev_sha256 == rows[1].sha256 and verify(lite.store, lite.root, lite.keys) == []


def test_a_late_writer_never_overwrites_the_seal_another_process_put_on_its_segment(
    lite: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # Two writers of one camera (an owner that went on writing after a failover): the new owner
    # recovered the open segment; the late writer's seal must not change the hash the chain uses.
    late = lite.recorder()
    with av.open(str(VTEST)) as src:
        stream = src.streams.video[0]
        cam = late.open("cam1", stream, ORIGIN)
        for packet in itertools.islice(src.demux(stream), 300):
            cam.push(packet)
        [recovered] = lite.recorder().recover()
        assert recovered.state in ("complete", "recovered")
        for packet in itertools.islice(src.demux(stream), 20):
            cam.push(packet)
        with caplog.at_level("ERROR"):
            cam.close()
    assert "was sealed by another process while this one still wrote it" in caplog.text
    [_, second] = all_segments(lite.store, "cam1")
    assert second.id == recovered.id and second.sha256 == recovered.sha256
    record(lite, origin=ORIGIN + timedelta(minutes=5), limit=30)
    assert all_segments(lite.store, "cam1")[-1].prev_sha256 == recovered.sha256


def test_a_segment_killed_before_its_first_cluster_is_lost(lite: Site) -> None:
    from lanterne.video.recording.index import open_row

    row = open_row(lite.store, "cam1", ORIGIN, lite.keys.newest[0], lambda seq, start: f"cam1/x-{seq}.lseg")
    (lite.root / "cam1").mkdir(parents=True)
    (lite.root / row.path).write_bytes(b"LNTSEG")  # killed inside the header write
    [lost] = lite.recorder().recover()
    assert lost.state == "lost" and lost.end == lost.start
    with pytest.raises(RecordingError, match="lost in a crash"):
        open_segment(lost, lite.root, lite.keys)
    assert [s.kind for s in timeline(lite.store, "cam1", ORIGIN, ORIGIN + timedelta(seconds=5))] == [
        "lost",
        "gap",
    ]


def test_audio_never_reaches_a_segment(lite: Site, tmp_path: Path) -> None:
    clip = tmp_path / "with-audio.mkv"
    with av.open(str(clip), "w") as out:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        img = np.zeros((120, 160, 3), np.uint8)
        tone = (np.sin(np.arange(1024) / 5.0) * 0.3).astype(np.float32).reshape(1, -1)
        for i in range(30):
            img[:] = i * 8
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
            for _ in range(5):
                af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                af.sample_rate = 48000
                for p in a.encode(af):
                    out.mux(p)
        for s in (v, a):
            for p in s.encode():
                out.mux(p)
    rec = lite.recorder()
    with av.open(str(clip)) as src:
        assert {s.type for s in src.streams} == {"video", "audio"}
        with pytest.raises(RecordingError, match="only a video stream is recorded"):
            rec.open("cam1", src.streams.audio[0], ORIGIN)  # type: ignore[arg-type]
        cam = rec.open("cam1", src.streams.video[0], ORIGIN)
        for packet in src.demux():  # every stream's packets, as a careless caller might pass
            cam.push(packet)
        cam.close()
    assert cam.bad_packets > 0  # the audio packets, refused
    [row] = segments(lite.store, "cam1", ORIGIN, LATER)
    assert len(frames_of(open_segment(row, lite.root, lite.keys))) == 30  # frames_of checks: video only


def test_a_camera_that_drops_leaves_a_gap_on_the_timeline(site: Site) -> None:
    record(site, limit=100)  # 10 s
    record(site, origin=ORIGIN + timedelta(seconds=40), limit=100)  # back 30 s later
    spans = timeline(site.store, "cam1", ORIGIN, ORIGIN + timedelta(seconds=50))
    assert [
        (s.kind, (s.start - ORIGIN).total_seconds(), (s.end - ORIGIN).total_seconds()) for s in spans
    ] == [
        ("recorded", 0.0, 10.0),
        ("gap", 10.0, 40.0),
        ("recorded", 40.0, 50.0),
    ]
    assert verify(site.store, site.root, site.keys) == []  # the chain runs across the gap


def test_key_rotation_keeps_old_segments_readable(site: Site) -> None:
    record(site, limit=100)
    old_id = site.keys.newest[0]
    new_id = KeyRing.load(site.settings.key_file).rotate()
    site.keys = KeyRing.load(site.settings.key_file)
    record(site, origin=ORIGIN + timedelta(minutes=1), limit=100)
    rows = segments(site.store, "cam1", ORIGIN, LATER)
    assert [r.key_id for r in rows] == [old_id, new_id] and old_id != new_id
    assert all(len(frames_of(open_segment(r, site.root, site.keys))) == 100 for r in rows)
    with pytest.raises(RecordingError, match="is the newest; rotate first"):
        site.keys.retire(new_id)


def test_key_file_is_private_and_a_readable_one_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    with caplog.at_level("INFO"):
        KeyRing.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.getMessage() for r in caplog.records if "key file created" in r.getMessage()]
    assert str(os.urandom) not in path.read_text()
    path.chmod(0o644)
    with pytest.raises(
        RecordingError, match=r"can be read by other users \(mode 0644\); run `chmod 600 .*keys\.json`"
    ):
        KeyRing.load(path)
    with pytest.raises(RecordingError, match="chmod 600"):
        KeyRing.load_or_create(path)


_DISK_FULL_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, UTC
    from pathlib import Path
    import av
    from lanterne.audit import AuditLog
    from lanterne.config.schema import RecordingSettings
    from lanterne.store import Store
    from lanterne.runtime.recording import open_recorder
    url, root, keys, clip = sys.argv[1:5]
    store = Store.open(url)
    rec = open_recorder(RecordingSettings(dir=root, key_file=keys, segment_seconds=5), store, AuditLog(store.engine))
    for n in range(3):  # 3 x 79.5 s of vtest.avi (3 x 8 MB) into a 12 MiB file system
        src = av.open(clip); s = src.streams.video[0]
        cam = rec.open("cam1", s, datetime(2026, 5, 1, 8, 2 * n, tzinfo=UTC))
        for p in src.demux(s):
            cam.push(p)
        cam.close()
    print(rec.disk_full_events)
    """
)


def test_a_full_disk_deletes_the_oldest_unheld_segments_and_recording_goes_on(
    lite: Site, sqlite_url: str
) -> None:
    """A real full disk: a 12 MiB tmpfs mounted in a private mount namespace (no root needed)."""
    from lanterne.accountability.recordings import place_hold
    from lanterne.audit import Action

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small file system")
    lite.root.mkdir(parents=True, exist_ok=True)
    place_hold(
        lite.store,
        lite.audit,
        "cam1",
        ORIGIN,
        ORIGIN + timedelta(seconds=1),
        "PV 7",
        "enquête",
        "sup",
        ORIGIN,
    )
    script = f"mount -t tmpfs -o size=12m tmpfs {lite.root} && exec {sys.executable} -c '{_DISK_FULL_WRITER}' {sqlite_url} {lite.root} {lite.settings.key_file} {VTEST}"
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0 and "mount" in proc.stderr and "disk_full" not in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) >= 1
    deleted = [
        e
        for e in lite.audit.entries(action=Action.RETENTION_DELETE)
        if e.details.get("reason") == "disk_full"
    ]
    assert deleted and all(e.object_id == "cam1" for e in deleted)
    rows = all_segments(lite.store, "cam1")
    # The held first segment survived; the newest recording was still written to its end.
    assert rows[0].seq == 1 and rows[0].state == "complete"
    assert rows[-1].end == ORIGIN + timedelta(minutes=4, seconds=79.5)
    # The tmpfs went with its namespace, so the files are gone here: only the index is checked,
    # every sequence number missing from it being accounted for by a disk_full record.
    assert "no recorded deletion" not in " ".join(str(p) for p in verify(lite.store, lite.root, lite.keys))
