"""``scmm evaluate``: score stored predictions against measured values."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ._args import UsageError, add_common
from ._io import (
    Reporter,
    check_file,
    check_inputs,
    is_counts,
    mudata_of,
    normalize_counts,
    read_file,
    read_inputs,
    write_json,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def add_parser(sub) -> None:
    """Add the ``evaluate`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "evaluate",
        help="score stored predictions against measured values",
        description="Score the predictions KEY of a file written by `scmm predict` (or by "
        "scmm in Python) against measured values of the target modality, cells and features "
        "matched by name: per-cell Pearson (averaged over cells), per-feature Pearson "
        "(averaged over features) and RMSE, as a table and, with --json, a JSON file.",
    )
    p.add_argument("data", metavar="PRED.h5mu", help="file holding the predictions")
    p.add_argument("--target", required=True, help="the predicted modality (e.g. prot)")
    p.add_argument("--key", required=True, help="name of the predictions (e.g. scmm_mlp)")
    p.add_argument(
        "--measured",
        metavar="FILE",
        help="measured values: a .h5ad of the target modality, or a .h5mu or 10x .h5 holding it "
        "(default: the target modality of PRED.h5mu)",
    )
    p.add_argument(
        "--cells",
        metavar="OBS_COLUMN[=VALUE]",
        help="score only some cells: those True in a boolean .obs column, or those whose "
        "column equals VALUE (e.g. --cells batch=s1d2)",
    )
    p.add_argument(
        "--normalize",
        choices=("auto", "none"),
        default="auto",
        help="auto (default): normalise the measured values from raw counts the way `scmm fit` "
        "normalised the training targets (as recorded by `scmm predict`); none: use .X as it is",
    )
    p.add_argument("--json", metavar="FILE", help="also write the scores (and per feature) here")
    add_common(p)
    p.set_defaults(run=run)


def _predictions(mdata, target: str, key: str) -> pd.DataFrame:
    """Return the predictions ``key`` as a cells × features DataFrame."""
    import numpy as np
    import pandas as pd

    if target in mdata.mod and key in mdata[target].layers:
        adata = mdata[target]
        return pd.DataFrame(
            np.asarray(adata.layers[key]), index=adata.obs_names, columns=adata.var_names
        )
    for adata in mdata.mod.values():
        if key in adata.obsm and isinstance(adata.obsm[key], pd.DataFrame):
            return adata.obsm[key]
    found = {
        k for a in mdata.mod.values() for k, v in a.obsm.items() if isinstance(v, pd.DataFrame)
    }
    if target in mdata.mod:
        found |= set(mdata[target].layers) - {"counts"}
    msg = (
        f"no predictions `--key {key}` in the file (predictions there: "
        f"{', '.join(sorted(found)) or 'none'}); pass the key `scmm predict` wrote"
    )
    raise UsageError(msg)


def _measured(mdata, args, report: Reporter):
    """Return the measured target modality, normalised as the training targets were."""
    if args.measured is None:
        if args.target not in mdata.mod:
            msg = (
                f"the file has no {args.target!r} modality to score against (has: "
                f"{', '.join(mdata.mod)}); pass the measured values with --measured FILE"
            )
            raise UsageError(msg)
        holder = mudata_of({args.target: mdata[args.target].copy()})
    else:
        holder = read_inputs(args.measured, {}, single=args.target)
        if args.target not in holder.mod:
            msg = f"`--measured {args.measured}` has no {args.target!r} modality"
            raise UsageError(msg)
    if args.normalize == "none":
        return holder[args.target]
    recorded = mdata.uns.get(args.key, {}).get("scmm_cli", {}).get("normalize", {})
    method = recorded.get(args.target)
    if method is None:
        if is_counts(holder[args.target].X):
            msg = (
                f"the measured {args.target!r} values look like raw counts, and how the training "
                "targets were normalised is not recorded with these predictions; normalise them "
                "the same way, or pass `--normalize none` to score them as they are"
            )
            raise UsageError(msg)
        return holder[args.target]
    if method != "none":
        report.step(f"normalising the measured {args.target!r} from raw counts ({method})")
        normalize_counts(holder, args.target, method, flag="`--normalize auto`")
    return holder[args.target]


def _cell_mask(mdata, pred: pd.DataFrame, spec: str) -> np.ndarray:
    """Cells of ``pred`` that ``--cells COLUMN[=VALUE]`` selects."""
    column, sep, value = spec.partition("=")
    frames = [mdata.obs, *(a.obs for a in mdata.mod.values())]
    for obs in frames:
        if column in obs.columns and obs.index.intersection(pred.index).size == len(pred):
            col = obs[column].reindex(pred.index)
            break
    else:
        msg = f"`--cells {spec}`: {column!r} is not an .obs column of the predicted cells"
        raise UsageError(msg)
    if sep:
        mask = col.astype(str).to_numpy() == value
    elif col.dtype == bool:
        mask = col.to_numpy()
    else:
        msg = f"`--cells {column}` is not a boolean column; pass `--cells {column}=VALUE`"
        raise UsageError(msg)
    if not mask.any():
        msg = f"`--cells {spec}` selects no cells"
        raise UsageError(msg)
    return mask


def _aligned(
    pred: pd.DataFrame, measured, report: Reporter, *, proteins: bool = True
) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Return ``pred`` on the shared features and the measured values of its cells, aligned.

    Features are paired by harmonised protein name (:func:`scmm.metrics.match_targets`;
    genes, ``proteins=False``, by their names); the others (extra measured columns, isotype
    controls) are left out and reported. Predicted cells without measured values are left
    out with a warning (an error when none is measured).
    """
    import numpy as np

    from ..metrics import match_targets, measured_rows

    match = match_targets(pred.columns, measured.var_names, proteins=proteins)
    cols = np.full(len(pred.columns), -1)
    cols[match["model_index"]] = match["measured_index"]
    left_out = {k: match[k] for k in ("left_out_model", "left_out_measured")}
    if any(left_out.values()) and (cols >= 0).any():
        report.step(
            f"scoring the {len(match['shared'])} features both have; left out: predicted only "
            f"{left_out['left_out_model'] or 'none'}, measured only "
            f"{left_out['left_out_measured'] or 'none'}"
        )
        pred = pred.iloc[:, np.flatnonzero(cols >= 0)]
        cols = cols[cols >= 0]
    keep, rows = measured_rows(
        measured.obs_names, pred.index, "pass the measured cells with --measured"
    )
    pred = pred[keep]
    if (cols < 0).any():
        msg = (
            f"{int((cols < 0).sum())} predicted features are not measured (e.g. "
            f"{list(pred.columns[cols < 0][:3])}); check --target and --measured"
        )
        raise ValueError(msg)
    X = measured.X[rows][:, cols]
    return pred, np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64), left_out


def _check_target(mdata, target: str, key: str) -> None:
    """Raise an error when ``--target`` is not the modality the predictions ``key`` are of."""
    predicted = {
        k: v["params"]["target"]
        for k, v in mdata.uns.items()
        if isinstance(v, dict) and isinstance(v.get("params"), dict) and "target" in v["params"]
    }
    if key in predicted and predicted[key] != target:
        listing = ", ".join(f"{m!r} (--key {k})" for k, m in sorted(predicted.items()))
        msg = (
            f"`--target {target}` is not the modality the predictions `--key {key}` are of: they "
            f"predict {predicted[key]!r}. Predicted in this file: {listing}; pass "
            f"`--target {predicted[key]}`"
        )
        raise UsageError(msg)


def _training_means(mdata, key: str, features):
    """Return the training targets' means recorded by ``scmm fit`` (``None``: not recorded)."""
    import numpy as np
    import pandas as pd

    means = mdata.uns.get(key, {}).get("scmm_cli", {}).get("target_means")
    if means is None:
        return None
    values = pd.Series(np.asarray(means["values"]), index=np.asarray(means["features"]).astype(str))
    values = values.reindex(pd.Index(features).astype(str))
    return None if values.isna().any() else values.to_numpy(np.float32)


def run(args: argparse.Namespace, report: Reporter) -> int:
    """Run ``scmm evaluate``."""
    check_file(args.data, "h5mu")
    if args.measured is not None:
        check_inputs(args.measured, {}, one_h5ad=True)

    import numpy as np

    from .. import metrics
    from .._validate import holds_genes
    from ..metrics import held_out_scores

    mdata = read_file(args.data, "h5mu")
    _check_target(mdata, args.target, args.key)
    pred = _predictions(mdata, args.target, args.key)
    if args.cells is not None:
        pred = pred[_cell_mask(mdata, pred, args.cells)]
    measured = _measured(mdata, args, report)
    pred, y, left_out = _aligned(
        pred, measured, report, proteins=not holds_genes(measured, args.target)
    )
    p = pred.to_numpy(dtype=np.float64)
    per_feature = metrics.pearson_per_feature(y, p, average=False)
    means = _training_means(mdata, args.key, pred.columns)
    if means is None:
        report.step(
            "the training means are not recorded with these predictions (made in Python, or by "
            "a model not fitted by `scmm fit`): no mean-profile reference"
        )
        scores = {
            "n_cells": len(pred),
            "pearson_per_cell": float(metrics.pearson_per_cell(y, p)),
            "pearson_per_feature": float(np.mean(per_feature)),
            "rmse": float(metrics.rmse(y, p)),
        }
    else:  # as the fit's held-out scores: beside the mean profile, with the gain over it
        scores = held_out_scores(y, p, means, pred.columns)
        scores = {k: v if isinstance(v, int) else float(v) for k, v in scores.items()}
    report.table([{"name": args.key, **scores}], "predictions")
    if args.json:
        doc = {
            "key": args.key,
            "target": args.target,
            "cells": args.cells,
            **scores,
            "per_feature_pearson": dict(zip(pred.columns, map(float, per_feature), strict=True)),
            **left_out,
        }
        write_json(doc, Path(args.json))
        report.step(f"wrote {args.json}")
    return 0
