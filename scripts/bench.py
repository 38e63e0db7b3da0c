"""Performance benchmark of transferbench's training path, reported as ratios.

    python scripts/bench.py [hydra overrides ...] [--out bench.json] [--steps N] [--repeats R]
                            [--imagenet-root DIR]
    python scripts/bench.py dataset=cifar10 data.root=DIR model.width=32
    python scripts/bench.py --recipes demo_long,demo [--compile] [hydra overrides ...]

The overrides compose the same config a run gets (``conf/``, defaults: convnet8 on the
synthetic data); the timed images are the first ``steps x train.batch_size`` training
images of the target half, held where a run holds them (on the GPU when there is one).

Method. Absolute times on shared machines mean little, so every number is a ratio of
two timings taken in the same process: each "epoch" is one pass over the same timed
images, and the functions compared are called in turn, round after round (interleaved,
the starting one rotating), after one untimed warm-up round. A ratio is the median
over ``repeats`` rounds of the per-round ratio, so slow drifts of the machine's load
hit both sides alike. On CUDA the device is synchronised before each clock read. On a
CPU shared with other jobs, give ``threads=`` the number of free cores: torch threads
beyond them slow training down many times over, which no ratio cancels.

What is measured (the keys of bench.json):

- ``loop_vs_plain``: epoch time of a plain PyTorch loop (randperm, index, normalise,
  forward, cross-entropy, zero_grad, backward, step; same model, optimizer groups,
  autocast and data) / epoch time of ``benchmark.train.train_epoch``. Target >= 0.95.
  The plain loop does not augment: where the config augments, the ratio includes that.
- ``utilisation``: training FLOP/s / the peak FLOP/s of a large matmul in the training
  dtype (float32 on CPU, bf16 on CUDA), both measured here. Training FLOPs are counted
  by ``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward step
  (matmuls and convolutions only, as that counter does).
- ``frozen_epoch_ratio[n]``: epoch time of the network with its first n blocks copied
  and frozen, trained end to end (feature cache off) / epoch time of the base network;
  ``trainable_flop_fraction[n]``: the FLOPs of that frozen network's training step
  (counted on the network itself: prefix forward, suffix forward and backward) / the
  base network's. The first should follow the second. These train without augmentation,
  the feature cache's condition.
- ``feature_cache_speedup[n]``: end-to-end frozen epoch time / epoch time on the
  prefix's cached outputs (``feature_cache.SuffixNet``); ``feature_cache_setup_s[n]``:
  seconds to compute those outputs for the timed images, paid once per run.
- ``data_vs_model[dataset]``: images/s that ``batches()`` delivers alone / images/s the
  model trains at, for the in-memory path, and with ``--imagenet-root`` for the streamed
  ILSVRC-2012 files (the yosinski2014 preset: CaffeNet, decoding workers). Target >= 2.
- ``readout_vs_base_training``: seconds to read one network and its random-init control out
  block by block (every block, linear_probe, knn and logme, on the config's ``analysis.readout``
  sample of the target half: one feature pass each, then the fits) / seconds to train one base network (the timed epoch scaled
  to the half's training images, times ``train.epochs``). The probe-only curve of a source
  should cost at most one base training (target <= 1/3).
- ``peak_rss_mb``, ``peak_gpu_mb`` (null on CPU), ``device``, ``torch``, ``overrides``.

With ``--recipes A,B,...`` (presets of ``conf/experiment``, the overrides applied to each, every
one on one thread as a sweep's parallel launcher runs its jobs) bench.json holds instead, besides
the last five keys, all timed together in one process:

- ``recipes[name]``: ``network_s``, seconds to train the preset's base network (the timed epoch
  scaled to the target half's training images, times ``train.epochs``, plus its held-out
  evaluations: every ``train.eval_every`` epochs and the last); ``sweep_s``, the seconds of every
  network of the preset's grid as the protocol sweeper expands its ``hydra.sweeper.params``
  (every seed; base runs once per seed, plus the other half's base network where the sweeper
  warms it; frozen runs on the feature cache where a run would use it, with the cache's one-off
  prefix pass, else end to end; fine-tuned runs as the base network), summed from the measured
  epoch and evaluation times of each kind; ``seed_s`` = ``sweep_s`` / ``seeds``;
  ``networks_per_seed``; ``utilisation`` and ``images_per_s`` of its base network as above; and
  for every preset after the first, ``network_vs_first``, ``seed_vs_first`` and ``sweep_vs_first``
  (medians of per-round ratios to the first preset). Data loading, process start-up and the base
  runs' readouts are not counted.
- ``levers``: what changes the epoch time of the last preset's base network, each with a ``note``:
  ``channels_last`` (NCHW epoch / channels_last epoch), ``batch_size`` (the same images in
  batches of 64, 128, 256 / at the preset's batch), ``image_size`` (time per image at the first
  preset's image size / at the last's, and ``flop_ratio``, the same in FLOPs),
  ``processes_vs_threads`` (images/s of one process per core, at most two, each on one thread,
  training at once / of one process on those cores), and with ``--compile`` ``compile``
  (steady compiled / eager epoch, and the seconds the first compiled epoch adds in a fresh
  process with an empty ``TORCHINDUCTOR_CACHE_DIR``, ``cold_compile_s``, and in a second one
  reading the cache the first left on disk, ``warm_compile_s``).
"""
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: no bars in timed epochs

