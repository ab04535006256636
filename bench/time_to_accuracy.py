"""Time to accuracy on mnist-5k (train split -> validation split), three recipes in one run:
our default (``siamese_core.train``, in-batch pairs), the keras-io recipe and the PyImageSearch
recipe (``bench/recipes.py``). All validate on the same 4,000 fixed validation pairs with the
accuracy-maximising threshold, every half second of training (``--val-every``); time is training
wall clock with validation excluded (graph tracing included).

    python bench/time_to_accuracy.py                 # 3 x 30 s + 120 s budgets, ~11 minutes
    python bench/time_to_accuracy.py --budget 5 --short-budget 3 --max-train 300   # smoke
    python bench/time_to_accuracy.py --recipes default --budget 0 --short-budget 15 \
        --default-repeats 5 --set augment_warmup=0                                # ablation
"""
from __future__ import annotations

import argparse
import math
import statistics

from common import parse_sets, save, table

TARGETS = (0.90, 0.95, 0.97)


def time_to(points: list[dict], target: float) -> float | None:
    for p in points:
        if p["pair_accuracy"] >= target:
            return p["train_seconds"]
    return None


def acc_at(points: list[dict], seconds: float) -> float | None:
    """The last validated accuracy at or before ``seconds`` of training."""
    before = [p["pair_accuracy"] for p in points if p["train_seconds"] <= seconds + 1e-9]
    return before[-1] if before else None


def run_default(budget: float, seed: int, val_every: float, train_ds, val_ds,
                overrides: dict | None = None) -> list[dict]:
    from siamese_core.train import Callback, TrainConfig, train

    points: list[dict] = []

    class Record(Callback):
        def on_epoch_end(self, e):
            points.append({"train_seconds": e.metrics["train_seconds"],
                           "pair_accuracy": e.metrics["pair_accuracy"],
                           "roc_auc": e.metrics["roc_auc"]})
    train(TrainConfig(epochs=None, seconds=budget, seed=seed, val_every_seconds=val_every,
                      **(overrides or {})), [Record()], train_data=train_ds, val_data=val_ds)
    return points


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=float, default=120.0,
                    help="long budget, seconds (0: skip our default's long run)")
    ap.add_argument("--short-budget", type=float, default=30.0,
                    help="also run our default with this budget (its schedule fits it)")
    ap.add_argument("--recipes", default="default,keras-io,pyimagesearch")
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--default-repeats", type=int, default=3,
                    help="run our default with the short budget this many times (seeds seed, "
                         "seed+1, ...); ratios use the median time")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a TrainConfig field of our default (ablations), e.g. "
                         "--set augment_warmup=0 --set batch_size=100")
    ap.add_argument("--val-every", type=float, default=0.5,
                    help="validate every so many seconds of training, in every recipe")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    overrides = parse_sets(a.set)

    import keras
    from recipes import RECIPES, run

    from siamese_core import load_dataset
    from siamese_core.pairs import make_pairs
    from siamese_core.train import VAL_PAIR_SEED, subsample, warm_up

    train_ds = subsample(load_dataset("mnist-5k", "train"), a.max_train, a.seed)
    val_ds = load_dataset("mnist-5k", "test")
    val_pairs = make_pairs(val_ds.labels, VAL_PAIR_SEED, n_pairs=4000)  # what train() uses

    # TensorFlow's one-time costs, paid before any clock starts: otherwise the recipe that runs
    # first in this process is charged ~0.4 s that the others are not.
    warm_up()
    runs: dict[str, list[dict]] = {}
    short_runs: list[str] = []   # our default's short-budget runs: the ratio uses their median
    for name in a.recipes.split(","):
        keras.backend.clear_session()
        if name == "default":
            for r in range(a.default_repeats if a.short_budget else 0):
                key = f"default ({a.short_budget:g} s schedule, seed {a.seed + r})"
                print(f"running {key} …", flush=True)
                runs[key] = run_default(a.short_budget, a.seed + r, a.val_every, train_ds, val_ds,
                                        overrides)
                short_runs.append(key)
                keras.backend.clear_session()
            if a.budget:
                key = f"default ({a.budget:g} s schedule)"
                print(f"running {key} …", flush=True)
                runs[key] = run_default(a.budget, a.seed, a.val_every, train_ds, val_ds, overrides)
        else:
            print(f"running {name} …", flush=True)
            runs[name] = run(RECIPES[name], train_ds.images, train_ds.labels, val_ds.images,
                             val_pairs, a.budget, a.seed, a.val_every)

    short = a.short_budget or 30.0
    rows = []
    for name, pts in runs.items():
        row = {"recipe": name}
        for t in TARGETS:
            row[f"s to {t:.0%}"] = time_to(pts, t)
        row[f"acc @ {short:g} s"] = acc_at(pts, short)
        if a.budget:
            row[f"acc @ {a.budget:g} s"] = acc_at(pts, a.budget)
        row["best acc"] = max(p["pair_accuracy"] for p in pts)
        row["validations"] = len(pts)
        rows.append(row)
    cols = list(rows[0])
    print(table(rows, cols))

    # Our default's time to 95 %: the median over its short-budget runs (the long-budget run
    # alone when there are none); a run that never got there counts as infinitely slow.
    ours = [r for r in rows if r["recipe"] in short_runs] or [
        r for r in rows if r["recipe"].startswith("default")]
    times = [r["s to 95%"] if r["s to 95%"] is not None else math.inf for r in ours]
    base = statistics.median(times) if times else math.inf
    ratios = {}
    for r in rows:
        if not r["recipe"].startswith("default") and math.isfinite(base):
            other = r["s to 95%"]
            ratios[r["recipe"]] = (other / base) if other else None
    if ratios:
        print(f"\ntime to 95 %, recipe / default (median of {len(times)}: {base:.2f} s): "
              + ", ".join(f"{k} {v:.1f}x" if v else f"{k} never reached 95 %"
                          for k, v in ratios.items()))
    path = save("time_to_accuracy", {"rows": rows, "overrides": overrides, "ratios_time_to_95": ratios,
                                     "default_median_s_to_95": base if math.isfinite(base) else None,
                                     "curves": runs, "budget": a.budget,
                                     "short_budget": a.short_budget}, a.out)
    print(f"wrote {path}")
    return {"rows": rows, "ratios": ratios}


if __name__ == "__main__":
    main()
