"""Readouts of block features: the linear probe on a known linear rule and on shuffled labels,
the weighted k-NN and LogME against plain reference implementations, and their errors."""
import math

import numpy as np
import pytest
import torch

from benchmark.measures.readout import (PROBE_MAX_ITER, PROBE_TOLERANCE, PROBE_TOLERANCE_CHANGE, knn,
                                        linear_probe, logme, stratified_split)

CLASSES = 4


def sector_data(seed: int, n: int, d: int = 20,
                gap: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian features in d dimensions labelled by a known linear rule on the first two:
    the class whose direction (CLASSES equally spaced angles) has the largest projection.
    Points whose best and second-best projections differ by less than ``gap`` are dropped, so
    the classes are linearly separable with a margin and balanced (equal sectors)."""
    x = torch.randn(3 * n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    angles = torch.arange(CLASSES) * 2 * math.pi / CLASSES
    scores = x[:, :1] * angles.cos() + x[:, 1:2] * angles.sin()
    top2 = scores.topk(2, dim=1).values
    keep = top2[:, 0] - top2[:, 1] > gap
    return x[keep][:n], scores[keep][:n].argmax(1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These matrices are tiny: intra-op threads only add synchronisation, which costs
    seconds per probe on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sectors():
    return sector_data(0, 400), sector_data(1, 1000)


@pytest.fixture(scope="module")
def probe(sectors):
    (train_x, train_y), (test_x, test_y) = sectors
    return linear_probe(train_x, train_y, test_x, test_y, CLASSES)


# ----------------------------------------------------------------------------- linear probe

def test_probe_recovers_a_linear_rule(probe):
    assert probe["top1"] >= 0.95
    assert probe["weight_decay"] in (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    assert set(probe["validation_top1"]) == {"0.0001", "0.001", "0.01", "0.1", "1.0"}
    scores = probe["validation_top1"]
    assert scores[str(probe["weight_decay"])] == max(scores.values())


def test_probe_is_at_chance_on_shuffled_labels(sectors):
    """With shuffled training labels the probe is fitted to noise. Over 60 data and shuffle
    seeds of this setting (d=20, 400 training images) its test top-1 had mean 0.24, standard
    deviation 0.043 and range [0.14, 0.33]: the 0.15 margin around 1/4 is ~3.5 sd wide, while
    a probe that saw the rule scored >= 0.96 on every seed."""
    (train_x, train_y), (test_x, test_y) = sectors
    shuffled = train_y[torch.randperm(len(train_y), generator=torch.Generator().manual_seed(0))]
    result = linear_probe(train_x, shuffled, test_x, test_y, CLASSES)
    assert abs(result["top1"] - 1 / CLASSES) < 0.15


def test_probe_selects_without_the_test_images(sectors, probe):
    """Other test images and labels: the same validation scores and L2 strength."""
    (train_x, train_y), (test_x, test_y) = sectors
    noise = torch.randn(len(test_x), test_x.shape[1], generator=torch.Generator().manual_seed(2),
                        dtype=torch.float64)
    other = linear_probe(train_x, train_y, noise, (test_y + 1) % CLASSES, CLASSES)
    assert other["validation_top1"] == probe["validation_top1"]
    assert other["weight_decay"] == probe["weight_decay"]
    assert other["top1"] < 0.5


def test_probe_standardises_features(sectors, probe):
    """Features are standardised with the training statistics: a per-feature affine map of
    training and test features alike leaves the probe's choices and accuracy unchanged."""
    (train_x, train_y), (test_x, test_y) = sectors
    scale = torch.logspace(-3, 3, train_x.shape[1], dtype=torch.float64)
    shift = torch.linspace(-50, 50, train_x.shape[1], dtype=torch.float64)
    mapped = linear_probe(train_x * scale + shift, train_y, test_x * scale + shift, test_y, CLASSES)
    assert mapped["weight_decay"] == probe["weight_decay"]
    assert mapped["top1"] == pytest.approx(probe["top1"], abs=2e-3)


def test_probe_path_is_order_free_and_matches_a_single_fit(sectors, probe):
    """The L2 strengths are fitted along a path, strongest first, each from the last solution:
    the order they are given in changes nothing, and the probe asked for the chosen strength
    alone (fitted from zero weights) reaches the same top-1."""
    (train_x, train_y), (test_x, test_y) = sectors
    reordered = linear_probe(train_x, train_y, test_x, test_y, CLASSES, (1e-2, 1.0, 1e-4, 1e-1, 1e-3))
    assert reordered == probe
    alone = linear_probe(train_x, train_y, test_x, test_y, CLASSES, (probe["weight_decay"],))
    assert alone["top1"] == pytest.approx(probe["top1"], abs=2e-3)


def reference_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                    test_y: torch.Tensor, num_classes: int) -> dict:
    """The probe written out plainly: every fit standardises its own features and hands L-BFGS
    the weight and the bias as two parameters (the probe's settings, the same L2 path)."""
    weight_decays = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    fit, held = stratified_split(train_y, num_classes, 0.2, 0)

    def top1(logits, y):
        return logits.argmax(1).eq(y).double().mean().item()

    def fitted(x, y, weight_decay, start):
        mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-8)
        z, targets = ((x - mean) / std).float(), torch.nn.functional.one_hot(y, num_classes).float()
        weight, bias = (p.clone() for p in start)
        optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=PROBE_MAX_ITER, history_size=20,
                                      tolerance_grad=PROBE_TOLERANCE, tolerance_change=PROBE_TOLERANCE_CHANGE,
                                      line_search_fn="strong_wolfe")

        def closure():
            log_probs = (z @ weight + bias).log_softmax(1)
            residual = (log_probs.exp() - targets) / len(z)
            weight.grad, bias.grad = z.T @ residual + weight_decay * weight, residual.sum(0)
            return -(log_probs * targets).sum() / len(z) + weight_decay / 2 * weight.square().sum()

        optimizer.step(closure)
        return (lambda rows: ((rows - mean) / std).float() @ weight + bias), (weight, bias)

    scores, solutions = {}, {}
    previous = (torch.zeros(train_x.shape[1], num_classes), torch.zeros(num_classes))
    for wd in sorted(weight_decays, reverse=True):
        logits, previous = fitted(train_x[fit], train_y[fit], wd, previous)
        scores[wd], solutions[wd] = top1(logits(train_x[held]), train_y[held]), previous
    best = max(scores, key=lambda wd: (scores[wd], wd))
    logits, _ = fitted(train_x, train_y, best, solutions[best])
    return {"top1": top1(logits(test_x), test_y), "weight_decay": best,
            "validation_top1": {str(wd): top1 for wd, top1 in scores.items()}}