import argparse
import json
import math
import multiprocessing
import queue
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmark import feature_cache
from benchmark.config import compose_config
from benchmark.data import HalfTask, nominal_image_size
from benchmark.data.batches import Augment, batches
from benchmark.data.images import ImageSet, ImageTensors
from benchmark.data.streaming import streamed
from benchmark.errors import UserError, exit_with
from benchmark.measures import enabled_measures
from benchmark.measures.labelled import read_out
from benchmark.models import TransferNet
from benchmark.networks import Workspace
from benchmark.protocol import OWN, other_half
from benchmark.schema import validate
from benchmark.surgery import parameter_groups, prepare_target
from benchmark.train import (TrainData, TrainJob, autocast, compiled, evaluate, evaluated_after,
                             make_optimizer, train_epoch)
from hydra_plugins.transferbench_sweeper import (LAYER_LISTS, WARM_SOURCES, Point, blocks_by_model,
                                                 expanded_jobs, only_at, protocol_points, waves)

DEFAULT_STEPS = 8
DEFAULT_REPEATS = 5
PEAK_SECONDS = 0.3  # each peak-matmul timing runs about this long
BATCH_SIZES = (64, 128, 256)  # the batch-size lever
MAX_CORES = 2  # the processes-vs-threads lever uses at most this many cores
# overrides of the user's that also apply to the streamed ImageNet config
SHARED_KEYS = ("device", "threads", "cache_dir", "data.num_workers")
# measured and printed, but not bench.json keys
TABLE_ONLY = ("achieved_gflops", "peak_gflops", "images_per_s", "cache_flop_ratio")

Epoch = Callable[[], object]


# --- timing -------------------------------------------------------------------------------

def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timings:
    """Seconds per call of each timed function, one sample per round."""

    samples: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, a: str, b: str) -> float:
        """Median over rounds of time(a) / time(b) in the same round."""
        return statistics.median(ta / tb for ta, tb in zip(self.samples[a], self.samples[b]))

    def weighted(self, weights: dict[str, float]) -> list[float]:
        """Per round: the sum of each named time times its weight (a run made of several epochs)."""
        rounds = len(next(iter(self.samples.values())))
        return [sum(w * self.samples[name][r] for name, w in weights.items()) for r in range(rounds)]


def timed(fns: dict[str, Epoch], repeats: int, device: torch.device) -> Timings:
    """Call every function once per round, in turn (the first one rotating), for one
    untimed warm-up round and then ``repeats`` timed rounds."""
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats + 1):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            if round_:
                samples[name].append(time.perf_counter() - start)
    return Timings(samples)


# --- what a run builds ----------------------------------------------------------------------

@dataclass
class Setup:
    """A composed config with what a run builds from it, and the timed images."""

    cfg: DictConfig
    ws: Workspace
    task: HalfTask
    source: ImageSet      # the timed training images, as the data path reads them
    images: ImageTensors  # the same images in memory on the device

    @property
    def device(self) -> torch.device:
        return self.ws.device

    @property
    def batch_size(self) -> int:
        return int(self.cfg.train.batch_size)

    def first_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.ws.normalize(self.images.images[:self.batch_size]),
                self.images.labels[:self.batch_size])


def composed(overrides: Sequence[str], hydra_config: bool = False) -> DictConfig:
    """The config a run of these overrides gets, every value checked against its key's rules."""
    try:
        cfg = compose_config(*overrides, hydra_config=hydra_config)
    except HydraException as error:
        raise UserError(f"cannot compose the config from {' '.join(overrides)}: "
                        f"{str(error).splitlines()[0]}") from None
    validate(cfg)
    return cfg


def in_memory(source: ImageSet, batch_size: int, device: torch.device) -> ImageTensors:
    """``source`` as uint8 tensors on ``device`` (image files decoded once, central crops)."""
    if isinstance(source, ImageTensors):
        return source
    crops = [images for images, _ in streamed(source, batch_size, device)]
    return ImageTensors(torch.cat(crops).to(device), source.labels.to(device))


def build_setup(overrides: Sequence[str], steps: int) -> Setup:
    cfg = composed(overrides)
    ws = Workspace.from_config(cfg)
    task = ws.task(cfg.target)
    count = min(steps * cfg.train.batch_size, len(task.train))
    index = torch.arange(count)
    source = task.train.subset(index.to(task.train.labels.device), task.train.labels[:count])
    return Setup(cfg, ws, task, source, in_memory(source, cfg.train.batch_size, ws.device))


