"""Training (seed part B), reporting progress through callbacks.

The default path embeds each class-balanced batch once and learns from every pair inside it
(B embeddings -> B(B-1)/2 pairs); ``pairing="fixed"`` is the seed's recipe (one positive and one
negative pair per image, each image embedded once per pair). Both support BCE, contrastive and
triplet losses. A run stops at ``epochs``, at ``seconds`` of wall clock, or when a callback asks;
the best validation epoch's weights are kept and written atomically.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from . import weights
from .validate import writable_prefix
from .calibrate import Calibration, calibrate, pca_2d
from .config import PAIRINGS, TrainConfig  # noqa: F401  (re-exported)
from .data import Dataset, load_dataset
from .errors import DataError
from .pairs import SAME, make_pairs, make_triplets, pk_batches

VAL_PAIR_SEED = 1234      # validation pairs are fixed so epochs are comparable
MAP_POINTS = 600          # embeddings sent for the 2-D map
WARMUP = 10               # steps of linear learning-rate warm-up (30 was slower to 95 %)


# --- events (plain, picklable: they cross a process boundary to the app) ------------------------

@dataclass
class TrainBegin:
    config: dict
    n_train: int
    n_val: int
    steps_per_epoch: int
    total_steps: int | None
    class_names: list[str]


@dataclass
class BatchEnd:
    epoch: int
    step: int              # global, from 1
    steps_per_epoch: int
    loss: float
    progress: float        # 0..1 of the run (epochs or seconds, whichever ends first)
    elapsed: float
    eta: float | None


@dataclass
class EpochEnd:
    epoch: int
    metrics: dict          # pair_accuracy, roc_auc, eer, threshold, train_loss, ...
    pos_distances: np.ndarray
    neg_distances: np.ndarray
    embedding_2d: np.ndarray
    embedding_labels: np.ndarray
    elapsed: float
    is_best: bool


@dataclass
class TrainEnd:
    reason: str            # "completed" | "time" | "stopped"
    epochs_done: int
    best_epoch: int
    metrics: dict
    roc: tuple[np.ndarray, np.ndarray]
    elapsed: float
    out: str | None
    meta: dict = field(repr=False, default_factory=dict)


class Callback:
    """Override what you need; ``stop_requested`` is polled between batches."""

    def on_train_begin(self, event: TrainBegin) -> None: ...
    def on_batch_end(self, event: BatchEnd) -> None: ...
    def on_epoch_end(self, event: EpochEnd) -> None: ...
    def on_train_end(self, event: TrainEnd) -> None: ...

    def stop_requested(self) -> bool:
        return False


def subsample(ds: Dataset, n: int | None, seed: int) -> Dataset:
    """A stratified subset of ``n`` images (all of them when ``n`` is None)."""
    if n is None or n >= len(ds):
        return ds
    from .data import stratified_split
    idx = stratified_split(ds.labels, "test", test_fraction=n / len(ds), seed=seed)
    return ds.subset(idx)


def check_classes(train_ds: Dataset, val_ds: Dataset) -> None:
    """``DataError`` unless both splits hold at least 2 classes and sizes the network takes."""
    for name, ds in (("training", train_ds), ("validation", val_ds)):
        if len(np.unique(ds.labels)) < 2:
            raise DataError(f"the {name} split has fewer than 2 classes: a siamese network "
                            f"needs at least 2 to tell same from different")
    if train_ds.images.shape[1:] != val_ds.images.shape[1:]:
        raise DataError(f"training images are {train_ds.images.shape[1:]} but validation images "
                        f"{val_ds.images.shape[1:]}")


def _lr_at(base: float, progress: float, step: int, warmup: int = WARMUP) -> float:
    """Linear warm-up then cosine decay to 2 % of ``base`` over the run's progress."""
    warm = min(1.0, step / warmup)
    return base * warm * (0.02 + 0.98 * 0.5 * (1.0 + np.cos(np.pi * min(progress, 1.0))))


