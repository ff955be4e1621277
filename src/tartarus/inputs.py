"""Feeding a model: HDF5 patch streams aligned with per-item targets.

A patches file holds ``features`` (N, frames, bins, 1) and ``index`` (N,) item ids; targets are
per item (``y_{set}_*`` rows in ``items_index`` order), so each patch takes its item's row.
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

IN_MEMORY_LIMIT = 2 * 1024 ** 3  # bytes of features loaded whole when "auto"
# architecture input kinds that read spectrogram patches ("patches+vectors": patches plus one row of
# each META_SUFFIX input per patch, the row of the patch's item)
PATCH_KINDS = ("patches", "patches+vectors")


def read_patch_index(path):
    """Item id of each patch in an HDF5 patches file, as a list of str."""
    with h5py.File(path, "r") as f:
        return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f["index"][:]]


def patch_params(path):
    """The ``params`` attribute of an HDF5 patches file (spectrogram and patch settings), a dict.

    Empty when the file has none (patches written by other tools)."""
    import json
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["params"]) if "params" in f.attrs else {}


def patch_shape(path):
    """(frames, bins, channels) of the patches in ``path``."""
    with h5py.File(path, "r") as f:
        return tuple(f["features"].shape[1:])


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


def feature_stats(path, chunk=256):
    """(mean, std) over every value of the ``features`` dataset, read in contiguous chunks."""
    total = total_sq = 0.0
    count = 0
    with h5py.File(path, "r") as f:
        feats = f["features"]
        for start in range(0, feats.shape[0], chunk):
            block = feats[start:start + chunk].astype(np.float64)
            total += block.sum()
            total_sq += np.square(block).sum()
            count += block.size
    if count == 0:
        raise DataMismatch(f"{path}: no patches")
    mean = total / count
    return float(mean), float(math.sqrt(max(total_sq / count - mean * mean, 1e-12)))


class ShuffledBatches(keras.utils.PyDataset):
    """Batch bookkeeping shared by the feeds: a row order reshuffled every epoch from a seed."""

    def _init_order(self, n_rows, batch_size, shuffle, seed):
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(n_rows)
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    def batch_rows(self, i):
        """Rows of batch ``i``, ascending (what an HDF5 read and a CSR slice want)."""
        return np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)


class PatchDataset(ShuffledBatches):
    """Batches of (patches, targets) from an HDF5 file, shuffled over the whole set each epoch.

    path : patches file; targets : (n_items, dim) aligned with ``item_ids``;
    in_memory : True, False, or "auto" (load when the features take at most IN_MEMORY_LIMIT bytes).
    When streaming, each batch reads its patches in ascending file order (what HDF5 needs for one
    fancy read); the batch composition is still random across the whole set.
    """

    def __init__(self, path, targets, item_ids, batch_size=32, shuffle=True, seed=0, in_memory="auto",
                 index_path="items_index", workers=2, subset=False):
        # worker threads prepare the next batches while the model trains on the current one
        super().__init__(workers=workers, use_multiprocessing=False)
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
        self._file = None
        self._lock = threading.Lock()
        with h5py.File(self.path, "r") as f:
            nbytes = f["features"].size * f["features"].dtype.itemsize
        if in_memory == "auto":
            in_memory = nbytes <= IN_MEMORY_LIMIT
        self.features = None
        if in_memory:
            with h5py.File(self.path, "r") as f:
                self.features = f["features"][:]
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
        return np.stack([feats[i] for i in idx])

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
    with h5py.File(path, "r") as f:
        feats = f["features"]
        for start in range(0, feats.shape[0], batch_size):
            yield start, feats[start:start + batch_size]


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


# ------------------------------------------------------------------------------ vector inputs
def input_command(layout, suffix, ds, set_):
    """The command that makes the ``train_data`` input ``suffix`` (for error messages)."""
    if "-pred_" in suffix:
        model, layer = suffix.split("-pred_", 1)
        return layout.cli("predict", model, "-l", layer, "-s", set_)
    if suffix in ("bow", "w2v"):
        return layout.cli("text", {"bow": "vsm"}.get(suffix, suffix), ds)
    return None


def load_vector_input(layout, set_, suffix, ds, item_ids, split_index):
    """The ``train_data`` input ``suffix`` of one split, rows in ``item_ids`` order.

    Reads ``X_{set}_{suffix}_{ds}.npz`` (sparse, kept sparse) or ``.npy``. When the input has its own
    ``items_index_{set}_{suffix}_{ds}.tsv`` its rows are matched to the split by id; otherwise the
    row count must equal the split's. Returns a 2-d array (or CSR matrix) with len(item_ids) rows.
    """
    from .fileio import load_npy, load_sparse

    sparse_path, dense_path = layout.x(set_, suffix, ds, sparse=True), layout.x(set_, suffix, ds)
    if sparse_path.exists():
        x, path = load_sparse(sparse_path), sparse_path
    elif dense_path.exists():
        x, path = load_npy(dense_path), dense_path
        x = x.reshape(len(x), -1) if x.ndim == 1 else x
    else:
        raise MissingInput(dense_path, input_command(layout, suffix, ds, set_),
                           what=f"{set_} input {suffix!r} (.npy, or .npz if sparse)")
    own_index = layout.items_index(set_, ds, suffix)
    if own_index.exists():
        from .fileio import read_lines
        ids = read_lines(own_index)
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

    Returns (patches path, None) when the architecture reads spectrogram patches,
    (None, [one array or CSR matrix per suffix, rows in ``item_ids`` order]) when it reads vectors,
    and (patches path, [the vector inputs]) for ``patches+vectors``.
    """
    from .models import get_architecture

    ds = experiment.dataset
    kind = get_architecture(experiment.cnn.architecture).input_kind
    patches = require_patches(layout, set_, ds.dataset, ds.npatches, ds.window) if kind in PATCH_KINDS else None
    if kind == "patches":
        return patches, None
    return patches, [load_vector_input(layout, set_, s, ds.dataset, item_ids, index_path) for s in suffixes]
