"""Training speed of ``fit_mlp``'s network against this machine's float32 matmul rate.

    python benchmarks/speed.py            # prints a Markdown table

The matmul rate is the best of several ``torch.mm`` calls on square float32 matrices; the
training rate counts the forward and backward FLOPs of the MLP's linear layers
(6 · batch · Σ in·out per step) over lightning-driven training steps of
:func:`scmm.train.train` on synthetic dense inputs. Two rates: *steady*, the median time from
one step's start to the next (data loading, forward, backward, optimiser step and lightning's
hooks) after the first epoch; *whole fit*, the fit's wall time over all its steps (including
lightning's start-up and the first epoch). A plain torch loop over the same network (no data
loading, no lightning) gives the floor. Each size runs ``--repeats`` times (median reported:
single runs on a shared 2-core machine vary by ±30%). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

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


class StepTimer(Callback):
    """Time between consecutive training-step starts within an epoch, after the first epoch."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last: float | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None and trainer.current_epoch >= 1:
            self.times.append(now - self._last)
        self._last = now


def plain_loop_seconds(net, X, Y, batch: int, steps: int = 20) -> float:
    """Median seconds per step of a bare torch loop (AdamW, MSE) over the same network."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    xb, yb = torch.from_numpy(X[:batch]), torch.from_numpy(Y[:batch])
    times = []
    for _ in range(steps + 3):
        t = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(xb), yb).backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return float(np.median(times[3:]))


def step_seconds(width: int, batch: int, *, n_in: int = 64, n_out: int = 140, depth: int = 4):
    """Return the FLOPs of one training step and its seconds: steady, whole fit, plain loop."""
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
    timer = StepTimer()
    _, history = train(net, X, Y, config=config, rng=0, callbacks=[timer])
    steps = history["steps_per_epoch"] * len(history["epoch"])
    seconds = {
        "steady": float(np.median(timer.times)),
        "whole fit": history["time_s"] / steps,
        "plain loop": plain_loop_seconds(net.train(), X, Y, batch),
    }
    return flops_per_step, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per size; the median is reported"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_gflops()
    print(f"torch float32 matmul (2048², {args.threads} threads): {peak:.1f} GFLOP/s\n")
    print("| width | batch | measure | ms / step | achieved GFLOP/s | share of matmul rate |")
    print("|---|---|---|---|---|---|")
    for width, batch in [(512, 512), (1024, 512), (1024, 1024), (2048, 1024)]:
        runs = [step_seconds(width, batch) for _ in range(args.repeats)]
        flops = runs[0][0]
        for measure in runs[0][1]:
            step = float(np.median([seconds[measure] for _, seconds in runs]))
            rate = flops / step / 1e9
            print(
                f"| {width} | {batch} | {measure} | {step * 1e3:.1f} | {rate:.1f} "
                f"| {rate / peak:.0%} |"
            )


if __name__ == "__main__":
    main()
