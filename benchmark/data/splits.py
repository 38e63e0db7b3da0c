"""Class splits into two disjoint halves A and B."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


def read_class_file(path: Path) -> tuple[list[str], list[str] | None]:
    """A class-list file: a line ``A:``, A's class names one per line, then optionally
    ``B:`` and B's names (absent: B = every other class). Blank lines and lines
    starting with ``#`` are ignored; names may contain spaces."""
    if not path.is_file():
        raise UserError(f"split.file={path} does not exist; give the path of a class-list file")
    halves: dict[str, list[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in ("A:", "B:"):
            current = halves.setdefault(line[0], [])
        elif current is None:
            raise UserError(f"{path}: class name '{line}' comes before any 'A:' or 'B:' line; "
                            "start the file with a line 'A:'")
        else:
            current.append(line)
    if "A" not in halves:
        raise UserError(f"{path} has no 'A:' line; list A's classes under a line 'A:'")
    return halves["A"], halves.get("B")


def _named_lists(cfg: DictConfig) -> tuple[list[str], list[str] | None]:
    inline = cfg.get("A") is not None or cfg.get("B") is not None
    if cfg.get("file") and inline:
        raise UserError("split=classes takes split.file or split.A/split.B, not both; drop one")
    if cfg.get("file"):
        return read_class_file(Path(cfg.file))
    if cfg.get("A") is None:
        raise UserError("split=classes needs the class names: split.A=[name,...] (and optionally "
                        "split.B=[...]) or split.file=PATH")
    return list(cfg.A), (list(cfg.B) if cfg.get("B") is not None else None)


def named_halves(cfg: DictConfig, class_names: Sequence[str]) -> ClassSplit:
    """Halves given by class name (or wnid); B defaults to every class not in A."""
    a_names, b_names = _named_lists(cfg)
    index = {name: i for i, name in enumerate(class_names)}
    listed = a_names + (b_names or [])
    unknown = [name for name in dict.fromkeys(listed) if name not in index]
    if unknown:
        raise UserError(f"split=classes names {unknown[:10]}, not classes of this dataset; "
                        f"its {len(class_names)} classes are e.g. {list(class_names[:5])}")
    twice = sorted(name for name, count in Counter(listed).items() if count > 1)
    if twice:
        raise UserError(f"split=classes lists {twice[:10]} more than once; list each class once")
    a = [index[name] for name in a_names]
    if b_names is not None:
        return ClassSplit(a, [index[name] for name in b_names])
    return ClassSplit(a, sorted(set(range(len(class_names))) - set(a)))


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
    """Build the split chosen by the ``split`` config group (``kind``: the recipe it uses)."""
    kind = cfg.get("kind", cfg.name)
    if kind == "random":
        split = paper_random_halves(len(class_names), cfg.seed)
    elif kind == "family":
        split = family_halves(families, cfg.get("families_A"), cfg.seed)
    elif kind == "classes":
        split = named_halves(cfg, class_names)
    else:
        raise UserError(f"unknown split '{cfg.name}'; choose split=random, family, "
                        "natural_manmade, superclass or classes")
    return check_split(split, len(class_names))
