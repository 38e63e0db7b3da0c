"""Any image tree ``data.root/train/<class>/*`` and ``data.root/<val_dir>/<class>/*``.

For a user's own data: classes in sorted folder order, each its own family (so
``split=family`` is a random split of the classes; ``split=classes`` picks them by
name). Non-image files are skipped with a warning; an unreadable image is an error
naming it (see benchmark/data/files.py).
"""
from __future__ import annotations

from omegaconf import DictConfig

from benchmark.data.files import candidates, class_folder_files, first_with, load_files, missing
from benchmark.data.images import LabelledImages


def load(cfg: DictConfig, root: str) -> LabelledImages:
    """The image tree at ``root``, resized and centre-cropped to ``image_size``."""
    looked_in = candidates(root, [])
    base = first_with(looked_in, "train", cfg.val_dir)
    if base is None:
        raise missing(cfg.name, f"train/<class>/<image> and {cfg.val_dir}/<class>/<image> folders",
                      looked_in)
    return load_files(cfg, class_folder_files(base / "train", base / cfg.val_dir))
