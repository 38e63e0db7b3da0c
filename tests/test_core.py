"""Feature cache equivalence, base-network cache, synthetic data, config composition."""
import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from benchmark.config import usable_cores
from benchmark.data import half_task, load_dataset, split_classes
from benchmark.data.synthetic import SyntheticSpec, generate
from benchmark.networks import Workspace, base_network, fit
from benchmark.store.base_cache import BaseCache
from benchmark.store.lock import LockTiming
from benchmark.store.fingerprint import LATER_KEYS, base_fields, config_fingerprint
from benchmark.surgery import prepare_target
from conftest import CONFIG_DIR, compose_config


def _frozen_target(ws, source_state, n, use_cache):
    ws.cfg.train.feature_cache = use_cache
    task = ws.task("B")
    model = ws.new_model(task.num_classes, 7)
    prepare_target(model, source_state, n, frozen=True, bn_eval=True)
    fitted = fit(ws, model, task, n, seed=3, name=f"cache={use_cache}")
    assert fitted.feature_cache == use_cache
    return model, fitted.result


@pytest.mark.parametrize("n", [2, 6])
def test_feature_cache_trains_the_same_weights_as_end_to_end(shared_smoke_cfg, n):
    ws = Workspace.from_config(shared_smoke_cfg())
    source_state = base_network(ws, "A").model.state_dict()
    cached, r1 = _frozen_target(ws, source_state, n, True)
    direct, r2 = _frozen_target(ws, source_state, n, False)
    for key, value in cached.state_dict().items():
        assert torch.allclose(value.float(), direct.state_dict()[key].float(), atol=1e-4), key
    assert r1.metrics()["top1"] == pytest.approx(r2.metrics()["top1"], abs=1e-3)


def test_evaluating_every_third_epoch_trains_the_same_network_and_result(smoke_cfg):
    def trained(every: int):
        ws = Workspace.from_config(smoke_cfg("train.epochs=4", f"train.eval_every={every}"))
        task = ws.task("B")
        model = ws.new_model(task.num_classes, 7)
        return model, fit(ws, model, task, 0, seed=3, name=f"eval_every={every}").result
    (each, every_epoch), (third, every_third) = trained(1), trained(3)
    assert all(torch.equal(value, third.state_dict()[key]) for key, value in each.state_dict().items())
    assert [h["epoch"] for h in every_third.history if "val_top1" in h] == [3, 4]
    for sparse, full in zip(every_third.history, every_epoch.history):
        assert sparse == ({**full} if "val_top1" in sparse else
                          {k: v for k, v in full.items() if not k.startswith("val_")})
    final = ("top1", "top5", "loss")
    assert [every_third.metrics()[k] for k in final] == [every_epoch.metrics()[k] for k in final]


def test_base_network_is_cached_and_a_corrupt_checkpoint_is_retrained(smoke_cfg, tmp_path):
    cfg = smoke_cfg()
    ws = Workspace.from_config(cfg)
    calls = []
    cache = BaseCache(Path(cfg.cache_dir), LockTiming(**cfg.lock))
    train = lambda checkpoint: (calls.append(1), ({"w": torch.ones(3)}, {"history": []}))[1]  # noqa: E731
    first = cache.get_or_train({"k": 1}, train)
    second = cache.get_or_train({"k": 1}, train)
    assert (first.trained_now, second.trained_now, len(calls)) == (True, False, 1)
    checkpoint = next(Path(cfg.cache_dir).glob("*/model.pt"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:-10])  # truncated
    third = cache.get_or_train({"k": 1}, train)
    assert third.trained_now and len(calls) == 2 and torch.equal(third.state["w"], torch.ones(3))
    first_a, second_a = base_network(ws, "A"), base_network(ws, "A")
    assert all(torch.equal(v, second_a.model.state_dict()[k])
               for k, v in first_a.model.state_dict().items())
    assert len(first_a.cached.meta["history"]) == cfg.train.epochs


def test_synthetic_data_is_deterministic_and_families_are_balanced():
    cfg = compose_config("experiment=smoke")
    spec = SyntheticSpec(**cfg.dataset.params)
    a, b = generate(spec), generate(spec)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.images, b.val.images)
    assert a.train.images.dtype == torch.uint8 and a.train.images.shape[1:] == (3, 24, 24)
    assert len(set(a.families)) == spec.num_families
    other = generate(SyntheticSpec(**{**cfg.dataset.params, "world_seed": 1}))
    assert not torch.equal(a.train.images, other.train.images)


def test_family_split_keeps_families_whole_and_random_split_mixes_them():
    cfg = compose_config()
    data = load_dataset(cfg.dataset, cfg.data.root)
    family = split_classes(compose_config("split=family").split, data.class_names, data.families)
    fam_a = {data.families[c] for c in family.A}
    assert fam_a.isdisjoint({data.families[c] for c in family.B}) and len(fam_a) == 2
    rand = split_classes(cfg.split, data.class_names, data.families)
    assert {data.families[c] for c in rand.A} == set(data.families)
    task = half_task(data, rand, "B", train_per_class=10, subsample_seed=0)
    assert task.train.class_counts().tolist() == [10] * 16


@pytest.mark.parametrize("group", ["dataset", "model", "train", "split", "experiment"])
def test_every_config_option_composes(group):
    for option in sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml")):
        cfg = compose_config(f"{group}={option}")
        assert cfg.treatment and cfg.train.epochs >= 1


def test_the_demo_runs_one_single_threaded_process_per_core_and_at_most_8():
    cores = len(os.sched_getaffinity(0))
    cfg = compose_config("experiment=demo", hydra_config=True)
    assert cfg.threads == 1 and cfg.hydra.launcher.n_jobs == min(cores, 8)
    assert usable_cores(1) == 1 and usable_cores(10**6) == cores
    assert "n_jobs" not in compose_config("experiment=demo", "hydra/launcher=local",
                                          hydra_config=True).hydra.launcher


def test_target_fraction_thins_only_the_target_half_and_keys_its_base(smoke_cfg):
    from benchmark.data import target_limit

    assert target_limit([24, 24], None, 0.25) == 6 and target_limit([24, 20], 5, None) == 5
    cfg = smoke_cfg("data.target_fraction=0.5")
    ws = Workspace.from_config(cfg)
    assert ws.task("B").train.class_counts().tolist() == [12] * 4
    assert ws.task("A").train.class_counts().tolist() == [24] * 4
    full = base_fields(smoke_cfg(), "B")
    assert base_fields(cfg, "B") != full and base_fields(cfg, "A") == base_fields(smoke_cfg(), "A")


@pytest.mark.parametrize("group, key, value", [("dataset", "train_per_class", 100), ("model", "init", "kaiming"),
                                               ("train", "eval_every", 3)])
def test_keys_added_later_keep_older_fingerprints_at_their_old_value(group, key, value):
    """A finished result or cached base of a config written before the key existed is still found."""
    cfg = compose_config("dataset=cifar10")
    cfg[group][key] = LATER_KEYS[group][key]  # what runs did before the key existed
    older = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))  # untyped: keys can go
    del older[group][key]
    assert config_fingerprint(cfg) == config_fingerprint(older)
    assert base_fields(cfg, "B") == base_fields(older, "B")
    cfg[group][key] = value
    assert config_fingerprint(cfg) != config_fingerprint(older)
    assert base_fields(cfg, "B") != base_fields(older, "B")
