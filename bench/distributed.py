"""One process against two tf.distribute workers on this machine, at the same global batch.

    python bench/distributed.py                      # ~3 minutes
    python bench/distributed.py --seconds 10 --equiv-steps 5 --max-train 1000 --epochs 1 \
        --seeds 0                                                                  # smoke
    python bench/distributed.py --soak 600           # ~25 minutes: the long-run check alone
    python bench/distributed.py --keys 5000          # ~2 minutes: instance keys, memory per call

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

``--soak SECONDS`` runs only the long-run check (issue 22): two workers train mnist-5k for
SECONDS with the Train page's settings; every worker samples its thread count, resident memory
and ms per step every ``--every`` seconds; then one process trains the same global batches
(same seed, as many epochs): the kept validation and the test pair accuracy of both.

``--keys CALLS`` runs only the collective instance-key check (issue 22): two workers make CALLS
agreements (one all-reduce each) with TensorFlow's default fresh instance key per call, then
with keys fixed at tracing (the Trainer's setting): memory kept and milliseconds per call.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import save, table

ROOT = Path(__file__).resolve().parents[1]

# Every run: its arguments as JSON; a worker creates its strategy before anything else.
START = r"""
import json, os, sys, time
import numpy as np
import siamese_core
args = json.loads(sys.argv[1])
strategy = None
if args.pop("distributed"):
    from siamese_core.distributed import strategy_from_env
    strategy = strategy_from_env()
from siamese_core.train import Callback, TrainConfig, Trainer
"""

RUN = START + r"""
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


SOAK = START + r"""
every = args.pop("every")


def sample(step, ms):
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return {"step": step, "threads": len(os.listdir("/proc/self/task")), "rss_mb": round(rss, 1),
            "ms_per_step": ms}


class Probe(Callback):
    def __init__(self):
        self.samples, self.t, self.step = [], time.perf_counter(), 0
    def on_batch_end(self, e):
        now = time.perf_counter()
        if now - self.t >= every:
            ms = round(1000 * (now - self.t) / (e.step - self.step), 2)
            self.samples.append({"elapsed": round(e.elapsed, 1), **sample(e.step, ms)})
            self.t, self.step = now, e.step


probe = Probe()
t = Trainer(TrainConfig(**args), [probe], strategy=strategy)
end = t.run()
test = (end.meta.get("test") or {}).get("pair_accuracy")
print(json.dumps({"chief": t.is_chief, "steps": t.step, "epochs": end.epochs_done,
                  "reason": end.reason, "samples": probe.samples,
                  "val_pair_accuracy": end.metrics["pair_accuracy"], "test_pair_accuracy": test}))
"""


KEYS = r"""
import json, os, sys, time
import numpy as np
import siamese_core.distributed as d
d.REUSE_INSTANCE_KEYS = sys.argv[1] == "fixed"
replicas = d.StrategyReplicas(d.strategy_from_env())
calls = int(sys.argv[2])


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


for _ in range(300):                    # traced, connected, allocator warmed
    replicas.agree(np.ones(3))
m0, t0 = rss_mb(), time.perf_counter()
for _ in range(calls):
    replicas.agree(np.ones(3))
print(json.dumps({"ms_per_call": 1000 * (time.perf_counter() - t0) / calls,
                  "kb_per_call": (rss_mb() - m0) * 1024 / calls}))
"""


