"""One process against two tf.distribute workers on this machine, at the same global batch.

    python bench/distributed.py                      # ~3 minutes
    python bench/distributed.py --seconds 10 --equiv-steps 5 --max-train 1000 --epochs 1 \
        --seeds 0                                                                  # smoke

Runs, each in fresh processes (the workers with TF_CONFIG on free loopback ports):
- speed: the Train page's recipe on mnist-5k for ``--seconds`` of training, validating every
  second: ms per step (training time / steps, validation excluded) and seconds of training to
  95 % validation pair accuracy; for one process, two workers with in-batch pairs across the
  global batch, and two workers with each replica's own pairs;
- the same schedule: ``--epochs`` epochs (the same global batches) for each of ``--seeds``, one
  process against two workers: the kept validation pair accuracy;
- equivalence: ``--equiv-steps`` steps without augmentation from the same seed, then the largest
  weight difference (relative to each tensor's largest value) against the single process:
  BatchNorm normalises each replica's half batch by its own statistics while training, so the
  runs are close, not equal.
Two workers on 2 shared cores cannot be faster: this measures the collectives' overhead.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import save, table

ROOT = Path(__file__).resolve().parents[1]

RUN = r"""
import json, sys, time
import numpy as np
import siamese_core
from siamese_core.train import Callback, TrainConfig, Trainer
args = json.loads(sys.argv[1])
strategy = None
if args.pop("distributed"):
    from siamese_core.distributed import strategy_from_env
    strategy = strategy_from_env()
out = args.pop("weights_out")
t = Trainer(TrainConfig(**args), strategy=strategy)
end = t.run()
if t.is_chief:
    np.savez(out, **{v.path.replace("/", "|"): np.asarray(v.numpy()) for v in t.siamese.weights})
    h = end.meta["history"]
    print(json.dumps({"steps": t.step, "train_seconds": h[-1]["train_seconds"],
                      "history": [(m["train_seconds"], m["pair_accuracy"]) for m in h],
                      "best": end.metrics["pair_accuracy"]}))
"""


def run(config: dict, workers: int, weights_out: Path) -> dict:
    """Train ``config`` in one process (workers=1) or in ``workers`` processes; the chief's
    JSON summary."""
    from siamese_core.distributed import local_tf_configs
    arg = json.dumps({**config, "distributed": workers > 1, "weights_out": str(weights_out)})
    envs = ([dict(os.environ, TF_CONFIG=json.dumps(c)) for c in local_tf_configs(workers)]
            if workers > 1 else [dict(os.environ)])
    procs = [subprocess.Popen([sys.executable, "-c", RUN, arg], cwd=ROOT, env=e,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for e in envs]
    outs = [p.communicate(timeout=1800) for p in procs]
    for p, (_, err) in zip(procs, outs):
        if p.returncode != 0:
            raise SystemExit(f"a run failed:\n{err[-3000:]}")
    return json.loads(outs[0][0].strip().splitlines()[-1])


def time_to(history, target: float):
    return next((round(t, 2) for t, acc in history if acc >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--equiv-steps", type=int, default=40)
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=10, help="for the same-schedule accuracy runs")
    ap.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[0, 1, 2])
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    base = dict(epochs=None, seconds=a.seconds, batch_size=100, learning_rate=1e-2,
                val_every_seconds=1.0, val_every_epoch=False, max_train=a.max_train)
    rows, runs = [], {}
    for name, workers, extra in (("1 process", 1, {}),
                                 ("2 workers, pairs across the global batch", 2, {}),
                                 ("2 workers, each replica's own pairs", 2,
                                  {"global_pairs": False})):
        print(f"speed: {name} …", flush=True)
        r = run({**base, **extra}, workers, tmp / "w.npz")
        runs[name] = r
        rows.append({"run": name, "steps": r["steps"],
                     "ms per step": round(1000 * r["train_seconds"] / r["steps"], 1),
                     "s to 95%": time_to(r["history"], 0.95),
                     "best val. pair acc.": round(r["best"], 4)})
    one = rows[0]["ms per step"]
    for row in rows:
        row["overhead"] = f"{100 * (row['ms per step'] / one - 1):+.0f} %"
    print(table(rows, list(rows[0])))

    # Accuracy on the same global batch schedule (same epochs, same batches), three seeds.
    acc_rows = []
    for seed in a.seeds:
        same = dict(epochs=a.epochs, batch_size=100, max_train=a.max_train, seed=seed,
                    val_every_epoch=True)
        print(f"schedule: seed {seed} …", flush=True)
        one, two = run(same, 1, tmp / "a.npz"), run(same, 2, tmp / "b.npz")
        acc_rows.append({"seed": seed, "epochs": a.epochs, "steps": one["steps"],
                         "1 process": round(one["best"], 4), "2 workers": round(two["best"], 4),
                         "difference (points)": round(100 * (two["best"] - one["best"]), 2)})
    print(table(acc_rows, list(acc_rows[0])))

    # Equivalence: same seed, no augmentation, a fixed number of steps, validation at the end.
    import numpy as np
    steps_per_epoch = (a.max_train or 4000) // 100
    equiv = dict(epochs=max(1, round(a.equiv_steps / steps_per_epoch)), augment=False,
                 batch_size=100, max_train=a.max_train, val_every_epoch=False,
                 val_every_seconds=1e9)
    ref = run(equiv, 1, tmp / "one.npz")
    eq_rows = []
    for name, extra in (("pairs across the global batch", {}),
                        ("each replica's own pairs", {"global_pairs": False})):
        print(f"equivalence: {name} …", flush=True)
        r = run({**equiv, **extra}, 2, tmp / "two.npz")
        w1, w2 = np.load(tmp / "one.npz"), np.load(tmp / "two.npz")

        def rel(keys):     # largest difference, relative to the largest value of that tensor
            return max(float(np.max(np.abs(w1[k] - w2[k])) / max(np.max(np.abs(w1[k])), 1e-12))
                       for k in keys)
        stats = [k for k in w1.files if "moving" in k]
        learned = [k for k in w1.files if k not in stats]
        eq_rows.append({"2 workers vs 1 process": name, "steps": r["steps"],
                        "max rel. diff, learned weights": f"{rel(learned):.2e}",
                        "max rel. diff, BatchNorm statistics": f"{rel(stats):.2e}",
                        "val. pair acc. (1 process / 2 workers)":
                            f"{ref['best']:.4f} / {r['best']:.4f}"})
    print(table(eq_rows, list(eq_rows[0])))
    save("distributed", {"speed": rows, "same_schedule": acc_rows, "equivalence": eq_rows,
                         "runs": runs,
                         "config": base, "equiv_config": equiv}, a.out)


if __name__ == "__main__":
    main()
