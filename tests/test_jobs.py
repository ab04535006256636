"""The spawned training worker: events arrive, stop works, errors and crashes are reported,
and the server-wide limit on concurrent trainings holds."""
import sys
import types

import numpy as np
import pytest

from siamese_core import jobs
from siamese_core import weights as W
from siamese_core.jobs import BusyError, JobState, TrainingJob, budget_after_wait, smoothed
from siamese_core.train import EpochEnd, TrainConfig
from tests.harness import wait_exit


def test_limit_stop_and_results(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_CONCURRENT", 1)
    cfg = TrainConfig(epochs=50, max_train=300, max_val=100, batch_size=30, val_pairs=200)
    job = TrainingJob.start(cfg, tmp_path / "run" / "m")
    with pytest.raises(BusyError, match="busy"):
        TrainingJob.start(cfg, tmp_path / "other" / "m")
    s = job.wait_until(lambda s: len(s.losses) >= 3)
    assert s.status == "running" and s.begin.n_train == 300
    job.stop()
    s = job.wait_until(lambda s: s.status in ("done", "failed"))
    assert s.status == "done", s.error
    assert s.end.reason == "stopped" and s.epochs and (tmp_path / "run" / "m.json").is_file()
    assert s.best_epoch.epoch == s.end.best_epoch
    assert s.best_epoch.metrics["threshold"] == s.end.metrics["threshold"]
    job._proc.join(10)
    assert not job.alive
    # The slot is free again once the first run has ended: a new run is accepted (a taken slot
    # raises BusyError here) and gets its own id.
    again = TrainingJob.start(TrainConfig(dataset="nope", epochs=1), tmp_path / "x" / "m")
    assert again.id != job.id and len(again.id) == 32
    again.kill()


def test_user_error_is_reported_in_one_line(tmp_path):
    job = TrainingJob.start(TrainConfig(dataset="no-such-dataset", epochs=1), tmp_path / "m")
    with pytest.raises(TimeoutError, match="ended"):    # fails fast, not at the timeout
        job.wait_until(lambda s: len(s.losses) > 0, timeout=600)
    s = job.wait_until(lambda s: s.status == "failed")
    assert "unknown dataset" in s.error and "\n" not in s.error


def test_dead_worker_is_noticed(tmp_path):
    job = TrainingJob.start(TrainConfig(epochs=50, max_train=300), tmp_path / "m")
    job.kill()
    s = job.wait_until(lambda s: s.status == "failed")
    assert "exited unexpectedly" in s.error


def test_prewarmed_worker_takes_the_next_job(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "_spare", None)
    spare = jobs.prewarm()
    assert jobs.prewarm() is spare                      # one idle worker at a time
    s = spare.wait_until(lambda s: s.warm)                   # TensorFlow imported and warmed up
    assert s.status == "starting" and s.begin is None   # idle: no job yet
    cfg = TrainConfig(epochs=1, seconds=30, max_train=200, max_val=100, batch_size=20,
                      val_pairs=100)
    job = TrainingJob.start(cfg, tmp_path / "m")
    assert job is spare and jobs._spare is None and job.config == cfg
    s = job.wait_until(lambda s: s.status in ("done", "failed"))
    assert s.status == "done", s.error
    assert s.begin.config["seconds"] == 30      # no wait: the whole budget is trained
    assert s.end.epochs_done == 1 and (tmp_path / "m.onnx").is_file()


def test_dead_spare_is_replaced(monkeypatch):
    monkeypatch.setattr(jobs, "_spare", None)
    spare = jobs.prewarm()
    spare.kill()
    spare._proc.join(10)
    fresh = jobs.prewarm()
    assert fresh is not spare and fresh.alive
    fresh.kill()


def test_budget_after_wait_counts_the_start_from_the_click():
    cfg = TrainConfig(epochs=100, seconds=50)
    assert budget_after_wait(cfg, 10.04).seconds == 40.0
    assert budget_after_wait(cfg, 0.3) is cfg              # a warm hand-over changes nothing
    assert budget_after_wait(cfg, 45.0).seconds == 25.0    # never below half the budget
    no_budget = TrainConfig(epochs=3)
    assert budget_after_wait(no_budget, 10.0) is no_budget


def test_cold_start_comes_off_the_time_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "_spare", None)
    cfg = TrainConfig(epochs=1, seconds=60, max_train=200, max_val=100, batch_size=20,
                      val_pairs=100)
    job = TrainingJob.start(cfg, tmp_path / "m")        # no spare: spawn + TensorFlow import
    s = job.wait_until(lambda s: s.status in ("done", "failed"))
    assert s.status == "done", s.error
    budget = s.begin.config["seconds"]
    assert 30.0 <= budget <= 59.5                        # the import took seconds, not minutes
    assert W.read_meta(tmp_path / "m")["train"]["seconds"] == budget   # the record says so


def test_worker_does_not_rerun_the_parents_main_script(tmp_path, monkeypatch):
    # Under `streamlit run` the page script is __main__; a spawned child would re-run it.
    marker = tmp_path / "ran"
    script = tmp_path / "page.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    monkeypatch.setattr(jobs, "_spare", None)
    spare = jobs.prewarm()
    assert sys.modules["__main__"] is page               # restored in the parent
    spare.wait_until(lambda s: s.warm)
    spare.kill()
    assert not marker.exists()


