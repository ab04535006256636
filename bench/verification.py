"""Verification of people never seen in training: faces and signatures (issue 21).

Takes a zip of one folder per person (``<person>/<image>``) or of signatures with forgeries
(``<person>/genuine/*`` and ``<person>/forged/*``), holds out whole people in folds, trains the
recipes named in ``--recipes`` on the others (``config.recipe``: ``photo``, ``ink``, each with
its own preprocessing) and scores, on the same episodes and pairs, them and non-learned peers:

- N-way one-shot accuracy: one image of each of N held-out people (genuine ones), one more image
  of one of them to recognise (N = 10, or fewer where a fold has fewer people);
- the equal error rate (EER) of all pairs of held-out images: genuine pairs against pairs of two
  people ("random" forgeries) and, where the zip has forgeries, against genuine-forged pairs of
  one person ("skilled" forgeries);
- the same EERs when a questioned image is compared with K genuine references of the claimed
  person (``--references``: the median distance, as an enrolled gallery decides, and two other
  rules, the mean and the mean less the references' own spread; ``reference_scores``).

Peers: raw pixels (z-scored, as each kind's preprocessing leaves them), Eigenfaces (PCA fitted on
the training people) and LBP histograms for photos, HOG of the ink for signatures (of its strokes
as written and thinned, ``hog_thin``), and for signatures with forgeries two pens (``pen``: the
stroke grey, the stroke width), which know nothing of the handwriting: what they score is what a
pen shortcut is worth.

    python bench/verification.py ../shared/data/faces/extended_yale_b_cropped_38s.zip
    python bench/verification.py ../shared/data/signatures/sigcomp2011_nl_sign_data_64w.zip
    python bench/verification.py FACES.zip --peers-only          # no training: the peers only
    python bench/verification.py FACES.zip --kinds              # what dataset_kind says, per zip
    python bench/verification.py FACES.zip --in-a-room --set face_crop=true   # camera framing
    python bench/verification.py SIGS.zip --recipes ink --test-time   # the same models with TTA
    python bench/verification.py SIGS.zip --peers-only --references 1 3 5   # k references
    python bench/verification.py FACES.zip --recipes photo --fusion   # + raw pixels, fused
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from common import parse_sets, save, table

FORGED = ("forged", "forg", "forgeries", "forgery")


def load(zip_path: Path):
    """Raw grey images, person index, forged flags and person names. ``<p>/genuine`` and
    ``<p>/forged`` (or ``<p>_forg``) are person ``p``; other folders are a person each."""
    from siamese_core.archive import scan_zip
    from siamese_core.preprocess import load_image

    tree = scan_zip(zip_path, str(zip_path))
    raw, owner, forged = [], [], []
    with tree.reader() as read:
        for cls, files in tree.classes.items():
            parent, _, leaf = cls.rpartition("/")
            is_forged = leaf.lower() in FORGED or cls.lower().endswith("_forg")
            person = (parent if parent and (is_forged or leaf.lower() == "genuine")
                      else cls.removesuffix("_forg"))
            for _, entry in files:
                raw.append(load_image(read(entry)))
                owner.append(person)
                forged.append(is_forged)
    names = sorted(set(owner))
    return raw, np.array([names.index(o) for o in owner]), np.array(forged), names


def in_a_room(raw: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Each photo at 0.6-0.9 of its size, somewhere in a scene twice its size (a smooth random
    wall, its own per photo): what a camera gives, not a face database's framing."""
    import cv2
    rng = np.random.default_rng(seed)
    out = []
    for g in raw:
        h, w = g.shape
        wall = cv2.GaussianBlur(rng.uniform(0, 255, (2 * h, 2 * w)).astype(np.float32), (0, 0),
                                max(h, w) / 16)
        wall = (wall - wall.min()) / (np.ptp(wall) + 1e-6) * rng.uniform(120, 220) + 20
        f = rng.uniform(0.6, 0.9)
        fh, fw = int(h * f), int(w * f)
        y, x = int(rng.integers(0, 2 * h - fh)), int(rng.integers(0, 2 * w - fw))
        wall[y:y + fh, x:x + fw] = cv2.resize(g, (fw, fh), interpolation=cv2.INTER_AREA)
        out.append(np.clip(wall, 0, 255).astype(np.uint8))
    return out


