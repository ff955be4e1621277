"""Feeding a model: HDF5 patch streams aligned with per-item targets.

A patches file holds ``features`` (N, frames, bins, 1) and ``index`` (N,) item ids; targets are
per item (``y_{set}_*`` rows in ``items_index`` order), so each patch takes its item's row.

Patch files made by the seed's ``create_patches.py`` hold ``features`` as (N, 1, frames, bins),
channels first, already standardised per (frame, bin) with a scaler fitted on the train patches
(which is not in the file). They are recognised (no ``params`` attribute, rank 4, axis 1 of size 1,
last axis not 1), every block read from them is moved to channels last, and a model trained on
them gets no scaling of its own (:func:`feature_stats`), so the seed's scaling is applied once.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass

import h5py
import scipy.sparse as sp
import keras
import numpy as np

from .errors import DataMismatch, MissingInput
from .fileio import open_hdf5

IN_MEMORY_LIMIT = 2 * 1024 ** 3  # bytes of features loaded whole when "auto"
# architecture input kinds that read spectrogram patches ("patches+vectors": patches plus one row of
# each META_SUFFIX input per patch, the row of the patch's item)
PATCH_KINDS = ("patches", "patches+vectors")


def read_patch_index(path):
    """Item id of each patch in an HDF5 patches file, as a list of str."""
    with open_hdf5(path, "a patches file") as f:
        return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f["index"][:]]


def patch_params(path):
    """The ``params`` attribute of an HDF5 patches file (spectrogram and patch settings), a dict.

    Empty when the file has none (patches written by other tools)."""
    import json
    with open_hdf5(path, "a patches file") as f:
        return json.loads(f.attrs["params"]) if "params" in f.attrs else {}


@dataclass(frozen=True)
class FeatureLayout:
    """How a patches file stores ``features``.

    channels_first : the seed's (N, 1, frames, bins); blocks are moved to (n, frames, bins, 1).
    prescaled : the values are already standardised (the seed's ``create_patches.py`` does it).
    """
    channels_first: bool = False
    prescaled: bool = False

    def to_model(self, block):
        """A block read from ``features`` as the models take it (channels last)."""
        if self.channels_first:
            return np.ascontiguousarray(np.moveaxis(block, -3, -1))
        return block


def feature_layout(path):
    """The :class:`FeatureLayout` of a patches file (DataMismatch for a rank-4 layout it cannot place)."""
    with open_hdf5(path, "a patches file") as f:
        shape = f["features"].shape
        ours = "params" in f.attrs
    if ours or len(shape) != 4 or shape[3] == 1:
        return FeatureLayout()
    if shape[1] == 1:
        return FeatureLayout(channels_first=True, prescaled=True)
    raise DataMismatch(f"{path}: 'features' of shape {shape}; expected (N, frames, bins, 1) (tartarus "
                       f"patches) or (N, 1, frames, bins) (the seed's create_patches.py)")


def patch_shape(path):
    """(frames, bins, channels) of the patches in ``path``, channels last whatever the file's layout."""
    with open_hdf5(path, "a patches file") as f:
        shape = tuple(f["features"].shape[1:])
    if feature_layout(path).channels_first:
        return shape[1:] + shape[:1]
    return shape


@dataclass
class PatchAlignment:
    """Rows of the per-item targets for each patch, and the items that have no patch."""
    patch_rows: np.ndarray
    missing_items: list

    def warn(self, path):
        if self.missing_items:
            shown = ", ".join(self.missing_items[:10]) + (" ..." if len(self.missing_items) > 10 else "")
            warnings.warn(f"{path}: {len(self.missing_items)} item(s) of the split have no patch and are "
                          f"left out: {shown}", stacklevel=3)


def align_patches(patch_ids, item_ids, patches_path="patches", index_path="items_index", subset=False):
    """Map each patch to its item's row in ``item_ids``.

    A patch of an item not in ``item_ids`` is an error, unless ``subset`` (``item_ids`` is then a
    part of the file's items, e.g. train items held out for validation): such patches get row -1.
    """
    row_of = {item: i for i, item in enumerate(item_ids)}
    if len(row_of) != len(item_ids):
        raise DataMismatch(f"{index_path}: item ids are not unique")
    if not subset:
        unknown = [p for p in patch_ids if p not in row_of]
        if unknown:
            raise DataMismatch(f"{patches_path} has patches of {len(set(unknown))} item(s) that are not in "
                               f"{index_path}, e.g. {unknown[0]!r}: remake the patches for this split")
    rows = np.fromiter((row_of.get(p, -1) for p in patch_ids), dtype=np.int64, count=len(patch_ids))
    present = set(patch_ids)
    return PatchAlignment(rows, [item for item in item_ids if item not in present])


SCALER_PATCHES = 10000
"""Train patches a per-bin scaler is fitted on: the seed fitted its StandardScaler on the first block
(10000 patches) of the train file and applied it to every block and split."""


def feature_stats(path, scaling="scalar", chunk=256, max_patches=SCALER_PATCHES):
    """The input scaling of a model trained on the patches file ``path``: ``(mean, std)``.

    scaling : ``"scalar"``: one mean and std over every value of ``features`` (floats);
        ``"per_bin"``: the seed's ``StandardScaler`` over flattened patches, fitted on the first
        ``max_patches`` patches: float32 arrays (frames, bins, 1) of means and standard deviations
        (population, ddof 0; 1.0 where a (frame, bin) is constant, as scikit-learn).
    A file already standardised by the seed's ``create_patches.py`` gets ``(0.0, 1.0)`` (no second
    scaling), after a check that it looks standardised.
    """
    layout = feature_layout(path)
    total = total_sq = 0.0
    count = 0
    with open_hdf5(path, "a patches file") as f:
        feats = f["features"]
        n = feats.shape[0] if scaling == "scalar" and not layout.prescaled else min(feats.shape[0], max_patches)
        for start in range(0, n, chunk):
            block = layout.to_model(feats[start:min(start + chunk, n)]).astype(np.float64)
            if scaling == "per_bin" and not layout.prescaled:
                total = total + block.sum(axis=0)
                total_sq = total_sq + np.square(block).sum(axis=0)
                count += block.shape[0]
            else:
                total += block.sum()
                total_sq += np.square(block).sum()
                count += block.size
    if count == 0:
        raise DataMismatch(f"{path}: no patches")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    if layout.prescaled:
        if abs(mean) > 0.5 or not 0.5 < std < 2.0:
            raise DataMismatch(f"{path}: patches in the seed's layout (N, 1, frames, bins) are taken as "
                               f"standardised by its create_patches.py, but their mean is {mean:.3g} and std "
                               f"{std:.3g}; standardise them, or remake them with tartarus patches")
        return 0.0, 1.0
    if scaling == "per_bin":
        # scikit-learn's rule: a (near-)constant feature keeps scale 1
        std = np.where(std < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0), 1.0, std)
        return mean.astype(np.float32), std.astype(np.float32)
    return float(mean), float(max(std, 1e-6))