def test_probe_equals_a_plain_implementation(sectors, probe):
    """The probe standardises once per set of fits and fits one flat parameter: the same
    arithmetic as the plain implementation, so the same numbers to the last bit, here and on
    features the size of a block's readout (64 noisy features, 16 classes, 2000 images), where
    the weakest L2 strength takes tens of L-BFGS iterations."""
    (train_x, train_y), (test_x, test_y) = sectors
    assert probe == reference_probe(train_x, train_y, test_x, test_y, CLASSES)
    generator = torch.Generator().manual_seed(3)
    labels = torch.arange(2000) % 16
    means = torch.randn(16, 64, generator=generator, dtype=torch.float64)
    features = means[labels] + 3 * torch.randn(2000, 64, generator=generator, dtype=torch.float64)
    train, test = slice(0, 1500), slice(1500, None)
    blocks = (features[train], labels[train], features[test], labels[test], 16)
    assert linear_probe(*blocks) == reference_probe(*blocks)


def test_probe_needs_two_training_images_per_class(sectors):
    (train_x, train_y), (test_x, test_y) = sectors
    lonely = train_y.clone()
    lonely[lonely == 3] = 2
    lonely[0] = 3
    with pytest.raises(ValueError, match="class 3 has 1 training image"):
        linear_probe(train_x, lonely, test_x, test_y, CLASSES)
    with pytest.raises(ValueError, match="class 3 has 0 training image"):
        linear_probe(train_x, train_y % 3, test_x, test_y, CLASSES)