def network(setup: Setup, n: int = 0, source: TransferNet | None = None) -> TransferNet:
    """The base network (``n=0``) or one whose first ``n`` blocks are copied from ``source``
    and frozen, built as a run builds it."""
    model = setup.ws.new_model(setup.task.num_classes, 0)
    if n:
        prepare_target(model, source.state_dict(), n, frozen=True,
                       bn_eval=setup.cfg.freeze.bn == "eval")
    return model


def optimizer_for(setup: Setup, model: TransferNet, copied: int) -> torch.optim.Optimizer:
    """The optimizer :func:`benchmark.train.train` makes for the groups a run makes."""
    cfg, t = setup.cfg, setup.cfg.train
    groups = parameter_groups(model, copied, t.lr, t.weight_decay, cfg.finetune_lr_scale,
                              t.bias_lr_scale, t.bias_weight_decay)
    return make_optimizer(groups, t)


# --- one epoch of each kind -------------------------------------------------------------------

def our_epoch(setup: Setup, net: nn.Module, optimizer: torch.optim.Optimizer,
              data: TrainData | None = None, recipe: DictConfig | None = None) -> Epoch:
    """One epoch of benchmark.train's loop (``train_epoch``, no evaluation)."""
    data = data or TrainData(setup.images, setup.images, setup.ws.normalize, setup.device)
    job = TrainJob(compiled(net, setup.cfg.train.compile), optimizer.param_groups, data,
                   recipe or setup.cfg.train, 0, "bench")
    generator = torch.Generator().manual_seed(0)
    return lambda: train_epoch(job, optimizer, generator, "bench")


