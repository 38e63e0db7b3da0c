"""Datasets on disk: where one lives under ``data.root`` (or its download), its image
files listed per class, and decoding them once.

Every loader looks in a few candidate folders and, when the data is in none of them,
raises one error that says what it expected, where it looked and how to fix it.
Files whose extension PIL does not know (README.txt, .DS_Store, label files ...)
are skipped with a warning, so a tree with stray files still loads; a file with
an image extension that PIL cannot decode stops the load with an error naming it.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig
from PIL import Image

from benchmark.data.decode import Decoded, cached, decode_files, labelled
from benchmark.data.images import ImageTensors, LabelledImages
from benchmark.errors import UserError

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- where the dataset is

def candidates(root: str | Path, subdirs: Sequence[str | None]) -> list[Path]:
    """``root/subdir`` for each named subdir, then ``root`` itself."""
    root = Path(root).absolute()
    return [root / s for s in subdirs if s] + [root]


def first_with(folders: Sequence[Path], *markers: str) -> Path | None:
    """The first folder that holds every marker file or folder."""
    return next((f for f in folders if all((f / m).exists() for m in markers)), None)


def missing(dataset: str, expected: str, looked_in: Sequence[Path], downloadable: bool = False
            ) -> UserError:
    """The missing-data error: what was expected, where we looked, how to fix it."""
    fix = "put the files there or set data.root=DIR to the folder that holds them"
    if downloadable:
        fix += ", or set dataset.download=true to download them"
    places = " or ".join(str(p) for p in dict.fromkeys(looked_in))
    return UserError(f"dataset={dataset}: data not found; expected {expected} in {places}; {fix}")


def download(dataset: str, root: Path, fetch: Callable[[], object]) -> None:
    """Run ``fetch`` (a torchvision download into ``root``), any failure as one UserError."""
    log.info("downloading %s into %s", dataset, root)
    try:
        fetch()
    except Exception as error:  # network, checksum or disk: the user's fix is the same
        raise UserError(f"dataset={dataset}: download into {root} failed ({error}); check the "
                        "network, or download the files by hand and set data.root=DIR") from None


# ---------------------------------------------------------------- its image files

def _image_extensions() -> frozenset[str]:
    Image.init()
    return frozenset(Image.registered_extensions())


IMAGE_EXTENSIONS = _image_extensions()


@dataclass
class FileSet:
    """Image files with their labels (indices into ``class_names``), per part."""

    class_names: list[str]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    extra_inputs: list[Path] = field(default_factory=list)  # index files that define the set

    def inputs(self) -> list[Path]:
        return [path for path, _ in self.train + self.val] + self.extra_inputs

    def decode(self, size: int) -> Decoded:
        """All images in one parallel pass, split back into train and val."""
        images = decode_files([path for path, _ in self.train + self.val], size)
        labels = torch.tensor([label for _, label in self.train + self.val], dtype=torch.long)
        n = len(self.train)
        return Decoded(list(self.class_names), ImageTensors(images[:n], labels[:n]),
                       ImageTensors(images[n:], labels[n:]))


def load_files(cfg: DictConfig, files: FileSet, families: Sequence[str] | None = None
               ) -> LabelledImages:
    """The shared path of every file-based loader: cached tensors, decoded on first use."""
    decoded = cached(cfg, files.inputs(), lambda: files.decode(cfg.image_size))
    return labelled(cfg, decoded, families)


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted; other files skipped with a warning."""
    if not folder.is_dir():
        raise UserError(f"expected a folder of images at {folder}; it does not exist")
    with os.scandir(folder) as entries:  # scandir: no stat call per file
        names = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    images = [n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    if len(images) < len(names):
        example = next(n for n in names if os.path.splitext(n)[1].lower() not in IMAGE_EXTENSIONS)
        log.warning("skipped %d non-image files in %s (e.g. %s)", len(names) - len(images), folder,
                    example)
    return [folder / n for n in images]


def class_names(split_dir: Path) -> list[str]:
    """The class folders of ``split_dir``, sorted (hidden folders ignored)."""
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _same_classes(train_dir: Path, val_dir: Path) -> list[str]:
    for folder in (train_dir, val_dir):
        if not folder.is_dir():
            raise UserError(f"expected a folder of class folders at {folder}; it does not exist")
    names, val_names = class_names(train_dir), class_names(val_dir)
    if names != val_names:
        raise UserError(f"the class folders of {train_dir} and {val_dir} differ (only in train: "
                        f"{sorted(set(names) - set(val_names))[:5]}, only in val: "
                        f"{sorted(set(val_names) - set(names))[:5]}); give both the same classes")
    if not names:
        raise UserError(f"{train_dir} has no class folders; expected {train_dir}/<class>/<image>")
    return names


def _labelled_files(split_dir: Path, names: Sequence[str]) -> list[tuple[Path, int]]:
    files = []
    for label, name in enumerate(names):
        found = image_files(split_dir / name)
        if not found:
            raise UserError(f"class folder {split_dir / name} has no images; add some or remove it")
        files += [(path, label) for path in found]
    return files


def class_folder_files(train_dir: Path, val_dir: Path) -> FileSet:
    """``train_dir/<class>/*`` and ``val_dir/<class>/*``; classes in sorted folder order."""
    names = _same_classes(train_dir, val_dir)
    return FileSet(names, _labelled_files(train_dir, names), _labelled_files(val_dir, names))
