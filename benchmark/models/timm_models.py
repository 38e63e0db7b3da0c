"""Any timm architecture by name: ``model=timm model.arch=<name>``.

Blocks come from timm's own parameter grouping (``group_matcher``, as timm's layer-wise
learning-rate decay uses it): ``granularity=coarse`` gives the stem and each stage,
``fine`` every block; what timm groups after the last block with it (a final norm,
EfficientNet's conv_head) stays in that block, and the classifier with whatever timm leaves
ungrouped (a pre-logits norm, an attention pool) is the head. ``model.blocks=[...]`` lists the
blocks by module name instead. Pretrained weights: timm's tags (``source.weights=a1_in1k``) or
Hugging Face hub ids (``source.weights=hf-hub:timm/resnet50.a1_in1k``), with the preprocessing of
their ``pretrained_cfg``.
"""
from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmark.preprocessing import Preprocessing
from benchmark.errors import UserError
from benchmark.models.net import under
from benchmark.models.pretrained import State
from benchmark.models.registry import register
from benchmark.models.timm_sizes import native_size, sized_kwargs
from benchmark.models.zoo import NET, Partition, ZooNet, block_name, check_partition, covering_paths, explicit_partition

log = logging.getLogger(__name__)
HF_HUB = "hf-hub:"
HF_WEIGHTS_FILE = "model.safetensors"


def from_pretrained_cfg(cfg: Any, origin: str) -> Preprocessing:
    """The preprocessing a timm ``pretrained_cfg`` (object or dict) describes."""
    get = cfg.get if isinstance(cfg, Mapping) else lambda key: getattr(cfg, key, None)
    size = get("input_size")
    return Preprocessing(tuple(get("mean")), tuple(get("std")), origin, size[-1] if size else None,
                         get("interpolation"), get("crop_pct"))


class TimmWeights:
    """timm's pretrained tags and Hugging Face hub ids."""

    def state(self, cfg: DictConfig, name: str, image_size: int) -> State:
        import timm

        full = self._full_name(cfg, name)
        kwargs = sized_kwargs(cfg.arch, _kwargs(cfg), image_size)
        try:
            net = timm.create_model(full, pretrained=True, **kwargs)
        except UserError:
            raise
        except Exception as error:  # the hub's and urllib's errors, whatever the network did
            raise UserError(f"cannot fetch timm's weights {full} ({type(error).__name__}: {error}); "
                            f"{self._where(cfg, name)}, or give a weights file as source.weights=PATH") from None
        if kwargs.get("img_size", native_size(cfg.arch)) != native_size(cfg.arch):
            log.info("timm resampled the position embeddings of the weights %s from %d px to %d px inputs",
                     full, native_size(cfg.arch), kwargs["img_size"])
        return self.to_ours(cfg, net.state_dict())

    def preprocessing(self, cfg: DictConfig, name: str) -> Preprocessing:
        from timm.models import get_pretrained_cfg, load_model_config_from_hf

        full = self._full_name(cfg, name)
        if full.startswith(HF_HUB):
            try:
                pretrained_cfg = load_model_config_from_hf(full[len(HF_HUB):])[0]
            except Exception as error:  # offline, or no such repository
                raise UserError(f"cannot read the config of {full} ({type(error).__name__}); "
                                f"{self._where(cfg, name)}") from None
        else:
            pretrained_cfg = get_pretrained_cfg(full)
        return from_pretrained_cfg(pretrained_cfg, f"timm {full}")

    def to_ours(self, cfg: DictConfig, state: Mapping[str, torch.Tensor]) -> State:
        return {f"{NET}.{key}": value for key, value in state.items()}

    def _full_name(self, cfg: DictConfig, name: str) -> str:
        if name.startswith(HF_HUB):
            return name
        import timm

        full = name if "." in name else f"{cfg.arch}.{name}"
        if full not in timm.list_pretrained(f"{cfg.arch}.*"):
            tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{cfg.arch}.*")]
            raise UserError(f"source.weights={name} is neither a file nor a pretrained tag of timm's {cfg.arch}; "
                            f"use one of {', '.join(tags) or '(none: timm has no weights for it)'}, a Hugging "
                            "Face id (hf-hub:ORG/NAME) or the path of a weights file")
        return full

    def _where(self, cfg: DictConfig, name: str) -> str:
        """Which file to fetch by hand when the network is closed."""
        from timm.models import get_pretrained_cfg

        full = self._full_name(cfg, name)
        hub_id = full[len(HF_HUB):] if full.startswith(HF_HUB) else get_pretrained_cfg(full).hf_hub_id
        return (f"download https://huggingface.co/{hub_id}/resolve/main/{HF_WEIGHTS_FILE} (and its config.json, "
                "which carries the preprocessing, into the same folder)")


