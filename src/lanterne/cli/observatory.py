"""`lanterne observatory …`: the analyst's jobs on the command line (ingest, inspect, report)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, out_console, user_errors, user_id

if TYPE_CHECKING:
    from lanterne.observatory.store import ObservatoryStore

observatory_app = typer.Typer(
    help="Incident and open data: ingest with a mapping file, inspect provenance and rejects, write reports.",
    no_args_is_help=True,
)


@observatory_app.command("mapping-docs")
@user_errors
def mapping_docs_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Markdown file to write.")] = Path(
        "docs/observatory-mapping.md"
    ),
) -> None:
    """Write the mapping-file reference, generated from the schema."""
    from lanterne.observatory.mapping import render_docs

    out.write_text(render_docs(), encoding="utf-8")
    out_console().print(f"wrote {out}", highlight=False)


# --- ingest, datasets, rejects ----------------------------------------------------------------------


@contextmanager
def _site_store(config: Path) -> Iterator[ObservatoryStore]:
    """The site's observatory store opened read-only for as long as a command inspects it: looking
    at provenance or rejects never holds the write lock an ingest needs."""
    from lanterne.config import load_config
    from lanterne.observatory.store import ObservatoryStore

    store = ObservatoryStore.open(load_config(config).observatory.store, read_only=True)
    try:
        yield store
    finally:
        store.close()


@observatory_app.command("ingest")
@user_errors
def ingest_command(
    file: Annotated[Path, typer.Argument(help="CSV (.csv, .csv.gz), Parquet or GeoJSON file.")],
    mapping: Annotated[Path, typer.Option("--mapping", "-m", help="Mapping file (YAML) for this source.")],
    config: ConfigOpt,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a dataset already ingested under the same id.")
    ] = False,
    user: UserOpt = None,
) -> None:
    """Load a published table into the observatory: every row is loaded or refused with its
    reason (`lanterne observatory rejects`), and the file's provenance is recorded. The source must
    be approved first, by its mapping file (`lanterne governance approve --what observatory_source
    --file MAP.yml`, GV-05); otherwise nothing is read."""
    from rich.table import Table

    from lanterne.runtime.observatory_sources import ingest_source

    with opened_site(config) as site, out_console().status(f"ingesting {file.name} through {mapping.name}…"):
        report = ingest_source(site, file, mapping, user_id=user_id(user), replace=replace)

    console = out_console()
    verb = "replaced" if report.replaced else "ingested"
    console.print(
        f"dataset {report.dataset} {verb} from {file.name} in {report.seconds:.1f} s: "
        f"{report.rows_read:,} rows read, {report.rows_loaded:,} loaded, {report.rows_rejected:,} rejected",
        highlight=False,
    )
    if report.rows_outside_filter:
        console.print(
            f"{report.rows_outside_filter:,} rows outside the mapping's filter were not read", highlight=False
        )
    if report.rejects_by_reason:
        table = Table(title="Top reject reasons")
        table.add_column("field: reason")
        table.add_column("rows", justify="right")
        for reason, count in list(report.rejects_by_reason.items())[:10]:
            table.add_row(reason, f"{count:,}")
        console.print(table)
        console.print(
            f"every rejected row: lanterne observatory rejects {report.dataset} --config {config}",
            highlight=False,
        )


@observatory_app.command("datasets")
@user_errors
def datasets_command(config: ConfigOpt) -> None:
    """List the ingested datasets with their provenance (origin, licence, file hash, who, when)."""
    from rich.table import Table

    with _site_store(config) as store:
        rows = store.datasets()
    console = out_console()
    if not rows:
        console.print(
            "no dataset ingested yet: lanterne observatory ingest FILE --mapping MAP.yml --config …"
        )
        return
    table = Table(title="Observatory datasets")
    for col in ("id", "kind", "read", "loaded", "rejected", "sha256", "ingested (UTC)", "by"):
        table.add_column(col, justify="right" if col in ("read", "loaded", "rejected") else "left")
    for d in rows:
        table.add_row(
            d["id"],
            d["kind"],
            f"{d['rows_read']:,}",
            f"{d['rows_loaded']:,}",
            f"{d['rows_rejected']:,}",
            d["sha256"][:12],
            f"{d['ingested_at']:%Y-%m-%d %H:%M}",
            d["ingested_by"],
        )
    console.print(table)
    for d in rows:
        console.print(
            f"[bold]{d['id']}[/]: {d['title']}; file {d['source_file']} (sha256 {d['sha256']}); "
            f"origin: {d['origin']}; licence: {d['licence']}; times in {d['time_zone']} to the "
            f"{d['time_precision']}; mapping sha256 {d['mapping_sha256'][:12]}; lanterne {d['lanterne_version']}",
            highlight=False,
        )


@observatory_app.command("rejects")
@user_errors
def rejects_command(
    dataset: Annotated[str, typer.Argument(help="Dataset id.")],
    config: ConfigOpt,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Rows listed on screen (0: summary only).")
    ] = 50,
    csv_out: Annotated[
        Path | None,
        typer.Option("--csv", help="Write every rejected row (row, field, reason) to this CSV file."),
    ] = None,
) -> None:
    """The validation report of a dataset: every refused source row, with its number and reason
    (never its content)."""
    import csv

    from rich.table import Table

    from lanterne.observatory.store import ObservatoryError

    with _site_store(config) as store:
        known = store.query("SELECT rows_read, rows_rejected FROM datasets WHERE id = $d", {"d": dataset})
        if not known:
            ids = ", ".join(r[0] for r in store.query("SELECT id FROM datasets ORDER BY id")) or "none"
            raise ObservatoryError(f"no dataset {dataset!r}; ingested datasets: {ids}")
        summary = store.query(
            "SELECT field, reason, count(*), min(row_number) FROM rejects WHERE dataset = $d "
            "GROUP BY ALL ORDER BY 3 DESC, 1, 2",
            {"d": dataset},
        )
        rows = store.query(
            "SELECT row_number, field, reason FROM rejects WHERE dataset = $d ORDER BY row_number",
            {"d": dataset},
        )
    console = out_console()
    read, rejected = known[0]
    console.print(
        f"dataset {dataset}: {rejected:,} of {read:,} rows rejected (row 1 = first data row)", highlight=False
    )
    if summary:
        by_reason = Table(title="Reasons")
        for col in ("field", "reason", "rows", "first row"):
            by_reason.add_column(col, justify="right" if col in ("rows", "first row") else "left")
        for f, r, n, first in summary:
            by_reason.add_row(f, r, f"{n:,}", str(first))
        console.print(by_reason)
    if limit and rows:
        listing = Table(title=f"Rejected rows (first {min(limit, len(rows))} of {len(rows):,})")
        for col in ("row", "field", "reason"):
            listing.add_column(col, justify="right" if col == "row" else "left")
        for number, f, r in rows[:limit]:
            listing.add_row(str(number), f, r)
        console.print(listing)
    if csv_out is not None:
        with csv_out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row_number", "field", "reason"])
            writer.writerows(rows)
        console.print(f"{len(rows):,} rejected rows written to {csv_out}", highlight=False)


@observatory_app.command("import-cameras")
@user_errors
def import_cameras_command(
    config: ConfigOpt,
    time_zone: Annotated[
        str, typer.Option("--time-zone", help="IANA zone of the hours stored (the site's local time).")
    ] = "Europe/Paris",
    user: UserOpt = None,
) -> None:
    """Copy the cameras' zone statistics as hourly measures (dataset camera_counts, replaced each
    time): entries per class, zone and hour at the camera's H3 cell; hourly values below k
    (observatory.min_count) are not copied. No track, no frame."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from lanterne.observatory.ingest import import_camera_counts, record_dataset_change
    from lanterne.observatory.store import ObservatoryError, ObservatoryStore

    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ObservatoryError(
            f"--time-zone {time_zone!r} is not an IANA zone; use e.g. Europe/Paris"
        ) from None
    who = user_id(user)
    with opened_site(config) as site:
        cfg = site.cfg
        counts = site.store.counts(limit=10**9)
        store = ObservatoryStore.open(cfg.observatory.store)
        try:
            report = import_camera_counts(
                store,
                counts,
                {c.id: (c.location.lat, c.location.lon) for c in cfg.cameras},
                k=cfg.observatory.min_count,
                time_zone=time_zone,
                user_id=who,
            )
        finally:
            store.close()
        record_dataset_change(site.audit, who, report, "zone_counts")
    out_console().print(
        f"dataset {report.dataset}: {report.rows_read:,} hourly values from {len(counts):,} zone buckets, "
        f"{report.rows_loaded:,} copied, {report.rows_rejected:,} below k = {cfg.observatory.min_count} left out",
        highlight=False,
    )


