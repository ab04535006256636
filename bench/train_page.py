"""The Train page's defaults, end to end: what a user gets from one click on Train.

Starts the same spawned ``TrainingJob`` the page starts, with the page's configuration
(``siamese_core.config.demo_config``), and times it from the click to the saved model. "warm":
as on the page, a spare worker was started when the form was shown (``jobs.prewarm``) and has
imported TensorFlow by the time of the click; "cold": the click also pays the worker start and
the TensorFlow import, which comes off the time budget ("budget s": what was trained). Then
evaluates the new model and the shipped one (``weights/default``) the same way: pair accuracy at
each model's stored threshold on 10,000 fresh balanced pairs of the validation split, the same
over every pair of its 1,000 images ("all pairs": no pair-sampling noise), ROC AUC, 10-way
one-shot accuracy; and, per run, the all-pairs difference to the shipped model with a 95 %
interval from resampling the validation images (a paired bootstrap: how much of a difference
one split of 1,000 images can tell apart).

    python bench/train_page.py            # warm seeds 0 (the page default), 1, 2 + cold seed 0: ~5 min
    python bench/train_page.py --seeds 0 --seconds 3 --max-train 300     # smoke
    python bench/train_page.py --cold-seeds "" --set margin=1.0 --out ablation_page_margin_1.0.json
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, parse_sets, save, table

from siamese_core import SiameseModel, jobs, load_dataset
from siamese_core.config import demo_config
from siamese_core.jobs import TrainingJob
from siamese_core.verdict import compare_models, evaluate


def run_job(cfg, out: Path, warm: bool) -> dict:
    if warm:
        spare = jobs.prewarm()
        while not spare.poll().warm:
            if not spare.alive:
                raise SystemExit(f"the spare worker died: {spare.state.error}")
            time.sleep(0.1)
    t0 = time.perf_counter()
    job = TrainingJob.start(cfg, out)
    t_begin = None
    while True:
        s = job.poll()
        if t_begin is None and s.begin is not None:
            t_begin = time.perf_counter() - t0
        if job.finished:
            break
        time.sleep(0.05)
    if s.status != "done":
        raise SystemExit(f"training failed: {s.error}")
    return {"wall s": time.perf_counter() - t0, "start s": t_begin,
            "budget s": s.begin.config["seconds"], "epochs": s.end.epochs_done,
            "best epoch": s.end.best_epoch, "reason": s.end.reason}


def scores(model: SiameseModel, ds, shipped: SiameseModel | None = None) -> dict:
    r = evaluate(model, ds)
    row = {"pair acc": r["pair_accuracy"], "all pairs": r["all_pairs_accuracy"],
           "ROC AUC": r["roc_auc"], "one-shot": r["one_shot_10way"]}
    if shipped is not None:
        b = compare_models(model, shipped, ds)
        row.update({"vs shipped, points (95% CI)": f"{100 * b['difference']:+.2f} "
                    f"({100 * b['low']:+.2f} … {100 * b['high']:+.2f})",
                    "difference": b["difference"], "ci": [b["low"], b["high"]]})
    return row


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1,2", help="warm runs; 0 is the page's default")
    ap.add_argument("--cold-seeds", default="0", help="runs without a warm worker")
    ap.add_argument("--seconds", type=float, default=None, help="override the page's budget")
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a field of the page's configuration (ablations), e.g. "
                         "--set margin=1.0 --set filters=[16,32,64]")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    sets = parse_sets(a.set)
    what = "page defaults" + "".join(f", {k}={v}" for k, v in sets.items())

    ds = load_dataset("mnist-5k", "test")
    shipped_model = SiameseModel.load(ROOT / "weights" / "default")
    shipped = {"run": "shipped weights/default", **scores(shipped_model, ds)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = [(int(s), True) for s in a.seeds.split(",") if s] + [
            (int(s), False) for s in a.cold_seeds.split(",") if s]
        for seed, warm in plan:
            over = {**sets, "seed": seed, "max_train": a.max_train}
            if a.seconds:
                over["seconds"] = a.seconds
            cfg = demo_config(**over)
            kind = "warm" if warm else "cold"
            print(f"seed {seed} ({kind}): training with the {what} …", flush=True)
            prefix = Path(tmp) / f"seed{seed}-{kind}"
            row = {"run": f"{what}, seed {seed}, {kind}", **run_job(cfg, prefix, warm)}
            row.update(scores(SiameseModel.load(prefix), ds, shipped_model))
            rows.append(row)
    cols = ["run", "wall s", "start s", "budget s", "epochs", "best epoch", "pair acc", "all pairs",
            "vs shipped, points (95% CI)", "ROC AUC", "one-shot"]
    print(table(rows + [shipped], cols))
    warm = [r for r in rows if r["run"].endswith("warm")] or rows
    summary = {"median wall s (warm)": statistics.median(r["wall s"] for r in warm),
               "max wall s (warm)": max(r["wall s"] for r in warm),
               # Warm runs only: a cold click trains for less (its wait comes off the budget).
               "median pair acc (warm)": statistics.median(r["pair acc"] for r in warm),
               "shipped pair acc": shipped["pair acc"],
               "median all pairs (warm)": statistics.median(r["all pairs"] for r in warm),
               "shipped all pairs": shipped["all pairs"],
               "runs significantly below shipped": sum(r["ci"][1] < 0 for r in rows),
               "runs significantly above shipped": sum(r["ci"][0] > 0 for r in rows)}
    print("\n" + ", ".join(f"{k}: {v:.4g}" for k, v in summary.items()))
    path = save("train_page", {"rows": rows, "shipped": shipped, "summary": summary,
                               "config": cfg.to_dict()}, a.out)
    print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
