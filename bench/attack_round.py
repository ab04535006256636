"""The attack round of issue 24 (items 9-20), re-run: crafted archives, images, names, cluster
settings and special files against the library and the command line. Each case says ``ok``
(refused in one line, or handled as the issue asks) or ``DEFECT`` (a traceback, a hang past
its time limit, a wrong answer), with what was seen. The browser-side cases (Markdown in names,
server paths on pages, uploads per session) are the e2e and AppTest tests named in the table.

    python bench/attack_round.py            # ~2 min on 2 cores; results/attack_round.json
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from common import ROOT, save
from PIL import Image

TMP = Path(tempfile.mkdtemp(prefix="attack-"))
ENV = dict(os.environ, SIAMESE_RUNS_DIR=str(TMP / "runs"), PYTHONPATH=str(ROOT))


def png(a: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    im = Image.fromarray(a) if mode is None else Image.fromarray(a).convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def glyphs(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = np.full((48, 48), 255, np.uint8)
        x, y = rng.integers(4, 24, 2)
        a[y:y + 16, x:x + 4] = 0
        out.append(a)
    return out


def zip_of(name: str, members: dict[str, bytes]) -> Path:
    path = TMP / name
    with zipfile.ZipFile(path, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return path


def cli(*args: str, timeout: float = 60, env: dict | None = None) -> tuple[int | None, str, float]:
    """Run ``python -m siamese_core ARGS``: (exit code or None on a hang, stderr, seconds)."""
    t = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "siamese_core", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=timeout, env=env or ENV)
        return r.returncode, r.stderr, time.monotonic() - t
    except subprocess.TimeoutExpired:
        return None, "(no answer)", time.monotonic() - t


def one_line_refusal(code, err: str, secs: float, limit: float = 30) -> tuple[bool, str]:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("I0000",
             "WARNING: All log"))]
    last = lines[-1] if lines else ""
    ok = (code not in (None, 0) and "Traceback" not in err and last.startswith("error:")
          and secs < limit and "\x1b" not in err)
    return ok, f"exit {code}, {secs:.1f} s: {last[:140]}"


CASES: list[tuple[str, str, object]] = []


def case(item: str, what: str):
    def register(fn):
        CASES.append((item, what, fn))
        return fn
    return register


# --- 9: pixels, not bytes -----------------------------------------------------------------------
@case("9", "300 copies of a flat 4096x4096 PNG (5 Gpx declared, 6 MB zipped)")
def _pixels():
    flat = np.zeros((4096, 4096), np.uint8)
    flat[:2048] = 255
    one = png(flat)
    path = zip_of("pixels.zip", {f"c{i % 3}/{i}.png": one for i in range(300)})
    code, err, secs = cli("train", "--dataset", f"zip:{path}", "--epochs", "1", "--out",
                          str(TMP / "m9"), timeout=300)
    ok, seen = one_line_refusal(code, err, secs, limit=120)
    return ok and "billion pixels" in err, seen


# --- 11: ordinary images of other modes --------------------------------------------------------
@case("11", "2000-px palette, 1-bit and 16-bit PNGs; 16-bit ink 30000 on 1000")
def _modes():
    from siamese_core.preprocess import prepare
    big = np.full((2000, 2000), 255, np.uint8)
    big[500:1500, 900:1100] = 0
    sixteen = np.full((64, 64), 1000, np.uint16)
    sixteen[10:50, 30:34] = 30000
    inputs = {"P": png(np.stack([big] * 3, -1), "P"), "1": png(big, "1"),
              "I;16": png(big.astype(np.uint16) * 257), "I;16 low": png(sixteen)}
    seen = []
    for name, data in inputs.items():
        try:
            x = prepare(data)
            seen.append(f"{name}: ink {int((x > 127).sum())} px")
            if (x > 127).sum() == 0:
                return False, f"{name}: blank"
        except Exception as e:  # noqa: BLE001
            return False, f"{name}: {type(e).__name__}: {e}"
    return True, "; ".join(seen)


# --- 14: errors name the class and the split -----------------------------------------------------
@case("14", "8 classes, two of 2 images, hold-out by image")
def _names():
    members = {f"p{c}/{i}.png": png(a) for c in range(8)
               for i, a in enumerate(glyphs(3 if c < 2 else 20, c))}
    path = zip_of("small.zip", members)
    code, err, secs = cli("train", "--dataset", f"zip:{path}", "--holdout", "image",
                          "--epochs", "1", "--out", str(TMP / "m14"))
    ok, seen = one_line_refusal(code, err, secs)
    return ok and "np.int64" not in err and "'p0'" in err and "split" in err, seen


# --- 15/16: cluster settings ---------------------------------------------------------------------
TF_CONFIGS = {
    "cluster as a list": '{"cluster": ["127.0.0.1:1"], "task": {"type": "worker", "index": 0}}',
    "worker as a string": '{"cluster": {"worker": "127.0.0.1:1"}, "task": {"type": "worker", '
                          '"index": 0}}',
    "index Infinity": '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", '
                      '"index": Infinity}}',
    "address without port": '{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", '
                            '"index": 0}}',
    "address ::::": '{"cluster": {"worker": ["::::"]}, "task": {"type": "worker", "index": 0}}',
    "not JSON": '{"cluster":',
}
for _name, _raw in TF_CONFIGS.items():
    def _tf(raw=_raw):
        code, err, secs = cli("train", "--distributed", "--epochs", "1", "--out",
                              str(TMP / "m15"), env=dict(ENV, TF_CONFIG=raw))
        return one_line_refusal(code, err, secs)
    case("15", f"--distributed, TF_CONFIG {_name}")(_tf)


@case("15", "--distributed, a single worker on a port in use")
def _port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    raw = json.dumps({"cluster": {"worker": [f"127.0.0.1:{s.getsockname()[1]}"]},
                      "task": {"type": "worker", "index": 0}})
    try:
        code, err, secs = cli("train", "--distributed", "--epochs", "1", "--out",
                              str(TMP / "m15p"), env=dict(ENV, TF_CONFIG=raw), timeout=120)
    finally:
        s.close()
    return one_line_refusal(code, err, secs, limit=120)


@case("16", "--distributed, the other worker unreachable (--cluster-timeout 5)")
def _unreachable():
    a, b = socket.socket(), socket.socket()
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    ports = [a.getsockname()[1], b.getsockname()[1]]
    a.close()
    b.close()
    raw = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                      "task": {"type": "worker", "index": 0}})
    code, err, secs = cli("train", "--distributed", "--epochs", "1", "--cluster-timeout", "5",
                          "--out", str(TMP / "m16"), env=dict(ENV, TF_CONFIG=raw), timeout=120)
    ok, seen = one_line_refusal(code, err, secs, limit=120)
    return ok and "waiting up to 5 s" in err and "did not all come within 5 s" in err, seen


# --- 17: local workers' servers ------------------------------------------------------------------
@case("17", "--workers 2: are the gRPC ports reachable from outside the workers?")
def _exposed():
    from siamese_core import distributed
    w = distributed.start_local(2, ["train", "--epochs", "3", "--max-train", "200",
                                    "--max-val", "100", "--batch-size", "20", "--out",
                                    str(TMP / "m17")])
    try:
        ports = [int(a.rsplit(":", 1)[1]) for a in w.tf_configs[0]["cluster"]["worker"]]
        deadline = time.monotonic() + 120
        listening = False
        while time.monotonic() < deadline and not listening:
            table = Path(f"/proc/{w.procs[0].pid}/net/tcp").read_text() + \
                Path(f"/proc/{w.procs[0].pid}/net/tcp6").read_text()
            listening = all(f":{p:04X} " in table for p in ports)
            time.sleep(0.2)
        reached = []
        for p in ports:
            try:
                socket.create_connection(("127.0.0.1", p), timeout=2).close()
                reached.append(p)
            except OSError:
                pass
        code = distributed.supervise(w)
    except BaseException:
        distributed._end(w.procs)
        raise
    return (w.private and listening and not reached and code == 0,
            f"private network {w.private}, servers up {listening}, reachable from outside "
            f"{reached or 'none'}, exit {code}")


# --- 18: terminal injection ----------------------------------------------------------------------
@case("18", "class and member names with ESC[2J, OSC title and a line break")
def _terminal():
    hostile = ["\x1b[2Ja", "\x1b]0;owned\x07b", "c\nerror: forged"]
    members = {f"{c}/{i}.png": png(a) for c in hostile for i, a in enumerate(glyphs(3))}
    members["x/\x1b[2J.txt"] = b"not an image"
    path = zip_of("names.zip", members)
    code, err, secs = cli("train", "--dataset", f"zip:{path}", "--holdout", "image",
                          "--epochs", "1", "--out", str(TMP / "m18"))
    ok, seen = one_line_refusal(code, err, secs)
    clean = "\x1b" not in err and "\x07" not in err and "\nerror: forged" not in err
    return ok and clean and "note:" in err, seen + f" ({err.count('note:')} note line(s))"


# --- 19: special files ---------------------------------------------------------------------------
@case("19", "train --dataset zip:/dev/zero")
def _zero():
    return one_line_refusal(*cli("train", "--dataset", "zip:/dev/zero", "--out", str(TMP / "z")))


@case("19", "train --dataset zip:<a fifo nobody writes>")
def _fifo():
    fifo = TMP / "fifo.zip"
    os.mkfifo(fifo)
    return one_line_refusal(*cli("train", "--dataset", f"zip:{fifo}", "--out", str(TMP / "f")))


@case("19", "evaluate a model whose JSON names zip:/dev/zero")
def _model_json():
    import shutil
    src = ROOT / "weights"
    for f in src.glob("default.*"):
        shutil.copy(f, TMP / f.name)
    meta = json.loads((TMP / "default.json").read_text())
    meta["dataset"] = "zip:/dev/zero"
    (TMP / "default.json").write_text(json.dumps(meta))
    return one_line_refusal(*cli("evaluate", "--weights", str(TMP / "default")))


# --- 20: the smaller ones ------------------------------------------------------------------------
@case("20", "a member name listed twice; GIF/WebP/TIFF named .png; an empty validation split")
def _smaller():
    import warnings

    from siamese_core.data import summarize
    members = {f"c{c}/{i}.png": png(a) for c in range(3) for i, a in enumerate(glyphs(2, c))}
    path = TMP / "small20.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as z:
        warnings.simplefilter("ignore")
        for k, v in members.items():
            z.writestr(k, v)
        z.writestr("c0/0.png", members["c0/0.png"])
        z.writestr("c2/x.png", png(glyphs(1)[0], fmt="GIF"))
    s = summarize(f"zip:{path}")
    notes = " | ".join(s.notes)
    ok = (s.counts[0] == 2 and "repeated entries" in notes and "(GIF)" in notes
          and s.refused is not None and "validation split is empty" in s.refused)
    return ok, f"counts {s.counts}; refused: {s.refused}; notes: {notes[:120]}"


BROWSER_SIDE = [
    ("10", "Markdown in member, class, run names", "tests/test_app.py::test_names_from_an_"
     "upload_reach_the_page_as_text_not_markdown, tests/test_text.py"),
    ("12", "server paths and ids on pages", "tests/test_app.py::test_server_paths_and_private_"
     "ids_never_reach_the_page, tests/e2e/test_your_data.py (no_server_paths)"),
    ("13", "disk use: uploads per session, kept runs, store limit", "tests/test_runs.py::test_"
     "disk_use_is_bounded_in_time_count_and_bytes, tests/e2e/test_your_data.py::test_a_session_"
     "keeps_its_newest_uploads_only"),
]


def main() -> int:
    rows = []
    for item, what, fn in CASES:
        t = time.monotonic()
        try:
            ok, seen = fn()
        except Exception as e:  # noqa: BLE001 - a crash of the case is a defect to report
            ok, seen = False, f"{type(e).__name__}: {e}"
        rows.append({"item": item, "case": what, "result": "ok" if ok else "DEFECT",
                     "seen": seen, "seconds": round(time.monotonic() - t, 1)})
        print(f"{item:>3}  {'ok    ' if ok else 'DEFECT'}  {what}\n       {seen}", flush=True)
    for item, what, where in BROWSER_SIDE:
        rows.append({"item": item, "case": what, "result": "tested", "seen": where})
    defects = sum(r["result"] == "DEFECT" for r in rows)
    print(f"\n{len(CASES)} cases run here, {defects} defect(s); browser-side items "
          f"{', '.join(i for i, _, _ in BROWSER_SIDE)}: see the tests named in the JSON")
    print(f"results: {save('attack_round', {'cases': rows, 'defects': defects})}")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
