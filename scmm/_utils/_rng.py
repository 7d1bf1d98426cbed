"""Random number handling: a seed or Generator in, never global state."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np

#: A seed: anything :func:`numpy.random.default_rng` takes, or ``None`` for seed 0.
SeedLike: TypeAlias = int | np.integer | np.random.SeedSequence | None


def as_generator(rng=None) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` from a seed, a Generator or ``None``.

    ``None`` means seed 0, as scanpy's ``random_state=0``: results are reproducible unless the
    caller asks for another seed.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def seed_from(rng=None) -> int:
    """Draw an integer seed (for scikit-learn or torch) from ``rng``.

    An integer ``rng`` maps to itself so that results are easy to reproduce.
    """
    if rng is None:
        return 0
    if isinstance(rng, int | np.integer):
        return int(rng)
    return int(as_generator(rng).integers(0, 2**31 - 1))