# ----------------------------------------------------------------------------- k-NN

def reference_knn_predictions(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                              num_classes: int, k: int, temperature: float) -> list[int]:
    """The DINO weighted k-NN written out plainly, one test image at a time."""
    predictions = []
    norms = np.linalg.norm(train_x, axis=1)
    for query in test_x:
        similarities = train_x @ query / (norms * np.linalg.norm(query))
        nearest = np.argsort(-similarities)[:k]
        votes = [0.0] * num_classes
        for j in nearest:
            votes[train_y[j]] += math.exp(similarities[j] / temperature)
        predictions.append(votes.index(max(votes)))
    return predictions


@pytest.mark.parametrize("k, temperature", [(20, 0.07), (5, 0.5), (1, 0.07)])
def test_knn_matches_a_plain_implementation(k, temperature):
    """Continuous random features (no tied similarities), class-dependent means so accuracy is
    well above chance; 1100 test images cross the 1024-image chunk boundary."""
    rng = np.random.default_rng(k)
    classes, d = 5, 8
    means = rng.normal(size=(classes, d))
    train_y, test_y = rng.integers(classes, size=300), rng.integers(classes, size=1100)
    train_x = means[train_y] + 1.5 * rng.normal(size=(300, d))
    test_x = means[test_y] + 1.5 * rng.normal(size=(1100, d))
    predictions = np.array(reference_knn_predictions(train_x, train_y, test_x, classes, k,
                                                     temperature))
    tensors = [torch.from_numpy(a) for a in (train_x, train_y, test_x)]
    assert knn(*tensors, torch.from_numpy(test_y), classes, k, temperature) == pytest.approx(
        np.mean(predictions == test_y), abs=1e-12)
    assert 0.3 < np.mean(predictions == test_y) < 1
    for i in range(10):  # each prediction, not only the accuracy: score one image at a time
        one = torch.from_numpy(test_x[i:i + 1])
        label = torch.tensor([predictions[i]])
        assert knn(*tensors[:2], one, label, classes, k, temperature) == 1.0


def test_knn_refuses_k_above_the_training_images():
    x, y = torch.randn(10, 3), torch.arange(10) % 2
    with pytest.raises(ValueError, match=r"k=11 .*\(10\); lower k"):
        knn(x, y, x, y, 2, k=11)
    assert knn(x, y, x, y, 2, k=10) >= 0


# ----------------------------------------------------------------------------- LogME

def class_evidence(f: np.ndarray, y: np.ndarray, max_iter: int, tol: float) -> float:
    """One class's maximum log evidence per image, the fixed-point iteration written out
    plainly: at every step the posterior precision A = alpha I + beta F^T F is inverted
    explicitly (no SVD)."""
    n, d = f.shape

    def posterior(alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = alpha * np.eye(d) + beta * f.T @ f
        inverse = np.linalg.inv(a)
        return a, inverse, beta * inverse @ f.T @ y

    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        _, inverse, m = posterior(alpha, beta)
        gamma = d - alpha * np.trace(inverse)  # sum of beta sigma_i / (alpha + beta sigma_i)
        new_alpha, new_beta = gamma / (m @ m), (n - gamma) / np.sum((f @ m - y) ** 2)
        done = abs(new_alpha - alpha) <= tol * alpha and abs(new_beta - beta) <= tol * beta
        alpha, beta = new_alpha, new_beta
        if done:
            break
    a, _, m = posterior(alpha, beta)
    evidence = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                - beta / 2 * np.sum((f @ m - y) ** 2) - alpha / 2 * (m @ m)
                - np.linalg.slogdet(a)[1] / 2)
    return evidence / n


