"""Surgery on real training: copied weights, frozen behaviour, fine-tuning."""
import copy

import pytest

import torch
from omegaconf import OmegaConf

from benchmark.data import half_task, load_dataset, split_classes
from benchmark.data.batches import Normalizer
from benchmark.models import build_model
from benchmark.surgery import parameter_groups, prepare_target
from benchmark.train import TrainData, TrainJob, train

CPU = torch.device("cpu")
SOURCE_FIELDS = ["dataset", "data", "split", "model", "train"]  # all that _train_source reads


def _train_source(cfg):
    """A source network trained on half B of ``cfg``'s data, with that task and its normalisation."""
    data = load_dataset(cfg.dataset, cfg.data.root)
    split = split_classes(cfg.split, data.class_names, data.families)
    task = half_task(data, split, "B")
    torch.manual_seed(0)
    source = build_model(cfg.model, task.num_classes, data.image_size)
    norm = Normalizer(data.mean, data.std, CPU)
    train(TrainJob(source, parameter_groups(source, 0, cfg.train.lr, cfg.train.weight_decay),
                   TrainData(task.train, task.val, norm, CPU), cfg.train, seed=1, name="source"))
    return source, task, norm, data.image_size


@pytest.fixture(scope="module")
def trained_source():
    """``_train_source`` for each distinct source config trained once per module; every call
    returns copies, so tests cannot disturb each other."""
    trained = {}

    def get(cfg):
        key = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, SOURCE_FIELDS))
        if key not in trained:
            trained[key] = _train_source(cfg)
        return copy.deepcopy(trained[key])
    return get


@pytest.fixture
def source_and_target(trained_source):
    """The trained source, a fresh target network (its own seed), the task and normalisation."""
    def make(cfg):
        source, task, norm, image_size = trained_source(cfg)
        torch.manual_seed(1)
        target = build_model(cfg.model, task.num_classes, image_size)
        return source, target, task, norm
    return make


def _fit(cfg, model, task, norm, copied, scale=1.0):
    groups = parameter_groups(model, copied, cfg.train.lr, cfg.train.weight_decay, scale)
    train(TrainJob(model, groups, TrainData(task.train, task.val, norm, CPU), cfg.train, seed=2,
                   name="target"))
    return groups


def _block_state(model, n):
    return {k: v.clone() for k, v in model.state_dict().items()
            if k.startswith(tuple(f"blocks.{b}." for b in model.block_names[:n]))}


def test_copied_blocks_equal_the_source_and_the_rest_is_fresh(smoke_cfg, source_and_target):
    cfg = smoke_cfg()
    source, target, _, _ = source_and_target(cfg)
    prepare_target(target, source.state_dict(), 3, frozen=True, bn_eval=True)
    for key, value in _block_state(source, 3).items():
        assert torch.equal(target.state_dict()[key], value), key
    assert not torch.equal(target.blocks["conv4"][0].weight, source.blocks["conv4"][0].weight)
    assert not torch.equal(target.head.weight, source.head.weight)


def test_frozen_prefix_is_bit_identical_in_weights_buffers_and_outputs(smoke_cfg, source_and_target):
    cfg = smoke_cfg("model.batchnorm=true")
    source, target, task, norm = source_and_target(cfg)
    prepare_target(target, source.state_dict(), 4, frozen=True, bn_eval=True)
    before = _block_state(target, 4)
    probe = norm(task.val.images[:16])
    with torch.no_grad():
        target.eval()
        out_before = target.forward_prefix(probe, 4).clone()
    groups = _fit(cfg, target, task, norm, copied=4)
    trainable = {id(p) for g in groups for p in g["params"]}
    assert not any(id(p) in trainable for b in target.prefix(4) for p in b.parameters())
    after = _block_state(target, 4)
    assert any("running_mean" in k for k in before)
    for key in before:
        assert torch.equal(before[key], after[key]), key
    target.train()  # the prefix must stay in eval mode even after train()
    assert all(not m.training for b in target.prefix(4) for m in b.modules())
    with torch.no_grad():
        target.eval()
        assert torch.equal(target.forward_prefix(probe, 4), out_before)
    assert not torch.equal(target.blocks["conv5"][0].weight, source.blocks["conv5"][0].weight)


def test_freeze_bn_train_lets_frozen_batchnorm_statistics_move(smoke_cfg, source_and_target):
    cfg = smoke_cfg("model.batchnorm=true", "freeze.bn=train")
    source, target, task, norm = source_and_target(cfg)
    prepare_target(target, source.state_dict(), 2, frozen=True, bn_eval=False)
    before = _block_state(target, 2)
    _fit(cfg, target, task, norm, copied=2)
    after = _block_state(target, 2)
    assert torch.equal(before["blocks.conv1.0.weight"], after["blocks.conv1.0.weight"])
    assert not torch.equal(before["blocks.conv1.1.running_mean"], after["blocks.conv1.1.running_mean"])


def test_finetuning_changes_copied_layers_with_scaled_lr(smoke_cfg, source_and_target):
    cfg = smoke_cfg()
    source, target, task, norm = source_and_target(cfg)
    prepare_target(target, source.state_dict(), 3, frozen=False, bn_eval=True)
    before = _block_state(target, 3)
    groups = _fit(cfg, target, task, norm, copied=3, scale=0.1)
    after = _block_state(target, 3)
    assert not torch.equal(before["blocks.conv1.0.weight"], after["blocks.conv1.0.weight"])
    conv1 = target.blocks["conv1"][0].weight
    group = next(g for g in groups if any(p is conv1 for p in g["params"]))
    assert group["initial_lr"] == pytest.approx(cfg.train.lr * 0.1)


def test_training_is_deterministic_for_a_seed(smoke_cfg, trained_source):
    cfg = smoke_cfg()
    a, _, _, _ = trained_source(cfg)  # trained earlier in the module (or now)
    b, _, _, _ = _train_source(copy.deepcopy(cfg))  # trained again, here
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
