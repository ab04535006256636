"""Verdict latency: ``SiameseModel.compare`` on two 280x280 RGBA canvas drawings, end to end and
split into preprocessing and inference; plus ``embed`` throughput.

    python bench/latency.py [--calls 300]
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from common import save, table

from siamese_core import SiameseModel, load_dataset, preprocess


def canvas(shape: str) -> np.ndarray:
    """What the drawable canvas returns: RGBA, white strokes, 280x280."""
    img = np.zeros((280, 280, 4), np.uint8)
    img[..., 3] = 255
    if shape == "1":
        cv2.line(img, (140, 40), (150, 240), (255, 255, 255, 255), 22)
    else:
        cv2.ellipse(img, (140, 140), (70, 100), 0, 0, 360, (255, 255, 255, 255), 22)
    return img


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000.0, q))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--batch", type=int, default=1000, help="images per embed call")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    m = SiameseModel.load()
    one, zero = canvas("1"), canvas("0")
    for _ in range(10):                                  # warm up caches and the session
        m.compare(one, zero)
    total, prep, infer = [], [], []
    for _ in range(a.calls):
        t0 = time.perf_counter()
        m.compare(one, zero)
        total.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        x = np.stack([preprocess(one), preprocess(zero)])
        t1 = time.perf_counter()
        m.embed(x)
        t2 = time.perf_counter()
        prep.append(t1 - t0)
        infer.append(t2 - t1)
    rows = [{"stage": name, "p50 ms": pct(v, 50), "p95 ms": pct(v, 95), "calls": a.calls}
            for name, v in (("compare (end to end)", total), ("preprocess x2", prep),
                            ("inference (embed 2)", infer))]
    print(table(rows, ["stage", "p50 ms", "p95 ms", "calls"]))

    images = load_dataset("mnist-5k", "test").images
    batch = np.resize(images, (a.batch, 28, 28))
    m.embed(batch)
    reps = []
    for _ in range(5):
        t0 = time.perf_counter()
        m.embed(batch)
        reps.append(time.perf_counter() - t0)
    throughput = a.batch / float(np.median(reps))
    print(f"\nembed throughput: {throughput:,.0f} images/s (batches of {a.batch}, median of 5)")
    path = save("latency", {"rows": rows, "embed_images_per_s": throughput}, a.out)
    print(f"wrote {path}")
    return {"rows": rows, "embed_images_per_s": throughput}


if __name__ == "__main__":
    main()
