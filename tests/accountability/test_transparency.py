"""The public notice (TR-01, TR-02, TR-04, PM-04): the right figures after a scripted set of
operator decisions, cameras with their authorisation, the register with expired and revoked
entries, OSM-tagged GeoJSON, escaping of hostile configuration text, the export and its
publication record, the alerts-mode gate, and the HTTP endpoints — on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.suspension import Suspensions
from lanterne.accountability.transparency import (
    export,
    geojson,
    notice_published,
    public_data,
    render_html,
    render_json,
    require_notice,
)
from lanterne.accountability.transparency.data import PublicData
from lanterne.accountability.transparency.render import REASON_LABELS
from lanterne.api.app import create_app
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import Config, config_hash, parse_config
from lanterne.core.assets import MODELS
from lanterne.core.errors import ConfigError
from lanterne.core.types import Event, EventType
from lanterne.rules import EVENTS, RULES
from lanterne.store import Store
from lanterne.store.tables import DISMISS_REASONS, AuditRecord, NoticeRecord
from tests.support.console import LOOPBACK

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
ZI, WW, CD = EventType.ZONE_INTRUSION, EventType.WRONG_WAY, EventType.CROWD_DENSITY
OPERATOR = "op-7731"
HOSTILE = "<script>alert('x')</script>"

SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]


def config_dict(db_url: str, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "mode": "alerts",
        "site": "Ville d'Exemple — gare",
        "store": {"url": db_url},
        "public": {
            "controller": "Ville d'Exemple, police municipale",
            "dpo_contact": "dpo@ville.example",
            "purposes": ["Sécurité des voyageurs en gare"],
            "rights": "Écrivez au délégué à la protection des données.",
        },
        "cameras": [
            {
                "id": "gare-nord",
                "name": "Gare, quai nord",
                "source": "a.mp4",
                "location": {"lat": 48.8809, "lon": 2.3553},
                "zones": [
                    {
                        "id": "voies",
                        "polygon": SQUARE,
                        "events": {"zone_intrusion": {}, "wrong_way": {"direction": [1, 0]}},
                    }
                ],
            },
            {
                "id": "parvis",
                "name": "Parvis",
                "source": "b.mp4",
                "location": {"lat": 48.8801, "lon": 2.3549},
                "zones": [
                    {"id": "place", "polygon": SQUARE, "events": {"crowd_density": {"max_people": 30}}}
                ],
            },
        ],
    }
    cfg.update(overrides)
    return cfg


@dataclass
class Site:
    cfg: Config
    store: Store
    audit: AuditLog
    tmp: Path


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    cfg = parse_config(config_dict(db_url), base_dir=tmp_path)
    store = Store.open(db_url)
    audit = AuditLog(store.engine)
    yield Site(cfg, store, audit, tmp_path)
    store.close()


def register(s: Site) -> None:
    """One authorisation in force on gare-nord, one expired, one revoked (TR-02 lists all three)."""
    clock = {"now": NOW - timedelta(days=400)}
    reg = Authorisations(s.store.engine, s.audit, clock=lambda: clock["now"])
    reg.add(
        "AP-2025-007",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture de police",
        valid_from=datetime(2025, 1, 10, tzinfo=UTC),
        valid_until=datetime(2025, 3, 31, tzinfo=UTC),
        cameras=["gare-nord", "parvis"],
        event_types=["crowd_density"],
        user_id="u-1",
    )
    clock["now"] = NOW - timedelta(days=30)
    reg.add(
        "AP-2026-001",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture de police",
        valid_from=datetime(2026, 5, 1, tzinfo=UTC),
        valid_until=datetime(2026, 9, 1, tzinfo=UTC),
        cameras=["gare-nord"],
        event_types=["zone_intrusion", "wrong_way"],
        impact_assessments=["https://ville.example/aipd-2026.pdf"],
        user_id="u-1",
    )
    reg.add(
        "AP-2026-002",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture de police",
        valid_from=datetime(2026, 5, 1, tzinfo=UTC),
        valid_until=datetime(2026, 8, 1, tzinfo=UTC),
        cameras=["parvis"],
        event_types=["crowd_density"],
        user_id="u-1",
    )
    clock["now"] = NOW - timedelta(days=10)
    reg.revoke("AP-2026-002", "u-2", "concert cancelled")


def alert(s: Site, id_: str, type_: EventType, at: datetime, mode: str = "alerts") -> str:
    s.store.upsert_event(
        Event(id_, type_, "gare-nord", "voies", 0.0, 4.0, 0.8, (0.2, 0.2, 0.4, 0.6)), at, mode
    )
    return id_


def decisions(s: Site) -> None:
    """June: 5 intrusions (2 confirmed, 1 dismissed, 1 acknowledged, 1 new) plus one evaluation
    replay that must not count; May: 3 wrong-way alerts (1 confirmed, 2 dismissed)."""
    e, a = s.store.engine, s.audit
    june, may = datetime(2026, 6, 3, 9, tzinfo=UTC), datetime(2026, 5, 28, 18, tzinfo=UTC)
    for i in range(5):
        alert(s, f"zi-{i}", ZI, june + timedelta(hours=i))
    alert(s, "zi-eval", ZI, june, mode="evaluation")
    for id_ in ("zi-0", "zi-1", "zi-2", "zi-3"):
        acknowledge(e, a, id_, OPERATOR, NOW)
    confirm(e, a, "zi-0", OPERATOR, NOW, "field_request")
    confirm(e, a, "zi-1", OPERATOR, NOW, "monitoring")
    dismiss(e, a, "zi-2", OPERATOR, NOW, "street_furniture")
    for i in range(3):
        acknowledge(e, a, alert(s, f"ww-{i}", WW, may + timedelta(minutes=i)), OPERATOR, NOW)
    confirm(e, a, "ww-0", OPERATOR, NOW, "none")
    dismiss(e, a, "ww-1", OPERATOR, NOW, "person_at_rest")
    dismiss(e, a, "ww-2", OPERATOR, NOW, "other", "a poster of a runner, secret-note-42")


def month(data: PublicData, m: str, t: EventType) -> Any:
    (found,) = [f for f in data.monthly if f.month == m and f.event_type == str(t)]
    return found


def test_monthly_figures_follow_the_operators_decisions(site: Site) -> None:
    decisions(site)
    data = public_data(site.cfg, site.store.engine, NOW)
    june = month(data, "2026-06", ZI)
    assert (june.alerts, june.confirmed, june.dismissed, june.pending) == (5, 2, 1, 2)
    assert june.confirmed_share == pytest.approx(2 / 3, abs=1e-4)
    assert june.reasons == {"street_furniture": 1}
    assert june.interval == pytest.approx((0.2077, 0.9385), abs=1e-4)  # Wilson, 2 of 3
    may = month(data, "2026-05", WW)
    assert (may.alerts, may.confirmed, may.dismissed, may.pending) == (3, 1, 2, 0)
    assert may.confirmed_share == pytest.approx(1 / 3, abs=1e-4)
    assert may.reasons == {"other": 1, "person_at_rest": 1}
    assert [(f.month, f.event_type) for f in data.monthly] == [
        ("2026-06", "zone_intrusion"),
        ("2026-05", "wrong_way"),
    ]

    # A decision taken later changes the published figure: the page is computed, never cached.
    dismiss(site.store.engine, site.audit, "zi-3", OPERATOR, NOW, "reflection_or_light")
    later = month(public_data(site.cfg, site.store.engine, NOW), "2026-06", ZI)
    assert (later.confirmed, later.dismissed, later.pending, later.confirmed_share) == (2, 2, 1, 0.5)


def test_nothing_about_individuals_is_published(site: Site) -> None:
    decisions(site)
    register(site)
    text = render_json(public_data(site.cfg, site.store.engine, NOW))
    html = render_html(public_data(site.cfg, site.store.engine, NOW))
    for secret in (OPERATOR, "u-1", "u-2", "secret-note-42", "concert cancelled", "zi-0", "ww-1"):
        assert secret not in text and secret not in html, secret


def test_cameras_show_their_authorisation_and_detectors(site: Site) -> None:
    register(site)
    data = public_data(site.cfg, site.store.engine, NOW)
    nord, parvis = data.cameras
    assert nord.watched == ("wrong_way", "zone_intrusion")
    assert nord.status == "alerts" and nord.alerting == ("wrong_way", "zone_intrusion")
    (auth,) = nord.authorisations
    assert (auth.reference, auth.valid_from, auth.valid_until) == (
        "AP-2026-001",
        "2026-05-01T00:00:00Z",
        "2026-09-01T00:00:00Z",
    )
    # Its authorisation was revoked ten days ago: the parvis camera only counts now.
    assert parvis.watched == ("crowd_density",) and parvis.status == "statistics only"
    assert parvis.authorisations == () and parvis.alerting == ()
    assert data.evidence_retention_days == 30 and data.audit_retention_days == 365
    assert data.controller == "Ville d'Exemple, police municipale" and data.dpo_contact == "dpo@ville.example"

    states = {r.reference: (r.state, r.revoked_at, r.camera_count) for r in data.register}
    assert states == {
        "AP-2025-007": ("expired", None, 2),
        "AP-2026-001": ("active", None, 1),
        "AP-2026-002": ("revoked", "2026-06-10T12:00:00Z", 1),
    }
    html = render_html(data)
    for text in ("AP-2026-001", "2026-05-01", "2026-09-01", "AP-2025-007", "Gare, quai nord", "48.88090"):
        assert text in html


def test_a_suspended_detector_is_published_as_suspended(site: Site) -> None:
    register(site)
    Suspensions(site.store.engine, site.audit, site.cfg.suspension, clock=lambda: NOW).suspend(
        "gare-nord", WW, "sup-1", "alert flood on the platform"
    )
    nord = public_data(site.cfg, site.store.engine, NOW).cameras[0]
    assert nord.alerting == ("zone_intrusion",) and nord.suspended == ("wrong_way",)


def test_statistics_mode_alerts_nowhere_even_when_authorised(site: Site, tmp_path: Path) -> None:
    register(site)
    cfg = parse_config(config_dict(site.cfg.store.url, mode="statistics"), base_dir=tmp_path)
    data = public_data(cfg, site.store.engine, NOW)
    assert [c.status for c in data.cameras] == ["statistics only", "statistics only"]
    assert "statistics only, no alerts" in render_html(data)


def test_algorithms_list_models_and_limits_of_the_configured_types(site: Site) -> None:
    data = public_data(site.cfg, site.store.engine, NOW)
    assert [a.event_type for a in data.algorithms] == ["wrong_way", "zone_intrusion", "crowd_density"]
    assert {a.model for a in data.algorithms} == {"yolox_nano"}
    assert all(a.doc == f"docs/events/{a.event_type}.md" for a in data.algorithms)
    models = {m.name: m for m in data.models}
    assert set(models) == {"yolox_nano", "yunet", "lpd_yunet"}
    assert re.fullmatch(r"[0-9a-f]{64}", models["yolox_nano"].sha256)


@pytest.mark.parametrize("detector", [{"input_size": 320}, {"input_shape": "frame"}])
def test_the_published_model_is_the_file_the_configuration_loads(
    site: Site, tmp_path: Path, detector: dict[str, Any]
) -> None:
    """The frame-shaped input runs the open-dims copy at 416 too: the page names that file and
    its own sha256, not the published one's."""
    cfg = parse_config(config_dict(site.cfg.store.url, detector=detector), base_dir=tmp_path)
    data = public_data(cfg, site.store.engine, NOW)
    assert {a.model for a in data.algorithms} == {"yolox_nano_dynamic"}
    published = {m.name: m.sha256 for m in data.models}
    assert published["yolox_nano_dynamic"] == MODELS["yolox_nano_dynamic"].sha256
    assert "yolox_nano" not in published


