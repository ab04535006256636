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

To tell a 1-point gain from luck (issue 23): ``--loo`` holds out each of the 8 alphabets in
turn (8 folds), ``--seeds K`` trains K models per fold (the episodes stay the same), and
``--versus FIELD=JSON`` trains a second recipe (this one plus the overrides) on the same folds,
seeds and episodes. Errors come with a 95 % interval from a two-level bootstrap (alphabets,
then episodes within each), and the two recipes are compared episode by episode under the same
resamples (the paired bootstrap). Folds of the alphabets in ``--chosen`` (those today's recipe
was chosen on) are reported apart from the others, which only report::

    python bench/one_shot.py ../shared/data/omniglot --loo --seeds 2 --versus top_convs=2

``--test-time tta,centre`` scores the first recipe's models again, changed only at test time
(the same models and episodes, compared paired): ``tta`` averages the embeddings of each image
and 8 small warps of it (test-time augmentation); ``centre`` measures distances after taking
away the mean embedding of the episode's support images (SimpleShot's centring, from the
support set alone) and renormalising.
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import parse_sets, save, table
from siamese_core.test_time import WARPS

ZIPS = ("images_background_small1.zip", "images_background_small2.zip")
SETTINGS = ((5, 1), (5, 5), (20, 1), (20, 5))     # (N-way, k-shot)
# The folds today's recipe was chosen on (BENCHMARKS.md section 9: Korean + Latin, Greek +
# Japanese (katakana)): a fold holding out one of these is "chosen", the others only report.
CHOSEN = ("Korean", "Latin", "Greek", "Japanese_(katakana)")
N_BOOT = 2000
TEST_TIME = ("tta", "centre")



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


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def wrong(eps, dist_to, proto: bool, emb=None, centre: bool = False) -> np.ndarray:
    """Per episode, whether nearest-class classification got it wrong; ``dist_to(query, idx)``
    (peers: the nearest example) or ``emb`` (ours: the mean of a class's embeddings; ``centre``:
    after taking away the support images' mean embedding, renormalised)."""
    out = np.zeros(len(eps), bool)
    for e, (support, query, target) in enumerate(eps):
        if proto:
            s, q = emb[support], emb[query]
            if centre:
                mean = s.reshape(-1, s.shape[-1]).mean(0)
                s, q = unit(s - mean), unit(q - mean)
            protos = s.mean(1)                                  # [N, D]
            d = np.linalg.norm(protos - q[None], axis=1)
        else:
            d = np.array([min(dist_to(query, i) for i in row) for row in support])
        out[e] = np.argmin(d) != target
    return out


def score(eps, dist_to, proto: bool, emb=None) -> float:
    """Error % of nearest-class classification over episodes (``wrong``)."""
    return 100.0 * float(wrong(eps, dist_to, proto, emb).mean())


def bootstrap(a: list[np.ndarray], b: list[np.ndarray] | None = None, n_boot: int = N_BOOT,
              seed: int = 0) -> dict:
    """Error % over folds (each fold's per-episode errors ``a[f]``, averaged over its seeds) and
    its 95 % interval from resampling the folds (alphabets), then the episodes within each
    drawn fold. With ``b`` (the other recipe on the same episodes): a - b, its interval and the
    share of resamples where a is not better, under the same resamples (paired)."""
    rng = np.random.default_rng(seed)
    point = lambda xs: 100.0 * float(np.mean([x.mean() for x in xs]))     # noqa: E731
    stats_a, stats_d = [], []
    for _ in range(n_boot):
        folds = rng.integers(len(a), size=len(a))
        picks = [(f, rng.integers(len(a[f]), size=len(a[f]))) for f in folds]
        ea = 100.0 * float(np.mean([a[f][i].mean() for f, i in picks]))
        stats_a.append(ea)
        if b is not None:
            stats_d.append(ea - 100.0 * float(np.mean([b[f][i].mean() for f, i in picks])))
    out = {"error": point(a), "low": float(np.percentile(stats_a, 2.5)),
           "high": float(np.percentile(stats_a, 97.5)), "folds": len(a)}
    if b is not None:
        d = np.array(stats_d)
        out.update(versus_error=point(b), difference=point(a) - point(b),
                   difference_low=float(np.percentile(d, 2.5)),
                   difference_high=float(np.percentile(d, 97.5)),
                   p_not_better=float(np.mean(d >= 0)))
    return out


