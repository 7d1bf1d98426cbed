"""The DeepSets model: ATAC peaks in each gene's window → that gene's expression.

The network (:class:`scmm.nn.DeepSetsNet`) reads two inputs per cell, the TruncatedSVD
embedding of its ATAC (scaled per component, the cell context) and the raw sparse ATAC; the
gene–peak windows (from :func:`scmm.pp.gene_peak_windows`) are stored in the model as the CSR
parts of the genes × peaks ``distance``, ``width`` and ``in_body`` matrices, so the model predicts
for new cells (peaks aligned by name) and rebuilds its network on load.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from .._utils import row_blocks
from ..nn import DeepSetsNet, pair_features
from ..train import TrainingConfig
from ..train import predict as predict_net
from ._base import prefixed
from ._gene_activity import windows_arrays
from ._neural import NeuralModel
from ._preprocess import column_moments


def _mean_abs_nonzero(X) -> float:
    """Mean absolute value of the non-zero entries of ``X``, a block of rows at a time."""
    total, count = 0.0, 0
    for _, part in row_blocks(X, dtype=np.float32, sparse=True):
        values = part.data[part.data != 0]
        total += float(np.abs(values).sum(dtype=np.float64))
        count += values.size
    return total / count if count else 1.0


class DeepSetsModel(NeuralModel):
    """DeepSets from gene–peak windows plus the cell's ATAC SVD to gene expression.

    Parameters
    ----------
    channels
        Channels ``C`` of φ (accessibility × MLP of the pair features).
    phi_hidden
        Hidden width of φ's MLP.
    hidden
        Hidden width of ρ.
    context_hidden
        Width of the context encoder of the SVD embedding.
    gene_embedding
        Dimension of the learned gene embedding.
    dropout
        Dropout in the context encoder.
    standardize
        Train on per-gene standardised targets (each gene weighs the same in the MSE); the
        predictions are mapped back to target units.
    max_memory_mb
        Memory budget of ρ's ``batch × gene chunk × hidden`` activations.
    n_components
        SVD components of the ATAC (the cell context).
    windows_key
        Key of the windows in ``mdata.uns`` at fit time (a record; the windows are stored in
        the model by :meth:`set_windows`).
    input, target_svd, max_raw_features
        Fixed: ``"svd+raw"``, ``None`` and ``None`` (accepted so saved parameters reload).
    training
        A :class:`scmm.train.TrainingConfig` (used as it is), or a dict of some of its options
        over the model's defaults: those of :class:`~scmm.train.TrainingConfig` except
        ``max_epochs=30``, ``batch_size=256``, ``swa=False`` and ``loss="mse"``
        (``training_defaults``).
    """

    kind = "deepsets"
    training_defaults: ClassVar[dict[str, Any]] = {
        "max_epochs": 30,
        "batch_size": 256,
        "swa": False,
        "loss": "mse",
    }

    def __init__(
        self,
        *,
        channels: int = 8,
        phi_hidden: int = 32,
        hidden: int = 64,
        context_hidden: int = 256,
        gene_embedding: int = 64,
        dropout: float = 0.3,
        standardize: bool = True,
        max_memory_mb: float = 1024.0,
        n_components: int = 64,
        windows_key: str = "windows",
        input: str = "svd+raw",
        target_svd: int | None = None,
        max_raw_features: int | None = None,
        training: TrainingConfig | dict[str, Any] | None = None,
    ):
        if input != "svd+raw" or target_svd is not None or max_raw_features is not None:
            msg = (
                "DeepSetsModel reads `input='svd+raw'` with every peak (`max_raw_features=None`) "
                "and predicts genes (`target_svd=None`)."
            )
            raise ValueError(msg)
        for name, value in (
            ("channels", channels),
            ("hidden", hidden),
            ("phi_hidden", phi_hidden),
            ("context_hidden", context_hidden),
            ("gene_embedding", gene_embedding),
        ):
            if int(value) < 1:
                msg = f"`{name}={value}` must be >= 1."
                raise ValueError(msg)
        if not max_memory_mb > 0:
            msg = f"`max_memory_mb={max_memory_mb}` must be > 0."
            raise ValueError(msg)
        super().__init__(
            input="svd+raw",
            n_components=int(n_components),
            target_svd=None,
            max_raw_features=None,
            channels=int(channels),
            phi_hidden=int(phi_hidden),
            hidden=int(hidden),
            context_hidden=int(context_hidden),
            gene_embedding=int(gene_embedding),
            dropout=float(dropout),
            standardize=bool(standardize),
            max_memory_mb=float(max_memory_mb),
            windows_key=windows_key,
            training=training,
        )
        self.windows: dict[str, np.ndarray] | None = None
        self._scale: dict[str, np.ndarray] = {}

    def set_windows(self, windows: dict[str, Any]) -> DeepSetsModel:
        """Store the gene–peak windows (the dict of :func:`scmm.pp.gene_peak_windows`)."""
        self.windows = windows_arrays(windows)
        return self

    # -- network -------------------------------------------------------------------------------
    def _build_net(self, input_dims: list[int], n_out: int) -> DeepSetsNet:
        if self.windows is None:
            msg = "Call `set_windows` before fitting (`scmm.tl.fit_deepsets` does it)."
            raise RuntimeError(msg)
        w = self.windows
        n_genes, n_peaks = (int(s) for s in w["shape"])
        if n_out != n_genes or input_dims[1] != n_peaks:
            msg = (
                f"The windows pair {n_genes} genes × {n_peaks} peaks but the data has "
                f"{n_out} targets × {input_dims[1]} source features; compute the windows on "
                "these modalities."
            )
            raise ValueError(msg)
        pair_gene = np.repeat(np.arange(n_genes), np.diff(w["indptr"]))
        p = self.params
        return DeepSetsNet(
            input_dims[0],
            pair_gene,
            w["indices"],
            pair_features(w["distance"], w["width"], w["in_body"]),
            n_genes,
            n_peaks,
            channels=p["channels"],
            phi_hidden=p["phi_hidden"],
            hidden=p["hidden"],
            context_hidden=p["context_hidden"],
            gene_embedding=p["gene_embedding"],
            dropout=p["dropout"],
            max_memory_mb=p["max_memory_mb"],
            accessibility_scale=float(self._scale["accessibility"][0]),
        )

    @property
    def reads_backed(self) -> bool:
        """The source is read in row blocks; its training rows are never copied."""
        return True

    @property
    def sparse_targets(self) -> bool:
        """Sparse targets stay sparse; batches are densified and standardised one at a time."""
        return True

    def _prepare(self, X, Y, *, X_svd=None, rng=None):
        mean, var = column_moments(Y)
        std = np.sqrt(np.maximum(var, 0.0))
        std = np.where(std > 1e-6, std, 1.0)
        if self.params["standardize"]:
            shift, scale = mean, std
        else:
            shift, scale = np.zeros_like(mean), np.ones_like(std)
        self._scale = {
            "accessibility": np.asarray([_mean_abs_nonzero(X)], np.float32),
            "target_mean": shift.astype(np.float32),
            "target_std": scale.astype(np.float32),
        }
        inputs, net, gen = super()._prepare(X, Y, X_svd=X_svd, rng=rng)
        with torch.no_grad():  # start from each gene's mean
            net.gene_bias.copy_(torch.from_numpy(((mean - shift) / scale).astype(np.float32)))
        return inputs, net, gen

    def _target_scaling(self) -> dict[str, np.ndarray]:
        return {"target_mean": self._scale["target_mean"], "target_std": self._scale["target_std"]}

    def predict_array(self, X) -> np.ndarray:
        """Predict targets (float32, cells × genes) from a source matrix in training order.

        Cells are predicted in batches of the training batch size (whose memory training
        already needed) and unstandardised in place: the output is the only cells × genes array.
        """
        self._check_fitted()
        out = predict_net(
            self.net, self._inputs(X), batch_size=self.config.batch_size, device=self.config.device
        )
        out *= self._scale["target_std"]
        out += self._scale["target_mean"]
        return out

    # -- state ---------------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        arrays.update({f"windows.{k}": v for k, v in self.windows.items()})
        arrays.update({f"scale.{k}": v for k, v in self._scale.items()})
        return meta, arrays

    def _set_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.windows = prefixed(arrays, "windows.")
        self._scale = prefixed(arrays, "scale.")
        super()._set_state(meta, arrays)

    # -- interpretation ------------------------------------------------------------------------
    def gene_pairs(self, gene: int) -> np.ndarray:
        """Peak indices (training feature order) of gene ``gene``'s window."""
        ptr = self.windows["indptr"]
        return np.asarray(self.windows["indices"][ptr[gene] : ptr[gene + 1]])
