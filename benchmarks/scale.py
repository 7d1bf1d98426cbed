"""Wall time and peak memory of each pipeline stage on competition-size synthetic data.

For CITE (70,988 cells × 22,050 genes → 140 proteins) and Multiome (105,942 cells × 228,942
peaks → 23,418 genes) at 1/8, 1/4, 1/2 and 1 of the cells, each size runs in its own
subprocess and reports, per stage (load, normalise, SVD, fit_baseline ridge, fit_mlp one
epoch, predict), the wall time, the
CPU time and the peak resident memory of the process during the stage (psutil, sampled every
20 ms; the whole-run peak from ``getrusage``). The growth exponent is the log-log slope of
time against cells. The pipeline is the one for data of this size (docs: "Competition-size
data"): counts normalised in place (``keep_counts=False``), fits with
``write_predictions=False`` that score the held-out donor, and a predict stage for that
donor's cells as new cells. The naive path (densify the input, then normalise, SVD and ridge
on the dense matrix, as the original code did) runs at a small size to give the memory ratio.
With ``--deepsets``, Multiome sizes run ``fit_deepsets`` on their own instead (load, normalise,
gene–peak windows, one epoch that scores the held-out donor): one epoch of it costs more than
the rest of the pipeline together.

    python benchmarks/scale.py --quick                 # 1/8 of each task
    python benchmarks/scale.py --task cite             # 4 sizes of CITE
    python benchmarks/scale.py --task multiome --fractions 0.125 --deepsets
    python benchmarks/scale.py --report                # tables from saved results only

Synthetic data are generated once per size into ``--cache`` (h5ad, streamed block-wise) and
results kept in ``--results`` (one JSON per run), so sizes can run in the background and the
Markdown tables (printed and written to ``benchmarks/SCALE.md``) collect whatever finished.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FRACTIONS = (0.125, 0.25, 0.5, 1.0)
SOURCE = {"cite": "rna", "multiome": "atac"}
TARGET = {"cite": "prot", "multiome": "rna"}
N_CELLS = {"cite": 70_988, "multiome": 105_942}
GIB = 2**30


class PeakRSS:
    """Peak resident memory of this process per stage, sampled by a thread."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = self.proc.memory_info().rss
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def reset(self) -> None:
        self.peak = self.proc.memory_info().rss

    def close(self) -> None:
        self._stop = True


def _cache_paths(cache: Path, task: str, fraction: float) -> dict[str, Path]:
    mods = ("rna", "prot") if task == "cite" else ("atac", "rna")
    return {m: cache / f"{task}_{fraction:g}_{m}.h5ad" for m in mods}


def _ensure_data(cache: Path, task: str, fraction: float) -> dict[str, Path]:
    sys.path.insert(0, str(HERE))
    import synthetic

    paths = _cache_paths(cache, task, fraction)
    if not all(p.is_file() for p in paths.values()):
        cache.mkdir(parents=True, exist_ok=True)
        tmp = {m: p.with_suffix(".tmp") for m, p in paths.items()}
        t = time.perf_counter()
        synthetic.write_h5ad(tmp, task, fraction, rng=0)
        for m, p in tmp.items():
            p.replace(paths[m])
        print(f"generated {task} {fraction:g} in {time.perf_counter() - t:.0f} s", flush=True)
    return paths


def _train_mask(obs) -> np.ndarray:
    """Hold out one donor (the competition's split is by donor and day)."""
    return (obs["donor"].astype(str) != "d32606").to_numpy()


