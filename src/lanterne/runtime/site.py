"""A site opened for work: its configuration, its database and its audit log, in one place.

Every entry point (the `lanterne` commands, the runner, the demo) needs the same three things,
and the audit log must be the one the configuration describes: its signing key, its checkpoint
interval and its retention (`AuditLog.from_config`, which applies a changed `audit.retention_days`
and records that change). Opening them here, once, is what keeps a command from appending to the
log without its key or with a stale retention. Store and audit log share one engine, so a site
holds one connection pool, and closing it releases that pool once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from lanterne.audit import AuditLog
from lanterne.config import Config
from lanterne.store import Store


@dataclass(frozen=True)
class Site:
    """What `open_site` returns; a context manager that closes the site on leaving."""

    cfg: Config
    store: Store
    audit: AuditLog

    def close(self) -> None:
        """Close in reverse order of opening: the audit log, then the store (their shared engine)."""
        self.audit.close()
        self.store.close()

    def __enter__(self) -> Site:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_site(cfg: Config, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Site:
    """Open the site's database (bringing its schema up to date) and its audit log as configured.

    Raises `StoreError` (unreachable database) or `ConfigError` (audit retention out of bounds),
    one line each; nothing stays open when it does."""
    store = Store.open(cfg.store.url)
    try:
        audit = AuditLog.from_config(cfg, engine=store.engine, clock=clock)
    except BaseException:
        store.close()
        raise
    if cfg.cluster.nats_url:
        from lanterne.cluster.witness import JetStreamWitness

        # In a city, every signed head also goes to NATS, out of the database administrator's
        # reach (`lanterne.cluster.witness`); `lanterne audit verify --config` reads it back.
        audit.witnesses = (*audit.witnesses, JetStreamWitness(cfg.cluster.nats_url, cfg.site))
    return Site(cfg, store, audit)
