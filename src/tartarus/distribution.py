"""Training on several devices of one backend: ``training.distribution = "data_parallel"``.

Data parallelism: every device holds a full copy of the model and takes an equal share of each
global batch (``training.n_minibatch`` rows, the same batch as on one device); the gradients of
the shares are combined before each update, so the update is that of the global batch's mean loss,
as on one device, up to float summation order. ``training.devices`` (``tartarus run --devices N``)
says how many devices; 0, the default, means every device the backend lists
(``keras.distribution.list_devices()``: the GPUs or TPUs, else the CPU devices).

Per backend:

- **JAX**: ``keras.distribution.DataParallel`` over the devices, made current with its ``scope()``
  for building (or loading), compiling and fitting the model; Keras shards each batch along axis 0
  over a 1-d device mesh and XLA averages the gradients.
- **TensorFlow**: ``tf.distribute.MirroredStrategy(devices)`` (one per process and device set);
  the model is built (or loaded), compiled and fitted inside ``strategy.scope()``. A set in memory
  goes to ``fit`` as arrays, as on one device, and Keras splits each batch; a streamed set as a
  distributed dataset whose consecutive elements are the devices' shares of one global batch
  (:meth:`Placement._tf_feed`), read once per batch from the HDF5 file as on one device.
  Keras' ``BatchNormalization`` computes its statistics per device here (``synchronized=False``),
  so models with batch normalisation do not follow the 1-device curve as closely as others.
- **PyTorch**: Keras 3.15 has no distribution for torch (``keras.distribution`` covers JAX, and
  TensorFlow through ``tf.distribute``; torch's DistributedDataParallel needs a training loop of
  its own): a ConfigError says so.

The batches: ``n_minibatch`` must be a multiple of the device count (ConfigError naming both), and
the last batch of an epoch drops its rows beyond a multiple of the device count (fewer than the
device count; train rows are reshuffled every epoch, so other rows each time; for the unshuffled
validation rows, always the same last ones, left out of ``val_loss``). With
``distribution = "none"`` nothing of this applies: training is exactly what it was.

Multi-host (JAX only): start the same ``tartarus run`` on every host with the coordinator's address,
the process count and each host's process id in the environment variables that
``keras.distribution.initialize`` reads (``KERAS_DISTRIBUTION_JOB_ADDRESSES`` = ``host0:port``,
``KERAS_DISTRIBUTION_NUM_PROCESSES``, ``KERAS_DISTRIBUTION_PROCESS_ID``); :func:`resolve` then
calls ``jax.distributed.initialize`` through it before JAX starts, ``DataParallel`` spans every
device of every process (``training.devices`` must be 0 or their total), and each process reads
only its share of every global batch from its own copy of the data root (the same path on every
host; :meth:`tartarus.inputs.ShuffledBatches.split_batches`). Each process writes its own model
folder, so the data root must not be one folder shared by the hosts. Checked with two processes of
one CPU device each on one machine (``benchmarks/bench_data_parallel.py``: the 1-device curve to
1e-6), not yet on two machines. For example, with host 0 at 10.0.0.1::

    # on host 0, and on host 1 with KERAS_DISTRIBUTION_PROCESS_ID=1
    export KERAS_BACKEND=jax KERAS_DISTRIBUTION_JOB_ADDRESSES=10.0.0.1:1234 KERAS_DISTRIBUTION_NUM_PROCESSES=2
    KERAS_DISTRIBUTION_PROCESS_ID=0 tartarus run EXPERIMENT --devices 0
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import keras
import numpy as np

from .errors import ConfigError

DISTRIBUTED_BACKENDS = ("jax", "tensorflow")
MULTI_HOST_ENV = "KERAS_DISTRIBUTION_NUM_PROCESSES"  # set (> 1): initialise JAX's multi-process runtime


@dataclass
class Placement:
    """Where training runs: ``kind`` "none" (one device, as Keras places it), "jax" or "tensorflow".

    n_devices : devices in all (every process's); devices : their names ("cpu:0", "gpu:1" ...);
    process_index, n_processes : this process among the hosts (0 of 1 on one host);
    strategy : the keras Distribution (JAX) or tf.distribute strategy (TensorFlow), None for "none".
    """
    kind: str = "none"
    n_devices: int = 1
    devices: list = field(default_factory=list)
    process_index: int = 0
    n_processes: int = 1
    strategy: object = None

    @property
    def active(self):
        return self.kind != "none"

    @contextlib.contextmanager
    def scope(self):
        """The distribution made current (model building, loading, compiling and fitting go inside)."""
        if self.strategy is None:
            yield self
            return
        with self.strategy.scope():
            yield self

    def describe(self):
        where = f"{self.n_devices} device(s): {', '.join(self.devices)}"
        if self.n_processes > 1:
            where += f" (process {self.process_index} of {self.n_processes})"
        return f"data-parallel on {where}"

    def dropped_rows(self, dataset):
        """Rows of ``dataset`` (a ShuffledBatches, after :meth:`prepare`) an epoch leaves out to split
        evenly (< n_devices)."""
        return len(dataset.order) - dataset.n_used

    def prepare(self, dataset, what):
        """Split ``dataset``'s batches over the devices (``ShuffledBatches.split_batches``)."""
        if len(dataset.order) < self.n_devices:
            raise ConfigError(f"training.devices: the {what} split has {len(dataset.order)} row(s), fewer than "
                              f"the {self.n_devices} devices it is split over; use fewer devices")
        return dataset.split_batches(self.n_devices, self.process_index, self.n_processes)

    def fit_arguments(self, dataset, arrays=None):
        """``model.fit`` keywords that feed ``dataset`` (a ShuffledBatches) split over the devices.

        arrays : ``train.fit_arguments``, the 1-device choice of feed. When it hands over in-memory
            arrays (``"y"`` in the result; one process), they are kept, so that the batches are
            those of one device: the caller orders them per epoch and keeps the first
            ``dataset.n_used`` rows, and Keras splits each batch over the devices. A streamed set
            is fed as ``dataset`` itself on JAX (Keras shards each per-process batch over the local
            devices) and through :meth:`_tf_feed` on TensorFlow.
        """
        self.prepare(dataset, "train")
        feed = self._arrays(dataset, arrays)
        if "y" in feed:
            return feed
        if self.kind == "tensorflow":
            return {"x": self._tf_feed(dataset), "steps_per_epoch": len(dataset)}
        return feed

    def validation_arguments(self, dataset, arrays=None):
        """``model.fit`` keywords for the validation feed ``dataset`` (unshuffled); ``arrays`` as in
        :meth:`fit_arguments` (in-memory arrays cut to ``dataset.n_used`` rows here)."""
        self.prepare(dataset, "validation")
        feed = self._arrays(dataset, arrays)
        if "y" in feed:
            return {"validation_data": (feed["x"][:dataset.n_used], feed["y"][:dataset.n_used])}
        if self.kind == "tensorflow":
            return {"validation_data": self._tf_feed(dataset), "validation_steps": len(dataset)}
        return {"validation_data": feed["x"]}

    def _arrays(self, dataset, arrays):
        """``arrays(dataset)`` in one process (in-memory arrays or ``{"x": dataset}``), else ``{"x": dataset}``
        (several processes: each reads its share of every batch, ShuffledBatches.split_batches)."""
        if arrays is not None and self.n_processes == 1:
            return arrays(dataset)
        return {"x": dataset, "shuffle": False}  # the dataset orders its batches (Keras would shuffle them)

    def _tf_feed(self, dataset):
        """A ``tf.distribute`` dataset whose element ``k * n + r`` is device ``r``'s share of batch ``k``.

        Each batch is read once (``dataset[k]``, streamed as on one device) and cut into ``n`` equal
        contiguous shares. Handing the strategy this per-device feed keeps the batches in order in
        every ``fit`` (one per epoch): a PyDataset or a plain tf.data feed that MirroredStrategy splits
        itself followed the 1-device curve only in the first fit (Keras 3.15, TF 2.21).
        """
        import tensorflow as tf

        n = self.n_devices
        x0, y0 = dataset[0]

        def spec(a):
            a = np.asarray(a)
            return tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype))

        signature = (tf.nest.map_structure(spec, x0), spec(y0))

        def shares():
            for k in range(len(dataset)):
                x, y = dataset[k]
                size = len(y) // n
                for r in range(n):
                    cut = slice(r * size, (r + 1) * size)
                    yield tf.nest.map_structure(lambda a: a[cut], x), y[cut]

        def per_device(context):
            del context  # one input pipeline (MirroredStrategy): it feeds the devices in turn
            return tf.data.Dataset.from_generator(shares, output_signature=signature).prefetch(2 * n)

        return self.strategy.distribute_datasets_from_function(per_device)


