"""Files in and out of the ``scmm`` commands: reading inputs, normalising, writing results."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ._args import UsageError

if TYPE_CHECKING:  # imported where used: `scmm CMD --help` and path errors answer at once
    import anndata as ad
    import mudata as md

#: The normalisation ``--normalize auto`` applies to raw counts, by modality name.
AUTO_NORMALIZATION = {
    "rna": "log_cp10k",
    "gex": "log_cp10k",
    "prot": "clr",
    "adt": "clr",
    "protein": "clr",
    "atac": "tfidf",
    "peaks": "tfidf",
}

#: Written into a model folder by ``scmm fit``: how its inputs were prepared.
FIT_RECORD = "fit.json"


class Reporter:
    """Step messages on stderr (off with ``--quiet``) and result tables on stdout."""

    def __init__(self, command: str, *, quiet: bool):
        self.command = command
        self.quiet = quiet

    def step(self, message: str) -> None:
        """Say what the command is doing now."""
        if not self.quiet:
            print(f"scmm {self.command}: {message}", file=sys.stderr, flush=True)

    def table(self, rows: list[dict], label: str) -> None:
        """Print scores (``n_cells``, Pearson per cell and per feature, RMSE) as a table.

        A row whose scores carry the mean profile's (``mean_profile_*``, as
        :func:`scmm.tl.fit_mlp` and the others record them) is followed by that reference and
        the gain over it (for RMSE: the reduction), as in ``mdata.uns[key]['scores']``.
        """
        if self.quiet:
            return
        print(f"| {label} | cells | per-cell Pearson | mean per-feature Pearson | RMSE |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['name']} | {r['n_cells']} | {r['pearson_per_cell']:.4f} "
                f"| {r['pearson_per_feature']:.4f} | {r['rmse']:.4f} |"
            )
            if "mean_profile_pearson_per_cell" in r:
                print(
                    f"| mean profile (training means) | {r['n_cells']} "
                    f"| {r['mean_profile_pearson_per_cell']:.4f} "
                    f"| {r['mean_profile_pearson_per_feature']:.4f} "
                    f"| {r['mean_profile_rmse']:.4f} |"
                )
                print(
                    f"| gain over the mean profile (RMSE: reduction) | "
                    f"| {r['gain_pearson_per_cell']:+.4f} | {r['gain_pearson_per_feature']:+.4f} "
                    f"| {r['rmse_reduction']:+.4f} |"
                )


def check_file(path: str, kind: str) -> Path:
    """Return ``path`` as a Path; an error unless it is an existing ``.{kind}`` file.

    Called before the heavy imports, so that a wrong path is reported at once.
    """
    p = Path(path)
    if not p.is_file():
        msg = f"`{path}` does not exist; check the path"
        raise FileNotFoundError(msg)
    if p.suffix != f".{kind}":
        msg = f"`{path}` is not a .{kind} file; pass a .{kind} file here"
        raise UsageError(msg)
    return p


def read_file(path: str, kind: str):
    """Read one ``.h5ad`` (``kind="h5ad"``) or ``.h5mu`` file, with a one-line error."""
    import anndata as ad
    import mudata as md

    p = check_file(path, kind)
    reader = ad.read_h5ad if kind == "h5ad" else md.read_h5mu
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ad.OldFormatWarning)
        warnings.filterwarnings("ignore", message="var_names are not unique")
        warnings.filterwarnings("ignore", category=FutureWarning)
        try:
            return reader(p)
        except (OSError, KeyError, ValueError) as err:
            msg = f"cannot read `{path}` as a .{kind} file ({err}); is it damaged?"
            raise ValueError(msg) from err


def read_10x(path: str) -> md.MuData:
    """Read a 10x Genomics ``.h5`` (Cell Ranger's ``filtered_feature_bc_matrix.h5``).

    One modality per feature type, as :func:`muon.read_10x_h5` splits them: *Gene Expression*
    is ``rna``, *Antibody Capture* ``prot``, *Peaks* (Cell Ranger ARC) ``atac``; raw counts in
    ``.X``, Ensembl ids in ``var['gene_ids']``.
    """
    import mudata as md
    import scanpy as sc

    p = check_file(path, "h5")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="(var_names|Variable names) are not unique")
        warnings.filterwarnings("ignore", category=FutureWarning)
        try:
            adata = sc.read_10x_h5(p, gex_only=False)
        except (OSError, KeyError, ValueError) as err:
            msg = (
                f"cannot read `{path}` as a 10x Genomics .h5 file ({err}); pass Cell Ranger's "
                "filtered_feature_bc_matrix.h5, or convert other files to .h5ad / .h5mu"
            )
            raise ValueError(msg) from err
        check_filtered(adata, path)
        if "feature_types" not in adata.var.columns:  # Cell Ranger 2: genes only
            return mudata_of({"rna": adata})
        return md.MuData(adata)


#: Barcodes and median counts per barcode beyond which a 10x file holds empty droplets.
EMPTY_DROPLETS = (20_000, 20)


def check_filtered(adata: ad.AnnData, path: str) -> None:
    """Refuse Cell Ranger's unfiltered matrix (every barcode, empty droplets included)."""
    import numpy as np

    n_barcodes, min_median = EMPTY_DROPLETS
    if adata.n_obs < n_barcodes:
        return
    median = float(np.median(np.asarray(adata.X.sum(axis=1)).ravel()))
    if median < min_median:
        msg = (
            f"`{path}` holds {adata.n_obs:,} barcodes with a median of {median:g} counts: it "
            "looks like Cell Ranger's raw_feature_bc_matrix.h5 (every barcode, empty droplets "
            "included); pass filtered_feature_bc_matrix.h5, or the cells you called"
        )
        raise ValueError(msg)


def mudata_of(mods: dict[str, ad.AnnData]) -> md.MuData:
    """Return a MuData of ``mods`` (a gene and a protein may share a name: not warned about)."""
    import mudata as md

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="var_names are not unique")
        return md.MuData(mods)


