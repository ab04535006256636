"""The siamese network: one embedding CNN shared by both branches, a registered distance layer.

Keras is imported here (and in train/losses/export) only; inference elsewhere uses ONNX.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers, ops

from .config import BLOCKS, TrainConfig
from .losses import EPS   # one floor under squared distances, for the layer and the losses
from .pixels import PIXEL_EPS
# ``block``: the order of the layers in each convolutional block. Max-pooling before batch norm
# and ReLU normalises a quarter of the values, and max-pooling commutes with both (per channel,
# for a positive BN scale): faster steps, same quality (BENCHMARKS.md).
LEGACY_BLOCK = "conv-bn-pool"    # weights saved before the field existed
LEGACY_TOP_CONVS = 0             # likewise for ``top_convs``


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the embedding network; stored in the weights' JSON to rebuild it."""

    embedding_dim: int = 64
    filters: tuple[int, ...] = (8, 32, 64)
    normalize: bool = True      # unit-length embeddings: distances live in [0, 2]
    input_size: int = 28
    input_width: int | None = None   # None: square (input_size)
    block: str = "conv-pool-bn"
    # 3x3 convolutions on the last pooled maps (3x3 for 28-px input), before the dense layer:
    # depth where it is cheapest. One makes a better model per second of training (BENCHMARKS.md).
    top_convs: int = 1
    # The weight of the input's own pixels in the saved model's embedding (PixelFusion): 0, the
    # network alone; set after training from validation distances (pixels.fusion_weight).
    pixels: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.input_width is None:
            del d["input_width"]        # square: the metadata of models before wide inputs
        if not self.pixels:
            del d["pixels"]             # the network alone: as before the field existed
        return d

    @classmethod
    def from_train(cls, cfg: TrainConfig, input_size: int = 28,
                   input_width: int | None = None) -> "ModelConfig":
        """The network a training config asks for (the one place that maps one to the other)."""
        return cls(embedding_dim=cfg.embedding_dim, filters=tuple(cfg.filters),
                   input_size=input_size,
                   input_width=None if input_width in (None, input_size) else input_width,
                   block=cfg.block, top_convs=cfg.top_convs)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(height, width) of the images the network takes."""
        return self.input_size, self.input_width or self.input_size

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["filters"] = tuple(d.get("filters", cls.filters))
        d.setdefault("block", LEGACY_BLOCK)
        d.setdefault("top_convs", LEGACY_TOP_CONVS)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@keras.saving.register_keras_serializable(package="siamese")
class EuclideanDistance(layers.Layer):
    """Euclidean distance between two embedding batches -> [N, 1] (never NaN in the gradient)."""

    def call(self, inputs):
        a, b = inputs
        return ops.sqrt(ops.maximum(ops.sum(ops.square(a - b), axis=-1, keepdims=True), EPS))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)


@keras.saving.register_keras_serializable(package="siamese")
class PixelFusion(layers.Layer):
    """(images [N, H, W, 1], unit embeddings [N, D]) -> unit vectors [N, D + H*W]: the embedding
    times sqrt(1 - w^2) beside the image's pixels, z-scored and scaled to unit length, times w.

    The squared distance between two such vectors is (1 - w^2) d_net^2 + w^2 d_pixels^2: the
    network and raw pixels together (``pixels.py`` says why and how w is chosen), still unit
    vectors, so thresholds, test-time augmentation and galleries work as for the network alone.
    """

    def __init__(self, weight: float, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < float(weight) < 1.0:
            raise ValueError(f"pixel weight must lie in (0, 1); got {weight!r}")
        self.weight = float(weight)

    def call(self, inputs):
        images, emb = inputs
        x = ops.reshape(images, (ops.shape(images)[0], -1))
        x = x - ops.mean(x, axis=-1, keepdims=True)
        # A flat image (one grey) has no pattern to compare: all zeros, as pixels.unit_pixels.
        x = x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)), PIXEL_EPS)
        net = (1.0 - self.weight ** 2) ** 0.5
        return ops.concatenate([net * emb, self.weight * x], axis=-1)

    def compute_output_shape(self, input_shape):
        (n, h, w, c), (_, d) = input_shape
        return (n, d + h * w * c)

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


def with_pixels(embedding: keras.Model, cfg: ModelConfig) -> keras.Model:
    """The saved model's embedding network: ``embedding`` itself, or with ``cfg.pixels`` > 0
    the same network's output beside the image's pixels (``PixelFusion``; no new weights)."""
    if not cfg.pixels:
        return embedding
    h, w = cfg.input_shape
    inp = keras.Input((h, w, 1), name="image")
    out = PixelFusion(cfg.pixels, name="pixels")([inp, embedding(inp)])
    return keras.Model(inp, out, name="embedding_pixels")


def build_embedding(cfg: ModelConfig = ModelConfig()) -> keras.Model:
    """uint8-range [N, H, W, 1] (28 x 28 by default) -> [N, embedding_dim]. Pooling after every block's conv keeps it
    cheap: the network is memory-bound on its activations (BENCHMARKS.md, section 4)."""
    if cfg.block not in BLOCKS:
        raise ValueError(f"unknown block {cfg.block!r}: use one of {', '.join(BLOCKS)}")
    if cfg.top_convs < 0:
        raise ValueError("top_convs must be 0 or more")
    h, w = cfg.input_shape
    x = inp = keras.Input((h, w, 1), name="image")
    x = layers.Rescaling(1.0 / 255.0)(x)
    for i, f in enumerate(cfg.filters):
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        if cfg.block == "conv-pool-bn":
            x = layers.MaxPooling2D(2)(x)
        # Few hundred steps per run: a fast-moving average keeps inference statistics current.
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = layers.Activation("relu")(x)
        if cfg.block == "conv-bn-pool":
            x = layers.MaxPooling2D(2)(x)
    for j in range(cfg.top_convs):
        x = layers.Conv2D(cfg.filters[-1], 3, padding="same", use_bias=False, name=f"top{j + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"top_bn{j + 1}")(x)
        x = layers.Activation("relu")(x)
    # Flatten, not global pooling: where a stroke is matters (6 vs 9), and the convs only see
    # ~20 px each.
    x = layers.Flatten()(x)
    x = layers.Dense(cfg.embedding_dim, name="embedding")(x)
    if cfg.normalize:
        x = layers.UnitNormalization(name="unit")(x)
    return keras.Model(inp, x, name="embedding")


def build_siamese(cfg: ModelConfig = ModelConfig()) -> tuple[keras.Model, keras.Model]:
    """The two-branch network: (siamese, embedding). Both inputs go through the *same* embedding
    model (one set of weights); the siamese output is their distance and a sigmoid "same"
    probability from a one-unit head on that distance (used by the BCE loss)."""
    emb = build_embedding(cfg)
    h, w = cfg.input_shape
    a = keras.Input((h, w, 1), name="image_a")
    b = keras.Input((h, w, 1), name="image_b")
    dist = EuclideanDistance(name="distance")([emb(a), emb(b)])
    # Start the head at P(same) = sigmoid(5 (0.5 - d)): sensible for unit-length embeddings,
    # where a random init leaves BCE with near-zero gradients for many steps.
    prob = layers.Dense(1, activation="sigmoid", name="same_head",
                        kernel_initializer=keras.initializers.Constant(-5.0),
                        bias_initializer=keras.initializers.Constant(2.5))(dist)
    model = keras.Model([a, b], {"distance": dist, "same": prob}, name="siamese")
    return model, emb
