"""Model files: atomic saves, clear errors on damaged or foreign folders, no pickle."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import scmm
from scmm.models import _persist

from .conftest import make_paired


@pytest.fixture
def saved(tmp_path):
    mdata = make_paired()
    model = scmm.tl.fit_baseline(mdata, "rna", "prot", n_components=5)
    path = tmp_path / "model"
    model.save(path)
    return model, mdata, path


def test_failed_save_keeps_previous_model(saved, monkeypatch):
    model, mdata, path = saved
    before = model.predict(mdata)
    other = scmm.tl.fit_baseline(mdata, "rna", "prot", method="mean")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.numpy.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        other.save(path, overwrite=True)
    np.testing.assert_array_equal(scmm.models.load(path).predict(mdata), before)
    assert [p.name for p in path.parent.iterdir()] == ["model"]  # no temp folder left


def test_killed_save_keeps_previous_model(saved):
    model, mdata, path = saved
    before = model.predict(mdata)
    script = textwrap.dedent(
        f"""
        import pathlib, time, scmm
        from tests_helpers import make_paired
        m = make_paired()
        model = scmm.tl.fit_baseline(m, "rna", "prot", method="mean")
        original = pathlib.Path.write_text
        def slow(self, *a, **k):
            print("writing", flush=True)
            time.sleep(60)
            return original(self, *a, **k)
        pathlib.Path.write_text = slow
        model.save({str(path)!r}, overwrite=True)
        """
    )
    helpers = path.parent / "tests_helpers.py"
    helpers.write_text((scmm_tests_dir() / "conftest.py").read_text())
    with subprocess.Popen(
        [sys.executable, "-c", script], cwd=path.parent, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout.readline().strip() == "writing"  # inside save, mid-write
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            proc.kill()
    loaded = scmm.models.load(path)
    np.testing.assert_array_equal(loaded.predict(mdata), before)


def scmm_tests_dir():
    from pathlib import Path

    return Path(__file__).parent


def test_truncated_or_foreign_folders_are_clear_errors(saved, tmp_path):
    _, _, path = saved
    arrays = path / "arrays.safetensors"
    arrays.write_bytes(arrays.read_bytes()[:50])
    with pytest.raises(ValueError, match="truncated or not a safetensors file"):
        scmm.models.load(path)
    (path / "model.json").write_text('{"format_version": 1, "kind": "base')
    with pytest.raises(ValueError, match="truncated or not JSON"):
        scmm.models.load(path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "weights.pt").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ValueError, match="not an scmm model folder"):
        scmm.models.load(foreign)


def test_future_format_is_refused(saved):
    _, _, path = saved
    doc = json.loads((path / "model.json").read_text())
    doc["format_version"] = _persist.FORMAT_VERSION + 1
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"format 2, but this scmm reads format 1.*upgrade"):
        scmm.models.load(path)


def test_files_are_json_and_safetensors_only(saved):
    _, _, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["arrays.safetensors", "model.json"]
    doc = json.loads((path / "model.json").read_text())
    assert doc["format_version"] == _persist.FORMAT_VERSION and doc["kind"] == "baseline"
    assert doc["source_features"][:2] == ["g0", "g1"]


def test_overwrite_replaces_model_folders_only(saved, tmp_path):
    """`overwrite=True` on a results folder or a file would delete it: refused, kept."""
    model, mdata, path = saved
    results = tmp_path / "results"
    results.mkdir()
    (results / "table.csv").write_text("keep me")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    for target in (results, a_file):
        with pytest.raises(FileExistsError, match="is not an scmm model folder"):
            model.save(target, overwrite=True)
    assert (results / "table.csv").read_text() == a_file.read_text() == "keep me"
    model.save(path, overwrite=True)  # a model folder is replaced
    np.testing.assert_array_equal(scmm.models.load(path).predict(mdata), model.predict(mdata))
