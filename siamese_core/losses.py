"""Losses on distances, with labels 1 = same class (``pairs.SAME``), and the registry of the
losses training can use.

Two families: per-pair losses for explicit (a, b) pairs or (anchor, positive, negative)
triplets — the seed's recipe — and in-batch losses that use every pair inside one embedded batch
(B embeddings -> B(B-1)/2 pairs), the fast default. ``LOSSES`` holds one entry per loss: both
forms, its default margin and whether it trains the "same" head; the CLI, ``TrainConfig`` and the
Train page read their choices from it. Importing this module does not import TensorFlow: the
loss functions import ``keras.ops`` when they are first traced.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

EPS = 1e-12   # floor under squared distances: a finite gradient of sqrt at distance 0


def _ops():
    from keras import ops
    return ops


def contrastive_loss(distance, same, margin: float = 1.0):
    """Mean of ``y * d^2 + (1 - y) * max(margin - d, 0)^2`` over pairs (Hadsell et al., 2006)."""
    ops = _ops()
    y = ops.cast(ops.reshape(same, (-1,)), "float32")
    d = ops.cast(ops.reshape(distance, (-1,)), "float32")
    return ops.mean(y * ops.square(d) + (1.0 - y) * ops.square(ops.relu(margin - d)))


def bce_loss(prob_same, same):
    """Binary cross-entropy of the head's "same" probability against the pair label."""
    ops = _ops()
    y = ops.cast(ops.reshape(same, (-1,)), "float32")
    p = ops.clip(ops.cast(ops.reshape(prob_same, (-1,)), "float32"), 1e-7, 1.0 - 1e-7)
    return -ops.mean(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))


def triplet_loss(d_anchor_pos, d_anchor_neg, margin: float = 0.5):
    """Mean of ``max(d(a, p) - d(a, n) + margin, 0)`` (Schroff et al., 2015)."""
    ops = _ops()
    dp = ops.cast(ops.reshape(d_anchor_pos, (-1,)), "float32")
    dn = ops.cast(ops.reshape(d_anchor_neg, (-1,)), "float32")
    return ops.mean(ops.relu(dp - dn + margin))


# --- in-batch --------------------------------------------------------------------------------

def pairwise_distances(emb):
    """Euclidean distance matrix [B, B] of a batch of embeddings; gradient-safe at zero."""
    ops = _ops()
    sq = ops.sum(ops.square(emb), axis=1)
    d2 = ops.expand_dims(sq, 1) - 2.0 * ops.matmul(emb, ops.transpose(emb)) + ops.expand_dims(sq, 0)
    return ops.sqrt(ops.maximum(d2, EPS))


def cross_distances(a, b):
    """Euclidean distances [Na, Nb] between the rows of ``a`` and of ``b``; gradient-safe."""
    ops = _ops()
    d2 = (ops.expand_dims(ops.sum(ops.square(a), axis=1), 1) - 2.0 * ops.matmul(a, ops.transpose(b))
          + ops.expand_dims(ops.sum(ops.square(b), axis=1), 0))
    return ops.sqrt(ops.maximum(d2, EPS))


def _row_masks(y_rows, y_all, offset):
    """Positive and negative masks of some rows (global indices ``offset`` + 0, 1, ...) of the
    global batch's pair matrix, and the global numbers of positive and negative pairs."""
    ops = _ops()
    y_rows, y_all = ops.reshape(y_rows, (-1,)), ops.reshape(y_all, (-1,))
    eq = ops.equal(ops.expand_dims(y_rows, 1), ops.expand_dims(y_all, 0))
    rows = ops.arange(ops.shape(y_rows)[0]) + offset
    not_self = ops.not_equal(ops.expand_dims(rows, 1), ops.expand_dims(ops.arange(ops.shape(y_all)[0]), 0))
    pos = ops.cast(ops.logical_and(eq, not_self), "float32")
    neg = ops.cast(ops.logical_not(eq), "float32")
    same_all = ops.cast(ops.equal(ops.expand_dims(y_all, 1), ops.expand_dims(y_all, 0)), "float32")
    n = ops.cast(ops.shape(y_all)[0], "float32")
    n_pos = ops.sum(same_all) - n
    return pos, neg, n_pos, n * n - n - n_pos


def _rows_balanced(pos_term, neg_term, pos, neg, n_pos, n_neg):
    """``_balanced`` restricted to some rows, normalised by the global counts: summed over the
    replicas that hold all the rows, it is exactly ``_balanced`` of the whole batch."""
    ops = _ops()
    return 0.5 * (ops.sum(pos_term * pos) / ops.maximum(n_pos, 1.0)
                  + ops.sum(neg_term * neg) / ops.maximum(n_neg, 1.0))


def rows_contrastive_loss(e_rows, y_rows, e_all, y_all, offset, margin: float = 1.0):
    """This replica's rows of ``batch_contrastive_loss`` over the global batch (``e_all``)."""
    ops = _ops()
    d = cross_distances(e_rows, e_all)
    pos, neg, n_pos, n_neg = _row_masks(y_rows, y_all, offset)
    return _rows_balanced(ops.square(d), ops.square(ops.relu(margin - d)), pos, neg, n_pos, n_neg)


def rows_bce_loss(e_rows, y_rows, e_all, y_all, offset, head):
    """This replica's rows of ``batch_bce_loss`` over the global batch (``e_all``)."""
    ops = _ops()
    d = cross_distances(e_rows, e_all)
    pos, neg, n_pos, n_neg = _row_masks(y_rows, y_all, offset)
    p = ops.clip(ops.squeeze(head(ops.expand_dims(d, -1)), -1), 1e-7, 1.0 - 1e-7)
    return _rows_balanced(-ops.log(p), -ops.log(1.0 - p), pos, neg, n_pos, n_neg)


