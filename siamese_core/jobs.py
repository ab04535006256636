"""Training in a spawned worker process, for UIs that must stay free of TensorFlow.

The worker runs ``train.train`` and forwards its callback events through a queue; a stop event
asks it to finish cleanly (best weights so far are kept). A job belongs to its run, not to a UI
session: every job has an unguessable ``id`` and is found again with ``find(id)`` (a reloaded
page, a second tab). At most ``MAX_CONCURRENT`` jobs run per parent process.

Nothing depends on a UI reading the events. A monitor thread in the parent drains every job's
queue (a worker whose pipe fills would otherwise hang at exit and keep its slot for ever), reaps
ended workers (no zombies), stops runs nobody has polled for ``UNWATCHED_GRACE_S`` and kills a
stopped worker that does not end. Workers exit on their own when the parent goes away.

Starting a worker costs ~6-10 s (spawn + importing TensorFlow) before the first batch, so a UI
calls ``prewarm()`` while it shows the Train form: one idle worker imports TensorFlow and warms it
up while the user reads, and the next ``TrainingJob.start`` hands it its job at once. The spare
lives only while somebody keeps asking for it: unasked for ``SPARE_IDLE_S`` it is shut down (it
holds ~700 MB). A click that finds no warm worker waits for that start; the wait comes off the
run's time budget (``budget_after_wait``), so "train for 50 s" still means a model ~50 s after the
click.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import secrets
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import TrainConfig


def _env_seconds(name: str, default: float) -> float:
    try:
        v = float(os.environ.get(name, default))
        return v if v > 0 else default
    except ValueError:
        return default


MAX_CONCURRENT = 2
# A run that no UI has polled for this long is stopped (its best weights are still saved). Long
# enough for a browser's throttled background tab (timers slowed to once a minute).
UNWATCHED_GRACE_S = _env_seconds("SIAMESE_UNWATCHED_GRACE_S", 180.0)
SPARE_IDLE_S = _env_seconds("SIAMESE_SPARE_IDLE_S", 60.0)
KILL_AFTER_S = 60.0         # a stopped (or finished) worker still alive this much later is killed
FINISHED_KEEP_S = 3600.0    # a finished run stays findable by id this long
MONITOR_EVERY_S = 0.5
FLUSH_TIMEOUT_S = 30.0      # a worker waits this long at most for its last events to be read
MIN_WAIT = 0.5   # seconds: a warm worker's hand-over is not worth changing the config for

_lock = threading.RLock()
_jobs: dict[str, "TrainingJob"] = {}     # run id -> job: running, and finished for a while
_spare: "TrainingJob | None" = None      # an idle, warmed-up worker waiting for a job
_monitor: threading.Thread | None = None


def budget_after_wait(config: TrainConfig, waited: float) -> TrainConfig:
    """``config`` with the time spent waiting for a worker to start (``waited`` seconds since the
    click) taken off its time budget, never below half of it. No budget or a short wait:
    unchanged."""
    if config.seconds is None or waited < MIN_WAIT:
        return config
    return replace(config, seconds=round(max(config.seconds / 2, config.seconds - waited), 1))


class BusyError(RuntimeError):
    """Too many trainings are running on this server."""


def _flush(events) -> None:
    """Let the queue's feeder thread write the last events, but never hang on a reader that is
    gone: after ``FLUSH_TIMEOUT_S`` the rest is dropped and the process may exit."""
    events.close()
    t = threading.Thread(target=events.join_thread, daemon=True)
    t.start()
    t.join(FLUSH_TIMEOUT_S)
    if t.is_alive():
        events.cancel_join_thread()


def _worker(tasks, events, stop, parent: int) -> None:
    """Entry point of the spawned process (must live in an importable module): import and warm
    up TensorFlow, then wait for one ``(config, out)`` task and train it. Files it writes are
    private to the server's user (umask 077)."""
    os.umask(0o077)
    try:
        _serve(tasks, events, stop, parent)
    finally:
        _flush(events)


def _orphaned(parent: int) -> bool:
    return os.getppid() != parent


