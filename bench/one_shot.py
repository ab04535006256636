"""One-shot verification of characters from alphabets never seen in training (Omniglot).

Trains our recipe for user data (``config.recipe``) on 6 alphabets of Omniglot's "minimal"
background sets (the union of ``images_background_small1.zip`` and ``..._small2.zip``, from the
dataset authors' repository ``brendenlake/omniglot``), holds out 2 whole alphabets, and runs
seeded N-way k-shot **within-alphabet** episodes on them: k drawings of each of N characters of
one alphabet, one more drawing of one of them to classify. The same episodes are scored, in the
same run, by two non-learned peers: Modified Hausdorff Distance between centred ink-pixel
coordinates (the dataset repository's baseline) and raw-pixel 1-nearest-neighbour. With k > 1
our model compares with the mean of a class's embeddings, the peers with the nearest example.

    python bench/one_shot.py ../shared/data/omniglot                    # 5-min recipe, ~7 min
    python bench/one_shot.py ../shared/data/omniglot --seconds 60 --set loss='"contrastive"'
"""
from __future__ import annotations

import argparse
import os
from collections import Counter
import time
from pathlib import Path

import numpy as np

from common import parse_sets, save, table

ZIPS = ("images_background_small1.zip", "images_background_small2.zip")
SETTINGS = ((5, 1), (5, 5), (20, 1), (20, 5))     # (N-way, k-shot)


def load_omniglot(directory: Path, prep):
    """Raw grey images (105 px, black ink on white), network inputs, character and alphabet
    names, from both zips; characters in both (Greek, Latin) are taken once."""
    from siamese_core.archive import scan_zip
    from siamese_core.preprocess import load_image, prepare

    raw, net, chars = [], [], []
    seen = set()
    for name in ZIPS:
        tree = scan_zip(directory / name, name)
        with tree.reader() as read:
            for cls, files in tree.classes.items():
                if cls in seen:
                    continue
                seen.add(cls)
                for _, entry in files:
                    gray = load_image(read(entry))
                    raw.append(gray)
                    net.append(prepare(gray, prep))
                    chars.append(cls)
    names = sorted(set(chars))
    labels = np.array([names.index(c) for c in chars])
    return np.stack(raw), np.stack(net), labels, names


def split_alphabets(names: list[str], heldout: list[str] | None, seed: int) -> list[str]:
    alphabets = sorted({n.split("/")[0] for n in names})
    if heldout:
        missing = set(heldout) - set(alphabets)
        if missing:
            raise SystemExit(f"unknown alphabet(s) {sorted(missing)}; have {alphabets}")
        return heldout
    # Two alphabets with at least 20 characters, so 20-way episodes stay within one alphabet.
    big = [a for a in alphabets if sum(n.startswith(a + "/") for n in names) >= 20]
    return sorted(np.random.default_rng(seed).choice(big, 2, replace=False).tolist())


def episodes(labels, names, n_way, shots, count, seed):
    """[(support indices [N, k], query index, target position)], within one alphabet each."""
    rng = np.random.default_rng(seed)
    by_alpha: dict[str, list[int]] = {}
    for c in np.unique(labels):
        by_alpha.setdefault(names[c].split("/")[0], []).append(int(c))
    usable = [cs for cs in by_alpha.values() if len(cs) >= n_way]
    groups = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    out = []
    for _ in range(count):
        chars = rng.choice(usable[rng.integers(len(usable))], n_way, replace=False)
        target = int(rng.integers(n_way))
        support, query = [], None
        for j, c in enumerate(chars):
            pick = rng.choice(groups[c], shots + 1, replace=False)
            support.append(pick[:shots])
            if j == target:
                query = int(pick[shots])
        out.append((np.stack(support), query, target))
    return out


def ink_points(gray: np.ndarray) -> np.ndarray:
    """Coordinates of the ink pixels, centred on their mean (MHD's input)."""
    pts = np.argwhere(gray < 128).astype(np.float64)
    return pts - pts.mean(0) if len(pts) else np.zeros((1, 2))


def mhd(a, b, tree_a, tree_b) -> float:
    """Modified Hausdorff Distance (Dubuisson & Jain 1994)."""
    return max(tree_b.query(a)[0].mean(), tree_a.query(b)[0].mean())


def score(eps, dist_to, proto: bool, emb=None) -> float:
    """Error % of nearest-class classification over episodes; ``dist_to(query, idx)``."""
    wrong = 0
    for support, query, target in eps:
        if proto:
            protos = emb[support].mean(1)                       # [N, D]
            d = np.linalg.norm(protos - emb[query][None], axis=1)
        else:
            d = np.array([min(dist_to(query, i) for i in row) for row in support])
        wrong += int(np.argmin(d) != target)
    return 100.0 * wrong / len(eps)


