"""``fit_baseline``: the classical methods a model must beat."""

from __future__ import annotations

from typing import Literal, Unpack

from mudata import MuData

from .._docs import fit_doc
from ..models import BaselineModel, GeneActivityModel
from ._contract import fit_model
from ._training import FitKeywords, fit_keywords


@fit_doc()
def fit_baseline(
    mdata: MuData,
    source: str,
    target: str,
    *,
    method: Literal["mean", "ridge", "knn", "kernel_ridge", "gene_activity"] = "ridge",
    n_components: int = 32,
    n_neighbors: int = 20,
    windows_key: str = "windows",
    **contract: Unpack[FitKeywords],
) -> BaselineModel | GeneActivityModel:
    """Fit a classical baseline from the source's SVD (or gene–peak windows) to the target.

    Parameters
    ----------
    {fit_data}
    method
        ``"mean"``, ``"ridge"``, ``"knn"`` or ``"kernel_ridge"`` (see
        :class:`scmm.models.BaselineModel`), or ``"gene_activity"`` (ATAC → RNA: per gene,
        the ``exp(-|d|/5000)``-weighted sum of its window's peaks, then a per-gene linear fit;
        see :class:`scmm.models.GeneActivityModel`).
    n_components
        Number of TruncatedSVD components of the source.
    n_neighbors
        Neighbours of ``"knn"``.
    windows_key
        Key in ``mdata.uns`` of the gene–peak windows from :func:`scmm.pp.gene_peak_windows`
        (``"gene_activity"`` only; the windows are stored in the model).
    {fit_keywords}

    Returns
    -------
    The fitted :class:`~scmm.models.BaselineModel` (or
    :class:`~scmm.models.GeneActivityModel`). Writes

    {fit_writes}

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.toy_cite()  # synthetic: 60 cells, 30 genes, 4 proteins
    >>> model = scmm.tl.fit_baseline(mdata, "rna", "prot", method="knn", n_components=5)
    >>> mdata["prot"].layers["scmm_knn"].shape
    (60, 4)
    """
    contract = fit_keywords(contract, "fit_baseline")
    if method == "gene_activity":
        from ._deepsets import get_windows

        windows = get_windows(mdata, windows_key, source, target)
        model = GeneActivityModel(windows_key=windows_key).set_windows(windows)
    else:
        model = BaselineModel(method, n_components=n_components, n_neighbors=n_neighbors)
    return fit_model(model, mdata, source, target, **contract)
