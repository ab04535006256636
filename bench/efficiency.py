"""Training efficiency: achieved GFLOP/s of the default training step against a float32 matmul
peak measured on the same machine in the same run.

FLOPs are counted from the embedding network's layers (2 per multiply-add; convolutions and dense
layers only), training ~= 3x forward (forward, input gradients, weight gradients).

    python bench/efficiency.py [--epochs 4] [--matmul 2048]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from common import save, table



def forward_flops(model) -> int:
    """Multiply-add FLOPs of one image through conv and dense layers."""
    import keras
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += 2 * h * w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def matmul_peak(n: int, reps: int = 10) -> float:
    import tensorflow as tf
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    f = tf.function(lambda x, y: tf.matmul(x, y))
    f(a, b).numpy()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f(a, b).numpy()
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / float(np.median(times)) / 1e9


def measure(config) -> dict:
    from siamese_core.model import ModelConfig, build_embedding
    from siamese_core.train import Callback, train

    stamps = []

    class Clock(Callback):
        def on_batch_end(self, e):
            stamps.append((e.epoch, time.perf_counter()))
    end = train(config, [Clock()])
    # Steady state: batches after the first epoch (which includes graph tracing); validation
    # pauses between epochs are excluded by timing batch to batch within each epoch.
    per_batch = [t1 - t0 for (e0, t0), (e1, t1) in zip(stamps, stamps[1:]) if e0 == e1 and e0 > 1]
    img_s = config.batch_size / float(np.median(per_batch))
    fwd = forward_flops(build_embedding(ModelConfig.from_dict(end.meta["model"])))  # as trained
    return {"images_per_s": img_s, "forward_mflop_per_image": fwd / 1e6,
            "train_gflop_s": 3 * fwd * img_s / 1e9, "epochs": end.epochs_done}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--matmul", type=int, default=2048)
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--variants", default="default,no top conv,bn before pool,previous model,"
                                          "no-augment,jit (no augment)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    import keras

    from siamese_core.train import TrainConfig

    peak = matmul_peak(a.matmul)
    base = TrainConfig(epochs=a.epochs, max_train=a.max_train)
    variants = {"default": base,
                # The models this default replaced, newest first (BENCHMARKS.md).
                "no top conv": replace(base, top_convs=0),
                "bn before pool": replace(base, block="conv-bn-pool", top_convs=0),
                "previous model": replace(base, block="conv-bn-pool", filters=(16, 32, 64),
                                          top_convs=0),
                "no-augment": replace(base, augment=False),
                "jit (no augment)": replace(base, augment=False, jit_compile=True)}
    rows = []
    for name in a.variants.split(","):
        keras.backend.clear_session()
        r = measure(variants[name])
        rows.append({"variant": name, "images/s": r["images_per_s"],
                     "MFLOP/image (fwd)": r["forward_mflop_per_image"],
                     "GFLOP/s (train)": r["train_gflop_s"],
                     "% of matmul peak": 100 * r["train_gflop_s"] / peak})
    print(f"float32 matmul peak ({a.matmul}x{a.matmul}, tf.matmul): {peak:.1f} GFLOP/s\n")
    print(table(rows, list(rows[0])))
    path = save("efficiency", {"rows": rows, "matmul_peak_gflop_s": peak}, a.out)
    print(f"wrote {path}")
    return {"rows": rows, "peak": peak}


if __name__ == "__main__":
    main()
