"""Class lists shipped with the package: the paper's ILSVRC-2012 lists and CIFAR-100's superclasses.

``yosinski2014/`` holds the original code's files unchanged (github.com/yosinski/
convnet_transfer): the 1000 wnids in Caffe's class order and the class indices of
its natural / man-made halves.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from benchmark.errors import UserError

_DIR = Path(__file__).parent
_PAPER = _DIR / "yosinski2014"


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def ilsvrc_wnids() -> tuple[str, ...]:
    """The 1000 ILSVRC-2012 wnids; position = Caffe class index (it is also sorted order)."""
    return tuple(_lines(_PAPER / "synsets.txt"))


def caffe_order(wnids: Sequence[str]) -> list[str]:
    """``wnids`` in Caffe's class order (wnids outside ILSVRC-2012 last, sorted)."""
    index = {wnid: i for i, wnid in enumerate(ilsvrc_wnids())}
    return sorted(wnids, key=lambda w: (index.get(w, len(index)), w))


@lru_cache(maxsize=1)
def natural_manmade() -> dict[str, str]:
    """wnid -> ``"natural"`` or ``"manmade"``: the paper's dissimilar split (449 / 551 classes)."""
    wnids = ilsvrc_wnids()
    family = {}
    for name, file in (("natural", "half_nat_idx.txt"), ("manmade", "half_man_idx.txt")):
        family.update({wnids[int(index)]: name for index in _lines(_PAPER / file)})
    return family


def imagenet_families(wnids: Sequence[str], dataset: str) -> list[str]:
    """The natural / man-made family of each wnid; UserError for wnids outside ILSVRC-2012."""
    family = natural_manmade()
    unknown = [w for w in wnids if w not in family]
    if unknown:
        raise UserError(f"dataset={dataset}: classes {unknown[:5]} are not ILSVRC-2012 wnids, so "
                        "they have no natural/man-made family; keep only ILSVRC-2012 classes, or "
                        "use dataset=imagefolder for other data")
    return [family[w] for w in wnids]


@lru_cache(maxsize=1)
def cifar100_superclasses() -> dict[str, str]:
    """CIFAR-100 fine class name -> its coarse class (superclass) name."""
    return dict(line.split() for line in _lines(_DIR / "cifar100_superclasses.txt"))
