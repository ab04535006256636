"""Training (seed part B): ``Trainer``, reporting progress through callbacks.

The default path embeds each class-balanced batch once and learns from every pair inside it
(B embeddings -> B(B-1)/2 pairs); ``pairing="fixed"`` is the seed's recipe (one positive and one
negative pair per image, each image embedded once per pair). Every loss of the registry
(``losses.LOSSES``) has both forms. A run stops at ``epochs``, at ``seconds`` of wall clock, or
when a callback asks; the best validation epoch's weights are kept and written atomically.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import weights
from .calibrate import (Calibration, calibrate, evaluate_embeddings, operating_points,
                        pca_2d)
from .config import TrainConfig
from .data import Dataset, load_dataset
from .distributed import cluster_role
from .errors import DataError
from .losses import LOSSES
from .preprocess import Prep
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
    from .data import stratified_split
    idx = stratified_split(ds.labels, "test", test_fraction=n / len(ds), seed=seed)
    return ds.subset(idx)


def check_classes(train_ds: Dataset, val_ds: Dataset, test_ds: Dataset | None = None) -> None:
    """``DataError`` unless every split holds at least 2 classes and sizes the network takes."""
    for name, ds in (("training", train_ds), ("validation", val_ds), ("test", test_ds)):
        if ds is None:
            continue
        if len(np.unique(ds.labels)) < 2:
            raise DataError(f"the {name} split has fewer than 2 classes: a siamese network "
                            f"needs at least 2 to tell same from different")
    for name, ds in (("validation", val_ds), ("test", test_ds)):
        if ds is not None and train_ds.images.shape[1:] != ds.images.shape[1:]:
            raise DataError(f"training images are {train_ds.images.shape[1:]} but {name} images "
                            f"{ds.images.shape[1:]}")


def load_splits(cfg: TrainConfig) -> tuple[Dataset, Dataset, Dataset]:
    """The train, validation and test splits a config asks for (``data.load_dataset``)."""
    from .data import is_user_spec
    if not is_user_spec(cfg.dataset) and cfg.input_size != 28:
        raise DataError(f"input_size applies to your own images (folder: or zip:); {cfg.dataset} "
                        f"is 28-px MNIST")
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


class Trainer:
    """One training run (minGPT's shape): ``Trainer(config, callbacks, out).run()``.

    The run's state lives on the instance (step, epoch, the best epoch so far, the clock); each
    method does one thing: build the network and its step functions, plan an epoch, take a
    step, validate, decide whether to stop, and finish (restore the best weights, save).
    Callbacks see the same events as always.

    ``strategy``: a ``tf.distribute`` strategy (``MirroredStrategy`` over several devices,
    ``MultiWorkerMirroredStrategy`` over several processes), created by the caller before
    TensorFlow runs anything. The model, optimizer and augmentation state are built in its
    scope; every worker derives the same global batch plan from the seed and each replica takes
    its share, interleaved by class; in-batch pairs span the global batch (``global_pairs``);
    BatchNorm statistics are averaged across replicas before every validation and the save;
    stop and validation decisions are agreed by all workers; only the chief writes files.
    """

    def __init__(self, config: TrainConfig = TrainConfig(), callbacks: list[Callback] | tuple = (),
                 out: str | os.PathLike | None = None, train_data: Dataset | None = None,
                 val_data: Dataset | None = None, strategy=None, test_data: Dataset | None = None):
        self.t_start = time.perf_counter()
        self.cfg = cfg = config
        self.callbacks = list(callbacks)
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        self.is_chief, workers = cluster_role(strategy)
        self.multi_worker = workers > 1
        if not self.is_chief:
            out = None                      # workers other than the chief write nothing
        self.out = writable_prefix(out, "out") if out is not None else None   # before training
        if train_data is None or val_data is None:
            loaded = load_splits(cfg)
            train_data = loaded[0] if train_data is None else train_data
            val_data = loaded[1] if val_data is None else val_data
            test_data = loaded[2] if test_data is None else test_data
        self.train_ds = subsample(train_data, cfg.max_train, cfg.seed)
        if cfg.rotated_classes:
            from .data import with_rotated_classes
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
        self.agreed = np.zeros(4)   # the workers' flags summed, as of the last step
        self.global_pairs = (strategy is not None and cfg.global_pairs and cfg.pairing == "batch"
                             and self.loss.rows is not None)

    # --- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        """The network, optimizer, augmentation state and the compiled step functions."""
        import keras
        import tensorflow as tf

        from .model import ModelConfig, build_siamese

        cfg = self.cfg
        keras.utils.set_random_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.model_cfg = ModelConfig.from_train(cfg, input_size=self.train_ds.images.shape[1])
        # Built-in datasets are MNIST-style already: their preprocessing is the 28-px default.
        self.prep = cfg.prep if self.train_ds.user_data else Prep(self.model_cfg.input_size)
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            self.siamese, self.emb = build_siamese(self.model_cfg)
            self.head = self.siamese.get_layer("same_head")
            self.distance = self.siamese.get_layer("distance")
            self.train_vars = self.emb.trainable_variables + (
                self.head.trainable_variables if self.loss.uses_head else [])
            self.optimizer = keras.optimizers.Adam(learning_rate=cfg.learning_rate)
            self.optimizer.build(self.train_vars)
            self.aug_seed = keras.random.SeedGenerator(cfg.seed + 1)
            self.aug_strength = tf.Variable(0.0 if cfg.augment_warmup else 1.0, trainable=False)
        fn = tf.function(reduce_retracing=True, autograph=False)
        if self.strategy is not None:
            self.step_fn = fn(self._step_distributed)
            self._sync_bn = fn(self._sync_batchnorm)
        else:
            self.step_fn = (fn(self._step_fixed) if cfg.pairing == "fixed" else
                            tf.function(self._step_batch, reduce_retracing=True, autograph=False,
                                        jit_compile=cfg.jit_compile))
        self.forward = fn(lambda x: self.emb(x, training=False))

    def _embed_train(self, x, replica=None):
        if self.cfg.augment:
            from .augment import random_affine
            x = random_affine(x, self.aug_strength, self.aug_seed, replica)
        return self.emb(x, training=True)

    def _apply(self, loss, tape):
        grads = tape.gradient(loss, self.train_vars)
        self.optimizer.apply_gradients(zip(grads, self.train_vars))
        return loss

    def _step_batch(self, x, y):
        """Embed a class-balanced batch once; the loss over every pair (or triplet) inside it."""
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = self.loss.in_batch(self._embed_train(x), y, self.margin, self.head)
        return self._apply(loss, tape)

    def _step_fixed(self, xs, y):
        """xs: [k, B, H, W, 1] (pairs: a, b; triplets: anchor, positive, negative), embedded in
        one forward pass."""
        import tensorflow as tf
        k, b = tf.shape(xs)[0], tf.shape(xs)[1]
        with tf.GradientTape() as tape:
            e = self._embed_train(tf.reshape(xs, tf.concat([[k * b], tf.shape(xs)[2:]], 0)))
            e = tf.reshape(e, [k, b, -1])
            loss = self.loss.pairwise(e, y, self.margin, self.head, self.distance)
        return self._apply(loss, tape)

    # --- across replicas ----------------------------------------------------------------

    def _step_distributed(self, x, y, flags):
        """One step on every replica; returns the global batch's loss and the workers' flags
        (``_local_flags``) summed over the replicas: every decision that must be taken by all
        workers together rides on the step's own collectives (a worker that validated or
        stopped alone would leave the others waiting for ever)."""
        loss, agreed = self.strategy.run(self._replica_step, args=(x, y, flags))
        return (self.strategy.reduce("SUM", loss, axis=None),
                self.strategy.experimental_local_results(agreed)[0])

    def _replica_step(self, x, y, flags):
        import tensorflow as tf
        ctx = tf.distribute.get_replica_context()
        rid = ctx.replica_id_in_sync_group
        with _on_replica_device(ctx):
            agreed = ctx.all_reduce("SUM", tf.identity(flags))
        with tf.GradientTape() as tape:
            if self.cfg.pairing == "fixed":
                k, b = tf.shape(x)[0], tf.shape(x)[1]
                e = self._embed_train(tf.reshape(x, tf.concat([[k * b], tf.shape(x)[2:]], 0)), rid)
                value = self.loss.pairwise(tf.reshape(e, [k, b, -1]), y, self.margin, self.head,
                                           self.distance) / self.replicas
                loss = value
            elif self.global_pairs:
                e = self._embed_train(x, rid)
                with _on_replica_device(ctx):
                    both = ctx.all_gather(tf.stop_gradient(
                        tf.concat([e, tf.cast(y[:, None], e.dtype)], 1)), axis=0)
                value = self.loss.rows(e, y, both[:, :-1], tf.cast(both[:, -1], y.dtype),
                                       rid * tf.shape(e)[0], self.margin, self.head)
                # Each pair's term is symmetric and its other half sits in another row, against
                # a gradient-free column: twice the rows' gradient is the whole gradient.
                loss = 2.0 * value
            else:   # each replica's own pairs; the optimizer sums the replicas' gradients
                value = self.loss.in_batch(self._embed_train(x, rid), y, self.margin,
                                           self.head) / self.replicas
                loss = value
        self._apply(loss, tape)
        return value, agreed

    def _shards(self, ib: np.ndarray, yb: np.ndarray):
        """The global batch as per-replica values: replica r takes every R-th image of the
        class-ordered batch, so each holds K/R images of every class (contiguous shares would
        leave some replicas without negatives)."""
        r_count = self.replicas
        n = ib.shape[-1] // r_count * r_count
        ib, yb = ib[..., :n], yb[:n]
        x = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: self.x_train[ib[..., ctx.replica_id_in_sync_group::r_count]])
        y = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: yb[ctx.replica_id_in_sync_group::r_count])
        return x, y

    def _sync_batchnorm(self):
        """Average the BatchNorm moving statistics over the replicas (Keras keeps them per
        replica): validation and the saved model then see the whole batch's statistics."""
        import tensorflow as tf

        def average():
            ctx = tf.distribute.get_replica_context()
            for v in self.emb.non_trainable_variables:
                with _on_replica_device(ctx):
                    mean = ctx.all_reduce("MEAN", tf.identity(v.value))
                v.assign(mean)
            return tf.constant(0)
        self.strategy.run(average)

    def _local_flags(self) -> list[float]:
        """This worker's view, agreed by all workers in the next step: [stop asked, time up,
        progress, validation due]."""
        cfg = self.cfg
        return [float(any(cb.stop_requested() for cb in self.callbacks)),
                float(bool(cfg.seconds and self.elapsed() >= cfg.seconds)), self.progress(),
                float(bool(cfg.val_every_seconds
                           and self.train_time() - self.last_val >= cfg.val_every_seconds))]

    # --- data -------------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.groups = None
        if self.cfg.group_batches:
            from .data import class_groups
            self.groups = class_groups(self.train_ds.class_names)
        self.x_train = self.train_ds.images[..., None].astype(np.float32)
        self.y_train = self.train_ds.labels.astype(np.int32)
        self.x_val = self.val_ds.images[..., None].astype(np.float32)
        self.val_pairs = make_pairs(self.val_ds.labels, VAL_PAIR_SEED, n_pairs=self.cfg.val_pairs)
        self.map_idx = np.random.default_rng(VAL_PAIR_SEED).permutation(len(self.val_ds))[:MAP_POINTS]
        self.steps_per_epoch = len(self.epoch_plan())
        self.total_steps = self.steps_per_epoch * self.cfg.epochs if self.cfg.epochs else None
        # Short runs (tests, quick demos) must not spend most of their steps warming up.
        self.warmup = (WARMUP if self.total_steps is None
                       else max(1, min(WARMUP, self.total_steps // 10)))

    def epoch_plan(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """One epoch as (image indices, labels) per batch; images are gathered per step, so an
        epoch of 60k fixed pairs never sits in memory as copies."""
        cfg, y_train, rng = self.cfg, self.y_train, self.rng
        if cfg.pairing == "batch":
            return [(i, y_train[i]) for i in pk_batches(y_train, cfg.batch_size, rng,
                                                         groups=self.groups)]
        if self.loss.items == 3:
            idx = np.stack(make_triplets(y_train, rng))             # [3, N]
            y = np.zeros(idx.shape[1], np.int32)
        else:
            p = make_pairs(y_train, rng)
            idx, y = np.stack([p.a, p.b]), p.label.astype(np.int32)
        bs = cfg.batch_size
        return [(idx[:, i:i + bs], y[i:i + bs]) for i in range(0, idx.shape[1], bs)]

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> TrainEnd:
        """Train; report through the callbacks; save to ``out`` if given."""
        self._build()
        self._prepare()
        cfg = self.cfg
        begin = TrainBegin(cfg.to_dict(), len(self.train_ds), len(self.val_ds),
                           self.steps_per_epoch, self.total_steps, list(self.train_ds.class_names))
        self._emit("on_train_begin", begin)
        self.history: list[dict] = []
        self.best: dict = {"score": (-1.0, -1.0)}
        self.val_seconds = 0.0     # spent validating: excluded from train_seconds
        self.step, self.epoch, self.reason = 0, 0, "completed"
        self.last_val = 0.0        # training time at the last validation
        self.window: list[float] = []   # losses since the last validation
        self.t0 = time.perf_counter()
        while self.reason == "completed" and (cfg.epochs is None or self.epoch < cfg.epochs):
            self._run_epoch()
        return self._finish()

    def _run_epoch(self) -> None:
        cfg = self.cfg
        self.epoch += 1
        for ib, yb in self.epoch_plan():
            self.reason = self._stop_reason()
            if self.reason != "completed":
                break
            self._train_step(ib, yb)
            if self.multi_worker:
                due = self.agreed[3] > 0
            else:
                due = bool(cfg.val_every_seconds and (
                    self.train_time() - self.last_val >= cfg.val_every_seconds))
            if due:
                self._validate_now()       # mid-epoch validation: long epochs stay visible
        time_up = (self.agreed[1] > 0 if self.multi_worker
                   else bool(cfg.seconds and self.elapsed() >= cfg.seconds))
        if self.reason == "completed" and time_up:
            self.reason = "time"
        last = self.reason != "completed" or (cfg.epochs is not None and self.epoch >= cfg.epochs)
        if cfg.val_every_epoch or last:
            if self.window:   # validate partial epochs too: a stopped run keeps its last progress
                self._validate_now()
            elif not self.history:
                self.end_epoch([])

    def _stop_reason(self) -> str:
        """"stopped" when a callback asks, "time" past the budget, else "completed" (go on).
        Across workers: as all of them agreed in the last step (so all stop at the same step,
        one step after the first of them wanted to)."""
        if self.multi_worker:
            stop, time_up = self.agreed[0] > 0, self.agreed[1] > 0
        else:
            stop = any(cb.stop_requested() for cb in self.callbacks)
            time_up = bool(self.cfg.seconds and self.elapsed() >= self.cfg.seconds)
        return "stopped" if stop else "time" if time_up else "completed"

    def _train_step(self, ib: np.ndarray, yb: np.ndarray) -> None:
        cfg = self.cfg
        # Across workers the schedules (learning rate, augmentation) follow the workers' mean
        # progress as of the last step: each worker's own clock would give each its own
        # learning rate, and different weights.
        prog = self.agreed[2] / self.replicas if self.multi_worker else self.progress()
        self.optimizer.learning_rate.assign(_lr_at(cfg.learning_rate, prog, self.step, self.warmup))
        if cfg.augment and cfg.augment_warmup:
            # Clean images first: the network learns the basics faster, then generalises under
            # the full augmentation (BENCHMARKS.md, ablation).
            self.aug_strength.assign(min(1.0, prog / cfg.augment_warmup))
        if self.strategy is not None:
            import tensorflow as tf
            loss, agreed = self.step_fn(*self._shards(ib, yb),
                                        tf.constant(self._local_flags(), tf.float32))
            loss, self.agreed = float(loss), agreed.numpy()
        else:
            loss = float(self.step_fn(self.x_train[ib], yb))
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

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Embeddings of [N, S, S, 1] float images, in inference mode."""
        return np.concatenate([self.forward(x[i:i + 1000]).numpy()
                               for i in range(0, len(x), 1000)])

    def validate(self) -> tuple[Calibration, np.ndarray, np.ndarray]:
        """Calibration on the fixed validation pairs, their distances, and the embeddings."""
        e = self.embed(self.x_val)
        d = np.linalg.norm(e[self.val_pairs.a] - e[self.val_pairs.b], axis=1)
        return calibrate(d, self.val_pairs.label), d, e

    def _validate_now(self) -> None:
        self.end_epoch(self.window)
        self.window, self.last_val = [], self.train_time()

    def end_epoch(self, epoch_losses: list[float]) -> None:
        """Validate, keep the weights if they are the best so far, and tell the callbacks."""
        tv = time.perf_counter()
        if self.strategy is not None:
            self._sync_bn()
        cal, d, e = self.validate()
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
                             cal=cal, metrics=m, d=d, y=self.val_pairs.label)
        labels = self.val_pairs.label
        self._emit("on_epoch_end", EpochEnd(
            self.epoch, m, d[labels == SAME], d[labels != SAME], pca_2d(e[self.map_idx]),
            self.val_ds.labels[self.map_idx], self.elapsed(), is_best))

    # --- the end ----------------------------------------------------------------------------

    def _finish(self) -> TrainEnd:
        """Restore the best epoch's weights, write the model (atomically) and report."""
        import keras
        import tensorflow as tf
        from sklearn.metrics import roc_curve

        best, cfg = self.best, self.cfg
        self.siamese.set_weights(best["weights"])
        fpr, tpr, _ = roc_curve(best["y"] == SAME, -best["d"])
        cal: Calibration = best["cal"]
        test = None
        if self.test_ds is not None and self.is_chief:
            # The one look at the test split: the chosen epoch, at the threshold chosen on
            # validation.
            emb = self.embed(self.test_ds.images[..., None].astype(np.float32))
            test = evaluate_embeddings(emb, self.test_ds.labels, cal.threshold, seed=cfg.seed)
        meta = {
            "model": self.model_cfg.to_dict(),
            "preprocess": self.prep.to_dict(),
            "holdout": self.val_ds.holdout,
            "splits": {name: {"images": len(ds), "classes": int(len(np.unique(ds.labels)))}
                       for name, ds in (("train", self.train_ds), ("val", self.val_ds),
                                        ("test", self.test_ds)) if ds is not None},
            "test": test,
            "operating_points": operating_points(best["d"], best["y"]),
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
            meta = weights.save(self.out, self.siamese, self.emb, meta)
        end = TrainEnd(self.reason, self.epoch, best["epoch"], best["metrics"], (fpr, tpr),
                       time.perf_counter() - self.t_start,
                       str(self.out) if self.out is not None else None, meta)
        self._emit("on_train_end", end)
        return end

    def _emit(self, hook: str, event) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(event)


def _on_replica_device(ctx):
    """Pin a collective's input to the replica's own device: under MultiWorkerMirroredStrategy
    an all-reduce or all-gather of a tensor without one fails ("destinations can not be
    empty"). A worker's devices hold consecutive replica ids."""
    import tensorflow as tf
    devices = ctx.strategy.extended.worker_devices
    rid = tf.get_static_value(ctx.replica_id_in_sync_group)
    return tf.device(devices[int(rid) % len(devices)] if rid is not None else devices[0])


def train(config: TrainConfig = TrainConfig(), callbacks: list[Callback] | tuple = (),
          out: str | os.PathLike | None = None, train_data: Dataset | None = None,
          val_data: Dataset | None = None, strategy=None, test_data: Dataset | None = None
          ) -> TrainEnd:
    """Train a siamese network; report through ``callbacks``; save to ``out`` if given
    (``Trainer(...).run()``)."""
    return Trainer(config, callbacks, out, train_data, val_data, strategy, test_data).run()
