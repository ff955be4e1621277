"""Training an experiment: resolve inputs, build, fit with checkpoints, save and record the model.

``run(experiment, suffixes, layout)`` trains a new model (or, with ``resume``, continues an
interrupted one from its last epoch checkpoint) and returns its :class:`TrainResult`. It neither
predicts nor evaluates: ``pipeline.run_experiment`` composes train -> predict -> evaluate, which is
``tartarus run NAME``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import os
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from .config import Experiment, experiment_from_dict
from .config.registry import parse_override
from .distribution import training_scope
from .errors import ConfigError, DataMismatch, MissingInput, OutputError
from .fileio import atomic_path, load_npy, read_items_index, read_json, remove_stale_temps, reserve_space, write_json
from .inputs import (PATCH_KINDS, PatchDataset, PatchVectorDataset, ShuffledBatches, VectorDataset,
                     feature_layout, feature_stats,
                     load_inputs, scaling_summary,
                     patch_params, patch_shape, reads_feature_file, vector_input_path)
from .layout import DataLayout
from .models import build_model, get_architecture, load_model
from .protocol import accuracy_kind, resolve_monitor, train_items_limit
from .splits import hold_out, sequential_split
from .store import (ModelRecord, allocate_model_id, hold_model, is_registered, read_record, record_trained,
                    write_manifest, write_record)

LOSSES = {
    "categorical_crossentropy": lambda: keras.losses.CategoricalCrossentropy(),
    "binary_crossentropy": lambda: keras.losses.BinaryCrossentropy(),
    "cosine": lambda: keras.losses.CosineSimilarity(axis=-1),
    "mse": lambda: keras.losses.MeanSquaredError(),
}


def make_optimizer(training):
    """Adam or SGD with the configured learning rate; ``decay`` is the seed's per-step inverse-time decay."""
    lr = training.learning_rate
    if training.decay:
        lr = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=training.decay)
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=training.momentum, nesterov=training.nesterov)
    return keras.optimizers.Adam(lr)


def accuracy_metric(experiment):
    """The ``accuracy`` metric compiled with the model (see protocol.accuracy_kind), or None."""
    kind = accuracy_kind(experiment)
    if kind == "categorical":
        return keras.metrics.CategoricalAccuracy(name="accuracy")
    if kind == "binary":
        return keras.metrics.BinaryAccuracy(name="accuracy")
    return "accuracy" if kind == "auto" else None


def compile_model(model, experiment):
    metric = accuracy_metric(experiment)
    metrics = [metric] if metric is not None else []
    model.compile(optimizer=make_optimizer(experiment.training), loss=LOSSES[experiment.training.loss_func](),
                  metrics=metrics)


# ------------------------------------------------------------------------------------ inputs
@dataclass
class SplitData:
    set: str
    item_ids: list
    y: np.ndarray
    patches: object  # Path of the HDF5 patches file (audio models), else None
    index_path: object
    subset: bool = False  # item_ids are a part of the patches file's items
    inputs: list = None  # vector inputs (also beside patches): one array or CSR matrix each, rows = item_ids

    @property
    def input_shapes(self):
        shapes = [patch_shape(self.patches)] if self.patches is not None else []
        return shapes + [tuple(x.shape[1:]) for x in self.inputs or ()]

    def rows(self, name, rows):
        """The part of this split made of item rows ``rows`` (ascending), named ``name``."""
        inputs = None if self.inputs is None else [x[rows] for x in self.inputs]
        return SplitData(name, [self.item_ids[r] for r in rows], self.y[rows], self.patches,
                         self.index_path, subset=True, inputs=inputs)

    def first(self, n):
        """The first ``n`` items (``dataset.nsamples``); the whole split when it has no more."""
        return self if n >= len(self.item_ids) else self.rows(self.set, np.arange(n))

    def hold_out(self, fraction, seed):
        """Split off a random ``fraction`` of the items (at least one) as a validation split.

        ``training.val_split = "random"`` (val_from_file = false). Returns (train, val), each in
        items_index order.
        """
        train, val = hold_out(len(self.item_ids), fraction, seed, name="training.validation")
        return [self.rows("train", train), self.rows("val", val)]

    def split_sequential(self, validation, test):
        """The seed's split of the train items (``training.val_split = "seed"``, val_from_file = false).

        In items_index order, the first ``int((1 - validation - test) * n)`` items train, the next
        ``int(validation * n)`` validate, and the rest (the seed's ``test`` share, which it only
        scored after training) is left out. Returns (train, val).
        """
        train, val = sequential_split(len(self.item_ids), validation, test,
                                      names=("training.validation", "training.test"))
        return [self.rows("train", train), self.rows("val", val)]


