"""`lanterne run` with a model file that is not the expected one stops before any camera starts,
with one line naming the file and the fix: a checksum that does not match, or a file whose input
size is not the configured one. (`analyze` is covered in tests/cli/test_main.py, the detector's
own checks in tests/video/test_detectors.py; neither says the input-size error is one line.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.cli.main import app
from lanterne.runtime.demo import DEMO_CONFIG
from lanterne.video.detectors import onnx_yolox

SHARED_MODEL = Path(__file__).resolve().parents[3] / "shared" / "models" / "yolox_nano.onnx"


def run_once(tmp_path: Path, **overrides: object) -> tuple[int, list[str]]:
    data = {**DEMO_CONFIG, "mode": "statistics", "store": {"url": f"sqlite:///{tmp_path / 'run.db'}"}}
    data.update(overrides)
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    assert "Traceback" not in result.output
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def test_a_model_that_fails_its_checksum_stops_the_run_in_one_line(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    blob = bytearray(SHARED_MODEL.read_bytes())
    blob[-100] ^= 0xFF
    (models / "yolox_nano.onnx").write_bytes(bytes(blob))
    code, lines = run_once(tmp_path, models_dir=str(models))
    assert code == 2 and len(lines) == 1, lines
    assert "yolox_nano.onnx: sha256" in lines[0] and "delete the file" in lines[0]
    assert not (tmp_path / "run.db").exists(), "stopped before opening the site"


def test_a_model_of_another_input_size_stops_the_run_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The published 416-px file where the configuration asks for 320 (a wrong registry entry).
    monkeypatch.setattr(onnx_yolox, "detector_file", lambda *_: "yolox_nano")
    code, lines = run_once(tmp_path, detector={"input_size": 320})
    assert code == 2 and len(lines) == 1, lines
    assert "input shape [1, 3, 416, 416] does not match input_size 320" in lines[0]
    assert "set detector.input_size" in lines[0]