def run_fold(a, cfgs: dict, raw, net, labels, names, held: list[str]) -> dict:
    """Train each recipe of ``cfgs`` ({name: [configs, one per seed]}) on every alphabet but
    ``held``; score all settings on ``held``, the same episodes for every model."""
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
    embs: dict[str, list] = {}
    runs: dict[str, list] = {}
    for name, seeds in cfgs.items():
        for cfg in seeds:
            end = train(cfg, out=out, train_data=train_ds, val_data=val_ds, test_data=test_ds)
            model = SiameseModel.load(out)
            # Each recipe scored on its plain embeddings; "tta" on the same model's averaged
            # over the warps (test_time.py), whichever the model was calibrated with.
            embs.setdefault(name, []).append(model.embed(net[test_idx], test_time="none"))
            if name == "ours" and "tta" in a.test_time:
                embs.setdefault("tta", []).append(model.embed(net[test_idx], test_time="tta"))
            runs.setdefault(name, []).append(
                {"seed": cfg.seed, "train_seconds": end.meta["train_seconds"],
                 "best_epoch": end.best_epoch, "epochs_done": end.epochs_done,
                 "validation": end.metrics, "test": end.meta["test"]})
            print(f"{name} seed {cfg.seed}: trained {end.meta['train_seconds']} s, best epoch "
                  f"{end.best_epoch}/{end.epochs_done}", flush=True)
    y_test = labels[test_idx]

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
        row = {"setting": f"{n_way}-way {shots}-shot", "episodes": len(eps)}
        scored = dict(embs)
        if "centre" in a.test_time:
            scored["centre"] = embs["ours"]
        for name, es in scored.items():
            # Per episode, the share of the seeds' models that got it wrong.
            w = np.mean([wrong(eps, None, True, e, centre=name == "centre") for e in es], axis=0)
            row[name] = 100.0 * float(w.mean())
            row[f"{name}_wrong"] = [round(float(x), 4) for x in w]
        if a.peers:
            row["mhd"] = score(eps, mhd_to, False)
            row["raw_pixel_1nn"] = score(
                eps, lambda q, i: float(np.linalg.norm(flat[q] - flat[i])), False)
        rows.append(row)
        print({k: v for k, v in row.items() if not k.endswith("_wrong")}, flush=True)
    return {"heldout_alphabets": held, "error_percent": rows, "runs": runs,
            "n_images": {"train": len(train_ds), "val": len(val_ds), "test": len(test_ds)}}


