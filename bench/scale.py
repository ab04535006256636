"""How the work grows with dataset size, on Fashion-MNIST (Debian's dataset-fashion-mnist):
pair generation, one training epoch, embedding the gallery and nearest-neighbour search.
The log-log slope of time against n says the complexity (1.0 = linear).

    python bench/scale.py [--sizes 5000,20000,60000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from common import median, save, table, timeit



def epoch_seconds(train_ds, val_ds) -> float:
    """One epoch of the default training path, from the steady-state time per batch."""
    from siamese_core.train import Callback, TrainConfig, train
    stamps = []

    class Clock(Callback):
        def on_batch_end(self, e):
            stamps.append(time.perf_counter())
            self.steps = e.steps_per_epoch
    clock = Clock()
    train(TrainConfig(epochs=1, val_pairs=1000), [clock], train_data=train_ds, val_data=val_ds)
    per_batch = float(np.median(np.diff(stamps[3:])))   # skip graph tracing
    return per_batch * clock.steps


def slope(ns, ts) -> float:
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="5000,20000,60000")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    import keras

    from siamese_core import SiameseModel, load_dataset, make_pairs
    from siamese_core.train import subsample
    from siamese_core.verdict import nearest

    full = load_dataset(a.dataset, "train")
    val = subsample(load_dataset(a.dataset, "test"), 1000, 0)
    model = SiameseModel.load()
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    for n in sizes:
        ds = subsample(full, n, 0)
        pairs_s = median(timeit(lambda: make_pairs(ds.labels, 0), repeat=3))
        t = time.perf_counter()
        gallery = model.embed(ds.images)
        embed_s = time.perf_counter() - t
        queries = gallery[: a.queries]
        nn_s = median(timeit(lambda: [nearest(q, gallery, 5) for q in queries], repeat=3))
        keras.backend.clear_session()
        ep_s = epoch_seconds(ds, val)
        rows.append({"n images": n, "make_pairs s": pairs_s, "train epoch s": ep_s,
                     "embed gallery s": embed_s, f"{a.queries} NN queries s": nn_s})
        print(rows[-1], flush=True)
    ns = [r["n images"] for r in rows]
    slopes = {c: slope(ns, [r[c] for r in rows]) for c in rows[0] if c != "n images"}
    rows.append({"n images": "log-log slope", **slopes})
    print(table(rows, list(rows[0])))
    path = save("scale", {"rows": rows, "slopes": slopes, "dataset": a.dataset}, a.out)
    print(f"wrote {path}")
    return {"rows": rows, "slopes": slopes}


if __name__ == "__main__":
    main()
