"""Load and validate the YAML configuration, turning pydantic's errors into one line per mistake
that names the key path the way the user wrote it (`cameras[0].zones[1].polygon`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lanterne.config.schema import Config
from lanterne.core.errors import ConfigError, LanterneError
from lanterne.core.types import EventType


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")) or part in {"list[...]"}:
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _message(err: dict[str, Any]) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden" and len(loc) >= 2 and loc[-2] == "events":
        allowed = ", ".join(str(t) for t in EventType)
        msg = f"not an event type; the closed list of décret 2023-828 art. 3 is: {allowed}"
    elif err["type"] == "extra_forbidden":
        msg = "unknown key (check its spelling against docs/config.md)"
    elif err["type"] == "missing":
        msg = "is required"
    return msg


def format_validation_error(exc: ValidationError) -> str:
    return "; ".join(f"{_path(tuple(e['loc']))}: {_message(dict(e))}" for e in exc.errors())


def parse_config(data: Any, base_dir: Path | None = None) -> Config:
    """Validate already-parsed YAML. Relative paths are resolved against `base_dir`."""
    if not isinstance(data, dict):
        raise ConfigError("configuration: the top level must be a mapping with at least 'cameras'")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"configuration: {format_validation_error(exc)}") from None
    if base_dir is None:
        return cfg
    return _resolve_paths(cfg, base_dir)


def _resolve_paths(cfg: Config, base: Path) -> Config:
    cameras = []
    for cam in cfg.cameras:
        src = cam.source
        if "://" not in src and not Path(src).is_absolute():
            src = str((base / src).resolve())
        cameras.append(cam.model_copy(update={"source": src}))
    store = cfg.store
    url = store.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        url = prefix + str((base / url.removeprefix(prefix)).resolve())
    evidence = store.evidence_dir
    if not evidence.is_absolute():
        evidence = (base / evidence).resolve()
    models_dir = cfg.models_dir
    if models_dir is not None and not models_dir.is_absolute():
        models_dir = (base / models_dir).resolve()
    key_path = cfg.audit.key_path
    if not key_path.is_absolute():
        key_path = (base / key_path).resolve()
    witness_file = cfg.audit.witness_file
    if witness_file is not None and not witness_file.is_absolute():
        witness_file = (base / witness_file).resolve()
    recording = cfg.recording
    recording = recording.model_copy(
        update={
            name: (base / getattr(recording, name)).resolve()
            for name in ("dir", "key_file")
            if not getattr(recording, name).is_absolute()
        }
    )
    console = cfg.console
    if console.boundaries is not None and not console.boundaries.is_absolute():
        console = console.model_copy(update={"boundaries": (base / console.boundaries).resolve()})
    obs = cfg.observatory
    obs_store = obs.store
    if "://" not in obs_store and not Path(obs_store).is_absolute():
        obs_store = str((base / obs_store).resolve())
    layers = [
        layer
        if layer.file.is_absolute()
        else layer.model_copy(update={"file": (base / layer.file).resolve()})
        for layer in obs.layers
    ]
    outbound = cfg.outbound
    if outbound.mqtt is not None and outbound.mqtt.password_file is not None:
        outbound = outbound.model_copy(
            update={
                "mqtt": outbound.mqtt.model_copy(update={"password_file": base / outbound.mqtt.password_file})
            }
        )
    outbound = outbound.model_copy(
        update={
            "webhooks": [
                w.model_copy(update={"secret_file": base / w.secret_file}) for w in outbound.webhooks
            ]
        }
    )
    metrics = cfg.metrics
    if metrics.token_file is not None:
        metrics = metrics.model_copy(update={"token_file": base / metrics.token_file})
    return cfg.model_copy(
        update={
            "outbound": outbound,
            "metrics": metrics,
            "observatory": obs.model_copy(update={"store": obs_store, "layers": layers}),
            "console": console,
            "audit": cfg.audit.model_copy(update={"key_path": key_path, "witness_file": witness_file}),
            "recording": recording,
            "cameras": cameras,
            "store": store.model_copy(update={"url": url, "evidence_dir": evidence}),
            "models_dir": models_dir,
        }
    )


def read_yaml(path: Path, what: str, option: str, error: type[LanterneError] = ConfigError) -> Any:
    """A YAML file's content, or `error` with one line naming the file and the fix (`what` is
    the kind of file, `option` the command-line option that names it)."""
    if not path.is_file():
        raise error(f"{path}: {what} file not found; pass an existing YAML file with {option}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}; fix the syntax") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file; save the {what} as UTF-8") from None


def load_config(path: Path) -> Config:
    data = read_yaml(path, "configuration", "--config")
    return parse_config(data, base_dir=path.parent.resolve())


def config_hash(cfg: Config) -> str:
    """Stable hash of the effective configuration, stored with every event so that an alert can be
    traced to the exact rules that produced it."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
