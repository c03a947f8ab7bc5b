"""`lanterne recordings …` as an installer and a supervisor run it: the key rotated and listed,
verification that names a tampered segment and exits 1, holds with their one-line refusals."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import av
import yaml
from typer.testing import CliRunner

from lanterne.cli.main import app
from lanterne.config import load_config
from lanterne.runtime.recording import open_recorder
from lanterne.runtime.site import open_site
from lanterne.video.recording import KeyRing, segments
from tests.support.video import VIDEO

runner = CliRunner()
ORIGIN = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def write_config(tmp: Path) -> Path:
    data = {
        "mode": "alerts",
        "store": {"url": "sqlite:///lanterne.db"},
        "recording": {"segment_seconds": 5},
        "cameras": [{"id": "cam1", "source": str(VIDEO / "vtest.avi"), "location": {"lat": 0, "lon": 0}}],
    }
    p = tmp / "site.yml"
    p.write_text(yaml.safe_dump(data))
    return p


def record(config: Path, limit: int = 300) -> None:
    cfg = load_config(config)
    with open_site(cfg) as site, av.open(str(VIDEO / "vtest.avi")) as src:
        rec = open_recorder(cfg.recording, site.store, site.audit)
        cam = rec.open("cam1", src.streams.video[0], ORIGIN)
        for i, p in enumerate(src.demux(src.streams.video[0])):
            if i == limit:
                break
            cam.push(p)
        cam.close()


def test_rotate_key_then_verify_then_tamper(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record(config)
    keys = tmp_path / "recording-keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    rotated = runner.invoke(app, ["recordings", "rotate-key", "--config", str(config), "--user", "admin"])
    assert rotated.exit_code == 0, rotated.output
    assert len(KeyRing.load(keys).ids()) == 2
    listed = runner.invoke(app, ["recordings", "keys", "--config", str(config)])
    assert listed.exit_code == 0 and "reading" in listed.output and "new segments" in listed.output
    ok = runner.invoke(app, ["recordings", "verify", "--config", str(config)])
    assert ok.exit_code == 0 and "recordings verified" in ok.output
    cfg = load_config(config)
    with open_site(cfg) as site:
        row = segments(site.store, "cam1", ORIGIN, datetime(2027, 1, 1, tzinfo=UTC))[1]
    path = cfg.recording.dir / row.path
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    bad = runner.invoke(app, ["recordings", "verify", "--config", str(config)])
    assert bad.exit_code == 1
    [line] = [ln for ln in bad.output.splitlines() if ln.startswith("problem:")]
    assert f"segment {row.id} of camera cam1 at 2026-05-01T08:00:25+00:00" in line and "sha256" in line


def test_holds_placed_listed_released_and_refused_in_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    base = ["recordings", "hold", "--config", str(config), "--start", "2026-05-01T08:00:00+00:00"]
    no_ref = runner.invoke(
        app, [*base, "--end", "2026-05-01T09:00:00+00:00", "--reference", " ", "--reason", "x"]
    )
    assert (
        no_ref.exit_code == 2 and "judicial reference" in no_ref.output and "Traceback" not in no_ref.output
    )
    no_tz = runner.invoke(
        app, [*base, "--end", "2026-05-01T09:00:00", "--reference", "PV 1", "--reason", "x"]
    )
    assert no_tz.exit_code == 2 and "has no time zone" in no_tz.output
    unknown = runner.invoke(
        app,
        [
            *base,
            "--end",
            "2026-05-01T09:00:00+00:00",
            "--reference",
            "PV 1",
            "--reason",
            "x",
            "--camera",
            "nope",
        ],
    )
    assert unknown.exit_code == 2 and "not in the configuration" in unknown.output
    placed = runner.invoke(
        app,
        [
            *base,
            "--end",
            "2026-05-01T09:00:00+00:00",
            "--reference",
            "PV 1",
            "--reason",
            "enquête",
            "--camera",
            "cam1",
        ],
    )
    assert placed.exit_code == 0 and "recording hold 1 placed on cam1" in placed.output
    listed = runner.invoke(app, ["recordings", "holds", "--config", str(config)])
    assert "PV 1" in listed.output and "active" in listed.output
    released = runner.invoke(app, ["recordings", "release", "1", "--config", str(config)])
    assert released.exit_code == 0 and "lifted" in released.output
    again = runner.invoke(app, ["recordings", "release", "1", "--config", str(config)])
    assert again.exit_code == 2 and "already lifted" in again.output


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    record(config, limit=20)
    (tmp_path / "recording-keys.json").chmod(0o640)
    result = runner.invoke(app, ["recordings", "verify", "--config", str(config)])
    assert result.exit_code == 2 and "chmod 600" in result.output
