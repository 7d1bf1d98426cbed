"""DDP on CPU: two processes (gloo) started by lightning's launcher train like one process.

Each rank takes every second cell of the shared per-epoch permutation, so with a per-rank batch
of 32 the two ranks' batches at each step together are exactly the cells of the single-process
batch of 64; the mean-over-cells loss makes DDP's averaged gradient the single-process one. The
predictions then agree up to float rounding (the all-reduce sums in another order). BatchNorm
(per-rank batch statistics) or dropout (per-rank masks) would make them close, not equal, so the
network here has neither.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from scmm.nn import MLP
from scmm.train import TrainingConfig, make_loader, predict, seeded, train
from scmm.train._data import EpochShuffleSampler, RowBatchDataset

_REPO = Path(__file__).resolve().parents[1]
_TIMEOUT_S = 300  # generous: a loaded CI machine imports torch slowly in both processes

# one training per script: lightning's launcher re-runs this file for rank 1
_SCRIPT = """
import sys
import numpy as np
import torch
from scmm.nn import MLP
from scmm.train import TrainingConfig, predict, seeded, train

out, devices, batch_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.normal(size=(256, 12)).astype(np.float32)
W = rng.normal(size=(12, 6)) / np.sqrt(12)
Y = (np.tanh(X @ W) + 0.1 * rng.normal(size=(256, 6))).astype(np.float32)
with seeded(0):
    net = MLP(12, 6, hidden=(24, 12), batchnorm=False)
# 192 training cells: 96 per rank, no padding, 3 full steps of 32 per rank and epoch
config = TrainingConfig(
    max_epochs=4, batch_size=batch_size, loss="mixed", lr=1e-2, validation_fraction=0.25,
    patience=2, swa=False, device="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
)
net, hist = train(net, X, Y, config=config, rng=0)
state = torch.cat([v.flatten() for v in net.state_dict().values()]).numpy()
np.savez(
    f"{out}.rank{hist['global_rank']}.npz", pred=predict(net, X), state=state,
    world_size=hist["world_size"], n_steps=len(hist["lr"]), best_epoch=hist["best_epoch"],
)
"""


def _clean_env() -> dict[str, str]:
    """This environment without cluster/launcher variables (lightning must launch rank 1)."""
    launcher = ("SLURM_", "TORCHELASTIC_", "PL_", "MASTER_", "LOCAL_RANK", "NODE_RANK")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(launcher) and k not in ("RANK", "WORLD_SIZE", "GROUP_RANK")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _run_script(script: Path, *args: str) -> None:
    """Run ``script`` in its own process group; kill the whole group (ranks too) on timeout."""
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"DDP script timed out after {_TIMEOUT_S} s:\n{out[-3000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]


def test_sampler_shards_are_disjoint_and_cover_the_single_process_batches():
    n, per_rank_batch = 101, 8
    single = list(EpochShuffleSampler(n, seed=5))
    shards = []
    for rank in range(2):
        sampler = EpochShuffleSampler(n, seed=5)
        sampler.set_shard(rank, 2)
        shards.append(list(sampler))
    assert len(shards[0]) == len(shards[1]) == 51  # padded with the permutation's first cell
    assert sorted(shards[0][:50] + shards[1][:50]) == sorted(single[:100])
    for step in range(6):  # step k on both ranks = block k of the single-process order
        block = slice(step * per_rank_batch, (step + 1) * per_rank_batch)
        ranks = sorted(shards[0][block] + shards[1][block])
        assert ranks == sorted(single[2 * block.start : 2 * block.stop])
    other_epoch = EpochShuffleSampler(n, seed=5)
    other_epoch.set_epoch(1)
    assert list(other_epoch) != single
    with pytest.raises(ValueError, match="rank=2"):
        EpochShuffleSampler(n, seed=5).set_shard(2, 2)


def test_make_loader_sizes_batches_per_rank():
    ds = RowBatchDataset([np.zeros((65, 3), np.float32)], np.zeros((65, 2), np.float32))
    # 65 cells on 2 ranks: 33 per rank, a last batch of 1 cell would break BatchNorm
    loader = make_loader(ds, 32, shuffle=True, seed=0, world_size=2)
    loader.sampler.set_shard(1, 2)
    assert [len(b[1]) for b in loader] == [32]


@pytest.mark.slow  # 20-40 s: two fresh processes import torch and lightning
def test_ddp_two_cpu_processes_match_one_process(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    _run_script(script, str(tmp_path / "ddp"), "2", "32")
    ranks = [np.load(tmp_path / f"ddp.rank{r}.npz") for r in range(2)]
    assert all(int(r["world_size"]) == 2 for r in ranks)
    # identical weights (and so predictions) on every rank
    np.testing.assert_array_equal(ranks[0]["state"], ranks[1]["state"])
    np.testing.assert_array_equal(ranks[0]["pred"], ranks[1]["pred"])

    # the same fit in this process, one rank with the effective batch of 64
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 12)).astype(np.float32)
    W = rng.normal(size=(12, 6)) / np.sqrt(12)
    Y = (np.tanh(X @ W) + 0.1 * rng.normal(size=(256, 6))).astype(np.float32)
    with seeded(0):
        net = MLP(12, 6, hidden=(24, 12), batchnorm=False)
    config = TrainingConfig(
        max_epochs=4,
        batch_size=64,
        loss="mixed",
        lr=1e-2,
        validation_fraction=0.25,
        patience=2,
        swa=False,
        device="cpu",
    )
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net, hist = train(net, X, Y, config=config, rng=0)
    finally:
        torch.set_num_threads(n)
    assert int(ranks[0]["n_steps"]) == len(hist["lr"])  # each rank ran half the cells per step
    assert int(ranks[0]["best_epoch"]) == hist["best_epoch"]
    ref = predict(net, X)
    assert np.abs(ref).mean() > 0.05  # a non-trivial fit
    # same cells per step, averaged gradients: equal up to the all-reduce's summation order
    np.testing.assert_allclose(ranks[0]["pred"], ref, rtol=1e-4, atol=1e-5)