def _masks(labels):
    ops = _ops()
    labels = ops.reshape(labels, (-1,))
    eq = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    n = ops.shape(labels)[0]
    off_diag = ops.logical_not(ops.cast(ops.eye(n), "bool"))
    pos = ops.cast(ops.logical_and(eq, off_diag), "float32")
    neg = ops.cast(ops.logical_not(eq), "float32")
    return pos, neg


def _balanced(pos_term, neg_term, pos, neg):
    """Average positives and negatives separately, then together: B^2 pairs are ~90 % negative."""
    ops = _ops()
    return 0.5 * (ops.sum(pos_term * pos) / ops.maximum(ops.sum(pos), 1.0)
                  + ops.sum(neg_term * neg) / ops.maximum(ops.sum(neg), 1.0))


def batch_contrastive_loss(emb, labels, margin: float = 1.0):
    """Contrastive loss over all pairs of the batch, positives and negatives weighted equally."""
    ops = _ops()
    d = pairwise_distances(emb)
    pos, neg = _masks(labels)
    return _balanced(ops.square(d), ops.square(ops.relu(margin - d)), pos, neg)


def batch_bce_loss(emb, labels, head):
    """BCE over all pairs of the batch; ``head`` maps a distance [.., 1] to a "same" probability."""
    ops = _ops()
    d = pairwise_distances(emb)
    pos, neg = _masks(labels)
    p = ops.clip(ops.squeeze(head(ops.expand_dims(d, -1)), -1), 1e-7, 1.0 - 1e-7)
    return _balanced(-ops.log(p), -ops.log(1.0 - p), pos, neg)


def batch_all_triplet_loss(emb, labels, margin: float = 0.5):
    """Every valid (anchor, positive, negative) triplet of the batch, averaged over the ones
    that still violate the margin. Batch-hard mining collapses early in training on small CPU
    budgets; averaging over active triplets does not."""
    ops = _ops()
    d = pairwise_distances(emb)
    pos, neg = _masks(labels)
    t = ops.relu(ops.expand_dims(d, 2) - ops.expand_dims(d, 1) + margin)   # [a, p, n]
    valid = ops.expand_dims(pos, 2) * ops.expand_dims(neg, 1)
    t = t * valid
    active = ops.sum(ops.cast(t > 1e-9, "float32"))
    return ops.sum(t) / ops.maximum(active, 1.0)


# --- the registry ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LossSpec:
    """One loss as training uses it.

    ``in_batch(emb [B, D], labels [B], margin, head)``: over every pair of an embedded batch.
    ``pairwise(e [k, B, D], y [B], margin, head, distance)``: over explicit examples of
    ``items`` images each (2: pairs a, b with a same/different label; 3: anchor, positive,
    negative), ``distance`` the model's distance layer.
    ``rows(e_rows, y_rows, e_all, y_all, offset, margin, head)``: under a ``tf.distribute``
    strategy, one replica's rows of the in-batch loss over the *global* batch (``e_all``, all
    replicas' embeddings, gathered without gradient; this replica's rows start at global index
    ``offset``); summed over replicas it is ``in_batch`` of the global batch. Only for losses of
    symmetric pair terms, where twice the rows' gradient is the whole gradient of their
    embeddings; None: across replicas the loss uses each replica's own pairs.
    """

    name: str
    in_batch: Callable
    pairwise: Callable
    items: int
    default_margin: float | None   # None: the loss has no margin
    uses_head: bool                # trains the one-unit "same" head on the distance
    help: str
    rows: Callable | None = None


LOSSES: dict[str, LossSpec] = {s.name: s for s in (
    # Contrastive 1.2 rather than Hadsell's 1.0: on unit-length embeddings it pushes different
    # classes past 74 degrees instead of 60. Exploratory runs favoured it; the ablation in
    # BENCHMARKS.md puts the difference within seed-to-seed noise.
    LossSpec("contrastive",
             in_batch=lambda e, y, margin, head: batch_contrastive_loss(e, y, margin),
             pairwise=lambda e, y, margin, head, dist: contrastive_loss(dist([e[0], e[1]]), y,
                                                                        margin),
             items=2, default_margin=1.2, uses_head=False,
             help="pull same together, push different past a margin",
             rows=lambda e, y, e_all, y_all, offset, margin, head: rows_contrastive_loss(
                 e, y, e_all, y_all, offset, margin)),
    LossSpec("bce",
             in_batch=lambda e, y, margin, head: batch_bce_loss(e, y, head),
             pairwise=lambda e, y, margin, head, dist: bce_loss(head(dist([e[0], e[1]])), y),
             items=2, default_margin=None, uses_head=True,
             help="sigmoid head on the distance, binary cross-entropy",
             rows=lambda e, y, e_all, y_all, offset, margin, head: rows_bce_loss(
                 e, y, e_all, y_all, offset, head)),
    LossSpec("triplet",
             in_batch=lambda e, y, margin, head: batch_all_triplet_loss(e, y, margin),
             pairwise=lambda e, y, margin, head, dist: triplet_loss(
                 dist([e[0], e[1]]), dist([e[0], e[2]]), margin),
             items=3, default_margin=0.5, uses_head=False,
             help="anchor nearer its positive than its negative, by a margin"),
)}
