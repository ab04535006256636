"""Training (seed part B): ``Trainer``, reporting progress through callbacks.

The default path embeds each class-balanced batch once and learns from every pair inside it
(B embeddings -> B(B-1)/2 pairs); ``pairing="fixed"`` is the seed's recipe (one positive and one
negative pair per image, each image embedded once per pair). Every loss of the registry
(``losses.LOSSES``) has both forms. A run stops at ``epochs``, at ``seconds`` of wall clock, or
when a callback asks; the best validation epoch's weights are kept and written atomically.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import forgery, references, weights
from .calibrate import (ALL_PAIRS_MAX, Calibration, calibrate, evaluate_embeddings,
                        holdout_interval, operating_points, pca_2d)
from .config import TrainConfig
from .data import (Dataset, check_classes, class_groups, is_user_spec, load_dataset, stratified_split,
                   with_rotated_classes)
from .distributed import Replicas, replicas_for
from .errors import DataError
from .losses import LOSSES, forged_labels
from .preprocess import Prep
from .test_time import embedder
from .pairs import SAME, make_pairs, make_triplets, pk_batches
from .validate import writable_prefix

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
    notes: tuple[str, ...] = ()      # what loading the data skipped or changed, in words


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
    metrics: dict          # validation (best epoch)
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
    idx = stratified_split(ds.labels, "test", test_fraction=n / len(ds), seed=seed)
    return ds.subset(idx)


def load_splits(cfg: TrainConfig) -> tuple[Dataset, Dataset, Dataset]:
    """The train, validation and test splits a config asks for (``data.load_dataset``)."""
    for name, value, default in (("input_size", cfg.input_size, 28),
                                 ("input_aspect", cfg.input_aspect, 1)):
        if not is_user_spec(cfg.dataset) and value != default:
            raise DataError(f"{name} applies to your own images (folder: or zip:); "
                            f"{cfg.dataset} is 28-px MNIST")
    train, val, test = (load_dataset(cfg.dataset, s, cfg.holdout, cfg.prep)
                        for s in ("train", "val", "test"))
    return train, val, test


def _lr_at(base: float, progress: float, step: int, warmup: int = WARMUP) -> float:
    """Linear warm-up then cosine decay to 2 % of ``base`` over the run's progress."""
    warm = min(1.0, step / warmup)
    return base * warm * (0.02 + 0.98 * 0.5 * (1.0 + np.cos(np.pi * min(progress, 1.0))))


def warm_up() -> None:
    """Import TensorFlow and pay its one-time costs (lazy imports, the first ``tf.function``,
    gradient, optimizer step and convolution: ~0.4 s after the import) on a tiny model, so that a
    worker waiting for a job, or a benchmark before its clock starts, has them behind it."""
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


@dataclass(frozen=True)
class Decision:
    """What every worker does before a step, as all of them agreed: any worker's stop request,
    time-up or due validation is everyone's, and the schedules follow their mean progress. In
    one process the agreement is the process's own view."""

    stop: bool = False          # a callback asked
    time_up: bool = False       # past the time budget
    validate: bool = False      # val_every_seconds of training since the last validation
    progress: float = 0.0       # 0..1 of the run (epochs or seconds, whichever is further)

    def to_vector(self) -> np.ndarray:
        return np.array([self.stop, self.time_up, self.validate, self.progress], np.float64)

    @classmethod
    def agreed(cls, summed: np.ndarray, replicas: int) -> "Decision":
        """From the replicas' vectors summed."""
        return cls(bool(summed[0] > 0), bool(summed[1] > 0), bool(summed[2] > 0),
                   float(summed[3] / replicas))

    @property
    def reason(self) -> str | None:
        """Why the run ends here ("stopped", "time"), or None: go on."""
        return "stopped" if self.stop else "time" if self.time_up else None