# Key terms each curated summary shares with its docs/events/<type>.md "Known limits" (under "Known
# failure modes", DC-02).
LIMIT_ANCHORS: dict[EventType, tuple[str, ...]] = {
    EventType.ZONE_INTRUSION: ("polygon on the picture", "up to the waist", "tracker id change"),
    EventType.WRONG_WAY: ("0.4 s", "perspective", "dense crowd"),
    EventType.CROWD_DENSITY: ("occluded", "a third or more", "15 pixels"),
    EventType.CROWD_MOVEMENT: ("camera motion", "escalators", "opposite flows"),
    EventType.ABANDONED_OBJECT: ("20 pixels", "lying next to their belongings", "resets the timer"),
    EventType.PERSON_DOWN: ("towards or away from the camera", "squat", "lying people"),
    EventType.FIRE: ("sodium", "tail-lights", "no depth"),
}


@pytest.mark.parametrize("event_type", sorted(RULES))
def test_published_limits_are_true_to_the_docs(event_type: EventType) -> None:
    doc = (DOCS / f"{event_type}.md").read_text(encoding="utf-8")
    section = doc.split("\n### Known limits\n", 1)[1].split("\n#", 1)[0].lower()
    summary = " ".join(EVENTS[event_type].known_limits).lower()
    for anchor in LIMIT_ANCHORS[event_type]:
        assert anchor in section, f"{anchor!r} no longer in docs/events/{event_type}.md"
        assert anchor in summary, f"{anchor!r} missing from the published summary"


