"""Pair generation: vectorised ``make_pairs`` vs the tutorial's per-image Python loop.

    python bench/pairs.py [--n 60000] [--repeat 5]
"""
from __future__ import annotations

import argparse

import numpy as np
from common import median, save, table, timeit

from siamese_core.pairs import make_pairs


def tutorial_pairs(labels: np.ndarray, seed: int = 0):
    """The seed tutorial's recipe: for every image, pick one positive and one negative partner
    with ``np.random.choice`` over per-class index lists (one Python iteration per image)."""
    rng = np.random.default_rng(seed)
    num_classes = len(np.unique(labels))
    idx = [np.where(labels == i)[0] for i in range(num_classes)]
    pairs, out_labels = [], []
    for i in range(len(labels)):
        label = labels[i]
        pos = rng.choice(idx[label])
        pairs.append((i, pos))
        out_labels.append(1)
        neg = rng.choice(np.where(labels != label)[0])
        pairs.append((i, neg))
        out_labels.append(0)
    return np.array(pairs), np.array(out_labels)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--loop-n", type=int, default=None,
                    help="labels for the slow loop (default: --n; it is linear in n)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    labels = np.random.default_rng(0).integers(0, 10, a.n)
    fast = timeit(lambda: make_pairs(labels, 0), repeat=a.repeat)
    loop_n = a.loop_n or a.n
    slow = timeit(lambda: tutorial_pairs(labels[:loop_n]), repeat=max(1, a.repeat // 2))
    n_fast, n_slow = 2 * a.n, 2 * loop_n
    rows = [
        {"method": "make_pairs (vectorised)", "labels": a.n, "pairs": n_fast,
         "median s": median(fast), "pairs/s": n_fast / median(fast)},
        {"method": "per-image loop (tutorial)", "labels": loop_n, "pairs": n_slow,
         "median s": median(slow), "pairs/s": n_slow / median(slow)},
    ]
    ratio = rows[0]["pairs/s"] / rows[1]["pairs/s"]
    print(table(rows, ["method", "labels", "pairs", "median s", "pairs/s"]))
    print(f"\nspeed-up: {ratio:,.0f}x (pairs/s, same run)")
    path = save("pairs", {"rows": rows, "speedup": ratio, "repeat": a.repeat}, a.out)
    print(f"wrote {path}")
    return {"rows": rows, "speedup": ratio}


if __name__ == "__main__":
    main()
