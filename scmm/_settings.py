"""Package-wide settings (verbosity, device, memory: the defaults scmm functions read).

The bottom layer of the package: it imports nothing from scmm, so every module may read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
    block_rows
        Rows (cells) read or processed at a time wherever scmm walks a matrix a block of rows
        at a time: the SVD and the models' input encoders on sparse or backed matrices, the
        in-place normalisation (whose blocks also hold at most ``512 × block_rows`` stored
        entries) and the metrics (at most 2,048 rows there: they make float64 copies).
        Lowering it lowers the peak memory of these steps; their results do not depend on it
        (default: 8,192).
    downloader
        The ``downloader`` that :func:`scmm.datasets.fetch` hands to :func:`pooch.retrieve`
        (a callable ``downloader(url, output_file, pooch, check_only=False)``), e.g. a
        ``pooch.HTTPDownloader`` with a proxy or a progress bar, or an offline stand-in in
        tests; ``None`` (default) lets pooch pick one by the URL (HTTP).
    """

    verbose: bool = True
    device: str = "auto"
    memory_budget: int = 2 * 2**30
    block_rows: int = 8_192
    downloader: Callable[..., Any] | None = None

    def __setattr__(self, name: str, value) -> None:
        """Refuse a block of fewer than one row (it would never end, or read nothing)."""
        if name == "block_rows":
            if isinstance(value, bool) or not hasattr(type(value), "__index__") or value < 1:
                msg = f"`scmm.settings.block_rows={value!r}` must be a whole number, at least 1."
                raise ValueError(msg)
            value = int(value)
        super().__setattr__(name, value)


settings = Settings()


def use_mudata_options() -> None:
    """Set the MuData options scmm relies on (imports mudata).

    MuData's ``pull_on_update`` default is changing; scmm never relies on implicit pulls. Called
    where scmm first needs MuData (its namespaces are imported on first use, see ``scmm``).
    """
    import mudata

    mudata.set_options(pull_on_update=False)
