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

import numpy as np

from .errors import DataError

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
# One form for every in-batch loss: the rows ``e`` (labels ``y``) of a batch against reference
# embeddings ``ref_e`` (labels ``ref_y``), the rows sitting at ``offset`` among the references.
# In one process the references are the batch itself (the default); across replicas they are the
# whole global batch, gathered without gradient (``distributed.Replicas.reference``), and the
# counts are the global batch's, so the replicas' terms add up to the global batch's loss.

def cross_distances(a, b=None):
    """Euclidean distances [Na, Nb] between the rows of ``a`` and of ``b`` (``a`` itself when
    None: its squared norms are then computed once, which is also the gradient's summation
    order that training was pinned with); gradient-safe at zero."""
    ops = _ops()
    sq_a = ops.sum(ops.square(a), axis=1)
    sq_b = sq_a if b is None else ops.sum(ops.square(b), axis=1)
    b = a if b is None else b
    d2 = ops.expand_dims(sq_a, 1) - 2.0 * ops.matmul(a, ops.transpose(b)) + ops.expand_dims(sq_b, 0)
    return ops.sqrt(ops.maximum(d2, EPS))


# Skilled forgeries in a batch (train.py) are rows with a negative label of their own that says
# whose signature they imitate: ``forged_label(person, j)``. The pairs of a forgery and a genuine
# row of that person are the hard negatives; a loss can give them a weight of their own.
FORGED_STRIDE = 1024   # forged labels are unique for j < this, per person


def forged_label(person, j):
    """The label of forgery ``j`` (counted modulo ``FORGED_STRIDE``) of ``person``'s writing:
    negative, and no other row's. Whole numbers below 2**24 (a float32's), so they survive
    being gathered across replicas beside the embeddings, for up to 16,383 people."""
    return -1 - (person * FORGED_STRIDE + j % FORGED_STRIDE)


def forged_labels(owners) -> np.ndarray:
    """The labels of forgeries imitating ``owners`` (a person's label each): ``forged_label``
    with each one's rank among its person's forgeries."""
    owners = np.asarray(owners, np.int64).ravel()
    if owners.size and owners.max() >= 2 ** 24 // FORGED_STRIDE - 1:
        raise DataError(f"forgeries of {int(owners.max()) + 1:,} classes: at most "
                        f"{2 ** 24 // FORGED_STRIDE - 1:,} can be told apart in training")
    rank = np.zeros(len(owners), np.int64)
    seen: dict[int, int] = {}
    for i, o in enumerate(owners.tolist()):
        rank[i] = seen.get(o, 0)
        seen[o] = int(rank[i]) + 1
    return forged_label(owners, rank).astype(np.int32)


