"""The audit log's remote witness in a city (issue 13, item 1): every signed head also goes to a
JetStream stream that refuses deletes and purges. A database administrator deletes the newest
records and their checkpoint (triggers dropped first) and removes the witness file too: `lanterne
audit verify --config` still names the missing records from the stream. Real nats-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import nats.js.errors
import pytest
import yaml
from typer.testing import CliRunner

from lanterne.audit import Action
from lanterne.cli.main import app
from lanterne.cluster.witness import STREAM, read_heads, site_subject
from lanterne.config import load_config
from lanterne.runtime.demo import DEMO_CONFIG
from lanterne.runtime.site import open_site
from tests.audit.test_witness import truncate_tail_and_its_checkpoint
from tests.support.nats import NatsServer


def test_the_stream_names_a_truncated_tail_even_without_the_witness_file(
    db_url: str, tmp_path: Path, nats_server: NatsServer
) -> None:
    (tmp_path / "witness").mkdir()
    data = {
        **DEMO_CONFIG,
        "site": "Ville d'Exemple: CSU",
        "store": {"url": db_url},
        "audit": {"key_path": "audit.key", "checkpoint_every": 4, "witness_file": "witness/heads.jsonl"},
        "cluster": {"nats_url": nats_server.url},
    }
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    site = open_site(cfg)
    for i in range(8):
        site.audit.append("op-1", Action.VIEW_SNAPSHOT, object_type="event", object_id=f"ev-{i}")
    assert site.audit.sign_head() is None  # checkpoints every 4 records: 4 and 8 are signed
    assert [line.head.seq for line in read_heads(nats_server.url, cfg.site) if line.head] == [4, 8]
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "verify", "--config", str(path)])
    assert res.exit_code == 0 and "witness stream: 2 signed heads" in res.output, res.output

    # The stream keeps what it was given: deleting or purging through JetStream is refused.
    async def try_to_erase() -> list[bool]:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        refused = []
        for erase in (lambda: js.delete_msg(STREAM, 1), lambda: js.purge_stream(STREAM)):
            try:
                await erase()
                refused.append(False)
            except nats.js.errors.Error:
                refused.append(True)
        await nc.close()
        return refused

    assert asyncio.run(try_to_erase()) == [True, True]

    # The attack, and the local witness file gone with it: the stream still says what is missing.
    truncate_tail_and_its_checkpoint(site.audit.engine, 6)
    cfg.audit.witness_path.unlink()
    res = runner.invoke(app, ["audit", "verify", "--config", str(path)])
    assert res.exit_code == 1 and "records 6-8 missing: witness signed head 8 at" in res.output, res.output
    site.close()


def test_sites_do_not_share_a_subject_and_an_unreachable_stream_is_one_line() -> None:
    assert site_subject("Ville d'Exemple") != site_subject("Ville d.Exemple")
    assert site_subject("Ville d'Exemple").startswith("lanterne.audit.heads.Ville_d_Exemple-")
    from lanterne.audit.witness import WitnessError

    with pytest.raises(WitnessError, match=r"cannot read it .*is NATS reachable"):
        read_heads("nats://127.0.0.1:1", "x", timeout=0.5)