def load_targets(layout, experiment, set_):
    """Item ids and target rows of one split, checked against each other."""
    ds = experiment.dataset
    index_path = layout.items_index(set_, ds.dataset)
    item_ids = read_items_index(index_path, "the dataset's splits: tartarus dummy-data for DUMMY, "
                                      "else the dataset's own files (see data/README.md)")
    from .factors import check_factors_current
    check_factors_current(layout, ds.dataset, ds.fact, ds.dim)  # targets from a replaced import: refused
    y_path = layout.y(set_, ds.fact, ds.dim, ds.dataset)
    y = load_npy(y_path, f"the dataset's {ds.fact} targets (tartarus dummy-data for DUMMY)")
    y = y.reshape(len(y), -1).astype(np.float32) if y.ndim else y
    if y.shape[0] != len(item_ids):
        raise DataMismatch(f"{y_path} has {y.shape[0]} rows but {index_path} lists {len(item_ids)} items")
    if y.shape[1] != ds.dim:
        raise DataMismatch(f"{y_path} has {y.shape[1]} columns but dataset.dim is {ds.dim}")
    if not np.isfinite(y).all():
        raise DataMismatch(f"{y_path} contains NaN or infinite values")
    if experiment.training.normalize_y:
        y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    return item_ids, y, index_path


def check_suffixes(experiment, suffixes):
    """The META_SUFFIX arguments must fit the architecture: none for patches, one per vector input
    (for ``patches+vectors``, one per input besides the patches)."""
    arch = get_architecture(experiment.cnn.architecture)
    where = f"experiment {experiment.name!r} (cnn.architecture {arch.id}, {arch.name})"
    if arch.input_kind == "patches":
        if suffixes:
            raise ConfigError(f"{where} reads spectrogram patches and takes no input suffixes, got {' '.join(suffixes)}")
    elif arch.input_kind == "patches+vectors":
        if len(suffixes) != arch.n_inputs - 1:
            raise ConfigError(f"{where} reads spectrogram patches and {arch.n_inputs - 1} vector input(s): give "
                              f"{arch.n_inputs - 1} input suffix(es) naming train_data/X_{{set}}_SUFFIX_{{dataset}} "
                              f"files (one row per item, e.g. metadata), got {len(suffixes)}"
                              + (f": {' '.join(suffixes)}" if suffixes else ""))
    elif reads_feature_file(arch.input_kind, suffixes):
        pass  # no suffix: the vectors come from the dataset's HDF5 features file
    elif len(suffixes) != arch.n_inputs:
        raise ConfigError(f"{where} takes {arch.n_inputs} input suffix(es) naming train_data/X_{{set}}_SUFFIX_"
                          f"{{dataset}} files (e.g. bow, w2v, model_1-pred_9), got {len(suffixes)}"
                          + (f": {' '.join(suffixes)}" if suffixes else ""))
    check_input_flags(experiment, arch, suffixes)
    return arch


def check_input_flags(experiment, arch, suffixes):
    """``dataset.with_metadata`` and ``only_metadata``, where stated, must say what the model reads.

    The seed chose its inputs with these flags; here the architecture and the META_SUFFIX arguments
    do, and a stated flag that contradicts them is an error rather than a silent no-op.
    with_metadata: reads train_data inputs (META_SUFFIX); only_metadata: reads no HDF5 patches or
    features file.
    """
    ds = experiment.dataset
    reads_file = arch.input_kind in PATCH_KINDS or reads_feature_file(arch.input_kind, suffixes)
    given = f"{len(suffixes)} input suffix(es)" + (f" ({' '.join(suffixes)})" if suffixes else "")
    checks = (("with_metadata", ds.with_metadata, bool(suffixes), "reads train_data inputs named by META_SUFFIX"),
              ("only_metadata", ds.only_metadata, not reads_file, "reads no HDF5 patches or features file"))
    for key, stated, actual, meaning in checks:
        if stated is not None and stated != actual:
            raise ConfigError(f"experiment {experiment.name!r}: dataset.{key} = {str(stated).lower()}, but "
                              f"cnn.architecture {arch.id} ({arch.name}) given {given} "
                              f"{'does' if actual else 'does not'} ({key} = true: the model {meaning}); "
                              f"give the inputs the key describes, or set it to {str(actual).lower()}")


