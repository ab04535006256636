"""Shared helpers for the benchmarks: machine description, timing, tables, JSON output."""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

# Before any script imports TensorFlow: the package sets TensorFlow's environment defaults
# (oneDNN on) that every recipe then shares, as it does for a user.
import siamese_core  # noqa: E402,F401


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy as np
    info = {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "numpy": np.__version__,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
    try:
        import importlib.metadata as md
        for pkg in ("tensorflow-cpu", "tensorflow", "keras", "onnxruntime", "opencv-python-headless"):
            try:
                info[pkg] = md.version(pkg)
            except md.PackageNotFoundError:
                pass
    except ImportError:
        pass
    return info


def timeit(fn, repeat: int = 5, number: int = 1) -> list[float]:
    """Seconds per call of ``fn``, ``repeat`` times (each the mean of ``number`` calls)."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t) / number)
    return out


def median(xs):
    return statistics.median(xs)


def table(rows: list[dict], cols: list[str]) -> str:
    """A GitHub-markdown table."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return "—" if v is None else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def save(name: str, payload: dict, out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(payload, machine=machine(), command=" ".join(["python"] + sys.argv),
                   when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def parse_sets(items: list[str]) -> dict:
    """``["margin=1.0", "filters=[16,32,64]"]`` -> TrainConfig overrides (values are JSON)."""
    out = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants FIELD=VALUE, got {item!r}")
        out[field] = json.loads(value)
        if isinstance(out[field], list):
            out[field] = tuple(out[field])
    return out
