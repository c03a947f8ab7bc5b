"""`lanterne worker` and `lanterne ingest`: a city's cameras over many machines (docs/scaling.md).

Top-level commands beside `lanterne run`, which stays the one-process way for a small site.
Exit codes: 0 stopped by SIGTERM or Ctrl-C; 2 a user's mistake (no NATS URL, NATS unreachable,
a bad configuration, a second ingester).
"""

from __future__ import annotations

import contextlib
import signal
from typing import Annotated

import typer

from lanterne.cli.common import ConfigOpt, log_to_stderr, user_errors

cluster_app = typer.Typer()

NatsOpt = Annotated[
    str | None,
    typer.Option("--nats", help="NATS server URL, e.g. nats://10.0.0.5:4222 (default: cluster.nats_url)."),
]

MetricsOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve /metrics, /healthz and /readyz of this process on 127.0.0.1:PORT (docs/scaling.md).",
    ),
]


@cluster_app.command()
@user_errors
def worker(
    config: ConfigOpt,
    nats: NatsOpt = None,
    worker_id: Annotated[
        str | None, typer.Option("--id", help="This worker's name, unique in the city (default: host name).")
    ] = None,
    shards: Annotated[
        int | None, typer.Option(help="Shard count, the same on every worker (default: cluster.shards).")
    ] = None,
    ttl: Annotated[
        float | None,
        typer.Option(
            help="Lease TTL in seconds, the same on every worker (default: cluster.lease_ttl_seconds)."
        ),
    ] = None,
    pace: Annotated[
        bool, typer.Option(help="Read file cameras at real time, as the live cameras they stand for.")
    ] = True,
    loop: Annotated[
        bool, typer.Option(help="Start a file camera again when it ends (tests, demos).")
    ] = False,
    metrics_port: MetricsOpt = None,
    verbose: bool = True,
) -> None:
    """Analyse this worker's fair share of the site's cameras, taken and kept by leases on NATS;
    a dead worker's cameras move to the others within seconds. SIGTERM stops the cameras and
    hands the leases back."""
    from lanterne.config import load_config
    from lanterne.runtime.worker import Worker, cluster_options

    log_to_stderr(verbose)
    cfg = load_config(config)
    options = cluster_options(cfg, nats_url=nats, worker_id=worker_id, shards=shards, ttl=ttl)
    w = Worker(cfg, options, pace_files=pace, loop_files=loop)
    if metrics_port is not None:
        w.serve_probe(metrics_port)
    signal.signal(signal.SIGTERM, lambda *_: w.request_stop())
    # On Ctrl-C, run_forever has stopped the cameras and released the leases on its way out.
    with contextlib.suppress(KeyboardInterrupt):
        w.run_forever()


@cluster_app.command()
@user_errors
def ingest(
    config: ConfigOpt, nats: NatsOpt = None, metrics_port: MetricsOpt = None, verbose: bool = True
) -> None:
    """Move the workers' events from NATS into the site's store (commit, then acknowledge), and
    run the site's retention. One ingester per city."""
    from lanterne.config import load_config
    from lanterne.runtime.worker import IngestService, cluster_options

    log_to_stderr(verbose)
    cfg = load_config(config)
    service = IngestService(cfg, cluster_options(cfg, nats_url=nats).nats_url)
    if metrics_port is not None:
        service.serve_probe(metrics_port)
    signal.signal(signal.SIGTERM, lambda *_: service.request_stop())
    with contextlib.suppress(KeyboardInterrupt):
        service.run_forever()