def devices_overrides(devices):
    """The ``--set`` items that ``--devices N`` (``tartarus run``, ``tartarus pipeline``) stands for.

    A device count implies data-parallel training (a user who names one wants it used, whatever the
    experiment says); N = 0 takes every device of the backend. None: no items.
    """
    if devices is None:
        return []
    return ["training.distribution='data_parallel'", f"training.devices={int(devices)}"]


_MIRRORED = {}  # device names -> the process's one MirroredStrategy over them


def _mirrored_strategy(devices):
    """One ``tf.distribute.MirroredStrategy`` per set of devices for the whole process.

    A second strategy over the same devices numbers its collective operations afresh, so the
    all-reduce of a model trained after another (``tartarus pipeline``) met the first model's and
    failed ("Shape mismatch in the collective instance"): models trained one after another share it.
    """
    if devices not in _MIRRORED:
        import tensorflow as tf
        names = [f"/device:{d.split(':')[0].upper()}:{d.split(':')[1]}" for d in devices]
        _MIRRORED[devices] = tf.distribute.MirroredStrategy(names)
    return _MIRRORED[devices]


def _initialize_multi_host():
    """``keras.distribution.initialize()`` (jax.distributed.initialize) when the environment asks for
    several processes and JAX's multi-process runtime is not running yet."""
    try:
        count = int(os.environ.get(MULTI_HOST_ENV, "1"))
    except ValueError:
        raise ConfigError(f"{MULTI_HOST_ENV} must be a number of processes, got {os.environ[MULTI_HOST_ENV]!r}")
    if count > 1:
        import jax
        if not jax.distributed.is_initialized():
            keras.distribution.initialize()


