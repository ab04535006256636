"""A questioned input against several references of one identity: how their distances become
one score that the model's threshold judges.

Three rules, each a score on the scale of a pair's distance (lower: more alike):

- ``median`` of the distances to the references: one odd reference cannot swing it;
- ``mean`` of them;
- ``spread``: the mean less the references' own mean distance among themselves, plus the
  typical distance of two images of one class (``typical``, from validation). A person who signs
  alike every time is held to it, one who varies is allowed their variation: a writer-dependent
  score, what signature verification does with several genuine samples. Below ``MIN_SPREAD``
  references their spread says too little and it is the mean.

With one reference all three are the pair's distance, the verdict the threshold was calibrated
for. Which rule a model uses is chosen on its validation split when it is trained (``choose``:
the lowest equal error rate over enrolments of validation classes, against skilled forgeries
where there are any) and recorded in its metadata (``references``); models without it take the
median, as every model did before. Measured in BENCHMARKS.md (section 10): on signatures the
spread lowers the skilled-forgery EER against 5 references by several points, on faces under
changing light it raises it (the references' spread there is the light's, not the person's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RULES = ("median", "mean", "spread")
MIN_SPREAD = 3           # references before their spread is trusted
CHOOSE_K = (5, 3)        # enrolment sizes tried on validation, largest that enough classes allow
MIN_CLASSES = 3          # validation classes with more than k images, for a choice at all
MAX_CLASSES = 60         # at most these many classes scored (drawn at random beyond)


@dataclass(frozen=True)
class ReferenceRule:
    """How distances to several references become one score (module docstring)."""

    rule: str = "median"
    typical: float = 0.0     # mean distance of two genuine images of one validation class

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"unknown reference rule {self.rule!r} (one of {', '.join(RULES)})")

    def score(self, distances: np.ndarray, references: np.ndarray) -> float:
        """The score of a questioned input whose distances to the references' embeddings
        ``references`` [N, D] are ``distances`` [N]."""
        return float(self.scores(np.asarray(distances)[:, None], references)[0])

    def scores(self, distances: np.ndarray, references: np.ndarray) -> np.ndarray:
        """``score`` of several questioned inputs at once: ``distances`` [N, Q] -> [Q]."""
        return self.scores_at(distances, spread(references) if self.rule == "spread" else 0.0)

    def scores_at(self, distances: np.ndarray, own_spread: float) -> np.ndarray:
        """``scores`` where the references' ``spread`` is known already."""
        d = np.asarray(distances, dtype=np.float64)
        if self.rule == "median":
            return np.median(d, axis=0)
        if self.rule == "spread" and len(d) >= MIN_SPREAD:
            return d.mean(axis=0) - own_spread + self.typical
        return d.mean(axis=0)

    @property
    def label(self) -> str:
        """The score's short name (a metric's label, a table's column)."""
        return {"median": "median distance", "mean": "mean distance",
                "spread": "adjusted distance"}[self.rule]

    def describe(self) -> str:
        """What the score is, in a few words (for a caption)."""
        return {"median": "the median distance to the references",
                "mean": "the mean distance to the references",
                "spread": f"the mean distance to the references less their own spread (from "
                          f"{MIN_SPREAD} references on)"}[self.rule]

    def to_dict(self) -> dict:
        return {"rule": self.rule, "typical": float(self.typical)}

    @classmethod
    def from_meta(cls, meta: dict) -> "ReferenceRule":
        """The rule a model's metadata records; the median when it records none."""
        r = meta.get("references") or {}
        return cls(str(r.get("rule", "median")), float(r.get("typical", 0.0)))


def spread(embeddings: np.ndarray) -> float:
    """The mean distance between two of the rows of ``embeddings`` (0 for fewer than two)."""
    from .calibrate import pairwise_distances
    e = np.asarray(embeddings, dtype=np.float64)
    return spread_of(pairwise_distances(e, e))


def spread_of(among: np.ndarray) -> float:
    """``spread`` from the references' distance matrix [N, N] (0 for fewer than two)."""
    n = len(among)
    return float(among[np.triu_indices(n, 1)].mean()) if n > 1 else 0.0


def _some(classes: np.ndarray, seed: int) -> np.ndarray:
    """At most ``MAX_CLASSES`` of ``classes``, drawn with ``seed`` beyond that (bounded time;
    enough classes to choose a rule on and to measure it)."""
    if len(classes) <= MAX_CLASSES:
        return classes
    return np.sort(np.random.default_rng(seed).choice(classes, MAX_CLASSES, replace=False))


def _eer(same: np.ndarray, other: np.ndarray) -> float:
    """Equal error rate of scores (lower: more alike) of genuine and impostor trials."""
    from .calibrate import equal_error
    return equal_error(np.concatenate([same, other]),
                       np.r_[np.ones(len(same), bool), np.zeros(len(other), bool)])[0]


