"""Typed sections of an experiment and of a dataset entry.

Keys keep the names of the original Tartarus configs (``dataset.fact``, ``training.n_minibatch``,
``cnn.n_filters_1`` ...) so that settings from the seed and its papers carry over unchanged.
``REQUIRED`` marks a value that an entry (or one of its bases) must state.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Optional

from ..errors import ConfigError

REQUIRED = None  # a field whose metadata says required=True must end up with a non-None value

# Keys that configs once accepted and that are gone: "SECTION.KEY" (SECTION an experiment section,
# or "datasets" for an entry of datasets.toml) -> what to use instead. A config that still sets one
# gets one ConfigError saying so. Only keys that nothing read belong here: a saved model config
# (config.json) that holds one is read without it (experiment_from_dict(..., saved=True)).
REMOVED_KEYS = {
    "evaluating.get_map": "no key (leave it out): MAP@k (evaluating.map_k) is always reported; the "
                          "seed's trainer ignored this key and always computed MAP",
    "evaluating.get_p": "no key (leave it out): P, nDCG and ADiv at 1, 3, 5 and map_k are always "
                        "reported; the seed's trainer ignored this key and always computed them",
    "evaluating.get_knn": "no key (leave it out): the seed never read it and had no kNN evaluation",
    "dataset.configuration": "the experiment's name, which tartarus records with every model "
                             "(trained_models.tsv, config.json); the seed set this key to that name",
    "cnn.branch_dims": "cnn.n_dense (the width of each of architecture 6's three branches, relu, tanh "
                       "and sigmoid, as the seed's get_model_6) and cnn.n_dense_2 (the layer after them)",
}

EVALUATIONS = ("multiclass", "multilabel", "binary", "recommendation")
LOSSES = ("categorical_crossentropy", "binary_crossentropy", "cosine", "mse")
OPTIMIZERS = ("adam", "sgd")
ACTIVATIONS = ("softmax", "sigmoid", "linear", "relu", "tanh", "elu")  # elu: architecture 5 (Choi's CRNN)
AGGREGATIONS = ("mean", "max", "median")
MAP_K = 500  # MAP@k's cut-off unless evaluating.map_k says otherwise: the metrics' default too
SPECTROGRAMS = ("mel", "cqt", "stft")
PATCH_MODES = ("random", "even")
PROTOCOLS = ("tartarus", "seed")  # recommendation users: with a held-out item / all (0 without)
PROTOCOL_CHOICES = PROTOCOLS + ("both",)
# where factor scores are computed for ranking (metrics.FactorScores, ``tartarus evaluate --device``)
SCORE_DEVICES = ("auto", "cpu", "accelerator")
# where ALS runs (factors.AlsParams.device, ``tartarus factors --device``): auto is gpu when implicit has CUDA
FACTOR_DEVICES = ("auto", "cpu", "gpu")
MONITORS = ("auto", "val_loss", "val_accuracy", "loss", "accuracy")  # training.monitor
VAL_SPLITS = ("seed", "random")  # training.val_split
SCALINGS = ("scalar", "per_bin")  # input standardisation: one mean/std, or one per (frame, bin)
# DatasetEntry.log_scale: "db" is 10 log10(power) (librosa's power_to_db); "musicnn" is musicnn's input,
# log10(10000 * power + 1) over the power cast to float16 (audio.features.musicnn_log)
LOG_SCALES = ("db", "musicnn")
TRAINABLE = ("head", "all")  # cnn.trainable of the pretrained architectures (models/transfer.py)
# training.distribution: one device as Keras places it, or the global batch split over devices
# (tartarus.distribution: keras.distribution.DataParallel on JAX, tf.distribute.MirroredStrategy on TF)
DISTRIBUTIONS = ("none", "data_parallel")
PROJECTIONS = ("tsne", "pca", "umap")  # the report's embedding map (tartarus report --projection)
INITS = ("glorot_uniform", "uniform")  # cnn.init; "uniform": the seed's U(-0.05, 0.05) (Keras 1 init="uniform")


def _choice(default, choices, **kw):
    return field(default=default, metadata={"choices": choices, **kw})


def _required(**kw):
    return field(default=None, metadata={"required": True, **kw})


@dataclass(frozen=True)
class Range:
    """The values a numeric key allows: an interval, each end closed or open, less ``exclude``.

    An infinite end is always open, and NaN is never in range. ``note`` says what special values
    mean (``0 = no block``); a tuple key's range holds for each of its elements.
    """
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    exclude: tuple = ()
    note: str = ""

    def __contains__(self, value):
        if value != value or value in self.exclude:  # NaN
            return False
        above = value > self.lo if self.lo_open or math.isinf(self.lo) else value >= self.lo
        below = value < self.hi if self.hi_open or math.isinf(self.hi) else value <= self.hi
        return above and below

    def __str__(self):
        def end(x):
            return ("-inf" if x < 0 else "inf") if math.isinf(x) else (f"{x:g}" if isinstance(x, float) else str(x))
        text = (("(" if self.lo_open or math.isinf(self.lo) else "[") + f"{end(self.lo)}, {end(self.hi)}"
                + (")" if self.hi_open or math.isinf(self.hi) else "]"))
        if self.exclude:
            text += " except " + ", ".join(map(str, self.exclude))
        return text + (f" ({self.note})" if self.note else "")

    def check(self, value, where):
        """Raise one ConfigError naming ``where``, this range and ``value`` (element-wise for a tuple)."""
        values = value if isinstance(value, tuple) else (value,)
        bad = [v for v in values if v not in self]
        if bad:
            what = f"element {bad[0]!r} of {list(value)!r}" if isinstance(value, tuple) else repr(value)
            raise ConfigError(f"{where}: {what} is out of range; allowed: {str(self)}")


def ranged(ge=None, gt=None, le=None, lt=None, exclude=(), note=""):
    """A :class:`Range` from bounds named like pydantic's: ``ranged(ge=0, lt=1)`` is [0, 1)."""
    return Range(lo=-math.inf if ge is None and gt is None else (gt if ge is None else ge),
                 hi=math.inf if le is None and lt is None else (lt if le is None else le),
                 lo_open=ge is None, hi_open=le is None, exclude=tuple(exclude), note=note)


