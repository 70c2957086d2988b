"""Where a run trains: this process's device (``default``), every device of this machine
(``mirrored``), or the processes of several machines (``multiworker``, ``TF_CONFIG``).

Multi-worker is data parallel: every worker runs the same ``train`` on the same config and reads
the same dataset; ``data.batch_size`` is the **global** batch (each of N workers computes
``batch_size / N`` examples a step, and the gradients are summed across workers), so a run on N
workers makes the same number of updates per epoch as on one. The chief (worker 0, or the
``chief`` task) alone evaluates and publishes; every worker keeps its checkpoints in its own
work folder, which ``--resume`` on every worker continues from.

A worker never waits forever for a peer (``PEER_TIMEOUT``, 120 s, ``SEGMENTATION_PEER_TIMEOUT``):
collectives and TensorFlow's coordination service time out, and a watchdog process kills the
worker with a clear message when no training step ended for that long (twice that for the first:
a peer that never started, or died mid-epoch). Once the cluster has come together SIGTERM ends a
worker at once; while TensorFlow is still waiting for the cluster it catches SIGTERM itself, and
only the watchdog (or SIGKILL) ends it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import keras

# Seconds a worker waits for its peers (a collective, or the next training step) before it stops;
# the first step also joins the cluster and traces the model, so it gets twice as long.
PEER_TIMEOUT = float(os.environ.get("SEGMENTATION_PEER_TIMEOUT", "120"))
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclass(frozen=True)
class Worker:
    """This process's place in the cluster: ``index`` among ``count`` workers."""

    index: int = 0
    count: int = 1
    chief: bool = True

    @property
    def folder(self) -> str | None:
        """Its own folder inside the run's work folder; None when it is alone."""
        return f"worker-{self.index}" if self.count > 1 else None


def worker_of(strategy_name: str, environ=os.environ) -> Worker:
    """This process's role as ``TF_CONFIG`` describes it (alone unless ``multiworker``)."""
    if strategy_name != "multiworker":
        return Worker()
    if "TF_CONFIG" not in environ:
        raise ValueError("train.strategy multiworker needs TF_CONFIG describing the cluster "
                         "(docs/training.md: Training on several machines)")
    try:
        tf_config = json.loads(environ["TF_CONFIG"])
        cluster, task = tf_config["cluster"], tf_config["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not a cluster description: {error}") from None
    workers = len(cluster.get("worker", ())) + len(cluster.get("chief", ()))
    if kind == "chief":
        return Worker(0, workers, True)
    offset = len(cluster.get("chief", ()))  # with a chief task, worker 0 is the second process
    return Worker(index + offset, workers, kind == "worker" and index == 0 and not offset)


def make_strategy(name: str, timeout: float = PEER_TIMEOUT):
    """The ``tf.distribute`` strategy named in the config."""
    import tensorflow as tf

    if name == "mirrored":
        # Every GPU; on a machine without one, every logical CPU device (one unless configured).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multiworker":
        worker = worker_of(name)  # a clear error for a missing or broken TF_CONFIG
        _configure_coordination(timeout)
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.AbortedError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            raise ConnectionError(f"worker {worker.index} of {worker.count}: the cluster of TF_CONFIG did not "
                                  f"come together within {timeout:.0f} s (a peer never started or is "
                                  f"unreachable): {first}") from None
    return tf.distribute.get_strategy()


def _configure_coordination(timeout: float) -> None:
    """TensorFlow's coordination service, as ``MultiWorkerMirroredStrategy`` would configure it,
    with timeouts instead of its defaults: joining the cluster (a peer that never starts) and
    missed heartbeats (a peer that died) end after ``timeout`` seconds rather than never."""
    import tensorflow as tf
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    cluster = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
            for job in ("chief", "worker") if job in cluster.jobs]
    milliseconds = int(timeout * 1000)
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(cluster),
        cluster_register_timeout_in_ms=milliseconds, heartbeat_timeout_in_ms=milliseconds,
        shutdown_barrier_timeout_in_ms=milliseconds, coordinated_jobs=jobs)


