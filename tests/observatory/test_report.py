"""`lanterne observatory report`: one self-contained HTML page and a PDF with the same content,
built from the real DansMaRue sample; every published count is 0 or at least k (OB-08), the
caveat is there (OB-07), the provenance hashes are there, and the export is audited with its
purpose and recipient."""

from __future__ import annotations

import hashlib
import html
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from lanterne.cli.main import app
from lanterne.config import load_config
from lanterne.config.schema import ObservatorySettings
from lanterne.observatory import report as rep
from lanterne.observatory.aggregate import AreaRef, Filters, counts_by_layer
from lanterne.observatory.ingest import ingest
from lanterne.observatory.layers import load_layer
from lanterne.observatory.mapping import load_mapping
from lanterne.observatory.store import ObservatoryError, ObservatoryStore
from lanterne.store import Store
from lanterne.store.tables import AuditRecord

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "observatory"
EXAMPLES = REPO / "examples" / "observatory"
DATASET = "paris_dansmarue"
CATEGORY = "Objets abandonnés"
PERIOD = (datetime(2024, 1, 1), datetime(2024, 7, 1))
COUNT_CELL = re.compile(r'<td class="count[^"]*">([^<]*)</td>')
AREA_TITLE = re.compile(r'<path class="area"[^>]*><title>[^<]*: ([^<]*)</title>')


def _site(tmp: Path) -> Path:
    """The example site with its stores in `tmp` and the boundary files by absolute path."""
    raw = yaml.safe_load((EXAMPLES / "site.yml").read_text(encoding="utf-8"))
    raw["store"] = {"url": f"sqlite:///{tmp / 'lanterne.db'}"}
    raw["observatory"]["store"] = str(tmp / "observatory.duckdb")
    for layer in raw["observatory"]["layers"]:
        layer["file"] = str((EXAMPLES / layer["file"]).resolve())
    raw["audit"] = {"key_path": str(tmp / "audit.key")}
    path = tmp / "site.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ObservatorySettings]]:
    tmp = tmp_path_factory.mktemp("obs-report")
    path = _site(tmp)
    cfg = load_config(path)
    store = ObservatoryStore.open(cfg.observatory.store)
    ingest(
        store,
        DATA / "paris_dansmarue_sample_2023_2024.csv.gz",
        load_mapping(EXAMPLES / "paris_dansmarue.yml"),
        user_id="analyst-1",
        layers=cfg.observatory.layers,
    )
    store.close()
    yield path, cfg.observatory


@pytest.fixture(scope="module")
def store(site: tuple[Path, ObservatorySettings]) -> Iterator[ObservatoryStore]:
    s = ObservatoryStore.open(site[1].store, read_only=True)
    yield s
    s.close()


def _counts(text: str) -> list[str]:
    return [html.unescape(v) for v in COUNT_CELL.findall(text) + AREA_TITLE.findall(text)]


def _assert_no_small_count(values: list[str], k: int) -> int:
    """Every published count is `< k` (suppressed), 0 or at least k; returns how many were suppressed."""
    suppressed = 0
    for v in values:
        if v == f"< {k}":
            suppressed += 1
            continue
        n = int(re.sub(r"\D", "", v))
        assert n == 0 or n >= k, f"published count {v!r} is below k={k}"
    return suppressed


@pytest.mark.parametrize(
    ("area", "level", "paths"),
    [
        (None, None, 20),  # the 20 arrondissements
        (AreaRef("layer:arrondissements", "75111"), "h3:9", None),  # H3 cells inside the 11th
    ],
)
def test_html_is_self_contained_suppressed_and_sourced(
    store: ObservatoryStore,
    site: tuple[Path, ObservatorySettings],
    tmp_path: Path,
    area: AreaRef | None,
    level: str | None,
    paths: int | None,
) -> None:
    settings = site[1]
    k = settings.min_count
    report = rep.build_report(
        store, settings, dataset=DATASET, category=CATEGORY, area=area, period=PERIOD, level=level
    )
    text = rep.write_html(report, tmp_path / "report.html").read_text(encoding="utf-8")

    # Self-contained: no script, no external reference (the SVG namespace is a name, not a fetch).
    assert "<script" not in text.lower()
    assert not re.search(r"\s(src|href)=", text)
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # One SVG path per area drawn.
    drawn = [a for a in report.map.areas if a.rings]
    assert text.count('<path class="area"') == len(drawn) > 0
    if paths is not None:
        assert len(drawn) == paths
    else:
        assert all(a.key.startswith("89") for a in drawn)  # resolution-9 cells
    # No count below k anywhere it is printed, and the map's shown counts are the exact ones.
    _assert_no_small_count(_counts(text), k)
    if area is None:
        exact = counts_by_layer(
            store,
            Filters(DATASET, CATEGORY, start=PERIOD[0], end=PERIOD[1]),
            load_layer(next(s for s in settings.layers if s.id == "arrondissements")),
            k=k,
            analyst=True,
        )
        truth = {c.key: c.count for c in exact.cells}
        assert any(0 < n < k for n in truth.values())  # the test meets small cells
        for a in report.map.areas:
            assert a.count is None or a.count == truth[a.key]
            if 0 < truth[a.key] < k:
                assert a.suppressed and f"&lt; {k}" in text
        assert {a.label for a in report.map.areas if a.suppressed} == set(report.suppressed)
    # The caveat (OB-07) and the provenance record.
    assert html.escape(rep.CAVEAT, quote=False) in text
    sha = store.datasets()[0]["sha256"]
    assert sha in text and report.inputs_sha256 in text
    assert f"k = {k}" in text
    assert "Bias audit" in text and CATEGORY in html.unescape(text)