def test_every_dismissal_reason_has_a_public_label() -> None:
    assert set(REASON_LABELS) == set(DISMISS_REASONS)


def test_geojson_tags_cameras_as_openstreetmap_does(site: Site) -> None:
    register(site)
    doc = json.loads(json.dumps(geojson(public_data(site.cfg, site.store.engine, NOW))))
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    nord = doc["features"][0]
    assert nord["type"] == "Feature"
    assert nord["geometry"] == {"type": "Point", "coordinates": [2.3553, 48.8809]}  # lon, lat
    assert nord["properties"] == {
        "man_made": "surveillance",
        "surveillance": "public",
        "surveillance:type": "camera",
        "surveillance:zone": "town",
        "operator": "Ville d'Exemple, police municipale",
        "name": "Gare, quai nord",
        "ref": "gare-nord",
        "lanterne:detectors": "wrong_way;zone_intrusion",
        "lanterne:alerting": "wrong_way;zone_intrusion",
        "lanterne:status": "alerts",
        "lanterne:authorisation": "AP-2026-001",
    }
    for f in doc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert -180 <= lon <= 180 and -90 <= lat <= 90


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("site", HOSTILE),
        ("controller", '"><img src=x onerror=alert(1)>'),
        ("rights", "</p><script src=//evil.example/x.js></script>"),
    ],
)
def test_html_escapes_hostile_configuration_text(db_url: str, tmp_path: Path, field: str, value: str) -> None:
    raw = config_dict(db_url)
    if field == "site":
        raw["site"] = value
    else:
        raw["public"][field] = value
    cfg = parse_config(raw, base_dir=tmp_path)
    store = Store.open(db_url)
    try:
        html = render_html(public_data(cfg, store.engine, NOW))
    finally:
        store.close()
    assert value not in html
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert " style=" not in html  # no inline style either: the CSP would block it
    assert value.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace("'", "&#39;") in html


