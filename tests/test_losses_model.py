import numpy as np
import pytest

keras = pytest.importorskip("keras")

from siamese_core import losses  # noqa: E402
from siamese_core.model import (  # noqa: E402
    EuclideanDistance,
    ModelConfig,
    PixelFusion,
    build_embedding,
    build_siamese,
    with_pixels,
)


def test_contrastive_two_pair_batch_by_hand():
    # Pair 1: same, d = 0.5 -> 0.5^2 = 0.25. Pair 2: different, d = 0.3, margin 1 -> 0.7^2 = 0.49.
    loss = losses.contrastive_loss(np.array([0.5, 0.3]), np.array([1, 0]), margin=1.0)
    assert float(loss) == pytest.approx((0.25 + 0.49) / 2)
    # A different pair beyond the margin costs nothing.
    assert float(losses.contrastive_loss(np.array([1.2]), np.array([0]), 1.0)) == 0.0


def test_bce_and_triplet_by_hand():
    bce = losses.bce_loss(np.array([0.8, 0.4]), np.array([1, 0]))
    assert float(bce) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2, rel=1e-6)
    # relu(0.2 - 0.5 + 0.5) = 0.2 and relu(0.9 - 0.7 + 0.5) = 0.7 -> mean 0.45.
    t = losses.triplet_loss(np.array([0.2, 0.9]), np.array([0.5, 0.7]), margin=0.5)
    assert float(t) == pytest.approx(0.45)


def brute_force(emb, labels, margin):
    pos, neg, trip = [], [], []
    n = len(labels)
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    for i in range(n):
        for j in range(n):
            if i != j and labels[i] == labels[j]:
                pos.append(d[i, j] ** 2)
                for k in range(n):
                    if labels[k] != labels[i]:
                        trip.append(max(d[i, j] - d[i, k] + margin, 0))
            elif labels[i] != labels[j]:
                neg.append(max(margin - d[i, j], 0) ** 2)
    trip = np.array(trip)
    return 0.5 * (np.mean(pos) + np.mean(neg)), trip[trip > 1e-9].mean()


def test_in_batch_losses_match_brute_force():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(9, 4)).astype("float32") * 0.4
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 1])
    want_c, want_t = brute_force(emb.astype(float), labels, 0.8)
    assert float(losses.batch_contrastive_loss(emb, labels, 0.8)) == pytest.approx(want_c, rel=1e-4)
    assert float(losses.batch_all_triplet_loss(emb, labels, 0.8)) == pytest.approx(want_t, rel=1e-4)
    want_d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    np.testing.assert_allclose(np.asarray(losses.cross_distances(emb)), want_d, atol=1e-3)
    np.testing.assert_allclose(np.asarray(losses.cross_distances(emb[:3], emb)), want_d[:3],
                               atol=1e-3)


def test_hard_negatives_get_their_own_share_of_the_negative_weight():
    """Skilled forgeries (labels from ``forged_label``): with ``hard_weight`` w the negative
    half is (1 - w) x the mean over all different-label pairs + w x the mean over the pairs of
    a forgery and genuine writing of the person it imitates; w = 0 is the plain loss."""
    import keras
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(8, 3)).astype("float32") * 0.5
    genuine = [0, 0, 1, 1, 2, 2]
    forged = losses.forged_labels([0, 1])          # a forgery of 0's and one of 1's writing
    labels = np.array(genuine + list(forged))
    assert list(np.asarray(losses.owner_of(labels))) == genuine + [0, 1]
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1).astype(float)
    same, off = labels[:, None] == labels[None], ~np.eye(8, dtype=bool)
    owner = np.array(genuine + [0, 1])
    is_f = np.array([False] * 6 + [True] * 2)
    hard = (owner[:, None] == owner[None]) & (is_f[:, None] != is_f[None])
    assert hard.sum() == 8                          # 2 forgeries x 2 genuine, both orders
    m, w = 0.9, 0.4
    neg_c = np.square(np.maximum(m - d, 0))
    want = 0.5 * (np.mean(np.square(d)[same & off])
                  + (1 - w) * np.mean(neg_c[~same]) + w * np.mean(neg_c[hard]))
    got = float(losses.batch_contrastive_loss(emb, labels, m, hard_weight=w))
    assert got == pytest.approx(want, rel=1e-4)
    plain = 0.5 * (np.mean(np.square(d)[same & off]) + np.mean(neg_c[~same]))
    assert float(losses.batch_contrastive_loss(emb, labels, m)) == pytest.approx(plain, rel=1e-4)
    assert abs(want - plain) > 1e-3                 # the weight changes the value
    # Without forgeries in the batch there are no hard pairs: the weight changes nothing.
    assert float(losses.batch_contrastive_loss(emb[:6], labels[:6], m, hard_weight=w)) == \
        pytest.approx(float(losses.batch_contrastive_loss(emb[:6], labels[:6], m)), rel=1e-6)
    head = keras.layers.Dense(1, activation="sigmoid")
    head.build((None, 1))
    head.set_weights([np.array([[-3.0]], "float32"), np.array([1.5], "float32")])
    p = 1 / (1 + np.exp(-(-3.0 * d + 1.5)))
    want_b = 0.5 * (np.mean(-np.log(p[same & off])) + (1 - w) * np.mean(-np.log(1 - p[~same]))
                    + w * np.mean(-np.log(1 - p[hard])))
    assert float(losses.batch_bce_loss(emb, labels, head, hard_weight=w)) == \
        pytest.approx(want_b, rel=1e-4)