def scaling_summary(input_stats):
    """JSON-able description of an ``input_stats`` pair (arrays are kept in the model, not here)."""
    mean, std = input_stats
    if np.ndim(mean) == 0:
        return [float(mean), float(std)]
    return {"scaling": "per_bin", "shape": list(np.shape(mean))}


class ShuffledBatches(keras.utils.PyDataset):
    """Batch bookkeeping shared by the feeds: a row order reshuffled every epoch from a seed."""

    def _init_order(self, n_rows, batch_size, shuffle, seed):
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.epoch_seeded = False  # set by start_epoch: the caller then orders every epoch
        self.order = np.arange(n_rows)
        if shuffle:
            self.rng.shuffle(self.order)
        # data-parallel training (split_batches): every batch a multiple of `multiple` rows, and this
        # process's share (part[0] of part[1]) of each global batch
        self.multiple = 1
        self.part = (0, 1)

    def split_batches(self, n_devices, process_index=0, n_processes=1):
        """Shape the batches for data-parallel training over ``n_devices`` devices in all.

        Every batch then holds a multiple of ``n_devices`` rows, so that each device takes an equal
        share: ``batch_size`` must be one (ValueError otherwise; training checks it first), and the
        last batch of an epoch drops its rows beyond a multiple of ``n_devices`` (fewer than
        ``n_devices`` rows: the last ones of the epoch's order, so other rows each epoch when
        shuffled). With ``n_processes`` > 1 (multi-host) each process yields only its contiguous
        share, ``process_index`` of ``n_processes``, of every global batch (all processes draw the
        same order from the same seed), so no host reads another's rows. ``n_devices = 1`` changes
        nothing.
        """
        if self.batch_size % n_devices or n_devices % n_processes:
            raise ValueError(f"batches of {self.batch_size} rows do not split over {n_devices} devices "
                             f"in {n_processes} process(es)")
        self.multiple, self.part = int(n_devices), (int(process_index), int(n_processes))
        return self

    @property
    def n_used(self):
        """Rows an epoch feeds: all of them, less the remainder that :meth:`split_batches` drops."""
        return len(self.order) // self.multiple * self.multiple

    def __len__(self):
        return math.ceil(self.n_used / self.batch_size)

    def batch_rows(self, i):
        """Rows of batch ``i``, ascending (what an HDF5 read and a CSR slice want)."""
        rows = self.order[i * self.batch_size:min((i + 1) * self.batch_size, self.n_used)]
        index, count = self.part
        if count > 1:
            share = len(rows) // count
            rows = rows[index * share:(index + 1) * share]
        return np.sort(rows)

    def on_epoch_end(self):
        if self.shuffle and not self.epoch_seeded:
            self.rng.shuffle(self.order)

    def start_epoch(self, seed):
        """Draw the coming epoch's row order from ``seed`` alone (training gives one per epoch, so that
        a resumed run shuffles as the uninterrupted one did); Keras' epoch ends no longer reshuffle."""
        self.epoch_seeded = True
        if self.shuffle:
            self.order = np.random.default_rng(seed).permutation(len(self.order))


