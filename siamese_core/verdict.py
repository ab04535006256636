"""``SiameseModel``: load a trained model and compare images, without TensorFlow.

Inference runs the ONNX export of the embedding network through onnxruntime, so the app
process (and anything else that only compares) never imports TensorFlow or Keras.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import weights
from .calibrate import confidence
from .errors import ImageError, WeightsError
from .preprocess import Prep, image_kind, prepare
from .references import ReferenceRule
from .test_time import embedder


@dataclass(frozen=True)
class Verdict:
    """The answer to "same class?": ``same`` is ``distance <= threshold``; ``confidence`` >= 0.5."""

    distance: float
    same: bool
    confidence: float
    threshold: float

    def to_dict(self) -> dict:
        return {"distance": self.distance, "same": self.same, "confidence": self.confidence,
                "threshold": self.threshold}


@dataclass(frozen=True)
class Verification:
    """A questioned image against a class's references: the verdict (on their score, by the
    model's ``references`` rule)
    and every reference's distance, nearest first (``order`` indexes the references)."""

    verdict: Verdict
    distances: np.ndarray
    order: np.ndarray


class SiameseModel:
    """A trained siamese network: embeddings, a calibrated threshold and verdicts."""

    def __init__(self, session, meta: dict, prefix: Path):
        self._session = session
        self._input = session.get_inputs()[0].name
        self.meta = meta
        self.prefix = prefix
        cal = meta["calibration"]
        self.threshold = float(cal["threshold"])
        self.slope = float(cal["slope"])

    @classmethod
    def load(cls, path: str | Path | None = None) -> "SiameseModel":
        """Load ``weights/default`` (shipped) or ``path`` (``NAME``, ``NAME.json`` ...)."""
        import onnxruntime as ort

        prefix = Path(path) if path is not None else weights.default_prefix()
        meta = weights.read_meta(prefix, verify=("onnx",))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # one small image: threads cost more than they save
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(weights.paths(prefix)["onnx"]), opts,
                                           providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise WeightsError(f"cannot load ONNX model ({str(e).splitlines()[0][:160]})") from None
        _check_graph(session, meta, weights.paths(prefix)["onnx"].name)
        return cls(session, meta, weights.paths(prefix)["json"].with_suffix(""))

    @property
    def name(self) -> str:
        return self.prefix.name

    @property
    def input_size(self) -> int:
        """Height in pixels of the images the network takes (28 for MNIST-style models)."""
        return int(self.meta["model"].get("input_size", 28))

    @property
    def input_shape(self) -> tuple[int, int]:
        """(height, width) of the images the network takes (square unless trained wide)."""
        return input_shape(self.meta)

    @property
    def prep(self) -> Prep:
        """How this model turns raw images into its inputs (recorded at training)."""
        return Prep.from_dict(self.meta.get("preprocess"), self.input_size)

    def prepare(self, image) -> np.ndarray:
        """A raw image (path, bytes, PIL, array) -> this model's input [H, W] uint8; an
        ``ImageError`` about a file names it."""
        try:
            return prepare(image, self.prep)
        except ImageError as e:
            name = Path(image).name if isinstance(image, (str, Path)) else None
            if name is None or str(e).startswith(name):
                raise
            raise type(e)(f"{name}: {e}") from None

    @property
    def trained_on(self) -> str:
        """What the training images were, in words ("handwritten digits", "photos")."""
        spec = str(self.meta.get("dataset", "mnist-5k"))
        if self.prep.kind == "photo":
            return "photos"
        return ("drawings or scans of ink" if spec.startswith(("zip:", "folder:"))
                else "clothes, 28-px greyscale" if spec == "fashion-mnist"
                else "handwritten digits")

    def kind_warning(self, image) -> str | None:
        """A line to show beside a verdict on ``image`` (raw) when it is clearly of another kind
        than the model's training images (a photo given to a digit model), else None."""
        try:
            seen = image_kind(image)
        except ImageError:
            return None             # prepare() says what is wrong with it
        if seen == self.prep.kind:
            return None
        return (f"This looks like {'a photograph' if seen == 'photo' else 'a drawing or scan'}, "
                f"but the model knows only {self.trained_on}: its verdict on it means little. "
                f"Train a model on images like it (Your data → Train).")

    @property
    def pixels(self) -> float:
        """The weight of the input's own pixels in this model's embeddings (``model.PixelFusion``;
        0: the network alone)."""
        return float(self.meta["model"].get("pixels", 0.0))

    @property
    def pixels_from(self) -> int | None:
        """Where the input's own pixels begin in this model's embeddings (None: none there)."""
        return int(self.meta["model"]["embedding_dim"]) if self.pixels else None

    @property
    def test_time(self) -> str:
        """How the model embeds an image: "tta", the mean over small warps of it (the threshold
        was calibrated so), or "none" (``test_time.py``)."""
        return self.meta.get("test_time", "none")

    def embed(self, images: np.ndarray, batch_size: int = 1024,
              test_time: str | None = None) -> np.ndarray:
        """[N, H, W] (uint8 0..255 or float in the same range; ``input_shape``), MNIST
        convention -> [N, D], as the model was calibrated (``test_time``; another value only
        to measure what it changes). Images of another size: ``ImageError``."""
        x = np.asarray(images)
        if x.ndim == 2:
            x = x[None]
        if x.ndim == 3:
            x = x[..., None]
        h, w = self.input_shape
        if x.ndim != 4 or x.shape[1:] != (h, w, 1):
            raise ImageError(f"this model takes {h}x{w} images; got shape "
                             f"{tuple(np.shape(images))}")
        x = x.astype(np.float32, copy=False)

        def once(x: np.ndarray) -> np.ndarray:
            out = [self._session.run(None, {self._input: x[i:i + batch_size]})[0]
                   for i in range(0, len(x), batch_size)]
            return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)
        if not len(x):
            return once(x)
        return embedder(once, self.test_time if test_time is None else test_time,
                        self.pixels_from)(x)

    def verdict(self, distance: float, threshold: float | None = None) -> Verdict:
        """The verdict for a distance, at the calibrated threshold (or ``threshold``)."""
        d = float(distance)
        t = self.threshold if threshold is None else float(threshold)
        return Verdict(distance=d, same=bool(d <= t),
                       confidence=float(confidence(d, t, self.slope)), threshold=t)

    def verify(self, query: np.ndarray, references: np.ndarray,
               threshold: float | None = None) -> "Verification":
        """Is ``query`` (a prepared input [S, S]) of the same class as ``references`` [N, S, S]?
        The verdict is on one score of the distances to the references, by the rule the model
        chose on validation (``self.references``; the median for models that record none); with
        one reference it is the plain pair verdict the threshold was calibrated for."""
        refs = np.asarray(references)
        if refs.ndim == 3:
            # The questioned image is not its own reference (picked from the same dataset).
            refs = refs[~(refs == np.asarray(query)[None]).all(axis=(1, 2))]
        if refs.ndim != 3 or len(refs) == 0:
            raise ImageError("verification needs at least one reference image other than the "
                             "questioned one")
        e = self.embed(np.concatenate([np.asarray(query)[None], refs]))
        d = np.linalg.norm(e[1:] - e[0][None], axis=1)
        order = np.argsort(d, kind="stable")
        return Verification(self.verdict(self.references.score(d, e[1:]), threshold),
                            d[order], order)

    def rates_at(self, threshold: float) -> tuple[float, float] | None:
        """Validation (false-accept, false-reject) rates at ``threshold``, if the model has its
        operating points (models trained before they were recorded have not)."""
        from .calibrate import rates_at
        points = self.meta.get("operating_points")
        return rates_at(points, threshold) if points else None

    @property
    def references(self) -> ReferenceRule:
        """How distances to several references of one identity become one score
        (``references.py``), as chosen on validation when the model was trained."""
        return ReferenceRule.from_meta(self.meta)

    @property
    def skilled(self) -> bool:
        """Calibrated on skilled forgeries: ``rates_at``'s false accepts are forgeries'."""
        return self.meta.get("calibrated_on") == "skilled forgeries"

    def random_far_at(self, threshold: float) -> float | None:
        """A forgery model's validation false-accept rate of random forgeries (another person's
        genuine image) at ``threshold``; None for other models."""
        from .calibrate import rates_at
        points = self.meta.get("operating_points_random")
        return rates_at(points, threshold)[0] if points else None

    def compare(self, img_a, img_b) -> Verdict:
        """Preprocess two images (any size/format/polarity) and say whether they match."""
        a, b = self.prepare(img_a), self.prepare(img_b)
        e = self.embed(np.stack([a, b]))
        return self.verdict(float(np.linalg.norm(e[0] - e[1])))


