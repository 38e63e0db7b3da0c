"""Network surgery: copy the first n blocks, keep the rest freshly initialised, freeze.

The head is never copied. Frozen blocks get no gradient and no optimizer state;
with ``freeze.bn=eval`` they also keep BatchNorm statistics and dropout in eval
mode through every ``model.train()`` (see :class:`TransferNet`).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from benchmark.models import TransferNet
from benchmark.models.net import under


@torch.no_grad()
def copy_blocks(target: TransferNet, source_state: Mapping[str, torch.Tensor], n: int) -> None:
    """Copy parameters and buffers of blocks 1..n from a source network's state dict (whose
    blocks :func:`benchmark.sources.check_blocks_match` has checked)."""
    paths = target.prefix_paths(n)
    for key, value in target.state_dict().items():
        if under(key, paths):
            value.copy_(source_state[key])


def prepare_target(target: TransferNet, source_state: Mapping[str, torch.Tensor] | None, n: int,
                   frozen: bool, bn_eval: bool) -> TransferNet:
    """Turn a freshly initialised network into a selffer/transfer/random target network.

    ``source_state=None`` leaves the first n blocks at their random init (the
    paper's random-filter control).
    """
    if source_state is not None:
        copy_blocks(target, source_state, n)
    if frozen:
        target.freeze_prefix(n, eval_mode=bn_eval)
    return target


# ViT's token and position tables (torchvision's names, then timm's)
NO_DECAY_SUFFIXES = (".bias", "class_token", "pos_embedding", "cls_token", "reg_token", "dist_token", "pos_embed")


def _is_no_decay(name: str, param: nn.Parameter) -> bool:
    """Biases, normalisation parameters (1-d tensors) and a transformer's learned tokens and
    position embeddings, which weight decay would pull towards zero."""
    return param.ndim <= 1 or name.endswith(NO_DECAY_SUFFIXES)


def parameter_groups(model: TransferNet, copied: int, lr: float, weight_decay: float,
                     copied_lr_scale: float = 1.0, bias_lr_scale: float = 1.0,
                     bias_weight_decay: bool = False) -> list[dict]:
    """Optimizer groups for the trainable parameters only.

    Copied (fine-tuned) blocks get ``lr * copied_lr_scale``; biases get
    ``bias_lr_scale`` (Caffe's ``lr_mult: 2``) and, like the other no-decay parameters,
    no weight decay unless asked.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    copied_paths = model.prefix_paths(copied)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (under(name, copied_paths), _is_no_decay(name, param))
        groups.setdefault(key, []).append(param)
    return [{"params": params,
             "lr": lr * (copied_lr_scale if is_copied else 1.0) * (bias_lr_scale if is_bias else 1.0),
             "weight_decay": weight_decay if (not is_bias or bias_weight_decay) else 0.0}
            for (is_copied, is_bias), params in groups.items()]
