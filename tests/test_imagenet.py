"""ImageNet streamed from JPEG files: the listing, the paper's crops, determinism, end to end.

The fixture is ILSVRC-2012's layout in miniature: 2 natural and 2 man-made wnids, 6 training
and 3 validation JPEGs each, of the odd sizes real ImageNet images have.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.data import imagenet, load_dataset
from benchmark.data.batches import Augment, Normalizer, batches
from benchmark.data.classlists import ilsvrc_wnids, natural_manmade
from benchmark.data.images import ImageTensors
from benchmark.data.streaming import FileImages, streamed
from benchmark.errors import UserError
from conftest import compose_config, run_main

FAMILY = natural_manmade()
NATURAL = [w for w in ilsvrc_wnids() if FAMILY[w] == "natural"][:2]
MANMADE = [w for w in ilsvrc_wnids() if FAMILY[w] == "manmade"][:2]
WNIDS = NATURAL + MANMADE   # Caffe order: every natural one here comes first
SIZES = [(300, 280), (260, 400), (500, 375)]
TRAIN, VAL = 6, 3
CPU = torch.device("cpu")


def write_jpegs(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width, height = SIZES[i % len(SIZES)]
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).convert("L" if i == 1 else "RGB")  # ImageNet has grey JPEGs
        image.save(folder / f"{folder.name}_{i}.JPEG")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The data root, written once per module: never changed (tests that change it get ``root``)."""
    data = tmp_path_factory.mktemp("imagenet") / "data"
    for k, wnid in enumerate(reversed(WNIDS)):   # creation order must not matter
        write_jpegs(data / "imagenet" / "train" / wnid, TRAIN, k)
        write_jpegs(data / "imagenet" / "val" / wnid, VAL, 10 + k)
    return data


@pytest.fixture
def root(tmp_path: Path, pristine: Path) -> Path:
    """A copy of the data root of the test's own, to change as it likes."""
    return Path(shutil.copytree(pristine, tmp_path / "data"))


def load(tmp_path: Path, root: Path, *overrides: str):
    cfg = compose_config("dataset=imagenet", f"cache_dir={tmp_path / 'cache'}",
                         "data.num_workers=0", *overrides).dataset
    return load_dataset(cfg, str(root))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, pristine: Path):
    """The dataset loaded once with the defaults, for the tests that only read it."""
    return load(tmp_path_factory.mktemp("cache"), pristine)


def epoch(data: FileImages, generator: torch.Generator | None, batch_size: int = 8
          ) -> tuple[torch.Tensor, torch.Tensor]:
    parts = list(streamed(data, batch_size, CPU, generator))
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def warped(path: Path) -> torch.Tensor:
    """The pipeline's first step written out with PIL: ``[3, 256, 256]``, aspect not kept."""
    image = Image.open(path).convert("RGB").resize((256, 256), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


# ---------------------------------------------------------------- the loader

def test_loader_lists_classes_in_caffe_order_and_caches_the_listing(tmp_path, root, monkeypatch):
    data = load(tmp_path, root)
    assert data.class_names == WNIDS and data.families == ["natural"] * 2 + ["manmade"] * 2
    assert isinstance(data.train, FileImages) and isinstance(data.val, FileImages)
    assert data.image_size == 227 and (data.train.resize, data.train.random_crop) == (256, True)
    for part, per_class in ((data.train, TRAIN), (data.val, VAL)):
        assert part.labels.tolist() == [c for c in range(4) for _ in range(per_class)]
        assert [Path(p).parent.name for p in part.paths] == [WNIDS[c] for c in part.labels]
    assert all(p.startswith("val/") for p in data.val.paths)

    def no_listing(*args):
        raise AssertionError("the files were listed again")
    with monkeypatch.context() as patch:
        patch.setattr(imagenet, "class_folder_files", no_listing)
        again = load(tmp_path, root, "dataset.image_size=200", "data.num_workers=3")
    assert (again.train.paths == data.train.paths).all() and again.train.num_workers == 3
    Image.new("RGB", (300, 300)).save(root / "imagenet" / "train" / WNIDS[2] / "new.JPEG")
    assert len(load(tmp_path, root).train) == 4 * TRAIN + 1   # a changed folder is listed again


def test_validation_images_must_be_in_wnid_folders(tmp_path, root):
    val = root / "imagenet" / "val"
    for jpeg in list(val.glob("*/*.JPEG")):   # the official flat validation folder
        jpeg.rename(val / jpeg.name)
    for folder in val.iterdir():
        if folder.is_dir():
            folder.rmdir()
    with pytest.raises(UserError, match=r"val 0\); sort the validation images into "
                                        r"val/<wnid>/ folders"):
        load(tmp_path, root)


# ---------------------------------------------------------------- batches

def test_training_crops_are_random_per_epoch_and_repeat_for_a_seed(loaded):
    data = loaded.train
    generator = torch.Generator().manual_seed(0)
    first, labels = epoch(data, generator)
    second, _ = epoch(data, generator)
    assert first.dtype == torch.uint8 and first.shape == (4 * TRAIN, 3, 227, 227)
    assert sorted(labels.tolist()) == data.labels.tolist()
    assert not torch.equal(first, second)
    workers = FileImages(data.root, data.paths, data.labels, 227, 256, num_workers=2)
    replay, replay_labels = epoch(workers, torch.Generator().manual_seed(0), batch_size=5)
    assert torch.equal(replay, first) and torch.equal(replay_labels, labels)


def window(image: torch.Tensor, crop: torch.Tensor) -> tuple[int, int] | None:
    """Where ``crop`` lies in ``image``: the corners that match first, then the whole window."""
    size = crop.shape[-1]
    corners = (image[:, :-size + 1, :-size + 1] == crop[:, :1, :1]).all(0).nonzero().tolist()
    return next(((top, left) for top, left in corners
                 if torch.equal(image[:, top:top + size, left:left + size], crop)), None)


def test_training_crops_are_windows_of_the_256_px_warp(loaded):
    data = loaded.train
    one = data.subset(torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long))
    image = warped(Path(data.root) / data.paths[0])
    found = {window(image, crop) for crop in epoch(one, torch.Generator().manual_seed(1))[0]}
    assert None not in found and len(found) > 1 and found != {(14, 14)}


