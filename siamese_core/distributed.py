"""Training on several processes or hosts with TensorFlow's own engine, ``tf.distribute``.

Each worker runs the same command with ``--distributed`` and a ``TF_CONFIG`` naming the cluster
and its own place in it (the standard variable, as Kubernetes' TFJob and other launchers set
it). ``strategy_from_env`` creates the ``MultiWorkerMirroredStrategy``; it must run before
TensorFlow executes anything (collectives are configured at program start). ``launch_local``
starts N such workers on 127.0.0.1 (free ports) for a one-machine demo and the tests, in a
network namespace of their own where Linux allows it (TensorFlow's servers bind every
interface), and ends all of them as soon as one fails.

``Replicas`` is what the ``Trainer`` sees of distribution (pytorch-metric-learning's
``DistributedLossWrapper`` idea: the loop and the losses never ask how many replicas there are):
for one process every collective is a no-op; ``StrategyReplicas`` wraps a ``tf.distribute``
strategy. Nothing here imports TensorFlow at module level.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator, cast

import numpy as np

from .errors import SiameseError

# A peer that hangs (rather than dies, which MultiWorkerMirroredStrategy's health check notices
# within a minute) makes the others give up after this long without a finished step. Not as
# TensorFlow's per-collective timeout (CommunicationOptions.timeout_seconds): it arms every
# collective with a detached thread that sleeps for the whole timeout
# (base_collective_executor.cc -> Env::SchedClosureAfter), ~11 threads a step here, and the
# workers died of it after ~50 s (BENCHMARKS.md, section 8).
STALL_TIMEOUT_S = 600.0
# Collective instance keys. By default (``_prefer_unique_instance_key``) TensorFlow gives every
# *call* of a collective a fresh instance key, fed at call time; each worker's collective param
# resolver keeps a record per (group, step, instance key) for ever and asks the leader over RPC
# to complete each new one. Measured on two workers, one all-reduce per call (BENCHMARKS.md,
# section 8, `bench/distributed.py --keys 5000`): 1.23 KB kept and 2.72 ms a call with fresh
# keys; 0.11 KB and 1.51 ms with keys fixed when the function is traced. Keys fixed at tracing
# need every worker to trace the same functions in the same order, which the Trainer's one loop
# does (the same steps, validations and averages on every worker, agreed before each step).
REUSE_INSTANCE_KEYS = True
# How long a worker waits at start-up for the rest of its cluster (TensorFlow's own default is
# for ever, with nothing printed).
CLUSTER_TIMEOUT_S = 600.0


class DistributedError(SiameseError):
    """A multi-worker run that cannot start or that lost a worker."""


def read_tf_config(env: dict | None = None) -> dict:
    """``TF_CONFIG`` parsed and checked: a cluster of "worker" (and optionally one "chief")
    ``host:port`` addresses, and this process's task within it. ``DistributedError`` otherwise,
    in one line that says what is wrong."""
    raw = (os.environ if env is None else env).get("TF_CONFIG")
    if not raw:
        raise DistributedError("--distributed needs TF_CONFIG (the cluster and this worker's "
                               "place in it; see README, 'Training on several machines'), or "
                               "use --workers N for N local processes")
    expected = ('expected {"cluster": {"worker": ["host:port", ...]}, '
                '"task": {"type": "worker", "index": 0}}')
    try:
        cfg = json.loads(raw, parse_constant=_no_constant)
    except ValueError as e:
        raise DistributedError(f"TF_CONFIG is not JSON ({e}); {expected}") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cluster"), dict) \
            or not isinstance(cfg.get("task"), dict):
        raise DistributedError(f"TF_CONFIG needs a \"cluster\" and a \"task\" object; {expected}")
    cluster, task = cfg["cluster"], cfg["task"]
    for kind, members in cluster.items():
        if kind not in ("chief", "worker"):
            raise DistributedError(f"TF_CONFIG's cluster has {kind!r} tasks; only \"worker\" "
                                   "(and one \"chief\") are supported")
        if not isinstance(members, list) or not members:
            raise DistributedError(f"TF_CONFIG's cluster {kind!r} must be a list of "
                                   f"\"host:port\" addresses; {expected}")
        for address in members:
            check_address(address)
    kind, index = task.get("type"), task.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise DistributedError(f"TF_CONFIG's task index must be a whole number, got {index!r}")
    if kind not in ("chief", "worker") or not 0 <= index < len(cluster.get(kind, [])):
        raise DistributedError(f"TF_CONFIG's task {kind}:{index} is not in its cluster")
    if len(cluster.get("chief", [])) > 1 or not cluster.get("worker") and not cluster.get("chief"):
        raise DistributedError("TF_CONFIG's cluster needs workers and at most one chief")
    return cfg


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def check_address(address) -> tuple[str, int]:
    """``host:port`` (``[v6 address]:port`` for IPv6) -> (host, port); ``DistributedError``
    otherwise."""
    bad = DistributedError(f"TF_CONFIG's address {address!r} is not host:port (e.g. "
                           "10.0.0.2:12345 or [::1]:12345)")
    if not isinstance(address, str) or ":" not in address:
        raise bad
    host, _, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise bad        # a bare IPv6 address: its port cannot be told apart
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise bad
    return host, int(port)


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


def reuse_collective_instance_keys() -> bool:
    """Make this process's collectives keep the instance keys assigned when a function is
    traced (see ``REUSE_INSTANCE_KEYS``), before any collective is traced. Returns whether the
    setting took: a TensorFlow without the switch keeps its default (memory then grows ~1.2 KB
    per collective call)."""
    try:
        from tensorflow.python.distribute import cross_device_utils
        launcher = cross_device_utils.CollectiveReplicaLauncher
    except (ImportError, AttributeError):
        return False
    if not hasattr(launcher, "_prefer_unique_instance_key"):
        return False
    launcher._prefer_unique_instance_key = not REUSE_INSTANCE_KEYS
    return True


def strategy_from_env(cluster_timeout_s: float = CLUSTER_TIMEOUT_S):
    """The ``MultiWorkerMirroredStrategy`` of this process's ``TF_CONFIG`` (checked first),
    once every worker of the cluster has joined. ``DistributedError`` when this worker's server
    cannot start. Without the others after ``cluster_timeout_s`` the process ends with exit
    code 1, as the line it prints first says: TensorFlow waits for them holding the GIL, in a
    call that neither its own timeout nor a Python thread can interrupt, so the timer is
    faulthandler's (a C thread)."""
    import faulthandler

    cfg = read_tf_config()
    task = cfg["task"]
    members = [a for k in ("chief", "worker") for a in cfg["cluster"].get(k, [])]
    address = cfg["cluster"][task["type"]][task["index"]]
    import tensorflow as tf
    print(f"{task['type']} {task['index']} at {address}: waiting up to {cluster_timeout_s:.0f} s "
          f"for the other workers of its cluster of {len(members)} "
          f"({', '.join(a for a in members if a != address) or 'none'}); then it gives up "
          "(exit code 1)", file=sys.stderr, flush=True)
    # faulthandler writes its report into a pipe, then ends this process: the process at the
    # other end then says, in one line, why this worker gave up (the report itself is noise).
    gave_up = (f"error: {task['type']} {task['index']} at {address}: the other workers of its "
               f"cluster did not all come within {cluster_timeout_s:.0f} s; check that they run, "
               f"that TF_CONFIG names them alike, and that their ports are reachable "
               f"(--cluster-timeout SECONDS waits longer)")
    teller = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys\nsignal.signal(signal.SIGINT, signal.SIG_IGN)"
         "\nif sys.stdin.buffer.read(1): print(sys.argv[1], file=sys.stderr, flush=True)",
         gave_up], stdin=subprocess.PIPE)
    pipe = cast(IO[bytes], teller.stdin)
    faulthandler.dump_traceback_later(cluster_timeout_s, exit=True, file=pipe)
    try:
        # No collective timeout (see STALL_TIMEOUT_S): StrategyReplicas watches for stalls.
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (tf.errors.OpError, ValueError, RuntimeError) as e:
        detail = str(getattr(e, "message", e)).strip().splitlines()[0][:160]
        raise DistributedError(f"cannot start this worker ({task['type']} {task['index']}) "
                               f"at {address}: {detail}; is the port in use?") from None
    finally:
        faulthandler.cancel_dump_traceback_later()
        pipe.close()                    # nothing written: it ends quietly
        teller.wait()