def input_shape(meta: dict) -> tuple[int, int]:
    """(height, width) of a model's inputs from its metadata (square before wide inputs)."""
    s = int(meta["model"].get("input_size", 28))
    return s, int(meta["model"].get("input_width") or s)


def _check_graph(session, meta: dict, name: str) -> None:
    """The ONNX graph must take [N, H, W, 1] floats and give [N, D], as the metadata says: a
    graph of another shape would fail on every call, deep inside onnxruntime."""
    (h, w), dim = input_shape(meta), weights.embedding_size(meta)
    ins, outs = session.get_inputs(), session.get_outputs()
    if len(ins) != 1 or len(outs) < 1 or ins[0].type != "tensor(float)":
        raise WeightsError(f"{name}: the graph must take one float image batch")
    if list(ins[0].shape)[1:] != [h, w, 1] or len(ins[0].shape) != 4:
        raise WeightsError(f"{name}: the graph takes {ins[0].shape}, the metadata says "
                           f"[N, {h}, {w}, 1]")
    if len(outs[0].shape) != 2 or outs[0].shape[1] != dim:
        raise WeightsError(f"{name}: the graph gives {outs[0].shape}, the metadata says [N, {dim}]")


def nearest(query: np.ndarray, gallery: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the ``k`` gallery embeddings closest to one query embedding."""
    d = np.linalg.norm(gallery - query[None, :], axis=1)
    k = min(k, len(d))
    idx = np.argpartition(d, k - 1)[:k]
    idx = idx[np.argsort(d[idx])]
    return idx, d[idx]


def class_references(splits: dict) -> dict[str, tuple[np.ndarray, str]]:
    """Per class name: its reference images and the split that holds it ("train", or "val" /
    "test" for a class the model never trained on). A class seen in training takes its
    references from the training split (so a test image picked as the questioned one is not
    among them); a held-out class from the split that holds it. Test classes first, then
    validation ones (they chose the threshold), then the trained ones."""
    out: dict[str, tuple[np.ndarray, str]] = {}
    for split in ("train", "val", "test"):
        ds = splits[split]
        for c in np.unique(ds.labels):
            name = ds.class_names[c]
            if name not in out:
                out[name] = (ds.images[ds.labels == c], split)
    order = {"test": 0, "val": 1, "train": 2}
    return dict(sorted(out.items(), key=lambda kv: (order[kv[1][1]], kv[0])))


def one_shot_guess(query: np.ndarray, gallery: np.ndarray, labels: np.ndarray, k: int = 5
                   ) -> tuple[int, np.ndarray, np.ndarray]:
    """The class a query embedding most likely shows: the majority of its ``k`` nearest gallery
    embeddings (ties: the class of the nearest among them). Returns (class, indices, distances)
    of those neighbours, nearest first."""
    idx, dist = nearest(query, gallery, k)
    votes = np.bincount(labels[idx])
    best = np.flatnonzero(votes == votes.max())
    guess = next(int(labels[i]) for i in idx if labels[i] in best)
    return guess, idx, dist


def judge_pairs(ds, emb: np.ndarray, threshold: float, seed: int, n: int = 49
                ) -> tuple[np.ndarray, int]:
    """Random balanced pairs of a dataset judged at ``threshold``: a montage captioned with each
    verdict and distance (X marks a wrong one), and how many were right."""
    from .pairs import DIFFERENT, SAME, make_pairs, pair_montage

    pairs = make_pairs(ds.labels, seed, n_pairs=n)
    d = np.linalg.norm(emb[pairs.a] - emb[pairs.b], axis=1)
    says_same = d <= threshold
    right = says_same == (pairs.label == SAME)
    captions = [f"{'same' if s else 'diff'} {x:.2f}{'' if ok else ' X'}"
                for s, x, ok in zip(says_same, d, right)]
    shown = pairs._replace(label=np.where(says_same, SAME, DIFFERENT))
    return pair_montage(ds.images, shown, captions=captions), int(right.sum())


def _all_pairs_subset(labels: np.ndarray, seed: int) -> np.ndarray:
    """All image indices, or a stratified subset of ``ALL_PAIRS_MAX`` for the all-pairs metrics."""
    from .calibrate import ALL_PAIRS_MAX
    from .data import stratified_split

    n = len(labels)
    if n <= ALL_PAIRS_MAX:
        return np.arange(n)
    sub = stratified_split(labels, "test", test_fraction=ALL_PAIRS_MAX / n, seed=seed)
    # Rounding per class can overshoot by a few images.
    return np.sort(np.random.default_rng(seed).permutation(sub)[:ALL_PAIRS_MAX])


def check_fits(model: SiameseModel, dataset) -> None:
    """``DataError`` when the dataset's images are not the size the model takes."""
    from .errors import DataError

    want, shape = model.input_shape, tuple(dataset.images.shape[1:])
    if shape != want:
        raise DataError(f"{dataset.spec} has {'x'.join(map(str, shape))} images; the model "
                        f"{model.name} takes {'x'.join(map(str, want))}")


def evaluate(model: SiameseModel, dataset, n_pairs: int = 10_000, seed: int = 0,
             episodes: int = 2000) -> dict:
    """Pair accuracy at the model's stored threshold on fresh balanced pairs, the same over every
    pair of (up to ``ALL_PAIRS_MAX``) images, ROC AUC, EER and N-way one-shot accuracy (N = the
    classes, at most 20; nearest of one support image per class); with forgeries their rates;
    against k references by the model's rule (``_reference_rates``)."""
    from .calibrate import all_pairs_accuracy, evaluate_embeddings

    check_fits(model, dataset)
    emb = model.embed(dataset.images)
    f_emb = model.embed(dataset.forgeries) if getattr(dataset, "n_forgeries", 0) else None
    sub = _all_pairs_subset(dataset.labels, seed)
    # The same measurement the trainer makes of its test split, plus the all-pairs accuracy.
    e = evaluate_embeddings(emb, dataset.labels, model.threshold, n_pairs, episodes, seed)
    return {
        "dataset": dataset.spec, "split": dataset.split, "n_images": len(dataset),
        "n_pairs": e["n_pairs"], "threshold": model.threshold,
        "pair_accuracy": e["pair_accuracy"],
        "all_pairs_accuracy": all_pairs_accuracy(emb[sub], dataset.labels[sub], model.threshold),
        "all_pairs_images": len(sub),
        "roc_auc": e["roc_auc"], "eer": e["eer"],
        "best_threshold_here": e["best_threshold_here"],
        "best_accuracy_here": e["best_accuracy_here"],
        f"one_shot_{e['n_way']}way": e["one_shot"], "one_shot_episodes": episodes,
        **_forgery_rates(model, dataset, emb, f_emb, seed),
        **_reference_rates(model, dataset, emb, f_emb, seed),
    }


def _forgery_rates(model: SiameseModel, dataset, emb: np.ndarray, f_emb: np.ndarray | None,
                   seed: int) -> dict:
    """A split with skilled forgeries: false rejects, both false-accept rates and both equal
    error rates at the model's threshold (``forgery.verification_rates``)."""
    if f_emb is None:
        return {}
    from .forgery import verification_rates
    r = verification_rates(emb, dataset.labels, f_emb, dataset.forgery_of, model.threshold,
                           seed=seed)
    return {k: r[k] for k in ("frr", "far_random", "far_skilled", "eer_random", "eer_skilled",
                              "n_forgeries")}


def _reference_rates(model: SiameseModel, dataset, emb: np.ndarray, f_emb: np.ndarray | None,
                     seed: int) -> dict:
    """Verification against k references of the claimed class by the model's rule, at its
    threshold (``references.enrolment_rates``; k as training measured it, else 5 or 3):
    ``references_k``, ``_frr``, ``_far`` (of skilled forgeries where there are any) and
    ``_eer``; {} when no class has enough images."""
    from .references import CHOOSE_K, enrolment_rates
    recorded = (model.meta.get("references") or {}).get("k")
    for k in ([int(recorded)] if recorded else list(CHOOSE_K)):
        r = enrolment_rates(emb, dataset.labels, model.references, model.threshold, k, f_emb,
                            getattr(dataset, "forgery_of", None) if f_emb is not None else None,
                            seed=seed)
        if r:
            return {"references_k": k, "references_rule": r["rule"],
                    "references_frr": r["frr"], "references_far": r["far"],
                    "references_eer": r["eer"]}
    return {}


def compare_models(a: SiameseModel, b: SiameseModel, dataset, n_boot: int = 1000,
                   seed: int = 0) -> dict:
    """Is model ``a`` better than model ``b`` on these images? Each one's all-pairs accuracy at
    its own threshold, a's lead in points of accuracy with a 95 % interval from resampling the
    images (``calibrate.paired_bootstrap``), and a one-phrase ``verdict``: significantly better,
    significantly worse, or no significant difference."""
    from .calibrate import paired_bootstrap

    check_fits(a, dataset)
    check_fits(b, dataset)
    sub = _all_pairs_subset(dataset.labels, seed)
    x, y = dataset.images[sub], dataset.labels[sub]
    ea, eb = a.embed(x), b.embed(x)
    r = paired_bootstrap(ea, a.threshold, eb, b.threshold, y, n_boot, seed)
    verdict = ("significantly better" if r["low"] > 0 else
               "significantly worse" if r["high"] < 0 else "no significant difference")
    return {**r, "n_images": len(sub), "verdict": verdict}
