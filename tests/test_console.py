"""A quiet, correct console: no lightning tips or device hints, epochs counted as set, and
messages that name columns and batches plainly."""

from __future__ import annotations

import numpy as np
import pytest

import scmm

from .conftest import make_paired


def test_verbose_training_shows_epochs_as_set_and_no_lightning_chatter(capfd, tmp_path):
    m = make_paired()
    scmm.tl.fit_mlp(
        m,
        "rna",
        "prot",
        hidden=[8],
        n_components=4,
        max_epochs=2,
        training={
            "swa": True,  # with BatchNorm: lightning adds a pass to update its statistics
            "verbose": True,
            "log_dir": str(tmp_path),
            "checkpoint_dir": str(tmp_path / "ckpt"),
        },
        rng=0,
    )
    out, err = capfd.readouterr()
    text = (out + err).replace("\r", "\n")
    assert "Epoch 2/2" in text
    assert "Epoch 3" not in text and "Epoch 0" not in text
    assert "SWA: BatchNorm statistics" in text
    for chatter in ("Tip", "GPU available", "TPU available", "max_epochs="):
        assert chatter not in text, chatter


def test_quiet_training_prints_nothing(capfd):
    m = make_paired()
    scmm.tl.fit_mlp(
        m,
        "rna",
        "prot",
        hidden=[8],
        n_components=4,
        max_epochs=1,
        training={"verbose": False},
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_unknown_train_column_lists_mudata_and_modality_columns():
    m = make_paired()
    m["rna"].obs["donor"] = "d1"
    with pytest.raises(
        KeyError, match=r"`mdata.obs` has: 'train'.*`mdata\['rna'\].obs` has: 'donor'"
    ):
        scmm.tl.fit_baseline(m, "rna", "prot", train="is_train")


def test_batch_names_print_as_plain_strings():
    m = make_paired()
    m.obs["batch"] = np.array(["s1d1", "s1d2"] * (m.n_obs // 2), dtype=object)
    m.obs["batch"] = m.obs["batch"].to_numpy().astype(np.str_)
    with pytest.raises(ValueError, match=r"\(has: \['s1d1', 's1d2'\]\)") as err:
        scmm.pp.split_cells(m, test_batches=["s9"])
    assert "np.str_" not in str(err.value)
    with pytest.raises(KeyError, match=r"`mdata.obs` has: .*'batch'") as err:
        scmm.pp.split_cells(m, test_batches=["s1d1"], batch_key="donor")
