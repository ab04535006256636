"""Positive/negative pair sampling (seed part A) and the pair montage.

The label convention lives here, once: ``SAME = 1`` (both images of one class), ``DIFFERENT = 0``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .errors import DataError

SAME = 1
DIFFERENT = 0


class Pairs(NamedTuple):
    """Index pairs into a dataset and their labels (``SAME``/``DIFFERENT``)."""

    a: np.ndarray
    b: np.ndarray
    label: np.ndarray


def _class_index(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group indices by class: (classes, order, starts, counts) with ``order`` sorted by class."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return classes, order, starts, counts


def _positive_partners(anchor, cls_of, order, starts, counts, classes, rng) -> np.ndarray:
    """A different image of each anchor's class (vectorised)."""
    if counts.min() < 2:
        lonely = classes[counts < 2]
        raise DataError(
            f"class {int(lonely[0])} has a single image: positive pairs need at least 2 per class"
        )
    n = len(cls_of)
    # Each anchor's rank within its class plus a non-zero cyclic offset: never itself.
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    c = cls_of[anchor]
    offset = 1 + (rng.random(len(anchor)) * (counts[c] - 1)).astype(np.int64)
    return order[starts[c] + (rank[anchor] + offset) % counts[c]]


def _negative_partners(anchor, cls_of, order, starts, counts, rng) -> np.ndarray:
    """An image of a uniformly chosen other class for each anchor (vectorised)."""
    k = len(counts)
    other = (cls_of[anchor] + rng.integers(1, k, len(anchor))) % k
    return order[starts[other] + (rng.random(len(anchor)) * counts[other]).astype(np.int64)]