def plain_epoch(setup: Setup, net: nn.Module, optimizer: torch.optim.Optimizer) -> Epoch:
    """One epoch of the textbook PyTorch loop over the same in-memory images."""
    net = compiled(net, setup.cfg.train.compile)
    images, labels, device = setup.images.images, setup.images.labels, setup.device

    def epoch() -> None:
        net.train()
        order = torch.randperm(len(labels), device=images.device)
        for start in range(0, len(labels), setup.batch_size):
            index = order[start:start + setup.batch_size]
            x, y = setup.ws.normalize(images[index]), labels[index]
            with autocast(device):
                loss = F.cross_entropy(net(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return epoch


def data_epoch(setup: Setup) -> Epoch:
    """One epoch of ``batches()`` alone, shuffled and augmented as for training."""
    generator = torch.Generator().manual_seed(0)
    augment = Augment(**setup.cfg.train.augment)

    def epoch() -> None:
        for _ in batches(setup.source, setup.batch_size, setup.ws.normalize, setup.device,
                         generator, augment):
            pass
    return epoch


def matmul_peak(device: torch.device) -> tuple[Epoch, float]:
    """A large matmul in the training dtype, repeated to run about ``PEAK_SECONDS``; returns
    it and its FLOPs."""
    size, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty_like(a)
    once = timed({"mm": lambda: torch.mm(a, b, out=out)}, 1, device).median("mm")
    calls = max(1, math.ceil(PEAK_SECONDS / once))

    def run() -> None:
        for _ in range(calls):
            torch.mm(a, b, out=out)
    return run, 2.0 * size ** 3 * calls


def step_flops(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one training step's forward + backward on the batch ``x``."""
    net.train()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), y).backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops()


# --- the measurements -------------------------------------------------------------------------

def measure_loop(setup: Setup, repeats: int) -> dict:
    """Our loop vs the plain one, utilisation, and in-memory data vs model, timed together."""
    model = network(setup)
    optimizer = optimizer_for(setup, model, 0)
    flops_per_epoch = step_flops(model, *setup.first_batch()) * len(setup.images) / setup.batch_size
    peak, peak_flops = matmul_peak(setup.device)
    t = timed({"ours": our_epoch(setup, model, optimizer),
               "plain": plain_epoch(setup, model, optimizer),
               "peak": peak, "data": data_epoch(setup)}, repeats, setup.device)
    return {"loop_vs_plain": t.ratio("plain", "ours"),
            "utilisation": t.ratio("peak", "ours") * flops_per_epoch / peak_flops,
            "data_vs_model": {setup.cfg.dataset.name: t.ratio("ours", "data")},
            "achieved_gflops": flops_per_epoch / t.median("ours") / 1e9,
            "peak_gflops": peak_flops / t.median("peak") / 1e9,
            "images_per_s": len(setup.images) / t.median("ours")}


@dataclass
class Frozen:
    """A network with its first n blocks copied and frozen, and its feature-cache path."""

    model: TransferNet
    optimizer: torch.optim.Optimizer
    compute_features: Callable[[], ImageTensors]  # the prefix's outputs for the timed images
    features: ImageTensors
    suffix: feature_cache.SuffixNet

    @property
    def cached(self) -> TrainData:
        return TrainData(self.features, self.features, None, self.features.images.device)


def frozen_network(setup: Setup, base: TransferNet, n: int) -> Frozen:
    model = network(setup, n, base)
    compute_features = lambda: feature_cache.prefix_features(  # noqa: E731
        model, setup.images, setup.ws.normalize, setup.device, setup.cfg.train.eval_batch_size)
    return Frozen(model, optimizer_for(setup, model, n), compute_features, compute_features(),
                  feature_cache.SuffixNet(model))


def measure_frozen(setup: Setup, repeats: int) -> dict:
    """Networks with their first n = 1..7 blocks frozen, end to end and on cached features,
    against the base network. All train without augmentation, the feature cache's condition
    (augmentation costs the same per image with or without a frozen prefix)."""
    base = network(setup)
    x, y = setup.first_batch()
    base_flops = step_flops(base, x, y)
    plain = OmegaConf.merge(setup.cfg.train, {"augment": {"crop_padding": 0, "flip": False}})
    fns: dict[str, Epoch] = {"base": our_epoch(setup, base, optimizer_for(setup, base, 0),
                                               recipe=plain)}
    fractions, cache_flop_ratio = {}, {}
    for n in range(1, base.num_transferable + 1):
        frozen = frozen_network(setup, base, n)
        fractions[n] = step_flops(frozen.model, x, y) / base_flops
        cache_flop_ratio[n] = fractions[n] * base_flops / step_flops(
            frozen.suffix, frozen.features.images[:setup.batch_size], y)
        fns[f"frozen{n}"] = our_epoch(setup, frozen.model, frozen.optimizer, recipe=plain)
        fns[f"cached{n}"] = our_epoch(setup, frozen.suffix, frozen.optimizer, frozen.cached, plain)
        fns[f"setup{n}"] = frozen.compute_features
    t = timed(fns, repeats, setup.device)
    ns = list(fractions)
    return {"frozen_epoch_ratio": {n: t.ratio(f"frozen{n}", "base") for n in ns},
            "trainable_flop_fraction": fractions,
            "feature_cache_speedup": {n: t.ratio(f"frozen{n}", f"cached{n}") for n in ns},
            "feature_cache_setup_s": {n: t.median(f"setup{n}") for n in ns},
            "cache_flop_ratio": cache_flop_ratio}


def measure_readout(setup: Setup, repeats: int) -> dict:
    """One network's readout curve against one base training (see the module docstring)."""
    model = network(setup)
    analysis = OmegaConf.merge(setup.cfg.analysis, {"measures": ["linear_probe", "knn", "logme"]})
    measures = enabled_measures(analysis)
    t = timed({"readout": lambda: read_out(measures, setup.task, 0, setup.ws.normalize, setup.device,
                                           {OWN: model}, setup.ws.new_model),
               "ours": our_epoch(setup, model, optimizer_for(setup, model, 0))}, repeats, setup.device)
    training_s = t.median("ours") * len(setup.task.train) / len(setup.images) * setup.cfg.train.epochs
    return {"readout_vs_base_training": t.median("readout") / training_s}


def measure_data(setup: Setup, repeats: int) -> float:
    """images/s of ``batches()`` alone / images/s of training on the same images in memory."""
    model = network(setup)
    t = timed({"ours": our_epoch(setup, model, optimizer_for(setup, model, 0)),
               "data": data_epoch(setup)}, repeats, setup.device)
    return t.ratio("ours", "data")


def streamed_overrides(root: str, overrides: Sequence[str]) -> list[str]:
    """The paper's ImageNet pipeline, with the user's device/thread/cache settings."""
    shared = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in SHARED_KEYS]
    return ["experiment=yosinski2014", f"data.root={root}", *shared]


# --- the demo's recipes, side by side ---------------------------------------------------------

ONE_CORE = "threads=1"  # a sweep's parallel launcher runs each job on one thread


@dataclass
class Recipe:
    """A preset measured as its sweep runs it: its timed images and the jobs of its grid."""

    name: str
    setup: Setup
    jobs: list[tuple[list[str], Point]]  # the sweeper's jobs (every seed) and their points

    @property
    def seeds(self) -> int:
        return max(1, len({item for job, _ in self.jobs for item in job if item.startswith("seed=")}))


def sweep_jobs(overrides: Sequence[str]) -> list[tuple[list[str], Point]]:
    """The jobs the protocol sweeper launches for the preset's sweeper params (every seed, a
    base job with ``warm_sources=true`` where it also trains the other half's base network),
    each with its point (treatment, n, finetune)."""
    cfg = composed(overrides, hydra_config=True)
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    grid = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)[0]
    blocks = blocks_by_model(lambda settings: composed([*overrides, *settings]))
    points = only_at(protocol_points(expanded_jobs(grid, cfg, blocks), cfg),
                     {key: cfg.hydra.sweeper[key] for key in LAYER_LISTS}, blocks)
    point_of = {tuple(job): point for job, point in points}
    return [(job, point_of[tuple(item for item in job if item != WARM_SOURCES)])
            for wave in waves(points) for job in wave]


def build_recipe(name: str, overrides: Sequence[str], steps: int) -> Recipe:
    preset = [f"experiment={name}", *overrides, ONE_CORE]
    return Recipe(name, build_setup(preset, steps), sweep_jobs(preset))


