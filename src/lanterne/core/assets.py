"""Model and demo-asset registry: each file with its sha256 and its public origin.

Files are looked up in a models directory and checked by sha256 before use; a file that fails
the check is never loaded (a swapped model would change what the system signals without anyone
deciding it). When no directory holds the file, it is fetched once from its public origin into
the user cache and checked the same way. A derived file (`derived_from`) has no origin of its own:
it is made here from its checked parent, byte for byte as published in shared/models, and
checked by the same sha256.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.request
from collections.abc import Callable, Iterator
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
    derived_from: str | None = None
    """Name of the registered model this file is made from by `DERIVATIONS[name]`; `url` is then
    the parent's origin."""
    outputs: tuple[tuple[str, str], ...] = ()
    """The model inventory (EV-03): each output head of the ONNX graph, by name, with what it
    yields (`OUTPUT_KINDS`). `_check` compares the names with the file's graph, so a file whose
    heads differ from what is declared here is refused like one with the wrong sha256."""


OUTPUT_KINDS: dict[str, str] = {
    "coco_boxes": "boxes and scores of the 80 COCO classes (person, bicycle, car, bag, …)",
    "face_boxes_to_blur": "face boxes and scores, used only to blur faces (anonymisation)",
    "face_keypoints_discarded": "5 face keypoints per box, decoded by OpenCV with the box and discarded",
    "plate_boxes_to_blur": "licence-plate corners and scores, used only to blur plates (anonymisation)",
}
"""What a registered model may output. Nothing here identifies, re-identifies or describes a person."""

IDENTITY_OUTPUTS: frozenset[str] = frozenset(
    {"embedding", "face_embedding", "reid", "reid_embedding", "face_identity", "gait", "attributes"}
)
"""Output kinds a model may never have (loi 2023-380 art. 10, décret 2023-828 art. 2: no biometric
data): a model declaring one is refused before its file is even read."""

KNOWN_IDENTITY_MODELS: dict[str, str] = {
    "f6abbfff9575e3041db692c1e29d782e995191888477fd59ebc81202d99fc63b": "SFace face recognition (opencv_zoo face_recognition_sface_2021dec.onnx)",
    "2b0e941e6f16cc048c20aee0c8e31f569118f65d702914540f7bfdc14048d78a": "SFace face recognition, int8 (opencv_zoo face_recognition_sface_2021dec_int8.onnx)",
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee": "SFace face recognition, int8bq (opencv_zoo face_recognition_sface_2021dec_int8bq.onnx)",
    "a9279be00242f4240ba4de7b6b93837fdd5a17b98d2f278f63711d55b65b4312": "SFace face recognition (opencv_zoo face_recognition_sface.onnx)",
    "0579683334d4b9440221606dcb461656dd0dc64143b18f48faedaced9b4f580d": "Youtu person re-identification (opencv_zoo person_reid_youtu_2021nov.onnx)",
    "756e85946fe83d8269c8543f7b46290c87a43477758b08097cbcae7c4d654132": "Youtu person re-identification, fp16 (opencv_zoo person_reid_youtu_2021nov_fp16.onnx)",
    "4757c4cb759b79030a9870abf29c064c2ee51e079a05700690800c81b16cf245": "Youtu person re-identification, int8 (opencv_zoo person_reid_youtu_2021nov_int8.onnx)",
    "2b88597426335e6cd625119bdda090f9d3497bc80ba5b8a8910f65b8ccc09471": "Youtu person re-identification, int8bq (opencv_zoo person_reid_youtu_2021nov_int8bq.onnx)",
}
"""sha256 of published face-recognition and re-identification models (from the git-LFS pointers
of opencv_zoo), refused by name wherever one turns up in place of a registered file (EV-03,
legal-requirements: "a list of known face/re-ID model hashes is checked against deployed
artifacts"). A list cannot be complete: the declared outputs and the sha256 pinning of every
registered file are the general rule, this names the commonest files outright."""

_YUNET_OUTPUTS = tuple(
    (f"{head}_{stride}", "face_keypoints_discarded" if head == "kps" else "face_boxes_to_blur")
    for head in ("cls", "obj", "bbox", "kps")
    for stride in (8, 16, 32)
)


_YOLOX_NANO_URL = "https://raw.githubusercontent.com/opencv/opencv_zoo/2fd35e06a493624a4de247c6e251ef666395890a/models/object_detection_yolox/yolox_nano.onnx"


