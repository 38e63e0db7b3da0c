"""Real-dataset loaders on tiny fixtures in their exact official layouts, and on ../shared/data."""
from __future__ import annotations

import copy
import gzip
import logging
import os
import pickle
import time
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from PIL import Image

from benchmark.data import cifar, decode, files, load_dataset, nominal_image_size
from benchmark.data.classlists import cifar100_superclasses
from benchmark.data.fashion_mnist import CLASSES as FASHION
from benchmark.data.imagenet import find_imagenet
from benchmark.errors import UserError
from conftest import SHARED_DATA, compose_config

RNG = np.random.default_rng(0)
SUPERCLASS = cifar100_superclasses()
CIFAR100 = sorted(SUPERCLASS)
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NATURAL = ["n01443537", "n01629819"]  # goldfish, European fire salamander
MANMADE = ["n02666196"]               # abacus


@cache
def _composed(name: str, overrides: tuple[str, ...]):
    """Hydra takes ~0.2 s to compose; the tests share one composition per dataset and overrides."""
    return compose_config(f"dataset={name}", *overrides)


def dataset_cfg(name: str, tmp_path: Path, *overrides: str):
    cfg = copy.deepcopy(_composed(name, overrides))
    cfg.cache_dir = str(tmp_path / "cache")
    return cfg.dataset


