"""The app under a real browser, for the end-to-end tests (``tests/e2e``) and the browser
benchmark (``bench/train_page_browser.py``): ``streamlit run app.py`` on a free loopback port, and
the launch settings of Debian's Chromium. Imports neither Streamlit nor Playwright."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
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


def start_app(log_path: Path, timeout: float = 60.0, script: str = "app.py",
              cwd: Path = ROOT, env: dict | None = None,
              launcher: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the app as the README does (``streamlit run app.py`` in ``cwd``; another
    ``script`` there, with that folder's ``.streamlit/config.toml``; or a ``launcher`` command
    such as the installed ``siamese-studio``) in its own process group (so its training
    workers can be stopped with it), with ``env`` added to the environment, and wait until it
    is healthy; returns the process and its base URL."""
    if launcher is None:
        launcher = [sys.executable, "-m", "streamlit", "run", script]
    port = free_port()
    proc = subprocess.Popen(
        [*launcher, "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **(env or {})}, text=True, errors="replace")
    ready = threading.Event()

    def copy_log() -> None:
        """The server's output into its log; ``ready`` once it says it is listening (or ends)."""
        with open(log_path, "w") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if "You can now view" in line:
                    ready.set()
        ready.set()

    threading.Thread(target=copy_log, daemon=True, name="streamlit-log").start()
    base = f"http://127.0.0.1:{port}"
    healthy = False
    if ready.wait(timeout) and proc.poll() is None:     # woken by the server's own words
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=10) as r:
                healthy = r.read().strip() == b"ok"
        except OSError:
            pass
    if not healthy:
        stop_app(proc)
        raise RuntimeError(f"streamlit did not become healthy: "
                           f"{Path(log_path).read_text()[-2000:]}")
    return proc, base


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


def wait_exit(pids, timeout: float) -> set[int]:
    """Block until at least one of ``pids`` has exited (a zombie counts), or ``timeout`` s;
    returns those that have. Woken by the kernel (pidfd), not by polling."""
    import select
    fds: dict[int, int] = {}
    gone: set[int] = set()
    try:
        for pid in pids:
            try:
                fds[os.pidfd_open(pid)] = pid
            except ProcessLookupError:
                gone.add(pid)
        if not gone and fds:
            ready, _, _ = select.select(list(fds), [], [], timeout)
            gone = {fds[fd] for fd in ready}
        return gone
    finally:
        for fd in fds:
            os.close(fd)


def children(pid: int) -> set[int]:
    """The child processes of ``pid`` (Linux)."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out