def owner_of(y):
    """The person each label belongs to: itself for a genuine row, the imitated one for a
    forged row (``forged_label``)."""
    ops = _ops()
    return ops.where(y < 0, (-1 - y) // FORGED_STRIDE, y)


def pair_masks(y, ref_y, offset=0):
    """Same-class (itself excluded) and different-class masks [len(y), len(ref_y)] of rows at
    ``offset`` among the references, and the numbers of such pairs among the references."""
    ops = _ops()
    y, ref_y = ops.reshape(y, (-1,)), ops.reshape(ref_y, (-1,))
    eq = ops.equal(ops.expand_dims(y, 1), ops.expand_dims(ref_y, 0))
    rows = ops.arange(ops.shape(y)[0]) + offset
    not_self = ops.not_equal(ops.expand_dims(rows, 1), ops.expand_dims(ops.arange(ops.shape(ref_y)[0]), 0))
    pos = ops.cast(ops.logical_and(eq, not_self), "float32")
    neg = ops.cast(ops.logical_not(eq), "float32")
    same_all = ops.cast(ops.equal(ops.expand_dims(ref_y, 1), ops.expand_dims(ref_y, 0)), "float32")
    n = ops.cast(ops.shape(ref_y)[0], "float32")
    n_pos = ops.sum(same_all) - n
    return pos, neg, n_pos, n * n - n - n_pos


def hard_mask(y, ref_y):
    """1 where one of the pair is forged and the other is genuine writing of the person it
    imitates [len(y), len(ref_y)] (the hard negatives)."""
    ops = _ops()
    y, ref_y = ops.reshape(y, (-1,)), ops.reshape(ref_y, (-1,))
    one_forged = ops.not_equal(ops.expand_dims(y < 0, 1), ops.expand_dims(ref_y < 0, 0))
    same_owner = ops.equal(ops.expand_dims(owner_of(y), 1), ops.expand_dims(owner_of(ref_y), 0))
    return ops.cast(ops.logical_and(one_forged, same_owner), "float32")


def _balanced(pos_term, neg_term, masks, hard_weight=0.0, y=None, ref_y=None):
    """Average positives and negatives separately, then together (B^2 pairs are ~90 %
    negative), each over the references' numbers of pairs. ``hard_weight``: that share of the
    negatives' half goes to the hard pairs' own average (``hard_mask`` of rows ``y`` against
    ``ref_y``, where there are any); they are otherwise ~1 % of the negatives."""
    ops = _ops()
    pos, neg, n_pos, n_neg = masks
    negative = ops.sum(neg_term * neg) / ops.maximum(n_neg, 1.0)
    if hard_weight:
        hard, n_hard = hard_mask(y, ref_y), ops.sum(hard_mask(ref_y, ref_y))
        w = ops.where(n_hard > 0, hard_weight, 0.0)
        negative = (1.0 - w) * negative + w * ops.sum(neg_term * hard) / ops.maximum(n_hard, 1.0)
    return 0.5 * (ops.sum(pos_term * pos) / ops.maximum(n_pos, 1.0) + negative)


def _against(e, y, ref_e, ref_y, offset):
    """Distances, masks and reference labels of rows against references (the batch itself
    when none given)."""
    if ref_e is None:
        return cross_distances(e), pair_masks(y, y), y
    return cross_distances(e, ref_e), pair_masks(y, ref_y, offset), ref_y


def batch_contrastive_loss(e, y, margin: float = 1.0, ref_e=None, ref_y=None, offset=0,
                           hard_weight: float = 0.0):
    """Contrastive loss over all pairs, positives and negatives weighted equally (the hard
    negatives with ``hard_weight`` of the negatives' weight, ``_balanced``)."""
    ops = _ops()
    d, masks, ref_y = _against(e, y, ref_e, ref_y, offset)
    return _balanced(ops.square(d), ops.square(ops.relu(margin - d)), masks, hard_weight, y,
                     ref_y)


def batch_bce_loss(e, y, head, ref_e=None, ref_y=None, offset=0, hard_weight: float = 0.0):
    """BCE over all pairs; ``head`` maps a distance [.., 1] to a "same" probability."""
    ops = _ops()
    d, masks, ref_y = _against(e, y, ref_e, ref_y, offset)
    p = ops.clip(ops.squeeze(head(ops.expand_dims(d, -1)), -1), 1e-7, 1.0 - 1e-7)
    return _balanced(-ops.log(p), -ops.log(1.0 - p), masks, hard_weight, y, ref_y)


def batch_all_triplet_loss(e, y, margin: float = 0.5, ref_e=None, ref_y=None, offset=0):
    """Every valid (anchor, positive, negative) triplet, averaged over the ones that still
    violate the margin. Batch-hard mining collapses early in training on small CPU budgets;
    averaging over active triplets does not. Its average is over active triplets, so rows of a
    global batch do not add up to it: across replicas each uses its own batch."""
    ops = _ops()
    d, (pos, neg, _, _), _ = _against(e, y, ref_e, ref_y, offset)
    t = ops.relu(ops.expand_dims(d, 2) - ops.expand_dims(d, 1) + margin)   # [a, p, n]
    t = t * (ops.expand_dims(pos, 2) * ops.expand_dims(neg, 1))
    active = ops.sum(ops.cast(t > 1e-9, "float32"))
    return ops.sum(t) / ops.maximum(active, 1.0)


# --- the registry ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LossSpec:
    """One loss as training uses it.

    ``batch(e, y, margin, head, ref_e=None, ref_y=None, offset=0[, hard_weight=])``: over
    every pair of the rows ``e`` [B, D] against reference embeddings (the batch itself by
    default; see above); pair losses take ``hard_weight`` (``_balanced``).
    ``pairwise(e [k, B, D], y [B], margin, head, distance)``: over explicit examples of
    ``items`` images each (2: pairs a, b with a same/different label; 3: anchor, positive,
    negative), ``distance`` the model's distance layer.
    ``additive``: the loss is a sum of symmetric pair terms over global counts, so replicas'
    rows against the gathered global batch add up to the global batch's loss, and twice the
    rows' gradient is the whole gradient of their embeddings. Otherwise each replica uses its
    own batch.
    """

    name: str
    batch: Callable
    pairwise: Callable
    items: int
    default_margin: float | None   # None: the loss has no margin
    uses_head: bool                # trains the one-unit "same" head on the distance
    help: str
    additive: bool = True

    def in_batch(self, e, y, margin, head):
        """The loss over every pair of one batch."""
        return self.batch(e, y, margin, head)


LOSSES: dict[str, LossSpec] = {s.name: s for s in (
    # Contrastive 1.2 rather than Hadsell's 1.0: on unit-length embeddings it pushes different
    # classes past 74 degrees instead of 60. Exploratory runs favoured it; the ablation in
    # BENCHMARKS.md puts the difference within seed-to-seed noise.
    LossSpec("contrastive",
             batch=lambda e, y, margin, head, ref_e=None, ref_y=None, offset=0, hard_weight=0.0:
             batch_contrastive_loss(e, y, margin, ref_e, ref_y, offset, hard_weight),
             pairwise=lambda e, y, margin, head, dist: contrastive_loss(dist([e[0], e[1]]), y,
                                                                        margin),
             items=2, default_margin=1.2, uses_head=False,
             help="pull same together, push different past a margin"),
    LossSpec("bce",
             batch=lambda e, y, margin, head, ref_e=None, ref_y=None, offset=0, hard_weight=0.0:
             batch_bce_loss(e, y, head, ref_e, ref_y, offset, hard_weight),
             pairwise=lambda e, y, margin, head, dist: bce_loss(head(dist([e[0], e[1]])), y),
             items=2, default_margin=None, uses_head=True,
             help="sigmoid head on the distance, binary cross-entropy"),
    LossSpec("triplet",
             batch=lambda e, y, margin, head, *ref: batch_all_triplet_loss(e, y, margin, *ref),
             pairwise=lambda e, y, margin, head, dist: triplet_loss(
                 dist([e[0], e[1]]), dist([e[0], e[2]]), margin),
             items=3, default_margin=0.5, uses_head=False, additive=False,
             help="anchor nearer its positive than its negative, by a margin"),
)}