def _ranged(default, **bounds):
    """A numeric field with its allowed range (see :func:`ranged`), checked by :func:`build_section`."""
    return field(default=default, metadata={"range": ranged(**bounds)})


def range_of(cls, key):
    """The :class:`Range` of ``cls.key`` (None when the key has none)."""
    return next((f.metadata.get("range") for f in dataclasses.fields(cls) if f.name == key), None)


@dataclass
class DatasetSection:
    """Which data an experiment reads: ``y_{set}_{fact}_{dim}_{dataset}`` and its inputs."""
    dataset: Optional[str] = _required()
    fact: str = "class"
    dim: Optional[int] = _required(range=ranged(ge=1))
    npatches: int = _ranged(1, ge=1)
    window: float = _ranged(15.0, gt=0)  # seconds
    evaluation: str = _choice("multiclass", EVALUATIONS)
    nsamples: str = "all"  # "all", or N: train on the first N train items (items_index order)
    # what the model reads, as the seed's flags; None = what the architecture and the input suffixes
    # say. Stated, they must agree with them: with_metadata = reads train_data inputs (META_SUFFIX),
    # only_metadata = reads no HDF5 patches/features file (train.check_input_flags).
    with_metadata: Optional[bool] = None
    only_metadata: Optional[bool] = None
    sparse: bool = False  # train_data inputs are sparse .npz (suffixes naming "model"/"w2v" stay .npy), else .npy
    scaling: str = _choice("scalar", SCALINGS)  # per_bin: the seed's StandardScaler over flattened patches


@dataclass
class TrainingSection:
    n_epochs: int = _ranged(100, ge=1)
    n_minibatch: int = _ranged(32, ge=1)
    loss_func: str = _choice("categorical_crossentropy", LOSSES)
    optimizer: str = _choice("adam", OPTIMIZERS)
    learning_rate: float = _ranged(1e-3, gt=0)
    decay: float = _ranged(0.0, ge=0, note="0 = constant rate")
    momentum: float = _ranged(0.9, ge=0, le=1)
    nesterov: bool = False
    early_stopping: bool = True
    # the seed's protocol: stop after `patience` epochs without improvement of `monitor` ("auto":
    # val accuracy for a softmax head, val loss otherwise), keep the last epoch's weights
    patience: int = _ranged(4, ge=1, note="early_stopping = false turns stopping off")
    monitor: str = _choice("auto", MONITORS)
    restore_best: bool = False  # true: keep the weights of the best epoch instead of the last
    validation: float = _ranged(0.1, ge=0, lt=1)
    # val_split "seed": share of the train items after the val share, left unused
    test: float = _ranged(0.1, ge=0, lt=1)
    val_from_file: bool = True
    val_split: str = _choice("seed", VAL_SPLITS)  # val_from_file = false: "seed" sequential, "random" hold-out
    normalize_y: bool = False
    random_seed: int = _ranged(1234, ge=0)
    # "data_parallel": n_minibatch is the global batch, split evenly over `devices` devices
    # (tartarus run --devices N sets both); see tartarus.distribution
    distribution: str = _choice("none", DISTRIBUTIONS)
    devices: int = _ranged(0, ge=0, note="0 = every device of the backend; read with data_parallel")
    tensorboard: bool = False  # true: TensorBoard logs under models/model_N/tensorboard (tartarus run --tensorboard)


