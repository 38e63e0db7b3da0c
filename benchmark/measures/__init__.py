"""Per-block measures as plug-ins: each module here registers one :class:`Measure` that says
what it computes from networks' block outputs on a seeded subset of held-out images and where
its entries go in a run's record (CKA: benchmark/measures/cka.py). A leaf: it computes and
records, and imports nothing from the analysis, the run, the networks, the sweep or training;
what reports a measure is the analysis' (benchmark/analysis/measure_reports.py, by record key).

Runs, the aggregation, the figures and the W&B summary loop over the measures that
``analysis.measures`` enables. Importing this package imports every module in it, so each
measure's registration runs (as :mod:`benchmark.models` does for architectures).
"""
from __future__ import annotations

import importlib
import pkgutil

from benchmark.measures.measure import (BASE_VS_BASE, MEASURES, VS_SOURCE, Accumulator, Measure,
                                        check_measures, compare_networks, enabled_measures, register,
                                        take_measures, unmeasured)
from benchmark.measures.sample import HeldOutSample

__all__ = ["Accumulator", "BASE_VS_BASE", "HeldOutSample", "MEASURES", "Measure", "VS_SOURCE",
           "check_measures", "compare_networks", "enabled_measures", "register", "take_measures",
           "unmeasured"]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
