"""Enrol and identify people a model never saw, through ``siamese_core.gallery.Gallery``.

The model's own test split (whole classes held out of training and of the threshold's choice)
is divided at random, per repeat, into enrolled people and strangers. Each enrolled person gets
``k`` images in a fresh gallery; every other image of theirs is questioned (1:N identify), and
so is every image of the strangers, who should come out *unknown*. Reports, per k: rank-1
accuracy (the nearest identity is the right one, threshold ignored), correct identifications
(the right one, and accepted), false rejections (the right one nearest but over the threshold),
and strangers accepted as someone.

    python bench/gallery.py --weights runs/faces [--shots 1 3 5] [--repeats 20] [--far 0.01]

``--ratios R ...`` also tries a second rule for strangers, not the Gallery's: accept the nearest
identity only when it is clearly nearer than the second (d1 <= R * d2), against the threshold
alone lowered until it identifies as many (BENCHMARKS.md section 12: no gain on Yale B).
"""
from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from common import save, table

from siamese_core import SiameseModel, load_dataset
from siamese_core.references import RULES
from siamese_core.gallery import Gallery


def threshold_at_far(m: SiameseModel, far: float) -> float:
    """The largest threshold whose validation false-accept rate (of pairs) is at most ``far``,
    from the model's operating points."""
    p = m.meta["operating_points"]
    ok = [t for t, f in zip(p["threshold"], p["far"]) if f <= far]
    return float(max(ok)) if ok else float(min(p["threshold"]))