def test_pdf_has_the_title_the_caveat_and_the_provenance(
    store: ObservatoryStore, site: tuple[Path, ObservatorySettings], tmp_path: Path
) -> None:
    report = rep.build_report(store, site[1], dataset=DATASET, category=CATEGORY, period=PERIOD)
    pdf = rep.write_pdf(report, tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type /Page\b", pdf)) >= 3
    assert b"DejaVu" in pdf  # a Unicode font: "Objets abandonnés" keeps its accent
    # poppler-utils is installed by .ci/run beside chromium: the text check always runs.
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "report.pdf"), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert report.dataset_title in text and CATEGORY in text
    assert "not the true rate of crime" in text
    assert report.inputs_sha256 in text.replace("\n", "")


def test_ranking_comes_with_the_feedback_simulation(
    store: ObservatoryStore, site: tuple[Path, ObservatorySettings]
) -> None:
    k = site[1].min_count
    report = rep.build_report(store, site[1], dataset=DATASET, category=CATEGORY, period=PERIOD, top=5)
    assert 0 < len(report.ranking) <= 5
    assert all(n >= k for _, n in report.ranking)
    counts = [n for _, n in report.ranking]
    assert counts == sorted(counts, reverse=True)
    assert any("Feedback-loop simulation" in n for n in report.ranking_notes)
    none = rep.build_report(store, site[1], dataset=DATASET, category=None, period=PERIOD)
    assert not none.ranking and "one category" in none.ranking_notes[0]


def test_cli_writes_both_files_and_audits_the_export(
    site: tuple[Path, ObservatorySettings], tmp_path: Path
) -> None:
    config, _ = site
    out = tmp_path / "out"
    args = [
        "observatory",
        "report",
        "--config",
        str(config),
        "--dataset",
        DATASET,
        "--period",
        "2024-01..2024-06",
    ]
    args += ["--out", str(out), "--category", CATEGORY, "--user", "analyst-1"]
    refused = CliRunner().invoke(app, [*args, "--recipient", "Conseil de Paris"])
    assert refused.exit_code == 2
    assert "requires a purpose" in refused.output and len(refused.output.strip().splitlines()) == 1
    assert not out.exists()

    result = CliRunner().invoke(
        app,
        [
            *args,
            "--purpose",
            "bilan semestriel",
            "--recipient",
            "Conseil de Paris",
            "--area",
            "arrondissements:75111",
        ],
    )
    assert result.exit_code == 0, result.output
    html_path, pdf_path = out / "report.html", out / "report.pdf"
    assert str(html_path) in result.output and str(pdf_path) in result.output
    assert html_path.stat().st_size > 10_000 and pdf_path.read_bytes().startswith(b"%PDF-")
    cfg = load_config(config)
    db = Store.open(cfg.store.url)
    try:
        with db.engine.connect() as conn:
            (record,) = conn.execute(
                select(AuditRecord).where(AuditRecord.object_type == "observatory_report")
            ).all()
    finally:
        db.close()
    assert record.action == "export" and record.purpose == "bilan semestriel"
    assert record.recipient == "Conseil de Paris" and record.user_id == "analyst-1"
    details = json.loads(record.details)
    assert details["area"] == "layer:arrondissements:75111"
    assert details["files"]["report.pdf"] == hashlib.sha256(pdf_path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2016-01..2016-12", datetime(2016, 1, 1), datetime(2017, 1, 1)),
        ("2016", datetime(2016, 1, 1), datetime(2017, 1, 1)),
        ("2016-03-01..2016-03-31", datetime(2016, 3, 1), datetime(2016, 4, 1)),
        ("2015-12..2016-02-10", datetime(2015, 12, 1), datetime(2016, 2, 11)),
    ],
)
def test_period_includes_both_ends(period: str, start: datetime, end: datetime) -> None:
    assert rep.parse_period(period) == (start, end)


@pytest.mark.parametrize("bad", ["2016-13", "2016-12..2016-01", "last year"])
def test_bad_period_is_one_clear_error(bad: str) -> None:
    with pytest.raises(ObservatoryError, match=r"period|year, month or day"):
        rep.parse_period(bad)


def test_area_forms() -> None:
    assert rep.parse_area("districts:11") == AreaRef("layer:districts", "11")
    assert rep.parse_area("layer:districts:11") == AreaRef("layer:districts", "11")
    assert rep.parse_area("h3:7:872664C1EFFFFFF") == AreaRef("h3:7", "872664c1effffff")
    with pytest.raises(ObservatoryError, match="LAYER:CODE"):
        rep.parse_area("11")


def test_poisson_interval_brackets_the_count() -> None:
    # Garwood's exact 95 % interval for 10 is 4.80-18.39.
    low, high = rep.poisson_interval(10)
    assert abs(low - 4.80) < 0.05 and abs(high - 18.39) < 0.05


def test_a_police_activity_category_is_reported_without_a_ranking(
    chicago_store: ObservatoryStore, obs_layers: dict
) -> None:
    """NARCOTICS is 99.6 % police-initiated: the report maps it and audits it, but ranks no area
    (OB-05), and says why in the ranking's place."""
    settings = ObservatorySettings(layers=[obs_layers["beats"], obs_layers["districts"]])
    report = rep.build_report(
        chicago_store,
        settings,
        dataset="chicago_crimes",
        category="NARCOTICS",
        period=(datetime(2016, 1, 1), datetime(2017, 1, 1)),
        level="layer:beats",
    )
    assert not report.ranking
    assert any("No ranking of areas: NARCOTICS is 99.6 % police-initiated" in n for n in report.ranking_notes)
    assert report.audit_rows and report.audit_rows[0].discovered
    assert "No ranking of areas" in rep.render_html(report)
