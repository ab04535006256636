"""Training on several processes or hosts with TensorFlow's own engine, ``tf.distribute``.

Each worker runs the same command with ``--distributed`` and a ``TF_CONFIG`` naming the cluster
and its own place in it (the standard variable, as Kubernetes' TFJob and other launchers set
it). ``strategy_from_env`` creates the ``MultiWorkerMirroredStrategy``; it must run before
TensorFlow executes anything (collectives are configured at program start). ``launch_local``
starts N such workers on 127.0.0.1 (free ports) for a one-machine demo and the tests, and ends
all of them as soon as one fails. Nothing here imports TensorFlow at module level.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from .errors import SiameseError

# A peer that hangs (rather than dies, which the others notice at once) fails the collective
# after this long instead of blocking the run for ever.
COLLECTIVE_TIMEOUT_S = 600.0


class DistributedError(SiameseError):
    """A multi-worker run that cannot start or that lost a worker."""


def read_tf_config(env: dict | None = None) -> dict:
    """``TF_CONFIG`` parsed and checked: a cluster of "worker" (and optionally one "chief")
    addresses, and this process's task within it. ``DistributedError`` otherwise."""
    raw = (os.environ if env is None else env).get("TF_CONFIG")
    if not raw:
        raise DistributedError("--distributed needs TF_CONFIG (the cluster and this worker's "
                               "place in it; see README, 'Training on several machines'), or "
                               "use --workers N for N local processes")
    try:
        cfg = json.loads(raw)
        cluster, task = cfg["cluster"], cfg["task"]
        kind, index = task["type"], int(task["index"])
        members = [a for k in ("chief", "worker") for a in cluster.get(k, [])]
    except (ValueError, KeyError, TypeError) as e:
        raise DistributedError(f"TF_CONFIG is not valid ({type(e).__name__}: {e}); expected "
                               '{"cluster": {"worker": ["host:port", ...]}, '
                               '"task": {"type": "worker", "index": 0}}') from None
    if kind not in ("chief", "worker") or not 0 <= index < len(cluster.get(kind, [])):
        raise DistributedError(f"TF_CONFIG's task {kind}:{index} is not in its cluster")
    if len(cluster.get("chief", [])) > 1 or not members:
        raise DistributedError("TF_CONFIG's cluster needs workers and at most one chief")
    return cfg


def is_chief(tf_config: dict) -> bool:
    task, cluster = tf_config["task"], tf_config["cluster"]
    return task["type"] == "chief" or (task["type"] == "worker" and int(task["index"]) == 0
                                       and not cluster.get("chief"))


def cluster_role(strategy) -> tuple[bool, int]:
    """(is this process the chief, how many workers) under ``strategy``; (True, 1) without one
    or for a strategy of one process (``MirroredStrategy``)."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is None or not resolver.task_type:
        return True, 1
    cluster = resolver.cluster_spec().as_dict()
    workers = sum(len(cluster.get(k, [])) for k in ("chief", "worker")) or 1
    task = {"type": resolver.task_type, "index": resolver.task_id}
    return is_chief({"cluster": cluster, "task": task}), workers


def strategy_from_env():
    """The ``MultiWorkerMirroredStrategy`` of this process's ``TF_CONFIG`` (checked first)."""
    read_tf_config()
    import tensorflow as tf
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=COLLECTIVE_TIMEOUT_S)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def weights_digest(model) -> str:
    """sha256 over every weight of a model (BatchNorm statistics included), for checking that
    workers ended with the same model."""
    import hashlib
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def local_tf_configs(n: int) -> list[dict]:
    """TF_CONFIGs for ``n`` workers on 127.0.0.1; worker 0 is the chief."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(n)]}
    return [{"cluster": cluster, "task": {"type": "worker", "index": i}} for i in range(n)]


def launch_local(n: int, argv: list[str], poll_s: float = 0.2) -> int:
    """Run ``python -m siamese_core <argv> --distributed`` as ``n`` local workers. Worker 0's
    output is shown; the others' is kept and shown if they fail. When one worker fails, the
    others are ended and the first failure is reported in one line. Returns an exit code."""
    logs, procs = [], []
    try:
        for i, tf_config in enumerate(local_tf_configs(n)):
            env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
            log = tempfile.TemporaryFile(mode="w+")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "siamese_core", *argv, "--distributed"], env=env,
                stdout=None if i == 0 else log, stderr=None if i == 0 else log))
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                _end(procs)
                logs[i].seek(0)
                tail = [line for line in logs[i].read().splitlines() if line.strip()][-1:] or [""]
                detail = f": {tail[0].removeprefix('error: ')[:300]}" if i > 0 else ""
                raise DistributedError(f"worker {i} of {n} exited with code {code}{detail}; "
                                       "the other workers were stopped")
            if all(c == 0 for c in codes):
                return 0
            time.sleep(poll_s)
    except KeyboardInterrupt:
        _end(procs)
        raise
    finally:
        for log in logs:
            log.close()


def _end(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + 20
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