class RecipeEpochs:
    """The timed functions of one recipe (named ``recipe:kind``) and the weights that turn
    their per-round times into the seconds of a run: epochs scaled to a half's images."""

    def __init__(self, recipe: Recipe) -> None:
        setup = self.setup = recipe.setup
        self.recipe, self.prefix = recipe, f"{recipe.name}:"
        self.base = network(setup)
        self.fns: dict[str, Epoch] = {
            "base": our_epoch(setup, self.base, optimizer_for(setup, self.base, 0)),
            "eval": self.evaluation(self.base, setup.images, setup.ws.normalize)}
        augmenting = Augment(**setup.cfg.train.augment).random_on(setup.task.train)
        self.cached: dict[int, bool] = {}
        for n in range(1, self.base.num_transferable + 1):
            frozen = frozen_network(setup, self.base, n)
            self.cached[n] = setup.cfg.train.feature_cache and feature_cache.usable(frozen.model, augmenting)
            if self.cached[n]:
                self.fns |= {f"frozen{n}": our_epoch(setup, frozen.suffix, frozen.optimizer, frozen.cached),
                             f"eval{n}": self.evaluation(frozen.suffix, frozen.features, None),
                             f"setup{n}": frozen.compute_features}
            else:
                self.fns |= {f"frozen{n}": our_epoch(setup, frozen.model, frozen.optimizer),
                             f"eval{n}": self.evaluation(frozen.model, setup.images, setup.ws.normalize)}

    def evaluation(self, net: nn.Module, images: ImageTensors, normalize) -> Epoch:
        return lambda: evaluate(net, images, normalize, self.setup.device,
                                self.setup.cfg.train.eval_batch_size)

    def named(self) -> dict[str, Epoch]:
        return {self.prefix + name: fn for name, fn in self.fns.items()}

    def run_weights(self, n: int, half: str) -> dict[str, float]:
        """One run's training and held-out evaluations; n = 0: the base network end to end (a
        fine-tuned run trains as one), n > 0: frozen, on the feature cache where the run uses it."""
        recipe, timed_images = self.setup.cfg.train, len(self.setup.images)
        task = self.setup.ws.task(half)
        evaluations = sum(evaluated_after(epoch, recipe) for epoch in range(1, recipe.epochs + 1))
        train, val = len(task.train) / timed_images, len(task.val) / timed_images
        kind = f"frozen{n}" if n else "base"
        weights = {kind: recipe.epochs * train, (f"eval{n}" if n else "eval"): evaluations * val}
        if n and self.cached[n]:
            weights[f"setup{n}"] = train + val  # the prefix's outputs, once per run
        return {self.prefix + name: w for name, w in weights.items()}

    def sweep_weights(self) -> tuple[dict[str, float], int]:
        """The weights of every network the sweep trains (its jobs, and the other half's base
        network where the sweeper warms it), and how many networks that is."""
        totals: dict[str, float] = {}
        networks = 0
        target = self.setup.cfg.target
        for job, (_, n, finetune) in self.recipe.jobs:
            half = dict(item.split("=", 1) for item in job).get("target", target)
            runs = [(0 if finetune else n, half)] + ([(0, other_half(half))] if WARM_SOURCES in job else [])
            for run_n, half in runs:
                for name, weight in self.run_weights(run_n, half).items():
                    totals[name] = totals.get(name, 0.0) + weight
            networks += len(runs)
        return totals, networks


def recipe_results(recipes: list[RecipeEpochs], t: Timings, peak_flops: float) -> dict[str, dict]:
    """Per network and per sweep seconds on one core, utilisation, and each recipe / the first."""
    results, first = {}, None
    for r in recipes:
        setup = r.setup
        network_s = t.weighted(r.run_weights(0, setup.cfg.target))
        weights, networks = r.sweep_weights()
        sweep_s = t.weighted(weights)
        flops = step_flops(r.base, *setup.first_batch()) * len(setup.images) / setup.batch_size
        seeds = r.recipe.seeds
        results[r.recipe.name] = row = {
            "network_s": statistics.median(network_s), "seed_s": statistics.median(sweep_s) / seeds,
            "sweep_s": statistics.median(sweep_s), "networks_per_seed": networks / seeds, "seeds": seeds,
            "utilisation": t.ratio("peak", r.prefix + "base") * flops / peak_flops,
            "images_per_s": len(setup.images) / t.median(r.prefix + "base")}
        if first is None:
            first, first_seeds = (network_s, sweep_s), seeds
        else:
            row["network_vs_first"] = statistics.median(a / b for a, b in zip(network_s, first[0]))
            row["sweep_vs_first"] = statistics.median(a / b for a, b in zip(sweep_s, first[1]))
            row["seed_vs_first"] = row["sweep_vs_first"] * first_seeds / seeds
    return results


