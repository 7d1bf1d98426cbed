"""The LightningModule wrapping any prediction network."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn

from ._config import TrainingConfig
from ._losses import LOSSES, informative_rows, mixed_loss, sparsity_penalty, weight_penalty

__all__ = ["PredictionModule"]


class PredictionModule(L.LightningModule):
    """Train ``net`` to map a tuple of input tensors to targets.

    Parameters
    ----------
    net
        Any :class:`torch.nn.Module` whose ``forward(*inputs)`` takes the batch's input tensors
        (dense float32, or torch sparse CSR for raw sparse inputs) and returns predictions in the
        (possibly SVD-reduced) target space. If it has a method ``auxiliary_loss()``, it is
        called after each training forward pass and a returned tensor (None: nothing) is added
        to the loss that is minimised (not to the logged ``train_loss``), e.g. the weighted
        reconstruction loss of :class:`scmm.nn.AutoencoderMLP`.
    config
        Training options.
    decoder
        Optional fixed matrix ``(k, n_targets)``: predictions of ``k`` coefficients are mapped
        to ``pred @ decoder + decoder_bias`` before the loss, so that the loss (and the sparsity
        penalty) is computed on the target values themselves. The targets ``Y`` are then given in
        the decoded space. For ``loss="mse"`` either space works: pass the coefficients as ``Y``
        and no decoder to train in the reduced space (same minimiser when the decoder rows are
        orthonormal, as with SVD components).
    decoder_bias
        Optional fixed offset ``(n_targets,)`` added after decoding (e.g. the target means removed
        before the SVD).
    target_mean, target_std
        Optional ``(n_targets,)``: the targets of each batch are standardised to
        ``(y - target_mean) / target_std`` before the loss (the network predicts standardised
        values), so a wide sparse target is never standardised, hence densified, in full. Not
        with ``decoder``.
    """

    def __init__(
        self,
        net: nn.Module,
        config: TrainingConfig,
        decoder: np.ndarray | torch.Tensor | None = None,
        decoder_bias: np.ndarray | torch.Tensor | None = None,
        target_mean: np.ndarray | None = None,
        target_std: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.config = config
        if (target_mean is None) != (target_std is None):
            msg = "Pass both `target_mean` and `target_std`, or neither."
            raise ValueError(msg)
        if target_mean is not None and decoder is not None:
            msg = "`target_mean`/`target_std` cannot be combined with `decoder`."
            raise ValueError(msg)
        for name, value in (("target_mean", target_mean), ("target_std", target_std)):
            if value is not None:
                value = torch.as_tensor(np.asarray(value), dtype=torch.float32).reshape(1, -1)
            self.register_buffer(name, value)
        if decoder is not None:
            self.register_buffer(
                "decoder", torch.as_tensor(np.asarray(decoder), dtype=torch.float32)
            )
        else:
            self.decoder = None
        if decoder_bias is not None:
            if decoder is None:
                msg = "`decoder_bias` needs `decoder`."
                raise ValueError(msg)
            bias = torch.as_tensor(np.asarray(decoder_bias), dtype=torch.float32).reshape(-1)
            self.register_buffer("decoder_bias", bias)
        else:
            self.decoder_bias = None
        self.total_steps: int | None = None  # one-cycle length, set by `train`
        # LR range test: lr multiplier per step (overrides the one-cycle schedule)
        self.lr_lambda = None
        self.history: dict[str, list] = {"epoch": [], "train_loss": [], "val_loss": [], "lr": []}
        self._loss_sum = None
        self._n_seen = 0
        self._val_sum = None
        self._n_val = 0
        # what the first epoch's batches held (read by the training loop's finiteness check)
        self._n_constant = None  # training cells whose loss targets are constant
        self._n_checked = 0
        self._nonfinite_data = None  # batches with NaN or infinite inputs or targets

    # maths ------------------------------------------------------------------------------------
    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Predictions in the decoded target space."""
        pred = self.net(*inputs)
        if self.decoder is not None:
            # decode in float32 even under bf16 autocast (the loss compares target values)
            with torch.autocast(device_type=pred.device.type, enabled=False):
                pred = pred.float() @ self.decoder
                if self.decoder_bias is not None:
                    pred = pred + self.decoder_bias
        return pred

    def _loss_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Return the targets the loss compares with (standardised when configured)."""
        if self.target_mean is not None:
            y = (y - self.target_mean) / self.target_std
        return y

    def data_loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Compute the configured loss (without penalties) against the targets ``y``."""
        y = self._loss_targets(y)
        if self.config.loss == "mixed":
            return mixed_loss(pred, y, self.config.correlation_weight)
        return LOSSES[self.config.loss](pred, y)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        inputs, y = batch
        if self.current_epoch == 0:
            self._check_batch(inputs, y)
        pred = self(*inputs)
        loss = self.data_loss(pred, y)
        total = loss
        cfg = self.config
        if cfg.sparsity is not None and cfg.sparsity_weight > 0:
            total = total + cfg.sparsity_weight * sparsity_penalty(
                pred, cfg.sparsity, cfg.sparsity_rho
            )
        penalty = weight_penalty(self.net, cfg.l1, cfg.l2)
        if penalty is not None:
            total = total + penalty
        # hook: a net may add its own loss term (e.g. an autoencoder's weighted reconstruction)
        auxiliary = getattr(self.net, "auxiliary_loss", None)
        extra = auxiliary() if callable(auxiliary) else None
        if extra is not None:
            total = total + extra
        n = y.shape[0]
        d = loss.detach() * n
        self._loss_sum = d if self._loss_sum is None else self._loss_sum + d
        self._n_seen += n
        self.log(
            "train_loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True, batch_size=n
        )
        return total

    @torch.no_grad()
    def _check_batch(self, inputs, y: torch.Tensor) -> None:
        """Count constant target rows and batches with non-finite values (no device sync)."""
        y = self._loss_targets(y)
        constant = (~informative_rows(y)).sum()
        bad = ~torch.isfinite(y).all()
        for x in inputs:
            if x.layout != torch.strided:  # sparse: its stored values
                x = x._values() if x.layout == torch.sparse_coo else x.values()
            bad = bad | ~torch.isfinite(x).all()
        if self._n_constant is None:
            self._n_constant, self._nonfinite_data = constant, bad.long()
        else:
            self._n_constant = self._n_constant + constant
            self._nonfinite_data = self._nonfinite_data + bad.long()
        self._n_checked += y.shape[0]

    def data_report(self) -> dict[str, int]:
        """Report what the first epoch's training batches held.

        ``n_cells`` checked, ``n_constant_targets`` (cells whose loss targets are constant:
        left out of the correlation term) and ``n_nonfinite_batches`` (batches with NaN or
        infinite inputs or targets); all 0 before the first training batch.
        """
        if self._n_constant is None:
            return {"n_cells": 0, "n_constant_targets": 0, "n_nonfinite_batches": 0}
        return {
            "n_cells": int(self._n_checked),
            "n_constant_targets": int(self._n_constant),
            "n_nonfinite_batches": int(self._nonfinite_data),
        }

    def validation_step(self, batch, batch_idx: int) -> None:
        inputs, y = batch
        loss = self.data_loss(self(*inputs), y)
        n = y.shape[0]
        d = loss.detach() * n
        self._val_sum = d if self._val_sum is None else self._val_sum + d
        self._n_val += n

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self(*batch[0]).float()

    # optimisation -----------------------------------------------------------------------------
    def configure_optimizers(self):
        cfg = self.config
        # fused: one kernel for all parameters (on CPU 6 -> 2 ms of a 42 ms step at width 512)
        opt = torch.optim.AdamW(
            self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )
        if self.lr_lambda is not None:
            sched = torch.optim.lr_scheduler.LambdaLR(opt, self.lr_lambda)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if not cfg.one_cycle or not self.total_steps:
            return opt
        div_factor = 25.0
        initial_lr = cfg.lr / div_factor
        # the schedule ends exactly at min_lr (OneCycleLR's final lr = initial_lr / final_div)
        final_div = initial_lr / max(cfg.min_lr, 1e-12)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=cfg.lr,
            total_steps=self.total_steps,
            div_factor=div_factor,
            final_div_factor=final_div,
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        """Optimiser step; none in lightning SWA's extra BatchNorm epoch.

        Lightning's ``StochasticWeightAveraging`` runs one extra epoch to recompute BatchNorm
        statistics of the averaged weights, skipping backward and zero_grad but still calling
        ``optimizer.step`` once, which would apply the stale gradients of the last real batch
        and move the weights away from the average. Here that epoch only runs the forward
        passes (the closure).
        """
        if self.config.uses_swa() and epoch >= self.config.max_epochs:
            if optimizer_closure is not None:
                optimizer_closure()
            return
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)

    def lr_scheduler_step(self, scheduler, metric) -> None:
        """Step schedulers; the one-cycle one stops at its last step (lr stays at min_lr)."""
        if isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
            if scheduler.last_epoch >= scheduler.total_steps - 1:
                return
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    # history ----------------------------------------------------------------------------------
    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self.current_epoch < self.config.max_epochs:
            self.history["lr"].append(float(self.trainer.optimizers[0].param_groups[0]["lr"]))

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._n_seen = None, 0

    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._n_val = None, 0

    def on_validation_epoch_end(self) -> None:
        if self._n_val:
            val = self._val_sum / self._n_val
            self.log("val_loss", val, prog_bar=True, sync_dist=True)  # same on all DDP ranks

    def on_train_epoch_end(self) -> None:
        # lightning's SWA callback adds one epoch (BatchNorm update, no optimiser step): skip it
        if self.current_epoch >= self.config.max_epochs:
            return
        self.history["epoch"].append(int(self.current_epoch))
        train = float(self._loss_sum / self._n_seen) if self._n_seen else float("nan")
        self.history["train_loss"].append(train)
        if self._n_val:
            self.history["val_loss"].append(float(self._val_sum / self._n_val))