def _serve(tasks, events, stop, parent: int) -> None:
    try:
        from .errors import SiameseError
        from .train import Callback, train, warm_up
        warm_up()
        events.put(("ready", None))
    except Exception as e:
        traceback.print_exc()
        events.put(("error", f"could not start TensorFlow: {type(e).__name__}: {e}"))
        return
    while True:    # idle: wait for a job, or go when told to or when the parent is gone
        try:
            task = tasks.get(timeout=1.0)
            break
        except queue_mod.Empty:
            if _orphaned(parent):
                return
    if task is None:
        return
    config, out, clicked = task
    config = budget_after_wait(config, time.time() - clicked)
    try:
        class Forward(Callback):
            def on_train_begin(self, e): events.put(("begin", e))
            def on_batch_end(self, e): events.put(("batch", e))
            def on_epoch_end(self, e): events.put(("epoch", e))
            def on_train_end(self, e):
                e.meta = {}          # the UI reads the saved JSON; keep the message small
                events.put(("end", e))
            def stop_requested(self): return stop.is_set() or _orphaned(parent)

        train(config, [Forward()], out=out)
    except SiameseError as e:
        events.put(("error", str(e)))
    except Exception as e:  # report, don't hang the UI; the traceback goes to the server log
        traceback.print_exc()
        events.put(("error", f"training crashed: {type(e).__name__}: {e}"))


@dataclass
class JobState:
    """Everything a UI needs to draw a run, accumulated from the worker's events."""

    status: str = "starting"          # starting | running | done | failed
    begin: object | None = None
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    last_batch: object | None = None
    last_epoch: object | None = None
    end: object | None = None
    error: str | None = None
    stop_requested: bool = False
    stopped_unwatched: bool = False   # stopped by the server: nobody was watching
    warm: bool = False                # the worker has imported and warmed up TensorFlow
    best_epoch: object | None = None  # the EpochEnd whose weights the run keeps

    def apply(self, kind: str, ev) -> None:
        """Fold one worker event (``kind``, payload) into the state."""
        if kind == "ready":
            self.warm = True
        elif kind == "begin":
            self.begin, self.status = ev, "running"
        elif kind == "batch":
            self.steps.append(ev.step)
            self.losses.append(ev.loss)
            self.last_batch = ev
        elif kind == "epoch":
            self.epochs.append(ev.metrics)
            self.last_epoch = ev
            if ev.is_best:
                self.best_epoch = ev
        elif kind == "end":
            self.end, self.status = ev, "done"
        elif kind == "error":
            self.error, self.status = ev, "failed"

    def snapshot(self) -> "JobState":
        """A copy a UI can read while the monitor keeps appending to this one."""
        return replace(self, steps=list(self.steps), losses=list(self.losses),
                       epochs=list(self.epochs))


