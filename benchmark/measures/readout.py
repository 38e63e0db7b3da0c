"""Readouts: how well one block's features predict the class labels of a task.

CKA says how similar two networks' blocks are; it does not say whether a block is useful for
the target task. These three scores answer that, from features alone (one row per image, as
:func:`benchmark.measures.cka.features` makes them) and without training the network:

* :func:`linear_probe`: the accuracy of the best linear classifier on frozen features, the
  standard transfer-learning readout. Multinomial logistic regression, fitted to convergence
  with full-batch L-BFGS along its L2 path (the strongest from zero weights, each next one from
  the last solution: deterministic), its L2 strength chosen on a class-stratified split of the
  training images only.
* :func:`knn`: the weighted k-NN classifier of the DINO evaluation (Caron et al. 2021), which
  has no hyperparameter to fit and measures the local class structure of the features.
* :func:`logme`: LogME (You et al. 2021), the maximum evidence of a Bayesian linear model of
  the one-hot labels: a transferability estimate with no held-out set and no optimiser.

All three compute on the device of the tensors they are given, in float64 but for the probe's
fits: those run in float32, about 2.3x faster on CPU (the features are
standardised first, and the fit stops at a gradient of 1e-5, far above float32's rounding).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

# L-BFGS per fit: at most 100 iterations, stopping once the gradient's largest entry is below 1e-5
# (on the demo's blocks, fitted in float64 from zero weights, this gave the same top-1 as 500
# iterations to 1e-9, at a third of the time; where a fit stops at 100, its start point matters),
# or once an iteration changes the mean cross-entropy, or moves every weight, by under 1e-6, about
# ten float32 roundings of the loss: the weak L2 strengths crawl there for tens of iterations.
# Stopping them (not at 1e-9) cut the probe's time by about a sixth; on experiment=probe's 3 seeds
# 21 of 63 block top-1s moved by 1-4 of 1024 images (0.04 points on average), the curves by <= 0.001
PROBE_MAX_ITER, PROBE_TOLERANCE, PROBE_TOLERANCE_CHANGE = 100, 1e-5, 1e-6
KNN_CHUNK = 1024  # test images per similarity matrix in knn: memory is KNN_CHUNK x training images


def _rows(x: Tensor, name: str) -> Tensor:
    if x.ndim != 2:
        raise ValueError(f"{name} must be a [images, features] matrix, got shape {tuple(x.shape)}")
    return x.double()


def _labels(y: Tensor, n: int, num_classes: int, name: str) -> Tensor:
    if y.shape != (n,):
        raise ValueError(f"{name} must hold one label per image ({n}), got shape {tuple(y.shape)}")
    if n == 0:
        raise ValueError(f"{name} is empty")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"{name} must lie in [0, {num_classes}), "
                         f"got [{int(y.min())}, {int(y.max())}]")
    return y.long()


def _top1(logits: Tensor, y: Tensor) -> float:
    return logits.argmax(1).eq(y).double().mean().item()


# ----------------------------------------------------------------------------- linear probe

Standardise = Callable[[Tensor], Tensor]  # features -> standardised float32 features


def _standardiser(x: Tensor) -> Standardise:
    """Standardise features with ``x``'s per-feature mean and std (computed in ``x``'s dtype),
    then cast to float32, the dtype the fits run in."""
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-8)
    return lambda rows: ((rows - mean) / std).float()


def _weight_and_bias(parameters: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Views of softmax regression's flat parameters: the weight [features, classes], then the
    bias [classes]."""
    return parameters[:-num_classes].view(-1, num_classes), parameters[-num_classes:]


def _logits(z: Tensor, parameters: Tensor, num_classes: int) -> Tensor:
    weight, bias = _weight_and_bias(parameters, num_classes)
    return z @ weight + bias