def test_evaluation_gives_the_same_centre_crops_every_time(loaded):
    data = loaded.val
    images, labels = epoch(data, None, batch_size=5)
    assert torch.equal(epoch(data, None)[0], images) and torch.equal(labels, data.labels)
    for i in (0, 1, 2):   # three sizes, one of them grey
        assert torch.equal(images[i], warped(Path(data.root) / data.paths[i])[:, 14:241, 14:241])
    assert torch.equal(images[1][0], images[1][2])


def test_batches_normalise_on_the_device_and_flip_reproducibly(loaded):
    data = loaded.train
    normalize = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), CPU)
    flip = Augment(flip=True)
    runs = [list(batches(data, 8, normalize, CPU, torch.Generator().manual_seed(3), flip))
            for _ in range(2)]
    for (x, y), (x2, y2) in zip(*runs):
        assert x.dtype == torch.float32 and torch.equal(x, x2) and torch.equal(y, y2)
    plain = torch.cat([x for x, _ in batches(data, 8, normalize, CPU)])
    assert torch.equal(plain, normalize(epoch(data, None)[0]))


def test_random_crops_keep_the_feature_cache_off(tmp_path, pristine, loaded):
    data = loaded.train
    assert Augment().random_on(data) and not Augment().random_on(ImageTensors(
        torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1])))
    central = load(tmp_path, pristine, "dataset.random_crop=false").train
    assert not Augment().random_on(central) and Augment(flip=True).random_on(central)
    shuffled, centred = epoch(central, torch.Generator().manual_seed(0))[0], epoch(central, None)[0]
    assert {x.numpy().tobytes() for x in shuffled} == {x.numpy().tobytes() for x in centred}


def test_class_selection_is_shared_with_in_memory_images(loaded):
    data = loaded.train
    half = data.select_classes([3, 1])
    assert isinstance(half, FileImages) and half.image_size == 227
    assert half.labels.tolist() == [1] * TRAIN + [0] * TRAIN
    assert [Path(p).parent.name for p in half.paths] == [WNIDS[1]] * TRAIN + [WNIDS[3]] * TRAIN
    few = half.per_class(2, seed=5)
    assert few.class_counts().tolist() == [2, 2]
    # the same labels in memory, each "image" its own index: the same images are chosen
    indexed = ImageTensors(torch.arange(len(half)).view(-1, 1, 1, 1), half.labels)
    chosen = indexed.per_class(2, seed=5).images.flatten()
    assert list(few.paths) == list(half.paths[chosen.numpy()])


def test_unreadable_image_is_one_clear_error_from_a_worker(tmp_path, root):
    (root / "imagenet" / "val" / WNIDS[0] / "broken.JPEG").write_bytes(b"not a jpeg")
    data = load(tmp_path, root, "data.num_workers=2").val
    with pytest.raises(UserError, match=r"cannot read image .*broken\.JPEG.*remove or replace") as e:
        epoch(data, None)
    assert "Traceback" not in str(e.value)


# ---------------------------------------------------------------- the command line

def result_of(tmp_path: Path, *args: str) -> dict:
    proc = run_main(*args, "train.epochs=1", "train.batch_size=4", "data.num_workers=0",
                    "wandb.mode=disabled", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((tmp_path / "run" / "result.json").read_text())


def test_transfer_run_on_imagenet_files(memory_tmp_path, root):
    result = result_of(memory_tmp_path, "dataset=imagenet", f"data.root={root}", "model=caffenet",
                       "train=caffe", "treatment=transfer", "n=2", "split=natural_manmade")
    assert (result["status"], result["label"]) == ("ok", "AnB2")
    assert (result["classes_A"], result["classes_B"]) == (NATURAL, MANMADE)


def test_yosinski2014_preset_runs_a_base_job(memory_tmp_path, root):
    result = result_of(memory_tmp_path, "experiment=yosinski2014", f"data.root={root}")
    assert (result["status"], result["label"], result["model"]) == ("ok", "baseB", "caffenet")
    assert len(result["classes_A"]) == len(result["classes_B"]) == 2
