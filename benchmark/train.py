"""The training / evaluation loop: SGD + momentum, step or cosine schedule, per-epoch eval.

One log line per epoch and a tqdm bar per epoch. A NaN or infinite loss stops the
run with :class:`RunDiverged`. On CUDA, autocast (bf16) and channels_last switch on.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from tqdm import tqdm

from benchmark.checkpoint import Checkpoint
from benchmark.data.batches import Augment, Normalizer, batches
from benchmark.data.images import ImageTensors
from benchmark.errors import RunDiverged
from benchmark.models import TransferNet

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
                "top1_best": max(h["val_top1"] for h in self.history)}


def pick_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one (then cuDNN picks its fastest kernels)."""
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _scheduler(optimizer: torch.optim.Optimizer, cfg: DictConfig) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def _topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """How many labels are among the top-k logits, as a device tensor (no GPU sync)."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()


@torch.no_grad()
def evaluate(model: TransferNet, data: ImageTensors, normalize: Normalizer, device: torch.device,
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


def _train_epoch(model: TransferNet, optimizer: torch.optim.Optimizer, data: ImageTensors,
                 normalize: Normalizer, device: torch.device, cfg: DictConfig,
                 generator: torch.Generator, desc: str) -> dict[str, float]:
    model.train()
    augment = Augment(**cfg.augment)
    totals = torch.zeros(2, device=device)  # summed loss, correct; no GPU sync inside the loop
    steps = math.ceil(len(data) / cfg.batch_size)
    bar = tqdm(batches(data, cfg.batch_size, normalize, device, generator, augment), total=steps,
               desc=desc, leave=False, dynamic_ncols=True, mininterval=1.0,
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
    return {"train_loss": loss_sum / len(data), "train_top1": correct / len(data)}


def train(model: TransferNet, param_groups: list[dict], train_data: ImageTensors,
          val_data: ImageTensors, normalize: Normalizer, cfg: DictConfig, device: torch.device,
          seed: int, name: str, on_epoch: Callable[[dict], None] | None = None,
          checkpoint: Checkpoint = Checkpoint(None)) -> TrainResult:
    """Train ``model`` for ``cfg.epochs`` epochs, evaluating on ``val_data`` after each;
    resume from ``checkpoint`` when it holds earlier epochs, and save it after each."""
    optimizer = torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov and cfg.momentum > 0)
    scheduler = _scheduler(optimizer, cfg)
    generator = torch.Generator().manual_seed(seed)
    result = TrainResult(checkpoint.restore(model, optimizer, scheduler, generator))
    for epoch in range(len(result.history) + 1, cfg.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        stats = _train_epoch(model, optimizer, train_data, normalize, device, cfg, generator,
                             f"{name} epoch {epoch}/{cfg.epochs}")
        scheduler.step()
        val = evaluate(model, val_data, normalize, device, cfg.eval_batch_size)
        record = {"epoch": epoch, **stats, **{f"val_{k}": v for k, v in val.items()}, "lr": lr}
        result.history.append(record)
        log.info("%s epoch %d/%d  train_loss %.4f  train_top1 %.4f  val_loss %.4f  val_top1 %.4f  "
                 "val_top5 %.4f  lr %.4g", name, epoch, cfg.epochs, stats["train_loss"],
                 stats["train_top1"], val["loss"], val["top1"], val["top5"], lr)
        checkpoint.save(model, optimizer, scheduler, generator, result.history)
        if on_epoch is not None:
            on_epoch(record)
    return result
