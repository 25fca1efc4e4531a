"""``--strategy`` and ``--mixed-precision``: the one place that knows about ``tf.distribute``.

A :class:`Distribution` builds a trainer's method under its strategy, splits the recipe's (global)
batches into per-replica batches, runs a step on every replica and reduces what it logs, and says
where this process may write.  The loop (:func:`fusion_tf.training.loop.fit`) calls it; the trainers
only build their method through :meth:`Distribution.build`.  With ``--strategy default`` every one of
these is a no-op, so single-device runs are exactly what they were before strategies existed.

Measured facts this relies on (``spec/tf_stack.md`` §9): logical CPU devices must be created before
TensorFlow initialises; networks *and* optimizers must be built in ``strategy.scope()`` (optimizers
built explicitly); XLA inside ``MirroredStrategy`` on logical CPUs fails, so distributed steps run
without XLA; two localhost ``MultiWorkerMirroredStrategy`` workers end with identical weights.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import keras
import tensorflow as tf

from fusion_tf.errors import FusionError

STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float16", "bfloat16")

_STRATEGY_CACHE: dict = {}


def gpus_present() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_jit(requested: bool | None, model_default: bool) -> bool:
    """``--jit/--no-jit`` if given; else XLA on when a GPU is present (the TF/Keras guidance for GPU
    training, not measured in this project), else the model's default measured on the 2-core CPU."""
    if requested is not None:
        return bool(requested)
    return True if gpus_present() else model_default


