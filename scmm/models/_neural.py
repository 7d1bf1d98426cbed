"""Shared machinery of the neural models (MLP, autoencoder, pathway MLP, DeepSets).

A :class:`NeuralModel` subclass only builds its network (:meth:`NeuralModel._build_net`) and,
if it needs more than the input SVD / raw features, overrides :meth:`NeuralModel._inputs`.
Everything else is here, once: the input preprocessing (:class:`InputEncoder`), the optional
target SVD (:class:`TargetEncoder`, predictions mapped back through fixed components), the
training options (:class:`scmm.train.TrainingConfig`, every field a keyword of the ``fit_*``
functions), training with :func:`scmm.train.train`, batched prediction, and saving the
network weights as arrays (``net.<name>``) next to the preprocessing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from ..train import TrainingConfig, seeded
from ..train import predict as predict_net
from ..train import train as train_net
from ._base import BaseModel
from ._preprocess import InputEncoder, TargetEncoder

TRAINING_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainingConfig))


def split_training_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into :class:`TrainingConfig` fields and the rest."""
    training = {k: v for k, v in kwargs.items() if k in TRAINING_OPTIONS}
    rest = {k: v for k, v in kwargs.items() if k not in TRAINING_OPTIONS}
    return training, rest


class NeuralModel(BaseModel):
    """Base of the neural models: preprocessing, training, prediction and weights in one place.

    Parameters
    ----------
    input
        ``"svd"``, ``"raw"`` or ``"svd+raw"`` (see :class:`~scmm.models.InputEncoder`).
    n_components
        Number of SVD components of the source.
    target_svd
        Predict this many SVD coefficients of the targets, mapped back through fixed
        components; ``None`` predicts the targets directly.
    **params
        Network hyper-parameters of the subclass and :class:`~scmm.train.TrainingConfig`
        fields.
    """

    kind = "neural"

    def __init__(
        self,
        *,
        input: str = "svd",
        n_components: int = 64,
        target_svd: int | None = None,
        **params: Any,
    ):
        training, _ = split_training_options(params)
        self.config = TrainingConfig(**training)
        self.config.validate()
        super().__init__(input=input, n_components=n_components, target_svd=target_svd, **params)
        self.encoder = InputEncoder(input, n_components)
        self.target_encoder = TargetEncoder(target_svd)
        self.net: nn.Module | None = None
        self._shapes: dict[str, Any] = {}

    # -- for subclasses ----------------------------------------------------------------------
    def _build_net(self, input_dims: tuple[int, ...], n_out: int) -> nn.Module:
        """Return a freshly initialised network for inputs of these widths and n_out outputs."""
        raise NotImplementedError

    def _inputs(self, X) -> tuple:
        """Network inputs for a source matrix in training feature order."""
        return self.encoder.transform(X)

    # -- shared ------------------------------------------------------------------------------
    def _decoder(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        t = self.target_encoder
        return (t.components, t.mean) if t.n_components is not None else (None, None)

    def _fit(self, X, Y, *, X_extra=None, validation=None, rng=None) -> None:
        from ..pp._rng import as_generator

        gen = as_generator(rng)
        self.encoder.fit(X, X_extra=X_extra, rng=gen)
        self.target_encoder.fit(Y)
        inputs = self._inputs(X)
        n_out = self.target_encoder.n_components or Y.shape[1]
        self._shapes = {"input_dims": [int(x.shape[1]) for x in inputs], "n_out": int(n_out)}
        with seeded(gen):
            net = self._build_net(tuple(self._shapes["input_dims"]), n_out)
        decoder, bias = self._decoder()
        self.net, self.history = train_net(
            net,
            inputs,
            Y,
            config=self.config,
            validation=validation,
            rng=gen,
            decoder=decoder,
            decoder_bias=bias,
        )

    def predict_array(self, X) -> np.ndarray:
        """Predict targets (float32, cells × targets) from a source matrix in training order."""
        self._check_fitted()
        decoder, bias = self._decoder()
        return predict_net(
            self.net, self._inputs(X), device=self.config.device, decoder=decoder, decoder_bias=bias
        )

    def _get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        enc_meta, enc_arrays = self.encoder.get_state()
        tgt_meta, tgt_arrays = self.target_encoder.get_state()
        weights = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        meta = {"input": enc_meta, "target": tgt_meta, **self._shapes}
        return meta, {**enc_arrays, **tgt_arrays, **weights}

    def _set_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.encoder = InputEncoder.from_state(meta["input"], arrays)
        self.target_encoder = TargetEncoder.from_state(meta["target"], arrays)
        self._shapes = {"input_dims": meta["input_dims"], "n_out": meta["n_out"]}
        self.net = self._build_net(tuple(meta["input_dims"]), meta["n_out"])
        state = {
            k.removeprefix("net."): torch.from_numpy(v)
            for k, v in arrays.items()
            if k.startswith("net.")
        }
        missing = set(self.net.state_dict()) - set(state)
        if missing:
            msg = f"The saved model lacks the weights {sorted(missing)[:5]}; the folder is damaged."
            raise ValueError(msg)
        self.net.load_state_dict(state)
        self.net.eval()
