"""The embedded default dataset: procedurally generated, deterministic RGB images.

The generator is built so that transferability means something on it:

* **low level, shared by all classes**: every image is made of the same kind of
  coloured strokes (edges, bars, arcs, blobs) over a shared background of colour
  gradients, clutter and pixel noise;
* **mid level, specific to a family**: each family draws its *parts* (small
  motifs) with its own stroke vocabulary (straight bars, diagonal lines, rings or
  dotted blobs) and its own stroke width, from a colour palette all share;
* **high level, specific to a class**: a class is a spatial layout of parts of its
  family in a 3 x 3 grid of slots; sibling classes share parts and differ in
  which part sits where.

Every image also carries distractor parts from random families at random places,
so that a class cannot be told by which parts are present, only by their layout.
A random class split gives both halves every family (similar tasks); a family
split gives them disjoint part vocabularies (dissimilar tasks).
"""
from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data.images import ImageTensors, LabelledImages
from benchmark.schema.dataset import SyntheticSpec

STYLES = ("bars", "diagonals", "rings", "blobs")


# ---------------------------------------------------------------- parts (mid level)

def _stroke_mask(style: str, size: int, width: float, rng: np.random.Generator) -> np.ndarray:
    """One stroke of a family's vocabulary as a soft mask on a ``size`` x ``size`` grid."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if style == "rings":
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        radius = rng.uniform(size * 0.2, size * 0.45)
        distance = np.abs(np.hypot(yy - cy, xx - cx) - radius)
    elif style == "blobs":
        cy, cx = rng.uniform(size * 0.2, size * 0.8, 2)
        distance = np.hypot(yy - cy, xx - cx) - width
    else:
        base = 0.0 if style == "bars" else np.pi / 4
        angle = base + rng.integers(0, 2) * np.pi / 2 + rng.normal(0, 0.08)
        offset = rng.uniform(-size * 0.3, size * 0.3)
        c = size / 2
        distance = np.abs((xx - c) * np.cos(angle) + (yy - c) * np.sin(angle) - offset)
    return np.clip(width - distance + 0.5, 0.0, 1.0)


def make_palette(rng: np.random.Generator, size: int = 8) -> list[np.ndarray]:
    """Colours shared by every family: colour is low-level, hence general."""
    return [np.array(colorsys.hsv_to_rgb(h, rng.uniform(0.5, 1.0), rng.uniform(0.6, 1.0)))
            for h in np.linspace(0, 1, size, endpoint=False) + rng.uniform(0, 1 / size)]


def _make_part(style: str, purity: float, width: float, palette: list[np.ndarray], size: int,
               rng: np.random.Generator) -> np.ndarray:
    """A part: 2-3 strokes, each of the family's style with probability ``purity`` (else any
    style, so pixel-level statistics stay shared), as RGBA ``[size, size, 4]``."""
    rgba = np.zeros((size, size, 4), dtype=np.float32)
    for _ in range(rng.integers(2, 4)):
        stroke = style if rng.random() < purity else STYLES[rng.integers(len(STYLES))]
        mask = _stroke_mask(stroke, size, width, rng)
        colour = palette[rng.integers(len(palette))]
        rgba[..., :3] = rgba[..., :3] * (1 - mask[..., None]) + colour * mask[..., None]
        rgba[..., 3] = np.maximum(rgba[..., 3], mask)
    return rgba


def make_parts(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """All parts, ``[families, parts_per_family, size, size, 4]``."""
    parts = []
    palette = make_palette(rng)
    for family in range(spec.num_families):
        style = STYLES[family % len(STYLES)]
        width = rng.uniform(0.6, 1.4)
        parts.append([_make_part(style, spec.style_purity, width, palette, spec.patch_size, rng)
                      for _ in range(spec.parts_per_family)])
    return np.asarray(parts, dtype=np.float32)


# ---------------------------------------------------------------- classes (high level)

def make_layouts(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Per class, ``parts_per_class`` (slot, part) pairs: ``int [classes, parts_per_class, 2]``.

    Layouts are unique within a family, so every class is learnable in principle.
    """
    layouts = np.zeros((spec.num_classes, spec.parts_per_class, 2), dtype=np.int64)
    for family in range(spec.num_families):
        seen: set[bytes] = set()
        c = family * spec.classes_per_family
        while c < (family + 1) * spec.classes_per_family:
            slots = rng.choice(9, spec.parts_per_class, replace=False)
            parts = rng.integers(0, spec.parts_per_family, spec.parts_per_class)
            layout = np.stack([slots, parts], axis=1)
            key = layout[np.argsort(slots)].tobytes()
            if key not in seen:
                seen.add(key)
                layouts[c] = layout
                c += 1
    return layouts