def size_key(cfg: DictConfig) -> str:
    return "dataset.params.image_size" if "params" in cfg.dataset else "dataset.image_size"


class InProcessLevers:
    """channels_last, batch size and image size on the new recipe's base network, timed with
    the recipes."""

    def __init__(self, new: RecipeEpochs, old: Recipe, overrides: Sequence[str], steps: int) -> None:
        self.new = setup = new.setup
        self.base = new.prefix + "base"
        contiguous = network(setup).to(memory_format=torch.contiguous_format)
        self.fns = {"lever:nchw": our_epoch(setup, contiguous, optimizer_for(setup, contiguous, 0))}
        for batch in BATCH_SIZES:  # the same images, in batches of this size
            model = network(setup)
            recipe = OmegaConf.merge(setup.cfg.train, {"batch_size": batch})
            self.fns[f"lever:batch{batch}"] = our_epoch(setup, model, optimizer_for(setup, model, 0),
                                                        recipe=recipe)
        self.old_size = nominal_image_size(old.setup.cfg.dataset)
        self.sized = build_setup([f"experiment={new.recipe.name}", *overrides, ONE_CORE,
                                  f"{size_key(setup.cfg)}={self.old_size}"], steps)
        model = network(self.sized)
        self.fns["lever:size"] = our_epoch(self.sized, model, optimizer_for(self.sized, model, 0))

    def results(self, t: Timings) -> dict[str, dict]:
        setup, sized = self.new, self.sized
        flops = (step_flops(network(sized), *sized.first_batch())
                 / step_flops(network(setup), *setup.first_batch()))
        return {
            "channels_last": {
                "ratio": t.ratio("lever:nchw", self.base),
                "note": "epoch time NCHW / channels_last (what runs use, on CPU too); "
                        "> 1: channels_last is faster"},
            "batch_size": {
                **{str(batch): t.ratio(f"lever:batch{batch}", self.base) for batch in BATCH_SIZES},
                "note": f"epoch time (the same images) at each batch / at the recipe's batch "
                        f"{setup.batch_size}; the time of the step only, not of the lr it needs"},
            "image_size": {
                "ratio": t.ratio("lever:size", self.base) * len(setup.images) / len(sized.images),
                "flop_ratio": flops * setup.batch_size / sized.batch_size,
                "note": f"time per training image at {self.old_size} px / at "
                        f"{nominal_image_size(setup.cfg.dataset)} px (the new recipe's batch and network); "
                        f"flop_ratio: the same in training FLOPs"}}


# --- levers measured in fresh processes ------------------------------------------------------

def epoch_worker(overrides: list[str], steps: int, inbox, outbox) -> None:
    """A process that trains the base network one epoch per ``True`` it reads, and reports seconds."""
    setup = build_setup(overrides, steps)
    model = network(setup)
    epoch = our_epoch(setup, model, optimizer_for(setup, model, 0))
    epoch()  # warm-up
    outbox.put(len(setup.images))
    while inbox.get():
        start = time.perf_counter()
        epoch()
        outbox.put(time.perf_counter() - start)


def received(outbox: multiprocessing.Queue, process: multiprocessing.Process) -> object:
    """The next message from ``process``; :class:`UserError` if it ends without one (its own
    error is printed above)."""
    while True:
        try:
            return outbox.get(timeout=1.0)
        except queue.Empty:
            if not process.is_alive() and outbox.empty():
                raise UserError(f"a measuring process ended with exit code {process.exitcode} "
                                "before reporting; its error is printed above") from None


