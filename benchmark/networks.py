"""Assembling and training one network: fresh, base (cached), or copied from a source.

A :class:`Workspace` holds what every network of a run shares (config, data, class
split, device, input normalisation); the functions below build networks in it and
train them, on cached prefix features where that is exact (benchmark/feature_cache.py).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig

from benchmark import feature_cache
from benchmark.store.checkpoints import Checkpoint
from benchmark.data import ClassSplit, HalfTask, LabelledImages, half_task, load_dataset, split_classes
from benchmark.data.batches import Augment, Normalizer
from benchmark.preprocessing import DATASET_PREPROCESSING, Preprocessing
from benchmark.flops import block_forward_flops, frozen_step_fraction
from benchmark.models import TransferNet, build_model, model_label
from benchmark.protocol import BASE_TREATMENT, EXTERNAL, TREATMENTS, run_label, source_half
from benchmark.seeds import derive_seed
from benchmark.sources import check_blocks_match, external_state, run_preprocessing, size_hint
from benchmark.surgery import copy_blocks, parameter_groups, prepare_target
from benchmark.store.base_cache import BaseCache, CachedBase
from benchmark.store.fingerprint import base_fields, cache_key
from benchmark.store.lock import LockTiming
from benchmark.train import TrainData, TrainJob, TrainResult, pick_device, train

log = logging.getLogger(__name__)


@dataclass
class Workspace:
    """What every network of a run shares: config, data, class split, device, normalisation."""

    cfg: DictConfig
    dataset: LabelledImages
    split: ClassSplit
    device: torch.device
    normalize: Normalizer
    preprocessing: Preprocessing
    tasks: dict[str, HalfTask] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Workspace":
        """Threads, device, dataset and class split as ``cfg`` asks."""
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = pick_device(cfg.device)
        dataset = load_dataset(cfg.dataset, cfg.data.root)
        split = split_classes(cfg.split, dataset.class_names, dataset.families)
        preprocessing = run_preprocessing(cfg, dataset)
        return cls(cfg, dataset, split, device, Normalizer(preprocessing.mean, preprocessing.std, device),
                   preprocessing)

    @property
    def weights_preprocessing(self) -> dict | None:
        """The run's preprocessing where it is a pretrained source's, not the dataset's."""
        return None if self.preprocessing.origin == DATASET_PREPROCESSING else self.preprocessing.to_json()

    def task(self, half: str) -> HalfTask:
        """One half's task; the target half is thinned by ``data.train_per_class`` or
        ``data.target_fraction`` (so its base network is trained on the same data)."""
        if half not in self.tasks:  # selected (and moved to a GPU) once per run
            data = self.cfg.data if half == self.cfg.target else {}
            self.tasks[half] = half_task(self.dataset, self.split, half, data.get("train_per_class"),
                                         data.get("target_fraction"), self.cfg.seed).to(self.device)
        return self.tasks[half]

    def new_model(self, num_classes: int, init_seed: int) -> TransferNet:
        torch.manual_seed(init_seed)
        model = build_model(self.cfg.model, num_classes, self.dataset.image_size)
        # channels_last on CPU too: NCHW max-pooling is many times slower there
        return model.to(self.device, memory_format=torch.channels_last)


@dataclass
class Fitted:
    """A finished training and how it ran (for the sweep's cost report)."""

    result: TrainResult
    feature_cache: bool
    frozen_step_fraction: float | None


def fit(ws: Workspace, model: TransferNet, task: HalfTask, copied: int, seed: int, name: str,
        on_epoch=None, checkpoint: Checkpoint = Checkpoint(None)) -> Fitted:
    """Train ``model`` on ``task`` with the run's recipe; ``copied`` blocks count as copied
    (``finetune_lr_scale``). A frozen prefix in eval mode with un-augmented inputs trains
    on its cached outputs (the same weights, faster)."""
    recipe = ws.cfg.train
    groups = parameter_groups(model, copied, recipe.lr, recipe.weight_decay, ws.cfg.finetune_lr_scale,
                              recipe.bias_lr_scale, recipe.bias_weight_decay)
    data = TrainData(task.train, task.val, ws.normalize, ws.device)
    cached = recipe.feature_cache and feature_cache.usable(
        model, Augment(**recipe.augment).random_on(task.train))
    fraction = None
    if recipe.feature_cache and model.frozen_blocks and not model.runs_as_chain:
        log.info("%s: trains without the feature cache: model=%s runs its own forward, not its blocks "
                 "one after the other, so the frozen layers' outputs cannot be cut out", name,
                 model_label(ws.cfg.model))
    if cached:
        log.info("%s: training on cached features of the frozen first %d layers", name,
                 model.frozen_blocks)
        flops = block_forward_flops(model, ws.dataset.image_size)
        fraction = frozen_step_fraction(flops, model.frozen_blocks)
        data = feature_cache.cached_data(model, data, recipe.eval_batch_size)
        model = feature_cache.SuffixNet(model)
    job = TrainJob(model, groups, data, recipe, seed, name)
    return Fitted(train(job, on_epoch, checkpoint), cached, fraction)


@dataclass
class BaseNetwork:
    model: TransferNet
    cached: CachedBase


def _base_cache(cfg: DictConfig) -> BaseCache:
    return BaseCache(Path(cfg.cache_dir).absolute(), LockTiming(**cfg.lock))


