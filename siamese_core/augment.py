"""Training-time augmentation: one random affine warp per image (rotation, zoom, shift).

A single ``ImageProjectiveTransformV3`` op instead of Keras' RandomRotation + RandomTranslation +
RandomZoom layers (three warps, three interpolations): the same family of transforms with one
resampling, cheaper to trace and to run (see BENCHMARKS.md). ``strength`` (0..1, a tensor) scales
every range, so the schedule can ease augmentation in while the network is still learning the
basics.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

MAX_ROTATION = 0.04 * 2 * math.pi   # radians (±14°)
MAX_SHIFT = 0.08                    # fraction of the image side
MAX_ZOOM = 0.10                     # ± relative scale


def affine_matrices(angle, scale, shift_x, shift_y, size: int, mirror=None,
                    width: int | None = None):
    """Rows ``[a0, a1, a2, b0, b1, b2, 0, 0]`` mapping each *output* pixel (x, y) to the input
    pixel it samples: rotate by ``angle`` and scale by ``scale`` about the centre, then shift;
    ``mirror`` (-1 or 1 per image): -1 also mirrors the image left-right. The image is ``size``
    high and ``width`` wide (None: square)."""
    cy = (size - 1) / 2.0
    cx = cy if width is None else (width - 1) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # input = R(-angle) / scale @ M @ (output - centre - shift) + centre, M = diag(mirror, 1)
    ox, oy = cx + shift_x, cy + shift_y
    a0, b0 = (cos, -sin) if mirror is None else (cos * mirror, -sin * mirror)
    zeros = tf.zeros_like(angle)
    return tf.stack([a0, sin, cx - a0 * ox - sin * oy,
                     b0, cos, cy - b0 * ox - cos * oy, zeros, zeros], axis=1)


def random_affine(images, strength, seed: keras.random.SeedGenerator, replica=None,
                  flip: bool = False, fill: str = "CONSTANT"):
    """Warp a float batch ``[N, H, W, 1]`` with a fresh random affine transform per image
    (``flip``: half of them mirrored left-right too); pixels from outside the image are 0, the
    ink's background (``fill="CONSTANT"``), or the nearest edge pixel (``"NEAREST"``: photos,
    whose border is no background). ``replica`` (a replica id, under a ``tf.distribute``
    strategy): folded into the seed, so that replicas, which share one mirrored seed generator,
    draw different warps."""
    n, size, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    s = tf.cast(strength, tf.float32)

    # One draw for all parameters: each random op adds seed-state ops to the traced graph. (A
    # fifth row only with flip: runs without it draw exactly what they drew before it existed.)
    rows = 5 if flip else 4
    if replica is None:
        r = keras.random.uniform((rows, n), -1.0, 1.0, seed=seed)
    else:
        folded = tf.random.experimental.stateless_fold_in(tf.cast(seed.next(), tf.int64), replica)
        r = tf.random.stateless_uniform((rows, n), folded, -1.0, 1.0)
    # A mirror is no stronger or weaker at any strength: the fifth row, unscaled.
    mirror = tf.where(r[4] < 0, -1.0, 1.0) if flip else None
    r = r[:4] * s
    m = affine_matrices(r[0] * MAX_ROTATION, 1.0 + r[1] * MAX_ZOOM, r[2] * (MAX_SHIFT * width),
                        r[3] * (MAX_SHIFT * size), size, mirror, width)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=m, output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode=fill)
