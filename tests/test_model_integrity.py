"""Model files are tamper-evident: changed bytes and non-finite arrays are refused at load.

Issue 32: 16 overwritten bytes in the middle of ``arrays.safetensors`` used to load and predict
garbage (per-cell Pearson 0.11-0.45 instead of 0.871) without a message.
"""

from __future__ import annotations

import hashlib
import json
import struct
import warnings

import numpy as np
import pytest

import scmm

from .conftest import make_paired


def _fit(kind: str):
    mdata = make_paired()
    if kind == "ridge":
        model = scmm.tl.fit_baseline(mdata, "rna", "prot", method="ridge", n_components=5)
    elif kind == "mlp":
        model = scmm.tl.fit_mlp(
            mdata, "rna", "prot", n_components=5, hidden=[8], max_epochs=2, rng=0
        )
    else:
        model = scmm.tl.fit_ensemble(
            mdata, "rna", "prot", methods=["mean", "ridge"], n_folds=3, train="train", rng=0
        )
    return model, mdata


@pytest.fixture(scope="module", params=["ridge", "mlp", "ensemble"])
def fitted(request):
    return _fit(request.param)


@pytest.fixture
def saved(fitted, tmp_path):
    model, mdata = fitted
    path = tmp_path / "model"
    model.save(path)
    return model, mdata, path


def _array_files(path):
    """Every array file of the model folder (an ensemble's members included)."""
    files = sorted(path.rglob("arrays.safetensors"))
    assert files
    return files


def _data_start(file) -> int:
    """Offset of the first tensor byte: after the 8-byte header length and the JSON header."""
    (header_len,) = struct.unpack("<Q", file.read_bytes()[:8])
    return 8 + header_len


def _flip(file, offset: int, n: int = 16) -> None:
    data = bytearray(file.read_bytes())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xFF
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["file_start", "data_start", "middle", "end"])
def test_flipped_bytes_refused_naming_the_file(saved, where):
    _, _, path = saved
    for file in _array_files(path):
        original = file.read_bytes()
        size, start = len(original), _data_start(file)
        offset = {
            "file_start": 0,
            "data_start": start,
            "middle": start + (size - start) // 2,
            "end": size - 16,
        }[where]
        _flip(file, offset)
        with pytest.raises(ValueError, match=r"re-save or re-fit") as err:
            scmm.models.load(path)
        assert str(file.relative_to(path)) in str(err.value)
        file.write_bytes(original)
    scmm.models.load(path)  # restored: loads again


def test_changed_member_metadata_refused(tmp_path):
    model, _ = _fit("ensemble")
    path = tmp_path / "ensemble"
    model.save(path)
    members = sorted(path.glob("members/*/model.json"))
    doc = json.loads(members[0].read_text())
    doc["params"]["alpha"] = 1e9
    members[0].write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"members/0_0/model.json.*re-save or re-fit"):
        scmm.models.load(path)


def test_truncation_still_refused(saved):
    _, _, path = saved
    for file in _array_files(path):
        original = file.read_bytes()
        for keep in (len(original) - 4, _data_start(file) + 1, 50):
            file.write_bytes(original[:keep])
            with pytest.raises(ValueError, match=r"truncated.*re-save or re-fit"):
                scmm.models.load(path)
        file.write_bytes(original)


def test_unmodified_save_load_predicts_identically(saved):
    model, mdata, path = saved
    loaded = scmm.models.load(path)
    np.testing.assert_array_equal(loaded.predict(mdata), model.predict(mdata))
    doc = json.loads((path / "model.json").read_text())
    assert "arrays.safetensors" in doc["checksums"]
    assert set(doc["checksums"]) == {
        p.relative_to(path).as_posix()
        for p in path.rglob("*")
        if p.is_file() and p != path / "model.json"
    }


def _rewrite_with_nan(path) -> None:
    """Put a NaN into the first float array, keeping the recorded checksum consistent."""
    from safetensors.numpy import load_file, save_file

    file = path / "arrays.safetensors"
    arrays = load_file(str(file))
    name = next(k for k, v in arrays.items() if np.issubdtype(v.dtype, np.floating) and v.size)
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = np.nan
    save_file(arrays, str(file))
    doc = json.loads((path / "model.json").read_text())
    doc["checksums"]["arrays.safetensors"] = hashlib.sha256(file.read_bytes()).hexdigest()
    (path / "model.json").write_text(json.dumps(doc))


def test_non_finite_arrays_refused_at_load(saved):
    _, _, path = saved
    _rewrite_with_nan(path)
    with pytest.raises(ValueError, match=r"non-finite value.*re-save or re-fit"):
        scmm.models.load(path)


def test_non_finite_weights_refused_at_save(tmp_path):
    model, _ = _fit("mlp")
    with __import__("torch").no_grad():
        next(model.net.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match=r"non-finite value.*re-fit"):
        model.save(tmp_path / "nan")
    assert not (tmp_path / "nan").exists()


def _drop_checksums(path) -> None:
    """Make ``path`` look like a folder saved before checksums were recorded."""
    for meta in path.rglob("model.json"):
        doc = json.loads(meta.read_text())
        del doc["checksums"]
        meta.write_text(json.dumps(doc))


def test_models_saved_before_checksums_load_with_one_warning(saved):
    model, mdata, path = saved
    _drop_checksums(path)
    with pytest.warns(UserWarning, match=r"before model files recorded checksums") as record:
        loaded = scmm.models.load(path)
    assert len(record) == 1  # one warning, not one per ensemble member
    np.testing.assert_array_equal(loaded.predict(mdata), model.predict(mdata))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scmm.models.load(path)  # once per folder
