"""Every file and folder name of a data root, in one place.

The names follow the original Tartarus layout so that its published datasets work as they are::

    index/index_audio_{ds}.tsv          id<TAB>audio file (relative to audio/)
    index/index_text_{ds}.tsv           id<TAB>text file (relative to text/)
    audio/  text/                       the raw material
    splits/items_index_{set}_{ds}.tsv   one item id a line
    splits/y_{set}_{fact}_{dim}_{ds}.npy
    splits/genre_labels_{ds}.tsv
    spectrograms/{ds}/                  one .npy a decoded item, params.json, errors.tsv
    patches/patches_{set}_{ds}_{n}x{s}.hdf5  spectrogram patches, or vector features (N, D) (AcousticBrainz)
    patches/patches_{set}_{ds}_{n}x{s}.shards/shard_{k}.hdf5  its shards, when written on a Dask cluster
    train_data/X_{set}_{suffix}_{ds}.npy|.npz (+ items_index_{set}_{suffix}_{ds}.tsv)
    train_data/errors_{suffix}_{ds}.tsv  items a computed input (tartarus embed) left out
    train_data/vocabulary_{suffix}_{ds}.tsv  params_{suffix}_{ds}.json  embedding_weights_{suffix}_{ds}.npy
    splits/params_{fact}_{dim}_{ds}.json  how computed targets (d2v, als, pmi) were made
    splits/interactions_{ds}.npz        user x item play counts (CSR), imported from a triplets file
    splits/interactions_users_{ds}.tsv  splits/interactions_items_{ds}.tsv  its row / column ids
    splits/interactions_params_{ds}.json  how the interactions were imported
    splits/matrix_{val|test}_{ds}.npz   held-out items x users interactions (cold-start evaluation)
    splits/user_factors_{fact}_{dim}_{ds}.npy  splits/class_factors_{fact}_{dim}_{ds}.npy
    models/model_N/  models/trained_models.tsv
    models/model_N/export/savedmodel/ | model.onnx  an export of the model (tartarus export)
    models/model_N/tensorboard/          TensorBoard logs of its training (training.tensorboard)
    predictions/pred_{model}_{set}.npy + index_pred_{model}_{set}.tsv
    results/{model}_{set}.json  results/results.tsv
    results/playlist_{model}_{seed}.tsv|.m3u  a seed-based playlist (tartarus playlist)
    datasets.toml                       the data root's own dataset entries (over the package's)
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from .errors import ConfigError, MissingInput

SETS = ("train", "val", "test")
DATA_ENV = "TARTARUS_DATA"


def default_root():
    """The data root: ``$TARTARUS_DATA`` if set, else ``./data``."""
    return Path(os.environ.get(DATA_ENV) or "data")


def _fmt_seconds(seconds):
    """15.0 -> '15', 2.5 -> '2.5': file names keep the seed's integer look."""
    seconds = float(seconds)
    return str(int(seconds)) if seconds.is_integer() else f"{seconds:g}"