def test_state_keeps_the_best_epoch_apart_from_the_latest():
    """The finished page draws the kept epoch (its threshold is the one in the metrics), not
    whichever epoch happened to come last."""
    def epoch(n, thr, best):
        return EpochEnd(n, {"threshold": thr, "epochs_seen": float(n)}, np.zeros(1), np.ones(1),
                        np.zeros((1, 2)), np.zeros(1, int), float(n), best)

    s = JobState()
    s.apply("ready", None)
    s.apply("epoch", epoch(1, 0.7, True))
    s.apply("epoch", epoch(2, 0.9, True))
    s.apply("epoch", epoch(3, 1.1, False))   # worse: its weights are not kept
    assert s.warm and [m["threshold"] for m in s.epochs] == [0.7, 0.9, 1.1]
    assert (s.best_epoch.epoch, s.best_epoch.metrics["threshold"]) == (2, 0.9)
    assert s.last_epoch.epoch == 3 and s.status == "starting"
    s.apply("error", "boom")
    assert (s.status, s.error) == ("failed", "boom")


def test_smoothed_is_a_trailing_mean():
    assert list(smoothed([1, 3, 5, 7], window=2)) == [1, 2, 4, 6]
    assert len(smoothed([])) == 0


def test_a_run_nobody_reads_still_ends_and_frees_its_slot(tmp_path, monkeypatch):
    """Issue 15's leak: a page reloaded mid-run never reads the worker's events again. Those
    events fill the pipe; the worker must still exit, and its slot must come back."""
    monkeypatch.setattr(jobs, "MAX_CONCURRENT", 1)
    cfg = TrainConfig(epochs=12, max_train=400, max_val=100, batch_size=20, val_pairs=100)
    job = TrainingJob.start(cfg, tmp_path / "m")      # ~240 batch events: more than a pipe holds
    assert jobs.find(job.id) is job and jobs.find("nope") is None
    job._proc.join(180)                                # no poll() from here on
    assert job._proc.exitcode == 0
    assert job.state.status == "done" and len(job.state.losses) == 240   # the monitor read them
    assert (tmp_path / "m.json").is_file()
    TrainingJob.start(TrainConfig(dataset="nope", epochs=1), tmp_path / "x").kill()   # not busy


class _Stub:
    """A job as ``tick`` sees it, with a clock of the test's choosing."""

    def __init__(self, watched, finished=False):
        self.state, self.watched, self.finished = JobState(), watched, finished
        self.alive, self.stop_at, self.wanted = True, None, watched
        self.calls = []

    def drain(self): self.calls.append("drain")
    def stop(self):
        self.state.stop_requested, self.stop_at = True, NOW
        self.calls.append("stop")
    def kill(self):
        self.alive = False
        self.calls.append("kill")

    def close(self):
        self.alive = False
        self.calls.append("close")


NOW = 1_000_000.0


def test_tick_stops_unwatched_runs_and_ends_an_unwanted_spare(monkeypatch):
    now = NOW
    watched, forgotten = _Stub(now - 5), _Stub(now - jobs.UNWATCHED_GRACE_S - 1)
    spare = _Stub(now - jobs.SPARE_IDLE_S - 1)
    monkeypatch.setattr(jobs, "_jobs", {"a": watched, "b": forgotten})
    monkeypatch.setattr(jobs, "_spare", spare)
    jobs.tick(now)
    assert "stop" not in watched.calls and "drain" in watched.calls
    assert forgotten.state.stop_requested and forgotten.state.stopped_unwatched
    assert spare.calls[-1] == "close" and jobs._spare is None
    # A stopped worker that has not ended KILL_AFTER_S later is killed; a finished one is
    # forgotten FINISHED_KEEP_S after it ended.
    jobs.tick(forgotten.stop_at + jobs.KILL_AFTER_S + 1)
    assert forgotten.calls[-1] == "kill" and "b" in jobs._jobs
    forgotten.finished = True
    jobs.tick(forgotten.stop_at + jobs.FINISHED_KEEP_S + 1)
    assert "b" not in jobs._jobs and "a" in jobs._jobs


def test_a_spare_asked_for_again_stays(monkeypatch):
    now = 1_000_000.0
    spare = _Stub(now - jobs.SPARE_IDLE_S + 5)
    monkeypatch.setattr(jobs, "_jobs", {})
    monkeypatch.setattr(jobs, "_spare", spare)
    jobs.tick(now)
    assert jobs._spare is spare and "close" not in spare.calls


def test_a_worker_whose_server_died_exits(tmp_path):
    """A server killed without cleanup (os._exit, SIGKILL) must not leave ~700 MB workers."""
    import subprocess
    code = ("import os; from siamese_core import jobs; s = jobs.prewarm(); "
            "print(s._proc.pid, flush=True); os._exit(0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(r.stdout.split()[0])
    # It notices within a second of its idle wait (woken here by its exit, not by a clock).
    assert wait_exit([pid], timeout=120) == {pid}, "the orphaned worker is still running"
