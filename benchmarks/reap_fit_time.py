"""Fit seconds of ``fit_mlp`` and ridge on the whole REAP-seq reference (both runs), at defaults.

Usage: ``python benchmarks/reap_fit_time.py`` (``SCMM_DATA_DIR`` pointing at the data); prints
the load time, the shapes and each fit's wall seconds. Run it alone on the machine.
"""

import time
import warnings

import numpy as np
import torch

import scmm


def main() -> None:
    warnings.simplefilter("ignore")
    scmm.settings.verbose = False
    start = time.perf_counter()
    mdata = scmm.datasets.reapseq_pbmc()
    keep = np.asarray(mdata["prot"].X.sum(axis=1)).ravel() > 0
    mdata = mdata[keep].copy()
    print(
        f"load {time.perf_counter() - start:.1f} s, RNA {mdata['rna'].shape}, proteins "
        f"{mdata['prot'].shape}, torch threads {torch.get_num_threads()}",
        flush=True,
    )
    scmm.pp.normalize(mdata, "rna", method="log_cp10k")
    scmm.pp.normalize(mdata, "prot", method="clr")
    fits = {
        "ridge": lambda: scmm.tl.fit_baseline(
            mdata, "rna", "prot", method="ridge", rng=0, write_predictions=False
        ),
        "mlp": lambda: scmm.tl.fit_mlp(mdata, "rna", "prot", rng=0, write_predictions=False),
    }
    for name, fit in fits.items():
        start = time.perf_counter()
        model = fit()
        seconds = time.perf_counter() - start
        history = getattr(model, "history", None) or {}
        loop = f" (training loop {history['time_s']:.1f} s)" if "time_s" in history else ""
        print(f"{name}: {seconds:.1f} s{loop}", flush=True)


if __name__ == "__main__":
    main()
