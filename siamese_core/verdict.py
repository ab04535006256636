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
from .preprocess import preprocess


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
        """Side in pixels of the images the network takes (28 for MNIST-style models)."""
        return int(self.meta["model"].get("input_size", 28))

    def embed(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """[N, S, S] (uint8 0..255 or float in the same range; S = ``input_size``), MNIST
        convention -> [N, D]. Images of another size: ``ImageError``."""
        x = np.asarray(images)
        if x.ndim == 2:
            x = x[None]
        if x.ndim == 3:
            x = x[..., None]
        s = self.input_size
        if x.ndim != 4 or x.shape[1:] != (s, s, 1):
            raise ImageError(f"this model takes {s}x{s} images; got shape {tuple(np.shape(images))}")
        x = x.astype(np.float32, copy=False)
        out = [self._session.run(None, {self._input: x[i:i + batch_size]})[0]
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

    def verdict(self, distance: float) -> Verdict:
        """The verdict for a distance, at the calibrated threshold."""
        d = float(distance)
        return Verdict(distance=d, same=bool(d <= self.threshold),
                       confidence=float(confidence(d, self.threshold, self.slope)),
                       threshold=self.threshold)

    def compare(self, img_a, img_b) -> Verdict:
        """Preprocess two images (any size/format/polarity) and say whether they match."""
        a, b = preprocess(img_a, self.input_size), preprocess(img_b, self.input_size)
        e = self.embed(np.stack([a, b]))
        return self.verdict(float(np.linalg.norm(e[0] - e[1])))


def _check_graph(session, meta: dict, name: str) -> None:
    """The ONNX graph must take [N, S, S, 1] floats and give [N, D], as the metadata says: a
    graph of another shape would fail on every call, deep inside onnxruntime."""
    s, dim = int(meta["model"].get("input_size", 28)), int(meta["model"]["embedding_dim"])
    ins, outs = session.get_inputs(), session.get_outputs()
    if len(ins) != 1 or len(outs) < 1 or ins[0].type != "tensor(float)":
        raise WeightsError(f"{name}: the graph must take one float image batch")
    if list(ins[0].shape)[1:] != [s, s, 1] or len(ins[0].shape) != 4:
        raise WeightsError(f"{name}: the graph takes {ins[0].shape}, the metadata says "
                           f"[N, {s}, {s}, 1]")
    if len(outs[0].shape) != 2 or outs[0].shape[1] != dim:
        raise WeightsError(f"{name}: the graph gives {outs[0].shape}, the metadata says [N, {dim}]")


def nearest(query: np.ndarray, gallery: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the ``k`` gallery embeddings closest to one query embedding."""
    d = np.linalg.norm(gallery - query[None, :], axis=1)
    k = min(k, len(d))
    idx = np.argpartition(d, k - 1)[:k]
    idx = idx[np.argsort(d[idx])]
    return idx, d[idx]


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

    s, shape = model.input_size, tuple(dataset.images.shape[1:])
    if shape != (s, s):
        raise DataError(f"{dataset.spec} has {'x'.join(map(str, shape))} images; the model "
                        f"{model.name} takes {s}x{s}")


def evaluate(model: SiameseModel, dataset, n_pairs: int = 10_000, seed: int = 0,
             episodes: int = 2000) -> dict:
    """Pair accuracy at the model's stored threshold on fresh balanced pairs, the same over every
    pair of (up to ``ALL_PAIRS_MAX``) images, ROC AUC, EER and 10-way one-shot accuracy (nearest
    of one support image per class)."""
    from .calibrate import accuracy_at, all_pairs_accuracy, calibrate, one_shot_accuracy
    from .pairs import make_pairs

    check_fits(model, dataset)
    emb = model.embed(dataset.images)
    sub = _all_pairs_subset(dataset.labels, seed)
    pairs = make_pairs(dataset.labels, seed, n_pairs=n_pairs)
    d = np.linalg.norm(emb[pairs.a] - emb[pairs.b], axis=1)
    cal = calibrate(d, pairs.label)
    n_way = len(np.unique(dataset.labels))
    return {
        "dataset": dataset.spec, "split": dataset.split, "n_images": len(dataset),
        "n_pairs": len(d), "threshold": model.threshold,
        "pair_accuracy": accuracy_at(d, pairs.label, model.threshold),
        "all_pairs_accuracy": all_pairs_accuracy(emb[sub], dataset.labels[sub], model.threshold),
        "all_pairs_images": len(sub),
        "roc_auc": cal.roc_auc, "eer": cal.eer,
        "best_threshold_here": cal.threshold, "best_accuracy_here": cal.accuracy,
        f"one_shot_{n_way}way": one_shot_accuracy(emb, dataset.labels, episodes, seed),
        "one_shot_episodes": episodes,
    }


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