class StallWatchdog:
    """Calls ``on_stall`` once when ``beat`` has not been called for ``timeout_s`` while
    running (one thread for the whole run, woken by each beat)."""

    def __init__(self, timeout_s: float, on_stall: Callable[[], None]):
        self.timeout_s = timeout_s
        self.on_stall = on_stall
        self._beat = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)

    def __enter__(self) -> "StallWatchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._beat.set()
        self._thread.join()

    def beat(self) -> None:
        self._beat.set()

    def _watch(self) -> None:
        while not self._done.is_set():
            if not self._beat.wait(self.timeout_s):
                self.on_stall()
                return
            self._beat.clear()


@dataclass(frozen=True)
class Reference:
    """What one replica's in-batch loss pairs its rows with (``losses``): reference embeddings
    and labels (None: its own batch) with its rows at ``offset``; ``share``: the factor that
    makes the replicas' losses add up to the global batch's; ``grad``: the factor on its
    gradient (2 against gradient-free references, which hold the other half of each pair)."""

    e: Any = None
    y: Any = None
    offset: Any = 0
    share: float = 1.0
    grad: float = 1.0


class Replicas:
    """One process, one replica: every collective is a no-op (the base of ``StrategyReplicas``)."""

    count = 1
    is_chief = True
    workers = 1

    def scope(self):
        """Where the model, optimizer and random state are created."""
        return nullcontext()

    def compile(self, replica_step: Callable, jit_compile: bool = False) -> Callable:
        """``replica_step(x, y) -> loss`` as one compiled step over all replicas."""
        import tensorflow as tf
        return tf.function(replica_step, reduce_retracing=True, autograph=False,
                           jit_compile=jit_compile)

    def feed(self, x: np.ndarray, idx: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        """A global batch (image indices ``idx`` into ``x``, labels ``y``) as the step's inputs."""
        return x[idx], y

    def replica_id(self):
        """Inside the step: this replica's id (None: the only one)."""
        return None

    def reference(self, e, y, across: bool) -> Reference:
        """Inside the step: what this replica's rows are paired with."""
        return Reference(share=1.0 / self.count)

    def agree(self, wants: np.ndarray) -> np.ndarray:
        """Every replica's ``wants`` summed (all of them take the same decisions)."""
        return wants

    def average(self, variables) -> None:
        """Average per-replica variables (BatchNorm statistics) over the replicas."""

    @contextmanager
    def running(self) -> Iterator[None]:
        """Around the training loop."""
        yield


class StrategyReplicas(Replicas):
    """Replicas of a ``tf.distribute`` strategy: ``MirroredStrategy`` over several devices or
    ``MultiWorkerMirroredStrategy`` over several processes, created by the caller before
    TensorFlow runs anything. Every worker derives the same global batch plan from the seed;
    each replica takes its share, interleaved by class; decisions are summed over replicas; a
    run whose steps stall for ``stall_timeout_s`` aborts its collectives."""

    def __init__(self, strategy, stall_timeout_s: float = STALL_TIMEOUT_S):
        import tensorflow as tf
        fixed_keys = reuse_collective_instance_keys()    # before any collective is traced
        self.strategy = strategy
        self.count = strategy.num_replicas_in_sync
        self.is_chief, self.workers = cluster_role(strategy)
        if not fixed_keys and self.workers > 1:
            print("note: this TensorFlow cannot fix its collectives' instance keys; each worker's "
                  "memory grows ~1.2 KB per collective call (~9 KB a step)", file=sys.stderr,
                  flush=True)
        self.stall_timeout_s = stall_timeout_s
        self._watchdog: StallWatchdog | None = None
        fn = tf.function(reduce_retracing=True, autograph=False)
        self._agree = fn(lambda v: strategy.experimental_local_results(
            strategy.run(self._sum, args=(v,)))[0])
        self._fn = fn
        self._average: Callable | None = None     # compiled for the first variables averaged

    def scope(self):
        return self.strategy.scope()

    def compile(self, replica_step: Callable, jit_compile: bool = False) -> Callable:
        import tensorflow as tf
        strategy = self.strategy
        return tf.function(
            lambda x, y: strategy.reduce("SUM", strategy.run(replica_step, args=(x, y)), axis=None),
            reduce_retracing=True, autograph=False)

    def feed(self, x: np.ndarray, idx: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        # Replica r takes every R-th image of the class-ordered batch, so each holds K/R images
        # of every class (contiguous shares would leave some replicas without negatives).
        r_count = self.count
        n = idx.shape[-1] // r_count * r_count
        idx, y = idx[..., :n], y[:n]
        put = self.strategy.experimental_distribute_values_from_function
        return (put(lambda ctx: x[idx[..., ctx.replica_id_in_sync_group::r_count]]),
                put(lambda ctx: y[ctx.replica_id_in_sync_group::r_count]))

    def replica_id(self):
        import tensorflow as tf
        return tf.distribute.get_replica_context().replica_id_in_sync_group

    def reference(self, e, y, across: bool) -> Reference:
        if not across:      # each replica's own pairs; the optimizer sums the replicas' gradients
            return Reference(share=1.0 / self.count)
        import tensorflow as tf
        ctx = tf.distribute.get_replica_context()
        with _on_replica_device(ctx):
            both = ctx.all_gather(tf.stop_gradient(tf.concat([e, tf.cast(y[:, None], e.dtype)], 1)),
                              axis=0)
        # Each pair's term is symmetric and its other half sits in another replica's rows,
        # against a gradient-free column: twice the rows' gradient is the whole gradient.
        return Reference(both[:, :-1], tf.cast(both[:, -1], y.dtype),
                         ctx.replica_id_in_sync_group * tf.shape(e)[0], share=1.0, grad=2.0)

    def agree(self, wants: np.ndarray) -> np.ndarray:
        import tensorflow as tf
        agreed = self._agree(tf.constant(wants, tf.float64)).numpy()
        if self._watchdog is not None:
            self._watchdog.beat()
        return agreed

    @staticmethod
    def _sum(v):
        import tensorflow as tf
        ctx = tf.distribute.get_replica_context()
        with _on_replica_device(ctx):
            return ctx.all_reduce("SUM", tf.identity(v))

    def average(self, variables) -> None:
        if self._average is None:    # variables are captured: as arguments they become tensors
            variables = list(variables)
            self._average = self._fn(lambda: self.strategy.run(self._mean, args=(variables,)))
        self._average()

    @staticmethod
    def _mean(variables):
        import tensorflow as tf
        ctx = tf.distribute.get_replica_context()
        for v in variables:
            with _on_replica_device(ctx):
                mean = ctx.all_reduce("MEAN", tf.identity(v.value))
            v.assign(mean)
        return tf.constant(0)

    @contextmanager
    def running(self) -> Iterator[None]:
        if self.workers == 1:       # devices of one process: nothing can stall apart
            yield
            return
        with StallWatchdog(self.stall_timeout_s, self._abort) as self._watchdog:
            try:
                yield
            finally:
                self._watchdog = None

    def _abort(self) -> None:
        """Fail the collectives this worker waits in (the step then raises an OpError)."""
        import tensorflow as tf
        from tensorflow.python.eager import context
        print(f"error: no training step finished for {self.stall_timeout_s:.0f} s: another "
              "worker hangs or cannot be reached; giving up", file=sys.stderr, flush=True)
        context.context().abort_collective_ops(tf.errors.DEADLINE_EXCEEDED,
                                               f"no step for {self.stall_timeout_s:.0f} s")


def replicas_for(strategy=None) -> Replicas:
    """The ``Replicas`` of a strategy (one process without one)."""
    return Replicas() if strategy is None else StrategyReplicas(strategy)


def _on_replica_device(ctx):
    """Pin a collective's input to the replica's own device: under MultiWorkerMirroredStrategy
    an all-reduce or all-gather of a tensor without one fails ("destinations can not be
    empty"). A worker's devices hold consecutive replica ids."""
    import tensorflow as tf
    devices = ctx.strategy.extended.worker_devices
    rid = tf.get_static_value(ctx.replica_id_in_sync_group)
    return tf.device(devices[int(rid) % len(devices)] if rid is not None else devices[0])


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


# Linux namespaces (sched.h, net/if.h, linux/sockios.h): the local workers' private network.
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
SIOCSIFFLAGS, IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x8914, 0x1, 0x8, 0x40


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> None:
    import ctypes
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def _new_network() -> None:
    """In a just-forked worker: enter a new network namespace (as root, or inside a new user
    namespace that maps this user to itself) holding only a loopback interface, and bring it
    up. TensorFlow's gRPC server binds 0.0.0.0 whatever the cluster names
    (grpc_server_lib.cc): in here "every interface" is this loopback, which no other machine,
    and no process outside the namespace, can reach."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNET) != 0:
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
            _fail("unshare")
        for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    import fcntl
    import struct
    with socket.socket() as s:
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo",
                                                 IFF_UP | IFF_LOOPBACK | IFF_RUNNING))


def _join_network(pid: int) -> Callable[[], None]:
    """A pre-exec hook: enter worker ``pid``'s namespaces (its user namespace first when it
    has its own: joining it is what allows joining the network one)."""
    def join() -> None:
        libc = _libc()
        for ns in ("user", "net"):
            if os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}"):
                continue
            fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, 0) != 0:
                    _fail(f"setns {ns}")
            finally:
                os.close(fd)
    return join


@dataclass
class LocalWorkers:
    """``n`` worker processes started by ``start_local``; ``private`` says whether they share
    a network of their own (their servers unreachable from outside it)."""

    procs: list[subprocess.Popen]
    logs: list
    tf_configs: list[dict]
    private: bool


def start_local(n: int, argv: list[str], isolate: bool = True) -> LocalWorkers:
    """Start ``python -m siamese_core <argv> --distributed`` as ``n`` local workers on
    loopback ports; with ``isolate`` (where Linux allows it) inside one network namespace of
    their own, so their unauthenticated gRPC servers are reachable by no one else. Worker 0's
    output is shown; the others' is kept (see ``supervise``)."""
    workers = LocalWorkers([], [], local_tf_configs(n), isolate)
    try:
        for i, tf_config in enumerate(workers.tf_configs):
            env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
            log = tempfile.TemporaryFile(mode="w+")
            workers.logs.append(log)
            cmd = [sys.executable, "-m", "siamese_core", *argv, "--distributed"]
            out = None if i == 0 else log
            hook = None
            if workers.private:
                hook = _new_network if i == 0 else _join_network(workers.procs[0].pid)
            try:
                p = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, preexec_fn=hook)
            except subprocess.SubprocessError as e:
                if i > 0 or hook is None:
                    raise
                # No namespaces here (a container without CAP_SYS_ADMIN, user namespaces
                # turned off): run in the open, and say so.
                print(f"note: could not give the local workers a private network ({e}); "
                      "their TensorFlow gRPC servers listen on every interface of this "
                      "machine during the run (see the README's multi-host section)",
                      file=sys.stderr)
                workers.private = False
                p = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
            workers.procs.append(p)
    except BaseException:
        _end(workers.procs)
        for log in workers.logs:
            log.close()
        raise
    return workers


def launch_local(n: int, argv: list[str], poll_s: float = 0.2) -> int:
    """Run ``python -m siamese_core <argv> --distributed`` as ``n`` local workers
    (``start_local``) until they end (``supervise``). Returns an exit code."""
    return supervise(start_local(n, argv), poll_s)


def supervise(workers: LocalWorkers, poll_s: float = 0.2) -> int:
    """Wait for the workers. When one fails, the others are ended and the first failure is
    reported in one line (``DistributedError``); Ctrl-C ends them all."""
    procs, logs, n = workers.procs, workers.logs, len(workers.procs)
    try:
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
