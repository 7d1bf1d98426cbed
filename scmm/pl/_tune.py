"""Architecture search: the score of each trial and the running best."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

if TYPE_CHECKING:
    from ..tl import TuneResult


def _get_trials(result: Any) -> pd.DataFrame:
    if isinstance(result, pd.DataFrame):
        trials = result
    elif isinstance(result, Mapping) and "trials" in result:
        trials = result["trials"]  # mdata.uns[key_added], e.g. read back from an h5mu file
    elif hasattr(result, "trials"):
        trials = result.trials
    else:
        msg = (
            "`result` must be the `TuneResult` of `scmm.tl.tune_mlp`, its `trials` table or "
            f"`mdata.uns['scmm_tune_mlp']`, got {type(result).__name__}."
        )
        raise TypeError(msg)
    if not isinstance(trials, pd.DataFrame) or not {"number", "score"} <= set(trials.columns):
        msg = "`result`: the trials table needs the columns 'number' and 'score'."
        raise ValueError(msg)
    return trials


def tune_trials(result: TuneResult | pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Score of every trial of an architecture search, and the best score so far.

    Failed trials (no score, e.g. a diverged fit) are left out of the points and the running
    best.

    Parameters
    ----------
    result
        The :class:`~scmm.tl.TuneResult` of :func:`scmm.tl.tune_mlp`, its ``trials`` table
        (columns ``number`` and ``score``), or ``mdata.uns[key_added]`` of that call.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    The Axes: the trials' scores as points, the running best as a step line, and the best
    trial as a star.

    Examples
    --------
    >>> import pandas as pd, scmm
    >>> trials = pd.DataFrame({"number": [0, 1, 2, 3], "score": [0.61, 0.70, None, 0.66]})
    >>> ax = scmm.pl.tune_trials(trials)
    >>> len(ax.collections), len(ax.lines)
    (1, 2)
    """
    trials = _get_trials(result).sort_values("number")
    number = trials["number"].to_numpy(dtype=float)
    score = pd.to_numeric(trials["score"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(score)
    if not ok.any():
        msg = "`result` has no completed trial (every score is missing); nothing to draw."
        raise ValueError(msg)

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.5), layout="constrained")
    ax.scatter(number[ok], score[ok], s=18, color="tab:blue", alpha=0.7, label="trial")
    running = np.maximum.accumulate(score[ok])
    ax.step(number[ok], running, where="post", color="tab:orange", lw=1.5, label="best so far")
    best = int(np.argmax(score[ok]))
    ax.plot(
        number[ok][best],
        score[ok][best],
        marker="*",
        ms=12,
        ls="none",
        color="tab:red",
        label=f"best: trial {int(number[ok][best])} ({score[ok][best]:.3f})",
    )
    ax.set(xlabel="trial", ylabel="per-cell Pearson (tuning cells)")
    ax.legend(fontsize=8, loc="lower right")
    return ax