def worker(
    task: str,
    fraction: float,
    cache: Path,
    *,
    naive: bool,
    backed: bool,
    deepsets: bool,
    reference: bool = False,
    defaults: bool = False,
    partial: Path | None = None,
) -> dict:
    """Run the stages in this process and return timings and peaks.

    After each stage, the stages so far are written to ``partial`` (JSON), so a run killed
    later (e.g. out of memory) keeps its numbers.
    """
    import warnings

    warnings.filterwarnings("ignore")
    paths = _ensure_data(cache, task, fraction)
    import anndata as ad
    import mudata as md
    import muon  # noqa: F401  (imported here so no stage pays for the imports)
    import scanpy  # noqa: F401
    import scipy.sparse as sp

    import scmm

    src, tgt = SOURCE[task], TARGET[task]
    mon = PeakRSS()
    stages: dict[str, dict] = {}

    def cpu() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    def stage(name, fn):
        mon.reset()
        t, c = time.perf_counter(), cpu()
        out = fn()
        stages[name] = {
            "s": time.perf_counter() - t,
            "cpu_s": cpu() - c,
            "peak_gib": mon.peak / GIB,
        }
        print(
            f"  {task} {fraction:g} {name}: {stages[name]['s']:.1f} s, "
            f"{stages[name]['peak_gib']:.2f} GiB",
            flush=True,
        )
        if partial is not None:
            partial.write_text(json.dumps({"task": task, "fraction": fraction, "stages": stages}))
        return out

    def load():
        mods = {}
        for m, p in paths.items():
            a = ad.read_h5ad(p, backed="r" if backed and m == src else None)
            if m == "prot":
                a.X = a.X.toarray()
            mods[m] = a
        return md.MuData(mods)

    mdata = stage("load", load)
    # a held-out donor; the backed run trains on all cells, since `X[train]` of a backed
    # matrix is loaded into memory by the fit contract
    mask = None if backed else _train_mask(mdata[src].obs)
    n_cells, nnz = mdata[src].n_obs, None
    if naive:

        def densify():
            X = mdata[src].X
            mdata.mod[src].X = X.toarray()  # the original code's dense inputs

        stage("densify", densify)
    if not backed:

        def normalise():  # in place: the counts are not kept (a second copy of the matrix)
            method = "log_cp10k" if src == "rna" else "tfidf"
            keep = {} if defaults else {"keep_counts": naive}  # defaults: counts kept
            scmm.pp.normalize(mdata, src, method=method, **keep)
            if task == "multiome":
                keep = {} if defaults else {"keep_counts": False}
                scmm.pp.normalize(mdata, tgt, method="log_cp10k", **keep)

        stage("normalise", normalise)
        X = mdata[src].X
        nnz = int(X.nnz) if sp.issparse(X) else int(np.count_nonzero(X))
        if naive:  # dense inputs keep the dense path: no counts layer copy is held by sklearn
            mdata[src].layers.pop("counts", None)
    # predictions for every cell are not written (9.9 GB for Multiome at full size): the fits
    # score the held-out donor, and the predict stage predicts its cells
    lean = {"write_predictions": False, "train": mask, "rng": 0}
    # defaults: no memory options (write_predictions=True: memory up to the budget, else disk)
    lean = {"train": mask, "rng": 0} if defaults else lean
    sizes = {} if defaults else {"n_components": 64}
    if deepsets:
        import synthetic

        from scmm.nn import DeepSetsNet

        DeepSetsNet.fused_rho = not reference  # the torch path: the code before the kernels

        def windows():
            scmm.pp.gene_peak_windows(
                mdata,
                tgt,
                src,
                annotation=synthetic.gene_annotation(rng=0),
                upstream=synthetic.WINDOW,
                downstream=synthetic.WINDOW,
                check_assembly=False,
            )

        stage("windows", windows)
        model = stage(
            "fit_deepsets 1 epoch",
            lambda: scmm.tl.fit_deepsets(
                mdata,
                src,
                tgt,
                max_epochs=1,
                training={"verbose": False, "logger": None},
                **lean,
            ),
        )
        # the training loop alone (lightning's fit), without the fit's SVD and predictions
        stages["fit_deepsets 1 epoch"]["train_s"] = float(model.history["time_s"])
        return _result(
            task,
            fraction,
            n_cells,
            nnz,
            stages,
            mon,
            mdata,
            "scmm_deepsets",
            naive,
            backed,
            deepsets,
            "reference" if reference else "fused",
            defaults,
        )
    stage("svd", lambda: scmm.pp.svd(mdata, src, rng=0, **sizes))
    ridge = stage(
        "fit_baseline ridge",
        lambda: scmm.tl.fit_baseline(mdata, src, tgt, method="ridge", **sizes, **lean),
    )
    model = ridge
    if not naive and hasattr(scmm.tl, "fit_mlp"):
        model = stage(
            "fit_mlp 1 epoch",
            lambda: scmm.tl.fit_mlp(
                mdata,
                src,
                tgt,
                max_epochs=1,
                **({} if defaults else {"n_components": 64}),
                training={
                    "verbose": False,
                    "logger": None,
                    **({} if defaults else {"batch_size": 512}),
                },
                **lean,
            ),
        )
    if not backed:  # the held-out donor's cells, as a query of new cells: their values only
        # (a copy of the view would also read the kept counts layer into memory: 2.2 GB here)
        held = mdata[src]
        query = md.MuData(
            {src: ad.AnnData(X=held.X[~mask], obs=held.obs.iloc[~mask], var=held.var.copy())}
        )
        stage("predict", lambda: scmm.tl.predict(model, query, key_added="scale_pred"))
    return _result(
        task,
        fraction,
        n_cells,
        nnz,
        stages,
        mon,
        mdata,
        "scmm_ridge",
        naive,
        backed,
        defaults=defaults,
    )


