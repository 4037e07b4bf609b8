"""95% percentile bootstrap intervals over examples, for every figure the pipeline reports."""
from __future__ import annotations

from typing import Callable

import numpy as np


def bootstrap(
    statistic: Callable[[np.ndarray], dict[str, float]], n: int, n_resamples: int = 2000, seed: int = 0, digits: int = 4
) -> dict[str, object]:
    """statistic(indices) -> named figures over the examples at `indices` (repeats allowed).

    Returns {"n": n, name: figure on all n examples, f"{name}_ci95": [low, high]} with the 2.5th
    and 97.5th percentiles over `n_resamples` resamples of the n examples with replacement."""
    if n < 1:
        raise ValueError("bootstrap: no examples")
    point = statistic(np.arange(n))
    rng = np.random.default_rng(seed)
    draws = [statistic(sample) for sample in rng.integers(0, n, size=(n_resamples, n))]
    result: dict[str, object] = {"n": n}
    for name, value in point.items():
        low, high = np.percentile([draw[name] for draw in draws], [2.5, 97.5])
        result[name] = round(float(value), digits)
        result[f"{name}_ci95"] = [round(float(low), digits), round(float(high), digits)]
    return result
