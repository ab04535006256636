"""Training configuration: plain data, importable without TensorFlow (the app builds it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from . import validate as V
from .data import (HOLDOUTS, WIDE_INK_ASPECT, dataset_faces, dataset_forged_folders,
                   dataset_ink_aspect, dataset_kind,
                   is_user_spec)
from .errors import DataError, ImageError
from .losses import LOSSES as LOSS_REGISTRY
from .preprocess import FITS, KINDS, MAX_ASPECT, MAX_INPUT, MIN_INPUT, Prep
from .test_time import TEST_TIMES

LOSSES = tuple(LOSS_REGISTRY)        # choices, in the registry's order (default first)
DEFAULT_MARGIN = {n: s.default_margin or 0.0 for n, s in LOSS_REGISTRY.items()}
BLOCKS = ("conv-pool-bn", "conv-bn-pool")   # layer orders of a conv block (see model.py)
PAIRINGS = ("batch", "fixed")
MAX_DISTANCE = 2.0       # between unit-length embeddings
MAX_SECONDS = 7 * 24 * 3600.0   # a week: any larger budget is a typo (or inf)



def check_architecture(embedding_dim, filters, top_convs, input_size=None, *,
                       error=DataError, prefix: str = "") -> None:
    """The network sizes training allows; the one check for a training config (``DataError``)
    and for a saved model's metadata (``WeightsError``, names prefixed "model ")."""
    V.number(f"{prefix}embedding_dim", embedding_dim, 2, 1024, integer=True, error=error)
    if not isinstance(filters, (list, tuple)) or not 1 <= len(filters) <= 4:
        raise error(f"{prefix}filters: give 1 to 4 convolution blocks, e.g. 8,32,64")
    for f in filters:
        V.number(f"{prefix}filters", f, 1, 512, integer=True, error=error)
    V.number(f"{prefix}top_convs", top_convs, 0, 4, integer=True, error=error)
    if input_size is not None:
        V.number(f"{prefix}input_size", input_size, MIN_INPUT, MAX_INPUT, integer=True,
                 error=error)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in the model's metadata)."""

    dataset: str = "mnist-5k"
    # Validation and test hold out images of every class, or whole classes (verification of
    # new people or characters); "auto": classes for user data with enough of them (data.py).
    holdout: str = "auto"
    # How user images become network inputs (preprocess.Prep; built-in datasets are 28-px MNIST):
    # "ink" or "photo", "auto": chosen from the dataset's images (data.dataset_kind); fit None:
    # the kind's default.
    kind: str = "auto"
    input_size: int = 28
    # Inputs this many times as wide as high (preprocess.Prep.width): wide images such as
    # signatures keep their shape; 1: square.
    input_aspect: float = 1.0
    fit: str | None = None
    # Photos: crop each image to its face first (preprocess.crop_face), for photos of
    # people that are not tight face crops (a camera, a phone); images without one are skipped.
    face_crop: bool = False
    # Ink: inputs without grey levels (preprocess.Prep.binary); the recipe's choice for ink
    # with skilled forgeries, whose pen darkness can tell them apart instead of the writing.
    binary_ink: bool = False
    # Ink: strokes thinned to one pixel before the fit (preprocess.Prep.thin), so a pen's width
    # tells nothing either; with binary_ink, the recipe's choice for ink with skilled forgeries.
    thin_ink: bool = False
    # Training images mirrored left-right at random (faces, objects; not characters).
    flip: bool = False
    # Training images turned by 90, 180 and 270 degrees count as 3 more classes each (a drawn
    # character turned over is not that character): 4x the classes to tell apart.
    rotated_classes: bool = False
    # In-batch pairs: draw each batch's classes from one group (class folders nested in group
    # folders, e.g. Greek/alpha, Greek/beta) so negatives are the hard ones to tell apart.
    group_batches: bool = False
    loss: str = "contrastive"
    margin: float | None = None          # None: the loss's default (contrastive 1.2, triplet 0.5)
    embedding_dim: int = 64
    # 8 filters on the full-resolution first layer: one input channel needs few edge detectors,
    # and that layer's activations dominate the step time (BENCHMARKS.md).
    filters: tuple[int, ...] = (8, 32, 64)
    block: str = "conv-pool-bn"
    top_convs: int = 1                   # 3x3 convolutions on the last pooled maps (model.py)
    epochs: int | None = 12
    seconds: float | None = None
    batch_size: int = 100
    # Skilled forgeries (forgery.py) in each in-batch pairing batch: forged rows per genuine row,
    # forgeries of the batch's own people, each a negative of every other row.
    forged_share: float = 0.2
    # That share of the loss's negative half goes to the pairs of a forgery and the genuine
    # writing it imitates (losses.hard_mask): ~1 % of a batch's negatives, else weighed as such.
    hard_weight: float = 0.0
    learning_rate: float = 1e-2
    augment: bool = True
    augment_warmup: float = 0.3          # augmentation eases in over this fraction of the run
    # The saved model's embedding also holds the input's own pixels (pixels.py), weighed after
    # training by validation distances: photos of new people, where raw pixels see what a short
    # training misses.
    pixels: bool = False
    # "tta": the saved model embeds each image as the mean over small warps of it
    # (test_time.py), and its threshold is calibrated on such embeddings; "none": once.
    test_time: str = "none"
    seed: int = 0
    pairing: str = "batch"
    val_pairs: int = 4000
    val_every_seconds: float | None = None   # also validate mid-epoch, every so many seconds
    val_every_epoch: bool = True         # False: only every val_every_seconds, and at the end
    # Under a tf.distribute strategy: in-batch pairs span the global batch (all replicas), or
    # (False) each replica's own images only. Losses without a global form use their own.
    global_pairs: bool = True
    max_train: int | None = None         # subsample (tests, quick demos)
    max_val: int | None = None
    jit_compile: bool = False            # XLA: measured slower on CPU here (see BENCHMARKS.md)

    def __post_init__(self):
        # Every number through one validation layer: finite, in range, one line naming it.
        if self.loss not in LOSSES:
            raise DataError(f"unknown loss {self.loss!r}: use one of {', '.join(LOSSES)}")
        if self.block not in BLOCKS:
            raise DataError(f"unknown block {self.block!r}: use one of {', '.join(BLOCKS)}")
        if self.pairing not in PAIRINGS:
            raise DataError(f"unknown pairing {self.pairing!r}: use batch or fixed")
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise DataError("dataset must be a dataset spec such as mnist-5k")
        if self.holdout not in HOLDOUTS:
            raise DataError(f"unknown holdout {self.holdout!r}: use {', '.join(HOLDOUTS)}")
        V.number("input_size", self.input_size, MIN_INPUT, MAX_INPUT, integer=True)
        V.number("input_aspect", self.input_aspect, 1, MAX_ASPECT)
        if self.kind not in ("auto",) + KINDS:
            raise DataError(f"unknown kind {self.kind!r}: use auto, {' or '.join(KINDS)}")
        if self.kind != "auto":
            self._prep_of(self.kind)          # Prep's own check of the fit for the kind
        elif self.fit is not None and self.fit not in FITS:
            raise DataError(f"unknown fit {self.fit!r}: use {', '.join(FITS)}")
        if self.margin is not None:
            # Unit-length embeddings: distances lie in [0, 2], so a larger margin is never met.
            V.number("margin", self.margin, 0, MAX_DISTANCE, lo_open=True)
        check_architecture(self.embedding_dim, self.filters, self.top_convs)
        if self.epochs is None and self.seconds is None:
            raise DataError("give epochs, seconds, or both")
        if self.epochs is not None:
            V.number("epochs", self.epochs, 1, 100_000, integer=True)
        if self.seconds is not None:
            V.number("seconds", self.seconds, 0, MAX_SECONDS, lo_open=True)
        V.number("batch_size", self.batch_size, 4, 4096, integer=True)
        V.number("learning_rate", self.learning_rate, 0, 1, lo_open=True)
        V.number("forged_share", self.forged_share, 0, 4, lo_open=True)
        V.number("hard_weight", self.hard_weight, 0, 0.95)
        if self.hard_weight and self.loss == "triplet":
            raise DataError("hard_weight weighs pairs: use it with loss bce or contrastive")
        V.number("augment_warmup", self.augment_warmup, 0, 1)
        if self.test_time not in TEST_TIMES:
            raise DataError(f"unknown test_time {self.test_time!r}: use "
                            f"{' or '.join(TEST_TIMES)}")
        V.seed(self.seed)
        V.number("val_pairs", self.val_pairs, 10, 1_000_000, integer=True)
        if self.val_every_seconds is not None:
            V.number("val_every_seconds", self.val_every_seconds, 0, lo_open=True)
        if not self.val_every_epoch and not self.val_every_seconds:
            raise DataError("val_every_epoch=False needs val_every_seconds")
        for name in ("max_train", "max_val"):
            if getattr(self, name) is not None:
                V.number(name, getattr(self, name), 10, 10_000_000, integer=True)
        if self.jit_compile and self.augment:
            raise DataError("jit_compile needs augment=False: XLA has no CPU kernel for the "
                            "augmentation's image transforms")

    def _prep_of(self, kind: str) -> Prep:
        try:
            return Prep(int(self.input_size), self.fit, kind, face=bool(self.face_crop),
                        width=self.input_width, binary=bool(self.binary_ink),
                        thin=bool(self.thin_ink))
        except ImageError as e:
            raise DataError(str(e)) from None

    @property
    def prep(self):
        """The preprocessing of user images (``preprocess.Prep``), of the kind ``resolved``
        decides where it is "auto"; a fit that is not for that kind: ``DataError``."""
        return self._prep_of(self.resolved().kind)

    def resolved(self) -> "TrainConfig":
        """This config with kind "auto" decided: from the images of a ``folder:``/``zip:``
        dataset (``data.dataset_kind``), ink for the built-in datasets."""
        if self.kind != "auto":
            return self
        return replace(self, kind=dataset_kind(self.dataset)[0])

    @property
    def input_width(self) -> int:
        """Width in pixels of the network inputs: ``input_size`` x ``input_aspect``."""
        return round(self.input_size * float(self.input_aspect))

    @property
    def effective_margin(self) -> float:
        return float(DEFAULT_MARGIN[self.loss] if self.margin is None else self.margin)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["filters"] = list(self.filters)
        return d


