"""Architectures by name; each builds a :class:`TransferNet` of named transferable blocks.

Importing this package imports every module in it, so each architecture's
``@register`` runs (see :mod:`benchmark.models.registry`).
"""
from __future__ import annotations

import importlib
import pkgutil

from benchmark.models.net import ChainNet, TransferNet
from benchmark.models.registry import (block_names, build_model, model_label, pretrained_state,
                                       register, to_our_layout, weights_preprocessing)

__all__ = ["ChainNet", "TransferNet", "block_names", "build_model", "model_label",
           "pretrained_state", "register", "to_our_layout", "weights_preprocessing"]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
