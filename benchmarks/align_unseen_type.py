"""What ``predict(align=...)`` does to cells of a type the reference lacks (synthetic).

    python benchmarks/align_unseen_type.py

The cell types of ``tests/test_reference_distance.py`` (Poisson counts around type-specific
gene means; proteins follow the type): ridge, the MLP and an ensemble of ridge and kNN are
fitted on 300 cells of each of types 0, 1 and 2 (seed 0), then predict 100 new cells of an
unseen type 3, of types 0 and 3 half and half, and of type 0 alone, with no alignment,
``"symphony"`` and ``"standardize"``. Prints the MSE on the cells' proteins and whether the
shift warning's test flags the query. A mechanism check on synthetic data (does an alignment
pull a new cell type onto the reference's?), not an accuracy claim.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_reference_distance import _cell_types

import scmm
from scmm.models._reference_distance import shifted

QUERIES = {"unseen type 3": [3], "types 0 + 3": [0, 3], "type 0 (seen)": [0]}
ALIGNS = (None, "symphony", "standardize")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    mdata = _cell_types(300, [0, 1, 2], seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "ridge": scmm.tl.fit_baseline(
                mdata, "rna", "prot", method="ridge", n_components=8, rng=0, key_added="r"
            ),
            "mlp": scmm.tl.fit_mlp(
                mdata,
                "rna",
                "prot",
                max_epochs=30,
                n_components=16,
                training={"verbose": False},
                rng=0,
                key_added="m",
            ),
            "ensemble (ridge, knn)": scmm.tl.fit_ensemble(
                mdata, "rna", "prot", methods=["ridge", "knn"], n_folds=3, rng=0
            ),
        }
    rows = []
    for name, model in models.items():
        for query, types in QUERIES.items():
            row = {"model": name, "query": query, "flagged": None}
            for align in ALIGNS:
                cells = _cell_types(100 // len(types), types, seed=9)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scmm.tl.predict(model, cells, key_added="p", align=align)
                error = cells["prot"].layers["p"] - cells["prot"].X
                row[f"MSE {align or 'none'}"] = float(np.mean(error**2))
                summary = cells.uns["p"]["reference_distance"]
                row["flagged"] = shifted(summary["share_beyond_reference_99"], cells.n_obs)
            rows.append(row)
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
