"""Class splits: the paper's random recipe, family / semantic splits, explicit class lists."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data import half_task, load_dataset, split_classes
from benchmark.data.classlists import cifar100_superclasses, ilsvrc_wnids, natural_manmade
from benchmark.data.images import ImageTensors, LabelledImages
from benchmark.data.splits import ClassSplit, family_halves, paper_random_halves
from benchmark.errors import UserError
from conftest import SHARED_DATA, compose_config


def split_cfg(*overrides: str):
    return compose_config(*overrides).split


# ---------------------------------------------------------------- random (the paper's recipe)

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_split_follows_the_original_recipe(seed):
    split = paper_random_halves(1000, seed)
    np.random.seed([seed])   # a list, as the original code: the int seed gives another split
    expected = sorted(np.random.choice(np.arange(1000), 500, replace=False).tolist())
    np.random.seed(seed)
    int_seeded = sorted(np.random.choice(np.arange(1000), 500, replace=False).tolist())
    assert split.A == expected and split.A != int_seeded
    assert split.A == sorted(split.A) and split.B == sorted(set(range(1000)) - set(split.A))


def test_random_split_leaves_the_global_numpy_state_alone():
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    paper_random_halves(10, 3)
    assert (np.random.get_state()[1] == before).all()


def _toy(num_classes: int = 4) -> LabelledImages:
    labels = torch.arange(num_classes).repeat_interleave(2)
    images = labels.view(-1, 1, 1, 1).expand(-1, 3, 2, 2).to(torch.uint8)
    part = ImageTensors(images.clone(), labels.clone())
    names = [f"c{i}" for i in range(num_classes)]
    return LabelledImages("toy", names, names, part, part, (0.5,) * 3, (0.25,) * 3)


def test_half_task_remaps_labels_in_ascending_class_order():
    task = half_task(_toy(), ClassSplit(A=[1, 3], B=[0, 2]), "A")
    assert task.class_names == ["c1", "c3"]
    assert task.train.labels.tolist() == [0, 0, 1, 1]
    assert task.train.images[:, 0, 0, 0].tolist() == [1, 1, 3, 3]   # the pixels follow the class


# ---------------------------------------------------------------- families

def test_family_split_sends_whole_families_to_a():
    families = ["x", "y", "x", "z", "y"]
    assert family_halves(families, ["y"], seed=0) == ClassSplit([1, 4], [0, 2, 3])
    for seed in range(4):
        split = family_halves(families, None, seed)
        a_families = {families[c] for c in split.A}
        assert len(a_families) == 1 and not a_families & {families[c] for c in split.B}


def test_superclass_split_gives_each_half_ten_whole_superclasses():
    names = sorted(cifar100_superclasses())
    families = [cifar100_superclasses()[n] for n in names]
    split = split_classes(split_cfg("split=superclass", "seed=1"), names, families)
    a, b = ({families[c] for c in half} for half in (split.A, split.B))
    assert len(split.A) == len(split.B) == 50 and len(a) == len(b) == 10 and not a & b
    other = split_classes(split_cfg("split=superclass", "seed=2"), names, families)
    assert other.A != split.A


def test_paper_natural_manmade_lists_cover_ilsvrc_once():
    family = natural_manmade()
    assert set(family) == set(ilsvrc_wnids()) and len(ilsvrc_wnids()) == 1000
    assert sum(f == "natural" for f in family.values()) == 449


def test_natural_manmade_on_tiny_imagenet_20(tiny_imagenet_20, tmp_path):
    cfg = compose_config("dataset=tiny_imagenet", "dataset.dir=tiny-imagenet-20",
                         "split=natural_manmade", f"cache_dir={tmp_path}")
    data = load_dataset(cfg.dataset, str(tiny_imagenet_20 / "data"))
    split = split_classes(cfg.split, data.class_names, data.families)
    a = [data.class_names[c] for c in split.A]
    b = [data.class_names[c] for c in split.B]
    assert len(a) == len(b) == 10
    assert all(natural_manmade()[w] == "natural" for w in a)
    assert all(natural_manmade()[w] == "manmade" for w in b)
    assert data.train.images.shape == (10000, 3, 64, 64) and len(data.val) == 1000
    assert half_task(data, split, "A").train.class_counts().tolist() == [500] * 10


# ---------------------------------------------------------------- explicit class lists

NAMES = ["cat", "dog", "T-shirt/top", "Ankle boot", "emu"]


def _classes(*overrides: str) -> ClassSplit:
    return split_classes(split_cfg("split=classes", *overrides), NAMES, NAMES)


def test_classes_split_by_inline_names():
    assert _classes("split.A=[emu,cat]", "split.B=[dog]") == ClassSplit([0, 4], [1])
    assert _classes("split.A=[dog]") == ClassSplit([1], [0, 2, 3, 4])   # B: every other class


def test_classes_split_from_a_file(tmp_path):
    path = tmp_path / "halves.txt"
    path.write_text("# my split\nA:\ncat\nT-shirt/top\n\nB:\nAnkle boot\n")
    assert _classes(f"split.file={path}") == ClassSplit([0, 2], [3])


@pytest.mark.parametrize("overrides, message", [
    (("split.A=[cat,lion,tiger]",), r"\['lion', 'tiger'\].*e\.g\. \['cat', 'dog'"),
    (("split.A=[cat]", "split.B=[cat]"), "more than once"),
    ((), "needs the class names"),
    (("split.A=[cat]", "split.file=x.txt"), "not both"),
    (("split.file=/nonexistent/halves.txt",), "does not exist"),
])
def test_classes_split_errors(overrides, message):
    with pytest.raises(UserError, match=message):
        _classes(*overrides)


def test_classes_file_must_start_with_a_header(tmp_path):
    path = tmp_path / "halves.txt"
    path.write_text("cat\nA:\ndog\n")
    with pytest.raises(UserError, match="before any 'A:'"):
        _classes(f"split.file={path}")


def test_empty_half_is_rejected():
    with pytest.raises(UserError, match="half B is empty"):
        _classes("split.A=[cat,dog,T-shirt/top,Ankle boot,emu]")


def test_empty_half_a_is_rejected():
    with pytest.raises(UserError, match="half A is empty"):
        _classes("split.A=[]", "split.B=[cat]")


# ---------------------------------------------------------------- split=all (the whole dataset)

def test_split_all_puts_every_class_in_b():
    split = split_classes(split_cfg("split=all"), NAMES, NAMES)
    assert split == ClassSplit(A=[], B=[0, 1, 2, 3, 4])
    task = half_task(_toy(5), split, "B")
    assert task.class_names == [f"c{i}" for i in range(5)]
    assert task.train.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_split_all_has_no_half_a():
    split = split_classes(split_cfg("split=all"), NAMES, NAMES)
    for ask in (lambda: split.half("A"), lambda: half_task(_toy(5), split, "A")):
        with pytest.raises(UserError, match=r"^split=all .* no half A; use target=B") as error:
            ask()
        assert "\n" not in str(error.value)
