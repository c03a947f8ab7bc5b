"""Exports: the recording's range, anonymised, watermarked in every frame and in its metadata,
with a signed manifest of its segments that `lanterne export verify` checks; on the record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from lanterne.accountability.privacy import PrivacyError, grant
from lanterne.audit import Action
from lanterne.cli.main import app
from lanterne.config import Config, parse_config
from lanterne.core.errors import ConfigError
from lanterne.runtime.exports import export_recording
from lanterne.runtime.site import Site, open_site
from lanterne.video.export import manifest_path, verify_export
from tests.support.recording import camera_clip, record

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camera_clip(tmp_path_factory.mktemp("cam"), seconds=12.0)


def site_config(tmp: Path) -> Config:
    data = {
        "mode": "alerts",
        "site": "Ville d'Exemple",
        "cameras": [{"id": "quai", "source": "quai.mp4", "location": {"lat": 48.88, "lon": 2.35}}],
    }
    path = tmp / "site.yml"
    path.write_text(json.dumps(data), encoding="utf-8")
    return parse_config(data, base_dir=tmp)


@pytest.fixture
def site(tmp_path: Path, clip: Path) -> Site:
    cfg = site_config(tmp_path)
    opened = open_site(cfg)
    record(cfg, opened.store, opened.audit, "quai", T0, clip)
    yield opened
    opened.close()


def export(site: Site, out: Path, **kw: object) -> object:
    args = {
        "requester": "sup-1",
        "recipient": "OPJ Martin, commissariat central",
        "purpose": "PV 2026/123",
        "now": T0 + timedelta(hours=1),
    }
    args.update(kw)
    return export_recording(site, "quai", T0 + timedelta(seconds=2), T0 + timedelta(seconds=5), out, **args)  # type: ignore[arg-type]


def test_an_export_is_watermarked_signed_and_recorded(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "export.mp4"
    manifest = export(site, out)
    assert verify_export(out) == []
    with av.open(str(out)) as c:
        assert manifest.export_id in c.metadata.get("comment", "") + c.metadata.get("title", "")
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    # 3 s at 10 frames a second.
    assert 28 <= len(frames) <= 32 and manifest.frames == len(frames)
    bottom = frames[0][-12:]
    assert (bottom > 200).any() and np.median(bottom) < 80, "a dark band with white text"
    assert manifest.segments and all(len(s.sha256) == 64 for s in manifest.segments)
    [record_] = [e for e in site.audit.entries() if e.action == Action.EXPORT]
    assert record_.user_id == "sup-1" and record_.recipient.startswith("OPJ Martin")
    assert record_.purpose == "PV 2026/123" and record_.object_id == manifest.export_id
    assert record_.details["sha256"] == manifest.video_sha256
    assert record_.details["segments"] == [s.id for s in manifest.segments]


def test_verify_names_what_changed(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "export.mp4"
    export(site, out)
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    altered = tmp_path / "altered.mp4"
    altered.write_bytes(bytes(data))
    manifest_path(altered).write_bytes(manifest_path(out).read_bytes())
    assert verify_export(altered) == [
        "altered.mp4: the video differs from the one exported (sha256 does not match the manifest)"
    ]
    m = json.loads(manifest_path(out).read_text())
    m["recipient"] = "someone else"
    manifest_path(out).write_text(json.dumps(m))
    assert verify_export(out) == [
        "export.mp4.manifest.json: the signature does not match the manifest (the manifest was altered)"
    ]
    other = Ed25519PrivateKey.generate().public_key()
    out2 = tmp_path / "again.mp4"
    export(site, out2)
    [problem] = verify_export(out2, other)
    assert "not by this site's key" in problem


def test_an_export_needs_a_recipient_a_purpose_and_a_short_range(site: Site, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipient and a purpose"):
        export(site, tmp_path / "x.mp4", recipient=" ")
    with pytest.raises(ConfigError, match="at most 2:00:00"):
        export_recording(
            site,
            "quai",
            T0,
            T0 + timedelta(hours=3),
            tmp_path / "x.mp4",
            requester="s",
            recipient="r",
            purpose="p",
            now=T0,
        )
    assert not (tmp_path / "x.mp4").exists()
    assert not [e for e in site.audit.entries() if e.action == Action.EXPORT]


def test_cli_exports_and_verifies(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "cli.mp4"
    config = tmp_path / "site.yml"
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "export", "clip", "--config", str(config), "--camera", "quai",
            "--start", (T0 + timedelta(seconds=1)).isoformat(), "--end", (T0 + timedelta(seconds=3)).isoformat(),
            "--recipient", "OPJ Martin", "--purpose", "PV 2026/124", "--out", str(out), "--user", "sup-2",
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", "verify", str(out), "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert "intact" in r.output and "signed by this site's key" in r.output
    out.write_bytes(out.read_bytes()[:-10])
    r = runner.invoke(app, ["export", "verify", str(out)])
    assert r.exit_code == 1 and "sha256 does not match" in r.output
    r = runner.invoke(
        app,
        ["export", "clip", "--config", str(config), "--camera", "nowhere", "--start", T0.isoformat(),
         "--end", (T0 + timedelta(seconds=3)).isoformat(), "--recipient", "x", "--purpose", "y", "--out", str(out)],
    )  # fmt: skip
    assert r.exit_code == 2 and "camera 'nowhere' is not in the configuration" in r.output


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="bgr24")


def test_an_unmasked_export_needs_a_permission_and_says_so_on_every_frame(site: Site, tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match="holds no permission"):
        export(site, tmp_path / "u.mp4", unmasked_reference="PV 2026/123")
    assert not (tmp_path / "u.mp4").exists()
    grant(
        site.store.engine, site.audit, user="sup-1", cameras=["quai"], until=T0 + timedelta(days=30),
        reason="unité judiciaire", granted_by="admin", now=T0,
    )  # fmt: skip
    anonymised = export(site, tmp_path / "a.mp4")
    unmasked = export(site, tmp_path / "u.mp4", unmasked_reference="réquisition 2026-77")
    assert anonymised.anonymised and not unmasked.anonymised
    assert verify_export(tmp_path / "u.mp4") == []
    a, u = first_frame(tmp_path / "a.mp4"), first_frame(tmp_path / "u.mp4")
    top = u[:10]
    assert (top > 200).any() and np.median(top) < 80, "who removed the protection, burned at the top"
    middle = (slice(40, -40), slice(None))
    assert np.abs(a[middle].astype(int) - u[middle].astype(int)).mean() > 0.5, "heads are not pixelated"
    actions = [e.action for e in site.audit.entries()][-4:]
    assert actions == [Action.EXPORT, Action.PRIVACY_REMOVED, Action.PRIVACY_RESTORED, Action.EXPORT]
    removed, restored, exported = site.audit.entries()[-3:]
    assert removed.purpose == "PV 2026/123" and removed.details["reference"] == "réquisition 2026-77"
    assert restored.details["frames"] == unmasked.frames
    assert exported.details["anonymised"] is False


def test_an_access_request_is_answered_with_the_requester_alone(site: Site, tmp_path: Path) -> None:
    from lanterne.accountability.requests import RequestError, get, register
    from lanterne.runtime.exports import answer_access_request

    request = register(
        site.store.engine, site.audit, requester="Jeanne Martin", contact="jeanne@example.org",
        window_start=T0, window_end=T0 + timedelta(minutes=10), place="carrefour", description="manteau rouge",
        received_at=T0 + timedelta(days=1), recorded_by="agent-1",
    )  # fmt: skip
    out = tmp_path / "answer.mp4"
    with pytest.raises(RequestError, match="must stay inside it"):
        answer_access_request(
            site, request.id, "quai", T0 - timedelta(seconds=5), T0 + timedelta(seconds=2), (0.4, 0.3, 0.6, 0.9),
            out, agent="agent-1", now=T0 + timedelta(days=2),
        )  # fmt: skip
    m = answer_access_request(
        site, request.id, "quai", T0 + timedelta(seconds=2), T0 + timedelta(seconds=4), (0.4, 0.3, 0.6, 0.9),
        out, agent="agent-1", now=T0 + timedelta(days=2),
    )  # fmt: skip
    assert verify_export(out) == [] and m.recipient == f"requester of access request {request.id}"
    closed = get(site.store.engine, request.id)
    assert closed.state == "answered" and closed.export_id == m.export_id
    exported = [e for e in site.audit.entries() if e.action == Action.EXPORT][-1]
    assert exported.details["access_request"] == request.id
    assert "Jeanne" not in json.dumps([str(e) for e in site.audit.entries()])
