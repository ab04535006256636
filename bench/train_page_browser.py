"""The Train page in a real browser: one click on Train with the defaults, timed to "Training
finished", while counting the CPU time each side spends.

Starts the app (``streamlit run app.py``) and Debian's Chromium (Playwright), opens the Train page,
waits until the page's spare worker has had time to warm up (as a user reading the form would),
clicks Train and waits for the result. Meanwhile it samples ``/proc`` for the CPU seconds of the
browser's processes, the Streamlit server's and the training worker's: when the browser runs on
the same small machine, its chart redraws (and the server's) take cores from the training.

    python bench/train_page_browser.py                 # one run: ~1.5 min
    python bench/train_page_browser.py --runs 2
    python bench/train_page_browser.py --settle 0 --seconds 5 --images 300      # smoke
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import save, table

from tests.harness import CHROMIUM, CHROMIUM_FLAGS, start_app, stop_app

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK      # utime + stime


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


class CpuSampler(threading.Thread):
    """Every 0.25 s: the CPU seconds of the Streamlit server, of its workers (its process
    group) and of the browser (command line names chromium). Keeps each process's latest value,
    so processes that exit (a training worker) still count."""

    def __init__(self, app_pgid: int):
        super().__init__(daemon=True)
        self.app_pgid, self.stop = app_pgid, threading.Event()
        self.seen: dict[tuple[str, int], float] = {}

    def sample(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if pid == self.app_pgid:
                side = "server"      # Streamlit: runs the page's script on every redraw
            elif _pgid(pid) == self.app_pgid:
                side = "worker"      # training (and the spare) processes
            else:
                side = "browser" if b"chromium" in cmd else None
            if side:
                cpu = _cpu_seconds(pid)
                if cpu is not None:
                    self.seen[(side, pid)] = cpu

    def totals(self) -> dict[str, float]:
        out = {"server": 0.0, "worker": 0.0, "browser": 0.0}
        for (side, _), cpu in self.seen.items():
            out[side] += cpu
        return out

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            time.sleep(0.25)


def one_run(browser, base: str, app_pgid: int, settle: float, seconds: int | None = None,
            images: int | None = None) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(base + "/")    # the root, then the sidebar link, as a user does
    page.get_by_text("Three parts").wait_for(timeout=60_000)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Train").click()
    page.get_by_text("Set the hyperparameters").wait_for(timeout=60_000)
    for label, value in (("Time budget (s)", seconds), ("Training images (0 = all)", images)):
        if value is not None:      # smoke runs only: the measurement uses the page's defaults
            box = page.get_by_role("spinbutton", name=label)
            box.fill(str(value))
            box.press("Tab")
    time.sleep(settle)      # the user reads the form; the spare worker imports TensorFlow
    sampler = CpuSampler(app_pgid)
    sampler.sample()
    before = sampler.totals()
    sampler.start()
    t0 = time.perf_counter()
    page.get_by_role("button", name="Train", exact=True).click()
    done = page.get_by_text("Training finished").or_(page.get_by_text("Training stopped"))
    done.first.wait_for(timeout=300_000)
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    sampler.sample()
    after = sampler.totals()
    text = done.first.inner_text()
    m = re.search(r"after (\d+) epoch", text)
    acc = page.locator('[data-testid="stMetric"]').first.inner_text().split("\n")[-1]
    versus = _versus_shipped(page)
    page.close()
    return {"wall s": wall, "epochs": int(m.group(1)) if m else None, "pair acc (val)": acc,
            **versus, **{f"{k} CPU s": after[k] - before[k] for k in after}}


VERSUS = re.compile(r"yours ([\d.]+)%, shipped ([\d.]+)% \S+ ([-+]?[\d.]+) points \(95 % interval "
                    r"([-+]?[\d.]+) to ([-+]?[\d.]+)\): ([a-z ]+)")


def _versus_shipped(page) -> dict:
    """The finished page's comparison with the shipped model (all pairs of the validation
    images, paired bootstrap), as the user reads it; empty if the page shows none."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    line = page.locator("p", has_text="Against the shipped model").first
    try:
        line.wait_for(timeout=60_000)
    except PlaywrightTimeout:       # a dataset the shipped model was not trained on
        return {}
    m = VERSUS.search(" ".join(line.inner_text().split()))
    if m is None:
        raise SystemExit(f"unexpected comparison text: {line.inner_text()!r}")
    return {"all pairs": float(m.group(1)) / 100, "shipped all pairs": float(m.group(2)) / 100,
            "vs shipped, points (95% CI)": f"{float(m.group(3)):+.2f} ({float(m.group(4)):+.2f} "
                                           f"… {float(m.group(5)):+.2f})",
            "verdict": m.group(6).strip()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--settle", type=float, default=20.0,
                    help="seconds on the form before the click (the spare worker warms up)")
    ap.add_argument("--seconds", type=int, default=None, help="change the time budget (smoke)")
    ap.add_argument("--images", type=int, default=None, help="training images (smoke)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    log = Path(tempfile.mkdtemp()) / "streamlit.log"
    proc, base = start_app(log)
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_FLAGS)
            for i in range(a.runs):
                print(f"run {i + 1}: click Train on the page defaults …", flush=True)
                rows.append({"run": i + 1, **one_run(browser, base, os.getpgid(proc.pid),
                                                     a.settle, a.seconds, a.images)})
            browser.close()
    finally:
        stop_app(proc)
    print(table(rows, ["run", "wall s", "epochs", "pair acc (val)", "all pairs",
                       "vs shipped, points (95% CI)", "verdict", "worker CPU s", "server CPU s",
                       "browser CPU s"]))
    summary = {"median wall s": statistics.median(r["wall s"] for r in rows),
               "max wall s": max(r["wall s"] for r in rows),
               "nproc": os.cpu_count()}
    path = save("train_page_browser", {"rows": rows, "summary": summary}, a.out)
    print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