@dataclass
class CnnSection:
    """Architecture hyper-parameters, with the seed's key names: every key any architecture reads.

    Each architecture family declares the keys it reads (config/families.py) and its builder gets
    only those; an experiment that sets a key its architecture does not read is refused
    (registry.experiment_from_dict).
    """
    architecture: str = "1"
    n_filters_1: int = _ranged(256, ge=0, note="0 = block absent")
    n_filters_2: int = _ranged(512, ge=0, note="0 = block absent")
    n_filters_3: int = _ranged(0, ge=0, note="0 = block absent")
    n_filters_4: int = _ranged(0, ge=0, note="0 = block absent")
    n_filters_5: int = _ranged(0, ge=0, note="0 = block absent")
    n_kernel_1: tuple[int, int] = _ranged((4, 96), ge=1)
    n_kernel_2: tuple[int, int] = _ranged((4, 1), ge=1)
    n_kernel_3: tuple[int, int] = _ranged((4, 1), ge=1)
    n_kernel_4: tuple[int, int] = _ranged((1, 1), ge=1)
    n_kernel_5: tuple[int, int] = _ranged((1, 1), ge=1)
    n_pool_1: tuple[int, int] = _ranged((4, 1), ge=1)
    n_pool_2: tuple[int, int] = _ranged((4, 1), ge=1)
    n_pool_3: tuple[int, int] = _ranged((4, 1), ge=1)
    n_pool_4: tuple[int, int] = _ranged((1, 1), ge=1)
    n_pool_5: tuple[int, int] = _ranged((1, 1), ge=1)
    dropout_factor: float = _ranged(0.5, ge=0, lt=1)
    n_dense: int = _ranged(0, ge=0, note="0 = no dense layer")
    n_dense_2: int = _ranged(0, ge=0, note="0 = no dense layer")
    activation: str = _choice("relu", ACTIVATIONS)
    final_activation: str = _choice("linear", ACTIVATIONS)
    batch_norm: bool = False
    # shufl (architecture 51): the activation of each dense layer (() = `activation` for all; shufl's code:
    # ["softmax", "relu"]), and dropout on the input of each dense layer (Lasagne style, as shufl) instead
    # of after it
    dense_activations: tuple[str, ...] = ()
    dropout_before_dense: bool = False
    # text CNN (architecture 4), with the seed's names
    sequence_length: int = _ranged(500, ge=1)
    embedding_dim: int = _ranged(300, ge=1)
    filter_sizes: tuple[int, ...] = _ranged((2, 3), ge=1)
    num_filters: int = _ranged(150, ge=1)
    # after the embedding, after the hidden dense layer
    dropout_prob: tuple[float, float] = _ranged((0.5, 0.8), ge=0, lt=1)
    # rows of a random embedding, when no word2vec matrix is given
    vocab_size: int = _ranged(0, ge=0, note="0 = from the word2vec matrix")
    embedding_trainable: bool = True  # false: the seed's CNN-static
    # kernel initialisation of the seed's architectures (models/blocks.py kernel_init): "uniform" is
    # the seed's U(-0.05, 0.05) on the layers it initialised so; "glorot_uniform" is Keras' default
    init: str = _choice("glorot_uniform", INITS)
    # recurrent layers (architectures 5 and 41): sizes of the stacked GRUs (5) or LSTMs (41);
    # () = the architecture's own, the seed's (32, 32) GRUs for 5 and one 2048-unit LSTM for 41
    rnn_units: tuple[int, ...] = _ranged((), ge=1)
    rnn_dropout: float = _ranged(0.3, ge=0, lt=1)  # dropout after the last GRU (architecture 5; Choi's CRNN uses 0.3)
    # pretrained architectures (MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg; models/transfer.py): the
    # layer the pretrained graph is cut at ("" = the model's default: penultimate for musicnn, pool5 for
    # VGG), and what trains: "head" (the pretrained layers frozen) or "all" (fine-tuning)
    pretrained_layer: str = ""
    trainable: str = _choice("head", TRAINABLE)