def test_forged_labels_are_unique_and_bounded():
    """Labels of forgeries: negative, one each (counted per person), whole in a float32 (they
    are gathered across replicas beside the embeddings); too many people is a DataError."""
    from siamese_core.errors import DataError
    y = losses.forged_labels([5, 5, 7, 5, 16_382])
    assert (y < 0).all() and len(set(y.tolist())) == 5
    assert np.array_equal(y.astype(np.float32).astype(np.int32), y)
    assert list(np.asarray(losses.owner_of(y))) == [5, 5, 7, 5, 16_382]
    with pytest.raises(DataError, match="forgeries of 16,384 classes"):
        losses.forged_labels([16_383])


def test_distance_layer_and_shared_weights():
    d = EuclideanDistance()([np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])])
    assert float(np.asarray(d)[0, 0]) == pytest.approx(5.0)
    siamese, emb = build_siamese(ModelConfig(embedding_dim=8, filters=(4, 8)))
    # A true siamese network: one embedding model, used by both inputs.
    assert sum(isinstance(layer, keras.Model) for layer in siamese.layers) == 1
    x = np.random.default_rng(0).integers(0, 255, (2, 28, 28, 1)).astype("float32")
    out = siamese([x, x])
    np.testing.assert_allclose(np.asarray(out["distance"]), 1e-6, atol=1e-5)  # d(x, x) ~ 0
    e = np.asarray(emb(x))
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)      # unit length


def test_registered_layer_round_trips():
    layer = EuclideanDistance(name="d")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, EuclideanDistance)


def test_pixel_fusion_puts_the_pixels_beside_the_network():
    """The saved model's embedding with pixels: the network's unit embedding times sqrt(1-w^2),
    then the unit pixels (pixels.unit_pixels) times w; unit length; no weights of its own."""
    from siamese_core.pixels import unit_pixels
    cfg = ModelConfig(embedding_dim=8, filters=(4, 8), input_size=12, input_width=16,
                      pixels=0.6)
    _, emb = build_siamese(cfg)
    fused = with_pixels(emb, cfg)
    assert with_pixels(emb, ModelConfig(embedding_dim=8, filters=(4, 8))) is emb
    assert fused.count_params() == emb.count_params()
    x = np.random.default_rng(0).integers(0, 255, (3, 12, 16, 1)).astype("float32")
    x[2] = 90.0                                                  # a flat image
    out = np.asarray(fused(x))
    assert out.shape == (3, 8 + 12 * 16)
    np.testing.assert_allclose(out[:, :8], 0.8 * np.asarray(emb(x)), atol=1e-6)
    np.testing.assert_allclose(out[:, 8:], 0.6 * unit_pixels(x), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out[:2], axis=1), 1.0, rtol=1e-5)
    assert not out[2, 8:].any()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(PixelFusion(0.25, name="p")))
    assert isinstance(restored, PixelFusion) and restored.weight == 0.25
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="pixel weight"):
            PixelFusion(bad)
    # The weight round-trips through the metadata; a model without it writes none.
    assert ModelConfig.from_dict(cfg.to_dict()).pixels == 0.6
    assert "pixels" not in ModelConfig().to_dict()


def _layer_kinds(emb) -> list[str]:
    return [type(layer).__name__ for layer in emb.layers
            if type(layer).__name__ in ("Conv2D", "MaxPooling2D", "BatchNormalization")]


def test_block_order_and_legacy_weights():
    new = build_embedding(ModelConfig(filters=(4, 8), top_convs=0))
    assert _layer_kinds(new)[:3] == ["Conv2D", "MaxPooling2D", "BatchNormalization"]
    # Metadata written before ``block`` and ``top_convs`` existed describes the old network;
    # it must rebuild that.
    old_cfg = ModelConfig.from_dict({"embedding_dim": 64, "filters": [4, 8], "normalize": True,
                                     "input_size": 28})
    assert (old_cfg.block, old_cfg.top_convs) == ("conv-bn-pool", 0)
    old = build_embedding(old_cfg)
    assert _layer_kinds(old)[:3] == ["Conv2D", "BatchNormalization", "MaxPooling2D"]
    assert old.count_params() == new.count_params()      # same weights, in the same order
    new.set_weights(old.get_weights())
    with pytest.raises(ValueError, match="unknown block"):
        build_embedding(ModelConfig(block="bn-first"))


