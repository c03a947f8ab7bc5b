"""The model inventory (EV-03): each registered model declares its output heads, which match its
file; a model declaring an identity output, or a file that is a known face-recognition or
re-identification model, is never loaded."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from lanterne.core import assets
from lanterne.core.assets import (
    IDENTITY_OUTPUTS,
    KNOWN_IDENTITY_MODELS,
    MODELS,
    OUTPUT_KINDS,
    Asset,
    onnx_outputs,
    resolve,
    resolve_model,
)
from lanterne.core.errors import ModelError


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_declares_the_heads_its_file_has_and_none_identifies(name: str) -> None:
    asset = MODELS[name]
    assert asset.outputs, f"{name} declares no output"
    assert {kind for _, kind in asset.outputs} <= set(OUTPUT_KINDS)
    assert not {kind for _, kind in asset.outputs} & IDENTITY_OUTPUTS
    path = resolve_model(name)  # checks the sha256 and the declared heads against the file
    assert onnx_outputs(path.read_bytes()) == [head for head, _ in asset.outputs]


def test_the_inventory_is_the_closed_list_it_claims() -> None:
    assert not set(OUTPUT_KINDS) & IDENTITY_OUTPUTS
    assert {kind for a in MODELS.values() for _, kind in a.outputs} == set(OUTPUT_KINDS)
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in KNOWN_IDENTITY_MODELS)
    assert not set(KNOWN_IDENTITY_MODELS) & {a.sha256 for a in MODELS.values()}


def _copy(tmp_path: Path, name: str) -> tuple[Asset, Path]:
    src = resolve_model(name)
    shutil.copy(src, tmp_path / src.name)
    return MODELS[name], tmp_path


def test_a_model_declaring_an_identity_output_is_refused(tmp_path: Path) -> None:
    asset, folder = _copy(tmp_path, "yolox_nano")
    embedder = replace(asset, outputs=(("output", "face_embedding"),))
    with pytest.raises(ModelError, match=r"output output is not an allowed output .*\(EV-03\)"):
        resolve(embedder, [folder])
    undeclared = replace(asset, outputs=(("output", "appearance_vector"),))
    with pytest.raises(ModelError, match="not an allowed output"):
        resolve(undeclared, [folder])
    # And a declaration that hides a head of the file is refused too.
    hiding = replace(asset, outputs=())
    with pytest.raises(ModelError, match=r"output heads \['output'\] are not the declared \[\]"):
        resolve(hiding, [folder])
    assert resolve(asset, [folder]) == folder / asset.filename


def test_a_known_recognition_model_is_refused_by_its_hash_whatever_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real SFace and re-ID files (10-107 MB) are not fetched by a test: a stand-in file's
    hash is added to the list, which is what a new entry of the list does."""
    asset = MODELS["yolox_nano"]
    fake = tmp_path / asset.filename
    fake.write_bytes(b"stand-in for face_recognition_sface_2021dec.onnx")
    digest = hashlib.sha256(fake.read_bytes()).hexdigest()
    monkeypatch.setitem(assets.KNOWN_IDENTITY_MODELS, digest, "SFace face recognition (test stand-in)")
    with pytest.raises(ModelError) as err:
        resolve(asset, [tmp_path])
    message = str(err.value)
    assert (
        "is SFace face recognition (test stand-in), a face-recognition or re-identification model" in message
    )
    assert "EV-03" in message and "\n" not in message
    # Without the entry the same file is refused only as a wrong sha256: the list is what names it.
    monkeypatch.delitem(assets.KNOWN_IDENTITY_MODELS, digest)
    with pytest.raises(ModelError, match="does not match the expected"):
        resolve(asset, [tmp_path])
