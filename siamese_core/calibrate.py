"""Distances -> verdicts: threshold calibration and the metrics that judge a model.

"Same" means ``distance <= threshold``. Scores for ROC are negated distances.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .pairs import SAME


@dataclass(frozen=True)
class Calibration:
    """What validation pairs say about a distance threshold."""

    threshold: float          # accuracy-maximising: same <=> distance <= threshold
    accuracy: float           # pair accuracy at ``threshold``
    roc_auc: float
    eer: float                # equal error rate
    eer_threshold: float
    slope: float              # confidence: P(same | d) = sigmoid(slope * (threshold - d))
    n_pairs: int

    def to_dict(self) -> dict:
        return {k: float(v) if k != "n_pairs" else int(v) for k, v in asdict(self).items()}


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Pair accuracy when "same" is predicted for ``distance <= threshold``."""
    return float(np.mean((np.asarray(distances) <= threshold) == (np.asarray(same) == SAME)))


def calibrate(distances: np.ndarray, same: np.ndarray, balanced: bool = False) -> Calibration:
    """Pick the accuracy-maximising threshold (midpoint between neighbouring distances) and
    report ROC AUC, the equal error rate and a logistic confidence slope. ``balanced``: the
    accuracy is the mean of the same and the different pairs' (for pair sets of unequal
    sizes: a few skilled forgeries against many genuine pairs would otherwise all be let in)."""
    from sklearn.metrics import roc_auc_score

    d = np.asarray(distances, dtype=np.float64).ravel()
    y = (np.asarray(same).ravel() == SAME)
    if y.all() or not y.any():
        raise ValueError("calibration needs both same and different pairs")
    order = np.argsort(d, kind="stable")
    ds, ys = d[order], y[order]
    # Predict "same" for the first k sorted pairs, k = 0..n: correct = positives in the first k
    # plus negatives after it. Only cut between distinct distances.
    wp, wn = ((0.5 / ys.sum(), 0.5 / (~ys).sum()) if balanced else (1.0, 1.0))
    correct = (wp * np.concatenate([[0], np.cumsum(ys)])
               + wn * np.concatenate([[(~ys).sum()], (~ys).sum() - np.cumsum(~ys)]))
    valid = np.concatenate([[True], ds[1:] != ds[:-1], [True]])
    k = int(np.argmax(np.where(valid, correct, -1)))
    if k == 0:
        threshold = ds[0] - 1e-6
    elif k == len(ds):
        threshold = ds[-1] + 1e-6
    else:
        threshold = 0.5 * (ds[k - 1] + ds[k])
    eer, eer_threshold = equal_error(d, y)
    if not np.isfinite(eer_threshold):
        eer_threshold = float(ds[0])
    return Calibration(
        threshold=float(threshold),
        accuracy=float(correct[k] if balanced else correct[k] / len(d)),
        roc_auc=float(roc_auc_score(y, -d)),
        eer=eer,
        eer_threshold=eer_threshold,
        slope=_confidence_slope(d, y, float(threshold)),
        n_pairs=len(d),
    )


def equal_error(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The equal error rate of distances (same <=> ``same`` true; lower: more alike) and the
    distance where false accepts and false rejects meet (infinite where the ROC starts)."""
    from sklearn.metrics import roc_curve
    fpr, tpr, thr = roc_curve(np.asarray(same, dtype=bool), -np.asarray(distances))
    i = int(np.argmin(np.abs(fpr - (1.0 - tpr))))
    return float(0.5 * (fpr[i] + 1.0 - tpr[i])), float(-thr[i])


def _confidence_slope(d: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """Logistic fit of P(same) on (threshold - d), intercept fixed at 0 so that the threshold
    is the 50 % point; Newton's method on one parameter."""
    x = threshold - d
    s = 1.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-s * x))
        grad = np.sum((p - y) * x) + 1e-3 * s
        hess = np.sum(p * (1 - p) * x * x) + 1e-3
        step = grad / hess
        s -= step
        if abs(step) < 1e-6:
            break
    return float(max(s, 1e-3))


