"""The app under a real browser, for the end-to-end tests (``tests/e2e``) and the browser
benchmark (``bench/train_page_browser.py``): ``python -m siamese_studio`` on a free loopback port, and
the launch settings of Debian's Chromium. Imports neither Streamlit nor Playwright."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(log_path: Path, timeout: float = 60.0, script: str | None = None,
              cwd: Path = ROOT, env: dict | None = None,
              launcher: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the app (``launcher``, by default ``python -m siamese_studio``, in ``cwd``; or
    ``streamlit run script``, which then uses ``cwd``'s ``.streamlit/config.toml``) in its own
    process group (so its training workers can be stopped with it), with ``env`` added to the
    environment, and wait until it is healthy; returns the process and its base URL."""
    if launcher is None:
        launcher = ([sys.executable, "-m", "streamlit", "run", script] if script
                    else [sys.executable, "-m", "siamese_studio"])
    port = free_port()
    with open(log_path, "w") as log:   # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [*launcher, "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false"],
            cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, base
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            stop_app(proc)
            raise RuntimeError(f"streamlit did not become healthy: "
                               f"{Path(log_path).read_text()[-2000:]}")
        time.sleep(0.3)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def stop_app(proc: subprocess.Popen) -> None:
    """Stop the server and any training workers it spawned (its whole process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