def folds(n_people: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n_people)
    return [np.sort(part) for part in np.array_split(order, k)]


def eer(d_same: np.ndarray, d_diff: np.ndarray) -> float:
    """Equal error rate (%) of distances: the point where false rejects of genuine pairs equal
    false accepts of the others."""
    t = np.unique(np.concatenate([d_same, d_diff]))
    frr = np.searchsorted(np.sort(d_same), t, side="right")   # same pairs at or below t: accepted
    frr = 1 - frr / len(d_same)
    far = np.searchsorted(np.sort(d_diff), t, side="right") / len(d_diff)
    i = int(np.argmin(np.abs(frr - far)))
    return float(100 * (frr[i] + far[i]) / 2)


def pair_sets(person: np.ndarray, forged: np.ndarray):
    """Index pairs (i < j) of genuine-same, genuine-other-person and genuine-forged-same."""
    i, j = np.triu_indices(len(person), 1)
    same = person[i] == person[j]
    both_genuine = ~forged[i] & ~forged[j]
    one_forged = forged[i] ^ forged[j]
    sets = {"same": (i[same & both_genuine], j[same & both_genuine]),
            "random": (i[~same & both_genuine], j[~same & both_genuine])}
    if forged.any():
        sets["skilled"] = (i[same & one_forged], j[same & one_forged])
    return sets


def episodes(person: np.ndarray, forged: np.ndarray, n_way: int, count: int, seed: int):
    """[(support indices [N], query index, target position)] of genuine images."""
    rng = np.random.default_rng(seed)
    genuine = {p: np.flatnonzero((person == p) & ~forged) for p in np.unique(person)}
    usable = [p for p, idx in genuine.items() if len(idx) >= 2]
    out = []
    for _ in range(count):
        people = rng.choice(usable, n_way, replace=False)
        target = int(rng.integers(n_way))
        support = [int(rng.choice(genuine[p])) for p in people]
        rest = genuine[people[target]][genuine[people[target]] != support[target]]
        out.append((np.array(support), int(rng.choice(rest)), target))
    return out


def reference_scores(dist: np.ndarray, ref: np.ndarray, questioned: np.ndarray) -> dict:
    """Each rule's score of ``questioned`` images against the references ``ref`` (lower: more
    alike), as ``siamese_core.references.ReferenceRule`` scores them: ``median`` of the
    distances (``Gallery.verify`` until now), their ``mean``, and ``spread``: the mean less the
    references' own mean distance among themselves (a writer-dependent score: a person who
    signs alike every time is held to it; under 3 references it is the mean). The library's
    constant ``typical`` is left out: it moves every score alike, no EER."""
    from siamese_core.references import ReferenceRule, spread_of
    d = dist[np.ix_(ref, questioned)]
    own = spread_of(dist[np.ix_(ref, ref)])
    return {key: ReferenceRule(rule).scores_at(d, own)
            for key, rule in (("", "median"), ("_mean", "mean"), ("_spread", "spread"))}


