"""The training / evaluation loop: SGD + momentum or AdamW, step or cosine schedule with an
optional linear warm-up, evaluation on the held-out images every ``train.eval_every`` epochs
and after the last.

One log line per epoch and a tqdm bar per epoch. A NaN or infinite loss stops the
run with :class:`RunDiverged`. On CUDA, autocast (bf16) and channels_last switch on.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from benchmark.store.checkpoints import Checkpoint
from benchmark.data.batches import Augment, Normalizer, batches
from benchmark.data.images import ImageSet
from benchmark.errors import RunDiverged, UserError

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.history[-1]

    def metrics(self) -> dict:
        last = self.final
        return {"top1": last["val_top1"], "top5": last["val_top5"], "loss": last["val_loss"],
                "top1_best": best_top1(self.history)}


def best_top1(history: list[dict]) -> float:
    """The best held-out top-1 of a training's evaluated epochs."""
    return max(h["val_top1"] for h in history if "val_top1" in h)


def evaluated_after(epoch: int, recipe: DictConfig) -> bool:
    """Whether the held-out images are evaluated after ``epoch``: every ``train.eval_every``-th
    epoch and the last (whose numbers are the run's result)."""
    return epoch % recipe.eval_every == 0 or epoch == recipe.epochs


def pick_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one (then cuDNN picks its fastest kernels)."""
    check_device(name)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def check_device(name: str) -> None:
    """:class:`UserError` when the device ``name`` (auto, cpu, cuda, cuda:N, mps) is not on
    this machine, naming what is."""
    if name in ("auto", "cpu"):
        return
    device = torch.device(name)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    present = ", ".join(["cpu", *(f"cuda:{i}" for i in range(gpus))])
    if device.type == "cuda" and (gpus == 0 or (device.index or 0) >= gpus):
        raise UserError(f"device={name} is not on this machine (present: {present}); use "
                        f"device=auto{' or device=cuda:0' if gpus else ' or device=cpu'}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device={name}: this machine has no Apple GPU (present: {present}); use "
                        "device=auto or device=cpu")


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@dataclass
class TrainData:
    """What the loop reads: training and held-out images, how to make them model inputs
    (``normalize``; None when they already are, e.g. cached prefix features) and where."""

    train: ImageSet
    val: ImageSet
    normalize: Normalizer | None
    device: torch.device


@dataclass
class TrainJob:
    """One training: the network, its optimizer groups, its data and the recipe
    (the ``train`` config group), with the seed of its data order and a name for logs."""

    model: nn.Module
    param_groups: list[dict]
    data: TrainData
    recipe: DictConfig
    seed: int
    name: str


def make_optimizer(param_groups: list[dict], recipe: DictConfig) -> torch.optim.Optimizer:
    """``train.optimizer``: sgd (momentum, optional Nesterov) or adamw (``momentum`` is beta1)."""
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=recipe.lr, betas=(recipe.momentum, 0.999))
    return torch.optim.SGD(param_groups, lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov and recipe.momentum > 0)


def _decay(optimizer: torch.optim.Optimizer, recipe: DictConfig, epochs: int
           ) -> torch.optim.lr_scheduler.LRScheduler:
    if recipe.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, recipe.step_size, recipe.gamma)
    if recipe.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: DictConfig
                   ) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch learning-rate schedule: ``train.warmup_epochs`` of linear warm-up
    (from lr / (warmup + 1)), then step, cosine or constant over the remaining epochs."""
    warmup = recipe.warmup_epochs
    if not warmup:
        return _decay(optimizer, recipe, recipe.epochs)
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, 1 / (warmup + 1), 1.0, total_iters=warmup)
    decay = _decay(optimizer, recipe, max(recipe.epochs - warmup, 1))
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, decay], milestones=[warmup])


def compiled(net: nn.Module, compile_it: bool) -> nn.Module:
    """``torch.compile`` on request (``train.compile``): worth it for long GPU trainings.

    Compiled dropout draws from torch's own RNG (``fallback_random``), so a seed gives
    the same masks as in eager mode and checkpoints resume the same stream.
    """
    if not compile_it:
        return net
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True
    return torch.compile(net)


