"""`lanterne users habilitate|train|records|revoke-record|totp` as an administrator runs them: the
records that every video access checks, and the second factor printed once."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
import yaml
from argon2 import PasswordHasher
from typer.testing import CliRunner

from lanterne.accountability import accounts
from lanterne.accountability.accounts import check_second_factor, find_account
from lanterne.accountability.habilitation import habilitations, may_view_video, trainings
from lanterne.audit import Action
from lanterne.cli.main import app
from lanterne.config import load_config
from lanterne.runtime.site import open_site

runner = CliRunner()
PASSWORD = "lanterns carry light slowly"
WIDE = {"COLUMNS": "250"}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    data = {
        "site": "Ville d'Exemple",
        "store": {"url": f"sqlite:///{tmp_path / 'lanterne.db'}"},
        "cameras": [
            {"id": cam, "source": f"{cam}.mp4", "location": {"lat": 48.88, "lon": 2.35}}
            for cam in ("quai-nord", "parvis")
        ],
    }
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    add = ["users", "add", "j.martin", "--role", "operator", "--scope", "*", "--password-stdin"]
    r = runner.invoke(app, [*add, "--config", str(path), "--user", "admin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    return path


def cli(config: Path, *args: str) -> object:
    return runner.invoke(app, ["users", *args, "--config", str(config), "--user", "u-admin"], env=WIDE)


def test_habilitate_train_list_and_revoke(config: Path) -> None:
    h = cli(
        config,
        "habilitate",
        "j.martin",
        "--authority",
        "Maire de Lanterne",
        "--scope",
        "quai-nord",
        "--date",
        "2026-12-01",
    )
    assert h.exit_code == 0, h.output  # type: ignore[attr-defined]
    assert "until 2027-12-01" in h.output and "quai-nord" in h.output  # type: ignore[attr-defined]
    t = cli(
        config,
        "train",
        "j.martin",
        "--course",
        "RGPD et limites du système",
        "--date",
        "2026-12-01",
        "--expires",
        "2027-06-01",
    )
    assert t.exit_code == 0 and "valid until 2027-06-01" in t.output  # type: ignore[attr-defined]
    cfg = load_config(config)
    with open_site(cfg) as site:
        uid = find_account(site.store.engine, "j.martin").id  # type: ignore[union-attr]
        at = datetime(2026, 12, 5, tzinfo=UTC)
        assert may_view_video(site.store.engine, uid, "quai-nord", at) is None
        assert (
            may_view_video(site.store.engine, uid, "parvis", at)
            == "camera parvis is outside the habilitation's scope"
        )
        [hab] = habilitations(site.store.engine, uid)
        [course] = trainings(site.store.engine, uid)
        changes = [e.details["change"] for e in site.audit.entries(action=Action.USER_CHANGE)]
        assert changes == ["create", "habilitate", "train"]
    listed = runner.invoke(app, ["users", "records", "j.martin", "--config", str(config)], env=WIDE)
    assert listed.exit_code == 0  # type: ignore[attr-defined]
    assert "Maire de Lanterne" in listed.output and "RGPD et limites du système" in listed.output  # type: ignore[attr-defined]
    gone = cli(config, "revoke-record", "training", str(course.id))
    assert gone.exit_code == 0 and "revoked" in gone.output  # type: ignore[attr-defined]
    twice = cli(config, "revoke-record", "training", str(course.id))
    assert twice.exit_code == 2 and "already revoked" in twice.output  # type: ignore[attr-defined]
    with open_site(cfg) as site:
        assert may_view_video(site.store.engine, uid, "quai-nord", datetime.now(UTC)).startswith(  # type: ignore[union-attr]
            "training record revoked on"
        )
    assert hab.cameras == ("quai-nord",)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["habilitate", "nobody", "--authority", "Maire", "--scope", "*"], "no account has that login"),
        (["habilitate", "j.martin", "--authority", "Maire", "--scope", "gare"], "unknown camera 'gare'"),
        (
            ["habilitate", "j.martin", "--authority", "Maire", "--scope", "*", "--date", "hier"],
            "not an ISO 8601 time",
        ),
        (
            [
                "habilitate",
                "j.martin",
                "--authority",
                "Maire",
                "--scope",
                "*",
                "--date",
                "2026-01-01",
                "--expires",
                "2030-01-01",
            ],
            "within 1096 days",
        ),
        (["train", "j.martin", "--course", " "], "names its course"),
        (["revoke-record", "badge", "1"], "unknown record kind 'badge'"),
        (["totp", "nobody"], "no account has that login"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(config: Path, args: list[str], message: str) -> None:
    r = cli(config, *args)
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    assert message in r.output and "Traceback" not in r.output  # type: ignore[attr-defined]


def test_totp_prints_the_secret_and_ten_codes_once(config: Path) -> None:
    r = cli(config, "totp", "j.martin")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert "otpauth://totp/Lanterne:j.martin?secret=" in r.output  # type: ignore[attr-defined]
    secret = re.search(r"secret: ([A-Z2-7]+)", r.output).group(1)  # type: ignore[attr-defined, union-attr]
    codes = re.findall(r"^\s+([0-9a-f]{5}-[0-9a-f]{5})$", r.output, re.M)  # type: ignore[attr-defined]
    assert len(set(codes)) == 10
    now = datetime.now(UTC)
    with open_site(load_config(config)) as site:
        uid = find_account(site.store.engine, "j.martin").id  # type: ignore[union-attr]
        assert check_second_factor(site.store.engine, uid, pyotp.TOTP(secret).at(now), now) is None
        assert check_second_factor(site.store.engine, uid, codes[0], now) is None
        assert check_second_factor(site.store.engine, uid, codes[0], now) == "bad_code"
        [rec] = [
            e for e in site.audit.entries(action=Action.USER_CHANGE) if e.details["change"] == "second_factor"
        ]
        assert rec.user_id == "u-admin" and secret not in str(rec.details)


def test_an_export_officer_account_is_made_and_an_unknown_role_is_named(config: Path) -> None:
    """AC-03: `--role export_officer` is accepted; a misspelt role is one line naming the choices."""
    add = ["users", "add", "e.dupont", "--scope", "*", "--password-stdin", "--config", str(config)]
    made = runner.invoke(app, [*add, "--role", "export_officer", "--user", "u-admin"], input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    assert "e.dupont, export_officer, *" in made.output
    with open_site(load_config(config)) as site:
        assert find_account(site.store.engine, "e.dupont").role == "export_officer"  # type: ignore[union-attr]
    add[2] = "f.durand"
    wrong = runner.invoke(app, [*add, "--role", "exporter", "--user", "u-admin"], input=PASSWORD + "\n")
    assert wrong.exit_code == 2
    assert wrong.output.strip().splitlines() == [
        "error: unknown role 'exporter'; choose one of operator, supervisor, auditor, admin, analyst, export_officer"
    ]
