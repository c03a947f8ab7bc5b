"""The `lanterne` command. Its commands mirror the user's jobs; a user's mistake ends with one
line naming the problem and the fix and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lanterne.cli.accounts import users_app
from lanterne.cli.alerts import alerts_app, suspensions_app
from lanterne.cli.audit import audit_app
from lanterne.cli.authorisation import authorisation_app
from lanterne.cli.common import ConfigOpt, login_name, user_errors
from lanterne.cli.observatory import observatory_app
from lanterne.cli.retention import hold_app, retention_app
from lanterne.cli.transparency import dpia_app, serve_app, transparency_app

app = typer.Typer(
    name="lanterne",
    help="Public-space video analytics that detects situations, never identities.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Check the configuration and generate its reference.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(authorisation_app, name="authorisation")
app.add_typer(retention_app, name="retention")
app.add_typer(hold_app, name="hold")
app.add_typer(alerts_app, name="alerts")
app.add_typer(suspensions_app, name="suspensions")
app.add_typer(transparency_app, name="transparency")
app.add_typer(dpia_app, name="dpia")
app.add_typer(serve_app, name="serve")
app.add_typer(users_app, name="users")
app.add_typer(observatory_app, name="observatory")
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

_login = login_name


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
@user_errors
def analyze(
    video: Annotated[Path, typer.Argument(help="Video file to evaluate.")],
    config: ConfigOpt,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("out"),
    camera: Annotated[str | None, typer.Option(help="Camera whose zones apply (default: the first).")] = None,
    store: Annotated[str | None, typer.Option(help="Also record the events in this database URL.")] = None,
    user: Annotated[
        str | None, typer.Option(help="User id recorded in the audit log (default: login name).")
    ] = None,
    verbose: bool = False,
) -> None:
    """Evaluate a clip offline: events.jsonl, stats.json and anonymised evidence in OUT."""
    from lanterne.config import load_config
    from lanterne.runtime.analyze import analyze as run_analysis

    _logging(verbose)
    cfg = load_config(config)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:.0f} s"),
        TimeRemainingColumn(), console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(video.name, total=None)

        def progress(t: float, total: float) -> None:
            bar.update(task, completed=t, total=total or None)

        result = run_analysis(
            video,
            cfg,
            out_dir,
            camera_id=camera,
            progress=progress,
            store_url=store,
            user_id=user or _login(),
        )
    _summary(result.stats, out_dir)
    if result.error is not None:
        console.print(
            f"[bold red]error:[/] {result.error}; the {len(result.events)} events found before it are kept"
        )
        raise typer.Exit(3)


def _summary(stats: dict[str, Any], out_dir: Path) -> None:
    t = Table(title=f"{stats['video']} → {out_dir}", show_header=False)
    for k in (
        "mode",
        "video_seconds",
        "frames_decoded",
        "frames_analysed",
        "detector_runs",
        "cpu_seconds",
        "events",
    ):
        t.add_row(k, str(stats[k]))
    for k, v in sorted(stats.get("events_by_type", {}).items()):
        t.add_row(f"  {k}", str(v))
    out.print(t)


@app.command()
@user_errors
def run(config: ConfigOpt, verbose: bool = True) -> None:
    """Run every camera continuously into the store (Ctrl-C stops)."""
    from lanterne.config import load_config
    from lanterne.runtime.runner import Runner

    _logging(verbose)
    cfg = load_config(config)
    runner = Runner(cfg)
    signal.signal(signal.SIGTERM, lambda *_: runner._stop.set())
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop()


@app.command()
@user_errors
def anonymize(
    src: Annotated[Path, typer.Argument(help="Input video.")],
    dst: Annotated[Path, typer.Argument(help="Output video (MP4).")],
    models_dir: Annotated[Path | None, typer.Option(help="Models directory.")] = None,
) -> None:
    """Pixelate faces, licence plates and heads in a whole clip."""
    from lanterne.config.schema import DetectorSettings
    from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
    from lanterne.video.anonymize.clip import anonymize_clip
    from lanterne.video.detectors import create_detector

    detector = create_detector(DetectorSettings(), models_dir)
    anonymizer = DefaultAnonymizer(models_dir)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task(src.name, total=1.0)
        stats = anonymize_clip(
            src, dst, detector, anonymizer, progress=lambda f: bar.update(task, completed=f)
        )
    out.print(f"{dst}: {stats}")


@config_app.command("check")
@user_errors
def config_check(config: Annotated[Path, typer.Argument(help="YAML configuration file.")]) -> None:
    """Validate a configuration file."""
    from lanterne.config import config_hash, load_config

    cfg = load_config(config)
    zones = sum(len(c.zones) for c in cfg.cameras)
    out.print(
        f"{config}: valid ({len(cfg.cameras)} cameras, {zones} zones, mode {cfg.mode}, sha256 {config_hash(cfg)[:12]})"
    )


@config_app.command("docs")
def config_docs(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Generate the configuration reference (docs/config.md) from the schema."""
    from lanterne.config.docs import render

    text = render()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON schema of the configuration (for editors and settings forms)."""
    from lanterne.config.schema import Config

    sys.stdout.write(json.dumps(Config.model_json_schema(), indent=2) + "\n")


@app.command()
@user_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("demo-out"),
    serve: Annotated[bool, typer.Option(help="Serve the console when the clip is analysed.")] = True,
    port: Annotated[int, typer.Option(help="Console port on 127.0.0.1.")] = 8000,
) -> None:
    """Run the PETS 2009 demo clip as a (demonstration) authorised deployment, then serve the
    console with its alerts. The clip is fetched once if ../shared is absent."""
    from lanterne.runtime.demo import prepare_demo
    from lanterne.runtime.runner import Runner

    cfg, site = prepare_demo(out_dir, user_id=_login())
    out.print(f"configuration: {site}")
    with console.status("analysing the demo clip (about a minute on 2 cores)…"):
        Runner(cfg).run_until_finished(timeout=1800)
    from lanterne.store import Store

    store = Store.open(cfg.store.url)
    events = store.events(limit=10_000)
    store.close()
    counts: dict[str, int] = {}
    for e in events:
        counts[str(e.type)] = counts.get(str(e.type), 0) + 1
    out.print(f"{len(events)} alerts stored ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    out.print(f"anonymised evidence: {cfg.store.evidence_dir}")
    from lanterne.runtime.demo import prepare_observatory

    with console.status("loading the observatory's published datasets (about 10 s)…"):
        loaded = prepare_observatory(cfg, user_id=_login())
    if loaded:
        out.print(f"observatory: {', '.join(loaded)}")
    if not serve:
        return
    from lanterne.accountability.accounts import list_accounts
    from lanterne.api.app import serve as serve_app
    from lanterne.store import create_engine_for

    engine = create_engine_for(cfg.store.url)
    has_account = bool(list_accounts(engine))
    engine.dispose()
    out.print(f"console: http://127.0.0.1:{port}/console   public page: http://127.0.0.1:{port}/public")
    if cfg.observatory.layers:
        out.print(f"observatory: http://127.0.0.1:{port}/console/observatory")
    if not has_account:
        out.print(
            "no account yet: in another terminal run\n"
            f"  .venv/bin/lanterne users add YOURNAME --role operator --scope '*' --config {site}\n"
            "then log in at the address above"
        )
    serve_app(cfg, host="127.0.0.1", port=port)


if __name__ == "__main__":
    app()