def confidence(distance: float | np.ndarray, threshold: float, slope: float):
    """Probability-like confidence in the verdict (>= 0.5): P(same) or P(different)."""
    p_same = 1.0 / (1.0 + np.exp(-slope * (threshold - np.asarray(distance, dtype=np.float64))))
    return np.where(np.asarray(distance) <= threshold, p_same, 1.0 - p_same)


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix between rows of ``a`` [N, D] and ``b`` [M, D]."""
    d2 = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


# All-pairs metrics hold four [N, N] float32 masks: 64 MB at 2,000 images.
ALL_PAIRS_MAX = 2000


def _pair_matrices(emb: np.ndarray, labels: np.ndarray, threshold: float):
    """(correct-and-same, same, correct-and-different, different) as [N, N] float32 masks over
    pairs of distinct images (the diagonal is in neither class). float32 is exact here: every
    sum ``_balanced`` takes over them is a whole number below 2**24."""
    labels = np.asarray(labels)
    if len(labels) > ALL_PAIRS_MAX:
        raise ValueError(f"all-pairs metrics take at most {ALL_PAIRS_MAX} images "
                         f"(got {len(labels)}): pass a stratified subset")
    if len(np.unique(labels)) < 2:
        raise ValueError("all-pairs accuracy needs at least 2 classes")
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    diff = labels[:, None] != labels[None, :]
    says_same = pairwise_distances(emb, emb) <= threshold
    return tuple(m.astype(np.float32) for m in (same & says_same, same, diff & ~says_same, diff))


def _balanced(mats, w: np.ndarray) -> np.ndarray:
    """Balanced accuracy for each row of image multiplicities ``w`` [B, N]: pair (i, j) counts
    ``w_i * w_j`` times."""
    cs, s, cd, d = ((w @ m * w).sum(1).astype(np.float64) for m in mats)
    return 0.5 * (cs / np.maximum(s, 1) + cd / np.maximum(d, 1))


def all_pairs_accuracy(emb: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Balanced pair accuracy over *every* pair of distinct images: the mean of the accuracy on
    same-class pairs and on different-class pairs. No pair sampling, so no sampling noise; at
    most ``ALL_PAIRS_MAX`` images."""
    return float(_balanced(_pair_matrices(emb, labels, threshold),
                           np.ones((1, len(labels)), np.float32))[0])


def paired_bootstrap(emb_a: np.ndarray, threshold_a: float, emb_b: np.ndarray,
                     threshold_b: float, labels: np.ndarray, n_boot: int = 1000,
                     seed: int = 0) -> dict:
    """All-pairs accuracy of model a minus model b on the same images, with a 95 % interval from
    resampling the *images* (pairs sharing an image are not independent), the same resample for
    both models. Returns ``accuracy_a``, ``accuracy_b``, their ``difference``, ``low``, ``high``
    and ``p_a_below`` (the share of resamples where a scores lower)."""
    ma = _pair_matrices(emb_a, labels, threshold_a)
    mb = _pair_matrices(emb_b, labels, threshold_b)
    n = len(labels)
    # Row 0: every image once (the accuracies themselves); then the resamples. A thousand
    # resamples of 1,000 images take ~0.5 s.
    w = np.concatenate([np.ones((1, n)), np.random.default_rng(seed).multinomial(
        n, np.full(n, 1.0 / n), size=n_boot)]).astype(np.float32)
    acc_a, acc_b = _balanced(ma, w), _balanced(mb, w)
    diffs = acc_a[1:] - acc_b[1:]
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"accuracy_a": float(acc_a[0]), "accuracy_b": float(acc_b[0]),
            "difference": float(acc_a[0] - acc_b[0]), "low": float(lo), "high": float(hi),
            "p_a_below": float(np.mean(diffs < 0)), "n_boot": n_boot}


