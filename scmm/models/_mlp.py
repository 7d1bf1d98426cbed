"""The MLP model: input preprocessing + :class:`scmm.nn.MLP` + optional target SVD."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..nn import MLP, MLP_PRESETS
from ..pp._rng import as_generator
from ..train import TrainingConfig, lr_range_test, predict, seeded, train
from ._base import BaseModel
from ._preprocess import InputEncoder, TargetEncoder

#: Preset used for each kind of input when ``preset=None``.
DEFAULT_PRESET = {"svd": "cite_svd", "raw": "multiome_raw", "svd+raw": "svd_plus_raw"}
_N_INPUTS = {"svd": 1, "raw": 1, "svd+raw": 2}


class MLPModel(BaseModel):
    """An MLP from the source (its SVD, raw features, or both) to the targets.

    Parameters
    ----------
    preset
        Architecture from :data:`scmm.nn.MLP_PRESETS`; None picks by ``input``: ``"cite_svd"``
        (svd), ``"multiome_raw"`` (raw) or ``"svd_plus_raw"`` (svd+raw).
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
        ``"raw"`` (the source features, kept sparse) or ``"svd+raw"`` (both, two inputs).
    n_components
        Number of SVD components of the source.
    target_svd
        None, or k: the network predicts k SVD coefficients of the targets, mapped back through
        the fixed components (and mean) before the loss.
    training
        Options of :class:`scmm.train.TrainingConfig` (a dict; missing ones take its defaults).
    """

    kind = "mlp"

    def __init__(
        self,
        preset: str | None = None,
        hidden: list[int] | None = None,
        skip: str | int | None = None,
        dropout: float = 0.0,
        batchnorm: bool = True,
        input: str = "svd",
        n_components: int = 64,
        target_svd: int | None = None,
        training: dict[str, Any] | None = None,
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
        config = TrainingConfig(**(training or {}))  # validates the options
        super().__init__(
            preset=preset,
            hidden=None if hidden is None else [int(h) for h in hidden],
            skip=skip,
            dropout=float(dropout),
            batchnorm=bool(batchnorm),
            input=input,
            n_components=int(n_components),
            target_svd=None if target_svd is None else int(target_svd),
            training=config.to_dict(),
        )
        self.encoder = InputEncoder(input, n_components, scale=True)
        self.target_encoder = TargetEncoder(self.params["target_svd"])
        self.net: MLP | None = None
        self._n_in: list[int] | None = None

    @property
    def config(self) -> TrainingConfig:
        """The training options."""
        return TrainingConfig(**self.params["training"])

    def _build_net(self, n_in: list[int], n_out: int) -> MLP:
        p = self.params
        overrides: dict[str, Any] = {"dropout": p["dropout"], "batchnorm": p["batchnorm"]}
        if p["hidden"] is not None:
            overrides["hidden"] = tuple(p["hidden"])
        if p["skip"] is not None:
            overrides["skip"] = p["skip"]
        return MLP.from_preset(p["preset"], n_in if len(n_in) > 1 else n_in[0], n_out, **overrides)

    def _decoder(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        te = self.target_encoder
        return (te.components, te.mean) if te.n_components is not None else (None, None)

    def _prepare(self, X, Y, *, X_extra=None, rng=None):
        """Fit the preprocessing; return the network inputs, a fresh network and the decoder."""
        gen = as_generator(rng)
        svd_seed, init_seed = (int(s) for s in gen.integers(0, 2**31 - 1, size=2))
        self.encoder.fit(X, X_extra=X_extra, rng=svd_seed)
        inputs = self.encoder.transform(X)
        self.target_encoder.fit(Y)
        self._n_in = [int(x.shape[1]) for x in inputs]
        n_out = self.target_encoder.n_components or Y.shape[1]
        with seeded(init_seed):
            net = self._build_net(self._n_in, n_out)
        return inputs, net, gen

    def _fit(self, X, Y, *, X_extra=None, validation=None, rng=None) -> None:
        inputs, net, gen = self._prepare(X, Y, X_extra=X_extra, rng=rng)
        config = self.config
        if isinstance(validation, float):
            config = config.replace(validation_fraction=validation)
            validation = None
        decoder, bias = self._decoder()
        self.net, history = train(
            net,
            inputs,
            Y,
            config=config,
            validation=validation,
            rng=gen,
            decoder=decoder,
            decoder_bias=bias,
        )
        self.history = history

    def lr_range_test(self, X, Y, *, X_extra=None, rng=None, **kwargs: Any):
        """Fit the preprocessing on ``X`` and run :func:`scmm.train.lr_range_test`."""
        inputs, net, gen = self._prepare(X, np.asarray(Y, np.float32), X_extra=X_extra, rng=rng)
        decoder, bias = self._decoder()
        return lr_range_test(
            net,
            inputs,
            Y,
            config=self.config,
            rng=gen,
            decoder=decoder,
            decoder_bias=bias,
            **kwargs,
        )

    def predict_array(self, X) -> np.ndarray:
        """Predict targets (float32, cells × targets) from a source matrix in training order."""
        self._check_fitted()
        inputs = self.encoder.transform(X)
        decoder, bias = self._decoder()
        device = self.params["training"].get("device", "auto")
        return predict(self.net, inputs, device=device, decoder=decoder, decoder_bias=bias)

    def _get_state(self):
        in_meta, in_arrays = self.encoder.get_state()
        t_meta, t_arrays = self.target_encoder.get_state()
        net_arrays = {
            f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()
        }
        meta = {"input": in_meta, "target": t_meta, "n_in": self._n_in, "n_out": self.net.n_out}
        return meta, {**in_arrays, **t_arrays, **net_arrays}

    def _set_state(self, meta, arrays):
        self.encoder = InputEncoder.from_state(meta["input"], arrays)
        self.target_encoder = TargetEncoder.from_state(meta["target"], arrays)
        self._n_in = list(meta["n_in"])
        net = self._build_net(self._n_in, int(meta["n_out"]))
        state = {
            k.removeprefix("net."): torch.from_numpy(np.array(v))
            for k, v in arrays.items()
            if k.startswith("net.")
        }
        net.load_state_dict(state, strict=True)
        self.net = net.eval()
