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


def affine_matrices(angle, scale, shift_x, shift_y, size: int):
    """Rows ``[a0, a1, a2, b0, b1, b2, 0, 0]`` mapping each *output* pixel (x, y) to the input
    pixel it samples: rotate by ``angle`` and scale by ``scale`` about the centre, then shift."""
    c = (size - 1) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # input = R(-angle) / scale @ (output - centre - shift) + centre
    ox, oy = c + shift_x, c + shift_y
    zeros = tf.zeros_like(angle)
    return tf.stack([cos, sin, c - cos * ox - sin * oy,
                     -sin, cos, c + sin * ox - cos * oy, zeros, zeros], axis=1)


def random_affine(images, strength, seed: keras.random.SeedGenerator, replica=None):
    """Warp a float batch ``[N, H, W, 1]`` with a fresh random affine transform per image;
    pixels from outside the image are 0 (background). ``replica`` (a replica id, under a
    ``tf.distribute`` strategy): folded into the seed, so that replicas, which share one mirrored
    seed generator, draw different warps."""
    n, size = tf.shape(images)[0], images.shape[1]
    s = tf.cast(strength, tf.float32)

    # One draw for all four parameters: each random op adds seed-state ops to the traced graph.
    if replica is None:
        r = keras.random.uniform((4, n), -1.0, 1.0, seed=seed) * s
    else:
        folded = tf.random.experimental.stateless_fold_in(tf.cast(seed.next(), tf.int64), replica)
        r = tf.random.stateless_uniform((4, n), folded, -1.0, 1.0) * s
    m = affine_matrices(r[0] * MAX_ROTATION, 1.0 + r[1] * MAX_ZOOM, r[2] * (MAX_SHIFT * size),
                        r[3] * (MAX_SHIFT * size), size)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=m, output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