class Trainer:
    """One training run (minGPT's shape): ``Trainer(config, callbacks, out).run()``.

    ``run`` is the one loop: per step, decide (``_decide``: stop, time, validation, progress,
    agreed by all replicas), then act. Every difference between one process and several
    replicas lives in ``self.replicas`` (``distributed.Replicas``): where variables are created,
    how a global batch is fed and agreed on, what a replica's rows are paired with.

    ``strategy``: a ``tf.distribute`` strategy (``MirroredStrategy`` over several devices,
    ``MultiWorkerMirroredStrategy`` over several processes), created by the caller before
    TensorFlow runs anything. Only the chief writes files.
    """

    def __init__(self, config: TrainConfig = TrainConfig(), callbacks: list[Callback] | tuple = (),
                 out: str | os.PathLike | None = None, train_data: Dataset | None = None,
                 val_data: Dataset | None = None, strategy=None, test_data: Dataset | None = None):
        self.t_start = time.perf_counter()
        self.cfg = cfg = config.resolved()      # kind "auto" decided from the images
        self.callbacks = list(callbacks)
        self.replicas: Replicas = replicas_for(strategy)
        # Workers other than the chief write nothing; the out path is checked before training.
        self.out = (writable_prefix(out, "out") if out is not None and self.replicas.is_chief
                    else None)
        if train_data is None or val_data is None:
            loaded = load_splits(cfg)
            train_data = loaded[0] if train_data is None else train_data
            val_data = loaded[1] if val_data is None else val_data
            test_data = loaded[2] if test_data is None else test_data
        self.train_ds = subsample(train_data, cfg.max_train, cfg.seed)
        if cfg.rotated_classes:
            self.train_ds = with_rotated_classes(self.train_ds)
        self.val_ds = subsample(val_data, cfg.max_val, cfg.seed + 1)
        self.test_ds = (None if test_data is None
                        else subsample(test_data, cfg.max_val, cfg.seed + 2))
        check_classes(self.train_ds, self.val_ds, self.test_ds)
        # New classes at validation: rank epochs by how well distances separate pairs (ROC
        # AUC) first; pair accuracy at one threshold is the coarser measure.
        self.by_auc = self.val_ds.holdout == "class"
        self.loss = LOSSES[cfg.loss]
        self.margin = cfg.effective_margin
        # The hard negatives' weight goes to the loss only where it weighs them (pair losses).
        self.hard = {"hard_weight": cfg.hard_weight} if cfg.hard_weight else {}
        # In-batch pairs across the replicas' global batch, where the loss adds up over rows.
        self.global_pairs = (self.replicas.count > 1 and cfg.global_pairs
                             and cfg.pairing == "batch" and self.loss.additive)

        # The data, as the steps and validation use it.
        self.rng = np.random.default_rng(cfg.seed)
        self.groups = None
        if cfg.group_batches:
            self.groups = class_groups(self.train_ds.class_names)
        self.x_train = self.train_ds.images[..., None].astype(np.float32)
        self.y_train = self.train_ds.labels.astype(np.int32)
        # Skilled forgeries (``forgery``) are hard negatives of the person they imitate: rows
        # after each in-batch pairing batch's genuine ones, each with a label no other row has.
        self.forgery_of = self.train_ds.forgery_of if self.train_ds.n_forgeries else None
        self.forged_y = np.zeros(0, np.int32)   # their labels: losses.forged_label
        if self.forgery_of is not None:
            self.x_train = np.concatenate(
                [self.x_train, self.train_ds.forgeries[..., None].astype(np.float32)])
            self.forged_y = forged_labels(self.forgery_of)
        self.x_val = self.val_ds.images[..., None].astype(np.float32)
        self.val_pairs = make_pairs(self.val_ds.labels, VAL_PAIR_SEED, n_pairs=cfg.val_pairs)
        # With forgeries, the threshold is calibrated on genuine pairs against skilled ones.
        self.x_val_forged = self.val_ds.forgeries[..., None].astype(np.float32)
        self.val_skilled: tuple[np.ndarray, np.ndarray] | None = None
        if self.val_ds.n_forgeries:
            self.val_skilled = forgery.sample_skilled_pairs(
                self.val_ds.labels, self.val_ds.forgery_of, cfg.val_pairs // 2, VAL_PAIR_SEED)
        self.map_idx = np.random.default_rng(VAL_PAIR_SEED).permutation(len(self.val_ds))[:MAP_POINTS]
        self.steps_per_epoch = len(self.epoch_plan())
        self.total_steps = self.steps_per_epoch * cfg.epochs if cfg.epochs else None
        # Short runs (tests, quick demos) must not spend most of their steps warming up.
        self.warmup = (WARMUP if self.total_steps is None
                       else max(1, min(WARMUP, self.total_steps // 10)))

        # The network and its compiled functions (``_build``, when the run starts).
        self.model_cfg: Any = None
        # Built-in datasets are MNIST-style already: their preprocessing is the 28-px default.
        h, w = (int(n) for n in self.train_ds.images.shape[1:])
        self.prep = cfg.prep if self.train_ds.user_data else Prep(h, width=w)
        self.siamese: Any = None
        self.emb: Any = None
        # The embedding network the saved model runs: ``emb``, or it beside its pixels.
        self.saved_emb: Any = None
        self.head: Any = None
        self.distance: Any = None
        self.train_vars: list = []
        self.optimizer: Any = None
        self.aug_seed: Any = None
        self.aug_strength: Any = None
        self.step_fn: Any = None
        self.forward: Any = None

        # The run's progress.
        self.t0 = self.t_start          # reset when the loop starts
        self.step = 0                   # global, counted from 1 after the first
        self.epoch = 0
        self.reason: str | None = None  # "completed" | "time" | "stopped" once it ends
        self.window: list[float] = []   # losses since the last validation
        self.history: list[dict] = []   # validation metrics, one entry per validation
        self.best: dict = {"score": (-1.0, -1.0)}
        self.val_seconds = 0.0          # spent validating: excluded from train_seconds
        self.last_val = 0.0             # training time at the last validation

    @property
    def is_chief(self) -> bool:
        return self.replicas.is_chief

    # --- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        """The network, optimizer, augmentation state and the compiled step functions."""
        import keras
        import tensorflow as tf

        from .model import ModelConfig, build_siamese

        cfg = self.cfg
        keras.utils.set_random_seed(cfg.seed)
        h, w = self.train_ds.images.shape[1:]
        self.model_cfg = ModelConfig.from_train(cfg, input_size=h, input_width=w)
        with self.replicas.scope():
            self.siamese, self.emb = build_siamese(self.model_cfg)
            self.head = self.siamese.get_layer("same_head")
            self.distance = self.siamese.get_layer("distance")
            self.train_vars = self.emb.trainable_variables + (
                self.head.trainable_variables if self.loss.uses_head else [])
            self.optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate)
            self.optimizer.build(self.train_vars)
            self.aug_seed = keras.random.SeedGenerator(cfg.seed + 1)
            self.aug_strength = tf.Variable(0.0 if cfg.augment_warmup else 1.0, trainable=False)
        self.step_fn = self.replicas.compile(self._replica_step, cfg.jit_compile)
        self._save_as(self.emb)

    def _save_as(self, emb) -> None:
        """The embedding network the saved model runs, and the compiled inference on it that
        validation and the final numbers use (a new network needs a new trace)."""
        import tensorflow as tf
        self.saved_emb = emb
        self.forward = tf.function(lambda x: emb(x, training=False), reduce_retracing=True,
                                   autograph=False)

    def _replica_step(self, x, y):
        """One replica's share of a step (all of it in one process): embed its images once, its
        loss, and the optimizer step (the optimizer sums the replicas' gradients)."""
        import tensorflow as tf
        cfg, rid = self.cfg, self.replicas.replica_id()
        with tf.GradientTape() as tape:
            if cfg.pairing == "fixed":
                # x: [k, B, H, W, 1] (pairs: a, b; triplets: anchor, positive, negative), embedded
                # in one forward pass.
                k, b = tf.shape(x)[0], tf.shape(x)[1]
                e = self._embed_train(tf.reshape(x, tf.concat([[k * b], tf.shape(x)[2:]], 0)), rid)
                ref = self.replicas.reference(e, y, across=False)
                value = ref.share * self.loss.pairwise(tf.reshape(e, [k, b, -1]), y, self.margin,
                                                       self.head, self.distance)
            else:
                e = self._embed_train(x, rid)
                ref = self.replicas.reference(e, y, across=self.global_pairs)
                value = ref.share * self.loss.batch(e, y, self.margin, self.head, ref.e, ref.y,
                                                    ref.offset, **self.hard)
            loss = ref.grad * value
        grads = tape.gradient(loss, self.train_vars)
        self.optimizer.apply_gradients(zip(grads, self.train_vars))
        return value

    def _embed_train(self, x, replica=None):
        if self.cfg.augment:
            from .augment import random_affine
            x = random_affine(x, self.aug_strength, self.aug_seed, replica, flip=self.cfg.flip,
                              fill="NEAREST" if self.prep.kind == "photo" else "CONSTANT")
        return self.emb(x, training=True)

    # --- data -------------------------------------------------------------------------------

    def epoch_plan(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """One epoch as (image indices, labels) per global batch; images are gathered per step,
        so an epoch of 60k fixed pairs never sits in memory as copies."""
        cfg, y_train, rng = self.cfg, self.y_train, self.rng
        if cfg.pairing == "batch":
            return [self._with_forgeries(i) for i in pk_batches(y_train, cfg.batch_size, rng,
                                                                groups=self.groups)]
        if self.loss.items == 3:
            idx = np.stack(make_triplets(y_train, rng))             # [3, N]
            y = np.zeros(idx.shape[1], np.int32)
        else:
            p = make_pairs(y_train, rng)
            idx, y = np.stack([p.a, p.b]), p.label.astype(np.int32)
        bs = cfg.batch_size
        return [(idx[:, i:i + bs], y[i:i + bs]) for i in range(0, idx.shape[1], bs)]

    def _with_forgeries(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A batch's image indices and labels, plus (with forgeries) ``forged_share`` forged
        rows per genuine one, forgeries of the batch's own people where there are any:
        each labelled apart (``losses.forged_label``), the negative of every other row, its
        person's too."""
        y = self.y_train[i]
        if self.forgery_of is None:
            return i, y
        n = max(1, round(len(i) * self.cfg.forged_share))
        pool = np.flatnonzero(np.isin(self.forgery_of, y))
        if not len(pool):
            pool = np.arange(len(self.forgery_of))
        f = self.rng.choice(pool, n, replace=len(pool) < n)
        return (np.concatenate([i, len(self.y_train) + f]),
                np.concatenate([y, self.forged_y[f]]).astype(np.int32))

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> TrainEnd:
        """Train; report through the callbacks; save to ``out`` if given."""
        cfg = self.cfg
        self._build()
        self._emit("on_train_begin", TrainBegin(cfg.to_dict(), len(self.train_ds),
                                                len(self.val_ds), self.steps_per_epoch,
                                                self.total_steps, list(self.train_ds.class_names),
                                                tuple(self.train_ds.notes)))
        self.t0 = time.perf_counter()
        with self.replicas.running():
            while self.reason is None:
                self.epoch += 1
                for ib, yb in self.epoch_plan():
                    if self._decide():
                        break
                    self._train_step(ib, yb)
                else:
                    if cfg.epochs is not None and self.epoch >= cfg.epochs:
                        self.reason = "completed"
                    else:
                        self._decide()     # time up at an epoch's end: no empty epoch after it
                if cfg.val_every_epoch or self.reason is not None:
                    if self.window:   # partial epochs too: a stopped run keeps its last progress
                        self._validate_now()
                    elif not self.history:
                        self.end_epoch([])
        return self._finish()

    def _decide(self) -> bool:
        """The one place for the run's decisions, agreed by all replicas (so all of them stop,
        validate and schedule alike, at the same step): validate when due; set the learning
        rate and augmentation for the next step; end the run (True) when a callback asked or
        the time is up."""
        cfg = self.cfg
        wants = Decision(
            stop=any(cb.stop_requested() for cb in self.callbacks),
            time_up=bool(cfg.seconds and self.elapsed() >= cfg.seconds),
            validate=bool(cfg.val_every_seconds
                          and self.train_time() - self.last_val >= cfg.val_every_seconds),
            progress=self.progress())
        d = Decision.agreed(self.replicas.agree(wants.to_vector()), self.replicas.count)
        if d.validate and self.window:
            self._validate_now()           # mid-epoch validation: long epochs stay visible
        self.reason = d.reason
        self.optimizer.learning_rate.assign(_lr_at(cfg.learning_rate, d.progress, self.step,
                                                   self.warmup))
        if cfg.augment and cfg.augment_warmup:
            # Clean images first: the network learns the basics faster, then generalises under
            # the full augmentation (BENCHMARKS.md, ablation).
            self.aug_strength.assign(min(1.0, d.progress / cfg.augment_warmup))
        return self.reason is not None

    def _train_step(self, ib: np.ndarray, yb: np.ndarray) -> None:
        loss = float(self.step_fn(*self.replicas.feed(self.x_train, ib, yb)))
        if not np.isfinite(loss):
            raise DataError("training diverged (loss is not finite); lower the learning rate")
        self.window.append(loss)
        self.step += 1
        prog, elapsed = self.progress(), self.elapsed()
        self._emit("on_batch_end", BatchEnd(self.epoch, self.step, self.steps_per_epoch, loss,
                                            prog, elapsed,
                                            elapsed * (1 - prog) / prog if prog > 0 else None))

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def train_time(self) -> float:
        """Wall clock spent training, validation excluded."""
        return self.elapsed() - self.val_seconds

    def progress(self) -> float:
        """0..1 of the run: of its epochs or of its time budget, whichever is further along."""
        parts = []
        if self.total_steps:
            parts.append(self.step / self.total_steps)
        if self.cfg.seconds:
            parts.append(self.elapsed() / self.cfg.seconds)
        return min(1.0, max(parts))

    # --- validation -------------------------------------------------------------------------

    def embed(self, x: np.ndarray, test_time: str = "none") -> np.ndarray:
        """Embeddings of [N, S, S, 1] float images, in inference mode; ``test_time`` "tta":
        as the saved model computes them (test_time.py)."""
        own = self.model_cfg.embedding_dim if self.model_cfg.pixels else None
        return embedder(self._embed_once, test_time, own)(x)

    def _embed_once(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.forward(x[i:i + 1000]).numpy()
                               for i in range(0, len(x), 1000)])

    def validate(self, test_time: str = "none"
                 ) -> tuple[Calibration, np.ndarray, np.ndarray, np.ndarray]:
        """Calibration on the fixed validation pairs, their distances and labels, and the
        embeddings. With skilled forgeries the pairs are the genuine ones against genuine-
        forged pairs of one person: the threshold that matters for signatures."""
        e = self.embed(self.x_val, test_time)
        d = np.linalg.norm(e[self.val_pairs.a] - e[self.val_pairs.b], axis=1)
        y = self.val_pairs.label
        if self.val_skilled is not None:
            g, f = self.val_skilled
            skilled = np.linalg.norm(e[g] - self.embed(self.x_val_forged, test_time)[f], axis=1)
            d = np.concatenate([d[y == SAME], skilled])
            y = np.concatenate([y[y == SAME], np.full(len(skilled), 1 - SAME, y.dtype)])
            return calibrate(d, y, balanced=True), d, y, e   # sets of unequal sizes
        return calibrate(d, y), d, y, e

    def _validate_now(self) -> None:
        self.end_epoch(self.window)
        self.window, self.last_val = [], self.train_time()

    def end_epoch(self, epoch_losses: list[float]) -> None:
        """Validate, keep the weights if they are the best so far, and tell the callbacks."""
        tv = time.perf_counter()
        # Keras keeps BatchNorm's moving statistics per replica: validation and the saved
        # model see their average.
        self.replicas.average(self.emb.non_trainable_variables)
        cal, d, y, e = self.validate()
        self.val_seconds += time.perf_counter() - tv
        m = cal.to_dict()
        elapsed = self.elapsed()
        # train_seconds: wall clock spent training, validation excluded (for time-to-accuracy).
        m.update(pair_accuracy=m.pop("accuracy"), epoch=self.epoch, step=self.step,
                 epochs_seen=round(self.step / self.steps_per_epoch, 3),
                 train_loss=float(np.mean(epoch_losses)) if epoch_losses else float("nan"),
                 elapsed=elapsed, train_seconds=elapsed - self.val_seconds)
        self.history.append(m)
        score = (cal.roc_auc, cal.accuracy) if self.by_auc else (cal.accuracy, cal.roc_auc)
        is_best = score > self.best["score"]
        if is_best:
            self.best.update(score=score, epoch=self.epoch, weights=self.siamese.get_weights(),
                             cal=cal, metrics=m, d=d, y=y)
        self._emit("on_epoch_end", EpochEnd(
            self.epoch, m, d[y == SAME], d[y != SAME], pca_2d(e[self.map_idx]),
            self.val_ds.labels[self.map_idx], self.elapsed(), is_best))

    # --- the end ----------------------------------------------------------------------------

    def _interval(self, emb: np.ndarray, labels: np.ndarray, accuracy: float,
                  threshold: float) -> dict:
        """The test pair accuracy's 95 % interval (``calibrate.holdout_interval``): over the
        held-out classes and their images for a class hold-out, over the images otherwise."""
        by_class = self.val_ds.holdout == "class"
        idx = np.arange(len(labels))
        if len(idx) > ALL_PAIRS_MAX:
            idx = stratified_split(labels, "test", test_fraction=ALL_PAIRS_MAX / len(idx),
                                   seed=self.cfg.seed)[:ALL_PAIRS_MAX]
        lo, hi = holdout_interval(emb[idx], labels[idx], threshold, by_class, seed=self.cfg.seed)
        return {"pair_accuracy_low": max(0.0, accuracy + lo),
                "pair_accuracy_high": min(1.0, accuracy + hi),
                "interval_over": "classes" if by_class else "images"}

    def _finish(self) -> TrainEnd:
        """Restore the best epoch's weights, write the model (atomically) and report."""
        import keras
        import tensorflow as tf
        from sklearn.metrics import roc_curve

        best, cfg, tt = self.best, self.cfg, self.cfg.test_time
        self.siamese.set_weights(best["weights"])
        if cfg.pixels:
            self._fuse_pixels()
        if tt != "none" or cfg.pixels:
            # The epoch was chosen on the network's plain embeddings (cheaper); its threshold
            # and every number below are of the embeddings the saved model computes.
            tta_cal, d, y, _ = self.validate(tt)
            m = tta_cal.to_dict()
            m["pair_accuracy"] = m.pop("accuracy")
            best.update(cal=tta_cal, d=d, y=y, metrics={**best["metrics"], **m})
        fpr, tpr, _ = roc_curve(best["y"] == SAME, -best["d"])
        cal: Calibration = best["cal"]
        test = None
        if self.test_ds is not None and self.is_chief:
            # The one look at the test split: the chosen epoch, at the threshold chosen on
            # validation.
            emb = self.embed(self.test_ds.images[..., None].astype(np.float32), tt)
            test = evaluate_embeddings(emb, self.test_ds.labels, cal.threshold, seed=cfg.seed)
            f_test = self._forgery_embeddings(self.test_ds)
            test.update(self._forgery_rates(self.test_ds, emb, f_test, cal.threshold))
            test.update(self._interval(emb, self.test_ds.labels, test["pair_accuracy"],
                                       cal.threshold))
        e_val = self.embed(self.x_val, tt)
        f_val = self._forgery_embeddings(self.val_ds)
        val_rates = self._forgery_rates(self.val_ds, e_val, f_val, cal.threshold)
        # Several references of one identity: the score's rule chosen on validation.
        rule, chosen = references.choose(e_val, self.val_ds.labels, *f_val, seed=cfg.seed)
        if test is not None and self.test_ds is not None and chosen:
            test["references"] = references.enrolment_rates(
                emb, self.test_ds.labels, rule, cal.threshold, chosen["k"], *f_test,
                seed=cfg.seed) or None
        random_points = None
        if val_rates:   # the threshold control also says how often another person passes
            a, b = self.val_pairs.a, self.val_pairs.b
            random_points = operating_points(np.linalg.norm(e_val[a] - e_val[b], axis=1),
                                             self.val_pairs.label)
        meta = {
            "model": self.model_cfg.to_dict(),
            "preprocess": self.prep.to_dict(),
            "test_time": tt,
            "holdout": self.val_ds.holdout,
            "splits": {name: {"images": len(ds), "classes": int(len(np.unique(ds.labels)))}
                       for name, ds in (("train", self.train_ds), ("val", self.val_ds),
                                        ("test", self.test_ds)) if ds is not None},
            "test": test,
            # What the threshold was chosen on; with forgeries the false accepts of the
            # operating points are of skilled forgeries, and validation says both kinds.
            "calibrated_on": "skilled forgeries" if self.val_skilled is not None else "pairs",
            "validation_rates": val_rates or None,
            "references": {**rule.to_dict(), **chosen},
            "operating_points": operating_points(best["d"], best["y"]),
            "operating_points_random": random_points,
            "train": cfg.to_dict(),
            "loss": cfg.loss,
            "margin": cfg.effective_margin,
            "dataset": cfg.dataset,
            "class_names": list(self.train_ds.class_names),
            "seed": cfg.seed,
            "calibration": cal.to_dict(),
            "metrics": {k: best["metrics"][k] for k in ("pair_accuracy", "roc_auc", "eer",
                                                        "threshold", "eer_threshold", "n_pairs")},
            "best_epoch": best["epoch"],
            "epochs_done": self.epoch,
            "train_seconds": round(self.elapsed(), 1),
            "history": self.history,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        }
        if self.out is not None:
            meta = weights.save(self.out, self.siamese, self.saved_emb, meta)
        end = TrainEnd(self.reason or "completed", self.epoch, best["epoch"], best["metrics"], (fpr, tpr),
                       time.perf_counter() - self.t_start,
                       str(self.out) if self.out is not None else None, meta)
        self._emit("on_train_end", end)
        return end

    def _fuse_pixels(self) -> None:
        """The saved model's embedding from here on: the chosen network beside its inputs'
        pixels (``model.with_pixels``), weighed by validation distances (``pixels.py``)."""
        from .model import with_pixels
        from .pixels import fusion_weight

        try:
            w = fusion_weight(self.embed(self.x_val), self.x_val, seed=self.cfg.seed)
        except ValueError as e:
            raise DataError(f"cannot weigh the pixels beside the network: {e} (train with "
                            f"pixels off)") from None
        self.model_cfg = replace(self.model_cfg, pixels=round(w, 6))
        self._save_as(with_pixels(self.emb, self.model_cfg))

    def _forgery_embeddings(self, ds: Dataset) -> tuple[np.ndarray | None, np.ndarray | None]:
        """A split's forgeries embedded as the saved model embeds, and whom each imitates."""
        if not ds.n_forgeries:
            return None, None
        return (self.embed(ds.forgeries[..., None].astype(np.float32), self.cfg.test_time),
                ds.forgery_of)

    def _forgery_rates(self, ds: Dataset, emb: np.ndarray,
                       forged: tuple[np.ndarray | None, np.ndarray | None],
                       threshold: float) -> dict:
        """``forgery.verification_rates`` of a split with forgeries ({} without); ``forged``:
        its ``_forgery_embeddings``."""
        f_emb, of = forged
        if f_emb is None or of is None:
            return {}
        return forgery.verification_rates(emb, ds.labels, f_emb, of, threshold,
                                          seed=self.cfg.seed)

    def _emit(self, hook: str, event) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(event)


def train(config: TrainConfig = TrainConfig(), callbacks: list[Callback] | tuple = (),
          out: str | os.PathLike | None = None, train_data: Dataset | None = None,
          val_data: Dataset | None = None, strategy=None, test_data: Dataset | None = None
          ) -> TrainEnd:
    """Train a siamese network; report through ``callbacks``; save to ``out`` if given
    (``Trainer(...).run()``)."""
    return Trainer(config, callbacks, out, train_data, val_data, strategy, test_data).run()
