"""Soak: N browser sessions x M uploads of worst-case images (4096 x 4096 RGBA PNGs) on the
Compare page, against a fresh server; its resident memory before, at peak, and after the
sessions close. Issue 15's target: growth bounded, and back near the baseline afterwards.

    python bench/soak.py                       # 4 sessions x 50 uploads (the issue's soak)
    python bench/soak.py --sessions 2 --uploads 5
    git worktree add /tmp/before 754ed72 && python bench/soak.py --app-dir /tmp/before \
        --out bench/results/soak_before.json      # the same soak against another checkout
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.harness import rss_mb, start_app, stop_app  # noqa: E402
from tests.soak import soak  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--app-dir", default=str(ROOT), help="the checkout whose app to serve")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    a = ap.parse_args()
    proc, base = start_app(Path(tempfile.mkdtemp()) / "streamlit.log", cwd=Path(a.app_dir))
    try:
        import urllib.request
        urllib.request.urlopen(base + "/compare", timeout=30).read()
        print(f"server pid {proc.pid}, RSS {rss_mb(proc.pid):.0f} MB")
        r = soak(base, proc.pid, a.sessions, a.uploads, a.side)
    finally:
        stop_app(proc)
    r["app_dir"] = a.app_dir
    r["command"] = "python bench/soak.py " + " ".join(sys.argv[1:])
    print(json.dumps(r, indent=1))
    Path(a.out).write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()
