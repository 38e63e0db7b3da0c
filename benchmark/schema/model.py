"""Schemas of the ``model`` group (conf/model/*.yaml); the architectures are in benchmark/models/."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from benchmark.schema.keys import at_least, between, key, one_of, store

# convnet8's inits. default: PyTorch's layer init, whose scale shrinks layer by layer (BatchNorm
# restores it); kaiming: He et al. 2015's for ReLU networks, which keeps it, so the net trains
# without BatchNorm
INITS = ("default", "kaiming")


def _dropout() -> object:
    return key(between(0, 1, 0.5, open_high=True))


@dataclass
class CaffeNet:
    name: str = key()
    dropout: float = _dropout()


@dataclass
class ConvNet8(CaffeNet):
    width: int = key(at_least(1))
    fc_width: int = key(at_least(1))
    batchnorm: bool = key()
    init: str = key(one_of(INITS), older="default")


@dataclass
class ResNet:
    name: str = key()
    # Narrower than 8 channels, ResNet-18's training corrupts memory inside PyTorch 2.14's oneDNN
    # kernels on CPUs with AVX2 but no AVX-512 (AMD EPYC Zen 3: "double free or corruption", or a hang)
    width: int = key(at_least(8, "narrower ResNets crash PyTorch's oneDNN kernels on AVX2-only CPUs"))
    granularity: str = key(one_of(("stage", "block")))
    stem: str = key(one_of(("auto", "imagenet", "small")))


@dataclass
class ViT:
    name: str = key()
    patch_size: int = key(at_least(1))
    hidden_dim: int = key(at_least(1))
    depth: int = key(at_least(1))
    num_heads: int = key(at_least(1))
    mlp_dim: int = key(at_least(1))
    dropout: float = _dropout()
    attention_dropout: float = _dropout()


@dataclass
class Zoo:
    """model=timm and model=torchvision (benchmark/models/timm_models.py, torchvision_models.py)."""

    name: str = key()
    arch: str = key()
    blocks: Optional[list[str]] = key()  # module names, one entry per block (a+b: several in one)
    kwargs: dict[str, Any] = key()       # passed to the zoo's constructor (e.g. drop_path_rate)


@dataclass
class Timm(Zoo):
    granularity: str = key(one_of(("coarse", "fine")))  # timm's group_matcher: stem + stages | every block


SCHEMAS = {"caffenet": CaffeNet, "convnet8": ConvNet8, "resnet": ResNet, "vit": ViT, "timm": Timm,
           "torchvision": Zoo}
for _name, _schema in SCHEMAS.items():
    store("model", _name, _schema)