def _topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """How many labels are among the top-k logits, as a device tensor (no GPU sync)."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageSet, normalize: Normalizer | None, device: torch.device,
             batch_size: int) -> dict[str, float]:
    """Top-1, top-5 and mean cross-entropy on ``data``."""
    model.eval()
    totals = torch.zeros(3, device=device)  # loss, top-1, top-5; read once at the end
    for x, y in batches(data, batch_size, normalize, device):
        with autocast(device):
            logits = model(x).float()
        totals += torch.stack([F.cross_entropy(logits, y, reduction="sum"),
                               _topk_correct(logits, y, 1), _topk_correct(logits, y, 5)])
    loss, top1, top5 = (totals / len(data)).tolist()
    return {"top1": top1, "top5": top5, "loss": loss}


def train_epoch(job: TrainJob, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                desc: str) -> dict[str, float]:
    """One pass over the training data in the order ``generator`` draws; mean loss and top-1."""
    model, data, recipe, device = job.model, job.data, job.recipe, job.data.device
    model.train()
    augment = Augment(**recipe.augment)
    totals = torch.zeros(2, device=device)  # summed loss, correct; no GPU sync inside the loop
    steps = math.ceil(len(data.train) / recipe.batch_size)
    bar = tqdm(batches(data.train, recipe.batch_size, data.normalize, device, generator, augment),
               total=steps, desc=desc, leave=False, dynamic_ncols=True, mininterval=1.0,
               disable=None)  # a bar on a terminal; log files keep the per-epoch lines
    for x, y in bar:
        with autocast(device):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        totals += torch.stack([loss.detach() * len(y), _topk_correct(logits.detach(), y, 1)])
    loss_sum, correct = totals.tolist()
    if not math.isfinite(loss_sum):  # a NaN or inf in any step carries into the sum
        raise RunDiverged(f"training loss became {loss_sum} in {desc}; lower train.lr")
    return {"train_loss": loss_sum / len(data.train), "train_top1": correct / len(data.train)}


def train(job: TrainJob, on_epoch: Callable[[dict], None] | None = None,
          checkpoint: Checkpoint = Checkpoint(None)) -> TrainResult:
    """Train for ``recipe.epochs`` epochs, evaluating on the held-out data after each;
    resume from ``checkpoint`` when it holds earlier epochs, and save it after each.
    ``on_epoch`` gets each epoch's record (a resumed run: from the checkpoint's last epoch on;
    W&B keeps the first record of a step and ignores a repeated one)."""
    recipe, data = job.recipe, job.data
    optimizer = make_optimizer(job.param_groups, recipe)
    scheduler = make_scheduler(optimizer, recipe)
    generator = torch.Generator().manual_seed(job.seed)
    epoch_job = replace(job, model=compiled(job.model, recipe.compile))
    net = epoch_job.model
    result = TrainResult(checkpoint.restore(job.model, optimizer, scheduler, generator))
    if result.history and on_epoch is not None:  # resumed: report the checkpoint's epoch again,
        on_epoch(result.history[-1])              # which a killed process may not have delivered
    for epoch in range(len(result.history) + 1, recipe.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        stats = train_epoch(epoch_job, optimizer, generator, f"{job.name} epoch {epoch}/{recipe.epochs}")
        scheduler.step()
        val = evaluate(net, data.val, data.normalize, data.device, recipe.eval_batch_size) \
            if evaluated_after(epoch, recipe) else {}
        record = {"epoch": epoch, **stats, **{f"val_{k}": v for k, v in val.items()}, "lr": lr}
        result.history.append(record)
        log.info("%s epoch %d/%d  %s  lr %.4g", job.name, epoch, recipe.epochs,
                 "  ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "lr")), lr)
        checkpoint.save(job.model, optimizer, scheduler, generator, result.history)
        if on_epoch is not None:
            on_epoch(record)
    return result