def _split_cpu(n: int) -> None:
    """N logical CPU devices (one physical CPU): replicas for tests and for CPU-only mirrored runs."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:  # TF already initialised: fine if it was split the same way
        have = len(tf.config.list_logical_devices("CPU"))
        if have != n:
            raise FusionError(f"--replicas {n}: TensorFlow already started with {have} CPU device(s); "
                              "logical CPUs must be configured before any TensorFlow work") from None


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise FusionError("--strategy multiworker needs TF_CONFIG (cluster and task of this worker), "
                          "see docs/distributed.md")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FusionError(f"TF_CONFIG is not a valid cluster description ({exc.__class__.__name__}: {exc}); "
                          "expected {\"cluster\": {\"worker\": [\"host:port\", ...]}, "
                          "\"task\": {\"type\": \"worker\", \"index\": i}}") from None
    if not isinstance(workers, list) or not workers:
        raise FusionError("TF_CONFIG: cluster.worker must be a non-empty list of host:port")
    return config


def make_strategy(name: str = "default", replicas: int | None = None) -> tf.distribute.Strategy:
    """The strategy for ``--strategy NAME`` (one instance per process: multi-worker collectives can
    only be configured once, before TensorFlow starts).

    ``mirrored``: the first ``replicas`` GPUs (default all), or without GPUs ``replicas`` logical CPU
    devices (default 1) — the same cores, so a CPU split tests the distributed path but does not speed
    anything up.  ``multiworker``: every local GPU (or the CPU) of each worker named in ``TF_CONFIG``.
    """
    if name not in STRATEGIES:
        raise FusionError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if replicas is not None and replicas < 1:
        raise FusionError(f"--replicas must be at least 1, got {replicas}")
    if name == "default":
        if replicas not in (None, 1):
            raise FusionError("--replicas needs --strategy mirrored")
        return tf.distribute.get_strategy()
    key = (name, replicas)
    if key in _STRATEGY_CACHE:
        return _STRATEGY_CACHE[key]
    if name == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            n = replicas or len(gpus)
            if n > len(gpus):
                raise FusionError(f"--replicas {n}: only {len(gpus)} GPU(s) visible")
            devices = [f"/gpu:{i}" for i in range(n)]
        else:
            n = replicas or 1
            if n > 1:
                _split_cpu(n)
            devices = [f"/cpu:{i}" for i in range(n)]
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        if replicas is not None:
            raise FusionError("--replicas applies to --strategy mirrored (multiworker uses each worker's devices)")
        _tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _STRATEGY_CACHE[key] = strategy
    return strategy


def synchronize_batch_norm(model: keras.Model) -> int:
    """Make every BatchNormalization layer reduce its moments over the *global* batch.

    Keras reads ``synchronized`` at call time, so switching it after construction leaves the models'
    code alone.  Only done under a real strategy: outside one the synchronised path computes the
    variance as E[x²] − E[x]², a different rounding from the single-device default.
    """
    count = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count


_CURRENT_WEIGHT = threading.local()


def replica_weight():
    """This replica's share of the global batch while a distributed step is traced (``None`` outside).

    Thread-local because MirroredStrategy traces each replica's step in its own thread.
    """
    return getattr(_CURRENT_WEIGHT, "value", None)


@contextmanager
def _replica_weight(value) -> Iterator[None]:
    previous = replica_weight()
    _CURRENT_WEIGHT.value = value
    try:
        yield
    finally:
        _CURRENT_WEIGHT.value = previous


@dataclass
class Distribution:
    """How a run is spread over devices and which precision its networks compute in.

    ``sync_batch_norm`` (default on under a strategy) keeps BatchNorm statistics over the global
    batch, as on one device; off, each replica normalises with its own slice's statistics.
    """

    name: str = "default"
    strategy: tf.distribute.Strategy = field(default_factory=tf.distribute.get_strategy)
    mixed_precision: str | None = None
    sync_batch_norm: bool = True

    @classmethod
    def create(cls, name: str = "default", replicas: int | None = None, mixed_precision: str | None = None,
               sync_batch_norm: bool = True, require_gpu_for_float16: bool = True) -> "Distribution":
        if mixed_precision is not None and mixed_precision not in PRECISIONS:
            raise FusionError(f"--mixed-precision must be one of {', '.join(PRECISIONS)}, got {mixed_precision!r}")
        if mixed_precision == "float16" and require_gpu_for_float16 and not gpus_present():
            raise FusionError("--mixed-precision float16 needs a GPU (on CPU two small MFF-GAN steps took "
                              "minutes); on CPU use --mixed-precision bfloat16")
        return cls(name, make_strategy(name, replicas), mixed_precision, sync_batch_norm)

    @property
    def distributed(self) -> bool:
        return self.name != "default"

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def is_chief(self) -> bool:
        """Whether this process owns the run folder (always, except the non-chief multi-worker tasks)."""
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if resolver is None or resolver.task_type is None:
            return True
        if resolver.task_type == "chief":
            return True
        return (resolver.task_type == "worker" and resolver.task_id == 0
                and "chief" not in resolver.cluster_spec().as_dict())

    def describe(self) -> str:
        precision = f"mixed_{self.mixed_precision}" if self.mixed_precision else "float32"
        if not self.distributed:
            return f"one device, {precision}"
        devices = ", ".join(self.strategy.extended.worker_devices)
        return (f"{self.name} strategy, {self.replicas} replicas (local: {devices}), {precision}, "
                f"BatchNorm {'synchronised' if self.sync_batch_norm else 'per replica'}")

    # -- building ---------------------------------------------------------------------------
    def build(self, factory: Callable[[], keras.Model]):
        """``factory()`` under the strategy's scope and the precision policy.

        The policy is global in Keras but only read when layers are created, so it is restored
        afterwards: later models (validation, inference) stay float32.
        """
        previous = keras.mixed_precision.global_policy()
        if self.mixed_precision:
            keras.mixed_precision.set_global_policy(f"mixed_{self.mixed_precision}")
        try:
            with self.strategy.scope():
                method = factory()
        finally:
            keras.mixed_precision.set_global_policy(previous)
        if self.distributed and self.sync_batch_norm:
            synchronize_batch_norm(method)
        return method

    def check_batches(self, batch_size: int, count: int | None = None, keep_partial: bool = False) -> None:
        """Refuse batches that leave a replica without samples (its mean loss would be NaN)."""
        if not self.distributed:
            return
        if batch_size < self.replicas:
            raise FusionError(f"--batch-size {batch_size} is the global batch: it must be at least the number of "
                              f"replicas ({self.replicas})")
        rest = count % batch_size if (keep_partial and count) else 0
        if 0 < rest < self.replicas:
            raise FusionError(f"the last batch of each epoch holds {rest} sample(s), fewer than the {self.replicas} "
                              "replicas: change --batch-size (or drop the last batch where the trainer offers it)")

    # -- running ----------------------------------------------------------------------------
    def distribute_dataset(self, dataset: tf.data.Dataset):
        """Global batches → per-replica batches (and this worker's share of them)."""
        return self.strategy.experimental_distribute_dataset(dataset) if self.distributed else dataset

    def replicated(self, step: Callable[[object], dict]) -> Callable[[object], dict]:
        """``step`` run on every replica; its logs reduced to global-batch values.

        Each replica's weight is its share of the global batch (½ for two equal halves), so the
        weighted sum of per-replica means is the global-batch mean, and gradients weighted the same
        way (``loop.apply_gradients``) sum to the one-device gradient.
        """
        strategy = self.strategy

        def replica_step(batch):
            ctx = tf.distribute.get_replica_context()
            n = tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.float32)
            weight = n / ctx.all_reduce(tf.distribute.ReduceOp.SUM, n)
            with _replica_weight(weight):
                logs = step(batch)
            return {k: tf.cast(v, tf.float32) * weight for k, v in logs.items()}

        def run(batch):
            per_replica = strategy.run(replica_step, args=(batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

        return run

    # -- writing ----------------------------------------------------------------------------
    @contextmanager
    def write_dir(self, run_dir: Path) -> Iterator[Path]:
        """Where this process saves: the run folder on the chief; a temporary folder, deleted
        afterwards, on other workers (saving may need every worker's participation, so they save too)."""
        if self.is_chief:
            yield run_dir
            return
        tmp = Path(tempfile.mkdtemp(prefix="fusion_tf_worker_"))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)



def from_args(args) -> Distribution:
    """The CLI's ``--strategy/--replicas/--mixed-precision/--no-sync-bn`` (absent attributes: defaults)."""
    return Distribution.create(getattr(args, "strategy", None) or "default", getattr(args, "replicas", None),
                               getattr(args, "mixed_precision", None), getattr(args, "sync_bn", True))
