"""Two popular siamese recipes, re-implemented from their published hyperparameters, trained
the way they are published (one fixed positive and one negative pair per image, each image
embedded once per pair), for side-by-side timing against ``siamese_core.train``.

- keras-io "Image similarity estimation using a Siamese Network with a contrastive loss":
  BatchNorm -> Conv 4@5x5 tanh -> AvgPool -> Conv 16@5x5 tanh -> AvgPool -> Flatten ->
  BatchNorm -> Dense 10 tanh; distance -> BatchNorm -> Dense 1 sigmoid; contrastive loss on
  that output (margin 1); RMSprop; batch 16.
- PyImageSearch "Siamese networks with Keras, TensorFlow, and Deep Learning": (Conv 64@2x2 relu
  -> MaxPool -> Dropout 0.3) x 2 -> global average pool -> Dense 48; distance -> Dense 1
  sigmoid; binary cross-entropy; Adam; batch 64; inputs scaled to [0, 1].

Both output a "same" score in [0, 1]; validation uses 1 - score as the distance.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from siamese_core.calibrate import calibrate
from siamese_core.pairs import make_pairs


@dataclass
class Recipe:
    name: str
    batch_size: int
    scale: float                       # input multiplier
    build: Callable                    # () -> (siamese model, optimizer, loss_fn(y, pred))


def _distance_layer():
    from siamese_core.model import EuclideanDistance
    return EuclideanDistance()


def build_kerasio():
    import keras
    from keras import layers, ops
    inp = keras.Input((28, 28, 1))
    x = layers.BatchNormalization()(inp)
    x = layers.Conv2D(4, 5, activation="tanh")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(16, 5, activation="tanh")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(10, activation="tanh")(x)
    emb = keras.Model(inp, x)
    a, b = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    d = _distance_layer()([emb(a), emb(b)])
    out = layers.Dense(1, activation="sigmoid")(layers.BatchNormalization()(d))
    model = keras.Model([a, b], out)

    def loss(y, pred):  # label 1 = same: pull the score to 1 for same, under the margin else
        pred = ops.reshape(pred, (-1,))
        return ops.mean((1 - y) * ops.square(pred) + y * ops.square(ops.relu(1.0 - pred)))
    return model, keras.optimizers.RMSprop(), loss


def build_pyimagesearch():
    import keras
    from keras import layers, ops
    inp = keras.Input((28, 28, 1))
    x = inp
    for _ in range(2):
        x = layers.Conv2D(64, 2, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.3)(x)
    x = layers.GlobalAveragePooling2D()(x)
    emb = keras.Model(inp, layers.Dense(48)(x))
    a, b = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    d = _distance_layer()([emb(a), emb(b)])
    model = keras.Model([a, b], layers.Dense(1, activation="sigmoid")(d))

    def loss(y, pred):
        p = ops.clip(ops.reshape(pred, (-1,)), 1e-7, 1 - 1e-7)
        return -ops.mean(y * ops.log(p) + (1 - y) * ops.log(1 - p))
    return model, keras.optimizers.Adam(), loss


RECIPES = {
    "keras-io": Recipe("keras-io", 16, 1.0, build_kerasio),
    "pyimagesearch": Recipe("pyimagesearch", 64, 1 / 255.0, build_pyimagesearch),
}


def run(recipe: Recipe, x_train, y_train, x_val, val_pairs, seconds: float, seed: int = 0,
        val_every: float = 1.0, on_point: Callable | None = None) -> list[dict]:
    """Train for ``seconds`` of training time; validate every ``val_every`` seconds of it and at
    the end. Returns validation points: train_seconds (validation excluded), pair_accuracy,
    roc_auc."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model, opt, loss_fn = recipe.build()
    xt = (x_train[..., None] * recipe.scale).astype(np.float32)
    xv = (x_val[..., None] * recipe.scale).astype(np.float32)

    @tf.function(reduce_retracing=True, autograph=False)
    def step(a, b, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model([a, b], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function(reduce_retracing=True, autograph=False)
    def predict(a, b):
        return model([a, b], training=False)

    def validate(train_s):
        score = np.concatenate([predict(xv[val_pairs.a[i:i + 2000]], xv[val_pairs.b[i:i + 2000]])
                                .numpy().ravel() for i in range(0, len(val_pairs.a), 2000)])
        cal = calibrate(1.0 - score, val_pairs.label)
        p = {"train_seconds": train_s, "pair_accuracy": cal.accuracy, "roc_auc": cal.roc_auc}
        points.append(p)
        if on_point:
            on_point(p)

    points: list[dict] = []
    trained, t, last = 0.0, time.perf_counter(), 0.0
    done = False
    while not done:
        p = make_pairs(y_train, rng)            # a fresh 1 pos + 1 neg per image, each epoch
        y = p.label.astype(np.float32)
        for i in range(0, len(y), recipe.batch_size):
            sl = slice(i, i + recipe.batch_size)
            step(xt[p.a[sl]], xt[p.b[sl]], y[sl])
            now = trained + time.perf_counter() - t
            if now >= seconds:
                done = True
                break
            if now - last >= val_every:         # the clock stops while validating
                trained, last = now, now
                validate(trained)
                t = time.perf_counter()
    trained += time.perf_counter() - t
    validate(trained)
    return points