def resolve(training):
    """The :class:`Placement` of ``training`` (a TrainingSection), checked against this machine.

    ConfigError for: ``devices`` without ``distribution = "data_parallel"``; a backend without
    distribution support (torch); more devices than the backend lists (naming both numbers);
    ``n_minibatch`` not a multiple of the device count; a device subset across several processes.
    """
    if training.distribution == "none":
        if training.devices:
            raise ConfigError(f"training.devices = {training.devices} is read only with training.distribution = "
                              f"\"data_parallel\": set that too (tartarus run --devices {training.devices} sets both), "
                              f"or leave training.devices out")
        return Placement()
    backend = keras.backend.backend()
    if backend not in DISTRIBUTED_BACKENDS:
        raise ConfigError(f"training.distribution = \"data_parallel\" is not available on the {backend} backend: "
                          f"Keras {keras.__version__} distributes training only on JAX (keras.distribution) and "
                          f"TensorFlow (tf.distribute); run with KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow, or "
                          f"train on one device with training.distribution = \"none\" (no --devices)")
    n_processes, process_index = 1, 0
    if backend == "jax":
        _initialize_multi_host()
        import jax
        n_processes, process_index = jax.process_count(), jax.process_index()
    available = keras.distribution.list_devices()
    n = training.devices or len(available)
    if n > len(available):
        raise ConfigError(f"training.devices = {n} (--devices), but the {backend} backend has only "
                          f"{len(available)} device(s): {', '.join(available)}")
    if n_processes > 1 and n != len(available):
        raise ConfigError(f"training.devices = {n}: with {n_processes} processes, training uses every device of "
                          f"every process ({len(available)}); set training.devices = 0")
    if training.n_minibatch % n:
        lower = training.n_minibatch // n * n
        raise ConfigError(f"training.n_minibatch = {training.n_minibatch} (the global batch) does not split evenly "
                          f"over {n} devices: use a multiple of {n}, e.g. "
                          + (f"{lower} or " if lower else "") + f"{lower + n}")
    devices = available[:n]
    if backend == "jax":
        strategy = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)  # we shard (split_batches)
    else:
        strategy = _mirrored_strategy(tuple(devices))
    return Placement(backend, n, list(devices), process_index, n_processes, strategy)


@contextlib.contextmanager
def training_scope(training):
    """Resolve ``training``'s placement and make it current for the block; yields the Placement.

    Used by ``train._train`` around building (or loading), compiling and fitting the model; with
    ``distribution = "none"`` it changes nothing.
    """
    placement = resolve(training)
    with placement.scope():
        yield placement