def test_export_writes_the_files_records_the_notice_and_audits_it(site: Site) -> None:
    register(site)
    decisions(site)
    out = site.tmp / "public"
    assert not notice_published(site.cfg, site.store.engine)
    with pytest.raises(ConfigError, match="alerts mode cannot start: publish the public notice first"):
        require_notice(site.cfg, site.store.engine)

    pub = export(site.cfg, site.store.engine, out, "mayor-office", NOW)

    assert sorted(p.name for p in out.iterdir()) == [
        "cameras.geojson",
        "index.html",
        "style.css",
        "transparency.json",
    ]
    body = (out / "transparency.json").read_bytes()
    published = json.loads(body)
    assert published["config_sha256"] == config_hash(site.cfg)
    assert published["cameras"][0]["status"] == "alerts"
    assert (
        json.loads((out / "cameras.geojson").read_text())["features"][0]["properties"]["ref"] == "gare-nord"
    )
    html = (out / "index.html").read_text()
    assert 'href="style.css"' in html and 'href="transparency.json"' in html and "/public/" not in html
    with site.store.engine.connect() as conn:
        (notice,) = conn.execute(select(NoticeRecord)).all()
        (record,) = conn.execute(
            select(AuditRecord).where(AuditRecord.action == str(Action.CONFIG_CHANGE))
        ).all()
    assert notice.id == pub.notice_id and notice.published_by == "mayor-office"
    assert notice.config_sha256 == config_hash(site.cfg)
    assert notice.content_sha256 == hashlib.sha256(body).hexdigest() == pub.content_sha256
    assert notice.location == str(out.resolve())
    details = json.loads(record.details)
    assert (record.user_id, record.object_type, record.object_id) == (
        "mayor-office",
        "notice",
        str(notice.id),
    )
    assert details["event"] == "notice_published" and details["content_sha256"] == notice.content_sha256

    assert notice_published(site.cfg, site.store.engine)
    require_notice(site.cfg, site.store.engine)
    # Any change of the configuration needs a new publication before alerting.
    changed = parse_config(
        config_dict(site.cfg.store.url, retention={"evidence_days": 20}), base_dir=site.tmp
    )
    assert not notice_published(changed, site.store.engine)
    with pytest.raises(ConfigError):
        require_notice(changed, site.store.engine)


