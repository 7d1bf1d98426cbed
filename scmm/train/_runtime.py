"""What every lightning run in scmm sets up: seeds, devices, and quiet logs and warnings.

Shared by :func:`~scmm.train.train` and :func:`~scmm.train.lr_range_test`. ``rng`` is turned
into seeds with ``_seeds`` (None means seed 0, as everywhere in scmm); :func:`seeded`
seeds torch's global random state for a block (weight initialisation) and restores it after.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from .._utils import SeedLike

__all__ = ["seeded"]

_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
_RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)


def _seeds(rng: SeedLike | np.random.Generator | None, n: int) -> list[int]:
    """``n`` seeds drawn from ``rng`` (None means seed 0, as everywhere in scmm)."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng or 0)
    return [int(s) for s in gen.integers(0, 2**62, size=n)]


def _cuda_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


@contextlib.contextmanager
def seeded(rng: SeedLike | np.random.Generator | None) -> Iterator[None]:
    """Context in which torch's global random state is seeded from ``rng``, then restored.

    Use it around network construction (weight initialisation) so that the same ``rng`` gives
    the same initial weights without touching the caller's global seed. An int is used as the
    seed itself; None means 0.
    """
    if rng is None:
        rng = 0
    seed = int(rng) if isinstance(rng, int | np.integer) else _seeds(rng, 1)[0]
    with torch.random.fork_rng(devices=_cuda_devices()):
        torch.manual_seed(seed)
        yield


def _ignore_harmless_warnings() -> None:
    """Inside ``warnings.catch_warnings()``: ignore lightning's warnings that do not apply."""
    # tiny CPU runs: in-process loading is intended (the pyproject ignores these too)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*The number of training batches.*")
    # lightning 2.6 on torch >= 2.10 uses a deprecated torch.utils._pytree API internally
    warnings.filterwarnings("ignore", ".*LeafSpec.*", category=FutureWarning)
    # validation is optional: without validation cells lightning just skips the loop
    warnings.filterwarnings("ignore", ".*but have no `val_dataloader`.*")
    # SWA replaces the (finished) per-step one-cycle scheduler by its per-epoch SWALR: intended
    warnings.filterwarnings("ignore", ".*SWA is currently only supported every epoch.*")
    # `checkpoint_dir` holds one run: its files are overwritten (and resumed from) on purpose
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")


class _Chatter(logging.Filter):
    """Drop lightning's lines that do not apply to scmm, verbose or not.

    Device hints ("GPU available: False, used: False", "TPU available…"), advertising
    ("💡 Tip: …") and "`max_epochs=41` reached" (SWA's extra BatchNorm pass counted as an
    epoch; the progress bar counts epochs as set).
    """

    _PATTERNS = (
        re.compile(r"^(GPU|TPU|HPU|IPU) available"),
        re.compile(r"Tip:"),
        re.compile(r"^`Trainer\.fit` stopped: `max_epochs="),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to keep ``record``."""
        message = record.getMessage()
        return not any(p.search(message) for p in self._PATTERNS)


_CHATTER = _Chatter()


@contextlib.contextmanager
def _quiet_lightning(verbose: bool) -> Iterator[None]:
    """Drop lightning's device hints and tips; silence its other info lines unless verbose."""
    # lightning logs through these two (its `rank_zero_info`), propagated to its handlers
    sources = [logging.getLogger(name) for name in _RANK_ZERO_LOGGERS]
    for lg in sources:
        lg.addFilter(_CHATTER)
    loggers = [] if verbose else [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        for lg in sources:
            lg.removeFilter(_CHATTER)
