"""``scmm fit``: train a model on a file, save it, report the held-out scores."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from .._disk import check_replaceable
from .._registry import MODELS
from ._args import UsageError, add_common, add_inputs, input_files, parse_params
from ._io import (
    FIT_RECORD,
    Reporter,
    auto_method,
    check_inputs,
    check_new_path,
    normalize_counts,
    read_inputs,
    write_json,
)

#: Arguments the command sets itself; ``--param`` may not.
_RESERVED = ("train", "key_added", "rng", "verbose", "method", "windows_key", "write_predictions")


def add_parser(sub) -> None:
    """Add the ``fit`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "fit",
        help="train a model on paired data, save it and score the held-out cells",
        description="Train a model from the source modality to the target modality of paired "
        "cells, save it to --out, print the scores on the held-out cells (when --train, "
        "--test-batches or --test-fraction holds some out) and write them to "
        f"MODEL_DIR/{FIT_RECORD}.",
    )
    add_inputs(p, what="paired training data", single=None)
    p.add_argument("--source", required=True, help="modality to predict from (e.g. rna, atac)")
    p.add_argument("--target", required=True, help="modality to predict (e.g. prot, rna)")
    p.add_argument(
        "--method",
        default="mlp",
        choices=sorted(MODELS),
        help="model to fit (default: mlp); see the docs' Models pages",
    )
    split = p.add_mutually_exclusive_group()
    split.add_argument(
        "--train",
        metavar="OBS_COLUMN",
        help="boolean .obs column: True marks training cells, the others are scored",
    )
    split.add_argument(
        "--test-batches",
        metavar="B1,B2",
        help="comma-separated batches (e.g. donors) held out and scored; see --batch-key",
    )
    split.add_argument(
        "--test-fraction",
        type=float,
        metavar="F",
        help="fraction of cells held out at random (seeded by --seed)",
    )
    p.add_argument(
        "--batch-key",
        default="batch",
        metavar="OBS_COLUMN",
        help=".obs column holding the batches of --test-batches (default: batch)",
    )
    p.add_argument(
        "--normalize",
        choices=("auto", "none"),
        default="auto",
        help="auto (default): normalise raw counts (.layers['counts'], else .X) by modality: "
        "rna log_cp10k, prot clr, atac tfidf; none: use .X as it is (already normalised)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument of the method's scmm.tl.fit_* function, value as JSON "
        "(e.g. --param max_epochs=20 --param hidden=[256,256]); repeat for several",
    )
    p.add_argument(
        "--assembly",
        choices=("hg38", "mm10"),
        help="genome assembly of the ATAC peaks, for the gene-peak windows of deepsets and "
        "gene_activity (gene annotation read from --data-dir)",
    )
    p.add_argument(
        "--annotation",
        metavar="FILE",
        help="gene annotation file (GTF, BED or CSV) instead of --assembly",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--key",
        default=None,
        help="name of the predictions and scores (default: scmm_<method>)",
    )
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    add_common(p)
    p.set_defaults(run=run)


def _check_params(function, params: dict, method: str) -> None:
    """Raise an error naming the fix for an unknown, reserved or wrongly typed ``--param``."""
    from ..tl import keyword_parameters

    allowed = {
        name: prm for name, prm in keyword_parameters(function).items() if name not in _RESERVED
    }
    for key, value in params.items():
        if key in _RESERVED:
            msg = f"`--param {key}` is set by `scmm fit` itself; use its own option instead"
            raise UsageError(msg)
        if key not in allowed:
            msg = (
                f"`--param {key}` is not a parameter of scmm.tl.{function.__name__} (--method "
                f"{method}); it takes: {', '.join(sorted(allowed))}"
            )
            raise UsageError(msg)
        default = allowed[key].default
        expected = type(default) if isinstance(default, bool | int | float | str) else None
        kinds = str(allowed[key].annotation).split(" | ")  # e.g. `max_epochs: int | None = None`
        if default is None and len(kinds) == 2 and kinds[1] == "None":
            expected = {"int": int, "float": float, "str": str}.get(kinds[0])
        ok = (
            expected is None
            or value is None
            or isinstance(value, expected)
            or (expected is float and isinstance(value, int) and not isinstance(value, bool))
        )
        if not ok or (expected is int and isinstance(value, bool)):
            msg = (
                f"`--param {key}={value!r}` should be of type {expected.__name__} (the default "
                f"is {default!r})"
            )
            raise UsageError(msg)


def _split(mdata, args) -> dict:
    """Mark the training cells in ``mdata.obs['train']`` from the split options."""
    from .. import pp

    if args.train is not None:
        return {"train": args.train}
    if args.test_batches is not None:
        batches = [b for b in args.test_batches.split(",") if b]
        if not batches:
            msg = "`--test-batches` is empty; pass batch names separated by commas"
            raise UsageError(msg)
        pp.split_cells(mdata, test_batches=batches, batch_key=args.batch_key)
        return {"train": "train", "test_batches": batches, "batch_key": args.batch_key}
    if args.test_fraction is not None:
        pp.split_cells(mdata, test_fraction=args.test_fraction, rng=args.seed)
        return {"train": "train", "test_fraction": args.test_fraction, "seed": args.seed}
    return {"train": None}


def _normalize(mdata, args, report: Reporter) -> dict[str, str]:
    """Normalise the source and target (``--normalize auto``); return what was done to each."""
    done = {}
    for mod in (args.source, args.target):
        if args.normalize == "auto":
            done[mod] = auto_method(mod)
            report.step(f"normalising {mod!r} from raw counts ({done[mod]})")
            normalize_counts(mdata, mod, done[mod], flag="`--normalize auto`")
        else:
            done[mod] = "none"
    return done


def _windows(mdata, args, report: Reporter) -> None:
    """Compute the gene–peak windows ``deepsets`` and ``gene_activity`` read."""
    from .. import datasets, pp

    if (args.assembly is None) == (args.annotation is None):
        msg = (
            f"`--method {args.method}` needs gene-peak windows: pass exactly one of "
            "--assembly hg38|mm10 and --annotation FILE"
        )
        raise UsageError(msg)
    annotation = args.annotation or datasets.gene_annotation(args.assembly, data_dir=args.data_dir)
    report.step("gene-peak windows")
    pp.gene_peak_windows(mdata, args.target, args.source, annotation=annotation)


def _target_means(mdata, args, train: str | None) -> dict[str, float]:
    """Each target's mean over the training cells: the mean profile ``scmm evaluate`` scores.

    (The reference of the held-out scores; ``scmm predict`` passes it on with the predictions.)
    """
    from ..metrics import column_means

    tgt = mdata[args.target]
    Y = tgt.X
    if train is not None:
        obs = mdata.obs if train in mdata.obs.columns else mdata[args.source].obs
        mask = obs[train].reindex(tgt.obs_names).fillna(False).to_numpy(dtype=bool)
        Y = Y[mask]
    return dict(zip(map(str, tgt.var_names), map(float, column_means(Y)), strict=True))


def _save(model, out: Path, record: dict, *, overwrite: bool) -> None:
    """Save the model and ``record`` together to ``out``: all of it, or nothing."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save(tmp / "model")
        write_json(record, tmp / "model" / FIT_RECORD)
        if out.exists():
            if not overwrite:  # appeared while fitting
                msg = f"`{out}` exists; pass --overwrite to replace it, or choose another --out"
                raise FileExistsError(msg)
            check_replaceable(out, "--overwrite")
            old = tmp / "old"
            out.rename(old)
        (tmp / "model").rename(out)
    finally:
        shutil.rmtree(tmp)


def run(args: argparse.Namespace, report: Reporter) -> int:
    """Run ``scmm fit``."""
    out = Path(args.out)
    check_new_path(out, overwrite=args.overwrite)
    check_replaceable(out, "--overwrite")
    files = input_files(args)
    check_inputs(args.data, files, one_h5ad=False)  # before the heavy imports: answers at once

    from .. import __version__, _keys, datasets, tl

    entry = MODELS[args.method]
    function = getattr(tl, entry.fit)
    params = parse_params(args.param)
    _check_params(function, params, args.method)
    report.step("reading the input")
    mdata = read_inputs(args.data, files, single=None)
    for arg in ("source", "target"):
        mod = getattr(args, arg)
        if mod not in mdata.mod:
            msg = f"`--{arg} {mod}` is not a modality of the input (has: {', '.join(mdata.mod)})"
            raise UsageError(msg)
    if args.source == args.target:
        msg = "`--source` and `--target` are the same modality; pass two different ones"
        raise UsageError(msg)
    normalize = _normalize(mdata, args, report)
    split = _split(mdata, args)
    if entry.windows:
        _windows(mdata, args, report)
    params = {**entry.defaults, **params}
    recorded = dict(params)
    if "gene_sets" in params:  # a collection name is read from the data folder
        sets = params["gene_sets"]
        recorded["gene_sets"] = sets if isinstance(sets, str) else "given as JSON"
        if isinstance(sets, str):
            params["gene_sets"] = datasets.gene_sets(sets, data_dir=args.data_dir)
    key = args.key or _keys.prediction(args.method)
    report.step(f"fitting {args.method} ({args.source} → {args.target})")
    model = function(
        mdata,
        args.source,
        args.target,
        **entry.fixed,
        **params,
        train=split["train"],
        key_added=key,
        rng=args.seed,
        write_predictions=False,  # only the held-out scores are reported: no cells × targets copy
    )
    scores = mdata.uns[key].get("scores")
    if scores is not None:
        scores = {k: v if isinstance(v, int) else float(v) for k, v in scores.items()}
    record = {
        "scmm_version": __version__,
        "command": "fit",
        "method": args.method,
        "source": args.source,
        "target": args.target,
        "key": key,
        "normalize": normalize,
        "split": split,
        "seed": args.seed,
        "params": recorded,
        "n_train_cells": int(mdata.uns[key]["params"]["n_train_cells"]),
        "scores": scores,
        "target_means": _target_means(mdata, args, split["train"]),
    }
    _save(model, out, record, overwrite=args.overwrite)
    if scores:
        report.table([{"name": key, **scores}], "held-out cells")
    else:
        report.step("no held-out cells to score (pass --train, --test-batches or --test-fraction)")
    report.step(f"wrote {out}")
    return 0