def _fit_softmax(z: Tensor, targets: Tensor, weight_decay: float,
                 start: Tensor | None = None) -> Tensor:
    """Fit softmax regression (mean cross-entropy + weight_decay/2 ||W||^2, bias unpenalised)
    to standardised float32 features ``z`` and one-hot ``targets``, from the flat parameters
    ``start`` (zeros if None); return the fitted flat parameters. Weight and bias are views of
    one tensor, so L-BFGS updates one parameter instead of two (the same arithmetic in fewer
    calls), and the gradient is written out, so no autograd graph is built for its many
    evaluations."""
    num_classes = targets.shape[1]
    parameters = (torch.zeros((z.shape[1] + 1) * num_classes, dtype=z.dtype, device=z.device)
                  if start is None else start.clone())
    weight, bias = _weight_and_bias(parameters, num_classes)
    images = len(z)  # once: a tensor's len() is a Python call, and the closure runs thousands of times
    optimizer = torch.optim.LBFGS([parameters], lr=1, max_iter=PROBE_MAX_ITER, history_size=20,
                                  tolerance_grad=PROBE_TOLERANCE, tolerance_change=PROBE_TOLERANCE_CHANGE,
                                  line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        log_probs = (z @ weight + bias).log_softmax(1)
        residual = (log_probs.exp() - targets) / images
        weight_grad = z.T @ residual + weight_decay * weight
        parameters.grad = torch.cat((weight_grad.view(-1), residual.sum(0)))
        return -(log_probs * targets).sum() / images + weight_decay / 2 * weight.square().sum()

    optimizer.step(closure)
    return parameters


def stratified_split(y: Tensor, num_classes: int, validation_fraction: float,
                     seed: int) -> tuple[Tensor, Tensor]:
    """Indices (fit, validation): ``validation_fraction`` of each class held out (at least one
    image, and at least one left to fit), drawn with ``seed``."""
    generator, labels = torch.Generator().manual_seed(seed), y.cpu()
    fit, validation = [], []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        if len(members) < 2:
            raise ValueError(f"class {c} has {len(members)} training image(s); the linear "
                             "probe needs at least 2 per class to hold some out for choosing "
                             "the L2 strength")
        members = members[torch.randperm(len(members), generator=generator)]
        held = min(max(round(validation_fraction * len(members)), 1), len(members) - 1)
        validation.append(members[:held])
        fit.append(members[held:])
    return torch.cat(fit).to(y.device), torch.cat(validation).to(y.device)


def linear_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_classes: int,
                 weight_decays: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
                 validation_fraction: float = 0.2, seed: int = 0) -> dict:
    """Top-1 test accuracy of multinomial logistic regression on standardised features.

    The L2 strength is the one of ``weight_decays`` with the best top-1 on a seeded,
    class-stratified ``validation_fraction`` of the training images (ties go to the stronger
    one); the model is then refitted on all training images and scored on the test images.
    Returns ``{"top1", "weight_decay", "validation_top1": {str(wd): top-1}}``.
    """
    train_x, test_x = _rows(train_x, "train_x"), _rows(test_x, "test_x")
    train_y = _labels(train_y, len(train_x), num_classes, "train_y")
    test_y = _labels(test_y, len(test_x), num_classes, "test_y")
    if not weight_decays:
        raise ValueError("weight_decays is empty: give at least one L2 strength")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie in (0, 1), got {validation_fraction}")
    fit, held = stratified_split(train_y, num_classes, validation_fraction, seed)
    fit_x = train_x[fit]
    standardise = _standardiser(fit_x)  # once for every fit of the path
    z_fit, z_held = standardise(fit_x), standardise(train_x[held])
    targets = torch.nn.functional.one_hot(train_y, num_classes).float()
    scores, solutions, previous = {}, {}, None
    for wd in sorted(weight_decays, reverse=True):  # strong to weak L2, each from the last fit
        previous = _fit_softmax(z_fit, targets[fit], wd, previous)
        scores[wd] = _top1(_logits(z_held, previous, num_classes), train_y[held])
        solutions[wd] = previous
    best = max(scores, key=lambda wd: (scores[wd], wd))
    standardise = _standardiser(train_x)
    parameters = _fit_softmax(standardise(train_x), targets, best, solutions[best])
    return {"top1": _top1(_logits(standardise(test_x), parameters, num_classes), test_y),
            "weight_decay": float(best),
            "validation_top1": {str(wd): top1 for wd, top1 in scores.items()}}


# ----------------------------------------------------------------------------- k-NN

def knn(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_classes: int,
        k: int = 20, temperature: float = 0.07) -> float:
    """Top-1 accuracy of the DINO weighted k-NN classifier: each test image's k most
    cosine-similar training images vote for their class with weight exp(similarity /
    temperature); the class with the largest total wins (the lowest index on a tie)."""
    train_x, test_x = _rows(train_x, "train_x"), _rows(test_x, "test_x")
    train_y = _labels(train_y, len(train_x), num_classes, "train_y")
    test_y = _labels(test_y, len(test_x), num_classes, "test_y")
    if not 1 <= k <= len(train_x):
        raise ValueError(f"k={k} must lie between 1 and the number of training images "
                         f"({len(train_x)}); lower k")
    bank = torch.nn.functional.normalize(train_x, dim=1).T
    correct = 0
    for start in range(0, len(test_x), KNN_CHUNK):
        queries = torch.nn.functional.normalize(test_x[start:start + KNN_CHUNK], dim=1)
        similarity, neighbours = (queries @ bank).topk(k, dim=1)
        votes = torch.zeros(len(queries), num_classes, dtype=queries.dtype, device=queries.device)
        votes.scatter_add_(1, train_y[neighbours], (similarity / temperature).exp())
        correct += votes.argmax(1).eq(test_y[start:start + KNN_CHUNK]).sum().item()
    return correct / len(test_x)


# ----------------------------------------------------------------------------- LogME
# In the basis of F's thin SVD F = U diag(s) V^T: ``sigma`` [k, 1] holds s_i^2, ``x`` [k, C] is
# U^T Y and ``outside`` [C] the squared norm of each target's part outside U's columns. The
# iteration runs on beta and rho = beta / alpha (the posterior mean m depends on rho only), so
# that alpha -> infinity, the limit for features that carry nothing about a class, is rho = 0.

