"""Train/test splits of cells: by batch (donor) or random."""

from __future__ import annotations

import numpy as np
from mudata import MuData

from .._utils import SeedLike, as_generator
from .._validate import obs_columns_listing


def split_cells(
    mdata: MuData,
    *,
    test_batches=None,
    batch_key: str = "batch",
    test_fraction: float | None = None,
    key_added: str = "train",
    rng: SeedLike | np.random.Generator | None = None,
    copy: bool = False,
) -> MuData | None:
    """Mark training cells in ``mdata.obs[key_added]``, for the ``train=`` argument of the fits.

    Either hold out whole batches (donors, samples: what tells how a model does on new data), or
    a random fraction: the test cells are the first ``test_fraction`` of
    ``np.random.default_rng(rng).permutation(n_cells)``.

    Parameters
    ----------
    mdata
        The multimodal data.
    test_batches
        Batch name(s) held out for testing.
    batch_key
        Column of ``mdata.obs`` (or of every modality's ``.obs``) holding the batch.
    test_fraction
        Fraction of cells held out at random (instead of ``test_batches``).
    key_added
        Name of the boolean column written.
    rng
        Seed or :class:`numpy.random.Generator` for the random split.
    copy
        Work on a copy and return it.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``mdata.obs[key_added]`` : bool
        True for training cells.

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> mdata = md.MuData({"rna": ad.AnnData(np.ones((10, 3), dtype="float32"))})
    >>> scmm.pp.split_cells(mdata, test_fraction=0.2, rng=0)
    >>> int((~mdata.obs["train"]).sum())
    2
    """
    if (test_batches is None) == (test_fraction is None):
        msg = "Pass exactly one of `test_batches` and `test_fraction`."
        raise ValueError(msg)
    n = mdata.n_obs
    if test_fraction is not None:
        if not 0 < test_fraction < 1:
            msg = f"`test_fraction={test_fraction}` must be between 0 and 1."
            raise ValueError(msg)
        test = np.zeros(n, dtype=bool)
        test[as_generator(rng).permutation(n)[: round(test_fraction * n)]] = True
    else:
        batches = _batch_column(mdata, batch_key)
        wanted = [
            str(b) for b in ([test_batches] if isinstance(test_batches, str) else test_batches)
        ]
        present = sorted({str(b) for b in batches})  # plain str: no `np.str_('s1d1')` shown
        unknown = sorted(set(wanted) - set(present))
        if unknown:
            msg = f"`test_batches` {unknown} not found in `{batch_key}` (has: {present})."
            raise ValueError(msg)
        test = np.isin(batches.astype(str), wanted)
    if test.all():
        msg = "The split leaves no training cells."
        raise ValueError(msg)
    if copy:
        mdata = mdata.copy()
    mdata.obs[key_added] = ~test
    return mdata if copy else None


def _batch_column(mdata: MuData, batch_key: str) -> np.ndarray:
    if batch_key in mdata.obs.columns:
        return mdata.obs[batch_key].to_numpy()
    for adata in mdata.mod.values():
        if batch_key in adata.obs.columns:
            col = adata.obs[batch_key].reindex(mdata.obs_names)
            if col.notna().all():
                return col.to_numpy()
    msg = (
        f"`batch_key={batch_key!r}` is not a column of `.obs` of the MuData or its modalities "
        f"({obs_columns_listing(mdata)})."
    )
    raise KeyError(msg)