def _result(
    task,
    fraction,
    n_cells,
    nnz,
    stages,
    mon,
    mdata,
    scored,
    naive,
    backed,
    deepsets=False,
    deepsets_path=None,
    defaults=False,
):
    """The run's record: stages, totals, whole-run peak and the held-out scores of ``scored``."""
    mon.close()
    return {
        "task": task,
        "fraction": fraction,
        "n_cells": n_cells,
        "nnz": nnz,
        "naive": naive,
        "backed": backed,
        "deepsets": deepsets,
        "deepsets_path": deepsets_path,
        "defaults": defaults,
        "options": (
            {"keep_counts": True, "write_predictions": True, "predict": "held-out"}
            if defaults
            else {"keep_counts": naive, "write_predictions": False, "predict": "held-out"}
        ),
        "predictions_on_disk": any(
            "predictions_path" in v for v in mdata.uns.values() if isinstance(v, dict)
        ),
        "stages": stages,
        "total_s": sum(v["s"] for v in stages.values()),
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB,
        "scores": {
            k: float(np.mean(v))
            for k, v in mdata.uns.get(scored, {}).get("scores", {}).items()
            if k != "n_cells"
        },
        "scored": scored,
        "load_average": os.getloadavg()[0],
    }


def _run_name(
    task, fraction, naive, backed, deepsets=False, reference=False, defaults=False
) -> str:
    tags = "".join(
        t
        for t, on in (
            ("_naive", naive),
            ("_backed", backed),
            ("_deepsets", deepsets),
            ("_reference", deepsets and reference),
            ("_defaults", defaults and not naive and not backed),
        )
        if on
    )
    return f"{task}_{fraction:g}{tags}.json"


def run_subprocess(task, fraction, args, *, naive=False, backed=False) -> dict | None:
    deepsets = args.deepsets and task == "multiome" and not naive and not backed
    out = Path(args.results) / _run_name(
        task, fraction, naive, backed, deepsets, args.reference, args.defaults
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_file() and not args.force:
        print(f"{out.name}: kept (pass --force to rerun)", flush=True)
        return json.loads(out.read_text())
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        task,
        str(fraction),
        "--cache",
        args.cache,
        "--results",
        args.results,
    ]
    cmd += ["--naive"] if naive else []
    cmd += ["--backed"] if backed else []
    cmd += ["--deepsets"] if deepsets else []
    cmd += ["--reference"] if deepsets and args.reference else []
    cmd += ["--defaults"] if args.defaults and not naive and not backed else []
    t = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not out.is_file():
        print(
            f"{task} {fraction:g}: failed (exit {proc.returncode}) after "
            f"{time.perf_counter() - t:.0f} s",
            flush=True,
        )
        return None
    res = json.loads(out.read_text())
    res["children_maxrss_gib"] = usage.ru_maxrss * 1024 / GIB
    out.write_text(json.dumps(res, indent=1))
    return res


def _slope(ns, ts) -> float:
    if len(ns) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


def _stage_slopes(runs: list[dict], names: list[str], key: str) -> list[str]:
    """``"<stage> <exponent>"`` for each stage, over the runs that have it (two at least)."""
    out = []
    for n in names:
        have = [r for r in runs if n in r["stages"]]
        if len(have) >= 2:
            ys = [r["stages"][n].get(key, np.nan) for r in have]
            out.append(f"{n} {_slope([r['n_cells'] for r in have], ys):.2f}")
    return out