@dataclass
class PredictingSection:
    aggregation: str = _choice("mean", AGGREGATIONS)
    trim_coeff: float = _ranged(0.15, ge=0, lt=0.5)  # share trimmed from each end


@dataclass
class EvaluatingSection:
    map_k: int = _ranged(MAP_K, ge=1)
    # recommendation: "tartarus" counts users with a held-out item, "seed" every user (0 without one),
    # "both" reports the two (docs/metrics.md)
    protocol: str = _choice("tartarus", PROTOCOL_CHOICES)
    # multilabel P/R/F: F1-maximising thresholds chosen on val per class, one for all classes (the
    # seed's scripts/threshold.py rule), or `threshold` for every class
    thresholds: str = _choice("per_class", ("per_class", "global", "fixed"))
    threshold: float = _ranged(0.5)  # any finite score
    # recommendation: ROC-AUC and PR-AUC rank every item of every user in float64 (about 20x the
    # cost of MAP@k on a CPU); false leaves them out at catalogue scale (`tartarus evaluate --no-auc`)
    ranking_auc: bool = True


@dataclass
class Experiment:
    name: str
    dataset: DatasetSection
    training: TrainingSection
    cnn: CnnSection
    predicting: PredictingSection
    evaluating: EvaluatingSection
    base: str = ""
    description: str = ""

    def to_dict(self):
        return dataclasses.asdict(self)


EXPERIMENT_SECTIONS = {
    "dataset": DatasetSection,
    "training": TrainingSection,
    "cnn": CnnSection,
    "predicting": PredictingSection,
    "evaluating": EvaluatingSection,
}
EXPERIMENT_SCALARS = {"base": str, "description": str}