class PatchDataset(ShuffledBatches):
    """Batches of (patches, targets) from an HDF5 file, shuffled over the whole set each epoch.

    path : patches file; targets : (n_items, dim) aligned with ``item_ids``;
    in_memory : True, False, or "auto" (load when the features take at most IN_MEMORY_LIMIT bytes).
    n_jobs : threads preparing the next batches (Keras' PyDataset ``workers``), default 2.
    When streaming, each batch reads its patches in ascending file order (what HDF5 needs for one
    fancy read); the batch composition is still random across the whole set.
    """

    def __init__(self, path, targets, item_ids, batch_size=32, shuffle=True, seed=0, in_memory="auto",
                 index_path="items_index", n_jobs=2, subset=False):
        # n_jobs threads prepare the next batches while the model trains on the current one
        super().__init__(workers=n_jobs, use_multiprocessing=False)
        self.path = str(path)
        targets = np.asarray(targets, dtype=np.float32)
        if targets.ndim == 1:
            targets = targets[:, None]
        if len(targets) != len(item_ids):
            raise DataMismatch(f"targets have {len(targets)} rows but {index_path} lists {len(item_ids)} items")
        self.alignment = align_patches(read_patch_index(path), item_ids, self.path, index_path, subset)
        self.alignment.warn(self.path)
        # file rows of the patches used (all of them, unless ``subset`` selects some items)
        self.file_rows = np.flatnonzero(self.alignment.patch_rows >= 0)
        self.item_rows = self.alignment.patch_rows[self.file_rows]  # row in item_ids of each patch used
        self.targets = targets[self.item_rows]
        self.layout = feature_layout(self.path)
        self._file = None
        self._lock = threading.Lock()
        with open_hdf5(self.path, "a patches file") as f:
            nbytes = f["features"].size * f["features"].dtype.itemsize
        if in_memory == "auto":
            in_memory = nbytes <= IN_MEMORY_LIMIT
        self.features = None
        if in_memory:
            with open_hdf5(self.path, "a patches file") as f:
                self.features = self.layout.to_model(f["features"][:])
            if len(self.file_rows) < len(self.features):
                self.features = self.features[self.file_rows]
                self.file_rows = np.arange(len(self.file_rows))
        self._init_order(len(self.targets), batch_size, shuffle, seed)

    def _read(self, idx):
        if self.features is not None:
            return self.features[idx]
        with self._lock:
            if self._file is None:
                self._file = h5py.File(self.path, "r")
        feats = self._file["features"]
        # one read per patch: h5py's fancy indexing over scattered rows is ~80x slower than this
        return self.layout.to_model(np.stack([feats[i] for i in idx]))

    def __getitem__(self, i):
        idx = self.batch_rows(i)
        return self._read(self.file_rows[idx]), self.targets[idx]

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self):
        self.close()


