"""The assembly check of ``gene_peak_windows``: peaks and annotation on one genome assembly.

The check compares the fraction of peaks within 1 kb of any annotated TSS with the same
fraction after shifting the peaks by several Mb (a self-calibrated null). ATAC peaks cluster at
promoters, so matching assemblies give a clear enrichment (mop_snare2 + mm10: 9.0 % vs 3.1 %,
ratio 2.9) while mismatched or shifted coordinates give none (ratio ≤ 1.0 for shifts from 2 kb
to 7 Mb). A simpler "most peaks are > 1 Mb from every TSS" test is also applied, but alone it
misses shifts of a few Mb, since a dense annotation has a TSS every ~50 kb.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_TSS_RADIUS = 1_000
_NULL_SHIFTS = (-7_000_019, -5_000_011, -3_000_007, 3_000_011, 5_000_017, 7_000_019)
_MIN_PEAKS_FOR_ENRICHMENT = 500


def _nearest_tss(
    groups: list[tuple[np.ndarray, np.ndarray]], pos: np.ndarray, n: int
) -> np.ndarray:
    """Distance from each position to the nearest TSS of its contig (inf when none).

    ``groups`` holds, per contig shared with the annotation, the indices of its positions and
    its sorted TSSs.
    """
    out = np.full(n, np.inf)
    for idx, t in groups:
        p = pos[idx]
        i = np.searchsorted(t, p)
        left = np.abs(p - t[np.clip(i - 1, 0, len(t) - 1)])
        right = np.abs(t[np.clip(i, 0, len(t) - 1)] - p)
        out[idx] = np.minimum(left, right)
    return out


def _assembly_stats(
    chrom: np.ndarray, centre: np.ndarray, ann: pd.DataFrame, far_distance: int
) -> dict[str, Any]:
    tss = {str(c): np.sort(g["tss"].to_numpy()) for c, g in ann.groupby("chrom", sort=False)}
    ends = ann.groupby("chrom", sort=False)["end"].max()
    codes, contigs = pd.factorize(pd.Series(chrom, dtype=str))
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(contigs)))])
    groups = [(order[bounds[k] : bounds[k + 1]], tss[c]) for k, c in enumerate(contigs) if c in tss]
    d = _nearest_tss(groups, centre, len(centre))
    known = np.isfinite(d)
    stats: dict[str, Any] = {
        "nearest": d,
        "far_fraction": float(np.mean(~known | (d > far_distance))) if len(d) else 0.0,
        "tss_fraction": float(np.mean(d[known] <= _TSS_RADIUS)) if known.any() else 0.0,
        "tss_enrichment": np.nan,
    }
    if known.sum() >= _MIN_PEAKS_FOR_ENRICHMENT:
        # null: the same peaks shifted by several Mb, wrapped around their contig
        length = np.ones(len(centre), dtype=np.int64)
        for idx, _ in groups:
            c = chrom[idx[0]]
            length[idx] = max(int(ends[c]), int(centre[idx].max())) + 1
        null = np.mean(
            [
                np.mean(
                    _nearest_tss(groups, (centre + s) % length, len(centre))[known] <= _TSS_RADIUS
                )
                for s in _NULL_SHIFTS
            ]
        )
        stats["tss_null_fraction"] = float(null)
        stats["tss_enrichment"] = float(stats["tss_fraction"] / max(null, 1e-12))
    return stats


def _check_assembly(
    stats: dict[str, Any],
    *,
    n_peaks: int,
    max_far_fraction: float,
    far_distance: int,
    min_tss_enrichment: float,
    ann_contigs: set[str],
    peak_contigs: pd.Series,
) -> None:
    hint = (
        "Peaks and annotation look like different assemblies (e.g. hg19 vs hg38, mm10 vs "
        "mm39) or species; pass the annotation matching the peaks' assembly "
        "(or `check_assembly=False` if you are sure)."
    )
    d = stats["nearest"]
    if n_peaks == 0:
        return
    shared = np.isfinite(d)
    if shared.mean() < 1.0 - max_far_fraction:
        msg = (
            f"Only {shared.mean():.1%} of the peaks lie on contigs of the annotation "
            f"(peaks: {sorted(peak_contigs.unique())[:5]}..., annotation: "
            f"{sorted(ann_contigs)[:5]}...). {hint}"
        )
        raise ValueError(msg)
    far = stats["far_fraction"]
    if far > max_far_fraction:
        msg = (
            f"{far:.1%} of the peaks are farther than {far_distance:,} bp from every annotated "
            f"TSS or on contigs the annotation lacks (`max_far_fraction={max_far_fraction}`). "
            f"{hint}"
        )
        raise ValueError(msg)
    enrichment = stats["tss_enrichment"]
    if np.isfinite(enrichment) and enrichment < min_tss_enrichment:
        msg = (
            f"Peaks show no enrichment at annotated TSSs: {stats['tss_fraction']:.1%} lie "
            f"within {_TSS_RADIUS} bp of a TSS, against {stats['tss_null_fraction']:.1%} for "
            f"the same peaks shifted by 3-7 Mb (ratio {enrichment:.2f} < "
            f"`min_tss_enrichment={min_tss_enrichment}`). {hint}"
        )
        raise ValueError(msg)
