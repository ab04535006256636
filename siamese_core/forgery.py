"""Skilled forgeries: images that imitate a person, kept as that person's negatives, never as a
class of their own.

Public signature sets lay forgeries out in one of two ways, and both are recognised here:

- ``<person>/genuine/*`` beside ``<person>/forged/*`` (also ``forg``, ``forgery``,
  ``forgeries``, ``skilled``; ``real``/``original`` for the genuine ones);
- ``<person>_forg/*`` (or ``_forged``, ``-forg`` …) beside ``<person>/*``.

``layout`` maps class folders to (person, forged); the loader (``data``) keeps genuine images as
the person's class and forged ones in ``Dataset.forgeries`` with the person they imitate in
``Dataset.forgery_of``. Training uses them as hard negatives of that person; validation and test
report what signature verification reports (``pair_rates``): false rejects of genuine pairs,
false accepts of random forgeries (another person's genuine image) and of skilled forgeries.
"""
from __future__ import annotations

import re

import numpy as np

FORGED = ("forged", "forg", "forgery", "forgeries", "skilled", "skilled_forgeries", "fake")
GENUINE = ("genuine", "real", "original", "originals")
_SUFFIX = re.compile(r"^(?P<person>.+?)[_\-. ](?:" + "|".join(FORGED) + r")$", re.IGNORECASE)


def layout(class_names: list[str]) -> dict[str, tuple[str, bool]]:
    """For each class folder: the person it belongs to and whether it holds forgeries. Folders
    of no recognised layout are their own person, genuine. A forged folder counts as one only
    beside genuine images of its person (``<p>/genuine`` or ``<p>`` itself): a dataset that
    merely has a class called "fake" keeps it."""
    names = set(class_names)
    parts = {n: n.rsplit("/", 1) for n in class_names}
    genuine_persons = {p[0] for n, p in parts.items()
                       if len(p) == 2 and p[1].lower() in GENUINE} | names
    out: dict[str, tuple[str, bool]] = {}
    for n in class_names:
        p = parts[n]
        if len(p) == 2 and p[1].lower() in GENUINE:
            out[n] = (p[0], False)
        elif len(p) == 2 and p[1].lower() in FORGED and p[0] in genuine_persons:
            out[n] = (p[0], True)
        else:
            m = _SUFFIX.match(n)
            if m and m["person"] in genuine_persons and m["person"] != n:
                out[n] = (m["person"], True)
            else:
                out[n] = (n, False)
    return out


def has_forgeries(forgery_of: np.ndarray | None) -> bool:
    return forgery_of is not None and len(forgery_of) > 0


def skilled_pairs(labels: np.ndarray, forgery_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (genuine image, forgery of that image's person) pair: indices into the genuine
    images and into the forgeries."""
    g, f = np.nonzero(labels[:, None] == forgery_of[None, :])
    return g, f


def sample_skilled_pairs(labels: np.ndarray, forgery_of: np.ndarray, n: int, seed: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` of the ``skilled_pairs``, drawn with ``seed`` (fixed validation pairs)."""
    return _sample(*skilled_pairs(labels, forgery_of), n, np.random.default_rng(seed))


def _sample(a: np.ndarray, b: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    if len(a) <= n:
        return a, b
    keep = np.sort(rng.choice(len(a), n, replace=False))
    return a[keep], b[keep]


def verification_rates(emb: np.ndarray, labels: np.ndarray, f_emb: np.ndarray,
                       forgery_of: np.ndarray, threshold: float, max_pairs: int = 20_000,
                       seed: int = 0) -> dict:
    """What signature verification reports, at ``threshold`` (same <=> distance <= threshold):
    the false-reject rate of genuine pairs (two genuine images of one person), the false-accept
    rates of random forgeries (genuine images of two people) and of skilled forgeries (a
    genuine image and a forgery of that person), and the equal error rate against each kind.
    Pairs of each kind: all of them, or ``max_pairs`` drawn at random."""
    from .calibrate import equal_error

    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(len(labels), 1)
    same = labels[i] == labels[j]
    gi, gj = _sample(i[same], j[same], max_pairs, rng)
    ri, rj = _sample(i[~same], j[~same], max_pairs, rng)
    si, sf = _sample(*skilled_pairs(labels, forgery_of), max_pairs, rng)
    d_gen = np.linalg.norm(emb[gi] - emb[gj], axis=1)
    d_rand = np.linalg.norm(emb[ri] - emb[rj], axis=1)
    d_skill = np.linalg.norm(emb[si] - f_emb[sf], axis=1)

    def eer(neg: np.ndarray) -> float:
        return equal_error(np.concatenate([d_gen, neg]),
                           np.r_[np.ones(len(d_gen), bool), np.zeros(len(neg), bool)])[0]
    return {"frr": float(np.mean(d_gen > threshold)),
            "far_random": float(np.mean(d_rand <= threshold)),
            "far_skilled": float(np.mean(d_skill <= threshold)),
            "eer_random": eer(d_rand), "eer_skilled": eer(d_skill),
            "n_genuine_pairs": len(d_gen), "n_random_pairs": len(d_rand),
            "n_skilled_pairs": len(d_skill), "n_forgeries": int(len(forgery_of))}
