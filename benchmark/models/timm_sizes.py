"""timm models built for the run's image size.

A timm model whose ``pretrained_cfg`` has a ``fixed_input_size`` (ViT, DeiT, Swin, MLP-Mixer,
...) is created for the run's image size with timm's own ``img_size=`` (and timm resamples its
pretrained position embeddings when it loads them); where its patches do not divide that size
and the model pads by itself (timm's ``dynamic_img_pad``), it is created for the next multiple
of its patch and pads. Every timm model is tried on one image of the run's size (on the meta
device: no memory, no compute) before it is used: one that cannot take the size is one error
naming the nearest sizes it takes and the key to change, never a traceback mid-run.
"""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from benchmark.errors import UserError

log = logging.getLogger(__name__)
SIZE_KEYS = "the dataset's image size (dataset.image_size; dataset.params.image_size for the synthetic images)"
SEARCH_STEPS = (8, 14, 16, 32)  # the sides of the nearest sizes searched: multiples of the usual patch/stride
SEARCH_TRIES = 12               # at most this many sizes tried when one is refused


def fixed_input_size(arch: str) -> bool:
    """Whether timm says ``arch`` takes only the input size it is created for."""
    from timm.models import get_pretrained_cfg

    pretrained_cfg = get_pretrained_cfg(arch)
    return bool(pretrained_cfg and getattr(pretrained_cfg, "fixed_input_size", False))


def native_size(arch: str) -> int:
    """The image side timm creates ``arch`` for by default (its pretrained weights' input size)."""
    from timm.models import get_pretrained_cfg

    pretrained_cfg = get_pretrained_cfg(arch)
    return int(pretrained_cfg.input_size[-1]) if pretrained_cfg and pretrained_cfg.input_size else 224


def sized_kwargs(arch: str, kwargs: dict[str, Any], image_size: int) -> dict[str, Any]:
    """``kwargs`` plus what makes timm create ``arch`` for ``image_size`` px inputs; one
    :class:`UserError` naming the sizes it takes when it takes none of that size."""
    options = [kwargs]
    if fixed_input_size(arch) and "img_size" not in kwargs:
        padded = _padded(arch, kwargs, image_size)
        options = [{**kwargs, "img_size": image_size}, *([padded] if padded else [])]
    reasons = [_refusal(arch, option, image_size) for option in options]
    for option, reason in zip(options, reasons):
        if reason is None:
            _log_sizing(arch, option, image_size)
            return option
    below, above = _nearest_taken(arch, kwargs, image_size)
    takes = " or ".join(f"{s} px" for s in (below, above) if s) or f"its own {native_size(arch)} px"
    raise UserError(f"timm's {arch} cannot take {image_size} px images ({reasons[0]}); it takes {takes}: "
                    f"set {SIZE_KEYS} to one of them")


def _padded(arch: str, kwargs: dict[str, Any], image_size: int) -> dict[str, Any] | None:
    """Creation for the next multiple of the patch, padding the images (timm's dynamic_img_pad),
    where the model has patches that do not divide ``image_size``."""
    patch = _patch_size(_meta_model(arch, {**kwargs, "img_size": image_size}))
    if patch is None or image_size % patch == 0:
        return None
    return {**kwargs, "img_size": -(-image_size // patch) * patch, "dynamic_img_pad": True, "dynamic_img_size": True}


def _log_sizing(arch: str, kwargs: dict[str, Any], image_size: int) -> None:
    if kwargs.get("dynamic_img_pad"):
        log.info("timm's %s is created for %d px inputs (timm's img_size=) and pads the %d px images to them "
                 "(dynamic_img_pad: its patches do not divide %d)", arch, kwargs["img_size"], image_size, image_size)
    elif "img_size" in kwargs and kwargs["img_size"] != native_size(arch):
        log.info("timm's %s is created for %d px inputs (timm's img_size=; its own size is %d px)",
                 arch, kwargs["img_size"], native_size(arch))


def _meta_model(arch: str, kwargs: dict[str, Any]) -> nn.Module | None:
    import timm

    try:
        with torch.device("meta"):
            return timm.create_model(arch, pretrained=False, **kwargs)
    except Exception:  # noqa: BLE001 (settings it does not take: the real build reports them)
        return None


def _patch_size(model: nn.Module | None) -> int | None:
    """The side of the model's first patch embedding (timm's PatchEmbed), if it has one."""
    embed = next((m for m in (model.modules() if model else ()) if _is_patch_embed(m)), None)
    return None if embed is None else int(embed.patch_size[0])


def _is_patch_embed(module: nn.Module) -> bool:
    from timm.layers import PatchEmbed

    return isinstance(module, PatchEmbed) and getattr(module, "img_size", None) is not None


def _refusal(arch: str, kwargs: dict[str, Any], image_size: int) -> str | None:
    """Why ``arch`` created with ``kwargs`` cannot take ``image_size`` px images; None when it can
    (one image through its forward on the meta device, eval mode)."""
    model = _meta_model(arch, kwargs)
    if model is None:
        return None if "img_size" not in kwargs else f"timm does not create it with img_size={kwargs['img_size']}"
    patch = _patch_size(model)
    if patch and image_size % patch and not kwargs.get("dynamic_img_pad"):
        return f"its {patch} px patches do not divide {image_size} px"
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size, device="meta"))
    except Exception as error:  # noqa: BLE001 (any failure of the forward at this size)
        message = str(error).strip().splitlines()[0][:200] if str(error).strip() else "no message"
        return None if _meta_only(error) else f"its forward fails at this size: {type(error).__name__}: {message}"
    return None


def _meta_only(error: Exception) -> bool:
    """An operation the meta device cannot run (data-dependent), not a size the model refuses."""
    return isinstance(error, NotImplementedError) or "meta" in str(error).lower()


def _nearest_taken(arch: str, kwargs: dict[str, Any], image_size: int) -> tuple[int | None, int | None]:
    """The nearest sizes below and above ``image_size`` that ``arch`` takes, among multiples of
    the usual patch and stride sides (at most SEARCH_TRIES tried, nearest first)."""
    candidates = sorted({k * step for step in SEARCH_STEPS for k in range(1, 2 * native_size(arch) // step + 1)}
                        - {image_size}, key=lambda s: abs(s - image_size))
    below = above = None
    for size in candidates[:SEARCH_TRIES]:
        if (below if size < image_size else above) is not None:
            continue
        option = {**kwargs, "img_size": size} if fixed_input_size(arch) and "img_size" not in kwargs else kwargs
        if _refusal(arch, option, size) is None:
            below, above = (size, above) if size < image_size else (below, size)
    return below, above
