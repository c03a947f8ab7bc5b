"""The commands a user runs, and what they do with bad input: one line naming the problem and the
fix, a non-zero exit, no traceback, and every event found before a fault kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.cli.main import app
from lanterne.runtime.demo import DEMO_CONFIG
from tests.support.video import VIDEO, excerpt

runner = CliRunner()


def write_config(tmp: Path, **overrides: object) -> Path:
    data = {**DEMO_CONFIG, **overrides}
    p = tmp / "site.yml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("clip") / "vtest-20s.mp4", 20)


def one_line_error(result: object) -> str:
    out = result.output  # type: ignore[attr-defined]
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return lines[0]


def test_analyze_writes_events_stats_and_anonymised_evidence(clip: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(clip), "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    for key in ("video_seconds", "frames_decoded", "frames_analysed", "detector_runs", "cpu_seconds"):
        assert key in stats
    assert stats["frames_decoded"] == 200 and stats["frames_analysed"] == 100
    assert stats["video_seconds"] == pytest.approx(20.0, abs=0.2)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events, "people walk the wrong way across the crossroads in the first 20 s"
    for e in events:
        assert {"type", "camera", "zone", "start", "end", "confidence", "region"} <= e.keys()
        assert 0 <= e["start"] <= e["end"] <= 20.5
        assert all(0 <= v <= 1 for v in e["region"])
    files = list((out / "evidence").rglob("*"))
    snaps = [f for f in files if f.name.endswith("-snapshot.jpg")]
    clips = [f for f in files if f.name.endswith("-clip.mp4")]
    assert len(snaps) == len(events) and len(clips) == len(events)


def test_statistics_mode_never_writes_a_frame(clip: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, mode="statistics")
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(clip), "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert written == ["counts.json", "events.jsonl", "stats.json"]
    assert (out / "events.jsonl").read_text() == ""
    counts = json.loads((out / "counts.json").read_text())
    assert {c["zone"] for c in counts} == {"lawn", "crossroads"}
    crossroads = next(c for c in counts if c["zone"] == "crossroads")
    assert crossroads["max_people"] >= 3 and crossroads["entries"].get("person", 0) >= 3
    for c in counts:
        assert set(c) == {
            "camera",
            "zone",
            "bucket_start",
            "bucket_seconds",
            "max_people",
            "mean_people",
            "entries",
            "samples",
        }


def test_truncated_video_keeps_events_found_before(tmp_path: Path) -> None:
    cut = tmp_path / "cut.avi"
    cut.write_bytes((VIDEO / "vtest.avi").read_bytes()[:2_000_000])
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(cut), "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 3
    assert "truncated" in result.output and "events found before it are kept" in result.output
    kept = (out / "events.jsonl").read_text().splitlines()
    assert len(kept) >= 1
    assert json.loads((out / "stats.json").read_text())["error"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["analyze", "{tmp}/missing.mp4", "--config", "{cfg}"], "missing.mp4: file not found"),
        (
            ["analyze", "{tmp}/garbage.mp4", "--config", "{cfg}"],
            "garbage.mp4: not a video file FFmpeg can read",
        ),
        (["analyze", "{clip}", "--config", "{tmp}/nope.yml"], "configuration file not found"),
        (
            ["analyze", "{clip}", "--config", "{badcfg}"],
            "cameras[0].zones[0].polygon: needs at least 3 points",
        ),
        (["analyze", "{clip}", "--config", "{cfg}", "--camera", "nope"], "--camera nope: no such camera"),
        (["analyze", "{clip}", "--config", "{modelcfg}"], "models directory"),
        (["config", "check", "{badcfg}"], "needs at least 3 points"),
        (["anonymize", "{tmp}/missing.mp4", "{tmp}/o.mp4"], "missing.mp4: file not found"),
    ],
)
def test_user_mistakes_are_one_line(clip: Path, tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "garbage.mp4").write_text("this is not a video\n" * 50)
    cfg = write_config(tmp_path)
    bad = json.loads(json.dumps(DEMO_CONFIG))
    bad["cameras"][0]["zones"][0]["polygon"] = [[0, 0], [1, 1]]
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad))
    (tmp_path / "models.yml").write_text(
        yaml.safe_dump({**DEMO_CONFIG, "models_dir": str(tmp_path / "no-models")})
    )
    fill = {
        "tmp": tmp_path,
        "cfg": cfg,
        "clip": clip,
        "badcfg": tmp_path / "bad.yml",
        "modelcfg": tmp_path / "models.yml",
    }
    result = runner.invoke(app, [a.format(**fill) for a in args])
    assert result.exit_code == 2, result.output
    assert expected in one_line_error(result)


def test_wrong_model_checksum_is_named(clip: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    real = Path(__file__).resolve().parents[3] / "shared" / "models" / "yolox_nano.onnx"
    blob = bytearray(real.read_bytes())
    blob[-100] ^= 0xFF
    (models / "yolox_nano.onnx").write_bytes(bytes(blob))
    p = tmp_path / "m.yml"
    p.write_text(yaml.safe_dump({**DEMO_CONFIG, "models_dir": str(models)}))
    result = runner.invoke(app, ["analyze", str(clip), "--config", str(p), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "yolox_nano.onnx: sha256" in line and "does not match" in line


def test_config_docs_and_check(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    ok = runner.invoke(app, ["config", "check", str(cfg)])
    assert ok.exit_code == 0 and "valid (1 cameras, 2 zones" in ok.output
    docs = runner.invoke(app, ["config", "docs"])
    assert docs.exit_code == 0 and docs.output.startswith("# Configuration reference")


@pytest.mark.parametrize("module", ["lanterne.cli", "lanterne.cli.main"])
def test_runs_as_a_module(module: str) -> None:
    # The browser tests and benchmarks start the server with `python -m lanterne.cli.main`.
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for command in ("analyze", "demo", "config", "alerts", "suspensions", "dpia", "serve", "users"):
        assert command in result.stdout