def report(results_dir: Path) -> str:
    """Markdown tables from all saved runs."""
    runs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    lines = []
    groups = [
        (
            task,
            f"{task}{', defaults (no memory options)' if d else ''}",
            [
                r
                for r in runs
                if r["task"] == task and not r.get("deepsets") and r.get("defaults", False) == d
            ],
        )
        for d in (False, True)
        for task in ("cite", "multiome")
    ]
    # runs saved before the fused kernels (no "deepsets_path") ran the torch path
    ds = [r for r in runs if r.get("deepsets") and not r.get("defaults")]
    groups += [
        (
            "multiome",
            "multiome, fit_deepsets on its own, fused CPU kernels (current)",
            [r for r in ds if r.get("deepsets_path") == "fused"],
        ),
        (
            "multiome",
            "multiome, fit_deepsets on its own, torch path (before the kernels)",
            [r for r in ds if r.get("deepsets_path", "reference") == "reference"],
        ),
        (
            "multiome",
            "multiome, fit_deepsets on its own, defaults (no memory options)",
            [r for r in runs if r.get("deepsets") and r.get("defaults")],
        ),
    ]
    for task, title, group in groups:
        rs = sorted(
            (r for r in group if not r["naive"] and not r["backed"]), key=lambda r: r["fraction"]
        )
        if not rs:
            continue
        names = list(dict.fromkeys(k for r in rs for k in r["stages"]))
        lines += [
            f"### {title}: wall s / CPU s / peak GiB per stage",
            "",
            "| cells | nnz | " + " | ".join(names) + " | total s | peak GiB |",
            "|" + "---|" * (len(names) + 4),
        ]
        for r in rs:
            cells = [
                f"{r['stages'][n]['s']:.1f} / {r['stages'][n].get('cpu_s', float('nan')):.1f} / "
                f"{r['stages'][n]['peak_gib']:.2f}"
                if n in r["stages"]
                else "–"
                for n in names
            ]
            lines.append(
                f"| {r['n_cells']:,} | {r['nnz'] or 0:,} | "
                + " | ".join(cells)
                + f" | {r['total_s']:.0f} | {r['peak_gib']:.2f} |"
            )
        ns = [r["n_cells"] for r in rs]

        wall, cpu = _stage_slopes(rs, names, "s"), _stage_slopes(rs, names, "cpu_s")
        common = [n for n in names if all(n in r["stages"] for r in rs)]
        common_total = [sum(r["stages"][n]["s"] for n in common) for r in rs]
        lines.append("")
        if len(rs) >= 2:
            lines += [
                f"Growth exponent of time vs cells (log-log slope over {len(rs)} sizes), wall: "
                + ", ".join(wall)
                + f", total of the stages every size ran {_slope(ns, common_total):.2f}; CPU: "
                + ", ".join(cpu)
                + ".",
                "",
            ]
        if len(rs) >= 2:
            # over the stages every size ran (an optional stage's peak would skew the slope)
            peaks = [max(r["stages"][n]["peak_gib"] for n in common) for r in rs]
            b = _slope(ns, peaks)
            measured = ns[-1] == N_CELLS[task]
            full = rs[-1]["peak_gib"] if measured else peaks[-1] * (N_CELLS[task] / ns[-1]) ** b
            lines += [
                f"Peak memory growth exponent (stages every size ran) {b:.2f}; "
                f"at {N_CELLS[task]:,} cells: "
                f"{'measured (whole run)' if measured else 'extrapolated'} {full:.1f} GiB.",
                "",
            ]
    lines += _deepsets_comparison(ds)
    other = [r for r in runs if r["naive"] or r["backed"]]
    if other:
        lines += [
            "### Naive (dense) and backed (on-disk) paths against the sparse in-memory path",
            "",
            "| task | cells | path | total s | peak GiB | sparse peak GiB | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in sorted(other, key=lambda r: (r["task"], r["fraction"], r["backed"])):
            base = next(
                (
                    b
                    for b in runs
                    if b["task"] == r["task"]
                    and b["fraction"] == r["fraction"]
                    and not b["naive"]
                    and not b["backed"]
                ),
                None,
            )
            bp = base["peak_gib"] if base else float("nan")
            path = "naive dense" if r["naive"] else "backed source"
            lines.append(
                f"| {r['task']} | {r['n_cells']:,} | {path} | {r['total_s']:.0f} | "
                f"{r['peak_gib']:.2f} | {bp:.2f} | {r['peak_gib'] / bp:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _deepsets_comparison(ds: list[dict]) -> list[str]:
    """Fused kernels against the torch path at the sizes where both ran with ``--reference``."""
    stage = "fit_deepsets 1 epoch"
    by = {(r["fraction"], r.get("deepsets_path", "old")): r for r in ds}
    pairs = sorted(f for f, p in by if p == "fused" and (f, "reference") in by)
    if not pairs:
        return []
    lines = [
        "### fit_deepsets: fused CPU kernels against the torch path (same sizes, same session)",
        "",
        "| cells | training steps | torch path s (CPU s; training s) | fused s (CPU s; "
        "training s) | speed-up wall (CPU; training) | peak GiB torch / fused | held-out "
        "per-cell r torch / fused |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in pairs:
        ref, new = by[(f, "reference")], by[(f, "fused")]
        a, b = ref["stages"][stage], new["stages"][stage]
        steps = -(-round(ref["n_cells"] * 2 / 3) // 256)
        ta, tb = a.get("train_s"), b.get("train_s")  # recorded since this table exists

        def sec(x):
            return "–" if x is None else f"{x:.0f}"

        ratio = "–" if ta is None or tb is None else f"{ta / tb:.1f}×"
        lines.append(
            f"| {ref['n_cells']:,} | ~{steps} | {a['s']:.0f} ({a['cpu_s']:.0f}; {sec(ta)}) | "
            f"{b['s']:.0f} ({b['cpu_s']:.0f}; {sec(tb)}) | {a['s'] / b['s']:.1f}× "
            f"({a['cpu_s'] / b['cpu_s']:.1f}×; {ratio}) | "
            f"{a['peak_gib']:.2f} / {b['peak_gib']:.2f} | "
            f"{ref['scores'].get('pearson_per_cell', float('nan')):.3f} / "
            f"{new['scores'].get('pearson_per_cell', float('nan')):.3f} |"
        )
    lines.append("")
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1/8 of the cells only")
    p.add_argument("--task", choices=["cite", "multiome", "both"], default="both")
    p.add_argument("--fractions", type=float, nargs="*", default=None)
    p.add_argument(
        "--naive-fraction",
        type=float,
        default=None,
        help="also run the naive dense path at this fraction (default 1/8 CITE, 1/64 Multiome)",
    )
    p.add_argument("--no-naive", action="store_true")
    p.add_argument(
        "--backed-fraction",
        type=float,
        default=None,
        help="also run with the source modality backed (on disk) at this fraction",
    )
    p.add_argument(
        "--deepsets",
        action="store_true",
        help="Multiome: run fit_deepsets (one epoch) on its own at each size instead of the "
        "pipeline (slow: ~10 s per batch of 256 cells); no naive or backed runs",
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="with --deepsets: run DeepSets' torch path (the code before the fused CPU "
        "kernels), saved as *_deepsets_reference.json, for the before/after table",
    )
    p.add_argument(
        "--defaults",
        action="store_true",
        help="the same stages with every function's defaults (counts kept, predictions "
        "written for every cell: in memory up to the budget, else on disk; default SVD size "
        "and batch size); saved as *_defaults.json",
    )
    p.add_argument("--cache", default="/tmp/scmm_scale")
    p.add_argument("--results", default=str(HERE / "scale_results"))
    p.add_argument("--out", default=str(HERE / "SCALE.md"))
    p.add_argument("--report", action="store_true", help="only print tables of saved runs")
    p.add_argument("--force", action="store_true", help="rerun sizes that have saved results")
    p.add_argument("--worker", nargs=2, metavar=("TASK", "FRACTION"), help=argparse.SUPPRESS)
    p.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backed", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        task, fraction = args.worker[0], float(args.worker[1])
        out = Path(args.results) / _run_name(
            task, fraction, args.naive, args.backed, args.deepsets, args.reference, args.defaults
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial")  # the stages so far, while the run goes on
        res = worker(
            task,
            fraction,
            Path(args.cache),
            naive=args.naive,
            backed=args.backed,
            deepsets=args.deepsets,
            reference=args.reference,
            defaults=args.defaults,
            partial=partial,
        )
        out.write_text(json.dumps(res, indent=1))
        partial.unlink(missing_ok=True)
        return
    if not args.report:
        tasks = ("cite", "multiome") if args.task == "both" else (args.task,)
        fractions = (0.125,) if args.quick else tuple(args.fractions or FRACTIONS)
        for task in tasks:
            for f in fractions:
                run_subprocess(task, f, args)
            if args.deepsets:
                continue
            if not args.no_naive:
                nf = args.naive_fraction or (0.125 if task == "cite" else 1 / 64)
                if nf not in fractions:
                    run_subprocess(task, nf, args)
                run_subprocess(task, nf, args, naive=True)
            if args.backed_fraction:
                run_subprocess(task, args.backed_fraction, args, backed=True)
    text = report(Path(args.results))
    print(text)
    out = Path(args.out)
    doc = out.read_text() if out.is_file() else ""
    tables = f"{_BEGIN}\n{text}\n{_END}"
    if _BEGIN in doc and _END in doc:  # keep the hand-written notes around the tables
        doc = doc[: doc.index(_BEGIN)] + tables + doc[doc.index(_END) + len(_END) :]
    else:
        doc = (
            "# Scale benchmark\n\nMade by `python benchmarks/scale.py` (see its docstring).\n\n"
            + tables
            + "\n"
        )
    out.write_text(doc)


_BEGIN, _END = "<!-- scale tables: begin -->", "<!-- scale tables: end -->"


if __name__ == "__main__":
    main()
