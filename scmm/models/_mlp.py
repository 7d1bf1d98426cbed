"""The MLP model: input preprocessing + :class:`scmm.nn.MLP` + optional target SVD."""

from __future__ import annotations

from typing import Any

from ..nn import MLP, MLP_PRESETS
from ..train import TrainingConfig
from ._neural import NeuralModel

#: Preset used for each kind of input when ``preset=None``.
DEFAULT_PRESET = {"svd": "cite_svd", "raw": "multiome_raw", "svd+raw": "svd_plus_raw_wide"}
_N_INPUTS = {"svd": 1, "raw": 1, "svd+raw": 2}


class MLPModel(NeuralModel):
    """An MLP from the source (its SVD, raw features, or both) to the targets.

    Parameters
    ----------
    preset
        Architecture from :data:`scmm.nn.MLP_PRESETS`; None picks by ``input``: ``"cite_svd"``
        (svd), ``"multiome_raw"`` (raw) or ``"svd_plus_raw_wide"`` (svd+raw).
    hidden
        Trunk block widths, replacing the preset's.
    skip
        Skip connections into the head (``"none"``, ``"all"`` or k), replacing the preset's.
    dropout
        Dropout after each block.
    batchnorm
        BatchNorm in each block.
    input
        ``"svd"`` (TruncatedSVD of the source, each component scaled to unit variance),
        ``"raw"`` (the source features, kept sparse) or ``"svd+raw"`` (both, two inputs; the
        default, as :func:`scmm.tl.fit_mlp`'s).
    n_components
        Number of SVD components of the source.
    target_svd
        None, or k: the network predicts k SVD coefficients of the targets, mapped back through
        the fixed components (and mean) before the loss.
    max_raw_features
        With raw inputs, keep this many source features (highest variance on the training
        cells; ``None``: all).
    training
        A :class:`scmm.train.TrainingConfig` (used as it is), or a dict of some of its options
        over :class:`~scmm.train.TrainingConfig`'s defaults (the MLP changes none of them).
    """

    kind = "mlp"

    @property
    def sparse_targets(self) -> bool:
        """Sparse targets stay sparse (batches densified one at a time) without ``target_svd``."""
        return self.target_encoder.n_components is None

    def __init__(
        self,
        preset: str | None = None,
        hidden: list[int] | None = None,
        skip: str | int | None = None,
        dropout: float = 0.2,
        batchnorm: bool = True,
        input: str = "svd+raw",
        n_components: int = 64,
        target_svd: int | None = None,
        max_raw_features: int | None = 300,
        training: TrainingConfig | dict[str, Any] | None = None,
    ):
        if input not in DEFAULT_PRESET:
            msg = f"`input={input!r}` is not one of {tuple(DEFAULT_PRESET)}."
            raise ValueError(msg)
        preset = DEFAULT_PRESET[input] if preset is None else preset
        if preset not in MLP_PRESETS:
            msg = f"`preset={preset!r}` is unknown; use one of {sorted(MLP_PRESETS)}."
            raise ValueError(msg)
        branches = MLP_PRESETS[preset]["branches"]
        n_branch_inputs = 1 if branches is None else len(branches)
        if n_branch_inputs != _N_INPUTS[input]:
            msg = (
                f"`preset={preset!r}` takes {n_branch_inputs} input(s) but `input={input!r}` "
                f"gives {_N_INPUTS[input]}; use preset={DEFAULT_PRESET[input]!r} or None."
            )
            raise ValueError(msg)
        super().__init__(
            preset=preset,
            hidden=None if hidden is None else [int(h) for h in hidden],
            skip=skip,
            dropout=float(dropout),
            batchnorm=bool(batchnorm),
            input=input,
            n_components=n_components,
            target_svd=target_svd,
            max_raw_features=max_raw_features,
            training=training,
        )

    @property
    def reads_backed(self) -> bool:
        """The input encoder reads backed matrices in row blocks (SVD and raw features)."""
        return True

    def _build_net(self, n_in: list[int], n_out: int) -> MLP:
        p = self.params
        overrides: dict[str, Any] = {"dropout": p["dropout"], "batchnorm": p["batchnorm"]}
        if p["hidden"] is not None:
            overrides["hidden"] = tuple(p["hidden"])
        if p["skip"] is not None:
            overrides["skip"] = p["skip"]
        return MLP.from_preset(p["preset"], n_in if len(n_in) > 1 else n_in[0], n_out, **overrides)