class TrainingJob:
    """One training run in a child process. Create with ``TrainingJob.start``."""

    def __init__(self):
        self.id = secrets.token_hex(16)     # unguessable: holding it is owning the run
        self.config, self.out = None, None
        self.state = JobState()
        self.started = time.time()
        self.watched = time.time()          # last poll by a UI
        self.wanted = time.time()           # last prewarm() that asked for this spare
        self.stop_at: float | None = None   # when stop was asked, or the run ended
        self._mu = threading.Lock()
        ctx = mp.get_context("spawn")
        self._tasks = ctx.Queue()
        self._events = ctx.Queue()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_worker,
                                 args=(self._tasks, self._events, self._stop, os.getpid()),
                                 daemon=True, name="siamese-train")
        # A spawned child first re-runs the parent's __main__ by its path. Under `streamlit run`
        # that is the running page script (Streamlit installs it as __main__): the app's UI
        # code would run again, headless, inside the training process. The worker needs none
        # of it, so the child is shown a bare __main__.
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self._proc.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        _ensure_monitor()

    @classmethod
    def start(cls, config, out: Path) -> "TrainingJob":
        """Start a run (on the warm spare worker if there is one), or raise ``BusyError`` when
        ``MAX_CONCURRENT`` are already running. The run's folder is created by the worker when
        it saves, so a run that fails early leaves nothing behind."""
        global _spare
        with _lock:
            if sum(1 for j in _jobs.values() if j.alive) >= MAX_CONCURRENT:
                raise BusyError("the server is busy training other models; try again in a moment")
            job, _spare = (_spare, None) if _spare is not None and _spare.alive else (cls(), _spare)
            job.config, job.out, job.started, job.watched = config, Path(out), time.time(), time.time()
            job._tasks.put((config, str(out), job.started))
            _jobs[job.id] = job
        return job

    @property
    def alive(self) -> bool:
        return self._proc.is_alive()

    @property
    def finished(self) -> bool:
        return self.state.status in ("done", "failed")

    def stop(self) -> None:
        """Ask the worker to stop after the current batch (it still validates and saves)."""
        self.state.stop_requested = True
        self.stop_at = self.stop_at or time.time()
        self._stop.set()

    def kill(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()

    def close(self) -> None:
        """End an idle (spare) worker: tell it to go, then make sure it does."""
        try:
            self._tasks.put(None)
        except (OSError, ValueError):
            pass
        self._proc.join(5)
        self.kill()
        self._proc.join(5)

    def drain(self, max_events: int = 100_000) -> None:
        """Move pending events into ``state``; notice a worker that died without a word and reap
        one that ended. Called by the monitor thread and by ``poll``."""
        with self._mu:
            s = self.state
            for _ in range(max_events):
                try:
                    kind, ev = self._events.get_nowait()
                except queue_mod.Empty:
                    break
                except (EOFError, OSError, ValueError):
                    break
                s.apply(kind, ev)
            if not self._proc.is_alive():
                self._proc.join(0)          # reap: no zombie left behind
                if not self.finished and self._events.empty():
                    s.status = "failed"
                    s.error = s.error or ("the training process exited unexpectedly "
                                          f"(code {self._proc.exitcode})")
            if self.finished and self.stop_at is None:
                self.stop_at = time.time()

    def poll(self) -> JobState:
        """What a UI draws: drain, mark the run as watched, return a snapshot of the state."""
        self.watched = time.time()
        self.drain()
        with self._mu:
            return self.state.snapshot()

    def wait_until(self, done: Callable[[JobState], bool], timeout: float = 120.0) -> JobState:
        """Block until ``done(state)`` holds, woken by the worker's events and by its exit (for
        scripts and tests: a UI polls). ``TimeoutError`` after ``timeout`` seconds, or as soon
        as the run has ended without it."""
        from multiprocessing.connection import wait
        deadline = time.monotonic() + timeout
        while True:
            s = self.poll()
            if done(s):
                return s
            if s.status in ("done", "failed"):
                raise TimeoutError(f"the run ended ({s.status}: {s.error or s.end}) first")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"still {s.status} after {timeout:.0f} s")
            # The monitor thread may take an event off the pipe before this wait sees it:
            # never wait longer than its period for the next look.
            wait([self._events._reader, self._proc.sentinel], min(left, MONITOR_EVERY_S))


def find(run_id: str | None) -> TrainingJob | None:
    """The run with this id (running, or finished within ``FINISHED_KEEP_S``), or None."""
    if not run_id:
        return None
    with _lock:
        return _jobs.get(str(run_id))


def prewarm() -> "TrainingJob":
    """Make sure one idle worker is importing / has imported TensorFlow, ready for the next
    ``TrainingJob.start``; cheap when it already exists, and keeps it from being shut down for
    another ``SPARE_IDLE_S``. Returns it (``state.warm`` once ready)."""
    global _spare
    with _lock:
        if _spare is None or not _spare.alive:
            _spare = TrainingJob()
        _spare.wanted = time.time()
        return _spare


def tick(now: float | None = None) -> None:
    """One round of the monitor's housekeeping (see the module docstring)."""
    global _spare
    now = time.time() if now is None else now
    with _lock:
        jobs, spare = list(_jobs.items()), _spare
    for rid, j in jobs:
        j.drain()
        if not j.finished and not j.state.stop_requested and now - j.watched > UNWATCHED_GRACE_S:
            j.state.stopped_unwatched = True
            j.stop()
        if j.alive and j.stop_at is not None and now - j.stop_at > KILL_AFTER_S:
            j.kill()
        if not j.alive and j.finished and now - (j.stop_at or now) > FINISHED_KEEP_S:
            with _lock:
                _jobs.pop(rid, None)
    if spare is not None:
        spare.drain()
        if now - spare.wanted > SPARE_IDLE_S or not spare.alive:
            with _lock:
                if _spare is spare:
                    _spare = None
            spare.close()


def _monitor_loop() -> None:
    while True:
        time.sleep(MONITOR_EVERY_S)
        try:
            tick()
        except Exception:   # housekeeping must never die; the traceback goes to the log
            traceback.print_exc()


def _ensure_monitor() -> None:
    global _monitor
    with _lock:
        if _monitor is None or not _monitor.is_alive():
            _monitor = threading.Thread(target=_monitor_loop, daemon=True, name="siamese-jobs")
            _monitor.start()


def smoothed(values: list[float], window: int = 10) -> np.ndarray:
    """Trailing moving average for a readable loss curve."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)
