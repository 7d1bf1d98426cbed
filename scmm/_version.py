"""The installed version of scmm (``0.0.0`` when run from a source tree without metadata)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scmm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
