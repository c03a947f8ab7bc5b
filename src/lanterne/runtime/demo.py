"""The demo deployment used by the README's main job: the PETS 2009 S2.L1 campus crossroads
(`vtest.avi`, 768x576, 10 fps). Zones are drawn on what that camera sees: the lawn in the
foreground, the paved crossroads where people walk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from lanterne.accountability.governance import Governance
    from lanterne.config.schema import Camera
    from lanterne.runtime.site import Site

LAWN = [[0.0, 0.46], [0.39, 0.55], [0.57, 0.66], [0.78, 0.78], [1.0, 0.91], [1.0, 1.0], [0.0, 1.0]]
CROSSROADS = [
    [0.0, 0.3],
    [0.55, 0.26],
    [0.92, 0.2],
    [1.0, 0.3],
    [1.0, 0.84],
    [0.75, 0.72],
    [0.45, 0.5],
    [0.0, 0.44],
]

DEMO_CONFIG: dict[str, Any] = {
    "mode": "alerts",
    "site": "Demo: PETS 2009 campus crossroads",
    "cameras": [
        {
            "id": "pets-crossroads",
            "name": "Campus crossroads (PETS 2009 S2.L1, view 1)",
            "source": "vtest.avi",
            "location": {"lat": 51.4417, "lon": -0.9403},
            "fps": 5,
            "zones": [
                {
                    "id": "lawn",
                    "polygon": LAWN,
                    "events": {"zone_intrusion": {"classes": ["person"], "min_seconds": 2}},
                },
                {
                    "id": "crossroads",
                    "polygon": CROSSROADS,
                    "events": {
                        "crowd_density": {"max_people": 5, "min_seconds": 2},
                        "wrong_way": {"direction": [1, 0], "classes": ["person"], "min_seconds": 1.5},
                        "person_down": {"min_seconds": 5},
                        "abandoned_object": {"min_seconds": 20},
                    },
                },
            ],
        }
    ],
}


DEMO_AUTHORISATION = "DEMO-NOT-A-LEGAL-AUTHORISATION"
DEMO_DPIA = "DEMO-NOT-A-DPIA: demonstration on a public research clip, no impact assessment"
DEMO_FRIA = "DEMO-NOT-A-FRIA"
DEMO_RISK_REVIEW = "DEMONSTRATION, NOT A RISK REVIEW: the demo's register on a public research clip"
DEMO_APPROVAL = (
    "DEMONSTRATION, NOT A GOVERNANCE DECISION: the demo's model and rules on a public research clip"
)
DEMO_SOURCE_APPROVAL = "DEMONSTRATION, NOT A GOVERNANCE DECISION: the demo's observatory source {}"

WALL_REPLAYS = 3
"""The demo's wall shows four cameras: the authorised one and three replays of the same clip,
named as replays, placed around it on the map, and never authorised, so they show live on the
wall and alert nothing (their refused start is recorded, as on a real site)."""


def wall_replays(camera: dict[str, Any]) -> list[dict[str, Any]]:
    """The replay cameras of the demo's wall, from its one real camera."""
    loc = camera["location"]
    return [
        {
            **camera,
            "id": f"{camera['id']}-replay-{n}",
            "name": f"{camera['name']} (replay {n}, not authorised)",
            "location": {"lat": loc["lat"] + 0.0004 * n, "lon": loc["lon"] + 0.0006 * (n % 2 * 2 - 1)},
        }
        for n in range(1, WALL_REPLAYS + 1)
    ]


OBSERVATORY_DATASETS: tuple[tuple[str, str], ...] = (
    ("chicago_crimes_2013_2017.parquet", "chicago_crimes.yml"),
    ("paris_dansmarue_sample_2023_2024.csv.gz", "paris_dansmarue.yml"),
)
"""Published incident data the demo loads into its observatory when `../shared` is present: the
1.4 M Chicago records (the bias audit's reference case) and the Paris citizen reports."""
OBSERVATORY_LAYERS: tuple[dict[str, str], ...] = (
    {"id": "beats", "file": "chicago_police_beats_2012.geojson", "key": "beat_num"},
    {
        "id": "districts",
        "file": "chicago_police_districts_2012.geojson",
        "key": "district",
        "label": "dist_label",
    },
    {"id": "arrondissements", "file": "paris_arrondissements.geojson", "key": "c_arinsee", "label": "l_ar"},
)
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "observatory"


