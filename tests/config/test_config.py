"""Configuration: every mistake names its key and the expected value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lanterne.config import load_config, parse_config
from lanterne.config.docs import render
from lanterne.config.schema import Config, ZoneEvents
from lanterne.core.errors import ConfigError
from lanterne.core.types import EventType
from lanterne.rules import EVENTS

ROOT = Path(__file__).resolve().parents[2]


def cam(**zone: object) -> dict:
    z = {"id": "z", "polygon": [[0, 0], [1, 0], [1, 1]], **zone}
    return {"cameras": [{"id": "a", "source": "x.mp4", "location": {"lat": 45.0, "lon": 4.0}, "zones": [z]}]}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (cam(polygon=[[0, 0], [1, 0]]), "cameras[0].zones[0].polygon: needs at least 3 points"),
        (
            cam(polygon=[[0, 0], [1, 0], [1, 1.5]]),
            "cameras[0].zones[0].polygon[2][1]: Input should be less than or equal to 1",
        ),
        (cam(events={"loitering": {}}), "cameras[0].zones[0].events.loitering: not an event type"),
        (cam(events={"suspicious_behaviour": {}}), "suspicious_behaviour: not an event type"),
        (cam(events={"weapon": {}}), "no validated weapon-detection model is installed"),
        (
            cam(events={"crowd_density": {}}),
            "cameras[0].zones[0].events.crowd_density.max_people: is required",
        ),
        (
            cam(events={"crowd_density": {"max_people": 3, "min_secs": 2}}),
            "crowd_density.min_secs: unknown key",
        ),
        (cam(events={"zone_intrusion": {"classes": ["pedestrian"]}}), "unknown object class 'pedestrian'"),
        (cam(events={"abandoned_object": {"classes": ["person"]}}), "'person' cannot be an abandoned object"),
        (cam(events={"wrong_way": {"direction": [0, 0]}}), "wrong_way.direction: needs a non-zero vector"),
        (cam(events={"fire": {}}), "fire.experimental: is required"),
        ({"cameras": []}, "cameras: List should have at least 1 item"),
        ({"mode": "surveillance", **cam()}, "mode: Input should be 'alerts' or 'statistics'"),
        (
            {"cameras": [{"id": "a b", "source": "x", "location": {"lat": 0, "lon": 0}}]},
            "cameras[0].id: String should match pattern",
        ),
        (
            {"cameras": [{"id": "a", "source": "http://x/y", "location": {"lat": 0, "lon": 0}}]},
            "cameras[0].source: must be a file path or an rtsp:// address",
        ),
        (
            {"statistics_bucket_seconds": 10, **cam()},
            "statistics_bucket_seconds: Input should be greater than or equal to 60",
        ),
        ([1, 2], "the top level must be a mapping"),
    ],
)
def test_mistakes_name_the_key(data: object, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert expected in str(exc.value)


def test_valid_config_and_relative_paths(tmp_path: Path) -> None:
    p = tmp_path / "site.yml"
    p.write_text(yaml.safe_dump({**cam(events={"crowd_density": {"max_people": 4}}), "mode": "alerts"}))
    cfg = load_config(p)
    assert cfg.cameras[0].source == str(tmp_path / "x.mp4")
    assert cfg.store.url == f"sqlite:///{tmp_path / 'lanterne.db'}"
    assert list(cfg.cameras[0].zones[0].events.enabled()) == [EventType.CROWD_DENSITY]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("cameras: [", "not valid YAML at line"), ("\xff\xfe", "not a UTF-8 text file")],
)
def test_unreadable_files(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "bad.yml"
    p.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match=expected):
        load_config(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yml")


def test_every_field_has_title_and_description() -> None:
    from lanterne.config.docs import _models

    for model in _models(Config):
        assert model.model_config.get("extra") == "forbid", model.__name__
        for name, f in model.model_fields.items():
            assert f.title and f.description, f"{model.__name__}.{name}"


def test_event_list_is_closed() -> None:
    assert set(ZoneEvents.model_fields) == {t.value for t in EventType}
    assert len(EventType) == 8


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_worked_examples_validate(name: EventType) -> None:
    zones = yaml.safe_load(EVENTS[name].example)["zones"]
    data = {
        "mode": "alerts",
        "cameras": [{"id": "c", "source": "x.mp4", "location": {"lat": 0, "lon": 0}, "zones": zones}],
    }
    if name == "weapon":
        with pytest.raises(ConfigError, match="no validated weapon-detection model"):
            parse_config(data)
    else:
        cfg = parse_config(data)
        assert EventType(name) in cfg.cameras[0].zones[0].events.enabled()


def test_docs_config_md_is_generated_from_schema() -> None:
    committed = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/config.md is stale: run `lanterne config docs -o docs/config.md`"
