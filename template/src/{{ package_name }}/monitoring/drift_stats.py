"""The statistics of the drift check and of the profile: numpy and scipy (imported inside the
functions that use it), no files, no settings. Each comparison gives an effect size (how large
the change is: drift.py judges on it) and a p-value (guarding against small samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# A bin or category with no row gets this share: the index stays finite.
SHARE_FLOOR = 1e-4


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """The inner edges of `bins` bins of (about) equal shares; the outer bins are open.

    Repeated quantiles (a feature with few distinct values) are merged: such
    a feature gets fewer bins. Bins are closed on the right: a value equal to
    an edge falls in the bin below it.
    """
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(inner)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many values fall in each bin: (-inf, e1], (e1, e2], ..., (en, inf)."""
    positions = np.searchsorted(edges, values, side="left")
    return np.bincount(positions, minlength=len(edges) + 1)


def shares_of(counts: Any) -> np.ndarray:
    """Counts as shares of their total (zeros when the total is zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def population_stability_index(reference: Any, current: Any) -> float:
    """sum((current - reference) * ln(current / reference)) over the bins, shares floored."""
    expected = np.maximum(np.asarray(reference, dtype=np.float64), SHARE_FLOOR)
    actual = np.maximum(np.asarray(current, dtype=np.float64), SHARE_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_test(reference_sample: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic (largest gap of the two CDFs) and p-value.

    The p-value is the asymptotic one: windows hold thousands of rows, and the
    exact computation costs much more there for no change that matters.
    """
    from scipy.stats import ks_2samp

    result = ks_2samp(reference_sample, current, method="asymp")
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class CategoryComparison:
    """The reference and current shares of each category, and how they differ."""

    reference_shares: dict[str, float]
    current_shares: dict[str, float]
    largest_change: float  # current minus reference share, the largest in absolute value
    changed_category: str | None
    total_variation: float  # half the sum of the absolute share changes, 0 to 1
    chi_square: float
    p_value: float


def compare_categories(reference: dict[str, int], current: dict[str, int]) -> CategoryComparison:
    """Compare two count tables: a category unseen on one side counts zero there."""
    names = [*reference, *(name for name in current if name not in reference)]
    counts = np.array(
        [[reference.get(name, 0) for name in names], [current.get(name, 0) for name in names]],
        dtype=np.float64,
    )
    before, after = shares_of(counts[0]), shares_of(counts[1])
    changes = after - before
    largest = int(np.argmax(np.abs(changes))) if names else 0
    chi_square, p_value = _chi_square(counts)
    return CategoryComparison(
        reference_shares=dict(zip(names, before.tolist(), strict=True)),
        current_shares=dict(zip(names, after.tolist(), strict=True)),
        largest_change=float(changes[largest]) if names else 0.0,
        changed_category=names[largest] if names else None,
        total_variation=float(np.abs(changes).sum() / 2),
        chi_square=chi_square,
        p_value=p_value,
    )


def _chi_square(counts: np.ndarray) -> tuple[float, float]:
    """The chi-square test of a 2 x k table; one category (or an empty side) cannot differ."""
    from scipy.stats import chi2_contingency

    kept = counts[:, counts.sum(axis=0) > 0]
    if kept.shape[1] < 2 or (kept.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = chi2_contingency(kept, correction=False)
    return float(result.statistic), float(result.pvalue)


def standardized_shift(reference_mean: float, reference_std: float, current_mean: float) -> float:
    """The change of the mean in reference standard deviations (0 when the reference is flat)."""
    if not reference_std or not math.isfinite(current_mean):
        return 0.0
    return (current_mean - reference_mean) / reference_std
