"""Architectures by name; each builds a :class:`TransferNet` of named transferable blocks.

Importing this package imports every module in it, so each architecture's
``@register`` runs (see :mod:`benchmark.models.registry`).
"""
from __future__ import annotations

import importlib
import pkgutil

from benchmark.models.net import TransferNet
from benchmark.models.pretrained import pretrained_state, to_our_layout
from benchmark.models.registry import block_names, build_model, model_blocks, register

__all__ = ["TransferNet", "block_names", "build_model", "model_blocks", "pretrained_state", "register",
           "to_our_layout"]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
