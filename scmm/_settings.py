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
    """

    verbose: bool = True
    device: str = "auto"


settings = Settings()