def reference_eers(dist: np.ndarray, person: np.ndarray, forged: np.ndarray, k: int,
                   draws: int = 20, seed: int = 0) -> dict:
    """EERs (%) of verification against ``k`` genuine references of the claimed person, by each
    rule of ``reference_scores`` (``eer_skilled_k5``: the median, ``..._mean``, ``..._spread``):
    per person with more than ``k`` genuine images, ``draws`` random reference sets, each
    against the person's other genuine images, their forgeries (skilled) and every other
    person's genuine images (random). The draws depend only on ``person``/``forged`` and
    ``seed``, so every method and rule is scored on the same ones."""
    rng = np.random.default_rng(seed)
    scored: dict[tuple[str, str], list] = {}
    for p in np.unique(person):
        mine = person == p
        g, f = np.flatnonzero(mine & ~forged), np.flatnonzero(mine & forged)
        others = np.flatnonzero(~mine & ~forged)
        if len(g) <= k:
            continue
        for _ in range(draws):
            ref = rng.choice(g, k, replace=False)
            for kind, q in (("same", np.setdiff1d(g, ref)), ("random", others), ("skilled", f)):
                if len(q):
                    for rule, v in reference_scores(dist, ref, q).items():
                        scored.setdefault((kind, rule), []).append(v)
    out = {}
    for (kind, rule), values in scored.items():
        if kind != "same":
            out[f"eer_{kind}_k{k}{rule}"] = eer(np.concatenate(scored[("same", rule)]),
                                                np.concatenate(values))
    return out


def scores(dist: np.ndarray, person, forged, eps, references: tuple[int, ...] = ()) -> dict:
    """One-shot accuracy and EERs from a full distance matrix of the held-out images: of single
    pairs, and against each of ``references`` genuine references (``reference_eers``)."""
    out = {"one_shot": float(100 * np.mean([np.argmin(dist[s, q]) == t for s, q, t in eps]))}
    sets = pair_sets(person, forged)
    same = dist[sets["same"]]
    out["mean_distance_same"] = float(same.mean())   # continuous: tells two scorings apart
    for name in ("random", "skilled"):
        if name in sets:
            out[f"eer_{name}"] = eer(same, dist[sets[name]])
    for k in references:
        out.update(reference_eers(dist, person, forged, k))
    return out


# --- peers ------------------------------------------------------------------------------------

def fused(*dists: np.ndarray) -> np.ndarray:
    """A late fusion of distance matrices: each divided by its mean over pairs of two different
    images (a scale taken without labels), then summed."""
    off = ~np.eye(len(dists[0]), dtype=bool)
    return sum(d / d[off].mean() for d in dists)


def l2_matrix(f: np.ndarray) -> np.ndarray:
    sq = (f * f).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * f @ f.T, 0))


def zscored(x: np.ndarray) -> np.ndarray:
    f = x.reshape(len(x), -1).astype(np.float32)
    f -= f.mean(1, keepdims=True)
    return f / np.maximum(f.std(1, keepdims=True), 1e-6)