def match_cells(mods: dict[str, ad.AnnData]) -> dict[str, ad.AnnData]:
    """Put every modality's cells in the first one's order; an error when the cells differ."""
    names = list(mods)
    first = mods[names[0]]
    for name, adata in mods.items():
        if not adata.obs_names.is_unique:
            msg = f"cell names of {name!r} are not unique; make them unique in that file first"
            raise ValueError(msg)
    out = {names[0]: first}
    for name in names[1:]:
        adata = mods[name]
        if adata.obs_names.equals(first.obs_names):
            out[name] = adata
            continue
        only_first = first.obs_names.difference(adata.obs_names)
        only_this = adata.obs_names.difference(first.obs_names)
        if len(only_first) or len(only_this):
            example = list((only_first if len(only_first) else only_this)[:3])
            msg = (
                f"the files hold different cells: {len(only_first)} cells of {names[0]!r} are not "
                f"in {name!r} and {len(only_this)} cells of {name!r} are not in {names[0]!r} "
                f"(e.g. {example}); subset both files to the same cell names"
            )
            raise ValueError(msg)
        out[name] = adata[first.obs_names].copy()
    return out


def check_inputs(data: str | None, files: dict[str, str], *, one_h5ad: bool) -> None:
    """Check the input options and that their files exist, before anything is imported or read.

    ``one_h5ad=False``: a lone ``.h5ad`` is not enough (``scmm fit`` needs two modalities).
    """
    if data is not None and files:
        msg = "pass either DATA or --rna/--prot/--atac/--mod files, not both"
        raise UsageError(msg)
    if data is None and not files:
        msg = "no input: pass a .h5mu file (DATA) or one .h5ad per modality (--rna A --prot B)"
        raise UsageError(msg)
    if data is not None:
        if data.endswith(".h5"):
            check_file(data, "h5")
        elif data.endswith(".h5ad"):
            if not one_h5ad:
                msg = (
                    f"`{data}` holds one modality; pass a .h5mu file or one .h5ad per modality "
                    "(e.g. `--rna rna.h5ad --prot prot.h5ad`)"
                )
                raise UsageError(msg)
            check_file(data, "h5ad")
        else:
            check_file(data, "h5mu")
    for path in files.values():
        check_file(path, "h5ad")