def reference_logme(f: np.ndarray, labels: np.ndarray, num_classes: int, max_iter: int = 100,
                    tol: float = 1e-5) -> float:
    """LogME: the mean over classes of :func:`class_evidence` of the one-hot target."""
    return float(np.mean([class_evidence(f, (labels == c).astype(np.float64), max_iter, tol)
                          for c in range(num_classes)]))


def informative_features(rng: np.random.Generator, labels: np.ndarray, num_classes: int, d: int,
                         noise: float) -> np.ndarray:
    """One-hot labels plus noise, projected to d dimensions, plus a little isotropic noise."""
    one_hot = np.eye(num_classes)[labels] + noise * rng.normal(size=(len(labels), num_classes))
    return one_hot @ rng.normal(size=(num_classes, d)) + 0.1 * rng.normal(size=(len(labels), d))


@pytest.mark.parametrize("n, d", [(80, 12), (20, 45)], ids=["n>d", "d>n"])
def test_logme_matches_a_plain_implementation(n, d):
    rng = np.random.default_rng(n)
    classes = 3
    labels = np.arange(n) % classes
    for f in (informative_features(rng, labels, classes, d, 0.5), rng.normal(size=(n, d))):
        expected = reference_logme(f, labels, classes)
        assert logme(torch.from_numpy(f), torch.from_numpy(labels), classes) == pytest.approx(
            expected, rel=1e-6)


def test_logme_leaves_out_directions_the_features_lack():
    """Dead and duplicated channels (zero and repeated columns) give F^T F eigenvalues of 0 to
    rounding: LogME leaves them out and still matches the plain implementation, which inverts
    alpha I + beta F^T F over every dimension."""
    rng = np.random.default_rng(7)
    classes, n = 3, 90
    labels = np.arange(n) % classes
    f = informative_features(rng, labels, classes, 10, 0.5)
    f = np.concatenate([f, np.zeros((n, 3)), f[:, :4]], axis=1)
    expected = reference_logme(f, labels, classes)
    assert logme(torch.from_numpy(f), torch.from_numpy(labels), classes) == pytest.approx(expected, rel=1e-6)


def test_logme_ranks_informative_features_above_noise():
    rng = np.random.default_rng(0)
    classes, n, d = 4, 200, 16
    labels = rng.integers(classes, size=n)
    informative, noise = informative_features(rng, labels, classes, d, 0.3), rng.normal(size=(n, d))
    scores = [logme(torch.from_numpy(f), torch.from_numpy(labels), classes)
              for f in (informative, noise)]
    assert scores[0] > scores[1]


def test_logme_reaches_the_noise_only_limit():
    """Features orthogonal to every class's target: the evidence grows as alpha -> infinity
    (m -> 0), to the noise-only model's log N(y; 0, I / beta) at beta = n / ||y||^2, and stays
    finite however long the iteration runs (pure noise used to overflow alpha)."""
    column = np.array([1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0])
    f = np.stack([column, column[[2, 3, 0, 1, 6, 7, 4, 5]]], axis=1)
    labels = np.arange(8) // 2  # each class a pair of opposite rows: F^T y_c = 0
    n, size = 8, 2
    limit = 0.5 * math.log(n / size) - 0.5 * math.log(2 * math.pi) - 0.5
    score = logme(torch.from_numpy(f), torch.from_numpy(labels), 4, max_iter=10_000)
    assert score == pytest.approx(limit, rel=1e-9)
    rng = np.random.default_rng(200)
    noise, classes = rng.normal(size=(200, 16)), np.arange(200) % 3
    score = logme(torch.from_numpy(noise), torch.from_numpy(classes), 3, max_iter=10_000)
    assert math.isfinite(score)


def test_logme_refuses_an_empty_class():
    with pytest.raises(ValueError, match=r"classes \[2\] have no images"):
        logme(torch.randn(10, 3), torch.arange(10) % 2, 3)