def eigenfaces(train: np.ndarray, test: np.ndarray, components: int = 50) -> np.ndarray:
    """Test images projected on the training people's principal components (Turk & Pentland)."""
    a, b = zscored(train), zscored(test)
    mean = a.mean(0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    return (b - mean) @ vt[:components].T


def lbp_histograms(x: np.ndarray, grid: int = 6) -> np.ndarray:
    """Uniform-ish LBP: 8 neighbours at radius 1, 256 codes folded to 59 by transitions, one
    histogram per cell of a ``grid`` x ``grid`` partition (Ahonen et al. 2006), square-rooted
    (Hellinger) so that L2 between them is a fair chi-square stand-in."""
    codes_u = np.array([bin(c ^ ((c << 1 | c >> 7) & 255)).count("1") <= 2 for c in range(256)])
    table_ = np.full(256, 58)
    table_[codes_u] = np.arange(codes_u.sum())
    out = []
    for img in x.astype(np.int16):
        c = img[1:-1, 1:-1]
        code = np.zeros_like(c)
        for bit, (dy, dx) in enumerate([(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0),
                                        (1, -1), (0, -1)]):
            nb = img[1 + dy:img.shape[0] - 1 + dy, 1 + dx:img.shape[1] - 1 + dx]
            code |= (nb >= c).astype(np.int16) << bit
        u = table_[code]
        h = []
        for rows in np.array_split(u, grid, 0):
            for cell in np.array_split(rows, grid, 1):
                h.append(np.bincount(cell.ravel(), minlength=59) / cell.size)
        out.append(np.sqrt(np.concatenate(h)))
    return np.array(out, np.float32)


def hog(x: np.ndarray, cell: int = 8, bins: int = 9) -> np.ndarray:
    """Dalal-Triggs HOG: unsigned gradient orientations in ``cell``-px cells, 2x2-cell blocks
    L2-Hys normalised (what opencv-headless 5 no longer ships)."""
    import cv2

    out = []
    for img in x.astype(np.float32):
        gx, gy = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=1)
        mag, ang = cv2.cartToPolar(gx, gy, angleInDegrees=True)
        b = (np.mod(ang, 180) / (180 / bins)).astype(int) % bins
        ch, cw = img.shape[0] // cell, img.shape[1] // cell
        hist = np.zeros((ch, cw, bins), np.float32)
        for k in range(bins):
            m = (mag * (b == k))[:ch * cell, :cw * cell]
            hist[..., k] = m.reshape(ch, cell, cw, cell).sum((1, 3))
        blocks = []
        for y in range(ch - 1):
            for xx in range(cw - 1):
                v = hist[y:y + 2, xx:xx + 2].ravel()
                v = np.minimum(v / (np.linalg.norm(v) + 1e-6), 0.2)
                blocks.append(v / (np.linalg.norm(v) + 1e-6))
        out.append(np.concatenate(blocks))
    return np.array(out, np.float32)


def ink_box(gray: np.ndarray, h: int = 64, w: int = 128, thin: bool = False) -> np.ndarray:
    """Signatures for HOG: ink (Otsu) cropped, fitted into h x w keeping its aspect, black
    background: no paper texture, no ink colour beyond the strokes' shape (``thin``: strokes
    thinned first, ``Prep.thin``: no pen width either)."""
    from siamese_core.preprocess import Prep, prepare
    wide = prepare(gray, Prep(128, "box", thin=thin))  # white ink on black, whole width
    rows = np.flatnonzero(wide.max(1))
    strip = wide[rows.min():rows.max() + 1] if rows.size else wide
    import cv2
    return cv2.resize(strip, (w, h), interpolation=cv2.INTER_AREA)


def stroke_width(gray: np.ndarray) -> float:
    """Mean width (px) of a scan's ink strokes at the working resolution: twice the ink's area
    over the length of its outlines (a stroke of width w and length L has area wL and outline
    about 2L). A pen's trait, like its darkness, not the writer's."""
    from siamese_core.preprocess import _ink, _work_gray
    return ink_width(_ink(_work_gray(gray)))


def ink_width(ink: np.ndarray) -> float:
    """``stroke_width`` of an image of white ink on black (its non-zero pixels)."""
    import cv2

    mask = (np.asarray(ink) > 0).astype(np.uint8)
    outlines, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return float(2 * mask.sum() / max(1.0, sum(cv2.arcLength(c, True) for c in outlines)))


def pen(raw) -> dict[str, np.ndarray]:
    """The pen peers' one-number features of each scan: the stroke grey (its 2nd-percentile
    grey level) and the stroke width (``stroke_width``), as logs so that distances are ratios.
    They know nothing of the handwriting: what they score on skilled forgeries is what a pen
    alone is worth, the bar a model's shortcut would show against."""
    return {"pen_grey": np.log1p([np.percentile(g, 2) for g in raw])[:, None],
            "pen_width": np.log([stroke_width(g) for g in raw])[:, None]}


def inputs(raw, prep) -> tuple[np.ndarray, int]:
    """Every image as ``prep`` makes it, and how many had no face for the face crop: those are
    prepared whole (the app would refuse them; the benchmark scores every image)."""
    from dataclasses import replace

    from siamese_core.preprocess import NoFaceError, prepare
    out, faceless = [], 0
    for g in raw:
        try:
            out.append(prepare(g, prep))
        except NoFaceError:
            faceless += 1
            out.append(prepare(g, replace(prep, face=False)))
    return np.stack(out), faceless


