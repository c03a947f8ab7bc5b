"""Model and demo-asset registry: each file with its sha256 and its public origin.

Files are looked up in a models directory and checked by sha256 before use; a file that fails
the check is never loaded (a swapped model would change what the system signals without anyone
deciding it). When no directory holds the file, it is fetched once from its public origin into
the user cache and checked the same way.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lanterne.core.errors import ModelError

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    filename: str
    sha256: str
    size: int
    url: str
    """Public origin. For `.deb` origins, `member` names the file inside the package."""
    licence: str
    member: str | None = None


MODELS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="yolox_nano",
            filename="yolox_nano.onnx",
            sha256="c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d",
            size=3659407,
            url="https://raw.githubusercontent.com/opencv/opencv_zoo/2fd35e06a493624a4de247c6e251ef666395890a/models/object_detection_yolox/yolox_nano.onnx",
            licence="Apache-2.0 (YOLOX, Megvii)",
        ),
        Asset(
            name="yunet",
            filename="face_detection_yunet_2023mar.onnx",
            sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            size=232589,
            url="https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/0047ac24afb1a50a0c6105001c89d1b5b805dbf1/onnx/yunet_s_640_640.onnx",
            licence="Apache-2.0 (libfacedetection.train)",
        ),
        Asset(
            name="lpd_yunet",
            filename="license_plate_detection_lpd_yunet_2023mar.onnx",
            sha256="6d4978a7b6d25514d5e24811b82bfb511d166bdd8ca3b03aa63c1623d4d039c7",
            size=4146213,
            url="https://raw.githubusercontent.com/roniragilimankhoirul/License-Plate-Detection-with-YuNet/3ced4135a7004ade104d5508f53fe634e457cade/license_plate_detection_lpd_yunet_2023mar.onnx",
            licence="Apache-2.0 (opencv_zoo)",
        ),
    )
}

DEMO_CLIP = Asset(
    name="vtest",
    filename="vtest.avi",
    sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
    size=8131690,
    url="https://deb.debian.org/debian/pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb",
    licence="Apache-2.0 AND BSD-3-Clause (OpenCV sample data; footage PETS 2009)",
    member="./usr/share/doc/opencv-doc/examples/data/vtest.avi",
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lanterne"


def default_models_dir() -> Path | None:
    """`$LANTERNE_MODELS_DIR`, else `../shared/models` beside the working directory or the
    repository, when present. None means: use the cache and fetch."""
    env = os.environ.get("LANTERNE_MODELS_DIR")
    if env:
        return Path(env)
    for base in (Path.cwd(), REPO_ROOT):
        candidate = (base / ".." / "shared" / "models").resolve()
        if candidate.is_dir():
            return candidate
    return None


def default_data_dir() -> Path | None:
    for base in (Path.cwd(), REPO_ROOT):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check(path: Path, asset: Asset) -> Path:
    digest = sha256_file(path)
    if digest != asset.sha256:
        raise ModelError(
            f"{path}: sha256 {digest[:12]}… does not match the expected {asset.sha256[:12]}… for "
            f"{asset.name}; delete the file so that it is fetched again from {asset.url}"
        )
    return path


def _fetch(asset: Asset, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(asset.url, timeout=60) as resp:
            payload = resp.read()
    except OSError as exc:
        raise ModelError(
            f"{asset.name}: not found locally and could not be fetched from {asset.url} ({exc}); "
            f"place {asset.filename} in the models directory (setting models_dir or $LANTERNE_MODELS_DIR)"
        ) from None
    if asset.member is not None:
        payload = _extract_from_deb(payload, asset.member)
    tmp = dest.with_suffix(dest.suffix + ".part")
    tmp.write_bytes(payload)
    try:
        _check(tmp, asset)
    except ModelError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    return dest


def _extract_from_deb(deb: bytes, member: str) -> bytes:
    """A .deb is an `ar` archive holding `data.tar.*`; read it without dpkg so that any OS works."""
    if not deb.startswith(b"!<arch>\n"):
        raise ModelError("demo clip: the downloaded package is not a Debian archive")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = deb[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                f = tar.extractfile(member)
                if f is None:
                    break
                return f.read()
        pos += 60 + size + (size % 2)
    raise ModelError(f"demo clip: {member} not found in the downloaded package")


def resolve(asset: Asset, search: list[Path]) -> Path:
    for d in search:
        candidate = d / asset.filename
        if candidate.is_file():
            return _check(candidate, asset)
    cached = cache_dir() / ("models" if asset.member is None else "data") / asset.filename
    if cached.is_file():
        return _check(cached, asset)
    return _fetch(asset, cached)


def resolve_model(name: str, models_dir: Path | None = None) -> Path:
    """Path of a checked model file. `models_dir` (from the configuration) wins over the default."""
    asset = MODELS.get(name)
    if asset is None:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    search = [d for d in (models_dir, default_models_dir()) if d is not None]
    if models_dir is not None and not models_dir.is_dir():
        raise ModelError(f"models directory {models_dir} does not exist; fix models_dir in the configuration")
    return resolve(asset, search)


def resolve_demo_clip() -> Path:
    """The PETS 2009 clip used by the README's main job."""
    data = default_data_dir()
    return resolve(DEMO_CLIP, [data / "video"] if data else [])