def load_split(layout, experiment, set_, suffixes=()):
    check_suffixes(experiment, suffixes)
    item_ids, y, index_path = load_targets(layout, experiment, set_)
    patches, inputs = load_inputs(layout, experiment, suffixes, set_, item_ids, index_path)
    return SplitData(set_, item_ids, y, patches, index_path, inputs=inputs)


def split_train_val(layout, experiment, suffixes=()):
    """(train, val) splits of a training run; val is None when there is no validation.

    val_from_file = true reads the val split's files; otherwise, when ``training.validation`` > 0,
    the val items come out of the train items: sequentially as the seed did (``val_split = "seed"``,
    :meth:`SplitData.split_sequential`) or at random (``"random"``, :meth:`SplitData.hold_out`).
    ``dataset.nsamples`` first keeps the first N train items.
    """
    training = experiment.training
    train = load_split(layout, experiment, "train", suffixes)
    limit = train_items_limit(experiment)
    if limit is not None:
        train = train.first(limit)
    if training.val_from_file:
        return train, load_split(layout, experiment, "val", suffixes)
    if training.validation <= 0:
        return train, None
    if training.val_split == "seed":
        return tuple(train.split_sequential(training.validation, training.test))
    return tuple(train.hold_out(training.validation, training.random_seed))


def make_dataset(split, experiment, shuffle, seed):
    batch = experiment.training.n_minibatch
    if split.patches is None:
        return VectorDataset(split.inputs, split.y, batch_size=batch, shuffle=shuffle, seed=seed)
    if split.inputs is not None:  # patches+vectors: each patch with its item's vector rows
        return PatchVectorDataset(split.patches, split.inputs, split.y, split.item_ids, batch_size=batch,
                                  shuffle=shuffle, seed=seed, index_path=split.index_path, subset=split.subset)
    return PatchDataset(split.patches, split.y, split.item_ids, batch_size=batch,
                        shuffle=shuffle, seed=seed, index_path=split.index_path, subset=split.subset)


def fit_arguments(dataset):
    """Keyword arguments of ``model.fit`` for a feed.

    A patch set already loaded into memory is handed to Keras as arrays: Keras' own array pipeline
    is faster than any Python-level batch generator (see BENCHMARKS.md); streamed sets, sparse
    inputs and patches with vector inputs (rows looked up per batch) go through the PyDataset,
    which reads or densifies one batch at a time. Its batches are taken in order (``shuffle = False``):
    the dataset shuffles its rows every epoch itself, and Keras would otherwise also shuffle the order
    of the batches (with Python's ``random``), so that a streamed set did not follow the in-memory
    set's batches.
    """
    if isinstance(dataset, PatchDataset) and not isinstance(dataset, PatchVectorDataset) \
            and dataset.features is not None:
        return {"x": dataset.features, "y": dataset.targets,  # rows already those of the split
                "batch_size": dataset.batch_size, "shuffle": dataset.shuffle}
    return {"x": dataset, "shuffle": False}


def build_extra(layout, experiment, suffixes, train):
    """Builder keywords: input scaling for patches, the embedding matrix for word sequences."""
    arch = get_architecture(experiment.cnn.architecture)
    if arch.input_kind in PATCH_KINDS:
        return {"input_stats": feature_stats(train.patches, experiment.dataset.scaling)}
    if experiment.dataset.scaling != "scalar":
        raise ConfigError(f"dataset.scaling = {experiment.dataset.scaling!r} standardises spectrogram patches, but "
                          f"architecture {arch.id} reads {arch.input_kind}: leave it out")
    if arch.input_kind == "sequences":
        path = layout.embedding_weights(suffixes[0], experiment.dataset.dataset)
        return {"embedding": load_npy(path, layout.cli("text", suffixes[0], experiment.dataset.dataset)).astype(np.float32)}
    return {}


