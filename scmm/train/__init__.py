"""The training engine shared by the neural models: the lightning loop, losses, LR range test.

:func:`train` fits any :class:`torch.nn.Module` on dense or sparse inputs with the options of
:class:`TrainingConfig` (AdamW, one-cycle schedule, SWA, sparsity and weight penalties, MSE /
correlation / mixed loss, validation and early stopping, bf16 on GPU); :func:`lr_range_test`
suggests a learning rate; :func:`predict` runs batched inference.
"""

from ._config import TrainingConfig
from ._data import RowBatchDataset, make_loader
from ._data import to_torch_batch as to_torch_batch  # for scmm.tl (not API)
from ._losses import correlation_loss, mixed_loss, mse_loss, sparsity_penalty, weight_penalty
from ._lr_range import LRRangeResult, lr_range_test
from ._module import PredictionModule
from ._runtime import seeded
from ._trainer import predict, split_validation, train

__all__ = [
    "LRRangeResult",
    "PredictionModule",
    "RowBatchDataset",
    "TrainingConfig",
    "correlation_loss",
    "lr_range_test",
    "make_loader",
    "mixed_loss",
    "mse_loss",
    "predict",
    "seeded",
    "sparsity_penalty",
    "split_validation",
    "train",
    "weight_penalty",
]