def read_inputs(data: str | None, files: dict[str, str], *, single: str | None) -> md.MuData:
    """Read DATA (``.h5mu``, 10x ``.h5``, ``.h5ad`` as modality ``single``) or ``.h5ad`` files.

    ``single=None``: a lone ``.h5ad`` is not enough (``scmm fit`` needs two modalities).
    """
    check_inputs(data, files, one_h5ad=single is not None)
    if data is not None:
        if data.endswith(".h5"):
            return read_10x(data)
        if data.endswith(".h5ad"):
            return mudata_of({single: read_file(data, "h5ad")})
        return read_file(data, "h5mu")
    mods = {name: read_file(path, "h5ad") for name, path in files.items()}
    return mudata_of(match_cells(mods))


def is_counts(X) -> bool:
    """Whether the matrix ``X`` holds non-negative whole numbers (raw counts)."""
    import numpy as np
    import scipy.sparse as sp

    if X is None:
        return False
    data = X.data if sp.issparse(X) else np.asarray(X)
    return not data.size or (data.min() >= 0 and np.array_equal(data, np.round(data)))


def normalize_counts(mdata: md.MuData, mod: str, method: str, *, flag: str) -> None:
    """Normalise modality ``mod`` of ``mdata`` from its raw counts with ``method`` (in place).

    ``flag`` names the option that asked for it, for the error when there are no counts.
    """
    from .. import pp

    check_counts(mdata, mod, method, flag=flag)
    pp.normalize(mdata, mod, method=method, layer="counts")


def check_counts(mdata: md.MuData, mod: str, method: str, *, flag: str) -> None:
    """Raise an error naming ``flag`` unless modality ``mod`` holds raw counts to normalise."""
    from .._validate import raw_holds_counts

    adata = mdata[mod]
    if not is_counts(adata.layers["counts"] if "counts" in adata.layers else adata.X):
        where = "`.layers['counts']`" if "counts" in adata.layers else "`.X` (no 'counts' layer)"
        msg = (
            f"{flag} normalises {mod!r} from raw counts ({method}), but its {where} holds "
            "negative or non-integer values; give the raw counts, or normalise it yourself the "
            "same way as the training data and pass `--normalize none`"
        )
        if "counts" not in adata.layers and raw_holds_counts(adata):
            msg += (
                "; its `.raw` holds raw counts (where R converters and scanpy keep them): save "
                "them in the file as `.layers['counts']` "
                "(`adata.layers['counts'] = adata.raw[:, adata.var_names].X`)"
            )
        raise ValueError(msg)


def auto_method(mod: str) -> str:
    """Return the normalisation ``--normalize auto`` applies to modality ``mod``."""
    if mod.lower() not in AUTO_NORMALIZATION:
        msg = (
            f"`--normalize auto` cannot tell how to normalise modality {mod!r} (it knows "
            f"{sorted(AUTO_NORMALIZATION)}); rename the modality, or normalise it yourself and "
            "pass `--normalize none`"
        )
        raise UsageError(msg)
    return AUTO_NORMALIZATION[mod.lower()]


def check_new_path(path: Path, *, overwrite: bool) -> None:
    """Raise an error when ``path`` exists and ``--overwrite`` was not given."""
    if path.exists() and not overwrite:
        msg = f"`{path}` exists; pass --overwrite to replace it, or choose another --out"
        raise FileExistsError(msg)


def write_h5mu(mdata: md.MuData, path: Path) -> None:
    """Write ``mdata`` to ``path`` through a temporary file: never a half-written result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".h5mu", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            mdata.write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(doc: dict, path: Path) -> None:
    """Write ``doc`` as JSON to ``path`` through a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
