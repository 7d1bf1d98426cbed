"""Package-wide settings (verbosity and the default device)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Settings:
    """Settings read by scmm functions when an argument is left at its default.

    Attributes
    ----------
    verbose
        Show progress bars and info messages.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
    memory_budget
        Bytes above which an array scmm adds to a MuData (predictions, kept counts) is written
        to a ``.npy`` file in ``$SCMM_DISK_DIR`` instead of kept in memory, where the storage
        argument is ``True``/``"auto"`` (default: 2 GiB).
    """

    verbose: bool = True
    device: str = "auto"
    memory_budget: int = 2 * 2**30


settings = Settings()
