"""Console accounts for the benchmarks, as the console requires them before it lets an operator
in: a password, a habilitation and a training record, a second factor. The benchmarks measure
requests, not argon2, so their own accounts are hashed with cheap parameters (the server
verifies with the parameters stored in each hash)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher

import lanterne.accountability.accounts
from lanterne.accountability.accounts import create_account, enrol_second_factor
from lanterne.accountability.habilitation import habilitate, train
from lanterne.audit import AuditLog
from lanterne.store import Store


def cleared_operator(
    store: Store, login: str, password: str, scope: Sequence[str] = ("*",), role: str = "operator"
) -> tuple[str, ...]:
    """Create `login` ready to log in; returns its ten recovery codes, each good for one login
    (`{"login": …, "password": …, "code": codes[i]}`)."""
    lanterne.accountability.accounts.HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)  # type: ignore[misc]
    audit = AuditLog(store.engine)
    at = datetime.now(UTC)
    since = at - timedelta(days=30)
    account = create_account(store.engine, audit, login, role, list(scope), password, "bench")
    habilitate(
        store.engine,
        audit,
        user=account.id,
        authority="chef de service",
        designated_on=since,
        cameras=list(scope),
        recorded_by="bench",
        now=at,
    )
    train(
        store.engine,
        audit,
        user=account.id,
        course="RGPD et limites du système",
        completed_on=since,
        recorded_by="bench",
        now=at,
    )
    return enrol_second_factor(store.engine, audit, login, "bench", now=at).recovery_codes
