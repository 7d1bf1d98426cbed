"""Training speed of ``fit_mlp``'s network against this machine's float32 matmul rate.

    python benchmarks/speed.py            # prints a Markdown table

The matmul rate is the best of several ``torch.mm`` calls on square float32 matrices; the
training rate counts the forward and backward FLOPs of the MLP's linear layers
(6 · batch · Σ in·out per step) over lightning-driven training steps of
:func:`scmm.train.train` on synthetic dense inputs. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from scmm.nn import MLP
from scmm.train import TrainingConfig, seeded, train


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def training_gflops(width: int, batch: int, *, n_in: int = 64, n_out: int = 140, depth: int = 4):
    n_cells = batch * 20
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_cells, n_in)).astype(np.float32)
    Y = rng.normal(size=(n_cells, n_out)).astype(np.float32)
    hidden = (width,) * depth
    with seeded(0):
        net = MLP(n_in, n_out, hidden, skip="none")
    sizes = [n_in, *hidden]
    flops_per_step = 6 * batch * (sum(a * b for a, b in itertools.pairwise(sizes)) + width * n_out)
    config = TrainingConfig(
        max_epochs=3, batch_size=batch, swa=False, loss="mse", device="cpu", logger=None
    )
    _, history = train(net, X, Y, config=config, rng=0)
    steps = history["steps_per_epoch"] * len(history["epoch"])
    return flops_per_step * steps / history["time_s"] / 1e9, history["time_s"] / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_gflops()
    print(f"torch float32 matmul (2048², {args.threads} threads): {peak:.1f} GFLOP/s\n")
    print("| width | batch | ms / step | achieved GFLOP/s | share of matmul rate |")
    print("|---|---|---|---|---|")
    for width, batch in [(512, 512), (1024, 512), (1024, 1024), (2048, 1024)]:
        rate, step = training_gflops(width, batch)
        print(f"| {width} | {batch} | {step * 1e3:.1f} | {rate:.1f} | {rate / peak:.0%} |")


if __name__ == "__main__":
    main()
