"""CIFAR-10 and CIFAR-100 in either layout found under ``data.root``:

* the official python pickles (``cifar-10-batches-py/``, ``cifar-100-python/``),
  read by torchvision, which also checks their MD5 sums and downloads them when
  ``dataset.download=true``;
* class folders of image files (``cifar10-jpg/{train,test}/<class>/*.jpg``, the form
  of ``../shared/data/cifar10-jpg.tar.gz``; ``cifar100-jpg/`` likewise).

Both give the classes in the same (alphabetical) order. CIFAR-100's family of a
class is its superclass, so ``split=superclass`` gives whole superclasses to A.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from benchmark.data.classlists import cifar100_superclasses
from benchmark.data.decode import Decoded, cached, fit_arrays, labelled
from benchmark.data.files import class_folder_files, download, load_files, missing
from benchmark.data.images import ImageTensors, LabelledImages
from benchmark.errors import UserError

JPEG_FOLDER = {"cifar10": "cifar10-jpg", "cifar100": "cifar100-jpg"}


def _torchvision_class(name: str) -> Any:
    from torchvision.datasets import CIFAR10, CIFAR100  # slow to import; only this path needs it
    return {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]


def _families(name: str, class_names: list[str]) -> list[str] | None:
    if name != "cifar100":
        return None
    superclass = cifar100_superclasses()
    unknown = [c for c in class_names if c not in superclass]
    if unknown:
        raise UserError(f"dataset=cifar100: classes {unknown[:5]} are not CIFAR-100 classes, so "
                        "they have no superclass; use dataset=imagefolder for other data")
    return [superclass[c] for c in class_names]


def _torchvision_part(cfg: DictConfig, root: Path, train: bool) -> Any:
    try:
        return _torchvision_class(cfg.name)(str(root), train=train, download=False)
    except RuntimeError as error:  # torchvision: missing file or checksum mismatch
        raise UserError(f"dataset={cfg.name}: {error} (in {root}); replace the files, or "
                        "delete them and set dataset.download=true") from None


def _read_pickles(cfg: DictConfig, root: Path) -> Decoded:
    train, val = (_torchvision_part(cfg, root, part) for part in (True, False))
    parts = [ImageTensors(fit_arrays(np.asarray(d.data), cfg.image_size),
                          torch.tensor(d.targets, dtype=torch.long)) for d in (train, val)]
    return Decoded(list(train.classes), *parts)


def _from_pickles(cfg: DictConfig, root: Path) -> LabelledImages:
    source = _torchvision_class(cfg.name)
    folder = root / source.base_folder
    inputs = [folder / name for name, _ in source.train_list + source.test_list]
    inputs.append(folder / source.meta["filename"])
    absent = [p.name for p in inputs if not p.is_file()]
    if absent:
        raise UserError(f"dataset={cfg.name}: {folder} lacks {absent}; replace the files, or "
                        "delete the folder and set dataset.download=true")
    decoded = cached(cfg, inputs, lambda: _read_pickles(cfg, root))
    return labelled(cfg, decoded, _families(cfg.name, decoded.class_names))


def load(cfg: DictConfig, root: str) -> LabelledImages:
    """CIFAR-10 or CIFAR-100 (``cfg.name``) from ``root``, pickles preferred over JPEG folders.
    ``root`` may be the folder that holds the dataset's folder or that folder itself."""
    given = Path(root).absolute()
    base_folder = _torchvision_class(cfg.name).base_folder
    root_dir = given.parent if given.name == base_folder else given  # torchvision reads root/base_folder
    pickles = root_dir / base_folder
    jpeg = given if (given / "train").is_dir() and (given / "test").is_dir() else given / JPEG_FOLDER[cfg.name]
    if not pickles.is_dir() and not jpeg.is_dir() and cfg.download:
        fetch = _torchvision_class(cfg.name)
        download(cfg.name, root_dir, lambda: fetch(str(root_dir), download=True))
    if pickles.is_dir():
        return _from_pickles(cfg, root_dir)
    if jpeg.is_dir():
        files = class_folder_files(jpeg / "train", jpeg / "test")
        return load_files(cfg, files, _families(cfg.name, files.class_names))
    raise missing(cfg.name, f"the python version's {pickles.name}/ (as torchvision reads it) "
                  f"or {jpeg.name}/{{train,test}}/<class>/*.jpg", [given], downloadable=True)
