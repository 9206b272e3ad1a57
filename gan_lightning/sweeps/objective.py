"""The number a sweep optimizes (``optimized_metric``), which way is better, and a failure's value.

Each metric has one direction, fixed here, so a user never has to pair ``optimized_metric`` with
a matching ``direction`` by hand: the sweep summary sorts by it and ``hparams_search=optuna``
reads its direction from here (``${metric_direction:${optimized_metric}}``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

#: Every metric a sweep can optimize (as ``self.log`` names it) and which way is better.
DIRECTIONS: dict[str, str] = {
    "metrics/fid": "minimize",  # Frechet distance of classifier features: 0 for real data
    "metrics/kid": "minimize",  # kernel version of FID, unbiased at small sample counts
    "metrics/is": "maximize",  # Inception Score with our classifier: 10 at best
    "metrics/precision": "maximize",  # share of fakes that look like some real digit
    "metrics/recall": "maximize",  # share of real digits the fakes cover
    "metrics/coverage_kl": "minimize",  # KL(class histogram of fakes || uniform): 0 at best
    "metrics/min_class_fraction": "maximize",  # rarest digit's share of the fakes: 0.1 at best
    "metrics/cond_acc": "maximize",  # conditional G: the classifier reads the asked digit
}


def direction(metric: str) -> str:
    """``minimize`` or ``maximize``; a :class:`KeyError` naming the choices for anything else."""
    try:
        return DIRECTIONS[metric]
    except KeyError:
        raise KeyError(
            f"optimized_metric={metric!r} is not a metric a sweep can optimize; use one of "
            f"{', '.join(DIRECTIONS)}"
        ) from None


def worst(metric: str) -> float:
    """What a failed, diverged or unscored job reports: worse than any real value.

    Infinite, not NaN: the Optuna sweeper records an infinite value as a completed (bad)
    trial, which steers TPE away from that region, while a NaN makes it raise.
    """
    return math.inf if direction(metric) == "minimize" else -math.inf


def objective_value(metrics: Mapping[str, Any], metric: str) -> float:
    """``metric``'s final value in ``metrics``, or :func:`worst` when missing or not finite."""
    value = metrics.get(metric)
    if value is None or not math.isfinite(float(value)):
        return worst(metric)
    return float(value)


def sort_key(value: float | None, metric: str) -> float:
    """Ascending key that puts the best value first and jobs without one last."""
    if value is None or math.isnan(value):
        return math.inf
    return value if direction(metric) == "minimize" else -value


if not OmegaConf.has_resolver("metric_direction"):
    OmegaConf.register_new_resolver("metric_direction", direction)