# --- one fold ---------------------------------------------------------------------------------

def ink_shortcut(raw, forged: np.ndarray, kinds: list[str], overrides: dict | None = None
                 ) -> dict:
    """How well one number of the pen tells forged from genuine images (ROC AUC, 0.5 = not at
    all): the ink's grey level and its stroke width, of the raw scans (the 2nd-percentile grey,
    the stroke colour; ``stroke_width``) and of each recipe's network inputs (the mean of the
    ink pixels; the width of their strokes). A model can learn such a number instead of the
    handwriting; the network inputs (with ``overrides``, as trained: ``--set``) should leave
    little of it."""
    from sklearn.metrics import roc_auc_score

    from siamese_core.config import recipe
    from siamese_core.preprocess import prepare

    def auc(values) -> float:
        v = roc_auc_score(forged.astype(int), np.asarray(values, dtype=np.float64))
        return round(float(max(v, 1 - v)), 3)
    # The pen peers' features: logs, which leave an AUC (a ranking) as it is.
    scans = pen(raw)
    out = {"raw scans: stroke grey": auc(scans["pen_grey"][:, 0]),
           "raw scans: stroke width": auc(scans["pen_width"][:, 0])}
    for kind in kinds:
        prep = recipe("bench", new_classes=True, kind=kind, **(overrides or {})).prep
        x = [prepare(g, prep) for g in raw]
        out[f"{kind} inputs: mean ink level"] = auc(
            [im[im > 0].mean() if kind == "ink" else im.mean() for im in x])
        if kind == "ink":
            out["ink inputs: stroke width"] = auc([ink_width(im) for im in x])
    return out


