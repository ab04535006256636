"""Raw pixels beside the network: the weight of an image's own pixels in a model's embedding.

On faces of people never seen in training, the network trained for 120 s and the z-scored
pixels of its inputs each miss what the other catches: on Extended Yale B (3 folds), distances
added, each divided by its mean over pairs, gave 10-way one-shot 95.2 % against 91.1 % (pixels)
and 87.8 % (network), EER 5.3 % against 9.3 and 8.2 (BENCHMARKS.md section 10). A model trained
with ``pixels=True`` carries that combination inside its embedding (``model.PixelFusion``), so
every verdict, gallery and threshold uses it with nothing else to keep.

The weight is label-free and set once after training: each part's mean distance over pairs of
validation images, so that both count alike (``fusion_weight``). NumPy only (no Keras here).
"""
from __future__ import annotations

import numpy as np

from .calibrate import pairwise_distances

# Below this norm an image is flat (one grey): its pixel part is zero (model.PixelFusion).
PIXEL_EPS = 1e-6
FUSION_IMAGES = 1000     # validation images for the mean distances: ~500k pairs, plenty


def unit_pixels(images: np.ndarray) -> np.ndarray:
    """[N, ...] images -> [N, P]: each image's pixels less their mean, scaled to unit length
    (zero for a flat image), as ``model.PixelFusion`` computes them."""
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    x = x - x.mean(1, keepdims=True)
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), PIXEL_EPS)).astype(
        np.float32)


def mean_distance(f: np.ndarray) -> float:
    """The mean Euclidean distance over all pairs of two different rows of ``f``."""
    f = np.asarray(f, np.float64)
    if len(f) < 2:
        raise ValueError("the mean distance needs two or more rows")
    return float(pairwise_distances(f, f)[~np.eye(len(f), dtype=bool)].mean())


def fusion_weight(embeddings: np.ndarray, images: np.ndarray, max_images: int = FUSION_IMAGES,
                  seed: int = 0) -> float:
    """The pixels' weight w for ``model.PixelFusion`` from a network's unit ``embeddings`` of
    ``images`` (validation): with m_net, m_pix each part's mean distance over pairs,
    w = m_net / sqrt(m_net^2 + m_pix^2), so that the fused squared distance is proportional to
    (d_net / m_net)^2 + (d_pix / m_pix)^2 — each part in units of its own typical distance."""
    if len(embeddings) != len(images):
        raise ValueError("one embedding per image")
    idx = np.arange(len(images))
    if len(idx) > max_images:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_images, replace=False))
    m_net = mean_distance(np.asarray(embeddings)[idx])
    m_pix = mean_distance(unit_pixels(np.asarray(images)[idx]))
    if not (m_net > 0 and m_pix > 0):
        raise ValueError("the images (or their embeddings) are all alike: no scale to fuse on")
    return m_net / float(np.hypot(m_net, m_pix))