def base_network(ws: Workspace, half: str) -> BaseNetwork:
    """The trained base network of ``half``, from the cache or trained now (once)."""
    cfg = ws.cfg
    task = ws.task(half)
    fields = base_fields(cfg, half, ws.weights_preprocessing)

    def train_base(checkpoint: Path) -> tuple[dict, dict]:
        log.info("training base%s (%d classes, %d images)", half, task.num_classes, len(task.train))
        start = time.time()
        model = ws.new_model(task.num_classes, derive_seed(cfg.seed, "base", half))
        result = fit(ws, model, task, 0, derive_seed(cfg.seed, "base-data", half),
                     run_label(BASE_TREATMENT, 0, False, half),
                     checkpoint=Checkpoint(checkpoint, cache_key(fields))).result
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return state, {"history": result.history, "metrics": result.metrics(),
                       "train_s": time.time() - start}

    cached = _base_cache(cfg).get_or_train(fields, train_base)
    return _loaded(ws, half, cached)


def cached_base_network(ws: Workspace, half: str) -> BaseNetwork | None:
    """The base network of ``half`` if the cache holds it (loading is cheap), else None: it is
    never trained for this."""
    cached = _base_cache(ws.cfg).get(base_fields(ws.cfg, half, ws.weights_preprocessing))
    return None if cached is None else _loaded(ws, half, cached)


def _loaded(ws: Workspace, half: str, cached: CachedBase) -> BaseNetwork:
    return BaseNetwork(network_of(ws, half, cached.state), cached)


def network_of(ws: Workspace, half: str, state: dict[str, torch.Tensor]) -> TransferNet:
    """The run's model for ``half``'s classes with the weights ``state`` (e.g. a saved network)."""
    model = ws.new_model(ws.task(half).num_classes, 0)
    model.load_state_dict(state)
    return model


@dataclass
class Source:
    """Where a target network's first n blocks come from."""

    state: dict[str, torch.Tensor] | None  # None: they stay random (the random control)
    bases: list[CachedBase]                 # base networks used (for the cost report)
    origin: str | None                      # the source's file or weights, as given


def source_state(ws: Workspace) -> Source:
    """The source of the run's treatment: a base network trained here (selffer: the
    target half's, transfer: the other half's), an external network, or none."""
    cfg = ws.cfg
    half = source_half(cfg.treatment, cfg.target)
    if half is not None:
        base = base_network(ws, half)
        return Source(base.model.state_dict(), [base.cached], str(base.cached.path))
    if TREATMENTS[cfg.treatment].source == EXTERNAL:
        state, origin = external_state(cfg.source, cfg.model, ws.dataset.image_size)
        return Source(state, [], origin)
    return Source(None, [], None)


def external_source_network(ws: Workspace) -> TransferNet | None:
    """The sweep's external source (``source.*``) as a network of the run's model; None without one."""
    if ws.cfg.source.checkpoint is None and ws.cfg.source.weights is None:
        return None
    state, origin = external_state(ws.cfg.source, ws.cfg.model, ws.dataset.image_size)
    return source_network(ws, Source(state, [], origin))


def source_network(ws: Workspace, source: Source) -> TransferNet | None:
    """The source as a network of the run's model (every block copied; its head is unused),
    None when the blocks are not copied from anywhere (the random control)."""
    if source.state is None:
        return None
    model = ws.new_model(ws.task(ws.cfg.target).num_classes, 0)
    check_blocks_match(model, source.state, ws.cfg.model.name, source.origin,
                       size_hint(ws.preprocessing, ws.dataset.image_size))
    copy_blocks(model, source.state, model.num_transferable)
    return model


def copy_first_n(ws: Workspace, model: TransferNet, source: Source) -> int:
    """The paper's target network: its first n blocks copied from the source (left at their
    random init when there is none), frozen unless fine-tuned. Returns how many blocks count as
    copied (they train at ``finetune_lr_scale``)."""
    cfg = ws.cfg
    if source.state is not None:
        check_blocks_match(model, source.state, cfg.model.name, source.origin,
                           size_hint(ws.preprocessing, ws.dataset.image_size))
    prepare_target(model, source.state, cfg.n, frozen=not cfg.finetune,
                   bn_eval=cfg.freeze.bn == "eval")
    return cfg.n if source.state is not None else 0


# How a treatment's target network is made from a fresh network and its source
# (``Treatment.builder`` in benchmark/protocol.py names one of these).
TargetBuilder = Callable[[Workspace, TransferNet, Source], int]
TARGET_BUILDERS: dict[str, TargetBuilder] = {"copy_first_n": copy_first_n}


@dataclass
class TargetNetwork:
    model: TransferNet
    fitted: Fitted
    source: Source
    train_s: float


def target_network(ws: Workspace, label: str, on_epoch=None,
                   checkpoint: Checkpoint = Checkpoint(None)) -> TargetNetwork:
    """Build the run's target network (first n blocks from its source, frozen or not) and train it."""
    cfg = ws.cfg
    task = ws.task(cfg.target)
    source = source_state(ws)  # first: loading a base network draws from torch's global RNG
    model = ws.new_model(task.num_classes, derive_seed(cfg.seed, "target", cfg.n))
    copied = TARGET_BUILDERS[TREATMENTS[cfg.treatment].builder](ws, model, source)
    start = time.time()
    fitted = fit(ws, model, task, copied, derive_seed(cfg.seed, "target-data", label), label,
                 on_epoch, checkpoint)
    return TargetNetwork(model, fitted, source, round(time.time() - start, 3))
