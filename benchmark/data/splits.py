"""Class splits into two disjoint halves A and B, and each half as its own task.

``split=all`` is the one split with an empty half: every class is in B, the whole
dataset being the target task of a network pretrained elsewhere (``treatment=external``)
and of its base network trained from scratch.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from benchmark.data.images import ImageSet, ImageTensors, LabelledImages
from benchmark.errors import UserError
from benchmark.schema.split import RANDOM_SPLIT

NO_HALF_A = ("split=all puts every class in half B and has no half A; use target=B (and "
             "treatment=base, selffer or external), or another split")


@dataclass(frozen=True)
class ClassSplit:
    """Original class indices of each half, ascending (labels 0..k-1 follow this order).

    Only ``split=all`` leaves a half empty (A): :func:`check_split` refuses that otherwise.
    """

    A: list[int]
    B: list[int]

    def half(self, name: str) -> list[int]:
        if name == "A" and not self.A:
            raise UserError(NO_HALF_A)
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
    for name, classes in (("A", split.A), ("B", split.B)):
        if not classes:
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
    if kind == "all":  # the whole dataset is the target task
        return ClassSplit([], list(range(len(class_names))))
    if kind == RANDOM_SPLIT:
        split = paper_random_halves(len(class_names), cfg.seed)
    elif kind == "family":
        split = family_halves(families, cfg.get("families_A"), cfg.seed)
    elif kind == "classes":
        split = named_halves(cfg, class_names)
    else:
        raise UserError(f"unknown split '{cfg.name}'; choose split=random, family, "
                        "natural_manmade, superclass, classes or all")
    return check_split(split, len(class_names))


# ---------------------------------------------------------------- one half as a task

@dataclass
class HalfTask:
    """One half (A or B) as its own classification task, labels 0..k-1."""

    name: str
    classes: list[int]
    class_names: list[str]
    train: ImageSet
    val: ImageSet

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device) -> "HalfTask":
        """In-memory images move to ``device``; streamed ones stay where they are read."""
        move = lambda part: part.to(device) if isinstance(part, ImageTensors) else part  # noqa: E731
        return HalfTask(self.name, self.classes, self.class_names, move(self.train), move(self.val))


def target_limit(counts: list[int], per_class: int | None, fraction: float | None) -> int | None:
    """Training images to keep per class of the target half (None: all of them).

    ``fraction`` is taken of the largest class, so on balanced data every class keeps
    exactly that fraction; smaller classes keep what they have up to the limit.
    """
    if per_class is not None and fraction is not None:
        raise UserError("data.train_per_class and data.target_fraction are both set; keep one "
                        "and set the other to null")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise UserError(f"data.target_fraction={fraction} must be in (0, 1], e.g. 0.1")
        return max(1, round(fraction * max(counts)))
    if per_class is not None and not 1 <= per_class <= min(counts):
        raise UserError(f"data.train_per_class={per_class} but the target half's classes have "
                        f"{min(counts)} to {max(counts)} training images; use 1..{min(counts)}")
    return per_class


def half_task(dataset: LabelledImages, split: ClassSplit, half: str,
              train_per_class: int | None = None, target_fraction: float | None = None,
              subsample_seed: int = 0) -> HalfTask:
    """Select one half's classes; optionally thin its training images (the small-data regime)."""
    classes = split.half(half)
    train = dataset.train.select_classes(classes)
    limit = target_limit(train.class_counts().tolist(), train_per_class, target_fraction)
    if limit is not None:
        train = train.per_class(limit, subsample_seed)
    return HalfTask(half, classes, [dataset.class_names[c] for c in classes], train,
                    dataset.val.select_classes(classes))