def holdout_interval(emb: np.ndarray, labels: np.ndarray, threshold: float, by_class: bool,
                     n_boot: int = 400, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """How far the all-pairs accuracy at ``threshold`` could move on another draw of the
    held-out data: the ``level`` interval of (resampled - observed) accuracy, resampling the
    *classes* and then each drawn class's images (``by_class``: new people generalise by
    person) or the images alone. Add it to an accuracy measured on these images. With 2
    classes only the images vary (a resample of 2 classes is the 2 again): the interval then
    understates the uncertainty, which is why few held-out classes are said, not hidden."""
    labels = np.asarray(labels)
    mats = _pair_matrices(emb, labels, threshold)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    w = np.zeros((n_boot + 1, len(labels)), np.float32)
    w[0] = 1.0
    for b in range(1, n_boot + 1):
        if not by_class:
            w[b] = rng.multinomial(len(labels), np.full(len(labels), 1.0 / len(labels)))
            continue
        while True:        # a resample needs two distinct classes to have different pairs
            drawn = rng.integers(len(classes), size=len(classes))
            if len(set(drawn.tolist())) > 1:
                break
        for c in drawn:
            idx = members[c]
            np.add.at(w[b], idx, rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx))))
    acc = _balanced(mats, w)
    lo, hi = np.percentile(acc[1:] - acc[0], [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def one_shot_accuracy(emb: np.ndarray, labels: np.ndarray, episodes: int = 1000,
                      seed: int = 0, n_way: int | None = None, shots: int = 1) -> float:
    """N-way k-shot accuracy: each episode draws ``n_way`` classes (default: all), ``shots``
    support images of each and one more image of one of them as the query, which is classified
    by the nearest class prototype (the mean of its supports' embeddings)."""
    rng = np.random.default_rng(seed)
    groups = [g for g in (np.flatnonzero(labels == c) for c in np.unique(labels))
              if len(g) > shots]
    n_way = len(groups) if n_way is None else n_way
    if n_way < 2 or len(groups) < n_way:
        raise ValueError(f"{n_way}-way {shots}-shot needs {max(n_way, 2)} classes with "
                         f"{shots + 1}+ images each")
    correct = 0
    for _ in range(episodes):
        chosen = rng.choice(len(groups), n_way, replace=False)
        target = int(rng.integers(n_way))
        protos, query = [], None
        for j, c in enumerate(chosen):
            pick = rng.choice(groups[c], shots + (j == target), replace=False)
            protos.append(emb[pick[:shots]].mean(0))
            if j == target:
                query = emb[pick[shots]]
        assert query is not None            # one class per episode holds the query
        d = np.linalg.norm(np.stack(protos) - query[None], axis=1)
        correct += int(np.argmin(d) == target)
    return correct / episodes


def operating_points(distances: np.ndarray, same: np.ndarray, n: int = 101) -> dict:
    """The ROC as a verification user reads it: at each of ``n`` thresholds (quantiles of the
    distances, ascending), the false-accept rate (different pairs called same) and the
    false-reject rate (same pairs called different). Stored with a model for its threshold
    control."""
    d = np.asarray(distances, dtype=np.float64).ravel()
    y = np.asarray(same).ravel() == SAME
    thr = np.unique(np.quantile(d, np.linspace(0, 1, n)))
    far = [(d[~y] <= t).mean() for t in thr]
    frr = [(d[y] > t).mean() for t in thr]
    return {"threshold": [round(float(t), 6) for t in thr],
            "far": [round(float(v), 6) for v in far], "frr": [round(float(v), 6) for v in frr]}


def rates_at(points: dict, threshold: float) -> tuple[float, float]:
    """(false-accept, false-reject) rate at ``threshold``, interpolated in ``operating_points``."""
    t = np.asarray(points["threshold"], dtype=np.float64)
    return (float(np.interp(threshold, t, points["far"])),
            float(np.interp(threshold, t, points["frr"])))


def evaluate_embeddings(emb: np.ndarray, labels: np.ndarray, threshold: float,
                        n_pairs: int = 10_000, episodes: int = 1000, seed: int = 0) -> dict:
    """How embeddings of a split do at a threshold chosen elsewhere: pair accuracy on balanced
    random pairs, ROC AUC and EER (of these pairs) and N-way one-shot accuracy with N the
    number of classes, at most 20 (the Omniglot convention)."""
    from .pairs import make_pairs

    pairs = make_pairs(labels, seed, n_pairs=n_pairs)
    d = np.linalg.norm(emb[pairs.a] - emb[pairs.b], axis=1)
    cal = calibrate(d, pairs.label)
    n_way = min(20, len(np.unique(labels)))
    return {"pair_accuracy": accuracy_at(d, pairs.label, threshold), "roc_auc": cal.roc_auc,
            "eer": cal.eer, "n_pairs": len(d), "n_images": len(labels),
            "n_classes": int(len(np.unique(labels))), "n_way": n_way,
            "one_shot": one_shot_accuracy(emb, labels, episodes, seed, n_way),
            "one_shot_episodes": episodes, "best_threshold_here": cal.threshold,
            "best_accuracy_here": cal.accuracy}


def pca_2d(emb: np.ndarray) -> np.ndarray:
    """Project embeddings on their first two principal components (for the 2-D map)."""
    x = emb - emb.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return (x @ vt[:2].T).astype(np.float32)
