"""What an installed Lanterne has: the wheel built from this checkout, unpacked outside it, serves
the console's map library, its pages, the public notice (a package template) and migrates a new
database (package migrations). A file the code reads from outside the package would be missing
here, as it would be on a user's machine."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import sys
from pathlib import Path

import lanterne
from fastapi.testclient import TestClient
from lanterne.api.app import create_app
from lanterne.config import parse_config

site = Path(sys.argv[1])
assert Path(lanterne.__file__).is_relative_to(site), lanterne.__file__
cfg = parse_config({
    "site": "Wheel check",
    "store": {"url": f"sqlite:///{site.parent / 'lanterne.db'}"},
    "audit": {"key_path": str(site.parent / "audit.key")},
    "cameras": [{"id": "c1", "source": "c1.mp4", "location": {"lat": 48.85, "lon": 2.35}}],
})
with TestClient(create_app(cfg), client=("127.0.0.1", 50000)) as client:
    for path in ("/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
                 "/static/vendor/leaflet/images/marker-icon.png", "/static/console/map.js",
                 "/static/console/common.js", "/login", "/public"):
        r = client.get(path)
        assert r.status_code == 200 and r.content, (path, r.status_code)
    print("served", len(client.get("/static/vendor/leaflet/leaflet.js").content))
"""


def test_the_installed_wheel_serves_the_map(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("lanterne-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # The checkout's source is on sys.path through the editable install's .pth file; PYTHONPATH
    # comes first, so the unpacked wheel is what gets imported (the script checks it).
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shipped = (site / "lanterne/api/static/vendor/leaflet/leaflet.js").stat().st_size
    assert f"served {shipped}" in result.stdout
