"""Tiny-ImageNet in its official layout (64 px ImageNet images), any number of classes.

``wnids.txt`` decides the classes (so a subset is a trimmed ``wnids.txt``); they
are ordered as in ILSVRC-2012 (Caffe's order) and are their
own wnids, so ``split=natural_manmade`` applies the paper's WordNet split.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from benchmark.data.classlists import caffe_order, imagenet_families
from benchmark.data.files import FileSet, candidates, first_with, image_files, load_files, missing
from benchmark.data.images import LabelledImages
from benchmark.errors import UserError

LAYOUT = "wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG and val/val_annotations.txt"


def _wnids(path: Path) -> list[str]:
    return caffe_order({line.strip() for line in path.read_text().splitlines() if line.strip()})


def _val_files(base: Path, labels: dict[str, int]) -> list[tuple[Path, int]]:
    """Val images of the chosen classes from ``val_annotations.txt`` (file, wnid, box)."""
    files = []
    for line in (base / "val" / "val_annotations.txt").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in labels:
            continue   # a blank line, or a class left out of wnids.txt
        path = base / "val" / "images" / fields[0]
        if not path.is_file():
            raise UserError(f"{base}/val/val_annotations.txt lists {fields[0]}, which is not in "
                            f"{base}/val/images; restore it or remove its line")
        files.append((path, labels[fields[1]]))
    return sorted(files)


def load(cfg: DictConfig, root: str) -> LabelledImages:
    """Tiny-ImageNet from ``root/<dataset.dir>/`` or ``root/``."""
    looked_in = candidates(root, [cfg.dir])
    base = first_with(looked_in, "wnids.txt", "train", "val/val_annotations.txt")
    if base is None:
        raise missing(cfg.name, f"the Tiny-ImageNet layout ({LAYOUT})", looked_in)
    wnids = _wnids(base / "wnids.txt")
    families = imagenet_families(wnids, cfg.name)
    labels = {wnid: label for label, wnid in enumerate(wnids)}
    train = [(path, labels[w]) for w in wnids
             for path in image_files(base / "train" / w / "images")]
    files = FileSet(wnids, train, _val_files(base, labels),
                    [base / "wnids.txt", base / "val" / "val_annotations.txt"])
    return load_files(cfg, files, families)