def questions(m: SiameseModel, ds, k: int, repeats: int, seed: int
              ) -> Iterator[tuple[Gallery, int, str | None]]:
    """Per repeat, a random division of the test people into enrolled (k images each, in a
    fresh gallery) and strangers; yields (gallery, image index, the right name) for every other
    image of an enrolled person, then (gallery, image index, None) for every stranger's."""
    rng = np.random.default_rng(seed)
    classes = np.unique(ds.labels)
    for _ in range(repeats):
        order = rng.permutation(classes)
        enrolled, strangers = order[:max(2, len(order) // 2)], order[max(2, len(order) // 2):]
        with tempfile.TemporaryDirectory() as d:
            g = Gallery(Path(d) / "g.sqlite", m)
            asked: list[tuple[int, str | None]] = []
            for c in enrolled:
                idx = rng.permutation(np.flatnonzero(ds.labels == c))
                g.enrol(ds.class_names[c], ds.images[idx[:k]])
                asked += [(i, ds.class_names[c]) for i in idx[k:]]
            asked += [(i, None) for c in strangers for i in np.flatnonzero(ds.labels == c)]
            for i, name in asked:
                yield g, i, name


def measure(m: SiameseModel, ds, k: int, repeats: int, seed: int,
            threshold: float | None = None) -> dict:
    classes = np.unique(ds.labels)
    counts = dict(rank1=0, correct=0, rejected=0, asked=0, stranger_accepted=0, strangers=0)
    for g, i, name in questions(m, ds, k, repeats, seed):
        r = g.identify(ds.images[i], threshold)
        if name is None:
            counts["strangers"] += 1
            counts["stranger_accepted"] += r.name is not None
            continue
        counts["asked"] += 1
        counts["rank1"] += r.ranking[0][0] == name
        counts["correct"] += r.name == name
        counts["rejected"] += r.ranking[0][0] == name and r.name is None
    pct = lambda a, b: round(100 * counts[a] / max(1, counts[b]), 1)  # noqa: E731
    return {"threshold": round(m.threshold if threshold is None else threshold, 3),
            "k": k, "enrolled": len(classes) // 2, "strangers": len(classes) - len(classes) // 2,
            "questions": counts["asked"], "rank-1 %": pct("rank1", "asked"),
            "identified %": pct("correct", "asked"), "falsely rejected %": pct("rejected", "asked"),
            "stranger accepted %": pct("stranger_accepted", "strangers")}


def nearest_two(m: SiameseModel, ds, k: int, repeats: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The same questions as ``measure``; per question the distances to the nearest and the
    second-nearest identity and whether the nearest is the right one: (enrolled people's
    questions, strangers' questions), each an array of rows (d1, d2, right)."""
    known, strange = [], []
    for g, i, name in questions(m, ds, k, repeats, seed):
        (n1, v1), (_, v2) = g.identify(ds.images[i]).ranking[:2]
        (known if name else strange).append((v1.distance, v2.distance, n1 == name))
    return np.array(known, float).reshape(-1, 3), np.array(strange, float).reshape(-1, 3)


def ratio_rows(m: SiameseModel, known: np.ndarray, strange: np.ndarray, k: int,
               ratios: list[float]) -> list[dict]:
    """A second rule tried for strangers (not the Gallery's): accept the nearest identity only
    if it is also clearly nearer than the second (d1 / d2 <= r; Lowe's ratio test), at the
    calibrated threshold. Beside each, the threshold alone lowered until it identifies at least
    as many: the rule helps only where it accepts fewer strangers than that threshold."""
    def rates(t: float, r: float) -> tuple[float, float]:
        ok = lambda q: (q[:, 0] <= t) & (q[:, 0] <= r * q[:, 1])  # noqa: E731
        pct = lambda hits: 100 * float(hits.mean()) if hits.size else 0.0  # noqa: E731
        return pct(ok(known) & (known[:, 2] == 1)), pct(ok(strange))
    t0 = m.threshold
    grid = np.unique(np.concatenate([known[:, 0], [t0]]))
    rows = []
    for r in ratios:
        ident, acc = rates(t0, r)
        t_alone = min((t for t in grid if rates(t, np.inf)[0] >= ident), default=t0)
        rows.append({"k": k, "ratio": r, "identified % (ratio rule)": round(ident, 1),
                     "strangers accepted % (ratio rule)": round(acc, 1),
                     "threshold alone, as many identified": round(float(t_alone), 3),
                     "strangers accepted % (threshold alone)": round(rates(t_alone, np.inf)[1], 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="a trained model's prefix")
    ap.add_argument("--dataset", default=None, help="default: the model's own dataset")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--far", type=float, nargs="*", default=[0.01],
                    help="also at the thresholds with these validation false-accept rates")
    ap.add_argument("--ratios", type=float, nargs="*", default=[],
                    help="also try the ratio rule d1/d2 <= R against a lower threshold alone")
    ap.add_argument("--rule", choices=RULES, default=None,
                    help="score identities by this rule for several images instead of the one "
                         "the model chose on validation (a paired comparison on one model)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    m = SiameseModel.load(args.weights)
    chosen = m.references
    if args.rule is not None:
        m = SiameseModel(m._session, {**m.meta, "references": {
            **(m.meta.get("references") or {}), "rule": args.rule}}, m.prefix)
    spec = args.dataset or m.meta["dataset"]
    ds = load_dataset(spec, "test", m.meta.get("holdout", "auto"), m.prep)
    n = np.bincount(ds.labels)
    shots = [k for k in args.shots if k < n[n > 0].min()]
    thresholds = [None] + [threshold_at_far(m, f) for f in args.far]
    rows = [measure(m, ds, k, args.repeats, args.seed, t) for t in thresholds for k in shots]
    print(f"{Path(args.weights).name} on {len(np.unique(ds.labels))} people of its test split "
          f"(never trained on), {args.repeats} random enrolled/stranger divisions per row, at "
          f"the calibrated threshold {m.threshold:.3f} and at validation false-accept rates "
          f"{', '.join(f'{f:.0%}' for f in args.far)}; identities scored by the {m.references.label} "
          f"(the model chose the {chosen.label}):")
    print(table(rows, list(rows[0])))
    ratio = [row for k in shots if args.ratios for row in
             ratio_rows(m, *nearest_two(m, ds, k, args.repeats, args.seed), k, args.ratios)]
    if ratio:
        print("the ratio rule (nearest identity clearly nearer than the second), at the "
              "calibrated threshold, against the threshold alone identifying as many:")
        print(table(ratio, list(ratio[0])))
    print("saved", save("gallery", {"weights": args.weights, "dataset": spec, "rows": rows,
                                    "ratio_rule": ratio, "rule": m.references.rule,
                                    "chosen_rule": chosen.rule}, args.out))


if __name__ == "__main__":
    main()
