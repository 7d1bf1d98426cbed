"""``scmm predict``: apply a saved model to new cells and write the predictions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._registry import ALIGN_METHODS
from ._args import UsageError, add_common, add_inputs, input_files
from ._io import (
    FIT_RECORD,
    Reporter,
    check_counts,
    check_inputs,
    check_new_path,
    read_inputs,
    write_h5mu,
)


def add_parser(sub) -> None:
    """Add the ``predict`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "predict",
        help="predict the target modality for new cells with a saved model",
        description="Predict the target modality of a saved model for the cells of a query "
        "(which may hold only the source modality) and write the query with its predictions "
        "to --out: in the target modality's .layers[KEY] when the query has that modality, "
        "else as a table (cells x target features) in the source modality's .obsm[KEY].",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="model folder written by `scmm fit`")
    add_inputs(p, what="query cells", single="the source modality")
    p.add_argument(
        "--normalize",
        choices=("auto", "none"),
        default="auto",
        help="auto (default): normalise the query's source modality from raw counts the way "
        f"`scmm fit` normalised the training cells (read from MODEL_DIR/{FIT_RECORD}); "
        "none: use .X as it is",
    )
    p.add_argument(
        "--allow-missing-features",
        action="store_true",
        help="fill source features the query lacks at their training means (with a warning) "
        "instead of failing",
    )
    p.add_argument(
        "--min-feature-overlap",
        type=float,
        default=0.5,
        metavar="FRACTION",
        help="refuse to predict when fewer than this fraction of the model's source features "
        "are in the query, even with --allow-missing-features (default: 0.5)",
    )
    p.add_argument(
        "--align",
        choices=("none", *ALIGN_METHODS),
        default="none",
        help="align the query's source values to the training cells before predicting, from "
        "those values only: none (default), standardize (each feature to the training mean "
        "and sd), moments (the input embedding's mean and sd) or symphony (Symphony's mapping "
        "into the reference embedding; for a whole dataset from another lab with the "
        "reference's cell types: an alignment adds bias to cells like the reference's and "
        "to subsets of a few cell types)",
    )
    p.add_argument(
        "--key",
        default=None,
        help="name of the predictions (default: the one `scmm fit` used, e.g. scmm_mlp)",
    )
    p.add_argument("--out", required=True, metavar="OUT.h5mu", help="output file (.h5mu)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_common(p)
    p.set_defaults(run=run)


def read_fit_record(model_dir: Path) -> dict | None:
    """Return the record ``scmm fit`` wrote into ``model_dir`` (``None``: saved in Python)."""
    path = model_dir / FIT_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        msg = f"`{path}` is not valid JSON ({err}); the model folder is damaged"
        raise ValueError(msg) from err


def run(args: argparse.Namespace, report: Reporter) -> int:
    """Run ``scmm predict``."""
    out = Path(args.out)
    if out.suffix != ".h5mu":
        msg = f"`--out {out}` must end in .h5mu"
        raise UsageError(msg)
    check_new_path(out, overwrite=args.overwrite)
    model_dir = Path(args.model)
    if not model_dir.is_dir():
        msg = f"`{model_dir}` is not a folder; pass the MODEL_DIR that `scmm fit --out` wrote"
        raise FileNotFoundError(msg)
    files = input_files(args)
    check_inputs(args.data, files, one_h5ad=True)  # before the heavy imports
    record = read_fit_record(model_dir)

    import numpy as np

    from .. import _keys, models, tl

    model = models.load(model_dir)
    report.step("reading the query")
    query = read_inputs(args.data, files, single=model.source)
    if model.source not in query.mod:
        msg = (
            f"the query has no {model.source!r} modality, which the model predicts from (has: "
            f"{', '.join(query.mod)}); pass it, e.g. `--{model.source} FILE.h5ad`"
        )
        raise UsageError(msg)
    normalize = {model.source: "none", model.target: "none"}
    by_model = False  # the model normalises the query's raw counts itself, as at fit time
    if args.normalize == "auto":
        if record is None:
            msg = (
                f"`{model_dir}` was not written by `scmm fit`, so how its training cells were "
                "normalised is not recorded; normalise the query the same way and pass "
                "`--normalize none`"
            )
            raise UsageError(msg)
        normalize = dict(record["normalize"])
        method = normalize[model.source]
        if method != "none":
            # the model applies its training call: each cell's total over the features the
            # training cells' were, TF-IDF with the training cells' IDF (the query's own would
            # change with the cells predicted together)
            check_counts(query, model.source, method, flag="`--normalize auto`")
            report.step(
                f"normalising {model.source!r} from raw counts ({method}, as the training cells "
                "were; the query's values are written as read)"
            )
            by_model = True
    key = args.key or (record["key"] if record else None)
    report.step(f"predicting {model.target!r} for {query[model.source].n_obs} cells")
    tl.predict(
        model,
        query,
        key_added=key,
        allow_missing_features=args.allow_missing_features,
        min_feature_overlap=args.min_feature_overlap,
        normalize=by_model,
        align=None if args.align == "none" else args.align,
    )
    key = key or _keys.prediction(model.name)
    # how the targets were normalised at fit time: `scmm evaluate` does the same to measured values
    query.uns[key]["scmm_cli"] = {"model": str(model_dir), "normalize": normalize}
    if record and record.get("target_means"):  # the mean profile `scmm evaluate` scores beside
        means = record["target_means"]
        query.uns[key]["scmm_cli"]["target_means"] = {
            "features": np.array(list(means), dtype=str),
            "values": np.array(list(means.values()), dtype=np.float64),
        }
    write_h5mu(query, out)
    where = (  # another panel, or proteins of some cells only: predictions in .obsm
        f"{model.target}.layers[{key!r}]"
        if model.target in query.mod and key in query[model.target].layers
        else f"{model.source}.obsm[{key!r}]"
    )
    report.step(f"wrote {out} (predictions in {where})")
    return 0
