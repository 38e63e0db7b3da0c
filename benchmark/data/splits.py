"""Class splits into two disjoint halves A and B."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from benchmark.errors import UserError


@dataclass(frozen=True)
class ClassSplit:
    """Original class indices of each half, ascending (labels 0..k-1 follow this order)."""

    A: list[int]
    B: list[int]

    def half(self, name: str) -> list[int]:
        return self.A if name == "A" else self.B


def paper_random_halves(num_classes: int, seed: int) -> ClassSplit:
    """The original code's recipe (convnet_transfer): ``numpy.random.seed([s])`` with a
    *list*, A = sorted random half, B = the rest. Reproduces the paper's ImageNet halves."""
    state = np.random.get_state()
    try:
        np.random.seed([seed])
        a = sorted(int(i) for i in np.random.choice(np.arange(num_classes), num_classes // 2,
                                                    replace=False))
    finally:
        np.random.set_state(state)
    return ClassSplit(a, [i for i in range(num_classes) if i not in set(a)])


def family_halves(families: Sequence[str], families_a: Sequence[str] | None, seed: int) -> ClassSplit:
    """A dissimilar split: whole families go to A, the others to B.

    ``families_a`` names A's families; when absent, half of them are drawn by the
    paper's recipe from ``seed``.
    """
    names = sorted(set(families))
    if len(names) < 2:
        raise UserError("split=family needs a dataset with at least 2 class families; use split=random")
    if families_a is None:
        picked = paper_random_halves(len(names), seed).A
        families_a = [names[i] for i in picked]
    unknown = sorted(set(families_a) - set(names))
    if unknown:
        raise UserError(f"split.families_A names unknown families {unknown}; "
                        f"the dataset has {names}")
    a = [c for c, f in enumerate(families) if f in set(families_a)]
    return ClassSplit(a, [c for c in range(len(families)) if c not in set(a)])


def check_split(split: ClassSplit, num_classes: int) -> ClassSplit:
    """Reject empty, overlapping or out-of-range halves with a clear message."""
    for name in ("A", "B"):
        if not split.half(name):
            raise UserError(f"class half {name} is empty; give each half at least one class")
    overlap = sorted(set(split.A) & set(split.B))
    if overlap:
        raise UserError(f"class halves A and B overlap in classes {overlap[:10]}; "
                        "make the class lists disjoint")
    outside = sorted(c for c in split.A + split.B if not 0 <= c < num_classes)
    if outside:
        raise UserError(f"classes {outside[:10]} are not in the dataset (it has {num_classes})")
    return ClassSplit(sorted(split.A), sorted(split.B))


def split_classes(cfg: DictConfig, class_names: Sequence[str], families: Sequence[str]) -> ClassSplit:
    """Build the split chosen by the ``split`` config group."""
    if cfg.name == "random":
        split = paper_random_halves(len(class_names), cfg.seed)
    elif cfg.name == "family":
        split = family_halves(families, cfg.get("families_A"), cfg.seed)
    else:
        raise UserError(f"unknown split '{cfg.name}'; choose split=random or split=family")
    return check_split(split, len(class_names))
