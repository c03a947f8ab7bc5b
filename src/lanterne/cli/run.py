"""`lanterne analyze|run|anonymize|demo`: the video engine from the command line, offline on a
clip, continuously on the site's cameras, or on the demonstration clip.

Top-level commands, not a group: `main.py` adds this app without a name, so its commands sit
beside the groups. Exit codes: 0 done; 2 a user's mistake (bad config, unknown camera); 3 the
clip could not be read to the end (the events found before are kept).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lanterne.cli.common import ConfigOpt, err_console, log_to_stderr, login_name, out_console, user_errors

run_app = typer.Typer()


@run_app.command()
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

    log_to_stderr(verbose)
    cfg = load_config(config)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:.0f} s"),
        TimeRemainingColumn(), console=err_console(), transient=True,
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
            user_id=user or login_name(),
        )
    _summary(result.stats, out_dir)
    if result.error is not None:
        err_console().print(
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
    out_console().print(t)


@run_app.command()
@user_errors
def run(
    config: ConfigOpt,
    verbose: bool = True,
    pace: Annotated[
        bool,
        typer.Option(
            help="Read file cameras at real time, as the live cameras they stand for; "
            "--no-pace reads them as fast as possible (replays, throughput tests)."
        ),
    ] = True,
) -> None:
    """Run every camera continuously into the store (Ctrl-C stops). A camera that falls behind
    real time sheds analysis rate, then drops frames, and says so in the log and on the map."""
    from lanterne.config import load_config
    from lanterne.runtime.runner import Runner

    log_to_stderr(verbose)
    cfg = load_config(config)
    runner = Runner(cfg, pace_files=pace)
    signal.signal(signal.SIGTERM, lambda *_: runner._stop.set())
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop()


@run_app.command()
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
        TextColumn("[bold]{task.description}"), BarColumn(), console=err_console(), transient=True
    ) as bar:
        task = bar.add_task(src.name, total=1.0)
        stats = anonymize_clip(
            src, dst, detector, anonymizer, progress=lambda f: bar.update(task, completed=f)
        )
    out_console().print(f"{dst}: {stats}")


@run_app.command()
@user_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("demo-out"),
    serve: Annotated[bool, typer.Option(help="Serve the console when the clip is analysed.")] = True,
    port: Annotated[int, typer.Option(help="Console port on 127.0.0.1.")] = 8000,
) -> None:
    """Run the PETS 2009 demo clip as a (demonstration) authorised deployment, then serve the
    console with its alerts. The clip is fetched once if ../shared is absent."""
    from lanterne.accountability.accounts import list_accounts
    from lanterne.runtime.demo import prepare_demo, prepare_observatory
    from lanterne.runtime.runner import Runner
    from lanterne.runtime.site import open_site

    out, err = out_console(), err_console()
    cfg, site = prepare_demo(out_dir, user_id=login_name())
    out.print(f"configuration: {site}")
    with err.status("analysing the demo clip (about a minute on 2 cores)…"):
        # Unpaced: the demo replays a recording for its alerts, which must not depend on how
        # loaded the machine is (a paced clip sheds rate on a busy laptop), nor wait 80 s of clip.
        Runner(cfg, pace_files=False).run_until_finished(timeout=1800, cameras=[cfg.cameras[0].id])
    with open_site(cfg) as opened:
        events = opened.store.events(limit=10_000)
        has_account = bool(list_accounts(opened.store.engine))
    counts: dict[str, int] = {}
    for e in events:
        counts[str(e.type)] = counts.get(str(e.type), 0) + 1
    out.print(f"{len(events)} alerts stored ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
    out.print(f"anonymised evidence: {cfg.store.evidence_dir}")
    with err.status("loading the observatory's published datasets (about 10 s)…"):
        loaded = prepare_observatory(cfg, user_id=login_name())
    if loaded:
        out.print(f"observatory: {', '.join(loaded)}")
    if not serve:
        return
    from lanterne.api.app import serve as serve_app

    # While the console serves, the clip plays as live cameras (looped, at its own pace) for the
    # live wall: the authorised camera alerts again, the replays only show.
    live = Runner(cfg, pace_files=True, loop_files=True)
    cameras = threading.Thread(target=live.run_forever, name="demo-cameras", daemon=True)
    cameras.start()
    out.print(f"console: http://127.0.0.1:{port}/console   public page: http://127.0.0.1:{port}/public")
    out.print(
        f"live wall ({len(cfg.cameras)} cameras replaying the clip): http://127.0.0.1:{port}/console/wall"
    )
    if cfg.observatory.layers:
        out.print(f"observatory: http://127.0.0.1:{port}/console/observatory")
    if not has_account:
        out.print(
            "no account yet: in another terminal run\n"
            f"  .venv/bin/lanterne users add YOURNAME --role operator --scope '*' --config {site}\n"
            f"  .venv/bin/lanterne users totp YOURNAME --config {site}   (add the secret to an authenticator app)\n"
            f"  .venv/bin/lanterne users habilitate YOURNAME --authority 'chef de service' --scope '*' --config {site}\n"
            f"  .venv/bin/lanterne users train YOURNAME --course 'RGPD et limites du système' --config {site}\n"
            "then log in at the address above with the 6-digit code"
        )
    try:
        serve_app(cfg, host="127.0.0.1", port=port)
    finally:
        live._stop.set()
        cameras.join(timeout=30)