def test_a_publication_the_audit_log_refuses_is_not_recorded(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(AuditLog, "append", refuse)
    with pytest.raises(RuntimeError):
        export(site.cfg, site.store.engine, site.tmp / "public", "mayor-office", NOW)
    assert not notice_published(site.cfg, site.store.engine)


def test_cli_publish_then_show(site: Site) -> None:
    path = site.tmp / "site.yaml"
    path.write_text(yaml.safe_dump(config_dict(site.cfg.store.url), allow_unicode=True), encoding="utf-8")
    runner = CliRunner()
    before = runner.invoke(app, ["transparency", "show", "--config", str(path)])
    assert before.exit_code == 0, before.output
    assert "NOT published" in before.output
    done = runner.invoke(
        app,
        ["transparency", "publish", "--config", str(path), "--out", str(site.tmp / "www"), "--user", "u-9"],
    )
    assert done.exit_code == 0, done.output
    assert (site.tmp / "www" / "index.html").is_file()
    after = runner.invoke(app, ["transparency", "show", "--config", str(path), "--json"])
    assert after.exit_code == 0 and json.loads(after.output)["site"] == "Ville d'Exemple — gare"
    assert "notice published" in runner.invoke(app, ["transparency", "show", "--config", str(path)]).output


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("cameras: []\n")
    result = CliRunner().invoke(app, ["transparency", "publish", "--config", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


# --- HTTP -------------------------------------------------------------------------------------


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    register(site)
    decisions(site)
    with TestClient(create_app(site.cfg, clock=lambda: NOW), client=LOOPBACK) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/public", "text/html"),
        ("/public/transparency.json", "application/json"),
        ("/public/cameras.geojson", "application/geo+json"),
        ("/public/style.css", "text/css"),
        ("/openapi.json", "application/json"),
    ],
)
def test_public_endpoints_need_no_login_and_send_security_headers(
    client: TestClient, path: str, content_type: str
) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(content_type)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert "unsafe-inline" not in r.headers["content-security-policy"]


def test_served_figures_match_the_store(client: TestClient, site: Site) -> None:
    data = client.get("/public/transparency.json").json()
    (june,) = [m for m in data["monthly"] if m["month"] == "2026-06"]
    assert (june["alerts"], june["confirmed"], june["dismissed"]) == (5, 2, 1)
    html = client.get("/public").text
    assert "AP-2026-001" in html and "67 %" in html and "<script" not in html
    assert 'href="/public/style.css"' in html
    dismiss(site.store.engine, site.audit, "zi-3", OPERATOR, NOW, "test")
    again = client.get("/public/transparency.json").json()
    assert [m["dismissed"] for m in again["monthly"] if m["month"] == "2026-06"] == [2]


@pytest.mark.parametrize(
    "path",
    [
        "/public/../../etc/passwd",
        "/public/%2e%2e/%2e%2e/etc/passwd",
        "/public/..%2f..%2fsite.yaml",
        "/public/<script>alert(1)</script>",
        "/public/transparency.json/extra",
        "/public/style.css%00.html",
        "/public/index.html",
        "/admin",
    ],
)
def test_hostile_paths_are_not_found(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "<script" not in r.text


def test_writes_are_refused(client: TestClient) -> None:
    assert client.post("/public/transparency.json", json={}).status_code == 405
    assert client.delete("/public").status_code == 405
