"""timm models built for the run's image size.

A timm model whose ``pretrained_cfg`` has a ``fixed_input_size`` (ViT, DeiT, Swin, MLP-Mixer,
...) is created for the run's image size with timm's own ``img_size=`` (and timm resamples its
pretrained position embeddings when it loads them). Where its patches (timm's ``PatchEmbed``) do
not divide that size and the model pads by itself (timm's ``dynamic_img_pad``), it is created to
pad the images: a fixed-size model for the next multiple of its patch, any other (DeepSeek-ViT)
as it is. A fixed-size model that takes neither is created for the nearest larger sizes in turn
until one whose own forward takes the run's images (CrossViT, which scales the images to each of
its branches). Every timm model is tried on one image of the run's size (on the meta device: no
memory, no compute) before it is used: one that cannot take the size is one error naming the
nearest smaller size and the smallest larger size it takes and the key to change, never a
traceback mid-run.
"""
from __future__ import annotations

import functools
import json
import logging
from typing import Any

import torch
from torch import nn

from benchmark.errors import UserError

log = logging.getLogger(__name__)
SIZE_KEYS = "the dataset's image size (dataset.image_size; dataset.params.image_size for the synthetic images)"
SEARCH_STEPS = (8, 12, 14, 16, 32)  # the sides of the sizes searched: multiples of the usual patch/stride
SEARCH_TRIES = 12                   # larger creations tried, and smaller sizes searched, when a size is refused
SEARCH_TRIES_ABOVE = 64             # larger sizes searched for the smallest one taken


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
    reasons = []
    for option in (*_direct(arch, kwargs, image_size), *_created_larger(arch, kwargs, image_size)):
        reason = _refusal(arch, option, image_size, kwargs)
        if reason is None:
            _log_sizing(arch, option, image_size)
            return option
        reasons.append(reason)
    below, above = _nearest_taken(arch, kwargs, image_size)
    takes = " or ".join(f"{s} px" for s in (below, above) if s) or f"its own {native_size(arch)} px"
    raise UserError(f"timm's {arch} cannot take {image_size} px images ({reasons[0]}); it takes {takes}: "
                    f"set {SIZE_KEYS} to {'one of them' if below and above else 'it'}")