def write_images(folder: Path, count: int, size=(8, 8), mode="RGB", ext=".jpg", first=0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    for i in range(first, first + count):
        pixels = RNG.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(
            folder / f"{i:04d}{ext}")


# ---------------------------------------------------------------- fixtures, official layouts

def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def _cifar_batch(labels: list[int], label_key: str) -> dict:
    return {"data": RNG.integers(0, 256, (len(labels), 3072), dtype=np.uint8), label_key: labels}


def make_cifar10_pickles(root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    for b in range(1, 6):
        _pickle(folder / f"data_batch_{b}", _cifar_batch(list(range(10)) * 2, "labels"))
    _pickle(folder / "test_batch", _cifar_batch(list(range(10)), "labels"))
    _pickle(folder / "batches.meta", {"label_names": CIFAR10})


def make_cifar100_pickles(root: Path) -> None:
    folder = root / "cifar-100-python"
    _pickle(folder / "train", _cifar_batch(list(range(100)) * 2, "fine_labels"))
    _pickle(folder / "test", _cifar_batch(list(range(100)), "fine_labels"))
    _pickle(folder / "meta", {"fine_label_names": CIFAR100})


def make_cifar10_jpg(root: Path) -> None:
    for name in CIFAR10:
        write_images(root / "cifar10-jpg" / "train" / name, 3)
        write_images(root / "cifar10-jpg" / "test" / name, 2)


def _idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def make_fashion_mnist(root: Path) -> None:
    folder = root / "fashion-mnist"
    for prefix, n in (("train", 30), ("t10k", 20)):
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", RNG.integers(1, 256, (n, 28, 28)))
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def make_tiny_imagenet(root: Path) -> None:
    base = root / "tiny-imagenet-200"
    wnids = MANMADE + NATURAL[::-1]  # wnids.txt is not sorted; the loader orders by Caffe index
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    annotations = []
    for k, wnid in enumerate(wnids):
        write_images(base / "train" / wnid / "images", 3, ext=".JPEG",
                     mode="L" if k == 0 else "RGB")   # a grey class, as in Tiny-ImageNet
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        write_images(base / "val" / "images", 2, ext=".JPEG", first=2 * k)
        annotations += [f"{i:04d}.JPEG\t{wnid}\t0\t0\t7\t7" for i in (2 * k, 2 * k + 1)]
    (base / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")


def make_imagefolder(root: Path) -> None:
    for name, size in (("cats", (12, 6)), ("dogs", (8, 8)), ("emus", (5, 10))):
        write_images(root / "train" / name, 3, size=size, ext=".png")
        write_images(root / "val" / name, 1, size=size, ext=".png")


# name -> (dataset config, layout maker, overrides, train / val counts, class names, families)
LAYOUTS = {
    "cifar10-pickle": ("cifar10", make_cifar10_pickles, (), 100, 10, CIFAR10, CIFAR10),
    "cifar100-pickle": ("cifar100", make_cifar100_pickles, (), 200, 100, CIFAR100,
                        [SUPERCLASS[c] for c in CIFAR100]),
    "cifar10-jpg": ("cifar10", make_cifar10_jpg, ("dataset.image_size=8",), 30, 20, CIFAR10,
                    CIFAR10),
    "fashion_mnist": ("fashion_mnist", make_fashion_mnist, (), 30, 20, FASHION, FASHION),
    "tiny_imagenet": ("tiny_imagenet", make_tiny_imagenet, ("dataset.image_size=8",), 9, 6,
                      NATURAL + MANMADE, ["natural", "natural", "manmade"]),
    "imagefolder": ("imagefolder", make_imagefolder, ("dataset.image_size=8",), 9, 3,
                    ["cats", "dogs", "emus"], ["cats", "dogs", "emus"]),
}


@pytest.fixture
def no_md5(monkeypatch):
    """Generated CIFAR pickles cannot match the official MD5 sums torchvision checks."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity",
                        lambda path, md5=None: os.path.isfile(path))


def _make(layout: str, tmp_path: Path):
    name, make, overrides, *expected = LAYOUTS[layout]
    root = tmp_path / "data"
    make(root)
    return dataset_cfg(name, tmp_path, *overrides), root, expected


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_loader_reads_its_official_layout(layout, tmp_path, no_md5):
    cfg, root, (n_train, n_val, names, families) = _make(layout, tmp_path)
    data = load_dataset(cfg, str(root))
    size = cfg.image_size
    assert data.name == cfg.name and data.image_size == size
    for part, n in ((data.train, n_train), (data.val, n_val)):
        assert part.images.shape == (n, 3, size, size) and part.images.dtype == torch.uint8
        assert part.labels.dtype == torch.long
        assert sorted(part.labels.unique().tolist()) == list(range(len(data.class_names)))
    assert data.class_names == names and data.families == families
    assert data.mean == tuple(cfg.mean) and data.std == tuple(cfg.std)


# the dataset's own folder, which data.root may name instead of its parent
OWN_FOLDER = {"cifar10-pickle": "cifar-10-batches-py", "cifar100-pickle": "cifar-100-python",
              "cifar10-jpg": "cifar10-jpg", "fashion_mnist": "fashion-mnist",
              "tiny_imagenet": "tiny-imagenet-200"}


@pytest.mark.parametrize("layout", sorted(OWN_FOLDER))
def test_data_root_may_name_the_dataset_folder_or_its_parent(layout, tmp_path, no_md5):
    cfg, root, _ = _make(layout, tmp_path)
    from_parent = load_dataset(cfg, str(root))
    from_folder = load_dataset(cfg, str(root / OWN_FOLDER[layout]))
    assert from_folder.class_names == from_parent.class_names
    assert torch.equal(from_folder.train.images, from_parent.train.images)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_second_load_reads_the_cache_only(layout, tmp_path, no_md5):
    """Overwrite every image/array file with zeros, keeping its size and mtime: only a
    load that never decodes can still return the same images (.txt index files stay)."""
    cfg, root, _ = _make(layout, tmp_path)
    first = load_dataset(cfg, str(root))
    for path in (p for p in root.rglob("*") if p.is_file() and p.suffix != ".txt"):
        stat = path.stat()
        path.write_bytes(bytes(stat.st_size))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = load_dataset(cfg, str(root))
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.val.labels, second.val.labels)
    assert first.class_names == second.class_names and first.families == second.families
    assert len(list((tmp_path / "cache" / "datasets").glob("*.pt"))) == 1


def test_changed_source_or_size_rebuilds_the_cache(tmp_path, monkeypatch):
    cfg, root, _ = _make("imagefolder", tmp_path)
    calls = []
    monkeypatch.setattr(files, "decode_files",
                        lambda paths, size: calls.append(size) or decode.decode_files(paths, size))
    load_dataset(cfg, str(root))
    load_dataset(cfg, str(root))
    changed = root / "train" / "cats" / "0000.png"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    load_dataset(cfg, str(root))
    load_dataset(dataset_cfg("imagefolder", tmp_path, "dataset.image_size=4"), str(root))
    assert calls == [8, 8, 4]


def test_corrupt_cache_file_is_decoded_again(tmp_path, caplog):
    cfg, root, _ = _make("imagefolder", tmp_path)
    first = load_dataset(cfg, str(root))
    (cache_file,) = (tmp_path / "cache" / "datasets").glob("*.pt")
    cache_file.write_bytes(b"not a tensor file")
    with caplog.at_level(logging.WARNING):
        again = load_dataset(cfg, str(root))
    assert torch.equal(first.train.images, again.train.images)
    assert "unreadable" in caplog.text


def test_worker_processes_decode_the_same_pixels(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    write_images(root, 9, size=(10, 7))
    paths = sorted(root.iterdir())
    serial = decode.decode_files(paths, 6)
    monkeypatch.setattr(decode, "CHUNK", 2)   # 5 chunks: the process pool path
    monkeypatch.setattr(decode, "available_cores", lambda: 2)
    assert torch.equal(decode.decode_files(paths, 6), serial)
    assert serial.shape == (9, 3, 6, 6)
    (root / "0003.jpg").write_bytes(b"truncated")
    with pytest.raises(UserError, match="0003.jpg"):
        decode.decode_files(paths, 6)


# ---------------------------------------------------------------- pixels

def test_grey_images_become_rgb_and_are_centre_cropped(tmp_path):
    root = tmp_path / "data"
    for name in ("a", "b"):
        for part in ("train", "val"):
            write_images(root / part / name, 2, size=(16, 8), mode="L", ext=".png")
    data = load_dataset(dataset_cfg("imagefolder", tmp_path, "dataset.image_size=8"), str(root))
    image = data.train.images[0]
    assert image.shape == (3, 8, 8)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    source = np.asarray(Image.open(root / "train" / "a" / "0000.png"))
    assert torch.equal(image[0], torch.from_numpy(source[:, 4:12].copy()))  # no resize: 8 px high


def test_fashion_mnist_is_zero_padded_to_32(tmp_path):
    cfg, root, _ = _make("fashion_mnist", tmp_path)
    data = load_dataset(cfg, str(root))
    images = data.train.images
    assert images[:, :, :2].sum() == 0 and images[:, :, :, 30:].sum() == 0
    assert (images[:, :, 2:30, 2:30] > 0).all()   # the fixture's pixels are 1..255
    assert data.train.labels[:3].tolist() == [0, 1, 2]


def test_nominal_image_size_is_the_loaded_size(tmp_path):
    synthetic = dataset_cfg("synthetic", tmp_path, "dataset.params.image_size=15",
                            "dataset.params.train_per_class=2", "dataset.params.val_per_class=1")
    fashion, root, _ = _make("fashion_mnist", tmp_path)   # 28 px images, padded to 32
    assert (nominal_image_size(synthetic), nominal_image_size(fashion)) == (15, 32)
    for cfg in (synthetic, fashion):
        assert nominal_image_size(cfg) == load_dataset(cfg, str(root)).image_size


def test_train_per_class_makes_the_dataset_smaller_the_same_way_in_every_run(tmp_path):
    full, root, (n_train, n_val, names, _) = _make("cifar10-jpg", tmp_path)
    cfg = dataset_cfg("cifar10", tmp_path, "dataset.image_size=8", "dataset.train_per_class=2")
    data, again, every = load_dataset(cfg, str(root)), load_dataset(cfg, str(root)), load_dataset(full, str(root))
    assert data.train.class_counts().tolist() == [2] * len(names)   # both halves: every class
    assert len(data.val) == n_val and len(every.train) == n_train  # validation images all kept
    assert torch.equal(data.train.images, again.train.images)
    kept = {bytes(image.flatten().tolist()) for image in data.train.images}
    assert kept <= {bytes(image.flatten().tolist()) for image in every.train.images}


# ---------------------------------------------------------------- bad input

EXPECTED = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python",
            "fashion_mnist": "train-images-idx3-ubyte.gz", "tiny_imagenet": "wnids.txt",
            "imagefolder": "train/<class>", "imagenet": "train/<wnid>"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_missing_data_is_one_clear_error(name, tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(UserError) as error:
        load_dataset(dataset_cfg(name, tmp_path), str(root))
    message = str(error.value)
    assert f"dataset={name}" in message and EXPECTED[name] in message
    assert str(root) in message and "data.root=" in message
    downloadable = name in ("cifar10", "cifar100", "fashion_mnist")
    assert ("dataset.download=true" in message) == downloadable


def test_cifar_pickles_failing_their_checksum_are_reported(tmp_path):
    cfg, root, _ = _make("cifar10-pickle", tmp_path)   # without no_md5: torchvision checks
    with pytest.raises(UserError, match="corrupted.*dataset.download=true"):
        load_dataset(cfg, str(root))


def test_download_true_fetches_missing_pickles(tmp_path, no_md5, monkeypatch):
    class Offline(torchvision.datasets.CIFAR10):
        def download(self) -> None:   # stands in for the network: writes the official files
            make_cifar10_pickles(Path(self.root))
    monkeypatch.setattr(cifar, "_torchvision_class", lambda name: Offline)
    cfg = dataset_cfg("cifar10", tmp_path, "dataset.download=true")
    assert len(load_dataset(cfg, str(tmp_path / "data")).train) == 100


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    class NoNetwork(torchvision.datasets.CIFAR10):
        def download(self) -> None:
            raise OSError("network unreachable")
    monkeypatch.setattr(cifar, "_torchvision_class", lambda name: NoNetwork)
    cfg = dataset_cfg("cifar10", tmp_path, "dataset.download=true")
    with pytest.raises(UserError, match=r"download into .* failed \(network unreachable\)"):
        load_dataset(cfg, str(tmp_path / "data"))


def test_corrupt_idx_file_is_named(tmp_path):
    cfg, root, _ = _make("fashion_mnist", tmp_path)
    bad = root / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09abc"))
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset(cfg, str(root))


def test_unreadable_image_is_named_and_non_images_are_skipped(tmp_path, caplog):
    cfg, root, _ = _make("imagefolder", tmp_path)
    (root / "train" / "dogs" / "README.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING):
        data = load_dataset(cfg, str(root))
    assert len(data.train) == 9 and "README.txt" in caplog.text
    (root / "train" / "dogs" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"broken\.jpg.*remove or replace"):
        load_dataset(cfg, str(root))


def test_imagefolder_needs_the_same_classes_in_train_and_val(tmp_path):
    cfg, root, _ = _make("imagefolder", tmp_path)
    write_images(root / "val" / "yaks", 1)
    with pytest.raises(UserError, match="only in val: \\['yaks'\\]"):
        load_dataset(cfg, str(root))


def test_imagenet_layout_is_checked(tmp_path):
    root = tmp_path / "data"
    wnids = [MANMADE[0], NATURAL[1], NATURAL[0]]
    for wnid in wnids:
        write_images(root / "imagenet" / "train" / wnid, 1, ext=".JPEG")
        write_images(root / "imagenet" / "val" / wnid, 1, ext=".JPEG")
    cfg = dataset_cfg("imagenet", tmp_path)
    layout = find_imagenet(cfg, str(root))
    assert layout.wnids == NATURAL + MANMADE   # Caffe order
    assert layout.families == ["natural", "natural", "manmade"]
    write_images(root / "imagenet" / "train" / "n99999999", 1)
    write_images(root / "imagenet" / "val" / "n99999999", 1)
    with pytest.raises(UserError, match="n99999999.*not ILSVRC-2012"):
        find_imagenet(cfg, str(root))


# ---------------------------------------------------------------- real data (../shared/data)

@pytest.mark.slow  # decodes all 60,000 images (15-20 s); the slow stage's CIFAR-10 sweep reads what it decodes
def test_cifar10_jpg_from_shared_data(cifar10_jpg_root):
    cfg = dataset_cfg("cifar10", cifar10_jpg_root)
    start = time.perf_counter()
    data = load_dataset(cfg, str(cifar10_jpg_root / "data"))
    decoded_s = time.perf_counter() - start
    start = time.perf_counter()
    again = load_dataset(cfg, str(cifar10_jpg_root / "data"))
    cached_s = time.perf_counter() - start
    print(f"cifar10-jpg: decode {60000 / decoded_s:.0f} images/s ({decoded_s:.1f} s), "
          f"cached load {cached_s:.2f} s")
    assert data.class_names == CIFAR10 and len(data.families) == 10
    assert data.train.images.shape == (50000, 3, 32, 32) and len(data.val) == 10000
    assert data.train.class_counts().tolist() == [5000] * 10
    assert torch.equal(data.val.images, again.val.images)
    mean = data.train.images.float().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor(list(cfg.mean)), atol=2e-3)