class Workers:
    """Processes that each train one epoch per ``start()``; ``wait()`` returns when all are done."""

    def __init__(self, overrides_each: list[list[str]], steps: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.queues = [(context.Queue(), context.Queue()) for _ in overrides_each]
        self.processes = [context.Process(target=epoch_worker, args=(o, steps, inbox, outbox), daemon=True)
                          for o, (inbox, outbox) in zip(overrides_each, self.queues)]
        for process in self.processes:
            process.start()
        self.images = sum(received(outbox, process)
                          for (_, outbox), process in zip(self.queues, self.processes))

    def start(self) -> None:
        for inbox, _ in self.queues:
            inbox.put(True)

    def wait(self) -> None:
        for (_, outbox), process in zip(self.queues, self.processes):
            received(outbox, process)

    def close(self) -> None:
        for (inbox, _), process in zip(self.queues, self.processes):
            inbox.put(False)
            process.join()


def measure_processes(new: RecipeEpochs, overrides: Sequence[str], steps: int, repeats: int) -> dict:
    """Images/s of the machine: one process per core on one thread each (this one and others
    started for it) training at once / this process alone on every core."""
    cores = min(MAX_CORES, len(os.sched_getaffinity(0)))
    if cores < 2:
        return {"ratio": None, "cores": cores, "note": "one core: nothing to compare"}
    epoch, threads = new.fns["base"], torch.get_num_threads()
    others = Workers([[f"experiment={new.recipe.name}", *overrides, ONE_CORE]] * (cores - 1), steps)

    def processes() -> None:
        others.start()
        epoch()
        others.wait()

    def one_process() -> None:
        torch.set_num_threads(cores)
        try:
            epoch()
        finally:
            torch.set_num_threads(threads)
    try:
        t = timed({"processes": processes, "threads": one_process}, repeats, new.setup.device)
    finally:
        others.close()
    images = len(new.setup.images)
    return {"ratio": t.ratio("threads", "processes") * (images + others.images) / images, "cores": cores,
            "note": f"images/s of {cores} processes x 1 thread training at once / of 1 process x "
                    f"{cores} threads; > 1: one process per core (the parallel launcher) is faster"}


def compile_worker(overrides: list[str], steps: int, repeats: int, outbox) -> None:
    """In a process of its own (its inductor cache is the environment's): the first compiled
    epoch's extra seconds and the steady compiled / eager epoch ratio."""
    setup = build_setup(overrides, steps)
    eager = replace(setup, cfg=OmegaConf.merge(setup.cfg, {"train": {"compile": False}}))
    model = network(setup)
    compiled_epoch = our_epoch(setup, model, optimizer_for(setup, model, 0))
    start = time.perf_counter()
    compiled_epoch()
    first = time.perf_counter() - start
    other = network(eager)
    t = timed({"compiled": compiled_epoch, "eager": our_epoch(eager, other, optimizer_for(eager, other, 0))},
              repeats, setup.device)
    outbox.put({"compile_s": first - t.median("compiled"), "ratio": t.ratio("compiled", "eager")})


def measure_compile(recipe: Recipe, overrides: Sequence[str], steps: int, repeats: int) -> dict:
    """torch.compile's steady epoch ratio and its compile seconds with an empty inductor cache
    (cold) and with the cache the first process left on disk (warm)."""
    context = multiprocessing.get_context("spawn")
    preset = [f"experiment={recipe.name}", *overrides, ONE_CORE, "train.compile=true"]
    runs = []
    with tempfile.TemporaryDirectory() as cache, patched_environ(TORCHINDUCTOR_CACHE_DIR=cache):
        for _ in ("cold", "warm"):
            outbox = context.Queue()
            process = context.Process(target=compile_worker, args=(preset, steps, repeats, outbox))
            process.start()
            runs.append(received(outbox, process))
            process.join()
    cold, warm = runs
    return {"ratio": warm["ratio"], "cold_compile_s": cold["compile_s"], "warm_compile_s": warm["compile_s"],
            "note": "steady epoch compiled / eager; seconds the first compiled epoch adds with an empty "
                    "TORCHINDUCTOR_CACHE_DIR (cold) and with the one the cold process left (warm)"}


@contextmanager
def patched_environ(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value


def measure_recipes(names: Sequence[str], overrides: Sequence[str], steps: int, repeats: int,
                    compile_lever: bool) -> dict:
    """The recipes side by side and the levers on the last one (the new recipe)."""
    for name in names:  # every preset composes before any is measured
        composed([f"experiment={name}", *overrides])
    recipes = [RecipeEpochs(build_recipe(name, overrides, steps)) for name in names]
    new = recipes[-1]
    levers = InProcessLevers(new, recipes[0].recipe, overrides, steps)
    peak, peak_flops = matmul_peak(new.setup.device)
    fns = {"peak": peak, **{k: v for r in recipes for k, v in r.named().items()}, **levers.fns}
    t = timed(fns, repeats, new.setup.device)
    measured = levers.results(t)
    measured["processes_vs_threads"] = measure_processes(new, overrides, steps, repeats)
    if compile_lever:
        measured["compile"] = measure_compile(new.recipe, overrides, steps, repeats)
    return {"recipes": recipe_results(recipes, t, peak_flops), "levers": measured,
            **memory(new.setup.device), "device": device_name(new.setup.device)}


# --- report -----------------------------------------------------------------------------------

def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0] if names else 'CPU'} ({torch.get_num_threads()} threads)"


def memory(device: torch.device) -> dict[str, float | None]:
    gpu = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": gpu}


