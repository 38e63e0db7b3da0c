"""One run of the protocol: data -> split -> (cached) base networks -> surgery -> train -> result.

A run writes ``result.json`` into its output directory, atomically. A diverging
run is recorded as ``failed`` with its reason; a finished result is never rewritten.
"""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data import HalfTask, half_task, load_dataset, split_classes
from benchmark import feature_cache
from benchmark.checkpoint import Checkpoint
from benchmark.data.batches import Augment, Normalizer
from benchmark.errors import RunDiverged, UserError
from benchmark.flops import block_forward_flops, frozen_step_fraction
from benchmark.models import TransferNet, build_model
from benchmark.protocol import check_run, other_half, run_label, source_half
from benchmark.storage import atomic_write_json
from benchmark.surgery import parameter_groups, prepare_target
from benchmark.sweep.base_cache import BaseCache, cache_key
from benchmark.tracking import Tracker
from benchmark.train import TrainResult, evaluate, pick_device, train

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from any tuple (baseA and baseB of one seed differ)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class Context:
    """What every network of a run shares: config, data, device, normalisation."""

    cfg: DictConfig
    dataset: Any
    split: Any
    device: torch.device
    normalize: Normalizer
    cost: dict[str, Any] = field(default_factory=lambda: {"bases": [], "feature_cache": False})
    tasks: dict[str, HalfTask] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Context":
        """Threads, device, dataset and class split as ``cfg`` asks."""
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = pick_device(cfg.device)
        dataset = load_dataset(cfg.dataset, cfg.data.root)
        split = split_classes(cfg.split, dataset.class_names, dataset.families)
        return cls(cfg, dataset, split, device, Normalizer(dataset.mean, dataset.std, device))

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

    def fit(self, model: TransferNet, task: HalfTask, copied: int, seed: int, name: str,
            tracker: Tracker | None = None, checkpoint: Checkpoint = Checkpoint(None)) -> TrainResult:
        t = self.cfg.train
        groups = parameter_groups(model, copied, t.lr, t.weight_decay, self.cfg.finetune_lr_scale,
                                  t.bias_lr_scale, t.bias_weight_decay)
        on_epoch = (lambda record: tracker.log(record, step=record["epoch"])) if tracker else None
        if t.feature_cache and feature_cache.usable(model, Augment(**t.augment).random_on(task.train)):
            log.info("%s: training on cached features of the frozen first %d layers", name,
                     model.frozen_blocks)
            flops = block_forward_flops(model, self.dataset.image_size)
            self.cost.update(feature_cache=True,
                             frozen_step_fraction=frozen_step_fraction(flops, model.frozen_blocks))
            features = [feature_cache.prefix_features(model, data, self.normalize, self.device,
                                                      t.eval_batch_size)
                        for data in (task.train, task.val)]
            return train(_compiled(feature_cache.SuffixNet(model), t.compile), groups, *features,
                         feature_cache.Identity(), t, self.device, seed, name, on_epoch, checkpoint)
        return train(_compiled(model, t.compile), groups, task.train, task.val, self.normalize, t,
                     self.device, seed, name, on_epoch, checkpoint)


# dataset options that change where or how fast data is read, never what a network learns
NOT_DETERMINING_BASE = ("cache_dir", "download", "num_workers")


def _compiled(net: torch.nn.Module, compile_it: bool) -> torch.nn.Module:
    """``torch.compile`` on request (``train.compile``): worth it for long GPU trainings.

    Compiled dropout draws from torch's own RNG (``fallback_random``), so a seed gives
    the same masks as in eager mode and checkpoints resume the same stream.
    """
    if not compile_it:
        return net
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True
    return torch.compile(net)


def _base_fields(cfg: DictConfig, half: str) -> dict[str, Any]:
    """Exactly the config that determines a base network (its cache key)."""
    pick = lambda key: OmegaConf.to_container(cfg[key], resolve=True)  # noqa: E731
    target = half == cfg.target
    dataset = {k: v for k, v in pick("dataset").items() if k not in NOT_DETERMINING_BASE}
    return {"dataset": dataset, "split": pick("split"), "model": pick("model"),
            "train": pick("train"), "half": half, "seed": cfg.seed,
            "train_per_class": cfg.data.train_per_class if target else None,
            "target_fraction": cfg.data.target_fraction if target else None}


def base_network(ctx: Context, half: str) -> tuple[TransferNet, dict]:
    """The trained base network of ``half``, from the cache or trained now (once)."""
    cfg = ctx.cfg
    task = ctx.task(half)

    def train_base(checkpoint: Path) -> tuple[dict, dict]:
        log.info("training base%s (%d classes, %d images)", half, task.num_classes, len(task.train))
        start = time.time()
        model = ctx.new_model(task.num_classes, derive_seed(cfg.seed, "base", half))
        result = ctx.fit(model, task, 0, derive_seed(cfg.seed, "base-data", half), f"base{half}",
                         checkpoint=Checkpoint(checkpoint, cache_key(_base_fields(cfg, half))))
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return state, {"history": result.history, "metrics": result.metrics(),
                       "train_s": time.time() - start}

    cached = BaseCache(Path(cfg.cache_dir).absolute()).get_or_train(_base_fields(cfg, half), train_base)
    ctx.cost["bases"].append({"half": half, "train_s": cached.meta["train_s"],
                              "trained_now": cached.trained_now})
    model = ctx.new_model(task.num_classes, 0)
    model.load_state_dict(cached.state)
    return model, cached.meta