def _kwargs(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg.kwargs, resolve=True) if cfg.kwargs else {}


def _create(cfg: DictConfig, num_classes: int, image_size: int) -> nn.Module:
    import timm

    if not timm.is_model(cfg.arch) or "." in cfg.arch:
        close = difflib.get_close_matches(cfg.arch, timm.list_models(), n=5, cutoff=0.6)
        raise UserError(f"model.arch={cfg.arch} is not a timm architecture; "
                        + (f"did you mean {', '.join(close)}?" if close else "timm.list_models() lists them")
                        + " (pretrained tags go in source.weights)")
    kwargs = sized_kwargs(cfg.arch, _kwargs(cfg), image_size)
    return timm.create_model(cfg.arch, pretrained=False, num_classes=num_classes, **kwargs)


def classifier_paths(net: nn.Module) -> tuple[str, ...]:
    """The module names of timm's classifier (``pretrained_cfg['classifier']``)."""
    named = getattr(net, "pretrained_cfg", {}).get("classifier")
    if named:
        return (named,) if isinstance(named, str) else tuple(named)
    classifier = net.get_classifier()
    return tuple(name for name, module in net.named_modules() if module is classifier)


def timm_partition(net: nn.Module, cfg: DictConfig) -> Partition:
    """The blocks of ``net``: ``model.blocks`` when given, else timm's own grouping (its
    ``group_matcher``; for a model without one, the stages its ``feature_info`` names)."""
    how_to_fix = f"list them as model.blocks=[...] (module names of timm's {cfg.arch}, several joined by +)"
    classifier = classifier_paths(net)
    if cfg.blocks:
        return explicit_partition(net, list(cfg.blocks), classifier, how_to_fix)
    parameters = [name for name, _ in net.named_parameters()]
    if hasattr(net, "group_matcher"):
        groups = _matched_groups(net, parameters, cfg, how_to_fix)
    else:
        groups = [*_stage_groups(net, parameters, classifier, cfg, how_to_fix),
                  [name for name in parameters if under(name, classifier)]]
    in_head = [any(under(name, classifier) for name in group) for group in groups]
    head = covering_paths(parameters, [name for group, h in zip(groups, in_head) if h for name in group])
    paths = [covering_paths(parameters, group) for group, h in zip(groups, in_head) if not h]
    partition = Partition({block_name(p, i == 0): p for i, p in enumerate(paths)}, head or classifier)
    check_partition(net, partition, how_to_fix)
    return partition


def _matched_groups(net: nn.Module, parameters: list[str], cfg: DictConfig, how_to_fix: str) -> list[list[str]]:
    """The parameters grouped by timm's ``group_matcher`` (as its layer-wise lr decay does)."""
    from timm.models._manipulate import group_with_matcher

    try:
        matcher = net.group_matcher(coarse=cfg.granularity == "coarse")
    except (AssertionError, NotImplementedError):  # e.g. RDNet groups only finely
        raise UserError(f"timm's {cfg.arch} has no {cfg.granularity} block grouping; use model.granularity="
                        f"{'fine' if cfg.granularity == 'coarse' else 'coarse'}, or {how_to_fix}") from None
    return list(group_with_matcher(((name, None) for name in parameters), matcher).values())


def _stage_groups(net: nn.Module, parameters: list[str], classifier: tuple[str, ...], cfg: DictConfig,
                  how_to_fix: str) -> list[list[str]]:
    """The parameters outside the classifier cut, in registration order, after each stage timm's
    ``feature_info`` names: what comes before the first stage is the stem, what follows the last
    (a final norm) stays with it."""
    stages = [info["module"] for info in getattr(net, "feature_info", None) or []]
    if cfg.granularity != "coarse" or not stages:
        raise UserError(f"timm's {cfg.arch} has no {cfg.granularity} block grouping (no group_matcher"
                        f"{'' if stages else ', no feature_info'}); "
                        + ("use model.granularity=coarse (its stages), or " if stages else "") + how_to_fix)
    body = [name for name in parameters if not under(name, classifier)]
    owned = [[i for i, name in enumerate(body) if under(name, (stage,))] for stage in stages]
    cuts = sorted({max(indices) + 1 for indices in owned if indices} | {min(next(i for i in owned if i))})
    cuts[-1] = len(body)
    return [body[start:end] for start, end in zip([0, *cuts], cuts) if end > start]


@register("timm", TimmWeights())
def timm_model(cfg: DictConfig, num_classes: int, image_size: int) -> ZooNet:
    net = _create(cfg, num_classes, image_size)
    return ZooNet(net, timm_partition(net, cfg))