# --- report (helper F) ----------------------------------------------------------------------------


@observatory_app.command("report")
@user_errors
def report_command(
    config: ConfigOpt,
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset id, as ingested.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and report.pdf.")],
    period: Annotated[
        str | None,
        typer.Option(
            "--period", help="2016-01..2016-12, 2016 or 2016-03-01..2016-03-31 (both ends included)."
        ),
    ] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First year, month or day.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last year, month or day (included).")] = None,
    category: Annotated[str | None, typer.Option("--category", help="One category (default: all).")] = None,
    area: Annotated[
        str | None,
        typer.Option("--area", help="LAYER:CODE (e.g. districts:11) or h3:<res>:<cell>; default: all."),
    ] = None,
    level: Annotated[
        str | None,
        typer.Option("--level", help="Map level: layer:<id> or h3:<res> (default: the dataset's layer)."),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", help="Areas ranked, with the feedback simulation (0: none).")
    ] = 10,
    formats: Annotated[str, typer.Option("--format", help="html, pdf or html,pdf.")] = "html,pdf",
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Why the report leaves the system.")
    ] = None,
    recipient: Annotated[str | None, typer.Option("--recipient", help="Who receives it.")] = None,
    user: UserOpt = None,
) -> None:
    """Write a report on one dataset, area and period (HTML and PDF, small counts suppressed) and
    record the export, with its purpose and recipient, in the audit log."""
    from lanterne.observatory.report import (
        build_report,
        export_report,
        parse_area,
        parse_formats,
        parse_period,
    )
    from lanterne.observatory.store import ObservatoryStore

    # The arguments are checked before anything is opened: a typo costs no database connection.
    wanted = parse_formats(formats)
    span = parse_period(period, date_from, date_to)
    where = parse_area(area)
    with opened_site(config) as site:
        store = ObservatoryStore.open(site.cfg.observatory.store, read_only=True)
        try:
            report = build_report(
                store,
                site.cfg.observatory,
                dataset=dataset,
                category=category,
                area=where,
                period=span,
                level=level,
                top=top,
            )
        finally:
            store.close()
        written = export_report(
            report,
            site.audit,
            out=out,
            formats=wanted,
            purpose=purpose,
            recipient=recipient,
            user_id=user_id(user),
        )
    for path in written:
        out_console().print(str(path), highlight=False)