def prepare_demo(out_dir: Path, user_id: str) -> tuple[Any, Path]:
    """Write `out_dir/site.yml` for the demo clip, record a demonstration authorisation (clearly
    named as not a legal one) with demonstration DPIA and FRIA references, publish the public
    notice and record demonstration governance approvals of its model and rules, so that the demo
    follows the same path as a real deployment: nothing alerts without an authorisation naming
    its impact assessments, a published notice and approved changes (GV-01, GV-02, GV-05). The
    site also has the wall's replay cameras (`wall_replays`), which nothing authorises."""
    from lanterne.accountability.authorisation import Authorisations
    from lanterne.accountability.fria import Elements, FriaRegister
    from lanterne.accountability.governance import Governance
    from lanterne.accountability.masks import validate_masks, validated
    from lanterne.accountability.transparency import export, notice_published
    from lanterne.config import load_config
    from lanterne.core.assets import resolve_demo_clip
    from lanterne.core.types import EventType
    from lanterne.runtime.site import open_site

    clip = resolve_demo_clip()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        **DEMO_CONFIG,
        "store": {"url": "sqlite:///lanterne.db", "evidence_dir": "evidence"},
        "public": {
            "controller": "Lanterne demonstration (no real deployment)",
            "dpo_contact": "not applicable: demonstration data",
            "purposes": ["demonstration of the software on a public research clip (PETS 2009)"],
            "rights": "This is a demonstration on a public research clip; no real camera is involved.",
        },
    }
    main = {**data["cameras"][0], "source": str(clip)}
    data["cameras"] = [main, *wall_replays(main)]
    observatory = _observatory_data()
    if observatory is not None:
        data["observatory"] = {
            "store": "observatory.duckdb",
            "layers": [
                {**layer, "file": str(observatory / "boundaries" / layer["file"])}
                for layer in OBSERVATORY_LAYERS
            ],
        }
    site = out_dir.resolve() / "site.yml"
    site.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    cfg = load_config(site)
    with open_site(cfg) as opened:
        register = Authorisations(opened.store.engine, opened.audit, cfg.legal_end_date)
        now = datetime.now(UTC)
        frias = FriaRegister(opened.store.engine, opened.audit)
        if frias.get(DEMO_FRIA) is None:
            # Art. 27's six elements, each saying that nothing here was assessed.
            elements = (
                "the processes",
                "the period and frequency",
                "the people affected",
                "the risks of harm",
                "the human oversight",
                "the measures if risks materialise",
            )
            not_assessed = "demonstration only, not assessed: {} of a real deployment would be written here"
            frias.add(DEMO_FRIA, now.date(), Elements(*(not_assessed.format(e) for e in elements)), user_id)
        covering = register.covering(cfg.cameras[0].id, EventType.WRONG_WAY, now)
        if covering is not None:
            # A demo directory from before GV-01/GV-02: its authorisation names them now.
            register.link_assessments(covering.reference, [DEMO_DPIA, DEMO_FRIA], user_id)
        else:
            register.add(
                f"{DEMO_AUTHORISATION}-{now:%Y%m%d%H%M%S}",
                legal_basis="none: demonstration on a public research clip",
                authority="none",
                valid_from=now - timedelta(minutes=1),
                valid_until=now + timedelta(days=7),
                cameras=[main["id"]],
                event_types=sorted({t for z in cfg.cameras[0].zones for t in z.events.enabled()}),
                impact_assessments=[DEMO_DPIA, DEMO_FRIA],
                user_id=user_id,
            )
        unchecked = [c for c in cfg.cameras if c.id not in validated(opened.audit, list(cfg.cameras))]
        for camera in unchecked:
            # LB-06: the research clip shows a campus walkway, no dwelling; on a real site the
            # person who walked the view records this (`lanterne masks validate`).
            validate_masks(
                opened.audit, camera, user_id, "demonstration: the public research clip shows no dwelling"
            )
        _check_envelope(opened, cfg.cameras[0], user_id)
        if not notice_published(cfg, opened.store.engine):
            export(cfg, opened.store.engine, out_dir.resolve() / "public", user_id, now)
        governance = Governance(opened.store.engine, opened.audit)
        pending = [p.change for p in governance.pending(cfg)]
        notice = (out_dir.resolve() / "public" / "index.html").as_uri()
        if pending:
            governance.approve_config(
                cfg,
                pending,
                notice_url=notice,
                summary=DEMO_APPROVAL,
                user_id=user_id,
                dpia=DEMO_DPIA,
                fria=DEMO_FRIA,
            )
        if observatory is not None:
            _approve_demo_sources(governance, notice, user_id)
        from lanterne.accountability.risks import RiskRegister

        risks = RiskRegister(opened.store.engine, opened.audit)
        for risk in risks.overdue():
            # RK-01: a demo directory kept past a risk's review date would refuse to start.
            risks.review(
                risk.id,
                next_review=now.date() + timedelta(days=7),
                note=DEMO_RISK_REVIEW,
                likelihood=risk.likelihood or 1,
                severity=risk.severity or 1,
                by=user_id,
            )
    return cfg, site


