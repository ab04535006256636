"""Training configuration: plain data, importable without TensorFlow (the app builds it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import DataError

LOSSES = ("bce", "contrastive", "triplet")
DEFAULT_MARGIN = {"bce": 0.0, "contrastive": 1.0, "triplet": 0.5}
PAIRINGS = ("batch", "fixed")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in the model's metadata)."""

    dataset: str = "mnist-5k"
    loss: str = "contrastive"
    margin: float | None = None          # None: the loss's default (contrastive 1.0, triplet 0.5)
    embedding_dim: int = 64
    filters: tuple[int, ...] = (16, 32, 64)
    epochs: int | None = 12
    seconds: float | None = None
    batch_size: int = 50
    learning_rate: float = 1e-2
    augment: bool = True
    augment_warmup: float = 0.3          # augmentation eases in over this fraction of the run
    seed: int = 0
    pairing: str = "batch"
    val_pairs: int = 4000
    val_every_seconds: float | None = None   # also validate mid-epoch, every so many seconds
    max_train: int | None = None         # subsample (tests, quick demos)
    max_val: int | None = None
    jit_compile: bool = False            # XLA: measured slower on CPU here (see BENCHMARKS.md)

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise DataError(f"unknown loss {self.loss!r}: use one of {', '.join(LOSSES)}")
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
DEMO_VAL_EVERY_SECONDS = 10.0    # keeps 60k-image epochs visibly alive


def demo_config(**overrides) -> TrainConfig:
    """The configuration the Train page starts from."""
    kw = dict(epochs=DEMO_EPOCHS, seconds=DEMO_SECONDS, val_every_seconds=DEMO_VAL_EVERY_SECONDS)
    kw.update(overrides)
    return TrainConfig(**kw)