def build_from_local_batch(model: keras.Model, strategy) -> None:
    """Let ``model.fit`` build ``model`` from this worker's own first batch.

    Keras 3 (``TFTrainer._maybe_symbolic_build``, keras-team/keras#20585) builds a model created
    under a strategy from the first batch of the distributed iterator, reduced across replicas
    with ``strategy.reduce("MEAN", (x, y))``: ``MirroredStrategy`` maps that reduction over the
    tuple, ``MultiWorkerMirroredStrategy`` does not and hands the tuple of ``PerReplica`` values
    to ``convert_to_tensor``, the "unsupported type PerReplica" crash of every worker's first step.
    Building needs only the shapes and dtypes of a batch, which the first local replica has:
    this instance's build takes them from there, with no collective.
    """
    import tensorflow as tf

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = maybe_symbolic_build


def vector_step_logs(model: keras.Model) -> None:
    """Make ``model.fit`` able to reduce its logs across workers.

    Keras 3 reduces every value a step returns with ``strategy.reduce("MEAN", value, axis=0)``
    under ``MultiWorkerMirroredStrategy`` (``reduce_per_replica``): the scalar loss and metrics
    have no axis 0 ("Invalid reduction dimension 0 for input with 0 dimensions"). Each step here
    returns them as vectors of one value, which that reduction averages back to the scalar.
    The values are the same on every replica (``StreamingMeanIoU`` sums its counts across
    replicas; the loss is the mean over the global batch), so the average is the number itself.
    """
    from keras import ops

    def as_vectors(step):
        def vector_step(data):
            return {key: ops.reshape(value, (1,)) for key, value in step(data).items()}
        return vector_step

    model.train_step = as_vectors(model.train_step)
    model.test_step = as_vectors(model.test_step)


def honour_sigterm() -> None:
    """SIGTERM ends the process at once (status 143), even while TensorFlow waits for a peer in
    C++, where a Python handler would never run."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# The watchdog process: reads a byte per step from stdin; when none came for the allowed time it
# prints the message and kills its parent (SIGKILL: TensorFlow holds the GIL while it waits for a
# cluster and catches SIGTERM, so nothing inside the worker could stop it). EOF: parent done or dead.
_WATCHDOG = """
import os, select, signal, sys
parent, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
allowed = 2 * timeout
while True:
    ready, _, _ = select.select([0], [], [], allowed)
    if not ready:
        print(message.format(waited=allowed), file=sys.stderr, flush=True)
        os.kill(parent, signal.SIGKILL)
        sys.exit(0)
    if not os.read(0, 4096):
        sys.exit(0)
    allowed = timeout
"""


class PeerWatchdog(keras.callbacks.Callback):
    """Stop a worker whose peers are gone: when no training or validation step ended for
    ``timeout`` seconds (twice that before the first step, which includes joining the cluster and
    tracing the model), a watchdog process prints what happened and kills the worker (status
    137). The work folder keeps the last finished epoch, which ``--resume`` continues.

    A process, not a thread: while TensorFlow waits for the cluster it holds the GIL.
    """

    def __init__(self, worker: Worker, timeout: float = PEER_TIMEOUT, run: str = ""):
        super().__init__()
        self.worker, self.timeout, self.run = worker, timeout, run
        self.process: subprocess.Popen | None = None

    def start(self) -> PeerWatchdog:
        message = (f"error: worker {self.worker.index} of {self.worker.count} (run {self.run}): no training step "
                   "ended in {waited:.0f} s: a peer never started, died or is unreachable (TF_CONFIG); "
                   "stopping it. Start every worker again with --resume to continue from the last finished epoch.")
        self.process = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.timeout),
                                         message], stdin=subprocess.PIPE)
        return self

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            self.process.wait()
            self.process = None

    def _beat(self, *args, **kwargs) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.write(b".")
                self.process.stdin.flush()

    on_train_batch_end = on_test_batch_end = on_epoch_end = _beat
