"""Training in a spawned worker process, for UIs that must stay free of TensorFlow.

The worker runs ``train.train`` and forwards its callback events through a queue; a stop event
asks it to finish cleanly (best weights so far are kept). ``TrainingJob.poll`` drains the queue
into a ``JobState`` that a UI renders. At most ``MAX_CONCURRENT`` jobs run per parent process.

Starting a worker costs ~6-10 s (spawn + importing TensorFlow) before the first batch, so a UI
calls ``prewarm()`` when it shows the Train form: one idle worker imports TensorFlow and warms it
up while the user reads, and the next ``TrainingJob.start`` hands it its job at once. A click that
finds no warm worker waits for that start; the wait comes off the run's time budget
(``budget_after_wait``), so "train for 50 s" still means a model ~50 s after the click.
"""
from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import TrainConfig

MAX_CONCURRENT = 2
_lock = threading.Lock()
_active: list["TrainingJob"] = []
_spare: "TrainingJob | None" = None    # an idle, warmed-up worker waiting for a job


MIN_WAIT = 0.5   # seconds: a warm worker's hand-over is not worth changing the config for


def budget_after_wait(config: TrainConfig, waited: float) -> TrainConfig:
    """``config`` with the time spent waiting for a worker to start (``waited`` seconds since the
    click) taken off its time budget, never below half of it. No budget or a short wait:
    unchanged."""
    if config.seconds is None or waited < MIN_WAIT:
        return config
    return replace(config, seconds=round(max(config.seconds / 2, config.seconds - waited), 1))


class BusyError(RuntimeError):
    """Too many trainings are running on this server."""


def _worker(tasks, events, stop) -> None:
    """Entry point of the spawned process (must live in an importable module): import and warm
    up TensorFlow, then wait for one ``(config, out)`` task and train it."""
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from .errors import SiameseError
        from .train import Callback, train, warm_up
        warm_up()
        events.put(("ready", None))
    except Exception as e:
        traceback.print_exc()
        events.put(("error", f"could not start TensorFlow: {type(e).__name__}: {e}"))
        return
    task = tasks.get()
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
            def stop_requested(self): return stop.is_set()

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


class TrainingJob:
    """One training run in a child process. Create with ``TrainingJob.start``."""

    def __init__(self):
        self.config, self.out = None, None
        self.state = JobState()
        self.started = time.time()
        ctx = mp.get_context("spawn")
        self._tasks = ctx.Queue()
        self._events = ctx.Queue()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_worker, args=(self._tasks, self._events, self._stop),
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

    @classmethod
    def start(cls, config, out: Path) -> "TrainingJob":
        """Start a run (on the warm spare worker if there is one), or raise ``BusyError`` when
        ``MAX_CONCURRENT`` are already running."""
        global _spare
        with _lock:
            _active[:] = [j for j in _active if j.alive]
            if len(_active) >= MAX_CONCURRENT:
                raise BusyError("the server is busy training other models; try again in a moment")
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            job, _spare = (_spare, None) if _spare is not None and _spare.alive else (cls(), _spare)
            job.config, job.out, job.started = config, Path(out), time.time()
            job._tasks.put((config, str(out), job.started))
            _active.append(job)
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
        self._stop.set()

    def kill(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()

    def poll(self, max_events: int = 10_000) -> JobState:
        """Drain pending events into ``state``; detect a worker that died without a word."""
        s = self.state
        for _ in range(max_events):
            try:
                kind, ev = self._events.get_nowait()
            except queue_mod.Empty:
                break
            except (EOFError, OSError):
                break
            s.apply(kind, ev)
        if not self.finished and not self._proc.is_alive() and self._events.empty():
            code = self._proc.exitcode
            s.status = "failed"
            s.error = s.error or f"the training process exited unexpectedly (code {code})"
        return s


def prewarm() -> "TrainingJob":
    """Make sure one idle worker is importing / has imported TensorFlow, ready for the next
    ``TrainingJob.start``; cheap when it already exists. Returns it (``state.warm`` once ready)."""
    global _spare
    with _lock:
        if _spare is None or not _spare.alive:
            _spare = TrainingJob()
        return _spare


def smoothed(values: list[float], window: int = 10) -> np.ndarray:
    """Trailing moving average for a readable loss curve."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)