@dataclass
class DatasetEntry:
    """Where a dataset's audio lives and how it becomes spectrograms and patches (the seed's config_spectro)."""
    name: str
    audio_folder: str = "audio"
    index_file: str = ""
    audio_ext: tuple[str, ...] = ()  # extensions decoded (without dot); () = any; others are listed as failed
    spectrogram_type: str = _choice("mel", SPECTROGRAMS)
    resample_sr: int = _ranged(22050, ge=1)  # Hz
    hop: int = _ranged(1024, ge=1)
    n_fft: int = _ranged(2048, ge=1)
    n_mels: int = _ranged(96, ge=1)
    cqt_bins: int = _ranged(96, ge=1)
    bins_per_octave: int = _ranged(12, ge=1)
    fmin: float = _ranged(32.70319566257483, gt=0)  # Hz
    log: bool = True
    log_scale: str = _choice("db", LOG_SCALES)  # with log = true: dB, or musicnn's log10(10000 x + 1)
    db_ref: str = "1.0"  # dB reference power: a number, or "max" (each track's own maximum, the seed's)
    # clip each track at (its max - top_db) dB; 0 = no clipping (the seed: 80)
    top_db: float = _ranged(0.0, ge=0, note="0 = no clipping")
    # the seed's key for the spectrogram workers; in Python (compute_spectrograms, the CLI's -j) it is n_jobs
    num_process: int = _ranged(1, exclude=(0,), note="-1 = every core, -2 all but one ...")
    npatches: int = _ranged(1, ge=1)
    window: float = _ranged(15.0, gt=0)  # seconds
    patch_mode: str = _choice("random", PATCH_MODES)
    seed: int = _ranged(0, ge=0)
    # text features (tartarus text vsm|w2v|d2v): defaults of the command-line options, the seed's
    # load_vsm.py / load_w2v.py values (tartarus's earlier ones: max_df 0.9, no word or feature limit,
    # skip-gram for 20 epochs)
    max_df: float = _ranged(0.5, gt=0, le=1)  # a share of the train texts
    min_df: int = _ranged(1, ge=0)  # a number of train texts (0 and 1 keep every term)
    max_features: int = _ranged(10000, ge=0, note="0 = no limit")
    n_words: int = _ranged(300, ge=0, note="0 = all")  # vsm: the first words of each text that count
    sequence_length: int = _ranged(500, ge=1)
    embedding_dim: int = _ranged(300, ge=1)
    w2v_epochs: int = _ranged(5, ge=1)  # gensim's default
    w2v_skipgram: bool = False  # false: CBOW, as the seed
    d2v_dim: int = _ranged(40, ge=1)
    # another dataset whose index and split files (index/*_{it}.tsv, splits/*_{it}.*) this one shares:
    # `tartarus spectrograms` and `tartarus patches` copy them under this entry's name first
    # (datasets/derived.py), so the same items get spectrograms made another way ("" = its own files)
    items_from: str = ""
    description: str = ""
    base: str = ""

    @property
    def n_bins(self):
        return {"mel": self.n_mels, "cqt": self.cqt_bins, "stft": self.n_fft // 2 + 1}[self.spectrogram_type]

    def spectrogram_params(self):
        """The parameters that determine a spectrogram; stored beside the output and compared on resume."""
        keys = ("spectrogram_type", "resample_sr", "hop", "n_fft", "n_mels", "cqt_bins",
                "bins_per_octave", "fmin", "log")
        params = {k: getattr(self, k) for k in keys}
        # the dB scaling is stored only when it differs from the fixed 1.0 reference without
        # clipping, so spectrogram folders made before these keys existed still match
        if self.log and (self.db_reference() != 1.0 or self.top_db):
            params.update(db_ref=self.db_reference(), top_db=float(self.top_db))
        if self.log_scale != "db":  # likewise stored only when not the default
            params.update(log_scale=self.log_scale)
        return params

    def db_reference(self):
        """``db_ref`` as used: the string ``"max"`` or a positive float (ConfigError otherwise)."""
        ref = str(self.db_ref).strip().lower()
        if ref == "max":
            value = "max"
        else:
            try:
                value = float(ref)
            except ValueError:
                value = None
            if value is None or not value > 0 or value == float("inf"):
                raise ConfigError(f"dataset {self.name!r}: db_ref must be \"max\" or a positive number, "
                                  f"got {self.db_ref!r}")
        if not self.top_db >= 0:
            raise ConfigError(f"dataset {self.name!r}: top_db must be >= 0 (0 = no clipping), got {self.top_db!r}")
        return value

    def to_dict(self):
        return dataclasses.asdict(self)


# ----------------------------------------------------------------- building from plain values
def _type_name(tp):
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value, tp, where):
    """Check ``value`` against the annotation ``tp``; return it normalised (lists to tuples, ints to floats)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list like {list(_example(tp))}, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)} ({value!r})")
        return tuple(coerce(v, a, where) for v, a in zip(value, args))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # architecture = 1 and architecture = "1" mean the same
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")


def _example(tp):
    return tuple(1 for _ in typing.get_args(tp) if _ is not Ellipsis) or (1,)


def section_name(cls):
    """The name of section ``cls`` in configs and in REMOVED_KEYS: ``dataset``, ``training`` ... or ``datasets``."""
    if cls is DatasetEntry:
        return "datasets"
    return next((name for name, c in EXPERIMENT_SECTIONS.items() if c is cls), cls.__name__)


def build_section(cls, values, where, drop_removed=False):
    """Make dataclass ``cls`` from a dict, naming the offending key on any error.

    A key of REMOVED_KEYS is an error saying what replaces it, or with ``drop_removed`` (saved model
    configs, written when the key existed and was read by nothing) is left out.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a table of keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    section = section_name(cls)
    for key in sorted(values):
        if f"{section}.{key}" in REMOVED_KEYS and key not in fields:
            if drop_removed:
                values = {k: v for k, v in values.items() if k != key}
                continue
            raise ConfigError(f"{where}.{key}: this key was removed; use instead: {REMOVED_KEYS[f'{section}.{key}']}")
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}" + _suggest(unknown[0], fields))
    kwargs = {}
    for name, f in fields.items():
        if name in values:
            kwargs[name] = coerce(values[name], hints[name], f"{where}.{name}" if where else name)
            choices = f.metadata.get("choices")
            if choices and kwargs[name] not in choices:
                raise ConfigError(f"{where}.{name}: {kwargs[name]!r} is not one of {', '.join(choices)}")
            allowed = f.metadata.get("range")
            if allowed is not None and kwargs[name] is not None:
                allowed.check(kwargs[name], f"{where}.{name}" if where else name)
    obj = cls(**kwargs)
    for name, f in fields.items():
        if f.metadata.get("required") and getattr(obj, name) is None:
            raise ConfigError(f"{where}.{name}: missing value (no entry in the chain of bases sets it)")
    return obj


def _suggest(key, known):
    import difflib
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(sorted(known))})"


def section_keys(cls):
    return [f.name for f in dataclasses.fields(cls)]
