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


def use_mudata_options() -> None:
    """Set the MuData options scmm relies on (imports mudata).

    MuData's ``pull_on_update`` default is changing; scmm never relies on implicit pulls. Called
    where scmm first needs MuData (its namespaces are imported on first use, see ``scmm``).
    """
    import mudata

    mudata.set_options(pull_on_update=False)
