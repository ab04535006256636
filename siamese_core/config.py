"""Training configuration: plain data, importable without TensorFlow (the app builds it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import DataError

LOSSES = ("bce", "contrastive", "triplet")
# Contrastive 1.2 rather than Hadsell's 1.0: on unit-length embeddings it pushes different
# classes past 74 degrees instead of 60. Exploratory runs favoured it; the ablation in
# BENCHMARKS.md puts the difference within seed-to-seed noise.
DEFAULT_MARGIN = {"bce": 0.0, "contrastive": 1.2, "triplet": 0.5}
BLOCKS = ("conv-pool-bn", "conv-bn-pool")   # layer orders of a conv block (see model.py)
PAIRINGS = ("batch", "fixed")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in the model's metadata)."""

    dataset: str = "mnist-5k"
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
    learning_rate: float = 1e-2
    augment: bool = True
    augment_warmup: float = 0.3          # augmentation eases in over this fraction of the run
    seed: int = 0
    pairing: str = "batch"
    val_pairs: int = 4000
    val_every_seconds: float | None = None   # also validate mid-epoch, every so many seconds
    val_every_epoch: bool = True         # False: only every val_every_seconds, and at the end
    max_train: int | None = None         # subsample (tests, quick demos)
    max_val: int | None = None
    jit_compile: bool = False            # XLA: measured slower on CPU here (see BENCHMARKS.md)

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise DataError(f"unknown loss {self.loss!r}: use one of {', '.join(LOSSES)}")
        if self.block not in BLOCKS:
            raise DataError(f"unknown block {self.block!r}: use one of {', '.join(BLOCKS)}")
        if self.top_convs < 0:
            raise DataError("top_convs must be 0 or more")
        if not self.val_every_epoch and not self.val_every_seconds:
            raise DataError("val_every_epoch=False needs val_every_seconds")
        if self.pairing not in PAIRINGS:
            raise DataError(f"unknown pairing {self.pairing!r}: use batch or fixed")
        if self.epochs is None and self.seconds is None:
            raise DataError("give epochs, seconds, or both")
        if (self.epochs is not None and self.epochs < 1) or (self.seconds is not None
                                                              and self.seconds <= 0):
            raise DataError("epochs and seconds must be positive")
        if self.batch_size < 4:
            raise DataError("batch_size must be at least 4")
        if not 0.0 <= self.augment_warmup <= 1.0:
            raise DataError("augment_warmup is a fraction of the run: between 0 and 1")
        if self.jit_compile and self.augment:
            raise DataError("jit_compile needs augment=False: XLA has no CPU kernel for the "
                            "augmentation's image transforms")

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
    kw = dict(epochs=DEMO_EPOCHS, seconds=DEMO_SECONDS, val_every_seconds=DEMO_VAL_EVERY_SECONDS,
              val_every_epoch=False)
    kw.update(overrides)
    return TrainConfig(**kw)