# The Train page's defaults, measured end to end (click -> saved model) by bench/train_page.py.
DEMO_EPOCHS = 100
DEMO_SECONDS = 50.0
# Validate by the clock, not every ~1.2-s epoch: each validation (~80 ms) is training time lost
# and redraws charts in the browser. Every 4 s gave models as good, within seed-to-seed noise
# (BENCHMARKS.md); 2 s keeps the validation charts lively.
DEMO_VAL_EVERY_SECONDS = 2.0


def demo_config(**overrides) -> TrainConfig:
    """The configuration the Train page starts from."""
    kw: dict[str, Any] = dict(epochs=DEMO_EPOCHS, seconds=DEMO_SECONDS,
                              val_every_seconds=DEMO_VAL_EVERY_SECONDS, val_every_epoch=False)
    kw.update(overrides)
    return TrainConfig(**kw)


# Training on the user's own images, whose test classes are new (people, characters): the
# recipe bench/one_shot.py measured on Omniglot's held-out alphabets (BENCHMARKS.md).
# Test-time augmentation (test_time.py) lowered the error on new classes in every fold of
# every task measured: one-shot on Omniglot's held-out alphabets after 300 s (11 of 12 settings,
# e.g. 20-way 1-shot 22.0 -> 21.0 %), skilled-forgery EER on new writers (3 of 3 folds) and
# one-shot on new faces (3 of 3) (BENCHMARKS.md sections 9 and 10), for 9x the work per image.
RECIPE_SECONDS = 300.0
USER_RECIPE: dict[str, Any] = dict(
    loss="bce", epochs=None, seconds=RECIPE_SECONDS, val_every_seconds=10.0,
    val_every_epoch=False, rotated_classes=True, group_batches=True, input_size=40, kind="ink",
    test_time="tta")