# ---------------------------------------------------------------- rendering (low level)

def _paste(canvas: np.ndarray, patches: np.ndarray, top: np.ndarray, left: np.ndarray,
           visible: np.ndarray) -> None:
    """Alpha-blend one RGBA patch per image at (top, left), vectorised over images."""
    n, size = len(canvas), patches.shape[1]
    rows = top[:, None] + np.arange(size)[None, :]
    cols = left[:, None] + np.arange(size)[None, :]
    index = (np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :])
    alpha = patches[..., 3:] * visible[:, None, None, None]
    canvas[index] = canvas[index] * (1 - alpha) + patches[..., :3] * alpha


def _background(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Shared low-level statistics: a colour gradient in a random direction."""
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    t = (np.cos(angle)[:, None, None] * ramp[None, :, None]
         + np.sin(angle)[:, None, None] * ramp[None, None, :])
    t = (t - t.min(axis=(1, 2), keepdims=True)) / np.ptp(t, axis=(1, 2), keepdims=True).clip(1e-6)
    start, end = rng.uniform(0, 0.6, (2, n, 1, 1, 3)).astype(np.float32)
    return start + (end - start) * t[..., None]


def render(spec: SyntheticSpec, parts: np.ndarray, layouts: np.ndarray, labels: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Render one image per label; returns ``uint8 [N, 3, H, W]``."""
    n, size, patch = len(labels), spec.image_size, spec.patch_size
    canvas = _background(n, size, rng)
    flat_parts = parts.reshape(-1, patch, patch, 4)
    for _ in range(spec.distractors):
        which = rng.integers(0, len(flat_parts), n)
        top, left = rng.integers(0, size - patch + 1, (2, n))
        _paste(canvas, flat_parts[which], top, left, np.ones(n, dtype=np.float32))
    family = labels // spec.classes_per_family
    slot_origin = np.arange(3) * patch + (size - 3 * patch) // 2
    for k in range(spec.parts_per_class):
        slot, part = layouts[labels, k, 0], layouts[labels, k, 1]
        jitter = rng.integers(-spec.jitter, spec.jitter + 1, (2, n))
        top = np.clip(slot_origin[slot // 3] + jitter[0], 0, size - patch)
        left = np.clip(slot_origin[slot % 3] + jitter[1], 0, size - patch)
        visible = (rng.random(n) >= spec.part_dropout).astype(np.float32)
        _paste(canvas, parts[family, part], top, left, visible)
    gain = rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32)
    canvas = canvas * gain + rng.normal(0, spec.noise, canvas.shape).astype(np.float32)
    pixels = np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)
    return pixels.transpose(0, 3, 1, 2)


def _sample(spec: SyntheticSpec, parts: np.ndarray, layouts: np.ndarray, per_class: int,
            rng: np.random.Generator) -> ImageTensors:
    labels = np.repeat(np.arange(spec.num_classes), per_class)
    images = render(spec, parts, layouts, labels, rng)
    return ImageTensors(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels))


def generate(spec: SyntheticSpec) -> LabelledImages:
    """The whole dataset, a pure function of ``spec`` (``world_seed`` included)."""
    rng = np.random.default_rng(spec.world_seed)
    parts = make_parts(spec, rng)
    layouts = make_layouts(spec, rng)
    train = _sample(spec, parts, layouts, spec.train_per_class, rng)
    val = _sample(spec, parts, layouts, spec.val_per_class, rng)
    families = [f"{STYLES[f % len(STYLES)]}{f // len(STYLES) or ''}"
                for f in range(spec.num_families) for _ in range(spec.classes_per_family)]
    names = [f"{families[c]}_{c % spec.classes_per_family}" for c in range(spec.num_classes)]
    return LabelledImages("synthetic", names, families, train, val,
                          mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


@lru_cache(maxsize=2)
def _generated(spec: SyntheticSpec) -> LabelledImages:
    """Runs in one process (tests, the bench) generate each dataset once."""
    return generate(spec)


def load(cfg: DictConfig, root: str) -> LabelledImages:
    """The dataset ``cfg.params`` describes; ``root`` is unused (nothing is read from disk)."""
    return _generated(SyntheticSpec(**OmegaConf.to_container(cfg.params)))