def warm_up() -> None:
    """Import TensorFlow and pay its one-time costs (lazy imports, the first ``tf.function``,
    gradient, optimizer step and convolution: ~0.4 s after the import) on a tiny model, so that a
    worker waiting for a job, or a benchmark before its clock starts, has them behind it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from . import augment, losses, model  # noqa: F401  (imported now rather than on the clock)

    net = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, use_bias=False),
                            keras.layers.BatchNormalization(), keras.layers.MaxPooling2D(2),
                            keras.layers.Flatten(), keras.layers.Dense(2),
                            keras.layers.UnitNormalization()])
    opt = keras.optimizers.Adam()

    @tf.function(autograph=False)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(x, training=True)))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    step(tf.zeros((2, 8, 8, 1))).numpy()


def train(config: TrainConfig = TrainConfig(), callbacks: list[Callback] | tuple = (),
          out: str | os.PathLike | None = None, train_data: Dataset | None = None,
          val_data: Dataset | None = None) -> TrainEnd:
    """Train a siamese network; report through ``callbacks``; save to ``out`` if given."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from . import losses
    from .augment import random_affine
    from .model import ModelConfig, build_siamese

    t_start = time.perf_counter()
    cfg = config
    if out is not None:
        out = writable_prefix(out, "out")   # before training, not after it
    train_ds = subsample(train_data or load_dataset(cfg.dataset, "train"), cfg.max_train, cfg.seed)
    val_ds = subsample(val_data or load_dataset(cfg.dataset, "test"), cfg.max_val, cfg.seed + 1)
    check_classes(train_ds, val_ds)
    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    model_cfg = ModelConfig.from_train(cfg, input_size=train_ds.images.shape[1])
    siamese, emb = build_siamese(model_cfg)
    head = siamese.get_layer("same_head")
    dist_layer = siamese.get_layer("distance")
    train_vars = emb.trainable_variables + (head.trainable_variables if cfg.loss == "bce" else [])
    optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate)
    optimizer.build(train_vars)
    margin = cfg.effective_margin
    aug_seed = keras.random.SeedGenerator(cfg.seed + 1)
    aug_strength = tf.Variable(0.0 if cfg.augment_warmup else 1.0, trainable=False)

    def embed_train(x):
        if cfg.augment:
            x = random_affine(x, aug_strength, aug_seed)
        return emb(x, training=True)

    def apply(loss, tape):
        grads = tape.gradient(loss, train_vars)
        optimizer.apply_gradients(zip(grads, train_vars))
        return loss

    @tf.function(reduce_retracing=True, jit_compile=cfg.jit_compile, autograph=False)
    def step_batch(x, y):
        with tf.GradientTape() as tape:
            e = embed_train(x)
            if cfg.loss == "contrastive":
                loss = losses.batch_contrastive_loss(e, y, margin)
            elif cfg.loss == "triplet":
                loss = losses.batch_all_triplet_loss(e, y, margin)
            else:
                loss = losses.batch_bce_loss(e, y, head)
        return apply(loss, tape)

    @tf.function(reduce_retracing=True, autograph=False)
    def step_fixed(xs, y):
        # xs: [k, B, H, W, 1] (pairs: a, b; triplets: anchor, positive, negative); one forward pass.
        k, b = tf.shape(xs)[0], tf.shape(xs)[1]
        with tf.GradientTape() as tape:
            e = embed_train(tf.reshape(xs, tf.concat([[k * b], tf.shape(xs)[2:]], 0)))
            e = tf.reshape(e, [k, b, -1])
            d_ab = dist_layer([e[0], e[1]])
            if cfg.loss == "contrastive":
                loss = losses.contrastive_loss(d_ab, y, margin)
            elif cfg.loss == "bce":
                loss = losses.bce_loss(head(d_ab), y)
            else:
                loss = losses.triplet_loss(d_ab, dist_layer([e[0], e[2]]), margin)
        return apply(loss, tape)

    @tf.function(reduce_retracing=True, autograph=False)
    def forward(x):
        return emb(x, training=False)

    x_train = train_ds.images[..., None].astype(np.float32)
    y_train = train_ds.labels.astype(np.int32)
    x_val = val_ds.images[..., None].astype(np.float32)
    val_pairs = make_pairs(val_ds.labels, VAL_PAIR_SEED, n_pairs=cfg.val_pairs)
    map_idx = np.random.default_rng(VAL_PAIR_SEED).permutation(len(val_ds))[:MAP_POINTS]

    def epoch_plan() -> list[tuple[np.ndarray, np.ndarray]]:
        """One epoch as (image indices, labels) per batch; images are gathered per step, so an
        epoch of 60k fixed pairs never sits in memory as copies."""
        if cfg.pairing == "batch":
            return [(i, y_train[i]) for i in pk_batches(y_train, cfg.batch_size, rng)]
        if cfg.loss == "triplet":
            idx = np.stack(make_triplets(y_train, rng))             # [3, N]
            y = np.zeros(idx.shape[1], np.int32)
        else:
            p = make_pairs(y_train, rng)
            idx, y = np.stack([p.a, p.b]), p.label.astype(np.int32)
        bs = cfg.batch_size
        return [(idx[:, i:i + bs], y[i:i + bs]) for i in range(0, idx.shape[1], bs)]

    def validate() -> tuple[Calibration, np.ndarray, np.ndarray]:
        e = np.concatenate([forward(x_val[i:i + 1000]).numpy() for i in range(0, len(x_val), 1000)])
        d = np.linalg.norm(e[val_pairs.a] - e[val_pairs.b], axis=1)
        return calibrate(d, val_pairs.label), d, e

    steps_per_epoch = len(epoch_plan())
    total_steps = steps_per_epoch * cfg.epochs if cfg.epochs else None
    begin = TrainBegin(cfg.to_dict(), len(train_ds), len(val_ds), steps_per_epoch, total_steps,
                       list(train_ds.class_names))
    for cb in callbacks:
        cb.on_train_begin(begin)

    def stop_asked() -> bool:
        return any(cb.stop_requested() for cb in callbacks)

    # Short runs (tests, quick demos) must not spend most of their steps warming up.
    warmup = WARMUP if total_steps is None else max(1, min(WARMUP, total_steps // 10))
    history: list[dict] = []
    best: dict = {"score": (-1.0, -1.0)}
    val_seconds = 0.0   # spent validating: excluded from train_seconds
    step, epoch, reason = 0, 0, "completed"
    t0 = time.perf_counter()

    def progress_now() -> float:
        parts = []
        if total_steps:
            parts.append(step / total_steps)
        if cfg.seconds:
            parts.append((time.perf_counter() - t0) / cfg.seconds)
        return min(1.0, max(parts))

    def end_epoch(epoch_losses: list[float]) -> None:
        nonlocal val_seconds
        tv = time.perf_counter()
        cal, d, e = validate()
        val_seconds += time.perf_counter() - tv
        m = cal.to_dict()
        elapsed = time.perf_counter() - t0
        # train_seconds: wall clock spent training, validation excluded (for time-to-accuracy).
        m.update(pair_accuracy=m.pop("accuracy"), epoch=epoch, step=step,
                 epochs_seen=round(step / steps_per_epoch, 3),
                 train_loss=float(np.mean(epoch_losses)) if epoch_losses else float("nan"),
                 elapsed=elapsed, train_seconds=elapsed - val_seconds)
        history.append(m)
        score = (cal.accuracy, cal.roc_auc)
        is_best = score > best["score"]
        if is_best:
            best.update(score=score, epoch=epoch, weights=siamese.get_weights(), cal=cal,
                        metrics=m, d=d, y=val_pairs.label)
        ev = EpochEnd(epoch, m, d[val_pairs.label == SAME], d[val_pairs.label != SAME],
                      pca_2d(e[map_idx]), val_ds.labels[map_idx], time.perf_counter() - t0,
                      is_best)
        for cb in callbacks:
            cb.on_epoch_end(ev)

    def train_time() -> float:
        return time.perf_counter() - t0 - val_seconds

    last_val = 0.0   # training time at the last validation
    step_fn = step_fixed if cfg.pairing == "fixed" else step_batch
    window: list[float] = []   # losses since the last validation
    while reason == "completed" and (cfg.epochs is None or epoch < cfg.epochs):
        epoch += 1
        for ib, yb in epoch_plan():
            if stop_asked():
                reason = "stopped"
                break
            if cfg.seconds and time.perf_counter() - t0 >= cfg.seconds:
                reason = "time"
                break
            prog = progress_now()
            optimizer.learning_rate.assign(_lr_at(cfg.learning_rate, prog, step, warmup))
            if cfg.augment and cfg.augment_warmup:
                # Clean images first: the network learns the basics faster, then generalises
                # under the full augmentation (BENCHMARKS.md, ablation).
                aug_strength.assign(min(1.0, prog / cfg.augment_warmup))
            loss = float(step_fn(x_train[ib], yb))
            if not np.isfinite(loss):
                raise DataError("training diverged (loss is not finite); lower the learning rate")
            window.append(loss)
            step += 1
            prog = progress_now()
            elapsed = time.perf_counter() - t0
            ev = BatchEnd(epoch, step, steps_per_epoch, loss, prog, elapsed,
                          elapsed * (1 - prog) / prog if prog > 0 else None)
            for cb in callbacks:
                cb.on_batch_end(ev)
            if cfg.val_every_seconds and train_time() - last_val >= cfg.val_every_seconds:
                end_epoch(window)       # mid-epoch validation: long epochs stay visible
                window, last_val = [], train_time()
        if reason == "completed" and cfg.seconds and time.perf_counter() - t0 >= cfg.seconds:
            reason = "time"
        last = reason != "completed" or (cfg.epochs is not None and epoch >= cfg.epochs)
        if cfg.val_every_epoch or last:
            if window:  # validate partial epochs too: a stopped run keeps its last progress
                end_epoch(window)
                window, last_val = [], train_time()
            elif not history:
                end_epoch([])

    siamese.set_weights(best["weights"])
    from sklearn.metrics import roc_curve
    fpr, tpr, _ = roc_curve(best["y"] == SAME, -best["d"])
    cal: Calibration = best["cal"]
    meta = {
        "model": model_cfg.to_dict(),
        "train": cfg.to_dict(),
        "loss": cfg.loss,
        "margin": cfg.effective_margin,
        "dataset": cfg.dataset,
        "class_names": list(train_ds.class_names),
        "seed": cfg.seed,
        "calibration": cal.to_dict(),
        "metrics": {k: best["metrics"][k] for k in ("pair_accuracy", "roc_auc", "eer", "threshold",
                                                    "eer_threshold", "n_pairs")},
        "best_epoch": best["epoch"],
        "epochs_done": epoch,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "history": history,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
    }
    if out is not None:
        meta = weights.save(out, siamese, emb, meta)
    end = TrainEnd(reason, epoch, best["epoch"], best["metrics"], (fpr, tpr),
                   time.perf_counter() - t_start, str(out) if out is not None else None, meta)
    for cb in callbacks:
        cb.on_train_end(end)
    return end


def with_overrides(config: TrainConfig, **kw) -> TrainConfig:
    """A copy of ``config`` with the given fields replaced (``None`` values are ignored)."""
    return replace(config, **{k: v for k, v in kw.items() if v is not None})