class PatchVectorDataset(PatchDataset):
    """Batches of ((patches, rows of each vector input), targets): each patch with its item's rows.

    vectors : arrays or CSR matrices with one row per item of ``item_ids`` (the META_SUFFIX inputs of
    a ``patches+vectors`` architecture). Patches are read as by :class:`PatchDataset`; the vector
    rows of a batch are looked up (and densified) per batch, never repeated per patch in memory.
    """

    def __init__(self, path, vectors, targets, item_ids, **kwargs):
        super().__init__(path, targets, item_ids, **kwargs)
        self.vectors = list(vectors)
        for x in self.vectors:
            if x.shape[0] != len(item_ids):
                raise DataMismatch(f"a vector input has {x.shape[0]} rows but there are {len(item_ids)} items")

    def __getitem__(self, i):
        idx = self.batch_rows(i)
        rows = self.item_rows[idx]
        return (self._read(self.file_rows[idx]), *(take_rows(x, rows) for x in self.vectors)), self.targets[idx]


def iter_patch_batches(path, batch_size=256):
    """Yield (start, features) blocks of an HDF5 patches file in file order, for prediction."""
    layout = feature_layout(path)
    with open_hdf5(path, "a patches file") as f:
        feats = f["features"]
        for start in range(0, feats.shape[0], batch_size):
            yield start, layout.to_model(feats[start:start + batch_size])


def iter_patch_vector_batches(path, vectors, patch_rows, batch_size=256):
    """Yield (start, (features, rows of each vector input)) blocks in file order, for prediction.

    patch_rows : (n_patches,) row of each patch's item in ``vectors`` (``align_patches``).
    """
    for start, block in iter_patch_batches(path, batch_size):
        rows = patch_rows[start:start + len(block)]
        yield start, (block, *(take_rows(x, rows) for x in vectors))


def require_patches(layout, set_, ds, npatches, window):
    path = layout.patches(set_, ds, npatches, window)
    if not path.exists():
        raise MissingInput(path, layout.cli("patches", ds, "--npatches", npatches, "--window", f"{window:g}"),
                           what=f"{set_} patches")
    return path


def reads_feature_file(kind, suffixes):
    """Whether a model reads its one vector input from the dataset's HDF5 features file.

    An architecture over one vector input given no META_SUFFIX reads the rows of
    ``patches_{set}_{ds}_{npatches}x{window}.hdf5`` (the seed's ``with_metadata = false``: e.g.
    its AcousticBrainz ``genres_*`` experiments read ``patches_{set}_allmusic_1x1.hdf5``).
    """
    return kind == "vectors" and not suffixes


def require_vector_features(layout, set_, ds, npatches, window):
    """Path of the HDF5 vector features of one split, checked to hold (N, D) ``features``.

    The file is the seed's patches file with one vector a row: ``features`` (N, D) float and
    ``index`` (N,) item ids (several rows of an item are averaged at prediction, like patches).
    """
    path = layout.patches(set_, ds, npatches, window)
    if not path.exists():
        raise MissingInput(path, what=f"{set_} vector features (HDF5 datasets 'features' (N, D) and 'index' (N,) "
                                      f"item ids; or name train_data inputs as META_SUFFIX arguments)")
    with open_hdf5(path, "a patches file") as f:
        if "features" not in f or "index" not in f:
            raise DataMismatch(f"{path}: expected the datasets 'features' and 'index', found {sorted(f.keys())}")
        shape = f["features"].shape
    if len(shape) != 2:
        raise DataMismatch(f"{path}: a vector architecture reads features of shape (N, D), got {shape}; "
                           f"spectrogram patches need an audio architecture")
    return path