MODELS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="yolox_nano",
            filename="yolox_nano.onnx",
            sha256="c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d",
            size=3659407,
            url=_YOLOX_NANO_URL,
            licence="Apache-2.0 (YOLOX, Megvii)",
            outputs=(("output", "coco_boxes"),),
        ),
        Asset(
            name="yolox_nano_dynamic",
            filename="yolox_nano_dynamic.onnx",
            sha256="d22742be874176f9fd412b6c7c45ce733e2d1a1c904cfcef6b91b024c2accc29",
            size=3647711,
            url=_YOLOX_NANO_URL,
            licence="Apache-2.0 (YOLOX, Megvii; derivative: input and output dims made symbolic)",
            derived_from="yolox_nano",
            outputs=(("output", "coco_boxes"),),
        ),
        Asset(
            name="yunet",
            filename="face_detection_yunet_2023mar.onnx",
            sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            size=232589,
            url="https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/0047ac24afb1a50a0c6105001c89d1b5b805dbf1/onnx/yunet_s_640_640.onnx",
            licence="Apache-2.0 (libfacedetection.train)",
            outputs=_YUNET_OUTPUTS,
        ),
        Asset(
            name="lpd_yunet",
            filename="license_plate_detection_lpd_yunet_2023mar.onnx",
            sha256="6d4978a7b6d25514d5e24811b82bfb511d166bdd8ca3b03aa63c1623d4d039c7",
            size=4146213,
            url="https://raw.githubusercontent.com/roniragilimankhoirul/License-Plate-Detection-with-YuNet/3ced4135a7004ade104d5508f53fe634e457cade/license_plate_detection_lpd_yunet_2023mar.onnx",
            licence="Apache-2.0 (opencv_zoo)",
            outputs=(
                ("loc", "plate_boxes_to_blur"),
                ("conf", "plate_boxes_to_blur"),
                ("iou", "plate_boxes_to_blur"),
            ),
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


DETECTOR_FILES: dict[tuple[str, int, str], str] = {
    ("yolox_nano", 416, "square"): "yolox_nano",
    ("yolox_nano", 320, "square"): "yolox_nano_dynamic",
    ("yolox_nano", 416, "frame"): "yolox_nano_dynamic",
    ("yolox_nano", 320, "frame"): "yolox_nano_dynamic",
}
"""Registered file for each `detector.model`, `detector.input_size` and `detector.input_shape`.
The published YOLOX-Nano declares a fixed 416x416 input, which onnxruntime enforces; the same
graph with open dims runs at 320 and at the frame's own aspect (416x256 for a 640x360 frame)."""


def detector_file(model: str, input_size: int, input_shape: str) -> str:
    """The registry name of the file a detector configuration loads: the name in audit records
    and in the transparency page, since it is that file's sha256 that says what ran.

    >>> detector_file("yolox_nano", 320, "square")
    'yolox_nano_dynamic'
    >>> detector_file("yolox_nano", 416, "frame")
    'yolox_nano_dynamic'
    """
    try:
        return DETECTOR_FILES[(model, input_size, input_shape)]
    except KeyError:
        known = sorted({(size, shape) for m, size, shape in DETECTOR_FILES if m == model})
        raise ModelError(
            f"{model} has no model file for input size {input_size}, shape {input_shape!r}; "
            f"use one of (size, shape): {known}"
        ) from None


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


def refuse_identity_model(path: Path, asset: Asset, digest: str) -> None:
    """EV-03: never load a model that outputs identity-bearing features. Refused: an asset
    declaring such an output, and a file whose sha256 is a known face-recognition or
    re-identification model, whatever it is named."""
    banned = [name for name, kind in asset.outputs if kind in IDENTITY_OUTPUTS or kind not in OUTPUT_KINDS]
    if banned:
        raise ModelError(
            f"{asset.name}: output {', '.join(banned)} is not an allowed output "
            f"({', '.join(sorted(OUTPUT_KINDS))}); identity features are never computed (EV-03): remove the model"
        )
    known = KNOWN_IDENTITY_MODELS.get(digest)
    if known is not None:
        raise ModelError(
            f"{path}: sha256 {digest[:12]}… is {known}, a face-recognition or re-identification model "
            "that Lanterne never loads (EV-03); delete the file"
        )


def onnx_outputs(model: bytes) -> list[str]:
    """Names of an ONNX graph's outputs, read from the protocol buffer (no `onnx` package)."""
    graph = next((p for n, _, p in _fields(model) if n == _MODEL_GRAPH), b"")
    return [
        next((p.decode() for n, _, p in _fields(value_info) if n == 1), "")
        for n, _, value_info in _fields(graph)
        if n == _GRAPH_OUTPUT
    ]


def _check(path: Path, asset: Asset) -> Path:
    digest = sha256_file(path)
    refuse_identity_model(path, asset, digest)
    if digest != asset.sha256:
        again = (
            f"derived again from {MODELS[asset.derived_from].filename}"
            if asset.derived_from is not None
            else f"fetched again from {asset.url}"
        )
        raise ModelError(
            f"{path}: sha256 {digest[:12]}… does not match the expected {asset.sha256[:12]}… for "
            f"{asset.name}; delete the file so that it is {again}"
        )
    if asset.filename.endswith(".onnx"):
        # The inventory must say what the file really outputs: an asset declared with other
        # heads than its graph's is a wrong declaration, refused before anyone relies on it.
        heads = onnx_outputs(path.read_bytes())
        declared = [name for name, _ in asset.outputs]
        if heads != declared:
            raise ModelError(
                f"{path}: output heads {heads} are not the declared {declared} of {asset.name} (EV-03); "
                "declare each head in lanterne.core.assets"
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
    if asset.derived_from is not None:
        return _derive(asset, cached, search)
    return _fetch(asset, cached)


# -- derived models --------------------------------------------------------------------------
# ONNX files are protocol buffers. Opening two declared shapes needs only the wire format, so
# the `onnx` package (31 MB) stays out of the runtime; the sha256 check on the result proves the
# edit produced exactly the published file.

_MODEL_GRAPH, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 7, 11, 12, 13
"""Field numbers in onnx.proto: ModelProto.graph, GraphProto.input/output/value_info."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _fields(buf: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(field number, the field's bytes as stored, payload of a length-delimited field)."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        payload = b""
        match key & 7:
            case 0:
                _, pos = _varint(buf, pos)
            case 1:
                pos += 8
            case 5:
                pos += 4
            case 2:
                n, pos = _varint(buf, pos)
                payload = buf[pos : pos + n]
                pos += n
            case wire:
                raise ModelError(f"model file: unsupported protobuf wire type {wire}")
        yield key >> 3, buf[start:pos], payload


def _field(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def _replace(buf: bytes, num: int, edit: Callable[[bytes], bytes]) -> bytes:
    """`buf` with each length-delimited field `num` passed through `edit`; other bytes kept."""
    return b"".join(_field(n, edit(p)) if n == num else raw for n, raw, p in _fields(buf))


def _with_dims(value_info: bytes, dims: dict[str, list[int | str]]) -> bytes:
    """A ValueInfoProto whose tensor shape is `dims[name]` (a str is a symbolic dim)."""
    name = next((p.decode() for n, _, p in _fields(value_info) if n == 1), None)
    if name not in dims:
        return value_info
    # TensorShapeProto.dim (1) of Dimension: dim_value (1, varint) or dim_param (2, string).
    shape = b"".join(
        _field(1, _enc_varint(1 << 3) + _enc_varint(d) if isinstance(d, int) else _field(2, d.encode()))
        for d in dims[name]
    )
    # ValueInfoProto.type (2) -> TypeProto.tensor_type (1) -> Tensor.shape (2).
    return _replace(
        value_info, 2, lambda t: _replace(t, 1, lambda tensor: _replace(tensor, 2, lambda _: shape))
    )


def open_dims(model: bytes, dims: dict[str, list[int | str]]) -> bytes:
    """What `onnx.tools.update_model_dims.update_inputs_outputs_dims(model, ...)` followed by
    clearing `graph.value_info` writes: the graph unchanged, the named inputs' and outputs'
    declared shapes replaced, the intermediate shapes (inferred at the old size) dropped."""

    def graph(buf: bytes) -> bytes:
        return b"".join(
            _field(n, _with_dims(p, dims)) if n in (_GRAPH_INPUT, _GRAPH_OUTPUT) else raw
            for n, raw, p in _fields(buf)
            if n != _GRAPH_VALUE_INFO
        )

    return _replace(model, _MODEL_GRAPH, graph)


DERIVATIONS: dict[str, Callable[[bytes], bytes]] = {
    "yolox_nano_dynamic": lambda onnx: open_dims(onnx, {"images": [1, 3, "H", "W"], "output": [1, "N", 85]}),
}
"""How each derived file is made from its parent's bytes (shared/models/SOURCES.md)."""


def _derive(asset: Asset, dest: Path, search: list[Path]) -> Path:
    assert asset.derived_from is not None
    parent = resolve(MODELS[asset.derived_from], search)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    tmp.write_bytes(DERIVATIONS[asset.name](parent.read_bytes()))
    try:
        _check(tmp, asset)
    except ModelError:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"{asset.name}: deriving {asset.filename} from {parent} did not give the published file "
            f"(sha256 {asset.sha256[:12]}…); place a checked {asset.filename} in the models directory"
        ) from None
    tmp.replace(dest)
    return dest


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