def run_fold(a, cfg, raw, net, labels, names, held: list[str]) -> dict:
    """Train on every alphabet but ``held``; score all settings on ``held``."""
    from scipy.spatial import cKDTree

    from siamese_core import SiameseModel
    from siamese_core.data import Dataset
    from siamese_core.train import train

    alpha = np.array([names[c].split("/")[0] for c in labels])
    test_idx = np.flatnonzero(np.isin(alpha, held))
    train_idx = np.flatnonzero(~np.isin(alpha, held))
    # Validation: whole characters of the training alphabets (the recipe's early stopping).
    chars = np.unique(labels[train_idx])
    val_chars = np.random.default_rng(a.seed).choice(chars, int(round(0.2 * len(chars))),
                                                    replace=False)
    is_val = np.isin(labels[train_idx], val_chars)

    def ds(idx, split):
        return Dataset(net[idx], labels[idx], names, "omniglot-minimal", split, "class")

    train_ds, val_ds = ds(train_idx[~is_val], "train"), ds(train_idx[is_val], "val")
    test_ds = ds(test_idx, "test")
    print(f"held out {held}: train {len(train_ds)} images / {len(np.unique(train_ds.labels))} "
          f"characters, val {len(val_ds)} / {len(val_chars)}, test {len(test_ds)} / "
          f"{len(np.unique(test_ds.labels))}", flush=True)
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"one_shot_{os.getpid()}" / "model"
    end = train(cfg, out=out, train_data=train_ds, val_data=val_ds, test_data=test_ds)
    emb = SiameseModel.load(out).embed(net[test_idx])
    y_test = labels[test_idx]
    print(f"trained {end.meta['train_seconds']} s, best epoch {end.best_epoch}/{end.epochs_done}",
          flush=True)

    trees, points, cache = {}, {}, {}
    flat = raw[test_idx].reshape(len(test_idx), -1).astype(np.float32) / 255.0

    def mhd_to(q, i):
        key = (min(q, i), max(q, i))
        if key not in cache:
            for j in key:
                if j not in trees:
                    points[j] = ink_points(raw[test_idx[j]])
                    trees[j] = cKDTree(points[j])
            cache[key] = mhd(points[key[0]], points[key[1]], trees[key[0]], trees[key[1]])
        return cache[key]

    rows = []
    per_alphabet = Counter(names[c].split("/")[0] for c in np.unique(y_test))
    largest = max(per_alphabet.values())
    for n_way, shots in SETTINGS:
        if n_way > largest:
            print(f"skipped {n_way}-way: no held-out alphabet has {n_way} characters")
            continue
        eps = episodes(y_test, names, n_way, shots, a.episodes, a.seed + 17)
        row = {"setting": f"{n_way}-way {shots}-shot", "episodes": len(eps),
               "ours": score(eps, None, True, emb)}
        if a.peers:
            row["mhd"] = score(eps, mhd_to, False)
            row["raw_pixel_1nn"] = score(
                eps, lambda q, i: float(np.linalg.norm(flat[q] - flat[i])), False)
        rows.append(row)
        print(row, flush=True)
    return {"heldout_alphabets": held, "error_percent": rows,
            "train_seconds": end.meta["train_seconds"], "best_epoch": end.best_epoch,
            "epochs_done": end.epochs_done, "validation": end.metrics, "test": end.meta["test"],
            "n_images": {"train": len(train_ds), "val": len(val_ds), "test": len(test_ds)}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("omniglot", type=Path,
                   help="folder holding the two images_background_small zips")
    p.add_argument("--seconds", type=float, default=None, help="training budget (default: recipe)")
    p.add_argument("--episodes", type=int, default=1000, help="per setting (default 1000)")
    p.add_argument("--heldout", default=None, help="comma-separated alphabets to hold out")
    p.add_argument("--folds", type=int, default=1,
                   help="train this many models, each holding out 2 other alphabets (at most 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="TrainConfig override (repeatable)")
    p.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", default=None, help="results JSON (default bench/results/one_shot.json)")
    a = p.parse_args()

    from siamese_core.config import recipe

    overrides = parse_sets(a.set)
    if a.seconds is not None:
        overrides["seconds"] = a.seconds
    cfg = recipe("omniglot-minimal", new_classes=True, seed=a.seed, **overrides)
    t = time.perf_counter()
    raw, net, labels, names = load_omniglot(a.omniglot, cfg.prep)
    print(f"loaded {len(labels)} images, {len(names)} characters in "
          f"{time.perf_counter() - t:.1f} s")
    if a.heldout:
        folds = [split_alphabets(names, a.heldout.split(","), a.seed)]
    else:
        first = split_alphabets(names, None, a.seed)
        rest = [x for x in np.random.default_rng(a.seed).permutation(
            sorted({n.split("/")[0] for n in names})).tolist() if x not in first]
        folds = [first] + [sorted(rest[i:i + 2]) for i in range(0, len(rest), 2)]
        folds = folds[:a.folds]
    results = [run_fold(a, cfg, raw, net, labels, names, held) for held in folds]
    rows = []
    for n_way, shots in SETTINGS:
        name = f"{n_way}-way {shots}-shot"
        got = [e for r in results for e in r["error_percent"] if e["setting"] == name]
        if not got:
            continue
        row = {"setting": name, "episodes": sum(e["episodes"] for e in got), "folds": len(got)}
        for k in ("ours", "mhd", "raw_pixel_1nn"):
            if k in got[0]:
                row[k] = float(np.mean([e[k] for e in got]))
        rows.append(row)
    print(f"mean over {len(results)} fold(s): {[r['heldout_alphabets'] for r in results]}")
    print(table(rows, ["setting", "episodes", "ours", "mhd", "raw_pixel_1nn"]))
    path = save("one_shot", {"config": cfg.to_dict(), "mean_error_percent": rows,
                             "folds": results}, a.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
