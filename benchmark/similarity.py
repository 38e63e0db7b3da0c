"""Layer similarity: linear CKA between the block outputs of two networks.

CKA (Kornblith et al. 2019) is estimated as in Nguyen, Raghu and Kornblith 2021 ("Do wide
and deep networks learn the same things?"): the unbiased HSIC estimator (Song et al. 2012)
of every minibatch is summed, and CKA(X, Y) = sum HSIC(K, L) / sqrt(sum HSIC(K, K) * sum
HSIC(L, L)). Memory is one b x b Gram matrix per block, whatever the number of images; the
sums are float64 on the run's device.

The images are a fixed seeded subset of the target half's held-out images, the same for
every network of a seed, so that a frozen copied block scores exactly 1 against its source.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from benchmark.data.batches import Normalizer, batches
from benchmark.data.images import ImageSet
from benchmark.models import TransferNet
from benchmark.schema.analysis import MIN_BATCH

log = logging.getLogger(__name__)



def features(x: torch.Tensor, pool: str) -> torch.Tensor:
    """One row per image, float64, centred over the batch. ``pool=mean`` averages conv maps
    over space ([N, C, H, W] -> [N, C]) and token sequences over tokens ([N, T, D] -> [N, D])."""
    if pool == "mean" and x.ndim > 2:
        x = x.mean(dim=tuple(range(2, x.ndim)) if x.ndim == 4 else 1)
    rows = x.flatten(1).double()
    return rows - rows.mean(0, keepdim=True)


def gram(x: torch.Tensor, pool: str) -> torch.Tensor:
    """The linear kernel of a batch of block outputs, with its diagonal zeroed (as the unbiased
    estimator uses it)."""
    rows = features(x, pool)
    return (rows @ rows.T).fill_diagonal_(0)


def unbiased_hsic(ks: torch.Tensor, ls: torch.Tensor) -> torch.Tensor:
    """HSIC_1 (Song et al. 2012) between every Gram of ``ks`` [P, n, n] and every Gram of
    ``ls`` [Q, n, n] (diagonals zeroed): a [P, Q] matrix."""
    n = ks.shape[-1]
    if n < MIN_BATCH:
        raise ValueError(f"a batch of {n} images is too small for the unbiased HSIC estimator; "
                         f"it needs at least {MIN_BATCH}")
    trace = ks.flatten(1) @ ls.flatten(1).T
    k_rows, l_rows = ks.sum(-1), ls.sum(-1)
    k_sum, l_sum = k_rows.sum(-1), l_rows.sum(-1)
    middle = torch.outer(k_sum, l_sum) / ((n - 1) * (n - 2))
    last = (k_rows @ l_rows.T) * (2 / (n - 2))
    return (trace + middle - last) / (n * (n - 3))


class StreamingCKA:
    """Linear CKA between each of P representations X_i and each of Q representations Y_j,
    accumulated over minibatches of the same images in the same order."""

    def __init__(self, p: int, q: int, device: torch.device) -> None:
        zeros = lambda *shape: torch.zeros(*shape, dtype=torch.float64, device=device)  # noqa: E731
        self.xy, self.xx, self.yy = zeros(p, q), zeros(p), zeros(q)
        self.x_varies = torch.zeros(p, dtype=torch.bool, device=device)
        self.y_varies = torch.zeros(q, dtype=torch.bool, device=device)
        self.images = 0

    def update(self, kx: torch.Tensor, ky: torch.Tensor) -> None:
        """Add one minibatch, given as the Grams (:func:`gram`) of its X_i [P, n, n] and Y_j [Q, n, n]."""
        self.xy += unbiased_hsic(kx, ky)
        self.xx += unbiased_hsic(kx, kx).diagonal()
        self.yy += unbiased_hsic(ky, ky).diagonal()
        self.x_varies |= kx.flatten(1).ne(0).any(1)
        self.y_varies |= ky.flatten(1).ne(0).any(1)
        self.images += kx.shape[-1]

    def result(self, x_names: list[str], y_names: list[str]) -> list[list[float]]:
        """CKA[i][j]; ValueError naming the representation when one is constant (CKA undefined)."""
        for names, varies, hsic in ((x_names, self.x_varies, self.xx), (y_names, self.y_varies, self.yy)):
            for name, vary, value in zip(names, varies.tolist(), hsic.tolist()):
                if not vary:
                    raise ValueError(f"{name} is constant on all {self.images} images: its CKA is undefined")
                if value <= 0:
                    raise ValueError(f"the HSIC estimate of {name} is {value:.3g} <= 0 on {self.images} "
                                     "images: too few images to estimate its CKA; use more")
        cka = self.xy / torch.sqrt(torch.outer(self.xx, self.yy))
        return cka.tolist()


def cka(x: torch.Tensor, y: torch.Tensor, batch_size: int, pool: str = "flatten") -> float:
    """Minibatch linear CKA between two representations of the same images ([N, ...] each)."""
    acc = StreamingCKA(1, 1, x.device)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        acc.update(gram(xb, pool)[None], gram(yb, pool)[None])
    return acc.result(["X"], ["Y"])[0][0]


@dataclass(frozen=True)
class Probe:
    """What both networks see: the images, their normalisation and device, and how the block
    outputs are pooled and batched (near-equal minibatches of at least ``batch_size`` images,
    or one of them all when there are fewer)."""

    images: ImageSet
    normalize: Normalizer
    device: torch.device
    pool: str
    batch_size: int

    @classmethod
    def from_config(cls, held_out: ImageSet, cfg: DictConfig, seed: int, normalize: Normalizer,
                    device: torch.device) -> "Probe":
        """``cfg.images`` held-out images (all when there are fewer), drawn by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(held_out), generator=generator)[:cfg.images].sort().values
        index = index.to(held_out.labels.device)
        return cls(held_out.subset(index, held_out.labels[index]), normalize, device, cfg.pool,
                   cfg.batch_size)

    def grams(self, model: TransferNet) -> Iterator[torch.Tensor]:
        """Per minibatch, the Grams of every block's outputs [L, b, b] (float32 forward).
        Call it under ``torch.no_grad()``: a generator must not hold a grad-mode context, which
        two interleaved generators would leave switched off."""
        model.eval()
        chunks = torch.arange(len(self.images)).tensor_split(max(1, len(self.images) // self.batch_size))
        for index in chunks:
            index = index.to(self.images.labels.device)
            part = self.images.subset(index, self.images.labels[index])
            x, _ = next(batches(part, len(part), self.normalize, self.device))
            out = []
            for block in model.blocks.values():
                x = block(x)
                out.append(gram(x, self.pool))
            yield torch.stack(out)

    def describe(self) -> dict:
        return {"images": len(self.images), "pool": self.pool, "batch_size": self.batch_size}


@torch.no_grad()
def block_cka(x_model: TransferNet, y_model: TransferNet, probe: Probe,
              names: tuple[str, str] = ("the first network", "the second network")) -> list[list[float]]:
    """CKA between every block of ``x_model`` (rows) and every block of ``y_model`` (columns);
    ``names`` name the networks in errors."""
    acc = StreamingCKA(x_model.num_transferable, y_model.num_transferable, probe.device)
    for kx, ky in zip(probe.grams(x_model), probe.grams(y_model)):
        acc.update(kx, ky)
    return acc.result([f"block {b} of {names[0]}" for b in x_model.block_names],
                      [f"block {b} of {names[1]}" for b in y_model.block_names])


def base_vs_base(target_base: TransferNet, other_base: TransferNet, probe: Probe) -> dict:
    """The ``similarity`` entry of a base run: ``base_vs_base[i][j]`` = CKA(block i of the target
    half's base, block j of the other half's)."""
    names = ("the target half's base", "the other half's base")
    return _timed(probe, "base_vs_base", lambda: block_cka(target_base, other_base, probe, names))


def vs_source(target: TransferNet, source: TransferNet, probe: Probe) -> dict:
    """The ``similarity`` entry of a copying run: ``vs_source[i]`` = CKA(block i of the trained
    network, block i of its source); exactly 1 for a frozen copied block."""
    return _timed(probe, "vs_source",
                  lambda: _diagonal(block_cka(target, source, probe, ("the trained network", "its source"))))


def _diagonal(matrix: list[list[float]]) -> list[float]:
    return [row[i] for i, row in enumerate(matrix)]


def _timed(probe: Probe, key: str, compute) -> dict:
    """``compute()`` under ``key`` with the probe's settings and the seconds it took. A constant
    representation becomes an ``error`` entry (and a warning), never NaN: the run stays ok."""
    start = time.time()
    entry = probe.describe()
    try:
        entry[key] = compute()
    except ValueError as error:
        log.warning("similarity %s not measured: %s", key, error)
        entry["error"] = str(error)
    entry["seconds"] = round(time.time() - start, 3)
    log.info("similarity %s: %d images in %.2f s", key, len(probe.images), entry["seconds"])
    return entry