def _target_network(ctx: Context, task: HalfTask, tracker: Tracker, checkpoint: Checkpoint
                    ) -> tuple[TransferNet, TrainResult]:
    cfg = ctx.cfg
    source = source_half(cfg.treatment, cfg.target)
    source_state = base_network(ctx, source)[0].state_dict() if source else None
    model = ctx.new_model(task.num_classes, derive_seed(cfg.seed, "target", cfg.n))
    prepare_target(model, source_state, cfg.n, frozen=not cfg.finetune,
                   bn_eval=cfg.freeze.bn == "eval")
    label = run_label(cfg.treatment, cfg.n, cfg.finetune, cfg.target)
    start = time.time()
    result = ctx.fit(model, task, cfg.n if source else 0, derive_seed(cfg.seed, "target-data", label),
                     label, tracker, checkpoint)
    ctx.cost["train_s"] = round(time.time() - start, 3)
    return model, result


def _base_run(ctx: Context, task: HalfTask, tracker: Tracker) -> tuple[dict, list[dict]]:
    if ctx.cfg.warm_sources:
        base_network(ctx, other_half(ctx.cfg.target))
    model, meta = base_network(ctx, ctx.cfg.target)
    for record in meta["history"]:
        tracker.log(record, step=record["epoch"])
    metrics = evaluate(model, task.val, ctx.normalize, ctx.device, ctx.cfg.train.eval_batch_size)
    best = max(h["val_top1"] for h in meta["history"])
    return {**metrics, "top1_best": best}, meta["history"]


def _versions() -> dict[str, str]:
    import hydra
    import torchvision

    import benchmark

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "hydra": hydra.__version__,
            "transferbench": benchmark.__version__}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except Exception:
        return None


def execute(cfg: DictConfig, out_dir: Path, group: str | None = None) -> dict:
    """Run one configuration end to end and write ``out_dir/result.json`` (or return the
    result a previous attempt finished there)."""
    check_run(cfg)
    fingerprint = config_fingerprint(cfg)
    done = finished_result(out_dir, fingerprint)
    if done is not None:
        log.info("%s seed %s already finished (%s); skipping", done["label"], done["seed"],
                 out_dir / RESULT_FILE)
        return done
    start = time.time()
    ctx = Context.from_config(cfg)
    dataset, split, device = ctx.dataset, ctx.split, ctx.device
    label = run_label(cfg.treatment, cfg.n, cfg.finetune, cfg.target)
    task = ctx.task(cfg.target)
    tracker = Tracker(cfg.wandb.mode, cfg.wandb.project, cfg.wandb.entity, out_dir,
                      f"{label}/seed{cfg.seed}", group, cfg.treatment,
                      OmegaConf.to_container(cfg, resolve=True), cfg.wandb.init_timeout)
    result: dict[str, Any] = {
        "label": label, "fingerprint": fingerprint, "treatment": cfg.treatment, "n": cfg.n, "finetune": cfg.finetune,
        "source": source_half(cfg.treatment, cfg.target), "target": cfg.target, "seed": cfg.seed,
        "dataset": cfg.dataset.name, "model": cfg.model.name, "split": cfg.split.name,
        "train_per_class": cfg.data.train_per_class, "target_fraction": cfg.data.target_fraction,
        "classes_A": [dataset.class_names[c] for c in split.A],
        "classes_B": [dataset.class_names[c] for c in split.B],
    }
    checkpoint = Checkpoint(out_dir / CHECKPOINT_FILE, fingerprint)
    try:
        if cfg.treatment == "base":
            metrics, history = _base_run(ctx, task, tracker)
        else:
            _, trained = _target_network(ctx, task, tracker, checkpoint)
            metrics, history = trained.metrics(), trained.history
        result.update(status="ok", reason=None, metrics=metrics, history=history)
    except RunDiverged as error:
        log.error("%s failed: %s", label, error)
        result.update(status="failed", reason=str(error), metrics=None, history=[])
    result.update(wall_s=round(time.time() - start, 3), cost=ctx.cost, device=str(device),
                  config=OmegaConf.to_container(cfg, resolve=True), versions=_versions(),
                  git_commit=_git_commit())
    tracker.summary({**(result["metrics"] or {}), "status": result["status"]})
    tracker.finish(failed=result["status"] != "ok")
    atomic_write_json(out_dir / RESULT_FILE, result)
    checkpoint.remove()
    log.info("%s seed %d: %s %s -> %s", label, cfg.seed, result["status"],
             _format_metrics(result["metrics"]), out_dir / RESULT_FILE)
    return result


def _format_metrics(metrics: dict | None) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in metrics.items()) if metrics else ""


# keys that change where or how a run executes, never its numbers
NOT_DETERMINING_RESULT = ("wandb", "cache_dir", "device", "threads", "analysis", "sweep_name",
                          "warm_sources")


def config_fingerprint(cfg: DictConfig) -> str:
    """Hash of the resolved config that determines a run's result."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_DETERMINING_RESULT:
        config.pop(key, None)
    config["data"] = {k: v for k, v in config["data"].items() if k not in ("root", "num_workers")}
    config["dataset"] = {k: v for k, v in config["dataset"].items() if k not in NOT_DETERMINING_BASE}
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def finished_result(out_dir: Path, fingerprint: str) -> dict | None:
    """The result already written in ``out_dir`` if that run finished ``ok``, else None.

    An unreadable or failed result is reported and the run is done again; a finished
    result of a *different* configuration is never overwritten.
    """
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        log.warning("%s is corrupt (%s); running this configuration again", path, error)
        return None
    if result.get("status") != "ok":
        return None
    if result.get("fingerprint") != fingerprint:
        raise UserError(f"{path} holds a finished result of a different configuration; keep it and "
                        "write this one elsewhere: set hydra.sweep.dir=... (or hydra.run.dir=...) "
                        "or sweep_name=...")
    return result
