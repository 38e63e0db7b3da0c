"""What a sweep cost, and what it would have cost without its two savings.

* base-network reuse: every run that loaded a base network from the cache would
  otherwise have trained it (its recorded training time is added back);
* the feature cache: a run that trained on cached prefix features would otherwise
  have run the frozen prefix every epoch. That cost is an *estimate*: the mean base
  training time of the sweep times the run's FLOP share of a frozen end-to-end step
  (``cost.frozen_step_fraction``), in place of the run's own training time.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from benchmark.store.record import RunRecord


def sweep_cost(results: Iterable[RunRecord]) -> dict:
    runs = [r for r in results if r.cost is not None]
    total = sum(float(r.wall_s or 0) for r in runs)
    bases = [b for r in runs for b in r.cost.bases]
    reused = sum(b.train_s for b in bases if not b.trained_now)
    base_s = float(np.mean([b.train_s for b in bases])) if bases else None
    cached = [r for r in runs if r.cost.feature_cache]
    extra = sum(base_s * r.cost.frozen_step_fraction - (r.cost.train_s or 0)
                for r in cached) if base_s is not None else 0.0
    return {
        "total_s": round(total, 1),
        "base_trainings": sum(b.trained_now for b in bases),
        "without_base_reuse_s": round(total + reused, 1),
        "without_feature_cache_s": round(total + extra, 1),
        "feature_cache_runs": len(cached),
        "note": "without_feature_cache_s is estimated from FLOP fractions; see benchmark/analysis/cost.py",
    }
