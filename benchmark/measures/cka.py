"""Linear CKA between the block outputs of two networks: the first per-block measure.

CKA (Kornblith et al. 2019) is estimated as in Nguyen, Raghu and Kornblith 2021 ("Do wide
and deep networks learn the same things?"): the unbiased HSIC estimator (Song et al. 2012)
of every minibatch is summed, and CKA(X, Y) = sum HSIC(K, L) / sqrt(sum HSIC(K, K) * sum
HSIC(L, L)). Memory is one b x b Gram matrix per block, whatever the number of images; the
sums are float64 on the run's device.

A base run measures CKA(block i of its base, block j of the other half's base), an L x L
matrix; a copying run CKA(block i of the trained network, block i of its source), exactly 1
for a frozen copied block. Its settings are ``analysis.similarity`` and its entries
``similarity`` in result.json and summary.json, the names they have had since CKA was added.

Its report across seeds (summary.json's ``similarity``, similarity.png/.pdf, the W&B objects)
is the analysis' (benchmark/analysis/cka_report.py), found there by its record key.
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from benchmark.measures.measure import BASE_VS_BASE, Accumulator, PairedMeasure, register
from benchmark.measures.sample import HeldOutSample, Reducer
from benchmark.schema.analysis import MIN_BATCH

CHANCE_SEED = 0  # the permutations of the chance level: the same for every run


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


class _PairedCKA:
    """CKA of every block of x with every block of y (base vs base), or of block i with block i
    (a network vs its source), accumulated over the sample's minibatches; and its chance level:
    the same statistic with y's images shuffled within each minibatch (a seeded permutation), so
    that pairs no longer show the same image. A CKA near its chance level says nothing."""

    def __init__(self, comparison: str, x_names: list[str], y_names: list[str], device: torch.device):
        self.comparison = comparison
        self.names = (x_names, y_names)
        self.acc = StreamingCKA(len(x_names), len(y_names), device)
        self.chance = StreamingCKA(len(x_names), len(y_names), device)
        self.generator = torch.Generator().manual_seed(CHANCE_SEED)

    def update(self, x: list[torch.Tensor], y: list[torch.Tensor]) -> None:
        kx, ky = torch.stack(x), torch.stack(y)
        self.acc.update(kx, ky)
        order = torch.randperm(ky.shape[-1], generator=self.generator).to(ky.device)
        self.chance.update(kx, ky[:, order][:, :, order])

    def result(self) -> dict[str, list]:
        return {self.comparison: self._shaped(self.acc.result(*self.names)),
                "chance": self._shaped(self.chance.result(*self.names))}

    def _shaped(self, matrix: list[list[float]]) -> list[list[float]] | list[float]:
        return matrix if self.comparison == BASE_VS_BASE else [row[i] for i, row in enumerate(matrix)]


class CKA(PairedMeasure):
    """Linear CKA per block; its entries keep the names CKA's results have had since it was added."""

    name = "cka"
    record_key = "similarity"
    settings_key = "similarity"

    def describe(self, settings: DictConfig, sample: HeldOutSample) -> dict:
        return {"images": len(sample), "pool": settings.pool, "batch_size": sample.batch_size}

    def reducer(self, settings: DictConfig) -> Reducer:
        return lambda output: gram(output, settings.pool)

    def accumulator(self, comparison: str, settings: DictConfig, x_names: list[str],
                    y_names: list[str], device: torch.device) -> Accumulator:
        return _PairedCKA(comparison, x_names, y_names, device)


register(CKA())