def instance_keys(calls: int) -> dict:
    """Two workers, ``calls`` agreements (one all-reduce each) with TensorFlow's fresh instance
    key per call, then with the keys fixed at tracing: memory kept and time per call."""
    from siamese_core.distributed import local_tf_configs
    rows = []
    for keys in ("fresh", "fixed"):
        print(f"keys: {keys} instance keys, 2 workers × {calls} calls …", flush=True)
        procs = [subprocess.Popen([sys.executable, "-c", KEYS, keys, str(calls)], cwd=ROOT,
                                  env=dict(os.environ, TF_CONFIG=json.dumps(c)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in local_tf_configs(2)]
        outs = [p.communicate(timeout=1800) for p in procs]
        for p, (_, err) in zip(procs, outs):
            if p.returncode != 0:
                raise SystemExit(f"a run failed (exit {p.returncode}):\n{err[-3000:]}")
        for i, (out, _) in enumerate(outs):
            r = json.loads(out.strip().splitlines()[-1])
            rows.append({"instance keys": keys, "worker": i, "calls": calls,
                         "KB kept per call": round(r["kb_per_call"], 3),
                         "ms per call": round(r["ms_per_call"], 2)})
    print(table(rows, list(rows[0])))
    return {"calls": calls, "rows": rows}


def soak(seconds: float, every: float) -> dict:
    """Two workers for ``seconds``, then one process on the same global batches."""
    from siamese_core.distributed import local_tf_configs

    def launch(cfg: dict, envs: list[dict]) -> list[dict]:
        procs = [subprocess.Popen([sys.executable, "-c", SOAK, json.dumps(cfg)], cwd=ROOT, env=e,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for e in envs]
        outs = [p.communicate(timeout=seconds + 1800) for p in procs]
        for p, (_, err) in zip(procs, outs):
            if p.returncode != 0:
                raise SystemExit(f"a run failed (exit {p.returncode}):\n{err[-3000:]}")
        return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]

    base = dict(batch_size=100, learning_rate=1e-2, val_every_seconds=10.0,
                val_every_epoch=False, every=every)
    print(f"soak: 2 workers for {seconds:.0f} s …", flush=True)
    workers = launch({**base, "epochs": None, "seconds": seconds, "distributed": True},
                     [dict(os.environ, TF_CONFIG=json.dumps(c)) for c in local_tf_configs(2)])
    epochs = workers[0]["epochs"]
    print(f"soak: 1 process, the same {epochs} epochs of global batches …", flush=True)
    one = launch({**base, "epochs": epochs, "seconds": None, "distributed": False},
                 [dict(os.environ)])[0]
    rows = []
    for name, w in [(f"worker {i}", w) for i, w in enumerate(workers)] + [("1 process", one)]:
        s = w["samples"]
        first, last = s[0], s[-1]
        rows.append({"run": name, "steps": w["steps"], "reason": w["reason"],
                     "threads (first / last / max)":
                         f"{first['threads']} / {last['threads']} / {max(x['threads'] for x in s)}",
                     "RSS MB (first / last / max)":
                         f"{first['rss_mb']:.0f} / {last['rss_mb']:.0f} / "
                         f"{max(x['rss_mb'] for x in s):.0f}",
                     "ms per step (first / last / median)":
                         f"{first['ms_per_step']:.1f} / {last['ms_per_step']:.1f} / "
                         f"{sorted(x['ms_per_step'] for x in s)[len(s) // 2]:.1f}",
                     "RSS KB per step after 1 min": round(growth_per_step(s, after=60.0), 2)})
    print(table(rows, list(rows[0])))
    acc = [{"run": name, "steps": r["steps"], "epochs": r["epochs"],
            "kept val. pair acc.": round(r["val_pair_accuracy"], 4),
            "test pair acc.": round(r["test_pair_accuracy"], 4)}
           for name, r in (("2 workers", workers[0]), ("1 process, same batches", one))]
    print(table(acc, list(acc[0])))
    return {"seconds": seconds, "every": every, "config": base, "workers": workers, "one": one,
            "table": rows, "accuracy": acc}


def growth_per_step(samples: list[dict], after: float) -> float:
    """Resident memory's growth in KB per step: the least-squares slope over the samples taken
    ``after`` seconds into the run (start-up and the first allocations excluded)."""
    late = [x for x in samples if x["elapsed"] >= after]
    if len(late) < 2:
        return float("nan")
    steps = np.array([x["step"] for x in late], float)
    rss = np.array([x["rss_mb"] for x in late], float)
    return float(np.polyfit(steps, rss, 1)[0] * 1024)


def time_to(history, target: float):
    return next((round(t, 2) for t, acc in history if acc >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--equiv-steps", type=int, default=40)
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=10, help="for the same-schedule accuracy runs")
    ap.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[0, 1, 2])
    ap.add_argument("--soak", type=float, default=None, metavar="SECONDS",
                    help="only the long-run check: two workers for SECONDS")
    ap.add_argument("--every", type=float, default=15.0, help="--soak: seconds between samples")
    ap.add_argument("--keys", type=int, default=None, metavar="CALLS",
                    help="only the instance-key check: CALLS collective calls, fresh vs fixed keys")
    ap.add_argument("--parts", default="speed,schedule,equivalence",
                    help="comma-separated parts to run (default all three)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    if not parts or parts - {"speed", "schedule", "equivalence"}:
        ap.error(f"--parts takes speed, schedule, equivalence; got {a.parts!r}")
    if a.keys is not None:
        save("distributed_keys", instance_keys(a.keys), a.out)
        return
    if a.soak is not None:
        save("distributed_soak", soak(a.soak, a.every), a.out)
        return
    tmp = Path(tempfile.mkdtemp())
    base = dict(epochs=None, seconds=a.seconds, batch_size=100, learning_rate=1e-2,
                val_every_seconds=1.0, val_every_epoch=False, max_train=a.max_train)
    rows, runs = [], {}
    for name, workers, extra in (("1 process", 1, {}),
                                 ("2 workers, pairs across the global batch", 2, {}),
                                 ("2 workers, each replica's own pairs", 2,
                                  {"global_pairs": False})) if "speed" in parts else ():
        print(f"speed: {name} …", flush=True)
        r = run({**base, **extra}, workers, tmp / "w.npz")
        runs[name] = r
        rows.append({"run": name, "steps": r["steps"],
                     "ms per step": round(1000 * r["train_seconds"] / r["steps"], 1),
                     "s to 95%": time_to(r["history"], 0.95),
                     "best val. pair acc.": round(r["best"], 4)})
    for row in rows:
        row["overhead"] = f"{100 * (row['ms per step'] / rows[0]['ms per step'] - 1):+.0f} %"
    if rows:
        print(table(rows, list(rows[0])))

    # Accuracy on the same global batch schedule (same epochs, same batches), three seeds.
    acc_rows = []
    for seed in a.seeds if "schedule" in parts else ():
        same = dict(epochs=a.epochs, batch_size=100, max_train=a.max_train, seed=seed,
                    val_every_epoch=True)
        print(f"schedule: seed {seed} …", flush=True)
        one, two = run(same, 1, tmp / "a.npz"), run(same, 2, tmp / "b.npz")
        acc_rows.append({"seed": seed, "epochs": a.epochs, "steps": one["steps"],
                         "1 process": round(one["best"], 4), "2 workers": round(two["best"], 4),
                         "difference (points)": round(100 * (two["best"] - one["best"]), 2)})
    if acc_rows:
        print(table(acc_rows, list(acc_rows[0])))

    # Equivalence: same seed, no augmentation, a fixed number of steps, validation at the end.
    import numpy as np
    steps_per_epoch = (a.max_train or 4000) // 100
    equiv = dict(epochs=max(1, round(a.equiv_steps / steps_per_epoch)), augment=False,
                 batch_size=100, max_train=a.max_train, val_every_epoch=False,
                 val_every_seconds=1e9)
    ref = run(equiv, 1, tmp / "one.npz") if "equivalence" in parts else None
    eq_rows = []
    for name, extra in (("pairs across the global batch", {}),
                        ("each replica's own pairs", {"global_pairs": False})) if ref else ():
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
    if eq_rows:
        print(table(eq_rows, list(eq_rows[0])))
    save("distributed", {"speed": rows, "same_schedule": acc_rows, "equivalence": eq_rows,
                         "runs": runs,
                         "config": base, "equiv_config": equiv}, a.out)


if __name__ == "__main__":
    main()