def enrolment_scores(emb: np.ndarray, labels: np.ndarray, k: int, rule: ReferenceRule,
                     f_emb: np.ndarray | None = None, forgery_of: np.ndarray | None = None,
                     draws: int = 10, max_impostors: int = 200, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Scores by ``rule`` of enrolments of ``k`` images of each class with more than ``k``
    (at most ``MAX_CLASSES`` of them): (the class's other images, the impostors). Impostors
    are the class's skilled forgeries where ``f_emb``/``forgery_of`` give any, else at most
    ``max_impostors`` of the other classes' images. ``draws`` random enrolments a class, from
    ``seed``: every rule is scored on the same ones."""
    return _enrolments(emb, labels, k, (rule,), f_emb, forgery_of, draws, max_impostors,
                       seed)[rule.rule]


def _enrolments(emb: np.ndarray, labels: np.ndarray, k: int, rules: tuple[ReferenceRule, ...],
                f_emb: np.ndarray | None, forgery_of: np.ndarray | None, draws: int = 10,
                max_impostors: int = 200, seed: int = 0
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``enrolment_scores`` of several rules over one set of distances and draws."""
    from .calibrate import pairwise_distances

    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    of = np.asarray(forgery_of) if forgery_of is not None else np.zeros(0, np.int64)
    forged = f_emb is not None and len(of) > 0
    classes, counts = np.unique(labels, return_counts=True)
    usable = classes[(counts > k) & (np.isin(classes, of) if forged else True)]
    usable = _some(usable, seed)
    if not forged:   # impostors: other classes' images, of the same classes (bounded time)
        rows = np.isin(labels, usable)
        emb, labels = np.asarray(emb)[rows], labels[rows]
    emb = np.asarray(emb, dtype=np.float64)
    dist = pairwise_distances(emb, emb)
    f_dist = pairwise_distances(emb, np.asarray(f_emb, dtype=np.float64)) if forged else None
    scored: dict[str, tuple[list, list]] = {r.rule: ([], []) for r in rules}
    for c in usable:
        mine = np.flatnonzero(labels == c)
        impostors = np.flatnonzero(of == c) if forged else np.flatnonzero(labels != c)
        if not len(impostors):
            continue
        if len(impostors) > max_impostors:
            impostors = np.sort(rng.choice(impostors, max_impostors, replace=False))
        for _ in range(draws):
            ref = rng.choice(mine, k, replace=False)
            rest = np.setdiff1d(mine, ref)
            d_same = dist[np.ix_(ref, rest)]
            d_imp = (f_dist if f_dist is not None else dist)[np.ix_(ref, impostors)]
            own = spread_of(dist[np.ix_(ref, ref)])
            for r in rules:
                scored[r.rule][0].append(r.scores_at(d_same, own))
                scored[r.rule][1].append(r.scores_at(d_imp, own))
    return {name: (np.concatenate(same), np.concatenate(other)) if same
            else (np.zeros(0), np.zeros(0)) for name, (same, other) in scored.items()}


def choose(emb: np.ndarray, labels: np.ndarray, f_emb: np.ndarray | None = None,
           forgery_of: np.ndarray | None = None, seed: int = 0) -> tuple[ReferenceRule, dict]:
    """The rule with the lowest equal error rate over enrolments of the validation classes
    (``enrolment_scores``), and what was measured: ``{"k": k, "eer": {rule: EER}, "against":
    "skilled forgeries" | "other classes", "classes": n}``. Too few classes with enough
    images: the median, and ``{}``. A tie keeps the earlier rule of ``RULES``."""
    labels = np.asarray(labels)
    of = np.asarray(forgery_of) if forgery_of is not None else np.zeros(0, np.int64)
    forged = len(of) > 0
    classes, counts = np.unique(labels, return_counts=True)
    if forged:      # only classes with forgeries can be scored against them
        counts = counts[np.isin(classes, of)]
    k = next((k for k in CHOOSE_K if (counts > k).sum() >= MIN_CLASSES), None)
    if k is None:
        return ReferenceRule(), {}
    from .calibrate import pairwise_distances
    emb = np.asarray(emb, dtype=np.float64)
    within = [pairwise_distances(emb[labels == c], emb[labels == c])
              for c in _some(classes, seed)]
    typical = float(np.concatenate([w[np.triu_indices(len(w), 1)] for w in within]).mean())
    scored = _enrolments(emb, labels, k, tuple(ReferenceRule(r, typical) for r in RULES),
                         f_emb, forgery_of, seed=seed)
    eers = {name: _eer(s, o) for name, (s, o) in scored.items() if len(s) and len(o)}
    if not eers:
        return ReferenceRule(), {}
    best = min(eers, key=lambda r: (eers[r], RULES.index(r)))
    return ReferenceRule(best, typical), {
        "k": k, "eer": eers, "classes": int(min((counts > k).sum(), MAX_CLASSES)),
        "against": "skilled forgeries" if forged else "other classes"}


def enrolment_rates(emb: np.ndarray, labels: np.ndarray, rule: ReferenceRule, threshold: float,
                    k: int, f_emb: np.ndarray | None = None,
                    forgery_of: np.ndarray | None = None, seed: int = 0) -> dict:
    """What verification against ``k`` references of the claimed class does on a split, by
    ``rule`` at ``threshold``: false rejects of the class's other images, false accepts of its
    impostors (skilled forgeries where there are any, else other classes' images) and the
    equal error rate (``enrolment_scores``); ``{}`` when no class has more than ``k`` images."""
    same, other = enrolment_scores(emb, labels, k, rule, f_emb, forgery_of, seed=seed)
    if not len(same) or not len(other):
        return {}
    forged = forgery_of is not None and len(forgery_of) > 0
    return {"k": k, "rule": rule.rule, "frr": float(np.mean(same > threshold)),
            "far": float(np.mean(other <= threshold)), "eer": _eer(same, other),
            "against": "skilled forgeries" if forged else "other classes"}