class DataLayout:
    """Paths of a data root. Methods only build paths; ``require`` checks one exists."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self):
        return f"DataLayout({str(self.root)!r})"

    # folders
    @property
    def index_dir(self):
        return self.root / "index"

    @property
    def audio_dir(self):
        return self.root / "audio"

    @property
    def text_dir(self):
        return self.root / "text"

    @property
    def splits_dir(self):
        return self.root / "splits"

    # the generated dummy dataset's source files (a user's own files keep the names its index gives)
    def dummy_audio(self, item_id):
        """The dummy dataset's WAV file of ``item_id``, under ``audio/``."""
        return self.audio_dir / f"{item_id}.wav"

    def dummy_text(self, item_id):
        """The dummy dataset's text of ``item_id``, under ``text/``."""
        return self.text_dir / f"{item_id}.txt"

    @property
    def train_data_dir(self):
        return self.root / "train_data"

    @property
    def patches_dir(self):
        return self.root / "patches"

    @property
    def models_dir(self):
        return self.root / "models"

    @property
    def predictions_dir(self):
        return self.root / "predictions"

    @property
    def results_dir(self):
        return self.root / "results"

    # indexes and targets
    def audio_index(self, ds):
        return self.index_dir / f"index_audio_{ds}.tsv"

    def text_index(self, ds):
        return self.index_dir / f"index_text_{ds}.tsv"

    def tags_index(self, ds):
        """``id<TAB>tag1,tag2,...`` per item."""
        return self.index_dir / f"tags_{ds}.tsv"

    def interactions(self, ds):
        """``user<TAB>item<TAB>count`` per play record."""
        return self.index_dir / f"interactions_{ds}.tsv"

    def items_index(self, set_, ds, suffix=None):
        """The split's ids, or with ``suffix`` the ids a ``train_data`` input was written for."""
        if suffix:
            return self.train_data_dir / f"items_index_{set_}_{suffix}_{ds}.tsv"
        return self.splits_dir / f"items_index_{set_}_{ds}.tsv"

    def y(self, set_, fact, dim, ds):
        return self.splits_dir / f"y_{set_}_{fact}_{dim}_{ds}.npy"

    def genre_labels(self, ds):
        return self.splits_dir / f"genre_labels_{ds}.tsv"

    def x(self, set_, suffix, ds, sparse=False):
        return self.train_data_dir / f"X_{set_}_{suffix}_{ds}.{'npz' if sparse else 'npy'}"

    # text features (tartarus.text)
    def vocabulary(self, suffix, ds):
        """Vocabulary of a text input: ``term<TAB>column<TAB>idf`` (bow) or ``term<TAB>index<TAB>count`` (w2v)."""
        return self.train_data_dir / f"vocabulary_{suffix}_{ds}.tsv"

    def text_params(self, suffix, ds):
        """Every parameter a text input ``X_*_{suffix}_{ds}`` was made with (JSON)."""
        return self.train_data_dir / f"params_{suffix}_{ds}.json"

    def embedding_weights(self, suffix, ds):
        """Embedding matrix of a token-sequence input, float32 ``(vocab_size + 2, dim)``."""
        return self.train_data_dir / f"embedding_weights_{suffix}_{ds}.npy"

    def target_params(self, fact, dim, ds):
        """Every parameter the targets ``y_*_{fact}_{dim}_{ds}`` were made with (JSON)."""
        return self.splits_dir / f"params_{fact}_{dim}_{ds}.json"

    # interactions (tartarus.interactions), held-out matrices (tartarus.splits), latent factors (tartarus.factors)
    def interactions_matrix(self, ds):
        """Imported play counts, users x items CSR float32 (rows: ``interaction_users``, columns: ``interaction_items``)."""
        return self.splits_dir / f"interactions_{ds}.npz"

    def interaction_users(self, ds):
        """User ids of the rows of ``interactions_matrix``, one a line."""
        return self.splits_dir / f"interactions_users_{ds}.tsv"

    def interaction_items(self, ds):
        """Item ids of the columns of ``interactions_matrix``, one a line."""
        return self.splits_dir / f"interactions_items_{ds}.tsv"

    def interactions_params(self, ds):
        """How the interactions matrix was imported: source, columns, filters, counts (JSON)."""
        return self.splits_dir / f"interactions_params_{ds}.json"

    def eval_matrix(self, set_, ds):
        """Held-out interactions of a split, items x users CSR (rows: items_index order, columns: users)."""
        return self.splits_dir / f"matrix_{set_}_{ds}.npz"

    def matrix_test(self, ds):
        return self.eval_matrix("test", ds)

    def matrix_val(self, ds):
        return self.eval_matrix("val", ds)

    def user_factors(self, fact, dim, ds):
        """User latent factors, float32 ``(n_users, dim)`` in ``interaction_users`` order."""
        return self.splits_dir / f"user_factors_{fact}_{dim}_{ds}.npy"

    def class_factors(self, fact, dim, ds):
        """Class latent factors of a PMI item x class factorisation, float32 ``(n_classes, dim)``."""
        return self.splits_dir / f"class_factors_{fact}_{dim}_{ds}.npy"

    def factor_params(self, fact, dim, ds):
        """Every parameter the factors ``y_*_{fact}_{dim}_{ds}`` were made with (the targets' params JSON)."""
        return self.target_params(fact, dim, ds)

    # audio features
    def spectrograms_dir(self, ds):
        return self.root / "spectrograms" / ds

    def spectrogram(self, ds, item_id):
        return self.spectrograms_dir(ds) / f"{item_id}.npy"

    def spectrogram_files(self, ds):
        """The spectrogram files present under ``spectrograms/{ds}/`` (sorted; params and errors not among them)."""
        folder = self.spectrograms_dir(ds)
        return sorted(folder.glob("*.npy")) if folder.is_dir() else []

    def spectrogram_params(self, ds):
        return self.spectrograms_dir(ds) / "params.json"

    def spectrogram_errors(self, ds):
        return self.spectrograms_dir(ds) / "errors.tsv"

    def patches(self, set_, ds, npatches, seconds):
        """HDF5 ``features`` and ``index`` of one split: spectrogram patches, or one vector a row
        (the seed's AcousticBrainz ``patches_{set}_allmusic_1x1.hdf5``, read without META_SUFFIX)."""
        return self.patches_dir / f"patches_{set_}_{ds}_{npatches}x{_fmt_seconds(seconds)}.hdf5"

    def patch_shards_dir(self, set_, ds, npatches, seconds):
        """The shards of a patches file written on a Dask cluster, beside it:
        ``patches/patches_{set}_{ds}_{n}x{s}.shards/`` (the file is then a virtual dataset over them)."""
        path = self.patches(set_, ds, npatches, seconds)
        return path.with_name(path.stem + ".shards")

    def patch_shard(self, set_, ds, npatches, seconds, k):
        """Shard ``k`` (0, 1, ...) of a patches file: ``{patch_shards_dir}/shard_{k:05d}.hdf5``."""
        return self.patch_shards_dir(set_, ds, npatches, seconds) / f"shard_{int(k):05d}.hdf5"

    # models
    def model_dir(self, model_id):
        return self.models_dir / model_id

    def model_file(self, model_id):
        return self.model_dir(model_id) / "model.keras"

    def checkpoint(self, model_id):
        return self.model_dir(model_id) / "checkpoint.keras"

    def training_state(self, model_id):
        return self.model_dir(model_id) / "training_state.json"

    def model_config(self, model_id):
        return self.model_dir(model_id) / "config.json"

    def history(self, model_id):
        return self.model_dir(model_id) / "history.json"

    def manifest(self, model_id):
        return self.model_dir(model_id) / "manifest.json"

    def training_curve(self, model_id):
        return self.model_dir(model_id) / "training_curve.png"

    def report(self, model_id):
        """The model's report page (``tartarus report``), ``models/model_N/report.html``."""
        return self.model_dir(model_id) / "report.html"

    def tensorboard_dir(self, model_id):
        """The model's TensorBoard logs (``training.tensorboard``, ``tartarus run --tensorboard``),
        ``models/model_N/tensorboard/`` with ``train/`` and ``validation/`` event files."""
        return self.model_dir(model_id) / "tensorboard"

    def best_weights(self, model_id):
        """The best epoch's weights so far (``training.restore_best``); Keras wants ``.weights.h5``."""
        return self.model_dir(model_id) / "best.weights.h5"

    def model_export(self, model_id, fmt, layer=None):
        """An export of a trained model (``tartarus export``): ``models/model_N/export/savedmodel`` (a
        SavedModel folder) or ``.../export/model.onnx``; with ``layer``, ``-{layer}`` before the suffix."""
        tail = "" if layer is None else f"-{layer}"
        name = {"savedmodel": f"savedmodel{tail}", "onnx": f"model{tail}.onnx"}.get(fmt)
        if name is None:
            raise ConfigError(f"export format {fmt!r} is not known; choose one of: savedmodel, onnx")
        return self.model_dir(model_id) / "export" / name

    def trained_models(self):
        return self.models_dir / "trained_models.tsv"

    def model_counter(self):
        return self.models_dir / ".model_ids"

    # predictions and results
    def prediction(self, model_id, set_, dataset=None):
        """Outputs of a model on a split of its dataset, or (``dataset``) of another one (``predict -pd``)."""
        return self.predictions_dir / f"pred_{model_id}_{set_}{'_' + dataset if dataset else ''}.npy"

    def prediction_index(self, model_id, set_, dataset=None):
        return self.predictions_dir / f"index_pred_{model_id}_{set_}{'_' + dataset if dataset else ''}.tsv"

    def predictions_of(self, model_id, set_, ds, layer=None, other_dataset=None):
        """``(values, items index)`` where ``tartarus predict`` keeps a model's per-item rows of a split.

        layer None: the outputs, ``predictions/`` (:meth:`prediction`; ``other_dataset``: the items of
        another dataset than the model's, ``predict -pd``); a layer: its embeddings as the ``train_data``
        input :meth:`embedding_suffix` of dataset ``ds`` (:meth:`x`, :meth:`items_index`).
        """
        if layer is None:
            return (self.prediction(model_id, set_, other_dataset),
                    self.prediction_index(model_id, set_, other_dataset))
        suffix = self.embedding_suffix(model_id, layer)
        return self.x(set_, suffix, ds), self.items_index(set_, ds, suffix)

    @staticmethod
    def embedding_suffix(model_id, layer):
        """The ``train_data`` suffix of a layer embedding, e.g. ``model_1-pred_9``."""
        return f"{model_id}-pred_{layer}"

    @staticmethod
    def parse_embedding_suffix(suffix):
        """``(model_id, layer)`` of an :meth:`embedding_suffix` such as ``model_1-pred_9``, else None."""
        model_id, sep, layer = str(suffix).partition("-pred_")
        return (model_id, layer) if sep else None

    @staticmethod
    def pretrained_suffix(name, layer):
        """The ``train_data`` suffix of a pretrained model's layer embedding (``tartarus embed``),
        e.g. ``MTT_musicnn-penultimate``."""
        return f"{name}-{layer}"

    @staticmethod
    def parse_pretrained_suffix(suffix):
        """``(pretrained name, layer)`` of a :meth:`pretrained_suffix` such as
        ``MTT_musicnn-penultimate``, else None (the name must be one of ``PRETRAINED_NAMES``)."""
        from .pretrained import PRETRAINED_NAMES  # names only: pretrained imports Keras lazily
        name, sep, layer = str(suffix).partition("-")
        return (name, layer) if sep and layer and name in PRETRAINED_NAMES else None

    def input_errors(self, suffix, ds):
        """``set<TAB>id<TAB>path<TAB>reason`` of the items a computed ``train_data`` input left out
        (``tartarus embed``), ``train_data/errors_{suffix}_{ds}.tsv``."""
        return self.train_data_dir / f"errors_{suffix}_{ds}.tsv"

    def result(self, model_id, set_):
        return self.results_dir / f"{model_id}_{set_}.json"

    def result_files(self):
        """``[(model_id, set, path), ...]`` of the results JSONs present (:meth:`result`), sorted by
        path; reads the folder only. A name that is not ``{model}_{set}.json`` with a set of
        :data:`SETS` (another tool's JSON) is not one."""
        if not self.results_dir.is_dir():
            return []
        found = []
        for path in sorted(self.results_dir.glob("*.json")):
            model_id, _, set_ = path.stem.rpartition("_")
            if model_id and set_ in SETS:
                found.append((model_id, set_, path))
        return found

    def confusion_plot(self, model_id, set_):
        return self.results_dir / f"{model_id}_{set_}_confusion.png"

    def playlist(self, model_id, seed, ext="tsv"):
        """A seed-based playlist, ``results/playlist_{model}_{seed}.{tsv|m3u}``.

        ``seed`` is an item id or an audio file (its stem is used); characters that do not belong in a
        file name become ``_``.
        """
        if ext not in ("tsv", "m3u"):
            raise ConfigError(f"playlist files are .tsv or .m3u, not .{ext}")
        stem = Path(str(seed)).stem if ("/" in str(seed) or "\\" in str(seed)) else str(seed)
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip(".") or "seed"
        return self.results_dir / f"playlist_{model_id}_{stem}.{ext}"

    @staticmethod
    def playlist_at(out, n_lists=1):
        """``(tsv path, [m3u path per list])`` of a playlist written where the user says (``--out``).

        out : a path stem; a ``.tsv`` or ``.m3u`` suffix is dropped. Gives ``{out}.tsv`` and
        ``{out}.m3u``, or ``{out}_{k}.m3u`` (k = 1 .. n_lists) when there are several lists.
        """
        stem = Path(out)
        if stem.suffix.lower() in (".tsv", ".m3u"):
            stem = stem.with_suffix("")
        tsv = stem.with_name(stem.name + ".tsv")
        if n_lists == 1:
            return tsv, [stem.with_name(stem.name + ".m3u")]
        return tsv, [stem.with_name(f"{stem.name}_{k}.m3u") for k in range(1, n_lists + 1)]

    def results_table(self):
        return self.results_dir / "results.tsv"

    def comparison_report(self, model_ids):
        """A page of several models side by side (``tartarus report --compare``),
        ``results/compare_model_1_model_2.html``."""
        return self.results_dir / f"compare_{'_'.join(model_ids)}.html"

    def comparison_table(self, name):
        """The table of a pipeline's models side by side, e.g. ``results/comparison_dummy.tsv``."""
        return self.results_dir / f"comparison_{name}.tsv"

    # configuration
    def datasets_file(self):
        """The data root's own dataset entries (same schema as the package's ``experiments/datasets.toml``)."""
        return self.root / "datasets.toml"

    # checking
    def require(self, path, command=None, what=None):
        """Return ``path`` if it exists, else raise MissingInput naming it and ``command``."""
        path = Path(path)
        if not path.exists():
            raise MissingInput(path, command, what)
        return path

    def cli(self, *args):
        """A command line for messages, carrying this root when it is not the default.

        Each argument is quoted as a POSIX shell needs (``shlex.quote``: a path with a space, a
        ``--param`` holding quotes), so the line runs as printed; tests/test_hints.py parses every
        one with the real parser (:func:`tartarus.cli.parse_command_line`).
        """
        words = ["tartarus", *(str(a) for a in args)]
        if self.root != Path("data"):
            words += ["--data-dir", str(self.root)]
        return " ".join(shlex.quote(w) for w in words)

    # imported datasets (tartarus.datasets.magna)
    def import_params(self, ds):
        """How a dataset was imported from its published files: sources, options, counts (JSON)."""
        return self.splits_dir / f"import_params_{ds}.json"

    def import_skipped(self, ds):
        """``id<TAB>source audio path<TAB>reason`` of the clips an import left out (missing, empty, undecodable)."""
        return self.index_dir / f"import_skipped_{ds}.tsv"