DEMO_ENVELOPE_OVERRIDE = (
    "DEMONSTRATION: the research clip's people are smaller than those this detector was measured on; "
    "kept on to show the chain, expect it to miss"
)
DEMO_ENVELOPE_UNMEASURED = (
    "DEMONSTRATION: nobody crossed this zone in the sampled seconds, so people's height there was not "
    "measured; kept on to show the chain"
)


def _check_envelope(opened: Site, camera: Camera, user_id: str) -> None:
    """EV-05 as a deployment does it: the demo camera's frames are measured against each
    detector's envelope (`lanterne envelope check`), and what falls outside is overridden with
    the honest reason, shown as an override on the public page."""
    from lanterne.accountability.envelope import (
        NOT_CHECKED,
        record_check,
        record_override,
        refused_types,
        status_of,
    )
    from lanterne.video.detectors import create_detector
    from lanterne.video.envelope import sample_camera

    statuses = status_of(opened.audit, [camera])[camera.id]
    if any(s.status == NOT_CHECKED for s in statuses.values()):
        sample = sample_camera(camera, create_detector(opened.cfg.detector, opened.cfg.models_dir))
        statuses = record_check(
            opened.audit,
            camera,
            sample.persons,
            sample.luma,
            sample.fps,
            sample.frame_height,
            user_id,
            sample={"frames": sample.frames, "seconds": sample.seconds, "rate_from": "source"},
        )
    for t, s in refused_types(statuses).items():
        reason = DEMO_ENVELOPE_OVERRIDE if s.status == "outside" else DEMO_ENVELOPE_UNMEASURED
        record_override(opened.audit, camera, t, reason, user_id)


def _approve_demo_sources(governance: Governance, notice_url: str, user_id: str) -> None:
    """The demo's observatory sources (its shipped mapping files) approved as a deployment's would
    be (GV-05), with the demonstration's assessments and the same disclaimer."""
    from lanterne.accountability.governance import Approval, Change
    from lanterne.runtime.observatory_sources import source_sha256

    for _file, mapping_file in OBSERVATORY_DATASETS:
        sha = source_sha256(EXAMPLES / mapping_file)
        if not isinstance(governance.approval(Change.OBSERVATORY_SOURCE, sha), Approval):
            governance.approve(
                Change.OBSERVATORY_SOURCE,
                sha,
                notice_url=notice_url,
                summary=DEMO_SOURCE_APPROVAL.format(mapping_file),
                user_id=user_id,
                dpia=DEMO_DPIA,
                fria=DEMO_FRIA,
            )


def _observatory_data() -> Path | None:
    """`../shared/data/observatory` when present with the mapping examples of this checkout."""
    from lanterne.core.assets import default_data_dir

    data = default_data_dir()
    if data is None or not (data / "observatory").is_dir() or not EXAMPLES.is_dir():
        return None
    return data / "observatory"


def prepare_observatory(
    cfg: Any, user_id: str, datasets: tuple[tuple[str, str], ...] = OBSERVATORY_DATASETS
) -> list[str]:
    """Ingest the demo's published datasets (once: a dataset already in the store is kept), the
    way `lanterne observatory ingest` does: under the governance records `prepare_demo` made of
    their sources, audit record included. Returns what was ingested."""
    from lanterne.observatory.mapping import load_mapping
    from lanterne.observatory.store import ObservatoryStore
    from lanterne.runtime.observatory_sources import ingest_source
    from lanterne.runtime.site import open_site

    data = _observatory_data()
    if data is None or not cfg.observatory.layers:
        return []
    store = ObservatoryStore.open(cfg.observatory.store)
    present = {d["id"] for d in store.datasets()}
    store.close()
    done = []
    with open_site(cfg) as site:
        for file, mapping_file in datasets:
            if load_mapping(EXAMPLES / mapping_file).id in present:
                continue
            report = ingest_source(site, data / file, EXAMPLES / mapping_file, user_id=user_id)
            done.append(f"{report.dataset} ({report.rows_loaded:,} rows, {report.rows_rejected:,} rejected)")
    return done
