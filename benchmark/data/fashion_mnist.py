"""Fashion-MNIST from its official IDX ``.gz`` files (28x28 grey, 10 classes).

The images are zero-padded (``dataset.pad=true``, LeNet's way) or resized to
``image_size`` and replicated to 3 channels, so the RGB models take them as is.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from benchmark.data.decode import Decoded, cached, fit_arrays, labelled
from benchmark.data.files import candidates, download, first_with, missing
from benchmark.data.images import ImageTensors, LabelledImages
from benchmark.errors import UserError

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
SUBDIRS = ("fashion-mnist", "FashionMNIST/raw")  # the Debian/shared layout; torchvision's download


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000 08 ``ndim``) as an array."""
    try:
        with gzip.open(path) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"cannot read {path} ({error}); replace the file") from None
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    header = 4 + 4 * ndim
    if data[:4] != bytes([0, 0, 8, ndim]) or len(data) - header != int(np.prod(shape)):
        raise UserError(f"{path} is not an IDX file of {ndim}-d unsigned bytes of the size its "
                        "header gives; replace the file")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read(cfg: DictConfig, folder: Path) -> Decoded:
    parts = []
    for images_file, labels_file in FILES.values():
        images = fit_arrays(read_idx(folder / images_file, 3), cfg.image_size, pad=cfg.pad)
        labels = torch.from_numpy(read_idx(folder / labels_file, 1).astype(np.int64))
        parts.append(ImageTensors(images, labels))
    return Decoded(list(CLASSES), *parts)


def load(cfg: DictConfig, root: str) -> LabelledImages:
    """Fashion-MNIST from ``root/fashion-mnist/``, ``root/FashionMNIST/raw/`` or ``root/``."""
    names = [name for pair in FILES.values() for name in pair]
    looked_in = candidates(root, SUBDIRS)
    folder = first_with(looked_in, *names)
    if folder is None and cfg.download:
        from torchvision.datasets import FashionMNIST  # slow to import; only a download needs it
        download(cfg.name, looked_in[-1], lambda: FashionMNIST(str(looked_in[-1]), download=True))
        folder = first_with(looked_in, *names)
    if folder is None:
        raise missing(cfg.name, f"the official IDX files {', '.join(names)}", looked_in,
                      downloadable=True)
    return labelled(cfg, cached(cfg, [folder / n for n in names], lambda: _read(cfg, folder)))
