"""Draw the README's overview diagram, ``docs/_static/overview.png``.

Run from the repository root: ``python docs/overview_figure.py``. Only matplotlib; no data.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).parent / "_static" / "overview.png"

SOURCE = "#4c72b0"  # the modality measured everywhere (RNA, or ATAC)
TARGET = "#dd8452"  # the modality to predict (proteins, or RNA)
STEP = "#eeeeee"


def _box(ax, x, y, w, h, text, color, *, fontsize=9, textcolor="black", weight="normal"):
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.04", fc=color, ec="#555555"
        )
    )
    ax.text(
        x + w / 2,
        y + h / 2,
        text,
        ha="center",
        va="center",
        fontsize=fontsize,
        color=textcolor,
        weight=weight,
    )


def _arrow(ax, start, end, label=None):
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, lw=1.3, color="#333333")
    )
    if label:
        ax.text(
            (start[0] + end[0]) / 2,
            (start[1] + end[1]) / 2 + 0.07,
            label,
            ha="center",
            va="bottom",
            fontsize=8,
            family="monospace",
        )


def main() -> None:
    """Draw the diagram and write it to ``OUT``."""
    fig, ax = plt.subplots(figsize=(9, 3.1))
    ax.set_xlim(0, 9)
    ax.set_ylim(0, 3.1)
    ax.axis("off")

    # paired training cells: both modalities measured
    ax.text(0.975, 2.95, "paired cells (MuData)", ha="center", fontsize=9, weight="bold")
    _box(ax, 0.1, 1.95, 0.95, 0.8, "rna\ngenes", SOURCE, textcolor="white")
    _box(ax, 1.1, 1.95, 0.75, 0.8, "prot\nproteins", TARGET, textcolor="white")
    _arrow(ax, (1.95, 2.35), (3.35, 2.35), "scmm.pp")
    _box(
        ax,
        3.4,
        1.8,
        2.3,
        1.1,
        "scmm.tl.fit_*\nridge · kNN · kernel ridge\nMLP · DeepSets · ensemble",
        STEP,
    )
    _arrow(ax, (5.8, 2.35), (6.75, 2.35))
    _box(
        ax,
        6.8,
        1.8,
        2.1,
        1.1,
        "saved model\n+ its preprocessing\n+ held-out scores",
        STEP,
    )

    # new cells: only the source modality measured
    ax.text(0.575, 1.2, "new cells, RNA only", ha="center", fontsize=9, weight="bold")
    _box(ax, 0.1, 0.2, 0.95, 0.8, "rna\ngenes", SOURCE, textcolor="white")
    _arrow(ax, (1.15, 0.6), (3.35, 0.6), "scmm.tl.predict")
    _arrow(ax, (7.85, 1.75), (4.55, 1.05))
    _box(ax, 3.4, 0.2, 2.3, 0.8, "genes matched by name,\ninputs checked", STEP)
    _arrow(ax, (5.8, 0.6), (6.75, 0.6))
    _box(
        ax,
        6.8,
        0.2,
        2.1,
        0.8,
        "predicted proteins\n(ensemble: + 90% intervals)",
        TARGET,
        textcolor="white",
    )

    ax.text(
        0.975,
        1.55,
        "the same for ATAC → RNA",
        ha="center",
        fontsize=8,
        style="italic",
        color="#555555",
    )
    fig.tight_layout(pad=0.2)
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