def input_files(layout, experiment, suffixes, sets):
    """Every file a training run reads, for the manifest."""
    ds = experiment.dataset
    kind = get_architecture(experiment.cnn.architecture).input_kind
    reads_patches = kind in PATCH_KINDS or reads_feature_file(kind, suffixes)
    files = []
    for set_ in sets:
        files += [layout.items_index(set_, ds.dataset), layout.y(set_, ds.fact, ds.dim, ds.dataset)]
        if reads_patches:
            files.append(layout.patches(set_, ds.dataset, ds.npatches, ds.window))
        for suffix in suffixes:
            files.append(vector_input_path(layout, set_, suffix, ds.dataset, ds.sparse))
            if layout.items_index(set_, ds.dataset, suffix).exists():
                files.append(layout.items_index(set_, ds.dataset, suffix))
    if get_architecture(experiment.cnn.architecture).input_kind == "sequences":
        files.append(layout.embedding_weights(suffixes[0], ds.dataset))
    return [f for f in files if f.exists()]


# ------------------------------------------------------------------------- checkpoint + stop
@contextlib.contextmanager
def resumable_on_output_error(layout, model_id):
    """An OutputError (full disk) of model ``model_id`` says how to go on once space is freed:
    ``--resume`` when an epoch checkpoint is there, else a new run (the empty folder is cleaned)."""
    try:
        yield
    except OutputError as exc:
        if layout.checkpoint(model_id).exists() and layout.training_state(model_id).exists():
            hint = f"free some space, then resume: {layout.cli('run', '-', '--resume', model_id)}"
        else:
            hint = f"free some space and rerun; {layout.cli('models', '--clean')} removes the empty {model_id}"
        raise exc.with_hint(hint) from None


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: save a resumable checkpoint, track the monitored quantity, stop early if due.

    Early stopping lives here (not in keras.callbacks.EarlyStopping) so that its state (best value,
    epochs without improvement) is saved with the checkpoint and survives a resume. It counts as the
    seed's Keras (2.1.5) did: an epoch improves when ``monitor`` is strictly better than the best so
    far (higher for ``mode = "max"``, lower for ``"min"``); after ``patience`` epochs in a row without
    improvement, training stops. The model keeps its last epoch's weights unless ``restore_best``,
    which saves the best epoch's weights as they come and reloads them at the end.

    It also times each epoch (``on_epoch_begin`` to ``on_epoch_end``, training and validation,
    wall seconds by ``time.perf_counter``) into ``epoch_seconds``, saved with the state so that a
    resumed run extends the list; an epoch whose beginning it did not see is not timed.
    """

    def __init__(self, layout, model_id, monitor, patience, early_stopping, state=None, mode="min",
                 restore_best=False):
        super().__init__()
        self.layout, self.model_id = layout, model_id
        self.monitor, self.patience, self.early_stopping = monitor, patience, early_stopping
        self.mode, self.keep_best = mode, restore_best
        state = state or {}
        self.best = state.get("best", -math.inf if mode == "max" else math.inf)
        self.wait = state.get("wait", 0)
        self.best_epoch = state.get("best_epoch", 0)
        self.history = state.get("history", {})
        self.epochs_done = state.get("epoch", 0)
        # states saved before epochs were timed have none: the list then covers the later epochs only
        self.epoch_seconds = list(state.get("epoch_seconds", []))
        self._epoch_start = None
        self.stopped = False

    @property
    def best_weights_path(self):
        return self.layout.best_weights(self.model_id)

    def improves(self, current):
        return current > self.best if self.mode == "max" else current < self.best

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self._epoch_start is not None:  # before saving: the checkpoint's write is not the epoch's
            self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
            self._epoch_start = None
        with resumable_on_output_error(self.layout, self.model_id):
            self._end_epoch(epoch, logs)

    def _end_epoch(self, epoch, logs):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self.monitor not in logs:
            raise ConfigError(f"early stopping watches {self.monitor!r} (training.monitor), but the epoch "
                              f"logs hold only: {', '.join(sorted(logs))}")
        current = logs[self.monitor]
        if self.improves(current):
            self.best, self.wait, self.best_epoch = current, 0, epoch + 1
            if self.keep_best:
                # HDF5 on a disk that fills midway leaves a file it cannot close: check the room first
                reserve_space(self.best_weights_path, 2 * sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize
                                                              for w in self.model.weights) + (1 << 20))
                # Keras saves weights only to a name ending in its double suffix (.weights.h5)
                with atomic_path(self.best_weights_path, suffix="".join(self.best_weights_path.suffixes)) as tmp:
                    self.model.save_weights(tmp)
        else:
            self.wait += 1
        stop = self.early_stopping and self.wait >= self.patience
        self.epochs_done = epoch + 1
        with atomic_path(self.layout.checkpoint(self.model_id)) as tmp:
            self.model.save(tmp)
        write_json(self.layout.training_state(self.model_id),
                   {"epoch": self.epochs_done, "best": self.best, "best_epoch": self.best_epoch,
                    "wait": self.wait, "stopped": stop, "monitor": self.monitor, "mode": self.mode,
                    "patience": self.patience, "restore_best": self.keep_best, "history": self.history,
                    "epoch_seconds": self.epoch_seconds})
        self.stopped = stop
        if stop:
            self.model.stop_training = True

    def restore_best(self):
        """Reload the best epoch's weights when ``restore_best``; otherwise the last epoch's stay."""
        if self.keep_best and self.best_weights_path.exists():
            self.model.load_weights(self.best_weights_path)


# ----------------------------------------------------------------------------------- results
@dataclass
class TrainResult:
    model_id: str
    experiment: Experiment
    epochs: int
    history: dict
    best: float
    results: dict = field(default_factory=dict)  # {set: metrics}, filled by pipeline.run_experiment
    nothing_to_do: bool = False  # a resume of a finished model: nothing trained, nothing recorded


def plot_history(history, path, title):
    """The loss curves of ``history`` (``{"loss": [...], "val_loss": [...], ...}``, one value an epoch)
    as a PNG at ``path``, atomically.

    Drawn on a bare ``Figure`` with the Agg canvas, so that pyplot's global backend (a notebook's) is
    left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, values in history.items():
        if key.endswith("loss"):
            ax.plot(range(1, len(values) + 1), values, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def run(experiment, suffixes=(), layout=None, resume=None, verbose=1, overrides=()):
    """Train ``experiment`` (or continue model ``resume``), save and record it; return its TrainResult.

    Nothing is predicted or evaluated here (see ``pipeline.run_experiment``).

    overrides : ``--set`` items for a resume; only :data:`RESUMABLE_KEYS` may change (see
        :func:`resume_experiment`). A resume of a finished model with no more epochs due trains
        nothing, records nothing and returns a result with ``nothing_to_do = True``.
    """
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    held = []  # the model folder's lock (store.hold_model), for the whole run
    try:
        if not resume:
            return _train(experiment, suffixes, layout, None, None, verbose, held)
        if not layout.model_dir(resume).is_dir():
            raise MissingInput(layout.model_dir(resume), f"nothing to resume (see {layout.cli('models')})",
                               what=f"model folder of {resume}")
        held.append(hold_model(layout, resume))
        experiment, suffixes, state, changed = resume_experiment(layout, resume, overrides)
        if _finished(layout, resume, experiment, state):
            epochs = state["epoch"] if state else None
            why = ("stopped early" if state and _stops(experiment.training, state)
                   else f"training.n_epochs = {experiment.training.n_epochs}")
            if verbose:
                print(f"{resume}: finished after {epochs if epochs is not None else 'all'} epoch(s) ({why}); "
                      f"nothing to do (train it longer with --set training.n_epochs=N)", flush=True)
            history = state.get("history", {}) if state else {}
            best = state.get("best", math.nan) if state else math.nan
            return TrainResult(resume, experiment, epochs, history, best, nothing_to_do=True)
        if not layout.checkpoint(resume).exists() or state is None:
            raise MissingInput(layout.checkpoint(resume), "nothing to resume: this model has no epoch checkpoint",
                               what=f"checkpoint of {resume}")
        if changed:
            if verbose:
                print(f"{resume}: resuming with " + ", ".join(f"{k} = {new!r} (was {old!r})"
                                                            for k, (old, new) in changed.items()), flush=True)
            record = read_record(layout, resume)
            record.experiment = experiment.to_dict()
            record.resume_overrides.append({"at_epoch": state["epoch"], **{k: new for k, (old, new) in changed.items()}})
            write_record(layout, record)
        return _train(experiment, suffixes, layout, resume, state, verbose, held)
    finally:
        for fd in held:
            os.close(fd)


RESUMABLE_KEYS = ("training.n_epochs", "training.patience", "training.early_stopping",
                  "training.distribution", "training.devices", "training.tensorboard")
"""The ``--set`` keys a resumed run may change: they only say when to stop, on how many devices
the same updates are computed (tartarus.distribution), or whether TensorBoard logs are written."""


def resume_experiment(layout, model_id, overrides=()):
    """The saved experiment of ``model_id`` with ``--set`` ``overrides`` applied.

    Only :data:`RESUMABLE_KEYS` may change mid-run; any other key is refused (ConfigError naming it)
    unless its value equals the saved one. ``training.n_epochs`` below the epochs already trained is
    refused too.

    Returns
    -------
    experiment : Experiment
    suffixes : tuple of str
    state : dict or None
        The epoch checkpoint's training state (None when the folder holds none).
    changed : dict
        ``{"training.n_epochs": (old, new), ...}`` for the keys whose value changed.
    """
    record = read_record(layout, model_id)
    raw = copy.deepcopy(record.experiment)
    name = raw.get("name", model_id)
    state_path = layout.training_state(model_id)
    state = read_json(state_path) if state_path.exists() else None
    changed = {}
    for item in overrides:
        path, value = parse_override(item) if isinstance(item, str) else item
        key = ".".join(path)
        section = raw.get(path[0]) if len(path) == 2 else None
        old = section.get(path[1]) if isinstance(section, dict) else None
        if key not in RESUMABLE_KEYS:
            if isinstance(section, dict) and path[1] in section and old == value:
                continue  # restating the saved value changes nothing
            raise ConfigError(f"--resume {model_id}: {key} cannot change mid-run (only "
                              f"{', '.join(RESUMABLE_KEYS)} can); start a new run to change it")
        if old != value:
            raw.setdefault(path[0], {})[path[1]] = value
            changed[key] = (old, value)
    experiment = experiment_from_dict(name, raw, saved=True)
    done = state["epoch"] if state else 0
    if "training.n_epochs" in changed and experiment.training.n_epochs < done:
        raise ConfigError(f"--resume {model_id}: training.n_epochs = {experiment.training.n_epochs}, but "
                          f"{done} epoch(s) are already trained; give at least {done}")
    return experiment, record.suffixes, state, changed


def _stops(training, state):
    """Whether early stopping ends the run at ``state`` (recounted with the current patience)."""
    return bool(training.early_stopping and state.get("wait", 0) >= training.patience)


def _finished(layout, model_id, experiment, state):
    """A registered model (model.keras saved) with no epochs left to train."""
    if not (is_registered(layout, model_id) and layout.model_file(model_id).exists()):
        return False
    return state is None or _stops(experiment.training, state) or state["epoch"] >= experiment.training.n_epochs


def epoch_seed(random_seed, epoch):
    """The seed of epoch ``epoch`` (0-based): a function of ``(random_seed, epoch)`` alone."""
    return int(np.random.SeedSequence([random_seed % 2 ** 32, epoch]).generate_state(1)[0] % 2 ** 31)


def seed_epoch(model, dataset, random_seed, epoch):
    """Seed everything random in epoch ``epoch`` from ``(random_seed, epoch)`` only.

    The row order (a PyDataset's own permutation; for in-memory arrays, Keras' shuffle, which draws
    from the global RNGs that ``keras.utils.set_random_seed`` seeds) and the layers' dropout
    (their SeedGenerator states, which a saved model does not keep) then repeat in a resumed run
    what the uninterrupted run drew in the same epoch.
    """
    seed = epoch_seed(random_seed, epoch)
    keras.utils.set_random_seed(seed)
    generators = [v for v in model.variables if v.name == "seed_generator_state"]
    for i, state in enumerate(generators):
        state.assign(np.array([epoch_seed(seed, i), 0]).astype(keras.backend.standardize_dtype(state.dtype)))
    if isinstance(dataset, ShuffledBatches):
        dataset.start_epoch(seed)


def check_tensorboard(training):
    """With ``training.tensorboard``, a ConfigError saying what to install when TensorFlow's summary
    ops cannot be had: they need ``tensorflow`` and the ``tensorboard`` package (which TensorFlow no
    longer installs), on every backend. Checked before a model folder is made."""
    if not training.tensorboard:
        return
    missing = [name for name in ("tensorflow", "tensorboard") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"training.tensorboard = true (tartarus run --tensorboard) writes its logs with "
                          f"TensorFlow's summary ops, which need {' and '.join(missing)}, not installed here "
                          f"(backend {keras.backend.backend()}): pip install {' '.join(missing)} (or pip install "
                          f"-e '.[tensorboard]'), or leave training.tensorboard false")


def tensorboard_callback(layout, model_id, training):
    """``keras.callbacks.TensorBoard`` logging under ``layout.tensorboard_dir(model_id)`` when
    ``training.tensorboard`` (``tartarus run --tensorboard``), else None.

    Epoch scalars (``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate``; the validation's under
    ``validation/``) are written at step = the epoch's 0-based index, which each of the run's
    one-epoch fits passes as ``initial_epoch``: the steps follow on over the fits, and a resume
    appends new event files to the same folder. The writer is TensorFlow's ``tf.summary`` on every
    backend (:func:`check_tensorboard`, called before the model folder is made).
    """
    if not training.tensorboard:
        return None
    return keras.callbacks.TensorBoard(log_dir=str(layout.tensorboard_dir(model_id)))


class _OneEpoch(keras.callbacks.Callback):
    """Reseeds the global RNGs as the epoch begins and ends ``model.fit`` after it.

    A model's first fit makes one data iterator more than later fits (Keras peeks at a batch to
    build the metrics), and torch's DataLoader draws a seed from the global RNG for each, which
    torch's unseeded dropout then uses: seeding again here, after the peek, keeps the epoch's draws
    a function of its seed alone.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        keras.utils.set_random_seed(self.seed)

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def _train(experiment, suffixes, layout, resume, state, verbose, held):
    # the model is built (or loaded), compiled and fitted on the devices training.distribution names
    with training_scope(experiment.training) as placement:
        return _train_placed(experiment, suffixes, layout, resume, state, verbose, held, placement)


def _train_placed(experiment, suffixes, layout, resume, state, verbose, held, placement):
    training = experiment.training
    check_tensorboard(training)
    remove_stale_temps(layout.models_dir, depth=1)  # killed runs' half-written checkpoints (can be large)
    keras.utils.set_random_seed(training.random_seed + (state["epoch"] if state else 0))

    train, val = split_train_val(layout, experiment, suffixes)

    if resume:
        model_id = resume
        # compile=True restores the loss, metrics and the optimizer's saved state with the weights
        model = load_model(layout.checkpoint(model_id), compile=True)  # safe mode
    else:
        model_id = allocate_model_id(layout)
        held.append(hold_model(layout, model_id))
        input_shapes = train.input_shapes
        extra = build_extra(layout, experiment, suffixes, train)
        model = build_model(experiment.cnn, input_shapes, experiment.dataset.dim, **extra)
        compile_model(model, experiment)
        write_record(layout, ModelRecord(
            model_id, experiment.to_dict(), tuple(suffixes), list(input_shapes),
            input_stats=scaling_summary(extra["input_stats"]) if "input_stats" in extra else [],
            input_prescaled=bool(train.patches and feature_layout(train.patches).prescaled),
            backend=keras.backend.backend(),
            # how the training patches were made, so new audio files can be cut the same way
            audio_params=patch_params(train.patches) if train.patches else None))
        inputs = input_files(layout, experiment, suffixes, ["train"] + (["val"] if val is not None else []))
        write_manifest(layout, model_id, experiment.name, inputs, training.random_seed, keras.backend.backend())
    if verbose:
        print(f"{model_id}: training {experiment.name} on {experiment.dataset.dataset} "
              f"({len(train.item_ids)} train items, backend {keras.backend.backend()})", flush=True)
        if placement.active:
            print(f"{model_id}: {placement.describe()}; global batch {training.n_minibatch}, "
                  f"{training.n_minibatch // placement.n_devices} per device", flush=True)

    monitor, mode = resolve_monitor(experiment, val is not None)
    if state and state.get("monitor", monitor) != monitor:  # a run begun before training.monitor existed
        monitor = state["monitor"]
        mode = state.get("mode", "max" if monitor.endswith("accuracy") else "min")
    if verbose:
        print(f"{model_id}: early stopping {'on' if training.early_stopping else 'off'} ({monitor}, patience "
              f"{training.patience}); keeping the {'best' if training.restore_best else 'last'} epoch's weights",
              flush=True)
    checkpoint = EpochCheckpoint(layout, model_id, monitor, training.patience, training.early_stopping, state,
                                 mode=mode, restore_best=training.restore_best)
    tensorboard = tensorboard_callback(layout, model_id, training)
    if tensorboard is not None and verbose:
        print(f"{model_id}: TensorBoard logs in {layout.tensorboard_dir(model_id)} (tensorboard --logdir "
              f"{layout.tensorboard_dir(model_id)})", flush=True)
    if not (state and _stops(training, state)) and checkpoint.epochs_done < training.n_epochs:
        train_set = make_dataset(train, experiment, shuffle=True, seed=training.random_seed)
        val_set = make_dataset(val, experiment, shuffle=False, seed=0) if val else None
        if placement.active:  # the batch feeds split over the devices (whole sets are never loaded for it)
            train_feed = placement.fit_arguments(train_set, fit_arguments)
            val_args = placement.validation_arguments(val_set, fit_arguments) if val_set else {}
            if verbose:
                dropped = [f"{placement.dropped_rows(d)} {what} row(s)" for d, what in
                           ((train_set, "train"), (val_set, "val")) if d is not None and placement.dropped_rows(d)]
                if dropped:
                    print(f"{model_id}: each epoch leaves out {' and '.join(dropped)} to split the last batch "
                          f"evenly over {placement.n_devices} devices", flush=True)
        else:
            train_feed = fit_arguments(train_set)
            val_feed = fit_arguments(val_set) if val_set else None
            val_args = {"validation_data": val_feed and ((val_feed["x"], val_feed["y"]) if "y" in val_feed
                                                         else val_feed["x"])}
        if keras.backend.backend() != "tensorflow":
            # build the loss and metrics on one batch first: fit would peek at the PyDataset for it,
            # which on JAX and torch shifts the batches of a model's first fit (a resume's included)
            x, y = train_set[0]
            model.evaluate(x, y, batch_size=len(y), verbose=0)
        # one fit per epoch, each seeded from (random_seed, epoch): a resume continues the same path
        for epoch in range(checkpoint.epochs_done, training.n_epochs):
            seed_epoch(model, train_set, training.random_seed, epoch)
            feed = train_feed
            if "y" in feed:  # in-memory arrays in this epoch's order: Keras' own shuffle draws from the
                rows = train_set.order[:train_set.n_used]  # global RNG once more in a model's first fit
                # (JAX, torch); n_used: all rows, less the remainder a data-parallel split drops
                feed = {**feed, "x": feed["x"][rows], "y": feed["y"][rows], "shuffle": False}
            callbacks = [checkpoint, _OneEpoch(epoch_seed(training.random_seed, epoch))]
            model.fit(**feed, **val_args, epochs=training.n_epochs, initial_epoch=epoch,
                      callbacks=callbacks if tensorboard is None else [tensorboard, *callbacks],
                      verbose=2 if verbose else 0)
            if tensorboard is not None:
                tensorboard.write_graph = False  # the model's summary once a run, not once an epoch's fit
            if checkpoint.stopped:
                break
    checkpoint.set_model(model)
    checkpoint.restore_best()
    # the model file, then its registration, come last: a failure before them (a full disk) leaves
    # an unregistered model with its epoch checkpoint, which --resume finishes
    with resumable_on_output_error(layout, model_id):
        write_json(layout.history(model_id), checkpoint.history)
        plot_history(checkpoint.history, layout.training_curve(model_id), f"{model_id} ({experiment.name})")
        with atomic_path(layout.model_file(model_id)) as tmp:
            model.save(tmp)
        record_trained(layout, model_id, experiment.name, experiment.dataset.dataset, suffixes,
                       checkpoint.epochs_done, None if math.isinf(checkpoint.best) else checkpoint.best)
    return TrainResult(model_id, experiment, checkpoint.epochs_done, checkpoint.history, checkpoint.best)