def summarise(results: list[dict], recipes: list[str], peers: bool) -> list[dict]:
    """Per setting and group of folds (all, chosen, report-only): each method's error with its
    interval; with more recipes, each one's paired difference from the first (``stats``: against
    the second, ``stats_<name>`` against each)."""
    rows = []
    for n_way, shots in SETTINGS:
        name = f"{n_way}-way {shots}-shot"
        for group in ("all", "chosen", "report-only"):
            got = [(r, e) for r in results for e in r["error_percent"] if e["setting"] == name
                   and (group == "all" or bool(set(r["heldout_alphabets"]) & set(CHOSEN))
                        == (group == "chosen"))]
            if not got or (group != "all" and len(got) == sum(
                    e["setting"] == name for r in results for e in r["error_percent"])):
                continue      # no such folds, or the group is all of them
            row = {"setting": name, "folds": group, "n": len(got),
                   "episodes": sum(e["episodes"] for _, e in got)}
            a = [np.asarray(e[f"{recipes[0]}_wrong"]) for _, e in got]
            stats = bootstrap(a)
            row["ours"] = f"{stats['error']:.1f} [{stats['low']:.1f}, {stats['high']:.1f}]"
            for k, other in enumerate(recipes[1:]):
                b = [np.asarray(e[f"{other}_wrong"]) for _, e in got]
                st = bootstrap(a, b)
                # "a - b" > 0: the other is better; p(a not better) near 1: the other is better.
                row[other] = f"{st['versus_error']:.1f}"
                row[f"ours - {other}"] = (f"{st['difference']:+.2f} [{st['difference_low']:+.2f}"
                                          f", {st['difference_high']:+.2f}]")
                row[f"p({other} not worse)"] = f"{st['p_not_better']:.3f}"
                row[f"stats_{other}"] = st
                if k == 0:
                    stats = st
            if peers:
                for k in ("mhd", "raw_pixel_1nn"):
                    row[k] = f"{np.mean([e[k] for _, e in got]):.1f}"
            row["stats"] = stats
            rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("omniglot", type=Path,
                   help="folder holding the two images_background_small zips")
    p.add_argument("--seconds", type=float, default=None, help="training budget (default: recipe)")
    p.add_argument("--episodes", type=int, default=1000, help="per setting (default 1000)")
    p.add_argument("--heldout", default=None, help="comma-separated alphabets to hold out")
    p.add_argument("--folds", type=int, default=1,
                   help="train this many models, each holding out 2 other alphabets (at most 4)")
    p.add_argument("--loo", action="store_true",
                   help="leave one alphabet out: a fold per alphabet (8)")
    p.add_argument("--only", default=None,
                   help="with --loo: comma-separated alphabets whose folds to run")
    p.add_argument("--seeds", type=int, default=1, help="training seeds per fold and recipe")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="TrainConfig override (repeatable)")
    p.add_argument("--versus", action="append", default=[], metavar="FIELD=JSON",
                   help="also train this recipe (--set's plus these overrides) on the same "
                        "folds, seeds and episodes, and compare it with the first, paired")
    p.add_argument("--test-time", default="",
                   help="comma-separated test-time variants of the first recipe, scored on its "
                        f"models and compared paired: {', '.join(TEST_TIME)}")
    p.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", default=None, help="results JSON (default bench/results/one_shot.json)")
    a = p.parse_args()
    a.test_time = [x for x in a.test_time.split(",") if x]
    if set(a.test_time) - set(TEST_TIME):
        p.error(f"--test-time takes {', '.join(TEST_TIME)}; got {a.test_time}")

    from siamese_core.config import recipe

    overrides = parse_sets(a.set)
    if a.seconds is not None:
        overrides["seconds"] = a.seconds
    base = recipe("omniglot-minimal", new_classes=True, seed=a.seed, **overrides)
    cfgs = {"ours": [replace(base, seed=a.seed + k) for k in range(a.seeds)]}
    if a.versus:
        other = replace(base, **parse_sets(a.versus))
        cfgs["versus"] = [replace(other, seed=a.seed + k) for k in range(a.seeds)]
    t = time.perf_counter()
    raw, net, labels, names = load_omniglot(a.omniglot, base.prep)
    print(f"loaded {len(labels)} images, {len(names)} characters in "
          f"{time.perf_counter() - t:.1f} s")
    alphabets = sorted({n.split("/")[0] for n in names})
    if a.loo:
        folds = [[x] for x in alphabets if a.only is None or x in a.only.split(",")]
    elif a.heldout:
        folds = [split_alphabets(names, a.heldout.split(","), a.seed)]
    else:
        first = split_alphabets(names, None, a.seed)
        rest = [x for x in np.random.default_rng(a.seed).permutation(alphabets).tolist()
                if x not in first]
        folds = [first] + [sorted(rest[i:i + 2]) for i in range(0, len(rest), 2)]
        folds = folds[:a.folds]
    results = [run_fold(a, cfgs, raw, net, labels, names, held) for held in folds]
    recipes = list(cfgs) + a.test_time
    rows = summarise(results, recipes, a.peers)
    print(f"{len(results)} fold(s): {[r['heldout_alphabets'] for r in results]}; "
          f"{a.seeds} seed(s) per fold; error %, 95 % interval over alphabets and episodes")
    cols = ["setting", "folds", "n", "episodes", "ours"] + [
        c for r in recipes[1:] for c in (r, f"ours - {r}", f"p({r} not worse)")] + (
        ["mhd", "raw_pixel_1nn"] if a.peers else [])
    print(table(rows, cols))
    path = save("one_shot", {"config": base.to_dict(), "versus": parse_sets(a.versus) or None,
                             "test_time": a.test_time, "warps": WARPS,
                             "seeds": a.seeds, "chosen_alphabets": list(CHOSEN),
                             "summary": rows, "folds": results}, a.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
