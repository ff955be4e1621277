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
import keras
import numpy as np

from .errors import DataMismatch, MissingInput

IN_MEMORY_LIMIT = 2 * 1024 ** 3  # bytes of features loaded whole when "auto"


def read_patch_index(path):
    """Item id of each patch in an HDF5 patches file, as a list of str."""
    with h5py.File(path, "r") as f:
        return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f["index"][:]]


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


class PatchDataset(keras.utils.PyDataset):
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
        self.targets = targets[self.alignment.patch_rows[self.file_rows]]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(self.targets))
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
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

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
        idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        return self._read(self.file_rows[idx]), self.targets[idx]

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self):
        self.close()


def iter_patch_batches(path, batch_size=256):
    """Yield (start, features) blocks of an HDF5 patches file in file order, for prediction."""
    with h5py.File(path, "r") as f:
        feats = f["features"]
        for start in range(0, feats.shape[0], batch_size):
            yield start, feats[start:start + batch_size]


def require_patches(layout, set_, ds, npatches, window):
    path = layout.patches(set_, ds, npatches, window)
    if not path.exists():
        raise MissingInput(path, layout.cli("patches", ds, "--npatches", npatches, "--window", f"{window:g}"),
                           what=f"{set_} patches")
    return path
