"""Shared machinery of the neural models (MLP, autoencoder, pathway MLP, DeepSets).

A :class:`NeuralModel` subclass builds its network (:meth:`NeuralModel._build_net`) and, if it
needs more than the input SVD / raw features, overrides :meth:`NeuralModel._inputs`.
Everything else is here, once: the input preprocessing (:class:`InputEncoder`), the optional
target SVD (:class:`TargetEncoder`, predictions mapped back through fixed components), the
training options (:class:`scmm.train.TrainingConfig`, stored as ``params["training"]``),
training with :func:`scmm.train.train`, the learning-rate range test, batched prediction, and
saving the network weights as arrays (``net.<name>``) next to the preprocessing.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .._utils import SeedLike, as_generator
from ..train import TrainingConfig, lr_range_test, seeded
from ..train import predict as predict_net
from ..train import train as train_net
from ._base import BaseModel, prefixed
from ._preprocess import InputEncoder, TargetEncoder


class NeuralModel(BaseModel):
    """Base of the neural models: preprocessing, training, prediction and weights in one place.

    Parameters
    ----------
    input
        ``"svd"``, ``"raw"`` or ``"svd+raw"`` (see :class:`~scmm.models.InputEncoder`).
    n_components
        Number of SVD components of the source (scaled to unit variance).
    target_svd
        Predict this many SVD coefficients of the targets, mapped back through fixed
        components; ``None`` predicts the targets directly.
    max_raw_features
        Most raw source features fed to the network (highest variance on the training cells).
    training
        A :class:`scmm.train.TrainingConfig` (used as it is), or a dict of some of its options
        over the model's defaults (``default_training()``).
    **params
        JSON-able network hyper-parameters of the subclass.
    """

    kind = "neural"
    #: The training options in which this model differs from :class:`~scmm.train.TrainingConfig`
    #: (see ``default_training()``).
    training_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        input: str = "svd",
        n_components: int = 64,
        target_svd: int | None = None,
        max_raw_features: int | None = 1000,
        training: TrainingConfig | dict[str, Any] | None = None,
        **params: Any,
    ):
        super().__init__(
            **params,
            input=input,
            n_components=int(n_components),
            target_svd=None if target_svd is None else int(target_svd),
            max_raw_features=max_raw_features,
            training=self.training_options(training),
        )
        self.encoder = InputEncoder(
            input, n_components, scale=True, max_raw_features=max_raw_features
        )
        self.target_encoder = TargetEncoder(self.params["target_svd"])
        self.net: nn.Module | None = None
        self._n_in: list[int] | None = None

    @classmethod
    def default_training(cls) -> TrainingConfig:
        """Return the training options of this model unless told otherwise.

        Those of :class:`~scmm.train.TrainingConfig`, changed by ``training_defaults``.
        """
        return TrainingConfig(**cls.training_defaults)

    @classmethod
    def training_options(cls, training: TrainingConfig | dict[str, Any] | None) -> dict[str, Any]:
        """All training options (validated) as a dict: ``training`` over the model's defaults.

        A :class:`~scmm.train.TrainingConfig` is taken as it is; a dict changes some options
        of ``default_training()``.
        """
        if isinstance(training, TrainingConfig):
            return training.to_dict()
        return cls.default_training().replace(**(training or {})).to_dict()

    @property
    def config(self) -> TrainingConfig:
        """The training options."""
        return TrainingConfig(**self.params["training"])

    # -- for subclasses ----------------------------------------------------------------------
    def _build_net(self, n_in: list[int], n_out: int) -> nn.Module:
        """Return a freshly initialised network for inputs of these widths and n_out outputs."""
        raise NotImplementedError

    def _inputs(self, X) -> tuple:
        """Network inputs for a source matrix in training feature order."""
        return self.encoder.transform(X)

    def _target_scaling(self) -> dict[str, np.ndarray | None]:
        """``target_mean`` and ``target_std`` the training batches are standardised with.

        None (the default): the network predicts the targets themselves.
        """
        return {"target_mean": None, "target_std": None}

    # -- shared ------------------------------------------------------------------------------
    def _decoder(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        t = self.target_encoder
        return (t.components, t.mean) if t.n_components is not None else (None, None)

    def _prepare(self, X, Y, *, X_svd=None, rng=None):
        """Fit the preprocessing; return the network inputs, a fresh network and the rng."""
        gen = as_generator(rng)
        svd_seed, init_seed = (int(s) for s in gen.integers(0, 2**31 - 1, size=2))
        self.encoder.fit(X, X_svd=X_svd, rng=svd_seed)
        self.target_encoder.fit(Y)
        inputs = self._inputs(X)
        self._n_in = [int(x.shape[1]) for x in inputs]
        n_out = self.target_encoder.n_components or Y.shape[1]
        with seeded(init_seed):
            net = self._build_net(self._n_in, n_out)
        return inputs, net, gen

    def _train(self, net, inputs, Y, *, validation, rng) -> None:
        config = self.config
        if isinstance(validation, float):
            config = config.replace(validation_fraction=validation)
            validation = None
        decoder, bias = self._decoder()
        self.net, self.history = train_net(
            net,
            inputs,
            Y,
            config=config,
            validation=validation,
            rng=rng,
            decoder=decoder,
            decoder_bias=bias,
            **self._target_scaling(),
        )

    def _fit(self, X, Y, *, X_svd=None, validation=None, rng=None) -> None:
        inputs, net, gen = self._prepare(X, Y, X_svd=X_svd, rng=rng)
        self._train(net, inputs, Y, validation=validation, rng=gen)

    def lr_range_test(
        self, X, Y, *, X_svd=None, rng: SeedLike | np.random.Generator | None = None, **kwargs: Any
    ):
        """Fit the preprocessing on ``X`` and run :func:`scmm.train.lr_range_test`."""
        Y = self._as_targets(Y)
        inputs, net, gen = self._prepare(X, Y, X_svd=X_svd, rng=rng)
        decoder, bias = self._decoder()
        return lr_range_test(
            net,
            inputs,
            Y,
            config=self.config,
            rng=gen,
            decoder=decoder,
            decoder_bias=bias,
            **self._target_scaling(),
            **kwargs,
        )

    def predict_array(self, X) -> np.ndarray:
        """Predict targets (float32, cells × targets) from a source matrix in training order."""
        self._check_fitted()
        decoder, bias = self._decoder()
        return predict_net(
            self.net, self._inputs(X), device=self.config.device, decoder=decoder, decoder_bias=bias
        )

    def _get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        in_meta, in_arrays = self.encoder.get_state()
        t_meta, t_arrays = self.target_encoder.get_state()
        weights = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        n_out = self.target_encoder.n_components or len(self.target_features)
        meta = {"input": in_meta, "target": t_meta, "n_in": self._n_in, "n_out": n_out}
        return meta, {**in_arrays, **t_arrays, **weights}

    def _set_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.encoder = InputEncoder.from_state(meta["input"], arrays)
        self.target_encoder = TargetEncoder.from_state(meta["target"], arrays)
        self._n_in = list(meta["n_in"])
        net = self._build_net(self._n_in, int(meta["n_out"]))
        state = {k: torch.from_numpy(np.array(v)) for k, v in prefixed(arrays, "net.").items()}
        missing = set(net.state_dict()) - set(state)
        if missing:
            msg = f"The saved model lacks the weights {sorted(missing)[:5]}; the folder is damaged."
            raise ValueError(msg)
        net.load_state_dict(state, strict=True)
        self.net = net.eval()
