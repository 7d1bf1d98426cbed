"""Training speed and memory of fit_mlp on competition-sized synthetic data, bf16 on and off.

Data: ``benchmarks/synthetic.py`` with the shapes of the 2022 Kaggle competition, CITE
(70,988 cells × 22,050 genes → 140 proteins) and Multiome (105,942 cells × 228,942 peaks →
23,418 genes), cached in ``--cache`` as the same ``.h5ad`` files ``benchmarks/scale.py`` writes
(so neither script regenerates the other's data); missing tasks are generated in parallel
processes at the start, so Multiome's generation overlaps the CITE fits. Each task is
normalised in place (``log_cp10k`` for RNA, TF-IDF for ATAC; proteins are used as they are),
one donor (``d32606``) is held out, and ``scmm.tl.fit_mlp`` (defaults: ``svd+raw`` inputs, 64
SVD components, 300 raw features) trains once per precision (``bf16-mixed`` and ``32-true`` on
CUDA, ``32-true`` on CPU) without writing predictions.

Columns: ``fit s`` is the whole ``fit_mlp`` call (input encoder, training, scoring the held-out
cells); ``SVD s`` the randomized SVD inside it. The SVD of a task is computed by its first fit
and reused by the next ones (same cells, components and seed, hence the same result; a memo
around ``scmm.models._preprocess.fit_svd``), so only the first row of a task pays it. ``train
s`` is ``model.history['time_s']``, the lightning ``Trainer.fit`` (the history keeps no
per-epoch times, so ``s/epoch`` is ``train s / epochs`` and includes the trainer's start and
the first epoch's warm-up: more epochs give a steadier rate); ``cells/s`` is training cells ×
epochs / ``train s``, ``full epoch s`` the training cells at the competition's size (training
cells / fraction) over that rate. Peak GPU memory is ``torch.cuda.max_memory_allocated`` (reset
before each fit), peak RSS the process's resident memory sampled every 50 ms during the fit
(the process total, loaded data included). ``r`` is the mean per-cell Pearson of the held-out
donor: a sanity check (the synthetic targets are predictable), not an accuracy benchmark. Each
finished row is written at once, so a run stopped part-way keeps its rows.

With ``--deepsets``, Multiome also runs ``scmm.tl.fit_deepsets`` per precision on the data
(gene–peak windows from the synthetic annotation), and then **the DeepSets full-shape epoch**:
``--deepsets-steps`` optimiser steps of the network over windows of the competition's shape
(228,942 peaks × 23,418 genes, ~20 peaks per gene; batches of 256 synthetic cells at 3%
open peaks, as ``benchmarks/deepsets_scale.py``) on the device, per precision; the step does
not depend on the number of cells, so ``full epoch s`` is the step time × the steps of one
epoch over the competition's ~70,600 training cells (two of the three donors). Its ``train s``
is the timed steps (the first, a warm-up, excluded); ``fit s``, ``SVD s`` and ``r`` do not
apply. On a GPU the network runs its torch path (on CPU, the fused kernels).

Usage::

    python benchmarks/gpu_check.py --device cpu --small --epochs 1 --deepsets  # CPU smoke (1%)
    python benchmarks/gpu_check.py --task cite                     # CITE at full size

On a CUDA machine (one H100, 16 cores), with the packages its image lacks carried as wheels
and installed first (anndata, mudata, zarr, numcodecs, donfig, google-crc32c,
legacy-api-wrap, natsort, scverse-misc, array-api-compat; pyranges, ncls and sorted_nearest
for ``--deepsets``)::

    PYTHONPATH=$PWD PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py \\
        --multiome-fraction 0.125 --deepsets --out $OUT/gpu_results.md

runs CITE at full size and Multiome at 1/8 of its cells (13,243 cells × 228,942 peaks), bf16
and fp32, three epochs of batch 512 each. Estimated from the 2-core timings in
``benchmarks/SCALE.md``: about 6 minutes, nearly all on the CPU: ~1 min generating both tasks
at once, ~2 min for the CITE SVD, ~2.5 min normalising and the SVD of Multiome at 1/8, and
well under a minute per GPU fit. The GPU columns do not depend on the number of cells (the
batches are the same), so the smaller Multiome loses nothing there; ``full epoch s`` is the
epoch time at the competition's size from the measured rate. ``--multiome-fraction 0.25``
adds ~2 min of SVD (~8-9 min in all); 1/2 or full size does not fit one 10-minute command
next to CITE. ``--deepsets`` adds the windows (~10 s), two ``fit_deepsets`` runs of three
epochs on the 1/8 data (~8,800 training cells: ~35 steps of 256 each) and the full-shape steps
(seconds each on a GPU). The table (with the card's name) is printed and appended to ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import resource
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import scale  # noqa: E402  (its data cache, memory sampler and held-out donor)
import synthetic  # noqa: E402
from scale import SOURCE, TARGET, PeakRSS  # noqa: E402

NORMALIZE = {"rna": "log_cp10k", "atac": "tfidf"}  # proteins: used as generated
GIB = 2**30
KEY = "gpu_check"
DEEPSETS_BATCH = 256  # fit_deepsets' default batch
COLUMNS = (
    "task",
    "cells (train)",
    "model",
    "precision",
    "epochs × batch",
    "fit s",
    "SVD s",
    "train s",
    "s/epoch",
    "cells/s",
    "full epoch s",
    "peak GPU GiB",
    "peak RSS GiB",
    "r",
)


def generate(cache: Path, task: str, fraction: float) -> float:
    """Write the synthetic data of ``task`` unless cached; return the seconds it took."""
    t = time.perf_counter()
    scale._ensure_data(cache, task, fraction)
    return time.perf_counter() - t


class SVDMemo:
    """Stands in for ``scmm.models._preprocess.fit_svd``: computes each SVD once and times it.

    The key is the matrix object, its shape, the number of components and the seed, so a hit
    returns exactly what the call would compute. :meth:`clear` between tasks.
    """

    def __init__(self):
        self.cache: dict = {}
        self.seconds = 0.0  # SVD time since the last `take`
        self.installed = False
        try:
            from scmm.models import _preprocess
        except ImportError:
            return
        self._fit_svd = getattr(_preprocess, "fit_svd", None)
        if self._fit_svd is not None:
            _preprocess.fit_svd = self
            self.installed = True
        else:
            print("scmm.models._preprocess.fit_svd not found: every fit recomputes its SVD")

    def __call__(self, X, n_components, rng=None, **kwargs):
        base = getattr(X, "X", X)  # a RowSubset: the matrix it reads
        key = (id(base), tuple(X.shape), n_components, repr(rng), repr(sorted(kwargs.items())))
        if key not in self.cache:
            t = time.perf_counter()
            self.cache[key] = self._fit_svd(X, n_components, rng, **kwargs)
            self.seconds += time.perf_counter() - t
        return self.cache[key].copy()

    def take(self) -> float:
        s, self.seconds = self.seconds, 0.0
        return s

    def clear(self) -> None:
        self.cache.clear()


def load(paths: dict[str, Path], task: str):
    """Read the cached task into a MuData and normalise it in place."""
    import anndata as ad
    import mudata as md

    import scmm

    mods = {}
    for m, p in paths.items():
        a = ad.read_h5ad(p)
        if m == "prot":
            a.X = a.X.toarray()  # written as CSR by the generator; dense like real proteins
        mods[m] = a
    mdata = md.MuData(mods)
    for m in (SOURCE[task], TARGET[task]):
        if m in NORMALIZE:
            scmm.pp.normalize(mdata, m, method=NORMALIZE[m], keep_counts=False)
    return mdata


def run_fit(fit, mdata, task, *, fraction, precision, args, cuda, mon, memo, model_name) -> dict:
    """One fit with one precision; returns its table row."""
    import torch

    src, tgt = SOURCE[task], TARGET[task]
    mask = scale._train_mask(mdata[src].obs)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    gc.collect()
    mon.reset()
    memo.take()
    t = time.perf_counter()
    model = fit(
        mdata,
        src,
        tgt,
        train=mask,
        write_predictions=False,
        max_epochs=args.epochs,
        training={
            "device": args.device,
            "precision": precision,
            "batch_size": args.batch_size,
            "verbose": False,
            "logger": None,
        },
        key_added=KEY,
        rng=0,
    )
    fit_s = time.perf_counter() - t
    svd_s = memo.take()
    h = model.history
    epochs = len(h["epoch"])
    rate = h["n_train"] * epochs / h["time_s"]
    scores = mdata.uns.pop(KEY)["scores"]
    return {
        "task": task,
        "cells (train)": f"{mdata[src].n_obs:,} ({h['n_train']:,})",
        "model": model_name,
        "precision": precision,
        "epochs × batch": f"{epochs} × {args.batch_size}",
        "fit s": f"{fit_s:.1f}",
        "SVD s": f"{svd_s:.1f}" if svd_s > 0 else "reused",
        "train s": f"{h['time_s']:.1f}",
        "s/epoch": f"{h['time_s'] / max(epochs, 1):.2f}",
        "cells/s": f"{rate:,.0f}",
        "full epoch s": f"{h['n_train'] / fraction / rate:.1f}",
        "peak GPU GiB": f"{torch.cuda.max_memory_allocated() / GIB:.2f}" if cuda else "–",
        "peak RSS GiB": f"{mon.peak / GIB:.2f}",
        "r": f"{float(np.mean(scores['pearson_per_cell'])):.3f}",
    }


def deepsets_full_shape(*, precision: str, steps: int, device: str, cuda: bool, mon) -> dict:
    """``steps`` timed optimiser steps of DeepSets over full-shape windows; the table row."""
    import deepsets_scale
    import torch

    rng = np.random.default_rng(0)
    net = deepsets_scale.full_shape_net(rng).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    batches = [deepsets_scale.random_batch(rng, DEEPSETS_BATCH) for _ in range(steps + 1)]
    bf16 = precision.startswith("bf16")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    mon.reset()
    t = 0.0
    for i, batch in enumerate(batches):  # the first step is a warm-up
        if i == 1:
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
        deepsets_scale.train_step(net, opt, *batch, device=device, bf16=bf16)
    if cuda:
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t
    rate = steps * DEEPSETS_BATCH / train_s
    n_train = round(deepsets_scale.N_CELLS * 2 / 3)
    return {
        "task": "multiome, full-shape windows",
        "cells (train)": f"{deepsets_scale.N_CELLS:,} (~{n_train:,})",
        "model": "deepsets steps",
        "precision": precision,
        "epochs × batch": f"{steps} steps × {DEEPSETS_BATCH}",
        "fit s": "–",
        "SVD s": "–",
        "train s": f"{train_s:.1f}",
        "s/epoch": "–",
        "cells/s": f"{rate:,.0f}",
        "full epoch s": f"{n_train / rate:.1f}",
        "peak GPU GiB": f"{torch.cuda.max_memory_allocated() / GIB:.2f}" if cuda else "–",
        "peak RSS GiB": f"{mon.peak / GIB:.2f}",
        "r": "–",
    }


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=("cite", "multiome", "both"), default="both")
    p.add_argument("--fraction", type=float, default=None, help="share of the cells (1.0)")
    p.add_argument(
        "--multiome-fraction", type=float, default=None, help="Multiome's (default: --fraction)"
    )
    p.add_argument("--small", action="store_true", help="smoke run: --fraction 0.01")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--precision",
        nargs="+",
        default=None,
        help="lightning precisions (default: bf16-mixed 32-true on CUDA, 32-true on CPU)",
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=512, help="fit_mlp's default is 64")
    p.add_argument(
        "--deepsets",
        action="store_true",
        help="Multiome: also one fit_deepsets run per precision (gene-peak windows: pyranges)",
    )
    p.add_argument(
        "--deepsets-steps",
        type=int,
        default=None,
        help="with --deepsets: timed steps of the full-shape DeepSets epoch (default 10, 2 "
        "with --small; 0 skips it)",
    )
    p.add_argument("--cache", default="/tmp/scmm_scale", help="synthetic data (as scale.py)")
    p.add_argument("--out", default=str(HERE / "gpu_results.md"), help="results appended here")
    args = p.parse_args(argv)
    fraction = args.fraction if args.fraction is not None else (0.01 if args.small else 1.0)
    fractions = {
        "cite": fraction,
        "multiome": args.multiome_fraction if args.multiome_fraction is not None else fraction,
    }
    tasks = ("cite", "multiome") if args.task == "both" else (args.task,)
    cache = Path(args.cache)
    command = "python " + shlex.join(sys.argv if argv is None else [__file__, *argv])
    t_start = time.perf_counter()

    # generation first, in processes of their own (before torch is imported)
    missing = [
        t
        for t in tasks
        if not all(p.is_file() for p in scale._cache_paths(cache, t, fractions[t]).values())
    ]
    pool = ProcessPoolExecutor(len(missing), mp_context=get_context("spawn")) if missing else None
    pending = {t: pool.submit(generate, cache, t, fractions[t]) for t in missing}

    import torch

    import scmm

    cuda = torch.cuda.is_available() and args.device != "cpu"
    card = torch.cuda.get_device_name() if cuda else "CPU"
    precisions = args.precision or (["bf16-mixed", "32-true"] if cuda else ["32-true"])
    if cuda:  # context and cuBLAS start-up outside the first timed fit
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.ones(256, 256, device="cuda", dtype=dtype)
            (x @ x).sum().item()
    memo, mon = SVDMemo(), PeakRSS()
    out = Path(args.out)
    before = (
        out.read_text() if out.is_file() else "# GPU check\n\nMade by `benchmarks/gpu_check.py`.\n"
    )
    header = [
        "",
        f"## {card}, {time.strftime('%Y-%m-%d')}",
        "",
        f"`{command}`",
        "",
        f"torch {torch.__version__}, scmm {getattr(scmm, '__version__', '?')}, "
        f"{torch.get_num_threads()} CPU threads; SVD memo "
        f"{'on' if memo.installed else 'off'}; column meanings in the script's docstring.",
        "",
    ]
    notes: list[str] = []
    rows: list[dict] = []

    def write() -> None:
        text = "\n".join([*header, markdown(rows), "", *notes])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(before.rstrip("\n") + "\n" + text + "\n")

    def windows(mdata) -> str:
        """Gene-peak windows for fit_deepsets (as benchmarks/scale.py), once per task."""
        t = time.perf_counter()
        scmm.pp.gene_peak_windows(
            mdata,
            TARGET["multiome"],
            SOURCE["multiome"],
            annotation=synthetic.gene_annotation(rng=0),
            upstream=synthetic.WINDOW,
            downstream=synthetic.WINDOW,
            check_assembly=False,
        )
        return f"- gene-peak windows for fit_deepsets in {time.perf_counter() - t:.0f} s."

    for task in tasks:
        gen_s = pending[task].result() if task in pending else 0.0
        t = time.perf_counter()
        mdata = load(scale._cache_paths(cache, task, fractions[task]), task)
        X = mdata[SOURCE[task]].X
        note = (
            f"- {task} at {fractions[task]:g}: {mdata[SOURCE[task]].n_obs:,} cells × "
            f"{X.shape[1]:,} {SOURCE[task]} features ({X.nnz:,} non-zeros) → "
            f"{mdata[TARGET[task]].n_vars:,} {TARGET[task]}; "
            + (f"generated in {gen_s:.0f} s, " if gen_s else "cached, ")
            + f"loaded and normalised in {time.perf_counter() - t:.0f} s."
        )
        print(note.removeprefix("- "), flush=True)
        notes.append(note)
        models = [("mlp", scmm.tl.fit_mlp)]
        if args.deepsets and task == "multiome":
            models.append(("deepsets", scmm.tl.fit_deepsets))
        for name, fit in models:
            if name == "deepsets":
                notes.append(windows(mdata))
                print(notes[-1].removeprefix("- "), flush=True)
            for precision in precisions:
                row = run_fit(
                    fit,
                    mdata,
                    task,
                    fraction=fractions[task],
                    precision=precision,
                    args=args,
                    cuda=cuda,
                    mon=mon,
                    memo=memo,
                    model_name=name,
                )
                rows.append(row)
                print(" | ".join(f"{c} {row[c]}" for c in COLUMNS), flush=True)
                write()
        memo.clear()
        del mdata, X
        gc.collect()
    steps = args.deepsets_steps if args.deepsets_steps is not None else (2 if args.small else 10)
    if args.deepsets and "multiome" in tasks and steps > 0:
        device = "cuda" if cuda else "cpu"
        for precision in precisions:
            row = deepsets_full_shape(
                precision=precision, steps=steps, device=device, cuda=cuda, mon=mon
            )
            rows.append(row)
            print(" | ".join(f"{c} {row[c]}" for c in COLUMNS), flush=True)
            write()
    mon.close()
    if pool is not None:
        pool.shutdown()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    notes.append(
        f"- whole run {time.perf_counter() - t_start:.0f} s, peak RSS of the process "
        f"{peak:.2f} GiB."
    )
    write()
    print("\n" + "\n".join([*header, markdown(rows), "", *notes]))
    print(f"\nappended to {out}")


if __name__ == "__main__":
    main()