def _spectrum(f: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``sigma``, ``x`` and ``outside`` from the eigendecomposition of the smaller Gram matrix,
    F^T F (then U = F V diag(1/s)) or F F^T (its eigenvectors are U), as the official LogME
    does: on a block's 2000 x 256 features a third of the thin SVD's time. Eigenvalues under
    the Gram matrix's rounding (max(n, d) eps of the largest) are left out, their directions'
    share of Y counted in ``outside``: there s_i^2 is 0 to working precision, and the thin
    SVD's terms for them differ from ``outside``'s by rho s_i^2 relatively."""
    n, d = f.shape
    sigma, vectors = torch.linalg.eigh(f.T @ f if n >= d else f @ f.T)
    if sigma[-1] <= 0:
        raise ValueError("features are all zero: LogME's fixed-point iteration is undefined")
    kept = sigma > sigma[-1] * max(n, d) * torch.finfo(f.dtype).eps
    sigma, vectors = sigma[kept], vectors[:, kept]
    x = vectors.T @ (f.T @ y) / sigma.sqrt()[:, None] if n >= d else vectors.T @ y
    return sigma[:, None], x, (y.square().sum(0) - x.square().sum(0)).clamp_min(0)


def _logme_step(sigma: Tensor, x: Tensor, outside: Tensor, n: int,
                rho: Tensor) -> tuple[Tensor, Tensor]:
    """One fixed-point update from (alpha, beta) with beta / alpha = ``rho``: the new
    (beta, rho). gamma = sum beta sigma / (alpha + beta sigma), alpha' = gamma / m^T m and
    beta' = (n - gamma) / ||F m - y||^2; rho' = beta' / alpha' is formed with rho cancelled
    from m^T m / gamma, so rho = 0 stays 0 rather than becoming 0 / 0."""
    ratio = 1 + rho * sigma  # (alpha + beta sigma_i) / alpha
    gamma = (rho * sigma / ratio).sum(0)
    beta = (n - gamma) / ((x / ratio).square().sum(0) + outside)
    rho = beta * rho * (sigma * x.square() / ratio.square()).sum(0) / (sigma / ratio).sum(0)
    return beta, rho


def _log_evidence(sigma: Tensor, x: Tensor, outside: Tensor, n: int, beta: Tensor,
                  rho: Tensor) -> Tensor:
    """The log evidence per class at (alpha, beta) = (beta / rho, beta), written as
    log N(y; 0, (I + rho F F^T) / beta), which holds at rho = 0 too. It equals the paper's
    n/2 log beta + d/2 log alpha - n/2 log 2pi - beta/2 ||F m - y||^2 - alpha/2 m^T m
    - 1/2 sum_{i<=d} log(alpha + beta sigma_i): the d - k zero eigenvalues of F^T F beyond the
    thin SVD add log alpha each, cancelling their share of d/2 log alpha."""
    fit = (x.square() / (1 + rho * sigma)).sum(0) + outside  # ||F m - y||^2 + m^T m / rho
    return (n / 2 * beta.log() - n / 2 * math.log(2 * math.pi) - beta / 2 * fit
            - (rho * sigma).log1p().sum(0) / 2)


def logme(features: Tensor, labels: Tensor, num_classes: int, max_iter: int = 100,
          tol: float = 1e-5) -> float:
    """LogME (You et al. 2021): the mean over classes of the maximum log evidence per image
    of a Bayesian linear regression of the class's one-hot target on ``features``.

    For each class, alpha (prior precision) and beta (noise precision) start at 1, as in the
    official implementation, and follow the paper's fixed-point updates until both change by
    less than ``tol`` relatively, or for ``max_iter`` iterations; the evidence is evaluated at
    the final (alpha, beta). Its log-determinant runs over all d eigenvalues of F^T F, those
    beyond the thin SVD's min(n, d) being 0, as in the paper's algorithm (the repository's
    default fixed-point variant sums the min(n, d) nonzero ones only, which differs by
    (d - n)/2 log alpha when d > n). A class whose features carry nothing about it may see
    alpha grow without bound; the evidence then tends to that of the noise-only model.
    """
    f = _rows(features, "features")
    y = torch.nn.functional.one_hot(_labels(labels, len(f), num_classes, "labels"),
                                    num_classes).double()
    missing = torch.nonzero(y.sum(0) == 0).flatten().tolist()
    if missing:
        raise ValueError(f"classes {missing} have no images: their evidence is undefined")
    sigma, x, outside = _spectrum(f, y)
    beta = torch.ones(num_classes, dtype=f.dtype, device=f.device)
    rho = torch.ones_like(beta)
    active = torch.ones(num_classes, dtype=torch.bool, device=f.device)
    for _ in range(max_iter):
        new_beta, new_rho = _logme_step(sigma, x, outside, len(f), rho)
        # |alpha' - alpha| <= tol alpha with alpha = beta / rho, multiplied through by rho rho'
        converged = (((new_beta - beta).abs() <= tol * beta)
                     & ((new_beta * rho - beta * new_rho).abs() <= tol * beta * new_rho))
        beta, rho = torch.where(active, new_beta, beta), torch.where(active, new_rho, rho)
        active &= ~converged
        if not active.any():
            break
    return (_log_evidence(sigma, x, outside, len(f), beta, rho) / len(f)).mean().item()
