"""Vision Transformer (Dosovitskiy et al. 2021) from torchvision's encoder blocks.

Blocks: ``embed`` (patch projection, class token, position embedding: image -> tokens
[N, 1+P, D]), then ``encoder_1..encoder_<depth>``, one torchvision ``EncoderBlock``
each. The head (final LayerNorm, class token, Linear) is never transferred.
Parameter shapes and init are torchvision's ``VisionTransformer``'s, drawn in the same
order: seeded, the same settings give torchvision's network exactly.
"""
from __future__ import annotations

import math
import re

import torch
from omegaconf import DictConfig
from torch import nn

from benchmark.errors import UserError
from benchmark.models.net import ChainNet
from benchmark.models.pretrained import TorchvisionWeights
from benchmark.models.registry import register

LAYER_NORM_EPS = 1e-6  # torchvision's ViT norm layer
POS_EMBEDDING_STD = 0.02
# torchvision's ViT checkpoints from before its MLPBlock became an MLP name its two
# linear layers linear_1/linear_2 (torchvision renames them when loading, as we do here)
LEGACY_MLP_KEYS = {"mlp.linear_1.": "mlp.0.", "mlp.linear_2.": "mlp.3."}


class PatchEmbedding(nn.Module):
    """Image -> tokens: torchvision's ``conv_proj``, ``class_token`` and (its encoder's)
    ``pos_embedding`` and dropout."""

    def __init__(self, image_size: int, patch_size: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        tokens = 1 + (image_size // patch_size) ** 2
        self.pos_embedding = nn.Parameter(torch.empty(1, tokens, hidden_dim).normal_(std=POS_EMBEDDING_STD))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.conv_proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), patches], dim=1)
        return self.dropout(tokens + self.pos_embedding)


class ClassToken(nn.Module):
    """Tokens [N, T, D] -> the class token's features [N, D]."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, 0]


def _check(cfg: DictConfig, image_size: int) -> None:
    if image_size % cfg.patch_size:
        raise UserError(f"model={cfg.name} cuts images into {cfg.patch_size} px patches but the dataset "
                        f"gives {image_size} px, not a multiple; set model.patch_size to a divisor of "
                        f"{image_size}")
    if cfg.hidden_dim % cfg.num_heads:
        raise UserError(f"model.hidden_dim={cfg.hidden_dim} does not split into model.num_heads="
                        f"{cfg.num_heads} heads; make hidden_dim a multiple of num_heads")


def _init(net: ChainNet) -> None:
    """torchvision's last init steps, after every module exists: a truncated normal
    patch projection and a zero classifier."""
    conv = net.blocks["embed"].conv_proj
    fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    nn.init.trunc_normal_(conv.weight, std=math.sqrt(1 / fan_in))
    nn.init.zeros_(conv.bias)
    nn.init.zeros_(net.head[-1].weight)
    nn.init.zeros_(net.head[-1].bias)


def torchvision_key(key: str, cfg: DictConfig) -> str | None:
    """torchvision's VisionTransformer state-dict key -> ours (final norm and classifier dropped;
    ``cfg`` is unused: a ViT's keys do not depend on its settings)."""
    if key.startswith(("heads.", "encoder.ln.")):
        return None
    if key == "class_token" or key.startswith("conv_proj."):
        return f"blocks.embed.{key}"
    if key == "encoder.pos_embedding":
        return "blocks.embed.pos_embedding"
    match = re.fullmatch(r"encoder\.layers\.encoder_layer_(\d+)\.(.+)", key)
    if match is None:
        return key
    rest = match[2]
    for legacy, current in LEGACY_MLP_KEYS.items():
        if rest.startswith(legacy):
            rest = current + rest[len(legacy):]
    return f"blocks.encoder_{int(match[1]) + 1}.{rest}"


@register("vit", TorchvisionWeights(lambda cfg: None, torchvision_key))
@register("vit_b16", TorchvisionWeights(lambda cfg: "vit_b_16", torchvision_key))
def vit(cfg: DictConfig, num_classes: int, image_size: int) -> ChainNet:
    from torchvision.models.vision_transformer import EncoderBlock  # slow to import; only ViTs need it

    _check(cfg, image_size)
    blocks: dict[str, nn.Module] = {"embed": PatchEmbedding(image_size, cfg.patch_size, cfg.hidden_dim,
                                                            cfg.dropout)}
    for i in range(1, cfg.depth + 1):
        blocks[f"encoder_{i}"] = EncoderBlock(cfg.num_heads, cfg.hidden_dim, cfg.mlp_dim, cfg.dropout,
                                              cfg.attention_dropout)
    head = nn.Sequential(nn.LayerNorm(cfg.hidden_dim, eps=LAYER_NORM_EPS), ClassToken(),
                         nn.Linear(cfg.hidden_dim, num_classes))
    net = ChainNet(blocks, head)
    _init(net)
    return net