# Photos of new people or things: no turned copies as classes (a face upside down is the same
# person), mirrored faces instead. Triplet loss: on 13 held-out people of Extended Yale B after
# 120 s, 10-way one-shot 84.9 % against bce 75.0, contrastive 69.2, 4 conv blocks 55.2
# (bench/verification.py, one fold; BENCHMARKS.md section 9). Raw pixels after the photo
# preprocessing scored 92.5 % there, so the saved model holds them beside the network (pixels):
# 3 folds, 120 s, TTA: 94.7 % one-shot, EER 5.4 %, against raw pixels 91.1 / 9.3 and the
# network alone 87.7 / 8.9, better than both on every fold (section 10).
PHOTO_RECIPE: dict[str, Any] = dict(
    USER_RECIPE, kind="photo", loss="triplet", rotated_classes=False, group_batches=False,
    flip=True, input_size=48, pixels=True)
RECIPES = {"ink": USER_RECIPE, "photo": PHOTO_RECIPE}
# The recipe's frame for wide ink (``data.WIDE_INK_ASPECT``): 56 high, 112 wide.
WIDE_INPUT_SIZE, WIDE_INPUT_ASPECT = 56, 2.0


def recipe(dataset: str, new_classes: bool | None = None, kind: str | None = None,
           **overrides) -> TrainConfig:
    """The configuration for a dataset: the recipe for new classes of its kind of image on
    ``folder:``/``zip:`` specs (or wherever ``new_classes`` says, e.g. a benchmark's own data),
    the library defaults otherwise; ``overrides`` win. ``kind`` None: ``data.dataset_kind``
    looks at the images (user data) or ink."""
    use = is_user_spec(dataset) if new_classes is None else new_classes
    if not use:
        return TrainConfig(dataset=dataset, **overrides)
    if kind is None or kind == "auto":
        try:
            kind = dataset_kind(dataset)[0] if is_user_spec(dataset) else "ink"
        except DataError:
            # Unreadable: loading it says why, after the options have been checked (a typo in
            # an option is named first, as for any dataset).
            kind = "ink"
    kw: dict[str, Any] = dict(RECIPES[kind])
    if kind == "photo" and is_user_spec(dataset):
        # People in scenes (a camera's photos): the face crop. On Yale's faces put in a room,
        # 5-way one-shot on new people 46.5 % -> 77.3 %, EER 29.9 -> 16.5 %; on the photos as
        # framed (a face is half of each) 82.5 -> 79.1 %, EER 15.1 -> 15.0 %: no gain, so off
        # there (BENCHMARKS.md section 10).
        try:
            kw["face_crop"] = dataset_faces(dataset).scenes
        except DataError:
            pass
    if kind == "ink" and is_user_spec(dataset) and "input_aspect" not in overrides:
        # Wide ink (signatures): a 2:1 frame keeps its height. On the 64-writer signatures,
        # people held out, 3 folds, with TTA: 40 x 40 -> 40 x 80 -> 56 x 112, skilled-forgery
        # EER 31.2 -> 28.6 -> 24.8 %, random 12.0 -> 9.3 -> 6.9, 10-way one-shot 81.7 -> 86.6
        # -> 90.0, each step better on every fold (BENCHMARKS.md section 10).
        try:
            aspect = dataset_ink_aspect(dataset)
        except DataError:
            aspect = None
        if aspect is not None and aspect >= WIDE_INK_ASPECT:
            kw["input_size"], kw["input_aspect"] = WIDE_INPUT_SIZE, WIDE_INPUT_ASPECT
    if kind == "ink" and is_user_spec(dataset):
        # Ink with skilled forgeries: binary inputs. On the 64-writer signatures the forgeries'
        # darker ink let the network tell them by their grey levels: trained and tested without
        # them its skilled-forgery EER is 5-6 points higher, level with HOG (BENCHMARKS.md §10).
        # Their pens are thinner too: the stroke width alone gives a skilled EER as low as HOG's,
        # so the strokes are thinned as well (section 10, "... and its width"). And the inputs'
        # pixels beside the network (pixels.py): on new writers, 3 folds, TTA, skilled-forgery
        # EER 30.7 -> 27.7 % (HOG 30.9), 10-way one-shot 87.0 -> 92.0 %, both on every fold.
        try:
            forged = dataset_forged_folders(dataset) > 0
            kw["binary_ink"] = kw["thin_ink"] = kw["pixels"] = forged
        except DataError:
            pass
    kw.update(overrides)
    return TrainConfig(dataset=dataset, **kw)
