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


def use_mudata_options() -> None:
    """Set the MuData options scmm relies on (imports mudata).

    MuData's ``pull_on_update`` default is changing; scmm never relies on implicit pulls. Called
    where scmm first needs MuData (its namespaces are imported on first use, see ``scmm``).
    """
    import mudata

    mudata.set_options(pull_on_update=False)