def run_fold(a, raw, person, forged, names, held: np.ndarray, fold: int) -> dict:
    from siamese_core.config import recipe
    from siamese_core.data import Dataset
    from siamese_core.preprocess import binary_ink

    test = np.isin(person, held)
    rest_people = np.setdiff1d(np.unique(person), held)
    n_val = max(2, int(round(0.15 * len(rest_people))))
    val_people = np.random.default_rng(a.seed + fold).choice(rest_people, n_val, replace=False)
    val = np.isin(person, val_people) & ~test
    train = ~test & ~val
    t_idx = np.flatnonzero(test)
    n_way = min(a.way, len(held))
    eps = episodes(person[t_idx], forged[t_idx], n_way, a.episodes, a.seed + 100 + fold)
    row: dict = {"fold": fold, "people": {"train": int(len(np.unique(person[train]))),
                                          "val": int(n_val), "test": int(len(held))},
                 "n_way": n_way, "episodes": len(eps)}
    print(f"fold {fold}: test people {len(held)}, val {n_val}, train "
          f"{row['people']['train']}; {n_way}-way one-shot, {len(eps)} episodes", flush=True)

    def peer(name, features):
        row[name] = scores(l2_matrix(features), person[t_idx], forged[t_idx], eps, a.references)
        print(f"  {name:14s} {row[name]}", flush=True)

    # The peers see what the photo recipe sees, face crop included when it is set.
    photo = recipe("bench", new_classes=True, kind="photo",
                   face_crop=bool(a.overrides.get("face_crop", False))).prep
    p_img, row["faceless"] = inputs(raw, photo)
    peer("raw_photo", zscored(p_img[t_idx]))
    if forged.any():
        for name, thin in (("hog", False), ("hog_thin", True)):
            boxes = np.stack([ink_box(g, thin=thin) for g in raw])
            peer(name, hog(boxes[t_idx]))
        for name, feature in pen(raw).items():
            peer(name, feature[t_idx])
    else:
        peer("eigenfaces", eigenfaces(p_img[train], p_img[t_idx]))
        peer("lbp", lbp_histograms(p_img[t_idx]))
    for r in a.recipes:
        # Forged images train as hard negatives of their writer and calibrate the threshold
        # (``Dataset.forgeries``), as ``train --dataset zip:`` does with such a zip.
        cfg = recipe("bench", new_classes=True, kind=r, seed=a.seed, **a.overrides)
        net, _ = inputs(raw, cfg.prep)
        if a.binarise_all and r == "ink":
            # The ink-level ablation: trained and tested without grey levels at all.
            net = binary_ink(net)
        labels = person.astype(np.int64)

        def ds(mask, split):
            m, f = mask & ~forged, mask & forged
            if a.ignore_forgeries:     # the ablation: forgeries unseen by training
                f = np.zeros_like(f)
            return Dataset(net[m], labels[m], names, "bench", split, "class",
                           forgeries=net[f] if f.any() else None,
                           forgery_of=labels[f] if f.any() else None)
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"verification_{os.getpid()}" / r
        from siamese_core import SiameseModel
        from siamese_core.train import train as fit
        end = fit(cfg, out=out, train_data=ds(train, "train"), val_data=ds(val, "val"))
        model = SiameseModel.load(out)
        # --test-time: the same model scored on its plain embeddings and on their test-time
        # augmented form (test_time.py), on the same episodes and pairs.
        for tt, name in ((("none", f"ours_{r}"), ("tta", f"ours_{r}_tta")) if a.test_time
                         else ((None, f"ours_{r}"),)):
            emb = model.embed(net[t_idx], test_time=tt)
            row[name] = scores(l2_matrix(emb), person[t_idx], forged[t_idx], eps, a.references)
            row[name].update(train_seconds=end.meta["train_seconds"], steps=end.meta.get("steps"),
                             best_epoch=end.best_epoch, epochs=end.epochs_done,
                             pixel_weight=model.pixels,
                             # the rule the model chose on validation for k references
                             # (its _kK keys: the same rule's EERs here)
                             reference_rule=model.references.rule)
            print(f"  {name:14s} {row[name]}", flush=True)
            # The network's own part of the embedding (all of it, unless the model holds its
            # pixels too: model.PixelFusion puts the network's first).
            own = emb[:, :model.pixels_from]
            own = own / np.maximum(np.linalg.norm(own, axis=1, keepdims=True), 1e-12)
            if model.pixels:
                n = f"{name}_network"
                row[n] = scores(l2_matrix(own), person[t_idx], forged[t_idx], eps, a.references)
                print(f"  {n:14s} {row[n]}", flush=True)
            if a.fusion:
                # Would raw pixels of the same inputs add what the network misses? (The
                # distances added: the late fusion outside the model.)
                f = f"{name}+raw"
                row[f] = scores(fused(l2_matrix(own), l2_matrix(zscored(net[t_idx]))),
                                person[t_idx], forged[t_idx], eps, a.references)
                print(f"  {f:14s} {row[f]}", flush=True)
            if a.binarised and r == "ink":
                # The ink shortcut, asked of the model: the same test images with every ink
                # pixel at one level (no ink darkness left to tell forged from genuine).
                b = f"{name}_binarised"
                flat = model.embed(binary_ink(net[t_idx]), test_time=tt)
                row[b] = scores(l2_matrix(flat), person[t_idx], forged[t_idx], eps, a.references)
                print(f"  {b:14s} {row[b]}", flush=True)
        raw_ink = f"raw_{r}"
        if r != "photo" and raw_ink not in row:
            peer(raw_ink, zscored(net[t_idx]))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("zips", type=Path, nargs="+", help="dataset zips (one person per folder)")
    p.add_argument("--folds", type=int, default=3, help="people split into this many folds")
    p.add_argument("--only-folds", type=int, default=None,
                   help="run only the first N of the folds (quick comparisons)")
    p.add_argument("--recipes", default="photo,ink",
                   help="comma-separated kinds whose recipe to train (photo, ink)")
    p.add_argument("--seconds", type=float, default=None, help="training budget (default: recipe)")
    p.add_argument("--way", type=int, default=10)
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--references", type=int, nargs="*", default=[5], metavar="K",
                   help="also the EERs against K genuine references of the claimed person, "
                        "median distance as a gallery verifies (default: 5; none: only pairs)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="TrainConfig override for every recipe (repeatable)")
    p.add_argument("--peers-only", action="store_true", help="train nothing")
    p.add_argument("--ignore-forgeries", action="store_true",
                   help="ablation: train and calibrate without the forgeries (genuine only)")
    p.add_argument("--test-time", action="store_true",
                   help="also score each recipe's models with test-time augmentation (ours_<kind>_tta)")
    p.add_argument("--binarised", action="store_true",
                   help="also score each ink model on its test inputs with every ink pixel at one "
                        "level (<method>_binarised): what is left without the ink's darkness")
    p.add_argument("--binarise-all", action="store_true",
                   help="ablation: train and test the ink recipe on such inputs (the ink "
                        "shortcut's worth to a network: what it loses without grey levels)")
    p.add_argument("--fusion", action="store_true",
                   help="also score each model's distances fused with raw pixels' (fused)")
    p.add_argument("--kinds", action="store_true", help="print data.dataset_kind per zip, stop")
    p.add_argument("--in-a-room", action="store_true",
                   help="put each photo somewhere in a larger scene first (a camera's framing)")
    p.add_argument("--out", default=None, help="results JSON (default bench/results/verification_<zip>.json)")
    a = p.parse_args()
    a.overrides = parse_sets(a.set)
    if a.seconds is not None:
        a.overrides["seconds"] = a.seconds
    a.recipes = [] if a.peers_only else [r for r in a.recipes.split(",") if r]
    if a.kinds:
        from siamese_core.data import dataset_kind
        for z in a.zips:
            print(z.name, *dataset_kind(f"zip:{z}"))
        return
    for z in a.zips:
        t = time.perf_counter()
        raw, person, forged, names = load(z)
        if a.in_a_room:
            raw = in_a_room(raw, a.seed)
        print(f"{z.name}: {len(raw)} images, {len(names)} people, {int(forged.sum())} forged "
              f"({time.perf_counter() - t:.1f} s)", flush=True)
        shortcut = (ink_shortcut(raw, forged, a.recipes or ["ink"], a.overrides) if forged.any()
                    else None)
        if shortcut:
            print(f"ink shortcut (ROC AUC of one number of the pen, genuine vs forged): {shortcut}")
        parts = folds(len(names), a.folds, a.seed)[:a.only_folds]
        rows = [run_fold(a, raw, person, forged, names, held, i) for i, held in enumerate(parts)]
        methods = [k for k in rows[0] if isinstance(rows[0][k], dict) and "one_shot" in rows[0][k]]
        summary = []
        metrics = ["one_shot", "eer_random", "eer_skilled"] + [
            f"eer_{kind}_k{k}{rule}" for k in a.references for kind in ("random", "skilled")
            for rule in ("", "_mean", "_spread")]
        metrics = [m for m in metrics if any(m in rows[0][x] for x in methods)]
        for m in methods:
            line = {"method": m}
            for metric in metrics:
                if all(metric in r[m] for r in rows):
                    line[metric] = float(np.mean([r[m][metric] for r in rows]))
            summary.append(line)
        print(f"{z.name}: mean of {len(rows)} fold(s), % (one-shot accuracy; EER; _kK: "
              f"against K references)")
        print(table(summary, ["method"] + metrics))
        name = "verification_" + z.stem.split("_")[0]
        path = save(name, {"zip": z.name, "folds": rows, "mean": summary, "ink_shortcut": shortcut,
                           "args": {k: v for k, v in vars(a).items() if k != "zips"}}
                    | {"args_zips": [str(x.name) for x in a.zips]}, a.out)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