def table(result: dict, setup: Setup, repeats: int) -> str:
    cfg = setup.cfg
    dtype = "bf16" if setup.device.type == "cuda" else "float32"
    gpu = "-" if result["peak_gpu_mb"] is None else f"{result['peak_gpu_mb']:.0f} MB"
    lines = [
        f"{cfg.model.name} on {cfg.dataset.name} (half {cfg.target}): {len(setup.images)} images "
        f"per epoch, batch {setup.batch_size}, median of {repeats} interleaved rounds",
        f"device: {result['device']}, torch {result['torch']}",
        "",
        f"our loop / plain PyTorch loop     {result['loop_vs_plain']:8.3f}   (target >= 0.95)",
        f"training FLOP/s / matmul peak     {result['utilisation']:8.3f}   "
        f"({result['achieved_gflops']:.1f} of {result['peak_gflops']:.1f} GFLOP/s, {dtype})",
        *(f"data / model images/s, {name:<10} {ratio:8.1f}   (target >= 2)"
          for name, ratio in result["data_vs_model"].items()),
        f"training {result['images_per_s']:.0f} images/s: an epoch of the {len(setup.task.train)} "
        f"training images of half {cfg.target} takes "
        f"{len(setup.task.train) / result['images_per_s']:.1f} s",
        f"readout curve / base training     {result['readout_vs_base_training']:8.3f}   (target <= 0.33)",
        f"peak RSS {result['peak_rss_mb']:.0f} MB, peak GPU memory {gpu}",
        "",
        " n   frozen/base epoch   FLOP fraction   cache speed-up   FLOP ratio   cache setup s",
    ]
    for n, ratio in result["frozen_epoch_ratio"].items():
        lines.append(f"{n:>2}   {ratio:17.3f}   {result['trainable_flop_fraction'][n]:13.3f}   "
                     f"{result['feature_cache_speedup'][n]:14.2f}   "
                     f"{result['cache_flop_ratio'][n]:10.2f}   "
                     f"{result['feature_cache_setup_s'][n]:13.4f}")
    lines.append("(FLOP ratio: frozen end-to-end step / cached-features step, what the speed-up "
                 "would be if time followed FLOPs)")
    augmenting = Augment(**cfg.train.augment).random_on(setup.task.train)
    if not cfg.train.feature_cache or augmenting:
        lines.append("note: real runs of this config train end to end (the feature cache is off "
                     "or inputs are augmented); the cached column is what the cache would give")
    return "\n".join(lines)


def recipes_table(result: dict, repeats: int) -> str:
    lines = [f"recipes side by side, median of {repeats} interleaved rounds; seconds on one core "
             f"(/first: per-round ratio to the first recipe)",
             f"device: {result['device']}, torch {result['torch']}", "",
             "recipe            network s  /first  utilisation  networks/seed  seeds    seed s  /first"
             "   sweep s  /first"]
    for name, r in result["recipes"].items():
        lines.append(f"{name:<16} {r['network_s']:10.1f}  {r.get('network_vs_first', 1):6.3f}  "
                     f"{r['utilisation']:11.3f}  {r['networks_per_seed']:13.0f}  {r['seeds']:5d}  "
                     f"{r['seed_s']:8.1f}  {r.get('seed_vs_first', 1):6.3f}  "
                     f"{r['sweep_s']:8.1f}  {r.get('sweep_vs_first', 1):6.3f}")
    lines += [f"(utilisation: training FLOP/s / matmul peak, target >= 0.6 for {name})", "",
              f"levers on {name}:"]
    for lever, measured in result["levers"].items():
        values = ", ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                           for key, value in measured.items() if key != "note")
        lines.append(f"  {lever:<22} {values}\n  {'':<22} ({measured['note']})")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="hydra overrides, e.g. dataset=cifar10")
    parser.add_argument("--out", default="bench.json", help="where to write the results")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help="training steps (batches) per timed epoch")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help="timed rounds (after one warm-up round); medians are reported")
    parser.add_argument("--imagenet-root", help="also measure the streamed ILSVRC-2012 files here")
    parser.add_argument("--recipes", type=lambda text: text.split(","),
                        help="presets to compare side by side instead, e.g. demo_long,demo (the last "
                             "is the new one, whose levers are measured)")
    parser.add_argument("--compile", action="store_true",
                        help="with --recipes: also measure torch.compile (minutes on a CPU)")
    args = parser.parse_intermixed_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")
    if args.recipes is not None and len(args.recipes) < 2:
        parser.error("--recipes needs two or more presets, e.g. --recipes demo_long,demo")
    if args.compile and args.recipes is None:
        parser.error("--compile measures a lever of --recipes; add e.g. --recipes demo_long,demo")
    return args


def run_recipes(args: argparse.Namespace) -> None:
    measured = measure_recipes(args.recipes, args.overrides, args.steps, args.repeats, args.compile)
    measured |= {"torch": torch.__version__, "overrides": list(args.overrides)}
    print(recipes_table(measured, args.repeats))
    write(measured, args.out)


def write(result: dict, out: str) -> None:
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")


def run(args: argparse.Namespace) -> None:
    if args.recipes:
        return run_recipes(args)
    setup = build_setup(args.overrides, args.steps)
    measured = (measure_loop(setup, args.repeats) | measure_frozen(setup, args.repeats)
                | measure_readout(setup, args.repeats))
    if args.imagenet_root:
        files = build_setup(streamed_overrides(args.imagenet_root, args.overrides), args.steps)
        measured["data_vs_model"][files.cfg.dataset.name] = measure_data(files, args.repeats)
    measured |= {**memory(setup.device), "device": device_name(setup.device),
                 "torch": torch.__version__, "overrides": list(args.overrides)}
    print(table(measured, setup, args.repeats))
    write({key: value for key, value in measured.items() if key not in TABLE_ONLY}, args.out)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except UserError as error:
        exit_with(error)


if __name__ == "__main__":
    main()