# ------------------------------------------------------------------------------ vector inputs
def input_command(layout, suffix, ds, set_):
    """The command that makes the ``train_data`` input ``suffix`` (for error messages)."""
    embedding = layout.parse_embedding_suffix(suffix)
    if embedding:
        model, layer = embedding
        return layout.cli("predict", model, "-l", layer, "-s", set_)
    pretrained = layout.parse_pretrained_suffix(suffix)
    if pretrained:
        name, layer = pretrained
        return layout.cli("embed", name, ds, "--layer", layer, "-s", set_)
    if suffix in ("bow", "w2v"):
        return layout.cli("text", {"bow": "vsm"}.get(suffix, suffix), ds)
    return None


def reads_sparse(suffix, sparse):
    """Whether input ``suffix`` is read from its sparse ``.npz`` under ``dataset.sparse = sparse``.

    The seed's rule: with ``sparse = true`` every input is a sparse matrix except a model's
    predictions and word2vec sequences (suffixes containing ``model`` or ``w2v``), which stay dense
    ``.npy``; with ``sparse = false`` every input is dense. A pretrained model's embeddings
    (``tartarus embed``: ``MTT_musicnn-penultimate``) are a model's predictions too: dense.
    """
    from .layout import DataLayout
    return (bool(sparse) and "model" not in suffix and "w2v" not in suffix
            and not DataLayout.parse_pretrained_suffix(suffix))


def vector_input_path(layout, set_, suffix, ds, sparse=None):
    """The file input ``suffix`` is read from: ``X_{set}_{suffix}_{ds}.npz`` or ``.npy``.

    sparse : ``dataset.sparse`` (see :func:`reads_sparse`); None: whichever exists, ``.npz`` first.
    """
    sparse_path, dense_path = layout.x(set_, suffix, ds, sparse=True), layout.x(set_, suffix, ds)
    if sparse is None:
        return sparse_path if sparse_path.exists() else dense_path
    return sparse_path if reads_sparse(suffix, sparse) else dense_path


def load_vector_input(layout, set_, suffix, ds, item_ids, split_index, sparse=None):
    """The ``train_data`` input ``suffix`` of one split, rows in ``item_ids`` order.

    Reads ``X_{set}_{suffix}_{ds}.npz`` (sparse, kept sparse) or ``.npy``: the one ``sparse``
    (``dataset.sparse``) names (:func:`reads_sparse`), and an error naming the key when only the
    other exists; ``sparse = None``: whichever exists. When the input has its own
    ``items_index_{set}_{suffix}_{ds}.tsv`` its rows are matched to the split by id; otherwise the
    row count must equal the split's. Returns a 2-d array (or CSR matrix) with len(item_ids) rows.
    """
    from .errors import ConfigError
    from .fileio import load_npy, load_sparse

    path = vector_input_path(layout, set_, suffix, ds, sparse)
    is_sparse = path.suffix == ".npz"
    if not path.exists():
        other = layout.x(set_, suffix, ds, sparse=not is_sparse)
        if sparse is not None and other.exists():
            kinds = ("a sparse matrix (.npz)", "a dense array (.npy)")
            raise ConfigError(f"dataset.sparse = {str(bool(sparse)).lower()} reads input {suffix!r} as "
                              f"{kinds[not is_sparse]}: {path.name} is absent, and {other} is {kinds[is_sparse]}; "
                              f"set dataset.sparse = {str(not is_sparse).lower()} (--set dataset.sparse="
                              f"{not is_sparse}) for this input, or give {kinds[not is_sparse]}")
        raise MissingInput(path, input_command(layout, suffix, ds, set_),
                           what=f"{set_} input {suffix!r} ({'.npz: dataset.sparse = true' if is_sparse else '.npy'})"
                           if sparse is not None else f"{set_} input {suffix!r} (.npy, or .npz if sparse)")
    if is_sparse:
        x = load_sparse(path)
    else:
        x = load_npy(path)
        x = x.reshape(len(x), -1) if x.ndim == 1 else x
    own_index = layout.items_index(set_, ds, suffix)
    if own_index.exists():
        from .fileio import read_items_index
        ids = read_items_index(own_index)
        if len(ids) != x.shape[0]:
            raise DataMismatch(f"{path} has {x.shape[0]} rows but {own_index} lists {len(ids)} items")
        if ids != list(item_ids):
            row_of = {item: i for i, item in enumerate(ids)}
            absent = [item for item in item_ids if item not in row_of]
            if absent:
                raise DataMismatch(f"{own_index} lacks {len(absent)} of the {len(item_ids)} items of {split_index}, "
                                   f"e.g. {', '.join(absent[:5])}: remake {path.name} for this split")
            x = x[np.array([row_of[item] for item in item_ids])]
    elif x.shape[0] != len(item_ids):
        raise DataMismatch(f"{path} has {x.shape[0]} rows but {split_index} lists {len(item_ids)} items")
    if not sp.issparse(x) and np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise DataMismatch(f"{path} contains NaN or infinite values")
    return x