def _direct(arch: str, kwargs: dict[str, Any], image_size: int) -> list[dict[str, Any]]:
    """The creations for ``image_size`` itself: timm's img_size= for a fixed-size model (a size set
    by hand is left as given), then, where its patches do not divide the size, padding the images."""
    if "img_size" in kwargs:
        return [kwargs]
    fixed = fixed_input_size(arch)
    own = {**kwargs, "img_size": image_size} if fixed else kwargs
    patch = _patch_size(_meta_model(arch, own))
    if patch is None or image_size % patch == 0:
        return [own]
    padded_size = {"img_size": -(-image_size // patch) * patch, "dynamic_img_size": True} if fixed else {}
    return [own, {**kwargs, **padded_size, "dynamic_img_pad": True}]


def _created_larger(arch: str, kwargs: dict[str, Any], image_size: int) -> list[dict[str, Any]]:
    """A fixed-size model created for the nearest larger sizes, one after the other: taken when its
    own forward takes ``image_size`` px images (it scales or pads them itself)."""
    if "img_size" in kwargs or not fixed_input_size(arch):
        return []
    return [{**kwargs, "img_size": size} for size in _candidates(arch, image_size, larger=True)[:SEARCH_TRIES]]


def _log_sizing(arch: str, kwargs: dict[str, Any], image_size: int) -> None:
    if kwargs.get("dynamic_img_pad") and "img_size" in kwargs:
        log.info("timm's %s is created for %d px inputs (timm's img_size=) and pads the %d px images to them "
                 "(dynamic_img_pad: its patches do not divide %d)", arch, kwargs["img_size"], image_size, image_size)
    elif kwargs.get("dynamic_img_pad"):
        log.info("timm's %s pads the %d px images to a multiple of its patches (timm's dynamic_img_pad: they do not "
                 "divide %d)", arch, image_size, image_size)
    elif kwargs.get("img_size", image_size) != image_size:
        log.info("timm's %s is created for %d px inputs (timm's img_size=; it is not created for %d px) and its own "
                 "forward takes the %d px images", arch, kwargs["img_size"], image_size, image_size)
    elif "img_size" in kwargs and kwargs["img_size"] != native_size(arch):
        log.info("timm's %s is created for %d px inputs (timm's img_size=; its own size is %d px)",
                 arch, kwargs["img_size"], native_size(arch))


def _meta_model(arch: str, kwargs: dict[str, Any]) -> nn.Module | None:
    return _cached_meta_model(arch, json.dumps(kwargs, sort_keys=True, default=str))


@functools.lru_cache(maxsize=4)
def _cached_meta_model(arch: str, kwargs: str) -> nn.Module | None:
    """The model on the meta device (no storage: cached, so the size search reuses it); None when
    timm does not create it with these settings."""
    import timm

    try:
        with torch.device("meta"):
            return timm.create_model(arch, pretrained=False, **json.loads(kwargs))
    except Exception:  # noqa: BLE001 (settings it does not take: the caller says which)
        return None


def _patch_size(model: nn.Module | None) -> int | None:
    """The side of the model's first patch embedding (timm's PatchEmbed), if it has one."""
    embed = next((m for m in (model.modules() if model else ()) if _is_patch_embed(m)), None)
    return None if embed is None else int(embed.patch_size[0])


def _is_patch_embed(module: nn.Module) -> bool:
    from timm.layers import PatchEmbed

    return isinstance(module, PatchEmbed) and getattr(module, "img_size", None) is not None


def _refusal(arch: str, kwargs: dict[str, Any], image_size: int, given: dict[str, Any]) -> str | None:
    """Why ``arch`` created with ``kwargs`` cannot take ``image_size`` px images; None when it can
    (one image through its forward on the meta device, eval mode). Settings timm refuses are the
    real build's to report when they are the ``given`` ones, a refusal when they are ours."""
    model = _meta_model(arch, kwargs)
    if model is None:
        ours = ", ".join(f"{key}={value}" for key, value in kwargs.items() if key not in given or given[key] != value)
        return f"timm does not create it with {ours}" if ours else None
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


def _candidates(arch: str, image_size: int, larger: bool) -> list[int]:
    """Multiples of the usual patch and stride sides up to twice the model's own size: the larger
    ones from the nearest up, or the smaller ones from the nearest down."""
    sizes = {k * step for step in SEARCH_STEPS for k in range(1, 2 * native_size(arch) // step + 1)}
    if larger:
        return sorted(s for s in sizes if s > image_size)
    return sorted((s for s in sizes if s < image_size), reverse=True)


def _takes(arch: str, kwargs: dict[str, Any], image_size: int) -> bool:
    return any(_refusal(arch, option, image_size, kwargs) is None for option in _direct(arch, kwargs, image_size))


def _nearest_taken(arch: str, kwargs: dict[str, Any], image_size: int) -> tuple[int | None, int | None]:
    """The nearest size below ``image_size`` and the smallest above it that ``arch`` takes: among
    multiples of the usual patch and stride sides (SEARCH_TRIES below, SEARCH_TRIES_ABOVE above),
    the one above then lowered a pixel at a time while taken (a model's minimum size)."""
    smaller = _candidates(arch, image_size, larger=False)[:SEARCH_TRIES]
    below = next((size for size in smaller if _takes(arch, kwargs, size)), None)
    larger = _candidates(arch, image_size, larger=True)[:SEARCH_TRIES_ABOVE]
    above = next((size for size in larger if _takes(arch, kwargs, size)), None)
    while above is not None and above - 1 > image_size and _takes(arch, kwargs, above - 1):
        above -= 1
    return below, above
