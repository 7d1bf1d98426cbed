"""Find a registered data file locally, or download it once into the user cache."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .._settings import settings
from ._registry import REGISTRY, DataFile

logger = logging.getLogger(__name__)

#: Environment variable naming a data directory (read-only is fine).
ENV_DATA_DIR = "SCMM_DATA_DIR"
#: Environment variable overriding the download cache (default ``pooch.os_cache("scmm")``).
ENV_CACHE_DIR = "SCMM_CACHE_DIR"
#: Environment variable that, set to ``1``, forbids downloads (tests, air-gapped machines).
ENV_OFFLINE = "SCMM_OFFLINE"


def cache_dir() -> Path:
    """Return the user cache that downloads go to.

    ``$SCMM_CACHE_DIR`` when set, else ``pooch.os_cache("scmm")`` (e.g. ``~/.cache/scmm``).
    """
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("scmm"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _search_dirs(data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    dirs = []
    if data_dir is not None:
        dirs.append(("data_dir", Path(data_dir).expanduser()))
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        dirs.append((f"${ENV_DATA_DIR}", Path(env).expanduser()))
    dirs.append(("cache", cache_dir()))
    return dirs


def _download(entry: DataFile, cache: Path) -> Path:
    """Download ``entry`` into ``cache`` (checking its sha256) and return its path."""
    import pooch

    target = cache / entry.relpath
    if entry.archive_member is None:
        out = pooch.retrieve(
            entry.url,
            known_hash=f"sha256:{entry.sha256}",
            fname=target.name,
            path=target.parent,
            downloader=settings.downloader,
        )
        return Path(out)
    # A file inside a wheel: fetch the (checksummed) wheel, extract the member, check it too.
    archives = cache / "_archives"
    extracted = pooch.retrieve(
        entry.url,
        known_hash=None if entry.archive_sha256 is None else f"sha256:{entry.archive_sha256}",
        fname=entry.url.rsplit("/", 1)[-1],
        path=archives,
        processor=pooch.Unzip(members=[entry.archive_member]),
        downloader=settings.downloader,
    )
    member = Path(extracted[0])
    digest = _sha256(member)
    if digest != entry.sha256:
        msg = (
            f"SHA256 of {entry.archive_member!r} extracted from {entry.url} is {digest}, "
            f"expected {entry.sha256}; the download is not the registered file."
        )
        raise ValueError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        shutil.copyfile(member, tmp.name)
    Path(tmp.name).replace(target)
    return target


def fetch(relpath: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Return the local path of a registered data file, downloading it if needed.

    The file is looked up, in order, under ``data_dir``, under ``$SCMM_DATA_DIR`` and in the
    user cache (``scmm.datasets._fetch.cache_dir()``). If it is in none of them and a public
    URL is registered, it is downloaded with :mod:`pooch` (through
    ``scmm.settings.downloader`` when set) into the cache and its sha256 checked (unless
    ``$SCMM_OFFLINE=1``). ``data_dir`` and ``$SCMM_DATA_DIR`` are only read, never
    written (they may be read-only).

    Parameters
    ----------
    relpath
        Path of the file relative to a data directory, a key of
        :data:`scmm.datasets._registry.REGISTRY`, e.g. ``"cite/bmmc_cite_starter_rna.h5ad"``.
    data_dir
        A directory with the layout of the scmm data README (``cite/``, ``multiome/``, ...).

    Returns
    -------
    Path of the file.

    Raises
    ------
    ValueError
        ``relpath`` is not registered, or the downloaded file does not have the registered
        sha256 (nothing is kept in the cache then).
    FileNotFoundError
        The file is in none of the places searched and cannot be downloaded (offline, or no
        public URL); the message names the file, the places searched and where to get it.

    Examples
    --------
    >>> import scmm
    >>> path = scmm.datasets.fetch("cite/bmmc_cite_starter_adt.h5ad")
    >>> path.name
    'bmmc_cite_starter_adt.h5ad'
    >>> path.is_file()
    True
    """
    if relpath not in REGISTRY:
        msg = f"`relpath={relpath!r}` is not a registered data file (known: {sorted(REGISTRY)})."
        raise ValueError(msg)
    entry = REGISTRY[relpath]
    dirs = _search_dirs(data_dir)
    for _, d in dirs:
        candidate = d / relpath
        if candidate.is_file():
            return candidate

    searched = "; ".join(f"{label}: {d / relpath}" for label, d in dirs)
    where = f"Get it from {entry.source}"
    if entry.url is not None:
        where += f" ({entry.url})"
    if entry.note:
        where += f"; {entry.note}"
    hint = (
        f" and put it at <dir>/{relpath}, then pass `data_dir=<dir>` or set ${ENV_DATA_DIR}=<dir>."
    )
    if entry.url is None or os.environ.get(ENV_OFFLINE) == "1":
        why = "" if entry.url is None else f" and downloads are off (${ENV_OFFLINE}=1)"
        msg = f"Data file {relpath!r} not found (searched {searched}){why}. {where}{hint}"
        raise FileNotFoundError(msg)
    cache = dirs[-1][1]
    logger.info("Downloading %s from %s into %s", relpath, entry.url, cache)
    try:
        return _download(entry, cache)
    except (OSError, ImportError) as exc:  # requests' errors are OSErrors (offline, HTTP 404)
        msg = (
            f"Data file {relpath!r} not found (searched {searched}) and the download failed "
            f"({type(exc).__name__}: {exc}). {where}{hint}"
        )
        raise FileNotFoundError(msg) from exc