def test_top_convolution():
    none = build_embedding(ModelConfig(filters=(4, 8), top_convs=0))
    top = build_embedding(ModelConfig(filters=(4, 8)))           # the default: one
    assert _layer_kinds(top) == ["Conv2D", "MaxPooling2D", "BatchNormalization",
                                 "Conv2D", "MaxPooling2D", "BatchNormalization",
                                 "Conv2D", "BatchNormalization"]
    # It keeps the last block's width and the pooled size (28 -> 14 -> 7), so the dense layer
    # sees as many values: 3*3*8*8 more weights (no bias) and a batch norm of 4 vectors of 8.
    assert top.get_layer("top1").kernel.shape == (3, 3, 8, 8)
    assert top.get_layer("top1").output.shape == (None, 7, 7, 8)
    assert top.count_params() - none.count_params() == 3 * 3 * 8 * 8 + 4 * 8
    # Its metadata round-trips, so a saved model rebuilds with the same depth.
    assert ModelConfig.from_dict(ModelConfig(top_convs=2).to_dict()).top_convs == 2
    with pytest.raises(ValueError, match="top_convs"):
        build_embedding(ModelConfig(top_convs=-1))


def test_model_config_from_train_config():
    """Every architecture field of a training config reaches the network it builds."""
    from siamese_core.config import TrainConfig
    cfg = TrainConfig(embedding_dim=16, filters=[4, 8], block="conv-bn-pool", top_convs=2)
    assert ModelConfig.from_train(cfg, input_size=32) == ModelConfig(
        embedding_dim=16, filters=(4, 8), input_size=32, block="conv-bn-pool", top_convs=2)
    assert ModelConfig.from_train(TrainConfig()) == ModelConfig()   # defaults agree


def test_pooling_first_commutes_with_positive_bn():
    """Max-pooling commutes with a per-channel increasing map (BN with scale > 0, then ReLU),
    so with the same weights and inference statistics both orders compute the same embedding."""
    rng = np.random.default_rng(0)
    a = build_embedding(ModelConfig(filters=(4, 8)))
    b = build_embedding(ModelConfig(filters=(4, 8), block="conv-bn-pool"))
    w = [np.abs(v) + 0.1 if v.ndim == 1 else v for v in a.get_weights()]   # gamma, var > 0
    a.set_weights(w)
    b.set_weights(w)
    x = rng.integers(0, 255, (3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(a(x)), np.asarray(b(x)), atol=1e-5)


@pytest.mark.parametrize("name,hard", [("contrastive", 0.0), ("bce", 0.0), ("bce", 0.5)])
def test_rows_of_the_global_batch_add_up_to_the_in_batch_loss(name, hard):
    """Across replicas, each computes its rows of the global pair matrix against the gathered
    (gradient-free) embeddings, with the loss's one in-batch form: the rows' losses sum to the
    in-batch loss of the whole batch, and twice a replica's gradient is the whole gradient of
    its embeddings."""
    import tensorflow as tf

    from siamese_core.losses import LOSSES
    from siamese_core.model import ModelConfig, build_siamese
    spec = LOSSES[name]
    head = build_siamese(ModelConfig(embedding_dim=4, filters=(2,), top_convs=0))[0] \
        .get_layer("same_head")
    rng = np.random.default_rng(0)
    e = tf.constant(rng.normal(size=(12, 4)).astype(np.float32))
    e = e / tf.norm(e, axis=1, keepdims=True)
    labels = [0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 1]
    if hard:          # the hard pairs' term too: two rows are forgeries of 1's and 2's writing
        labels[5], labels[10] = losses.forged_labels([1, 2])
    y = tf.constant(np.array(labels, np.int32))
    kw = {"hard_weight": hard} if hard else {}
    with tf.GradientTape() as tape:
        tape.watch(e)
        full = spec.batch(e, y, 0.9, head, **kw)
    g_full = tape.gradient(full, e)
    total, grads = 0.0, []
    for r in range(3):                       # three replicas of 4 rows each
        rows = e[4 * r:4 * r + 4]
        with tf.GradientTape() as tape:
            tape.watch(rows)
            part = spec.batch(rows, y[4 * r:4 * r + 4], 0.9, head, tf.stop_gradient(e), y, 4 * r,
                              **kw)
        total += float(part)
        grads.append(2.0 * tape.gradient(part, rows))
    assert total == pytest.approx(float(full), rel=1e-5)
    np.testing.assert_allclose(tf.concat(grads, 0).numpy(), g_full.numpy(), atol=1e-6)


def test_in_batch_bce_matches_brute_force():
    """Issue 16: the in-batch BCE had no numeric test. A head p(d) = sigmoid(w d + b); the loss
    is the mean -log p over same pairs and -log(1 - p) over different pairs, averaged."""
    import keras
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(7, 3)).astype("float32") * 0.5
    labels = np.array([0, 0, 1, 1, 1, 2, 0])
    head = keras.layers.Dense(1, activation="sigmoid")
    head.build((None, 1))
    head.set_weights([np.array([[-3.0]], "float32"), np.array([1.5], "float32")])
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1).astype(float)
    p = 1 / (1 + np.exp(-(-3.0 * d + 1.5)))
    same = labels[:, None] == labels[None]
    off = ~np.eye(7, dtype=bool)
    want = 0.5 * (np.mean(-np.log(p[same & off])) + np.mean(-np.log(1 - p[~same])))
    assert float(losses.batch_bce_loss(emb, labels, head)) == pytest.approx(want, rel=1e-4)