def take_rows(x, rows):
    """Rows of a dense array or sparse matrix, as a dense array (sparse densified here, per batch)."""
    block = x[rows]
    if sp.issparse(block):
        return block.toarray().astype(np.float32)
    return block if np.issubdtype(block.dtype, np.integer) else block.astype(np.float32, copy=False)


class VectorDataset(ShuffledBatches):
    """Batches of (inputs, targets) from in-memory arrays, one array (or CSR matrix) per model input.

    A sparse input is densified one batch at a time, never as a whole matrix.
    """

    def __init__(self, inputs, targets, batch_size=32, shuffle=True, seed=0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.inputs = list(inputs)
        self.targets = np.asarray(targets, dtype=np.float32)
        for x in self.inputs:
            if x.shape[0] != len(self.targets):
                raise DataMismatch(f"an input has {x.shape[0]} rows but there are {len(self.targets)} targets")
        self._init_order(len(self.targets), batch_size, shuffle, seed)

    def __getitem__(self, i):
        idx = self.batch_rows(i)
        xs = tuple(take_rows(x, idx) for x in self.inputs)
        return (xs if len(xs) > 1 else xs[0]), self.targets[idx]


def iter_vector_batches(inputs, batch_size=256):
    """Yield model-ready input batches over all rows, in order, for prediction."""
    n = inputs[0].shape[0]
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n))
        xs = tuple(take_rows(x, rows) for x in inputs)
        yield start, (xs if len(xs) > 1 else xs[0])


def load_inputs(layout, experiment, suffixes, set_, item_ids, index_path):
    """What a model of ``experiment`` reads for one split.

    Returns (patches path, None) when the architecture reads spectrogram patches, or one vector
    input given no suffix (the HDF5 vector features, fed and aggregated per item like patches),
    (None, [one array or CSR matrix per suffix, rows in ``item_ids`` order]) when it reads vectors,
    and (patches path, [the vector inputs]) for ``patches+vectors``.
    """
    from .models import get_architecture

    ds = experiment.dataset
    kind = get_architecture(experiment.cnn.architecture).input_kind
    if reads_feature_file(kind, suffixes):
        return require_vector_features(layout, set_, ds.dataset, ds.npatches, ds.window), None
    patches = require_patches(layout, set_, ds.dataset, ds.npatches, ds.window) if kind in PATCH_KINDS else None
    if kind == "patches":
        return patches, None
    inputs = [load_vector_input(layout, set_, s, ds.dataset, item_ids, index_path, sparse=ds.sparse)
              for s in suffixes]
    if kind == "sequences":
        inputs = [first_words(x, experiment.cnn.sequence_length, layout.x(set_, s, ds.dataset), ds.dataset)
                  for x, s in zip(inputs, suffixes)]
    return patches, inputs


def first_words(x, length, path, ds):
    """The first ``length`` word ids of each row of ``x`` (the seed's ``X[:, :sequence_length]``).

    ``length`` is ``cnn.sequence_length``; sequences shorter than that are an error naming the file.
    """
    if x.ndim != 2 or x.shape[1] < length:
        raise DataMismatch(f"{path} holds sequences of shape {tuple(x.shape[1:])}, but cnn.sequence_length is "
                           f"{length}: remake it with `tartarus text w2v {ds} --sequence-length {length}`, or set "
                           f"cnn.sequence_length to at most {x.shape[1] if x.ndim == 2 else 'its length'}")
    return x[:, :length]