def make_triplets(labels: np.ndarray, rng: np.random.Generator | int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anchor, positive, negative) index triplets, one per image, in random order."""
    labels = np.asarray(labels).ravel()
    rng = np.random.default_rng(rng)
    classes, order, starts, counts = _class_index(labels)
    if len(classes) < 2:
        raise DataError(f"need at least 2 classes to make triplets, found {len(classes)}")
    cls_of = np.searchsorted(classes, labels)
    anchor = rng.permutation(len(labels))
    pos = _positive_partners(anchor, cls_of, order, starts, counts, classes, rng)
    neg = _negative_partners(anchor, cls_of, order, starts, counts, rng)
    return anchor, pos, neg


def make_pairs(
    labels: np.ndarray,
    rng: np.random.Generator | int | None = None,
    n_pairs: int | None = None,
    pos_fraction: float = 0.5,
) -> Pairs:
    """Sample balanced positive/negative index pairs, vectorised and reproducible.

    With ``n_pairs=None`` every image anchors one positive and one negative pair, as in the seed
    (``2 * len(labels)`` pairs); otherwise anchors are drawn at random. Pairs are shuffled.
    A positive partner is always a *different* image of the anchor's class; a negative partner
    comes from a uniformly chosen other class.
    """
    labels = np.asarray(labels).ravel()
    rng = np.random.default_rng(rng)
    classes, order, starts, counts = _class_index(labels)
    if len(classes) < 2:
        raise DataError(f"need at least 2 classes to make pairs, found {len(classes)}")
    if not 0.0 <= pos_fraction <= 1.0:
        raise ValueError("pos_fraction must be in [0, 1]")
    n = len(labels)
    cls_of = np.searchsorted(classes, labels)  # class position of every image
    if n_pairs is None:
        n_pos = n_neg = n
        pos_anchor = rng.permutation(n)
        neg_anchor = rng.permutation(n)
    else:
        n_pos = int(round(n_pairs * pos_fraction))
        n_neg = n_pairs - n_pos
        pos_anchor = rng.integers(0, n, n_pos)
        neg_anchor = rng.integers(0, n, n_neg)

    if n_pos:
        pos_partner = _positive_partners(pos_anchor, cls_of, order, starts, counts, classes, rng)
    else:
        pos_partner = np.empty(0, dtype=np.int64)
    neg_partner = _negative_partners(neg_anchor, cls_of, order, starts, counts, rng)

    a = np.concatenate([pos_anchor, neg_anchor]).astype(np.int64)
    b = np.concatenate([pos_partner, neg_partner]).astype(np.int64)
    y = np.concatenate([np.full(n_pos, SAME), np.full(n_neg, DIFFERENT)]).astype(np.int64)
    perm = rng.permutation(len(a))
    return Pairs(a[perm], b[perm], y[perm])


def pairs_among(labels: np.ndarray, classes, rng: np.random.Generator | int | None = None,
                n_pairs: int | None = None) -> Pairs:
    """``make_pairs`` restricted to images of ``classes`` (label values; empty or None: all),
    with indices into the full ``labels``."""
    labels = np.asarray(labels)
    keep = (np.flatnonzero(np.isin(labels, list(classes))) if classes is not None
            and len(classes) else np.arange(len(labels)))
    p = make_pairs(labels[keep], rng, n_pairs=n_pairs)
    return p._replace(a=keep[p.a], b=keep[p.b])


def pair_montage(
    images: np.ndarray,
    pairs: Pairs,
    grid: tuple[int, int] = (7, 7),
    tile: int = 96,
    captions: list[str] | None = None,
) -> np.ndarray:
    """A grid of pairs (the seed's 7x7 montage): each tile shows both images side by side,
    captioned "pos" in green or "neg" in red (or a custom caption). Returns an RGB uint8 array."""
    import cv2
    from imutils import build_montages

    count = grid[0] * grid[1]
    tiles = []
    # Wide images (signatures) keep their shape: a tile is ``tile`` high.
    wide = 2 * round(tile * images.shape[2] / images.shape[1]) if len(images) else 2 * tile
    for i in range(min(count, len(pairs.a))):
        pair = np.hstack([images[pairs.a[i]], images[pairs.b[i]]]).astype(np.uint8)
        rgb = cv2.cvtColor(cv2.resize(pair, (wide, tile), interpolation=cv2.INTER_NEAREST),
                           cv2.COLOR_GRAY2BGR)
        same = pairs.label[i] == SAME
        colour = (0, 200, 0) if same else (0, 0, 255)  # BGR: green / red
        text = captions[i] if captions is not None else ("pos" if same else "neg")
        cv2.putText(rgb, text, (4, tile - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * tile / 64, colour, 2)
        cv2.rectangle(rgb, (0, 0), (wide - 1, tile - 1), (90, 90, 90), 1)  # tile separator
        tiles.append(rgb)
    montage = build_montages(tiles, (wide, tile), grid)[0]
    return cv2.cvtColor(montage, cv2.COLOR_BGR2RGB)


def class_montage(images: np.ndarray, labels: np.ndarray, class_names: list[str],
                  per_class: int = 4, max_classes: int = 12, tile: int = 64,
                  seed: int = 0) -> np.ndarray:
    """A sample of a dataset: one row per class (up to ``max_classes``, chosen at random), its
    first ``per_class`` images after a seeded shuffle, the class name under the row's first
    image. Returns an RGB uint8 array."""
    import cv2
    from imutils import build_montages

    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    classes = np.sort(rng.choice(classes, min(max_classes, len(classes)), replace=False))
    tw = round(tile * images.shape[2] / images.shape[1])   # wide images keep their shape
    tiles = []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))[:per_class]
        for j in range(per_class):
            img = images[idx[j]] if j < len(idx) else np.zeros_like(images[0])
            rgb = cv2.cvtColor(cv2.resize(img.astype(np.uint8), (tw, tile),
                                          interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
            if j == 0:
                name = class_names[c][-14:]
                cv2.putText(rgb, name, (2, tile - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.3 * tile / 64,
                            (0, 200, 255), 1)
            cv2.rectangle(rgb, (0, 0), (tw - 1, tile - 1), (90, 90, 90), 1)
            tiles.append(rgb)
    montage = build_montages(tiles, (tw, tile), (per_class, len(classes)))[0]
    return cv2.cvtColor(montage, cv2.COLOR_BGR2RGB)


def pk_batches(labels: np.ndarray, batch_size: int, rng: np.random.Generator,
               n_batches: int | None = None, groups: np.ndarray | None = None
               ) -> list[np.ndarray]:
    """Class-balanced batches for in-batch training: P classes x K images each.

    P is all classes when they fit (at least 2 images per class per batch); each class is
    walked through a fresh permutation, so an epoch sees every image about once. ``groups``
    (a group id per label value, e.g. the alphabet of each character): each batch takes its
    classes from one group as far as it has them, so in-batch negatives are the hard ones (two
    characters of one alphabet), then fills up from the others.
    """
    labels = np.asarray(labels).ravel()
    classes, order, starts, counts = _class_index(labels)
    if len(classes) < 2:
        raise DataError(f"need at least 2 classes to train, found {len(classes)}")
    if counts.min() < 2:
        raise DataError(f"class {int(classes[counts.argmin()])} has a single image; need at "
                        "least 2")
    p = int(min(len(classes), max(2, batch_size // 4)))
    k = max(2, batch_size // p)
    if n_batches is None:
        n_batches = max(1, len(labels) // (p * k))
    pools = [order[s:s + c] for s, c in zip(starts, counts)]
    queues = [rng.permutation(pool) for pool in pools]
    batches = []
    group_of = None if groups is None else np.asarray(groups)[classes]
    for _ in range(n_batches):
        chosen: Sequence[int] | np.ndarray
        if p >= len(classes):
            chosen = range(p)
        elif group_of is not None:
            g = group_of[rng.integers(len(classes))]     # a group, by its share of the classes
            same = rng.permutation(np.flatnonzero(group_of == g))[:p]
            rest = rng.permutation(np.flatnonzero(group_of != g))[:p - len(same)]
            chosen = np.concatenate([same, rest])
        else:
            chosen = rng.choice(len(classes), p, replace=False)
        batch = []
        for c in chosen:
            if len(queues[c]) < k:
                queues[c] = np.concatenate([queues[c], rng.permutation(pools[c])])
            batch.append(queues[c][:k])
            queues[c] = queues[c][k:]
        batches.append(np.concatenate(batch))
    return batches
